/**
 * CPU time the authorization hook adds per MCP request (printed, not asserted): a 100 B
 * `tools/call` and its response through a Policy (pqmcp/policy) in one process, with the
 * default memo (the allow is answered from the session's memo after the first call) and
 * with `memo: false` (Cedar evaluates every call). Medians with min and max over rounds,
 * the two interleaved. The transport-level ratio (policy on over off, in one run) is the
 * benchmark suite's `pqmcp-policy` variants; this isolates the hook from machine noise.
 *
 *   npm run bench:policy [-- --calls 5000 --rounds 7]
 */
import { BENCH_POLICY, BENCH_POLICY_CTX } from './server.js';
import { loadPolicy } from '../src/policy/index.js';
import type { Policy } from '../src/policy/index.js';
import type { VerifiedPeer } from '../src/identity/trust.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: number): number => Number(args[args.indexOf(`--${name}`) + 1]) || fallback;
const calls = opt('calls', 5000);
const rounds = opt('rounds', 7);

const peer = {
  agentId: 'agent://bench/client',
  displayName: 'bench client',
  fingerprint: 'ab'.repeat(32),
  publicKey: new Uint8Array(0),
  usage: 'client' as const,
  scopes: ['tools:call'],
  attributes: { team: 'bench' },
  notBefore: 0,
  notAfter: 2 ** 31,
  serial: '01',
  issuer: 'issuer://bench',
  selfSigned: false,
  credential: {} as VerifiedPeer['credential'],
} satisfies VerifiedPeer;
const session = { role: 'server' as const, peer, sessionId: 'bench', remoteAddress: '127.0.0.1' };
const params = { name: 'echo', arguments: { text: 'x'.repeat(100) } };

/** CPU µs per request + response through the hook. */
function measure(policy: Policy): number {
  const start = process.cpuUsage();
  for (let i = 0; i < calls; i++) {
    const request = { id: i, method: 'tools/call', params, direction: 'fromPeer' as const, startedAt: 0, bytes: 150, notes: {} };
    if (policy.fromPeer({ jsonrpc: '2.0', id: i, method: 'tools/call', params }, { ...session, direction: 'fromPeer', bytes: 150, request }) !== undefined) throw new Error('denied');
    policy.toPeer({ jsonrpc: '2.0', id: i, result: { content: [{ type: 'text', text: params.arguments.text }] } }, { ...session, direction: 'toPeer', bytes: 160, request });
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / calls;
}

const variants: Array<[string, Policy]> = [
  ['memoised (default)', await loadPolicy({ text: BENCH_POLICY })],
  ['memo: false (Cedar every call)', await loadPolicy({ text: BENCH_POLICY_CTX, memo: false })],
];
for (const [, p] of variants) {
  p.opened(session, { notify: async () => {} });
  measure(p); // warm up
}
const samples = new Map<string, number[]>(variants.map(([n]) => [n, []]));
for (let r = 0; r < rounds; r++) for (const [name, p] of r % 2 ? [...variants].reverse() : variants) samples.get(name)!.push(measure(p));
console.log(`authorization hook, CPU per 100 B tools/call (request + response), ${calls} calls x ${rounds} rounds, Node ${process.version}`);
for (const [name, xs] of samples) {
  xs.sort((a, b) => a - b);
  console.log(`  ${name.padEnd(32)} median ${xs[Math.floor(xs.length / 2)]!.toFixed(2)} µs  (min ${xs[0]!.toFixed(2)}, max ${xs.at(-1)!.toFixed(2)})`);
}
