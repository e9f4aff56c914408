/**
 * Where a crypto worker thread comes from when the library runs from its TypeScript sources
 * (crypto-threads.ts): the bundle of crypto-worker.ts that the test run builds
 * (PQMCP_SOURCE_CRYPTO_WORKER, test/helpers/worker-bundle.ts), or, without it, the source
 * through tsx. Either way the thread holds the key and signs: a real job, verified.
 */
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createNativeBackend } from '../../src/crypto/native.js';
import { compositeVerify } from '../../src/crypto/composite.js';
import type { CryptoResult } from '../../src/handshake/types.js';
import { startWorker, threadRunner } from '../../src/transport/crypto-threads.js';
import { agent } from '../helpers/identities.js';

const ENV = 'PQMCP_SOURCE_CRYPTO_WORKER';
const backend = createNativeBackend();
const key = () => agent('agent://pqmcp-test/threads').keyPair;
const bundle = process.env[ENV];
afterEach(() => {
  if (bundle === undefined) delete process.env[ENV];
  else process.env[ENV] = bundle;
});

/** Start a thread as the pool does and have it sign; true when the signature verifies. */
async function signs(): Promise<boolean> {
  const k = key();
  const thread = await startWorker('native', k.seed, 'low', undefined);
  const runner = threadRunner(thread, 'worker', { free: () => {}, died: () => {} });
  try {
    const message = new TextEncoder().encode('from a worker thread');
    const context = new TextEncoder().encode('ctx');
    const r = (await runner.run({ op: 'sign', message, context })) as Extract<CryptoResult, { op: 'sign' }>;
    return compositeVerify(backend, k.publicKey, message, r.signature, context);
  } finally {
    await runner.terminate();
  }
}

describe('crypto worker threads from the sources', { timeout: 30_000 }, () => {
  it('the test run names a bundle of the worker, built for this run, and a thread started from it signs', async () => {
    expect(bundle).toMatch(/[\\/]node_modules[\\/]\.cache[\\/]pqmcp-test-worker-[^\\/]+[\\/]crypto-worker\.js$/);
    expect(existsSync(bundle!)).toBe(true);
    expect(await signs()).toBe(true);
  });

  it('the file named is what starts: a bundle that is not there fails the start', async () => {
    process.env[ENV] = `${bundle}.missing.js`;
    await expect(startWorker('native', key().seed, 'low', undefined)).rejects.toThrow();
  });

  it('without it, a thread starts from the source through tsx and signs the same', async () => {
    delete process.env[ENV];
    expect(await signs()).toBe(true);
  });
});
