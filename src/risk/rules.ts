/**
 * Risk rules: thresholds from Postgres (risk_rules, admin-editable), cached per process like the
 * earn rules, with the seeded defaults until the first read. Where each rule is decided:
 *   DAILY_GAIN        in the credit scripts (lua/includes/risk.lua): the credit that takes a member's
 *                     points earned in a business day (admin grants, refunds and transfers received
 *                     left out) over the threshold freezes the member in the same atomic step
 *   EARN_BURST        in the earn script: more than `threshold` earns in `windowSeconds` → 429
 *   HIGH_FREQUENCY    in the earn script: more than `threshold` of one action in an hour → flag
 *   IP_MULTI_ACCOUNT  at registration: more than `threshold` accounts from one IP in the window → flag
 *   DEVICE_SHARING    at device registration: a token already registered by another account → flag
 *   TRANSFER_FAN_IN   after transfers persist: more than `threshold` senders to one receiver in the
 *                     window → flag the receiver
 */
import type { Sql, Tx } from '../db/client.ts';

export const RISK_RULES = ['IP_MULTI_ACCOUNT', 'HIGH_FREQUENCY', 'DEVICE_SHARING', 'DAILY_GAIN', 'EARN_BURST', 'TRANSFER_FAN_IN'] as const;
export type RiskRuleName = (typeof RISK_RULES)[number];
export type RiskAction = 'flag' | 'freeze' | 'block';

export interface RiskRule {
  rule: RiskRuleName;
  enabled: boolean;
  threshold: number;
  windowSeconds: number;
  action: RiskAction;
}

export const DEFAULT_RULES: readonly RiskRule[] = [
  { rule: 'IP_MULTI_ACCOUNT', enabled: true, threshold: 5, windowSeconds: 86_400, action: 'flag' },
  { rule: 'HIGH_FREQUENCY', enabled: true, threshold: 100, windowSeconds: 3600, action: 'flag' },
  { rule: 'DEVICE_SHARING', enabled: true, threshold: 1, windowSeconds: 0, action: 'flag' },
  { rule: 'DAILY_GAIN', enabled: true, threshold: 1000, windowSeconds: 86_400, action: 'freeze' },
  { rule: 'EARN_BURST', enabled: true, threshold: 10, windowSeconds: 60, action: 'block' },
  { rule: 'TRANSFER_FAN_IN', enabled: true, threshold: 10, windowSeconds: 3600, action: 'flag' },
];

/** What each rule may do: the in-script rules act in a fixed way, the others flag or freeze. */
export const ALLOWED_ACTIONS: Record<RiskRuleName, readonly RiskAction[]> = {
  IP_MULTI_ACCOUNT: ['flag', 'freeze'],
  HIGH_FREQUENCY: ['flag'],
  DEVICE_SHARING: ['flag', 'freeze'],
  DAILY_GAIN: ['freeze'],
  EARN_BURST: ['block'],
  TRANSFER_FAN_IN: ['flag', 'freeze'],
};

/** Credits that are not points earned by the member (DAILY_GAIN leaves them out). */
const NOT_GAINED: ReadonlySet<string> = new Set(['grant', 'refund', 'transfer_in']);

export interface RequestContext {
  ip?: string;
  userAgent?: string;
}

/** Where a request came from (request.ip honours TRUST_PROXY), for risk evidence. */
export function requestContext(request: { ip: string; headers: Record<string, string | string[] | undefined> }): RequestContext {
  const ua = request.headers['user-agent'];
  return { ip: request.ip, userAgent: Array.isArray(ua) ? ua[0] : ua };
}

export class RiskRules {
  private rules = new Map<RiskRuleName, RiskRule>(DEFAULT_RULES.map((r) => [r.rule, r]));
  private timer?: NodeJS.Timeout;

  constructor(private readonly sql?: Sql) {}

  async refresh(): Promise<void> {
    if (!this.sql) return;
    this.set(await loadRules(this.sql));
  }

  set(rules: RiskRule[]): void {
    const next = new Map<RiskRuleName, RiskRule>(DEFAULT_RULES.map((r) => [r.rule, r]));
    for (const r of rules) next.set(r.rule, r);
    this.rules = next;
  }

  start(everyMs: number): void {
    this.timer = setInterval(() => void this.refresh().catch(() => {}), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  get(rule: RiskRuleName): RiskRule {
    return this.rules.get(rule)!;
  }

  all(): RiskRule[] {
    return RISK_RULES.map((r) => this.get(r));
  }

  private on(rule: RiskRuleName): RiskRule | null {
    const r = this.get(rule);
    return r.enabled ? r : null;
  }

  /**
   * The risk spec of a credit for the earn and check-in scripts: `memberActs` (the member's own
   * request: refused while frozen, counted for EARN_BURST and HIGH_FREQUENCY) and whether the
   * credit counts toward DAILY_GAIN.
   */
  creditSpec(bizType: string, memberActs: boolean, ctx: RequestContext = {}, o: { burst?: boolean } = {}): string {
    const gain = this.on('DAILY_GAIN');
    const burst = o.burst ? this.on('EARN_BURST') : null;
    const freq = o.burst ? this.on('HIGH_FREQUENCY') : null;
    return JSON.stringify({
      m: memberActs ? 1 : 0,
      c: NOT_GAINED.has(bizType) ? 0 : 1,
      g: gain?.threshold ?? 0,
      h: memberActs && freq ? freq.threshold : 0,
      b: memberActs && burst ? burst.threshold : 0,
      bw: (burst?.windowSeconds ?? 60) * 1000,
      ...(ctx.ip ? { ip: ctx.ip } : {}),
      ...(ctx.userAgent ? { ua: ctx.userAgent.slice(0, 200) } : {}),
    });
  }
}

export async function loadRules(db: Sql | Tx): Promise<RiskRule[]> {
  return db<RiskRule[]>`
    SELECT rule, enabled, threshold, window_seconds AS "windowSeconds", action FROM risk_rules ORDER BY rule`;
}
