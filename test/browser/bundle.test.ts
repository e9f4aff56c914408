/**
 * The browser entry's budget and graph: bundled for browsers and minified (esbuild, as an
 * application's bundler would), the client with the portable backend stays within 120 KB
 * gzipped, and nothing in its graph is a Node built-in or a Node-only module of pqmcp.
 * docs/usage.md ("In a browser") reports the size measured here.
 */
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/vectors.js';

const BUDGET_GZIP_BYTES = 120 * 1024;

async function bundle(contents: string): Promise<{ gzip: number; minified: number; inputs: string[] }> {
  const result = await build({
    stdin: { contents, resolveDir: repoRoot, loader: 'ts' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const out = result.outputFiles[0]!.contents;
  // Modules that put code into the output (a module whose code was all shaken out does not count).
  const used = Object.entries(Object.values(result.metafile.outputs)[0]!.inputs).filter(([, v]) => v.bytesInOutput > 0).map(([k]) => k);
  return { gzip: gzipSync(out, { level: 9 }).length, minified: out.length, inputs: [...new Set([...Object.keys(result.metafile.inputs).filter((i) => i.startsWith('node:')), ...used])] };
}

describe('browser bundle', () => {
  it('the whole pqmcp/browser entry fits the budget and has no Node built-ins or Node-only modules', async () => {
    const { gzip, minified, inputs } = await bundle(`export * from './src/browser/index.ts';`);
    console.log(`pqmcp/browser: ${minified} bytes minified, ${gzip} bytes gzipped (budget ${BUDGET_GZIP_BYTES})`);
    expect(gzip).toBeLessThanOrEqual(BUDGET_GZIP_BYTES);
    expect(inputs.filter((i) => i.startsWith('node:'))).toEqual([]);
    // (ws-dialer.ts is the Node client's default and is bundled, never called: its `ws` is the stub.)
    const nodeOnly = ['src/transport/server.ts', 'src/transport/server-options.ts', 'src/transport/own-port.ts', 'src/identity/files.ts', 'src/cli/', 'node_modules/ws/lib/'];
    for (const bad of nodeOnly) expect(inputs.filter((i) => i.includes(bad)), bad).toEqual([]);
    // `ws` resolves to its browser stub, never its Node implementation.
    expect(inputs.filter((i) => i.includes('node_modules/ws/'))).toEqual(['node_modules/ws/browser.js']);
  });

  it('the client alone is smaller than the whole entry (the entry tree-shakes)', async () => {
    const all = await bundle(`export * from './src/browser/index.ts';`);
    const client = await bundle(`import { PqmcpClientTransport } from './src/browser/index.ts'; console.log(PqmcpClientTransport);`);
    expect(client.inputs.some((i) => i.endsWith(path.join('src', 'browser', 'key-store.ts')))).toBe(false);
    expect(client.minified).toBeLessThan(all.minified);
  });
});
