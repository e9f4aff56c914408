/**
 * Audit files: writes events as hash-chained JSON Lines (chain.ts) into a directory, with
 * rotation by size or age, continuing the chain across files and across restarts.
 *
 *   const log = await AuditLog.open('/var/log/pqmcp', { maxBytes: 64 << 20, maxAgeMs: 86_400_000 });
 *   await listen({ ..., onAuditEvent: (e) => log.write(e) });
 *   ...
 *   await log.close();
 *
 * Files are named `audit-<UTC time>-<first seq>.jsonl`, so names sort in chain order.
 *
 * Sharp edges:
 * - write() only queues: lines are written together (one writeSync per batch, in order)
 *   every `flushMs` (default 50 ms), as soon as FLUSH_BYTES are queued, and on close(). A
 *   crash loses at most the events of the last `flushMs`; what reached the file stays
 *   verifiable (a partial last line is reported as incomplete, not as tampering). Nothing
 *   is fsync'd: a power loss can also lose what the OS had not yet written.
 * - open() starts a new file and continues the chain from the last complete event of the
 *   newest file in the directory. Two writers on one directory would fork the chain: give
 *   each process its own directory.
 * - A failed write (disk full) is reported through `onerror`; the events of that batch are
 *   lost and `audit verify` will show them as deleted. The chain goes on.
 * - Node only (node:fs).
 */
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { GENESIS, chainLine, parseLine } from './chain.js';
import type { ChainHead } from './chain.js';
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
  /** Longest time an event waits in memory before it is written. Default 50 ms; 0: every event-loop turn. */
  flushMs?: number;
  /** Clock (tests). Default Date.now. */
  now?: () => number;
}

export const AUDIT_FILE = /^audit-\d{8}T\d{6}\d{3}Z-\d+\.jsonl$/;
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_FLUSH_MS = 50;
/** Queued bytes above which a batch is written at the end of the turn, whatever flushMs says. */
export const FLUSH_BYTES = 64 * 1024;
const TAIL_CHUNK = 64 * 1024;

export class AuditLog {
  private head: ChainHead;
  private queue: Array<{ line: string; head: ChainHead }> = [];
  /** Head after the last line handed to the current file. */
  private fileHead: ChainHead | undefined;
  private scheduled: 'soon' | 'later' | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private queuedBytes = 0;
  private fd: number | undefined;
  private file: string | undefined;
  private fileBytes = 0;
  private fileOpenedAt = 0;
  private closed = false;
  private readonly maxBytes: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  private constructor(
    readonly dir: string,
    head: ChainHead,
    private readonly options: AuditLogOptions,
  ) {
    this.head = head;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.maxAgeMs = options.maxAgeMs ?? Infinity;
    this.now = options.now ?? Date.now;
  }

  /** Open (create) `dir` and continue the chain found there. */
  static async open(dir: string, options: AuditLogOptions = {}): Promise<AuditLog> {
    if (options.maxBytes !== undefined && !(Number.isSafeInteger(options.maxBytes) && options.maxBytes >= 1024)) throw new InvalidArgumentError('maxBytes must be an integer >= 1024');
    if (options.maxAgeMs !== undefined && !(options.maxAgeMs > 0)) throw new InvalidArgumentError('maxAgeMs must be positive');
    if (options.flushMs !== undefined && !(Number.isFinite(options.flushMs) && options.flushMs >= 0)) throw new InvalidArgumentError('flushMs must be a number >= 0');
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    return new AuditLog(dir, lastHead(dir), options);
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
    const { line, head } = chainLine(this.head, event);
    this.head = head;
    this.queue.push({ line: `${line}\n`, head });
    this.queuedBytes += line.length + 1;
    const flushMs = this.options.flushMs ?? DEFAULT_FLUSH_MS;
    if (this.scheduled === 'soon') return;
    if (flushMs === 0 || this.queuedBytes >= FLUSH_BYTES) {
      if (this.timer) clearTimeout(this.timer);
      this.scheduled = 'soon';
      setImmediate(() => this.flush());
    } else if (this.scheduled === undefined) {
      this.scheduled = 'later';
      this.timer = setTimeout(() => this.flush(), flushMs);
    }
  }

  /** Write what is queued now. */
  flush(): void {
    this.scheduled = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queuedBytes = 0;
    if (this.queue.length === 0) return;
    const lines = this.queue;
    this.queue = [];
    let batch = '';
    let batchBytes = 0;
    let batchHead: ChainHead | undefined;
    try {
      for (const { line, head } of lines) {
        const bytes = Buffer.byteLength(line);
        if (this.fd === undefined || (this.fileBytes + batchBytes > 0 && this.fileBytes + batchBytes + bytes > this.maxBytes) || this.now() - this.fileOpenedAt >= this.maxAgeMs) {
          if (batch !== '') this.append(batch, batchBytes, batchHead!);
          batch = '';
          batchBytes = 0;
          this.rotate(line);
        }
        batch += line;
        batchBytes += bytes;
        batchHead = head;
      }
      if (batch !== '') this.append(batch, batchBytes, batchHead!);
    } catch (err) {
      this.options.onerror?.(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Write what is queued and close the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.finishFile();
  }

  private append(text: string, bytes: number, head: ChainHead): void {
    this.fileBytes += bytes;
    writeSync(this.fd!, text);
    this.fileHead = head;
  }

  /** Finish the current file; start one named after the first line it will hold. */
  private rotate(firstLine: string): void {
    this.finishFile();
    const seq = /^\{"seq":(\d+)/.exec(firstLine)?.[1] ?? '0';
    const stamp = new Date(this.now()).toISOString().replace(/[-:]/g, '').replace('.', '');
    const name = `audit-${stamp}-${seq.padStart(12, '0')}.jsonl`;
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

/** Audit files of `dir` in chain order. */
export function auditFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => AUDIT_FILE.test(n))
    .sort()
    .map((n) => join(dir, n));
}

/** The chain head at the end of the newest file that holds a complete event. */
function lastHead(dir: string): ChainHead {
  const files = auditFiles(dir);
  for (let i = files.length - 1; i >= 0; i--) {
    const head = lastCompleteEvent(files[i]!);
    if (head) return head;
  }
  return { seq: -1, hash: GENESIS };
}

/** Read backwards from the end of `file` to its last complete, intact line. */
function lastCompleteEvent(file: string): ChainHead | undefined {
  const fd = openSync(file, 'r');
  try {
    let pos = fstatSync(fd).size;
    let tail = Buffer.alloc(0);
    while (pos > 0) {
      const start = Math.max(0, pos - TAIL_CHUNK);
      const chunk = Buffer.alloc(pos - start);
      readSync(fd, chunk, 0, chunk.length, start);
      tail = Buffer.concat([chunk, tail]);
      pos = start;
      // `tail` always reaches the end of the file: what follows its last '\n' is a partial line.
      const end = tail.lastIndexOf(0x0a);
      if (end < 0) continue;
      const lines = tail.subarray(0, end).toString('utf8').split('\n');
      // Unless the file's start was reached, the first piece may be cut: not a line yet.
      for (let i = lines.length - 1; i >= (start === 0 ? 0 : 1); i--) {
        const parsed = parseLine(lines[i]!);
        if (parsed?.intact) return { seq: parsed.seq, hash: parsed.hash };
      }
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}
