/**
 * One writer per audit directory (review 15, R15-6): an AuditLog holds `<dir>/audit.lock`
 * for its whole life. Two writers on one directory (two gateways on a shared volume, an
 * overlapping restart) would both continue the same head and fork the chain: a tamper
 * alarm forever.
 *
 *   const lock = DirLock.take(dir);   // AuditLogLockedError when another writer holds it
 *   lock.refresh();                   // every LOCK_REFRESH_MS (AuditLog's timer): still ours?
 *   lock.release();
 *
 * The lock is made and broken as pins/lock.ts does for the pin file (O_EXCL, 0600,
 * "pid, host, time, token"; a stale one renamed aside and checked). A lock is stale, and
 * taken over, when:
 * - its holder is a process of this host that no longer exists (a crash, kill -9);
 * - its holder has this process's own pid but is not a lock this process holds: a
 *   restarted container, where the gateway gets the pid (often 1) its last run had;
 * - it was not refreshed for LOCK_STALE_MS (its holder touches it every LOCK_REFRESH_MS):
 *   a holder on another host (a shared volume) that is gone, or a crashed holder whose pid
 *   another process has since. So a restart after a crash is refused for at most
 *   LOCK_STALE_MS (a supervisor's next try succeeds), never for good.
 *
 * Sharp edges:
 * - Advisory: only AuditLog takes it. Removing it by hand while a writer runs lets a
 *   second one in.
 * - A holder frozen for longer than LOCK_STALE_MS (SIGSTOP, a paused VM) can lose its lock
 *   to a writer started meanwhile: it finds out at its next refresh (AuditLog reports it to
 *   onerror, once); what both write after that forks the chain.
 * - Node only (node:fs).
 */
import { readFileSync, utimesSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AuditLogLockedError } from '../errors.js';
import { alive, breakStale, createLock, holder, lockToken, readLock, releaseLock } from '../pins/lock.js';
import type { Held } from '../pins/lock.js';

export const LOCK_NAME = 'audit.lock';
/** How often a writer touches its lock. */
export const LOCK_REFRESH_MS = 10_000;
/** A lock not touched for this long is stale whoever holds it. */
export const LOCK_STALE_MS = 60_000;

/** The texts of the locks this process holds (one with our pid and another text is a previous run's). */
const held = new Set<string>();

function isStale(h: Held): boolean {
  const [pid, host] = h.text.split('\n');
  if (host === hostname() && pid !== undefined && /^[1-9][0-9]{0,9}$/.test(pid)) {
    if (Number(pid) === process.pid) return !held.has(h.text);
    if (!alive(Number(pid))) return true;
  }
  return Date.now() - h.mtimeMs > LOCK_STALE_MS;
}

export class DirLock {
  private constructor(
    readonly path: string,
    private readonly token: string,
  ) {}

  /** Take `<dir>/audit.lock`, breaking a stale one; AuditLogLockedError when a writer holds it. */
  static take(dir: string): DirLock {
    const path = join(dir, LOCK_NAME);
    const token = lockToken();
    let last: Held | undefined;
    for (let attempt = 0; attempt < 4; attempt++) {
      if (createLock(path, token)) {
        held.add(token);
        return new DirLock(path, token);
      }
      last = readLock(path);
      if (last === undefined) continue; // released meanwhile
      if (!isStale(last)) break;
      breakStale(path, last);
    }
    throw new AuditLogLockedError(dir, path, holder(last));
  }

  /** Touch the lock if it is still ours; false when it is not (broken as stale, removed). */
  refresh(): boolean {
    try {
      if (readFileSync(this.path, 'utf8') !== this.token) return false;
      const now = new Date();
      utimesSync(this.path, now, now);
      return true;
    } catch {
      return false;
    }
  }

  /** Remove the lock if it is still ours. */
  release(): void {
    held.delete(this.token);
    releaseLock(this.path, this.token);
  }
}
