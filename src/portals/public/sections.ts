// The portal's three entry points (the seed's 信息公开 / 在线办事 / 公众参与) and what each one
// offers. An item is usable only when the subsystem that delivers it is provided by a registered
// module; until then it is shown as planned, without a link.
import type { Text } from '../../http/i18n.ts';
import { M } from '../../http/messages.ts';
import type { Status } from '../../http/layout.ts';
import { SUBSYSTEMS, subsystemStatus } from './subsystems.ts';

export type SectionId = 'disclosure' | 'services' | 'participation';

export interface SectionItem {
  name: Text;
  summary: Text;
  /** the subsystem id (see subsystems.ts) whose module makes this item work */
  subsystem: string;
  href?: string;
}

export interface Section {
  id: SectionId;
  href: string;
  icon: string;
  name: Text;
  summary: Text;
  items: SectionItem[];
}

export const SECTIONS: readonly Section[] = [
  {
    id: 'disclosure',
    href: '/disclosure',
    icon: '/assets/img/icons/disclosure.svg',
    name: M.disclosure,
    summary: M.disclosureSummary,
    items: [
      {
        name: M.divisions,
        summary: { zh: '全市县级行政区及下辖街道、镇。', en: 'The county-level divisions and their sub-districts and towns.' },
        subsystem: 'portal',
        href: '/disclosure/divisions',
      },
      {
        name: M.departments,
        summary: { zh: '参与信息共享与业务协同的市级部门。', en: 'The municipal departments taking part in sharing and collaboration.' },
        subsystem: 'portal',
        href: '/disclosure/departments',
      },
      {
        name: { zh: '开放接口', en: 'Open APIs' },
        summary: {
          zh: '城市概况与子系统目录的 JSON 接口及其 OpenAPI 文档。',
          en: 'JSON APIs for the city profile and the subsystem directory, with their OpenAPI documentation.',
        },
        subsystem: 'portal',
        href: '/api/docs',
      },
      {
        name: { zh: '政务信息资源目录', en: 'Government information-resource catalogue' },
        summary: {
          zh: '各部门的公共信息资源及其共享方式，可按 DCAT 格式下载。',
          en: 'Every department’s public information resources and how they are shared, downloadable as DCAT.',
        },
        subsystem: 'catalog',
      },
      {
        name: { zh: '经济运行数据', en: 'Economic indicators' },
        summary: {
          zh: '全市宏观经济指标、跟踪分析与预测。',
          en: 'The city’s macro-economic indicators, tracking and forecasts.',
        },
        subsystem: 'macro-economy',
      },
      {
        name: { zh: '突发事件预警信息', en: 'Emergency alerts' },
        summary: {
          zh: '按 CAP 1.2 标准发布的预警与应急信息。',
          en: 'Warnings and emergency information published as CAP 1.2 alerts.',
        },
        subsystem: 'emergency',
      },
    ],
  },
  {
    id: 'services',
    href: '/services',
    icon: '/assets/img/icons/services.svg',
    name: M.services,
    summary: M.servicesSummary,
    items: [
      {
        name: { zh: '市民个人办事', en: 'Services for residents' },
        summary: {
          zh: '出生、入学、就业、社保、婚姻、生育、养老等人生大事，一次申请、部门协同办理。',
          en: 'Life events — birth, school, work, social insurance, marriage, children, retirement — applied for once and handled jointly by the departments.',
        },
        subsystem: 'citizen-services',
      },
      {
        name: { zh: '企业办事与“一表制”报送', en: 'Enterprise services and one-form reporting' },
        summary: {
          zh: '企业开办、变更、年报，一张表报送多个部门。',
          en: 'Opening, changing and annual reporting for businesses, one form for several departments.',
        },
        subsystem: 'enterprise-portal',
      },
      {
        name: { zh: '企业信用信息查询', en: 'Enterprise credit look-up' },
        summary: {
          zh: '企业公示信息、信用记录与联合奖惩。',
          en: 'Published enterprise information, credit records and joint rewards and sanctions.',
        },
        subsystem: 'enterprise-services',
      },
      {
        name: { zh: '实名制市民信箱', en: 'Real-name citizen mailbox' },
        summary: {
          zh: '接收政府部门和公共事业单位发给您本人的通知与办理结果。',
          en: 'Notices and results of your applications from government and public utilities, addressed to you.',
        },
        subsystem: 'mailbox',
      },
      {
        name: { zh: '统一身份认证', en: 'Single sign-on' },
        summary: {
          zh: '一个账号登录全部在线服务，基于数字证书的法人身份。',
          en: 'One account for every online service; certificate-based identities for organisations.',
        },
        subsystem: 'security',
      },
    ],
  },
  {
    id: 'participation',
    href: '/participation',
    icon: '/assets/img/icons/participation.svg',
    name: M.participation,
    summary: M.participationSummary,
    items: [
      {
        name: { zh: '市民热线', en: 'Citizen hotline' },
        summary: {
          zh: '电话或网上咨询、投诉和建议，由相关部门限时答复。',
          en: 'Questions, complaints and suggestions by phone or online, answered by the responsible department within a deadline.',
        },
        subsystem: 'hotline',
      },
      {
        name: { zh: '城市问题上报', en: 'Report a problem in the city' },
        summary: {
          zh: '道路、井盖、垃圾、违章等问题按网格派遣处置，可跟踪进度（Open311 接口）。',
          en: 'Roads, manholes, litter, illegal building: dispatched by grid and trackable (Open311 API).',
        },
        subsystem: 'grid',
      },
      {
        name: { zh: '给政府写信', en: 'Write to the government' },
        summary: {
          zh: '通过实名制市民信箱提出意见建议，并收到答复。',
          en: 'Send opinions and suggestions through the real-name citizen mailbox and receive the answer there.',
        },
        subsystem: 'mailbox',
      },
    ],
  },
];

export interface SectionItemWithStatus extends SectionItem {
  status: Status;
}

export function sectionItems(section: Section, provided: ReadonlySet<string>): SectionItemWithStatus[] {
  // an item without its own link goes where its subsystem is used
  return section.items.map((item) => ({ ...item, href: item.href ?? SUBSYSTEMS.find((s) => s.id === item.subsystem)?.href, status: subsystemStatus(item.subsystem, provided) }));
}

export function sectionById(id: SectionId): Section {
  return SECTIONS.find((s) => s.id === id)!;
}
