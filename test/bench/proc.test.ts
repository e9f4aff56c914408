/**
 * How a benchmark process is started (benchmarks/lib/proc.ts scriptArgs): from this run's
 * bundle when there is one (benchmarks/lib/bundle.ts sets PQMCP_BENCH_BUNDLE), else through
 * tsx; a script the bundle lacks is an error, not a silent tsx start from a bundled process
 * (which has no tsx to start it with).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { BUNDLE_ENV, scriptArgs } from '../../benchmarks/lib/proc.js';

const saved = { bundle: process.env[BUNDLE_ENV], flags: process.env.PQMCP_BENCH_NODE_FLAGS };
afterEach(() => {
  for (const [name, value] of [[BUNDLE_ENV, saved.bundle], ['PQMCP_BENCH_NODE_FLAGS', saved.flags]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe('benchmarks/lib/proc.ts scriptArgs', () => {
  it('without a bundle: the script under benchmarks/ through tsx, then PQMCP_BENCH_NODE_FLAGS', () => {
    delete process.env[BUNDLE_ENV];
    process.env.PQMCP_BENCH_NODE_FLAGS = '--expose-gc  --cpu-prof';
    const args = scriptArgs('server.ts');
    expect(args).toEqual(['--import', expect.stringMatching(/^file:.*\/tsx\//), '--expose-gc', '--cpu-prof', fileURLToPath(new URL('../../benchmarks/server.ts', import.meta.url))]);
  });

  it("with a bundle: the bundle's script with plain node; a script not in it is an error", () => {
    const dir = mkdtempSync(join(tmpdir(), 'pqmcp-proc-test-'));
    try {
      writeFileSync(join(dir, 'client.js'), '');
      process.env[BUNDLE_ENV] = dir;
      process.env.PQMCP_BENCH_NODE_FLAGS = '--expose-gc';
      expect(scriptArgs('client.ts')).toEqual(['--expose-gc', join(dir, 'client.js')]);
      expect(() => scriptArgs('flooder.ts')).toThrow(`flooder.ts is not in this run's benchmark bundle (${dir})`);
      // Another checkout's server (flood-ab.ts) is never taken from this run's bundle.
      writeFileSync(join(dir, 'server.js'), '');
      expect(() => scriptArgs('../../other/benchmarks/server.ts')).toThrow(/is not in this run's benchmark bundle/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
