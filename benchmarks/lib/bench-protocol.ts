/**
 * The byte-level protocol the throughput, latency and memory benchmarks speak over every
 * channel (plain ws, wss, pqmcp), identical on all of them. One application message = one
 * tag byte + payload:
 *
 *   0x00 SINK     client -> server data; the server counts it and drops it
 *   0x01 CONTROL  UTF-8 JSON, either direction (see ControlRequest / ControlReply)
 *   0x02 ECHO     client -> server; the server sends the same bytes straight back
 *   0x03 SOURCE   server -> client data
 *
 *   { op: 'sink', count }          the next `count` SINK messages; reply { op: 'done', bytes } after the last
 *   { op: 'source', count, size }  the server streams `count` SOURCE messages of `size` bytes; no reply
 *   { op: 'cpu' }                  reply { op: 'cpu', micros }: the server process's CPU time so far
 *
 * Sharp edges:
 * - Payload sizes in the results are application message sizes (tag byte included), the
 *   same number of bytes on every channel; pqmcp's record overhead is its own cost.
 * - Senders honour backpressure the same way everywhere: send() resolves at once while
 *   the bytes not yet handed to the OS stay under the high-water mark, else once they drain.
 */
export const Tag = { sink: 0x00, control: 0x01, echo: 0x02, source: 0x03 } as const;

export type ControlRequest = { op: 'sink'; count: number } | { op: 'source'; count: number; size: number } | { op: 'cpu' };
export type ControlReply = { op: 'done'; bytes: number } | { op: 'cpu'; micros: number };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeControl(message: ControlRequest | ControlReply): Uint8Array {
  const json = encoder.encode(JSON.stringify(message));
  const out = new Uint8Array(json.length + 1);
  out[0] = Tag.control;
  out.set(json, 1);
  return out;
}

export function decodeControl<T extends ControlRequest | ControlReply>(data: Uint8Array): T {
  return JSON.parse(decoder.decode(data.subarray(1))) as T;
}

/** A message of `size` bytes (>= 1) with `tag` first; the rest is filler. */
export function payload(tag: number, size: number): Uint8Array {
  const out = new Uint8Array(Math.max(1, size)).fill(0x61);
  out[0] = tag;
  return out;
}

export function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/**
 * Server side: returns the onmessage handler for one connection, given that connection's
 * backpressure-aware send.
 */
export function benchProtocolHandler(send: (data: Uint8Array) => Promise<void>): (data: Uint8Array) => void {
  let expected = 0;
  let received = 0;
  let bytes = 0;
  const reply = (m: ControlReply) => void send(encodeControl(m)).catch(() => {});
  const stream = async (count: number, size: number) => {
    const data = payload(Tag.source, size);
    for (let i = 0; i < count; i++) await send(data);
  };
  return (data) => {
    switch (data[0]) {
      case Tag.sink:
        received++;
        bytes += data.length;
        if (received === expected) {
          reply({ op: 'done', bytes });
          expected = 0;
        }
        return;
      case Tag.echo:
        void send(data).catch(() => {});
        return;
      case Tag.control: {
        const m = decodeControl<ControlRequest>(data);
        if (m.op === 'sink') {
          expected = m.count;
          received = 0;
          bytes = 0;
        } else if (m.op === 'source') {
          stream(m.count, m.size).catch(() => {});
        } else if (m.op === 'cpu') {
          reply({ op: 'cpu', micros: cpuMicros() });
        }
        return;
      }
    }
  };
}
