/**
 * A message hook driven as a client session drives it, with no socket: opened with a
 * verified server peer, fed the server's tools/list answers as answers to a tracked
 * tools/list request, and given the client's tools/call requests. For the tool-pinning hook
 * (toolPinning, and connect's connectPinHooks) in test/pins and test/cli/pins.
 *
 * Each pinSession() opens a session of its own on the hook (a new sessionId is a new session
 * to the hook; the same one opened again starts it afresh).
 */
import type { HookContext, HookResult, HookSession, JsonRpcMessage, MessageHook } from '../../src/transport/hook-api.js';

/** The server as the handshake verified it. Without issuer: a peer whose issuer is not known. */
export interface PinPeer {
  agentId: string;
  fingerprint: string;
  issuer?: string;
}

export interface AnswerOptions {
  /** The request's (and answer's) id; by default the session counts from 1. */
  id?: number;
  /** The tools/list request's params (a cursor). */
  params?: Record<string, unknown>;
  /** Fields of the result beside `tools` (nextCursor). */
  result?: Record<string, unknown>;
  /** false: the answer matches no request the pipeline tracks (ctx.request undefined). */
  request?: false;
}

export interface PinSession {
  /** The session the hook was opened with. */
  readonly session: HookSession;
  /** What the hook makes of a tools/list answer listing `tools`. */
  answer(tools: readonly unknown[], options?: AnswerOptions): HookResult;
  /** The names of the listed tools the hook lets through, in their order. */
  list(tools: readonly unknown[], options?: AnswerOptions): string[];
  /** What the hook makes of a tools/call of `name`. */
  call(name: string): HookResult;
  /** The error a call of `name` is answered with locally, or undefined where it goes to the server. */
  callError(name: string): JsonRpcMessage['error'];
}

/** Tools named `names`, each with a description of its own. */
export const toolsNamed = (names: readonly string[]): Array<{ name: string; description: string }> => names.map((name) => ({ name, description: `the ${name} tool` }));

export function pinSession(hook: MessageHook, peer: PinPeer, sessionId = 's1'): PinSession {
  const verified = { agentId: peer.agentId, fingerprint: peer.fingerprint, ...(peer.issuer !== undefined ? { issuer: peer.issuer } : {}), attributes: {} } as unknown as HookContext['peer'];
  const session: HookSession = { role: 'client', peer: verified, sessionId, remoteAddress: undefined };
  hook.opened!(session, { notify: async () => {} });
  let lastId = 0;
  const nextId = (): number => ++lastId;

  const answer = (tools: readonly unknown[], options: AnswerOptions = {}): HookResult => {
    const id = options.id ?? nextId();
    const request = options.request === false ? undefined : { id, method: 'tools/list', params: options.params ?? {}, direction: 'toPeer' as const, startedAt: 0, bytes: 40, notes: {} };
    return hook.fromPeer!({ jsonrpc: '2.0', id, result: { tools, ...options.result } }, { ...session, direction: 'fromPeer', bytes: 100, request });
  };
  const list = (tools: readonly unknown[], options?: AnswerOptions): string[] => {
    const out = answer(tools, options) as { replace?: { result?: { tools?: Array<{ name: string }> } } } | undefined;
    const passed = out?.replace?.result?.tools;
    if (passed === undefined) throw new Error(`the hook answered the listing with no tools: ${JSON.stringify(out)}`);
    return passed.map((t) => t.name);
  };
  const call = (name: string): HookResult => {
    const message: JsonRpcMessage = { jsonrpc: '2.0', id: nextId(), method: 'tools/call', params: { name, arguments: {} } };
    return hook.toPeer!(message, { ...session, direction: 'toPeer', bytes: 60, request: undefined });
  };
  const callError = (name: string): JsonRpcMessage['error'] => {
    const out = call(name);
    if (out === undefined) return undefined;
    const error = (out as { reply?: JsonRpcMessage }).reply?.error;
    if (error === undefined) throw new Error(`the hook neither passed nor refused the call: ${JSON.stringify(out)}`);
    return error;
  };
  return { session, answer, list, call, callError };
}
