/**
 * The handshake crypto pool: real worker threads compute what the inline path computes;
 * the per-source rate and the bounded fair queue refuse with ServerBusyError before any
 * work; a handshake's signature is never refused; close() rejects what waits.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { getPriority } from 'node:os';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createNativeBackend } from '../../src/crypto/native.js';
import { compositeKeygen, compositeVerify } from '../../src/crypto/composite.js';
import { createNobleBackend } from '../../src/crypto/noble.js';
import { ClosedError, InternalError, InvalidArgumentError, InvalidKeyError, ServerBusyError } from '../../src/errors.js';
import type { CryptoRequest, CryptoResult } from '../../src/handshake/types.js';
import { CryptoPool, GUARD_LINGER_MS, INLINE_QUIET_MS } from '../../src/transport/crypto-pool.js';
import { RESTARTS, RESTART_STABLE_MS } from '../../src/transport/crypto-restart.js';
import { startWorker, threadRunner, ThreadLostError, type Runner } from '../../src/transport/crypto-threads.js';
import { agent } from '../helpers/identities.js';
import type { CryptoPoolStats, TestThread } from '../../src/transport/crypto-pool.js';
import type { PqmcpServer } from '../../src/transport/server.js';
import { Cleanup, connectClient, startFeatureServer, waitFor } from '../helpers/mcp.js';

const backend = createNativeBackend();
const key = () => agent('agent://pqmcp-test/pool').keyPair;
let publicKey: Uint8Array;
const pools: CryptoPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});
beforeAll(() => {
  publicKey = backend.xwing.keygen(new Uint8Array(32).fill(7)).publicKey;
});

async function pool(options: Partial<Parameters<typeof CryptoPool.start>[3]> & { workers?: number } = {}): Promise<CryptoPool> {
  const p = await CryptoPool.start(backend, 'native', key(), { workers: 0, maxQueue: 64, ratePerSource: 0, ...options });
  pools.push(p);
  return p;
}

/** This process's threads, by thread id: fields of /proc/self/task/<tid>/stat after "pid (comm)": [16] nice, [38] policy (0 normal, 5 SCHED_IDLE). */
const threads = (): Map<string, { nice: number; policy: number }> =>
  new Map(
    readdirSync('/proc/self/task').flatMap((tid) => {
      try {
        const f = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
        return [[tid, { nice: Number(fields[16]), policy: Number(fields[38]) }] as const];
      } catch {
        return []; // a thread that exited between the listing and the read
      }
    }),
  );

const encapsulate = (): CryptoRequest => ({ op: 'encapsulate', publicKey });
const sign = (text: string): CryptoRequest => ({ op: 'sign', message: new TextEncoder().encode(text), context: new TextEncoder().encode('ctx') });

describe('CryptoPool', () => {
  it('worker threads sign and encapsulate exactly as the inline path (same randomness, same bytes)', async () => {
    const threaded = await pool({ workers: 2 });
    const inline = await pool({ workers: 0 });
    expect(threaded.stats.threads).toBe(2);
    expect(inline.stats.threads).toBe(0);
    const fixed: CryptoRequest = { op: 'encapsulate', publicKey, randomness: new Uint8Array(64).fill(3) };
    const [a, b] = (await Promise.all([threaded.run('s', fixed), inline.run('s', fixed)])) as Extract<CryptoResult, { op: 'encapsulate' }>[];
    expect(Buffer.from(a!.ciphertext)).toEqual(Buffer.from(b!.ciphertext));
    expect(Buffer.from(a!.sharedSecret)).toEqual(Buffer.from(b!.sharedSecret));
    const sig = (await threaded.run('s', sign('transcript'))) as Extract<CryptoResult, { op: 'sign' }>;
    expect(compositeVerify(backend, key().publicKey, new TextEncoder().encode('transcript'), sig.signature, new TextEncoder().encode('ctx'))).toBe(true);
  });

  it('a worker error comes back typed (a low-order X25519 share is InvalidKeyError)', async () => {
    const threaded = await pool({ workers: 1 });
    const bad = publicKey.slice();
    bad.fill(0, bad.length - 32); // X25519 part all zero: low order
    await expect(threaded.run('s', { op: 'encapsulate', publicKey: bad })).rejects.toBeInstanceOf(InvalidKeyError);
    // The worker is still there and serves the next job.
    await expect(threaded.run('s', encapsulate())).resolves.toMatchObject({ op: 'encapsulate' });
    expect(threaded.stats.threads).toBe(1);
  });

  it('per-source rate: over it a new handshake is refused busy at once; other sources and signatures are not', async () => {
    let now = 0;
    const p = await pool({ ratePerSource: 2, now: () => now });
    await p.run('X', encapsulate());
    await p.run('X', encapsulate());
    await expect(p.run('X', encapsulate())).rejects.toBeInstanceOf(ServerBusyError);
    await expect(p.run('Y', encapsulate())).resolves.toMatchObject({ op: 'encapsulate' });
    await expect(p.run('X', sign('still signed'))).resolves.toMatchObject({ op: 'sign' });
    now += 500; // half a second: one token back
    await expect(p.run('X', encapsulate())).resolves.toMatchObject({ op: 'encapsulate' });
    const refused = await p.run('X', encapsulate()).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ServerBusyError);
    // A routine flood end: no stack trace built (stackless.ts), only its type and message.
    expect((refused as Error).stack).toBe(`ServerBusyError: ${(refused as Error).message}`);
    expect(p.stats.refused).toBe(2);
  });

  it('a full queue refuses the busiest source, not a newcomer from another; service is round-robin', async () => {
    const p = await pool({ maxQueue: 4 });
    const order: string[] = [];
    const run = (source: string) =>
      p.run(source, encapsulate()).then(
        () => void order.push(source),
        (e: unknown) => void order.push(`${source}:${e instanceof ServerBusyError ? 'busy' : 'other'}`),
      );
    // One inline runner: the first job runs, the rest wait (4 at most).
    const flood = Array.from({ length: 6 }, () => run('X'));
    const honest = run('H');
    await Promise.all([...flood, honest]);
    expect(order.filter((o) => o === 'X:busy')).toHaveLength(2);
    expect(order).toContain('H');
    // H was served right after the job running when it arrived and the next X in the round.
    expect(order.filter((o) => !o.endsWith(':busy')).indexOf('H')).toBeLessThanOrEqual(2);
  });

  it('least served first: a source with a few handshakes goes ahead of every flooding source, however many; flooding sources take turns', async () => {
    let now = 0;
    const p = await pool({ now: () => now });
    const order: string[] = [];
    const run = (source: string) => p.run(source, encapsulate()).then(() => void order.push(source));
    const flooders = ['A', 'B', 'C', 'D', 'E', 'F'];
    // The flooders have been served 3 each in this second; the honest source H twice (it is
    // not quiet: it started handshakes a moment ago).
    await Promise.all(flooders.flatMap((s) => [run(s), run(s), run(s)]));
    await run('H');
    await run('H');
    now += 100;
    order.length = 0;
    const flood = flooders.flatMap((s) => [run(s), run(s)]);
    const honest = run('H');
    await Promise.all([...flood, honest]);
    // Only the job already running when H arrived went before it.
    expect(order.indexOf('H')).toBe(1);
    // Then the flooders in turns: each of the six once before any twice.
    expect(new Set(order.slice(0, 7).filter((s) => s !== 'H')).size).toBe(6);
  });

  it('signatures of admitted handshakes: the source served least lately first', async () => {
    let now = 0;
    const p = await pool({ now: () => now });
    const order: string[] = [];
    await Promise.all(['A', 'A', 'A', 'H'].map((s) => p.run(s, encapsulate())));
    now += 10;
    const signs = [...['A', 'A', 'A'].map((s, i) => p.run(s, sign(`a${i}`)).then(() => void order.push(s))), p.run('H', sign('h')).then(() => void order.push('H'))];
    await Promise.all(signs);
    expect(order).toEqual(['A', 'H', 'A', 'A']); // the first was running when the others came
  });

  it.runIf(process.platform === 'linux')('a worker thread runs nicer than the event loop (Linux: nice is per thread); the process is left alone', async () => {
    // /proc/self/task/<tid>/stat: the nice value is field 19 (the 17th after "pid (comm)").
    const nices = (): Map<string, number> =>
      new Map(
        readdirSync('/proc/self/task').map((tid) => {
          const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
          return [tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
        }),
      );
    const main = nices().get(String(process.pid))!;
    const before = nices();
    const threaded = await pool({ workers: 1, workerPriority: 'low' });
    await threaded.run('s', encapsulate());
    const after = nices();
    const added = [...after].filter(([tid]) => !before.has(tid)).map(([, nice]) => nice);
    expect(added).toContain(Math.min(19, main + 10));
    expect(after.get(String(process.pid))).toBe(main);
  });

  // Field 41 of /proc/<pid>/task/<tid>/stat is the scheduling policy (0 normal, 5 SCHED_IDLE).
  const policies = (): Map<string, number> =>
    new Map(
      readdirSync('/proc/self/task').map((tid) => {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        return [tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[38])];
      }),
    );
  const chrt = ['/usr/bin/chrt', '/bin/chrt', '/usr/sbin/chrt', '/sbin/chrt'].some((path) => existsSync(path));

  it.runIf(process.platform === 'linux' && chrt)("workerPriority 'idle': each worker thread is SCHED_IDLE, the event loop keeps the normal policy; 'low' leaves the policy normal", async () => {
    const before = policies();
    const idle = await pool({ workers: 2, workerPriority: 'idle' });
    await idle.run('s', encapsulate());
    const during = policies();
    const added = [...during].filter(([tid]) => !before.has(tid)).map(([, policy]) => policy);
    expect(added.filter((policy) => policy === 5)).toHaveLength(2);
    expect(during.get(String(process.pid))).toBe(0);
    await idle.close();
    const beforeLow = policies();
    const low = await pool({ workers: 1, workerPriority: 'low' });
    await low.run('s', encapsulate());
    const addedLow = [...policies()].filter(([tid]) => !beforeLow.has(tid)).map(([, policy]) => policy);
    expect(addedLow.length).toBeGreaterThan(0);
    expect(addedLow.every((policy) => policy === 0)).toBe(true);
  });

  it('close() rejects waiting jobs with ClosedError and refuses new ones', async () => {
    const p = await pool();
    const jobs = Array.from({ length: 3 }, () => p.run('X', encapsulate()).catch((e: unknown) => e));
    await p.close();
    const results = await Promise.all(jobs);
    expect(results.some((r) => r instanceof ClosedError)).toBe(true);
    await expect(p.run('X', encapsulate())).rejects.toBeInstanceOf(ClosedError);
  });

  // --- speed (issue 12): inlineWhenIdle ---
  const nativePq = backend.report.mlkem === 'native' && backend.report.mldsa === 'native';

  it.runIf(nativePq)('inlineWhenIdle: while no worker is busy and nothing waits, a job runs on the event loop, within its budget per second', async () => {
    let now = 0;
    const p = await pool({ workers: 1, inlineWhenIdle: 2, now: () => now });
    const text = new TextEncoder();
    // One at a time (the pool idle each time): the first two on the event loop, the third
    // (budget spent) on the worker; every result is right wherever it was computed.
    for (const i of [0, 1, 2]) {
      const sig = (await p.run('s', sign(`m${i}`))) as Extract<CryptoResult, { op: 'sign' }>;
      expect(compositeVerify(backend, key().publicKey, text.encode(`m${i}`), sig.signature, text.encode('ctx'))).toBe(true);
      expect(p.stats.inlined).toBe(Math.min(i + 1, 2));
    }
    now += 500; // one token back
    await expect(p.run('s', encapsulate())).resolves.toMatchObject({ op: 'encapsulate' });
    expect(p.stats.inlined).toBe(3);
    now += 10_000; // full again (a burst of one second's worth)
    // Three at once: the first on the event loop, the second on the worker (the pool is no
    // longer idle), the third waits (dispatch happens inside run(), so the counts are exact).
    const a = p.run('a', encapsulate());
    const b = p.run('b', encapsulate());
    expect(p.stats.inlined).toBe(4);
    const c = p.run('c', encapsulate());
    expect(p.stats).toMatchObject({ inlined: 4, queued: 1, threads: 1 });
    await expect(Promise.all([a, b, c])).resolves.toHaveLength(3);
  });

  it.runIf(nativePq)('inlineWhenIdle: once a job found the pool busy, or was refused, nothing is inlined for INLINE_QUIET_MS (a flood\'s idle moments stay on the workers)', async () => {
    let now = 0;
    const p = await pool({ workers: 1, inlineWhenIdle: 100, ratePerSource: 1, now: () => now });
    await p.run('a', encapsulate());
    expect(p.stats.inlined).toBe(1);
    // Two at once: the second finds the first on the event loop (busy).
    await Promise.all([p.run('b', encapsulate()), p.run('c', encapsulate())]);
    expect(p.stats.inlined).toBe(2);
    // The pool is idle again and has budget, but it was busy a moment ago: the worker serves.
    now += INLINE_QUIET_MS - 1;
    await p.run('d', encapsulate());
    expect(p.stats.inlined).toBe(2);
    // A quiet second after the last pressure (job 'd' found the pool idle), inline again.
    now += 1;
    await p.run('e', encapsulate());
    expect(p.stats.inlined).toBe(3);
    // A refusal ('e' again at once, past its rate of one a second) is pressure too.
    await expect(p.run('e', encapsulate())).rejects.toBeInstanceOf(ServerBusyError);
    now += INLINE_QUIET_MS - 1;
    await p.run('f', encapsulate());
    expect(p.stats.inlined).toBe(3);
    now += 1;
    await p.run('g', encapsulate());
    expect(p.stats).toMatchObject({ inlined: 4, refused: 1 });
  });

  it.runIf(nativePq)('inlineWhenIdle: an error on the event loop comes back typed, like a worker\'s; nothing is inlined without worker threads or budget', async () => {
    const p = await pool({ workers: 1, inlineWhenIdle: 10 });
    const bad = publicKey.slice();
    bad.fill(0, bad.length - 32); // X25519 part all zero: low order
    await expect(p.run('s', { op: 'encapsulate', publicKey: bad })).rejects.toBeInstanceOf(InvalidKeyError);
    expect(p.stats.inlined).toBe(1);
    await expect(p.run('s', encapsulate())).resolves.toMatchObject({ op: 'encapsulate' });
    expect(p.stats.inlined).toBe(2);
    const inlineOnly = await pool({ workers: 0, inlineWhenIdle: 10 });
    await inlineOnly.run('s', encapsulate());
    expect(inlineOnly.stats.inlined).toBe(0); // workers: 0 is inline anyway, not counted
    const off = await pool({ workers: 1 });
    await off.run('s', encapsulate());
    expect(off.stats.inlined).toBe(0); // default 0: always the worker
  });

  it.runIf(nativePq)('a listener serves an idle handshake\'s encapsulation and signature on the event loop by default (inlineCryptoPerSecond 100); 0 keeps them on the workers', async () => {
    const cleanup = new Cleanup();
    try {
      // The listener's crypto pool is internal: read its counters through the edge.
      const stats = (server: PqmcpServer): CryptoPoolStats => (server as unknown as { edge: { cryptoStats: CryptoPoolStats } }).edge.cryptoStats;
      const byDefault = await startFeatureServer(cleanup, { cryptoWorkers: 1 });
      const off = await startFeatureServer(cleanup, { cryptoWorkers: 1, inlineCryptoPerSecond: 0 });
      for (const { url } of [byDefault, off]) await connectClient(cleanup, url, { backend: 'native' });
      expect(stats(byDefault.server)).toMatchObject({ threads: 1, inlined: 2 });
      expect(stats(off.server)).toMatchObject({ threads: 1, inlined: 0 });
      await expect(startFeatureServer(cleanup, { inlineCryptoPerSecond: -1 })).rejects.toThrow(InvalidArgumentError);
    } finally {
      await cleanup.run();
    }
  });

  it('inlineWhenIdle: never with portable ML-KEM / ML-DSA (many ms a job: the event loop must not stall for one)', async () => {
    const noble = createNobleBackend();
    const p = await CryptoPool.start(noble, 'noble', compositeKeygen(noble, new Uint8Array(64).fill(9)), { workers: 1, maxQueue: 64, ratePerSource: 0, inlineWhenIdle: 100 });
    pools.push(p);
    await expect(p.run('s', { op: 'encapsulate', publicKey })).resolves.toMatchObject({ op: 'encapsulate' });
    expect(p.stats).toMatchObject({ threads: 1, inlined: 0 });
  });

  it('refuses bad options', async () => {
    await expect(CryptoPool.start(backend, 'native', key(), { workers: 0, maxQueue: 1, ratePerSource: 0, inlineWhenIdle: -1 })).rejects.toThrow(/inlineCryptoPerSecond/);
    await expect(CryptoPool.start(backend, 'native', key(), { workers: 0, maxQueue: 1, ratePerSource: 0, inlineWhenIdle: 1.5 })).rejects.toThrow(/inlineCryptoPerSecond/);
    await expect(CryptoPool.start(backend, 'native', key(), { workers: -1, maxQueue: 1, ratePerSource: 0 })).rejects.toThrow(InvalidArgumentError);
    await expect(CryptoPool.start(backend, 'native', key(), { workers: 0, maxQueue: 0, ratePerSource: 0 })).rejects.toThrow(/maxCryptoQueue/);
    await expect(CryptoPool.start(backend, 'native', key(), { workers: 0, maxQueue: 1, ratePerSource: 0, workerPriority: 'lowest' as 'low' })).rejects.toThrow(/cryptoWorkerPriority/);
    await expect(CryptoPool.start(backend, 'native', key(), { workers: 0, maxQueue: 1, ratePerSource: 0, guardMs: 0 })).rejects.toThrow('guardMs must be a number >= 1');
    await expect(CryptoPool.start(backend, 'native', key(), { workers: 0, maxQueue: 1, ratePerSource: 0, guardLingerMs: -1 })).rejects.toThrow('guardLingerMs must be a number >= 0');
    await expect(CryptoPool.start(backend, 'native', key(), { workers: 0, maxQueue: 1, ratePerSource: 0, guardLingerMs: Number.NaN })).rejects.toThrow('guardLingerMs must be a number >= 0');
  });
});

// --- issue 10, sixth session: the starvation guard of 'idle' (SCHED_IDLE) workers ---
describe("CryptoPool: the starvation guard of workerPriority 'idle'", () => {
  const linux = process.platform === 'linux';
  const chrt = ['/usr/bin/chrt', '/bin/chrt', '/usr/sbin/chrt', '/sbin/chrt'].some((path) => existsSync(path));
  const taskset = ['/usr/bin/taskset', '/bin/taskset'].find((path) => existsSync(path));
  // Spinners of normal policy starve a SCHED_IDLE thread only while their weight dwarfs its
  // (3): at nice 0 they weigh 1,024 each, at nice 10 110, at nice 19 only 15, and then the idle
  // worker gets ~6 % of the CPU and finishes a portable signature before guardMs. Threads
  // cannot be made less nice than their process without privilege, so a test process started
  // at nice > 10 (`nice -n 19 npm test`) cannot build a starved worker: those tests skip,
  // saying why (the reporter shows the note; a bare runIf skipped them without a word).
  const nice = getPriority();
  const unstarvable = nice > 10 ? `this process runs at nice ${nice} (> 10), and its threads cannot be made less nice without privilege: spinners of normal policy then weigh too little (15 each at nice 19, against SCHED_IDLE's 3) to starve the idle worker, which signs before guardMs. Run the tests at nice <= 10 to run it` : undefined;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it.runIf(linux && chrt)("'idle' starts one reserve worker (normal policy, nice +10) beside the idle ones; while they keep up it takes no job; 'low' has none", async () => {
    const main = threads().get(String(process.pid))!.nice;
    const before = threads();
    // The guard's clock stands still: no job is ever late, however busy the machine (a
    // shared CI host can starve SCHED_IDLE workers past guardMs, and the reserve then rightly runs).
    const p = await pool({ workers: 2, workerPriority: 'idle', now: () => 0 });
    for (let i = 0; i < 8; i++) await p.run('s', encapsulate());
    const added = [...threads()].filter(([tid]) => !before.has(tid)).map(([, t]) => t);
    expect(added.filter((t) => t.policy === 5)).toHaveLength(2);
    expect(added.filter((t) => t.policy === 0 && t.nice === Math.min(19, main + 10)).length).toBeGreaterThanOrEqual(1);
    expect(p.stats).toMatchObject({ threads: 2, reserve: 1, reserved: 0, late: 0 });
    const low = await pool({ workers: 2, workerPriority: 'low' });
    await low.run('s', encapsulate());
    expect(low.stats).toMatchObject({ threads: 2, reserve: 0, reserved: 0, late: 0 });
  });

  it.runIf(linux)("'idle' on a host where chrt is missing: the workers keep nice +10, and no reserve is kept (no idle thread holding a copy of the key); chrtPaths must be absolute", async () => {
    const main = threads().get(String(process.pid))!.nice;
    const before = threads();
    const p = await pool({ workers: 2, workerPriority: 'idle', chrtPaths: ['/nonexistent/pqmcp-test/chrt'] });
    for (let i = 0; i < 4; i++) await p.run('s', encapsulate());
    expect(p.stats).toMatchObject({ threads: 2, reserve: 0, reserved: 0, late: 0 });
    // The reserve was started with the others (a third thread at nice +10) and stopped once
    // no worker got SCHED_IDLE: two remain. (Other new threads of the process, libuv's or
    // V8's, keep the main thread's nice value.)
    const workerThreads = () => [...threads()].filter(([tid, t]) => !before.has(tid) && t.nice === Math.min(19, main + 10)).map(([, t]) => t);
    await waitFor(() => workerThreads().length === 2, 10_000, 'the unneeded reserve thread gone');
    expect(workerThreads().every((t) => t.policy === 0)).toBe(true);
    expect([...threads()].filter(([tid, t]) => !before.has(tid) && t.policy === 5)).toEqual([]);
    await expect(pool({ workers: 1, workerPriority: 'idle', chrtPaths: ['chrt'] })).rejects.toThrow('chrtPaths must be absolute paths');
  });

  it.runIf(linux && chrt)("the default: 'idle' (with the reserve) with native ML-KEM and ML-DSA, 'low' with the portable ones", async () => {
    const count = (pid: string) => [...threads()].filter(([tid, t]) => tid !== pid && t.policy === 5).length;
    const pid = String(process.pid);
    const idleBefore = count(pid);
    const byDefault = await pool({ workers: 1 });
    await byDefault.run('s', encapsulate());
    const native = backend.report.mlkem === 'native' && backend.report.mldsa === 'native';
    expect(count(pid) - idleBefore).toBe(native ? 1 : 0);
    expect(byDefault.stats.reserve).toBe(native ? 1 : 0);
    const noble = createNobleBackend();
    const portable = await CryptoPool.start(noble, 'noble', compositeKeygen(noble, new Uint8Array(64).fill(4)), { workers: 1, maxQueue: 4, ratePerSource: 0 });
    pools.push(portable);
    expect(portable.stats).toMatchObject({ threads: 1, reserve: 0 });
    expect(count(pid) - idleBefore).toBe(native ? 1 : 0);
  });

  // A real starved worker: the SCHED_IDLE worker and a spinning thread of normal policy are
  // pinned to CPU 0 (SCHED_IDLE then gets ~0.3 % of it); a portable signature (many ms of
  // CPU) cannot finish there. The clock the guard reads is injected: nothing is late until
  // it passes guardMs, then the reserve (not pinned) answers.
  // Run with the default linger (GUARD_LINGER_MS) and with guardLingerMs 300: the reserve
  // serves until the linger has passed after the last late sighting (at the injected clock
  // 201), and not after.
  it.runIf(linux && chrt && taskset).for([{ linger: undefined }, { linger: 300 }])('a job with a starved idle worker is late only after guardMs (injected clock); then the reserve computes it, and serves the queue while the pool is starved (guardLingerMs $linger)', async ({ linger }, ctx) => {
    if (unstarvable !== undefined) ctx.skip(unstarvable);
    const noble = createNobleBackend();
    const nobleKey = compositeKeygen(noble, new Uint8Array(64).fill(5));
    let now = 0;
    const before = threads();
    const lingerMs = linger ?? GUARD_LINGER_MS;
    const p = await CryptoPool.start(noble, 'noble', nobleKey, { workers: 1, maxQueue: 64, ratePerSource: 0, workerPriority: 'idle', guardMs: 200, ...(linger !== undefined ? { guardLingerMs: linger } : {}), now: () => now });
    pools.push(p);
    const idleTids = [...threads()].filter(([tid, t]) => !before.has(tid) && t.policy === 5).map(([tid]) => tid);
    expect(idleTids).toHaveLength(1);
    const stop = new Int32Array(new SharedArrayBuffer(4));
    // Three spinners: SCHED_IDLE's share of CPU 0 is then ~0.1 % (weights 3 against 3 x 1,024).
    const spin = () => new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const tid = require('node:fs').readlinkSync('/proc/thread-self').split('/').pop();
       require('node:child_process').execFileSync(workerData.taskset, ['-p', '-c', '0', tid], { stdio: 'ignore' });
       parentPort.postMessage('pinned');
       const flag = new Int32Array(workerData.stop);
       while (Atomics.load(flag, 0) === 0) {}`,
      { eval: true, workerData: { taskset, stop: stop.buffer } },
    );
    const spinners = [spin(), spin(), spin()];
    try {
      await Promise.all(spinners.map((s) => new Promise((resolve) => s.once('message', resolve))));
      execFileSync(taskset!, ['-p', '-c', '0', idleTids[0]!], { stdio: 'ignore' });
      const text = new TextEncoder();
      let settled = false;
      const first = p.run('s', { op: 'sign', message: text.encode('late'), context: text.encode('ctx') }).finally(() => (settled = true));
      await sleep(400); // many checks of the guard, with the clock still at 0
      expect(settled).toBe(false);
      expect(p.stats).toMatchObject({ late: 0, reserved: 0 });
      now = 201; // past guardMs
      const sig = (await first) as Extract<CryptoResult, { op: 'sign' }>;
      expect(compositeVerify(noble, nobleKey.publicKey, text.encode('late'), sig.signature, text.encode('ctx'))).toBe(true);
      expect(p.stats).toMatchObject({ late: 1, reserved: 1 });
      // Starved (the idle worker still holds its copy): new handshakes go to the reserve.
      await expect(p.run('t', { op: 'encapsulate', publicKey: noble.xwing.keygen(new Uint8Array(32).fill(1)).publicKey })).resolves.toMatchObject({ op: 'encapsulate' });
      expect(p.stats.reserved).toBe(2);
      // The idle worker free again: within the linger the reserve still serves; past it the
      // idle worker serves, the reserve waits.
      Atomics.store(stop, 0, 1);
      // It finishes its copy (dropped) once the spinners stopped; SCHED_IDLE, on a CPU other
      // test files may keep busy, so this can take seconds: wait for it, not for a fixed time.
      // (It may be back already: SCHED_IDLE's share of a contended CPU is small, not nil; a
      // full-file run on Node 24 at load 3.5 found it back here once in five.)
      await waitFor(() => p.stats.busy === 0, 45_000, 'the idle worker back from its copy');
      // Every check of the guard while the copy was out saw it late at the clock 201.
      now = 201 + lingerMs - 1;
      await expect(p.run('u', { op: 'encapsulate', publicKey: noble.xwing.keygen(new Uint8Array(32).fill(2)).publicKey })).resolves.toMatchObject({ op: 'encapsulate' });
      expect(p.stats).toMatchObject({ late: 1, reserved: 3 });
      now = 201 + lingerMs + 1;
      await expect(p.run('v', { op: 'encapsulate', publicKey: noble.xwing.keygen(new Uint8Array(32).fill(3)).publicKey })).resolves.toMatchObject({ op: 'encapsulate' });
      expect(p.stats).toMatchObject({ late: 1, reserved: 3 });
    } finally {
      Atomics.store(stop, 0, 1);
      await Promise.all(spinners.map((s) => s.terminate()));
    }
  });
});

// --- review 7: what the worker threads leave behind, and every job settled ---
describe('CryptoPool: secrets left in the workers, jobs in flight at close (review 7)', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it("a worker thread wipes its own copy of an encapsulation's shared secret once posted (the main thread wipes the copy it got where it uses it)", async () => {
    // The real crypto-worker module in a real thread; the probe beside it only keeps the
    // results the worker posted and, asked, says what their shared secrets hold now.
    const workerUrl = new URL('../../src/transport/crypto-worker.ts', import.meta.url).href;
    const code = `
      const { parentPort } = require('node:worker_threads');
      const post = parentPort.postMessage.bind(parentPort);
      const sent = [];
      parentPort.postMessage = (m, transfer) => { post(m, transfer); if (m && m.result) sent.push(m.result); };
      parentPort.on('message', (m) => { if (m && m.probe) post({ probe: sent.map((r) => Array.from(r.sharedSecret)) }); });
      import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(workerUrl)}); });`;
    const worker = new Worker(code, { eval: true, workerData: { backend: 'native', seed: key().seed.slice(), priority: 'low' } });
    const message = <T>(match: (m: Record<string, unknown>) => boolean): Promise<T> =>
      new Promise((resolve) => {
        const on = (m: Record<string, unknown>): void => {
          if (!match(m)) return;
          worker.off('message', on);
          resolve(m as T);
        };
        worker.on('message', on);
      });
    try {
      await message((m) => m.ready === true);
      const randomness = new Uint8Array(64).fill(3);
      const expected = backend.xwing.encapsulate(publicKey, randomness.slice()).sharedSecret;
      worker.postMessage({ id: 1, request: { op: 'encapsulate', publicKey, randomness } });
      const answer = await message<{ result: { sharedSecret: Uint8Array } }>((m) => m.id === 1);
      expect(Buffer.from(answer.result.sharedSecret)).toEqual(Buffer.from(expected));
      expect(expected.some((b) => b !== 0)).toBe(true);
      worker.postMessage({ probe: true });
      const { probe } = await message<{ probe: number[][] }>((m) => m.probe !== undefined);
      expect(probe).toEqual([new Array<number>(32).fill(0)]);
    } finally {
      await worker.terminate();
    }
  });

  it('close() settles a job a worker thread is computing (ClosedError), not only the jobs waiting', async () => {
    // A portable signature takes many ms: it is still being computed when close() stops its thread.
    const noble = createNobleBackend();
    const p = await CryptoPool.start(noble, 'noble', compositeKeygen(noble, new Uint8Array(64).fill(6)), { workers: 1, maxQueue: 4, ratePerSource: 0, workerPriority: 'low' });
    pools.push(p);
    const text = new TextEncoder();
    const job = p.run('s', { op: 'sign', message: text.encode('in flight'), context: text.encode('ctx') }).then(
      () => 'answered before the thread stopped',
      (e: unknown) => e,
    );
    expect(p.stats).toMatchObject({ threads: 1, busy: 1, queued: 0 }); // with the worker, not waiting
    await p.close();
    const outcome = await Promise.race([job, sleep(3_000).then(() => 'never settled')]);
    expect(outcome).not.toBe('never settled');
    if (outcome !== 'answered before the thread stopped') expect(outcome).toBeInstanceOf(ClosedError);
  });
});

// --- review 7, items left: worker threads that die (a rescued job, an ordinary job, the queue) ---
// The seam: CryptoPool.testThreads() (internal, tests only) holds a real thread's answers
// back and kills the thread (worker.terminate()) at a chosen moment; what it answered and
// was held dies with it, so a job is in flight on that thread when it dies.
describe('CryptoPool: worker threads that die', () => {
  const linux = process.platform === 'linux';
  const chrt = ['/usr/bin/chrt', '/bin/chrt', '/usr/sbin/chrt', '/sbin/chrt'].some((path) => existsSync(path));
  const text = new TextEncoder();
  const verified = (result: CryptoResult, message: string): boolean =>
    result.op === 'sign' && compositeVerify(backend, key().publicKey, text.encode(message), result.signature, text.encode('ctx'));
  const thread = (p: CryptoPool, role: TestThread['role'], busy?: boolean): TestThread => {
    const found = p.testThreads().find((t) => t.role === role && (busy === undefined || t.busy === busy));
    if (!found) throw new Error(`no ${role} thread`);
    return found;
  };

  /** A rescued job in flight on both its runners (both holding their answers): its idle worker and the reserve. */
  async function rescuedJob(message: string): Promise<{ p: CryptoPool; idle: TestThread; reserve: TestThread; job: Promise<CryptoResult> }> {
    let now = 0;
    const p = await pool({ workers: 1, workerPriority: 'idle', now: () => now });
    const idle = thread(p, 'idle');
    const reserve = thread(p, 'reserve');
    idle.hold();
    reserve.hold();
    const job = p.run('s', sign(message));
    expect(idle.busy).toBe(true);
    now = 10_000; // past guardMs at the guard's next check: the job is late, the reserve computes it too
    await waitFor(() => p.stats.reserved === 1, 10_000, 'the rescue');
    expect(p.stats).toMatchObject({ late: 1, busy: 2 });
    expect(reserve.busy).toBe(true);
    return { p, idle, reserve, job };
  }

  it.runIf(linux && chrt)("a rescued job whose idle worker dies is answered by the reserve's copy (not failed)", async () => {
    const { p, idle, reserve, job } = await rescuedJob('idle dies');
    await idle.kill();
    expect(p.stats.threads + p.stats.inlineSlots).toBe(1); // inline work stands in until the worker is restarted
    reserve.release();
    expect(verified(await job, 'idle dies')).toBe(true);
    // The pool goes on: the next job is answered.
    expect(verified(await p.run('s', sign('after')), 'after')).toBe(true);
  });

  it.runIf(linux && chrt)('a job rescued again by a restarted reserve (its first rescuer died) is counted late once', async () => {
    const { p, idle, reserve, job } = await rescuedJob('late once');
    await reserve.kill();
    // The next reserve finds the job still late with its idle worker and computes it too.
    await waitFor(() => p.stats.reserveRestarts === 1 && p.stats.reserved === 2, 20_000, 'the second rescue');
    expect(p.stats.late).toBe(1);
    idle.release();
    expect(verified(await job, 'late once')).toBe(true);
    expect(p.stats.late).toBe(1);
  });

  it.runIf(linux && chrt)("a rescued job whose reserve dies is answered by its idle worker's copy (not failed)", async () => {
    const { idle, reserve, job } = await rescuedJob('reserve dies');
    await reserve.kill();
    idle.release();
    expect(verified(await job, 'reserve dies')).toBe(true);
  });

  it.runIf(linux && chrt)('a rescued job fails (typed, InternalError) only when both its runners die', async () => {
    const { p, idle, reserve, job } = await rescuedJob('both die');
    const outcome = job.then(
      () => 'answered',
      (e: unknown) => e,
    );
    // The idle worker first: killing the reserve first would let its restart (0.25 s later)
    // rescue the job again and answer it, on a loaded machine, before the idle worker dies.
    await idle.kill();
    await reserve.kill();
    const error = await outcome;
    expect(error).toBeInstanceOf(InternalError);
    expect((error as InternalError).code).toBe('ERR_INTERNAL');
    expect(verified(await p.run('s', sign('after')), 'after')).toBe(true);
  });

  it('an ordinary job whose worker dies is computed again (once) and answered; the jobs queued behind it are all answered', async () => {
    const p = await pool({ workers: 1, workerPriority: 'low' });
    const worker = thread(p, 'worker');
    worker.hold();
    const jobs = ['in flight', 'queued 1', 'queued 2'].map((m) => p.run(m === 'in flight' ? 's' : 't', sign(m)).then((r) => verified(r, m)));
    expect(p.stats).toMatchObject({ busy: 1, threads: 1 });
    await worker.kill();
    expect(await Promise.all(jobs)).toEqual([true, true, true]);
    expect(p.stats).toMatchObject({ queued: 0 });
    // The worker comes back (crypto-restart.ts), and its inline stand-in goes.
    await waitFor(() => p.stats.threads === 1 && p.stats.inlineSlots === 0, 20_000, 'the worker restarted');
    expect(p.stats).toMatchObject({ workerRestarts: 1, slotsGivenUp: 0 });
  });

  it('a thread that dies after it was ready but before its runner took it (review 7, item 8): the runner reports the death, and a job given to it fails typed instead of waiting for ever', async () => {
    const thread = await startWorker('native', key().seed, 'low', undefined);
    await thread.worker.terminate(); // dies in the gap (at start-up that gap can be chrt's 5 s per worker)
    const deaths: Runner[] = [];
    const runner = threadRunner(thread, 'worker', { free: () => {}, died: (r) => void deaths.push(r) });
    const job = runner.run(encapsulate()).then(
      () => 'answered',
      (e: unknown) => e,
    );
    expect(await job).toBeInstanceOf(ThreadLostError);
    expect(deaths).toEqual([runner]);
    await expect(runner.run(encapsulate())).rejects.toBeInstanceOf(ThreadLostError);
  });

  it("a listener's honest handshake whose crypto worker dies mid-handshake still connects (no hang, no failure)", async () => {
    const cleanup = new Cleanup();
    try {
      const { server, url } = await startFeatureServer(cleanup, { cryptoWorkers: 1, cryptoWorkerPriority: 'low', inlineCryptoPerSecond: 0 });
      const serverPool = (server as unknown as { edge: { pool: CryptoPool } }).edge.pool;
      const worker = thread(serverPool, 'worker');
      worker.hold();
      const client = connectClient(cleanup, url);
      await waitFor(() => worker.busy, 10_000, 'the handshake on the worker');
      await worker.kill();
      await expect(client).resolves.toBeDefined();
      await waitFor(() => serverPool.stats.threads === 1 && serverPool.stats.inlineSlots === 0, 20_000, 'the worker restarted');
    } finally {
      await cleanup.run();
    }
  });
});

// --- review 7 item 7: the starvation guard's reserve is kept alive, or the pool falls back to 'low' ---
describe("CryptoPool: the guard's reserve restarted, then the fallback", () => {
  const linux = process.platform === 'linux';
  const chrt = ['/usr/bin/chrt', '/bin/chrt', '/usr/sbin/chrt', '/sbin/chrt'].some((path) => existsSync(path));
  const reserveOf = (p: CryptoPool): TestThread | undefined => p.testThreads().find((t) => t.role === 'reserve');

  it.runIf(linux && chrt)('a reserve that dies is started again (a new thread, normal policy at nice +10), and the new one rescues a late job', async () => {
    let now = 0;
    const main = threads().get(String(process.pid))!.nice;
    const p = await pool({ workers: 1, workerPriority: 'idle', now: () => now });
    const first = reserveOf(p)!;
    const before = threads();
    await first.kill();
    expect(p.stats.reserve).toBe(0);
    await waitFor(() => p.stats.reserve === 1, 20_000, 'the reserve started again');
    expect(p.stats).toMatchObject({ threads: 1, reserve: 1, reserveRestarts: 1, guardFallback: 0 });
    const second = reserveOf(p)!;
    expect(second).not.toBe(first);
    const added = [...threads()].filter(([tid]) => !before.has(tid)).map(([, t]) => t);
    expect(added.some((t) => t.policy === 0 && t.nice === Math.min(19, main + 10))).toBe(true);
    expect(added.filter((t) => t.policy === 5)).toEqual([]);
    // It guards: a job its idle worker holds past guardMs is answered by the new reserve.
    p.testThreads().find((t) => t.role === 'idle')!.hold();
    const job = p.run('s', encapsulate());
    now = 10_000;
    await expect(job).resolves.toMatchObject({ op: 'encapsulate' });
    expect(p.stats).toMatchObject({ late: 1, reserved: 1 });
  });

  it.runIf(linux && chrt)(`a reserve that keeps dying is restarted ${RESTARTS} times in a row (one that lived ${RESTART_STABLE_MS / 1000} s counts as new), then the pool falls back: nice +10 workers replace the SCHED_IDLE ones, one process warning, its stats say so`, async () => {
    let now = 0;
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void ((w as { code?: string }).code === 'PQMCP_CRYPTO_GUARD' && warnings.push(w));
    process.on('warning', onWarning);
    const before = threads();
    try {
      // Backoffs of 10, 40 and 160 ms (the defaults, 0.25, 1 and 4 s, are crypto-restart.test.ts's).
      const p = await pool({ workers: 2, workerPriority: 'idle', now: () => now, restartBackoffMs: 10 });
      expect(p.testThreads().map((t) => t.role).sort()).toEqual(['idle', 'idle', 'reserve']);
      const killReserve = async (restarts: number): Promise<void> => {
        await reserveOf(p)!.kill();
        await waitFor(() => p.stats.reserveRestarts === restarts && p.stats.reserve === 1, 20_000, `restart ${restarts}`);
      };
      await killReserve(1);
      now += RESTART_STABLE_MS; // this reserve lived a minute: its death is a crash, not a loop
      await killReserve(2);
      await killReserve(3);
      await killReserve(4);
      expect(p.stats.guardFallback).toBe(0);
      // A job in flight on an idle worker when the guard gives up is still answered.
      for (const t of p.testThreads()) if (t.role === 'idle') t.hold();
      const job = p.run('s', sign('during the fallback'));
      const busyIdle = p.testThreads().find((t) => t.role === 'idle' && t.busy)!;
      const freeIdle = p.testThreads().find((t) => t.role === 'idle' && !t.busy)!;
      await reserveOf(p)!.kill(); // the fourth death in a row: no restart
      expect(p.stats).toMatchObject({ reserve: 0, reserveRestarts: 4, guardFallback: 1 });
      // The free idle worker dies while its nice +10 replacement starts: an inline stand-in
      // until the replacement comes, then that one alone (not both).
      await freeIdle.kill();
      await waitFor(() => warnings.length > 0, 5_000, 'the warning'); // emitted on the next tick
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.message).toMatch(/starvation guard is off/);
      // Two nice +10 workers come up; the free idle worker stops at once, the busy one once its job is answered.
      await waitFor(() => p.testThreads().filter((t) => t.role === 'worker').length === 2, 20_000, 'the nice +10 workers');
      busyIdle.release();
      const signed = (await job) as Extract<CryptoResult, { op: 'sign' }>;
      expect(compositeVerify(backend, key().publicKey, new TextEncoder().encode('during the fallback'), signed.signature, new TextEncoder().encode('ctx'))).toBe(true);
      await waitFor(() => p.testThreads().every((t) => t.role === 'worker'), 20_000, 'the SCHED_IDLE workers stopped');
      expect(p.testThreads()).toHaveLength(2);
      await waitFor(() => ![...threads()].some(([tid, t]) => !before.has(tid) && t.policy === 5), 20_000, 'no SCHED_IDLE thread left');
      await waitFor(() => p.stats.inlineSlots === 0, 20_000, 'the stand-in gone');
      expect(p.stats).toMatchObject({ threads: 2, inlineSlots: 0, workerRestarts: 0, reserve: 0, guardFallback: 1 });
      // The pool serves as 'low': no guard left to fire.
      now += 1_000_000;
      await expect(Promise.all([p.run('a', encapsulate()), p.run('b', encapsulate()), p.run('c', encapsulate())])).resolves.toHaveLength(3);
      expect(p.stats).toMatchObject({ late: 0, reserve: 0, reserveRestarts: 4 });
      expect(warnings).toHaveLength(1);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

// --- workers that do not start with the pool: inline for its life, and said once ---
describe('CryptoPool: workers that do not start', () => {
  it('are inline for the pool\'s life, said once by a PQMCP_CRYPTO_POOL process warning naming the cause; a pool whose workers start says nothing', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void ((w as { code?: string }).code === 'PQMCP_CRYPTO_POOL' && warnings.push(w));
    process.on('warning', onWarning);
    try {
      // A worker that throws at load: it is asked for a backend it cannot build.
      const p = await CryptoPool.start(backend, 'no-such-backend' as never, key(), { workers: 2, maxQueue: 64, ratePerSource: 0 });
      pools.push(p);
      expect(p.stats).toMatchObject({ threads: 0, inlineSlots: 2, reserve: 0 });
      await waitFor(() => warnings.length > 0, 5_000, 'the warning'); // emitted on the next tick
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.message).toMatch(/^pqmcp: 2 of 2 crypto worker threads did not start \(.*backend must be one of.*\); their share of handshake crypto runs on the event loop for the pool's life \(stats: inlineSlots\)$/);
      // Still served, inline.
      const signed = await p.run('s', sign('inline'));
      expect(compositeVerify(backend, key().publicKey, new TextEncoder().encode('inline'), (signed as Extract<CryptoResult, { op: 'sign' }>).signature, new TextEncoder().encode('ctx'))).toBe(true);
      // Deliberately inline (no workers asked for), and workers that start: no warning.
      await pool({ workers: 0 });
      await pool({ workers: 1, workerPriority: 'low' });
      await new Promise((r) => setImmediate(r));
      expect(warnings).toHaveLength(1);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

// --- a dead ordinary worker is restarted (crypto-restart.ts), inline while it starts and once its restarts are spent ---
describe('CryptoPool: dead workers restarted, then inline', () => {
  const linux = process.platform === 'linux';
  const chrt = ['/usr/bin/chrt', '/bin/chrt', '/usr/sbin/chrt', '/sbin/chrt'].some((path) => existsSync(path));
  const text = new TextEncoder();
  const verified = (result: CryptoResult, message: string): boolean =>
    result.op === 'sign' && compositeVerify(backend, key().publicKey, text.encode(message), result.signature, text.encode('ctx'));
  /** Signs `n` messages from distinct sources; true when every signature verifies. */
  const serve = async (p: CryptoPool, tag: string, n = 3): Promise<boolean> =>
    (await Promise.all(Array.from({ length: n }, (_, i) => p.run(`${tag}${i}`, sign(`${tag} ${i}`)).then((r) => verified(r, `${tag} ${i}`))))).every(Boolean);

  it.runIf(linux && chrt)("'idle': a dead SCHED_IDLE worker is started again SCHED_IDLE (a new thread); its job and the jobs meanwhile are answered", async () => {
    const p = await pool({ workers: 2, workerPriority: 'idle', now: () => 0 }); // a frozen clock: no job is ever late
    const before = threads();
    const idle = p.testThreads().filter((t) => t.role === 'idle');
    for (const t of idle) t.hold();
    const inFlight = p.run('s', sign('in flight'));
    const victim = idle.find((t) => t.busy)!;
    for (const t of idle) if (t !== victim) t.release();
    await victim.kill();
    expect(p.stats.threads + p.stats.inlineSlots).toBe(2); // the other worker, and a stand-in for the dead one
    expect(verified(await inFlight, 'in flight')).toBe(true);
    expect(await serve(p, 'meanwhile')).toBe(true);
    await waitFor(() => p.stats.workerRestarts === 1 && p.stats.threads === 2 && p.stats.inlineSlots === 0, 20_000, 'the worker restarted');
    expect(p.testThreads().map((t) => t.role).sort()).toEqual(['idle', 'idle', 'reserve']);
    expect(p.testThreads()).not.toContain(victim);
    const added = [...threads()].filter(([tid]) => !before.has(tid)).map(([, t]) => t);
    expect(added.filter((t) => t.policy === 5)).toHaveLength(1);
    expect(p.stats).toMatchObject({ slotsGivenUp: 0, reserveRestarts: 0, guardFallback: 0 });
    expect(await serve(p, 'after')).toBe(true);
  });

  it.runIf(linux)("'low': a dead nice +10 worker is started again at nice +10, normal policy", async () => {
    const main = threads().get(String(process.pid))!.nice;
    const p = await pool({ workers: 1, workerPriority: 'low', now: () => 0 });
    const before = threads();
    const victim = p.testThreads()[0]!;
    await victim.kill();
    expect(p.stats).toMatchObject({ threads: 0, inlineSlots: 1 });
    expect(await serve(p, 'meanwhile')).toBe(true);
    await waitFor(() => p.stats.workerRestarts === 1 && p.stats.threads === 1 && p.stats.inlineSlots === 0, 20_000, 'the worker restarted');
    expect(p.testThreads().map((t) => t.role)).toEqual(['worker']);
    const added = [...threads()].filter(([tid]) => !before.has(tid)).map(([, t]) => t);
    expect(added.some((t) => t.policy === 0 && t.nice === Math.min(19, main + 10))).toBe(true);
    expect(added.filter((t) => t.policy === 5)).toEqual([]);
    expect(await serve(p, 'after')).toBe(true);
  });

  it(`a worker that keeps dying is restarted ${RESTARTS} times in a row, then its slot stays inline for good: one process warning, its stats say so, jobs answered throughout`, async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void ((w as { code?: string }).code === 'PQMCP_CRYPTO_POOL' && warnings.push(w));
    process.on('warning', onWarning);
    try {
      // A frozen clock: every death is in a row; backoffs of 10, 40 and 160 ms (the defaults, 0.25, 1 and 4 s, are crypto-restart.test.ts's).
      const p = await pool({ workers: 2, workerPriority: 'low', now: () => 0, restartBackoffMs: 10 });
      const [victim, other] = p.testThreads();
      let current = victim!;
      for (let restart = 1; restart <= RESTARTS; restart++) {
        await current.kill();
        expect(await serve(p, `death ${restart}`)).toBe(true);
        await waitFor(() => p.stats.workerRestarts === restart && p.stats.threads === 2 && p.stats.inlineSlots === 0, 20_000, `restart ${restart}`);
        current = p.testThreads().find((t) => t !== other)!;
      }
      expect(warnings).toEqual([]);
      await current.kill(); // the next death in a row: no restart
      expect(p.stats).toMatchObject({ threads: 1, inlineSlots: 1, workerRestarts: RESTARTS, slotsGivenUp: 1 });
      await waitFor(() => warnings.length > 0, 5_000, 'the warning'); // emitted on the next tick
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.message).toMatch(/event loop for the pool's life/);
      // Past any backoff a restart would take (10 ms x 4^3): still inline, and serving.
      await new Promise((r) => setTimeout(r, 1_000));
      expect(await serve(p, 'after')).toBe(true);
      expect(p.stats).toMatchObject({ threads: 1, inlineSlots: 1, workerRestarts: RESTARTS, slotsGivenUp: 1 });
      expect(p.testThreads()).toEqual([other]);
      // The other slot keeps its own budget: its worker is restarted.
      await other!.kill();
      await waitFor(() => p.stats.workerRestarts === RESTARTS + 1 && p.stats.threads === 1, 20_000, 'the other worker restarted');
      expect(p.stats).toMatchObject({ inlineSlots: 1, slotsGivenUp: 1 });
      expect(warnings).toHaveLength(1);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
