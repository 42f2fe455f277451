// Who a mailbox belongs to. Mailboxes are keyed by identity, not by account, so that a notice can
// reach the many residents who have never signed in: p:<resident ID number>, e:<USCC>,
// s:<staff account id>. When a person signs in, their actor's ID number (or USCC, or account id)
// finds the mailbox that was waiting for them.
import { checkIdNumber, checkUscc } from '../codes/index.ts';
import { divisionByCode, type CityProfile } from '../../config/profile.ts';
import type { Queryable } from '../../db/index.ts';
import type { Lang } from '../../http/i18n.ts';
import type { Actor } from '../identity/policy.ts';
import { findAccountById } from '../identity/index.ts';
import { existingIdNumbers, personAttributes } from '../registries/population/segment.ts';
import { entityAttributes } from '../registries/legal-entity/index.ts';

export type RecipientRef = { idNumber: string } | { uscc: string } | { staffAccountId: string };

/** a recipient that is not well formed */
export class RecipientError extends Error {}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The mailbox key of a recipient; throws RecipientError for a malformed one (checksums included). */
export function ownerKey(r: RecipientRef): string {
  if ('idNumber' in r && typeof r.idNumber === 'string') {
    const c = checkIdNumber(r.idNumber.toUpperCase());
    if (!c.ok) throw new RecipientError(`idNumber: ${c.reason}`);
    return `p:${r.idNumber.toUpperCase()}`;
  }
  if ('uscc' in r && typeof r.uscc === 'string') {
    const c = checkUscc(r.uscc.toUpperCase());
    if (!c.ok) throw new RecipientError(`uscc: ${c.reason}`);
    return `e:${r.uscc.toUpperCase()}`;
  }
  if ('staffAccountId' in r && typeof r.staffAccountId === 'string') {
    if (!UUID.test(r.staffAccountId.toLowerCase())) throw new RecipientError('staffAccountId: expected an account id (UUID)');
    return `s:${r.staffAccountId.toLowerCase()}`;
  }
  throw new RecipientError('expected one of idNumber, uscc or staffAccountId');
}

/** One line of a list: an ID number or a USCC, told apart by their check characters. */
export function ownerKeyOfCode(code: string): string {
  const s = code.trim().toUpperCase();
  if (s.length !== 18) throw new RecipientError(`${JSON.stringify(code.slice(0, 30))}: expected an 18-character ID number or unified social credit code`);
  if (checkIdNumber(s).ok) return `p:${s}`;
  if (checkUscc(s).ok) return `e:${s}`;
  const id = checkIdNumber(s);
  throw new RecipientError(`${s}: neither a valid ID number (${id.ok ? '' : id.reason}) nor a valid unified social credit code`);
}

/** The mailbox of the signed-in person, or null for anyone else. */
export function ownerOfActor(actor: Actor): string | null {
  switch (actor.kind) {
    case 'citizen':
      return `p:${actor.idNumber}`;
    case 'enterprise':
      return `e:${actor.uscc}`;
    case 'staff':
      return `s:${actor.accountId}`;
    default:
      return null;
  }
}

/** Masks an owner key for lists the sender sees: 320508********1234. */
export function maskedOwner(owner: string): string {
  const [kind, id = ''] = [owner.slice(0, 1), owner.slice(2)];
  if (kind === 's') return `staff ${id.slice(0, 8)}…`;
  return id.length === 18 ? `${id.slice(0, 6)}${'*'.repeat(8)}${id.slice(14)}` : id;
}

export interface RecipientAttributes {
  name: string;
  street: string;
  community: string;
  county: string;
  /** false: the registry (or identity) does not know this recipient */
  known: boolean;
}

/** The registry attributes placeholders use, for a batch of mailbox owners, with division names from the profile. */
export async function recipientAttributes(q: Queryable, profile: CityProfile, owners: readonly string[], lang: Lang): Promise<Map<string, RecipientAttributes>> {
  const divisionName = (code: string | null) => {
    if (!code) return '';
    const d = divisionByCode(profile, code.trim());
    return d ? (lang === 'en' ? d.nameEn : d.name) : '';
  };
  const out = new Map<string, RecipientAttributes>();
  const persons = owners.filter((o) => o.startsWith('p:')).map((o) => o.slice(2));
  const entities = owners.filter((o) => o.startsWith('e:')).map((o) => o.slice(2));
  const staff = owners.filter((o) => o.startsWith('s:')).map((o) => o.slice(2));
  const [p, e] = await Promise.all([personAttributes(q, persons), entityAttributes(q, entities)]);
  for (const [id, a] of p) out.set(`p:${id}`, { name: a.name, street: divisionName(a.streetCode), community: divisionName(a.communityCode), county: divisionName(a.countyCode), known: true });
  for (const [uscc, a] of e) out.set(`e:${uscc}`, { name: a.name, street: divisionName(a.streetCode), community: '', county: divisionName(a.countyCode), known: true });
  for (const id of staff) {
    const a = await findAccountById(q, id);
    if (a && a.kind === 'staff') out.set(`s:${id}`, { name: a.name, street: '', community: '', county: '', known: true });
  }
  return out;
}

/** Which of these owners exist: residents in the population registry, enterprises in the legal-entity registry, staff in identity. */
export async function knownOwners(q: Queryable, owners: readonly string[]): Promise<Set<string>> {
  const persons = owners.filter((o) => o.startsWith('p:')).map((o) => o.slice(2));
  const entities = owners.filter((o) => o.startsWith('e:')).map((o) => o.slice(2));
  const staff = owners.filter((o) => o.startsWith('s:')).map((o) => o.slice(2));
  const out = new Set<string>();
  for (const id of await existingIdNumbers(q, persons)) out.add(`p:${id}`);
  for (const uscc of (await entityAttributes(q, entities)).keys()) out.add(`e:${uscc}`);
  for (const id of staff) {
    const a = await findAccountById(q, id);
    if (a && a.kind === 'staff' && a.status === 'active') out.add(`s:${id}`);
  }
  return out;
}

/** why an owner is not reachable, for the delivery's last_error */
export function unknownReason(owner: string): string {
  return owner.startsWith('p:') ? 'not in the population registry' : owner.startsWith('e:') ? 'not in the legal-entity registry' : 'no such active staff account';
}
