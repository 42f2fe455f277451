// `gusu exchange send-batch`: a member system sends a CSV or NDJSON file as a bulk batch through the
// SDK (bulk-client.ts), resumable with --resume ID (cli.ts dispatches here).
import fs from 'node:fs';
import { UsageError, wholeNumberFlag } from '../../module.ts';
import { BulkFormatError, isEventType, isFieldName } from './bulk-format.ts';
import type { ExchangeClient } from './client.ts';

export const SEND_BATCH_USAGE =
  '       gusu exchange send-batch --resource R --file F [--format csv|ndjson] [--key-field F] [--id-field F] [--type T] [--part-mb N] [--resume ID] [--no-wait]';

export const SEND_BATCH_OPTIONS = {
  resource: { type: 'string' },
  file: { type: 'string' },
  format: { type: 'string' },
  'key-field': { type: 'string' },
  'id-field': { type: 'string' },
  type: { type: 'string' },
  'part-mb': { type: 'string' },
  resume: { type: 'string' },
  'no-wait': { type: 'boolean' },
} as const;

type Values = Record<string, string | boolean | string[] | undefined>;

const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const printable = (s: string) => s.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
const jsonLine = (v: unknown) => printable(JSON.stringify(v)) + '\n';

function flag(v: Values, name: string): string | undefined {
  const x = v[name];
  if (x === undefined) return undefined;
  if (typeof x !== 'string' || x === '') throw new UsageError(`--${name} expects a value`);
  return x;
}

/** Sends --file as a bulk batch of --resource; prints the final status as one JSON line. */
export async function sendBatchCommand(v: Values, resource: string, client: () => ExchangeClient): Promise<number> {
  const file = flag(v, 'file');
  if (file === undefined) throw new UsageError('--file F (the CSV or NDJSON file) is required');
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (!stat?.isFile()) throw new UsageError(`--file: no file ${JSON.stringify(printable(file))}`);
  const format = flag(v, 'format');
  if (format !== undefined && format !== 'csv' && format !== 'ndjson') throw new UsageError('--format expects csv or ndjson');
  const keyField = flag(v, 'key-field');
  const idField = flag(v, 'id-field');
  for (const [n, x] of [['key-field', keyField], ['id-field', idField]] as const) if (x !== undefined && !isFieldName(x)) throw new UsageError(`--${n} expects a field name of 1 to 100 characters`);
  const eventType = flag(v, 'type');
  if (eventType !== undefined && !isEventType(eventType)) throw new UsageError('--type expects a CloudEvents type such as cn.gov.suzhou.population.person.updated');
  const partMb = wholeNumberFlag('part-mb', flag(v, 'part-mb'), 1, 8);
  const resumeId = flag(v, 'resume');
  if (resumeId !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(resumeId)) throw new UsageError('--resume expects the id of a bulk batch (a UUID)');
  const ex = client();
  let last = 0;
  let id: string | undefined = resumeId;
  try {
    const r = await ex.sendBatch(resource, file, {
      ...(format ? { format: format as 'csv' | 'ndjson' } : {}),
      ...(keyField ? { keyField } : {}),
      ...(idField ? { idField } : {}),
      ...(eventType ? { eventType } : {}),
      ...(partMb ? { partBytes: partMb * 1024 * 1024 } : {}),
      ...(resumeId ? { resumeId } : {}),
      wait: v['no-wait'] !== true,
      onProgress: (p) => {
        id = p.id;
        if (Date.now() - last < 1000 && p.read < stat.size) return;
        last = Date.now();
        process.stderr.write(`${p.id}: ${p.offset} of ${stat.size} bytes on the node, ${p.records} records read${p.resumedFrom ? ` (resumed at ${p.resumedFrom})` : ''}\n`);
      },
    });
    const s = r.status;
    process.stdout.write(jsonLine({ id: r.id, status: s.status, size: r.header.size, records: r.header.records, published: s.published, duplicates: s.duplicates, rejected: s.rejected, rejections: s.rejections.slice(0, 20), error: s.error }));
    if (s.rejected) process.stderr.write(`${s.rejected} records rejected (their lines are in "rejections": the first 100 on the node)\n`);
    if (s.status === 'failed' || s.status === 'cancelled') return 1;
    if (s.status !== 'done') process.stderr.write(`completed: the node verifies and publishes in the background (GET /api/v1/exchange/bulk/${r.id})\n`);
    return 0;
  } catch (err) {
    const bulkId = (err as { bulkId?: string }).bulkId ?? id;
    if (err instanceof BulkFormatError) throw new Error(`${printable(file)}: ${printable(err.message)} (the upload was cancelled)`);
    if (bulkId) process.stderr.write(`interrupted: send the rest with --resume ${bulkId}\n`);
    throw err;
  }
}
