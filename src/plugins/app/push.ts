/**
 * Push notifications for the API: devices, push records (enqueue, history, dead-letter retry)
 * and broadcasts. The API only records pushes and queues their jobs; the push worker role
 * (workers/push.ts) delivers them. The queues are on copies of the API's fail-fast Redis
 * connection (src/redis/api-queue.ts): a producer must not hang a request while Redis is away.
 */
import fp from 'fastify-plugin';
import { apiQueue } from '../../redis/api-queue.ts';
import { DeviceService } from '../../devices/service.ts';
import { Broadcasts, type BroadcastJob } from '../../push/broadcast.ts';
import { BROADCAST_QUEUE, PUSH_QUEUE, sendJobOptions, type SendJob } from '../../push/jobs.ts';
import { PushService } from '../../push/service.ts';

declare module 'fastify' {
  interface FastifyInstance {
    devices: DeviceService;
    pushes: PushService;
    broadcasts: Broadcasts;
  }
}

export default fp(
  async (app) => {
    const logError = (queue: string) => (err: Error) => app.log.warn({ err, queue }, 'queue error');
    const push = apiQueue<SendJob>(app.redis, PUSH_QUEUE, app.keys.queuePrefix(PUSH_QUEUE), logError(PUSH_QUEUE));
    const broadcast = apiQueue<BroadcastJob>(app.redis, BROADCAST_QUEUE, app.keys.queuePrefix(BROADCAST_QUEUE), logError(BROADCAST_QUEUE));
    app.addHook('onClose', async () => {
      await Promise.all([push.close(), broadcast.close()]);
    });
    const pushQueue = push.queue;
    const broadcastQueue = broadcast.queue;
    const pushes = new PushService(app.sql, pushQueue, sendJobOptions(app.config));
    app.decorate('devices', new DeviceService(app.sql, { maxPerMember: app.config.MAX_DEVICES_PER_MEMBER, risk: app.riskRules }));
    app.decorate('pushes', pushes);
    app.decorate('broadcasts', new Broadcasts(app.sql, broadcastQueue, pushes));
  },
  { name: 'push', dependencies: ['config', 'redis', 'db', 'services'] },
);
