// The public portal (表现层: the “one-stop” portal of the seed): home with the three entry points,
// the section pages, the subsystem directory, the public city pages, and their JSON mirrors.
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { requestLang } from '../../http/i18n.ts';
import { registerLanguageSwitch, sendPage, setSiteIdentity } from '../../http/layout.ts';
import { portalPolicy } from './policy.ts';
import type { GusuModule, ModuleContext } from '../../module.ts';
import { citySummary, CitySummarySchema } from './city.ts';
import { departmentsPage, directoryPage, divisionsPage, homePage, sectionPage } from './pages.ts';
import { sectionById, type SectionId } from './sections.ts';
import { LAYERS, providedIds, subsystemsWithStatus } from './subsystems.ts';

const TextSchema = Type.Object({ zh: Type.String(), en: Type.String() });

export const SubsystemsSchema = Type.Object(
  {
    available: Type.Integer({ minimum: 0 }),
    planned: Type.Integer({ minimum: 0 }),
    layers: Type.Array(Type.Object({ id: Type.Enum(['base', 'presentation', 'application']), name: TextSchema })),
    subsystems: Type.Array(
      Type.Object({
        id: Type.String({ description: 'the id a module lists in `provides` when it makes this subsystem work' }),
        layer: Type.Enum(['base', 'presentation', 'application']),
        name: TextSchema,
        summary: TextSchema,
        href: Type.Optional(Type.String({ description: 'where it is used; present only when available' })),
        status: Type.Enum(['available', 'planned']),
      }),
    ),
  },
  { description: 'Every subsystem of the plan and whether this platform provides it now' },
);

export type SubsystemsResponse = Static<typeof SubsystemsSchema>;

export function subsystemsResponse(ctx: Pick<ModuleContext, 'modules'>): SubsystemsResponse {
  const subsystems = subsystemsWithStatus(ctx.modules);
  const available = subsystems.filter((s) => s.status === 'available').length;
  return {
    available,
    planned: subsystems.length - available,
    layers: LAYERS.map((l) => ({ id: l.id, name: l.name })),
    subsystems: subsystems.map(({ href, ...s }) => ({ ...s, ...(href && s.status === 'available' ? { href } : {}) })),
  };
}

const HTML_ROUTE = { schema: { hide: true }, config: { action: 'portal-page:read' } } as const;

function publicRoutes(app: FastifyInstance, ctx: ModuleContext): void {
  registerLanguageSwitch(app);

  app.get('/', HTML_ROUTE, async (req, reply) => {
    const lang = requestLang(req);
    return sendPage(req, reply, { lang, ...homePage(lang, ctx.profile, subsystemsWithStatus(ctx.modules), providedIds(ctx.modules)) });
  });

  for (const id of ['disclosure', 'services', 'participation'] as const satisfies readonly SectionId[]) {
    const section = sectionById(id);
    app.get(section.href, HTML_ROUTE, async (req, reply) => {
      const lang = requestLang(req);
      return sendPage(req, reply, { lang, ...sectionPage(lang, section, providedIds(ctx.modules), subsystemsWithStatus(ctx.modules)) });
    });
  }

  app.get('/directory', HTML_ROUTE, async (req, reply) => {
    const lang = requestLang(req);
    return sendPage(req, reply, { lang, ...directoryPage(lang, subsystemsWithStatus(ctx.modules)) });
  });

  app.get('/disclosure/divisions', HTML_ROUTE, async (req, reply) => {
    const lang = requestLang(req);
    return sendPage(req, reply, { lang, ...divisionsPage(lang, ctx.profile) });
  });

  app.get('/disclosure/departments', HTML_ROUTE, async (req, reply) => {
    const lang = requestLang(req);
    return sendPage(req, reply, { lang, ...departmentsPage(lang, ctx.profile) });
  });

  app.get(
    '/api/v1/city',
    {
      config: { action: 'city-profile:read' },
      schema: {
        tags: ['portal'],
        summary: 'The city profile as the public may see it: city, divisions to township level, departments',
        response: { 200: CitySummarySchema },
      },
    },
    async () => citySummary(ctx.profile),
  );

  app.get(
    '/api/v1/subsystems',
    {
      config: { action: 'subsystem:read' },
      schema: {
        tags: ['portal'],
        summary: 'Every subsystem of the plan, by layer, with whether this platform provides it now',
        response: { 200: SubsystemsSchema },
      },
    },
    async () => subsystemsResponse(ctx),
  );
}

export const publicPortalModule: GusuModule = {
  name: 'portal',
  provides: ['portal', 'directory'],
  policies: portalPolicy,
  start(ctx) {
    const { city } = ctx.profile;
    setSiteIdentity({ portalName: { zh: city.portalName, en: city.portalNameEn }, cityName: { zh: city.name, en: city.nameEn } });
    return Promise.resolve();
  },
  publicRoutes,
};
