/**
 * `pqmcp serve`: the gateway. Puts any stdio MCP server behind pqmcp.
 *
 *   pqmcp serve --identity <key> --trust <trust file> --listen 127.0.0.1:7443 -- <command> [args...]
 *
 * Per verified session it spawns the command (or, with --shared, uses one child for all
 * sessions) and relays JSON-RPC both ways through a Router (router.ts). Logs go to stderr:
 * listening address, each session's verified agent id, key fingerprint prefix and issuer at
 * start; messages each way, duration and reason at end; the child's own stderr, prefixed
 * with the session tag.
 *
 * Sharp edges:
 * - Admission (--allow-id, --require-scope, --require-attr, --max-sessions) is checked after
 *   the handshake, before any child is spawned: a refused agent gets a JSON-RPC error for
 *   its initialize ("not admitted ...") and the session is closed. No process ever starts
 *   for it.
 * - Each per-session child gets the verified peer in its environment: PQMCP_PEER_ID,
 *   PQMCP_PEER_FINGERPRINT, PQMCP_PEER_ISSUER, PQMCP_PEER_SCOPES (space separated),
 *   PQMCP_SESSION_ID. (Not in --shared mode: there one child serves many agents.)
 * - A child that exits ends only its session(s): each request in flight gets a JSON-RPC
 *   error, the client gets a log notification saying why, the session is closed. The
 *   gateway keeps serving; a --shared child is started again for the next session.
 * - A session ends when either credential expires, after --max-session-lifetime, and when
 *   the trust changes so that its peer is no longer trusted (the library's session guard).
 *   SIGHUP re-reads the trust file and the --revocations files into the live trust store
 *   (TrustStore.replaceWith): sessions whose peer is no longer trusted get a log
 *   notification and end with an alert.
 * - A child that reads its stdin slowly or not at all: the gateway stops reading each session
 *   that has more than its share of the child's stdin budget queued there, until the child
 *   has read it (stdin-share.ts): what clients send is not buffered here without bound, and
 *   with --shared one tenant's flood pauses only that tenant. The keepalive does not judge a
 *   session the gateway holds; --max-read-pause (default 60s) ends one held longer. A
 *   session's requests in flight hold at most --max-request-bytes-in-flight bytes, and all
 *   sessions' together --max-request-bytes-in-flight-total past which an agent at its fair
 *   share is refused (the listener refuses with -32005; request-budget.ts).
 * - Connection failures are logged at most 20 per 10 s; the rest are summarised once per
 *   window by error code (log-limiter.ts): a flood cannot flood the log.
 * - SIGHUP also re-reads --policy and --quotas (serve-policy.ts; a bad file keeps the old one).
 *   SIGINT/SIGTERM: stop accepting, close sessions (authenticated close), stop children;
 *   a second signal exits at once.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { describeBackend } from '../crypto/select.js';
import type { BackendChoice } from '../crypto/select.js';
import { CredentialUsageError, PqmcpError, ProxyProtocolError } from '../errors.js';
import type { TrustStore, VerifiedPeer } from '../identity/trust.js';
import { listen } from '../transport/server.js';
import type { PqmcpServer } from '../transport/server.js';
import type { PqmcpServerTransport } from '../transport/server-transport.js';
import { MAX_TIMER_MS } from '../transport/timers.js';
import { EDGE_OPTIONS, EDGE_USAGE, edgeOptions } from './edge-flags.js';
import { REQUEST_BYTES_RANGE, flag, integerFlag, list, padded, parse, parseDuration, parseHostPort, parseKeyValue, str, required } from './args.js';
import { LogLimiter } from './log-limiter.js';
import { openObservability } from './observe.js';
import type { Context } from './context.js';
import { StdioChild, describeExit } from './child.js';
import { StdinShares } from './stdin-share.js';
import { loadTrustStore } from '../identity/files.js';
import { loadOwnIdentity } from './files.js';
import { CredentialWatch, reloadOwnCredential } from './credential-watch.js';
import { CliError, UsageError, asUsage, errorLine, humanDuration, isoTime, jsonText, printable } from './output.js';
import { checkAcceptedEndpoints } from '../handshake/endpoint.js';
import { Router } from './router.js';
import { admissionProblem, notAdmittedAnswer } from './admission.js';
import type { Admission } from './admission.js';
export { admissionProblem } from './admission.js';
export type { Admission } from './admission.js';
import type { RouterPeer } from './router.js';
import { POLICY_SERVE_OPTIONS, POLICY_SERVE_USAGE, describeGates, loadGates } from './serve-policy.js';
import { TICKET_SERVE_OPTIONS, TICKET_SERVE_USAGE, readTicketKeys, serveTicketLifetime, serveTicketOptions } from './tickets.js';

export const SERVE_USAGE = `pqmcp serve --identity <key file> --trust <trust file> [options] -- <command> [args...]

  Gateway: accept pqmcp clients and relay each verified session to a stdio MCP server
  started from <command> (one process per session, or one shared with --shared).

  --identity <file>        this gateway's private key file (<name>.key.json)
  --credential <file>      its credential (default: <name>.cred.json beside the key); re-read on SIGHUP:
                           a renewed one (same key and id) is presented to new handshakes
  --trust <file>           issuers (and pins) whose agents may connect
  --revocations <file>     revocation list, repeatable (re-read on SIGHUP)
  --listen <host:port>     address to listen on (default 127.0.0.1:7443; port 0 = any free)
  --path </path>           only accept WebSocket upgrades on this path (default: any)
  --endpoint <endpoint>    an endpoint clients may name in the handshake, repeatable:
                           //host[:port]/path, /path (any authority) or svc:<name>
                           (default: the --path, else the request path; docs/protocol.md 5.7)
  --shared                 one child for all sessions (ids rewritten per session; see docs/cli.md)
  --allow-id <id>          admit only these agent ids, repeatable; a trailing * matches a prefix
  --require-scope <scope>  admit only agents whose credential has this scope, repeatable (all needed)
  --require-attr <k=v>     admit only agents whose credential has this attribute value, repeatable
  --max-sessions <n>       concurrent sessions (default 32); more are refused
  --max-sessions-per-agent <n>   sessions one agent id may hold (default 256; 0 = no limit)
  --max-session-lifetime <dur>   end each session after this long (90s, 15m, 12h...; default: none)
  --key-update-rate <rate>[/<burst>]  KeyUpdates per second a session's peer may force beyond its
                           automatic ones, <burst> at once (default 10/32; off = no ration)
  --max-request-bytes-in-flight <n>  bytes of one session's requests the MCP server has not
                           answered yet; past it a request is refused with JSON-RPC -32005
                           (default 16777216 = 16 MiB; one request always fits; 0 = no limit)
  --max-request-bytes-in-flight-total <n>  the same over all sessions: past it a request is
                           refused (-32005) if it takes its agent past its fair share
                           (n / the agents holding requests, split over the agent's
                           sessions) (default 268435456 = 256 MiB;
                           0 = no limit; docs/cli.md)
  --max-read-pause <dur>   a session the gateway stops reading (its MCP server has not read
                           its share of what the session sent) is not judged by the keepalive
                           meanwhile; past this it is closed (default 60s; docs/cli.md)
                           (this, the two below and --failure-log's window: at most 24d)
  --keepalive <dur>|off    ping each session this often (default 30s)
  --keepalive-timeout <dur>  close a session whose pong is this late (default 10s)
  --failure-log <n>/<dur>  connection failures logged one by one per window (default 20/10s);
                           the rest are summarised by error code at the end of the window
  --failure-reports <n>/<dur>  failures of unverified peers reported one by one per source
                           address and window, on the log and in the audit trail (default
                           20/10s, at most 10n over all sources); the rest are counted in one
                           handshake.failure.summary audit event per source; off = every one
${POLICY_SERVE_USAGE}
${TICKET_SERVE_USAGE}
  --backend <name>         crypto backend: auto (default), native or noble
  --allow-loose-key-permissions  accept a key file others can read

  Observability (audit, metrics, drain):
  --audit <dir>            write hash-chained audit files there (pqmcp audit verify|report)
  --audit-max-bytes <n>    start a new audit file before one exceeds n bytes (default 64 MiB)
  --audit-rotate <dur>     also start a new audit file this often (e.g. 1h, 1d)
  --audit-content          put tool arguments and results in the audit events (default: hashes)
  --metrics <host:port>    serve /metrics (Prometheus), /healthz and /readyz there
  --metrics-agent-ids      label request metrics with agent ids (one series per agent)
  --drain-grace <dur>      on SIGTERM/SIGINT, wait this long for requests in flight (default 10s)

  --json                   log JSON lines on stderr
  --debug                  stack traces${EDGE_USAGE}`;

export const SERVE_OPTIONS = {
  identity: { type: 'string' },
  credential: { type: 'string' },
  trust: { type: 'string' },
  revocations: { type: 'string', multiple: true },
  listen: { type: 'string' },
  path: { type: 'string' },
  // --- endpoint binding (issue 11) ---
  endpoint: { type: 'string', multiple: true },
  shared: { type: 'boolean' },
  'allow-id': { type: 'string', multiple: true },
  'require-scope': { type: 'string', multiple: true },
  'require-attr': { type: 'string', multiple: true },
  'max-sessions': { type: 'string' },
  // session limits (issue 10)
  'max-sessions-per-agent': { type: 'string' },
  'max-session-lifetime': { type: 'string' },
  'key-update-rate': { type: 'string' },
  // request bytes in flight (issue 10 item 3)
  'max-request-bytes-in-flight': { type: 'string' },
  'max-request-bytes-in-flight-total': { type: 'string' },
  // the stdin share's pauses and the keepalive (review F2; stdin-share.ts)
  'max-read-pause': { type: 'string' },
  keepalive: { type: 'string' },
  'keepalive-timeout': { type: 'string' },
  'failure-log': { type: 'string' },
  // failure reports (review3 P4)
  'failure-reports': { type: 'string' },
  backend: { type: 'string' },
  'allow-loose-key-permissions': { type: 'boolean' },
  // authorization and quotas (serve-policy.ts)
  ...POLICY_SERVE_OPTIONS,
  // resumption (tickets.ts)
  ...TICKET_SERVE_OPTIONS,
  // --- observability (audit, metrics, drain) ---
  audit: { type: 'string' },
  'audit-max-bytes': { type: 'string' },
  'audit-rotate': { type: 'string' },
  'audit-content': { type: 'boolean' },
  metrics: { type: 'string' },
  'metrics-agent-ids': { type: 'boolean' },
  'drain-grace': { type: 'string' },
  // edge admission (edge-flags.ts)
  ...EDGE_OPTIONS,
} as const;

const DEFAULT_LISTEN = '127.0.0.1:7443';
const DEFAULT_MAX_SESSIONS = 32;
const DEFAULT_DRAIN_GRACE_MS = 10_000;
/** Outstanding session writes above which the child's stdout is paused. */
const PAUSE_ABOVE = 256;
const RESUME_BELOW = 64;
/** A refused session is closed after answering its first request, or after this. */
const REFUSE_CLOSE_MS = 5_000;

/**
 * "--key-update-rate 10/32": the peer's KeyUpdates per second per session (a number > 0) and
 * how many at once (an integer >= 1; default 32); "off": no ration (Infinity).
 */
export function parseKeyUpdateRate(text: string): number | { rate: number; burst?: number } {
  if (text === 'off') return Number.POSITIVE_INFINITY;
  const m = /^(\d+(?:\.\d+)?)(?:\/(\d+))?$/.exec(text);
  const rate = m ? Number(m[1]) : NaN;
  const burst = m?.[2] === undefined ? undefined : Number(m[2]);
  if (!(rate > 0) || (burst !== undefined && !(Number.isSafeInteger(burst) && burst >= 1))) {
    throw new UsageError(`--key-update-rate must be <rate>[/<burst>] (rate > 0 a second, burst an integer >= 1) or off, e.g. 10/32; got ${JSON.stringify(text)}`);
  }
  return burst === undefined ? { rate } : { rate, burst };
}

/** "--failure-log 20/10s": lines per window and the window. */
export function parseFailureLog(text: string): { burst: number; windowMs: number } {
  const m = /^(\d+)\/(.+)$/.exec(text);
  if (!m || padded(text) || !Number.isSafeInteger(Number(m[1]))) throw new UsageError(`--failure-log must be <lines>/<duration>, e.g. 20/10s; got ${JSON.stringify(text)}`);
  const windowMs = parseDuration(m[2]!, '--failure-log window') * 1000;
  // The window's setInterval: Node runs a longer one after 1 ms (every window 1 ms long, no limit at all).
  if (windowMs > MAX_TIMER_MS) throw new UsageError(`--failure-log window must be at most 24d (${Math.floor(MAX_TIMER_MS / 1000)}s, the timers' limit); got ${JSON.stringify(text)}`);
  return { burst: Number(m[1]), windowMs };
}

/** "--failure-reports 20/10s" (failures per source and window) or "off". */
export function parseFailureReports(text: string): { perSource: number; windowMs: number } | false {
  if (text === 'off') return false;
  const m = /^(\d+)\/(.+)$/.exec(text);
  const perSource = m ? Number(m[1]) : NaN;
  if (!m || padded(text) || !(Number.isSafeInteger(perSource) && perSource >= 1)) throw new UsageError(`--failure-reports must be <failures>/<duration> (failures >= 1) or off, e.g. 20/10s; got ${JSON.stringify(text)}`);
  const windowMs = parseDuration(m[2]!, '--failure-reports window') * 1000;
  if (!(windowMs >= 1000 && windowMs <= 86_400_000)) throw new UsageError(`--failure-reports window must be from 1s to 1d; got ${JSON.stringify(text)}`);
  return { perSource, windowMs };
}

/** Fail early (exit 2) when the child command cannot be found at all. */
export function checkCommand(command: string): void {
  const executable = (path: string): boolean => {
    try {
      if (!statSync(path).isFile()) return false;
      if (process.platform !== 'win32') accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (command.includes('/') || command.includes('\\') || isAbsolute(command)) {
    if (!executable(command)) throw new CliError('ERR_CHILD', `MCP server command not found or not executable: ${command}`);
    return;
  }
  const exts = process.platform === 'win32' ? ['', ...(process.env['PATHEXT'] ?? '.EXE;.CMD;.BAT').split(';')] : [''];
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    for (const ext of exts) if (executable(join(dir, command + ext))) return;
  }
  throw new CliError('ERR_CHILD', `MCP server command not found in PATH: ${command}`);
}

interface Logger {
  (event: string, fields: Record<string, unknown>, human: string): void;
}

function makeLogger(ctx: Context): Logger {
  return (event, fields, human) => {
    const time = new Date().toISOString();
    if (ctx.json) ctx.output.err(jsonText({ time, event, ...fields }));
    else ctx.output.err(`${time} pqmcp serve: ${printable(human)}`);
  };
}

/** A child process with its router (per session, or the shared one). */
interface ChildSlot {
  child: StdioChild;
  router: Router;
  /** Session writes not yet accepted by their transports (for stdout backpressure). */
  outstanding: number;
  paused: boolean;
  /** Each session's bytes queued in the child's stdin, and who is paused for it. */
  shares: StdinShares<PqmcpServerTransport>;
  /** The session whose message the router is passing to the child now. */
  writer: PqmcpServerTransport | undefined;
}

interface LiveSession {
  transport: PqmcpServerTransport;
  peer: VerifiedPeer;
  tag: string;
  slot: ChildSlot | undefined;
  routerPeer: RouterPeer;
  endReason: string | undefined;
  /** Ids of the client's requests not yet answered (drain waits for them). */
  inflight: Set<string | number>;
}

export async function serveCommand(ctx: Context, argv: string[]): Promise<number> {
  const p = parse(argv, SERVE_OPTIONS, 'serve');
  if (flag(p, 'help')) return ctx.help(SERVE_USAGE);
  if (p.positionals.length > 0) throw new UsageError(`serve: unexpected argument ${JSON.stringify(p.positionals[0])}; put the MCP server command after "--"`);
  const childArgv = p.rest ?? [];
  if (childArgv.length === 0 || childArgv[0] === '') throw new UsageError('serve: missing the MCP server command: pqmcp serve [options] -- <command> [args...]');
  const [command, ...commandArgs] = childArgv as [string, ...string[]];
  const keyPath = required(p, 'identity', 'serve');
  const trustPath = required(p, 'trust', 'serve');
  const { host, port } = parseHostPort(str(p, 'listen') ?? DEFAULT_LISTEN, '--listen');
  const path = str(p, 'path');
  if (path !== undefined && !path.startsWith('/')) throw new UsageError('--path must start with "/"');
  const endpointList = list(p, 'endpoint');
  const endpoints = endpointList.length > 0 ? asUsage(() => checkAcceptedEndpoints(endpointList, '--endpoint')) : undefined;
  const maxSessions = integerFlag(p, 'max-sessions', { min: 1 }) ?? DEFAULT_MAX_SESSIONS;
  const backendChoice = str(p, 'backend');
  if (backendChoice !== undefined && !['auto', 'native', 'noble'].includes(backendChoice)) throw new UsageError('--backend must be auto, native or noble');
  const admission: Admission = {
    allowIds: list(p, 'allow-id'),
    scopes: list(p, 'require-scope'),
    attributes: list(p, 'require-attr').map((a) => parseKeyValue(a, '--require-attr')),
  };
  // session limits (issue 10)
  const maxSessionsPerAgent = integerFlag(p, 'max-sessions-per-agent', { min: 0, unit: '0 = no limit' });
  const lifetimeText = str(p, 'max-session-lifetime');
  const maxSessionLifetimeMs = lifetimeText === undefined ? undefined : parseDuration(lifetimeText, '--max-session-lifetime') * 1000;
  const keyUpdateRateText = str(p, 'key-update-rate');
  const keyUpdateRate = keyUpdateRateText === undefined ? undefined : parseKeyUpdateRate(keyUpdateRateText);
  // request bytes in flight (issue 10 item 3)
  const maxRequestBytesInFlight = integerFlag(p, 'max-request-bytes-in-flight', REQUEST_BYTES_RANGE);
  const maxRequestBytesInFlightTotal = integerFlag(p, 'max-request-bytes-in-flight-total', REQUEST_BYTES_RANGE);
  const seconds = (name: string, off = false): number | undefined => {
    const text = str(p, name);
    if (text === undefined) return undefined;
    if (off && text === 'off') return 0;
    const ms = parseDuration(text, `--${name}`) * 1000;
    // Node runs a longer timer after 1 ms (R10-0): 24d is the largest whole-day duration below it.
    if (ms > MAX_TIMER_MS) throw new UsageError(`--${name} must be at most 24d (${Math.floor(MAX_TIMER_MS / 1000)}s, the timers' limit); got ${JSON.stringify(text)}`);
    return ms;
  };
  const maxReadPauseMs = seconds('max-read-pause');
  const keepAliveMs = seconds('keepalive', true);
  const keepAliveTimeoutMs = seconds('keepalive-timeout');
  const failureLog = parseFailureLog(str(p, 'failure-log') ?? '20/10s');
  const failureReportsText = str(p, 'failure-reports');
  const failureReports = failureReportsText === undefined ? undefined : parseFailureReports(failureReportsText);
  const shared = flag(p, 'shared');
  const edge = edgeOptions(p);
  const revocationPaths = list(p, 'revocations');
  // --- observability (audit, metrics, drain) ---
  const auditMaxBytes = integerFlag(p, 'audit-max-bytes', { min: 1024, unit: 'bytes' });
  const auditRotate = str(p, 'audit-rotate');
  const auditMaxAgeMs = auditRotate === undefined ? undefined : parseDuration(auditRotate, '--audit-rotate') * 1000;
  const metricsText = str(p, 'metrics');
  const metricsAddress = metricsText === undefined ? undefined : parseHostPort(metricsText, '--metrics');
  const drainGraceText = str(p, 'drain-grace');
  const drainGraceMs = drainGraceText === undefined ? DEFAULT_DRAIN_GRACE_MS : drainGraceText === '0' ? 0 : parseDuration(drainGraceText, '--drain-grace') * 1000;
  // Read again by serveTicketOptions with the ticket key file: checked here, before anything loads.
  serveTicketLifetime(p);

  const backend = ctx.backend(backendChoice as BackendChoice | undefined);
  const ownFiles = { keyPath, credentialPath: str(p, 'credential') };
  const local = await loadOwnIdentity(backend, keyPath, ownFiles.credentialPath, flag(p, 'allow-loose-key-permissions'));
  /** The credential new handshakes present (renewed on SIGHUP: credential-watch.ts). */
  let ownCredential = local.credential.encoded;
  let ownNotAfter = local.credential.notAfter;
  const trust: TrustStore = await loadTrustStore(trustPath, { revocations: revocationPaths });
  const resumption = serveTicketOptions(p, flag(p, 'allow-loose-key-permissions'));
  checkCommand(command);
  const log = makeLogger(ctx);
  let draining = false;
  const observe = await openObservability({
    auditDir: str(p, 'audit'),
    auditMaxBytes,
    auditMaxAgeMs,
    metrics: metricsAddress,
    metricsAgentIds: flag(p, 'metrics-agent-ids'),
    // Past its own credential's end no handshake completes (every client refuses it): not ready.
    notReady: () => (draining || shuttingDown ? 'draining' : Date.now() / 1000 > ownNotAfter ? 'credential expired' : undefined),
    credentialNotAfter: () => ownNotAfter,
    log,
  });
  const audit = observe.onAuditEvent ? { onAuditEvent: observe.onAuditEvent, auditContent: flag(p, 'audit-content'), auditHashes: observe.auditHashes } : {};
  // Authorization and quotas (--policy, --quotas): loaded before listening; a bad file stops here.
  const gates = await loadGates(p, ctx.output, log).catch(async (err: unknown) => {
    await observe.close();
    throw err;
  });

  let server: PqmcpServer;
  try {
    server = await listen({
      identity: local,
      trust,
      // By name (the selector's instance for it): a backend object would keep the handshake
      // crypto on the event loop, since worker threads rebuild their backend by name.
      backend: backend.name,
      host,
      port,
      ...(path !== undefined ? { path } : {}),
      ...(endpoints !== undefined ? { endpoints } : {}),
      ...audit,
      ...gates.options,
      ...edge,
      // session limits (issue 10)
      ...(maxSessionsPerAgent !== undefined ? { maxSessionsPerAgent } : {}),
      ...(maxSessionLifetimeMs !== undefined ? { maxSessionLifetimeMs } : {}),
      ...(keyUpdateRate !== undefined ? { keyUpdateRate } : {}),
      // request bytes in flight (issue 10 item 3)
      ...(maxRequestBytesInFlight !== undefined ? { maxRequestBytesInFlight } : {}),
      ...(maxRequestBytesInFlightTotal !== undefined ? { maxRequestBytesInFlightTotal } : {}),
      ...(maxReadPauseMs !== undefined ? { maxReadPauseMs } : {}),
      ...(keepAliveMs !== undefined ? { keepAliveMs } : {}),
      ...(keepAliveTimeoutMs !== undefined ? { keepAliveTimeoutMs } : {}),
      // failure reports (review3 P4)
      ...(failureReports !== undefined ? { failureReports } : {}),
      // resumption (tickets.ts)
      ...(resumption.tickets ? { tickets: resumption.tickets } : {}),
    });
  } catch (err) {
    if (err instanceof CredentialUsageError) {
      // Not a listening problem: this gateway's own credential may not serve (issue 11).
      await observe.close();
      gates.close();
      throw err;
    }
    const code = (err as { cause?: { code?: string } }).cause?.code;
    const reason = code === 'EADDRINUSE' ? 'address already in use (another process, perhaps another gateway, listens there: stop it or choose another --listen port)' : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'address not available on this machine' : err instanceof Error ? err.message : 'error';
    await observe.close();
    gates.close();
    throw new CliError('ERR_LISTEN', `cannot listen on ${host}:${port}: ${reason}`, 1, { cause: err });
  }

  let credentialWatch: CredentialWatch | undefined;
  const sessions = new Set<LiveSession>();
  /** Children being stopped (awaited at shutdown). */
  const stopping = new Set<Promise<unknown>>();
  const stopChild = (child: StdioChild): void => {
    const p = child.stop().finally(() => stopping.delete(p));
    stopping.add(p);
  };
  let sharedSlot: ChildSlot | undefined;
  let shuttingDown = false;

  const sessionEnv = (s: LiveSession): NodeJS.ProcessEnv => ({
    ...process.env,
    PQMCP_PEER_ID: s.peer.agentId,
    PQMCP_PEER_FINGERPRINT: s.peer.fingerprint,
    PQMCP_PEER_ISSUER: s.peer.issuer,
    PQMCP_PEER_SCOPES: s.peer.scopes.join(' '),
    PQMCP_SESSION_ID: s.transport.sessionId,
  });

  /** Start a child and its router; `label` prefixes its stderr lines. */
  const startChild = (label: string, env: NodeJS.ProcessEnv | undefined): ChildSlot => {
    const child = new StdioChild({ command, args: commandArgs, ...(env ? { env } : {}) });
    const slot: ChildSlot = { child, router: new Router((m) => toChild(slot, m)), outstanding: 0, paused: false, shares: new StdinShares(), writer: undefined };
    child.onmessage = (m) => slot.router.fromChild(m);
    // Made printable as every human line is: a child may echo what a peer sent it.
    child.onstderr = (line) => ctx.output.err(ctx.json ? jsonText({ time: new Date().toISOString(), event: 'child-stderr', session: label, line }) : `[${label}] ${printable(line)}`);
    child.onbadline = (e) => log('child-bad-output', { session: label, error: e.message }, `${label}: the MCP server wrote something that is not JSON-RPC to stdout (${e.message})`);
    child.onexit = (exit) => {
      const what = describeExit(exit);
      if (slot === sharedSlot) sharedSlot = undefined;
      const mine = [...sessions].filter((s) => s.slot === slot);
      if (mine.length === 0 || shuttingDown) return;
      const message = `pqmcp gateway: the MCP server process ${what}; this session is closed`;
      slot.router.childGone(message);
      log('child-exit', { session: label, pid: child.pid, code: exit.code, signal: exit.signal, error: exit.error?.message }, `${label}: MCP server process ${child.pid ?? ''} ${what}; closing ${mine.length} session${mine.length > 1 ? 's' : ''}`);
      for (const s of mine) {
        s.endReason = `MCP server process ${what}`;
        notifyClient(s, 'error', message);
        void closeSession(s);
      }
    };
    return slot;
  };

  /**
   * Write a message to a child, counted to the session it comes from: a session over its
   * share of the child's stdin is not read until the child has read enough (stdin-share.ts).
   * Cannot deadlock what was not stuck already: a paused session's bytes wait for the child
   * to read, and its answers to the child's own requests reach it only through that stdin.
   */
  const toChild = (slot: ChildSlot, m: JSONRPCMessage): void => {
    const from = slot.writer;
    let flushed = (): void => {};
    const bytes = slot.child.write(m, () => flushed()); // the callback is always asynchronous
    if (from) flushed = slot.shares.wrote(from, bytes);
  };

  /** Queue a message to a session's client, pausing the child's stdout when too much waits. */
  const sendToSession = (s: LiveSession, counts: { out: number }, m: JSONRPCMessage): void => {
    counts.out++;
    const r = m as { id?: string | number; method?: unknown };
    if (r.method === undefined && r.id !== undefined) s.inflight.delete(r.id);
    const slot = s.slot;
    if (slot) {
      slot.outstanding++;
      if (!slot.paused && slot.outstanding > PAUSE_ABOVE) {
        slot.paused = true;
        slot.child.pauseOutput();
      }
    }
    const settle = (): void => {
      if (!slot) return;
      slot.outstanding--;
      if (slot.paused && slot.outstanding < RESUME_BELOW) {
        slot.paused = false;
        slot.child.resumeOutput();
      }
    };
    s.transport.send(m).then(settle, settle);
  };

  const notifyClient = (s: LiveSession, level: 'error' | 'warning', data: string): void => {
    s.transport.send({ jsonrpc: '2.0', method: 'notifications/message', params: { level, logger: 'pqmcp-gateway', data } }).catch(() => {});
  };

  const closeSession = async (s: LiveSession): Promise<void> => {
    await s.transport.close().catch(() => {});
  };

  const refuse = (transport: PqmcpServerTransport, peer: VerifiedPeer, tag: string, reason: string): void => {
    log('session-refused', { session: tag, agentId: peer.agentId, fingerprint: peer.fingerprint, reason }, `session ${tag} refused: ${reason}`);
    const timer = setTimeout(() => void transport.close().catch(() => {}), REFUSE_CLOSE_MS);
    timer.unref();
    transport.onmessage = (m) => {
      const msg = m as { id?: unknown; method?: unknown };
      if (typeof msg.method !== 'string' || (typeof msg.id !== 'string' && typeof msg.id !== 'number')) return;
      clearTimeout(timer);
      transport
        .send(notAdmittedAnswer(msg.id, reason))
        .catch(() => {})
        .finally(() => void transport.close().catch(() => {}));
    };
    transport.onclose = () => clearTimeout(timer);
    transport.start().catch(() => clearTimeout(timer));
  };

  const codesText = (byCode: Record<string, number>): string =>
    Object.entries(byCode)
      .sort((a, b) => b[1] - a[1])
      .map(([code, n]) => `${code} ${n}`)
      .join(', ');
  const failures = new LogLimiter((summary) => {
    const codes = codesText(summary.byCode);
    log('client-refused-summary', { suppressed: summary.suppressed, byCode: summary.byCode, windowMs: summary.windowMs }, `${summary.suppressed} more connection failures in the last ${humanDuration(summary.windowMs)} not logged one by one: ${codes}`);
  }, failureLog);
  // Reports of live sessions that do not end them (session-warning), rate-limited the same way.
  const warnings = new LogLimiter((summary) => {
    const codes = codesText(summary.byCode);
    log('session-warning-summary', { suppressed: summary.suppressed, byCode: summary.byCode, windowMs: summary.windowMs }, `${summary.suppressed} more session warnings in the last ${humanDuration(summary.windowMs)} not logged one by one: ${codes}`);
  }, failureLog);
  server.on('clientError', (error, info) => {
    // A session that ended on time or on a trust change is logged by its session-end line.
    if ((error.code === 'ERR_SESSION_EXPIRED' || error.code === 'ERR_SESSION_UNTRUSTED') && info.peer) return;
    if (!failures.allow(error.code)) return;
    const peerText = info.peer ? ` (${info.peer.agentId})` : '';
    log('client-refused', { remoteAddress: info.remoteAddress, code: error.code, error: error.message, ...(error instanceof ProxyProtocolError ? { reason: error.reason } : {}), ...(info.peer ? { agentId: info.peer.agentId } : {}) }, `connection from ${info.remoteAddress ?? 'unknown'}${peerText} failed: ${error.message} (${error.code})`);
  });
  // Failures the listener held back (--failure-reports): counted into the log's next summary.
  server.on('failuresSuppressed', (summary) => failures.hold(summary.codes));
  server.on('error', (error) => log('server-error', { error: error.message }, `listener error: ${error.message}`));

  server.on('session', (transport, peer) => {
    const tag = transport.sessionId.slice(0, 8);
    if (shuttingDown || draining) return void transport.close().catch(() => {});
    const problem =
      admissionProblem(peer, admission) ??
      (sessions.size >= maxSessions ? `the gateway is at its limit of ${maxSessions} sessions (--max-sessions)` : undefined) ??
      gates.sessionRefusal(transport.sessionId); // over a sessions quota: no child for it
    if (problem) return refuse(transport, peer, tag, problem);

    const startedAt = Date.now();
    const counts = { in: 0, out: 0 };
    const s: LiveSession = { transport, peer, tag, slot: undefined, routerPeer: undefined as unknown as RouterPeer, endReason: undefined, inflight: new Set() };
    s.routerPeer = { tag, send: (m) => sendToSession(s, counts, m) };
    sessions.add(s);
    if (shared) {
      sharedSlot ??= startChild('shared', undefined);
      s.slot = sharedSlot;
    } else {
      s.slot = startChild(tag, sessionEnv(s));
    }
    const slot = s.slot;
    slot.shares.add(transport);
    slot.router.attach(s.routerPeer);
    transport.onmessage = (m) => {
      counts.in++;
      const r = m as { id?: unknown; method?: unknown };
      // Only what the router forwards as a request, so is answered (R15-1: a null id was kept forever).
      if (typeof r.method === 'string' && (typeof r.id === 'string' || typeof r.id === 'number')) s.inflight.add(r.id);
      // A cancelled request is no longer waited for (the router drops a late answer to it).
      else if (r.method === 'notifications/cancelled') s.inflight.delete((m as { params?: { requestId?: string | number } }).params?.requestId as string | number);
      slot.writer = transport;
      try {
        slot.router.fromSession(s.routerPeer, m as JSONRPCMessage);
      } finally {
        slot.writer = undefined;
      }
    };
    // The session-end reason is the error the session ended with (transport.error), not the
    // first report: a refused request or a hook's report leaves the session open (R10-1) and
    // is logged as a session-warning, rate-limited like the failure lines.
    transport.onerror = (e) => {
      if (e === transport.error || !warnings.allow(e instanceof PqmcpError ? e.code : 'error')) return;
      const code = e instanceof PqmcpError ? e.code : 'error';
      log('session-warning', { session: tag, agentId: peer.agentId, code, error: e.message }, `session ${tag} (${peer.agentId}): ${e.message} (${code}); the session goes on`);
    };
    transport.onclose = () => {
      sessions.delete(s);
      slot.shares.remove(transport);
      slot.router.detach(s.routerPeer);
      // A per-session child goes with its session; a shared one stays for the next.
      if (!shared) stopChild(slot.child);
      const ended = transport.error;
      const reason = s.endReason ?? (ended ? `${ended.message} (${ended.code})` : shuttingDown ? 'gateway shutting down' : 'client closed the session');
      log(
        'session-end',
        { session: tag, agentId: peer.agentId, messagesIn: counts.in, messagesOut: counts.out, durationMs: Date.now() - startedAt, reason },
        `session ${tag} ended: ${peer.agentId}, ${counts.in} message${counts.in === 1 ? '' : 's'} in, ${counts.out} out, ${humanDuration(Date.now() - startedAt)}; ${reason}`,
      );
    };
    log(
      'session-start',
      { session: tag, agentId: peer.agentId, fingerprint: peer.fingerprint, issuer: peer.issuer, scopes: peer.scopes, remoteAddress: transport.remoteAddress, pid: slot.child.pid, shared, resumed: transport.resumed },
      `session ${tag} started${transport.resumed ? ' (resumed)' : ''}: ${peer.agentId} (key ${peer.fingerprint.slice(0, 16)}, issuer ${peer.issuer}${peer.scopes.length ? `, scopes ${peer.scopes.join(' ')}` : ''}) from ${transport.remoteAddress ?? 'unknown'}; MCP server pid ${slot.child.pid ?? '(not started)'}${shared ? ' (shared)' : ''}`,
    );
    transport.start().catch((err: unknown) => {
      s.endReason = `client left before the session started (${err instanceof PqmcpError ? err.code : 'error'})`;
    });
  });

  return new Promise<number>((resolve) => {
    const reload = async (): Promise<void> => {
      // The gateway's own credential (renewed in place; another key needs a restart).
      try {
        const r = await reloadOwnCredential(server, backend, ownFiles, { publicKey: local.keyPair.publicKey, credential: ownCredential });
        if (r.renewed) {
          // What is presented now, first: the log line below comes after the state it reports.
          const previous = ownNotAfter;
          ownCredential = r.credential;
          ownNotAfter = r.notAfter;
          credentialWatch?.renewed(r.notAfter);
          // Taken (it may be deliberate), but said: a renewal that ends sooner is more often a
          // file mix-up (an older credential copied back) than a choice (review 18).
          const earlier = r.notAfter < previous;
          log(
            'credential-renewed',
            { serial: r.serial, notAfter: isoTime(r.notAfter), ...(earlier ? { previousNotAfter: isoTime(previous) } : {}) },
            `SIGHUP: new handshakes present the renewed credential (serial ${r.serial}, valid until ${isoTime(r.notAfter)}); sessions open now keep the one they began with${earlier ? `; note: it ends before the credential it replaces did (${isoTime(previous)})` : ''}`,
          );
        }
      } catch (err) {
        log('reload-failed', { error: err instanceof Error ? err.message : String(err) }, `SIGHUP: own credential not reloaded, ${errorLine(err, 'the previous credential stays in use')}`);
      }
      let fresh: TrustStore;
      try {
        // Read the trust file and every list before applying any: a bad file changes nothing.
        fresh = await loadTrustStore(trustPath, { revocations: revocationPaths });
      } catch (err) {
        log('reload-failed', { error: err instanceof Error ? err.message : String(err) }, `SIGHUP: trust not reloaded, ${errorLine(err, 'the previous trust stays in force')}`);
        return;
      }
      if (resumption.path !== undefined) {
        try {
          server.setTicketKeys(readTicketKeys(resumption.path, flag(p, 'allow-loose-key-permissions')));
        } catch (err) {
          log('reload-failed', { error: err instanceof Error ? err.message : String(err) }, `SIGHUP: ticket keys not reloaded, ${errorLine(err, 'the previous keys stay in force')}`);
        }
      }
      // Tell the clients that are about to lose their session why (the notification goes
      // out before the alert); the library's session guard then ends them.
      let closed = 0;
      for (const s of sessions) {
        try {
          fresh.recheckCredential(backend, s.peer.credential.encoded);
        } catch (err) {
          s.endReason = `no longer acceptable: ${err instanceof Error ? err.message : 'error'}`;
          notifyClient(s, 'error', 'pqmcp gateway: your credential is no longer accepted; this session is closed');
          closed++;
        }
      }
      trust.replaceWith(fresh);
      log('reloaded', { revocationLists: revocationPaths.length, sessionsClosed: closed }, `SIGHUP: reloaded the trust file and ${revocationPaths.length} revocation list(s); closing ${closed} session(s)`);
    };
    const shutdown = (signal: string): void => {
      if (draining) {
        log('forced-exit', { signal }, `${signal} again: exiting now`);
        process.exit(130);
      }
      // Drain: refuse new connections (/readyz says so), let requests in flight finish.
      draining = true;
      server.drain();
      const inflight = (): number => [...sessions].reduce((n, s) => n + s.inflight.size, 0);
      log('shutdown', { signal, sessions: sessions.size, inflight: inflight(), graceMs: drainGraceMs }, `${signal}: draining (${inflight()} request(s) in flight, grace ${humanDuration(drainGraceMs)}), then closing ${sessions.size} session(s) and stopping`);
      void (async () => {
        gates.close();
        const deadline = Date.now() + drainGraceMs;
        while (inflight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        if (inflight() > 0) log('drain-timeout', { inflight: inflight() }, `grace period over with ${inflight()} request(s) still in flight`);
        // Say why before closing, as for a revocation: the client's log then shows it, not only a closed session.
        for (const s of sessions) notifyClient(s, 'warning', 'pqmcp gateway: shutting down; this session is closed');
        shuttingDown = true;
        await server.close().catch(() => {});
        if (sharedSlot) stopChild(sharedSlot.child);
        for (const s of sessions) if (s.slot) stopChild(s.slot.child);
        await Promise.all([...stopping]);
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        process.off('SIGHUP', onHup);
        credentialWatch?.close();
        failures.close();
        warnings.close();
        await observe.close().catch(() => {});
        log('stopped', {}, 'stopped');
        resolve(0);
      })();
    };
    const onInt = (): void => shutdown('SIGINT');
    const onTerm = (): void => shutdown('SIGTERM');
    // One reload at a time, in signal order: two overlapping ones could apply an older file last.
    let reloading = Promise.resolve();
    const onHup = (): void => {
      gates.reload(); // --policy, --quotas: a bad file is logged, the old one stays
      // reload() reports its own failures; a throw it did not expect must not stop later SIGHUPs.
      reloading = reloading.then(reload).catch((err: unknown) => log('reload-failed', { error: err instanceof Error ? err.message : String(err) }, `SIGHUP: ${errorLine(err, 'the previous files stay in force')}`));
    };
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    process.on('SIGHUP', onHup);
    // Only now: whoever reads this line may signal at once (a supervisor, a test), and a
    // signal before the handlers above took the default action (the gateway died of SIGHUP).
    log(
      'listening',
      { url: server.url, agentId: local.agentId, fingerprint: local.fingerprint, backend: describeBackend(backend), command: childArgv, shared, maxSessions, ...gates.fields, ...(edge.proxyProtocol ? { proxyProtocolFrom: edge.trustedProxies } : {}) },
      `listening on ${server.url} as ${local.agentId} (key ${local.fingerprint.slice(0, 16)}); backend ${describeBackend(backend)}; MCP server: ${childArgv.join(' ')}${shared ? ' (one shared process)' : ' (one process per session)'}${describeGates(gates.fields)}${edge.proxyProtocol ? `; PROXY protocol required, only from ${edge.trustedProxies!.join(', ')}` : ''}`,
    );
    // After the listening line: a credential close to its end is the next thing said.
    credentialWatch = new CredentialWatch(ownNotAfter, log);
  });
}
