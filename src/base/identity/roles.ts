// The roles staff can hold. Declared here (what a role means is code: the policies name them); who
// holds which role, and where, is data (identity.role_grant), granted and revoked in the console.
// A department-scoped role is always granted for one department; a city-wide one for none.
import type { Text } from '../../http/i18n.ts';

export interface RoleDefinition {
  id: string;
  name: Text;
  description: Text;
  /** granted per department (scope = department code) rather than city-wide */
  departmentScoped: boolean;
}

export const ROLES: readonly RoleDefinition[] = [
  {
    id: 'platform-admin',
    name: { zh: '平台管理员', en: 'Platform administrator' },
    description: { zh: '管理账号与角色授权、平台配置。', en: 'Manages accounts, role grants and platform settings.' },
    departmentScoped: false,
  },
  {
    id: 'security-officer',
    name: { zh: '安全审计员', en: 'Security officer' },
    description: { zh: '查阅审计日志与授权记录，不能授权。', en: 'Reads the audit log and the grant history; cannot grant.' },
    departmentScoped: false,
  },
  {
    id: 'ca-operator',
    name: { zh: '证书管理员', en: 'CA operator' },
    description: { zh: '签发、吊销数字证书。', en: 'Issues and revokes certificates.' },
    departmentScoped: false,
  },
  {
    id: 'registry-steward',
    name: { zh: '基础数据管理员', en: 'Registry steward' },
    description: { zh: '维护人口、法人等基础数据库的数据质量。', en: 'Looks after the quality of the population and legal-entity registries.' },
    departmentScoped: true,
  },
  {
    id: 'catalog-admin',
    name: { zh: '资源目录管理员', en: 'Catalogue administrator' },
    description: { zh: '登记信息资源、审批共享协议。', en: 'Registers information resources and approves sharing agreements.' },
    departmentScoped: false,
  },
  {
    id: 'exchange-operator',
    name: { zh: '交换平台运维', en: 'Exchange operator' },
    description: { zh: '管理数据交换节点、成员与死信重放。', en: 'Runs the exchange nodes and members, replays dead letters.' },
    departmentScoped: false,
  },
  {
    id: 'department-lead',
    name: { zh: '部门负责人', en: 'Head of department' },
    description: { zh: '审批本部门事项，接收超期任务的督办升级。', en: 'Approves the department’s matters; overdue tasks are escalated to them.' },
    departmentScoped: true,
  },
  {
    id: 'process-designer',
    name: { zh: '流程管理员', en: 'Process designer' },
    description: { zh: '设计、发布本部门牵头的跨部门业务流程。', en: 'Designs and deploys the cross-department processes the department owns.' },
    departmentScoped: true,
  },
  {
    id: 'dispatcher',
    name: { zh: '派遣员', en: 'Dispatcher' },
    description: { zh: '受理并派遣事件、工单至承办部门。', en: 'Takes in cases and dispatches them to the departments that handle them.' },
    departmentScoped: true,
  },
  {
    id: 'case-handler',
    name: { zh: '承办人员', en: 'Case handler' },
    description: { zh: '办理本部门的工单与审批事项。', en: 'Handles the department’s cases and applications.' },
    departmentScoped: true,
  },
  {
    id: 'grid-supervisor',
    name: { zh: '网格监督员', en: 'Grid supervisor' },
    description: { zh: '监督网格事件的处置与时限。', en: 'Supervises how grid cases are handled and on time.' },
    departmentScoped: true,
  },
  {
    id: 'notice-sender',
    name: { zh: '通知发布员', en: 'Notice sender' },
    description: { zh: '以本部门名义向市民、企业信箱发布通知，维护本部门通知模板。', en: 'Sends notices to residents’ and enterprises’ mailboxes in the department’s name and keeps its notice templates.' },
    departmentScoped: true,
  },
];

export function roleById(id: string): RoleDefinition | undefined {
  return ROLES.find((r) => r.id === id);
}
