/**
 * socketMessages: how one turn's records become socket messages (order kept, small records
 * coalesced, large ones alone and never copied, nothing above maxWriteBatch).
 */
import { describe, expect, it } from 'vitest';
import { LARGE_RECORD, socketMessages } from '../../src/transport/write-batches.js';
import { concat } from '../../src/bytes.js';

const record = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe('socketMessages', () => {
  it('writes a lone record as it is: the same buffer, not a copy', () => {
    const r = record(120, 1);
    const out = socketMessages([r], 1 << 20);
    expect(out).toHaveLength(1);
    expect(out[0]).toBe(r);
    const large = record(LARGE_RECORD + 10, 2);
    expect(socketMessages([large], 1 << 20)[0]).toBe(large);
  });

  it('cuts a lone record above maxWriteBatch into views of at most maxWriteBatch bytes', () => {
    const r = record(LARGE_RECORD * 3, 3);
    const out = socketMessages([r], LARGE_RECORD);
    expect(out.map((m) => m.length)).toEqual([LARGE_RECORD, LARGE_RECORD, LARGE_RECORD]);
    expect(out.every((m) => m.buffer === r.buffer)).toBe(true);
    expect(concat(...out)).toEqual(r);
  });

  it('coalesces small records up to maxWriteBatch, keeps large ones alone and uncopied, in order', () => {
    const a = record(100, 1);
    const b = record(200, 2);
    const big = record(LARGE_RECORD, 3);
    const c = record(10_000, 4);
    const d = record(10_000, 5);
    const out = socketMessages([a, b, big, c, d], LARGE_RECORD);
    expect(out.map((m) => m.length)).toEqual([300, LARGE_RECORD, 10_000, 10_000]);
    expect(out[0]).toEqual(concat(a, b));
    expect(out[1]!.buffer).toBe(big.buffer); // a view, not a copy
    expect(out[2]).toBe(c); // alone in its batch: not copied either
    expect(out[3]).toBe(d);
    expect(concat(...out)).toEqual(concat(a, b, big, c, d));
  });
});
