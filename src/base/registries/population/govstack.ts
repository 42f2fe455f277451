// (being written) the GovStack Digital Registries API over the population registry.
import type { FastifyInstance } from 'fastify';
import type { ModuleContext } from '../../../module.ts';

export const populationGovstackPolicy = [];
export function populationGovstackApi(_app: FastifyInstance, _ctx: ModuleContext): void {}
