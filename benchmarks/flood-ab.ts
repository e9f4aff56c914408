/**
 * One flood against two (or, with --c, three) settings of the edge listener, interleaved in
 * one run: A and B (and C) are server processes (benchmarks/server.ts, endpoint
 * mcp-pqmcp-edge with the given options over the defaults), the flooder (flooder.ts) attacks one at a time, and each
 * round measures A idle, A flooded, B idle, B flooded (the order turns each round), so
 * that the machine's drifting load falls on both alike. Reports, per setting, the honest
 * handshake and `tools/call` p99 under the flood as ratios to its own idle phases, and the
 * server's CPU time during the flood phases, and its crypto pool's counters at the end
 * (refused, inlined; with `cryptoWorkerPriority: 'idle'` the starvation guard's late and reserved).
 *
 *   npx tsx benchmarks/flood-ab.ts --flood keyupdate --a '{"keyUpdateRate":"Infinity"}' --b '{}' --rounds 4
 *
 * Options are JSON; the string "Infinity" stands for Infinity. Loopback only. `--a-root DIR`
 * (`--b-root`, `--c-root`): that side's server runs another checkout's benchmarks/server.ts
 * and src/ (a code A/B: `git archive main | tar -x -C DIR`, node_modules linked).
 */
import { loadavg } from 'node:os';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { makePqmcpFixture } from './lib/fixtures.js';
import { startServer, type ServerProcess, type SuiteContext } from './lib/context.js';
import { spawnWorker } from './lib/proc.js';
import { loopbackSources } from './lib/floods.js';
import { median, percentile } from './lib/stats.js';
import { SCENARIOS, floodHellos, honestAgent, type HonestAgent } from './suites/flood.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
};
const parse = (json: string): Record<string, unknown> => JSON.parse(json, (_k, v: unknown) => (v === 'Infinity' ? Number.POSITIVE_INFINITY : v)) as Record<string, unknown>;

const scenario = SCENARIOS.find((s) => s.name === arg('flood', 'keyupdate'));
if (!scenario) throw new Error(`unknown flood; one of ${SCENARIOS.map((s) => s.name).join(', ')}`);
const rounds = Number(arg('rounds', '3'));
const handshakesPerPhase = Number(arg('handshakes', '6'));
const callMs = Number(arg('call-ms', '1000'));
const settings: Record<string, Record<string, unknown>> = { A: parse(arg('a', '{}')), B: parse(arg('b', '{}')), ...(process.argv.includes('--c') ? { C: parse(arg('c', '{}')) } : {}) };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Side {
  name: string;
  server: ServerProcess;
  url: string;
  agent: HonestAgent;
  established: Client;
  hellos: Buffer[];
  idle: { hs: number[]; calls: number[] };
  flood: { hs: number[]; calls: number[]; failed: number; cpuMs: number; ms: number };
}

const ctx: SuiteContext = { mode: 'full', fixture: makePqmcpFixture() };
const flooder = await spawnWorker('flooder.ts');
const sides: Side[] = [];
try {
  for (const name of Object.keys(settings)) {
    const root = arg(`${name.toLowerCase()}-root`, '');
    const server = await startServer(ctx, ['mcp-pqmcp-edge'], { edgeOptions: settings[name]!, ...(root ? { root } : {}) });
    const url = `ws://127.0.0.1:${server.ports['mcp-pqmcp-edge']}/`;
    const agent = honestAgent(ctx, url);
    const established = await agent.connect('127.0.0.201');
    await agent.handshakes(2);
    await agent.calls(established, 300);
    sides.push({ name, server, url, agent, established, hellos: floodHellos(ctx, url), idle: { hs: [], calls: [] }, flood: { hs: [], calls: [], failed: 0, cpuMs: 0, ms: 0 } });
  }
  const load0 = loadavg()[0]!;
  for (let round = 0; round < rounds; round++) {
    // The order turns each round (A B C, B C A, ...; with two: A B, B A).
    for (const side of sides.map((_, i) => sides[(i + round) % sides.length]!)) {
      side.idle.hs.push(...(await side.agent.handshakes(handshakesPerPhase)).ms);
      side.idle.calls.push(...(await side.agent.calls(side.established, callMs)));
      await flooder.request('start', { url: side.url, kind: scenario.kind, sources: loopbackSources(scenario.sources), connections: scenario.connections, hellos: side.hellos, maxOpened: 50_000, fixture: ctx.fixture });
      const cpu0 = await side.server.cpuMicros();
      const t0 = performance.now();
      try {
        await sleep(scenario.warmupMs);
        const hs = await side.agent.handshakes(handshakesPerPhase);
        side.flood.hs.push(...hs.ms);
        side.flood.failed += hs.failed;
        side.flood.calls.push(...(await side.agent.calls(side.established, callMs)));
      } finally {
        side.flood.cpuMs += ((await side.server.cpuMicros()) - cpu0) / 1000;
        side.flood.ms += performance.now() - t0;
        await flooder.request('stop');
      }
      await sleep(1000);
    }
  }
  console.log(`flood ${scenario.name}, ${rounds} rounds, ${process.version}, load average ${load0.toFixed(1)}-${loadavg()[0]!.toFixed(1)}`);
  for (const s of sides) {
    const pool = (await s.server.worker.request<{ cryptoStats?: Record<string, number> }>('edgeStats').catch(() => undefined))?.cryptoStats;
    const hs = median(s.flood.hs) / median(s.idle.hs);
    const p99 = percentile(s.flood.calls, 99) / percentile(s.idle.calls, 99);
    console.log(
      `${s.name}${arg(`${s.name.toLowerCase()}-root`, '') ? ` (${arg(`${s.name.toLowerCase()}-root`, '')})` : ''} ${JSON.stringify(settings[s.name], (_k, v: unknown) => (v === Number.POSITIVE_INFINITY ? "Infinity" : v))}: honest ${s.flood.hs.length}/${s.flood.hs.length + s.flood.failed}, ` +
        `handshake ${hs.toFixed(2)}x (${median(s.flood.hs).toFixed(1)} vs ${median(s.idle.hs).toFixed(1)} ms), ` +
        `p99 ${p99.toFixed(2)}x (${(percentile(s.flood.calls, 99) / 1000).toFixed(2)} vs ${(percentile(s.idle.calls, 99) / 1000).toFixed(2)} ms), ` +
        `server CPU ${((s.flood.cpuMs / s.flood.ms) * 100).toFixed(0)} % of a core while flooded, ` +
        `calls > 1 ms ${((100 * s.flood.calls.filter((us) => us > 1000).length) / s.flood.calls.length).toFixed(2)} % vs ${((100 * s.idle.calls.filter((us) => us > 1000).length) / s.idle.calls.length).toFixed(2)} %, p90 ${(percentile(s.flood.calls, 90) / 1000).toFixed(2)} vs ${(percentile(s.idle.calls, 90) / 1000).toFixed(2)} ms` +
        (pool ? `, crypto pool ${JSON.stringify(pool)}` : ''),
    );
  }
} finally {
  for (const s of sides) {
    await s.established.close().catch(() => {});
    await s.server.stop();
  }
  await flooder.kill();
}
