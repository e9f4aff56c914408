/**
 * `pqmcp connect`, the bridge itself (connect.ts parses and checks the flags, then imports
 * this). A local MCP client that only launches stdio servers runs
 * this as its "server command"; it speaks newline-delimited JSON-RPC on stdin/stdout
 * exactly like the SDK's StdioServerTransport, and pqmcp to the remote server.
 *
 *   pqmcp connect ws://tools.example:7443/ --identity me.key.json --trust trust.json --expect agent://acme/tools
 *
 * Sharp edges:
 * - stdout carries only MCP messages. Everything else (the verified server, errors, the
 *   gateway's explanations) goes to stderr.
 * - A stdin line that is not JSON-RPC is reported on stderr and skipped, never fatal.
 * - A server message that cannot be written to stdout (nested too deeply for JSON.stringify)
 *   is reported on stderr and dropped; a request waiting for it gets an error (R17-4).
 * - When the session fails, every request still waiting for an answer gets a JSON-RPC
 *   error carrying the reason (so the MCP client shows it), then the process exits 1.
 * - End of stdin loses nothing: stdin is read from the first moment (messages that arrive
 *   before the connection is up wait in order), and after the end every message is sent
 *   and every request's answer awaited, bounded by --drain-timeout, before the
 *   authenticated close; exit 0 only if every request was answered. A signal closes at once.
 * - "connected" is printed when the server has answered a request without refusing this
 *   agent: the gateway admits agents after the handshake (admission.ts), so a completed
 *   handshake alone does not mean accepted. A refusal is exit 1 with ERR_NOT_ADMITTED.
 * - The banner names the backend per primitive (describeBackend): on Node 20 "native"
 *   serves the AEAD and classical curves while ML-KEM and ML-DSA are the portable ones.
 * - --expect names the server (like a TLS hostname check), --expect-prefix a set of them;
 *   only an explicit --any-server accepts whatever server the trust file vouches for.
 * - A server request the transport refuses (past --max-request-bytes-in-flight or 4,096 in
 *   flight, malformed, a reused id) was answered to the server and the session goes on: it
 *   is logged (the first of each code; the rest counted, summed up at the end), never the
 *   session's failure nor the exit code.
 * - A plaintext (unauthenticated) alert from the server is reported with a hint at what to
 *   check (alert-hints.ts), marked unauthenticated; the code stays ERR_PEER_ABORTED.
 * - The URL is shown as origin and path only, never its user info or query, where tokens
 *   live (review 16, R16-2), as in the dialer's errors (ws-dialer.ts).
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { MalformedRequestError, PeerAbortedError, PeerAlertError, PqmcpError, RequestIdReusedError, TooManyRequestBytesInFlightError, TooManyRequestsInFlightError } from '../errors.js';
import { PqmcpClientTransport, anyServerWarningGiven } from '../transport/client.js';
import { shownUrl } from '../transport/dialer.js';
import { SUITE_NAMES } from '../wire/messages.js';
import { describeBackend, selectBackend } from '../crypto/select.js';
import { flag, list, str } from './args.js';
import type { Context } from './context.js';
import type { ConnectPlan } from './connect.js';
import { connectPinHooks } from './pins.js';
import { loadTrustStore } from '../identity/files.js';
import { loadOwnIdentity } from './files.js';
import { notAdmittedReason } from './admission.js';
import { CliError, asUsage, errorLine, printable, printableStack } from './output.js';
import { normaliseNameConstraints } from '../identity/name-constraints.js';
import { checkEndpoint, endpointOfUrl } from '../handshake/endpoint.js';
import { plaintextAlertHint, refusalHint } from './alert-hints.js';
import { JsonRpcLineReader, serializeLine } from './stdio.js';
import { FileTicketStore } from './tickets.js';
import { CredentialWatch } from './credential-watch.js';

const noop = (): void => {};

/** stdin messages waiting for the transport above which stdin is paused. */
const PAUSE_ABOVE = 256;
const RESUME_BELOW = 64;

type Id = string | number;

function isRequest(m: JSONRPCMessage): m is JSONRPCMessage & { id: Id; method: string } {
  return 'method' in m && 'id' in m && (typeof m.id === 'string' || typeof m.id === 'number');
}

function isResponse(m: JSONRPCMessage): m is JSONRPCMessage & { id: Id } {
  return !('method' in m) && 'id' in m && (typeof m.id === 'string' || typeof m.id === 'number');
}

/** The transport refused one of the server's requests (answered it with an error; the session goes on): not a failure of the session. */
function refusedServerRequest(err: unknown): err is PqmcpError {
  return err instanceof TooManyRequestBytesInFlightError || err instanceof MalformedRequestError || err instanceof RequestIdReusedError || (err instanceof TooManyRequestsInFlightError && err.side === 'peer');
}

export async function runBridge(ctx: Context, plan: ConnectPlan): Promise<number> {
  const { parsed: p, url: parsedUrl, keyPath, trustPath, expect, anyServer, endpoint, backendChoice, drainSeconds, busyRetries, busyRetryMaxMs, maxRequestBytesInFlight } = plan;
  // Flag values connect.ts could not check without loading these modules: still usage errors (exit 2).
  const serverIdConstraints = plan.serverIdConstraints !== undefined ? asUsage(() => normaliseNameConstraints(plan.serverIdConstraints, '--expect-prefix')) : undefined;
  if (endpoint !== undefined) asUsage(() => checkEndpoint(endpoint, '--endpoint'));
  // connect.ts runs without the backend selector run.ts installs for other commands.
  ctx.useBackendSelector(selectBackend);
  const backend = ctx.backend(backendChoice);
  const local = await loadOwnIdentity(backend, keyPath, str(p, 'credential'), flag(p, 'allow-loose-key-permissions'));
  const trust = await loadTrustStore(trustPath, { revocations: list(p, 'revocations') });
  // Tool names and the gateway's messages come from the server: printable() (output.ts).
  const log = (text: string): void => ctx.output.err(`pqmcp connect: ${printable(text)}`);
  if (anyServer) {
    // One warning for one choice: this one, in the flags' words, instead of the library's SecurityWarning too.
    log('warning: --any-server: ANY server your trust file vouches for is accepted at this URL (every agent a trusted issuer gave a server credential); use --expect <id> or --expect-prefix <prefix> unless every trusted agent may serve');
    anyServerWarningGiven();
  }
  const hooks = connectPinHooks(p, log);
  // A desktop client may keep this bridge for days: say ahead of time that its session will end with the credential.
  const credentialWatch = new CredentialWatch(local.credential.notAfter, (_event, _fields, human) => log(`warning: ${human}`), Date.now, {
    whose: `your credential (${local.agentId})`,
    renew: 'ask its issuer to renew it (pqmcp credential issue --agent <your .cred.json>), then restart this client',
  });

  const ticketsPath = str(p, 'tickets');
  const tickets = ticketsPath === undefined ? undefined : new FileTicketStore(ticketsPath, log);
  const transport = new PqmcpClientTransport(parsedUrl, {
    identity: local,
    trust,
    backend,
    hooks,
    ...(expect !== undefined ? { expectedServerId: expect } : {}),
    ...(serverIdConstraints !== undefined ? { serverIdConstraints } : {}),
    ...(anyServer ? { allowAnyServer: true } : {}),
    ...(endpoint !== undefined ? { endpoint } : {}),
    busyRetry: busyRetries === 0 ? false : { ...(busyRetries !== undefined ? { attempts: busyRetries } : {}), ...(busyRetryMaxMs !== undefined ? { maxDelayMs: busyRetryMaxMs } : {}) },
    onBusyRetry: (e) => log(`server busy (${e.error.code}); retry ${e.attempt} of ${e.attempts} in ${e.delayMs} ms`),
    ...(tickets ? { tickets } : {}),
    ...(maxRequestBytesInFlight !== undefined ? { maxRequestBytesInFlight } : {}),
  });
  const stdin = process.stdin;
  const stdout = process.stdout;
  const reader = new JsonRpcLineReader();
  /** Requests from the local client the server has not answered (registered when read). */
  const waiting = new Map<string, Id>();
  let received = 0;
  let stdinEnded = false;
  let stopped: NodeJS.Signals | undefined;
  let failure: unknown;
  /** Messages read from stdin whose send has not settled (including the backlog). */
  let queued = 0;
  let stdinPaused = false;
  /** start() resolved: the transport takes sends (it queues them until the handshake). */
  let ready = false;
  /** Read before `ready`; sent in order once it is. */
  const backlog: JSONRPCMessage[] = [];
  let handshakeSettled = false;
  /** The server answered a request without refusing this agent (gateway admission). */
  let admitted = false;
  let closing = false;
  let drainTimer: NodeJS.Timeout | undefined;
  /** The server's requests the transport refused, by code: the first of each is logged, the rest counted (a server cannot flood stderr). */
  const refusals = new Map<string, number>();

  const writeOut = (m: JSONRPCMessage): void => {
    stdout.write(serializeLine(m));
  };

  return new Promise<number>((resolve) => {
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(drainTimer);
      credentialWatch.close();
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.pause();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      for (const [code, count] of refusals) if (count > 1) log(`${count} of the server's requests were refused in all (${code})`);
      // Clean: nothing failed, the local side ended (stdin or a signal), and no request lost its answer.
      const clean = failure === undefined && (stopped !== undefined || (stdinEnded && waiting.size === 0));
      if (!clean || waiting.size > 0) {
        const error =
          failure ??
          (stopped !== undefined
            ? new CliError('ERR_REMOTE_CLOSED', `the bridge was stopped (${stopped}) before the server answered`, 1)
            : new CliError(
                'ERR_REMOTE_CLOSED',
                waiting.size > 0 && stdinEnded
                  ? `the server closed the session with ${waiting.size} request(s) unanswered`
                  : received > 0
                    ? 'the server closed the session'
                    : 'the server closed the connection before answering',
                1,
              ));
        const line = errorLine(error);
        // Every request still waiting learns why (the local MCP client shows this).
        for (const id of waiting.values()) writeOut({ jsonrpc: '2.0', id, error: { code: -32000, message: line } } as JSONRPCMessage);
        if (!clean) {
          ctx.output.err(line);
          if (ctx.debug && error instanceof Error && error.stack) ctx.output.err(printableStack(error.stack));
        }
      }
      // Exit once stdout has taken everything written to it.
      stdout.write('', () => resolve(clean ? 0 : 1));
    };

    /** After stdin ends: close once every message is sent and every request answered. */
    const maybeClose = (): void => {
      if (!stdinEnded || closing || finished) return;
      if (!ready || !handshakeSettled || queued > 0 || waiting.size > 0) return;
      closing = true;
      void transport.close();
    };

    const explain = (err: PqmcpError): unknown => {
      // A plaintext alert before any keys: unauthenticated, but a hint helps (alert-hints.ts).
      if (err instanceof PeerAbortedError) {
        const hint = plaintextAlertHint(err.peerAlert, { endpoint: endpoint ?? endpointOfUrl(parsedUrl), endpointGiven: endpoint !== undefined, tickets: tickets !== undefined });
        return new CliError(err.code, hint, 1, { cause: err });
      }
      if (err instanceof PeerAlertError && received === 0) {
        return new CliError(err.code, `the server refused this agent: ${err.message}${refusalHint(err.peerAlert)}`, 1, { cause: err });
      }
      if (err.code === 'ERR_TRUNCATED') {
        // Jargon for a desktop user's log: say what it means for them.
        return new CliError(err.code, `${err.message}: the server went away (it stopped without closing the session, or the network cut the connection); requests in flight are lost: start the bridge again`, 1, { cause: err });
      }
      if (err.code.startsWith('ERR_CREDENTIAL') || err.code === 'ERR_UNTRUSTED_ISSUER' || err.code === 'ERR_UNEXPECTED_PEER' || err.code === 'ERR_BAD_SIGNATURE') {
        return new CliError(err.code, `the server's identity was refused: ${err.message}`, 1, { cause: err });
      }
      return err;
    };

    transport.onmessage = (message) => {
      const m = message as JSONRPCMessage;
      received++;
      // Encoded for stdout first: JSON.stringify throws (RangeError) on a value nested a few
      // thousand deep, which JSON.parse took from the server (a 40 KB message), and the
      // handler failed: ERR_INTERNAL, exit 1 (review 17, R17-4, as R16-5). Such a message is
      // dropped; a request waiting for it is answered with an error, as when the session fails.
      let line: string;
      try {
        line = serializeLine(m);
      } catch {
        const key = isResponse(m) ? JSON.stringify(m.id) : undefined; // a string or number id
        const id = key === undefined ? undefined : waiting.get(key);
        log(`a message from the server was dropped: nested too deeply to write to stdout${id === undefined ? '' : `; request ${key} is answered with an error`}`);
        if (id !== undefined) {
          waiting.delete(key!);
          writeOut({ jsonrpc: '2.0', id, error: { code: -32000, message: 'pqmcp connect: the server\'s answer was nested too deeply to forward' } } as JSONRPCMessage);
          maybeClose();
        }
        return;
      }
      const params = 'params' in m ? (m.params as { logger?: unknown; data?: unknown } | undefined) : undefined;
      // Its data is the server's: text as it is, anything else as JSON (String() throws on an
      // object whose own toString is not a function, review 16, R16-5).
      if ('method' in m && m.method === 'notifications/message' && params?.logger === 'pqmcp-gateway') log(`gateway: ${(typeof params.data === 'string' ? params.data : (JSON.stringify(params.data) ?? '')).replace(/^pqmcp gateway: /, '')}`);
      stdout.write(line);
      if (isResponse(m)) {
        waiting.delete(JSON.stringify(m.id));
        if (!admitted) {
          const refusal = notAdmittedReason(m);
          if (refusal !== undefined) failure ??= new CliError('ERR_NOT_ADMITTED', `the server did not admit this agent: ${refusal}`, 1);
          else {
            admitted = true;
            // From the settled handshake, never from `result`: a message can be delivered in
            // the turn the handshake completes (a server's answer in the flight of its
            // Finished), before the handshake promise's callbacks have run (review 16, R16-3).
            void transport.handshake.then(({ peer, resumed, suite }) => {
              log(`connected to ${peer.agentId} (key ${peer.fingerprint.slice(0, 16)}, issuer ${peer.issuer}) at ${shownUrl(parsedUrl)}${resumed ? ', resumed (no signatures; a fresh key exchange)' : ''}; ${SUITE_NAMES[suite] ?? 'suite ?'}, backend ${describeBackend(backend)}`);
            }, noop);
          }
        }
        maybeClose();
      }
    };
    transport.onerror = (err) => {
      if (refusedServerRequest(err)) {
        const count = (refusals.get(err.code) ?? 0) + 1;
        refusals.set(err.code, count);
        // In the flag's words: the library's message names the option.
        if (count === 1) log(`${err.message.replace('maxRequestBytesInFlight)', '--max-request-bytes-in-flight)')} (${err.code}); the session goes on; further refusals are counted`);
        return;
      }
      failure ??= err instanceof PqmcpError ? explain(err) : err;
    };
    transport.onclose = () => finish();

    const settle = (): void => {
      queued--;
      if (stdinPaused && queued < RESUME_BELOW) {
        stdinPaused = false;
        stdin.resume();
      }
      maybeClose();
    };
    const forward = (m: JSONRPCMessage): void => {
      transport.send(m).then(settle, (err: unknown) => {
        failure ??= err instanceof PqmcpError ? explain(err) : err;
        settle();
      });
    };
    reader.onmessage = (m) => {
      if (isRequest(m)) waiting.set(JSON.stringify(m.id), m.id);
      queued++;
      if (!stdinPaused && queued > PAUSE_ABOVE) {
        stdinPaused = true;
        stdin.pause();
      }
      if (ready) forward(m);
      else backlog.push(m);
    };
    reader.onerror = (e) => log(`stdin ${e.message} (ERR_BAD_INPUT)`);
    const onData = (chunk: Buffer): void => reader.push(chunk);
    const onEnd = (): void => {
      stdinEnded = true;
      if (reader.pending > 0) log('stdin ended inside a line; the partial line was dropped');
      if (handshakeSettled) startDrainTimer();
      maybeClose();
    };
    /** Bounded: answers still owed this long after stdin ended (and the handshake, which has its own timeout) are reported, exit 1. */
    const startDrainTimer = (): void => {
      if (drainTimer !== undefined || finished) return;
      drainTimer = setTimeout(() => {
        failure ??= new CliError('ERR_DRAIN_TIMEOUT', `stdin ended; ${waiting.size} request(s) still unanswered after ${drainSeconds} s (--drain-timeout)`, 1);
        closing = true;
        void transport.close();
      }, drainSeconds * 1000);
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      stopped = signal;
      closing = true;
      void transport.close();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    void transport.handshake.then(
      () => {
        handshakeSettled = true;
        if (stdinEnded) startDrainTimer();
        maybeClose();
      },
      () => {
        handshakeSettled = true;
      },
    );
    // Read stdin from the start: what arrives before the connection is up waits in the backlog.
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
    transport.start().then(
      () => {
        ready = true;
        for (const m of backlog.splice(0)) forward(m);
        maybeClose();
      },
      (err: unknown) => {
        failure ??= err instanceof PqmcpError ? explain(err) : err;
        finish();
      },
    );
  });
}
