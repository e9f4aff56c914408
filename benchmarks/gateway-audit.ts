/**
 * What auditing and metrics cost the gateway as deployed (issue 15; printed, not asserted):
 * a real `pqmcp serve` in front of a stdio MCP server (lib/stdio-echo.ts, the suite's echo
 * tool; one child process per session, the gateway's default), a real SDK Client over pqmcp
 * (native backend, WebSockets on 127.0.0.1) in this process. Variants, each its own gateway
 * and session, in interleaved rounds (order rotated every round):
 *
 *   off      pqmcp serve
 *   audit    pqmcp serve --audit DIR
 *   metrics  pqmcp serve --metrics 127.0.0.1:0
 *   both     pqmcp serve --audit DIR --metrics 127.0.0.1:0   (what issue 15's target is about)
 *
 * Each round starts a fresh gateway per variant (so no one process's luck, its core or its
 * child, falls on one variant) and measures every cell with it: 100 B and 10 KiB payloads,
 * sequential and 32 in flight, each for a fixed time. Prints per cell each variant's calls
 * per second (median over rounds) and its ratio to `off` (>= 0.9 is the 10 % target), the
 * median of the per-round ratios (`paired`: off and the variant measured next to each
 * other), and the gateway process's CPU per call (from /proc, Linux; clock ticks, so at
 * least ~1 s per measurement) with its ratio off/variant.
 * The MCP server's own work (its SDK, stdio) is part of every call here, as in a deployment;
 * `npm run bench:audit` measures the same features on the cheapest call there is (client and
 * server in one process, an in-process echo tool), where they weigh most.
 *
 *   npm run bench:gateway-audit [-- --rounds 7 --ms 1000 --only off,both --payloads 100
 *                                  --modes seq --built]
 *   --built: run dist/cli.js (npm run build first) instead of src/ through tsx.
 *   --prof-dir DIR: write each gateway's CPU profile under DIR/<variant>/.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { selectBackend } from '../src/crypto/select.js';
import { encodeCredentialFile, encodePrivateKeyFile } from '../src/identity/formats.js';
import { PqmcpClientTransport } from '../src/transport/client.js';
import { SERVER_AGENT_ID, identityOf, makePqmcpFixture, trustOf } from './lib/fixtures.js';
import { median, percentile, rotate } from './lib/stats.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : undefined);
const rounds = Number(opt('rounds')) || 7;
const ms = Number(opt('ms')) || 1000;
const ALL = ['off', 'audit', 'metrics', 'both'] as const;
type Variant = (typeof ALL)[number];
const variants = (opt('only')?.split(',') as Variant[] | undefined) ?? ['off', 'both'];
if (variants[0] !== 'off' || variants.some((v) => !ALL.includes(v))) throw new Error(`--only: off first, then any of ${ALL.join(', ')}`);
const payloads = (opt('payloads') ?? '100,10240').split(',').map(Number);
const modes = (opt('modes') ?? 'seq,par32').split(',') as Array<'seq' | 'par32'>;
const built = args.includes('--built');
const profDir = opt('prof-dir');

const tsx = import.meta.resolve('tsx');
const cli = built ? [join(ROOT, 'dist/cli.js')] : ['--import', tsx, join(ROOT, 'src/cli/main.ts')];
const echoServer = [process.execPath, '--import', tsx, join(ROOT, 'benchmarks/lib/stdio-echo.ts')];

/** CPU time of a process so far, ms (utime + stime from /proc; undefined elsewhere). */
function cpuMs(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

interface Gateway {
  child: ChildProcess;
  client: Client;
  auditDir?: string;
}

async function startGateway(variant: Variant, dir: string, files: { key: string; trust: string }): Promise<Gateway> {
  const auditDir = variant === 'audit' || variant === 'both' ? mkdtempSync(join(dir, `audit-${variant}-`)) : undefined;
  const extra = [...(auditDir ? ['--audit', auditDir] : []), ...(variant === 'metrics' || variant === 'both' ? ['--metrics', '127.0.0.1:0'] : [])];
  const child = spawn(process.execPath, [...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profDir, variant)}`] : []), ...cli, 'serve', '--listen', '127.0.0.1:0', '--identity', files.key, '--trust', files.trust, ...extra, '--', ...echoServer], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const url = await new Promise<string>((done, fail) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
      const m = /listening on (ws:\/\/\S+) /.exec(stderr);
      if (m) done(m[1]!);
    });
    child.once('exit', (code) => fail(new Error(`pqmcp serve (${variant}) exited ${code}:\n${stderr}`)));
  });
  const fixtureBackend = selectBackend('native');
  const client = new Client({ name: 'pqmcp-bench', version: '1.0.0' });
  const transport = new PqmcpClientTransport(url, { identity: identityOf(fixture, 'client', fixtureBackend), trust: trustOf(fixture), backend: fixtureBackend, expectedServerId: SERVER_AGENT_ID });
  await client.connect(transport as Transport);
  return { child, client, ...(auditDir ? { auditDir } : {}) };
}

async function measure(client: Client, text: string, inFlight: number, forMs: number): Promise<{ calls: number; seconds: number; p99Us: number }> {
  const latencies: number[] = [];
  const t0 = performance.now();
  const deadline = t0 + forMs;
  let calls = 0;
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t = performance.now();
      const result = await client.callTool({ name: 'echo', arguments: { text } });
      latencies.push((performance.now() - t) * 1000);
      if ((result.content as Array<{ text?: string }>)[0]?.text?.length !== text.length) throw new Error('echo returned something else');
      calls++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, loop));
  return { calls, seconds: (performance.now() - t0) / 1000, p99Us: percentile(latencies, 99) };
}

const fixture = makePqmcpFixture();
const dir = mkdtempSync(join(tmpdir(), 'pqmcp-bench-gateway-audit-'));
const files = { key: join(dir, 'server.key.json'), trust: join(dir, 'trust.json') };
writeFileSync(files.key, JSON.stringify(encodePrivateKeyFile({ kind: 'agent', id: SERVER_AGENT_ID, seed: fixture.server.seed })), { mode: 0o600 });
writeFileSync(join(dir, 'server.cred.json'), JSON.stringify(encodeCredentialFile(fixture.server.credential)));
writeFileSync(files.trust, JSON.stringify(trustOf(fixture)));

/** One gateway's life: started, warmed up, every cell measured, stopped (its audit trail checked). */
async function gatewayRound(variant: Variant, record: (cell: string, m: Measured) => void): Promise<void> {
  const g = await startGateway(variant, dir, files);
  try {
    for (const p of payloads) {
      const text = 'x'.repeat(p);
      await measure(g.client, text, 32, 200); // warm-up
      for (const mode of modes) {
        const before = cpuMs(g.child.pid!);
        const m = await measure(g.client, text, mode === 'seq' ? 1 : 32, ms);
        const after = cpuMs(g.child.pid!);
        record(`${p}/${mode}`, { rate: m.calls / m.seconds, p99Us: m.p99Us, cpuUs: before !== undefined && after !== undefined ? ((after - before) * 1000) / m.calls : NaN });
      }
    }
    // The audited gateways really wrote their trail.
    if (g.auditDir && readdirSync(g.auditDir).reduce((n, f) => n + statSync(join(g.auditDir!, f)).size, 0) === 0) throw new Error(`${variant}: no audit file was written`);
  } finally {
    await g.client.close().catch(() => {});
    g.child.kill('SIGTERM');
    await new Promise((r) => g.child.once('exit', r));
  }
}

interface Measured {
  rate: number;
  p99Us: number;
  cpuUs: number;
}

try {
  console.log(`gateway-audit: Node ${process.version}, ${built ? 'dist/cli.js' : 'src/ through tsx'}, ${rounds} rounds (a fresh gateway per variant and round) of ${ms} ms per cell, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const results = new Map<string, Map<Variant, Measured[]>>();
  for (let r = 0; r < rounds; r++) {
    for (const v of rotate(variants, r)) {
      await gatewayRound(v, (cell, m) => {
        if (!results.has(cell)) results.set(cell, new Map(variants.map((x) => [x, []])));
        results.get(cell)!.get(v)!.push(m);
      });
    }
  }
  for (const [cell, byVariant] of results) {
    const [p, mode] = cell.split('/');
    const off = byVariant.get('off')!;
    const offRate = median(off.map((m) => m.rate));
    const offCpu = median(off.map((m) => m.cpuUs));
    console.log(`\n${p} B, ${mode === 'seq' ? 'sequential' : '32 in flight'}`);
    console.log('variant   calls/s (min-max)          ratio  paired  p99 µs   gateway CPU µs/call  ratio');
    for (const v of variants) {
      const ms_ = byVariant.get(v)!;
      const rates = ms_.map((m) => m.rate);
      const paired = median(rates.map((x, i) => x / off[i]!.rate));
      const c = median(ms_.map((m) => m.cpuUs));
      console.log(
        `${v.padEnd(9)} ${median(rates).toFixed(0).padStart(6)} (${Math.min(...rates).toFixed(0)}-${Math.max(...rates).toFixed(0)})`.padEnd(36) +
          ` ${(median(rates) / offRate).toFixed(3)}  ${paired.toFixed(3)}  ${median(ms_.map((m) => m.p99Us)).toFixed(0).padStart(6)}   ${c.toFixed(1).padStart(8)}             ${(offCpu / c).toFixed(3)}`,
      );
    }
  }
  console.log(`\nload average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
