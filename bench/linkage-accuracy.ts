// Accuracy of the record-linkage engine on public benchmarks, through the `gusu link` command's
// code path (runLink: the same mapping parsing, CSV reading, defaults and output as the CLI):
// pairwise precision, recall and F1 of deduplicating each file, against the truth each data set
// carries (FEBRL: rec-N-org / rec-N-dup-k share N; fake_1000: the cluster column).
//   node --import tsx bench/linkage-accuracy.ts [--data ../shared/data/linkage] [--threshold P] [--pairs-only]
// Prints a table and, last, one JSON line. Reads the data where it is; never copies it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse } from 'csv-parse/sync';
import { runLink } from '../src/base/registries/linkage/index.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const mappings = path.join(root, 'src/base/registries/linkage/benchmarks');

export interface DatasetSpec {
  name: string;
  file: string;
  mapping: string;
  /** the record's entity, from the raw CSV row */
  truth: (row: Record<string, string>) => string;
  idColumn: string;
  splink?: { f1: number; precision: number; recall: number; at: string };
}

export function datasets(data: string): DatasetSpec[] {
  const febrlTruth = (row: Record<string, string>) => /^rec-(\d+)-/.exec(row.rec_id!)![1]!;
  return [
    { name: 'febrl1', file: path.join(data, 'febrl/dataset1.csv'), mapping: path.join(mappings, 'febrl.json'), truth: febrlTruth, idColumn: 'rec_id' },
    { name: 'febrl2', file: path.join(data, 'febrl/dataset2.csv'), mapping: path.join(mappings, 'febrl.json'), truth: febrlTruth, idColumn: 'rec_id' },
    { name: 'febrl3', file: path.join(data, 'febrl/dataset3.csv'), mapping: path.join(mappings, 'febrl.json'), truth: febrlTruth, idColumn: 'rec_id',
      splink: { f1: 0.9929, precision: 0.9997, recall: 0.9862, at: 'p=0.5' } },
    { name: 'fake_1000', file: path.join(data, 'splink/fake_1000.csv'), mapping: path.join(mappings, 'fake_1000.json'), truth: (r) => r.cluster!, idColumn: 'unique_id',
      splink: { f1: 0.8617, precision: 0.964, recall: 0.7789, at: 'best F1, p=0.067' } },
  ];
}

export interface Accuracy {
  dataset: string;
  records: number;
  truePairs: number;
  predicted: number;
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
  f1: number;
  candidatePairs: number;
  pairsCompared: number;
  seconds: number;
  recordsPerSecond: number;
}

export async function measure(d: DatasetSpec, threshold?: string, pairsOnly = false): Promise<Accuracy> {
  const rows = parse(fs.readFileSync(d.file), { bom: true, columns: (h: string[]) => h.map((x) => x.trim()), trim: true, skip_empty_lines: true }) as Record<string, string>[];
  const entity = new Map(rows.map((r) => [r[d.idColumn]!, d.truth(r)]));
  const size = new Map<string, number>();
  for (const e of entity.values()) size.set(e, (size.get(e) ?? 0) + 1);
  let truePairs = 0;
  for (const s of size.values()) truePairs += (s * (s - 1)) / 2;
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-linkage-')), 'pairs.csv');
  const args = ['--mapping', d.mapping, d.file, '--out', out, ...(threshold ? ['--threshold', threshold] : []), ...(pairsOnly ? ['--pairs-only'] : [])];
  const t0 = performance.now();
  const { result } = await runLink(args, () => {});
  const seconds = (performance.now() - t0) / 1000;
  const pairs = parse(fs.readFileSync(out), { columns: true }) as { left_id: string; right_id: string; score: string }[];
  fs.rmSync(path.dirname(out), { recursive: true, force: true });
  let tp = 0;
  for (const p of pairs) if (entity.get(p.left_id) === entity.get(p.right_id)) tp++;
  const fp = pairs.length - tp;
  const fn = truePairs - tp;
  const precision = pairs.length ? tp / pairs.length : 1;
  const recall = truePairs ? tp / truePairs : 1;
  const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
  return {
    dataset: d.name, records: rows.length, truePairs, predicted: pairs.length, tp, fp, fn, precision, recall, f1,
    candidatePairs: result.stats.candidatePairs, pairsCompared: result.stats.pairsCompared, seconds, recordsPerSecond: rows.length / seconds,
  };
}

async function main() {
  const { values } = parseArgs({ options: { data: { type: 'string' }, threshold: { type: 'string' }, 'pairs-only': { type: 'boolean' } } });
  const data = path.resolve(values.data ?? path.join(root, '../shared/data/linkage'));
  if (!fs.existsSync(data)) {
    process.stderr.write(`no benchmark data at ${data} (pass --data DIR)\n`);
    process.exitCode = 2;
    return;
  }
  const results: Accuracy[] = [];
  const fmt = (x: number) => x.toFixed(4);
  const head = 'dataset      records  true_pairs  predicted     tp    fp    fn  precision  recall  f1      splink_f1  candidates  compared   s      records/s';
  process.stdout.write(head + '\n');
  for (const d of datasets(data)) {
    const r = await measure(d, values.threshold, values['pairs-only'] === true);
    results.push(r);
    process.stdout.write(
      [r.dataset.padEnd(11), String(r.records).padStart(7), String(r.truePairs).padStart(11), String(r.predicted).padStart(10), String(r.tp).padStart(6), String(r.fp).padStart(5), String(r.fn).padStart(5),
        fmt(r.precision).padStart(10), fmt(r.recall).padStart(7), fmt(r.f1).padEnd(7), (d.splink ? fmt(d.splink.f1) : '-').padStart(10), String(r.candidatePairs).padStart(11), String(r.pairsCompared).padStart(9),
        r.seconds.toFixed(2).padStart(6), Math.round(r.recordsPerSecond).toString().padStart(10)].join(' ') + '\n',
    );
  }
  process.stdout.write(JSON.stringify({ bench: 'linkage-accuracy', threshold: values.threshold ? Number(values.threshold) : 'default', clusters: values['pairs-only'] !== true, results: results.map((r) => ({ ...r, precision: +fmt(r.precision), recall: +fmt(r.recall), f1: +fmt(r.f1), seconds: +r.seconds.toFixed(3), recordsPerSecond: Math.round(r.recordsPerSecond) })) }) + '\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) await main();
