/**
 * The client under test for the conformance suite's client scenarios
 * (test/conformance/client.test.ts): the suite starts its test server for one scenario and
 * runs this file with the server's URL as the last argument and the scenario's name in
 * MCP_CONFORMANCE_SCENARIO.
 *
 *   node --import tsx test/conformance/client.ts <server url>
 *
 * It is an SDK 1.x Client that does what each supported scenario asks of a client: initialize,
 * list the tools and call each one with arguments made from its input schema (the suite's
 * tools_call wants add_numbers called), answer elicitation by accepting with the schema's
 * defaults (SEP-1034), then close.
 *
 * PQMCP_CONFORMANCE_VIA picks the path:
 *   direct  the Client's transport is the SDK's StreamableHTTPClientTransport to the URL;
 *   pqmcp   the Client's transport is a PqmcpClientTransport to a pqmcp listener in this
 *           process, whose session is relayed (front.ts relay) to a StreamableHTTPClientTransport
 *           to the URL. Identities come from PQMCP_CONFORMANCE_KEYS (a directory with
 *           client.key.json, server.key.json, their credentials and trust.json).
 * PQMCP_CONFORMANCE_BREAK=tools-call breaks the pqmcp path on purpose (a client hook answers
 * every tools/call with an error), for the test that shows the comparison can fail.
 * Anything that goes wrong is printed to stderr and exits 1 (the suite keeps stderr).
 */
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { PqmcpClientTransport, listen } from '../../src/transport/index.js';
import type { MessageHook, PqmcpServer } from '../../src/transport/index.js';
import { loadIdentity, loadTrustStore } from '../../src/identity/files.js';
import { relay } from './front.js';
import { CONFORMANCE_SERVER_ID } from './suite.js';

type Schema = { type?: string; default?: unknown; enum?: unknown[]; properties?: Record<string, Schema>; required?: string[] };

/** A value for an argument the tool requires (the suite's tools take numbers or strings). */
function argument(schema: Schema): unknown {
  if (schema.default !== undefined) return schema.default;
  if (schema.enum?.length) return schema.enum[0];
  switch (schema.type) {
    case 'number':
    case 'integer':
      return 2;
    case 'boolean':
      return true;
    default:
      return 'pqmcp';
  }
}

async function pqmcpPath(url: string): Promise<{ transport: Transport; server: PqmcpServer }> {
  const dir = process.env.PQMCP_CONFORMANCE_KEYS;
  if (!dir) throw new Error('PQMCP_CONFORMANCE_KEYS is not set');
  const trust = await loadTrustStore(join(dir, 'trust.json'));
  const server = await listen({ identity: await loadIdentity(join(dir, 'server.key.json')), trust });
  server.on('session', (session) => {
    // The SDK's HTTP client transport opens its standalone SSE stream (a GET) by itself once
    // notifications/initialized is sent, without waiting for it; the suite's elicitation
    // scenario sends its request on that stream and loses it if the GET has not arrived. A
    // directly connected Client's next request usually leaves after the GET; through the relay
    // it raced it (1 run in 3 failed). So the relay holds what follows notifications/initialized
    // until the GET has its response (or 5 s): the order a direct Client gets.
    let streamOpen!: () => void;
    const standalone = new Promise<void>((resolve) => (streamOpen = resolve));
    let initialized = false;
    const watching: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if ((init?.method ?? 'GET') === 'GET') streamOpen();
      return response;
    };
    const gate = async (m: { method?: string }): Promise<void> => {
      if (!initialized) {
        initialized = m.method === 'notifications/initialized';
        return;
      }
      await Promise.race([standalone, new Promise((r) => setTimeout(r, 5_000).unref())]);
    };
    relay(session, new StreamableHTTPClientTransport(new URL(url), { fetch: watching }), (where, error) => console.error(`relay ${where}: ${String(error)}`), gate).catch((error: unknown) => {
      console.error(`relay start: ${String(error)}`);
      void session.close();
    });
  });
  // The test's deliberately broken path: a hook that answers tools/call itself.
  const hooks: MessageHook[] =
    process.env.PQMCP_CONFORMANCE_BREAK === 'tools-call'
      ? [{ name: 'break', toPeer: (m) => (m.method === 'tools/call' && m.id !== undefined ? { reply: { jsonrpc: '2.0', id: m.id, error: { code: -32001, message: 'dropped by the test' } } } : undefined) }]
      : [];
  const transport = new PqmcpClientTransport(server.url, { identity: await loadIdentity(join(dir, 'client.key.json')), trust, expectedServerId: CONFORMANCE_SERVER_ID, hooks });
  return { transport, server };
}

async function main(): Promise<void> {
  const url = process.argv[process.argv.length - 1];
  if (url === undefined || !/^https?:\/\//.test(url)) throw new Error(`usage: client.ts <server url> (got ${url})`);
  const via = process.env.PQMCP_CONFORMANCE_VIA ?? 'direct';
  const client = new Client({ name: 'pqmcp-conformance-client', version: '1.0.0' }, { capabilities: { elicitation: { form: {} } } });
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    const schema = (request.params as { requestedSchema?: Schema }).requestedSchema ?? {};
    const content: Record<string, unknown> = {};
    for (const [name, prop] of Object.entries(schema.properties ?? {})) if (prop.default !== undefined) content[name] = prop.default;
    return { action: 'accept', content: content as Record<string, string | number | boolean> };
  });

  let server: PqmcpServer | undefined;
  let transport: Transport;
  if (via === 'pqmcp') ({ transport, server } = await pqmcpPath(url));
  else if (via === 'direct') transport = new StreamableHTTPClientTransport(new URL(url));
  else throw new Error(`PQMCP_CONFORMANCE_VIA must be direct or pqmcp, not ${via}`);

  try {
    await client.connect(transport);
    if (client.getServerCapabilities()?.tools) {
      const { tools } = await client.listTools();
      for (const tool of tools) {
        const schema = tool.inputSchema as Schema;
        const args: Record<string, unknown> = {};
        for (const name of schema.required ?? []) args[name] = argument(schema.properties?.[name] ?? {});
        await client.callTool({ name: tool.name, arguments: args });
      }
    }
  } finally {
    await client.close();
    await server?.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
