/**
 * The client transport refuses to run without knowing which server it means: a trust store
 * only says an issuer vouched for an agent, not that the agent is the intended server.
 * expectedServerId, serverIdConstraints (docs/protocol.md 6.5) or an explicit, warned-about
 * allowAnyServer; over a real socket, a server outside the constraints is refused with
 * ERR_NAME_CONSTRAINT and one inside them serves.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NameConstraintError } from '../../src/errors.js';
import { PqmcpClientTransport } from '../../src/transport/client.js';
import { CloseCode } from '../../src/transport/close-codes.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, connectClient, makeClient, startFeatureServer, waitFor } from '../helpers/mcp.js';

describe('PqmcpClientTransport options', () => {
  const base = () => ({ identity: agent('agent://pqmcp-test/client'), trust: trustFor(), backend: 'native' as const });
  const url = 'ws://127.0.0.1:1/';

  it('allowAnyServer warns once per process, loudly, with a code', async () => {
    const warnings: Error[] = [];
    const listener = (w: Error) => warnings.push(w);
    process.on('warning', listener);
    try {
      new PqmcpClientTransport(url, { ...base(), allowAnyServer: true });
      new PqmcpClientTransport(url, { ...base(), allowAnyServer: true });
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', listener);
    }
    // First in this file (vitest isolates files: test/transport is not in vitest.config.ts's
    // 'shared' project), so this is the process's first allowAnyServer.
    const ours = warnings.filter((w) => (w as Error & { code?: string }).code === 'PQMCP_ALLOW_ANY_SERVER');
    expect(ours).toHaveLength(1);
    expect(ours[0]!.name).toBe('SecurityWarning');
    expect(ours[0]!.message).toContain('accepts ANY server its trust store vouches for');
  });

  it('requires expectedServerId or serverIdConstraints unless allowAnyServer is set explicitly', () => {
    expect(() => new PqmcpClientTransport(url, base())).toThrowError(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/expectedServerId.*serverIdConstraints.*allowAnyServer/) }),
    );
    expect(() => new PqmcpClientTransport(url, { ...base(), allowAnyServer: true })).not.toThrow();
    expect(() => new PqmcpClientTransport(url, { ...base(), expectedServerId: 'agent://x/y' })).not.toThrow();
    expect(() => new PqmcpClientTransport(url, { ...base(), serverIdConstraints: ['agent://x/'] })).not.toThrow();
    expect(() => new PqmcpClientTransport(url, { ...base(), expectedServerId: 'agent://x/y', serverIdConstraints: ['agent://x/'] })).not.toThrow();
  });

  it('refuses allowAnyServer beside a server id or constraints, a non-boolean allowAnyServer, and bad constraints', () => {
    const invalid = (options: object, message: RegExp) =>
      expect(() => new PqmcpClientTransport(url, { ...base(), ...options })).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(message) }));
    invalid({ allowAnyServer: true, expectedServerId: 'agent://x/y' }, /not both/);
    invalid({ allowAnyServer: true, serverIdConstraints: ['agent://x/'] }, /not both/);
    invalid({ allowAnyServer: 'yes' }, /allowAnyServer must be a boolean/);
    invalid({ serverIdConstraints: [] }, /serverIdConstraints must list at least one/);
    invalid({ serverIdConstraints: ['agent://*.x/'] }, /serverIdConstraints\[0\] may use "\*" only as a final/);
    invalid({ serverIdConstraints: 'agent://x/' }, /serverIdConstraints must be an array/);
  });

  it('refuses URLs that are not ws:// or wss://', () => {
    for (const bad of ['http://127.0.0.1/', 'not a url', 'file:///etc/passwd']) {
      expect(() => new PqmcpClientTransport(bad, { ...base(), expectedServerId: 'agent://x/y' })).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    }
  });
});

describe('serverIdConstraints over a real socket', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('a server inside the constraints serves; one outside is refused with ERR_NAME_CONSTRAINT (alert 102, close 4002)', async () => {
    const { url } = await startFeatureServer(cleanup);
    // SERVER_ID is agent://pqmcp-test/server.
    const inside = await connectClient(cleanup, url, { expectedServerId: undefined, serverIdConstraints: ['agent://pqmcp-test/*'] });
    expect(inside.transport.peer?.agentId).toBe(SERVER_ID);
    expect((await inside.client.listTools()).tools.length).toBeGreaterThan(0);

    const outside = makeClient(url, { expectedServerId: undefined, serverIdConstraints: ['agent://pqmcp-test/tools/', 'agent://pqmcp-test/serv'] });
    cleanup.add(() => outside.client.close());
    const error = await outside.client.connect(outside.transport).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NameConstraintError);
    expect((error as NameConstraintError).code).toBe('ERR_NAME_CONSTRAINT');
    expect((error as NameConstraintError).alert).toBe(102);
    expect((error as NameConstraintError).message).toBe(
      'peer "agent://pqmcp-test/server" is outside the accepted ids ("agent://pqmcp-test/tools/", "agent://pqmcp-test/serv")',
    );
    expect(outside.transport.sessionId).toBeUndefined();
    expect(CloseCode.authenticationFailed).toBe(4002);
  });
});

describe('a configuration the Session refuses, found after the dial (review2 F3)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('start() rejects and the opened socket is dropped at once, not left to the server handshake timeout', async () => {
    const { WebSocketServer } = await import('ws');
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => [...p][0] ?? false });
    cleanup.add(() => new Promise((r) => wss.close(() => r(undefined))));
    await new Promise((r) => wss.once('listening', r));
    let accepted = 0;
    wss.on('connection', (ws) => {
      accepted++;
      ws.on('error', () => {});
    });
    const port = (wss.address() as { port: number }).port;
    const transport = new PqmcpClientTransport(`ws://127.0.0.1:${port}/`, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), backend: 'native', expectedServerId: SERVER_ID, suites: [0x7777] });
    await expect(transport.start()).rejects.toThrow(/suite/i);
    expect(accepted).toBe(1);
    await waitFor(() => wss.clients.size === 0, 5_000, 'the client dropped its socket');
  });
});
