/**
 * docs/api.md names every name each public entry point exports (package.json `exports`: the
 * root, `pqmcp/browser`, `pqmcp/policy`), and every member of their option interfaces: a
 * function, class, constant or type added to an entry point without a word in the reference
 * fails here, and so does an option added to an options interface.
 *
 * The rule, precisely:
 * - A name is "named" in a document when it is a whole identifier inside an inline code
 *   span (`loadIdentity(path)`, `TrustStore.fromJSON`) or inside a fenced code block
 *   other than its `import` statements (an import line alone documents nothing). An error
 *   class may also be covered by a pattern such as `Ticket*Error` (as in the Errors section).
 * - Every export of the root entry is named somewhere in docs/api.md. Every export of a
 *   subpath entry (`pqmcp/x`) is named in api.md's section whose `## ` heading names
 *   `pqmcp/x`, unless the root exports the same name (documented with the root's).
 * - An options interface is an exported interface or type alias named `*Options` or
 *   `*Config`; each of its members declared in src/ (not those it inherits from a library,
 *   such as node:tls's options under PqmcpWebSocketOptions) is named in docs/api.md, or is a
 *   row of docs/usage.md's "Options" tables (the transports' and the listener's options,
 *   which test/transport/options-documented.test.ts keeps complete).
 *
 * The exports are read from the sources with the TypeScript compiler API (what tsup's
 * declarations are built from), so nothing is built.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const API = read('docs/api.md');

/** The identifiers a markdown text names: in inline code spans and in fenced blocks (less their imports). */
function namedIn(markdown: string): { names: Set<string>; patterns: RegExp[] } {
  const names = new Set<string>();
  const patterns: RegExp[] = [];
  const fence = /^```[^\n]*\n([\s\S]*?)^```/gm;
  const code: string[] = [];
  for (const m of markdown.matchAll(fence)) code.push(m[1]!.replace(/^import\b[\s\S]*?\bfrom\s+'[^']*';?/gm, ''));
  for (const m of markdown.replace(fence, '').matchAll(/`([^`\n]+)`/g)) {
    code.push(m[1]!);
    for (const p of m[1]!.matchAll(/^(\w+)\*(\w*Error)$/g)) patterns.push(new RegExp(`^${p[1]}\\w*${p[2]}$`));
  }
  for (const text of code) for (const id of text.matchAll(/[A-Za-z_$][\w$]*/g)) names.add(id[0]);
  return { names, patterns };
}

const isNamed = (named: ReturnType<typeof namedIn>, name: string): boolean => named.names.has(name) || named.patterns.some((p) => p.test(name));

/** api.md's `## ` section whose heading names `pqmcp/x` in backticks. */
function sectionFor(subpath: string): string | undefined {
  const heading = new RegExp(`^## .*\`${subpath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\``, 'm');
  const m = heading.exec(API);
  if (!m) return undefined;
  const end = API.indexOf('\n## ', m.index + 1);
  return API.slice(m.index, end === -1 ? undefined : end);
}

/** Rows of docs/usage.md's "## Options" tables (before its first subsection), as options-documented.test.ts reads them. */
function usageOptionRows(): Set<string> {
  const doc = read('docs/usage.md');
  const start = doc.indexOf('\n## Options\n');
  const section = doc.slice(start, doc.indexOf('\n### ', start));
  return new Set([...section.matchAll(/^\| `(\w+)`/gm)].map((m) => m[1]!));
}

/** package.json `exports` with code behind them: subpath ('.' or './x') -> source entry. */
function entryPoints(): Map<string, string> {
  const exports = (JSON.parse(read('package.json')) as { exports: Record<string, unknown> }).exports;
  const entries = new Map<string, string>();
  for (const [key, target] of Object.entries(exports)) {
    if (!JSON.stringify(target).includes('./dist/')) continue; // a schema file, package.json
    const source = key === '.' ? 'src/index.ts' : `src/${key.slice(2)}/index.ts`;
    expect(existsSync(join(ROOT, source)), `${key} -> ${source}`).toBe(true);
    entries.set(key, source);
  }
  return entries;
}

interface Exported {
  entry: string;
  name: string;
  /** Members of an options interface declared in src/ (empty for any other export). */
  members: string[];
}

function exportsOf(entries: Map<string, string>): Exported[] {
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  const program = ts.createProgram(
    [...entries.values()].map((source) => join(ROOT, source)),
    { ...config!.options, noEmit: true },
  );
  const checker = program.getTypeChecker();
  const src = join(ROOT, 'src') + '/';
  const out: Exported[] = [];
  for (const [entry, source] of entries) {
    const module = checker.getSymbolAtLocation(program.getSourceFile(join(ROOT, source))!)!;
    for (const symbol of checker.getExportsOfModule(module)) {
      const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
      let members: string[] = [];
      if (/(Options|Config)$/.test(symbol.name) && target.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias)) {
        members = checker
          .getPropertiesOfType(checker.getDeclaredTypeOfSymbol(target))
          .filter((p) => p.declarations?.some((d) => d.getSourceFile().fileName.startsWith(src)))
          .map((p) => p.name);
      }
      out.push({ entry, name: symbol.name, members });
    }
  }
  return out;
}

describe('docs/api.md names every export of the entry points and every member of their options', () => {
  const entries = entryPoints();
  const all = exportsOf(entries);
  const root = new Set(all.filter((e) => e.entry === '.').map((e) => e.name));
  const inApi = namedIn(API);
  const inUsage = usageOptionRows();

  it('reads the three entry points', () => {
    expect([...entries.keys()]).toEqual(expect.arrayContaining(['.', './browser', './policy']));
    expect(root.size).toBeGreaterThan(300);
    expect(all.filter((e) => e.members.length > 0).length).toBeGreaterThan(25);
  });

  for (const entry of entries.keys()) {
    it(`every export of ${entry === '.' ? "the root ('pqmcp')" : `'pqmcp${entry.slice(1)}'`} is named`, () => {
      const section = entry === '.' ? API : sectionFor(`pqmcp${entry.slice(1)}`);
      expect(section, `a section of docs/api.md whose heading names pqmcp${entry.slice(1)}`).toBeDefined();
      const named = entry === '.' ? inApi : namedIn(section!);
      const missing = all.filter((e) => e.entry === entry && !(entry !== '.' && root.has(e.name)) && !isNamed(named, e.name)).map((e) => e.name);
      expect(missing, 'exported but not named in docs/api.md').toEqual([]);
    });
  }

  it('every member of an options interface is named (api.md, or a row of usage.md\'s Options tables)', () => {
    const missing = all.flatMap((e) => e.members.filter((m) => !isNamed(inApi, m) && !inUsage.has(m)).map((m) => `${e.name}.${m}`));
    expect([...new Set(missing)], 'options members named neither in docs/api.md nor in usage.md\'s Options tables').toEqual([]);
  });
});
