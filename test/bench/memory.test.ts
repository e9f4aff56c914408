/**
 * The memory suite's arithmetic and settling (benchmarks/suites/memory.ts), and the Node
 * flags its idle-session processes run with: a young generation that this runtime really
 * caps (a real child process, against the same script under the in-flight part's flags).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { memoryNodeFlags, sessionFigures, settle } from '../../benchmarks/suites/memory.js';
import type { Mem } from '../../benchmarks/suites/memory.js';

const MiB = 1024 * 1024;
const reading = (rssMiB: number, heapMiB = 0, externalMiB = 0): Mem => ({ rss: rssMiB * MiB, heapUsed: heapMiB * MiB, external: externalMiB * MiB });

describe('sessionFigures', () => {
  it('divides each step growth and the whole growth by the sessions opened', () => {
    // 250 sessions a step: +5, +5.5, +4.5, +6 MiB of RSS; +6 MiB of heap and +1 of external.
    const f = sessionFigures([reading(100, 30, 5), reading(105), reading(110.5), reading(115), reading(121, 36, 6)], 250);
    expect(f.perStep?.n).toBe(4);
    expect(f.perStep?.min).toBeCloseTo((4.5 * 1024) / 250, 1);
    expect(f.perStep?.max).toBeCloseTo((6 * 1024) / 250, 1);
    expect(f.perStep?.median).toBeCloseTo((5.25 * 1024) / 250, 1);
    expect(f.total).toBeCloseTo((21 * 1024) / 1000, 6);
    expect(f.heap).toBeCloseTo((7 * 1024) / 1000, 6);
  });

  it('reports a process giving memory back as it is, negative (results.ts then gives no ratio)', () => {
    const f = sessionFigures([reading(150), reading(155), reading(130), reading(136), reading(141)], 250);
    expect(f.perStep?.min).toBeCloseTo((-25 * 1024) / 250, 1);
    expect(f.total).toBeCloseTo((-9 * 1024) / 1000, 6);
  });

  it('needs a reading before the steps and a step size', () => {
    expect(() => sessionFigures([reading(1)], 250)).toThrow(/a reading before the steps/);
    expect(() => sessionFigures([reading(1), reading(2)], 0)).toThrow(/step size/);
  });
});

describe('settle', () => {
  const run = async (rssMiB: number[], maxReadings = 9) => {
    const waits: number[] = [];
    let i = 0;
    const last = await settle(async () => reading(rssMiB[Math.min(i++, rssMiB.length - 1)]!), { gapMs: 500, slackBytes: 256 * 1024, maxReadings, wait: async (ms) => void waits.push(ms) });
    return { rss: last.rss / MiB, readings: i, waits };
  };

  it('reads again while RSS falls by more than the slack, and returns the last reading', async () => {
    expect(await run([120, 110, 104, 103.9, 90])).toEqual({ rss: 103.9, readings: 4, waits: [500, 500, 500] });
  });

  it('stops at the first reading that does not fall (or rises)', async () => {
    expect(await run([120, 121, 90])).toEqual({ rss: 121, readings: 2, waits: [500] });
  });

  it('stops after maxReadings however long RSS keeps falling', async () => {
    const r = await run([100, 90, 80, 70, 60, 50, 40, 30, 20, 10], 4);
    expect(r).toEqual({ rss: 70, readings: 4, waits: [500, 500, 500] });
  });
});

describe('memoryNodeFlags', () => {
  // Keeps ~100k objects alive while allocating garbage, as a burst of handshakes does, then
  // prints the young generation's committed size (MiB) and whether gc() is exposed.
  const script = `
    const v8 = require('node:v8');
    const keep = [];
    for (let i = 0; i < 400000; i++) { const o = { i, s: 'x' + i, a: [i] }; if (i % 4 === 0) keep.push(o); }
    const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    console.log(JSON.stringify({ youngMiB: young.space_size / 1048576, gc: typeof gc, kept: keep.length }));`;
  const young = (flags: string[]) => {
    const out = spawnSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(out.status, out.stderr).toBe(0);
    return JSON.parse(out.stdout) as { youngMiB: number; gc: string; kept: number };
  };

  it('the idle-session part caps the young generation that the in-flight part lets grow', () => {
    const sessions = young(memoryNodeFlags('sessions'));
    const inflight = young(memoryNodeFlags('inflight'));
    expect(sessions.gc).toBe('function');
    expect(inflight.gc).toBe('function');
    expect(sessions.kept).toBe(100_000);
    expect(sessions.youngMiB).toBeLessThanOrEqual(4);
    expect(inflight.youngMiB).toBeGreaterThan(8);
  });
});
