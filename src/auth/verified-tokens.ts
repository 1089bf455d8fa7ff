/**
 * Bearer tokens already verified, keyed by the token itself, so a member's next request skips the
 * HMAC and the claim checks. fast-jwt's own cache keys each token by its SHA-256 (to keep tokens
 * out of memory), which costs a third of a full verification on a hit and is paid again on every
 * miss; this process already holds every token it is sent, so the token is the key (unique by
 * construction: no collision can map one token to another's claims).
 *
 * Only tokens with an expiry and no not-before are kept, and an entry is used until the earlier of
 * its `exp` and `maxAgeMs` after it was verified (fast-jwt's cacheTTL), never after. The map is
 * bounded: past `max` entries the oldest is dropped (insertion order).
 */
export class VerifiedTokens<C extends { exp?: unknown; nbf?: unknown }> {
  private readonly entries = new Map<string, { claims: C; untilMs: number }>();

  constructor(
    private readonly max: number,
    private readonly maxAgeMs = 600_000,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The claims of a token verified before and still valid at nowMs, or undefined. */
  get(token: string, nowMs = Date.now()): C | undefined {
    const e = this.entries.get(token);
    if (!e) return undefined;
    if (nowMs < e.untilMs) return e.claims;
    this.entries.delete(token);
    return undefined;
  }

  /** Keeps the claims of a token that has just passed full verification. */
  remember(token: string, claims: C, nowMs = Date.now()): void {
    if (this.max <= 0 || typeof claims.exp !== 'number' || claims.nbf !== undefined) return;
    const untilMs = Math.min(claims.exp * 1000, nowMs + this.maxAgeMs);
    if (untilMs <= nowMs) return;
    if (this.entries.size >= this.max && !this.entries.has(token)) {
      this.entries.delete(this.entries.keys().next().value!);
    }
    this.entries.set(token, { claims, untilMs });
  }
}
