/**
 * Bytes an authenticated peer can park on the server (issue 10 item 3; docs/threat-model.md):
 * (a) many 1 MiB tool calls to a library server whose handler waits: past the session's
 * maxRequestBytesInFlight (default 16 MiB) they are refused with -32005, so memory stops
 * growing (before: every call was held, +105.7 MiB live for 96 MiB sent); (b) 1 MiB
 * notifications through `pqmcp serve` to a stdio child that reads nothing: the gateway
 * stops reading the session while the child's stdin is full (before: every byte buffered
 * in the gateway, +158 MiB RSS for 96 MiB sent), and nothing is lost once the child reads;
 * (c) `pqmcp serve --max-request-bytes-in-flight` sets the bound.
 * Bounded in count and time, on 127.0.0.1.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import type { JsonRpcMessage } from '../../src/transport/index.js';
import type { PqmcpError } from '../../src/errors.js';
import { loadOwnIdentity } from '../../src/cli/files.js';
import { loadTrustStore } from '../../src/identity/files.js';
import { createNativeBackend } from '../../src/crypto/native.js';
import { Cleanup, startServer, waitFor } from '../helpers/mcp.js';
import { rawInitializedSession } from '../helpers/raw-session.js';
import { ManualClock } from '../helpers/clock.js';
import { CANCELLED_HOLD_MS } from '../../src/transport/index.js';
import { liveMemory } from '../helpers/memory.js';
import { LINE_SERVER, ROOT, cli, killAll, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from '../cli/helpers.js';
import type { Files } from '../cli/helpers.js';

const MiB = 1024 * 1024;
const BIG = 'x'.repeat(MiB);
const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } } as unknown as JsonRpcMessage;
const mib = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;
const rssOf = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('request bytes in flight (issue 10 item 3)', () => {
  it('a library server whose handler waits holds at most maxRequestBytesInFlight (default 16 MiB) of a session\'s requests: the rest are refused with -32005, and an answer makes room', { timeout: 60_000 }, async () => {
    const COUNT = 64;
    const gates: Array<(v: { content: [] }) => void> = [];
    const server = await startServer(cleanup, () => {
      const mcp = new McpServer({ name: 'hold', version: '1' });
      // A handler that waits on something held here, as a slow tool's I/O would be.
      mcp.registerTool('hold', { inputSchema: { blob: z.string() } }, async () => new Promise((resolve) => gates.push(resolve)));
      return mcp;
    });
    const errors: string[] = [];
    server.on('session', (t) => {
      t.onerror = (e) => void errors.push((e as PqmcpError).code);
    });
    const { transport, answers } = await rawInitializedSession(server.url, cleanup);

    const before = liveMemory();
    for (let id = 1; id <= COUNT; id++) await transport.send({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'hold', arguments: { blob: BIG } } });
    await waitFor(() => gates.length + answers.length >= COUNT, 30_000, 'every call running or refused');
    const grew = liveMemory() - before;
    console.log(`library: sent ${COUNT} x 1 MiB; handlers waiting ${gates.length}, refused ${answers.length}; live memory +${mib(grew)} (load ${(await import('node:os')).loadavg()[0]!.toFixed(1)})`);

    // 16 MiB of ~1 MiB requests: 15 fit (each is 1 MiB plus its JSON-RPC envelope).
    expect(gates.length).toBe(15);
    expect(answers).toHaveLength(COUNT - 15);
    for (const a of answers) expect(a.error).toEqual({ code: -32005, message: expect.stringMatching(/too many request bytes in flight \(limit 16777216\)/), data: { limitBytes: 16 * MiB } });
    expect(new Set(errors)).toEqual(new Set(['ERR_TOO_MANY_BYTES_IN_FLIGHT']));
    expect(grew).toBeLessThan(40 * MiB);

    // An answer frees its bytes: the next call runs.
    gates[0]!({ content: [] });
    await waitFor(() => answers.some((a) => a.id === 1 && a.result !== undefined));
    await transport.send({ jsonrpc: '2.0', id: COUNT + 1, method: 'tools/call', params: { name: 'hold', arguments: { blob: BIG } } });
    await waitFor(() => gates.length === 16, 10_000, 'the call after an answer');
  });
});

describe('cancelled requests whose handlers ignore their abort signal (F3)', () => {
  it('cancel and resend park at most maxRequestBytesInFlight in a library server\'s handlers: a cancelled call stays charged until CANCELLED_HOLD_MS, the rest are refused with -32005', { timeout: 60_000 }, async () => {
    const COUNT = 40;
    const gates: Array<() => void> = [];
    const clock = new ManualClock();
    const server = await startServer(
      cleanup,
      () => {
        const mcp = new McpServer({ name: 'deaf', version: '1' });
        // Ignores extra.signal, as a handler blocked in I/O that takes no signal does.
        mcp.registerTool('deaf', { inputSchema: { blob: z.string() } }, async () => new Promise((resolve) => gates.push(() => resolve({ content: [] }))));
        return mcp;
      },
      { clock },
    );
    const { transport, answers } = await rawInitializedSession(server.url, cleanup);

    const call = (id: number) => transport.send({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'deaf', arguments: { blob: BIG } } });
    for (let id = 1; id <= COUNT; id++) {
      await call(id);
      await transport.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'resend' } });
    }
    await waitFor(() => gates.length + answers.length >= COUNT, 30_000, 'every call running or refused');
    console.log(`cancel and resend: ${COUNT} x 1 MiB; handlers still running ${gates.length}, refused ${answers.length}`);
    // Before: every cancelled call freed its bytes at once, so all 40 ran (40 MiB held).
    expect(gates.length).toBe(15);
    expect(answers).toHaveLength(COUNT - 15);
    for (const a of answers) expect(a.error).toMatchObject({ code: -32005, data: { limitBytes: 16 * MiB } });

    // Once the hold has passed, the budget is whole again.
    clock.advance(CANCELLED_HOLD_MS);
    answers.length = 0;
    await call(COUNT + 1);
    await waitFor(() => gates.length === 16 || answers.length > 0, 10_000, 'the call after the hold');
    expect(answers).toEqual([]);
    for (const open of gates) open();
  });
});

describe('pqmcp serve in front of a child that reads nothing (issue 10 item 3)', () => {
  const tmp = tempDir('inflight-bytes');
  let trust: string;
  let gw: Files;
  let alice: Files;
  beforeAll(() => {
    const issuer = writeIssuer(tmp.dir, 'issuer://inflight-bytes', 'issuer');
    gw = writeAgent(tmp.dir, issuer, 'agent://inflight-bytes/gateway', 'gateway');
    alice = writeAgent(tmp.dir, issuer, 'agent://inflight-bytes/alice', 'alice');
    trust = writeTrust(join(tmp.dir, 'trust.json'), issuer);
  });
  afterAll(() => {
    killAll();
    tmp.remove();
  });

  it('--max-request-bytes-in-flight sets the per-session bound (a second call past it is refused with -32005 while the first waits on the client\'s sampling answer, which still gets through); a bad value is a usage error', { timeout: 60_000 }, async () => {
    const bad = await cli(['serve', '--listen', '127.0.0.1:0', '--identity', gw.key, '--trust', trust, '--max-request-bytes-in-flight', '16MiB', '--', 'node', LINE_SERVER]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--max-request-bytes-in-flight must be an integer >= 0 (bytes; 0 = no limit); got "16MiB"');
    const { gateway, url } = await startGateway(['--identity', gw.key, '--trust', trust, '--max-request-bytes-in-flight', '100'], ['node', LINE_SERVER]);
    cleanup.add(() => gateway.stop('SIGKILL'));
    const backend = createNativeBackend();
    const transport = new PqmcpClientTransport(url, { identity: await loadOwnIdentity(backend, alice.key, undefined, false), trust: await loadTrustStore(trust), backend, expectedServerId: 'agent://inflight-bytes/gateway' });
    const answers: JsonRpcMessage[] = [];
    transport.onmessage = (m) => void answers.push(m as JsonRpcMessage);
    await transport.start();
    cleanup.add(() => transport.close());
    await transport.send(INIT);
    await waitFor(() => answers.some((a) => a.id === 0), 10_000, 'initialize');
    await transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    // Each call is more than 100 bytes. The first (`ask`) stays in flight until this client
    // answers the child's sampling request: the second is refused meanwhile, and the answer
    // to the sampling request still gets through (refused, not paused: nothing deadlocks).
    const call = (id: number, name: string, args: Record<string, unknown>): JsonRpcMessage => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
    await transport.send(call(1, 'ask', { question: 'ready?' }));
    await waitFor(() => answers.some((a) => a.method === 'sampling/createMessage'), 20_000, 'the sampling request');
    await transport.send(call(2, 'echo', { text: 'second' }));
    await waitFor(() => answers.some((a) => a.id === 2), 20_000, 'the refusal');
    expect(answers.find((a) => a.id === 2)).toMatchObject({ error: { code: -32005, data: { limitBytes: 100 } } });
    const sampling = answers.find((a) => a.method === 'sampling/createMessage')!;
    await transport.send({ jsonrpc: '2.0', id: sampling.id!, result: { model: 'm', role: 'assistant', content: { type: 'text', text: 'yes' } } });
    await waitFor(() => answers.some((a) => a.id === 1), 20_000, 'the first call');
    expect(answers.find((a) => a.id === 1)).toMatchObject({ result: { content: [{ type: 'text', text: 'model said: yes' }] } });
    // Answered: the next call fits again.
    await transport.send(call(3, 'echo', { text: 'third' }));
    await waitFor(() => answers.some((a) => a.id === 3), 20_000, 'the call after the answer');
    expect(answers.find((a) => a.id === 3)).toMatchObject({ result: { content: [{ type: 'text', text: 'echo: third' }] } });
  });

  it('stops reading the session while the child\'s stdin is full (memory stays flat), and delivers everything once the child reads', { timeout: 90_000 }, async () => {
    const COUNT = 64;
    const { gateway, url } = await startGateway(['--identity', gw.key, '--trust', trust, '--json'], ['node', join(ROOT, 'test/cli/fixtures/deaf-server.mjs')]);
    cleanup.add(() => gateway.stop('SIGKILL'));
    const backend = createNativeBackend();
    const transport = new PqmcpClientTransport(url, { identity: await loadOwnIdentity(backend, alice.key, undefined, false), trust: await loadTrustStore(trust), backend, expectedServerId: 'agent://inflight-bytes/gateway' });
    const answers: JsonRpcMessage[] = [];
    transport.onmessage = (m) => void answers.push(m as JsonRpcMessage);
    await transport.start();
    cleanup.add(() => transport.close());
    const childPid = Number((await gateway.waitForStderr(/"event":"session-start".*?"pid":(\d+)/))[1]);
    const gatewayPid = gateway.child.pid!;
    await transport.send(INIT);
    const rss0 = rssOf(gatewayPid);

    let sent = 0;
    const sending = (async () => {
      for (let n = 0; n < COUNT; n++) {
        await transport.send({ jsonrpc: '2.0', method: 'notifications/blob', params: { n, blob: BIG } });
        sent++;
      }
    })();
    // Give the flood a bounded while (the client's send() waits once its own buffer is full):
    // until it ends or stalls (no send done for 1.5 s), at most 8 s (before, always 8 s).
    const stalled = (async () => {
      const until = performance.now() + 8_000;
      let last = -1;
      let since = 0;
      while (performance.now() < until) {
        if (sent !== last) [last, since] = [sent, performance.now()];
        else if (sent > 0 && performance.now() - since >= 1_500) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await Promise.race([sending, stalled]);
    const grew = rssOf(gatewayPid) - rss0;
    console.log(`gateway: sent ${sent} of ${COUNT} x 1 MiB to a child reading nothing; gateway rss +${mib(grew)} (load ${(await import('node:os')).loadavg()[0]!.toFixed(1)})`);
    expect(grew).toBeLessThan(40 * MiB);

    // The child starts reading: the session resumes, nothing was lost.
    process.kill(childPid, 'SIGUSR1');
    await sending;
    await transport.send({ jsonrpc: '2.0', id: 1, method: 'ping' });
    await waitFor(() => answers.some((a) => a.id === 1), 30_000, 'the ping answer');
    const pong = answers.find((a) => a.id === 1)!;
    // initialize, the 64 notifications, the ping.
    expect(pong.result).toMatchObject({ lines: COUNT + 2 });
    expect((pong.result as { bytes: number }).bytes).toBeGreaterThan(COUNT * MiB);
  });
});
