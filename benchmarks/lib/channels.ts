/**
 * Client ends of the byte channels that the throughput, latency and memory benchmarks
 * compare, all with one interface (send with backpressure, onmessage, close):
 *
 *   ws         plain `ws` WebSocket, binary frames, no security
 *   wss        `ws` over TLS 1.3 with mutual authentication (ECDSA P-256), one group offered
 *   pqmcp      the pqmcp channel: the same Connection, Session and `ws` adapter the MCP
 *              transports are built from (src/transport), with the default suites
 *              (AES-256-GCM where the AEAD is native, else ChaCha20-Poly1305); only the
 *              JSON-RPC codec is left out, because it costs the same on every channel and
 *              the MCP benchmarks measure it
 *   pqmcp-chacha  the same with the ChaCha20-Poly1305 suite
 *
 * Every channel: permessage-deflate off, 127.0.0.1 only, and the same high-water mark
 * (pqmcp's default, 8 MiB) for send() to wait on.
 */
import { WebSocket } from 'ws';
import type { ClientOptions } from 'ws';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { Session } from '../../src/session/session.js';
import { Suite } from '../../src/wire/messages.js';
import type { BackendChoice } from '../../src/crypto/select.js';
import { selectBackend, describeBackend } from '../../src/crypto/select.js';
import { Connection } from '../../src/transport/connection.js';
import { DEFAULTS, SUBPROTOCOL, localIdentity, resolveOptions } from '../../src/transport/options.js';
import { attachWebSocket, wsMessageSocket } from '../../src/transport/ws-socket.js';
import { SUITE_NAMES } from '../../src/wire/messages.js';
import type { Certificates } from './certs.js';
import { SERVER_AGENT_ID, identityOf, trustOf } from './fixtures.js';
import type { PqmcpFixture } from './fixtures.js';
import { clientTlsOptions, negotiatedGroup } from './tls.js';
import type { TlsGroup } from './tls.js';

export type ChannelVariant = 'ws' | 'wss' | 'pqmcp' | 'pqmcp-chacha';

export const HIGH_WATER_MARK = DEFAULTS.highWaterMark;

export interface ByteChannel {
  readonly variant: ChannelVariant;
  /** What was negotiated: TLS group and cipher, pqmcp suite and backend. */
  readonly details: Record<string, string>;
  send(data: Uint8Array): Promise<void>;
  onmessage: (data: Uint8Array) => void;
  close(): Promise<void>;
}

export interface ChannelTarget {
  /** Server ports by endpoint name ('ws', 'wss', 'pqmcp'). */
  ports: Record<string, number>;
  certs?: Certificates | undefined;
  fixture: PqmcpFixture;
  tlsGroup?: TlsGroup;
  backend?: BackendChoice;
}

const noop = (): void => {};

export function openChannel(variant: ChannelVariant, target: ChannelTarget): Promise<ByteChannel> {
  switch (variant) {
    case 'ws':
      return openWs(variant, `ws://127.0.0.1:${port(target, 'ws')}/`, {});
    case 'wss': {
      if (!target.certs) throw new Error('wss needs certificates');
      return openWs(variant, `wss://127.0.0.1:${port(target, 'wss')}/`, clientTlsOptions(target.certs, target.tlsGroup ?? 'X25519'));
    }
    case 'pqmcp':
      return openPqmcp(variant, target, undefined);
    case 'pqmcp-chacha':
      return openPqmcp(variant, target, Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256);
  }
}

function port(target: ChannelTarget, name: string): number {
  const p = target.ports[name];
  if (p === undefined) throw new Error(`server has no '${name}' endpoint`);
  return p;
}

function openWs(variant: ChannelVariant, url: string, options: ClientOptions): Promise<ByteChannel> {
  const ws = new WebSocket(url, { ...options, perMessageDeflate: false });
  const details: Record<string, string> = {};
  ws.on('upgrade', (res: IncomingMessage) => {
    const socket = res.socket as TLSSocket;
    if (typeof socket.getEphemeralKeyInfo === 'function') {
      details.group = negotiatedGroup(socket);
      details.cipher = socket.getCipher().name;
      details.protocol = socket.getProtocol() ?? 'unknown';
    }
  });
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => {
      ws.off('error', reject);
      ws.on('error', noop);
      let drainWaiters: Array<() => void> = [];
      const onWritten = (): void => {
        if (drainWaiters.length === 0 || ws.bufferedAmount > HIGH_WATER_MARK) return;
        const w = drainWaiters;
        drainWaiters = [];
        for (const f of w) f();
      };
      const channel: ByteChannel = {
        variant,
        details,
        onmessage: noop,
        send(data) {
          if (ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error('closed'));
          ws.send(data, { binary: true }, onWritten);
          if (ws.bufferedAmount <= HIGH_WATER_MARK) return Promise.resolve();
          return new Promise<void>((r) => drainWaiters.push(r));
        },
        close() {
          if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
          return new Promise<void>((r) => {
            ws.once('close', () => r());
            ws.close();
          });
        },
      };
      ws.on('message', (data: Buffer) => channel.onmessage(data));
      resolve(channel);
    });
  });
}

/** `suite` undefined: the defaults, as a user gets them. */
async function openPqmcp(variant: ChannelVariant, target: ChannelTarget, suite: number | undefined): Promise<ByteChannel> {
  const backend = selectBackend(target.backend ?? 'auto');
  const identity = identityOf(target.fixture, 'client', backend);
  const trust = trustOf(target.fixture);
  const resolved = resolveOptions({ identity, trust });
  const session = Session.client({ backend, identity: localIdentity(identity), trust, expectedPeerId: SERVER_AGENT_ID, ...(suite !== undefined ? { suites: [suite] } : {}), maxMessageSize: resolved.maxMessageSize });
  const ws = new WebSocket(`ws://127.0.0.1:${port(target, 'pqmcp')}/`, SUBPROTOCOL, { perMessageDeflate: false, maxPayload: resolved.maxPayload });
  ws.on('error', noop);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('close', () => reject(new Error('closed while connecting')));
  });
  const connection = new Connection(wsMessageSocket(ws), session, resolved.connection);
  attachWebSocket(ws, connection);
  const channel: ByteChannel = {
    variant,
    details: { suite: 'negotiating', backend: describeBackend(backend) },
    onmessage: noop,
    send: (data) => connection.send(data),
    close: () => connection.close(),
  };
  connection.onmessage = (data) => channel.onmessage(data);
  await new Promise<void>((resolve, reject) => {
    connection.onhandshake = (result) => {
      channel.details.suite = SUITE_NAMES[result.suite] ?? String(result.suite);
      resolve();
    };
    connection.onerror = (e) => reject(e);
    connection.onclose = () => reject(new Error('closed during the handshake'));
    connection.start();
  });
  connection.onerror = noop;
  connection.onclose = noop;
  return channel;
}
