/**
 * The same comparison as server-everything.test.ts (see three-ways.ts) on
 * test/conformance/fixtures/target-server.mjs, a server with the surface the conformance
 * suite's scenarios ask for (test_* tools, test:// resources, test_* prompts). Its baseline is
 * the server in-process behind the same HTTP handling as the adapter's front, connected
 * straight to the SDK's StreamableHTTPServerTransport (its own transport).
 *
 * Here what crosses the transport passes: progress, logging during a call, sampling and
 * elicitation requests (server-to-client, while a tool runs), images, audio, embedded
 * resources, completion. Through pqmcp these travel one channel, and the adapter has to put
 * them back on the right HTTP stream; the verdicts must still be exactly the baseline's.
 * ~60-80 s on Node 24, about twice that on Node 20 (load average ~20 on 2 cores).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOwnHttp } from './front.js';
import { verdictLines } from './suite.js';
import { MIN_SCENARIOS, TARGET, cleanupAll, expectSameVerdicts, found, prepareIdentities, scenarios, threeWays } from './three-ways.js';
import type { ThreeWays } from './three-ways.js';

describe.skipIf('missing' in found)('MCP conformance suite, server scenarios: a server with the suite\'s own surface through pqmcp', () => {
  const cleanups: Array<() => unknown> = [];
  let w: ThreeWays;

  beforeAll(async () => {
    await prepareIdentities();
    const { createTargetServer } = await import('./fixtures/target-server.mjs');
    w = await threeWays(
      async () => {
        const front = await startOwnHttp(createTargetServer);
        return { url: front.url, stop: () => front.close() };
      },
      [process.execPath, TARGET],
      cleanups,
    );
  }, 480_000);

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanupAll();
  });

  it('over its own transport it passes what crosses the transport: progress, logging, sampling, elicitation', () => {
    console.log(`conformance verdicts, target server over its own Streamable HTTP:\n  ${verdictLines(w.baseline.verdicts).join('\n  ')}`);
    expect(scenarios(w.baseline).size, w.baseline.output).toBeGreaterThanOrEqual(MIN_SCENARIOS);
    for (const s of ['tools-call-with-progress', 'tools-call-with-logging', 'tools-call-sampling', 'tools-call-elicitation', 'elicitation-sep1034-defaults', 'resources-read-binary', 'prompts-get-with-image', 'completion-complete']) {
      const got = w.baseline.verdicts.filter((v) => v.scenario === s);
      expect(got.length, s).toBeGreaterThan(0);
      expect(got.filter((v) => v.status !== 'SUCCESS'), s).toEqual([]);
    }
  });

  it('the adapter alone (stdio) and pqmcp give exactly the baseline verdicts', () => {
    expectSameVerdicts(w);
  });
});
