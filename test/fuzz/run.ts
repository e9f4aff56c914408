/**
 * Fuzz the decoders and the handshake state machine: `npm run fuzz -- [options]`.
 *
 *   --target <name|all>       which target (targets.ts); default all
 *   --time <seconds>          budget per target; default 60
 *   --runs <n>                stop each target after n executions
 *   --engine auto|jazzer|builtin
 *                             auto (default): Jazzer.js when its native addon loads here,
 *                             else the built-in engine (engine.ts)
 *   --seed <n>                built-in engine: mutation seed (reproducible runs)
 *   --ci                      bounded, read-only run: the corpus is not written, findings go
 *                             to a temporary directory, a JSON summary is printed last
 *   --make-seeds              (re)write the seed corpus from real protocol bytes
 *   --repro <file>            run one input against --target and show what it does
 *
 * Corpus: test/fuzz/corpus/<target>/*.bin (seeds, plus what long runs add: commit the ones
 * worth keeping). Findings: test/fuzz/findings/ (or the --ci temporary directory).
 *
 * Jazzer.js 4 ships a prebuilt addon linked against glibc 2.38 and libstdc++ 3.4.32; where
 * those are older (e.g. Debian 12) it cannot load, and `auto` says why and falls back.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { register } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const corpusDir = (target: string) => path.join(here, 'corpus', target);

function parseArgs(argv: string[]): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[a.slice(2)] = true;
    else {
      out[a.slice(2)] = next;
      i++;
    }
  }
  return out;
}

/** Why Jazzer.js cannot run here, or undefined when it can. */
function jazzerUnavailable(): string | undefined {
  const probe = spawnSync(process.execPath, ['-e', "require('@jazzer.js/fuzzer')"], { cwd: root, encoding: 'utf8' });
  if (probe.status === 0) return undefined;
  const line = (probe.stderr ?? '').split('\n').find((l) => /Error|not found/.test(l)) ?? `exit ${probe.status}`;
  return line.trim();
}

function runJazzer(targets: string[], seconds: number, runs: string | undefined): number {
  const cli = path.join(root, 'node_modules', '@jazzer.js', 'core', 'dist', 'cli.js');
  const findings = path.join(here, 'findings');
  mkdirSync(findings, { recursive: true });
  let failed = 0;
  for (const target of targets) {
    console.log(`[fuzz] jazzer: ${target}, ${seconds} s`);
    const r = spawnSync(
      process.execPath,
      // Jazzer appends '.js' to other names; tsx maps jazzer.js to jazzer.ts.
      ['--import', 'tsx', cli, path.join(here, 'jazzer.js'), '--sync', '-i', `${path.join(root, 'src')}/`, '--', corpusDir(target), `-max_total_time=${seconds}`, `-artifact_prefix=${findings}/${target}-`, ...(runs ? [`-runs=${runs}`] : [])],
      { cwd: root, stdio: 'inherit', env: { ...process.env, PQMCP_FUZZ_TARGET: target } },
    );
    if (r.status !== 0) failed++;
  }
  return failed ? 1 : 0;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const ci = args['ci'] === true;
  const seconds = Number(args['time'] ?? 60);
  const runs = typeof args['runs'] === 'string' ? args['runs'] : undefined;
  const engine = String(args['engine'] ?? 'auto');

  // Instrument src/ for coverage before anything from it is loaded.
  register(new URL('./coverage-hooks.mjs', import.meta.url), { data: { include: [pathToFileURL(path.join(root, 'src') + path.sep).href] } });
  const { TARGETS, targetNamed } = await import('./targets.js');
  const { Coverage, fuzz } = await import('./engine.js');
  const names = args['target'] === undefined || args['target'] === 'all' ? TARGETS.map((t) => t.name) : [String(args['target'])];

  if (args['make-seeds']) {
    for (const name of names) {
      const dir = corpusDir(name);
      mkdirSync(dir, { recursive: true });
      targetNamed(name)
        .seeds()
        .forEach((s, i) => writeFileSync(path.join(dir, `seed-${i}.bin`), s));
      console.log(`[fuzz] wrote the seeds of ${name} to ${path.relative(root, dir)}`);
    }
    return 0;
  }

  if (typeof args['repro'] === 'string') {
    const input = new Uint8Array(readFileSync(args['repro']));
    try {
      targetNamed(names[0]!).run(input);
      console.log('[fuzz] no finding: the input runs clean');
      return 0;
    } catch (err) {
      console.log('[fuzz] finding reproduced:', err);
      return 1;
    }
  }

  if (engine !== 'builtin') {
    const why = jazzerUnavailable();
    if (!why) return runJazzer(names, seconds, runs);
    if (engine === 'jazzer') {
      console.error(`[fuzz] Jazzer.js cannot run here: ${why}`);
      return 2;
    }
    console.log(`[fuzz] Jazzer.js cannot run here (${why}); using the built-in coverage-guided engine`);
  }

  const findingsDir = ci ? mkdtempSync(path.join(tmpdir(), 'pqmcp-fuzz-')) : path.join(here, 'findings');
  const coverage = new Coverage();
  const reports = [];
  for (const name of names) {
    reports.push(
      fuzz(targetNamed(name), coverage, {
        timeMs: seconds * 1000,
        ...(runs ? { runs: Number(runs) } : {}),
        ...(args['seed'] !== undefined ? { seed: Number(args['seed']) } : {}),
        corpusDirs: [corpusDir(name)],
        ...(ci ? {} : { saveDir: corpusDir(name) }),
        findingsDir,
        log: (line) => console.log(line),
      }),
    );
  }
  const summary = {
    engine: 'builtin',
    node: process.version,
    coverage: { enabled: coverage.enabled, covered: coverage.covered, total: coverage.total },
    targets: reports.map((r) => ({ target: r.target, seed: r.seed, execs: r.execs, seconds: r.seconds, corpusStart: r.corpusStart, corpusAdded: r.corpusAdded, findings: r.findings.map((f) => ({ message: f.message, file: f.file })) })),
  };
  console.log(`FUZZ-REPORT ${JSON.stringify(summary)}`);
  return reports.some((r) => r.findings.length > 0) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
