/**
 * What the CLI prints, and how it fails.
 *
 *   stdout  results: human text, or one JSON document with --json. Nothing else, ever
 *           (`pqmcp connect` owns stdout for MCP and prints no results at all).
 *   stderr  logs and errors. An error is ONE line: `pqmcp: <message> (<code>)`; the stack
 *           follows only with --debug.
 *
 * Exit codes: 0 ok, 1 runtime failure (handshake refused, child died, port in use,
 * verification failed), 2 usage or bad input (unknown flag, missing/malformed file, a key
 * file others can read, an expired own credential).
 *
 * Sharp edges:
 * - Messages name files and fields, never their secret contents: no error built here or in
 *   the library contains a seed or key bytes.
 * - Errors from libraries other than pqmcp are printed as "internal error" (their text may
 *   carry data we do not control); --debug shows them in full.
 */
import { FileError, PqmcpError } from '../errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Stable codes of CLI-level failures (library failures keep their own ERR_* code). */
export type CliErrorCode =
  | 'ERR_USAGE'
  | 'ERR_BAD_INPUT'
  | 'ERR_FILE_NOT_FOUND'
  | 'ERR_FILE_READ'
  | 'ERR_FILE_EXISTS'
  | 'ERR_FILE_WRITE'
  | 'ERR_FILE_FORMAT'
  | 'ERR_KEY_PERMISSIONS'
  | 'ERR_CREDENTIAL_EXPIRED'
  | 'ERR_CREDENTIAL_NOT_YET_VALID'
  | 'ERR_NOT_ADMITTED'
  | 'ERR_CHILD'
  | 'ERR_LISTEN'
  | 'ERR_REMOTE_CLOSED'
  // the bridge's drain at the end of stdin (connect.ts)
  | 'ERR_DRAIN_TIMEOUT';

export class CliError extends Error {
  constructor(
    /** A CliErrorCode, or the library's ErrorCode when wrapping a library failure. */
    readonly code: CliErrorCode | PqmcpError['code'],
    message: string,
    readonly exitCode: number = EXIT_USAGE,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** Bad command line: unknown flag, missing argument, bad value. Exit 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super('ERR_USAGE', message, EXIT_USAGE);
  }
}

/** Run a library call whose InvalidArgumentError means a bad command-line value: a usage error (exit 2). */
export function asUsage<T>(fn: () => T, reword: (message: string) => string = (m) => m): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof PqmcpError && err.code === 'ERR_INVALID_ARGUMENT') throw new UsageError(reword(err.message));
    throw err;
  }
}

/** Library codes that mean "the input you gave me is wrong" rather than "it failed". */
const BAD_INPUT_CODES = new Set(['ERR_INVALID_ARGUMENT', 'ERR_DECODE', 'ERR_POLICY_INVALID']);

export function exitCodeFor(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  // A file that is missing, unreadable, malformed, too open, or holds a stale own credential.
  if (err instanceof FileError) return EXIT_USAGE;
  if (err instanceof PqmcpError) return BAD_INPUT_CODES.has(err.code) ? EXIT_USAGE : EXIT_FAILURE;
  return EXIT_FAILURE;
}

/**
 * C0 and C1 controls (ESC, CR, BEL, CSI...), DEL, and the bidirectional formatting
 * characters, which reorder what a terminal shows.
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** One UTF-16 code unit as the escape `\uXXXX` (printable() and jsonText()). */
const escapeChar = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * `text` with every control and bidi formatting character written as `\uXXXX`, for human
 * output: tool names, methods and messages come from peers (a server's tools/list, a
 * client's requests in an audit file), and raw they could move the cursor, rewrite or hide
 * lines, or set a terminal's title or clipboard. JSON output: jsonText().
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escapeChar);
}

/**
 * A stack trace (--debug) made printable line by line: its first line is the error's
 * message, which may name what a peer chose (an issuer id from a refused credential), so it
 * is no less a human line than the error line above it (review 16, R16-4).
 */
export function printableStack(stack: string): string {
  return stack.split('\n').map(printable).join('\n');
}

/** The one-line form: `pqmcp: <message> (<code>)`. */
export function errorLine(err: unknown, prefix = 'pqmcp'): string {
  if (err instanceof CliError || err instanceof PqmcpError) return `${prefix}: ${printable(oneLine(err.message))} (${err.code})`;
  return `${prefix}: internal error; run again with --debug for details (ERR_INTERNAL)`;
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

export interface Output {
  /** Results (stdout). */
  out(text: string): void;
  /** Logs and errors (stderr). */
  err(text: string): void;
}

export const processOutput: Output = {
  out: (text) => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => void process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
};

/** Print an error (one line; the stack and causes too with --debug) and return its exit code. */
export function reportError(output: Output, err: unknown, debug: boolean): number {
  output.err(errorLine(err));
  if (debug) {
    let e: unknown = err;
    for (let depth = 0; e !== undefined && depth < 5; depth++) {
      output.err(printableStack(e instanceof Error ? (e.stack ?? String(e)) : String(e)));
      e = e instanceof Error ? e.cause : undefined;
      if (e !== undefined) output.err('caused by:');
    }
  }
  return exitCodeFor(err);
}

/**
 * What JSON.stringify leaves raw and a terminal or a reader may act on: DEL, the C1
 * controls (U+009B is CSI where a terminal takes UTF-8 C1), the bidirectional formatting
 * characters, and U+2028/U+2029 (line breaks to JavaScript before ES2019 and to some
 * log viewers). JSON.stringify escapes only U+0000-U+001F.
 */
const JSON_RAW = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

/**
 * `value` as JSON text, with the characters above written as `\uXXXX` too (review 15,
 * R15-7): the same JSON value, but a peer's string (a tool name, an agent id) printed with
 * --json cannot drive a terminal. Outside strings JSON holds none of them, so the
 * replacement only ever touches string contents. Every JSON the CLI prints goes through it.
 */
export function jsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(JSON_RAW, escapeChar);
}

/** Print a result: `json` with --json, otherwise the human lines (each made printable). */
export function printResult(output: Output, json: boolean, value: unknown, human: () => string[]): void {
  if (json) output.out(jsonText(value, 2));
  else output.out(human().map(printable).join('\n'));
}

/** "key: value" lines with aligned values. */
export function table(rows: Array<[string, string | number | boolean | undefined]>, indent = ''): string[] {
  const present = rows.filter(([, v]) => v !== undefined);
  const width = Math.max(0, ...present.map(([k]) => k.length));
  return present.map(([k, v]) => `${indent}${`${k}:`.padEnd(width + 2)}${String(v)}`);
}

/** ISO 8601 of Unix seconds; a time Date cannot hold (a credential's notAfter may be up to 2^53 - 1) as "N (Unix seconds)". */
export function isoTime(unixSeconds: number): string {
  const date = new Date(unixSeconds * 1000);
  return Number.isNaN(date.getTime()) ? `${unixSeconds} (Unix seconds)` : date.toISOString().replace('.000Z', 'Z');
}

/** "3d 4h", "12m 5s", "800 ms": for validity windows and session durations. */
export function humanDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(abs / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = d > 0 ? [`${d}d`, `${h}h`] : h > 0 ? [`${h}h`, `${m}m`] : [`${m}m`, `${s % 60}s`];
  return `${ms < 0 ? '-' : ''}${parts.join(' ')}`;
}
