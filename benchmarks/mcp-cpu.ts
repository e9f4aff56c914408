/**
 * CPU time and wall time per MCP `tools/call`, pqmcp against the same SDK pair over plain
 * ws, both sides in THIS process (printed, not asserted). Real SDK Client and McpServer
 * (the bench's echo tool), real WebSockets on 127.0.0.1; each variant has its own server and
 * connected client, measured in interleaved rounds (order rotated every round), so a loaded
 * machine slows them alike. CPU per call (process.cpuUsage over a batch) is the whole cost
 * of a call on both sides; wall per call is the batch's elapsed time over its calls (one
 * process: the two sides' CPU plus the event loop's waits).
 *
 *   pqmcp   PqmcpClientTransport to serveMcp (native backend), from this tree
 *   ws      the baseline transport (lib/ws-mcp-transport.ts) on a `ws` WebSocketServer, as
 *           the benchmark server's `mcp-ws` endpoint
 *   base    (with --base DIR) pqmcp from another checkout (`git archive main | tar -x -C DIR`,
 *           node_modules linked): an A/B of a change, interleaved in the same process
 *   chacha  pqmcp from this tree with the ChaCha20-Poly1305 suite (the client offers only it;
 *           the native default is AES-256-GCM)
 *   noaead  MEASUREMENT ONLY, never a configuration: pqmcp from this tree with its AEAD
 *           replaced by a copy (both sides; no protection at all): what pqmcp costs besides
 *           node:crypto's seal and open
 *
 * Cells: 100 B and 10 KiB payloads, sequential and 32 in flight. Prints per cell the median
 * and lower quartile of CPU and wall µs per call (with the minimum and the main thread's
 * share), the garbage collector's µs per call (mean), the V8 heap bytes allocated per call
 * (from v8.GCProfiler: growth plus what each collection freed; Buffer contents are not on
 * that heap), and the ratios of pqmcp (and base) to ws:
 * ws/pqmcp is pqmcp's throughput over ws's when CPU (or wall time) bounds the calls, the
 * figure issue 12's `tools/call` rows ask to be >= 0.9.
 *
 * --time-aead also times the pqmcp variant's AEAD calls where they run (wall µs inside
 * seal/sealFramed/open per tools/call, and how many calls), against the copying noaead.
 *
 *   npm run bench:mcp [-- --calls 1000 --rounds 7 --only pqmcp,ws --payloads 100
 *                         --modes seq --base /tmp/pqmcp-main]
 *   node --cpu-prof --import tsx benchmarks/mcp-cpu.ts --only pqmcp   (profile one variant)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { GCProfiler, getHeapStatistics } from 'node:v8';
import { pathToFileURL } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { echoCalls, makeEchoServer } from './lib/mcp-echo.js';
import { Suite } from '../src/wire/messages.js';
import { rotate } from './lib/stats.js';
import { WsMcpTransport } from './lib/ws-mcp-transport.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : undefined);
const calls = Number(opt('calls')) || 1000;
const rounds = Number(opt('rounds')) || 7;
const base = opt('base');
type Variant = 'pqmcp' | 'ws' | 'base' | 'noaead' | 'chacha';
const variants = (opt('only')?.split(',') as Variant[] | undefined) ?? (base ? ['pqmcp', 'base', 'ws'] : ['pqmcp', 'ws']);
const payloads = (opt('payloads') ?? '100,10240').split(',').map(Number);
const modes = (opt('modes') ?? 'seq,par32').split(',') as Array<'seq' | 'par32'>;

interface Rig {
  client: Client;
  close(): Promise<void>;
}

/** pqmcp from the checkout at `root` (its own modules: fixtures, backend, transports). */
async function pqmcpRig(root: string, noAead = false, suites?: number[]): Promise<Rig> {
  const load = (path: string): Promise<any> => import(pathToFileURL(`${root}/${path}`).href);
  const [{ selectBackend }, { PqmcpClientTransport }, { serveMcp }, fx] = await Promise.all([load('src/crypto/select.ts'), load('src/transport/client.ts'), load('src/transport/server.ts'), load('benchmarks/lib/fixtures.ts')]);
  const fixture = fx.makePqmcpFixture();
  const native = selectBackend('native');
  const backend = noAead ? Object.assign(Object.create(native), { aead: () => copyingAead }) : timeAead && root === here ? Object.assign(Object.create(native), { aead: (algorithm: string, key: Uint8Array) => timed(native.aead(algorithm, key)) }) : native;
  const server = await serveMcp({ identity: fx.identityOf(fixture, 'server', backend), trust: fx.trustOf(fixture), backend, host: '127.0.0.1', port: 0 }, () => makeEchoServer());
  const client = new Client({ name: 'pqmcp-bench', version: '1.0.0' });
  const transport = new PqmcpClientTransport(`ws://127.0.0.1:${server.address().port}/`, { identity: fx.identityOf(fixture, 'client', backend), trust: fx.trustOf(fixture), backend, expectedServerId: fx.SERVER_AGENT_ID, ...(suites ? { suites } : {}) });
  await client.connect(transport as Transport);
  return { client, close: async () => { await client.close(); await server.close(); } };
}

/** With --time-aead: wall µs inside the pqmcp variant's AEAD calls (seal and open), per cell. */
const timeAead = args.includes('--time-aead');
const aeadTime = { us: 0, calls: 0 };
function timed(aead: any): any {
  const wrap = (fn: (...a: unknown[]) => unknown) => (...a: unknown[]) => {
    const t = performance.now();
    try {
      return fn.apply(aead, a);
    } finally {
      aeadTime.us += (performance.now() - t) * 1000;
      aeadTime.calls++;
    }
  };
  return { seal: wrap(aead.seal), sealFramed: wrap(aead.sealFramed), open: wrap(aead.open) };
}

/** No protection: `aad || plaintext || trailer || 16 zero bytes`, and back (the noaead variant). */
const copyingAead = {
  seal: (_nonce: Uint8Array, plaintext: Uint8Array): Uint8Array => {
    const out = new Uint8Array(plaintext.length + 16);
    out.set(plaintext, 0);
    return out;
  },
  sealFramed(_nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, trailer: Uint8Array): Uint8Array {
    const out = new Uint8Array(aad.length + plaintext.length + trailer.length + 16);
    out.set(aad, 0);
    out.set(plaintext, aad.length);
    out.set(trailer, aad.length + plaintext.length);
    return out;
  },
  open: (_nonce: Uint8Array, sealed: Uint8Array): Uint8Array => sealed.slice(0, sealed.length - 16),
};

/** The same SDK pair over plain ws, as the benchmark server's `mcp-ws` endpoint. */
async function wsRig(): Promise<Rig> {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  wss.on('connection', (ws: WebSocket) => {
    ws.on('error', () => {});
    void makeEchoServer().connect(new WsMcpTransport({ socket: ws }));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const client = new Client({ name: 'pqmcp-bench', version: '1.0.0' });
  await client.connect(new WsMcpTransport({ url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/` }));
  return {
    client,
    close: async () => {
      await client.close();
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

/** Milliseconds of garbage collection so far (the observer's entries arrive asynchronously: read between batches). */
let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

const threadCpu = (since?: NodeJS.CpuUsage): NodeJS.CpuUsage => ((process as { threadCpuUsage?: (s?: NodeJS.CpuUsage) => NodeJS.CpuUsage }).threadCpuUsage ?? process.cpuUsage)(since);

interface Sample {
  cpu: number;
  /** CPU of the main thread alone (Node 23.9+; else the process's). */
  main: number;
  wall: number;
  gc: number;
  /** Bytes allocated on V8's heap per call (Buffer and ArrayBuffer contents not counted). */
  heap: number;
}

/** CPU, wall and garbage-collection µs and heap bytes per call over `n` calls, `inFlight` at a time. */
async function measure(client: Client, text: string, n: number, inFlight: number): Promise<Sample> {
  await settle();
  const gc0 = gcMs;
  const profiler = new GCProfiler();
  profiler.start();
  const used0 = getHeapStatistics().used_heap_size;
  const t0 = performance.now();
  const start = process.cpuUsage();
  const mainStart = threadCpu();
  await echoCalls(client, text, n, inFlight);
  const used = process.cpuUsage(start);
  const mainUsed = threadCpu(mainStart);
  const wall = ((performance.now() - t0) * 1000) / n;
  const used1 = getHeapStatistics().used_heap_size;
  // Allocated = growth + what each collection freed.
  const freed = (profiler.stop()?.statistics ?? []).reduce((sum, g) => sum + g.beforeGC.heapStatistics.usedHeapSize - g.afterGC.heapStatistics.usedHeapSize, 0);
  await settle();
  return { cpu: (used.user + used.system) / n, main: (mainUsed.user + mainUsed.system) / n, wall, gc: ((gcMs - gc0) * 1000) / n, heap: (used1 - used0 + freed) / n };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** Lower quartile: load only ever adds time, so the faster batches show the code's own cost. */
const quartile = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 4)]!;

const here = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const rigs = new Map<Variant, Rig>();
for (const v of variants) rigs.set(v, v === 'ws' ? await wsRig() : await pqmcpRig(v === 'base' ? base! : here, v === 'noaead', v === 'chacha' ? [Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256] : undefined));
const cells = payloads.flatMap((p) => modes.map((m) => ({ p, m, n: m === 'seq' ? 1 : 32, text: 'x'.repeat(p) })));
const callsFor = (p: number): number => (p > 1000 ? Math.max(100, Math.round(calls / 2)) : calls);
for (const v of variants) for (const c of cells) await measure(rigs.get(v)!.client, c.text, callsFor(c.p), c.n); // warm up
const samples = new Map<string, Sample[]>();
const loads: number[] = [];
/** Per cell and round: µs spent in the AEAD and AEAD calls, per tools/call (--time-aead). */
const aeadIn = new Map<string, Array<{ us: number; calls: number }>>();
for (let r = 0; r < rounds; r++) {
  loads.push(loadavg()[0]!);
  for (const [ci, c] of cells.entries()) {
    for (const v of rotate(variants, r + ci)) {
      const key = `${c.p}|${c.m}|${v}`;
      const before = { ...aeadTime };
      samples.set(key, [...(samples.get(key) ?? []), await measure(rigs.get(v)!.client, c.text, callsFor(c.p), c.n)]);
      if (v === 'pqmcp' && timeAead) aeadIn.set(`${c.p}|${c.m}`, [...(aeadIn.get(`${c.p}|${c.m}`) ?? []), { us: (aeadTime.us - before.us) / callsFor(c.p), calls: (aeadTime.calls - before.calls) / callsFor(c.p) }]);
    }
  }
}
loads.push(loadavg()[0]!);
for (const rig of rigs.values()) await rig.close();

console.log(`MCP tools/call, client + server in one process, µs per call, ${calls} calls (10 KiB: ${callsFor(10240)}) x ${rounds} rounds, Node ${process.version}, load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`);
for (const c of cells) {
  console.log(`  ${c.p === 100 ? '100 B' : `${c.p / 1024} KiB`} ${c.m === 'seq' ? 'sequential' : '32 in flight'}`);
  const ws = samples.get(`${c.p}|${c.m}|ws`);
  for (const v of variants) {
    const xs = samples.get(`${c.p}|${c.m}|${v}`)!;
    const cpu = xs.map((x) => x.cpu);
    const wall = xs.map((x) => x.wall);
    let ratio = '';
    if (ws && v !== 'ws') {
      const wc = ws.map((x) => x.cpu);
      const ww = ws.map((x) => x.wall);
      ratio = `  ws/${v}: cpu ${(median(wc) / median(cpu)).toFixed(2)} (q1 ${(quartile(wc) / quartile(cpu)).toFixed(2)}), wall ${(median(ww) / median(wall)).toFixed(2)} (q1 ${(quartile(ww) / quartile(wall)).toFixed(2)})`;
    }
    const gc = xs.reduce((sum, x) => sum + x.gc, 0) / xs.length;
    const heap = median(xs.map((x) => x.heap));
    const main = median(xs.map((x) => x.main));
    const inAead = v === 'pqmcp' ? aeadIn.get(`${c.p}|${c.m}`) : undefined;
    if (inAead) console.log(`    (pqmcp inside the AEAD: ${median(inAead.map((x) => x.us)).toFixed(1)} µs per call (q1 ${quartile(inAead.map((x) => x.us)).toFixed(1)}), ${median(inAead.map((x) => x.calls)).toFixed(2)} AEAD calls per call)`);
    console.log(`    ${v.padEnd(6)} cpu ${median(cpu).toFixed(1).padStart(6)} (q1 ${quartile(cpu).toFixed(1).padStart(6)}, min ${Math.min(...cpu).toFixed(1).padStart(6)}; main thread ${main.toFixed(1).padStart(6)})  wall ${median(wall).toFixed(1).padStart(6)} (q1 ${quartile(wall).toFixed(1).padStart(6)})  gc ${gc.toFixed(1).padStart(5)}  heap ${(heap / 1024).toFixed(1).padStart(5)} KiB${ratio}`);
  }
}
