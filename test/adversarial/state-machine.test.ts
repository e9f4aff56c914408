/**
 * State-machine attacks through the whole Session (records, keys, epochs), by a peer that
 * holds the keys: every message out of order, duplicated, skipped, swapped or replayed
 * (also into a new connection); application data, KeyUpdate and close_notify before the
 * handshake ends; handshake messages after it ends; alerts and inner types a peer may not
 * send. (Field-level tampering of each message is in test/handshake/state-machine.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { concat } from '../../src/bytes.js';
import { Alert, HandshakeTimeoutError, PeerAbortedError, PeerAlertError } from '../../src/errors.js';
import { InnerType, RecordType } from '../../src/record/index.js';
import { Paused, RECEIVED_MESSAGES, setup } from './fixtures.js';
import { expectDead, expectRejected, rejectionProblems, type Attacker, type Duel, type MessageName, type Role } from './harness.js';

const text = (s: string) => new TextEncoder().encode(s);
const other = (r: Role): Role => (r === 'client' ? 'server' : 'client');

/** The eight framed messages of one complete honest handshake, by name. */
function referenceMessages(): Record<string, Uint8Array> {
  const d = setup('server').run();
  const parts = (d.attacker.hs as unknown as { transcript: { parts: Uint8Array[] } }).transcript.parts;
  const names = ['ClientHello', 'ServerHello', 'ServerCredential', 'ServerVerify', 'ServerFinished', 'ClientCredential', 'ClientVerify', 'ClientFinished'];
  return Object.fromEntries(parts.map((p, i) => [names[i]!, p]));
}

/** The honest side is waiting and quiet; a timeout then aborts it with handshake_failure. */
function expectStalledThenTimeout(d: Duel): void {
  expect(d.error).toBeUndefined();
  expect(d.honest.state).toBe('handshaking');
  expect(d.completed).toBe(false);
  d.toAttacker(d.honest.abort(new HandshakeTimeoutError(10_000)));
  expect(d.tap.alerts).toEqual([Alert.handshakeFailure]);
  expect(d.honest.state).toBe('failed');
  expectDead(d.honest);
}

describe('out of order', () => {
  it('every handshake message, in both epochs, in every state that does not expect it: unexpected_message', () => {
    const all = referenceMessages();
    const failures: string[] = [];
    let cases = 0;
    for (const [role, expected] of RECEIVED_MESSAGES) {
      const p = new Paused(role, expected);
      for (const [name, framed] of Object.entries(all)) {
        for (const plaintext of [true, false]) {
          const isExpected = framed[0] === p.honestMessage[0] && plaintext === (expected === 'ClientHello' || expected === 'ServerHello');
          if (isExpected) continue;
          // Before the hellos there are no keys: a "protected" message is a random protected record.
          const d = p.base.attacker.held[0]!.epoch === 'plaintext' && !plaintext ? p.deliverRecords(() => [Uint8Array.of(0x17, 0, 0, 40, ...new Uint8Array(40))]) : p.deliver(framed, { plaintext });
          cases++;
          const problems = rejectionProblems(d, 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage);
          if (problems.length) failures.push(`${role} expecting ${expected}, got ${name} (${plaintext ? 'plaintext' : 'protected'}): ${problems.join('; ')}`);
        }
      }
    }
    expect(failures).toEqual([]);
    // 8 states x 8 messages x 2 epochs, less the expected message in its epoch (each
    // protected type occurs twice, once per role: the other role's copy is a reflection,
    // covered in crypto-inputs.test.ts).
    expect(cases).toBe(8 * 16 - 2 - 6 * 2);
  });

  it.each(['server', 'client'] as const)('honest %s: the attacker’s protected flight in every other order', (role) => {
    const flight: MessageName[] = ['Credential', 'CredentialVerify', 'Finished'];
    const orders = [
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ];
    const p = new Paused(role, 'Credential');
    for (const order of orders) {
      const d = p.base.fork();
      const held = d.attacker.held;
      expect(held.map((h) => h.name)).toEqual(flight);
      // Each message keeps its own record sequence number: only the order of the records changes.
      const sealed = held.map((h) => d.attacker.emitMessage(h.framed, h.epoch, h.keys)[0]!);
      d.toHonest(order.map((i) => sealed[i]!));
      expectRejected(d, 'ERR_BAD_RECORD_MAC', Alert.badRecordMac, { what: `order ${order.join('')} of records` });
      // The same orders re-sealed in sequence (a key-holding peer): the state machine refuses them.
      const e = p.base.fork();
      const keys = e.attacker.held[0]!.keys!;
      e.toHonest(order.map((i) => e.attacker.seal(InnerType.handshake, e.attacker.held[i]!.framed, { keys })));
      expectRejected(e, 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage, { what: `order ${order.join('')} re-sealed` });
    }
  });
});

describe('duplicated, skipped, swapped', () => {
  it.each(RECEIVED_MESSAGES)('honest %s, the attacker’s %s sent twice', (role, message) => {
    const d = setup(role, { bugs: { duplicate: message } }).run();
    if (message === 'Finished') {
      // The honest side switched to application keys after the Finished: the copy, sealed under
      // the handshake key, does not authenticate.
      expectRejected(d, 'ERR_BAD_RECORD_MAC', Alert.badRecordMac, { completed: true });
    } else {
      expectRejected(d, 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage);
    }
  });

  it.each(RECEIVED_MESSAGES)('honest %s, the attacker’s %s skipped', (role, message) => {
    const d = setup(role, { bugs: { skip: message } }).run();
    if (message === 'ClientHello' || message === 'Finished') {
      // Nothing (or nothing final) arrives: the honest side waits until its timeout.
      expectStalledThenTimeout(d);
    } else {
      expectRejected(d, 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage);
    }
  });

  it.each([
    ['client', ['Credential', 'CredentialVerify']],
    ['client', ['CredentialVerify', 'Finished']],
    ['server', ['Credential', 'CredentialVerify']],
    ['server', ['CredentialVerify', 'Finished']],
  ] as const)('honest %s, the attacker swaps %j', (role, swap) => {
    const d = setup(role, { bugs: { swap: [swap[0], swap[1]] } }).run();
    expectRejected(d, 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage);
  });
});

describe('replayed', () => {
  it('a record replayed within the connection: bad_record_mac', () => {
    const p = new Paused('server', 'CredentialVerify');
    const d = p.base.fork();
    // The attacker's Credential record (already accepted) sent again in place of its CredentialVerify.
    const credRecord = d.attacker.held[0]!.keys!;
    const replay = credRecord.sealRaw(concat(p.base.attacker.held[0]!.framed, Uint8Array.of(InnerType.handshake)), credRecord.seq - 1);
    d.toHonest([replay]);
    expectRejected(d, 'ERR_BAD_RECORD_MAC', Alert.badRecordMac);
  });

  it.each(['client', 'server'] as const)('everything a %s sent in a complete session, replayed into a new connection: bad_record_mac', (replayedRole) => {
    // A network recorder keeps what one side sent: its hello, its flight and a message...
    const original = setup(other(replayedRole)).run();
    original.toHonest(original.attacker.sendApplication(text('{"jsonrpc":"2.0","id":7,"method":"tools/call"}')));
    expect(original.completed && original.delivered.length === 1).toBe(true);
    const stream = concat(...original.received);
    // ...and replays it byte for byte to a fresh honest peer.
    const d = setup(other(replayedRole));
    if (replayedRole === 'server') d.toAttacker(d.honest.start().send);
    d.toHonest([stream]);
    // Server victim: the replayed ClientHello is accepted (it is only a ClientHello) but the
    // server answers with new keys, so the replayed client flight does not authenticate.
    // Client victim: its new ephemeral key turns the old ciphertext into unrelated keys
    // (implicit rejection), so the old server flight does not authenticate.
    expectRejected(d, 'ERR_BAD_RECORD_MAC', Alert.badRecordMac);
    expect(d.delivered).toEqual([]);
  });

  it('messages taken from another session, re-sealed by the attacker: bad signature, bad Finished, wrong keys', () => {
    const old = referenceMessages();
    const cases: [Role, MessageName, Uint8Array, string, number][] = [
      ['client', 'CredentialVerify', old['ServerVerify']!, 'ERR_BAD_SIGNATURE', Alert.decryptError],
      ['client', 'Finished', old['ServerFinished']!, 'ERR_BAD_FINISHED', Alert.decryptError],
      ['server', 'CredentialVerify', old['ClientVerify']!, 'ERR_BAD_SIGNATURE', Alert.decryptError],
      ['server', 'Finished', old['ClientFinished']!, 'ERR_BAD_FINISHED', Alert.decryptError],
    ];
    for (const [role, message, framed, code, alert] of cases) {
      expectRejected(new Paused(role, message).deliver(framed), code, alert, { what: `${role} gets an old ${message}` });
    }
    // An old ServerHello: the client derives keys the server does not have.
    const d = setup('client', { bugs: { replace: { message: 'ServerHello', framed: old['ServerHello']! } } }).run();
    expectRejected(d, 'ERR_BAD_RECORD_MAC', Alert.badRecordMac);
  });
});

describe('application data, KeyUpdate and close_notify before the handshake ends', () => {
  const early = (after: MessageName | 'start', innerType: number, content = text('early')) => ({
    inject: { after, records: (a: Attacker) => [a.seal(innerType, content)] },
  });

  it.each([
    ['server', 'Credential', 'application data', InnerType.applicationFinal],
    ['server', 'Credential', 'an application fragment', InnerType.applicationFragment],
    ['server', 'Credential', 'a multi-message record', InnerType.applicationMulti],
    ['client', 'Credential', 'a multi-message record', InnerType.applicationMulti],
    ['server', 'CredentialVerify', 'KeyUpdate', InnerType.keyUpdate],
    ['server', 'Credential', 'close_notify', InnerType.alert],
    ['client', 'Credential', 'application data', InnerType.applicationFinal],
    ['client', 'CredentialVerify', 'KeyUpdate', InnerType.keyUpdate],
    ['client', 'Credential', 'close_notify', InnerType.alert],
  ] as const)('honest %s: %s then %s under the handshake key: unexpected_message', (role, after, _what, innerType) => {
    const content = innerType === InnerType.alert ? Uint8Array.of(0, Alert.closeNotify) : innerType === InnerType.keyUpdate ? Uint8Array.of(0) : text('early');
    const d = setup(role, { bugs: early(after, innerType, content) }).run();
    // An alert is never answered with an alert, even one that is refused.
    expectRejected(d, 'ERR_UNEXPECTED_MESSAGE', innerType === InnerType.alert ? null : Alert.unexpectedMessage);
  });

  it('a protected record before any keys: unexpected_message', () => {
    const d = setup('server', { bugs: { inject: { after: 'start', records: (a) => [a.plaintext(RecordType.protected, new Uint8Array(40))] } } }).run();
    expectRejected(d, 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage);
  });

  it('client application data under the application key before its Finished: bad_record_mac', () => {
    const p = new Paused('server', 'Finished');
    const d = p.base.fork();
    // The attacker already holds its application key (installed after its flight).
    const early = d.attacker.sendApplication(text('{"jsonrpc":"2.0","id":1,"method":"tools/call"}'));
    d.toHonest([...early, ...d.attacker.release()]);
    expectRejected(d, 'ERR_BAD_RECORD_MAC', Alert.badRecordMac);
    expect(d.delivered).toEqual([]);
  });

  it('documented: server data right after its Finished reaches a client that verified the server', () => {
    // The client cannot tell "0.5-RTT" data from later data; the honest server never sends
    // it before the client's Finished (test/session), so this is the server's rule to keep.
    const d = setup('client', { bugs: { hold: 'CredentialVerify' } }).run();
    const flight = d.attacker.release();
    d.toHonest([...flight, ...d.attacker.sendApplication(text('half-rtt'))]);
    expect(d.error).toBeUndefined();
    expect(d.delivered.map((m) => new TextDecoder().decode(m))).toEqual(['half-rtt']);
  });
});

describe('after the handshake', () => {
  it.each(['server', 'client'] as const)('honest %s: a protected handshake message after completion: unexpected_message', (role) => {
    const d = setup(role).run();
    d.toHonest([d.attacker.seal(InnerType.handshake, (d.attacker.hs as unknown as { transcript: { parts: Uint8Array[] } }).transcript.parts.at(-1)!)]);
    expectRejected(d, 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage, { completed: true });
  });

  it.each(['server', 'client'] as const)('honest %s: a plaintext hello or alert after completion: unexpected_message (no alert answers an alert)', (role) => {
    for (const [record, alert] of [
      [concat(Uint8Array.of(0x16, 0, 0, 5), Uint8Array.of(1, 0, 0, 1, 0)), Alert.unexpectedMessage],
      [Uint8Array.of(0x15, 0, 0, 2, 0, Alert.closeNotify), null],
      [Uint8Array.of(0x15, 0, 0, 2, 0, Alert.badRecordMac), null],
    ] as const) {
      const d = setup(role).run();
      d.toHonest([d.attacker.plaintext(record[0]!, record.subarray(4))]);
      expectRejected(d, 'ERR_UNEXPECTED_MESSAGE', alert, { completed: true, what: `record type ${record[0]}` });
    }
  });

  it('padding after any inner type is stripped: padded application data, KeyUpdate and close_notify are honoured', () => {
    for (const role of ['server', 'client'] as const) {
      const d = setup(role).run();
      d.toHonest([d.attacker.seal(InnerType.applicationFinal, text('small pad'), { padding: 3 }), d.attacker.seal(InnerType.applicationFinal, text('padded'), { padding: 65537 - 7 })]);
      expect(d.error, role).toBeUndefined();
      expect(d.delivered.map((m) => new TextDecoder().decode(m)), role).toEqual(['small pad', 'padded']);
      d.toHonest([d.attacker.seal(InnerType.keyUpdate, Uint8Array.of(0), { padding: 10 })]);
      expect(d.error, role).toBeUndefined();
    }
  });

  it('unknown inner types, an empty inner plaintext and malformed KeyUpdate or alert bodies', () => {
    const cases: [string, (d: Duel) => Uint8Array, string, number | null][] = [
      ...[0x07, 0x16, 0x7f, 0xff].map((t): [string, (d: Duel) => Uint8Array, string, number | null] => [`inner type ${t}`, (d) => d.attacker.seal(t, text('x')), 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage]),
      ...[0x07, 0xff].map((t): [string, (d: Duel) => Uint8Array, string, number | null] => [`inner type ${t}, padded`, (d) => d.attacker.seal(t, text('x'), { padding: 100 }), 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage]),
      ['empty inner plaintext', (d) => d.attacker.tx!.sealRaw(new Uint8Array(0)), 'ERR_DECODE', Alert.decodeError],
      // Padding only, no content type (docs/protocol.md section 3.2): unexpected_message.
      ...[1, 2, 1024, 65537].map((n): [string, (d: Duel) => Uint8Array, string, number | null] => [`inner plaintext of ${n} zero bytes`, (d) => d.attacker.tx!.sealRaw(new Uint8Array(n)), 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage]),
      ['KeyUpdate 2', (d) => d.attacker.seal(InnerType.keyUpdate, Uint8Array.of(2)), 'ERR_DECODE', Alert.decodeError],
      ['KeyUpdate of two bytes', (d) => d.attacker.seal(InnerType.keyUpdate, Uint8Array.of(0, 0)), 'ERR_DECODE', Alert.decodeError],
      ['empty KeyUpdate', (d) => d.attacker.seal(InnerType.keyUpdate, new Uint8Array(0)), 'ERR_DECODE', Alert.decodeError],
      // A malformed alert is still an alert: refused, never answered.
      ['alert of one byte', (d) => d.attacker.seal(InnerType.alert, Uint8Array.of(0)), 'ERR_DECODE', null],
      ['alert of three bytes', (d) => d.attacker.seal(InnerType.alert, Uint8Array.of(0, 0, 0)), 'ERR_DECODE', null],
      ['empty alert', (d) => d.attacker.seal(InnerType.alert, new Uint8Array(0)), 'ERR_DECODE', null],
    ];
    for (const role of ['server', 'client'] as const) {
      for (const [what, make, code, alert] of cases) {
        const d = setup(role).run();
        d.toHonest([make(d)]);
        expectRejected(d, code, alert, { completed: true, what: `${role}: ${what}` });
      }
    }
  });

  it('multi-message records (section 3.6): well-formed ones deliver every message in order; each malformed content is its exact typed error', () => {
    const entry = (m: Uint8Array) => concat(Uint8Array.of(m.length >>> 8, m.length & 0xff), m);
    const two = concat(entry(text('one')), entry(text('two')));
    for (const role of ['server', 'client'] as const) {
      const d = setup(role).run();
      d.toHonest([d.attacker.seal(InnerType.applicationMulti, two), d.attacker.seal(InnerType.applicationMulti, concat(two, entry(text('three'))), { padding: 200 })]);
      expect(d.error, role).toBeUndefined();
      expect(d.delivered.map((m) => new TextDecoder().decode(m)), role).toEqual(['one', 'two', 'one', 'two', 'three']);
    }
    const cases: [string, (d: Duel) => Uint8Array[], string, number][] = [
      ['no message', (d) => [d.attacker.seal(InnerType.applicationMulti, new Uint8Array(0))], 'ERR_DECODE', Alert.decodeError],
      ['one message', (d) => [d.attacker.seal(InnerType.applicationMulti, entry(text('alone')))], 'ERR_DECODE', Alert.decodeError],
      ['an empty message', (d) => [d.attacker.seal(InnerType.applicationMulti, concat(two, Uint8Array.of(0, 0)))], 'ERR_DECODE', Alert.decodeError],
      ['a length past the end', (d) => [d.attacker.seal(InnerType.applicationMulti, concat(two, Uint8Array.of(0, 9, 1)))], 'ERR_DECODE', Alert.decodeError],
      ['a cut length prefix', (d) => [d.attacker.seal(InnerType.applicationMulti, concat(two, Uint8Array.of(0)))], 'ERR_DECODE', Alert.decodeError],
      ['1025 messages', (d) => [d.attacker.seal(InnerType.applicationMulti, concat(...Array.from({ length: 1025 }, () => Uint8Array.of(0, 1, 0x7b))))], 'ERR_DECODE', Alert.decodeError],
      ['inside a fragmented message', (d) => [d.attacker.seal(InnerType.applicationFragment, new Uint8Array(65536)), d.attacker.seal(InnerType.applicationMulti, two)], 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage],
    ];
    for (const role of ['server', 'client'] as const) {
      for (const [what, make, code, alert] of cases) {
        const d = setup(role).run();
        d.toHonest(make(d));
        expectRejected(d, code, alert, { completed: true, what: `${role}: ${what}` });
        expect(d.delivered, `${role}: ${what}`).toEqual([]); // nothing of a refused record is delivered
      }
    }
  });

  it('an alert is never answered with an alert, whatever its code', () => {
    for (const code of [Alert.badRecordMac, Alert.internalError, 255, 0x7fff, 0xffff]) {
      const d = setup('server').run();
      d.toHonest(d.attacker.sendAlert(code));
      expectRejected(d, 'ERR_PEER_ALERT', null, { completed: true, what: `alert ${code}` });
      expect((d.error as PeerAlertError).peerAlert).toBe(code);
    }
  });

  it.each(['server', 'client'] as const)('honest %s: a plaintext close_notify during the handshake is an abort, not a close', (role) => {
    const after = role === 'server' ? 'start' : 'ServerHello';
    const d = setup(role, { bugs: { inject: { after, records: (a) => a.sendAlert(Alert.closeNotify, true) } } }).run();
    expectRejected(d, 'ERR_PEER_ABORTED', null);
    expect((d.error as PeerAbortedError).peerAlert).toBe(Alert.closeNotify);
  });

  it('nothing is delivered after the peer’s close_notify, even in the same chunk', () => {
    const d = setup('server').run();
    const close = d.attacker.seal(InnerType.alert, Uint8Array.of(0, Alert.closeNotify));
    const after = d.attacker.sendApplication(text('after close'));
    d.toHonest([concat(close, ...after)]);
    expect(d.events.map((e) => e.type)).toEqual(['handshake', 'close']);
    expect(d.delivered).toEqual([]);
    expect(d.honest.state).toBe('closed');
    expect(d.tap.alerts).toEqual([Alert.closeNotify]);
    expectDead(d.honest);
  });
});

