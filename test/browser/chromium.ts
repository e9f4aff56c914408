/**
 * A real headless Chromium for the browser tests and the browser benchmark: Debian's
 * `chromium` (or PQMCP_CHROMIUM), driven by playwright-core, with the flags this machine's
 * closed network needs. `chromiumPath()` is undefined where there is none; CI installs it.
 */
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';

export function chromiumPath(): string | undefined {
  const candidates = [process.env.PQMCP_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((p): p is string => p !== undefined && p !== '' && existsSync(p));
}

export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (executablePath === undefined) throw new Error('no Chromium: apt-get install chromium, or set PQMCP_CHROMIUM');
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}
