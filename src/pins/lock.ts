/**
 * An exclusive lock beside a file that several processes read, change and write back (the
 * pin file: every `pqmcp connect --pins` bridge and `pqmcp pins approve|forget`; the ticket
 * file of `pqmcp connect --tickets`, cli/tickets.ts), so that each change is made to what the
 * others wrote and none is lost (review 9, P4; review 17, R17-3).
 *
 *   withFileLock(path, fn)   creates `<path>.lock` (O_EXCL, 0600; "pid, host, time, token"),
 *                            runs fn, removes the lock if it is still its own
 *
 * Synchronous, like the pin store (pins are checked inside message hooks): a busy lock is
 * tried again after a short sleep (Atomics.wait, 1 to 50 ms) for at most LOCK_WAIT_MS, then
 * FileReadError (ERR_FILE_READ) naming the lock file; a pinning hook then fails closed (the
 * ticket store reports it and keeps that change in memory only).
 *
 * Stale locks (a holder that died between creating and removing it): a lock is broken when
 * its holder is a process of this host that no longer exists, or when it is older than
 * LOCK_STALE_MS (a holder keeps it for one read, parse and write: milliseconds). Breaking it
 * is a rename to a unique name, then a check that what was moved is the lock judged stale:
 * if another waiter broke it first and took the lock, it is linked back (which fails only
 * if a third has taken it in between: two holders then, the one case this does not cover).
 *
 * Sharp edges:
 * - Advisory: only writers that take the lock are ordered (pqmcp's own). A file edited by
 *   hand while a writer holds the lock is overwritten by that writer.
 * - Not reentrant: a caller that takes the lock of a file again inside fn (another store
 *   object on the same file, in the same thread) waits LOCK_WAIT_MS and fails.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, linkSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { FileReadError } from '../errors.js';

/** How long a writer waits for the lock before it gives up. */
export const LOCK_WAIT_MS = 5_000;
/** A lock older than this is stale whoever holds it. */
export const LOCK_STALE_MS = 30_000;

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms: number): void => void Atomics.wait(sleeper, 0, 0, ms);

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

/** Whether a process of this host with this id exists (EPERM: it does, another user's). Also audit/dir-lock.ts. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return code(err) === 'EPERM';
  }
}

export interface Held {
  text: string;
  mtimeMs: number;
}

/** The lock's text and mtime; undefined when there is none. Also audit/dir-lock.ts. */
export function readLock(lock: string): Held | undefined {
  try {
    return { text: readFileSync(lock, 'utf8'), mtimeMs: statSync(lock).mtimeMs };
  } catch (err) {
    if (code(err) === 'ENOENT') return undefined;
    throw err;
  }
}

function isStale(held: Held): boolean {
  const [pid, host] = held.text.split('\n');
  if (host === hostname() && pid !== undefined && /^[1-9][0-9]{0,9}$/.test(pid) && !alive(Number(pid))) return true;
  return Date.now() - held.mtimeMs > LOCK_STALE_MS;
}

/**
 * Move the lock judged stale (`held` as read) aside; if what was moved is not it (another
 * waiter broke it and took a new one meanwhile), link that back. Also audit/dir-lock.ts.
 */
export function breakStale(lock: string, held: Held): void {
  const aside = `${lock}.${process.pid}.${randomBytes(6).toString('hex')}.stale`;
  try {
    renameSync(lock, aside);
  } catch (err) {
    if (code(err) === 'ENOENT') return; // broken by another waiter already
    throw err;
  }
  let moved: string | undefined;
  try {
    moved = readFileSync(aside, 'utf8');
  } catch {
    moved = undefined;
  }
  if (moved !== held.text) {
    // Another waiter broke the stale lock and took a new one since it was read: put it back.
    try {
      linkSync(aside, lock);
    } catch {
      // A third writer holds the lock now: the one moved finds its lock gone when it ends.
    }
  }
  unlinkSync(aside);
}

/** "pid 41 on gw-1 since <time>" from a lock's text. Also audit/dir-lock.ts. */
export function holder(held: Held | undefined): string {
  if (held === undefined) return 'gone';
  const [pid, host, at] = held.text.split('\n');
  return `pid ${pid ?? '?'} on ${host ?? '?'} since ${at !== undefined && /^\d+$/.test(at) ? new Date(Number(at)).toISOString() : '?'}`;
}

/** A lock's text: "pid, host, time, token", one per line. Also audit/dir-lock.ts. */
export function lockToken(): string {
  return `${process.pid}\n${hostname()}\n${Date.now()}\n${randomBytes(8).toString('hex')}\n`;
}

/** Create `lock` holding `token` (O_EXCL, 0600); false when it exists. Also audit/dir-lock.ts. */
export function createLock(lock: string, token: string): boolean {
  let fd: number;
  try {
    fd = openSync(lock, 'wx', 0o600);
  } catch (err) {
    if (code(err) === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, token);
  } catch (err) {
    closeSync(fd);
    unlinkSync(lock);
    throw err;
  }
  closeSync(fd);
  return true;
}

/** Remove `lock` if it still holds `token` (one broken as stale by another writer is not ours). Also audit/dir-lock.ts. */
export function releaseLock(lock: string, token: string): void {
  try {
    if (readFileSync(lock, 'utf8') === token) unlinkSync(lock);
  } catch {
    // Gone, or broken as stale: not ours to remove.
  }
}

/** Run `fn` holding `<path>.lock`; see the top of this file. */
export function withFileLock<T>(path: string, fn: () => T): T {
  const lock = `${path}.lock`;
  const token = lockToken();
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let pause = 1; !createLock(lock, token); pause = Math.min(pause * 2, 50)) {
    const held = readLock(lock);
    if (held !== undefined && isStale(held)) breakStale(lock, held);
    else if (Date.now() >= deadline) throw new FileReadError(path, `being written by another process (lock ${lock}, ${holder(held)}); if no pqmcp is using the file, remove the lock`);
    else if (held !== undefined) sleep(pause + Math.floor(Math.random() * pause));
  }
  try {
    return fn();
  } finally {
    releaseLock(lock, token);
  }
}
