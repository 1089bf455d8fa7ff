/**
 * Logins count as activity (DAU, MAU): one row per member and business day, written at each
 * successful login; a second login the same day changes nothing.
 */
import type { Sql } from '../db/client.ts';
import { businessDate } from '../engagement/business-day.ts';

export async function recordLogin(sql: Sql, userId: number, timeZone: string, now = Date.now()): Promise<void> {
  await sql`INSERT INTO member_logins (day, user_id) VALUES (${businessDate(timeZone, now)}::date, ${userId}) ON CONFLICT DO NOTHING`;
}
