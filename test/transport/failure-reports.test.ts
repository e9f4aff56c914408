/**
 * The `failureReports` rate (src/audit/failure-limiter.ts, review3 P4), over real sockets on
 * 127.0.0.x: a stranger opening empty TCP connections as fast as it can gets at most
 * `perSource` failures reported one by one per window ('clientError' and handshake.failure
 * audit events); the rest are counted into one handshake.failure.summary per source whose
 * counts add up to the rest. Another source keeps its own allowance; verified peers'
 * failures are always reported; `false` restores one report per failure.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { PqmcpError } from '../../src/errors.js';
import type { PqmcpServer, PqmcpServerOptions } from '../../src/transport/index.js';
import type { AuditEvent, HandshakeFailureSummaryEvent } from '../../src/audit/index.js';
import { Cleanup, makeClient, startFeatureServer, startServer, waitFor } from '../helpers/mcp.js';

interface Started {
  server: PqmcpServer;
  errors: { error: PqmcpError; remoteAddress: string | undefined; verified: boolean }[];
  audit: AuditEvent[];
  suppressed: HandshakeFailureSummaryEvent[];
}

function watch(server: PqmcpServer, audit: AuditEvent[]): Started {
  const errors: Started['errors'] = [];
  server.on('clientError', (error, info) => void errors.push({ error, remoteAddress: info.remoteAddress, verified: info.peer !== undefined }));
  const suppressed: HandshakeFailureSummaryEvent[] = [];
  server.on('failuresSuppressed', (s) => void suppressed.push(s));
  return { server, errors, audit, suppressed };
}

async function start(cleanup: Cleanup, options: Partial<PqmcpServerOptions>): Promise<Started> {
  const audit: AuditEvent[] = [];
  const { server } = await startFeatureServer(cleanup, { backend: 'native', onAuditEvent: (e) => void audit.push(e), ...options });
  return watch(server, audit);
}

/** `count` empty TCP connections from `localAddress`, one after another; resolves when the server has closed them all. */
async function emptyConnections(server: PqmcpServer, localAddress: string, count: number): Promise<void> {
  const closed: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const s: Socket = connect({ host: '127.0.0.1', port: server.address().port, localAddress });
    s.on('error', () => {});
    s.resume();
    closed.push(new Promise<void>((r) => s.once('close', () => r())));
    await new Promise<void>((r) => s.once('connect', () => r()).once('close', () => r()));
  }
  await Promise.all(closed);
}

const failures = (audit: AuditEvent[], address: string) => audit.filter((e) => e.type === 'handshake.failure' && e.remoteAddress === address);
const summaries = (audit: AuditEvent[], address: string | undefined) =>
  audit.filter((e): e is HandshakeFailureSummaryEvent => e.type === 'handshake.failure.summary' && e.remoteAddress === address);
const summed = (list: HandshakeFailureSummaryEvent[]) => list.reduce((n, s) => n + s.count, 0);

describe('failureReports: per-source rate of pre-verification failure reports (real sockets)', { timeout: 60_000 }, () => {
  const cleanup = new Cleanup();
  afterAll(() => cleanup.run());

  it('200 empty TCP connections from one address: 20 reported one by one, the other 180 in one summary; another address still gets its own', async () => {
    // A window longer than the test: the summary comes at close().
    const p = await start(cleanup, { maxPendingPerSource: 4, firstFlightTimeoutMs: 500, failureReports: { perSource: 20, windowMs: 600_000 } });
    await emptyConnections(p.server, '127.0.0.90', 200);
    // Every one of them failed (196 evicted, the last 4 timed out), but only 20 were told one by one.
    expect(failures(p.audit, '127.0.0.90')).toHaveLength(20);
    expect(p.errors.filter((e) => e.remoteAddress === '127.0.0.90')).toHaveLength(20);
    expect(summaries(p.audit, '127.0.0.90')).toHaveLength(0);
    // A second source is not silenced by the first.
    await emptyConnections(p.server, '127.0.0.91', 3);
    expect(failures(p.audit, '127.0.0.91')).toHaveLength(3);
    await p.server.close();
    const [summary, ...more] = summaries(p.audit, '127.0.0.90');
    expect(more).toHaveLength(0);
    expect(summary).toMatchObject({ role: 'server', count: 180, windowMs: 600_000 });
    expect(Object.values(summary!.codes).reduce((a, b) => a + b, 0)).toBe(180);
    expect(Object.keys(summary!.codes).every((c) => c === 'ERR_SERVER_BUSY' || c === 'ERR_HANDSHAKE_TIMEOUT')).toBe(true);
    expect(summaries(p.audit, '127.0.0.91')).toHaveLength(0);
    // The same summary on 'failuresSuppressed', for clientError consumers.
    expect(p.suppressed).toEqual([summary]);
  });

  it('the global cap: many sources cannot multiply the allowance; past maxSources their summaries are folded into one', async () => {
    const p = await start(cleanup, { maxPendingPerSource: 1, firstFlightTimeoutMs: 500, failureReports: { perSource: 2, total: 5, maxSources: 2, windowMs: 600_000 } });
    for (let i = 0; i < 5; i++) await emptyConnections(p.server, `127.0.0.${100 + i}`, 4);
    await p.server.close();
    const individual = p.audit.filter((e) => e.type === 'handshake.failure');
    expect(individual).toHaveLength(5);
    const all = p.audit.filter((e): e is HandshakeFailureSummaryEvent => e.type === 'handshake.failure.summary');
    // Two sources with a summary of their own, the other three together.
    expect(all).toHaveLength(3);
    expect(all.filter((s) => s.remoteAddress === undefined)).toHaveLength(1);
    expect(individual.length + summed(all)).toBe(20);
  });

  it('windows: a new window gives the source a new allowance, and each summary covers its window', async () => {
    const p = await start(cleanup, { maxPendingPerSource: 2, firstFlightTimeoutMs: 500, failureReports: { perSource: 3, windowMs: 1_000 } });
    await emptyConnections(p.server, '127.0.0.110', 10);
    await waitFor(() => summaries(p.audit, '127.0.0.110').length >= 1, 5_000, 'the first window summary');
    await emptyConnections(p.server, '127.0.0.110', 10);
    await p.server.close();
    const one = failures(p.audit, '127.0.0.110').length;
    const list = summaries(p.audit, '127.0.0.110');
    expect(one + summed(list)).toBe(20);
    // At most 3 per window; at least two windows were used.
    expect(one).toBeGreaterThanOrEqual(6);
    expect(list.length).toBeGreaterThanOrEqual(2);
    for (const s of list) expect(s.windowMs).toBe(1_000);
  });

  it('failures of verified peers are always reported one by one', async () => {
    const audit: AuditEvent[] = [];
    const server = await startServer(
      cleanup,
      () => {
        throw new Error('no MCP server for you');
      },
      { backend: 'native', firstFlightTimeoutMs: 500, onAuditEvent: (e) => void audit.push(e), failureReports: { perSource: 1, windowMs: 600_000 } },
    );
    const p = watch(server, audit);
    // Use up the address's allowance with strangers first.
    await emptyConnections(server, '127.0.0.120', 3);
    for (let i = 0; i < 3; i++) {
      const { client, transport } = makeClient(server.url, { backend: 'native', busyRetry: false, webSocketOptions: { localAddress: '127.0.0.120' } });
      cleanup.add(() => client.close());
      // The handshake succeeds, then the session factory throws and the session is closed.
      await client.connect(transport).catch(() => {});
    }
    await waitFor(() => p.errors.filter((e) => e.verified).length === 3, 10_000, 'three verified failures');
    expect(p.errors.filter((e) => e.verified).every((e) => e.error.code === 'ERR_INTERNAL' && e.remoteAddress === '127.0.0.120')).toBe(true);
    // The strangers: one told, two held back for the summary.
    expect(p.errors.filter((e) => !e.verified)).toHaveLength(1);
    await server.close();
    expect(summaries(audit, '127.0.0.120')).toMatchObject([{ count: 2 }]);
  });

  it('a session refused right after its handshake (maxSessionsPerAgent) is a verified peer\'s failure: reported one by one', async () => {
    const p = await start(cleanup, { maxSessionsPerAgent: 1, firstFlightTimeoutMs: 500, failureReports: { perSource: 1, windowMs: 600_000 } });
    await emptyConnections(p.server, '127.0.0.125', 2);
    const first = makeClient(p.server.url, { backend: 'native', busyRetry: false, webSocketOptions: { localAddress: '127.0.0.125' } });
    cleanup.add(() => first.client.close());
    await first.client.connect(first.transport);
    for (let i = 0; i < 3; i++) {
      const { client, transport } = makeClient(p.server.url, { backend: 'native', busyRetry: false, webSocketOptions: { localAddress: '127.0.0.125' } });
      cleanup.add(() => client.close());
      await expect(client.connect(transport)).rejects.toThrow();
    }
    await waitFor(() => p.errors.filter((e) => e.error.code === 'ERR_SESSION_LIMIT').length === 3, 10_000, 'three session-limit refusals');
    expect(failures(p.audit, '127.0.0.125').filter((e) => e.type === 'handshake.failure' && e.code === 'ERR_SESSION_LIMIT')).toHaveLength(3);
    // The strangers before them: one told, one held back.
    expect(p.errors.filter((e) => e.error.code !== 'ERR_SESSION_LIMIT')).toHaveLength(1);
    await first.client.close();
    await p.server.close();
    expect(summaries(p.audit, '127.0.0.125')).toMatchObject([{ count: 1 }]);
  });

  it('failureReports: false reports every failure', async () => {
    const p = await start(cleanup, { maxPendingPerSource: 4, firstFlightTimeoutMs: 500, failureReports: false });
    await emptyConnections(p.server, '127.0.0.130', 60);
    await p.server.close();
    expect(failures(p.audit, '127.0.0.130')).toHaveLength(60);
    expect(p.audit.some((e) => e.type === 'handshake.failure.summary')).toBe(false);
  });

  it('checks its options', async () => {
    const cleanupBad = new Cleanup();
    for (const bad of [{ perSource: -1 }, { perSource: 1.5 }, { windowMs: 10 }, { perSource: 10, total: 5 }, { maxSources: 0 }, 'yes'] as const) {
      await expect(startFeatureServer(cleanupBad, { failureReports: bad as never })).rejects.toThrow(/failureReports/);
    }
    await cleanupBad.run();
  });
});
