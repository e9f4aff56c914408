/**
 * Reused buffers for large sealed records, shared by every Connection of the process.
 * Streaming a megabyte otherwise allocates a megabyte of record buffers outside V8's heap;
 * V8 counts that external memory and runs full collections for it, which cost a sender
 * more CPU than the copies themselves (docs/benchmarks.md, "Bulk and streaming: where the
 * CPU goes").
 *
 * Sharp edges:
 * - Only records of at least POOLED_RECORD bytes come from here (so a buffer is never more
 *   than twice the record it carries); each is a view of length n on a buffer of
 *   BUFFER_SIZE bytes (the largest record).
 * - `release()` takes back only a whole record `take()` handed out and not yet released (a
 *   WeakMap of buffers in use, with their record's length): a part of one (a socket
 *   message cut from it), anything else, or a second release, is ignored; `take()` never
 *   hands out a buffer in use. Release a record only once nothing reads it any more (the
 *   socket's write callback reported success). One never released is simply garbage.
 * - A released buffer holds ciphertext only (sealing writes the plaintext and encrypts it
 *   in the same synchronous call).
 * - At most MAX_FREE buffers are kept; a sender that fills its high-water mark releases
 *   that much at once when the socket drains, so the bound is about one connection's
 *   default high-water mark. The free list is dropped once IDLE_MS pass without a take():
 *   a process that stopped streaming holds none.
 */
import { uninitialised } from '../bytes.js';
import { HEADER_LENGTH, MAX_PROTECTED_BODY } from '../record/constants.js';
import { unref, type Timer } from './timers.js';

/** The largest record: header and the largest protected body. */
export const BUFFER_SIZE = HEADER_LENGTH + MAX_PROTECTED_BODY;
/** Records from this size up are written into reused buffers. */
export const POOLED_RECORD = BUFFER_SIZE >>> 1;
/** Free buffers kept at most (8 MiB). */
export const MAX_FREE = 128;
/** The free list is dropped after this long without a take(). */
export const IDLE_MS = 1000;

export class RecordBuffers {
  private free: ArrayBuffer[] = [];
  /** Buffers handed out and not yet given back, with the length of the record in each. */
  private readonly inUse = new WeakMap<ArrayBuffer, number>();
  private taken = false;
  private timer: Timer | undefined;

  /** A buffer of n bytes for one record (POOLED_RECORD <= n <= BUFFER_SIZE), else undefined. */
  take(n: number): Uint8Array | undefined {
    if (n < POOLED_RECORD || n > BUFFER_SIZE) return undefined;
    const buffer = this.free.pop() ?? (uninitialised(BUFFER_SIZE).buffer as ArrayBuffer);
    this.inUse.set(buffer, n);
    this.taken = true;
    return new Uint8Array(buffer, 0, n);
  }

  /** Give back a record from take() once nothing reads it; anything else is ignored. */
  release(record: Uint8Array): void {
    const buffer = record.buffer as ArrayBuffer;
    if (record.byteOffset !== 0 || this.inUse.get(buffer) !== record.length) return;
    this.inUse.delete(buffer);
    if (this.free.length >= MAX_FREE) return;
    this.free.push(buffer);
    this.timer ??= unref(setInterval(() => this.trim(), IDLE_MS));
  }

  /** Free buffers held now. */
  get freeCount(): number {
    return this.free.length;
  }

  /** Drop the free list if nothing was taken since the last look. */
  private trim(): void {
    if (this.taken) {
      this.taken = false;
      return;
    }
    this.free = [];
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The process's record buffers (every Connection's writer uses these). */
export const recordBuffers = new RecordBuffers();
