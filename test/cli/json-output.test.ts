/**
 * `--json` output is inert for a terminal too (review 15, R15-7): JSON.stringify escapes
 * only U+0000-U+001F, so a peer's string (a tool name a client called, a tool a server
 * listed) reached stdout with C1 controls (U+009B is CSI), bidi overrides and U+2028/9 raw.
 * Every JSON the CLI prints goes through jsonText(): those are written as \uXXXX, and the
 * JSON value is the same.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/index.js';
import { jsonText } from '../../src/cli/output.js';
import { FilePinStore, toolDefinition, toolHash } from '../../src/pins/index.js';
import { cliInProcess } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'pqmcp-json-out-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A name a peer chose: C1 CSI, DEL, bidi override and isolate, ALM, line and paragraph separators. */
const PEER = 'ok\u009b31mRED\u007f\u202eevil\u2066\u061c\u2028\u2029end';
const RAW = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/;

describe('--json output', () => {
  it('jsonText writes every control, bidi and line separator character as \\uXXXX: the same value, no raw character', () => {
    const all = Array.from({ length: 0x2070 }, (_, i) => String.fromCharCode(i)).join('');
    const value = { name: PEER, all, nested: [{ [PEER]: 1 }] };
    const text = jsonText(value, 2);
    expect(text).not.toMatch(RAW);
    expect(JSON.parse(text)).toEqual(value);
    expect(jsonText({ name: PEER })).toBe('{"name":"ok\\u009b31mRED\\u007f\\u202eevil\\u2066\\u061c\\u2028\\u2029end"}');
    // Nothing else changes: plain text, escapes JSON.stringify already makes, non-Latin text.
    expect(jsonText({ a: 'caf\u00e9 \u{1F600} \n\u001b"' })).toBe(JSON.stringify({ a: 'caf\u00e9 \u{1F600} \n\u001b"' }));
  });

  it('audit report --json: a tool name a client chose', async () => {
    const dir = join(root, 'audit');
    const log = await AuditLog.open(dir);
    log.write({
      type: 'request', time: Date.now(), role: 'server', sessionId: 'ab', agentId: `agent://x/${PEER}`, issuer: 'issuer://x', fingerprint: 'cd', serial: '01',
      direction: 'fromPeer', method: 'tools/call', name: PEER, requestBytes: 10, responseBytes: 20, durationMs: 1, outcome: 'ok',
    });
    await log.close();
    for (const by of ['tool', 'agent']) {
      const r = await cliInProcess(['audit', 'report', dir, '--by', by, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).not.toMatch(RAW);
      expect((JSON.parse(r.stdout) as { rows: Array<{ key: string }> }).rows[0]!.key).toBe(by === 'tool' ? PEER : `agent://x/${PEER}`);
    }
  });

  it('pins list --json: a tool name a server listed', async () => {
    const pins = join(root, 'peer.pins.json');
    const definition = { name: PEER, description: `does ${PEER}` };
    const seenAt = new Date().toISOString();
    new FilePinStore(pins).put('agent://x/server', {
      agentId: 'agent://x/server',
      keys: [{ fingerprint: 'ab'.repeat(32), firstSeen: seenAt }],
      tools: {},
      held: { [PEER]: { hash: toolHash(definition), definition: toolDefinition(definition), seenAt, reason: 'new' } },
    });
    const r = await cliInProcess(['pins', 'list', '--pins', pins, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(RAW);
    expect(r.stdout).toContain('ok\\u009b31mRED');
    expect(JSON.stringify(JSON.parse(r.stdout))).toContain(JSON.stringify(PEER).slice(1, -1));
  });
});
