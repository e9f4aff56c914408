/**
 * The client's X-Wing key shares made ahead of time, so that generating one (ML-KEM-768 key
 * generation and an X25519 key: ~0.25 ms natively, several ms on the portable backend) is
 * not on the handshake's critical path. The handshake state machine stays pure: it is given
 * the key pair (HandshakeConfig.ephemeralKeyPair); making it ahead is this module's job.
 *
 *   take()     the key pair made ahead for this backend, if one is ready (removed: it is
 *              handed out once)
 *   soon()     a new key pair made on a later turn of the event loop, so that I/O started
 *              in this turn (the WebSocket's connect) goes first
 *   prepare()  make the next one on a later turn, unless one is ready or being made: the
 *              client calls it once its ClientHello is written, while it waits for the server
 *
 * Sharp edges:
 * - At most one key pair waits per backend object. A key pair leaves the pool in take() or
 *   soon() and never comes back: each keys one handshake (the state machine also refuses a
 *   key pair it was given before). A failed connection attempt drops the one it took.
 * - A waiting key pair is secret material held in memory until the next connection (ML-KEM
 *   private key inside node:crypto, or the seed on the portable backend). It protects no
 *   session yet; the handshake that uses it disposes of it (xwing.dispose), and a failed
 *   connection attempt disposes of the one it took.
 * - Nothing here keeps a process alive longer than one turn.
 */
import type { CryptoBackend, XWingKeyPair } from '../crypto/types.js';
import { defer } from './timers.js';

export class KeySharePool {
  private readonly ready = new WeakMap<CryptoBackend, XWingKeyPair>();
  private readonly making = new WeakSet<CryptoBackend>();

  /** The key pair made ahead for `backend`, removed from the pool; undefined if none is ready. */
  take(backend: CryptoBackend): XWingKeyPair | undefined {
    const kp = this.ready.get(backend);
    this.ready.delete(backend);
    return kp;
  }

  /** A fresh key pair, made on a later turn (work already started in this turn goes first). */
  soon(backend: CryptoBackend): Promise<XWingKeyPair> {
    return new Promise((resolve, reject) =>
      defer(() => {
        try {
          resolve(generate(backend));
        } catch (err) {
          reject(err);
        }
      }),
    );
  }

  /** Make the next key pair for `backend` on a later turn, unless one is ready or on its way. */
  prepare(backend: CryptoBackend): void {
    if (this.ready.has(backend) || this.making.has(backend)) return;
    this.making.add(backend);
    defer(() => {
      this.making.delete(backend);
      if (this.ready.has(backend)) return;
      try {
        this.ready.set(backend, generate(backend));
      } catch {
        // Nothing waits for it: the next connection makes its own (and reports any error).
      }
    });
  }
}

function generate(backend: CryptoBackend): XWingKeyPair {
  const seed = backend.randomBytes(32);
  try {
    return backend.xwing.keygen(seed); // keeps its own copy
  } finally {
    seed.fill(0);
  }
}

/** The process-wide pool the client transport uses. */
export const keyShares = new KeySharePool();
