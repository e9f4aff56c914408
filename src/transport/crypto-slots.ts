/**
 * The crypto pool's ordinary worker slots (crypto-pool.ts; not the guard's reserve): each
 * worker thread that started with the pool fills a slot, which keeps its share of the
 * handshake crypto served when its thread dies.
 *
 * Policy:
 * - A slot's thread that dies is replaced at once by an inline stand-in (the event loop,
 *   one job per turn), and its thread is started again after a backoff (crypto-restart.ts,
 *   the budget the guard's reserve has: 0.25 s, 1 s, 4 s, at most 3 in a row, a thread that
 *   lived a minute starts the count again), with the priority it had: SCHED_IDLE while the
 *   guard is on (crypto-guard.ts), else nice +10. The new thread replaces the stand-in
 *   (`fill`), which stops once its job, if any, is answered.
 * - When a slot's restarts are spent, its stand-in stays for the pool's life (a thread
 *   that dies on start must not cost a key derivation every few seconds). The first such
 *   slot says so once per pool (process warning PQMCP_CRYPTO_POOL), and the stats count
 *   them (`slotsGivenUp`; `workerRestarts`).
 * - The guard's fallback (its reserve could not be kept alive) gives each SCHED_IDLE slot a
 *   nice +10 thread, which replaces the idle one (that one stops once its job is answered).
 *   A start that fails counts as a death of the slot: a stand-in, and its restart budget.
 *
 * Sharp edges:
 * - Workers that failed to start with the pool get no slot: they are inline for good (a
 *   start that fails is most likely the host, which a retry would not mend; the pool says
 *   so once, PQMCP_CRYPTO_POOL with the cause). Only threads that started and then died
 *   are restarted.
 * - `starting`: while a replacement is scheduled or starting, a death of the slot's runner
 *   (an idle worker dying while its fallback replacement starts) is covered by it and not
 *   counted again; the replacement then replaces the stand-in, so there is never one
 *   runner too many.
 * - If the guard gives up while a SCHED_IDLE restart is starting, that thread is stopped
 *   and a nice +10 one started instead: no SCHED_IDLE thread without the guard.
 * - Runners, threads and the queue are the pool's: it starts every thread (its `spawn`,
 *   crypto-threads.ts's startWorker, which wipes the main thread's seed copy), adds,
 *   retires and dispatches. This module only decides which runner fills which slot, and
 *   when a slot's thread is started again.
 * - close() stops every slot's restarter; a thread that comes up after close() is stopped
 *   by the pool's `spawn`.
 */
import { Restarter, RESTARTS } from './crypto-restart.js';
import type { Runner, StartedThread, WorkerPriority } from './crypto-threads.js';

/** What the slots need of the pool. */
export interface SlotHost {
  now(): number;
  closed(): boolean;
  /** A dead worker's first restart backoff (crypto-restart.ts; undefined: its default). */
  restartBackoffMs?: number | undefined;
  /** The starvation guard is on (a restarted SCHED_IDLE worker needs it). */
  guardActive(): boolean;
  /** Start a worker thread (startWorker); rejects when none starts, or the pool closed meanwhile. */
  spawn(priority: WorkerPriority): Promise<StartedThread>;
  /** A runner over a started thread (the pool counts it; an 'idle' one is watched by the guard). */
  threadRunner(thread: StartedThread, role: 'worker' | 'idle'): Runner;
  /** A runner on the event loop (a stand-in). */
  inlineRunner(): Runner;
  /** `runner` joins the pool's runners, free. */
  add(runner: Runner): void;
  /** `runner` takes no more jobs and stops, now or once its job is answered. */
  retire(runner: Runner): void;
  /** Dispatch what can run now. */
  pump(): void;
  /** The one operator-visible line (process warning PQMCP_CRYPTO_POOL). */
  warn(text: string): void;
}

/**
 * One ordinary worker's place in the pool: the runner filling it now (its thread, or an
 * inline stand-in while a replacement starts and once its restarts are spent), and its
 * restart budget (crypto-restart.ts).
 */
interface Slot {
  runner: Runner;
  /** Its priority as started: 'idle' (SCHED_IDLE granted; again while the guard is on) or 'low'. */
  readonly priority: WorkerPriority;
  readonly restarter: Restarter;
  /** A replacement is scheduled or starting (a death meanwhile is covered by it, not counted again). */
  starting: boolean;
}

export class WorkerSlots {
  /** The slots, by the runner filling each now. */
  private readonly slots = new Map<Runner, Slot>();
  /** Dead worker threads started again. */
  restarts = 0;
  /** Slots whose restarts were spent (inline for the pool's life). */
  givenUp = 0;

  constructor(private readonly host: SlotHost) {}

  /** `runner` (a worker thread started with the pool) fills a slot of its own, restarted when it dies. */
  add(runner: Runner): Runner {
    const slot: Slot = {
      runner,
      priority: runner.role === 'idle' ? 'idle' : 'low',
      starting: false,
      restarter: new Restarter(
        { now: () => this.host.now(), closed: () => this.host.closed(), restartBackoffMs: this.host.restartBackoffMs },
        () => this.restart(slot),
        () => this.giveUp(slot),
      ),
    };
    this.slots.set(runner, slot);
    return runner;
  }

  /**
   * `runner`'s thread died (the pool has removed it; not a retiring one): `standIn` takes
   * its slot at once, and the slot's thread comes back after the restart budget's backoff,
   * unless a replacement is already coming (the guard's fallback). The pool adds `standIn`.
   */
  died(runner: Runner, standIn: Runner): void {
    const slot = this.slots.get(runner);
    if (!slot) return;
    this.slots.delete(runner);
    slot.runner = standIn;
    this.slots.set(standIn, slot);
    if (!slot.starting) {
      slot.starting = true;
      slot.restarter.died();
    }
  }

  /**
   * The guard gave up (its reserve could not be kept alive): each SCHED_IDLE worker's slot
   * gets a nice +10 thread, which replaces it (the idle worker stops once its job is
   * answered; meanwhile it serves as before). A slot whose replacement is already coming
   * (its worker died) gets it at nice +10. A start that fails counts as a death of the slot:
   * an inline stand-in, and the slot's restart budget.
   */
  fallBack(): void {
    for (const slot of new Set(this.slots.values())) {
      if (slot.runner.role !== 'idle' || slot.starting) continue;
      slot.starting = true;
      this.host.spawn('low').then(
        (thread) => this.fill(slot, this.host.threadRunner(thread, 'worker')),
        () => {
          if (this.host.closed()) return;
          this.fill(slot, this.host.inlineRunner());
          slot.starting = true;
          slot.restarter.died();
        },
      );
    }
    this.host.pump();
  }

  /** No more restarts (the pool closed). */
  close(): void {
    for (const slot of this.slots.values()) slot.restarter.stop();
  }

  /**
   * Start `slot`'s thread again (the restarter's backoff has passed): SCHED_IDLE as before
   * while the guard is on, else nice +10 (a restart that the guard's fallback overtook, or a
   * pool without the guard). Rejects when none starts (a death, for the budget).
   */
  private async restart(slot: Slot): Promise<void> {
    const idle = () => slot.priority === 'idle' && this.host.guardActive();
    let thread = await this.host.spawn(idle() ? 'idle' : 'low');
    // The guard gave up while it started: no SCHED_IDLE thread now (nothing would rescue its jobs).
    if (thread.idle && !idle()) {
      void thread.worker.terminate();
      thread = await this.host.spawn('low');
    }
    this.restarts++;
    this.fill(slot, this.host.threadRunner(thread, thread.idle ? 'idle' : 'worker'));
  }

  /** `slot` cannot be kept alive: its inline stand-in stays for the pool's life; the first such slot warns. */
  private giveUp(slot: Slot): void {
    slot.starting = false;
    if (this.givenUp++ > 0) return;
    this.host.warn(
      `pqmcp: a crypto worker thread died ${RESTARTS + 1} times in a row; its share of handshake crypto runs on the event loop for the pool's life (stats: slotsGivenUp)`,
    );
  }

  /** `runner` fills `slot` now; the runner it replaces stops (at once, or once its job is answered). */
  private fill(slot: Slot, runner: Runner): void {
    const old = slot.runner;
    this.slots.delete(old);
    slot.runner = runner;
    slot.starting = false;
    this.slots.set(runner, slot);
    this.host.add(runner);
    this.host.retire(old);
    this.host.pump();
  }
}
