// Deterministic, streaming generator of the synthetic demo city: residents with valid GB 11643 ID
// numbers and enterprises with valid GB 32100 codes, placed in the profile's real streets and
// communities. Nothing here describes a real person or business.
//
// Determinism: record i depends only on (seed, i). Each record draws from its own PRNG seeded by a
// hash of the two, so `start` is random access and the output is the same on every run and machine.
// Uniqueness: the identifying part of each record (ID number: region + birth date + sequence;
// USCC: organisation code) is a bijection of i, never a random draw, so no Set is needed and
// 13 million residents take no more memory than ten.
import type { CityProfile, CommunityDivision, CountyDivision, StreetDivision } from '../config/profile.ts';
import { daysInMonth, makeIdNumber, makeUscc, USCC_ALPHABET } from '../base/codes/index.ts';
import {
  COOPERATIVE_TRADES,
  ETHNICITIES,
  GIVEN_NAME_CHARS,
  INDUSTRIES,
  MIGRANT_REGIONS,
  MOBILE_PREFIXES,
  ROAD_FIRST,
  ROAD_SECOND,
  SURNAMES,
  TRADE_NAME_CHARS,
} from './names.ts';

export const SYNTHETIC_NOTICE = '合成演示数据 / Synthetic demo data';

/** Ages and dates are reckoned from this fixed day, so a seed gives the same city in any year. */
export const DEMO_AS_OF = '2024-12-31';

export interface DemoResident {
  idNumber: string;
  name: string;
  familyName: string;
  givenName: string;
  sex: 'M' | 'F';
  ethnicity: string;
  /** YYYY-MM-DD */
  birthDate: string;
  /** county-level division of the address (not necessarily of the ID number) */
  countyCode: string;
  streetCode: string;
  communityCode: string;
  address: string;
  /** 11-digit mobile number, synthetic */
  phone: string;
  /** household registered outside the city (流动人口): the ID number's region is from elsewhere */
  migrant: boolean;
}

export type EnterpriseType = '有限责任公司' | '股份有限公司' | '个人独资企业' | '个体工商户' | '农民专业合作社';
export type EnterpriseStatus = '存续' | '在业' | '注销' | '吊销';

export interface DemoEnterprise {
  uscc: string;
  name: string;
  entityType: EnterpriseType;
  legalRepresentative: string;
  registeredCapital10kYuan: number;
  /** YYYY-MM-DD */
  establishedDate: string;
  countyCode: string;
  streetCode: string;
  address: string;
  /** GB/T 4754-2017 section letter and name, e.g. 'I 信息传输、软件和信息技术服务业' */
  industry: string;
  status: EnterpriseStatus;
}

export interface GenerateOptions {
  seed: number;
  count: number;
  /** index of the first record; records are the same as those at that position of a longer run */
  start?: number;
}

// ---------------------------------------------------------------------------------------------
// randomness

/**
 * mulberry32 (Tommy Ettinger, public domain): one 32-bit word of state, period 2^32, fast and of
 * good enough quality for synthetic data. Not for anything that must be unpredictable.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** MurmurHash3's finaliser: a bijective 32-bit mixer. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hash3(a: number, b: number, c: number): number {
  return fmix32((fmix32((fmix32(a >>> 0) ^ Math.imul(b, 0x9e3779b9)) >>> 0) + c) >>> 0);
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return fmix32(h >>> 0);
}

// stream ids keep the record PRNGs and permutations of residents and enterprises independent
const STREAM = { residentRecord: 1, residentSlots: 2, enterpriseRecord: 3, enterpriseCodes: 4 } as const;

type Rng = () => number;

/**
 * A keyed pseudo-random permutation of [0, size): a 4-round balanced Feistel network over the
 * smallest even number of bits that covers size, cycle-walking until the value falls inside.
 */
interface Permutation {
  size: number;
  half: number;
  mask: number;
  keys: readonly number[];
}

function permutation(size: number, seed: number, stream: number): Permutation {
  let bits = Math.max(2, Math.ceil(Math.log2(size)));
  if (bits % 2) bits++;
  if (bits > 30) throw new RangeError(`permutation domain ${size} is too large`);
  const half = bits / 2;
  return { size, half, mask: (1 << half) - 1, keys: [0, 1, 2, 3].map((k) => hash3(seed, stream, 0x1000 + k)) };
}

function permute(p: Permutation, x: number): number {
  do {
    let l = x >>> p.half;
    let r = x & p.mask;
    for (const key of p.keys) {
      const t = l ^ (fmix32((r ^ key) >>> 0) & p.mask);
      l = r;
      r = t;
    }
    x = (l << p.half) | r;
  } while (x >= p.size);
  return x;
}

interface Table<T> {
  items: readonly T[];
  cumulative: Float64Array;
}

function table<T>(pairs: readonly (readonly [T, number])[]): Table<T> {
  const cumulative = new Float64Array(pairs.length);
  let sum = 0;
  pairs.forEach(([, w], i) => {
    sum += w;
    cumulative[i] = sum;
  });
  return { items: pairs.map(([item]) => item), cumulative };
}

/** First index whose value exceeds x, or the last index (binary search over ascending values). */
function upperBound(sorted: Float64Array, x: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Last index whose value is at most x; sorted[0] must be at most x. */
function lastAtMost(sorted: Float64Array, x: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (sorted[mid]! <= x) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function draw<T>(t: Table<T>, rng: Rng): T {
  return t.items[upperBound(t.cumulative, rng() * t.cumulative[t.cumulative.length - 1]!)]!;
}

function pick<T>(items: ArrayLike<T>, rng: Rng): T {
  return items[Math.floor(rng() * items.length)]!;
}

function int(rng: Rng, min: number, max: number): number {
  return min + Math.floor(rng() * (max - min + 1));
}

// ---------------------------------------------------------------------------------------------
// the demo city's shape

/** Approximate resident population in units of 10,000 (2020 census, 七普, rounded). */
const SUZHOU_POPULATION_10K: Record<string, number> = {
  '320505': 83, '320506': 139, '320507': 89, '320508': 92, '320509': 155,
  '320576': 113, '320581': 168, '320582': 143, '320583': 209, '320585': 83,
};

/** Share of the population by 5-year age band 0-4 … 95-100, shaped roughly like Suzhou's (many of working age). */
const AGE_BANDS = [5.3, 5.6, 4.6, 3.9, 5.6, 8.4, 11.0, 9.3, 7.6, 7.9, 7.8, 6.4, 4.9, 4.8, 3.0, 1.9, 1.2, 0.6, 0.2, 0.05];
const MAX_AGE = 100;
const MIGRANT_SHARE = 0.05;

const AS_OF_YEAR = Number(DEMO_AS_OF.slice(0, 4));
const MIN_BIRTH_YEAR = AS_OF_YEAR - MAX_AGE;

interface Place {
  county: CountyDivision;
  street: StreetDivision;
  community: CommunityDivision;
  /** a few synthetic road names of this community, so neighbours share streets */
  roads: readonly string[];
}

interface City {
  profile: CityProfile;
  counties: readonly CountyDivision[];
  countyTable: Table<CountyDivision>;
  places: ReadonlyMap<string, readonly Place[]>;
  streetRoads: ReadonlyMap<string, readonly string[]>;
  prefix: string;
}

const roadFirst = ROAD_FIRST.split(' ');
const roadSecond = table(ROAD_SECOND);
const mobilePrefixes = MOBILE_PREFIXES.split(' ');

function roadsFor(code: string, n: number): string[] {
  const roads: string[] = [];
  for (let k = 0; k < n; k++) {
    const rng = mulberry32(hash3(hashString(code), 7, k));
    roads.push(pick(roadFirst, rng) + draw(roadSecond, rng));
  }
  return roads;
}

const cities = new WeakMap<CityProfile, City>();

function cityOf(profile: CityProfile): City {
  const cached = cities.get(profile);
  if (cached) return cached;
  const places = new Map<string, Place[]>();
  const streetRoads = new Map<string, string[]>();
  for (const county of profile.divisions) {
    const list: Place[] = [];
    for (const street of county.children) {
      streetRoads.set(street.code, roadsFor(street.code, 4));
      for (const community of street.children) {
        if (!community.virtual) list.push({ county, street, community, roads: roadsFor(community.code, 3) });
      }
    }
    if (list.length > 0) places.set(county.code, list);
  }
  const counties = profile.divisions.filter((c) => places.has(c.code));
  if (counties.length === 0) throw new RangeError(`profile ${profile.city.name} has no populated communities to place demo residents in`);
  // Suzhou's census figures where known; elsewhere the number of communities stands in for population
  const known = counties.every((c) => SUZHOU_POPULATION_10K[c.code] !== undefined);
  const countyTable = table(counties.map((c) => [c, known ? SUZHOU_POPULATION_10K[c.code]! : places.get(c.code)!.length] as const));
  const city: City = { profile, counties, countyTable, places, streetRoads, prefix: profile.city.province.name + profile.city.name };
  cities.set(profile, city);
  return city;
}

/** Every calendar day from MIN_BIRTH_YEAR-01-01 to DEMO_AS_OF as YYYY-MM-DD, and where each year starts in it. */
interface Calendar {
  days: readonly string[];
  /** yearStart[y - MIN_BIRTH_YEAR] is the index of y-01-01; one extra entry closes the last year */
  yearStart: readonly number[];
}

let calendarCache: Calendar | undefined;

function calendar(): Calendar {
  if (calendarCache) return calendarCache;
  const days: string[] = [];
  const yearStart: number[] = [];
  for (let y = MIN_BIRTH_YEAR; y <= AS_OF_YEAR; y++) {
    yearStart.push(days.length);
    for (let m = 1; m <= 12; m++) {
      for (let d = 1, n = daysInMonth(y, m); d <= n; d++) {
        const s = `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
        if (s <= DEMO_AS_OF) days.push(s);
      }
    }
  }
  yearStart.push(days.length);
  calendarCache = { days, yearStart };
  return calendarCache;
}

function dayOfYear(cal: Calendar, year: number, index: number): string {
  return cal.days[cal.yearStart[year - MIN_BIRTH_YEAR]! + index]!;
}

function daysIn(cal: Calendar, year: number): number {
  return cal.yearStart[year - MIN_BIRTH_YEAR + 1]! - cal.yearStart[year - MIN_BIRTH_YEAR]!;
}

// ---------------------------------------------------------------------------------------------
// residents

/**
 * The ID-number space, laid out as blocks: for each issuing region and birth year, a number of
 * sequence codes per day proportional to the region's share and the age's share. A slot is one
 * (region, day, sequence) triple, so distinct slots make distinct ID numbers, and drawing slots
 * through a permutation gives every count a population with the intended mix.
 */
interface ResidentLayout {
  size: number;
  blockStart: Float64Array;
  blockRegion: Uint16Array;
  blockYear: Uint16Array;
  blockPerDay: Uint16Array;
  regions: readonly { code: string; county: CountyDivision | null }[];
}

const layouts = new WeakMap<City, ResidentLayout>();

function residentLayout(city: City): ResidentLayout {
  const cached = layouts.get(city);
  if (cached) return cached;
  const localTotal = city.countyTable.cumulative[city.countyTable.cumulative.length - 1]!;
  const migrantTotal = MIGRANT_REGIONS.reduce((s, [, w]) => s + w, 0);
  const regions = [
    ...city.counties.map((county, i) => ({
      code: county.code,
      county,
      share: ((city.countyTable.cumulative[i]! - (i > 0 ? city.countyTable.cumulative[i - 1]! : 0)) / localTotal) * (1 - MIGRANT_SHARE),
    })),
    ...MIGRANT_REGIONS.filter(([code]) => !city.counties.some((c) => c.code === code)).map(([code, w]) => ({ code, county: null, share: (w / migrantTotal) * MIGRANT_SHARE })),
  ];
  if (new Set(regions.map((r) => r.code)).size !== regions.length) throw new Error('duplicate region code in the demo layout');
  const maxShare = Math.max(...regions.map((r) => r.share));
  const maxBand = Math.max(...AGE_BANDS);
  const cal = calendar();
  const starts: number[] = [];
  const regionIdx: number[] = [];
  const years: number[] = [];
  const perDays: number[] = [];
  let size = 0;
  regions.forEach((r, ri) => {
    for (let y = MIN_BIRTH_YEAR; y <= AS_OF_YEAR; y++) {
      const band = AGE_BANDS[Math.min(Math.floor((AS_OF_YEAR - y) / 5), AGE_BANDS.length - 1)]!;
      // an even count of sequence codes 001..998 keeps men (odd) and women (even) balanced
      const perDay = 2 * Math.round(499 * (r.share / maxShare) * (band / maxBand));
      if (perDay === 0) continue;
      starts.push(size);
      regionIdx.push(ri);
      years.push(y);
      perDays.push(perDay);
      size += daysIn(cal, y) * perDay;
    }
  });
  const layout: ResidentLayout = {
    size,
    blockStart: Float64Array.from(starts),
    blockRegion: Uint16Array.from(regionIdx),
    blockYear: Uint16Array.from(years),
    blockPerDay: Uint16Array.from(perDays),
    regions: regions.map(({ code, county }) => ({ code, county })),
  };
  layouts.set(city, layout);
  return layout;
}

/** The most residents one seed can produce for a profile (about 10^8 for Suzhou). */
export function residentCapacity(profile: CityProfile): number {
  return residentLayout(cityOf(profile)).size;
}

function checkOptions(opts: GenerateOptions, capacity: number, what: string): { seed: number; start: number; end: number } {
  const start = opts.start ?? 0;
  if (!Number.isSafeInteger(opts.seed)) throw new RangeError(`seed must be an integer, got ${opts.seed}`);
  if (!Number.isSafeInteger(opts.count) || opts.count < 0) throw new RangeError(`count must be a whole number, got ${opts.count}`);
  if (!Number.isSafeInteger(start) || start < 0) throw new RangeError(`start must be a whole number, got ${start}`);
  if (start + opts.count > capacity) throw new RangeError(`at most ${capacity} ${what} can be generated, asked for ${start + opts.count}`);
  return { seed: opts.seed >>> 0, start, end: start + opts.count };
}

function givenName(rng: Rng, sex: 'M' | 'F', birthYear: number): string {
  const pool = GIVEN_NAME_CHARS[sex][birthYear < 1980 ? 'older' : 'younger'];
  // single-character given names peaked with the generations born 1950–2000
  const single = birthYear < 1950 ? 0.3 : birthYear < 2000 ? 0.25 : 0.1;
  const first = pick(pool, rng);
  if (rng() < single) return first;
  let second = pick(pool, rng);
  // 叠字 (婷婷) is common for girls, rare for boys
  if (second === first && (sex === 'M' || rng() < 0.5)) second = pick(pool, rng);
  return first + second;
}

const surnames = table(SURNAMES);
const ethnicities = table(ETHNICITIES);

function phone(rng: Rng): string {
  return pick(mobilePrefixes, rng) + String(Math.floor(rng() * 1e8)).padStart(8, '0');
}

function residentAddress(city: City, place: Place, rng: Rng): string {
  const head = `${city.prefix}${place.county.name}${place.street.name}${place.community.name}`;
  if (place.community.kind === 'village') return `${head} ${int(rng, 1, 12)}组${int(rng, 1, 80)}号`;
  const floor = int(rng, 1, 18);
  return `${head} ${pick(place.roads, rng)}${int(rng, 1, 399)}号${int(rng, 1, 30)}幢${int(rng, 1, 4)}单元${floor}${String(int(rng, 1, 4)).padStart(2, '0')}室`;
}

export function* generateResidents(profile: CityProfile, opts: GenerateOptions): Generator<DemoResident> {
  const city = cityOf(profile);
  const layout = residentLayout(city);
  const { seed, start, end } = checkOptions(opts, layout.size, 'residents');
  const slots = permutation(layout.size, seed, STREAM.residentSlots);
  const cal = calendar();
  for (let i = start; i < end; i++) {
    const slot = permute(slots, i);
    const b = lastAtMost(layout.blockStart, slot);
    const offset = slot - layout.blockStart[b]!;
    const perDay = layout.blockPerDay[b]!;
    const dayInYear = Math.floor(offset / perDay);
    const sequence = (offset % perDay) + 1;
    const year = layout.blockYear[b]!;
    const birthDate = dayOfYear(cal, year, dayInYear);
    const region = layout.regions[layout.blockRegion[b]!]!;
    const sex = sequence % 2 === 1 ? 'M' : 'F';

    const rng = mulberry32(hash3(seed, STREAM.residentRecord, i));
    const county = region.county ?? draw(city.countyTable, rng);
    const place = pick(city.places.get(county.code)!, rng);
    const familyName = draw(surnames, rng);
    const given = givenName(rng, sex, year);
    yield {
      idNumber: makeIdNumber(region.code, birthDate.replaceAll('-', ''), String(sequence).padStart(3, '0')),
      name: familyName + given,
      familyName,
      givenName: given,
      sex,
      ethnicity: draw(ethnicities, rng),
      birthDate,
      countyCode: county.code,
      streetCode: place.street.code,
      communityCode: place.community.code,
      address: residentAddress(city, place, rng),
      phone: phone(rng),
      migrant: region.county === null,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// enterprises

/** Organisation codes are 'MA' + 6 characters of the USCC alphabet, one per index. */
const ORG_SPACE = 31 ** 6;

const entityTypes = table<EnterpriseType>([
  ['有限责任公司', 46], ['个体工商户', 46], ['个人独资企业', 5], ['股份有限公司', 2], ['农民专业合作社', 1],
]);
const industries = table(INDUSTRIES.map((s) => [s, s.weight] as const));
const shopIndustries = table(INDUSTRIES.filter((s) => s.shops.length > 0).map((s) => [s, s.weight] as const));
const capital: Record<EnterpriseType, readonly number[]> = {
  有限责任公司: [10, 30, 50, 50, 100, 100, 100, 200, 300, 500, 500, 1000, 2000, 5000],
  股份有限公司: [500, 1000, 2000, 5000, 10000, 20000, 50000],
  个人独资企业: [1, 5, 10, 10, 20, 50],
  个体工商户: [1, 2, 3, 5, 5, 10, 20],
  农民专业合作社: [10, 50, 100, 100, 200, 500],
};
// registrations grew roughly 12% a year from 1990 on
const establishedYears = table(Array.from({ length: AS_OF_YEAR - 1990 + 1 }, (_, k) => [1990 + k, Math.exp(0.12 * k)] as const));

function orgBody(x: number): string {
  let s = '';
  for (let k = 0; k < 6; k++) {
    s = USCC_ALPHABET[x % 31]! + s;
    x = Math.floor(x / 31);
  }
  return 'MA' + s;
}

function namePrefix(city: City, county: CountyDivision): string {
  // 常熟市… and 苏州工业园区… stand alone; a district is written under the city: 苏州市姑苏区…
  return county.kind === 'district' ? city.profile.city.name + county.name : county.name;
}

function status(rng: Rng, year: number): EnterpriseStatus {
  const age = AS_OF_YEAR - year;
  const r = rng();
  if (r < Math.min(0.5, 0.03 + 0.008 * age)) return '注销';
  if (r < Math.min(0.6, 0.03 + 0.008 * age) + Math.min(0.08, 0.004 * age)) return '吊销';
  return year < 2014 && rng() < 0.3 ? '在业' : '存续';
}

export function* generateEnterprises(profile: CityProfile, opts: GenerateOptions): Generator<DemoEnterprise> {
  const city = cityOf(profile);
  const { seed, start, end } = checkOptions(opts, ORG_SPACE, 'enterprises');
  const codes = permutation(ORG_SPACE, seed, STREAM.enterpriseCodes);
  const cal = calendar();
  for (let i = start; i < end; i++) {
    const rng = mulberry32(hash3(seed, STREAM.enterpriseRecord, i));
    const entityType = draw(entityTypes, rng);
    const county = draw(city.countyTable, rng);
    const towns = county.children.filter((s) => s.kind === 'town');
    const street = entityType === '农民专业合作社' && towns.length > 0 ? pick(towns, rng) : pick(county.children, rng);
    const prefix = namePrefix(city, county);
    const trade = pick(TRADE_NAME_CHARS, rng) + pick(TRADE_NAME_CHARS, rng);

    let name: string;
    let industry: string;
    if (entityType === '个体工商户') {
      const sector = draw(shopIndustries, rng);
      industry = sector.section;
      name = `${prefix}${trade}${pick(sector.shops, rng)}`;
    } else if (entityType === '农民专业合作社') {
      industry = INDUSTRIES[0]!.section;
      name = `${prefix}${street.name}${trade}${pick(COOPERATIVE_TRADES, rng)}专业合作社`;
    } else {
      const sector = draw(industries, rng);
      industry = sector.section;
      const word = pick(sector.words, rng);
      name =
        entityType === '有限责任公司' ? `${prefix}${trade}${word}有限公司`
        : entityType === '股份有限公司' ? `${prefix}${trade}${word}股份有限公司`
        : `${prefix}${trade}${word}${pick(['商行', '经营部', '服务部', '工作室'], rng)}`;
    }

    const year = entityType === '农民专业合作社' ? int(rng, 2008, AS_OF_YEAR) : draw(establishedYears, rng);
    const establishedDate = dayOfYear(cal, year, Math.floor(rng() * daysIn(cal, year)));
    // the legal representative was 22 to 60 when the business was registered
    const legalRepresentative = draw(surnames, rng) + givenName(rng, rng() < 0.7 ? 'M' : 'F', year - int(rng, 22, 60));
    const roads = city.streetRoads.get(street.code)!;
    const unit = entityType === '有限责任公司' || entityType === '股份有限公司' ? (rng() < 0.5 ? `${int(rng, 1, 20)}幢${int(rng, 1, 20)}${String(int(rng, 1, 20)).padStart(2, '0')}室` : '') : '';
    const address = `${city.prefix}${county.name}${street.name}${pick(roads, rng)}${int(rng, 1, 999)}号${unit}`;

    const [authority, type] = entityType === '个体工商户' ? ['9', '2'] : entityType === '农民专业合作社' ? ['9', '3'] : ['9', '1'];
    yield {
      uscc: makeUscc(authority, type, county.code, orgBody(permute(codes, i))),
      name,
      entityType,
      legalRepresentative,
      registeredCapital10kYuan: pick(capital[entityType], rng),
      establishedDate,
      countyCode: county.code,
      streetCode: street.code,
      address,
      industry,
      status: status(rng, year),
    };
  }
}
