/**
 * GET /v1/me/referral: the member's code and what the programme brought them. Sign-up with a code
 * is POST /v1/auth/register's `referralCode`.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors } from '../http/schemas.ts';

export const ReferralSummarySchema = Type.Object({
  code: Type.String({ description: '8 Crockford base32 characters' }),
  invited: Type.Integer({ description: 'Members who signed up with your code' }),
  level2Invited: Type.Integer({ description: 'Members who signed up with the code of someone you invited' }),
  earned: Type.Integer({ description: 'Points paid by the programme (sign-up rewards, commissions) net of reversals' }),
});

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/me/referral',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['referrals'],
        operationId: 'getMyReferral',
        summary: "The member's referral code, members invited (two levels) and points earned from them",
        security: [{ bearer: [] }],
        response: { 200: ReferralSummarySchema, ...errors(401) },
      },
    },
    async (request) => app.referrals.summary(request.userId),
  );
};

export default routes;
