/**
 * `npm run eval:recommend`: offline evaluation of the recommendation scoring on a generated
 * dataset with planted tastes, leave-last-out. It builds and ranks with the very functions the
 * recommend role and GET /v1/me/recommendations use (src/recommendations/scoring.ts), over
 * in-memory data instead of Redis: no API, no database.
 *
 * The dataset (seeded, so runs compare): CATEGORIES categories, each with its own tag pool and a
 * few shared tags; GOODS goods with a category, 2–3 tags and a log-uniform list price; MEMBERS
 * members with a log-uniform balance, a main and a second category (affinity 0.6 / 0.25, the rest
 * spread over all categories as noise) and a favourite tag of the main category. Each member
 * redeems 3–12 distinct goods they can afford (0.5–1.0× of the balance), one at a
 * time: a category by affinity, then an item of it by latent popularity × 3 when it carries the
 * favourite tag.
 *
 * Each member's last redemption is held out; the model is built from everything else. For each
 * member the candidates are the goods of their points window they have not redeemed (as the
 * route filters them), ranked by the hybrid, by popularity (the cold-start rule) and at random.
 * Reported: hit rate @5 (the held-out item among the first five) and NDCG@5 (1 / log2(rank + 2)).
 * Writes bench/results/recommend-eval.md.
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import {
  buildBands,
  buildContentVectors,
  fitsWindow,
  historyOf,
  peerBands,
  peerCounts,
  rank,
  rankByPopularity,
  type Candidate,
  type ContentDoc,
  type Reason,
} from '../src/recommendations/scoring.ts';

const SEED = 20_240_9;
const CATEGORIES = 12;
const GOODS = 300;
const MEMBERS = 3_000;
const K = 5;

/** mulberry32: a small seeded generator, so the dataset is the same every run. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
const random = rng(SEED);
const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)];
const logUniform = (lo: number, hi: number) => Math.round(Math.exp(Math.log(lo) + random() * (Math.log(hi) - Math.log(lo))));
function weighted<T>(xs: T[], w: (x: T) => number): T | undefined {
  const total = xs.reduce((s, x) => s + w(x), 0);
  if (total <= 0) return undefined;
  let r = random() * total;
  for (const x of xs) if ((r -= w(x)) <= 0) return x;
  return xs[xs.length - 1];
}

// ---- the dataset -------------------------------------------------------------------------------

const NOUNS = ['book', 'pan', 'ball', 'seed', 'lamp', 'shirt', 'toy', 'mug', 'cable', 'card', 'bag', 'watch'];
const ADJECTIVES = ['deluxe', 'mini', 'classic', 'pro', 'eco', 'smart', 'vintage', 'travel', 'family', 'premium'];
const SHARED_TAGS = ['gift', 'new', 'sale', 'limited', 'bestseller'];

interface Good extends ContentDoc {
  categoryId: number;
  price: number;
  weight: number;
}

const tagPools = Array.from({ length: CATEGORIES }, (_, c) => Array.from({ length: 6 }, (_, t) => `c${c}t${t}`));
const goods: Good[] = Array.from({ length: GOODS }, (_, i) => {
  const categoryId = i % CATEGORIES;
  const tags = new Set<string>();
  while (tags.size < int(2, 3)) tags.add(pick(tagPools[categoryId]));
  if (random() < 0.3) tags.add(pick(SHARED_TAGS));
  return {
    id: i + 1,
    name: `${pick(ADJECTIVES)} ${NOUNS[categoryId]} ${i + 1}`,
    tags: [...tags],
    categoryId,
    price: logUniform(500, 5_000),
    // latent popularity: heavy-tailed
    weight: Math.exp(1.2 * gaussian()),
  };
});
function gaussian(): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

interface Member {
  id: number;
  balance: number;
  redeemed: number[];
}

const members: Member[] = Array.from({ length: MEMBERS }, (_, i) => {
  const balance = logUniform(1_500, 6_000);
  const main = int(0, CATEGORIES - 1);
  let second = int(0, CATEGORIES - 2);
  if (second >= main) second++;
  const favourite = pick(tagPools[main]);
  const affinity = (c: number) => (c === main ? 0.6 : c === second ? 0.25 : 0) + 0.15 / CATEGORIES;
  // what a member redeems they can afford: the lower part of the recommendation window
  const windowGoods = goods.filter((g) => fitsWindow(g.price, balance) && g.price <= balance);
  const redeemed: number[] = [];
  const n = int(3, 12);
  for (let k = 0; k < n; k++) {
    const left = windowGoods.filter((g) => !redeemed.includes(g.id));
    const cat = weighted(Array.from({ length: CATEGORIES }, (_, c) => c), (c) => (left.some((g) => g.categoryId === c) ? affinity(c) : 0));
    if (cat === undefined) break;
    const g = weighted(
      left.filter((x) => x.categoryId === cat),
      (x) => x.weight * (x.tags.includes(favourite) ? 3 : 1),
    );
    if (g) redeemed.push(g.id);
  }
  return { id: i + 1, balance, redeemed };
});

// ---- leave-last-out ------------------------------------------------------------------------------

const started = performance.now();
const evaluated = members.filter((m) => m.redeemed.length >= 2);
const training = members.map((m) => ({ ...m, history: historyOf(evaluated.includes(m) ? m.redeemed.slice(0, -1) : m.redeemed) }));
const vectors = buildContentVectors(goods);
const bands = buildBands(training);
const popularity = new Map<number, number>();
for (const m of training) for (const g of m.history) popularity.set(g, (popularity.get(g) ?? 0) + 1);
const categoryOf = new Map(goods.map((g) => [g.id, g.categoryId]));

type Method = 'hybrid' | 'cf only (ablation)' | 'content only (ablation)' | 'popularity' | 'random';
const totals: Record<Method, { hits: number; ndcg: number }> = {
  hybrid: { hits: 0, ndcg: 0 },
  'cf only (ablation)': { hits: 0, ndcg: 0 },
  'content only (ablation)': { hits: 0, ndcg: 0 },
  popularity: { hits: 0, ndcg: 0 },
  random: { hits: 0, ndcg: 0 },
};
const reasons = new Map<Reason, number>();
let candidatesSeen = 0;

function score(method: Method, ranked: number[], target: number): void {
  const at = ranked.slice(0, K).indexOf(target);
  if (at < 0) return;
  totals[method].hits++;
  totals[method].ndcg += 1 / Math.log2(at + 2);
}

for (const m of training.filter((t) => evaluated.some((e) => e.id === t.id))) {
  const target = m.redeemed[m.redeemed.length - 1];
  const seen = new Set(m.history);
  const candidates: Candidate[] = goods
    .filter((g) => !seen.has(g.id) && fitsWindow(g.price, m.balance))
    .map((g) => ({ id: g.id, categoryId: g.categoryId }));
  candidatesSeen += candidates.length;
  const input = {
    history: m.history,
    lastCategoryId: categoryOf.get(m.history[0]) ?? null,
    candidates,
    vectors,
    peers: peerCounts(
      bands,
      peerBands(m.balance),
      m.history,
      candidates.map((c) => c.id),
    ),
    popularity,
  };
  const hybrid = rank(input);
  score('cf only (ablation)', rank(input, { cf: 1, content: 0 }).map((r) => r.id), target);
  score('content only (ablation)', rank(input, { cf: 0, content: 1 }).map((r) => r.id), target);
  for (const r of hybrid.slice(0, K)) reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
  score('hybrid', hybrid.map((r) => r.id), target);
  score('popularity', rankByPopularity(candidates, popularity), target);
  const shuffled = candidates.map((c) => ({ id: c.id, r: random() })).sort((a, b) => a.r - b.r);
  score('random', shuffled.map((x) => x.id), target);
}
const seconds = (performance.now() - started) / 1000;

// ---- report ----------------------------------------------------------------------------------------

const n = evaluated.length;
const rows = (Object.keys(totals) as Method[]).map((method) => ({
  method,
  hr: totals[method].hits / n,
  ndcg: totals[method].ndcg / n,
}));
const pop = rows.find((r) => r.method === 'popularity')!;
const table = [
  `| method | hit rate @${K} | NDCG @${K} | hit rate vs popularity |`,
  '|---|---:|---:|---:|',
  ...rows.map((r) => `| ${r.method} | ${r.hr.toFixed(4)} | ${r.ndcg.toFixed(4)} | ×${(r.hr / pop.hr).toFixed(2)} |`),
].join('\n');
const reasonLine = [...reasons].map(([r, c]) => `${r} ${((100 * c) / (n * K)).toFixed(1)} %`).join(', ');
const report = `# Recommendation evaluation

\`npm run eval:recommend\` (bench/eval-recommend.ts), ${new Date().toISOString()}

Generated dataset (seed ${SEED}): ${GOODS} goods in ${CATEGORIES} categories, ${MEMBERS} members with planted
category and tag tastes and noise; ${n} members evaluated leave-last-out (their last redemption held out,
the model built from the rest); on average ${(candidatesSeen / n).toFixed(1)} candidates per member (goods of
their points window not yet redeemed). The hybrid is the scoring code of the recommend role and the API
(src/recommendations/scoring.ts); popularity is the cold-start rule; random is a seeded shuffle. The ablations rank with one part's weight
alone (popularity still breaks ties), to show what each part brings.

${table}

Reasons of the hybrid's top ${K}: ${reasonLine}.

Ran in ${seconds.toFixed(1)} s.
`;
console.log(table);
console.log(`\nreasons of the hybrid's top ${K}: ${reasonLine}`);
console.log(`${n} members evaluated, ${(candidatesSeen / n).toFixed(1)} candidates each on average, ${seconds.toFixed(1)} s`);
writeFileSync(new URL('./results/recommend-eval.md', import.meta.url), report);
console.log('wrote bench/results/recommend-eval.md');
const hybrid = rows.find((r) => r.method === 'hybrid')!;
if (!(hybrid.hr > pop.hr * 1.2 && hybrid.ndcg > pop.ndcg * 1.2)) {
  console.error('the hybrid does not beat popularity clearly (by 20 %)');
  process.exit(1);
}
