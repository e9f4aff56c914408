/**
 * Cold start of the built CLI on its own: `pqmcp --help`, `--version` and `connect --help`
 * against `node -e 0` (benchmarks/lib/coldstart.ts; the same measure is the `coldstart`
 * suite of `npm run bench` and a gate of `bench:ci`). Prints the medians and ratios.
 *
 *   npm run build && npm run bench:coldstart [-- --runs 21]
 */
import { COLD_START_LABELS, coldStartCli, measureColdStart } from './lib/coldstart.js';
import type { ColdStartCommand } from './lib/coldstart.js';

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1]) || 21;
const cli = coldStartCli();
if (!cli) throw new Error('dist/cli.js is missing: npm run build first');
const { ms } = measureColdStart(cli, runs);
const base = ms.node.median;
console.log(`Node ${process.version}, ${runs} runs each, interleaved`);
console.log('| command | median ms | vs node -e 0 | target |\n| --- | --- | --- | --- |');
for (const name of Object.keys(COLD_START_LABELS) as ColdStartCommand[]) {
  const m = ms[name].median;
  const target = name === 'help' ? `<= 1.5x: ${m / base <= 1.5 ? 'met' : '**missed**'}` : name === 'node' ? '' : 'report';
  console.log(`| ${COLD_START_LABELS[name]} | ${m.toFixed(1)} | ${(m / base).toFixed(2)}x | ${target} |`);
}
