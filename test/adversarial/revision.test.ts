/**
 * The checks the PQMCP/1 revision added (issue 11), each driven by a misbehaving peer over a
 * real WebSocket on 127.0.0.1, each ending with its exact typed error (and alert):
 * - an application message that is not exactly one JSON-RPC message is answered, never
 *   dropped in silence (a JSON-RPC error where it has an id, else bad_application_message
 *   and close);
 * - endpoint binding: a connection routed to another endpoint served under the same identity
 *   (ALPACA-style) is refused with endpoint_mismatch; the extension cannot be stripped or
 *   rewritten on the path without the handshake failing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { concat, utf8Encode } from '../../src/bytes.js';
import { Alert, PeerAbortedError, type PqmcpError } from '../../src/errors.js';
import { RecordType } from '../../src/record/index.js';
import { CloseCode, PqmcpClientTransport, type PqmcpClientOptions } from '../../src/transport/index.js';
import { decodeClientHello, encodeClientHello, unframeHandshake, type Extension } from '../../src/wire/messages.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, waitFor } from '../helpers/mcp.js';
import { HostileClient, MitmProxy, type ProxyDirection } from './socket-harness.js';
import { INITIALIZE, SERVER_ID, attackerAs, connections, honestServer } from './socket-fixtures.js';

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

describe('endpoint binding (ClientHello extension 0x0001)', () => {
  const ENDPOINT_EXT = 0x0001;
  const helloRecord = (framed: Uint8Array) => concat(Uint8Array.of(RecordType.handshake, 0, framed.length >> 8, framed.length & 0xff), framed);
  /** Rewrite the ClientHello's extensions in flight. */
  const rewriteExtensions = (fn: (exts: Extension[]) => Extension[]) => (dir: ProxyDirection, r: Uint8Array) => {
    if (dir !== 'c2s' || r[0] !== RecordType.handshake) return [r];
    const ch = decodeClientHello(unframeHandshake(r.subarray(4)).body);
    return [helloRecord(encodeClientHello({ ...ch, extensions: fn(ch.extensions) }))];
  };

  async function connectVia(url: string, extra: Partial<PqmcpClientOptions> = {}) {
    const transport = new PqmcpClientTransport(url, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), backend: 'native', expectedServerId: SERVER_ID, ...extra });
    cleanup.add(() => transport.close());
    const client = new Client({ name: 'honest', version: '1' });
    return client.connect(transport).then(
      () => undefined,
      (e: unknown) => e as PqmcpError,
    );
  }

  it('ALPACA-style redirection: a connection meant for /tools-a, routed to the listener of /tools-b under the same identity, is refused (endpoint_mismatch 100, close 4030)', async () => {
    const a = await honestServer(cleanup, { path: '/tools-a' });
    const b = await honestServer(cleanup, { path: '/tools-b' });
    // Both listeners accept honest clients on their own path.
    expect(await connectVia(a.url)).toBeUndefined();
    expect(await connectVia(b.url)).toBeUndefined();
    const sessionsBefore = b.sessions.length;
    // The attacker routes the client's connection for /tools-a to the /tools-b listener.
    const proxy = await MitmProxy.start(b.url, cleanup);
    const error = await connectVia(`${proxy.url}tools-a`);
    await waitFor(() => b.clientErrors.length === 1, 5_000, 'server clientError');
    expect(b.clientErrors[0]).toMatchObject({ code: 'ERR_ENDPOINT_MISMATCH', alert: Alert.endpointMismatch });
    expect(b.clientErrors[0]!.message).toContain('"/tools-b"');
    // The server has no keys yet: its alert is plaintext, so the client learns only that the
    // handshake was aborted, with code 100 as a hint.
    expect(error).toBeInstanceOf(PeerAbortedError);
    expect(error!.message).toBe('peer aborted the handshake (unauthenticated alert 100)');
    expect(b.sessions).toHaveLength(sessionsBefore);
    expect(b.handlerCalls).toBe(0);
  });

  it('a listener bound to an authority refuses a client that means another one; a service name must match exactly', async () => {
    const log = await honestServer(cleanup, { endpoints: ['//tools.example:8443/mcp', 'svc:tools'] });
    expect(await connectVia(log.url, { endpoint: '//tools.example:8443/mcp' })).toBeUndefined();
    expect(await connectVia(log.url, { endpoint: 'svc:tools' })).toBeUndefined();
    for (const endpoint of ['//evil.example:8443/mcp', '//tools.example/mcp', '//tools.example:8443/mcp/', 'svc:Tools', 'svc:billing']) {
      const before = log.clientErrors.length;
      expect(await connectVia(log.url, { endpoint }), endpoint).toMatchObject({ code: 'ERR_PEER_ABORTED', peerAlert: Alert.endpointMismatch });
      await waitFor(() => log.clientErrors.length === before + 1, 5_000, 'server clientError');
      expect(log.clientErrors.at(-1), endpoint).toMatchObject({ code: 'ERR_ENDPOINT_MISMATCH' });
    }
  });

  it('the extension stripped in flight: refused as naming no endpoint; rewritten to a served one: the transcript catches it (bad_record_mac both sides)', async () => {
    const log = await honestServer(cleanup, { path: '/tools-b' });
    const stripped = await MitmProxy.start(log.url, cleanup, rewriteExtensions((exts) => exts.filter((e) => e.type !== ENDPOINT_EXT)));
    expect(await connectVia(`${stripped.url}tools-a`)).toMatchObject({ code: 'ERR_PEER_ABORTED', peerAlert: Alert.endpointMismatch });
    await waitFor(() => log.clientErrors.length === 1, 5_000, 'server clientError');
    expect(log.clientErrors[0]).toMatchObject({ code: 'ERR_ENDPOINT_MISMATCH', message: 'the client did not name the endpoint it means (ClientHello extension 0x0001)' });

    const rewritten = await MitmProxy.start(log.url, cleanup, rewriteExtensions((exts) => exts.map((e) => (e.type === ENDPOINT_EXT ? { type: e.type, data: utf8Encode('//127.0.0.1:1/tools-b') } : e))));
    expect(await connectVia(`${rewritten.url}tools-a`)).toMatchObject({ code: 'ERR_BAD_RECORD_MAC' });
    await waitFor(() => log.clientErrors.length === 2, 5_000, 'server clientError');
    expect(log.clientErrors[1]).toMatchObject({ code: 'ERR_BAD_RECORD_MAC' });
    expect(log.sessions).toEqual([]);
  });

  it('a malformed endpoint extension (control character, not UTF-8, empty): decode_error', async () => {
    const log = await honestServer(cleanup);
    for (const [i, data] of [utf8Encode('//host/\u0007'), Uint8Array.of(0xff), new Uint8Array(0), utf8Encode('no-form')].entries()) {
      const proxy = await MitmProxy.start(log.url, cleanup, rewriteExtensions((exts) => exts.map((e) => (e.type === ENDPOINT_EXT ? { type: e.type, data } : e))));
      expect(await connectVia(proxy.url)).toMatchObject({ code: 'ERR_PEER_ABORTED', peerAlert: Alert.decodeError });
      await waitFor(() => log.clientErrors.length === i + 1, 5_000, 'server clientError');
      expect(log.clientErrors[i]).toMatchObject({ code: 'ERR_DECODE' });
    }
  });
});
