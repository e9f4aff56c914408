/**
 * Every error class the package entry exports is listed in docs/api.md's "Errors" section
 * (by name, or by a pattern such as `Ticket*Error`), and every class that section names is
 * exported from the entry: a new error class a user can receive cannot be left out of the
 * reference, and a documented class cannot be missing from the exports (as the edge's
 * AcceptRateError, FirstFlightTimeoutError and UpgradeTimeoutError once were).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as entry from '../../src/index.js';

const DOC = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../docs/api.md'), 'utf8');
const start = DOC.indexOf('\n## Errors\n');
const ERRORS = DOC.slice(start, DOC.indexOf('\n## ', start + 1));

const exported = Object.entries(entry)
  .filter(([, value]) => typeof value === 'function' && (value === entry.PqmcpError || value.prototype instanceof entry.PqmcpError))
  .map(([name]) => name);

/** Class names in the section; `SdkError` is the MCP SDK's (named where findPqmcpError is explained). */
const named = new Set([...ERRORS.matchAll(/`([A-Z]\w+Error)`/g)].map((m) => m[1]!).filter((name) => name !== 'SdkError'));
const patterns = [...ERRORS.matchAll(/`(\w+)\*(\w*Error)`/g)].map((m) => new RegExp(`^${m[1]}\\w*${m[2]}$`));

describe("docs/api.md's Errors section and the package's error classes", () => {
  it('every exported error class is listed', () => {
    expect(start).toBeGreaterThan(-1);
    expect(exported.length).toBeGreaterThan(50);
    expect(exported.filter((name) => !named.has(name) && !patterns.some((p) => p.test(name)))).toEqual([]);
  });

  it('every class listed is exported', () => {
    expect([...named].filter((name) => !exported.includes(name))).toEqual([]);
  });
});
