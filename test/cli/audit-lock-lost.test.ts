/**
 * The gateway's audit directory lock (review 15, R15-6) lost while the gateway held it: a
 * writer frozen past LOCK_STALE_MS can have its lock taken over by another. It finds out at
 * its next refresh and says so once; the gateway logs that as `audit-lock-lost`, not as a
 * failed write (nothing was lost; the chain may fork). Fake timers: in a file of its own
 * (vitest.config.ts keeps them out of the 'shared' project).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { LOCK_REFRESH_MS } from '../../src/audit/dir-lock.js';
import { openObservability } from '../../src/cli/observe.js';

const dir = mkdtempSync(join(tmpdir(), 'pqmcp-lock-lost-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('pqmcp serve --audit: the directory lock taken over while held', () => {
  it('is reported once at the next refresh, as audit-lock-lost (ERR_AUDIT_LOCKED), not as a failed write; closing leaves the other writer its lock', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] });
    try {
      const logged: Array<[string, Record<string, unknown>]> = [];
      const obs = await openObservability({ auditDir: dir, metricsAgentIds: false, notReady: () => undefined, log: (event, fields) => void logged.push([event, fields]) });
      // Another writer took it over (as one does with a lock not refreshed for a minute).
      const theirs = `${process.pid + 1}\nanother-host\n${Date.now()}\n${'cd'.repeat(8)}\n`;
      writeFileSync(join(dir, 'audit.lock'), theirs);
      await vi.advanceTimersByTimeAsync(LOCK_REFRESH_MS * 3);
      // ('audit' is the line that names the directory at start.)
      expect(logged.map(([event]) => event)).toEqual(['audit', 'audit-lock-lost']);
      expect(String(logged[1]![1]['error'])).toMatch(/taken over by another writer/);
      await obs.close();
      expect(existsSync(join(dir, 'audit.lock'))).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});
