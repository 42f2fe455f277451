// A base registry as data (profiles/<city>/registries/<name>.json): its canonical fields, the key
// that identifies a subject (ID number, credit code), the source departments with the mapping of
// their records to the canonical fields, and the survivorship rules (which sources are
// authoritative for which field; recency breaks ties). One engine (engine.ts) fuses every registry.
import fs from 'node:fs';
import path from 'node:path';
import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { profileFail, readProfileFile, type Department } from '../../../config/profile.ts';
import { isKnownField } from '../linkage/index.ts';

const Name = Type.String({ pattern: '^[a-z][A-Za-z0-9]{0,63}$' });
const Id = Type.String({ pattern: '^[a-z][a-z0-9-]{0,63}$' });
const Text = Type.Object({ zh: Type.String({ minLength: 1, maxLength: 200 }), en: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });

export const FIELD_TYPES = ['text', 'date', 'code', 'enum', 'boolean', 'number'] as const;

const FieldSchema = Type.Object(
  {
    name: Text,
    type: Type.Enum([...FIELD_TYPES]),
    /** enum: the allowed values */
    values: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 100 })),
    /** personal data: masked unless an agreement grants it unmasked */
    personal: Type.Optional(Type.Boolean()),
    /** two sources disagreeing on this field go to the steward queue */
    conflicts: Type.Optional(Type.Boolean()),
    /** how a masked value is shown: id (keep the first 4 and last 4), phone (first 3 and last 4), name (first character), hide */
    mask: Type.Optional(Type.Enum(['id', 'phone', 'name', 'hide'])),
  },
  { additionalProperties: false },
);

const SourceSchema = Type.Object(
  {
    id: Id,
    name: Text,
    department: Type.String({ pattern: '^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$' }),
    /** the exchange resource this source publishes on (its records arrive through the exchange) */
    resource: Type.String({ pattern: '^[a-z][a-z0-9-]*(\\.[a-z0-9][a-z0-9-]*)+$' }),
    /** the property of a record that is its id at the source */
    recordId: Type.String({ minLength: 1, maxLength: 64 }),
    /** the property holding the subject's key (ID number); absent: records link by other fields */
    key: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    /** the property with the time the source observed the fact (else: when it arrived) */
    observedAt: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    /** canonical field -> the source record's property (or {"const": value}, or {"from": prop, "map": {...}}) */
    mapping: Type.Record(Type.String(), Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Object({ const: Type.Union([Type.String(), Type.Number(), Type.Boolean()]) }, { additionalProperties: false }), Type.Object({ from: Type.String({ minLength: 1, maxLength: 64 }), map: Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()])) }, { additionalProperties: false })])),
    /** records are used only when this property is true (e.g. recorded consent for a mobile number) */
    requires: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);

const EventRuleSchema = Type.Object(
  {
    /** the life event, e.g. death, birth, marriage, divorce, move */
    type: Id,
    /** the field whose change makes the event */
    field: Name,
    /** the event happens when the field becomes one of these (absent: any change of a known value) */
    becomes: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { minItems: 1 })),
    /** the event also happens when the subject first appears with the field set (birth) */
    onCreate: Type.Optional(Type.Boolean()),
    /** only when the new value comes from one of these sources */
    sources: Type.Optional(Type.Array(Id, { minItems: 1 })),
  },
  { additionalProperties: false },
);

export const RegistrySchema = Type.Object(
  {
    registry: Id,
    name: Text,
    /** the canonical field that identifies a subject */
    key: Name,
    /** checks a key: gb11643 (citizen ID number), gb32100 (unified social credit code) */
    keyCheck: Type.Enum(['gb11643', 'gb32100', 'none']),
    fields: Type.Record(Name, FieldSchema),
    sources: Type.Array(SourceSchema, { minItems: 1, maxItems: 100 }),
    /** field -> source ids, most authoritative first; a group [a, b] ranks equally (recency decides); "*" is every other source */
    survivorship: Type.Record(Name, Type.Array(Type.Union([Id, Type.Literal('*'), Type.Array(Id, { minItems: 2 })]), { minItems: 1 })),
    events: Type.Optional(Type.Array(EventRuleSchema, { maxItems: 50 })),
    /** registry field -> the linkage engine's canonical field (full_name, birth_date, sex, address, phone, …), for records without a key */
    linkage: Type.Optional(Type.Record(Name, Type.String({ pattern: '^[a-z_]+$|^extra\\.[A-Za-z0-9_-]{1,64}$' }))),
    /** the catalog entry that governs reads of the registry: its items are the fields a department may read under its grant */
    catalogEntry: Type.Optional(Type.String({ pattern: '^[1-3][0-9]{5}([0-9]{2})?/[0-9]{6}$' })),
    /** the exchange resource the registry publishes life events on */
    eventResource: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9-]*(\\.[a-z0-9][a-z0-9-]*)+$' })),
  },
  { additionalProperties: false },
);
export type RegistryDefinition = Static<typeof RegistrySchema>;
export type SourceDefinition = Static<typeof SourceSchema>;
export type FieldDefinition = Static<typeof FieldSchema>;

const validator = Compile(RegistrySchema);

export interface CompiledRegistry {
  def: RegistryDefinition;
  fields: readonly string[];
  sources: ReadonlyMap<string, SourceDefinition>;
  /** field -> source -> rank (0 is the most authoritative); a source not listed and no "*": the field is never taken from it */
  rank: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

/** Cross-checks a definition (fields named in mappings, rules and events exist; sources are unique and real departments). */
export function compileRegistry(def: RegistryDefinition, departments: ReadonlySet<string> | null, where = 'registry'): CompiledRegistry {
  const problems: string[] = [];
  const fields = Object.keys(def.fields);
  if (!def.fields[def.key]) problems.push(`key: ${def.key} is not a field`);
  for (const [f, d] of Object.entries(def.fields)) if (d.type === 'enum' && !d.values?.length) problems.push(`fields.${f}: an enum lists its values`);
  const sources = new Map<string, SourceDefinition>();
  def.sources.forEach((s, i) => {
    if (sources.has(s.id)) problems.push(`sources[${i}].id: ${s.id} appears twice`);
    sources.set(s.id, s);
    if (departments && !departments.has(s.department)) problems.push(`sources[${i}].department: no department ${s.department}`);
    for (const f of Object.keys(s.mapping)) if (!def.fields[f]) problems.push(`sources[${i}].mapping: ${f} is not a field of the registry`);
  });
  const rank = new Map<string, Map<string, number>>();
  for (const f of fields) {
    const order = def.survivorship[f] ?? def.survivorship['*'] ?? ['*'];
    const m = new Map<string, number>();
    order.forEach((entry, r) => {
      for (const id of Array.isArray(entry) ? entry : [entry]) {
        if (id === '*') continue;
        if (!sources.has(id)) problems.push(`survivorship.${f}: no source ${id}`);
        m.set(id, r);
      }
    });
    const star = order.findIndex((e) => e === '*');
    if (star >= 0) for (const id of sources.keys()) if (!m.has(id)) m.set(id, star);
    rank.set(f, m);
  }
  for (const f of Object.keys(def.survivorship)) if (f !== '*' && !def.fields[f]) problems.push(`survivorship: ${f} is not a field`);
  for (const [f, to] of Object.entries(def.linkage ?? {})) {
    if (!def.fields[f]) problems.push(`linkage: ${f} is not a field`);
    if (!isKnownField(to)) problems.push(`linkage.${f}: ${to} is not a field of the linkage engine`);
  }
  for (const [i, e] of (def.events ?? []).entries()) {
    if (!def.fields[e.field]) problems.push(`events[${i}].field: ${e.field} is not a field`);
    for (const s of e.sources ?? []) if (!sources.has(s)) problems.push(`events[${i}].sources: no source ${s}`);
  }
  if (problems.length) throw new Error(`${where}: ${problems.join('; ')}`);
  return { def, fields, sources, rank };
}

/** Reads and checks <dir>/registries/<name>.json. */
export function loadRegistry(dir: string, name: string, departments?: readonly Department[]): CompiledRegistry {
  const rdir = path.join(dir, 'registries');
  const file = `${name}.json`;
  if (!fs.existsSync(path.join(rdir, file))) throw new Error(`${path.join(rdir, file)}: no such registry definition`);
  const def = readProfileFile(rdir, file, validator);
  try {
    return compileRegistry(def, departments ? new Set(departments.map((d) => d.code)) : null, file);
  } catch (err) {
    return profileFail(rdir, file)('definition', (err as Error).message.replace(/^[^:]+: /, ''));
  }
}
