/**
 * Downgrade and negotiation tampering by a network attacker between a real client transport
 * and a real listener (a WebSocket man in the middle that rewrites records in flight). The
 * offer is bound into the transcript that both sides' keys, signatures and Finished MACs
 * derive from: any rewrite is detected, and both sides end with a typed error.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { concat } from '../../src/bytes.js';
import { Alert, PeerAbortedError, PeerAlertError, PqmcpError } from '../../src/errors.js';
import { RecordType } from '../../src/record/index.js';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import { Suite, decodeClientHello, decodeServerHello, encodeClientHello, encodeServerHello, unframeHandshake } from '../../src/wire/messages.js';
import { agent, trustFor } from '../helpers/identities.js';
import { Cleanup, waitFor } from '../helpers/mcp.js';
import { MitmProxy, type ProxyDirection } from './socket-harness.js';
import { SERVER_ID, connections, honestServer } from './socket-fixtures.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const AES = Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256;
const CHACHA = Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256;

const record = (framed: Uint8Array) => concat(Uint8Array.of(RecordType.handshake, 0, framed.length >> 8, framed.length & 0xff), framed);
const rewriteHello = (dir: ProxyDirection, fn: (framed: Uint8Array) => Uint8Array) => (d: ProxyDirection, r: Uint8Array) => [d === dir && r[0] === RecordType.handshake ? record(fn(r.subarray(4))) : r];

async function attempt(hook: Parameters<typeof MitmProxy.start>[2], suites = [AES, CHACHA]) {
  const log = await honestServer(cleanup, { suites });
  const proxy = await MitmProxy.start(log.url, cleanup, hook);
  const transport = new PqmcpClientTransport(proxy.url, { identity: agent('agent://pqmcp-test/client'), trust: trustFor(), backend: 'native', expectedServerId: SERVER_ID, suites });
  cleanup.add(() => transport.close());
  const client = new Client({ name: 'honest', version: '1' });
  const error = await client.connect(transport).then(
    () => undefined,
    (e: unknown) => e,
  );
  await waitFor(() => log.clientErrors.length > 0, 5_000, 'server clientError');
  await waitFor(() => log.server.pendingHandshakes === 0, 5_000, 'slot freed');
  await expect.poll(() => connections(log), { timeout: 5_000 }).toBe(0);
  expect(log.sessions).toEqual([]);
  return { clientError: error as PqmcpError, serverError: log.clientErrors[0]! };
}

describe('a network attacker rewrites the negotiation', () => {
  it('the suite list, stripped to the weaker preference: both sides bad_record_mac', async () => {
    const { clientError, serverError } = await attempt(rewriteHello('c2s', (m) => encodeClientHello({ ...decodeClientHello(unframeHandshake(m).body), suites: [CHACHA] })));
    expect(clientError.code).toBe('ERR_BAD_RECORD_MAC');
    expect(serverError.code).toBe('ERR_BAD_RECORD_MAC');
  });

  it('the version list, with an unknown version added: both sides bad_record_mac', async () => {
    const { clientError, serverError } = await attempt(rewriteHello('c2s', (m) => encodeClientHello({ ...decodeClientHello(unframeHandshake(m).body), versions: [0x0002, 0x0001] })));
    expect(clientError.code).toBe('ERR_BAD_RECORD_MAC');
    expect(serverError.code).toBe('ERR_BAD_RECORD_MAC');
  });

  it('an unknown extension slipped into the ClientHello (the server ignores it; the transcript does not)', async () => {
    const { clientError, serverError } = await attempt(rewriteHello('c2s', (m) => encodeClientHello((ch => ({ ...ch, extensions: [...ch.extensions, { type: 0xfe01, data: Uint8Array.of(1) }] }))(decodeClientHello(unframeHandshake(m).body)))));
    expect(clientError.code).toBe('ERR_BAD_RECORD_MAC');
    expect(serverError.code).toBe('ERR_BAD_RECORD_MAC');
  });

  it('the server’s chosen suite, changed to the other offered suite: both sides bad_record_mac', async () => {
    const { clientError, serverError } = await attempt(rewriteHello('s2c', (m) => encodeServerHello({ ...decodeServerHello(unframeHandshake(m).body), suite: CHACHA })));
    expect(clientError.code).toBe('ERR_BAD_RECORD_MAC');
    expect(serverError.code).toBe('ERR_BAD_RECORD_MAC');
  });

  it('the server’s chosen version, changed to one not offered: protocol_version at the client, the alert at the server', async () => {
    const { clientError, serverError } = await attempt(rewriteHello('s2c', (m) => encodeServerHello({ ...decodeServerHello(unframeHandshake(m).body), version: 0x0002 })));
    expect(clientError.code).toBe('ERR_UNSUPPORTED_VERSION');
    // The client has no keys yet: its alert is plaintext, so unauthenticated (no trusted meaning).
    expect(serverError).toBeInstanceOf(PeerAbortedError);
    expect(serverError.message).toBe(`peer aborted the handshake (unauthenticated alert ${Alert.protocolVersion})`);
  });

  it('the KEM id, changed to another KEM: insufficient_security at the server, the alert at the client', async () => {
    const { clientError, serverError } = await attempt(rewriteHello('c2s', (m) => encodeClientHello({ ...decodeClientHello(unframeHandshake(m).body), kemId: 0x11ec })));
    expect(serverError.code).toBe('ERR_UNSUPPORTED_SUITE');
    expect(clientError).toBeInstanceOf(PeerAbortedError);
    expect((clientError as PeerAbortedError).peerAlert).toBe(Alert.insufficientSecurity);
  });

  it('an extension the client did not offer, added to the ServerHello: unsupported_extension at the client, an unauthenticated abort at the server', async () => {
    const { clientError, serverError } = await attempt(rewriteHello('s2c', (m) => encodeServerHello({ ...decodeServerHello(unframeHandshake(m).body), extensions: [{ type: 0x0002, data: Uint8Array.of(1) }] })));
    expect(clientError.code).toBe('ERR_UNSUPPORTED_EXTENSION');
    expect(clientError.alert).toBe(Alert.unsupportedExtension);
    expect(serverError).toBeInstanceOf(PeerAbortedError);
    expect(serverError.message).toBe('peer aborted the handshake (unauthenticated alert 110)');
  });

  it('a bit flipped in a protected record in flight: both sides fail, nothing delivered', async () => {
    let flipped = false;
    const { clientError, serverError } = await attempt((dir, r) => {
      if (dir === 's2c' && r[0] === RecordType.protected && !flipped) {
        flipped = true;
        const t = r.slice();
        t[10]! ^= 1;
        return [t];
      }
      return [r];
    });
    expect(clientError.code).toBe('ERR_BAD_RECORD_MAC');
    expect(serverError.code).toBe('ERR_PEER_ALERT');
    expect((serverError as PeerAlertError).peerAlert).toBe(Alert.badRecordMac);
  });
});
