/**
 * Live memory for tests that bound it: the JS heap plus ArrayBuffers (where record and
 * socket buffers live) after two full collections. `gc` is exposed at run time through a
 * V8 flag, so no vitest-wide `--expose-gc` is needed.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Two full collections (what `liveMemory` runs before it reads). */
export function collectGarbage(): void {
  gc();
  gc();
}

/** Heap plus ArrayBuffer memory after a full collection, in bytes. */
export function liveMemory(): number {
  collectGarbage();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
