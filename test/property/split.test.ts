/**
 * Property: any split of the byte stream into transport frames gives the same result.
 * - Session level, both roles: a peer's whole handshake flight plus application messages of
 *   any size (0 B .. 200 KB, so multi-fragment ones too), cut at any offsets (single bytes
 *   included), yields exactly the handshake and the same messages in the same order as the
 *   uncut stream.
 * - Socket level: the same through real WebSocket frames to the real listener.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { concat } from '../../src/bytes.js';
import { Cleanup, waitFor } from '../helpers/mcp.js';
import { Paused } from '../adversarial/fixtures.js';
import { splitAt, type Role } from '../adversarial/harness.js';
import { HostileClient } from '../adversarial/socket-harness.js';
import { INITIALIZE, attackerAs, honestServer } from '../adversarial/socket-fixtures.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Up to four messages of 0 B .. 200 KB (a pattern, so a misplaced byte shows). */
const messages = fc.array(
  fc.integer({ min: 0, max: 200_000 }).map((n) => {
    const m = new Uint8Array(n);
    for (let i = 0; i < n; i++) m[i] = (i * 31 + n) & 0xff;
    return m;
  }),
  { maxLength: 4 },
);
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));

describe.each(['server', 'client'] as const)('honest %s: any split of the peer’s stream', (role: Role) => {
  // Paused before the peer's first message: the peer's whole flight is still to come.
  const p = new Paused(role, role === 'server' ? 'Credential' : 'ServerHello');

  it('gives the same handshake and the same messages, in order', () => {
    fc.assert(
      fc.property(messages, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 }), fc.boolean(), (msgs, cuts, bytewise) => {
        const d = p.base.fork();
        const flight = d.attacker.release();
        const data = msgs.flatMap((m) => d.attacker.sendApplication(m));
        const stream = concat(...flight, ...data);
        // Either random cuts, or one byte per frame over a random window.
        const split = bytewise
          ? (s: Uint8Array) => splitAt(s, Array.from({ length: Math.min(s.length, 600) }, (_, i) => Math.floor((cuts[0] ?? 0) * (s.length - 600)) + i))
          : (s: Uint8Array) => splitAt(s, cuts.map((c) => Math.floor(c * s.length)));
        d.toHonest([stream], split);
        expect(d.error).toBeUndefined();
        expect(d.events.map((e) => e.type)).toEqual(['handshake', ...msgs.map(() => 'message')]);
        expect(d.delivered.length).toBe(msgs.length);
        expect(d.delivered.every((m, i) => same(m, msgs[i]!))).toBe(true);
        expect(d.honest.bufferedBytes).toBe(0);
      }),
      { numRuns: 40 },
    );
  });
});

describe('through real WebSocket frames', () => {
  it('any split of a hostile client’s frames: the handshake and MCP work', async () => {
    const log = await honestServer(cleanup);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 30 }), async (offsets) => {
        const split = (s: Uint8Array) => splitAt(s, offsets);
        const h = await HostileClient.connect(log.url, attackerAs(), { frames: split }, cleanup);
        await h.handshake;
        await h.write(h.attacker.sendApplication(INITIALIZE));
        await waitFor(() => h.attacker.messages.length === 1, 10_000, 'initialize response');
        expect(JSON.parse(new TextDecoder().decode(h.attacker.messages[0]))).toMatchObject({ id: 0, result: { serverInfo: { name: 'adversarial' } } });
        h.ws.terminate();
      }),
      { numRuns: 6 },
    );
    expect(log.clientErrors.every((e) => e.code === 'ERR_TRUNCATED')).toBe(true);
  });
});
