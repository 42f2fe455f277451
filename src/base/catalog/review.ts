// The provider's review of a request runs on the workflow engine (process catalog.sharing-agreement,
// a city-profile definition): a user task for the provider department with a deadline, then the
// service task below records the outcome as the agreement.
import type { ModuleContext } from '../../module.ts';
import { startInstance, type Engine } from '../workflow/index.ts';
import { registerServiceHandler } from '../workflow/handlers.ts';
import { AGREEMENT_PROCESS, decideAgreement, getAgreement, setProcessInstance, type Agreement, type Decision } from './agreements.ts';

export const DECISION_HANDLER = 'catalog.apply-agreement-decision';

registerServiceHandler(DECISION_HANDLER, async (input, call) => {
  const id = String(input.agreementId ?? call.businessKey ?? '');
  const outcome = String(input.outcome ?? '');
  const items = Array.isArray(input.items) ? input.items.map(String) : [];
  const d: Decision = outcome === 'approve' ? { outcome: 'approve' } : outcome === 'narrow' ? { outcome: 'narrow', items } : { outcome: 'refuse' };
  const decidedBy = typeof input.decidedBy === 'string' && input.decidedBy ? input.decidedBy : 'workflow';
  const a = await call.db.tx((q) => decideAgreement(q, id, d, typeof input.note === 'string' ? input.note : null, decidedBy));
  return { agreementStatus: a.status, itemsGranted: a.itemsGranted };
});

/** Starts (or finds, when retried) the review process of a requested agreement. */
export async function startReview(ctx: Pick<ModuleContext, 'db'>, engine: Engine, a: Agreement): Promise<Agreement> {
  const step = await startInstance(
    engine,
    {
      key: AGREEMENT_PROCESS,
      businessKey: a.id,
      department: a.consumer,
      idempotencyKey: `catalog-agreement:${a.id}`,
      variables: { agreementId: a.id, entry: a.entry, entryName: a.entryName, provider: a.provider, consumer: a.consumer, itemsRequested: a.itemsRequested, purpose: a.purpose },
    },
    { kind: 'system', id: 'catalog', department: a.consumer },
  );
  await setProcessInstance(ctx.db, a.id, step.instanceId);
  return (await getAgreement(ctx.db, a.id))!;
}

/** Requests whose review did not start (a crash between the two transactions): start it now. */
export async function repairReviews(ctx: Pick<ModuleContext, 'db'>, engine: Engine): Promise<number> {
  const { rows } = await ctx.db.query<{ id: string }>(`select id from catalog.agreement where status = 'requested' and process_instance is null and requested_at < now() - interval '10 seconds'`);
  for (const r of rows) await startReview(ctx, engine, (await getAgreement(ctx.db, r.id))!);
  return rows.length;
}
