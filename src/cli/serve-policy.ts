/**
 * The gateway's authorization and quotas (`pqmcp serve --policy FILE --quotas FILE`): loads
 * them, hands them to listen() as its `policy` and `quotas` hooks, and reloads them on
 * SIGHUP (the policy also when its file changes).
 *
 * Sharp edges:
 * - Loaded only when a flag asks for it: without --policy the Cedar engine is never
 *   imported; without either flag this module's policy layer is not loaded at all.
 * - A policy or quotas file that is wrong at start stops the gateway (exit 2, each problem
 *   on its own line); on a reload the old one stays in force, the failure is logged, and
 *   no session is dropped.
 * - A quotas reload changes the limits and keeps the counters.
 */
import { readFileSync } from 'node:fs';
import { PolicyInvalidError } from '../errors.js';
import type { MessageHook } from '../transport/hook-api.js';
import { CliError } from './output.js';
import type { Output } from './output.js';
import type { Parsed } from './args.js';
import { str } from './args.js';

export const POLICY_SERVE_USAGE = `  --policy <file>          Cedar policy deciding every request (reloaded when the file changes and on SIGHUP)
  --quotas <file>          quotas per agent and issuer, JSON (reloaded on SIGHUP; see docs/cli.md)`;

export const POLICY_SERVE_OPTIONS = {
  policy: { type: 'string' },
  quotas: { type: 'string' },
} as const;

type Log = (event: string, fields: Record<string, unknown>, human: string) => void;

export interface Gates {
  /** For listen(): the hooks to install. */
  options: { policy?: MessageHook; quotas?: MessageHook };
  /** Fields for the 'listening' log line. */
  fields: Record<string, unknown>;
  /** Why a just-opened session is over a sessions quota (--quotas), as a refusal reason. */
  sessionRefusal(sessionId: string): string | undefined;
  /** SIGHUP: re-read both files (a bad one is logged and the old one kept). */
  reload(): void;
  /** Stop watching files. */
  close(): void;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new PolicyInvalidError(`${path}: the ${what} file cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** A refusal at start: each problem on stderr, then exit 2. */
function startFailure(output: Output, err: unknown): never {
  if (!(err instanceof PolicyInvalidError)) throw err;
  for (const p of err.problems) output.err(p);
  throw new CliError(err.code, err.message.split('\n')[0]!.replace(/:$/, ''), 2, { cause: err });
}

const problemsOf = (err: unknown): string => (err instanceof PolicyInvalidError && err.problems.length > 0 ? err.problems.join('; ') : err instanceof Error ? err.message : String(err));

export async function loadGates(p: Parsed, output: Output, log: Log): Promise<Gates> {
  const policyPath = str(p, 'policy');
  const quotasPath = str(p, 'quotas');
  const gates: Gates = { options: {}, fields: {}, sessionRefusal: () => undefined, reload: () => {}, close: () => {} };
  if (policyPath === undefined && quotasPath === undefined) return gates;
  const { createQuotas, loadPolicy, parseQuotaFile, quotaMessage } = await import('../policy/index.js');
  let policy: Awaited<ReturnType<typeof loadPolicy>> | undefined;
  let quotas: ReturnType<typeof createQuotas> | undefined;
  try {
    if (policyPath !== undefined) {
      policy = await loadPolicy({
        file: policyPath,
        onReload: (e) => {
          if (e.ok) log('policy-reloaded', { file: e.source, policies: e.policies }, `policy ${e.source} reloaded: ${e.policies} policies in force`);
          else log('policy-reload-failed', { file: e.source, error: problemsOf(e.error) }, `policy ${e.source} NOT reloaded, the previous one stays in force: ${problemsOf(e.error)}`);
        },
      });
      gates.options.policy = policy;
      gates.fields['policy'] = { file: policyPath, policies: policy.policies.length };
    }
    if (quotasPath !== undefined) {
      quotas = createQuotas(parseQuotaFile(readText(quotasPath, 'quotas'), quotasPath));
      gates.options.quotas = quotas;
      gates.fields['quotas'] = quotasPath;
      const q = quotas;
      gates.sessionRefusal = (sessionId) => {
        const note = q.sessionRefusal(sessionId);
        return note === undefined ? undefined : quotaMessage(note, 0).replace(/^pqmcp: /, '');
      };
    }
  } catch (err) {
    policy?.close();
    startFailure(output, err);
  }
  gates.reload = () => {
    if (policy !== undefined) {
      try {
        policy.reload();
      } catch {
        // Logged by onReload; the policy in force stays.
      }
    }
    if (quotas !== undefined) {
      try {
        quotas.reconfigure(parseQuotaFile(readText(quotasPath!, 'quotas'), quotasPath));
        log('quotas-reloaded', { file: quotasPath }, `quotas ${quotasPath!} reloaded`);
      } catch (err) {
        log('quotas-reload-failed', { file: quotasPath, error: problemsOf(err) }, `quotas ${quotasPath!} NOT reloaded, the previous ones stay in force: ${problemsOf(err)}`);
      }
    }
  };
  gates.close = () => policy?.close();
  return gates;
}

/** The 'listening' log line's suffix. */
export function describeGates(fields: Record<string, unknown>): string {
  const policy = fields['policy'] as { file: string; policies: number } | undefined;
  const quotas = fields['quotas'] as string | undefined;
  return `${policy ? `; policy ${policy.file} (${policy.policies} policies)` : ''}${quotas ? `; quotas ${quotas}` : ''}`;
}
