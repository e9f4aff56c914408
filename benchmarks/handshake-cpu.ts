/**
 * Handshake CPU time per side, for each crypto backend (printed, not asserted).
 *
 *   npm run bench:handshake [-- --iterations 20]
 *
 * Two in-memory Sessions complete full mutually attested handshakes; the CPU time spent in
 * each side's calls (process.cpuUsage, user + system) is accumulated separately. Medians
 * with min and max; the backends are interleaved so machine drift affects both alike. The
 * full transport-level comparison (ws, wss with mTLS) is the benchmark suite's job.
 *
 * "client, key share made ahead" runs the same handshakes with the client's X-Wing key pair
 * made before the clock starts (HandshakeConfig.ephemeralKeyPair), as PqmcpClientTransport
 * does (src/transport/key-shares.ts): the client CPU left on the handshake's critical path.
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createNativeBackend } from '../src/crypto/native.js';
import { createNobleBackend } from '../src/crypto/noble.js';
import type { CryptoBackend } from '../src/crypto/types.js';
import { createIssuer, identityFromSeed, issueCredential, TrustStore } from '../src/identity/index.js';
import { Session } from '../src/session/session.js';

const args = process.argv.slice(2);
const iterations = Number(args[args.indexOf('--iterations') + 1]) || 20;

function cpuMs<T>(fn: () => T): [T, number] {
  const start = process.cpuUsage();
  const out = fn();
  const used = process.cpuUsage(start);
  return [out, (used.user + used.system) / 1000];
}

function fixtures(backend: CryptoBackend) {
  const issuer = createIssuer(backend, { id: 'issuer://bench' });
  const make = (agentId: string, usage: 'client' | 'server') => {
    const keyPair = identityFromSeed(backend, backend.randomBytes(64));
    return { keyPair, credential: issueCredential(backend, issuer, { agentId, publicKey: keyPair.publicKey, usage }) };
  };
  return { client: make('agent://bench/client', 'client'), server: make('agent://bench/server', 'server'), trust: new TrustStore({ issuers: [{ id: issuer.id, publicKey: issuer.publicKey }] }) };
}

function handshakeOnce(backend: CryptoBackend, f: ReturnType<typeof fixtures>, ahead = false): { client: number; server: number; wall: number } {
  const ephemeral = ahead ? { ephemeralKeyPair: backend.xwing.keygen(backend.randomBytes(32)) } : {};
  const t0 = performance.now();
  const client = Session.client({ backend, identity: f.client, trust: f.trust, ...ephemeral });
  const server = Session.server({ backend, identity: f.server, trust: f.trust });
  let clientCpu = 0;
  let serverCpu = 0;
  let [out, ms] = cpuMs(() => client.start());
  clientCpu += ms;
  let toServer = out.send;
  for (let guard = 0; guard < 4 && toServer.length > 0; guard++) {
    const [s, sm] = cpuMs(() => toServer.map((r) => server.receive(r)));
    serverCpu += sm;
    const toClient = s.flatMap((o) => o.send);
    const [c, cm] = cpuMs(() => toClient.map((r) => client.receive(r)));
    clientCpu += cm;
    toServer = c.flatMap((o) => o.send);
  }
  if (client.state !== 'established' || server.state !== 'established') throw new Error('handshake failed');
  return { client: clientCpu, server: serverCpu, wall: performance.now() - t0 };
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[s.length >> 1]!, min: s[0]!, max: s[s.length - 1]! };
};
const fmt = (x: { median: number; min: number; max: number }) => `${x.median.toFixed(2)} ms (min ${x.min.toFixed(2)}, max ${x.max.toFixed(2)})`;

const backends = [createNobleBackend(), createNativeBackend()];
const fx = backends.map(fixtures);
const samples = backends.map(() => ({ client: [] as number[], server: [] as number[], wall: [] as number[], clientAhead: [] as number[] }));
for (let b = 0; b < backends.length; b++) handshakeOnce(backends[b]!, fx[b]!); // warm-up
for (let i = 0; i < iterations; i++) {
  for (let b = 0; b < backends.length; b++) {
    const r = handshakeOnce(backends[b]!, fx[b]!);
    samples[b]!.client.push(r.client);
    samples[b]!.server.push(r.server);
    samples[b]!.wall.push(r.wall);
    samples[b]!.clientAhead.push(handshakeOnce(backends[b]!, fx[b]!, true).client);
  }
}

console.log(`Handshake CPU per side, ${iterations} handshakes per backend, Node ${process.version}, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
for (let b = 0; b < backends.length; b++) {
  const be = backends[b]!;
  const r = be.report;
  console.log(`\n${be.name}  (ML-KEM: ${r.mlkem}, ML-DSA: ${r.mldsa}, X25519: ${r.x25519}, Ed25519: ${r.ed25519}, AEAD: ${r.aead})`);
  console.log(`  client CPU  ${fmt(stats(samples[b]!.client))}`);
  console.log(`  client, key share made ahead  ${fmt(stats(samples[b]!.clientAhead))}`);
  console.log(`  server CPU  ${fmt(stats(samples[b]!.server))}`);
  console.log(`  both, wall  ${fmt(stats(samples[b]!.wall))}`);
}
