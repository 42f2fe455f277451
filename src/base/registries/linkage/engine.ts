// The linkage engine: ID numbers link deterministically; everything else by a Fellegi-Sunter model
// over declared comparisons, on candidate pairs from blocking rules, with parameters estimated
// without labels as Splink does (u from random pairs, m by EM over the pairs of each blocking rule
// with that rule's own fields left out, term-frequency adjusted exact matches). Generic over
// fields: nothing here knows what a person or an enterprise is.
import { checkIdNumber } from '../../codes/index.ts';
import { COMPARATORS, kindOfField, NAME_SWAPPED_LEVEL, type Comparator, type ComparatorKind, type Feature } from './comparators.ts';
import { fingerprint, pairKey, recordKey, type ReviewDecision, type ReviewStore } from './review.ts';
import { hasHan } from './normalize.ts';

export interface LinkRecord {
  id: string;
  /** canonical field (or `extra.NAME`) to raw value; empty or missing is null */
  fields: Readonly<Record<string, string | undefined>>;
}

export interface ComparisonSpec {
  field: string;
  kind: ComparatorKind;
  /** adjust the exact level by how common the value is (a shared rare surname weighs more) */
  tf?: boolean;
  /** names: the other name field; agreement of this one with the other's partner is the 'swapped fields' level */
  swapWith?: string;
}

/** how a blocking rule reads a field: the normalised value, its sound (pinyin), sorted sound tokens, a date's year, the first letter */
export type BlockKey = 'exact' | 'sound' | 'sorted' | 'year' | 'initial' | 'prefix2';

/** records agreeing on all of `on` become candidate pairs, e.g. ["family_name:sound", "birth_date:year"] */
export interface BlockingRule {
  on: readonly string[];
}

export interface LinkSettings {
  /** null: derived from the fields present (defaultComparisons) */
  comparisons: readonly ComparisonSpec[] | null;
  /** rules whose fields are all present are used */
  blocking: readonly BlockingRule[];
  /** the field holding a GB 11643 citizen ID number, linked on exactly */
  idField: string;
  /** a record whose ID number fails the check: refused (default) or linked on its other fields */
  invalidIdNumber: 'refuse' | 'ignore';
  /** match probability at or above which a pair is a match */
  threshold: number;
  /** pairs with lower <= p < upper wait for clerical review (unless already decided) */
  review: { lower: number; upper: number };
  /**
   * records joined by confident links (ID number, a clerk's match, or p >= this) form a cluster,
   * and every pair in a cluster is a match (basis 'cluster'); null: pairs only
   */
  clusterThreshold: number | null;
  /** clusters larger than this are not expanded (a chain of links is more likely an error than a person with 100 records) */
  maxClusterSize: number;
  /** random pairs sampled to estimate u */
  uSamplePairs: number;
  /** blocks larger than this are skipped (other rules still pair their records) */
  maxBlockSize: number;
  /**
   * also block on each extra field that behaves as an identifier: its equal values pair at most
   * this many times as many pairs as there are records (0: never)
   */
  identifierPairsPerRecord: number;
  emMaxIterations: number;
  emTolerance: number;
  seed: number;
}

export const DEFAULT_BLOCKING: readonly BlockingRule[] = [
  { on: ['id_number:exact'] },
  { on: ['birth_date:exact'] },
  { on: ['full_name:sorted'] },
  { on: ['family_name:prefix2', 'given_name:prefix2'] },
  { on: ['family_name:sound', 'birth_date:year'] },
  { on: ['given_name:sound', 'birth_date:year'] },
  { on: ['full_name:sound', 'birth_date:year'] },
  { on: ['postcode:exact', 'family_name:sound'] },
  { on: ['postcode:exact', 'given_name:sound'] },
  { on: ['postcode:exact', 'full_name:sorted'] },
  { on: ['city:exact', 'family_name:sound'] },
  { on: ['city:exact', 'given_name:sound'] },
  { on: ['address:exact'] },
  { on: ['email:exact'] },
  { on: ['email:sound'] },
  { on: ['phone:exact'] },
];

export const DEFAULT_SETTINGS: LinkSettings = {
  comparisons: null,
  blocking: DEFAULT_BLOCKING,
  idField: 'id_number',
  invalidIdNumber: 'refuse',
  threshold: 0.5,
  review: { lower: 0.2, upper: 0.9 },
  clusterThreshold: 0.9,
  maxClusterSize: 50,
  uSamplePairs: 250_000,
  maxBlockSize: 1000,
  identifierPairsPerRecord: 3,
  emMaxIterations: 50,
  emTolerance: 1e-5,
  seed: 42,
};

/** The comparisons for the fields present: each canonical field by its kind, extras as text. */
export function defaultComparisons(fields: Iterable<string>, idField = 'id_number'): ComparisonSpec[] {
  const present = new Set(fields);
  const out: ComparisonSpec[] = [];
  // a full name, where some records have it, stands for the family and given names (derived from them where missing)
  const full = present.has('full_name');
  for (const f of present) {
    if (f === idField) continue;
    if (full && (f === 'given_name' || f === 'family_name')) continue;
    const kind = kindOfField(f);
    const spec: ComparisonSpec = { field: f, kind, tf: kind === 'name' || f === 'city' || f.startsWith('extra.') };
    if (!full && f === 'given_name' && present.has('family_name')) spec.swapWith = 'family_name';
    if (!full && f === 'family_name' && present.has('given_name')) spec.swapWith = 'given_name';
    out.push(spec);
  }
  const order = (f: string) => {
    const i = ['full_name', 'family_name', 'given_name', 'birth_date', 'sex', 'address', 'postcode', 'city', 'phone', 'email'].indexOf(f);
    return i < 0 ? 100 : i;
  };
  return out.sort((a, b) => order(a.field) - order(b.field) || (a.field < b.field ? -1 : 1));
}

export interface ComparisonModel {
  field: string;
  kind: ComparatorKind;
  tf: boolean;
  swapWith?: string;
  levels: readonly string[];
  /** P(level | match), index = level; m[0] (null) is unused */
  m: number[];
  /** P(level | non-match) */
  u: number[];
  /** how many training rules estimated m (0: m is the prior) */
  trainedBy: number;
}

/** What estimation found; JSON, so a registry can keep it and score new records without re-training. */
export interface Model {
  comparisons: ComparisonModel[];
  /** probability that two random records match */
  lambda: number;
  /** which rules trained m, on how many pairs, and their estimated share of matches */
  training: { rule: string; pairs: number; matchShare: number; iterations: number }[];
}

export interface ScoredPair {
  left: string;
  right: string;
  /** index into the left / right input records */
  leftIndex: number;
  rightIndex: number;
  probability: number;
  /** log2 Bayes factor incl. the prior; Infinity for an ID-number match; for a cluster pair, its weakest link's */
  weight: number;
  /** cluster: not (confidently) linked directly, but through other records of the same cluster */
  basis: 'id-number' | 'score' | 'clerical' | 'cluster';
  /** in the review band without a decision yet */
  pendingReview: boolean;
  key: string;
  fingerprint: string;
}

export interface Refusal {
  side: 'left' | 'right';
  index: number;
  id: string;
  reason: string;
}

export interface LinkStats {
  records: number;
  candidatePairs: number;
  /** pairs compared: candidate pairs plus the random pairs sampled for u */
  pairsCompared: number;
  idNumberPairs: number;
  blockingRules: string[];
  ms: { prepare: number; block: number; compare: number; estimate: number; score: number; total: number };
}

export interface LinkResult {
  /** every pair judged a match: by ID number, by score at or above the threshold, or by a clerk */
  matches: ScoredPair[];
  /** undecided pairs in the review band (the ones at or above the threshold are in matches too) */
  review: ScoredPair[];
  /** records refused (an ID number that fails the GB 11643 check), with the reason */
  refused: Refusal[];
  /** decisions found in the store whose records changed since: queued again */
  staleDecisions: number;
  model: Model;
  stats: LinkStats;
}

export interface LinkInput {
  left: readonly LinkRecord[];
  /** absent: deduplicate `left` */
  right?: readonly LinkRecord[];
  /** names of the sources in pair keys (default 'left' / 'right'; in deduplication both 'left') */
  leftSource?: string;
  rightSource?: string;
}

export interface LinkOptions {
  settings?: Partial<LinkSettings>;
  /** score with this model instead of estimating one */
  model?: Model;
  store?: ReviewStore;
}

// ---------------------------------------------------------------------------------------------

class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  /** mulberry32 */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

interface Prepared {
  n: number;
  nLeft: number;
  /** dedupe: one set of records; link: left are 0..nLeft-1, right nLeft..n-1 */
  dedupe: boolean;
  ids: string[];
  sources: string[];
  /** feature of comparison k of record i at [i * K + k] */
  features: (Feature | null)[];
  /** fields the blocking keys read, feature per record */
  blockFeatures: Map<string, (Feature | null)[]>;
  /** valid ID numbers ('' when none) */
  idNumbers: string[];
  refused: Refusal[];
  active: boolean[];
  rawValues: string[][];
}

function deriveFullName(fields: Readonly<Record<string, string | undefined>>): string | undefined {
  const family = fields.family_name?.trim() ?? '';
  const given = fields.given_name?.trim() ?? '';
  if (!family && !given) return undefined;
  return hasHan(family + given) ? family + given : `${given} ${family}`.trim();
}

function prepare(input: LinkInput, settings: LinkSettings, specs: readonly ComparisonSpec[]): Prepared {
  const dedupe = input.right === undefined;
  const all = dedupe ? input.left : [...input.left, ...input.right!];
  const n = all.length;
  const K = specs.length;
  const leftSource = input.leftSource ?? 'left';
  const rightSource = dedupe ? leftSource : input.rightSource ?? 'right';
  const features: (Feature | null)[] = new Array(n * K).fill(null);
  const idNumbers: string[] = new Array(n).fill('');
  const refused: Refusal[] = [];
  const active: boolean[] = new Array(n).fill(true);
  const ids: string[] = new Array(n);
  const sources: string[] = new Array(n);
  const rawValues: string[][] = new Array(n);
  const wantFull = specs.some((s) => s.field === 'full_name') || settings.blocking.some((r) => r.on.some((x) => x.startsWith('full_name:')));
  // values repeat (names, cities, dates): prepare each distinct one once per comparison
  const caches = specs.map(() => new Map<string, Feature | null>());
  const blockFields = new Set<string>();
  for (const r of settings.blocking) for (const on of r.on) blockFields.add(on.split(':')[0]!);
  const specIndex = new Map(specs.map((s, k) => [s.field, k]));
  const blockFeatures = new Map<string, (Feature | null)[]>();
  const extraBlock = [...blockFields].filter((f) => !specIndex.has(f) && f !== settings.idField);
  const extraCaches = new Map(extraBlock.map((f) => [f, new Map<string, Feature | null>()]));
  for (const f of extraBlock) blockFeatures.set(f, new Array(n).fill(null));

  for (let i = 0; i < n; i++) {
    const rec = all[i]!;
    const left = i < input.left.length;
    ids[i] = rec.id;
    sources[i] = left ? leftSource : rightSource;
    const fields: Record<string, string | undefined> = { ...rec.fields };
    const rawId = fields[settings.idField]?.normalize('NFKC').replace(/\s+/g, '').toUpperCase() ?? '';
    if (rawId) {
      const check = checkIdNumber(rawId);
      if (check.ok) {
        idNumbers[i] = rawId;
        // the ID number carries the birth date and sex: use them where the record has none
        if (!fields.birth_date?.trim()) fields.birth_date = check.birthDate;
        if (!fields.sex?.trim()) fields.sex = check.sex;
      } else {
        refused.push({ side: left ? 'left' : 'right', index: left ? i : i - input.left.length, id: rec.id, reason: `${settings.idField} ${JSON.stringify(rawId.slice(0, 32))}: ${check.reason}` });
        if (settings.invalidIdNumber === 'refuse') active[i] = false;
      }
    }
    if (wantFull && !fields.full_name?.trim()) fields.full_name = deriveFullName(fields);
    const raws: string[] = new Array(K);
    for (let k = 0; k < K; k++) {
      const spec = specs[k]!;
      const raw = fields[spec.field]?.trim() ?? '';
      raws[k] = raw;
      if (!raw) continue;
      const cache = caches[k]!;
      let f = cache.get(raw);
      if (f === undefined) {
        f = COMPARATORS[spec.kind].prepare(raw, spec.field);
        cache.set(raw, f);
      }
      features[i * K + k] = f;
    }
    rawValues[i] = raws;
    for (const field of extraBlock) {
      const raw = fields[field]?.trim() ?? '';
      if (!raw) continue;
      const cache = extraCaches.get(field)!;
      let f = cache.get(raw);
      if (f === undefined) {
        f = COMPARATORS[kindOfField(field)].prepare(raw, field);
        cache.set(raw, f);
      }
      blockFeatures.get(field)![i] = f;
    }
  }
  for (const [field, k] of specIndex) {
    const col: (Feature | null)[] = new Array(n);
    for (let i = 0; i < n; i++) col[i] = features[i * K + k]!;
    blockFeatures.set(field, col);
  }
  return { n, nLeft: dedupe ? n : input.left.length, dedupe, ids, sources, features, blockFeatures, idNumbers, refused, active, rawValues };
}

function blockValue(f: Feature | null, key: BlockKey): string | null {
  if (!f) return null;
  switch (key) {
    case 'exact': return f.norm;
    case 'sound': return f.key;
    case 'sorted': return f.alt || f.key;
    case 'year': return f.norm.length >= 4 ? f.norm.slice(0, 4) : null;
    case 'initial': return f.key.slice(0, 1) || null;
    case 'prefix2': return f.key.slice(0, 2) || null;
  }
}

interface Candidates {
  a: Int32Array;
  b: Int32Array;
  count: number;
  /** candidate indexes each rule produced */
  byRule: { rule: string; fields: Set<string>; pairs: number[] }[];
}

function block(p: Prepared, settings: LinkSettings): Candidates {
  const seen = new Map<number, number>();
  let a = new Int32Array(1024);
  let b = new Int32Array(1024);
  let count = 0;
  const byRule: Candidates['byRule'] = [];
  const idRule = `${settings.idField}:exact`;
  const rules = [...settings.blocking];
  if (settings.identifierPairsPerRecord > 0) {
    for (const [field, col] of p.blockFeatures) {
      if (!field.startsWith('extra.')) continue;
      const counts = new Map<string, number>();
      for (let i = 0; i < p.n; i++) {
        const f = col[i];
        if (f && p.active[i]) counts.set(f.norm, (counts.get(f.norm) ?? 0) + 1);
      }
      let pairs = 0;
      for (const c of counts.values()) pairs += (c * (c - 1)) / 2;
      if (counts.size && pairs <= settings.identifierPairsPerRecord * p.n) rules.push({ on: [`${field}:exact`] });
    }
  }
  for (const rule of rules) {
    const parts = rule.on.map((s) => {
      const [field, key = 'exact'] = s.split(':') as [string, BlockKey | undefined];
      return { field, key: key as BlockKey };
    });
    const isId = rule.on.length === 1 && rule.on[0] === idRule;
    const cols = parts.map((x) => (x.field === settings.idField ? null : p.blockFeatures.get(x.field)));
    if (!isId && cols.some((c) => c === undefined || c === null)) continue; // a field no record has
    const blocks = new Map<string, number[]>();
    for (let i = 0; i < p.n; i++) {
      if (!p.active[i]) continue;
      let key: string | null;
      if (isId) key = p.idNumbers[i] || null;
      else {
        key = '';
        for (let x = 0; x < parts.length; x++) {
          const v = blockValue(cols[x]![i]!, parts[x]!.key);
          if (v === null || v === '') { key = null; break; }
          key += (x ? '\u001f' : '') + v;
        }
      }
      if (key === null) continue;
      const list = blocks.get(key);
      if (list) list.push(i);
      else blocks.set(key, [i]);
    }
    const pairs: number[] = [];
    let any = false;
    for (const list of blocks.values()) {
      if (list.length < 2 || list.length > settings.maxBlockSize) continue;
      for (let x = 0; x < list.length; x++) {
        const i = list[x]!;
        for (let y = x + 1; y < list.length; y++) {
          const j = list[y]!;
          // linking: only pairs across the two sources
          if (!p.dedupe && (i < p.nLeft) === (j < p.nLeft)) continue;
          const key = i * p.n + j;
          let c = seen.get(key);
          if (c === undefined) {
            if (count === a.length) {
              const na = new Int32Array(count * 2); na.set(a); a = na;
              const nb = new Int32Array(count * 2); nb.set(b); b = nb;
            }
            c = count++;
            a[c] = i;
            b[c] = j;
            seen.set(key, c);
          }
          pairs.push(c);
          any = true;
        }
      }
    }
    if (any || blocks.size) byRule.push({ rule: rule.on.join(' & '), fields: new Set(parts.map((x) => x.field)), pairs });
  }
  return { a, b, count, byRule };
}

/** the comparators of the comparisons, and the index of each name's swap partner (-1: none) */
interface Plan {
  K: number;
  cmp: Comparator[];
  swap: Int32Array;
}

function plan(specs: readonly ComparisonSpec[]): Plan {
  const swap = new Int32Array(specs.length).fill(-1);
  specs.forEach((s, k) => {
    if (s.kind === 'name' && s.swapWith) swap[k] = specs.findIndex((x) => x.field === s.swapWith && x.kind === 'name');
  });
  return { K: specs.length, cmp: specs.map((s) => COMPARATORS[s.kind]), swap };
}

function levelsOf(p: Prepared, pl: Plan, i: number, j: number, out: Uint8Array, offset: number): void {
  const K = pl.K;
  for (let k = 0; k < K; k++) {
    const fa = p.features[i * K + k];
    const fb = p.features[j * K + k];
    if (!fa || !fb) {
      out[offset + k] = 0;
      continue;
    }
    let l = pl.cmp[k]!.compare(fa, fb);
    const partner = pl.swap[k]!;
    if (l > NAME_SWAPPED_LEVEL && partner >= 0) {
      // this field of one record agrees with the partner field of the other, and the other way round
      const pa = p.features[i * K + partner];
      const pb = p.features[j * K + partner];
      if (pb && pl.cmp[k]!.compare(fa, pb) <= 3 && (!pa || pl.cmp[k]!.compare(pa, fb) <= 3)) l = NAME_SWAPPED_LEVEL;
    }
    out[offset + k] = l;
  }
}

/** u: the share of each level among random pairs (non-matches, nearly all). */
function estimateU(p: Prepared, specs: readonly ComparisonSpec[], pl: Plan, settings: LinkSettings): { u: number[][]; sampled: number } {
  const K = specs.length;
  const counts = specs.map((s) => new Float64Array(COMPARATORS[s.kind].levels.length));
  const activeIdx: number[] = [];
  for (let i = 0; i < p.n; i++) if (p.active[i]) activeIdx.push(i);
  const left = p.dedupe ? activeIdx : activeIdx.filter((i) => i < p.nLeft);
  const right = p.dedupe ? activeIdx : activeIdx.filter((i) => i >= p.nLeft);
  const total = p.dedupe ? (left.length * (left.length - 1)) / 2 : left.length * right.length;
  const buf = new Uint8Array(K);
  let sampled = 0;
  const add = (i: number, j: number) => {
    levelsOf(p, pl, i, j, buf, 0);
    for (let k = 0; k < K; k++) counts[k]![buf[k]!]!++;
    sampled++;
  };
  if (total <= settings.uSamplePairs) {
    for (let x = 0; x < left.length; x++) {
      if (p.dedupe) for (let y = x + 1; y < left.length; y++) add(left[x]!, left[y]!);
      else for (let y = 0; y < right.length; y++) add(left[x]!, right[y]!);
    }
  } else {
    const rng = new Rng(settings.seed);
    while (sampled < settings.uSamplePairs) {
      const i = left[rng.int(left.length)]!;
      const j = right[rng.int(right.length)]!;
      if (i === j) continue;
      add(i, j);
    }
  }
  // a small input has few random pairs: each u leans on a weak prior (U_PRIOR_PAIRS pseudo-pairs)
  const u = counts.map((c) => {
    const prior = priorU(c.length);
    let nonNull = 0;
    for (let l = 1; l < c.length; l++) nonNull += c[l]!;
    const out = [0];
    for (let l = 1; l < c.length; l++) out.push((c[l]! + U_PRIOR_PAIRS * prior[l]!) / (nonNull + U_PRIOR_PAIRS));
    return out;
  });
  return { u, sampled };
}

/** pseudo-pairs of the u prior, and pseudo-records of the term-frequency prior */
const U_PRIOR_PAIRS = 2000;
const TF_PRIOR_RECORDS = 100;

function priorU(levels: number): number[] {
  // random pairs: each agreeing level rare (0.3%), "else" the rest
  const out = [0];
  for (let l = 1; l < levels; l++) out.push(l === levels - 1 ? 1 - 0.003 * (levels - 2) : 0.003);
  return out;
}

function priorM(levels: number): number[] {
  // closest levels most likely among matches: 0.5^i, "else" 0.02
  const out = [0];
  for (let l = 1; l < levels; l++) out.push(l === levels - 1 ? 0.02 : Math.pow(0.5, l - 1));
  const sum = out.reduce((x, y) => x + y, 0);
  return out.map((x) => x / sum);
}

/** EM over the distinct level patterns (with counts) of some comparisons; u fixed, m and lambda free. */
function em(patterns: Uint8Array, counts: Float64Array, width: number, comps: number[], m: number[][], u: number[][], lambda0: number, settings: LinkSettings): { lambda: number; iterations: number } {
  const P = counts.length;
  let lambda = lambda0;
  let iterations = 0;
  const acc = m.map((x) => new Float64Array(x.length));
  for (let it = 0; it < settings.emMaxIterations; it++) {
    iterations = it + 1;
    for (const a of acc) a.fill(0);
    let matchMass = 0;
    let total = 0;
    for (let q = 0; q < P; q++) {
      let pm = lambda;
      let pu = 1 - lambda;
      for (let x = 0; x < width; x++) {
        const l = patterns[q * width + x]!;
        if (l === 0) continue;
        const k = comps[x]!;
        pm *= m[k]![l]!;
        pu *= u[k]![l]!;
      }
      const post = pm / (pm + pu);
      const c = counts[q]!;
      matchMass += c * post;
      total += c;
      for (let x = 0; x < width; x++) {
        const l = patterns[q * width + x]!;
        if (l !== 0) acc[comps[x]!]![l]! += c * post;
      }
    }
    let change = Math.abs(matchMass / total - lambda);
    lambda = Math.min(Math.max(matchMass / total, 1e-9), 1 - 1e-9);
    for (const k of comps) {
      const a = acc[k]!;
      let sum = 0;
      for (let l = 1; l < a.length; l++) sum += a[l]! + 1e-6;
      if (sum <= 1e-6 * a.length) continue;
      for (let l = 1; l < a.length; l++) {
        const v = (a[l]! + 1e-6) / sum;
        change = Math.max(change, Math.abs(v - m[k]![l]!));
        m[k]![l] = v;
      }
    }
    if (change < settings.emTolerance) break;
  }
  return { lambda, iterations };
}

function estimate(p: Prepared, cand: Candidates, levels: Uint8Array, probabilistic: Uint8Array, specs: readonly ComparisonSpec[], pl: Plan, settings: LinkSettings): { model: Model; sampled: number } {
  const K = specs.length;
  const { u, sampled } = estimateU(p, specs, pl, settings);
  const sums = specs.map((s) => new Array<number>(COMPARATORS[s.kind].levels.length).fill(0));
  const trainedBy = new Array<number>(K).fill(0);
  const training: Model['training'] = [];
  for (const r of cand.byRule) {
    const comps: number[] = [];
    for (let k = 0; k < K; k++) if (!r.fields.has(specs[k]!.field)) comps.push(k);
    if (!comps.length) continue;
    // distinct patterns over the comparisons this rule did not block on
    const index = new Map<string, number>();
    const pat: number[] = [];
    const cnt: number[] = [];
    let pairs = 0;
    for (const c of r.pairs) {
      if (!probabilistic[c]) continue;
      pairs++;
      let key = '';
      for (const k of comps) key += String.fromCharCode(48 + levels[c * K + k]!);
      let q = index.get(key);
      if (q === undefined) {
        q = cnt.length;
        index.set(key, q);
        cnt.push(0);
        for (const k of comps) pat.push(levels[c * K + k]!);
      }
      cnt[q]!++;
    }
    if (pairs < 50) continue; // too few pairs to learn from
    const m = specs.map((s) => priorM(COMPARATORS[s.kind].levels.length));
    const res = em(Uint8Array.from(pat), Float64Array.from(cnt), comps.length, comps, m, u, 0.3, settings);
    training.push({ rule: r.rule, pairs, matchShare: res.lambda, iterations: res.iterations });
    if (res.lambda * pairs < 5) continue; // (nearly) no matches among them: nothing to learn m from
    for (const k of comps) {
      trainedBy[k]!++;
      for (let l = 1; l < m[k]!.length; l++) sums[k]![l]! += m[k]![l]!;
    }
  }
  const comparisons: ComparisonModel[] = specs.map((s, k) => {
    const lv = COMPARATORS[s.kind].levels;
    const m = trainedBy[k] ? sums[k]!.map((x) => x / trainedBy[k]!) : priorM(lv.length);
    m[0] = 0;
    return { field: s.field, kind: s.kind, tf: !!s.tf, ...(s.swapWith ? { swapWith: s.swapWith } : {}), levels: lv, m, u: u[k]!, trainedBy: trainedBy[k]! };
  });
  // lambda: EM over all candidate pairs with m and u fixed; pairs outside blocking count as non-matches
  const totalPairs = p.dedupe ? (p.n * (p.n - 1)) / 2 : p.nLeft * (p.n - p.nLeft);
  const bf = bayesTables(comparisons);
  let lambda = Math.min(0.5, Math.max(1e-9, cand.count / Math.max(1, totalPairs) / 2));
  for (let it = 0; it < settings.emMaxIterations; it++) {
    const prior = Math.log2(lambda / (1 - lambda));
    let mass = 0;
    for (let c = 0; c < cand.count; c++) {
      if (!probabilistic[c]) continue;
      let w = prior;
      for (let k = 0; k < K; k++) w += bf[k]![levels[c * K + k]!]!;
      mass += 1 / (1 + Math.pow(2, -w));
    }
    // one pseudo-match: a file without duplicates must not drive lambda to 0 (where no pair could ever match)
    const next = Math.min(Math.max((mass + 1) / (totalPairs + 1), 1e-12), 0.5);
    const done = Math.abs(next - lambda) / lambda < 1e-4;
    lambda = next;
    if (done) break;
  }
  return { model: { comparisons, lambda, training }, sampled };
}

/** log2(m/u) per comparison and level; 0 for the null level */
function bayesTables(comps: readonly ComparisonModel[]): Float64Array[] {
  return comps.map((c) => {
    const t = new Float64Array(c.levels.length);
    for (let l = 1; l < t.length; l++) t[l] = Math.log2(Math.max(c.m[l]!, 1e-12) / Math.max(c.u[l]!, 1e-12));
    return t;
  });
}

function resolveSettings(s: Partial<LinkSettings> | undefined): LinkSettings {
  const out = { ...DEFAULT_SETTINGS, ...s, review: { ...DEFAULT_SETTINGS.review, ...s?.review } };
  if (!(out.threshold >= 0 && out.threshold <= 1)) throw new RangeError(`threshold must be between 0 and 1, got ${out.threshold}`);
  if (!(out.review.lower <= out.review.upper)) throw new RangeError('review.lower must not exceed review.upper');
  return out;
}

function presentFields(input: LinkInput): Set<string> {
  const out = new Set<string>();
  for (const side of [input.left, input.right ?? []]) for (const r of side) for (const [f, v] of Object.entries(r.fields)) if (v && v.trim()) out.add(f);
  return out;
}

/**
 * Scores candidate pairs (no review store): the synchronous core of link(). Pairs below the review
 * band's lower bound and the threshold are dropped.
 */
export function scorePairs(input: LinkInput, options: Omit<LinkOptions, 'store'> = {}): { pairs: ScoredPair[]; refused: Refusal[]; model: Model; stats: LinkStats; settings: LinkSettings } {
  const t0 = performance.now();
  const settings = resolveSettings(options.settings);
  const specs: ComparisonSpec[] = options.model
    ? options.model.comparisons.map((c) => ({ field: c.field, kind: c.kind, tf: c.tf, ...(c.swapWith ? { swapWith: c.swapWith } : {}) }))
    : [...(settings.comparisons ?? defaultComparisons(presentFields(input), settings.idField))];
  const K = specs.length;
  const pl = plan(specs);
  const p = prepare(input, settings, specs);
  const t1 = performance.now();
  const cand = block(p, settings);
  const t2 = performance.now();
  const levels = new Uint8Array(cand.count * K);
  // 1: scored by the model; 0: both have valid ID numbers, decided by them
  const probabilistic = new Uint8Array(cand.count);
  let idPairs = 0;
  for (let c = 0; c < cand.count; c++) {
    const i = cand.a[c]!, j = cand.b[c]!;
    if (p.idNumbers[i] && p.idNumbers[j]) {
      idPairs++;
      continue;
    }
    probabilistic[c] = 1;
    levelsOf(p, pl, i, j, levels, c * K);
  }
  const t3 = performance.now();
  let model = options.model;
  let sampled = 0;
  if (!model) {
    const est = estimate(p, cand, levels, probabilistic, specs, pl, settings);
    model = est.model;
    sampled = est.sampled;
  }
  const t4 = performance.now();
  // term frequencies of the exact values of tf comparisons
  const tfU = new Float64Array(p.n * K).fill(NaN);
  for (let k = 0; k < K; k++) {
    if (!model.comparisons[k]!.tf) continue;
    const counts = new Map<string, number>();
    let nonNull = 0;
    for (let i = 0; i < p.n; i++) {
      const f = p.features[i * K + k];
      if (!f || !p.active[i]) continue;
      nonNull++;
      counts.set(f.norm, (counts.get(f.norm) ?? 0) + 1);
    }
    // smoothed towards the average u of the exact level, so a handful of records cannot make a name look common
    const u1 = model.comparisons[k]!.u[1]!;
    for (let i = 0; i < p.n; i++) {
      const f = p.features[i * K + k];
      if (f && p.active[i]) tfU[i * K + k] = (counts.get(f.norm)! + TF_PRIOR_RECORDS * u1) / (nonNull + TF_PRIOR_RECORDS);
    }
  }
  const bf = bayesTables(model.comparisons);
  const logM1 = model.comparisons.map((c) => Math.log2(Math.max(c.m[1]!, 1e-12)));
  const prior = Math.log2(model.lambda / (1 - model.lambda));
  const floor = Math.min(settings.threshold, settings.review.lower);
  const pairs: ScoredPair[] = [];
  const left = (i: number) => (p.dedupe || i < p.nLeft ? i : i - p.nLeft);
  const make = (c: number, probability: number, weight: number, basis: ScoredPair['basis']): ScoredPair => {
    let i = cand.a[c]!, j = cand.b[c]!;
    if (p.dedupe && p.ids[i]! > p.ids[j]!) [i, j] = [j, i];
    const ka = recordKey(p.sources[i]!, p.ids[i]!);
    const kb = recordKey(p.sources[j]!, p.ids[j]!);
    return {
      left: p.ids[i]!, right: p.ids[j]!, leftIndex: left(i), rightIndex: left(j), probability, weight, basis, pendingReview: false,
      key: pairKey(ka, kb),
      fingerprint: fingerprint([...p.rawValues[i]!, '\u001e', ...p.rawValues[j]!, '\u001e', p.idNumbers[i]!, p.idNumbers[j]!]),
    };
  };
  for (let c = 0; c < cand.count; c++) {
    const i = cand.a[c]!, j = cand.b[c]!;
    if (!probabilistic[c]) {
      if (p.idNumbers[i] === p.idNumbers[j]) pairs.push(make(c, 1, Infinity, 'id-number'));
      continue;
    }
    let w = prior;
    for (let k = 0; k < K; k++) {
      const l = levels[c * K + k]!;
      if (l === 1 && !Number.isNaN(tfU[i * K + k]!)) {
        // exact agreement on a value as common as tf: u is its frequency (Splink's tf adjustment)
        w += logM1[k]! - Math.log2(Math.max(tfU[i * K + k]!, 1e-12));
      } else {
        w += bf[k]![l]!;
      }
    }
    const prob = 1 / (1 + Math.pow(2, -w));
    if (prob >= floor) pairs.push(make(c, prob, w, 'score'));
  }
  const t5 = performance.now();
  const stats: LinkStats = {
    records: p.n,
    candidatePairs: cand.count,
    pairsCompared: cand.count - idPairs + sampled,
    idNumberPairs: idPairs,
    blockingRules: cand.byRule.map((r) => r.rule),
    ms: { prepare: t1 - t0, block: t2 - t1, compare: t3 - t2, estimate: t4 - t3, score: t5 - t4, total: t5 - t0 },
  };
  return { pairs, refused: p.refused, model, stats, settings };
}

/**
 * Links two sets of records (or deduplicates one): pairs judged a match, the pairs waiting for
 * clerical review, and the records refused. With a store, decisions already made are applied
 * (a match decision makes a match whatever the score; a non-match one removes it).
 */
export async function link(input: LinkInput, options: LinkOptions = {}): Promise<LinkResult> {
  const { pairs, refused, model, stats, settings } = scorePairs(input, options);
  const store = options.store;
  const decided = new Map<string, ReviewDecision>();
  const lookup = pairs.filter((x) => x.basis !== 'id-number');
  if (store && lookup.length) {
    if (store.getMany) {
      for (const [k, d] of await store.getMany(lookup.map((x) => x.key))) decided.set(k, d);
    } else {
      for (const x of lookup) {
        const d = await store.get(x.key);
        if (d) decided.set(x.key, d);
      }
    }
  }
  const matches: ScoredPair[] = [];
  const review: ScoredPair[] = [];
  let stale = 0;
  for (const x of pairs) {
    if (x.basis === 'id-number') {
      matches.push(x);
      continue;
    }
    let d = decided.get(x.key);
    if (d && d.fingerprint && d.fingerprint !== x.fingerprint) {
      stale++;
      d = undefined;
    }
    if (d) {
      if (d.decision === 'match') matches.push({ ...x, basis: 'clerical' });
      continue;
    }
    const inBand = x.probability >= settings.review.lower && x.probability < settings.review.upper;
    if (inBand) {
      x.pendingReview = true;
      review.push(x);
    }
    if (x.probability >= settings.threshold) matches.push(x);
  }
  if (settings.clusterThreshold !== null) {
    const inferred = clusterPairs(input, matches, pairs, decided, settings);
    if (store && inferred.length) {
      const more = store.getMany ? await store.getMany(inferred.map((x) => x.key)) : new Map<string, ReviewDecision>();
      if (!store.getMany) for (const x of inferred) { const d = await store.get(x.key); if (d) more.set(x.key, d); }
      for (const x of inferred) if (more.get(x.key)?.decision !== 'non-match') matches.push(x);
    } else {
      matches.push(...inferred);
    }
  }
  return { matches, review, refused, staleDecisions: stale, model, stats };
}

/** Pairs in the same cluster of confident links that are not matches yet (and no clerk said are not). */
function clusterPairs(input: LinkInput, matches: readonly ScoredPair[], scored: readonly ScoredPair[], decided: Map<string, ReviewDecision>, settings: LinkSettings): ScoredPair[] {
  const dedupe = input.right === undefined;
  const nLeft = input.left.length;
  const n = dedupe ? nLeft : nLeft + input.right!.length;
  const node = (x: ScoredPair, side: 'l' | 'r') => (side === 'l' ? x.leftIndex : dedupe ? x.rightIndex : nLeft + x.rightIndex);
  const parent = new Int32Array(n).map((_, i) => i);
  const weakest = new Float64Array(n).fill(Infinity); // per root: the lowest link weight in the cluster
  const find = (x: number): number => {
    while (parent[x] !== x) x = parent[x] = parent[parent[x]!]!;
    return x;
  };
  const threshold = settings.clusterThreshold!;
  for (const x of matches) {
    if (x.basis === 'score' && x.probability < threshold) continue;
    const a = find(node(x, 'l'));
    const b = find(node(x, 'r'));
    const w = Math.min(weakest[a]!, weakest[b]!, x.weight);
    parent[a] = b;
    weakest[b] = w;
  }
  const members = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const r = find(i);
    const list = members.get(r);
    if (list) list.push(i);
    else members.set(r, [i]);
  }
  const have = new Set(matches.map((x) => x.key));
  const probability = new Map(scored.map((x) => [x.key, x]));
  const leftSource = input.leftSource ?? 'left';
  const rightSource = dedupe ? leftSource : input.rightSource ?? 'right';
  const out: ScoredPair[] = [];
  for (const [root, list] of members) {
    if (list.length < 3 || list.length > settings.maxClusterSize) continue;
    const w = weakest[root]!;
    for (let x = 0; x < list.length; x++) {
      for (let y = x + 1; y < list.length; y++) {
        let i = list[x]!, j = list[y]!;
        if (!dedupe && (i < nLeft) === (j < nLeft)) continue; // linking: pairs across the two files only
        if (!dedupe && i >= nLeft) [i, j] = [j, i];
        const li = input.left[i]!;
        const rj = dedupe ? input.left[j]! : input.right![j - nLeft]!;
        let [l, r, ls, rs, lix, rix] = [li.id, rj.id, leftSource, rightSource, i, dedupe ? j : j - nLeft];
        if (dedupe && l > r) [l, r, lix, rix] = [r, l, rix, lix];
        const key = pairKey(recordKey(ls, l), recordKey(rs, r));
        if (have.has(key) || decided.get(key)?.decision === 'non-match') continue;
        const direct = probability.get(key);
        const weight = w === Infinity ? Infinity : w;
        out.push({
          left: l, right: r, leftIndex: lix, rightIndex: rix,
          probability: weight === Infinity ? 1 : 1 / (1 + Math.pow(2, -weight)),
          weight, basis: 'cluster', pendingReview: false, key, fingerprint: direct?.fingerprint ?? '',
        });
      }
    }
  }
  return out;
}
