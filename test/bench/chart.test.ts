/**
 * The bench chart, drawn from the committed bench/results/latest.json: one bar per scenario in
 * each panel (req/s, p99), each scenario's ratio to its baseline, the committed latest.svg in
 * step with latest.json, and latest.md linking it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CHART_LINK, chartSvg, linkChart, niceScale, type ChartInput } from '../../bench/chart.ts';

const results = (file: string) => readFileSync(new URL(`../../bench/results/${file}`, import.meta.url), 'utf8');
const latest = JSON.parse(results('latest.json')) as ChartInput;

describe('bench chart', () => {
  const svg = chartSvg(latest);

  it('draws one bar per scenario in each panel, labelled with its value', () => {
    const bars = [...svg.matchAll(/<rect [^>]*height="\d+"[^>]*><title>([^<]*)<\/title><\/rect>/g)].map((m) => m[1]);
    expect(bars).toHaveLength(latest.scenarios.length * 2);
    for (const s of latest.scenarios) {
      expect(bars, s.name).toContain(`${s.name}: ${Math.round(s.stats.reqPerSec).toLocaleString('en-US')}/s`);
      expect(bars, s.name).toContain(`${s.name}: ${Math.round(s.stats.latencyMs.p99).toLocaleString('en-US')} ms`);
    }
  });

  it('sets each scenario against its baseline', () => {
    const pairs = latest.scenarios.filter((s) => latest.scenarios.some((b) => b.name === `baseline-${s.name}`));
    expect(pairs.map((s) => s.name)).toEqual(['flash', 'redeem']);
    for (const s of pairs) {
      const base = latest.scenarios.find((b) => b.name === `baseline-${s.name}`)!;
      const ratio = (s.stats.reqPerSec / base.stats.reqPerSec).toFixed(1);
      expect(svg).toContain(`(${ratio}× baseline)`);
    }
    expect(svg).toContain('baseline (naive SQL, same operation)');
  });

  it('is a self-contained, well-formed SVG', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).not.toMatch(/<script|href=|@import|url\(/);
    // every element opened is closed (self-closing or paired)
    const opened = [...svg.matchAll(/<([a-z]+)[^>]*?(\/?)>/g)].filter((m) => m[2] !== '/').map((m) => m[1]);
    const closed = [...svg.matchAll(/<\/([a-z]+)>/g)].map((m) => m[1]);
    expect(closed.sort()).toEqual(opened.sort());
    // names are escaped
    const odd = chartSvg({ startedAt: 'x', scenarios: [{ name: 'a<b>&"c"', ok: true, stats: { reqPerSec: 1, latencyMs: { p99: 1 } } }] });
    expect(odd).toContain('a&lt;b&gt;&amp;&quot;c&quot;');
    expect(odd).not.toContain('a<b>');
  });

  it('marks scenarios whose invariants failed', () => {
    const failed = chartSvg({ ...latest, scenarios: latest.scenarios.map((s, i) => (i === 1 ? { ...s, ok: false } : s)) });
    expect(failed).toContain('invariants failed');
    expect(svg).not.toContain('invariants failed');
  });

  it('rounds axes up to 1, 2 or 5 × 10^k', () => {
    expect(niceScale(10_670)).toEqual({ top: 20_000, step: 5_000 });
    expect(niceScale(487)).toEqual({ top: 500, step: 100 });
    expect(niceScale(1_231)).toEqual({ top: 2_000, step: 500 });
    expect(niceScale(100)).toEqual({ top: 100, step: 20 });
    expect(niceScale(0)).toEqual({ top: 1, step: 0.25 });
  });

  it('is committed next to latest.md, in step with latest.json, and linked from it', () => {
    expect(results('latest.svg')).toBe(svg);
    expect(results('latest.md')).toContain(CHART_LINK);
    expect(linkChart(results('latest.md'))).toBe(results('latest.md'));
    expect(linkChart('# Results\n\nOverall: ok\n\n| a |')).toBe(`# Results\n\nOverall: ok\n\n${CHART_LINK}\n\n| a |`);
  });
});
