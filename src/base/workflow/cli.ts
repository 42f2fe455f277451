// `gusu workflow validate FILE | deploy FILE | list | export KEY [--version N] [--format json|bpmn] | metrics [KEY]`
// for analysts and operators: a process drawn in a BPMN tool is checked, deployed and read back here.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { Config } from '../../config/index.ts';
import { loadCityProfile } from '../../config/profile.ts';
import { withCommandDb, type Db } from '../../db/index.ts';
import { UsageError, wholeNumberFlag, type Command } from '../../module.ts';
import { ROLES } from '../identity/roles.ts';
import { exportBpmn, importBpmn, BpmnError } from './bpmn.ts';
import { loadCalendar } from './calendar.ts';
import { createEngine, deployDefinition, findDefinition, listDefinitions, validationContext, type Engine } from './engine.ts';
import { ModelError, validateModel, type ProcessModel } from './model.ts';
import { processMetrics } from './queries.ts';

const USAGE = [
  'gusu workflow validate FILE            check a process (.json or .bpmn) without deploying it',
  '       gusu workflow deploy FILE              deploy it as the next version (unchanged: nothing happens)',
  '       gusu workflow list                     the latest version of every process',
  '       gusu workflow export KEY [--version N] [--format json|bpmn] [--out FILE]',
  '       gusu workflow metrics [KEY] [--json]   count, median and p90 duration, overdue rate per process and step',
].join('\n');

const OPERATOR = { kind: 'system' as const, id: 'cli', department: '' };
const MAX_FILE = 1024 * 1024;

function engineFor(config: Config, db: Db | null): Engine {
  const profile = loadCityProfile(config.profileDir);
  return createEngine(db as Db, { calendar: loadCalendar(config.profileDir), departments: new Set(profile.departments.map((d) => d.code)), roles: new Set(ROLES.map((r) => r.id)) });
}

async function readModel(file: string | undefined): Promise<{ model: unknown; source: 'json' | 'bpmn' }> {
  if (!file) throw new UsageError('expects a FILE (.json or .bpmn)');
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (!stat?.isFile()) throw new UsageError(`no file ${JSON.stringify(file)}`);
  if (stat.size > MAX_FILE) throw new Error(`${file}: ${stat.size} bytes; a process file is at most 1 MB`);
  const text = fs.readFileSync(file, 'utf8');
  if (file.endsWith('.bpmn') || file.endsWith('.xml') || text.trimStart().startsWith('<')) return { model: await importBpmn(text), source: 'bpmn' };
  try {
    return { model: JSON.parse(text), source: 'json' };
  } catch (err) {
    throw new Error(`${file}: not JSON (${(err as Error).message})`);
  }
}

function withDb<T>(config: Config, fn: (db: Db) => Promise<T>): Promise<T> {
  return withCommandDb(config, { app: 'gusu-workflow', needs: ['workflow.definition'], what: 'the workflow engine' }, fn);
}

const pct = (x: number | null) => (x === null ? '—' : `${(x * 100).toFixed(1)}%`);
const mins = (x: number | null) => (x === null ? '—' : x < 120 ? `${x.toFixed(1)} min` : `${(x / 60).toFixed(1)} h`);

export const workflowCommand: Command = {
  summary: 'validate, deploy, list and export process definitions (JSON or BPMN 2.0), and show their measurements',
  usage: USAGE,
  async run(args, config) {
    const { values, positionals } = (() => {
      try {
        return parseArgs({ args, options: { version: { type: 'string' }, format: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    })();
    const [verb, arg, ...rest] = positionals;
    if (rest.length) throw new UsageError(`unexpected ${JSON.stringify(rest[0])}`);
    try {
      switch (verb) {
        case 'validate': {
          const { model } = await readModel(arg);
          const m = validateModel(model, validationContext(engineFor(config, null)));
          process.stdout.write(`${m.key}: valid (${m.nodes.length} nodes, ${m.flows.length} flows)\n`);
          return 0;
        }
        case 'deploy': {
          const { model, source } = await readModel(arg);
          return await withDb(config, async (db) => {
            const { definition, created } = await deployDefinition(engineFor(config, db), model, OPERATOR, source);
            process.stdout.write(created ? `${definition.key}: deployed as version ${definition.version}\n` : `${definition.key}: unchanged, still version ${definition.version}\n`);
            return 0;
          });
        }
        case 'list':
          if (arg) throw new UsageError(`list takes no argument, got ${JSON.stringify(arg)}`);
          return await withDb(config, async (db) => {
            const defs = await listDefinitions(db);
            for (const d of defs) process.stdout.write(`${d.key}  v${d.version}  ${d.owner}  running ${d.running}  ${d.name.zh} / ${d.name.en}\n`);
            if (!defs.length) process.stdout.write('no process definitions\n');
            return 0;
          });
        case 'export': {
          if (!arg) throw new UsageError('export expects a KEY');
          const version = wholeNumberFlag('version', values.version, 1, 999_999);
          const format = values.format ?? 'bpmn';
          if (format !== 'json' && format !== 'bpmn') throw new UsageError(`--format expects json or bpmn, got ${JSON.stringify(format)}`);
          return await withDb(config, async (db) => {
            const def = await findDefinition(db, arg, version);
            if (!def) throw new Error(`no process definition ${arg}${version ? ` version ${version}` : ''}`);
            const model = (await db.query<{ model: ProcessModel }>('select model from workflow.definition where id = $1', [def.id])).rows[0]!.model;
            const text = format === 'json' ? JSON.stringify(model, null, 2) + '\n' : await exportBpmn(model);
            if (values.out) fs.writeFileSync(values.out, text);
            else process.stdout.write(text);
            return 0;
          });
        }
        case 'metrics':
          return await withDb(config, async (db) => {
            const all = await processMetrics(db, { key: arg });
            if (values.json) process.stdout.write(JSON.stringify(all, null, 2) + '\n');
            else
              for (const p of all) {
                process.stdout.write(`${p.key}  ${p.name.zh}: ${p.instances} instances (${p.running} running, ${p.completed} completed), median ${mins(p.medianMinutes)}, p90 ${mins(p.p90Minutes)}, overdue ${pct(p.overdueRate)}\n`);
                for (const s of p.steps) process.stdout.write(`  ${s.nodeId.padEnd(20)} ${s.tasks} tasks, ${s.open} open, median ${mins(s.medianMinutes)}, p90 ${mins(s.p90Minutes)}, overdue ${pct(s.overdueRate)}\n`);
              }
            return 0;
          });
        default:
          throw new UsageError(verb ? `unknown sub-command ${JSON.stringify(verb)}` : 'expects a sub-command');
      }
    } catch (err) {
      if (err instanceof ModelError || err instanceof BpmnError) {
        process.stderr.write(`gusu workflow: ${arg}: not valid\n${err.problems.map((p) => `  - ${p}`).join('\n')}\n`);
        return 1;
      }
      throw err;
    }
  },
};
