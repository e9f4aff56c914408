/**
 * Writes the known-answer vectors test/vectors/handshake-<suite>.json (npm run vectors).
 * Generated on the noble backend; the test suite replays them on every backend.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNobleBackend } from '../src/crypto/noble.js';
import { Suite } from '../src/wire/messages.js';
import { runKatScenario } from '../test/helpers/kat.js';

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'vectors');
mkdirSync(out, { recursive: true });
const backend = createNobleBackend();
for (const [name, suite] of [
  ['chacha20poly1305', Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256],
  ['aes256gcm', Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256],
] as const) {
  const file = join(out, `handshake-${name}.json`);
  writeFileSync(file, JSON.stringify(runKatScenario(backend, suite), null, 2) + '\n');
  console.log(`wrote ${file}`);
}
