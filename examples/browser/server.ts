/**
 * The browser example's server: one Node process with
 *   - an SDK McpServer behind a pqmcp listener (serveMcp) on 127.0.0.1, and
 *   - a small HTTP server for the page: index.html, page.js (page.ts bundled for browsers
 *     with esbuild, from the `pqmcp/browser` entry's sources) and config.json (the page's
 *     key, credential and trust files, made on the spot here).
 *
 *   npm run example:browser      then open the printed URL in a browser
 *
 * The browser test (test/browser/) starts the same thing through startBrowserDemo().
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import {
  TrustStore,
  createAgentIdentity,
  createIssuer,
  encodeCredentialFile,
  encodePrivateKeyFile,
  generateIdentitySeed,
  identityFromSeed,
  issueCredential,
  selectBackend,
  serveMcp,
} from 'pqmcp';
import type { AgentIdentity, Issuer, PqmcpServer } from 'pqmcp';

const here = fileURLToPath(new URL('.', import.meta.url));
const backend = selectBackend();

export interface BrowserDemo {
  /** The page's address. */
  pageUrl: string;
  /** The pqmcp listener's ws:// address. */
  mcpUrl: string;
  serverId: string;
  listener: PqmcpServer;
  close(): Promise<void>;
}

function agent(issuer: Issuer, agentId: string, usage: 'client' | 'server', scopes: string[]): { identity: AgentIdentity; seed: Uint8Array } {
  const seed = generateIdentitySeed(backend);
  const keyPair = identityFromSeed(backend, seed);
  const credential = issueCredential(backend, issuer, { agentId, publicKey: keyPair.publicKey, usage, scopes, validForSeconds: 3600 });
  return { identity: createAgentIdentity({ keyPair, credential }), seed };
}

function travelTools(): McpServer {
  const mcp = new McpServer({ name: 'travel-tools', version: '1.0.0' });
  mcp.registerTool('book_trip', { description: 'Books a trip after the user confirms; the caller\'s model writes a summary.', inputSchema: { destination: z.string() } }, async ({ destination }, extra) => {
    const answer = await mcp.server.elicitInput({
      message: `Book a trip to ${destination}?`,
      requestedSchema: { type: 'object', properties: { confirm: { type: 'boolean' } }, required: ['confirm'] },
    });
    if (answer.action !== 'accept' || answer.content?.confirm !== true) return { content: [{ type: 'text', text: 'cancelled by the user' }] };
    const sample = await mcp.server.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: `Summarise ${destination}` } }], maxTokens: 40 });
    const summary = sample.content.type === 'text' ? sample.content.text : '';
    return { content: [{ type: 'text', text: `Booked ${destination} for ${extra.authInfo?.clientId}. Summary: ${summary}` }] };
  });
  mcp.registerTool('whoami', {}, async (extra) => ({ content: [{ type: 'text', text: extra.authInfo?.clientId ?? '' }] }));
  return mcp;
}

/** Start the listener and the page server on 127.0.0.1 (free ports unless given). */
export async function startBrowserDemo(options: { httpPort?: number; mcpPort?: number } = {}): Promise<BrowserDemo> {
  const issuer = createIssuer(backend, { id: 'issuer://demo.example/ca' });
  const stranger = createIssuer(backend, { id: 'issuer://elsewhere.example/ca' });
  const server = agent(issuer, 'agent://demo.example/travel-tools', 'server', ['mcp:serve']);
  const planner = agent(issuer, 'agent://demo.example/browser-planner', 'client', ['tools:call']);
  const trust = new TrustStore({ issuers: [{ id: issuer.id, publicKey: issuer.publicKey }] });
  const otherTrust = new TrustStore({ issuers: [{ id: stranger.id, publicKey: stranger.publicKey }] });

  const listener = await serveMcp({ identity: server.identity, trust, backend, host: '127.0.0.1', port: options.mcpPort ?? 0 }, () => travelTools());
  const config = JSON.stringify({
    url: listener.url,
    expectedServerId: server.identity.agentId,
    key: encodePrivateKeyFile({ kind: 'agent', id: planner.identity.agentId, seed: planner.seed }),
    credential: encodeCredentialFile(planner.identity.credential.encoded),
    trust: trust.toJSON(),
    otherTrust: otherTrust.toJSON(),
  });
  planner.seed.fill(0);
  const bundle = await build({ entryPoints: [`${here}page.ts`], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, minify: true, keepNames: true });
  const pageJs = bundle.outputFiles[0]!.contents;
  const html = await readFile(`${here}index.html`);

  const http = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const send = (type: string, body: Uint8Array | string): void => {
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (path === '/' || path === '/index.html') send('text/html; charset=utf-8', html);
    else if (path === '/page.js') send('text/javascript', pageJs);
    else if (path === '/config.json') send('application/json', config);
    else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => http.listen(options.httpPort ?? 0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    pageUrl: `http://127.0.0.1:${port}/`,
    mcpUrl: listener.url,
    serverId: server.identity.agentId,
    listener,
    close: async () => {
      await listener.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const demo = await startBrowserDemo({ httpPort: Number(process.env.PORT ?? 8080) });
  console.log(`pqmcp browser example: open ${demo.pageUrl} (MCP server at ${demo.mcpUrl}); Ctrl-C to stop`);
}
