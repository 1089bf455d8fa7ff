/**
 * POST /v1/auth/register, POST /v1/auth/login.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors } from '../http/schemas.ts';
import type { User } from './service.ts';

export const UserSchema = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  email: Type.String(),
  role: Type.Union([Type.Literal('member'), Type.Literal('admin')]),
});

export const RegisterBodySchema = Type.Object(
  {
    username: Type.String({ minLength: 3, maxLength: 32, pattern: '^[A-Za-z0-9_]+$' }),
    email: Type.String({ format: 'email', maxLength: 254 }),
    password: Type.String({ minLength: 8, maxLength: 128 }),
  },
  { additionalProperties: false },
);

export const LoginBodySchema = Type.Object(
  {
    email: Type.String({ minLength: 3, maxLength: 254 }),
    password: Type.String({ minLength: 1, maxLength: 128 }),
  },
  { additionalProperties: false },
);

const SessionSchema = Type.Object({ user: UserSchema, accessToken: Type.String() });

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const issue = (user: User) => ({
    user,
    accessToken: app.jwt.sign({ sub: String(user.id), role: user.role, username: user.username }),
  });

  app.post(
    '/v1/auth/register',
    {
      schema: {
        tags: ['auth'],
        body: RegisterBodySchema,
        response: { 201: SessionSchema, ...errors(400, 409) },
      },
    },
    async (request, reply) => {
      const { username, email, password } = request.body;
      const user = await app.authService.register(username, email, password);
      await app.points.hydrate(user.id);
      await app.points.signupBonus(user.id);
      return reply.code(201).send(issue(user));
    },
  );

  app.post(
    '/v1/auth/login',
    { schema: { tags: ['auth'], body: LoginBodySchema, response: { 200: SessionSchema, ...errors(400, 401) } } },
    async (request) => {
      const user = await app.authService.login(request.body.email, request.body.password);
      return issue(user);
    },
  );
};

export default routes;
