/**
 * The write side of a Connection: records queued during one turn of the event loop are
 * written at the end of the turn, as the socket messages write-batches.ts cuts them into.
 *
 * Sharp edges:
 * - `flushNow()` writes at once (handshake flights, closes); otherwise the queue is written
 *   at the end of the turn. After `stop()` nothing is queued or written again.
 * - A socket that throws on send() is reported once through `onWriteError` (its close
 *   event ends the connection); `onWritten` runs for every message handed to the OS.
 * - Application messages are not sealed when sent but when the turn's batch is written:
 *   `schedule()` marks the source (the Session) as having queued messages and the flush
 *   seals them all at once, after the records already queued here (multi-message records,
 *   docs/protocol.md section 3.6). A source that fails to seal reports its (typed) error
 *   through `onWriteError` too.
 * - Once a message of at most EAGER_MESSAGE bytes brings the unsealed bytes to
 *   EAGER_FLUSH (about one full multi-message record), `schedule()` seals and writes at
 *   once, inside the caller's turn: a sender that queues megabytes of tiny messages in one
 *   turn (a loop of send() calls below the highWaterMark) keeps the socket and the
 *   receiver busy while it produces the rest, and holds no list of tens of thousands of
 *   messages. Larger messages wait for the end of the turn (measured at 4 KiB and above,
 *   docs/benchmarks-history.md, early flush: sealing them early cost CPU per MB on both sides).
 * - Over a socket that `releasesOnDone` (connection-types.ts), the source seals its large
 *   records into the process's record buffers (record-buffers.ts), and one written as one
 *   socket message is given back for reuse when the socket reports it written without
 *   error. A record cut into several messages, or batched into a copy, is not given back
 *   (the views would share it).
 */
import type { MessageSocket } from './connection-types.js';
import { defer } from './timers.js';
import { socketMessages } from './write-batches.js';
import { POOLED_RECORD, recordBuffers } from './record-buffers.js';

/**
 * Unsealed message bytes that make `schedule()` flush at once. Counted without the 2-byte
 * length each message takes in a multi-message record: the 4 KiB left of the 64 KiB record
 * covers them for messages of 30 bytes and more (the smallest JSON-RPC message), so this is
 * about one record. Smaller messages spill into more records (and up to 1024 messages per
 * record): 1-byte messages flush every 61,440, as 60 records in one socket message.
 */
export const EAGER_FLUSH = 60 * 1024;
/** The largest message that can trigger the early flush. */
export const EAGER_MESSAGE = 1024;

/** What seals the queued application messages at flush time (a Session). */
export interface RecordSource {
  readonly pendingBytes: number;
  flush(): Uint8Array[];
  /** Set by the writer: large records are sealed into these, given back once written. */
  recordBuffers?: { take(n: number): Uint8Array | undefined } | undefined;
}

export class BatchWriter {
  private out: Uint8Array[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private stopped = false;
  /** The source seals large records into the record buffers (the socket `releasesOnDone`). */
  private readonly pooled: boolean;
  /** Every write's callback (one function, not one per write). */
  private readonly written = (): void => this.onWritten();
  /** The write callback of a large record: on success its buffer is reused (record-buffers.ts). */
  private writtenRecord(record: Uint8Array): (err?: Error) => void {
    return (err) => {
      if (err === undefined || err === null) recordBuffers.release(record);
      this.onWritten();
    };
  }
  /** The end-of-turn flush (one function, not one per turn). */
  private readonly deferredFlush = (): void => {
    this.flushScheduled = false;
    this.flushNow();
  };

  constructor(
    private readonly socket: MessageSocket,
    private readonly source: RecordSource,
    private readonly maxWriteBatch: number,
    private readonly onWritten: () => void,
    private readonly onWriteError: (err: Error) => void,
  ) {
    this.pooled = socket.releasesOnDone === true;
    if (this.pooled) source.recordBuffers = recordBuffers;
  }

  /** Bytes queued here (or in the source) and not yet handed to the socket. */
  get queuedBytes(): number {
    return this.outBytes + this.source.pendingBytes;
  }

  /** Queue records; they are written at the end of this turn (or by flushNow). */
  enqueue(chunks: Uint8Array[]): void {
    if (chunks.length === 0 || this.stopped) return;
    this.add(chunks);
    this.schedule();
  }

  /** Write at the end of this turn (the source has queued messages); at once past EAGER_FLUSH after a tiny one. */
  schedule(messageSize = Infinity): void {
    if (messageSize <= EAGER_MESSAGE && this.source.pendingBytes >= EAGER_FLUSH) return this.flushNow();
    if (!this.flushScheduled && !this.stopped) {
      this.flushScheduled = true;
      defer(this.deferredFlush);
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

  /** Seal what the source holds, then write everything queued, in order. */
  flushNow(): void {
    if (this.stopped) return;
    try {
      this.add(this.source.flush());
    } catch (err) {
      this.onWriteError(err instanceof Error ? err : new Error('sealing failed'));
    }
    if (this.out.length === 0) return;
    const records = this.out;
    this.discard();
    for (const message of socketMessages(records, this.maxWriteBatch)) this.write(message);
  }

  private add(chunks: Uint8Array[]): void {
    for (const c of chunks) {
      this.out.push(c);
      this.outBytes += c.length;
    }
  }

  private write(data: Uint8Array): void {
    try {
      // A large record written whole goes back to the record buffers once the socket is done with it.
      this.socket.send(data, this.pooled && data.length >= POOLED_RECORD ? this.writtenRecord(data) : this.written);
    } catch (err) {
      // A socket that refuses writes is gone; its close event ends the connection.
      this.onWriteError(err instanceof Error ? err : new Error('send failed'));
    }
  }
}
