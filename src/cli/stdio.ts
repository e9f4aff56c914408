/**
 * Newline-delimited JSON-RPC, exactly as the MCP SDK's stdio transports frame it: one JSON
 * text per line, '\n' separated, a trailing '\r' tolerated; each message written as
 * JSON.stringify(message) + '\n' (JSON.stringify never emits a raw newline).
 *
 * Used both ways: the gateway reads a child server's stdout with it, the bridge reads its
 * own stdin.
 *
 * Sharp edges:
 * - Lines are cut on the byte 0x0A before UTF-8 decoding, so a multi-byte character split
 *   across chunks is never damaged (0x0A never occurs inside a UTF-8 sequence).
 * - A line that is not JSON, or not a JSON-RPC 2.0 object, is reported (onerror with its
 *   line number; never its content) and skipped; reading continues, as in the SDK.
 *   Blank lines are ignored.
 * - A line longer than `maxLineBytes` is dropped whole (reported once) instead of being
 *   buffered without bound.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

export const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;

export class LineError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
    this.name = 'LineError';
  }
}

export class JsonRpcLineReader {
  onmessage: ((message: JSONRPCMessage) => void) | undefined;
  onerror: ((error: LineError) => void) | undefined;

  private chunks: Buffer[] = [];
  private buffered = 0;
  private lineNumber = 0;
  private discarding = false;

  constructor(private readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES) {}

  /** Feed bytes; complete lines are delivered synchronously, in order. */
  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      this.lineNumber++;
      if (this.discarding) {
        this.discarding = false;
        this.chunks = [];
        this.buffered = 0;
        continue;
      }
      const line = this.chunks.length ? Buffer.concat([...this.chunks, piece]) : piece;
      this.chunks = [];
      this.buffered = 0;
      this.deliver(line);
    }
    if (start < chunk.length && !this.discarding) {
      const rest = chunk.subarray(start);
      if (this.buffered + rest.length > this.maxLineBytes) {
        this.discarding = true;
        this.chunks = [];
        this.buffered = 0;
        this.onerror?.(new LineError(`line ${this.lineNumber + 1} is longer than ${this.maxLineBytes} bytes; dropped`, this.lineNumber + 1));
      } else {
        // Copy: the caller may reuse its buffer.
        this.chunks.push(Buffer.from(rest));
        this.buffered += rest.length;
      }
    }
  }

  /** Bytes of an unterminated last line (at end of input). */
  get pending(): number {
    return this.buffered;
  }

  private deliver(raw: Buffer): void {
    let text = raw.toString('utf8');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (text.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.onerror?.(new LineError(`line ${this.lineNumber} is not valid JSON; skipped`, this.lineNumber));
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || (parsed as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
      this.onerror?.(new LineError(`line ${this.lineNumber} is not a JSON-RPC 2.0 message; skipped`, this.lineNumber));
      return;
    }
    this.onmessage?.(parsed as JSONRPCMessage);
  }
}

export function serializeLine(message: JSONRPCMessage): string {
  return `${JSON.stringify(message)}\n`;
}
