/**
 * Memory: what an established idle session and a 1 MiB message in flight cost, on each
 * side, for one variant and one part per process pair (the runner starts a fresh client and
 * a fresh server process for each, with the same Node flags for every variant:
 * `memoryNodeFlags(part)`).
 *
 *   idle sessions   `sessions` connections opened in 4 equal steps (pqmcp: the real
 *                   PqmcpClientTransport against listen(), handshake completed and the
 *                   server transport started; ws / wss: a ws connection) after a first,
 *                   uncounted step of the same size kept open; RSS measured on both sides
 *                   before the first counted step and after each, once the processes have
 *                   been idle for `settleMs`, after full GCs until RSS stops falling
 *                   (`settle`). Both processes run with V8's young generation capped at
 *                   1 MiB per semi-space (`--max-semi-space-size=1`). Per-session figures
 *                   are the growth per step divided by the step size (median, min, max over
 *                   the 4 steps) and the growth over all 4 (total): `sessionFigures`.
 *   in flight       `burst` messages of 1 MiB sent at once without waiting (the byte
 *                   channels of lib/channels.ts), the receiver counting and dropping them;
 *                   the peak RSS above the settled level on each side, per message. Peak:
 *                   RSS sampled every millisecond, or the kernel's maxRSS where that rose.
 *                   Default young generation (a burst's peak is what a process sees).
 *
 * Why the young generation is capped for the idle-session part. V8's young generation is a
 * per-process buffer (up to 2 x 16 MiB of semi-spaces plus pooled pages on Node 20 and 24)
 * that grows while a burst of handshakes promotes each session's ~20 KiB of long-lived state
 * through it, and that V8 gives back on its own schedule, not on ours. Node 20 (V8 11.3)
 * keeps it through forced GCs and returns it when its memory reducer runs, a timer started
 * 8 s after a mark-compact that fires when the allocation rate is low (seen with --trace-gc:
 * "Mark-Compact (reduce) 34.5 (65.9) -> 31.2 (33.4) MB ... finalize incremental marking via
 * task", 24 s into an idle process, RSS 110 -> 79 MiB); freed young pages are pooled and
 * released later again. Measured per step on Node 20 (/proc/self/smaps, v8 heap spaces,
 * 2026-12-06): the young space at 30 MiB after one step's 6 s idle and GCs, at 1.3 after the
 * next, ~17 MiB of pooled pages released a step later; the malloc heap (brk) only grew
 * (OpenSSL's ~56 KiB per wss session and pqmcp's ~9 KiB live there) and was never trimmed.
 * So RSS moved by 20-30 MiB between steps of 250 sessions (5-15 MiB of real growth): per
 * step -116 to +84 KiB per session for every variant, ws included. Node 24 (V8 13.6) shrinks
 * the young generation in halving steps on repeated GCs once idle, but across the steps, so
 * it too counted the buffer's return against the sessions (pqmcp 15 KiB of RSS per session
 * against 25.5 KiB of JS heap: less RSS than heap). With 1 MiB semi-spaces the buffer is at
 * most ~3 MiB and returns at once; what a session keeps (old space, malloc, OpenSSL) is
 * counted as before, and every variant, client and server alike runs with the same flag. A
 * production process's young generation is one per-process buffer of tens of MiB at most,
 * whatever its session count: it is no per-session cost. The in-flight part keeps V8's default.
 *
 * The uncounted first step keeps what a process allocates once out of the per-session
 * figure for every variant alike (compiled code, pools, its heap's first growth).
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

/**
 * settleMs: idle time before an idle measurement (background sweeping and unmapping done).
 * With the young generation capped, 6 s bought nothing beyond the run-to-run spread (Node 20,
 * pqmcp over all steps: 33.5 / 26.8 KiB with 6 s; 18.9-31.3 / 28.3-32.9 in three runs with 2 s).
 * ci: bench:ci gates RSS per idle session against wss (benchmarks/lib/ci.ts). With 100
 * sessions the server's growth over all steps came out negative (a step giving memory back
 * outweighed the rest); with 400 every run gave a positive figure.
 * gapMs, maxReadings: `settle`'s, for each side's idle reading (GCs until RSS stops falling).
 */
const PLANS: Record<SuiteContext['mode'], { sessions: number; burst: number; settleMs: number; gapMs: number; maxReadings: number }> = {
  full: { sessions: 1000, burst: 32, settleMs: 2000, gapMs: 500, maxReadings: 9 },
  ci: { sessions: 400, burst: 8, settleMs: 2000, gapMs: 500, maxReadings: 9 },
  // Every step and reading runs, briefly (with 500 ms and 9, up to 8 s per side per idle
  // reading, five readings per part: most of a smoke run's memory parts).
  smoke: { sessions: 4, burst: 2, settleMs: 100, gapMs: 20, maxReadings: 2 },
};

/** MiB per semi-space of V8's young generation in the idle-session part's processes. */
export const SESSIONS_SEMI_SPACE_MIB = 1;

/**
 * Node flags of both processes of a memory part, the same for every variant: --expose-gc,
 * and for the idle-session part a young generation capped at SESSIONS_SEMI_SPACE_MIB per
 * semi-space (see the module comment: otherwise V8's timing of its return is counted).
 */
export function memoryNodeFlags(part: 'sessions' | 'inflight'): string[] {
  return part === 'sessions' ? ['--expose-gc', `--max-semi-space-size=${SESSIONS_SEMI_SPACE_MIB}`] : ['--expose-gc'];
}

export interface Mem {
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
 * Read `measure` until it stops falling: again every `gapMs` while the last reading is more
 * than `slackBytes` below the one before, at most `maxReadings` in all; the last reading.
 */
export async function settle(
  measure: () => Promise<Mem>,
  options: { gapMs: number; slackBytes: number; maxReadings: number; wait?: (ms: number) => Promise<void> },
): Promise<Mem> {
  const wait = options.wait ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let m = await measure();
  for (let i = 1; i < options.maxReadings; i++) {
    await wait(options.gapMs);
    const next = await measure();
    const falling = next.rss < m.rss - options.slackBytes;
    m = next;
    if (!falling) break;
  }
  return m;
}

/**
 * Per-session figures from the idle readings of one side: `readings[0]` after the uncounted
 * step, then one after each counted step of `per` sessions. KiB per session: RSS per step
 * (median, min, max), RSS and JS heap + external over all steps.
 */
export function sessionFigures(readings: Mem[], per: number): { perStep: Summary | undefined; total: number; heap: number } {
  if (readings.length < 2 || !(per > 0)) throw new Error('sessionFigures: a reading before the steps and one after each, and a step size');
  const kib = (a: number, b: number, n: number) => (b - a) / 1024 / n;
  const first = readings[0]!;
  const last = readings[readings.length - 1]!;
  const total = per * (readings.length - 1);
  const heap = (m: Mem) => m.heapUsed + m.external;
  return {
    perStep: compact(summarize(readings.slice(1).map((x, i) => kib(readings[i]!.rss, x.rss, per)))),
    total: kib(first.rss, last.rss, total),
    heap: (heap(last) - heap(first)) / 1024 / total,
  };
}

/**
 * One part for one variant: `sessions` or `inflight`. The runner gives each part a fresh
 * process pair, so neither part's peak or heap leftovers skew the other.
 */
export async function runMemory(ctx: SuiteContext, options: { variant: MemoryVariant; part: 'sessions' | 'inflight' }): Promise<MemoryResult> {
  const plan = PLANS[ctx.mode];
  const variant = options.variant;
  const endpoints = variant === 'pqmcp' ? [options.part === 'inflight' ? ('pqmcp' as const) : ('pqmcp-listen' as const)] : [variant];
  const server = await startServer(ctx, endpoints, { nodeFlags: memoryNodeFlags(options.part) });
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
    // Idle: both processes left alone for settleMs, then collected until RSS stops falling.
    const settled = (measure: () => Promise<Mem>) => settle(measure, { gapMs: plan.gapMs, slackBytes: 256 * 1024, maxReadings: plan.maxReadings });
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
    const clientFig = sessionFigures(client, per);
    const serverFig = sessionFigures(serverSide, per);
    return {
      variant,
      sessions: per * steps,
      clientKiBPerSession: clientFig.perStep,
      serverKiBPerSession: serverFig.perStep,
      clientKiBPerSessionTotal: clientFig.total,
      serverKiBPerSessionTotal: serverFig.total,
      clientHeapKiBPerSession: clientFig.heap,
      serverHeapKiBPerSession: serverFig.heap,
    };
  } finally {
    await Promise.all(open.map((s) => within(s.close(), 10_000, 'close').catch(() => {})));
    await server.stop();
  }
}
