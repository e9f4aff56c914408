/**
 * Types for the deep import of the MCP reference server's factory, which ships without
 * declarations: `createServer()` builds one McpServer (register it per session) and a
 * `cleanup(sessionId)` that stops the timers its tools may have started for that session.
 */
declare module '@modelcontextprotocol/server-everything/dist/server/index.js' {
  import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';

  export function createServer(): { server: McpServer; cleanup: (sessionId?: string) => void };
}
