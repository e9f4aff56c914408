/**
 * The per-source accept rate (`acceptRatePerSource`, edge.ts `admitAccept`) over real
 * sockets on 127.0.0.x: a bounded flood of raw TCP connects from one address that never
 * send their request gets no further than the rate (past its burst each is answered 429
 * at once and closed), holds no more than its burst of slots, evicts nothing, and its
 * reports are held to the `failureReports` rate; an honest client from another address
 * completes its handshake meanwhile. A trusted X-Forwarded-For proxy's connections are not
 * rated; on a `proxyProtocol` listener the rate applies to the client the header names.
 *
 * The rates here are small (3 a second, a burst of 3) and run on a clock the test holds
 * (the edge's internal seam, Edge.testRateClock): no token comes back while a flood runs,
 * however slow the machine, so each count is exact; a test moves the clock on to see the
 * rate refill.
 */
import { createHook } from 'node:async_hooks';
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { SUBPROTOCOL } from '../../src/transport/options.js';
import { AcceptRateError, type Edge } from '../../src/transport/edge.js';
import type { PqmcpServer, PqmcpServerOptions } from '../../src/transport/index.js';
import { Cleanup, connectClient, startFeatureServer, waitFor } from '../helpers/mcp.js';
import { startWatched, type WatchedServer as Started } from '../helpers/watched-server.js';
import { v2Header } from '../helpers/proxy-header.js';

async function raw(server: PqmcpServer, localAddress: string): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port: server.address().port, localAddress });
  s.on('error', () => {});
  await new Promise<void>((r) => s.once('connect', () => r()));
  return s;
}

interface Flood {
  sockets: Socket[];
  /** What the server sent on each connection it closed (undefined: still open). */
  answers: (string | undefined)[];
}

/** `n` raw TCP connects from `localAddress`, one after another; `first` is written on each. */
async function flood(server: PqmcpServer, localAddress: string, n: number, first?: Buffer): Promise<Flood> {
  const f: Flood = { sockets: [], answers: [] };
  for (let i = 0; i < n; i++) {
    const s = await raw(server, localAddress);
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    s.once('close', () => (f.answers[i] = Buffer.concat(got).toString('latin1')));
    if (first) s.write(first);
    f.sockets.push(s);
    f.answers.push(undefined);
  }
  return f;
}

const closedCount = (f: Flood) => f.answers.filter((a) => a !== undefined).length;

/**
 * Wait until `predicate` has held for `ms` in a row. On a proxyProtocol listener a connection
 * whose header is not read yet holds a slot of the proxy, counted like one admitted after
 * its header: only a count that stays put says that every header was read.
 */
async function settled(predicate: () => boolean, ms: number, what: string): Promise<void> {
  let since: number | undefined;
  await waitFor(
    () => {
      if (!predicate()) since = undefined;
      else since ??= performance.now();
      return since !== undefined && performance.now() - since >= ms;
    },
    10_000,
    what,
  );
}

const REFUSED = /^HTTP\/1\.1 429 Too Many Requests\r\n[^]*Retry-After: 1\r\n/;

describe('the accept rate: raw TCP floods from one address (real sockets)', { timeout: 30_000 }, () => {
  const cleanup = new Cleanup();
  afterAll(() => cleanup.run());

  /** A watched listener whose per-source rates read a clock held at 0 until `advanceRate`. */
  const start = async (options: Partial<PqmcpServerOptions> = {}): Promise<Started & { advanceRate: (ms: number) => void }> => {
    const p = await startWatched(cleanup, options);
    let time = 0;
    (p.server as unknown as { edge: Edge }).edge.testRateClock = () => time;
    return { ...p, advanceRate: (ms) => void (time += ms) };
  };

  it('past its burst a source is answered 429 at once: no slot, no eviction, bounded reports; another address connects', async () => {
    const p = await start({ acceptRatePerSource: 3, maxPendingPerSource: 8, firstFlightTimeoutMs: 8_000, failureReports: { perSource: 5, windowMs: 60_000 } });
    const FLOOD = 40;
    let maxPending = 0;
    const sampler = setInterval(() => (maxPending = Math.max(maxPending, p.server.pendingHandshakes)), 2);
    const f = await flood(p.server, '127.0.0.150', FLOOD);
    await waitFor(() => p.server.refusedAccepts + p.server.pendingHandshakes === FLOOD, 5_000, 'every connection placed');
    await waitFor(() => closedCount(f) === p.server.refusedAccepts, 5_000, 'the refused ones closed');
    clearInterval(sampler);
    const refused = p.server.refusedAccepts;
    const admitted = FLOOD - refused;
    // Each closed one was refused with a 429 (none evicted with a 503, none cut unanswered);
    // the rest hold their slots: the burst, to the first three, and no more (the clock is held).
    expect(f.answers.filter((a) => a !== undefined).every((a) => REFUSED.test(a!))).toBe(true);
    expect(admitted).toBe(3);
    expect(maxPending).toBe(3);
    expect(f.answers.slice(0, 4)).toEqual([undefined, undefined, undefined, expect.stringMatching(REFUSED)]);

    // Reports: every one an AcceptRateError of that address, held to 5 one by one (failureReports).
    await waitFor(() => p.errors.length === 5, 5_000, 'five reports');
    expect(p.errors.every((e) => e.error instanceof AcceptRateError && e.error.code === 'ERR_SERVER_BUSY' && e.remoteAddress === '127.0.0.150')).toBe(true);
    expect(p.audit.filter((e) => e.type === 'handshake.failure')).toHaveLength(5);

    // An honest client from another address completes its handshake while the flood holds its slots.
    const { client } = await connectClient(cleanup, p.server.url, { backend: 'native', busyRetry: false, webSocketOptions: { localAddress: '127.0.0.151' } });
    expect(await client.callTool({ name: 'echo', arguments: { text: 'honest' } })).toMatchObject({ content: [{ text: 'honest' }] });
    expect(p.sessions.at(-1)!.remoteAddress).toBe('127.0.0.151');
    await client.close();
    expect(p.errors.filter((e) => e.remoteAddress !== '127.0.0.150')).toEqual([]);
    expect(p.server.pendingHandshakes).toBe(admitted);

    // The rest are counted, not lost: closing the listener writes the window's summary.
    await p.server.close();
    expect(p.summaries).toEqual([expect.objectContaining({ remoteAddress: '127.0.0.150', count: refused - 5, codes: { ERR_SERVER_BUSY: refused - 5 } })]);
    for (const s of f.sockets) s.destroy();
  });

  it('the default is ten times connectionRatePerSource (burst one second\'s worth), and off with it; a bad value is refused', async () => {
    // connectionRatePerSource 1: accepts 10 a second, burst 10.
    const limited = await start({ connectionRatePerSource: 1, firstFlightTimeoutMs: 8_000, maxPendingPerSource: 64 });
    const a = await flood(limited.server, '127.0.0.152', 40);
    await waitFor(() => limited.server.refusedAccepts + limited.server.pendingHandshakes === 40, 5_000, 'every connection placed');
    expect(limited.server.pendingHandshakes).toBe(10);
    // Half a second later five more (ten a second), then refused again.
    limited.advanceRate(500);
    const later = await flood(limited.server, '127.0.0.152', 10);
    await waitFor(() => limited.server.refusedAccepts + limited.server.pendingHandshakes === 50, 5_000, 'every later connection placed');
    expect(limited.server.pendingHandshakes).toBe(15);
    expect(limited.server.refusedAccepts).toBe(35);
    for (const s of [...a.sockets, ...later.sockets]) s.destroy();

    const lifted = await start({ connectionRatePerSource: 0, firstFlightTimeoutMs: 8_000, maxPendingPerSource: 64 });
    const b = await flood(lifted.server, '127.0.0.153', 40);
    await waitFor(() => lifted.server.pendingHandshakes === 40, 5_000, 'forty slots');
    expect(lifted.server.refusedAccepts).toBe(0);
    for (const s of b.sockets) s.destroy();

    for (const bad of [-1, 1.5, Number.NaN]) {
      await expect(startFeatureServer(cleanup, { acceptRatePerSource: bad })).rejects.toThrow(InvalidArgumentError);
    }
    await expect(startFeatureServer(cleanup, { acceptRatePerSource: 1.5 })).rejects.toThrow('acceptRatePerSource must be an integer >= 0');
  });

  it("a trusted X-Forwarded-For proxy's connections are not rated (they carry many clients); an untrusted neighbour's are", async () => {
    const p = await start({ trustedProxies: ['127.0.0.154'], acceptRatePerSource: 3, maxPendingHandshakes: 32, firstFlightTimeoutMs: 8_000 });
    const viaProxy = await flood(p.server, '127.0.0.154', 12);
    await waitFor(() => p.server.pendingHandshakes === 12, 5_000, 'twelve shared slots');
    expect(p.server.refusedAccepts).toBe(0);
    const neighbour = await flood(p.server, '127.0.0.155', 12);
    await waitFor(() => p.server.refusedAccepts + p.server.pendingHandshakes === 24, 5_000, 'every connection placed');
    expect(p.server.pendingHandshakes - 12).toBe(3);
    await waitFor(() => closedCount(neighbour) === p.server.refusedAccepts, 5_000, 'the refused ones closed');
    expect(neighbour.answers.filter((a) => a !== undefined).every((a) => REFUSED.test(a!))).toBe(true);
    expect(viaProxy.answers.every((a) => a === undefined)).toBe(true);
    // A client through the proxy still connects; its session records the client the proxy names.
    const { client } = await connectClient(cleanup, p.server.url, { backend: 'native', busyRetry: false, headers: { 'X-Forwarded-For': '127.0.0.156' }, webSocketOptions: { localAddress: '127.0.0.154' } });
    expect(p.sessions.at(-1)!.remoteAddress).toBe('127.0.0.156');
    await client.close();
    for (const s of [...viaProxy.sockets, ...neighbour.sockets]) s.destroy();
  });

  it('a refused connection that sent its upgrade request at once gets the 429 alone: no 101, no WebSocket, no slot (review4)', async () => {
    const p = await start({ acceptRatePerSource: 3, firstFlightTimeoutMs: 8_000, maxPendingPerSource: 16 });
    const upgrade = Buffer.from(
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${p.server.address().port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: pqmcp.v1\r\n\r\n',
    );
    const f = await flood(p.server, '127.0.0.161', 12, upgrade);
    await waitFor(() => closedCount(f) === p.server.refusedAccepts && p.errors.length === p.server.refusedAccepts, 5_000, 'the refused ones closed and reported');
    const refused = p.server.refusedAccepts;
    expect(refused).toBe(9);
    const closed = f.answers.filter((a): a is string => a !== undefined);
    // Exactly one answer on each: the 429, never a 101 (nor a second response) after it.
    expect(closed.every((a) => REFUSED.test(a) && a.split('HTTP/1.1 ').length === 2)).toBe(true);
    // The admitted ones were upgraded (101) and wait for their ClientHello, each in a slot.
    await waitFor(() => p.server.pendingHandshakes === 12 - refused, 5_000, 'the admitted ones pending');
    expect(p.errors.every((e) => e.error instanceof AcceptRateError)).toBe(true);
    for (const s of f.sockets) s.destroy();
  });

  it("a refused connection never reaches Node's HTTP server (no HTTP parser is set up for it); an admitted one does only with an upgrade request", async () => {
    const p = await start({ acceptRatePerSource: 3, firstFlightTimeoutMs: 8_000, maxPendingPerSource: 16 });
    // Node's HTTP server gives each connection it is handed a parser, whose resource is an
    // HTTPINCOMINGMESSAGE (clients' are HTTPCLIENTREQUEST): count them while the flood runs.
    let parsers = 0;
    const hook = createHook({ init: (_id, type) => void (type === 'HTTPINCOMINGMESSAGE' && parsers++) }).enable();
    try {
      const get = Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${p.server.address().port}\r\n\r\n`);
      const f = await flood(p.server, '127.0.0.162', 12, get);
      // Every one is answered and closed: the refused with their 429, the admitted with 426.
      await waitFor(() => closedCount(f) === 12, 5_000, 'every connection answered');
      const refused = p.server.refusedAccepts;
      expect(refused).toBe(9);
      const answers = f.answers as string[];
      expect(answers.filter((a) => REFUSED.test(a))).toHaveLength(refused);
      expect(answers.filter((a) => a.startsWith('HTTP/1.1 426 '))).toHaveLength(12 - refused);
      // No parser at all: a refused one never reaches HTTP (before the accept rate: one for
      // each), and the TCP front answers an admitted plain request itself (first-request.ts;
      // before review 21's R21-1: one parser per admitted connection).
      expect(parsers).toBe(0);
      // An upgrade request reaches the HTTP server (one parser), and is upgraded.
      const upgrade = await flood(p.server, '127.0.0.163', 1, Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n\r\n`));
      await waitFor(() => upgrade.sockets[0]!.bytesRead > 0, 5_000, 'the upgrade answered');
      expect(parsers).toBe(1);
      upgrade.sockets[0]!.destroy();
      await waitFor(() => closedCount(upgrade) === 1, 5_000, 'closed');
      expect(upgrade.answers[0]).toMatch(/^HTTP\/1\.1 101 /);
    } finally {
      hook.disable();
    }
  });

  it('on a proxyProtocol listener the rate applies to the client the header names, once it arrived', async () => {
    const p = await start({ proxyProtocol: true, trustedProxies: ['127.0.0.157'], acceptRatePerSource: 3, firstFlightTimeoutMs: 8_000, maxPendingPerSource: 8 });
    const f = await flood(p.server, '127.0.0.157', 12, v2Header({ src: '192.0.2.77' }));
    await settled(() => closedCount(f) === p.server.refusedAccepts && p.server.refusedAccepts + p.server.pendingHandshakes === 12, 300, 'every header read');
    const admitted = p.server.pendingHandshakes;
    expect(admitted).toBe(3);
    await waitFor(() => closedCount(f) === p.server.refusedAccepts && p.errors.length === p.server.refusedAccepts, 5_000, 'the refused ones closed and reported');
    // Reported with the client's address, not the proxy's; answered 429 through the proxy.
    expect(p.errors.every((e) => e.error instanceof AcceptRateError && e.remoteAddress === '192.0.2.77')).toBe(true);
    expect(f.answers.filter((a) => a !== undefined).every((a) => REFUSED.test(a!))).toBe(true);
    // Another client through the same proxy is not touched, nor the proxy's own checks (LOCAL).
    const other = await flood(p.server, '127.0.0.157', 1, v2Header({ src: '192.0.2.78' }));
    const local = await flood(p.server, '127.0.0.157', 5, v2Header({ command: 0 }));
    await waitFor(() => p.server.pendingHandshakes === admitted + 6, 5_000, 'six more slots');
    expect(p.errors.filter((e) => e.remoteAddress !== '192.0.2.77')).toEqual([]);
    expect([...other.answers, ...local.answers].every((a) => a === undefined)).toBe(true);
    for (const s of [...f.sockets, ...other.sockets, ...local.sockets]) s.destroy();
  });
});
