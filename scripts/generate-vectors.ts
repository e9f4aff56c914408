/**
 * Writes every known-answer vector file listed in test/helpers/kat.ts KAT_FILES to
 * test/vectors/ (npm run vectors). Generated on the noble backend; the test suite replays
 * them on every backend and across backends (client on one, server on the other).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNobleBackend } from '../src/crypto/noble.js';
import { KAT_FILES } from '../test/helpers/kat.js';
import { RESUMPTION_KAT_FILES } from '../test/helpers/kat-resumption.js';

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'vectors');
mkdirSync(out, { recursive: true });
const backend = createNobleBackend();
for (const entry of [...KAT_FILES, ...RESUMPTION_KAT_FILES]) {
  const file = join(out, entry.file);
  writeFileSync(file, JSON.stringify(entry.run(backend, backend), null, 2) + '\n');
  console.log(`wrote ${file}`);
}
