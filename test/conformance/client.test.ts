/**
 * The MCP conformance suite's client scenarios, with the client reaching the suite's test
 * server through pqmcp: the suite starts its HTTP test server for a scenario and runs
 * test/conformance/client.ts (an SDK 1.x Client) with the server's URL, two ways:
 *
 * - direct: the Client's transport is the SDK's StreamableHTTPClientTransport to the URL;
 * - pqmcp: the Client's transport is a PqmcpClientTransport to a pqmcp listener (real
 *   WebSocket on 127.0.0.1, mutual attestation), whose session is relayed to the URL by a
 *   StreamableHTTPClientTransport.
 *
 * The verdicts (SUCCESS/FAILURE/WARNING checks with their error messages) must be exactly the
 * same. The suite's INFO entries (a log of each HTTP request its server saw) are printed, not
 * compared: they record the HTTP traffic, not a verdict.
 *
 * Scenarios: initialize, tools_call and elicitation-sep1034-client-defaults, the ones about the
 * MCP messages a client sends and answers. Not run: sse-retry (the HTTP client's SSE
 * reconnection timing: in the pqmcp path that client is the relay's, not one pqmcp
 * provides, and the check measures milliseconds on a loaded machine) and auth/* (OAuth
 * flows of HTTP clients; pqmcp authenticates the agent in its handshake, and the relay's HTTP
 * hop does no OAuth). Each scenario starts a process (~5 s here), so this file takes ~30-60 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { ROOT, TSX_LOADER, tempDir, writeAgent, writeIssuer, writeTrust } from '../cli/helpers.js';
import { CONFORMANCE_SERVER_ID, conformanceNode, runClientSuite, verdictLines } from './suite.js';
import type { SuiteRun, Verdict } from './suite.js';

const SCENARIOS = ['initialize', 'tools_call', 'elicitation-sep1034-client-defaults'] as const;

const found = conformanceNode();
const node = 'node' in found ? found.node : '';
if ('missing' in found) console.warn(`test/conformance skipped: ${found.missing}`);

/** The client under test, as the suite runs it (it splits the command on spaces). */
const COMMAND = [process.execPath, '--import', TSX_LOADER, join(ROOT, 'test/conformance/client.ts')].join(' ');

const tmp = tempDir('conformance-client');

const verdicts = (run: SuiteRun): Verdict[] => run.verdicts.filter((v) => v.status !== 'INFO');

describe.skipIf('missing' in found)('MCP conformance suite, client scenarios: an SDK client through pqmcp', () => {
  let direct: SuiteRun;
  let viaPqmcp: SuiteRun;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const issuer = writeIssuer(tmp.dir, 'issuer://conformance', 'issuer');
    writeAgent(tmp.dir, issuer, CONFORMANCE_SERVER_ID, 'server');
    writeAgent(tmp.dir, issuer, 'agent://conformance/client', 'client');
    writeTrust(join(tmp.dir, 'trust.json'), issuer);
    env = { PQMCP_CONFORMANCE_KEYS: tmp.dir };
    direct = await runClientSuite(node, COMMAND, SCENARIOS, { ...env, PQMCP_CONFORMANCE_VIA: 'direct' });
    viaPqmcp = await runClientSuite(node, COMMAND, SCENARIOS, { ...env, PQMCP_CONFORMANCE_VIA: 'pqmcp' });
  }, 480_000);

  afterAll(() => tmp.remove());

  it('the direct client passes every chosen scenario', () => {
    console.log(`conformance verdicts, SDK client over Streamable HTTP:\n  ${verdictLines(direct.verdicts).join('\n  ')}`);
    expect(new Set(direct.verdicts.map((v) => v.scenario)), direct.output).toEqual(new Set(SCENARIOS));
    // initialize 1, tools_call 1, elicitation defaults 5 (general + one per type).
    expect(verdicts(direct).length, direct.output).toBeGreaterThanOrEqual(7);
    expect(verdicts(direct).filter((v) => v.status !== 'SUCCESS'), direct.output).toEqual([]);
  });

  it('through pqmcp the verdicts are exactly the same', () => {
    console.log(`through pqmcp:\n  ${verdictLines(viaPqmcp.verdicts).join('\n  ')}`);
    expect(verdictLines(verdicts(viaPqmcp)), viaPqmcp.output).toEqual(verdictLines(verdicts(direct)));
    expect(viaPqmcp.code).toBe(direct.code);
  });

  it('a broken pqmcp path changes the verdicts (the comparison can fail)', async () => {
    const broken = await runClientSuite(node, COMMAND, ['tools_call'], { ...env, PQMCP_CONFORMANCE_VIA: 'pqmcp', PQMCP_CONFORMANCE_BREAK: 'tools-call' });
    const call = verdicts(broken).find((v) => v.check === 'tool-add-numbers');
    expect(call?.status, broken.output).toBe('FAILURE');
    expect(verdictLines(verdicts(broken))).not.toEqual(verdictLines(verdicts(direct).filter((v) => v.scenario === 'tools_call')));
  }, 120_000);
});
