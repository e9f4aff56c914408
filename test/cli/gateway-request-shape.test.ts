/**
 * What reaches the gateway's child is decided first (review 15, R15-1): a request-shaped
 * message with `"id": null` and a request method sent without an id used to pass the
 * pipeline as notifications (no policy decision, no quota, no audit) and `pqmcp serve`
 * forwarded them to the child as they were; a child whose JSON-RPC layer takes any message
 * with an id member for a request (the official Java SDK) ran the call. The null id also
 * stayed in the gateway's requests in flight, so a SIGTERM drain waited its whole grace.
 * Real `pqmcp serve` with a stdio child that logs every line it reads
 * (fixtures/log-child.mjs), a real pqmcp client transport over ws on 127.0.0.1.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import type { JsonRpcMessage } from '../../src/transport/index.js';
import { loadIdentity, loadTrustStore } from '../../src/identity/files.js';
import { killAll, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from './helpers.js';
import type { Files } from './helpers.js';
import { waitFor } from '../helpers/mcp.js';

const SERVER_ID = 'agent://gw-shape/gateway';
const CHILD = join(import.meta.dirname, 'fixtures/log-child.mjs');
const tmp = tempDir('gw-shape');
let trust: string;
let server: Files;
let alice: Files;

beforeAll(() => {
  const issuer = writeIssuer(tmp.dir, 'issuer://gw-shape', 'issuer');
  server = writeAgent(tmp.dir, issuer, SERVER_ID, 'gateway');
  alice = writeAgent(tmp.dir, issuer, 'agent://gw-shape/alice', 'alice');
  trust = writeTrust(join(tmp.dir, 'trust.json'), issuer);
});

afterAll(() => {
  killAll();
  tmp.remove();
});

/** A gateway over a logging child, an initialized client session, and what it received. */
async function session(label: string, flags: string[]) {
  const log = join(tmp.dir, `${label}.log`);
  writeFileSync(log, '');
  const { gateway, url } = await startGateway(['--identity', server.key, '--trust', trust, '--drain-grace', '3s', ...flags], [process.execPath, CHILD], { LOG_CHILD_FILE: log });
  const transport = new PqmcpClientTransport(url, { identity: await loadIdentity(alice.key), trust: await loadTrustStore(trust), expectedServerId: SERVER_ID });
  const got: JsonRpcMessage[] = [];
  transport.onmessage = (m) => void got.push(m as JsonRpcMessage);
  await transport.start();
  const answer = async (id: unknown): Promise<JsonRpcMessage> => {
    await waitFor(() => got.some((m) => m.id === id), 10_000, `the answer to ${JSON.stringify(id)}`);
    return got.find((m) => m.id === id)!;
  };
  await transport.send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  await answer(1);
  await transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  const send = (m: Record<string, unknown>): Promise<void> => transport.send({ jsonrpc: '2.0', ...m } as unknown as JsonRpcMessage);
  return { gateway, transport, got, answer, send, childLog: () => readFileSync(log, 'utf8') };
}

const SECRET_NULL = { id: null, method: 'tools/call', params: { name: 'secret', arguments: { via: 'null-id' } } };
const SECRET_NO_ID = { method: 'tools/call', params: { name: 'secret', arguments: { via: 'no-id' } } };

describe('pqmcp serve: a request never reaches the child undecided', () => {
  it('with --policy and --audit: an id null is refused Invalid Request, a request method without an id is dropped; neither reaches the child nor stays in flight (SIGTERM drains at once)', { timeout: 60_000 }, async () => {
    const policy = join(tmp.dir, 'echo-only.cedar');
    writeFileSync(policy, 'permit(principal, action == Action::"tools/call", resource == Tool::"echo");\n');
    const audit = join(tmp.dir, 'audit');
    const s = await session('policy', ['--policy', policy, '--audit', audit]);
    // The baseline: a well-formed call of a tool the policy does not permit is denied.
    await s.send({ id: 2, method: 'tools/call', params: { name: 'secret', arguments: {} } });
    expect((await s.answer(2)).error?.code).toBe(-32003);
    await s.send(SECRET_NULL);
    await s.send(SECRET_NO_ID);
    await s.send({ id: 3, method: 'ping' });
    await s.answer(3);
    const refused = await s.answer(null);
    expect(refused.error).toEqual({ code: -32600, message: 'Invalid Request: the id is not a string or an integer' });
    expect(s.got.filter((m) => m.id === null)).toHaveLength(1);
    // The child saw initialize, initialized and the ping: nothing of the secret tool.
    expect(s.childLog()).not.toContain('secret');
    expect(s.childLog()).toContain('"method":"ping"');
    await s.gateway.waitForStderr(/ERR_MALFORMED_REQUEST[\s\S]*ERR_MALFORMED_REQUEST/);
    // The session is still open: nothing of it is in flight, so the drain does not wait.
    expect(await s.gateway.stop('SIGTERM')).toBe(0);
    expect(s.gateway.stderr).toMatch(/draining \(0 request\(s\) in flight/);
    expect(s.gateway.stderr).not.toMatch(/grace period over/);
    // The trail holds the denied call, as before; the refused ones are reported, not audited (usage.md).
    const trail = readdirSync(audit).map((f) => readFileSync(join(audit, f), 'utf8')).join('');
    const secret = trail.split('\n').filter((l) => l.includes('"type":"request"') && l.includes('"name":"secret"'));
    expect(secret.map((l) => (JSON.parse(l) as { outcome: string }).outcome)).toEqual(['denied']);
  });

  it('without any pipeline (no hooks, both request-byte bounds 0): the router forwards neither, and a notification only with its own members', { timeout: 60_000 }, async () => {
    const s = await session('bare', ['--max-request-bytes-in-flight', '0', '--max-request-bytes-in-flight-total', '0']);
    await s.send(SECRET_NULL);
    await s.send(SECRET_NO_ID);
    await s.send({ method: 'notifications/roots/list_changed', id: undefined, extra: { via: 'extra' } });
    await s.send({ id: 3, method: 'ping' });
    await s.answer(3);
    await waitFor(() => s.childLog().includes('list_changed'), 10_000, 'the notification at the child');
    expect(s.childLog()).not.toContain('secret');
    expect(s.childLog()).toContain('{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}\n');
    expect(await s.gateway.stop('SIGTERM')).toBe(0);
    expect(s.gateway.stderr).toMatch(/draining \(0 request\(s\) in flight/);
  });
});
