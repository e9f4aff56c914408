/**
 * `pqmcp connect`: its usage, flags and their validation. Light on purpose: `connect --help`
 * and a bad flag load nothing else; the bridge itself (transport, handshake, crypto
 * backends, identity, pins, tickets) is imported from bridge.ts only once the flags are
 * valid (benchmarks/coldstart.ts measures `connect --help`).
 *
 * Sharp edge: keep this file's static imports to args.ts, output.ts and identity/rules.ts;
 * the flag blocks of other features (pins, tickets) live here rather than in their heavy
 * modules for that reason (so --expect-prefix and --endpoint values are checked by
 * bridge.ts, first thing, still as usage errors).
 * - --expect names the server (like a TLS hostname check), --expect-prefix a set of them
 *   (replicas); only an explicit --any-server accepts whatever server the trust file
 *   vouches for (and the library warns about it once more on stderr).
 */
import type { BackendChoice } from '../crypto/select.js';
import { REQUEST_BYTES_RANGE, checkId, flag, integerFlag, list, parse, parseDuration, positionals, required, str } from './args.js';
import type { IntegerRange, Parsed } from './args.js';
import type { Context } from './context.js';
import { UsageError } from './output.js';

// resumption (tickets.ts)
export const TICKET_CONNECT_USAGE = `  --tickets <file>         keep the server's resumption tickets in this file (0600), so the
                           next launch resumes (no signatures) instead of a full handshake`;

export const TICKET_CONNECT_OPTIONS = {
  tickets: { type: 'string' },
} as const;

/** Flags of `pqmcp connect` for pinning (pins.ts connectPinHooks reads them). */
export const CONNECT_PIN_OPTIONS = { pins: { type: 'string' }, 'new-tools': { type: 'string' }, 'max-tools': { type: 'string' }, 'max-tool-bytes': { type: 'string' }, 'max-entry-bytes': { type: 'string' }, manifest: { type: 'string', multiple: true } } as const;
/** --max-tools: there is always a limit. */
export const MAX_TOOLS_RANGE: IntegerRange = { min: 1 };
/** --max-tool-bytes, --max-entry-bytes: there is always a limit. */
export const PIN_BYTES_RANGE: IntegerRange = { min: 1, unit: 'bytes' };

/** The pinning flags of `pqmcp connect`, checked (values, and none of them without --pins). */
export interface PinFlags {
  path: string | undefined;
  newTools: 'pin' | 'hold' | undefined;
  maxTools: number | undefined;
  maxToolBytes: number | undefined;
  maxEntryBytes: number | undefined;
  manifests: string[];
}

/**
 * The pinning flags, or a usage error: connectCommand calls it before anything loads (a bad
 * value is exit 2 whatever the files), pins.ts connectPinHooks again to read them.
 */
export function pinFlags(p: Parsed): PinFlags {
  const path = str(p, 'pins');
  const newTools = str(p, 'new-tools');
  if (newTools !== undefined && newTools !== 'pin' && newTools !== 'hold') throw new UsageError(`--new-tools must be pin or hold; got ${JSON.stringify(newTools)}`);
  const maxTools = integerFlag(p, 'max-tools', MAX_TOOLS_RANGE);
  const maxToolBytes = integerFlag(p, 'max-tool-bytes', PIN_BYTES_RANGE);
  const maxEntryBytes = integerFlag(p, 'max-entry-bytes', PIN_BYTES_RANGE);
  const manifests = list(p, 'manifest');
  if (path === undefined && (manifests.length || newTools !== undefined || maxTools !== undefined || maxToolBytes !== undefined || maxEntryBytes !== undefined)) {
    throw new UsageError('--manifest, --new-tools, --max-tools, --max-tool-bytes and --max-entry-bytes need --pins <file>');
  }
  return { path, newTools, maxTools, maxToolBytes, maxEntryBytes, manifests };
}

export const CONNECT_USAGE = `pqmcp connect <ws url> --identity <key file> --trust <trust file> --expect <server agent id> [options]

  Bridge: speak MCP over stdin/stdout (newline-delimited JSON-RPC, as stdio MCP servers do)
  and pqmcp to the server at <ws url>. Use it as the "command" of a stdio MCP server in a
  desktop agent or IDE. stdout carries only MCP; logs go to stderr.

  --identity <file>        this agent's private key file (<name>.key.json)
  --credential <file>      its credential (default: <name>.cred.json beside the key)
  --trust <file>           issuers (and pins) this agent trusts to vouch for the server
  --revocations <file>     revocation list, repeatable
  --expect <agent id>      the server's agent id: any other server is refused (this, or
                           --expect-prefix, is required unless --any-server)
  --expect-prefix <prefix> accept a server whose agent id is within this prefix, repeatable
                           ('agent://acme/tools/' = any id below it; docs/protocol.md 6.4)
  --any-server             accept any server your trust file vouches for (not recommended)
  --endpoint <endpoint>    the endpoint named in the handshake, checked by the server:
                           //host[:port]/path or a service name svc:<name> (default: from
                           the URL; set it when dialling through a tunnel or proxy)
  --backend <name>         crypto backend: auto (default), native or noble
  --busy-retries <n>       retries of a busy server (close 4006), with jittered exponential
                           backoff, each logged on stderr (default 5; 0 = none)
  --busy-retry-max <dur>   longest wait between two retries (default 5s)
  --allow-loose-key-permissions  accept a key file others can read
  --drain-timeout <secs>   when stdin ends, wait this long (counted from the handshake at
                           the earliest) for the answers still owed (default 30), then
                           report the rest and exit 1
  --max-request-bytes-in-flight <n>  bytes of the server's requests (sampling, elicitation,
                           roots/list) the stdio client has not answered yet; past it the
                           bridge refuses the server's next request with JSON-RPC -32005
                           (default 16777216 = 16 MiB; one request always fits; 0 = no limit)
${TICKET_CONNECT_USAGE}
  --pins <file>            pin the server's tool definitions in this file (0600): a tool
                           redefined later is withheld from the client (pqmcp pins)
  --new-tools pin|hold     with --pins: a new tool is pinned on first use (default) or held
                           until pqmcp pins approve
  --max-tools <n>          with --pins: the most tools the pin file records per server,
                           pinned or held (default 1024); past it a new tool is withheld
                           and not recorded
  --max-tool-bytes <n>     with --pins: the most bytes one tool's definition takes in the
                           pin file (default 262144 = 256 KiB); a larger one is withheld
                           and not recorded
  --max-entry-bytes <n>    with --pins: the most bytes one server's tools take in the pin
                           file together (default 16777216 = 16 MiB); a tool past it is
                           withheld and not recorded
  --manifest <file>        a tool manifest the server's issuer published (repeatable): a
                           server whose credential attests it may offer only its tools
  --debug                  stack traces

  When stdin ends, everything read is sent, every request's answer is awaited (up to
  --drain-timeout), then the session is closed. "connected" is printed once the server has
  answered a request without refusing this agent.

  Exit: 0 after stdin ends and every request was answered; 1 if the session failed, the
  server refused this agent or closed the session with requests unanswered; 2 for bad
  options or files.`;

export const CONNECT_OPTIONS = {
  identity: { type: 'string' },
  credential: { type: 'string' },
  trust: { type: 'string' },
  revocations: { type: 'string', multiple: true },
  expect: { type: 'string' },
  'any-server': { type: 'boolean' },
  // --- roles and name constraints, endpoint binding (issue 11) ---
  'expect-prefix': { type: 'string', multiple: true },
  endpoint: { type: 'string' },
  backend: { type: 'string' },
  'allow-loose-key-permissions': { type: 'boolean' },
  // end of stdin: how long to wait for the answers still owed
  'drain-timeout': { type: 'string' },
  // the server's requests in flight (decision 8, part 1)
  'max-request-bytes-in-flight': { type: 'string' },
  ...CONNECT_PIN_OPTIONS,
  // busy retry (issue 10)
  'busy-retries': { type: 'string' },
  'busy-retry-max': { type: 'string' },
  // resumption (tickets.ts)
  ...TICKET_CONNECT_OPTIONS,
} as const;

/** After stdin ends, how long the bridge waits for answers still owed (--drain-timeout). */
const DEFAULT_DRAIN_TIMEOUT_S = 30;

/** Valid flags of one `pqmcp connect`, as bridge.ts takes them. */
export interface ConnectPlan {
  parsed: Parsed;
  url: URL;
  keyPath: string;
  trustPath: string;
  expect: string | undefined;
  /** --expect-prefix as given (issue 11; bridge.ts checks them). */
  serverIdConstraints: string[] | undefined;
  anyServer: boolean;
  /** --endpoint as given (issue 11; bridge.ts checks it). */
  endpoint: string | undefined;
  backendChoice: BackendChoice | undefined;
  drainSeconds: number;
  busyRetries: number | undefined;
  busyRetryMaxMs: number | undefined;
  /** --max-request-bytes-in-flight (undefined: the transport's default, 16 MiB). */
  maxRequestBytesInFlight: number | undefined;
}

export async function connectCommand(ctx: Context, argv: string[]): Promise<number> {
  const p = parse(argv, CONNECT_OPTIONS, 'connect');
  if (flag(p, 'help')) return ctx.help(CONNECT_USAGE);
  const [url] = positionals(p, 'connect', ['<ws url>']);
  let parsedUrl: URL;
  try {
    parsedUrl = new URL(url!);
  } catch {
    // Shown without what may be a secret (user info, query), as every URL pqmcp prints
    // (transport/dialer.ts shownUrl): a desktop host keeps the bridge's stderr in its logs.
    const shown = url!.replace(/^([^/?#]*\/\/)[^/?#]*@/, '$1***@').replace(/[?#].*$/, '');
    throw new UsageError(`connect: ${JSON.stringify(shown)} is not a URL (user info and query not shown); expected ws://host:port/ or wss://...`);
  }
  if (parsedUrl.protocol !== 'ws:' && parsedUrl.protocol !== 'wss:') throw new UsageError(`connect: the URL must start with ws:// or wss://`);
  const keyPath = required(p, 'identity', 'connect');
  const trustPath = required(p, 'trust', 'connect');
  const expect = str(p, 'expect');
  const prefixes = list(p, 'expect-prefix');
  const anyServer = flag(p, 'any-server');
  if ((expect !== undefined || prefixes.length > 0) && anyServer) throw new UsageError('connect: give --expect / --expect-prefix or --any-server, not both');
  if (expect === undefined && prefixes.length === 0 && !anyServer) {
    throw new UsageError('connect: --expect <server agent id> (or --expect-prefix <id prefix>) is required (or --any-server to accept any server your trust file vouches for)');
  }
  if (expect !== undefined) checkId(expect, '--expect');
  const serverIdConstraints = prefixes.length > 0 ? prefixes : undefined;
  const endpoint = str(p, 'endpoint');
  const backendChoice = str(p, 'backend');
  if (backendChoice !== undefined && !['auto', 'native', 'noble'].includes(backendChoice)) throw new UsageError('--backend must be auto, native or noble');

  const drainText = str(p, 'drain-timeout');
  const drainSeconds = drainText === undefined ? DEFAULT_DRAIN_TIMEOUT_S : Number(drainText);
  // Seconds, a fraction allowed, in decimal only: Number() alone took "", " " (0), "1e3" and "0x10".
  if (!(drainText === undefined || /^\d+(?:\.\d+)?$/.test(drainText)) || !(drainSeconds > 0 && drainSeconds <= 86_400)) {
    throw new UsageError(`--drain-timeout must be a number of seconds (e.g. 30 or 2.5), above 0 and at most 86400; got ${JSON.stringify(drainText)}`);
  }
  const busyRetries = integerFlag(p, 'busy-retries', { min: 0, unit: '0 = none' });
  const retryMaxText = str(p, 'busy-retry-max');
  const busyRetryMaxMs = retryMaxText === undefined ? undefined : parseDuration(retryMaxText, '--busy-retry-max') * 1000;
  const maxRequestBytesInFlight = integerFlag(p, 'max-request-bytes-in-flight', REQUEST_BYTES_RANGE);
  // --pins' flags, read again by pins.ts connectPinHooks once the bridge is loaded: checked here too, before anything loads.
  pinFlags(p);

  const { runBridge } = await import('./bridge.js');
  return runBridge(ctx, {
    parsed: p,
    url: parsedUrl,
    keyPath,
    trustPath,
    expect,
    serverIdConstraints,
    anyServer,
    endpoint,
    backendChoice: backendChoice as BackendChoice | undefined,
    drainSeconds,
    busyRetries,
    busyRetryMaxMs,
    maxRequestBytesInFlight,
  });
}
