// How task notices reach people: through the messaging module's mailboxes (and whatever channels a
// person's preferences add), inside the engine's transaction, so a rolled-back command sends nothing.
// A task for a person goes to them; a task for a department goes to its staff holding the task's
// role (or all its staff); an escalation goes to the holders of the escalation role.
import type { FastifyBaseLogger } from 'fastify';
import { sendNotice } from '../messaging/index.ts';
import { staffHolding } from '../identity/index.ts';
import type { Notifier, TaskNotice } from './engine.ts';

const WORDS: Record<TaskNotice['kind'], { zh: string; en: string }> = {
  assigned: { zh: '新待办', en: 'New task' },
  reminder: { zh: '待办即将到期', en: 'Task due soon' },
  escalated: { zh: '超期督办', en: 'Overdue task escalated' },
};

function shanghai(d: Date | null, lang: 'zh' | 'en'): string {
  if (!d) return lang === 'zh' ? '无' : 'none';
  return new Intl.DateTimeFormat(lang === 'zh' ? 'zh-CN' : 'en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'Asia/Shanghai' }).format(d);
}

/**
 * A notice that cannot be sent must not undo the task it is about: it runs under a savepoint and a
 * failure is rolled back to it and logged, and the command goes on.
 */
export function messagingNotifier(log: Pick<FastifyBaseLogger, 'warn'>): Notifier {
  return async (q, n) => {
    await q.query('savepoint workflow_notice');
    try {
      await sendTaskNotice(q, n);
      await q.query('release savepoint workflow_notice');
    } catch (err) {
      await q.query('rollback to savepoint workflow_notice');
      log.warn({ task: n.task.id, kind: n.kind, err: (err as Error).message }, 'task notice not sent');
    }
  };
}

const sendTaskNotice: Notifier = async (q, n) => {
  const t = n.task;
  const role = n.kind === 'escalated' ? t.escalatedTo : t.role;
  const to = t.person && n.kind !== 'escalated' ? [t.person] : t.department ? await staffHolding(q, t.department, role) : [];
  if (!to.length || !t.department) return;
  const w = WORDS[n.kind];
  const link = `/console/tasks/${t.id}`;
  await sendNotice(q, {
    from: { department: t.department, system: 'workflow' },
    to: to.map((staffAccountId) => ({ staffAccountId })),
    subject: { zh: `${w.zh}：${t.name.zh}`, en: `${w.en}: ${t.name.en}` },
    body: {
      zh: `${w.zh}：${t.name.zh}（流程 ${t.key}）。办理期限：${shanghai(t.dueAt, 'zh')}。请在工作台办理：${link}`,
      en: `${w.en}: ${t.name.en} (process ${t.key}). Due: ${shanghai(t.dueAt, 'en')}. Handle it in the workbench: ${link}`,
    },
  });
};
