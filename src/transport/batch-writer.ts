/**
 * The write side of a Connection: records queued during one turn of the event loop are
 * written as few socket messages as `maxWriteBatch` allows.
 *
 * Sharp edges:
 * - Records of LARGE_RECORD bytes or more are never copied into a batch: each is written
 *   as its own socket message (cut at maxWriteBatch), in order with the batches around it.
 *   Copying it would cost more than the extra WebSocket frame saves.
 * - No socket message exceeds maxWriteBatch (the peer's maxPayload is at least that): a
 *   record above it is cut; the Session accepts any split of the record stream.
 * - `flushNow()` writes at once (handshake flights, closes); otherwise the queue is written
 *   at the end of the turn. After `stop()` nothing is queued or written again.
 * - A socket that throws on send() is reported once through `onWriteError` (its close
 *   event ends the connection); `onWritten` runs for every message handed to the OS.
 */
import { concat } from '../bytes.js';
import type { MessageSocket } from './connection.js';
import { defer } from './timers.js';

/** Records of at least this many bytes are written as their own socket message, not batched. */
export const LARGE_RECORD = 16 * 1024;

export class BatchWriter {
  private out: Uint8Array[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private stopped = false;

  constructor(
    private readonly socket: MessageSocket,
    private readonly maxWriteBatch: number,
    private readonly onWritten: () => void,
    private readonly onWriteError: (err: Error) => void,
  ) {}

  /** Bytes queued here and not yet handed to the socket. */
  get queuedBytes(): number {
    return this.outBytes;
  }

  /** Queue records; they are written at the end of this turn (or by flushNow). */
  enqueue(chunks: Uint8Array[]): void {
    if (chunks.length === 0 || this.stopped) return;
    for (const c of chunks) {
      this.out.push(c);
      this.outBytes += c.length;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      defer(() => {
        this.flushScheduled = false;
        this.flushNow();
      });
    }
  }

  /** Drop whatever is queued (the socket is being terminated). */
  discard(): void {
    this.out = [];
    this.outBytes = 0;
  }

  /** Discard and refuse everything from now on (the connection is closed). */
  stop(): void {
    this.stopped = true;
    this.discard();
  }

  /** Write everything queued, in order, batched as the file comment says. */
  flushNow(): void {
    if (this.out.length === 0 || this.stopped) return;
    const chunks = this.out;
    this.discard();
    const max = this.maxWriteBatch;
    let batch: Uint8Array[] = [];
    let size = 0;
    for (const chunk of chunks) {
      if (size > 0 && (chunk.length >= LARGE_RECORD || size + chunk.length > max)) {
        this.write(batch);
        batch = [];
        size = 0;
      }
      if (chunk.length >= LARGE_RECORD) {
        for (let o = 0; o < chunk.length; o += max) this.write([chunk.subarray(o, o + max)]);
        continue;
      }
      batch.push(chunk);
      size += chunk.length;
    }
    if (size > 0) this.write(batch);
  }

  private write(batch: Uint8Array[]): void {
    const data = batch.length === 1 ? batch[0]! : concat(...batch);
    try {
      this.socket.send(data, () => this.onWritten());
    } catch (err) {
      // A socket that refuses writes is gone; its close event ends the connection.
      this.onWriteError(err instanceof Error ? err : new Error('send failed'));
    }
  }
}
