/**
 * Ends an established session when its credentials do: both sides arm one timer for the
 * earliest of the peer credential's notAfter, this side's own notAfter (each plus the
 * allowed clock skew, the same window the handshake checked) and the optional maximum
 * session lifetime; and they re-check the peer whenever the trust store changes
 * (revocation added, issuer removed, pin added), closing the session if it is no longer
 * trusted. The end is an alert with a typed reason (SessionExpiredError,
 * SessionUntrustedError) that the peer receives as PeerAlertError with that alert.
 *
 * Sharp edges:
 * - Both sides check both credentials, so the session ends on time even if the other side
 *   runs an older pqmcp or a slow clock: whichever fires first sends the alert. (An own
 *   credential that had already expired when the session began is left to the peer, which
 *   refuses it in the handshake.)
 * - The timer uses the injected Clock: a test clock moves time and fires it.
 * - A re-check costs no signature (TrustStore.recheckCredential: the bytes were verified in
 *   this session's handshake); it runs once per batch of changes.
 * - stop() (on close) cancels the timer and unsubscribes from the store.
 */
import type { CryptoBackend } from '../crypto/types.js';
import { CredentialError, SessionExpiredError, SessionUntrustedError, toPqmcpError } from '../errors.js';
import type { PqmcpError } from '../errors.js';
import type { TrustStore, VerifiedPeer } from '../identity/trust.js';
import type { Clock } from './clock.js';
import { decodeCredential } from '../identity/credential.js';
import type { LocalIdentity } from '../handshake/types.js';
import type { ResolvedOptions } from './options.js';

export interface GuardOptions {
  clock: Clock;
  trust: TrustStore;
  backend: CryptoBackend;
  /** Seconds added to every notAfter (the handshake's clockSkewSeconds). */
  clockSkewSeconds: number;
  /** This side's credential notAfter (Unix seconds). */
  ownNotAfter: number;
  /** 0: no limit. */
  maxSessionLifetimeMs: number;
}

export class SessionGuard {
  private timer: unknown;
  private readonly unsubscribe: () => void;
  private stopped = false;

  constructor(
    private readonly options: GuardOptions,
    private readonly peer: VerifiedPeer,
    /** Ends the session with the typed reason (Connection.abort). */
    private readonly end: (error: PqmcpError) => void,
  ) {
    const { clock, clockSkewSeconds, ownNotAfter, maxSessionLifetimeMs } = options;
    const start = clock.now();
    const deadlines: [SessionExpiredError['reason'], number][] = [['peer-credential', (peer.notAfter + clockSkewSeconds) * 1000]];
    // Our own credential already expired: the peer refuses us (its alert says why); a
    // timer of ours would only race its alert with a less precise reason.
    const own = (ownNotAfter + clockSkewSeconds) * 1000;
    if (own >= start) deadlines.push(['own-credential', own]);
    if (maxSessionLifetimeMs > 0) deadlines.push(['lifetime', start + maxSessionLifetimeMs]);
    const [reason, at] = deadlines.reduce((a, b) => (b[1] < a[1] ? b : a));
    // The window is inclusive (trust.ts): the session ends once now > notAfter + skew.
    const expire = (): void => {
      if (clock.now() <= at && reason !== 'lifetime') {
        this.timer = clock.schedule(expire, at - clock.now() + 1);
        return;
      }
      this.finish(new SessionExpiredError(reason, at));
    };
    this.timer = clock.schedule(expire, Math.max(0, at - start + (reason === 'lifetime' ? 0 : 1)));
    this.unsubscribe = options.trust.onChange(() => this.recheck());
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.options.clock.cancel(this.timer);
    this.unsubscribe();
  }

  private recheck(): void {
    if (this.stopped) return;
    try {
      const { trust, backend, clock, clockSkewSeconds } = this.options;
      trust.recheckCredential(backend, this.peer.credential.encoded, { now: clock.now, clockSkewSeconds });
    } catch (err) {
      this.finish(err instanceof CredentialError ? new SessionUntrustedError(err) : toPqmcpError(err));
    }
  }

  private finish(error: PqmcpError): void {
    if (this.stopped) return;
    this.stop();
    this.end(error);
  }
}

/** The guard options of a transport or listener. */
export function guardOptions(resolved: ResolvedOptions, trust: TrustStore, backend: CryptoBackend, identity: LocalIdentity): GuardOptions {
  const own = identity.credential instanceof Uint8Array ? decodeCredential(identity.credential) : decodeCredential(identity.credential.encoded);
  return {
    clock: resolved.clock,
    trust,
    backend,
    clockSkewSeconds: resolved.clockSkewSeconds,
    ownNotAfter: own.notAfter,
    maxSessionLifetimeMs: resolved.maxSessionLifetimeMs,
  };
}
