/**
 * `pqmcp connect --max-request-bytes-in-flight` (decision 8, part 1): the bridge's client
 * transport bounds the server's requests (sampling, elicitation, roots/list) the stdio
 * client has not answered; the flag sets that bound. Real processes: a library server
 * (serveMcp, the MCP SDK's McpServer) whose tool sends the client two ~600 KB sampling
 * requests, the bridge, and a raw stdio client that declares sampling and never answers.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { loadIdentity, loadTrustStore } from '../../src/identity/files.js';
import { Cleanup, startServer, waitFor } from '../helpers/mcp.js';
import { CliProcess, cli, killAll, tempDir, writeAgent, writeIssuer, writeTrust } from './helpers.js';
import type { Files } from './helpers.js';

const SERVER_ID = 'agent://connect-inflight/server';
const BIG = 'x'.repeat(600_000);
const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: { sampling: {} }, clientInfo: { name: 'raw', version: '1' } } };
const INITIALIZED = { jsonrpc: '2.0', method: 'notifications/initialized' };
const ask = (count: number): Record<string, unknown> => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'ask', arguments: { count } } });

const tmp = tempDir('connect-inflight');
const cleanup = new Cleanup();
let trust: string;
let server: Files;
let alice: Files;

beforeAll(() => {
  const issuer = writeIssuer(tmp.dir, 'issuer://connect-inflight', 'issuer');
  server = writeAgent(tmp.dir, issuer, SERVER_ID, 'server');
  alice = writeAgent(tmp.dir, issuer, 'agent://connect-inflight/alice', 'alice');
  trust = writeTrust(join(tmp.dir, 'trust.json'), issuer);
});
afterEach(() => cleanup.run());
afterAll(() => {
  killAll();
  tmp.remove();
});

/** A library server whose `ask` tool sends `count` ~600 KB sampling requests and returns at once; `refused` gets the error code of each request that failed. */
async function askingServer(refused: number[]): Promise<string> {
  const library = await startServer(
    cleanup,
    () => {
      const mcp = new McpServer({ name: 'ask', version: '1' });
      mcp.registerTool('ask', { inputSchema: { count: z.number() } }, async ({ count }) => {
        for (let i = 0; i < count; i++) {
          mcp.server
            .createMessage({ messages: [{ role: 'user', content: { type: 'text', text: BIG } }], maxTokens: 1 }, { timeout: 60_000 })
            .catch((e: { code?: number }) => void refused.push(e.code ?? -1));
        }
        return { content: [{ type: 'text', text: 'asked' }] };
      });
      return mcp;
    },
    { identity: await loadIdentity(server.key), trust: await loadTrustStore(trust) },
  );
  return library.url;
}

/** The bridge with `extra` flags, a stdio client that calls `ask` and answers no sampling request; resolves once the tool answered. */
async function bridgeAsking(url: string, count: number, extra: string[]): Promise<{ bridge: CliProcess; sampling: () => number }> {
  const bridge = new CliProcess(['connect', url, '--identity', alice.key, '--trust', trust, '--expect', SERVER_ID, ...extra]);
  cleanup.add(() => bridge.stop('SIGKILL'));
  bridge.write(INIT);
  await bridge.waitForMessage((m) => m['id'] === 0);
  bridge.write(INITIALIZED);
  bridge.write(ask(count));
  await bridge.waitForMessage((m) => m['id'] === 1);
  return { bridge, sampling: () => bridge.messages().filter((m) => m['method'] === 'sampling/createMessage').length };
}

describe('pqmcp connect --max-request-bytes-in-flight', () => {
  it('a bad value is a usage error (exit 2), worded as serve\'s', async () => {
    for (const bad of ['16MiB', '-1', '1.5', '']) {
      const r = await cli(['connect', 'ws://127.0.0.1:1/', '--identity', alice.key, '--trust', trust, '--expect', SERVER_ID, `--max-request-bytes-in-flight=${bad}`]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr.trim()).toBe(`pqmcp: --max-request-bytes-in-flight must be an integer >= 0 (bytes; 0 = no limit); got ${JSON.stringify(bad)} (ERR_USAGE)`);
    }
  });

  it('sets the bound: with 1000000, the server\'s second ~600 KB sampling request is refused by the bridge with -32005 and only the first reaches the stdio client; without it (16 MiB) both do', { timeout: 60_000 }, async () => {
    const refusedByDefault: number[] = [];
    const open = await bridgeAsking(await askingServer(refusedByDefault), 2, []);
    await waitFor(() => open.sampling() === 2, 20_000, 'both sampling requests at the stdio client');
    expect(refusedByDefault).toEqual([]);

    const refused: number[] = [];
    const bounded = await bridgeAsking(await askingServer(refused), 2, ['--max-request-bytes-in-flight', '1000000']);
    await waitFor(() => refused.length === 1, 20_000, 'the refusal at the server');
    // Before: the flag was unknown (exit 2); the transport's default let both through.
    expect(refused).toEqual([-32005]);
    // Both requests were sent before the tool's answer, which the stdio client has read: the count is final.
    expect(bounded.sampling()).toBe(1);
    expect(bounded.bridge.child.exitCode).toBeNull();
  });

  it('a refusal is not the session\'s failure: logged once (the rest counted), and the bridge still exits 0 once stdin ends with every request answered', { timeout: 60_000 }, async () => {
    const refused: number[] = [];
    const { bridge, sampling } = await bridgeAsking(await askingServer(refused), 3, ['--max-request-bytes-in-flight', '1000000']);
    await waitFor(() => refused.length === 2, 20_000, 'both refusals at the server');
    expect(refused).toEqual([-32005, -32005]);
    expect(sampling()).toBe(1);
    bridge.child.stdin!.end();
    // Before: the first refusal became the session's failure: exit 1, its message as the final error.
    expect(await bridge.exited, bridge.stderr).toBe(0);
    const lines = bridge.stderr.trim().split('\n');
    expect(lines.filter((l) => l.includes('ERR_TOO_MANY_BYTES_IN_FLIGHT'))).toEqual([
      expect.stringMatching(/^pqmcp connect: the peer sent request .*; the limit is 1000000 bytes \(--max-request-bytes-in-flight\); it was refused \(ERR_TOO_MANY_BYTES_IN_FLIGHT\); the session goes on; further refusals are counted$/),
      "pqmcp connect: 2 of the server's requests were refused in all (ERR_TOO_MANY_BYTES_IN_FLIGHT)",
    ]);
    expect(lines.filter((l) => l.startsWith('pqmcp: '))).toEqual([]);
  });
});
