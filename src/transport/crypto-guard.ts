/**
 * The crypto pool's starvation guard (crypto-pool.ts, `workerPriority: 'idle'`): a reserve
 * worker at nice +10 that rescues jobs SCHED_IDLE workers hold too long, and keeps itself
 * alive.
 *
 * Why: a SCHED_IDLE worker gets almost no CPU while normal threads of its scheduling group
 * keep every core busy (a one-core host with a saturated event loop), so handshakes could
 * wait until they time out. An unprivileged thread cannot leave SCHED_IDLE, so the reserve
 * is a thread of its own, started beside the idle workers (a thread started once the CPU
 * is already scarce would come late).
 *
 * Policy:
 * - While every job runs promptly the reserve takes nothing. A job that has been with an
 *   idle worker longer than `guardMs` is late: the reserve computes it again (the first
 *   answer settles it: a result is a function of public inputs and fresh randomness, so
 *   either is as good; the other is dropped, an encapsulation's secret wiped), and the pool
 *   is starved: the reserve alone serves the queue until no idle worker has been on one job
 *   longer than `guardMs` for `guardLingerMs`. One guard timer per pool, armed only while
 *   an idle worker has a job; each job is rescued at most once per reserve (a job whose
 *   rescuing reserve died may be rescued by the next one).
 * - The reserve is kept alive: one that dies (or fails to start) is started again after a
 *   backoff (crypto-restart.ts: x4 each time, 0.25 s, 1 s, 4 s), at most RESTARTS
 *   times in a row; a reserve that lived RESTART_STABLE_MS (a minute, the pool's clock)
 *   resets the count (a rare crash is restarted, a crash loop is not): crypto-restart.ts's
 *   budget, the same one the pool's ordinary workers get. Until it is back
 *   the idle workers serve unguarded (late jobs wait in the rescue list for it): a window
 *   of at most the backoff plus a thread's start.
 * - When it cannot be kept alive (its restarts spent), the guard gives up for the pool's
 *   life and falls back to the safe state: `fallBack()` tells the pool to replace its
 *   SCHED_IDLE workers with nice +10 ones (the pool then runs as `'low'`: nothing can
 *   starve it, and nothing goes to the event loop because of it), `guardFallback` reads 1
 *   in the pool's stats, and one process warning (code PQMCP_CRYPTO_GUARD) says so. Unguarded
 *   SCHED_IDLE workers, the state the guard exists to prevent, are never the end state.
 *
 * Sharp edges:
 * - Runners and jobs are the pool's (opaque here); the pool dispatches and settles. The
 *   guard only says who runs next (`nextRunner`, `nextRescue`), watches the idle workers'
 *   jobs (`dispatched`, `released`) and hears of deaths (`died`).
 * - A restarted reserve gets the seed as the first one did (the pool's `startReserve`,
 *   crypto-threads.ts's startWorker: the main thread's workerData copy is wiped once cloned,
 *   the thread wipes its own once it holds the key).
 * - The restart timer is unref'd and cleared by close(); a reserve that comes up after
 *   close() is stopped by the pool.
 */

import { Restarter, RESTARTS } from './crypto-restart.js';

/** What the guard needs of a job: the pool's Job. */
export interface GuardJob {
  /** Settled. */
  done?: boolean;
  /** Handed to the reserve (once per reserve). */
  rescued?: boolean;
  /** Counted late (once, however many reserves rescue it). */
  late?: boolean;
  /** Runners computing it now. */
  runs: number;
}

/** What the guard needs of the pool. */
export interface GuardHost<R> {
  now(): number;
  closed(): boolean;
  /** A dead reserve's first restart backoff (crypto-restart.ts; undefined: its default). */
  restartBackoffMs?: number | undefined;
  /** Dispatch what can run now. */
  pump(): void;
  /**
   * Start a reserve thread (nice +10); the pool calls `restarted` with its runner as it adds
   * it (in the same turn: no job goes to it as an ordinary runner, and a death from then on
   * reaches `died`). Rejects when none starts (or the pool closed meanwhile).
   */
  startReserve(): Promise<unknown>;
  /** The guard gave up: the pool stops giving jobs to SCHED_IDLE workers ('low' ones replace them). */
  fallBack(): void;
  /** The one operator-visible line (process warning). */
  warn(text: string): void;
}

export interface GuardOptions {
  guardMs: number;
  lingerMs: number;
}

export interface GuardStats {
  /** The reserve thread (nice +10), 1 while it lives. */
  reserve: number;
  /** Jobs the reserve ran because they were late (rescued) or while the pool was starved (the queue). */
  reserved: number;
  /** Jobs found with an idle worker for longer than `guardMs`. */
  late: number;
  /** Times a dead reserve was started again. */
  reserveRestarts: number;
  /** 1 once the reserve could not be kept alive: the SCHED_IDLE workers were replaced by nice +10 ones. */
  guardFallback: number;
}

export class StarvationGuard<R, J extends GuardJob> {
  /** The reserve while it lives. */
  reserve: R | undefined;
  /** The SCHED_IDLE workers (watched while the guard is on). */
  readonly idleWorkers = new Set<R>();
  private readonly inFlight = new Map<R, { job: J; since: number }>();
  private readonly rescues: J[] = [];
  private starvedUntil = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  /** 'on': watching (the reserve alive or being restarted); 'off': gave up, or closed. */
  private state: 'on' | 'off' = 'on';
  /** The reserve's restart budget (crypto-restart.ts). */
  private readonly restarter: Restarter;
  private reserved = 0;
  private late = 0;
  private restarts = 0;
  private fellBack = false;

  constructor(
    private readonly host: GuardHost<R>,
    private readonly options: GuardOptions,
  ) {
    this.restarter = new Restarter(host, () => host.startReserve(), () => this.giveUp());
  }

  /** Watching: not given up, not closed (a worker the pool restarts may be SCHED_IDLE again). */
  get active(): boolean {
    return this.state === 'on';
  }

  /** A reserve started with the pool (or `undefined`: it did not start, and is restarted as if it had died). */
  begin(reserve: R | undefined): void {
    if (reserve !== undefined) this.reserve = reserve;
    else this.reserveDied();
  }

  get stats(): GuardStats {
    return { reserve: this.reserve !== undefined ? 1 : 0, reserved: this.reserved, late: this.late, reserveRestarts: this.restarts, guardFallback: this.fellBack ? 1 : 0 };
  }

  /**
   * The runner for the next job among `idle`, or none. Off, or while the reserve is down:
   * any. Otherwise, while a late job waits to be rescued or the pool is starved, the
   * reserve only (a job given to a starved idle worker would be late in its turn); else the
   * idle workers, the reserve waiting.
   */
  nextRunner(idle: readonly R[]): R | undefined {
    const reserve = this.reserve;
    if (this.state === 'off' || reserve === undefined) return idle[idle.length - 1];
    if (this.rescues.length > 0 || this.host.now() < this.starvedUntil) return idle.includes(reserve) ? reserve : undefined;
    for (let i = idle.length - 1; i >= 0; i--) if (idle[i] !== reserve) return idle[i];
    return undefined;
  }

  /** The oldest late job still computed by its idle worker alone (the reserve is free). */
  nextRescue(): J | undefined {
    let job: J | undefined;
    while ((job = this.rescues.shift()) !== undefined) if (!job.done && job.runs > 0) return job;
    return undefined;
  }

  /** `job` was given to `runner`: counted when it is the reserve's, watched when it is an idle worker's. */
  dispatched(runner: R, job: J): void {
    if (runner === this.reserve) this.reserved++;
    else if (this.state === 'on' && this.idleWorkers.has(runner)) {
      this.inFlight.set(runner, { job, since: this.host.now() });
      this.arm();
    }
  }

  /** `runner` is free again (or gone). */
  released(runner: R): void {
    this.inFlight.delete(runner);
  }

  /** `job` leaves the rescue list (its idle worker died: the pool queues it again). */
  forget(job: J): void {
    const i = this.rescues.indexOf(job);
    if (i >= 0) this.rescues.splice(i, 1);
  }

  /** A restarted reserve is up (the pool adds it to its runners now, and pumps). */
  restarted(reserve: R): void {
    this.reserve = reserve;
    this.restarts++;
    this.arm();
  }

  /** `runner`'s thread died. */
  died(runner: R): void {
    this.inFlight.delete(runner);
    this.idleWorkers.delete(runner);
    if (runner === this.reserve) {
      this.reserve = undefined;
      this.reserveDied();
    }
  }

  close(): void {
    this.off();
  }

  private arm(): void {
    if (this.timer !== undefined || this.inFlight.size === 0 || this.state === 'off') return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.checkLate();
    }, Math.max(5, this.options.guardMs / 4));
    this.timer.unref();
  }

  /** Late jobs (with an idle worker for more than guardMs) go to the reserve, and the pool counts as starved for guardLingerMs. */
  private checkLate(): void {
    if (this.state === 'off' || this.host.closed()) return;
    const now = this.host.now();
    // A worker still on a job the reserve answered is starved too: the pool stays starved
    // (the reserve serves the queue) until every idle worker is back or guardLingerMs after.
    for (const { job, since } of this.inFlight.values()) {
      if (now - since <= this.options.guardMs) continue;
      this.starvedUntil = now + this.options.lingerMs;
      if (job.rescued || job.done) continue;
      job.rescued = true;
      // A job whose rescuing reserve died is rescued again by the next one: late once.
      if (!job.late) this.late++;
      job.late = true;
      this.rescues.push(job);
    }
    // Answered ones leave the list (it holds at most one job per idle worker then, also
    // while the reserve is being restarted and nothing takes them).
    for (let i = this.rescues.length - 1; i >= 0; i--) if (this.rescues[i]!.done) this.rescues.splice(i, 1);
    this.arm();
    this.host.pump();
  }

  /** The reserve died or did not start: start it again after the backoff, or give up (crypto-restart.ts). */
  private reserveDied(): void {
    if (this.state === 'off') return;
    this.restarter.died();
  }

  /** The reserve cannot be kept alive: off for good, and the pool to 'low'. */
  private giveUp(): void {
    this.off();
    this.fellBack = true;
    this.host.warn(
      `pqmcp: the crypto pool's starvation guard is off: its reserve worker thread died ${RESTARTS + 1} times in a row; the SCHED_IDLE crypto workers are replaced by nice +10 ones (as cryptoWorkerPriority 'low')`,
    );
    this.host.fallBack();
  }

  private off(): void {
    this.state = 'off';
    this.rescues.length = 0;
    this.inFlight.clear();
    this.starvedUntil = Number.NEGATIVE_INFINITY;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.restarter.stop();
  }
}
