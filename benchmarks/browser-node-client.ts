/**
 * The Node side of the browser benchmark: the same handshakes as the example page's
 * `?case=bench` loop (SDK Client connect + close through PqmcpClientTransport, the same
 * identity and trust from the page's config.json, the portable `noble` backend), in a
 * process of its own. Prints the times in ms as JSON.
 *
 *   node --import tsx benchmarks/browser-node-client.ts <pageUrl> <n>
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { PqmcpClientTransport, createNobleBackend, identityFromContents, trustStoreFromContents } from '../src/index.js';

const [pageUrl, count] = process.argv.slice(2);
const config = (await (await fetch(new URL('config.json', pageUrl))).json()) as { url: string; expectedServerId: string; key: object; credential: object; trust: object };
const backend = createNobleBackend();
const identity = identityFromContents(config.key, config.credential, { backend });
const trust = trustStoreFromContents(config.trust);
const times: number[] = [];
for (let i = 0; i < Number(count); i++) {
  const transport = new PqmcpClientTransport(config.url, { identity, trust, backend, expectedServerId: config.expectedServerId });
  const client = new Client({ name: 'node-planner', version: '1.0.0' });
  const t0 = performance.now();
  await client.connect(transport);
  times.push(performance.now() - t0);
  await client.close();
}
process.stdout.write(`${JSON.stringify(times)}\n`);
