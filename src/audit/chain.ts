/**
 * The audit hash chain: how an event becomes a line of an audit file, and how a sequence of
 * lines is checked, line by line (ChainVerifier: its memory does not grow with the trail;
 * trail.ts feeds it from files). Pure (no I/O).
 *
 * One line per event (JSON Lines, UTF-8, '\n' after each):
 *
 *   {"seq":41,"prev":"<64 hex>",<the event's fields>,"hash":"<64 hex>"}
 *
 *   seq   0, 1, 2... over the whole trail (it continues across files and restarts)
 *   prev  the hash of the event before (64 zeros for the very first)
 *   hash  SHA-256, hex, of the line's exact bytes without its `,"hash":"..."` member, i.e.
 *         of `{"seq":41,"prev":"...",...}` as written. No canonical JSON is needed: the
 *         verifier hashes the bytes it reads.
 *
 * Sharp edges:
 * - The chain is unkeyed: it proves that the events form one unbroken sequence, not who
 *   wrote it. Someone who can write the files can rewrite every event after a point and
 *   recompute the hashes, and can cut the tail off; only a hash kept elsewhere (an anchor:
 *   the gateway logs the head at each rotation and at shutdown) reveals that. See
 *   docs/threat-model.md.
 * - A file's last line without its '\n' is what a crash leaves: reported as `incomplete`
 *   (a warning, not tampering); the chain is checked up to it and continues from the last
 *   complete event, which is where a restarted writer continues too. Such a line is never
 *   part of the chain, even when it holds a whole event (only its '\n' lost): it is not
 *   counted, and an anchor is not matched by it. What a crash leaves is the start of the
 *   line that follows the last complete event; a whole event there that does not follow
 *   it (a seq or prev of its own, or its hash not holding) was added, not cut: reported
 *   as `inserted` (or `edited`) (review 15, R15-4).
 */
import { InvalidArgumentError } from '../errors.js';
import { sha256Hex as sha256hex } from './events.js';
import type { AuditEvent } from './events.js';

export const GENESIS = '0'.repeat(64);

/** `,"hash":"` + 64 hex + `"}` */
export const HASH_SUFFIX_LENGTH = 9 + 64 + 2;
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

/** The chain position after an event. */
export interface ChainHead {
  /** seq of the last event written (-1: none yet). */
  seq: number;
  /** Its hash (GENESIS: none yet). */
  hash: string;
}

/**
 * The hashed part of the line for `event` at `seq` after `prev`: exactly
 * JSON.stringify({ seq, prev, ...event }) (events have neither key, and always a `type`),
 * without building that object.
 */
export function chainBody(seq: number, prev: string, event: AuditEvent): string {
  return `{"seq":${seq},"prev":"${prev}",${JSON.stringify(event).slice(1)}`;
}

/** The line (without '\n') for `event` following `head`, and the new head. */
export function chainLine(head: ChainHead, event: AuditEvent): { line: string; head: ChainHead } {
  const seq = head.seq + 1;
  const body = chainBody(seq, head.hash, event);
  const hash = sha256hex(body);
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}`, head: { seq, hash } };
}

/** A line as read back: its position and whether its own hash holds. */
export interface ParsedLine {
  seq: number;
  prev: string;
  hash: string;
  /** The hash recomputed from the line's bytes equals `hash`. */
  intact: boolean;
  event: AuditEvent & { seq: number; prev: string };
}

/** Parse one line (without '\n'); undefined when it is not a chained event at all. */
export function parseLine(line: string): ParsedLine | undefined {
  const m = HASH_SUFFIX.exec(line);
  if (!m) return undefined;
  const body = `${line.slice(0, -HASH_SUFFIX_LENGTH)}}`;
  let event: unknown;
  try {
    event = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof event !== 'object' || event === null) return undefined;
  const { seq, prev } = event as { seq?: unknown; prev?: unknown };
  if (!Number.isSafeInteger(seq) || (seq as number) < 0 || typeof prev !== 'string' || !/^[0-9a-f]{64}$/.test(prev)) return undefined;
  const hash = m[1]!;
  const intact = sha256hex(body) === hash;
  return { seq: seq as number, prev, hash, intact, event: event as ParsedLine['event'] };
}

export type ProblemKind = 'edited' | 'deleted' | 'inserted' | 'reordered' | 'malformed' | 'incomplete';

export interface ChainProblem {
  kind: ProblemKind;
  file: string;
  /** 1-based line number in `file`. */
  line: number;
  message: string;
}

export interface VerifyResult {
  /** No problem other than `incomplete` (a crash's partial last line). */
  ok: boolean;
  /** Complete events read. */
  events: number;
  files: number;
  /** First and last event of the trail as read (undefined when empty). */
  first: ChainHead | undefined;
  head: ChainHead | undefined;
  /**
   * The first event read is the very first of its chain (seq 0 after GENESIS). When false,
   * what came before it (archived files, or a cut-off start) is not checked: only an anchor
   * can tell which.
   */
  fromGenesis: boolean;
  /** Anchors given and found in the trail with their hash. */
  anchorsMatched: number;
  problems: ChainProblem[];
}

export interface VerifyOptions {
  /**
   * Chain heads kept elsewhere (the gateway logs one each time it finishes a file): each
   * must be in the trail with exactly that hash. One past the trail's last event means its
   * tail was cut off ('deleted'); one with another hash means the trail was rewritten up to
   * it ('edited').
   */
  anchors?: readonly ChainHead[];
}


/** Problems reported at most (the first ones say where the damage starts). */
export const MAX_PROBLEMS = 50;

/**
 * Runs of consecutive seqs the verifier keeps to classify a gap (a whole trail is one run).
 * Only a trail broken in more places than this reaches it; past it, a gap whose events may
 * lie further on is reported as missing "or moved elsewhere".
 */
export const MAX_SEQ_RUNS = 10_000;

/**
 * The seqs read so far, as sorted, disjoint, non-adjacent runs [lo, hi]: one run for a
 * whole trail, one more per break, at most MAX_SEQ_RUNS (then `overflowed`, and later
 * runs that would need a new entry are not kept: `has`/`covers` may then say false for
 * seqs that were read, never true for seqs that were not).
 */
class SeqRuns {
  private readonly lo: number[] = [];
  private readonly hi: number[] = [];
  overflowed = false;

  /** Index of the last run with lo <= s, or -1. */
  private find(s: number): number {
    let a = 0;
    let b = this.lo.length - 1;
    let found = -1;
    while (a <= b) {
      const m = (a + b) >>> 1;
      if (this.lo[m]! <= s) {
        found = m;
        a = m + 1;
      } else b = m - 1;
    }
    return found;
  }

  has(s: number): boolean {
    return this.covers(s, s);
  }

  /** Every seq in [from, to] was read. */
  covers(from: number, to: number): boolean {
    const i = this.find(from);
    return i >= 0 && this.hi[i]! >= to;
  }

  add(from: number, to: number): void {
    const i = this.find(from);
    const first = i >= 0 && this.hi[i]! >= from - 1 ? i : i + 1;
    let end = first;
    while (end < this.lo.length && this.lo[end]! <= to + 1) end++;
    if (end === first) {
      if (this.lo.length >= MAX_SEQ_RUNS) {
        this.overflowed = true;
        return;
      }
      this.lo.splice(first, 0, from);
      this.hi.splice(first, 0, to);
      return;
    }
    this.lo[first] = Math.min(from, this.lo[first]!);
    this.hi[first] = Math.max(to, this.hi[end - 1]!);
    if (end - first > 1) {
      this.lo.splice(first + 1, end - first - 1);
      this.hi.splice(first + 1, end - first - 1);
    }
  }
}

/**
 * Checks a trail fed to it line by line, file by file, keeping only what the checks need:
 * the last event's seq and hash, counts, the problems reported (at most MAX_PROBLEMS), the
 * anchors given, and the runs of seqs read (one for a whole trail; one more per break).
 * Memory does not grow with the trail. Pure (no I/O): verifyTrail() (trail.ts) feeds it
 * from files, verifyChain() from texts in memory.
 *
 *   const v = new ChainVerifier({ anchors });
 *   v.beginFile('a.jsonl'); v.line(...); v.line(...); v.partialLine(...);
 *   v.beginFile('b.jsonl'); ...
 *   const result = v.result();
 *
 * Whether a gap (seq 7 after seq 4) is a deletion or a move is only known at the end (are
 * seq 5 and 6 somewhere further on?): such a problem's kind and message are settled by
 * result().
 */
export class ChainVerifier {
  private readonly problems: ChainProblem[] = [];
  /** Gaps reported as 'deleted' until result() finds their seqs [from, to] elsewhere. */
  private readonly gaps: Array<{ problem: ChainProblem; from: number; to: number }> = [];
  /** A problem other than `incomplete` was found (reported or past MAX_PROBLEMS). */
  private tampered = false;
  private readonly anchors: readonly ChainHead[];
  /** Where each anchored seq was found: its hash, file and line (of an intact event). */
  private readonly anchored: Map<number, { hash: string; file: string; line: number } | undefined>;
  private readonly seqs = new SeqRuns();
  /** The run of consecutive seqs ending with the last event read (not yet in `seqs`). */
  private runLo = 0;
  private runHi = -1;
  private inRun = false;
  private expected: ChainHead | undefined;
  private first: ChainHead | undefined;
  private fromGenesis = false;
  private events = 0;
  private files = 0;
  private firstFile: string | undefined;
  private file: string | undefined;
  /** Lines of the current file so far (complete or overlong). */
  private lineNo = 0;
  private done: VerifyResult | undefined;

  constructor(options: VerifyOptions = {}) {
    this.anchors = [...(options.anchors ?? [])];
    this.anchored = new Map(this.anchors.map((a) => [a.seq, undefined]));
  }

  /** The next file of the trail starts (files in chain order). */
  beginFile(name: string): void {
    this.open();
    this.file = name;
    this.firstFile ??= name;
    this.files++;
    this.lineNo = 0;
  }

  /** The current file's next complete line, without its '\n'. */
  line(text: string): void {
    const file = this.open(true);
    const where = { file, line: ++this.lineNo };
    const p = parseLine(text);
    if (!p) {
      this.report({ kind: 'malformed', ...where, message: text === '' ? 'empty line' : 'not a chained audit event (no valid seq, prev and hash)' });
      return;
    }
    this.events++;
    if (this.first === undefined) {
      this.first = { seq: p.seq, hash: p.hash };
      this.fromGenesis = p.seq === 0 && p.prev === GENESIS;
    }
    const expected = this.expected;
    if (!p.intact) {
      this.report({ kind: 'edited', ...where, message: `event seq ${p.seq} does not match its hash: it was changed after it was written` });
    } else if (expected && (p.seq !== expected.seq + 1 || p.prev !== expected.hash)) {
      this.discontinuity(p, expected, where);
    }
    if (p.intact && this.anchored.has(p.seq) && this.anchored.get(p.seq) === undefined) this.anchored.set(p.seq, { hash: p.hash, ...where });
    if (this.inRun && p.seq === this.runHi + 1) this.runHi = p.seq;
    else {
      if (this.inRun) this.seqs.add(this.runLo, this.runHi);
      this.runLo = this.runHi = p.seq;
      this.inRun = true;
    }
    this.expected = { seq: p.seq, hash: p.hash };
  }

  /** The current file's next line was longer than `limit` bytes and was not read. */
  overlongLine(limit: number): void {
    const file = this.open(true);
    this.report({ kind: 'malformed', file, line: ++this.lineNo, message: `line longer than ${limit} bytes, the longest read (maxLineBytes): not read` });
  }

  /**
   * The current file ends with a line without its '\n' (`text`, when read): a crash's partial
   * line, never part of the chain (see the top of this file). Without `text` it is taken as
   * one unread.
   */
  partialLine(text?: string): void {
    const file = this.open(true);
    const where = { file, line: this.lineNo + 1 };
    const p = text === undefined ? undefined : parseLine(text);
    const expected = this.expected;
    if (p === undefined) {
      this.report({ kind: 'incomplete', ...where, message: 'last line has no end (the writer stopped while writing it, e.g. a crash): not an event; the chain goes on from the last complete one' });
    } else if (!p.intact) {
      this.report({ kind: 'edited', ...where, message: `event seq ${p.seq}, on a last line without its end, does not match its hash: it was changed after it was written` });
    } else if (expected !== undefined && (p.seq !== expected.seq + 1 || p.prev !== expected.hash)) {
      this.report({ kind: 'inserted', ...where, message: `event seq ${p.seq}, on a last line without its end, does not follow the event before it: not what a crash leaves, it was added` });
    } else {
      this.report({ kind: 'incomplete', ...where, message: `event seq ${p.seq} has no end of line (the writer stopped before it, e.g. a crash): not part of the chain, not counted, no anchor; the chain goes on from the event before it` });
    }
  }

  /** The verdict on everything fed (the verifier takes nothing more after it). */
  result(): VerifyResult {
    if (this.done) return this.done;
    if (this.inRun) this.seqs.add(this.runLo, this.runHi);
    this.inRun = false;
    for (const { problem, from, to } of this.gaps) {
      if (this.seqs.covers(from, to)) {
        problem.kind = 'reordered';
        problem.message = `event seq ${to + 1} comes before seq ${from}, which appears elsewhere`;
      } else {
        const range = to === from ? `seq ${from}` : `seq ${from} to ${to}`;
        const unsure = this.seqs.overflowed ? `, or moved elsewhere: the trail breaks in more than ${MAX_SEQ_RUNS} places, too many to tell` : '';
        problem.message = `event(s) missing before seq ${to + 1} (expected ${range})${unsure}`;
      }
    }
    const expected = this.expected;
    let anchorsMatched = 0;
    const end = { file: this.file ?? '(no file)', line: this.lineNo + 1 };
    for (const a of this.anchors) {
      const found = this.anchored.get(a.seq);
      if (found?.hash === a.hash) anchorsMatched++;
      else if (found !== undefined) {
        this.report({ kind: 'edited', file: found.file, line: found.line, message: `event seq ${a.seq} does not have the anchored hash ${a.hash.slice(0, 16)}...: the trail was rewritten up to it` });
      } else if (expected === undefined || a.seq > expected.seq) {
        this.report({ kind: 'deleted', ...end, message: `the trail ends ${expected === undefined ? 'with no event' : `at seq ${expected.seq}`}, before the anchored seq ${a.seq}: its tail was cut off` });
      } else {
        const first = this.first;
        this.report({ kind: 'deleted', file: this.firstFile ?? '(no file)', line: 1, message: `the anchored event seq ${a.seq} is not in the files read${first !== undefined && a.seq < first.seq ? ` (they start at seq ${first.seq})` : ''}` });
      }
    }
    this.done = { ok: !this.tampered, events: this.events, files: this.files, first: this.first, head: expected, fromGenesis: this.fromGenesis, anchorsMatched, problems: this.problems };
    return this.done;
  }

  /** The current file's name; `needed`: a line must belong to a file. */
  private open(needed = false): string {
    if (this.done) throw new InvalidArgumentError('ChainVerifier: result() was called; start a new verifier');
    if (needed && this.file === undefined) throw new InvalidArgumentError('ChainVerifier: beginFile() before the first line');
    return this.file ?? '';
  }

  private report(p: ChainProblem): void {
    if (p.kind !== 'incomplete') this.tampered = true;
    // A crash's warnings never take the last place: the first tampering found is always reported.
    if (this.problems.length < (p.kind === 'incomplete' ? MAX_PROBLEMS - 1 : MAX_PROBLEMS)) this.problems.push(p);
  }

  /** `p` (intact) does not follow `expected`: say how (a gap is settled by result()). Keys in the order the JSON output has always had. */
  private discontinuity(p: ParsedLine, expected: ChainHead, where: { file: string; line: number }): void {
    const want = expected.seq + 1;
    let problem: ChainProblem;
    if (p.seq === want) {
      problem = { kind: 'edited', message: `event seq ${p.seq} does not follow the event before it: that event was replaced (its hash recomputed)`, ...where };
    } else if (p.seq > want) {
      problem = { kind: 'deleted', message: '', ...where };
      if (this.problems.length < MAX_PROBLEMS) this.gaps.push({ problem, from: want, to: p.seq - 1 });
    } else if (this.seqs.has(p.seq) || (this.inRun && p.seq >= this.runLo && p.seq <= this.runHi)) {
      problem = { kind: 'inserted', message: `event seq ${p.seq} appears twice: an event was inserted here or just before`, ...where };
    } else {
      problem = { kind: 'reordered', message: `event seq ${p.seq} comes after seq ${expected.seq}: events are out of order`, ...where };
    }
    this.report(problem);
  }
}

/**
 * Check a trail given as files in order (their text). The first event's `prev` is taken as
 * the anchor (a trail may start mid-way, e.g. after old files were archived; `fromGenesis`
 * says whether it does); from then on each event must follow the previous one exactly.
 * `options.anchors` (heads kept elsewhere) catch what the files alone cannot: a cut-off
 * tail, a rewritten trail. The texts are the caller's; nothing else grows with them
 * (ChainVerifier). For files on disk, verifyTrail() (trail.ts) reads them chunk by chunk.
 */
export function verifyChain(files: ReadonlyArray<{ name: string; text: string }>, options: VerifyOptions = {}): VerifyResult {
  const verifier = new ChainVerifier(options);
  for (const { name, text } of files) {
    verifier.beginFile(name);
    let from = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
      verifier.line(text.slice(from, nl));
      from = nl + 1;
    }
    if (from < text.length) verifier.partialLine(text.slice(from));
  }
  return verifier.result();
}
