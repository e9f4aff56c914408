/**
 * The MCP conformance suite's server scenarios (`@modelcontextprotocol/conformance` 0.1.16, the
 * active suite: all 30 server scenarios but the pending ones) against the MCP reference
 * server, `@modelcontextprotocol/server-everything`: over its own transport (its
 * `streamableHttp` mode), through the adapter alone (stdio), and through pqmcp (front ->
 * PqmcpClientTransport -> `pqmcp serve` -> stdio). See three-ways.ts. The verdicts must be
 * exactly the same all three ways.
 *
 * server-everything is not the suite's own test server: it lacks the suite's test_* tools,
 * resources and prompts, so it fails those scenarios (13 of 32 checks pass); the failures
 * count too, with their error messages, which must be the same through pqmcp.
 * server-target.test.ts runs the same comparison on a server that has that surface.
 *
 * The last test breaks the pqmcp path on purpose (a message hook that answers every
 * `tools/call` itself) and checks that the verdicts change, so the comparison can fail.
 * ~60-80 s on Node 24, about twice that on Node 20 (load average ~20 on 2 cores).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageHook } from '../../src/transport/index.js';
import { EVERYTHING } from '../cli/helpers.js';
import { startFront } from './front.js';
import { verdictLines } from './suite.js';
import type { Verdict } from './suite.js';
import { MIN_SCENARIOS, cleanupAll, expectSameVerdicts, found, pqmcpBackend, prepareIdentities, scenarios, startEverythingHttp, threeWays, throughFront } from './three-ways.js';
import type { ThreeWays } from './three-ways.js';

describe.skipIf('missing' in found)('MCP conformance suite, server scenarios: server-everything through pqmcp', () => {
  const cleanups: Array<() => unknown> = [];
  let w: ThreeWays;

  beforeAll(async () => {
    await prepareIdentities();
    w = await threeWays(
      async () => {
        const { url, child } = await startEverythingHttp();
        return { url, stop: () => child.kill('SIGKILL') };
      },
      [process.execPath, EVERYTHING, 'stdio'],
      cleanups,
    );
  }, 480_000);

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanupAll();
  });

  it('the baseline ran the whole active suite and has passes and failures', () => {
    console.log(`conformance verdicts, server-everything over its own Streamable HTTP:\n  ${verdictLines(w.baseline.verdicts).join('\n  ')}`);
    expect(scenarios(w.baseline).size, w.baseline.output).toBeGreaterThanOrEqual(MIN_SCENARIOS);
    const statuses = new Set(w.baseline.verdicts.map((v) => v.status));
    expect(statuses).toContain('SUCCESS');
    expect(statuses).toContain('FAILURE');
    // The core of the protocol passes on the reference server (else the comparison says little).
    for (const s of ['server-initialize', 'ping', 'tools-list', 'tools-call-simple-text', 'resources-list', 'resources-subscribe', 'prompts-list', 'logging-set-level']) {
      expect(w.baseline.verdicts.filter((v) => v.scenario === s).map((v) => v.status), s).toEqual(['SUCCESS']);
    }
  });

  it('the adapter alone (stdio) and pqmcp (front -> PqmcpClientTransport -> pqmcp serve -> stdio) give exactly the baseline verdicts', () => {
    expectSameVerdicts(w);
  });

  it('a broken pqmcp path changes the verdicts (the comparison can fail)', async () => {
    // A client-side hook that answers every tools/call with an error instead of sending it:
    // tools-call-simple-text, which passes on the baseline, must now fail; tools-list must not change.
    // Three scenarios, one run each, to keep this short.
    const noToolCalls: MessageHook = {
      name: 'no-tool-calls',
      toPeer: (m) => (m.method === 'tools/call' && m.id !== undefined ? { reply: { jsonrpc: '2.0', id: m.id, error: { code: -32001, message: 'dropped by the test' } } } : undefined),
    };
    const picked = ['tools-list', 'tools-call-simple-text', 'tools-call-error'];
    const broken = await throughFront(await startFront(pqmcpBackend(w.gatewayUrl, [noToolCalls])), picked);
    const expected = w.baseline.verdicts.filter((v) => picked.includes(v.scenario));
    const same = (v: Verdict): boolean => expected.some((b) => b.scenario === v.scenario && b.check === v.check && b.status === v.status && b.error === v.error);
    expect(scenarios(broken)).toEqual(new Set(picked));
    const changed = broken.verdicts.filter((v) => !same(v)).map((v) => v.scenario);
    console.log(`broken path, changed verdicts: ${verdictLines(broken.verdicts.filter((v) => !same(v))).join('; ')}`);
    expect(changed).toContain('tools-call-simple-text');
    expect(changed).not.toContain('tools-list');
    expect(broken.verdicts.find((v) => v.scenario === 'tools-call-simple-text')?.status).toBe('FAILURE');
  }, 120_000);
});

