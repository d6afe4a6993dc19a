// KV stores over Redis clients the application already has. Each returns `{ command(args, signal) }`
// answering in the host reply encoding (see kv-upstash-rest.js): nil → null, integer → number,
// string → string, array → array; a Redis error reply → { error: '<text>' } (returned, not thrown);
// transport failures → AgentToolsError thrown (CANCELLED, TIMEOUT, HOST_ERROR, HOST_BAD_REPLY).
import { AgentToolsError } from '#internal/errors.js';
import { ErrorCode } from '#internal/generated/constants.js';

const DEFAULT_TIMEOUT_MS = 5000;

/**
 * Wraps an `@upstash/redis` `Redis` instance (or a `@vercel/kv` client: the same class).
 *
 * The official client JSON-parses replies by default (`get` of "1" gives 1, of '{"a":1}' an object),
 * which cannot be undone exactly. So commands go through the client's HTTP requester
 * (`redis.client.request`, the same call its own pipelines make) to `/pipeline` with one command:
 * the reply comes back base64-decoded (the client's encoding) but not deserialized, and a Redis
 * error arrives as an item `{error}` in a 200 response instead of an exception whose message has the
 * command appended. `client` is a `protected` field in the TypeScript types but a plain property at
 * run time in every 1.x release; the client's headers, token, read-your-writes token, telemetry
 * setting and retry policy (it retries network errors only, 5 times by default) all apply.
 *
 * If a future release hides the requester, the fallback is the public `redis.exec(args)`, which
 * requires the client to be built with `automaticDeserialization: false` (else this throws
 * INVALID_ARGUMENT) and recognises Redis errors by their upper-case prefix (`ERR …`, `NOSCRIPT …`).
 *
 * @param {object} redis  an @upstash/redis Redis instance
 * @param {{timeoutMs?: number}} [options]  overall limit per command (the client's own retries
 *   included), default 5000; 0 disables it
 */
export function fromUpstashClient(redis, options = {}) {
  if (!redis || typeof redis !== 'object') {
    throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, 'fromUpstashClient: expected an @upstash/redis Redis instance');
  }
  const timeoutMs = timeoutOption('fromUpstashClient', options.timeoutMs);
  const requester = redis.client;
  if (requester && typeof requester.request === 'function') {
    return {
      command: (args, signal) => run(args, signal, timeoutMs, async (s) => {
        const items = await requester.request({ path: ['pipeline'], body: [stringArgs(args)], signal: s });
        if (s.aborted) return undefined; // the client turns an abort into a fake 200; run() reports it
        const item = Array.isArray(items) ? items[0] : undefined;
        if (!item || typeof item !== 'object') {
          throw new AgentToolsError(ErrorCode.HOST_BAD_REPLY, 'Upstash REST: the pipeline response has no item for the command');
        }
        if (typeof item.error === 'string') return { error: item.error };
        if (item.result === undefined) {
          throw new AgentToolsError(ErrorCode.HOST_BAD_REPLY, 'Upstash REST: the pipeline item has no "result"');
        }
        return toHostReply(item.result);
      }, upstashFailure),
    };
  }
  if (typeof redis.exec !== 'function') {
    throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, 'fromUpstashClient: the client has neither a requester nor exec()');
  }
  if (redis.opts?.automaticDeserialization !== false) {
    throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT,
      'fromUpstashClient: this client version needs `new Redis({ ..., automaticDeserialization: false })` so replies stay raw');
  }
  return {
    command: (args, signal) => run(args, signal, timeoutMs, async () => toHostReply(await redis.exec(stringArgs(args))), (error) => {
      const message = typeof error?.message === 'string' ? error.message.replace(/, command was: [\s\S]*$/, '') : '';
      if (error?.name === 'UpstashError' && isRedisErrorText(message)) return { error: message };
      return upstashFailure(error);
    }),
  };
}

/**
 * Wraps a node-redis client (v4, v5, v6: `createClient()` from `redis` or `@redis/client`) through
 * `client.sendCommand(args)`. Buffers (a client with a Buffer type mapping) are decoded as UTF-8;
 * RESP3 maps become flat [key, value, …] arrays, RESP3 booleans 1 / null (as Lua booleans are in
 * RESP2), doubles their decimal text. ErrorReply → { error }; anything else (closed client, socket
 * error) → HOST_ERROR.
 *
 * @param {{sendCommand: Function}} client  a connected node-redis client
 * @param {{timeoutMs?: number}} [options]  limit per command, default 5000; 0 disables it
 */
export function fromNodeRedis(client, options = {}) {
  if (!client || typeof client.sendCommand !== 'function') {
    throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, 'fromNodeRedis: expected a node-redis client (with sendCommand)');
  }
  const timeoutMs = timeoutOption('fromNodeRedis', options.timeoutMs);
  return {
    // v5/v6 read `abortSignal`, v4 `signal`: an abort takes the command off the queue if it has not
    // been written yet. run() settles at once either way.
    command: (args, signal) => run(args, signal, timeoutMs,
      async (s) => toHostReply(await client.sendCommand(stringArgs(args), { abortSignal: s, signal: s })),
      (error) => (isNodeRedisErrorReply(error) ? { error: error.message } : hostError(error))),
  };
}

// Runs one command with the caller's signal and a timeout combined; maps failures with `onError`
// (which returns a reply for Redis error replies, or an AgentToolsError to throw).
async function run(args, signal, timeoutMs, perform, onError) {
  if (signal?.aborted) throw cancelled();
  const controller = new AbortController();
  let timedOut = false;
  let timer;
  let rejectEarly;
  const early = new Promise((_, reject) => { rejectEarly = reject; });
  early.catch(() => {});
  const onAbort = () => {
    controller.abort();
    rejectEarly(cancelled());
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  if (timeoutMs > 0) {
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
      rejectEarly(new AgentToolsError(ErrorCode.TIMEOUT, `the KV command ${commandName(args)} got no answer within ${timeoutMs} ms`));
    }, timeoutMs);
  }
  try {
    let reply;
    try {
      reply = await Promise.race([perform(controller.signal), early]);
    } catch (error) {
      if (error instanceof AgentToolsError) throw error;
      if (signal?.aborted) throw cancelled();
      if (timedOut) throw new AgentToolsError(ErrorCode.TIMEOUT, `the KV command ${commandName(args)} got no answer within ${timeoutMs} ms`);
      const mapped = onError(error);
      if (mapped instanceof AgentToolsError) throw mapped;
      return mapped;
    }
    if (signal?.aborted) throw cancelled();
    if (timedOut) throw new AgentToolsError(ErrorCode.TIMEOUT, `the KV command ${commandName(args)} got no answer within ${timeoutMs} ms`);
    return reply;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

function timeoutOption(where, value) {
  const ms = value ?? DEFAULT_TIMEOUT_MS;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, `${where}: \`timeoutMs\` must be a number ≥ 0`);
  }
  return ms;
}

function stringArgs(args) {
  if (!Array.isArray(args) || args.length === 0) {
    throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, 'command: args must be a non-empty array of strings');
  }
  return args.map((a, i) => {
    if (typeof a === 'string') return a;
    if (typeof a === 'number' && Number.isFinite(a)) return String(a);
    throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, `command: argument ${i} is ${typeof a}, not a string`);
  });
}

function commandName(args) {
  return String(args?.[0] ?? '').toUpperCase();
}

function cancelled() {
  return new AgentToolsError(ErrorCode.CANCELLED, 'the KV command was cancelled');
}

const textDecoder = new TextDecoder();

// Any client reply → host encoding.
function toHostReply(value, depth = 0) {
  if (depth > 64) throw new AgentToolsError(ErrorCode.HOST_BAD_REPLY, 'KV reply nested too deeply');
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      return Number.isInteger(value) ? value : String(value);
    case 'bigint':
      return Number.isSafeInteger(Number(value)) ? Number(value) : String(value);
    case 'boolean':
      return value ? 1 : null;
    default:
      break;
  }
  if (value instanceof Uint8Array) return textDecoder.decode(value);
  if (Array.isArray(value)) return value.map((v) => toHostReply(v, depth + 1));
  if (value instanceof Error) {
    throw new AgentToolsError(ErrorCode.HOST_BAD_REPLY, `KV reply holds a nested error reply: ${String(value.message).slice(0, 200)}`);
  }
  if (value instanceof Map) return [...value].flatMap(([k, v]) => [toHostReply(k, depth + 1), toHostReply(v, depth + 1)]);
  if (value instanceof Set) return [...value].map((v) => toHostReply(v, depth + 1));
  if (typeof value === 'object') {
    // node-redis VerbatimString is a String object; RESP3 maps without a type mapping are objects.
    if (value instanceof String) return value.valueOf();
    return Object.entries(value).flatMap(([k, v]) => [k, toHostReply(v, depth + 1)]);
  }
  throw new AgentToolsError(ErrorCode.HOST_BAD_REPLY, `KV reply of unexpected type ${typeof value}`);
}

// node-redis throws ErrorReply (SimpleError / BlobError in v5+) for a Redis error reply. Class
// names survive in node (no minifier); the upper-case prefix check covers renamed classes.
function isNodeRedisErrorReply(error) {
  if (!(error instanceof Error)) return false;
  for (let p = Object.getPrototypeOf(error); p && p !== Error.prototype; p = Object.getPrototypeOf(p)) {
    if (p.constructor?.name === 'ErrorReply') return true;
  }
  return error.constructor === Error && isRedisErrorText(error.message);
}

// A Redis error text: an upper-case code, a space, a message ("ERR …", "NOSCRIPT …"); auth errors
// are transport failures, not replies the core could act on.
function isRedisErrorText(message) {
  return /^[A-Z][A-Z_]+ /.test(message) && !/^(WRONGPASS|NOAUTH|NOPERM) /.test(message);
}

function upstashFailure(error) {
  if (error?.name === 'UpstashJSONParseError') {
    return new AgentToolsError(ErrorCode.HOST_BAD_REPLY, 'Upstash REST: the response body is not JSON');
  }
  if (error?.name === 'UpstashError') {
    // "<server error>, command was: [...]": keep the server's text only (the command holds values).
    const message = String(error.message ?? '').replace(/, command was: [\s\S]*$/, '').slice(0, 300);
    return new AgentToolsError(ErrorCode.HOST_ERROR, `Upstash REST: ${message}`);
  }
  return hostError(error);
}

function hostError(error) {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new AgentToolsError(ErrorCode.HOST_ERROR, `KV client failed: ${text.slice(0, 300)}`);
}
