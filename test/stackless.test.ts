import { describe, expect, it } from 'vitest';
import { ServerBusyError } from '../src/errors.js';
import { stackless } from '../src/stackless.js';

describe('stackless (errors of routine flood ends)', () => {
  it('builds the error with its type, code, alert and message, and no stack frames', () => {
    const error = stackless(() => new ServerBusyError('evicted'));
    expect(error).toBeInstanceOf(ServerBusyError);
    expect(error.code).toBe('ERR_SERVER_BUSY');
    expect(error.alert).toBe(130);
    expect(error.message).toBe('evicted');
    expect(error.stack).toBe('ServerBusyError: evicted');
    // An error built the ordinary way still has its frames.
    expect(new ServerBusyError('x').stack).toMatch(/\n\s+at /);
  });

  it('restores Error.stackTraceLimit, also when the builder throws', () => {
    const before = Error.stackTraceLimit;
    expect(() =>
      stackless(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(Error.stackTraceLimit).toBe(before);
    stackless(() => new Error('fine'));
    expect(Error.stackTraceLimit).toBe(before);
  });
});
