/**
 * CPU time auditing and metrics add per MCP `tools/call` (printed, not asserted): real SDK
 * Client and McpServer over pqmcp (native backend, real WebSockets on 127.0.0.1), client and
 * server in THIS process, so the CPU time per call (process.cpuUsage over a batch of calls)
 * is the whole cost of a call on both sides and a noisy machine slows every variant alike.
 * Variants, each its own server and connected client, measured in interleaved rounds (order
 * rotated every round):
 *
 *   off      no onAuditEvent
 *   hooks    no onAuditEvent, one message hook that does nothing (the hooks pipeline alone)
 *   events   onAuditEvent with a sink that does nothing (the request auditor hook alone:
 *            tracking, hashing, event objects)
 *   audit    an AuditLog file (hash chain, batched writes), as `pqmcp serve --audit`
 *   metrics  OpenTelemetry SDK metrics (Prometheus exporter), as `pqmcp serve --metrics`:
 *            no request/response hashes (auditHashes false, as the gateway sets it
 *            without --audit)
 *   both     both, as `pqmcp serve --audit --metrics` (the suite's `pqmcp-audit`)
 *
 * First, isolated (no transport, no SDK): the same request and response (100 B and 10 KiB)
 * through a MessagePipeline with the request auditor (hooks[0]) and each variant's sink,
 * over the same pipeline with no hook: the audit path's own CPU µs per call (the AuditLog's
 * file writes of the batch included), free of the noise of the rest of a call.
 *
 * Then the transport. Cells: 100 B and 10 KiB payloads, sequential and 32 in flight. Prints per cell the
 * median and min CPU µs per call of each variant and the ratio median(variant)/median(off)
 * (throughput with it on over off; >= 0.9 is the 10 % target). The benchmark suite's
 * `mcp.<p>.<mode>.pqmcp-audit/pqmcp` ratios measure the same across processes.
 *
 *   npm run bench:audit [-- --calls 1000 --rounds 7 --only off,both --payloads 100 --modes seq
 *                          --isolated-only | --no-isolated]
 *   node --cpu-prof --import tsx benchmarks/audit-cpu.ts --only both   (profile one variant)
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { selectBackend } from '../src/crypto/select.js';
import { PqmcpClientTransport } from '../src/transport/client.js';
import { serveMcp } from '../src/transport/server.js';
import type { PqmcpServer } from '../src/transport/server.js';
import { benchAuditSink } from './lib/audit-sink.js';
import type { BenchAuditSink } from './lib/audit-sink.js';
import { requestAuditor } from '../src/audit/request-hook.js';
import { MessagePipeline } from '../src/transport/message-hooks.js';
import type { VerifiedPeer } from '../src/identity/trust.js';
import { CLIENT_AGENT_ID, SERVER_AGENT_ID, identityOf, makePqmcpFixture, trustOf } from './lib/fixtures.js';
import { echoCalls, makeEchoServer } from './lib/mcp-echo.js';
import { rotate } from './lib/stats.js';
import { loadavg } from 'node:os';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : undefined);
const calls = Number(opt('calls')) || 1000;
const rounds = Number(opt('rounds')) || 7;
const ALL = ['off', 'hooks', 'events', 'audit', 'metrics', 'both'] as const;
type Variant = (typeof ALL)[number];
const only = opt('only')?.split(',') as Variant[] | undefined;
const variants: Variant[] = only ?? ALL.filter((v) => v !== 'hooks');
const payloads = (opt('payloads') ?? '100,10240').split(',').map(Number);
const modes = (opt('modes') ?? 'seq,par32').split(',') as Array<'seq' | 'par32'>;

/** The audit path alone: µs of CPU per request + response through a pipeline with the auditor. */
async function isolated(): Promise<void> {
  const peer = { agentId: CLIENT_AGENT_ID, issuer: 'issuer://pqmcp-bench', fingerprint: 'ab'.repeat(32), serial: '01' } as unknown as VerifiedPeer;
  const session = { role: 'server' as const, peer, sessionId: 'cd'.repeat(32), remoteAddress: '127.0.0.1' };
  const encoder = new TextEncoder();
  const pipes = new Map<Variant, { pipe: MessagePipeline; close(): Promise<void> }>();
  for (const v of variants) {
    const sink = v === 'off' || v === 'hooks' ? undefined : v === 'events' ? { sink: () => {}, close: async () => {} } : await benchAuditSink({ audit: v === 'audit' || v === 'both', metrics: v === 'metrics' || v === 'both' });
    const hooks = sink ? [requestAuditor(sink.sink, { hashes: v !== 'metrics' })] : v === 'hooks' ? [{ name: 'nothing' }] : [];
    const pipe = new MessagePipeline(hooks, session, { toPeer: async () => {}, toLocal: () => {}, onerror: (e) => { throw e; } });
    pipes.set(v, { pipe, close: async () => { pipe.close(); await sink?.close(); } });
  }
  const n = Number(opt('isolated-calls')) || calls * 5;
  const run = async (pipe: MessagePipeline, p: number): Promise<number> => {
    const text = 'x'.repeat(p);
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const data = encoder.encode(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'echo', arguments: { text } } }));
      pipe.fromPeer(JSON.parse(new TextDecoder().decode(data)), data.length, data);
      void pipe.toPeer({ jsonrpc: '2.0', id: i, result: { content: [{ type: 'text', text }] } });
    }
    await new Promise((resolve) => setImmediate(resolve)); // the AuditLog's writes of these events
    const used = process.cpuUsage(start);
    return (used.user + used.system) / n;
  };
  const xs = new Map<string, number[]>();
  for (const p of payloads) for (const v of variants) await run(pipes.get(v)!.pipe, p);
  for (let r = 0; r < rounds; r++) for (const p of payloads) for (const v of rotate(variants, r)) {
    xs.set(`${p}|${v}`, [...(xs.get(`${p}|${v}`) ?? []), await run(pipes.get(v)!.pipe, p)]);
  }
  for (const { close } of pipes.values()) await close();
  console.log(`audit path alone (pipeline + auditor + sink, no transport), CPU per request + response, ${n} calls x ${rounds} rounds, Node ${process.version}, load average ${loadavg()[0]!.toFixed(1)}`);
  for (const [label, stat] of [['median', median], ['lower quartile', quartile]] as const) {
    for (const p of payloads) {
      const off = stat(xs.get(`${p}|off`) ?? [0]);
      console.log(`  ${p === 100 ? '100 B' : `${p / 1024} KiB`} (${label}): ${variants.map((v) => `${v} ${stat(xs.get(`${p}|${v}`)!).toFixed(2)}${v === 'off' ? '' : ` (+${(stat(xs.get(`${p}|${v}`)!) - off).toFixed(2)})`}`).join(', ')} µs`);
    }
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** Lower quartile: the machine's load only ever adds CPU time (cache and core sharing), so the faster batches show the code's own cost. */
const quartile = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 4)]!;
if (!args.includes('--no-isolated')) await isolated();
if (args.includes('--isolated-only')) process.exit(0);

const fixture = makePqmcpFixture();
const backend = selectBackend('native');

interface Rig {
  client: Client;
  server: PqmcpServer;
  sink: BenchAuditSink | undefined;
}

async function rig(variant: Variant): Promise<Rig> {
  const sink = variant === 'off' || variant === 'hooks' ? undefined : variant === 'events' ? { sink: () => {}, close: async () => {} } : await benchAuditSink({ audit: variant === 'audit' || variant === 'both', metrics: variant === 'metrics' || variant === 'both' });
  const server = await serveMcp(
    { identity: identityOf(fixture, 'server', backend), trust: trustOf(fixture), backend, host: '127.0.0.1', port: 0, ...(sink ? { onAuditEvent: sink.sink } : {}), ...(variant === 'metrics' ? { auditHashes: false } : {}), ...(variant === 'hooks' ? { hooks: [{ name: 'nothing' }] } : {}) },
    () => makeEchoServer(),
  );
  const client = new Client({ name: 'pqmcp-bench', version: '1.0.0' });
  const transport = new PqmcpClientTransport(`ws://127.0.0.1:${server.address().port}/`, { identity: identityOf(fixture, 'client', backend), trust: trustOf(fixture), backend, expectedServerId: SERVER_AGENT_ID });
  await client.connect(transport as Transport);
  return { client, server, sink };
}

/** CPU µs per call over `n` calls, `inFlight` at a time. */
async function measure(client: Client, text: string, n: number, inFlight: number): Promise<number> {
  const start = process.cpuUsage();
  await echoCalls(client, text, n, inFlight);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

const rigs = new Map<Variant, Rig>();
for (const v of variants) rigs.set(v, await rig(v));
const cells = payloads.flatMap((p) => modes.map((m) => ({ p, m, n: m === 'seq' ? 1 : 32, text: 'x'.repeat(p) })));
const callsFor = (p: number): number => (p > 1000 ? Math.max(100, Math.round(calls / 2)) : calls);
for (const v of variants) for (const c of cells) await measure(rigs.get(v)!.client, c.text, callsFor(c.p), c.n); // warm up
const samples = new Map<string, number[]>();
const loads: number[] = [];
for (let r = 0; r < rounds; r++) {
  loads.push(loadavg()[0]!);
  for (const [ci, c] of cells.entries()) {
    for (const v of rotate(variants, r + ci)) {
      const key = `${c.p}|${c.m}|${v}`;
      samples.set(key, [...(samples.get(key) ?? []), await measure(rigs.get(v)!.client, c.text, callsFor(c.p), c.n)]);
    }
  }
}
loads.push(loadavg()[0]!);
for (const { client, server, sink } of rigs.values()) {
  await client.close();
  await server.close();
  await sink?.close();
}

console.log(`auditing and metrics, CPU per tools/call (client + server in one process), ${calls} calls (10 KiB: ${callsFor(10240)}) x ${rounds} rounds, Node ${process.version}, load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`);
for (const c of cells) {
  console.log(`  ${c.p === 100 ? '100 B' : `${c.p / 1024} KiB`} ${c.m === 'seq' ? 'sequential' : '32 in flight'}`);
  const off = samples.get(`${c.p}|${c.m}|off`);
  for (const v of variants) {
    const xs = samples.get(`${c.p}|${c.m}|${v}`)!;
    const paired = off ? median(xs.map((x, r) => off[r]! / x)) : 0;
    const ratio = off && v !== 'off' ? `  off/${v} ${(median(off) / median(xs)).toFixed(3)} (q1 ${(quartile(off) / quartile(xs)).toFixed(3)}, min ${(Math.min(...off) / Math.min(...xs)).toFixed(3)}, paired ${paired.toFixed(3)})` : '';
    console.log(`    ${v.padEnd(8)} median ${median(xs).toFixed(1).padStart(7)} µs  min ${Math.min(...xs).toFixed(1).padStart(7)}  max ${Math.max(...xs).toFixed(1).padStart(7)}${ratio}`);
  }
}
