/**
 * Audit files: writes events as hash-chained JSON Lines (chain.ts) into a directory, with
 * rotation by size or age, continuing the chain across files and across restarts.
 *
 *   const log = await AuditLog.open('/var/log/pqmcp', { maxBytes: 64 << 20, maxAgeMs: 86_400_000 });
 *   await listen({ ..., onAuditEvent: (e) => log.write(e) });
 *   ...
 *   await log.close();
 *
 * Files are named `audit-<UTC time>-<first seq>.jsonl`. Their chain order is that of the
 * seq in the name (auditFiles()), not of the names: a clock stepped back between two
 * rotations (an NTP step, a VM restored) names a later file with an earlier time (review
 * 15, R15-2).
 *
 * Sharp edges:
 * - write() makes the event's line at once (its chain hash included) as bytes in one
 *   reusable queue buffer, and queues it: lines are written together (one writeSync per
 *   batch, in order) every `flushMs` (default 50 ms), at the end of a turn that queued
 *   FLUSH_BYTES, at once when the buffer (QUEUE_BYTES) is full, and on close(). The
 *   event object is not kept, so a sink that changes it later changes nothing written. A
 *   crash loses at most the events of the last `flushMs`; what reached the file stays
 *   verifiable (a partial last line is reported as incomplete, not as tampering). Nothing
 *   is fsync'd: a power loss can also lose what the OS had not yet written.
 * - open() starts a new file and continues the chain from the last complete event of the
 *   last file in chain order (auditFiles()) that holds one.
 * - One writer per directory: open() takes `<dir>/audit.lock` for the log's life
 *   (dir-lock.ts) and throws AuditLogLockedError (ERR_AUDIT_LOCKED) when another writer
 *   holds it; two would fork the chain (review 15, R15-6). A lock left by a crashed writer
 *   is taken over (its process is gone, or it was not refreshed for a minute).
 * - A failed write (disk full) is reported through `onerror`; the events of that batch are
 *   lost and `audit verify` will show them as deleted. The chain goes on.
 * - Node only (node:fs).
 */
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLogLockedError, InvalidArgumentError } from '../errors.js';
import { MAX_TIMER_MS, timerLimitText } from '../timer-limit.js';
import { GENESIS, HASH_SUFFIX_LENGTH, parseLine } from './chain.js';
import { DirLock, LOCK_REFRESH_MS } from './dir-lock.js';
import type { ChainHead } from './chain.js';
import { sha256Hex } from './events.js';
import type { AuditEvent } from './events.js';

export interface AuditLogOptions {
  /** Start a new file before one would grow beyond this many bytes. Default 64 MiB. */
  maxBytes?: number;
  /** Start a new file once the current one is this old. Default: never (size only). */
  maxAgeMs?: number;
  /** A write failed (the events of that batch are lost). */
  onerror?: (error: Error) => void;
  /** A file was finished (rotation or close), with the chain head at its end: an anchor worth keeping elsewhere. */
  onrotate?: (file: string, head: ChainHead) => void;
  /** Longest time an event waits in memory before it is written. Default 50 ms; 0: every event-loop turn; at most 2^31 - 1 (the timers' limit). */
  flushMs?: number;
  /** Clock (tests). Default Date.now. */
  now?: () => number;
}

export const AUDIT_FILE = /^audit-\d{8}T\d{6}\d{3}Z-\d+\.jsonl$/;
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_FLUSH_MS = 50;
/** Queued bytes above which a batch is written at the end of the turn, whatever flushMs says. */
export const FLUSH_BYTES = 64 * 1024;
/** The queue's buffer: room for a FLUSH_BYTES batch and its last lines; regrown if a turn queues more, shrunk back after. */
const QUEUE_BYTES = 2 * FLUSH_BYTES;
const TAIL_CHUNK = 64 * 1024;
/** `{"seq":` */
const SEQ_PREFIX_LENGTH = 7;
/** A line's bytes besides its event's JSON: `{"seq":` + up to 16 digits + `,"prev":"` + 64 hex + `"`, the hash member, '\n'. */
const LINE_OVERHEAD = SEQ_PREFIX_LENGTH + 16 + 9 + 64 + 1 + HASH_SUFFIX_LENGTH + 1;

export class AuditLog {
  private head: ChainHead;
  /**
   * The queue: complete lines (UTF-8, '\n' after each) back to back in `buf` up to `used`,
   * line i ending at `ends[i]`. Lines go in as bytes when written, so what waits for the
   * flush is one buffer, not strings for the garbage collector to carry.
   */
  private buf: Buffer | undefined;
  private used = 0;
  private ends: number[] = [];
  /** Head after the last line handed to the current file. */
  private fileHead: ChainHead | undefined;
  /** A flush at the end of this turn is scheduled. */
  private soon = false;
  /**
   * The flushMs timer, until it fires: a flush in between does not cancel it (it then
   * writes what was queued since, sooner than needed), so a busy log sets one timer per
   * flushMs instead of setting and clearing one per batch.
   */
  private timer: ReturnType<typeof setTimeout> | undefined;
  private fd: number | undefined;
  private file: string | undefined;
  private fileBytes = 0;
  private fileOpenedAt = 0;
  private closed = false;
  /** Touches the directory's lock every LOCK_REFRESH_MS. */
  private readonly refresher: ReturnType<typeof setInterval>;
  private lockLost = false;
  private readonly maxBytes: number;
  private readonly maxAgeMs: number;
  private readonly flushMs: number;
  private readonly now: () => number;
  private readonly flushSoon = (): void => {
    this.soon = false;
    this.flush();
  };
  private readonly flushLater = (): void => {
    this.timer = undefined;
    this.flush();
  };

  private constructor(
    readonly dir: string,
    head: ChainHead,
    private readonly options: AuditLogOptions,
    private readonly lock: DirLock,
  ) {
    this.head = head;
    this.refresher = setInterval(() => {
      if (this.lockLost || this.lock.refresh()) return;
      this.lockLost = true;
      this.options.onerror?.(new AuditLogLockedError(dir, lock.path, 'taken over by another writer while this one held it (frozen too long?): the chain may fork'));
    }, LOCK_REFRESH_MS);
    this.refresher.unref();
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.maxAgeMs = options.maxAgeMs ?? Infinity;
    this.flushMs = options.flushMs ?? DEFAULT_FLUSH_MS;
    this.now = options.now ?? Date.now;
  }

  /** Open (create) `dir` and continue the chain found there. */
  static async open(dir: string, options: AuditLogOptions = {}): Promise<AuditLog> {
    if (options.maxBytes !== undefined && !(Number.isSafeInteger(options.maxBytes) && options.maxBytes >= 1024)) throw new InvalidArgumentError('maxBytes must be an integer >= 1024');
    if (options.maxAgeMs !== undefined && !(options.maxAgeMs > 0)) throw new InvalidArgumentError('maxAgeMs must be positive');
    if (options.flushMs !== undefined && !(Number.isFinite(options.flushMs) && options.flushMs >= 0)) throw new InvalidArgumentError('flushMs must be a number >= 0');
    // It reaches setTimeout: Node runs a longer delay after 1 ms (a flush every write).
    if (options.flushMs !== undefined && options.flushMs > MAX_TIMER_MS) throw new InvalidArgumentError(timerLimitText('flushMs'));
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    const lock = DirLock.take(dir);
    try {
      return new AuditLog(dir, lastHead(dir), options, lock);
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  /** The chain position after the last event queued. */
  get position(): ChainHead {
    return { ...this.head };
  }

  /** The file being written (undefined before the first event). */
  get currentFile(): string | undefined {
    return this.file;
  }

  /** Queue an event (written within flushMs). */
  write(event: AuditEvent): void {
    if (this.closed) return;
    // The line chainLine() makes, written piece by piece straight into the queue's buffer
    // (no string of the whole line): `{"seq":N,"prev":"<hex>"`, then the event's JSON with
    // its '{' turned into ',', the hash of those bytes, and the hash member over the
    // closing '}'.
    const json = JSON.stringify(event);
    const buf = this.room(json.length * 3 + LINE_OVERHEAD);
    // After room(): a flush there may rotate, and onrotate / onerror may write() (advancing the head).
    const seq = this.head.seq + 1;
    const start = this.used;
    let at = writeDigits(buf, start + buf.write('{"seq":', start), seq);
    at += buf.write(',"prev":"', at);
    at += buf.write(this.head.hash, at);
    buf[at++] = 0x22; // "
    const end = at + buf.write(json, at);
    buf[at] = 0x2c; // ,
    const hash = sha256Hex(buf.subarray(start, end));
    at = end - 1;
    at += buf.write(',"hash":"', at);
    at += buf.write(hash, at);
    buf[at++] = 0x22; // "
    buf[at++] = 0x7d; // }
    buf[at++] = 0x0a; // \n
    this.used = at;
    this.ends.push(at);
    this.head = { seq, hash };
    if (this.flushMs === 0 || this.used >= FLUSH_BYTES) {
      if (!this.soon) {
        this.soon = true;
        setImmediate(this.flushSoon);
      }
    } else if (this.timer === undefined) {
      this.timer = setTimeout(this.flushLater, this.flushMs);
    }
  }

  /** Write what is queued now. */
  flush(): void {
    const { buf, ends, used, head } = this;
    if (buf === undefined || ends.length === 0) return;
    // Take the queue (a write() from onrotate or onerror starts a new one).
    this.buf = undefined;
    this.used = 0;
    this.ends = [];
    try {
      if (this.fd !== undefined && this.fileBytes + used <= this.maxBytes && this.now() - this.fileOpenedAt < this.maxAgeMs) {
        // No line would start a new file: the whole queue in one write.
        this.append(buf, 0, used, head);
      } else {
        let from = 0;
        for (let i = 0; i < ends.length; i++) {
          const lineStart = i === 0 ? 0 : ends[i - 1]!;
          const pending = lineStart - from;
          if (this.fd === undefined || (this.fileBytes + pending > 0 && this.fileBytes + pending + (ends[i]! - lineStart) > this.maxBytes) || this.now() - this.fileOpenedAt >= this.maxAgeMs) {
            if (pending > 0) this.append(buf, from, lineStart);
            from = lineStart;
            this.rotate(seqAt(buf, lineStart));
          }
        }
        if (used > from) this.append(buf, from, used);
      }
    } catch (err) {
      this.options.onerror?.(err instanceof Error ? err : new Error(String(err)));
    } finally {
      // Reuse the buffer unless it grew for a burst (or a write during the flush started another).
      if (this.buf === undefined && buf.length <= QUEUE_BYTES) this.buf = buf;
    }
  }

  /** Write what is queued and close the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.buf = undefined;
    clearInterval(this.refresher);
    try {
      this.finishFile();
    } finally {
      this.lock.release();
    }
  }

  /**
   * The queue's buffer with at least `bytes` free after `used`. A full queue is written
   * now (a turn that queues more than QUEUE_BYTES does not wait for its end); only a line
   * longer than the buffer gets a bigger one, dropped after its flush.
   */
  private room(bytes: number): Buffer {
    if (this.buf !== undefined && this.used + bytes > this.buf.length && this.used > 0) this.flush();
    const buf = this.buf;
    if (buf !== undefined && this.used + bytes <= buf.length) return buf;
    const bigger = Buffer.allocUnsafe(Math.max(QUEUE_BYTES, this.used + bytes));
    if (buf !== undefined) buf.copy(bigger, 0, 0, this.used);
    this.buf = bigger;
    return bigger;
  }

  /** Write the whole lines buf[from, to) to the current file; `head`: the chain head after them, when known. */
  private append(buf: Buffer, from: number, to: number, head?: ChainHead): void {
    this.fileBytes += to - from;
    for (let at = from; at < to; ) at += writeSync(this.fd!, buf, at, to - at);
    // Else read from the last line, which ends `,"hash":"<64 hex>"}\n`.
    this.fileHead = head ?? { seq: seqAt(buf, lastLineStart(buf, to)), hash: buf.toString('latin1', to - 67, to - 3) };
  }

  /** Finish the current file; start one named after the first line it will hold. */
  private rotate(seq: number): void {
    this.finishFile();
    const stamp = new Date(this.now()).toISOString().replace(/[-:]/g, '').replace('.', '');
    const name = `audit-${stamp}-${String(seq).padStart(12, '0')}.jsonl`;
    this.file = join(this.dir, name);
    this.fd = openSync(this.file, 'a', 0o640);
    this.fileBytes = fstatSync(this.fd).size;
    this.fileOpenedAt = this.now();
    this.fileHead = undefined;
  }

  private finishFile(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    if (this.fileHead) this.options.onrotate?.(this.file!, this.fileHead);
  }
}

/** Write the decimal digits of `n` (a safe integer >= 0) at `at`; returns where they end. */
function writeDigits(buf: Buffer, at: number, n: number): number {
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  for (let i = at + digits - 1, x = n; i >= at; i--, x = Math.floor(x / 10)) buf[i] = 0x30 + (x % 10);
  return at + digits;
}

/** The seq of the line starting at `start` (`{"seq":<digits>,...`). */
function seqAt(buf: Buffer, start: number): number {
  let seq = 0;
  for (let i = start + SEQ_PREFIX_LENGTH; buf[i]! >= 0x30 && buf[i]! <= 0x39; i++) seq = seq * 10 + (buf[i]! - 0x30);
  return seq;
}

/** Where the line ending (with its '\n') at `end` starts. */
function lastLineStart(buf: Buffer, end: number): number {
  const nl = buf.lastIndexOf(0x0a, end - 2);
  return nl < 0 ? 0 : nl + 1;
}

/** The first seq a file holds, from its name (`audit-<time>-<seq>.jsonl`). */
function firstSeqOf(name: string): number {
  return Number(name.slice(name.lastIndexOf('-') + 1, -'.jsonl'.length));
}

/** Whether `file` holds a '\n', i.e. a complete line (read up to the first one). */
function holdsCompleteLine(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(TAIL_CHUNK);
    for (let pos = 0; ; ) {
      const n = readSync(fd, chunk, 0, chunk.length, pos);
      if (n === 0) return false;
      if (chunk.subarray(0, n).includes(0x0a)) return true;
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Audit files of `dir` in chain order: by the first seq in their names, not by name (the
 * time comes first there, and a clock stepped back breaks that order). Two files name the
 * same seq only when the first was left with no complete line (empty, or a crash's
 * partial first line) and a restarted writer started the next at that seq: the one without
 * a complete line comes first (it is read to its first '\n' to tell), then by name.
 */
export function auditFiles(dir: string): string[] {
  const names = readdirSync(dir).filter((n) => AUDIT_FILE.test(n));
  const complete = new Map<string, boolean>();
  const holds = (n: string): boolean => {
    let c = complete.get(n);
    if (c === undefined) complete.set(n, (c = holdsCompleteLine(join(dir, n))));
    return c;
  };
  return names
    .sort((a, b) => firstSeqOf(a) - firstSeqOf(b) || Number(holds(a)) - Number(holds(b)) || (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => join(dir, n));
}

/** The chain head at the end of the last file, in chain order, that holds a complete event. */
function lastHead(dir: string): ChainHead {
  const files = auditFiles(dir);
  for (let i = files.length - 1; i >= 0; i--) {
    const head = lastCompleteEvent(files[i]!);
    if (head) return head;
  }
  return { seq: -1, hash: GENESIS };
}

/**
 * Read backwards from the end of `file` to its last complete, intact line. Each line is
 * decoded and checked once: what is carried to the next (earlier) chunk is only the line
 * whose start is not read yet, so a file of lines that are not events costs time in
 * proportion to its size and memory in proportion to its longest line.
 */
function lastCompleteEvent(file: string): ChainHead | undefined {
  const fd = openSync(file, 'r');
  try {
    let pos = fstatSync(fd).size;
    // From `pos` to the file's end (first chunk) or to the '\n' after the line not read whole yet.
    let tail = Buffer.alloc(0);
    while (pos > 0) {
      const start = Math.max(0, pos - TAIL_CHUNK);
      const chunk = Buffer.alloc(pos - start);
      readSync(fd, chunk, 0, chunk.length, start);
      tail = tail.length === 0 ? chunk : Buffer.concat([chunk, tail]);
      pos = start;
      // What follows `tail`'s last '\n' is the file's partial last line (first chunks only).
      const end = tail.lastIndexOf(0x0a);
      if (end < 0) continue;
      const lines = tail.subarray(0, end).toString('utf8').split('\n');
      // Unless the file's start was reached, the first piece may be cut: not a line yet.
      for (let i = lines.length - 1; i >= (start === 0 ? 0 : 1); i--) {
        const parsed = parseLine(lines[i]!);
        if (parsed?.intact) return { seq: parsed.seq, hash: parsed.hash };
      }
      // Carry only the cut piece and its '\n': the next chunk completes it.
      tail = tail.subarray(0, tail.indexOf(0x0a) + 1);
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}
