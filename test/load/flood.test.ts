/**
 * Floods against a listener with its default edge settings (docs/threat-model.md, "The
 * edge"): while each flood runs, an honest agent from its own address connects, calls a
 * tool and disconnects, again and again, WITHOUT retrying. Every one of its handshakes must
 * succeed (100 %), the admission table must stay within its caps, and once the flood stops
 * the listener must hold nothing. Loopback only (127.0.0.x sources), bounded in count and
 * time. Timings are not asserted here (the flood benchmark reports them as ratios).
 *
 *   (a) idle sockets re-opened as fast as the server frees them, from 1 and from 16 sources
 *   (b) 300-connection slow-loris after the upgrade (a ClientHello trickled a byte a second)
 *   (c) valid ClientHellos, then silence
 *   (d) one recorded ClientHello replayed at full rate
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { Session } from '../../src/session/session.js';
import { endpointOfUrl } from '../../src/handshake/endpoint.js';
import { createNativeBackend } from '../../src/crypto/native.js';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import type { PqmcpServer } from '../../src/transport/index.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, startFeatureServer, waitFor } from '../helpers/mcp.js';
import { Flood, loopbackSources, type FloodKind } from '../../benchmarks/lib/floods.js';

const HONEST_SOURCE = '127.0.0.200';
const HONEST_RUNS = 3;

const cleanup = new Cleanup();
let server: PqmcpServer;
let url: string;
let hellos: Uint8Array[];

beforeAll(async () => {
  ({ server, url } = await startFeatureServer(cleanup, { backend: 'native' }));
  const backend = createNativeBackend();
  hellos = Array.from({ length: 4 }, () => {
    // Naming the listener's endpoint, as a real client does: the hello gets as far as the crypto.
    const s = Session.client({ backend, identity: agent('agent://pqmcp-test/attacker'), trust: trustFor(), endpoint: endpointOfUrl(new URL(url)) });
    return Buffer.concat(s.start().send);
  });
});
afterAll(() => cleanup.run());

/** One honest agent: connect (no retry), one tools/call, close. Resolves to the error, if any. */
async function honestOnce(): Promise<unknown> {
  const transport = new PqmcpClientTransport(url, {
    identity: agent('agent://pqmcp-test/client'),
    trust: trustFor(),
    backend: 'native',
    expectedServerId: SERVER_ID,
    webSocketOptions: { localAddress: HONEST_SOURCE },
    // No retry: a busy answer or an eviction counts as a failure.
    busyRetry: false,
  });
  const client = new Client({ name: 'honest', version: '1' });
  try {
    await client.connect(transport);
    const r = await client.callTool({ name: 'echo', arguments: { text: 'through' } });
    expect(r.content).toEqual([{ type: 'text', text: 'through' }]);
    return undefined;
  } catch (e) {
    return e;
  } finally {
    await client.close();
  }
}

async function underFlood(kind: FloodKind, sources: number, connections: number, warmupMs: number): Promise<void> {
  const flood = new Flood({ url, kind, sources: loopbackSources(sources), connections, hellos, maxOpened: 20_000 });
  let maxPending = 0;
  const sampler = setInterval(() => (maxPending = Math.max(maxPending, server.pendingHandshakes)), 5);
  try {
    await new Promise((r) => setTimeout(r, warmupMs));
    const failures: unknown[] = [];
    for (let i = 0; i < HONEST_RUNS; i++) {
      const error = await honestOnce();
      if (error !== undefined) failures.push(error);
    }
    expect(failures).toEqual([]);
    // The flood really ran and the caps held.
    expect(flood.stats.opened).toBeGreaterThanOrEqual(connections);
    expect(maxPending).toBeLessThanOrEqual(64);
  } finally {
    clearInterval(sampler);
    await flood.stop();
  }
  await waitFor(() => server.pendingHandshakes === 0 && server.sessions.size === 0, 10_000, 'listener idle after the flood');
}

describe('honest handshakes under floods (default edge settings)', { timeout: 60_000 }, () => {
  it('(a) idle sockets re-opened as fast as freed, from 1 source', async () => {
    await underFlood('idle', 1, 96, 500);
  });

  it('(a) idle sockets re-opened as fast as freed, from 16 sources', async () => {
    await underFlood('idle', 16, 96, 500);
  });

  it('(b) 300-connection slow-loris after the upgrade, from 16 sources', async () => {
    await underFlood('slowloris', 16, 300, 1_500);
  });

  it('(c) valid ClientHellos then silence, 200 connections from 16 sources', async () => {
    await underFlood('silence', 16, 200, 1_000);
  });

  it('(d) one ClientHello replayed at full rate, from 16 sources', async () => {
    await underFlood('replay', 16, 32, 1_000);
  });
});
