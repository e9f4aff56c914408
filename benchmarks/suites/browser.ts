/**
 * Browser suite: the handshake to the first MCP response (SDK Client connect) from a page in
 * a real headless Chromium against a Node serveMcp server, beside the same handshakes from a
 * Node process, both on the portable `noble` backend, against the same server, interleaved.
 * Reports the medians and browser/Node as a ratio. Needs Chromium (skipped without one).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startBrowserDemo } from '../../examples/browser/server.js';
import { chromiumPath, launchChromium } from '../../test/browser/chromium.js';
import type { SuiteContext } from '../lib/context.js';
import { scriptArgs } from '../lib/proc.js';
import { summarize } from '../lib/stats.js';
import type { Summary } from '../lib/stats.js';

export interface BrowserBenchResult {
  chromium: string;
  handshakesPerRound: number;
  rounds: number;
  /** ms, SDK Client connect over pqmcp (noble), in the page. */
  browserMs: Summary | undefined;
  /** ms, the same in a Node process (noble). */
  nodeMs: Summary | undefined;
}

const run = promisify(execFile);

export function browserAvailable(): boolean {
  return chromiumPath() !== undefined;
}

export async function runBrowser(ctx: SuiteContext): Promise<BrowserBenchResult> {
  // Smoke (the only other mode that runs it): the dropped first and one measured each.
  const perRound = ctx.mode === 'full' ? 20 : 2;
  const rounds = ctx.mode === 'full' ? 3 : 1;
  const demo = await startBrowserDemo();
  const browser = await launchChromium();
  const browserMs: number[] = [];
  const nodeMs: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const page = await browser.newPage();
      await page.goto(`${demo.pageUrl}?case=bench&n=${perRound}`);
      await page.waitForFunction(() => (globalThis as { pqmcpDemo?: { state: string } }).pqmcpDemo?.state !== 'running', undefined, { timeout: 120_000 });
      const state = (await page.evaluate(() => (globalThis as { pqmcpDemo?: unknown }).pqmcpDemo)) as { state: string; benchMs?: number[]; errorMessage?: string };
      await page.close();
      if (state.state !== 'done' || !state.benchMs) throw new Error(`browser handshakes failed: ${state.errorMessage ?? state.state}`);
      browserMs.push(...state.benchMs.slice(1)); // the first of each page includes its cold start
      const { stdout } = await run(process.execPath, [...scriptArgs('browser-node-client.ts'), demo.pageUrl, String(perRound)], { timeout: 120_000 });
      nodeMs.push(...(JSON.parse(stdout.trim().split('\n').pop()!) as number[]).slice(1));
    }
    return { chromium: browser.version(), handshakesPerRound: perRound, rounds, browserMs: summarize(browserMs), nodeMs: summarize(nodeMs) };
  } finally {
    await browser.close();
    await demo.close();
  }
}
