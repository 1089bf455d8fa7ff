/**
 * Orders role: on its schedule, the order pump (src/orders/pump.ts) — abandoned placements, payment
 * timeouts, auto-completion, side effects a killed process left undone, pushes not yet queued,
 * expired integrator holds and coupons.
 */
import type { RedisClient } from '../src/redis/client.ts';
import type { Queue } from 'bullmq';
import type { Env } from '../src/config/env.ts';
import type { Sql } from '../src/db/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import type { RedisGate } from '../src/recovery/redis-gate.ts';
import type { EngagementConfig } from '../src/engagement/config.ts';
import { TierService } from '../src/engagement/tiers.ts';
import { GoodsService } from '../src/goods/service.ts';
import { GoodsCampaignCache } from '../src/catalog/campaigns.ts';
import { PointsService } from '../src/points/service.ts';
import { RulesCache } from '../src/points/rules.ts';
import { HoldService } from '../src/points/holds.ts';
import type { RiskRules } from '../src/risk/rules.ts';
import { RiskService } from '../src/risk/service.ts';
import { PushService } from '../src/push/service.ts';
import { sendJobOptions, type SendJob } from '../src/push/jobs.ts';
import { parseEncryptionKeys } from '../src/crypto/keyring.ts';
import { ReceiverCipher } from '../src/crypto/receiver.ts';
import { OrderEffects } from '../src/orders/effects.ts';
import { SimulatedProvider } from '../src/orders/payments.ts';
import { OrderPump } from '../src/orders/pump.ts';
import { CipherReceiverBox } from '../src/orders/receiver.ts';
import { OrderService } from '../src/orders/service.ts';
import { OrderStock } from '../src/orders/stock.ts';
import type { Logger } from './logger.ts';
import { gatedRun, startScheduledTask } from './scheduled-task.ts';

export async function startOrders(o: {
  connection: RedisClient;
  writer: RedisClient;
  gate: RedisGate;
  keys: Keys;
  sql: Sql;
  env: Env;
  engagement: EngagementConfig;
  riskRules: RiskRules;
  pushQueue: Queue<SendJob>;
  log: Logger;
}) {
  const deps = { redis: o.writer, keys: o.keys, sql: o.sql, env: o.env };
  const rules = new RulesCache(o.sql);
  await rules.refresh();
  rules.start(o.env.RULES_REFRESH_MS);
  const campaigns = new GoodsCampaignCache(o.sql);
  await campaigns.refresh();
  campaigns.start(o.env.RULES_REFRESH_MS);
  const points = new PointsService(deps, rules, o.engagement, o.riskRules);
  const holds = new HoldService(deps, points);
  const tiers = new TierService(deps, points, o.engagement);
  const stock = new OrderStock(deps, new GoodsService(deps), {
    tierPerMille: (userId) => tiers.pricePerMille(userId),
    campaignPerMille: (goodsId) => campaigns.discountFor(goodsId, Date.now()),
  });
  const effects = new OrderEffects(deps, points, holds, stock, o.log);
  const box = new CipherReceiverBox(new ReceiverCipher(parseEncryptionKeys(o.env.ENCRYPTION_KEYS)));
  const pushes = new PushService(o.sql, o.pushQueue, sendJobOptions(o.env));
  const orders = new OrderService(deps, holds, stock, effects, new SimulatedProvider(o.env.PAYMENT_WEBHOOK_SECRET!), box, pushes);
  const pump = new OrderPump(deps, orders, holds, o.log, new RiskService(deps, o.riskRules));
  const task = await startScheduledTask({
    name: 'orders-pump',
    everyMs: o.env.ORDERS_EVERY_MS,
    connection: o.connection,
    keys: o.keys,
    log: o.log,
    lockMs: o.env.TASK_LOCK_MS,
    run: gatedRun(o.gate, async () => {
      const r = await pump.run();
      if (Object.values(r).some((n) => n > 0)) o.log.info(r, 'order pump');
      return r;
    }),
  });
  return {
    close: async () => {
      await task.close();
      rules.stop();
      campaigns.stop();
    },
  };
}
