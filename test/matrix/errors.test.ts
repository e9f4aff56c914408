/**
 * Bad input gets the same typed errors on both SDK majors. A real SDK client of each major
 * (1.x; 2.x as it comes; 2.x negotiating with `mode: 'auto'` and pinned to 2026-07-28)
 * connects over `PqmcpClientTransport` to a real SDK server of each major (1.x and 2.x
 * behind `serveMcp`; 2.x behind `listen` + the SDK's `serveStdio`), on 127.0.0.1, and each
 * failure must surface as the same pqmcp class and code everywhere:
 *
 * - `client.connect()` rejects with the pqmcp error itself on 1.x and on 2.x without
 *   negotiation. A 2.x client that negotiates (auto or a pin) probes with `server/discover`
 *   inside connect() and wraps what fails there in `SdkError` ERA_NEGOTIATION_FAILED with
 *   the pqmcp error as its `cause` (the SDK's design); `findPqmcpError()` reaches it. A
 *   failure before the probe (connection refused: start() rejects) is not wrapped.
 * - The server side reports the same typed error on its 'clientError' event whatever SDK
 *   serves the sessions: these failures happen before any session exists.
 * - A connection dropped mid-request: the pending request rejects with each SDK's own
 *   "connection closed" error (1.x McpError -32000, 2.x SdkError CONNECTION_CLOSED), and
 *   the typed reason (TruncationError) reaches `onerror` on both sides, on both majors. An
 *   orderly close mid-request is no error: onerror stays silent on both majors.
 */
import type { Socket } from 'node:net';
import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { Client as Client2, SdkError } from '@modelcontextprotocol/client';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import {
  Alert,
  ConnectionError,
  CredentialExpiredError,
  PeerAlertError,
  PqmcpError,
  ServerBusyError,
  TruncationError,
  UnexpectedPeerError,
  UntrustedIssuerError,
  findPqmcpError,
} from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { PqmcpClientTransport, listen, serveMcp } from '../../src/transport/index.js';
import type { PqmcpClientOptions, PqmcpServer, PqmcpServerOptions, PqmcpServerTransport } from '../../src/transport/index.js';
import type { CryptoPool } from '../../src/transport/crypto-pool.js';
import { agent, fixtureCrypto, makeAgent, makeIssuer, testIssuer, trustFor } from '../helpers/identities.js';
import { Cleanup, SERVER_ID, waitFor } from '../helpers/mcp.js';
import { featureServer1 } from '../helpers/matrix.js';
import { featureServer2 } from '../helpers/mcp2.js';
import type { FeatureStats } from '../helpers/mcp2.js';

const CLIENT_ID = 'agent://pqmcp-test/errors-client';
const cleanup = new Cleanup();
afterAll(() => cleanup.run());

type ClientKind = '1.x' | '2.x' | '2.x auto' | '2.x pinned to 2026-07-28';
type ServerKind = '1.x serveMcp' | '2.x serveMcp' | '2.x listen + serveStdio';
const CLIENTS: readonly ClientKind[] = ['1.x', '2.x', '2.x auto', '2.x pinned to 2026-07-28'];
const SERVERS: readonly ServerKind[] = ['1.x serveMcp', '2.x serveMcp', '2.x listen + serveStdio'];
/** The pinned client only meets the server that serves 2026-07-28; the others meet all. */
const COMBOS = CLIENTS.flatMap((c) => SERVERS.filter((s) => c !== '2.x pinned to 2026-07-28' || s === '2.x listen + serveStdio').map((s) => [c, s] as const));
const negotiates = (kind: ClientKind): boolean => kind === '2.x auto' || kind === '2.x pinned to 2026-07-28';

interface Served {
  server: PqmcpServer;
  /** 'clientError' events, typed. */
  refused: PqmcpError[];
  /** What the SDK server's onerror heard, per session. */
  sessionErrors: Error[];
  sessions: PqmcpServerTransport[];
  stats: FeatureStats;
}

async function serve(kind: ServerKind, options: Partial<PqmcpServerOptions> = {}): Promise<Served> {
  // Per-source admission defaults would throttle this file's many handshakes from 127.0.0.1.
  // Handshake crypto inline (cryptoWorkers 0): no worker threads to start for each server.
  const base = { identity: agent(SERVER_ID), trust: trustFor(), host: '127.0.0.1', port: 0, backend: 'native' as const, maxPendingPerSource: 64, handshakeRatePerSource: 0, connectionRatePerSource: 0, cryptoWorkers: 0, ...options };
  const stats: FeatureStats = { cancelled: 0, handlerCalls: 0 };
  const sessionErrors: Error[] = [];
  const sessions: PqmcpServerTransport[] = [];
  let server: PqmcpServer;
  if (kind === '1.x serveMcp') {
    server = await serveMcp(base, () => {
      const mcp = featureServer1(stats);
      mcp.server.onerror = (e) => void sessionErrors.push(e);
      return mcp;
    });
  } else if (kind === '2.x serveMcp') {
    server = await serveMcp(base, () => {
      const mcp = featureServer2(stats);
      mcp.server.onerror = (e) => void sessionErrors.push(e);
      return mcp;
    });
  } else {
    server = await listen(base);
    server.on('session', (transport) => void serveStdio(() => featureServer2(stats), { transport, onerror: (e) => void sessionErrors.push(e) }));
  }
  server.on('session', (transport) => void sessions.push(transport));
  const refused: PqmcpError[] = [];
  server.on('clientError', (e) => void refused.push(e));
  cleanup.add(() => server.close());
  return { server, refused, sessionErrors, sessions, stats };
}

/** One server per configuration and kind, shared by the client kinds that meet it. */
const shared = new Map<string, Promise<Served>>();
function sharedServer(key: string, kind: ServerKind, options: () => Partial<PqmcpServerOptions>): Promise<Served> {
  const k = `${key} | ${kind}`;
  if (!shared.has(k)) shared.set(k, serve(kind, options()));
  return shared.get(k)!;
}

interface AnyClient {
  connect(transport: PqmcpClientTransport): Promise<void>;
  callTool(name: string, args: Record<string, unknown>): Promise<unknown>;
  close(): Promise<void>;
  /** What the client's onerror heard. */
  errors: Error[];
}

function newClient(kind: ClientKind): AnyClient {
  const errors: Error[] = [];
  if (kind === '1.x') {
    const c = new Client1({ name: 'errors-1x', version: '1.0.0' });
    c.onerror = (e) => void errors.push(e);
    cleanup.add(() => c.close());
    return { connect: (t) => c.connect(t), callTool: (name, args) => c.callTool({ name, arguments: args }), close: () => c.close(), errors };
  }
  const negotiation = kind === '2.x auto' ? { versionNegotiation: { mode: 'auto' as const } } : kind === '2.x pinned to 2026-07-28' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {};
  const c = new Client2({ name: 'errors-2x', version: '1.0.0' }, negotiation);
  c.onerror = (e) => void errors.push(e);
  cleanup.add(() => c.close());
  return { connect: (t) => c.connect(t), callTool: (name, args) => c.callTool({ name, arguments: args }), close: () => c.close(), errors };
}

function transport(url: string, options: Partial<PqmcpClientOptions> = {}): PqmcpClientTransport {
  return new PqmcpClientTransport(url, { identity: agent(CLIENT_ID), trust: trustFor(), expectedServerId: SERVER_ID, backend: 'native', busyRetry: false, ...options });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection, but it resolved');
    },
    (e: unknown) => e,
  );
}

type Cls = abstract new (...args: never[]) => PqmcpError;
interface Expected {
  cls: Cls;
  code: ErrorCode;
  alert?: number;
}

/** `error` is exactly the expected pqmcp error, reached as each major's design says. */
function expectTyped(error: unknown, kind: ClientKind, expected: Expected, wrapped: boolean): PqmcpError {
  const typed = findPqmcpError(error);
  expect(typed, `no pqmcp error in ${String(error)}`).toBeInstanceOf(expected.cls);
  expect(Object.getPrototypeOf(typed)).toBe(expected.cls.prototype);
  expect(typed!.code).toBe(expected.code);
  if (expected.alert !== undefined) expect((typed as PeerAlertError).peerAlert).toBe(expected.alert);
  if (negotiates(kind) && wrapped) {
    // The SDK's negotiation wraps what fails during its probe; the pqmcp error is the cause.
    expect(error).toBeInstanceOf(SdkError);
    expect((error as SdkError).code).toBe('ERA_NEGOTIATION_FAILED');
    expect((error as SdkError).cause).toBe(typed);
    expect((error as SdkError).message).toContain(typed!.message);
  } else {
    expect(error).toBe(typed);
  }
  return typed!;
}

const otherIssuer = makeIssuer(fixtureCrypto(), 'issuer://errors-other');
const now = Math.floor(Date.now() / 1000);
const expiredWindow = { notBefore: now - 7200, notAfter: now - 3600 };
const foreignClient = makeAgent(fixtureCrypto(), otherIssuer, CLIENT_ID).identity;
const expiredClient = makeAgent(fixtureCrypto(), testIssuer(), CLIENT_ID, expiredWindow).identity;
const expiredServer = makeAgent(fixtureCrypto(), testIssuer(), SERVER_ID, expiredWindow).identity;

interface Scenario {
  name: string;
  server?: () => Partial<PqmcpServerOptions>;
  client?: () => Partial<PqmcpClientOptions>;
  /** What `client.connect()` surfaces. */
  client_: Expected;
  /** What the server's 'clientError' reports. */
  server_: Expected;
}

const SCENARIOS: readonly Scenario[] = [
  {
    name: "untrusted issuer: the client does not trust the server's issuer",
    client: () => ({ trust: trustFor(otherIssuer) }),
    client_: { cls: UntrustedIssuerError, code: 'ERR_UNTRUSTED_ISSUER' },
    server_: { cls: PeerAlertError, code: 'ERR_PEER_ALERT', alert: Alert.unknownIssuer },
  },
  {
    name: "untrusted issuer: the server does not trust the client's issuer",
    client: () => ({ identity: foreignClient }),
    client_: { cls: PeerAlertError, code: 'ERR_PEER_ALERT', alert: Alert.unknownIssuer },
    server_: { cls: UntrustedIssuerError, code: 'ERR_UNTRUSTED_ISSUER' },
  },
  {
    name: 'unexpected server id',
    client: () => ({ expectedServerId: 'agent://pqmcp-test/someone-else' }),
    client_: { cls: UnexpectedPeerError, code: 'ERR_UNEXPECTED_PEER' },
    server_: { cls: PeerAlertError, code: 'ERR_PEER_ALERT', alert: Alert.unexpectedPeer },
  },
  {
    name: "expired credential: the server's",
    server: () => ({ identity: expiredServer }),
    client_: { cls: CredentialExpiredError, code: 'ERR_CREDENTIAL_EXPIRED' },
    server_: { cls: PeerAlertError, code: 'ERR_PEER_ALERT', alert: Alert.credentialExpired },
  },
  {
    name: "expired credential: the client's",
    client: () => ({ identity: expiredClient }),
    client_: { cls: PeerAlertError, code: 'ERR_PEER_ALERT', alert: Alert.credentialExpired },
    server_: { cls: CredentialExpiredError, code: 'ERR_CREDENTIAL_EXPIRED' },
  },
];

describe.each(SCENARIOS)('$name', (scenario) => {
  it.each(COMBOS)('%s client, %s server: the same typed error on both sides', async (clientKind, serverKind) => {
    const served = await sharedServer(scenario.name, serverKind, scenario.server ?? (() => ({})));
    const seen = served.refused.length;
    const client = newClient(clientKind);
    const error = await rejection(client.connect(transport(served.server.url, scenario.client?.() ?? {})));
    const typed = expectTyped(error, clientKind, scenario.client_, true);
    // The client's onerror hears it too, except during a 2.x negotiation probe (it runs
    // before the client has taken the transport over).
    expect(client.errors).toEqual(negotiates(clientKind) ? [] : [typed]);
    await waitFor(() => served.refused.length > seen, 10_000, "the server's clientError");
    const refused = served.refused[seen]!;
    expect(served.refused).toHaveLength(seen + 1);
    expect(refused).toBeInstanceOf(scenario.server_.cls);
    expect(Object.getPrototypeOf(refused)).toBe(scenario.server_.cls.prototype);
    expect(refused.code).toBe(scenario.server_.code);
    if (scenario.server_.alert !== undefined) expect((refused as PeerAlertError).peerAlert).toBe(scenario.server_.alert);
    expect(served.sessions).toHaveLength(0);
    expect(served.stats.handlerCalls).toBe(0);
  });
});

describe('findPqmcpError', () => {
  it('finds the pqmcp error itself or down the cause chain; nothing in a cycle or a foreign chain', () => {
    const typed = new TruncationError();
    expect(findPqmcpError(typed)).toBe(typed);
    expect(findPqmcpError(new Error('outer', { cause: new Error('middle', { cause: typed }) }))).toBe(typed);
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(findPqmcpError(a)).toBeUndefined();
    expect(findPqmcpError(new Error('plain'))).toBeUndefined();
    expect(findPqmcpError('text')).toBeUndefined();
    expect(findPqmcpError(undefined)).toBeUndefined();
    let deep: Error = typed;
    for (let i = 0; i < 9; i++) deep = new Error(`wrap ${i}`, { cause: deep });
    expect(findPqmcpError(deep)).toBeUndefined();
  });
});

describe('server busy', () => {
  it.each(COMBOS)('%s client, %s server: ServerBusyError (ERR_SERVER_BUSY)', async (clientKind, serverKind) => {
    // One handshake per second from 127.0.0.1, on a clock the test holds (the pool's internal
    // seam, CryptoPool.testRateClock): a first client spends the token, the next is refused as
    // busy before any expensive work; the token never comes back however slow the machine.
    const served = await serve(serverKind, { handshakeRatePerSource: 1 });
    (served.server as unknown as { edge: { pool: CryptoPool } }).edge.pool.testRateClock = () => 0;
    const seen = served.refused.length;
    const first = newClient('1.x');
    await first.connect(transport(served.server.url));
    const client = newClient(clientKind);
    const error = await client.connect(transport(served.server.url)).then(
      () => undefined,
      (e: unknown) => e,
    );
    await first.close();
    await client.close();
    expectTyped(error, clientKind, { cls: ServerBusyError, code: 'ERR_SERVER_BUSY' }, true);
    expect(served.refused.slice(seen).some((e) => e instanceof ServerBusyError)).toBe(true);
  });
});

describe('connection refused', () => {
  it.each(CLIENTS)('%s client: ConnectionError (ERR_CONNECTION), never wrapped (start() fails before any probe)', async (clientKind) => {
    // A port that was free a moment ago and has no listener now.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const p = (probe.address() as { port: number }).port;
        probe.close(() => resolve(p));
      });
    });
    const client = newClient(clientKind);
    const error = await rejection(client.connect(transport(`ws://127.0.0.1:${port}/`)));
    const typed = expectTyped(error, clientKind, { cls: ConnectionError, code: 'ERR_CONNECTION' }, false);
    expect((typed.cause as { code?: string }).code).toBe('ECONNREFUSED');
  });
});

describe('closed mid-request', () => {
  const sockets = new Map<PqmcpServer, Socket[]>();
  async function midRequest(clientKind: ClientKind, serverKind: ServerKind) {
    const served = await sharedServer('mid-request', serverKind, () => ({}));
    if (!sockets.has(served.server)) {
      const list: Socket[] = [];
      sockets.set(served.server, list);
      served.server.httpServer.on('connection', (s: Socket) => void list.push(s));
    }
    const errorsBefore = served.sessionErrors.length;
    const sessionsBefore = served.sessions.length;
    const client = newClient(clientKind);
    await client.connect(transport(served.server.url));
    // The 2.x negotiating clients probed first on this connection: one session either way.
    expect(served.sessions).toHaveLength(sessionsBefore + 1);
    const socket = sockets.get(served.server)!.at(-1)!;
    const before = served.stats.handlerCalls;
    const pending = rejection(client.callTool('slow', { ms: 30_000 }));
    await waitFor(() => served.stats.handlerCalls > before, 10_000, 'the slow tool to start');
    return { served, socket, session: served.sessions.at(-1)!, client, pending, sessionErrors: () => served.sessionErrors.slice(errorsBefore) };
  }

  /** Each SDK's own error for requests lost to a closed connection. */
  function expectConnectionClosed(error: unknown, clientKind: ClientKind): void {
    if (clientKind === '1.x') {
      expect(error).toBeInstanceOf(McpError);
      expect((error as McpError).code).toBe(-32000);
    } else {
      expect(error).toBeInstanceOf(SdkError);
      expect((error as SdkError).code).toBe('CONNECTION_CLOSED');
    }
  }

  it.each(COMBOS)('%s client, %s server: a dropped connection gives TruncationError to onerror on both sides', async (clientKind, serverKind) => {
    const { socket, client, pending, sessionErrors } = await midRequest(clientKind, serverKind);
    socket.destroy();
    expectConnectionClosed(await pending, clientKind);
    await waitFor(() => client.errors.length > 0 && sessionErrors().length > 0, 10_000, 'onerror on both sides');
    expect(client.errors.map((e) => [e.constructor, (e as PqmcpError).code])).toEqual([[TruncationError, 'ERR_TRUNCATED']]);
    expect(sessionErrors().map((e) => [e.constructor, (e as PqmcpError).code])).toEqual([[TruncationError, 'ERR_TRUNCATED']]);
  });

  it.each(COMBOS)('%s client, %s server: an orderly close by the server is no error', async (clientKind, serverKind) => {
    const { session, client, pending, sessionErrors } = await midRequest(clientKind, serverKind);
    await session.close();
    expectConnectionClosed(await pending, clientKind);
    // Give a late onerror the chance to show up.
    await new Promise((r) => setTimeout(r, 100));
    expect(client.errors).toEqual([]);
    expect(sessionErrors()).toEqual([]);
  });
});
