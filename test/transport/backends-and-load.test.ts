/**
 * Both crypto backends and mixed pairs through the MCP transports, and many sessions at
 * once on one listener, each with its own identity and each seeing only its own.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fingerprintHex } from '../../src/identity/index.js';
import { describeBackend, selectBackend } from '../../src/crypto/select.js';
import { agent, fixtureCrypto, makeAgent, testIssuer } from '../helpers/identities.js';
import { Cleanup, connectClient, startFeatureServer } from '../helpers/mcp.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

type Choice = 'noble' | 'native';
const pairs: Array<[Choice, Choice]> = [
  ['noble', 'noble'],
  ['native', 'native'],
  ['noble', 'native'],
  ['native', 'noble'],
];

describe.each(pairs)('client on %s, server on %s', (clientBackend, serverBackend) => {
  it('connects, calls tools both ways, and reports each side’s backend', async () => {
    const { url } = await startFeatureServer(cleanup, { backend: serverBackend });
    const { client, transport } = await connectClient(cleanup, url, { backend: clientBackend, identity: agent('agent://pqmcp-test/client') });
    expect(transport.backend).toBe(clientBackend);
    const who = await client.callTool({ name: 'whoami', arguments: {} });
    expect(who.structuredContent).toMatchObject({ clientId: 'agent://pqmcp-test/client', backend: serverBackend });
    const sampled = await client.callTool({ name: 'sample', arguments: { prompt: 'mixed' } });
    expect(sampled.content).toEqual([{ type: 'text', text: 'model said: MIXED' }]);
    const size = 1024 * 1024;
    const big = await client.callTool({ name: 'big', arguments: { bytes: size } });
    expect((big.content as Array<{ text: string }>)[0]!.text.length).toBe(size);
  });
});

describe('backend selection', () => {
  it('native and noble both resolve (native may fall back per primitive on older Node)', async () => {
    const native = await selectBackend('native');
    const noble = await selectBackend('noble');
    expect(native.name).toBe('native');
    expect(noble.name).toBe('noble');
    expect(describeBackend(native)).toBeTypeOf('string');
  });
});

describe('many sessions on one listener', () => {
  it('50 sessions at once, each with its own identity, each seeing only its own', async () => {
    const { server, url, stats } = await startFeatureServer(cleanup, { backend: 'native', handshakeTimeoutMs: 60_000 });
    const ids = Array.from({ length: 50 }, (_, i) => `agent://pqmcp-test/load-${i}`);
    const identities = ids.map((id) => makeAgent(fixtureCrypto(), testIssuer(), id, { scopes: [`tenant:${id.slice(-2)}`] }).identity);
    // From 10 loopback addresses (5 each): within the listener's default per-source limits.
    const clients = await Promise.all(
      identities.map((identity, i) => connectClient(cleanup, url, { backend: 'native', identity, handshakeTimeoutMs: 60_000, webSocketOptions: { localAddress: `127.0.0.${10 + (i % 10)}` } })),
    );
    expect(server.sessions.size).toBe(50);
    expect(stats.sessions).toBe(50);
    const results = await Promise.all(clients.map(({ client }) => client.callTool({ name: 'whoami', arguments: {} })));
    results.forEach((result, i) => {
      const identity = identities[i]!;
      expect(result.structuredContent).toMatchObject({
        clientId: ids[i],
        scopes: [`tenant:${ids[i]!.slice(-2)}`],
        token: fingerprintHex(fixtureCrypto(), identity.keyPair.publicKey),
      });
    });
    expect(new Set(stats.peers.map((p) => p.agentId))).toEqual(new Set(ids));
    // Distinct sessions: distinct session ids on the client side.
    expect(new Set(clients.map((c) => c.transport.sessionId)).size).toBe(50);
    await Promise.all(clients.map(({ client }) => client.close()));
    await expect.poll(() => server.sessions.size, { timeout: 5_000 }).toBe(0);
  });
});
