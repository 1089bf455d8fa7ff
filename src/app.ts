/**
 * Builds the Fastify app (tests inject requests into it without a port). Plugins load in three
 * tiers: external (config, redis, db, jwt, rate-limit, swagger), app (domain services), routes.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Env } from './config/env.ts';
import { parseTrustProxy, proxyTrustFn } from './config/addresses.ts';
import { installErrorHandlers } from './errors/http-errors.ts';
import { installValidation } from './http/validation.ts';
import { RECEIVER_REDACT_PATHS } from './crypto/redact.ts';
import { lazyChildLoggerFactory } from './logging/lazy-child.ts';
import { transportFor } from './logging/format.ts';
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
import holdRoutes from './points/holds-routes.ts';
import goodsRoutes from './goods/routes.ts';
import redemptionRoutes from './redemptions/routes.ts';
import leaderboardRoutes from './leaderboards/routes.ts';
import healthRoutes from './health/routes.ts';
import metrics from './metrics/plugin.ts';
import adminJobRoutes from './admin/jobs-routes.ts';
import persistAdminRoutes from './admin/persist-routes.ts';
import engagementRoutes from './engagement/routes.ts';
import benchRoutes from './bench/routes.ts';
import deviceRoutes from './devices/routes.ts';
import pushRoutes from './push/routes.ts';
import lottery from './lottery/plugin.ts';
import lotteryRoutes from './lottery/routes.ts';
import referrals from './referrals/plugin.ts';
import referralRoutes from './referrals/routes.ts';
import taskRoutes from './tasks/routes.ts';
import profileRoutes from './profile/routes.ts';
import orders from './orders/plugin.ts';
import orderRoutes from './orders/routes.ts';
import riskRoutes, { riskPlugin } from './risk/routes.ts';
import transfers from './transfers/plugin.ts';
import transferRoutes from './transfers/routes.ts';
import catalog from './catalog/plugin.ts';
import catalogRoutes from './catalog/routes.ts';
import experimentRoutes, { experimentsPlugin } from './experiments/routes.ts';
import auditRoutes, { auditPlugin } from './audit/routes.ts';
import memberRoutes from './members/routes.ts';
import recommendations from './recommendations/plugin.ts';
import recommendationRoutes from './recommendations/routes.ts';
import ops from './ops/plugin.ts';
import { installRequestMetrics } from './metrics/http-hook.ts';
import opsRoutes from './ops/routes.ts';
import analyticsRoutes, { analyticsPlugin } from './analytics/routes.ts';
import exportRoutes, { exportsPlugin } from './exports/routes.ts';

const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * Callers can send any X-Request-Id: it is taken only from a peer TRUST_PROXY trusts (and only a
 * short printable one, as it lands in every log line); otherwise we mint one.
 */
function requestIdFrom(trust: ReturnType<typeof proxyTrustFn>) {
  return (req: IncomingMessage): string => {
    const given = req.headers['x-request-id'];
    if (trust && typeof given === 'string' && REQUEST_ID.test(given) && trust(req.socket.remoteAddress ?? '', 0)) return given;
    return randomUUID();
  };
}

export interface BuildOptions {
  logger?: boolean;
  /** Where log lines go (stdout by default); tests read them. */
  logStream?: DestinationStream;
}

export async function buildApp(env: Env, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const trust = proxyTrustFn(parseTrustProxy(env.TRUST_PROXY));
  const app = Fastify({
    logger:
      opts.logger === false
        ? false
        : {
            level: env.LOG_LEVEL,
            // receiver info never reaches a log line, as plaintext or as an envelope
            redact: ['req.headers.authorization', 'req.headers.cookie', ...RECEIVER_REDACT_PATHS],
            // JSON lines, or pino-pretty on a developer's terminal (src/logging/format.ts)
            ...(opts.logStream ? { stream: opts.logStream } : transportFor(env.NODE_ENV)),
          },
    requestIdHeader: false,
    genReqId: requestIdFrom(trust),
    trustProxy: trust,
    bodyLimit: 64 * 1024,
    // per-request logs only at debug: at flash-sale rates they would cost more than the work
    logController: new LogController({ disableRequestLogging: env.LOG_LEVEL !== 'debug' && env.LOG_LEVEL !== 'trace' }),
    // the request's child logger is made only when the request logs (src/logging/lazy-child.ts)
    childLoggerFactory: lazyChildLoggerFactory,
  }).withTypeProvider<TypeBoxTypeProvider>();

  installValidation(app);
  installErrorHandlers(app);
  installRequestMetrics(app);
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
  await app.register(metrics);
  await app.register(push);
  await app.register(lottery);
  await app.register(referrals);
  await app.register(orders);
  await app.register(riskPlugin);
  await app.register(transfers);
  await app.register(catalog);
  await app.register(experimentsPlugin);
  await app.register(auditPlugin);
  await app.register(recommendations);
  await app.register(ops);
  await app.register(analyticsPlugin);
  await app.register(exportsPlugin);

  await app.register(authRoutes);
  await app.register(pointsRoutes);
  await app.register(holdRoutes);
  await app.register(goodsRoutes);
  await app.register(redemptionRoutes);
  await app.register(leaderboardRoutes);
  await app.register(healthRoutes);
  await app.register(adminJobRoutes);
  await app.register(persistAdminRoutes);
  await app.register(engagementRoutes);
  await app.register(deviceRoutes);
  await app.register(pushRoutes);
  await app.register(lotteryRoutes);
  await app.register(taskRoutes);
  await app.register(profileRoutes);
  await app.register(referralRoutes);
  await app.register(orderRoutes);
  await app.register(riskRoutes);
  await app.register(transferRoutes);
  await app.register(catalogRoutes);
  await app.register(experimentRoutes);
  await app.register(auditRoutes);
  await app.register(memberRoutes);
  await app.register(recommendationRoutes);
  await app.register(opsRoutes);
  await app.register(analyticsRoutes);
  await app.register(exportRoutes);
  if (env.BENCH_ROUTES) await app.register(benchRoutes);
  await app.ready();
  return app;
}
