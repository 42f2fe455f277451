// One connection pool per process, and one way to run a transaction.
import pg from 'pg';

// bigint (int8) and numeric come back as strings by default; counts and ids fit in a double here.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
// dates stay 'YYYY-MM-DD' strings: a birth date is a calendar date, not an instant
pg.types.setTypeParser(pg.types.builtins.DATE, (v) => v);

/** a pool or a transaction's client: anything that runs a query */
export interface Queryable {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  query<R extends pg.QueryResultRow = any>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

export interface Db {
  pool: pg.Pool;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Runs fn in one transaction: committed if it returns, rolled back if it throws. */
  tx<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export function createDb(url: string, opts: { max?: number; applicationName?: string } = {}): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    application_name: opts.applicationName ?? 'gusu',
    idleTimeoutMillis: 30_000,
  });
  // an idle client losing its connection (server restart) must not crash the process
  pool.on('error', () => undefined);
  let closed = false;
  return {
    pool,
    query: (text, values) => pool.query(text, values),
    async tx(fn) {
      const client = await pool.connect();
      try {
        await client.query('begin');
        const result = await fn(client);
        await client.query('commit');
        return result;
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
