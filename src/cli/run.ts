/**
 * The CLI as a function: `run(argv)` dispatches to a command and returns its exit code.
 * main.ts is the executable around it; tests and embedders may call it directly.
 *
 *   pqmcp <command> [options]     (pqmcp <command> --help for each)
 *
 * Sharp edges:
 * - `run` never throws: every failure becomes the one-line error on stderr and an exit
 *   code (output.ts). It never calls process.exit either; main.ts does that.
 * - Every command is loaded on demand (and the crypto backend selector with it), so
 *   `--help` and `--version` load no crypto, identity or WebSocket code, and each command
 *   loads only its own graph. The built CLI is split into chunks (tsup.config.ts) so an
 *   unloaded command's dependencies are not even parsed; keep this file's static imports
 *   light (benchmarks/coldstart.ts measures it).
 */
import { readFileSync } from 'node:fs';
import { createContext } from './context.js';
import type { Context } from './context.js';
import { UsageError, jsonText, processOutput, reportError } from './output.js';
import type { Output } from './output.js';

export const USAGE = `pqmcp <command> [options]

Post-quantum secure transport for MCP: keys, credentials, trust, a gateway and a bridge.

Identities and trust
  issuer create --id <issuer id>             create an issuer (signs credentials)
  agent create --id <agent id>               create an agent identity
  key public <key file>                      export the public key of a private key file
  credential issue --issuer <k> --agent <f>  issue a credential (claims, validity)
  credential verify <cred> --trust <file>    check a credential as a peer would
  trust init|add-issuer|pin|list|remove|add-revocations <trust file> ...
  revoke <list> --credential|--serial|--key  add to a revocation list
  inspect <file>                             show any key, credential, trust or revocation file

MCP over pqmcp
  serve --identity <key> --trust <file> --listen <host:port> -- <stdio MCP server command...>
                                             gateway: put a stdio MCP server behind pqmcp
  connect <ws url> --identity <key> --trust <file> --expect <server id>
                                             bridge: stdio MCP on stdin/stdout to a pqmcp server
  audit verify|report <files or dir>...      check a gateway's audit trail; calls per agent/tool/issuer
  ticket-keys create|rotate|show <file>      resumption ticket keys for serve --ticket-keys

Tool pinning and manifests (connect --pins, --manifest)
  pins list|approve|forget --pins <file>     tools pinned per server; approve held tools
  manifest capture -- <stdio server command> a server's tools as a manifest for its issuer

Authorization (serve --policy, --quotas)
  policy check <policy file>                 validate Cedar policies against pqmcp's schema
  policy explain <policy file> --agent <cred> --method <m> [--tool|--resource|--prompt <name>]
                                             which policy allows or denies a request, and why
  policy schema                              print the Cedar schema

Global options: --json (machine output), --debug (stack traces), --help, --version
Exit codes: 0 ok, 1 failure, 2 bad usage or input. Docs: docs/cli.md`;

type Command = (ctx: Context, argv: string[]) => number | Promise<number>;

/** Each command, imported when it runs (its own `--help` included). */
const COMMANDS: Record<string, () => Promise<Command>> = {
  issuer: async () => (await import('./keys.js')).issuerCommand,
  agent: async () => (await import('./keys.js')).agentCommand,
  key: async () => (await import('./keys.js')).keyCommand,
  credential: async () => (await import('./credential.js')).credentialCommand,
  trust: async () => (await import('./trust.js')).trustCommand,
  revoke: async () => (await import('./revoke.js')).revokeCommand,
  inspect: async () => (await import('./inspect.js')).inspectCommand,
  serve: async () => (await import('./serve.js')).serveCommand,
  connect: async () => (await import('./connect.js')).connectCommand,
  'ticket-keys': async () => (await import('./tickets.js')).ticketKeysCommand,
  audit: async () => (await import('./audit.js')).auditCommand,
  pins: async () => (await import('./pins.js')).pinsCommand,
  manifest: async () => (await import('./pins.js')).manifestCommand,
  // The policy layer (and, when a policy is read, the Cedar engine) loads only here.
  policy: async () => (await import('./policy.js')).policyCommand,
};

/**
 * Load a command and the backend selector its context hands out, then run it. `connect`
 * installs the selector itself once its flags are valid (bridge.ts), so that its `--help`
 * and flag errors load no crypto: desktop clients spawn it once per session.
 */
async function runCommand(ctx: Context, load: () => Promise<Command>, argv: string[]): Promise<number> {
  if (load === COMMANDS.connect) return await (await load())(ctx, argv);
  const [command, { selectBackend }] = await Promise.all([load(), import('../crypto/select.js')]);
  ctx.useBackendSelector(selectBackend);
  return await command(ctx, argv);
}

export function version(): string {
  for (const candidate of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'pqmcp' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // try the next location (src/cli/ in development, dist/ when installed)
    }
  }
  return 'unknown';
}

/** Global flags, seen anywhere before a `--`. */
function globalFlags(argv: readonly string[]): { json: boolean; debug: boolean } {
  const end = argv.indexOf('--');
  const own = end === -1 ? argv : argv.slice(0, end);
  return { json: own.includes('--json'), debug: own.includes('--debug') };
}

export async function run(argv: readonly string[], output: Output = processOutput): Promise<number> {
  const flags = globalFlags(argv);
  const ctx = createContext(output, flags);
  try {
    const [name, ...rest] = argv;
    if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
      const topic = name === 'help' && rest[0] !== undefined && Object.hasOwn(COMMANDS, rest[0]) ? COMMANDS[rest[0]] : undefined;
      if (topic) return await runCommand(ctx, topic, ['--help']);
      return ctx.help(USAGE);
    }
    if (name === '--version' || name === 'version' || name === '-v') {
      output.out(ctx.json ? jsonText({ version: version() }) : `pqmcp ${version()}`);
      return 0;
    }
    const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!load) {
      throw new UsageError(name.startsWith('-') ? `expected a command before ${name} (see pqmcp --help)` : `unknown command "${name}" (see pqmcp --help)`);
    }
    return await runCommand(ctx, load, rest);
  } catch (err) {
    return reportError(output, err, flags.debug);
  }
}
