// The comparisons, declared as data: each canonical field has a comparator kind, and each kind has
// ordered comparison levels as Splink's (level 0 is null, then from the closest agreement down to
// "else"). A kind prepares a feature per record once (normalised text, pinyin, tokens, day number)
// and compares two features without allocating.
import { addressTokens, normalizePhone, normalizeSex, normalizeText, parseDate, soundTokens } from './normalize.ts';
import { charMask, damerau, jaroWinkler, jaroWinklerBound, withinOneEdit } from './strings.ts';

export type ComparatorKind = 'name' | 'date' | 'address' | 'text' | 'code' | 'email' | 'exact';

/** the canonical fields the engine knows and how each is compared; `extra.NAME` fields are 'text' */
export const CANONICAL_FIELDS = {
  given_name: 'name',
  family_name: 'name',
  full_name: 'name',
  birth_date: 'date',
  sex: 'exact',
  address: 'address',
  postcode: 'code',
  city: 'text',
  phone: 'code',
  email: 'email',
  id_number: 'exact',
} as const satisfies Record<string, ComparatorKind>;

export type CanonicalField = keyof typeof CANONICAL_FIELDS;

export function isCanonicalField(f: string): f is CanonicalField {
  return Object.prototype.hasOwnProperty.call(CANONICAL_FIELDS, f);
}

/** a canonical field or `extra.NAME` (letters, digits, _ and -) */
export function isKnownField(f: string): boolean {
  return isCanonicalField(f) || /^extra\.[A-Za-z0-9_-]{1,64}$/.test(f);
}

export function kindOfField(f: string): ComparatorKind {
  return isCanonicalField(f) ? CANONICAL_FIELDS[f] : 'text';
}

/** What a comparison of one field sees of one record; null when the value is missing. */
export interface Feature {
  /** normalised value: the exact level and term frequencies use it */
  norm: string;
  /** name: pinyin / folded letters without spaces; email: the user part; date: YYYYMMDD */
  key: string;
  /** name: sound tokens sorted; date: the YYYYDDMM reading */
  alt: string;
  /** address tokens */
  tokens: readonly string[];
  /** date: days since 1970 (NaN when not a date) */
  num: number;
  /** charMask of the string Jaro-Winkler compares (key for names and e-mail, norm otherwise) */
  mask: number;
}

const NO_TOKENS: readonly string[] = [];

function feature(norm: string, key = norm, alt = '', tokens = NO_TOKENS, num = NaN, mask = 0): Feature {
  return { norm, key, alt, tokens, num, mask };
}

export interface Comparator {
  kind: ComparatorKind;
  /** labels of the levels, index = level; 0 is always 'null' and the last 'else' */
  levels: readonly string[];
  prepare(raw: string, field: string): Feature | null;
  /** the level (1 .. levels.length-1) of two present features */
  compare(a: Feature, b: Feature): number;
}

const name: Comparator = {
  kind: 'name',
  // 'swapped fields': given name of one is the family name of the other (set by the engine, which sees both fields)
  levels: ['null', 'exact', 'same pinyin or spelling', 'transposed', 'swapped fields', 'jaro-winkler >= 0.92', 'jaro-winkler >= 0.8', 'else'],
  prepare(raw, field) {
    const norm = normalizeText(raw).replace(/[\s·.\-'’,]+/g, ' ').trim();
    if (!norm) return null;
    const tokens = soundTokens(norm, field === 'family_name' || field === 'full_name');
    if (!tokens.length) return null;
    const key = tokens.join('');
    return feature(norm.replace(/ /g, ''), key, [...tokens].sort().join(''), NO_TOKENS, NaN, charMask(key));
  },
  compare(a, b) {
    if (a.norm === b.norm) return 1;
    if (a.key === b.key) return 2;
    if (a.alt === b.alt) return 3;
    if (jaroWinklerBound(a.key, b.key, b.mask) < 0.8) return 7;
    const jw = jaroWinkler(a.key, b.key);
    if (jw >= 0.92) return 5;
    if (jw >= 0.8) return 6;
    return 7;
  },
};

/** the name level meaning "this field of one record is the partner field of the other" */
export const NAME_SWAPPED_LEVEL = 4;

const date: Comparator = {
  kind: 'date',
  levels: ['null', 'exact', 'day and month swapped', 'damerau-levenshtein <= 1', 'within 31 days', 'within 366 days', 'within 10 years', 'else'],
  prepare(raw) {
    const d = parseDate(raw);
    if (!d) return null;
    const alt = d.digits.length === 8 ? d.digits.slice(0, 4) + d.digits.slice(6, 8) + d.digits.slice(4, 6) : '';
    return feature(d.digits, d.digits, alt, NO_TOKENS, d.day);
  },
  compare(a, b) {
    if (a.norm === b.norm) return 1;
    if (a.alt !== '' && a.alt === b.norm) return 2;
    if (withinOneEdit(a.norm, b.norm)) return 3;
    const diff = Math.abs(a.num - b.num); // NaN when either is not a calendar date: falls through
    if (diff <= 31) return 4;
    if (diff <= 366) return 5;
    if (diff <= 3653) return 6;
    return 7;
  },
};

/** tokens equal, or (for tokens of 4+ letters without digits) one edit apart */
function nearToken(x: string, y: string): boolean {
  if (x === y) return true;
  if (x.length < 4 || y.length < 4 || hasDigit(x) || hasDigit(y)) return false;
  return withinOneEdit(x, y);
}

function hasDigit(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) return true;
  }
  return false;
}

const address: Comparator = {
  kind: 'address',
  levels: ['null', 'exact', 'tokens of one within the other', 'tokens within the other, allowing typos', 'half the tokens', 'else'],
  prepare(raw) {
    const norm = normalizeText(raw);
    const tokens = addressTokens(norm);
    if (!tokens.length) return null;
    return feature(tokens.join(' '), tokens.join(''), '', tokens);
  },
  compare(a, b) {
    if (a.norm === b.norm || a.key === b.key) return 1;
    const aShort = a.tokens.length <= b.tokens.length;
    const short = aShort ? a.tokens : b.tokens;
    const long = aShort ? b.tokens : a.tokens;
    let exact = 0;
    let near = 0;
    for (let i = 0; i < short.length; i++) {
      const t = short[i]!;
      let best = 0;
      for (let j = 0; j < long.length; j++) {
        const u = long[j]!;
        if (t === u) { best = 2; break; }
        if (best === 0 && nearToken(t, u)) best = 1;
      }
      if (best === 2) exact++;
      else if (best === 1) near++;
    }
    if (exact === short.length && (short.length >= 2 || long.length === 1)) return 2;
    if (exact + near === short.length && short.length >= 2) return 3;
    if ((exact + near) * 2 >= Math.max(2, long.length)) return 4;
    return 5;
  },
};

const text: Comparator = {
  kind: 'text',
  levels: ['null', 'exact', 'damerau-levenshtein <= 1', 'jaro-winkler >= 0.9', 'jaro-winkler >= 0.7', 'else'],
  prepare(raw) {
    const norm = normalizeText(raw);
    return norm ? feature(norm, norm, '', NO_TOKENS, NaN, charMask(norm)) : null;
  },
  compare(a, b) {
    if (a.norm === b.norm) return 1;
    if (withinOneEdit(a.norm, b.norm)) return 2;
    if (jaroWinklerBound(a.norm, b.norm, b.mask) < 0.7) return 5;
    const jw = jaroWinkler(a.norm, b.norm);
    if (jw >= 0.9) return 3;
    if (jw >= 0.7) return 4;
    return 5;
  },
};

const code: Comparator = {
  kind: 'code',
  levels: ['null', 'exact', 'damerau-levenshtein <= 1', 'damerau-levenshtein <= 2', 'else'],
  prepare(raw, field) {
    const norm = field === 'phone' ? normalizePhone(raw) : normalizeText(raw).replace(/[\s-]+/g, '');
    return norm ? feature(norm) : null;
  },
  compare(a, b) {
    if (a.norm === b.norm) return 1;
    if (withinOneEdit(a.norm, b.norm)) return 2;
    return damerau(a.norm, b.norm, 2) <= 2 ? 3 : 4;
  },
};

const email: Comparator = {
  kind: 'email',
  levels: ['null', 'exact', 'same user name', 'user name jaro-winkler >= 0.88', 'else'],
  prepare(raw) {
    const norm = normalizeText(raw).replace(/\s+/g, '');
    if (!norm) return null;
    const at = norm.lastIndexOf('@');
    const user = at > 0 ? norm.slice(0, at) : norm;
    return feature(norm, user, '', NO_TOKENS, NaN, charMask(user));
  },
  compare(a, b) {
    if (a.norm === b.norm) return 1;
    if (a.key === b.key) return 2;
    if (jaroWinklerBound(a.key, b.key, b.mask) < 0.88) return 4;
    return jaroWinkler(a.key, b.key) >= 0.88 ? 3 : 4;
  },
};

const exact: Comparator = {
  kind: 'exact',
  levels: ['null', 'exact', 'else'],
  prepare(raw, field) {
    const norm = field === 'sex' ? normalizeSex(raw) : normalizeText(raw);
    return norm ? feature(norm) : null;
  },
  compare(a, b) {
    return a.norm === b.norm ? 1 : 2;
  },
};

export const COMPARATORS: Record<ComparatorKind, Comparator> = { name, date, address, text, code, email, exact };
