import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_PROFILE_DIR, ProfileError } from '../src/config/profile.ts';
import {
  addDuration,
  addWorkingDays,
  addWorkingTime,
  CalendarError,
  coverageGaps,
  dayInfo,
  isWorkingDay,
  loadCalendar,
  parseCalendar,
  remindAt,
  workingDaysBetween,
  type CalendarFile,
  type WorkingCalendar,
} from '../src/base/workflow/calendar.ts';

const cal = loadCalendar(DEFAULT_PROFILE_DIR);

/** an instant written in Shanghai wall-clock time, whatever the machine's TZ */
const sh = (local: string): Date => new Date(`${local}+08:00`);
/** an instant shown in Shanghai wall-clock time */
const show = (d: Date): string => new Date(d.getTime() + 8 * 3_600_000).toISOString().slice(0, 16).replace('T', ' ');
/** a Shanghai noon of a date */
const day = (date: string): Date => sh(`${date}T12:00:00`);

const raw = (): CalendarFile => JSON.parse(fs.readFileSync(path.join(DEFAULT_PROFILE_DIR, 'calendar.json'), 'utf8')) as CalendarFile;

// ---------------------------------------------------------------------------------------------
// the data

test('Suzhou calendar: Asia/Shanghai from city.json, 09:00-17:00, 2024-2026 confirmed', () => {
  assert.equal(cal.timeZone, 'Asia/Shanghai');
  assert.deepEqual(cal.workingHours, { start: '09:00', end: '17:00' });
  assert.deepEqual(cal.years.map((y) => y.year), [2024, 2025, 2026]);
  for (const y of [2024, 2025, 2026]) assert.equal(cal.covers(y), true, String(y));
  for (const y of [2023, 2027]) assert.equal(cal.covers(y), false, String(y));
});

test('Suzhou calendar: sources are the State Council notices', () => {
  const sources = Object.fromEntries(cal.years.map((y) => [y.year, [y.source.documentNumber, y.source.date]]));
  assert.deepEqual(sources, {
    2024: ['国办发明电〔2023〕7号', '2023-10-25'],
    2025: ['国办发明电〔2024〕12号', '2024-11-12'],
    2026: ['国办发明电〔2025〕7号', '2025-11-04'],
  });
  for (const y of cal.years) assert.equal(y.source.title, `国务院办公厅关于${y.year}年部分节假日安排的通知`);
});

test('Suzhou calendar: days off and make-up days per year, as the notices count them', () => {
  const count = (year: number) => {
    const y = cal.years.find((e) => e.year === year)!;
    return [y.festivals.flatMap((f) => f.daysOff).length, y.festivals.flatMap((f) => f.makeUpWorkdays).length];
  };
  assert.deepEqual(count(2024), [28, 8]);
  assert.deepEqual(count(2025), [28, 5]);
  assert.deepEqual(count(2026), [33, 6]);
  // 2025 onwards: 春节 from 除夕, 8 days; 2026: 9 days
  const spring = (year: number) => cal.years.find((e) => e.year === year)!.festivals.find((f) => f.name === '春节')!.daysOff;
  assert.equal(spring(2025).length, 8);
  assert.equal(spring(2025)[0], '2025-01-28'); // 除夕
  assert.equal(spring(2026).length, 9);
});

test('Suzhou calendar: every weekday the notices print (周日, 星期六 ...) matches the date', () => {
  const names: Record<string, number> = { 日: 0, 一: 1, 二: 2, 三: 3, 四: 4, 五: 5, 六: 6 };
  let checked = 0;
  for (const y of cal.years) {
    for (const f of y.festivals) {
      // "1月28日（农历除夕、周二）" or "2月4日（星期日）"; a bare "6日（周日）" takes the month before it
      let month = 0;
      for (const m of (f.notice ?? '').matchAll(/(?:(\d{1,2})月)?(\d{1,2})日（(?:[^）]*、)?(?:周|星期)([日一二三四五六])）/g)) {
        if (m[1]) month = Number(m[1]);
        const date = new Date(Date.UTC(y.year, month - 1, Number(m[2])));
        assert.equal(date.getUTCDay(), names[m[3]!], `${y.year} ${f.name}: ${m[0]}`);
        checked++;
      }
    }
  }
  assert.ok(checked >= 40, `only ${checked} weekday annotations found`);
});

// ---------------------------------------------------------------------------------------------
// 2026: National Day week and its make-up days

test('2026 National Day: Sunday 20 September and Saturday 10 October are working days; 1-7 October and 中秋 25-27 September are not', () => {
  const expect: Record<string, boolean> = {
    '2026-09-19': false, // Saturday
    '2026-09-20': true, // Sunday, 调休上班 for 国庆节
    '2026-09-24': true,
    '2026-09-25': false, // 中秋节 (Friday)
    '2026-09-26': false,
    '2026-09-27': false,
    '2026-09-28': true,
    '2026-09-30': true,
    '2026-10-01': false,
    '2026-10-05': false, // Monday
    '2026-10-07': false, // Wednesday
    '2026-10-08': true,
    '2026-10-09': true,
    '2026-10-10': true, // Saturday, 调休上班
    '2026-10-11': false, // Sunday
    '2026-10-12': true,
  };
  for (const [date, working] of Object.entries(expect)) assert.equal(isWorkingDay(cal, day(date)), working, date);
  assert.deepEqual(dayInfo(cal, day('2026-10-10')), { date: '2026-10-10', working: true, kind: 'make-up', festival: { name: '国庆节', nameEn: 'National Day' }, covered: true });
  assert.deepEqual(dayInfo(cal, day('2026-10-03')), { date: '2026-10-03', working: false, kind: 'holiday', festival: { name: '国庆节', nameEn: 'National Day' }, covered: true });
  assert.deepEqual(dayInfo(cal, day('2026-10-11')), { date: '2026-10-11', working: false, kind: 'weekend', covered: true });
  assert.deepEqual(dayInfo(cal, day('2026-10-12')), { date: '2026-10-12', working: true, kind: 'workday', covered: true });
});

test('2026 National Day: deadlines across the break', () => {
  const created = sh('2026-09-30T10:00:00'); // Wednesday, the last working day before the break
  assert.equal(show(addWorkingDays(cal, created, 1)), '2026-10-08 17:00');
  assert.equal(show(addWorkingDays(cal, created, 2)), '2026-10-09 17:00');
  assert.equal(show(addWorkingDays(cal, created, 3)), '2026-10-10 17:00'); // the make-up Saturday
  assert.equal(show(addWorkingDays(cal, created, 4)), '2026-10-12 17:00');
  // created on a holiday: the first working day after it is day 1
  assert.equal(show(addWorkingDays(cal, sh('2026-10-03T11:00:00'), 1)), '2026-10-08 17:00');
  // Friday evening before the make-up Sunday: due that Sunday
  assert.equal(show(addWorkingDays(cal, sh('2026-09-18T20:00:00'), 1)), '2026-09-20 17:00');
  // 5 working days from Thursday 17 September: 18, 20 (Sunday), 21, 22, 23
  assert.equal(show(addWorkingDays(cal, sh('2026-09-17T09:30:00'), 5)), '2026-09-23 17:00');
});

test('the day of receipt is not counted, whatever the hour', () => {
  // Friday 2026-03-06: morning, after closing, and just before midnight all give Monday 17:00
  for (const t of ['08:00:00', '10:00:00', '18:30:00', '23:59:59']) {
    assert.equal(show(addWorkingDays(cal, sh(`2026-03-06T${t}`), 1)), '2026-03-09 17:00', t);
  }
  // Saturday and Sunday too
  assert.equal(show(addWorkingDays(cal, sh('2026-03-07T10:00:00'), 1)), '2026-03-09 17:00');
  assert.equal(show(addWorkingDays(cal, sh('2026-03-08T10:00:00'), 1)), '2026-03-09 17:00');
  // 0 working days: the close of the same working day (当日办结), else of the next one
  assert.equal(show(addWorkingDays(cal, sh('2026-03-06T10:00:00'), 0)), '2026-03-06 17:00');
  assert.equal(show(addWorkingDays(cal, sh('2026-03-06T18:00:00'), 0)), '2026-03-09 17:00');
  assert.equal(show(addWorkingDays(cal, sh('2026-10-02T10:00:00'), 0)), '2026-10-08 17:00');
  // 20 working days (行政许可法 第四十二条) from Monday 2026-03-02: 2 March not counted
  assert.equal(show(addWorkingDays(cal, sh('2026-03-02T10:00:00'), 20)), '2026-03-30 17:00');
  assert.throws(() => addWorkingDays(cal, sh('2026-03-02T10:00:00'), -1), RangeError);
  assert.throws(() => addWorkingDays(cal, sh('2026-03-02T10:00:00'), 1.5), RangeError);
  assert.throws(() => addWorkingDays(cal, new Date(NaN), 1), RangeError);
});

// ---------------------------------------------------------------------------------------------
// Spring Festival 2025 and 2026

test('Spring Festival 2025: 28 January (除夕) to 4 February off; Sunday 26 January and Saturday 8 February working', () => {
  assert.equal(isWorkingDay(cal, day('2025-01-26')), true);
  assert.equal(isWorkingDay(cal, day('2025-01-27')), true);
  for (const d of ['2025-01-28', '2025-01-29', '2025-02-03', '2025-02-04']) assert.equal(isWorkingDay(cal, day(d)), false, d);
  assert.equal(isWorkingDay(cal, day('2025-02-05')), true);
  assert.equal(isWorkingDay(cal, day('2025-02-08')), true);
  assert.equal(isWorkingDay(cal, day('2025-02-09')), false);
  const friday = sh('2025-01-24T16:00:00');
  assert.equal(show(addWorkingDays(cal, friday, 1)), '2025-01-26 17:00'); // the make-up Sunday
  assert.equal(show(addWorkingDays(cal, friday, 2)), '2025-01-27 17:00');
  assert.equal(show(addWorkingDays(cal, friday, 3)), '2025-02-05 17:00');
  assert.equal(show(addWorkingDays(cal, friday, 6)), '2025-02-08 17:00'); // the make-up Saturday
  assert.equal(dayInfo(cal, day('2025-02-08')).festival?.name, '春节');
});

test('Spring Festival 2026: 15 to 23 February off (9 days); Saturdays 14 and 28 February working', () => {
  for (const d of ['2026-02-15', '2026-02-16', '2026-02-20', '2026-02-23']) assert.equal(isWorkingDay(cal, day(d)), false, d);
  for (const d of ['2026-02-13', '2026-02-14', '2026-02-24', '2026-02-28']) assert.equal(isWorkingDay(cal, day(d)), true, d);
  const friday = sh('2026-02-13T11:00:00');
  assert.equal(show(addWorkingDays(cal, friday, 1)), '2026-02-14 17:00');
  assert.equal(show(addWorkingDays(cal, friday, 2)), '2026-02-24 17:00');
  assert.equal(show(addWorkingDays(cal, friday, 5)), '2026-02-27 17:00');
  assert.equal(show(addWorkingDays(cal, friday, 6)), '2026-02-28 17:00');
  assert.equal(show(addWorkingDays(cal, friday, 7)), '2026-03-02 17:00');
  assert.equal(workingDaysBetween(cal, sh('2026-02-13T11:00:00'), sh('2026-03-02T09:00:00')), 7);
});

test('a make-up working Sunday counts as a working day (元旦 2026: Sunday 4 January)', () => {
  assert.equal(isWorkingDay(cal, day('2026-01-04')), true);
  assert.equal(dayInfo(cal, day('2026-01-04')).kind, 'make-up');
  assert.equal(dayInfo(cal, day('2026-01-04')).festival?.name, '元旦');
  // the Sunday before and after are ordinary weekend days
  assert.equal(isWorkingDay(cal, day('2025-12-28')), false);
  assert.equal(isWorkingDay(cal, day('2026-01-11')), false);
  // 2024 as well: 4 and 18 February, 7 and 28 April, 29 September
  for (const d of ['2024-02-04', '2024-02-18', '2024-04-07', '2024-04-28', '2024-09-29']) assert.equal(isWorkingDay(cal, day(d)), true, d);
});

// ---------------------------------------------------------------------------------------------
// year boundaries and uncovered years

test('deadlines across a year boundary', () => {
  // Wednesday 2025-12-31: 1-3 January 2026 off, Sunday 4 January a make-up day
  assert.equal(show(addWorkingDays(cal, sh('2025-12-31T15:00:00'), 1)), '2026-01-04 17:00');
  assert.equal(show(addWorkingDays(cal, sh('2025-12-31T15:00:00'), 2)), '2026-01-05 17:00');
  // Tuesday 2024-12-31: 1 January 2025 only, no make-up day
  assert.equal(show(addWorkingDays(cal, sh('2024-12-31T15:00:00'), 1)), '2025-01-02 17:00');
  assert.equal(workingDaysBetween(cal, sh('2024-12-31T15:00:00'), sh('2025-01-02T17:00:00')), 1);
  // a whole year: 2026 has 248 working days (261 weekdays - 19 weekday holidays + 6 make-up days)
  assert.equal(workingDaysBetween(cal, sh('2025-12-31T12:00:00'), sh('2026-12-31T12:00:00')), 248);
  assert.equal(coverageGaps(cal, sh('2025-12-31T15:00:00'), sh('2026-01-05T17:00:00')).length, 0);
});

test('an uncovered year falls back to Monday to Friday and is flagged', () => {
  // Thursday 2026-12-31 + 1: Friday 1 January 2027 (in fact 元旦, but the 2027 notice is not in the file)
  const due = addWorkingDays(cal, sh('2026-12-31T10:00:00'), 1);
  assert.equal(show(due), '2027-01-01 17:00');
  assert.equal(cal.covers(2027), false);
  assert.deepEqual(coverageGaps(cal, sh('2026-12-31T10:00:00'), due), [2027]);
  assert.deepEqual(coverageGaps(cal, due, sh('2026-12-31T10:00:00')), [2027]);
  assert.deepEqual(dayInfo(cal, day('2027-10-01')), { date: '2027-10-01', working: true, kind: 'workday', covered: false });
  assert.equal(isWorkingDay(cal, day('2027-10-02')), false); // a Saturday is still off
  assert.deepEqual(coverageGaps(cal, day('2022-06-01'), day('2024-06-01')), [2022, 2023]);
  // far beyond the data: whole weeks of 5 working days
  assert.equal(show(addWorkingDays(cal, sh('2030-01-07T10:00:00'), 50)), '2030-03-18 17:00');
  assert.equal(workingDaysBetween(cal, sh('2030-01-07T10:00:00'), sh('2030-03-18T17:00:00')), 50);
});

test('an unconfirmed year is applied but not covered', () => {
  const doc = raw();
  doc.years[2]!.confirmed = false;
  const c = parseCalendar(doc, { timeZone: 'Asia/Shanghai' });
  assert.equal(c.covers(2026), false);
  assert.equal(isWorkingDay(c, day('2026-10-10')), true);
  assert.deepEqual(coverageGaps(c, day('2026-09-30'), day('2026-10-12')), [2026]);
});

test('workingDaysBetween counts as addWorkingDays does, from any start in 2024-2027', () => {
  for (let d = Date.UTC(2024, 0, 1); d < Date.UTC(2027, 1, 1); d += 3 * 86_400_000 + 7 * 3_600_000) {
    const from = new Date(d);
    for (const n of [1, 2, 3, 5, 7, 10, 20, 45]) {
      const due = addWorkingDays(cal, from, n);
      assert.equal(workingDaysBetween(cal, from, due), n, `${from.toISOString()} + ${n}`);
      assert.equal(workingDaysBetween(cal, due, from), -n);
      assert.equal(isWorkingDay(cal, due), true);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// the machine's time zone does not matter

test('results do not depend on the process TZ', () => {
  const cases = (): string[] => [
    addWorkingDays(cal, sh('2026-09-30T23:30:00'), 1).toISOString(), // 15:30 UTC, still 30 September in Suzhou
    addWorkingDays(cal, sh('2026-10-08T00:30:00'), 0).toISOString(), // 7 October 16:30 UTC, a holiday in UTC terms
    String(isWorkingDay(cal, sh('2026-10-08T00:30:00'))),
    String(isWorkingDay(cal, sh('2026-10-07T23:59:59'))),
    String(isWorkingDay(cal, sh('2026-09-20T07:00:00'))), // 19 September 23:00 UTC: a Saturday in UTC terms
    addDuration(cal, sh('2025-12-31T20:00:00'), { workingDays: 2, hours: 1 }).toISOString(),
    remindAt(cal, sh('2026-10-08T17:00:00'), { workingDays: 1 }).toISOString(),
    String(workingDaysBetween(cal, sh('2026-10-08T17:00:00'), sh('2026-10-12T00:10:00'))),
    dayInfo(cal, sh('2026-02-15T00:00:00')).date,
    addWorkingTime(cal, sh('2026-09-30T16:30:00'), 120).toISOString(),
  ];
  const saved = process.env.TZ;
  const results: Record<string, string[]> = {};
  const offsets: Record<string, number> = {};
  try {
    for (const tz of ['Asia/Shanghai', 'UTC', 'America/Los_Angeles', 'Pacific/Kiritimati', 'Etc/GMT+12', 'Europe/London']) {
      process.env.TZ = tz;
      offsets[tz] = new Date(Date.UTC(2026, 0, 15)).getTimezoneOffset();
      results[tz] = cases();
    }
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
  // the TZ change took effect in this process
  assert.equal(offsets['Asia/Shanghai'], -480);
  assert.equal(offsets['America/Los_Angeles'], 480);
  assert.equal(offsets['Pacific/Kiritimati'], -840);
  const expected = [
    '2026-10-08T09:00:00.000Z',
    '2026-10-08T09:00:00.000Z',
    'true',
    'false',
    'true',
    '2026-01-05T10:00:00.000Z',
    '2026-09-30T09:00:00.000Z',
    '3',
    '2026-02-15',
    '2026-10-08T02:30:00.000Z',
  ];
  for (const [tz, r] of Object.entries(results)) assert.deepEqual(r, expected, tz);
});

// ---------------------------------------------------------------------------------------------
// durations, reminders, overdue

test('addDuration: working days on the calendar, hours and minutes on the clock', () => {
  const from = sh('2026-09-30T10:00:00');
  assert.equal(show(addDuration(cal, from, { workingDays: 2 })), '2026-10-09 17:00');
  assert.equal(show(addDuration(cal, from, { hours: 2 })), '2026-09-30 12:00');
  assert.equal(show(addDuration(cal, from, { hours: 24, minutes: 30 })), '2026-10-01 10:30'); // clock time runs through holidays
  assert.equal(show(addDuration(cal, from, { workingDays: 1, hours: 1, minutes: 15 })), '2026-10-08 18:15');
  assert.equal(show(addDuration(cal, from, { workingDays: 0 })), '2026-09-30 17:00');
  assert.equal(show(addDuration(cal, from, {})), '2026-09-30 10:00');
  assert.throws(() => addDuration(cal, from, { workingDays: 1.5 }), /workingDays must be a whole number/);
  assert.throws(() => addDuration(cal, from, { hours: -1 }), /hours must be a number from 0/);
  assert.throws(() => addDuration(cal, from, { minutes: Number.NaN }), /minutes must be a number from 0/);
});

test('addWorkingTime: office hours only', () => {
  assert.equal(show(addWorkingTime(cal, sh('2026-09-30T16:30:00'), 120)), '2026-10-08 10:30');
  assert.equal(show(addWorkingTime(cal, sh('2026-09-30T07:00:00'), 60)), '2026-09-30 10:00');
  assert.equal(show(addWorkingTime(cal, sh('2026-09-30T15:00:00'), 120)), '2026-09-30 17:00');
  assert.equal(show(addWorkingTime(cal, sh('2026-10-03T15:00:00'), 8 * 60 + 30)), '2026-10-09 09:30');
  assert.equal(show(addWorkingTime(cal, sh('2026-10-09T18:00:00'), 30)), '2026-10-10 09:30'); // the make-up Saturday
});

test('remindAt: working days back at the same time of day, then clock time', () => {
  const due = sh('2026-10-08T17:00:00'); // first working day after National Day
  assert.equal(show(remindAt(cal, due, { workingDays: 1 })), '2026-09-30 17:00');
  assert.equal(show(remindAt(cal, due, { workingDays: 2 })), '2026-09-29 17:00');
  assert.equal(show(remindAt(cal, due, { hours: 4 })), '2026-10-08 13:00');
  assert.equal(show(remindAt(cal, due, { workingDays: 1, hours: 1, minutes: 30 })), '2026-09-30 15:30');
  // Monday 5 January 2026: the working day before is the make-up Sunday
  assert.equal(show(remindAt(cal, sh('2026-01-05T17:00:00'), { workingDays: 1 })), '2026-01-04 17:00');
  // reminder and deadline round-trip
  const created = sh('2026-02-10T09:30:00');
  const deadline = addDuration(cal, created, { workingDays: 5 });
  assert.equal(show(deadline), '2026-02-24 17:00');
  assert.equal(show(remindAt(cal, deadline, { workingDays: 1 })), '2026-02-14 17:00');
});

test('workingDaysBetween for overdue reporting', () => {
  const due = sh('2026-10-08T17:00:00');
  assert.equal(workingDaysBetween(cal, due, sh('2026-10-08T18:00:00')), 0);
  assert.equal(workingDaysBetween(cal, due, sh('2026-10-09T09:00:00')), 1);
  assert.equal(workingDaysBetween(cal, due, sh('2026-10-11T12:00:00')), 2); // 9 and the make-up 10 October
  assert.equal(workingDaysBetween(cal, due, sh('2026-10-12T10:00:00')), 3);
  assert.equal(workingDaysBetween(cal, sh('2026-10-12T10:00:00'), due), -3);
  assert.equal(workingDaysBetween(cal, sh('2026-10-01T10:00:00'), sh('2026-10-07T10:00:00')), 0);
});

test('fast enough to call per task', () => {
  const t0 = performance.now();
  let last = 0;
  for (let i = 0; i < 20_000; i++) last = addDuration(cal, new Date(Date.UTC(2024, 0, 1) + i * 4_000_000), { workingDays: 20 }).getTime();
  const ms = performance.now() - t0;
  assert.ok(last > 0);
  assert.ok(ms < 2_000, `20,000 deadlines took ${ms.toFixed(0)} ms`);
});

// ---------------------------------------------------------------------------------------------
// refusing bad files

function refuses(mutate: (doc: CalendarFile) => void, message: RegExp, options?: { timeZone?: string }): void {
  const doc = raw();
  mutate(doc);
  assert.throws(() => parseCalendar(doc, options ?? { timeZone: 'Asia/Shanghai', where: 'calendar.json' }), (err: unknown) => {
    assert.ok(err instanceof CalendarError, String(err));
    assert.ok(err instanceof ProfileError);
    assert.match(err.message, message);
    assert.ok(!err.message.includes('\n'));
    return true;
  });
}

const y2026 = (doc: CalendarFile) => doc.years.find((y) => y.year === 2026)!;
const nationalDay2026 = (doc: CalendarFile) => y2026(doc).festivals.find((f) => f.name === '国庆节')!;

test('refused: a holiday that is also a make-up day', () => {
  refuses(
    (doc) => nationalDay2026(doc).makeUpWorkdays.push('2026-10-03'),
    /^calendar\.json: years\[2\] \(2026\)\.festivals\[6\] \(国庆节\)\.makeUpWorkdays\[2\] 2026-10-03 is listed both as a day off and as a make-up working day \(also at years\[2\] \(2026\)\.festivals\[6\] \(国庆节\)\.daysOff\[2\]\)$/,
  );
  // across festivals too
  refuses((doc) => y2026(doc).festivals[0]!.makeUpWorkdays.push('2026-02-15'), /\(2026\).*2026-02-15 is listed both as a day off and as a make-up working day/);
});

test('refused: a bad date', () => {
  refuses((doc) => (nationalDay2026(doc).daysOff[0] = '2026-02-30'), /years\[2\] \(2026\)\.festivals\[6\] \(国庆节\)\.daysOff\[0\] "2026-02-30" is not a valid date$/);
  refuses((doc) => (nationalDay2026(doc).daysOff[0] = '2026-10-1'), /\(2026\).*"2026-10-1" is not a date: expected YYYY-MM-DD$/);
  refuses((doc) => (nationalDay2026(doc).daysOff[0] = '1 October 2026'), /\(2026\).*"1 October 2026" is not a date/);
  refuses((doc) => ((nationalDay2026(doc).daysOff as unknown[])[0] = 20261001), /\(2026\).*20261001 is not a date/);
  refuses((doc) => (y2026(doc).source.date = '2025-11-31'), /years\[2\] \(2026\)\.source\.date "2025-11-31" is not a valid date/);
  refuses((doc) => (nationalDay2026(doc).daysOff[0] = '2029-10-01'), /\(2026\).*2029-10-01 is not in or next to the year 2026/);
});

test('refused: a make-up day on a weekday', () => {
  refuses(
    (doc) => (nationalDay2026(doc).makeUpWorkdays[1] = '2026-10-09'),
    /^calendar\.json: years\[2\] \(2026\)\.festivals\[6\] \(国庆节\)\.makeUpWorkdays\[1\] 2026-10-09 is a Friday: a make-up working day \(调休上班\) must be a Saturday or Sunday$/,
  );
});

test('refused: a repeated year or date, unknown keys, bad names, hours and time zones', () => {
  refuses((doc) => doc.years.push(structuredClone(doc.years[0]!)), /years\[3\] \(2024\) repeats the year 2024/);
  refuses((doc) => nationalDay2026(doc).daysOff.push('2026-10-01'), /\(2026\).*2026-10-01 is listed twice/);
  refuses((doc) => ((y2026(doc) as unknown as Record<string, unknown>).holidays = []), /years\[2\] has unknown "holidays"/);
  refuses((doc) => delete (y2026(doc) as { confirmed?: boolean }).confirmed, /years\[2\] is missing "confirmed"/);
  refuses((doc) => (nationalDay2026(doc).name = '国庆'), /festivals\[6\]\.name "国庆" is not one of 元旦, 春节/);
  refuses((doc) => (doc.workingHours.end = '08:00'), /workingHours start 09:00 must be before end 08:00/);
  refuses((doc) => (doc.workingHours.start = '9:00'), /workingHours\.start "9:00" is not a time/);
  refuses((doc) => (doc.timeZone = 'Asia/Urumqi'), /timeZone "Asia\/Urumqi" differs from the profile's time zone "Asia\/Shanghai"/);
  refuses((doc) => (doc.timeZone = 'Mars/Olympus'), /timeZone "Mars\/Olympus" is not a time zone/, {});
  refuses((doc) => (y2026(doc).source.documentNumber = ''), /years\[2\] \(2026\)\.source\.documentNumber must be a non-empty string/);
  assert.throws(() => parseCalendar([]), /calendar: the top level must be an object/);
});

test('loadCalendar: clear errors for a missing or broken file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-calendar-'));
  try {
    assert.throws(() => loadCalendar(dir), (err: unknown) => err instanceof CalendarError && /calendar\.json: cannot be read \(ENOENT\)$/.test(err.message));
    fs.writeFileSync(path.join(dir, 'calendar.json'), '{ "years": [ }');
    assert.throws(() => loadCalendar(dir), /calendar\.json: is not valid JSON/);
    // without city.json the document's own timeZone, else Asia/Shanghai
    const doc = raw();
    fs.writeFileSync(path.join(dir, 'calendar.json'), JSON.stringify(doc));
    assert.equal(loadCalendar(dir).timeZone, 'Asia/Shanghai');
    fs.writeFileSync(path.join(dir, 'calendar.json'), JSON.stringify({ ...doc, timeZone: 'Asia/Hong_Kong' }));
    assert.equal(loadCalendar(dir).timeZone, 'Asia/Hong_Kong');
    fs.writeFileSync(path.join(dir, 'city.json'), JSON.stringify({ timezone: 'Asia/Shanghai' }));
    assert.throws(() => loadCalendar(dir), /calendar\.json: timeZone "Asia\/Hong_Kong" differs from the profile's time zone "Asia\/Shanghai" \(city\.json\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a calendar is plain data: JSON round-trips to the file, and it cannot be modified', () => {
  const again = parseCalendar(JSON.parse(JSON.stringify(cal)) as unknown, { timeZone: 'Asia/Shanghai' });
  assert.equal(show(addWorkingDays(again, sh('2026-09-30T10:00:00'), 1)), '2026-10-08 17:00');
  assert.throws(() => {
    (cal as { timeZone: string }).timeZone = 'UTC';
  }, TypeError);
  assert.throws(() => isWorkingDay({ ...cal } as WorkingCalendar, day('2026-10-08')), /not a WorkingCalendar/);
});

test('another time zone, across a daylight-saving change: still the local close of office', () => {
  const doc = raw();
  const berlin = parseCalendar({ ...doc, timeZone: 'Europe/Berlin', years: [] });
  // Friday 27 March 2026 (UTC+1); clocks go forward on Sunday 29 March; Monday is UTC+2
  assert.equal(addWorkingDays(berlin, new Date('2026-03-27T10:00:00+01:00'), 1).toISOString(), '2026-03-30T15:00:00.000Z');
  assert.equal(addWorkingDays(berlin, new Date('2026-10-23T10:00:00+02:00'), 1).toISOString(), '2026-10-26T16:00:00.000Z');
  assert.equal(berlin.covers(2026), false);
});

test('the calendar keeps its own frozen copy of the data', () => {
  const doc = raw();
  const c = parseCalendar(doc);
  nationalDay2026(doc).makeUpWorkdays.length = 0; // changing the source afterwards changes nothing
  assert.equal(isWorkingDay(c, day('2026-10-10')), true);
  assert.ok(Object.isFrozen(c.years) && Object.isFrozen(c.years[2]!.festivals[6]!.daysOff));
  assert.throws(() => (c.years[2]!.festivals[6]!.daysOff as string[]).push('2026-10-12'), TypeError);
});
