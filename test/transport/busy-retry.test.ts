/**
 * The client retries a busy server (issue 10, item 5): a listener over its per-address
 * handshake rate refuses with server_busy (ERR_SERVER_BUSY); the transport
 * waits a bounded, jittered, growing delay, says so (onBusyRetry), reconnects and sends the
 * SDK's `initialize` again, so client.connect() succeeds with nothing lost. Disabled, or out
 * of attempts, the typed ServerBusyError reaches client.connect(); close() while waiting
 * gives up cleanly. Real sockets on 127.0.0.1, real SDK client and server.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ClosedError, InvalidArgumentError, ServerBusyError } from '../../src/errors.js';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import { BUSY_RETRY_DEFAULTS, busyRetryDelay, resolveBusyRetry } from '../../src/transport/busy-retry.js';
import type { BusyRetryEvent, BusyRetryOptions } from '../../src/transport/busy-retry.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, connectClient, startFeatureServer, waitFor } from '../helpers/mcp.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/**
 * A listener that admits one new handshake per second per address (handshakeRatePerSource
 * 1), whose token a first honest client has just spent: the next handshake from 127.0.0.1
 * within the second is refused with server_busy before any work.
 */
async function busyServer(ratePerSecond = 1) {
  const { server, url } = await startFeatureServer(cleanup, { handshakeRatePerSource: ratePerSecond });
  await connectClient(cleanup, url, { backend: 'native', busyRetry: false });
  return { server, url };
}

function client(url: string, busyRetry: false | BusyRetryOptions | undefined, events: BusyRetryEvent[]) {
  const transport = new PqmcpClientTransport(url, {
    identity: agent('agent://pqmcp-test/client'),
    trust: trustFor(),
    backend: 'native',
    expectedServerId: SERVER_ID,
    ...(busyRetry !== undefined ? { busyRetry } : {}),
    onBusyRetry: (e) => void events.push(e),
  });
  const c = new Client({ name: 'retrying', version: '1' });
  cleanup.add(() => c.close());
  return { transport, client: c };
}

describe('retrying a busy server', () => {
  it('retries with growing, jittered delays, says so, and connects once a slot frees: initialize is sent again, nothing lost', async () => {
    const { url } = await busyServer();
    const events: BusyRetryEvent[] = [];
    const policy = { attempts: 20, baseDelayMs: 100, maxDelayMs: 400 };
    const { transport, client: c } = client(url, policy, events);
    let closes = 0;
    await c.connect(transport);
    transport.onclose = ((prev) => () => {
      closes++;
      prev?.();
    })(transport.onclose);
    const r = await c.callTool({ name: 'echo', arguments: { text: 'through' } });
    expect(r.content).toEqual([{ type: 'text', text: 'through' }]);
    expect(transport.peer?.agentId).toBe(SERVER_ID);
    expect(events.length).toBeGreaterThanOrEqual(1);
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

  it('busyRetry: false: client.connect() rejects with ServerBusyError at once, no retry', async () => {
    const { url } = await busyServer();
    const events: BusyRetryEvent[] = [];
    const { transport, client: c } = client(url, false, events);
    await expect(c.connect(transport)).rejects.toBeInstanceOf(ServerBusyError);
    expect(events).toEqual([]);
  });

  it('out of attempts: ServerBusyError after exactly `attempts` retries', async () => {
    const { url } = await busyServer();
    const events: BusyRetryEvent[] = [];
    const { transport, client: c } = client(url, { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 }, events);
    await expect(c.connect(transport)).rejects.toBeInstanceOf(ServerBusyError);
    expect(events.map((e) => e.attempt)).toEqual([1, 2]);
  });

  it('close() while waiting to retry: the pending initialize rejects with ClosedError and onclose fires', async () => {
    const { url } = await busyServer();
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
