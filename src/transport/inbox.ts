/**
 * Receive-side backpressure of one connection: the bytes and the count of received
 * messages not yet delivered to the application. Reading from the socket pauses while
 * either is above its mark and resumes once both are at half of it.
 *
 * Sharp edges:
 * - The count matters as much as the bytes: a decoded message costs ~150 bytes of heap
 *   (a view and two small objects) however short it is, and a multi-message record carries
 *   a 1-byte message in 3 wire bytes (docs/protocol.md section 3.6). The Session therefore
 *   also stops decoding after MAX_MESSAGES_PER_TURN messages per call, and the connection
 *   drains the rest only while this inbox has room: undelivered messages stay below
 *   MAX_UNDELIVERED_MESSAGES + MAX_MESSAGES_PER_TURN + 1023 (~3k, well under 1 MiB of heap).
 */

/** Received messages waiting for delivery above which reading from the socket pauses. */
export const MAX_UNDELIVERED_MESSAGES = 1024;
/** Messages one Session call decodes before it stops (Session maxMessagesPerCall). */
export const MAX_MESSAGES_PER_TURN = 1024;

export class Inbox {
  private bytes = 0;
  private count = 0;

  constructor(private readonly highWaterMark: number) {}

  /** A message was queued for delivery: true when reading should pause. */
  add(size: number): boolean {
    this.bytes += size;
    this.count++;
    return this.bytes > this.highWaterMark || this.count > MAX_UNDELIVERED_MESSAGES;
  }

  /** A message was delivered: true when the inbox has drained enough to read again. */
  remove(size: number): boolean {
    this.bytes -= size;
    this.count--;
    return this.bytes <= this.highWaterMark / 2 && this.count <= MAX_UNDELIVERED_MESSAGES / 2;
  }
}
