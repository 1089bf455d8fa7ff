/**
 * A member's push devices: register (idempotent; at most MAX_DEVICES_PER_MEMBER), list, remove.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors, IdParamsSchema } from '../http/schemas.ts';
import { requestContext } from '../risk/rules.ts';

const PlatformSchema = Type.Union([Type.Literal('ios'), Type.Literal('android'), Type.Literal('web')]);

export const DeviceSchema = Type.Object({
  id: Type.Integer(),
  platform: PlatformSchema,
  token: Type.String(),
  createdAt: Type.String({ format: 'date-time', description: 'when the device was last registered' }),
});

export const RegisterDeviceBodySchema = Type.Object(
  {
    platform: PlatformSchema,
    // provider tokens are printable ASCII without spaces (APNs hex, FCM base64url-ish)
    token: Type.String({ minLength: 1, maxLength: 4096, pattern: '^[\\x21-\\x7e]+$' }),
  },
  { additionalProperties: false },
);

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const member = { onRequest: app.authenticate };

  app.post(
    '/v1/me/devices',
    {
      ...member,
      schema: {
        tags: ['devices'],
        operationId: 'registerDevice',
        summary: 'Register a push device (again: refreshed); past MAX_DEVICES_PER_MEMBER the least recently registered is removed',
        security: [{ bearer: [] }],
        body: RegisterDeviceBodySchema,
        response: { 201: DeviceSchema, ...errors(400, 401, 503) },
      },
    },
    async (request, reply) => {
      const device = await app.devices.register(request.userId, request.body.platform, request.body.token, requestContext(request));
      return reply.code(201).send(device);
    },
  );

  app.get(
    '/v1/me/devices',
    {
      ...member,
      schema: {
        tags: ['devices'],
        operationId: 'listMyDevices',
        summary: "The member's push devices",
        security: [{ bearer: [] }],
        response: { 200: Type.Object({ items: Type.Array(DeviceSchema) }), ...errors(401) },
      },
    },
    async (request) => ({ items: await app.devices.list(request.userId) }),
  );

  app.delete(
    '/v1/me/devices/:id',
    {
      ...member,
      schema: {
        tags: ['devices'],
        operationId: 'removeMyDevice',
        summary: "Remove one of the member's push devices",
        security: [{ bearer: [] }],
        params: IdParamsSchema,
        response: { 204: Type.Null(), ...errors(400, 401, 404, 503) },
      },
    },
    async (request, reply) => {
      await app.devices.remove(request.userId, request.params.id);
      return reply.code(204).send(null);
    },
  );
};

export default routes;
