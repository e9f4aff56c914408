/**
 * Reading audit files back without holding them: line by line from fixed-size chunks
 * (`trailLines`), and the chain check over a whole trail of files (`verifyTrail`), whose
 * memory is bounded by the longest line read, not by the trail (a month of 64 MiB files
 * verifies in the memory of one line).
 *
 *   const result = await verifyTrail(auditFiles('/var/log/pqmcp'), { anchors });
 *   for await (const l of trailLines(file)) if (l.kind === 'line') ...parseLine(l.text)
 *
 * Sharp edges:
 * - A line longer than `maxLineBytes` (default DEFAULT_MAX_LINE_BYTES) is skipped up to its
 *   '\n' without being held, and reported: `overlong` here, a `malformed` problem in
 *   verifyTrail (the writer never writes one; a trail written with larger messages and
 *   `auditContent` needs a larger limit).
 * - Lines are decoded as UTF-8 one by one, exactly as the whole file would be ('\n' never
 *   occurs inside a UTF-8 sequence): the same text, the same hashes, the same findings as
 *   verifyChain() over the file's text.
 * - The files are read once each, in the order given; a file that cannot be opened or
 *   read rejects with Node's error (the caller names the file).
 * - Node only (node:fs).
 */
import { open } from 'node:fs/promises';
import { InvalidArgumentError } from '../errors.js';
import { ChainVerifier } from './chain.js';
import type { VerifyOptions, VerifyResult } from './chain.js';

/**
 * The longest line read by default: a request event with `auditContent` carries the
 * request's arguments and the response's result, each up to the transport's default
 * maxMessageSize (64 MiB) and the gateway's stdio line limit (64 MiB), plus the event's
 * own fields (a few KiB; peer strings are cut at MAX_TEXT). Without content an event line
 * is under a few KiB.
 */
export const DEFAULT_MAX_LINE_BYTES = 2 * 64 * 1024 * 1024 + 1024 * 1024;

const CHUNK_BYTES = 64 * 1024;

export interface TrailReadOptions {
  /** Longest line read; a longer one is skipped and reported. Default DEFAULT_MAX_LINE_BYTES. */
  maxLineBytes?: number;
  /** Bytes read at a time (tests). Default 64 KiB. */
  chunkBytes?: number;
}

/** One line of an audit file, as trailLines() reads it. `line`: 1-based line number. */
export type TrailLine =
  /** A complete line (its '\n' read), without the '\n'. */
  | { kind: 'line'; line: number; text: string }
  /** A line longer than maxLineBytes, not read: `bytes` it had (without '\n'). */
  | { kind: 'overlong'; line: number; bytes: number }
  /** The file's last line, without its '\n' (a crash's partial line). */
  | { kind: 'partial'; line: number; text: string };

function limits(options: TrailReadOptions): { max: number; chunk: number } {
  const max = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const chunk = options.chunkBytes ?? CHUNK_BYTES;
  if (!(Number.isSafeInteger(max) && max > 0)) throw new InvalidArgumentError('maxLineBytes must be a positive integer');
  if (!(Number.isSafeInteger(chunk) && chunk > 0)) throw new InvalidArgumentError('chunkBytes must be a positive integer');
  return { max, chunk };
}

/**
 * The lines of `path`, read `chunkBytes` at a time: what is held is one chunk and the
 * pieces of the line being read (at most maxLineBytes).
 */
export async function* trailLines(path: string, options: TrailReadOptions = {}): AsyncGenerator<TrailLine, void, undefined> {
  const { max, chunk } = limits(options);
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(chunk);
    /** Pieces of the current line from earlier chunks (copies: `buf` is reused). */
    let pieces: Buffer[] = [];
    let held = 0;
    /** The current line is past `max`: counted, not held. */
    let skipped = -1;
    let line = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, chunk, null);
      if (bytesRead === 0) break;
      const data = buf.subarray(0, bytesRead);
      for (let at = 0; at < bytesRead; ) {
        const nl = data.indexOf(0x0a, at);
        const end = nl < 0 ? bytesRead : nl;
        const length = end - at;
        if (skipped >= 0) skipped += length;
        else if (held + length > max) {
          skipped = held + length;
          pieces = [];
          held = 0;
        } else if (nl < 0) {
          pieces.push(Buffer.from(data.subarray(at, end)));
          held += length;
        }
        if (nl < 0) break;
        line++;
        if (skipped >= 0) {
          yield { kind: 'overlong', line, bytes: skipped };
          skipped = -1;
        } else {
          const text = held === 0 ? data.toString('utf8', at, end) : Buffer.concat([...pieces, data.subarray(at, end)]).toString('utf8');
          pieces = [];
          held = 0;
          yield { kind: 'line', line, text };
        }
        at = nl + 1;
      }
    }
    if (skipped >= 0) yield { kind: 'overlong', line: line + 1, bytes: skipped };
    else if (held > 0) yield { kind: 'partial', line: line + 1, text: Buffer.concat(pieces).toString('utf8') };
  } finally {
    await handle.close();
  }
}

/**
 * verifyChain() over files on disk, read line by line (trailLines): the same checks,
 * findings and messages, in memory bounded by the longest line. A line longer than
 * maxLineBytes is a `malformed` problem. `paths` is iterated once, lazily (a file is
 * asked for when the one before it is done). Rejects with Node's error when a file cannot
 * be read.
 */
export async function verifyTrail(paths: Iterable<string>, options: VerifyOptions & TrailReadOptions = {}): Promise<VerifyResult> {
  const { max } = limits(options);
  const verifier = new ChainVerifier(options);
  for (const path of paths) {
    verifier.beginFile(path);
    for await (const l of trailLines(path, options)) {
      if (l.kind === 'line') verifier.line(l.text);
      else if (l.kind === 'overlong') verifier.overlongLine(max);
      else verifier.partialLine(l.text);
    }
  }
  return verifier.result();
}
