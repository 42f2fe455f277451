// A process definition as data: the subset of BPMN 2.0 the platform runs (start and end events,
// user and service tasks, exclusive and parallel gateways, timer boundary events), plus what BPMN
// leaves to the engine: who a user task goes to (a department and role, or a person), its deadline
// in working days, countersign (会签: all, any, or n of m), reminders and escalation. Definitions are
// validated when deployed; a deployed version never changes (a running instance keeps its version).
import type { Text } from '../../http/i18n.ts';

/** A duration on the city's working calendar (workingDays) or on the clock (hours, minutes). */
export interface Duration {
  workingDays?: number;
  hours?: number;
  minutes?: number;
}

/**
 * Who a user task goes to. department may name a process variable as `${var}` (the department an
 * application was filed with, say); role narrows it to holders of that role in the department.
 */
export interface Assignee {
  department?: string;
  role?: string;
  /** an account id, or `${var}` */
  person?: string;
}

/** 会签: one task per assignee, done when all, any one, or at least n of them have completed */
export interface Countersign {
  assignees: Assignee[];
  completion: 'all' | 'any' | { atLeast: number };
  /** the outcome that vetoes at once (e.g. 'reject'): one such completion ends the countersign */
  vetoOutcome?: string;
}

export interface BaseNode {
  id: string;
  name?: Text;
}

export interface StartNode extends BaseNode {
  type: 'start';
}
export interface EndNode extends BaseNode {
  type: 'end';
  /** terminate: ends the whole instance, cancelling what still runs in parallel */
  terminate?: boolean;
}
export interface UserTaskNode extends BaseNode {
  type: 'userTask';
  name: Text;
  assignee?: Assignee;
  countersign?: Countersign;
  /** the outcomes a person can choose (approve, reject, ...); empty: just "done" */
  outcomes?: string[];
  /** the variable the chosen outcome is written to (default: `${id}Outcome`) */
  outcomeVariable?: string;
  deadline?: Duration;
  /** a reminder to the assignee this long before the deadline */
  remindBefore?: Duration;
  /** past the deadline, the task is escalated to holders of this role in the same department */
  escalateTo?: { role: string };
}
export interface ServiceTaskNode extends BaseNode {
  type: 'serviceTask';
  /** a handler registered with the engine by name (registerServiceHandler) */
  handler: string;
  /** handler input: static values; strings may be `${var}` */
  input?: Record<string, unknown>;
}
export interface GatewayNode extends BaseNode {
  type: 'exclusiveGateway' | 'parallelGateway';
}
/** A timer on a user task: fires after `after` unless the task finished first. */
export interface TimerBoundaryNode extends BaseNode {
  type: 'timerBoundary';
  attachedTo: string;
  after: Duration;
  /** interrupting (the default) cancels the task and leaves through this event */
  interrupting?: boolean;
}

export type ProcessNode = StartNode | EndNode | UserTaskNode | ServiceTaskNode | GatewayNode | TimerBoundaryNode;
export type NodeType = ProcessNode['type'];

/** A sequence flow; `condition` is an expression over the instance's variables (see expr.ts). */
export interface Flow {
  id: string;
  from: string;
  to: string;
  condition?: string;
  /** the exclusive gateway's default flow, taken when no condition holds */
  isDefault?: boolean;
  name?: Text;
}

export interface ProcessModel {
  key: string;
  name: Text;
  description?: Text;
  /** the department that owns the process (it may change it) */
  owner: string;
  nodes: ProcessNode[];
  flows: Flow[];
}

export const NODE_TYPES: readonly NodeType[] = ['start', 'end', 'userTask', 'serviceTask', 'exclusiveGateway', 'parallelGateway', 'timerBoundary'];
const KEY = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/;
const ID = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const VAR_REF = /^\$\{([A-Za-z_][A-Za-z0-9_]{0,63})\}$/;
const LIMITS = { nodes: 200, flows: 400, text: 200, outcomes: 10, assignees: 50 };

export class ModelError extends Error {
  constructor(readonly problems: string[]) {
    super(`the process definition is not valid: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''}`);
  }
}

export function variableRef(value: string | undefined): string | null {
  if (!value) return null;
  return VAR_REF.exec(value)?.[1] ?? null;
}

// characters XML 1.0 cannot carry: a definition must export to BPMN that strict tools accept
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/;

function isText(t: unknown): t is Text {
  return (
    !!t &&
    typeof t === 'object' &&
    typeof (t as Text).zh === 'string' &&
    typeof (t as Text).en === 'string' &&
    (t as Text).zh.length <= LIMITS.text &&
    (t as Text).en.length <= LIMITS.text &&
    !NOT_XML.test((t as Text).zh) &&
    !NOT_XML.test((t as Text).en)
  );
}

/** service-task input: plain JSON of at most 16 KB, 32 levels, no prototype keys */
function inputProblems(v: unknown, where: string): string[] {
  let size: number;
  try {
    size = Buffer.byteLength(JSON.stringify(v));
  } catch {
    return [`${where}: not JSON`];
  }
  if (size > 16 * 1024) return [`${where}: ${size} bytes, at most 16 KB`];
  const walk = (x: unknown, depth: number): string | null => {
    if (depth > 32) return 'nested deeper than 32';
    if (x && typeof x === 'object') {
      for (const [k, y] of Object.entries(x)) {
        if (k === '__proto__' || k === 'constructor' || k === 'prototype') return `key ${k} is not allowed`;
        const p = walk(y, depth + 1);
        if (p) return p;
      }
    } else if (typeof x === 'string' && NOT_XML.test(x)) return 'control characters';
    return null;
  };
  const p = walk(v, 0);
  return p ? [`${where}: ${p}`] : [];
}

function durationProblems(d: unknown, where: string): string[] {
  if (!d || typeof d !== 'object') return [`${where}: expected { workingDays | hours | minutes }`];
  const o = d as Record<string, unknown>;
  const keys = Object.keys(o);
  if (!keys.length || keys.some((k) => !['workingDays', 'hours', 'minutes'].includes(k))) return [`${where}: expected { workingDays | hours | minutes }`];
  const out: string[] = [];
  for (const k of keys) {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 3650 * 24 * 60) out.push(`${where}.${k}: expected a number from 0`);
    if (k === 'workingDays' && typeof v === 'number' && !Number.isInteger(v)) out.push(`${where}.workingDays: expected whole days`);
  }
  if (!out.length && keys.every((k) => o[k] === 0)) out.push(`${where}: a duration of zero`);
  return out;
}

function assigneeProblems(a: unknown, where: string, departments: ReadonlySet<string> | null, roles: ReadonlySet<string> | null): string[] {
  if (!a || typeof a !== 'object') return [`${where}: expected { department, role } or { person }`];
  const o = a as Assignee;
  const out: string[] = [];
  if (!o.department && !o.person) out.push(`${where}: names neither a department nor a person`);
  if (o.department !== undefined) {
    if (typeof o.department !== 'string') out.push(`${where}.department: expected a department code or \${variable}`);
    else if (!variableRef(o.department) && departments && !departments.has(o.department)) out.push(`${where}.department: no department ${JSON.stringify(o.department)} in the city profile`);
  }
  if (o.role !== undefined && (typeof o.role !== 'string' || (roles && !roles.has(o.role)))) out.push(`${where}.role: no role ${JSON.stringify(o.role)}`);
  if (o.person !== undefined && (typeof o.person !== 'string' || o.person.length > 100)) out.push(`${where}.person: expected an account id or \${variable}`);
  return out;
}

export interface ValidationContext {
  /** department codes of the city profile; null skips the check */
  departments: ReadonlySet<string> | null;
  roles: ReadonlySet<string> | null;
  /** registered service handlers; null skips the check */
  handlers: ReadonlySet<string> | null;
  /** parses a condition; throws with a message when it is not valid */
  parseCondition(source: string): unknown;
}

/**
 * Checks a model, naming every problem found: structure, references, reachability, that a parallel
 * split is joined by a parallel gateway, that an exclusive gateway's flows have conditions or a
 * default. Returns the model (typed) or throws ModelError.
 */
export function validateModel(input: unknown, vc: ValidationContext): ProcessModel {
  const p: string[] = [];
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new ModelError(['expected an object']);
  const m = input as ProcessModel;
  if (typeof m.key !== 'string' || !KEY.test(m.key) || m.key.length > 100) p.push('key: expected lower-case words joined by dots or dashes, e.g. catalog.access-request');
  if (!isText(m.name)) p.push('name: expected { zh, en } of at most 200 characters each');
  if (m.description !== undefined && !isText(m.description)) p.push('description: expected { zh, en }');
  if (typeof m.owner !== 'string' || (vc.departments && !vc.departments.has(m.owner))) p.push(`owner: no department ${JSON.stringify(m.owner)} in the city profile`);
  if (!Array.isArray(m.nodes) || !m.nodes.length) p.push('nodes: expected a list of nodes');
  if (!Array.isArray(m.flows)) p.push('flows: expected a list of sequence flows');
  if (p.length) throw new ModelError(p);
  if (m.nodes.length > LIMITS.nodes) throw new ModelError([`nodes: at most ${LIMITS.nodes}`]);
  if (m.flows.length > LIMITS.flows) throw new ModelError([`flows: at most ${LIMITS.flows}`]);

  const nodes = new Map<string, ProcessNode>();
  for (const [i, n] of m.nodes.entries()) {
    const where = `nodes[${i}]`;
    if (!n || typeof n !== 'object' || typeof n.id !== 'string' || !ID.test(n.id)) {
      p.push(`${where}.id: expected letters, digits, _ . - (at most 64)`);
      continue;
    }
    if (nodes.has(n.id)) p.push(`${where}: id ${n.id} is used twice`);
    if (n.id === m.key) p.push(`${where}: id ${n.id} is the process key (BPMN ids share one space)`);
    if (!NODE_TYPES.includes(n.type)) p.push(`${n.id}: unknown type ${JSON.stringify((n as { type: unknown }).type)}`);
    if (n.name !== undefined && !isText(n.name)) p.push(`${n.id}.name: expected { zh, en }`);
    nodes.set(n.id, n);
    switch (n.type) {
      case 'userTask': {
        if (!isText(n.name)) p.push(`${n.id}: a user task needs a name { zh, en }`);
        if (!n.assignee === !n.countersign) p.push(`${n.id}: a user task needs exactly one of assignee or countersign`);
        if (n.assignee) p.push(...assigneeProblems(n.assignee, `${n.id}.assignee`, vc.departments, vc.roles));
        if (n.countersign) {
          const c = n.countersign;
          if (!Array.isArray(c.assignees) || c.assignees.length < 1 || c.assignees.length > LIMITS.assignees) p.push(`${n.id}.countersign.assignees: expected 1 to ${LIMITS.assignees}`);
          else c.assignees.forEach((a, j) => p.push(...assigneeProblems(a, `${n.id}.countersign.assignees[${j}]`, vc.departments, vc.roles)));
          const comp = c.completion;
          const okComp = comp === 'all' || comp === 'any' || (typeof comp === 'object' && comp !== null && Number.isInteger(comp.atLeast) && comp.atLeast >= 1 && Array.isArray(c.assignees) && comp.atLeast <= c.assignees.length);
          if (!okComp) p.push(`${n.id}.countersign.completion: expected all, any, or { atLeast: n } with n from 1 to the number of assignees`);
          if (c.vetoOutcome !== undefined && !(n.outcomes ?? []).includes(c.vetoOutcome)) p.push(`${n.id}.countersign.vetoOutcome: not one of the task's outcomes`);
        }
        if (n.outcomes !== undefined) {
          if (!Array.isArray(n.outcomes) || n.outcomes.length > LIMITS.outcomes || n.outcomes.some((o) => typeof o !== 'string' || !/^[a-z][a-z0-9-]{0,31}$/.test(o)) || new Set(n.outcomes).size !== n.outcomes.length) {
            p.push(`${n.id}.outcomes: expected up to ${LIMITS.outcomes} distinct lower-case words`);
          }
        }
        if (n.outcomeVariable !== undefined && (typeof n.outcomeVariable !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(n.outcomeVariable))) p.push(`${n.id}.outcomeVariable: expected a variable name`);
        if (n.deadline) p.push(...durationProblems(n.deadline, `${n.id}.deadline`));
        if (n.remindBefore) {
          p.push(...durationProblems(n.remindBefore, `${n.id}.remindBefore`));
          if (!n.deadline) p.push(`${n.id}.remindBefore: a reminder needs a deadline`);
        }
        if (n.escalateTo) {
          if (!n.deadline) p.push(`${n.id}.escalateTo: escalation needs a deadline`);
          if (typeof n.escalateTo.role !== 'string' || (vc.roles && !vc.roles.has(n.escalateTo.role))) p.push(`${n.id}.escalateTo.role: no role ${JSON.stringify(n.escalateTo.role)}`);
        }
        break;
      }
      case 'serviceTask':
        if (typeof n.handler !== 'string' || (vc.handlers && !vc.handlers.has(n.handler))) p.push(`${n.id}.handler: no service handler ${JSON.stringify(n.handler)} is registered`);
        if (n.input !== undefined && (typeof n.input !== 'object' || n.input === null || Array.isArray(n.input))) p.push(`${n.id}.input: expected an object`);
        else if (n.input !== undefined) p.push(...inputProblems(n.input, `${n.id}.input`));
        break;
      case 'timerBoundary':
        p.push(...durationProblems(n.after, `${n.id}.after`));
        break;
    }
  }
  for (const n of nodes.values()) {
    if (n.type === 'timerBoundary') {
      const host = nodes.get(n.attachedTo);
      if (!host || host.type !== 'userTask') p.push(`${n.id}.attachedTo: expected the id of a user task`);
    }
  }

  const out = new Map<string, Flow[]>();
  const inc = new Map<string, Flow[]>();
  const flowIds = new Set<string>();
  for (const [i, f] of m.flows.entries()) {
    const where = `flows[${i}]`;
    if (!f || typeof f !== 'object' || typeof f.id !== 'string' || !ID.test(f.id)) {
      p.push(`${where}.id: expected letters, digits, _ . -`);
      continue;
    }
    if (flowIds.has(f.id) || nodes.has(f.id) || f.id === m.key) p.push(`${f.id}: id used twice`);
    flowIds.add(f.id);
    if (!nodes.has(f.from)) p.push(`${f.id}.from: no node ${JSON.stringify(f.from)}`);
    if (!nodes.has(f.to)) p.push(`${f.id}.to: no node ${JSON.stringify(f.to)}`);
    if (f.condition !== undefined) {
      if (typeof f.condition !== 'string' || f.condition.length > 500 || NOT_XML.test(f.condition)) p.push(`${f.id}.condition: expected an expression of at most 500 characters`);
      else {
        try {
          vc.parseCondition(f.condition);
        } catch (err) {
          p.push(`${f.id}.condition: ${(err as Error).message}`);
        }
      }
    }
    out.set(f.from, [...(out.get(f.from) ?? []), f]);
    inc.set(f.to, [...(inc.get(f.to) ?? []), f]);
  }
  if (p.length) throw new ModelError(p);

  const starts = [...nodes.values()].filter((n) => n.type === 'start');
  if (starts.length !== 1) p.push(`expected exactly one start event, found ${starts.length}`);
  if (![...nodes.values()].some((n) => n.type === 'end')) p.push('expected at least one end event');
  for (const n of nodes.values()) {
    const o = out.get(n.id) ?? [];
    const i = inc.get(n.id) ?? [];
    if (n.type === 'start' && i.length) p.push(`${n.id}: a start event has no incoming flow`);
    if (n.type === 'end' && o.length) p.push(`${n.id}: an end event has no outgoing flow`);
    if (n.type === 'timerBoundary' && i.length) p.push(`${n.id}: a boundary event has no incoming flow`);
    if (n.type !== 'end' && o.length === 0) p.push(`${n.id}: has no outgoing flow`);
    if (n.type !== 'start' && n.type !== 'timerBoundary' && i.length === 0) p.push(`${n.id}: has no incoming flow`);
    if ((n.type === 'userTask' || n.type === 'serviceTask' || n.type === 'start' || n.type === 'timerBoundary') && o.length > 1) p.push(`${n.id}: more than one outgoing flow (use a gateway)`);
    if (n.type !== 'exclusiveGateway' && o.some((f) => f.condition !== undefined || f.isDefault)) p.push(`${n.id}: only an exclusive gateway's flows carry conditions`);
    if (n.type === 'exclusiveGateway' && o.length > 1) {
      const defaults = o.filter((f) => f.isDefault);
      if (defaults.length > 1) p.push(`${n.id}: more than one default flow`);
      if (o.some((f) => !f.isDefault && f.condition === undefined)) p.push(`${n.id}: every outgoing flow but the default needs a condition`);
    }
  }
  if (p.length) throw new ModelError(p);

  // every node reachable from the start (boundary events through their task)
  const seen = new Set<string>();
  const stack = [starts[0]!.id];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const f of out.get(id) ?? []) stack.push(f.to);
    for (const b of nodes.values()) if (b.type === 'timerBoundary' && b.attachedTo === id) stack.push(b.id);
  }
  for (const n of nodes.values()) if (!seen.has(n.id)) p.push(`${n.id}: cannot be reached from the start event`);
  // every node can reach an end
  const reachesEnd = new Set<string>([...nodes.values()].filter((n) => n.type === 'end').map((n) => n.id));
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of nodes.values()) {
      if (reachesEnd.has(n.id)) continue;
      if ((out.get(n.id) ?? []).some((f) => reachesEnd.has(f.to))) {
        reachesEnd.add(n.id);
        changed = true;
      }
    }
  }
  for (const n of nodes.values()) if (!reachesEnd.has(n.id)) p.push(`${n.id}: no path from here to an end event`);
  if (p.length) throw new ModelError(p);
  return m;
}

/** Outgoing flows of every node, and boundary timers per task: what the engine walks. */
export interface CompiledModel {
  model: ProcessModel;
  nodes: Map<string, ProcessNode>;
  outgoing: Map<string, Flow[]>;
  incoming: Map<string, Flow[]>;
  boundaries: Map<string, TimerBoundaryNode[]>;
  start: StartNode;
}

export function compileModel(model: ProcessModel): CompiledModel {
  const nodes = new Map(model.nodes.map((n) => [n.id, n]));
  const outgoing = new Map<string, Flow[]>();
  const incoming = new Map<string, Flow[]>();
  for (const f of model.flows) {
    outgoing.set(f.from, [...(outgoing.get(f.from) ?? []), f]);
    incoming.set(f.to, [...(incoming.get(f.to) ?? []), f]);
  }
  const boundaries = new Map<string, TimerBoundaryNode[]>();
  for (const n of model.nodes) if (n.type === 'timerBoundary') boundaries.set(n.attachedTo, [...(boundaries.get(n.attachedTo) ?? []), n]);
  return { model, nodes, outgoing, incoming, boundaries, start: model.nodes.find((n): n is StartNode => n.type === 'start')! };
}
