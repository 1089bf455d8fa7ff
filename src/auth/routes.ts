/**
 * POST /v1/auth/register, POST /v1/auth/login. Both take an attempt slot (src/auth/attempts.ts)
 * before hashing a password: the hash is the expensive part, and guessing is what is limited.
 * Failed logins are counted for the audit's burst events (src/audit/security.ts).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DomainError, type ErrorCode } from '../errors/domain-error.ts';
import { errors } from '../http/schemas.ts';
import { AuthAttempts } from './attempts.ts';
import type { User } from './service.ts';
import { requestContext } from '../risk/rules.ts';
import { assessRegistration } from '../risk/assess.ts';
import { auditContextOf } from '../audit/context.ts';
import { recordLogin } from '../analytics/logins.ts';

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
    referralCode: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 32,
        description: "An existing member's referral code (any case; I/L read as 1, O as 0); unknown: 400 REFERRAL_CODE_INVALID",
      }),
    ),
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

const LoginSessionSchema = Type.Object({
  user: UserSchema,
  accessToken: Type.String(),
  dailyBonus: Type.Integer({ minimum: 0, description: 'Points credited by this login (the first of the business day), else 0' }),
});

const SessionSchema = Type.Object({ user: UserSchema, accessToken: Type.String() });

function refuse(reply: FastifyReply, code: ErrorCode, message: string, retryAfterSeconds: number): never {
  reply.header('retry-after', String(retryAfterSeconds));
  throw new DomainError(code, `${message}, retry in ${retryAfterSeconds} s`);
}

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const attempts = new AuthAttempts(app.redis, app.keys, app.config, app.exemptFromIpLimits);
  const issue = (user: User) => ({
    user,
    accessToken: app.jwt.sign({ sub: String(user.id), role: user.role, username: user.username }),
  });

  app.post(
    '/v1/auth/register',
    {
      schema: {
        tags: ['auth'],
        operationId: 'register',
        summary: 'Create a member account (optionally with a referral code) and sign in',
        security: [],
        body: RegisterBodySchema,
        response: { 201: SessionSchema, ...errors(400, 409, 429, 503) },
      },
    },
    async (request, reply) => {
      const { username, email, password, referralCode } = request.body;
      const slot = await attempts.register(request.ip);
      if (!slot.ok) refuse(reply, 'RATE_LIMITED', 'Too many registrations from this address', slot.retryAfterSeconds);
      // referral (issue 7): the code is checked before anything is created; the member's own code,
      // the referral and both sign-up rewards (as payouts) commit with the account
      let referralPayouts: number[] = [];
      const create = async () => {
        const referrerId = referralCode === undefined ? null : await app.referrals.resolve(referralCode);
        return app.authService.register(username, email, password, 'member', async (tx, created) => {
          // IP_MULTI_ACCOUNT: counted with the account, in its transaction (a freeze reaches Redis at hydration)
          await assessRegistration(tx, created.id, requestContext(request), app.riskRules);
          await app.referrals.assignCode(tx, created.id);
          if (referrerId !== null) referralPayouts = await app.referrals.attach(tx, created.id, referrerId);
        });
      };
      const user = await create().catch(async (err: unknown) => {
        // refused input (a taken email, an unknown code) keeps the slot: probing is what it limits
        if (!(err instanceof DomainError)) await slot.release();
        throw err;
      });
      await app.points.hydrate(user.id);
      await app.points.signupBonus(user.id);
      // whatever this misses (Redis away, the process dying here) the engagement role pays
      await app.payouts.payNow(referralPayouts);
      return reply.code(201).send(issue(user));
    },
  );

  app.post(
    '/v1/auth/login',
    {
      schema: {
        tags: ['auth'],
        operationId: 'login',
        summary: 'Log in; the first successful login of a business day credits the daily login bonus',
        security: [],
        body: LoginBodySchema,
        response: { 200: LoginSessionSchema, ...errors(400, 401, 429, 503) },
      },
    },
    async (request, reply) => {
      const { email, password } = request.body;
      // a burst of failures is a security event (src/audit/security.ts); counting it never fails the login's answer
      const failed = () =>
        app.loginBursts.failed(email, auditContextOf(request)).catch((err: unknown) => request.log.warn({ err }, 'login burst not counted'));
      const slot = await attempts.login(request.ip, email);
      if (!slot.ok) {
        await failed();
        refuse(reply, 'TOO_MANY_LOGIN_ATTEMPTS', 'Too many failed logins', slot.retryAfterSeconds);
      }
      const user = await app.authService.login(email, password).catch(async (err: unknown) => {
        // only a wrong password keeps its slot; an outage is not a guess
        if (!(err instanceof DomainError && err.code === 'INVALID_CREDENTIALS')) await slot.release();
        else await failed();
        throw err;
      });
      await slot.release();
      // activity for analytics; never fails the login
      await recordLogin(app.sql, user.id, app.config.BUSINESS_TIMEZONE).catch((err: unknown) => request.log.warn({ err }, 'login not recorded'));
      return { ...issue(user), dailyBonus: await app.dailyLogin.credit(user.id, request.log, requestContext(request)) };
    },
  );
};

export default routes;
