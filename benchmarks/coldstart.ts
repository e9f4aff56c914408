/**
 * Cold start of the built CLI (printed, not gated): wall time of `pqmcp --help`,
 * `pqmcp --version` and `pqmcp connect --help` against `node -e 0`, spawned alternately in
 * one run so the ratios share the machine's noise. Target (issue 12): `--help` <= 1.5x
 * `node -e 0` (desktop MCP clients spawn `pqmcp connect` per session).
 *
 *   npm run build && npm run bench:coldstart [-- --runs 21]
 *
 * Sharp edges: measures dist/cli.js (build first); each sample is a whole process (spawnSync),
 * so absolute times include the OS; only the ratios are meaningful.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1]) || 21;
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
if (!existsSync(cli)) throw new Error(`${cli} is missing: npm run build first`);

const cases: [string, string[]][] = [
  ['node -e 0', ['-e', '0']],
  ['pqmcp --help', [cli, '--help']],
  ['pqmcp --version', [cli, '--version']],
  ['pqmcp connect --help', [cli, 'connect', '--help']],
];
const times = new Map<string, number[]>(cases.map(([name]) => [name, []]));
for (let i = 0; i < runs; i++) {
  for (const [name, argv] of cases) {
    const start = process.hrtime.bigint();
    const r = spawnSync(process.execPath, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (r.status !== 0) throw new Error(`${name} exited with ${r.status}`);
    times.get(name)!.push(ms);
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const base = median(times.get('node -e 0')!);
console.log(`Node ${process.version}, ${runs} runs each, interleaved`);
console.log('| command | median ms | vs node -e 0 | target |\n| --- | --- | --- | --- |');
for (const [name] of cases) {
  const m = median(times.get(name)!);
  const target = name === 'pqmcp --help' ? `<= 1.5x: ${m / base <= 1.5 ? 'met' : '**missed**'}` : name === 'node -e 0' ? '' : 'report';
  console.log(`| ${name} | ${m.toFixed(1)} | ${(m / base).toFixed(2)}x | ${target} |`);
}
