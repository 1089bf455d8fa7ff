/**
 * Builds the Fastify app (tests inject requests into it without a port). Plugins load in three
 * tiers: external (config, redis, db, jwt, rate-limit, swagger), app (domain services), routes.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Env } from './config/env.ts';
import { installErrorHandlers } from './errors/http-errors.ts';
import { installValidation } from './http/validation.ts';
import config from './plugins/external/config.ts';
import redis from './plugins/external/redis.ts';
import db from './plugins/external/db.ts';
import jwt from './plugins/external/jwt.ts';
import rateLimit from './plugins/external/rate-limit.ts';
import swagger from './plugins/external/swagger.ts';
import services from './plugins/app/services.ts';
import redisLagGate from './plugins/app/redis-lag-gate.ts';
import push from './plugins/app/push.ts';
import authRoutes from './auth/routes.ts';
import pointsRoutes from './points/routes.ts';
import goodsRoutes from './goods/routes.ts';
import redemptionRoutes from './redemptions/routes.ts';
import leaderboardRoutes from './leaderboards/routes.ts';
import healthRoutes from './health/routes.ts';
import adminJobRoutes from './admin/jobs-routes.ts';
import benchRoutes from './bench/routes.ts';
import deviceRoutes from './devices/routes.ts';
import pushRoutes from './push/routes.ts';

export interface BuildOptions {
  logger?: boolean;
}

export async function buildApp(env: Env, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger:
      opts.logger === false
        ? false
        : {
            level: env.LOG_LEVEL,
            redact: ['req.headers.authorization', 'req.headers.cookie'],
          },
    // Only a trusted proxy may name the request id; otherwise we mint one.
    requestIdHeader: env.TRUST_PROXY ? 'x-request-id' : false,
    genReqId: () => randomUUID(),
    trustProxy: env.TRUST_PROXY,
    bodyLimit: 64 * 1024,
    // per-request logs only at debug: at flash-sale rates they would cost more than the work
    logController: new LogController({ disableRequestLogging: env.LOG_LEVEL !== 'debug' && env.LOG_LEVEL !== 'trace' }),
  }).withTypeProvider<TypeBoxTypeProvider>();

  installValidation(app);
  installErrorHandlers(app);
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });

  await app.register(config, { env });
  await app.register(redis);
  await app.register(db);
  await app.register(jwt);
  await app.register(rateLimit);
  await app.register(swagger);
  await app.register(services);
  await app.register(redisLagGate);
  await app.register(push);

  await app.register(authRoutes);
  await app.register(pointsRoutes);
  await app.register(goodsRoutes);
  await app.register(redemptionRoutes);
  await app.register(leaderboardRoutes);
  await app.register(healthRoutes);
  await app.register(adminJobRoutes);
  await app.register(deviceRoutes);
  await app.register(pushRoutes);
  if (env.BENCH_ROUTES) await app.register(benchRoutes);
  await app.ready();
  return app;
}
