/**
 * The browser example's page: loads this agent's key, credential and trust file (from the
 * example server's config.json: a real application gets them from wherever it keeps them),
 * keeps the key in IndexedDB under a non-extractable wrapping key, connects an SDK Client
 * through pqmcp, answers the server's elicitation and sampling requests, calls a tool, and
 * shows the verified server identity.
 *
 * ?case=untrusted   the page trusts another issuer only: the handshake is refused
 * ?case=wrong-id    the page expects another server agent id: refused
 * ?case=bench&n=N   N handshakes in a row, timed (the benchmark suite reads the result)
 *
 * Everything it shows is also in `window.pqmcpDemo`, which the browser test reads.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { PqmcpClientTransport, PqmcpError, loadStoredIdentity, storeIdentity, trustStoreFromContents } from 'pqmcp/browser';

interface DemoConfig {
  url: string;
  expectedServerId: string;
  key: object;
  credential: object;
  trust: object;
  otherTrust: object;
}

export interface DemoState {
  state: 'running' | 'done' | 'refused' | 'failed';
  serverId?: string;
  serverIssuer?: string;
  serverFingerprint?: string;
  suite?: string;
  handshakeMs?: number;
  tools?: string[];
  result?: string;
  serverRequests: string[];
  errorCode?: string;
  errorName?: string;
  errorMessage?: string;
  /** The transport's onclose fired (after a refusal). */
  closed?: boolean;
  benchMs?: number[];
}

const state: DemoState = { state: 'running', serverRequests: [] };
(globalThis as { pqmcpDemo?: DemoState }).pqmcpDemo = state;

const $ = (id: string): HTMLElement => document.getElementById(id)!;
function log(text: string): void {
  const li = document.createElement('li');
  li.textContent = text;
  $('log').append(li);
}
function row(list: string, name: string, value: string): void {
  const dt = document.createElement('dt');
  dt.textContent = name;
  const dd = document.createElement('dd');
  dd.textContent = value;
  $(list).append(dt, dd);
}
function status(text: string, cls: 'ok' | 'err' | ''): void {
  $('status').innerHTML = '';
  const span = document.createElement('span');
  span.className = cls;
  span.textContent = text;
  $('status').append(span);
}

function newClient(): Client {
  const client = new Client({ name: 'browser-planner', version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: {} } });
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    state.serverRequests.push('elicitation');
    log(`server asked the user: "${req.params.message}" -> yes`);
    return { action: 'accept', content: { confirm: true } };
  });
  client.setRequestHandler(CreateMessageRequestSchema, async () => {
    state.serverRequests.push('sampling');
    log('server asked this page\'s model for a summary -> answered');
    return { role: 'assistant', model: 'browser-model-1', content: { type: 'text', text: 'Canals, museums and stroopwafels.' } };
  });
  return client;
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const which = params.get('case') ?? 'demo';
  const config = (await (await fetch('./config.json')).json()) as DemoConfig;

  await storeIdentity('demo-planner', config.key, config.credential);
  const identity = (await loadStoredIdentity('demo-planner'))!;
  log(`identity ${identity.agentId} loaded from IndexedDB (key ${identity.fingerprint.slice(0, 16)}...)`);
  const trust = trustStoreFromContents(which === 'untrusted' ? config.otherTrust : config.trust);
  const expectedServerId = which === 'wrong-id' ? 'agent://demo.example/somebody-else' : config.expectedServerId;

  if (which === 'bench') {
    const n = Number(params.get('n') ?? '10');
    state.benchMs = [];
    for (let i = 0; i < n; i++) {
      const transport = new PqmcpClientTransport(config.url, { identity, trust, expectedServerId });
      const client = newClient();
      const t0 = performance.now();
      await client.connect(transport);
      state.benchMs.push(performance.now() - t0);
      await client.close();
    }
    state.state = 'done';
    status(`${n} handshakes done`, 'ok');
    return;
  }

  // 'no-server': nothing listens at ?port= (the test's closed port), so the WebSocket never opens.
  const url = which === 'no-server' ? `ws://127.0.0.1:${params.get('port')}/` : config.url;
  const transport = new PqmcpClientTransport(url, { identity, trust, expectedServerId });
  let closed = false;
  transport.onclose = () => void (closed = true);
  const client = newClient();
  const t0 = performance.now();
  try {
    await client.connect(transport);
  } catch (err) {
    const e = err as PqmcpError;
    // onclose follows the rejection (after the socket's close, bounded by closeTimeoutMs).
    for (let waited = 0; !closed && waited < 5000; waited += 10) await new Promise((r) => setTimeout(r, 10));
    Object.assign(state, { state: 'refused', errorCode: e.code, errorName: e.name, errorMessage: e.message, closed });
    status(`refused: ${e.name} (${e.code}): ${e.message}`, 'err');
    return;
  }
  const result = await transport.handshake;
  state.handshakeMs = performance.now() - t0;
  Object.assign(state, { serverId: result.peer.agentId, serverIssuer: result.peer.issuer, serverFingerprint: result.peer.fingerprint });
  row('server', 'agent id', result.peer.agentId);
  row('server', 'issuer', result.peer.issuer);
  row('server', 'key fingerprint', result.peer.fingerprint);
  row('server', 'scopes', result.peer.scopes.join(', '));
  row('session', 'backend', transport.backend ?? '');
  row('session', 'session id', `${transport.sessionId?.slice(0, 32)}...`);
  row('session', 'handshake', `${state.handshakeMs.toFixed(1)} ms to the initialize result`);

  state.tools = (await client.listTools()).tools.map((t) => t.name);
  log(`tools offered: ${state.tools.join(', ')}`);
  const call = await client.callTool({ name: 'book_trip', arguments: { destination: 'Amsterdam' } });
  state.result = (call.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('\n');
  log(`book_trip -> ${state.result}`);
  await client.close();
  state.state = 'done';
  status('connected, verified, called, closed', 'ok');
}

main().catch((err: unknown) => {
  const e = err as Partial<PqmcpError> & Error;
  Object.assign(state, { state: 'failed', errorCode: e.code, errorName: e.name, errorMessage: e.message });
  status(`failed: ${e.name}: ${e.message}`, 'err');
});
