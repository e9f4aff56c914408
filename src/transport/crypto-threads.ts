/**
 * The crypto pool's worker threads, seen from the main thread (crypto-pool.ts decides who
 * runs what; crypto-worker.ts is the thread's side): starting one, and a runner that posts
 * it one job at a time and hears its answers and its death.
 *
 * Sharp edges:
 * - A thread gets the key seed once, in workerData. The Worker constructor clones it; this
 *   thread's copy is wiped at once, and the worker wipes its own once it holds the key.
 *   Every thread the pool starts (at start, a restarted reserve, the guard's fallback
 *   workers) goes through startWorker, so every copy is wiped alike.
 * - From its ready message until a runner takes it, a started thread keeps listeners of its
 *   own: an 'error' then does not crash the process, and a thread that died meanwhile gives
 *   a runner that reports the death at once instead of one over a dead thread, whose jobs
 *   would never be answered (review 7, item 8).
 * - A thread that dies (its 'error' or 'exit') fails the job it was computing with
 *   ThreadLostError (an InternalError: the pool decides whether another runner takes the
 *   job) and calls `died` once. terminate() (close, or a retired worker) fails that job with
 *   ClosedError and calls nothing.
 * - From TypeScript sources (tests, tsx) the worker loads crypto-worker.ts through tsx
 *   (about 1 s of CPU per thread here: tsx registers its hooks and transforms the worker's
 *   modules in every thread), or, when `PQMCP_SOURCE_CRYPTO_WORKER` names a file, starts
 *   that file: a bundle of crypto-worker.ts built from the same sources (the test run builds
 *   one, test/helpers/worker-bundle.ts; about a quarter of the CPU per thread). From the
 *   build, always dist/crypto-worker.js (beside the bundle that holds this module): the
 *   variable is never read there.
 * - The test seam (TestThread) holds a thread's answers and kills it; it is reachable only
 *   through CryptoPool.testThreads(), which is internal (the pool is not exported).
 */
import { Worker } from 'node:worker_threads';
import { ClosedError, InternalError, InvalidArgumentError, InvalidKeyError, PqmcpError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { BackendName } from '../crypto/types.js';
import { discardCryptoResult, type CryptoRequest, type CryptoResult } from '../handshake/types.js';
import { copyBytes } from '../bytes.js';

/** The crypto worker threads' scheduling on Linux (crypto-worker.ts); ignored elsewhere. */
export type WorkerPriority = 'idle' | 'low';

/** What a runner is: a worker thread at nice +10 ('worker'), a SCHED_IDLE one ('idle'), the guard's reserve, or the event loop. */
export type RunnerRole = 'worker' | 'idle' | 'reserve' | 'inline';

export interface Runner {
  readonly role: RunnerRole;
  run(request: CryptoRequest): Promise<CryptoResult>;
  /** Stop it (its job, if any, fails with ClosedError; `died` is not called). */
  terminate(): Promise<void>;
  /** Worker threads only: the test seam. */
  readonly test?: TestThread;
}

/** A worker thread died with the job: not the job's own failure (the pool may give it to another runner). */
export class ThreadLostError extends InternalError {}

/**
 * @internal Tests only (test/transport/crypto-pool.test.ts), from CryptoPool.testThreads():
 * one live worker thread, to make it die at a chosen moment. Not in the public API
 * (the pool is not exported from the package).
 */
export interface TestThread {
  readonly role: 'worker' | 'idle' | 'reserve';
  /** Computing a job now. */
  readonly busy: boolean;
  /** Keep its answers from the pool until release() (the job stays in flight, as with a slow thread). */
  hold(): void;
  release(): void;
  /** The thread dies now (worker.terminate()); what it answered and was held, or answers after this, is lost with it. Resolves after its 'exit'. */
  kill(): Promise<void>;
}

/** A started thread, not yet a runner's. */
export interface StartedThread {
  worker: Worker;
  /** It runs SCHED_IDLE (asked for with 'idle' and granted). */
  idle: boolean;
  /** Until a runner takes it: whether it died since it was ready, and the listeners that note it. */
  gone: boolean;
  readonly detach: () => void;
}

/** Running from TypeScript sources: a bundle of crypto-worker.ts if one is named, else the source through tsx. */
function fromSources(here: string, workerData: unknown): Worker {
  const bundle = process.env['PQMCP_SOURCE_CRYPTO_WORKER'];
  if (bundle) return new Worker(bundle, { workerData });
  return new Worker(`import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(new URL('./crypto-worker.ts', here).href)}); })`, { eval: true, workerData });
}

/** Start one worker thread and wait until it holds the key. */
export function startWorker(backend: BackendName, seed: Uint8Array, priority: WorkerPriority, chrtPaths: readonly string[] | undefined): Promise<StartedThread> {
  const here = import.meta.url;
  const workerData = { backend, seed: copyBytes(seed), priority, ...(chrtPaths ? { chrtPaths: [...chrtPaths] } : {}) };
  const worker = here.endsWith('.ts') ? fromSources(here, workerData) : new Worker(new URL('./crypto-worker.js', here), { workerData });
  // The Worker constructor has serialised workerData for the new thread (which wipes its own
  // copy once it holds the key): this thread's copy of the seed is not needed any more.
  workerData.seed.fill(0);
  worker.unref();
  return new Promise((resolve, reject) => {
    const fail = (err: unknown): void => {
      void worker.terminate();
      reject(err instanceof Error ? err : new Error('crypto worker did not start'));
    };
    worker.once('error', fail);
    worker.once('exit', fail);
    worker.once('message', (ready: { idle?: unknown }) => {
      worker.off('error', fail);
      worker.off('exit', fail);
      const started: StartedThread = {
        worker,
        idle: ready?.idle === true,
        gone: false,
        detach: () => {
          worker.off('error', gone);
          worker.off('exit', gone);
        },
      };
      const gone = (): void => void (started.gone = true);
      worker.on('error', gone);
      worker.on('exit', gone);
      resolve(started);
    });
  });
}

/**
 * A runner over `thread`: one job at a time; `free` once a job is answered (or failed by
 * the thread), `died` once if the thread dies (error or exit, not terminate()).
 */
export function threadRunner(thread: StartedThread, role: 'worker' | 'idle' | 'reserve', on: { free(runner: Runner): void; died(runner: Runner): void }): Runner {
  const { worker } = thread;
  let pending: { resolve: (r: CryptoResult) => void; reject: (e: PqmcpError) => void } | undefined;
  let id = 0;
  let stopped = false;
  type Answer = { id: number; result?: CryptoResult; error?: { code: ErrorCode; message: string } };
  // The test seam: answers held back, and none taken once the thread is killed.
  let held: Answer[] | undefined;
  let killed = false;
  const answer = (m: Answer): void => {
    if (killed) {
      if (m.result) discardCryptoResult(m.result);
      return;
    }
    if (held) return void held.push(m);
    if (m.id !== id || !pending) return;
    const p = pending;
    pending = undefined;
    if (m.error) p.reject(rebuild(m.error));
    else p.resolve(m.result!);
    on.free(runner);
  };
  const died = (): void => {
    if (stopped) return;
    stopped = true;
    pending?.reject(new ThreadLostError('handshake crypto worker stopped'));
    pending = undefined;
    on.died(runner);
  };
  const runner: Runner = {
    role,
    run: (request) =>
      new Promise<CryptoResult>((resolve, reject) => {
        // A dead thread would never answer (the pool stops giving it jobs once told).
        if (stopped) return reject(new ThreadLostError('handshake crypto worker stopped'));
        pending = { resolve, reject };
        worker.postMessage({ id: ++id, request });
      }),
    terminate: async () => {
      // Its 'exit' finds it stopped (died does nothing): the job it computes is failed here.
      stopped = true;
      pending?.reject(new ClosedError('server is closing'));
      pending = undefined;
      await worker.terminate();
    },
    test: {
      role,
      get busy() {
        return pending !== undefined;
      },
      hold: () => void (held ??= []),
      release: () => {
        const answers = held ?? [];
        held = undefined;
        for (const m of answers) answer(m);
      },
      kill: async () => {
        killed = true;
        for (const m of held?.splice(0) ?? []) answer(m);
        await worker.terminate();
      },
    },
  };
  worker.on('message', answer);
  worker.on('error', died);
  worker.on('exit', died);
  thread.detach();
  // Died between its ready message and now: reported as soon as the caller has the runner.
  if (thread.gone) queueMicrotask(died);
  return runner;
}

/** The typed error a worker reported (only the codes its work can raise; else internal). */
function rebuild(error: { code: ErrorCode; message: string }): PqmcpError {
  if (error.code === 'ERR_INVALID_KEY') return new InvalidKeyError(error.message);
  if (error.code === 'ERR_INVALID_ARGUMENT') return new InvalidArgumentError(error.message);
  return new InternalError('handshake crypto failed');
}
