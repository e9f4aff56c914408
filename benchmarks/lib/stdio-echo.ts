/**
 * The benchmarks' echo MCP server (lib/mcp-echo.ts) as a stdio program, for the gateway:
 * `pqmcp serve ... -- node --import tsx benchmarks/lib/stdio-echo.ts`.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { makeEchoServer } from './mcp-echo.js';

await makeEchoServer().connect(new StdioServerTransport());
