/**
 * What every command receives: where to print, the global flags, and the crypto backend
 * (chosen lazily: commands that never touch keys never pay for backend detection); and the
 * `<group> <verb>` dispatch the command groups share.
 *
 * Sharp edge: this module must stay light (run.ts imports it for `--help`): the backend
 * selector (and with it every crypto library) is handed in by run.ts when a command is
 * loaded, through `useBackendSelector`; `backend()` before that throws.
 */
import type { BackendChoice } from '../crypto/select.js';
import type { CryptoBackend } from '../crypto/types.js';
import { UsageError } from './output.js';
import type { Output } from './output.js';

export interface Context {
  output: Output;
  /** --json: results as one JSON document on stdout (logs as JSON lines on stderr). */
  json: boolean;
  /** --debug: stacks with errors. */
  debug: boolean;
  /** The crypto backend (PQMCP_BACKEND or auto, unless a command overrides it). */
  backend(choice?: BackendChoice): CryptoBackend;
  /** Print a usage text to stdout; returns exit code 0. */
  help(text: string): number;
  /** Install the backend selector (run.ts, when it loads a command). */
  useBackendSelector(select: (choice?: BackendChoice) => CryptoBackend): void;
}

export function createContext(output: Output, flags: { json: boolean; debug: boolean }): Context {
  let select: ((choice?: BackendChoice) => CryptoBackend) | undefined;
  return {
    output,
    json: flags.json,
    debug: flags.debug,
    backend(choice) {
      if (!select) throw new Error('pqmcp: no crypto backend selector (commands are run through run.ts)');
      return select(choice);
    },
    useBackendSelector(fn) {
      select = fn;
    },
    help(text) {
      output.out(`usage: ${text}`);
      return 0;
    },
  };
}

/** Dispatch `<group> <verb> ...`. */
export function subcommand<R>(ctx: Context, argv: string[], group: string, verbs: Record<string, (argv: string[]) => R>, usage: string): R | number {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') return ctx.help(usage);
  const run = Object.hasOwn(verbs, verb) ? verbs[verb] : undefined;
  if (!run) throw new UsageError(`unknown command "${group} ${verb}"; one of: ${Object.keys(verbs).map((v) => `${group} ${v}`).join(', ')}`);
  // `pqmcp pins list --help` is help, before any check of the verb's own required flags.
  const end = rest.indexOf('--');
  const own = end === -1 ? rest : rest.slice(0, end);
  if (own.includes('--help') || own.includes('-h')) return ctx.help(usage);
  return run(rest);
}
