/**
 * The conformance adapter: a Streamable HTTP endpoint on 127.0.0.1 whose MCP sessions are
 * relayed, message by message, to a backend transport (one per HTTP session). With a
 * PqmcpClientTransport as the backend, everything the MCP conformance suite sends reaches the
 * server under test through a real pqmcp session, and everything the server answers comes
 * back the same way.
 *
 * The HTTP side is a copy of what `@modelcontextprotocol/server-everything` does in its own
 * `streamableHttp` mode (dist/transports/streamableHttp.js), so that the only difference
 * between "server-everything over its own transport" and "server-everything through pqmcp" is
 * where the McpServer lives: the same SDK StreamableHTTPServerTransport per session, session
 * ids from randomUUID, an in-memory event store (resumability), the same 400 answers for a
 * missing or unknown session id, the same permissive CORS headers, and no Host/Origin check.
 * It uses node:http instead of express + cors (no typings for those here); the behaviour the
 * suite can observe is the same.
 *
 * Sharp edges:
 * - A single-channel backend (stdio, pqmcp) does not say which client request a server
 *   notification or request belongs to; over HTTP that decides which SSE stream carries it.
 *   The relay reconstructs it the way any stdio-to-HTTP gateway has to: a progress
 *   notification goes with the request that carries its progressToken; any other server
 *   message goes with the only client request in flight if there is exactly one, and on the
 *   standalone GET stream otherwise. The stdio control in test/conformance/three-ways.ts goes
 *   through this same relay, which is how a verdict that the relay (not pqmcp) changes would
 *   be told apart.
 * - Sessions the suite never deletes stay open (as in server-everything) until close(); each
 *   holds one backend session (a gateway child process through `pqmcp serve`).
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** server-everything's InMemoryEventStore, same behaviour (SSE resumability). */
class InMemoryEventStore implements EventStore {
  private readonly events = new Map<string, { streamId: string; message: JSONRPCMessage }>();

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const eventId = randomUUID();
    this.events.set(eventId, { streamId, message });
    return eventId;
  }

  async replayEventsAfter(lastEventId: string, { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> }): Promise<string> {
    const entries = Array.from(this.events.entries());
    const start = entries.findIndex(([id]) => id === lastEventId);
    if (start === -1) return lastEventId;
    let last = lastEventId;
    for (const [eventId, { message }] of entries.slice(start + 1)) {
      await send(eventId, message);
      last = eventId;
    }
    return last;
  }
}

type Id = string | number;
type Msg = { id?: Id; method?: string; params?: { progressToken?: unknown; _meta?: { progressToken?: unknown } } };

/**
 * Relays one session between two transports, both directions, and closes each when the other
 * closes: `front` faces the MCP client (it receives the client's requests), `backend` faces
 * the MCP server. Used both ways round: HTTP front to pqmcp or stdio backend (server
 * scenarios), pqmcp session to an HTTP client transport (client scenarios, client.ts).
 * Returns once both have started.
 */
export async function relay(
  front: Transport,
  backend: Transport,
  onError: (where: string, error: unknown) => void,
  /** Awaited before each client message goes to the backend, in order (client.ts: the HTTP stream gate). */
  gate?: (message: Msg) => Promise<void>,
): Promise<void> {
  // Client requests not answered yet, with the progress token each asked for.
  const inFlight = new Map<Id, unknown>();
  let closing = false;
  const closeBoth = (): void => {
    if (closing) return;
    closing = true;
    void front.close().catch((e: unknown) => onError('front close', e));
    void backend.close().catch((e: unknown) => onError('backend close', e));
  };

  let initializeId: Id | undefined;
  let forwarded: Promise<void> = Promise.resolve();
  front.onmessage = (message) => {
    const m = message as Msg;
    if (m.method !== undefined && m.id !== undefined) inFlight.set(m.id, m.params?._meta?.progressToken);
    if (m.method === 'initialize') initializeId = m.id;
    if (gate === undefined) {
      backend.send(message).catch((e: unknown) => onError('to backend', e));
      return;
    }
    // Kept in order: each message waits for the gate and for the one before it.
    forwarded = forwarded.then(() => gate(m)).then(() => backend.send(message)).catch((e: unknown) => onError('to backend', e));
  };
  backend.onmessage = (message) => {
    const m = message as Msg;
    if (m.method === undefined) {
      // A response to a client request: the front routes it by its id.
      if (m.id !== undefined) inFlight.delete(m.id);
      // What an SDK Client does with the negotiated version: tell its transport (an HTTP
      // client transport then sends it as the mcp-protocol-version header).
      const version = (message as { result?: { protocolVersion?: unknown } }).result?.protocolVersion;
      if (m.id === initializeId && typeof version === 'string') backend.setProtocolVersion?.(version);
      front.send(message).catch((e: unknown) => onError('to front', e));
      return;
    }
    let related: Id | undefined;
    if (m.method === 'notifications/progress') {
      for (const [id, token] of inFlight) if (token !== undefined && token === m.params?.progressToken) related = id;
    } else if (inFlight.size === 1) {
      related = inFlight.keys().next().value;
    }
    front.send(message, related === undefined ? undefined : { relatedRequestId: related }).catch((e: unknown) => onError('to front', e));
  };
  front.onclose = closeBoth;
  backend.onclose = closeBoth;
  front.onerror = (e) => onError('front', e);
  backend.onerror = (e) => onError('backend', e);
  await backend.start();
  await front.start();
}

export interface Front {
  /** http://127.0.0.1:PORT/mcp */
  url: string;
  /** HTTP sessions opened so far (one backend session each). */
  sessions(): number;
  /** Errors the relay saw (for the test's report; server-everything logs its own too). */
  errors: string[];
  close(): Promise<void>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}

const noSession = { jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: No valid session ID provided' } };

/** Starts the front; `backend()` opens one backend session per new HTTP session. */
export function startFront(backend: () => Promise<Transport> | Transport): Promise<Front> {
  return serveHttp(async (transport, onError) => relay(transport, await backend(), onError));
}

/**
 * The same HTTP handling with an in-process server connected straight to each session's
 * StreamableHTTPServerTransport: a server "over its own transport", as server-everything's
 * `streamableHttp` mode is, for servers that have no HTTP mode of their own.
 */
export function startOwnHttp(factory: () => { connect(transport: Transport): Promise<void> }): Promise<Front> {
  return serveHttp((transport) => factory().connect(transport));
}

async function serveHttp(attach: (transport: StreamableHTTPServerTransport, onError: (where: string, error: unknown) => void) => Promise<void>): Promise<Front> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const all = new Set<StreamableHTTPServerTransport>();
  const errors: string[] = [];
  let opened = 0;
  const onError = (where: string, error: unknown): void => void errors.push(`${where}: ${error instanceof Error ? error.message : String(error)}`);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // What the `cors` middleware adds in server-everything (origin *, exposed headers).
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'mcp-session-id,last-event-id,mcp-protocol-version');
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'GET,POST,DELETE');
      const asked = req.headers['access-control-request-headers'];
      if (asked) res.setHeader('Access-Control-Allow-Headers', asked);
      res.setHeader('Vary', 'Access-Control-Request-Headers');
      res.writeHead(204).end();
      return;
    }
    if (new URL(req.url ?? '/', 'http://front').pathname !== '/mcp' || !['GET', 'POST', 'DELETE'].includes(req.method ?? '')) {
      res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' }).end(`Cannot ${req.method} ${req.url}`);
      return;
    }
    const header = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(header) ? header[0] : header;
    const existing = sessionId === undefined ? undefined : transports.get(sessionId);
    if (req.method === 'POST' && sessionId === undefined) {
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: new InMemoryEventStore(),
        onsessioninitialized: (id) => void transports.set(id, transport),
      });
      all.add(transport);
      opened++;
      await attach(transport, onError);
      const previous = transport.onclose;
      transport.onclose = () => {
        if (transport.sessionId !== undefined) transports.delete(transport.sessionId);
        all.delete(transport);
        previous?.();
      };
      await transport.handleRequest(req, res);
      return;
    }
    if (existing === undefined) {
      json(res, 400, noSession);
      return;
    }
    await existing.handleRequest(req, res);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      onError('http', error);
      if (!res.headersSent) json(res, 500, { jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    sessions: () => opened,
    errors,
    async close() {
      await Promise.allSettled([...all].map((t) => t.close()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
