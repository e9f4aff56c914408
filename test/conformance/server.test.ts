/**
 * The MCP conformance suite's server scenarios (`@modelcontextprotocol/conformance`, the
 * active suite: every server scenario it has but the pending ones) against the MCP reference
 * server, `@modelcontextprotocol/server-everything`, three ways:
 *
 * 1. baseline: server-everything over its own transport (`streamableHttp` mode);
 * 2. control: the adapter's HTTP front (test/conformance/front.ts, a copy of that mode's HTTP
 *    handling) relaying each session to server-everything over stdio;
 * 3. pqmcp: the same front relaying each session through a PqmcpClientTransport to a real
 *    `pqmcp serve` gateway whose child is server-everything over stdio (one per session).
 *
 * The verdicts (scenario, check, status, error message) must be exactly the same all three
 * ways. The control isolates the adapter: a difference between 1 and 2 is the relay's, a
 * difference between 2 and 3 is pqmcp's. The last test breaks the pqmcp path on purpose (a
 * message hook that drops every `tools/call`) and checks that the verdicts change, so this
 * comparison is able to fail.
 *
 * server-everything is not the suite's own test server: it lacks the suite's test_* tools,
 * resources and prompts, so it fails those scenarios; they still count, with their error
 * messages, which must be the same through pqmcp. ~35 sessions per path; a few seconds each.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import type { MessageHook } from '../../src/transport/index.js';
import { loadIdentity, loadTrustStore } from '../../src/identity/files.js';
import type { AgentIdentity } from '../../src/identity/index.js';
import type { TrustStore } from '../../src/identity/trust.js';
import { EVERYTHING, killAll, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from '../cli/helpers.js';
import type { CliProcess } from '../cli/helpers.js';
import { startFront } from './front.js';
import type { Front } from './front.js';
import { conformanceNode, runServerSuite, verdictLines } from './suite.js';
import type { SuiteRun, Verdict } from './suite.js';

const GATEWAY_ID = 'agent://conformance/gateway';
const FRONT_ID = 'agent://conformance/front';

/** The active suite of 0.1.16 has 30 server scenarios; fewer means some did not run. */
const MIN_SCENARIOS = 30;

const found = conformanceNode();
const node = 'node' in found ? found.node : '';
if ('missing' in found) console.warn(`test/conformance skipped: ${found.missing}`);

const tmp = tempDir('conformance');
const cleanups: Array<() => Promise<unknown> | unknown> = [];
let gateway: CliProcess;
let gatewayUrl: string;
let identity: AgentIdentity;
let trust: TrustStore;

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** server-everything in its own `streamableHttp` mode; resolves once it listens. */
async function startEverythingHttp(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (/listening on port/.test(stderr)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`server-everything exited (${code}): ${stderr}`)));
  });
  return { url: `http://127.0.0.1:${port}/mcp`, child };
}

function pqmcpBackend(hooks?: MessageHook[]): () => PqmcpClientTransport {
  return () => new PqmcpClientTransport(gatewayUrl, { identity, trust, expectedServerId: GATEWAY_ID, ...(hooks ? { hooks } : {}) });
}

async function throughFront(backend: Parameters<typeof startFront>[0]): Promise<{ run: SuiteRun; front: Front }> {
  const front = await startFront(backend);
  try {
    return { run: await runServerSuite(node, front.url), front };
  } finally {
    await front.close();
  }
}

function scenarios(run: SuiteRun): Set<string> {
  return new Set(run.verdicts.map((v) => v.scenario));
}

describe.skipIf('missing' in found)('MCP conformance suite, server scenarios: server-everything through pqmcp', () => {
  let baseline: SuiteRun;
  let control: SuiteRun;
  let viaPqmcp: SuiteRun;
  let pqmcpFront: Front;

  beforeAll(async () => {
    const issuer = writeIssuer(tmp.dir, 'issuer://conformance', 'issuer');
    const gatewayFiles = writeAgent(tmp.dir, issuer, GATEWAY_ID, 'gateway');
    const frontFiles = writeAgent(tmp.dir, issuer, FRONT_ID, 'front');
    const trustFile = writeTrust(`${tmp.dir}/trust.json`, issuer);
    identity = await loadIdentity(frontFiles.key);
    trust = await loadTrustStore(trustFile);
    // Every suite session is a pqmcp session from 127.0.0.1: lift the per-source admission
    // limits and the session cap (the suite does not delete its sessions).
    ({ gateway, url: gatewayUrl } = await startGateway(
      ['--identity', gatewayFiles.key, '--trust', trustFile, '--max-sessions', '128', '--max-pending-per-source', '64', '--handshake-rate-per-source', '0'],
      [process.execPath, EVERYTHING, 'stdio'],
    ));
    cleanups.push(() => gateway.stop());

    const own = await startEverythingHttp();
    cleanups.push(() => own.child.kill('SIGKILL'));
    baseline = await runServerSuite(node, own.url);
    own.child.kill('SIGKILL');

    ({ run: control } = await throughFront(() => new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'], stderr: 'ignore' })));
    ({ run: viaPqmcp, front: pqmcpFront } = await throughFront(pqmcpBackend()));
  }, 300_000);

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    killAll();
    tmp.remove();
  });

  it('the baseline ran the whole active suite and has passes and failures', () => {
    console.log(`conformance verdicts, server-everything over its own Streamable HTTP:\n  ${verdictLines(baseline.verdicts).join('\n  ')}`);
    expect(scenarios(baseline).size, baseline.output).toBeGreaterThanOrEqual(MIN_SCENARIOS);
    const statuses = new Set(baseline.verdicts.map((v) => v.status));
    expect(statuses).toContain('SUCCESS');
    expect(statuses).toContain('FAILURE');
    // The core of the protocol passes on the reference server (else the comparison says little).
    for (const s of ['server-initialize', 'ping', 'tools-list', 'tools-call-simple-text', 'resources-list', 'resources-subscribe', 'prompts-list', 'logging-set-level']) {
      expect(baseline.verdicts.filter((v) => v.scenario === s).map((v) => v.status), s).toEqual(['SUCCESS']);
    }
  });

  it('the adapter alone (stdio behind the HTTP front) gives exactly the baseline verdicts', () => {
    expect(verdictLines(control.verdicts)).toEqual(verdictLines(baseline.verdicts));
  });

  it('through pqmcp (front -> PqmcpClientTransport -> pqmcp serve -> stdio) the verdicts are exactly the baseline', () => {
    console.log(`through pqmcp: ${viaPqmcp.verdicts.length} verdicts, ${pqmcpFront.sessions()} pqmcp sessions; relay errors: ${pqmcpFront.errors.length}`);
    expect(pqmcpFront.sessions()).toBeGreaterThanOrEqual(MIN_SCENARIOS);
    expect(verdictLines(viaPqmcp.verdicts)).toEqual(verdictLines(baseline.verdicts));
    expect(viaPqmcp.code).toBe(baseline.code);
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
    const front = await startFront(pqmcpBackend([noToolCalls]));
    let broken: SuiteRun;
    try {
      broken = await runServerSuite(node, front.url, picked);
    } finally {
      await front.close();
    }
    const expected = baseline.verdicts.filter((v) => picked.includes(v.scenario));
    const same = (v: Verdict): boolean => expected.some((b) => b.scenario === v.scenario && b.check === v.check && b.status === v.status && b.error === v.error);
    expect(scenarios(broken)).toEqual(new Set(picked));
    const changed = broken.verdicts.filter((v) => !same(v)).map((v) => v.scenario);
    console.log(`broken path, changed verdicts: ${verdictLines(broken.verdicts.filter((v) => !same(v))).join('; ')}`);
    expect(changed).toContain('tools-call-simple-text');
    expect(changed).not.toContain('tools-list');
    expect(broken.verdicts.find((v) => v.scenario === 'tools-call-simple-text')?.status).toBe('FAILURE');
  }, 120_000);
});
