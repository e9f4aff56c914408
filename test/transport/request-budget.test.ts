/**
 * The listener's bound over all sessions' request bytes in flight (request-budget.ts;
 * decision 8, part 2), on MessagePipelines sharing one RequestBudget (no sockets; the real
 * listener: test/load/inflight-total.test.ts): under the limit only the per-session rule;
 * above it a session past its fair share is refused and one under it is not; the share is
 * per agent (R11-7): one agent's many sessions weigh as one, and split its share; held
 * cancelled requests count uncapped, and expire for the total too; the total returns to 0.
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

/** Opens sessions on pipelines sharing `budget`: each of its own agent, or of `agentId`'s. */
function sessions(budget: RequestBudget, now: () => number, maxRequestBytes = 1000) {
  let n = 0;
  return (agentId = `agent://s${n}`): Side => {
    const side: Side = { delivered: [], refused: [], messages: [], errors: [] } as unknown as Side;
    side.pipeline = new MessagePipeline(
      [],
      { role: 'server', peer: { agentId } as VerifiedPeer, sessionId: `s${n++}`, remoteAddress: undefined },
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
      expect(new Set(recounts.mock.contexts)).toEqual(new Set(early.map((s) => (s.pipeline as unknown as { requests: { share: RequestShare } }).requests.share)));
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

  it('the share is per agent: one agent\'s 20 sessions holding the total leave another agent\'s one session limit / 2 (not limit / 21); hers, a new one too, get nothing while she is past hers (R11-7)', async () => {
    const budget = new RequestBudget(2000);
    const open = sessions(budget, Date.now, 1_000_000);
    // mallory fills the limit with 20 sessions of 100 bytes each (under it only the per-session rule applies).
    const mallory = Array.from({ length: 20 }, () => open('agent://mallory'));
    for (const s of mallory) s.pipeline.fromPeer(request(1), 100);
    expect([budget.total, budget.sessions]).toEqual([2000, 20]);
    // bob's one session: two agents hold, his share is 2000 / 2 (the previous code: 2000 / 21 = 95, which refused his 900).
    const bob = open('agent://bob');
    bob.pipeline.fromPeer(request(1), 900);
    bob.pipeline.fromPeer(request(2), 100);
    bob.pipeline.fromPeer(request(3), 1);
    await Promise.resolve();
    expect(bob.delivered).toEqual([1, 2]);
    expect(bob.refused).toEqual([[3, -32005, { scope: 'listener' }]]);
    expect(bob.errors[0]!.message).toMatch(/held 1000 bytes and all sessions' 3000, .*its share, 1000 bytes, of its agent's 1000 \(its agent's sessions held 1000\); it was refused$/);
    expect(budget.agents).toBe(2);
    // mallory (2000) is past her agent's share (1000): each of her sessions is refused even 10
    // bytes, and so is a new session of hers (the previous code admitted that one: 2000 / 22).
    const late = open('agent://mallory');
    for (const s of [...mallory, late]) s.pipeline.fromPeer(request(2), 10);
    await Promise.resolve();
    expect([...mallory, late].map((s) => [s.delivered.length, s.refused.length])).toEqual([...Array(20).fill([1, 1]), [0, 1]]);
    // A third agent: floor(2000 / 3) = 666, whatever mallory's sessions number.
    const carol = open('agent://carol');
    carol.pipeline.fromPeer(request(1), 667);
    carol.pipeline.fromPeer(request(2), 666);
    await Promise.resolve();
    expect(carol.refused.map((r) => r[0])).toEqual([1]);
    expect(carol.delivered).toEqual([2]);
    // The bound, L (1 + 1/2 + 1/3) for three agents, here reached (floors aside).
    expect([budget.total, budget.sessions, budget.agents]).toEqual([3666, 22, 3]);
    // Answers bring mallory back under her share (now floor(2000 / 3) = 666): 14 answered leave her 600.
    for (const s of mallory.slice(0, 14)) await answer(s, 1);
    expect(budget.sessions).toBe(8);
    late.pipeline.fromPeer(request(3), 66);
    late.pipeline.fromPeer(request(4), 1);
    await Promise.resolve();
    expect(late.delivered).toEqual([3]);
    expect(late.refused.map((r) => r[0])).toEqual([2, 4]);
    for (const s of [...mallory, late, bob, carol]) s.pipeline.close();
    expect([budget.total, budget.sessions, budget.agents]).toEqual([0, 0, 0]);
  });

  it('an agent\'s sessions split its share evenly while they hold requests, and the agent\'s share bounds them together (R11-7)', async () => {
    const budget = new RequestBudget(1000);
    const open = sessions(budget, Date.now, 1_000_000);
    const filler = open();
    filler.pipeline.fromPeer(request(1), 1000);
    // Over the limit, two agents: bob's share is 500.
    const bob1 = open('agent://bob');
    const bob2 = open('agent://bob');
    bob1.pipeline.fromPeer(request(1), 100);
    // bob2's 300 fits bob's share (400 <= 500) but not its even part of it (500 / 2 sessions);
    // the previous code admitted it (1000 / 3 sessions holding = 333).
    bob2.pipeline.fromPeer(request(1), 300);
    bob2.pipeline.fromPeer(request(2), 250);
    // bob1 up to its own even part (250), then nothing: bob's 500 are used.
    bob1.pipeline.fromPeer(request(2), 150);
    bob1.pipeline.fromPeer(request(3), 1);
    // A new session of bob's: its part would be 500 / 3, but bob holds his share.
    const bob3 = open('agent://bob');
    bob3.pipeline.fromPeer(request(1), 1);
    await Promise.resolve();
    expect([bob1.delivered, bob2.delivered, bob3.delivered]).toEqual([[1, 2], [2], []]);
    expect([bob1.refused, bob2.refused, bob3.refused].map((r) => r.map((x) => x[0]))).toEqual([[3], [1], [1]]);
    expect(bob2.errors[0]!.message).toMatch(/its share, 250 bytes, of its agent's 500 \(its agent's sessions held 100\)/);
    expect(bob3.errors[0]!.message).toMatch(/its share, 166 bytes, of its agent's 500 \(its agent's sessions held 500\)/);
    expect([budget.total, budget.sessions, budget.agents]).toEqual([1500, 3, 2]);
  });

  it('a share joined without an agent id is its own agent; the tallies follow the charges (random steps), and the total stays under L (1 + 1/2 + .. + 1/A) for A agents holding, which greedy agents reach (R11-7)', () => {
    const L = 10_000;
    const budget = new RequestBudget(L);
    const harmonic = (n: number): number => Array.from({ length: n }, (_, i) => 1 / (i + 1)).reduce((a, b) => a + b, 0);
    interface Member { share: RequestShare; agent: string | undefined; bytes: number }
    const members: Member[] = [];
    const join = (agent: string | undefined): Member => {
      const m = { agent, bytes: 0 } as Member;
      m.share = budget.join(() => ({ bytes: m.bytes }), () => 0, agent);
      members.push(m);
      return m;
    };
    /** The bound, and the total and sessions holding as the members say; `agents`: the agents holding too. */
    const check = (agents = true): void => {
      const holding = members.filter((m) => m.bytes > 0);
      const holders = new Set(holding.map((m) => m.agent ?? m));
      expect(budget.total).toBeLessThanOrEqual(L * harmonic(holders.size));
      expect([budget.total, budget.sessions]).toEqual([holding.reduce((a, m) => a + m.bytes, 0), holding.length]);
      if (agents) expect(budget.agents).toBe(holders.size);
    };
    /** Asks for the most the budget admits (admission is monotone in the bytes). */
    const greedy = (m: Member): number => {
      let lo = 0;
      for (let hi = L; lo < hi; ) {
        const mid = Math.ceil((lo + hi) / 2);
        if (m.share.admit(mid) === undefined) lo = mid;
        else hi = mid - 1;
      }
      m.bytes += lo;
      m.share.update();
      return lo;
    };
    // Greedy agents, one after another, 30 sessions each: the first takes L, each later agent
    // j takes L / j, its other sessions nothing. The previous code gave the first agent's
    // sessions L / 2, L / 3, ... (L x 4 with one agent holding).
    for (let agent = 1; agent <= 6; agent++) {
      for (let s = 0; s < 30; s++) {
        greedy(join(`agent://greedy${agent}`));
        check(false);
      }
    }
    expect(budget.agents).toBe(6);
    expect(budget.total).toBeGreaterThan(L * harmonic(6) - 6);
    // Two shares without an agent id are two agents; two with one id, one.
    const [x, y, a1, a2] = [join(undefined), join(undefined), join('agent://a'), join('agent://a')];
    for (const m of [x, y, a1, a2]) {
      m.bytes = 10;
      m.share.update();
    }
    expect([budget.sessions, budget.agents]).toEqual([6 + 4, 6 + 3]);
    for (const m of [x, y, a1, a2]) {
      m.bytes = 0;
      m.share.release();
    }
    check();
    // Random steps: requests (greedy or small), answers, closes, new sessions of 8 agents or none.
    let seed = 7;
    const rand = (n: number): number => (seed = (seed * 48_271) % 2_147_483_647) % n;
    for (let step = 0; step < 3000; step++) {
      const r = rand(10);
      const m = members[rand(members.length)]!;
      if (r < 2) join(rand(3) === 0 ? undefined : `agent://r${rand(8)}`);
      else if (r < 4) greedy(m);
      else if (r < 6) {
        const bytes = 1 + rand(500);
        if (m.share.admit(bytes) === undefined) {
          m.bytes += bytes;
          m.share.update();
        }
      } else if (r < 9) {
        m.bytes -= Math.min(m.bytes, 1 + rand(2000));
        m.share.update();
      } else {
        m.bytes = 0;
        m.share.release();
      }
      check();
    }
  });

  it('the limit must be a positive integer, and says so (0 is "none" at the listener, which then makes no budget: R11-8)', () => {
    for (const bad of [0, -1, 1.5]) expect(() => new RequestBudget(bad)).toThrow(/^maxRequestBytesInFlightTotal must be a positive integer of bytes \(for no limit make no RequestBudget: a listener given 0 makes none\)$/);
  });
});
