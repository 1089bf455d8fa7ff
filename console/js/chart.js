// A small SVG chart: one or more series of {x: label, y: number} over the same labels, drawn as
// lines (with an area under the first) or bars. No library: a path per series, axis ticks and
// a legend. Every series path says how many points it drew (data-points) and their sum (data-total).
import { h, s } from './dom.js';

const W = 560;
const H = 220;
const PAD = { top: 14, right: 12, bottom: 26, left: 46 };

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const short = (n) => (Math.abs(n) >= 1e6 ? `${+(n / 1e6).toFixed(1)}M` : Math.abs(n) >= 1e3 ? `${+(n / 1e3).toFixed(1)}k` : `${+n.toFixed(2)}`);

/**
 * series: [{ name, points: [{x, y}] }]; options: { kind: 'line' | 'bar', format(y) for the axis,
 * label(x) for the ticks (default: a YYYY-MM-DD day as MM-DD), empty: what an empty chart says }.
 * Returns a <figure> with the SVG and a legend.
 */
export function chart(series, { kind = 'line', format = short, empty = 'No data in this window', title = '', label = (x) => String(x).slice(5) } = {}) {
  const labels = series[0]?.points.map((p) => p.x) ?? [];
  const all = series.flatMap((sr) => sr.points.map((p) => p.y)).filter((y) => Number.isFinite(y));
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title });
  if (labels.length === 0 || all.length === 0) {
    svg.append(s('text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, empty));
    return h('figure', { class: 'chart-figure', 'data-state': 'empty' }, svg);
  }
  const max = niceMax(Math.max(...all));
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const step = labels.length > 1 ? iw / (labels.length - 1) : 0;
  const xAt = (i) => (kind === 'bar' ? PAD.left + (iw / labels.length) * (i + 0.5) : PAD.left + (labels.length > 1 ? i * step : iw / 2));
  const yAt = (v) => PAD.top + ih - (Math.max(0, v) / max) * ih;

  for (let t = 0; t <= 4; t++) {
    const v = (max / 4) * t;
    svg.append(s('line', { class: 'axis', x1: PAD.left, x2: W - PAD.right, y1: yAt(v), y2: yAt(v) }));
    svg.append(s('text', { class: 'tick', x: PAD.left - 6, y: yAt(v) + 3, 'text-anchor': 'end' }, format(v)));
  }
  const every = Math.max(1, Math.ceil(labels.length / 7));
  labels.forEach((_, i) => {
    if (i % every === 0 || i === labels.length - 1) {
      svg.append(s('text', { class: 'tick', x: xAt(i), y: H - 8, 'text-anchor': 'middle' }, label(labels[i])));
    }
  });

  series.forEach((sr, k) => {
    const pts = sr.points.map((p, i) => [xAt(i), yAt(Number.isFinite(p.y) ? p.y : 0)]);
    const total = sr.points.reduce((a, p) => a + (Number.isFinite(p.y) ? p.y : 0), 0);
    const meta = { 'data-series': sr.name, 'data-points': pts.length, 'data-total': total };
    if (kind === 'bar') {
      const bw = Math.max(2, (iw / labels.length) * (0.8 / series.length));
      const d = pts
        .map(([x, y]) => {
          const x0 = x - (bw * series.length) / 2 + k * bw;
          return `M${x0.toFixed(1)},${(PAD.top + ih).toFixed(1)}V${y.toFixed(1)}H${(x0 + bw).toFixed(1)}V${(PAD.top + ih).toFixed(1)}Z`;
        })
        .join('');
      svg.append(s('path', { class: `bars s${k}`, d, ...meta }));
      return;
    }
    const line = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`).join('');
    if (k === 0 && pts.length > 1) {
      svg.append(s('path', { class: `area s${k}`, d: `${line}L${pts.at(-1)[0].toFixed(1)},${PAD.top + ih}L${pts[0][0].toFixed(1)},${PAD.top + ih}Z` }));
    }
    svg.append(s('path', { class: `series s${k}`, d: line, ...meta }));
    for (const [i, [x, y]] of pts.entries()) {
      svg.append(s('circle', { class: `dot s${k}`, cx: x, cy: y, r: pts.length > 40 ? 1.5 : 2.5 }, s('title', {}, `${labels[i]}: ${format(sr.points[i].y)}`)));
    }
  });
  const legend = h('div', { class: 'legend' }, series.map((sr, k) => h('span', {}, h('i', { class: `s${k}` }), sr.name)));
  return h('figure', { class: 'chart-figure', 'data-state': 'drawn' }, svg, series.length > 1 ? legend : null);
}
