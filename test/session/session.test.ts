/**
 * Session: the whole protocol engine, in memory, on both backends and across them.
 * Records are attacked the way a network attacker can: flip, replay, reorder, drop,
 * truncate, oversize. Each case ends in the exact typed error on the receiving side.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createNativeBackend } from '../../src/crypto/native.js';
import { createNobleBackend } from '../../src/crypto/noble.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { Alert, PeerAbortedError, PeerAlertError, PqmcpError, TruncationError } from '../../src/errors.js';
import { Suite, decodeClientHello, unframeHandshake } from '../../src/wire/messages.js';
import { CipherState, InnerType } from '../../src/record/index.js';
import { trafficKeys } from '../../src/handshake/key-schedule.js';
import { KeyUpdateBudget } from '../../src/session/key-update-budget.js';
import { DEFAULT_KEY_UPDATE_INTERVAL, aeadFor, effectiveKeyUpdateInterval, type SessionOptions } from '../../src/session/session.js';
import { makeAgent, makeIssuer, trustFor, type TestAgent } from '../helpers/identities.js';
import { createPair, deliver, errorOf, expectEstablished, expectFailed, messagesOf, runPair, text } from '../helpers/pair.js';

const noble = createNobleBackend();
const native = createNativeBackend();

let clientAgent: TestAgent;
let serverAgent: TestAgent;
let trust: ReturnType<typeof trustFor>;

beforeAll(() => {
  const issuer = makeIssuer(noble);
  trust = trustFor(issuer);
  clientAgent = makeAgent(noble, issuer, 'agent://acme/client', { scopes: ['tools:call', 'resources:read'] });
  serverAgent = makeAgent(noble, issuer, 'agent://acme/server');
});

function options(backend: CryptoBackend, agent: TestAgent, extra: Partial<SessionOptions> = {}): SessionOptions {
  return { backend, identity: agent.local, trust, ...extra };
}

function established(cb = noble, sb = noble, extra: Partial<SessionOptions> = {}) {
  const pair = createPair(options(cb, clientAgent, extra), options(sb, serverAgent, extra));
  runPair(pair);
  expectEstablished(pair);
  return pair;
}

describe.each([
  ['noble client, noble server', noble, noble],
  ['native client, native server', native, native],
  ['noble client, native server', noble, native],
  ['native client, noble server', native, noble],
])('handshake: %s', (_name, cb, sb) => {
  it('completes with both identities verified, then carries messages both ways', () => {
    const pair = established(cb, sb);
    const c = pair.client.result!;
    const s = pair.server.result!;
    expect(c.peer.agentId).toBe('agent://acme/server');
    expect(s.peer.agentId).toBe('agent://acme/client');
    expect(s.peer.scopes).toEqual(['resources:read', 'tools:call']);
    // AES-256-GCM where both AEADs are native (the server prefers it), else ChaCha20-Poly1305.
    const bothNative = cb.report.aead === 'native' && sb.report.aead === 'native';
    expect(c.suite).toBe(bothNative ? Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256 : Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256);
    expect(Buffer.from(c.transcriptHash)).toEqual(Buffer.from(s.transcriptHash));
    // The exporter secret never leaves the session.
    expect(Object.keys(c)).not.toContain('exporterSecret');
    expect(Buffer.from(pair.client.exportKeyingMaterial('test', text('ctx'), 32))).toEqual(Buffer.from(pair.server.exportKeyingMaterial('test', text('ctx'), 32)));
    // The label is carried as "pqmcp1 " + label in a vector<u8> (protocol.md 5.6): at most 248 bytes of UTF-8.
    expect(pair.client.exportKeyingMaterial('é'.repeat(124), text(''), 32)).toHaveLength(32);
    expect(() => pair.client.exportKeyingMaterial('é'.repeat(124) + 'x', text(''), 32)).toThrow(/^exporter label must be a string of at most 248 UTF-8 bytes$/);
    // The context is bytes, on every backend: a string was hashed as UTF-8 by node:crypto and a TypeError on noble (review 17, R17-2).
    for (const context of ['ctx', undefined, [1, 2]]) {
      expect(() => pair.client.exportKeyingMaterial('test', context as unknown as Uint8Array, 32)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: 'exporter context must be a Uint8Array' }));
    }
    expect(Buffer.from(pair.client.exportKeyingMaterial('test', Buffer.from('ctx'), 32))).toEqual(Buffer.from(pair.server.exportKeyingMaterial('test', text('ctx'), 32)));

    const toServer = deliver(pair, 'c2s', pair.client.send(text('hello server')));
    expect(messagesOf(toServer.events)).toEqual(['hello server']);
    const toClient = deliver(pair, 's2c', pair.server.send(text('hello client')));
    expect(messagesOf(toClient.events)).toEqual(['hello client']);
  });

  it('offers AES-256-GCM by default only where the AEAD is native (constant time), and prefers it there', () => {
    const pair = established(cb, sb);
    const offered = decodeClientHello(unframeHandshake(pair.wire.c2s[0]!.subarray(4)).body).suites;
    expect(offered).toEqual(
      cb.report.aead === 'native'
        ? [Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256, Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256]
        : [Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256],
    );
    // The server's preference decides: AES-256-GCM only when it has a native AEAD and the client offered it.
    const aes = cb.report.aead === 'native' && sb.report.aead === 'native';
    expect(pair.server.result!.suite).toBe(aes ? Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256 : Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256);
  });

  it('negotiates ChaCha20-Poly1305 when both prefer it', () => {
    const chachaFirst = { suites: [Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256, Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256] };
    const pair = established(cb, sb, chachaFirst);
    expect(pair.server.result!.suite).toBe(Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256);
    expect(messagesOf(deliver(pair, 'c2s', pair.client.send(text('over chacha'))).events)).toEqual(['over chacha']);
  });

  it('negotiates AES-256-GCM when both prefer it', () => {
    const aesFirst = { suites: [Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256, Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256] };
    const pair = established(cb, sb, aesFirst);
    expect(pair.server.result!.suite).toBe(Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256);
    expect(messagesOf(deliver(pair, 'c2s', pair.client.send(text('over gcm'))).events)).toEqual(['over gcm']);
  });
});

describe('1-RTT and message sizes', () => {
  it('the client first message rides its last handshake flight', () => {
    const pair = createPair(options(noble, clientAgent), options(noble, serverAgent));
    runPair(pair, { clientMessages: [text('initialize')] });
    expectEstablished(pair);
    // Flights: CH (c2s), server flight (s2c), client flight + data (c2s): no extra round trip.
    expect(messagesOf(pair.serverEvents)).toEqual(['initialize']);
    const handshakeIdx = pair.serverEvents.findIndex((e) => e.type === 'handshake');
    const messageIdx = pair.serverEvents.findIndex((e) => e.type === 'message');
    expect(handshakeIdx).toBeGreaterThanOrEqual(0);
    expect(messageIdx).toBeGreaterThan(handshakeIdx);
  });

  it('fragments and reassembles messages of awkward sizes, any stream split', () => {
    const pair = established(native, native);
    for (const size of [0, 1, 65535, 65536, 65537, 3 * 65536 + 5]) {
      const msg = new Uint8Array(size).map((_, i) => (i * 7) & 0xff);
      const records = pair.client.send(msg);
      // Re-split the stream into 1000-byte chunks: record boundaries must not matter.
      const stream = Buffer.concat(records);
      const events = [];
      for (let o = 0; o < stream.length; o += 1000) events.push(...pair.server.receive(stream.subarray(o, o + 1000)).events);
      const got = events.filter((e) => e.type === 'message');
      expect(got).toHaveLength(1);
      expect(Buffer.from((got[0] as { data: Uint8Array }).data).equals(Buffer.from(msg))).toBe(true);
    }
  });

  it('a message of up to 65536 bytes is one record (empty and exactly 65536 included), one byte more is two', () => {
    const pair = established(native, native);
    for (const [size, records] of [[0, 1], [1, 1], [65535, 1], [65536, 1], [65537, 2], [2 * 65536, 2], [2 * 65536 + 1, 3]] as const) {
      const msg = new Uint8Array(size).map((_, i) => (i * 13 + size) & 0xff);
      const sealed = pair.client.send(msg);
      expect(sealed).toHaveLength(records);
      const got = pair.server.receive(Buffer.concat(sealed)).events.filter((e) => e.type === 'message');
      expect(got).toHaveLength(1);
      expect(Buffer.from((got[0] as { data: Uint8Array }).data).equals(Buffer.from(msg))).toBe(true);
    }
    expect(pair.server.state).toBe('established');
  });

  it('refuses to send a message above maxMessageSize, and the receiver refuses one too', () => {
    const small = established(native, native, { maxMessageSize: 1000 });
    expect(() => small.client.send(new Uint8Array(1001))).toThrowError(expect.objectContaining({ code: 'ERR_MESSAGE_TOO_LARGE' }));
    expect(small.client.state).toBe('established');
    // A sender with a larger limit: the receiver's own limit applies.
    const pair = createPair(options(native, clientAgent), options(native, serverAgent, { maxMessageSize: 1000 }));
    runPair(pair);
    const out = deliver(pair, 'c2s', pair.client.send(new Uint8Array(70_000)));
    expectFailed(pair.server, out.events, 'ERR_MESSAGE_TOO_LARGE');
  });
});

/** An established native pair whose client logs its secrets (to forge malicious records). */
function withKeyLog() {
  const secrets: Record<string, Uint8Array> = {};
  const pair = createPair(options(native, clientAgent, { keyLog: (l, v) => (secrets[l] = v) }), options(native, serverAgent));
  runPair(pair);
  expectEstablished(pair);
  return { pair, secrets };
}

/** A cipher state on `secret` at sequence 0, in the pair's suite: what a key-holding attacker could seal. */
function rogueCipher(secret: Uint8Array, pair: ReturnType<typeof withKeyLog>['pair']): CipherState {
  const { key, iv } = trafficKeys(native, secret);
  return new CipherState(native, aeadFor(pair.client.result!.suite), key, iv);
}

describe('record attacks (network attacker)', () => {
  it('a bit flip in header, ciphertext or tag is bad_record_mac and the peer gets the alert', () => {
    for (const pos of ['header', 'ciphertext', 'tag'] as const) {
      const pair = established();
      const [rec] = pair.client.send(text('payload'));
      const [next] = pair.client.send(text('next'));
      const bad = rec!.slice();
      // Header: flip the low bit of the length; the next record completes the stream.
      const i = pos === 'header' ? 3 : pos === 'ciphertext' ? 6 : bad.length - 1;
      bad[i]! ^= 0x01;
      const out = deliver(pair, 'c2s', [bad, next!]);
      const err = expectFailed(pair.server, out.events, 'ERR_BAD_RECORD_MAC');
      expect(err.message).toBe('record authentication failed');
      // The alert reaches the client as a typed peer alert naming bad_record_mac.
      expect(out.send).toHaveLength(1);
      const back = deliver(pair, 's2c', out.send);
      const peerErr = expectFailed(pair.client, back.events, 'ERR_PEER_ALERT');
      expect(peerErr).toBeInstanceOf(PeerAlertError);
      expect((peerErr as PeerAlertError).peerAlert).toBe(Alert.badRecordMac);
    }
  });

  it('replay, reorder and drop are detected', () => {
    const replay = established();
    const [a] = replay.client.send(text('a'));
    deliver(replay, 'c2s', [a!]);
    expectFailed(replay.server, deliver(replay, 'c2s', [a!]).events, 'ERR_BAD_RECORD_MAC');

    const reorder = established();
    const [r1] = reorder.client.send(text('1'));
    const [r2] = reorder.client.send(text('2'));
    expectFailed(reorder.server, deliver(reorder, 'c2s', [r2!, r1!]).events, 'ERR_BAD_RECORD_MAC');

    const drop = established();
    drop.client.send(text('dropped'));
    const [d2] = drop.client.send(text('second'));
    expectFailed(drop.server, deliver(drop, 'c2s', [d2!]).events, 'ERR_BAD_RECORD_MAC');
  });

  it('truncation without close_notify is an error; a close_notify is a clean close', () => {
    const cut = established();
    deliver(cut, 'c2s', cut.client.send(text('x')));
    const events = cut.server.end();
    expect(events).toHaveLength(1);
    expect(errorOf(events)!.code).toBe('ERR_TRUNCATED');

    const clean = established();
    const closeRecords = clean.client.close();
    const out = deliver(clean, 'c2s', closeRecords);
    expect(out.events.map((e) => e.type)).toEqual(['close']);
    expect(clean.server.state).toBe('closed');
    expect(clean.server.end()).toEqual([]);
    // The server answered with its own close_notify.
    const back = deliver(clean, 's2c', out.send);
    expect(back.events.map((e) => e.type)).toEqual(['close']);
    expect(() => clean.client.send(text('late'))).toThrowError(expect.objectContaining({ code: 'ERR_CLOSED' }));
  });

  it('a stream that ends during the handshake (a peer\'s unauthenticated drop) is TruncationError built without a stack trace; after it, with one', () => {
    // The server has read the ClientHello and sent its flight; the client drops the connection.
    const pair = createPair(options(noble, clientAgent), options(noble, serverAgent));
    deliver(pair, 'c2s', pair.client.start().send);
    expect(pair.server.state).toBe('handshaking');
    const events = pair.server.end();
    expect(events).toHaveLength(1);
    const error = errorOf(events)!;
    expect(error).toBeInstanceOf(TruncationError);
    expect([error.code, error.alert, error.message]).toEqual(['ERR_TRUNCATED', undefined, 'connection ended during the handshake']);
    expect(pair.server.error).toBe(error);
    expect(pair.server.state).toBe('failed');
    // Routine under a flood (one per dropped connection): no frames captured (stackless.ts).
    expect(error.stack).toBe('TruncationError: connection ended during the handshake');
    // The client's side of the same drop, before anything came back.
    const client = createPair(options(noble, clientAgent), options(noble, serverAgent)).client;
    client.start();
    expect(errorOf(client.end())!.stack).toBe('TruncationError: connection ended during the handshake');

    // An established session's truncation keeps its message and its stack.
    const cut = established();
    const late = errorOf(cut.server.end())!;
    expect(late).toBeInstanceOf(TruncationError);
    expect([late.code, late.message]).toEqual(['ERR_TRUNCATED', 'connection ended without an authenticated close']);
    expect(late.stack).toMatch(/\n\s+at /);
  });

  it('a close_notify in the middle of a fragmented message is truncation', () => {
    // Only a malicious sender can do this; forge it with the client's logged traffic secret.
    const { pair, secrets } = withKeyLog();
    const rogue = rogueCipher(secrets['c_ap_traffic_0']!, pair);
    const out = deliver(pair, 'c2s', [rogue.seal(InnerType.applicationFragment, new Uint8Array(65536)), rogue.seal(InnerType.alert, Uint8Array.of(0, Alert.closeNotify))]);
    expectFailed(pair.server, out.events, 'ERR_TRUNCATED');
  });

  it('an oversize record is refused from its header alone', () => {
    const pair = established();
    const header = Uint8Array.of(0x17, 0xff, 0xff, 0xff);
    const out = deliver(pair, 'c2s', [header]);
    expectFailed(pair.server, out.events, 'ERR_RECORD_OVERFLOW');
    expect(pair.server.bufferedBytes).toBeLessThan(1024);
  });

  it('a plaintext alert during the handshake aborts it, reported as unauthenticated (ERR_PEER_ABORTED)', () => {
    // The client fails on the ServerHello (before it has keys) and can only alert in plaintext.
    const pair = createPair(options(noble, clientAgent), options(noble, serverAgent));
    runPair(pair, {
      tamper: (dir, records, flight) => {
        if (dir !== 's2c' || flight !== 1) return records;
        const sh = records[0]!.slice();
        sh[4 + 4]! ^= 0xff; // ServerHello.version -> not offered
        return [sh, ...records.slice(1)];
      },
    });
    expectFailed(pair.client, pair.clientEvents, 'ERR_UNSUPPORTED_VERSION');
    const serverErr = expectFailed(pair.server, pair.serverEvents, 'ERR_PEER_ABORTED');
    expect(serverErr).toBeInstanceOf(PeerAbortedError);
    expect((serverErr as PeerAbortedError).peerAlert).toBe(Alert.protocolVersion);
    expect(serverErr.message).toBe('peer aborted the handshake (unauthenticated alert 70)');
  });

  it('non-final fragments must be full: a flood of tiny fragments is refused at once', () => {
    const { pair, secrets } = withKeyLog();
    const rogue = rogueCipher(secrets['c_ap_traffic_0']!, pair);
    const out = deliver(pair, 'c2s', [rogue.seal(InnerType.applicationFragment, new Uint8Array(0))]);
    expectFailed(pair.server, out.events, 'ERR_DECODE');
  });

  it('an alert is never answered with an alert', () => {
    // close_notify during the handshake is an error, but the answer is silence.
    const pair = createPair(options(noble, clientAgent), options(noble, serverAgent));
    const hello = pair.client.start().send;
    const serverFlight = deliver(pair, 'c2s', hello).send;
    deliver(pair, 's2c', serverFlight.slice(0, 1)); // ServerHello only: the client has handshake keys
    // A peer that sends close_notify there (Session.close() sends user_canceled: next test).
    const closeMidHandshake = pair.client.abort(new PqmcpError('ERR_CLOSED', 'close_notify mid-handshake', Alert.closeNotify));
    const out = deliver(pair, 'c2s', closeMidHandshake);
    expectFailed(pair.server, out.events, 'ERR_UNEXPECTED_MESSAGE');
    expect(out.send).toEqual([]);
  });

  it("close() during the handshake cancels it: user_canceled (90) under the handshake keys, the peer fails with it and answers nothing", () => {
    // Review 13, R13-12: it sent close_notify, which the peer refused as unexpected_message
    // (fails on the previous code).
    const pair = createPair(options(noble, clientAgent), options(noble, serverAgent));
    const serverFlight = deliver(pair, 'c2s', pair.client.start().send).send;
    deliver(pair, 's2c', serverFlight.slice(0, 1));
    const cancel = pair.client.close();
    expect(pair.client.state).toBe('closed');
    expect(pair.client.close()).toEqual([]);
    const out = deliver(pair, 'c2s', cancel);
    const error = expectFailed(pair.server, out.events, 'ERR_PEER_ALERT');
    expect((error as PeerAlertError).peerAlert).toBe(Alert.userCanceled);
    expect(out.send).toEqual([]);
    // Before any keys (the server has not answered yet): a plaintext user_canceled.
    const early = createPair(options(noble, clientAgent), options(noble, serverAgent));
    const hello = early.client.start().send;
    deliver(early, 'c2s', hello);
    const plain = early.client.close();
    expect(plain).toEqual([Uint8Array.of(0x15, 0, 0, 2, 0, Alert.userCanceled)]);
  });

  it('once established, a session keeps no handshake state machine (nor its transcript); a handshake message is then unexpected', () => {
    for (const dir of ['c2s', 's2c'] as const) {
      const pair = established(native, native);
      for (const session of [pair.client, pair.server]) expect((session as unknown as { handshake: unknown }).handshake).toBeUndefined();
      expect(pair.client.result!.peer.agentId).toBe('agent://acme/server');
      expect(pair.client.exportKeyingMaterial('x', text(''), 16)).toEqual(pair.server.exportKeyingMaterial('x', text(''), 16));
      // A Finished-shaped handshake message, protected under the sender's application keys.
      const [sender, receiver] = dir === 'c2s' ? [pair.client, pair.server] : [pair.server, pair.client];
      const tx = (sender as unknown as { keys: { tx: { cipher: CipherState } } }).keys.tx.cipher;
      const record = tx.seal(InnerType.handshake, Uint8Array.of(20, 0, 0, 32, ...new Uint8Array(32)));
      expectFailed(receiver, deliver(pair, dir, [record]).events, 'ERR_UNEXPECTED_MESSAGE');
    }
  });

  it('plaintext records after keys are unexpected', () => {
    const pair = established();
    const fakeAlert = Uint8Array.of(0x15, 0, 0, 2, 0, Alert.closeNotify);
    expectFailed(pair.server, deliver(pair, 'c2s', [fakeAlert]).events, 'ERR_UNEXPECTED_MESSAGE');
  });
});

describe('key update', () => {
  it('updates automatically after keyUpdateInterval records and on demand, both sides keep talking', () => {
    const pair = established(native, native, { keyUpdateInterval: 3 });
    for (let i = 0; i < 10; i++) {
      const got = deliver(pair, 'c2s', pair.client.send(text(`m${i}`)));
      expect(messagesOf(got.events)).toEqual([`m${i}`]);
    }
    const upd = deliver(pair, 's2c', pair.server.updateKeys(true));
    // The client owes its own KeyUpdate, sent just before its next application record.
    expect(upd.send).toHaveLength(0);
    expect(pair.client.keyUpdatePending).toBe(true);
    expect(messagesOf(deliver(pair, 's2c', pair.server.send(text('after'))).events)).toEqual(['after']);
    const answer = pair.client.send(text('after too'));
    expect(answer).toHaveLength(2); // the KeyUpdate, then the message
    expect(pair.client.keyUpdatePending).toBe(false);
    expect(messagesOf(deliver(pair, 'c2s', answer).events)).toEqual(['after too']);
    expect(messagesOf(deliver(pair, 'c2s', pair.client.send(text('on the new key'))).events)).toEqual(['on the new key']);
  });

  it('updateKeys(true) asks the peer at most once until the peer\'s next KeyUpdate (RFC 9846 4.7.3): meanwhile it sends update_not_requested', () => {
    const pair = established(native, native);
    expect(pair.client.keyUpdateRequested).toBe(false);
    deliver(pair, 'c2s', pair.client.updateKeys(true));
    expect(pair.client.keyUpdateRequested).toBe(true);
    expect(pair.server.keyUpdatePending).toBe(true);
    // The server answers (a KeyUpdate before its next record); the answer is still in flight.
    const inFlight = pair.server.send(text('answered'));
    expect(inFlight).toHaveLength(2);
    expect(pair.server.keyUpdatePending).toBe(false);
    // A second request now would be redundant: the client's keys are updated, the peer is not asked.
    const before = pair.server.keyUpdates;
    deliver(pair, 'c2s', pair.client.updateKeys(true));
    expect(pair.server.keyUpdates).toBe(before + 1);
    expect(pair.server.keyUpdatePending).toBe(false);
    expect(pair.client.keyUpdateRequested).toBe(true);
    // The answer arrives: the client may ask again, and the server owes a new answer.
    expect(messagesOf(deliver(pair, 's2c', inFlight).events)).toEqual(['answered']);
    expect(pair.client.keyUpdateRequested).toBe(false);
    deliver(pair, 'c2s', pair.client.updateKeys(true));
    expect(pair.server.keyUpdatePending).toBe(true);
    expect(messagesOf(deliver(pair, 's2c', pair.server.send(text('again'))).events)).toEqual(['again']);
    expect(messagesOf(deliver(pair, 'c2s', pair.client.send(text('both ways'))).events)).toEqual(['both ways']);
  });

  it('maxKeyUpdatesPerCall: a batch of KeyUpdates is processed a few per call; the rest waits for drain(), in order, nothing lost', () => {
    const pair = established(native, native, { maxKeyUpdatesPerCall: 4 });
    const batch = Buffer.concat([...Array.from({ length: 10 }, () => pair.client.updateKeys(true)).flat(), ...pair.client.send(text('after ten'))]);
    const before = pair.server.keyUpdates;
    const first = pair.server.receive(batch);
    expect(pair.server.keyUpdates - before).toBe(4);
    expect(messagesOf(first.events)).toEqual([]);
    expect(pair.server.stalled).toBe(true);
    // Bytes arriving meanwhile only queue behind (still at most 4 per call).
    const late = pair.server.receive(Buffer.concat(pair.client.send(text('later'))));
    expect(pair.server.keyUpdates - before).toBe(8);
    expect(messagesOf(late.events)).toEqual([]);
    const rest = pair.server.drain();
    expect(pair.server.keyUpdates - before).toBe(10);
    expect(messagesOf(rest.events)).toEqual(['after ten', 'later']);
    expect(pair.server.stalled).toBe(false);
    // The requests were answered once, before the server's next application record.
    const reply = pair.server.send(text('reply'));
    expect(reply).toHaveLength(2);
    expect(messagesOf(deliver(pair, 's2c', reply).events)).toEqual(['reply']);
    // Without the cap (default) the same batch goes in one call.
    const open = established(native, native);
    const all = open.server.receive(Buffer.concat([...Array.from({ length: 10 }, () => open.client.updateKeys(true)).flat(), ...open.client.send(text('x'))]));
    expect(messagesOf(all.events)).toEqual(['x']);
    expect(open.server.stalled).toBe(false);
    expect(() => createPair(options(native, clientAgent, { maxKeyUpdatesPerCall: 0 }), options(native, serverAgent))).toThrow(/maxKeyUpdatesPerCall/);
  });

  it('keyUpdateRate: past the ration nothing more is opened until it refills; then it goes on, in order, nothing lost', () => {
    let now = 0;
    const pair = established(native, native, { keyUpdateRate: { rate: 10, burst: 4, now: () => now } });
    const batch = Buffer.concat([...Array.from({ length: 6 }, () => pair.client.updateKeys(false)).flat(), ...pair.client.send(text('after six'))]);
    const before = pair.server.keyUpdates;
    const first = pair.server.receive(batch);
    expect(pair.server.keyUpdates - before).toBe(4);
    expect(messagesOf(first.events)).toEqual([]);
    expect(pair.server.stalled).toBe(true);
    expect(pair.server.keyUpdateWaitMs).toBe(100); // one token at 10 a second
    // Bytes arriving meanwhile and drain() before the refill: nothing is opened.
    expect(messagesOf(pair.server.receive(Buffer.concat(pair.client.send(text('later')))).events)).toEqual([]);
    expect(messagesOf(pair.server.drain().events)).toEqual([]);
    expect(pair.server.keyUpdates - before).toBe(4);
    now += 100;
    expect(pair.server.keyUpdateWaitMs).toBe(0);
    pair.server.drain();
    expect(pair.server.keyUpdates - before).toBe(5);
    expect(pair.server.keyUpdateWaitMs).toBe(100);
    now += 250; // 2.5 tokens: the sixth KeyUpdate and both messages
    expect(messagesOf(pair.server.drain().events)).toEqual(['after six', 'later']);
    expect(pair.server.keyUpdates - before).toBe(6);
    expect(pair.server.stalled).toBe(false);
    expect(pair.server.state).toBe('established');
    expect(() => createPair(options(native, clientAgent, { keyUpdateRate: { rate: 0 } }), options(native, serverAgent))).toThrow(/keyUpdateRate/);
    expect(() => createPair(options(native, clientAgent, { keyUpdateRate: { rate: 1, burst: 0.5 } }), options(native, serverAgent))).toThrow(/keyUpdateRate/);
  });

  it('keyUpdateRate: a very small rate waits at most what a timer can (2^31 - 1 ms), not a value Node turns into 1 ms', () => {
    const budget = new KeyUpdateBudget({ rate: 1e-7, burst: 1, now: () => 0 }); // 10^10 ms unclamped
    expect(budget.waitMs).toBe(0);
    budget.take();
    expect(budget.ready).toBe(false);
    expect(budget.waitMs).toBe(2 ** 31 - 1);
    const usual = new KeyUpdateBudget({ rate: 10, burst: 1, now: () => 0 });
    usual.take();
    expect(usual.waitMs).toBe(100);
  });

  it('keyUpdateRate: automatic key updates (at keyUpdateInterval) and the answer to our own request never take from the ration', () => {
    // A clock that never moves and a ration of one: any KeyUpdate paid for past the first would stall for ever.
    const frozen = { keyUpdateRate: { rate: 1, burst: 1, now: () => 0 } };
    const pair = established(native, native, { keyUpdateInterval: 3, ...frozen });
    const before = pair.server.keyUpdates;
    const records: Uint8Array[] = [];
    for (let i = 0; i < 100; i++) records.push(...pair.client.send(text(`m${i}`)));
    const got = pair.server.receive(Buffer.concat(records));
    expect(messagesOf(got.events)).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    expect(pair.server.keyUpdates - before).toBe(33); // one per 3 records, all free
    expect(pair.server.stalled).toBe(false);
    // The server asks for an update: the answer is free too (the client sends it before its next record).
    deliver(pair, 's2c', pair.server.updateKeys(true));
    expect(messagesOf(deliver(pair, 'c2s', pair.client.send(text('answered'))).events)).toEqual(['answered']);
    expect(pair.server.stalled).toBe(false);
    // The ration is intact: one on-demand update is paid for, and the record after it waits.
    const paid = pair.server.receive(Buffer.concat([...pair.client.updateKeys(false), ...pair.client.send(text('waits'))]));
    expect(messagesOf(paid.events)).toEqual([]);
    expect(pair.server.stalled).toBe(true);
    expect(pair.server.keyUpdateWaitMs).toBe(1000);
  });

  it('a record under the old key after a key update is refused', () => {
    const { pair, secrets } = withKeyLog();
    deliver(pair, 'c2s', pair.client.send(text('under key 0'))); // seq 0, key 0
    deliver(pair, 'c2s', pair.client.updateKeys(false)); // seq 1, key 0; both sides now on key 1
    expect(messagesOf(deliver(pair, 'c2s', pair.client.send(text('under key 1'))).events)).toEqual(['under key 1']);
    // An attacker holding key 0 forges the record that would have come next under it.
    const rogue = rogueCipher(secrets['c_ap_traffic_0']!, pair);
    rogue.seal(InnerType.applicationFinal, new Uint8Array(0));
    rogue.seal(InnerType.applicationFinal, new Uint8Array(0));
    const stale = rogue.seal(InnerType.applicationFinal, text('stale'));
    expectFailed(pair.server, deliver(pair, 'c2s', [stale]).events, 'ERR_BAD_RECORD_MAC');
  });

  it('sequence exhaustion with a small forced limit ends the session with a typed error', () => {
    // An honest sender updates its keys before its own limit; a peer that never does is
    // stopped by the receiver's limit.
    const pair = createPair(options(native, clientAgent), options(native, serverAgent, { sequenceLimit: 4, keyUpdateInterval: 2 }));
    runPair(pair);
    expectEstablished(pair);
    for (let i = 0; i < 4; i++) expect(messagesOf(deliver(pair, 'c2s', pair.client.send(text(`${i}`))).events)).toEqual([`${i}`]);
    expectFailed(pair.server, deliver(pair, 'c2s', pair.client.send(text('one too many'))).events, 'ERR_SEQUENCE_EXHAUSTED');
  });

  it('AES-256-GCM clamps the key update interval to 2^22 records; ChaCha20-Poly1305 keeps the configured one', () => {
    expect(effectiveKeyUpdateInterval(Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256, 2 ** 30)).toBe(2 ** 22);
    expect(effectiveKeyUpdateInterval(Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256, 100)).toBe(100);
    expect(effectiveKeyUpdateInterval(Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256, 2 ** 30)).toBe(2 ** 30);
    expect(DEFAULT_KEY_UPDATE_INTERVAL).toBe(2 ** 22);
  });

  it('a key update interval at or above the sequence limit is refused up front', () => {
    expect(() => createPair(options(native, clientAgent, { sequenceLimit: 4, keyUpdateInterval: 4 }), options(native, serverAgent))).toThrowError(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });

  it('a message above maxMessageSize is refused before anything is sealed', () => {
    const { pair } = withKeyLog();
    expect(() => pair.client.send(new Uint8Array(65 * 1024 * 1024))).toThrowError(expect.objectContaining({ code: 'ERR_MESSAGE_TOO_LARGE' }));
    expect(pair.client.state).toBe('established');
    expect(messagesOf(deliver(pair, 'c2s', pair.client.send(text('still fine'))).events)).toEqual(['still fine']);
  });
});
