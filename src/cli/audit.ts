/**
 * `pqmcp audit`: check and read the audit files `pqmcp serve --audit DIR` writes.
 *
 *   pqmcp audit verify <file|dir>...            is the chain whole? where is it broken?
 *   pqmcp audit report <file|dir>... --by agent|tool|issuer [--since <time|duration>]
 *
 * Sharp edges:
 * - Files are read in the order given; a directory stands for its audit files in chain
 *   order (auditFiles(): by the seq in their names, not by name); a missing path, or a directory with no audit file,
 *   is bad input (exit 2), never an "ok" about nothing nor a tamper verdict.
 * - verify exits 1 when it finds tampering (edited, deleted, inserted, reordered or
 *   malformed lines); a crash's partial last line is a warning only. The files alone cannot
 *   show a tail cut off after the last event, or a trail rewritten and re-hashed: give
 *   `--anchor <seq>:<hash>` (the gateway logs a head at each rotation and at shutdown) and
 *   each must be in the trail with that hash. A trail that does not start at seq 0 gets a
 *   note (what came before is not checked).
 * - report counts what the files say; only verify judges the chain (a deleted, inserted or
 *   reordered event, a trail re-hashed after an edit). But a line that is no chained event
 *   at all (malformed, an empty line) or whose own hash does not hold (edited after it was
 *   written) is not counted, and counted apart (`malformedLines`, `editedEvents`, a
 *   warning naming verify): its numbers are known to be wrong, and the report says the
 *   trail is damaged instead of quietly totalling it. A line without its '\n' at a file's
 *   end is never counted, even a whole event (verify: never part of the chain, review 15,
 *   R15-4): counted apart (`incompleteLines`) with a note, not a warning (a crash leaves one).
 * - Both read the files line by line (audit/trail.ts): memory is bounded by the longest
 *   line, not by the trail. A line longer than --max-line-bytes (default 129 MiB, what the
 *   gateway can write with --audit-content) is not read: verify reports it as malformed,
 *   report skips it with a warning on stderr.
 */
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { parseLine } from '../audit/chain.js';
import type { ChainHead, VerifyResult } from '../audit/chain.js';
import { ReportTally } from '../audit/report.js';
import type { ReportKey } from '../audit/report.js';
import { DEFAULT_MAX_LINE_BYTES, trailLines, verifyTrail } from '../audit/trail.js';
import { auditFiles } from '../audit/writer.js';
import { TIME_FORMS, integerFlag, list, parse, parseDuration, parseTime, str } from './args.js';
import type { Parsed } from './args.js';
import type { Context } from './context.js';
import { subcommand } from './context.js';
import { CliError, UsageError, humanDuration, printResult } from './output.js';

export const AUDIT_USAGE = `pqmcp audit verify|report <audit file or directory>...

  verify <file|dir>... [--anchor <seq>:<hash>]...
                                check the hash chain; say where an event was edited,
                                deleted, inserted or reordered (exit 1 if so); each
                                --anchor (a chain head the gateway logged) must be in the
                                trail with that hash: a cut-off tail or a rewrite fails
  report <file|dir>... --by agent|tool|issuer [--since <time|duration>]
                                calls, errors, denials, bytes and time per agent, tool or issuer
                                (--since 2026-12-01, --since 24h), and the failed handshakes
                                (those only counted in summaries included); an event
                                whose hash does not hold, or a line that is no event,
                                is not counted but counted apart, with a warning
  --max-line-bytes <n>          longest line read (default ${DEFAULT_MAX_LINE_BYTES}, 129 MiB); a longer
                                one is not read: malformed for verify, skipped by report

  The files are what pqmcp serve --audit <dir> writes (format in docs/cli.md).`;

function expand(paths: string[], command: string): string[] {
  if (paths.length === 0) throw new UsageError(`audit ${command}: give audit files or a directory (see pqmcp audit --help)`);
  const files: string[] = [];
  for (const path of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(path).isDirectory();
    } catch {
      // Bad input (exit 2), not tampering (exit 1): a mistyped path must not raise a tamper alarm.
      throw new CliError('ERR_FILE_NOT_FOUND', `${path}: no such file or directory`);
    }
    if (!isDir) {
      files.push(path);
      continue;
    }
    const found = auditFiles(path);
    // "ok: 0 events" about a directory that holds no trail (a parent or a wrong directory)
    // would read as a clean verification of nothing.
    if (found.length === 0) throw new CliError('ERR_FILE_NOT_FOUND', `${path}: no audit files here (audit-<time>-<seq>.jsonl, written by pqmcp serve --audit <dir>)`);
    files.push(...found);
  }
  return files;
}

/** Run `read` over the files, naming the one that could not be read (exit 1, as before any output). */
async function reading<T>(read: () => Promise<T>, current: () => string | undefined): Promise<T> {
  try {
    return await read();
  } catch (err) {
    const path = current();
    if (path === undefined || (err as NodeJS.ErrnoException).syscall === undefined) throw err;
    throw new CliError('ERR_FILE_READ', `cannot read ${path}: ${(err as Error).message}`, 1, { cause: err });
  }
}

const LINE_OPTION = { 'max-line-bytes': { type: 'string' } } as const;

function maxLineBytesOf(p: Parsed): number {
  return integerFlag(p, 'max-line-bytes', { min: 1024, unit: 'bytes' }) ?? DEFAULT_MAX_LINE_BYTES;
}

/** `--anchor <seq>:<hash>`, as the gateway logs a chain head ("chain head seq N <hash>"). */
function anchorOf(text: string): ChainHead {
  const m = /^(\d{1,15})[: ]([0-9a-fA-F]{64})$/.exec(text);
  if (!m) throw new UsageError(`audit verify: --anchor ${JSON.stringify(text)} must be <seq>:<64 hex digits> (a chain head the gateway logged)`);
  return { seq: Number(m[1]), hash: m[2]!.toLowerCase() };
}

async function verify(ctx: Context, argv: string[]): Promise<number> {
  const p = parse(argv, { anchor: { type: 'string', multiple: true }, ...LINE_OPTION }, 'audit verify');
  const anchors = list(p, 'anchor').map(anchorOf);
  const maxLineBytes = maxLineBytesOf(p);
  const files = expand(p.positionals, 'verify');
  let current: string | undefined;
  const inOrder = function* (): Generator<string> {
    for (const f of files) yield (current = f);
  };
  const result: VerifyResult = await reading(() => verifyTrail(inOrder(), { anchors, maxLineBytes }), () => current);
  printResult(ctx.output, ctx.json, result, () => {
    const lines = result.problems.map((x) => `${x.file}:${x.line}: ${x.kind}: ${x.message}`);
    if (result.first !== undefined && !result.fromGenesis) {
      lines.push(`note: the trail read starts at seq ${result.first.seq}, not at the first event ever written: what came before it (archived files, or a start cut off) is not checked${anchors.length ? '' : '; --anchor checks it against a head kept elsewhere'}`);
    }
    if (result.ok) {
      const range = result.first && result.head ? `, seq ${result.first.seq} to ${result.head.seq}, head ${result.head.hash}` : '';
      const anchored = anchors.length ? `, ${result.anchorsMatched} anchor${result.anchorsMatched === 1 ? '' : 's'} matched` : '';
      lines.push(`ok: ${result.events} event${result.events === 1 ? '' : 's'} in ${result.files} file${result.files === 1 ? '' : 's'}${range}${anchored}`);
    } else {
      lines.push(`TAMPERED: ${result.problems.filter((x) => x.kind !== 'incomplete').length} problem(s) in ${result.events} events (first: ${basename(result.problems[0]!.file)}:${result.problems[0]!.line})`);
    }
    return lines;
  });
  return result.ok ? 0 : 1;
}

function sinceOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (/^\d+[smhdwy]$/.test(text)) return Date.now() - parseDuration(text, '--since') * 1000;
  try {
    return parseTime(text, '--since') * 1000;
  } catch {
    // parseTime's message would leave the durations out (" 24h" is neither, as typed).
    throw new UsageError(`--since must be a duration ago (24h, 7d) or a time: ${TIME_FORMS}; got ${JSON.stringify(text)}`);
  }
}

async function report(ctx: Context, argv: string[]): Promise<number> {
  const p = parse(argv, { by: { type: 'string' }, since: { type: 'string' }, ...LINE_OPTION }, 'audit report');
  const by = str(p, 'by') ?? 'agent';
  if (by !== 'agent' && by !== 'tool' && by !== 'issuer') throw new UsageError('--by must be agent, tool or issuer');
  const since = sinceOf(str(p, 'since'));
  const maxLineBytes = maxLineBytesOf(p);
  const files = expand(p.positionals, 'report');
  // One event at a time: what is kept is a row per key and a count per failure code.
  const tally = new ReportTally({ by: by as ReportKey, ...(since !== undefined ? { since } : {}) });
  let current: string | undefined;
  let skippedLines = 0;
  let firstSkipped = '';
  /** Complete lines that are no chained event, and events whose own hash does not hold (verify: malformed, edited). */
  let malformedLines = 0;
  let editedEvents = 0;
  let firstDamaged = '';
  /** Lines without their '\n' at a file's end (verify: incomplete, or inserted). */
  let incompleteLines = 0;
  let firstIncomplete = '';
  await reading(async () => {
    for (const file of files) {
      current = file;
      for await (const l of trailLines(file, { maxLineBytes })) {
        if (l.kind === 'overlong') {
          if (skippedLines++ === 0) firstSkipped = `${file}:${l.line}`;
          continue;
        }
        // Never part of the chain, whole event or not (verify: incomplete, or inserted when it does not follow).
        if (l.kind === 'partial') {
          if (incompleteLines++ === 0) firstIncomplete = `${file}:${l.line}`;
          continue;
        }
        const parsed = l.text === '' ? undefined : parseLine(l.text);
        if (parsed?.intact) {
          tally.add(parsed.event);
          continue;
        }
        if (malformedLines + editedEvents === 0) firstDamaged = `${file}:${l.line}`;
        if (parsed) editedEvents++;
        else malformedLines++;
      }
    }
  }, () => current);
  if (skippedLines > 0 && !ctx.json) ctx.output.err(`pqmcp audit report: warning: ${skippedLines} line(s) longer than ${maxLineBytes} bytes (--max-line-bytes) not read, the first at ${firstSkipped}`);
  const skippedEvents = tally.skipped;
  if (skippedEvents > 0 && !ctx.json) ctx.output.err(`pqmcp audit report: warning: ${skippedEvents} event(s) with a field of the wrong type not counted (an edited trail? run pqmcp audit verify)`);
  if (editedEvents + malformedLines > 0 && !ctx.json) {
    const what = [
      ...(editedEvents > 0 ? [`${editedEvents} event(s) whose hash does not hold (changed after they were written)`] : []),
      ...(malformedLines > 0 ? [`${malformedLines} line(s) that are no chained audit event`] : []),
    ];
    ctx.output.err(`pqmcp audit report: warning: the trail is damaged: ${what.join(' and ')} not counted, the first at ${firstDamaged}; run pqmcp audit verify`);
  }
  if (incompleteLines > 0 && !ctx.json) ctx.output.err(`pqmcp audit report: note: ${incompleteLines} line(s) without their end at a file's end (what a crash leaves; not part of the chain) not counted, the first at ${firstIncomplete}`);
  const rows = tally.rows();
  const handshakeFailures = tally.failures();
  printResult(ctx.output, ctx.json, { by, since: since === undefined ? null : new Date(since).toISOString(), rows, handshakeFailures, skippedLines, skippedEvents, editedEvents, malformedLines, incompleteLines }, () => {
    const header = [by, 'calls', 'errors', 'denials', 'req bytes', 'resp bytes', 'time', 'avg'];
    const body = rows.map((r) => [r.key, String(r.calls), String(r.errors), String(r.denials), String(r.requestBytes), String(r.responseBytes), humanDuration(r.totalMs), humanDuration(r.calls ? r.totalMs / r.calls : 0)]);
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
    const fmt = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    const f = handshakeFailures;
    const codes = Object.entries(f.byCode)
      .sort((a, b) => b[1] - a[1])
      .map(([code, n]) => `${code} ${n}`)
      .join(', ');
    const failureLine = `failed handshakes: ${f.failures}${f.summarised > 0 ? ` (${f.summarised} of them counted in summaries)` : ''}${codes ? `: ${codes}` : ''}`;
    return [...(rows.length === 0 ? ['no requests'] : [fmt(header), ...body.map(fmt)]), failureLine];
  });
  return 0;
}

export async function auditCommand(ctx: Context, argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) return ctx.help(AUDIT_USAGE);
  return await subcommand(ctx, argv, 'audit', { verify: (a) => verify(ctx, a), report: (a) => report(ctx, a) }, AUDIT_USAGE);
}

