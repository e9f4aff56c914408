/**
 * CPU per MB of one-way streaming, per side, pqmcp against plain ws (printed, not
 * asserted): where the throughput suite's bulk and streaming rows spend their time. Each
 * variant is two processes, a server and a client (`bulk-side.ts`), on the suite's paths
 * (the client end is `lib/channels.ts`, the server end is wired as `server.ts` wires it),
 * measured in interleaved rounds (order rotated every round). Per cell and side: process
 * CPU µs per MB (10^6 bytes of message), the main thread's share, garbage-collection ms per
 * MB and collections per MB by kind (minor / major).
 *
 *   pqmcp   this tree
 *   base    (with --base DIR) pqmcp from another checkout (`git archive main | tar -x -C
 *           DIR`, node_modules linked): an A/B of a change, interleaved in the same run
 *   ws      plain ws, binary frames
 *
 *   npm run bench:bulk -- [--sizes 4096,65536,1048576] [--dirs s2c,c2s]
 *        [--mb 32] [--rounds 5] [--only pqmcp,ws] [--base /tmp/pqmcp-main]
 *        [--prof DIR]   every side process writes a --cpu-prof profile into DIR
 *
 * s2c: the server sends, the client receives; c2s the reverse. Senders await each send()
 * (8 MiB high-water mark), as the suite's do.
 */
import { loadavg } from 'node:os';
import { spawnWorker } from './lib/proc.js';
import type { Worker } from './lib/proc.js';
import { makePqmcpFixture } from './lib/fixtures.js';
import { rotate } from './lib/stats.js';
import type { Counters } from './bulk-side.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : undefined);
const sizes = (opt('sizes') ?? '4096,65536,1048576').split(',').map(Number);
const dirs = (opt('dirs') ?? 's2c,c2s').split(',') as Array<'s2c' | 'c2s'>;
const mb = Number(opt('mb')) || 32;
const rounds = Number(opt('rounds')) || 5;
const base = opt('base');
const prof = opt('prof');
type Variant = 'pqmcp' | 'base' | 'ws';
const variants = (opt('only')?.split(',') as Variant[] | undefined) ?? (base ? ['pqmcp', 'base', 'ws'] : ['pqmcp', 'ws']);
const here = new URL('..', import.meta.url).pathname.replace(/\/$/, '');

interface Pair {
  server: Worker;
  client: Worker;
}

const fixture = makePqmcpFixture();
const pairs = new Map<Variant, Pair>();
for (const v of variants) {
  const nodeFlags = prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [];
  const [server, client] = await Promise.all([spawnWorker('bulk-side.ts', { nodeFlags }), spawnWorker('bulk-side.ts', { nodeFlags })]);
  const root = v === 'base' ? base! : here;
  const variant = v === 'ws' ? 'ws' : 'pqmcp';
  const port = await server.request<number>('listen', { root, variant, fixture });
  await client.request('connect', { root, variant, fixture, port });
  pairs.set(v, { server, client });
  if (prof) console.log(`${v}: server pid ${server.pid}, client pid ${client.pid}`);
}

interface Side {
  cpu: number;
  main: number;
  gc: number;
  minor: number;
  major: number;
}

const perMB = (a: Counters, b: Counters, n: number): Side => ({
  cpu: (b.cpu - a.cpu) / n,
  main: (b.main - a.main) / n,
  gc: ((b.gcMs - a.gcMs) * 1000) / n,
  minor: ((b.gcs[1] ?? 0) - (a.gcs[1] ?? 0)) / n,
  major: ((b.gcs[4] ?? 0) - (a.gcs[4] ?? 0)) / n,
});

async function measure(pair: Pair, dir: 's2c' | 'c2s', size: number, count: number): Promise<{ sender: Side; receiver: Side; mbps: number }> {
  const [snd, rcv] = dir === 's2c' ? [pair.server, pair.client] : [pair.client, pair.server];
  const r0 = await rcv.request<Counters>('arm', { count });
  const s0 = await snd.request<Counters>('mark');
  const t0 = performance.now();
  const last = rcv.request<Counters>('wait');
  await snd.request('send', { size, count });
  const r1 = await last;
  const t1 = performance.now();
  const s1 = await snd.request<Counters>('mark');
  const n = (size * count) / 1e6;
  return { sender: perMB(s0, s1, n), receiver: perMB(r0, r1, n), mbps: n / ((t1 - t0) / 1000) };
}

const countFor = (size: number): number => Math.max(8, Math.round((mb * 1e6) / size));
// Warm-up: every cell once per variant.
for (const v of variants) for (const size of sizes) for (const d of dirs) await measure(pairs.get(v)!, d, size, Math.ceil(countFor(size) / 4));

const samples = new Map<string, Array<{ sender: Side; receiver: Side; mbps: number }>>();
const loads: number[] = [];
const cells = sizes.flatMap((size) => dirs.map((dir) => ({ size, dir })));
for (let r = 0; r < rounds; r++) {
  loads.push(loadavg()[0]!);
  for (const [ci, c] of cells.entries()) {
    for (const v of rotate(variants, r + ci)) {
      const key = `${c.size}|${c.dir}|${v}`;
      samples.set(key, [...(samples.get(key) ?? []), await measure(pairs.get(v)!, c.dir, c.size, countFor(c.size))]);
    }
  }
}
loads.push(loadavg()[0]!);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quartile = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 4)]!;
const f0 = (x: number): string => x.toFixed(0);
const f2 = (x: number): string => x.toFixed(2);

console.log(`node ${process.version}, ${rounds} rounds of ${mb} MB per cell, load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`);
console.log('CPU µs per MB: median (lower quartile); main thread median; GC µs/MB median; minor/major GCs per MB; MB/s median');
for (const c of cells) {
  console.log(`\n${c.size} B ${c.dir}`);
  const ref = samples.get(`${c.size}|${c.dir}|ws`);
  for (const v of variants) {
    const s = samples.get(`${c.size}|${c.dir}|${v}`)!;
    const side = (k: 'sender' | 'receiver'): string => {
      const xs = s.map((x) => x[k]);
      const cpu = median(xs.map((x) => x.cpu));
      const ratio = ref && v !== 'ws' ? ` ws/this ${f2(median(ref.map((x) => x[k].cpu)) / cpu)}x` : '';
      return `${k} ${f0(cpu)} (${f0(quartile(xs.map((x) => x.cpu)))}) main ${f0(median(xs.map((x) => x.main)))} gc ${f0(median(xs.map((x) => x.gc)))} gcs ${f2(median(xs.map((x) => x.minor)))}/${f2(median(xs.map((x) => x.major)))}${ratio}`;
    };
    console.log(`  ${v.padEnd(6)} ${side('sender')} | ${side('receiver')} | ${f0(median(s.map((x) => x.mbps)))} MB/s`);
  }
}
for (const p of pairs.values()) await Promise.all([p.server.kill(), p.client.kill()]);
