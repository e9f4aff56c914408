/**
 * What every suite receives from the runner, and the server process a suite starts.
 *
 * Modes: `full` (npm run bench: a few minutes), `ci` (npm run bench:ci: short, ratios
 * gated against benchmarks/baseline.json), `smoke` (tiny counts: proves the machinery runs
 * end to end; the numbers mean nothing).
 */
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackendChoice } from '../../src/crypto/select.js';
import type { Endpoint, StartArgs } from '../server.js';
import type { Certificates } from './certs.js';
import type { RuntimeInfo } from './env.js';
import type { PqmcpFixture } from './fixtures.js';
import { spawnWorker } from './proc.js';
import type { Worker } from './proc.js';

export type Mode = 'full' | 'ci' | 'smoke';

export interface SuiteContext {
  mode: Mode;
  fixture: PqmcpFixture;
  /** Absent when openssl is unavailable: the wss variants are then skipped. */
  certs?: Certificates | undefined;
}

export interface ServerProcess {
  worker: Worker;
  ports: Record<string, number>;
  info: RuntimeInfo;
  cpuMicros(): Promise<number>;
  stop(): Promise<void>;
}

export interface ServerOptions {
  backend?: BackendChoice;
  nodeFlags?: string[];
  /** mcp-pqmcp-edge: listener options over its defaults. */
  edgeOptions?: Record<string, unknown>;
  /** Another checkout of this repository whose benchmarks/server.ts (and src/) to run: code A/B (flood-ab.ts, flood-churn.ts). */
  root?: string;
}

/** Start benchmarks/server.ts in its own process with `endpoints` on 127.0.0.1. */
export async function startServer(ctx: SuiteContext, endpoints: Endpoint[], options: ServerOptions = {}): Promise<ServerProcess> {
  const script = options.root === undefined ? 'server.ts' : relative(fileURLToPath(new URL('..', import.meta.url)), resolve(options.root, 'benchmarks/server.ts'));
  const worker = await spawnWorker(script, { nodeFlags: options.nodeFlags ?? [] });
  try {
    const args: StartArgs = { endpoints, fixture: ctx.fixture, ...(ctx.certs ? { certs: ctx.certs } : {}), ...(options.backend ? { backend: options.backend } : {}), ...(options.edgeOptions ? { edgeOptions: options.edgeOptions } : {}) };
    const { ports, info } = await worker.request<{ ports: Record<string, number>; info: RuntimeInfo }>('start', args);
    return {
      worker,
      ports,
      info,
      cpuMicros: () => worker.request<number>('cpu'),
      async stop() {
        await worker.request('stop', undefined, 10_000).catch(() => {});
        await worker.kill();
      },
    };
  } catch (err) {
    await worker.kill();
    throw err;
  }
}

/** performance.now() in ms. */
export const now = (): number => performance.now();

/** Reject if `promise` takes longer than `ms` (every measurement is bounded in time). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
