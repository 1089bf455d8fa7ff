/**
 * Experiment schemas: admin definitions, a member's assignment, events and the results.
 */
import { Type, type Static } from '@sinclair/typebox';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const NullableNumber = (description: string) => Type.Union([Type.Number(), Type.Null()], { description });

export const EXPERIMENT_STATUSES = ['draft', 'running', 'stopped'] as const;
export type ExperimentStatus = (typeof EXPERIMENT_STATUSES)[number];

export const ExperimentKeySchema = Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9_.-]*$' });
const EventNameSchema = Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9_.-]*$' });
const StatusSchema = Type.Union(EXPERIMENT_STATUSES.map((s) => Type.Literal(s)), {
  description: 'draft → running → stopped (draft → stopped too); a stopped experiment stays stopped',
});
const PayloadSchema = Type.Record(Type.String(), Type.Unknown(), { description: 'What the client renders for this variant (any JSON object)' });

export const VariantSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$' }),
    weight: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Relative share of new members (in steps of 1/1000)' }),
    payload: PayloadSchema,
  },
  { additionalProperties: false },
);
export type Variant = Static<typeof VariantSchema>;

const VariantsSchema = Type.Array(VariantSchema, {
  minItems: 2,
  maxItems: 10,
  description: 'Unique names; the first is the control the others are compared against',
});

export const ExperimentSchema = Type.Object({
  key: Type.String(),
  description: Type.String(),
  variants: Type.Array(VariantSchema),
  conversionEvent: Type.String(),
  status: StatusSchema,
  startsAt: Nullable(Type.String({ format: 'date-time' })),
  endsAt: Nullable(Type.String({ format: 'date-time' })),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});
export type Experiment = Static<typeof ExperimentSchema>;

const fields = {
  description: Type.String({ maxLength: 500 }),
  variants: VariantsSchema,
  conversionEvent: EventNameSchema,
  status: StatusSchema,
  startsAt: Nullable(Type.String({ format: 'date-time' })),
  endsAt: Nullable(Type.String({ format: 'date-time' })),
};

export const CreateExperimentBodySchema = Type.Object(
  {
    key: ExperimentKeySchema,
    description: Type.Optional(fields.description),
    variants: fields.variants,
    conversionEvent: fields.conversionEvent,
    status: Type.Optional(fields.status),
    startsAt: Type.Optional(fields.startsAt),
    endsAt: Type.Optional(fields.endsAt),
  },
  { additionalProperties: false },
);
export type CreateExperimentInput = Static<typeof CreateExperimentBodySchema>;

/** Once out of draft, variant names and the conversion event are fixed: exposures and conversions are named by them. */
export const PatchExperimentBodySchema = Type.Partial(Type.Object(fields), { additionalProperties: false, minProperties: 1 });
export type ExperimentPatch = Static<typeof PatchExperimentBodySchema>;

export const ExperimentParamsSchema = Type.Object({ key: ExperimentKeySchema }, { additionalProperties: false });

export const AssignmentSchema = Type.Object({
  variant: Type.String(),
  payload: PayloadSchema,
});

export const EventBodySchema = Type.Object(
  {
    name: EventNameSchema,
    experiment: Type.Optional(ExperimentKeySchema),
    value: Type.Optional(Type.Number({ minimum: -1e12, maximum: 1e12, description: 'A value the event carries (points redeemed, an amount)' })),
  },
  { additionalProperties: false },
);
export type EventInput = Static<typeof EventBodySchema>;

export const EventSchema = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  experiment: Nullable(Type.String()),
  variant: Nullable(Type.String({ description: "The member's variant when the event came; null when not exposed" })),
  value: NullableNumber('The value sent, or null'),
  counted: Type.Boolean({ description: "A conversion of the variant: exposed, the experiment's conversion event, while it ran" }),
  createdAt: Type.String({ format: 'date-time' }),
});
export type EventView = Static<typeof EventSchema>;

export const VariantResultSchema = Type.Object({
  name: Type.String(),
  weight: Type.Integer(),
  exposed: Type.Integer({ description: 'Members given this variant' }),
  converted: Type.Integer({ description: 'Exposed members with at least one counted conversion' }),
  conversionRate: NullableNumber('converted / exposed; null with no exposures'),
  meanValue: NullableNumber('Sum of the counted conversions’ values / exposed (value per exposed member); null with no exposures'),
  lift: Type.Union(
    [
      Type.Object({
        difference: Type.Number({ description: 'Conversion rate minus the control’s (absolute)' }),
        ciLow: Type.Number({ description: '95% confidence interval of the difference (Wald, unpooled)' }),
        ciHigh: Type.Number(),
        relative: NullableNumber('difference / control rate; null when the control rate is 0'),
      }),
      Type.Null(),
    ],
    { description: 'Against the first variant; null for the first variant or when either has no exposures' },
  ),
  zScore: NullableNumber('Two-proportion z (pooled); null as for lift'),
  pValue: NullableNumber('Two-sided p-value of zScore; null as for lift'),
  warning: Nullable(Type.String({ description: 'Set when this variant has fewer exposed members than EXPERIMENT_MIN_SAMPLE' })),
});
export type VariantResult = Static<typeof VariantResultSchema>;

export const ResultsSchema = Type.Object({
  key: Type.String(),
  status: StatusSchema,
  conversionEvent: Type.String(),
  minSample: Type.Integer({ description: 'EXPERIMENT_MIN_SAMPLE' }),
  variants: Type.Array(VariantResultSchema),
});
export type Results = Static<typeof ResultsSchema>;
