// Every subsystem of the plan (the seed's 基础层 / 表现层 / 应用层), as data. A subsystem is
// 'available' when some registered module lists its id in `provides`, otherwise 'planned': the
// directory can never claim more than the running platform does.
import type { Text } from '../../http/i18n.ts';
import type { Status } from '../../http/layout.ts';

export type Layer = 'base' | 'presentation' | 'application';

export interface Subsystem {
  /** the id a module puts in `provides` when it makes this subsystem work */
  id: string;
  layer: Layer;
  name: Text;
  summary: Text;
  /** where it is used, once available (a public-face path) */
  href?: string;
}

export interface SubsystemWithStatus extends Subsystem {
  status: Status;
}

export const LAYERS: readonly { id: Layer; name: Text; principle: Text }[] = [
  {
    id: 'base',
    name: { zh: '基础层', en: 'Base layer' },
    principle: {
      zh: '各应用系统必须基于全市统一的政务网平台、基础数据库、信息资源交换体系和信息安全体系，依托相对集中的数据中心。',
      en: 'Every application is built on the city’s one government network, base databases, information exchange and security system, relying on a shared data centre.',
    },
  },
  {
    id: 'presentation',
    name: { zh: '表现层', en: 'Presentation layer' },
    principle: {
      zh: '所有政府部门对外的电子化服务都与全市统一的“一站式”管理和服务门户衔接。',
      en: 'Every online service of every department connects to the city’s one-stop portal.',
    },
  },
  {
    id: 'application',
    name: { zh: '应用层', en: 'Application layer' },
    principle: {
      zh: '以信息共享和业务协同为重点，淡化部门边界，推进跨部门应用。',
      en: 'Information sharing and cross-department collaboration first, with department boundaries played down.',
    },
  },
];

export const SUBSYSTEMS: readonly Subsystem[] = [
  // 基础层
  {
    id: 'network',
    layer: 'base',
    name: { zh: '政务网', en: 'Government network' },
    summary: {
      zh: '覆盖全市、延伸至社区和行政村的政务外网，部门纵向网、移动办公网与政务内网。',
      en: 'The government extranet reaching every community and village, department networks, the mobile office network and the government intranet.',
    },
  },
  {
    id: 'exchange',
    layer: 'base',
    name: { zh: '数据交换平台', en: 'Data exchange platform' },
    summary: {
      zh: '市级交换平台与各市、区交换节点对接，跨部门业务系统通过它交换数据。',
      en: 'The city exchange hub federated with a node in every district and county-level city; cross-department systems exchange data through it.',
    },
  },
  {
    id: 'population',
    layer: 'base',
    name: { zh: '人口基础数据库', en: 'Population base database' },
    summary: {
      zh: '以公安人口信息为基础，融合民政、人社、卫生等部门人口信息。',
      en: 'Built on the public-security population records, fused with civil affairs, social security, health and other departments’ records.',
    },
  },
  {
    id: 'legal-entity',
    layer: 'base',
    name: { zh: '法人基础数据库', en: 'Legal-entity base database' },
    summary: {
      zh: '工商、税务、质监等部门法人数据实时交换共享，完整、准确、动态。',
      en: 'Legal-entity data from market regulation, tax, quality supervision and others, shared in real time: complete, accurate and current.',
    },
  },
  {
    id: 'geo',
    layer: 'base',
    name: { zh: '基础地理信息数据库', en: 'Geographic base database' },
    summary: {
      zh: '行政区划、网格、标准地址与城市部件，各部门联合共建、资源共享。',
      en: 'Divisions, grids, standard addresses and city components, built jointly and shared by all departments.',
    },
  },
  {
    id: 'catalog',
    layer: 'base',
    name: { zh: '政务信息资源目录', en: 'Government information-resource catalogue' },
    summary: {
      zh: '公共信息资源目录和交换信息资源目录，明确各部门采集维护责任与共享协议。',
      en: 'The public and exchange resource catalogues, with each department’s collection duties and the sharing agreements.',
    },
    href: '/catalog',
  },
  {
    id: 'datacenter',
    layer: 'base',
    name: { zh: '政务数据中心', en: 'Government data centre' },
    summary: {
      zh: '按统一目录采集规范的政务信息，为决策支持打基础，集约托管部门资源。',
      en: 'Collects standardised government information under the one catalogue, the ground for decision support, and hosts department resources.',
    },
  },
  {
    id: 'security',
    layer: 'base',
    name: { zh: '安全体系与 CA 认证', en: 'Security system and CA' },
    summary: {
      zh: '数字证书（CA）、统一身份认证、防病毒与入侵防护、灾难备份与恢复。',
      en: 'Digital certificates (CA), single sign-on, anti-virus and intrusion protection, disaster backup and recovery.',
    },
  },
  // 表现层
  {
    id: 'portal',
    layer: 'presentation',
    name: { zh: '门户网站', en: 'Government portal' },
    summary: {
      zh: '以公众为中心：信息公开、在线办事、公众参与。',
      en: 'Centred on the public: information disclosure, online services, public participation.',
    },
    href: '/',
  },
  {
    id: 'directory',
    layer: 'presentation',
    name: { zh: '系统导航', en: 'Subsystem directory' },
    summary: {
      zh: '本页：规划中的全部子系统及其当前状态，并提供开放接口。',
      en: 'This page: every subsystem of the plan and its current state, also as an open API.',
    },
    href: '/directory',
  },
  {
    id: 'hotline',
    layer: 'presentation',
    name: { zh: '市民呼叫中心', en: 'Citizen hotline' },
    summary: {
      zh: '政府对外服务的电话门户：咨询、投诉和建议，与部门系统和门户联动。',
      en: 'The government’s telephone portal for questions, complaints and suggestions, linked to department systems and the portal.',
    },
  },
  {
    id: 'mailbox',
    layer: 'presentation',
    name: { zh: '实名制市民信箱', en: 'Real-name citizen mailbox' },
    href: '/me/mailbox',
    summary: {
      zh: '依托人口基础数据库，集中发布政府各部门和公共事业单位的信息与个性化服务。',
      en: 'Based on the population database: messages from every department and public utility, and personalised services.',
    },
  },
  {
    id: 'enterprise-portal',
    layer: 'presentation',
    name: { zh: '政企信息交互门户', en: 'Government–enterprise portal' },
    summary: {
      zh: '企业数据报送“一表制”，基于 CA 的法人信箱。',
      en: 'One-form reporting for enterprises, and a CA-secured legal-entity mailbox.',
    },
  },
  {
    id: 'intranet',
    layer: 'presentation',
    name: { zh: '综合信息网', en: 'Government intranet' },
    summary: {
      zh: '部门间共享信息发布与查询的门户，统一登录、权限管理和个性化定制。',
      en: 'Where departments publish and look up shared information, with single sign-on, permissions and personalisation.',
    },
  },
  // 应用层
  {
    id: 'citizen-services',
    layer: 'application',
    name: { zh: '市民综合服务', en: 'Citizen services' },
    summary: {
      zh: '面向自然人全生命周期：出生、教育、就业、社保、纳税、购房、婚姻、生育、死亡。',
      en: 'The whole life of a person: birth, education, work, social security, tax, housing, marriage, children, death.',
    },
  },
  {
    id: 'enterprise-services',
    layer: 'application',
    name: { zh: '企业服务与联合监管 · 信用平台', en: 'Enterprise services, joint supervision and credit' },
    summary: {
      zh: '面向企业从开办、成长到关闭的跨部门服务与监管，完善企业信用信息平台。',
      en: 'Cross-department services and supervision from opening a business to closing it, with the enterprise credit platform.',
    },
  },
  {
    id: 'grid',
    layer: 'application',
    name: { zh: '网格化城市管理', en: 'Grid-based city management' },
    summary: {
      zh: '以地理信息为基础，城市问题按网格发现、派遣、处置、核查。',
      en: 'On the geographic base: city problems found, dispatched, handled and checked grid by grid.',
    },
  },
  {
    id: 'macro-economy',
    layer: 'application',
    name: { zh: '宏观经济预测调控', en: 'Macro-economic monitoring and forecasting' },
    summary: {
      zh: '宏观经济信息采集、分析模型、动态跟踪与预测预警。',
      en: 'Collecting macro-economic data, analysis models, tracking, forecasts and early warnings.',
    },
  },
  {
    id: 'office',
    layer: 'application',
    name: { zh: '政府内部管理与协同办公', en: 'Internal administration and office collaboration' },
    summary: {
      zh: '组织、人事、财政、监察、审计、档案、后勤等跨部门协同办公。',
      en: 'Cross-department office work: organisation, personnel, finance, supervision, audit, archives, logistics.',
    },
  },
  {
    id: 'emergency',
    layer: 'application',
    name: { zh: '应急联动指挥', en: 'Emergency command' },
    summary: {
      zh: '整合各部门应急系统：监测、处置、辅助决策、协调联动与资源调度。',
      en: 'Joins the departments’ emergency systems: monitoring, response, decision support, coordination and resource dispatch.',
    },
  },
];

/** The ids every registered module makes available. */
export function providedIds(modules: readonly { provides: readonly string[] }[]): Set<string> {
  return new Set(modules.flatMap((m) => m.provides));
}

export function subsystemStatus(id: string, provided: ReadonlySet<string>): Status {
  return provided.has(id) ? 'available' : 'planned';
}

/** The directory as it stands now. */
export function subsystemsWithStatus(modules: readonly { provides: readonly string[] }[]): SubsystemWithStatus[] {
  const provided = providedIds(modules);
  return SUBSYSTEMS.map((s) => ({ ...s, status: subsystemStatus(s.id, provided) }));
}
