import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkIdNumber,
  checkOrgCode,
  checkUscc,
  idNumberCheckDigit,
  makeIdNumber,
  makeUscc,
  orgCodeCheckChar,
  USCC_ALPHABET,
  usccCheckChar,
} from '../src/base/codes/index.ts';

// A tiny deterministic PRNG (mulberry32) so the property tests are reproducible.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = (r: () => number, s: string) => s[Math.floor(r() * s.length)]!;

function randomIdNumber(r: () => number): string {
  const regions = ['110105', '320508', '320576', '340102', '410105', '530102', '650102'];
  const region = regions[Math.floor(r() * regions.length)]!;
  const day = new Date(Date.UTC(1900, 0, 1) + Math.floor(r() * 45_000) * 86_400_000);
  const ymd = day.toISOString().slice(0, 10).replaceAll('-', '');
  const seq = String(Math.floor(r() * 1000)).padStart(3, '0');
  return makeIdNumber(region, ymd, seq);
}

function randomUscc(r: () => number): string {
  const [authority, type] = pick(r, '159') === '5' ? ['5', pick(r, '1239')] : ['9', pick(r, '123')];
  let body = '';
  for (let i = 0; i < 8; i++) body += pick(r, USCC_ALPHABET);
  // GB 11714 allows check character X and digits; the body must avoid letters outside the USCC alphabet
  return makeUscc(authority!, type!, pick(r, '123456') + String(Math.floor(r() * 1e5)).padStart(5, '0'), body);
}

test('GB 11643: the widely published sample 11010519491231002X is valid', () => {
  const r = checkIdNumber('11010519491231002X');
  assert.deepEqual(r, { ok: true, region: '110105', birthDate: '1949-12-31', sex: 'F' });
  assert.equal(idNumberCheckDigit('11010519491231002'), 'X');
});

test('GB 11643: rejects with a reason', () => {
  const reason = (s: string, today?: string) => {
    const r = checkIdNumber(s, today);
    assert.equal(r.ok, false, s);
    return r.ok ? '' : r.reason;
  };
  assert.match(reason('1101051949123100'), /^length/);
  assert.match(reason('11010519491231002x'), /^characters/); // lower-case x is not the standard form
  assert.match(reason('1101051949123100AX'), /^characters/);
  assert.match(reason(makeIdNumber('110105', '19490230', '002')), /invalid birth date 1949-02-30: not a calendar date/);
  assert.match(reason(makeIdNumber('110105', '18991231', '002')), /invalid birth date 1899-12-31: before 1900/);
  assert.match(reason(makeIdNumber('110105', '20250102', '002'), '2025-01-01'), /invalid birth date 2025-01-02: in the future/);
  assert.match(reason('110105194912310021'), /check digit mismatch: expected X, got 1/);
  assert.match(reason(makeIdNumber('990105', '19491231', '002')), /^region/);
  // leap days
  assert.equal(checkIdNumber(makeIdNumber('320508', '20000229', '001')).ok, true);
  assert.equal(checkIdNumber(makeIdNumber('320508', '19000229', '001')).ok, false);
});

test('GB 11643: sex follows the parity of the sequence code', () => {
  const m = checkIdNumber(makeIdNumber('320508', '19800101', '123'));
  const f = checkIdNumber(makeIdNumber('320508', '19800101', '124'));
  assert.ok(m.ok && m.sex === 'M');
  assert.ok(f.ok && f.sex === 'F');
});

test('GB 32100: the standard\'s own example 91350100M000100Y43 is valid', () => {
  assert.deepEqual(checkUscc('91350100M000100Y43'), {
    ok: true,
    registrationAuthority: '9',
    entityType: '1',
    region: '350100',
    orgCode: 'M000100Y4',
  });
  assert.equal(usccCheckChar('91350100M000100Y4'), '3');
  // its 主体标识码 is itself a valid GB 11714 organisation code
  assert.equal(orgCodeCheckChar('M000100Y'), '4');
  assert.deepEqual(checkOrgCode('M000100Y-4'), { ok: true, code: 'M000100Y4' });
});

test('GB 32100: rejects with a reason', () => {
  const reason = (s: string) => {
    const r = checkUscc(s);
    assert.equal(r.ok, false, s);
    return r.ok ? '' : r.reason;
  };
  assert.match(reason('91350100M000100Y4'), /^length/);
  assert.match(reason('91350100M000100YO3'), /^characters/); // O is not in the alphabet
  assert.match(reason('9135010AM000100Y43'), /^characters/); // region must be digits
  assert.match(reason('91350100M000100Y44'), /check character mismatch: expected 3, got 4/);
  // a correct outer check character over a body whose organisation code is wrong
  const badOrg = '91350100M000100Y5';
  assert.match(reason(badOrg + usccCheckChar(badOrg)), /^organisation code M000100Y5: check character mismatch: expected 4/);
});

test('GB 11714: organisation code forms and check characters', () => {
  // weights 3,7,9,10,5,8,4,2 over 1..8: 201 mod 11 = 3, 11 - 3 = 8
  assert.equal(orgCodeCheckChar('12345678'), '8');
  assert.equal(checkOrgCode('12345678-8').ok, true);
  assert.equal(checkOrgCode('123456788').ok, true);
  assert.equal(checkOrgCode('12345678-9').ok, false);
  assert.equal(checkOrgCode('12345678_8').ok, false);
  assert.match((checkOrgCode('1234567') as { reason: string }).reason, /^length/);
  // remainders 1 and 0 map to X and 0
  const bodies = ['00000000', '10000000', '20000000', '30000000', '40000000', '50000000', '60000000', '70000000', '80000000', '90000000'];
  const checks = new Set(bodies.map(orgCodeCheckChar));
  assert.ok(checks.has('X') && checks.has('0'), [...checks].join(''));
});

test('makeUscc: builds valid codes and refuses bad parts', () => {
  const code = makeUscc('9', '1', '320508', 'MA1MXXX0');
  assert.equal(checkUscc(code).ok, true);
  assert.equal(code.slice(0, 16), '91320508MA1MXXX0');
  assert.throws(() => makeUscc('9', '1', '32050', 'MA1MXXX0'), TypeError);
  assert.throws(() => makeUscc('9', '1', '320508', 'MA1MIXX0'), TypeError); // I is outside the alphabet
  assert.throws(() => makeUscc('9', '1', '320508', 'MA1MXXX01'), TypeError); // wrong org check character
});

test('property: random generated ID numbers validate; every single-character change is rejected', () => {
  const r = rng(11643);
  const chars = '0123456789X';
  for (let n = 0; n < 300; n++) {
    const id = randomIdNumber(r);
    assert.equal(checkIdNumber(id).ok, true, id);
    for (let i = 0; i < 18; i++) {
      for (const c of chars) {
        if (c === id[i]) continue;
        const changed = id.slice(0, i) + c + id.slice(i + 1);
        assert.equal(checkIdNumber(changed).ok, false, `${id} -> ${changed}`);
      }
    }
  }
});

test('property: random generated USCCs validate; every single-character change is rejected', () => {
  const r = rng(32100);
  for (let n = 0; n < 200; n++) {
    const code = randomUscc(r);
    const parsed = checkUscc(code);
    assert.equal(parsed.ok, true, code);
    assert.ok(parsed.ok && checkOrgCode(parsed.orgCode).ok);
    for (let i = 0; i < 18; i++) {
      for (const c of USCC_ALPHABET + 'IOSVZ') {
        if (c === code[i]) continue;
        const changed = code.slice(0, i) + c + code.slice(i + 1);
        assert.equal(checkUscc(changed).ok, false, `${code} -> ${changed}`);
      }
    }
  }
});

test('property: organisation codes catch every single-character change except the ones GB 11714 cannot', () => {
  // MOD 11 over character values 0..35: a change by 11, 22 or 33 (e.g. 0 -> B) leaves the sum's
  // remainder unchanged, so GB 11714 on its own cannot detect it. Everything else is caught.
  const r = rng(11714);
  const all = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const value = (c: string) => all.indexOf(c);
  let undetectable = 0;
  for (let n = 0; n < 300; n++) {
    let body = '';
    for (let i = 0; i < 8; i++) body += pick(r, all);
    const code = body + orgCodeCheckChar(body);
    assert.equal(checkOrgCode(code).ok, true, code);
    for (let i = 0; i < 9; i++) {
      for (const c of all) {
        if (c === code[i]) continue;
        const changed = code.slice(0, i) + c + code.slice(i + 1);
        const blind = i < 8 && (value(c) - value(code[i]!)) % 11 === 0;
        if (blind) undetectable++;
        assert.equal(checkOrgCode(changed).ok, blind, `${code} -> ${changed}`);
      }
    }
  }
  assert.ok(undetectable > 0);
});
