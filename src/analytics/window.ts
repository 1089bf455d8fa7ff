/**
 * A window of business days (BUSINESS_TIMEZONE), both ends included, as analytics and exports
 * take it: `from` and `to` as YYYY-MM-DD, by default the 30 days ending today.
 */
import { DomainError } from '../errors/domain-error.ts';
import { dayFromString, dayNumber, dayString } from '../engagement/business-day.ts';

/** The longest window an overview, a daily series or an export covers. */
export const MAX_WINDOW_DAYS = 3660;

export interface Window {
  from: string;
  to: string;
}

/** Refuses (VALIDATION_FAILED) a day that is not a calendar date, a reversed window or one over MAX_WINDOW_DAYS. */
export function parseWindow(timeZone: string, from: string | undefined, to: string | undefined, now = Date.now()): Window {
  const end = to ?? dayString(dayNumber(timeZone, now));
  const start = from ?? dayString(dayFromString(end) - 29);
  for (const d of [start, end]) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(d) || dayString(dayFromString(d)) !== d) throw new DomainError('VALIDATION_FAILED', `${d} is not a date (YYYY-MM-DD)`);
  }
  if (start > end) throw new DomainError('VALIDATION_FAILED', '`from` must not be after `to`');
  if (dayFromString(end) - dayFromString(start) + 1 > MAX_WINDOW_DAYS) throw new DomainError('VALIDATION_FAILED', `A window covers at most ${MAX_WINDOW_DAYS} days`);
  return { from: start, to: end };
}
