/**
 * Refusing an HTTP upgrade cheaply, and slowly: the socket is held (not read) for
 * `delayMs`, then answered `429 Too Many Requests` with `Retry-After` and closed. A client
 * that re-connects the moment it is refused (a flood) therefore re-connects at most once
 * per `delayMs` per socket it holds, instead of as fast as the server can say no; an
 * honest client gets a clear answer (ServerBusyError on the pqmcp client, which retries).
 *
 * Sharp edges:
 * - One timer for all held sockets (they leave in arrival order, all held equally long).
 * - Bounded: at most `maxHeld` sockets held at once; past it a refusal is answered at once.
 * - A held socket that the client closes, or that errors, is dropped from the queue
 *   lazily (skipped when its time comes); it costs one queue entry until then.
 * - close() answers every held socket at once.
 */
import type { Duplex } from 'node:stream';
import { answerAndClose, httpAnswer } from './http-answer.js';

export interface RefusalOptions {
  /** How long a refused socket is held before its answer. */
  delayMs: number;
  /** Sockets held at once; past it, answered at once. */
  maxHeld: number;
  /** Clock in ms (tests). Default performance.now. */
  now?: () => number;
}

interface Held {
  socket: Duplex;
  due: number;
  retryAfterSeconds: number;
}

/** The whole 429 answer (http-answer.ts; the connection closes after it). */
function answer(retryAfterSeconds: number): string {
  return httpAnswer(429, 'too many new connections from this address, try again later', retryAfterSeconds);
}

/** The same answer with `Retry-After: 1`, sent at once (edge.ts, the accept rate). */
export const RATE_ANSWER = answer(1);

export class Refusals {
  private readonly queue: Held[] = [];
  private head = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly now: () => number;
  /** Refusals so far (held or answered at once). */
  refused = 0;

  constructor(private readonly options: RefusalOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  /** Sockets held now. */
  get held(): number {
    return this.queue.length - this.head;
  }

  /** Refuse `socket` (an upgrade request's socket, not yet answered). */
  refuse(socket: Duplex, retryAfterSeconds = 1): void {
    this.refused++;
    if (this.held >= this.options.maxHeld || this.options.delayMs <= 0) return send(socket, retryAfterSeconds);
    socket.pause();
    this.queue.push({ socket, due: this.now() + this.options.delayMs, retryAfterSeconds });
    this.arm();
  }

  /** Answer every held socket now. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (let i = this.head; i < this.queue.length; i++) send(this.queue[i]!.socket, this.queue[i]!.retryAfterSeconds);
    this.queue.length = 0;
    this.head = 0;
  }

  private arm(): void {
    if (this.timer || this.held === 0) return;
    const wait = Math.max(0, this.queue[this.head]!.due - this.now());
    this.timer = setTimeout(() => this.release(), wait);
    this.timer.unref?.();
  }

  private release(): void {
    this.timer = undefined;
    const now = this.now();
    while (this.head < this.queue.length && this.queue[this.head]!.due <= now) {
      const { socket, retryAfterSeconds } = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as Held;
      send(socket, retryAfterSeconds);
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.arm();
  }
}

function send(socket: Duplex, retryAfterSeconds: number): void {
  // Closed once written, whatever the client does (an upgrade socket has no HTTP timeouts left).
  answerAndClose(socket, answer(retryAfterSeconds));
}
