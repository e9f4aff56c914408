/**
 * The crypto pool's fair queue (crypto-pool.ts): which handshake's job runs next, and which
 * new handshake is refused (docs/threat-model.md, "Expensive work").
 *
 * Policy:
 * - A new handshake's first job (its encapsulation) needs a token from its source's bucket
 *   (`ratePerSource` per second, burst of one second's worth); without one it is refused.
 * - New handshakes wait in one queue per source, at most `maxQueue` in all. The next one
 *   served is from the waiting source served least lately: each source's count of
 *   handshakes served, decaying by e every USAGE_MS (least attained service; ties go to the
 *   source waiting longest). An honest client (a few handshakes now and then) therefore
 *   goes ahead of every flooding source however many there are, and flooding sources take
 *   turns. When full, the source with the most waiting loses its newest,
 *   unless the newcomer's own source would then hold the most: then the newcomer is refused.
 * - Continuations (a handshake's later jobs: its signature) go ahead of new handshakes and
 *   are never refused; among them too, the source served least lately goes first. A job
 *   whose thread died goes back at their front (`retry`).
 *
 * Sharp edges:
 * - Jobs are the pool's (only their source is read here): the pool dispatches, settles and
 *   rejects them. A refusal goes through the host's `refuse` (the pool counts it and rejects
 *   the job busy), before any crypto.
 * - Continuations are not counted against `maxQueue` (a handshake admitted has one job at a
 *   time, and is finished promptly).
 * - The usage map is bounded (MAX_USAGE_SOURCES; forgetting a count only favours that
 *   source), and so are the rate buckets (rate.ts).
 * - `clear()` hands back every job waiting (continuations first), for the pool to reject
 *   on close().
 */
import { SourceRates } from './rate.js';

/** A source's count of handshakes served decays by e in this long. */
const USAGE_MS = 1_000;
/** Sources whose usage is remembered at most. */
const MAX_USAGE_SOURCES = 4096;

/** What the queue needs of a job: the pool's Job. */
export interface QueuedJob {
  source: string;
}

export interface QueueOptions<J> {
  /** New handshakes waiting, across sources. */
  maxQueue: number;
  /** New handshakes per second per source; 0: no limit. */
  ratePerSource: number;
  now: () => number;
  /** The clock of the per-source rate. Default: `now`. */
  rateNow?: () => number;
  /** Refuse `job` busy (`message`), before any crypto. */
  refuse(job: J, message: string): void;
}

export class FairQueue<J extends QueuedJob> {
  private readonly waiting = new Map<string, J[]>();
  private readonly continuations: J[] = [];
  /** Per source: new handshakes served, decayed over USAGE_MS; least recently served first. */
  private readonly usage = new Map<string, { n: number; at: number }>();
  private readonly rates: SourceRates;
  /** New handshakes waiting. */
  queued = 0;

  constructor(private readonly options: QueueOptions<J>) {
    this.rates = new SourceRates({ rate: options.ratePerSource, now: options.rateNow ?? options.now }, 'handshakeRatePerSource');
  }

  /** Nothing waiting. */
  get empty(): boolean {
    return this.queued === 0 && this.continuations.length === 0;
  }

  /** A new handshake's first job: rate, then a place in the fair queue; false when refused. */
  admit(job: J): boolean {
    if (!this.rates.take(job.source)) return this.refuse(job, 'server busy: too many new handshakes from this address, try again later');
    if (this.queued >= this.options.maxQueue) {
      let largest: J[] | undefined;
      for (const list of this.waiting.values()) if (!largest || list.length > largest.length) largest = list;
      const own = (this.waiting.get(job.source)?.length ?? 0) + 1;
      if (!largest || own >= largest.length) return this.refuse(job, 'server busy: handshake queue full, try again later');
      const victim = largest.pop()!;
      this.queued--;
      if (largest.length === 0) this.waiting.delete(victim.source);
      this.refuse(victim, 'server busy: handshake queue full, try again later');
    }
    const list = this.waiting.get(job.source);
    if (list) list.push(job);
    else this.waiting.set(job.source, [job]);
    this.queued++;
    return true;
  }

  /** A later job of an admitted handshake (never refused). */
  continue(job: J): void {
    this.continuations.push(job);
  }

  /** A job whose runner died goes back ahead of everything. */
  retry(job: J): void {
    this.continuations.unshift(job);
  }

  /** The next job: a continuation, else a new handshake. */
  next(): J | undefined {
    return this.nextContinuation() ?? this.nextWaiting();
  }

  /** Every job waiting, continuations first; the queue is then empty. */
  clear(): J[] {
    const jobs = this.continuations.splice(0);
    for (const list of this.waiting.values()) jobs.push(...list);
    this.waiting.clear();
    this.queued = 0;
    return jobs;
  }

  private refuse(job: J, message: string): false {
    this.options.refuse(job, message);
    return false;
  }

  /** Next signature of an admitted handshake: the source served least lately first, then the oldest. */
  private nextContinuation(): J | undefined {
    if (this.continuations.length <= 1) return this.continuations.shift();
    const least = this.leastServed(this.continuations.keys(), (i) => this.continuations[i]!.source, this.options.now());
    return this.continuations.splice(least!.item, 1)[0];
  }

  /** Next new handshake: from the waiting source served least lately (see the policy above). */
  private nextWaiting(): J | undefined {
    const now = this.options.now();
    const least = this.leastServed(this.waiting.keys(), (source) => source, now);
    if (least === undefined) return undefined;
    const next = least.item;
    const list = this.waiting.get(next)!;
    const job = list.shift()!;
    this.waiting.delete(next);
    if (list.length > 0) this.waiting.set(next, list); // behind the others waiting as long
    this.queued--;
    this.served(next, least.used + 1, now);
    return job;
  }

  /** The first of `items` (in their order) whose source was served least lately, with that source's count. */
  private leastServed<T>(items: Iterable<T>, sourceOf: (item: T) => string, now: number): { item: T; used: number } | undefined {
    let least: { item: T; used: number } | undefined;
    for (const item of items) {
      const used = this.usedBy(sourceOf(item), now);
      if (least === undefined || used < least.used) least = { item, used };
    }
    return least;
  }

  /** `source`'s count of handshakes served, decayed to `now`. */
  private usedBy(source: string, now: number): number {
    const u = this.usage.get(source);
    return u === undefined ? 0 : u.n * Math.exp(-(now - u.at) / USAGE_MS);
  }

  /** Record `source`'s new count; the map stays in order of the last service, and bounded (forgetting a count only favours that source). */
  private served(source: string, n: number, now: number): void {
    this.usage.delete(source);
    if (this.usage.size >= MAX_USAGE_SOURCES) {
      for (const key of this.usage.keys()) {
        if (this.usage.size < (MAX_USAGE_SOURCES * 3) / 4) break;
        this.usage.delete(key);
      }
    }
    this.usage.set(source, { n, at: now });
  }
}
