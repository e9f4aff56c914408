/**
 * The client transport's own options (PqmcpClientOptions, PqmcpWebSocketOptions) and their
 * checks: which server the client accepts (expectedServerId, serverIdConstraints, or an
 * explicit allowAnyServer, warned about once per process), the ticket store, where its
 * tickets are kept (ticketStoreKey) and how many one connection keeps. The options both
 * sides share are in options.ts.
 *
 * Sharp edges:
 * - allowAnyServer's SecurityWarning is one per process (process.emitWarning, else
 *   console.warn); a caller that warns in its own words first calls anyServerWarningGiven().
 * - A ticket is kept under the server id the client expects and the URL's origin and path:
 *   a ticket from one server is never offered to another name.
 */
import type { Agent } from 'node:http';
import type { SecureContextOptions } from 'node:tls';
import { InvalidArgumentError } from '../errors.js';
import { normaliseNameConstraints } from '../identity/name-constraints.js';
import type { PqmcpTransportOptions } from './options.js';
import type { BusyRetryEvent, BusyRetryOptions } from './busy-retry.js';
import type { TicketStore } from '../resumption/client-tickets.js';

export interface PqmcpClientOptions extends PqmcpTransportOptions {
  /**
   * Refuse the server unless its attested agent id is exactly this. Required unless
   * `allowAnyServer` is set: a trust store says "a trusted issuer vouched for this agent",
   * not "this is the server I meant" (the hostname check of TLS).
   */
  expectedServerId?: string;
  // --- roles and name constraints (issue 11 item 3; docs/protocol.md 6.5) ---
  /**
   * Refuse the server unless its agent id is within one of these id prefixes (the syntax of
   * trust-store name constraints, docs/protocol.md 6.4): "agent://acme/tools/" accepts
   * "agent://acme/tools/eu-1" and its siblings, "agent://acme/tools" also that id itself.
   * For a pool of replicas with their own ids. Outside: NameConstraintError (alert 102).
   * With expectedServerId, both apply.
   */
  serverIdConstraints?: readonly string[];
  /**
   * Accept any server agent the trust store accepts. Only for closed deployments where
   * every trusted agent may serve: any credential a trusted issuer gave a server (with
   * usage server or both) can then answer for every URL. Emits a one-time process warning
   * (code PQMCP_ALLOW_ANY_SERVER). Not together with expectedServerId or serverIdConstraints.
   */
  allowAnyServer?: boolean;
  // --- protocol revision (issue 11): endpoint binding ---
  /**
   * The endpoint this client means, sent in the ClientHello and checked by the server
   * (docs/protocol.md, section 5.7): "//authority/path" or a service name ("svc:billing").
   * Default: "//" + the URL's host[:port] + its path. Set it when you dial through a proxy or
   * tunnel under another name than the one the server answers for.
   */
  endpoint?: string;
  /** Extra HTTP headers for the WebSocket upgrade request. */
  headers?: Record<string, string>;
  /**
   * Further `ws` client options (TLS `ca`, `agent`, `family`...). pqmcp fixes
   * perMessageDeflate (off), maxPayload (option above) and the subprotocol.
   */
  webSocketOptions?: PqmcpWebSocketOptions;

  // --- resumption (docs/protocol.md section 15) ---
  /**
   * Keep the server's resumption tickets here and offer one on the next connection to the
   * same server id and URL: a resumed handshake makes no signatures (PSK + fresh X-Wing).
   * Share one `MemoryTicketStore` between the transports of a process. Default: none.
   * Leave it unset for a server that must always authenticate with its signature: a ticket
   * key holder can impersonate a server to a resuming client (docs/threat-model.md).
   */
  tickets?: TicketStore;

  // --- busy retry (issue 10; busy-retry.ts) ---
  /**
   * Retry a server that refuses the connection as busy (ERR_SERVER_BUSY: close code 4006,
   * alert server_busy, or HTTP 429/503 to the upgrade) before the handshake completed, with bounded, jittered exponential backoff. Default
   * { attempts: 5, baseDelayMs: 250, maxDelayMs: 5000 }; `false` disables it.
   */
  busyRetry?: false | BusyRetryOptions;
  /** Hears of each retry of a busy server (attempt, delay, the refusal) before it waits. */
  onBusyRetry?: (event: BusyRetryEvent) => void;
}

/** NewSessionTickets a client keeps from one connection (a server sends 1 by default, at most 8). */
export const MAX_TICKETS_PER_CONNECTION = 8;

/** The key a client's tickets are kept under: the server id it expects and the endpoint URL. */
export function ticketStoreKey(url: URL, expectedServerId: string | undefined): string {
  return `${expectedServerId ?? '*'} ${url.origin}${url.pathname}`;
}


let warnedAnyServer = false;

/**
 * For a caller that warns about allowAnyServer itself, in its own words (the `pqmcp connect`
 * bridge, about --any-server): the library's one-time SecurityWarning is then not emitted,
 * so one choice gives one warning. Not exported from the package.
 */
export function anyServerWarningGiven(): void {
  warnedAnyServer = true;
}

/** The one-time warning of allowAnyServer (process.emitWarning where there is a process, else console.warn). */
function warnAnyServer(): void {
  if (warnedAnyServer) return;
  warnedAnyServer = true;
  const text = 'pqmcp: allowAnyServer is set: this client accepts ANY server its trust store vouches for, for every URL. Set expectedServerId or serverIdConstraints unless every trusted agent may serve.';
  const proc = (globalThis as { process?: { emitWarning?: (warning: string, options: { code: string; type: string }) => void } }).process;
  if (typeof proc?.emitWarning === 'function') proc.emitWarning(text, { code: 'PQMCP_ALLOW_ANY_SERVER', type: 'SecurityWarning' });
  else console.warn(text);
}

/**
 * Which server the client accepts: expectedServerId and/or serverIdConstraints, or an
 * explicit allowAnyServer (warned about once per process). Returns the normalised constraints.
 */
export function checkServerChoice(options: PqmcpClientOptions): readonly string[] | undefined {
  const { expectedServerId, serverIdConstraints, allowAnyServer } = options;
  if (allowAnyServer !== undefined && typeof allowAnyServer !== 'boolean') throw new InvalidArgumentError('allowAnyServer must be a boolean');
  if (expectedServerId !== undefined && typeof expectedServerId !== 'string') throw new InvalidArgumentError('expectedServerId must be a string');
  const constraints = serverIdConstraints === undefined ? undefined : normaliseNameConstraints(serverIdConstraints, 'serverIdConstraints');
  const named = expectedServerId !== undefined || constraints !== undefined;
  if (allowAnyServer === true) {
    if (named) throw new InvalidArgumentError('give expectedServerId or serverIdConstraints, or allowAnyServer: true, not both');
    warnAnyServer();
  } else if (!named) {
    throw new InvalidArgumentError(
      'set expectedServerId to the server agent id, or serverIdConstraints to the ids you accept (or allowAnyServer: true to accept any agent your trust store accepts)',
    );
  }
  return constraints;
}


/**
 * The `ws` client options pqmcp passes through (a `ws` ClientOptions object without
 * perMessageDeflate, maxPayload and headers is assignable). Declared here so the published
 * types do not need `@types/ws`.
 */
export interface PqmcpWebSocketOptions extends SecureContextOptions {
  agent?: Agent;
  family?: number;
  localAddress?: string;
  origin?: string;
  followRedirects?: boolean;
  maxRedirects?: number;
  handshakeTimeout?: number;
  rejectUnauthorized?: boolean;
  protocolVersion?: number;
  skipUTF8Validation?: boolean;
}

/** The `tickets` option: a TicketStore, or unset. */
export function checkTicketStore(tickets: TicketStore | undefined): void {
  const t = tickets as Partial<TicketStore> | undefined;
  if (t !== undefined && (typeof t !== 'object' || t === null || typeof t.take !== 'function' || typeof t.put !== 'function')) {
    throw new InvalidArgumentError('tickets must be a TicketStore (e.g. new MemoryTicketStore())');
  }
}
