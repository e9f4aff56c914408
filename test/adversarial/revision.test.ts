/**
 * The checks the PQMCP/1 revision added (issue 11), each driven by a misbehaving peer over a
 * real WebSocket on 127.0.0.1, each ending with its exact typed error (and alert):
 * - an application message that is not exactly one JSON-RPC message is answered, never
 *   dropped in silence (a JSON-RPC error where it has an id, else bad_application_message
 *   and close).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { utf8Encode } from '../../src/bytes.js';
import { Alert } from '../../src/errors.js';
import { CloseCode } from '../../src/transport/index.js';
import { Cleanup, waitFor } from '../helpers/mcp.js';
import { HostileClient } from './socket-harness.js';
import { INITIALIZE, attackerAs, connections, honestServer } from './socket-fixtures.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('application messages that are not exactly one JSON-RPC message', () => {
  it('a request with an id but no jsonrpc "2.0": answered with Invalid Request (-32600) for that id; the session stays up', async () => {
    const log = await honestServer(cleanup);
    const h = await HostileClient.connect(log.url, attackerAs(), {}, cleanup);
    await h.handshake;
    await h.write(h.attacker.sendApplication(INITIALIZE));
    await waitFor(() => h.attacker.messages.length === 1, 10_000, 'initialize response');
    await h.write(h.attacker.sendApplication(utf8Encode('{"id":"x-7","method":"tools/list"}')));
    await waitFor(() => h.attacker.messages.length === 2, 10_000, 'error response');
    expect(JSON.parse(text(h.attacker.messages[1]!))).toEqual({ jsonrpc: '2.0', id: 'x-7', error: { code: -32600, message: 'Invalid Request: not a JSON-RPC 2.0 message' } });
    await waitFor(() => log.transportErrors.length === 1, 5_000, 'server transport error');
    expect(log.transportErrors[0]!.code).toBe('ERR_DECODE');
    // Still up: a proper request is answered.
    await h.write(h.attacker.sendApplication(utf8Encode('{"jsonrpc":"2.0","id":8,"method":"tools/list"}')));
    await waitFor(() => h.attacker.messages.length === 3, 10_000, 'tools/list response');
    expect(JSON.parse(text(h.attacker.messages[2]!))).toMatchObject({ jsonrpc: '2.0', id: 8, result: { tools: expect.any(Array) } });
    expect(h.attacker.alerts).toEqual([]);
  });

  it.each([
    ['not JSON', 'hello\n', 'received an application message that is not UTF-8 JSON'],
    ['not UTF-8', '\u00ff', 'received an application message that is not UTF-8 JSON'],
    ['a batch', '[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]', 'received a JSON-RPC batch: pqmcp carries exactly one JSON-RPC message per application message'],
    ['a notification without jsonrpc', '{"method":"notifications/initialized"}', 'received an application message that is not a JSON-RPC 2.0 object'],
    ['a bare number', '42', 'received an application message that is not a JSON-RPC 2.0 object'],
  ])('%s: bad_application_message (103) to the sender, close 4031, ERR_BAD_APPLICATION_MESSAGE at the receiver', async (_what, body, message) => {
    const log = await honestServer(cleanup);
    const h = await HostileClient.connect(log.url, attackerAs(), {}, cleanup);
    await h.handshake;
    await h.write(h.attacker.sendApplication(INITIALIZE));
    await waitFor(() => h.attacker.messages.length === 1, 10_000, 'initialize response');
    const bytes = body === '\u00ff' ? Uint8Array.of(0xff, 0xfe) : utf8Encode(body);
    await h.write(h.attacker.sendApplication(bytes));
    expect((await h.closed).code).toBe(CloseCode.badApplicationMessage);
    expect(h.attacker.alerts).toEqual([Alert.badApplicationMessage]);
    expect(h.attacker.messages).toHaveLength(1);
    await waitFor(() => log.transportErrors.length === 1, 5_000, 'server transport error');
    expect(log.transportErrors[0]).toMatchObject({ code: 'ERR_BAD_APPLICATION_MESSAGE', alert: Alert.badApplicationMessage, message });
    await expect.poll(() => connections(log), { timeout: 5_000 }).toBe(0);
  });
});
