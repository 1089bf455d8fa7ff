/**
 * Tasks: admin CRUD under /v1/admin/tasks (every write with an Idempotency-Key) and a member's
 * tasks with progress (GET /v1/me/tasks). No route reports progress: it comes from the ledger.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AdminIdempotencyHeadersSchema, adminWrite } from '../admin/idempotency.ts';
import { errors } from '../http/schemas.ts';
import { CreateTaskBodySchema, MemberTaskSchema, PatchTaskBodySchema, TaskParamsSchema, TaskSchema } from './schemas.ts';
import { TaskService } from './service.ts';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const tasks = new TaskService({ sql: app.sql, tz: app.config.BUSINESS_TIMEZONE });
  const admin = { onRequest: app.requireAdmin };
  const adminSchema = { tags: ['admin'], security: [{ bearer: [] }] };

  app.get(
    '/v1/me/tasks',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['tasks'],
        operationId: 'listMyTasks',
        summary: "The member's active tasks with progress in the current period (business day or week)",
        security: [{ bearer: [] }],
        response: { 200: Type.Object({ items: Type.Array(MemberTaskSchema) }), ...errors(401) },
      },
    },
    async (request) => ({ items: await tasks.forMember(request.userId) }),
  );

  app.get(
    '/v1/admin/tasks',
    {
      ...admin,
      schema: {
        ...adminSchema,
        operationId: 'listTasks',
        summary: 'Every task definition, active or not',
        response: { 200: Type.Object({ items: Type.Array(TaskSchema) }), ...errors(401, 403) },
      },
    },
    async () => ({ items: await tasks.list() }),
  );

  app.get(
    '/v1/admin/tasks/:key',
    {
      ...admin,
      schema: {
        ...adminSchema,
        operationId: 'getTask',
        summary: 'One task definition',
        params: TaskParamsSchema,
        response: { 200: TaskSchema, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => tasks.get(request.params.key),
  );

  app.post(
    '/v1/admin/tasks',
    {
      ...admin,
      schema: {
        ...adminSchema,
        operationId: 'createTask',
        summary: 'Define a task: its event, target per period and reward',
        headers: AdminIdempotencyHeadersSchema,
        body: CreateTaskBodySchema,
        response: { 201: TaskSchema, ...errors(400, 401, 403, 409, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 201, { write: (tx) => tasks.create(tx, request.body, request.userId) }),
  );

  app.patch(
    '/v1/admin/tasks/:key',
    {
      ...admin,
      schema: {
        ...adminSchema,
        operationId: 'updateTask',
        summary: "Change a task's title, description, target, reward, window or active flag",
        headers: AdminIdempotencyHeadersSchema,
        params: TaskParamsSchema,
        body: PatchTaskBodySchema,
        response: { 200: TaskSchema, ...errors(400, 401, 403, 404, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, { write: (tx) => tasks.update(tx, request.params.key, request.body, request.userId) }),
  );

  app.delete(
    '/v1/admin/tasks/:key',
    {
      ...admin,
      schema: {
        ...adminSchema,
        operationId: 'deleteTask',
        summary: 'Delete a task and its progress (rewards already owed are still paid)',
        headers: AdminIdempotencyHeadersSchema,
        params: TaskParamsSchema,
        response: { 200: Type.Object({ key: Type.String(), deleted: Type.Literal(true) }), ...errors(400, 401, 403, 404, 422, 503) },
      },
    },
    async (request, reply) => adminWrite(request, reply, 200, { write: (tx) => tasks.remove(tx, request.params.key, request.userId) }),
  );
};

export default routes;
