// BPMN 2.0 import and export (src/base/workflow/bpmn.ts): round trips of representative models, the
// shape of what is written (standard elements, gusu extensions, DI), a file drawn in Camunda Modeler,
// what is refused, and hostile input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { BpmnError, exportBpmn, GUSU_BPMN_URI, importBpmn, layoutModel, MAX_BPMN_BYTES } from '../src/base/workflow/bpmn.ts';
import { parseExpr } from '../src/base/workflow/expr.ts';
import { validateModel, type ProcessModel, type ValidationContext } from '../src/base/workflow/model.ts';

const root = new URL('../', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(`test/fixtures/bpmn/${name}`, root), 'utf8');
const departments = new Set<string>(
  (JSON.parse(readFileSync(new URL('profiles/suzhou/departments.json', root), 'utf8')) as { departments: { code: string }[] }).departments.map((d) => d.code),
);
const vc: ValidationContext = { departments, roles: null, handlers: null, parseCondition: parseExpr };

/** imports, expecting a BpmnError; returns its problems joined, for matching */
async function refused(xml: string): Promise<string> {
  const t0 = Date.now();
  const err = await importBpmn(xml).then(
    () => assert.fail('expected the import to be refused'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof BpmnError, `expected a BpmnError, got ${String(err)}`);
  assert.ok(err.problems.length >= 1);
  assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
  return err.problems.join('\n');
}

const BPMN_HEAD = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:gusu="${GUSU_BPMN_URI}" id="D" targetNamespace="http://bpmn.io/schema/bpmn">
<bpmn:process id="demo.p" name="演示" gusu:owner="SZ-DSJ">`;
const BPMN_TAIL = '</bpmn:process></bpmn:definitions>';
const doc = (body: string) => BPMN_HEAD + body + BPMN_TAIL;
const SIMPLE = `<bpmn:startEvent id="s"/><bpmn:userTask id="t" name="办理" gusu:department="SZ-GA"/><bpmn:endEvent id="e"/>
<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/><bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e"/>`;

// ---- representative models ----

const sequential: ProcessModel = {
  key: 'demo.sequential-approval',
  name: { zh: '逐级审批', en: 'Sequential approval' },
  description: { zh: '科室初审，分管领导复审。', en: 'The section reviews; the deputy head approves.' },
  owner: 'SZ-DSJ',
  nodes: [
    { id: 'start', type: 'start', name: { zh: '提交', en: 'Submitted' } },
    { id: 'first', type: 'userTask', name: { zh: '科室初审', en: 'Section review' }, assignee: { department: '${department}', role: 'case-handler' }, deadline: { workingDays: 2 }, remindBefore: { hours: 4 }, escalateTo: { role: 'department-lead' } },
    { id: 'second', type: 'userTask', name: { zh: '分管领导复审', en: 'Deputy head approval' }, assignee: { person: '${deputy}' }, deadline: { hours: 8, minutes: 30 }, outcomeVariable: 'finalDecision' },
    { id: 'end', type: 'end', name: { zh: '办结', en: 'Done' } },
  ],
  flows: [
    { id: 'f1', from: 'start', to: 'first' },
    { id: 'f2', from: 'first', to: 'second' },
    { id: 'f3', from: 'second', to: 'end' },
  ],
};

const exclusive: ProcessModel = {
  key: 'demo.exclusive',
  name: { zh: '条件分支', en: 'Exclusive choice' },
  owner: 'SZ-SCJG',
  nodes: [
    { id: 'start', type: 'start' },
    { id: 'review', type: 'userTask', name: { zh: '审核', en: 'Review' }, assignee: { department: 'SZ-SCJG', role: 'case-handler' }, outcomes: ['approve', 'reject', 'more'] },
    { id: 'decide', type: 'exclusiveGateway', name: { zh: '审核结果', en: 'Decision' } },
    { id: 'big', type: 'userTask', name: { zh: '大额复核', en: 'Large amount check' }, assignee: { department: 'SZ-CZ' } },
    { id: 'approved', type: 'end', name: { zh: '通过', en: 'Approved' } },
    { id: 'rejected', type: 'end', name: { zh: '不予通过', en: 'Rejected' } },
  ],
  flows: [
    { id: 'f1', from: 'start', to: 'review' },
    { id: 'f2', from: 'review', to: 'decide' },
    { id: 'f3', from: 'decide', to: 'big', condition: '${reviewOutcome == "approve" && amount >= 1000000}', name: { zh: '大额', en: 'Large' } },
    { id: 'f4', from: 'decide', to: 'approved', condition: 'reviewOutcome == "approve"' },
    { id: 'f5', from: 'decide', to: 'review', condition: "${reviewOutcome == 'more' or amount < 0}", name: { zh: '补正', en: 'More documents' } },
    { id: 'f6', from: 'decide', to: 'rejected', isDefault: true },
    { id: 'f7', from: 'big', to: 'approved' },
  ],
};

const parallel: ProcessModel = {
  key: 'demo.parallel',
  name: { zh: '三部门并联审批', en: 'Parallel approval by three departments' },
  owner: 'SZ-ZJ',
  nodes: [
    { id: 'start', type: 'start' },
    { id: 'split', type: 'parallelGateway' },
    { id: 'plan', type: 'userTask', name: { zh: '规划审查', en: 'Planning review' }, assignee: { department: 'SZ-ZRGH', role: 'case-handler' }, deadline: { workingDays: 5 } },
    { id: 'env', type: 'userTask', name: { zh: '环评审查', en: 'Environmental review' }, assignee: { department: 'SZ-STHJ', role: 'case-handler' }, deadline: { workingDays: 5 } },
    { id: 'fire', type: 'userTask', name: { zh: '消防审查', en: 'Fire safety review' }, assignee: { department: 'SZ-ZJ', role: 'case-handler' }, deadline: { workingDays: 3 } },
    { id: 'join', type: 'parallelGateway' },
    { id: 'end', type: 'end' },
  ],
  flows: [
    { id: 'f1', from: 'start', to: 'split' },
    { id: 'f2', from: 'split', to: 'plan' },
    { id: 'f3', from: 'split', to: 'env' },
    { id: 'f4', from: 'split', to: 'fire' },
    { id: 'f5', from: 'plan', to: 'join' },
    { id: 'f6', from: 'env', to: 'join' },
    { id: 'f7', from: 'fire', to: 'join' },
    { id: 'f8', from: 'join', to: 'end' },
  ],
};

function countersignModel(completion: 'all' | 'any' | { atLeast: number }): ProcessModel {
  return {
    key: 'demo.countersign',
    name: { zh: '会签', en: 'Countersign' },
    owner: 'SZ-ZFB',
    nodes: [
      { id: 'start', type: 'start' },
      {
        id: 'sign',
        type: 'userTask',
        name: { zh: '部门会签', en: 'Departments countersign' },
        countersign: { assignees: [{ department: '${leadDepartment}' }, { department: 'SZ-FGW', role: 'department-lead' }, { person: 'acct-0042' }], completion, vetoOutcome: 'object' },
        outcomes: ['agree', 'object'],
        deadline: { workingDays: 3 },
        remindBefore: { workingDays: 1 },
      },
      { id: 'ok', type: 'exclusiveGateway' },
      { id: 'issued', type: 'end' },
      { id: 'returned', type: 'end' },
    ],
    flows: [
      { id: 'f1', from: 'start', to: 'sign' },
      { id: 'f2', from: 'sign', to: 'ok' },
      { id: 'f3', from: 'ok', to: 'issued', condition: '${signOutcome == "agree"}' },
      { id: 'f4', from: 'ok', to: 'returned', isDefault: true },
    ],
  };
}

const timers: ProcessModel = {
  key: 'demo.timers',
  name: { zh: '超时处理', en: 'Timeouts' },
  owner: 'SZ-RS',
  nodes: [
    { id: 'start', type: 'start' },
    { id: 'handle', type: 'userTask', name: { zh: '办理', en: 'Handle' }, assignee: { department: 'SZ-RS', role: 'case-handler' }, outcomes: [] },
    { id: 'remind', type: 'timerBoundary', attachedTo: 'handle', after: { hours: 4 }, interrupting: false, name: { zh: '4小时提醒', en: 'After 4 hours' } },
    { id: 'expire', type: 'timerBoundary', attachedTo: 'handle', after: { workingDays: 10 }, interrupting: true },
    { id: 'late', type: 'timerBoundary', attachedTo: 'handle', after: { workingDays: 2, hours: 0, minutes: 90 } },
    { id: 'nudge', type: 'serviceTask', handler: 'notify', input: { template: 'reminder', to: '${assignee}' } },
    { id: 'nudged', type: 'end' },
    { id: 'expired', type: 'end', terminate: true, name: { zh: '逾期终止', en: 'Expired' } },
    { id: 'lateEnd', type: 'end' },
    { id: 'done', type: 'end' },
  ],
  flows: [
    { id: 'f1', from: 'start', to: 'handle' },
    { id: 'f2', from: 'handle', to: 'done' },
    { id: 'f3', from: 'remind', to: 'nudge' },
    { id: 'f4', from: 'nudge', to: 'nudged' },
    { id: 'f5', from: 'expire', to: 'expired' },
    { id: 'f6', from: 'late', to: 'lateEnd' },
  ],
};

const service: ProcessModel = {
  key: 'catalog.push',
  name: { zh: '数据推送', en: 'Data push' },
  owner: 'SZ-DSJ',
  nodes: [
    { id: 'start', type: 'start' },
    {
      id: 'push',
      type: 'serviceTask',
      name: { zh: '推送到共享平台', en: 'Push to the exchange' },
      handler: 'exchange.push',
      input: { dataset: 'population', fields: ['name', 'idNumber'], limit: 1000, masked: true, options: { retry: { times: 3, backoffSeconds: 2.5 }, note: null }, label: '人口 <基础> & "库"', applicant: '${applicant}' },
    },
    { id: 'check', type: 'userTask', name: { zh: '核对', en: 'Check' }, assignee: { department: 'SZ-DSJ', role: 'exchange-operator' } },
    { id: 'stop', type: 'end', terminate: true },
  ],
  flows: [
    { id: 'f1', from: 'start', to: 'push' },
    { id: 'f2', from: 'push', to: 'check' },
    { id: 'f3', from: 'check', to: 'stop' },
  ],
};

const representative: [string, ProcessModel][] = [
  ['sequential approval', sequential],
  ['exclusive gateway with conditions, a loop back and a default', exclusive],
  ['parallel approval across three departments', parallel],
  ['countersign, all', countersignModel('all')],
  ['countersign, any', countersignModel('any')],
  ['countersign, at least 2 with a veto outcome', countersignModel({ atLeast: 2 })],
  ['timer boundaries, interrupting and not, clock and working days', timers],
  ['service task with input, terminate end', service],
];

for (const [what, model] of representative) {
  test(`round trip: ${what}`, async () => {
    validateModel(model, vc);
    const xml = await exportBpmn(model);
    const back = await importBpmn(xml);
    assert.deepStrictEqual(back, model);
    validateModel(back, vc);
    assert.equal(await exportBpmn(back), xml, 'the export is stable');
  });
}

test('round trip: the process definitions shipped in the Suzhou profile', async () => {
  const dir = new URL('profiles/suzhou/processes/', root);
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 1);
  for (const f of files) {
    const model = validateModel(JSON.parse(readFileSync(new URL(f, dir), 'utf8')), vc);
    assert.deepStrictEqual(await importBpmn(await exportBpmn(model)), model, f);
  }
});

test('countersign completion { atLeast: 1 } comes back as "any" (the same rule)', async () => {
  const back = await importBpmn(await exportBpmn(countersignModel({ atLeast: 1 })));
  const sign = back.nodes.find((n) => n.id === 'sign');
  assert.ok(sign?.type === 'userTask');
  assert.equal(sign.countersign?.completion, 'any');
});

// ---- what is written ----

test('export: standard BPMN elements for the subset, the platform data in the gusu namespace', async () => {
  const xml = await exportBpmn(exclusive);
  assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>/);
  assert.match(xml, new RegExp(`xmlns:gusu="${GUSU_BPMN_URI.replace(/[./]/g, '\\$&')}"`));
  assert.match(xml, /<bpmn:process id="demo.exclusive" name="条件分支" isExecutable="true" gusu:nameEn="Exclusive choice" gusu:owner="SZ-SCJG">/);
  assert.match(xml, /<bpmn:exclusiveGateway id="decide" name="审核结果" gusu:nameEn="Decision" default="f6">/);
  assert.match(xml, /<bpmn:userTask id="review" name="审核" gusu:nameEn="Review" gusu:department="SZ-SCJG" gusu:role="case-handler" gusu:outcomes="approve reject more">/);
  assert.match(xml, /<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">\$\{reviewOutcome == "approve" &amp;&amp; amount &gt;= 1000000\}<\/bpmn:conditionExpression>/);

  const p = await exportBpmn(parallel);
  assert.equal(p.match(/<bpmn:parallelGateway /g)?.length, 2);
  assert.match(p, /gusu:deadlineWorkingDays="5"/);

  const s = await exportBpmn(sequential);
  assert.match(s, /<bpmn:documentation>科室初审，分管领导复审。<\/bpmn:documentation>/);
  assert.match(s, /gusu:descriptionEn="The section reviews; the deputy head approves."/);
  assert.match(s, /gusu:remindBefore="PT4H"/);
  assert.match(s, /gusu:deadline="PT8H30M"/);
  assert.match(s, /gusu:person="\$\{deputy\}"/);
  assert.match(s, /gusu:outcomeVariable="finalDecision"/);
  assert.match(s, /gusu:escalateTo="department-lead"/);

  const t = await exportBpmn(timers);
  assert.match(t, /<bpmn:boundaryEvent id="remind" name="4小时提醒" gusu:nameEn="After 4 hours" cancelActivity="false" attachedToRef="handle">/);
  assert.match(t, /<bpmn:boundaryEvent id="expire" attachedToRef="handle" cancelActivity="true">/);
  assert.match(t, /<bpmn:boundaryEvent id="late" attachedToRef="handle">/, 'interrupting unset: BPMN’s default (cancelActivity true) applies');
  assert.match(t, /<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT4H<\/bpmn:timeDuration>/);
  assert.match(t, /gusu:workingDays="10">\s*<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">P10D<\/bpmn:timeDuration>/);
  assert.match(t, /gusu:workingDays="2">\s*<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">P2DT0H90M<\/bpmn:timeDuration>/);
  assert.match(t, /<bpmn:endEvent id="expired" name="逾期终止" gusu:nameEn="Expired">[\s\S]*?<bpmn:terminateEventDefinition [^>]*\/>/);

  const c = await exportBpmn(countersignModel({ atLeast: 2 }));
  assert.match(c, /<bpmn:multiInstanceLoopCharacteristics gusu:vetoOutcome="object" isSequential="false">/);
  assert.match(c, /<gusu:assignee department="\$\{leadDepartment\}" \/>\s*<gusu:assignee department="SZ-FGW" role="department-lead" \/>\s*<gusu:assignee person="acct-0042" \/>/);
  assert.match(c, /<bpmn:loopCardinality xsi:type="bpmn:tFormalExpression">3<\/bpmn:loopCardinality>/);
  assert.match(c, /<bpmn:completionCondition xsi:type="bpmn:tFormalExpression">\$\{nrOfCompletedInstances &gt;= 2\}<\/bpmn:completionCondition>/);
  assert.match(await exportBpmn(countersignModel('any')), /\$\{nrOfCompletedInstances &gt;= 1\}/);
  assert.match(await exportBpmn(countersignModel('all')), /\$\{nrOfCompletedInstances &gt;= nrOfInstances\}/);

  const v = await exportBpmn(service);
  assert.match(v, /<bpmn:serviceTask id="push" name="推送到共享平台" gusu:nameEn="Push to the exchange" gusu:handler="exchange.push">/);
  assert.match(v, /<gusu:input name="dataset">"population"<\/gusu:input>/);
  assert.match(v, /<gusu:input name="limit">1000<\/gusu:input>/);
  assert.match(v, /<gusu:input name="label">"人口 &lt;基础&gt; &amp; \\"库\\""<\/gusu:input>/);
});

test('export: a diagram (BPMN DI) with a shape for every node and an edge for every flow, laid out left to right', async () => {
  for (const [what, model] of representative) {
    const xml = await exportBpmn(model);
    assert.match(xml, /<bpmndi:BPMNDiagram id="[^"]+">\s*<bpmndi:BPMNPlane id="[^"]+" bpmnElement="[^"]+">/, what);
    for (const n of model.nodes) assert.match(xml, new RegExp(`<bpmndi:BPMNShape id="[^"]+" bpmnElement="${n.id}"[^>]*>\\s*<dc:Bounds x="-?\\d+" y="-?\\d+" width="\\d+" height="\\d+" />`), `${what}: ${n.id}`);
    for (const f of model.flows) assert.match(xml, new RegExp(`<bpmndi:BPMNEdge id="[^"]+" bpmnElement="${f.id}">\\s*(<di:waypoint x="-?\\d+" y="-?\\d+" />\\s*){2,}</bpmndi:BPMNEdge>`), `${what}: ${f.id}`);
    const { shapes } = layoutModel(model);
    const boxes = model.nodes.filter((n) => n.type !== 'timerBoundary').map((n) => ({ id: n.id, ...shapes.get(n.id)! }));
    for (const a of boxes) {
      for (const b of boxes) {
        if (a.id >= b.id) continue;
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        assert.ok(!overlap, `${what}: ${a.id} and ${b.id} overlap`);
      }
    }
    for (const f of model.flows) {
      const from = model.nodes.find((n) => n.id === f.from)!;
      if (from.type !== 'timerBoundary' && !(f.from === 'decide' && f.to === 'review')) {
        assert.ok(shapes.get(f.to)!.x > shapes.get(f.from)!.x, `${what}: ${f.id} goes left to right`);
      }
    }
    for (const n of model.nodes) {
      if (n.type !== 'timerBoundary') continue;
      const host = shapes.get(n.attachedTo)!;
      const b = shapes.get(n.id)!;
      assert.equal(b.y + b.h / 2, host.y + host.h, `${n.id} sits on the lower edge of ${n.attachedTo}`);
      assert.ok(b.x >= host.x && b.x + b.w <= host.x + host.w);
    }
  }
});

test('export refuses a model that references what it does not have', async () => {
  const broken: ProcessModel = { ...sequential, flows: [...sequential.flows, { id: 'f9', from: 'first', to: 'nowhere' }] };
  await assert.rejects(exportBpmn(broken), (e: unknown) => e instanceof BpmnError && e.problems.some((p) => p.includes('nowhere')));
  const clash: ProcessModel = { ...sequential, nodes: sequential.nodes.map((n) => (n.id === 'first' ? { ...n, id: 'demo.sequential-approval' } : n)) };
  await assert.rejects(exportBpmn(clash), BpmnError);
});

// ---- a file drawn in Camunda Modeler ----

test('a file drawn in Camunda Modeler (DI, camunda attributes and extensions, ${} conditions) imports', async () => {
  const m = validateModel(await importBpmn(fixture('camunda-modeler.bpmn')), vc);
  assert.equal(m.key, 'catalog.access-request');
  assert.deepEqual(m.name, { zh: '数据共享申请', en: 'Data sharing request' });
  assert.equal(m.owner, 'SZ-DSJ');
  assert.deepEqual(m.description, { zh: '部门申请使用另一部门的共享数据：数源部门审核，必要时大数据局会签，开通后通知申请部门。', en: '部门申请使用另一部门的共享数据：数源部门审核，必要时大数据局会签，开通后通知申请部门。' });
  const byId = new Map(m.nodes.map((n) => [n.id, n]));
  assert.deepEqual(byId.get('StartEvent_1'), { id: 'StartEvent_1', type: 'start', name: { zh: '提交申请', en: '提交申请' } });
  assert.deepEqual(byId.get('Activity_review'), {
    id: 'Activity_review',
    type: 'userTask',
    name: { zh: '数源部门审核', en: 'Source department review' },
    assignee: { department: '${sourceDepartment}', role: 'data-catalogue' },
    outcomes: ['approve', 'reject', 'consult'],
    deadline: { workingDays: 5 },
    remindBefore: { workingDays: 1 },
    escalateTo: { role: 'department-lead' },
  });
  // P3D with no gusu:workingDays: three calendar days on the clock
  assert.deepEqual(byId.get('Event_remind'), { id: 'Event_remind', type: 'timerBoundary', attachedTo: 'Activity_review', after: { hours: 72 }, interrupting: false, name: { zh: '3天未办', en: '3天未办' } });
  assert.deepEqual(byId.get('Activity_urge'), { id: 'Activity_urge', type: 'serviceTask', handler: 'notify', input: { template: 'urge', to: '${sourceDepartment}' }, name: { zh: '催办', en: 'Urge' } });
  const sign = byId.get('Activity_countersign');
  assert.ok(sign?.type === 'userTask');
  // ${nrOfCompletedInstances/nrOfInstances >= 0.5} of three: at least two
  assert.deepEqual(sign.countersign, { assignees: [{ department: 'SZ-DSJ', role: 'data-catalogue' }, { department: 'SZ-GA' }, { department: 'SZ-MZ' }], completion: { atLeast: 2 }, vetoOutcome: 'object' });
  assert.deepEqual(byId.get('Activity_grant'), { id: 'Activity_grant', type: 'serviceTask', handler: 'catalog.grant', input: { days: 365, scope: { fields: ['name', 'address'], masked: true } }, name: { zh: '开通数据权限', en: 'Grant access' } });
  assert.deepEqual(byId.get('Event_rejected'), { id: 'Event_rejected', type: 'end', terminate: true, name: { zh: '不予共享', en: 'Refused' } });
  assert.ok(!byId.has('TextAnnotation_0v9c1a2'), 'text annotations are left out');
  const flows = new Map(m.flows.map((f) => [f.id, f]));
  assert.equal(flows.get('Flow_approved')?.condition, '${Activity_reviewOutcome == "approve"}');
  assert.equal(flows.get('Flow_rejected')?.isDefault, true);
  assert.equal(flows.get('Flow_rejected')?.condition, undefined);
  assert.deepEqual(flows.get('Flow_1x0k4t2'), { id: 'Flow_1x0k4t2', from: 'Event_remind', to: 'Activity_urge' });
  assert.equal(m.nodes.length, 10);
  assert.equal(m.flows.length, 9);
  // what the platform writes back imports to the same model
  assert.deepStrictEqual(await importBpmn(await exportBpmn(m)), m);
});

test('a Camunda file without the platform data: each missing piece named, with what to add', async () => {
  const problems = await refused(fixture('camunda-unmapped.bpmn'));
  assert.match(problems, /hr\.leave \(bpmn:process\): no owner; add gusu:owner=/);
  assert.match(problems, /Activity_approve \(bpmn:userTask\): no assignee; add gusu:department=.* or gusu:person=.*camunda:candidateGroups is not read/);
  assert.match(problems, /Activity_record \(bpmn:serviceTask\): no handler; add gusu:handler=.*camunda:class is not read/);
  assert.doesNotMatch(problems, /Flow_/, 'no follow-on complaints about the flows');
});

// ---- what is refused ----

test('unsupported elements are refused, each named by id and type', async () => {
  const problems = await refused(fixture('unsupported.bpmn'));
  for (const [id, type] of [
    ['StartMessage', 'bpmn:startEvent'],
    ['Inclusive', 'bpmn:inclusiveGateway'],
    ['Script', 'bpmn:scriptTask'],
    ['Sub', 'bpmn:subProcess'],
    ['Wait', 'bpmn:intermediateCatchEvent'],
    ['Throw', 'bpmn:intermediateThrowEvent'],
    ['OnError', 'bpmn:boundaryEvent'],
    ['OnMessage', 'bpmn:boundaryEvent'],
    ['EndError', 'bpmn:endEvent'],
    ['Plain', 'bpmn:task'],
    ['Send', 'bpmn:sendTask'],
    ['Call', 'bpmn:callActivity'],
    ['EventGateway', 'bpmn:eventBasedGateway'],
  ]) {
    assert.match(problems, new RegExp(`^${id} \\(${type}\\)[^\\n]*not supported`, 'm'), id);
  }
  assert.match(problems, /StartMessage \(bpmn:startEvent\) with bpmn:messageEventDefinition/);
  assert.match(problems, /OnError \(bpmn:boundaryEvent\) with bpmn:errorEventDefinition/);
});

test('more than one process, message flows: refused', async () => {
  assert.match(await refused(fixture('two-pools.bpmn')), /holds 2 processes \(Process_applicant \(bpmn:process\), Process_office \(bpmn:process\)\)/);
  assert.match(await refused(BPMN_HEAD.replace(/<bpmn:process[^>]*>$/, '') + '</bpmn:definitions>'), /holds no process/);
});

test('the rest of what is refused or missing, with what to add', async () => {
  const cases: [string, RegExp][] = [
    [doc(SIMPLE).replace(' gusu:owner="SZ-DSJ"', ''), /no owner; add gusu:owner=/],
    [doc(SIMPLE).replace(' name="演示"', ''), /the process has no name/],
    [doc(SIMPLE).replace(' gusu:department="SZ-GA"', ''), /t \(bpmn:userTask\): no assignee; add gusu:department=/],
    [doc(SIMPLE).replace(' name="办理"', ''), /t \(bpmn:userTask\): a user task needs a name/],
    [doc(SIMPLE).replace('gusu:department=', 'gusu:departmnt="SZ-GA" gusu:role='), /t \(bpmn:userTask\): unknown attribute gusu:departmnt/],
    [doc(SIMPLE).replace('gusu:department="SZ-GA"', 'gusu:department="SZ-GA" gusu:deadline="P1M"'), /years and months have no fixed length/],
    [doc(SIMPLE).replace('gusu:department="SZ-GA"', 'gusu:department="SZ-GA" gusu:deadline="4 hours"'), /"4 hours" is not an ISO 8601 duration/],
    [doc(SIMPLE).replace('gusu:department="SZ-GA"', 'gusu:department="SZ-GA" gusu:deadlineWorkingDays="1.5"'), /expected a whole number of working days/],
    [
      doc(SIMPLE).replace('<bpmn:userTask id="t" name="办理" gusu:department="SZ-GA"/>', '<bpmn:userTask id="t" name="办理"><bpmn:multiInstanceLoopCharacteristics isSequential="true"><bpmn:extensionElements><gusu:assignee department="SZ-GA"/></bpmn:extensionElements></bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>'),
      /a sequential multi-instance is not supported/,
    ],
    [
      doc(SIMPLE).replace('<bpmn:userTask id="t" name="办理" gusu:department="SZ-GA"/>', '<bpmn:userTask id="t" name="办理"><bpmn:multiInstanceLoopCharacteristics><bpmn:extensionElements><gusu:assignee department="SZ-GA"/></bpmn:extensionElements><bpmn:completionCondition xsi:type="bpmn:tFormalExpression">${approved}</bpmn:completionCondition></bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>'),
      /the completion condition "\$\{approved\}" is not understood/,
    ],
    [
      doc(SIMPLE).replace('<bpmn:userTask id="t" name="办理" gusu:department="SZ-GA"/>', '<bpmn:userTask id="t" name="办理"><bpmn:multiInstanceLoopCharacteristics camunda:collection="${x}" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"/></bpmn:userTask>'),
      /a countersign needs its assignees: add <gusu:assignee/,
    ],
    [
      doc(SIMPLE).replace('<bpmn:userTask id="t" name="办理" gusu:department="SZ-GA"/>', '<bpmn:userTask id="t" name="办理"><bpmn:extensionElements><gusu:assignee department="SZ-GA"/></bpmn:extensionElements></bpmn:userTask>'),
      /gusu:assignee elements belong to a countersign/,
    ],
    [doc(SIMPLE).replace('<bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e"/>', '<bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression" language="javascript">x &gt; 1</bpmn:conditionExpression></bpmn:sequenceFlow>'), /a condition in "javascript" is not supported/],
    [doc(SIMPLE) .replace('<bpmn:endEvent id="e"/>', '<bpmn:endEvent id="e"/><bpmn:boundaryEvent id="b" attachedToRef="t"><bpmn:timerEventDefinition><bpmn:timeCycle xsi:type="bpmn:tFormalExpression">R3/PT1H</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:boundaryEvent>'), /timeDate or timeCycle is not supported/],
    [doc(SIMPLE).replace('<bpmn:endEvent id="e"/>', '<bpmn:endEvent id="e"/><bpmn:serviceTask id="svc" gusu:handler="h"><bpmn:extensionElements><gusu:input name="__proto__">1</gusu:input></bpmn:extensionElements></bpmn:serviceTask>'), /a gusu:input needs a name/],
    [doc(SIMPLE).replace('<bpmn:endEvent id="e"/>', `<bpmn:endEvent id="e"/><bpmn:serviceTask id="svc" gusu:handler="h"><bpmn:extensionElements><gusu:input name="deep">${'['.repeat(40)}${']'.repeat(40)}</gusu:input></bpmn:extensionElements></bpmn:serviceTask>`), /nested deeper than 32/],
  ];
  for (const [xml, expected] of cases) assert.match(await refused(xml), expected);
});

test('defaults: the English name is the Chinese one when gusu:nameEn is missing; foreign extensions are ignored', async () => {
  const m = await importBpmn(
    doc(SIMPLE).replace(
      '<bpmn:userTask id="t" name="办理" gusu:department="SZ-GA"/>',
      '<bpmn:userTask id="t" name="办理" gusu:department="SZ-GA" camunda:assignee="${initiator}" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" foo="bar"><bpmn:extensionElements><camunda:taskListener event="create" class="x.Y"/></bpmn:extensionElements></bpmn:userTask>',
    ),
  );
  validateModel(m, vc);
  assert.deepStrictEqual(m, {
    key: 'demo.p',
    name: { zh: '演示', en: '演示' },
    owner: 'SZ-DSJ',
    nodes: [
      { id: 's', type: 'start' },
      { id: 't', type: 'userTask', name: { zh: '办理', en: '办理' }, assignee: { department: 'SZ-GA' } },
      { id: 'e', type: 'end' },
    ],
    flows: [
      { id: 'f1', from: 's', to: 't' },
      { id: 'f2', from: 't', to: 'e' },
    ],
  });
  // a pool: the participant's name stands in for a process without one
  const pooled = await importBpmn(
    doc(SIMPLE)
      .replace(' name="演示"', '')
      .replace('<bpmn:process', '<bpmn:collaboration id="C"><bpmn:participant id="P" name="窗口受理" processRef="demo.p"/></bpmn:collaboration><bpmn:process'),
  );
  assert.deepEqual(pooled.name, { zh: '窗口受理', en: '窗口受理' });
  // a byte order mark and other encodings' declarations are fine: the text is already decoded
  assert.equal((await importBpmn('\ufeff' + doc(SIMPLE).replace('encoding="UTF-8"', 'encoding="GBK"'))).key, 'demo.p');
});

// ---- hostile input ----

test('hostile input: each refused with a clear error, quickly', async () => {
  assert.match(await refused(''), /not XML: no element found/);
  assert.match(await refused('hello, world'), /not XML/);
  assert.match(await refused('{"key": "demo.p"}'), /not XML/);
  assert.match(await refused(undefined as unknown as string), /expected BPMN 2.0 XML as text/);
  assert.match(await refused('<html><body>BPMN</body></html>'), /not a BPMN 2\.0 file: the root element is <html>/);
  assert.match(await refused('<definitions xmlns="urn:other"><process id="p"/></definitions>'), /not a BPMN 2\.0 file: the namespace http:\/\/www\.omg\.org\/spec\/BPMN\/20100524\/MODEL is not declared/);
  assert.match(await refused('<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"><bpmn:process id="p">'), /not valid BPMN 2\.0 at line 1, column \d+: unexpected end of file/);
  assert.match(await refused(doc(SIMPLE).replace('<bpmn:endEvent id="e"/>', '<bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming><!-- no close')), /never closed/);
  assert.match(await refused(doc(SIMPLE).replace('<bpmn:endEvent id="e"/>', '<bpmn:endEvent id="e"/><bpmn:userTaks id="x"/>')), /not valid BPMN 2\.0 at line \d+, column \d+ .*unknown type <bpmn:UserTaks>/);

  // entity expansion and external entities: any DOCTYPE is refused before parsing
  for (const f of ['billion-laughs.bpmn', 'xxe.bpmn']) assert.match(await refused(fixture(f)), /DOCTYPE or ENTITY declaration/);
  assert.match(await refused('<!doctype bpmn:definitions>' + doc(SIMPLE).replace(/^<\?xml[^>]*>/, '')), /DOCTYPE/);

  // size
  const big = doc(SIMPLE + `<!-- ${'x'.repeat(MAX_BPMN_BYTES)} -->`);
  assert.match(await refused(big), /at most 1 MB is accepted/);
  const bigUtf8 = doc(SIMPLE + `<!-- ${'苏'.repeat(Math.ceil(MAX_BPMN_BYTES / 3))} -->`); // under 1 M characters, over 1 MB
  assert.ok(bigUtf8.length < MAX_BPMN_BYTES);
  assert.match(await refused(bigUtf8), /at most 1 MB/);

  // deeply nested junk, in the process and where extensions may go; many elements; many attributes
  assert.match(await refused(doc('<x>'.repeat(100_000) + '</x>'.repeat(100_000))), /nested deeper than 64/);
  assert.match(await refused(doc(`<bpmn:extensionElements>${'<a>'.repeat(5000)}${'</a>'.repeat(5000)}</bpmn:extensionElements>`)), /nested deeper than 64/);
  assert.match(await refused(doc(`<bpmn:extensionElements>${'<a/>'.repeat(100_000)}</bpmn:extensionElements>`)), /more than 20000 XML elements/);
  assert.match(await refused(doc('<x/>'.repeat(30_000))), /more than 20000 XML elements/);
  assert.match(await refused(doc(`<bpmn:startEvent id="s" ${Array.from({ length: 500 }, (_, i) => `a${i}="1"`).join(' ')}/>`)), /more than 100 attributes/);
  assert.match(await refused(doc('<x/>'.repeat(100))), /not valid BPMN 2\.0 .*unrecognized element <x>/);

  // duplicate ids, flows to unknown nodes or to what is not a node
  assert.match(await refused(doc(SIMPLE + '<bpmn:userTask id="t" name="再办" gusu:department="SZ-GA"/>')), /duplicate ID <t>/);
  assert.match(await refused(doc(SIMPLE + '<bpmn:sequenceFlow id="f1" sourceRef="t" targetRef="e"/>')), /duplicate ID <f1>/);
  const dangling = await refused(doc(SIMPLE + '<bpmn:sequenceFlow id="f3" sourceRef="ghost" targetRef="constructor"/>'));
  assert.match(dangling, /f3 \(bpmn:sequenceFlow\): sourceRef "ghost" names no element/);
  assert.match(dangling, /f3 \(bpmn:sequenceFlow\): targetRef "constructor" names no element/);
  assert.match(await refused(doc(SIMPLE + '<bpmn:sequenceFlow id="f3" sourceRef="t" targetRef="f1"/>')), /f3 \(bpmn:sequenceFlow\): its target f1 \(bpmn:sequenceFlow\) is not a node/);
  assert.match(await refused(doc(SIMPLE + '<bpmn:boundaryEvent id="b" attachedToRef="nobody"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>')), /b \(bpmn:boundaryEvent\): attachedToRef "nobody" names no element/);
  assert.match(await refused(doc(SIMPLE.replace('<bpmn:startEvent id="s"/>', '<bpmn:startEvent id="s"/><bpmn:exclusiveGateway id="g" default="missing"/>'))), /g \(bpmn:exclusiveGateway\): default "missing" names no element/);

  // names that mean something to JavaScript are plain ids
  const m = await importBpmn(doc(SIMPLE.replace(/"t"/g, '"__proto__"')));
  assert.equal(m.nodes[1]!.id, '__proto__');
  assert.equal(({} as Record<string, unknown>).department, undefined);
});

test('hostile input: the largest accepted file is read in reasonable time', async () => {
  // 3,000 tasks in a row: within the limits, far over the model's (validateModel refuses it)
  const n = 3000;
  let body = '<bpmn:startEvent id="s"/>';
  for (let i = 0; i < n; i++) body += `<bpmn:userTask id="t${i}" name="第${i}步" gusu:department="SZ-GA"/>`;
  body += '<bpmn:endEvent id="e"/>';
  for (let i = 0; i <= n; i++) body += `<bpmn:sequenceFlow id="f${i}" sourceRef="${i === 0 ? 's' : `t${i - 1}`}" targetRef="${i === n ? 'e' : `t${i}`}"/>`;
  const t0 = Date.now();
  const m = await importBpmn(doc(body));
  assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
  assert.equal(m.nodes.length, n + 2);
  assert.throws(() => validateModel(m, vc), /at most 200/);
});

test('BpmnError lists every problem and reads like ModelError', () => {
  const e = new BpmnError(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
  assert.ok(e instanceof Error);
  assert.deepEqual(e.problems, ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
  assert.equal(e.message, 'BPMN: a; b; c; d; e (and 2 more)');
});
