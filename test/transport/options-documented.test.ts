/**
 * docs/usage.md's "Options" tables list every option of the transports and the listener
 * (PqmcpTransportOptions, PqmcpClientOptions, PqmcpServerOptions with its EdgeOptions),
 * read from the interfaces' source, and nothing else; and the numeric defaults they quote
 * are the constants the code uses (DEFAULTS, EDGE_DEFAULTS). An option added without its
 * row, a row for an option that was renamed, or a default changed on one side only fails.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/transport/options.js';
import { EDGE_DEFAULTS } from '../../src/transport/edge.js';
import { BUSY_RETRY_DEFAULTS } from '../../src/transport/busy-retry.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** The property names of `export interface <name>` in `path` (two-space indented members). */
function members(path: string, name: string): string[] {
  const text = read(path);
  const start = text.indexOf(`export interface ${name}`);
  expect(start, `${name} in ${path}`).toBeGreaterThan(-1);
  const body = text.slice(start, text.indexOf('\n}\n', start));
  return [...body.matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1]!);
}

/** Rows of the tables in docs/usage.md's "## Options" section (before its first subsection): option name -> default cell. */
function documented(): Map<string, string> {
  const doc = read('docs/usage.md');
  const start = doc.indexOf('\n## Options\n');
  const section = doc.slice(start, doc.indexOf('\n### ', start));
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    const m = /^\| `(\w+)`(?: \((?:client|listener)\))? \| ([^|]*) \|/.exec(line);
    if (m) rows.set(m[1]!, m[2]!.trim());
  }
  return rows;
}

const OPTIONS = [
  ...members('src/transport/options.ts', 'PqmcpTransportOptions'),
  ...members('src/transport/client-options.ts', 'PqmcpClientOptions'),
  ...members('src/transport/server-options.ts', 'PqmcpServerOptions'),
  ...members('src/transport/edge.ts', 'EdgeOptions'),
];

/** A default cell as a number: "10 000" -> 10000, "64 MiB" -> 67108864, "1 MiB (at least ...)" -> 1048576; else undefined. */
function quoted(cell: string): number | undefined {
  const m = /^(\d[\d ]*)(?: (KiB|MiB))?(?: \(|$)/.exec(cell);
  if (!m) return undefined;
  const n = Number(m[1]!.replace(/ /g, ''));
  return m[2] === 'MiB' ? n * 1024 * 1024 : m[2] === 'KiB' ? n * 1024 : n;
}

describe("docs/usage.md's Options tables and the option interfaces", () => {
  const rows = documented();

  it('every option has a row, and every row is an option', () => {
    expect(OPTIONS.length).toBeGreaterThan(40);
    expect(OPTIONS.filter((o) => !rows.has(o)), 'options without a row').toEqual([]);
    expect([...rows.keys()].filter((r) => !OPTIONS.includes(r)), 'rows that are no option').toEqual([]);
  });

  it('the numeric defaults quoted are the constants', () => {
    const constants: Record<string, number> = { ...DEFAULTS, ...EDGE_DEFAULTS };
    const checked: string[] = [];
    for (const [name, value] of Object.entries(constants)) {
      const cell = rows.get(name);
      if (cell === undefined) continue; // an internal constant (maxKeyUpdatesPerTurn), not an option
      const n = quoted(cell);
      if (n === undefined) continue;
      expect(n, `${name}: the table says ${JSON.stringify(cell)}`).toBe(value);
      checked.push(name);
    }
    expect(checked.length).toBeGreaterThan(12);
    expect(rows.get('busyRetry')).toBe(`\`{ attempts: ${BUSY_RETRY_DEFAULTS.attempts}, baseDelayMs: ${BUSY_RETRY_DEFAULTS.baseDelayMs}, maxDelayMs: ${BUSY_RETRY_DEFAULTS.maxDelayMs} }\``);
  });
});
