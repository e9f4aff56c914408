/**
 * MCP `tools/call` round trips through the real SDK (Client, McpServer) with an `echo`
 * tool, 100 B and 10 KiB text payloads:
 *
 *   pqmcp      PqmcpClientTransport to serveMcp, server in its own process
 *   pqmcp-policy         the same with a Cedar policy permitting the call (serveMcp's `policy`):
 *                        the decision is memoised per session, as by default
 *   pqmcp-policy-nomemo  the same with `memo: false` and a policy that reads context: Cedar
 *                        decides every call (the cost of a decision the memo cannot answer)
 *   pqmcp-audit  the same with auditing and metrics on in the server (every event to an
 *              AuditLog file and to OpenTelemetry metrics, as `pqmcp serve --audit --metrics`)
 *   ws         the same SDK pair over the baseline ws transport (lib/ws-mcp-transport.ts),
 *              server in its own process
 *   inmemory   the SDK's InMemoryTransport, client and server in this process (the ceiling)
 *
 *   seq    one call at a time: calls per second, p50 and p99 latency
 *   par32  32 calls in flight (32 loops, each awaiting its own call): calls per second,
 *          p50 and p99 latency
 *
 * Every variant runs in its own measuring process (lib/variants.ts); each measurement runs
 * for a fixed time; the runner interleaves the variants, order rotated every round; medians
 * over rounds with min and max.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { PqmcpClientTransport } from '../../src/transport/client.js';
import { describeBackend, selectBackend } from '../../src/crypto/select.js';
import { now, startServer, within } from '../lib/context.js';
import { withVariants } from '../lib/variants.js';
import type { VariantSession } from '../lib/variants.js';
import type { SuiteContext } from '../lib/context.js';
import { SERVER_AGENT_ID, identityOf, trustOf } from '../lib/fixtures.js';
import { makeEchoServer } from '../lib/mcp-echo.js';
import { compact, percentile, rotate, summarize } from '../lib/stats.js';
import type { Summary } from '../lib/stats.js';
import { WsMcpTransport } from '../lib/ws-mcp-transport.js';

export type McpVariant = 'pqmcp' | 'pqmcp-policy' | 'pqmcp-policy-nomemo' | 'pqmcp-audit' | 'ws' | 'inmemory';

const PQMCP_ENDPOINTS: Partial<Record<McpVariant, 'mcp-pqmcp-native' | 'mcp-pqmcp-policy' | 'mcp-pqmcp-policy-nomemo' | 'mcp-pqmcp-audit'>> = {
  pqmcp: 'mcp-pqmcp-native',
  'pqmcp-policy': 'mcp-pqmcp-policy',
  'pqmcp-policy-nomemo': 'mcp-pqmcp-policy-nomemo',
  'pqmcp-audit': 'mcp-pqmcp-audit',
};
export const PAYLOADS = [100, 10240] as const;
const IN_FLIGHT = 32;

export interface McpCell {
  seqCallsPerSec?: Summary | undefined;
  seqP50Us?: Summary | undefined;
  seqP99Us?: Summary | undefined;
  par32CallsPerSec?: Summary | undefined;
  par32P50Us?: Summary | undefined;
  par32P99Us?: Summary | undefined;
}

export interface McpResult {
  rounds: number;
  measureSeconds: number;
  inFlight: number;
  variants: Record<string, { details: Record<string, string>; payloads: Record<string, McpCell> }>;
}

const PLANS: Record<SuiteContext['mode'], { rounds: number; ms: number; warmupMs: number }> = {
  full: { rounds: 5, ms: 400, warmupMs: 400 },
  ci: { rounds: 4, ms: 250, warmupMs: 200 },
  smoke: { rounds: 1, ms: 30, warmupMs: 10 },
};

async function callLoop(client: Client, text: string, deadline: number, latencies: number[]): Promise<number> {
  let calls = 0;
  while (now() < deadline) {
    const t0 = now();
    const result = await client.callTool({ name: 'echo', arguments: { text } });
    latencies.push((now() - t0) * 1000);
    if ((result.content as Array<{ text?: string }>)[0]?.text?.length !== text.length) throw new Error('echo returned something else');
    calls++;
  }
  return calls;
}

async function measure(client: Client, text: string, ms: number, inFlight: number): Promise<{ rate: number; p50: number; p99: number }> {
  const latencies: number[] = [];
  const t0 = now();
  const deadline = t0 + ms;
  const counts = await Promise.all(Array.from({ length: inFlight }, () => callLoop(client, text, deadline, latencies)));
  const elapsed = now() - t0;
  const calls = counts.reduce((a, b) => a + b, 0);
  return { rate: calls / (elapsed / 1000), p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

export interface McpMeasure {
  payload: number;
  inFlight: number;
  ms: number;
}

/** Worker side: one connected SDK Client (and, except in-memory, its server process). */
export async function openMcpVariant(ctx: SuiteContext, variant: McpVariant): Promise<VariantSession> {
  const endpoint = PQMCP_ENDPOINTS[variant];
  const server = variant === 'inmemory' ? undefined : await startServer(ctx, [endpoint ?? 'mcp-ws']);
  const client = new Client({ name: 'pqmcp-bench', version: '1.0.0' });
  try {
    let details: Record<string, string> = {};
    if (endpoint !== undefined) {
      const backend = selectBackend('native');
      const transport = new PqmcpClientTransport(`ws://127.0.0.1:${server!.ports[endpoint]}/`, {
        identity: identityOf(ctx.fixture, 'client', backend),
        trust: trustOf(ctx.fixture),
        backend,
        expectedServerId: SERVER_AGENT_ID,
      });
      await client.connect(transport as Transport);
      details = { backend: describeBackend(backend), ...(variant.startsWith('pqmcp-policy') ? { policy: variant === 'pqmcp-policy' ? 'memoised decisions' : 'Cedar decides every call' } : {}), ...(variant === 'pqmcp-audit' ? { audit: 'AuditLog file + OpenTelemetry metrics (server)' } : {}) };
    } else if (variant === 'ws') {
      await client.connect(new WsMcpTransport({ url: `ws://127.0.0.1:${server!.ports['mcp-ws']}/` }));
    } else {
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
      await makeEchoServer().connect(serverSide);
      await client.connect(clientSide);
    }
    const texts = new Map<number, string>();
    return {
      details,
      async measure(args) {
        const m = args as McpMeasure;
        let text = texts.get(m.payload);
        if (text === undefined) texts.set(m.payload, (text = 'x'.repeat(m.payload)));
        return within(measure(client, text, m.ms, m.inFlight), 60_000, `${variant} ${m.inFlight} in flight, ${m.payload} B`);
      },
      async close() {
        await within(client.close(), 10_000, 'close').catch(() => {});
        await server?.stop();
      },
    };
  } catch (err) {
    await server?.stop();
    throw err;
  }
}

/** Runner side: warm-up, then interleaved rounds over the variant processes. */
export async function runMcp(ctx: SuiteContext, options: { variants?: McpVariant[]; payloads?: number[]; env?: Record<string, string | undefined> } = {}): Promise<McpResult> {
  const plan = PLANS[ctx.mode];
  const variants = options.variants ?? (['pqmcp', 'pqmcp-policy', 'pqmcp-policy-nomemo', 'pqmcp-audit', 'ws', 'inmemory'] as McpVariant[]);
  const payloads = options.payloads ?? [...PAYLOADS];
  return withVariants('mcp', variants, ctx, { env: options.env ?? {} }, async (procs) => {
    type R = { rate: number; p50: number; p99: number };
    for (const v of variants) for (const p of payloads) for (const n of [1, IN_FLIGHT]) await procs.get(v)!.measure<R>({ payload: p, inFlight: n, ms: plan.warmupMs });
    const samples = new Map<string, number[]>();
    const add = (key: string, x: number) => samples.set(key, [...(samples.get(key) ?? []), x]);
    for (let round = 0; round < plan.rounds; round++) {
      for (const [pi, p] of payloads.entries()) {
        for (const v of rotate(variants, round + pi)) {
          for (const [mode, n] of [['seq', 1], ['par32', IN_FLIGHT]] as const) {
            const r = await procs.get(v)!.measure<R>({ payload: p, inFlight: n, ms: plan.ms });
            add(`${v}|${p}|${mode}CallsPerSec`, r.rate);
            add(`${v}|${p}|${mode}P50Us`, r.p50);
            add(`${v}|${p}|${mode}P99Us`, r.p99);
          }
        }
      }
    }
    const result: McpResult = { rounds: plan.rounds, measureSeconds: plan.ms / 1000, inFlight: IN_FLIGHT, variants: {} };
    for (const v of variants) {
      const cells: Record<string, McpCell> = {};
      for (const p of payloads) {
        const get = (m: string) => compact(summarize(samples.get(`${v}|${p}|${m}`) ?? []));
        cells[String(p)] = {
          seqCallsPerSec: get('seqCallsPerSec'),
          seqP50Us: get('seqP50Us'),
          seqP99Us: get('seqP99Us'),
          par32CallsPerSec: get('par32CallsPerSec'),
          par32P50Us: get('par32P50Us'),
          par32P99Us: get('par32P99Us'),
        };
      }
      result.variants[v] = { details: procs.get(v)!.details, payloads: cells };
    }
    return result;
  });
}
