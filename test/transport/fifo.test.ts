import { describe, expect, it } from 'vitest';
import { Fifo } from '../../src/transport/fifo.js';
import { collectGarbage } from '../helpers/memory.js';

describe('Fifo', () => {
  it('hands entries out in order, across compactions and after emptying', () => {
    const fifo = new Fifo<number>();
    const out: number[] = [];
    for (let i = 0; i < 1000; i++) {
      fifo.push(i);
      if (i % 3 === 2) out.push(fifo.shift()!);
    }
    expect(fifo.length).toBe(1000 - out.length);
    expect(fifo.peek()).toBe(out.length);
    while (fifo.length > 0) out.push(fifo.shift()!);
    expect(out).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(fifo.shift()).toBeUndefined();
    expect(fifo.peek()).toBeUndefined();
    fifo.push(7);
    expect(fifo.shift()).toBe(7);
  });

  it('keeps no reference to an entry once it is taken, while the queue stays non-empty', async () => {
    // The Connection's delivery queue holds received messages; one that was delivered and
    // counted as released must not stay reachable from the queue until a later compaction
    // (up to 256 messages of up to maxMessageSize each, outside the inbox accounting).
    const fifo = new Fifo<{ bytes: Uint8Array }>();
    const taken: Array<WeakRef<object>> = [];
    fifo.push({ bytes: new Uint8Array(1024) });
    for (let i = 0; i < 10; i++) {
      fifo.push({ bytes: new Uint8Array(1024) });
      taken.push(new WeakRef(fifo.shift()!));
    }
    await new Promise((resolve) => setImmediate(resolve)); // WeakRef targets live until the job ends
    collectGarbage();
    expect(fifo.length).toBe(1);
    expect(taken.filter((ref) => ref.deref() !== undefined)).toHaveLength(0);
  });
});
