/**
 * The client retries a busy server (issue 10, item 5): a listener over its per-address
 * handshake rate refuses with server_busy (ERR_SERVER_BUSY); the transport
 * waits a bounded, jittered, growing delay, says so (onBusyRetry), reconnects and sends the
 * SDK's `initialize` again, so client.connect() succeeds with nothing lost. Disabled, or out
 * of attempts, the typed ServerBusyError reaches client.connect(); close() while waiting
 * gives up cleanly (these three against a draining listener, busy on every attempt). The same for an upgrade refused HTTP 429 by the per-address connection
 * rate (nothing is built for it). Real sockets on 127.0.0.1, real SDK client and server.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { SUBPROTOCOL } from '../../src/transport/options.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ClosedError, InvalidArgumentError, ServerBusyError } from '../../src/errors.js';
import { PqmcpClientTransport, ticketStoreKey } from '../../src/transport/index.js';
import type { PqmcpClientOptions, PqmcpServerOptions } from '../../src/transport/index.js';
import { createNativeBackend } from '../../src/crypto/native.js';
import { MemoryTicketStore, TicketKeys, type ClientTicket } from '../../src/resumption/index.js';
import { BUSY_RETRY_DEFAULTS, busyRetryDelay, resolveBusyRetry } from '../../src/transport/busy-retry.js';
import type { BusyRetryEvent, BusyRetryOptions } from '../../src/transport/busy-retry.js';
import type { CryptoPool } from '../../src/transport/crypto-pool.js';
import type { Edge } from '../../src/transport/edge.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, connectClient, startFeatureServer, waitFor } from '../helpers/mcp.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/**
 * A listener that admits one new handshake per second per address (handshakeRatePerSource
 * 1), whose token a first honest client has spent: the next handshake from 127.0.0.1 is
 * refused with server_busy before any work until the test moves the rate's clock a second
 * on. The rate runs on a clock the test holds (the pool's internal seam, testRateClock):
 * on the real one the token came back a second later, and on a loaded machine the retrying
 * client's first handshake came after that and was never refused.
 */
async function busyServer(serverOptions: Partial<PqmcpServerOptions> = {}, firstClient: Pick<PqmcpClientOptions, 'tickets'> = {}) {
  const { server, url } = await startFeatureServer(cleanup, { handshakeRatePerSource: 1, ...serverOptions });
  let time = 0;
  (server as unknown as { edge: { pool: CryptoPool } }).edge.pool.testRateClock = () => time;
  await connectClient(cleanup, url, { backend: 'native', busyRetry: false, ...firstClient });
  return { server, url, advanceRate: (ms: number) => void (time += ms) };
}

/**
 * A listener that refuses every connection as busy for as long as a test runs, whatever the
 * machine's load: draining (HTTP 503, which the client treats as busy like server_busy). The
 * rate-limited one above refills its token a second later, so a test that needs every
 * attempt refused cannot use it on a loaded machine.
 */
async function alwaysBusyServer() {
  const { server, url } = await startFeatureServer(cleanup, {});
  server.drain();
  return { server, url };
}

/**
 * A client connected through `url` with a busy retry and `tickets` as its store, seen
 * through a store that records what it takes, in order; each retry it is told of moves the
 * server's rate clock a second on.
 */
async function retryWithTickets(url: string, tickets: MemoryTicketStore, advanceRate: (ms: number) => void) {
  const taken: ClientTicket[] = [];
  const store = {
    take: (k: string, now: number) => {
      const t = tickets.take(k, now);
      if (t) taken.push(t);
      return t;
    },
    put: (k: string, t: ClientTicket) => tickets.put(k, t),
  };
  const events: BusyRetryEvent[] = [];
  const transport = new PqmcpClientTransport(url, {
    identity: agent('agent://pqmcp-test/client'),
    trust: trustFor(),
    backend: 'native',
    expectedServerId: SERVER_ID,
    tickets: store,
    busyRetry: { attempts: 5, baseDelayMs: 50, maxDelayMs: 100 },
    onBusyRetry: (e) => {
      events.push(e);
      advanceRate(1_000);
    },
  });
  const c = new Client({ name: 'retrying', version: '1' });
  cleanup.add(() => c.close());
  await c.connect(transport);
  return { transport, taken, events, client: c };
}

function client(url: string, busyRetry: false | BusyRetryOptions | undefined, events: BusyRetryEvent[], onEvent?: (e: BusyRetryEvent) => void) {
  const transport = new PqmcpClientTransport(url, {
    identity: agent('agent://pqmcp-test/client'),
    trust: trustFor(),
    backend: 'native',
    expectedServerId: SERVER_ID,
    ...(busyRetry !== undefined ? { busyRetry } : {}),
    onBusyRetry: (e) => {
      events.push(e);
      onEvent?.(e);
    },
  });
  const c = new Client({ name: 'retrying', version: '1' });
  cleanup.add(() => c.close());
  return { transport, client: c };
}

describe('retrying a busy server', () => {
  it('retries with growing, jittered delays, says so, and connects once a slot frees: initialize is sent again, nothing lost', async () => {
    const { url, advanceRate } = await busyServer();
    const events: BusyRetryEvent[] = [];
    const policy = { attempts: 20, baseDelayMs: 100, maxDelayMs: 400 };
    // Refused three times (caps 100, 200, 400 ms: growing, then capped); while the third
    // retry waits the source's token comes back, so the fourth attempt connects.
    const { transport, client: c } = client(url, policy, events, (e) => e.attempt === 3 && advanceRate(1_000));
    let closes = 0;
    await c.connect(transport);
    transport.onclose = ((prev) => () => {
      closes++;
      prev?.();
    })(transport.onclose);
    const r = await c.callTool({ name: 'echo', arguments: { text: 'through' } });
    expect(r.content).toEqual([{ type: 'text', text: 'through' }]);
    expect(transport.peer?.agentId).toBe(SERVER_ID);
    expect(events.map((e) => e.attempt)).toEqual([1, 2, 3]);
    events.forEach((e, i) => {
      const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** i);
      expect(e.attempt).toBe(i + 1);
      expect(e.attempts).toBe(20);
      expect(e.error).toBeInstanceOf(ServerBusyError);
      expect(e.delayMs).toBeGreaterThanOrEqual(cap / 2);
      expect(e.delayMs).toBeLessThanOrEqual(cap);
    });
    expect(closes).toBe(0); // the refused connections were not reported as the transport closing
  });

  it('with tickets: a busy refusal spends the ticket it offered (its PSK wiped); the retry takes the next one from the store and resumes', async () => {
    const tickets = new MemoryTicketStore();
    const { url, advanceRate } = await busyServer({ tickets: { keys: TicketKeys.generate(createNativeBackend()), ticketsPerSession: 2 } }, { tickets });
    const key = ticketStoreKey(new URL(url), SERVER_ID);
    await waitFor(() => tickets.count(key) === 2, 5_000, 'two tickets from the first session');
    const { transport, taken, events, client: c } = await retryWithTickets(url, tickets, advanceRate);
    const r = await c.callTool({ name: 'echo', arguments: { text: 'resumed' } });
    expect(r.content).toEqual([{ type: 'text', text: 'resumed' }]);
    expect(events).toHaveLength(1);
    // The refused attempt offered the first ticket (spent: its PSK wiped), the retry the second.
    expect(taken).toHaveLength(2);
    expect(taken[0]!.psk.every((b) => b === 0)).toBe(true);
    expect(taken[1]!.psk.every((b) => b === 0)).toBe(true);
    expect(transport.resumed).toBe(true);
    expect(transport.peer?.agentId).toBe(SERVER_ID);
  });

  it('busyRetry: false: client.connect() rejects with ServerBusyError at once, no retry', async () => {
    const { url } = await alwaysBusyServer();
    const events: BusyRetryEvent[] = [];
    const { transport, client: c } = client(url, false, events);
    await expect(c.connect(transport)).rejects.toBeInstanceOf(ServerBusyError);
    expect(events).toEqual([]);
  });

  it('out of attempts: ServerBusyError after exactly `attempts` retries', async () => {
    const { url } = await alwaysBusyServer();
    const events: BusyRetryEvent[] = [];
    const { transport, client: c } = client(url, { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 }, events);
    await expect(c.connect(transport)).rejects.toBeInstanceOf(ServerBusyError);
    expect(events.map((e) => e.attempt)).toEqual([1, 2]);
  });

  it('close() while waiting to retry: the pending initialize rejects with ClosedError and onclose fires', async () => {
    const { url } = await alwaysBusyServer();
    const events: BusyRetryEvent[] = [];
    const { transport, client: c } = client(url, { attempts: 5, baseDelayMs: 5_000, maxDelayMs: 5_000 }, events);
    let closed = false;
    const connecting = c.connect(transport).then(
      () => undefined,
      (e: unknown) => e,
    );
    await waitFor(() => events.length === 1, 5_000, 'the first retry to be scheduled');
    transport.onclose = ((prev) => () => {
      closed = true;
      prev?.();
    })(transport.onclose);
    await transport.close();
    const got = await connecting;
    expect(got, String(got)).toBeInstanceOf(ClosedError);
    await waitFor(() => closed, 2_000, "onclose");
    await expect(transport.handshake).rejects.toBeInstanceOf(ClosedError);
  });
});

describe('a listener past its per-address connection rate (HTTP 429 before the upgrade)', () => {
  /**
   * The listener's per-address rates run on a clock the test holds (the edge's internal
   * seam, testRateClock): the burst is spent and refilled when the test says, not as real
   * seconds pass (on a loaded machine a token came back before the client's first try).
   */
  async function rateServer(options: Parameters<typeof startFeatureServer>[1]) {
    const { server, url } = await startFeatureServer(cleanup, options);
    let time = 0;
    (server as unknown as { edge: Edge }).edge.testRateClock = () => time;
    return { server, url, advanceRate: (ms: number) => void (time += ms) };
  }

  /** Raw upgrades from 127.0.0.1: how many opened as WebSockets, and the HTTP statuses of the rest. */
  async function rawUpgrades(url: string, n: number): Promise<{ opened: number; statuses: number[] }> {
    const statuses: number[] = [];
    let opened = 0;
    await Promise.all(
      Array.from({ length: n }, () =>
        new Promise<void>((resolve) => {
          const ws = new WebSocket(url, [SUBPROTOCOL]);
          ws.on('open', () => {
            opened++;
            ws.terminate();
            resolve();
          });
          ws.on('unexpected-response', (_req, res) => {
            statuses.push(res.statusCode ?? 0);
            res.resume();
            res.on('end', () => resolve());
          });
          ws.on('error', () => resolve());
        }),
      ),
    );
    return { opened, statuses };
  }

  it('past the burst, upgrades get 429 with no WebSocket, Session or slot built; the client retries and connects', async () => {
    // acceptRatePerSource 0: this is the upgrade's rate alone (by default the accept's, ten
    // times it with a burst of 10, would refuse the 11th connect of this quick burst at once:
    // test/transport/accept-rate.test.ts).
    const { server, url, advanceRate } = await rateServer({ connectionRatePerSource: 1, acceptRatePerSource: 0 });
    // The burst (three seconds' worth) opens; then, while more are held for their 429, the client tries.
    const burst = await rawUpgrades(url, 3);
    expect(burst).toEqual({ opened: 3, statuses: [] });
    const more = rawUpgrades(url, 9);
    const events: BusyRetryEvent[] = [];
    // Each refusal the client is told of moves the rate's clock a second on: one token back.
    const { transport, client: c } = client(url, { attempts: 10, baseDelayMs: 200, maxDelayMs: 1_000 }, events, () => advanceRate(1_000));
    await c.connect(transport);
    const r = await c.callTool({ name: 'echo', arguments: { text: 'through' } });
    expect(r.content).toEqual([{ type: 'text', text: 'through' }]);
    // Its first upgrade was refused (the bucket was empty), then retried.
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(events[0]!.error).toBeInstanceOf(ServerBusyError);
    expect(events[0]!.error.message).toContain('HTTP 429');
    const rest = await more;
    expect(rest.opened + rest.statuses.length).toBe(9);
    expect(rest.opened).toBeLessThanOrEqual(2); // at most what refilled meanwhile
    // Exactly: one token per second the test moved the clock on, and the client took the last.
    expect(rest.opened).toBe(events.length - 1);
    expect(new Set(rest.statuses)).toEqual(new Set([429]));
    // Every refusal was counted, and none of them held a pending-handshake slot.
    expect(server.refusedConnections).toBe(rest.statuses.length + events.length);
    await waitFor(() => server.pendingHandshakes === 0, 5_000, 'the opened sockets to be released');
  });

  it('with tickets: an upgrade refused 429 puts back the ticket it took (nothing was sent); the retry resumes with it', async () => {
    // Before: the refused attempt dropped its ticket unused, and the retry made a full handshake.
    const tickets = new MemoryTicketStore();
    const { url, advanceRate } = await rateServer({ connectionRatePerSource: 1, acceptRatePerSource: 0, tickets: { keys: TicketKeys.generate(createNativeBackend()) } });
    await connectClient(cleanup, url, { backend: 'native', busyRetry: false, tickets });
    const key = ticketStoreKey(new URL(url), SERVER_ID);
    await waitFor(() => tickets.count(key) === 1, 5_000, 'a ticket from the first session');
    // The rest of the burst (three seconds' worth; the first session took one).
    expect((await rawUpgrades(url, 2)).opened).toBe(2);
    const { transport, taken, events } = await retryWithTickets(url, tickets, advanceRate);
    expect(events).toHaveLength(1);
    expect(events[0]!.error.message).toContain('HTTP 429');
    // The same ticket twice: taken, put back unspent, taken again and offered.
    expect(taken).toHaveLength(2);
    expect(taken[1]).toBe(taken[0]);
    expect(transport.resumed).toBe(true);
    expect(taken[0]!.psk.every((b) => b === 0)).toBe(true);
  });

  it('busyRetry: false: client.connect() rejects with ServerBusyError (HTTP 429)', async () => {
    const { url } = await rateServer({ connectionRatePerSource: 1 });
    expect((await rawUpgrades(url, 3)).opened).toBe(3);
    const events: BusyRetryEvent[] = [];
    const { transport, client: c } = client(url, false, events);
    const error = await c.connect(transport).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ServerBusyError);
    expect(String((error as Error).message)).toContain('HTTP 429');
    expect(events).toEqual([]);
  });

  it('connectionRatePerSource is checked', async () => {
    await expect(startFeatureServer(cleanup, { connectionRatePerSource: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(startFeatureServer(cleanup, { connectionRatePerSource: 1.5 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('the backoff policy', () => {
  it('equal jitter within [cap/2, cap], cap doubling up to maxDelayMs; options checked', () => {
    const p = resolveBusyRetry({ baseDelayMs: 100, maxDelayMs: 1_000, attempts: 6 })!;
    expect([1, 2, 3, 4, 5, 6].map((n) => busyRetryDelay(p, n, () => 0))).toEqual([50, 100, 200, 400, 500, 500]);
    expect([1, 2, 3, 4, 5, 6].map((n) => busyRetryDelay(p, n, () => 0.999999))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(resolveBusyRetry(undefined)).toEqual(BUSY_RETRY_DEFAULTS);
    expect(resolveBusyRetry(false)).toBeUndefined();
    expect(resolveBusyRetry({ attempts: 0 })).toBeUndefined();
    expect(() => resolveBusyRetry({ attempts: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => resolveBusyRetry({ baseDelayMs: -1 })).toThrow(InvalidArgumentError);
    expect(() => resolveBusyRetry('yes' as never)).toThrow(InvalidArgumentError);
  });
});
