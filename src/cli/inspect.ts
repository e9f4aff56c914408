/**
 * `pqmcp inspect <file>`: what any pqmcp file is and says, for people (or --json).
 *
 * Private key files show their kind, id and public fingerprint, never the seed; they are
 * still subject to the permission rule (a key others can read is refused here too, so the
 * problem shows up before a gateway refuses to start). Credentials show their validity
 * relative to now; `pqmcp credential verify` checks them against a trust file.
 */
import { flag, parse, positionals } from './args.js';
import type { Context } from './context.js';
import { credentialLines, credentialSummary } from './credential.js';
import { privateKeyFromFile, readPqmcpFile } from '../identity/files.js';
import { COMPOSITE_ALG, decodeCredentialFile, decodePublicKeyFile, decodeRevocationList, decodeTrustFile, describeFileKind } from '../identity/formats.js';
import { CliError, humanDuration, printResult, table } from './output.js';
import { describeTrust, trustLines } from './trust.js';

export const INSPECT_USAGE = `pqmcp inspect <file> [--json]

  Show what a private key, public key, credential, trust or revocation file contains.
  A private key's seed is never shown.

  --allow-loose-key-permissions   inspect a private key file that others can read`;

export async function inspectCommand(ctx: Context, argv: string[]): Promise<number> {
  const p = parse(argv, { 'allow-loose-key-permissions': { type: 'boolean' } }, 'inspect');
  if (flag(p, 'help')) return ctx.help(INSPECT_USAGE);
  const [path] = positionals(p, 'inspect', ['<file>']);
  const file = path!;
  const read = await readPqmcpFile(file);
  const { json, kind } = read;
  const backend = ctx.backend();
  switch (kind) {
    case 'private-key': {
      const key = privateKeyFromFile(read, { backend, allowLoosePermissions: flag(p, 'allow-loose-key-permissions') });
      const mode = (read.mode & 0o777).toString(8).padStart(4, '0');
      const value = { file, type: kind, kind: key.kind, id: key.id, alg: COMPOSITE_ALG, fingerprint: key.fingerprint, mode };
      printResult(ctx.output, ctx.json, value, () => [
        `${file}: ${key.kind} private key`,
        ...table(
          [
            ['id', key.id],
            ['algorithm', `${COMPOSITE_ALG} (ML-DSA-65 + Ed25519 composite)`],
            ['fingerprint', key.fingerprint],
            ['file mode', mode],
            ['seed', '(secret; never shown)'],
          ],
          '  ',
        ),
      ]);
      return 0;
    }
    case 'public-key': {
      const key = decodePublicKeyFile(backend, json, file);
      const value = { file, type: kind, kind: key.kind, id: key.id, alg: COMPOSITE_ALG, fingerprint: key.fingerprint, components: ['ML-DSA-65 (JWK kty AKP)', 'Ed25519 (JWK kty OKP)'] };
      printResult(ctx.output, ctx.json, value, () => [
        `${file}: ${key.kind} public key`,
        ...table(
          [
            ['id', key.id],
            ['algorithm', `${COMPOSITE_ALG}: JWK kty AKP alg ML-DSA-65 (1952 bytes) + JWK kty OKP crv Ed25519 (32 bytes)`],
            ['fingerprint', key.fingerprint],
          ],
          '  ',
        ),
      ]);
      return 0;
    }
    case 'credential': {
      const credential = decodeCredentialFile(json, file);
      const summary = credentialSummary(backend, credential);
      const nowMs = Date.now();
      const status =
        nowMs < credential.notBefore * 1000
          ? `not yet valid (starts in ${humanDuration(credential.notBefore * 1000 - nowMs)})`
          : nowMs > credential.notAfter * 1000
            ? `EXPIRED ${humanDuration(nowMs - credential.notAfter * 1000)} ago`
            : `within its validity window (${humanDuration(credential.notAfter * 1000 - nowMs)} left)`;
      const timeStatus = nowMs < credential.notBefore * 1000 ? 'not-yet-valid' : nowMs > credential.notAfter * 1000 ? 'expired' : 'current';
      printResult(ctx.output, ctx.json, { file, type: kind, ...summary, timeStatus, bytes: credential.encoded.length }, () => [
        `${file}: credential (PQCR v1, ${credential.encoded.length} bytes), ${status}`,
        ...credentialLines(summary),
        '  (signature not checked here: pqmcp credential verify <file> --trust <trust file>)',
      ]);
      return 0;
    }
    case 'trust': {
      const trust = decodeTrustFile(json, file).toJSON();
      printResult(ctx.output, ctx.json, { file, type: kind, ...describeTrust(backend, trust) }, () => [`${file}: trust file`, ...trustLines(backend, trust).map((l) => `  ${l}`)]);
      return 0;
    }
    case 'revocations': {
      const list = decodeRevocationList(json, file);
      printResult(ctx.output, ctx.json, { file, ...list }, () => [
        `${file}: revocation list`,
        `  revoked serials (${list.revokedSerials.length}):`,
        ...list.revokedSerials.map((s) => `    ${s.serial}  from ${s.issuer}  at ${s.revokedAt}${s.reason ? `  (${s.reason})` : ''}`),
        `  revoked keys (${list.revokedKeys.length}):`,
        ...list.revokedKeys.map((k) => `    ${k.fingerprint}${k.id ? `  ${k.id}` : ''}  at ${k.revokedAt}${k.reason ? `  (${k.reason})` : ''}`),
      ]);
      return 0;
    }
    default:
      throw new CliError('ERR_FILE_FORMAT', `${file}: ${describeFileKind(kind)} (no known "type" field)`);
  }
}
