/**
 * `pqmcp audit verify` and `audit report` read a trail line by line (review 8, L6): a
 * ~70 MB trail of five rotated files is verified and metered by the real CLI under a
 * 32 MB JavaScript heap limit (the whole-trail verifier ran out of heap there: it held
 * every file's text and every parsed event); `--max-line-bytes` bounds a line: a longer
 * one is a malformed line for verify (exit 1, with its place) and a warning for report.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog, auditFiles } from '../../src/audit/index.js';
import type { RequestEvent } from '../../src/audit/index.js';
import { cli, killAll, tempDir } from './helpers.js';

const tmp = tempDir('audit-stream');
const EVENTS = 32_000;
/** A heap far below the trail's size (and below what holding it took). */
const HEAP = { NODE_OPTIONS: '--max-old-space-size=32' };
let dir: string;

const request = (i: number, over: Partial<RequestEvent> = {}): RequestEvent => ({
  type: 'request', time: 1_700_000_000_000 + i, role: 'server', sessionId: 's', agentId: `agent://big/${i % 3}`, issuer: 'issuer://big', fingerprint: 'f'.repeat(64), serial: '01',
  direction: 'fromPeer', method: 'tools/call', name: 'echo', requestBytes: 10, responseBytes: 20, durationMs: 1, outcome: 'ok', ...over,
});

beforeAll(async () => {
  dir = join(tmp.dir, 'trail');
  // ~2.2 KB a line (as with --audit-content): ~70 MB in 16 MiB files.
  const log = await AuditLog.open(dir, { maxBytes: 16 << 20, flushMs: 60_000 });
  const pad = 'p'.repeat(1800);
  for (let i = 0; i < EVENTS; i++) {
    log.write({ ...request(i), arguments: { pad } });
    if (i % 1000 === 999) log.flush();
  }
  await log.close();
}, 60_000);

afterAll(() => {
  killAll();
  tmp.remove();
});

describe('pqmcp audit reads a long trail line by line', () => {
  it('verifies and meters a ~70 MB trail of rotated files under a 32 MB heap limit', async () => {
    const files = auditFiles(dir);
    expect(files.length).toBe(5);
    const verify = await cli(['audit', 'verify', dir], { env: HEAP, timeoutMs: 60_000 });
    expect(verify.stderr).toBe('');
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(new RegExp(`^ok: ${EVENTS} events in 5 files, seq 0 to ${EVENTS - 1}, head [0-9a-f]{64}$`, 'm'));
    const report = await cli(['audit', 'report', dir, '--by', 'agent', '--json'], { env: HEAP, timeoutMs: 60_000 });
    expect(report.code, report.stderr).toBe(0);
    const rows = (JSON.parse(report.stdout) as { rows: Array<{ key: string; calls: number; requestBytes: number }>; skippedLines: number });
    expect(rows.rows.map((r) => [r.key, r.calls])).toEqual([
      ['agent://big/0', 10_667],
      ['agent://big/1', 10_667],
      ['agent://big/2', 10_666],
    ]);
    expect(rows.skippedLines).toBe(0);
  }, 120_000);

  it('--max-line-bytes: a longer line is malformed for verify, where it is, and a warning for report', async () => {
    const small = join(tmp.dir, 'small');
    const log = await AuditLog.open(small);
    for (let i = 0; i < 4; i++) log.write(request(i, i === 2 ? { errorMessage: 'x'.repeat(256), arguments: { text: 'y'.repeat(3000) } } : {}));
    await log.close();
    const [file] = auditFiles(small);
    const whole = await cli(['audit', 'verify', small]);
    expect(whole.code, whole.stdout).toBe(0);
    const cut = await cli(['audit', 'verify', small, '--max-line-bytes', '2048']);
    expect(cut.code).toBe(1);
    expect(cut.stdout).toContain(`${file}:3: malformed: line longer than 2048 bytes, the longest read (maxLineBytes): not read`);
    expect(cut.stdout).toContain(`${file}:4: deleted: event(s) missing before seq 3 (expected seq 2)`);
    const report = await cli(['audit', 'report', small, '--max-line-bytes', '2048', '--by', 'agent']);
    expect(report.code).toBe(0);
    expect(report.stderr).toContain(`pqmcp audit report: warning: 1 line(s) longer than 2048 bytes (--max-line-bytes) not read, the first at ${file}:3`);
    // The overlong line (agent big/2's request) is not counted.
    expect(report.stdout).toMatch(/^agent:\/\/big\/0\s+2\s/m);
    expect(report.stdout).toMatch(/^agent:\/\/big\/1\s+1\s/m);
    expect(report.stdout).not.toContain('agent://big/2');
    // A crash's partial line past the limit is not a partial line the writer could leave.
    appendFileSync(file!, 'z'.repeat(3000));
    const partial = await cli(['audit', 'verify', file!, '--max-line-bytes', '4096', '--json']);
    expect(partial.code).toBe(0);
    expect(JSON.parse(partial.stdout)).toMatchObject({ ok: true, problems: [{ kind: 'incomplete', line: 5 }] });
    const over = await cli(['audit', 'verify', file!, '--max-line-bytes', '2048', '--json']);
    expect(JSON.parse(over.stdout)).toMatchObject({ ok: false, problems: [{ kind: 'malformed', line: 3 }, { kind: 'deleted', line: 4 }, { kind: 'malformed', line: 5 }] });
    expect((await cli(['audit', 'verify', small, '--max-line-bytes', '10'])).code).toBe(2);
  }, 60_000);
});
