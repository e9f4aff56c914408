/**
 * docs/usage.md: an MCP server whose tools authorise every call by the caller's verified
 * pqmcp identity, which the SDK hands to each handler as `extra.authInfo`.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { PqmcpAuthInfo } from 'pqmcp';

const notes: string[] = []; // shared by every session of this process

/** An error result unless the caller's credential grants `scope`. */
function denied(auth: PqmcpAuthInfo, scope: string): CallToolResult | undefined {
  if (auth.scopes.includes(scope)) return undefined;
  return { isError: true, content: [{ type: 'text', text: `denied: ${auth.clientId} lacks ${scope}` }] };
}

export function createNotesServer(): McpServer {
  const mcp = new McpServer({ name: 'notes', version: '1.0.0' });

  mcp.registerTool('whoami', { description: 'The caller, as pqmcp verified it' }, async (extra) => {
    const auth = extra.authInfo as PqmcpAuthInfo; // set on every request by the pqmcp transport
    const lines = [
      `agent    ${auth.clientId}`,
      `scopes   ${auth.scopes.join(', ')}`,
      `key      ${auth.token.slice(0, 16)}...`,
      `expires  ${new Date(auth.expiresAt * 1000).toISOString()}`,
      `issuer   ${auth.extra.issuer} (serial ${auth.extra.serial.slice(0, 8)}...)`,
      `suite    ${auth.extra.suite}`,
    ];
    return { content: [{ type: 'text', text: lines.join('\n') }] };
  });

  mcp.registerTool('add_note', { description: 'Save a note (needs notes:write)', inputSchema: { text: z.string() } }, async ({ text }, extra) => {
    const auth = extra.authInfo as PqmcpAuthInfo;
    const refusal = denied(auth, 'notes:write');
    if (refusal) return refusal;
    notes.push(`${text} (${auth.clientId})`);
    return { content: [{ type: 'text', text: `saved note ${notes.length}` }] };
  });

  mcp.registerTool('list_notes', { description: 'Every note (needs notes:read)' }, async (extra) => {
    const refusal = denied(extra.authInfo as PqmcpAuthInfo, 'notes:read');
    return refusal ?? { content: [{ type: 'text', text: notes.join('\n') || '(no notes)' }] };
  });

  return mcp;
}
