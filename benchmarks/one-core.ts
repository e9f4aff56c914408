/**
 * Handshakes on a one-core server with a saturated event loop: the risk of SCHED_IDLE
 * crypto workers (`cryptoWorkerPriority: 'idle'`, docs/benchmarks.md, "Floods"). A and B
 * are two server processes (benchmarks/server.ts, endpoint mcp-pqmcp-edge, the given
 * options over the defaults), each pinned to CPU 0 with `taskset -a -p` (every thread, and
 * the threads it starts later inherit it); this runner (on the other CPUs) keeps the
 * server's event loop busy with `--sessions` established sessions calling `tools/call` back
 * to back, while `--parallel` honest agents (each from its own 16 addresses, below the per-source rates) do full
 * handshakes (with their first call) one after another, each bounded by `--timeout-ms`.
 * The honest handshakes keep the crypto pool busy, so jobs go to the worker threads, not
 * to the inline lane. Rounds alternate the order of A and B; each phase is preceded by
 * the same handshakes with no session calling (the idle reference).
 *
 *   npx tsx benchmarks/one-core.ts --a '{"cryptoWorkerPriority":"idle"}' --b '{}' --rounds 2
 *
 * Reports per setting: handshakes completed / attempted, timed out, median, p90 and max
 * (ms), the ratio of the busy median to the idle median, the established sessions' calls
 * per second, the pool's guard counters, and the 1-minute load average. Linux only
 * (taskset, util-linux). Loopback only.
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { makePqmcpFixture } from './lib/fixtures.js';
import { now, startServer, within, type ServerProcess, type SuiteContext } from './lib/context.js';
import { median, percentile } from './lib/stats.js';
import { honestAgent, type HonestAgent } from './suites/flood.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
};
const rounds = Number(arg('rounds', '2'));
const sessions = Number(arg('sessions', '8'));
const parallel = Number(arg('parallel', '3'));
const phaseMs = Number(arg('seconds', '8')) * 1000;
const timeoutMs = Number(arg('timeout-ms', '10000'));
const settings = { A: JSON.parse(arg('a', '{}')) as Record<string, unknown>, B: JSON.parse(arg('b', '{}')) as Record<string, unknown> };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Side {
  name: 'A' | 'B';
  server: ServerProcess;
  agent: HonestAgent;
  sessions: Client[];
  idle: number[];
  busy: number[];
  attempted: number;
  timedOut: number;
  failed: number;
  calls: number;
  callMs: number;
  loads: number[];
}

/** `parallel` agents, each doing handshakes one after another until `until`: durations, time-outs, other failures. */
async function handshakeLoops(agent: HonestAgent, until: number): Promise<{ ms: number[]; attempted: number; timedOut: number; failed: number }> {
  const out = { ms: [] as number[], attempted: 0, timedOut: 0, failed: 0 };
  await Promise.all(
    Array.from({ length: parallel }, async (_, i) => {
      for (let k = 0; now() < until; k++) {
        out.attempted++;
        const t0 = now();
        let client: Client | undefined;
        try {
          const connecting = agent.connect(`127.0.${10 + i}.${1 + (k % 16)}`);
          client = await within(connecting, timeoutMs, 'handshake');
          await within(client.callTool({ name: 'echo', arguments: { text: 'x' } }), timeoutMs, 'first call');
          out.ms.push(now() - t0);
        } catch (err) {
          if (err instanceof Error && /longer than/.test(err.message)) out.timedOut++;
          else out.failed++;
        } finally {
          await client?.close().catch(() => {});
        }
      }
    }),
  );
  return out;
}

const ctx: SuiteContext = { mode: 'full', fixture: makePqmcpFixture() };
const sides: Side[] = [];
try {
  for (const name of ['A', 'B'] as const) {
    const server = await startServer(ctx, ['mcp-pqmcp-edge'], { edgeOptions: { cryptoWorkers: 1, ...settings[name] } });
    execFileSync('taskset', ['-a', '-p', '-c', '0', String(server.worker.pid)], { stdio: 'ignore' });
    const url = `ws://127.0.0.1:${server.ports['mcp-pqmcp-edge']}/`;
    const agent = honestAgent(ctx, url);
    const list: Client[] = [];
    for (let i = 0; i < sessions; i++) list.push(await agent.connect(`127.0.0.${100 + i}`));
    sides.push({ name, server, agent, sessions: list, idle: [], busy: [], attempted: 0, timedOut: 0, failed: 0, calls: 0, callMs: 0, loads: [] });
  }
  for (let round = 0; round < rounds; round++) {
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      side.loads.push(loadavg()[0]!);
      side.idle.push(...(await handshakeLoops(side.agent, now() + 2000)).ms);
      let stop = false;
      let calls = 0;
      const t0 = now();
      const loops = side.sessions.map(async (client) => {
        while (!stop) {
          await client.callTool({ name: 'echo', arguments: { text: 'y'.repeat(100) } });
          calls++;
        }
      });
      await sleep(300);
      const hs = await handshakeLoops(side.agent, now() + phaseMs);
      stop = true;
      await Promise.all(loops);
      side.calls += calls;
      side.callMs += now() - t0;
      side.busy.push(...hs.ms);
      side.attempted += hs.attempted;
      side.timedOut += hs.timedOut;
      side.failed += hs.failed;
      await sleep(1000);
    }
  }
  console.log(`one core (taskset -c 0), ${sessions} sessions calling, ${parallel} honest agents, ${rounds} rounds of ${phaseMs / 1000} s, handshake timeout ${timeoutMs} ms, ${process.version}`);
  for (const s of sides) {
    const stats = await s.server.worker.request<{ cryptoStats?: Record<string, number> }>('edgeStats').catch(() => undefined);
    console.log(
      `${s.name} ${JSON.stringify(settings[s.name])}: handshakes ${s.busy.length}/${s.attempted} (timed out ${s.timedOut}, failed ${s.failed}), ` +
        `median ${median(s.busy).toFixed(0)} p90 ${percentile(s.busy, 90).toFixed(0)} max ${Math.max(0, ...s.busy).toFixed(0)} ms, ${(median(s.busy) / median(s.idle)).toFixed(1)}x idle (${median(s.idle).toFixed(0)} ms), ` +
        `calls ${((s.calls * 1000) / s.callMs).toFixed(0)}/s${stats?.cryptoStats ? `, pool ${JSON.stringify(stats.cryptoStats)}` : ''}, load ${s.loads.map((l) => l.toFixed(1)).join(' ')}`,
    );
  }
} finally {
  for (const s of sides) {
    for (const c of s.sessions) await c.close().catch(() => {});
    await s.server.stop();
  }
}
