/**
 * Record-layer attacks on an established session: every single-bit flip of a record (with
 * the exact error each header bit must produce), sequence reuse, gaps (including one of
 * 2^32, which a 32-bit nonce counter would miss), reordering, truncation without the
 * authenticated close, records under the old key after a key update in both directions,
 * sequence exhaustion on the receive side, KeyUpdate storms (one answer, 32 in a row at most)
 * and endless fragments.
 */
import { describe, expect, it } from 'vitest';
import { concat } from '../../src/bytes.js';
import { Alert } from '../../src/errors.js';
import { InnerType } from '../../src/record/index.js';
import { MAX_KEY_UPDATES_IN_A_ROW } from '../../src/session/session.js';
import { setup } from './fixtures.js';
import { expectDead, expectRejected, rejectionProblems, type Duel, type Role } from './harness.js';

const text = (s: string) => new TextEncoder().encode(s);
const roles: Role[] = ['server', 'client'];

/** What a receiver must do with a protected record whose header was changed to (type, length); `actual` = true body length. */
function expectedForHeader(type: number, length: number, actual: number): [string, number | null] {
  if (type === 0x16) return length >= 1 && length <= 8192 ? ['ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage] : length > 8192 ? ['ERR_RECORD_OVERFLOW', Alert.recordOverflow] : ['ERR_DECODE', Alert.decodeError];
  if (type === 0x15) return length > 2 ? ['ERR_RECORD_OVERFLOW', Alert.recordOverflow] : ['ERR_DECODE', Alert.decodeError];
  if (type !== 0x17) return ['ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage];
  if (length > 65553) return ['ERR_RECORD_OVERFLOW', Alert.recordOverflow];
  if (length < 17) return ['ERR_DECODE', Alert.decodeError];
  // Longer than what was sent: the receiver waits for bytes that never come; the stream ends.
  if (length > actual) return ['ERR_TRUNCATED', null];
  return ['ERR_BAD_RECORD_MAC', Alert.badRecordMac];
}

describe.each(roles)('honest %s, established', (role) => {
  it('every single-bit flip of a record, header, ciphertext and tag: the exact error for each bit', () => {
    const base = setup(role).run();
    expect(base.completed).toBe(true);
    const record = base.fork().attacker.sendApplication(text('x'))[0]!;
    const failures: string[] = [];
    for (let bit = 0; bit < record.length * 8; bit++) {
      const d = base.fork();
      d.attacker.sendApplication(text('x')); // keep the attacker's sequence in step
      const bad = record.slice();
      bad[bit >> 3]! ^= 0x80 >> (bit & 7);
      d.toHonest([bad]);
      const [code, alert] = bit < 32 ? expectedForHeader(bad[0]!, (bad[1]! << 16) | (bad[2]! << 8) | bad[3]!, record.length - 4) : ['ERR_BAD_RECORD_MAC', Alert.badRecordMac];
      if (code === 'ERR_TRUNCATED') {
        expect(d.error).toBeUndefined();
        d.end();
      }
      const problems = rejectionProblems(d, code, alert, { completed: true });
      if (problems.length) failures.push(`bit ${bit}: ${problems.join('; ')}`);
      if (d.delivered.length) failures.push(`bit ${bit}: a message was delivered`);
    }
    expect(failures).toEqual([]);
  });

  it('sequence reuse, a gap of one, a gap of 2^32, reordering: bad_record_mac, nothing delivered', () => {
    const base = setup(role).run();
    const cases: [string, (d: Duel) => Uint8Array[]][] = [
      ['reuse', (d) => [d.attacker.seal(InnerType.applicationFinal, text('a'), { seq: 0 }), d.attacker.seal(InnerType.applicationFinal, text('b'), { seq: 0 })]],
      ['gap of one', (d) => [d.attacker.seal(InnerType.applicationFinal, text('a'), { seq: 1 })]],
      ['gap of 2^32', (d) => [d.attacker.seal(InnerType.applicationFinal, text('a'), { seq: 2 ** 32 })]],
      ['gap of 2^47', (d) => [d.attacker.seal(InnerType.applicationFinal, text('a'), { seq: 2 ** 47 })]],
      ['reorder', (d) => [d.attacker.seal(InnerType.applicationFinal, text('b'), { seq: 1 }), d.attacker.seal(InnerType.applicationFinal, text('a'), { seq: 0 })]],
    ];
    for (const [what, make] of cases) {
      const d = base.fork();
      d.toHonest(make(d));
      expectRejected(d, 'ERR_BAD_RECORD_MAC', Alert.badRecordMac, { completed: true, what });
      expect(d.delivered.length, what).toBe(what === 'reuse' ? 1 : 0);
    }
  });

  it('truncation without close_notify, at a record boundary, mid-record and mid-message: ERR_TRUNCATED, no alert', () => {
    const base = setup(role).run();
    const cut: [string, (d: Duel) => Uint8Array[]][] = [
      ['after a message', (d) => d.attacker.sendApplication(text('complete'))],
      ['mid-record', (d) => [d.attacker.sendApplication(text('half a record'))[0]!.subarray(0, 10)]],
      ['mid-header', (d) => [d.attacker.sendApplication(text('x'))[0]!.subarray(0, 2)]],
      ['mid-message', (d) => [d.attacker.seal(InnerType.applicationFragment, new Uint8Array(65536))]],
    ];
    for (const [what, make] of cut) {
      const d = base.fork();
      d.toHonest(make(d));
      d.end();
      expectRejected(d, 'ERR_TRUNCATED', null, { completed: true, what });
    }
    // The authenticated close, then the end of the stream: clean.
    const clean = base.fork();
    clean.toHonest([clean.attacker.seal(InnerType.alert, Uint8Array.of(0, Alert.closeNotify))]);
    clean.end();
    expect(clean.error).toBeUndefined();
    expect(clean.events.map((e) => e.type)).toEqual(['handshake', 'close']);
    expectDead(clean.honest);
  });

  it('a record under the old key after the attacker’s KeyUpdate, and a KeyUpdate the attacker does not follow', () => {
    const base = setup(role).run();
    const stale = base.fork();
    stale.toHonest(stale.attacker.sendApplication(text('key 0')));
    stale.toHonest(stale.attacker.sendKeyUpdate(false));
    stale.toHonest(stale.attacker.sendApplication(text('key 1')));
    const old = stale.attacker.previousTx!;
    stale.toHonest([stale.attacker.seal(InnerType.applicationFinal, text('stale'), { keys: old })]);
    expectRejected(stale, 'ERR_BAD_RECORD_MAC', Alert.badRecordMac, { completed: true });
    expect(stale.delivered.map((m) => new TextDecoder().decode(m))).toEqual(['key 0', 'key 1']);

    const lazy = base.fork();
    const ku = lazy.attacker.seal(InnerType.keyUpdate, Uint8Array.of(0)); // announces, keeps its key
    lazy.toHonest([ku, lazy.attacker.seal(InnerType.applicationFinal, text('old key'))]);
    expectRejected(lazy, 'ERR_BAD_RECORD_MAC', Alert.badRecordMac, { completed: true });
  });

  it('a requested KeyUpdate is answered once, just before the next application record, and both directions keep working', () => {
    const d = setup(role).run();
    const before = d.sent.length;
    d.toHonest(d.attacker.sendKeyUpdate(true));
    // RFC 8446 4.6.3: the answer waits for this side's next application data.
    expect(d.sent.length).toBe(before);
    expect(d.honest.keyUpdatePending).toBe(true);
    d.toAttacker(d.honest.send(text('after update')));
    expect(d.tap.items.filter((i) => i.kind === 'keyUpdate' || i.kind === 'application').map((i) => i.kind)).toEqual(['keyUpdate', 'application']);
    expect(d.tap.items.filter((i) => i.kind === 'keyUpdate')).toEqual([{ kind: 'keyUpdate', request: false }]);
    expect(d.honest.keyUpdatePending).toBe(false);
    expect(d.attacker.messages.map((m) => new TextDecoder().decode(m))).toEqual(['after update']);
    d.toHonest(d.attacker.sendApplication(text('me too')));
    expect(d.delivered.map((m) => new TextDecoder().decode(m))).toEqual(['me too']);
    expect(d.error).toBeUndefined();
  });

  it('a storm of KeyUpdate requests: no answer while silent, one answer in all, and unexpected_message after 32 in a row', () => {
    const d = setup(role).run();
    const before = d.sent.length;
    const storm = (n: number): Uint8Array => concat(...Array.from({ length: n }, () => d.attacker.sendKeyUpdate(true)).flat());
    // 32 requests (the limit) in one socket message: accepted, nothing sent back.
    d.toHonest([storm(MAX_KEY_UPDATES_IN_A_ROW)]);
    expect(d.error).toBeUndefined();
    expect(d.sent.length - before).toBe(0);
    // This side speaks: one KeyUpdate answers all 32, then the data.
    d.toAttacker(d.honest.send(text('one answer')));
    d.toAttacker(d.honest.send(text('and no more')));
    expect(d.tap.items.filter((i) => i.kind === 'keyUpdate')).toEqual([{ kind: 'keyUpdate', request: false }]);
    expect(d.attacker.messages.map((m) => new TextDecoder().decode(m))).toEqual(['one answer', 'and no more']);
    // Application data from the peer starts a new count: 32 more are fine...
    d.toHonest(d.attacker.sendApplication(text('data')));
    d.toHonest([storm(MAX_KEY_UPDATES_IN_A_ROW)]);
    expect(d.error).toBeUndefined();
    expect(d.delivered).toHaveLength(1);
    // ...and the 33rd in a row ends the session.
    d.toHonest([storm(1)]);
    expectRejected(d, 'ERR_UNEXPECTED_MESSAGE', Alert.unexpectedMessage, { completed: true });
    expect(d.tap.items.filter((i) => i.kind === 'keyUpdate')).toHaveLength(1);
  });

  it('sequence exhaustion on the receive side (limit forced to 8): sequence_exhausted, after exactly the limit', () => {
    const d = setup(role, { honest: { sequenceLimit: 8, keyUpdateInterval: 4 } }).run();
    expect(d.completed).toBe(true);
    for (let i = 0; i < 8; i++) d.toHonest(d.attacker.sendApplication(text(`m${i}`)));
    expect(d.delivered).toHaveLength(8);
    expect(d.error).toBeUndefined();
    d.toHonest(d.attacker.sendApplication(text('one too many')));
    expectRejected(d, 'ERR_SEQUENCE_EXHAUSTED', Alert.sequenceExhausted, { completed: true });
    expect(d.delivered).toHaveLength(8);
  });

  it('with key updates before the limit, a small limit never ends the session (300 messages each way)', () => {
    const d = setup(role, { honest: { sequenceLimit: 8, keyUpdateInterval: 5 } }).run();
    for (let i = 0; i < 300; i++) {
      if (i % 5 === 4) d.toHonest(d.attacker.sendKeyUpdate(false));
      d.toHonest(d.attacker.sendApplication(text(`c${i}`)));
      d.toAttacker(d.honest.send(text(`s${i}`)));
    }
    expect(d.error).toBeUndefined();
    expect(d.delivered).toHaveLength(300);
    expect(d.attacker.messages).toHaveLength(300);
    expect(d.tap.items.filter((i) => i.kind === 'keyUpdate').length).toBeGreaterThanOrEqual(59);
  });

  it('endless fragments: message_too_large at maxMessageSize, before buffering more', () => {
    const d = setup(role, { honest: { maxMessageSize: 1024 * 1024 } }).run();
    for (let i = 0; i < 16; i++) d.toHonest([d.attacker.seal(InnerType.applicationFragment, new Uint8Array(65536))]);
    expect(d.error).toBeUndefined();
    d.toHonest([d.attacker.seal(InnerType.applicationFragment, new Uint8Array(65536))]);
    expectRejected(d, 'ERR_MESSAGE_TOO_LARGE', Alert.messageTooLarge, { completed: true });
  });

  it('a non-final fragment that is not full (empty, one byte, one byte short): decode_error at once', () => {
    const base = setup(role).run();
    for (const size of [0, 1, 65535]) {
      const d = base.fork();
      d.toHonest([d.attacker.seal(InnerType.applicationFragment, new Uint8Array(size))]);
      expectRejected(d, 'ERR_DECODE', Alert.decodeError, { completed: true, what: `fragment of ${size} bytes` });
    }
  });
});
