/**
 * The MCP server every MCP benchmark talks to: a fresh SDK McpServer per session with one
 * tool, `echo`, which returns its `text` argument as text content.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

export function makeEchoServer(): McpServer {
  const mcp = new McpServer({ name: 'pqmcp-bench', version: '1.0.0' });
  mcp.registerTool('echo', { description: 'Returns its text argument.', inputSchema: { text: z.string() } }, async ({ text }) => ({
    content: [{ type: 'text', text }],
  }));
  return mcp;
}
