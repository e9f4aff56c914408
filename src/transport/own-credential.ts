/**
 * A listener's own credential, renewed while it runs (`PqmcpServer.setCredential`): the
 * checks a renewed credential must pass before any handshake presents it.
 *
 *   const renewed = renewedIdentity(current, credential, clock);   // throws, or the new identity
 *
 * Sharp edges:
 * - Renewal, not re-keying: the credential must be for the key the listener already holds
 *   (its crypto workers hold that key, and peers may pin its fingerprint), under the same
 *   agent id (a different id is a different server to every client that expects it). The
 *   key pair kept is the listener's own, never one passed in beside the credential.
 * - It must permit the server role and be inside its validity window now, by the listener's
 *   clock and without the clock skew allowed to peers: a credential that is not valid yet,
 *   or no longer, is refused here rather than by every client.
 * - The issuer may change (a credential re-issued by another trusted issuer); whether the
 *   clients trust it is theirs to decide, as at start.
 */
import { copyBytes, equalBytes } from '../bytes.js';
import { decodeCredential, usagePermits } from '../identity/credential.js';
import type { Credential } from '../identity/credential.js';
import type { EncodedLocalIdentity } from '../handshake/types.js';
import { CredentialExpiredError, CredentialNotYetValidError, CredentialUsageError, InvalidArgumentError } from '../errors.js';
import type { Clock } from './clock.js';

/** The identity to present from now on: the same key pair, the renewed credential (encoded). */
export function renewedIdentity(current: EncodedLocalIdentity, credential: Uint8Array | Credential, clock: Clock): EncodedLocalIdentity {
  const encoded = credential instanceof Uint8Array ? credential : (credential as Credential | undefined)?.encoded;
  if (!(encoded instanceof Uint8Array)) throw new InvalidArgumentError('credential must be encoded bytes or a decoded Credential');
  const next = decodeCredential(encoded);
  const now = decodeCredential(current.credential);
  if (!equalBytes(next.publicKey, current.keyPair.publicKey)) {
    throw new InvalidArgumentError("the renewed credential is for another key than this listener's: a new key needs a new listener (and clients that pin this key must be told)");
  }
  if (next.agentId !== now.agentId) {
    throw new InvalidArgumentError(`the renewed credential names agent ${JSON.stringify(next.agentId)}, not this listener's ${JSON.stringify(now.agentId)}`);
  }
  if (!usagePermits(next.usage, 'server')) {
    throw new CredentialUsageError(next.usage, 'server', `the renewed credential has usage ${next.usage}; it may not act as a server`);
  }
  const t = clock.now() / 1000;
  if (t > next.notAfter) throw new CredentialExpiredError(next.notAfter);
  if (t < next.notBefore) throw new CredentialNotYetValidError(next.notBefore);
  // A copy (copyBytes: a Buffer's slice() is a view): the caller's array may be reused or
  // wiped; what handshakes present must not change.
  return { keyPair: current.keyPair, credential: copyBytes(encoded) };
}
