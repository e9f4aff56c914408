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
 * agent and the measuring loop in this one. Floods (lib/floods.ts): idle-1, idle-16 (idle sockets re-opened as fast as freed, from 1
 * and 16 addresses), slowloris (300 connections), silence (200 valid ClientHellos, then
 * nothing), replay (one ClientHello re-sent at full rate). CI runs idle-16 and replay only,
 * briefly, and fails unless every honest handshake succeeded. Loopback only.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { PqmcpClientTransport } from '../../src/transport/client.js';
import { Session } from '../../src/session/session.js';
import { endpointOfUrl } from '../../src/handshake/endpoint.js';
import { selectBackend } from '../../src/crypto/select.js';
import { now, startServer } from '../lib/context.js';
import type { SuiteContext } from '../lib/context.js';
import { SERVER_AGENT_ID, identityOf, trustOf } from '../lib/fixtures.js';
import { loopbackSources, type FloodKind, type FloodStats } from '../lib/floods.js';
import { spawnWorker } from '../lib/proc.js';
import { median, percentile } from '../lib/stats.js';

interface Scenario {
  name: string;
  kind: FloodKind;
  sources: number;
  connections: number;
}

const SCENARIOS: Scenario[] = [
  { name: 'idle-1', kind: 'idle', sources: 1, connections: 96 },
  { name: 'idle-16', kind: 'idle', sources: 16, connections: 96 },
  { name: 'slowloris', kind: 'slowloris', sources: 16, connections: 300 },
  { name: 'silence', kind: 'silence', sources: 16, connections: 200 },
  { name: 'replay', kind: 'replay', sources: 16, connections: 32 },
];

const PLANS: Record<SuiteContext['mode'], { scenarios: string[]; handshakes: number; callMs: number; warmupMs: number }> = {
  full: { scenarios: SCENARIOS.map((s) => s.name), handshakes: 10, callMs: 1500, warmupMs: 1500 },
  ci: { scenarios: ['idle-16', 'replay'], handshakes: 4, callMs: 600, warmupMs: 800 },
  smoke: { scenarios: ['idle-16'], handshakes: 2, callMs: 200, warmupMs: 300 },
};

export interface FloodRow {
  honestOk: number;
  honestTotal: number;
  handshakeRatio: number;
  callP99Ratio: number;
  handshakeMs: number;
  callP99Us: number;
  rssPeakMiB: number;
  rssAfterMiB: number;
  floodConnections: number;
}

export interface FloodResult {
  idle: { handshakeMs: number; callP99Us: number; rssMiB: number };
  rows: Record<string, FloodRow>;
}

const HONEST = '127.0.0.200';
const MiB = 1024 * 1024;

export async function runFlood(ctx: SuiteContext): Promise<FloodResult> {
  const plan = PLANS[ctx.mode];
  const server = await startServer(ctx, ['mcp-pqmcp-edge']);
  const flooder = await spawnWorker('flooder.ts');
  const url = `ws://127.0.0.1:${server.ports['mcp-pqmcp-edge']}/`;
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
  const callP99 = async (client: Client, ms: number): Promise<number> => {
    const lat: number[] = [];
    const end = now() + ms;
    while (now() < end) {
      const t0 = now();
      await client.callTool({ name: 'echo', arguments: { text: 'y'.repeat(100) } });
      lat.push((now() - t0) * 1000);
    }
    return percentile(lat, 99);
  };
  // Naming the listener's endpoint, as a real client does: the hello gets as far as the crypto.
  const hellos = Array.from({ length: 4 }, () => Buffer.concat(Session.client({ backend, identity: identityOf(ctx.fixture, 'client', backend), trust, endpoint: endpointOfUrl(new URL(url)) }).start().send));
  const rss = async (): Promise<number> => (await server.worker.request<{ rss: number }>('mem')).rss / MiB;

  try {
    const established = await connect('127.0.0.201');
    await handshakes(2); // warm-up
    const idleHs = await handshakes(plan.handshakes);
    const idle = { handshakeMs: median(idleHs.ms), callP99Us: await callP99(established, plan.callMs), rssMiB: await rss() };
    const rows: Record<string, FloodRow> = {};
    for (const scenario of SCENARIOS.filter((s) => plan.scenarios.includes(s.name))) {
      await server.worker.request('peakStart');
      await flooder.request('start', { url, kind: scenario.kind, sources: loopbackSources(scenario.sources), connections: scenario.connections, hellos, maxOpened: 50_000 });
      let hs: { ms: number[]; failed: number };
      let p99: number;
      let stats: FloodStats;
      try {
        await new Promise((r) => setTimeout(r, plan.warmupMs));
        hs = await handshakes(plan.handshakes);
        p99 = await callP99(established, plan.callMs);
      } finally {
        stats = await flooder.request<FloodStats>('stop');
      }
      const peak = (await server.worker.request<number>('peakStop')) / MiB;
      await new Promise((r) => setTimeout(r, 1000));
      rows[scenario.name] = {
        honestOk: hs.ms.length,
        honestTotal: plan.handshakes,
        handshakeMs: median(hs.ms),
        handshakeRatio: median(hs.ms) / idle.handshakeMs,
        callP99Us: p99,
        callP99Ratio: p99 / idle.callP99Us,
        rssPeakMiB: peak,
        rssAfterMiB: await rss(),
        floodConnections: stats.opened,
      };
    }
    await established.close();
    return { idle, rows };
  } finally {
    await flooder.kill();
    await server.stop();
  }
}

/** The flood table (docs/benchmarks.md). */
export function floodMarkdown(r: FloodResult): string {
  const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const lines = [
    `Idle: honest handshake ${f(r.idle.handshakeMs, 1)} ms, \`tools/call\` p99 ${f(r.idle.callP99Us / 1000, 2)} ms, server RSS ${f(r.idle.rssMiB, 0)} MiB.`,
    '',
    '| flood | connections opened | honest ok | handshake (x idle, target <= 3) | call p99 (x idle, target <= 2) | RSS peak / after (MiB) |',
    '|---|---|---|---|---|---|',
    ...Object.entries(r.rows).map(
      ([name, x]) => `| ${name} | ${x.floodConnections} | ${x.honestOk}/${x.honestTotal} | ${f(x.handshakeRatio)} (${f(x.handshakeMs, 1)} ms) | ${f(x.callP99Ratio)} (${f(x.callP99Us / 1000, 2)} ms) | ${f(x.rssPeakMiB, 0)} / ${f(x.rssAfterMiB, 0)} |`,
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
