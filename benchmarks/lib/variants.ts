/**
 * One process per compared variant. Each variant of a suite (plain ws, wss, pqmcp, ...)
 * runs in a measuring process of its own (benchmarks/client.ts) with a server process of
 * its own, so the variants share no heap, no garbage collector and no JIT state (a hot loop
 * such as ws's masking runs at different speeds depending on what else fed it types). The
 * runner drives them one measurement at a time, in an order rotated every round, so machine
 * drift still hits every variant alike.
 *
 * Worker side: a suite module exports an opener `(ctx, variant, options) => VariantSession`;
 * client.ts keeps the one session of its process and forwards `measure` to it.
 */
import type { SuiteContext } from './context.js';
import { spawnWorker } from './proc.js';
import type { Worker } from './proc.js';

export type SuiteName = 'handshake' | 'throughput' | 'mcp';

/** What a variant's measuring process holds between measurements. */
export interface VariantSession {
  details: Record<string, string>;
  measure(args: unknown): Promise<unknown>;
  close(): Promise<void>;
}

export interface SetupRequest {
  suite: SuiteName;
  variant: string;
  context: SuiteContext;
  options?: unknown;
}

export interface VariantProcess {
  readonly variant: string;
  readonly details: Record<string, string>;
  measure<T>(args: unknown, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
}

/** Start the measuring process for one variant and let it connect (and warm up). */
export async function startVariant(
  suite: SuiteName,
  variant: string,
  ctx: SuiteContext,
  options: { env?: Record<string, string | undefined>; setup?: unknown; timeoutMs?: number } = {},
): Promise<VariantProcess> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const worker: Worker = await spawnWorker('client.ts', { env: options.env ?? {}, requestTimeoutMs: timeoutMs });
  try {
    const request: SetupRequest = { suite, variant, context: ctx, options: options.setup };
    const details = await worker.request<Record<string, string>>('setup', request, timeoutMs);
    return {
      variant,
      details,
      measure: <T>(args: unknown, t = timeoutMs) => worker.request<T>('measure', args, t),
      async stop() {
        await worker.request('teardown', undefined, 15_000).catch(() => {});
        await worker.kill();
      },
    };
  } catch (err) {
    await worker.kill();
    throw err;
  }
}

/**
 * Start every variant (one after another, so start-up costs do not overlap), run `fn`, stop
 * them all. A smoke run, whose figures mean nothing, starts them all at once: its time is
 * mostly process start-ups (tsx, imports, the server's), which then overlap their waits.
 */
export async function withVariants<T>(
  suite: SuiteName,
  variants: readonly string[],
  ctx: SuiteContext,
  options: { env?: Record<string, string | undefined>; setup?: unknown; timeoutMs?: number },
  fn: (processes: Map<string, VariantProcess>) => Promise<T>,
): Promise<T> {
  const processes = new Map<string, VariantProcess>();
  const start = async (v: string) => void processes.set(v, await startVariant(suite, v, ctx, options));
  try {
    if (ctx.mode === 'smoke') {
      const failed = (await Promise.allSettled(variants.map(start))).find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    } else for (const v of variants) await start(v);
    return await fn(processes);
  } finally {
    await Promise.all([...processes.values()].map((p) => p.stop()));
  }
}
