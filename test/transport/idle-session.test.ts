/**
 * What an established, idle session keeps reachable: nothing of the HTTP upgrade that opened
 * it. A server holds thousands of idle sessions; each one's upgrade request (headers, raw
 * headers, stream state) used to stay alive in a closure's context for the session's life.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { listen } from '../../src/transport/index.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, connectClient, featureServer, waitFor } from '../helpers/mcp.js';
import { collectGarbage } from '../helpers/memory.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const noStats = () => ({ sessions: 0, handlerCalls: 0, cancelled: 0, peers: [], slowStarted: new Promise<void>(() => {}), markSlowStarted: () => {} });

describe('an idle established session', () => {
  it('keeps no reference to its HTTP upgrade request, and still works and closes cleanly', async () => {
    const http: Server = createServer((_req, res) => res.end());
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    cleanup.add(() => new Promise((r) => http.close(() => r(undefined))));
    // The same request object the pqmcp listener receives (listeners share it); watched only.
    const upgrades: Array<WeakRef<IncomingMessage>> = [];
    http.on('upgrade', (req: IncomingMessage) => void upgrades.push(new WeakRef(req)));
    const server = await listen({ identity: agent(SERVER_ID), trust: trustFor(), backend: 'native', server: http, path: '/mcp' });
    cleanup.add(() => server.close());
    server.on('session', (transport) => void featureServer(noStats()).connect(transport));
    const { client } = await connectClient(cleanup, server.url, { backend: 'native' });
    expect((await client.callTool({ name: 'echo', arguments: { text: 'before' } })).content).toEqual([{ type: 'text', text: 'before' }]);
    expect(upgrades).toHaveLength(1);
    expect(server.sessions.size).toBe(1);

    await new Promise((resolve) => setImmediate(resolve)); // WeakRef targets live until the job ends
    collectGarbage();
    expect(upgrades[0]!.deref()).toBeUndefined();

    // The session did not need it: it still carries calls, then closes cleanly.
    expect((await client.callTool({ name: 'echo', arguments: { text: 'after' } })).content).toEqual([{ type: 'text', text: 'after' }]);
    await client.close();
    await waitFor(() => server.sessions.size === 0, 5_000, 'the server session to end');
  });
});
