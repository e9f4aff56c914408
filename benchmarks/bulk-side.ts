/**
 * One side (server or client) of `bulk-cpu.ts`: a child process that holds one channel of
 * the throughput suite's kind (pqmcp: Session + Connection + the ws adapter; or plain ws)
 * and streams or sinks messages on request, reporting its own CPU and garbage-collection
 * time. The pqmcp code is loaded from the checkout at `root` (this tree, or another one for
 * an A/B), so the same harness measures both.
 *
 * Sharp edges:
 * - The client end is the suite's own (`lib/channels.ts` of `root`); the server end is
 *   wired as `server.ts` wires the suite's byte-level endpoints (deliveryWaitsForDrain on
 *   the pqmcp server, the same backpressure rule on ws).
 * - `arm()` resets the receive count before the sender starts, so no message is missed or
 *   counted twice; `wait()` returns the counters read when the last one arrived.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { PerformanceObserver } from 'node:perf_hooks';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { serveRequests } from './lib/proc.js';

type Variant = 'pqmcp' | 'ws';

interface Channel {
  send(data: Uint8Array): Promise<void>;
  onmessage: (data: Uint8Array) => void;
}

export interface Counters {
  /** Process CPU µs (all threads). */
  cpu: number;
  /** Main thread CPU µs (process CPU where threadCpuUsage is missing). */
  main: number;
  /** Garbage-collection ms, and collections by kind (perf_hooks: 1 minor, 4 major, 8 incremental marking, 16 weak callbacks). */
  gcMs: number;
  gcs: Record<number, number>;
}

let gcMs = 0;
const gcs: Record<number, number> = {};
/** Every collection's kind, flags and pause (ms), for `gcLog`. */
const gcLog: Array<[number, number, number]> = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    const detail = (e as unknown as { detail?: { kind: number; flags: number } }).detail;
    const kind = detail?.kind ?? 0;
    gcs[kind] = (gcs[kind] ?? 0) + 1;
    if (gcLog.length < 10_000) gcLog.push([kind, detail?.flags ?? 0, e.duration]);
  }
}).observe({ entryTypes: ['gc'] });

const threadCpu = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage ?? process.cpuUsage;
function counters(): Counters {
  const p = process.cpuUsage();
  const m = threadCpu();
  return { cpu: p.user + p.system, main: m.user + m.system, gcMs, gcs: { ...gcs } };
}
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

let channel: Channel | undefined;
let target = 0;
let received = 0;
let atLast: Counters | undefined;
let onLast: ((c: Counters) => void) | undefined;

function receiver(data: Uint8Array): void {
  void data;
  if (++received === target) {
    atLast = counters();
    onLast?.(atLast);
  }
}

const load = (root: string, path: string): Promise<any> => import(pathToFileURL(`${root}/${path}`).href);

const HWM = 8 * 1024 * 1024;

async function listen(args: { root: string; variant: Variant; fixture: unknown }): Promise<number> {
  const http = createServer();
  if (args.variant === 'ws') {
    const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
    wss.on('connection', (ws: WebSocket) => {
      ws.on('error', () => {});
      let waiters: Array<() => void> = [];
      const written = (): void => {
        if (waiters.length === 0 || ws.bufferedAmount > HWM) return;
        const w = waiters;
        waiters = [];
        for (const f of w) f();
      };
      const ch: Channel = {
        onmessage: receiver,
        send(data) {
          ws.send(data, { binary: true }, written);
          if (ws.bufferedAmount <= HWM) return Promise.resolve();
          return new Promise<void>((r) => waiters.push(r));
        },
      };
      ws.on('message', (data: Buffer) => ch.onmessage(data));
      channel = ch;
    });
  } else {
    const [{ selectBackend }, { Session }, { Connection }, opts, wsSocket, fx] = await Promise.all([
      load(args.root, 'src/crypto/select.ts'),
      load(args.root, 'src/session/session.ts'),
      load(args.root, 'src/transport/connection.ts'),
      load(args.root, 'src/transport/options.ts'),
      load(args.root, 'src/transport/ws-socket.ts'),
      load(args.root, 'benchmarks/lib/fixtures.ts'),
    ]);
    const backend = selectBackend('auto');
    const identity = fx.identityOf(args.fixture, 'server', backend);
    const trust = fx.trustOf(args.fixture);
    const resolved = opts.resolveOptions({ identity, trust });
    const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: resolved.maxPayload, handleProtocols: (p: Set<string>) => (p.has(opts.SUBPROTOCOL) ? opts.SUBPROTOCOL : false) });
    wss.on('connection', (ws: WebSocket) => {
      const session = Session.server({ backend, identity: opts.localIdentity(identity), trust, maxMessageSize: resolved.maxMessageSize });
      const connection = new Connection(wsSocket.wsMessageSocket(ws), session, { ...resolved.connection, deliveryWaitsForDrain: true });
      wsSocket.attachWebSocket(ws, connection);
      const ch: Channel = { onmessage: receiver, send: (data) => connection.send(data) };
      connection.onmessage = (data: Uint8Array) => ch.onmessage(data);
      connection.onerror = () => {};
      connection.onclose = () => {};
      channel = ch;
    });
  }
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return (http.address() as AddressInfo).port;
}

async function connect(args: { root: string; variant: Variant; fixture: unknown; port: number }): Promise<boolean> {
  const { openChannel } = await load(args.root, 'benchmarks/lib/channels.ts');
  const ch = await openChannel(args.variant, { ports: { [args.variant]: args.port }, fixture: args.fixture });
  ch.onmessage = receiver;
  channel = ch;
  return true;
}

function payload(size: number): Uint8Array {
  return new Uint8Array(size).fill(0x61);
}

serveRequests({
  listen,
  gcLog: () => gcLog.splice(0),
  memory: () => ({ ...process.memoryUsage(), take: (globalThis as any).__rbTake, alloc: (globalThis as any).__rbAlloc }),
  /** CPU ticks (user + system) of each thread of this process, by thread name (Linux). */
  threads: () => {
    const out: Record<string, number> = {};
    for (const t of readdirSync('/proc/self/task')) {
      try {
        const stat = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out[name] = (out[name] ?? 0) + Number(f[11]) + Number(f[12]);
      } catch {
        // the thread ended
      }
    }
    return out;
  },
  connect,
  async mark(): Promise<Counters> {
    await settle();
    return counters();
  },
  async arm(args: { count: number }): Promise<Counters> {
    await settle();
    received = 0;
    target = args.count;
    atLast = undefined;
    return counters();
  },
  async wait(): Promise<Counters> {
    const at = atLast ?? (await new Promise<Counters>((resolve) => (onLast = resolve)));
    onLast = undefined;
    await settle();
    // The garbage collector's entries arrive asynchronously: take its figures after a turn.
    return { ...at, gcMs, gcs: { ...gcs } };
  },
  async send(args: { size: number; count: number }): Promise<boolean> {
    if (!channel) throw new Error('no channel');
    const data = payload(args.size);
    for (let i = 0; i < args.count; i++) await channel.send(data);
    return true;
  },
});
