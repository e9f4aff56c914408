/**
 * Child processes for the benchmarks: every server (and every measuring client) runs in a
 * process of its own, started as `node --import tsx <script>` with an IPC channel, and is
 * killed on every exit path of the parent. Under benchmarks/run.ts the scripts are bundled
 * once per run (lib/bundle.ts) and started as `node <bundle>/<script>.js` instead.
 *
 * Protocol on the IPC channel (structured clone, so Uint8Arrays pass as they are):
 *   parent -> child  { id, cmd, args }
 *   child  -> parent { id, ok: true, result } | { id, ok: false, error }
 *
 * Sharp edges:
 * - A child exits on its own when the IPC channel closes (its parent died), so no
 *   orphaned server keeps a port or a core busy.
 * - Every request has a deadline; a child that misses it is killed and the request rejects.
 * - PQMCP_BENCH_NODE_FLAGS (space-separated) is added to every child's Node flags (after
 *   the tsx loader, if any), e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile servers and
 *   clients.
 * - Children inherit stderr (their failures are visible) but not stdout (the runner's
 *   stdout stays a clean report).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Set (to the bundle's directory) by lib/bundle.ts for the run and every process it starts. */
export const BUNDLE_ENV = 'PQMCP_BENCH_BUNDLE';

const live = new Set<ChildProcess>();
let hooked = false;

function killAll(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
  live.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

export interface WorkerOptions {
  /** Extra environment (merged over this process's). */
  env?: Record<string, string | undefined>;
  /** Extra Node flags, e.g. --expose-gc. */
  nodeFlags?: string[];
  /** Deadline for each request, ms. */
  requestTimeoutMs?: number;
}

export interface Worker {
  readonly pid: number;
  request<T = unknown>(cmd: string, args?: unknown, timeoutMs?: number): Promise<T>;
  /** Ask the child to exit, SIGKILL it after 5 s, wait for the exit. Idempotent. */
  kill(): Promise<void>;
}

/** The tsx loader as a URL Node accepts for --import, whatever the cwd. */
function tsxImport(): string {
  return import.meta.resolve('tsx');
}

/**
 * Node's arguments to run `script` (a path under benchmarks/): its bundle when this run has
 * one (a bundled process has no tsx, so nothing else can start from it), else the script
 * through tsx. Then PQMCP_BENCH_NODE_FLAGS.
 */
export function scriptArgs(script: string): string[] {
  const extra = (process.env.PQMCP_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const bundle = process.env[BUNDLE_ENV];
  if (bundle) {
    const path = join(bundle, script.replace(/\.ts$/, '.js'));
    if (script.includes('/') || !existsSync(path)) throw new Error(`${script} is not in this run's benchmark bundle (${bundle})`);
    return [...extra, path];
  }
  return ['--import', tsxImport(), ...extra, fileURLToPath(new URL(`../${script}`, import.meta.url))];
}

/** Start `script` (a path under benchmarks/, relative to this repo) in a child Node with IPC. */
export function spawnWorker(script: string, options: WorkerOptions = {}): Promise<Worker> {
  hookExit();
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), ...scriptArgs(script)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    serialization: 'advanced',
    env: { ...process.env, ...options.env },
  });
  live.add(child);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 1;
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = true;
      live.delete(child);
      for (const p of pending.values()) {
        clearTimeout(p.timer);
        p.reject(new Error(`${script} exited (code ${code}, signal ${signal}) with a request pending`));
      }
      pending.clear();
      resolve();
    }),
  );
  child.on('message', (raw) => {
    const msg = raw as { id?: number; ok?: boolean; result?: unknown; error?: string };
    if (typeof msg.id !== 'number') return;
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(new Error(`${script}: ${msg.error ?? 'failed'}`));
  });
  const worker: Worker = {
    pid: child.pid ?? -1,
    request<T>(cmd: string, args?: unknown, timeoutMs = options.requestTimeoutMs ?? 120_000): Promise<T> {
      if (exited) return Promise.reject(new Error(`${script} is not running`));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${script}: '${cmd}' timed out after ${timeoutMs} ms`));
          void worker.kill();
        }, timeoutMs);
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
        child.send({ id, cmd, args });
      });
    },
    async kill() {
      if (!exited) {
        // Ask first (a clean exit writes --cpu-prof profiles), then insist.
        child.send({ id: 0, cmd: 'quit' }, () => {});
        const forced = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exit;
        clearTimeout(forced);
      }
      await exit;
    },
  };
  // The child answers 'ping' once its handlers are installed.
  return worker.request('ping', undefined, 60_000).then(() => worker);
}

/** A request handler; its argument type is the handler's own (checked at the call site). */
export type Handler = (args: never) => unknown;

/** Child side: answer requests with `handlers`; exit when the parent goes away. */
export function serveRequests(handlers: Record<string, Handler>): void {
  process.on('disconnect', () => process.exit(0));
  process.on('message', (raw) => {
    const msg = raw as { id: number; cmd: string; args: unknown };
    void (async () => {
      try {
        if (msg.cmd === 'ping') return process.send?.({ id: msg.id, ok: true, result: 'pong' });
        if (msg.cmd === 'quit') return setImmediate(() => process.exit(0));
        const handler = handlers[msg.cmd];
        if (!handler) throw new Error(`unknown command ${msg.cmd}`);
        const result = await handler(msg.args as never);
        process.send?.({ id: msg.id, ok: true, result });
      } catch (err) {
        const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
        process.send?.({ id: msg.id, ok: false, error });
      }
    })();
  });
}
