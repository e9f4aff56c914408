/** ExpiryHeap (request-budget.ts's sessions by first expiry): random sets, changes and removals against a plain map. */
import { describe, expect, it } from 'vitest';
import { ExpiryHeap } from '../../src/transport/expiry-heap.js';

describe('ExpiryHeap', () => {
  it('always yields the earliest key and holds exactly the keys with a time', () => {
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const heap = new ExpiryHeap<number>();
    const plain = new Map<number, number>();
    for (let step = 0; step < 20_000; step++) {
      const key = random(64);
      const at = random(5) === 0 ? undefined : random(1_000);
      heap.set(key, at);
      if (at === undefined) plain.delete(key);
      else plain.set(key, at);
      expect(heap.size).toBe(plain.size);
      expect(heap.get(key)).toBe(at);
      const first = heap.first();
      if (plain.size === 0) expect(first).toBeUndefined();
      else {
        expect(first!.at).toBe(Math.min(...plain.values()));
        expect(plain.get(first!.key)).toBe(first!.at);
      }
    }
    for (const key of [...plain.keys()]) heap.set(key, undefined);
    expect(heap.size).toBe(0);
  });
});
