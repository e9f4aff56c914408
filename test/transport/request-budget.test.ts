/**
 * The listener's bound over all sessions' request bytes in flight (request-budget.ts;
 * decision 8, part 2), on MessagePipelines sharing one RequestBudget (no sockets; the real
 * listener: test/load/inflight-total.test.ts): under the limit only the per-session rule;
 * above it a session past its fair share is refused and one under it is not; held cancelled
 * requests count uncapped, and expire for the total too; the total returns to 0.
 */
import { describe, expect, it, vi } from 'vitest';
import { MessagePipeline, RequestBudget, RequestShare } from '../../src/transport/index.js';
import type { JsonRpcMessage } from '../../src/transport/index.js';
import { TooManyRequestBytesInFlightError } from '../../src/errors.js';
import type { PqmcpError } from '../../src/errors.js';
import type { VerifiedPeer } from '../../src/identity/trust.js';
import { CANCELLED_HOLD_MS } from '../../src/transport/cancelled-hold.js';

const request = (id: number): JsonRpcMessage => ({ jsonrpc: '2.0', id, method: 'tools/call', params: {} });
const cancel = (requestId: number): JsonRpcMessage => ({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason: 'test' } });

interface Side {
  pipeline: MessagePipeline;
  /** Ids delivered to the local side. */
  delivered: Array<string | number>;
  /** Refusals written to the peer: [id, code, data]. */
  refused: Array<[string | number | undefined, number | undefined, unknown]>;
  /** Their error messages. */
  messages: string[];
  errors: PqmcpError[];
}

function sessions(budget: RequestBudget, now: () => number, maxRequestBytes = 1000) {
  let n = 0;
  return (): Side => {
    const side: Side = { delivered: [], refused: [], messages: [], errors: [] } as unknown as Side;
    side.pipeline = new MessagePipeline(
      [],
      { role: 'server', peer: { agentId: `agent://s${n}` } as VerifiedPeer, sessionId: `s${n++}`, remoteAddress: undefined },
      {
        toPeer: async (_d, m) => {
          side.refused.push([m.id, m.error?.code, m.error?.data]);
          side.messages.push(m.error?.message ?? '');
        },
        toLocal: (m) => void (m.id !== undefined && side.delivered.push(m.id)),
        onerror: (e) => void side.errors.push(e),
      },
      { maxRequestBytes, now, shared: budget },
    );
    return side;
  };
}

const answer = (s: Side, id: number) => s.pipeline.toPeer({ jsonrpc: '2.0', id, result: {} });

describe('RequestBudget: the listener-wide bound on request bytes in flight', () => {
  it('under the limit only the per-session rule applies; above it a session at its share is refused, one under it and a new one are not; answers and closes bring the total to 0', async () => {
    const budget = new RequestBudget(600);
    const open = sessions(budget, Date.now);
    const a = open();
    const b = open();
    // a: 6 x 100 fill the listener (600 <= 600); the 7th would pass its own 1000 but not the listener (H = 1, share 600).
    for (let id = 1; id <= 7; id++) a.pipeline.fromPeer(request(id), 100);
    await Promise.resolve();
    expect(a.delivered).toEqual([1, 2, 3, 4, 5, 6]);
    expect(a.refused).toEqual([[7, -32005, { scope: 'listener' }]]);
    // The peer learns no figure of the listener (R11-6); the operator's error has them.
    expect(a.messages).toEqual(['pqmcp: too many request bytes in flight on this server (over all sessions); retry once earlier requests have been answered']);
    expect(a.errors[0]).toBeInstanceOf(TooManyRequestBytesInFlightError);
    expect(a.errors[0]!.message).toMatch(/held 600 bytes and all sessions' 600, past the listener's limit of 600 bytes \(maxRequestBytesInFlightTotal\).*share, 600 bytes/);
    expect(budget.total).toBe(600);
    // b holds nothing: over the limit, its share is 300 (two sessions holding, counting it).
    for (let id = 1; id <= 4; id++) b.pipeline.fromPeer(request(id), 100);
    await Promise.resolve();
    expect(b.delivered).toEqual([1, 2, 3]);
    expect(b.refused).toEqual([[4, -32005, { scope: 'listener' }]]);
    // a is past its share: even 10 bytes are refused.
    a.pipeline.fromPeer(request(8), 10);
    // A new session gets a request within its share (600 / 3), not one larger.
    const c = open();
    c.pipeline.fromPeer(request(1), 201);
    c.pipeline.fromPeer(request(2), 200);
    await Promise.resolve();
    expect(a.refused.map((r) => r[0])).toEqual([7, 8]);
    expect(c.refused).toEqual([[1, -32005, { scope: 'listener' }]]);
    expect(c.delivered).toEqual([2]);
    expect(budget.total).toBe(1100);
    expect(budget.sessions).toBe(3);
    // Answers free the total; below the limit a's next request passes again.
    for (let id = 1; id <= 6; id++) await answer(a, id);
    expect(budget.total).toBe(500);
    a.pipeline.fromPeer(request(9), 100);
    expect(a.delivered.at(-1)).toBe(9);
    // Closed sessions leave nothing behind.
    a.pipeline.close();
    b.pipeline.close();
    expect(budget.total).toBe(200);
    await answer(c, 2);
    expect(budget.total).toBe(0);
    expect(budget.sessions).toBe(0);
  });

  it('a cancelled request still held counts with its full bytes (not the session\'s capped charge) until answered or expired, and another session\'s admission recounts an expired hold', async () => {
    let time = 0;
    const budget = new RequestBudget(1000);
    const open = sessions(budget, () => time, 1000);
    const a = open();
    const b = open();
    // a cancels a 900-byte request: the session charges it 500 (half its 1000), the listener 900.
    a.pipeline.fromPeer(request(1), 900);
    a.pipeline.fromPeer(cancel(1), 60);
    expect(a.pipeline.cancelledHeld()).toEqual({ requests: 1, bytes: 500 });
    expect(budget.total).toBe(900);
    // b: 200 bytes would take the total to 1100; its share (1000 / 2) admits 2 x 200, not a third.
    for (let id = 1; id <= 3; id++) b.pipeline.fromPeer(request(id), 200);
    await Promise.resolve();
    expect(b.delivered).toEqual([1, 2]);
    expect(b.refused.map((r) => r[0])).toEqual([3]);
    // The hold ends while a sends nothing: b's next admission drops it from the total first (refused otherwise: 400 + 200 > 1000 / 2).
    time += CANCELLED_HOLD_MS;
    b.pipeline.fromPeer(request(4), 200);
    expect(b.delivered).toEqual([1, 2, 4]);
    expect(budget.total).toBe(600);
    expect(budget.sessions).toBe(1);
    // A late answer to a cancelled request also ends its charge for the listener.
    a.pipeline.fromPeer(request(2), 300);
    a.pipeline.fromPeer(cancel(2), 60);
    expect(budget.total).toBe(900);
    await answer(a, 2);
    expect(budget.total).toBe(600);
    b.pipeline.close();
    a.pipeline.close();
    expect(budget.total).toBe(0);
  });

  it('above the limit a request recounts only the sessions whose first held cancelled request has expired, not every session holding one (R11-1)', async () => {
    let time = 0;
    const budget = new RequestBudget(10_000);
    const open = sessions(budget, () => time, 1_000_000);
    const holdOne = (): Side => {
      const s = open();
      s.pipeline.fromPeer(request(1), 10);
      s.pipeline.fromPeer(cancel(1), 10);
      return s;
    };
    const heavy = open();
    heavy.pipeline.fromPeer(request(1), 10_000);
    const early = Array.from({ length: 100 }, holdOne);
    // x holds two: the first (t = 0) answered late at t = 10 s, so its first expiry is the second's (t = 90 s).
    const x = holdOne();
    time = 10_000;
    await answer(x, 1);
    time = 30_000;
    x.pipeline.fromPeer(request(2), 10);
    x.pipeline.fromPeer(cancel(2), 10);
    const late = Array.from({ length: 100 }, holdOne);
    expect(budget.total).toBe(12_010);
    const recounts = vi.spyOn(RequestShare.prototype, 'update');
    try {
      const ping = (id: number): void => heavy.pipeline.fromPeer(request(id), 50);
      // Nothing has expired: 1,000 refused pings recount nobody (the previous code: 201 sessions each).
      for (let id = 2; id < 1_002; id++) ping(id);
      expect(heavy.errors).toHaveLength(1_000);
      expect(recounts).toHaveBeenCalledTimes(0);
      // t = 60 s: the first 100 are due (x is not: its first hold now ends at 90 s), each recounted once.
      time = 60_000;
      for (let id = 1_002; id < 1_102; id++) ping(id);
      expect(recounts).toHaveBeenCalledTimes(100);
      expect(new Set(recounts.mock.contexts)).toEqual(new Set(early.map((s) => (s.pipeline as unknown as { share: RequestShare }).share)));
      expect(budget.total).toBe(11_010);
      expect(budget.sessions).toBe(102);
      // t = 90 s: the other 100 and x.
      time = 90_000;
      for (let id = 1_102; id < 1_202; id++) ping(id);
      expect(recounts).toHaveBeenCalledTimes(201);
      expect(budget.total).toBe(10_000);
      // The decisions are the rule's: the heavy session, alone now and at the limit, gets nothing more; nor did it before.
      expect(heavy.errors).toHaveLength(1_200);
      expect(heavy.delivered).toEqual([1]);
      expect(late.every((s) => s.pipeline.cancelledHeld().requests === 0)).toBe(true);
    } finally {
      recounts.mockRestore();
    }
  });

  it('reading the total or the sessions holding drops the expired holds, due ones only (R11-5)', () => {
    let time = 0;
    const budget = new RequestBudget(1_000_000);
    const open = sessions(budget, () => time, 1000);
    const a = open();
    const b = open();
    a.pipeline.fromPeer(request(1), 900);
    a.pipeline.fromPeer(cancel(1), 60);
    time = 30_000;
    b.pipeline.fromPeer(request(1), 100);
    b.pipeline.fromPeer(cancel(1), 60);
    expect([budget.total, budget.sessions]).toEqual([1000, 2]);
    const recounts = vi.spyOn(RequestShare.prototype, 'update');
    try {
      // Nobody sends anything: a's hold ends at 60 s, b's at 90 s; each read drops what is due, no more.
      time = 60_000;
      expect([budget.total, budget.sessions]).toEqual([100, 1]);
      expect(recounts).toHaveBeenCalledTimes(1);
      expect(budget.total).toBe(100);
      expect(recounts).toHaveBeenCalledTimes(1);
      time = 90_000;
      expect([budget.sessions, budget.total]).toEqual([0, 0]);
      expect(recounts).toHaveBeenCalledTimes(2);
    } finally {
      recounts.mockRestore();
    }
  });

  it('the limit must be a positive integer, and says so (0 is "none" at the listener, which then makes no budget: R11-8)', () => {
    for (const bad of [0, -1, 1.5]) expect(() => new RequestBudget(bad)).toThrow(/^maxRequestBytesInFlightTotal must be a positive integer of bytes \(for no limit make no RequestBudget: a listener given 0 makes none\)$/);
  });
});
