/**
 * The MCP reference server (`@modelcontextprotocol/server-everything`) seen from a client:
 * the tools it lists, answers valid for its elicitation schemas, and an SDK Client with every
 * client capability it exercises (sampling, form and URL elicitation, roots, task-augmented
 * requests) whose handlers record what the server asked. Shared by the transport test (SDK
 * Client over pqmcp) and the CLI test (SDK Client over `pqmcp connect`).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTaskStore } from '@modelcontextprotocol/sdk/experimental/tasks';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { CallToolResult, CreateMessageResult, ElicitResult } from '@modelcontextprotocol/sdk/types.js';

/** The server's tools at this version; a tool missing from the runtime list fails the sweep. */
export const EXPECTED_TOOLS = [
  'echo',
  'get-annotated-message',
  'get-env',
  'get-resource-links',
  'get-resource-reference',
  'get-structured-content',
  'get-sum',
  'get-tiny-image',
  'gzip-file-as-resource',
  'toggle-simulated-logging',
  'toggle-subscriber-updates',
  'trigger-long-running-operation',
  // Registered after initialized, depending on client capabilities:
  'get-roots-list',
  'trigger-elicitation-request',
  'trigger-url-elicitation',
  'trigger-sampling-request',
  'simulate-research-query',
  'trigger-sampling-request-async',
  'trigger-elicitation-request-async',
] as const;
export type ToolName = (typeof EXPECTED_TOOLS)[number];

/** The root the client offers (roots/list). */
export const EVERYTHING_ROOT = { uri: 'file:///srv/pqmcp-workspace', name: 'pqmcp workspace' };
/** The model name the client's sampling handler answers with. */
export const SAMPLING_MODEL = 'pqmcp-test-model';

export type JsonSchema = { type?: string; enum?: unknown[]; oneOf?: Array<{ const?: unknown }>; format?: string; default?: unknown; minimum?: number; items?: JsonSchema & { anyOf?: Array<{ const?: unknown }> }; properties?: Record<string, JsonSchema>; required?: string[] };

/** A value valid for a JSON schema property (used for elicitation answers and unknown tools). */
export function sampleValue(name: string, schema: JsonSchema): unknown {
  if (schema.enum?.length) return schema.enum[0];
  if (schema.oneOf?.length) return schema.oneOf[0]?.const;
  if (schema.default !== undefined) return schema.default;
  switch (schema.type) {
    case 'boolean':
      return true;
    case 'integer':
    case 'number':
      return schema.minimum ?? 7;
    case 'array':
      return [schema.items?.enum?.[0] ?? schema.items?.anyOf?.[0]?.const ?? 'x'];
    case 'string':
      if (schema.format === 'email') return 'ada@example.com';
      if (schema.format === 'uri') return 'https://example.com/ada';
      if (schema.format === 'date') return '1815-12-10';
      return name === 'name' ? 'Ada Lovelace' : `pqmcp-${name}`;
    default:
      return 'pqmcp';
  }
}

/** An object valid for `schema`: every property, or only the required ones. */
export function sampleObject(schema: JsonSchema, onlyRequired = false): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    if (onlyRequired && !(schema.required ?? []).includes(name)) continue;
    out[name] = sampleValue(name, prop);
  }
  return out;
}

type Content = CallToolResult['content'][number];

export function texts(result: { content?: unknown }): string[] {
  return ((result.content ?? []) as Content[]).flatMap((c) => (c.type === 'text' ? [c.text] : []));
}

export function allText(result: { content?: unknown }): string {
  return texts(result).join('\n');
}

/** What the server asked of the client and told it, as the client's handlers saw it. */
export interface ClientSeen {
  /** Server -> client requests the client's handlers answered. */
  sampling: string[];
  samplingTasks: number;
  elicitForm: string[];
  elicitUrl: string[];
  elicitTasks: number;
  /** Elicitations that arrived through tasks/result for a server-side task. */
  elicitRelatedTask: number;
  rootsRequests: number;
  logs: string[];
  updates: string[];
  toolListChanged: number;
}

export function newClientSeen(): ClientSeen {
  return { sampling: [], samplingTasks: 0, elicitForm: [], elicitUrl: [], elicitTasks: 0, elicitRelatedTask: 0, rootsRequests: 0, logs: [], updates: [], toolListChanged: 0 };
}

type TaskExtra = { taskStore?: { createTask(o: { ttl?: number | null }): Promise<{ taskId: string }>; storeTaskResult(id: string, s: 'completed', r: never): Promise<void> } };

/** Answer a task-augmented request as a client-side task that completes a moment later. */
async function asTask(extra: TaskExtra, ttl: number | null | undefined, result: object): Promise<{ task: { taskId: string } }> {
  const store = extra.taskStore;
  if (!store) throw new Error('task-augmented request without a task store');
  const task = await store.createTask({ ttl: ttl ?? 60_000 });
  setTimeout(() => void store.storeTaskResult(task.taskId, 'completed', result as never).catch(() => {}), 5);
  return { task };
}

/**
 * An SDK Client with every capability server-everything exercises; its handlers answer
 * sampling, elicitation (form, URL, as tasks) and roots, and record everything in `seen`.
 */
export function everythingClient(name: string, seen: ClientSeen): { client: Client; taskStore: InMemoryTaskStore } {
  const taskStore = new InMemoryTaskStore();
  const client = new Client(
    { name, version: '1.0.0' },
    {
      capabilities: {
        sampling: {},
        elicitation: { form: {}, url: {} },
        roots: { listChanged: true },
        tasks: { requests: { sampling: { createMessage: {} }, elicitation: { create: {} } } },
      },
      taskStore,
    },
  );
  client.setRequestHandler(CreateMessageRequestSchema, async (request, extra) => {
    const first = request.params.messages[0]?.content;
    const prompt = first && !Array.isArray(first) && first.type === 'text' ? first.text : '';
    const result: CreateMessageResult = { model: SAMPLING_MODEL, role: 'assistant', stopReason: 'endTurn', content: { type: 'text', text: `model heard: ${prompt}` } };
    if (request.params.task) {
      seen.samplingTasks++;
      return (await asTask(extra as TaskExtra, request.params.task.ttl, result)) as never;
    }
    seen.sampling.push(prompt);
    return result;
  });
  client.setRequestHandler(ElicitRequestSchema, async (request, extra) => {
    const params = request.params;
    if (params.mode === 'url') {
      seen.elicitUrl.push(params.url);
      return { action: 'accept' };
    }
    const result: ElicitResult = { action: 'accept', content: sampleObject(params.requestedSchema as JsonSchema) as ElicitResult['content'] };
    if (params.task) {
      seen.elicitTasks++;
      return (await asTask(extra as TaskExtra, params.task.ttl, result)) as never;
    }
    if (params._meta?.['io.modelcontextprotocol/related-task'] !== undefined) seen.elicitRelatedTask++;
    seen.elicitForm.push(params.message);
    return result;
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    seen.rootsRequests++;
    return { roots: [EVERYTHING_ROOT] };
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void seen.logs.push(String(n.params.data)));
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void seen.updates.push(n.params.uri));
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => void seen.toolListChanged++);
  return { client, taskStore };
}
