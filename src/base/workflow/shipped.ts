// The city profile's processes (profiles/<city>/processes/*.json or *.bpmn), deployed at start-up:
// an unchanged file is a no-op, a changed one becomes the next version (running instances keep theirs).
import fs from 'node:fs';
import path from 'node:path';
import type { ModuleContext } from '../../module.ts';
import { importBpmn } from './bpmn.ts';
import { deployDefinition, type Engine } from './engine.ts';

const SYSTEM = { kind: 'system' as const, id: 'workflow.profile', department: '' };

export async function deployShippedProcesses(ctx: Pick<ModuleContext, 'config' | 'log'>, engine: Engine): Promise<{ file: string; key: string; version: number; created: boolean }[]> {
  const dir = path.join(ctx.config.profileDir, 'processes');
  if (!fs.existsSync(dir)) return [];
  const out: { file: string; key: string; version: number; created: boolean }[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => /\.(json|bpmn)$/.test(f)).sort()) {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    try {
      const model = file.endsWith('.bpmn') ? await importBpmn(text) : JSON.parse(text);
      const { definition, created } = await deployDefinition(engine, model, SYSTEM, file.endsWith('.bpmn') ? 'bpmn' : 'json');
      if (created) ctx.log.info({ key: definition.key, version: definition.version, file }, 'process definition deployed');
      out.push({ file, key: definition.key, version: definition.version, created });
    } catch (err) {
      // a city profile that ships a broken process must not start: say which file and why
      throw new Error(`${path.join(dir, file)}: ${(err as Error).message}`);
    }
  }
  return out;
}
