/**
 * Property: any single-bit flip in any handshake message or record is rejected.
 * - In flight (a network attacker): a flipped bit in any of the eight handshake records
 *   never lets both sides complete, and nothing is delivered; every failure is a typed
 *   protocol error (never ERR_INTERNAL), a stalled side ends in ERR_TRUNCATED.
 * - Inside the plaintext of a protected handshake message (a key-holding peer re-seals the
 *   altered message): the honest side never completes. This also checks that no bit of a
 *   composite signature or credential can change without detection (non-malleability).
 * - In an application record: the exact error each header bit predicts, bad_record_mac for
 *   any other bit, and the message is never delivered.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createPair, errorOf, runPair } from '../helpers/pair.js';
import { Paused, RECEIVED_MESSAGES, fixtures, native, setup } from '../adversarial/fixtures.js';
import type { MessageName, Role } from '../adversarial/harness.js';

// CREDENTIAL_USAGE and NAME_CONSTRAINT: a flipped bit of a credential's usage byte (or agent id)
// is refused at steps 2a-2b of protocol.md 6.3, before the issuer's signature is checked.
const REFUSALS = /^ERR_(DECODE|UNEXPECTED_MESSAGE|UNSUPPORTED_VERSION|UNSUPPORTED_SUITE|BAD_RECORD_MAC|RECORD_OVERFLOW|BAD_SIGNATURE|BAD_FINISHED|INVALID_KEY|CREDENTIAL_INVALID|CREDENTIAL_USAGE|NAME_CONSTRAINT|UNTRUSTED_ISSUER|PEER_ALERT|PEER_ABORTED|TRUNCATED)$/;

describe('a network attacker flips one bit of one handshake record in flight', () => {
  it('both sides never complete; every failure is a typed refusal; nothing is delivered', () => {
    const f = fixtures();
    // Records per flight: ClientHello | ServerHello, Credential, CredentialVerify, Finished | Credential, CredentialVerify, Finished (+ data)
    const records = [
      [0, 0],
      [1, 0],
      [1, 1],
      [1, 2],
      [1, 3],
      [2, 0],
      [2, 1],
      [2, 2],
    ] as const;
    fc.assert(
      fc.property(fc.constantFrom(...records), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), ([flight, index], where) => {
        const pair = createPair({ backend: native, identity: f.client.local, trust: f.trust }, { backend: native, identity: f.server.local, trust: f.trust });
        let flippedAt = -1;
        runPair(pair, {
          clientMessages: [new TextEncoder().encode('{"jsonrpc":"2.0","id":0,"method":"initialize"}')],
          tamper: (_dir, recs, n) => {
            if (n !== flight) return recs;
            const out = recs.slice();
            const r = out[index]!.slice();
            const bit = Math.floor(where * r.length * 8);
            r[bit >> 3]! ^= 0x80 >> (bit & 7);
            out[index] = r;
            flippedAt = bit;
            return out;
          },
        });
        expect(flippedAt).toBeGreaterThanOrEqual(0);
        const bothEstablished = pair.client.state === 'established' && pair.server.state === 'established';
        expect(bothEstablished, `bit ${flippedAt} of record ${index} in flight ${flight} went unnoticed`).toBe(false);
        // A side still waiting (a length field made it expect more bytes) sees the stream end.
        for (const [s, events] of [
          [pair.client, pair.clientEvents],
          [pair.server, pair.serverEvents],
        ] as const) {
          if (s.state === 'handshaking') events.push(...s.end());
          const e = errorOf(events);
          if (e) expect(e.code, e.message).toMatch(REFUSALS);
        }
        expect(pair.serverEvents.some((e) => e.type === 'message')).toBe(false);
      }),
      { numRuns: 80 },
    );
  });
});

describe('a key-holding peer flips one bit inside a protected handshake message', () => {
  const protectedMessages = RECEIVED_MESSAGES.filter(([, m]) => m !== 'ClientHello' && m !== 'ServerHello');
  const paused = new Map<string, Paused>();
  const pausedBefore = (role: Role, m: MessageName): Paused => {
    const key = `${role}:${m}`;
    if (!paused.has(key)) paused.set(key, new Paused(role, m));
    return paused.get(key)!;
  };

  it.each(protectedMessages)('honest %s, the attacker’s %s: never accepted', (role, message) => {
    const p = pausedBefore(role, message);
    const length = p.honestMessage.length;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: length * 8 - 1 }), (bit) => {
        const m = p.honestMessage.slice();
        m[bit >> 3]! ^= 0x80 >> (bit & 7);
        const d = p.deliver(m);
        expect(d.completed, `bit ${bit} accepted`).toBe(false);
        expect(d.error?.code ?? 'none', `bit ${bit}`).toMatch(REFUSALS);
      }),
      { numRuns: message === 'Finished' ? 256 : 120 },
    );
  });
});

describe('a network attacker flips one bit of an application record', () => {
  it.each(['server', 'client'] as const)('honest %s: the exact error, and the message is never delivered', (role) => {
    const base = setup(role).run();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 70_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (size, whichRecord, where) => {
        const d = base.fork();
        const records = d.attacker.sendApplication(new Uint8Array(size).fill(7));
        const i = Math.floor(whichRecord * records.length);
        const r = records[i]!.slice();
        const bit = Math.floor(where * r.length * 8);
        r[bit >> 3]! ^= 0x80 >> (bit & 7);
        records[i] = r;
        d.toHonest(records);
        if (!d.error) d.end(); // a length now longer than the bytes sent: the stream ends first
        expect(d.delivered).toEqual([]);
        expect(d.error?.code, `record ${i} of ${records.length}, bit ${bit}`).toMatch(bit < 32 ? /^ERR_(UNEXPECTED_MESSAGE|RECORD_OVERFLOW|DECODE|BAD_RECORD_MAC|TRUNCATED)$/ : /^ERR_BAD_RECORD_MAC$/);
      }),
      { numRuns: 150 },
    );
  });
});
