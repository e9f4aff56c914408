/**
 * Review 2: the key pair given as `ephemeralKeyPair` must not stay reachable from the
 * session once its ServerHello is processed. The native X-Wing key pair carries its
 * expanded decapsulation key (ML-KEM and X25519 private keys) in a hidden slot that
 * wiping the seed does not touch: a reference kept for the session's lifetime lets
 * anyone reading the client's memory later decapsulate the recorded ServerHello and
 * derive every traffic key of the session from its start.
 */
import { describe, expect, it } from 'vitest';
import { createNativeBackend } from '../../src/crypto/native.js';
import { HEADER_LENGTH } from '../../src/record/constants.js';
import { decodeServerHello, unframeHandshake } from '../../src/wire/messages.js';
import { createPair, runPair } from '../helpers/pair.js';
import { makeAgent, makeIssuer, trustFor } from '../helpers/identities.js';

const native = createNativeBackend();

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
    const leaked = (() => {
      try {
        return native.xwing.decapsulate(kp, sh.ciphertext);
      } catch {
        return undefined;
      }
    })();
    expect(leaked).toEqual(logged.get('xwing_shared_secret'));
    expect(reachable(pair.client).has(kp)).toBe(false);
  });
});
