/**
 * A deferred handshake step (a server Session with `deferCrypto`): the Session's crypto
 * request goes to the Connection's `oncompute` hook (the listener's crypto pool), and the
 * Session resumes with its result.
 *
 * Sharp edges:
 * - Reading pauses ('compute', read-pause.ts) while the step is out: nothing the peer sends
 *   is processed before the result.
 * - A result that comes after the connection ended (closed or failed meanwhile) is
 *   discarded, its secrets wiped (discardCryptoResult); a rejection then is ignored.
 * - A rejection ends the connection with that error, typed (toPqmcpError; its alert goes to
 *   the peer). A 'compute' event without a hook is an InternalError.
 */
import { InternalError, toPqmcpError, type PqmcpError } from '../errors.js';
import { discardCryptoResult, type CryptoRequest, type CryptoResult } from '../handshake/types.js';
import type { ReadPause } from './read-pause.js';

export type ComputeHook = (request: CryptoRequest) => Promise<CryptoResult>;

export interface DeferredStepHost {
  readonly reading: ReadPause;
  /** The connection neither closed nor failed. */
  live(): boolean;
  /** Resume the Session with the result. */
  resume(result: CryptoResult): void;
  /** End the connection with `error` (and its alert). */
  fail(error: PqmcpError): void;
}

export function runDeferredStep(run: ComputeHook | undefined, request: CryptoRequest, host: DeferredStepHost): void {
  if (!run) return host.fail(new InternalError('deferred handshake step without a compute hook'));
  const settle = (): boolean => {
    host.reading.set('compute', false);
    return host.live();
  };
  host.reading.set('compute', true);
  run(request).then(
    (result) => {
      if (settle()) host.resume(result);
      else discardCryptoResult(result);
    },
    (err: unknown) => {
      if (settle()) host.fail(toPqmcpError(err));
    },
  );
}
