// National standard identifier codes: check characters, validation and construction.
//   GB 11643-1999 公民身份号码 (citizen ID number)
//   GB 32100-2015 法人和其他组织统一社会信用代码 (unified social credit code, USCC)
//   GB 11714-1997 组织机构代码 (organisation code, embedded in the USCC as 主体标识码)
// Pure functions, no I/O. Checks are structural: a code that passes was well formed and carries a
// correct check character; whether it was ever issued is a question for the registries.

export type CodeCheck<T> = ({ ok: true } & T) | { ok: false; reason: string };

// ---------------------------------------------------------------------------------------------
// GB 11643-1999 公民身份号码: 6-digit address code (GB/T 2260), 8-digit birth date, 3-digit
// sequence (odd for men, even for women), 1 check character (ISO 7064 MOD 11-2).

const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2] as const;
const ID_CHECK = '10X98765432';

/** GB/T 2260 province-level prefixes; 81/82/83 appear on residence permits of HK, Macao and Taiwan residents. */
const PROVINCE_PREFIXES = new Set([
  '11', '12', '13', '14', '15', '21', '22', '23', '31', '32', '33', '34', '35', '36', '37',
  '41', '42', '43', '44', '45', '46', '50', '51', '52', '53', '54', '61', '62', '63', '64', '65',
  '71', '81', '82', '83',
]);

export function idNumberCheckDigit(first17: string): string {
  if (!/^\d{17}$/.test(first17)) throw new TypeError(`expected 17 digits, got ${JSON.stringify(first17)}`);
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += (first17.charCodeAt(i) - 48) * ID_WEIGHTS[i]!;
  return ID_CHECK[sum % 11]!;
}

export interface IdNumberParts {
  /** the 6-digit address code (行政区划代码) of where the number was issued */
  region: string;
  /** YYYY-MM-DD */
  birthDate: string;
  sex: 'M' | 'F';
}

/** Earliest birth date accepted; anything earlier is far more likely a typo than a living resident. */
const MIN_BIRTH_YEAR = 1900;

/** `today` (YYYY-MM-DD) exists for tests; a birth date after it is rejected. */
export function checkIdNumber(s: string, today: string = isoDate(new Date())): CodeCheck<IdNumberParts> {
  if (s.length !== 18) return { ok: false, reason: `length: expected 18 characters, got ${s.length}` };
  if (!/^\d{17}[\dX]$/.test(s)) return { ok: false, reason: 'characters: expected 17 digits and a final digit or X' };
  const region = s.slice(0, 6);
  if (!PROVINCE_PREFIXES.has(region.slice(0, 2))) return { ok: false, reason: `region: ${region} has no valid province prefix` };
  const birthDate = `${s.slice(6, 10)}-${s.slice(10, 12)}-${s.slice(12, 14)}`;
  const dateProblem = birthDateProblem(birthDate, today);
  if (dateProblem) return { ok: false, reason: `invalid birth date ${birthDate}: ${dateProblem}` };
  const expected = idNumberCheckDigit(s.slice(0, 17));
  if (s[17] !== expected) return { ok: false, reason: `check digit mismatch: expected ${expected}, got ${s[17]}` };
  return { ok: true, region, birthDate, sex: (s.charCodeAt(16) - 48) % 2 === 1 ? 'M' : 'F' };
}

/** birthDate as YYYYMMDD, sequence as 3 digits (odd: male, even: female). */
export function makeIdNumber(region6: string, birthDateYYYYMMDD: string, sequence3: string): string {
  if (!/^\d{6}$/.test(region6)) throw new TypeError(`region must be 6 digits, got ${JSON.stringify(region6)}`);
  if (!/^\d{8}$/.test(birthDateYYYYMMDD)) throw new TypeError(`birth date must be YYYYMMDD, got ${JSON.stringify(birthDateYYYYMMDD)}`);
  if (!/^\d{3}$/.test(sequence3)) throw new TypeError(`sequence must be 3 digits, got ${JSON.stringify(sequence3)}`);
  const first17 = region6 + birthDateYYYYMMDD + sequence3;
  return first17 + idNumberCheckDigit(first17);
}

function birthDateProblem(date: string, today: string): string | null {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  if (m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m)) return 'not a calendar date';
  if (y < MIN_BIRTH_YEAR) return `before ${MIN_BIRTH_YEAR}`;
  if (date > today) return 'in the future';
  return null;
}

export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function isoDate(d: Date): string {
  // local calendar date: the birth date on an ID is a local date
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getFullYear(), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

// ---------------------------------------------------------------------------------------------
// GB 11714-1997 组织机构代码: 8 body characters (digits, upper-case Latin letters) + 1 check
// character. Letters count A=10 … Z=35 over the full alphabet, which is not the USCC's mapping.

const ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2] as const;

function orgCharValue(c: string): number {
  const code = c.charCodeAt(0);
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 65 && code <= 90) return code - 55;
  return -1;
}

export function orgCodeCheckChar(first8: string): string {
  if (!/^[0-9A-Z]{8}$/.test(first8)) throw new TypeError(`expected 8 digits or capital letters, got ${JSON.stringify(first8)}`);
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += orgCharValue(first8[i]!) * ORG_WEIGHTS[i]!;
  const c = 11 - (sum % 11);
  return c === 10 ? 'X' : c === 11 ? '0' : String(c);
}

export interface OrgCodeParts {
  /** the 9-character form without hyphen */
  code: string;
}

/** Accepts "XXXXXXXXC" or the printed form "XXXXXXXX-C". */
export function checkOrgCode(s: string): CodeCheck<OrgCodeParts> {
  const compact = s.length === 10 && s[8] === '-' ? s.slice(0, 8) + s[9] : s;
  if (compact.length !== 9) return { ok: false, reason: `length: expected 9 characters (or 10 as XXXXXXXX-X), got ${s.length}` };
  if (!/^[0-9A-Z]{8}[0-9X]$/.test(compact)) return { ok: false, reason: 'characters: expected 8 digits or capital letters and a final digit or X' };
  const expected = orgCodeCheckChar(compact.slice(0, 8));
  if (compact[8] !== expected) return { ok: false, reason: `check character mismatch: expected ${expected}, got ${compact[8]}` };
  return { ok: true, code: compact };
}

// ---------------------------------------------------------------------------------------------
// GB 32100-2015 统一社会信用代码: 登记管理部门 (1) + 机构类别 (1) + 行政区划码 (6) +
// 主体标识码 = organisation code (9) + check character (1, ISO 7064 MOD 31-3 style).

export const USCC_ALPHABET = '0123456789ABCDEFGHJKLMNPQRTUWXY';
const USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28] as const;
const USCC_RE = /^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$/;

export function usccCheckChar(first17: string): string {
  if (!/^[0-9A-HJ-NPQRTUWXY]{17}$/.test(first17)) throw new TypeError(`expected 17 characters of ${USCC_ALPHABET}, got ${JSON.stringify(first17)}`);
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += USCC_ALPHABET.indexOf(first17[i]!) * USCC_WEIGHTS[i]!;
  return USCC_ALPHABET[(31 - (sum % 31)) % 31]!;
}

export interface UsccParts {
  /** 登记管理部门代码, e.g. 9 market regulation (工商), 5 civil affairs (民政), 1 establishment (机构编制) */
  registrationAuthority: string;
  /** 机构类别代码, e.g. under 9: 1 enterprise, 2 individually owned business, 3 farmers' cooperative */
  entityType: string;
  /** 6-digit GB/T 2260 code of the registering authority's area */
  region: string;
  /** 9-character GB 11714 organisation code (主体标识码) */
  orgCode: string;
}

export function checkUscc(s: string): CodeCheck<UsccParts> {
  if (s.length !== 18) return { ok: false, reason: `length: expected 18 characters, got ${s.length}` };
  if (!USCC_RE.test(s)) {
    return { ok: false, reason: `characters: expected digits and capital letters except I, O, S, V, Z, with digits in positions 3-8` };
  }
  const expected = usccCheckChar(s.slice(0, 17));
  if (s[17] !== expected) return { ok: false, reason: `check character mismatch: expected ${expected}, got ${s[17]}` };
  // GB 32100 §4.3: the 主体标识码 is a GB 11714 organisation code and carries its own check character
  const org = checkOrgCode(s.slice(8, 17));
  if (!org.ok) return { ok: false, reason: `organisation code ${s.slice(8, 17)}: ${org.reason}` };
  return { ok: true, registrationAuthority: s[0]!, entityType: s[1]!, region: s.slice(2, 8), orgCode: s.slice(8, 17) };
}

/** orgCode9 may be 8 body characters (its check character is then computed) or a full 9-character code. */
export function makeUscc(authority1: string, type1: string, region6: string, orgCode9: string): string {
  if (!/^[0-9A-HJ-NPQRTUWXY]$/.test(authority1)) throw new TypeError(`authority must be one character of ${USCC_ALPHABET}`);
  if (!/^[0-9A-HJ-NPQRTUWXY]$/.test(type1)) throw new TypeError(`type must be one character of ${USCC_ALPHABET}`);
  if (!/^\d{6}$/.test(region6)) throw new TypeError(`region must be 6 digits, got ${JSON.stringify(region6)}`);
  const org = orgCode9.length === 8 ? orgCode9 + orgCodeCheckChar(orgCode9) : orgCode9;
  if (!/^[0-9A-HJ-NPQRTUWXY]{9}$/.test(org)) throw new TypeError(`organisation code must use the USCC alphabet, got ${JSON.stringify(orgCode9)}`);
  const checked = checkOrgCode(org);
  if (!checked.ok) throw new TypeError(`organisation code ${org}: ${checked.reason}`);
  const first17 = authority1 + type1 + region6 + org;
  return first17 + usccCheckChar(first17);
}
