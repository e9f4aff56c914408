/**
 * pqmcp's Cedar schema for MCP authorization, and the table that maps each MCP method to
 * the Cedar action and resource it is decided as. Every policy is validated against this
 * schema (strict mode) before it is used; the same text ships as schema/mcp.cedarschema.
 *
 *   principal  Agent::"<agent id>"    in Issuer::"<issuer id>"; the verified credential:
 *              issuer, fingerprint, scopes, displayName, serial, selfSigned, notBefore,
 *              notAfter, usage; its attributes as tags (principal.getTag("team")).
 *   action     Action::"<MCP method>" ("tools/call", "resources/read", ...)
 *   resource   Tool::"<name>", Resource::"<uri>", Prompt::"<name>"; Server::"<server>" for
 *              methods that name none (logging/setLevel, sampling, elicitation, roots/list)
 *   context    sessionId, time (Unix seconds), utcHour (0-23), requestBytes (the request's
 *              JSON), remoteAddress (as the socket saw it; "" when unknown)
 *
 * Sharp edges:
 * - Methods that are protocol plumbing pass without a decision: initialize, ping,
 *   resources/unsubscribe, every notification from the client, every response. The list
 *   methods pass and their results are filtered (LIST_FILTERS).
 * - A method the schema does not declare (a newer MCP method) is still decided, as
 *   Action::"<method>" on the Server resource: only a policy that leaves its action
 *   unconstrained can permit it. Unknown means denied by default.
 * - Resource templates are listed when Action::"resources/read" is permitted on a
 *   Resource whose id and uri are the template text ("notes://{id}").
 */

/** The Cedar schema (Cedar schema syntax). Bumping it is a breaking change for policies. */
export const POLICY_SCHEMA = `// pqmcp Cedar schema for MCP authorization, version 1 (docs/usage.md, "Authorization").

// An issuer that vouches for agents (for a pinned self-signed credential: the agent itself).
entity Issuer;

// The verified agent on the other end of the session. Tags: its credential's attributes.
entity Agent in [Issuer] {
  issuer: String,
  fingerprint: String,
  scopes: Set<String>,
  displayName: String,
  serial: String,
  selfSigned: Bool,
  notBefore: Long,
  notAfter: Long,
  // The roles its credential allows: "client", "server" or "both".
  usage: String,
} tags String;

entity Tool { name: String };
entity Resource { uri: String };
entity Prompt { name: String };
// The MCP server behind the listener, for methods that name no tool, resource or prompt.
entity Server;

type RequestContext = {
  sessionId: String,
  time: Long,
  utcHour: Long,
  requestBytes: Long,
  remoteAddress: String,
};

// Client to server.
action "tools/call" appliesTo { principal: Agent, resource: Tool, context: RequestContext };
action "resources/read", "resources/subscribe" appliesTo { principal: Agent, resource: Resource, context: RequestContext };
action "prompts/get" appliesTo { principal: Agent, resource: Prompt, context: RequestContext };
action "completion/complete" appliesTo { principal: Agent, resource: [Prompt, Resource], context: RequestContext };
action "logging/setLevel" appliesTo { principal: Agent, resource: Server, context: RequestContext };

// Server to client: may the server ask this agent for this?
action "sampling/createMessage", "elicitation/create", "roots/list" appliesTo { principal: Agent, resource: Server, context: RequestContext };
`;

export type ResourceType = 'Tool' | 'Resource' | 'Prompt' | 'Server';

/** A Cedar resource: its type, id, and attributes as the schema declares them. */
export interface CedarResource {
  type: ResourceType;
  id: string;
}

/** Methods that pass with no decision (protocol plumbing). */
export const UNDECIDED_METHODS: ReadonlySet<string> = new Set(['initialize', 'ping', 'resources/unsubscribe']);

/** List methods: their results are filtered item by item with this action and resource. */
export const LIST_FILTERS: Readonly<Record<string, { field: string; action: string; type: ResourceType; key: string }>> = {
  'tools/list': { field: 'tools', action: 'tools/call', type: 'Tool', key: 'name' },
  'resources/list': { field: 'resources', action: 'resources/read', type: 'Resource', key: 'uri' },
  'resources/templates/list': { field: 'resourceTemplates', action: 'resources/read', type: 'Resource', key: 'uriTemplate' },
  'prompts/list': { field: 'prompts', action: 'prompts/get', type: 'Prompt', key: 'name' },
};

/** The list_changed notification of each list category, by the initialize capability that announces it. */
export const LIST_CHANGED: Readonly<Record<string, string>> = {
  tools: 'notifications/tools/list_changed',
  resources: 'notifications/resources/list_changed',
  prompts: 'notifications/prompts/list_changed',
};

function param(params: unknown, key: string): string {
  if (typeof params !== 'object' || params === null) return '';
  const v = (params as Record<string, unknown>)[key];
  return typeof v === 'string' ? v : '';
}

/**
 * The resource a request is decided on. A missing or malformed name decides as the empty
 * id, which no policy names by accident: such a request is denied unless a policy permits
 * every resource of that type.
 */
export function resourceOf(method: string, params: unknown, server: string): CedarResource {
  switch (method) {
    case 'tools/call':
      return { type: 'Tool', id: param(params, 'name') };
    case 'resources/read':
    case 'resources/subscribe':
      return { type: 'Resource', id: param(params, 'uri') };
    case 'prompts/get':
      return { type: 'Prompt', id: param(params, 'name') };
    case 'completion/complete': {
      const ref = typeof params === 'object' && params !== null ? (params as Record<string, unknown>)['ref'] : undefined;
      if (param(ref, 'type') === 'ref/resource') return { type: 'Resource', id: param(ref, 'uri') };
      return { type: 'Prompt', id: param(ref, 'name') };
    }
    default:
      return { type: 'Server', id: server };
  }
}

/** The entity attributes the schema declares for a resource. */
export function resourceAttrs(resource: CedarResource): Record<string, string> {
  switch (resource.type) {
    case 'Tool':
    case 'Prompt':
      return { name: resource.id };
    case 'Resource':
      return { uri: resource.id };
    default:
      return {};
  }
}

/**
 * JSON-RPC error codes of pqmcp's refusals (implementation-defined server errors, clear of
 * the SDK's -32000..-32002 and MCP's -32042). Stable.
 */
export const PolicyErrorCode = {
  /** The policy does not permit this request. */
  denied: -32003,
  /** A quota is exhausted; error.data says which and when to retry. */
  quotaExceeded: -32004,
} as const;
