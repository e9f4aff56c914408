/**
 * Application callbacks, run contained: a throw is reported once through `report` (an
 * InternalError carrying it as `cause`) and never rethrown into the transport's own code.
 */
import { InternalError, type PqmcpError } from '../errors.js';

export function contained(fn: () => void, report: (error: PqmcpError) => void): void {
  try {
    fn();
  } catch (err) {
    try {
      report(new InternalError('transport event handler threw', { cause: err }));
    } catch {
      // Nothing more we can do.
    }
  }
}
