/**
 * The benchmark suite runs end to end: `benchmarks/run.ts --smoke` (tiny counts) starts
 * every suite's measuring and server processes, and writes results JSON, Markdown and both
 * SVG charts. No assertion on any number: timings belong in the benchmarks, not in tests.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { chromiumPath } from '../browser/chromium.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'pqmcp-bench-smoke-test-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function runSmoke(): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'benchmarks/run.ts', '--smoke', '--out', out], { cwd: root, timeout: 420_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout });
    });
  });
}

describe('npm run bench -- --smoke', () => {
  it('runs every suite and writes valid results, Markdown and charts', { timeout: 480_000 }, async () => {
    const { code, stdout } = await runSmoke();
    expect(stdout).toContain('smoke results in');
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(results.errors, JSON.stringify(results.errors)).toEqual([]);
    expect(code).toBe(0);
    expect(results).toMatchObject({ schema: 1, mode: 'smoke', runtimeKey: expect.stringMatching(/^node\d+$/) });
    const withBrowser = chromiumPath() !== undefined ? ['browser'] : [];
    // Cold start measures the built CLI: with a build (CI builds first) it is measured,
    // without one it is skipped (outside CI; under CI=true a missing build is an error).
    const withColdstart = existsSync(join(root, 'dist', 'cli.js')) ? ['coldstart'] : [];
    expect(Object.keys(results).sort()).toEqual(
      ['durationSeconds', 'errors', 'handshake', 'mcp', 'memory', 'mode', 'ratios', 'runtime', 'runtimeKey', 'schema', 'skipped', 'startedAt', 'targets', 'throughput', 'tls', ...withBrowser, ...withColdstart].sort(),
    );
    if (withColdstart.length) {
      for (const c of ['node', 'help', 'version', 'connect-help']) expect(results.coldstart.ms[c].n, c).toBe(2);
      for (const c of ['help', 'version', 'connect-help']) expect(results.ratios[`coldstart.${c}/node`], c).toBeGreaterThan(0);
      expect(results.targets.map((t: { key: string }) => t.key)).toContain('coldstart.help/node');
      expect(readFileSync(join(out, 'results.md'), 'utf8')).toContain('| pqmcp connect --help |');
    } else expect(results.skipped.coldstart).toMatch(/npm run build/);
    // Browser: handshakes from a page in Chromium beside Node's, as a ratio.
    if (withBrowser.length) expect(results.ratios['browser.handshake.browser/node']).toBeGreaterThan(0);
    else expect(results.skipped.browser).toMatch(/no Chromium/);
    // Handshake: every variant this runtime can run, with the measured fields.
    for (const v of ['ws', 'pqmcp-native', 'pqmcp-noble', 'pqmcp-resumed']) {
      expect(Object.keys(results.handshake.variants[v])).toEqual(expect.arrayContaining(['firstResponseMs', 'clientCpuMs', 'serverCpuMs', 'handshakesPerSecond']));
    }
    // The resumed variant really resumed (the suite fails a measured connection that did not).
    expect(results.handshake.variants['pqmcp-resumed'].details.resumed).toMatch(/^all 1 sequential; \d+ of \d+ under load$/);
    expect(results.ratios).toHaveProperty(['handshake.time.pqmcp-resumed/ws']);
    // The same connection cold (a fresh process's first) and warm (after `settle` more), beside it.
    for (const v of ['ws', 'pqmcp-native', 'pqmcp-resumed']) {
      expect(results.handshake.variants[v].cold.firstResponseMs).toBeGreaterThan(0);
      expect(results.handshake.variants[v].warm.firstResponseMs.n).toBe(1);
    }
    expect(results.handshake).toMatchObject({ warmup: 1, settle: 2, warmRounds: 1, loadAverage: { default: expect.any(Number), warm: expect.any(Number) } });
    for (const key of ['handshake.warm.time.pqmcp-native/ws', 'handshake.warm.cpu.pqmcp-native/ws', 'handshake.cold.time.pqmcp-native/ws', 'handshake.warm.time.pqmcp-resumed/ws']) expect(results.ratios).toHaveProperty([key]);
    // Throughput: each variant, each size, both directions and the round trip.
    const tp = results.throughput['no-bufferutil'];
    expect(tp.sizes).toEqual([256, 4096, 65536, 1048576]);
    for (const v of ['pqmcp', 'ws']) {
      for (const size of tp.sizes) expect(Object.keys(tp.variants[v].sizes[size])).toEqual(expect.arrayContaining(['c2sMBps', 's2cMBps', 'rttP50Us', 'rttP99Us']));
    }
    // MCP and memory.
    for (const v of ['pqmcp', 'pqmcp-policy', 'pqmcp-policy-nomemo', 'pqmcp-audit', 'ws', 'inmemory']) expect(Object.keys(results.mcp.variants[v].payloads)).toEqual(['100', '10240']);
    expect(Object.keys(results.memory)).toEqual(expect.arrayContaining(['pqmcp', 'ws']));
    // Both memory parts: idle sessions for every variant, a burst in flight for pqmcp.
    for (const v of Object.keys(results.memory)) expect(results.memory[v], v).toHaveProperty('serverKiBPerSessionTotal');
    expect(results.memory.pqmcp).toHaveProperty('senderMiBPerMiB');
    // Ratios and target verdicts are derived.
    expect(results.ratios).toHaveProperty(['mcp.100.seq.pqmcp/ws']);
    expect(results.ratios).toHaveProperty(['mcp.100.seq.pqmcp-policy/pqmcp']);
    expect(results.ratios).toHaveProperty(['mcp.100.seq.pqmcp-policy-nomemo/pqmcp']);
    expect(results.ratios).toHaveProperty(['throughput.no-bufferutil.s2c.1048576.pqmcp/ws']);
    expect(results.targets.length).toBeGreaterThan(10);
    // Reports.
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toContain('#### Handshake');
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toContain('Cold, first connections and warm');
    for (const chart of ['benchmarks-throughput.svg', 'benchmarks-handshake.svg']) {
      const svg = readFileSync(join(out, chart), 'utf8');
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
      expect(svg.trim().endsWith('</svg>')).toBe(true);
    }
  });
});
