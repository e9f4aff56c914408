/**
 * Every MCP feature through pqmcp, end to end: a real SDK Client and a real McpServer per
 * session, real WebSockets on 127.0.0.1. The only pqmcp-specific line on either side is the
 * one that creates the transport.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { fingerprintHex } from '../../src/identity/index.js';
import { toHex } from '../../src/bytes.js';
import { listen } from '../../src/transport/index.js';
import type { PqmcpServerTransport } from '../../src/transport/index.js';
import { agent, fixtureCrypto, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, connectClient, featureServer, makeClient, startFeatureServer, waitFor } from '../helpers/mcp.js';
import type { ConnectedClient, StartedServer } from '../helpers/mcp.js';

const CLIENT_ID = 'agent://pqmcp-test/client';
const cleanup = new Cleanup();
let srv: StartedServer;
let c: ConnectedClient;

beforeAll(async () => {
  srv = await startFeatureServer(cleanup, { backend: 'native' });
  c = await connectClient(cleanup, srv.url, { backend: 'native', identity: agent(CLIENT_ID) });
});
afterAll(() => cleanup.run());

function text(result: unknown): string {
  const first = ((result as { content?: unknown }).content as Array<{ type: string; text?: string }> | undefined)?.[0];
  return first?.type === 'text' ? (first.text ?? '') : '';
}

describe('MCP over pqmcp: features', () => {
  it('initializes with the server identity verified', async () => {
    expect(c.client.getServerVersion()?.name).toBe('pqmcp-feature-server');
    expect(c.transport.peer?.agentId).toBe(SERVER_ID);
    expect((await c.transport.handshake).peer.agentId).toBe(SERVER_ID);
    expect(c.transport.sessionId).toMatch(/^[0-9a-f]{64}$/);
    expect(c.transport.protocolVersion).toBeTypeOf('string');
  });

  it('tools: list, call, structured content', async () => {
    const { tools } = await c.client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'add', 'whoami', 'big', 'slow', 'progress', 'sample', 'elicit', 'log', 'touch']));
    expect(text(await c.client.callTool({ name: 'echo', arguments: { text: 'héllo ✓' } }))).toBe('héllo ✓');
    const added = await c.client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
    expect(added.structuredContent).toEqual({ sum: 5 });
  });

  it('extra.authInfo carries the verified client: id, scopes, key fingerprint, expiry, issuer, suite, backend, serial', async () => {
    const result = await c.client.callTool({ name: 'whoami', arguments: {} });
    const me = agent(CLIENT_ID);
    expect(result.structuredContent).toEqual({
      clientId: CLIENT_ID,
      scopes: ['resources:read', 'tools:call'],
      token: fingerprintHex(fixtureCrypto(), me.keyPair.publicKey),
      expiresAt: me.credential.notAfter,
      issuer: 'issuer://pqmcp-test',
      suite: 'PQMCP_XWING_MLDSA65ED25519_AES256GCM_SHA256',
      backend: 'native',
      serial: toHex(me.credential.serial),
    });
  });

  it('resources: list, read, templates, completion, subscribe and update notifications', async () => {
    const { resources } = await c.client.listResources();
    expect(resources.map((r) => r.uri)).toEqual(expect.arrayContaining(['config://app', 'notes://alpha', 'notes://beta']));
    const config = await c.client.readResource({ uri: 'config://app' });
    expect(config.contents[0]).toMatchObject({ uri: 'config://app', text: '{"mode":"secure"}' });
    const { resourceTemplates } = await c.client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).toContain('notes://{id}');
    const note = await c.client.readResource({ uri: 'notes://gamma' });
    expect(note.contents[0]).toMatchObject({ text: 'note gamma' });
    const completion = await c.client.complete({ ref: { type: 'ref/resource', uri: 'notes://{id}' }, argument: { name: 'id', value: 'g' } });
    expect(completion.completion.values).toEqual(['gamma']);

    const updates: string[] = [];
    c.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri));
    await c.client.subscribeResource({ uri: 'config://app' });
    expect(text(await c.client.callTool({ name: 'touch', arguments: { uri: 'config://app' } }))).toBe('notified');
    await waitFor(() => updates.length === 1, 5_000, 'resource update');
    expect(updates).toEqual(['config://app']);
    await c.client.unsubscribeResource({ uri: 'config://app' });
    expect(text(await c.client.callTool({ name: 'touch', arguments: { uri: 'config://app' } }))).toBe('not subscribed');
  });

  it('prompts and prompt-argument completion', async () => {
    const { prompts } = await c.client.listPrompts();
    expect(prompts.map((p) => p.name)).toContain('greet');
    const prompt = await c.client.getPrompt({ name: 'greet', arguments: { name: 'Ada' } });
    expect(prompt.messages[0]?.content).toEqual({ type: 'text', text: 'Hello, Ada!' });
    const completion = await c.client.complete({ ref: { type: 'ref/prompt', name: 'greet' }, argument: { name: 'name', value: 'A' } });
    expect(completion.completion.values).toEqual(['Ada', 'Alan']);
  });

  it('logging: setLevel is per session and filters', async () => {
    const logs: Array<{ level: string; data: unknown }> = [];
    c.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push({ level: n.params.level, data: n.params.data }));
    await c.client.setLoggingLevel('info');
    await c.client.callTool({ name: 'log', arguments: { level: 'debug', text: 'hidden' } });
    await c.client.callTool({ name: 'log', arguments: { level: 'warning', text: 'shown' } });
    await waitFor(() => logs.length >= 1, 5_000, 'log message');
    expect(logs).toEqual([{ level: 'warning', data: 'shown' }]);
  });

  it('progress notifications', async () => {
    const seen: number[] = [];
    const result = await c.client.callTool({ name: 'progress', arguments: { steps: 5 } }, undefined, { onprogress: (p) => void seen.push(p.progress) });
    expect(text(result)).toBe('5 steps');
    expect(seen).toEqual([1, 2, 3, 4, 5]);
  });

  it('cancellation reaches the server handler', async () => {
    const before = srv.stats.cancelled;
    const ac = new AbortController();
    const started = srv.stats.slowStarted;
    const call = c.client.callTool({ name: 'slow', arguments: { ms: 20_000 } }, undefined, { signal: ac.signal });
    await started;
    ac.abort('user gave up');
    await expect(call).rejects.toThrow();
    await waitFor(() => srv.stats.cancelled === before + 1, 5_000, 'server-side cancellation');
  });

  it('sampling: server -> client createMessage', async () => {
    const before = c.samplingRequests;
    expect(text(await c.client.callTool({ name: 'sample', arguments: { prompt: 'hi there' } }))).toBe('model said: HI THERE');
    expect(c.samplingRequests).toBe(before + 1);
  });

  it('elicitation: server -> client elicitInput', async () => {
    expect(text(await c.client.callTool({ name: 'elicit', arguments: {} }))).toBe('accept:Ada');
  });

  it('an 8 MiB tool result, and an 8 MiB argument', async () => {
    const size = 8 * 1024 * 1024;
    const big = await c.client.callTool({ name: 'big', arguments: { bytes: size } });
    expect(text(big).length).toBe(size);
    const echoed = await c.client.callTool({ name: 'echo', arguments: { text: 'y'.repeat(size) } });
    expect(text(echoed).length).toBe(size);
  });

  it('200 requests in flight at once', async () => {
    const calls = Array.from({ length: 200 }, (_, i) => c.client.callTool({ name: 'echo', arguments: { text: `m${i}` } }));
    const results = await Promise.all(calls);
    expect(results.map(text)).toEqual(Array.from({ length: 200 }, (_, i) => `m${i}`));
  });
});

describe('sessionId', () => {
  it('stays undefined until initialize was sent, then equals the server transport session id', async () => {
    const local = new Cleanup();
    try {
      const server = await listen({ identity: agent(SERVER_ID), trust: trustFor(), backend: 'native' });
      local.add(() => server.close());
      const serverTransports: PqmcpServerTransport[] = [];
      server.on('session', (transport) => {
        serverTransports.push(transport);
        void featureServer({ sessions: 0, handlerCalls: 0, cancelled: 0, peers: [], slowStarted: new Promise(() => {}), markSlowStarted: () => {} }).connect(transport);
      });
      const conn = makeClient(server.url, { backend: 'native' });
      local.add(() => conn.client.close());
      const seen: Array<[string | undefined, string | undefined]> = [];
      const send = conn.transport.send.bind(conn.transport);
      conn.transport.send = (message, options) => {
        seen.push(['method' in message ? message.method : 'response', conn.transport.sessionId]);
        return send(message, options);
      };
      expect(conn.transport.sessionId).toBeUndefined();
      await conn.client.connect(conn.transport);
      expect(seen[0]).toEqual(['initialize', undefined]);
      expect(conn.transport.sessionId).toMatch(/^[0-9a-f]{64}$/);
      await waitFor(() => serverTransports.length === 1, 5_000, 'server session');
      expect(serverTransports[0]!.sessionId).toBe(conn.transport.sessionId);
      expect(serverTransports[0]!.peer.agentId).toBe('agent://pqmcp-test/client');
      // Channel binding: both ends export the same keying material.
      const ctx = new TextEncoder().encode('token-binding');
      expect(toHex(conn.transport.exportKeyingMaterial('EXPORTER-test', ctx, 32))).toBe(toHex(serverTransports[0]!.exportKeyingMaterial('EXPORTER-test', ctx, 32)));
    } finally {
      await local.run();
    }
  });
});
