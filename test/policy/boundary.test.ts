/**
 * The layer boundary of pqmcp/policy, read from the real import graph (esbuild's metafile):
 * `import 'pqmcp'` never reaches src/policy/ or the Cedar engine; the CLI reaches them only
 * through dynamic imports (so `pqmcp --help` stays fast); src/policy/ imports only inward
 * (transport's hook types, identity, errors), never the CLI; the shipped schema file is the
 * schema the code validates against.
 */
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';
import type { Metafile } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { POLICY_SCHEMA } from '../../src/policy/index.js';

async function graph(entry: string): Promise<Metafile> {
  const result = await build({ entryPoints: [entry], bundle: true, write: false, metafile: true, platform: 'node', format: 'esm', packages: 'external', logLevel: 'silent' });
  return result.metafile;
}

/** Files reachable from `entry` through static imports only. */
function staticReach(meta: Metafile, entry: string): Set<string> {
  const seen = new Set<string>([entry]);
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    for (const imp of meta.inputs[file]?.imports ?? []) {
      if (imp.kind === 'dynamic-import' || imp.external || seen.has(imp.path)) continue;
      seen.add(imp.path);
      queue.push(imp.path);
    }
  }
  return seen;
}

describe('pqmcp/policy boundary', () => {
  it("import 'pqmcp' reaches neither src/policy/ nor the Cedar engine", async () => {
    const meta = await graph('src/index.ts');
    const inputs = Object.keys(meta.inputs);
    expect(inputs.some((f) => f.startsWith('src/transport/'))).toBe(true);
    expect(inputs.filter((f) => f.startsWith('src/policy/'))).toEqual([]);
    const externals = Object.values(meta.inputs).flatMap((i) => i.imports.filter((x) => x.external).map((x) => x.path));
    expect(externals.filter((p) => p.includes('cedar'))).toEqual([]);
  });

  it('the CLI loads the policy layer only on demand', async () => {
    const meta = await graph('src/cli/main.ts');
    const reach = [...staticReach(meta, 'src/cli/main.ts')];
    expect(reach).toContain('src/cli/run.ts');
    expect(reach.filter((f) => f.startsWith('src/policy/'))).toEqual([]);
  });

  it('src/policy/ imports only inward layers', async () => {
    const meta = await graph('src/policy/index.ts');
    const inputs = Object.keys(meta.inputs).filter((f) => f.startsWith('src/'));
    expect(inputs.filter((f) => !/^src\/(policy|transport|identity|errors|bytes|timer-limit|crypto|wire|handshake|record|session)[/.]/.test(f))).toEqual([]);
    expect(inputs.filter((f) => f.startsWith('src/cli/'))).toEqual([]);
    // The Cedar engine is imported dynamically, by a name esbuild cannot follow.
    const cedar = meta.inputs['src/policy/cedar.ts']!.imports.filter((i) => i.path.includes('cedar-wasm'));
    expect(cedar).toEqual([]);
  });

  it('schema/mcp.cedarschema is the schema policies are validated against', () => {
    expect(readFileSync('schema/mcp.cedarschema', 'utf8')).toBe(POLICY_SCHEMA);
  });
});
