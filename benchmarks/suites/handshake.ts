/**
 * Handshake cost: from TCP connect to the first MCP response (the `initialize` result,
 * i.e. SDK `client.connect()` resolving), with the server in its own process.
 *
 *   variants     ws (no security), wss (TLS 1.3, mutual auth, ECDSA P-256, X25519),
 *                wss-pq (the same with X25519MLKEM768, where OpenSSL offers it),
 *                pqmcp-native, pqmcp-noble (full mutual attested handshake, both sides
 *                on that backend), pqmcp-resumed (native backend; after the first
 *                connection every one resumes from the ticket the previous one received:
 *                PSK + fresh X-Wing exchange, no credentials, no signatures; a server that
 *                issues tickets, one client ticket store per measuring process)
 *   firstResponseMs  wall time per connection, each connection measured
 *   channelReadyMs   when the secure channel was usable (ws 'open'; pqmcp: this side
 *                    verified the peer), for reference
 *   clientCpuMs      client process CPU time per connection (connect to first response)
 *   serverCpuMs      server process CPU time per connection, from the server's own
 *                    process.cpuUsage() around a batch of sequential connections
 *   handshakesPerSecond  with `concurrency` clients connecting, initializing and closing
 *                    in a loop for a fixed time; serverCpuMsUnderLoad from the same window.
 *                    Client and server share the machine's cores: on 2 cores this is a
 *                    floor, and 1000 / serverCpuMs is the capacity of one server core.
 *
 * Three measures of the same connection, because a fresh process is not a warm one (V8
 * compiles a connection's JavaScript over its first hundreds of runs, and pqmcp runs far
 * more JavaScript per connection than TLS, whose handshake is C):
 *   cold         the first connection of fresh client and server processes (modules
 *                imported, backend and identity made; one sample per run)
 *   (default)    connections `warmup + 1` .. `warmup + rounds * batch` of the process: the
 *                figure the issue-12 verdicts are judged on (a `pqmcp connect` per desktop
 *                session is in this regime or colder)
 *   warm         after the handshakes/s windows and `settle` more sequential connections
 *                per process (enough for the per-connection CPU to stop falling, measured
 *                by connection index: docs/benchmarks.md), `warmRounds` interleaved rounds
 *                of `batch`: a long-running server and a client that connects often
 *
 * Every variant runs in its own measuring process with its own server process
 * (lib/variants.ts), warmed up first; the runner interleaves them (order rotated every
 * round); medians with min and max. The 1-minute load average is recorded at the start of
 * each measure (other work on the machine moves every figure).
 */
import { loadavg } from 'node:os';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { PqmcpClientTransport } from '../../src/transport/client.js';
import { MemoryTicketStore } from '../../src/resumption/client-tickets.js';
import { describeBackend, selectBackend } from '../../src/crypto/select.js';
import { SUITE_NAMES } from '../../src/wire/messages.js';
import { cpuMicros } from '../lib/bench-protocol.js';
import { now, startServer, within } from '../lib/context.js';
import type { Endpoint } from '../server.js';
import { withVariants } from '../lib/variants.js';
import type { VariantSession } from '../lib/variants.js';
import type { ServerProcess, SuiteContext } from '../lib/context.js';
import { SERVER_AGENT_ID, identityOf, trustOf } from '../lib/fixtures.js';
import { clientTlsOptions, groupOffered } from '../lib/tls.js';
import { compact, rotate, summarize } from '../lib/stats.js';
import type { Summary } from '../lib/stats.js';
import { WsMcpTransport } from '../lib/ws-mcp-transport.js';

export type HandshakeVariant = 'ws' | 'wss' | 'wss-pq' | 'pqmcp-native' | 'pqmcp-noble' | 'pqmcp-resumed';

/** One connection's figures (the cold measure: a single sample). */
export interface HandshakeSample {
  firstResponseMs: number;
  clientCpuMs: number;
  serverCpuMs: number;
}

/** The same connection measured once the process is warm (see the module comment). */
export interface HandshakeWarmResult {
  firstResponseMs?: Summary | undefined;
  clientCpuMs?: Summary | undefined;
  serverCpuMs?: Summary | undefined;
}

export interface HandshakeVariantResult {
  label: string;
  details: Record<string, string>;
  firstResponseMs?: Summary | undefined;
  channelReadyMs?: Summary | undefined;
  clientCpuMs?: Summary | undefined;
  serverCpuMs?: Summary | undefined;
  handshakesPerSecond?: Summary | undefined;
  serverCpuMsUnderLoad?: Summary | undefined;
  /** The first connection of fresh processes. */
  cold?: HandshakeSample | undefined;
  /** After `settle` more connections (absent when the plan has no warm rounds). */
  warm?: HandshakeWarmResult | undefined;
}

export interface HandshakeResult {
  rounds: number;
  batch: number;
  concurrency: number;
  loadSeconds: number;
  /** Connections made before the default measure (its first is the cold one). */
  warmup?: number | undefined;
  /** Sequential connections per process between the handshakes/s windows and the warm rounds. */
  settle?: number | undefined;
  warmRounds?: number | undefined;
  /** 1-minute load average at the start of each measure. */
  loadAverage?: { default: number; warm?: number | undefined; end: number } | undefined;
  variants: Record<string, HandshakeVariantResult>;
  /** Variants this runtime cannot run, and why. */
  unavailable: Record<string, string>;
}

interface Plan {
  rounds: number;
  batch: number;
  warmup: number;
  concurrency: number;
  loadRounds: number;
  loadMs: number;
  /** Sequential connections per process before the warm rounds (0: no warm measure). */
  settle: number;
  warmRounds: number;
}

// settle: per-connection CPU by connection index (Node 24, 2026-12-06, docs/benchmarks.md)
// stops falling after ~100 connections for wss-pq and ~600 for pqmcp; the handshakes/s
// windows before the settle connections add a few hundred more.
const PLANS: Record<SuiteContext['mode'], Plan> = {
  full: { rounds: 10, batch: 3, warmup: 2, concurrency: 8, loadRounds: 2, loadMs: 1500, settle: 600, warmRounds: 10 },
  ci: { rounds: 8, batch: 2, warmup: 1, concurrency: 0, loadRounds: 0, loadMs: 0, settle: 0, warmRounds: 0 },
  smoke: { rounds: 1, batch: 1, warmup: 0, concurrency: 2, loadRounds: 1, loadMs: 200, settle: 2, warmRounds: 1 },
};

const LABELS: Record<HandshakeVariant, string> = {
  ws: 'plain ws (no security)',
  wss: 'wss: TLS 1.3 mTLS, ECDSA P-256, X25519',
  'wss-pq': 'wss: TLS 1.3 mTLS, ECDSA P-256, X25519MLKEM768',
  'pqmcp-native': 'pqmcp, native backend',
  'pqmcp-noble': 'pqmcp, noble backend',
  'pqmcp-resumed': 'pqmcp, native backend, resumed from a ticket',
};

interface Connected {
  client: Client;
  readyAt: number | undefined;
  details: Record<string, string>;
  /** pqmcp-resumed: whether this connection resumed (the others: undefined). */
  resumed?: boolean | undefined;
}

function connector(ctx: SuiteContext, server: ServerProcess, variant: HandshakeVariant): () => Promise<Connected> {
  const port = (name: string) => server.ports[name]!;
  if (variant === 'ws' || variant === 'wss' || variant === 'wss-pq') {
    const url = variant === 'ws' ? `ws://127.0.0.1:${port('mcp-ws')}/` : `wss://127.0.0.1:${port('mcp-wss')}/`;
    const options = variant === 'ws' ? {} : clientTlsOptions(ctx.certs!, variant === 'wss' ? 'X25519' : 'X25519MLKEM768');
    return async () => {
      const client = new Client({ name: 'pqmcp-bench', version: '1.0.0' });
      const transport = new WsMcpTransport({ url, options });
      await client.connect(transport);
      return { client, readyAt: transport.openedAt, details: transport.tls };
    };
  }
  const backendName = variant === 'pqmcp-noble' ? 'noble' : 'native';
  const backend = selectBackend(backendName);
  const identity = identityOf(ctx.fixture, 'client', backend);
  const trust = trustOf(ctx.fixture);
  const url = `ws://127.0.0.1:${port(endpointOf(variant))}/`;
  // Resumed: every connection takes a ticket and receives the next one (room for the
  // concurrent loops of the load measure, each of which needs one of its own).
  const tickets = variant === 'pqmcp-resumed' ? new MemoryTicketStore(64) : undefined;
  return async () => {
    const client = new Client({ name: 'pqmcp-bench', version: '1.0.0' });
    const transport = new PqmcpClientTransport(url, { identity, trust, backend, expectedServerId: SERVER_AGENT_ID, handshakeTimeoutMs: 120_000, ...(tickets ? { tickets } : {}) });
    let readyAt: number | undefined;
    let suite = '';
    void transport.handshake.then((r) => {
      readyAt = now();
      suite = SUITE_NAMES[r.suite] ?? String(r.suite);
    }, () => {});
    await client.connect(transport as Transport);
    return { client, readyAt, details: { backend: describeBackend(backend), suite }, resumed: tickets ? transport.resumed : undefined };
  };
}

export type HandshakeMeasure = { kind: 'batch'; n: number } | { kind: 'load'; concurrency: number; ms: number } | { kind: 'cold' } | { kind: 'settle'; n: number };

interface Batch {
  firstResponseMs: number[];
  channelReadyMs: number[];
  clientCpuMs: number[];
  serverCpuMs: number;
}

function endpointOf(variant: HandshakeVariant): Endpoint {
  if (variant === 'ws') return 'mcp-ws';
  if (variant === 'wss' || variant === 'wss-pq') return 'mcp-wss';
  if (variant === 'pqmcp-resumed') return 'mcp-pqmcp-tickets';
  return variant === 'pqmcp-native' ? 'mcp-pqmcp-native' : 'mcp-pqmcp-noble';
}

/** Worker side: the variant's server process and a connector; warmed up before returning. */
export async function openHandshakeVariant(ctx: SuiteContext, variant: HandshakeVariant): Promise<VariantSession> {
  const plan = PLANS[ctx.mode];
  const server = await startServer(ctx, [endpointOf(variant)]);
  try {
    const connect = connector(ctx, server, variant);
    let details: Record<string, string> = {};
    const once = async () => {
      const c0 = cpuMicros();
      const t0 = now();
      const c = await within(connect(), 120_000, `${variant} handshake`);
      const t1 = now();
      const c1 = cpuMicros();
      details = c.details;
      return { client: c.client, ms: t1 - t0, readyMs: c.readyAt === undefined ? undefined : c.readyAt - t0, cpuMs: (c1 - c0) / 1000, resumed: c.resumed };
    };
    const close = (c: Client) => within(c.close(), 10_000, 'close').catch(() => {});
    // The first connection of the process (and of its server's): the cold measure.
    // pqmcp-resumed: it is a full handshake (no ticket yet).
    const s0 = await server.cpuMicros();
    const first = await once();
    const cold: HandshakeSample = { firstResponseMs: first.ms, clientCpuMs: first.cpuMs, serverCpuMs: ((await server.cpuMicros()) - s0) / 1000 };
    await close(first.client);
    for (let i = 1; i < plan.warmup; i++) await close((await once()).client);
    return {
      get details() {
        return details;
      },
      async measure(args) {
        const m = args as HandshakeMeasure;
        if (m.kind === 'cold') return cold;
        if (m.kind === 'settle') {
          for (let i = 0; i < m.n; i++) {
            const r = await once();
            if (r.resumed === false) throw new Error(`${variant}: a connection after the first did not resume`);
            await close(r.client);
          }
          return m.n;
        }
        if (m.kind === 'batch') {
          const out: Batch = { firstResponseMs: [], channelReadyMs: [], clientCpuMs: [], serverCpuMs: 0 };
          const clients: Client[] = [];
          const s0 = await server.cpuMicros();
          for (let i = 0; i < m.n; i++) {
            const r = await once();
            if (r.resumed === false) throw new Error(`${variant}: a connection after the first did not resume`);
            clients.push(r.client);
            out.firstResponseMs.push(r.ms);
            if (r.readyMs !== undefined) out.channelReadyMs.push(r.readyMs);
            out.clientCpuMs.push(r.cpuMs);
          }
          const s1 = await server.cpuMicros();
          out.serverCpuMs = (s1 - s0) / 1000 / m.n;
          await Promise.all(clients.map(close));
          return out;
        }
        // Handshakes per second: `concurrency` loops of connect, initialize, close.
        const s0 = await server.cpuMicros();
        const deadline = now() + m.ms;
        let inWindow = 0;
        let total = 0;
        let resumed = 0;
        const loop = async () => {
          while (now() < deadline) {
            const c = await within(connect(), 120_000, `${variant} handshake under load`);
            if (c.resumed) resumed++;
            if (now() <= deadline) inWindow++;
            total++;
            await close(c.client);
          }
        };
        await Promise.all(Array.from({ length: m.concurrency }, loop));
        const s1 = await server.cpuMicros();
        return { rate: inWindow / (m.ms / 1000), serverCpuMs: total > 0 ? (s1 - s0) / 1000 / total : NaN, resumed, total };
      },
      async close() {
        await server.stop();
      },
    };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

/** Runner side: interleaved rounds over the variant processes. */
export async function runHandshake(ctx: SuiteContext, options: { variants?: HandshakeVariant[]; env?: Record<string, string | undefined> } = {}): Promise<HandshakeResult> {
  const plan = PLANS[ctx.mode];
  const unavailable: Record<string, string> = {};
  let variants = options.variants ?? (['ws', 'wss', 'wss-pq', 'pqmcp-native', 'pqmcp-noble', 'pqmcp-resumed'] as HandshakeVariant[]);
  if (!ctx.certs) {
    for (const v of ['wss', 'wss-pq']) unavailable[v] = 'no openssl command line tool to make certificates';
    variants = variants.filter((v) => !v.startsWith('wss'));
  } else if (!groupOffered('X25519MLKEM768')) {
    unavailable['wss-pq'] = `OpenSSL ${process.versions.openssl} in Node ${process.version} does not offer X25519MLKEM768`;
    variants = variants.filter((v) => v !== 'wss-pq');
  }
  return withVariants('handshake', variants, ctx, { env: options.env ?? {}, timeoutMs: 300_000 }, async (procs) => {
    const samples = new Map<string, number[]>();
    const add = (key: string, xs: number[]) => samples.set(key, [...(samples.get(key) ?? []), ...xs]);
    const load1 = () => Math.round(loadavg()[0]! * 100) / 100;
    const loadAverage: NonNullable<HandshakeResult['loadAverage']> = { default: load1(), end: NaN };
    for (let round = 0; round < plan.rounds; round++) {
      for (const v of rotate(variants, round)) {
        const b = await procs.get(v)!.measure<Batch>({ kind: 'batch', n: plan.batch });
        add(`${v}|firstResponseMs`, b.firstResponseMs);
        add(`${v}|channelReadyMs`, b.channelReadyMs);
        add(`${v}|clientCpuMs`, b.clientCpuMs);
        add(`${v}|serverCpuMs`, [b.serverCpuMs]);
      }
    }
    for (let round = 0; round < plan.loadRounds; round++) {
      for (const v of rotate(variants, round)) {
        const l = await procs.get(v)!.measure<{ rate: number; serverCpuMs: number; resumed: number; total: number }>({ kind: 'load', concurrency: plan.concurrency, ms: plan.loadMs });
        add(`${v}|handshakesPerSecond`, [l.rate]);
        add(`${v}|loadResumed`, [l.resumed]);
        add(`${v}|loadTotal`, [l.total]);
        add(`${v}|serverCpuMsUnderLoad`, [l.serverCpuMs]);
      }
    }
    // Warm: settle every process (one at a time), then the same batches interleaved.
    const cold = new Map<string, HandshakeSample>();
    for (const v of variants) cold.set(v, await procs.get(v)!.measure<HandshakeSample>({ kind: 'cold' }));
    if (plan.warmRounds > 0) {
      for (const v of variants) await procs.get(v)!.measure<number>({ kind: 'settle', n: plan.settle }, 600_000);
      loadAverage.warm = load1();
      for (let round = 0; round < plan.warmRounds; round++) {
        for (const v of rotate(variants, round)) {
          const b = await procs.get(v)!.measure<Batch>({ kind: 'batch', n: plan.batch });
          add(`${v}|warm.firstResponseMs`, b.firstResponseMs);
          add(`${v}|warm.clientCpuMs`, b.clientCpuMs);
          add(`${v}|warm.serverCpuMs`, [b.serverCpuMs]);
        }
      }
    }
    loadAverage.end = load1();
    const result: HandshakeResult = {
      rounds: plan.rounds,
      batch: plan.batch,
      concurrency: plan.concurrency,
      loadSeconds: plan.loadMs / 1000,
      warmup: Math.max(1, plan.warmup),
      settle: plan.settle,
      warmRounds: plan.warmRounds,
      loadAverage,
      variants: {},
      unavailable,
    };
    for (const v of variants) {
      const get = (m: string) => compact(summarize(samples.get(`${v}|${m}`) ?? []));
      const sum = (m: string) => (samples.get(`${v}|${m}`) ?? []).reduce((a, b) => a + b, 0);
      // Resumed: every measured sequential connection resumed (the worker fails otherwise);
      // under load each client loop's first connection may be a full one (one ticket to share).
      const resumedNote: Record<string, string> = v === 'pqmcp-resumed' ? { resumed: `all ${plan.rounds * plan.batch} sequential; ${sum('loadResumed')} of ${sum('loadTotal')} under load` } : {};
      result.variants[v] = {
        label: LABELS[v],
        details: { ...procs.get(v)!.details, ...resumedNote },
        firstResponseMs: get('firstResponseMs'),
        channelReadyMs: get('channelReadyMs'),
        clientCpuMs: get('clientCpuMs'),
        serverCpuMs: get('serverCpuMs'),
        handshakesPerSecond: get('handshakesPerSecond'),
        serverCpuMsUnderLoad: get('serverCpuMsUnderLoad'),
        cold: cold.get(v),
        warm: plan.warmRounds > 0 ? { firstResponseMs: get('warm.firstResponseMs'), clientCpuMs: get('warm.clientCpuMs'), serverCpuMs: get('warm.serverCpuMs') } : undefined,
      };
    }
    return result;
  });
}
