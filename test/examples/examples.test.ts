/**
 * The examples are programs users copy, so they are run here for real, exactly as the docs
 * say (`node --import tsx examples/<file>.ts ...`, with this test's own Node binary), and
 * every TypeScript block in docs/usage.md must be byte-identical to the example file its
 * `<!-- example: path -->` marker names. Type checking is `npx tsc --noEmit -p .`
 * (examples/ is in tsconfig's include).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyRelay, v2Header } from '../helpers/proxy-header.js';
import { cliNodeArgs } from '../helpers/built.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const RUN_TIMEOUT_MS = 30_000;

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();

/** `node --import tsx <args>` in the repository root (or `node <nodeArgs> <args>`); `env` is added to this process's environment. */
function start(args: string[], env: Record<string, string> = {}, nodeArgs: readonly string[] = ['--import', 'tsx']): { child: ChildProcess; output: () => string; exited: Promise<Finished> } {
  const child = spawn(process.execPath, [...nodeArgs, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<Finished>((done) => {
    child.on('close', (code, signal) => {
      children.delete(child);
      done({ code, signal, stdout, stderr });
    });
  });
  return { child, output: () => stdout, exited };
}

/** Run a program to completion; fails the test if it does not exit by itself in time. */
async function run(args: string[], env: Record<string, string> = {}, timeoutMs = RUN_TIMEOUT_MS, nodeArgs?: readonly string[]): Promise<Finished> {
  const { child, exited } = start(args, env, nodeArgs);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const result = await exited;
  clearTimeout(timer);
  expect(result.signal, `${args.join(' ')} did not exit by itself within ${timeoutMs} ms\n${result.stdout}${result.stderr}`).toBeNull();
  return result;
}

/** Start a long-running program and wait for a line matching `ready`. */
async function serve(args: string[], ready: RegExp): Promise<{ match: RegExpMatchArray; output: () => string; stop: () => Promise<Finished> }> {
  const program = start(args);
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  let match: RegExpMatchArray | null = null;
  let ended: Finished | undefined;
  void program.exited.then((f) => (ended = f));
  while (!(match = program.output().match(ready))) {
    if (ended) throw new Error(`${args.join(' ')} exited early (${ended.code}):\n${ended.stdout}${ended.stderr}`);
    if (Date.now() > deadline) throw new Error(`${args.join(' ')} printed no ${ready} within ${RUN_TIMEOUT_MS} ms:\n${program.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    match,
    output: program.output,
    stop: async () => {
      program.child.kill('SIGTERM');
      return program.exited;
    },
  };
}

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

/** Where two texts first differ, for a readable failure. */
function firstDifference(doc: string, file: string): string {
  const a = doc.split('\n');
  const b = file.split('\n');
  const i = a.findIndex((line, n) => line !== b[n]);
  const at = i === -1 ? a.length : i;
  return `line ${at + 1}: doc ${JSON.stringify(a[at])} vs file ${JSON.stringify(b[at])}`;
}

// --- docs/usage.md <-> examples/ ---------------------------------------------------------------

describe('docs/usage.md shows the example programs verbatim', () => {
  const doc = readFileSync(join(ROOT, 'docs/usage.md'), 'utf8');
  const fence = /^```(\w*)\n([\s\S]*?)^```$/gm;
  const blocks = [...doc.matchAll(fence)].map((m) => {
    const before = doc.slice(0, m.index).split('\n');
    const marker = /^<!-- example: (\S+) -->$/.exec(before[before.length - 2] ?? '');
    return { lang: m[1] ?? '', body: m[2] ?? '', example: marker?.[1] };
  });

  it('every TypeScript block names its example file and is byte-identical to it', () => {
    // Shell sessions, JSON data samples and other programs' configuration files (`conf`: a
    // load balancer's) are not programs; every other block is one.
    const code = blocks.filter((b) => b.lang !== 'sh' && b.lang !== 'json' && b.lang !== 'conf');
    expect(code.length).toBeGreaterThan(0);
    for (const block of code) {
      expect(block.example, `a \`\`\`${block.lang} block without <!-- example: ... --> marker:\n${block.body.slice(0, 200)}`).toBeDefined();
      expect(block.lang).toBe('ts');
      const file = join(ROOT, block.example!);
      expect(existsSync(file), `${block.example} exists`).toBe(true);
      const text = readFileSync(file, 'utf8');
      expect(block.body, `docs/usage.md drifted from ${block.example}: ${firstDifference(block.body, text)}`).toBe(text);
    }
  });

  it("the examples import the package by its name ('pqmcp', 'pqmcp/policy', 'pqmcp/browser'), never its sources by path: what the page shows is what an application writes", () => {
    const files = (dir: string): string[] =>
      readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(`${dir}/${e.name}`) : e.name.endsWith('.ts') ? [`${dir}/${e.name}`] : []));
    const specifiers = files('examples').flatMap((file) => [...readFileSync(join(ROOT, file), 'utf8').matchAll(/\bfrom '([^']+)'/g)].map((m) => ({ file, spec: m[1]! })));
    expect(specifiers.filter((s) => s.spec.startsWith('pqmcp')).length).toBeGreaterThan(10);
    const bad = specifiers.filter((s) => s.spec.startsWith('.') && !s.spec.startsWith('./'));
    expect(bad, 'an example reaches outside examples/ by a relative path').toEqual([]);
    for (const { file, spec } of specifiers.filter((s) => s.spec.startsWith('pqmcp'))) expect(['pqmcp', 'pqmcp/policy', 'pqmcp/browser'], `${file}: ${spec}`).toContain(spec);
  });

  it('every examples/usage-*.ts is shown, and every example a shell block runs exists', () => {
    const shown = new Set(blocks.map((b) => b.example));
    for (const file of readdirSync(join(ROOT, 'examples')).filter((f) => f.startsWith('usage-'))) {
      expect(shown, `examples/${file} is not shown in docs/usage.md`).toContain(`examples/${file}`);
    }
    for (const block of blocks.filter((b) => b.lang === 'sh')) {
      for (const [path] of block.body.matchAll(/examples\/[\w.-]+\.ts/g)) expect(existsSync(join(ROOT, path)), path).toBe(true);
    }
  });
});

// --- the usage examples, run for real -----------------------------------------------------------

describe('usage examples: keys, serveMcp server, client, listen() on an existing http.Server', () => {
  let work: string;
  let keys: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'pqmcp-examples-'));
    keys = join(work, 'keys');
    const made = await run(['examples/usage-keys.ts', keys]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toContain(`${join(keys, 'tools.key.json')}: agent://example.com/tools [mcp:serve]`);
    expect(made.stdout).toContain(`${join(keys, 'planner.key.json')}: agent://example.com/planner [notes:read, notes:write]`);
    expect(made.stdout).toContain(`${join(keys, 'intern.key.json')}: agent://example.com/intern [notes:read]`);
    expect(made.stdout).toContain(`${join(keys, 'trust.json')}: trusts issuer://example.com/ca`);
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('usage-keys.ts writes the CLI formats, private key files readable by the owner only', async () => {
    for (const name of ['tools', 'planner', 'intern']) {
      expect(statSync(join(keys, `${name}.key.json`)).mode & 0o777, name).toBe(0o600);
    }
    // The CLI (the build or the sources: test/helpers/built.ts) reads what the example wrote: its key and credential files, and the trust file.
    const inspected = await run(['inspect', join(keys, 'planner.key.json'), '--json'], {}, RUN_TIMEOUT_MS, cliNodeArgs());
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(JSON.parse(inspected.stdout)).toMatchObject({ type: 'private-key', kind: 'agent', id: 'agent://example.com/planner', mode: '0600' });
    const verified = await run(['credential', 'verify', join(keys, 'planner.cred.json'), '--trust', join(keys, 'trust.json'), '--json'], {}, RUN_TIMEOUT_MS, cliNodeArgs());
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ valid: true, agentId: 'agent://example.com/planner', scopes: ['notes:read', 'notes:write'] });
    expect(JSON.parse(readFileSync(join(keys, 'trust.json'), 'utf8'))).toMatchObject({ version: 1, issuers: [{ id: 'issuer://example.com/ca' }] });
  });

  it('usage-server.ts + usage-client.ts: per-agent authorisation, typed errors for untrusted peers, clean shutdown', async () => {
    const server = await serve(['examples/usage-server.ts', keys, '0'], /listening on (ws:\/\/127\.0\.0\.1:\d+\/) \(backend (noble|native)\)\n/);
    const url = server.match[1]!;

    const planner = await run(['examples/usage-client.ts', url, keys, 'planner']);
    expect(planner.code, planner.stderr).toBe(0);
    expect(planner.stdout).toMatch(/^connected to agent:\/\/example\.com\/tools \(session [0-9a-f]{16}\.\.\., backend (noble|native)\)$/m);
    expect(planner.stdout).toContain('agent    agent://example.com/planner\n  scopes   notes:read, notes:write\n');
    expect(planner.stdout).toMatch(/key {6}[0-9a-f]{16}\.\.\.\n {2}expires {2}\d{4}-\d\d-\d\dT[\d:.]+Z\n {2}issuer {3}issuer:\/\/example\.com\/ca \(serial [0-9a-f]{8}\.\.\.\)\n {2}suite {4}PQMCP_XWING_MLDSA65ED25519_AES256GCM_SHA256\n/);
    expect(planner.stdout).toContain('add_note:\n  saved note 1\n');
    expect(planner.stdout).toContain('list_notes:\n  hello from planner (agent://example.com/planner)\n');

    // Same server, an agent without notes:write: the tool refuses by identity.
    const intern = await run(['examples/usage-client.ts', url, keys, 'intern']);
    expect(intern.code, intern.stderr).toBe(0);
    expect(intern.stdout).toContain('add_note (error):\n  denied: agent://example.com/intern lacks notes:write\n');
    expect(intern.stdout).toContain('list_notes:\n  hello from planner (agent://example.com/planner)\n');

    // Keys from another issuer: the client does not trust the server...
    const other = join(work, 'other');
    expect((await run(['examples/usage-keys.ts', other])).code).toBe(0);
    const untrusted = await run(['examples/usage-client.ts', url, other, 'planner']);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toContain('connect failed: ERR_UNTRUSTED_ISSUER: issuer "issuer://example.com/ca" is not trusted');
    // ...and with the server's trust store, the server does not trust the client.
    copyFileSync(join(keys, 'trust.json'), join(other, 'trust.json'));
    const refused = await run(['examples/usage-client.ts', url, other, 'planner']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('connect failed: ERR_PEER_ALERT: peer aborted the session with alert 48 (unknownIssuer)');

    const stopped = await server.stop();
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain('session: agent://example.com/planner [notes:read, notes:write] issued by issuer://example.com/ca\n');
    expect(stopped.stdout).toContain('session: agent://example.com/intern [notes:read] issued by issuer://example.com/ca\n');
    expect(stopped.stdout).toContain('refused 127.0.0.1: ERR_PEER_ALERT peer aborted the session with alert 48 (unknownIssuer)\n');
    expect(stopped.stdout).toContain('refused 127.0.0.1: ERR_UNTRUSTED_ISSUER issuer "issuer://example.com/ca" is not trusted\n');
    expect(stopped.stdout.endsWith('closed\n')).toBe(true);
  });

  it('usage-proxy.ts: behind a balancer sending PROXY v2, sessions see the client it names; direct connections are refused', async () => {
    // The balancer is a PROXY relay whose own address is 127.0.0.2, naming every client 203.0.113.7.
    const server = await serve(['examples/usage-proxy.ts', keys, '0', '127.0.0.2'], /listening on (ws:\/\/127\.0\.0\.1:(\d+)\/) \(PROXY protocol from 127\.0\.0\.2\)\n/);
    const relay = await ProxyRelay.start('127.0.0.1', {
      target: { host: '127.0.0.1', port: Number(server.match[2]) },
      localAddress: '127.0.0.2',
      header: () => v2Header({ src: '203.0.113.7', dst: '127.0.0.1', sport: 50_000, dport: 443 }),
    });
    try {
      const planner = await run(['examples/usage-client.ts', relay.url, keys, 'planner']);
      expect(planner.code, planner.stderr).toBe(0);
      expect(planner.stdout).toContain('add_note:\n  saved note 1\n');
      // Straight to the listener, from an address that is not the balancer's.
      const direct = await run(['examples/usage-client.ts', server.match[1]!, keys, 'planner']);
      expect(direct.code).toBe(1);
    } finally {
      await relay.close();
    }
    const stopped = await server.stop();
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain('session: agent://example.com/planner from 203.0.113.7\n');
    expect(stopped.stdout).toContain('refused 127.0.0.1: ERR_PROXY_PROTOCOL\n');
    expect(stopped.stdout).not.toMatch(/^session: .* from 127\.0\.0\./m);
  });

  it('usage-listen.ts: pqmcp on /mcp of an http.Server that still serves /health', async () => {
    const server = await serve(['examples/usage-listen.ts', keys, '0'], /health on (http:\/\/127\.0\.0\.1:\d+\/health), MCP on (ws:\/\/127\.0\.0\.1:\d+\/mcp)\n/);
    const [, health, url] = server.match;
    const ok = await fetch(health!);
    expect([ok.status, await ok.text()]).toEqual([200, 'ok\n']);
    expect((await fetch(health!.replace('/health', '/elsewhere'))).status).toBe(404);

    const planner = await run(['examples/usage-client.ts', url!, keys, 'planner']);
    expect(planner.code, planner.stderr).toBe(0);
    expect(planner.stdout).toContain('agent    agent://example.com/planner\n');
    expect(planner.stdout).toContain('add_note:\n  saved note 1\n');

    // Another path of the same server is not the pqmcp endpoint.
    const wrongPath = await run(['examples/usage-client.ts', url!.replace('/mcp', '/other'), keys, 'planner']);
    expect(wrongPath.code).toBe(1);
    expect(wrongPath.stderr).toMatch(/connect failed: ERR_CONNECTION: .*404/);

    const stopped = await server.stop();
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toMatch(/^session ([0-9a-f]{16})\.\.\. from agent:\/\/example\.com\/planner at 127\.0\.0\.1\nsession \1\.\.\. closed$/m);
    expect(stopped.stdout.endsWith('closed\n')).toBe(true);
  });

  it('usage-policy.ts: a Cedar policy filters tools/list and refuses a call per agent, the server unchanged', async () => {
    const policy = await run(['examples/usage-policy.ts', keys]);
    expect(policy.code, policy.stderr).toBe(0);
    expect(policy.stdout).toBe(
      [
        'planner sees: whoami, add_note, list_notes',
        'planner add_note: saved',
        'intern sees: whoami, list_notes',
        'intern add_note: MCP error -32003: pqmcp: not permitted by policy: tools/call tool "add_note"',
        '',
      ].join('\n'),
    );
  });
});

// --- the README's demo -------------------------------------------------------------------------

describe('README demo (npm run demo = tsx examples/demo.ts)', () => {
  it.each([
    ['auto', 'native', 'PQMCP_XWING_MLDSA65ED25519_AES256GCM_SHA256'],
    ['noble', 'noble', 'PQMCP_XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256'],
  ])('PQMCP_BACKEND=%s: a full MCP session, identities and result printed, exits 0 by itself', async (choice, backend, suite) => {
    const demo = await run(['examples/demo.ts'], { PQMCP_BACKEND: choice });
    expect(demo.code, demo.stderr).toBe(0);
    const out = demo.stdout;
    expect(out).toContain('pqmcp demo: a mutually attested post-quantum MCP session\n');
    expect(out).toContain(`  suite      ${suite}\n`);
    expect(out).toContain(`  backend    ${backend} (`);
    expect(out).toContain(`on Node ${process.version}\n`);
    expect(out).toMatch(/ {2}server {5}agent:\/\/demo\.example\/travel-tools \(issuer issuer:\/\/demo\.example\/ca, key [0-9a-f]{16}\.\.\.\) verified by the client\n/);
    expect(out).toContain('  client     agent://demo.example/planner (issuer issuer://demo.example/ca, scopes tools:call, trips:book) verified by the server\n');
    expect(out).toContain('  [user]  asked: "Book a trip to Amsterdam?" -> yes\n');
    expect(out).toContain('  [model] asked for a summary -> answered\n');
    expect(out).toContain(
      '  result     Booked Amsterdam for agent://demo.example/planner (scopes: tools:call, trips:book). Summary: Three days of canals, museums and stroopwafels.\n',
    );
    expect(out.endsWith('closed cleanly.\n')).toBe(true);
  });
});
