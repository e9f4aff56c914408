/**
 * Node module hooks (module.register) that add istanbul's coverage counters to the modules
 * under the given directories. The counters land in globalThis.__pqmcp_coverage__, where
 * engine.ts reads them.
 *
 * The source handed on by the next loader is TypeScript on some Node versions (tsx leaves
 * .ts to Node's own type stripping on Node >= 23.6) and compiled JavaScript on others, so
 * .ts sources are compiled with esbuild first (a no-op on what is already JavaScript).
 *
 * Plain JavaScript on purpose: hooks run on the loader thread, before any TypeScript
 * support is in place for this file itself.
 */
import { fileURLToPath } from 'node:url';
import { transformSync } from 'esbuild';
import { createInstrumenter } from 'istanbul-lib-instrument';

let include = [];
const instrumenter = createInstrumenter({ esModules: true, compact: true, produceSourceMap: false, coverageVariable: '__pqmcp_coverage__' });

export async function initialize(data) {
  include = data?.include ?? [];
}

export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  if (!['module', 'module-typescript'].includes(result.format) || result.source == null || !include.some((prefix) => url.startsWith(prefix))) return result;
  let code = typeof result.source === 'string' ? result.source : new TextDecoder().decode(result.source);
  if (url.endsWith('.ts')) code = transformSync(code, { loader: 'ts', format: 'esm', target: 'es2022', sourcefile: fileURLToPath(url) }).code;
  return { ...result, format: 'module', source: instrumenter.instrumentSync(code, fileURLToPath(url)) };
}
