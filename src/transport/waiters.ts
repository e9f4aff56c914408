/**
 * Promises a Connection hands out and settles together: send()s waiting for the handshake,
 * for the server's confirmation (pending-sends.ts), or for the socket to drain (drain-watch.ts).
 *
 * Sharp edges:
 * - Settling takes the whole list first: a waiter added while settling (from a callback)
 *   waits for the next settlement.
 */
import type { PqmcpError } from '../errors.js';

interface Waiter {
  resolve: () => void;
  reject: (error: PqmcpError) => void;
}

export class Waiters {
  private list: Waiter[] = [];

  get size(): number {
    return this.list.length;
  }

  /** A promise settled by the next resolveAll() or rejectAll(). */
  wait(): Promise<void> {
    return new Promise((resolve, reject) => this.list.push({ resolve, reject }));
  }

  resolveAll(): void {
    for (const w of this.take()) w.resolve();
  }

  rejectAll(error: PqmcpError): void {
    for (const w of this.take()) w.reject(error);
  }

  private take(): Waiter[] {
    const list = this.list;
    this.list = [];
    return list;
  }
}
