/**
 * pqmcp/policy: authorization in Cedar and quotas for pqmcp listeners, as message hooks
 * for serveMcp/listen's `policy` and `quotas` options. A separate entry point: the Cedar
 * engine (@cedar-policy/cedar-wasm, an optional peer dependency) is imported only when a
 * policy is loaded, and `import 'pqmcp'` never reaches this folder.
 *
 *   import { loadPolicy, createQuotas } from 'pqmcp/policy';
 *   const policy = await loadPolicy({ file: 'mcp.cedar' });
 *   const quotas = createQuotas({ perAgent: { calls: 600, sessions: 4 } });
 *   await serveMcp({ identity, trust, policy, quotas }, factory);
 */
export { Policy, checkPolicy, deniedMessage, loadPolicy } from './policy.js';
export type { Explanation, PolicyNote, PolicyOptions, ReloadEvent } from './policy.js';
export { MemoryQuotaStore, Quotas, checkQuotaConfig, createQuotas, parseQuotaFile, quotaMessage } from './quotas.js';
export type { QuotaConfig, QuotaLimits, QuotaNote, QuotaStore, QuotasOptions } from './quotas.js';
export { LIST_FILTERS, POLICY_SCHEMA, PolicyErrorCode, UNDECIDED_METHODS, resourceOf } from './schema.js';
export type { CedarResource, ResourceType } from './schema.js';
export { principalEntity, contextFor } from './request.js';
export type { CedarEntity, CedarValue, Decision, PolicyInfo } from './cedar.js';
export { PolicyEngineUnavailableError, PolicyInvalidError } from '../errors.js';
