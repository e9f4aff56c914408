/**
 * A first-in first-out queue that takes from the head in O(1): taken entries are dropped
 * in bulk once they are most of the array (a queue that never empties stays small).
 *
 * A taken entry's slot is cleared at once, so the queue never keeps an entry alive after
 * handing it out: the Connection's delivery queue (delivery.ts) holds received messages,
 * and one that was delivered (and released from the inbox accounting) must not stay
 * reachable until a later compaction, which under a steady stream could be hundreds of
 * messages.
 */

/** Taken entries at the head above which the array is compacted. */
const COMPACT_AFTER = 256;

export class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The oldest entry, left in place; undefined when empty. */
  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  /** Remove and return the oldest entry. */
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    return item;
  }
}
