/**
 * Earn rules, read from Postgres and cached in process (refreshed on a timer), so an earn costs
 * no database round trip.
 */
import type { Sql } from '../db/client.ts';

export interface EarnRule {
  id: number;
  action: string;
  points: number;
  dailyCapCount: number;
  dailyCapPoints: number;
  expiryDays: number;
  trigger: 'signup' | 'action' | 'system';
  enabled: boolean;
}

export class RulesCache {
  private rules = new Map<string, EarnRule>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly sql: Sql) {}

  async refresh(): Promise<void> {
    const rows = await this.sql<EarnRule[]>`
      SELECT id, action, points, daily_cap_count AS "dailyCapCount", daily_cap_points AS "dailyCapPoints",
             expiry_days AS "expiryDays", trigger, enabled
      FROM earn_rules`;
    this.rules = new Map(rows.map((r) => [r.action, r]));
  }

  start(everyMs: number): void {
    this.timer = setInterval(() => void this.refresh().catch(() => {}), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  get(action: string): EarnRule | undefined {
    return this.rules.get(action);
  }
}
