/**
 * Faults on real sockets: the TCP connections between a real MCP client and a real listener
 * are killed (through a proxy) before each record of the handshake and of an MCP exchange,
 * in both directions, and in the middle of a stream of concurrent calls; and one leg only
 * is killed during the handshake (the other stays open and silent). Each time both sides
 * must report a clear typed error, no promise may stay pending, and nothing may leak:
 * no pending handshake, session or TCP connection on the listener, no timer or socket
 * handle left in the process (tracked with async_hooks, unref'd timers included).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { PqmcpError } from '../../src/errors.js';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, waitFor } from '../helpers/mcp.js';
import { MitmProxy, trackHandles, type ProxyDirection } from '../adversarial/socket-harness.js';
import { SERVER_ID, connections, honestServer, type ServerLog } from '../adversarial/socket-fixtures.js';

/** `p`, or a rejection naming `what` once `ms` have passed (the timer is cleared either way). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms)));
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

interface Outcome {
  /** What connect() or the first call rejected with (undefined: everything succeeded). */
  rejection: unknown;
  /** Errors the client transport reported through onerror. */
  transportErrors: PqmcpError[];
  closed: boolean;
}

/** Connect an SDK client through `url` and make `calls` concurrent echo calls; every promise bounded. */
async function runClient(url: string, calls: number, options: { handshakeTimeoutMs?: number; requestTimeoutMs?: number } = {}): Promise<Outcome> {
  const transport = new PqmcpClientTransport(url, {
    identity: agent('agent://pqmcp-test/client'),
    trust: trustFor(),
    backend: 'native',
    expectedServerId: SERVER_ID,
    ...(options.handshakeTimeoutMs ? { handshakeTimeoutMs: options.handshakeTimeoutMs } : {}),
  });
  const client = new Client({ name: 'faults', version: '1' });
  const outcome: Outcome = { rejection: undefined, transportErrors: [], closed: false };
  try {
    await within(client.connect(transport, options.requestTimeoutMs ? { timeout: options.requestTimeoutMs } : {}), 10_000, 'connect()');
    // The SDK installs its handlers in connect(); wrap them to observe the transport.
    const { onerror, onclose } = transport;
    transport.onerror = (e) => {
      outcome.transportErrors.push(e as PqmcpError);
      onerror?.(e);
    };
    transport.onclose = () => {
      outcome.closed = true;
      onclose?.();
    };
    const results = await within(Promise.allSettled(Array.from({ length: calls }, (_, i) => client.callTool({ name: 'echo', arguments: { text: `call ${i}` } }))), 10_000, 'calls');
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) outcome.rejection = (failed as PromiseRejectedResult).reason;
  } catch (e) {
    outcome.rejection = e;
    if ((e as Error).message.includes('still pending')) throw e;
  } finally {
    await within(client.close(), 5_000, 'client.close()');
  }
  return outcome;
}

let log: ServerLog;
const cleanup = new Cleanup();
beforeAll(async () => {
  log = await honestServer(cleanup, { handshakeTimeoutMs: 1_000, closeTimeoutMs: 500 });
});
afterAll(() => cleanup.run());

/** After a fault: the listener holds nothing and the process holds no new handle. */
async function expectReleased(handles: ReturnType<typeof trackHandles>, local: Cleanup): Promise<void> {
  await waitFor(() => log.server.pendingHandshakes === 0 && log.server.sessions.size === 0, 5_000, 'listener idle');
  await expect.poll(() => connections(log), { timeout: 5_000 }).toBe(0);
  await local.run();
  expect(await handles.settle()).toEqual({});
}

/** The record sequence of a clean run: connect + 1 call. */
let sequence: ProxyDirection[] = [];

describe('TCP killed at every step', () => {
  it('a clean run through the proxy, to learn its records', async () => {
    const local = new Cleanup();
    const proxy = await MitmProxy.start(log.url, local, (dir, r) => {
      sequence.push(dir);
      return [r];
    });
    const out = await runClient(proxy.url, 1);
    expect(out.rejection).toBeUndefined();
    await local.run();
    // ClientHello; the server's flight (4); the client's flight with initialize (4); ...
    expect(sequence.slice(0, 9)).toEqual(['c2s', 's2c', 's2c', 's2c', 's2c', 'c2s', 'c2s', 'c2s', 'c2s']);
    expect(sequence.length).toBeGreaterThanOrEqual(12);
    // ... and the authenticated close: the client's close_notify and the server's answer.
    expect(sequence.slice(-2)).toEqual(['c2s', 's2c']);
  });

  it('before each record, in both directions: both sides report a typed error, nothing pending, nothing leaked', async () => {
    const failures: string[] = [];
    for (let k = 0; k < sequence.length - 2; k++) {
      const handles = trackHandles();
      const local = new Cleanup();
      const clientErrorsBefore = log.clientErrors.length;
      const transportErrorsBefore = log.transportErrors.length;
      const proxy = await MitmProxy.start(log.url, local, (_dir, r, index) => (index === k ? 'kill' : [r]));
      const out = await runClient(proxy.url, 1);
      await waitFor(() => log.clientErrors.length > clientErrorsBefore || log.transportErrors.length > transportErrorsBefore || k === 0, 5_000, `server report (k=${k})`);
      const serverErrors = [...log.clientErrors.slice(clientErrorsBefore), ...log.transportErrors.slice(transportErrorsBefore)];
      const where = `killed before record ${k} (${sequence[k]})`;
      // Client: connect() or the call failed with a typed error, or the transport reported one.
      const clientCode = out.rejection instanceof PqmcpError ? out.rejection.code : out.transportErrors[0]?.code;
      if (out.rejection === undefined) failures.push(`${where}: the client saw no failure`);
      if (clientCode !== 'ERR_TRUNCATED') failures.push(`${where}: client reported ${clientCode} (${String(out.rejection)})`);
      // Server: a truncation, before or after the session was handed over (none only if the
      // kill came before the server's WebSocket was even open).
      if (serverErrors.some((e) => e.code !== 'ERR_TRUNCATED')) failures.push(`${where}: server reported ${serverErrors.map((e) => e.code).join(', ')}`);
      if (k > 0 && serverErrors.length !== 1) failures.push(`${where}: server reported ${serverErrors.length} errors`);
      await expectReleased(handles, local);
    }
    expect(failures).toEqual([]);
  });

  it('during the authenticated close: the client (which asked to close) reports nothing; the server reports truncation only if the close_notify was lost', async () => {
    for (const [k, serverCodes] of [
      [sequence.length - 2, ['ERR_TRUNCATED']],
      [sequence.length - 1, []],
    ] as const) {
      const handles = trackHandles();
      const local = new Cleanup();
      const before = log.transportErrors.length;
      const proxy = await MitmProxy.start(log.url, local, (_dir, r, index) => (index === k ? 'kill' : [r]));
      const out = await runClient(proxy.url, 1);
      expect(out.rejection).toBeUndefined();
      expect(out.transportErrors).toEqual([]);
      await waitFor(() => log.server.sessions.size === 0, 5_000, 'server session closed');
      expect(log.transportErrors.slice(before).map((e) => e.code)).toEqual(serverCodes);
      await expectReleased(handles, local);
    }
  });

  it.each([
    ['client to server', 'c2s'],
    ['server to client', 's2c'],
  ] as const)('in the middle of 50 concurrent calls, %s: every call settles with an error, both sides report truncation', async (_what, dir) => {
    const handles = trackHandles();
    const local = new Cleanup();
    const transportErrorsBefore = log.transportErrors.length;
    let handshakeDone = false;
    // The calls (or their answers) leave together, several to a record (inner type 0x06):
    // the kill comes at the first record after the handshake that carries a batch of them
    // (a lone initialize, initialized or its answer is far smaller than 1,000 bytes).
    const proxy = await MitmProxy.start(log.url, local, (d, r, index) => {
      if (index >= 9) handshakeDone = true;
      if (handshakeDone && d === dir && r.length >= 1_000) return 'kill';
      return [r];
    });
    const out = await runClient(proxy.url, 50);
    expect(out.rejection).toBeDefined();
    expect(out.transportErrors.map((e) => e.code)).toEqual(['ERR_TRUNCATED']);
    expect(out.closed).toBe(true);
    await waitFor(() => log.transportErrors.length > transportErrorsBefore, 5_000, 'server transport error');
    expect(log.transportErrors.slice(transportErrorsBefore).map((e) => e.code)).toEqual(['ERR_TRUNCATED']);
    await expectReleased(handles, local);
  });

  it.each([
    // Before the client has verified the server: the client's handshake timer fires.
    ['the server’s leg dies before the server’s flight', 'kill-server-leg', 1, 'ERR_HANDSHAKE_TIMEOUT', 'ERR_TRUNCATED'],
    // The client's leg dies: the server's handshake timer fires.
    ['the client’s leg dies before the client’s flight', 'kill-client-leg', 5, 'ERR_TRUNCATED', 'ERR_HANDSHAKE_TIMEOUT'],
  ] as const)('one leg only, during the handshake: %s; the side left open times out', async (_what, kill, at, clientCode, serverCode) => {
    const handles = trackHandles();
    const local = new Cleanup();
    const before = log.clientErrors.length;
    const proxy = await MitmProxy.start(log.url, local, (_d, r, index) => (index === at ? kill : [r]));
    const out = await runClient(proxy.url, 1, { handshakeTimeoutMs: 1_000 });
    expect(out.rejection).toBeInstanceOf(PqmcpError);
    expect((out.rejection as PqmcpError).code).toBe(clientCode);
    await waitFor(() => log.clientErrors.length > before, 5_000, 'server report');
    expect(log.clientErrors.slice(before).map((e) => e.code)).toEqual([serverCode]);
    proxy.kill();
    await expectReleased(handles, local);
  });

  it('documented limit: the server’s leg dies after the client verified the server; the open leg is silent, so the MCP request timeout ends it', async () => {
    // The client's handshake is complete; nothing at the transport can tell a dead server
    // behind a live proxy from a slow one (the proxy answers keepalive pings). The SDK's
    // request timeout bounds the wait (60 s by default; 1.5 s here).
    const handles = trackHandles();
    const local = new Cleanup();
    const before = log.clientErrors.length;
    const proxy = await MitmProxy.start(log.url, local, (_d, r, index) => (index === 5 ? 'kill-server-leg' : [r]));
    const t0 = Date.now();
    const out = await runClient(proxy.url, 1, { handshakeTimeoutMs: 1_000, requestTimeoutMs: 1_500 });
    expect(Date.now() - t0).toBeLessThan(15_000); // the 1.5 s request timeout, not the SDK default of 60 s
    expect(String(out.rejection)).toMatch(/timed out/i);
    await waitFor(() => log.clientErrors.length > before, 5_000, 'server report');
    expect(log.clientErrors.slice(before).map((e) => e.code)).toEqual(['ERR_TRUNCATED']);
    proxy.kill();
    await expectReleased(handles, local);
  });
});
