/**
 * The CLI as a function: `run(argv)` dispatches to a command and returns its exit code.
 * main.ts is the executable around it; tests and embedders may call it directly.
 *
 *   pqmcp <command> [options]     (pqmcp <command> --help for each)
 *
 * Sharp edges:
 * - `run` never throws: every failure becomes the one-line error on stderr and an exit
 *   code (output.ts). It never calls process.exit either; main.ts does that.
 * - serve and connect are loaded on demand, so key and trust commands do not load the
 *   WebSocket stack.
 */
import { readFileSync } from 'node:fs';
import { CREDENTIAL_USAGE, credentialCommand } from './credential.js';
import { createContext } from './context.js';
import type { Context } from './context.js';
import { INSPECT_USAGE, inspectCommand } from './inspect.js';
import { KEY_USAGE, agentCommand, issuerCommand, keyCommand } from './keys.js';
import { UsageError, processOutput, reportError } from './output.js';
import type { Output } from './output.js';
import { REVOKE_USAGE, revokeCommand } from './revoke.js';
import { TRUST_USAGE, trustCommand } from './trust.js';

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

const COMMANDS: Record<string, { run: Command; usage: string }> = {
  issuer: { run: issuerCommand, usage: KEY_USAGE.issuer },
  agent: { run: agentCommand, usage: KEY_USAGE.agent },
  key: { run: keyCommand, usage: KEY_USAGE.key },
  credential: { run: credentialCommand, usage: CREDENTIAL_USAGE },
  trust: { run: trustCommand, usage: TRUST_USAGE },
  revoke: { run: revokeCommand, usage: REVOKE_USAGE },
  inspect: { run: inspectCommand, usage: INSPECT_USAGE },
  serve: {
    run: async (ctx, argv) => (await import('./serve.js')).serveCommand(ctx, argv),
    usage: 'pqmcp serve --help',
  },
  connect: {
    run: async (ctx, argv) => (await import('./connect.js')).connectCommand(ctx, argv),
    usage: 'pqmcp connect --help',
  },
  'ticket-keys': {
    run: async (ctx, argv) => (await import('./tickets.js')).ticketKeysCommand(ctx, argv),
    usage: 'pqmcp ticket-keys --help',
  },
  audit: {
    run: async (ctx, argv) => (await import('./audit.js')).auditCommand(ctx, argv),
    usage: 'pqmcp audit --help',
  },
  pins: {
    run: async (ctx, argv) => (await import('./pins.js')).pinsCommand(ctx, argv),
    usage: 'pqmcp pins --help',
  },
  manifest: {
    run: async (ctx, argv) => (await import('./pins.js')).manifestCommand(ctx, argv),
    usage: 'pqmcp manifest --help',
  },
  // The policy layer (and, when a policy is read, the Cedar engine) loads only here.
  policy: {
    run: async (ctx, argv) => (await import('./policy.js')).policyCommand(ctx, argv),
    usage: 'pqmcp policy --help',
  },
};

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
      const topic = name === 'help' && rest[0] !== undefined ? COMMANDS[rest[0]] : undefined;
      if (topic && !['serve', 'connect', 'audit', 'policy', 'ticket-keys'].includes(rest[0]!)) return ctx.help(topic.usage);
      if (topic) return await topic.run(ctx, ['--help']);
      return ctx.help(USAGE);
    }
    if (name === '--version' || name === 'version' || name === '-v') {
      output.out(ctx.json ? JSON.stringify({ version: version() }) : `pqmcp ${version()}`);
      return 0;
    }
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!command) {
      throw new UsageError(name.startsWith('-') ? `expected a command before ${name} (see pqmcp --help)` : `unknown command "${name}" (see pqmcp --help)`);
    }
    return await command.run(ctx, rest);
  } catch (err) {
    return reportError(output, err, flags.debug);
  }
}
