/**
 * A min-heap of keys by a time, one entry per key (request-budget.ts: the sessions holding
 * cancelled requests, by when the first of those expires): the earliest in O(1); a key's
 * time set, changed or removed in O(log n). Holds exactly the keys given a time and not
 * removed since (no stale entries: a key removed leaves nothing behind).
 */
export class ExpiryHeap<K> {
  private readonly items: Array<{ readonly key: K; readonly at: number }> = [];
  private readonly index = new Map<K, number>();

  get size(): number {
    return this.items.length;
  }

  /** The key with the earliest time, and that time. */
  first(): { readonly key: K; readonly at: number } | undefined {
    return this.items[0];
  }

  /** `key`'s time, if it has one. */
  get(key: K): number | undefined {
    const i = this.index.get(key);
    return i === undefined ? undefined : this.items[i]!.at;
  }

  /** Give `key` the time `at` (undefined: remove it). */
  set(key: K, at: number | undefined): void {
    const i = this.index.get(key);
    if (at === undefined) {
      if (i !== undefined) this.removeAt(i);
    } else if (i === undefined) {
      this.items.push({ key, at });
      this.up(this.items.length - 1);
    } else if (this.items[i]!.at !== at) {
      const earlier = at < this.items[i]!.at;
      this.items[i] = { key, at };
      if (earlier) this.up(i);
      else this.down(i);
    }
  }

  private removeAt(i: number): void {
    this.index.delete(this.items[i]!.key);
    const last = this.items.pop()!;
    if (i === this.items.length) return;
    this.items[i] = last;
    this.up(i);
    this.down(this.index.get(last.key)!);
  }

  private place(i: number, item: { readonly key: K; readonly at: number }): void {
    this.items[i] = item;
    this.index.set(item.key, i);
  }

  private up(i: number): void {
    const item = this.items[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.items[parent]!.at <= item.at) break;
      this.place(i, this.items[parent]!);
      i = parent;
    }
    this.place(i, item);
  }

  private down(i: number): void {
    const item = this.items[i]!;
    const n = this.items.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const child = left + 1 < n && this.items[left + 1]!.at < this.items[left]!.at ? left + 1 : left;
      if (this.items[child]!.at >= item.at) break;
      this.place(i, this.items[child]!);
      i = child;
    }
    this.place(i, item);
  }
}
