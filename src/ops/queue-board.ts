/**
 * The queue dashboard (@bull-board) at /admin/queues: every BullMQ queue of the system — persist,
 * push, broadcast, admin-jobs and each scheduled task's queue — for admins only (a bearer token
 * or the console's cookie, checked on every request; src/ops/admin-session.ts). A browser that
 * comes without either is sent to the console's login.
 *
 * The queues are the API's kind (src/redis/api-queue.ts): one copy of the API's fail-fast
 * connection, shared by all of them (a Queue issues no blocking commands), so the dashboard adds
 * one connection per API process. The persist queue is read-only here: a failed persist batch is
 * parked, its ops exist nowhere else, and the parked-batch endpoints are how it is retried.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import type { Queue } from 'bullmq';
import { ADMIN_JOBS_QUEUE, PERSIST_QUEUE, SCHEDULED_TASKS, taskQueueName } from '../queues.ts';
import { BROADCAST_QUEUE, PUSH_QUEUE } from '../push/jobs.ts';
import { apiQueueConnection, apiQueueOn } from '../redis/api-queue.ts';
import { sendError } from '../errors/http-errors.ts';
import { DomainError } from '../errors/domain-error.ts';
import { CONSOLE_COOKIE, cookieValue, requireAdminOrConsoleCookie } from './admin-session.ts';

export const QUEUE_BOARD_PATH = '/admin/queues';

/** Every queue the dashboard shows, with what it is for. */
export function boardQueueNames(): Array<{ name: string; description: string }> {
  return [
    { name: PERSIST_QUEUE, description: 'Outbox batches to write to Postgres (read-only here: retry parked batches via /v1/admin/persist/parked/retry)' },
    { name: PUSH_QUEUE, description: 'Push deliveries to devices' },
    { name: BROADCAST_QUEUE, description: 'Broadcast fan-outs' },
    { name: ADMIN_JOBS_QUEUE, description: 'Operator-triggered jobs (rebuild)' },
    ...SCHEDULED_TASKS.map((t) => ({ name: taskQueueName(t), description: `Scheduled task ${t}` })),
  ];
}

export async function registerQueueBoard(app: FastifyInstance): Promise<void> {
  const connection = apiQueueConnection(app.redis);
  const queues: Queue[] = boardQueueNames().map(({ name }) => {
    const queue = apiQueueOn(connection, name, app.keys.queuePrefix(name));
    queue.on('error', (err) => app.log.debug({ err, queue: name }, 'queue dashboard queue error'));
    return queue;
  });
  app.addHook('onClose', async () => {
    await Promise.all(queues.map((q) => q.close()));
    await connection.quit().catch(() => connection.disconnect());
  });

  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(QUEUE_BOARD_PATH);
  const described = new Map(boardQueueNames().map((q) => [q.name, q.description]));
  createBullBoard({
    queues: queues.map(
      (q) => new BullMQAdapter(q, { readOnlyMode: q.name === PERSIST_QUEUE, description: described.get(q.name) ?? '' }),
    ),
    // @bull-board/fastify 9.10.1 carries its own copy of @bull-board/api 9.10.1, whose private
    // fields make its adapter type differ from 9.10.2's; the interface itself is the same
    serverAdapter: serverAdapter as unknown as Parameters<typeof createBullBoard>[0]['serverAdapter'],
    options: { uiConfig: { boardTitle: 'Points Mall queues' } },
  });

  await app.register(
    async (scoped) => {
      scoped.addHook('onRequest', async (request, reply) => {
        const credentials = request.headers.authorization !== undefined || cookieValue(request.headers.cookie, CONSOLE_COOKIE) !== undefined;
        const browser = request.method === 'GET' && (request.headers.accept ?? '').includes('text/html');
        if (!credentials && browser) return reply.redirect(`/console/?next=${encodeURIComponent(QUEUE_BOARD_PATH)}`);
        try {
          await requireAdminOrConsoleCookie(app, request);
        } catch (err) {
          // the dashboard's own error handler would turn this into a 500: answer it here
          return sendError(request, reply, err instanceof DomainError ? err : new DomainError('UNAUTHORIZED', 'Not signed in'));
        }
      });
      // the dashboard's page asks Google for its fonts: served from here, it loads nothing from
      // elsewhere (the system's sans-serif stands in)
      scoped.addHook('onSend', async (_request, reply, payload) =>
        typeof payload === 'string' && String(reply.getHeader('content-type') ?? '').startsWith('text/html')
          ? payload.replace(/<link[^>]+href="https:\/\/fonts\.googleapis\.com[^>]*>/g, '')
          : payload,
      );
      await scoped.register(serverAdapter.registerPlugin(), { prefix: QUEUE_BOARD_PATH });
    },
  );
}
