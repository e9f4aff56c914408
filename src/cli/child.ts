/**
 * A stdio MCP server as a child process: spawn it, exchange newline-delimited JSON-RPC on
 * its stdin/stdout, forward its stderr line by line, stop it the way the MCP stdio spec asks
 * (close stdin, wait, SIGTERM, wait, SIGKILL).
 *
 * Sharp edges:
 * - The command runs without a shell (no quoting surprises, no injection through agent
 *   data: nothing from a session ever reaches the command line). On Windows, commands
 *   that are .cmd shims (npx) need their full name or a `node` invocation.
 * - `onexit` fires exactly once, whether the process exited, was killed, or never started
 *   (ENOENT: `error` is set).
 * - Backpressure: send() resolves once the pipe accepted the line (after 'drain' when its
 *   buffer is full); write() returns the line's bytes and calls `flushed` once the pipe
 *   took that line (or the write failed): the gateway counts each session's bytes still
 *   queued here and stops reading the sessions over their share (stdin-share.ts; a child
 *   that reads slowly or not at all would otherwise have every byte its clients send
 *   buffered here). pauseOutput()/resumeOutput() stop reading the child's stdout while the
 *   session cannot take more.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcLineReader, serializeLine } from './stdio.js';
import type { LineError } from './stdio.js';

export interface ChildOptions {
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Grace periods of stop(): after closing stdin, then after SIGTERM. Default 2000 ms each. */
  stopGraceMs?: number;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started or its pipes failed. */
  error?: Error;
}

const MAX_STDERR_LINE = 8192;

export class StdioChild {
  onmessage: ((message: JSONRPCMessage) => void) | undefined;
  /** A stdout line that is not JSON-RPC (skipped). */
  onbadline: ((error: LineError) => void) | undefined;
  /** One line of the child's stderr (without the newline). */
  onstderr: ((line: string) => void) | undefined;
  onexit: ((exit: ChildExit) => void) | undefined;

  /** Resolves when the process has exited (or failed to start). */
  readonly exited: Promise<ChildExit>;
  private resolveExited!: (exit: ChildExit) => void;
  private readonly proc: ChildProcess;
  private readonly reader = new JsonRpcLineReader();
  private exitInfo: ChildExit | undefined;
  private stderrRest = '';

  constructor(private readonly options: ChildOptions) {
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    this.reader.onmessage = (m) => this.onmessage?.(m);
    this.reader.onerror = (e) => this.onbadline?.(e);
    this.proc = spawn(options.command, [...options.args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      shell: false,
      windowsHide: true,
      env: options.env ?? process.env,
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    });
    this.proc.on('error', (error) => this.finish({ code: null, signal: null, error }));
    this.proc.on('close', (code, signal) => this.finish({ code, signal }));
    this.proc.stdin?.on('error', () => {
      // EPIPE after the child exited: 'close' reports the exit.
    });
    this.proc.stdout?.on('data', (chunk: Buffer) => this.reader.push(chunk));
    this.proc.stderr?.setEncoding('utf8');
    this.proc.stderr?.on('data', (text: string) => this.stderrText(text));
    this.proc.stderr?.on('end', () => {
      if (this.stderrRest !== '') this.onstderr?.(this.stderrRest);
      this.stderrRest = '';
    });
  }

  /** Resolves once the process is running; rejects if it cannot be started. */
  started(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.exitInfo?.error) return reject(this.exitInfo.error);
      if (this.proc.pid !== undefined) return resolve();
      this.proc.once('spawn', () => resolve());
      this.proc.once('error', (err) => reject(err));
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.proc.stdin;
    if (!stdin || !stdin.writable || this.exitInfo) return Promise.resolve();
    return new Promise((resolve) => {
      if (stdin.write(serializeLine(message))) resolve();
      else stdin.once('drain', resolve);
    });
  }

  /**
   * Queue one line on the child's stdin; returns its bytes (0 when the child is gone, and then
   * `flushed` is not called). `flushed` runs once, when the pipe took the line or the write
   * failed (the child exited): writes complete in order.
   */
  write(message: JSONRPCMessage, flushed: () => void): number {
    const stdin = this.proc.stdin;
    if (!stdin || !stdin.writable || this.exitInfo) return 0;
    const line = serializeLine(message);
    stdin.write(line, () => flushed());
    return Buffer.byteLength(line);
  }

  pauseOutput(): void {
    this.proc.stdout?.pause();
  }

  resumeOutput(): void {
    this.proc.stdout?.resume();
  }

  /** Close stdin, then SIGTERM, then SIGKILL, each after a grace period. Resolves on exit. */
  async stop(): Promise<ChildExit> {
    if (this.exitInfo) return this.exitInfo;
    const grace = this.options.stopGraceMs ?? 2000;
    const waitExit = (ms: number): Promise<boolean> =>
      Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
    this.proc.stdin?.end();
    if (await waitExit(grace)) return this.exitInfo!;
    this.proc.kill('SIGTERM');
    if (await waitExit(grace)) return this.exitInfo!;
    this.proc.kill('SIGKILL');
    return this.exited;
  }

  private stderrText(text: string): void {
    const parts = (this.stderrRest + text).split('\n');
    this.stderrRest = parts.pop() ?? '';
    if (this.stderrRest.length > MAX_STDERR_LINE) {
      parts.push(`${this.stderrRest.slice(0, MAX_STDERR_LINE)} [...]`);
      this.stderrRest = '';
    }
    for (const line of parts) this.onstderr?.(line.replace(/\r$/, '').slice(0, MAX_STDERR_LINE));
  }

  private finish(exit: ChildExit): void {
    if (this.exitInfo) return;
    this.exitInfo = exit;
    this.resolveExited(exit);
    this.onexit?.(exit);
  }
}

/** "exit code 1", "signal SIGKILL", "could not start: ENOENT". */
export function describeExit(exit: ChildExit): string {
  if (exit.error) {
    const code = (exit.error as { code?: string }).code;
    return code === 'ENOENT' ? 'could not be started (command not found)' : `could not be started (${code ?? exit.error.message})`;
  }
  if (exit.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code ?? '?'}`;
}
