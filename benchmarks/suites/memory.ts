/**
 * Memory: what an established idle session and a 1 MiB message in flight cost, on each
 * side, for one variant and one part per process pair (the runner starts a fresh client and
 * a fresh server process for each, both with --expose-gc, so nothing else is in the heap).
 *
 *   idle sessions   `sessions` connections opened in 4 equal steps (pqmcp: the real
 *                   PqmcpClientTransport against listen(), handshake completed and the
 *                   server transport started; ws / wss: a ws connection) after a first,
 *                   uncounted step of the same size kept open; RSS measured on both sides
 *                   before the first counted step and after each, once the processes have
 *                   been idle for `settleMs`, after full GCs until RSS stops falling.
 *                   Per-session figures are the growth per step divided by the step size
 *                   (median, min, max over the 4 steps) and the growth over all 4 (total).
 *   in flight       `burst` messages of 1 MiB sent at once without waiting (the byte
 *                   channels of lib/channels.ts), the receiver counting and dropping them;
 *                   the peak RSS above the settled level on each side, per message. Peak:
 *                   RSS sampled every millisecond, or the kernel's maxRSS where that rose.
 *
 * Why idle means "left alone for settleMs, then collected until RSS stops falling": V8 grows
 * its young generation while a burst allocates and keeps objects alive (each pqmcp session
 * promotes ~20 KiB of state through it; on Node 24 it reached ~50 MiB for 1,000 sessions
 * opened 8 at a time), and gives it back, in halving steps at each GC, once its allocation
 * rate over the last 5 s is low: what an idle process does on its own (the next scavenge or
 * V8's memory reducer). A GC right after the burst still sees the burst's rate and keeps it,
 * which counted a per-process buffer sized by how fast sessions were opened as per-session
 * memory (until 2026-12-06: Node 24, pqmcp 78-104 KiB per session right after the burst
 * against 23-50 KiB once idle; ws and wss hold little in the JS heap and barely moved).
 * The uncounted first step keeps what a process allocates once out of the per-session
 * figure for every variant alike (on Node 20 RSS still fell by ~10 MiB within 20 s of the
 * 4-session warm-up).
 */
import { PqmcpClientTransport } from '../../src/transport/client.js';
import { selectBackend } from '../../src/crypto/select.js';
import { openChannel } from '../lib/channels.js';
import type { ByteChannel, ChannelVariant } from '../lib/channels.js';
import { Tag, decodeControl, encodeControl, payload } from '../lib/bench-protocol.js';
import type { ControlReply } from '../lib/bench-protocol.js';
import { startServer, within } from '../lib/context.js';
import type { ServerProcess, SuiteContext } from '../lib/context.js';
import { SERVER_AGENT_ID, identityOf, trustOf } from '../lib/fixtures.js';
import { groupOffered } from '../lib/tls.js';
import { compact, summarize } from '../lib/stats.js';
import type { Summary } from '../lib/stats.js';

export type MemoryVariant = 'ws' | 'wss' | 'pqmcp';

export interface MemorySessions {
  sessions: number;
  /** KiB of RSS per idle session: per step (median, min, max) and from 0 to `sessions`. */
  clientKiBPerSession?: Summary | undefined;
  serverKiBPerSession?: Summary | undefined;
  clientKiBPerSessionTotal: number;
  serverKiBPerSessionTotal: number;
  /** KiB of JS heap + external memory per idle session (from 0 to `sessions`). */
  clientHeapKiBPerSession: number;
  serverHeapKiBPerSession: number;
}

export interface MemoryInFlight {
  burst: number;
  /** MiB of peak RSS per 1 MiB message in flight. */
  senderMiBPerMiB: number;
  receiverMiBPerMiB: number;
}

export type MemoryResult = { variant: MemoryVariant } & Partial<MemorySessions> & Partial<MemoryInFlight>;

/** settleMs: idle time before an idle measurement (V8 judges its allocation rate over 5 s). */
const PLANS: Record<SuiteContext['mode'], { sessions: number; burst: number; settleMs: number }> = {
  full: { sessions: 1000, burst: 32, settleMs: 6000 },
  ci: { sessions: 100, burst: 8, settleMs: 6000 },
  smoke: { sessions: 4, burst: 2, settleMs: 100 },
};

interface Mem {
  rss: number;
  heapUsed: number;
  external: number;
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('the memory suite needs --expose-gc');
  g();
  g();
}

function mem(): Mem {
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}

const serverMem = (server: ServerProcess) => server.worker.request<Mem & { idleSessions: number }>('mem');

async function inFlight(ctx: SuiteContext, server: ServerProcess, variant: MemoryVariant, burst: number): Promise<{ sender: number; receiver: number }> {
  const tlsGroup = groupOffered('X25519MLKEM768') ? 'X25519MLKEM768' : 'X25519';
  const channel: ByteChannel = await openChannel(variant as ChannelVariant, { ports: server.ports, certs: ctx.certs, fixture: ctx.fixture, tlsGroup });
  try {
    let done: (m: ControlReply) => void = () => {};
    channel.onmessage = (d) => {
      if (d[0] === Tag.control) done(decodeControl<ControlReply>(d));
    };
    const sink = async (count: number, send: (data: Uint8Array) => Promise<void>) => {
      const finished = new Promise<ControlReply>((r) => (done = r));
      await channel.send(encodeControl({ op: 'sink', count }));
      await send(payload(Tag.sink, 1024 * 1024));
      await within(finished, 60_000, 'burst');
    };
    // Warm the code paths, then settle.
    for (let i = 0; i < 2; i++) {
      await sink(4, async (data) => {
        await Promise.all([0, 1, 2, 3].map(() => channel.send(data)));
      });
    }
    await new Promise((r) => setTimeout(r, 50));
    const base = mem().rss;
    const serverBase = (await serverMem(server)).rss;
    const maxRssBefore = process.resourceUsage().maxRSS * 1024;
    let peakRss = base;
    const timer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 1);
    await server.worker.request('peakStart');
    await sink(burst, async (data) => {
      const sends: Promise<void>[] = [];
      for (let i = 0; i < burst; i++) sends.push(channel.send(data));
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      await Promise.all(sends);
    });
    clearInterval(timer);
    const serverPeak = await server.worker.request<number>('peakStop');
    const maxRss = process.resourceUsage().maxRSS * 1024;
    const senderPeak = Math.max(peakRss, maxRss > maxRssBefore ? maxRss : 0);
    const mib = 1024 * 1024;
    return { sender: Math.max(0, senderPeak - base) / mib / burst, receiver: Math.max(0, serverPeak - serverBase) / mib / burst };
  } finally {
    await within(channel.close(), 5000, 'close').catch(() => {});
  }
}

type Closable = { close(): Promise<void> };

let clientIdentity: { identity: ReturnType<typeof identityOf>; trust: ReturnType<typeof trustOf> } | undefined;

async function openSession(ctx: SuiteContext, server: ServerProcess, variant: MemoryVariant): Promise<Closable> {
  if (variant !== 'pqmcp') {
    const tlsGroup = groupOffered('X25519MLKEM768') ? 'X25519MLKEM768' : 'X25519';
    return openChannel(variant, { ports: server.ports, certs: ctx.certs, fixture: ctx.fixture, tlsGroup });
  }
  const backend = selectBackend('native');
  // One agent identity and trust store for every session, as a real client process holds:
  // a fresh one per session would count its key imports as session memory.
  clientIdentity ??= { identity: identityOf(ctx.fixture, 'client', backend), trust: trustOf(ctx.fixture) };
  const transport = new PqmcpClientTransport(`ws://127.0.0.1:${server.ports['pqmcp-listen']}/`, {
    ...clientIdentity,
    backend,
    expectedServerId: SERVER_AGENT_ID,
    handshakeTimeoutMs: 300_000,
  });
  transport.onerror = () => {};
  await transport.start();
  await transport.handshake;
  return transport;
}

async function openMany(ctx: SuiteContext, server: ServerProcess, variant: MemoryVariant, n: number, into: Closable[]): Promise<void> {
  let next = 0;
  const concurrency = variant === 'pqmcp' ? 8 : 32;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        next++;
        into.push(await within(openSession(ctx, server, variant), 300_000, `${variant} session`));
      }
    }),
  );
}

/**
 * One part for one variant: `sessions` or `inflight`. The runner gives each part a fresh
 * process pair, so neither part's peak or heap leftovers skew the other.
 */
export async function runMemory(ctx: SuiteContext, options: { variant: MemoryVariant; part: 'sessions' | 'inflight' }): Promise<MemoryResult> {
  const plan = PLANS[ctx.mode];
  const variant = options.variant;
  const endpoints = variant === 'pqmcp' ? [options.part === 'inflight' ? ('pqmcp' as const) : ('pqmcp-listen' as const)] : [variant];
  const server = await startServer(ctx, endpoints, { nodeFlags: ['--expose-gc'] });
  const open: Closable[] = [];
  try {
    if (options.part === 'inflight') {
      const flight = await inFlight(ctx, server, variant, plan.burst);
      return { variant, burst: plan.burst, senderMiBPerMiB: flight.sender, receiverMiBPerMiB: flight.receiver };
    }
    // Warm the session code paths, then measure from a settled heap.
    await openMany(ctx, server, variant, 4, open);
    await Promise.all(open.splice(0).map((s) => within(s.close(), 10_000, 'close').catch(() => {})));
    await new Promise((r) => setTimeout(r, 200));
    const steps = 4;
    const per = Math.max(1, Math.round(plan.sessions / steps));
    const openStep = async () => {
      await openMany(ctx, server, variant, per, open);
      // The client finishes its handshake one flight before the server does.
      for (let wait = 0; variant === 'pqmcp'; wait++) {
        const held = (await serverMem(server)).idleSessions;
        if (held >= open.length) break;
        if (wait === 100) throw new Error(`server holds ${held} sessions, client ${open.length}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    // Idle: both processes left alone for settleMs, then collected until RSS stops falling
    // (V8 gives its young generation back in halving steps, one per GC while idle).
    const settled = async (measure: () => Promise<Mem>): Promise<Mem> => {
      let m = await measure();
      for (let i = 0; i < 8; i++) {
        await new Promise((r) => setTimeout(r, 500));
        const next = await measure();
        const falling = next.rss < m.rss - 256 * 1024;
        m = next;
        if (!falling) break;
      }
      return m;
    };
    const idle = async (): Promise<[Mem, Mem]> => {
      await new Promise((r) => setTimeout(r, plan.settleMs));
      return [await settled(async () => mem()), await settled(() => serverMem(server))];
    };
    // A first step, kept open and not counted: what a process allocates once, whatever the
    // variant (compiled code, pools, its heap's first growth), lands here.
    await openStep();
    const [c0, s0] = await idle();
    const client: Mem[] = [c0];
    const serverSide: Mem[] = [s0];
    for (let s = 0; s < steps; s++) {
      await openStep();
      const [c, sv] = await idle();
      client.push(c);
      serverSide.push(sv);
    }
    const kib = (a: number, b: number, n: number) => (b - a) / 1024 / n;
    const stepRates = (m: Mem[]) => m.slice(1).map((x, i) => kib(m[i]!.rss, x.rss, per));
    const first = (m: Mem[]) => m[0]!;
    const last = (m: Mem[]) => m[m.length - 1]!;
    const heap = (m: Mem) => m.heapUsed + m.external;
    const total = per * steps;
    return {
      variant,
      sessions: total,
      clientKiBPerSession: compact(summarize(stepRates(client))),
      serverKiBPerSession: compact(summarize(stepRates(serverSide))),
      clientKiBPerSessionTotal: kib(first(client).rss, last(client).rss, total),
      serverKiBPerSessionTotal: kib(first(serverSide).rss, last(serverSide).rss, total),
      clientHeapKiBPerSession: (heap(last(client)) - heap(first(client))) / 1024 / total,
      serverHeapKiBPerSession: (heap(last(serverSide)) - heap(first(serverSide))) / 1024 / total,
    };
  } finally {
    await Promise.all(open.map((s) => within(s.close(), 10_000, 'close').catch(() => {})));
    await server.stop();
  }
}
