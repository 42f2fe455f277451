// The working-day calendar deadlines are counted on: the city profile's calendar.json, which holds
// the State Council's holiday arrangement (放假调休) per year, days off and make-up working days
// (调休上班), and the working hours. Everything is evaluated in the calendar's time zone (the
// profile's, Asia/Shanghai for Suzhou), never the machine's: a server in UTC and one in Shanghai
// compute the same deadline.
//
// Counting convention (docs/workflow-calendar.md): a time limit of n working days runs from the day
// after the start (自受理之日起, the day itself not counted: 民法典 第二百零一条), skips weekends
// and holidays but counts make-up working days (行政许可法 第八十二条: 以工作日计算，不含法定节假日),
// and ends when the office closes on the n-th working day (民法典 第二百零三条: 有业务时间的，停止
// 业务活动的时间为截止时间). Years the file does not cover fall back to plain Monday to Friday;
// `cal.covers(year)` and `coverageGaps` let the caller say so.
import fs from 'node:fs';
import path from 'node:path';
import { ProfileError } from '../../config/profile.ts';

export class CalendarError extends ProfileError {
  override name = 'CalendarError';
}

/** The festival names a notice uses; two may be joined by 、 when they share a break (国庆节、中秋节). */
export const FESTIVALS = ['元旦', '春节', '清明节', '劳动节', '端午节', '中秋节', '国庆节'] as const;

export interface Festival {
  /** 春节, or 国庆节、中秋节 when the notice joins them */
  name: string;
  nameEn: string;
  /** the days the notice names as 放假, weekend days inside a stated range included */
  daysOff: string[];
  /** weekend days the notice names as 上班 (调休上班) */
  makeUpWorkdays: string[];
  /** the notice's clause, as published */
  notice?: string;
}

export interface CalendarSource {
  /** 国务院办公厅关于2026年部分节假日安排的通知 */
  title: string;
  /** 国办发明电〔2025〕7号 */
  documentNumber: string;
  /** the notice's date, YYYY-MM-DD */
  date: string;
  url?: string;
}

export interface CalendarYear {
  year: number;
  /** false: transcribed but not checked against the published notice; covers(year) is false */
  confirmed: boolean;
  source: CalendarSource;
  festivals: Festival[];
  note?: string;
}

/** The file's shape (profiles/<city>/calendar.json). */
export interface CalendarFile {
  $comment?: string;
  /** IANA zone; normally absent and taken from city.json */
  timeZone?: string;
  /** local "HH:MM"; end is when a deadline day closes */
  workingHours: { start: string; end: string };
  years: CalendarYear[];
}

export interface WorkingCalendar {
  readonly timeZone: string;
  readonly workingHours: { readonly start: string; readonly end: string };
  readonly years: readonly CalendarYear[];
  /**
   * True when the year's arrangement is in the file and confirmed. For any other year the
   * calendar is plain Monday to Friday, and a deadline in it should be shown as provisional.
   */
  covers(year: number): boolean;
}

/** A duration as the workflow model writes it: working days on the calendar, hours and minutes on the clock. */
export interface Duration {
  workingDays?: number;
  hours?: number;
  minutes?: number;
}

export type DayKind = 'workday' | 'weekend' | 'holiday' | 'make-up';

export interface DayInfo {
  /** the local date, YYYY-MM-DD */
  date: string;
  working: boolean;
  /** workday: Monday to Friday; weekend; holiday: a day off of the arrangement; make-up: 调休上班 */
  kind: DayKind;
  /** for holiday and make-up days */
  festival?: { name: string; nameEn: string };
  /** whether the date's year is covered (false: Monday to Friday was assumed) */
  covered: boolean;
}

// ---------------------------------------------------------------------------------------------
// loading

/**
 * Reads <profileDir>/calendar.json. The time zone is calendar.json's `timeZone` if set, else
 * city.json's `timezone`, else Asia/Shanghai; if both files name one they must agree.
 */
export function loadCalendar(profileDir: string): WorkingCalendar {
  const file = path.join(profileDir, 'calendar.json');
  const where = displayPath(file);
  const json = readJson(file, where);
  let timeZone: string | undefined;
  const cityFile = path.join(profileDir, 'city.json');
  if (fs.existsSync(cityFile)) {
    const city = readJson(cityFile, displayPath(cityFile));
    const tz = city !== null && typeof city === 'object' ? (city as Record<string, unknown>).timezone : undefined;
    if (tz !== undefined && typeof tz !== 'string') throw new CalendarError(`${displayPath(cityFile)}: timezone must be a string`);
    timeZone = tz;
  }
  return parseCalendar(json, { timeZone, where });
}

/**
 * Checks a calendar.json document and indexes it. `timeZone` is the profile's (city.json); the
 * document's own `timeZone`, if any, must agree with it. `where` prefixes error messages.
 */
export function parseCalendar(json: unknown, options: { timeZone?: string; where?: string } = {}): WorkingCalendar {
  const where = options.where ?? 'calendar';
  const fail = (at: string, problem: string): never => {
    throw new CalendarError(`${where}: ${at === '' ? '' : `${at} `}${problem}`);
  };
  // a private copy: later changes to `json` do not reach the calendar, and it can be frozen
  const file = structuredClone(checkShape(json, fail));

  if (file.timeZone !== undefined && options.timeZone !== undefined && file.timeZone !== options.timeZone) {
    fail('timeZone', `${JSON.stringify(file.timeZone)} differs from the profile's time zone ${JSON.stringify(options.timeZone)} (city.json)`);
  }
  const timeZone = file.timeZone ?? options.timeZone ?? 'Asia/Shanghai';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    fail('timeZone', `${JSON.stringify(timeZone)} is not a time zone this runtime knows`);
  }

  const start = parseClock(file.workingHours.start, 'workingHours.start', fail);
  const end = parseClock(file.workingHours.end, 'workingHours.end', fail);
  if (start >= end) fail('workingHours', `start ${file.workingHours.start} must be before end ${file.workingHours.end}`);

  const daysOff = new Map<number, Festival>();
  const makeUp = new Map<number, Festival>();
  const seen = new Map<number, string>(); // day -> where it was listed, for the duplicate message
  const years = new Set<number>();
  const covered = new Set<number>();
  let minListed = Infinity;
  let maxListed = -Infinity;

  file.years.forEach((y, i) => {
    const yw = `years[${i}] (${y.year})`;
    if (years.has(y.year)) fail(yw, `repeats the year ${y.year}: each year may appear once`);
    years.add(y.year);
    if (y.confirmed) covered.add(y.year);
    isoDay(y.source.date, `${yw}.source.date`, fail);

    y.festivals.forEach((f, j) => {
      const fw = `${yw}.festivals[${j}] (${f.name})`;
      const list = (dates: string[], key: 'daysOff' | 'makeUpWorkdays') => {
        dates.forEach((date, k) => {
          const at = `${fw}.${key}[${k}]`;
          const day = isoDay(date, at, fail);
          const year = Number(date.slice(0, 4));
          // a notice may reach into the neighbouring year (the 2019 notice's 元旦 began on 2018-12-30)
          if (Math.abs(year - y.year) > 1) fail(at, `${date} is not in or next to the year ${y.year}`);
          const first = seen.get(day);
          if (first !== undefined) {
            const other = first.includes('makeUpWorkdays') !== (key === 'makeUpWorkdays');
            fail(at, other
              ? `${date} is listed both as a day off and as a make-up working day (also at ${first})`
              : `${date} is listed twice (also at ${first})`);
          }
          seen.set(day, at);
          if (key === 'makeUpWorkdays') {
            const wd = weekday(day);
            if (wd !== 0 && wd !== 6) fail(at, `${date} is a ${WEEKDAYS[wd]}: a make-up working day (调休上班) must be a Saturday or Sunday`);
            makeUp.set(day, f);
          } else {
            daysOff.set(day, f);
          }
          if (day < minListed) minListed = day;
          if (day > maxListed) maxListed = day;
        });
      };
      list(f.daysOff, 'daysOff');
      list(f.makeUpWorkdays, 'makeUpWorkdays');
    });
  });

  const cal: WorkingCalendar & { [INDEX]: Index } = {
    timeZone,
    workingHours: Object.freeze({ start: file.workingHours.start, end: file.workingHours.end }),
    years: deepFreeze(file.years),
    covers: (year: number) => covered.has(year),
    [INDEX]: { zone: zoneOf(timeZone), start, end, daysOff, makeUp, covered, minListed, maxListed },
  };
  Object.defineProperty(cal, INDEX, { enumerable: false });
  Object.defineProperty(cal, 'covers', { enumerable: false });
  return Object.freeze(cal);
}

// ---------------------------------------------------------------------------------------------
// questions about a day

/** Whether the local day (in the calendar's time zone) that contains `date` is a working day. */
export function isWorkingDay(cal: WorkingCalendar, date: Date): boolean {
  const ix = index(cal);
  return working(ix, local(ix, instant(date, 'date')).day);
}

/** What the calendar says about the local day containing `date`. */
export function dayInfo(cal: WorkingCalendar, date: Date): DayInfo {
  const ix = index(cal);
  const day = local(ix, instant(date, 'date')).day;
  const iso = isoOf(day);
  const covered = ix.covered.has(Number(iso.slice(0, 4)));
  const off = ix.daysOff.get(day);
  if (off) return { date: iso, working: false, kind: 'holiday', festival: { name: off.name, nameEn: off.nameEn }, covered };
  const mk = ix.makeUp.get(day);
  if (mk) return { date: iso, working: true, kind: 'make-up', festival: { name: mk.name, nameEn: mk.nameEn }, covered };
  const wd = weekday(day);
  return wd === 0 || wd === 6 ? { date: iso, working: false, kind: 'weekend', covered } : { date: iso, working: true, kind: 'workday', covered };
}

/**
 * The years from `from` to `to` (local, inclusive, either order) the calendar does not cover:
 * a deadline computed across them assumed plain Monday to Friday. Empty when all are covered.
 */
export function coverageGaps(cal: WorkingCalendar, from: Date, to: Date): number[] {
  const ix = index(cal);
  let a = localYear(ix, instant(from, 'from'));
  let b = localYear(ix, instant(to, 'to'));
  if (a > b) [a, b] = [b, a];
  const gaps: number[] = [];
  for (let y = a; y <= b; y++) if (!ix.covered.has(y)) gaps.push(y);
  return gaps;
}

// ---------------------------------------------------------------------------------------------
// deadlines

/**
 * The deadline of a time limit of `days` working days starting at `from`: the close of office
 * (workingHours.end, local) on the `days`-th working day after the local day of `from`. The day of
 * `from` is never counted, whatever the hour (自受理之日起…个工作日, 开始的当日不计入): a task
 * created on a Friday, at 10:00 or at 20:00, with 1 working day is due on Monday at 17:00, or on the
 * first working day after a holiday. With 0 days the deadline is the close of the same day if it is
 * a working day and not yet past closing, else of the next working day (当日办结).
 */
export function addWorkingDays(cal: WorkingCalendar, from: Date, days: number): Date {
  if (!Number.isSafeInteger(days) || days < 0) throw new RangeError(`workingDays must be a whole number from 0, not ${days}`);
  const ix = index(cal);
  const t = instant(from, 'from');
  const { day, ms } = local(ix, t);
  let d: number;
  if (days === 0) d = working(ix, day) && ms <= ix.end ? day : nextWorking(ix, day);
  else d = stepWorking(ix, day, days);
  return new Date(utcOf(ix, d * DAY + ix.end));
}

/**
 * One entry point for the engine: working days on the calendar (addWorkingDays), then hours and
 * minutes on the clock, as the workflow model defines a Duration. Hours and minutes alone are
 * elapsed time from `from` (a 2-hour limit set at 16:30 on a Friday ends at 18:30 that Friday); for
 * time counted within office hours use addWorkingTime.
 */
export function addDuration(cal: WorkingCalendar, from: Date, duration: Duration): Date {
  const { workingDays, clockMs } = splitDuration(duration, 'duration');
  const t = instant(from, 'from');
  const base = workingDays === undefined ? t : addWorkingDays(cal, new Date(t), workingDays).getTime();
  return new Date(base + clockMs);
}

/**
 * When to remind before a deadline: `workingDays` working days earlier, at the same local time of
 * day (a Monday 17:00 deadline, 1 working day before: the previous working day at 17:00, Friday or
 * the last day before a holiday), then `hours` and `minutes` earlier on the clock. The result may be
 * in the past or before the task began; the caller decides what to do then.
 */
export function remindAt(cal: WorkingCalendar, due: Date, before: Duration): Date {
  const { workingDays, clockMs } = splitDuration(before, 'before');
  const ix = index(cal);
  let t = instant(due, 'due');
  if (workingDays) {
    const { day, ms } = local(ix, t);
    let d = day;
    for (let n = workingDays; n > 0; n--) d = previousWorking(ix, d);
    t = utcOf(ix, d * DAY + ms);
  }
  return new Date(t - clockMs);
}

/**
 * Working days after the local day of `a` up to and including the local day of `b`; negative when
 * `b` is before `a`. The same count as addWorkingDays: workingDaysBetween(cal, from,
 * addWorkingDays(cal, from, n)) === n. For overdue reporting, workingDaysBetween(cal, due, now) is
 * how many working days late a task is (0 on the day it fell due).
 */
export function workingDaysBetween(cal: WorkingCalendar, a: Date, b: Date): number {
  const ix = index(cal);
  const da = local(ix, instant(a, 'a')).day;
  const db = local(ix, instant(b, 'b')).day;
  if (db < da) return -countWorking(ix, db, da);
  return countWorking(ix, da, db);
}

/**
 * Adds office time: `minutes` counted only within working hours on working days (a 2-hour limit
 * set at 16:30 on a Friday ends at 10:30 on the next working day). Time before opening or on a day
 * off starts at the next opening.
 */
export function addWorkingTime(cal: WorkingCalendar, from: Date, minutes: number): Date {
  if (!Number.isFinite(minutes) || minutes < 0) throw new RangeError(`minutes must be a number from 0, not ${minutes}`);
  const ix = index(cal);
  let { day, ms } = local(ix, instant(from, 'from'));
  if (!working(ix, day) || ms >= ix.end) {
    day = nextWorking(ix, day);
    ms = ix.start;
  } else if (ms < ix.start) ms = ix.start;
  let rest = Math.round(minutes * MINUTE);
  for (;;) {
    const available = ix.end - ms;
    if (rest <= available) return new Date(utcOf(ix, day * DAY + ms + rest));
    rest -= available;
    day = nextWorking(ix, day);
    ms = ix.start;
  }
}

// ---------------------------------------------------------------------------------------------
// internals

const DAY = 86_400_000;
const HOUR = 3_600_000;
const MINUTE = 60_000;
const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;

const INDEX = Symbol('calendar index');

interface Index {
  zone: Zone;
  /** local opening and closing, ms after midnight */
  start: number;
  end: number;
  /** keyed by local day number (days since 1970-01-01) */
  daysOff: Map<number, Festival>;
  makeUp: Map<number, Festival>;
  covered: Set<number>;
  /** outside [minListed, maxListed] every week has exactly 5 working days */
  minListed: number;
  maxListed: number;
}

function index(cal: WorkingCalendar): Index {
  const ix = (cal as { [INDEX]?: Index })[INDEX];
  if (!ix) throw new TypeError('not a WorkingCalendar: make one with loadCalendar or parseCalendar');
  return ix;
}

function instant(d: Date, name: string): number {
  const t = d instanceof Date ? d.getTime() : NaN;
  if (!Number.isFinite(t)) throw new RangeError(`${name} must be a valid Date`);
  return t;
}

/** 0 = Sunday … 6 = Saturday; day 0 (1970-01-01) was a Thursday */
function weekday(day: number): number {
  return (((day + 4) % 7) + 7) % 7;
}

function working(ix: Index, day: number): boolean {
  if (ix.daysOff.has(day)) return false;
  if (ix.makeUp.has(day)) return true;
  const wd = weekday(day);
  return wd !== 0 && wd !== 6;
}

/** a run of this many days off in a row means a broken calendar, not a long holiday */
const MAX_DAYS_OFF_IN_A_ROW = 60;

function tooLong(day: number, what: string): never {
  throw new CalendarError(`${what}: more than ${MAX_DAYS_OFF_IN_A_ROW} days in a row without a working day, near ${isoOf(day)}`);
}

/** the first working day after `day` */
function nextWorking(ix: Index, day: number): number {
  let d = day + 1;
  for (let run = 0; !working(ix, d); d++) if (++run > MAX_DAYS_OFF_IN_A_ROW) tooLong(d, 'nextWorking');
  return d;
}

/** the last working day before `day` */
function previousWorking(ix: Index, day: number): number {
  let d = day - 1;
  for (let run = 0; !working(ix, d); d--) if (++run > MAX_DAYS_OFF_IN_A_ROW) tooLong(d, 'previousWorking');
  return d;
}

/** the n-th working day after `day` (n ≥ 1) */
function stepWorking(ix: Index, day: number, n: number): number {
  let d = day;
  let rest = n;
  while (rest > 0) {
    // past every listed day the week repeats: any 7 days in a row hold 5 working days
    if (rest > 5 && d >= ix.maxListed) {
      const weeks = Math.floor((rest - 1) / 5);
      d += weeks * 7;
      rest -= weeks * 5;
    }
    d = nextWorking(ix, d);
    rest--;
  }
  return d;
}

/** working days in (a, b], a ≤ b */
function countWorking(ix: Index, a: number, b: number): number {
  let n = 0;
  let d = a + 1;
  while (d <= b) {
    // a whole week clear of every listed day holds exactly 5 working days
    if (d + 6 <= b && (d > ix.maxListed || d + 6 < ix.minListed)) {
      d += 7;
      n += 5;
      continue;
    }
    if (working(ix, d)) n++;
    d++;
  }
  return n;
}

function splitDuration(d: Duration, name: string): { workingDays: number | undefined; clockMs: number } {
  if (d === null || typeof d !== 'object') throw new RangeError(`${name} must be { workingDays?, hours?, minutes? }`);
  const { workingDays, hours, minutes } = d;
  for (const [k, v] of [['hours', hours], ['minutes', minutes]] as const) {
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) throw new RangeError(`${name}.${k} must be a number from 0, not ${v}`);
  }
  if (workingDays !== undefined && (!Number.isSafeInteger(workingDays) || workingDays < 0)) {
    throw new RangeError(`${name}.workingDays must be a whole number from 0, not ${workingDays}`);
  }
  return { workingDays, clockMs: Math.round((hours ?? 0) * HOUR + (minutes ?? 0) * MINUTE) };
}

// ---- time zone: wall-clock time in the calendar's zone, without the process's TZ ----

interface Zone {
  format: Intl.DateTimeFormat;
  /** offset (local − UTC, ms) per UTC day, where it is the same at both ends of the day */
  cache: Map<number, number>;
}

const zones = new Map<string, Zone>();

function zoneOf(timeZone: string): Zone {
  let z = zones.get(timeZone);
  if (!z) {
    z = {
      format: new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      }),
      cache: new Map(),
    };
    zones.set(timeZone, z);
  }
  return z;
}

function rawOffset(z: Zone, t: number): number {
  const whole = Math.floor(t / 1000) * 1000;
  const p: Record<string, number> = {};
  for (const part of z.format.formatToParts(new Date(whole))) if (part.type !== 'literal') p[part.type] = Number(part.value);
  const asUtc = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
  return asUtc - whole;
}

function offsetAt(z: Zone, t: number): number {
  // offsets change a few times a year at most: cache per UTC day when both ends of it agree
  const b = Math.floor(t / DAY);
  const hit = z.cache.get(b);
  if (hit !== undefined) return hit;
  const first = rawOffset(z, b * DAY);
  const last = rawOffset(z, (b + 1) * DAY - 1);
  if (first !== last) return rawOffset(z, t); // a transition that day: no caching
  if (z.cache.size > 20_000) z.cache.clear();
  z.cache.set(b, first);
  return first;
}

/** the local day number and ms since local midnight of an instant */
function local(ix: Index, t: number): { day: number; ms: number } {
  const l = t + offsetAt(ix.zone, t);
  const day = Math.floor(l / DAY);
  return { day, ms: l - day * DAY };
}

function localYear(ix: Index, t: number): number {
  return new Date(local(ix, t).day * DAY).getUTCFullYear();
}

/** the instant of a local wall-clock time (ms since 1970-01-01T00:00 local) */
function utcOf(ix: Index, wall: number): number {
  const guess = wall - offsetAt(ix.zone, wall);
  return wall - offsetAt(ix.zone, guess);
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

function isoOf(day: number): string {
  return new Date(day * DAY).toISOString().slice(0, 10);
}

// ---- checking the file ----

type Fail = (at: string, problem: string) => never;

function isoDay(value: string, at: string, fail: Fail): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!m) return fail(at, `${JSON.stringify(value)} is not a date: expected YYYY-MM-DD`);
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = Date.UTC(y, mo - 1, d);
  const back = new Date(t);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) {
    return fail(at, `${JSON.stringify(value)} is not a valid date`);
  }
  return t / DAY;
}

function parseClock(value: string, at: string, fail: Fail): number {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(value);
  if (!m) return fail(at, `${JSON.stringify(value)} is not a time: expected HH:MM (00:00 to 23:59)`);
  return Number(m[1]) * HOUR + Number(m[2]) * MINUTE;
}

function checkShape(json: unknown, fail: Fail): CalendarFile {
  const obj = (v: unknown, at: string, keys: readonly string[], required: readonly string[]): Record<string, unknown> => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return fail(at, 'must be an object');
    const o = v as Record<string, unknown>;
    const unknown = Object.keys(o).filter((k) => !keys.includes(k));
    if (unknown.length) fail(at, `has unknown ${unknown.map((k) => JSON.stringify(k)).join(', ')} (allowed: ${keys.join(', ')})`);
    const missing = required.filter((k) => o[k] === undefined);
    if (missing.length) fail(at, `is missing ${missing.map((k) => JSON.stringify(k)).join(', ')}`);
    return o;
  };
  const text = (v: unknown, at: string): void => {
    if (typeof v !== 'string' || v.trim() === '') fail(at, 'must be a non-empty string');
  };
  const arr = (v: unknown, at: string): unknown[] => (Array.isArray(v) ? v : fail(at, 'must be an array'));

  const top = obj(json, 'the top level', ['$comment', 'timeZone', 'workingHours', 'years'], ['workingHours', 'years']);
  if (top.timeZone !== undefined) text(top.timeZone, 'timeZone');
  const wh = obj(top.workingHours, 'workingHours', ['start', 'end'], ['start', 'end']);
  text(wh.start, 'workingHours.start');
  text(wh.end, 'workingHours.end');
  arr(top.years, 'years').forEach((yv, i) => {
    const y = obj(yv, `years[${i}]`, ['year', 'confirmed', 'source', 'festivals', 'note'], ['year', 'confirmed', 'source', 'festivals']);
    if (!Number.isInteger(y.year) || (y.year as number) < 1950 || (y.year as number) > 2999) fail(`years[${i}].year`, `${JSON.stringify(y.year)} must be a year from 1950 to 2999`);
    const yw = `years[${i}] (${y.year as number})`;
    if (typeof y.confirmed !== 'boolean') fail(`${yw}.confirmed`, 'must be true or false');
    if (y.note !== undefined) text(y.note, `${yw}.note`);
    const s = obj(y.source, `${yw}.source`, ['title', 'documentNumber', 'date', 'url'], ['title', 'documentNumber', 'date']);
    for (const k of ['title', 'documentNumber', 'date'] as const) text(s[k], `${yw}.source.${k}`);
    if (s.url !== undefined && (typeof s.url !== 'string' || !/^https?:\/\//.test(s.url))) fail(`${yw}.source.url`, 'must be an http(s) address');
    arr(y.festivals, `${yw}.festivals`).forEach((fv, j) => {
      const fw = `${yw}.festivals[${j}]`;
      const f = obj(fv, fw, ['name', 'nameEn', 'daysOff', 'makeUpWorkdays', 'notice'], ['name', 'nameEn', 'daysOff', 'makeUpWorkdays']);
      text(f.name, `${fw}.name`);
      const parts = (f.name as string).split('、');
      if (!parts.every((p) => (FESTIVALS as readonly string[]).includes(p))) fail(`${fw}.name`, `${JSON.stringify(f.name)} is not one of ${FESTIVALS.join(', ')} (or two of them joined by 、)`);
      text(f.nameEn, `${fw}.nameEn`);
      if (f.notice !== undefined) text(f.notice, `${fw}.notice`);
      for (const k of ['daysOff', 'makeUpWorkdays'] as const) {
        arr(f[k], `${fw} (${f.name as string}).${k}`).forEach((d, k2) => {
          if (typeof d !== 'string') fail(`${fw} (${f.name as string}).${k}[${k2}]`, `${JSON.stringify(d)} is not a date: expected "YYYY-MM-DD"`);
        });
      }
      if ((f.daysOff as unknown[]).length === 0) fail(`${fw} (${f.name as string}).daysOff`, 'must list at least one day');
    });
  });
  return json as CalendarFile;
}

function readJson(file: string, where: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CalendarError(`${where}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CalendarError(`${where}: is not valid JSON (${(err as Error).message})`);
  }
}

function displayPath(file: string): string {
  const abs = path.resolve(file);
  const rel = path.relative(process.cwd(), abs);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : abs;
}
