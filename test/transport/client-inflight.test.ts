/**
 * The client's bound on a server's requests in flight (review decision 8, part 1): a
 * malicious or broken server that sends sampling (or elicitation, roots/list) requests
 * faster than the client application answers them can park at most
 * maxRequestBytesInFlight (default 16 MiB) of them per session in the client; the rest are
 * answered -32005 before the application sees them, as the listener does for a client's
 * requests. Real SDK client and server (1.x), real sockets on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { CreateMessageResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import { InvalidArgumentError } from '../../src/errors.js';
import type { PqmcpError } from '../../src/errors.js';
import { Cleanup, SERVER_ID, startServer, waitFor } from '../helpers/mcp.js';
import { agent, trustFor } from '../helpers/identities.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const MiB = 1024 * 1024;
const BIG = 'x'.repeat(MiB);

/** A server whose `flood` tool sends `count` sampling requests of 1 MiB at once and reports how each ended. */
async function floodServer(outcomes: Array<number | 'ok'>) {
  return startServer(cleanup, () => {
    const mcp = new McpServer({ name: 'flood', version: '1' });
    mcp.registerTool('flood', { inputSchema: { count: z.number() } }, async ({ count }) => {
      const ask = () => mcp.server.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: BIG } }], maxTokens: 1 }, { timeout: 60_000 });
      await Promise.all(
        Array.from({ length: count }, () =>
          ask().then(
            () => void outcomes.push('ok'),
            (e: { code?: number }) => void outcomes.push(e.code ?? -1),
          ),
        ),
      );
      return { content: [{ type: 'text', text: 'done' }] };
    });
    return mcp;
  });
}

/** A real SDK client whose sampling handler waits until the test opens its gate. */
async function holdingClient(url: string, options: { maxRequestBytesInFlight?: number } = {}) {
  const gates: Array<() => void> = [];
  const errors: string[] = [];
  const transport = new PqmcpClientTransport(url, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), expectedServerId: SERVER_ID, ...options });
  const client = new Client({ name: 'holding', version: '1' }, { capabilities: { sampling: {} } });
  client.setRequestHandler(CreateMessageRequestSchema, async () => new Promise<CreateMessageResult>((resolve) => gates.push(() => resolve({ model: 'm', role: 'assistant', content: { type: 'text', text: 'ok' } }))));
  cleanup.add(() => client.close());
  await client.connect(transport);
  // After connect: the SDK installs its own onerror.
  const sdkOnerror = transport.onerror;
  transport.onerror = (e) => {
    errors.push((e as PqmcpError).code);
    sdkOnerror?.(e);
  };
  return { client, gates, errors };
}

describe('a client bounds the bytes of the server\'s requests in flight (decision 8)', () => {
  it('a server flooding 1 MiB sampling requests while the application holds them gets at most 16 MiB (default) through; the rest are answered -32005 before the handler, and the session goes on', { timeout: 60_000 }, async () => {
    const COUNT = 40;
    const outcomes: Array<number | 'ok'> = [];
    const server = await floodServer(outcomes);
    const { client, gates, errors } = await holdingClient(server.url);
    const flood = client.callTool({ name: 'flood', arguments: { count: COUNT } }, undefined, { timeout: 60_000 });
    await waitFor(() => gates.length + outcomes.length >= COUNT, 30_000, 'every sampling request held or refused');
    // Before: the client had no bound, and all 40 reached the handler (40 MiB held).
    expect(gates.length).toBe(15);
    expect(outcomes).toEqual(Array(COUNT - 15).fill(-32005));
    expect(new Set(errors)).toEqual(new Set(['ERR_TOO_MANY_BYTES_IN_FLIGHT']));
    for (const open of gates) open();
    expect((await flood).content).toEqual([{ type: 'text', text: 'done' }]);
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(15);
    // The session goes on: the budget is whole again.
    outcomes.length = 0;
    gates.length = 0;
    const again = client.callTool({ name: 'flood', arguments: { count: 2 } }, undefined, { timeout: 60_000 });
    await waitFor(() => gates.length === 2, 10_000, 'two more held');
    for (const open of gates) open();
    await again;
    expect(outcomes).toEqual(['ok', 'ok']);
  });

  it('maxRequestBytesInFlight sets the bound (0: none); a bad value is refused when the transport is made', { timeout: 60_000 }, async () => {
    const outcomes: Array<number | 'ok'> = [];
    const server = await floodServer(outcomes);
    const small = await holdingClient(server.url, { maxRequestBytesInFlight: 3 * MiB });
    const first = small.client.callTool({ name: 'flood', arguments: { count: 5 } }, undefined, { timeout: 60_000 });
    await waitFor(() => small.gates.length + outcomes.length >= 5, 30_000, 'five held or refused');
    expect([small.gates.length, outcomes]).toEqual([2, [-32005, -32005, -32005]]);
    for (const open of small.gates) open();
    await first;

    outcomes.length = 0;
    const unbounded = await holdingClient(server.url, { maxRequestBytesInFlight: 0 });
    const second = unbounded.client.callTool({ name: 'flood', arguments: { count: 20 } }, undefined, { timeout: 60_000 });
    await waitFor(() => unbounded.gates.length >= 20, 30_000, 'all twenty held');
    expect(outcomes).toEqual([]);
    for (const open of unbounded.gates) open();
    await second;

    for (const bad of [-1, 1.5, '16MiB', Number.NaN]) {
      expect(() => new PqmcpClientTransport(server.url, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), expectedServerId: SERVER_ID, maxRequestBytesInFlight: bad as number })).toThrow(InvalidArgumentError);
    }
  });
});
