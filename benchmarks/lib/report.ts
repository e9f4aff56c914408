/**
 * Markdown tables from a results file: targets, handshake, throughput, latency, MCP and
 * memory. Cells read "median (min-max)" over the repetitions of one run; ratios are
 * pqmcp over the alternative, from the medians.
 */
import { label } from './results.js';
import type { BufferutilKey, Results } from './results.js';
import type { Summary } from './stats.js';
import { COLD_START_LABELS } from './coldstart.js';
import type { ColdStartCommand } from './coldstart.js';

function num(x: number | undefined, digits: number): string {
  if (x === undefined || !Number.isFinite(x)) return 'n/a';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "median (min-max)" with `digits` decimals. */
export function cell(s: Summary | undefined, digits: number, range = true): string {
  if (!s) return 'n/a';
  if (!range || s.n < 2) return num(s.median, digits);
  return `${num(s.median, digits)} (${num(s.min, digits)}-${num(s.max, digits)})`;
}

const ratio = (x: number | undefined) => (x === undefined ? 'n/a' : `${num(x, 2)}x`);

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

export function runtimeLine(r: Results): string {
  const rt = r.runtime;
  return `Node ${rt.node} (OpenSSL ${rt.openssl}), ${rt.cpu}, ${rt.cores} cores, load average ${rt.loadAverage.join(' / ')} at start; pqmcp backend \`${rt.pqmcpBackend}\`; ${r.mode} run of ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${Math.round(r.durationSeconds)} s.`;
}

function targets(r: Results): string {
  const rows = r.targets.map((t) => [t.target, ratio(t.value), `${t.op} ${t.limit}`, t.value === undefined ? 'not measured' : t.pass === undefined ? 'report' : t.pass ? 'met' : '**missed**']);
  return table(['target', 'measured', 'target', 'verdict'], rows);
}

function handshake(r: Results): string {
  const hs = r.handshake;
  if (!hs) return '_not measured_';
  const base = hs.variants['wss-pq'] ? 'wss-pq' : 'wss';
  const rows = Object.entries(hs.variants).map(([v, x]) => {
    const key = `handshake.time.${v}/${base}`;
    const negotiated = x.details.group ? `${x.details.group}, ${x.details.cipher}` : (x.details.suite?.replace('PQMCP_XWING_MLDSA65ED25519_', '') ?? '');
    return [
      `${v}`,
      cell(x.firstResponseMs, 2),
      v.startsWith('pqmcp') ? ratio(r.ratios[key]) : '',
      cell(x.channelReadyMs, 2, false),
      cell(x.clientCpuMs, 2),
      cell(x.serverCpuMs, 2),
      cell(x.handshakesPerSecond, 0),
      cell(x.serverCpuMsUnderLoad, 2, false),
      negotiated,
    ];
  });
  const unavailable = Object.entries(hs.unavailable).map(([v, why]) => `\n\n${v}: not measured (${why}).`).join('');
  return (
    table(['variant', 'first MCP response, ms', `vs ${base}`, 'channel ready, ms', 'client CPU, ms', 'server CPU, ms', `handshakes/s (${hs.concurrency} clients)`, 'server CPU under load, ms', 'negotiated'], rows) +
    `\n\n${hs.rounds * hs.batch} handshakes per variant (${hs.rounds} interleaved rounds of ${hs.batch}, connections ${(hs.warmup ?? 1) + 1}-${(hs.warmup ?? 1) + hs.rounds * hs.batch} of a fresh process${hs.loadAverage ? `, load average ${hs.loadAverage.default}` : ''}); handshakes/s over ${hs.loadSeconds} s windows.` +
    unavailable +
    warmth(r)
  );
}

/** The same connection cold (a fresh process's first), as above, and warm. */
function warmth(r: Results): string {
  const hs = r.handshake!;
  const base = hs.variants['wss-pq'] ? 'wss-pq' : 'wss';
  const anyWarm = Object.values(hs.variants).some((x) => x.warm?.firstResponseMs);
  if (!anyWarm && !Object.values(hs.variants).some((x) => x.cold)) return '';
  const ms = (x: number | undefined) => (x === undefined ? '' : x.toFixed(2));
  const rows = Object.entries(hs.variants).map(([v, x]) => {
    const pq = v.startsWith('pqmcp');
    return [
      v,
      ms(x.cold?.firstResponseMs),
      pq ? ratio(r.ratios[`handshake.cold.time.${v}/${base}`]) : '',
      cell(x.firstResponseMs, 2, false),
      pq ? ratio(r.ratios[`handshake.time.${v}/${base}`]) : '',
      cell(x.warm?.firstResponseMs, 2, false),
      pq ? ratio(r.ratios[`handshake.warm.time.${v}/${base}`]) : '',
      x.warm ? `${cell(x.warm.clientCpuMs, 2, false)} / ${cell(x.warm.serverCpuMs, 2, false)}` : '',
      pq ? ratio(r.ratios[`handshake.warm.cpu.${v}/${base}`]) : '',
    ];
  });
  const load = hs.loadAverage ? ` Load average (1 min) ${hs.loadAverage.default} at the start, ${hs.loadAverage.warm ?? '-'} at the warm rounds, ${hs.loadAverage.end} at the end.` : '';
  return (
    `\n\nCold, first connections and warm (the issue 12 verdicts are judged on the first connections, the table above):\n\n` +
    table(['variant', 'cold: 1st connection, ms', `vs ${base}`, `connections ${(hs.warmup ?? 1) + 1}-${(hs.warmup ?? 1) + hs.rounds * hs.batch}, ms`, `vs ${base}`, 'warm, ms', `vs ${base}`, 'warm CPU client / server, ms', `vs ${base}`], rows) +
    `\n\nCold: one connection per run (fresh client and server processes, modules already imported). Warm: after the handshakes/s windows and ${hs.settle ?? 0} more sequential connections per process, ${hs.warmRounds ?? 0} interleaved rounds of ${hs.batch}.${load}`
  );
}

function throughput(r: Results, bu: BufferutilKey): string {
  const tp = r.throughput[bu];
  if (!tp) return `_not measured: ${r.skipped[bu] ?? 'skipped'}_`;
  const variants = Object.keys(tp.variants);
  const bases = ['ws', 'wss'].filter((b) => tp.variants[b]);
  const alts = variants.filter((v) => v.startsWith('pqmcp'));
  const dirs = [
    ['c2s', 'client -> server'],
    ['s2c', 'server -> client'],
  ] as const;
  const at = (v: string, size: number) => tp.variants[v]!.sizes[String(size)];
  const rate: string[][] = [];
  const cpu: string[][] = [];
  for (const size of tp.sizes) {
    for (const [dir, name] of dirs) {
      rate.push([
        label(size),
        name,
        ...variants.map((v) => cell(at(v, size)?.[`${dir}MBps`], 0)),
        ...alts.flatMap((v) => bases.map((b) => ratio(r.ratios[`throughput.${bu}.${dir}.${size}.${v}/${b}`]))),
      ]);
      cpu.push([
        label(size),
        name,
        ...variants.map((v) => {
          const c = at(v, size);
          const sender = dir === 'c2s' ? c?.c2sClientCpuUsPerMB : c?.s2cServerCpuUsPerMB;
          const receiver = dir === 'c2s' ? c?.c2sServerCpuUsPerMB : c?.s2cClientCpuUsPerMB;
          return `${cell(sender, 0, false)} / ${cell(receiver, 0, false)}`;
        }),
        ...alts.map((v) => ratio(r.ratios[`throughput.${bu}.${dir}.${size}.cpu.${v}/ws`])),
      ]);
    }
  }
  const lat = tp.sizes.map((size) => [label(size), ...variants.map((v) => `${cell(at(v, size)?.rttP50Us, 0, false)} / ${cell(at(v, size)?.rttP99Us, 0, false)}`)]);
  const details = variants
    .map((v) => {
      const text = Object.entries(tp.variants[v]!.details)
        .map(([k, x]) => `${k} ${x}`)
        .join(', ');
      return text ? `${v}: ${text}` : '';
    })
    .filter(Boolean)
    .join('; ');
  return [
    'MB/s (median, min-max over rounds) and ratios of the medians:',
    table(['message', 'direction', ...variants, ...alts.flatMap((v) => bases.map((b) => `${v}/${b}`))], rate),
    'CPU time per MB moved, sender / receiver process, µs (medians), and the total (both sides) over plain ws:',
    table(['message', 'direction', ...variants, ...alts.map((v) => `${v}/ws CPU`)], cpu),
    'Ping-pong round trip, p50 / p99 µs (medians over rounds):',
    table(['message', ...variants], lat),
    `bufferutil: client ${tp.bufferutil}, server ${tp.serverBufferutil}; ${tp.rounds} interleaved rounds. ${details}.`,
  ].join('\n\n');
}

function mcp(r: Results): string {
  const m = r.mcp;
  if (!m) return '_not measured_';
  const variants = Object.keys(m.variants);
  const extras = variants.filter((v) => v.startsWith('pqmcp-policy') || v === 'pqmcp-audit');
  const rows: string[][] = [];
  for (const p of Object.keys(m.variants.pqmcp?.payloads ?? m.variants[variants[0]!]?.payloads ?? {})) {
    for (const mode of ['seq', 'par32'] as const) {
      rows.push([
        p === '100' ? '100 B' : label(Number(p)),
        mode === 'seq' ? 'sequential' : `${m.inFlight} in flight`,
        ...variants.map((v) => cell(m.variants[v]!.payloads[p]?.[`${mode}CallsPerSec`], 0)),
        ratio(r.ratios[`mcp.${p}.${mode}.pqmcp/ws`]),
        ...extras.map((v) => ratio(r.ratios[`mcp.${p}.${mode}.${v}/pqmcp`])),
        ...variants.map((v) => `${cell(m.variants[v]!.payloads[p]?.[`${mode}P50Us`], 0, false)} / ${cell(m.variants[v]!.payloads[p]?.[`${mode}P99Us`], 0, false)}`),
      ]);
    }
  }
  return (
    table(['payload', 'mode', ...variants.map((v) => `${v} calls/s`), 'pqmcp/ws', ...extras.map((v) => `${v}/pqmcp`), ...variants.map((v) => `${v} p50 / p99 µs`)], rows) +
    `\n\n${m.rounds} interleaved rounds of ${m.measureSeconds} s per cell.`
  );
}

function memory(r: Results): string {
  const entries = Object.entries(r.memory);
  if (entries.length === 0) return '_not measured_';
  const rows = entries.map(([v, x]) => [
    v,
    `${cell(x.clientKiBPerSession, 1)}`,
    `${cell(x.serverKiBPerSession, 1)}`,
    `${num(x.clientKiBPerSessionTotal, 1)} / ${num(x.serverKiBPerSessionTotal, 1)}`,
    `${num(x.clientHeapKiBPerSession, 1)} / ${num(x.serverHeapKiBPerSession, 1)}`,
    num(x.senderMiBPerMiB, 2),
    num(x.receiverMiBPerMiB, 2),
  ]);
  const sessions = entries.map(([, x]) => x.sessions).find((n) => n !== undefined);
  const burst = entries.map(([, x]) => x.burst).find((n) => n !== undefined);
  return (
    table(['variant', 'client RSS KiB/session', 'server RSS KiB/session', 'RSS KiB/session over all steps, client / server', 'JS heap + external KiB/session, client / server', 'sender MiB per 1 MiB in flight', 'receiver MiB per 1 MiB in flight'], rows) +
    `\n\n${sessions ?? 'n/a'} idle sessions opened in 4 steps after an uncounted first one, both processes with V8's young generation capped at 1 MiB per semi-space (every variant alike), measured once both have been idle for 2 s, after GCs until RSS stops falling (RSS: median, min-max over the steps, and over all steps, which the targets use; heap: over all steps); bursts of ${burst ?? 'n/a'} x 1 MiB. Each part in a fresh client and server process.`
  );
}

function coldstart(r: Results): string {
  const c = r.coldstart;
  if (!c) return `_not measured${r.skipped['coldstart'] ? `: ${r.skipped['coldstart']}` : ''}_`;
  const rows = (Object.keys(COLD_START_LABELS) as ColdStartCommand[]).map((k) => [COLD_START_LABELS[k], cell(c.ms[k], 1), k === 'node' ? '' : ratio(r.ratios[`coldstart.${k}/node`])]);
  return `The built CLI (\`dist/cli.js\`) spawned ${c.runs} times per command, the commands interleaved; wall ms, median (min-max).\n\n${table(['command', 'ms', 'vs node -e 0'], rows)}`;
}

/** The whole Markdown section for one results file. */
function browser(r: Results): string {
  const b = r.browser;
  if (!b) return `_not measured${r.skipped['browser'] ? `: ${r.skipped['browser']}` : ''}_`;
  const rows = [
    [`page in Chromium ${b.chromium}`, cell(b.browserMs, 1)],
    ['Node process', cell(b.nodeMs, 1)],
    ['browser / Node', ratio(r.ratios['browser.handshake.browser/node'])],
  ];
  return `SDK Client connect over pqmcp (mutual handshake + initialize), \`noble\` backend on both, the same Node server; ${b.rounds} x ${b.handshakesPerRound} handshakes each, interleaved, the first of each batch dropped (cold start).\n\n${table(['client', 'ms'], rows)}`;
}

export function markdown(r: Results): string {
  const parts = [
    `_${runtimeLine(r)}_`,
    `#### Targets\n\n${targets(r)}`,
    `#### Handshake: TCP connect to the first MCP response\n\n${handshake(r)}`,
    `#### Throughput and latency, without bufferutil\n\n${throughput(r, 'no-bufferutil')}`,
    `#### Throughput and latency, with bufferutil\n\n${throughput(r, 'bufferutil')}`,
    `#### MCP tools/call (echo tool)\n\n${mcp(r)}`,
    `#### Memory\n\n${memory(r)}`,
    `#### Cold start of the CLI\n\n${coldstart(r)}`,
    `#### Browser client: handshake from a page\n\n${browser(r)}`,
  ];
  if (r.errors.length) parts.push(`#### Errors\n\n${r.errors.map((e) => `- ${e.split('\n')[0]}`).join('\n')}`);
  return parts.join('\n\n') + '\n';
}
