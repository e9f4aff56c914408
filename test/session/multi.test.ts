/**
 * Coalescing (docs/protocol.md section 3.6): messages queued in one turn leave as one
 * multi-message record, are delivered one by one in order, keep their order against
 * KeyUpdate, close_notify, alerts and large messages, and honour application padding. On
 * the transports: parallel MCP requests sent in one turn share records (read off the wire).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createNativeBackend } from '../../src/crypto/native.js';
import { Alert, PqmcpError } from '../../src/errors.js';
import { RecordType } from '../../src/record/index.js';
import type { SessionOptions } from '../../src/session/session.js';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import { agent, makeAgent, makeIssuer, trustFor } from '../helpers/identities.js';
import { Cleanup } from '../helpers/mcp.js';
import { createPair, deliver, expectEstablished, expectFailed, messagesOf, runPair, text } from '../helpers/pair.js';
import { MitmProxy } from '../adversarial/socket-harness.js';
import { SERVER_ID, honestServer } from '../adversarial/socket-fixtures.js';

const native = createNativeBackend();
const issuer = makeIssuer(native, 'issuer://multi-test');
const trust = trustFor(issuer);
const [A, B] = [makeAgent(native, issuer, 'agent://acme/a'), makeAgent(native, issuer, 'agent://acme/b')];
const opts = (a: typeof A, extra: Partial<SessionOptions> = {}): SessionOptions => ({ backend: native, identity: a.local, trust, ...extra });

function established(clientExtra: Partial<SessionOptions> = {}, serverExtra: Partial<SessionOptions> = {}) {
  const pair = createPair(opts(A, clientExtra), opts(B, serverExtra));
  runPair(pair);
  expectEstablished(pair);
  return pair;
}

/** Record length for a multi-message record carrying `sizes` (no padding). */
const multiLength = (sizes: number[]) => 4 + sizes.reduce((n, s) => n + 2 + s, 0) + 1 + 16;

describe('queue() and flush()', () => {
  it('messages queued together leave as one record and are delivered one by one, in order', () => {
    const pair = established();
    const messages = ['{"id":1}', '{"id":2}', 'x'.repeat(300)];
    for (const m of messages) pair.client.queue(text(m));
    expect(pair.client.pendingBytes).toBe(8 + 8 + 300);
    const records = pair.client.flush();
    expect(pair.client.pendingBytes).toBe(0);
    expect(records.map((r) => r.length)).toEqual([multiLength([8, 8, 300])]);
    expect(messagesOf(deliver(pair, 'c2s', records).events)).toEqual(messages);
    expect(pair.client.flush()).toEqual([]);
    // A single queued message is an ordinary record (inner type 0x05): no length prefix.
    pair.server.queue(text('alone'));
    const single = pair.server.flush();
    expect(single.map((r) => r.length)).toEqual([4 + 5 + 1 + 16]);
    expect(messagesOf(deliver(pair, 's2c', single).events)).toEqual(['alone']);
  });

  it('large and empty messages keep records of their own between coalesced runs; order is kept', () => {
    const pair = established();
    const big = 'b'.repeat(100_000);
    const messages = ['a1', 'a2', big, '', 'c1', 'c2', 'c3'];
    for (const m of messages) pair.server.queue(text(m));
    const records = pair.server.flush();
    expect(records.map((r) => r.length)).toEqual([multiLength([2, 2]), 4 + 65537 + 16, 4 + (100_000 - 65536) + 1 + 16, 4 + 1 + 16, multiLength([2, 2, 2])]);
    expect(messagesOf(deliver(pair, 's2c', records).events)).toEqual(messages);
  });

  it('close(), updateKeys() and abort() seal what is queued first, so the peer gets it before them', () => {
    let pair = established();
    pair.client.queue(text('before key update 1'));
    pair.client.queue(text('before key update 2'));
    const ku = pair.client.updateKeys(true);
    expect(ku).toHaveLength(2); // the messages' record, then the KeyUpdate
    pair.client.queue(text('after'));
    const answer = deliver(pair, 'c2s', [...ku, ...pair.client.flush()]);
    expect(messagesOf(answer.events)).toEqual(['before key update 1', 'before key update 2', 'after']);
    deliver(pair, 's2c', answer.send);
    pair.client.queue(text('last 1'));
    pair.client.queue(text('last 2'));
    const closing = pair.client.close();
    expect(closing).toHaveLength(2);
    const end = deliver(pair, 'c2s', closing);
    expect(messagesOf(end.events)).toEqual(['last 1', 'last 2']);
    expect(end.events.at(-1)?.type).toBe('close');

    pair = established();
    pair.server.queue(text('x'));
    pair.server.queue(text('y'));
    const aborted = pair.server.abort(new PqmcpError('ERR_CLOSED', 'cancelled', Alert.userCanceled));
    expect(aborted).toHaveLength(2);
    const got = deliver(pair, 's2c', aborted);
    expect(messagesOf(got.events)).toEqual(['x', 'y']);
    expectFailed(pair.client, pair.clientEvents, 'ERR_PEER_ALERT');
  });

  it('an owed KeyUpdate goes out before the coalesced record, and the session still lines up', () => {
    const pair = established();
    const answer = deliver(pair, 'c2s', pair.client.updateKeys(true));
    expect(answer.send).toEqual([]); // owed, not sent yet
    pair.server.queue(text('r1'));
    pair.server.queue(text('r2'));
    const records = pair.server.flush();
    expect(records).toHaveLength(2);
    expect(messagesOf(deliver(pair, 's2c', records).events)).toEqual(['r1', 'r2']);
    expect(pair.client.state).toBe('established');
  });

  it('application padding pads the multi-message record as a whole', () => {
    const pair = established({ applicationPadding: 256 });
    for (const m of ['a', 'bb', 'ccc']) pair.client.queue(text(m));
    const records = pair.client.flush();
    expect(records.map((r) => r.length)).toEqual([4 + 256 + 16]);
    expect(messagesOf(deliver(pair, 'c2s', records).events)).toEqual(['a', 'bb', 'ccc']);
  });

  it('queue() refuses what send() refuses, and a failed session drops what was queued', () => {
    const pair = established({ maxMessageSize: 10 }, { maxMessageSize: 10 });
    expect(() => pair.client.queue(new Uint8Array(11))).toThrowError(expect.objectContaining({ code: 'ERR_MESSAGE_TOO_LARGE' }));
    pair.server.queue(text('dropped'));
    expect(pair.server.pendingBytes).toBe(7);
    // A forged record: the server fails (bad_record_mac), and its queued message goes nowhere.
    const out = deliver(pair, 'c2s', [Uint8Array.of(0x17, 0, 0, 17, ...new Uint8Array(17))]);
    expectFailed(pair.server, pair.serverEvents, 'ERR_BAD_RECORD_MAC');
    expect(pair.server.pendingBytes).toBe(0);
    expect(out.send).toHaveLength(2); // the queued record, then the alert
    expect(() => pair.server.queue(text('z'))).toThrowError(expect.objectContaining({ code: 'ERR_CLOSED' }));
  });
});

describe('maxMessagesPerCall (review F3: a record of 1-byte messages costs ~45x its wire size once decoded)', () => {
  it('one receive() decodes at most the cap plus one record; the rest waits as wire bytes for drain(), nothing lost or reordered', () => {
    const pair = established({}, { maxMessagesPerCall: 1024 });
    const total = 10_000;
    for (let i = 0; i < total; i++) pair.client.queue(text(String(i % 10)));
    const wire = pair.client.flush();
    expect(wire.length).toBe(Math.ceil(total / 1024)); // 1024 1-byte entries per record
    const chunk = new Uint8Array(wire.reduce((n, r) => n + r.length, 0));
    let o = 0;
    for (const r of wire) chunk.set(r, (o += r.length) - r.length);
    const got: string[] = [];
    let out = pair.server.receive(chunk);
    got.push(...messagesOf(out.events));
    expect(got.length).toBe(1024);
    expect(pair.server.stalled).toBe(true);
    expect(pair.server.bufferedBytes).toBe(chunk.length - wire[0]!.length);
    let calls = 1;
    while (pair.server.stalled) {
      out = pair.server.drain();
      const n = messagesOf(out.events).length;
      expect(n).toBeLessThanOrEqual(1024);
      got.push(...messagesOf(out.events));
      calls++;
    }
    expect(calls).toBe(wire.length);
    expect(got).toEqual(Array.from({ length: total }, (_, i) => String(i % 10)));
    expect(pair.server.state).toBe('established');
  });

  it('refuses a cap that is not a positive integer', () => {
    expect(() => createPair(opts(A), opts(B, { maxMessagesPerCall: 0 }))).toThrow(/maxMessagesPerCall/);
  });
});

describe('coalescing on the transports', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('32 tools/call sent in one turn share records on the wire, and every answer arrives', async () => {
    const log = await honestServer(cleanup);
    const c2s: number[] = [];
    let handshakeRecords = 0;
    const proxy = await MitmProxy.start(log.url, cleanup, (dir, r) => {
      if (r[0] === RecordType.protected && ++handshakeRecords > 6 && dir === 'c2s') c2s.push(r.length);
      return [r];
    });
    const transport = new PqmcpClientTransport(proxy.url, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), backend: 'native', expectedServerId: SERVER_ID });
    const client = new Client({ name: 'coalesced', version: '1' });
    await client.connect(transport);
    cleanup.add(() => client.close());
    const before = c2s.length;
    const results = await Promise.all(Array.from({ length: 32 }, (_, i) => client.callTool({ name: 'echo', arguments: { text: `call ${i}` } })));
    expect(results.map((r) => r.content)).toEqual(Array.from({ length: 32 }, (_, i) => [{ type: 'text', text: `call ${i}` }]));
    const records = c2s.length - before;
    expect(records).toBeGreaterThanOrEqual(1);
    expect(records).toBeLessThanOrEqual(4); // one turn's requests: one record (a few if the SDK spreads them)
  });
});
