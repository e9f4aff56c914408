/**
 * The bench:ci gate (benchmarks/lib/ci.ts): how a ratio is judged against its baseline, and
 * that the committed baseline covers every gate on both CI runtimes.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GATES, NOISY_TOLERANCE, TOLERANCE, better, judge, updatedBaseline } from '../../benchmarks/lib/ci.js';
import type { BaselineFile, Gate } from '../../benchmarks/lib/ci.js';

const lower: Gate = { key: 'x.cpu', better: 'lower', tolerance: 0.35, suite: 'throughput' };
const higher: Gate = { key: 'x.rate', better: 'higher', tolerance: 0.35, suite: 'mcp' };

describe('updatedBaseline', () => {
  const throughputGates = GATES.filter((g) => g.suite === 'throughput');
  const old: Record<string, number> = { ...Object.fromEntries(GATES.map((g, i) => [g.key, i + 1])), 'no.longer.a.gate': 9 };

  it('replaces the measured suites\' gates and keeps the others', () => {
    const ratios = Object.fromEntries(throughputGates.map((g) => [g.key, 0.5]));
    const next = updatedBaseline(old, throughputGates, { ...ratios, 'handshake.cpu.pqmcp-native/wss': 99 });
    for (const g of GATES) expect(next[g.key], g.key).toBe(g.suite === 'throughput' ? 0.5 : old[g.key]);
    expect(next).not.toHaveProperty('no.longer.a.gate');
  });

  it('a measured gate without a value is left out rather than kept stale', () => {
    const next = updatedBaseline(old, throughputGates, {});
    for (const g of throughputGates) expect(next).not.toHaveProperty(g.key);
    expect(Object.keys(next)).toHaveLength(GATES.length - throughputGates.length);
  });
});

describe('judge', () => {
  it('lower is better: fails only above baseline x (1 + tolerance)', () => {
    expect(judge(lower, 2.7, 2)).toMatchObject({ status: 'pass', limit: 2.7 });
    expect(judge(lower, 2.71, 2).status).toBe('fail');
    expect(judge(lower, 0.5, 2).status).toBe('pass');
  });

  it('higher is better: fails only below baseline / (1 + tolerance)', () => {
    expect(judge(higher, 1 / 1.35, 1).status).toBe('pass');
    expect(judge(higher, 0.74, 1).status).toBe('fail');
    expect(judge(higher, 3, 1).status).toBe('pass');
  });

  it('no baseline is a skip; a ratio not measured is a failure', () => {
    expect(judge(lower, 1, undefined).status).toBe('no-baseline');
    expect(judge(lower, undefined, 1).status).toBe('missing');
  });

  it('a gate held to its target ignores the baseline and fails only past the target', () => {
    const target: Gate = { key: 'x.rss', better: 'lower', tolerance: 0, suite: 'memory', target: 1 };
    expect(judge(target, 0.9, undefined)).toMatchObject({ status: 'pass', limit: 1 });
    expect(judge(target, 0.9, 0.2)).toMatchObject({ status: 'pass', limit: 1 });
    expect(judge(target, 1.01, 5).status).toBe('fail');
    expect(judge(target, undefined, 0.2).status).toBe('missing');
  });

  it('the better of two measurements counts', () => {
    expect(better(lower, 3, 2)).toBe(2);
    expect(better(higher, 0.5, 0.7)).toBe(0.7);
    expect(better(higher, undefined, 0.7)).toBe(0.7);
  });
});

describe('the committed gates and baseline', () => {
  const baseline = JSON.parse(readFileSync(new URL('../../benchmarks/baseline.json', import.meta.url), 'utf8')) as BaselineFile;

  it.each(['node20', 'node24'])('%s has a positive baseline for every gate not held to a target', (runtime) => {
    const ratios = baseline.runtimes[runtime]?.ratios ?? {};
    for (const gate of GATES) if (gate.target === undefined) expect(ratios[gate.key], gate.key).toBeGreaterThan(0);
  });

  it('tolerances are the documented ones: 35 % by default, 50 % for wall-clock handshake, throughput and cold start; RSS held to its target', () => {
    for (const gate of GATES) {
      if (gate.key.startsWith('memory.')) {
        expect(gate, gate.key).toMatchObject({ target: 1, better: 'lower' });
        continue;
      }
      const noisy = gate.key === 'handshake.time.pqmcp-native/wss' || gate.key.startsWith('throughput.') || gate.key.startsWith('coldstart.');
      expect(gate.target, gate.key).toBeUndefined();
      expect(gate.tolerance, gate.key).toBe(noisy ? NOISY_TOLERANCE : TOLERANCE);
    }
    expect([TOLERANCE, NOISY_TOLERANCE]).toEqual([0.35, 0.5]);
  });
});
