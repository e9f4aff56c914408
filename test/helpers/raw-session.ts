/**
 * A raw pqmcp client session for tests that speak JSON-RPC by hand (requests the MCP SDK
 * client would never send, or sends differently): connected to `url`, initialized (the
 * initialize request answered, notifications/initialized sent), with every later message
 * from the server collected in `answers`, and closed by `cleanup`. The client is `agentId`
 * (default agent://pqmcp-test/client), issued by the test issuer.
 */
import { PqmcpClientTransport } from '../../src/transport/index.js';
import type { JsonRpcMessage } from '../../src/transport/index.js';
import { agent, trustFor } from './identities.js';
import { SERVER_ID, waitFor } from './mcp.js';
import type { Cleanup } from './mcp.js';

export interface RawSession {
  transport: PqmcpClientTransport;
  /** What the server sent after the initialize answer, in order. */
  answers: JsonRpcMessage[];
}

export async function rawInitializedSession(url: string, cleanup: Cleanup, initId: string | number = 0, agentId = 'agent://pqmcp-test/client'): Promise<RawSession> {
  const transport = new PqmcpClientTransport(url, { identity: agent(agentId), trust: trustFor(), expectedServerId: SERVER_ID });
  const answers: JsonRpcMessage[] = [];
  transport.onmessage = (m) => void answers.push(m as JsonRpcMessage);
  await transport.start();
  cleanup.add(() => transport.close());
  const init = { jsonrpc: '2.0', id: initId, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } } as unknown as JsonRpcMessage;
  await transport.send(init);
  await waitFor(() => answers.length === 1, 10_000, 'initialize');
  await transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' } as JsonRpcMessage);
  answers.length = 0;
  return { transport, answers };
}
