/**
 * The benchmark suite: what pqmcp costs against plain WebSockets and TLS 1.3, measured side
 * by side in one run on one machine, reported as ratios. See docs/benchmarks.md.
 *
 *   npm run bench                 full run (a few minutes): benchmarks/results/<runtime>.json
 *                                 and .md, the tables in docs/benchmarks.md, the SVG charts
 *   npm run bench:ci              short run; compares ratios with benchmarks/baseline.json,
 *                                 prints PASS/FAIL per gate, exits 1 on a regression
 *   npm run bench:ci -- --update-baseline --repeat 3   record this runtime's CI baseline
 *                                 (median of 3 runs; with --suites, only those suites' gates)
 *   npm run bench -- --smoke --out <dir>    tiny counts, everything written to <dir>
 *
 * Options: --suites handshake,throughput,mcp,memory,coldstart,browser,flood   --out <dir>   --no-docs
 *
 * Every compared variant runs in a measuring process of its own (benchmarks/client.ts)
 * with a server process of its own (benchmarks/server.ts); this process only orchestrates
 * (interleaving, statistics, reports). Traffic stays on 127.0.0.1. The runtime is the one
 * running this script (run it under Node 24 for the native backend).
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCertificates } from './lib/certs.js';
import type { Certificates } from './lib/certs.js';
import { GATES, NOISY_TOLERANCE, REMEASURES, TOLERANCE, better, formatOutcomes, judge, updatedBaseline } from './lib/ci.js';
import type { BaselineFile, Gate } from './lib/ci.js';
import type { Mode, SuiteContext } from './lib/context.js';
import { bufferutilInstalled, runtimeInfo, runtimeKey } from './lib/env.js';
import type { RuntimeInfo } from './lib/env.js';
import { makePqmcpFixture } from './lib/fixtures.js';
import { spawnWorker } from './lib/proc.js';
import { bundleWorkers } from './lib/bundle.js';
import { markdown } from './lib/report.js';
import { checkTargets, computeRatios } from './lib/results.js';
import type { Results } from './lib/results.js';
import { median } from './lib/stats.js';
import { handshakeChart, throughputChart } from './lib/svg.js';
import { groupOffered } from './lib/tls.js';
import type { MemoryRequest } from './client.js';
import type { ChannelVariant } from './lib/channels.js';
import { within } from './lib/context.js';
import { runHandshake } from './suites/handshake.js';
import type { HandshakeResult, HandshakeVariant } from './suites/handshake.js';
import { runMcp } from './suites/mcp.js';
import type { McpResult, McpVariant } from './suites/mcp.js';
import { memoryNodeFlags } from './suites/memory.js';
import { coldStartCli, measureColdStart } from './lib/coldstart.js';
import type { ColdStartResult } from './lib/coldstart.js';
import type { MemoryResult, MemoryVariant } from './suites/memory.js';
import { runThroughput } from './suites/throughput.js';
import { browserAvailable, runBrowser } from './suites/browser.js';
import type { BrowserBenchResult } from './suites/browser.js';
import { floodFailures, floodMarkdown, runFlood } from './suites/flood.js';
import type { FloodResult } from './suites/flood.js';

type SuiteName = 'handshake' | 'throughput' | 'mcp' | 'memory' | 'coldstart' | 'browser' | 'flood';
const SUITES: readonly SuiteName[] = ['handshake', 'throughput', 'mcp', 'memory', 'coldstart', 'browser', 'flood'];

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(HERE, '..');

function parseArgs(argv: string[]) {
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const mode: Mode = argv.includes('--ci') ? 'ci' : argv.includes('--smoke') ? 'smoke' : 'full';
  const suites = (value('--suites')?.split(',') ?? [...SUITES]) as SuiteName[];
  for (const s of suites) if (!SUITES.includes(s)) throw new Error(`unknown suite ${s}`);
  const repeat = Number(value('--repeat') ?? 1);
  if (!(Number.isInteger(repeat) && repeat >= 1)) throw new Error('--repeat takes a positive integer');
  return { mode, suites, out: value('--out'), noDocs: argv.includes('--no-docs'), updateBaseline: argv.includes('--update-baseline'), repeat };
}

const args = parseArgs(process.argv.slice(2));
const mode = args.mode;
const JOB_TIMEOUT_MS = { full: 20 * 60_000, ci: 6 * 60_000, smoke: 3 * 60_000 }[mode];
const NO_BUFFERUTIL = { WS_NO_BUFFER_UTIL: '1' };
/** Interleaved rounds of the four cold-start commands (each a whole process, ~0.1-0.3 s). */
const COLD_START_RUNS = { full: 21, ci: 15, smoke: 2 };

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

/**
 * One memory part in a fresh measuring process (which starts a fresh server process with the
 * same Node flags: the part's, never the variant's).
 */
async function runMemoryPart(request: MemoryRequest): Promise<MemoryResult> {
  const worker = await spawnWorker('client.ts', { env: NO_BUFFERUTIL, nodeFlags: memoryNodeFlags(request.options.part), requestTimeoutMs: JOB_TIMEOUT_MS });
  try {
    return await worker.request<MemoryResult>('memory', request, JOB_TIMEOUT_MS);
  } finally {
    await worker.kill();
  }
}

/** Run `fn` under the suite deadline, and log how long it took. */
async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await within(fn(), JOB_TIMEOUT_MS, what);
  } finally {
    log(`   ${what} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}

interface Collected {
  handshake?: HandshakeResult | undefined;
  throughput: Results['throughput'];
  mcp?: McpResult | undefined;
  memory: Record<string, MemoryResult>;
  coldstart?: ColdStartResult | undefined;
  browser?: BrowserBenchResult | undefined;
  flood?: FloodResult | undefined;
  skipped: Record<string, string>;
  errors: string[];
}

async function measure(ctx: SuiteContext, suites: SuiteName[]): Promise<Collected> {
  const out: Collected = { throughput: {}, memory: {}, skipped: {}, errors: [] };
  const attempt = async (what: string, fn: () => Promise<void>) => {
    log(`== ${what}`);
    try {
      await fn();
    } catch (err) {
      const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
      out.errors.push(message);
      log(`   FAILED ${message.split('\n')[0]}`);
    }
  };
  if (suites.includes('handshake')) {
    await attempt('handshake', async () => {
      // CI gates only pqmcp-native against wss (benchmarks/lib/ci.ts), so it runs no other
      // variant (time: four more process pairs measured in every round).
      const variants: HandshakeVariant[] | undefined = mode === 'ci' ? ['wss', 'pqmcp-native'] : undefined;
      out.handshake = await timed('handshake', () => runHandshake(ctx, { env: NO_BUFFERUTIL, ...(variants ? { variants } : {}) }));
    });
  }
  if (suites.includes('throughput')) {
    // CI gates only pqmcp/ws: no wss (its work per measurement is set by minBytes in CI, not
    // by the slowest variant's rate: suites/throughput.ts, PLANS).
    const variants: ChannelVariant[] = mode === 'full' ? ['pqmcp', 'pqmcp-chacha', 'ws', 'wss'] : mode === 'ci' ? ['pqmcp', 'ws'] : ['pqmcp', 'ws', 'wss'];
    await attempt('throughput, without bufferutil', async () => {
      out.throughput['no-bufferutil'] = await timed('throughput', () => runThroughput(ctx, { variants, env: NO_BUFFERUTIL }));
    });
    // Again with ws's native masking (bufferutil), in full runs. A smoke run skips it: six more
    // process starts to run no code of this repository that the pass above has not.
    if (mode === 'smoke') {
      out.skipped.bufferutil = 'not in a smoke run (npm run bench measures it)';
    } else if (mode === 'full') {
      if (bufferutilInstalled()) {
        await attempt('throughput, with bufferutil', async () => {
          out.throughput.bufferutil = await timed('throughput', () => runThroughput(ctx, { variants, env: { WS_NO_BUFFER_UTIL: undefined } }));
        });
      } else {
        out.skipped.bufferutil = 'bufferutil cannot be loaded here (it is a devDependency: run npm install)';
        log(`== throughput, with bufferutil: not installed`);
      }
    }
  }
  if (suites.includes('mcp')) {
    await attempt('mcp', async () => {
      // CI gates only pqmcp/ws, so it runs no policy, audit or in-memory variant (time). The Node 20 V8
      // fault that once took the shared server down with policy variants is fixed in
      // src/policy/cedar.ts (test/policy/v8-fault.test.ts).
      const variants: McpVariant[] | undefined = mode === 'ci' ? ['pqmcp', 'ws'] : undefined;
      out.mcp = await timed('mcp', () => runMcp(ctx, { env: NO_BUFFERUTIL, ...(variants ? { variants } : {}) }));
    });
  }
  if (suites.includes('coldstart')) {
    // The built CLI: .ci/run builds before bench:ci. Without a build the suite is an error
    // under CI=true (CI never passes by skipping it) and skipped otherwise.
    const cli = coldStartCli();
    if (cli) {
      await attempt('coldstart', async () => {
        out.coldstart = await timed('coldstart', async () => measureColdStart(cli, COLD_START_RUNS[mode]));
      });
    } else if (process.env['CI'] === 'true') {
      out.errors.push('coldstart: dist/cli.js is missing (npm run build first)');
    } else {
      out.skipped.coldstart = 'dist/cli.js is missing: npm run build first';
      log('== coldstart: no build (dist/cli.js), skipped');
    }
  }
  if (suites.includes('browser') && mode !== 'ci') {
    if (browserAvailable()) {
      await attempt('browser', async () => {
        out.browser = await timed('browser', () => runBrowser(ctx));
      });
    } else {
      out.skipped.browser = 'no Chromium here (apt-get install chromium, or set PQMCP_CHROMIUM)';
      log('== browser: no Chromium, skipped');
    }
  }
  if (suites.includes('flood')) {
    await attempt('flood', async () => {
      const flood = await timed('flood', () => runFlood(ctx));
      out.flood = flood;
      log(floodMarkdown(flood));
      // Timings are reported (ratios, one run); what fails the run is an honest handshake lost.
      out.errors.push(...floodFailures(flood));
    });
  }
  if (suites.includes('memory')) {
    // CI gates only RSS per idle session against wss (issue 12's target), so it runs no ws
    // variant and no in-flight part (time). A smoke run measures the in-flight part of pqmcp
    // only (the part's code is the same for every variant; its channels are throughput's).
    const variants: MemoryVariant[] = mode === 'ci' ? ['pqmcp', 'wss'] : ['pqmcp', 'ws', 'wss'];
    const parts = (variant: MemoryVariant) => (mode === 'ci' || (mode === 'smoke' && variant !== 'pqmcp') ? (['sessions'] as const) : (['sessions', 'inflight'] as const));
    const runs: Array<() => Promise<void>> = [];
    for (const variant of variants) {
      if (variant === 'wss' && !ctx.certs) continue;
      for (const part of parts(variant)) {
        runs.push(() =>
          attempt(`memory, ${variant}, ${part}`, async () => {
            const result = await timed(`memory (${variant}, ${part})`, () => runMemoryPart({ context: ctx, options: { variant, part } }));
            out.memory[variant] = { ...out.memory[variant], ...result };
          }),
        );
      }
    }
    // One part at a time; a smoke run (figures meaning nothing) runs them all at once.
    if (mode === 'smoke') await Promise.all(runs.map((run) => run()));
    else for (const run of runs) await run();
  }
  return out;
}

/** `runtime`: read when the run starts (its load average is the one the report calls "at start"). */
function assemble(c: Collected, started: number, certs: Certificates | undefined, runtime: RuntimeInfo): Results {
  const ratios = computeRatios(c);
  const key = runtimeKey();
  return {
    schema: 1,
    mode,
    runtimeKey: key,
    startedAt: new Date(started).toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    runtime,
    tls: { certificates: certs ? `ECDSA P-256, made with ${certs.tool}` : 'none', groups: (['X25519MLKEM768', 'X25519'] as const).filter(groupOffered) },
    handshake: c.handshake,
    throughput: c.throughput,
    skipped: c.skipped,
    mcp: c.mcp,
    memory: c.memory,
    coldstart: c.coldstart,
    browser: c.browser,
    ratios,
    targets: checkTargets(ratios, key, c.throughput),
    errors: c.errors,
  };
}

const MARK = (key: string, edge: 'start' | 'end') => `<!-- bench:${key}:${edge} -->`;

/** Replace this runtime's section of docs/benchmarks.md (between its markers) with `md`. */
function updateDocs(key: string, md: string): void {
  const path = join(ROOT, 'docs', 'benchmarks.md');
  if (!existsSync(path)) return log(`   (no ${path}: tables not inserted)`);
  const text = readFileSync(path, 'utf8');
  const start = text.indexOf(MARK(key, 'start'));
  const end = text.indexOf(MARK(key, 'end'));
  if (start < 0 || end < start) return log(`   (docs/benchmarks.md has no ${MARK(key, 'start')} marker: tables not inserted)`);
  writeFileSync(path, text.slice(0, start) + `${MARK(key, 'start')}\n\n${md}\n` + text.slice(end));
  log(`   docs/benchmarks.md: ${key} tables updated`);
}

function writeCharts(dir: string, results: Results[]): void {
  writeFileSync(join(dir, 'benchmarks-throughput.svg'), throughputChart(results));
  writeFileSync(join(dir, 'benchmarks-handshake.svg'), handshakeChart(results));
}

function loadFullResults(dir: string): Results[] {
  return readdirSync(dir)
    .filter((f) => /^node\d+\.json$/.test(f))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Results)
    .filter((r) => r.mode === 'full');
}

async function main(): Promise<number> {
  const started = Date.now();
  const runtime = runtimeInfo();
  const key = runtimeKey();
  log(`pqmcp benchmarks, ${mode} mode, Node ${process.version} (${key}), OpenSSL ${process.versions.openssl}`);
  let certs: Certificates | undefined;
  try {
    certs = makeCertificates();
  } catch (err) {
    log(`   wss variants unavailable: ${(err as Error).message}`);
  }
  const ctx: SuiteContext = { mode, fixture: makePqmcpFixture(), certs };
  // Every process the suites start runs from a bundle of this run's sources (lib/bundle.ts).
  const t0 = performance.now();
  const bundle = await bundleWorkers();
  log(`   benchmark processes bundled in ${((performance.now() - t0) / 1000).toFixed(1)} s (${bundle})`);
  const collected = await measure(ctx, args.suites);
  let results = assemble(collected, started, certs, runtime);
  if (collected.flood && mode === 'full' && !args.noDocs && !args.out) updateDocs(`flood-${key}`, floodMarkdown(collected.flood));
  // The flood suite alone: its table is all there is (the other results files stay as they are).
  if (args.suites.every((s) => s === 'flood') && mode !== 'ci') return collected.errors.length ? 1 : 0;
  if (mode === 'ci' && args.repeat > 1) {
    // Baselines are best recorded as the median of a few runs.
    const runs = [results];
    for (let i = 1; i < args.repeat; i++) {
      log(`== repetition ${i + 1} of ${args.repeat}`);
      runs.push(assemble(await measure(ctx, args.suites), started, certs, runtime));
    }
    const keys = new Set(runs.flatMap((r) => Object.keys(r.ratios)));
    const ratios = Object.fromEntries([...keys].map((k) => [k, median(runs.flatMap((r) => (r.ratios[k] === undefined ? [] : [r.ratios[k]!])))]));
    results = { ...results, ratios, errors: runs.flatMap((r) => r.errors) };
  }

  if (mode === 'ci') {
    const baselinePath = join(HERE, 'baseline.json');
    const baseline: BaselineFile = existsSync(baselinePath) ? (JSON.parse(readFileSync(baselinePath, 'utf8')) as BaselineFile) : { about: '', runtimes: {} };
    const base = baseline.runtimes[key]?.ratios ?? {};
    const gates = GATES.filter((g) => args.suites.includes(g.suite));
    let outcomes = gates.map((g) => judge(g, results.ratios[g.key], base[g.key]));
    for (let attempt = 1; attempt <= REMEASURES && !args.updateBaseline; attempt++) {
      const failing = outcomes.filter((o) => o.status === 'fail' || o.status === 'missing');
      if (failing.length === 0) break;
      const again = [...new Set(failing.map((o) => o.gate.suite))];
      log(`== re-measuring ${again.join(', ')} (${attempt} of at most ${REMEASURES}; ${failing.length} gate(s) outside tolerance)`);
      const second = assemble(await measure(ctx, again), started, certs, runtime);
      const merged = { ...results.ratios };
      for (const g of gates) {
        const v = better(g, results.ratios[g.key], second.ratios[g.key]);
        if (v !== undefined) merged[g.key] = v;
      }
      results = { ...results, ratios: merged, errors: [...results.errors, ...second.errors.map((e) => `retry: ${e}`)] };
      outcomes = gates.map((g: Gate) => judge(g, results.ratios[g.key], base[g.key]));
    }
    const dir = args.out ?? join(HERE, 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `ci-${key}.tmp.json`), JSON.stringify(results, null, 1) + '\n');
    log('');
    log(formatOutcomes(outcomes));
    if (args.updateBaseline) {
      baseline.about ||= 'CI baselines: ratios from `npm run bench:ci -- --update-baseline --repeat 3` (median of 3 runs), one entry per runtime. Gates and tolerances: benchmarks/lib/ci.ts; docs/benchmarks.md, "CI".';
      baseline.runtimes[key] = { node: process.version, recordedAt: new Date().toISOString(), ratios: updatedBaseline(base, gates, results.ratios) };
      writeFileSync(baselinePath, JSON.stringify(baseline, null, 2) + '\n');
      log(`baseline for ${key} written to benchmarks/baseline.json`);
      return results.errors.length ? 1 : 0;
    }
    const failed = outcomes.filter((o) => o.status === 'fail' || o.status === 'missing');
    if (results.errors.length) for (const e of results.errors) log(`FAIL suite error: ${e.split('\n')[0]}`);
    log(`bench:ci ${key}: ${failed.length || results.errors.length ? 'FAIL' : 'PASS'} (${outcomes.filter((o) => o.status === 'pass').length} pass, ${failed.length} fail, ${outcomes.filter((o) => o.status === 'no-baseline').length} without baseline; tolerance ${TOLERANCE * 100}% as a factor, ${NOISY_TOLERANCE * 100}% for handshake wall time and throughput)`);
    return failed.length || results.errors.length ? 1 : 0;
  }

  const md = markdown(results);
  if (mode === 'smoke') {
    const dir = args.out ?? mkdtempSync(join(tmpdir(), 'pqmcp-bench-smoke-'));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'results.json'), JSON.stringify(results, null, 1) + '\n');
    writeFileSync(join(dir, 'results.md'), md);
    writeCharts(dir, [results]);
    log(`smoke results in ${dir}`);
    return results.errors.length ? 1 : 0;
  }
  const dir = args.out ?? join(HERE, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${key}.json`), JSON.stringify(results, null, 1) + '\n');
  writeFileSync(join(dir, `${key}.md`), md);
  log(`\n${md}`);
  log(`results: ${join(dir, `${key}.json`)} and .md`);
  if (!args.noDocs && !args.out) {
    updateDocs(key, md);
    writeCharts(join(ROOT, 'docs'), loadFullResults(dir));
    log('   docs/benchmarks-throughput.svg and docs/benchmarks-handshake.svg written');
  }
  return results.errors.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
