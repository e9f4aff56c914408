/**
 * Versions and suites: an unknown version or suite gets a clear typed error and an alert,
 * never a fallback; a rewritten offer (downgrade attempt) is detected.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createNobleBackend } from '../../src/crypto/noble.js';
import { Alert, PeerAbortedError } from '../../src/errors.js';
import { ClientHandshake, ServerHandshake } from '../../src/handshake/handshake.js';
import type { HandshakeConfig } from '../../src/handshake/types.js';
import { RecordType } from '../../src/record/index.js';
import { Session } from '../../src/session/session.js';
import { KEM_XWING, Suite, type ServerHello, decodeClientHello, encodeClientHello, encodeServerHello, unframeHandshake } from '../../src/wire/messages.js';
import { makeAgent, makeIssuer, trustFor, type TestAgent } from '../helpers/identities.js';
import { createPair, errorOf, runPair } from '../helpers/pair.js';

const backend = createNobleBackend();
let client: TestAgent;
let server: TestAgent;
let trust: ReturnType<typeof trustFor>;

beforeAll(() => {
  const issuer = makeIssuer(backend);
  trust = trustFor(issuer);
  client = makeAgent(backend, issuer, 'agent://acme/neg-client');
  server = makeAgent(backend, issuer, 'agent://acme/neg-server');
});

const cfg = (agent: TestAgent, extra: Partial<HandshakeConfig> = {}): HandshakeConfig => ({ backend, identity: agent.local, trust, ...extra });

/** A genuine ClientHello with some fields rewritten. */
function clientHelloWith(patch: Partial<ReturnType<typeof decodeClientHello>>): Uint8Array {
  const c = new ClientHandshake(cfg(client));
  const action = c.start()[0]!;
  if (action.type !== 'send') throw new Error('expected a send');
  const hello = decodeClientHello(unframeHandshake(action.message).body);
  return encodeClientHello({ ...hello, ...patch });
}

describe('negotiation', () => {
  it('a ClientHello offering only an unknown version is refused with protocol_version, in plaintext', () => {
    const s = Session.server(cfg(server));
    const hello = clientHelloWith({ versions: [0x0002, 0x7f01] });
    const record = new Uint8Array([RecordType.handshake, 0, hello.length >> 8, hello.length & 0xff, ...hello]);
    const out = s.receive(record);
    const err = errorOf(out.events)!;
    expect(err.code).toBe('ERR_UNSUPPORTED_VERSION');
    expect(err.message).toContain('no common protocol version');
    // The alert is a plaintext alert record: 0x15, length 2, code 70.
    expect([...out.send[0]!]).toEqual([RecordType.alert, 0, 0, 2, 0, Alert.protocolVersion]);
  });

  it('the version list is read before the rest: a garbled future layout still gets protocol_version', () => {
    const s = new ServerHandshake(cfg(server));
    // versions = [0x0002], then bytes that are not a PQMCP/1 ClientHello at all.
    const body = Uint8Array.of(2, 0x00, 0x02, 0xde, 0xad);
    const framed = Uint8Array.of(1, 0, 0, body.length, ...body);
    expect(() => s.receive(framed, 'plaintext')).toThrowError(expect.objectContaining({ code: 'ERR_UNSUPPORTED_VERSION' }));
  });

  it('a ClientHello offering only unknown suites is refused with insufficient_security', () => {
    const s = new ServerHandshake(cfg(server));
    expect(() => s.receive(clientHelloWith({ suites: [0x0099, 0x1301] }), 'plaintext')).toThrowError(expect.objectContaining({ code: 'ERR_UNSUPPORTED_SUITE' }));
  });

  it("a refusal names at most eight of the client's codes: an unauthenticated ClientHello does not size the error message", () => {
    // Review 13, R13-11: 4,000 unknown suites made a ~28 KB message (fails on the previous code).
    const suites = Array.from({ length: 4000 }, (_, i) => 0x8000 + i);
    expect(() => new ServerHandshake(cfg(server)).receive(clientHelloWith({ suites }), 'plaintext')).toThrowError(
      expect.objectContaining({ code: 'ERR_UNSUPPORTED_SUITE', message: 'no common cipher suite (client offered 4000 codes: [32768, 32769, 32770, 32771, 32772, 32773, 32774, 32775, ...])' }),
    );
    // A short offer is named whole, as before.
    expect(() => new ServerHandshake(cfg(server)).receive(clientHelloWith({ suites: [0x0099, 0x1301] }), 'plaintext')).toThrowError('no common cipher suite (client offered [153, 4865])');
    const versions = Array.from({ length: 100 }, (_, i) => 0x0100 + i);
    expect(() => new ServerHandshake(cfg(server)).receive(clientHelloWith({ versions }), 'plaintext')).toThrowError('no common protocol version (client offered 100 codes: [256, 257, 258, 259, 260, 261, 262, 263, ...])');
  });

  it('an unknown KEM or a wrong-length key share is refused', () => {
    expect(() => new ServerHandshake(cfg(server)).receive(clientHelloWith({ kemId: 0x11ec }), 'plaintext')).toThrowError(expect.objectContaining({ code: 'ERR_UNSUPPORTED_SUITE' }));
    expect(() => new ServerHandshake(cfg(server)).receive(clientHelloWith({ keyShare: new Uint8Array(1184) }), 'plaintext')).toThrowError(expect.objectContaining({ code: 'ERR_DECODE' }));
  });

  it('a client and a server with no suite in common fail cleanly on both sides', () => {
    const pair = createPair(
      { ...cfg(client), suites: [Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256] },
      { ...cfg(server), suites: [Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256] },
    );
    runPair(pair);
    expect(errorOf(pair.serverEvents)?.code).toBe('ERR_UNSUPPORTED_SUITE');
    const clientErr = errorOf(pair.clientEvents);
    expect(clientErr).toBeInstanceOf(PeerAbortedError);
    expect((clientErr as PeerAbortedError).peerAlert).toBe(Alert.insufficientSecurity);
  });

  it('a ServerHello extension the client did not offer is refused: unsupported_extension (110)', () => {
    for (const type of [0x0001, 0x0002, 0x0020, 0xffff]) {
      const c = new ClientHandshake(cfg(client, { suites: [Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256] }));
      c.start();
      const sh = encodeServerHello({ version: 1, random: new Uint8Array(32), suite: Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256, kemId: KEM_XWING, ciphertext: new Uint8Array(1120), extensions: [{ type, data: new Uint8Array(0) }] });
      expect(() => c.receive(sh, 'plaintext')).toThrowError(expect.objectContaining({ code: 'ERR_UNSUPPORTED_EXTENSION', alert: Alert.unsupportedExtension, extensionType: type }));
    }
  });

  it('a ServerHello echoing the endpoint extension the client did offer is refused: unsupported_extension (110), section 4.4', () => {
    // Review 13, R13-10: it was accepted and ignored, as "offered" (fails on the previous code).
    const c = new ClientHandshake(cfg(client, { suites: [Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256], endpoint: '//tools.example/mcp' }));
    c.start();
    const sh = encodeServerHello({ version: 1, random: new Uint8Array(32), suite: Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256, kemId: KEM_XWING, ciphertext: new Uint8Array(1120), extensions: [{ type: 0x0001, data: new Uint8Array(0) }] });
    expect(() => c.receive(sh, 'plaintext')).toThrowError(
      expect.objectContaining({ code: 'ERR_UNSUPPORTED_EXTENSION', alert: Alert.unsupportedExtension, extensionType: 0x0001, message: 'peer sent extension 0x0001, which a ServerHello never carries' }),
    );
  });

  it('a ServerHello choosing a version, suite or KEM that was not offered is refused by the client', () => {
    for (const [patch, code] of [
      [{ version: 0x0002 }, 'ERR_UNSUPPORTED_VERSION'],
      [{ suite: Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256 }, 'ERR_UNSUPPORTED_SUITE'],
      [{ kemId: 0x0001 }, 'ERR_UNSUPPORTED_SUITE'],
    ] as const) {
      const c = new ClientHandshake(cfg(client, { suites: [Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256] }));
      c.start();
      const base: ServerHello = { version: 1, random: new Uint8Array(32), suite: Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256, kemId: KEM_XWING, ciphertext: new Uint8Array(1120), extensions: [] };
      const sh = encodeServerHello(Object.assign(base, patch));
      expect(() => c.receive(sh, 'plaintext')).toThrowError(expect.objectContaining({ code }));
    }
  });

  it('configuring an unsupported version or suite is a local argument error', () => {
    expect(() => new ClientHandshake(cfg(client, { versions: [2] }))).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(() => new ClientHandshake(cfg(client, { suites: [] }))).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});

describe('downgrade', () => {
  it('a suite list rewritten in flight is detected and the handshake fails on both sides', () => {
    // The client prefers AES-256-GCM; an attacker strips it so the server picks ChaCha20.
    const pair = createPair(
      { ...cfg(client), suites: [Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256, Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256] },
      { ...cfg(server), suites: [Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256, Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256] },
    );
    runPair(pair, {
      tamper: (dir, records, flight) => {
        if (dir !== 'c2s' || flight !== 0) return records;
        const framed = records[0]!.subarray(4);
        const hello = decodeClientHello(unframeHandshake(framed).body);
        const rewritten = encodeClientHello({ ...hello, suites: [Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256] });
        return [new Uint8Array([RecordType.handshake, 0, rewritten.length >> 8, rewritten.length & 0xff, ...rewritten])];
      },
    });
    // The server's transcript differs from the client's, so its first protected record
    // does not authenticate at the client.
    expect(errorOf(pair.clientEvents)?.code).toBe('ERR_BAD_RECORD_MAC');
    expect(pair.client.state).toBe('failed');
    expect(pair.server.state).not.toBe('established');
  });

  it('a version list rewritten in flight is detected the same way', () => {
    const pair = createPair(cfg(client), cfg(server));
    runPair(pair, {
      tamper: (dir, records, flight) => {
        if (dir !== 'c2s' || flight !== 0) return records;
        const hello = decodeClientHello(unframeHandshake(records[0]!.subarray(4)).body);
        const rewritten = encodeClientHello({ ...hello, versions: [1, 0x0002] });
        return [new Uint8Array([RecordType.handshake, 0, rewritten.length >> 8, rewritten.length & 0xff, ...rewritten])];
      },
    });
    expect(errorOf(pair.clientEvents)?.code).toBe('ERR_BAD_RECORD_MAC');
    expect(pair.server.state).not.toBe('established');
  });
});
