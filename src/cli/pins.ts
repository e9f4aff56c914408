/**
 * Tool pins and tool manifests on the command line.
 *
 *   pqmcp pins list --pins <file>                            servers, pinned and held tools
 *   pqmcp pins approve <server agent id> [tool[@hash]...] --pins <file>   held tools become pinned
 *   pqmcp pins forget <server agent id> [tool] --pins <file>       drop a server's pins (or one tool's)
 *   pqmcp manifest capture [--out <file>] -- <stdio MCP server command...>
 *                                   the server's tools as a manifest, for
 *                                   `pqmcp credential issue --tools-manifest`
 *
 * and, for `pqmcp connect`, the hook its --pins / --new-tools / --max-tools / --max-tool-bytes /
 * --max-entry-bytes / --manifest flags make.
 *
 * Sharp edges:
 * - approve pins what is held when it runs. `tool@<hash prefix>` (list shows it) pins the
 *   tool only if the definition held then still has that hash: a server that lists another
 *   definition between `list` and `approve` gets nothing approved (review F6). The bare
 *   name (and approving all) keeps that race: use it only when the server cannot change.
 * - approve/forget name a server by agent id: pins belong to the identity, whichever of its
 *   keys (a new key of the same server is checked against the same pins; list shows each
 *   key and when it was first seen). --fingerprint <prefix>, kept from version 1 files
 *   where a new key was a new server, only checks that the server was seen with that key;
 *   `forget <id> --fingerprint` without a tool is refused (it forgot one key's entry then,
 *   it would forget the whole server now: a script's cleanup after a rotation must not wipe
 *   the current pins and manifest claim).
 * - A tool held as 'issuer-changed' is never approved: `approve <id> --accept-issuer <the
 *   new issuer id>` (no tool) accepts the issuer and approves nothing; the next tools/list
 *   checks each tool against its pin, so a redefinition is held as 'changed' and approved
 *   on its own (review 9, P3 and F4). Approving all, or naming such a tool (with its hash
 *   or not), while tools are held as issuer-changed is a usage error (exit 2, nothing
 *   written) that gives the --accept-issuer command to type. A bare approve of ordinary
 *   holds (changed, new...) works as before.
 * - manifest capture runs the command without a shell, speaks MCP to it over stdio
 *   (initialize, tools/list with every page) and stops it; nothing else is called.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { FilePinStore, buildManifest, manifestHash, toolPinning } from '../pins/index.js';
import { serverKey, toolEntry } from '../pins/store.js';
import type { PinEvent, PinnedServer, ToolLike, ToolManifest } from '../pins/index.js';
import type { MessageHook } from '../transport/hook-api.js';
import { flag, parse, required, str } from './args.js';
import type { Parsed } from './args.js';
import { StdioChild } from './child.js';
import { pinFlags } from './connect.js';
import type { Context } from './context.js';
import { subcommand } from './context.js';
import { writeJson, PUBLIC_FILE_MODE } from './files.js';
import { readManifest } from './manifest-file.js';
import { CliError, UsageError, asUsage, jsonText, printResult } from './output.js';

export const PINS_USAGE = `pqmcp pins list|approve|forget --pins <file>

  list                                    servers, their pinned tools and the tools held
  approve <server id> [tool[@hash]...]    approve held tools (all of the server's, or these);
                                          tool@<hash prefix, 8+ hex> (from list) approves only
                                          the definition you reviewed
    --accept-issuer <issuer id>           (no tool) accept the issuer now vouching for the
                                          server (tools held as issuer-changed); approves
                                          nothing: its tools are checked against their pins
                                          at the next tools/list
  forget <server id> [tool]               forget a server's pins, or one tool's
  --pins <file>                           the pin file (pqmcp connect --pins writes it)
  --fingerprint <hex prefix>              only if the server was seen with this key (forget:
                                          with a tool only; pins are not per key)`;

export const MANIFEST_USAGE = `pqmcp manifest capture [--out <file>] -- <stdio MCP server command> [args...]

  Start the stdio MCP server, list its tools and write them as a tool manifest (canonical
  definitions and their hashes; format in docs/protocol.md). Give it to
  pqmcp credential issue --tools-manifest, and publish it to clients (pqmcp connect --manifest).

  --out <file>     write here (default: stdout)
  --force          replace an existing file`;

export const PIN_OPTIONS = { pins: { type: 'string' }, fingerprint: { type: 'string' }, 'accept-issuer': { type: 'string' } } as const;

function pickServer(store: FilePinStore, p: Parsed, id: string | undefined): string {
  if (id === undefined) throw new UsageError('give the server agent id (see pqmcp pins list)');
  const prefix = str(p, 'fingerprint')?.toLowerCase();
  const entry = Object.values(store.all()).find((e) => e.agentId === id);
  if (!entry || (prefix !== undefined && !entry.keys.some((k) => k.fingerprint.startsWith(prefix)))) {
    throw new CliError('ERR_BAD_INPUT', `no pins for ${id}${prefix ? ` seen with a key starting ${prefix}` : ''} in ${store.path}`, 1);
  }
  return serverKey(entry);
}

function describe(entry: PinnedServer): string[] {
  const lines = [`${entry.agentId}  issuer ${entry.issuer ?? '(not yet seen: file from an older pqmcp)'}`];
  entry.keys.forEach((k, i) => {
    const note = entry.keys.length > 1 ? (i === entry.keys.length - 1 ? '  (newest: the key changed)' : '  (earlier key)') : '';
    const issuer = k.issuer !== undefined && k.issuer !== entry.issuer ? `  under issuer ${k.issuer}` : '';
    lines.push(`  key     ${k.fingerprint.slice(0, 16)}...  first seen ${k.firstSeen}${issuer}${note}`);
  });
  for (const [name, t] of Object.entries(entry.tools)) lines.push(`  pinned  ${name}  ${t.hash.slice(0, 16)}...  since ${t.pinnedAt}`);
  for (const [name, h] of Object.entries(entry.held)) {
    const detail = h.changed ? ` (${h.changed.join(', ')} changed)` : h.from ? ` (was ${h.from})` : '';
    const issuer = h.reason === 'issuer-changed' ? ` (now vouched for by ${h.issuer})` : '';
    const key = h.key !== undefined ? `  key ${h.key.slice(0, 16)}...` : '';
    const migrated =
      h.migrated !== true
        ? ''
        : h.reason === 'changed'
          ? ' (pinned under a later key in a version 1 pin file: the earlier definition stays pinned until you approve this one)'
          : ' (pinned only under a later key in a version 1 pin file: held until you approve it)';
    lines.push(`  HELD    ${name}  ${h.reason}${issuer}${detail}${migrated}  seen ${h.seenAt}${key}  approve as ${name}@${h.hash.slice(0, 16)}`);
  }
  return lines;
}

export function pinsCommand(ctx: Context, argv: string[]): number {
  const open = (p: Parsed): FilePinStore => asUsage(() => new FilePinStore(required(p, 'pins', 'pins')));
  return subcommand(
    ctx,
    argv,
    'pins',
    {
      list: (args) => {
        const p = parse(args, PIN_OPTIONS, 'pins list');
        const all = open(p).all();
        printResult(ctx.output, ctx.json, all, () => (Object.keys(all).length ? Object.values(all).flatMap(describe) : ['no pins yet']));
        return 0;
      },
      approve: (args) => {
        const p = parse(args, PIN_OPTIONS, 'pins approve');
        const store = open(p);
        const [id, ...specs] = p.positionals;
        // Null prototype: a tool named "__proto__" is a key like another (its hash is checked).
        const expected: Record<string, string> = Object.create(null) as Record<string, string>;
        const tools = specs.map((spec) => {
          const at = spec.lastIndexOf('@');
          if (at < 0) return spec;
          const [name, hash] = [spec.slice(0, at), spec.slice(at + 1)];
          if (!/^[0-9a-f]{8,64}$/i.test(hash)) throw new UsageError(`pins approve: ${spec}: the hash after @ must be 8 to 64 hex digits (see pqmcp pins list)`);
          expected[name] = hash;
          return name;
        });
        const key = pickServer(store, p, id);
        const before = store.get(key)!;
        const file = required(p, 'pins', 'pins');
        // Accepting another issuer is explicit (review 9, P3) and approves no definition
        // (review 9, F4): --accept-issuer only sets the issuer and drops the issuer-changed
        // holds; the next tools/list checks each tool against its pin.
        const acceptIssuer = str(p, 'accept-issuer');
        const issuerHolds = Object.entries(before.held).filter(([name, h]) => h.reason === 'issuer-changed' && (acceptIssuer !== undefined || !tools.length || tools.includes(name)));
        const heldUnder = [...new Set(issuerHolds.map(([, h]) => h.issuer ?? '(unknown)'))];
        if (acceptIssuer !== undefined) {
          if (tools.length) {
            throw new UsageError(`pins approve --accept-issuer takes no tool: it accepts the issuer and approves nothing; the tools are checked against their pins at the next tools/list, then approve what is held on its own (pqmcp pins list)`);
          }
          if (!heldUnder.includes(acceptIssuer)) {
            throw new UsageError(`pins approve --accept-issuer ${acceptIssuer}: no tool of ${id} is held as vouched for by that issuer${heldUnder.length ? ` (held under: ${heldUnder.join(', ')})` : ' (nothing is held as issuer-changed)'}; see pqmcp pins list`);
          }
          store.acceptIssuer(key, acceptIssuer);
          printResult(ctx.output, ctx.json, { approved: [], notHeld: [], changed: [], acceptedIssuer: acceptIssuer }, () => [
            `${id} is now taken as vouched for by ${acceptIssuer}; nothing approved: its tools are checked against their pins at the next tools/list (one whose definition changed is then held as changed: review and approve it on its own)`,
          ]);
          return 0;
        }
        if (issuerHolds.length) {
          const others = Object.entries(before.held).filter(([, h]) => h.reason !== 'issuer-changed').map(([name, h]) => `${name}@${h.hash.slice(0, 16)}`);
          throw new UsageError(
            `pins approve: ${id} is now vouched for by issuer ${heldUnder.join(', ')}, not ${before.issuer ?? '(unknown)'} (${issuerHolds.map(([name]) => name).join(', ')} held as issuer-changed), and no tool is approved from another issuer: ` +
              `accept the issuer first: pqmcp pins approve ${id} --accept-issuer ${heldUnder[0]} --pins ${file} (it approves nothing: at the next tools/list each tool is checked against its pin, and one whose definition changed is held as changed, to approve on its own)` +
              (others.length && tools.length === 0 ? `; to approve only the other held tools: pqmcp pins approve ${id} ${others.join(' ')} --pins ${file}` : ''),
          );
        }
        const done = store.approve(key, tools.length ? tools : undefined, expected);
        const held = store.get(key)?.held ?? {};
        const changed = tools.filter((t) => !done.includes(t) && toolEntry(held, t) !== undefined);
        const missing = tools.filter((t) => !done.includes(t) && toolEntry(held, t) === undefined);
        printResult(ctx.output, ctx.json, { approved: done, notHeld: missing, changed }, () => [
          done.length ? `approved for ${id}: ${done.join(', ')}` : `nothing approved for ${id}`,
          // A mistyped name, or a tool withheld past the bridge's --max-tools, --max-tool-bytes
          // or --max-entry-bytes (never held: nothing to approve; a pinned tool's redefinition
          // withheld as changed with no room to hold it, likewise). Which one is not known here
          // (the limits are the bridge's), so the others are worded as possibilities (review 17, R17-8).
          ...(missing.length ? [`not held: ${missing.join(', ')} (no tool of that name is held for ${id}: check the name with pqmcp pins list; if a bridge withheld it as too-many-tools, it was not recorded: pqmcp pins forget tools the server no longer lists, or raise pqmcp connect --max-tools; as tool-too-large or entry-too-large, likewise: raise --max-tool-bytes or --max-entry-bytes; a pinned tool withheld as changed but not recorded is held at the next tools/list once there is room)`] : []),
          ...changed.map((t) => `NOT approved: ${t} is now held with hash ${toolEntry(held, t)!.hash.slice(0, 16)}..., not ${expected[t]} (the server listed another definition); review it with pqmcp pins list`),
        ]);
        return missing.length || changed.length ? 1 : 0;
      },
      forget: (args) => {
        const p = parse(args, PIN_OPTIONS, 'pins forget');
        const store = open(p);
        const [id, tool, extra] = p.positionals;
        if (extra !== undefined) throw new UsageError('pins forget: one server id and at most one tool');
        // With pins per key (version 1 files) this forgot one key's entry; now it would forget the
        // whole server, its current key's pins and manifest claim included (review 9): refused.
        if (tool === undefined && str(p, 'fingerprint') !== undefined) {
          throw new UsageError('pins forget --fingerprint: pins belong to the server (its agent id), not to one of its keys, so there is no key entry to forget; to forget the whole server, its pins and manifest claim, give no --fingerprint');
        }
        const removed = store.forget(pickServer(store, p, id), tool);
        printResult(ctx.output, ctx.json, { removed }, () => [removed ? `forgot ${tool ? `${tool} of ` : ''}${id}` : `${tool} is not pinned or held for ${id}`]);
        return removed ? 0 : 1;
      },
    },
    PINS_USAGE,
  ) as number;
}

// The flags of `pqmcp connect` for pinning (CONNECT_PIN_OPTIONS, MAX_TOOLS_RANGE, PIN_BYTES_RANGE, and pinFlags, which checks them) live in connect.ts, which must stay light.

/** WITHHELD lines `pqmcp connect` writes per tools/list answer; the rest are summed up in one line. */
export const WITHHELD_LINES = 20;
/** The longest tool name a log line shows whole. */
const LOGGED_NAME_LENGTH = 200;

/** The pinning hook `pqmcp connect --pins/--manifest` asks for, or none; events go to `log`. */
export function connectPinHooks(p: Parsed, log: (line: string) => void): MessageHook[] {
  const { path, newTools, maxTools, maxToolBytes, maxEntryBytes, manifests: manifestPaths } = pinFlags(p);
  if (path === undefined) return [];
  const manifests = manifestPaths.map(readManifest);
  const store = asUsage(() => new FilePinStore(path));
  // At most WITHHELD_LINES WITHHELD lines per listing (the events of one listing come in one
  // synchronous run), then one summary line by reason (review 17, R17-5: about 500 lines per
  // listing of a server listing new names).
  let shown = 0;
  let more: Record<string, number> | undefined;
  let agentId = '';
  const endListing = (): void => {
    const counts = more;
    shown = 0;
    more = undefined;
    if (counts === undefined) return;
    const n = Object.values(counts).reduce((a, b) => a + b, 0);
    log(`... and ${n} more tool${n === 1 ? '' : 's'} of ${agentId} withheld: ${Object.entries(counts).map(([reason, k]) => `${reason} ${k}`).join(', ')}; see pqmcp pins list --pins ${path}`);
  };
  const onEvent = (e: PinEvent): void => {
    if (e.kind !== 'withheld') {
      if (e.kind === 'pinned') log(`pinned tool ${nameText(e.tool)} of ${e.server.agentId}`);
      else if (e.kind === 'rotated') log(`${e.server.agentId} presents a new key ${e.server.fingerprint.slice(0, 16)}... (before: ${e.previousKey?.slice(0, 16)}...): recorded; its tools are checked against the pins it had`);
      else if (e.kind === 'renamed') log(`tool ${nameText(e.tool)} of ${e.server.agentId} has the definition of the pinned tool ${nameText(e.from)}: pinned as a rename`);
      else log(`WITHHELD: this session of ${e.server.agentId} keeps track of at most ${e.limit} withheld tools (twice --max-tools) and the server withheld more (${nameText(e.tool)} and after); it now refuses a call to every tool it has not let through`);
      return;
    }
    // A withheld tool.
    if (shown === 0) queueMicrotask(endListing); // after this listing's events
    if (shown >= WITHHELD_LINES) {
      more ??= {};
      agentId = e.server.agentId;
      const reason = e.reason ?? 'withheld';
      more[reason] = (more[reason] ?? 0) + 1;
      return;
    }
    shown++;
    if (e.reason === 'too-many-tools') {
      log(`WITHHELD tool ${nameText(e.tool)} of ${e.server.agentId}: too-many-tools (not recorded: ${path} already records the most tools of this server --max-tools allows, ${e.limit}; pqmcp pins forget the tools it no longer lists, or raise --max-tools)`);
    } else if (e.reason === 'tool-too-large') {
      log(`WITHHELD tool ${nameText(e.tool)} of ${e.server.agentId}: tool-too-large (not recorded: its definition would take ${e.bytes} bytes in ${path}, more than --max-tool-bytes allows, ${e.limit})`);
    } else if (e.reason === 'entry-too-large') {
      log(`WITHHELD tool ${nameText(e.tool)} of ${e.server.agentId}: entry-too-large (not recorded: its definition would take ${e.bytes} bytes in ${path}, past the most bytes of this server's tools --max-entry-bytes allows, ${e.limit}; pqmcp pins forget the tools it no longer lists, or raise --max-entry-bytes)`);
    } else if (e.reason === 'changed' && e.notRecorded !== undefined) {
      // A pinned tool redefined, not held for lack of room: the change first, then why it is not in the file.
      const room =
        e.notRecorded === 'tool-too-large'
          ? `more than --max-tool-bytes allows, ${e.limit}; raise it`
          : `past the most bytes of this server's tools --max-entry-bytes allows, ${e.limit}; pqmcp pins forget the tools it no longer lists, or raise --max-entry-bytes`;
      log(`WITHHELD tool ${nameText(e.tool)} of ${e.server.agentId}: changed (${(e.changed ?? []).join(', ')} changed; not recorded for approval, ${e.notRecorded}: the new definition would take ${e.bytes} bytes in ${path}, ${room}, and it is held for approval at the next tools/list)`);
    } else log(`WITHHELD tool ${nameText(e.tool)} of ${e.server.agentId}: ${e.reason}${e.changed ? ` (${e.changed.join(', ')} changed)` : ''}${e.from ? ` (was ${nameText(e.from)})` : ''}${e.issuer ? ` (issuer ${e.issuer.now}, pinned under ${e.issuer.pinned})` : ''}; see pqmcp pins list --pins ${path}`);
  };
  return [toolPinning({ store, manifests, ...(newTools !== undefined ? { newTools } : {}), ...(maxTools !== undefined ? { maxTools } : {}), ...(maxToolBytes !== undefined ? { maxToolBytes } : {}), ...(maxEntryBytes !== undefined ? { maxEntryBytes } : {}), onEvent })];
}

/** A tool name for a log line: the server chose it, and a name may be a message long (review 19). */
function nameText(name: string | undefined): string {
  const n = name ?? '';
  return n.length > LOGGED_NAME_LENGTH ? `${n.slice(0, LOGGED_NAME_LENGTH)}... (${n.length} characters)` : n;
}

/** initialize + tools/list (every page) over stdio, then stop the server. */
async function listStdioTools(command: string[]): Promise<ToolLike[]> {
  const child = new StdioChild({ command: command[0]!, args: command.slice(1) });
  const waiting = new Map<number, (m: JSONRPCMessage) => void>();
  child.onmessage = (m) => {
    const id = (m as { id?: unknown }).id;
    if (typeof id === 'number' && !('method' in m)) waiting.get(id)?.(m);
  };
  let nextId = 1;
  const call = (method: string, params: object): Promise<Record<string, unknown>> => {
    const id = nextId++;
    const answered = new Promise<Record<string, unknown>>((resolve, reject) => {
      waiting.set(id, (m) => {
        const r = m as { result?: Record<string, unknown>; error?: { message: string } };
        if (r.error) reject(new CliError('ERR_CHILD', `the server answered ${method} with an error: ${r.error.message}`, 1));
        else resolve(r.result ?? {});
      });
    });
    const exited = child.exited.then((exit) => {
      throw new CliError('ERR_CHILD', `the server exited before answering ${method} (code ${exit.code ?? exit.signal})`, 1);
    });
    void child.send({ jsonrpc: '2.0', id, method, params } as JSONRPCMessage);
    return Promise.race([answered, exited]);
  };
  try {
    await child.started();
    await call('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'pqmcp-manifest-capture', version: '1' } });
    await child.send({ jsonrpc: '2.0', method: 'notifications/initialized' } as JSONRPCMessage);
    const tools: ToolLike[] = [];
    let cursor: string | undefined;
    do {
      const page = await call('tools/list', cursor === undefined ? {} : { cursor });
      tools.push(...((page.tools as ToolLike[] | undefined) ?? []));
      cursor = typeof page.nextCursor === 'string' ? page.nextCursor : undefined;
    } while (cursor !== undefined);
    return tools;
  } finally {
    await child.stop();
  }
}

export async function manifestCommand(ctx: Context, argv: string[]): Promise<number> {
  const [verb, ...args] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') return ctx.help(MANIFEST_USAGE);
  if (verb !== 'capture') throw new UsageError(`unknown command "manifest ${verb}"; one of: manifest capture`);
  const p = parse(args, { out: { type: 'string' }, force: { type: 'boolean' } }, 'manifest capture');
  if (flag(p, 'help')) return ctx.help(MANIFEST_USAGE);
  if (!p.rest?.length || p.rest[0] === '') throw new UsageError('manifest capture: give the MCP server command after "--"');
  const tools = await listStdioTools(p.rest);
  let manifest: ToolManifest;
  try {
    manifest = buildManifest(tools);
  } catch (err) {
    throw new CliError('ERR_CHILD', `the server's tools do not make a manifest: ${(err as Error).message}`, 1, { cause: err });
  }
  const out = str(p, 'out');
  if (out === undefined) ctx.output.out(jsonText(manifest, 2));
  else {
    writeJson(out, manifest, { mode: PUBLIC_FILE_MODE, force: flag(p, 'force') });
    ctx.output.err(`${out}: ${manifest.tools.length} tools, manifest hash ${manifestHash(manifest)}`);
  }
  return 0;
}
