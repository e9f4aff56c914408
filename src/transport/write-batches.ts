/**
 * How a Connection cuts the records queued in one turn of the event loop into socket
 * messages.
 *
 * Sharp edges:
 * - Records below LARGE_RECORD are coalesced into as few messages as `maxWriteBatch`
 *   allows (one copy each); a larger record is its own message, not copied (the copy would
 *   cost more than the extra WebSocket frame saves).
 * - No message exceeds `maxWriteBatch`: a record above it is cut into views (the Session
 *   accepts any split of the record stream). Order is kept.
 */
import { concat } from '../bytes.js';

/** Records of at least this many bytes are written as their own socket message, not batched. */
export const LARGE_RECORD = 16 * 1024;

/** The socket messages carrying `records`, in order. */
export function socketMessages(records: readonly Uint8Array[], maxWriteBatch: number): Uint8Array[] {
  // One record that fits in one message (a sequential call's request or response): as is.
  if (records.length === 1 && records[0]!.length <= maxWriteBatch) return records as Uint8Array[];
  const messages: Uint8Array[] = [];
  let batch: Uint8Array[] = [];
  let size = 0;
  for (const record of records) {
    if (size > 0 && (record.length >= LARGE_RECORD || size + record.length > maxWriteBatch)) {
      messages.push(batch.length === 1 ? batch[0]! : concat(...batch));
      batch = [];
      size = 0;
    }
    if (record.length >= LARGE_RECORD) {
      for (let o = 0; o < record.length; o += maxWriteBatch) messages.push(record.subarray(o, o + maxWriteBatch));
      continue;
    }
    batch.push(record);
    size += record.length;
  }
  if (size > 0) messages.push(batch.length === 1 ? batch[0]! : concat(...batch));
  return messages;
}
