/**
 * GET and PATCH /v1/me/profile. Completing the profile (nickname, avatar, birthday) is recorded
 * once, for the profile_complete task; no route says a task is done.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors } from '../http/schemas.ts';
import { PatchProfileBodySchema, ProfileSchema } from './schemas.ts';
import { ProfileService } from './service.ts';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const profiles = new ProfileService({ sql: app.sql, tz: app.config.BUSINESS_TIMEZONE });

  app.get(
    '/v1/me/profile',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['profile'],
        operationId: 'getMyProfile',
        summary: "The member's profile",
        security: [{ bearer: [] }],
        response: { 200: ProfileSchema, ...errors(401) },
      },
    },
    async (request) => profiles.get(request.userId),
  );

  app.patch(
    '/v1/me/profile',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['profile'],
        operationId: 'updateMyProfile',
        summary: 'Set (or clear, with null) nickname, avatar URL, birthday and gender',
        security: [{ bearer: [] }],
        body: PatchProfileBodySchema,
        response: { 200: ProfileSchema, ...errors(400, 401, 503) },
      },
    },
    async (request) => profiles.update(request.userId, request.body),
  );
};

export default routes;
