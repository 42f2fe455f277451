// Clerical review: pairs whose match probability falls between the two review thresholds wait for
// a person's decision; decisions are remembered under a pair key and reused by later runs. The
// engine only needs get/put: the registry keeps decisions in PostgreSQL, the CLI in a JSON file.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export type Decision = 'match' | 'non-match';

export interface ReviewDecision {
  decision: Decision;
  /** who decided (a staff id, 'cli', ...) */
  by?: string;
  /** ISO time of the decision */
  at?: string;
  /**
   * fingerprint of the two records' compared values when decided: a decision about records that
   * have changed since is stale, and the pair is queued again
   */
  fingerprint?: string;
  note?: string;
}

export interface ReviewStore {
  get(pairKey: string): ReviewDecision | undefined | Promise<ReviewDecision | undefined>;
  put(pairKey: string, decision: ReviewDecision): void | Promise<void>;
  /** optional batch read (a database answers many keys in one query) */
  getMany?(pairKeys: readonly string[]): Map<string, ReviewDecision> | Promise<Map<string, ReviewDecision>>;
}

/** A record's key in a pair: the source it came from and its id there. */
export function recordKey(source: string, id: string): string {
  return `${source}:${id}`;
}

/** The key of a pair, the same whichever record comes first. */
export function pairKey(a: string, b: string): string {
  return a <= b ? `${a}|${b}` : `${b}|${a}`;
}

/** A short digest of what a decision was made on. */
export function fingerprint(parts: readonly string[]): string {
  return crypto.createHash('sha256').update(parts.join('\u001f')).digest('base64url').slice(0, 16);
}

export class MemoryReviewStore implements ReviewStore {
  readonly decisions = new Map<string, ReviewDecision>();
  get(key: string): ReviewDecision | undefined {
    return this.decisions.get(key);
  }
  put(key: string, d: ReviewDecision): void {
    this.decisions.set(key, d);
  }
  getMany(keys: readonly string[]): Map<string, ReviewDecision> {
    const out = new Map<string, ReviewDecision>();
    for (const k of keys) {
      const d = this.decisions.get(k);
      if (d) out.set(k, d);
    }
    return out;
  }
}

/** A pair waiting for a decision, as the JSON file lists it for a clerk. */
export interface PendingReview {
  key: string;
  left: string;
  right: string;
  probability: number;
  fingerprint: string;
  /** the compared values of both records, to decide on */
  values?: Record<string, [string, string]>;
}

export class ReviewFileError extends Error {}

const MAX_FILE = 256 * 1024 * 1024;

/**
 * Decisions in a JSON file: `{"decisions": {KEY: {decision, by, at, fingerprint}}, "pending": [...]}`.
 * A clerk moves a pending pair into `decisions` (or sets its `decision`), and the next run uses it.
 */
export class JsonFileReviewStore extends MemoryReviewStore {
  pending: PendingReview[] = [];
  private constructor(readonly file: string) {
    super();
  }

  static load(file: string): JsonFileReviewStore {
    const store = new JsonFileReviewStore(file);
    let text: string;
    try {
      const st = fs.statSync(file);
      if (!st.isFile()) throw new ReviewFileError(`${file} is not a file`);
      if (st.size > MAX_FILE) throw new ReviewFileError(`${file} is larger than ${MAX_FILE} bytes`);
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return store; // a new file
      throw err instanceof ReviewFileError ? err : new ReviewFileError(`cannot read ${file}: ${(err as Error).message}`);
    }
    let data: unknown;
    try {
      data = JSON.parse(text.replace(/^\uFEFF/, ''));
    } catch (err) {
      throw new ReviewFileError(`${file} is not valid JSON: ${(err as Error).message}`);
    }
    if (!data || typeof data !== 'object' || Array.isArray(data)) throw new ReviewFileError(`${file}: expected an object with "decisions"`);
    const { decisions, pending } = data as { decisions?: unknown; pending?: unknown };
    if (decisions !== undefined) {
      if (!decisions || typeof decisions !== 'object' || Array.isArray(decisions)) throw new ReviewFileError(`${file}: "decisions" must be an object`);
      for (const [key, d] of Object.entries(decisions)) store.put(key, checkDecision(file, key, d));
    }
    if (Array.isArray(pending)) {
      // a pending pair whose `decision` a clerk filled in counts as decided
      for (const p of pending) {
        if (!p || typeof p !== 'object' || typeof (p as PendingReview).key !== 'string') continue;
        const d = (p as { decision?: unknown }).decision;
        if (d === 'match' || d === 'non-match') {
          store.put((p as PendingReview).key, checkDecision(file, (p as PendingReview).key, { decision: d, fingerprint: (p as PendingReview).fingerprint, by: (p as { by?: string }).by }));
        }
      }
    }
    return store;
  }

  /** Writes the decisions and the pairs now waiting (atomically: a temporary file renamed). */
  save(): void {
    const decisions: Record<string, ReviewDecision> = {};
    for (const [k, d] of [...this.decisions].sort((a, b) => (a[0] < b[0] ? -1 : 1))) decisions[k] = d;
    const body = JSON.stringify({ decisions, pending: this.pending.map((p) => ({ ...p, decision: null })) }, null, 2) + '\n';
    const tmp = path.join(path.dirname(this.file), `.${path.basename(this.file)}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, body);
    fs.renameSync(tmp, this.file);
  }
}

function checkDecision(file: string, key: string, d: unknown): ReviewDecision {
  if (!d || typeof d !== 'object') throw new ReviewFileError(`${file}: decision for ${JSON.stringify(key)} must be an object`);
  const { decision, by, at, fingerprint, note } = d as Record<string, unknown>;
  if (decision !== 'match' && decision !== 'non-match') throw new ReviewFileError(`${file}: decision for ${JSON.stringify(key)} must be "match" or "non-match"`);
  const out: ReviewDecision = { decision };
  if (typeof by === 'string') out.by = by;
  if (typeof at === 'string') out.at = at;
  if (typeof fingerprint === 'string') out.fingerprint = fingerprint;
  if (typeof note === 'string') out.note = note;
  return out;
}
