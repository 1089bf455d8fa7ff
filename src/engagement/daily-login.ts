/**
 * The daily login bonus: the first successful login of a business day credits points (settings in
 * engagement_settings 'daily_login': points, on/off), a rule earn (tier and campaign multiply it)
 * with bizType 'daily_login'. Once per member and day: the credit's key names the day, and the
 * earn script's daily cap (one per business day) holds even across a key's expiry; concurrent
 * logins credit once and the others answer 0.
 */
import { DomainError } from '../errors/domain-error.ts';
import type { PointsService } from '../points/service.ts';
import { dayNumber, dayString } from './business-day.ts';
import type { EngagementConfig } from './config.ts';
import type { RequestContext } from '../risk/rules.ts';

export class DailyLoginBonus {
  constructor(
    private readonly points: PointsService,
    private readonly config: EngagementConfig,
    private readonly timeZone: string,
  ) {}

  /** Points this login earned (0 when already paid today, switched off, or not payable now). */
  async credit(userId: number, log?: { warn(obj: object, msg: string): void }, ctx: RequestContext = {}): Promise<number> {
    const s = this.config.dailyLogin;
    if (!s.enabled || s.points < 1) return 0;
    const day = dayString(dayNumber(this.timeZone, Date.now()));
    try {
      const { op, replayed } = await this.points.creditRule(userId, {
        bizType: 'daily_login',
        bizId: day,
        points: s.points,
        key: `daily_login:${userId}:${day}`,
        expiryDays: s.expiryDays,
        capCount: 1,
        memberActs: true,
        ctx,
      });
      return replayed ? 0 : op.delta;
    } catch (err) {
      // a frozen member logs in (reads still work) without a bonus
      if (err instanceof DomainError && (err.code === 'DAILY_LIMIT_REACHED' || err.code === 'ACCOUNT_FROZEN')) return 0;
      // a login never fails for its bonus (Redis closed to writes, say): it is paid at the next login
      log?.warn({ err, userId }, 'daily login bonus not credited');
      return 0;
    }
  }
}
