import { describe, expect, it } from 'vitest';
import { businessDate, dayNumber, dayStartMs, dayString, offsetMs, periodsOf, weekStart } from '../src/engagement/business-day.ts';

describe('business day', () => {
  it('is the calendar day in the zone, not in UTC (Asia/Shanghai is UTC+8)', () => {
    // 2026-01-31T16:30Z is already 2026-02-01 00:30 in Shanghai: a month end crossed
    const ms = Date.UTC(2026, 0, 31, 16, 30);
    expect(offsetMs('Asia/Shanghai', ms)).toBe(8 * 3_600_000);
    expect(businessDate('Asia/Shanghai', ms)).toBe('2026-02-01');
    expect(businessDate('UTC', ms)).toBe('2026-01-31');
    expect(dayString(dayNumber('Asia/Shanghai', ms))).toBe('2026-02-01');
    expect(dayStartMs('Asia/Shanghai', dayNumber('Asia/Shanghai', ms))).toBe(Date.UTC(2026, 0, 31, 16, 0));
  });

  it('starts weeks on Monday and names months by the zone', () => {
    // Sunday 2026-03-01 23:00 UTC is Monday 2026-03-02 07:00 in Shanghai
    const ms = Date.UTC(2026, 2, 1, 23, 0);
    expect(periodsOf('UTC', ms)).toEqual({ day: '2026-03-01', week: '2026-02-23', month: '2026-03' });
    expect(periodsOf('Asia/Shanghai', ms)).toEqual({ day: '2026-03-02', week: '2026-03-02', month: '2026-03' });
    expect(dayString(weekStart(dayNumber('UTC', Date.UTC(2026, 10, 29))))).toBe('2026-11-23');
  });

  it('follows daylight saving (America/New_York)', () => {
    expect(offsetMs('America/New_York', Date.UTC(2026, 0, 15))).toBe(-5 * 3_600_000);
    expect(offsetMs('America/New_York', Date.UTC(2026, 6, 15))).toBe(-4 * 3_600_000);
    expect(businessDate('America/New_York', Date.UTC(2026, 6, 15, 3, 59))).toBe('2026-07-14');
    expect(businessDate('America/New_York', Date.UTC(2026, 6, 15, 4, 0))).toBe('2026-07-15');
  });
});
