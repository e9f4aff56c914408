/**
 * The gateway's behaviour around its children, with a tiny stdio MCP server under test
 * control (fixtures/line-server.mjs): a child that dies ends only its session (with a clear
 * error to that client, and exit 1 of its bridge) while other sessions go on; admission by
 * id and scope; one shared child with per-session id, progress and sampling routing;
 * revocation on SIGHUP; port in use; clean shutdown on SIGTERM; bad JSON on the bridge's
 * stdin. Every process is real: gateway, bridges, children.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { CallToolResult, JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { CLI_ARGS, CLI_COMMAND, CliProcess, LINE_SERVER, ROOT, cli, expectOneLineError, killAll, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from './helpers.js';
import type { Files } from './helpers.js';

const SERVER_ID = 'agent://gw-test/gateway';
const tmp = tempDir('gateway');
let trust: string;
let server: Files;
let alice: Files;
let bob: Files;
let carol: Files;
let intruder: Files;

const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
const INITIALIZED = { jsonrpc: '2.0', method: 'notifications/initialized' };
const callTool = (id: number, name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>): Record<string, unknown> => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) },
});

function text(result: unknown): string {
  return ((result as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('');
}

/** A raw bridge (a stdio client writing JSON lines) that has initialized. */
async function rawBridge(url: string, files: Files): Promise<CliProcess> {
  const bridge = new CliProcess(['connect', url, '--identity', files.key, '--trust', trust, '--expect', SERVER_ID]);
  bridge.write(INIT);
  await bridge.waitForMessage((m) => m['id'] === 0);
  bridge.write(INITIALIZED);
  return bridge;
}

/**
 * An SDK client over a bridge. `progress`: the params of every progress notification that
 * reached it, in order, read where its transport hands them to the SDK: the SDK calls a
 * notification's handler a microtask after reading it but a response's at once, so when a
 * call's progress and its response arrive in one read (this process held up for the call's
 * duration on a loaded machine), the response removes the call's onprogress before the
 * progress is handled ('unknown token'), and onprogress never sees it.
 */
async function sdkClient(url: string, files: Files, onSampling?: (q: string) => string): Promise<{ client: Client; stderr: () => string; progress: Record<string, unknown>[] }> {
  const client = new Client({ name: 'sdk', version: '1.0.0' }, { capabilities: { sampling: {} } });
  if (onSampling) {
    client.setRequestHandler(CreateMessageRequestSchema, async (r) => {
      const c = r.params.messages[0]?.content;
      const q = c && !Array.isArray(c) && c.type === 'text' ? c.text : '';
      return { model: 'm', role: 'assistant', content: { type: 'text', text: onSampling(q) } };
    });
  }
  let stderr = '';
  const transport = new StdioClientTransport({ command: CLI_COMMAND, args: [...CLI_ARGS, 'connect', url, '--identity', files.key, '--trust', trust, '--expect', SERVER_ID], cwd: ROOT, stderr: 'pipe' });
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  await client.connect(transport);
  const progress: Record<string, unknown>[] = [];
  const deliver = transport.onmessage;
  transport.onmessage = (message: JSONRPCMessage) => {
    if ('method' in message && message.method === 'notifications/progress') progress.push(message.params as Record<string, unknown>);
    deliver?.(message);
  };
  return { client, stderr: () => stderr, progress };
}

beforeAll(() => {
  const issuer = writeIssuer(tmp.dir, 'issuer://gw-test', 'issuer');
  server = writeAgent(tmp.dir, issuer, SERVER_ID, 'gateway');
  alice = writeAgent(tmp.dir, issuer, 'agent://gw-test/alice', 'alice', { scopes: ['tools:call'] });
  bob = writeAgent(tmp.dir, issuer, 'agent://gw-test/bob', 'bob', { scopes: ['tools:call', 'admin'] });
  carol = writeAgent(tmp.dir, issuer, 'agent://gw-test/carol', 'carol', { scopes: ['tools:call'] });
  intruder = writeAgent(tmp.dir, issuer, 'agent://other/intruder', 'intruder', { scopes: ['tools:call'] });
  trust = writeTrust(join(tmp.dir, 'trust.json'), issuer);
});

afterAll(() => {
  killAll();
  tmp.remove();
});

describe('one child per session', () => {
  let gateway: CliProcess;
  let url: string;

  beforeAll(async () => {
    ({ gateway, url } = await startGateway(['--identity', server.key, '--trust', trust, '--allow-id', 'agent://gw-test/*', '--require-scope', 'tools:call'], [process.execPath, LINE_SERVER]));
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('a child that exits ends only its own session: error to that client, bridge exits 1, the others go on', async () => {
    const a = await rawBridge(url, alice);
    const b = await sdkClient(url, bob);
    expect(text(await b.client.callTool({ name: 'echo', arguments: { text: 'before' } }))).toBe('echo: before');

    a.write(callTool(1, 'crash', { code: 3 }));
    const answer = await a.waitForMessage((m) => m['id'] === 1);
    expect(answer).toEqual({ jsonrpc: '2.0', id: 1, error: { code: -32000, message: 'pqmcp gateway: the MCP server process exited with code 3; this session is closed' } });
    expect(await a.exited).toBe(1);
    expect(a.stderr).toContain('pqmcp connect: gateway: the MCP server process exited with code 3; this session is closed');
    expect(a.stderr.trim().split('\n').at(-1)).toBe('pqmcp: the server closed the session (ERR_REMOTE_CLOSED)');
    await gateway.waitForStderr(/: MCP server process \d+ exited with code 3; closing 1 session/);
    await gateway.waitForStderr(/session [0-9a-f]{8} ended: agent:\/\/gw-test\/alice, 3 messages in, 2 out, [^;]+; MCP server process exited with code 3/);

    // Bob's session and the gateway are unaffected, and new sessions still start.
    expect(text(await b.client.callTool({ name: 'echo', arguments: { text: 'after' } }))).toBe('echo: after');
    const c = await sdkClient(url, carol);
    expect(text(await c.client.callTool({ name: 'echo', arguments: { text: 'new' } }))).toBe('echo: new');
    await b.client.close();
    await c.client.close();
  });

  it('each child runs with the verified peer in its environment, in its own process', async () => {
    const a = await sdkClient(url, alice);
    const b = await sdkClient(url, bob);
    const whoA = JSON.parse(text(await a.client.callTool({ name: 'whoami', arguments: {} }))) as Record<string, unknown>;
    const whoB = JSON.parse(text(await b.client.callTool({ name: 'whoami', arguments: {} }))) as Record<string, unknown>;
    expect(whoA).toMatchObject({ id: 'agent://gw-test/alice', fingerprint: alice.fingerprint, issuer: 'issuer://gw-test', scopes: 'tools:call' });
    expect(whoB).toMatchObject({ id: 'agent://gw-test/bob', scopes: 'admin tools:call' });
    expect(whoA['pid']).not.toBe(whoB['pid']);
    await a.client.close();
    await b.client.close();
  });

  it('a child writing garbage to stdout is logged; the session goes on', async () => {
    const a = await sdkClient(url, alice);
    expect(text(await a.client.callTool({ name: 'garbage', arguments: {} }))).toBe('ok');
    await gateway.waitForStderr(/the MCP server wrote something that is not JSON-RPC to stdout \(line \d+ is not valid JSON; skipped\)/);
    expect(text(await a.client.callTool({ name: 'echo', arguments: { text: 'still here' } }))).toBe('echo: still here');
    await a.client.close();
  });

  it("a child's stderr lines are logged made printable: a peer's text the child echoes cannot drive the operator's terminal", async () => {
    const a = await sdkClient(url, alice);
    // ESC [2J (clear screen), a BEL and a right-to-left override, as a peer might send them.
    expect(text(await a.client.callTool({ name: 'stderr', arguments: { text: 'x\u001b[2Jy\u0007z\u202eq' } }))).toBe('ok');
    await gateway.waitForStderr(/line-server logs: x\\u001b\[2Jy\\u0007z\\u202eq/);
    expect(gateway.stderr).not.toMatch(/[\u001b\u0007\u202e]/);
    await a.client.close();
  });

  it('admission: an agent outside --allow-id is refused before any child starts', async () => {
    const x = new CliProcess(['connect', url, '--identity', intruder.key, '--trust', trust, '--expect', SERVER_ID]);
    x.write(INIT);
    const answer = await x.waitForMessage((m) => m['id'] === 0);
    expect(answer['error']).toMatchObject({ code: -32001, message: 'pqmcp gateway: not admitted: agent://other/intruder is not an allowed agent id (--allow-id)' });
    expect(await x.exited).toBe(1);
    await gateway.waitForStderr(/session [0-9a-f]{8} refused: agent:\/\/other\/intruder is not an allowed agent id \(--allow-id\)/);
    expect(gateway.stderr).not.toMatch(/session [0-9a-f]{8} started: agent:\/\/other\/intruder/);
  });

  it('bad JSON on the bridge stdin is reported on stderr and skipped; stdin end exits 0', async () => {
    const a = await rawBridge(url, alice);
    a.child.stdin!.write('this is not json\r\n');
    a.write(callTool(5, 'echo', { text: 'crlf ok' }));
    const answer = await a.waitForMessage((m) => m['id'] === 5);
    expect(text(answer['result'])).toBe('echo: crlf ok');
    expect(a.stderr).toMatch(/pqmcp connect: stdin line \d+ is not valid JSON; skipped/);
    a.child.stdin!.end();
    expect(await a.exited).toBe(0);
    // stdout carried only MCP messages.
    for (const line of a.stdout.trim().split('\n')) expect(JSON.parse(line)).toMatchObject({ jsonrpc: '2.0' });
  });

  it('a second gateway on the same port fails: port in use, exit 1, one line', async () => {
    const port = new URL(url).port;
    const r = await cli(['serve', '--identity', server.key, '--trust', trust, '--listen', `127.0.0.1:${port}`, '--', process.execPath, LINE_SERVER]);
    expect(r.code).toBe(1);
    expectOneLineError(r.stderr, 'ERR_LISTEN');
    expect(r.stderr).toBe(`pqmcp: cannot listen on 127.0.0.1:${port}: address already in use (another process, perhaps another gateway, listens there: stop it or choose another --listen port) (ERR_LISTEN)\n`);
  });
});

describe('--shared: one child for all sessions', () => {
  let gateway: CliProcess;
  let url: string;
  const revocations = join(tmp.dir, 'revoked.json');

  beforeAll(async () => {
    writeFileSync(revocations, JSON.stringify({ type: 'pqmcp-revocations', version: 1, revokedSerials: [], revokedKeys: [{ fingerprint: intruder.fingerprint, revokedAt: '2026-01-01T00:00:00Z' }] }));
    ({ gateway, url } = await startGateway(['--identity', server.key, '--trust', trust, '--shared', '--revocations', revocations, '--json'], [process.execPath, LINE_SERVER]));
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('sessions share one process; equal request ids and progress tokens stay apart', async () => {
    const a = await sdkClient(url, alice);
    const b = await sdkClient(url, bob);
    const pidA = (JSON.parse(text(await a.client.callTool({ name: 'whoami', arguments: {} }))) as { pid: number }).pid;
    const pidB = (JSON.parse(text(await b.client.callTool({ name: 'whoami', arguments: {} }))) as { pid: number }).pid;
    expect(pidA).toBe(pidB);
    // Both SDK clients number their requests alike (so their progress tokens are alike too);
    // run slow calls with progress at once (onprogress: the SDK then asks for progress).
    const [ra, rb] = await Promise.all([
      a.client.callTool({ name: 'slow', arguments: { text: 'from alice', ms: 300 } }, undefined, { onprogress: () => {} }),
      b.client.callTool({ name: 'slow', arguments: { text: 'from bob', ms: 150 } }, undefined, { onprogress: () => {} }),
    ]);
    expect(text(ra)).toBe('slow: from alice');
    expect(text(rb)).toBe('slow: from bob');
    // Each got its own call's two, none of the other's, under the token both sent (the SDK's
    // request id: the gateway's own token for the child, a string, mapped back).
    const token = a.progress[0]?.['progressToken'];
    expect(token).toEqual(expect.any(Number));
    expect(a.progress).toEqual([1, 2].map((progress) => ({ progressToken: token, progress, total: 2, message: 'from alice' })));
    expect(b.progress).toEqual([1, 2].map((progress) => ({ progressToken: token, progress, total: 2, message: 'from bob' })));
    await a.client.close();
    await b.client.close();
  });

  it('a server -> client request goes to the session whose call caused it', async () => {
    const a = await sdkClient(url, alice, (q) => `alice answers ${q}`);
    const b = await sdkClient(url, bob, (q) => `bob answers ${q}`);
    expect(text(await b.client.callTool({ name: 'ask', arguments: { question: 'who?' } }))).toBe('model said: bob answers who?');
    expect(text(await a.client.callTool({ name: 'ask', arguments: { question: 'who?' } }))).toBe('model said: alice answers who?');
    await a.client.close();
    await b.client.close();
  });

  it('a revoked key (--revocations) is refused at the handshake', async () => {
    const x = new CliProcess(['connect', url, '--identity', intruder.key, '--trust', trust, '--expect', SERVER_ID]);
    x.write(INIT);
    expect(await x.exited).toBe(1);
    expect(x.stderr.trim().split('\n').at(-1)).toBe(
      "pqmcp: the server refused this agent: peer aborted the session with alert 44 (credentialRevoked): this agent's credential or key is revoked at the server; it needs a new key and credential from its issuer (ERR_PEER_ALERT)",
    );
    const logged = await gateway.waitForStderr(/\{[^\n]*"event":"client-refused"[^\n]*\}/);
    expect(JSON.parse(logged[0])).toMatchObject({ event: 'client-refused', code: 'ERR_CREDENTIAL_REVOKED', remoteAddress: '127.0.0.1' });
  });

  it('SIGHUP re-reads the revocation lists and ends sessions whose peer is now revoked', async () => {
    const a = await rawBridge(url, alice);
    const c = await sdkClient(url, carol);
    writeFileSync(
      revocations,
      JSON.stringify({ type: 'pqmcp-revocations', version: 1, revokedSerials: [], revokedKeys: [{ fingerprint: intruder.fingerprint, revokedAt: '2026-01-01T00:00:00Z' }, { fingerprint: alice.fingerprint, revokedAt: '2026-01-01T00:00:00Z' }] }),
    );
    gateway.child.kill('SIGHUP');
    expect(await a.exited).toBe(1);
    expect(a.stderr).toContain('pqmcp connect: gateway: your credential is no longer accepted; this session is closed');
    const reloaded = await gateway.waitForStderr(/\{[^\n]*"event":"reloaded"[^\n]*\}/);
    expect(JSON.parse(reloaded[0])).toMatchObject({ revocationLists: 1, sessionsClosed: 1 });
    // Carol stays connected.
    expect(text(await c.client.callTool({ name: 'echo', arguments: { text: 'carol' } }))).toBe('echo: carol');
    await c.client.close();
  });

  it('SIGTERM closes sessions, stops the child, exits 0', async () => {
    const c = await sdkClient(url, carol);
    const pid = (JSON.parse(text(await c.client.callTool({ name: 'whoami', arguments: {} }))) as { pid: number }).pid;
    const closed = new Promise<void>((r) => (c.client.onclose = () => r()));
    expect(await gateway.stop('SIGTERM')).toBe(0);
    await closed;
    expect(() => process.kill(pid, 0)).toThrow();
    const events = gateway.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string });
    expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(['listening', 'session-start', 'session-end', 'shutdown', 'stopped']));
  });
});
