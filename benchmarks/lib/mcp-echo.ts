/**
 * The MCP server every MCP benchmark talks to: a fresh SDK McpServer per session with one
 * tool, `echo`, which returns its `text` argument as text content.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

export function makeEchoServer(options: { clock?: boolean } = {}): McpServer {
  const mcp = new McpServer({ name: 'pqmcp-bench', version: '1.0.0' });
  mcp.registerTool('echo', { description: 'Returns its text argument.', inputSchema: { text: z.string() } }, async ({ text }) => ({
    content: [{ type: 'text', text }],
  }));
  // flood-probe.ts (the flood endpoint only): the server's monotonic clock (CLOCK_MONOTONIC, shared by the processes of one host) when the call ran.
  if (options.clock) mcp.registerTool('clock', { description: 'Returns the server process monotonic clock in ns.', inputSchema: { text: z.string() } }, async () => ({
    content: [{ type: 'text', text: process.hrtime.bigint().toString() }],
  }));
  return mcp;
}
