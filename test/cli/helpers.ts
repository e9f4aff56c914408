/**
 * Helpers for CLI tests: run `pqmcp` as a real process (`node dist/cli.js` when the build is
 * newer than every source, else `node --import tsx src/cli/main.ts`: test/helpers/built.ts),
 * keep long-running ones (serve, connect) under control, and write identity files in the
 * CLI's formats straight from the library (faster than a process per file).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNativeBackend } from '../../src/crypto/native.js';
import { issueCredential } from '../../src/identity/credential.js';
import { createIssuer, generateIdentitySeed, identityFromSeed } from '../../src/identity/identity.js';
import type { Issuer } from '../../src/identity/identity.js';
import { TrustStore } from '../../src/identity/trust.js';
import { encodeCredentialFile, encodePrivateKeyFile, encodePublicKeyFile } from '../../src/identity/formats.js';
import { run } from '../../src/cli/run.js';
import { TSX_LOADER, cliNodeArgs } from '../helpers/built.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const MAIN = join(ROOT, 'src/cli/main.ts');
export const EVERYTHING = join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
export const LINE_SERVER = join(ROOT, 'test/cli/fixtures/line-server.mjs');
export { TSX_LOADER };
/** How the tests start the CLI: the node running vitest, with CLI_ARGS. */
export const CLI_COMMAND = process.execPath;
/** dist/cli.js when built after the last change to src/ (CI builds before it tests: what users run), else src/cli/main.ts through tsx (~2-3x the start-up). */
export const CLI_ARGS = cliNodeArgs();

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const live = new Set<ChildProcess>();

/** Kill every CLI process still running (afterAll / afterEach). */
export function killAll(): void {
  for (const p of live) p.kill('SIGKILL');
  live.clear();
}

/** Run `pqmcp <args>` to completion. */
export function cli(args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(CLI_COMMAND, [...CLI_ARGS, ...args], { cwd: options.cwd ?? ROOT, env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pqmcp ${args.join(' ')} did not finish in time; stderr: ${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      live.delete(child);
      resolvePromise({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/**
 * Run `pqmcp <args>` in this process: run.ts is everything main.ts executes but setting the
 * exit code. For commands that need no process of their own (files in, text out), where a
 * process each would cost ~0.5-1 s of start-up; each test file keeps some real processes.
 */
export async function cliInProcess(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, { out: (t) => void (stdout += t.endsWith('\n') ? t : `${t}\n`), err: (t) => void (stderr += t.endsWith('\n') ? t : `${t}\n`) });
  return { code, stdout, stderr };
}

/** A long-running CLI process (serve, connect) with its output collected. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(CLI_COMMAND, [...CLI_ARGS, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(this.child);
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((r) =>
      this.child.on('close', (code) => {
        live.delete(this.child);
        r(code);
      }),
    );
  }

  /** Resolves with the first match of `pattern` in stderr. */
  async waitForStderr(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.stderr);
      if (m) return m;
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`process exited (${this.child.exitCode ?? this.child.signalCode}) before ${pattern}; stderr:\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; stderr:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Write one JSON-RPC message to stdin, as a stdio MCP client would. */
  write(message: unknown): void {
    this.child.stdin!.write(`${JSON.stringify(message)}\n`);
  }

  /** Every complete stdout line, parsed. */
  messages(): Array<Record<string, unknown>> {
    return this.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async waitForMessage(predicate: (m: Record<string, unknown>) => boolean, timeoutMs = 20_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const complete = this.stdout.slice(0, this.stdout.lastIndexOf('\n') + 1);
      const found = complete
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find(predicate);
      if (found) return found;
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`process exited (${this.child.exitCode ?? this.child.signalCode}) before the message; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for a message; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/** Start `pqmcp serve` on a free port; resolves once it listens, with its URL. */
export async function startGateway(args: string[], command: string[], env: NodeJS.ProcessEnv = {}): Promise<{ gateway: CliProcess; url: string }> {
  const gateway = new CliProcess(['serve', '--listen', '127.0.0.1:0', ...args, '--', ...command], env);
  const m = await gateway.waitForStderr(/listening on (ws:\/\/\S+) |"event":"listening","url":"(ws:\/\/[^"]+)"/);
  return { gateway, url: (m[1] ?? m[2])! };
}

/** Prometheus text exposition -> { 'name{a="x",b="y"}': value } (labels sorted). */
export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    const labels = ((m[2] ?? '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []).filter((l) => !l.startsWith('otel_scope_'));
    out.set(`${m[1]}{${labels.sort().join(',')}}`, Number(m[3]));
  }
  return out;
}

export const metric = (metrics: Map<string, number>, name: string, labels: Record<string, string> = {}): number => {
  const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',')}}`;
  return metrics.get(key) ?? 0;
};

export function tempDir(label: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `pqmcp-cli-${label}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// --- identity files from the library ---------------------------------------------------------

const backend = createNativeBackend();

export interface Files {
  key: string;
  pub: string;
  cred: string;
  fingerprint: string;
}

export function writeIssuer(dir: string, id: string, name: string): Issuer & { keyFile: string; pubFile: string } {
  const seed = generateIdentitySeed(backend);
  const issuer = createIssuer(backend, { id, seed });
  const keyFile = join(dir, `${name}.key.json`);
  const pubFile = join(dir, `${name}.pub.json`);
  writeFileSync(keyFile, JSON.stringify(encodePrivateKeyFile({ kind: 'issuer', id, seed })), { mode: 0o600 });
  writeFileSync(pubFile, JSON.stringify(encodePublicKeyFile(backend, { kind: 'issuer', id, publicKey: issuer.publicKey })));
  return { ...issuer, keyFile, pubFile };
}

export function writeAgent(
  dir: string,
  issuer: Issuer,
  agentId: string,
  name: string,
  claims: { scopes?: string[]; attributes?: Record<string, string>; notBefore?: number; notAfter?: number; usage?: 'client' | 'server' | 'both' } = {},
): Files {
  const seed = generateIdentitySeed(backend);
  const keyPair = identityFromSeed(backend, seed);
  // 'both' unless a test asks for a role: CLI fixtures serve in one test and connect in the next.
  const credential = issueCredential(backend, issuer, { agentId, publicKey: keyPair.publicKey, usage: 'both', ...claims });
  const files: Files = { key: join(dir, `${name}.key.json`), pub: join(dir, `${name}.pub.json`), cred: join(dir, `${name}.cred.json`), fingerprint: '' };
  writeFileSync(files.key, JSON.stringify(encodePrivateKeyFile({ kind: 'agent', id: agentId, seed })), { mode: 0o600 });
  chmodSync(files.key, 0o600);
  const pub = encodePublicKeyFile(backend, { kind: 'agent', id: agentId, publicKey: keyPair.publicKey });
  files.fingerprint = pub.fingerprint;
  writeFileSync(files.pub, JSON.stringify(pub));
  writeFileSync(files.cred, JSON.stringify(encodeCredentialFile(credential.encoded)));
  return files;
}

export function writeTrust(path: string, ...issuers: Issuer[]): string {
  writeFileSync(path, JSON.stringify(new TrustStore({ issuers: issuers.map((i) => ({ id: i.id, publicKey: i.publicKey })) })));
  return path;
}

/** One line, the pqmcp error format, no stack. */
export function expectOneLineError(stderr: string, code: string): void {
  const lines = stderr.trim().split('\n');
  if (lines.length !== 1) throw new Error(`expected one stderr line, got:\n${stderr}`);
  if (!/^pqmcp: .+ \([A-Z_]+\)$/.test(lines[0]!)) throw new Error(`not the pqmcp error format: ${lines[0]}`);
  if (!lines[0]!.endsWith(`(${code})`)) throw new Error(`expected code ${code}: ${lines[0]}`);
  if (/\n\s+at /.test(stderr)) throw new Error(`stack trace printed:\n${stderr}`);
}
