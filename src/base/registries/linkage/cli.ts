// `gusu link --mapping m.json a.csv [b.csv] --out pairs.csv [--threshold P] [--decisions d.json]`:
// the engine over any CSV. One file is deduplicated, two are linked. The mapping names the
// record-id column and maps columns to canonical fields (several columns to one field are joined
// with a space; `extra.NAME` for any other column, compared as text).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse as csvParse, CsvError } from 'csv-parse';
import { UsageError, type Command } from '../../../module.ts';
import { CANONICAL_FIELDS, isKnownField } from './comparators.ts';
import { link, type LinkRecord, type LinkResult, type LinkSettings } from './engine.ts';
import { JsonFileReviewStore, ReviewFileError } from './review.ts';

export const LINK_USAGE = 'gusu link --mapping MAPPING.json A.csv [B.csv] --out PAIRS.csv [--threshold P] [--decisions DECISIONS.json] [--pairs-only]';

/** one file's columns: the record id and, per field, the column(s) read */
export interface FileMapping {
  id: string;
  fields: Record<string, string[]>;
}

/** `{ "id": COL, "fields": { FIELD: COL | [COL, ...] }, "right"?: { same, for B.csv } }` */
export interface Mapping {
  left: FileMapping;
  right: FileMapping;
}

const MAX_MAPPING_BYTES = 1024 * 1024;
/** the longest CSV record read (a 10 MB line is a broken or hostile file, not a person) */
export const MAX_RECORD_CHARS = 1024 * 1024;

function fileMapping(v: unknown, where: string): FileMapping {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`${where}: expected an object with "id" and "fields"`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['id', 'fields', 'right', 'description'].includes(k)) throw new UsageError(`${where}: unknown key ${JSON.stringify(k)} (expected "id", "fields", "right")`);
  if (typeof o.id !== 'string' || !o.id) throw new UsageError(`${where}: "id" must name the record-id column`);
  if (!o.fields || typeof o.fields !== 'object' || Array.isArray(o.fields)) throw new UsageError(`${where}: "fields" must map canonical fields to columns`);
  const fields: Record<string, string[]> = {};
  for (const [field, cols] of Object.entries(o.fields as Record<string, unknown>)) {
    if (!isKnownField(field)) {
      throw new UsageError(`${where}: unknown field ${JSON.stringify(field)}; expected one of ${Object.keys(CANONICAL_FIELDS).join(', ')} or extra.NAME`);
    }
    const list = typeof cols === 'string' ? [cols] : cols;
    if (!Array.isArray(list) || !list.length || !list.every((c) => typeof c === 'string' && c)) {
      throw new UsageError(`${where}: field ${JSON.stringify(field)} must name a column or a list of columns`);
    }
    fields[field] = list as string[];
  }
  if (!Object.keys(fields).length) throw new UsageError(`${where}: "fields" maps no column`);
  return { id: o.id, fields };
}

export function parseMapping(text: string, where = 'mapping'): Mapping {
  let v: unknown;
  try {
    v = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new UsageError(`${where} is not valid JSON: ${(err as Error).message}`);
  }
  const left = fileMapping(v, where);
  const r = (v as { right?: unknown }).right;
  return { left, right: r === undefined ? left : fileMapping(r, `${where} (right)`) };
}

export function readMapping(file: string): Mapping {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new UsageError(`mapping ${file} not found`);
  }
  if (!st.isFile()) throw new UsageError(`mapping ${file} is not a file`);
  if (st.size > MAX_MAPPING_BYTES) throw new UsageError(`mapping ${file} is larger than ${MAX_MAPPING_BYTES} bytes`);
  return parseMapping(fs.readFileSync(file, 'utf8'), `mapping ${file}`);
}

/** Reads one CSV (BOM, quotes, CRLF) into records by the mapping; usage errors name the file and line. */
export async function readRecords(file: string, mapping: FileMapping): Promise<LinkRecord[]> {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new UsageError(`${file} not found`);
  }
  if (!st.isFile()) throw new UsageError(`${file} is not a file`);
  if (st.size === 0) throw new UsageError(`${file} is empty: expected a header row`);
  const parser = fs.createReadStream(file).pipe(
    csvParse({ bom: true, trim: true, skip_empty_lines: true, relax_column_count: true, max_record_size: MAX_RECORD_CHARS }),
  );
  const records: LinkRecord[] = [];
  const seen = new Set<string>();
  let header: string[] | null = null;
  let idCol = -1;
  let cols: [string, number[]][] = [];
  try {
    for await (const row of parser as AsyncIterable<string[]>) {
      if (!header) {
        header = row.map((h) => h.trim());
        const at = (c: string) => {
          const i = header!.indexOf(c);
          if (i < 0) throw new UsageError(`${file}: the mapping names column ${JSON.stringify(c)}, which the header does not have (columns: ${header!.slice(0, 30).map((h) => JSON.stringify(h.slice(0, 40))).join(', ')})`);
          return i;
        };
        idCol = at(mapping.id);
        cols = Object.entries(mapping.fields).map(([f, cs]) => [f, cs.map(at)]);
        continue;
      }
      const line = (parser as unknown as { info: { lines: number } }).info.lines - 1; // the line read ended the record
      const id = row[idCol]?.trim() ?? '';
      if (!id) throw new UsageError(`${file} line ${line}: empty record id (column ${JSON.stringify(mapping.id)})`);
      if (seen.has(id)) throw new UsageError(`${file} line ${line}: record id ${JSON.stringify(id.slice(0, 64))} appears twice`);
      seen.add(id);
      const fields: Record<string, string> = {};
      for (const [f, idx] of cols) {
        let v = '';
        for (const i of idx) {
          const x = row[i]?.trim();
          if (x) v = v ? `${v} ${x}` : x;
        }
        if (v) fields[f] = v;
      }
      records.push({ id, fields });
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    if (err instanceof CsvError) throw new UsageError(`${file}: not a readable CSV: ${err.message.replace(/\s*\n\s*/g, ' ').slice(0, 300)}`);
    throw err;
  }
  if (!header) throw new UsageError(`${file} is empty: expected a header row`);
  return records;
}

const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const printable = (s: string) => s.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

function csvField(s: string): string {
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replace(/"/g, '""')}"` : s;
}

export function pairsCsv(result: LinkResult): string {
  const lines = ['left_id,right_id,score'];
  for (const p of result.matches) lines.push(`${csvField(p.left)},${csvField(p.right)},${Number(p.probability.toFixed(6))}`);
  return lines.join('\n') + '\n';
}

export interface LinkRun {
  result: LinkResult;
  records: number;
}

/** What the command does, for callers that want the result (the accuracy benchmark, tests). */
export async function runLink(args: string[], log: (s: string) => void = (s) => process.stderr.write(s)): Promise<LinkRun> {
  let values: Record<string, string | undefined>;
  let positionals: string[];
  let pairsOnly = false;
  try {
    const r = parseArgs({
      args,
      options: { mapping: { type: 'string' }, out: { type: 'string' }, threshold: { type: 'string' }, decisions: { type: 'string' }, 'pairs-only': { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
    values = r.values as Record<string, string | undefined>;
    pairsOnly = r.values['pairs-only'] === true;
    positionals = r.positionals;
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\s*\n\s*/g, ' '));
  }
  if (!values.mapping) throw new UsageError('--mapping MAPPING.json is required');
  if (!values.out) throw new UsageError('--out PAIRS.csv is required (- for standard output)');
  if (positionals.length < 1 || positionals.length > 2) throw new UsageError(`expects one CSV file (deduplicate) or two (link), got ${positionals.length}`);
  const settings: Partial<LinkSettings> = {};
  if (values.threshold !== undefined) {
    const t = String(values.threshold);
    if (!/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(t)) throw new UsageError(`--threshold expects a probability from 0 to 1, got ${JSON.stringify(t)}`);
    settings.threshold = Number(t);
  }
  // --pairs-only: each pair judged on its own score, no matches inferred through clusters
  if (pairsOnly) settings.clusterThreshold = null;
  const mapping = readMapping(values.mapping);
  for (const f of positionals) if (!fs.existsSync(f)) throw new UsageError(`${f} not found`);
  let store: JsonFileReviewStore | undefined;
  if (values.decisions) {
    try {
      store = JsonFileReviewStore.load(values.decisions);
    } catch (err) {
      if (err instanceof ReviewFileError) throw new UsageError(err.message);
      throw err;
    }
  }
  const [a, b] = positionals as [string, string | undefined];
  const left = await readRecords(a, mapping.left);
  const right = b === undefined ? undefined : await readRecords(b, mapping.right);
  const leftSource = path.basename(a);
  const rightSource = b === undefined ? undefined : path.basename(b) === leftSource ? `${leftSource}#2` : path.basename(b);
  const result = await link({ left, right, leftSource, rightSource }, { settings, store });
  const body = pairsCsv(result);
  if (values.out === '-') process.stdout.write(body);
  else {
    const tmp = path.join(path.dirname(values.out), `.${path.basename(values.out)}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, body);
    fs.renameSync(tmp, values.out);
  }
  if (store) {
    store.pending = result.review.map((p) => ({ key: p.key, left: p.left, right: p.right, probability: Number(p.probability.toFixed(6)), fingerprint: p.fingerprint }));
    store.save();
  }
  const s = result.stats;
  const byId = result.matches.filter((m) => m.basis === 'id-number').length;
  const byClerk = result.matches.filter((m) => m.basis === 'clerical').length;
  log(
    `${b === undefined ? 'deduplicated' : 'linked'} ${s.records} records: ${s.candidatePairs} candidate pairs, ${result.matches.length} matches` +
      ` (${byId} by ID number, ${byClerk} by clerical decision), ${result.review.length} waiting for review${store ? ` (in ${values.decisions})` : ''}` +
      `${result.staleDecisions ? `, ${result.staleDecisions} decisions stale (records changed)` : ''}, ${result.refused.length} refused, ${(s.ms.total / 1000).toFixed(2)} s\n`,
  );
  for (const r of result.refused.slice(0, 10)) log(`  refused ${r.side} record ${printable(JSON.stringify(r.id.slice(0, 64)))}: ${printable(r.reason)}\n`);
  if (result.refused.length > 10) log(`  ... and ${result.refused.length - 10} more refused\n`);
  return { result, records: s.records };
}

export const linkCommand: Command = {
  summary: 'deduplicate one CSV or link two: pairs of records of the same person or entity, with match probabilities',
  usage: LINK_USAGE,
  async run(args) {
    await runLink(args);
    return 0;
  },
};
