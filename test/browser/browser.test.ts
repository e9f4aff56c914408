/**
 * pqmcp from a web page, in a real headless Chromium: the example page (examples/browser/)
 * bundles the `pqmcp/browser` client, keeps its key in IndexedDB, completes a mutually
 * attested handshake with a Node serveMcp server on 127.0.0.1, lists and calls tools,
 * answers the server's elicitation and sampling requests, and shows the verified server.
 * Refusals (an untrusted issuer, a wrong expected id) reach the page as typed errors.
 *
 * Needs Chromium (Debian's `chromium`; .ci/run installs it). Without one the suite is
 * skipped locally and fails in CI (CI=true).
 */
import { mkdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startBrowserDemo } from '../../examples/browser/server.js';
import type { BrowserDemo } from '../../examples/browser/server.js';
import type { DemoState } from '../../examples/browser/page.js';
import { repoRoot } from '../helpers/vectors.js';
import { chromiumPath, launchChromium } from './chromium.js';

const available = chromiumPath() !== undefined;
if (!available && process.env.CI) throw new Error('CI needs Chromium for the browser tests (apt-get install chromium)');

/** A port on 127.0.0.1 nothing listens on (one just closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function run(page: Page, url: string): Promise<DemoState> {
  await page.goto(url);
  await page.waitForFunction(() => (globalThis as { pqmcpDemo?: { state: string } }).pqmcpDemo?.state !== 'running', undefined, { timeout: 60_000 });
  return (await page.evaluate(() => (globalThis as { pqmcpDemo?: unknown }).pqmcpDemo)) as DemoState;
}

describe.skipIf(!available)('browser client in Chromium', () => {
  let browser: Browser;
  let demo: BrowserDemo;

  beforeAll(async () => {
    demo = await startBrowserDemo();
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });

  it('completes a mutually attested session, calls a tool that uses elicitation and sampling, and shows the verified server', async () => {
    const sessions: string[] = [];
    demo.listener.on('session', (_t, peer) => sessions.push(peer.agentId));
    const page = await browser.newPage({ viewport: { width: 1000, height: 820 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const state = await run(page, demo.pageUrl);
    expect(errors).toEqual([]);
    expect(state.errorMessage).toBeUndefined();
    expect(state.state).toBe('done');
    expect(state.serverId).toBe(demo.serverId);
    expect(state.serverIssuer).toBe('issuer://demo.example/ca');
    expect(state.serverFingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(state.tools).toEqual(['book_trip', 'whoami']);
    expect(state.serverRequests).toEqual(['elicitation', 'sampling']);
    expect(state.result).toBe('Booked Amsterdam for agent://demo.example/browser-planner. Summary: Canals, museums and stroopwafels.');
    // The server verified the page's agent too.
    expect(sessions).toEqual(['agent://demo.example/browser-planner']);
    // What a person sees.
    expect(await page.locator('#server').textContent()).toContain(demo.serverId);
    expect(await page.locator('#status').textContent()).toContain('connected, verified, called, closed');
    expect(await page.locator('#session').textContent()).toContain('noble');
    const out = path.join(repoRoot, '.cache', 'browser');
    mkdirSync(out, { recursive: true });
    await page.screenshot({ path: path.join(out, 'browser-demo.png'), fullPage: true });
    await page.close();
  }, 90_000);

  it.each([
    ['untrusted', 'UntrustedIssuerError', 'ERR_UNTRUSTED_ISSUER'],
    ['wrong-id', 'UnexpectedPeerError', 'ERR_UNEXPECTED_PEER'],
    // Nothing listens there: the dial fails, the WebSocket never opens. Before review 16
    // (R16-6) the transport then called setImmediate, which browsers lack: a ReferenceError
    // instead of the typed error, and no onclose.
    ['no-server', 'ConnectionError', 'ERR_CONNECTION'],
  ])('refusal (%s) reaches the page as a typed error, and onclose fires', async (which, name, code) => {
    const page = await browser.newPage();
    const state = await run(page, `${demo.pageUrl}?case=${which}${which === 'no-server' ? `&port=${await closedPort()}` : ''}`);
    expect(state.state).toBe('refused');
    expect(state.errorName).toBe(name);
    expect(state.errorCode).toBe(code);
    expect(state.closed).toBe(true);
    expect(await page.locator('#status').textContent()).toContain(code);
    await page.close();
  }, 90_000);
});
