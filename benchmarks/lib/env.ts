/**
 * What the machine and runtime look like, recorded with every result: Node and OpenSSL
 * versions, CPU, load, the crypto backend pqmcp picks, and whether `ws` uses bufferutil.
 *
 * bufferutil: `ws` masks and unmasks frames with it when it can load it and
 * WS_NO_BUFFER_UTIL is unset; otherwise a byte loop in JS. It is a devDependency of this
 * repository, not a dependency of pqmcp. The runner measures "with bufferutil" only where
 * it resolves from `ws`, and reports "not installed" otherwise.
 */
import { createRequire } from 'node:module';
import { cpus, loadavg, totalmem } from 'node:os';
import { describeBackend, selectBackend } from '../../src/crypto/select.js';

export type BufferutilState = 'active' | 'disabled' | 'not installed';

const wsRequire = createRequire(createRequire(import.meta.url).resolve('ws'));

export function bufferutilInstalled(): boolean {
  try {
    wsRequire.resolve('bufferutil');
    return true;
  } catch {
    return false;
  }
}

/** Whether `ws` in this process actually masks with bufferutil. */
export function bufferutilState(): BufferutilState {
  if (!bufferutilInstalled()) return 'not installed';
  const util = wsRequire('./lib/buffer-util.js') as { mask: { toString(): string } };
  return util.mask.toString().includes('bufferUtil') ? 'active' : 'disabled';
}

export interface RuntimeInfo {
  node: string;
  openssl: string;
  platform: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  loadAverage: number[];
  pqmcpBackend: string;
  bufferutil: BufferutilState;
}

export function runtimeInfo(): RuntimeInfo {
  const cpu = cpus();
  return {
    node: process.version,
    openssl: process.versions.openssl ?? 'none',
    platform: `${process.platform}-${process.arch}`,
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    pqmcpBackend: describeBackend(selectBackend('auto')),
    bufferutil: bufferutilState(),
  };
}

/** Runtime label used for result files and baselines: node20, node24, ... */
export function runtimeKey(): string {
  return `node${process.versions.node.split('.')[0]}`;
}
