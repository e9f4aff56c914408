/**
 * The flags that take a duration, a time, host:port (and their kin: --failure-log,
 * --failure-reports, audit's --since and --anchor, connect's --new-tools) follow the rule of
 * the integer flags (integer-flags.test.ts): the value as typed, nothing around it. A value
 * with white space around it (" 5m", "5m\n", a pasted line's end) is a usage error (exit 2)
 * naming the flag and showing the value, never trimmed; an empty one too.
 *
 * Before, each of these parsers trimmed its input: `--listen " 127.0.0.1:7443"`,
 * `--valid-for "30d\n"` or `--since " 24h"` were taken silently. And connect's --new-tools
 * (and --new-tools or a --max-* limit without --pins) was checked only once the identity
 * was loaded: with a key file that does not exist, the error was about the file.
 *
 * Through run(), the function main.ts calls with the real argv, as integer-flags.test.ts; a
 * valid value gets past the flag, to the file that does not exist (named in the message).
 */
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/run.js';
import type { Output } from '../../src/cli/output.js';
import { cli } from './helpers.js';

const MISSING = '/nonexistent-pqmcp-test/x.json';

const SERVE = ['serve', '--identity', MISSING, '--trust', MISSING];
const CHILD = ['--', 'node'];
const CONNECT = ['connect', 'ws://127.0.0.1:9/', '--identity', MISSING, '--trust', MISSING, '--any-server'];
const ISSUE = ['credential', 'issue', '--agent', MISSING, '--issuer', MISSING];
const VERIFY = ['credential', 'verify', MISSING, '--trust', MISSING];
const EXPLAIN = ['policy', 'explain', MISSING, '--agent', MISSING, '--method', 'ping'];

const duration = (flag: string): string => `--${flag} must be a duration such as 3600, 90m, 12h, 30d or 1y`;
const TIME_FORMS = 'an ISO 8601 time with Z or an offset (2026-01-31T12:00:00Z, 2026-01-31T13:00:00+01:00), a date (2026-01-31: midnight UTC), "now" or Unix seconds';
const time = (flag: string): string => `--${flag} must be ${TIME_FORMS}`;
/**
 * Times the docs do not promise, which Date.parse took loosely: a date and time with no `Z` or
 * offset (local time to JavaScript: "2026-01-31 12:00" was read in the machine's time zone), a
 * date followed by anything ("2026-01-31 (x)" was midnight UTC), a day the month does not have
 * ("2026-02-30" was March 2), an hour 24, an offset in the basic format, a year before 100.
 */
const LOOSE_TIMES = [
  '2026-01-31 12:00',
  '2026-01-31 12:00:00Z',
  '2026-01-31 (x)',
  '2026-01-31T12:00:00',
  '2026-01-31T12:00',
  '2026-01-31Z',
  '2026-02-30',
  '2026-02-29',
  '2026-13-01',
  '2026-1-31',
  '2026-01-31T24:00:00Z',
  '2026-01-31T12:00:00+0100',
  '2026-01-31T12:00:00+24:00',
  '2026-01-31T12Z',
  '0099-01-01',
  '2026-01-31T12:00:00Z[UTC]',
  'Sat, 31 Jan 2026 12:00:00 GMT',
  '1700000000.5',
];
const hostPort = (flag: string): string => `--${flag} must be host:port, e.g. 127.0.0.1:7443`;

interface Case {
  /** The argv before the flag: a command whose files do not exist. */
  argv: string[];
  /** The argv after it (serve's child command). */
  after?: string[];
  name: string;
  /** Valid values (each gets past the flag); the first is also written with space around it. */
  valid: string[];
  /** More values refused, beyond "", " " and the first valid one padded. */
  bad?: string[];
  /** The message for a bad value, without `; got "VALUE"`. */
  message: string;
  /** The message is `MESSAGE; got "VALUE"` (default), or has the value inside (`--anchor "VALUE" must be ...`). */
  shown?: (value: string) => string;
}

const CASES: Case[] = [
  // durations
  { argv: SERVE, after: CHILD, name: 'max-session-lifetime', valid: ['12h', '3600'], message: duration('max-session-lifetime') },
  { argv: SERVE, after: CHILD, name: 'max-read-pause', valid: ['30s'], message: duration('max-read-pause') },
  { argv: SERVE, after: CHILD, name: 'keepalive', valid: ['30s', 'off'], bad: [' off', 'off\n'], message: duration('keepalive') },
  { argv: SERVE, after: CHILD, name: 'keepalive-timeout', valid: ['10s'], message: duration('keepalive-timeout') },
  { argv: SERVE, after: CHILD, name: 'drain-grace', valid: ['10s', '0'], bad: [' 0', '0 '], message: duration('drain-grace') },
  { argv: SERVE, after: CHILD, name: 'audit-rotate', valid: ['1d'], message: duration('audit-rotate') },
  { argv: [...SERVE, '--ticket-keys', MISSING], after: CHILD, name: 'ticket-lifetime', valid: ['1d'], message: duration('ticket-lifetime') },
  { argv: CONNECT, name: 'busy-retry-max', valid: ['5s'], message: duration('busy-retry-max') },
  { argv: ISSUE, name: 'valid-for', valid: ['30d'], message: duration('valid-for') },
  // rates over a duration
  { argv: SERVE, after: CHILD, name: 'failure-log', valid: ['20/10s'], bad: ['20 /10s', '20/10s\r\n'], message: '--failure-log must be <lines>/<duration>, e.g. 20/10s' },
  { argv: SERVE, after: CHILD, name: 'failure-reports', valid: ['20/10s', 'off'], bad: [' off', 'off\n'], message: '--failure-reports must be <failures>/<duration> (failures >= 1) or off, e.g. 20/10s' },
  // times
  {
    argv: ISSUE,
    name: 'not-before',
    valid: ['2026-01-31T12:00:00Z', 'now', '1700000000', '2026-01-31T13:00:00+01:00', '2026-01-31T12:00:00.5-08:00', '2026-01-31t12:00z', '2028-02-29'],
    bad: [' now', '2026-01-31 ', '\n1700000000', ...LOOSE_TIMES],
    message: time('not-before'),
  },
  { argv: ISSUE, name: 'not-after', valid: ['2099-01-31', '2099-12-31T23:59:59Z'], bad: LOOSE_TIMES, message: time('not-after') },
  { argv: VERIFY, name: 'at', valid: ['2026-01-31T12:00:00Z', '2026-01-31', '1700000000'], bad: LOOSE_TIMES, message: time('at') },
  { argv: EXPLAIN, name: 'at', valid: ['now', '2026-01-31T12:00:00-05:00', '1700000000'], bad: LOOSE_TIMES, message: time('at') },
  {
    argv: ['audit', 'report', MISSING],
    name: 'since',
    valid: ['24h', '2026-01-31', 'now', '2026-01-31T12:00:00+05:30'],
    bad: [' now', '24h\n', '\t2026-01-31', ...LOOSE_TIMES],
    message: `--since must be a duration ago (24h, 7d) or a time: ${TIME_FORMS}`,
  },
  // host:port
  { argv: SERVE, after: CHILD, name: 'listen', valid: ['127.0.0.1:7443', ':0', '7443', '[::1]:7443'], bad: ['127.0.0.1 :7443', '[ ::1]:7443', 'local host:7443'], message: hostPort('listen') },
  { argv: SERVE, after: CHILD, name: 'metrics', valid: ['127.0.0.1:9464'], bad: [' 127.0.0.1:9464'], message: hostPort('metrics') },
  // audit verify --anchor <seq>:<hash>
  {
    argv: ['audit', 'verify', MISSING],
    name: 'anchor',
    valid: [`5:${'ab'.repeat(32)}`, `5 ${'AB'.repeat(32)}`],
    message: 'must be <seq>:<64 hex digits> (a chain head the gateway logged)',
    shown: (value) => `audit verify: --anchor ${JSON.stringify(value)} must be <seq>:<64 hex digits> (a chain head the gateway logged)`,
  },
  // connect --new-tools (checked before anything loads: the identity file does not exist)
  { argv: [...CONNECT, '--pins', MISSING], name: 'new-tools', valid: ['pin', 'hold'], bad: ['PIN', 'pinned'], message: '--new-tools must be pin or hold' },
];

function capture(): Output & { stderr: string[] } {
  const stderr: string[] = [];
  return { stderr, out: () => undefined, err: (s: string) => stderr.push(s) } as Output & { stderr: string[] };
}

/** Run `pqmcp <argv> --NAME=VALUE` (the `=` form: parseArgs takes any value then, one starting with "-" too). */
async function withValue(c: Case, value: string): Promise<{ code: number; stderr: string }> {
  const out = capture();
  const code = await run([...c.argv, `--${c.name}=${value}`, ...(c.after ?? [])], out);
  return { code, stderr: out.stderr.join('\n') };
}

describe('duration, time and host:port flags: the value as typed, nothing around it', () => {
  for (const c of CASES) {
    it(`pqmcp ${c.argv[0]}${c.argv[0] === 'serve' || c.argv[0] === 'connect' ? '' : ` ${c.argv[1]}`} --${c.name}`, async () => {
      const first = c.valid[0]!;
      const padded = [` ${first}`, `${first} `, `${first}\n`, `\t${first}`, `${first}\r`, `\u00a0${first}`];
      for (const bad of ['', ' ', ...padded, ...(c.bad ?? [])]) {
        const r = await withValue(c, bad);
        const expected = c.shown !== undefined ? c.shown(bad) : `${c.message}; got ${JSON.stringify(bad)}`;
        expect(r.code, `--${c.name}=${JSON.stringify(bad)}`).toBe(2);
        expect(r.stderr, `--${c.name}=${JSON.stringify(bad)}`).toContain(`${expected} (ERR_USAGE)`);
        expect(r.stderr, `--${c.name}=${JSON.stringify(bad)}`).not.toContain(MISSING);
      }
      for (const good of c.valid) {
        const r = await withValue(c, good);
        expect(r.stderr, `--${c.name}=${good}`).not.toContain(`--${c.name}`);
        expect(r.stderr, `--${c.name}=${good}`).toContain(MISSING);
      }
    });
  }
});

describe('connect checks its pin flags before anything loads', () => {
  it('a bad --new-tools, or --new-tools / --max-* without --pins, is a usage error whose text is about the flag, though the --identity file does not exist (a real process)', async () => {
    const bad = await cli([...CONNECT, '--pins', MISSING, '--new-tools', 'hold ']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--new-tools must be pin or hold; got "hold " (ERR_USAGE)');
    expect(bad.stderr).not.toContain(MISSING);
    for (const flag of [['--new-tools', 'hold'], ['--max-tools', '5'], ['--max-tool-bytes', '1000'], ['--max-entry-bytes', '1000'], ['--manifest', MISSING]]) {
      const alone = await withValue({ argv: CONNECT, name: flag[0]!.slice(2), valid: [], message: '' }, flag[1]!);
      expect(alone.code, flag[0]).toBe(2);
      expect(alone.stderr, flag[0]).toContain('--manifest, --new-tools, --max-tools, --max-tool-bytes and --max-entry-bytes need --pins <file> (ERR_USAGE)');
      expect(alone.stderr, flag[0]).not.toContain(`${MISSING}:`);
    }
  });
});
