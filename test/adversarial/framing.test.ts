/**
 * Framing attacks by a peer that holds the keys (so it can seal whatever it likes): every
 * handshake message truncated at every offset, wrong, zero and huge length fields,
 * trailing bytes, unknown message and record types, unknown versions, oversize records.
 * Each case names the exact error and alert the honest side must produce, and checks that
 * it ends dead and silent.
 *
 * The honest side is paused just before the message under test and forked per case
 * (fork.ts), so "every offset" costs a copy, not a handshake.
 */
import { describe, expect, it } from 'vitest';
import { concat } from '../../src/bytes.js';
import { Alert } from '../../src/errors.js';
import { InnerType, RecordType } from '../../src/record/index.js';
import { decodeClientHello, encodeClientHello, unframeHandshake } from '../../src/wire/messages.js';
import { Paused, RECEIVED_MESSAGES, setup } from './fixtures.js';
import { MESSAGE_TYPES, expectRejected, frame, rejectionProblems, type Duel, type MessageName, type RecordKeys, type Role } from './harness.js';

const paused = new Map<string, Paused>();
function pausedBefore(role: Role, m: MessageName): Paused {
  const key = `${role}:${m}`;
  let p = paused.get(key);
  if (!p) {
    p = new Paused(role, m);
    paused.set(key, p);
  }
  return p;
}

const setLength = (m: Uint8Array, length: number): Uint8Array => {
  const t = m.slice();
  t[1] = (length >>> 16) & 0xff;
  t[2] = (length >>> 8) & 0xff;
  t[3] = length & 0xff;
  return t;
};

describe.each(RECEIVED_MESSAGES)('honest %s receiving the attacker’s %s', (role, message) => {
  it('truncated at every offset, length field as sent: decode_error', () => {
    const p = pausedBefore(role, message);
    const m = p.honestMessage;
    const failures: string[] = [];
    for (let keep = 0; keep < m.length; keep++) {
      const problems = rejectionProblems(p.deliver(m.slice(0, keep)), 'ERR_DECODE', Alert.decodeError);
      if (problems.length) failures.push(`keep ${keep}: ${problems.join('; ')}`);
    }
    expect(failures.slice(0, 5)).toEqual([]);
  });

  it('truncated at every offset with a consistent length field: decode_error', () => {
    const p = pausedBefore(role, message);
    const m = p.honestMessage;
    const failures: string[] = [];
    for (let keep = 4; keep < m.length; keep++) {
      const problems = rejectionProblems(p.deliver(setLength(m.slice(0, keep), keep - 4)), 'ERR_DECODE', Alert.decodeError);
      if (problems.length) failures.push(`keep ${keep}: ${problems.join('; ')}`);
    }
    expect(failures.slice(0, 5)).toEqual([]);
  });

  it('length field too large, too small, zero and 2^24-1: decode_error', () => {
    const p = pausedBefore(role, message);
    const m = p.honestMessage;
    const body = m.length - 4;
    for (const length of [body + 1, body + 1000, 0xffffff, body - 1, 1, 0]) {
      expectRejected(p.deliver(setLength(m, length)), 'ERR_DECODE', Alert.decodeError, { what: `length ${length}` });
    }
    // A zero-length message of this type.
    expectRejected(p.deliver(frame(m[0]!, new Uint8Array(0))), 'ERR_DECODE', Alert.decodeError, { what: 'empty body' });
  });

  it('trailing bytes after the message in its record, or inside its body: decode_error', () => {
    const p = pausedBefore(role, message);
    const m = p.honestMessage;
    for (const extra of [Uint8Array.of(0), new Uint8Array(100).fill(0xaa), m]) {
      expectRejected(p.deliver(concat(m, extra)), 'ERR_DECODE', Alert.decodeError, { what: `${extra.length} trailing bytes` });
      // The same bytes counted in the message's own length: the body decoder refuses them.
      const inside = concat(m, extra);
      expectRejected(p.deliver(setLength(inside, inside.length - 4)), 'ERR_DECODE', Alert.decodeError, { what: `${extra.length} bytes inside the body` });
    }
  });

  it('an unknown or misplaced msg_type: unexpected_message', () => {
    const p = pausedBefore(role, message);
    const m = p.honestMessage;
    const others = [0, 3, 4, 8, 12, 13, 16, 21, 24, 99, 254, 255, ...Object.values(MESSAGE_TYPES)].filter((t) => t !== m[0]);
    for (const type of others) {
      const t = m.slice();
      t[0] = type;
      expectRejected(p.deliver(t), 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage, { what: `msg_type ${type}` });
    }
  });
});

describe('record framing of a handshake flight', () => {
  it('plaintext hellos: record length zero, below and above the message, over 8192; every other record type', () => {
    for (const [role, message] of [['server', 'ClientHello'], ['client', 'ServerHello']] as const) {
      const p = pausedBefore(role, message);
      const m = p.honestMessage;
      const raw = (type: number, length: number, body: Uint8Array) => [concat(Uint8Array.of(type, length >> 16, (length >> 8) & 0xff, length & 0xff), body)];
      const cases: [string, Uint8Array[], string, number][] = [
        ['length 0', raw(RecordType.handshake, 0, new Uint8Array(0)), 'ERR_DECODE', Alert.decodeError],
        ['length 8193', raw(RecordType.handshake, 8193, m), 'ERR_RECORD_OVERFLOW', Alert.recordOverflow],
        ['length 2^24-1', raw(RecordType.handshake, 0xffffff, m), 'ERR_RECORD_OVERFLOW', Alert.recordOverflow],
        // A record shorter than its message: the message arrives cut, the rest is garbage.
        ['length short by one', raw(RecordType.handshake, m.length - 1, m), 'ERR_DECODE', Alert.decodeError],
        ['as an alert record', raw(RecordType.alert, m.length, m), 'ERR_RECORD_OVERFLOW', Alert.recordOverflow],
        ['as a protected record', raw(RecordType.protected, m.length, m), 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage],
        ...[0x00, 0x14, 0x18, 0x80, 0xff].map((t): [string, Uint8Array[], string, number] => [`type 0x${t.toString(16)}`, raw(t, m.length, m), 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage]),
      ];
      for (const [what, records, code, alert] of cases) {
        expectRejected(p.deliverRecords(() => records), code, alert, { what: `${message}: ${what}` });
      }
    }
  });

  it('protected handshake records: zero, undersize, oversize and 2^24-1 lengths, plaintext types after keys', () => {
    for (const [role, message] of [['client', 'Credential'], ['server', 'Finished']] as const) {
      const p = pausedBefore(role, message);
      const relabel = (type: number, length?: number) => (_d: Duel, keys: RecordKeys | undefined) => {
        const r = keys!.seal(InnerType.handshake, p.honestMessage).slice();
        r[0] = type;
        if (length !== undefined) r.set([(length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff], 1);
        return [r];
      };
      const cases: [string, ReturnType<typeof relabel>, string, number][] = [
        ['length 0', relabel(RecordType.protected, 0), 'ERR_DECODE', Alert.decodeError],
        ['length 16', relabel(RecordType.protected, 16), 'ERR_DECODE', Alert.decodeError],
        ['length 65554', relabel(RecordType.protected, 65554), 'ERR_RECORD_OVERFLOW', Alert.recordOverflow],
        ['length 2^24-1', relabel(RecordType.protected, 0xffffff), 'ERR_RECORD_OVERFLOW', Alert.recordOverflow],
        ['as a plaintext handshake record', relabel(RecordType.handshake), 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage],
        ['as an alert record', relabel(RecordType.alert), 'ERR_RECORD_OVERFLOW', Alert.recordOverflow],
        ['type 0x00', relabel(0), 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage],
      ];
      for (const [what, make, code, alert] of cases) expectRejected(p.deliverRecords(make), code, alert, { what: `${message}: ${what}` });
      // The honest message in plaintext instead of protected.
      expectRejected(p.deliver(p.honestMessage, { plaintext: true }), 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage, { what: `${message} in plaintext` });
    }
  });

  it('oversize: a 16385-byte credential, a 65537-byte protected content, a ClientHello over 8192 bytes', () => {
    const cred = pausedBefore('server', 'Credential');
    const big = new Uint8Array(16385).fill(7);
    expectRejected(cred.deliver(frame(11, concat(Uint8Array.of(big.length >> 8, big.length & 0xff), big))), 'ERR_DECODE', Alert.decodeError, { what: 'credential 16385' });
    expectRejected(cred.deliverRecords((d, keys) => [keys!.seal(InnerType.handshake, new Uint8Array(65537))]), 'ERR_RECORD_OVERFLOW', Alert.recordOverflow, { what: 'content 65537' });
    // The largest legal content is fine for the record layer (the handshake refuses it as a message).
    expectRejected(cred.deliverRecords((d, keys) => [keys!.seal(InnerType.handshake, frame(11, new Uint8Array(65532)))]), 'ERR_DECODE', Alert.decodeError, { what: 'content 65536' });

    const hello = pausedBefore('server', 'ClientHello');
    const ch = decodeClientHello(unframeHandshake(hello.honestMessage).body);
    const huge = encodeClientHello({ ...ch, extensions: [{ type: 0xfe00, data: new Uint8Array(8000) }] });
    expect(huge.length).toBeGreaterThan(8192);
    expectRejected(hello.deliver(huge), 'ERR_RECORD_OVERFLOW', Alert.recordOverflow, { what: 'ClientHello of 9 KB' });
  });
});

describe('versions', () => {
  it('a ClientHello offering only unknown versions: protocol_version, in plaintext, before any crypto', () => {
    for (const versions of [[0x0002], [0x0000], [0xffff, 0x0302], Array.from({ length: 127 }, (_, i) => 0x0100 + i)]) {
      const d = setup('server', { bugs: { rewrite: { message: 'ClientHello', with: (m) => encodeClientHello({ ...decodeClientHello(unframeHandshake(m).body), versions }) } } }).run();
      expectRejected(d, 'ERR_UNSUPPORTED_VERSION', Alert.protocolVersion, { what: `versions [${versions.slice(0, 3).join(', ')}]` });
      expect(d.tap.items).toEqual([{ kind: 'alert', code: Alert.protocolVersion, protected: false }]);
    }
  });

  it('an empty version list, an odd-length one and one of 128 entries are decode errors', () => {
    const rewrite = (body: (versionsAt: Uint8Array) => Uint8Array) =>
      setup('server', { bugs: { rewrite: { message: 'ClientHello', with: (m) => frame(1, body(m.subarray(4))) } } }).run();
    expectRejected(rewrite((b) => concat(Uint8Array.of(0), b.subarray(1 + b[0]!))), 'ERR_DECODE', Alert.decodeError, { what: 'empty' });
    expectRejected(rewrite((b) => concat(Uint8Array.of(3, 0, 1, 0), b.subarray(1 + b[0]!))), 'ERR_DECODE', Alert.decodeError, { what: 'odd' });
    expectRejected(rewrite((b) => concat(Uint8Array.of(0xff), new Uint8Array(0xff), b.subarray(1 + b[0]!))), 'ERR_DECODE', Alert.decodeError, { what: '255 bytes' });
  });

  it('a ServerHello choosing a version the client did not offer: protocol_version', () => {
    const d = setup('client', { bugs: { rewrite: { message: 'ServerHello', with: (m) => Uint8Array.of(...m.subarray(0, 4), 0x00, 0x02, ...m.subarray(6)) } } }).run();
    expectRejected(d, 'ERR_UNSUPPORTED_VERSION', Alert.protocolVersion);
    expect(d.attacker.alerts).toEqual([Alert.protocolVersion]);
  });
});
