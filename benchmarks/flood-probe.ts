/**
 * Where an established session's `tools/call` latency goes under a flood: one listener
 * (endpoint mcp-pqmcp-edge, options over the defaults), idle and flooded phases alternating,
 * and per phase, measured only while the session calls back to back:
 *
 *   calls       the session's `tools/call` latency: p50, p90, p99, max (ms)
 *   server      its event loop's utilisation and delay (monitorEventLoopDelay: p99, max),
 *               each thread's CPU (ms per second of phase), crypto jobs refused and inlined
 *   runner      this process's event loop utilisation and delay, and CPU
 *   flooder     the flooder process's CPU
 *
 *   npx tsx benchmarks/flood-probe.ts --flood replay --options '{}' --rounds 3 [--cpu-prof DIR]
 *
 * A diagnostic (docs/benchmarks.md, "Floods"), not a suite. Loopback only; Linux for the
 * per-thread and flooder CPU (read from /proc).
 */
import { loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { makePqmcpFixture } from './lib/fixtures.js';
import { startServer, type SuiteContext } from './lib/context.js';
import { spawnWorker } from './lib/proc.js';
import { loopbackSources } from './lib/floods.js';
import { percentile } from './lib/stats.js';
import { SCENARIOS, floodHellos, honestAgent } from './suites/flood.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
};
const scenario = SCENARIOS.find((s) => s.name === arg('flood', 'replay'));
if (!scenario) throw new Error(`unknown flood; one of ${SCENARIOS.map((s) => s.name).join(', ')}`);
const rounds = Number(arg('rounds', '3'));
const callMs = Number(arg('call-ms', '2000'));
const options = JSON.parse(arg('options', '{}')) as Record<string, unknown>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU ms of process `pid` so far (utime + stime; 10 ms ticks). */
const pidCpuMs = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};

interface ServerProbe {
  elu: number;
  delayMs: { p50: number; p90: number; p99: number; max: number };
  threadsMs: Record<string, number>;
  refused: number;
  inlined: number;
  /** The event loop thread's schedstat deltas: ns running, ns waiting for a CPU, slices. */
  sched: number[];
  /** GC pauses on the event loop thread (kind: 1 scavenge, 2 mark-compact, 4 incremental, 8 weak callbacks; 16 minor mark-sweep). */
  gc: Array<{ kind: number; ms: number }>;
}
const runnerSched = (): number[] => readFileSync('/proc/thread-self/schedstat', 'utf8').trim().split(' ').map(Number);

const ctx: SuiteContext = { mode: 'full', fixture: makePqmcpFixture() };
const flooder = await spawnWorker('flooder.ts');
const profDir = arg('cpu-prof', '');
const server = await startServer(ctx, ['mcp-pqmcp-edge'], { edgeOptions: options, ...(profDir ? { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval', '100'] } : {}) });
const url = `ws://127.0.0.1:${server.ports['mcp-pqmcp-edge']}/`;
const agent = honestAgent(ctx, url);
const established = await agent.connect('127.0.0.201');
await agent.handshakes(2);
await agent.calls(established, 300);
const hellos = floodHellos(ctx, url);
// --decoy: also flood a second, identical server process that nobody measures, so the
// flood's CPU contends with the measured one without any flood work on its event loop.
const decoy = arg('decoy', '0') === '1' ? await startServer(ctx, ['mcp-pqmcp-edge'], { edgeOptions: options }) : undefined;
const decoyUrl = decoy ? `ws://127.0.0.1:${decoy.ports['mcp-pqmcp-edge']}/` : '';
const decoyHellos = decoy ? floodHellos(ctx, decoyUrl) : [];

const f = (x: number, d = 2) => x.toFixed(d);
/** --calls-out FILE: every call as [phase, sent, ran on the server, answered] (CLOCK_MONOTONIC us), to align with a --cpu-prof profile. */
const record: Array<[string, number, number, number]> = [];
async function phase(name: string): Promise<void> {
  const seconds = callMs / 1000;
  const delay = monitorEventLoopDelay({ resolution: 1 });
  await server.worker.request('probeStart');
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const fl0 = pidCpuMs(flooder.pid);
  const rs0 = runnerSched();
  delay.enable();
  const lat: number[] = [];
  const legs: Array<[number, number]> = [];
  const end = performance.now() + callMs;
  while (performance.now() < end) {
    const t0 = process.hrtime.bigint();
    const r = (await established.callTool({ name: 'clock', arguments: { text: 'y'.repeat(100) } })) as { content: Array<{ text: string }> };
    const t1 = process.hrtime.bigint();
    const ts = BigInt(r.content[0]!.text);
    lat.push(Number(t1 - t0) / 1e6);
    legs.push([Number(ts - t0) / 1e6, Number(t1 - ts) / 1e6]);
    record.push([name, Number(t0 / 1000n), Number(ts / 1000n), Number(t1 / 1000n)]);
  }
  delay.disable();
  const elu = performance.eventLoopUtilization(elu0).utilization;
  const cpu = process.cpuUsage(cpu0);
  const fl = pidCpuMs(flooder.pid) - fl0;
  const rs = runnerSched().map((v, i) => v - rs0[i]!);
  const wait = (x: number[]) => `wait ${f(x[1]! / 1e6 / seconds, 0)} ms/s ${f(x[1]! / 1e3 / Math.max(1, x[2]!), 0)} us/slice`;
  const s = (await server.worker.request<ServerProbe>('probeStop'))!;
  const slow = lat.filter((ms) => ms > 1).length;
  const gcs = s.gc.map((g) => g.ms).sort((a, b) => a - b);
  const gcLine = `gc n=${gcs.length} total ${f(gcs.reduce((a, b) => a + b, 0), 1)} ms p50 ${f(percentile(gcs, 50))} p90 ${f(percentile(gcs, 90))} max ${f(gcs[gcs.length - 1] ?? 0)} ms kinds ${JSON.stringify(s.gc.reduce<Record<number, number>>((m, g) => ((m[g.kind] = (m[g.kind] ?? 0) + 1), m), {}))}`;
  // The slowest 1 %: how much of each lies before the tool ran (request leg) and after (response leg).
  const cut = percentile(lat, 99);
  const tail = legs.filter(([a, b]) => a + b >= cut);
  const req = tail.map(([a]) => a);
  const res = tail.map(([, b]) => b);
  const reqHeavy = tail.filter(([a, b]) => a > b).length;
  const threads = Object.entries(s.threadsMs)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k.split(' ').slice(1).join(' ')}:${f(v / seconds / 10, 0)}%`)
    .join(' ');
  console.log(
    `${name.padEnd(6)} calls n=${lat.length} p50 ${f(percentile(lat, 50))} p90 ${f(percentile(lat, 90))} p99 ${f(percentile(lat, 99))} max ${f(Math.max(...lat))} ms, >1ms ${slow}; slowest 1 %: request leg median ${f(percentile(req, 50))} ms, response leg ${f(percentile(res, 50))} ms, request-heavy ${reqHeavy}/${tail.length} | ` +
      `server elu ${f(s.elu * 100, 0)}% delay p99 ${f(s.delayMs.p99)} max ${f(s.delayMs.max)} ms, ${threads}, refused ${s.refused} inlined ${s.inlined}, loop ${wait(s.sched)}, ${gcLine} | ` +
      `runner elu ${f(elu * 100, 0)}% delay p99 ${f(delay.percentile(99) / 1e6)} max ${f(delay.max / 1e6)} ms cpu ${f((cpu.user + cpu.system) / 1e4 / seconds, 0)}% ${wait(rs)} | flooder ${f(fl / seconds / 10, 0)}% | load ${f(loadavg()[0]!, 1)}`,
  );
}

try {
  console.log(`flood ${scenario.name}, options ${JSON.stringify(options)}, ${process.version}, load ${f(loadavg()[0]!, 1)}`);
  for (let round = 0; round < rounds; round++) {
    if (arg('idle', '1') !== '0') await phase('idle');
    await flooder.request('start', { url, kind: scenario.kind, sources: loopbackSources(scenario.sources), connections: scenario.connections, hellos, maxOpened: 50_000, fixture: ctx.fixture });
    try {
      await sleep(scenario.warmupMs);
      await phase('flood');
    } finally {
      console.log('       flooder', JSON.stringify(await flooder.request('stop')));
    }
    await sleep(1000);
    if (!decoy) continue;
    await flooder.request('start', { url: decoyUrl, kind: scenario.kind, sources: loopbackSources(scenario.sources), connections: scenario.connections, hellos: decoyHellos, maxOpened: 50_000, fixture: ctx.fixture });
    try {
      await sleep(scenario.warmupMs);
      await phase('decoy');
    } finally {
      await flooder.request('stop');
    }
    await sleep(1000);
  }
} finally {
  if (arg('calls-out', '')) (await import('node:fs')).writeFileSync(arg('calls-out', ''), JSON.stringify(record));
  await decoy?.stop();
  await established.close().catch(() => {});
  await server.stop();
  await flooder.kill();
}
