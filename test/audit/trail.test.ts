/**
 * Verifying a trail without holding it (review 8, L6): ChainVerifier (fed line by line),
 * verifyChain over texts and verifyTrail over files read in chunks give exactly the
 * findings of the whole-trail verifier they replace (kept below as the reference, over
 * randomly tampered multi-file trails, read in chunks as small as one byte); trailLines
 * splits lines across chunks and decodes them as the whole file would be; a line longer
 * than maxLineBytes is reported, not held; a trail broken in more places than MAX_SEQ_RUNS
 * still verifies (as tampered) with bounded state.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChainVerifier, GENESIS, MAX_PROBLEMS, MAX_SEQ_RUNS, chainLine, parseLine, trailLines, verifyChain, verifyTrail } from '../../src/audit/index.js';
import type { AuditEvent, ChainHead, ChainProblem, ParsedLine, TrailLine, VerifyOptions, VerifyResult } from '../../src/audit/index.js';

const root = mkdtempSync(join(tmpdir(), 'pqmcp-trail-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let files = 0;
const newFile = (content: string | Buffer): string => {
  const path = join(root, `f${files++}.jsonl`);
  writeFileSync(path, content);
  return path;
};

/**
 * The verifier as it was before it streamed (the eighth session's verifyChain: every
 * file's lines and parsed events held at once, a Set of every seq). The oracle the
 * streaming verifier must agree with.
 */
function reference(input: ReadonlyArray<{ name: string; text: string }>, options: VerifyOptions = {}): VerifyResult {
  const problems: ChainProblem[] = [];
  const report = (p: ChainProblem): void => void (problems.length < MAX_PROBLEMS && problems.push(p));
  const parsedFiles = input.map((f) => {
    const lines = f.text.split('\n');
    const complete = f.text.endsWith('\n') || f.text === '';
    const last = lines.pop() ?? '';
    return { name: f.name, lines, partial: complete ? undefined : last, parsed: lines.map((l) => parseLine(l)) };
  });
  const allSeqs = new Set<number>();
  for (const f of parsedFiles) for (const p of f.parsed) if (p) allSeqs.add(p.seq);
  const anchors = options.anchors ?? [];
  const anchored = new Map<number, { hash: string; file: string; line: number } | undefined>(anchors.map((a) => [a.seq, undefined]));
  let expected: ChainHead | undefined;
  let first: ChainHead | undefined;
  let fromGenesis = false;
  let events = 0;
  const seen = new Set<number>();
  const classify = (p: ParsedLine, exp: ChainHead): Omit<ChainProblem, 'file' | 'line'> => {
    const want = exp.seq + 1;
    if (p.seq === want) return { kind: 'edited', message: `event seq ${p.seq} does not follow the event before it: that event was replaced (its hash recomputed)` };
    if (p.seq > want) {
      const missing = [];
      for (let s = want; s < p.seq && missing.length < 2; s++) if (!allSeqs.has(s)) missing.push(s);
      if (missing.length > 0) return { kind: 'deleted', message: `event(s) missing before seq ${p.seq} (expected ${p.seq - 1 === want ? `seq ${want}` : `seq ${want} to ${p.seq - 1}`})` };
      return { kind: 'reordered', message: `event seq ${p.seq} comes before seq ${want}, which appears elsewhere` };
    }
    if (seen.has(p.seq)) return { kind: 'inserted', message: `event seq ${p.seq} appears twice: an event was inserted here or just before` };
    return { kind: 'reordered', message: `event seq ${p.seq} comes after seq ${exp.seq}: events are out of order` };
  };
  for (const f of parsedFiles) {
    for (const [i, p] of f.parsed.entries()) {
      const where = { file: f.name, line: i + 1 };
      if (!p) {
        report({ kind: 'malformed', ...where, message: f.lines[i] === '' ? 'empty line' : 'not a chained audit event (no valid seq, prev and hash)' });
        continue;
      }
      events++;
      if (first === undefined) {
        first = { seq: p.seq, hash: p.hash };
        fromGenesis = p.seq === 0 && p.prev === GENESIS;
      }
      if (!p.intact) report({ kind: 'edited', ...where, message: `event seq ${p.seq} does not match its hash: it was changed after it was written` });
      else if (expected && (p.seq !== expected.seq + 1 || p.prev !== expected.hash)) report({ ...classify(p, expected), ...where });
      if (p.intact && anchored.has(p.seq) && anchored.get(p.seq) === undefined) anchored.set(p.seq, { hash: p.hash, ...where });
      seen.add(p.seq);
      expected = { seq: p.seq, hash: p.hash };
    }
    if (f.partial !== undefined) {
      // Never part of the chain (review 15, R15-4): a whole event there must follow the last one read.
      const where = { file: f.name, line: f.lines.length + 1 };
      const p = parseLine(f.partial);
      if (!p) report({ kind: 'incomplete', ...where, message: 'last line has no end (the writer stopped while writing it, e.g. a crash): not an event; the chain goes on from the last complete one' });
      else if (!p.intact) report({ kind: 'edited', ...where, message: `event seq ${p.seq}, on a last line without its end, does not match its hash: it was changed after it was written` });
      else if (expected && (p.seq !== expected.seq + 1 || p.prev !== expected.hash)) report({ kind: 'inserted', ...where, message: `event seq ${p.seq}, on a last line without its end, does not follow the event before it: not what a crash leaves, it was added` });
      else report({ kind: 'incomplete', ...where, message: `event seq ${p.seq} has no end of line (the writer stopped before it, e.g. a crash): not part of the chain, not counted, no anchor; the chain goes on from the event before it` });
    }
  }
  let anchorsMatched = 0;
  const last = parsedFiles[parsedFiles.length - 1];
  const end = { file: last?.name ?? '(no file)', line: (last?.lines.length ?? 0) + 1 };
  for (const a of anchors) {
    const found = anchored.get(a.seq);
    if (found?.hash === a.hash) anchorsMatched++;
    else if (found !== undefined) report({ kind: 'edited', file: found.file, line: found.line, message: `event seq ${a.seq} does not have the anchored hash ${a.hash.slice(0, 16)}...: the trail was rewritten up to it` });
    else if (expected === undefined || a.seq > expected.seq) report({ kind: 'deleted', ...end, message: `the trail ends ${expected === undefined ? 'with no event' : `at seq ${expected.seq}`}, before the anchored seq ${a.seq}: its tail was cut off` });
    else report({ kind: 'deleted', file: parsedFiles[0]?.name ?? '(no file)', line: 1, message: `the anchored event seq ${a.seq} is not in the files read${first !== undefined && a.seq < first.seq ? ` (they start at seq ${first.seq})` : ''}` });
  }
  return { ok: problems.every((p) => p.kind === 'incomplete'), events, files: input.length, first, head: expected, fromGenesis, anchorsMatched, problems };
}

/** A deterministic PRNG (xorshift32), so a failing case can be replayed from its seed. */
function prng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

const event = (i: number, text = ''): AuditEvent => ({ type: 'handshake.failure', time: 1_700_000_000_000 + i, role: 'server', remoteAddress: '127.0.0.1', code: 'ERR_DECODE', message: `n${i}${text}` });

/** `count` chained lines starting after `head`. */
function chain(count: number, head: ChainHead = { seq: -1, hash: GENESIS }, text = ''): { lines: string[]; heads: ChainHead[] } {
  const lines: string[] = [];
  const heads: ChainHead[] = [];
  for (let i = 0; i < count; i++) {
    const next = chainLine(head, event(head.seq + 1, text));
    lines.push(next.line);
    heads.push((head = next.head));
  }
  return { lines, heads };
}

/** One random change of the kinds an attacker (or a crash, or a mistaken copy) makes. */
function tamper(lines: string[], heads: ChainHead[], r: (n: number) => number): string[] {
  const ls = [...lines];
  const at = r(ls.length);
  // A head of the original chain near `at` (forged events chain from it).
  const near = (i: number): ChainHead => heads[Math.max(0, Math.min(i, heads.length - 1))]!;
  switch (r(11)) {
    case 0: // edit in place
      ls[at] = ls[at]!.replace(/"time":\d+/, '"time":1');
      break;
    case 1: // replace with a forged event, hash recomputed
      if (at > 0) ls[at] = chainLine(near(at - 1), event(999)).line;
      break;
    case 2: // delete one or a few
      ls.splice(at, 1 + r(3));
      break;
    case 3: // insert a forged event (a repeated seq)
      ls.splice(at, 0, chainLine(near(at - 1), event(998)).line);
      break;
    case 4: // duplicate a line elsewhere
      ls.splice(r(ls.length), 0, ls[at]!);
      break;
    case 5: {
      // move a line near or far
      const [moved] = ls.splice(at, 1);
      ls.splice(r(ls.length + 1), 0, moved!);
      break;
    }
    case 6: // swap two neighbours
      if (at + 1 < ls.length) [ls[at], ls[at + 1]] = [ls[at + 1]!, ls[at]!];
      break;
    case 7: // garbage, an empty line, bytes that are not UTF-8 (made a U+FFFD by decoding)
      ls.splice(at, 0, ['garbage', '', '{"seq":1}', ls[at]!.slice(0, 40)][r(4)]!);
      break;
    case 8: // a far jump forward (seqs that are nowhere)
      ls[at] = chainLine({ seq: near(at).seq + 1000, hash: near(at).hash }, event(997)).line;
      break;
    case 9: // reverse a stretch
      ls.splice(at, 4, ...ls.slice(at, at + 4).reverse());
      break;
    default: // cut the tail or the start
      if (r(2) === 0) ls.splice(at);
      else ls.splice(0, at);
  }
  return ls;
}

/** Lines cut into 1-4 files; some files end without their last '\n'. */
function split(lines: string[], r: (n: number) => number): Array<{ name: string; text: string }> {
  const count = 1 + r(4);
  const cuts = [...new Set(Array.from({ length: count - 1 }, () => r(lines.length + 1)))].sort((a, b) => a - b);
  const out: Array<{ name: string; text: string }> = [];
  let from = 0;
  for (const [i, to] of [...cuts, lines.length].entries()) {
    let text = lines.slice(from, to).map((l) => `${l}\n`).join('');
    if (r(6) === 0 && text.length > 0) text = text.slice(0, -1 - r(Math.min(30, text.length)));
    out.push({ name: `part-${i}`, text });
    from = to;
  }
  return out;
}

const streamed = (input: ReadonlyArray<{ name: string; text: string }>, options: VerifyOptions): VerifyResult => {
  const v = new ChainVerifier(options);
  for (const f of input) {
    v.beginFile(f.name);
    const ls = f.text.split('\n');
    const last = ls.pop()!;
    for (const l of ls) v.line(l);
    if (last !== '') v.partialLine(last);
  }
  return v.result();
};

describe('the streaming verifier finds exactly what the whole-trail verifier found', () => {
  it('over 400 randomly tampered multi-file trails with anchors: ChainVerifier, verifyChain and verifyTrail (chunks of 3 bytes to 64 KiB) agree with the reference', async () => {
    const kinds = new Set<string>();
    for (let seed = 1; seed <= 400; seed++) {
      const r = prng(seed);
      const { lines, heads } = chain(20 + r(30), r(3) === 0 ? { seq: 40, hash: 'ab'.repeat(32) } : undefined);
      let ls = lines;
      for (let n = r(4); n > 0; n--) ls = tamper(ls, heads, r);
      const input = split(ls, r);
      const anchors: ChainHead[] = [];
      for (let n = r(3); n > 0; n--) {
        const h = heads[r(heads.length)]!;
        anchors.push([h, { seq: h.seq, hash: 'cd'.repeat(32) }, { seq: h.seq + 100, hash: h.hash }][r(3)]!);
      }
      const options = { anchors };
      const want = reference(input, options);
      for (const p of want.problems) kinds.add(p.kind);
      // Byte for byte as `audit verify --json` prints it (key order included).
      expect([seed, JSON.stringify(verifyChain(input, options))]).toEqual([seed, JSON.stringify(want)]);
      expect([seed, streamed(input, options)]).toEqual([seed, want]);
      if (seed % 8 === 0) {
        // The same files on disk, read in chunks that cut lines anywhere.
        const paths = input.map((f) => newFile(f.text));
        const onDisk = await verifyTrail(paths, { ...options, chunkBytes: [3, 7, 100, 65536][r(4)]! });
        const renamed = input.map((f, i) => ({ name: paths[i]!, text: f.text }));
        expect([seed, onDisk]).toEqual([seed, reference(renamed, options)]);
      }
    }
    // The cases covered every kind of finding.
    expect([...kinds].sort()).toEqual(['deleted', 'edited', 'incomplete', 'inserted', 'malformed', 'reordered']);
  });

  it('bytes that are not UTF-8, a BOM and non-ASCII text verify from disk as from the decoded text', async () => {
    const { lines } = chain(6, undefined, ' caf\u00e9 \u{1F600}');
    const bytes = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(`${lines.slice(0, 3).join('\n')}\n`),
      Buffer.from([0xc3, 0x0a, 0xff, 0xfe, 0x0a, 0xe2, 0x82]),
      Buffer.from(`\n${lines.slice(3).join('\n')}\n`),
      Buffer.from([0xf0, 0x9f]),
    ]);
    const path = newFile(bytes);
    const want = reference([{ name: path, text: readFileSync(path, 'utf8') }]);
    // The BOM makes the first line malformed; each invalid sequence is a U+FFFD in a line of its own.
    expect(want.problems.map((p) => [p.kind, p.line])).toEqual([['malformed', 1], ['malformed', 4], ['malformed', 5], ['malformed', 6], ['incomplete', 10]]);
    expect(want).toMatchObject({ events: 5, fromGenesis: false });
    for (const chunkBytes of [1, 2, 3, 5, 64]) expect(await verifyTrail([path], { chunkBytes })).toEqual(want);
  });
});

describe('trailLines', () => {
  const collect = async (path: string, chunkBytes: number, maxLineBytes?: number): Promise<TrailLine[]> => {
    const out: TrailLine[] = [];
    for await (const l of trailLines(path, { chunkBytes, ...(maxLineBytes !== undefined ? { maxLineBytes } : {}) })) out.push(l);
    return out;
  };

  it('gives each line once, whatever the chunk size; the last one without its newline as partial', async () => {
    const text = 'a\n\nbc\u00e9\ud83d\ude00\nlong line here\nend';
    const path = newFile(text);
    const want: TrailLine[] = [
      { kind: 'line', line: 1, text: 'a' },
      { kind: 'line', line: 2, text: '' },
      { kind: 'line', line: 3, text: 'bc\u00e9\ud83d\ude00' },
      { kind: 'line', line: 4, text: 'long line here' },
      { kind: 'partial', line: 5, text: 'end' },
    ];
    for (const chunk of [1, 2, 3, 4, 5, 8, 13, 1024]) expect(await collect(path, chunk)).toEqual(want);
    expect(await collect(newFile(''), 4)).toEqual([]);
    expect(await collect(newFile('\n'), 4)).toEqual([{ kind: 'line', line: 1, text: '' }]);
  });

  it('skips a line longer than maxLineBytes without holding it, and goes on after it', async () => {
    const path = newFile(`short\n${'x'.repeat(5000)}\nok\n${'y'.repeat(20)}\n${'z'.repeat(21)}`);
    for (const chunk of [1, 7, 64, 65536]) {
      expect(await collect(path, chunk, 20)).toEqual([
        { kind: 'line', line: 1, text: 'short' },
        { kind: 'overlong', line: 2, bytes: 5000 },
        { kind: 'line', line: 3, text: 'ok' },
        { kind: 'line', line: 4, text: 'y'.repeat(20) },
        { kind: 'overlong', line: 5, bytes: 21 },
      ]);
    }
  });

  it('holds no more of an overlong line than the limit: a 40 MB line read with a 1 MiB limit', async () => {
    const path = join(root, 'huge.jsonl');
    writeFileSync(path, 'first\n');
    appendFileSync(path, Buffer.alloc(40 << 20, 0x78));
    appendFileSync(path, '\nlast\n');
    const before = process.memoryUsage().arrayBuffers;
    const seen: Array<TrailLine & { held: number }> = [];
    // Buffers the reader allocated and still holds (or not yet collected) at each line: its
    // copies of a line's pieces are at most 1 MiB before it gives up on the line.
    for await (const l of trailLines(path, { maxLineBytes: 1 << 20 })) seen.push({ ...l, held: process.memoryUsage().arrayBuffers - before });
    expect(seen.map(({ held: _, ...l }) => l)).toEqual([
      { kind: 'line', line: 1, text: 'first' },
      { kind: 'overlong', line: 2, bytes: 40 << 20 },
      { kind: 'line', line: 3, text: 'last' },
    ]);
    expect(Math.max(...seen.map((l) => l.held))).toBeLessThan(8 << 20);
    rmSync(path);
  });

  it('rejects a bad limit and a missing file with a clear error', async () => {
    await expect(collect(newFile('x\n'), 0)).rejects.toThrow(/chunkBytes must be a positive integer/);
    await expect(verifyTrail([join(root, 'no-such.jsonl')])).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(verifyTrail([], { maxLineBytes: 1.5 })).rejects.toThrow(/maxLineBytes must be a positive integer/);
  });
});

describe('verifyTrail', () => {
  it('reports a line longer than maxLineBytes as malformed, where it is, and checks the chain around it', async () => {
    const { lines } = chain(5);
    const { lines: big } = chain(1, { seq: 1, hash: parseLine(lines[1]!)!.hash }, 'x'.repeat(3000));
    const path = newFile(`${[lines[0], lines[1], big[0], ...lines.slice(3)].join('\n')}\n`);
    expect(await verifyTrail([path])).toMatchObject({ ok: false, events: 5, problems: [expect.objectContaining({ kind: 'edited', line: 4 })] });
    const r = await verifyTrail([path], { maxLineBytes: 1024, chunkBytes: 100 });
    expect(r).toMatchObject({ ok: false, events: 4, head: { seq: 4 } });
    expect(r.problems).toEqual([
      { kind: 'malformed', file: path, line: 3, message: expect.stringMatching(/^line longer than 1024 bytes, the longest read \(maxLineBytes\): not read$/) },
      expect.objectContaining({ kind: 'deleted', line: 4, message: 'event(s) missing before seq 3 (expected seq 2)' }),
    ]);
    // A trail whose lines are all within the limit verifies, line by line.
    expect(await verifyTrail([newFile(`${lines.join('\n')}\n`)], { maxLineBytes: 1024, chunkBytes: 100 })).toMatchObject({ ok: true, events: 5, files: 1 });
  });

  it('asks for each file when the one before it is done', async () => {
    const { lines } = chain(6);
    const paths = [newFile(`${lines.slice(0, 3).join('\n')}\n`), newFile(`${lines.slice(3).join('\n')}\n`)];
    const asked: string[] = [];
    const lazily = function* (): Generator<string> {
      for (const p of paths) {
        asked.push(p);
        yield p;
      }
    };
    expect(await verifyTrail(lazily())).toMatchObject({ ok: true, events: 6, files: 2, fromGenesis: true });
    expect(asked).toEqual(paths);
  });
});

describe('ChainVerifier keeps bounded state', () => {
  it('a trail broken everywhere (each event alone, far from the others) is tampered, its first problems exact, its state capped at MAX_SEQ_RUNS runs', () => {
    const v = new ChainVerifier();
    v.beginFile('broken');
    // Seqs 1, 3, 5...: every second event deleted, MAX_SEQ_RUNS + 500 runs of one seq each.
    let head: ChainHead = { seq: -1, hash: GENESIS };
    for (let i = 0; i < MAX_SEQ_RUNS + 500; i++) {
      const next = chainLine({ seq: head.seq + 1, hash: head.hash }, event(i));
      v.line(next.line);
      head = next.head;
    }
    const r = v.result();
    expect(r.ok).toBe(false);
    expect(r.events).toBe(MAX_SEQ_RUNS + 500);
    expect(r.problems).toHaveLength(MAX_PROBLEMS);
    // The first gaps are told exactly (seq 1, 3... are nowhere); past the cap the verifier says it cannot be sure.
    expect(r.problems[0]).toMatchObject({ kind: 'deleted', line: 2, message: expect.stringMatching(/^event\(s\) missing before seq 3 \(expected seq 2\), or moved elsewhere: the trail breaks in more than 10000 places/) });
    expect(() => v.line('x')).toThrow(/result\(\) was called/);
  });

  it('a trail broken in fewer places than the cap is told exactly: gaps filled further on are moves', () => {
    const { lines } = chain(40);
    // Every fourth event moved to the end: the gaps are reorderings, not deletions.
    const order = [...lines.filter((_, i) => i % 4 !== 1), ...lines.filter((_, i) => i % 4 === 1)];
    const input = [{ name: 'a', text: `${order.join('\n')}\n` }];
    const r = verifyChain(input);
    expect(r).toEqual(reference(input));
    expect(r.problems.slice(0, 3).map((p) => p.kind)).toEqual(['reordered', 'reordered', 'reordered']);
  });

  it('a crash warning in every file never hides the tampering after them', () => {
    const { lines } = chain(60);
    const v = new ChainVerifier();
    for (let i = 0; i < 55; i++) {
      v.beginFile(`f${i}`);
      v.line(lines[i]!);
      v.partialLine();
    }
    v.beginFile('last');
    v.line(lines[57]!);
    const r = v.result();
    expect(r.ok).toBe(false);
    expect(r.problems).toHaveLength(MAX_PROBLEMS);
    expect(r.problems.at(-1)).toMatchObject({ kind: 'deleted', file: 'last', line: 1 });
  });

  it('a line before beginFile is a clear error', () => {
    expect(() => new ChainVerifier().line('x')).toThrow(/beginFile\(\) before the first line/);
  });
});
