/**
 * The MCP server every MCP benchmark talks to: a fresh SDK McpServer per session with one
 * tool, `echo`, which returns its `text` argument as text content; and the call loop the
 * one-process harnesses (audit-cpu.ts, mcp-cpu.ts) time.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
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

/** `n` echo calls of `text`, `inFlight` at a time; throws if an answer is not the text sent. */
export async function echoCalls(client: Client, text: string, n: number, inFlight: number): Promise<void> {
  let left = n;
  const loop = async (): Promise<void> => {
    while (left > 0) {
      left--;
      const result = await client.callTool({ name: 'echo', arguments: { text } });
      if ((result.content as Array<{ text?: string }>)[0]?.text?.length !== text.length) throw new Error('echo returned something else');
    }
  };
  await Promise.all(Array.from({ length: inFlight }, loop));
}
