/**
 * The listener's options (PqmcpServerOptions, ServerTicketOptions), the server-only limits
 * resolved from them (per-agent sessions, the partial-message and request budgets, the
 * read-pause bound, the failure-report rate), their defaults, and the checks listen() runs
 * before it starts anything (InvalidArgumentError naming the option). The options both
 * sides share are in options.ts; the edge's (admission, rates, proxies) in edge.ts.
 *
 * Sharp edges:
 * - The receive and request budgets are made here, one per listener: every session of the
 *   listener shares them (receive-budget.ts, request-budget.ts).
 * - maxRequestBytesInFlightTotal 0 makes no RequestBudget at all (review 11, R11-8).
 * - `quotas` and `policy` run innermost, after the caller's `hooks` (withGates).
 */
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { InvalidArgumentError } from '../errors.js';
import { MAX_TIMER_MS, timerLimitText } from './timers.js';
import { checkTicketConfig } from '../handshake/resumption-config.js';
import { TicketReplayGuard } from '../resumption/replay.js';
import type { TicketKeys } from '../resumption/ticket-keys.js';
import { DEFAULTS } from './options.js';
import type { PqmcpTransportOptions, ResolvedOptions } from './options.js';
import { DEFAULT_MAX_READ_PAUSE_MS } from './server-transport.js';
import { ReceiveBudget } from './receive-budget.js';
import { RequestBudget } from './request-budget.js';
import type { EdgeOptions } from './edge.js';
import type { MessageHook } from './hook-api.js';
import { resolveFailureReports } from '../audit/failure-limiter.js';
import type { FailureReportOptions } from '../audit/failure-limiter.js';
import { checkAcceptedEndpoints } from '../handshake/endpoint.js';

export interface PqmcpServerOptions extends PqmcpTransportOptions, EdgeOptions {
  /** Interface to listen on (own server only). Default '127.0.0.1'. */
  host?: string;
  /** Port (own server only). Default 0: any free port (see `address()` / `url`). */
  port?: number;
  /** Attach to this existing HTTP(S) server instead of listening on a port of our own. */
  server?: HttpServer | HttpsServer;
  /** Only accept upgrades to this exact path (e.g. '/mcp'). Default: any path. */
  path?: string;

  // edge admission (issue 10): the EdgeOptions fields, documented in edge.ts

  // --- authorization and quotas (pqmcp/policy) ---
  /**
   * Authorization of every request (loadPolicy() from 'pqmcp/policy': Cedar). A message
   * hook that runs inside `hooks` (after them, nearest the MCP server), so an auditor in
   * `hooks` sees its refusals. Default: none (every verified agent may do anything).
   */
  policy?: MessageHook;
  /** Quotas per agent and issuer (createQuotas() from 'pqmcp/policy'). Runs between `hooks` and `policy`. */
  quotas?: MessageHook;

  // --- protocol revision (issue 11): endpoint binding ---
  /**
   * The endpoints this listener serves, checked against the one each client names in its
   * ClientHello (docs/protocol.md, section 5.7): full endpoints ("//mcp.example.com:8443/mcp",
   * "svc:billing") or "/path" for any authority with that path. A client naming another is
   * refused with endpoint_mismatch (ERR_ENDPOINT_MISMATCH, close 4030). Default: the
   * listener's `path`, or else the path of each upgrade request (so the authority is only
   * checked when you list it here).
   */
  endpoints?: string | readonly string[];

  // --- resumption (docs/protocol.md section 15) ---
  /**
   * Issue resumption tickets after each handshake and accept them: a returning client then
   * resumes with its ticket's PSK plus a fresh X-Wing exchange and no signatures. Servers
   * that share `keys` (a ticket key file) accept each other's tickets. Default: off.
   */
  tickets?: ServerTicketOptions;

  // --- session limits (issue 10) ---
  /**
   * Authenticated sessions one agent id may hold at once; one more is refused after its
   * handshake with alert tooManySessions (140) and close code 4020. Default 256; 0: no limit.
   */
  maxSessionsPerAgent?: number;
  /**
   * Bytes of partly received messages held across all sessions (receive-budget.ts): above
   * it, sessions whose partial message would grow stop reading (the oldest keeps going).
   * Default 256 MiB.
   */
  maxPartialMessageBytes?: number;
  /**
   * Bytes (JSON) of the clients' requests in flight across all sessions (request-budget.ts;
   * each session's own bound is maxRequestBytesInFlight). While the total is at or under it,
   * only the per-session bound applies; above it, a request that would take its agent (the
   * client's agent id) past its fair share (this / the agents holding requests), or its
   * session past an even part of that share (over the agent's sessions holding requests), is
   * refused with JSON-RPC -32005
   * (data { scope: 'listener' }; no figures to the peer) and reported with them (ERR_TOO_MANY_BYTES_IN_FLIGHT).
   * One agent's many sessions count as one agent: they cannot take another's share down.
   * Cancelled requests still held count with their full bytes. Default 256 MiB; 0: no limit.
   */
  maxRequestBytesInFlightTotal?: number;

  // --- consumer pauses (review F2; server-transport.ts pauseReading) ---
  /**
   * How long PqmcpServerTransport.pauseReading() may keep a session unread. Meanwhile the
   * keepalive does not judge the peer (its pong may be in what is not read); past this the
   * session ends with ReadPauseTimeoutError (ERR_READ_PAUSE_TIMEOUT, close code 4003).
   * Default 60 000 ms.
   */
  maxReadPauseMs?: number;

  // --- failure reports (review3 P4; src/audit/failure-limiter.ts) ---
  /**
   * Per-source rate of the reports of connections that fail before their peer is verified
   * (one `'clientError'` and one `handshake.failure` audit event each): per window, at most
   * `perSource` per client address (IPv6: per /64) and `total` over all are reported one by
   * one; the rest are counted and summarised at the window's end, one
   * `handshake.failure.summary` audit event and one `'failuresSuppressed'` event per source
   * (at most `maxSources`, the others together). Failures of verified peers are always
   * reported. Default { perSource: 20, windowMs: 10 000, total: 200, maxSources: 64 };
   * `false` (or perSource 0): every failure reported, at whatever rate strangers cause them.
   */
  failureReports?: FailureReportOptions | false;
}

export interface ServerTicketOptions {
  /** Ticket keys (TicketKeys.fromJSON of a key file, or TicketKeys.generate()). Swap with `setTicketKeys()` to rotate. */
  keys: TicketKeys;
  /** Ticket lifetime from the full handshake, seconds (1..604800). Default 43 200 (12 h). */
  lifetimeSeconds?: number;
  /** Tickets sent after each handshake (0..8). Default 1. */
  ticketsPerSession?: number;
  /** Tickets the anti-replay record holds at once; when full, resumption is refused (full handshakes). Default 100 000. */
  replayCapacity?: number;
  /**
   * Offered tickets above this many bytes are refused unopened (full handshake), and none
   * above it is issued (the session's transport then has `handshakeResult.ticketsWithheld`).
   * Default 8192, from 1024 to 17 408. Whatever it is, no ticket is issued that would not
   * fit the client's ClientHello (8,192 bytes): a client credential of 6,138 bytes or more
   * gets none.
   */
  maxTicketLength?: number;
  /** Live anti-replay entries one client agent may hold; past it only that agent gets full handshakes. Default replayCapacity / 16. */
  replayPerAgent?: number;
}

/** @internal Server-only limits, resolved. */
export interface ServerLimits {
  maxSessionsPerAgent: number;
  receiveBudget: ReceiveBudget;
  /** undefined: no bound over all sessions. */
  requestBudget: RequestBudget | undefined;
  maxReadPauseMs: number;
  /** undefined: every failure reported. */
  failureReports: Required<FailureReportOptions> | undefined;
}

const DEFAULT_MAX_SESSIONS_PER_AGENT = 256;
const DEFAULT_MAX_PARTIAL_MESSAGE_BYTES = 256 * 1024 * 1024;
/**
 * All sessions' requests in flight: the size of the partial-message budget, 16 sessions'
 * full default bound (16 MiB), or thousands of ordinary requests per session for dozens of
 * sessions; with its fair share (per agent) it bounds the listener's request memory at about
 * 1 GiB for 32 sessions (request-budget.ts), without refusing a light client.
 */
export const DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT_TOTAL = 256 * 1024 * 1024;

export function resolveServerLimits(options: PqmcpServerOptions): ServerLimits {
  const perAgent = options.maxSessionsPerAgent ?? DEFAULT_MAX_SESSIONS_PER_AGENT;
  if (!Number.isSafeInteger(perAgent) || perAgent < 0) throw new InvalidArgumentError('maxSessionsPerAgent must be a non-negative integer (0: no limit)');
  const partial = options.maxPartialMessageBytes ?? DEFAULT_MAX_PARTIAL_MESSAGE_BYTES;
  if (!Number.isSafeInteger(partial) || partial < 0) throw new InvalidArgumentError('maxPartialMessageBytes must be a non-negative integer');
  const total = options.maxRequestBytesInFlightTotal ?? DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT_TOTAL;
  if (!Number.isSafeInteger(total) || total < 0) throw new InvalidArgumentError('maxRequestBytesInFlightTotal must be a non-negative integer (0: no limit)');
  const maxReadPauseMs = options.maxReadPauseMs ?? DEFAULT_MAX_READ_PAUSE_MS;
  if (!Number.isSafeInteger(maxReadPauseMs) || maxReadPauseMs < 1) throw new InvalidArgumentError('maxReadPauseMs must be a positive integer of milliseconds');
  if (maxReadPauseMs > MAX_TIMER_MS) throw new InvalidArgumentError(timerLimitText('maxReadPauseMs'));
  const failureReports = resolveFailureReports(options.failureReports);
  return { maxSessionsPerAgent: perAgent, receiveBudget: new ReceiveBudget(partial), requestBudget: total > 0 ? new RequestBudget(total) : undefined, maxReadPauseMs, failureReports };
}

/** The quotas and policy hooks, innermost: peer <-> hooks <-> quotas <-> policy <-> MCP server. */
export function withGates(resolved: ResolvedOptions, options: PqmcpServerOptions): ResolvedOptions {
  const gates: MessageHook[] = [];
  for (const name of ['quotas', 'policy'] as const) {
    const hook = options[name];
    if (hook === undefined) continue;
    if (typeof hook !== 'object' || hook === null) throw new InvalidArgumentError(`${name} must be a MessageHook (see pqmcp/policy)`);
    gates.push(hook);
  }
  return gates.length === 0 ? resolved : { ...resolved, hooks: Object.freeze([...resolved.hooks, ...gates]) };
}

function checkServerTicketOptions(t: ServerTicketOptions): void {
  if (typeof t !== 'object' || t === null) throw new InvalidArgumentError('tickets must be an object');
  // The per-connection fields (replay, endpoint) are filled in by the listener; check the rest once.
  checkTicketConfig({ keys: t.keys, replay: new TicketReplayGuard(t.replayCapacity, t.replayPerAgent), endpoint: '/', ...(t.lifetimeSeconds !== undefined ? { lifetimeSeconds: t.lifetimeSeconds } : {}), ...(t.ticketsPerSession !== undefined ? { ticketsPerSession: t.ticketsPerSession } : {}), ...(t.maxTicketLength !== undefined ? { maxTicketLength: t.maxTicketLength } : {}) });
}

/** The listener's own checks (after resolveOptions and resolveServerLimits): throws InvalidArgumentError. */
export function checkListenOptions(options: PqmcpServerOptions): void {
  const maxPending = options.maxPendingHandshakes ?? DEFAULTS.maxPendingHandshakes;
  if (!Number.isInteger(maxPending) || maxPending < 1) throw new InvalidArgumentError('maxPendingHandshakes must be a positive integer');
  if (options.path !== undefined && (typeof options.path !== 'string' || !options.path.startsWith('/'))) {
    throw new InvalidArgumentError('path must start with "/"');
  }
  if (options.server !== undefined && (options.port !== undefined || options.host !== undefined)) {
    throw new InvalidArgumentError('give either server (attach to it) or host/port (own server), not both');
  }
  if (options.endpoints !== undefined) checkAcceptedEndpoints(options.endpoints, 'endpoints');
  if (options.tickets !== undefined) checkServerTicketOptions(options.tickets);
  if (options.proxyProtocol && options.server !== undefined) {
    throw new InvalidArgumentError('proxyProtocol needs the listener\'s own port (host/port), not server: the PROXY header is read before any HTTP');
  }
}
