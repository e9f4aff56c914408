/**
 * Every flag `pqmcp serve`, `pqmcp connect` and `pqmcp pins` accept is in their `--help` text and in
 * their part of docs/cli.md, and the help text names no flag the parser refuses: a flag
 * added to a command's option spec without its documentation fails here, and so does a
 * documented flag that was renamed or removed.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COMMON_OPTIONS } from '../../src/cli/args.js';
import { SERVE_OPTIONS, SERVE_USAGE } from '../../src/cli/serve.js';
import { CONNECT_OPTIONS, CONNECT_USAGE } from '../../src/cli/connect.js';
import { PIN_OPTIONS, PINS_USAGE } from '../../src/cli/pins.js';

const DOC = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../docs/cli.md'), 'utf8');

/** docs/cli.md from the heading that starts with `from` to the next one that starts with `to`. */
function section(from: string, to: string): string {
  const start = DOC.indexOf(`\n${from}`);
  const end = DOC.indexOf(`\n${to}`, start + 1);
  expect(start, from).toBeGreaterThan(-1);
  expect(end, to).toBeGreaterThan(start);
  return DOC.slice(start, end);
}

/** The `--flags` a text names (not `--` alone, not inside a longer word). */
function flagsIn(text: string): Set<string> {
  return new Set([...text.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!));
}

const COMMANDS = [
  { name: 'serve', options: SERVE_OPTIONS, usage: SERVE_USAGE, doc: () => section('## The gateway: `pqmcp serve`', '## The bridge') },
  { name: 'connect', options: CONNECT_OPTIONS, usage: CONNECT_USAGE, doc: () => section('## The bridge: `pqmcp connect`', '## Both MCP SDK majors') },
  { name: 'pins', options: PIN_OPTIONS, usage: PINS_USAGE, doc: () => section('## Tool pinning: `connect --pins`', '## Both MCP SDK majors') },
] as const;

describe('docs/cli.md and --help name every flag of serve, connect and pins, and only those', () => {
  for (const command of COMMANDS) {
    it(`pqmcp ${command.name}`, () => {
      const accepted = Object.keys(command.options);
      const inHelp = flagsIn(command.usage);
      const inDoc = flagsIn(command.doc());
      expect(accepted.filter((f) => !inHelp.has(f)), 'accepted but not in --help').toEqual([]);
      expect(accepted.filter((f) => !inDoc.has(f)), 'accepted but not in docs/cli.md').toEqual([]);
      const known = new Set([...accepted, ...Object.keys(COMMON_OPTIONS)]);
      expect([...inHelp].filter((f) => !known.has(f)), 'in --help but refused by the parser').toEqual([]);
    });
  }
});
