/**
 * Orders for the API (app.orders), the payment provider and its alarm, over the services, push
 * and crypto plugins.
 */
import fp from 'fastify-plugin';
import type { Deps } from '../deps.ts';
import { parseEncryptionKeys } from '../crypto/keyring.ts';
import { ReceiverCipher } from '../crypto/receiver.ts';
import { OrderEffects } from './effects.ts';
import { SimulatedProvider, type PaymentProvider } from './payments.ts';
import { CipherReceiverBox } from './receiver.ts';
import { OrderService } from './service.ts';
import { OrderStock } from './stock.ts';
import type { Alarm } from './webhook.ts';

declare module 'fastify' {
  interface FastifyInstance {
    orders: OrderService;
    paymentProvider: PaymentProvider;
    paymentAlarm: Alarm;
  }
}

export default fp(
  async (app) => {
    const deps: Deps = { redis: app.redis, keys: app.keys, sql: app.sql, env: app.config };
    const stock = new OrderStock(deps, app.goods, {
      tierPerMille: (userId) => app.tiers.pricePerMille(userId),
      campaignPerMille: (goodsId) => app.goodsCampaigns.discountFor(goodsId, Date.now()),
    });
    const effects = new OrderEffects(deps, app.points, app.holds, stock, app.log);
    const provider = new SimulatedProvider(app.config.PAYMENT_WEBHOOK_SECRET!);
    const box = new CipherReceiverBox(new ReceiverCipher(parseEncryptionKeys(app.config.ENCRYPTION_KEYS)));
    app.decorate('paymentProvider', provider);
    app.decorate('paymentAlarm', ((kind, detail) => app.log.error({ alarm: kind, ...detail }, `ALARM ${kind}`)) as Alarm);
    app.decorate('orders', new OrderService(deps, app.holds, stock, effects, provider, box, app.pushes));
  },
  { name: 'orders', dependencies: ['config', 'redis', 'db', 'services', 'push'] },
);
