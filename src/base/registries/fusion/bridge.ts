// A registry on the exchange (the plan: sources publish through the exchange; the registry's life
// events go out through it). The registry is a member of the exchange like a department's system,
// with a certificate from the municipal CA and its key sealed under the master key. Each run of
// the bridge (a recurring job): subscribe to every source's resource it may receive, pull and fuse
// what arrived (acknowledging only after the fusion committed), and publish pending life events.
import crypto from 'node:crypto';
import type { ModuleContext } from '../../../module.ts';
import { caContextFor, issueCertificate } from '../../identity/ca/index.ts';
import { openKey, sealKey } from '../../identity/ca/keystore.ts';
import type { Alg } from '../../identity/crypto/index.ts';
import { ack, exchangeOf, publish, pull, registerMember, saveResource, signBatch, subscribe, ExchangeError, type ExchangeRuntime, type UnsignedEvent } from '../../exchange/index.ts';
import { ingest, type IngestHooks } from './engine.ts';
import { linkPending, type LinkRun } from './linking.ts';
import type { CompiledRegistry } from './model.ts';

const ALG: Alg = 'ecdsa-p256-sha256';
const PULL_MAX = 1000;
const PUBLISH_MAX = 500;
/** the department that runs the base registries (市大数据局) */
export const REGISTRY_DEPARTMENT = 'SZ-DSJ';

const sealId = (registry: string) => `fusion-member:${registry}`;

interface Member {
  id: string;
  key: crypto.KeyObject;
}

async function ensureMember(ctx: ModuleContext, rt: ExchangeRuntime, reg: CompiledRegistry): Promise<Member> {
  const name = reg.def.registry;
  const ca = caContextFor(ctx);
  const row = (await ctx.db.query<{ member_id: string; sealed_key: string }>('select member_id, sealed_key from fusion.exchange_member where registry = $1', [name])).rows[0];
  if (row) return { id: row.member_id, key: crypto.createPrivateKey({ key: openKey(ca.master, sealId(name), Buffer.from(row.sealed_key, 'base64'), null), format: 'der', type: 'pkcs8' }) };
  const subsystem = `${name}-registry`;
  const issued = await issueCertificate(ctx.db, ca, { kind: 'system', id: `${name}-registry` }, { alg: ALG, subject: { kind: 'system', systemId: subsystem, department: REGISTRY_DEPARTMENT, name: reg.def.name.zh } });
  const m = await registerMember(ctx.db, rt.trust, rt.cfg.instance, rt.self.id, { memberClass: 'GOV', memberCode: REGISTRY_DEPARTMENT, subsystem, name: reg.def.name.zh, certificate: issued.certificate }, rt.departments);
  const der = crypto.createPrivateKey(issued.privateKey!).export({ format: 'der', type: 'pkcs8' }) as Buffer;
  await ctx.db.query('insert into fusion.exchange_member (registry, member_id, alg, sealed_key) values ($1, $2, $3, $4) on conflict (registry) do nothing', [name, m.id, ALG, sealKey(ca.master, sealId(name), der).toString('base64')]);
  return ensureMember(ctx, rt, reg);
}

async function setSource(ctx: ModuleContext, registry: string, source: string, status: 'subscribed' | 'waiting', subscription: string | null, detail: string | null, received = 0): Promise<void> {
  await ctx.db.query(
    `insert into fusion.bridge_source (registry, source, subscription, status, detail, received) values ($1, $2, $3, $4, $5, $6)
     on conflict (registry, source) do update set subscription = coalesce(excluded.subscription, fusion.bridge_source.subscription), status = excluded.status,
       detail = excluded.detail, received = fusion.bridge_source.received + excluded.received, updated_at = now()`,
    [registry, source, subscription, status, detail?.slice(0, 500) ?? null, received],
  );
}

export interface BridgeRun {
  fused: number;
  rejected: number;
  published: number;
  waiting: string[];
}

/** One run of a registry's bridge. A division node (with an upstream) does not run the city's registries. */
export async function runBridge(ctx: ModuleContext, reg: CompiledRegistry, hooks: IngestHooks = {}): Promise<BridgeRun> {
  const out: BridgeRun = { fused: 0, rejected: 0, published: 0, waiting: [] };
  let rt: ExchangeRuntime;
  try {
    rt = exchangeOf(ctx);
  } catch {
    return out; // the exchange module is not part of this platform
  }
  if (rt.self.upstream) return out;
  const me = await ensureMember(ctx, rt, reg);
  const member = (await ctx.db.query<import('../../exchange/index.ts').MemberRow>('select * from exchange.member where id = $1', [me.id])).rows[0]!;
  for (const src of reg.def.sources) {
    let sub = (await ctx.db.query<import('../../exchange/index.ts').SubscriptionRow>(`select * from exchange.subscription where resource = $1 and target_member = $2 and status = 'active'`, [src.resource, me.id])).rows[0];
    if (!sub) {
      try {
        sub = (await subscribe(ctx.db, member, { resource: src.resource, delivery: 'pull' })).subscription;
        await setSource(ctx, reg.def.registry, src.id, 'subscribed', sub.id, null);
      } catch (err) {
        if (!(err instanceof ExchangeError)) throw err;
        await setSource(ctx, reg.def.registry, src.id, 'waiting', null, err.message);
        out.waiting.push(src.id);
        continue;
      }
    }
    const events = await pull(rt, sub, PULL_MAX, 0);
    if (!events.length) continue;
    const records = events.map((d) => {
      const e = d.event as { id: string; time?: string; data?: unknown };
      const data = e.data && typeof e.data === 'object' && !Array.isArray(e.data) ? { ...(e.data as Record<string, unknown>) } : {};
      // a record without its own id is known by its event's; its time, when it has none, is the event's
      if (data[src.recordId] === undefined) data[src.recordId] = e.id;
      if (src.observedAt && data[src.observedAt] === undefined && e.time) data[src.observedAt] = e.time;
      return data;
    });
    const r = await ingest(ctx.db, reg, src.id, records, hooks);
    // acknowledged only once fused (at least once: a crash before this re-delivers, and the fold is idempotent for the same record)
    await ack(rt, sub, events.map((d) => d.seq), me.id);
    await setSource(ctx, reg.def.registry, src.id, 'subscribed', sub.id, null, events.length);
    out.fused += r.accepted;
    out.rejected += r.rejected.length;
  }
  if (reg.def.eventResource) out.published = await publishEvents(ctx, rt, reg, me);
  return out;
}

/** One run of a registry's background work: link what arrived without a key, then the exchange bridge. */
export async function runRegistry(ctx: ModuleContext, reg: CompiledRegistry, hooks: IngestHooks = {}): Promise<BridgeRun & { linked: LinkRun }> {
  const linked = await linkPending(ctx.db, reg, { hooks });
  return { ...(await runBridge(ctx, reg, hooks)), linked };
}

async function publishEvents(ctx: ModuleContext, rt: ExchangeRuntime, reg: CompiledRegistry, me: Member): Promise<number> {
  const resource = reg.def.eventResource!;
  await saveResource(ctx.db, {
    id: resource,
    name: `${reg.def.name.zh}：生命事件`,
    nameEn: `${reg.def.name.en}: life events`,
    provider: me.id,
    // personal data: only members entitled by the exchange operator (or a catalog agreement) receive it
    share: 'conditional',
    keyField: 'key',
    schema: { type: 'object', required: ['key', 'type'], properties: { key: { type: 'string' }, type: { type: 'string' }, field: { type: 'string' }, before: {}, after: {}, at: { type: 'string' } } },
  });
  const { rows } = await ctx.db.query<{ seq: string; key: string; type: string; field: string; before: unknown; after: unknown; at: Date }>(
    `select seq, key, type, field, before, after, at from fusion.event where registry = $1 and published_at is null order by seq limit ${PUBLISH_MAX}`,
    [reg.def.registry],
  );
  if (!rows.length) return 0;
  const events: UnsignedEvent[] = rows.map((r) => ({
    specversion: '1.0',
    id: `${reg.def.registry}-event-${r.seq}`,
    source: `urn:gusu:member:${me.id}`,
    type: `cn.gov.suzhou.${reg.def.registry}.${r.type}`,
    time: r.at.toISOString(),
    gusumember: me.id,
    gusuresource: resource,
    gusukey: r.key,
    data: { key: r.key, type: r.type, field: r.field, before: r.before, after: r.after, at: r.at.toISOString() },
  }));
  const b = signBatch(events, me.key, ALG);
  const mk = await rt.caches.member(ctx.db, rt.trust, me.id);
  if ('error' in mk) throw new Error(`the ${reg.def.registry} registry cannot publish: ${mk.error}`);
  await publish(rt, mk, { events: b.events, batch: { header: b.header, proofs: b.proofs } });
  await ctx.db.query('update fusion.event set published_at = now() where seq = any($1::bigint[])', [rows.map((r) => r.seq)]);
  return rows.length;
}

