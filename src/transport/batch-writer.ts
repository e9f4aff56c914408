/**
 * The write side of a Connection: records queued during one turn of the event loop are
 * written at the end of the turn, as the socket messages write-batches.ts cuts them into.
 *
 * Sharp edges:
 * - `flushNow()` writes at once (handshake flights, closes); otherwise the queue is written
 *   at the end of the turn. After `stop()` nothing is queued or written again.
 * - A socket that throws on send() is reported once through `onWriteError` (its close
 *   event ends the connection); `onWritten` runs for every message handed to the OS.
 */
import type { MessageSocket } from './connection-types.js';
import { defer } from './timers.js';
import { socketMessages } from './write-batches.js';

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

  /** Write everything queued, in order. */
  flushNow(): void {
    if (this.out.length === 0 || this.stopped) return;
    const records = this.out;
    this.discard();
    for (const message of socketMessages(records, this.maxWriteBatch)) this.write(message);
  }

  private write(data: Uint8Array): void {
    try {
      this.socket.send(data, () => this.onWritten());
    } catch (err) {
      // A socket that refuses writes is gone; its close event ends the connection.
      this.onWriteError(err instanceof Error ? err : new Error('send failed'));
    }
  }
}
