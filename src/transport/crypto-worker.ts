/**
 * The crypto pool's worker thread: holds the server's composite key (re-derived from its
 * seed, passed once in workerData) and answers encapsulate / sign requests.
 *
 * Sharp edges:
 * - Requests carry only public inputs (and, in known-answer tests, explicit randomness);
 *   the key never crosses the thread boundary again.
 * - Errors go back as { code, message } of the PqmcpError thrown (the pool rebuilds a typed
 *   error); anything else as ERR_INTERNAL with a constant message.
 * - On Linux the thread lowers its own scheduling priority (nice + WORKER_NICE, at most 19;
 *   there nice is per thread, and setpriority on "this process" means this thread): on a contended host
 *   the event loop, and the established sessions it serves, win a core over handshake
 *   crypto. Elsewhere (where it would renice the whole process) it is left alone.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { getPriority, setPriority } from 'node:os';
import { selectBackend } from '../crypto/select.js';
import type { BackendName } from '../crypto/types.js';
import { compositeKeygen, compositeSign } from '../crypto/composite.js';
import { PqmcpError } from '../errors.js';
import type { CryptoRequest, CryptoResult } from '../handshake/types.js';

/** The worker thread's nice value on Linux (A/B under the replay flood on Node 24: honest handshake 1.9x -> 1.1x idle, flooded call p99 4.4 -> 2.8 ms). */
export const WORKER_NICE = 10;

if (process.platform === 'linux') {
  try {
    setPriority(Math.min(19, getPriority() + WORKER_NICE));
  } catch {
    // Not permitted here: run at the default priority.
  }
}

const { backend: choice, seed } = workerData as { backend: BackendName; seed: Uint8Array };
const backend = selectBackend(choice);
const key = compositeKeygen(backend, seed);
seed.fill(0);

function compute(request: CryptoRequest): CryptoResult {
  if (request.op === 'encapsulate') return { op: 'encapsulate', ...backend.xwing.encapsulate(request.publicKey, request.randomness) };
  return { op: 'sign', signature: compositeSign(backend, key, request.message, request.context, request.randomness) };
}

parentPort!.on('message', ({ id, request }: { id: number; request: CryptoRequest }) => {
  try {
    parentPort!.postMessage({ id, result: compute(request) });
  } catch (err) {
    const error = err instanceof PqmcpError ? { code: err.code, message: err.message } : { code: 'ERR_INTERNAL', message: 'internal error' };
    parentPort!.postMessage({ id, error });
  }
});
parentPort!.postMessage({ ready: true });
