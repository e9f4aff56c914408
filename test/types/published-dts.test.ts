/**
 * The published declarations compile in a fresh project with `skipLibCheck: false`, for a
 * consumer that installed only SDK 1.x and for one that installed only SDK 2.x: pqmcp's
 * .d.ts names neither SDK (its MCP shapes are structural, src/transport/mcp-types.ts) and
 * no type package a consumer would not have (`@types/ws` is not needed).
 *
 * The declarations are built the way `npm run build` builds them (tsup), or taken from its
 * dist/ when newer than their sources, into a temp directory laid out as `node_modules/pqmcp`
 * would be after `npm install pqmcp`; pqmcp's runtime dependencies and the chosen SDK (or
 * none) are linked from this repository's node_modules, and nothing else is (no @types/ws).
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST, builtAfterSources } from '../helpers/built.js';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const TSUP = join(ROOT, 'node_modules/tsup/dist/cli-default.js');
const tmp = mkdtempSync(join(tmpdir(), 'pqmcp-dts-'));
const PKG = join(tmp, 'pqmcp');

const TSCONFIG = {
  compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, noEmit: true, types: ['node'] },
  files: ['index.ts'],
};

/** What each consumer writes: the README's two lines on each side, auth in the handler. */
const SOURCES = {
  sdk1: `
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { PqmcpClientTransport, serveMcp } from 'pqmcp';
import type { PqmcpClientOptions, PqmcpServerOptions } from 'pqmcp';
export async function main(server: PqmcpServerOptions, client: PqmcpClientOptions): Promise<string | undefined> {
  const listener = await serveMcp(server, (peer) => {
    const mcp = new McpServer({ name: 'tools', version: '1.0.0' });
    mcp.registerTool('whoami', {}, async (extra) => ({ content: [{ type: 'text', text: \`\${peer.agentId} \${extra.authInfo?.clientId ?? ''}\` }] }));
    return mcp;
  });
  const c = new Client({ name: 'agent', version: '1.0.0' });
  const transport = new PqmcpClientTransport(listener.url, { ...client, webSocketOptions: { handshakeTimeout: 5000 } });
  await c.connect(transport);
  return transport.peer?.agentId;
}
`,
  sdk2: `
import { Client } from '@modelcontextprotocol/client';
import { McpServer } from '@modelcontextprotocol/server';
import { PqmcpClientTransport, serveMcp } from 'pqmcp';
import type { PqmcpClientOptions, PqmcpServerOptions } from 'pqmcp';
export async function main(server: PqmcpServerOptions, client: PqmcpClientOptions): Promise<string | undefined> {
  const listener = await serveMcp(server, (peer) => {
    const mcp = new McpServer({ name: 'tools', version: '1.0.0' });
    mcp.registerTool('whoami', {}, async (ctx) => ({ content: [{ type: 'text', text: \`\${peer.agentId} \${ctx.http?.authInfo?.clientId ?? ''}\` }] }));
    return mcp;
  });
  const c = new Client({ name: 'agent', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
  const transport = new PqmcpClientTransport(listener.url, client);
  await c.connect(transport);
  return transport.peer?.agentId;
}
`,
} as const;

const SDK_PACKAGES = { sdk1: ['sdk'], sdk2: ['client', 'server'], none: [] } as const;

function link(consumer: string, name: string): void {
  const to = join(consumer, 'node_modules', name);
  mkdirSync(dirname(to), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules', name), to, 'dir');
}

function consumer(kind: keyof typeof SDK_PACKAGES, source: string, label: string = kind): string {
  const dir = join(tmp, label);
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  // pqmcp as npm would lay it out (a copy: a link would resolve its imports from this repo).
  cpSync(PKG, join(dir, 'node_modules/pqmcp'), { recursive: true });
  const deps = Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies);
  for (const dep of [...deps, '@types/node', ...SDK_PACKAGES[kind].map((p) => `@modelcontextprotocol/${p}`)]) link(dir, dep);
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG));
  writeFileSync(join(dir, 'index.ts'), source);
  return dir;
}

async function tsc(dir: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout } = await run(process.execPath, [TSC, '-p', dir], { cwd: dir, maxBuffer: 16 << 20 });
    return { code: 0, output: stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: e.code ?? 1, output: e.stdout ?? String(err) };
  }
}

beforeAll(async () => {
  // The declarations exactly as `npm run build` makes them (tsup, both module formats).
  // `npm run build`'s when they are newer than everything they are made from (CI builds just
  // before it tests): the ~12 s CPU of making them again is saved.
  const built = builtAfterSources(['index.d.ts', 'index.d.cts']) ? DIST : undefined;
  if (built) {
    mkdirSync(join(PKG, 'dist'), { recursive: true });
    for (const f of ['index.d.ts', 'index.d.cts']) cpSync(join(built, f), join(PKG, 'dist', f));
  } else {
    await run(process.execPath, [TSUP, 'src/index.ts', '--no-config', '--dts-only', '--format', 'esm,cjs', '--target', 'node20', '-d', join(PKG, 'dist')], {
      cwd: ROOT,
      maxBuffer: 16 << 20,
    });
  }
  cpSync(join(ROOT, 'package.json'), join(PKG, 'package.json'));
}, 180_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the published .d.ts in a fresh project (skipLibCheck: false)', () => {
  it('names neither SDK nor ws', () => {
    const dts = readFileSync(join(PKG, 'dist/index.d.ts'), 'utf8');
    const imported = [...dts.matchAll(/^(?:import|export)\b[^\n]*from '([^']+)'/gm)].map((m) => m[1]);
    expect(imported.length).toBeGreaterThan(0);
    expect(imported.filter((m) => !m!.startsWith('node:'))).toEqual([]);
  });

  it('compiles for a 1.x-only and a 2.x-only consumer; with no SDK, only the misuse is an error', async () => {
    const [one, two, wrong] = await Promise.all([
      tsc(consumer('sdk1', SOURCES.sdk1)),
      tsc(consumer('sdk2', SOURCES.sdk2)),
      // The control, with no SDK installed at all: pqmcp's declarations still compile, and
      // its types are real (not any), so a wrong call is reported, in the consumer's file only.
      tsc(consumer('none', `import { PqmcpClientTransport } from 'pqmcp';\nexport const bad = new PqmcpClientTransport(42, { allowAnyServer: 'yes' });\n`)),
    ]);
    expect(one.output).toBe('');
    expect(one.code).toBe(0);
    expect(two.output).toBe('');
    expect(two.code).toBe(0);
    expect(wrong.code).not.toBe(0);
    expect(wrong.output).toMatch(/index\.ts\(\d+,\d+\): error TS2345/);
    expect(wrong.output).not.toMatch(/node_modules/);
  }, 300_000);
});
