/**
 * A write() from onrotate (documented: "a write() from onrotate or onerror starts a new
 * one") while another write() is flushing a full queue buffer (room()) must still extend
 * the chain: every seq once, each line's prev the line before it, verifyChain ok.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/chain.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { AuditLog, auditFiles } from '../../src/audit/writer.js';

const event = (note: string): AuditEvent => ({ type: 'connection', note }) as unknown as AuditEvent;

describe('AuditLog: a write from onrotate during a flush made by write()', () => {
  it('keeps the chain whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pqmcp-audit-reentrant-'));
    try {
      let rotations = 0;
      let log!: AuditLog;
      log = await AuditLog.open(dir, {
        maxBytes: 16 * 1024,
        flushMs: 1000, // only full buffers and close() flush: every flush below comes from write()
        onrotate: () => {
          rotations++;
          log.write(event(`rotated ${rotations}`));
        },
      });
      // 3 KiB lines: the 128 KiB queue buffer fills within this turn, so write() flushes it itself, rotating.
      for (let i = 0; i < 200; i++) log.write(event(`${i} ${'x'.repeat(3000)}`));
      await log.close();
      const files = auditFiles(dir).map((name) => ({ name, text: readFileSync(name, 'utf8') }));
      const seqs = files.flatMap((f) => f.text.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { seq: number }).seq));
      expect(rotations).toBeGreaterThan(1);
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      const result = verifyChain(files);
      expect(result.problems).toEqual([]);
      expect(result.ok).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
