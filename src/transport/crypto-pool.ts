/**
 * The server's handshake crypto (X-Wing encapsulation, composite signature) off the event
 * loop: a small pool of worker threads behind a bounded, fair queue with a per-source rate
 * (docs/threat-model.md, "Expensive work"). A new handshake without a token from its
 * source's bucket, or past a full queue, is refused with ServerBusyError, which the
 * connection sends as the plaintext alert server_busy: before any encapsulation or
 * signature. A handshake admitted is finished promptly: its signature goes ahead of new
 * handshakes and is never refused.
 *
 * Its parts, each stating its own policy and sharp edges:
 *   crypto-queue.ts    the rate and the fair queue (admission, least attained service first,
 *                      which newcomer a full queue refuses)
 *   crypto-threads.ts  a worker thread seen from here: its start (the key seed passed once
 *                      and wiped), a runner over it, its death; the test seam (testThreads())
 *   crypto-worker.ts   the thread itself: its key, its priority (nice +10; SCHED_IDLE with
 *                      `workerPriority: 'idle'`, the default with native ML-KEM and ML-DSA)
 *   crypto-guard.ts    'idle' only: the reserve worker at nice +10 that rescues jobs a starved
 *                      idle worker holds past `guardMs`, and the fallback to 'low' (warning
 *                      PQMCP_CRYPTO_GUARD) when the reserve cannot be kept alive
 *   crypto-slots.ts    the ordinary workers: a dead thread's slot served inline at once and
 *                      its thread started again, inline for good once its restarts are spent
 *                      (warning PQMCP_CRYPTO_POOL)
 *   crypto-restart.ts  the restart budget of a slot and of the reserve
 * This module holds the runners (worker threads, the reserve, inline ones), hands them the
 * queue's jobs and settles each job once.
 *
 * Sharp edges:
 * - Inline while idle (`inlineWhenIdle` jobs per second, a burst of one second's worth;
 *   only with native ML-KEM and ML-DSA, Node >= 24.7: the portable ones take many ms a
 *   job): while no worker is busy and nothing waits, a job may run on the event loop:
 *   handing it to an idle worker costs a thread wake-up, ~0.3 ms of latency per job on a
 *   virtual machine's idle core and CPU on both threads (docs/benchmarks.md, issue 12).
 *   That budget bounds the event loop's share; rate and queue apply alike. Only a quiet
 *   pool inlines: after any job found it busy (a worker computing, a job waiting or on the
 *   event loop) or was refused, nothing is inlined for INLINE_QUIET_MS, so under a flood,
 *   whose jobs keep finding it busy, the lane stays shut instead of taking the brief idle
 *   moments between flood jobs (each inlined job is ~0.1-0.5 ms in which an established
 *   session's messages wait: docs/benchmarks.md, "Floods").
 * - The guard's reserve is one more runner behind the same rate and queue, one job at a
 *   time; no job goes to the event loop because of the guard.
 * - `workers: 0`, a backend object the workers cannot rebuild, or workers that fail to
 *   start with the pool all mean inline for the pool's life: the same queue and rate, the
 *   work on the event loop (one job per turn; a start that fails is most likely the host,
 *   which a retry would not mend). Workers that fail to start are said once, with the
 *   first one's error (process warning PQMCP_CRYPTO_POOL; `inlineSlots`).
 * - A thread that dies loses no job: a rescued job goes on with its other runner (the
 *   first answer of the two settles it; it fails only when both die); any other is queued
 *   again once, ahead of new handshakes, and fails (InternalError, a typed alert for its
 *   handshake) only if its second runner dies too. A job's own error (a bad key share) is
 *   final at once.
 * - close() fails every job not yet answered with ClosedError: those waiting and those the
 *   worker threads it stops were computing.
 */
import { compositeSign } from '../crypto/composite.js';
import type { CompositeKeyPair } from '../crypto/composite.js';
import type { BackendName, CryptoBackend } from '../crypto/types.js';
import { ClosedError, InternalError, InvalidArgumentError, PqmcpError, ServerBusyError } from '../errors.js';
import { discardCryptoResult, type CryptoRequest, type CryptoResult } from '../handshake/types.js';
import { FairQueue } from './crypto-queue.js';
import { stackless } from '../stackless.js';
import { TokenBucket } from '../token-bucket.js';
import { StarvationGuard, type GuardStats } from './crypto-guard.js';
import { WorkerSlots } from './crypto-slots.js';
import { startWorker, threadRunner, ThreadLostError, type Runner, type StartedThread, type TestThread, type WorkerPriority } from './crypto-threads.js';

export type { TestThread, WorkerPriority };

/** The starvation guard's default bound on a job's time with an idle worker: ~100x a native job (~0.2-1 ms), ~10x a portable one (~23 ms on Node 20). */
export const GUARD_MS = { native: 100, portable: 250 } as const;
/** How long the reserve alone keeps serving the queue after an idle worker was last seen late (default of `guardLingerMs`). */
export const GUARD_LINGER_MS = 1_000;
/** inlineWhenIdle: how long after the pool was last found busy (or refused a job) nothing is inlined. */
export const INLINE_QUIET_MS = 1_000;

export interface CryptoPoolOptions {
  /** Worker threads; 0 runs the work on the event loop (still queued and rate-capped). */
  workers: number;
  /** New handshakes waiting for a worker, across sources. */
  maxQueue: number;
  /** New handshakes per second per source; 0: no limit. */
  ratePerSource: number;
  /** Clock in ms (tests). Default performance.now. */
  now?: () => number;
  // --- speed (issue 12): crypto on the event loop while the pool is idle ---
  /** Jobs per second that may run on the event loop while no worker is busy and nothing waits (native ML-KEM and ML-DSA only); 0 (default): never. */
  inlineWhenIdle?: number;
  // --- flood p99 (issue 10): the worker threads' scheduling policy (crypto-worker.ts) ---
  /** Linux: 'idle' SCHED_IDLE where `chrt` allows, else nice +10, with a reserve worker at nice +10 (the starvation guard); 'low': nice +10 only. Default: defaultWorkerPriority (idle with native ML-KEM and ML-DSA, else low). */
  workerPriority?: WorkerPriority;
  /** 'idle': a job with an idle worker longer than this (ms) starts the reserve's rescue (default GUARD_MS by backend). */
  guardMs?: number;
  /**
   * 'idle': how long (ms) the reserve alone keeps serving the queue after an idle worker was
   * last seen late (default GUARD_LINGER_MS). This and guardMs are pool options, not
   * listener ones: a linger of 250 ms, and that with a bound of 20 ms, were tried against
   * the defaults under floods on Node 24 and were not better (docs/benchmarks.md, "Floods").
   */
  guardLingerMs?: number;
  /** Where the workers look for `chrt` (absolute paths only; default crypto-worker.ts's fixed list). For tests of a host without it. */
  chrtPaths?: readonly string[];
  /** A dead thread's first restart backoff, ms (default crypto-restart.ts's RESTART_BACKOFF_MS, x4 each time). For tests of restarts. */
  restartBackoffMs?: number;
}

interface Job {
  source: string;
  request: CryptoRequest;
  resolve: (result: CryptoResult) => void;
  reject: (error: PqmcpError) => void;
  /** Settled (the first of a worker and the reserve to answer a rescued job settles it). */
  done?: boolean;
  /** Handed to the reserve by the starvation guard. */
  rescued?: boolean;
  /** Runners computing it now (two while rescued: its idle worker and the reserve). */
  runs: number;
  /** Runners that died computing it (a thread lost: the job is queued again once; at LOST_MAX it fails). */
  lost: number;
}

/** A job whose runners died this often fails (InternalError): one thread lost is retried, two are not. */
const LOST_MAX = 2;

/** `reserve`, `reserved`, `late`, `reserveRestarts`, `guardFallback`: the starvation guard's ('idle' workers; crypto-guard.ts), 0 without it. */
export interface CryptoPoolStats extends GuardStats {
  /** Live worker threads (0: inline), the reserve not counted. */
  threads: number;
  /** Runners on the event loop now: `workers: 0`, workers that failed at start (which warn once, PQMCP_CRYPTO_POOL), stand-ins for dead workers while their replacement starts, slots given up. */
  inlineSlots: number;
  /** Dead worker threads started again (crypto-restart.ts's budget per slot). */
  workerRestarts: number;
  /** Slots whose restarts were spent: inline for the pool's life (the first one warns, PQMCP_CRYPTO_POOL). */
  slotsGivenUp: number;
  /** Jobs being computed now, by the workers and the reserve (or inline when there are no workers). */
  busy: number;
  /** New handshakes waiting. */
  queued: number;
  /** New handshakes refused busy (rate or queue). */
  refused: number;
  /** Jobs run on the event loop while the pool was idle (`inlineWhenIdle`). */
  inlined: number;
}

export class CryptoPool {
  /** Rate, fair queue, and which job runs next (crypto-queue.ts). */
  private readonly queue: FairQueue<Job>;
  private readonly idle: Runner[] = [];
  private readonly runners = new Set<Runner>();
  private refused = 0;
  private threads = 0;
  private closed = false;
  private readonly now: () => number;
  /** inlineWhenIdle: its budget, whether its one job is running, and how many ran. */
  private readonly inlineBudget: TokenBucket | undefined;
  private inlineBusy = false;
  private inlined = 0;
  /** When a job last found the pool busy or was refused (inlineWhenIdle waits INLINE_QUIET_MS after it). */
  private pressureAt = Number.NEGATIVE_INFINITY;
  /** The starvation guard ('idle' workers that got SCHED_IDLE; crypto-guard.ts). */
  private guard: StarvationGuard<Runner, Job> | undefined;
  private readonly guardMs: number;
  private readonly lingerMs: number;
  private readonly restartBackoffMs: number | undefined;
  /** Runners that stop once their job is answered (replaced: the guard's fallback, a restarted worker). */
  private readonly retiring = new Set<Runner>();
  /** The ordinary worker slots: dead threads restarted (crypto-slots.ts). */
  private readonly slots: WorkerSlots;

  private constructor(
    private readonly backend: CryptoBackend,
    private readonly key: CompositeKeyPair,
    private readonly options: CryptoPoolOptions,
    /** The backend the worker threads build (undefined: inline only). */
    private readonly workerBackend: BackendName | undefined,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.queue = new FairQueue<Job>({ maxQueue: options.maxQueue, ratePerSource: options.ratePerSource, now: this.now, rateNow: () => (this.testRateClock ?? this.now)(), refuse: (job, message) => this.refuse(job, message) });
    // Only where the jobs are cheap (~0.2 ms encapsulation, ~1 ms signature natively): the
    // portable ML-KEM / ML-DSA take many ms a job, which the event loop must not stall for.
    const perSecond = options.inlineWhenIdle ?? 0;
    const native = nativeJobs(backend);
    this.inlineBudget = perSecond > 0 && native ? new TokenBucket(perSecond, perSecond, this.now()) : undefined;
    this.guardMs = options.guardMs ?? (native ? GUARD_MS.native : GUARD_MS.portable);
    this.lingerMs = options.guardLingerMs ?? GUARD_LINGER_MS;
    this.restartBackoffMs = options.restartBackoffMs;
    this.slots = new WorkerSlots({
      now: this.now,
      restartBackoffMs: this.restartBackoffMs,
      closed: () => this.closed,
      guardActive: () => this.guard?.active === true,
      spawn: (priority) => this.spawn(priority),
      threadRunner: (thread, role) => this.threadRunner(thread, role),
      inlineRunner: () => this.inlineRunner(),
      add: (runner) => this.add(runner),
      retire: (runner) => this.retire(runner),
      pump: () => this.pump(),
      warn: warnPool,
    });
  }

  /**
   * Start a pool signing with `key`. `workerBackend` names the backend the workers build
   * (undefined: the caller's backend is an object they cannot rebuild, so work inline).
   */
  static async start(backend: CryptoBackend, workerBackend: BackendName | undefined, key: CompositeKeyPair, options: CryptoPoolOptions): Promise<CryptoPool> {
    for (const name of ['workers', 'maxQueue', 'ratePerSource'] as const) {
      const v = options[name];
      if (!Number.isInteger(v) || v < (name === 'maxQueue' ? 1 : 0)) throw new InvalidArgumentError(`${name === 'workers' ? 'cryptoWorkers' : name === 'maxQueue' ? 'maxCryptoQueue' : 'handshakeRatePerSource'} must be an integer >= ${name === 'maxQueue' ? 1 : 0}`);
    }
    const idle = options.inlineWhenIdle;
    if (idle !== undefined && !(Number.isInteger(idle) && idle >= 0)) throw new InvalidArgumentError('inlineCryptoPerSecond must be an integer >= 0');
    const priority = options.workerPriority ?? defaultWorkerPriority(backend);
    if (priority !== 'idle' && priority !== 'low') throw new InvalidArgumentError("cryptoWorkerPriority must be 'idle' or 'low'");
    const guard = options.guardMs;
    if (guard !== undefined && !(Number.isFinite(guard) && guard >= 1)) throw new InvalidArgumentError('guardMs must be a number >= 1');
    const linger = options.guardLingerMs;
    if (linger !== undefined && !(Number.isFinite(linger) && linger >= 0)) throw new InvalidArgumentError('guardLingerMs must be a number >= 0');
    const chrt = options.chrtPaths;
    if (chrt !== undefined && !chrt.every((path) => typeof path === 'string' && path.startsWith('/'))) throw new InvalidArgumentError('chrtPaths must be absolute paths');
    const pool = new CryptoPool(backend, key, options, workerBackend);
    const count = workerBackend === undefined ? 0 : options.workers;
    // 'idle' (Linux: elsewhere the workers keep their priority): the reserve starts with the others (a thread started when the CPU is already scarce would come late).
    const reserve = count > 0 && priority === 'idle' && process.platform === 'linux' ? 1 : 0;
    /** Ordinary workers that did not start, and why the first did not. */
    let failed = 0;
    let cause: unknown;
    const started = await Promise.all(
      Array.from({ length: count + reserve }, (_, i) =>
        startWorker(workerBackend!, key.seed, i < count ? priority : 'low', chrt).catch((err: unknown) => {
          if (i < count && failed++ === 0) cause = err;
          return undefined;
        }),
      ),
    );
    if (failed > 0) warnPool(`pqmcp: ${failed} of ${count} crypto worker threads did not start (${reason(cause)}); their share of handshake crypto runs on the event loop for the pool's life (stats: inlineSlots)`);
    // Only workers that got SCHED_IDLE can starve: without one (no `chrt`, or it failed) the
    // reserve would be a thread (and a copy of the signing key) with nothing to do.
    const starvable = started.slice(0, count).some((s) => s?.idle === true);
    if (starvable) pool.guard = pool.newGuard();
    let reserveRunner: Runner | undefined;
    for (const [i, s] of started.entries()) {
      // A worker that did not start is inline for good (most likely the host, not a crash); one that started and dies is restarted.
      if (i < count) pool.add(s ? pool.slots.add(pool.threadRunner(s, s.idle ? 'idle' : 'worker')) : pool.inlineRunner());
      else if (s && starvable) pool.add((reserveRunner = pool.threadRunner(s, 'reserve')));
      else if (s) void s.worker.terminate();
    }
    // A reserve that did not start is started again like one that died (crypto-guard.ts).
    pool.guard?.begin(reserveRunner);
    if (count === 0) pool.add(pool.inlineRunner());
    return pool;
  }

  /**
   * @internal Tests only (busy-retry.test.ts, through a listener's edge): when set, the
   * per-source handshake rate (ratePerSource) reads this clock, ms, instead of the pool's, so
   * a test decides when a source's token comes back. Set it before the first handshake.
   */
  testRateClock: (() => number) | undefined;

  /** @internal Tests only (the seam of TestThread): the live worker threads, the reserve included. */
  testThreads(): TestThread[] {
    return [...this.runners].flatMap((r) => (r.test ? [r.test] : []));
  }

  get stats(): CryptoPoolStats {
    const guard = this.guard?.stats ?? { reserve: 0, reserved: 0, late: 0, reserveRestarts: 0, guardFallback: 0 };
    let inline = 0;
    for (const r of this.runners) if (r.role === 'inline') inline++;
    return {
      threads: this.threads,
      inlineSlots: inline,
      workerRestarts: this.slots.restarts,
      slotsGivenUp: this.slots.givenUp,
      ...guard,
      busy: this.runners.size - this.idle.length,
      queued: this.queue.queued,
      refused: this.refused,
      inlined: this.inlined,
    };
  }

  /** Compute `request` for a handshake from `source` (see the policy above). */
  run(source: string, request: CryptoRequest): Promise<CryptoResult> {
    if (this.closed) return Promise.reject(new ClosedError('server is closing'));
    return new Promise<CryptoResult>((resolve, reject) => {
      const job: Job = { source, request, resolve, reject, runs: 0, lost: 0 };
      if (this.inlineBudget && !this.quiet()) this.pressureAt = this.now();
      if (request.op === 'sign') this.queue.continue(job);
      else if (!this.queue.admit(job)) return;
      this.pump();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.guard?.close();
    this.slots.close();
    const error = new ClosedError('server is closing');
    for (const job of this.queue.clear()) job.reject(error);
    const runners = [...this.runners];
    this.runners.clear();
    await Promise.all(runners.map((r) => r.terminate()));
  }

  /**
   * A new handshake refused busy (crypto-queue.ts: rate or queue), before any crypto. A
   * routine flood end (a hello flood past the queue is refused by the hundred a second):
   * built without a stack trace (stackless.ts).
   */
  private refuse(job: Job, message: string): void {
    this.refused++;
    this.pressureAt = this.now();
    job.reject(stackless(() => new ServerBusyError(message)));
  }

  private pump(): void {
    while (!this.closed) {
      const runner = this.nextRunner();
      if (!runner) return;
      const byReserve = runner === this.guard?.reserve;
      const rescue = byReserve ? this.guard!.nextRescue() : undefined;
      const job = rescue ?? this.queue.next();
      if (!job) return;
      if (!rescue && this.mayInline()) {
        this.runInline(job);
        continue;
      }
      this.idle.splice(this.idle.indexOf(runner), 1);
      job.runs++;
      this.guard?.dispatched(runner, job);
      runner.run(job.request).then(
        (result) => {
          job.runs--;
          if (job.done) discardCryptoResult(result);
          else this.settle(job, () => job.resolve(result));
        },
        (err: unknown) => {
          job.runs--;
          this.failed(job, err, byReserve);
        },
      );
    }
  }

  /**
   * One of `job`'s runners failed. A job's own error (a bad key share) settles it. A thread
   * that died is not the job's fault: while its other runner (a rescued job's idle worker
   * or reserve) still computes it, the job waits for that one (a job the reserve lost may
   * be rescued again); with none left it is queued again, ahead of new handshakes, once;
   * a job that lost LOST_MAX runners fails (InternalError). Nothing accepted is dropped.
   */
  private failed(job: Job, err: unknown, byReserve: boolean): void {
    if (job.done) return;
    if (err instanceof ThreadLostError && !this.closed) {
      job.lost++;
      if (byReserve) job.rescued = false;
      if (job.runs > 0) return;
      if (job.lost < LOST_MAX) {
        this.guard?.forget(job);
        job.rescued = false;
        this.queue.retry(job);
        this.pump();
        return;
      }
    }
    this.settle(job, () => job.reject(err instanceof PqmcpError ? err : new InternalError('handshake crypto failed')));
  }

  /** Settle `job` once (a rescued job is answered by whichever of its two runners is first). */
  private settle(job: Job, fn: () => void): void {
    if (job.done) return;
    job.done = true;
    fn();
  }

  /** The runner for the next job, or none: any idle one, or the guard's choice (crypto-guard.ts). */
  private nextRunner(): Runner | undefined {
    return this.guard ? this.guard.nextRunner(this.idle) : this.idle[this.idle.length - 1];
  }

  /** A guard for the pool's 'idle' workers (crypto-guard.ts), with what it needs of the pool. */
  private newGuard(): StarvationGuard<Runner, Job> {
    return new StarvationGuard<Runner, Job>(
      {
        now: this.now,
        restartBackoffMs: this.restartBackoffMs,
        closed: () => this.closed,
        pump: () => this.pump(),
        startReserve: () => this.startReserve(),
        fallBack: () => this.slots.fallBack(),
        warn: (text) => process.emitWarning(text, { code: 'PQMCP_CRYPTO_GUARD' }),
      },
      { guardMs: this.guardMs, lingerMs: this.lingerMs },
    );
  }

  /**
   * Start one more worker thread (every one through startWorker: its seed copy is wiped);
   * rejects when it does not start, or the pool closed meanwhile (the thread is then stopped).
   */
  private async spawn(priority: WorkerPriority): Promise<StartedThread> {
    if (this.workerBackend === undefined || this.closed) throw new ClosedError('server is closing');
    const thread = await startWorker(this.workerBackend, this.key.seed, priority, this.options.chrtPaths);
    if (this.closed) {
      void thread.worker.terminate();
      throw new ClosedError('server is closing');
    }
    return thread;
  }

  /** Start a reserve (nice +10) for the guard, which hears of it before it takes a job. */
  private async startReserve(): Promise<Runner> {
    const runner = this.threadRunner(await this.spawn('low'), 'reserve');
    this.guard?.restarted(runner);
    this.add(runner);
    this.pump();
    return runner;
  }

  /** `runner` takes no more jobs and stops, now or once its job is answered. */
  private retire(runner: Runner): void {
    if (!this.runners.has(runner)) return;
    const i = this.idle.indexOf(runner);
    if (i < 0) return void this.retiring.add(runner);
    this.idle.splice(i, 1);
    this.stop(runner);
    this.pump();
  }

  /** Remove `runner` and stop its thread (its job, if any, fails with ClosedError). */
  private stop(runner: Runner): void {
    if (this.runners.delete(runner) && runner.role !== 'reserve' && runner.role !== 'inline') this.threads--;
    void runner.terminate();
  }

  /** No worker computing, nothing waiting, nothing on the event loop. */
  private quiet(): boolean {
    return !this.inlineBusy && this.idle.length === this.runners.size && this.queue.empty;
  }

  /** inlineWhenIdle: worker threads, the pool quiet and not busy for INLINE_QUIET_MS, and a token. */
  private mayInline(): boolean {
    if (!this.inlineBudget || this.threads === 0 || !this.quiet()) return false;
    const now = this.now();
    if (now - this.pressureAt < INLINE_QUIET_MS) return false;
    return this.inlineBudget.tryTake(now);
  }

  /** Run `job` on the event loop on the next turn (the pool was idle: no thread hop). */
  private runInline(job: Job): void {
    this.inlineBusy = true;
    this.inlined++;
    setImmediate(() => {
      try {
        job.resolve(computeInline(this.backend, this.key, job.request));
      } catch (err) {
        job.reject(err instanceof PqmcpError ? err : new InternalError('handshake crypto failed'));
      } finally {
        this.inlineBusy = false;
        this.pump();
      }
    });
  }

  private add(runner: Runner): void {
    this.runners.add(runner);
    this.idle.push(runner);
  }

  private release(runner: Runner): void {
    this.guard?.released(runner);
    if (this.retiring.delete(runner)) this.stop(runner);
    if (!this.runners.has(runner)) return;
    this.idle.push(runner);
    this.pump();
  }

  private inlineRunner(): Runner {
    const runner: Runner = {
      role: 'inline',
      run: (request) =>
        new Promise<CryptoResult>((resolve, reject) => {
          setImmediate(() => {
            try {
              resolve(computeInline(this.backend, this.key, request));
            } catch (err) {
              reject(err);
            } finally {
              this.release(runner);
            }
          });
        }),
      terminate: async () => {},
    };
    return runner;
  }

  /** A runner over a started worker thread (crypto-threads.ts); its death is handled here. */
  private threadRunner(thread: StartedThread, role: 'worker' | 'idle' | 'reserve'): Runner {
    if (role !== 'reserve') this.threads++;
    const runner = threadRunner(thread, role, { free: (r) => this.release(r), died: (r) => this.died(r) });
    if (role === 'idle') this.guard?.idleWorkers.add(runner);
    return runner;
  }

  /**
   * `runner`'s thread died (its job, if any, failed with ThreadLostError: see failed()). A
   * dead reserve is the guard's to restart. A dead worker's slot gets an inline stand-in
   * at once and its thread back later (crypto-slots.ts); a retiring one was replaced already.
   */
  private died(runner: Runner): void {
    if (!this.runners.delete(runner)) return;
    if (runner.role !== 'reserve') this.threads--;
    const i = this.idle.indexOf(runner);
    if (i >= 0) this.idle.splice(i, 1);
    this.guard?.died(runner);
    if (runner.role !== 'reserve' && !this.retiring.delete(runner) && !this.closed) {
      const standIn = this.inlineRunner();
      this.slots.died(runner, standIn);
      this.add(standIn);
    }
    this.pump();
  }
}

/** The pool's one operator-visible line per cause (workers that did not start, a slot given up). */
function warnPool(text: string): void {
  process.emitWarning(text, { code: 'PQMCP_CRYPTO_POOL' });
}

/** Why a thread did not start, in one short line (a load error's first line: a module not found, a throw at load). */
function reason(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const line = text.split('\n', 1)[0]!;
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}

/**
 * The worker threads' default scheduling: 'idle' (with the starvation guard) where ML-KEM
 * and ML-DSA are native (jobs of ~0.2-1 ms: an idle worker that is preempted costs a
 * handshake little, and the established sessions' tail loses the worker's time slice);
 * 'low' with the portable ones (~23 ms jobs, which SCHED_IDLE stretches on a loaded host).
 */
export function defaultWorkerPriority(backend: CryptoBackend): WorkerPriority {
  return nativeJobs(backend) ? 'idle' : 'low';
}

/** Native ML-KEM and ML-DSA (Node >= 24.7): a job takes ~0.2-1 ms, not many. */
function nativeJobs(backend: CryptoBackend): boolean {
  return backend.report.mlkem === 'native' && backend.report.mldsa === 'native';
}

function computeInline(backend: CryptoBackend, key: CompositeKeyPair, request: CryptoRequest): CryptoResult {
  if (request.op === 'encapsulate') return { op: 'encapsulate', ...backend.xwing.encapsulate(request.publicKey, request.randomness) };
  return { op: 'sign', signature: compositeSign(backend, key, request.message, request.context, request.randomness) };
}
