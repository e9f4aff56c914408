/**
 * `pqmcp connect --help` (and a bad connect flag) stays as light as `pqmcp --help`: desktop
 * MCP clients spawn `pqmcp connect` once per session. Read from the real import graph
 * (esbuild's metafile): connect.ts reaches no crypto, handshake, transport or WebSocket code
 * through static imports; the bridge (bridge.ts) is reached only through a dynamic import.
 * And the split loses nothing: the flags are still checked before anything is loaded.
 */
import { build } from 'esbuild';
import type { Metafile } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/run.js';
import { CONNECT_USAGE } from '../../src/cli/connect.js';
import type { Output } from '../../src/cli/output.js';

async function graph(entry: string): Promise<Metafile> {
  const result = await build({ entryPoints: [entry], bundle: true, write: false, metafile: true, platform: 'node', format: 'esm', packages: 'external', logLevel: 'silent' });
  return result.metafile;
}

/** Files and external packages reachable from `entry` through static imports only. */
function staticReach(meta: Metafile, entry: string): { files: Set<string>; externals: Set<string>; dynamic: Set<string> } {
  const files = new Set<string>([entry]);
  const externals = new Set<string>();
  const dynamic = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    for (const imp of meta.inputs[file]?.imports ?? []) {
      if (imp.kind === 'dynamic-import') dynamic.add(imp.path);
      else if (imp.external) externals.add(imp.path);
      else if (!files.has(imp.path)) {
        files.add(imp.path);
        queue.push(imp.path);
      }
    }
  }
  return { files, externals, dynamic };
}

function capture(): Output & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (s: string) => stdout.push(s), err: (s: string) => stderr.push(s) } as Output & { stdout: string[]; stderr: string[] };
}

describe('pqmcp connect: light until its flags are valid', () => {
  it('connect.ts statically reaches only the flag parser, its errors and the id rules', async () => {
    const meta = await graph('src/cli/connect.ts');
    const { files, externals, dynamic } = staticReach(meta, 'src/cli/connect.ts');
    const heavy = [...files].filter((f) => /^src\/(crypto|handshake|transport|session|record|wire|resumption|pins|audit|policy)\//.test(f) || (f.startsWith('src/identity/') && f !== 'src/identity/rules.ts'));
    expect(heavy).toEqual([]);
    expect([...files].filter((f) => f.startsWith('src/cli/')).sort()).toEqual(['src/cli/args.ts', 'src/cli/connect.ts', 'src/cli/output.ts']);
    expect([...externals].filter((e) => !e.startsWith('node:'))).toEqual([]);
    expect([...dynamic]).toContain('src/cli/bridge.ts');
  });

  it('the bridge still reaches the transport and the crypto selector (the split is real)', async () => {
    const meta = await graph('src/cli/bridge.ts');
    const { files, externals } = staticReach(meta, 'src/cli/bridge.ts');
    expect(files.has('src/transport/client.ts')).toBe(true);
    expect(files.has('src/crypto/select.ts')).toBe(true);
    expect([...externals]).toContain('ws');
  });

  it('connect --help prints the usage; bad flags fail with exit 2 before anything is loaded', async () => {
    const help = capture();
    expect(await run(['connect', '--help'], help)).toBe(0);
    expect(help.stdout.join('\n')).toBe(`usage: ${CONNECT_USAGE}`);
    expect(CONNECT_USAGE).toContain('--tickets <file>');
    const cases: [string[], RegExp][] = [
      [['connect', 'http://x/', '--identity', 'k', '--trust', 't', '--expect', 'agent://a/b'], /must start with ws:\/\//],
      [['connect', 'ws://x/', '--identity', 'k', '--trust', 't'], /--expect <server agent id> \(or --expect-prefix <id prefix>\) is required/],
      [['connect', 'ws://x/', '--identity', 'k', '--trust', 't', '--expect-prefix', 'agent://a/', '--any-server'], /--expect \/ --expect-prefix or --any-server, not both/],
      [['connect', 'ws://x/', '--identity', 'k', '--trust', 't', '--expect', 'not an id'], /--expect/],
      [['connect', 'ws://x/', '--identity', 'k', '--trust', 't', '--any-server', '--backend', 'fast'], /--backend must be auto, native or noble/],
      [['connect', 'ws://x/', '--identity', 'k', '--trust', 't', '--any-server', '--drain-timeout', '0'], /--drain-timeout/],
      [['connect', 'ws://x/', '--identity', 'k', '--trust', 't', '--any-server', '--bogus'], /bogus/],
    ];
    for (const [argv, message] of cases) {
      const out = capture();
      expect(await run(argv, out), argv.join(' ')).toBe(2);
      expect(out.stderr.join('\n')).toMatch(message);
    }
  });
});
