/**
 * Cold start of the built CLI: wall time of `pqmcp --help`, `pqmcp --version` and
 * `pqmcp connect --help` against `node -e 0`, spawned alternately in one run so the ratios
 * share the machine's noise. Target (issue 12): `--help` <= 1.5x `node -e 0` (desktop MCP
 * clients spawn `pqmcp connect` per session).
 *
 * Sharp edges: measures dist/cli.js (build first: `coldStartCli()` says whether it is
 * there); each sample is a whole process (spawnSync), so absolute times include the OS and
 * only the ratios mean anything; whole-process timings on a shared 2-core machine move by
 * +-30 % between runs, which is why CI gates the ratio with the wide tolerance.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { summarize } from './stats.js';
import type { Summary } from './stats.js';

export type ColdStartCommand = 'node' | 'help' | 'version' | 'connect-help';

export interface ColdStartResult {
  runs: number;
  /** Wall ms per command (median, min, max over the runs). */
  ms: Record<ColdStartCommand, Summary>;
}

/** The built CLI's path, or undefined when there is no build. */
export function coldStartCli(): string | undefined {
  const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
  return existsSync(cli) ? cli : undefined;
}

/** `runs` interleaved rounds of the four commands under `node` (this process's executable). */
export function measureColdStart(cli: string, runs: number): ColdStartResult {
  const cases: [ColdStartCommand, string[]][] = [
    ['node', ['-e', '0']],
    ['help', [cli, '--help']],
    ['version', [cli, '--version']],
    ['connect-help', [cli, 'connect', '--help']],
  ];
  const times = new Map<ColdStartCommand, number[]>(cases.map(([name]) => [name, []]));
  for (let i = 0; i < runs; i++) {
    for (const [name, argv] of cases) {
      const start = process.hrtime.bigint();
      const r = spawnSync(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (r.status !== 0) throw new Error(`${name === 'node' ? 'node -e 0' : `pqmcp ${argv.slice(1).join(' ')}`} exited with ${r.status}: ${String(r.stderr).trim().split('\n')[0]}`);
      times.get(name)!.push(ms);
    }
  }
  const ms = Object.fromEntries([...times].map(([name, xs]) => [name, summarize(xs)!])) as Record<ColdStartCommand, Summary>;
  return { runs, ms };
}

/** How each command is shown. */
export const COLD_START_LABELS: Record<ColdStartCommand, string> = {
  node: 'node -e 0',
  help: 'pqmcp --help',
  version: 'pqmcp --version',
  'connect-help': 'pqmcp connect --help',
};
