/**
 * The package as users get it: `npm pack` of the build (dist/), installed from the tarball
 * into a fresh project outside this repository, with only what README and docs/usage.md
 * tell a user to install beside it (the 1.x MCP SDK and zod), and used there by Node itself,
 * the runtime running this test (Node 20 or 24 in CI):
 *
 * - the tarball holds what package.json's `files` promises (dist, docs, schema, README.md),
 *   every path package.json names (main, module, types, bin, each exports target), no CLI
 *   chunk that dist/cli.js does not load (a stale one from an earlier build), and nothing
 *   that must not ship: sources, tests, benchmarks, caches, node_modules, private keys;
 * - `import` and `require` of 'pqmcp', 'pqmcp/policy' and 'pqmcp/browser' resolve to the
 *   installed build and expose the documented names, the same set each way;
 * - node_modules/.bin/pqmcp answers --help and --version, and writes the README quick
 *   start's identities and trust file;
 * - one MCP tool call over pqmcp (a real SDK server behind serveMcp, a real SDK client
 *   through PqmcpClientTransport) from ESM with the CLI's files and from CJS with identities
 *   made in code, its crypto worker threads starting from the installed dist/;
 * - the optional peers (Cedar, OpenTelemetry, SDK 2.x) are not installed, and configuring
 *   what needs them fails with the typed error naming the package to install.
 *
 * Runs on the build only when it is newer than its sources (test/helpers/built.ts): CI
 * builds just before the tests; locally, with a stale or missing dist/, it is skipped with
 * a message (run `npm run build`), and under CI=true that fails instead.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtAfterSources } from '../helpers/built.js';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;

interface PackageJson {
  version: string;
  main: string;
  module: string;
  types: string;
  bin: Record<string, string>;
  exports: Record<string, unknown>;
  files: string[];
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
}

/** Every path package.json names for a user's tools: main, module, types, bin, each exports target. */
function namedPaths(): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') out.push(v.replace(/^\.\//, ''));
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk([PKG.main, PKG.module, PKG.types, PKG.bin, PKG.exports]);
  return [...new Set(out)];
}

/** What `npm run build` writes (tsup.config.ts's entries; not read from package.json, whose paths the tests check). */
const BUILD_FILES = ['index.js', 'index.cjs', 'index.d.ts', 'index.d.cts', 'policy.js', 'policy.cjs', 'policy.d.ts', 'policy.d.cts', 'browser.js', 'browser.d.ts', 'cli.js', 'crypto-worker.js'];
const BUILT = builtAfterSources(BUILD_FILES);
const STALE = 'test/package: dist/ is missing or older than src/: run `npm run build` to test the packed package';
if (!BUILT && process.env['CI']) throw new Error(`${STALE} (CI builds before it tests: .ci/run)`);
if (!BUILT) console.warn(`${STALE}; skipped`);

/** What `npm install <tarball>` beside it brings, as docs/usage.md's Install says (SDK 1.x), at this repository's versions (the npm cache has them). */
const installed = (name: string): string => `${name}@${JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version}`;
const USER_PACKAGES = ['@modelcontextprotocol/sdk', 'zod'];

/** Never shipped: sources, tests, tooling, caches, dependencies, local configuration. */
const NOT_SHIPPED = [/^src\//, /^test\//, /^benchmarks\//, /^scripts\//, /^examples\//, /^\.ci\//, /^\.cache\//, /(^|\/)node_modules\//, /^coverage\//, /(^|\/)\.env/, /(^|\/)\.npmrc$/, /\.tsbuildinfo$/];
/** Private key material: pqmcp's key files by name or content (a real 64-byte seed), PEM private keys. */
const KEY_NAMES = /(\.key\.json|\.pem|\.key|ticket-keys[^/]*\.json)$/;
const KEY_CONTENT = [/"type"\s*:\s*"pqmcp-private-key"[^}]*"seed"\s*:\s*"[A-Za-z0-9_-]{86}"/, /-----BEGIN [A-Z ]*PRIVATE KEY-----/];

/** The temp folder (the tarball, and the user's project in app/), made by beforeAll. */
let tmp = '';
let appDir = '';
let keysDir = '';
let pqmcpBin = '';
/** The tarball's file list. */
let packed: string[] = [];

/**
 * A user's environment: this Node first on PATH (npm and the pqmcp bin's `#!/usr/bin/env node`
 * run on it), and nothing this test run or `npm test` set (npm_* of the repository's
 * npm run, PQMCP_* of the test run, NODE_OPTIONS / NODE_PATH).
 */
function userEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig', 'npm_config_registry', 'npm_config_cafile']);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|PQMCP_|VITEST|NODE_OPTIONS$|NODE_PATH$|INIT_CWD$)/i.test(k) && !keep.has(k.toLowerCase())) continue;
    env[k] = v;
  }
  env['PATH'] = `${dirname(process.execPath)}${delimiter}${process.env['PATH'] ?? ''}`;
  return env;
}

/** Run `file args` in the temp project; resolves with its output (rejects, with both streams in the message, on a non-zero exit). */
async function inApp(file: string, args: string[], options: { cwd?: string; timeout?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(file, args, { cwd: options.cwd ?? appDir, env: userEnv(), timeout: options.timeout ?? 60_000, maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(' ')}: ${e.message}\nstdout: ${e.stdout}\nstderr: ${e.stderr}`);
  }
}

/** `node args` in the temp project, with the Node running this test. */
const node = (args: string[]) => inApp(process.execPath, args);

/** A command that should fail: its exit code and output. */
function failing(file: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(file, args, { cwd, env: userEnv(), timeout: 30_000 }).then(
    (ok) => ({ code: 0, ...ok }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

describe.skipIf(!BUILT)(`the packed package, installed in a fresh project (${process.version})`, () => {
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'pqmcp-packed-'));
    appDir = join(tmp, 'app');
    keysDir = join(appDir, 'keys');
    pqmcpBin = join(appDir, 'node_modules/.bin/pqmcp');
    // The tarball, as `npm publish` would upload it.
    const { stdout } = await inApp('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: ROOT });
    const [info] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const tarball = join(tmp, info!.filename);
    packed = info!.files.map((f) => f.path).sort();
    // A user's project, outside this repository (nothing of it on the resolution path).
    mkdirSync(appDir);
    writeFileSync(join(appDir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    await inApp('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, ...USER_PACKAGES.map(installed)], { timeout: 180_000 });
    for (const f of readdirSync(FIXTURES)) copyFileSync(join(FIXTURES, f), join(appDir, f));
    // README's quick start, with the installed CLI: an issuer, a server agent, a client agent, a trust file.
    mkdirSync(keysDir, { mode: 0o700 });
    for (const args of [
      ['issuer', 'create', '--id', 'issuer://acme'],
      ['agent', 'create', '--id', 'agent://acme/tools'],
      ['credential', 'issue', '--issuer', 'acme.key.json', '--agent', 'tools.pub.json', '--usage', 'server', '--scope', 'mcp:serve', '--valid-for', '1d'],
      ['trust', 'add-issuer', 'trust.json', 'acme.pub.json'],
      ['agent', 'create', '--id', 'agent://acme/ada'],
      ['credential', 'issue', '--issuer', 'acme.key.json', '--agent', 'ada.pub.json', '--scope', 'tools:call', '--valid-for', '1d'],
    ]) {
      await inApp(pqmcpBin, args, { cwd: keysDir });
    }
  }, 300_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('the tarball holds what package.json promises and names', () => {
    const missing = (paths: string[]) => paths.filter((p) => !packed.includes(p));
    // All of docs/ and schema/, as they are in the repository.
    const repoFiles = ['docs', 'schema'].flatMap((dir) =>
      readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name).slice(ROOT.length + 1)),
    );
    expect({
      files: PKG.files.filter((entry) => !entry.startsWith('!') && !packed.some((p) => p === entry || p.startsWith(`${entry}/`))),
      'docs and schema': missing(repoFiles),
      'named in package.json': missing(namedPaths()),
      'the crypto worker': missing(['dist/crypto-worker.js']),
      // package.json says Apache-2.0, whose section 4 wants recipients given the licence's text.
      'the licence': missing(['LICENSE']),
    }).toEqual({ files: [], 'docs and schema': [], 'named in package.json': [], 'the crypto worker': [], 'the licence': [] });
  });

  it('the tarball holds nothing that must not ship', () => {
    const installedDir = join(appDir, 'node_modules/pqmcp');
    expect({
      'not for users': packed.filter((p) => NOT_SHIPPED.some((re) => re.test(p))),
      'key files': packed.filter((p) => KEY_NAMES.test(p)),
      'key material': packed.filter((p) => !/\.(png|svg)$/.test(p) && KEY_CONTENT.some((re) => re.test(readFileSync(join(installedDir, p), 'utf8')))),
    }).toEqual({ 'not for users': [], 'key files': [], 'key material': [] });
  });

  it('every CLI chunk in the tarball is one dist/cli.js loads (none left from an earlier build)', () => {
    const dist = join(appDir, 'node_modules/pqmcp/dist');
    const reached = new Set<string>();
    const visit = (file: string): void => {
      if (reached.has(file)) return;
      reached.add(file);
      for (const m of readFileSync(join(dist, file), 'utf8').matchAll(/["']\.\/(cli-[A-Za-z0-9_-]+\.js)["']/g)) visit(m[1]!);
    };
    visit('cli.js');
    const chunks = packed.filter((p) => /^dist\/cli-[^/]+\.js$/.test(p)).map((p) => p.slice('dist/'.length));
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.filter((c) => !reached.has(c))).toEqual([]);
  });

  it('import and require resolve to the installed build and expose the documented names, the same each way', async () => {
    const esm = JSON.parse((await node(['names.mjs'])).stdout) as Names;
    const cjs = JSON.parse((await node(['names.cjs'])).stdout) as Names;
    const dist = pathToFileURL(join(appDir, 'node_modules/pqmcp')).href;
    expect(esm.main).toBe(`${dist}/dist/index.js`);
    expect(cjs.main).toBe(`${dist}/dist/index.cjs`);
    for (const names of [esm, cjs]) {
      expect(names.version).toBe(PKG.version);
      expect(names.schema).toBe(`${dist}/schema/mcp.cedarschema`);
      for (const [entry, expected] of Object.entries(DOCUMENTED)) expect(names.entries[entry], entry).toEqual(expect.arrayContaining(expected));
    }
    expect(cjs.entries).toEqual(esm.entries);
  });

  it('node_modules/.bin/pqmcp answers --help and --version', async () => {
    expect((await inApp(pqmcpBin, ['--version'])).stdout.trim()).toBe(`pqmcp ${PKG.version}`);
    const help = (await inApp(pqmcpBin, ['--help'])).stdout;
    for (const command of ['issuer create', 'agent create', 'credential issue', 'serve', 'connect']) expect(help).toContain(command);
  });

  // The README quick start's files (beforeAll), loaded by the ESM round trip.
  it.each([
    ['import, with the files the installed pqmcp CLI wrote', 'roundtrip.mjs'],
    ['require, with identities and trust made in code', 'roundtrip.cjs'],
  ])('an MCP tool call over pqmcp: %s', async (_, script) => {
    const { stdout, stderr } = await node([script]);
    expect(JSON.parse(stdout)).toMatchObject({ text: 'hello Ada, you are agent://acme/ada', server: 'agent://acme/tools' });
    // Nothing on stderr: no PQMCP_CRYPTO_POOL warning (worker threads that did not start from dist/crypto-worker.js), no other warning.
    expect(stderr).toBe('');
  });

  describe('optional peers stay optional', () => {
    it('none is installed in the project', () => {
      const optional = Object.keys(PKG.peerDependenciesMeta).filter((name) => PKG.peerDependenciesMeta[name]!.optional && !USER_PACKAGES.includes(name));
      expect(optional.length).toBeGreaterThan(0);
      for (const name of optional) expect(() => readFileSync(join(appDir, 'node_modules', name, 'package.json')), name).toThrow();
    });

    const CEDAR = /^a policy is configured but the Cedar engine is not installed: npm install @cedar-policy\/cedar-wasm$/;
    const POLICY = "loadPolicy({ text: 'permit(principal, action, resource);' }).then(() => console.log(JSON.stringify({ loaded: true })), (e) => console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message, pqmcp: e instanceof PqmcpError })))";

    it.each([
      ['import', ['--input-type=module', '-e', `import { PqmcpError } from 'pqmcp'; import { loadPolicy } from 'pqmcp/policy'; ${POLICY}`]],
      ['require', ['-e', `const { PqmcpError } = require('pqmcp'); const { loadPolicy } = require('pqmcp/policy'); ${POLICY}`]],
    ])('a policy without Cedar (%s): PolicyEngineUnavailableError, a PqmcpError, naming the package', async (_, args) => {
      const out = JSON.parse((await node(args)).stdout) as { name: string; code: string; message: string; pqmcp: boolean };
      expect(out).toMatchObject({ name: 'PolicyEngineUnavailableError', code: 'ERR_POLICY_ENGINE_UNAVAILABLE', pqmcp: true });
      expect(out.message).toMatch(CEDAR);
    });

    it.each([
      ['--policy', ['--policy', 'allow.cedar'], /^pqmcp: a policy is configured but the Cedar engine is not installed: npm install @cedar-policy\/cedar-wasm \(ERR_POLICY_ENGINE_UNAVAILABLE\)$/],
      ['--metrics', ['--metrics', '127.0.0.1:0'], /^pqmcp: --metrics needs the optional packages [^\n]*: npm install @opentelemetry\/api @opentelemetry\/sdk-metrics @opentelemetry\/exporter-prometheus \(ERR_USAGE\)$/],
    ])('pqmcp serve %s without its packages: exit 1, one line naming them', async (_, flags, message) => {
      writeFileSync(join(keysDir, 'allow.cedar'), 'permit(principal, action, resource);\n');
      const serve = ['serve', '--identity', 'tools.key.json', '--trust', 'trust.json', '--listen', '127.0.0.1:0', ...flags, '--', process.execPath, '-e', 'setInterval(() => {}, 1000)'];
      const r = await failing(pqmcpBin, serve, keysDir);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.trim()).toMatch(message); // the whole of it: no module-not-found, no stack
    });
  });
});

interface Names {
  entries: Record<string, string[]>;
  version: string;
  main: string;
  schema: string;
}

/** A few names each entry point's docs promise (docs/api.md, docs/usage.md; the browser section of docs/api.md). */
const DOCUMENTED: Record<string, string[]> = {
  pqmcp: [
    'serveMcp', 'listen', 'PqmcpClientTransport', 'PqmcpServerTransport', 'Session', 'selectBackend',
    'createIssuer', 'generateIdentitySeed', 'identityFromSeed', 'issueCredential', 'createAgentIdentity', 'TrustStore',
    'loadIdentity', 'loadTrustStore', 'loadIssuer', 'PqmcpError', 'PolicyEngineUnavailableError', 'AuditLog',
  ],
  'pqmcp/policy': ['loadPolicy', 'Policy', 'createQuotas', 'POLICY_SCHEMA', 'PolicyEngineUnavailableError', 'PolicyInvalidError'],
  'pqmcp/browser': ['PqmcpClientTransport', 'identityFromContents', 'trustStoreFromContents', 'storeIdentity', 'loadStoredIdentity', 'TrustStore', 'PqmcpError'],
};
