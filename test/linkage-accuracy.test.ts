// Accuracy regression of the record-linkage engine on public benchmarks, through the CLI's code path
// (bench/linkage-accuracy.ts). The data stays in ../shared/data/linkage; without it the test skips.
// Floors are the figures measured when the engine was written (docs/linkage.md) minus a margin.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { datasets, measure } from '../bench/linkage-accuracy.ts';

const data = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/data/linkage');
const skip = fs.existsSync(path.join(data, 'febrl/dataset1.csv')) ? false : `benchmark data not found at ${data} (the shared data folder is absent)`;

// measured: febrl1 F1 1.0000 (P 1, R 1); fake_1000 F1 0.9717 (P 0.9974, R 0.9473), pairs only 0.8822
const FLOORS = { febrl1: { f1: 0.98, precision: 0.98 }, fake_1000: { f1: 0.95, precision: 0.97 } } as const;

for (const name of ['febrl1', 'fake_1000'] as const) {
  test(`${name}: F1 at the default settings stays above ${FLOORS[name].f1}`, { skip }, async () => {
    const d = datasets(data).find((x) => x.name === name)!;
    const r = await measure(d);
    assert.ok(r.f1 >= FLOORS[name].f1, `${name} F1 ${r.f1.toFixed(4)} (P ${r.precision.toFixed(4)}, R ${r.recall.toFixed(4)})`);
    assert.ok(r.precision >= FLOORS[name].precision, `${name} precision ${r.precision.toFixed(4)}`);
  });
}

test('fake_1000 without clusters (pairs only) still beats Splink\'s published best F1 0.862', { skip }, async () => {
  const r = await measure(datasets(data).find((x) => x.name === 'fake_1000')!, undefined, true);
  assert.ok(r.f1 >= 0.865, `F1 ${r.f1.toFixed(4)}`);
});
