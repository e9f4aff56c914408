/**
 * A restarted AuditLog finds the chain head by reading its newest file backwards: each line
 * is looked at once, so a file ending in many lines that are not intact events (damage, or
 * another program's output) costs time in proportion to its size, and the line found may be
 * longer than the chunks it is read in.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { AuditLog, auditFiles, parseLine, verifyTrail } from '../../src/audit/index.js';
import type { AuditEvent } from '../../src/audit/index.js';

const root = mkdtempSync(join(tmpdir(), 'pqmcp-restart-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());
let dirs = 0;

const event = (i: number, message = `n${i}`): AuditEvent => ({ type: 'handshake.failure', time: 1_700_000_000_000 + i, role: 'server', remoteAddress: '127.0.0.1', code: 'ERR_DECODE', message });

async function trail(events: AuditEvent[]): Promise<{ dir: string; file: string; lines: string[] }> {
  const dir = join(root, `d${dirs++}`);
  const log = await AuditLog.open(dir);
  for (const e of events) log.write(e);
  await log.close();
  const [file] = auditFiles(dir);
  return { dir, file: file!, lines: readFileSync(file!, 'utf8').split('\n').slice(0, -1) };
}

describe('AuditLog.open continues from the last intact event of the newest file', () => {
  it('past 4 MiB of lines that are not intact events, copying each byte a bounded number of times', async () => {
    const { dir, file, lines } = await trail([event(0), event(1), event(2)]);
    // Copies of the last event with one byte changed: lines that parse but fail their hash.
    const damaged = `${lines[2]!.replace('"n2"', '"x2"')}\n`;
    appendFileSync(file, damaged.repeat(Math.ceil((4 << 20) / damaged.length)));
    appendFileSync(file, '{"seq":3,"prev":"');
    const size = statSync(file).size;
    const concat = Buffer.concat;
    let copied = 0;
    vi.spyOn(Buffer, 'concat').mockImplementation((list: readonly Uint8Array[], length?: number) => {
      const out = concat(list, length);
      copied += out.length;
      return out;
    });
    const log = await AuditLog.open(dir);
    vi.restoreAllMocks();
    expect(log.position).toEqual({ seq: 2, hash: parseLine(lines[2]!)!.hash });
    // Reading the whole tail again for each earlier chunk copied ~size^2 / 128 KiB bytes (~130 MB here).
    expect(copied).toBeLessThan(2 * size);
    await log.close();
  });

  it('when that event is longer than the chunks it is read in', async () => {
    const { dir, file, lines } = await trail([event(0), event(1, 'y'.repeat(1 << 20))]);
    appendFileSync(file, 'not an event\n'.repeat(1000));
    const log = await AuditLog.open(dir);
    expect(log.position).toEqual({ seq: 1, hash: parseLine(lines[1]!)!.hash });
    log.write(event(2));
    await log.close();
    const next = auditFiles(dir)[1]!;
    expect(parseLine(readFileSync(next, 'utf8').split('\n')[0]!)).toMatchObject({ seq: 2, prev: parseLine(lines[1]!)!.hash, intact: true });
  });
});

describe('chain order is the seq in the file names, not the names (review 15, R15-2)', () => {
  it('a clock stepped back between two rotations: the untouched trail verifies, and a restart continues after its last event', async () => {
    const dir = join(root, `d${dirs++}`);
    let t = Date.parse('2026-12-07T15:00:00.000Z');
    const log = await AuditLog.open(dir, { maxBytes: 1024, flushMs: 0, now: () => t });
    for (let i = 0; i < 9; i++) {
      // An NTP step (or a VM restored) an hour back while the writer runs.
      if (i === 3) t = Date.parse('2026-12-07T14:00:00.000Z');
      log.write(event(i, 'x'.repeat(300)));
      log.flush();
    }
    const last = log.position;
    await log.close();
    const files = auditFiles(dir);
    expect(files.length).toBeGreaterThan(2);
    // The first file's name (15:00) sorts after the later ones' (14:00).
    expect([...files].sort()).not.toEqual(files);
    expect(files.map((f) => parseLine(readFileSync(f, 'utf8').split('\n')[0]!)!.seq)).toEqual([...files.map((f) => parseLine(readFileSync(f, 'utf8').split('\n')[0]!)!.seq)].sort((a, b) => a - b));
    expect(await verifyTrail(files)).toMatchObject({ ok: true, events: 9, problems: [] });
    const again = await AuditLog.open(dir, { flushMs: 0 });
    expect(again.position).toEqual(last);
    again.write(event(9));
    await again.close();
    expect(await verifyTrail(auditFiles(dir))).toMatchObject({ ok: true, events: 10, head: { seq: 9 } });
  });

  it('two files naming one seq (a crash left only a partial first line, the restart began there), clock stepped back: the partial one is read first', async () => {
    const dir = join(root, `d${dirs++}`);
    const log = await AuditLog.open(dir, { flushMs: 0, now: () => Date.parse('2026-12-07T15:00:00.000Z') });
    for (let i = 0; i < 3; i++) log.write(event(i));
    await log.close();
    // The crash: a file started at seq 3 whose only line was cut before its end (here: only its '\n').
    const crashed = await AuditLog.open(dir, { flushMs: 0, now: () => Date.parse('2026-12-07T15:30:00.000Z') });
    crashed.write(event(3, '-lost'));
    await crashed.close();
    const cut = auditFiles(dir)[1]!;
    writeFileSync(cut, readFileSync(cut, 'utf8').slice(0, -1));
    // The restart, its clock an hour back: its file names seq 3 too, with an earlier time.
    const again = await AuditLog.open(dir, { flushMs: 0, now: () => Date.parse('2026-12-07T14:30:00.000Z') });
    expect(again.position.seq).toBe(2);
    again.write(event(3));
    again.write(event(4));
    await again.close();
    const files = auditFiles(dir);
    expect(files.length).toBe(3);
    expect(files[1]).toBe(cut);
    const r = await verifyTrail(files);
    expect(r).toMatchObject({ ok: true, events: 5, head: { seq: 4 } });
    expect(r.problems.map((p) => [p.kind, p.file])).toEqual([['incomplete', cut]]);
    const reopened = await AuditLog.open(dir);
    expect(reopened.position.seq).toBe(4);
    await reopened.close();
  });
});
