/**
 * Command-line parsing on node:util's parseArgs (strict), with the CLI's one error type
 * (UsageError, exit 2) and the value parsers shared by several commands: integers (every
 * integer flag goes through integerFlag), durations, times, host:port, key=value.
 *
 * Sharp edges:
 * - `--` ends pqmcp's own options; everything after it is returned untouched in `rest`
 *   (the gateway's child command). It is split off before parseArgs sees anything, so a
 *   child flag such as `--port` can never be mistaken for one of ours.
 * - Every command also accepts --help/-h, --json and --debug.
 */
import { parseArgs } from 'node:util';
import { Rules, textProblem } from '../identity/rules.js';
import { UsageError } from './output.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

export const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
} as const satisfies OptionSpecs;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  /** Arguments after `--` (undefined when there was no `--`). */
  rest: string[] | undefined;
}

export function parse(argv: readonly string[], options: OptionSpecs, command: string): Parsed {
  const dashdash = argv.indexOf('--');
  const own = dashdash === -1 ? [...argv] : argv.slice(0, dashdash);
  const rest = dashdash === -1 ? undefined : argv.slice(dashdash + 1);
  try {
    const { values, positionals } = parseArgs({
      args: own,
      options: { ...COMMON_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Parsed['values'], positionals, rest };
  } catch (err) {
    throw new UsageError(`${command}: ${describeParseError(err, Object.keys({ ...COMMON_OPTIONS, ...options }))} (see pqmcp ${command} --help)`);
  }
}

/** Edit distance (insertions, deletions, substitutions), for "did you mean". */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** The known option nearest a mistyped one (at most 2 edits, or the only one it begins), if any. */
function suggestion(option: string, known: readonly string[]): string | undefined {
  const name = option.replace(/^-+/, '').split('=')[0]!;
  if (name.length < 3) return undefined;
  const begun = known.filter((k) => k.startsWith(name));
  if (begun.length === 1) return `--${begun[0]}`;
  let best: { name: string; distance: number } | undefined;
  for (const k of known) {
    const distance = editDistance(name, k);
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { name: k, distance };
  }
  return best && `--${best.name}`;
}

function describeParseError(err: unknown, known: readonly string[] = []): string {
  const e = err as { code?: string; message?: string };
  const message = String(e.message ?? err);
  const option = /'(-[^' ]+)/.exec(message)?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const near = option !== undefined ? suggestion(option, known) : undefined;
      return `unknown option ${option ?? ''}${near !== undefined ? ` (did you mean ${near}?)` : ''}`.trim();
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return message.includes('argument missing') ? `option ${option ?? ''} needs a value` : `bad value for option ${option ?? ''}`;
    default:
      return message.split('\n')[0] ?? message;
  }
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  if (Array.isArray(v)) return v[v.length - 1];
  return typeof v === 'string' ? v : undefined;
}

export function list(p: Parsed, name: string): string[] {
  const v = p.values[name];
  if (Array.isArray(v)) return v;
  return typeof v === 'string' ? [v] : [];
}

export function flag(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}

export function required(p: Parsed, name: string, command: string): string {
  const v = str(p, name);
  if (v === undefined || v === '') throw new UsageError(`${command}: --${name} is required (see pqmcp ${command} --help)`);
  return v;
}

/** Exactly `count` positionals (names for the message). */
export function positionals(p: Parsed, command: string, names: string[], optional = 0): string[] {
  const min = names.length - optional;
  if (p.positionals.length < min) throw new UsageError(`${command}: missing ${names.slice(p.positionals.length).join(' and ')} (see pqmcp ${command} --help)`);
  if (p.positionals.length > names.length) {
    throw new UsageError(`${command}: unexpected argument ${JSON.stringify(p.positionals[names.length])} (see pqmcp ${command} --help)`);
  }
  return p.positionals;
}

/** An integer flag's range (both ends included) and what its number counts, for the message. */
export interface IntegerRange {
  min: number;
  max?: number;
  /** In the message's parentheses: the unit, and what a special value means ("bytes; 0 = no limit"). */
  unit?: string;
}

/**
 * Every integer flag: decimal digits only (no sign, space, fraction, exponent or hex, so ""
 * and " " are never 0, which means "no limit" for some flags), a safe integer in `range`, else
 * `--NAME must be an integer >= MIN[ and <= MAX] (unit); got "TEXT"`. Undefined when not given.
 */
export function integerFlag(p: Parsed, name: string, range: IntegerRange): number | undefined {
  const text = str(p, name);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < range.min || (range.max !== undefined && n > range.max)) {
    const bounds = `>= ${range.min}${range.max !== undefined ? ` and <= ${range.max}` : ''}`;
    throw new UsageError(`--${name} must be an integer ${bounds}${range.unit !== undefined ? ` (${range.unit})` : ''}; got ${JSON.stringify(text)}`);
  }
  return n;
}

/**
 * --max-request-bytes-in-flight (serve and connect: the transports' maxRequestBytesInFlight)
 * and serve's --max-request-bytes-in-flight-total (the listener's maxRequestBytesInFlightTotal).
 */
export const REQUEST_BYTES_RANGE: IntegerRange = { min: 0, unit: 'bytes; 0 = no limit' };

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400, y: 365 * 86400 };

/**
 * A flag value with white space around it (" 5m", "5m\n", a pasted line's end): refused like
 * any malformed value, never trimmed (as integerFlag: what was typed is what is used).
 */
export function padded(text: string): boolean {
  return text !== text.trim();
}

/** "90s", "15m", "12h", "30d", "2w", "1y" or plain seconds -> seconds (positive); nothing around it. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+)([smhdwy]?)$/.exec(text);
  if (!m) throw new UsageError(`${what} must be a duration such as 3600, 90m, 12h, 30d or 1y; got ${JSON.stringify(text)}`);
  const seconds = Number(m[1]) * (UNITS[m[2] || 's'] ?? 1);
  if (!Number.isSafeInteger(seconds) || seconds <= 0) throw new UsageError(`${what} must be a positive duration; got ${JSON.stringify(text)}`);
  return seconds;
}

/**
 * A date, or a date and time with its offset, as ISO 8601 (RFC 3339) writes them: YYYY-MM-DD,
 * then optionally T, hh:mm, :ss and a fraction, and Z or +hh:mm / -hh:mm ("t" and "z" too, as
 * RFC 3339 allows). A time needs its Z or offset.
 */
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:[Zz]|([+-])(\d{2}):(\d{2})))?$/;

/**
 * A time flag: Unix seconds, "now", a date ("2026-01-31": midnight UTC), or a date and time
 * with Z or an offset ("2026-01-31T12:00:00Z", "2026-01-31T13:00+01:00"; seconds and a
 * fraction of them optional, the fraction dropped) -> Unix seconds, not before 1970; nothing
 * around it. Nothing else (docs/cli.md): it was handed to Date.parse, which takes a time with
 * no offset as local time ("2026-01-31 12:00", "2026-01-31T12:00:00"), ignores what follows a
 * date ("2026-01-31 (x)": midnight UTC) and rolls a day the month lacks over ("2026-02-30":
 * March 2). Computed here, field by field, in UTC: no time zone of the machine enters.
 */
export function parseTime(text: string, what: string): number {
  if (text === 'now') return Math.floor(Date.now() / 1000);
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (Number.isSafeInteger(n)) return n;
  }
  const m = ISO_TIME.exec(text);
  if (m) {
    const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = [m[1], m[2], m[3], m[4], m[5], m[6], m[8], m[9]].map((x) => Number(x ?? 0)) as [number, number, number, number, number, number, number, number];
    const offsetMs = (m[7] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
    // Date.UTC reads years 0 to 99 as 1900 to 1999 (all before 1970 anyway), and rolls a day
    // the month lacks over: both refused here.
    const ms = Date.UTC(year, month - 1, day, hour, minute, second) - offsetMs;
    const fields = year >= 100 && month >= 1 && month <= 12 && day >= 1 && new Date(Date.UTC(year, month - 1, day)).getUTCDate() === day && hour <= 23 && minute <= 59 && second <= 59 && offsetHours <= 23 && offsetMinutes <= 59;
    if (fields && ms >= 0) return Math.floor(ms / 1000);
  }
  throw new UsageError(timeMessage(text, what));
}

function timeMessage(text: string, what: string): string {
  return `${what} must be ${TIME_FORMS}; got ${JSON.stringify(text)}`;
}

/** The time forms parseTime takes, for messages (audit's --since adds durations). */
export const TIME_FORMS = 'an ISO 8601 time with Z or an offset (2026-01-31T12:00:00Z, 2026-01-31T13:00:00+01:00), a date (2026-01-31: midnight UTC), "now" or Unix seconds';

/**
 * "host:port", "[v6]:port" or ":port"/"port" (host 127.0.0.1). Port 0 = any free port. The
 * host needs its colon: "7443" is port 7443, never host "744" and port 3. No white space,
 * around it or in the host (" 127.0.0.1:80" would be host " 127.0.0.1").
 */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^(?:(?:\[([^\]\s]+)\]|([^:[\]\s]*)):)?(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65535) throw new UsageError(`${what} must be host:port, e.g. 127.0.0.1:7443; got ${JSON.stringify(text)}`);
  const host = m[1] ?? (m[2] || '127.0.0.1');
  return { host, port };
}

/** "key=value" -> [key, value] (the value may contain '='). */
export function parseKeyValue(text: string, what: string): [string, string] {
  const i = text.indexOf('=');
  if (i <= 0) throw new UsageError(`${what} must be key=value; got ${JSON.stringify(text)}`);
  return [text.slice(0, i), text.slice(i + 1)];
}

/** An agent or issuer id given as a flag value (`what` names the flag in the error). */
export function checkId(id: string, what: string, example?: string): void {
  const problem = textProblem(id, Rules.id);
  // The rule's example is an agent's id; an issuer's flag gives an issuer's.
  if ('reason' in problem) throw new UsageError(`${what} ${example === undefined ? problem.reason : problem.reason.replace('(e.g. agent://org/name)', `(e.g. ${example})`)}`);
}
