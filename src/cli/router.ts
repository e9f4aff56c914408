/**
 * JSON-RPC routing between pqmcp sessions and one stdio MCP server process. The gateway
 * uses one Router per child: with one session (the default, a child per session) or many
 * (--shared, one child for all).
 *
 * The child sees ONE client. To keep sessions apart the router rewrites, on the way in,
 * every request id (and progress token) to a gateway-unique one and maps it back on the
 * way out, so a response or progress notification reaches exactly the session that asked.
 *
 * What else happens, for --shared (with one session all of it is invisible):
 * - initialize: the first session's initialize goes to the child; its result is cached
 *   and answers every later session's initialize (the child is initialized once, with the
 *   first client's capabilities). notifications/initialized reaches the child once.
 * - notifications/cancelled from a session: its requestId is rewritten and the request is
 *   forgotten (except an initialize, which other sessions may wait for), so an answer the
 *   child sends anyway is dropped here (MCP: the canceller ignores it) and never meets a
 *   later request of the session; unknown ids dropped.
 * - server -> client requests (sampling, elicitation, roots/list): the child names no
 *   session, so the router sends one to the only session with requests in flight (or the
 *   only session). When that is ambiguous it answers the child with an error instead of
 *   guessing: one agent's prompt must never reach another agent.
 * - notifications from the child: progress goes to the session whose token it carries;
 *   resources/updated to the sessions subscribed to that URI; cancelled to the session the
 *   cancelled request went to; everything else (logging messages, list_changed...) to every
 *   session. In shared mode every agent therefore sees the server's log messages: share a
 *   child only between agents that may see each other's server-side logs.
 * - resources/unsubscribe from one session is answered locally while another session is
 *   still subscribed to the URI; the child is unsubscribed when the last one leaves.
 * - 2026-07-28 `subscriptions/listen`: the child stamps every notification of a stream (and
 *   the stream's final result) with `_meta["io.modelcontextprotocol/subscriptionId"]`, the
 *   listen request's id, which is the gateway id here: it is mapped back to the session's
 *   own id and the notification goes to that session only (the stream is a request in
 *   flight until it ends). A stamp the router does not know is dropped.
 * - a session that ends: its requests still at the child are cancelled there
 *   (notifications/cancelled), requests routed to it are answered with an error.
 * - the child exits: every session gets an error response for each request in flight.
 *
 * Sharp edges:
 * - The router never parses params beyond _meta.progressToken, the subscription-id stamp,
 *   requestId and the subscribe URI; everything else passes through byte-for-byte
 *   equivalent JSON.
 * - Defence in depth behind the transport's pipeline, which refuses these first (R15-1): a
 *   session's message with a method and an id that is not a string or a number (null
 *   included) is dropped, never forwarded as a notification; a notification whose method is
 *   not under `notifications/` (a request sent without an id) is dropped; a notification is
 *   forwarded as `{ jsonrpc, method, params }` only.
 * - Pure: no I/O, no timers. `toChild` and each peer's `send` are the only outputs.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { JsonRpcErrorCode, isMisdirectedNotification } from '../transport/hook-api.js';

type Id = string | number;

/** JSON-RPC error code for "the server went away before answering" (the SDK's ConnectionClosed). */
export const CONNECTION_CLOSED = -32000;
/** A request the gateway cannot route (an ambiguous server -> client request in --shared). */
export const CANNOT_ROUTE = -32603;
/** The error for a message the gateway cannot write to the child (a session's request: invalidRequest; its answer to the child: internalError). */
export const NOT_ENCODABLE = 'pqmcp gateway: the message cannot be forwarded to the server (nested too deeply to encode)';
/** The `_meta` key a 2026-07-28 server stamps on a listen stream's messages: the listen request's id. */
export const SUBSCRIPTION_ID_META_KEY = 'io.modelcontextprotocol/subscriptionId';

export interface RouterPeer {
  /** For logs only. */
  readonly tag: string;
  /** Deliver a message to this session's client. */
  send(message: JSONRPCMessage): void;
}

interface PendingRequest {
  peer: RouterPeer;
  id: Id;
  method: string;
  token?: string;
  /** Its session ended; the answer is still awaited (an initialize others wait on). */
  orphan?: boolean;
}

interface ProgressEntry {
  peer: RouterPeer;
  token: Id;
}

type Msg = Record<string, unknown> & { jsonrpc: '2.0' };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isId(v: unknown): v is Id {
  return typeof v === 'string' || typeof v === 'number';
}

export class Router {
  /** Requests from sessions, in flight at the child, by gateway id. */
  private readonly pending = new Map<number, PendingRequest>();
  /** Gateway progress token -> the session's own token. */
  private readonly progress = new Map<string, ProgressEntry>();
  /** Child-originated requests routed to a session, by the child's id (as a key string). */
  private readonly routed = new Map<string, { peer: RouterPeer; id: Id }>();
  private readonly subscriptions = new Map<string, Set<RouterPeer>>();
  private readonly peers = new Set<RouterPeer>();
  private nextId = 1;
  private initResult: Msg | undefined;
  private initPending = false;
  private readonly initWaiting: Array<{ peer: RouterPeer; id: Id }> = [];
  private initializedSent = false;
  private closed = false;

  constructor(private readonly toChild: (message: JSONRPCMessage) => void) {}

  get sessions(): number {
    return this.peers.size;
  }

  /** Requests of `peer` that the child has not answered yet. */
  inFlight(peer: RouterPeer): number {
    let n = 0;
    for (const p of this.pending.values()) if (p.peer === peer && !p.orphan) n++;
    return n;
  }

  attach(peer: RouterPeer): void {
    if (this.closed) throw new Error('router closed');
    this.peers.add(peer);
  }

  /** A session ended: cancel its requests at the child, refuse requests routed to it. */
  detach(peer: RouterPeer): void {
    if (!this.peers.delete(peer)) return;
    for (const [gid, p] of this.pending) {
      if (p.peer !== peer) continue;
      if (p.method === 'initialize') {
        // Other sessions may be waiting for this answer: keep waiting for it.
        p.orphan = true;
        continue;
      }
      this.pending.delete(gid);
      if (p.token !== undefined) this.progress.delete(p.token);
      if (!this.closed) this.sendChild({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: gid, reason: 'the pqmcp session ended' } });
    }
    for (const [key, r] of this.routed) {
      if (r.peer !== peer) continue;
      this.routed.delete(key);
      if (!this.closed) this.sendChild({ jsonrpc: '2.0', id: r.id, error: { code: CONNECTION_CLOSED, message: 'pqmcp gateway: the client session ended before answering' } });
    }
    for (let i = this.initWaiting.length - 1; i >= 0; i--) if (this.initWaiting[i]!.peer === peer) this.initWaiting.splice(i, 1);
    for (const [uri, set] of this.subscriptions) {
      if (!set.delete(peer) || set.size > 0) continue;
      this.subscriptions.delete(uri);
      if (!this.closed) this.sendChild({ jsonrpc: '2.0', id: `pqmcp-gateway-${this.nextId++}`, method: 'resources/unsubscribe', params: { uri } });
    }
  }

  /**
   * The child is gone: every request in flight gets `message` as a JSON-RPC error, to its
   * session. Returns how many requests each session lost.
   */
  childGone(message: string): Map<RouterPeer, number> {
    this.closed = true;
    const lost = new Map<RouterPeer, number>();
    for (const p of this.pending.values()) {
      if (p.orphan) continue;
      lost.set(p.peer, (lost.get(p.peer) ?? 0) + 1);
      this.safeSend(p.peer, { jsonrpc: '2.0', id: p.id, error: { code: CONNECTION_CLOSED, message } });
    }
    for (const w of this.initWaiting) {
      lost.set(w.peer, (lost.get(w.peer) ?? 0) + 1);
      this.safeSend(w.peer, { jsonrpc: '2.0', id: w.id, error: { code: CONNECTION_CLOSED, message } });
    }
    this.pending.clear();
    this.progress.clear();
    this.routed.clear();
    this.initWaiting.length = 0;
    return lost;
  }

  // --- session -> child --------------------------------------------------------------------

  fromSession(peer: RouterPeer, message: JSONRPCMessage): void {
    if (this.closed) return;
    const msg = message as unknown as Msg;
    const method = typeof msg['method'] === 'string' ? (msg['method'] as string) : undefined;
    if (method !== undefined && msg['id'] !== undefined) {
      // A request; with an id that is no string or number (null: R15-1) it is never forwarded.
      if (isId(msg['id'])) this.sessionRequest(peer, msg, method, msg['id']);
      return;
    }
    if (method !== undefined) {
      // A notification: only MCP's (`notifications/...`, the pipeline's rule), and only its own members (R15-1).
      if (isMisdirectedNotification(msg)) return;
      return this.sessionNotification({ jsonrpc: '2.0', method, ...(msg['params'] !== undefined ? { params: msg['params'] } : {}) }, method, peer);
    }
    if (isId(msg['id'])) return this.sessionResponse(peer, msg, msg['id']);
    // Not routable (e.g. a response with a null id): nothing sensible to do with it.
  }

  private sessionRequest(peer: RouterPeer, msg: Msg, method: string, id: Id): void {
    if (method === 'initialize') {
      if (this.initResult) return this.safeSend(peer, { ...this.initResult, id } as Msg);
      if (this.initPending) {
        this.initWaiting.push({ peer, id });
        return;
      }
      this.initPending = true;
    }
    if (method === 'resources/subscribe' || method === 'resources/unsubscribe') {
      const uri = isObject(msg['params']) ? msg['params']['uri'] : undefined;
      if (typeof uri === 'string') {
        const set = this.subscriptions.get(uri) ?? new Set<RouterPeer>();
        if (method === 'resources/subscribe') {
          set.add(peer);
          this.subscriptions.set(uri, set);
        } else {
          set.delete(peer);
          if (set.size > 0) return this.safeSend(peer, { jsonrpc: '2.0', id, result: {} });
          this.subscriptions.delete(uri);
        }
      }
    }
    const gid = this.nextId++;
    const entry: PendingRequest = { peer, id, method };
    let params = msg['params'];
    if (isObject(params) && isObject(params['_meta']) && isId(params['_meta']['progressToken'])) {
      const token = `pqmcp-${gid}`;
      this.progress.set(token, { peer, token: params['_meta']['progressToken'] });
      entry.token = token;
      params = { ...params, _meta: { ...params['_meta'], progressToken: token } };
    }
    this.pending.set(gid, entry);
    if (!this.sendChild({ ...msg, id: gid, ...(params !== undefined ? { params } : {}) })) {
      // Not written: answered here, never left waiting for an answer that cannot come.
      this.pending.delete(gid);
      if (entry.token !== undefined) this.progress.delete(entry.token);
      if (method === 'initialize') this.initPending = false;
      this.safeSend(peer, { jsonrpc: '2.0', id, error: { code: JsonRpcErrorCode.invalidRequest, message: NOT_ENCODABLE } });
    }
  }

  private sessionNotification(msg: Msg, method: string, peer: RouterPeer): void {
    if (method === 'notifications/initialized') {
      if (this.initializedSent) return;
      this.initializedSent = true;
      this.sendChild(msg); // a notification that cannot be written is dropped: nothing waits for it
      return;
    }
    if (method === 'notifications/cancelled') {
      const params = isObject(msg['params']) ? msg['params'] : {};
      for (const [gid, p] of this.pending) {
        if (p.peer !== peer || p.id !== params['requestId']) continue;
        if (p.method !== 'initialize') {
          this.pending.delete(gid);
          if (p.token !== undefined) this.progress.delete(p.token);
        }
        this.sendChild({ ...msg, params: { ...params, requestId: gid } });
        return;
      }
      return;
    }
    this.sendChild(msg);
  }

  private sessionResponse(peer: RouterPeer, msg: Msg, id: Id): void {
    const key = JSON.stringify(id);
    const r = this.routed.get(key);
    if (!r || r.peer !== peer) return;
    this.routed.delete(key);
    // An answer that cannot be written: the child's request gets an error in its place.
    if (!this.sendChild(msg)) this.sendChild({ jsonrpc: '2.0', id, error: { code: JsonRpcErrorCode.internalError, message: NOT_ENCODABLE } });
  }

  // --- child -> sessions -------------------------------------------------------------------

  fromChild(message: JSONRPCMessage): void {
    const msg = message as unknown as Msg;
    const method = typeof msg['method'] === 'string' ? (msg['method'] as string) : undefined;
    if (method !== undefined && isId(msg['id'])) return this.childRequest(msg, msg['id']);
    if (method !== undefined) return this.childNotification(msg, method);
    if (typeof msg['id'] === 'number') this.childResponse(msg, msg['id']);
    // Responses to the gateway's own requests (string ids) and unknown ids end here.
  }

  private childResponse(msg: Msg, gid: number): void {
    const p = this.pending.get(gid);
    if (!p) return;
    this.pending.delete(gid);
    if (p.token !== undefined) this.progress.delete(p.token);
    if (p.method === 'initialize') {
      this.initPending = false;
      if ('result' in msg) {
        this.initResult = { jsonrpc: '2.0', result: msg['result'] } as Msg;
        for (const w of this.initWaiting.splice(0)) this.safeSend(w.peer, { ...this.initResult, id: w.id } as Msg);
      } else {
        // Initialization failed: the sessions waiting on it get the same answer; a later
        // initialize is forwarded again.
        for (const w of this.initWaiting.splice(0)) this.safeSend(w.peer, { ...msg, id: w.id });
      }
    }
    if (p.orphan) return;
    // A listen stream's final result carries its id in _meta too (the gateway id here).
    const result = msg['result'];
    const meta = isObject(result) && isObject(result['_meta']) ? result['_meta'] : undefined;
    if (meta && meta[SUBSCRIPTION_ID_META_KEY] === gid) {
      return this.safeSend(p.peer, { ...msg, id: p.id, result: { ...(result as Record<string, unknown>), _meta: { ...meta, [SUBSCRIPTION_ID_META_KEY]: p.id } } });
    }
    this.safeSend(p.peer, { ...msg, id: p.id });
  }

  private childRequest(msg: Msg, id: Id): void {
    let target: RouterPeer | undefined;
    const busy = new Set<RouterPeer>();
    for (const p of this.pending.values()) if (!p.orphan) busy.add(p.peer);
    if (busy.size === 1) target = [...busy][0];
    else if (busy.size === 0 && this.peers.size === 1) target = [...this.peers][0];
    if (!target) {
      this.sendChild({
        jsonrpc: '2.0',
        id,
        error: { code: CANNOT_ROUTE, message: `pqmcp gateway (--shared): cannot tell which of ${this.peers.size} sessions this ${String(msg['method'])} request is for` },
      });
      return;
    }
    this.routed.set(JSON.stringify(id), { peer: target, id });
    this.safeSend(target, msg);
  }

  private childNotification(msg: Msg, method: string): void {
    const params = isObject(msg['params']) ? msg['params'] : undefined;
    const meta = params && isObject(params['_meta']) ? params['_meta'] : undefined;
    if (meta && SUBSCRIPTION_ID_META_KEY in meta) {
      // One listen stream's notification: to the session that opened it, under its own id.
      const stream = typeof meta[SUBSCRIPTION_ID_META_KEY] === 'number' ? this.pending.get(meta[SUBSCRIPTION_ID_META_KEY] as number) : undefined;
      if (stream && !stream.orphan) this.safeSend(stream.peer, { ...msg, params: { ...params, _meta: { ...meta, [SUBSCRIPTION_ID_META_KEY]: stream.id } } });
      return;
    }
    if (method === 'notifications/progress') {
      const token = params?.['progressToken'];
      const entry = typeof token === 'string' ? this.progress.get(token) : undefined;
      if (entry) this.safeSend(entry.peer, { ...msg, params: { ...params, progressToken: entry.token } });
      return;
    }
    if (method === 'notifications/cancelled') {
      const r = this.routed.get(JSON.stringify(params?.['requestId']));
      if (r) {
        this.routed.delete(JSON.stringify(params?.['requestId']));
        this.safeSend(r.peer, msg);
      }
      return;
    }
    if (method === 'notifications/resources/updated') {
      const uri = params?.['uri'];
      const set = typeof uri === 'string' ? this.subscriptions.get(uri) : undefined;
      if (set) for (const peer of set) this.safeSend(peer, msg);
      else if (this.peers.size === 1) for (const peer of this.peers) this.safeSend(peer, msg);
      return;
    }
    for (const peer of this.peers) this.safeSend(peer, msg);
  }

  /**
   * Write to the child; false when the message cannot be encoded. JSON.stringify throws a
   * RangeError on a value nested a few thousand deep (Node 20 and 24; Node 26 writes any
   * depth), which JSON.parse took from the session: such a message is dropped, and a request
   * or answer is answered in its place by the caller, never left waiting (review 17, R17-6;
   * before, the session's message handler threw, ERR_INTERNAL, and the request hung).
   */
  private sendChild(msg: Msg): boolean {
    try {
      this.toChild(msg as unknown as JSONRPCMessage);
      return true;
    } catch (err) {
      if (err instanceof RangeError) return false;
      throw err;
    }
  }

  private safeSend(peer: RouterPeer, msg: Msg): void {
    try {
      peer.send(msg as unknown as JSONRPCMessage);
    } catch {
      // A peer that cannot take messages any more is detached by its owner.
    }
  }
}
