// The city profile: what makes a deployment Suzhou (or another city) is data under profiles/<city>/,
// never code. Four files, each validated by a schema, then cross-checked: division codes nest
// (county 6 digits, township 9 starting with its county, village-level 12 starting with its
// township), codes and ids are unique, and the exchange network names real divisions around one hub.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';

export const DEFAULT_PROFILE_DIR = fileURLToPath(new URL('../../profiles/suzhou/', import.meta.url)).replace(/[/\\]$/, '');

export class ProfileError extends Error {
  override name = 'ProfileError';
}

const Text = Type.String({ minLength: 1 });
// digits only here; length and prefix are checked against the parent so the message can say which
const Digits = Type.String({ pattern: '^[0-9]+$' });
const Code6 = Type.String({ pattern: '^[0-9]{6}$' });

const CitySchema = Type.Object(
  {
    code: Code6,
    name: Text,
    nameEn: Text,
    portalName: Text,
    portalNameEn: Text,
    timezone: Text,
    province: Type.Object({ code: Code6, name: Text }, { additionalProperties: false }),
    /** [longitude, latitude], WGS 84 */
    centre: Type.Tuple([Type.Number({ minimum: -180, maximum: 180 }), Type.Number({ minimum: -90, maximum: 90 })]),
  },
  { additionalProperties: false },
);

/** 社区 (urban residents' committee area) or 村 (village); 12-digit code */
const CommunitySchema = Type.Object(
  {
    code: Digits,
    name: Text,
    nameEn: Text,
    kind: Type.Enum(['community', 'village']),
    /** an NBS placeholder (虚拟社区) for a zone without a residents' committee: no one lives "there" */
    virtual: Type.Optional(Type.Literal(true)),
  },
  { additionalProperties: false },
);

/** 街道 / 镇 / 乡, or a 类似乡级单位 (development zone and the like); 9-digit code */
const StreetSchema = Type.Object(
  {
    code: Digits,
    name: Text,
    nameEn: Text,
    kind: Type.Enum(['street', 'town', 'functional-zone']),
    children: Type.Array(CommunitySchema),
  },
  { additionalProperties: false },
);

/** 区 / 县级市 / 功能区 (e.g. 苏州工业园区); 6-digit code */
const CountySchema = Type.Object(
  {
    code: Digits,
    name: Text,
    nameEn: Text,
    kind: Type.Enum(['district', 'county-city', 'functional-zone']),
    alias: Type.Optional(Text),
    aliasEn: Type.Optional(Text),
    children: Type.Array(StreetSchema),
  },
  { additionalProperties: false },
);

const DivisionsFileSchema = Type.Object(
  {
    source: Text,
    edition: Type.Optional(Text),
    /** the city's 6-digit code; must equal city.json's */
    city: Code6,
    divisions: Type.Array(CountySchema, { minItems: 1 }),
  },
  { additionalProperties: false },
);

const DepartmentSchema = Type.Object(
  {
    /** Gusu's stable short code, e.g. SZ-GA (公安) */
    code: Type.String({ pattern: '^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$' }),
    name: Text,
    nameEn: Text,
    /** the short form used in running text, e.g. 市公安局 */
    abbr: Text,
    /** office: 办公室; department: 政府工作部门; institution: 事业单位; vertical: 垂直管理 (e.g. tax);
     *  court: 法院; external: a party outside government (e.g. telecom operators) */
    kind: Type.Enum(['office', 'department', 'institution', 'vertical', 'court', 'external']),
    /** the base data or services it provides to others, e.g. population-source */
    roles: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z][a-z0-9-]*$' }))),
    note: Type.Optional(Text),
  },
  { additionalProperties: false },
);

const DepartmentsFileSchema = Type.Object({ departments: Type.Array(DepartmentSchema, { minItems: 1 }) }, { additionalProperties: false });

const ExchangeNodeSchema = Type.Object(
  {
    id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]*$' }),
    /** hub: the city platform all nodes connect to; node: a county-level exchange node */
    kind: Type.Enum(['hub', 'node']),
    name: Text,
    nameEn: Text,
    /** the city's code, or a division of divisions.json */
    divisionCode: Digits,
    /** the node this one exchanges through; every node but the hub has one */
    upstream: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const NetworkFileSchema = Type.Object({ nodes: Type.Array(ExchangeNodeSchema, { minItems: 1 }) }, { additionalProperties: false });

export type City = Static<typeof CitySchema>;
export type CommunityDivision = Static<typeof CommunitySchema>;
export type StreetDivision = Static<typeof StreetSchema>;
export type CountyDivision = Static<typeof CountySchema>;
export type Division = CountyDivision | StreetDivision | CommunityDivision;
export type DivisionKind = Division['kind'];
export type Department = Static<typeof DepartmentSchema>;
export type ExchangeNode = Static<typeof ExchangeNodeSchema>;

export interface CityProfile {
  /** the directory it was loaded from */
  dir: string;
  city: City;
  /** county-level divisions, each with its townships and their village-level units */
  divisions: CountyDivision[];
  /** attribution of the division data */
  divisionsSource: string;
  departments: Department[];
  network: ExchangeNode[];
}

const validators = {
  city: Compile(CitySchema),
  divisions: Compile(DivisionsFileSchema),
  departments: Compile(DepartmentsFileSchema),
  network: Compile(NetworkFileSchema),
};

/** Reads and checks <dir>/city.json, divisions.json, departments.json and network.json. */
export function loadCityProfile(dir: string): CityProfile {
  const city = readProfileFile(dir, 'city.json', validators.city);
  const divisions = readProfileFile(dir, 'divisions.json', validators.divisions);
  const departments = readProfileFile(dir, 'departments.json', validators.departments);
  const network = readProfileFile(dir, 'network.json', validators.network);

  checkDivisions(profileFail(dir, 'divisions.json'), city, divisions);
  checkDepartments(profileFail(dir, 'departments.json'), departments.departments);
  checkNetwork(profileFail(dir, 'network.json'), city, divisions.divisions, network.nodes);

  return {
    dir: path.resolve(dir),
    city,
    divisions: divisions.divisions,
    divisionsSource: divisions.source,
    departments: departments.departments,
    network: network.nodes,
  };
}

// ---------------------------------------------------------------------------------------------
// lookups

const indexes = new WeakMap<CityProfile, Map<string, Division>>();

function index(profile: CityProfile): Map<string, Division> {
  let map = indexes.get(profile);
  if (!map) {
    map = new Map();
    for (const county of profile.divisions) {
      map.set(county.code, county);
      for (const street of county.children) {
        map.set(street.code, street);
        for (const community of street.children) map.set(community.code, community);
      }
    }
    indexes.set(profile, map);
  }
  return map;
}

/** Any division of the profile (county, township or village-level) by its code. */
export function divisionByCode(profile: CityProfile, code: string): Division | undefined {
  return index(profile).get(code);
}

export function countyDivisions(profile: CityProfile): readonly CountyDivision[] {
  return profile.divisions;
}

/** The townships (街道/镇/zones) of a county-level division; empty for an unknown code. */
export function streetsOf(profile: CityProfile, countyCode: string): readonly StreetDivision[] {
  return profile.divisions.find((d) => d.code === countyCode)?.children ?? [];
}

/** The 社区/村 of a township; empty for an unknown code. */
export function communitiesOf(profile: CityProfile, streetCode: string): readonly CommunityDivision[] {
  const street = divisionByCode(profile, streetCode);
  return street && street.code.length === 9 ? (street as StreetDivision).children : [];
}

// ---------------------------------------------------------------------------------------------
// reading and checking

export type Fail = (where: string, problem: string, value?: unknown) => never;

function displayPath(dir: string, file: string): string {
  const abs = path.resolve(dir, file);
  const rel = path.relative(process.cwd(), abs);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : abs;
}

export function profileFail(dir: string, file: string): Fail {
  return (where, problem, value) => {
    const shown = value === undefined ? '' : ` ${JSON.stringify(value)}`;
    throw new ProfileError(`${displayPath(dir, file)}: ${where}${shown} ${problem}`);
  };
}

interface SchemaError {
  keyword: string;
  instancePath: string;
  params: object;
  message: string;
}

interface Checker<T> {
  Check(value: unknown): value is T;
  Errors(value: unknown): readonly SchemaError[];
}

/** Reads <dir>/<file> as JSON and checks it with a compiled schema; a ProfileError names the file, the path and why. */
export function readProfileFile<T>(dir: string, file: string, validator: Checker<T>): T {
  const where = displayPath(dir, file);
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, file), 'utf8');
  } catch (err) {
    throw new ProfileError(`${where}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ProfileError(`${where}: is not valid JSON (${(err as Error).message})`);
  }
  if (validator.Check(data)) return data;
  const errors = validator.Errors(data);
  // the 'boolean' entries duplicate additionalProperties errors with a less helpful message
  const first = errors.find((e) => e.keyword !== 'boolean') ?? errors[0];
  if (!first) throw new ProfileError(`${where}: does not match its schema`);
  throw new ProfileError(`${where}: ${describeError(data, first)}`);
}

/** "/divisions/3/children/2/code" -> "divisions[3].children[2].code" */
function jsonPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`;
  }
  return out;
}

function valueAt(data: unknown, pointer: string): unknown {
  let v: unknown = data;
  for (const raw of pointer.split('/').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[raw.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return v;
}

function describeError(data: unknown, e: SchemaError): string {
  const params = e.params as Record<string, unknown>;
  const where = jsonPath(e.instancePath);
  const at = where === '' ? 'the top level' : where;
  const value = valueAt(data, e.instancePath);
  const shown = value !== null && typeof value === 'object' ? '' : ` ${JSON.stringify(value)}`;
  switch (e.keyword) {
    case 'required': {
      const names = (params.requiredProperties as string[] | undefined) ?? [];
      return `${at} is missing ${names.map((n) => JSON.stringify(n)).join(', ')}`;
    }
    case 'additionalProperties': {
      const names = (params.additionalProperties as string[] | undefined) ?? [];
      return `${at} has unknown ${names.map((n) => JSON.stringify(n)).join(', ')}`;
    }
    case 'enum':
      return `${at}${shown} must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'pattern':
      return `${at}${shown} must match ${String(params.pattern)}`;
    case 'minLength':
      return `${at}${shown} must not be empty`;
    default:
      return `${at}${shown} ${e.message}`;
  }
}

function checkDivisions(fail: Fail, city: City, file: Static<typeof DivisionsFileSchema>): void {
  if (file.city !== city.code) fail('city', `must equal city.json's code ${city.code}`, file.city);
  const seen = new Map<string, string>();
  const unique = (code: string, where: string) => {
    const first = seen.get(code);
    if (first !== undefined) fail(`${where}.code`, `duplicates ${first}`, code);
    seen.set(code, where);
  };
  const cityPrefix = city.code.slice(0, 4);
  file.divisions.forEach((county, i) => {
    const cw = `divisions[${i}]`;
    if (!(county.code.length === 6 && county.code.startsWith(cityPrefix))) fail(`${cw}.code`, `must be 6 digits and start with ${cityPrefix}`, county.code);
    unique(county.code, cw);
    county.children.forEach((street, j) => {
      const sw = `${cw}.children[${j}]`;
      if (!(street.code.length === 9 && street.code.startsWith(county.code))) fail(`${sw}.code`, `must be 9 digits and start with ${county.code}`, street.code);
      unique(street.code, sw);
      street.children.forEach((community, k) => {
        const vw = `${sw}.children[${k}]`;
        if (!(community.code.length === 12 && community.code.startsWith(street.code))) fail(`${vw}.code`, `must be 12 digits and start with ${street.code}`, community.code);
        unique(community.code, vw);
      });
    });
  });
}

function checkDepartments(fail: Fail, departments: Department[]): void {
  const codes = new Map<string, number>();
  const names = new Map<string, number>();
  departments.forEach((d, i) => {
    const first = codes.get(d.code);
    if (first !== undefined) fail(`departments[${i}].code`, `duplicates departments[${first}]`, d.code);
    codes.set(d.code, i);
    const sameName = names.get(d.name);
    if (sameName !== undefined) fail(`departments[${i}].name`, `duplicates departments[${sameName}]`, d.name);
    names.set(d.name, i);
  });
}

function checkNetwork(fail: Fail, city: City, divisions: CountyDivision[], nodes: ExchangeNode[]): void {
  const ids = new Map<string, number>();
  nodes.forEach((n, i) => {
    const first = ids.get(n.id);
    if (first !== undefined) fail(`nodes[${i}].id`, `duplicates nodes[${first}]`, n.id);
    ids.set(n.id, i);
  });
  const hubs = nodes.map((n, i) => [n, i] as const).filter(([n]) => n.kind === 'hub');
  if (hubs.length === 0) fail('nodes', 'must contain exactly one node of kind "hub", found none');
  if (hubs.length > 1) fail(`nodes[${hubs[1]![1]}]`, `is a second hub (nodes[${hubs[0]![1]}] is the first); exactly one is allowed`);
  const known = new Set<string>([city.code]);
  for (const c of divisions) {
    known.add(c.code);
    for (const s of c.children) known.add(s.code);
  }
  nodes.forEach((n, i) => {
    const w = `nodes[${i}]`;
    if (!known.has(n.divisionCode)) fail(`${w}.divisionCode`, 'is neither the city nor a division in divisions.json', n.divisionCode);
    if (n.kind === 'hub' && n.upstream !== undefined) fail(`${w}.upstream`, 'must be absent on the hub', n.upstream);
    if (n.kind === 'node') {
      if (n.upstream === undefined) fail(w, 'is missing "upstream" (every node but the hub exchanges through one)');
      if (!ids.has(n.upstream)) fail(`${w}.upstream`, 'names no node of network.json', n.upstream);
    }
  });
  // every chain of upstreams must end at the hub, not loop
  nodes.forEach((n, i) => {
    let cur: ExchangeNode | undefined = n;
    for (let steps = 0; cur && cur.kind !== 'hub'; steps++) {
      if (steps > nodes.length) fail(`nodes[${i}].upstream`, 'is part of a loop that never reaches the hub', n.upstream);
      cur = nodes[ids.get(cur.upstream ?? '') ?? -1];
    }
  });
}
