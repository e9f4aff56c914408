/**
 * Key commands: create an issuer, create an agent identity, export a public key.
 *
 *   pqmcp issuer create --id issuer://acme [--out acme.key.json] [--public-out acme.pub.json] [--force]
 *   pqmcp agent create  --id agent://acme/planner [--out planner.key.json] [--public-out ...] [--force]
 *   pqmcp key public <key file> [--out <file>] [--force]
 *
 * A key is 64 random bytes (the composite seed) from the crypto backend's CSPRNG, written
 * mode 0600; its public half goes to a separate, shareable file. The seed is never printed.
 */
import type { CryptoBackend } from '../crypto/types.js';
import { generateIdentitySeed, identityFromSeed } from '../identity/identity.js';
import { fingerprintHex } from '../identity/fingerprint.js';
import { checkId, flag, parse, positionals, required, str } from './args.js';
import { loadPrivateKey } from '../identity/files.js';
import { encodePrivateKeyFile, encodePublicKeyFile } from '../identity/formats.js';
import type { KeyKind } from '../identity/formats.js';
import { PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, writeJson } from './files.js';
import { jsonText, printResult, table, UsageError } from './output.js';
import { subcommand } from './context.js';
import type { Context } from './context.js';

export const KEY_USAGE = {
  issuer: `pqmcp issuer create --id <issuer id> [--out <file>] [--public-out <file>] [--force]

  Create an issuer: the key that signs agent credentials. Writes the private key
  (<name>.key.json, mode 0600; keep it offline) and the public key (<name>.pub.json; give it
  to everyone who should trust this issuer: pqmcp trust add-issuer).

  --id <uri>          issuer id, e.g. issuer://acme (written into every credential it signs)
  --out <file>        private key file (default: <last part of the id>.key.json)
  --public-out <file> public key file (default: the key file with .pub.json)
  --force             replace existing files`,
  agent: `pqmcp agent create --id <agent id> [--out <file>] [--public-out <file>] [--force]

  Create an agent identity: a composite ML-DSA-65 + Ed25519 key pair. Writes the private key
  (<name>.key.json, mode 0600) and the public key (<name>.pub.json), which an issuer turns
  into a credential: pqmcp credential issue --issuer <issuer key> --agent <name>.pub.json

  --id <uri>          agent id, e.g. agent://acme/planner
  --out <file>        private key file (default: <last part of the id>.key.json)
  --public-out <file> public key file (default: the key file with .pub.json)
  --force             replace existing files`,
  key: `pqmcp key public <private key file> [--out <file>] [--force]

  Write (or print, without --out) the public key file of a private key file.`,
} as const;

/** `issuer://acme` -> `acme`, `agent://acme/planner` -> `planner`. */
export function baseNameForId(id: string): string {
  const afterScheme = id.replace(/^[a-z][a-z0-9+.-]*:(\/\/)?/i, '');
  const parts = afterScheme.split(/[/?#]/).filter((p) => p !== '');
  const last = (parts[parts.length - 1] ?? '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+/, '');
  return last === '' ? 'key' : last;
}

/** `x.key.json` -> `x.pub.json`; anything else gets `.pub.json` appended. */
export function publicPathFor(keyPath: string): string {
  return keyPath.endsWith('.key.json') ? `${keyPath.slice(0, -'.key.json'.length)}.pub.json` : `${keyPath}.pub.json`;
}

// checkId lives in args.ts (connect.ts needs it without this module's imports).
export { checkId };

function create(ctx: Context, kind: KeyKind, argv: string[]): number {
  const command = `${kind} create`;
  const p = parse(argv, { id: { type: 'string' }, out: { type: 'string' }, 'public-out': { type: 'string' }, force: { type: 'boolean' } }, command);
  if (flag(p, 'help')) return ctx.help(KEY_USAGE[kind]);
  positionals(p, command, []);
  const id = required(p, 'id', command);
  checkId(id, `--id`, kind === 'issuer' ? 'issuer://acme' : 'agent://acme/planner');
  const out = str(p, 'out') ?? `${baseNameForId(id)}.key.json`;
  const publicOut = str(p, 'public-out') ?? publicPathFor(out);
  if (publicOut === out) throw new UsageError(`${command}: --public-out must differ from --out`);
  const force = flag(p, 'force');

  const backend: CryptoBackend = ctx.backend();
  const seed = generateIdentitySeed(backend);
  const keyPair = identityFromSeed(backend, seed);
  const fingerprint = fingerprintHex(backend, keyPair.publicKey);
  try {
    writeJson(out, encodePrivateKeyFile({ kind, id, seed }), { mode: PRIVATE_FILE_MODE, force });
  } finally {
    seed.fill(0);
  }
  writeJson(publicOut, encodePublicKeyFile(backend, { kind, id, publicKey: keyPair.publicKey }), { mode: PUBLIC_FILE_MODE, force });

  printResult(ctx.output, ctx.json, { kind, id, fingerprint, privateKeyFile: out, publicKeyFile: publicOut }, () => [
    `created ${kind} ${id}`,
    ...table(
      [
        ['private key', `${out} (mode 0600; never share it${kind === 'issuer' ? ', keep it offline' : ''})`],
        ['public key', publicOut],
        ['fingerprint', fingerprint],
      ],
      '  ',
    ),
    kind === 'issuer'
      ? `next: pqmcp trust add-issuer <trust file> ${publicOut}   (on every side that should trust ${id})`
      : `next: have an issuer sign it: pqmcp credential issue --issuer <issuer key> --agent ${publicOut}`,
  ]);
  return 0;
}

async function exportPublic(ctx: Context, argv: string[]): Promise<number> {
  const p = parse(argv, { out: { type: 'string' }, force: { type: 'boolean' }, 'allow-loose-key-permissions': { type: 'boolean' } }, 'key public');
  if (flag(p, 'help')) return ctx.help(KEY_USAGE.key);
  const [path] = positionals(p, 'key public', ['<private key file>']);
  const backend = ctx.backend();
  const key = await loadPrivateKey(path!, { backend, allowLoosePermissions: flag(p, 'allow-loose-key-permissions') });
  const pub = encodePublicKeyFile(backend, { kind: key.kind, id: key.id, publicKey: key.keyPair.publicKey });
  const out = str(p, 'out');
  if (out === undefined) {
    ctx.output.out(jsonText(pub, 2));
    return 0;
  }
  writeJson(out, pub, { mode: PUBLIC_FILE_MODE, force: flag(p, 'force') });
  printResult(ctx.output, ctx.json, { kind: key.kind, id: key.id, fingerprint: key.fingerprint, publicKeyFile: out }, () => [`wrote ${out}: public key of ${key.kind} ${key.id} (fingerprint ${key.fingerprint})`]);
  return 0;
}

export function issuerCommand(ctx: Context, argv: string[]): number {
  return subcommand(ctx, argv, 'issuer', { create: (a) => create(ctx, 'issuer', a) }, KEY_USAGE.issuer);
}

export function agentCommand(ctx: Context, argv: string[]): number {
  return subcommand(ctx, argv, 'agent', { create: (a) => create(ctx, 'agent', a) }, KEY_USAGE.agent);
}

export function keyCommand(ctx: Context, argv: string[]): number | Promise<number> {
  return subcommand(ctx, argv, 'key', { public: (a) => exportPublic(ctx, a) }, KEY_USAGE.key);
}
