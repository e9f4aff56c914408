/**
 * docs/usage.md: a message hook that refuses one tool to every agent and hides it from
 * tools/list, with no change to the MCP server behind it. Use it with
 * `serveMcp({ identity, trust, hooks: [noDelete] }, factory)`.
 */
import { errorResponse } from 'pqmcp';
import type { MessageHook } from 'pqmcp';

export const noDelete: MessageHook = {
  name: 'no-delete',
  fromPeer(message, ctx) {
    // A request from the verified peer (ctx.peer) on its way to the MCP server.
    if (message.method === 'tools/call' && (message.params as { name: string }).name === 'delete') {
      ctx.request!.notes['decision'] = 'deny'; // shared with the other hooks (an auditor)
      return { reply: errorResponse(message, -32001, 'tool delete is not allowed for this agent') };
    }
  },
  toPeer(message, ctx) {
    // ctx.request: the request this response answers.
    if (ctx.request?.method === 'tools/list' && message.result) {
      const result = message.result as { tools: Array<{ name: string }> };
      return { replace: { ...message, result: { ...result, tools: result.tools.filter((t) => t.name !== 'delete') } } };
    }
  },
};
