/**
 * Tool pinning on the client: a message hook that checks every tool a server lists against
 * what was approved for that server identity before, or against the manifest its issuer
 * attested, and withholds what does not match (the "rug pull": a tool redefined after it
 * was approved).
 *
 *   hooks: [toolPinning({ store: new FilePinStore('pins.json') })]
 *
 * Pins belong to the server's verified identity: its agent id, under the issuer that vouched
 * for it (store.ts). A key the identity was never seen with is recorded (first-seen time; a
 * 'rotated' event) and changes nothing else: a new key of the same agent id is the same
 * server (an issuer re-issuing for a new key is routine), so its tools are checked against
 * the pins it had, exactly as under its old key. A key change is no way around a pin, nor
 * back from an attested manifest to trust on first use (both were, with pins per key:
 * review 8, L2).
 *
 * Per tools/list response, for each tool (hash: canonical.ts):
 *   another issuer vouches for the agent id than the one its pins were made under:
 *                                              -> every tool withheld ('issuer-changed'),
 *                                                 until `pqmcp pins approve --accept-issuer`
 *                                                 accepts it (then: checked against the pins)
 *   the server's credential claimed a manifest before, this one claims none:
 *                                              -> every tool withheld ('manifest-missing')
 *   server credential claims a manifest (manifest.ts), no trust on first use:
 *     in the manifest with this hash           -> passes
 *     otherwise                                -> withheld ('outside-manifest'), or every
 *                                                 tool withheld ('manifest-unknown') when no
 *                                                 given manifest has the claimed hash
 *   no claim (trust on first use, per server agent id, whichever of its keys):
 *     pinned with this hash                    -> passes
 *     pinned with another hash                 -> withheld ('changed', naming the fields;
 *                                                 `notRecorded` when the byte limits below
 *                                                 leave no room to hold it for approval)
 *     new name, otherwise the definition of a pinned tool the server no longer lists
 *                                              -> reported as 'renamed' (then as a new tool)
 *     new name                                 -> pinned and passes (newTools 'pin', the
 *                                                 default) or withheld ('hold'); withheld
 *                                                 ('new') whatever newTools says if the
 *                                                 migration of a version 1 file left it
 *                                                 `unapproved` (store.ts)
 * Withheld tools are removed from the list the client sees, kept in the store's `held`
 * for `pqmcp pins approve`, and reported through `onEvent`; a tools/call to a tool this
 * session has not seen pass is answered locally with a JSON-RPC error (code -32010) that
 * names why, and never reaches the server.
 * A server's entry records at most `maxTools` tools (pinned or held, each name once; default
 * DEFAULT_MAX_TOOLS, 1,024): a tool it would have to add past that is withheld WITHOUT being
 * recorded ('too-many-tools': not pinned, not held, nothing to approve), whatever the rule
 * above says; tools already recorded are checked as ever (review 16, R16-9: a server listing
 * new names at every listing grew the file, rewritten whole at each change, without end).
 * Bytes likewise: a tool record (its definition, as the pin file writes it: toolRecordBytes)
 * over `maxToolBytes` (DEFAULT_MAX_TOOL_BYTES, 256 KiB) is withheld and not recorded
 * ('tool-too-large'), and so is one that would take the server's records past
 * `maxEntryBytes` (DEFAULT_MAX_ENTRY_BYTES, 16 MiB; 'entry-too-large'). A pinned tool the
 * server redefined is still reported as 'changed' when its held record has no room: the
 * redefinition is what the user must see, not the limit (the event's `notRecorded` names the
 * limit; the pin stays, nothing is held, so there is nothing to approve until there is room).
 * The pin file is shared by every server the client pins: without the limits one server could
 * make its entry so large (1,024 definitions of up to a message each) that the file could no
 * longer be written (past V8's longest string), and pinning failed closed for every server in it.
 *
 * Why another issuer is neither a rotation nor a new server: the trust store may let two
 * issuers vouch for one agent id (both unconstrained, or with overlapping name
 * constraints), and then the id alone does not say which party runs the server. Taking the
 * other issuer's server as a rotation would carry the approvals given to the server one
 * issuer vouched for over to a party the user never approved; taking it as a new server
 * would start it on trust on first use, where a redefined tool is pinned unreported (the
 * rug pull again). So all its tools are held until the user accepts the new issuer
 * (`pqmcp pins approve <agent id> --accept-issuer <issuer id>`, nothing else: review 9 P3),
 * which pins no definition: from then on its tools are checked against the pins as after a
 * key rotation, so a tool it redefined is held as 'changed' and approved on its own (review
 * 9, F4); or `pqmcp pins forget` starts the server over. Issuers are compared
 * by id, so an issuer's own key rotation is no change. A self-signed server's issuer is its
 * agent id: its key rotations (a new trust pin, a deliberate act) are rotations like others.
 * A session vouched for by the pinned issuer again drops what was held as 'issuer-changed'
 * (the other issuer's definitions): accepting that issuer later from them would hand the
 * identity to an issuer that is no longer the one serving (review 9); the other issuer's
 * next session holds them again.
 *
 * Sharp edges:
 * - Fails closed: a store that cannot be read or written, or a definition that cannot be
 *   hashed, withholds the tool (the hook's error is reported, nothing is let through). A
 *   tools/list answer whose result is not an object with a `tools` array (`"result": null`
 *   included: R15-8) is replaced by a JSON-RPC error (-32010), so the client does not wait
 *   for its timeout; an outer auditor records the server's answer as it came (`error`
 *   for a result that is not an object).
 * - A tool is checked where it is listed: a client that calls tools it never listed is
 *   refused (`requireListed`, default true).
 * - Pins cover the definition (name, title, description, schemas, annotations), not the
 *   tool's behaviour: a server can still change what a tool does. Pair pinning with
 *   identities you trust and, where it matters, attested manifests.
 * - `maxTools` bounds how many tools an entry records, `maxToolBytes` and `maxEntryBytes`
 *   their bytes. A tool withheld past them is in this session's verdict (to refuse its
 *   calls) like any listed tool, not in the store. What is already recorded is checked as
 *   ever: an entry over a limit (a file from an older pqmcp, or a higher limit) keeps its
 *   records, and a record rewritten with no more bytes always fits, as does one with its
 *   definition unchanged held for another reason growing by at most SAME_DEFINITION_SLACK.
 * - A session keeps why a name is withheld (a reason, the message is built when a call is
 *   refused) for at most twice `maxTools` names, each at most MAX_KEPT_NAME_LENGTH long (a
 *   longer name is not kept: a call to any name that long it did not let through is refused). A server that withholds more (new names at
 *   every listing, review 17, R17-5) fills it: from then on the session refuses a call to
 *   every tool it has not let through, whatever `requireListed` says, with a generic message
 *   for the names it did not keep, and reports it once ('withheld-limit'). The names it let
 *   through are pinned (the store's `maxTools`) or in a manifest the user gave.
 * - Two servers of one agent id with different tools (not replicas) share one set of pins:
 *   each one's tools the other lacks are reported as changed or new. Give them two ids.
 */
import { InvalidArgumentError } from '../errors.js';
import { JsonRpcErrorCode, errorResponse } from '../transport/hook-api.js';
import type { JsonRpcMessage, MessageHook } from '../transport/hook-api.js';
import { changedFields, toolDefinition, toolHash } from './canonical.js';
import type { ToolLike } from './canonical.js';
import { MANIFEST_CLAIM, manifestHash } from './manifest.js';
import type { ToolManifest } from './manifest.js';
import { dropIssuerHolds, entryToolBytes, recordKey, serverKey, setToolEntry, toolEntry, toolRecordBytes } from './store.js';
import type { HeldReason, HeldTool, PinStore, PinnedServer, PinnedTool } from './store.js';

/** The issuer a migrated (version 1) entry's pins were made under, as reported: not recorded. */
const UNKNOWN_ISSUER = '(unknown: pin file version 1)';

/** JSON-RPC error code of a call refused by pinning. */
export const PIN_REFUSED = -32010;

/**
 * The most tools the store records per server by default (`maxTools`): pinned or held, a
 * name counted once (a pinned tool held with another definition is one). Real servers list
 * tens of tools, the largest (gateways that aggregate many servers) some hundreds; 1,024
 * leaves them room and bounds what a server, compromised or not, can make its client's pin
 * file keep: each listing of new names grew it for ever (review 16, R16-9: 3,000 pins, a
 * 1.6 MB file rewritten whole at every change, after six listings of 500 new names).
 */
export const DEFAULT_MAX_TOOLS = 1024;

/** How many bytes a held record of an unchanged definition may grow, held for another reason, beyond the byte limits. */
const SAME_DEFINITION_SLACK = 1024;

/**
 * The longest tool name (UTF-16 code units) a session keeps as a withheld name. The MCP
 * specification asks for names of 1 to 128 characters; a longer withheld name is not kept
 * (a server could otherwise make its client keep twice `maxTools` names of up to a message's
 * size each, 64 MiB: review 19), and a call to any name this long that the session did not
 * let through is refused, so leaving it out never makes it callable.
 */
export const MAX_KEPT_NAME_LENGTH = 1024;

/**
 * The most bytes one tool's record takes in the pin file by default (`maxToolBytes`, as
 * toolRecordBytes counts them: its definition as written, indented, in UTF-8). Real
 * definitions take about a kilobyte, the largest tens: server-everything's 17 tools 0.4 to
 * 1.1 KB each, the GitHub MCP server's 117 tool snapshots 185 KB together, the largest
 * (projects_write) 10.5 KB. 256 KiB is 25 times that; a larger one is more likely a server
 * filling its client's pin file than a tool.
 */
export const DEFAULT_MAX_TOOL_BYTES = 256 * 1024;

/**
 * The most bytes one server's tool records (pinned and held) take in the pin file by default
 * (`maxEntryBytes`): 16 MiB, 90 times the GitHub MCP server's whole tool set, or 1,024 tools
 * (maxTools) of 16 KiB each. The pin file is rewritten whole at each change and shared by
 * every server the client pins; V8's longest string (about 512 MiB on Node 20 to 24) lets
 * some thirty servers at the limit share it.
 */
export const DEFAULT_MAX_ENTRY_BYTES = 16 * 1024 * 1024;

/**
 * Why a tool is withheld, as `PinEvent` reports it: a `HeldReason` (the tool is kept in the
 * store's `held`), or 'too-many-tools': the server's entry already records `maxTools` tools
 * and this one is not among them, so it is withheld without being recorded (nothing to
 * approve: forget tools the server no longer lists, or raise `maxTools`); 'tool-too-large':
 * the tool's record would take more than `maxToolBytes`; 'entry-too-large': it would take the
 * server's records past `maxEntryBytes` (withheld and not recorded alike).
 */
export type WithheldReason = HeldReason | 'too-many-tools' | 'tool-too-large' | 'entry-too-large';

export interface PinEvent {
  /**
   * 'rotated': the server presented a key not seen before for its agent id (recorded).
   * 'withheld-limit' (once per session): the session keeps why `limit` names are withheld
   * (twice maxTools) and had to withhold one more (`tool`): from then on it refuses a call to
   * any tool it has not let through, whatever `requireListed` says.
   */
  kind: 'pinned' | 'withheld' | 'renamed' | 'rotated' | 'withheld-limit';
  /** Why a tool was withheld. */
  reason?: WithheldReason;
  /**
   * For 'too-many-tools': the most tools the store records per server (`maxTools`); for
   * 'tool-too-large': `maxToolBytes`; for 'entry-too-large': `maxEntryBytes` (the same for
   * `notRecorded`); for 'withheld-limit': the most withheld names a session keeps.
   */
  limit?: number;
  /** For 'tool-too-large' and 'entry-too-large' (as `reason` or `notRecorded`): the bytes the tool's record would take in the pin file. */
  bytes?: number;
  /**
   * For 'changed': the redefinition was withheld but not recorded (not held, nothing to
   * approve) because its record would take more than `maxToolBytes` ('tool-too-large') or the
   * server's records past `maxEntryBytes` ('entry-too-large'); `limit` and `bytes` as for
   * those reasons. Make room (forget tools, or raise the limit) and the next listing holds it.
   */
  notRecorded?: 'tool-too-large' | 'entry-too-large';
  server: { agentId: string; fingerprint: string };
  /** The tool ('' for 'rotated'). */
  tool: string;
  /** For 'rotated': the fingerprint of the key the server was last seen with before. */
  previousKey?: string;
  /** For 'issuer-changed': the issuer now vouching for the server, and the one its pins were made under. */
  issuer?: { now: string; pinned: string };
  /** For 'changed': the fields that differ from the pin. */
  changed?: string[];
  /** For 'renamed': the pinned name with the same definition. */
  from?: string;
}

export interface ToolPinningOptions {
  store: PinStore;
  /** A new tool (no pin, no manifest claim): 'pin' it on first use (default) or 'hold' it for approval. */
  newTools?: 'pin' | 'hold';
  /** Manifests the issuer published; matched by hash to a server credential's claim. */
  manifests?: readonly ToolManifest[];
  /** Refuse calls to tools not listed (and passed) in this session. Default true. */
  requireListed?: boolean;
  /**
   * The most tools recorded per server, pinned or held (each name once): DEFAULT_MAX_TOOLS,
   * 1,024. A tool the entry would have to add past it is withheld and not recorded
   * ('too-many-tools'); tools already recorded are checked as ever. An integer >= 1.
   */
  maxTools?: number;
  /**
   * The most bytes one tool's record takes in the store (its definition as the pin file writes
   * it: toolRecordBytes): DEFAULT_MAX_TOOL_BYTES, 256 KiB. A tool whose record would be larger
   * is withheld and not recorded ('tool-too-large'; a pinned tool's redefinition: 'changed',
   * with `notRecorded`). An integer >= 1.
   */
  maxToolBytes?: number;
  /**
   * The most bytes a server's tool records (pinned and held) take in the store together:
   * DEFAULT_MAX_ENTRY_BYTES, 16 MiB. A tool whose record would take them past it is withheld
   * and not recorded ('entry-too-large'; a pinned tool's redefinition: 'changed', with
   * `notRecorded`). An integer >= 1.
   */
  maxEntryBytes?: number;
  /** Pinned, withheld and renamed tools, as they are found. */
  onEvent?: (event: PinEvent) => void;
}

/** Why a name is withheld, kept per name until a call to it is refused (the message is built then). */
interface Withholding {
  reason: WithheldReason | 'unhashable' | 'store-failed';
  changed?: string[];
  from?: string;
  issuer?: { now: string; pinned: string };
  /** For 'changed': the limit that kept the redefinition from being held (PinEvent.notRecorded). */
  notRecorded?: 'tool-too-large' | 'entry-too-large';
}
const TOO_MANY: Withholding = Object.freeze({ reason: 'too-many-tools' });
const TOOL_TOO_LARGE: Withholding = Object.freeze({ reason: 'tool-too-large' });
const ENTRY_TOO_LARGE: Withholding = Object.freeze({ reason: 'entry-too-large' });
const UNHASHABLE: Withholding = Object.freeze({ reason: 'unhashable' });
const STORE_FAILED: Withholding = Object.freeze({ reason: 'store-failed' });

interface Verdict {
  /** The names this session let through: no more than the store records, or a manifest lists. */
  allowed: Set<string>;
  /** name -> why it is withheld; at most `limit` names (review 17, R17-5). */
  withheld: Map<string, Withholding>;
  /** The first name the withheld map had no room for: from then on every name not allowed is refused. */
  full?: string;
  /** The 'withheld-limit' event was reported. */
  fullReported?: boolean;
}

function why(tool: string, reason: HeldReason, changed?: string[], from?: string, issuer?: { now: string; pinned: string }, server?: string): string {
  switch (reason) {
    case 'issuer-changed':
      return `tool ${tool} is withheld: the server is now vouched for by issuer ${issuer?.now}, its tools were approved under ${issuer?.pinned} (pqmcp pins approve ${server} --accept-issuer ${issuer?.now} accepts the new issuer; its tools are then checked against their pins)`;
    case 'changed':
      return `tool ${tool} is withheld: its definition changed since it was approved (${(changed ?? []).join(', ')}); approve it with pqmcp pins approve`;
    case 'new':
      return `tool ${tool} is new and held for approval (pqmcp pins approve)`;
    case 'renamed':
      return `tool ${tool} is held: it has the definition of the approved tool ${from} under a new name (pqmcp pins approve)`;
    case 'outside-manifest':
      return `tool ${tool} is withheld: it is not in the tool manifest the server's issuer attested`;
    case 'manifest-unknown':
      return `tool ${tool} is withheld: the server's credential attests a tool manifest this client does not have`;
    case 'manifest-missing':
      return `tool ${tool} is withheld: this server's credential attested a tool manifest before and attests none now (pqmcp pins forget the server to trust it on first use again)`;
  }
}

/** The limits a refusal names. */
interface Limits {
  maxTools: number;
  maxToolBytes: number;
  maxEntryBytes: number;
}

/** The refusal of a call to a withheld tool. */
function refusal(tool: string, w: Withholding, limits: Limits, server: string): string {
  if (w.reason === 'too-many-tools') {
    return `tool ${tool} is withheld and not recorded: the pin store already records the most tools it keeps for this server (${limits.maxTools}: maxTools, pqmcp connect --max-tools); pqmcp pins forget the tools it no longer lists, or raise the limit`;
  }
  if (w.reason === 'tool-too-large') {
    return `tool ${tool} is withheld and not recorded: its definition takes more bytes than the pin store keeps for one tool (${limits.maxToolBytes}: maxToolBytes, pqmcp connect --max-tool-bytes)`;
  }
  if (w.reason === 'entry-too-large') {
    return `tool ${tool} is withheld and not recorded: the pin store already records the most bytes of tools it keeps for this server (${limits.maxEntryBytes}: maxEntryBytes, pqmcp connect --max-entry-bytes); pqmcp pins forget the tools it no longer lists, or raise the limit`;
  }
  if (w.reason === 'unhashable') return `tool ${tool} is withheld: its definition cannot be hashed`;
  if (w.reason === 'store-failed') return `tool ${tool} is withheld: the pin store could not be read or written when it was listed (list tools again)`;
  if (w.reason === 'changed' && w.notRecorded !== undefined) {
    const room =
      w.notRecorded === 'tool-too-large'
        ? `its record would take more bytes than the pin store keeps for one tool (${limits.maxToolBytes}: maxToolBytes, pqmcp connect --max-tool-bytes); raise the limit`
        : `the pin store already records the most bytes of tools it keeps for this server (${limits.maxEntryBytes}: maxEntryBytes, pqmcp connect --max-entry-bytes); pqmcp pins forget the tools it no longer lists, or raise the limit`;
    return `tool ${tool} is withheld: its definition changed since it was approved (${(w.changed ?? []).join(', ')}); the new definition was not recorded for approval: ${room}, and it is held for approval at the next listing (pqmcp pins approve)`;
  }
  return why(tool, w.reason, w.changed, w.from, w.issuer, server);
}

export function toolPinning(options: ToolPinningOptions): MessageHook {
  const newTools = options.newTools ?? 'pin';
  const requireListed = options.requireListed !== false;
  const maxTools = options.maxTools ?? DEFAULT_MAX_TOOLS;
  const maxToolBytes = options.maxToolBytes ?? DEFAULT_MAX_TOOL_BYTES;
  const maxEntryBytes = options.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
  for (const [name, value] of [['maxTools', maxTools], ['maxToolBytes', maxToolBytes], ['maxEntryBytes', maxEntryBytes]] as const) {
    if (!(Number.isSafeInteger(value) && value >= 1)) throw new InvalidArgumentError(`toolPinning: ${name} must be an integer >= 1; got ${String(value)}`);
  }
  const limits: Limits = { maxTools, maxToolBytes, maxEntryBytes };
  // The most withheld names a session keeps (why each is withheld, to refuse its calls): twice
  // what the store records per server. Past it the session refuses every name it has not let
  // through, requireListed or not (review 17, R17-5: a server listing new names at every
  // listing grew the verdict, and the client's heap, without end).
  const maxWithheld = 2 * maxTools;
  const manifests = new Map((options.manifests ?? []).map((m) => [manifestHash(m), new Map(m.tools.map((t) => [t.name, t.hash]))]));
  const sessions = new Map<string, Verdict>();
  /**
   * A withheld name: no longer allowed, and why, while the session's withheld map has room.
   * When it has none the session is full: every name it did not let through is refused
   * (fail closed: a name left out of the map must not become callable), reported once.
   */
  const withholdIn = (verdict: Verdict, name: string, w: Withholding): void => {
    verdict.allowed.delete(name);
    // Too long to keep: refused by its length alone (toPeer).
    if (name.length > MAX_KEPT_NAME_LENGTH) return;
    if (verdict.withheld.has(name) || verdict.withheld.size < maxWithheld) {
      verdict.withheld.set(name, w);
      return;
    }
    verdict.full ??= name; // reported by check(), once
  };
  const emit = (e: PinEvent): void => {
    try {
      options.onEvent?.(e);
    } catch {
      // A listener's failure is its own.
    }
  };

  type Peer = { agentId: string; fingerprint: string; issuer: string; attributes: Record<string, string> };

  /**
   * Check a listing against the server's entry as stored now, in one step of the store
   * (update: under the pin file's lock, so an approval or another bridge's write made
   * meanwhile is neither lost nor undone, review 9 P4). The step may run twice (without,
   * then with the lock): it sets the verdict of every listed tool and the events anew each
   * time. Events are reported after it, so a listener that uses the store does not run
   * inside that step.
   */
  function check(peer: Peer, tools: ToolLike[], verdict: Verdict): ToolLike[] {
    const key = serverKey(peer);
    const events: PinEvent[] = [];
    let out: ToolLike[] = [];
    const step = (stored: PinnedServer | undefined): PinnedServer | undefined => {
      events.length = 0; // the last run's
      const r = decide(peer, tools, verdict, stored, (e) => void events.push(e));
      out = r.out;
      return r.entry;
    };
    const store = options.store;
    if (store.update !== undefined) store.update(key, step);
    else {
      const next = step(store.get(key));
      if (next !== undefined) store.put(key, next);
    }
    for (const e of events) emit(e);
    if (verdict.full !== undefined && verdict.fullReported !== true) {
      verdict.fullReported = true;
      emit({ kind: 'withheld-limit', server: { agentId: peer.agentId, fingerprint: peer.fingerprint }, tool: verdict.full, limit: maxWithheld });
    }
    return out;
  }

  /** The verdict on a listing, and the entry to store if it changed. */
  function decide(peer: Peer, tools: ToolLike[], verdict: Verdict, stored: PinnedServer | undefined, note: (e: PinEvent) => void): { out: ToolLike[]; entry: PinnedServer | undefined } {
    const server = { agentId: peer.agentId, fingerprint: peer.fingerprint };
    const now = new Date().toISOString();
    const entry: PinnedServer = stored ?? { agentId: peer.agentId, ...(peer.issuer !== undefined ? { issuer: peer.issuer } : {}), keys: [], tools: {}, held: {} };
    let dirty = false;
    if (!Array.isArray(entry.keys)) entry.keys = []; // a PinStore of the caller's that predates keys
    // A key the version 1 file recorded (migrated keys carry no issuer; the keys this hook
    // records do), looked up before this session's key is recorded.
    const migratedKey = entry.keys.some((k) => k.fingerprint === peer.fingerprint && k.issuer === undefined);
    // A key not seen before for this identity: recorded, and the pins stay the identity's.
    if (!entry.keys.some((k) => k.fingerprint === peer.fingerprint)) {
      const previous = entry.keys[entry.keys.length - 1];
      recordKey(entry, { fingerprint: peer.fingerprint, ...(peer.issuer !== undefined ? { issuer: peer.issuer } : {}), firstSeen: now });
      dirty = true;
      if (previous) note({ kind: 'rotated', server, tool: '', previousKey: previous.fingerprint });
    }
    // An entry migrated from a version 1 file knew no issuer: it adopts the issuer of a session
    // presenting one of the keys that file recorded (review 9, P2). A session with another key
    // is not taken as the server: any issuer the trust store allows could vouch for the id
    // with a key of its own, so its tools are all held ('issuer-changed') until the user
    // accepts the issuer, or a session with a recorded key sets it.
    if (entry.issuer === undefined && peer.issuer !== undefined && migratedKey) {
      entry.issuer = peer.issuer;
      dirty = true;
    }
    const issuerChanged =
      entry.issuer !== undefined
        ? peer.issuer !== entry.issuer
          ? { now: peer.issuer, pinned: entry.issuer }
          : undefined
        : peer.issuer !== undefined
          ? { now: peer.issuer, pinned: UNKNOWN_ISSUER }
          : undefined;
    // Vouched for by its pinned issuer again: what another issuer's session left held as
    // 'issuer-changed' no longer describes this server, and accepting that issuer from it
    // (`pqmcp pins approve <id> --accept-issuer`) would hand the identity to it.
    if (issuerChanged === undefined && dropIssuerHolds(entry)) dirty = true;
    const claim = Object.hasOwn(peer.attributes, MANIFEST_CLAIM) ? peer.attributes[MANIFEST_CLAIM] : undefined;
    const manifest = claim === undefined ? undefined : manifests.get(claim);
    // A server once seen with a claim never falls back to trust on first use (whichever its key).
    const missing = claim === undefined && entry.manifest !== undefined;
    const listed = new Set(tools.map((t) => t.name));
    // Rename candidates: the pinned tools this listing no longer has, by the hash of their
    // definition without its name, computed once each (not once per new tool: that was
    // quadratic, a minute of CPU for a 230 KB listing of 3,000 new names after 3,000 pins).
    let gone: Map<string, string> | undefined;
    const renamedFrom = (tool: ToolLike): string | undefined => {
      if (gone === undefined) {
        gone = new Map();
        for (const [name, p] of Object.entries(entry.tools)) {
          if (listed.has(name)) continue;
          try {
            const key = toolHash({ ...p.definition, name: '' });
            if (!gone.has(key)) gone.set(key, name);
          } catch {
            // A stored definition that cannot be hashed is no rename candidate.
          }
        }
      }
      if (gone.size === 0) return undefined;
      const from = gone.get(toolHash({ ...tool, name: '' }));
      return from !== undefined && toolHash({ ...tool, name: from }) === toolEntry(entry.tools, from)?.hash ? from : undefined;
    };
    const out: ToolLike[] = [];
    // A claim made under an issuer the user has not accepted for this server changes nothing.
    if (claim !== undefined && entry.manifest !== claim && issuerChanged === undefined) {
      entry.manifest = claim;
      dirty = true;
    }
    // The names this entry records (pinned or held, each once), and whether one more fits (maxTools).
    // A name already recorded always does: a pinned tool held with another definition, a held
    // one listed again. An entry over the limit (a file written before it, or with a higher
    // one) keeps all it has, and records nothing new.
    const recorded = new Set([...Object.keys(entry.tools), ...Object.keys(entry.held)]);
    // The bytes of the entry's tool records (toolRecordBytes), counted when a record is first
    // to be written, then kept up to date.
    let bytes: number | undefined;
    const keep = (name: string, w: Withholding): void => withholdIn(verdict, name, w);
    // Past a limit: withheld as a held tool is (calls refused, reported), and not written.
    type Refused = { w: Withholding; reason: 'too-many-tools' | 'tool-too-large' | 'entry-too-large'; limit: number; bytes?: number };
    const refuse = (tool: ToolLike, r: Refused): void => {
      keep(tool.name, r.w);
      note({ kind: 'withheld', reason: r.reason, server, tool: tool.name, limit: r.limit, ...(r.bytes !== undefined ? { bytes: r.bytes } : {}) });
    };
    /**
     * Whether `next` may be written as the record of `name`, in place of `replaced` (its held
     * record, which a new held definition replaces and a pin drops), and if so counts it. A
     * name already recorded fits as far as maxTools goes, and a record that takes no more bytes
     * than it replaces always fits, and so does the same definition held again for another
     * reason while its record grows by at most SAME_DEFINITION_SLACK (the reason's own fields:
     * an issuer, the fields changed). Past that it meets the byte limits: its `from`, the name
     * of the pinned tool it copies, is the server's to choose, and grew held records past
     * maxEntryBytes without bound (review 19, R19-4: 139 MB against 16 MiB).
     */
    const admit = (name: string, next: PinnedTool | HeldTool, replaced: HeldTool | undefined): Refused | undefined => {
      const known = recorded.has(name);
      const same = replaced !== undefined && replaced.hash === next.hash;
      if (!same && !known && recorded.size >= maxTools) return { w: TOO_MANY, reason: 'too-many-tools', limit: maxTools };
      const size = toolRecordBytes(name, next);
      const freed = replaced === undefined ? 0 : toolRecordBytes(name, replaced);
      if (!same || size > freed + SAME_DEFINITION_SLACK) {
        if (size > maxToolBytes) return { w: TOOL_TOO_LARGE, reason: 'tool-too-large', limit: maxToolBytes, bytes: size };
        bytes ??= entryToolBytes(entry);
        if (size > freed && bytes - freed + size > maxEntryBytes) return { w: ENTRY_TOO_LARGE, reason: 'entry-too-large', limit: maxEntryBytes, bytes: size };
      }
      if (bytes !== undefined) bytes += size - freed;
      recorded.add(name);
      return undefined;
    };
    const withhold = (tool: ToolLike, hash: string, reason: HeldReason, extra: { changed?: string[]; from?: string } = {}): void => {
      const issuer = reason === 'issuer-changed' ? issuerChanged : undefined;
      const held = toolEntry(entry.held, tool.name);
      if (held?.hash !== hash || held.reason !== reason || held.issuer !== issuer?.now) {
        const next: HeldTool = { hash, definition: toolDefinition(tool) as Record<string, unknown>, seenAt: now, reason, ...extra, key: peer.fingerprint, ...(issuer ? { issuer: issuer.now } : {}) };
        const refused = admit(tool.name, next, held);
        if (refused !== undefined && reason === 'changed' && refused.reason !== 'too-many-tools') {
          // A pinned tool redefined, with no room to hold the redefinition: withheld and not
          // written as the limits require, but reported as what it is, a change to a pinned
          // tool (it was reported by the limit alone, which hid the redefinition).
          const notRecorded = refused.reason;
          keep(tool.name, { reason, ...extra, notRecorded });
          note({ kind: 'withheld', reason, server, tool: tool.name, ...extra, notRecorded, limit: refused.limit, ...(refused.bytes !== undefined ? { bytes: refused.bytes } : {}) });
          return;
        }
        if (refused !== undefined) return refuse(tool, refused);
        setToolEntry(entry.held, tool.name, next);
        dirty = true;
      }
      keep(tool.name, { reason, ...extra, ...(issuer ? { issuer } : {}) });
      note({ kind: 'withheld', reason, server, tool: tool.name, ...extra, ...(issuer ? { issuer } : {}) });
    };
    const pass = (tool: ToolLike): void => {
      verdict.allowed.add(tool.name);
      verdict.withheld.delete(tool.name);
      out.push(tool);
    };
    for (const tool of tools) {
      let hash: string;
      try {
        hash = toolHash(tool);
      } catch {
        keep(tool.name, UNHASHABLE);
        continue;
      }
      if (issuerChanged) {
        const pinned = toolEntry(entry.tools, tool.name);
        withhold(tool, hash, 'issuer-changed', pinned && pinned.hash !== hash ? { changed: changedFields(pinned.definition, toolDefinition(tool)) } : {});
        continue;
      }
      if (missing) {
        withhold(tool, hash, 'manifest-missing');
        continue;
      }
      if (claim !== undefined) {
        if (manifest === undefined) withhold(tool, hash, 'manifest-unknown');
        else if (manifest.get(tool.name) === hash) pass(tool);
        else withhold(tool, hash, 'outside-manifest');
        continue;
      }
      const pinned = toolEntry(entry.tools, tool.name);
      if (pinned) {
        if (pinned.hash === hash) pass(tool);
        else withhold(tool, hash, 'changed', { changed: changedFields(pinned.definition, toolDefinition(tool)) });
        continue;
      }
      // A rename: the definition of a pinned tool the server no longer lists, under a new name.
      const from = renamedFrom(tool);
      // A tool a version 1 file pinned only under a later key waits for approval (review 9, F5).
      if (newTools === 'hold' || entry.unapproved?.includes(tool.name) === true) {
        withhold(tool, hash, from !== undefined ? 'renamed' : 'new', from !== undefined ? { from } : {});
        continue;
      }
      const pin: PinnedTool = { hash, definition: toolDefinition(tool) as Record<string, unknown>, pinnedAt: now };
      const refused = admit(tool.name, pin, toolEntry(entry.held, tool.name));
      if (refused !== undefined) {
        refuse(tool, refused);
        continue;
      }
      setToolEntry(entry.tools, tool.name, pin);
      delete entry.held[tool.name];
      dirty = true;
      note(from !== undefined ? { kind: 'renamed', server, tool: tool.name, from } : { kind: 'pinned', server, tool: tool.name });
      pass(tool);
    }
    return { out, entry: dirty ? entry : undefined };
  }

  return {
    name: 'tool-pinning',
    opened: (session) => void sessions.set(session.sessionId, { allowed: new Set(), withheld: new Map() }),
    closed: (session) => void sessions.delete(session.sessionId),
    fromPeer(message, ctx) {
      if (message.result === undefined) return;
      // Any JSON value (`"result": null` threw here, R15-8).
      const raw = message.result;
      const result = (typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? raw : {}) as { tools?: unknown };
      if (ctx.request === undefined && message.id !== undefined && Array.isArray(result.tools)) {
        // A tool list that answers no request this pipeline knows (a forgotten or mangled id):
        // fail closed rather than let unchecked definitions through.
        return { replace: { jsonrpc: '2.0', id: message.id, error: { code: PIN_REFUSED, message: 'tool pinning: a tool list that answers no known tools/list request was withheld' } } };
      }
      if (ctx.request?.method !== 'tools/list') return;
      if (!Array.isArray(result.tools)) {
        // A malformed listing (no SDK takes it): an error now, rather than a client waiting for its timeout.
        return { replace: { jsonrpc: '2.0', id: message.id!, error: { code: PIN_REFUSED, message: 'tool pinning: the tools/list answer has no tools array; it was withheld' } } };
      }
      const verdict = sessions.get(ctx.sessionId)!;
      const tools = result.tools.filter((t): t is ToolLike => typeof t === 'object' && t !== null && typeof (t as ToolLike).name === 'string');
      try {
        return { replace: { ...message, result: { ...result, tools: check(ctx.peer, tools, verdict) } } };
      } catch {
        // Fail closed, with an answer: the client sees an error, not a list it cannot trust, and
        // its tools are withheld (a reason already kept stays), so requireListed false cannot
        // let a call to one of them through unchecked.
        for (const t of tools) if (!verdict.withheld.has(t.name)) withholdIn(verdict, t.name, STORE_FAILED);
        return { replace: { jsonrpc: '2.0', id: message.id!, error: { code: PIN_REFUSED, message: 'tool pinning failed: the pin store could not be read or written' } } };
      }
    },
    toPeer(message: JsonRpcMessage, ctx) {
      if (message.method !== 'tools/call' || message.id === undefined) return;
      const name = (message.params as { name?: unknown } | undefined)?.name;
      const verdict = sessions.get(ctx.sessionId)!;
      if (typeof name !== 'string') return { reply: errorResponse(message, JsonRpcErrorCode.invalidRequest, 'tools/call without a tool name') };
      if (verdict.allowed.has(name)) return;
      const withheld = verdict.withheld.get(name);
      if (withheld !== undefined) return { reply: errorResponse(message, PIN_REFUSED, refusal(name, withheld, limits, ctx.peer.agentId)) };
      if (name.length > MAX_KEPT_NAME_LENGTH) {
        return { reply: errorResponse(message, PIN_REFUSED, `tool ${name.slice(0, 64)}... is withheld: its name is longer than ${MAX_KEPT_NAME_LENGTH} characters and it was not let through`) };
      }
      if (verdict.full !== undefined) {
        return { reply: errorResponse(message, PIN_REFUSED, `tool ${name} is withheld: the server listed more withheld tools than this session keeps track of (${maxWithheld}: twice maxTools), so it refuses every tool it has not let through`) };
      }
      if (requireListed) return { reply: errorResponse(message, PIN_REFUSED, `tool ${name} has not been listed and checked in this session (list tools first)`) };
    },
  };
}
