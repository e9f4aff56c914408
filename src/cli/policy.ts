/**
 * `pqmcp policy`: check and explain Cedar policies for the gateway's --policy.
 *
 *   pqmcp policy check <policy file>
 *   pqmcp policy explain <policy file> --agent <credential file> --method <method> [--tool|--resource|--prompt <name>]
 *   pqmcp policy schema
 *
 * Sharp edges:
 * - Loaded on demand by run.ts, and the Cedar engine only when a policy is read: `pqmcp
 *   --help` and the other commands never load the WASM module.
 * - explain decides from the credential's claims as written (the same facts a session
 *   would give the policy). With --trust the credential is verified first, as a gateway
 *   would; without it an unverifiable credential is explained all the same.
 * - check and explain exit 2 for a policy that does not parse or validate (each problem on
 *   its own line on stderr); explain exits 0 when the request is allowed, 1 when denied.
 */
import { readFileSync } from 'node:fs';
import { equalBytes, toHex } from '../bytes.js';
import { PolicyInvalidError } from '../errors.js';
import type { PqmcpError } from '../errors.js';
import type { Credential } from '../identity/credential.js';
import { keyFingerprint } from '../identity/fingerprint.js';
import { loadCredential, loadTrustStore } from '../identity/files.js';
import type { VerifiedPeer } from '../identity/trust.js';
import { checkPolicy, loadPolicy } from '../policy/policy.js';
import { LIST_FILTERS, POLICY_SCHEMA, UNDECIDED_METHODS } from '../policy/schema.js';
import { flag, integerFlag, list, parse, parseTime, positionals, required, str } from './args.js';
import type { Parsed } from './args.js';
import { subcommand } from './context.js';
import type { Context } from './context.js';
import { CliError, UsageError, jsonText, printResult } from './output.js';

export const POLICY_USAGE = `pqmcp policy <check|explain|schema> ...

pqmcp policy check <policy file>
  Parse the Cedar policies and validate them against pqmcp's schema, as the gateway does
  at start and on every reload. Exit 0 when sound, 2 with each problem otherwise.

pqmcp policy explain <policy file> --agent <credential file> --method <method> [target]
  Decide one request as the gateway would, and say which policy allowed or denied it.
  --agent <file>        the agent's credential (its claims are the principal)
  --method <method>     tools/call, resources/read, prompts/get, sampling/createMessage, ...
  --tool <name>         target of tools/call
  --resource <uri>      target of resources/read, resources/subscribe, completion/complete
  --prompt <name>       target of prompts/get, completion/complete
  --trust <file>        verify the credential against this trust file first
  --revocations <file>  with --trust: revocation list, repeatable
  --at <time>           decide at this time (context.time; ISO 8601 with Z or an offset,
                        a date: midnight UTC, "now" or Unix seconds)
  --bytes <n>           context.requestBytes (default 0)
  tools/call, resources/read|subscribe, prompts/get and completion/complete need their
  target; initialize, ping and the lists are passed without a decision (lists filtered).
  Exit 0 allowed, 1 denied.

pqmcp policy schema
  Print the Cedar schema policies are validated against.`;

function readPolicy(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError('ERR_FILE_READ', `${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 2, { cause: err });
  }
}

/** Print each problem of a refused policy on its own line, then fail with exit code 2. */
function refused(ctx: Context, err: unknown): never {
  if (!(err instanceof PolicyInvalidError)) throw err;
  if (ctx.json) ctx.output.out(jsonText({ valid: false, problems: err.problems, message: err.message.split('\n')[0] }, 2));
  else for (const p of err.problems) ctx.output.err(p);
  throw new CliError(err.code, err.message.split('\n')[0]!.replace(/:$/, ''), 2, { cause: err });
}

function policyPath(p: Parsed, command: string): string {
  const [path] = positionals(p, command, ['<policy file>']);
  return path!;
}

async function check(ctx: Context, argv: string[]): Promise<number> {
  const command = 'policy check';
  const p = parse(argv, {}, command);
  if (flag(p, 'help')) return ctx.help(POLICY_USAGE);
  const path = policyPath(p, command);
  const text = readPolicy(path);
  let result: Awaited<ReturnType<typeof checkPolicy>>;
  try {
    result = await checkPolicy(text, path);
  } catch (err) {
    refused(ctx, err);
  }
  for (const w of result.warnings) if (!ctx.json) ctx.output.err(`warning: ${w}`);
  printResult(
    ctx.output,
    ctx.json,
    { valid: true, file: path, policies: result.policies.map(({ id, effect, line }) => ({ id, effect, line })), warnings: result.warnings, contextReads: result.contextReads },
    () => [
      `ok: ${path}: ${result.policies.length} polic${result.policies.length === 1 ? 'y' : 'ies'} valid against the pqmcp schema`,
      ...result.policies.map((i) => `  ${i.effect.padEnd(6)} ${i.id} (line ${i.line})`),
      result.contextReads === 'all'
        ? 'a policy uses context as a whole: decisions are memoised per session on every context value'
        : result.contextReads.length === 0
          ? 'no policy reads context: decisions are memoised per session'
          : `policies read context.${result.contextReads.join(', context.')}: decisions are memoised per session on ${result.contextReads.length === 1 ? 'its value' : 'their values'}`,
    ],
  );
  return 0;
}

/** The principal a session with this credential would present, from its claims. */
function peerOf(ctx: Context, credential: Credential): VerifiedPeer {
  const fingerprint = keyFingerprint(ctx.backend(), credential.publicKey);
  return {
    agentId: credential.agentId,
    displayName: credential.displayName,
    fingerprint: toHex(fingerprint),
    publicKey: credential.publicKey,
    usage: credential.usage,
    scopes: [...credential.scopes],
    attributes: { ...credential.attributes },
    notBefore: credential.notBefore,
    notAfter: credential.notAfter,
    serial: toHex(credential.serial),
    issuer: credential.issuerId,
    selfSigned: equalBytes(fingerprint, credential.issuerFingerprint),
    credential,
  };
}

/** The target flag(s) a method is decided on: one of them is required. */
const TARGET_FLAGS: Readonly<Record<string, readonly string[]>> = {
  'tools/call': ['tool'],
  'resources/read': ['resource'],
  'resources/subscribe': ['resource'],
  'prompts/get': ['prompt'],
  'completion/complete': ['prompt', 'resource'],
};

/** Why the gateway passes `method` without a decision, or undefined when it decides it. */
function undecidedReason(method: string): string | undefined {
  if (UNDECIDED_METHODS.has(method)) return `not decided by a policy: the gateway always passes ${method} (protocol plumbing)`;
  const filter = Object.hasOwn(LIST_FILTERS, method) ? LIST_FILTERS[method] : undefined;
  if (filter === undefined) return undefined;
  const flagName = filter.type === 'Resource' ? 'resource' : filter.type.toLowerCase();
  return `not decided by a policy: the gateway passes ${method} and removes from its result each item this agent may not use (explain one: --method ${filter.action} --${flagName} <${flagName === 'resource' ? 'uri' : 'name'}>)`;
}

function paramsFor(p: Parsed, method: string): Record<string, unknown> {
  const tool = str(p, 'tool');
  const resource = str(p, 'resource');
  const prompt = str(p, 'prompt');
  if ([tool, resource, prompt].filter((v) => v !== undefined).length > 1) throw new UsageError('policy explain: give at most one of --tool, --resource, --prompt');
  // A request the gateway decides on a named target, explained without one, would be decided
  // on the empty name (denied) and read as an answer: refuse it instead.
  const needs = TARGET_FLAGS[method];
  if (needs !== undefined && !needs.some((f) => str(p, f) !== undefined)) {
    throw new UsageError(`policy explain: --method ${method} needs ${needs.map((f) => `--${f} <${f === 'resource' ? 'uri' : 'name'}>`).join(' or ')}`);
  }
  if (method === 'completion/complete') {
    if (resource !== undefined) return { ref: { type: 'ref/resource', uri: resource } };
    return { ref: { type: 'ref/prompt', name: prompt ?? '' } };
  }
  if (tool !== undefined) return { name: tool };
  if (prompt !== undefined) return { name: prompt };
  if (resource !== undefined) return { uri: resource };
  return {};
}

async function explain(ctx: Context, argv: string[]): Promise<number> {
  const command = 'policy explain';
  const p = parse(
    argv,
    {
      agent: { type: 'string' },
      method: { type: 'string' },
      tool: { type: 'string' },
      resource: { type: 'string' },
      prompt: { type: 'string' },
      trust: { type: 'string' },
      revocations: { type: 'string', multiple: true },
      at: { type: 'string' },
      bytes: { type: 'string' },
    },
    command,
  );
  if (flag(p, 'help')) return ctx.help(POLICY_USAGE);
  const path = policyPath(p, command);
  const agentPath = required(p, 'agent', command);
  const method = required(p, 'method', command);
  const params = paramsFor(p, method);
  const at = str(p, 'at');
  const now = at !== undefined ? parseTime(at, '--at') * 1000 : Date.now();
  const requestBytes = integerFlag(p, 'bytes', { min: 0 }) ?? 0;
  const credential = await loadCredential(agentPath);
  let peer = peerOf(ctx, credential);
  const trustPath = str(p, 'trust');
  if (trustPath !== undefined) {
    const trust = await loadTrustStore(trustPath, { revocations: list(p, 'revocations') });
    try {
      peer = trust.verifyCredential(ctx.backend(), credential, { now: () => now });
    } catch (err) {
      throw new CliError((err as PqmcpError).code ?? 'ERR_BAD_INPUT', `${agentPath}: not acceptable: ${(err as Error).message} (a gateway would refuse this agent before any policy)`, 1, { cause: err });
    }
  }
  const text = readPolicy(path);
  let policy: Awaited<ReturnType<typeof loadPolicy>>;
  try {
    policy = await loadPolicy({ text, watch: false });
  } catch (err) {
    refused(ctx, err);
  }
  const undecided = undecidedReason(method);
  if (undecided !== undefined) {
    printResult(ctx.output, ctx.json, { decision: 'allow', principal: { type: 'Agent', id: peer.agentId }, action: method, reason: undecided, policies: [] }, () => [
      'decision: allow',
      `request:  Agent::${JSON.stringify(peer.agentId)} (issuer ${peer.issuer}) ${method}`,
      `reason:   ${undecided}`,
    ]);
    return 0;
  }
  const e = policy.explain(peer, method, params, { requestBytes, now });
  const allowed = e.decision.allowed;
  printResult(
    ctx.output,
    ctx.json,
    {
      decision: allowed ? 'allow' : 'deny',
      principal: e.principal.uid,
      action: e.action,
      resource: e.resource,
      reason: e.reason,
      policies: e.policies.map(({ id, effect, line, text: t }) => ({ id, effect, line, text: t })),
      errors: e.decision.errors,
    },
    () => [
      `decision: ${allowed ? 'allow' : 'deny'}`,
      `request:  Agent::${JSON.stringify(peer.agentId)} (issuer ${peer.issuer}) ${method} ${e.resource.type}::${JSON.stringify(e.resource.id)}`,
      `reason:   ${e.reason}`,
      ...e.policies.flatMap((i) => [`${path}:${i.line}: ${i.effect} ${i.id}`, ...i.text.split('\n').map((l) => `  ${l}`)]),
    ],
  );
  return allowed ? 0 : 1;
}

export function policyCommand(ctx: Context, argv: string[]): Promise<number> | number {
  return subcommand<Promise<number>>(
    ctx,
    argv,
    'policy',
    {
      check: (a) => check(ctx, a),
      explain: (a) => explain(ctx, a),
      schema: async () => {
        ctx.output.out(POLICY_SCHEMA);
        return 0;
      },
    },
    POLICY_USAGE,
  );
}
