/**
 * A tiny SVG emitter (no chart library) and the two charts docs/benchmarks.md shows:
 * throughput by message size (grouped bars, log scale, min-max whiskers) and handshake
 * time by variant (horizontal bars, min-max whiskers). Plain SVG 1.1 with inline styles,
 * so it renders on GitHub and in any browser.
 */
import { label } from './results.js';
import type { BufferutilKey, Results } from './results.js';
import type { Summary } from './stats.js';

const FONT = 'font-family="Helvetica, Arial, sans-serif"';
const COLORS: Record<string, string> = { pqmcp: '#1f77b4', 'pqmcp-chacha': '#6baed6', 'pqmcp-native': '#1f77b4', 'pqmcp-noble': '#6baed6', ws: '#7f7f7f', wss: '#ff7f0e', 'wss-pq': '#d62728' };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f = (x: number) => (Math.round(x * 10) / 10).toString();

class Svg {
  private readonly parts: string[] = [];
  rect(x: number, y: number, w: number, h: number, fill: string, extra = ''): void {
    this.parts.push(`<rect x="${f(x)}" y="${f(y)}" width="${f(Math.max(0, w))}" height="${f(Math.max(0, h))}" fill="${fill}"${extra ? ' ' + extra : ''}/>`);
  }
  line(x1: number, y1: number, x2: number, y2: number, stroke: string, width = 1): void {
    this.parts.push(`<line x1="${f(x1)}" y1="${f(y1)}" x2="${f(x2)}" y2="${f(y2)}" stroke="${stroke}" stroke-width="${width}"/>`);
  }
  text(x: number, y: number, s: string, size = 11, anchor: 'start' | 'middle' | 'end' = 'start', extra = ''): void {
    this.parts.push(`<text x="${f(x)}" y="${f(y)}" ${FONT} font-size="${size}" text-anchor="${anchor}"${extra ? ' ' + extra : ''}>${esc(s)}</text>`);
  }
  render(width: number, height: number, title: string): string {
    return [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}">`,
      `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
      ...this.parts,
      '</svg>',
      '',
    ].join('\n');
  }
}

function whisker(svg: Svg, x: number, y1: number, y2: number): void {
  svg.line(x, y1, x, y2, '#222', 1);
  svg.line(x - 2, y1, x + 2, y1, '#222', 1);
  svg.line(x - 2, y2, x + 2, y2, '#222', 1);
}

function legend(svg: Svg, x: number, y: number, names: string[]): void {
  let cx = x;
  for (const n of names) {
    svg.rect(cx, y - 9, 10, 10, COLORS[n] ?? '#999');
    svg.text(cx + 14, y, n, 11);
    cx += 24 + n.length * 6.5;
  }
}

interface Panel {
  title: string;
  sizes: number[];
  series: Array<{ name: string; values: Array<Summary | undefined> }>;
}

/** Throughput in MB/s by message size: one panel per runtime, bufferutil setting and direction. */
export function throughputChart(results: Results[]): string {
  const panels: Panel[] = [];
  for (const r of results) {
    for (const bu of ['no-bufferutil', 'bufferutil'] as BufferutilKey[]) {
      const tp = r.throughput[bu];
      if (!tp) continue;
      for (const dir of ['c2s', 's2c'] as const) {
        panels.push({
          title: `Node ${r.runtime.node.split('.')[0]!.slice(1)}, ${bu}, ${dir === 'c2s' ? 'client -> server' : 'server -> client'}`,
          sizes: tp.sizes,
          series: Object.keys(tp.variants).map((v) => ({ name: v, values: tp.sizes.map((s) => tp.variants[v]!.sizes[String(s)]?.[`${dir}MBps`]) })),
        });
      }
    }
  }
  const cols = 2;
  const pw = 420;
  const ph = 250;
  const top = 48;
  const width = cols * pw + 20;
  const height = top + Math.ceil(panels.length / cols) * ph + 10;
  const svg = new Svg();
  svg.text(14, 22, 'pqmcp throughput by message size, MB/s (log scale; bars: median, whiskers: min-max)', 14, 'start', 'font-weight="bold"');
  const names = [...new Set(panels.flatMap((p) => p.series.map((s) => s.name)))];
  legend(svg, 14, 40, names);
  const all = panels.flatMap((p) => p.series.flatMap((s) => s.values.flatMap((v) => (v ? [v.min, v.max] : []))));
  const lo = Math.pow(10, Math.floor(Math.log10(Math.max(1, Math.min(...all, 10)))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all, 100))));
  panels.forEach((p, i) => {
    const ox = 10 + (i % cols) * pw;
    const oy = top + Math.floor(i / cols) * ph;
    const left = ox + 46;
    const right = ox + pw - 12;
    const plotTop = oy + 26;
    const bottom = oy + ph - 34;
    const y = (v: number) => bottom - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (bottom - plotTop);
    svg.text(ox + pw / 2, oy + 16, p.title, 12, 'middle', 'font-weight="bold"');
    for (let v = lo; v <= hi; v *= 10) {
      svg.line(left, y(v), right, y(v), '#ddd');
      svg.text(left - 4, y(v) + 4, String(v), 10, 'end');
    }
    svg.line(left, bottom, right, bottom, '#333');
    const groupW = (right - left) / p.sizes.length;
    const barW = Math.min(22, (groupW - 12) / p.series.length);
    p.sizes.forEach((size, si) => {
      const gx = left + si * groupW + (groupW - barW * p.series.length) / 2;
      p.series.forEach((s, k) => {
        const v = s.values[si];
        if (!v) return;
        const x = gx + k * barW;
        svg.rect(x + 1, y(v.median), barW - 2, bottom - y(v.median), COLORS[s.name] ?? '#999');
        if (v.n > 1) whisker(svg, x + barW / 2, y(v.max), y(v.min));
      });
      svg.text(left + si * groupW + groupW / 2, bottom + 14, label(size), 10, 'middle');
    });
    svg.text(ox + 12, (plotTop + bottom) / 2, 'MB/s', 10, 'middle', `transform="rotate(-90 ${f(ox + 12)} ${f((plotTop + bottom) / 2)})"`);
  });
  return svg.render(width, height, 'pqmcp throughput by message size');
}

/** Handshake time to the first MCP response, per variant, one panel per runtime. */
export function handshakeChart(results: Results[]): string {
  const rows = results.map((r) => ({ title: `Node ${r.runtime.node} (OpenSSL ${r.runtime.openssl})`, variants: Object.entries(r.handshake?.variants ?? {}) }));
  const rowH = 22;
  const pw = 860;
  const heights = rows.map((r) => 34 + r.variants.length * rowH + 24);
  const top = 34;
  const height = top + heights.reduce((a, b) => a + b, 0);
  const svg = new Svg();
  svg.text(14, 22, 'Handshake: TCP connect to the first MCP response, ms (bars: median, whiskers: min-max)', 14, 'start', 'font-weight="bold"');
  const max = Math.max(1, ...rows.flatMap((r) => r.variants.map(([, x]) => x.firstResponseMs?.max ?? 0)));
  const scaleMax = Math.pow(10, Math.ceil(Math.log10(max)));
  const nice = [1, 2, 2.5, 5, 10].map((k) => (k * scaleMax) / 10).find((v) => v >= max) ?? scaleMax;
  let oy = top;
  rows.forEach((row, i) => {
    const left = 200;
    const right = pw - 60;
    const x = (v: number) => left + (v / nice) * (right - left);
    svg.text(14, oy + 20, row.title, 12, 'start', 'font-weight="bold"');
    const plotTop = oy + 30;
    row.variants.forEach(([name, v], k) => {
      const cy = plotTop + k * rowH;
      svg.text(left - 8, cy + 14, name, 11, 'end');
      const s = v.firstResponseMs;
      if (!s) return;
      svg.rect(left, cy + 4, x(s.median) - left, rowH - 8, COLORS[name] ?? '#999');
      if (s.n > 1) {
        svg.line(x(s.min), cy + rowH / 2, x(s.max), cy + rowH / 2, '#222');
        svg.line(x(s.min), cy + 7, x(s.min), cy + rowH - 7, '#222');
        svg.line(x(s.max), cy + 7, x(s.max), cy + rowH - 7, '#222');
      }
      svg.text(Math.min(right + 50, x(s.max) + 6), cy + 15, s.median.toFixed(2), 10, 'start');
    });
    const bottom = plotTop + row.variants.length * rowH + 2;
    svg.line(left, bottom, right, bottom, '#333');
    for (let t = 0; t <= 5; t++) {
      const v = (nice * t) / 5;
      svg.line(x(v), bottom, x(v), bottom + 4, '#333');
      svg.text(x(v), bottom + 15, String(Math.round(v * 100) / 100), 10, 'middle');
    }
    oy += heights[i]!;
  });
  return svg.render(pw, height, 'pqmcp handshake time by variant');
}
