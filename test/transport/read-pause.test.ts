/**
 * ReadPause.heldByUs (src/transport/read-pause.ts): the keepalive re-arms its pong deadline
 * only while this side alone keeps the peer's bytes unread: its own limits, or the server's
 * consumer (pauseReading, bounded by maxReadPauseMs; review F2). A pause the peer causes (a
 * full inbox: it does not read our replies) or the application asks for must win, or a peer
 * that reads nothing while a backlog waits behind its inbox is never timed out (review 9b, F1).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ReadPause } from '../../src/transport/read-pause.js';
import { KeepAlive } from '../../src/transport/keepalive.js';
import { PqmcpClientTransport, listen, serveMcp } from '../../src/transport/index.js';
import type { PqmcpServerTransport } from '../../src/transport/index.js';
import { InvalidArgumentError } from '../../src/errors.js';
import type { PqmcpError } from '../../src/errors.js';
import { Cleanup, SERVER_ID, makeClient, startServer, waitFor } from '../helpers/mcp.js';
import { agent, trustFor } from '../helpers/identities.js';

describe('ReadPause.heldByUs', () => {
  const pause = () => new ReadPause({ pause: () => {}, resume: () => {} }, () => true);

  it('holds for the receive budget, a backlog or the server\'s consumer alone', () => {
    for (const reason of ['budget', 'backlog', 'consumer'] as const) {
      const p = pause();
      p.set(reason, true);
      expect(p.heldByUs(), reason).toBe(true);
      p.set(reason, false);
      expect(p.heldByUs(), reason).toBe(false);
    }
  });

  it('does not hold while the peer (inbox) or the application (app) also pauses reading', () => {
    for (const own of ['budget', 'backlog', 'consumer'] as const) {
      for (const theirs of ['inbox', 'app'] as const) {
        const p = pause();
        p.set(own, true);
        p.set(theirs, true);
        expect(p.heldByUs(), `${own} + ${theirs}`).toBe(false);
        p.set(theirs, false);
        expect(p.heldByUs(), own).toBe(true);
      }
    }
  });
});

describe('the keepalive just after a hold ends (ReadPause.heldWithin)', () => {
  afterEach(() => void vi.useRealTimers());

  /**
   * The server's consumer holds the peer unread; the keepalive's deadline passes while held
   * (it pings again); the hold ends 100 ms before the next deadline, and the peer's pong is
   * read 200 ms after it (behind what was held). `held` is the keepalive's view of the hold.
   */
  function afterHold(held: (pause: ReadPause) => boolean, pongAfterMs: number | undefined): string[] {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
    const events: string[] = [];
    const pause = new ReadPause({ pause: () => {}, resume: () => {} }, () => true);
    const keepAlive: KeepAlive = new KeepAlive({
      ping: () => void events.push(`ping ${performance.now()}`),
      intervalMs: 1_000,
      timeoutMs: 500,
      onTimeout: () => {
        events.push(`timeout ${performance.now()}`);
        keepAlive.stop(); // as the connection ends
      },
      held: () => held(pause),
    });
    pause.set('consumer', true);
    vi.advanceTimersByTime(1_500); // ping at 1000; its deadline at 1500 passes while held: ping again
    vi.advanceTimersByTime(400);
    pause.set('consumer', false); // at 1900: the next deadline is at 2000
    if (pongAfterMs !== undefined) setTimeout(() => keepAlive.pong(), pongAfterMs);
    vi.advanceTimersByTime(1_000); // to 2900, before the next interval's ping
    keepAlive.stop();
    return events;
  }

  it('does not judge the peer until it has had keepAliveTimeoutMs of reading: its pong, behind what was held, still counts', () => {
    expect(afterHold((p) => p.heldWithin(500), 200)).toEqual(['ping 1000', 'ping 1500', 'ping 2000']);
    // heldByUs alone (the code before) judged it 100 ms after the hold ended, before its pong was read.
    expect(afterHold((p) => p.heldByUs(), 200)).toEqual(['ping 1000', 'ping 1500', 'timeout 2000']);
  });

  it('a peer that does not answer is still judged, keepAliveTimeoutMs to twice that after the hold ends', () => {
    expect(afterHold((p) => p.heldWithin(500), undefined)).toEqual(['ping 1000', 'ping 1500', 'ping 2000', 'timeout 2500']);
  });

  it('gives no grace while the peer (inbox) or the application (app) pauses reading', () => {
    for (const theirs of ['inbox', 'app'] as const) {
      const p = new ReadPause({ pause: () => {}, resume: () => {} }, () => true);
      p.set('consumer', true);
      p.set('consumer', false);
      expect(p.heldWithin(60_000), 'just after the hold').toBe(true);
      p.set(theirs, true);
      expect(p.heldWithin(60_000), theirs).toBe(false);
    }
  });
});

describe('PqmcpServerTransport.pauseReading over a real listener (review F2)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('the keepalive does not judge a client the application holds unread; a pause that lasts maxReadPauseMs ends the session with ERR_READ_PAUSE_TIMEOUT', { timeout: 30_000 }, async () => {
    const sessions: PqmcpServerTransport[] = [];
    const errors: string[] = [];
    // Pong deadlines of 300 ms (not 100): a loaded 2-core machine stalls loopback pongs past
    // 100 ms now and then, which ended the session by its keepalive, not by the pause.
    const server = await startServer(cleanup, () => new McpServer({ name: 'paused', version: '1' }), { keepAliveMs: 100, keepAliveTimeoutMs: 300, maxReadPauseMs: 3_000 });
    server.on('session', (t) => {
      sessions.push(t);
      t.onerror = (e) => void errors.push((e as PqmcpError).code);
    });
    const { client, transport } = makeClient(server.url);
    cleanup.add(() => client.close());
    await client.connect(transport);
    let closed = false;
    sessions[0]!.closed.then(() => (closed = true));

    // Held for several pong deadlines: before, the keepalive cut it within 400 ms.
    sessions[0]!.pauseReading();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(closed).toBe(false);
    sessions[0]!.resumeReading();
    await client.ping();

    // Held past the cap: ended, with the pause's own reason.
    sessions[0]!.pauseReading();
    await waitFor(() => closed, 10_000, 'the session ended at the cap');
    expect(errors).toEqual(['ERR_READ_PAUSE_TIMEOUT']);
  });
});

describe('a pqmcp client held unread by its server (review 10, R10-7)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it("keeps the session while the server's keepalive pings it, and learns the server's own reason at the cap", { timeout: 30_000 }, async () => {
    const sessions: PqmcpServerTransport[] = [];
    const server = await startServer(cleanup, () => new McpServer({ name: 'paused', version: '1' }), { keepAliveMs: 100, keepAliveTimeoutMs: 100, maxReadPauseMs: 2_500 });
    server.on('session', (t) => void sessions.push(t));
    // The client pings every 100 ms and waits 600 ms: before, held unread, it gave up within
    // ~700 ms. The server pings every 100 ms, so only a stall of ~600 ms could fail it now.
    const { client, transport } = makeClient(server.url, { keepAliveMs: 100, keepAliveTimeoutMs: 600 });
    cleanup.add(() => client.close());
    const clientErrors: PqmcpError[] = [];
    await client.connect(transport);
    const onerror = transport.onerror;
    transport.onerror = (e) => {
      clientErrors.push(e as PqmcpError);
      onerror?.(e);
    };
    let clientClosed = false;
    const onclose = transport.onclose;
    transport.onclose = () => {
      clientClosed = true;
      onclose?.();
    };
    const started = Date.now();
    sessions[0]!.pauseReading();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(clientErrors.map((e) => e.code)).toEqual([]);
    expect(clientClosed).toBe(false);
    await waitFor(() => clientClosed, 10_000, 'the server closed the held session');
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    // The client hears the server's reason (close code 4003), not its own keepalive.
    expect(clientErrors.map((e) => e.code)).not.toContain('ERR_KEEPALIVE_TIMEOUT');
    expect(clientErrors.map((e) => e.message).join(' ')).toMatch(/4003/);
  });
});

describe('timer options past setTimeout\'s limit (review 10, R10-0)', () => {
  // Node runs a setTimeout/setInterval of more than 2^31 - 1 ms after 1 ms: maxReadPauseMs of
  // 30 days closed every paused session at once. Each such option is now refused.
  const over = 2 ** 31;
  const base = { identity: agent(SERVER_ID), trust: trustFor(), host: '127.0.0.1', port: 0 };

  it('listen() and serveMcp() refuse maxReadPauseMs, keepAliveMs, keepAliveTimeoutMs, handshakeTimeoutMs, closeTimeoutMs and firstFlightTimeoutMs above 2^31 - 1 ms', async () => {
    for (const name of ['maxReadPauseMs', 'keepAliveMs', 'keepAliveTimeoutMs', 'handshakeTimeoutMs', 'closeTimeoutMs', 'firstFlightTimeoutMs']) {
      const err = await listen({ ...base, [name]: over }).then((s) => (void s.close(), undefined), (e: unknown) => e);
      expect(err, name).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message, name).toContain(`${name} must be at most 2147483647 ms`);
      await expect(serveMcp({ ...base, [name]: over }, () => new McpServer({ name: 'x', version: '1' })), name).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    // The limit itself is accepted.
    const server = await listen({ ...base, maxReadPauseMs: 2 ** 31 - 1, keepAliveTimeoutMs: 2 ** 31 - 1 });
    await server.close();
  });

  it('the client transport refuses keepAliveMs, keepAliveTimeoutMs and busyRetry.maxDelayMs above it', () => {
    for (const options of [{ keepAliveMs: over }, { keepAliveTimeoutMs: over }, { busyRetry: { maxDelayMs: over } }]) {
      expect(() => new PqmcpClientTransport('ws://127.0.0.1:1', { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), expectedServerId: SERVER_ID, ...options }), JSON.stringify(options)).toThrow(InvalidArgumentError);
    }
  });
});
