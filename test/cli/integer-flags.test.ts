/**
 * Every integer flag of the CLI follows one rule (args.ts integerFlag): decimal digits only,
 * a safe integer, within the flag's documented range, or a usage error (exit 2) in one shape:
 * `--NAME must be an integer >= MIN[ and <= MAX] (unit); got "TEXT"`. Through run(), the
 * function main.ts calls with the real argv, so each command's own parsing is what is tested.
 *
 * Before the one rule, each flag had its own: `--max-sessions-per-agent ""` was 0 (no limit
 * at all), `ticket-keys rotate --keep ""` was 0 (every older key dropped), `--busy-retries " "`
 * was 0 (no retries), and `1e3`, `0x10` or `5.0` passed as 1000, 16 and 5 on several flags.
 *
 * A valid value is shown to get past the flag: the command then fails on a file that does not
 * exist (named in the message), the first thing it reads after its flags.
 */
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/run.js';
import type { Output } from '../../src/cli/output.js';

const MISSING = '/nonexistent-pqmcp-test/x.json';

function capture(): Output & { stderr: string[] } {
  const stderr: string[] = [];
  return { stderr, out: () => undefined, err: (s: string) => stderr.push(s) } as Output & { stderr: string[] };
}

interface IntegerFlag {
  /** The argv before the flag: a command whose files do not exist. */
  argv: string[];
  /** The argv after it (serve's child command). */
  after?: string[];
  name: string;
  min: number;
  max?: number;
  /** What the message says in parentheses, if anything. */
  unit?: string;
  /** A valid value, and one out of range. */
  valid: string;
  outOfRange: string;
}

const SERVE = ['serve', '--identity', MISSING, '--trust', MISSING];
const CHILD = ['--', 'node'];
const CONNECT = ['connect', 'ws://127.0.0.1:9/', '--identity', MISSING, '--trust', MISSING, '--any-server'];

const FLAGS: IntegerFlag[] = [
  { argv: SERVE, after: CHILD, name: 'max-sessions', min: 1, valid: '32', outOfRange: '0' },
  { argv: SERVE, after: CHILD, name: 'max-sessions-per-agent', min: 0, unit: '0 = no limit', valid: '0', outOfRange: '9007199254740992' },
  { argv: SERVE, after: CHILD, name: 'max-request-bytes-in-flight', min: 0, unit: 'bytes; 0 = no limit', valid: '1048576', outOfRange: '9007199254740992' },
  { argv: SERVE, after: CHILD, name: 'max-request-bytes-in-flight-total', min: 0, unit: 'bytes; 0 = no limit', valid: '0', outOfRange: '9007199254740992' },
  { argv: SERVE, after: CHILD, name: 'audit-max-bytes', min: 1024, unit: 'bytes', valid: '1024', outOfRange: '1023' },
  { argv: SERVE, after: CHILD, name: 'max-pending', min: 1, valid: '64', outOfRange: '0' },
  { argv: SERVE, after: CHILD, name: 'max-pending-per-source', min: 1, valid: '8', outOfRange: '0' },
  { argv: SERVE, after: CHILD, name: 'first-flight-timeout', min: 1, unit: 'milliseconds, e.g. 2000', valid: '2000', outOfRange: '0' },
  { argv: SERVE, after: CHILD, name: 'handshake-timeout', min: 1, unit: 'milliseconds, e.g. 10000', valid: '10000', outOfRange: '0' },
  { argv: SERVE, after: CHILD, name: 'crypto-workers', min: 0, unit: '0 = none', valid: '0', outOfRange: '9007199254740992' },
  { argv: SERVE, after: CHILD, name: 'handshake-rate-per-source', min: 0, unit: 'a second; 0 = no limit', valid: '50', outOfRange: '9007199254740992' },
  { argv: SERVE, after: CHILD, name: 'connection-rate-per-source', min: 0, unit: 'a second; 0 = no limit', valid: '20', outOfRange: '9007199254740992' },
  { argv: SERVE, after: CHILD, name: 'max-crypto-queue', min: 1, valid: '64', outOfRange: '0' },
  { argv: SERVE, after: CHILD, name: 'inline-crypto-per-second', min: 0, unit: '0 = always the workers', valid: '100', outOfRange: '9007199254740992' },
  { argv: SERVE, after: CHILD, name: 'accept-rate-per-source', min: 0, unit: 'a second; 0 = no limit', valid: '200', outOfRange: '9007199254740992' },
  { argv: CONNECT, name: 'busy-retries', min: 0, unit: '0 = none', valid: '0', outOfRange: '9007199254740992' },
  { argv: CONNECT, name: 'max-request-bytes-in-flight', min: 0, unit: 'bytes; 0 = no limit', valid: '0', outOfRange: '9007199254740992' },
  { argv: [...CONNECT, '--pins', MISSING], name: 'max-tools', min: 1, valid: '1024', outOfRange: '0' },
  { argv: [...CONNECT, '--pins', MISSING], name: 'max-tool-bytes', min: 1, unit: 'bytes', valid: '262144', outOfRange: '0' },
  { argv: [...CONNECT, '--pins', MISSING], name: 'max-entry-bytes', min: 1, unit: 'bytes', valid: '16777216', outOfRange: '0' },
  { argv: ['ticket-keys', 'rotate', MISSING], name: 'keep', min: 0, max: 7, unit: 'previous keys', valid: '0', outOfRange: '8' },
  { argv: ['credential', 'verify', MISSING, '--trust', MISSING], name: 'clock-skew', min: 0, max: 3600, unit: 'seconds', valid: '0', outOfRange: '3601' },
  { argv: ['policy', 'explain', MISSING, '--agent', MISSING, '--method', 'ping'], name: 'bytes', min: 0, valid: '0', outOfRange: '9007199254740992' },
  { argv: ['audit', 'verify', MISSING], name: 'max-line-bytes', min: 1024, unit: 'bytes', valid: '2048', outOfRange: '1023' },
  { argv: ['audit', 'report', MISSING], name: 'max-line-bytes', min: 1024, unit: 'bytes', valid: '2048', outOfRange: '1023' },
];

/** Never an integer, for any flag: empty, blank, exponent, hex, signed, fraction, padded, a trailing ".0". */
const NOT_INTEGERS = ['', ' ', '1e3', '0x10', '-1', '+5', '1.5', '5.0', ' 5 ', '5s', 'Infinity'];

/** Run `pqmcp <argv> --NAME=VALUE` (the `=` form: parseArgs refuses "-1" as a separate value before our check). */
async function withValue(f: IntegerFlag, value: string): Promise<{ code: number; stderr: string }> {
  const out = capture();
  const code = await run([...f.argv, `--${f.name}=${value}`, ...(f.after ?? [])], out);
  return { code, stderr: out.stderr.join('\n') };
}

function message(f: IntegerFlag, value: string): string {
  return `--${f.name} must be an integer >= ${f.min}${f.max !== undefined ? ` and <= ${f.max}` : ''}${f.unit !== undefined ? ` (${f.unit})` : ''}; got ${JSON.stringify(value)}`;
}

describe('integer flags: one rule, one message', () => {
  for (const f of FLAGS) {
    it(`pqmcp ${f.argv[0]}${f.argv[0] === 'serve' || f.argv[0] === 'connect' ? '' : ` ${f.argv[1]}`} --${f.name}`, async () => {
      // The valid value written another way: padded, with a fraction, in hex, with an exponent.
      const disguised = [` ${f.valid} `, `${f.valid}.0`, `0x${Number(f.valid).toString(16)}`, `${f.valid}e0`];
      for (const bad of [...NOT_INTEGERS, ...disguised, f.outOfRange]) {
        const r = await withValue(f, bad);
        expect(r.code, `--${f.name}=${JSON.stringify(bad)}`).toBe(2);
        expect(r.stderr, `--${f.name}=${JSON.stringify(bad)}`).toContain(`${message(f, bad)} (ERR_USAGE)`);
      }
      // The value is range-checked at both ends it has, and a valid one gets past the flag.
      for (const good of [f.valid, String(f.min), ...(f.max !== undefined ? [String(f.max)] : [])]) {
        const r = await withValue(f, good);
        expect(r.stderr, `--${f.name}=${good}`).not.toContain(`--${f.name}`);
        expect(r.stderr, `--${f.name}=${good}`).toContain(MISSING);
      }
    });
  }
});

describe('the flags that are not plain integers keep their own rule, in decimal only', () => {
  it('connect --drain-timeout: seconds above 0 and at most 86400, a fraction allowed; never "", " ", an exponent or hex', async () => {
    const f: IntegerFlag = { argv: CONNECT, name: 'drain-timeout', min: 0, valid: '30', outOfRange: '0' };
    for (const bad of ['', ' ', '1e3', '0x10', '-1', '+5', ' 5 ', '5s', 'Infinity', '.5', '5.', '0', '0.0', '86400.5', '86401']) {
      const r = await withValue(f, bad);
      expect(r.code, `--drain-timeout=${JSON.stringify(bad)}`).toBe(2);
      expect(r.stderr, `--drain-timeout=${JSON.stringify(bad)}`).toContain(`--drain-timeout must be a number of seconds (e.g. 30 or 2.5), above 0 and at most 86400; got ${JSON.stringify(bad)} (ERR_USAGE)`);
    }
    for (const good of ['30', '2.5', '0.001', '86400']) {
      const r = await withValue(f, good);
      expect(r.stderr, `--drain-timeout=${good}`).not.toContain('--drain-timeout');
      expect(r.stderr, `--drain-timeout=${good}`).toContain(MISSING);
    }
  });

  it('serve --failure-log, --failure-reports, --key-update-rate: a count beyond 2^53 - 1 is a usage error, not a rounded number', async () => {
    const huge = '99999999999999999999';
    const cases: [string, string, string][] = [
      ['failure-log', `${huge}/10s`, '--failure-log must be <lines>/<duration>, e.g. 20/10s'],
      ['failure-reports', `${huge}/10s`, '--failure-reports must be <failures>/<duration> (failures >= 1) or off, e.g. 20/10s'],
      ['key-update-rate', `10/${huge}`, '--key-update-rate must be <rate>[/<burst>] (rate > 0 a second, burst an integer >= 1) or off, e.g. 10/32'],
    ];
    for (const [name, value, text] of cases) {
      const r = await withValue({ argv: SERVE, after: CHILD, name, min: 0, valid: '', outOfRange: '' }, value);
      expect(r.code, name).toBe(2);
      expect(r.stderr, name).toContain(`${text}; got ${JSON.stringify(value)} (ERR_USAGE)`);
      // The same with a count in range gets past the flag.
      const ok = await withValue({ argv: SERVE, after: CHILD, name, min: 0, valid: '', outOfRange: '' }, value.replace(huge, '20'));
      expect(ok.stderr, name).not.toContain(`--${name}`);
      expect(ok.stderr, name).toContain(MISSING);
    }
  });
});
