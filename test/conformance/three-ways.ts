/**
 * The server-scenario comparison shared by server-everything.test.ts and server-target.test.ts:
 * the MCP conformance suite's active server suite against one server three ways,
 *
 * 1. baseline: the server over its own Streamable HTTP transport;
 * 2. control: the adapter's HTTP front (front.ts) relaying each session to the server over stdio;
 * 3. pqmcp: the same front relaying each session through a PqmcpClientTransport to a real
 *    `pqmcp serve` gateway whose child (one per session) is the server over stdio.
 *
 * The verdicts (scenario, check, status, error message) must be exactly the same all three
 * ways. The control isolates the adapter: a difference between 1 and 2 is the relay's, a
 * difference between 2 and 3 is pqmcp's. ~31 sessions per path (the suite deletes none;
 * through pqmcp each is a gateway child process), so the gateway runs with the per-source
 * admission limits and the session cap lifted.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { PqmcpClientTransport } from '../../src/transport/index.js';
import type { MessageHook } from '../../src/transport/index.js';
import { loadIdentity, loadTrustStore } from '../../src/identity/files.js';
import type { AgentIdentity } from '../../src/identity/index.js';
import type { TrustStore } from '../../src/identity/trust.js';
import { EVERYTHING, ROOT, killAll, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from '../cli/helpers.js';
import type { CliProcess } from '../cli/helpers.js';
import { startFront } from './front.js';
import type { Front } from './front.js';
import { conformanceNode, runServerSuite, verdictLines } from './suite.js';
import type { SuiteRun } from './suite.js';

const GATEWAY_ID = 'agent://conformance/gateway';
const FRONT_ID = 'agent://conformance/front';
export const TARGET = join(ROOT, 'test/conformance/fixtures/target-server.mjs');

/** The active suite of 0.1.16 has 30 server scenarios; fewer means some did not run. */
export const MIN_SCENARIOS = 30;

export const found = conformanceNode();
const node = 'node' in found ? found.node : '';
if ('missing' in found) console.warn(`test/conformance skipped: ${found.missing}`);

let tmp: { dir: string; remove: () => void } | undefined;
let files: { gatewayKey: string; trustFile: string };
let identity: AgentIdentity;
let trust: TrustStore;

/** Identity files for the gateway and the front, in the CLI's formats (call in beforeAll). */
export async function prepareIdentities(): Promise<void> {
  tmp = tempDir('conformance');
  const issuer = writeIssuer(tmp.dir, 'issuer://conformance', 'issuer');
  const gatewayFiles = writeAgent(tmp.dir, issuer, GATEWAY_ID, 'gateway');
  const frontFiles = writeAgent(tmp.dir, issuer, FRONT_ID, 'front');
  files = { gatewayKey: gatewayFiles.key, trustFile: writeTrust(`${tmp.dir}/trust.json`, issuer) };
  identity = await loadIdentity(frontFiles.key);
  trust = await loadTrustStore(files.trustFile);
}

/** Everything started here, stopped (call in afterAll). */
export function cleanupAll(): void {
  killAll();
  tmp?.remove();
}

/** `pqmcp serve` in front of `command` (one child per session); resolves with its URL. */
async function gatewayFor(command: string[]): Promise<{ gateway: CliProcess; url: string }> {
  // Every suite session is a pqmcp session from 127.0.0.1: lift the per-source admission
  // limits and the session cap (the suite does not delete its sessions).
  return startGateway(['--identity', files.gatewayKey, '--trust', files.trustFile, '--max-sessions', '128', '--max-pending-per-source', '64', '--handshake-rate-per-source', '0', '--connection-rate-per-source', '0'], command);
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** server-everything in its own `streamableHttp` mode; resolves once it listens. */
export async function startEverythingHttp(): Promise<{ url: string; child: ChildProcess }> {
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

export function pqmcpBackend(gatewayUrl: string, hooks?: MessageHook[]): () => PqmcpClientTransport {
  return () => new PqmcpClientTransport(gatewayUrl, { identity, trust, expectedServerId: GATEWAY_ID, ...(hooks ? { hooks } : {}) });
}

export async function throughFront(front: Front, scenarios?: readonly string[]): Promise<SuiteRun> {
  try {
    return await runServerSuite(node, front.url, scenarios);
  } finally {
    await front.close();
  }
}

/** The three runs for one server: its own transport, the adapter over stdio, the adapter over pqmcp. */
export interface ThreeWays {
  baseline: SuiteRun;
  control: SuiteRun;
  viaPqmcp: SuiteRun;
  pqmcpFront: Front;
  gatewayUrl: string;
}

export async function threeWays(own: () => Promise<{ url: string; stop: () => Promise<unknown> | unknown }>, stdioCommand: string[], cleanups: Array<() => unknown>): Promise<ThreeWays> {
  const { gateway, url: gatewayUrl } = await gatewayFor(stdioCommand);
  cleanups.push(() => gateway.stop());
  const baselineServer = await own();
  cleanups.push(baselineServer.stop);
  const baseline = await runServerSuite(node, baselineServer.url);
  await baselineServer.stop();
  const control = await throughFront(await startFront(() => new StdioClientTransport({ command: stdioCommand[0]!, args: stdioCommand.slice(1), stderr: 'ignore' })));
  const pqmcpFront = await startFront(pqmcpBackend(gatewayUrl));
  const viaPqmcp = await throughFront(pqmcpFront);
  return { baseline, control, viaPqmcp, pqmcpFront, gatewayUrl };
}

export function scenarios(run: SuiteRun): Set<string> {
  return new Set(run.verdicts.map((v) => v.scenario));
}

export function expectSameVerdicts(w: ThreeWays): void {
  console.log(`through pqmcp: ${w.viaPqmcp.verdicts.length} verdicts, ${w.pqmcpFront.sessions()} pqmcp sessions; relay errors: ${w.pqmcpFront.errors.join('; ') || 'none'}`);
  expect(w.pqmcpFront.sessions()).toBeGreaterThanOrEqual(MIN_SCENARIOS);
  expect(verdictLines(w.control.verdicts), 'the adapter alone changed verdicts').toEqual(verdictLines(w.baseline.verdicts));
  expect(verdictLines(w.viaPqmcp.verdicts), 'pqmcp changed verdicts').toEqual(verdictLines(w.baseline.verdicts));
  expect(w.viaPqmcp.code).toBe(w.baseline.code);
}

