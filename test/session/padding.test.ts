/**
 * Record padding (docs/protocol.md, section 3.2): Credential records of agents of one issuer
 * are indistinguishable by length within a 1024-byte bucket, on both sides; application
 * padding hides message sizes to the configured block. The lengths are read off the records
 * as they cross (what a passive observer sees).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createNativeBackend } from '../../src/crypto/native.js';
import { decodeCredential } from '../../src/identity/index.js';
import { RecordType } from '../../src/record/index.js';
import type { SessionOptions } from '../../src/session/session.js';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import { makeAgent, makeIssuer, trustFor, type TestAgent } from '../helpers/identities.js';
import { Cleanup } from '../helpers/mcp.js';
import { createPair, deliver, expectEstablished, runPair, text } from '../helpers/pair.js';
import { MitmProxy } from '../adversarial/socket-harness.js';
import { SERVER_ID, honestServer } from '../adversarial/socket-fixtures.js';
import { agent } from '../helpers/identities.js';

const native = createNativeBackend();
const issuer = makeIssuer(native, 'issuer://padding-test');
const trust = trustFor(issuer);
const opts = (a: TestAgent, extra: Partial<SessionOptions> = {}): SessionOptions => ({ backend: native, identity: a.local, trust, ...extra });

/** Agents of one issuer whose credentials differ in id, display name and claims. */
const AGENTS = [
  makeAgent(native, issuer, 'agent://acme/a', { displayName: '' }),
  makeAgent(native, issuer, 'agent://acme/planner-with-a-longer-name', { displayName: 'The Planner', scopes: ['tools:call'] }),
  makeAgent(native, issuer, 'agent://acme/researcher', { displayName: 'Research agent, EU', scopes: ['tools:call', 'resources:read'], attributes: { model: 'large-2', region: 'eu-west' } }),
];

/** The length of the protected record carrying this side's Credential (the 2nd record it sends). */
function credentialRecordLengths(client: TestAgent, server: TestAgent): { c2s: number; s2c: number } {
  const pair = createPair(opts(client), opts(server));
  runPair(pair);
  expectEstablished(pair);
  // c2s: ClientHello, Credential, ...; s2c: ServerHello, Credential, ...
  return { c2s: pair.wire.c2s[1]!.length, s2c: pair.wire.s2c[1]!.length };
}

describe('credential padding', () => {
  it('agents of one issuer with different ids, display names and claims send Credential records of one length, as clients and as servers', () => {
    const sizes = AGENTS.map((a) => a.credential.encoded.length);
    // Without padding they would be told apart: the credentials differ in length.
    expect(new Set(sizes).size).toBe(AGENTS.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeGreaterThan(50);
    const server = makeAgent(native, issuer, 'agent://acme/server');
    const asClients = AGENTS.map((a) => credentialRecordLengths(a, server).c2s);
    const asServers = AGENTS.map((a) => credentialRecordLengths(makeAgent(native, issuer, 'agent://acme/client'), a).s2c);
    expect(new Set(asClients).size).toBe(1);
    expect(new Set(asServers).size).toBe(1);
    // Inner plaintext a multiple of 1024: record = header 4 + inner + tag 16.
    expect((asClients[0]! - 20) % 1024).toBe(0);
    expect(asClients[0]).toBe(asServers[0]);
  });

  it('a credential in the next bucket gives the next length (the bucket, not the exact size, is what shows)', () => {
    const big = makeAgent(native, issuer, 'agent://acme/big', { attributes: { note: 'x'.repeat(1024) } });
    expect(decodeCredential(big.credential.encoded).attributes['note']).toHaveLength(1024);
    const server = makeAgent(native, issuer, 'agent://acme/server');
    expect(credentialRecordLengths(big, server).c2s - credentialRecordLengths(AGENTS[0]!, server).c2s).toBe(1024);
  });
});

describe('application padding', () => {
  it('with applicationPadding 256, messages of 0..255 bytes (inner 1..256) give one record length; without it, every size shows', () => {
    const [a, b] = [AGENTS[0]!, AGENTS[1]!];
    const padded = createPair(opts(a, { applicationPadding: 256 }), opts(b));
    runPair(padded);
    const plain = createPair(opts(a), opts(b));
    runPair(plain);
    const lengths = (pair: typeof padded, n: number) => {
      const records = pair.client.send(text('x'.repeat(n)));
      expect(deliver(pair, 'c2s', records).events.map((e) => (e.type === 'message' ? e.data.length : -1))).toEqual([n]);
      return records.map((r) => r.length);
    };
    const paddedLengths = new Set([0, 1, 17, 100, 255].flatMap((n) => lengths(padded, n)));
    const plainLengths = new Set([0, 1, 17, 100, 255].flatMap((n) => lengths(plain, n)));
    expect([...paddedLengths]).toEqual([4 + 256 + 16]);
    expect(plainLengths.size).toBe(5);
    expect(lengths(padded, 256)).toEqual([4 + 512 + 16]);
    // A message of more than one fragment: full fragments carry no padding, the last is padded.
    expect(lengths(padded, 65536 + 10)).toEqual([4 + 65537 + 16, 4 + 256 + 16]);
  });

  it('refuses a padding block outside 0..65537', () => {
    for (const bad of [-1, 1.5, 65538, '256']) {
      expect(() => createPair(opts(AGENTS[0]!, { applicationPadding: bad as number }), opts(AGENTS[1]!))).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    }
  });
});

describe('application padding on the transports', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('applicationPadding on the client transport and the listener: every application record on the wire is a multiple of the block', async () => {
    const log = await honestServer(cleanup, { applicationPadding: 512 });
    const seen: number[] = [];
    let handshakeRecords = 0;
    const proxy = await MitmProxy.start(log.url, cleanup, (_dir, r) => {
      // After the 4 handshake records each way, every protected record is application data
      // (or the close): its body is inner + 16.
      if (r[0] === RecordType.protected && ++handshakeRecords > 6) seen.push(r.length - 4 - 16);
      return [r];
    });
    const transport = new PqmcpClientTransport(proxy.url, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), backend: 'native', expectedServerId: SERVER_ID, applicationPadding: 512 });
    const client = new Client({ name: 'padded', version: '1' });
    await client.connect(transport);
    cleanup.add(() => client.close());
    expect((await client.callTool({ name: 'echo', arguments: { text: 'hi' } })).content).toEqual([{ type: 'text', text: 'hi' }]);
    const application = seen.filter((n) => n > 2 + 1); // alerts (close_notify) are not padded
    expect(application.length).toBeGreaterThanOrEqual(4);
    expect(application.every((n) => n % 512 === 0)).toBe(true);
  });
});
