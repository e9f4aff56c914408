// Sums vitest JSON reports into one plain line: "tests: N passed, N failed, N skipped".
// Failed tests are listed above it (file, name, first lines of the message), because CI
// logs are often read from their tail only.
import { readFileSync, existsSync } from 'node:fs';
import { relative } from 'node:path';

let passed = 0, failed = 0, skipped = 0, missing = 0;
const failures = [];
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) { missing++; console.log(`missing report: ${file}`); continue; }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  for (const suite of r.testResults ?? []) {
    const where = relative(process.cwd(), suite.name ?? '?');
    const failedTests = (suite.assertionResults ?? []).filter((t) => t.status === 'failed');
    for (const t of failedTests) {
      failures.push({ report: file, where, name: t.fullName ?? t.title, message: (t.failureMessages ?? []).join('\n') });
    }
    // A file that failed to load (syntax error, failing hook) has no failed test of its own.
    if (suite.status === 'failed' && failedTests.length === 0) {
      failures.push({ report: file, where, name: '(file)', message: suite.message ?? '' });
    }
  }
}
for (const f of failures) {
  const message = f.message.split('\n').filter((l) => l.trim() !== '').slice(0, 6).join('\n    ');
  console.log(`FAILED ${f.where} > ${f.name}  [${f.report.replace(/^.*vitest-|\.json$/g, '')}]\n    ${message}`);
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || missing > 0 || passed === 0 || failures.length > 0 ? 1 : 0);
