// 政务信息资源目录: what a catalog entry is (the core metadata of the 2017 compilation guide,
// 《政务信息资源目录编制指南（试行）》), and the city profile's catalog files that seed it
// (profiles/<city>/catalog/classification.json and entries.json), validated at load.
import fs from 'node:fs';
import path from 'node:path';
import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { profileFail, readProfileFile, type Department } from '../../config/profile.ts';

const Text = Type.String({ minLength: 1, maxLength: 2000 });
const Short = Type.String({ minLength: 1, maxLength: 200 });

/** 类 (1 digit) 项 (+2) 目 (+3) 细目 (+2): 1, 101, 101001, 10100101 */
export const CATEGORY_CODE = /^[1-3](\d{2}(\d{3}(\d{2})?)?)?$/;
/** 信息资源代码: the classification code of a 目 or 细目, "/", a 6-digit 顺序码 */
export const ENTRY_CODE = /^([1-3]\d{5}(?:\d{2})?)\/(\d{6})$/;
export const FIELD_NAME = /^[a-z][A-Za-z0-9]{0,63}$/;

/** 基础 / 主题 / 部门 信息资源目录, from the first digit of the classification */
export const CATALOG_KINDS = ['base', 'theme', 'department'] as const;
export type CatalogKind = (typeof CATALOG_KINDS)[number];
export const KIND_OF_CLASS: Record<string, CatalogKind> = { '1': 'base', '2': 'theme', '3': 'department' };

/** 共享类型: 无条件共享 / 有条件共享 / 不予共享 */
export const SHARE_TYPES = ['unconditional', 'conditional', 'none'] as const;
export type ShareType = (typeof SHARE_TYPES)[number];
/** 共享方式: 订阅 / 查询 / 批量 */
export const SHARE_METHODS = ['subscription', 'query', 'bulk'] as const;
export type ShareMethod = (typeof SHARE_METHODS)[number];
/** 更新周期: 实时 每日 每周 每月 每季 每年 不定期 */
export const UPDATE_CYCLES = ['realtime', 'daily', 'weekly', 'monthly', 'quarterly', 'yearly', 'irregular'] as const;
export type UpdateCycle = (typeof UPDATE_CYCLES)[number];
/** 信息资源格式 */
export const FORMAT_TYPES = ['document', 'spreadsheet', 'database', 'image', 'stream', 'self-describing', 'api'] as const;
/** 数据类型: 字符型 数值型 货币型 日期型 日期时间型 逻辑型 备注型 二进制 */
export const ITEM_TYPES = ['C', 'N', 'Y', 'D', 'T', 'L', 'M', 'B'] as const;

/** The longest an update cycle may go without data before the entry counts as late (irregular: never). */
export const CYCLE_MS: Record<UpdateCycle, number | null> = {
  realtime: 24 * 3600_000, // a real-time feed silent for a day is late
  daily: 2 * 24 * 3600_000,
  weekly: 8 * 24 * 3600_000,
  monthly: 32 * 24 * 3600_000,
  quarterly: 93 * 24 * 3600_000,
  yearly: 367 * 24 * 3600_000,
  irregular: null,
};

export const ItemSchema = Type.Object(
  {
    /** the property name of this item in the data (JSON), unique within the entry */
    field: Type.String({ pattern: FIELD_NAME.source }),
    name: Short,
    type: Type.Enum([...ITEM_TYPES]),
    length: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    /** personal data (个人信息): shown to stewards, counted in agreements */
    personal: Type.Boolean(),
  },
  { additionalProperties: false },
);

export const EntryInputSchema = Type.Object(
  {
    code: Type.String({ pattern: ENTRY_CODE.source }),
    classification: Type.String({ pattern: CATEGORY_CODE.source }),
    name: Short,
    nameEn: Type.Optional(Short),
    provider: Type.String({ pattern: '^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$' }),
    abstract: Text,
    format: Type.Object({ type: Type.Enum([...FORMAT_TYPES]), detail: Type.Optional(Short) }, { additionalProperties: false }),
    items: Type.Array(ItemSchema, { minItems: 1, maxItems: 500 }),
    share: Type.Object(
      {
        type: Type.Enum([...SHARE_TYPES]),
        condition: Type.Optional(Text),
        methods: Type.Array(Type.Enum([...SHARE_METHODS]), { maxItems: 3, uniqueItems: true }),
        legalBasis: Type.Optional(Text),
      },
      { additionalProperties: false },
    ),
    open: Type.Object({ open: Type.Boolean(), condition: Type.Optional(Text) }, { additionalProperties: false }),
    updateCycle: Type.Enum([...UPDATE_CYCLES]),
    published: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' }),
    related: Type.Array(Type.String({ pattern: ENTRY_CODE.source }), { maxItems: 50, uniqueItems: true }),
    maintainer: Type.Object({ department: Type.String({ pattern: '^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$' }), post: Short }, { additionalProperties: false }),
    /** the exchange resource that carries this entry's data, if any (e.g. population.person) */
    exchangeResource: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9-]*(\\.[a-z0-9][a-z0-9-]*)+$', maxLength: 120 })),
  },
  { additionalProperties: false },
);
export type EntryInput = Static<typeof EntryInputSchema>;
export type Item = Static<typeof ItemSchema>;

const CategorySchema = Type.Object({ code: Type.String({ pattern: CATEGORY_CODE.source }), name: Short, nameEn: Short }, { additionalProperties: false });
export type Category = Static<typeof CategorySchema>;

const validators = {
  classification: Compile(Type.Object({ categories: Type.Array(CategorySchema, { minItems: 1 }) }, { additionalProperties: false })),
  entries: Compile(Type.Object({ entries: Type.Array(EntryInputSchema) }, { additionalProperties: false })),
  entry: Compile(EntryInputSchema),
};

export interface CatalogProfile {
  categories: Category[];
  entries: EntryInput[];
}

/** Problems with one entry against the classification and the departments; empty when it is good. */
export function entryProblems(e: EntryInput, categories: ReadonlyMap<string, Category>, departments: ReadonlySet<string>): string[] {
  const p: string[] = [];
  const m = ENTRY_CODE.exec(e.code);
  if (!m) p.push('code: expected a classification code, "/", and a 6-digit sequence');
  else if (m[1] !== e.classification) p.push(`code: must start with its classification ${e.classification}`);
  if (e.classification.length < 6) p.push('classification: must be a 目 (6 digits) or 细目 (8 digits)');
  else if (!categories.has(e.classification)) p.push(`classification: no category ${e.classification}`);
  if (!departments.has(e.provider)) p.push(`provider: no department ${e.provider}`);
  if (!departments.has(e.maintainer.department)) p.push(`maintainer.department: no department ${e.maintainer.department}`);
  const fields = new Set<string>();
  e.items.forEach((it, i) => {
    if (fields.has(it.field)) p.push(`items[${i}].field: ${it.field} appears twice`);
    fields.add(it.field);
  });
  if (e.share.type === 'conditional' && !e.share.condition) p.push('share.condition: a 有条件共享 entry states its condition');
  if (e.share.type === 'none' && !e.share.legalBasis) p.push('share.legalBasis: a 不予共享 entry cites the law or regulation that forbids sharing');
  if (e.share.type !== 'none' && e.share.methods.length === 0) p.push('share.methods: a shared entry names at least one method');
  // 基础信息资源 are the common need of every department: shared with all, without conditions
  // (a department's own records that feed a base registry, e.g. 婚姻登记, are department entries)
  if (KIND_OF_CLASS[e.classification[0]!] === 'base' && e.share.type !== 'unconditional') p.push('share.type: base information (基础信息资源) is shared without conditions (unconditional)');
  if (e.related.includes(e.code)) p.push('related: an entry is not related to itself');
  if (Number.isNaN(Date.parse(`${e.published}T00:00:00Z`))) p.push(`published: ${e.published} is not a date`);
  return p;
}

/** Checks one entry given over the API (shape, then the same rules as the profile). */
export function checkEntryInput(input: unknown, categories: ReadonlyMap<string, Category>, departments: ReadonlySet<string>): { ok: true; entry: EntryInput } | { ok: false; problems: string[] } {
  if (!validators.entry.Check(input)) {
    const errs = validators.entry.Errors(input).filter((e) => e.keyword !== 'boolean').slice(0, 10);
    return { ok: false, problems: errs.map((e) => `${e.instancePath || '/'}: ${e.message}`) };
  }
  const problems = entryProblems(input, categories, departments);
  return problems.length ? { ok: false, problems } : { ok: true, entry: input };
}

export function kindOf(classification: string): CatalogKind {
  return KIND_OF_CLASS[classification[0]!]!;
}

/** Reads and checks <dir>/catalog/classification.json and entries.json; an absent folder is an empty catalog. */
export function loadCatalogProfile(dir: string, departments?: readonly Department[]): CatalogProfile {
  const cdir = path.join(dir, 'catalog');
  if (!fs.existsSync(cdir)) return { categories: [], entries: [] };
  const { categories } = readProfileFile(cdir, 'classification.json', validators.classification);
  const fail1 = profileFail(cdir, 'classification.json');
  const byCode = new Map<string, Category>();
  categories.forEach((c, i) => {
    if (byCode.has(c.code)) fail1(`categories[${i}].code`, 'appears twice', c.code);
    const parent = c.code.length === 1 ? null : c.code.slice(0, c.code.length === 3 ? 1 : c.code.length === 6 ? 3 : 6);
    if (parent && !byCode.has(parent)) fail1(`categories[${i}].code`, `comes before its parent ${parent} (or the parent is missing)`, c.code);
    byCode.set(c.code, c);
  });
  const { entries } = readProfileFile(cdir, 'entries.json', validators.entries);
  const fail2 = profileFail(cdir, 'entries.json');
  const depts = new Set((departments ?? readDepartments(dir)).map((d) => d.code));
  const codes = new Set<string>();
  const resources = new Map<string, string>();
  entries.forEach((e, i) => {
    if (codes.has(e.code)) fail2(`entries[${i}].code`, 'appears twice', e.code);
    codes.add(e.code);
    const problems = entryProblems(e, byCode, depts);
    if (problems.length) fail2(`entries[${i}] (${e.code})`, problems[0]!);
    if (e.exchangeResource) {
      const other = resources.get(e.exchangeResource);
      if (other) fail2(`entries[${i}].exchangeResource`, `is also the resource of ${other}`, e.exchangeResource);
      resources.set(e.exchangeResource, e.code);
    }
  });
  entries.forEach((e, i) => {
    e.related.forEach((r, j) => {
      if (!codes.has(r)) fail2(`entries[${i}].related[${j}]`, 'names no entry of the catalog', r);
    });
  });
  return { categories, entries };
}

function readDepartments(dir: string): Department[] {
  return (JSON.parse(fs.readFileSync(path.join(dir, 'departments.json'), 'utf8')) as { departments: Department[] }).departments;
}
