/**
 * Compile-time checks (run by `npm run typecheck`, no runtime): pqmcp's own structural MCP
 * types fit both SDK majors in both directions, and the ws options pass through.
 */
import type { Transport as Transport1 } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { AuthInfo as AuthInfo1 } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { McpServer as McpServer1 } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { AuthInfo as AuthInfo2, Transport as Transport2 } from '@modelcontextprotocol/client';
import type { McpServer as McpServer2, Server as Server2 } from '@modelcontextprotocol/server';
import type { ClientOptions } from 'ws';
import type { McpServerLike, PqmcpAuthInfo, PqmcpClientTransport, PqmcpServerTransport, PqmcpWebSocketOptions } from '../../src/index.js';
import type { McpAuthInfo } from '../../src/transport/mcp-types.js';

type Assert<T extends true> = T;
type Extends<A, B> = [A] extends [B] ? true : false;

export type Checks = [
  // pqmcp's transports are Transports of either major.
  Assert<Extends<PqmcpClientTransport, Transport1>>,
  Assert<Extends<PqmcpServerTransport, Transport1>>,
  Assert<Extends<PqmcpClientTransport, Transport2>>,
  Assert<Extends<PqmcpServerTransport, Transport2>>,
  // Either major's servers are what serveMcp's factory may return.
  Assert<Extends<McpServer1, McpServerLike>>,
  Assert<Extends<McpServer2, McpServerLike>>,
  Assert<Extends<Server2, McpServerLike>>,
  // The verified peer is an AuthInfo of either major, and theirs fit ours.
  Assert<Extends<PqmcpAuthInfo, AuthInfo1>>,
  Assert<Extends<PqmcpAuthInfo, AuthInfo2>>,
  Assert<Extends<AuthInfo1, McpAuthInfo>>,
  Assert<Extends<AuthInfo2, McpAuthInfo>>,
  // A ws ClientOptions object (less what pqmcp fixes) passes as webSocketOptions.
  Assert<Extends<Omit<ClientOptions, 'perMessageDeflate' | 'maxPayload' | 'headers'>, PqmcpWebSocketOptions>>,
];
