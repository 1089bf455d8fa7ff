/**
 * A/B experiments: admin definitions (audited, inside the transaction of their Idempotency-Key),
 * members' sticky assignments, events and conversions, and the results.
 *
 * Assignment: experiment_exposures (one row per member and experiment) is the truth; the first
 * call inserts it, a concurrent first call finds the row (the unique key decides, exactly one
 * exposure), and the variant is cached in the member's slot in Redis. A cache that is lost or
 * unreachable costs a Postgres read, never a different variant.
 */
import type postgres from 'postgres';
import type { Deps } from '../deps.ts';
import type { Tx } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import { assignVariant } from './assign.ts';
import { compareProportions } from './stats.ts';
import type {
  CreateExperimentInput,
  EventInput,
  EventView,
  Experiment,
  ExperimentPatch,
  ExperimentStatus,
  Results,
  Variant,
  VariantResult,
} from './schemas.ts';

/** How long a cached assignment lives in Redis; Postgres refills it after. */
const ASSIGNMENT_CACHE_S = 30 * 86_400;

/** The status changes an operator may make; staying put is always allowed. */
const TRANSITIONS: Record<ExperimentStatus, readonly ExperimentStatus[]> = {
  draft: ['running', 'stopped'],
  running: ['stopped'],
  stopped: [],
};

interface ExperimentRow {
  key: string;
  description: string;
  variants: Variant[];
  conversionEvent: string;
  status: ExperimentStatus;
  startsAt: Date | null;
  endsAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

interface EventRow {
  id: number;
  requestHash: string;
  name: string;
  experiment: string | null;
  variant: string | null;
  value: number | null;
  counted: boolean;
  createdAt: Date;
}

const COLUMNS = `key, description, variants, conversion_event AS "conversionEvent", status, starts_at AS "startsAt",
  ends_at AS "endsAt", created_at AS "createdAt", updated_at AS "updatedAt"`;

/** Running and inside its window, by the database's clock (one clock for every API process). */
const LIVE = `(status = 'running' AND (starts_at IS NULL OR starts_at <= now()) AND (ends_at IS NULL OR ends_at > now()))`;

const EVENT_COLUMNS = `id, request_hash AS "requestHash", name, experiment_key AS experiment, variant, value, counted, created_at AS "createdAt"`;

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

function present(r: ExperimentRow): Experiment {
  return { ...r, startsAt: iso(r.startsAt), endsAt: iso(r.endsAt), createdAt: r.createdAt.toISOString(), updatedAt: r.updatedAt.toISOString() };
}

function presentEvent(r: EventRow): EventView {
  return { id: r.id, name: r.name, experiment: r.experiment, variant: r.variant, value: r.value, counted: r.counted, createdAt: r.createdAt.toISOString() };
}

function checkVariants(variants: readonly Variant[]): void {
  const names = new Set(variants.map((v) => v.name));
  if (names.size !== variants.length) throw new DomainError('VALIDATION_FAILED', 'Variant names must be unique');
}

function checkWindow(startsAt: string | null, endsAt: string | null): void {
  if (startsAt !== null && endsAt !== null && Date.parse(endsAt) <= Date.parse(startsAt)) {
    throw new DomainError('VALIDATION_FAILED', 'endsAt must be after startsAt');
  }
}

const notFound = (key: string) => new DomainError('EXPERIMENT_NOT_FOUND', `No experiment with key "${key}"`);

export class ExperimentService {
  constructor(private readonly deps: Deps) {}

  // ---- admin ----

  async list(): Promise<Experiment[]> {
    const { sql } = this.deps;
    const rows = await sql<ExperimentRow[]>`SELECT ${sql.unsafe(COLUMNS)} FROM experiments ORDER BY key`;
    return rows.map(present);
  }

  async get(key: string): Promise<Experiment> {
    const { sql } = this.deps;
    const [row] = await sql<ExperimentRow[]>`SELECT ${sql.unsafe(COLUMNS)} FROM experiments WHERE key = ${key}`;
    if (!row) throw notFound(key);
    return present(row);
  }

  async createTx(tx: Tx, input: CreateExperimentInput, actorId: number): Promise<Experiment> {
    checkVariants(input.variants);
    checkWindow(input.startsAt ?? null, input.endsAt ?? null);
    const [row] = await tx<ExperimentRow[]>`
      INSERT INTO experiments (key, description, variants, conversion_event, status, starts_at, ends_at)
      VALUES (${input.key}, ${input.description ?? ''}, ${tx.json(input.variants as postgres.JSONValue)}, ${input.conversionEvent},
              ${input.status ?? 'draft'}, ${input.startsAt ?? null}, ${input.endsAt ?? null})
      ON CONFLICT (key) DO NOTHING
      RETURNING ${tx.unsafe(COLUMNS)}`;
    if (!row) throw new DomainError('EXPERIMENT_KEY_TAKEN', `An experiment with key "${input.key}" exists`);
    await this.audit(tx, actorId, 'experiment.create', input.key, input);
    return present(row);
  }

  /**
   * Weights, payloads, description and window may change at any time (weights move only members
   * not yet assigned); variant names and the conversion event only in draft; the status only forward.
   */
  async updateTx(tx: Tx, key: string, patch: ExperimentPatch, actorId: number): Promise<Experiment> {
    const [current] = await tx<ExperimentRow[]>`SELECT ${tx.unsafe(COLUMNS)} FROM experiments WHERE key = ${key} FOR UPDATE`;
    if (!current) throw notFound(key);
    const status = patch.status ?? current.status;
    if (status !== current.status && !TRANSITIONS[current.status].includes(status)) {
      throw new DomainError('EXPERIMENT_STATE_CONFLICT', `A ${current.status} experiment cannot become ${status}`);
    }
    const variants = patch.variants ?? current.variants;
    checkVariants(variants);
    if (current.status !== 'draft') {
      const names = (vs: readonly Variant[]) => vs.map((v) => v.name).join('\u0000');
      if (names(variants) !== names(current.variants)) {
        throw new DomainError('EXPERIMENT_STATE_CONFLICT', `The variants of a ${current.status} experiment keep their names and order; only weights and payloads change`);
      }
      if (patch.conversionEvent !== undefined && patch.conversionEvent !== current.conversionEvent) {
        throw new DomainError('EXPERIMENT_STATE_CONFLICT', `The conversion event of a ${current.status} experiment cannot change`);
      }
    }
    const startsAt = patch.startsAt !== undefined ? patch.startsAt : iso(current.startsAt);
    const endsAt = patch.endsAt !== undefined ? patch.endsAt : iso(current.endsAt);
    checkWindow(startsAt, endsAt);
    const [row] = await tx<ExperimentRow[]>`
      UPDATE experiments SET description = ${patch.description ?? current.description},
        variants = ${tx.json(variants as postgres.JSONValue)}, conversion_event = ${patch.conversionEvent ?? current.conversionEvent},
        status = ${status}, starts_at = ${startsAt}, ends_at = ${endsAt}, updated_at = now()
      WHERE key = ${key}
      RETURNING ${tx.unsafe(COLUMNS)}`;
    await this.audit(tx, actorId, 'experiment.update', key, patch);
    return present(row);
  }

  private async audit(tx: Tx, actorId: number, action: string, key: string, data: object): Promise<void> {
    await tx`INSERT INTO audit_log (actor_id, action, target_type, target_id, data)
             VALUES (${actorId}, ${action}, 'experiment', ${key}, ${tx.json(data as postgres.JSONValue)})`;
  }

  // ---- members ----

  /** The member's variant and its payload; the first call records the exposure. */
  async assignment(userId: number, key: string): Promise<{ variant: string; payload: Record<string, unknown> }> {
    const { sql } = this.deps;
    const [exp] = await sql<Array<{ variants: Variant[]; live: boolean }>>`
      SELECT variants, ${sql.unsafe(LIVE)} AS live FROM experiments WHERE key = ${key}`;
    if (!exp) throw notFound(key);
    if (!exp.live) throw new DomainError('EXPERIMENT_NOT_RUNNING', `Experiment "${key}" is not running`);
    const byName = (name: string | null) => exp.variants.find((v) => v.name === name);

    const cached = byName(await this.cached(userId, key));
    if (cached) return { variant: cached.name, payload: cached.payload };

    const name = await this.expose(userId, key, assignVariant(userId, key, exp.variants).name);
    await this.cache(userId, key, name);
    // names are fixed once running, so the stored name is one of the variants
    const variant = byName(name)!;
    return { variant: variant.name, payload: variant.payload };
  }

  /** Inserts the exposure or, when the member already has one (an earlier or concurrent first call), returns it. */
  private async expose(userId: number, key: string, candidate: string): Promise<string> {
    const { sql } = this.deps;
    const [inserted] = await sql<Array<{ variant: string }>>`
      INSERT INTO experiment_exposures (experiment_key, user_id, variant) VALUES (${key}, ${userId}, ${candidate})
      ON CONFLICT (experiment_key, user_id) DO NOTHING
      RETURNING variant`;
    if (inserted) return inserted.variant;
    // a new statement sees the row a concurrent first call committed while this insert waited on it
    const [existing] = await sql<Array<{ variant: string }>>`
      SELECT variant FROM experiment_exposures WHERE experiment_key = ${key} AND user_id = ${userId}`;
    return existing.variant;
  }

  private async cached(userId: number, key: string): Promise<string | null> {
    try {
      return await this.deps.redis.get(this.deps.keys.experimentAssignment(userId, key));
    } catch {
      return null; // Postgres has the answer
    }
  }

  private async cache(userId: number, key: string, variant: string): Promise<void> {
    try {
      await this.deps.redis.set(this.deps.keys.experimentAssignment(userId, key), variant, 'EX', ASSIGNMENT_CACHE_S);
    } catch {
      // the next call reads Postgres again
    }
  }

  /**
   * Records a member's event once per Idempotency-Key: the same key with the same request replays
   * the stored event; with another request it is IDEMPOTENCY_KEY_REUSED. An event names an
   * experiment optionally; it counts as a conversion only when the member was exposed, the name is
   * the experiment's conversion event and the experiment is live. A refused event stores nothing.
   */
  async recordEvent(userId: number, idemKey: string, requestHash: string, input: EventInput): Promise<{ event: EventView; replayed: boolean }> {
    const { sql } = this.deps;
    const prior = await this.storedEvent(userId, idemKey, requestHash);
    if (prior) return { event: prior, replayed: true };

    let variant: string | null = null;
    let counted = false;
    if (input.experiment !== undefined) {
      const [exp] = await sql<Array<{ conversionEvent: string; live: boolean; variant: string | null }>>`
        SELECT conversion_event AS "conversionEvent", ${sql.unsafe(LIVE)} AS live,
               (SELECT variant FROM experiment_exposures x WHERE x.experiment_key = e.key AND x.user_id = ${userId}) AS variant
        FROM experiments e WHERE key = ${input.experiment}`;
      if (!exp) throw notFound(input.experiment);
      variant = exp.variant;
      counted = variant !== null && exp.live && input.name === exp.conversionEvent;
    }
    const [row] = await sql<EventRow[]>`
      INSERT INTO experiment_events (user_id, idem_key, request_hash, name, experiment_key, variant, value, counted)
      VALUES (${userId}, ${idemKey}, ${requestHash}, ${input.name}, ${input.experiment ?? null}, ${variant}, ${input.value ?? null}, ${counted})
      ON CONFLICT (user_id, idem_key) DO NOTHING
      RETURNING ${sql.unsafe(EVENT_COLUMNS)}`;
    if (row) return { event: presentEvent(row), replayed: false };
    // a concurrent request with the same key won the insert
    const raced = await this.storedEvent(userId, idemKey, requestHash);
    return { event: raced!, replayed: true };
  }

  private async storedEvent(userId: number, idemKey: string, requestHash: string): Promise<EventView | null> {
    const { sql } = this.deps;
    const [row] = await sql<EventRow[]>`
      SELECT ${sql.unsafe(EVENT_COLUMNS)} FROM experiment_events WHERE user_id = ${userId} AND idem_key = ${idemKey}`;
    if (!row) return null;
    if (row.requestHash !== requestHash) {
      throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used with a different request');
    }
    return presentEvent(row);
  }

  // ---- results ----

  async results(key: string): Promise<Results> {
    const { sql, env } = this.deps;
    const [exp] = await sql<ExperimentRow[]>`SELECT ${sql.unsafe(COLUMNS)} FROM experiments WHERE key = ${key}`;
    if (!exp) throw notFound(key);
    const exposures = await sql<Array<{ variant: string; n: number }>>`
      SELECT variant, count(*)::int AS n FROM experiment_exposures WHERE experiment_key = ${key} GROUP BY variant`;
    const conversions = await sql<Array<{ variant: string; converted: number; total: number }>>`
      SELECT variant, count(DISTINCT user_id)::int AS converted, coalesce(sum(value), 0)::float8 AS total
      FROM experiment_events WHERE experiment_key = ${key} AND counted GROUP BY variant`;
    const tallies = exp.variants.map((v) => ({
      variant: v,
      exposed: exposures.find((e) => e.variant === v.name)?.n ?? 0,
      converted: conversions.find((c) => c.variant === v.name)?.converted ?? 0,
      total: conversions.find((c) => c.variant === v.name)?.total ?? 0,
    }));
    return {
      key: exp.key,
      status: exp.status,
      conversionEvent: exp.conversionEvent,
      minSample: env.EXPERIMENT_MIN_SAMPLE,
      variants: tallies.map((t, i) => variantResult(t, i === 0 ? null : tallies[0], env.EXPERIMENT_MIN_SAMPLE)),
    };
  }
}

interface Tally {
  variant: Variant;
  exposed: number;
  converted: number;
  total: number;
}

/** One variant's row of the results; `control` is null for the control itself. */
export function variantResult(t: Tally, control: Tally | null, minSample: number): VariantResult {
  const test = control ? compareProportions(control.converted, control.exposed, t.converted, t.exposed) : null;
  return {
    name: t.variant.name,
    weight: t.variant.weight,
    exposed: t.exposed,
    converted: t.converted,
    conversionRate: t.exposed > 0 ? t.converted / t.exposed : null,
    meanValue: t.exposed > 0 ? t.total / t.exposed : null,
    lift: test ? { difference: test.difference, ciLow: test.ciLow, ciHigh: test.ciHigh, relative: test.relative } : null,
    zScore: test?.z ?? null,
    pValue: test?.pValue ?? null,
    warning:
      t.exposed < minSample
        ? `Only ${t.exposed} exposed member(s), below the minimum sample of ${minSample}: the numbers are not reliable yet`
        : null,
  };
}
