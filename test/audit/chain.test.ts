/**
 * The audit chain and audit files: real files in a temporary directory. verify finds each
 * kind of tampering (edit, edit with the hash recomputed, deletion, insertion, reordering,
 * a deleted file) and says where; rotation by size and by age; a restarted writer continues
 * the chain; a crash's partial last line is reported as incomplete and the chain continues
 * from the last complete event.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { AuditLog, auditFiles, chainLine, parseLine, verifyChain, meter, GENESIS } from '../../src/audit/index.js';
import { sha256Hex, sha256HexWith } from '../../src/audit/events.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { MAX_TIMER_MS } from '../../src/timer-limit.js';
import * as nodeCrypto from 'node:crypto';
import type { AuditEvent, AuditLogOptions, RequestEvent } from '../../src/audit/index.js';

const root = mkdtempSync(join(tmpdir(), 'pqmcp-audit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const newDir = (): string => join(root, `d${dirs++}`);

function request(i: number, over: Partial<RequestEvent> = {}): RequestEvent {
  return {
    type: 'request', time: 1_700_000_000_000 + i, role: 'server', sessionId: 's1', agentId: `agent://t/${i % 2 === 0 ? 'alice' : 'bob'}`, issuer: 'issuer://t',
    fingerprint: 'f'.repeat(64), serial: '01', direction: 'fromPeer', method: 'tools/call', name: i % 3 === 0 ? 'echo' : 'add', requestBytes: 100 + i, responseBytes: 200, durationMs: 5, outcome: 'ok', ...over,
  };
}

async function writeTrail(dir: string, count: number, options: AuditLogOptions = {}): Promise<string[]> {
  const log = await AuditLog.open(dir, options);
  for (let i = 0; i < count; i++) log.write(request(i));
  await log.close();
  return auditFiles(dir);
}

const read = (files: string[]) => files.map((f) => ({ name: basename(f), text: readFileSync(f, 'utf8') }));
const lines = (file: string): string[] => readFileSync(file, 'utf8').split('\n').slice(0, -1);
const setLines = (file: string, ls: string[]): void => writeFileSync(file, ls.map((l) => `${l}\n`).join(''));

describe('audit chain', () => {
  it('links each line to the one before with the hash of its exact bytes', () => {
    const a = chainLine({ seq: -1, hash: GENESIS }, request(0));
    const b = chainLine(a.head, request(1));
    const pa = parseLine(a.line)!;
    const pb = parseLine(b.line)!;
    expect(pa).toMatchObject({ seq: 0, prev: GENESIS, intact: true });
    expect(pb).toMatchObject({ seq: 1, prev: pa.hash, intact: true });
    const body = `${b.line.slice(0, b.line.indexOf(',"hash":'))}}`;
    expect(pb.hash).toBe(createHash('sha256').update(body).digest('hex'));
    expect(pb.event).toMatchObject({ type: 'request', agentId: 'agent://t/bob' });
    expect(parseLine(b.line.replace('agent://t/bob', 'agent://t/eve'))!.intact).toBe(false);
    expect(parseLine('{"no":"hash"}')).toBeUndefined();
  });

  it('writes exactly the line the format defines: JSON.stringify({ seq, prev, ...event }) plus its hash', () => {
    const events: AuditEvent[] = [
      request(0),
      request(1, { outcome: 'denied', errorCode: -32600, errorMessage: 'no "quotes"\n, \\ or \u2028 \u00e9\ud83d\ude00', policy: { decision: 'deny', policies: ['p1'], reason: 'r' } }),
      request(2, { arguments: { text: 'caf\u00e9 \u0000', nested: [1, null, { a: true }] }, result: { content: [{ type: 'text', text: '\u{1F600}' }] } }),
      { type: 'session.open', time: 1, role: 'server', sessionId: 's', agentId: 'a', issuer: 'i', fingerprint: 'f', serial: '01', suite: 'S', backend: 'native', endpoint: undefined, remoteAddress: undefined, handshakeMs: 2, resumed: false },
      { type: 'handshake.failure', time: 1, role: 'client', remoteAddress: undefined, code: 'ERR_X', message: 'm' },
    ];
    let head = { seq: 41, hash: 'ab'.repeat(32) };
    for (const event of events) {
      const { line, head: next } = chainLine(head, event);
      const body = JSON.stringify({ seq: head.seq + 1, prev: head.hash, ...event });
      const hash = createHash('sha256').update(body).digest('hex');
      expect(line).toBe(`${body.slice(0, -1)},"hash":"${hash}"}`);
      expect(next).toEqual({ seq: head.seq + 1, hash });
      expect(parseLine(line)!.intact).toBe(true);
      head = next;
    }
  });

  it('sha256Hex (node:crypto one-shot digest) equals SHA-256 by noble and by a Hash object, for text and bytes', () => {
    for (const text of ['', 'abc', 'caf\u00e9 \ud83d\ude00', 'x'.repeat(10_000)]) {
      const bytes = new TextEncoder().encode(text);
      const want = bytesToHex(sha256(bytes));
      expect(sha256Hex(text)).toBe(want);
      expect(sha256Hex(bytes)).toBe(want);
      expect(createHash('sha256').update(text).digest('hex')).toBe(want);
    }
  });

  it('each SHA-256 path (one-shot digest, a Hash object on a Node.js without one, noble without node:crypto) gives the same digest, also of a view into a larger buffer', () => {
    // node:crypto's real functions, counted, to see which one each path calls.
    const calls = { hash: 0, createHash: 0 };
    const counted = {
      hash: (alg: string, data: string | Uint8Array, enc: 'hex') => (calls.hash++, nodeCrypto.hash(alg, data, enc)),
      createHash: (alg: string) => (calls.createHash++, nodeCrypto.createHash(alg)),
    };
    const paths = {
      oneShot: sha256HexWith(counted),
      hashObject: sha256HexWith({ createHash: counted.createHash }),
      noble: sha256HexWith(undefined),
    };
    paths.oneShot('a');
    expect(calls).toEqual({ hash: 1, createHash: 0 });
    paths.hashObject('a');
    expect(calls).toEqual({ hash: 1, createHash: 1 });
    paths.noble('a');
    expect(calls).toEqual({ hash: 1, createHash: 1 });
    // Both runtimes CI runs (Node 20.20, Node 24) have the one-shot digest: the default path.
    expect(typeof nodeCrypto.hash).toBe('function');
    const big = new TextEncoder().encode(`[${'y'.repeat(5000)}caf\u00e9]`);
    for (const text of ['', 'abc', 'caf\u00e9 \ud83d\ude00', 'x'.repeat(10_000)]) {
      const bytes = new TextEncoder().encode(text);
      const want = bytesToHex(sha256(bytes));
      // The same bytes as a view at an offset of a larger buffer (as the AuditLog hashes its lines).
      const view = new Uint8Array(bytes.length + 7);
      view.set(bytes, 3);
      for (const [name, hex] of Object.entries(paths)) {
        expect([name, hex(text)]).toEqual([name, want]);
        expect([name, hex(bytes)]).toEqual([name, want]);
        expect([name, hex(view.subarray(3, 3 + bytes.length))]).toEqual([name, want]);
      }
    }
    for (const hex of Object.values(paths)) expect(hex(big.subarray(1, 101))).toBe(bytesToHex(sha256(big.subarray(1, 101))));
  });

  it('a written trail verifies', async () => {
    const files = await writeTrail(newDir(), 20);
    const r = verifyChain(read(files));
    expect(r).toMatchObject({ ok: true, events: 20, files: 1, problems: [], head: { seq: 19 } });
  });

  describe('finds each kind of tampering and says where', () => {
    const tamper = async (change: (ls: string[]) => string[]) => {
      const [file] = await writeTrail(newDir(), 10);
      setLines(file!, change(lines(file!)));
      const r = verifyChain(read([file!]));
      expect(r.ok).toBe(false);
      return r.problems;
    };

    it('an edited event', async () => {
      const problems = await tamper((ls) => ls.map((l, i) => (i === 4 ? l.replace('"outcome":"ok"', '"outcome":"denied"') : l)));
      expect(problems).toEqual([expect.objectContaining({ kind: 'edited', line: 5 })]);
    });

    it('an edited event whose hash was recomputed', async () => {
      const problems = await tamper((ls) => {
        const prev = parseLine(ls[3]!)!;
        const forged = chainLine({ seq: prev.seq, hash: prev.hash }, request(4, { agentId: 'agent://t/mallory' }));
        return ls.map((l, i) => (i === 4 ? forged.line : l));
      });
      expect(problems).toEqual([expect.objectContaining({ kind: 'edited', line: 6 })]);
      expect(problems[0]!.message).toMatch(/event before it/);
    });

    it('a deleted event', async () => {
      const problems = await tamper((ls) => ls.filter((_, i) => i !== 6));
      expect(problems).toEqual([expect.objectContaining({ kind: 'deleted', line: 7 })]);
      expect(problems[0]!.message).toContain('seq 6');
    });

    it('an inserted event', async () => {
      const problems = await tamper((ls) => {
        const prev = parseLine(ls[2]!)!;
        const forged = chainLine({ seq: prev.seq, hash: prev.hash }, request(99));
        return [...ls.slice(0, 3), forged.line, ...ls.slice(3)];
      });
      expect(problems).toEqual([expect.objectContaining({ kind: 'inserted', line: 5 })]);
    });

    it('reordered events', async () => {
      const problems = await tamper((ls) => [...ls.slice(0, 2), ls[3]!, ls[2]!, ...ls.slice(4)]);
      expect(problems[0]).toMatchObject({ kind: 'reordered', line: 3 });
      expect(problems.every((p) => p.kind === 'reordered')).toBe(true);
    });

    it('a line that is not an event', async () => {
      const problems = await tamper((ls) => [...ls.slice(0, 5), 'garbage', ...ls.slice(5)]);
      expect(problems).toEqual([expect.objectContaining({ kind: 'malformed', line: 6 })]);
    });
  });

  describe('anchors kept elsewhere catch what the files alone cannot (review 8)', () => {
    /** Events seq 0..19, and the head after each as the gateway would have logged it. */
    const trail = async () => {
      const [file] = await writeTrail(newDir(), 20);
      const ls = lines(file!);
      const heads = ls.map((l) => ({ seq: parseLine(l)!.seq, hash: parseLine(l)!.hash }));
      return { file: file!, ls, heads };
    };
    /** The events from index `from` on, re-chained after `edit`: a rewrite with every hash recomputed. */
    const rewrite = (ls: string[], from: number, edit: (e: AuditEvent) => AuditEvent): string[] => {
      let head = { seq: parseLine(ls[from - 1]!)!.seq, hash: parseLine(ls[from - 1]!)!.hash };
      return ls.map((l, i) => {
        if (i < from) return l;
        const { seq: _seq, prev: _prev, ...event } = parseLine(l)!.event;
        const next = chainLine(head, edit(event as AuditEvent));
        head = next.head;
        return next.line;
      });
    };

    it('a whole trail matches its anchors; it starts at the genesis', async () => {
      const { file, heads } = await trail();
      const r = verifyChain(read([file]), { anchors: [heads[7]!, heads[19]!] });
      expect(r).toMatchObject({ ok: true, fromGenesis: true, anchorsMatched: 2, problems: [] });
    });

    it('a cut-off tail verifies alone, and is found against the last anchor', async () => {
      const { file, ls, heads } = await trail();
      setLines(file, ls.slice(0, 17));
      expect(verifyChain(read([file]))).toMatchObject({ ok: true, head: { seq: 16 } });
      const r = verifyChain(read([file]), { anchors: [heads[19]!] });
      expect(r.ok).toBe(false);
      expect(r.problems).toEqual([expect.objectContaining({ kind: 'deleted', line: 18, message: expect.stringMatching(/ends at seq 16, before the anchored seq 19: its tail was cut off/) })]);
    });

    it('a trail rewritten with its hashes recomputed verifies alone, and is found against an anchor after the change', async () => {
      const { file, ls, heads } = await trail();
      setLines(file, rewrite(ls, 5, (e) => ({ ...e, agentId: 'agent://t/mallory' }) as AuditEvent));
      expect(verifyChain(read([file])).ok).toBe(true);
      const r = verifyChain(read([file]), { anchors: [heads[3]!, heads[12]!] });
      expect(r.anchorsMatched).toBe(1);
      expect(r.problems).toEqual([expect.objectContaining({ kind: 'edited', line: 13, message: expect.stringMatching(/seq 12 does not have the anchored hash/) })]);
    });

    it('a start cut off is told apart from the genesis, and found against an anchor before it', async () => {
      const { file, ls, heads } = await trail();
      setLines(file, ls.slice(3));
      const alone = verifyChain(read([file]));
      expect(alone).toMatchObject({ ok: true, fromGenesis: false, first: { seq: 3 } });
      const r = verifyChain(read([file]), { anchors: [heads[1]!] });
      expect(r.problems).toEqual([expect.objectContaining({ kind: 'deleted', line: 1, message: expect.stringMatching(/seq 1 is not in the files read \(they start at seq 3\)/) })]);
    });
  });

  it('rotates by size, links the files, and finds a deleted file', async () => {
    const dir = newDir();
    const files = await writeTrail(dir, 60, { maxBytes: 4096 });
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) expect(readFileSync(f).length).toBeLessThanOrEqual(4096);
    expect(verifyChain(read(files))).toMatchObject({ ok: true, events: 60, files: files.length });
    // Each file starts from the last hash of the one before.
    const lastOf = parseLine(lines(files[0]!).at(-1)!)!;
    expect(parseLine(lines(files[1]!)[0]!)!.prev).toBe(lastOf.hash);
    const r = verifyChain(read([files[0]!, ...files.slice(2)]));
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'deleted', file: basename(files[2]!), line: 1 })]);
  });

  it('writes each line byte for byte as chainLine() makes it: across rotations inside one flush, a burst larger than the queue, a line larger than the queue, non-ASCII text', async () => {
    const dir = newDir();
    const anchors: Array<{ file: string; seq: number; hash: string }> = [];
    const log = await AuditLog.open(dir, { maxBytes: 64 * 1024, flushMs: 60_000, onrotate: (file, head) => anchors.push({ file: basename(file), ...head }) });
    const events: AuditEvent[] = [];
    // One turn: ~1,900 lines (~1 MiB, several queue buffers and files), then a 300 KiB line.
    for (let i = 0; i < 1900; i++) {
      events.push(request(i, i % 7 === 0 ? { errorMessage: `caf\u00e9 \ud83d\ude00 "q" \\ \u0001 ${'x'.repeat(i % 400)}` } : {}));
    }
    events.push(request(1900, { arguments: { text: '\u00e9'.repeat(150_000) } }));
    events.push({ type: 'session.close', time: 2, role: 'server', sessionId: 's', agentId: 'a', issuer: 'i', fingerprint: 'f', serial: '01', durationMs: 3, bytesIn: 4, bytesOut: 5, keyUpdates: 0, end: 'local' });
    for (const e of events) log.write(e);
    await log.close();
    // The same chain computed line by line by the pure function.
    let head = { seq: -1, hash: GENESIS };
    const want = events.map((e) => {
      const next = chainLine(head, e);
      head = next.head;
      return next.line;
    });
    const files = auditFiles(dir);
    expect(files.length).toBeGreaterThan(10);
    expect(files.flatMap((f) => lines(f))).toEqual(want);
    // Only the line larger than maxBytes gets a file larger than maxBytes, on its own.
    for (const f of files) if (lines(f).length > 1) expect(readFileSync(f).length).toBeLessThanOrEqual(64 * 1024);
    expect(files.filter((f) => readFileSync(f).length > 64 * 1024).map((f) => lines(f).length)).toEqual([1]);
    expect(verifyChain(read(files))).toMatchObject({ ok: true, events: events.length });
    // Each finished file's anchor is its last line's head, and files are named after their first seq.
    expect(anchors.map((a) => a.file)).toEqual(files.map((f) => basename(f)));
    for (const [i, f] of files.entries()) {
      const last = parseLine(lines(f).at(-1)!)!;
      expect(anchors[i]).toMatchObject({ seq: last.seq, hash: last.hash });
      expect(basename(f)).toMatch(new RegExp(`-${String(parseLine(lines(f)[0]!)!.seq).padStart(12, '0')}\\.jsonl$`));
    }
    expect(log.position).toEqual(head);
  });

  it('writes queued events within flushMs, without close (what a crash would keep)', async () => {
    const log = await AuditLog.open(newDir(), { flushMs: 20 });
    log.write(request(0));
    log.write(request(1));
    expect(log.currentFile).toBeUndefined();
    await new Promise((r) => setTimeout(r, 150));
    const [file] = auditFiles(log.dir);
    expect(verifyChain(read([file!]))).toMatchObject({ ok: true, events: 2 });
    // A burst above FLUSH_BYTES goes out at the end of the turn, not after flushMs.
    const slow = await AuditLog.open(newDir(), { flushMs: 60_000 });
    for (let i = 0; i < 400; i++) slow.write(request(i, { errorMessage: 'x'.repeat(200) }));
    await new Promise((r) => setImmediate(r));
    expect(verifyChain(read(auditFiles(slow.dir))).events).toBe(400);
    // After such an early flush, an event queued next is still written within flushMs.
    const busy = await AuditLog.open(newDir(), { flushMs: 30 });
    for (let i = 0; i < 400; i++) busy.write(request(i, { errorMessage: 'x'.repeat(200) }));
    await new Promise((r) => setImmediate(r));
    busy.write(request(400));
    await new Promise((r) => setTimeout(r, 150));
    expect(verifyChain(read(auditFiles(busy.dir))).events).toBe(401);
    await log.close();
    await slow.close();
    await busy.close();
  });

  it('flushMs above the timers\' limit (2^31 - 1 ms) is refused: Node ran such a timer after 1 ms, a flush after every write', async () => {
    const refused = await AuditLog.open(newDir(), { flushMs: 2 ** 31 }).then(() => undefined, (e: unknown) => e);
    expect(refused).toBeInstanceOf(InvalidArgumentError);
    expect((refused as Error).message).toBe(`flushMs must be at most ${MAX_TIMER_MS} ms (about 24.8 days: the timers' limit)`);
    const longest = await AuditLog.open(newDir(), { flushMs: MAX_TIMER_MS });
    longest.write(request(0));
    await longest.close();
    expect(verifyChain(read(auditFiles(longest.dir))).events).toBe(1);
  });

  it('rotates by age', async () => {
    let t = Date.UTC(2026, 11, 6, 0, 0, 0);
    const log = await AuditLog.open(newDir(), { maxAgeMs: 60_000, now: () => t });
    // Writes every 25 s; files opened at 0 s, 75 s, 150 s.
    for (let i = 0; i < 8; i++) {
      log.write(request(i));
      log.flush();
      t += 25_000;
    }
    await log.close();
    const files = auditFiles(log.dir);
    expect(files.length).toBe(3);
    expect(files.map((f) => lines(f).length)).toEqual([3, 3, 2]);
    expect(verifyChain(read(files))).toMatchObject({ ok: true, events: 8 });
  });

  it('a restarted writer continues the chain, also after a crash left a partial line', async () => {
    const dir = newDir();
    const anchors: Array<{ file: string; seq: number }> = [];
    await writeTrail(dir, 5);
    // A crash in the middle of a line.
    const [first] = auditFiles(dir);
    appendFileSync(first!, '{"seq":5,"prev":"');
    const log = await AuditLog.open(dir, { onrotate: (file, head) => anchors.push({ file: basename(file), seq: head.seq }) });
    expect(log.position.seq).toBe(4);
    log.write(request(5));
    log.write(request(6));
    await log.close();
    const files = auditFiles(dir);
    expect(files.length).toBe(2);
    const r = verifyChain(read(files));
    expect(r).toMatchObject({ ok: true, events: 7, head: { seq: 6 } });
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'incomplete', file: basename(first!), line: 6 })]);
    expect(anchors).toEqual([{ file: basename(files[1]!), seq: 6 }]);
    // The tail cut off: only an anchor kept elsewhere shows it (docs/threat-model.md).
    unlinkSync(files[1]!);
    expect(verifyChain(read(auditFiles(dir))).ok).toBe(true);
  });

  it('meters calls, errors, denials, bytes and time per agent, tool and issuer', () => {
    const events: AuditEvent[] = [request(0), request(1, { outcome: 'error' }), request(2, { outcome: 'denied' }), request(3), { type: 'handshake.failure', time: 0, role: 'server', remoteAddress: undefined, code: 'X', message: 'x' }];
    expect(meter(events, { by: 'agent' })).toEqual([
      { key: 'agent://t/alice', calls: 2, errors: 0, denials: 1, requestBytes: 202, responseBytes: 400, totalMs: 10 },
      { key: 'agent://t/bob', calls: 2, errors: 1, denials: 0, requestBytes: 204, responseBytes: 400, totalMs: 10 },
    ]);
    expect(meter(events, { by: 'tool' }).map((r) => [r.key, r.calls])).toEqual([['add', 2], ['echo', 2]]);
    expect(meter(events, { by: 'issuer', since: 1_700_000_000_002 })).toEqual([expect.objectContaining({ key: 'issuer://t', calls: 2 })]);
  });
});
