/**
 * One writer per audit directory (review 15, R15-6): an AuditLog holds `<dir>/audit.lock`
 * for its life; a second writer is refused with AuditLogLockedError (ERR_AUDIT_LOCKED)
 * instead of forking the chain; a lock left by a writer that is gone (a crash, a restarted
 * container with the same pid, another host that stopped refreshing it) is taken over.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog, auditFiles, verifyTrail } from '../../src/audit/index.js';
import type { AuditEvent } from '../../src/audit/index.js';
import { AuditLogLockedError } from '../../src/errors.js';

const root = mkdtempSync(join(tmpdir(), 'pqmcp-dirlock-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const newDir = (): string => {
  const dir = join(root, `d${dirs++}`);
  mkdirSync(dir);
  return dir;
};

const event = (i: number): AuditEvent => ({ type: 'handshake.failure', time: 1_700_000_000_000 + i, role: 'server', remoteAddress: '127.0.0.1', code: 'ERR_DECODE', message: `n${i}` });
/** A lock as another writer leaves it: pid, host, time, token. */
const lockText = (pid: number, host = hostname()): string => `${pid}\n${host}\n${Date.now()}\n${'ab'.repeat(8)}\n`;

describe('AuditLog: one writer per directory', () => {
  it('a second writer on the directory is refused (ERR_AUDIT_LOCKED, naming the holder); once the first closes, the chain goes on unforked', async () => {
    const dir = newDir();
    const a = await AuditLog.open(dir, { flushMs: 0 });
    a.write(event(0));
    a.flush();
    const err = await AuditLog.open(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AuditLogLockedError);
    expect(err).toMatchObject({ code: 'ERR_AUDIT_LOCKED', dir, lock: join(dir, 'audit.lock') });
    expect((err as Error).message).toContain(`pid ${process.pid} on ${hostname()} since `);
    a.write(event(1));
    await a.close();
    expect(existsSync(join(dir, 'audit.lock'))).toBe(false);
    const b = await AuditLog.open(dir, { flushMs: 0 });
    expect(b.position.seq).toBe(1);
    b.write(event(2));
    await b.close();
    expect(await verifyTrail(auditFiles(dir))).toMatchObject({ ok: true, events: 3 });
  });

  it('a live process of this host holding the lock keeps it', async () => {
    const dir = newDir();
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      writeFileSync(join(dir, 'audit.lock'), lockText(holder.pid!));
      await expect(AuditLog.open(dir)).rejects.toMatchObject({ code: 'ERR_AUDIT_LOCKED' });
    } finally {
      holder.kill();
    }
  });

  it('a lock left by a crash is taken over: its process is gone, or it has this process\'s pid but is not one this process holds (a restarted container)', async () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    for (const pid of [dead, process.pid]) {
      const dir = newDir();
      writeFileSync(join(dir, 'audit.lock'), lockText(pid));
      const log = await AuditLog.open(dir, { flushMs: 0 });
      log.write(event(0));
      await log.close();
      expect(existsSync(join(dir, 'audit.lock'))).toBe(false);
    }
  });

  it('a lock of another host is kept while it is refreshed, taken over once it was not for a minute', async () => {
    const dir = newDir();
    const lock = join(dir, 'audit.lock');
    writeFileSync(lock, lockText(4242, 'another-host.example'));
    await expect(AuditLog.open(dir)).rejects.toMatchObject({ code: 'ERR_AUDIT_LOCKED', message: expect.stringContaining('pid 4242 on another-host.example') });
    const old = new Date(Date.now() - 61_000);
    utimesSync(lock, old, old);
    const log = await AuditLog.open(dir);
    await log.close();
  });
});
