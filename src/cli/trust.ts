/**
 * Trust file commands. A trust file is TrustStore.toJSON(): the issuers this side believes,
 * pinned keys (self-signed peers, or "this agent id must use this key"), and revocations.
 *
 *   pqmcp trust init <trust file>
 *   pqmcp trust add-issuer <trust file> <issuer public key file> [--id <issuer id>] [--constrain <agent id prefix>]...
 *   pqmcp trust pin <trust file> (<public key|key|credential file> | --fingerprint <hex> --id <agent id>) [--id <agent id>]
 *   pqmcp trust list <trust file>
 *   pqmcp trust remove <trust file> (--issuer <id|fingerprint> | --pin <fingerprint>)
 *   pqmcp trust add-revocations <trust file> <revocation list>...
 *
 * Sharp edges:
 * - add-issuer and pin create the trust file when it does not exist; every update rewrites
 *   it atomically (temporary file + rename).
 * - A trust file is public but its integrity is everything: whoever can write it chooses
 *   whom this side believes. Keep it writable by its owner only.
 */
import { existsSync } from 'node:fs';
import type { CryptoBackend } from '../crypto/types.js';
import { fingerprintHex } from '../identity/fingerprint.js';
import { TrustStore } from '../identity/trust.js';
import type { TrustStoreJson } from '../identity/trust.js';
import { flag, list, parse, positionals, str } from './args.js';
import { normaliseNameConstraints } from '../identity/name-constraints.js';
import type { Context } from './context.js';
import { loadPublicKey, loadRevocations, loadTrustStore } from '../identity/files.js';
import { applyRevocations } from '../identity/formats.js';
import { PUBLIC_FILE_MODE, existingMode, writeJson } from './files.js';
import { subcommand } from './context.js';
import { checkId } from './keys.js';
import { CliError, UsageError, asUsage, printResult } from './output.js';
import { base64urlDecode, base64urlEncode } from '../identity/base64url.js';

export const TRUST_USAGE = `pqmcp trust <init|add-issuer|pin|list|remove|add-revocations> <trust file> ...

  init <trust file>                       create an empty trust file
  add-issuer <trust file> <issuer file>   trust an issuer (its .pub.json) to vouch for agents
      --id <issuer id>                    the issuer id (default: the one in the file)
      --constrain <id prefix>             the agent ids it may vouch for, repeatable:
                                          'agent://acme/' (or 'agent://acme/*') = any id
                                          below it; 'agent://acme/tools' = that id and
                                          ids below it. Replaces the issuer's constraints
      --unconstrained                     lift the issuer's constraints
  pin <trust file> <file>                 pin an agent key (its .pub.json, .cred.json or .key.json)
      --fingerprint <hex>                 pin by fingerprint instead of a file
      --id <agent id>                     the agent id the key is bound to (default: the file's id)
  list <trust file>                       show issuers, pins and revocations (--json for machines)
  remove <trust file>                     remove entries:
      --issuer <id or fingerprint>        every key of that issuer id, or one key
      --pin <fingerprint>                 a pinned key
  add-revocations <trust file> <list>...  copy revocation lists (pqmcp revoke) into the trust file

A trust file is public, but whoever can write it decides whom you trust: keep it mode 0644 or
stricter, owned by you.`;

async function loadOrCreate(path: string, create: boolean): Promise<{ trust: TrustStore; created: boolean }> {
  if (create && !existsSync(path)) return { trust: new TrustStore(), created: true };
  return { trust: await loadTrustStore(path), created: false };
}

function save(path: string, trust: TrustStore | TrustStoreJson, created: boolean): void {
  writeJson(path, trust, { mode: created ? PUBLIC_FILE_MODE : existingMode(path, PUBLIC_FILE_MODE), force: !created });
}

function checkFingerprint(hex: string, what: string): string {
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new UsageError(`${what} must be a key fingerprint (64 hex characters)`);
  return hex.toLowerCase();
}

function init(ctx: Context, argv: string[]): number {
  const p = parse(argv, { force: { type: 'boolean' } }, 'trust init');
  if (flag(p, 'help')) return ctx.help(TRUST_USAGE);
  const [path] = positionals(p, 'trust init', ['<trust file>']);
  writeJson(path!, new TrustStore(), { mode: PUBLIC_FILE_MODE, force: flag(p, 'force') });
  printResult(ctx.output, ctx.json, { file: path, created: true }, () => [`created empty trust file ${path!}`]);
  return 0;
}

async function addIssuer(ctx: Context, argv: string[]): Promise<number> {
  const command = 'trust add-issuer';
  const p = parse(argv, { id: { type: 'string' }, constrain: { type: 'string', multiple: true }, unconstrained: { type: 'boolean' }, 'allow-loose-key-permissions': { type: 'boolean' } }, command);
  if (flag(p, 'help')) return ctx.help(TRUST_USAGE);
  const [path, issuerPath] = positionals(p, command, ['<trust file>', '<issuer public key file>']);
  const backend = ctx.backend();
  const issuer = await loadPublicKey(issuerPath!, { backend, allowLoosePermissions: flag(p, 'allow-loose-key-permissions') });
  if (issuer.from === 'credential' || issuer.kind === 'agent') {
    throw new UsageError(`${issuerPath!}: is an agent's key, not an issuer's; to accept that one agent, use pqmcp trust pin`);
  }
  const id = str(p, 'id') ?? issuer.id;
  checkId(id, '--id', 'issuer://acme');
  // Name constraints (docs/protocol.md 6.4): given, they replace the issuer's; --unconstrained lifts them;
  // neither keeps what the trust file already says.
  const given = list(p, 'constrain');
  const unconstrained = flag(p, 'unconstrained');
  if (unconstrained && given.length > 0) throw new UsageError(`${command}: give --constrain or --unconstrained, not both`);
  const constraints = given.length > 0 ? asUsage(() => normaliseNameConstraints(given, '--constrain')) : undefined;
  const { trust, created } = await loadOrCreate(path!, true);
  const existing = trust.toJSON().issuers.find((i) => i.id === id && i.publicKey === base64urlEncode(issuer.publicKey));
  const kept = constraints ?? (unconstrained ? undefined : existing?.constraints);
  asUsage(() => trust.addIssuer({ id, publicKey: issuer.publicKey, ...(kept !== undefined ? { constraints: kept } : {}) }));
  save(path!, trust, created);
  printResult(ctx.output, ctx.json, { file: path, created, issuer: { id, fingerprint: issuer.fingerprint, ...(kept !== undefined ? { constraints: kept } : {}) } }, () => [
    `${created ? 'created' : 'updated'} ${path!}: trusts issuer ${id} (key ${issuer.fingerprint})${kept !== undefined ? ` for ${kept.join(', ')}` : ' for any agent id'}`,
  ]);
  return 0;
}

async function pin(ctx: Context, argv: string[]): Promise<number> {
  const command = 'trust pin';
  const p = parse(argv, { fingerprint: { type: 'string' }, id: { type: 'string' }, 'allow-loose-key-permissions': { type: 'boolean' } }, command);
  if (flag(p, 'help')) return ctx.help(TRUST_USAGE);
  const given = str(p, 'fingerprint');
  const [path, keyPath] = positionals(p, command, ['<trust file>', '<key or credential file>'], given !== undefined ? 1 : 0);
  if (given !== undefined && keyPath !== undefined) throw new UsageError(`${command}: give a file or --fingerprint, not both`);
  let fingerprint: string;
  let id: string | undefined = str(p, 'id');
  if (given !== undefined) {
    fingerprint = checkFingerprint(given, '--fingerprint');
    if (id === undefined) throw new UsageError(`${command}: --fingerprint needs --id <agent id> (a pin binds a key to one agent id)`);
  } else {
    const key = await loadPublicKey(keyPath!, { backend: ctx.backend(), allowLoosePermissions: flag(p, 'allow-loose-key-permissions') });
    fingerprint = key.fingerprint;
    id ??= key.id;
  }
  const agentId = id;
  checkId(agentId, '--id');
  const { trust, created } = await loadOrCreate(path!, true);
  asUsage(() => trust.addPin({ fingerprint, agentId }));
  save(path!, trust, created);
  printResult(ctx.output, ctx.json, { file: path, created, pin: { fingerprint, agentId } }, () => [
    `${created ? 'created' : 'updated'} ${path!}: pinned key ${fingerprint} for ${agentId}`,
  ]);
  return 0;
}

function issuerFingerprint(backend: CryptoBackend, publicKey: string): string {
  const bytes = base64urlDecode(publicKey);
  return bytes ? fingerprintHex(backend, bytes) : '?';
}

/** The trust store with issuer fingerprints, for list/inspect. */
export function describeTrust(backend: CryptoBackend, json: TrustStoreJson): Record<string, unknown> {
  return {
    issuers: json.issuers.map((i) => ({ id: i.id, fingerprint: issuerFingerprint(backend, i.publicKey), ...(i.constraints !== undefined ? { constraints: i.constraints } : {}) })),
    pinned: json.pinned,
    revokedSerials: json.revokedSerials,
    revokedKeys: json.revokedKeys,
  };
}

export function trustLines(backend: CryptoBackend, json: TrustStoreJson): string[] {
  const lines: string[] = [];
  lines.push(`trusted issuers (${json.issuers.length}):`);
  for (const i of json.issuers) lines.push(`  ${i.id}  key ${issuerFingerprint(backend, i.publicKey)}  ${i.constraints !== undefined ? `may vouch for ${i.constraints.join(', ')}` : 'any agent id'}`);
  lines.push(`pinned keys (${json.pinned.length}):`);
  for (const pinned of json.pinned) lines.push(`  ${pinned.fingerprint}  ${pinned.agentId}`);
  lines.push(`revoked serials (${json.revokedSerials.length}):`);
  for (const s of json.revokedSerials) lines.push(`  ${s.serial}  from ${s.issuer}`);
  lines.push(`revoked keys (${json.revokedKeys.length}):`);
  for (const k of json.revokedKeys) lines.push(`  ${k}`);
  return lines;
}

async function listCommand(ctx: Context, argv: string[]): Promise<number> {
  const p = parse(argv, {}, 'trust list');
  if (flag(p, 'help')) return ctx.help(TRUST_USAGE);
  const [path] = positionals(p, 'trust list', ['<trust file>']);
  const json = (await loadTrustStore(path!)).toJSON();
  const backend = ctx.backend();
  printResult(ctx.output, ctx.json, { file: path, ...describeTrust(backend, json) }, () => [`${path!}:`, ...trustLines(backend, json).map((l) => `  ${l}`)]);
  return 0;
}

async function remove(ctx: Context, argv: string[]): Promise<number> {
  const command = 'trust remove';
  const p = parse(argv, { issuer: { type: 'string' }, pin: { type: 'string' } }, command);
  if (flag(p, 'help')) return ctx.help(TRUST_USAGE);
  const [path] = positionals(p, command, ['<trust file>']);
  const issuer = str(p, 'issuer');
  const pinned = str(p, 'pin');
  if ((issuer === undefined) === (pinned === undefined)) throw new UsageError(`${command}: give --issuer or --pin`);
  const json = (await loadTrustStore(path!)).toJSON();
  const backend = ctx.backend();
  let removed: number;
  if (issuer !== undefined) {
    const before = json.issuers.length;
    json.issuers = json.issuers.filter((i) => i.id !== issuer && issuerFingerprint(backend, i.publicKey) !== issuer.toLowerCase());
    removed = before - json.issuers.length;
  } else {
    const fp = checkFingerprint(pinned!, '--pin');
    const before = json.pinned.length;
    json.pinned = json.pinned.filter((x) => x.fingerprint !== fp);
    removed = before - json.pinned.length;
  }
  if (removed === 0) throw new CliError('ERR_USAGE', `${path!}: no ${issuer !== undefined ? `issuer ${issuer}` : `pin ${pinned!}`} to remove`);
  save(path!, TrustStore.fromJSON(json), false);
  printResult(ctx.output, ctx.json, { file: path, removed }, () => [`updated ${path!}: removed ${removed} ${issuer !== undefined ? 'issuer key' : 'pin'}${removed === 1 ? '' : 's'}`]);
  return 0;
}

async function addRevocations(ctx: Context, argv: string[]): Promise<number> {
  const command = 'trust add-revocations';
  const p = parse(argv, {}, command);
  if (flag(p, 'help')) return ctx.help(TRUST_USAGE);
  if (p.positionals.length < 2) positionals(p, command, ['<trust file>', '<revocation list>']);
  const [path, ...lists] = p.positionals;
  const trust = await loadTrustStore(path!);
  const before = trust.toJSON();
  for (const l of lists) applyRevocations(trust, await loadRevocations(l), l);
  const after = trust.toJSON();
  save(path!, trust, false);
  const serials = after.revokedSerials.length - before.revokedSerials.length;
  const keys = after.revokedKeys.length - before.revokedKeys.length;
  printResult(ctx.output, ctx.json, { file: path, addedSerials: serials, addedKeys: keys }, () => [`updated ${path!}: ${serials} more revoked serial(s), ${keys} more revoked key(s)`]);
  return 0;
}

export function trustCommand(ctx: Context, argv: string[]): number | Promise<number> {
  return subcommand<number | Promise<number>>(
    ctx,
    argv,
    'trust',
    {
      init: (a) => init(ctx, a),
      'add-issuer': (a) => addIssuer(ctx, a),
      pin: (a) => pin(ctx, a),
      list: (a) => listCommand(ctx, a),
      remove: (a) => remove(ctx, a),
      'add-revocations': (a) => addRevocations(ctx, a),
    },
    TRUST_USAGE,
  );
}

