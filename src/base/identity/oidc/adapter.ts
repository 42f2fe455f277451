// oidc-provider's storage in PostgreSQL: one table (identity.oidc_store) keyed by model name and id,
// the payload as jsonb, with the secondary keys the provider looks things up by (grant id, session
// uid, user code). Expired rows are invisible at once (query-time filter) and deleted by the
// identity.cleanup job.
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { Queryable } from '../../../db/index.ts';

/** models whose rows belong to a grant and go when it is revoked */
const GRANTABLE = ['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PreAuthorizedCode'];

const LIVE = '(expires_at is null or expires_at > now())';

export function postgresAdapter(db: Queryable): new (model: string) => Adapter {
  return class PostgresAdapter implements Adapter {
    constructor(readonly model: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      await db.query(
        `insert into identity.oidc_store (model, id, payload, grant_id, uid, user_code, expires_at)
         values ($1, $2, $3, $4, $5, $6, case when $7::int is null then null else now() + make_interval(secs => $7::int) end)
         on conflict (model, id) do update set payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
           user_code = excluded.user_code, expires_at = excluded.expires_at, consumed_at = null`,
        [this.model, id, JSON.stringify(payload), payload.grantId ?? null, payload.uid ?? null, payload.userCode ?? null, Number.isFinite(expiresIn) && expiresIn > 0 ? Math.ceil(expiresIn) : null],
      );
    }

    private async one(where: string, value: string): Promise<AdapterPayload | undefined> {
      const { rows } = await db.query<{ payload: AdapterPayload; consumed: number | null }>(
        `select payload, extract(epoch from consumed_at)::bigint as consumed from identity.oidc_store where model = $1 and ${where} = $2 and ${LIVE}`,
        [this.model, value],
      );
      const r = rows[0];
      if (!r) return undefined;
      return r.consumed !== null ? { ...r.payload, consumed: Number(r.consumed) } : r.payload;
    }

    find(id: string) {
      return this.one('id', id);
    }

    findByUid(uid: string) {
      return this.one('uid', uid);
    }

    findByUserCode(userCode: string) {
      return this.one('user_code', userCode);
    }

    async consume(id: string): Promise<void> {
      await db.query('update identity.oidc_store set consumed_at = now() where model = $1 and id = $2', [this.model, id]);
    }

    async destroy(id: string): Promise<void> {
      await db.query('delete from identity.oidc_store where model = $1 and id = $2', [this.model, id]);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await db.query('delete from identity.oidc_store where grant_id = $1 and model = any($2)', [grantId, GRANTABLE]);
    }
  };
}

export async function purgeExpiredOidc(db: Queryable): Promise<number> {
  const r = await db.query('delete from identity.oidc_store where expires_at < now()');
  return r.rowCount ?? 0;
}

/**
 * Registers (or replaces) a client outside the configuration, e.g. a test relying party or a
 * department's own application. oidc-provider looks up clients it was not configured with in the
 * adapter's Client model; the metadata is validated by the provider when the client is used.
 */
export async function registerClient(db: Queryable, metadata: { client_id: string } & Record<string, unknown>): Promise<void> {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(metadata.client_id)) throw new TypeError('client_id: 1-64 letters, digits or . _ -');
  if (metadata.client_id.startsWith('gusu-')) throw new TypeError('client ids starting with gusu- are the platform’s own');
  await db.query(
    `insert into identity.oidc_store (model, id, payload) values ('Client', $1, $2)
     on conflict (model, id) do update set payload = excluded.payload`,
    [metadata.client_id, JSON.stringify(metadata)],
  );
}
