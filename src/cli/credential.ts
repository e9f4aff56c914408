/**
 * Credential commands: an issuer signs an agent's public key with claims and a validity
 * window; anyone verifies a credential against a trust file.
 *
 *   pqmcp credential issue --issuer <issuer key> --agent <agent pub|key|cred file> [claims] [--out <file>]
 *   pqmcp credential issue --self-signed --agent <agent key> [claims]
 *   pqmcp credential verify <credential file> --trust <trust file> [--revocations <file>]... [--expect <id>] [--at <time>]
 *
 * Sharp edges:
 * - `--agent` may be a credential file: that re-issues (renews) it for the same id and key,
 *   with the claims given now (nothing is copied from the old credential but id and key).
 * - --usage defaults to client (least authority): a server's credential needs --usage server
 *   (or both); `pqmcp serve` refuses a credential whose usage does not permit serving.
 * - verify exits 1 when the credential is not acceptable (expired, revoked, untrusted...),
 *   2 when the input files are bad: scripts can tell "no" from "could not check".
 */
import { toHex } from '../bytes.js';
import { DEFAULT_CREDENTIAL_USAGE, DEFAULT_VALIDITY_SECONDS, MAX_SERIAL_LENGTH, issueCredential, selfSignedCredential } from '../identity/credential.js';
import type { Credential, CredentialUsage } from '../identity/credential.js';
import { fingerprintHex } from '../identity/fingerprint.js';
import { MAX_CLOCK_SKEW_SECONDS } from '../identity/trust.js';
import type { CryptoBackend } from '../crypto/types.js';
import { PqmcpError } from '../errors.js';
import { flag, integerFlag, list, parse, parseDuration, parseKeyValue, parseTime, positionals, required, str } from './args.js';
import type { Parsed } from './args.js';
import { MANIFEST_CLAIM, manifestHash } from '../pins/manifest.js';
import { readManifest } from './manifest-file.js';
import type { Context } from './context.js';
import { loadCredential, loadPrivateKey, loadPublicKey, loadTrustStore } from '../identity/files.js';
import { encodeCredentialFile } from '../identity/formats.js';
import { PUBLIC_FILE_MODE, writeJson } from './files.js';
import { subcommand } from './context.js';
import { baseNameForId, checkId } from './keys.js';
import { CliError, UsageError, asUsage, humanDuration, isoTime, jsonText, printResult, table } from './output.js';

export const CREDENTIAL_USAGE = `pqmcp credential <issue|verify> ...

pqmcp credential issue --issuer <issuer key file> --agent <agent file> [options]
pqmcp credential issue --self-signed --agent <agent key file> [options]

  Sign an agent's public key with claims and a validity period. --agent is the agent's
  public key file (or its private key file, or an existing credential to renew).

  --issuer <file>       the issuer's private key file (pqmcp issuer create)
  --agent <file>        public key / private key / credential file of the agent
  --self-signed         sign with the agent's own key (peers must pin it: pqmcp trust pin)
  --id <uri>            agent id to vouch for (default: the id in the agent file)
  --usage <role>        client, server or both: the role(s) the agent may play
                        (default client; a server needs --usage server or both)
  --name <text>         display name
  --scope <scope>       a claim, repeatable (e.g. --scope tools:call --scope resources:read)
  --attr <key=value>    an attribute, repeatable (e.g. --attr owner=team-a)
  --tools-manifest <f>  attest this tool manifest (pqmcp manifest capture): clients that
                        hold it accept only its tools from this server
  --valid-for <dur>     validity, e.g. 12h, 30d, 1y (default 30d)
  --not-before <time>   start (2026-01-31T12:00:00Z or another offset, a date: midnight
                        UTC, "now" or Unix seconds; default now)
  --not-after <time>    end (instead of --valid-for)
  --serial <hex>        serial, 1..32 bytes (default 16 random bytes)
  --out <file>          credential file (default: <agent name>.cred.json beside the agent file)
  --force               replace an existing file

pqmcp credential verify <credential file> --trust <trust file> [options]

  Check a credential as a peer would: issuer trusted, signature, validity window,
  revocation, pins. Exit 0 if acceptable, 1 if not, 2 if the inputs are bad.

  --trust <file>        trust file
  --revocations <file>  revocation list, repeatable
  --expect <id>         also require this agent id
  --as <role>           also require that the credential may act as client or server
  --at <time>           check at this time instead of now (as --not-before)
  --clock-skew <secs>   allowed clock skew, whole seconds up to 3600 (default 60)`;

function defaultOut(agentPath: string, agentId: string): string {
  const m = /^(.*)\.(pub|key|cred)\.json$/.exec(agentPath);
  return m ? `${m[1]}.cred.json` : `${baseNameForId(agentId)}.cred.json`;
}

function parseSerial(text: string): Uint8Array {
  if (!/^(?:[0-9a-f]{2})+$/i.test(text) || text.length > MAX_SERIAL_LENGTH * 2) throw new UsageError(`--serial must be 1..${MAX_SERIAL_LENGTH} bytes of hex`);
  return Uint8Array.from(text.match(/../g)!.map((h) => parseInt(h, 16)));
}

/** --usage: the least authority ('client') by default, so a server credential is always a deliberate choice. */
function usageOf(p: Parsed): CredentialUsage {
  const usage = str(p, 'usage') ?? DEFAULT_CREDENTIAL_USAGE;
  if (usage !== 'client' && usage !== 'server' && usage !== 'both') throw new UsageError('--usage must be client, server or both');
  return usage;
}

function claims(p: Parsed): { usage: CredentialUsage; displayName?: string; scopes: string[]; attributes: Record<string, string>; notBefore?: number; notAfter?: number; validForSeconds?: number; serial?: Uint8Array } {
  const attributes: Record<string, string> = {};
  for (const a of list(p, 'attr')) {
    const [k, v] = parseKeyValue(a, '--attr');
    if (Object.hasOwn(attributes, k)) throw new UsageError(`--attr ${k} given twice`);
    Object.defineProperty(attributes, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  const manifestPath = str(p, 'tools-manifest');
  if (manifestPath !== undefined) {
    if (Object.hasOwn(attributes, MANIFEST_CLAIM)) throw new UsageError(`give --tools-manifest or --attr ${MANIFEST_CLAIM}, not both`);
    attributes[MANIFEST_CLAIM] = manifestHash(readManifest(manifestPath));
  }
  const validFor = str(p, 'valid-for');
  const notAfter = str(p, 'not-after');
  if (validFor !== undefined && notAfter !== undefined) throw new UsageError('give --valid-for or --not-after, not both');
  const notBefore = str(p, 'not-before');
  const name = str(p, 'name');
  const serial = str(p, 'serial');
  const scopes = list(p, 'scope');
  if (new Set(scopes).size !== scopes.length) throw new UsageError('a --scope is given twice');
  return {
    usage: usageOf(p),
    ...(name !== undefined ? { displayName: name } : {}),
    scopes,
    attributes,
    ...(notBefore !== undefined ? { notBefore: parseTime(notBefore, '--not-before') } : {}),
    ...(notAfter !== undefined ? { notAfter: parseTime(notAfter, '--not-after') } : { validForSeconds: validFor !== undefined ? parseDuration(validFor, '--valid-for') : DEFAULT_VALIDITY_SECONDS }),
    ...(serial !== undefined ? { serial: parseSerial(serial) } : {}),
  };
}

export interface CredentialSummary {
  agentId: string;
  displayName: string;
  keyFingerprint: string;
  usage: CredentialUsage;
  scopes: string[];
  attributes: Record<string, string>;
  notBefore: string;
  notAfter: string;
  serial: string;
  issuer: string;
  issuerFingerprint: string;
  selfSigned: boolean;
}

/** A credential's fields for people and for --json (times as ISO 8601, bytes as hex). */
export function credentialSummary(backend: CryptoBackend, c: Credential): CredentialSummary {
  const keyFingerprint = fingerprintHex(backend, c.publicKey);
  return {
    agentId: c.agentId,
    displayName: c.displayName,
    keyFingerprint,
    usage: c.usage,
    scopes: c.scopes,
    attributes: c.attributes,
    notBefore: isoTime(c.notBefore),
    notAfter: isoTime(c.notAfter),
    serial: toHex(c.serial),
    issuer: c.issuerId,
    issuerFingerprint: toHex(c.issuerFingerprint),
    selfSigned: c.issuerId === c.agentId && toHex(c.issuerFingerprint) === keyFingerprint,
  };
}

export function credentialLines(s: CredentialSummary, indent = '  '): string[] {
  const attrs = Object.entries(s.attributes);
  return table(
    [
      ['agent', s.agentId],
      ['name', s.displayName || undefined],
      ['key', s.keyFingerprint],
      ['usage', s.usage],
      ['scopes', s.scopes.length ? s.scopes.join(', ') : '(none)'],
      ['attributes', attrs.length ? attrs.map(([k, v]) => `${k}=${v}`).join(', ') : undefined],
      ['valid', `${s.notBefore} to ${s.notAfter}`],
      ['serial', s.serial],
      ['issuer', `${s.issuer}${s.selfSigned ? ' (self-signed)' : ''}`],
      ['issuer key', s.issuerFingerprint],
    ],
    indent,
  );
}

const ISSUE_OPTIONS = {
  issuer: { type: 'string' },
  agent: { type: 'string' },
  'self-signed': { type: 'boolean' },
  id: { type: 'string' },
  usage: { type: 'string' },
  name: { type: 'string' },
  scope: { type: 'string', multiple: true },
  attr: { type: 'string', multiple: true },
  'tools-manifest': { type: 'string' },
  'valid-for': { type: 'string' },
  'not-before': { type: 'string' },
  'not-after': { type: 'string' },
  serial: { type: 'string' },
  out: { type: 'string' },
  force: { type: 'boolean' },
  'allow-loose-key-permissions': { type: 'boolean' },
} as const;

async function issue(ctx: Context, argv: string[]): Promise<number> {
  const command = 'credential issue';
  const p = parse(argv, ISSUE_OPTIONS, command);
  if (flag(p, 'help')) return ctx.help(CREDENTIAL_USAGE);
  positionals(p, command, []);
  const selfSigned = flag(p, 'self-signed');
  if (selfSigned && str(p, 'issuer') !== undefined) throw new UsageError(`${command}: give --issuer or --self-signed, not both`);
  const agentPath = required(p, 'agent', command);
  const issuerPath = selfSigned ? undefined : required(p, 'issuer', command);
  const subjectClaims = claims(p);
  const backend = ctx.backend();
  const loose = { backend, allowLoosePermissions: flag(p, 'allow-loose-key-permissions') };

  let credential: Credential;
  if (selfSigned) {
    const key = await loadPrivateKey(agentPath, loose);
    const agentId = str(p, 'id') ?? key.id;
    checkId(agentId, '--id');
    credential = asUsage(() => selfSignedCredential(backend, { agentId, keyPair: key.keyPair, ...subjectClaims }));
  } else {
    const issuer = await loadPrivateKey(issuerPath!, loose);
    if (issuer.kind !== 'issuer') {
      throw new UsageError(`${issuerPath!}: is an agent key, not an issuer key (create one with pqmcp issuer create, or use --self-signed)`);
    }
    const agent = await loadPublicKey(agentPath, loose);
    if (agent.kind === 'issuer') throw new UsageError(`${agentPath}: is an issuer key; --agent takes an agent's key or credential`);
    const agentId = str(p, 'id') ?? agent.id;
    checkId(agentId, '--id');
    credential = asUsage(() => issueCredential(backend, { id: issuer.id, keyPair: issuer.keyPair }, { agentId, publicKey: agent.publicKey, ...subjectClaims }));
  }

  const out = str(p, 'out') ?? defaultOut(agentPath, credential.agentId);
  writeJson(out, encodeCredentialFile(credential.encoded), { mode: PUBLIC_FILE_MODE, force: flag(p, 'force') });
  const summary = credentialSummary(backend, credential);
  printResult(ctx.output, ctx.json, { file: out, ...summary }, () => [
    `issued credential for ${credential.agentId}: ${out}`,
    ...credentialLines(summary),
    `  (${humanDuration((credential.notAfter - credential.notBefore) * 1000)}; revoke with: pqmcp revoke <list> --credential ${out})`,
  ]);
  // A window that ended already (a --not-before in the past with a short --valid-for, a
  // --not-after typo) makes a credential every peer refuses: issued as asked, but said aloud.
  if (credential.notAfter * 1000 < Date.now()) {
    ctx.output.err(`pqmcp credential issue: warning: ${out} expired at ${new Date(credential.notAfter * 1000).toISOString()}, before it was issued: every peer will refuse it (ERR_CREDENTIAL_EXPIRED)`);
  }
  return 0;
}

async function verify(ctx: Context, argv: string[]): Promise<number> {
  const command = 'credential verify';
  const p = parse(argv, { trust: { type: 'string' }, revocations: { type: 'string', multiple: true }, expect: { type: 'string' }, as: { type: 'string' }, at: { type: 'string' }, 'clock-skew': { type: 'string' } }, command);
  if (flag(p, 'help')) return ctx.help(CREDENTIAL_USAGE);
  const [path] = positionals(p, command, ['<credential file>']);
  const trustPath = required(p, 'trust', command);
  const at = str(p, 'at');
  const nowMs = at !== undefined ? parseTime(at, '--at') * 1000 : Date.now();
  const skew = integerFlag(p, 'clock-skew', { min: 0, max: MAX_CLOCK_SKEW_SECONDS, unit: 'seconds' });
  const expect = str(p, 'expect');
  const role = str(p, 'as');
  if (role !== undefined && role !== 'client' && role !== 'server') throw new UsageError('--as must be client or server');
  const credential = await loadCredential(path!);
  const trust = await loadTrustStore(trustPath, { revocations: list(p, 'revocations') });
  const backend = ctx.backend();
  try {
    const peer = trust.verifyCredential(backend, credential, { now: () => nowMs, ...(skew !== undefined ? { clockSkewSeconds: skew } : {}), ...(expect !== undefined ? { expectedPeerId: expect } : {}), ...(role !== undefined ? { peerRole: role } : {}) });
    const summary = credentialSummary(backend, peer.credential);
    printResult(ctx.output, ctx.json, { valid: true, file: path, ...summary }, () => [
      `valid: ${peer.agentId} is vouched for by ${peer.issuer}${peer.selfSigned ? ' (self-signed, pinned)' : ''}; ${humanDuration(peer.notAfter * 1000 - nowMs)} left`,
      ...credentialLines(summary),
    ]);
    return 0;
  } catch (err) {
    if (!(err instanceof PqmcpError)) throw err;
    if (ctx.json) ctx.output.out(jsonText({ valid: false, file: path, code: err.code, message: err.message }, 2));
    throw new CliError(err.code, `${path!}: not acceptable: ${err.message}`, 1, { cause: err });
  }
}

export function credentialCommand(ctx: Context, argv: string[]): number | Promise<number> {
  return subcommand(ctx, argv, 'credential', { issue: (a) => issue(ctx, a), verify: (a) => verify(ctx, a) }, CREDENTIAL_USAGE);
}
