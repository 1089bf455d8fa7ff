/**
 * Task schemas: admin definitions and a member's view of their progress.
 */
import { Type } from '@sinclair/typebox';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const TASK_EVENTS = ['checkin', 'share', 'review', 'redeem', 'spend_points', 'earn_points', 'invite', 'profile_complete'] as const;
export const TASK_FREQUENCIES = ['daily', 'weekly', 'once'] as const;

const FrequencySchema = Type.Union(TASK_FREQUENCIES.map((f) => Type.Literal(f)));
const EventSchema = Type.Union(TASK_EVENTS.map((e) => Type.Literal(e)), {
  description:
    'checkin: check-in ops; share, review: earns of that action; redeem: redemptions; spend_points / earn_points: ' +
    'points spent / earned (task rewards and refunds excluded); invite: members who signed up with your code; ' +
    'profile_complete: nickname, avatar and birthday set',
});

export const TaskKeySchema = Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9_.-]+$' });

export const TaskSchema = Type.Object({
  key: Type.String(),
  title: Type.String(),
  description: Type.String(),
  frequency: FrequencySchema,
  event: EventSchema,
  target: Type.Integer(),
  reward: Type.Integer(),
  active: Type.Boolean(),
  startsAt: Nullable(Type.String({ format: 'date-time' })),
  endsAt: Nullable(Type.String({ format: 'date-time' })),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

const fields = {
  title: Type.String({ minLength: 1, maxLength: 100 }),
  description: Type.String({ maxLength: 500 }),
  target: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
  reward: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  active: Type.Boolean(),
  startsAt: Nullable(Type.String({ format: 'date-time' })),
  endsAt: Nullable(Type.String({ format: 'date-time' })),
};

export const CreateTaskBodySchema = Type.Object(
  {
    key: TaskKeySchema,
    title: fields.title,
    description: Type.Optional(fields.description),
    frequency: FrequencySchema,
    event: EventSchema,
    target: fields.target,
    reward: fields.reward,
    active: Type.Optional(fields.active),
    startsAt: Type.Optional(fields.startsAt),
    endsAt: Type.Optional(fields.endsAt),
  },
  { additionalProperties: false },
);

/** The key, frequency and event are fixed once created: progress rows are named by them. */
export const PatchTaskBodySchema = Type.Partial(Type.Object(fields), { additionalProperties: false, minProperties: 1 });

export const TaskParamsSchema = Type.Object({ key: TaskKeySchema }, { additionalProperties: false });

export const MemberTaskSchema = Type.Object({
  key: Type.String(),
  title: Type.String(),
  description: Type.String(),
  frequency: FrequencySchema,
  event: EventSchema,
  reward: Type.Integer(),
  progress: Type.Integer({ description: 'Counted in this period, at most the target' }),
  target: Type.Integer(),
  status: Type.Union([Type.Literal('in_progress'), Type.Literal('completed')]),
  periodStart: Nullable(Type.String({ format: 'date-time', description: 'null for a once task without a start' })),
  periodEnd: Nullable(Type.String({ format: 'date-time', description: 'null for a once task without an end' })),
});

export type TaskEvent = (typeof TASK_EVENTS)[number];
export type TaskFrequency = (typeof TASK_FREQUENCIES)[number];
