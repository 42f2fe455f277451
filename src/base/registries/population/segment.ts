// Segments of the population registry: a declared filter (divisions of the city profile, an age
// range reckoned on a given day, sex) validated here and turned into SQL that other modules run
// inside `insert ... select`, so that choosing a million residents happens in the database, never
// by shipping their rows through Node. Plus the few attribute look-ups a notice needs (name and
// address divisions of given residents). Callers get ID numbers and counts, not personal records.
import { divisionByCode, type CityProfile } from '../../../config/profile.ts';
import type { Queryable } from '../../../db/index.ts';

export interface SegmentFilter {
  /** county (6 digits), township (9) or community/village (12) codes of the city profile; absent or empty: the whole city */
  divisions?: string[];
  /** age in whole years on the reference day, inclusive */
  minAge?: number;
  maxAge?: number;
  sex?: 'M' | 'F';
}

/** a filter that cannot be used: the message names the field and why */
export class SegmentError extends Error {}

export const MAX_SEGMENT_DIVISIONS = 200;
const MAX_AGE = 150;

/** Checks a filter against the city profile and returns it normalised (codes de-duplicated and sorted). */
export function checkSegment(profile: CityProfile, f: SegmentFilter): SegmentFilter {
  const out: SegmentFilter = {};
  if (f.divisions !== undefined) {
    if (!Array.isArray(f.divisions)) throw new SegmentError('divisions: expected a list of division codes');
    if (f.divisions.length > MAX_SEGMENT_DIVISIONS) throw new SegmentError(`divisions: at most ${MAX_SEGMENT_DIVISIONS} codes`);
    const codes = new Set<string>();
    for (const c of f.divisions) {
      if (typeof c !== 'string' || !/^(\d{6}|\d{9}|\d{12})$/.test(c)) throw new SegmentError(`divisions: ${JSON.stringify(String(c).slice(0, 20))} is not a 6-, 9- or 12-digit division code`);
      if (!divisionByCode(profile, c)) throw new SegmentError(`divisions: ${c} is not a division of ${profile.city.name}`);
      codes.add(c);
    }
    if (codes.size) out.divisions = [...codes].sort();
  }
  for (const k of ['minAge', 'maxAge'] as const) {
    const v = f[k];
    if (v === undefined || v === null) continue;
    if (!Number.isInteger(v) || v < 0 || v > MAX_AGE) throw new SegmentError(`${k}: expected a whole number from 0 to ${MAX_AGE}`);
    out[k] = v;
  }
  if (out.minAge !== undefined && out.maxAge !== undefined && out.minAge > out.maxAge) throw new SegmentError('minAge is above maxAge');
  if (f.sex !== undefined && f.sex !== null) {
    if (f.sex !== 'M' && f.sex !== 'F') throw new SegmentError('sex: expected M or F');
    out.sex = f.sex;
  }
  return out;
}

export interface SegmentSqlOptions {
  /** the day ages are reckoned on, YYYY-MM-DD (keep it fixed for one notice so every chunk agrees) */
  asOf: string;
  /** number of the first placeholder the returned SQL uses ($n) */
  firstParam: number;
  /** ID-number range: lo inclusive, hi exclusive; null or absent: open */
  lo?: string | null;
  hi?: string | null;
}

/**
 * `select id_number from population.person where ...` for a filter already checked by
 * checkSegment, with its parameters numbered from opts.firstParam. Embed it as a subquery: the only
 * column is id_number.
 */
export function segmentSql(f: SegmentFilter, o: SegmentSqlOptions): { sql: string; params: unknown[] } {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(o.asOf)) throw new SegmentError('asOf: expected YYYY-MM-DD');
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${o.firstParam + params.length - 1}`;
  };
  const where: string[] = [];
  const codes = f.divisions ?? [];
  if (codes.length) {
    const by = (len: number) => codes.filter((c) => c.length === len);
    const parts: string[] = [];
    if (by(6).length) parts.push(`county_code = any(${p(by(6))}::bpchar[])`);
    if (by(9).length) parts.push(`street_code = any(${p(by(9))}::bpchar[])`);
    if (by(12).length) parts.push(`community_code = any(${p(by(12))}::bpchar[])`);
    where.push(`(${parts.join(' or ')})`);
  }
  // age >= a  <=>  born on or before asOf minus a years;  age <= b  <=>  born after asOf minus (b + 1) years
  if (f.minAge !== undefined) where.push(`birth_date <= (${p(o.asOf)}::date - make_interval(years => ${p(f.minAge)}::int))::date`);
  if (f.maxAge !== undefined) where.push(`birth_date > (${p(o.asOf)}::date - make_interval(years => ${p(f.maxAge + 1)}::int))::date`);
  if (f.sex) where.push(`sex = ${p(f.sex)}`);
  if (o.lo) where.push(`id_number >= ${p(o.lo)}`);
  if (o.hi) where.push(`id_number < ${p(o.hi)}`);
  return { sql: `select id_number from population.person${where.length ? ` where ${where.join(' and ')}` : ''}`, params };
}

/** How many residents the filter selects on that day. */
export async function countSegment(q: Queryable, f: SegmentFilter, asOf: string): Promise<number> {
  const s = segmentSql(f, { asOf, firstParam: 1 });
  const { rows } = await q.query<{ n: number }>(`select count(*)::int as n from (${s.sql}) s`, s.params);
  return rows[0]!.n;
}

/**
 * Cuts the segment into ranges of about `size` residents each, in ID-number order: returns the first
 * ID number of every range after the first (so n boundaries give n + 1 ranges), in one pass.
 */
export async function segmentBoundaries(q: Queryable, f: SegmentFilter, asOf: string, size: number): Promise<string[]> {
  const s = segmentSql(f, { asOf, firstParam: 2 });
  const { rows } = await q.query<{ id_number: string }>(
    `select id_number from (select id_number, row_number() over (order by id_number) - 1 as rn from (${s.sql}) s) r
      where rn > 0 and rn % $1 = 0 order by id_number`,
    [size, ...s.params],
  );
  return rows.map((r) => r.id_number);
}

export interface PersonAttributes {
  name: string;
  countyCode: string;
  streetCode: string | null;
  communityCode: string | null;
}

/** Name and address divisions of these residents (unknown ID numbers are absent from the map). */
export async function personAttributes(q: Queryable, idNumbers: readonly string[]): Promise<Map<string, PersonAttributes>> {
  const ids = [...new Set(idNumbers.filter((i) => /^[0-9]{17}[0-9X]$/.test(i)))];
  const out = new Map<string, PersonAttributes>();
  if (!ids.length) return out;
  const { rows } = await q.query<{ id_number: string; name: string; county_code: string; street_code: string | null; community_code: string | null }>(
    'select id_number, name, county_code, street_code, community_code from population.person where id_number = any($1::bpchar[])',
    [ids],
  );
  for (const r of rows) out.set(r.id_number, { name: r.name, countyCode: r.county_code, streetCode: r.street_code, communityCode: r.community_code });
  return out;
}

/** Which of these ID numbers the registry holds. */
export async function existingIdNumbers(q: Queryable, idNumbers: readonly string[]): Promise<Set<string>> {
  const ids = [...new Set(idNumbers.filter((i) => /^[0-9]{17}[0-9X]$/.test(i)))];
  if (!ids.length) return new Set();
  const { rows } = await q.query<{ id_number: string }>('select id_number from population.person where id_number = any($1::bpchar[])', [ids]);
  return new Set(rows.map((r) => r.id_number));
}
