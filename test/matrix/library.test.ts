/**
 * The SDK matrix through the library: for every pairing of SDK majors and protocol eras
 * (helpers/matrix.ts PAIRINGS), a real SDK client over `PqmcpClientTransport` and a real
 * SDK server per session behind `serveMcp` / `listen`, on 127.0.0.1, run every feature
 * of the era (helpers/matrix.ts FEATURES). The verified agent reaches the handlers of both
 * majors: `extra.authInfo` on 1.x, `ctx.http.authInfo` on 2.x.
 *
 * 2.x in the 2026-07-28 era is served through the SDK's own long-lived-connection entry,
 * `serveStdio(factory, { transport })`, with the pqmcp session as the transport: a
 * hand-wired `server.connect(transport)` serves only the 2025 era (docs/usage.md, "SDK 2.x
 * and the 2026-07-28 protocol").
 */
import { afterAll, describe, expect, it } from 'vitest';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import { PqmcpClientTransport, listen, serveMcp } from '../../src/transport/index.js';
import type { PqmcpServer } from '../../src/transport/index.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID } from '../helpers/mcp.js';
import { featureServer2 } from '../helpers/mcp2.js';
import type { FeatureStats } from '../helpers/mcp2.js';
import { ERA_VERSION, FEATURES, PAIRINGS, driver1, driver2, featureServer1 } from '../helpers/matrix.js';
import type { Driver, Pairing, ServerKind } from '../helpers/matrix.js';

const CLIENT_ID = 'agent://pqmcp-test/matrix-client';
const cleanup = new Cleanup();
afterAll(() => cleanup.run());

async function startServer(kind: ServerKind, stats: FeatureStats): Promise<PqmcpServer> {
  const options = { identity: agent(SERVER_ID), trust: trustFor(), host: '127.0.0.1', port: 0 };
  let server: PqmcpServer;
  if (kind === '1.x') server = await serveMcp(options, () => featureServer1(stats));
  else if (kind === '2.x connect') server = await serveMcp(options, () => featureServer2(stats));
  else {
    server = await listen(options);
    // The SDK's entry for a long-lived connection serving both eras; it owns the transport.
    server.on('session', (transport, peer) => void serveStdio(() => featureServer2(stats, peer.agentId), { transport }));
  }
  cleanup.add(() => server.close());
  return server;
}

async function connect(pairing: Pairing, url: string): Promise<Driver> {
  const transport = new PqmcpClientTransport(url, { identity: agent(CLIENT_ID), trust: trustFor(), expectedServerId: SERVER_ID });
  const driver = pairing.client === 1 ? await driver1(transport) : await driver2(transport, pairing.negotiation);
  cleanup.add(() => driver.close());
  return driver;
}

describe.each(PAIRINGS)('$name, through the library', (pairing) => {
  const stats: FeatureStats = { cancelled: 0, handlerCalls: 0 };
  let d: Driver;

  it(`connects in the ${pairing.era} era`, async () => {
    const server = await startServer(pairing.server, stats);
    d = await connect(pairing, server.url);
    expect(d.era()).toBe(pairing.era);
    expect(d.protocolVersion()).toBe(ERA_VERSION[pairing.era]);
  });

  it('the verified agent reaches the handler', async () => {
    const me = await d.call('whoami');
    expect(me.structured?.['clientId']).toBe(CLIENT_ID);
    if (pairing.server === '1.x') expect(me.structured?.['scopes']).toEqual(['resources:read', 'tools:call']);
    // 2.x hand-wired: the transport's auth at ctx.http.authInfo. Under serveStdio the SDK
    // does not pass a transport's auth to handlers (its McpRequestContext: "serveStdio never
    // sets it"), so the handler uses the verified peer pqmcp gave the session factory.
    if (pairing.server === '2.x connect') expect(me.structured).toEqual({ clientId: CLIENT_ID, via: 'ctx.http.authInfo', scopes: ['resources:read', 'tools:call'] });
    if (pairing.server === '2.x serveStdio') expect(me.structured).toEqual({ clientId: CLIENT_ID, via: 'factory', scopes: [] });
  });

  it.each(FEATURES.filter((f) => f.eras.includes(pairing.era)))('$name', async (feature) => {
    await feature.run(d);
  });
});
