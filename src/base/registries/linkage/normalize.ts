// Normalisation of the values a comparison sees: Unicode (NFKC, case), Chinese (traditional to
// simplified, Han characters to toneless pinyin, Chinese numerals to digits), dates, phone numbers.
// Runs once per record and field, never per pair.
import * as OpenCC from 'opencc-js';
import { pinyin } from 'pinyin-pro';

const HAN = /\p{Script=Han}/u;
const HAN_RUNS = /\p{Script=Han}+|[\p{L}\p{N}]+/gu;

let toSimplified: ((s: string) => string) | null = null;
/** traditional (OpenCC 't', with Taiwan and Hong Kong variants) to simplified Chinese */
export function simplify(s: string): string {
  if (!HAN.test(s)) return s;
  if (!toSimplified) {
    const tw = OpenCC.Converter({ from: 'tw', to: 'cn' });
    const hk = OpenCC.Converter({ from: 'hk', to: 'cn' });
    toSimplified = (x) => hk(tw(x));
  }
  return toSimplified(s);
}

export function hasHan(s: string): boolean {
  return HAN.test(s);
}

/** NFKC, lower case, trimmed, inner white space collapsed, Han characters simplified. */
export function normalizeText(raw: string): string {
  const s = raw.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
  return simplify(s);
}

/**
 * The sounds of a name as tokens: toneless pinyin syllables for Han characters (one a character,
 * so 张伟, 張偉, 张玮 and "Zhang Wei" all give ["zhang", "wei"]), ASCII-folded words otherwise.
 * `surname` reads the first Han character as a family name (单 shan, 曾 zeng).
 */
export function soundTokens(normalized: string, surname = false): string[] {
  const out: string[] = [];
  let first = true;
  for (const m of normalized.matchAll(HAN_RUNS)) {
    const run = m[0];
    if (HAN.test(run)) {
      const syllables = pinyin(run, { toneType: 'none', type: 'array', v: true, surname: surname && first ? 'head' : 'off' });
      for (const p of syllables) out.push(p.replace(/v/g, 'u'));
    } else {
      const folded = run.normalize('NFD').replace(/[\u0300-\u036f]/g, '');
      if (folded) out.push(folded);
    }
    first = false;
  }
  return out;
}

const CN_DIGIT: Record<string, number> = { 零: 0, 〇: 0, 一: 1, 二: 2, 两: 2, 三: 3, 四: 4, 五: 5, 六: 6, 七: 7, 八: 8, 九: 9 };
const CN_UNIT: Record<string, number> = { 十: 10, 百: 100, 千: 1000 };
const CN_NUMBER = /[零〇一二两三四五六七八九十百千]+/g;

function chineseNumber(s: string): number | null {
  // plain digit strings (一零一 = 101) or positional numbers (一百零一 = 101, 十五 = 15)
  if (!/[十百千]/.test(s)) {
    let v = 0;
    for (const c of s) v = v * 10 + (CN_DIGIT[c] ?? 0);
    return v;
  }
  let total = 0;
  let digit = -1;
  for (const c of s) {
    const unit = CN_UNIT[c];
    if (unit !== undefined) {
      total += (digit < 0 ? 1 : digit) * unit;
      digit = -1;
    } else {
      digit = CN_DIGIT[c] ?? 0;
    }
  }
  if (digit > 0) total += digit;
  return total;
}

/** Chinese numerals before a unit of an address (号, 弄, 栋, 幢, 楼, 层, 室, 单元, 组) become digits. */
export function addressNumerals(s: string): string {
  return s.replace(CN_NUMBER, (run, offset: number, whole: string) => {
    const next = whole.slice(offset + run.length, offset + run.length + 2);
    if (!/^(号|弄|栋|幢|楼|层|室|单元|组|村)/.test(next) && !/^[0-9]/.test(next)) return run;
    const v = chineseNumber(run);
    return v === null ? run : String(v);
  });
}

// where a Chinese address is cut into tokens: after an administrative or street unit
const ADDRESS_UNIT = /(省|自治区|市|自治州|地区|盟|区|县|旗|镇|乡|街道|社区|村|路|大道|街|巷|弄|里|号|栋|幢|座|楼|层|单元|室|组)/g;

/** Address tokens: Han text cut after each unit (苏州市|姑苏区|人民路|100号), other text at spaces and punctuation. */
export function addressTokens(normalized: string): string[] {
  const s = addressNumerals(normalized);
  const out: string[] = [];
  for (const part of s.split(/[\s,，、;；:：#\-—()（）/\\.]+/)) {
    if (!part) continue;
    if (hasHan(part)) {
      for (const t of part.replace(ADDRESS_UNIT, '$1\u0000').split('\u0000')) if (t) out.push(t);
    } else {
      out.push(part);
    }
  }
  return out;
}

export interface ParsedDate {
  /** YYYYMMDD, or the digits of what could not be read as a date */
  digits: string;
  /** days since 1970-01-01, NaN when not a calendar date */
  day: number;
}

/** Reads 19560409, 1956-04-09, 1956/4/9, 1956.4.9 and 1956年4月9日 (year first). */
export function parseDate(raw: string): ParsedDate | null {
  const s = raw.normalize('NFKC').trim();
  if (!s) return null;
  let y: string, m: string, d: string;
  let match = /^(\d{4})(\d{2})(\d{2})$/.exec(s);
  if (!match) match = /^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T].*)?$/.exec(s);
  if (!match) {
    const digits = s.replace(/\D/g, '');
    return digits ? { digits, day: NaN } : null;
  }
  [, y, m, d] = match as unknown as [string, string, string, string];
  const digits = `${y}${m.padStart(2, '0')}${d.padStart(2, '0')}`;
  const yy = Number(y), mm = Number(m), dd = Number(d);
  const t = Date.UTC(yy, mm - 1, dd);
  const dt = new Date(t);
  const valid = mm >= 1 && mm <= 12 && dt.getUTCDate() === dd;
  return { digits, day: valid ? Math.round(t / 86_400_000) : NaN };
}

/** Digits only, without a leading +86 / 0086 country code. */
export function normalizePhone(raw: string): string {
  let d = raw.normalize('NFKC').replace(/\D/g, '');
  if (d.startsWith('0086')) d = d.slice(4);
  else if (d.startsWith('86') && d.length === 13) d = d.slice(2);
  return d;
}

/** M, F or the normalised text. */
export function normalizeSex(raw: string): string {
  const s = raw.normalize('NFKC').trim().toLowerCase();
  if (['m', 'male', '男', '1', 'man'].includes(s)) return 'm';
  if (['f', 'female', '女', '2', 'woman'].includes(s)) return 'f';
  return s;
}
