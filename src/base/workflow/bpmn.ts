// BPMN 2.0 XML import and export for the subset the platform runs (see model.ts), so analysts can draw
// processes in standard tools (bpmn.io, Camunda Modeler) and the platform can hand its definitions
// back to them. Reading and writing go through bpmn-moddle, bpmn.io's BPMN 2.0 meta-model; what BPMN
// leaves to the engine (bilingual names, owner, assignees, outcomes, working-day deadlines,
// escalation, countersign assignees, service handlers and their input) is carried in the gusu
// extension namespace below. Export adds BPMN DI laid out left to right, so the file opens in a
// modeller. Import refuses what the platform cannot run, naming each element, and refuses hostile
// input (DOCTYPE, over 1 MB, deep nesting, too many elements) before the XML parser sees it.
// docs/decisions/0008-workflow-engine.md, "BPMN import and export", has the attribute table.
import type { Text } from '../../http/i18n.ts';
import type { Assignee, Countersign, Duration, Flow, ProcessModel, ProcessNode, UserTaskNode } from './model.ts';

export const BPMN_MODEL_URI = 'http://www.omg.org/spec/BPMN/20100524/MODEL';
/** The namespace of the platform's extension attributes and elements (prefix `gusu`). */
export const GUSU_BPMN_URI = 'http://gusu.gov.cn/schema/bpmn/1.0';
export const MAX_BPMN_BYTES = 1024 * 1024;
const MAX_PROBLEMS = 200;
const LIMITS = { depth: 64, elements: 20_000, attributesPerElement: 100, attributes: 60_000, inputValue: 16_384, inputDepth: 32 };

/** A BPMN file that cannot be imported (or a model that cannot be exported), with every problem found. */
export class BpmnError extends Error {
  constructor(readonly problems: string[]) {
    super(`BPMN: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''}`);
  }
}

const attr = (name: string, type = 'String') => ({ name, isAttr: true, type });

/** The moddle package descriptor of the gusu extension (usable with bpmn-js: `moddleExtensions: { gusu }`). */
export const GUSU_MODDLE_PACKAGE = {
  name: 'Gusu',
  uri: GUSU_BPMN_URI,
  prefix: 'gusu',
  xml: { tagAlias: 'lowerCase' },
  associations: [],
  types: [
    { name: 'Names', isAbstract: true, extends: ['bpmn:Process', 'bpmn:FlowElement'], properties: [attr('nameEn')] },
    { name: 'ProcessProperties', isAbstract: true, extends: ['bpmn:Process'], properties: [attr('owner'), attr('descriptionEn')] },
    {
      name: 'UserTaskProperties',
      isAbstract: true,
      extends: ['bpmn:UserTask'],
      properties: [
        attr('department'),
        attr('role'),
        attr('person'),
        attr('outcomes'),
        attr('outcomeVariable'),
        attr('deadline'),
        attr('deadlineWorkingDays'),
        attr('remindBefore'),
        attr('remindBeforeWorkingDays'),
        attr('escalateTo'),
      ],
    },
    { name: 'CountersignProperties', isAbstract: true, extends: ['bpmn:MultiInstanceLoopCharacteristics'], properties: [attr('vetoOutcome')] },
    { name: 'ServiceTaskProperties', isAbstract: true, extends: ['bpmn:ServiceTask'], properties: [attr('handler')] },
    { name: 'TimerProperties', isAbstract: true, extends: ['bpmn:TimerEventDefinition'], properties: [attr('workingDays')] },
    { name: 'Assignee', superClass: ['Element'], properties: [attr('department'), attr('role'), attr('person')] },
    { name: 'Input', superClass: ['Element'], properties: [attr('name'), { name: 'value', isBody: true, type: 'String' }] },
  ],
};

// ---- bpmn-moddle, typed as far as we use it ----

interface El {
  readonly $type: string;
  $attrs?: Record<string, unknown>;
  get(name: string): unknown;
  set(name: string, value: unknown): void;
}
interface ParseWarning {
  message: string;
  element?: El;
  property?: string;
  value?: string;
}
interface Moddle {
  create(type: string, attrs?: Record<string, unknown>): El;
  fromXML(xml: string, options: { lax: boolean }): Promise<{ rootElement: El; warnings: ParseWarning[] }>;
  toXML(el: El, options: { format: boolean }): Promise<{ xml: string }>;
}

// bpmn-moddle 10 ships element types (bpmn-moddle/types) but none for its factory; a non-literal
// specifier keeps the import untyped instead of an error, and the interface above types it.
const BPMN_MODDLE_MODULE: string = 'bpmn-moddle';
let moddlePromise: Promise<Moddle> | undefined;
function moddle(): Promise<Moddle> {
  moddlePromise ??= import(BPMN_MODDLE_MODULE).then((m: { BpmnModdle: new (packages: object) => Moddle }) => new m.BpmnModdle({ gusu: GUSU_MODDLE_PACKAGE }));
  return moddlePromise;
}

function isEl(v: unknown): v is El {
  return !!v && typeof v === 'object' && typeof (v as El).$type === 'string' && typeof (v as El).get === 'function';
}
function prop(el: El, name: string): unknown {
  try {
    return el.get(name);
  } catch {
    return undefined;
  }
}
/** a string property; empty counts as absent */
function str(el: El, name: string): string | undefined {
  const v = prop(el, name);
  return typeof v === 'string' && v !== '' ? v : undefined;
}
function many(el: El, name: string): El[] {
  const v = prop(el, name);
  return Array.isArray(v) ? v.filter(isEl) : [];
}
function one(el: El, name: string): El | undefined {
  const v = prop(el, name);
  return isEl(v) ? v : undefined;
}
/** bpmn:UserTask → bpmn:userTask, as the element is written in the file */
function tag(el: El): string {
  const [prefix, local = ''] = el.$type.includes(':') ? el.$type.split(':') : ['', el.$type];
  return `${prefix ? `${prefix}:` : ''}${local.charAt(0).toLowerCase()}${local.slice(1)}`;
}
function label(el: El): string {
  const id = str(el, 'id');
  return id ? `${id} (${tag(el)})` : `a ${tag(el)} without an id`;
}

// ---- durations ----

function num(n: number): string {
  const s = String(n);
  return /e/i.test(s) ? n.toFixed(6).replace(/\.?0+$/, '') : s;
}

/** the clock part of a duration as ISO 8601 (PT2H30M); undefined when it has none */
function isoClock(d: Duration): string | undefined {
  if (d.hours === undefined && d.minutes === undefined) return undefined;
  return `T${d.hours !== undefined ? `${num(d.hours)}H` : ''}${d.minutes !== undefined ? `${num(d.minutes)}M` : ''}`;
}

interface IsoParts {
  weeks?: number;
  days?: number;
  hours?: number;
  minutes?: number;
}
const N = '(\\d{1,7}(?:[.,]\\d{1,6})?)';
const ISO_DURATION = new RegExp(`^P(?:${N}Y)?(?:${N}M)?(?:${N}W)?(?:${N}D)?(?:T(?:${N}H)?(?:${N}M)?(?:${N}S)?)?$`);

function parseIso(source: string, where: string, problems: string[]): IsoParts | undefined {
  const s = source.trim();
  const m = ISO_DURATION.exec(s);
  if (!m || s === 'P' || s.endsWith('T')) {
    problems.push(`${where}: ${JSON.stringify(s.slice(0, 40))} is not an ISO 8601 duration such as PT4H, PT30M or P2D`);
    return undefined;
  }
  const v = (i: number) => (m[i] === undefined ? undefined : Number(m[i]!.replace(',', '.')));
  if (m[1] !== undefined || m[2] !== undefined) {
    problems.push(`${where}: years and months have no fixed length; use days, hours or minutes (or working days)`);
    return undefined;
  }
  const seconds = v(7);
  if (seconds !== undefined && seconds % 60 !== 0) {
    problems.push(`${where}: durations are in hours and minutes; ${seconds} seconds is not a whole number of minutes`);
    return undefined;
  }
  const out: IsoParts = {};
  if (v(3) !== undefined) out.weeks = v(3);
  if (v(4) !== undefined) out.days = v(4);
  if (v(5) !== undefined) out.hours = v(5);
  if (v(6) !== undefined || seconds !== undefined) out.minutes = (v(6) ?? 0) + (seconds ?? 0) / 60;
  return out;
}

/** clock time from ISO parts: calendar days and weeks become hours */
function clockOf(p: IsoParts, withDatePart: boolean): Duration {
  const d: Duration = {};
  const dateHours = withDatePart && (p.weeks !== undefined || p.days !== undefined) ? (p.weeks ?? 0) * 168 + (p.days ?? 0) * 24 : undefined;
  if (p.hours !== undefined || dateHours !== undefined) d.hours = (p.hours ?? 0) + (dateHours ?? 0);
  if (p.minutes !== undefined) d.minutes = p.minutes;
  return d;
}

function parseWorkingDays(v: string | undefined, where: string, problems: string[]): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\s*\d{1,5}\s*$/.test(v)) {
    problems.push(`${where}: expected a whole number of working days, not ${JSON.stringify(v.slice(0, 40))}`);
    return undefined;
  }
  return Number(v);
}

/** gusu:<name>WorkingDays plus the ISO clock duration gusu:<name> */
function readTaskDuration(el: El, name: 'deadline' | 'remindBefore', where: string, problems: string[]): Duration | undefined {
  const wd = parseWorkingDays(str(el, `gusu:${name}WorkingDays`), `${where} gusu:${name}WorkingDays`, problems);
  const iso = str(el, `gusu:${name}`);
  const parts = iso !== undefined ? parseIso(iso, `${where} gusu:${name}`, problems) : undefined;
  if (wd === undefined && !parts) return undefined;
  return { ...(wd !== undefined ? { workingDays: wd } : {}), ...(parts ? clockOf(parts, true) : {}) };
}

// ---- export ----

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}
export interface Point {
  x: number;
  y: number;
}

const SIZE: Record<ProcessNode['type'], { w: number; h: number }> = {
  start: { w: 36, h: 36 },
  end: { w: 36, h: 36 },
  timerBoundary: { w: 36, h: 36 },
  userTask: { w: 100, h: 80 },
  serviceTask: { w: 100, h: 80 },
  exclusiveGateway: { w: 50, h: 50 },
  parallelGateway: { w: 50, h: 50 },
};

/**
 * A layered left-to-right layout: columns by the longest path from the start (back edges found by a
 * depth-first search are left out), rows from the predecessors (a split fans its branches out around
 * its own row), boundary timers on the lower edge of their task, back edges routed below everything.
 */
export function layoutModel(model: ProcessModel): { shapes: Map<string, Box>; edges: Map<string, Point[]> } {
  const byId = new Map(model.nodes.map((n) => [n.id, n]));
  const hostOf = (id: string): string => {
    const n = byId.get(id);
    return n?.type === 'timerBoundary' && byId.get(n.attachedTo) && byId.get(n.attachedTo)!.type !== 'timerBoundary' ? n.attachedTo : id;
  };
  const main = model.nodes.filter((n) => hostOf(n.id) === n.id).map((n) => n.id);
  const succ = new Map<string, { flow: number; to: string }[]>(main.map((id) => [id, []]));
  model.flows.forEach((f, i) => {
    if (!byId.has(f.from) || !byId.has(f.to)) return;
    succ.get(hostOf(f.from))!.push({ flow: i, to: hostOf(f.to) });
  });

  // back edges: an iterative depth-first search from the start events, then from anything left
  const back = new Set<number>();
  const state = new Map<string, 1 | 2>();
  const roots = [...main.filter((id) => byId.get(id)!.type === 'start'), ...main];
  for (const root of roots) {
    if (state.has(root)) continue;
    const stack: { id: string; i: number }[] = [{ id: root, i: 0 }];
    state.set(root, 1);
    while (stack.length) {
      const top = stack.at(-1)!;
      const edges = succ.get(top.id)!;
      if (top.i >= edges.length) {
        state.set(top.id, 2);
        stack.pop();
        continue;
      }
      const e = edges[top.i++]!;
      const s = state.get(e.to);
      if (s === 1) back.add(e.flow);
      else if (s === undefined) {
        state.set(e.to, 1);
        stack.push({ id: e.to, i: 0 });
      }
    }
  }

  // columns: longest path over the forward edges (Kahn's order)
  const indeg = new Map(main.map((id) => [id, 0]));
  for (const id of main) for (const e of succ.get(id)!) if (!back.has(e.flow)) indeg.set(e.to, indeg.get(e.to)! + 1);
  const order: string[] = [];
  const queue = main.filter((id) => indeg.get(id) === 0);
  const layer = new Map(main.map((id) => [id, 0]));
  while (queue.length) {
    const id = queue.shift()!;
    order.push(id);
    for (const e of succ.get(id)!) {
      if (back.has(e.flow)) continue;
      layer.set(e.to, Math.max(layer.get(e.to)!, layer.get(id)! + 1));
      indeg.set(e.to, indeg.get(e.to)! - 1);
      if (indeg.get(e.to) === 0) queue.push(e.to);
    }
  }
  for (const id of main) if (!order.includes(id)) order.push(id); // unreachable by construction; kept safe

  // rows: each node takes the mean of what its predecessors want for it. A node with several
  // successors spreads them around its own row; a boundary timer's successor goes a row below.
  const fanOut = new Map<string, string[]>();
  const preds = new Map<string, { from: string; viaBoundary: boolean }[]>();
  model.flows.forEach((f, i) => {
    if (!byId.has(f.from) || !byId.has(f.to) || back.has(i)) return;
    const from = hostOf(f.from);
    const to = hostOf(f.to);
    const viaBoundary = from !== f.from;
    if (!viaBoundary) {
      const targets = fanOut.get(from) ?? [];
      if (!targets.includes(to)) targets.push(to);
      fanOut.set(from, targets);
    }
    preds.set(to, [...(preds.get(to) ?? []), { from, viaBoundary }]);
  });
  const row = new Map<string, number>();
  const layers = new Map<number, string[]>();
  for (const id of order) layers.set(layer.get(id)!, [...(layers.get(layer.get(id)!) ?? []), id]);
  for (const l of [...layers.keys()].sort((a, b) => a - b)) {
    const desired = layers.get(l)!.map((id) => {
      const wants: number[] = [];
      for (const { from, viaBoundary } of preds.get(id) ?? []) {
        const r = row.get(from);
        if (r === undefined) continue;
        const targets = fanOut.get(from) ?? [id];
        wants.push(viaBoundary ? r + 1 : r + targets.indexOf(id) - (targets.length - 1) / 2);
      }
      return { id, want: wants.length ? wants.reduce((a, b) => a + b, 0) / wants.length : 0 };
    });
    desired.sort((a, b) => a.want - b.want);
    let prev = -Infinity;
    for (const d of desired) {
      const r = Math.max(d.want, prev + 1);
      row.set(d.id, r);
      prev = r;
    }
  }
  const minRow = Math.min(...main.map((id) => row.get(id) ?? 0));

  const columnX = (l: number) => 120 + l * 160;
  const timersOn = new Map<string, number>();
  for (const n of model.nodes) if (hostOf(n.id) !== n.id) timersOn.set(hostOf(n.id), (timersOn.get(hostOf(n.id)) ?? 0) + 1);
  const shapes = new Map<string, Box>();
  for (const id of main) {
    const n = byId.get(id)!;
    const cx = columnX(layer.get(id)!);
    const cy = 120 + ((row.get(id) ?? 0) - minRow) * 130;
    // a task is widened to hold its boundary timers side by side (up to three)
    const w = Math.max(SIZE[n.type].w, Math.min(140, 40 * (timersOn.get(id) ?? 0) + 20));
    const h = SIZE[n.type].h;
    shapes.set(id, { x: Math.round(cx - w / 2), y: Math.round(cy - h / 2), w, h });
  }
  const onHost = new Map<string, number>();
  for (const n of model.nodes) {
    if (hostOf(n.id) === n.id) continue;
    const host = shapes.get(hostOf(n.id))!;
    const i = onHost.get(hostOf(n.id)) ?? 0;
    onHost.set(hostOf(n.id), i + 1);
    shapes.set(n.id, { x: host.x + host.w - 48 - (i % 3) * 40, y: host.y + host.h - 18, w: 36, h: 36 });
  }

  const bottom = Math.max(...[...shapes.values()].map((b) => b.y + b.h));
  const edges = new Map<string, Point[]>();
  let lane = 0;
  model.flows.forEach((f, i) => {
    const a = shapes.get(f.from);
    const b = shapes.get(f.to);
    if (!a || !b) return;
    const acx = a.x + a.w / 2;
    const acy = a.y + a.h / 2;
    const bcx = b.x + b.w / 2;
    const bcy = b.y + b.h / 2;
    let pts: Point[];
    if (byId.get(f.from)!.type === 'timerBoundary' && b.x > acx) {
      pts = [{ x: acx, y: a.y + a.h }, { x: acx, y: bcy }, { x: b.x, y: bcy }];
    } else if (back.has(i) || b.x < a.x + a.w) {
      const y = bottom + 30 + 20 * lane++;
      pts = [{ x: acx, y: a.y + a.h }, { x: acx, y }, { x: bcx, y }, { x: bcx, y: b.y + b.h }];
    } else if (Math.abs(acy - bcy) < 1) {
      pts = [{ x: a.x + a.w, y: acy }, { x: b.x, y: bcy }];
    } else {
      // turn in the free channel right after the source's column
      const channel = columnX(layer.get(hostOf(f.from)) ?? 0) + 80;
      pts = [{ x: a.x + a.w, y: acy }, { x: channel, y: acy }, { x: channel, y: bcy }, { x: b.x, y: bcy }];
    }
    edges.set(f.id, pts.map((p) => ({ x: Math.round(p.x), y: Math.round(p.y) })));
  });
  return { shapes, edges };
}

/** BPMN 2.0 XML of a process definition, with the platform's data in the gusu namespace and a diagram. */
export async function exportBpmn(model: ProcessModel): Promise<string> {
  const m = await moddle();
  const problems: string[] = [];
  const ids = new Set<string>([model.key]);
  for (const x of [...model.nodes, ...model.flows]) {
    if (ids.has(x.id)) problems.push(`id ${x.id} is used twice (or is the process key)`);
    ids.add(x.id);
  }
  const fresh = (base: string) => {
    let id = base;
    for (let i = 2; ids.has(id); i++) id = `${base}_${i}`;
    ids.add(id);
    return id;
  };
  const expr = (body: string) => m.create('bpmn:FormalExpression', { body });
  const named = (el: El, name: Text | undefined) => {
    if (!name) return;
    el.set('name', name.zh);
    el.set('gusu:nameEn', name.en);
  };
  const setIf = (el: El, name: string, v: string | number | undefined) => {
    if (v !== undefined) el.set(name, typeof v === 'number' ? num(v) : v);
  };

  const process = m.create('bpmn:Process', { id: model.key, isExecutable: true });
  named(process, model.name);
  process.set('gusu:owner', model.owner);
  if (model.description) {
    process.set('documentation', [m.create('bpmn:Documentation', { text: model.description.zh })]);
    process.set('gusu:descriptionEn', model.description.en);
  }

  const els = new Map<string, El>();
  for (const n of model.nodes) {
    let el: El;
    switch (n.type) {
      case 'start':
        el = m.create('bpmn:StartEvent', { id: n.id });
        break;
      case 'end':
        el = m.create('bpmn:EndEvent', { id: n.id });
        if (n.terminate) el.set('eventDefinitions', [m.create('bpmn:TerminateEventDefinition', { id: fresh(`${n.id}_terminate`) })]);
        break;
      case 'userTask':
        el = m.create('bpmn:UserTask', { id: n.id });
        setIf(el, 'gusu:department', n.assignee?.department);
        setIf(el, 'gusu:role', n.assignee?.role);
        setIf(el, 'gusu:person', n.assignee?.person);
        if (n.outcomes) el.set('gusu:outcomes', n.outcomes.join(' '));
        setIf(el, 'gusu:outcomeVariable', n.outcomeVariable);
        for (const k of ['deadline', 'remindBefore'] as const) {
          const d = n[k];
          if (!d) continue;
          setIf(el, `gusu:${k}WorkingDays`, d.workingDays);
          const clock = isoClock(d);
          if (clock) el.set(`gusu:${k}`, `P${clock}`);
        }
        setIf(el, 'gusu:escalateTo', n.escalateTo?.role);
        if (n.countersign) el.set('loopCharacteristics', countersignElement(m, n.countersign, expr));
        break;
      case 'serviceTask':
        el = m.create('bpmn:ServiceTask', { id: n.id });
        el.set('gusu:handler', n.handler);
        if (n.input && Object.keys(n.input).length) {
          const values: El[] = [];
          for (const [name, v] of Object.entries(n.input)) {
            let json: string | undefined;
            try {
              json = JSON.stringify(v);
            } catch (err) {
              problems.push(`${n.id}.input.${name}: ${(err as Error).message}`);
            }
            if (json !== undefined) values.push(m.create('gusu:Input', { name, value: json }));
          }
          el.set('extensionElements', m.create('bpmn:ExtensionElements', { values }));
        }
        break;
      case 'exclusiveGateway':
        el = m.create('bpmn:ExclusiveGateway', { id: n.id });
        break;
      case 'parallelGateway':
        el = m.create('bpmn:ParallelGateway', { id: n.id });
        break;
      case 'timerBoundary': {
        el = m.create('bpmn:BoundaryEvent', { id: n.id });
        // moddle leaves out attributes at their default (cancelActivity="true"): set it as written
        if (n.interrupting === false) el.set('cancelActivity', false);
        else if (n.interrupting === true) el.$attrs!.cancelActivity = 'true';
        const a = n.after ?? {};
        const timer = m.create('bpmn:TimerEventDefinition', { id: fresh(`${n.id}_timer`) });
        // working days are not ISO 8601: the timer carries them as gusu:workingDays, and the
        // duration shows them as calendar days for other tools
        setIf(timer, 'gusu:workingDays', a.workingDays);
        const clock = isoClock(a);
        timer.set('timeDuration', expr(`P${a.workingDays !== undefined ? `${num(a.workingDays)}D` : ''}${clock ?? ''}`));
        el.set('eventDefinitions', [timer]);
        break;
      }
      default:
        problems.push(`${(n as ProcessNode).id}: unknown node type ${JSON.stringify((n as { type: unknown }).type)}`);
        continue;
    }
    named(el, n.name);
    els.set(n.id, el);
  }
  for (const n of model.nodes) {
    if (n.type !== 'timerBoundary') continue;
    const host = els.get(n.attachedTo);
    if (!host) problems.push(`${n.id}.attachedTo: no node ${JSON.stringify(n.attachedTo)}`);
    else els.get(n.id)!.set('attachedToRef', host);
  }

  const flows: El[] = [];
  const incoming = new Map<string, El[]>();
  const outgoing = new Map<string, El[]>();
  for (const f of model.flows) {
    const from = els.get(f.from);
    const to = els.get(f.to);
    if (!from) problems.push(`${f.id}.from: no node ${JSON.stringify(f.from)}`);
    if (!to) problems.push(`${f.id}.to: no node ${JSON.stringify(f.to)}`);
    if (!from || !to) continue;
    const el = m.create('bpmn:SequenceFlow', { id: f.id, sourceRef: from, targetRef: to });
    named(el, f.name);
    if (f.condition !== undefined) el.set('conditionExpression', expr(f.condition));
    if (f.isDefault) {
      if (from.$type !== 'bpmn:ExclusiveGateway') problems.push(`${f.id}: only an exclusive gateway has a default flow`);
      else if (from.get('default')) problems.push(`${f.from}: more than one default flow`);
      else from.set('default', el);
    }
    outgoing.set(f.from, [...(outgoing.get(f.from) ?? []), el]);
    incoming.set(f.to, [...(incoming.get(f.to) ?? []), el]);
    flows.push(el);
    els.set(f.id, el);
  }
  if (problems.length) throw new BpmnError(problems);
  for (const n of model.nodes) {
    const el = els.get(n.id)!;
    if (incoming.has(n.id)) el.set('incoming', incoming.get(n.id));
    if (outgoing.has(n.id)) el.set('outgoing', outgoing.get(n.id));
  }
  process.set('flowElements', [...model.nodes.map((n) => els.get(n.id)!), ...flows]);

  const { shapes, edges } = layoutModel(model);
  const planeElements: El[] = [];
  for (const n of model.nodes) {
    const b = shapes.get(n.id)!;
    const shape = m.create('bpmndi:BPMNShape', {
      id: fresh(`${n.id}_di`),
      bpmnElement: els.get(n.id),
      bounds: m.create('dc:Bounds', { x: b.x, y: b.y, width: b.w, height: b.h }),
    });
    if (n.type === 'exclusiveGateway') shape.set('isMarkerVisible', true);
    planeElements.push(shape);
  }
  for (const f of model.flows) {
    planeElements.push(
      m.create('bpmndi:BPMNEdge', {
        id: fresh(`${f.id}_di`),
        bpmnElement: els.get(f.id),
        waypoint: edges.get(f.id)!.map(({ x, y }) => m.create('dc:Point', { x, y })),
      }),
    );
  }
  const diagram = m.create('bpmndi:BPMNDiagram', {
    id: fresh('BPMNDiagram_1'),
    plane: m.create('bpmndi:BPMNPlane', { id: fresh('BPMNPlane_1'), bpmnElement: process, planeElement: planeElements }),
  });
  const definitions = m.create('bpmn:Definitions', {
    id: fresh('Definitions_1'),
    targetNamespace: 'http://gusu.gov.cn/schema/bpmn/process',
    exporter: 'Gusu',
    exporterVersion: '1.0',
    rootElements: [process],
    diagrams: [diagram],
  });
  const { xml } = await m.toXML(definitions, { format: true });
  return xml;
}

function countersignElement(m: Moddle, c: Countersign, expr: (body: string) => El): El {
  const completion = c.completion === 'all' ? 'nrOfInstances' : c.completion === 'any' ? '1' : String(c.completion.atLeast);
  const el = m.create('bpmn:MultiInstanceLoopCharacteristics', {
    loopCardinality: expr(String(c.assignees.length)),
    completionCondition: expr(`\${nrOfCompletedInstances >= ${completion}}`),
  });
  el.$attrs!.isSequential = 'false'; // the default, written out: a countersign runs in parallel
  if (c.vetoOutcome !== undefined) el.set('gusu:vetoOutcome', c.vetoOutcome);
  const values = c.assignees.map((a) => {
    const x = m.create('gusu:Assignee');
    if (a.department !== undefined) x.set('department', a.department);
    if (a.role !== undefined) x.set('role', a.role);
    if (a.person !== undefined) x.set('person', a.person);
    return x;
  });
  el.set('extensionElements', m.create('bpmn:ExtensionElements', { values }));
  return el;
}

// ---- import ----

/**
 * Refuses what should not reach the XML parser, in one linear pass: more than 1 MB, a DOCTYPE or
 * ENTITY declaration (entity expansion, external entities), nesting deeper than 64, more than
 * 20,000 elements or too many attributes (the parser slows down badly on those), no root element,
 * a root that is not bpmn:definitions.
 */
function prescan(xml: string): void {
  const bytes = xml.length > MAX_BPMN_BYTES ? xml.length : Buffer.byteLength(xml, 'utf8');
  if (bytes > MAX_BPMN_BYTES) throw new BpmnError([`the file is ${(bytes / 1024 / 1024).toFixed(1)} MB; at most 1 MB is accepted`]);
  if (/<!\s*(DOCTYPE|ENTITY)/i.test(xml)) {
    throw new BpmnError(['the file has a DOCTYPE or ENTITY declaration: BPMN files need none, and entity declarations are refused (entity expansion, external entities)']);
  }
  const fail = (what: string): never => {
    throw new BpmnError([what]);
  };
  let i = 0;
  let depth = 0;
  let elements = 0;
  let attributes = 0;
  let root: string | undefined;
  const n = xml.length;
  while (i < n) {
    const lt = xml.indexOf('<', i);
    if (lt < 0) break;
    const skip = (open: string, close: string): boolean => {
      if (!xml.startsWith(open, lt)) return false;
      const e = xml.indexOf(close, lt + open.length);
      if (e < 0) fail(`not well-formed XML: ${open} at offset ${lt} is never closed`);
      i = e + close.length;
      return true;
    };
    if (skip('<!--', '-->') || skip('<![CDATA[', ']]>') || skip('<?', '?>')) continue;
    const next = xml.charCodeAt(lt + 1);
    if (next === 33 /* ! */) fail(`not well-formed XML: an unexpected <! declaration at offset ${lt}`);
    if (next === 47 /* / */) {
      depth--;
      const e = xml.indexOf('>', lt);
      if (e < 0) fail(`not well-formed XML: an end tag at offset ${lt} is never closed`);
      i = e + 1;
      continue;
    }
    let j = lt + 1;
    let quote = 0;
    let attrs = 0;
    for (; j < n; j++) {
      const c = xml.charCodeAt(j);
      if (quote) {
        if (c === quote) quote = 0;
      } else if (c === 34 || c === 39) quote = c;
      else if (c === 61 /* = */) attrs++;
      else if (c === 62 /* > */) break;
    }
    if (j >= n) fail(`not well-formed XML: a tag at offset ${lt} is never closed`);
    root ??= /^[^\s/>]*/.exec(xml.slice(lt + 1, Math.min(j, lt + 200)))![0];
    if (++elements > LIMITS.elements) fail(`more than ${LIMITS.elements} XML elements`);
    if (attrs > LIMITS.attributesPerElement) fail(`an element at offset ${lt} has more than ${LIMITS.attributesPerElement} attributes`);
    attributes += attrs;
    if (attributes > LIMITS.attributes) fail(`more than ${LIMITS.attributes} XML attributes`);
    if (xml.charCodeAt(j - 1) !== 47 /* / */ && ++depth > LIMITS.depth) fail(`XML elements nested deeper than ${LIMITS.depth}`);
    i = j + 1;
  }
  if (root === undefined) fail('not XML: no element found');
  const local = root!.includes(':') ? root!.slice(root!.indexOf(':') + 1) : root!;
  if (local !== 'definitions') fail(`not a BPMN 2.0 file: the root element is <${root!.slice(0, 60)}>, expected <bpmn:definitions>`);
  if (!xml.includes(BPMN_MODEL_URI)) fail(`not a BPMN 2.0 file: the namespace ${BPMN_MODEL_URI} is not declared`);
}

/** moddle-xml's "unparsable content <x> detected\n\tline: 0\n\tcolumn: 3\n\tnested error: ..." made readable */
function parseErrorMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const m = /^unparsable content (.*?) ?detected\s+line: (\d+)\s+column: (\d+)\s+nested error: ([\s\S]*)$/.exec(msg);
  if (m) return `not valid BPMN 2.0 at line ${Number(m[2]) + 1}, column ${Number(m[3]) + 1}${m[1] ? ` (${m[1].slice(0, 80)})` : ''}: ${m[4]!.trim()}`;
  if (/failed to parse document as/.test(msg)) return 'not a BPMN 2.0 file: the root element must be bpmn:definitions';
  return `not valid BPMN 2.0: ${msg.replace(/\s+/g, ' ').slice(0, 300)}`;
}

const SUPPORTED = 'the platform runs start and end events, user and service tasks, exclusive and parallel gateways and timer boundary events';
const HINTS: Record<string, string> = {
  'bpmn:Task': 'make it a user task or a service task',
  'bpmn:ScriptTask': 'scripts do not run on the platform; use a service task with gusu:handler',
  'bpmn:BusinessRuleTask': 'use a service task with gusu:handler',
  'bpmn:SendTask': 'use a service task with gusu:handler',
  'bpmn:ReceiveTask': 'use a user task',
  'bpmn:ManualTask': 'use a user task',
  'bpmn:SubProcess': 'draw its steps in the process itself',
  'bpmn:AdHocSubProcess': 'draw its steps in the process itself',
  'bpmn:Transaction': 'draw its steps in the process itself',
  'bpmn:CallActivity': 'draw the called steps in the process itself',
  'bpmn:InclusiveGateway': 'use an exclusive gateway, or a parallel gateway',
  'bpmn:ComplexGateway': 'use an exclusive gateway, or a parallel gateway',
  'bpmn:EventBasedGateway': 'use an exclusive gateway, or a timer boundary event on a user task',
  'bpmn:IntermediateCatchEvent': 'use a timer boundary event on a user task',
  'bpmn:IntermediateThrowEvent': 'remove it, or use a service task',
  'bpmn:DataObject': 'remove it',
  'bpmn:DataObjectReference': 'remove it',
  'bpmn:DataStoreReference': 'remove it',
};
const IGNORED_ROOTS = new Set(['bpmn:Collaboration', 'bpmn:Message', 'bpmn:Signal', 'bpmn:Error', 'bpmn:Escalation', 'bpmn:ItemDefinition', 'bpmn:Category', 'bpmn:DataStore', 'bpmn:Resource']);

/** Reads BPMN 2.0 XML into a process model; the caller validates it (validateModel) before deploying. */
export async function importBpmn(xml: string): Promise<ProcessModel> {
  if (typeof xml !== 'string') throw new BpmnError(['expected BPMN 2.0 XML as text']);
  if (xml.charCodeAt(0) === 0xfeff) xml = xml.slice(1);
  prescan(xml);
  const m = await moddle();
  let parsed: Awaited<ReturnType<Moddle['fromXML']>>;
  try {
    parsed = await m.fromXML(xml, { lax: false });
  } catch (err) {
    throw new BpmnError([parseErrorMessage(err)]);
  }
  const p: string[] = [];
  const defs = parsed.rootElement;
  if (!isEl(defs) || defs.$type !== 'bpmn:Definitions') throw new BpmnError(['not a BPMN 2.0 file: the root element must be bpmn:definitions']);

  // prefixes bound to the gusu namespace, so a misspelt gusu attribute is an error rather than ignored
  const gusuPrefixes = new Set<string>();
  for (const [k, v] of Object.entries(defs.$attrs ?? {})) if (k.startsWith('xmlns:') && v === GUSU_BPMN_URI) gusuPrefixes.add(k.slice(6));
  const unknownGusu = (el: El) => {
    for (const k of Object.keys(el.$attrs ?? {})) {
      const prefix = k.includes(':') ? k.slice(0, k.indexOf(':')) : '';
      if (gusuPrefixes.has(prefix)) p.push(`${label(el)}: unknown attribute ${k}`);
    }
  };

  const roots = many(defs, 'rootElements');
  const processes = roots.filter((r) => r.$type === 'bpmn:Process');
  for (const r of roots) if (r.$type !== 'bpmn:Process' && !IGNORED_ROOTS.has(r.$type)) p.push(`${label(r)}: not supported; a file holds one process`);
  if (processes.length !== 1) throw new BpmnError([processes.length ? `the file holds ${processes.length} processes (${processes.map(label).join(', ')}); import one process at a time` : 'the file holds no process', ...p]);
  const proc = processes[0]!;
  const participants: El[] = [];
  for (const c of roots.filter((r) => r.$type === 'bpmn:Collaboration')) {
    participants.push(...many(c, 'participants'));
    for (const f of many(c, 'messageFlows')) p.push(`${label(f)}: message flows are not supported`);
  }

  // references that did not resolve, where they matter
  const local = (property: string | undefined) => (property ?? '').replace(/^[^:]*:/, '');
  const missing = new Map<El, Set<string>>();
  for (const w of parsed.warnings) if (w.element) missing.set(w.element, (missing.get(w.element) ?? new Set()).add(local(w.property)));
  const unresolved: Unresolved = (el, property) => missing.get(el)?.has(property) ?? false;
  for (const w of parsed.warnings) {
    if (!/^unresolved reference/.test(w.message) || !w.element) continue;
    const t = w.element.$type;
    if (t === 'bpmn:SequenceFlow' || t === 'bpmn:BoundaryEvent' || (local(w.property) === 'default' && t.startsWith('bpmn:'))) {
      p.push(`${label(w.element)}: ${local(w.property)} ${JSON.stringify(w.value)} names no element of the file`);
    }
  }

  unknownGusu(proc);
  const key = str(proc, 'id') ?? '';
  const zh = str(proc, 'name') ?? (participants.length === 1 ? str(participants[0]!, 'name') : undefined);
  const name = zh !== undefined ? text(zh, str(proc, 'gusu:nameEn')) : undefined;
  if (!key) p.push('the process has no id: give it one, the process key (e.g. catalog.access-request)');
  if (!name) p.push(`${label(proc)}: the process has no name`);
  const owner = str(proc, 'gusu:owner');
  if (!owner) p.push(`${label(proc)}: no owner; add gusu:owner="<department code>" (the department that owns the process, e.g. SZ-DSJ)`);
  const doc = many(proc, 'documentation').map((d) => str(d, 'text')).find((t) => t !== undefined);
  const descriptionEn = str(proc, 'gusu:descriptionEn');
  const description = doc !== undefined || descriptionEn !== undefined ? text(doc ?? descriptionEn!, descriptionEn) : undefined;

  const nodes: ProcessNode[] = [];
  const flowEls: El[] = [];
  const nodeIds = new Set<string>();
  const refused = new Set<El>(); // reported already: flows to them are not reported again
  const defaults = new Map<El, string>(); // flow element → the gateway that names it default
  for (const el of many(proc, 'flowElements')) {
    if (el.$type === 'bpmn:SequenceFlow') {
      unknownGusu(el);
      flowEls.push(el);
      continue;
    }
    const id = str(el, 'id');
    if (!id) {
      p.push(`${label(el)}: every element needs an id`);
      continue;
    }
    unknownGusu(el);
    const node = readNode(el, id, nameOf(el), p, unresolved);
    if (!node) {
      refused.add(el);
      continue;
    }
    const dflt = one(el, 'default');
    if (dflt) {
      if (node.type !== 'exclusiveGateway') p.push(`${label(el)}: only an exclusive gateway has a default flow`);
      else defaults.set(dflt, id);
    }
    nodes.push(node);
    nodeIds.add(id);
  }

  const flows: Flow[] = [];
  for (const el of flowEls) {
    const id = str(el, 'id');
    if (!id) {
      p.push(`${label(el)}: every element needs an id`);
      continue;
    }
    const src = one(el, 'sourceRef');
    const tgt = one(el, 'targetRef');
    const from = src && str(src, 'id');
    const to = tgt && str(tgt, 'id');
    if (src && !refused.has(src) && (!from || !nodeIds.has(from))) p.push(`${label(el)}: its source ${label(src)} is not a node of the process`);
    if (tgt && !refused.has(tgt) && (!to || !nodeIds.has(to))) p.push(`${label(el)}: its target ${label(tgt)} is not a node of the process`);
    if (!src && !unresolved(el, 'sourceRef')) p.push(`${label(el)}: no sourceRef`);
    if (!tgt && !unresolved(el, 'targetRef')) p.push(`${label(el)}: no targetRef`);
    if (!from || !to) continue;
    const f: Flow = { id, from, to };
    const fname = nameOf(el);
    if (fname) f.name = fname;
    const cond = one(el, 'conditionExpression');
    if (cond) {
      const language = str(cond, 'language');
      const body = (str(cond, 'body') ?? '').trim();
      if (language !== undefined) p.push(`${label(el)}: a condition in ${JSON.stringify(language)} is not supported; write it as \${...} over the process variables`);
      else if (!body) p.push(`${label(el)}: an empty condition`);
      else f.condition = body;
    }
    const gw = defaults.get(el);
    if (gw !== undefined) {
      if (gw !== from) p.push(`${label(el)}: it is the default flow of ${gw} but does not leave it`);
      else f.isDefault = true;
    }
    flows.push(f);
  }
  if (p.length) throw new BpmnError(p.length > MAX_PROBLEMS ? [...p.slice(0, MAX_PROBLEMS), `and ${p.length - MAX_PROBLEMS} more problems`] : p);
  const model: ProcessModel = { key, name: name!, owner: owner!, nodes, flows };
  if (description) model.description = description;
  return model;
}

function text(zh: string, en: string | undefined): Text {
  return { zh, en: en ?? zh };
}

/** name (Chinese) and gusu:nameEn; either one stands in for a missing other */
function nameOf(el: El): Text | undefined {
  const zh = str(el, 'name');
  const en = str(el, 'gusu:nameEn');
  return zh !== undefined || en !== undefined ? text(zh ?? en!, en) : undefined;
}

function readAssignee(el: El, prefix: string): Assignee | undefined {
  const a: Assignee = {};
  const d = str(el, `${prefix}department`);
  const r = str(el, `${prefix}role`);
  const x = str(el, `${prefix}person`);
  if (d !== undefined) a.department = d;
  if (r !== undefined) a.role = r;
  if (x !== undefined) a.person = x;
  return Object.keys(a).length ? a : undefined;
}

function extensionValues(el: El): El[] {
  const ext = one(el, 'extensionElements');
  return ext ? many(ext, 'values') : [];
}

function camundaHint(el: El, names: string[]): string {
  const found = Object.keys(el.$attrs ?? {}).filter((k) => names.includes(k.slice(k.indexOf(':') + 1)));
  return found.length ? ` (${found.join(', ')} ${found.length > 1 ? 'are' : 'is'} not read by the platform)` : '';
}

type Unresolved = (el: El, property: string) => boolean;

function readNode(el: El, id: string, name: Text | undefined, p: string[], unresolved: Unresolved): ProcessNode | undefined {
  const node = readNodeType(el, id, name, p, unresolved);
  if (node && name && node.type !== 'userTask') node.name = name;
  return node;
}

function readNodeType(el: El, id: string, name: Text | undefined, p: string[], unresolved: Unresolved): ProcessNode | undefined {
  const defsOf = () => many(el, 'eventDefinitions');
  switch (el.$type) {
    case 'bpmn:StartEvent': {
      const d = defsOf();
      if (d.length) return void p.push(`${label(el)} with ${d.map(tag).join(', ')}: not supported; the process starts at a plain start event`);
      return { id, type: 'start' };
    }
    case 'bpmn:EndEvent': {
      const d = defsOf();
      if (d.some((x) => x.$type !== 'bpmn:TerminateEventDefinition') || d.length > 1) {
        return void p.push(`${label(el)} with ${d.map(tag).join(', ')}: not supported; an end event is plain or terminating`);
      }
      return d.length ? { id, type: 'end', terminate: true } : { id, type: 'end' };
    }
    case 'bpmn:ExclusiveGateway':
      return { id, type: 'exclusiveGateway' };
    case 'bpmn:ParallelGateway':
      return { id, type: 'parallelGateway' };
    case 'bpmn:UserTask':
      return readUserTask(el, id, name, p);
    case 'bpmn:ServiceTask': {
      if (one(el, 'loopCharacteristics')) p.push(`${label(el)}: a multi-instance or looping service task is not supported`);
      const handler = str(el, 'gusu:handler');
      if (!handler) {
        return void p.push(`${label(el)}: no handler; add gusu:handler="<name of a registered service handler>"${camundaHint(el, ['class', 'delegateExpression', 'expression', 'type', 'topic'])}`);
      }
      const node: ProcessNode = { id, type: 'serviceTask', handler };
      const inputs = extensionValues(el).filter((v) => v.$type === 'gusu:Input');
      if (inputs.length) {
        const input: Record<string, unknown> = {};
        for (const v of inputs) {
          const name = str(v, 'name');
          if (!name || name === '__proto__') {
            p.push(`${label(el)}: a gusu:input needs a name`);
            continue;
          }
          if (Object.hasOwn(input, name)) p.push(`${label(el)}: gusu:input ${name} is given twice`);
          const value = readInputValue(prop(v, 'value'), `${label(el)} gusu:input ${name}`, p);
          input[name] = value;
        }
        node.input = input;
      }
      return node;
    }
    case 'bpmn:BoundaryEvent': {
      const host = one(el, 'attachedToRef');
      const d = defsOf();
      if (d.length !== 1 || d[0]!.$type !== 'bpmn:TimerEventDefinition') {
        return void p.push(`${label(el)}${d.length ? ` with ${d.map(tag).join(', ')}` : ''}: not supported; a boundary event is a timer (timerEventDefinition with timeDuration)`);
      }
      const timer = d[0]!;
      if (one(timer, 'timeDate') || one(timer, 'timeCycle')) return void p.push(`${label(el)}: a timer with timeDate or timeCycle is not supported; give a timeDuration`);
      const hostId = host && str(host, 'id');
      if (!hostId) {
        // an attachedToRef naming no element was reported with the unresolved references
        if (host) p.push(`${label(el)}: attachedToRef does not name a task`);
        else if (!unresolved(el, 'attachedToRef')) p.push(`${label(el)}: no attachedToRef (the task it is attached to)`);
        return undefined;
      }
      const wd = parseWorkingDays(str(timer, 'gusu:workingDays'), `${label(el)} gusu:workingDays`, p);
      const body = one(timer, 'timeDuration') && str(one(timer, 'timeDuration')!, 'body');
      const parts = body !== undefined ? parseIso(body, `${label(el)} timeDuration`, p) : undefined;
      if (wd === undefined && body === undefined) return void p.push(`${label(el)}: the timer has no timeDuration`);
      // with gusu:workingDays, the date part of timeDuration is its calendar-day rendering: ignored
      const after: Duration = { ...(wd !== undefined ? { workingDays: wd } : {}), ...(parts ? clockOf(parts, wd === undefined) : {}) };
      const node: ProcessNode = { id, type: 'timerBoundary', attachedTo: hostId, after };
      if (Object.hasOwn(el, 'cancelActivity')) node.interrupting = prop(el, 'cancelActivity') !== false;
      return node;
    }
    default:
      p.push(`${label(el)}: not supported; ${HINTS[el.$type] ?? SUPPORTED}`);
      return undefined;
  }
}

function readInputValue(raw: unknown, where: string, p: string[]): unknown {
  const s = typeof raw === 'string' ? raw : '';
  if (s.length > LIMITS.inputValue) {
    p.push(`${where}: longer than ${LIMITS.inputValue} characters`);
    return null;
  }
  // the body is JSON; text that is not JSON is taken as a string. Nesting is bounded first.
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '[' || c === '{') max = Math.max(max, ++depth);
    else if (c === ']' || c === '}') depth--;
  }
  if (max > LIMITS.inputDepth) {
    p.push(`${where}: nested deeper than ${LIMITS.inputDepth}`);
    return null;
  }
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

function readUserTask(el: El, id: string, name: Text | undefined, p: string[]): UserTaskNode | undefined {
  const where = label(el);
  if (!name) p.push(`${where}: a user task needs a name (what the person is asked to do)`);
  const node: UserTaskNode = { id, type: 'userTask', name: name ?? { zh: '', en: '' } };
  const assignee = readAssignee(el, 'gusu:');
  if (assignee) node.assignee = assignee;
  const loop = one(el, 'loopCharacteristics');
  if (loop) {
    if (loop.$type !== 'bpmn:MultiInstanceLoopCharacteristics') p.push(`${where}: a ${tag(loop)} is not supported; a countersign is a parallel multiInstanceLoopCharacteristics`);
    else if (prop(loop, 'isSequential') === true) p.push(`${where}: a sequential multi-instance is not supported; a countersign runs in parallel (isSequential="false")`);
    else {
      const assignees = extensionValues(loop)
        .filter((v) => v.$type === 'gusu:Assignee')
        .map((v) => readAssignee(v, '') ?? {});
      if (!assignees.length) {
        p.push(`${where}: a countersign needs its assignees: add <gusu:assignee department="<code>" role="<role>"/> (or person="<account id>") elements to the extensionElements of its multiInstanceLoopCharacteristics${camundaHint(loop, ['collection', 'elementVariable'])}`);
      } else {
        const cond = one(loop, 'completionCondition');
        const completion = readCompletion(cond ? str(cond, 'body') : undefined, assignees.length);
        if (!completion) {
          p.push(`${where}: the completion condition ${JSON.stringify((cond && str(cond, 'body')) ?? '')} is not understood; write \${nrOfCompletedInstances >= n} (n = 1 for any, nrOfInstances for all)`);
        } else {
          const c: Countersign = { assignees, completion };
          const veto = str(loop, 'gusu:vetoOutcome');
          if (veto !== undefined) c.vetoOutcome = veto;
          node.countersign = c;
        }
      }
    }
  }
  if (!node.assignee && !loop) {
    const misplaced = extensionValues(el).some((v) => v.$type === 'gusu:Assignee');
    p.push(
      misplaced
        ? `${where}: gusu:assignee elements belong to a countersign (in a multiInstanceLoopCharacteristics); a single assignee is given as gusu:department (with gusu:role) or gusu:person on the task`
        : `${where}: no assignee; add gusu:department="<department code or \${variable}>" with gusu:role="<role>", or gusu:person="<account id or \${variable}>"${camundaHint(el, ['assignee', 'candidateGroups', 'candidateUsers'])}`,
    );
  }
  const outcomes = prop(el, 'gusu:outcomes');
  if (typeof outcomes === 'string') node.outcomes = outcomes.split(/[\s,]+/).filter(Boolean);
  const ov = str(el, 'gusu:outcomeVariable');
  if (ov !== undefined) node.outcomeVariable = ov;
  const deadline = readTaskDuration(el, 'deadline', where, p);
  if (deadline) node.deadline = deadline;
  const remind = readTaskDuration(el, 'remindBefore', where, p);
  if (remind) node.remindBefore = remind;
  const esc = str(el, 'gusu:escalateTo');
  if (esc !== undefined) node.escalateTo = { role: esc };
  return node;
}

/** ${nrOfCompletedInstances >= n | nrOfInstances}, or the share form nrOfCompletedInstances/nrOfInstances >= 0.5 */
function readCompletion(body: string | undefined, count: number): Countersign['completion'] | undefined {
  if (body === undefined || !body.trim()) return 'all';
  const src = body.trim();
  const inner = (/^\$\{([\s\S]*)\}$/.exec(src)?.[1] ?? src).replace(/\s+/g, '');
  if (/^nrOfCompletedInstances(>=|==)nrOfInstances$/.test(inner)) return 'all';
  if (inner === 'nrOfCompletedInstances>0') return 'any';
  let m = /^nrOfCompletedInstances(>=|==)(\d{1,4})$/.exec(inner);
  if (m) {
    const n = Number(m[2]);
    if (n < 1) return undefined;
    return n === 1 ? 'any' : { atLeast: n };
  }
  m = /^nrOfCompletedInstances\/nrOfInstances>=(\d(?:\.\d+)?)$/.exec(inner);
  if (m) {
    const share = Number(m[1]);
    if (!(share > 0 && share <= 1)) return undefined;
    if (share === 1) return 'all';
    const n = Math.ceil(share * count - 1e-9);
    return n <= 1 ? 'any' : { atLeast: n };
  }
  return undefined;
}
