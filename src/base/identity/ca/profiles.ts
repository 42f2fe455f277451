// Certificate profiles: who a certificate may be issued to, what its subject DN says, how long it
// lasts and what its key may be used for (docs/decisions/0006-crypto-and-ca.md §Profiles).
//
//   node          exchange node (数据交换节点)    C=CN, O=<city>人民政府, OU=数据交换节点, CN=<node id>
//   system        department system (部门系统)  C=CN, O=<department name>, OU=<department code>, CN=<system id>
//   legal-person  法人证书                        C=CN, O=<entity name>, CN=<entity name>, serialNumber=<USCC>
//   staff         staff member (工作人员)        C=CN, O=<department name>, OU=<department code>, CN=<name>[, serialNumber=<staff id>]
//
// The unified social credit code goes in serialNumber (2.5.4.5), the attribute X.520 defines for an
// identifier of the subject and the one most Chinese CAs use for 法人 certificates; the department
// code goes in OU, where relying systems look for the organisational unit.
import * as asn1 from '@peculiar/asn1-x509';
import { checkUscc } from '../../codes/index.ts';
import type { CityProfile } from '../../../config/profile.ts';
import { problem } from '../../../http/problems.ts';
import { EKU, type NameAttribute } from './x509.ts';

export const SUBJECT_KINDS = ['node', 'system', 'legal-person', 'staff'] as const;
export type SubjectKind = (typeof SUBJECT_KINDS)[number];

/** what an issuing request says about the subject (validated by checkSubject) */
export interface SubjectInput {
  kind: SubjectKind;
  /** node: the exchange node id of the city profile's network.json */
  nodeId?: string;
  /** system: the system's id, unique within its department */
  systemId?: string;
  /** legal-person: 统一社会信用代码 */
  uscc?: string;
  /** system and staff: a department code of the city profile */
  department?: string;
  /** staff: 工号 (optional) */
  staffId?: string;
  /** legal-person and staff: the name; system: a descriptive name; node: defaults to the profile's */
  name?: string;
}

/** a validated subject, as stored with the certificate and returned by verification */
export interface Subject {
  kind: SubjectKind;
  name: string;
  nodeId?: string;
  systemId?: string;
  uscc?: string;
  department?: string;
  staffId?: string;
}

export interface KindProfile {
  defaultDays: number;
  maxDays: number;
  keyUsage: asn1.KeyUsageFlags;
  extendedKeyUsage: readonly string[];
}

const KU = asn1.KeyUsageFlags;

export const PROFILES: Record<SubjectKind, KindProfile> = {
  // mutual TLS between nodes and signing of exchanged batches
  node: { defaultDays: 730, maxDays: 825, keyUsage: KU.digitalSignature | KU.keyAgreement, extendedKeyUsage: [EKU.serverAuth, EKU.clientAuth] },
  system: { defaultDays: 730, maxDays: 825, keyUsage: KU.digitalSignature | KU.keyAgreement, extendedKeyUsage: [EKU.serverAuth, EKU.clientAuth] },
  // sign-in and signing of filings and documents: non-repudiation matters
  'legal-person': { defaultDays: 365, maxDays: 1095, keyUsage: KU.digitalSignature | KU.nonRepudiation, extendedKeyUsage: [EKU.clientAuth, EKU.documentSigning] },
  staff: { defaultDays: 365, maxDays: 1095, keyUsage: KU.digitalSignature | KU.nonRepudiation, extendedKeyUsage: [EKU.clientAuth, EKU.documentSigning] },
};

// X.520 upper bounds: CN and O 64 characters
const NAME_MAX = 64;
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const STAFF_ID = /^[A-Za-z0-9-]{1,32}$/;

function invalid(field: string, message: string): never {
  throw problem('validation', `subject.${field}: ${message}`, { errors: [{ in: 'body', pointer: `/subject/${field}`, message }] });
}

function text(input: SubjectInput, field: 'name', required: boolean): string | undefined {
  const v = input[field];
  if (v === undefined || v === '') {
    if (required) invalid(field, 'is required');
    return undefined;
  }
  const t = v.trim();
  if (!t || t.length > NAME_MAX) invalid(field, `must be 1 to ${NAME_MAX} characters`);
  if (CONTROL.test(t)) invalid(field, 'must not contain control or bidirectional formatting characters');
  return t;
}

function department(profile: CityProfile, input: SubjectInput): string {
  const code = input.department;
  if (!code) invalid('department', 'is required');
  if (!profile.departments.some((d) => d.code === code)) invalid('department', `no department ${JSON.stringify(code)} in the city profile`);
  return code;
}

/** Validates what a request says about its subject; throws a validation problem naming the field. */
export function checkSubject(profile: CityProfile, input: SubjectInput): Subject {
  const allowed: Record<SubjectKind, readonly (keyof SubjectInput)[]> = {
    node: ['kind', 'nodeId', 'name'],
    system: ['kind', 'systemId', 'department', 'name'],
    'legal-person': ['kind', 'uscc', 'name'],
    staff: ['kind', 'name', 'department', 'staffId'],
  };
  if (!SUBJECT_KINDS.includes(input.kind)) invalid('kind', `must be one of ${SUBJECT_KINDS.join(', ')}`);
  for (const [k, v] of Object.entries(input)) {
    if (v !== undefined && !allowed[input.kind].includes(k as keyof SubjectInput)) invalid(k, `does not apply to a ${input.kind} certificate`);
  }
  switch (input.kind) {
    case 'node': {
      const node = profile.network.find((n) => n.id === input.nodeId);
      if (!input.nodeId) invalid('nodeId', 'is required');
      if (!node) invalid('nodeId', `no exchange node ${JSON.stringify(input.nodeId)} in the city profile's network`);
      return { kind: 'node', nodeId: node.id, name: text(input, 'name', false) ?? node.name };
    }
    case 'system': {
      if (!input.systemId || !ID.test(input.systemId)) invalid('systemId', 'must be 1 to 63 lower-case letters, digits and hyphens, starting with a letter or digit');
      return { kind: 'system', systemId: input.systemId, department: department(profile, input), name: text(input, 'name', true)! };
    }
    case 'legal-person': {
      const uscc = (input.uscc ?? '').trim().toUpperCase();
      if (!uscc) invalid('uscc', 'is required');
      const check = checkUscc(uscc);
      if (!check.ok) invalid('uscc', `not a valid unified social credit code (GB 32100-2015): ${check.reason}`);
      return { kind: 'legal-person', uscc, name: text(input, 'name', true)! };
    }
    case 'staff': {
      if (input.staffId !== undefined && !STAFF_ID.test(input.staffId)) invalid('staffId', 'must be 1 to 32 letters, digits and hyphens');
      const s: Subject = { kind: 'staff', name: text(input, 'name', true)!, department: department(profile, input) };
      if (input.staffId) s.staffId = input.staffId;
      return s;
    }
  }
}

export function cityOrganisation(profile: CityProfile): string {
  return `${profile.city.name}人民政府`;
}

/** The subject DN's attributes, most significant first. */
export function subjectAttributes(profile: CityProfile, s: Subject): [NameAttribute, string][] {
  const dept = s.department ? profile.departments.find((d) => d.code === s.department) : undefined;
  switch (s.kind) {
    case 'node':
      return [['C', 'CN'], ['O', cityOrganisation(profile)], ['OU', '数据交换节点'], ['CN', s.nodeId!]];
    case 'system':
      return [['C', 'CN'], ['O', dept!.name], ['OU', s.department!], ['CN', s.systemId!]];
    case 'legal-person':
      return [['C', 'CN'], ['O', s.name], ['CN', s.name], ['serialNumber', s.uscc!]];
    case 'staff':
      return [['C', 'CN'], ['O', dept!.name], ['OU', s.department!], ['CN', s.name], ...(s.staffId ? [['serialNumber', s.staffId] as [NameAttribute, string]] : [])];
  }
}
