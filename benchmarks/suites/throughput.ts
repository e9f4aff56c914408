/**
 * Throughput and latency of the byte channels (lib/channels.ts): pqmcp vs plain ws vs wss
 * (TLS 1.3, mutual auth), server in its own process, for messages of 256 B, 4 KiB, 64 KiB
 * and 1 MiB.
 *
 *   c2s / s2c   one-way streaming, MB/s (10^6 bytes of application message per second),
 *               timed from the first byte sent to the receiver's report of the last one;
 *               plus CPU per MB on each side (process CPU time over the same window)
 *   rtt         ping-pong: one message out, the same bytes echoed back, p50 and p99
 *
 * Method: every variant in its own measuring process with its own server process
 * (lib/variants.ts). One warm-up round that also calibrates how many messages make a
 * measurement of about `targetMs` for the slowest variant; then `rounds` rounds in which
 * every variant runs the same work, in an order rotated each round so machine drift hits all
 * alike. Medians over rounds, with min and max. The bufferutil setting comes from the
 * environment of the variant processes (their servers inherit it).
 */
import { openChannel } from '../lib/channels.js';
import type { ByteChannel, ChannelVariant } from '../lib/channels.js';
import { Tag, cpuMicros, decodeControl, encodeControl, payload } from '../lib/bench-protocol.js';
import type { ControlReply, ControlRequest } from '../lib/bench-protocol.js';
import { bufferutilState } from '../lib/env.js';
import type { BufferutilState } from '../lib/env.js';
import { now, startServer, within } from '../lib/context.js';
import { withVariants } from '../lib/variants.js';
import type { VariantSession } from '../lib/variants.js';
import type { SuiteContext } from '../lib/context.js';
import { groupOffered } from '../lib/tls.js';
import { compact, percentile, rotate, summarize } from '../lib/stats.js';
import type { Summary } from '../lib/stats.js';

export const SIZES = [256, 4096, 65536, 1048576] as const;

export interface ThroughputCell {
  c2sMBps?: Summary | undefined;
  s2cMBps?: Summary | undefined;
  /** CPU µs per MB moved, sender and receiver side. */
  c2sClientCpuUsPerMB?: Summary | undefined;
  c2sServerCpuUsPerMB?: Summary | undefined;
  s2cClientCpuUsPerMB?: Summary | undefined;
  s2cServerCpuUsPerMB?: Summary | undefined;
  rttP50Us?: Summary | undefined;
  rttP99Us?: Summary | undefined;
  /** Messages per streaming measurement and ping-pong iterations (after calibration). */
  count?: number;
  pings?: number;
}

export interface ThroughputResult {
  bufferutil: BufferutilState;
  serverBufferutil: BufferutilState;
  rounds: number;
  sizes: number[];
  variants: Record<string, { details: Record<string, string>; sizes: Record<string, ThroughputCell> }>;
}

interface Plan {
  rounds: number;
  /** A streaming measurement moves at least this much, and lasts about targetMs for the slowest variant. */
  minBytes: number;
  targetMs: number;
  pingTargetMs: number;
  minCount: number;
  maxCount: number;
  maxPings: number;
  timeoutMs: number;
}

const MiB = 1024 * 1024;

const PLANS: Record<SuiteContext['mode'], Plan> = {
  full: { rounds: 5, minBytes: 48 * MiB, targetMs: 300, pingTargetMs: 150, minCount: 8, maxCount: 30_000, maxPings: 3000, timeoutMs: 60_000 },
  ci: { rounds: 5, minBytes: 96 * MiB, targetMs: 150, pingTargetMs: 80, minCount: 8, maxCount: 100_000, maxPings: 1500, timeoutMs: 60_000 },
  smoke: { rounds: 1, minBytes: 0, targetMs: 10, pingTargetMs: 5, minCount: 2, maxCount: 50, maxPings: 5, timeoutMs: 20_000 },
};

/** A channel with request/reply control messages and a data sink, driven by one measurement at a time. */
class Peer {
  private controlWaiters: Array<(m: ControlReply) => void> = [];
  ondata: (data: Uint8Array) => void = () => {};

  constructor(readonly channel: ByteChannel) {
    channel.onmessage = (data) => {
      if (data[0] === Tag.control) this.controlWaiters.shift()?.(decodeControl<ControlReply>(data));
      else this.ondata(data);
    };
  }

  /** Send a control request; resolves with the next control reply (if one is expected). */
  nextReply(): Promise<ControlReply> {
    return new Promise((resolve) => this.controlWaiters.push(resolve));
  }

  async control(m: ControlRequest): Promise<void> {
    await this.channel.send(encodeControl(m));
  }

  async serverCpu(): Promise<number> {
    const reply = this.nextReply();
    await this.control({ op: 'cpu' });
    const m = await reply;
    if (m.op !== 'cpu') throw new Error('unexpected control reply');
    return m.micros;
  }
}

interface Stream {
  mbps: number;
  clientCpuUsPerMB: number;
  serverCpuUsPerMB: number;
}

async function clientToServer(peer: Peer, size: number, count: number): Promise<Stream> {
  const data = payload(Tag.sink, size);
  const s0 = await peer.serverCpu();
  const c0 = cpuMicros();
  const t0 = now();
  const done = peer.nextReply();
  await peer.control({ op: 'sink', count });
  for (let i = 0; i < count; i++) await peer.channel.send(data);
  await done;
  const t1 = now();
  const c1 = cpuMicros();
  const s1 = await peer.serverCpu();
  const mb = (size * count) / 1e6;
  return { mbps: mb / ((t1 - t0) / 1000), clientCpuUsPerMB: (c1 - c0) / mb, serverCpuUsPerMB: (s1 - s0) / mb };
}

async function serverToClient(peer: Peer, size: number, count: number): Promise<Stream> {
  const s0 = await peer.serverCpu();
  const c0 = cpuMicros();
  const t0 = now();
  let n = 0;
  const got = new Promise<void>((resolve) => {
    peer.ondata = () => {
      if (++n === count) resolve();
    };
  });
  await peer.control({ op: 'source', count, size });
  await got;
  const t1 = now();
  const c1 = cpuMicros();
  peer.ondata = () => {};
  const s1 = await peer.serverCpu();
  const mb = (size * count) / 1e6;
  return { mbps: mb / ((t1 - t0) / 1000), clientCpuUsPerMB: (c1 - c0) / mb, serverCpuUsPerMB: (s1 - s0) / mb };
}

async function pingPong(peer: Peer, size: number, iterations: number): Promise<number[]> {
  const data = payload(Tag.echo, size);
  const rtts: number[] = [];
  let arrived: () => void = () => {};
  peer.ondata = () => arrived();
  for (let i = 0; i < iterations; i++) {
    const t0 = now();
    const back = new Promise<void>((r) => (arrived = r));
    await peer.channel.send(data);
    await back;
    rtts.push((now() - t0) * 1000);
  }
  peer.ondata = () => {};
  return rtts;
}

export interface ThroughputOptions {
  variants?: ChannelVariant[];
  sizes?: number[];
  /** Environment of the variant processes (and so of their servers): the bufferutil setting. */
  env?: Record<string, string | undefined>;
}

export type ThroughputMeasure = { kind: 'c2s' | 's2c'; size: number; count: number } | { kind: 'ping'; size: number; count: number } | { kind: 'bufferutil' };

/** Worker side: the variant's server process and its channel, measured on request. */
export async function openThroughputVariant(ctx: SuiteContext, variant: ChannelVariant): Promise<VariantSession> {
  const endpoint = variant === 'pqmcp-chacha' ? 'pqmcp' : variant;
  const server = await startServer(ctx, [endpoint]);
  try {
    const tlsGroup = groupOffered('X25519MLKEM768') ? 'X25519MLKEM768' : 'X25519';
    const peer = new Peer(await openChannel(variant, { ports: server.ports, certs: ctx.certs, fixture: ctx.fixture, tlsGroup }));
    const timeoutMs = PLANS[ctx.mode].timeoutMs;
    return {
      details: peer.channel.details,
      async measure(args) {
        const m = args as ThroughputMeasure;
        if (m.kind === 'bufferutil') return { client: bufferutilState(), server: server.info.bufferutil };
        if (m.kind === 'ping') return within(pingPong(peer, m.size, m.count), timeoutMs, `${variant} ping ${m.size}`);
        const run = m.kind === 'c2s' ? clientToServer : serverToClient;
        return within(run(peer, m.size, m.count), timeoutMs, `${variant} ${m.kind} ${m.size}`);
      },
      async close() {
        await within(peer.channel.close(), 5000, 'close').catch(() => {});
        await server.stop();
      },
    };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

/** Runner side: calibrate, then interleaved rounds over the variant processes. */
export async function runThroughput(ctx: SuiteContext, options: ThroughputOptions = {}): Promise<ThroughputResult> {
  const plan = PLANS[ctx.mode];
  const sizes = options.sizes ?? [...SIZES];
  const variants = (options.variants ?? ['pqmcp', 'ws', 'wss']).filter((v) => v !== 'wss' || ctx.certs);
  return withVariants('throughput', variants, ctx, { env: options.env ?? {} }, async (procs) => {
    const p = (v: string) => procs.get(v)!;
    const samples = new Map<string, number[]>();
    const add = (key: string, x: number) => samples.set(key, [...(samples.get(key) ?? []), x]);
    const counts = new Map<number, number>();
    const pings = new Map<number, number>();
    // Calibration (the warm-up round): a small run per variant and size sets the work per
    // measurement from the slowest variant's rate.
    for (const size of sizes) {
      let slowestMBps = Infinity;
      let slowestRtt = 0;
      const probe = Math.max(plan.minCount, Math.min(plan.maxCount, Math.ceil((4 * 1024 * 1024) / size / (ctx.mode === 'smoke' ? 64 : 1))));
      for (const v of variants) {
        const a = await p(v).measure<Stream>({ kind: 'c2s', size, count: probe });
        const b = await p(v).measure<Stream>({ kind: 's2c', size, count: probe });
        const r = await p(v).measure<number[]>({ kind: 'ping', size, count: ctx.mode === 'smoke' ? 2 : 20 });
        slowestMBps = Math.min(slowestMBps, a.mbps, b.mbps);
        slowestRtt = Math.max(slowestRtt, percentile(r, 50));
      }
      const perMs = (slowestMBps * 1e6) / size / 1000;
      const wanted = Math.max(Math.ceil(plan.minBytes / size), Math.round(perMs * plan.targetMs));
      counts.set(size, Math.max(plan.minCount, Math.min(plan.maxCount, wanted)));
      pings.set(size, Math.max(2, Math.min(plan.maxPings, Math.round((plan.pingTargetMs * 1000) / Math.max(1, slowestRtt)))));
    }
    for (let round = 0; round < plan.rounds; round++) {
      for (const [si, size] of sizes.entries()) {
        const count = counts.get(size)!;
        for (const v of rotate(variants, round + si)) {
          const a = await p(v).measure<Stream>({ kind: 'c2s', size, count });
          const b = await p(v).measure<Stream>({ kind: 's2c', size, count });
          const r = await p(v).measure<number[]>({ kind: 'ping', size, count: pings.get(size)! });
          const k = `${v}|${size}`;
          add(`${k}|c2sMBps`, a.mbps);
          add(`${k}|s2cMBps`, b.mbps);
          add(`${k}|c2sClientCpuUsPerMB`, a.clientCpuUsPerMB);
          add(`${k}|c2sServerCpuUsPerMB`, a.serverCpuUsPerMB);
          add(`${k}|s2cClientCpuUsPerMB`, b.clientCpuUsPerMB);
          add(`${k}|s2cServerCpuUsPerMB`, b.serverCpuUsPerMB);
          add(`${k}|rttP50Us`, percentile(r, 50));
          add(`${k}|rttP99Us`, percentile(r, 99));
        }
      }
    }
    const bu = await p(variants[0]!).measure<{ client: BufferutilState; server: BufferutilState }>({ kind: 'bufferutil' });
    const result: ThroughputResult = { bufferutil: bu.client, serverBufferutil: bu.server, rounds: plan.rounds, sizes, variants: {} };
    for (const v of variants) {
      const cells: Record<string, ThroughputCell> = {};
      for (const size of sizes) {
        const get = (m: string) => compact(summarize(samples.get(`${v}|${size}|${m}`) ?? []));
        cells[String(size)] = {
          c2sMBps: get('c2sMBps'),
          s2cMBps: get('s2cMBps'),
          c2sClientCpuUsPerMB: get('c2sClientCpuUsPerMB'),
          c2sServerCpuUsPerMB: get('c2sServerCpuUsPerMB'),
          s2cClientCpuUsPerMB: get('s2cClientCpuUsPerMB'),
          s2cServerCpuUsPerMB: get('s2cServerCpuUsPerMB'),
          rttP50Us: get('rttP50Us'),
          rttP99Us: get('rttP99Us'),
          count: counts.get(size)!,
          pings: pings.get(size)!,
        };
      }
      result.variants[v] = { details: p(v).details, sizes: cells };
    }
    return result;
  });
}
