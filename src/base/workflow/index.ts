// 业务协同: the one workflow engine of the platform. Its public face: deploy definitions (JSON or
// BPMN 2.0 XML), start instances, complete tasks, read inboxes, histories and measurements. Other
// modules hold no engine state: they call these functions, or register service handlers by name.
import { fileURLToPath } from 'node:url';
import type { Db } from '../../db/index.ts';
import type { GusuModule, ModuleContext } from '../../module.ts';
import { ROLES } from '../identity/roles.ts';
import { loadCalendar } from './calendar.ts';
import { createEngine, fireTimer, runServiceTask, SERVICE_JOB, TIMER_JOB, type Engine, type TimerPayload } from './engine.ts';
import { workflowApi, workflowPolicy } from './routes.ts';
import { workflowPages } from './pages.ts';
import { workflowCommand } from './cli.ts';
import { deployShippedProcesses } from './shipped.ts';
import { seedDemoWorkflow } from './demo.ts';
import { messagingNotifier } from './notify.ts';

export { canWorkOn, completeTask, deployDefinition, findDefinition, getTask, listDefinitions, registerServiceHandler, startInstance, terminateInstance, WorkflowError } from './engine.ts';
export type { CompleteInput, Engine, Notifier, ServiceHandler, StartInput, Step, TaskNotice, TaskRow } from './engine.ts';
export { inbox, instanceDetail, listInstances, processMetrics } from './queries.ts';
export type { ProcessModel, Duration, Assignee, Countersign } from './model.ts';
export { ModelError, validateModel } from './model.ts';

const engines = new WeakMap<Db, Engine>();

/**
 * The engine of this platform (one per database). Task notices (assigned, reminder, escalation) go
 * through the messaging module's mailboxes when it is part of the platform.
 */
export function engineOf(ctx: Pick<ModuleContext, 'db' | 'profile' | 'config' | 'modules' | 'log'>): Engine {
  let e = engines.get(ctx.db);
  if (!e) {
    e = createEngine(ctx.db, {
      calendar: loadCalendar(ctx.config.profileDir),
      departments: new Set(ctx.profile.departments.map((d) => d.code)),
      roles: new Set(ROLES.map((r) => r.id)),
      notify: ctx.modules.some((m) => m.name === 'messaging') ? messagingNotifier(ctx.log) : null,
    });
    engines.set(ctx.db, e);
  }
  return e;
}

export const workflowModule: GusuModule = {
  name: 'workflow',
  migrations: fileURLToPath(new URL('./migrations', import.meta.url)),
  policies: workflowPolicy,
  jobs: (ctx) => ({
    [TIMER_JOB]: async (job) => {
      await fireTimer(engineOf(ctx), job.payload as TimerPayload);
    },
    [SERVICE_JOB]: async (job) => {
      await runServiceTask(engineOf(ctx), job.payload as { instanceId: string; tokenId: number }, { isLast: job.attempts >= job.maxAttempts });
    },
  }),
  commands: { workflow: workflowCommand },
  internalRoutes(app, ctx) {
    workflowApi(app, ctx, () => engineOf(ctx));
    workflowPages(app, ctx, () => engineOf(ctx));
  },
  async start(ctx) {
    const engine = engineOf(ctx);
    await deployShippedProcesses(ctx, engine);
    // the demo: synthetic instances in the demo staff's inboxes (once per database)
    if (ctx.config.demo) await seedDemoWorkflow(ctx, engine);
  },
};
