/**
 * `pqmcp serve` in front of a child that stops reading its stdin (review F2): a session the
 * gateway stops reading is not cut by the keepalive while the gateway holds it, and is
 * closed with ERR_READ_PAUSE_TIMEOUT past --max-read-pause; with --shared, only a tenant over
 * its share of the child's stdin is paused (and so closed at the cap), so another tenant
 * outlives the stall and its calls complete. Short keepalive (a ping each second, 2 s for its pong): before, every
 * paused session was cut within 3 s. Real gateway, children (fixtures/blocking-server.mjs) and ws on 127.0.0.1.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import type { JsonRpcMessage } from '../../src/transport/index.js';
import { loadOwnIdentity } from '../../src/cli/files.js';
import { loadTrustStore } from '../../src/identity/files.js';
import { createNativeBackend } from '../../src/crypto/native.js';
import { Cleanup, waitFor } from '../helpers/mcp.js';
import { ROOT, cli, cliInProcess, killAll, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from './helpers.js';
import type { CliProcess, Files } from './helpers.js';

const SERVER_ID = 'agent://stdin-hold/gateway';
const BLOCKING = ['node', join(ROOT, 'test/cli/fixtures/blocking-server.mjs')];
const KEEPALIVE = ['--keepalive', '1s', '--keepalive-timeout', '2s'];
const FLOOD = 'x'.repeat(256 * 1024);
const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } } as unknown as JsonRpcMessage;
const call = (id: number, name: string, args: Record<string, unknown>): JsonRpcMessage => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

const tmp = tempDir('stdin-hold');
let trust: string;
let gw: Files;
let alice: Files;
let bob: Files;

beforeAll(() => {
  const issuer = writeIssuer(tmp.dir, 'issuer://stdin-hold', 'issuer');
  gw = writeAgent(tmp.dir, issuer, SERVER_ID, 'gateway');
  alice = writeAgent(tmp.dir, issuer, 'agent://stdin-hold/alice', 'alice');
  bob = writeAgent(tmp.dir, issuer, 'agent://stdin-hold/bob', 'bob');
  trust = writeTrust(join(tmp.dir, 'trust.json'), issuer);
});
afterAll(() => {
  killAll();
  tmp.remove();
});

interface Tenant {
  transport: PqmcpClientTransport;
  answers: JsonRpcMessage[];
  errors: Error[];
  closed: () => boolean;
  answer: (id: number, what: string, timeoutMs?: number) => Promise<JsonRpcMessage>;
}

/** A pqmcp client (keepalive at its defaults: it never pings within these tests) that has initialized. */
async function tenant(url: string, files: Files, cleanup: Cleanup): Promise<Tenant> {
  const backend = createNativeBackend();
  const transport = new PqmcpClientTransport(url, { identity: await loadOwnIdentity(backend, files.key, undefined, false), trust: await loadTrustStore(trust), backend, expectedServerId: SERVER_ID });
  const answers: JsonRpcMessage[] = [];
  const errors: Error[] = [];
  let closed = false;
  transport.onmessage = (m) => void answers.push(m as JsonRpcMessage);
  transport.onerror = (e) => void errors.push(e);
  transport.onclose = () => void (closed = true);
  await transport.start();
  cleanup.add(() => transport.close());
  const answer = async (id: number, what: string, timeoutMs = 20_000): Promise<JsonRpcMessage> => {
    await waitFor(() => closed || answers.some((a) => a.id === id), timeoutMs, what);
    const found = answers.find((a) => a.id === id);
    if (!found) throw new Error(`${what}: the session closed first (${errors.map((e) => e.message).join('; ') || 'no error'})`);
    return found;
  };
  await transport.send(INIT);
  await answer(0, 'initialize');
  await transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  return { transport, answers, errors, closed: () => closed, answer };
}

/** Block the child for `ms` (it stops reading stdin), then send it `count` notifications of 256 KiB. */
async function blockAndFlood(gateway: CliProcess, t: Tenant, id: number, ms: number, count: number): Promise<void> {
  const seen = gateway.stderr.split('blocking ').length;
  await t.transport.send(call(id, 'block', { ms }));
  await waitFor(() => gateway.stderr.split('blocking ').length > seen, 10_000, 'the child blocking');
  for (let n = 0; n < count; n++) await t.transport.send({ jsonrpc: '2.0', method: 'notifications/flood', params: { n, blob: FLOOD } });
}

// The tests run side by side (each its own gateway, children and clients, and its own
// cleanup): they are mostly waits on the gateways' timers (a 6 s block, the 3 s and 10 s caps).
describe('pqmcp serve: sessions held for a child that does not read (review F2)', { concurrent: true }, () => {
  it('a paused session is not cut by the keepalive while the gateway holds it; past --max-read-pause it is closed with ERR_READ_PAUSE_TIMEOUT', { timeout: 90_000 }, async ({ onTestFinished }) => {
    const cleanup = new Cleanup();
    onTestFinished(() => cleanup.run());
    // The cap (10 s) is well past the 6 s block: the session survives the block however long
    // the child takes to read the flood back (R10-8: with a 6 s cap the margin was only the
    // flood's start-up time), and both are well past the keepalive's 3 s.
    const { gateway } = await startGateway(['--identity', gw.key, '--trust', trust, '--json', ...KEEPALIVE, '--max-read-pause', '10s'], BLOCKING).then((g) => (cleanup.add(() => g.gateway.stop('SIGKILL')), g));
    const url = /"url":"(ws:\/\/[^"]+)"/.exec(gateway.stderr)![1]!;
    const a = await tenant(url, alice, cleanup);

    // 6 s without reading, 4 MiB over the session's share: held twice the keepalive's time.
    await blockAndFlood(gateway, a, 1, 6_000, 16);
    expect((await a.answer(1, 'the blocking call')).result).toMatchObject({ content: [{ text: 'blocked 6000 ms' }] });
    await a.transport.send({ jsonrpc: '2.0', id: 2, method: 'ping' });
    const pong = await a.answer(2, 'the ping after the stall');
    // initialize, initialized, block, 16 notifications, ping: nothing lost.
    expect(pong.result).toMatchObject({ lines: 20 });
    expect(a.closed()).toBe(false);

    // A child that stops reading for longer than --max-read-pause: the session is closed, and says why.
    await blockAndFlood(gateway, a, 3, 60_000, 16);
    await waitFor(() => a.closed(), 30_000, 'the session closed at the cap');
    const end = await gateway.waitForStderr(/"event":"session-end".*?"reason":"([^"]*)"/);
    expect(end[1]).toContain('ERR_READ_PAUSE_TIMEOUT');
    expect(a.errors.map((e) => e.message).join('; ')).toContain('limit exceeded (close code 4003)');
  });

  it('--shared: a tenant that floods a stalled child is paused (and closed at the cap), another tenant is still read: it outlives the stall and its calls complete', { timeout: 60_000 }, async ({ onTestFinished }) => {
    const cleanup = new Cleanup();
    onTestFinished(() => cleanup.run());
    const { gateway } = await startGateway(['--identity', gw.key, '--trust', trust, '--json', '--shared', ...KEEPALIVE, '--max-read-pause', '3s'], BLOCKING).then((g) => (cleanup.add(() => g.gateway.stop('SIGKILL')), g));
    const url = /"url":"(ws:\/\/[^"]+)"/.exec(gateway.stderr)![1]!;
    const a = await tenant(url, alice, cleanup);
    const b = await tenant(url, bob, cleanup);
    const aliceTag = /"event":"session-start","session":"(\w+)","agentId":"agent:\/\/stdin-hold\/alice"/.exec(gateway.stderr)![1]!;

    // Alice's call stops the child for 6 s and she queues 4 MiB: far over her half of the budget.
    await blockAndFlood(gateway, a, 1, 6_000, 16);
    // Bob calls meanwhile: a few bytes, under his share; he is read (his pongs too).
    await b.transport.send(call(1, 'echo', { text: 'still here' }));
    // Alice is held for the 3 s cap, then closed; before, Bob was paused with her and cut.
    await waitFor(() => a.closed(), 20_000, "Alice's session closed at the cap");
    const end = await gateway.waitForStderr(new RegExp(`"event":"session-end","session":"${aliceTag}".*?"reason":"([^"]*)"`));
    expect(end[1]).toContain('ERR_READ_PAUSE_TIMEOUT');
    expect(b.closed()).toBe(false);
    expect((await b.answer(1, "Bob's call")).result).toMatchObject({ content: [{ text: 'echo: still here' }] });
    await b.transport.send(call(2, 'echo', { text: 'after' }));
    expect((await b.answer(2, "Bob's second call")).result).toMatchObject({ content: [{ text: 'echo: after' }] });
    expect(b.closed()).toBe(false);
    expect(gateway.stderr.match(/"event":"session-end"/g)).toHaveLength(1);
  });

  it('session-end names the error the session ended with, not an earlier report that left it open (R10-1); that report is a session-warning line', { timeout: 60_000 }, async ({ onTestFinished }) => {
    const cleanup = new Cleanup();
    onTestFinished(() => cleanup.run());
    const { gateway } = await startGateway(['--identity', gw.key, '--trust', trust, '--json', ...KEEPALIVE, '--max-read-pause', '3s'], BLOCKING).then((g) => (cleanup.add(() => g.gateway.stop('SIGKILL')), g));
    const url = /"url":"(ws:\/\/[^"]+)"/.exec(gateway.stderr)![1]!;
    const a = await tenant(url, alice, cleanup);
    // An id no MCP SDK can answer: refused with -32600 (ERR_MALFORMED_REQUEST), the session goes on.
    await a.transport.send({ jsonrpc: '2.0', id: 1.5, method: 'ping' } as unknown as JsonRpcMessage);
    expect((await a.answer(1.5, 'the -32600')).error).toMatchObject({ code: -32600 });
    const warning = await gateway.waitForStderr(/"event":"session-warning".*?"code":"([A-Z_]+)"/);
    expect(warning[1]).toBe('ERR_MALFORMED_REQUEST');
    // Then the session ends for another reason: held past --max-read-pause.
    await blockAndFlood(gateway, a, 3, 60_000, 16);
    await waitFor(() => a.closed(), 20_000, 'the session closed at the cap');
    const end = await gateway.waitForStderr(/"event":"session-end".*?"reason":"((?:[^"\\]|\\.)*)"/);
    // Before, the first onerror report named the end: "... (ERR_MALFORMED_REQUEST)".
    expect(end[1]).toContain('ERR_READ_PAUSE_TIMEOUT');
    expect(end[1]).not.toContain('ERR_MALFORMED_REQUEST');
  });

  it('--max-read-pause, --keepalive and --keepalive-timeout above 24d are usage errors naming the maximum (R10-0: Node ran a 30d timer after 1 ms)', { timeout: 60_000 }, async () => {
    // One real process (exit code 2), the other two in this process (serve checks its flags before it starts anything).
    const names = ['--max-read-pause', '--keepalive', '--keepalive-timeout'];
    const results = await Promise.all(names.map((name, i) => (i === 0 ? cli : cliInProcess)(['serve', '--listen', '127.0.0.1:0', '--identity', gw.key, '--trust', trust, name, '30d', '--', ...BLOCKING])));
    for (const [i, r] of results.entries()) {
      const name = names[i]!;
      expect(r.code, name).toBe(2);
      expect(r.stderr, name).toContain(`${name} must be at most 24d`);
    }
  });
});
