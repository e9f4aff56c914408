/**
 * Authorization as a message hook: every request of a session is decided by a Cedar policy
 * before the MCP server (or, for sampling, elicitation and roots, the client) sees it; list
 * results are filtered to what the agent may use; reloads swap the policy in place.
 *
 *   const policy = await loadPolicy({ file: 'mcp.cedar' });   // watches the file
 *   await serveMcp({ identity, trust, policy }, factory);
 *
 * Sharp edges:
 * - A denied request is answered here with JSON-RPC error -32003 and the constant text
 *   "pqmcp: not permitted by policy: <method> [<kind> "<name>"]": nothing of the policy
 *   (ids, conditions, which rule) reaches the peer. The decision, with the deciding policy
 *   ids, is recorded on the request as notes.policy for an auditor.
 * - tools/list, resources/list, resources/templates/list and prompts/list results lose
 *   the items the agent could not use (LIST_FILTERS); pagination cursors pass unchanged,
 *   so a page may come back shorter than the server made it, even empty. Any other
 *   response to the peer, including one whose request the pipeline no longer knows (an
 *   answer after a cancellation), has every list field it carries (`tools`, `resources`,
 *   `resourceTemplates`, `prompts`) filtered the same way: a list matched to the wrong
 *   request still cannot pass unfiltered.
 * - notifications/resources/updated for a resource the agent may not read is dropped.
 * - reload() and file changes never drop a session: a policy that fails to parse or to
 *   validate is refused (PolicyInvalidError, onReload) and the old one stays in force. A
 *   good one takes effect for the next message of every session, and (when the text
 *   changed) each initialized session gets list_changed for the lists its server
 *   announced, so clients re-list.
 * - Decisions are memoised per session, keyed on action, resource and the values of the
 *   context attributes the policies read (exact: nothing else varies within a session); a
 *   reload discards them. `memo: false` decides every request afresh.
 * - Watching uses fs.watch on the file's directory, any change there (atomic replace by
 *   rename works, and so does a symlink swapped as a Kubernetes ConfigMap does), and, for
 *   a symlink into another directory, on that one too; a change within 50 ms of another is
 *   read once, and reloads only when the text differs. The file is read synchronously. A file
 *   the watcher finds empty (or only whitespace) is a save in progress, not a policy (and
 *   reported once to onReload, ok: false, until it has content again): a
 *   save in place truncates the file first, and on a loaded machine the write can come
 *   more than 50 ms later; loaded, an empty file holds no policy and denies everything,
 *   and a broken save after it would have kept that in force. So the policy in force stays
 *   until the file has content. To deny everything, say so: `forbid(principal, action,
 *   resource);`. (loadPolicy and reload() take an empty text as given.)
 */
import { readFileSync, realpathSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { InvalidArgumentError, PolicyInvalidError } from '../errors.js';
import type { VerifiedPeer } from '../identity/trust.js';
import { errorResponse, isRequestMessage } from '../transport/hook-api.js';
import type { HookChannel, HookContext, HookResult, HookSession, JsonRpcMessage, MessageHook, TrackedRequest } from '../transport/hook-api.js';
import { CedarEngine } from './cedar.js';
import type { CedarEntity, Decision, PolicyInfo } from './cedar.js';
import { contextFor, principalEntity } from './request.js';
import { LIST_CHANGED, LIST_FILTERS, PolicyErrorCode, UNDECIDED_METHODS, resourceOf } from './schema.js';
import type { CedarResource } from './schema.js';

/** What a hook records on a request it decided (notes.policy), for auditors. */
export interface PolicyNote {
  decision: 'allow' | 'deny';
  /** Ids of the deciding policies (empty: nothing permitted it, or a quota decided). */
  policies: string[];
  reason: string;
}

export type ReloadEvent = { ok: true; source: string; policies: number } | { ok: false; source: string; error: PolicyInvalidError };

export interface PolicyOptions {
  /** Cedar policy text. Give text or file. */
  text?: string;
  /** A file of Cedar policies. */
  file?: string;
  /** Reload when the file changes. Default true with `file`. */
  watch?: boolean;
  /** Id of the Server resource (methods that name no tool, resource or prompt). Default "mcp". */
  server?: string;
  /** Told of every reload, good or refused (file changes, reload()). */
  onReload?: (event: ReloadEvent) => void;
  /** Clock in milliseconds (context.time). Default Date.now. */
  now?: () => number;
  /** Memoise decisions per session (exact, see above). Default true; false: Cedar decides every request. */
  memo?: boolean;
}

/** `pqmcp policy explain` and Policy.explain(): a decision with its reasons. */
export interface Explanation {
  principal: CedarEntity;
  action: string;
  resource: CedarResource;
  decision: Decision;
  /** The deciding policies in full. */
  policies: PolicyInfo[];
  reason: string;
}

interface SessionState {
  principal: CedarEntity;
  channel: HookChannel | undefined;
  /** Capabilities from the server's initialize result (undefined until then). */
  lists: string[] | undefined;
  cache: Map<string, Decision>;
  generation: number;
}

const MAX_MEMO = 1024;
/** What a policy set that reads no context attribute is given (never read, so never built). */
const EMPTY_CONTEXT = contextFor({ sessionId: '', requestBytes: 0, remoteAddress: '', now: 0 });
const MAX_NAME_IN_ERROR = 200;

function reasonOf(decision: Decision): string {
  const errors = decision.errors.length > 0 ? `; ${decision.errors.length} polic${decision.errors.length === 1 ? 'y' : 'ies'} failed to evaluate: ${decision.errors.join('; ')}` : '';
  if (decision.allowed) return `permitted by ${decision.policies.join(', ')}${errors}`;
  if (decision.policies.length > 0) return `forbidden by ${decision.policies.join(', ')}${errors}`;
  return `no policy permits it${errors}`;
}

/** The constant, leak-free text of a refusal. */
export function deniedMessage(method: string, resource: CedarResource): string {
  if (resource.type === 'Server') return `pqmcp: not permitted by policy: ${method}`;
  const name = resource.id.length > MAX_NAME_IN_ERROR ? `${resource.id.slice(0, MAX_NAME_IN_ERROR)}...` : resource.id;
  return `pqmcp: not permitted by policy: ${method} ${resource.type.toLowerCase()} ${JSON.stringify(name)}`;
}

export class Policy implements MessageHook {
  readonly name = 'policy';
  private readonly sessions = new Map<string, SessionState>();
  private watcher: FSWatcher | undefined;
  /** A symlinked file's target directory, when it is not the file's own, and its watcher. */
  private targetDir: string | undefined;
  private targetWatcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private lastText: string | undefined;
  /** The watcher found the file empty and reported it (once, until it has content again). */
  private emptySeen = false;
  private readonly server: string;
  private readonly now: () => number;

  /** @internal Use loadPolicy(). */
  constructor(
    private readonly engine: CedarEngine,
    private readonly options: PolicyOptions,
  ) {
    this.server = options.server ?? 'mcp';
    this.now = options.now ?? Date.now;
  }

  /** The policies in force. */
  get policies(): readonly PolicyInfo[] {
    return this.engine.policies;
  }

  /** Where the policy comes from ("policy" for text). */
  get source(): string {
    return this.options.file ?? 'policy';
  }

  /**
   * Replace the policy: with `text`, or by re-reading the file. Throws PolicyInvalidError
   * (and reports it to onReload) when it is refused; the policy in force then stays.
   */
  reload(text?: string): void {
    const source = this.source;
    let next: string;
    try {
      next = text ?? this.read();
      this.engine.load(next, source);
    } catch (err) {
      const error = err instanceof PolicyInvalidError ? err : new PolicyInvalidError(`${source}: ${err instanceof Error ? err.message : 'cannot be read'}`);
      this.options.onReload?.({ ok: false, source, error });
      throw error;
    }
    const changed = next !== this.lastText;
    this.lastText = next;
    this.options.onReload?.({ ok: true, source, policies: this.engine.policies.length });
    // The same text again (a SIGHUP for the revocation lists) changes no list: say nothing.
    if (changed) for (const state of this.sessions.values()) this.announce(state);
  }

  /** Stop watching the file. Sessions keep the policy in force. */
  close(): void {
    clearTimeout(this.debounce);
    this.watcher?.close();
    this.watcher = undefined;
    this.targetWatcher?.close();
    this.targetWatcher = undefined;
  }

  /** Decide a request as the hook would, with the deciding policies in full. */
  explain(peer: VerifiedPeer, method: string, params?: unknown, facts: { sessionId?: string; requestBytes?: number; remoteAddress?: string; now?: number } = {}): Explanation {
    const principal = principalEntity(peer);
    const resource = resourceOf(method, params, this.server);
    const context = contextFor({ sessionId: facts.sessionId ?? '', requestBytes: facts.requestBytes ?? 0, remoteAddress: facts.remoteAddress, now: facts.now ?? this.now() });
    const decision = this.engine.authorize({ principal, action: method, resource, context });
    const policies = decision.policies.map((id) => this.engine.policy(id)).filter((p): p is PolicyInfo => p !== undefined);
    return { principal, action: method, resource, decision, policies, reason: reasonOf(decision) };
  }

  // --- the hook ------------------------------------------------------------------------------

  opened(session: HookSession, channel: HookChannel): void {
    this.sessions.set(session.sessionId, this.newState(session.peer, channel));
  }

  closed(session: HookSession): void {
    this.sessions.delete(session.sessionId);
  }

  fromPeer(message: JsonRpcMessage, ctx: HookContext): HookResult {
    if (!isRequestMessage(message)) return undefined;
    const method = message.method!;
    if (UNDECIDED_METHODS.has(method) || Object.hasOwn(LIST_FILTERS, method)) return undefined;
    return this.gate(message, method, ctx);
  }

  toPeer(message: JsonRpcMessage, ctx: HookContext): HookResult {
    if (message.method === undefined) return this.response(message, ctx);
    if (isRequestMessage(message)) return UNDECIDED_METHODS.has(message.method) ? undefined : this.gate(message, message.method, ctx);
    if (message.method === 'notifications/resources/updated') {
      const resource = resourceOf('resources/read', message.params, this.server);
      if (!this.decide(ctx, 'resources/read', resource, ctx.bytes).allowed) return { drop: true };
    }
    return undefined;
  }

  // --- internals -----------------------------------------------------------------------------

  private newState(peer: VerifiedPeer, channel: HookChannel | undefined): SessionState {
    return { principal: principalEntity(peer), channel, lists: undefined, cache: new Map(), generation: this.engine.generation };
  }

  private state(ctx: HookContext): SessionState {
    let state = this.sessions.get(ctx.sessionId);
    if (state === undefined) {
      state = this.newState(ctx.peer, undefined);
      this.sessions.set(ctx.sessionId, state);
    }
    return state;
  }

  /** Decide a request travelling either way; refuse it with an error reply when denied. */
  private gate(message: JsonRpcMessage, method: string, ctx: HookContext): HookResult {
    const resource = resourceOf(method, message.params, this.server);
    const decision = this.decide(ctx, method, resource, ctx.bytes);
    note(ctx.request, { decision: decision.allowed ? 'allow' : 'deny', policies: decision.policies, reason: reasonOf(decision) });
    if (decision.allowed) return undefined;
    return { reply: errorResponse(message, PolicyErrorCode.denied, deniedMessage(method, resource)) };
  }

  private decide(ctx: HookContext, action: string, resource: CedarResource, bytes: number): Decision {
    const state = this.state(ctx);
    const memo = this.options.memo !== false;
    const reads = this.engine.contextReads;
    const context = reads !== 'all' && reads.length === 0 ? EMPTY_CONTEXT : contextFor({ sessionId: ctx.sessionId, requestBytes: bytes, remoteAddress: ctx.remoteAddress, now: this.now() });
    let key = '';
    if (memo) {
      if (state.generation !== this.engine.generation) {
        state.cache.clear();
        state.generation = this.engine.generation;
      }
      // Action and id are the peer's strings (any character, '\n' included): JSON-quoted, so
      // two different requests never share a key.
      key = `${JSON.stringify(action)}${resource.type}${JSON.stringify(resource.id)}`;
      if (reads === 'all') key += `\n${JSON.stringify(context)}`;
      else for (const name of reads) key += `\n${String(context[name])}`;
      const hit = state.cache.get(key);
      if (hit !== undefined) return hit;
    }
    const decision = this.engine.authorize({ principal: state.principal, action, resource, context });
    if (memo) {
      if (state.cache.size >= MAX_MEMO) state.cache.clear();
      state.cache.set(key, decision);
    }
    return decision;
  }

  /**
   * A response on its way to the peer: remember the server's lists; filter list results.
   * A response to anything but a list method, or whose request the pipeline no longer knows
   * (answered after its cancellation), has every list field it carries filtered: fail
   * closed, not an unfiltered list.
   */
  private response(message: JsonRpcMessage, ctx: HookContext): HookResult {
    const request = ctx.request;
    if ((request !== undefined && request.direction !== 'fromPeer') || typeof message.result !== 'object' || message.result === null) return undefined;
    const result = message.result as Record<string, unknown>;
    if (request?.method === 'initialize') {
      const caps = typeof result['capabilities'] === 'object' && result['capabilities'] !== null ? (result['capabilities'] as Record<string, unknown>) : {};
      this.state(ctx).lists = Object.keys(LIST_CHANGED).filter((k) => caps[k] !== undefined);
    }
    // A list method's own field; any other response (or one answering no known request) has
    // every list field it carries filtered: an answer matched to the wrong request (a peer
    // reusing a cancelled id whose record the pipeline had to forget, a local side answering
    // a cancelled request) must not carry a list past the filter.
    const own = request !== undefined && Object.hasOwn(LIST_FILTERS, request.method) ? LIST_FILTERS[request.method]! : undefined;
    const filters = own !== undefined ? [own] : Object.values(LIST_FILTERS).filter((f) => Array.isArray(result[f.field]));
    let replaced: Record<string, unknown> | undefined;
    for (const filter of filters) {
      const items = result[filter.field];
      if (!Array.isArray(items)) continue;
      const kept = items.filter((item: unknown) => {
        const id = typeof item === 'object' && item !== null ? (item as Record<string, unknown>)[filter.key] : undefined;
        return typeof id === 'string' && this.decide(ctx, filter.action, { type: filter.type, id }, request?.bytes ?? 0).allowed;
      });
      // The decision of a request that is not a list stays as it was noted.
      if (own !== undefined) note(request, { decision: 'allow', policies: [], reason: `listed ${kept.length} of ${items.length}` });
      if (kept.length !== items.length) (replaced ??= { ...result })[filter.field] = kept;
    }
    return replaced === undefined ? undefined : { replace: { ...message, result: replaced } };
  }

  /** After a reload: tell an initialized session's client that its lists may have changed. */
  private announce(state: SessionState): void {
    if (state.channel === undefined || state.lists === undefined) return;
    for (const list of state.lists) void state.channel.notify({ jsonrpc: '2.0', method: LIST_CHANGED[list]! }).catch(() => {});
  }

  private read(): string {
    if (this.options.file === undefined) throw new InvalidArgumentError('reload() without text needs a policy file');
    return readPolicyFile(this.options.file);
  }

  private readonly changed = (): void => {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.onChange(), 50);
  };

  /**
   * @internal Start watching the policy file: any change in its directory, not only one
   * naming it (review 15, R15-5), since a symlinked file changes with no event of its own:
   * a Kubernetes ConfigMap renames a new `..data` link over the old one. The file is then
   * read and compared (onChange), so other files' changes cost a read.
   */
  watchFile(): void {
    this.watcher = watch(dirname(this.options.file!), { persistent: false }, this.changed);
    this.watcher.on('error', () => this.close());
    this.watchTarget();
  }

  /** A symlink to a file in another directory: watch that one too (edited in place there); re-resolved at each change. */
  private watchTarget(): void {
    const file = this.options.file!;
    let dir: string | undefined;
    try {
      dir = dirname(realpathSync(file));
      if (dir === realpathSync(dirname(file))) dir = undefined;
    } catch {
      dir = undefined; // mid-replace: resolved again at the next change
    }
    if (dir === this.targetDir && (dir === undefined || this.targetWatcher !== undefined)) return;
    this.targetWatcher?.close();
    this.targetWatcher = undefined;
    this.targetDir = dir;
    if (dir === undefined) return;
    try {
      const w = watch(dir, { persistent: false }, this.changed);
      // Its directory removed (the ConfigMap's old one): the next change resolves the new target.
      w.on('error', () => {
        w.close();
        if (this.targetWatcher === w) this.targetWatcher = undefined;
      });
      this.targetWatcher = w;
    } catch {
      this.targetDir = undefined;
    }
  }

  private onChange(): void {
    if (this.watcher === undefined) return;
    this.watchTarget();
    let text: string;
    try {
      text = this.read();
    } catch {
      return; // mid-replace (the file is briefly absent): the rename event follows
    }
    if (text.trim() === '') {
      // Truncated by a save in place, its content not written yet: wait for the next change,
      // and say so once (an operator who emptied it to drop the policy must hear why not).
      if (!this.emptySeen) this.options.onReload?.({ ok: false, source: this.options.file!, error: new PolicyInvalidError(`${this.options.file}: empty, taken as a save in progress; to deny everything, write forbid(principal, action, resource);`) });
      this.emptySeen = true;
      return;
    }
    this.emptySeen = false;
    if (text === this.lastText) return;
    try {
      this.reload(text);
    } catch {
      // Reported to onReload; the policy in force stays.
    }
  }

  /** @internal */
  setLoaded(text: string): void {
    this.lastText = text;
  }
}

function readPolicyFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new PolicyInvalidError(`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function note(request: TrackedRequest | undefined, value: PolicyNote): void {
  if (request !== undefined) request.notes['policy'] = value;
}

/**
 * Load a Cedar policy (text or file), validated against the pqmcp schema, as a message
 * hook for serveMcp/listen's `policy` option. Throws PolicyInvalidError when it does not
 * parse or validate, PolicyEngineUnavailableError when @cedar-policy/cedar-wasm is missing.
 */
export async function loadPolicy(options: PolicyOptions): Promise<Policy> {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('loadPolicy options must be an object');
  if ((options.text === undefined) === (options.file === undefined)) throw new InvalidArgumentError('loadPolicy needs exactly one of text or file');
  if (options.text !== undefined && typeof options.text !== 'string') throw new InvalidArgumentError('text must be a string of Cedar policies');
  if (options.server !== undefined && (typeof options.server !== 'string' || options.server === '')) throw new InvalidArgumentError('server must be a non-empty string');
  const engine = await CedarEngine.create();
  const policy = new Policy(engine, options);
  const text = options.text ?? readPolicyFile(options.file!);
  engine.load(text, policy.source);
  policy.setLoaded(text);
  if (options.file !== undefined && options.watch !== false) policy.watchFile();
  return policy;
}

/** Parse and validate policies without enforcing them (`pqmcp policy check`). */
export async function checkPolicy(text: string, source = 'policy'): Promise<{ policies: PolicyInfo[]; warnings: string[]; contextReads: readonly string[] | 'all' }> {
  const engine = await CedarEngine.create();
  const { infos, warnings, contextReads } = engine.check(text, source);
  return { policies: infos, warnings, contextReads };
}
