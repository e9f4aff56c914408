/**
 * What SDK 2.4 does about the 2026-07-28 era over a single-channel transport, documented
 * as it is today (docs/usage.md, "SDK 2.x and the 2026-07-28 protocol"): the minimal
 * reproduction runs over the SDK's own InMemoryTransport, then the same over pqmcp.
 *
 * - A hand-wired `server.connect(transport)` serves only the 2025 era: `server/discover`
 *   is not a method there, so a client pinned to 2026-07-28 fails negotiation (typed
 *   SdkError ERA_NEGOTIATION_FAILED) and `mode: 'auto'` falls back to 2025-11-25.
 * - `serveStdio(factory, { transport })` is the SDK's entry for a long-lived connection;
 *   given the transport, it serves both eras over it.
 * - Under serveStdio the transport's auth does not reach handlers (ctx.http is unset).
 * If a later SDK changes any of this, these tests say so.
 */
import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { Client, InMemoryTransport, SdkError } from '@modelcontextprotocol/client';
import type { Transport } from '@modelcontextprotocol/client';
import { McpServer } from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import { PqmcpClientTransport, listen, serveMcp } from '../../src/transport/index.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID } from '../helpers/mcp.js';

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

function server(): McpServer {
  const mcp = new McpServer({ name: 'era-probe', version: '1.0.0' });
  mcp.registerTool('auth', {}, async (ctx) => ({ content: [{ type: 'text', text: ctx.http?.authInfo?.clientId ?? 'no authInfo' }] }));
  return mcp;
}

function client(mode: 'auto' | 'pin'): Client {
  const c = new Client({ name: 'era-client', version: '1.0.0' }, { versionNegotiation: { mode: mode === 'auto' ? 'auto' : { pin: '2026-07-28' } } });
  cleanup.add(() => c.close());
  return c;
}

async function pinFails(transport: Transport): Promise<SdkError> {
  const error = await client('pin')
    .connect(transport)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(SdkError);
  expect((error as SdkError).code).toBe('ERA_NEGOTIATION_FAILED');
  expect((error as SdkError).message).toContain('the server did not offer pinned protocol version 2026-07-28 via server/discover');
  return error as SdkError;
}

async function text(c: Client): Promise<string> {
  const r = await c.callTool({ name: 'auth' });
  const first = (r.content as Array<{ type: string; text?: string }>)[0];
  return first?.text ?? '';
}

describe('SDK 2.4 over InMemoryTransport (the minimal reproduction)', () => {
  it('hand-wired server.connect(): a pinned client fails negotiation, auto falls back to 2025-11-25', async () => {
    const [c1, s1] = InMemoryTransport.createLinkedPair();
    await server().connect(s1);
    await pinFails(c1);

    const [c2, s2] = InMemoryTransport.createLinkedPair();
    await server().connect(s2);
    const auto = client('auto');
    await auto.connect(c2);
    expect([auto.getProtocolEra(), auto.getNegotiatedProtocolVersion()]).toEqual(['legacy', '2025-11-25']);
  });

  it('serveStdio(factory, { transport }) serves 2026-07-28 over the same transport', async () => {
    const [c, s] = InMemoryTransport.createLinkedPair();
    const handle = serveStdio(() => server(), { transport: s });
    cleanup.add(() => handle.close());
    const pinned = client('pin');
    await pinned.connect(c);
    expect([pinned.getProtocolEra(), pinned.getNegotiatedProtocolVersion()]).toEqual(['modern', '2026-07-28']);
    expect(await text(pinned)).toBe('no authInfo');
  });
});

describe('the same over pqmcp', () => {
  const CLIENT_ID = 'agent://pqmcp-test/era-client';
  const transport = (url: string): PqmcpClientTransport => new PqmcpClientTransport(url, { identity: agent(CLIENT_ID), trust: trustFor(), expectedServerId: SERVER_ID });

  it('serveMcp hands the session to server.connect(): 2025 era only, the agent at ctx.http.authInfo', async () => {
    const listener = await serveMcp({ identity: agent(SERVER_ID), trust: trustFor() }, () => server());
    cleanup.add(() => listener.close());
    await pinFails(transport(listener.url));
    const auto = client('auto');
    await auto.connect(transport(listener.url));
    expect(auto.getNegotiatedProtocolVersion()).toBe('2025-11-25');
    expect(await text(auto)).toBe(CLIENT_ID);
  });

  it("listen() + serveStdio on each session: 2026-07-28; the SDK drops the transport's auth", async () => {
    const listener = await listen({ identity: agent(SERVER_ID), trust: trustFor() });
    cleanup.add(() => listener.close());
    listener.on('session', (session) => void serveStdio(() => server(), { transport: session }));
    const pinned = client('pin');
    await pinned.connect(transport(listener.url));
    expect(pinned.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    expect(await text(pinned)).toBe('no authInfo');
  });
});

describe('docs/usage.md: examples/sdk2-eras.ts runs as shown', () => {
  it('prints the caller the handler found in each era', async () => {
    const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
    const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', tsx, 'examples/sdk2-eras.ts'], { cwd: root, timeout: 60_000 });
    expect(stdout).toBe('2025-11-25: agent://example.com/planner (ctx.http.authInfo)\n2026-07-28: agent://example.com/planner (session factory)\n');
  });
});
