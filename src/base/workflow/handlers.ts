// Service handlers are code, registered by name; a process definition refers to them by that name.
// This file imports nothing, so a module can register its handlers while it is being loaded, even
// when the engine itself is still loading (modules that import each other in a cycle).
import type { Db } from '../../db/index.ts';

export type ServiceHandler = (input: Record<string, unknown>, call: { instanceId: string; businessKey: string | null; variables: Readonly<Record<string, unknown>>; db: Db }) => Promise<Record<string, unknown> | void>;

const serviceHandlers = new Map<string, ServiceHandler>();

export function registerServiceHandler(name: string, fn: ServiceHandler): void {
  if (!/^[a-z][a-z0-9.-]{0,63}$/.test(name)) throw new Error(`service handler name ${JSON.stringify(name)}: lower-case words, dots and dashes`);
  serviceHandlers.set(name, fn);
}

export function serviceHandler(name: string): ServiceHandler | undefined {
  return serviceHandlers.get(name);
}

export function serviceHandlerNames(): ReadonlySet<string> {
  return new Set(serviceHandlers.keys());
}

// two built-ins: set variables from the task's input, and do nothing (a placeholder step)
registerServiceHandler('set-variables', async (input) => input);
registerServiceHandler('noop', async () => undefined);
