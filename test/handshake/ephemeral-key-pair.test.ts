/**
 * The client's key share made ahead of time (HandshakeConfig.ephemeralKeyPair, issue 12):
 * the handshake uses the key pair it is given, wipes it, and never keys a second handshake
 * with it. In-memory Sessions on the native backend (and the portable one for the refusals).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createNativeBackend } from '../../src/crypto/native.js';
import { createNobleBackend } from '../../src/crypto/noble.js';
import type { CryptoBackend, XWingKeyPair } from '../../src/crypto/types.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { ClientHandshake } from '../../src/handshake/handshake.js';
import type { HandshakeAction, HandshakeConfig } from '../../src/handshake/types.js';
import { decodeClientHello, unframeHandshake } from '../../src/wire/messages.js';
import { createPair, runPair } from '../helpers/pair.js';
import { makeAgent, makeIssuer, trustFor, type TestAgent } from '../helpers/identities.js';

const native = createNativeBackend();
const noble = createNobleBackend();

function fixtures(backend: CryptoBackend) {
  const issuer = makeIssuer(backend);
  return { trust: trustFor(issuer), client: makeAgent(backend, issuer, 'agent://acme/eph-client'), server: makeAgent(backend, issuer, 'agent://acme/eph-server') };
}

let f: { trust: ReturnType<typeof trustFor>; client: TestAgent; server: TestAgent };
beforeAll(() => {
  f = fixtures(native);
});

const keyPair = (backend: CryptoBackend = native): XWingKeyPair => backend.xwing.keygen(backend.randomBytes(32));
const clientCfg = (extra: Partial<HandshakeConfig> = {}, backend: CryptoBackend = native): HandshakeConfig => ({ backend, identity: f.client.local, trust: f.trust, ...extra });
const serverCfg = (): HandshakeConfig => ({ backend: native, identity: f.server.local, trust: f.trust });

/** The key share of the ClientHello among `actions`. */
function keyShareOf(actions: HandshakeAction[]): Uint8Array {
  const send = actions.find((a) => a.type === 'send');
  if (send?.type !== 'send') throw new Error('no ClientHello sent');
  return decodeClientHello(unframeHandshake(send.message).body).keyShare;
}

describe('a key share made ahead of time', () => {
  it('is the ClientHello key share, completes the handshake, and is wiped after the ServerHello', () => {
    const kp = keyPair();
    const publicKey = kp.publicKey.slice();
    const hs = new ClientHandshake(clientCfg({ ephemeralKeyPair: kp }));
    expect(keyShareOf(hs.start())).toEqual(publicKey);

    const kp2 = keyPair();
    const pair = runPair(createPair({ ...clientCfg({ ephemeralKeyPair: kp2 }) }, { ...serverCfg() }));
    expect(pair.client.state).toBe('established');
    expect(pair.server.state).toBe('established');
    expect(kp2.seed.every((b) => b === 0)).toBe(true);
  });

  it('keys one handshake only: a second handshake given the same key pair is refused, even before the first ends', () => {
    const kp = keyPair();
    const first = new ClientHandshake(clientCfg({ ephemeralKeyPair: kp }));
    first.start(); // in flight: the seed is not wiped yet
    expect(kp.seed.some((b) => b !== 0)).toBe(true);
    const second = new ClientHandshake(clientCfg({ ephemeralKeyPair: kp }));
    expect(() => second.start()).toThrow(InvalidArgumentError);
    // A copy of a spent pair (same bytes, new object) is refused once its seed is wiped.
    const used = keyPair();
    runPair(createPair(clientCfg({ ephemeralKeyPair: used }), serverCfg()));
    expect(() => new ClientHandshake(clientCfg({ ephemeralKeyPair: { ...used } })).start()).toThrow(/fresh X-Wing key pair/);
  });

  it('a session given a used key pair fails with the typed error instead of sending a ClientHello', () => {
    const kp = keyPair();
    runPair(createPair(clientCfg({ ephemeralKeyPair: kp }), serverCfg()));
    const again = runPair(createPair(clientCfg({ ephemeralKeyPair: kp }), serverCfg()));
    expect(again.client.state).toBe('failed');
    expect(again.client.error).toBeInstanceOf(InvalidArgumentError);
    expect(again.wire.c2s).toEqual([]);
  });

  it('is exclusive with injected randomness, and must be an X-Wing key pair', () => {
    const random = (n: number) => new Uint8Array(n).fill(7);
    expect(() => new ClientHandshake(clientCfg({ ephemeralKeyPair: keyPair(), random })).start()).toThrow(/exclusive/);
    const kp = keyPair();
    expect(() => new ClientHandshake(clientCfg({ ephemeralKeyPair: { seed: kp.seed, publicKey: kp.publicKey.subarray(1) } })).start()).toThrow(InvalidArgumentError);
  });

  it('works on the portable backend too (its key pairs carry the seed it decapsulates with)', () => {
    const n = fixtures(noble);
    const kp = keyPair(noble);
    const pair = runPair(createPair({ backend: noble, identity: n.client.local, trust: n.trust, ephemeralKeyPair: kp }, { backend: noble, identity: n.server.local, trust: n.trust }));
    expect(pair.client.state).toBe('established');
    expect(kp.seed.every((b) => b === 0)).toBe(true);
  });
});
