/**
 * The crypto pool's worker thread: holds the server's composite key (re-derived from its
 * seed, passed once in workerData) and answers encapsulate / sign requests.
 *
 * Sharp edges:
 * - Requests carry only public inputs (and, in known-answer tests, explicit randomness);
 *   the key never crosses the thread boundary again.
 * - Errors go back as { code, message } of the PqmcpError thrown (the pool rebuilds a typed
 *   error); anything else as ERR_INTERNAL with a constant message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { selectBackend } from '../crypto/select.js';
import type { BackendName } from '../crypto/types.js';
import { compositeKeygen, compositeSign } from '../crypto/composite.js';
import { PqmcpError } from '../errors.js';
import type { CryptoRequest, CryptoResult } from '../handshake/types.js';

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
