// Streaming COPY ... FROM STDIN in PostgreSQL's text format: the bulk path for demo loads, restores
// and benchmarks. Rows are produced lazily, so any number of them flows in constant memory.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

/** One field in COPY text format: \N for null, and backslash, tab, newline and carriage return escaped. */
export function copyField(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  const s = typeof v === 'string' ? v : v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

const IDENT = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/;

/** Copies rows (arrays in column order) into table; returns the number of rows written. */
export async function copyRows(client: pg.PoolClient | pg.Client, table: string, columns: string[], rows: Iterable<unknown[]> | AsyncIterable<unknown[]>): Promise<number> {
  if (!IDENT.test(table) || !columns.every((c) => IDENT.test(c))) throw new Error(`copyRows: bad identifier in ${table}(${columns.join(', ')})`);
  let count = 0;
  async function* lines() {
    let buf = '';
    for await (const row of rows as AsyncIterable<unknown[]>) {
      buf += row.map(copyField).join('\t') + '\n';
      count++;
      if (buf.length > 1 << 16) {
        yield buf;
        buf = '';
      }
    }
    if (buf) yield buf;
  }
  const sink = client.query(copyFrom(`copy ${table} (${columns.join(', ')}) from stdin`));
  await pipeline(Readable.from(lines()), sink);
  return count;
}
