/**
 * Review 2: the key pair given as `ephemeralKeyPair` must not stay reachable from the
 * session once its ServerHello is processed, and (F1 follow-up, F5) it must be disposed of:
 * the native X-Wing key pair carries its expanded decapsulation key (ML-KEM and X25519
 * private keys), which wiping the seed did not touch, so anyone still holding the object
 * (a reference kept by a caller, a failed session) could decapsulate the recorded
 * ServerHello and derive every traffic key of the session from its start. Now the
 * handshake disposes of it after decapsulation and on every path that ends it earlier:
 * the server's plaintext alert, a bad ServerHello, a local abort (the transport's
 * timeout), the end of the stream, a close. In-memory Sessions, both backends.
 */
import { describe, expect, it } from 'vitest';
import { createNativeBackend } from '../../src/crypto/native.js';
import { createNobleBackend } from '../../src/crypto/noble.js';
import type { CryptoBackend, XWingKeyPair } from '../../src/crypto/types.js';
import { HandshakeTimeoutError, InvalidArgumentError, PeerAbortedError, TruncationError, UnsupportedSuiteError } from '../../src/errors.js';
import { HEADER_LENGTH, RecordType } from '../../src/record/constants.js';
import { encodeRecord } from '../../src/record/framing.js';
import { decodeServerHello, encodeServerHello, unframeHandshake } from '../../src/wire/messages.js';
import { createPair, deliver, runPair } from '../helpers/pair.js';
import { makeAgent, makeIssuer, trustFor } from '../helpers/identities.js';

const native = createNativeBackend();
const noble = createNobleBackend();
const BACKENDS = [
  { name: 'native', backend: native },
  { name: 'noble', backend: noble },
];

/** Every object reachable from `root` through own properties (enumerable or not). */
function reachable(root: unknown): Set<object> {
  const seen = new Set<object>();
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || (typeof v !== 'object' && typeof v !== 'function') || seen.has(v as object)) continue;
    if (ArrayBuffer.isView(v)) continue;
    seen.add(v as object);
    if (v instanceof Map) for (const [k, x] of v) stack.push(k, x);
    if (v instanceof Set) for (const x of v) stack.push(x);
    for (const key of Reflect.ownKeys(v as object)) {
      const d = Object.getOwnPropertyDescriptor(v as object, key);
      if (d && 'value' in d) stack.push(d.value);
    }
  }
  return seen;
}

describe('the ephemeral key pair after the ServerHello', () => {
  it('is no longer reachable from the client session', () => {
    const issuer = makeIssuer(native);
    const trust = trustFor(issuer);
    const client = makeAgent(native, issuer, 'agent://acme/ret-client');
    const server = makeAgent(native, issuer, 'agent://acme/ret-server');
    const kp = native.xwing.keygen(native.randomBytes(32));
    const logged = new Map<string, Uint8Array>();
    const pair = runPair(
      createPair({ backend: native, identity: client.local, trust, ephemeralKeyPair: kp, keyLog: (l, s) => logged.set(l, s) }, { backend: native, identity: server.local, trust }),
    );
    expect(pair.client.state).toBe('established');
    expect(kp.seed.every((b) => b === 0)).toBe(true);
    // What the retained object allows: the recorded ServerHello decapsulates to the session's shared secret.
    const sh = decodeServerHello(unframeHandshake(pair.wire.s2c[0]!.subarray(HEADER_LENGTH)).body);
    // A key pair equal to it but not disposed (the same seed) is what it was: that is what the ServerHello was made for.
    expect(logged.get('xwing_shared_secret')).toBeDefined();
    // The object itself no longer decapsulates it, on either backend (before: the native one still did, seed wiped or not).
    for (const b of [native, noble]) expect(() => b.xwing.decapsulate(kp, sh.ciphertext)).toThrow(InvalidArgumentError);
    expect(reachable(pair.client).has(kp)).toBe(false);
  });
});

/** A client Session keyed with `kp`, and a server Session; neither started. */
function sessions(backend: CryptoBackend, kp: XWingKeyPair, client: Record<string, unknown> = {}, server: Record<string, unknown> = {}) {
  const issuer = makeIssuer(backend);
  const trust = trustFor(issuer);
  const c = makeAgent(backend, issuer, 'agent://acme/disp-client');
  const s = makeAgent(backend, issuer, 'agent://acme/disp-server');
  return createPair({ backend, identity: c.local, trust, ephemeralKeyPair: kp, ...client }, { backend, identity: s.local, trust, ...server });
}

/** Disposed: seed zero, and no backend decapsulates with it (a fresh encapsulation to its public key). */
function expectDisposed(kp: XWingKeyPair): void {
  expect(kp.seed.every((b) => b === 0)).toBe(true);
  const { ciphertext } = native.xwing.encapsulate(kp.publicKey);
  for (const b of [native, noble]) expect(() => b.xwing.decapsulate(kp, ciphertext)).toThrow(/disposed/);
}

describe.each(BACKENDS)('the ephemeral key pair when the handshake ends before it completes ($name)', ({ backend }) => {
  const fresh = (): XWingKeyPair => backend.xwing.keygen(backend.randomBytes(32));

  it('the server refuses in plaintext (alert 100, endpoint not served): disposed', () => {
    const kp = fresh();
    const pair = runPair(sessions(backend, kp, { endpoint: 'svc:other' }, { acceptEndpoints: ['svc:tools'] }));
    expect(pair.client.state).toBe('failed');
    expect(pair.client.error).toBeInstanceOf(PeerAbortedError);
    expectDisposed(kp);
  });

  it('a ServerHello choosing a suite that was not offered: disposed', () => {
    const kp = fresh();
    const pair = runPair(sessions(backend, kp), {
      tamper: (dir, records, flight) => {
        if (dir !== 's2c' || flight !== 1) return records;
        const sh = decodeServerHello(unframeHandshake(records[0]!.subarray(HEADER_LENGTH)).body);
        return [encodeRecord(RecordType.handshake, encodeServerHello({ ...sh, suite: 0x7777 })), ...records.slice(1)];
      },
    });
    expect(pair.client.error).toBeInstanceOf(UnsupportedSuiteError);
    expectDisposed(kp);
  });

  it('aborted locally while waiting for the ServerHello (the transport\'s handshake timeout): disposed', () => {
    const kp = fresh();
    const client = sessions(backend, kp).client;
    client.start();
    expect(kp.seed.some((b) => b !== 0)).toBe(true); // in use until then
    client.abort(new HandshakeTimeoutError(1000));
    expect(client.state).toBe('failed');
    expectDisposed(kp);
  });

  it('the stream ends during the handshake: disposed', () => {
    const kp = fresh();
    const client = sessions(backend, kp).client;
    client.start();
    expect(client.end()[0]).toMatchObject({ type: 'error', error: expect.any(TruncationError) });
    expectDisposed(kp);
  });

  it('closed by this side during the handshake, or before start(): disposed', () => {
    const kp = fresh();
    const client = sessions(backend, kp).client;
    client.start();
    client.close();
    expect(client.state).toBe('closed');
    expectDisposed(kp);
    const unused = fresh();
    sessions(backend, unused).client.close(); // never started
    expectDisposed(unused);
  });

  it('a second handshake given a key pair in use is refused without disposing of it: the first completes', () => {
    const kp = fresh();
    const first = sessions(backend, kp);
    let c2s = first.client.start().send; // the first handshake has taken it
    const second = runPair(sessions(backend, kp));
    expect(second.client.error).toBeInstanceOf(InvalidArgumentError);
    expect(kp.seed.some((b) => b !== 0)).toBe(true);
    for (let i = 0; i < 4 && c2s.length > 0; i++) c2s = deliver(first, 's2c', deliver(first, 'c2s', c2s).send).send;
    expect(first.client.state).toBe('established');
    expectDisposed(kp);
  });
});
