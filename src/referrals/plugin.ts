/**
 * The referral and payout services of the API: registration uses them to record a referral and
 * pay its sign-up rewards right after the commit (the engagement role pays whatever that misses).
 */
import fp from 'fastify-plugin';
import { PayoutService } from '../rewards/payouts.ts';
import { ReferralService } from './service.ts';

declare module 'fastify' {
  interface FastifyInstance {
    referrals: ReferralService;
    payouts: PayoutService;
  }
}

export default fp(
  async (app) => {
    app.decorate('referrals', new ReferralService(app.sql));
    app.decorate(
      'payouts',
      new PayoutService({ sql: app.sql, points: app.points, pushes: app.pushes, expiryDays: app.config.LOT_EXPIRY_DAYS, log: app.log }),
    );
  },
  { name: 'referrals', dependencies: ['services', 'push'] },
);
