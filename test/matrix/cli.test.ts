/**
 * The SDK matrix through the CLI: for every pairing of SDK majors and protocol eras
 * (helpers/matrix.ts PAIRINGS), a real SDK client whose own StdioClientTransport (of its
 * major) launches `pqmcp connect`, and `pqmcp serve` in front of a stdio MCP server process
 * of the other major (fixtures/feature-server.ts), run every feature of the era
 * (helpers/matrix.ts FEATURES). Four processes per pairing, every hop but the WebSocket is
 * stdio: client -> bridge -> gateway -> child.
 *
 * - The gateway and the bridge relay JSON-RPC lines; neither knows an era. The 2026-07-28
 *   era passes through them unchanged: `server/discover`, per-request `_meta`,
 *   `input_required` round trips and `subscriptions/listen` are ordinary requests and
 *   notifications. The child serves it through the SDK's `serveStdio` entry, exactly as a
 *   stdio server with no pqmcp would.
 * - The verified agent reaches the child as its PQMCP_PEER_* environment (docs/cli.md): the
 *   1.x and 2.x children report the same peer through their `peer-env` tool.
 * - Progress: the bridge delivers every notification, in order, before the result (a tap
 *   on the client's stdio transport sees them all), but the SDK's stdio client of either
 *   major handles a notification a microtask after a response read in the same chunk, so
 *   the last ones before a result are often lost to `onprogress`. That is the SDK over any
 *   stdio server (docs/cli.md, "Limits and known gaps"); the test asserts exactly that.
 * - One gateway, one bridge and one session per pairing; the features run in order on it.
 */
import { symlinkSync } from 'node:fs';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StdioClientTransport as StdioClientTransport1 } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StdioClientTransport as StdioClientTransport2 } from '@modelcontextprotocol/client/stdio';
import { CLI_ARGS, CLI_COMMAND, ROOT, killAll, startGateway, tempDir, writeAgent, writeIssuer, writeTrust } from '../cli/helpers.js';
import type { CliProcess, Files } from '../cli/helpers.js';
import { waitFor } from '../helpers/mcp.js';
import { ERA_VERSION, FEATURES, PAIRINGS, driver1, driver2 } from '../helpers/matrix.js';
import type { Driver, Feature, Pairing } from '../helpers/matrix.js';

const SERVER_ID = 'agent://cli-matrix/gateway';
const CLIENT_ID = 'agent://cli-matrix/client';
const ISSUER_ID = 'issuer://cli-matrix';
const FIXTURE = `${ROOT}/test/matrix/fixtures/feature-server.ts`;

const tmp = tempDir('matrix');
const issuer = writeIssuer(tmp.dir, ISSUER_ID, 'issuer');
const serverFiles = writeAgent(tmp.dir, issuer, SERVER_ID, 'gateway');
const clientFiles: Files = writeAgent(tmp.dir, issuer, CLIENT_ID, 'client', { scopes: ['tools:call', 'resources:read'] });
const trustFile = writeTrust(`${tmp.dir}/trust.json`, issuer);

/**
 * The child, bundled once (esbuild) instead of through tsx in each session's process: tsx's
 * start-up was most of a child's, paid by every pairing and every probe session. The SDKs stay
 * external (found through node_modules linked beside it); split, so each kind still loads
 * only its own SDK.
 */
const CHILD = `${tmp.dir}/child/feature-server.mjs`;
beforeAll(async () => {
  symlinkSync(`${ROOT}/node_modules`, `${tmp.dir}/node_modules`, 'dir');
  await build({ entryPoints: { 'feature-server': FIXTURE }, outdir: `${tmp.dir}/child`, outExtension: { '.js': '.mjs' }, bundle: true, splitting: true, packages: 'external', platform: 'node', format: 'esm', target: 'node20', logLevel: 'silent' });
});

const open: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const close of open.splice(0).reverse()) await close().catch(() => {});
  killAll();
  tmp.remove();
});

interface Started {
  driver: Driver;
  gateway: CliProcess;
  bridgeStderr: () => string;
  /** Progress values as the client's stdio transport read them from the bridge, in order. */
  tapped: number[];
}

/** Records what the transport hands the SDK, ahead of the SDK's own handling. */
function tap(transport: { onmessage?: ((m: never, extra?: never) => void) | undefined }, tapped: number[]): void {
  const inner = transport.onmessage;
  transport.onmessage = (m, extra) => {
    const msg = m as { method?: string; params?: { progress?: number } };
    if (msg.method === 'notifications/progress' && typeof msg.params?.progress === 'number') tapped.push(msg.params.progress);
    inner?.(m, extra);
  };
}

async function start(pairing: Pairing): Promise<Started> {
  const { gateway, url } = await startGateway(['--identity', serverFiles.key, '--trust', trustFile], [process.execPath, CHILD, pairing.server]);
  open.push(() => gateway.stop());
  // The client's own stdio transport runs the bridge, as a desktop agent would.
  const bridge = { command: CLI_COMMAND, args: [...CLI_ARGS, 'connect', url, '--identity', clientFiles.key, '--trust', trustFile, '--expect', SERVER_ID], cwd: ROOT, stderr: 'pipe' as const };
  let stderr = '';
  const tapped: number[] = [];
  let driver: Driver;
  if (pairing.client === 1) {
    const transport = new StdioClientTransport1(bridge);
    transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    driver = await driver1(transport);
    tap(transport as never, tapped);
  } else {
    const transport = new StdioClientTransport2(bridge);
    transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    driver = await driver2(transport, pairing.negotiation);
    tap(transport as never, tapped);
  }
  open.push(() => driver.close());
  return { driver, gateway, bridgeStderr: () => stderr, tapped };
}

/** FEATURES as they run through the CLI: progress asserts what stdio can promise (see above). */
function cliFeature(feature: Feature, s: () => Started): Feature {
  if (feature.name !== 'progress notifications') return feature;
  return {
    ...feature,
    run: async (d) => {
      const tapped = s().tapped;
      tapped.length = 0;
      const seen: number[] = [];
      expect((await d.call('progress', { steps: 5 }, { onprogress: (p) => void seen.push(p.progress) })).text).toBe('5 steps');
      // Every notification reached the client's transport, in order, before the result...
      expect(tapped).toEqual([1, 2, 3, 4, 5]);
      // ...and the SDK's onprogress saw an in-order prefix of them (often not the last ones).
      expect(seen).toEqual([1, 2, 3, 4, 5].slice(0, seen.length));
    },
  };
}

describe.each(PAIRINGS)('$name, through pqmcp connect and pqmcp serve', (pairing) => {
  let s: Started;

  it(`connects in the ${pairing.era} era; both ends log the verified peer`, async () => {
    s = await start(pairing);
    expect(s.driver.era()).toBe(pairing.era);
    expect(s.driver.protocolVersion()).toBe(ERA_VERSION[pairing.era]);
    // The bridge says "connected" at the first answer it relays (docs/cli.md); on 2026-07-28
    // the session's first request comes after connect() (no initialize on it).
    await s.driver.listTools();
    const banner = new RegExp(`pqmcp connect: connected to ${SERVER_ID} \\(key [0-9a-f]{16}, issuer ${ISSUER_ID}\\)`);
    await waitFor(() => banner.test(s.bridgeStderr()), 10_000, 'the bridge banner').catch((e: Error) => {
      throw new Error(`${e.message}; bridge stderr:\n${s.bridgeStderr()}`);
    });
    const startedLine = `session [0-9a-f]{8} started: ${CLIENT_ID} \\(key ${clientFiles.fingerprint.slice(0, 16)}, issuer ${ISSUER_ID}`;
    const started = new RegExp(startedLine, 'g');
    await s.gateway.waitForStderr(new RegExp(startedLine));
    // A 2.x client negotiating over stdio (auto or a pin) sends its server/discover probe
    // through a disposable second process of the command, here a second bridge: the
    // gateway sees a one-request session before the real one (docs/cli.md).
    if (pairing.client === 2 && pairing.negotiation !== 'default') {
      await s.gateway.waitForStderr(/session [0-9a-f]{8} ended: \S+, 1 message in, 1 out/);
      expect(s.gateway.stderr.match(started)).toHaveLength(2);
      // One after the other, never both at once: the SDK reaps the probe's process before it
      // starts the real one, so the probe's session has ended before the real one starts.
      const log = s.gateway.stderr;
      const [probe, real] = [...log.matchAll(started)];
      const probeId = probe![0].match(/session ([0-9a-f]{8})/)![1];
      const probeEnded = log.indexOf(`session ${probeId} ended:`);
      expect(probeEnded).toBeGreaterThan(probe!.index!);
      expect(probeEnded).toBeLessThan(real!.index!);
    } else {
      expect(s.gateway.stderr.match(started)).toHaveLength(1);
    }
  });

  it('the verified agent reaches the child (PQMCP_PEER_*), the same on both majors', async () => {
    const env = (await s.driver.call('peer-env')).structured;
    expect(env).toMatchObject({ id: CLIENT_ID, fingerprint: clientFiles.fingerprint, issuer: ISSUER_ID, scopes: 'resources:read tools:call' });
    // The session the gateway logged is the one this child serves.
    expect(s.gateway.stderr).toContain(`session ${String(env?.['session']).slice(0, 8)} started: ${CLIENT_ID}`);
  });

  it.each(FEATURES.filter((f) => f.eras.includes(pairing.era)).map((f) => cliFeature(f, () => s)))('$name', async (feature) => {
    await feature.run(s.driver);
  });
});
