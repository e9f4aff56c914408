/**
 * What the listener's event loop spends per connection a churning flood opens (idle-16,
 * silence, slowloris...): the server's main-thread CPU (schedstat, ns on a CPU) during a
 * flood phase, less the same thread's CPU over an equal quiet phase, divided by the
 * connections the flooder opened in it. No honest agent runs, so the figure is the flood's
 * alone. Phases of `--seconds` (after the scenario's warm-up), the flood stopped and its
 * closes settled before the phase ends.
 *
 *   npx tsx benchmarks/flood-churn.ts --floods idle-16,silence,slowloris --rounds 3 [--cpu-prof DIR]
 *   npx tsx benchmarks/flood-churn.ts --roots A=/tmp/base,B=. --rounds 4    (code A/B: server.ts of each tree)
 *   npx tsx benchmarks/flood-churn.ts --paced 400 [--paced-kind silence|replay] --floods idle-16 ...
 *
 * With --roots, each name's server process runs benchmarks/server.ts of that tree (its own
 * src/), and the rounds interleave them (the order turns each round), so two versions of
 * the listener meet the same drifting load. A diagnostic (docs/benchmarks.md, "Floods"),
 * not a suite. Loopback only; Linux (schedstat).
 */
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makePqmcpFixture } from './lib/fixtures.js';
import { startServer, type ServerProcess, type SuiteContext } from './lib/context.js';
import { spawnWorker, type Worker } from './lib/proc.js';
import { loopbackSources } from './lib/floods.js';
import { median } from './lib/stats.js';
import { SCENARIOS, floodHellos } from './suites/flood.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
};
const floods = arg('floods', 'idle-16,silence,slowloris').split(',').map((name) => {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s || s.kind === 'keyupdate' || s.kind === 'partial') throw new Error(`unknown or authenticated flood ${name}`);
  return s;
});
const rounds = Number(arg('rounds', '3'));
const seconds = Number(arg('seconds', '3'));
const profDir = arg('cpu-prof', '');
const options = JSON.parse(arg('options', '{}')) as Record<string, unknown>;
const here = fileURLToPath(new URL('.', import.meta.url));
const roots = arg('roots', `this=${resolve(here, '..')}`)
  .split(',')
  .map((kv) => {
    const [name, root] = kv.split('=') as [string, string];
    return { name, root: resolve(root) };
  });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** --paced N: instead of the flooder, this process opens N raw connections a second (below). */
const paced = Number(arg('paced', '0'));
const pacedKind = arg('paced-kind', 'idle');

/**
 * The paced driver: raw TCP connections from 32 loopback sources at `perSecond`, each
 * sending a WebSocket upgrade request (and, for 'silence' and 'replay', a masked frame
 * holding a ClientHello), then nothing. 'idle' and 'silence' are destroyed as soon as the
 * server closes them (a close frame: the eviction's alert and close, or a timeout's);
 * 'replay' as soon as the server answers its ClientHello (the flooder's replay). At 15 a
 * second per source nothing is past the connection or accept rate, and every connection
 * meets the same fate (idle, silence: upgraded, pending, evicted by a newer one once 64 are
 * pending; replay: answered, then dropped), so the CPU per connection does not depend on
 * how fast the server frees slots, as the flooder's mix of fates does.
 */
async function pacedChurn(url: string, hello: Buffer, ms: number): Promise<number> {
  const { port } = new URL(url);
  const sources = loopbackSources(32, 50);
  const request = Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: pqmcp.v1\r\n\r\n`);
  // A client frame must be masked: mask key 0 leaves the payload as it is.
  const frame = Buffer.concat([Buffer.from([0x82, 0x80 | 126, hello.length >> 8, hello.length & 0xff, 0, 0, 0, 0]), hello]);
  const first = pacedKind === 'idle' ? request : Buffer.concat([request, frame]);
  const { connect } = await import('node:net');
  let opened = 0;
  const sockets = new Set<import('node:net').Socket>();
  const t0 = performance.now();
  await new Promise<void>((done) => {
    const tick = setInterval(() => {
      const due = Math.min(Math.floor(((performance.now() - t0) / 1000) * paced), Math.floor((ms / 1000) * paced));
      for (; opened < due; opened++) {
        const socket = connect({ host: '127.0.0.1', port: Number(port), localAddress: sources[opened % sources.length]! });
        sockets.add(socket);
        let seen = Buffer.alloc(0);
        socket.on('connect', () => socket.write(first));
        socket.on('data', (d: Buffer) => {
          seen = Buffer.concat([seen, d]);
          const end = seen.indexOf('\r\n\r\n');
          if (!seen.subarray(0, 12).toString().includes('101')) return void socket.destroy();
          if (end < 0) return;
          // The server's (unmasked) frames after the 101: replay drops the connection at the
          // first, idle and silence at a close frame.
          for (let at = end + 4; at + 2 <= seen.length; ) {
            if (pacedKind === 'replay' || (seen[at]! & 0x0f) === 0x8) return void socket.destroy();
            const len7 = seen[at + 1]! & 0x7f;
            const head = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
            if (at + head > seen.length) return;
            const len = len7 === 126 ? seen.readUInt16BE(at + 2) : len7 === 127 ? Number(seen.readBigUInt64BE(at + 2)) : len7;
            at += head + len;
          }
        });
        socket.on('error', () => {});
        socket.on('close', () => sockets.delete(socket));
      }
      if (performance.now() - t0 >= ms) {
        clearInterval(tick);
        done();
      }
    }, 5);
  });
  for (const s of sockets) s.destroy();
  return opened;
}

interface Side {
  name: string;
  server: ServerProcess;
  worker: Worker;
  url: string;
  hellos: Buffer[];
  /** Per flood: µs of main-thread CPU per connection, each round. */
  perConn: Record<string, number[]>;
  opened: Record<string, number[]>;
  quietUsPerS: number[];
}

const ctx: SuiteContext = { mode: 'full', fixture: makePqmcpFixture() };
const flooder = await spawnWorker('flooder.ts');
const sides: Side[] = [];
/** The main thread's ns on a CPU over `ms` of whatever `during` does; the handshakes the crypto pool refused meanwhile (a cheaper fate). */
let lastRefused = 0;
async function mainThreadNs(worker: Worker, during: () => Promise<void>): Promise<number> {
  await worker.request('probeStart');
  await during();
  const s = await worker.request<{ sched: number[]; refused: number }>('probeStop');
  lastRefused = s.refused;
  return s.sched[0]!;
}
try {
  for (const { name, root } of roots) {
    const server = await startServer(ctx, ['mcp-pqmcp-edge'], { edgeOptions: options, root, ...(profDir ? { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval', '100'] } : {}) });
    const url = `ws://127.0.0.1:${server.ports['mcp-pqmcp-edge']}/`;
    sides.push({ name, server, worker: server.worker, url, hellos: floodHellos(ctx, url), perConn: {}, opened: {}, quietUsPerS: [] });
  }
  // The quiet main thread (timers, the IPC channel): once per side, before the rounds.
  for (const side of sides) side.quietUsPerS.push((await mainThreadNs(side.worker, () => sleep(2000))) / 1000 / 2);
  const load0 = loadavg()[0]!;
  const loads: string[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const scenario of floods) {
      for (const side of sides.map((_, i) => sides[(i + round) % sides.length]!)) {
        const phaseMs = scenario.warmupMs + seconds * 1000 + 700;
        let opened = 0;
        const busy = await mainThreadNs(side.worker, async () => {
          if (paced > 0) opened = await pacedChurn(side.url, side.hellos[0]!, scenario.warmupMs + seconds * 1000);
          else {
            await flooder.request('start', { url: side.url, kind: scenario.kind, sources: loopbackSources(scenario.sources), connections: scenario.connections, hellos: side.hellos, maxOpened: 50_000 });
            await sleep(scenario.warmupMs + seconds * 1000);
            opened = (await flooder.request<{ opened: number }>('stop')).opened;
          }
          await sleep(700);
        });
        const us = (busy / 1000 - median(side.quietUsPerS) * (phaseMs / 1000)) / opened;
        (side.perConn[scenario.name] ??= []).push(us);
        (side.opened[scenario.name] ??= []).push(opened);
        console.error(`round ${round} ${side.name} ${scenario.name}: ${opened} connections, main thread ${(busy / 1e6).toFixed(0)} ms, ${us.toFixed(1)} us/connection, ${lastRefused} refused by the crypto pool, load ${loadavg()[0]!.toFixed(1)}`);
        loads.push(loadavg()[0]!.toFixed(1));
        await sleep(300);
      }
    }
  }
  if (paced > 0) console.log(`paced driver: ${paced} ${pacedKind} connections a second from 32 sources (the flood's name only sets the phase length)`);
  console.log(`flood-churn ${floods.map((s) => s.name).join(',')}, ${rounds} rounds of ${seconds} s, ${process.version}, load average ${load0.toFixed(1)}-${loadavg()[0]!.toFixed(1)} (per phase ${loads.join(' ')})`);
  for (const s of sides) {
    const cells = floods.map((f) => `${f.name} ${median(s.perConn[f.name]!).toFixed(1)} us/conn (rounds ${s.perConn[f.name]!.map((x) => x.toFixed(1)).join(' ')}; ${median(s.opened[f.name]!)} conns/phase)`);
    console.log(`${s.name}: ${cells.join('; ')}; quiet main thread ${median(s.quietUsPerS).toFixed(0)} us/s`);
  }
  // Paired: each later side against the first, round by round (the two ran next to each other).
  for (const s of sides.slice(1)) {
    const base = sides[0]!;
    const cells = floods.map((f) => {
      const ratios = s.perConn[f.name]!.map((x, i) => x / base.perConn[f.name]![i]!);
      return `${f.name} median ${median(ratios).toFixed(3)} (rounds ${ratios.map((r) => r.toFixed(2)).join(' ')}; lower in ${ratios.filter((r) => r < 1).length} of ${ratios.length})`;
    });
    console.log(`${s.name} / ${base.name} per connection, paired by round: ${cells.join('; ')}`);
  }
} finally {
  for (const s of sides) await s.server.stop();
  await flooder.kill();
}
