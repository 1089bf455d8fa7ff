/**
 * The business day: everything daily (earn caps, check-in, login bonus, tasks, per-day limits,
 * the daily leaderboard, analytics days) is a calendar day in BUSINESS_TIMEZONE (IANA name,
 * default UTC); weeks start on Monday.
 *
 * Scripts take "now" from Redis TIME, so they cannot ask Intl for the zone: the API passes the
 * zone's UTC offset at its own clock's now (`offsetMs`), and the script computes its day as
 * floor((now + offset) / 1 day). Hosts and Redis agree on the instant to within clock skew; the
 * offset itself only changes at a daylight-saving transition, so a day boundary can be off by at
 * most that skew, and only on the night the zone's offset changes.
 */
const DAY_MS = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(tz, f);
  }
  return f;
}

/** Throws RangeError for a name Intl does not know (the env schema uses this to refuse it). */
export function assertTimeZone(tz: string): void {
  formatter(tz);
}

/** The zone's offset from UTC at `ms`, in milliseconds (Asia/Shanghai: +8 h). */
export function offsetMs(tz: string, ms: number): number {
  const parts = Object.fromEntries(formatter(tz).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
  return asUtc - Math.floor(ms / 1000) * 1000;
}

const recent = new Map<string, { offset: number; until: number }>();

/**
 * offsetMs remembered for a second: hot paths pass it on every request, and Intl costs ~5 µs a
 * call. At a daylight-saving transition the offset used is at most that second late.
 */
export function recentOffsetMs(tz: string, ms: number): number {
  const hit = recent.get(tz);
  if (hit && ms < hit.until && ms >= hit.until - 1000) return hit.offset;
  const offset = offsetMs(tz, ms);
  recent.set(tz, { offset, until: ms + 1000 });
  return offset;
}

/** Days since 1970-01-01 in the zone: the number scripts compute as floor((now + offset) / day). */
export function dayNumber(tz: string, ms: number): number {
  return Math.floor((ms + offsetMs(tz, ms)) / DAY_MS);
}

/** 'YYYY-MM-DD' of a day number. */
export function dayString(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** The day number of 'YYYY-MM-DD'. */
export function dayFromString(date: string): number {
  return Math.floor(Date.parse(`${date}T00:00:00Z`) / DAY_MS);
}

/** The business date 'YYYY-MM-DD' at `ms`. */
export function businessDate(tz: string, ms: number): string {
  return dayString(dayNumber(tz, ms));
}

/** Monday (day number) of the week holding `day`. 1970-01-01 was a Thursday. */
export function weekStart(day: number): number {
  return day - ((day + 3) % 7);
}

/** The UTC instant a business day starts (its local midnight). */
export function dayStartMs(tz: string, day: number): number {
  const guess = day * DAY_MS;
  // the offset at local midnight; a second pass settles a DST change between guess and midnight
  let start = guess - offsetMs(tz, guess);
  start = guess - offsetMs(tz, start);
  return start;
}

/** Period keys used in Redis and Postgres: day 'YYYY-MM-DD', week 'YYYY-MM-DD' of its Monday, month 'YYYY-MM'. */
export function periodsOf(tz: string, ms: number): { day: string; week: string; month: string } {
  const day = dayNumber(tz, ms);
  const date = dayString(day);
  return { day: date, week: dayString(weekStart(day)), month: date.slice(0, 7) };
}
