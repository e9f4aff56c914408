/**
 * The Cedar engine: loads @cedar-policy/cedar-wasm on first use, parses and validates a
 * policy set against POLICY_SCHEMA, keeps it preparsed inside the engine, and answers
 * authorization requests with the policies that decided them.
 *
 * Sharp edges:
 * - The WASM module (~13 MB) is imported only by loadCedar(), which only a configured
 *   policy calls; `import 'pqmcp'` never reaches this file. Missing module:
 *   PolicyEngineUnavailableError saying what to install.
 * - load() is all or nothing: text that does not parse, uses templates, repeats an @id or
 *   fails strict validation throws PolicyInvalidError (each problem with file:line:col)
 *   and the policy set in force stays in force. Only then is the new set preparsed, under
 *   the same engine id, replacing the old one in one synchronous step.
 * - Policy ids are their @id("...") annotation, else "policy<N>" (N counts from 0 in file
 *   order). They appear in decisions, notes and `pqmcp policy explain`, never on the wire.
 * - `contextReads` lists the context attributes the policies read (`context.x`, `context
 *   has x`), or is 'all' when a policy uses `context` otherwise. A decision depends only on
 *   principal, action, resource and those attributes, so callers may memoise it on them.
 * - A policy that errors while evaluating (a missing tag, an overflow) does not apply; the
 *   decision lists it in `errors`. Cedar denies unless some permit applies and no forbid does.
 */
import { PolicyEngineUnavailableError, PolicyInvalidError } from '../errors.js';
import { POLICY_SCHEMA, resourceAttrs } from './schema.js';
import type { CedarResource } from './schema.js';

/** A Cedar value as JSON (the subset pqmcp sends). */
export type CedarValue = string | number | boolean | CedarValue[] | { [key: string]: CedarValue };

interface DetailedError {
  message: string;
  help: string | null;
  sourceLocations?: Array<{ start: number; end: number }>;
}
interface EntityUid {
  type: string;
  id: string;
}
/** A Cedar entity in the JSON form the engine takes. */
export interface CedarEntity {
  uid: EntityUid;
  attrs: Record<string, CedarValue>;
  parents: EntityUid[];
  tags?: Record<string, CedarValue>;
}
type Answer<T> = ({ type: 'success' } & T) | { type: 'failure'; errors: DetailedError[] };

/** The part of @cedar-policy/cedar-wasm pqmcp calls. */
interface CedarApi {
  getCedarVersion(): string;
  policySetTextToParts(text: string): Answer<{ policies: string[]; policy_templates: string[] }>;
  policyToJson(policy: string): Answer<{ json: { effect: 'permit' | 'forbid'; annotations?: Record<string, string> } }>;
  checkParseSchema(schema: string): Answer<object>;
  validate(call: { schema: string; policies: { staticPolicies: Record<string, string> }; validationSettings: { mode: 'strict' } }):
    | { type: 'failure'; errors: DetailedError[] }
    | { type: 'success'; validationErrors: Array<{ policyId: string; error: DetailedError }>; validationWarnings: Array<{ policyId: string; error: DetailedError }> };
  preparsePolicySet(id: string, policies: { staticPolicies: Record<string, string> }): Answer<object>;
  statefulIsAuthorized(call: {
    principal: EntityUid;
    action: EntityUid;
    resource: EntityUid;
    context: Record<string, CedarValue>;
    preparsedPolicySetId: string;
    entities: CedarEntity[];
  }):
    | { type: 'failure'; errors: DetailedError[] }
    | { type: 'success'; response: { decision: 'allow' | 'deny'; diagnostics: { reason: string[]; errors: Array<{ policyId: string; error: DetailedError }> } } };
}

const MODULE = '@cedar-policy/cedar-wasm/nodejs';
let loading: Promise<CedarApi> | undefined;

/**
 * Node 20 (V8 11.x) dies with a V8 fatal error ("unreachable code" in
 * Deoptimizer::DoComputeBuiltinContinuation) when optimized code that inlined a JS-to-Wasm
 * call into Cedar is deoptimized lazily: two policy engines in one process (a reload, or
 * `npm run bench:policy`) reproduce it every time. V8's own switch for that inlining turns
 * it off; it costs nothing measurable here (test/policy/node20-deopt.test.ts runs the
 * reproduction). Node 22 (V8 12) is switched too, as a precaution: it was not available to
 * test. Node 24 (V8 13) runs the reproduction without it, and keeps the optimization.
 */
async function avoidV8WasmInliningFault(): Promise<void> {
  const v8Major = Number(process.versions.v8?.split('.')[0]);
  if (!(v8Major <= 12)) return;
  const { setFlagsFromString } = await import('node:v8');
  setFlagsFromString('--no-turbo-inline-js-wasm-calls');
}

/** Import the Cedar WASM module once (it is an optional peer dependency). */
export function loadCedar(): Promise<CedarApi> {
  loading ??= avoidV8WasmInliningFault().then(() => import(MODULE)).then(
    (m: Record<string, unknown>) => ('statefulIsAuthorized' in m ? m : (m['default'] as Record<string, unknown>)) as unknown as CedarApi,
    (err: unknown) => {
      loading = undefined;
      throw new PolicyEngineUnavailableError(`a policy is configured but the Cedar engine is not installed: npm install @cedar-policy/cedar-wasm`, { cause: err });
    },
  );
  return loading;
}

/** One policy of the set in force, for explanations and listings. */
export interface PolicyInfo {
  id: string;
  effect: 'permit' | 'forbid';
  /** 1-based line of the policy in its source. */
  line: number;
  text: string;
}

/** The outcome of one authorization request. */
export interface Decision {
  allowed: boolean;
  /** The policies that decided it: the permits that allowed, or the forbids that denied. Empty: nothing permits it. */
  policies: string[];
  /** Policies that failed to evaluate (they did not apply), with why. */
  errors: string[];
}

export interface AuthorizationRequest {
  /** The principal and its parents' entities (principalEntity()). */
  principal: CedarEntity;
  action: string;
  resource: CedarResource;
  context: Record<string, CedarValue>;
}

let engines = 0;

const isContext = (e: unknown): boolean => typeof e === 'object' && e !== null && (e as Record<string, unknown>)['Var'] === 'context';

/**
 * Collect into `reads` the context attributes a policy's JSON form reads (`context.x`,
 * `context has x`); true when it uses `context` any other way (then every attribute counts).
 */
function contextAttributes(node: unknown, reads: Set<string>): boolean {
  if (Array.isArray(node)) return node.reduce<boolean>((all, n) => contextAttributes(n, reads) || all, false);
  if (typeof node !== 'object' || node === null) return false;
  if (isContext(node)) return true;
  let all = false;
  for (const [key, value] of Object.entries(node)) {
    const v = value as Record<string, unknown>;
    if ((key === '.' || key === 'has') && typeof v === 'object' && v !== null && isContext(v['left'])) {
      if (typeof v['attr'] === 'string') reads.add(v['attr']);
      else if (Array.isArray(v['attr']) && typeof v['attr'][0] === 'string') reads.add(v['attr'][0]);
      else all = true;
      continue;
    }
    if (contextAttributes(value, reads)) all = true;
  }
  return all;
}

function lineCol(text: string, offset: number): string {
  let line = 1;
  let col = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      col = 1;
    } else col++;
  }
  return `${line}:${col}`;
}

function describe(error: DetailedError, source: string, text: string, base = 0): string {
  const at = error.sourceLocations?.[0];
  const where = at !== undefined ? `${source}:${lineCol(text, base + at.start)}: ` : `${source}: `;
  return `${where}${error.message}${error.help ? ` (${error.help})` : ''}`;
}

/** The policy set of one policy: parse, validate, preparse, decide. */
export class CedarEngine {
  private readonly id = `pqmcp-policy-${++engines}`;
  private infos: PolicyInfo[] = [];
  private byId = new Map<string, PolicyInfo>();
  private loaded = false;
  /** Bumped on every successful load: memoised decisions of older generations are stale. */
  generation = 0;
  /** The context attributes the policy set reads; 'all' when it uses `context` as a whole. */
  contextReads: readonly string[] | 'all' = [];

  private constructor(private readonly cedar: CedarApi) {}

  static async create(): Promise<CedarEngine> {
    const cedar = await loadCedar();
    const schema = cedar.checkParseSchema(POLICY_SCHEMA);
    if (schema.type !== 'success') throw new PolicyInvalidError('the built-in Cedar schema does not parse', schema.errors.map((e) => e.message));
    return new CedarEngine(cedar);
  }

  /** Cedar's version, for logs. */
  get cedarVersion(): string {
    return this.cedar.getCedarVersion();
  }

  get policies(): readonly PolicyInfo[] {
    return this.infos;
  }

  /**
   * Check `text` and, when it is sound, make it the policy set in force. Throws
   * PolicyInvalidError (the set in force is unchanged) otherwise.
   */
  load(text: string, source = 'policy'): void {
    const { infos, record, contextReads } = this.check(text, source);
    const pre = this.cedar.preparsePolicySet(this.id, { staticPolicies: record });
    if (pre.type !== 'success') throw new PolicyInvalidError(`${source}: policies not loaded`, pre.errors.map((e) => `${source}: ${e.message}`));
    this.infos = infos;
    this.byId = new Map(infos.map((i) => [i.id, i]));
    this.contextReads = contextReads;
    this.loaded = true;
    this.generation++;
  }

  /** Parse and validate without loading; throws PolicyInvalidError. */
  check(text: string, source = 'policy'): { infos: PolicyInfo[]; record: Record<string, string>; contextReads: readonly string[] | 'all'; warnings: string[] } {
    if (typeof text !== 'string') throw new PolicyInvalidError(`${source}: policy text must be a string`);
    const parts = this.cedar.policySetTextToParts(text);
    if (parts.type !== 'success') throw new PolicyInvalidError(`${source}: policies do not parse`, parts.errors.map((e) => describe(e, source, text)));
    if (parts.policy_templates.length > 0) throw new PolicyInvalidError(`${source}: policies not loaded`, [`${source}: templates (?principal, ?resource) are not supported; write static policies`]);
    const infos: PolicyInfo[] = [];
    const record: Record<string, string> = {};
    const offsets = new Map<string, number>();
    const problems: string[] = [];
    const reads = new Set<string>();
    let readsAll = false;
    let cursor = 0;
    parts.policies.forEach((policy, index) => {
      const at = text.indexOf(policy, cursor);
      if (at >= 0) cursor = at + policy.length;
      const json = this.cedar.policyToJson(policy);
      if (json.type !== 'success') {
        problems.push(...json.errors.map((e) => describe(e, source, text, Math.max(at, 0))));
        return;
      }
      const id = json.json.annotations?.['id'] ?? `policy${index}`;
      if (Object.hasOwn(record, id)) {
        problems.push(`${source}:${lineCol(text, Math.max(at, 0))}: policy id "${id}" is used twice`);
        return;
      }
      if (contextAttributes(json.json, reads)) readsAll = true;
      record[id] = policy;
      offsets.set(id, Math.max(at, 0));
      infos.push({ id, effect: json.json.effect, line: Number(lineCol(text, Math.max(at, 0)).split(':')[0]), text: policy });
    });
    if (problems.length > 0) throw new PolicyInvalidError(`${source}: policies not loaded`, problems);
    const result = this.cedar.validate({ schema: POLICY_SCHEMA, policies: { staticPolicies: record }, validationSettings: { mode: 'strict' } });
    if (result.type !== 'success') throw new PolicyInvalidError(`${source}: policies do not validate`, result.errors.map((e) => describe(e, source, text)));
    if (result.validationErrors.length > 0) {
      throw new PolicyInvalidError(
        `${source}: policies do not validate against the pqmcp schema`,
        result.validationErrors.map((v) => describe(v.error, source, text, offsets.get(v.policyId) ?? 0)),
      );
    }
    const warnings = result.validationWarnings.map((v) => describe(v.error, source, text, offsets.get(v.policyId) ?? 0));
    return { infos, record, contextReads: readsAll ? 'all' : [...reads].sort(), warnings };
  }

  /** Decide one request against the policy set in force. */
  authorize(request: AuthorizationRequest): Decision {
    if (!this.loaded) return { allowed: false, policies: [], errors: ['no policy loaded'] };
    const resource: CedarEntity = { uid: request.resource, attrs: resourceAttrs(request.resource), parents: [] };
    const answer = this.cedar.statefulIsAuthorized({
      principal: request.principal.uid,
      action: { type: 'Action', id: request.action },
      resource: request.resource,
      context: request.context,
      preparsedPolicySetId: this.id,
      entities: [request.principal, resource],
    });
    if (answer.type !== 'success') return { allowed: false, policies: [], errors: answer.errors.map((e) => e.message) };
    const { decision, diagnostics } = answer.response;
    return {
      allowed: decision === 'allow',
      policies: diagnostics.reason,
      errors: diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`),
    };
  }

  /** A policy of the set in force, by id. */
  policy(id: string): PolicyInfo | undefined {
    return this.byId.get(id);
  }
}
