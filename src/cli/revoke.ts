/**
 * Revocation lists: which credential serials and keys are no longer to be believed.
 *
 *   pqmcp revoke <list file> --credential <credential file> [--reason <text>]
 *   pqmcp revoke <list file> --serial <hex> --issuer <issuer id> [--reason <text>]
 *   pqmcp revoke <list file> --key <fingerprint | public key, key or credential file> [--reason <text>]
 *
 * The list is created when missing. Sides load it with `--revocations <file>` (serve,
 * connect, credential verify), or copy it into their trust file with
 * `pqmcp trust add-revocations`. A revoked key is refused both as an agent key and as an
 * issuer key (everything that issuer vouched for).
 *
 * Sharp edges:
 * - Revocation applies to new handshakes. `pqmcp serve` re-reads its lists on SIGHUP and
 *   then also ends open sessions whose peer is now revoked.
 */
import { existsSync } from 'node:fs';
import { toHex } from '../bytes.js';
import { flag, parse, positionals, str } from './args.js';
import type { Context } from './context.js';
import { loadCredential, loadPublicKey, loadRevocations } from '../identity/files.js';
import { emptyRevocationList } from '../identity/formats.js';
import { PUBLIC_FILE_MODE, existingMode, writeJson } from './files.js';
import { checkId } from './keys.js';
import { UsageError, printResult } from './output.js';

export const REVOKE_USAGE = `pqmcp revoke <revocation list file> <what> [--reason <text>]

  Add an entry to a revocation list (created if missing). <what> is one of:
  --credential <file>            that credential (its issuer and serial)
  --serial <hex> --issuer <id>   a serial from an issuer
  --key <fingerprint|file>       a key: an agent's, or an issuer's (revokes all it vouched for)

  Load the list where credentials are checked: pqmcp serve/connect --revocations <file>, or
  copy it into a trust file: pqmcp trust add-revocations <trust file> <list>.`;

export async function revokeCommand(ctx: Context, argv: string[]): Promise<number> {
  const p = parse(
    argv,
    { credential: { type: 'string' }, serial: { type: 'string' }, issuer: { type: 'string' }, key: { type: 'string' }, reason: { type: 'string' }, 'allow-loose-key-permissions': { type: 'boolean' } },
    'revoke',
  );
  if (flag(p, 'help')) return ctx.help(REVOKE_USAGE);
  const [path] = positionals(p, 'revoke', ['<revocation list file>']);
  const credentialPath = str(p, 'credential');
  const serialText = str(p, 'serial');
  const keyText = str(p, 'key');
  const chosen = [credentialPath, serialText, keyText].filter((x) => x !== undefined).length;
  if (chosen !== 1) throw new UsageError('revoke: give exactly one of --credential, --serial (with --issuer) or --key');
  const reason = str(p, 'reason');
  const revokedAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const list = existsSync(path!) ? await loadRevocations(path!) : emptyRevocationList();
  const created = !existsSync(path!);

  let description: string;
  let added = false;
  if (keyText !== undefined) {
    let fingerprint: string;
    let id: string | undefined;
    if (/^[0-9a-f]{64}$/i.test(keyText)) {
      fingerprint = keyText.toLowerCase();
    } else {
      const key = await loadPublicKey(keyText, { backend: ctx.backend(), allowLoosePermissions: flag(p, 'allow-loose-key-permissions') });
      fingerprint = key.fingerprint;
      id = key.id;
    }
    description = `key ${fingerprint}${id !== undefined ? ` (${id})` : ''}`;
    if (!list.revokedKeys.some((k) => k.fingerprint === fingerprint)) {
      list.revokedKeys.push({ fingerprint, ...(id !== undefined ? { id } : {}), revokedAt, ...(reason !== undefined ? { reason } : {}) });
      added = true;
    }
  } else {
    let issuer: string;
    let serial: string;
    if (credentialPath !== undefined) {
      if (str(p, 'issuer') !== undefined) throw new UsageError('revoke: --issuer goes with --serial, not --credential');
      const credential = await loadCredential(credentialPath);
      issuer = credential.issuerId;
      serial = toHex(credential.serial);
      description = `credential ${serial} of ${credential.agentId} from ${issuer}`;
    } else {
      const issuerId = str(p, 'issuer');
      if (issuerId === undefined) throw new UsageError('revoke: --serial needs --issuer <issuer id>');
      checkId(issuerId, '--issuer', 'issuer://acme');
      if (!/^(?:[0-9a-f]{2}){1,32}$/i.test(serialText!)) throw new UsageError('--serial must be 1..32 bytes of hex');
      issuer = issuerId;
      serial = serialText!.toLowerCase();
      description = `serial ${serial} from ${issuer}`;
    }
    if (!list.revokedSerials.some((s) => s.issuer === issuer && s.serial === serial)) {
      list.revokedSerials.push({ issuer, serial, revokedAt, ...(reason !== undefined ? { reason } : {}) });
      added = true;
    }
  }
  if (added) writeJson(path!, list, { mode: created ? PUBLIC_FILE_MODE : existingMode(path!, PUBLIC_FILE_MODE), force: !created });
  printResult(ctx.output, ctx.json, { file: path, added, created }, () => [
    added ? `${created ? 'created' : 'updated'} ${path!}: revoked ${description}` : `${path!}: ${description} was already revoked`,
  ]);
  return 0;
}
