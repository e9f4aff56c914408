/**
 * Live memory for tests that bound it: the JS heap plus ArrayBuffers (where record and
 * socket buffers live) after two full collections. `gc` is exposed at run time through a
 * V8 flag, so no vitest-wide `--expose-gc` is needed.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap plus ArrayBuffer memory after a full collection, in bytes. */
export function liveMemory(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
