/**
 * The bench's chart: req/s and p99 latency per scenario, each scenario next to its baseline
 * (the naive SQL implementation of the same operation) with the ratio between them, drawn as a
 * small self-contained SVG (no dependency, no script, no external font). bench/report.ts writes
 * it next to latest.md on every run; `npm run bench:chart` redraws it from latest.json.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** What the chart reads from a bench result (bench/report.ts BenchResults). */
export interface ChartInput {
  startedAt: string;
  scenarios: Array<{ name: string; ok: boolean; stats: { reqPerSec: number; latencyMs: { p99: number } } }>;
}

const BASELINE = 'baseline-';
const COLORS = { app: '#2b6cb0', baseline: '#a0aec0', reference: '#68a37a', failed: '#c53030' };
const ROW = 22;
const LABEL_W = 130;
const BAR_W = 300;
const VALUE_W = 120;
const PANEL_W = LABEL_W + BAR_W + VALUE_W;
const TOP = 70;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (n: number) => Math.round(n).toLocaleString('en-US');

/** A round upper bound for an axis (1, 2 or 5 × 10^k above max) and its tick step. */
export function niceScale(max: number): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const pow = 10 ** Math.floor(Math.log10(max));
  const top = [1, 2, 5, 10].map((m) => m * pow).find((t) => t >= max) ?? 10 * pow;
  const step = top / (top / pow >= 5 ? 5 : top / pow === 2 ? 4 : 5);
  return { top, step };
}

type Kind = keyof typeof COLORS;

function kindOf(s: ChartInput['scenarios'][number]): Kind {
  if (!s.ok) return 'failed';
  if (s.name.startsWith(BASELINE)) return 'baseline';
  return s.name === 'hello' || s.name === 'hello-after' ? 'reference' : 'app';
}

/** "7.97× baseline" on a scenario with a baseline, and how the baseline compares, for p99. */
function ratioNote(input: ChartInput, name: string, metric: 'rps' | 'p99'): string {
  const base = input.scenarios.find((s) => s.name === `${BASELINE}${name}`);
  const own = input.scenarios.find((s) => s.name === name);
  if (!base || !own) return '';
  const r =
    metric === 'rps' ? own.stats.reqPerSec / base.stats.reqPerSec : base.stats.latencyMs.p99 / Math.max(own.stats.latencyMs.p99, 0.001);
  return metric === 'rps' ? ` (${r.toFixed(1)}× baseline)` : ` (${r.toFixed(1)}× lower)`;
}

function panel(input: ChartInput, x0: number, title: string, metric: 'rps' | 'p99'): string[] {
  const value = (s: ChartInput['scenarios'][number]) => (metric === 'rps' ? s.stats.reqPerSec : s.stats.latencyMs.p99);
  const { top, step } = niceScale(Math.max(...input.scenarios.map(value)));
  const height = input.scenarios.length * ROW;
  const out: string[] = [`<text x="${x0}" y="${TOP - 28}" class="title">${esc(title)}</text>`];
  const bx = x0 + LABEL_W;
  for (let t = 0; t <= top + step / 2; t += step) {
    const x = bx + (t / top) * BAR_W;
    out.push(`<line x1="${x.toFixed(1)}" y1="${TOP - 6}" x2="${x.toFixed(1)}" y2="${TOP + height}" class="grid"/>`);
    out.push(`<text x="${x.toFixed(1)}" y="${TOP - 10}" class="tick">${num(t)}</text>`);
  }
  input.scenarios.forEach((s, i) => {
    const y = TOP + i * ROW;
    const w = Math.max((value(s) / top) * BAR_W, 1);
    const label = metric === 'rps' ? `${num(s.stats.reqPerSec)}/s` : `${num(s.stats.latencyMs.p99)} ms`;
    out.push(`<text x="${bx - 8}" y="${y + ROW / 2 + 4}" class="label">${esc(s.name)}</text>`);
    out.push(
      `<rect x="${bx}" y="${y + 3}" width="${w.toFixed(1)}" height="${ROW - 6}" fill="${COLORS[kindOf(s)]}">` +
        `<title>${esc(`${s.name}: ${label}`)}</title></rect>`,
    );
    out.push(`<text x="${(bx + w + 6).toFixed(1)}" y="${y + ROW / 2 + 4}" class="value">${esc(label + ratioNote(input, s.name, metric))}</text>`);
  });
  return out;
}

export function chartSvg(input: ChartInput): string {
  const width = PANEL_W * 2 + 60;
  const height = TOP + input.scenarios.length * ROW + 50;
  const legendY = height - 18;
  const legend: Array<[Kind, string]> = [
    ['app', 'points-mall'],
    ['baseline', 'baseline (naive SQL, same operation)'],
    ['reference', 'hello (framework ceiling)'],
    ...(input.scenarios.some((s) => !s.ok) ? [['failed', 'invariants failed'] as [Kind, string]] : []),
  ];
  let lx = 20;
  const legendParts = legend.map(([k, text]) => {
    const part = `<rect x="${lx}" y="${legendY - 10}" width="12" height="12" fill="${COLORS[k]}"/><text x="${lx + 18}" y="${legendY}" class="legend">${esc(text)}</text>`;
    lx += 30 + text.length * 6.5;
    return part;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img">`,
    `<title>${esc(`Benchmark ${input.startedAt}: req/s and p99 per scenario against the baseline`)}</title>`,
    '<style>text{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;font-size:12px;fill:#1a202c}' +
      '.title{font-size:14px;font-weight:600}.tick{font-size:10px;fill:#718096;text-anchor:middle}' +
      '.label{text-anchor:end}.value{font-size:11px}.legend{font-size:11px}.grid{stroke:#e2e8f0;stroke-width:1}</style>',
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="20" y="18" class="legend">${esc(`Benchmark ${input.startedAt}`)}</text>`,
    ...panel(input, 20, 'Throughput (req/s, higher is better)', 'rps'),
    ...panel(input, 40 + PANEL_W, 'p99 latency (ms, lower is better)', 'p99'),
    ...legendParts,
    '</svg>',
    '',
  ].join('\n');
}

/** The line latest.md carries to show the chart (relative: the SVG sits next to it). */
export const CHART_LINK = '![req/s and p99 per scenario against the baseline](latest.svg)';

/** latest.md with the chart linked under its "Overall" line (unchanged if already linked). */
export function linkChart(markdown: string): string {
  if (markdown.includes(CHART_LINK)) return markdown;
  const lines = markdown.split('\n');
  const at = lines.findIndex((l) => l.startsWith('Overall:'));
  lines.splice(at === -1 ? 1 : at + 1, 0, '', CHART_LINK);
  return lines.join('\n');
}

/** Redraws latest.svg from latest.json in `dir` and links it from latest.md; returns the SVG path. */
export function writeChart(dir: string): string {
  const input = JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8')) as ChartInput;
  const svg = join(dir, 'latest.svg');
  writeFileSync(svg, chartSvg(input));
  const md = join(dir, 'latest.md');
  writeFileSync(md, linkChart(readFileSync(md, 'utf8')));
  return svg;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(`chart written to ${writeChart(new URL('./results/', import.meta.url).pathname)}`);
}
