/**
 * The crypto pool's worker thread: holds the server's composite key (re-derived from its
 * seed, passed once in workerData) and answers encapsulate / sign requests.
 *
 * Sharp edges:
 * - Requests carry only public inputs (and, in known-answer tests, explicit randomness);
 *   the key never crosses the thread boundary again. An encapsulation's shared secret
 *   crosses it once, as a copy: the worker's own is wiped once posted.
 * - Errors go back as { code, message } of the PqmcpError thrown (the pool rebuilds a typed
 *   error); anything else as ERR_INTERNAL with a constant message.
 * - On Linux the thread lowers its own scheduling priority (nice + WORKER_NICE, at most 19;
 *   there nice is per thread, and setpriority on "this process" means this thread): on a contended host
 *   the event loop, and the established sessions it serves, win a core over handshake
 *   crypto. Elsewhere (where it would renice the whole process) it is left alone.
 * - With `priority: 'idle'` (the default with native ML-KEM and ML-DSA) it then asks for SCHED_IDLE, through `chrt` (util-linux
 *   or BusyBox, looked up at fixed paths only, never on PATH; Node has no call for it): a
 *   nice value only shares the CPU out, and a woken event loop still waits for the worker's
 *   time slice to run out (about 1 ms, one signature), while any thread of normal policy
 *   that wakes takes the CPU from a SCHED_IDLE one at once. The cost: while normal threads of
 *   its scheduling group (its process, its autogroup or cgroup) keep every core busy, the
 *   worker runs only in the kernel's minimal share (the pool's starvation guard then hands
 *   late jobs to a reserve worker at nice +10: crypto-guard.ts). Without `chrt`, or where it
 *   fails, the nice value stays. docs/benchmarks.md ("Floods") has the measurements.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { getPriority, setPriority } from 'node:os';
import { execFile } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { selectBackend } from '../crypto/select.js';
import type { BackendName } from '../crypto/types.js';
import { compositeKeygen, compositeSign } from '../crypto/composite.js';
import { PqmcpError } from '../errors.js';
import { discardCryptoResult, type CryptoRequest, type CryptoResult } from '../handshake/types.js';
import type { WorkerPriority } from './crypto-threads.js';

/** The worker thread's nice value on Linux (A/B under the replay flood on Node 24: honest handshake 1.9x -> 1.1x idle, flooded call p99 4.4 -> 2.8 ms). */
export const WORKER_NICE = 10;

/** Where `chrt` may be (absolute paths only: a library does not run whatever PATH names). */
const CHRT = ['/usr/bin/chrt', '/bin/chrt', '/usr/sbin/chrt', '/sbin/chrt'];

/**
 * Ask `chrt` (the first of `paths` that exists) for SCHED_IDLE for this thread; resolves
 * once it is done: true when it succeeded, false otherwise (nice +10 then stays). Never rejects.
 */
function idlePolicy(paths: readonly string[]): Promise<boolean> {
  let tid: string | undefined;
  try {
    tid = readlinkSync('/proc/thread-self').split('/').pop();
  } catch {
    return Promise.resolve(false);
  }
  const chrt = paths.find((path) => path.startsWith('/') && existsSync(path));
  if (!chrt || !tid || !/^\d+$/.test(tid)) return Promise.resolve(false);
  return new Promise((resolve) => {
    execFile(chrt, ['-i', '-p', '0', tid], { timeout: 5_000 }, (err) => resolve(err === null));
  });
}

const { backend: choice, seed, priority, chrtPaths } = workerData as { backend: BackendName; seed: Uint8Array; priority: WorkerPriority; chrtPaths?: string[] };

if (process.platform === 'linux') {
  try {
    setPriority(Math.min(19, getPriority() + WORKER_NICE));
  } catch {
    // Not permitted here: run at the default priority.
  }
}

const backend = selectBackend(choice);
const key = compositeKeygen(backend, seed);
seed.fill(0);
// After the seed is wiped (chrt may take up to its timeout), before the pool is told we are ready.
const idle = process.platform === 'linux' && priority === 'idle' ? await idlePolicy(chrtPaths ?? CHRT) : false;

function compute(request: CryptoRequest): CryptoResult {
  if (request.op === 'encapsulate') return { op: 'encapsulate', ...backend.xwing.encapsulate(request.publicKey, request.randomness) };
  return { op: 'sign', signature: compositeSign(backend, key, request.message, request.context, request.randomness) };
}

parentPort!.on('message', ({ id, request }: { id: number; request: CryptoRequest }) => {
  try {
    const result = compute(request);
    try {
      parentPort!.postMessage({ id, result });
    } finally {
      // postMessage sent a copy (the main thread wipes it once used): this one is wiped now.
      discardCryptoResult(result);
    }
  } catch (err) {
    const error = err instanceof PqmcpError ? { code: err.code, message: err.message } : { code: 'ERR_INTERNAL', message: 'internal error' };
    parentPort!.postMessage({ id, error });
  }
});
// `idle`: this thread runs SCHED_IDLE (the pool keeps its starvation guard's reserve only then).
parentPort!.postMessage({ ready: true, idle });
