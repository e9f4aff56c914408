/**
 * The audit hash chain: how an event becomes a line of an audit file, and how a sequence of
 * lines is checked. Pure (no I/O).
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
 *   complete event, which is where a restarted writer continues too.
 */
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
 * Check a trail given as files in order (their text). The first event's `prev` is taken as
 * the anchor (a trail may start mid-way, e.g. after old files were archived; `fromGenesis`
 * says whether it does); from then on each event must follow the previous one exactly.
 * `options.anchors` (heads kept elsewhere) catch what the files alone cannot: a cut-off
 * tail, a rewritten trail.
 */
export function verifyChain(files: ReadonlyArray<{ name: string; text: string }>, options: VerifyOptions = {}): VerifyResult {
  const problems: ChainProblem[] = [];
  const report = (p: ChainProblem): void => void (problems.length < MAX_PROBLEMS && problems.push(p));
  // Every seq present (to tell a deletion from a move, and a repeat from a move).
  const parsedFiles = files.map((f) => {
    const lines = f.text.split('\n');
    const complete = f.text.endsWith('\n') || f.text === '';
    const last = lines.pop() ?? '';
    return { name: f.name, lines, partial: complete ? undefined : last, parsed: lines.map((l) => parseLine(l)) };
  });
  const allSeqs = new Set<number>();
  for (const f of parsedFiles) for (const p of f.parsed) if (p) allSeqs.add(p.seq);
  const anchors = options.anchors ?? [];
  /** Where each anchored seq was found: its hash, file and line (of an intact event). */
  const anchored = new Map<number, { hash: string; file: string; line: number } | undefined>(anchors.map((a) => [a.seq, undefined]));

  let expected: ChainHead | undefined;
  let first: ChainHead | undefined;
  let fromGenesis = false;
  let events = 0;
  const seen = new Set<number>();
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
      if (!p.intact) {
        report({ kind: 'edited', ...where, message: `event seq ${p.seq} does not match its hash: it was changed after it was written` });
      } else if (expected && (p.seq !== expected.seq + 1 || p.prev !== expected.hash)) {
        report({ ...classify(p, expected, seen, allSeqs), ...where });
      }
      if (p.intact && anchored.has(p.seq) && anchored.get(p.seq) === undefined) anchored.set(p.seq, { hash: p.hash, ...where });
      seen.add(p.seq);
      expected = { seq: p.seq, hash: p.hash };
    }
    if (f.partial !== undefined) {
      report({ kind: 'incomplete', file: f.name, line: f.lines.length + 1, message: 'last line has no end (the writer stopped while writing it, e.g. a crash); ignored' });
    }
  }
  let anchorsMatched = 0;
  const last = parsedFiles[parsedFiles.length - 1];
  const end = { file: last?.name ?? '(no file)', line: (last?.lines.length ?? 0) + 1 };
  for (const a of anchors) {
    const found = anchored.get(a.seq);
    if (found?.hash === a.hash) anchorsMatched++;
    else if (found !== undefined) {
      report({ kind: 'edited', file: found.file, line: found.line, message: `event seq ${a.seq} does not have the anchored hash ${a.hash.slice(0, 16)}...: the trail was rewritten up to it` });
    } else if (expected === undefined || a.seq > expected.seq) {
      report({ kind: 'deleted', ...end, message: `the trail ends ${expected === undefined ? 'with no event' : `at seq ${expected.seq}`}, before the anchored seq ${a.seq}: its tail was cut off` });
    } else {
      report({ kind: 'deleted', file: parsedFiles[0]?.name ?? '(no file)', line: 1, message: `the anchored event seq ${a.seq} is not in the files read${first !== undefined && a.seq < first.seq ? ` (they start at seq ${first.seq})` : ''}` });
    }
  }
  return { ok: problems.every((p) => p.kind === 'incomplete'), events, files: files.length, first, head: expected, fromGenesis, anchorsMatched, problems };
}

function classify(p: ParsedLine, expected: ChainHead, seen: Set<number>, all: Set<number>): Omit<ChainProblem, 'file' | 'line'> {
  const want = expected.seq + 1;
  if (p.seq === want) {
    return { kind: 'edited', message: `event seq ${p.seq} does not follow the event before it: that event was replaced (its hash recomputed)` };
  }
  if (p.seq > want) {
    const missing = [];
    for (let s = want; s < p.seq && missing.length < 2; s++) if (!all.has(s)) missing.push(s);
    if (missing.length > 0) {
      const range = p.seq - 1 === want ? `seq ${want}` : `seq ${want} to ${p.seq - 1}`;
      return { kind: 'deleted', message: `event(s) missing before seq ${p.seq} (expected ${range})` };
    }
    return { kind: 'reordered', message: `event seq ${p.seq} comes before seq ${want}, which appears elsewhere` };
  }
  if (seen.has(p.seq)) return { kind: 'inserted', message: `event seq ${p.seq} appears twice: an event was inserted here or just before` };
  return { kind: 'reordered', message: `event seq ${p.seq} comes after seq ${expected.seq}: events are out of order` };
}
