/**
 * Node 20's V8 (11.x) dies in its deoptimizer when optimized code that inlined a JS-to-Wasm
 * call into Cedar deoptimizes lazily; two policy engines deciding in turn in one process
 * reproduce it (fixtures/two-engines.ts died with SIGTRAP within 10 s every time before
 * loadCedar() turned that inlining off). Runs on every runtime: the process must survive.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('two Cedar policy engines in one process', () => {
  it('decide 30,000 requests without a V8 fatal error', () => {
    const child = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, 'fixtures/two-engines.ts'), '5000', '3'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(child.stderr).not.toMatch(/Fatal error/);
    expect(child.signal).toBeNull();
    expect(child.status).toBe(0);
    expect(child.stdout.trim()).toBe('decided 30000');
  }, 150_000);
});
