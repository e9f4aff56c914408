/**
 * Ratios and verdicts derived from a run's figures (benchmarks/lib/results.ts, report.ts):
 * a per-session RSS at or below zero (a process giving memory back while it is measured)
 * gives no ratio, and its target reads "not measured", never "met".
 */
import { describe, expect, it } from 'vitest';
import { checkTargets, computeRatios } from '../../benchmarks/lib/results.js';

type Memory = Parameters<typeof computeRatios>[0]['memory'];

function ratiosFor(pqmcp: [number, number], wss: [number, number]): Record<string, number> {
  const variant = ([clientKiBPerSessionTotal, serverKiBPerSessionTotal]: [number, number]) => ({ clientKiBPerSessionTotal, serverKiBPerSessionTotal });
  const memory = { pqmcp: variant(pqmcp), wss: variant(wss) } as unknown as Memory;
  return computeRatios({ handshake: undefined, throughput: {}, mcp: undefined, memory, browser: undefined } as never);
}

describe('RSS per idle session ratios', () => {
  it('positive figures give both ratios and verdicts', () => {
    const ratios = ratiosFor([15, 12], [60, 58]);
    expect(ratios['memory.session.client.pqmcp/wss']).toBeCloseTo(0.25, 3);
    expect(ratios['memory.session.pqmcp/wss']).toBeCloseTo(12 / 58, 3);
    const rows = checkTargets(ratios, 'node24', {}).filter((t) => t.key.startsWith('memory.'));
    expect(rows.map((t) => t.pass)).toEqual([true, true]);
  });

  it('a figure at or below zero, on either side, gives no ratio and no verdict', () => {
    const ratios = ratiosFor([-3.3, 1.0], [44.7, -25.8]);
    expect(ratios['memory.session.client.pqmcp/wss']).toBeUndefined();
    expect(ratios['memory.session.pqmcp/wss']).toBeUndefined();
    const rows = checkTargets(ratios, 'node20', {}).filter((t) => t.key.startsWith('memory.'));
    expect(rows).toHaveLength(2);
    for (const t of rows) {
      expect(t.value).toBeUndefined();
      expect(t.pass).toBeUndefined();
    }
    expect(ratiosFor([0, 10], [40, 40])['memory.session.client.pqmcp/wss']).toBeUndefined();
  });
});
