/**
 * docs/cli.md's walkthrough runs as written: its shell blocks (each marked
 * `<!-- walkthrough -->`, `<!-- walkthrough: background -->` or `<!-- walkthrough: stdin -->`)
 * are typed, in order, into one bash, with `pqmcp` on PATH running this checkout's CLI and
 * HOME a fresh temporary folder. Then the outputs the doc shows are checked.
 *
 * What the test changes, and nothing else (each must still be found in the doc):
 * - `tools.acme.internal` and port 7443 become 127.0.0.1 and a free port, and the gateway
 *   listens on 127.0.0.1 rather than 0.0.0.0 (tests stay on the loopback);
 * - `npx -y @modelcontextprotocol/server-everything stdio` is served offline: `npx` on PATH
 *   runs the installed copy for exactly that command and refuses anything else.
 *
 * docs/usage.md's block that makes the library's key files with the CLI (marked
 * `<!-- walkthrough -->` there too) runs the same way, and the library's loaders then read
 * what it wrote, as that page says they do.
 *
 * A `background` block is started with `&` (the gateway keeps running) and the script waits
 * for its "listening on" line; in a `stdin` block the command is the lines up to the first
 * one that does not end in a backslash, and the rest is what the user types into it,
 * followed by Ctrl-D (end of input).
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI_ARGS, CLI_COMMAND, EVERYTHING, ROOT, tempDir } from './helpers.js';
import { createNativeBackend } from '../../src/crypto/native.js';
import { loadIdentity, loadTrustStore } from '../../src/identity/files.js';

const DOC = join(ROOT, 'docs/cli.md');
const USAGE = join(ROOT, 'docs/usage.md');

interface Block {
  kind: 'run' | 'background' | 'stdin';
  text: string;
}

/** The marked shell blocks of the walkthrough, in order. */
export function walkthroughBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const re = /<!-- walkthrough(?:: (background|stdin))? -->\n```sh\n([\s\S]*?)```/g;
  for (const m of markdown.matchAll(re)) blocks.push({ kind: (m[1] as Block['kind'] | undefined) ?? 'run', text: m[2]! });
  return blocks;
}

const tmp = tempDir('walkthrough');
const home = join(tmp.dir, 'home');
const bin = join(tmp.dir, 'bin');
const logs = join(tmp.dir, 'logs');
let script: ReturnType<typeof spawn> | undefined;

afterAll(() => {
  // The script's process group: the bash, the gateway it left running, its MCP server.
  if (script?.pid !== undefined) {
    try {
      process.kill(-script.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  tmp.remove();
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const port = (probe.address() as { port: number }).port;
      probe.close(() => resolve(port));
    });
  });
}

const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;


/** Run `text` in bash, in its own process group, with the shims first on PATH and HOME set. */
function bash(text: string, homeDir: string, started: (child: ReturnType<typeof spawn>) => void = () => {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', text], {
      cwd: tmp.dir,
      detached: true, // its own process group, so afterAll can stop what it leaves running
      env: { ...process.env, HOME: homeDir, PATH: `${bin}:${process.env['PATH'] ?? ''}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started(child);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => reject(new Error(`the shell did not finish in time\nstdout:\n${stdout}\nstderr:\n${stderr}`)), 170_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `pqmcp` running this checkout's CLI; `npx` serving server-everything offline, nothing else. */
function writeShims(): void {
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'pqmcp'), `#!/bin/sh\nexec ${[CLI_COMMAND, ...CLI_ARGS].map(sh).join(' ')} "$@"\n`);
  writeFileSync(
    join(bin, 'npx'),
    `#!/bin/sh\nif [ "$*" = "-y @modelcontextprotocol/server-everything stdio" ]; then exec ${sh(process.execPath)} ${sh(EVERYTHING)} stdio; fi\necho "npx (offline test shim): not available: $*" >&2\nexit 127\n`,
  );
  chmodSync(join(bin, 'pqmcp'), 0o755);
  chmodSync(join(bin, 'npx'), 0o755);
}

describe('docs/cli.md walkthrough', () => {
  it('runs as a user types it: identities, trust, the gateway in front of server-everything, one request through the bridge', async () => {
    const markdown = readFileSync(DOC, 'utf8');
    const blocks = walkthroughBlocks(markdown);
    expect(blocks.map((b) => b.kind)).toEqual(['run', 'run', 'run', 'background', 'stdin']);

    const port = await freePort();
    const substitutions: Array<[string, string]> = [
      ['--listen 0.0.0.0:7443', `--listen 127.0.0.1:${port}`],
      ['ws://tools.acme.internal:7443/', `ws://127.0.0.1:${port}/`],
    ];
    const walkthrough = blocks.map((b) => b.text).join('');
    for (const [from] of substitutions) expect(walkthrough, `the walkthrough no longer says ${from}`).toContain(from);
    const substitute = (text: string): string => substitutions.reduce((t, [from, to]) => t.split(from).join(to), text);

    for (const dir of [home, logs]) mkdirSync(dir, { recursive: true });
    writeShims();

    const parts = ['set -e'];
    blocks.forEach((block, i) => {
      const text = substitute(block.text);
      parts.push(`echo "== block ${i + 1}"`);
      if (block.kind === 'run') parts.push(text);
      else if (block.kind === 'background') {
        parts.push(`( ${text.trim()}\n) > ${sh(join(logs, 'serve.out'))} 2> ${sh(join(logs, 'serve.err'))} &`);
        parts.push(`for i in $(seq 1 600); do grep -q 'listening on' ${sh(join(logs, 'serve.err'))} && break; sleep 0.1; done`);
        parts.push(`grep -q 'listening on' ${sh(join(logs, 'serve.err'))}`);
      } else {
        const lines = text.trimEnd().split('\n');
        const end = lines.findIndex((l) => !l.endsWith('\\'));
        const command = lines.slice(0, end + 1).join('\n');
        const input = lines.slice(end + 1).join('\n');
        expect(input, 'the stdin block has input after its command').not.toBe('');
        parts.push(`set +e\n${command} > ${sh(join(logs, 'connect.out'))} 2> ${sh(join(logs, 'connect.err'))} <<'PQMCP_WALKTHROUGH_INPUT'\n${input}\nPQMCP_WALKTHROUGH_INPUT`);
        parts.push(`echo $? > ${sh(join(logs, 'connect.code'))}\nset -e`);
      }
    });
    parts.push('echo "== done"');

    const { code, stdout, stderr } = await bash(parts.join('\n'), home, (child) => (script = child));
    const gatewayLog = existsSync(join(logs, 'serve.err')) ? readFileSync(join(logs, 'serve.err'), 'utf8') : '';
    expect(code, `the walkthrough failed\nstdout:\n${stdout}\nstderr:\n${stderr}\ngateway:\n${gatewayLog}`).toBe(0);
    expect(stdout).toContain('== done');

    // Steps 1-3: the files each comment names, private keys 0600, in the folder of their machine.
    for (const [dir, files] of [
      ['acme-ca', ['acme.key.json', 'acme.pub.json']],
      ['tools', ['tools.key.json', 'tools.pub.json', 'tools.cred.json', 'acme.pub.json', 'trust.json']],
      ['.pqmcp', ['ada.key.json', 'ada.pub.json', 'ada.cred.json', 'acme.pub.json', 'trust.json']],
    ] as const) {
      for (const f of files) expect(existsSync(join(home, dir, f)), `${dir}/${f}`).toBe(true);
    }
    for (const key of ['acme-ca/acme.key.json', 'tools/tools.key.json', '.pqmcp/ada.key.json']) expect(statSync(join(home, key)).mode & 0o777).toBe(0o600);
    expect(existsSync(join(home, 'tools', 'acme.key.json'))).toBe(false);
    expect(existsSync(join(home, '.pqmcp', 'acme.key.json'))).toBe(false);
    // What the commands print, as the doc's own examples show it.
    expect(stdout).toContain('created issuer issuer://acme');
    expect(stdout).toMatch(/issued credential for agent:\/\/acme\/tools: tools\.cred\.json/);
    expect(stdout).toMatch(/issued credential for agent:\/\/acme\/ada: ada\.cred\.json/);
    expect(stdout).toMatch(/\n {2}scopes: {5}tools:call\n/);
    expect(stdout).toContain('created trust.json: trusts issuer issuer://acme');
    expect(stdout).toMatch(/valid: agent:\/\/acme\/ada is vouched for by issuer:\/\/acme; (29d 23h|30d 0h) left/);

    // Step 4: the gateway, in front of the reference server.
    expect(gatewayLog).toMatch(new RegExp(`listening on ws://127\\.0\\.0\\.1:${port}/ as agent://acme/tools .*MCP server: npx -y @modelcontextprotocol/server-everything stdio \\(one process per session\\)`));
    expect(gatewayLog).toMatch(/session [0-9a-f]{8} started: agent:\/\/acme\/ada \(key [0-9a-f]{16}, issuer issuer:\/\/acme, scopes tools:call\)/);

    // Step 5: one line in, the answer out; end of input ends it cleanly.
    const connectErr = readFileSync(join(logs, 'connect.err'), 'utf8');
    expect(readFileSync(join(logs, 'connect.code'), 'utf8').trim(), connectErr).toBe('0');
    const answers = readFileSync(join(logs, 'connect.out'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(answers).toHaveLength(1);
    expect(answers[0]).toMatchObject({ jsonrpc: '2.0', id: 1, result: { serverInfo: { name: 'mcp-servers/everything' } } });
    expect(connectErr).toMatch(new RegExp(`^pqmcp connect: connected to agent://acme/tools \\(key [0-9a-f]{16}, issuer issuer://acme\\) at ws://127\\.0\\.0\\.1:${port}/; `, 'm'));
  }, 180_000);

  it("docs/usage.md: the CLI makes the library's key files, and the library's loaders read them", async () => {
    const blocks = walkthroughBlocks(readFileSync(USAGE, 'utf8'));
    expect(blocks.map((b) => b.kind)).toEqual(['run']);
    writeShims();
    const dir = join(tmp.dir, 'usage');
    mkdirSync(dir, { recursive: true });
    const { code, stdout, stderr } = await bash(`set -e\ncd ${sh(dir)}\n${blocks[0]!.text}`, join(tmp.dir, 'usage-home'));
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    expect(statSync(join(dir, 'keys')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'keys/tools.key.json')).mode & 0o777).toBe(0o600);
    const backend = createNativeBackend();
    const tools = await loadIdentity(join(dir, 'keys/tools.key.json'), { backend });
    expect(tools.agentId).toBe('agent://example.com/tools');
    expect(tools.credentialPath).toBe(join(dir, 'keys/tools.cred.json'));
    const trust = await loadTrustStore(join(dir, 'keys/trust.json'));
    const peer = trust.verifyCredential(backend, tools.credential.encoded, { expectedPeerId: 'agent://example.com/tools' });
    expect(peer).toMatchObject({ agentId: 'agent://example.com/tools', issuer: 'issuer://example.com/ca', scopes: ['mcp:serve'], fingerprint: tools.fingerprint });
  }, 120_000);
});
