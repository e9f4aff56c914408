/**
 * The built-in fuzzing engine: coverage-guided mutation over a persisted corpus, with the
 * mutations drawn by fast-check. Used where Jazzer.js cannot run (see run.ts) and in CI.
 *
 * - Coverage: statement, branch and function counters that istanbul adds to src/ when
 *   coverage-hooks.mjs is registered (run.ts does it). An input that turns any counter from
 *   zero to non-zero is "interesting" and joins the corpus (first-hit edge coverage, like
 *   libFuzzer's without hit-count buckets). Without the hooks the engine still mutates, just
 *   blind.
 * - Mutations: 1-6 stacked operations per input (bit flips, interesting bytes, u16/u24
 *   length fields set to boundary values, inserts, deletes, duplications, truncation,
 *   splices with another corpus entry, a new selector byte), as fast-check plans from a
 *   seeded generator: a run is reproducible from its seed.
 * - A finding is any exception the target throws (targets throw only on broken
 *   invariants). Each distinct message is kept once, with its input.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import type { FuzzTarget } from './targets.js';

export const COVERAGE_VARIABLE = '__pqmcp_coverage__';

type Counters = Record<string, number | number[]>;
interface FileCoverage {
  s: Counters;
  f: Counters;
  b: Counters;
}

/** First-hit coverage over istanbul's counters (whatever files have loaded so far). */
export class Coverage {
  private pending: [Counters, string, number][] = [];
  private files = new Set<string>();
  covered = 0;
  total = 0;

  private get data(): Record<string, FileCoverage> | undefined {
    return (globalThis as Record<string, unknown>)[COVERAGE_VARIABLE] as Record<string, FileCoverage> | undefined;
  }

  get enabled(): boolean {
    return this.data !== undefined;
  }

  /** Take in counters of files loaded since the last call. */
  private refresh(): void {
    const data = this.data;
    if (!data) return;
    for (const [file, cov] of Object.entries(data)) {
      if (this.files.has(file)) continue;
      this.files.add(file);
      for (const counters of [cov.s, cov.f, cov.b]) {
        for (const [key, value] of Object.entries(counters)) {
          if (Array.isArray(value)) value.forEach((_, i) => this.pending.push([counters, key, i]));
          else this.pending.push([counters, key, -1]);
        }
      }
    }
    this.total = this.covered + this.pending.length;
  }

  /** Counters hit for the first time since the last call. */
  newlyCovered(): number {
    this.refresh();
    let hits = 0;
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const [counters, key, index] = this.pending[i]!;
      const v = counters[key]!;
      if ((index < 0 ? (v as number) : (v as number[])[index]!) > 0) {
        this.pending[i] = this.pending[this.pending.length - 1]!;
        this.pending.pop();
        hits++;
      }
    }
    this.covered += hits;
    return hits;
  }
}

export interface FuzzOptions {
  /** Stop after this many executions (default: unlimited). */
  runs?: number;
  /** Stop after this long (default 10 s). */
  timeMs?: number;
  /** Seed of the mutation generator (default: from the clock; printed in the report). */
  seed?: number;
  /** Directories to read the starting corpus from. */
  corpusDirs: string[];
  /** Where to write new interesting inputs (none: keep them in memory only). */
  saveDir?: string;
  /** Where to write findings (none: keep them in memory only). */
  findingsDir?: string;
  /** Largest input produced (default 24 KiB). */
  maxLength?: number;
  log?: (line: string) => void;
}

export interface Finding {
  message: string;
  input: Uint8Array;
  file?: string;
}

export interface FuzzReport {
  target: string;
  seed: number;
  execs: number;
  seconds: number;
  /** Corpus entries at the start (seeds and saved entries) and added by this run. */
  corpusStart: number;
  corpusAdded: number;
  coverage: { enabled: boolean; covered: number; total: number };
  findings: Finding[];
}

const mutation = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(0, 1, 2, 0x7f, 0x80, 0xfe, 0xff), fc.nat(255)) }),
  fc.record({ op: fc.constant('u16' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 2, 0x7f, 0xff, 0x100, 0x7fff, 0xfffe, 0xffff), relative: fc.integer({ min: -2, max: 2 }), useRelative: fc.boolean() }),
  fc.record({ op: fc.constant('u24' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 0xffff, 0x10000, 0x2000, 0x2001, 0xffffff), relative: fc.integer({ min: -2, max: 2 }), useRelative: fc.boolean() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 128 }) }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 256 }), to: fc.nat() }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('splice' as const), other: fc.nat(), at: fc.nat(), from: fc.nat(), n: fc.integer({ min: 1, max: 4096 }) }),
  fc.record({ op: fc.constant('selector' as const), value: fc.nat(255) }),
);
const plan = fc.record({ entry: fc.nat(), ops: fc.array(mutation, { minLength: 1, maxLength: 6 }) });
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function writeLength(b: Uint8Array, at: number, width: 2 | 3, m: { value: number; relative: number; useRelative: boolean }): void {
  let v = m.value;
  if (m.useRelative) v = Math.max(0, b.length - at - width + m.relative);
  for (let i = width - 1; i >= 0; i--) {
    if (at + i < b.length) b[at + i] = v & 0xff;
    v >>>= 8;
  }
}

/** Apply one mutation; positions wrap around the input's length. */
function apply(input: Uint8Array, m: Mutation, corpus: Uint8Array[], maxLength: number): Uint8Array {
  const n = input.length;
  const pos = (x: number) => (n === 0 ? 0 : x % n);
  switch (m.op) {
    case 'flip': {
      if (n === 0) return input;
      const b = input.slice();
      b[pos(m.at)]! ^= 1 << m.bit;
      return b;
    }
    case 'set': {
      if (n === 0) return input;
      const b = input.slice();
      b[pos(m.at)] = m.value;
      return b;
    }
    case 'u16':
    case 'u24': {
      if (n === 0) return input;
      const b = input.slice();
      writeLength(b, pos(m.at), m.op === 'u16' ? 2 : 3, m);
      return b;
    }
    case 'insert': {
      const at = n === 0 ? 0 : m.at % (n + 1);
      const b = new Uint8Array(Math.min(maxLength, n + m.bytes.length));
      b.set(input.subarray(0, at));
      b.set(m.bytes.subarray(0, b.length - at), at);
      if (b.length > at + m.bytes.length) b.set(input.subarray(at, at + b.length - at - m.bytes.length), at + m.bytes.length);
      return b;
    }
    case 'delete': {
      const at = pos(m.at);
      const b = new Uint8Array(Math.max(0, n - Math.min(m.n, n - at)));
      b.set(input.subarray(0, at));
      b.set(input.subarray(at + Math.min(m.n, n - at)), at);
      return b;
    }
    case 'duplicate': {
      if (n === 0) return input;
      const at = pos(m.at);
      const chunk = input.slice(at, at + m.n);
      const to = m.to % (n + 1);
      const b = new Uint8Array(Math.min(maxLength, n + chunk.length));
      b.set(input.subarray(0, to));
      b.set(chunk.subarray(0, b.length - to), to);
      if (b.length > to + chunk.length) b.set(input.subarray(to, to + b.length - to - chunk.length), to + chunk.length);
      return b;
    }
    case 'truncate':
      return input.slice(0, n === 0 ? 0 : m.at % n);
    case 'splice': {
      const other = corpus[m.other % corpus.length]!;
      if (other.length === 0) return input;
      const from = m.from % other.length;
      const piece = other.subarray(from, from + m.n);
      const at = n === 0 ? 0 : m.at % (n + 1);
      const b = new Uint8Array(Math.min(maxLength, at + piece.length));
      b.set(input.subarray(0, Math.min(at, b.length)));
      b.set(piece.subarray(0, b.length - at), at);
      return b;
    }
    case 'selector': {
      if (n === 0) return Uint8Array.of(m.value);
      const b = input.slice();
      b[0] = m.value;
      return b;
    }
  }
}

const idOf = (input: Uint8Array) => createHash('sha256').update(input).digest('hex').slice(0, 16);

function readCorpus(dirs: string[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    // Any file: the built-in engine writes <id>.bin, libFuzzer (Jazzer) writes <sha1>.
    for (const f of readdirSync(dir).sort()) if (!f.startsWith('.')) out.push(new Uint8Array(readFileSync(path.join(dir, f))));
  }
  return out;
}

/** Fuzz one target within the budget. */
export function fuzz(target: FuzzTarget, coverage: Coverage, options: FuzzOptions): FuzzReport {
  const seed = options.seed ?? Date.now() % 2 ** 31;
  const timeMs = options.timeMs ?? 10_000;
  const maxLength = options.maxLength ?? 24 * 1024;
  const log = options.log ?? (() => {});
  const findings = new Map<string, Finding>();
  // The saved corpus, and always this process's fresh seeds: a target that forks live
  // sessions (handshake) only accepts the messages of its own sessions as honest ones.
  const corpus = [...readCorpus(options.corpusDirs), ...target.seeds()];
  const known = new Set(corpus.map(idOf));
  const corpusStart = corpus.length;
  const t0 = Date.now();
  let execs = 0;

  const exec = (input: Uint8Array): boolean => {
    execs++;
    try {
      target.run(input);
    } catch (err) {
      const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      if (!findings.has(message) && findings.size < 20) {
        const finding: Finding = { message, input: input.slice() };
        if (options.findingsDir) {
          mkdirSync(options.findingsDir, { recursive: true });
          finding.file = path.join(options.findingsDir, `${target.name}-${idOf(input)}.bin`);
          writeFileSync(finding.file, input);
        }
        findings.set(message, finding);
        log(`[${target.name}] FINDING ${message}${finding.file ? ` (input: ${finding.file})` : ''}`);
      }
    }
    return coverage.newlyCovered() > 0;
  };

  // Replay the corpus first: a regression check, and the coverage baseline.
  for (const input of corpus) exec(input);

  let batch = 0;
  const budgetLeft = () => Date.now() - t0 < timeMs && (options.runs === undefined || execs < options.runs);
  while (budgetLeft()) {
    const plans = fc.sample(plan, { numRuns: 200, seed: (seed + batch++ * 7919) | 0 });
    for (const p of plans) {
      if (!budgetLeft()) break;
      let input = corpus[p.entry % corpus.length]!;
      for (const m of p.ops) input = apply(input, m as Mutation, corpus, maxLength);
      if (exec(input)) {
        const id = idOf(input);
        if (!known.has(id)) {
          known.add(id);
          corpus.push(input);
          if (options.saveDir) {
            mkdirSync(options.saveDir, { recursive: true });
            writeFileSync(path.join(options.saveDir, `${id}.bin`), input);
          }
        }
      }
    }
  }
  const report: FuzzReport = {
    target: target.name,
    seed,
    execs,
    seconds: (Date.now() - t0) / 1000,
    corpusStart,
    corpusAdded: corpus.length - corpusStart,
    coverage: { enabled: coverage.enabled, covered: coverage.covered, total: coverage.total },
    findings: [...findings.values()],
  };
  log(
    `[${target.name}] ${execs} execs in ${report.seconds.toFixed(1)} s (seed ${seed}), corpus ${corpusStart} + ${report.corpusAdded}, ` +
      `coverage ${coverage.enabled ? `${coverage.covered}/${coverage.total} counters` : 'off'}, ${report.findings.length} finding(s)`,
  );
  return report;
}
