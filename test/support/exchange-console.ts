// What the exchange console's tests (test/exchange-console.test.ts, test-browser/exchange-console.test.ts)
// share: staff with and without the exchange roles, the pages as a module until the exchange module
// wires them itself, and rows written straight into the exchange tables.
import { fileURLToPath } from 'node:url';
import type { FastifyRequest } from 'fastify';
import { ANONYMOUS, type Actor } from '../../src/base/identity/policy.ts';
import { exchangePagePolicy, exchangePages } from '../../src/base/exchange/pages.ts';
import type { Db } from '../../src/db/index.ts';
import type { GusuModule } from '../../src/module.ts';
import { MODULES } from '../../src/modules.ts';

const staff = (id: string, roles: string[]): Actor => ({
  kind: 'staff',
  accountId: `00000000-0000-4000-8000-${id.padStart(12, '0')}`,
  name: `测试${id}`,
  department: 'SZ-DSJ',
  post: '工程师',
  roles: roles.map((role) => ({ role, scope: null })),
});

export const EXCHANGE_ACTORS: Record<string, Actor> = {
  operator: staff('e1', ['exchange-operator']),
  admin: staff('e2', ['platform-admin']),
  security: staff('e3', ['security-officer']),
  plain: staff('e4', []),
  ca: staff('e5', ['ca-operator']),
  citizen: { kind: 'citizen', accountId: '00000000-0000-4000-8000-0000000000f1', name: '张三', idNumber: '11010519491231002X' },
};

/** who a request acts as: the x-actor header, or the test_actor cookie (a browser); anyone else is anonymous */
export async function exchangeActor(req: FastifyRequest): Promise<Actor> {
  const h = req.headers['x-actor'];
  const c = /(?:^|;\s*)test_actor=([a-z0-9]+)/.exec(req.headers.cookie ?? '')?.[1];
  const name = typeof h === 'string' ? h : c;
  return (name && EXCHANGE_ACTORS[name]) || ANONYMOUS;
}

/**
 * The pages as a module of their own until the exchange module wires them itself (its policies then
 * name 'exchange-console'): with the exchange module registered only the routes and rules are added
 * (its migrations have run), without it the exchange's migrations too.
 */
export function exchangePagesModules(): GusuModule[] {
  const real = MODULES.find((m) => m.name === 'exchange');
  if (real?.policies?.some((r) => r.resource === 'exchange-console')) return [];
  return [
    {
      name: 'exchange-pages-test',
      ...(real ? {} : { migrations: fileURLToPath(new URL('../../src/base/exchange/migrations', import.meta.url)) }),
      policies: exchangePagePolicy,
      internalRoutes: exchangePages,
    },
  ];
}

export const XSS = '<script>alert("x")</script>';

export interface Seeded {
  selfId: string;
  /** a member's pull subscription with 25 dead letters; a node link with 5 ready and 2 leased; a member's with 3 dead and 4 done */
  sub: { pull: string; node: string; legal: string };
}

/**
 * Writes: three peer nodes (up, down with an error, unknown); 25 members, two of them providers of a
 * resource; three subscriptions; 38 messages (one two hours old, the rest in the last hour); their
 * deliveries (28 dead, 7 waiting, 4 done); 6 refusals (5 in the last day).
 */
export async function seedExchangeConsole(db: Db): Promise<Seeded> {
  const q = async <R extends Record<string, unknown>>(sql: string, params: unknown[] = []) => (await db.query<R>(sql, params)).rows;
  // this node (the exchange module registers it at start; without it, one written here)
  let selfId: string;
  const self = await q<{ id: string }>('select id from exchange.node where is_self');
  if (self[0]) selfId = self[0].id;
  else {
    await db.query(`insert into exchange.node (id, kind, name, name_en, division_code, is_self, status) values ('hub', 'hub', '苏州市数据交换平台', 'Suzhou Data Exchange Platform', '320500', true, 'up')`);
    selfId = 'hub';
  }
  // peers: a closed loopback port as their address, in case anything tried to reach them
  const node = (id: string, name: string, nameEn: string, status: string, lastContact: string | null, lastError: string | null) =>
    db.query(
      `insert into exchange.node (id, kind, name, name_en, division_code, upstream, url, status, last_contact, last_error)
       values ($1, 'node', $2, $3, $4, $5, $6, $7, $8::timestamptz, $9)
       on conflict (id) do update set status = excluded.status, last_contact = excluded.last_contact, last_error = excluded.last_error, url = excluded.url`,
      [id, name, nameEn, id.slice(5), selfId === id ? null : selfId, `http://127.0.0.1:9/${id}`, status, lastContact, lastError],
    );
  await node('node-320505', '虎丘区数据交换节点', 'Huqiu District Exchange Node', 'up', new Date(Date.now() - 60_000).toISOString(), null);
  await node('node-320506', '吴中区数据交换节点', 'Wuzhong District Exchange Node', 'down', new Date(Date.now() - 3 * 3600_000).toISOString(), `connect ECONNREFUSED ${XSS}`);
  await node('node-320507', '相城区数据交换节点', 'Xiangcheng District Exchange Node', 'unknown', null, null);

  const member = (code: string, subsystem: string, name: string, department: string | null) =>
    db.query(`insert into exchange.member (id, instance, member_class, member_code, subsystem, name, department, node_id) values ($1, 'SZ', 'GOV', $2, $3, $4, $5, $6)`, [
      `SZ/GOV/${code}/${subsystem}`,
      code,
      subsystem,
      name,
      department,
      selfId,
    ]);
  await member('SZ-GA', 'hukou', '户籍管理系统', 'SZ-GA');
  await member('SZ-SCJG', 'register', '企业登记系统', 'SZ-SCJG');
  await member('SZ-MZ', 'xss', `<img src=x onerror=alert(1)>民政`, 'SZ-MZ');
  for (let i = 1; i <= 22; i++) await member('SZ-MZ', `sys${String(i).padStart(2, '0')}`, `民政系统 ${i}`, 'SZ-MZ');
  await db.query(
    `insert into exchange.resource (id, name, provider, schema) values ('population.person-changed', '人口变更', 'SZ/GOV/SZ-GA/hukou', '{}'), ('legal-entity.registered', '企业设立', 'SZ/GOV/SZ-SCJG/register', '{}')`,
  );

  const subscribe = async (resource: string, target: string | null, node: string | null, delivery: string) =>
    (await q<{ id: string }>(`insert into exchange.subscription (resource, target_member, target_node, delivery) values ($1, $2, $3, $4) returning id`, [resource, target, node, delivery]))[0]!.id;
  const sub = {
    pull: await subscribe('population.person-changed', 'SZ/GOV/SZ-MZ/sys01', null, 'pull'),
    node: await subscribe('population.person-changed', null, 'node-320506', 'push'),
    legal: await subscribe('legal-entity.registered', 'SZ/GOV/SZ-MZ/sys02', null, 'pull'),
  };

  // the envelope as stored: `data` holds a "type" of its own, which is not the event's type
  const message = async (n: number, resource: string, agoSeconds: number) => {
    const event = JSON.stringify({ data: { type: 'nested-not-the-type', n }, id: `evt-${resource}-${n}`, source: 'SZ/GOV/SZ-GA/hukou', specversion: '1.0', type: resource });
    return (
      await q<{ seq: number }>(
        `insert into exchange.message (source, id, member, resource, key, digest, event, origin, received_at)
         values ('SZ/GOV/SZ-GA/hukou', $1, 'SZ/GOV/SZ-GA/hukou', $2, $3, repeat('a', 64), $4, $5, now() - make_interval(secs => $6)) returning seq`,
        [`evt-${resource}-${n}`, resource, `key-${n % 5}`, event, selfId, agoSeconds],
      )
    )[0]!.seq;
  };
  const old = await message(0, 'population.person-changed', 7200);
  const pop: number[] = [];
  for (let i = 1; i <= 30; i++) pop.push(await message(i, 'population.person-changed', i * 100));
  const legal: number[] = [];
  for (let i = 1; i <= 7; i++) legal.push(await message(i, 'legal-entity.registered', i * 60));

  const delivery = (subscription: string, seq: number, status: string, extra: { attempts?: number; error?: string; doneAgo?: number } = {}) =>
    db.query(
      `insert into exchange.delivery (subscription, seq, key, status, attempts, last_error, done_at, lease_until)
       values ($1, $2, 'k', $3, $4, $5, case when $6::int is null then null else now() - make_interval(secs => $6::int) end, case when $3 = 'leased' then now() + interval '1 minute' end)`,
      [subscription, seq, status, extra.attempts ?? 0, extra.error ?? null, extra.doneAgo ?? null],
    );
  for (const seq of pop.slice(0, 25)) await delivery(sub.pull, seq, 'dead', { attempts: 8, error: `lease expired 8 times ${XSS}` });
  await delivery(sub.node, old, 'ready');
  for (const seq of pop.slice(0, 4)) await delivery(sub.node, seq, 'ready');
  for (const seq of pop.slice(4, 6)) await delivery(sub.node, seq, 'leased', { attempts: 1 });
  for (const seq of legal.slice(0, 3)) await delivery(sub.legal, seq, 'dead', { attempts: 8, error: 'HTTP 503' });
  for (const seq of legal.slice(3)) await delivery(sub.legal, seq, 'done', { doneAgo: 120 });

  const refusal = (reason: string, detail: string, agoSeconds: number) =>
    db.query(`insert into exchange.refusal (at, member, event_id, reason, detail, remote_addr) values (now() - make_interval(secs => $1), 'SZ/GOV/SZ-GA/hukou', 'evt-x', $2, $3, '127.0.0.1')`, [
      agoSeconds,
      reason,
      detail,
    ]);
  for (let i = 0; i < 3; i++) await refusal('bad-signature', `signature does not verify ${i}`, 60 * (i + 1));
  await refusal('replay', `same source and id, other content ${XSS}`, 300);
  await refusal('replay', 'same source and id, other content', 400);
  await refusal('schema', 'data/name: must be string', 2 * 86_400);
  return { selfId, sub };
}
