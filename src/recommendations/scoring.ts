/**
 * The recommendation model and its scoring, as pure functions over in-memory data. The worker
 * (src/recommendations/model.ts) builds the model with these functions and stores it in Redis;
 * the request path reads the pieces a member needs back from Redis and ranks them with `rank`;
 * the offline evaluation (bench/eval-recommend.ts) builds and ranks with the very same functions
 * over in-memory data. One formula, three users.
 *
 * Hybrid score of a candidate j for a member with history h₀ (most recent), h₁, … (distinct goods,
 * recency weight wₖ = RECENCY_DECAY^k):
 *   cf(j)      = Σₖ wₖ · c(hₖ, j) / √(n(hₖ) · n(j)) / Σₖ wₖ      co-occurrence cosine, where c and n
 *                count only members whose balance lies in the member's balance band (0.7–1.3× their
 *                available points; bands of BAND_RATIO, see peerBands)
 *   content(j) = cos(Σₖ wₖ · v(hₖ), v(j))                           TF-IDF over name words, tags, category
 *   score(j)   = CF_WEIGHT · cf(j)/max cf + CONTENT_WEIGHT · content(j)/max content   (max over the candidates)
 *
 * Reasons (each item says where its score mostly came from):
 *   - similar_members_redeemed: the CF part (CF_WEIGHT · normalised cf) is the larger of the two;
 *   - same_category_as_last: the content part dominates and the item shares the category of the
 *     member's last redeemed item;
 *   - fits_your_points: the content part dominates in another category (a match on words and tags),
 *     or nothing scored at all and the item only fills the list because it fits the points window;
 *   - popular: nothing scored (a cold start: no history) and the item is among the most redeemed of
 *     the last 7 days (src/goods/popularity.ts) — those items are ranked by that count.
 */

export const CF_WEIGHT = 0.6;
export const CONTENT_WEIGHT = 0.4;
/** Weight of the k-th most recent history item: RECENCY_DECAY^k. */
export const RECENCY_DECAY = 0.8;
/** Distinct goods of a member's history the model keeps (most recent first). */
export const HISTORY_KEPT = 20;
/** Co-occurrence neighbours kept per goods item and balance band. */
export const NEIGHBOURS_KEPT = 100;
/** Members whose balance lies in [PEER_LOW, PEER_HIGH] × the member's available points are their peers. */
export const PEER_LOW = 0.7;
export const PEER_HIGH = 1.3;
/** Balance bands grow geometrically: band b holds balances in [BAND_RATIO^b, BAND_RATIO^(b+1)). */
export const BAND_RATIO = 1.2;
/**
 * Goods priced (the member's own price) in [WINDOW_LOW, WINDOW_HIGH] × available points: what the
 * member can redeem now, and a little beyond it, worth earning toward.
 */
export const WINDOW_LOW = 0.5;
export const WINDOW_HIGH = 1.5;

export type Reason = 'same_category_as_last' | 'fits_your_points' | 'similar_members_redeemed' | 'popular';
export const REASONS: readonly Reason[] = ['same_category_as_last', 'fits_your_points', 'similar_members_redeemed', 'popular'];

/** A sparse vector: term → weight, L2-normalised. */
export type Vec = Map<string, number>;

export interface ContentDoc {
  id: number;
  name: string;
  tags: string[];
  categoryId: number | null;
}

/** The points window of a member: [low, high] on the member's price of one unit. */
export function pointsWindow(available: number): { low: number; high: number } {
  return { low: Math.ceil(WINDOW_LOW * available), high: Math.floor(WINDOW_HIGH * available) };
}

export function fitsWindow(price: number, available: number): boolean {
  const w = pointsWindow(available);
  return price >= w.low && price <= w.high;
}

/** The band of a balance (balances below 1 share band 0). */
export function bandOf(balance: number): number {
  return balance < 1 ? 0 : Math.floor(Math.log(balance) / Math.log(BAND_RATIO) + 1e-9);
}

/** The bands holding the member's peers: those overlapping [PEER_LOW, PEER_HIGH] × available. */
export function peerBands(available: number): number[] {
  const lo = bandOf(PEER_LOW * available);
  const hi = bandOf(PEER_HIGH * available);
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

/** Terms of an item: its name's words, its tags and its category (weighted twice). */
export function termsOf(doc: ContentDoc): Map<string, number> {
  const tf = new Map<string, number>();
  const add = (t: string, n = 1) => tf.set(t, (tf.get(t) ?? 0) + n);
  for (const w of doc.name.toLowerCase().split(/[^\p{L}\p{N}]+/u)) if (w.length > 1) add(`w:${w}`);
  for (const t of doc.tags) add(`t:${t.toLowerCase()}`);
  if (doc.categoryId !== null) add(`c:${doc.categoryId}`, 2);
  return tf;
}

/** TF-IDF vectors of a catalog (idf = ln(1 + N / df)), each L2-normalised. */
export function buildContentVectors(docs: ContentDoc[]): Map<number, Vec> {
  const tfs = docs.map((d) => [d.id, termsOf(d)] as const);
  const df = new Map<string, number>();
  for (const [, tf] of tfs) for (const t of tf.keys()) df.set(t, (df.get(t) ?? 0) + 1);
  const out = new Map<number, Vec>();
  for (const [id, tf] of tfs) {
    const v: Vec = new Map();
    for (const [t, n] of tf) v.set(t, n * Math.log(1 + docs.length / df.get(t)!));
    out.set(id, normalise(v));
  }
  return out;
}

function normalise(v: Vec): Vec {
  let norm = 0;
  for (const w of v.values()) norm += w * w;
  norm = Math.sqrt(norm);
  if (norm === 0) return v;
  for (const [t, w] of v) v.set(t, w / norm);
  return v;
}

function dot(a: Vec, b: Vec): number {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  let s = 0;
  for (const [t, w] of small) {
    const x = large.get(t);
    if (x !== undefined) s += w * x;
  }
  return s;
}

/** Co-occurrence of one balance band: n(i) members who redeemed i, c(i, j) who redeemed both. */
export interface BandCounts {
  n: Map<number, number>;
  /** i → neighbours j by count, most first, at most NEIGHBOURS_KEPT */
  neighbours: Map<number, Array<[number, number]>>;
}

/** Counts co-occurrence per balance band over members' histories (distinct goods, HISTORY_KEPT most recent). */
export function buildBands(members: Iterable<{ balance: number; history: number[] }>): Map<number, BandCounts> {
  const raw = new Map<number, { n: Map<number, number>; c: Map<number, Map<number, number>> }>();
  for (const m of members) {
    const items = m.history.slice(0, HISTORY_KEPT);
    if (items.length === 0) continue;
    const b = bandOf(m.balance);
    let band = raw.get(b);
    if (!band) raw.set(b, (band = { n: new Map(), c: new Map() }));
    for (const i of items) {
      band.n.set(i, (band.n.get(i) ?? 0) + 1);
      let row = band.c.get(i);
      if (!row) band.c.set(i, (row = new Map()));
      for (const j of items) if (j !== i) row.set(j, (row.get(j) ?? 0) + 1);
    }
  }
  const out = new Map<number, BandCounts>();
  for (const [b, band] of raw) {
    const neighbours = new Map<number, Array<[number, number]>>();
    for (const [i, row] of band.c) {
      const list = [...row].sort((x, y) => y[1] - x[1] || x[0] - y[0]).slice(0, NEIGHBOURS_KEPT);
      if (list.length > 0) neighbours.set(i, list);
    }
    out.set(b, { n: band.n, neighbours });
  }
  return out;
}

/** Distinct goods, most recent first, from redemptions listed oldest first. */
export function historyOf(goodsIdsOldestFirst: number[]): number[] {
  const seen = new Set<number>();
  const out: number[] = [];
  for (let i = goodsIdsOldestFirst.length - 1; i >= 0 && out.length < HISTORY_KEPT; i--) {
    const g = goodsIdsOldestFirst[i];
    if (!seen.has(g)) {
      seen.add(g);
      out.push(g);
    }
  }
  return out;
}

/** What the CF part needs, read from the member's peer bands (summed over them). */
export interface PeerCounts {
  /** per history item (same order as the history): neighbour → co-occurrence count */
  neighbours: Array<Map<number, number>>;
  /** members of the peer bands who redeemed the item (history items and candidates) */
  n: Map<number, number>;
}

/** Sums the peer bands' lists of the history items and counts of the given goods. */
export function peerCounts(bands: Map<number, BandCounts>, peer: number[], history: number[], goods: Iterable<number>): PeerCounts {
  const neighbours = history.map(() => new Map<number, number>());
  const n = new Map<number, number>();
  const ids = new Set([...history, ...goods]);
  for (const b of peer) {
    const band = bands.get(b);
    if (!band) continue;
    history.forEach((h, k) => {
      for (const [j, c] of band.neighbours.get(h) ?? []) neighbours[k].set(j, (neighbours[k].get(j) ?? 0) + c);
    });
    for (const id of ids) {
      const x = band.n.get(id);
      if (x) n.set(id, (n.get(id) ?? 0) + x);
    }
  }
  return { neighbours, n };
}

export interface Candidate {
  id: number;
  categoryId: number | null;
}

export interface RankInput {
  /** distinct goods, most recent first (empty: cold start) */
  history: number[];
  /** category of the last redeemed item */
  lastCategoryId: number | null;
  /** goods that fit the member's points window, history items left out */
  candidates: Candidate[];
  /** TF-IDF vectors of the history items and the candidates */
  vectors: Map<number, Vec>;
  peers: PeerCounts;
  /** redemptions in the popularity window (src/goods/popularity.ts) */
  popularity: Map<number, number>;
}

export interface Ranked {
  id: number;
  score: number;
  reason: Reason;
  cf: number;
  content: number;
}

/**
 * Every candidate, best first, with its score and the reason for it (see the module header).
 * `weights` other than the defaults are for the evaluation's ablations only.
 */
export function rank(input: RankInput, weights: { cf: number; content: number } = { cf: CF_WEIGHT, content: CONTENT_WEIGHT }): Ranked[] {
  const { history, candidates, vectors, peers, popularity } = input;
  const recency = history.map((_, k) => RECENCY_DECAY ** k);
  const totalWeight = recency.reduce((a, b) => a + b, 0) || 1;
  const profile: Vec = new Map();
  history.forEach((h, k) => {
    for (const [t, w] of vectors.get(h) ?? []) profile.set(t, (profile.get(t) ?? 0) + recency[k] * w);
  });
  normalise(profile);

  const raw = candidates.map((c) => {
    let cf = 0;
    const nj = peers.n.get(c.id) ?? 0;
    if (nj > 0) {
      history.forEach((h, k) => {
        const co = peers.neighbours[k]?.get(c.id) ?? 0;
        const ni = peers.n.get(h) ?? 0;
        if (co > 0 && ni > 0) cf += (recency[k] * co) / Math.sqrt(ni * nj);
      });
      cf /= totalWeight;
    }
    const v = vectors.get(c.id);
    const content = v && profile.size > 0 ? Math.max(0, dot(profile, v)) : 0;
    return { c, cf, content };
  });
  const maxCf = Math.max(0, ...raw.map((r) => r.cf));
  const maxContent = Math.max(0, ...raw.map((r) => r.content));
  const maxPop = Math.max(0, ...candidates.map((c) => popularity.get(c.id) ?? 0));

  const ranked = raw.map(({ c, cf, content }) => {
    const cfPart = maxCf > 0 ? (weights.cf * cf) / maxCf : 0;
    const contentPart = maxContent > 0 ? (weights.content * content) / maxContent : 0;
    const hybrid = cfPart + contentPart;
    const pop = popularity.get(c.id) ?? 0;
    let reason: Reason;
    let score = hybrid;
    if (hybrid > 0) {
      if (cfPart >= contentPart) reason = 'similar_members_redeemed';
      else reason = c.categoryId !== null && c.categoryId === input.lastCategoryId ? 'same_category_as_last' : 'fits_your_points';
    } else if (pop > 0) {
      reason = 'popular';
      // a cold start is ranked by popularity alone: its score is the share of the top item's count
      score = history.length === 0 ? pop / maxPop : 0;
    } else {
      reason = 'fits_your_points';
    }
    return { id: c.id, score, reason, cf, content, pop };
  });
  ranked.sort((a, b) => b.score - a.score || b.pop - a.pop || b.id - a.id);
  return ranked.map(({ pop: _pop, ...r }) => r);
}

/** Popularity ranking alone (the cold start's order, and the evaluation's baseline). */
export function rankByPopularity(candidates: Candidate[], popularity: Map<number, number>): number[] {
  return candidates
    .map((c) => ({ id: c.id, n: popularity.get(c.id) ?? 0 }))
    .sort((a, b) => b.n - a.n || b.id - a.id)
    .map((x) => x.id);
}

/** Sparse vectors as stored in Redis: [[term, weight], …]. */
export function encodeVec(v: Vec): string {
  return JSON.stringify([...v].map(([t, w]) => [t, Math.round(w * 1e6) / 1e6]));
}
