/**
 * Push notifications for the API: devices, push records (enqueue, history, dead-letter retry)
 * and broadcasts. The API only records pushes and queues their jobs; the push worker role
 * (workers/push.ts) delivers them. Like the health check, the queues share a duplicate of the
 * API's fail-fast Redis connection: a producer must not hang a request while Redis is away.
 */
import fp from 'fastify-plugin';
import { Queue } from 'bullmq';
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
    const connection = app.redis.duplicate({ enableAutoPipelining: false, enableOfflineQueue: true, autoResendUnfulfilledCommands: true });
    const prefix = app.keys.queuePrefix();
    const pushQueue = new Queue<SendJob>(PUSH_QUEUE, { connection, prefix, skipWaitingForReady: true });
    const broadcastQueue = new Queue<BroadcastJob>(BROADCAST_QUEUE, { connection, prefix, skipWaitingForReady: true });
    app.addHook('onClose', async () => {
      await Promise.all([pushQueue.close(), broadcastQueue.close()]);
      await connection.quit().catch(() => connection.disconnect());
    });
    const pushes = new PushService(app.sql, pushQueue, sendJobOptions(app.config));
    app.decorate('devices', new DeviceService(app.sql, { maxPerMember: app.config.MAX_DEVICES_PER_MEMBER, risk: app.riskRules }));
    app.decorate('pushes', pushes);
    app.decorate('broadcasts', new Broadcasts(app.sql, broadcastQueue, pushes));
  },
  { name: 'push', dependencies: ['config', 'redis', 'db', 'services'] },
);
