/**
 * Floods against a listener with its default edge settings (serveMcp, server in its own
 * process), measured against the same listener idle, in one run:
 *
 *   honest ok        honest handshakes that succeeded (own address 127.0.0.200, no retry)
 *   handshake x      median honest handshake (connect + first tools/call) under the flood,
 *                    as a ratio to idle (target <= 3x)
 *   call p99 x       p99 of `tools/call` on a session established before the flood, as a
 *                    ratio to idle (target <= 2x)
 *   RSS peak/after   the server process's RSS: highest during the flood, and 1 s after it
 *
 * The flood runs in a process of its own (flooder.ts), the server in another, the honest
 * agent and the measuring loop in this one. Floods (lib/floods.ts): idle-1, idle-16 (idle
 * sockets re-opened as fast as freed, from 1 and 16 addresses), slowloris (300
 * connections), silence (200 valid ClientHellos, then nothing), replay (one ClientHello
 * re-sent at full rate), keyupdate (4 authenticated sessions storming KeyUpdates) and
 * partial-64MiB (50 authenticated sessions each holding part of a 64 MiB message).
 * Idle and flood phases alternate (PLANS: rounds) so that each ratio compares figures
 * taken minutes apart at most on this shared, noisy machine; the load average is recorded
 * per flood. CI runs idle-16 and replay only, briefly, and fails unless every honest
 * handshake succeeded. Loopback only.
 *
 * PQMCP_BENCH_FLOOD_FRONT=process (opt-in, an experiment; unset: the above): a second
 * server process, the "front" (same endpoint, edge settings and fixture), takes the
 * unauthenticated floods (idle, slowloris, silence, replay) and every honest new handshake,
 * while the established session stays on the first. The authenticated floods (keyupdate,
 * partial) still go to the first, as they would after a front process handed their
 * sockets over. The best case of a front process that runs the unauthenticated phase and
 * hands authenticated sockets over at no cost (docs/benchmarks.md, Floods). The handshake
 * figures are then the front's, the call p99 the first server's, and RSS the flooded one's.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { PqmcpClientTransport } from '../../src/transport/client.js';
import { Session } from '../../src/session/session.js';
import { endpointOfUrl } from '../../src/handshake/endpoint.js';
import { selectBackend } from '../../src/crypto/select.js';
import { now, startServer } from '../lib/context.js';
import type { ServerProcess, SuiteContext } from '../lib/context.js';
import { SERVER_AGENT_ID, identityOf, trustOf } from '../lib/fixtures.js';
import { loopbackSources, type FloodKind, type FloodStats } from '../lib/floods.js';
import { spawnWorker, type Worker } from '../lib/proc.js';
import { median, percentile } from '../lib/stats.js';
import { availableParallelism, loadavg } from 'node:os';
import { execFileSync } from 'node:child_process';

export interface Scenario {
  name: string;
  kind: FloodKind;
  sources: number;
  connections: number;
  /** Flood running before the honest agent measures (authenticated floods need their handshakes). */
  warmupMs: number;
}

export const SCENARIOS: Scenario[] = [
  { name: 'idle-1', kind: 'idle', sources: 1, connections: 96, warmupMs: 1000 },
  { name: 'idle-16', kind: 'idle', sources: 16, connections: 96, warmupMs: 1000 },
  { name: 'slowloris', kind: 'slowloris', sources: 16, connections: 300, warmupMs: 1500 },
  { name: 'silence', kind: 'silence', sources: 16, connections: 200, warmupMs: 1000 },
  { name: 'replay', kind: 'replay', sources: 16, connections: 32, warmupMs: 1000 },
  // (e): 4 authenticated sessions storming KeyUpdates.
  { name: 'keyupdate', kind: 'keyupdate', sources: 4, connections: 4, warmupMs: 1000 },
  // (f): 50 authenticated sessions each holding part of a 64 MiB message (last: the server
  // frees the paused ones only at their next keepalive, 30 s by default).
  { name: 'partial-64MiB', kind: 'partial', sources: 16, connections: 50, warmupMs: 4000 },
];

/**
 * Per flood, `rounds` pairs of (idle, flood) measurements, interleaved, so that the idle
 * figures each ratio divides by were taken next to the flood ones (the machine's load
 * drifts). Each phase: `handshakes` honest handshakes, then `callMs` of sequential calls.
 */
const PLANS: Record<SuiteContext['mode'], { scenarios: string[]; rounds: number; handshakes: number; callMs: number; warmupMs?: number; restMs: number }> = {
  full: { scenarios: SCENARIOS.map((s) => s.name), rounds: 3, handshakes: 6, callMs: 1000, restMs: 1000 },
  ci: { scenarios: ['idle-16', 'replay'], rounds: 1, handshakes: 4, callMs: 600, restMs: 1000 },
  // Smoke: every phase, briefly (warmupMs over the scenario's; restMs: the pause after a flood).
  smoke: { scenarios: ['idle-16'], rounds: 1, handshakes: 2, callMs: 200, warmupMs: 200, restMs: 100 },
};

export interface FloodRow {
  honestOk: number;
  honestTotal: number;
  handshakeRatio: number;
  callP99Ratio: number;
  /** Median honest handshake under the flood, and idle in the same rounds. */
  handshakeMs: number;
  idleHandshakeMs: number;
  callP99Us: number;
  idleCallP99Us: number;
  rssPeakMiB: number;
  rssAfterMiB: number;
  floodConnections: number;
  /** 1-minute load average of the machine at the start and end of this flood's rounds. */
  load: [number, number];
  /** With a front process (PQMCP_BENCH_FLOOD_FRONT): the server process this flood went to. */
  flooded?: 'main' | 'front';
}

export interface FloodResult {
  idle: { handshakeMs: number; callP99Us: number; rssMiB: number };
  rows: Record<string, FloodRow>;
  rounds: number;
  /** PQMCP_BENCH_FLOOD_FRONT=process: the unauthenticated floods and honest handshakes went to a front process. */
  front?: boolean;
}

const HONEST = '127.0.0.200';
const MiB = 1024 * 1024;
/** The floods that get past the handshake: a front process would hand their sockets over. */
const AUTHENTICATED: readonly FloodKind[] = ['keyupdate', 'partial'];

/** PQMCP_BENCH_FLOOD_FRONT: 'process', or unset (one server takes everything). */
function frontProcess(): boolean {
  const spec = process.env.PQMCP_BENCH_FLOOD_FRONT;
  if (spec === undefined || spec === '') return false;
  if (spec !== 'process') throw new Error(`PQMCP_BENCH_FLOOD_FRONT: expected "process", got ${JSON.stringify(spec)}`);
  return true;
}

export interface HonestAgent {
  /** A new honest session from `localAddress` (no busy retry). */
  connect(localAddress: string): Promise<Client>;
  /** `n` honest handshakes (each with its first call), one at a time: durations in ms and failures. */
  handshakes(n: number): Promise<{ ms: number[]; failed: number }>;
  /** Sequential calls on an established session for `ms`: each latency in us. */
  calls(client: Client, ms: number): Promise<number[]>;
}

/** The honest agent of the flood measurements (address 127.0.0.200), against `url`. */
export function honestAgent(ctx: SuiteContext, url: string): HonestAgent {
  const backend = selectBackend('auto');
  const clientIdentity = identityOf(ctx.fixture, 'client', backend);
  const trust = trustOf(ctx.fixture);
  const connect = async (localAddress: string): Promise<Client> => {
    const transport = new PqmcpClientTransport(url, { identity: clientIdentity, trust, expectedServerId: SERVER_AGENT_ID, webSocketOptions: { localAddress }, busyRetry: false });
    const client = new Client({ name: 'bench-flood', version: '1' });
    await client.connect(transport);
    return client;
  };
  /** `n` honest handshakes (each with its first call), one at a time: durations in ms and failures. */
  const handshakes = async (n: number): Promise<{ ms: number[]; failed: number }> => {
    const ms: number[] = [];
    let failed = 0;
    for (let i = 0; i < n; i++) {
      const t0 = now();
      let client: Client | undefined;
      try {
        client = await connect(HONEST);
        await client.callTool({ name: 'echo', arguments: { text: 'x' } });
        ms.push(now() - t0);
      } catch {
        failed++;
      } finally {
        await client?.close().catch(() => {});
      }
    }
    return { ms, failed };
  };
  /** Sequential calls on the established session for `ms`: each latency in us. */
  const calls = async (client: Client, ms: number): Promise<number[]> => {
    const lat: number[] = [];
    const end = now() + ms;
    while (now() < end) {
      const t0 = now();
      await client.callTool({ name: 'echo', arguments: { text: 'y'.repeat(100) } });
      lat.push((now() - t0) * 1000);
    }
    return lat;
  };
  return { connect, handshakes, calls };
}

/** Valid ClientHellos naming the listener's endpoint, as a real client's do: they get as far as the crypto. */
export function floodHellos(ctx: SuiteContext, url: string): Buffer[] {
  const backend = selectBackend('auto');
  return Array.from({ length: 4 }, () => Buffer.concat(Session.client({ backend, identity: identityOf(ctx.fixture, 'client', backend), trust: trustOf(ctx.fixture), endpoint: endpointOfUrl(new URL(url)) }).start().send));
}

/**
 * Where the suite's processes run (Linux, taskset lists; unset: all share every core, the
 * suite's default, in which the flooder also takes the server's CPU). At most one of:
 *
 *   PQMCP_BENCH_FLOOD_CPUS=<flooder's>/<the others'> (e.g. `1/0`): the flooder on cores of
 *     its own, the server (with its crypto workers) and this process on the others, as when
 *     the attacker's CPU is another machine's.
 *   PQMCP_BENCH_LOOP_CPUS=<loop's>/<the rest's> (e.g. `0/1`): the server's event loop thread
 *     and this process (the measuring client, mostly waiting on it) on the first cores; the
 *     server's other threads (crypto workers, V8's helpers) and the flooder on the second,
 *     as when the event loop has a core to itself. Threads the server starts later (a
 *     restarted worker) inherit the loop's cores.
 *
 * A front process (PQMCP_BENCH_FLOOD_FRONT) is a defender: with the server and this process
 * under PQMCP_BENCH_FLOOD_CPUS, with the server's other threads and the flooder under
 * PQMCP_BENCH_LOOP_CPUS (the main server's event loop keeps its core).
 *
 * This process gets every core back at the end.
 */
function pinCpus(flooder: number, server: number, front: number | undefined): void {
  const taskset = (args: string[]) => execFileSync('taskset', args, { stdio: 'ignore' });
  const split = (name: string): [string, string] | undefined => {
    const spec = process.env[name];
    if (!spec) return undefined;
    const [a, b] = spec.split('/');
    if (!a || !b) throw new Error(`${name}: expected <cpus>/<cpus>, got ${JSON.stringify(spec)}`);
    return [a, b];
  };
  const flood = split('PQMCP_BENCH_FLOOD_CPUS');
  const loop = split('PQMCP_BENCH_LOOP_CPUS');
  if (flood && loop) throw new Error('set PQMCP_BENCH_FLOOD_CPUS or PQMCP_BENCH_LOOP_CPUS, not both');
  if (flood) {
    taskset(['-a', '-cp', flood[0], String(flooder)]);
    for (const pid of [server, front, process.pid]) if (pid !== undefined) taskset(['-a', '-cp', flood[1], String(pid)]);
  } else if (loop) {
    for (const pid of [server, flooder, front]) if (pid !== undefined) taskset(['-a', '-cp', loop[1], String(pid)]);
    taskset(['-cp', loop[0], String(server)]); // the main thread only: its id is the pid
    taskset(['-a', '-cp', loop[0], String(process.pid)]);
  }
}

export async function runFlood(ctx: SuiteContext): Promise<FloodResult> {
  const plan = PLANS[ctx.mode];
  const server = await startServer(ctx, ['mcp-pqmcp-edge']);
  let front: ServerProcess | undefined;
  let flooder: Worker | undefined;
  try {
    if (frontProcess()) front = await startServer(ctx, ['mcp-pqmcp-edge']);
    flooder = await spawnWorker('flooder.ts');
  } catch (err) {
    await front?.stop();
    await server.stop();
    throw err;
  }
  pinCpus(flooder.pid, server.worker.pid, front?.worker.pid);
  const urlOf = (s: ServerProcess) => `ws://127.0.0.1:${s.ports['mcp-pqmcp-edge']}/`;
  const url = urlOf(server);
  // Without a front process, `entry` is the server itself.
  const entry = front ?? server;
  const { connect, calls } = honestAgent(ctx, url);
  const { handshakes } = honestAgent(ctx, urlOf(entry));
  const hellos = new Map([...new Set([server, entry])].map((s) => [s, floodHellos(ctx, urlOf(s))]));
  const rss = async (s: ServerProcess): Promise<number> => (await s.worker.request<{ rss: number }>('mem')).rss / MiB;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  try {
    const established = await connect('127.0.0.201');
    await handshakes(2); // warm-up
    await calls(established, 300);
    const idleRss = await rss(server);
    const allIdle = { hs: [] as number[], calls: [] as number[] };
    const rows: Record<string, FloodRow> = {};
    for (const scenario of SCENARIOS.filter((s) => plan.scenarios.includes(s.name))) {
      const target = AUTHENTICATED.includes(scenario.kind) ? server : entry;
      const idle = { hs: [] as number[], calls: [] as number[] };
      const flood = { hs: [] as number[], calls: [] as number[], failed: 0 };
      let peak = 0;
      let opened = 0;
      const load0 = loadavg()[0]!;
      for (let round = 0; round < plan.rounds; round++) {
        idle.hs.push(...(await handshakes(plan.handshakes)).ms);
        idle.calls.push(...(await calls(established, plan.callMs)));
        await target.worker.request('peakStart');
        await flooder.request('start', { url: urlOf(target), kind: scenario.kind, sources: loopbackSources(scenario.sources), connections: scenario.connections, hellos: hellos.get(target), maxOpened: 50_000, fixture: ctx.fixture });
        try {
          await sleep(plan.warmupMs ?? scenario.warmupMs);
          const hs = await handshakes(plan.handshakes);
          flood.hs.push(...hs.ms);
          flood.failed += hs.failed;
          flood.calls.push(...(await calls(established, plan.callMs)));
        } finally {
          opened += (await flooder.request<FloodStats>('stop')).opened;
          peak = Math.max(peak, (await target.worker.request<number>('peakStop')) / MiB);
        }
        await sleep(plan.restMs);
      }
      allIdle.hs.push(...idle.hs);
      allIdle.calls.push(...idle.calls);
      const idleHs = median(idle.hs);
      const idleP99 = percentile(idle.calls, 99);
      rows[scenario.name] = {
        honestOk: flood.hs.length,
        honestTotal: plan.handshakes * plan.rounds,
        handshakeMs: median(flood.hs),
        idleHandshakeMs: idleHs,
        handshakeRatio: median(flood.hs) / idleHs,
        callP99Us: percentile(flood.calls, 99),
        idleCallP99Us: idleP99,
        callP99Ratio: percentile(flood.calls, 99) / idleP99,
        rssPeakMiB: peak,
        rssAfterMiB: await rss(target),
        floodConnections: opened,
        load: [load0, loadavg()[0]!],
        ...(front ? { flooded: target === front ? ('front' as const) : ('main' as const) } : {}),
      };
    }
    await established.close();
    return { idle: { handshakeMs: median(allIdle.hs), callP99Us: percentile(allIdle.calls, 99), rssMiB: idleRss }, rows, rounds: plan.rounds, ...(front ? { front: true } : {}) };
  } finally {
    await flooder.kill();
    await front?.stop();
    await server.stop();
    if (process.env.PQMCP_BENCH_FLOOD_CPUS || process.env.PQMCP_BENCH_LOOP_CPUS) execFileSync('taskset', ['-a', '-cp', `0-${availableParallelism() - 1}`, String(process.pid)], { stdio: 'ignore' });
  }
}

/** The flood table (docs/benchmarks.md). */
export function floodMarkdown(r: FloodResult): string {
  const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const lines = [
    `Idle (all rounds): honest handshake ${f(r.idle.handshakeMs, 1)} ms, \`tools/call\` p99 ${f(r.idle.callP99Us / 1000, 2)} ms; server RSS before the first flood ${f(r.idle.rssMiB, 0)} MiB. ` +
      `Each flood: ${r.rounds} interleaved (idle, flood) round${r.rounds === 1 ? '' : 's'}; its ratios divide by the idle phases of its own rounds.` +
      (r.front ? ' Front process (PQMCP_BENCH_FLOOD_FRONT=process): honest handshakes on the front, `tools/call` on the main server, RSS of the flooded one.' : ''),
    '',
    `| flood |${r.front ? ' flooded server |' : ''} connections opened | honest ok | handshake (x idle, target <= 3) | call p99 (x idle, target <= 2) | RSS peak / after (MiB) | load avg (1 min) |`,
    `|---|${r.front ? '---|' : ''}---|---|---|---|---|---|`,
    ...Object.entries(r.rows).map(
      ([name, x]) =>
        `| ${name} |${x.flooded ? ` ${x.flooded} |` : ''} ${x.floodConnections} | ${x.honestOk}/${x.honestTotal} | ${f(x.handshakeRatio)} (${f(x.handshakeMs, 1)} vs ${f(x.idleHandshakeMs, 1)} ms) | ${f(x.callP99Ratio)} (${f(x.callP99Us / 1000, 2)} vs ${f(x.idleCallP99Us / 1000, 2)} ms) | ${f(x.rssPeakMiB, 0)} / ${f(x.rssAfterMiB, 0)} | ${f(x.load[0], 1)}-${f(x.load[1], 1)} |`,
    ),
  ];
  return lines.join('\n');
}

/** CI: every honest handshake must have succeeded. */
export function floodFailures(r: FloodResult): string[] {
  return Object.entries(r.rows)
    .filter(([, x]) => x.honestOk < x.honestTotal)
    .map(([name, x]) => `flood ${name}: ${x.honestTotal - x.honestOk} of ${x.honestTotal} honest handshakes failed`);
}
