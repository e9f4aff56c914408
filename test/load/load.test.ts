/**
 * Load on real sockets (127.0.0.1): many concurrent MCP sessions through one listener, each
 * making many tools/call requests whose payloads are hashed on both sides. Zero lost (every
 * call answered, every handler run counted), zero corrupted (the server checks the hash of
 * what it received, the client the hash of what came back), and memory back near its
 * baseline once every session has closed.
 *
 * Sizes: CI runs 200 sessions x 20 calls (noble ML-DSA on Node < 24.7 makes handshakes
 * ~10x dearer, so 100 x 20 there); PQMCP_LOAD=full runs 1,000 sessions x 100 calls.
 * Memory is measured after forced collections (gc exposed at run time through v8 flags, no
 * global vitest flag needed): heap plus ArrayBuffers, a bound of 48 MB (96 MB full).
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { liveMemory } from '../helpers/memory.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { selectBackend } from '../../src/crypto/select.js';
import { PqmcpClientTransport, serveMcp } from '../../src/transport/index.js';
import type { AgentIdentity } from '../../src/identity/index.js';
import { agent, fixtureCrypto, makeAgent, testIssuer, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, waitFor } from '../helpers/mcp.js';
import { trackHandles } from '../adversarial/socket-harness.js';

const FULL = process.env.PQMCP_LOAD === 'full';
const NATIVE_PQ = (() => {
  const r = selectBackend('native').report;
  return r.mldsa === 'native' && r.mlkem === 'native';
})();
const SESSIONS = FULL ? 1000 : NATIVE_PQ ? 200 : 100;
const CALLS = FULL ? 100 : 20;
const MEMORY_BOUND = (FULL ? 96 : 48) * 1024 * 1024;


const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const MB = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

interface Counters {
  handled: number;
  corruptedAtServer: number;
}

/** One McpServer per session: `digest` checks the hash it was sent and returns the payload reversed with its hash. */
function digestServer(c: Counters): McpServer {
  const mcp = new McpServer({ name: 'load', version: '1.0.0' });
  mcp.registerTool('digest', { inputSchema: { data: z.string(), sha256: z.string() } }, async ({ data, sha256: claimed }) => {
    c.handled++;
    if (sha256(data) !== claimed) c.corruptedAtServer++;
    const reversed = [...data].reverse().join('');
    return { content: [{ type: 'text', text: reversed }], structuredContent: { sha256: sha256(reversed) } };
  });
  return mcp;
}

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

describe(`load: ${SESSIONS} concurrent sessions x ${CALLS} tools/call through one listener`, () => {
  it('zero lost, zero corrupted, memory back near the baseline, nothing left open', { timeout: FULL ? 900_000 : 180_000 }, async () => {
    const handles = trackHandles();
    const counters: Counters = { handled: 0, corruptedAtServer: 0 };
    const clients = Array.from({ length: 8 }, (_, i): AgentIdentity => makeAgent(fixtureCrypto(), testIssuer(), `agent://pqmcp-load/client-${i}`).identity);
    const server = await serveMcp(
      { identity: agent(SERVER_ID), trust: trustFor(), backend: 'native', maxPendingHandshakes: SESSIONS + 10, handshakeTimeoutMs: 300_000,
        // Every session comes from 127.0.0.1 at once: lift the per-source limits (the edge is tested in flood.test.ts).
        maxPendingPerSource: SESSIONS + 10, maxCryptoQueue: SESSIONS + 10, handshakeRatePerSource: 0, connectionRatePerSource: 0, firstFlightTimeoutMs: 300_000 },
      () => digestServer(counters),
    );
    const serverErrors: unknown[] = [];
    server.on('clientError', (e) => void serverErrors.push(e));
    const baseline = liveMemory();

    const t0 = Date.now();
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers)), 250);
    const sessions = await Promise.all(
      Array.from({ length: SESSIONS }, async (_, i) => {
        const transport = new PqmcpClientTransport(server.url, { identity: clients[i % clients.length]!, trust: trustFor(), backend: 'native', expectedServerId: SERVER_ID, handshakeTimeoutMs: 300_000 });
        const client = new Client({ name: `load-${i}`, version: '1' });
        await client.connect(transport, { timeout: 300_000 });
        return client;
      }),
    );
    const tHandshakes = Date.now() - t0;
    expect(server.sessions.size).toBe(SESSIONS);

    let answered = 0;
    let corruptedAtClient = 0;
    const t1 = Date.now();
    await Promise.all(
      sessions.map(async (client, s) => {
        for (let i = 0; i < CALLS; i++) {
          // 48 B .. 12 KiB of random data, base64.
          const data = randomBytes(32 + ((s * 131 + i * 977) % 9216)).toString('base64');
          const result = await client.callTool({ name: 'digest', arguments: { data, sha256: sha256(data) } }, undefined, { timeout: 300_000 });
          const text = (result.content as { text: string }[])[0]!.text;
          const { sha256: claimed } = result.structuredContent as { sha256: string };
          if (sha256(text) !== claimed || [...text].reverse().join('') !== data) corruptedAtClient++;
          answered++;
        }
      }),
    );
    const tCalls = Date.now() - t1;

    await Promise.all(sessions.map((c) => c.close()));
    await waitFor(() => server.sessions.size === 0, 30_000, 'every server session closed');
    clearInterval(sampler);
    const after = liveMemory();
    await server.close();

    console.log(
      `[load] ${SESSIONS} sessions x ${CALLS} calls (backend ${selectBackend('native').report.mldsa} ML-DSA): handshakes ${tHandshakes} ms ` +
        `(${((SESSIONS * 1000) / tHandshakes).toFixed(0)}/s), calls ${tCalls} ms (${((SESSIONS * CALLS * 1000) / tCalls).toFixed(0)}/s); ` +
        `memory baseline ${MB(baseline)}, peak ${MB(peak)}, after close ${MB(after)} (+${MB(after - baseline)})`,
    );
    expect(answered).toBe(SESSIONS * CALLS);
    expect(counters.handled).toBe(SESSIONS * CALLS);
    expect(corruptedAtClient).toBe(0);
    expect(counters.corruptedAtServer).toBe(0);
    expect(serverErrors).toEqual([]);
    expect(after - baseline).toBeLessThan(MEMORY_BOUND);
    expect(await handles.settle(10_000)).toEqual({});
  });
});
