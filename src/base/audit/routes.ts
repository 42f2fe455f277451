// "Who looked at my data": a signed-in citizen reads every recorded access to their own personal data.
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { allow } from '../identity/policy.ts';
import type { ModuleContext } from '../../module.ts';
import { accessesOfSubject } from './log.ts';

export const auditPolicy = [allow('citizen', 'read', 'own-data-access')].flat();

const DataAccesses = Type.Object(
  {
    items: Type.Array(
      Type.Object({
        seq: Type.Integer({ description: 'the audit entry' }),
        at: Type.String({ description: 'when, UTC' }),
        actorKind: Type.Enum(['citizen', 'staff', 'enterprise', 'system', 'anonymous']),
        department: Type.Union([Type.String(), Type.Null()], { description: 'the department code of whoever accessed' }),
        departmentName: Type.Union([Type.Object({ zh: Type.String(), en: Type.String() }), Type.Null()]),
        action: Type.String({ description: 'what was done, e.g. population.person.read' }),
        purpose: Type.Union([Type.String(), Type.Null()], { description: 'the purpose stated for the access' }),
        outcome: Type.Enum(['ok', 'denied', 'error']),
      }),
    ),
    next: Type.Union([Type.Integer(), Type.Null()], { description: 'pass as `before` for the next page; null on the last' }),
  },
  { description: 'Every recorded access to the signed-in citizen’s personal data, newest first' },
);

const Query = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    before: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export function auditPublicRoutes(app: FastifyInstance, ctx: ModuleContext): void {
  const departments = new Map(ctx.profile.departments.map((d) => [d.code, { zh: d.name, en: d.nameEn }]));
  app.get(
    '/api/v1/me/data-accesses',
    {
      config: { action: 'own-data-access:read' },
      schema: { tags: ['audit'], summary: 'Who accessed my personal data: when, which department, for what purpose', querystring: Query, response: { 200: DataAccesses } },
    },
    async (req): Promise<Static<typeof DataAccesses>> => {
      const actor = req.actor;
      if (actor.kind !== 'citizen') throw new Error('unreachable: the policy admits citizens only');
      const q = req.query as Static<typeof Query>;
      const page = await accessesOfSubject(ctx.db, actor.idNumber, { limit: q.limit ?? 20, before: q.before });
      return {
        items: page.items.map((i) => ({
          ...i,
          actorKind: i.actorKind as Static<typeof DataAccesses>['items'][number]['actorKind'],
          outcome: i.outcome as Static<typeof DataAccesses>['items'][number]['outcome'],
          departmentName: (i.department !== null && departments.get(i.department)) || null,
        })),
        next: page.next,
      };
    },
  );
}
