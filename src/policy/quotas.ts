/**
 * Quotas as a message hook: per agent and per issuer (all its agents together), calls and
 * bytes per interval and concurrent sessions. A request over a quota is answered with
 * JSON-RPC error -32004 naming the quota and when to retry; nothing reaches the server.
 *
 *   const quotas = createQuotas({ intervalMs: 60_000, perAgent: { calls: 600, sessions: 4 }, perIssuer: { bytes: 1e9 } });
 *   await serveMcp({ identity, trust, quotas }, factory);
 *
 * Counted:
 *   calls     every request from the agent (any method), refused ones excepted
 *   bytes     every message of the session, both ways (JSON bytes); a request is refused
 *             once the window's total plus its own size would pass the limit, the response
 *             that follows is counted whatever its size
 *   sessions  sessions open at once; a session over the limit stays connected but every
 *             request in it is refused (close it and reconnect when another has ended)
 *
 * Sharp edges:
 * - Windows are fixed, aligned on multiples of the interval since the epoch: a burst at the
 *   end of one window and the start of the next can reach twice a limit within one interval.
 *   "retry after" is the end of the current window.
 * - Counters live in a QuotaStore (default: MemoryQuotaStore, one process). The interface
 *   is synchronous because hooks are: a store shared by a fleet keeps local counters and
 *   reconciles in the background (so a fleet may overshoot by what one sync period lets in).
 * - Limits apply to verified identities only (agent id, issuer id from the credential).
 *   A limit absent means unlimited. reconfigure() changes limits and keeps the counters.
 * - Requests the hook pipeline refuses before any hook runs (a reused id, or past
 *   MAX_TRACKED in flight: transport/request-tracker.ts) are not counted, neither as calls nor
 *   as bytes, as a request this hook refuses is not: nothing reaches the server, and each
 *   costs one small error reply, within the transport's record and receive limits (review
 *   8, L7). A peer held at the in-flight bound is still held by its calls quota for every
 *   request it gets accepted.
 */
import { InvalidArgumentError, PolicyInvalidError } from '../errors.js';
import { errorResponse, isRequestMessage } from '../transport/hook-api.js';
import type { HookContext, HookResult, HookSession, JsonRpcMessage, MessageHook } from '../transport/hook-api.js';
import { PolicyErrorCode } from './schema.js';

export interface QuotaLimits {
  /** Requests per interval. */
  calls?: number;
  /** JSON bytes per interval, both directions. */
  bytes?: number;
  /** Sessions open at once. */
  sessions?: number;
}

export interface QuotaConfig {
  /** Length of a calls/bytes window in milliseconds. Default 60 000. */
  intervalMs?: number;
  /** Limits of every agent (unless `agents` names it). */
  perAgent?: QuotaLimits;
  /** Limits of every issuer: the sum over all agents it vouches for. */
  perIssuer?: QuotaLimits;
  /** Limits of particular agents, by agent id (replacing perAgent for them, field by field). */
  agents?: Record<string, QuotaLimits>;
  /** Limits of particular issuers, by issuer id. */
  issuers?: Record<string, QuotaLimits>;
}

/** Where counters live. Default: MemoryQuotaStore. */
export interface QuotaStore {
  /** The amount counted under `key` in the window of `windowMs` holding `now`, and when that window ends (ms). */
  used(key: string, windowMs: number, now: number): { used: number; resetAt: number };
  /** Count `amount` under `key` in the window holding `now`. */
  add(key: string, amount: number, windowMs: number, now: number): void;
  /** Change a level that is not windowed (open sessions) by `delta`; returns the new level. */
  adjust(key: string, delta: number): number;
}

/** Counters in memory for one process. Entries of ended windows are swept as the map grows. */
export class MemoryQuotaStore implements QuotaStore {
  private readonly windows = new Map<string, { start: number; used: number }>();
  private readonly levels = new Map<string, number>();
  private sweepAbove = 4096;

  used(key: string, windowMs: number, now: number): { used: number; resetAt: number } {
    const start = now - (now % windowMs);
    const entry = this.windows.get(key);
    return { used: entry !== undefined && entry.start === start ? entry.used : 0, resetAt: start + windowMs };
  }

  add(key: string, amount: number, windowMs: number, now: number): void {
    const start = now - (now % windowMs);
    const entry = this.windows.get(key);
    if (entry !== undefined && entry.start === start) {
      entry.used += amount;
      return;
    }
    this.windows.set(key, { start, used: amount });
    if (this.windows.size > this.sweepAbove) this.sweep(windowMs, now);
  }

  adjust(key: string, delta: number): number {
    const level = Math.max(0, (this.levels.get(key) ?? 0) + delta);
    if (level === 0) this.levels.delete(key);
    else this.levels.set(key, level);
    return level;
  }

  private sweep(windowMs: number, now: number): void {
    const current = now - (now % windowMs);
    for (const [key, entry] of this.windows) if (entry.start < current) this.windows.delete(key);
    this.sweepAbove = Math.max(4096, this.windows.size * 2);
  }
}

/** What a quota refusal records on the request (notes.quota) and sends as error.data. */
export interface QuotaNote {
  quota: 'calls' | 'bytes' | 'sessions';
  scope: 'agent' | 'issuer';
  limit: number;
  /** Milliseconds until the window ends (calls, bytes); absent for sessions. */
  retryAfterMs?: number;
}

type Scope = 'agent' | 'issuer';
interface Subject {
  scope: Scope;
  key: string;
  limits: QuotaLimits;
}
interface SessionState {
  subjects: Subject[];
  /** Set when the session was over the sessions quota when it opened. */
  refused: QuotaNote | undefined;
  /** Level keys this session holds (released when it closes). */
  held: string[];
}

const DEFAULT_INTERVAL_MS = 60_000;
const LIMIT_FIELDS = ['calls', 'bytes', 'sessions'] as const;

function checkLimits(value: unknown, where: string, problems: string[]): QuotaLimits {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push(`${where} must be an object of limits (calls, bytes, sessions)`);
    return {};
  }
  const out: QuotaLimits = {};
  for (const [k, v] of Object.entries(value)) {
    if (!(LIMIT_FIELDS as readonly string[]).includes(k)) problems.push(`${where}: unknown limit "${k}" (calls, bytes, sessions)`);
    else if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) problems.push(`${where}.${k} must be a whole number >= 0`);
    else out[k as keyof QuotaLimits] = v;
  }
  return out;
}

function checkMap(value: unknown, where: string, problems: string[]): Record<string, QuotaLimits> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push(`${where} must be an object keyed by id`);
    return {};
  }
  const out: Record<string, QuotaLimits> = Object.create(null) as Record<string, QuotaLimits>;
  for (const [id, limits] of Object.entries(value)) out[id] = checkLimits(limits, `${where}["${id}"]`, problems);
  return out;
}

/** Check a quota configuration; throws PolicyInvalidError listing every problem. */
export function checkQuotaConfig(config: unknown, source = 'quotas'): Required<QuotaConfig> {
  const problems: string[] = [];
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new PolicyInvalidError(`${source}: quotas must be an object`);
  const c = config as Record<string, unknown>;
  for (const k of Object.keys(c)) if (!['intervalMs', 'perAgent', 'perIssuer', 'agents', 'issuers'].includes(k)) problems.push(`unknown field "${k}"`);
  const intervalMs = c['intervalMs'] ?? DEFAULT_INTERVAL_MS;
  if (typeof intervalMs !== 'number' || !Number.isSafeInteger(intervalMs) || intervalMs < 1) problems.push('intervalMs must be a whole number of milliseconds >= 1');
  const result = {
    intervalMs: intervalMs as number,
    perAgent: checkLimits(c['perAgent'], 'perAgent', problems),
    perIssuer: checkLimits(c['perIssuer'], 'perIssuer', problems),
    agents: checkMap(c['agents'], 'agents', problems),
    issuers: checkMap(c['issuers'], 'issuers', problems),
  };
  if (problems.length > 0) throw new PolicyInvalidError(`${source}: quotas not loaded`, problems.map((p) => `${source}: ${p}`));
  return result;
}

/**
 * A quotas file (JSON): { "intervalSeconds": 60, "perAgent": {...}, "perIssuer": {...},
 * "agents": { "<id>": {...} }, "issuers": { "<id>": {...} } }.
 */
export function parseQuotaFile(text: string, source = 'quotas'): Required<QuotaConfig> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PolicyInvalidError(`${source}: not JSON (${err instanceof Error ? err.message : 'parse error'})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new PolicyInvalidError(`${source}: quotas must be a JSON object`);
  const { intervalSeconds, ...rest } = json as Record<string, unknown>;
  if (intervalSeconds !== undefined && (typeof intervalSeconds !== 'number' || !(intervalSeconds > 0))) throw new PolicyInvalidError(`${source}: quotas not loaded`, [`${source}: intervalSeconds must be a number > 0`]);
  return checkQuotaConfig({ ...rest, ...(intervalSeconds !== undefined ? { intervalMs: Math.round((intervalSeconds as number) * 1000) } : {}) }, source);
}

function seconds(ms: number): string {
  return `${Math.max(1, Math.ceil(ms / 1000))} s`;
}

/** The text of a quota refusal. */
export function quotaMessage(n: QuotaNote, intervalMs: number): string {
  const what = n.quota === 'sessions' ? `concurrent sessions per ${n.scope} (${n.limit})` : `${n.quota} per ${n.scope} (${n.limit} per ${seconds(intervalMs)})`;
  const retry = n.retryAfterMs !== undefined ? `retry after ${seconds(n.retryAfterMs)}` : 'close another session, then reconnect';
  return `pqmcp: quota exceeded: ${what}; ${retry}`;
}

export interface QuotasOptions {
  /** Counters; default a new MemoryQuotaStore. */
  store?: QuotaStore;
  /** Clock in milliseconds. Default Date.now. */
  now?: () => number;
}

export class Quotas implements MessageHook {
  readonly name = 'quotas';
  private config: Required<QuotaConfig>;
  private readonly sessions = new Map<string, SessionState>();
  private readonly store: QuotaStore;
  private readonly now: () => number;

  constructor(config: QuotaConfig, options: QuotasOptions = {}) {
    this.config = checkQuotaConfig(config);
    this.store = options.store ?? new MemoryQuotaStore();
    this.now = options.now ?? Date.now;
  }

  /** New limits, same counters (SIGHUP). Sessions already over a sessions quota stay refused. */
  reconfigure(config: QuotaConfig): void {
    this.config = checkQuotaConfig(config);
    for (const state of this.sessions.values()) for (const s of state.subjects) s.limits = this.limitsOf(s.scope, s.key.slice(s.scope.length + 1));
  }

  opened(session: HookSession): void {
    const subjects: Subject[] = [
      { scope: 'agent', key: `agent:${session.peer.agentId}`, limits: this.limitsOf('agent', session.peer.agentId) },
      { scope: 'issuer', key: `issuer:${session.peer.issuer}`, limits: this.limitsOf('issuer', session.peer.issuer) },
    ];
    const state: SessionState = { subjects, refused: undefined, held: [] };
    for (const s of subjects) {
      const level = this.store.adjust(`${s.key}:sessions`, 1);
      state.held.push(`${s.key}:sessions`);
      if (s.limits.sessions !== undefined && level > s.limits.sessions) {
        state.refused = { quota: 'sessions', scope: s.scope, limit: s.limits.sessions };
        break;
      }
    }
    if (state.refused !== undefined) {
      // Over the limit: it holds no slot.
      for (const key of state.held) this.store.adjust(key, -1);
      state.held = [];
    }
    this.sessions.set(session.sessionId, state);
  }

  /**
   * Why a session that has just opened is over a sessions quota (undefined when it is not).
   * Its requests are refused anyway; a gateway can ask this to refuse the session before it
   * spends anything on it (the CLI spawns no child for it).
   */
  sessionRefusal(sessionId: string): QuotaNote | undefined {
    const refused = this.sessions.get(sessionId)?.refused;
    return refused === undefined ? undefined : { ...refused };
  }

  closed(session: HookSession): void {
    const state = this.sessions.get(session.sessionId);
    if (state === undefined) return;
    this.sessions.delete(session.sessionId);
    for (const key of state.held) this.store.adjust(key, -1);
  }

  fromPeer(message: JsonRpcMessage, ctx: HookContext): HookResult {
    const state = this.sessions.get(ctx.sessionId);
    if (state === undefined) return undefined;
    const now = this.now();
    const window = this.config.intervalMs;
    if (!isRequestMessage(message)) {
      this.count(state, 'bytes', ctx.bytes, now);
      return undefined;
    }
    const refusal = state.refused ?? this.over(state, ctx.bytes, now);
    if (refusal !== undefined) {
      if (ctx.request !== undefined) {
        ctx.request.notes['quota'] = refusal;
        ctx.request.notes['policy'] = { decision: 'deny', policies: [], reason: quotaMessage(refusal, window).replace(/^pqmcp: /, '') };
      }
      return { reply: errorResponse(message, PolicyErrorCode.quotaExceeded, quotaMessage(refusal, window), refusal) };
    }
    this.count(state, 'calls', 1, now);
    this.count(state, 'bytes', ctx.bytes, now);
    return undefined;
  }

  toPeer(_message: JsonRpcMessage, ctx: HookContext): HookResult {
    const state = this.sessions.get(ctx.sessionId);
    if (state !== undefined) this.count(state, 'bytes', ctx.bytes, this.now());
    return undefined;
  }

  private limitsOf(scope: Scope, id: string): QuotaLimits {
    const base = scope === 'agent' ? this.config.perAgent : this.config.perIssuer;
    const table = scope === 'agent' ? this.config.agents : this.config.issuers;
    return { ...base, ...(Object.hasOwn(table, id) ? table[id] : {}) };
  }

  /** The first quota this request would pass, if any. */
  private over(state: SessionState, bytes: number, now: number): QuotaNote | undefined {
    const window = this.config.intervalMs;
    for (const s of state.subjects) {
      const calls = s.limits.calls;
      if (calls !== undefined) {
        const { used, resetAt } = this.store.used(`${s.key}:calls`, window, now);
        if (used + 1 > calls) return { quota: 'calls', scope: s.scope, limit: calls, retryAfterMs: resetAt - now };
      }
      const limit = s.limits.bytes;
      if (limit !== undefined) {
        const { used, resetAt } = this.store.used(`${s.key}:bytes`, window, now);
        if (used + bytes > limit) return { quota: 'bytes', scope: s.scope, limit, retryAfterMs: resetAt - now };
      }
    }
    return undefined;
  }

  private count(state: SessionState, what: 'calls' | 'bytes', amount: number, now: number): void {
    for (const s of state.subjects) if (s.limits[what] !== undefined) this.store.add(`${s.key}:${what}`, amount, this.config.intervalMs, now);
  }
}

/** Quotas as a message hook for serveMcp/listen's `quotas` option. Throws PolicyInvalidError on a bad config. */
export function createQuotas(config: QuotaConfig, options: QuotasOptions = {}): Quotas {
  if (options.now !== undefined && typeof options.now !== 'function') throw new InvalidArgumentError('now must be a function returning milliseconds');
  return new Quotas(config, options);
}
