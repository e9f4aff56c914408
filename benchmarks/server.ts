/**
 * The benchmark server process: `node --import tsx benchmarks/server.ts`, driven over IPC
 * by the measuring process (lib/proc.ts). One process hosts every endpoint a suite needs,
 * each on its own 127.0.0.1 port, so the compared variants share one server process and
 * can be interleaved:
 *
 *   ws, wss, pqmcp        the byte protocol of lib/bench-protocol.ts (sink, source, echo)
 *   mcp-ws, mcp-wss       SDK McpServer per connection over the baseline ws transport
 *   mcp-pqmcp-<backend>   SDK McpServer per session behind serveMcp (pqmcp's public API)
 *   mcp-pqmcp-audit       the same (native) with auditing and metrics on: every event to an
 *                         AuditLog in a temporary directory and to OpenTelemetry metrics
 *                         (SDK MeterProvider with the Prometheus exporter, as the gateway)
 *   mcp-pqmcp-policy      the same (native) with a Cedar policy that permits the echo tool
 *                         (decisions memoised per session, the default)
 *   mcp-pqmcp-policy-nomemo  the same with a policy that also reads `context` and memo: false
 *                         (Cedar decides every request)
 *   mcp-pqmcp-tickets     the same (native) issuing and accepting resumption tickets
 *                         (fresh ticket keys per process; the handshake suite's resumed variant)
 *   pqmcp-listen          pqmcp's listen(): sessions are started and kept idle (memory)
 *
 * Commands: start, cpu, edgeStats, mem, peakStart, peakStop, probeStart, probeStop (flood-probe.ts), stop
 * (see the handlers below).
 */
import { createServer } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { PerformanceObserver, monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import type { AuditSink } from '../src/audit/events.js';
import { benchAuditSink } from './lib/audit-sink.js';
import type { Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { Session } from '../src/session/session.js';
import { TicketKeys } from '../src/resumption/ticket-keys.js';
import { selectBackend } from '../src/crypto/select.js';
import type { BackendChoice } from '../src/crypto/select.js';
import { Connection } from '../src/transport/connection.js';
import { SUBPROTOCOL, localIdentity, resolveOptions } from '../src/transport/options.js';
import { attachWebSocket, wsMessageSocket } from '../src/transport/ws-socket.js';
import { listen, serveMcp } from '../src/transport/server.js';
import type { PqmcpServer } from '../src/transport/server.js';
import type { PqmcpServerTransport } from '../src/transport/server-transport.js';
import { benchProtocolHandler, cpuMicros } from './lib/bench-protocol.js';
import type { Certificates } from './lib/certs.js';
import { runtimeInfo } from './lib/env.js';
import { identityOf, trustOf } from './lib/fixtures.js';
import type { PqmcpFixture } from './lib/fixtures.js';
import { makeEchoServer } from './lib/mcp-echo.js';
import { serveRequests } from './lib/proc.js';
import { serverTlsOptions } from './lib/tls.js';
import { WsMcpTransport } from './lib/ws-mcp-transport.js';

export type Endpoint = 'ws' | 'wss' | 'pqmcp' | 'mcp-ws' | 'mcp-wss' | 'mcp-pqmcp-native' | 'mcp-pqmcp-noble' | 'mcp-pqmcp-policy' | 'mcp-pqmcp-policy-nomemo' | 'mcp-pqmcp-audit' | 'pqmcp-listen' | 'mcp-pqmcp-edge' | 'mcp-pqmcp-tickets';

/** The policies of the policy-on endpoints: the echo tool for every agent, a forbid beside it. */
export const BENCH_POLICY = `@id("echo") permit(principal is Agent, action == Action::"tools/call", resource == Tool::"echo");
@id("no-delete") forbid(principal, action, resource == Tool::"delete");`;
export const BENCH_POLICY_CTX = `@id("echo") permit(principal is Agent, action == Action::"tools/call", resource == Tool::"echo") when { context.requestBytes < 1048576 };
@id("no-delete") forbid(principal, action, resource == Tool::"delete");`;

export interface StartArgs {
  endpoints: Endpoint[];
  fixture: PqmcpFixture;
  certs?: Certificates;
  /** Backend of the byte-level pqmcp endpoint and of pqmcp-listen. Default auto. */
  backend?: BackendChoice;
  /** mcp-pqmcp-edge: options over the defaults (flood-ab.ts compares two settings). */
  edgeOptions?: Record<string, unknown>;
}

const closers: Array<() => Promise<void>> = [];
const peak: { max: number; maxRssBefore: number; timer: NodeJS.Timeout | undefined } = { max: 0, maxRssBefore: 0, timer: undefined };
const idle = new Set<unknown>();
let edgeServer: PqmcpServer | undefined;
const gcPauses: Array<{ kind: number; ms: number }> = [];
let gcObserver: PerformanceObserver | undefined;
let probe: { delay: IntervalHistogram; elu: EventLoopUtilization; threads: Map<string, number>; crypto: { refused: number; inlined: number }; sched: number[] } | undefined;

/** This thread's schedstat: ns on a CPU, ns waiting on a run queue, time slices (Linux; zeros elsewhere). */
function schedstat(): number[] {
  try {
    return readFileSync('/proc/thread-self/schedstat', 'utf8').trim().split(' ').map(Number);
  } catch {
    return [0, 0, 0];
  }
}

/** CPU time (ms) of each thread of this process so far, by "tid name" (Linux; empty elsewhere). */
function threadCpuMs(): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[] = [];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const name = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      out.set(`${tid} ${name}`, ((Number(fields[11]) + Number(fields[12])) * 1000) / 100);
    } catch {
      // the thread ended
    }
  }
  return out;
}

function cryptoCounts(): { refused: number; inlined: number } {
  const stats = (edgeServer as unknown as { edge?: { cryptoStats: { refused: number; inlined: number } } } | undefined)?.edge?.cryptoStats;
  return { refused: stats?.refused ?? 0, inlined: stats?.inlined ?? 0 };
}
const HANDSHAKE_TIMEOUT_MS = 120_000;

function onPort(server: HttpServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** At exit: drop every WebSocket, stop listening, close the HTTP server. */
function closeOnExit(wss: WebSocketServer, http: HttpServer): void {
  closers.push(async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    http.closeAllConnections();
    await new Promise<void>((r) => http.close(() => r()));
  });
}

function httpFor(endpoint: Endpoint, certs: Certificates | undefined): HttpServer {
  if (!endpoint.includes('wss')) return createServer();
  if (!certs) throw new Error(`${endpoint} needs certificates`);
  return createHttpsServer(serverTlsOptions(certs)) as unknown as HttpServer;
}

/** Plain ws / wss endpoints: the byte protocol, or an McpServer per connection. */
async function startWs(endpoint: Endpoint, certs: Certificates | undefined): Promise<number> {
  const http = httpFor(endpoint, certs);
  const mcp = endpoint.startsWith('mcp-');
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false, clientTracking: true });
  wss.on('connection', (ws: WebSocket) => {
    ws.on('error', () => {});
    if (mcp) {
      void makeEchoServer().connect(new WsMcpTransport({ socket: ws }));
      return;
    }
    const handler = benchProtocolHandler((data) => sendWs(ws, data));
    ws.on('message', (data: Buffer) => handler(data));
  });
  closeOnExit(wss, http);
  return onPort(http);
}

const HWM = 8 * 1024 * 1024;
const drain = new WeakMap<WebSocket, Array<() => void>>();

/** The same backpressure rule as the client channels (lib/channels.ts). */
function sendWs(ws: WebSocket, data: Uint8Array): Promise<void> {
  if (ws.readyState !== ws.OPEN) return Promise.reject(new Error('closed'));
  ws.send(data, { binary: true }, () => {
    const waiters = drain.get(ws);
    if (!waiters || waiters.length === 0 || ws.bufferedAmount > HWM) return;
    drain.set(ws, []);
    for (const f of waiters) f();
  });
  if (ws.bufferedAmount <= HWM) return Promise.resolve();
  return new Promise<void>((r) => {
    const waiters = drain.get(ws) ?? [];
    waiters.push(r);
    drain.set(ws, waiters);
  });
}

/** Byte-level pqmcp endpoint: Session + Connection + ws adapter, as the listener wires them. */
async function startPqmcpBytes(args: StartArgs): Promise<number> {
  const backend = selectBackend(args.backend ?? 'auto');
  const identity = identityOf(args.fixture, 'server', backend);
  const trust = trustOf(args.fixture);
  const resolved = resolveOptions({ identity, trust, handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS });
  const http = createServer();
  const wss = new WebSocketServer({
    server: http,
    perMessageDeflate: false,
    maxPayload: resolved.maxPayload,
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  const connections = new Set<Connection>();
  wss.on('connection', (ws: WebSocket) => {
    const session = Session.server({ backend, identity: localIdentity(identity), trust, maxMessageSize: resolved.maxMessageSize });
    // The listener's server-side setting: received messages wait while replies are backed up.
    const connection = new Connection(wsMessageSocket(ws), session, { ...resolved.connection, deliveryWaitsForDrain: true });
    attachWebSocket(ws, connection);
    connections.add(connection);
    connection.onmessage = benchProtocolHandler((data) => connection.send(data));
    connection.onerror = () => {};
    connection.onclose = () => connections.delete(connection);
  });
  closeOnExit(wss, http);
  return onPort(http);
}

async function startPqmcpServer(args: StartArgs, endpoint: Endpoint): Promise<number> {
  const withPolicy = endpoint === 'mcp-pqmcp-policy' || endpoint === 'mcp-pqmcp-policy-nomemo';
  const withAudit = endpoint === 'mcp-pqmcp-audit';
  const withTickets = endpoint === 'mcp-pqmcp-tickets';
  const backend: BackendChoice = endpoint === 'mcp-pqmcp-noble' ? 'noble' : endpoint === 'mcp-pqmcp-native' || withPolicy || withAudit || withTickets ? 'native' : (args.backend ?? 'auto');
  const identity = identityOf(args.fixture, 'server', selectBackend(backend));
  // The policy layer (and the Cedar engine) is loaded only for the policy-on endpoints.
  const policy = withPolicy ? await (await import('../src/policy/index.js')).loadPolicy(endpoint === 'mcp-pqmcp-policy' ? { text: BENCH_POLICY } : { text: BENCH_POLICY_CTX, memo: false }) : undefined;
  // Every bench client is the same agent: the per-agent session cap (default 256) is lifted.
  const options = { identity, trust: trustOf(args.fixture), backend, host: '127.0.0.1', port: 0, handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, maxPendingHandshakes: 2048, maxPendingPerSource: 2048, maxCryptoQueue: 2048, handshakeRatePerSource: 0, connectionRatePerSource: 0, maxSessionsPerAgent: 0, ...(withTickets ? { tickets: { keys: TicketKeys.generate(selectBackend(backend)) } } : {}), ...(policy ? { policy } : {}), ...(withAudit ? { onAuditEvent: await auditAndMetrics() } : {}) };
  let server: PqmcpServer;
  if (endpoint === 'mcp-pqmcp-edge') {
    // The flood suite: the listener's default edge settings, nothing lifted.
    server = await serveMcp({ identity, trust: trustOf(args.fixture), backend, host: '127.0.0.1', port: 0, ...args.edgeOptions }, () => makeEchoServer({ clock: true }));
    edgeServer = server;
  } else if (endpoint === 'pqmcp-listen') {
    server = await listen(options);
    server.on('session', (transport: PqmcpServerTransport) => {
      idle.add(transport);
      transport.onclose = () => idle.delete(transport);
      void transport.start();
    });
  } else {
    server = await serveMcp(options, () => makeEchoServer());
  }
  closers.push(() => server.close());
  return server.address().port;
}

/** What `pqmcp serve --audit DIR --metrics ...` does with each event: a file and the meter. */
async function auditAndMetrics(): Promise<AuditSink> {
  const { sink, close } = await benchAuditSink({ audit: true, metrics: true });
  closers.push(close);
  return sink;
}

serveRequests({
  async start(args: StartArgs) {
    const ports: Record<string, number> = {};
    for (const endpoint of args.endpoints) {
      if (endpoint === 'pqmcp') ports[endpoint] = await startPqmcpBytes(args);
      else if (endpoint.startsWith('mcp-pqmcp') || endpoint === 'pqmcp-listen') ports[endpoint] = await startPqmcpServer(args, endpoint);
      else ports[endpoint] = await startWs(endpoint, args.certs);
    }
    return { ports, info: runtimeInfo() };
  },
  cpu() {
    return cpuMicros();
  },
  /** The edge's crypto pool counters (one-core.ts). */
  edgeStats() {
    return { cryptoStats: (edgeServer as unknown as { edge?: { cryptoStats: Record<string, number> } } | undefined)?.edge?.cryptoStats };
  },
  mem() {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, maxRss: process.resourceUsage().maxRSS * 1024, idleSessions: idle.size };
  },
  /** Start sampling this process's RSS every millisecond (for peaks during a burst). */
  peakStart() {
    peak.max = process.memoryUsage.rss();
    peak.maxRssBefore = process.resourceUsage().maxRSS * 1024;
    clearInterval(peak.timer);
    peak.timer = setInterval(() => (peak.max = Math.max(peak.max, process.memoryUsage.rss())), 1);
    return true;
  },
  /** Stop sampling: the highest RSS seen, and the kernel's peak if it rose meanwhile. */
  peakStop() {
    clearInterval(peak.timer);
    const maxRss = process.resourceUsage().maxRSS * 1024;
    return Math.max(peak.max, maxRss > peak.maxRssBefore ? maxRss : 0);
  },
  /** Start measuring this process's event loop (delay, utilisation), its threads' CPU and the edge's crypto counts (flood-probe.ts). */
  probeStart() {
    probe?.delay.disable();
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    gcPauses.length = 0;
    gcObserver ??= new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcPauses.push({ kind: ((e as unknown as { detail: { kind: number } }).detail).kind, ms: e.duration });
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    probe = { delay, elu: performance.eventLoopUtilization(), threads: threadCpuMs(), crypto: cryptoCounts(), sched: schedstat() };
    return true;
  },
  /** Stop: what probeStart started measuring, since then. */
  probeStop() {
    if (!probe) return undefined;
    const { delay, elu, threads, crypto, sched } = probe;
    const sched1 = schedstat();
    probe = undefined;
    delay.disable();
    const now = threadCpuMs();
    const c = cryptoCounts();
    return {
      elu: performance.eventLoopUtilization(elu).utilization,
      delayMs: { p50: delay.percentile(50) / 1e6, p90: delay.percentile(90) / 1e6, p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 },
      threadsMs: Object.fromEntries([...now].map(([k, v]) => [k, v - (threads.get(k) ?? 0)]).filter(([, v]) => (v as number) > 0)),
      refused: c.refused - crypto.refused,
      inlined: c.inlined - crypto.inlined,
      sched: sched1.map((v, i) => v - sched[i]!),
      gc: gcPauses.splice(0),
    };
  },
  async stop() {
    await Promise.race([Promise.all(closers.map((c) => c().catch(() => {}))), new Promise((r) => setTimeout(r, 3000))]);
    return true;
  },
});
