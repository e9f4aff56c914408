#!/usr/bin/env node
/**
 * The `pqmcp` executable (package.json "bin"; built to dist/cli.js). Everything happens in
 * run.ts; this file only sets the exit code.
 */
import { run } from './run.js';

const code = await run(process.argv.slice(2));
process.exitCode = code;
// Handles a command forgot (a paused stdin, a lingering socket) must not keep the process
// alive after its work is done; an idle process exits before this fires.
setTimeout(() => process.exit(code), 1000).unref();
