// A KV store over the Upstash Redis REST API (also Vercel KV, and SRH, the local emulator).
//
// `store.command(args, signal)` performs one Redis command (an array of strings) and answers in the
// host reply encoding the core expects:
//   Redis nil → null; integer → number; string → string ('OK' for a simple OK); array → array
//   (nested nil → null); a Redis error reply (NOSCRIPT …, ERR …) → returned as { error: '<text>' }.
// Transport failures are thrown as AgentToolsError:
//   CANCELLED       the caller's signal fired (at once: no further attempt, no backoff wait);
//   TIMEOUT         every attempt ran past `timeoutMs` (the last failure was a timeout);
//   HOST_ERROR      network error or HTTP 5xx after all retries; 401/403 and other statuses (never
//                   retried); details: { status?, attempts };
//   HOST_BAD_REPLY  a 2xx whose body is not the JSON `{"result": …}` Upstash sends (an HTML page
//                   from a proxy, a truncated body, a value of the wrong type). Not retried: the
//                   server answered, so the command may well have run.
//   INVALID_ARGUMENT bad constructor options, missing environment variables, args not strings.
//
// Wire: `POST <url>` with `Content-Type: application/json`, body `JSON.stringify(args)`, and the
// token ONLY in `Authorization: Bearer …` — never in the URL (Upstash also accepts `?_token=`; we
// don't use it), never in an error message, `details` or a log line. Every text that can end up in
// an error is also scrubbed of the token, as a second line of defence.
//
// Encoding: plain JSON, no `Upstash-Encoding: base64`. Upstash then replaces bytes that are not
// valid UTF-8 with U+FFFD, so this store is not binary-safe; the host contract is JS strings anyway
// and the lock protocol stores only ASCII (keys, owner values, integers). base64 would cost a
// decode of every string for no gain here.
//
// Retries: network errors, per-attempt timeouts and HTTP 5xx are retried up to `retries` times
// (default 2, so at most 3 attempts) with exponential backoff and full jitter:
// delay = random() * min(maxBackoffMs, backoffMs * 2^attempt). 4xx is never retried (400 + {error}
// is a Redis error reply and is returned as { error }). Retrying is NOT exactly-once: a request
// that timed out, or whose connection dropped, or that got a 5xx from a gateway, may already have
// run on the server. For reads that is harmless; for writes (INCR, SET NX, DEL, the lock scripts) a
// retry can execute the command twice, and the second reply describes the state after the first
// execution (SET NX → null, DEL → 0, the acquire script → "held by <my own value>"). With
// `retryNonIdempotent: false` only read-only commands are retried and a failed write throws instead
// (leaving the caller to find out what happened). The default is `true`: the lock core's owner
// design (unique owner values, compare-by-value scripts) is what makes a repeated execution safe.
//
// Read-your-writes: like the official client, the last `upstash-sync-token` response header is sent
// back on the next request (`readYourWrites`, default true), so a read replica answers only once it
// has caught up with this store's writes.
//
// Runs in Node ≥ 20, workerd, Vercel Edge and browsers: only fetch, AbortController, setTimeout.
import { AgentToolsError } from '#internal/errors.js';
import { ErrorCode } from '#internal/generated/constants.js';

// Commands whose repetition cannot change state or a later reply. Everything else counts as a write.
const READ_ONLY = new Set([
  'GET', 'MGET', 'STRLEN', 'GETRANGE', 'EXISTS', 'TYPE', 'TTL', 'PTTL', 'EXPIRETIME', 'PEXPIRETIME',
  'SCAN', 'KEYS', 'DBSIZE', 'PING', 'ECHO', 'TIME', 'HGET', 'HMGET', 'HGETALL', 'HEXISTS', 'HLEN',
  'HKEYS', 'HVALS', 'HSCAN', 'LRANGE', 'LLEN', 'LINDEX', 'SMEMBERS', 'SISMEMBER', 'SCARD', 'SSCAN',
  'ZRANGE', 'ZSCORE', 'ZCARD', 'ZRANK', 'ZSCAN', 'EVAL_RO', 'EVALSHA_RO',
]);

const DEFAULTS = Object.freeze({ timeoutMs: 5000, retries: 2, backoffMs: 50, maxBackoffMs: 2000 });

/** True when repeating `args` cannot change the data (used with `retryNonIdempotent: false`). */
export function isReadOnlyCommand(args) {
  const name = String(args?.[0] ?? '').toUpperCase();
  if (name === 'SCRIPT') return ['LOAD', 'EXISTS'].includes(String(args[1] ?? '').toUpperCase());
  return READ_ONLY.has(name);
}

export class UpstashRestStore {
  #endpoint;
  #authorization;
  #token;
  #fetch;
  #timeoutMs;
  #retries;
  #backoffMs;
  #maxBackoffMs;
  #random;
  #retryNonIdempotent;
  #readYourWrites;
  #syncToken = '';

  /**
   * @param {object} options
   * @param {string} options.url    REST URL, e.g. https://xyz.upstash.io (trailing '/' ignored)
   * @param {string} options.token  REST token (sent only as `Authorization: Bearer`)
   * @param {typeof fetch} [options.fetch]  defaults to globalThis.fetch
   * @param {number} [options.timeoutMs=5000]  per attempt, including reading the body
   * @param {number} [options.retries=2]       extra attempts after the first
   * @param {number} [options.backoffMs=50]    backoff base; attempt n waits random()*min(max, base*2^n)
   * @param {number} [options.maxBackoffMs=2000]
   * @param {() => number} [options.random=Math.random]  jitter source in [0, 1)
   * @param {boolean} [options.retryNonIdempotent=true]  see the note on retries above
   * @param {boolean} [options.readYourWrites=true]      send back `upstash-sync-token`
   */
  constructor(options = {}) {
    const { url, token } = options;
    if (typeof url !== 'string' || !/^https?:\/\/[^\s/?#]+/i.test(url)) {
      throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, 'UpstashRestStore: `url` must be an http(s) URL');
    }
    if (typeof token !== 'string' || token.length === 0) {
      throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, 'UpstashRestStore: `token` must be a non-empty string');
    }
    let endpoint;
    try {
      endpoint = new URL(url);
    } catch {
      throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, 'UpstashRestStore: `url` is not a valid URL');
    }
    if (endpoint.username || endpoint.password || endpoint.search || endpoint.hash) {
      throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT,
        'UpstashRestStore: `url` must not carry credentials, a query or a fragment; pass the token as `token`');
    }
    this.#endpoint = url.replace(/\/+$/, '');
    this.#token = token;
    this.#authorization = `Bearer ${token}`;

    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== 'function') {
      throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, 'UpstashRestStore: no `fetch` available; pass one as `fetch`');
    }
    // Called unbound: some runtimes reject a fetch invoked with `this` set to another object.
    this.#fetch = options.fetch ? (input, init) => fetchImpl(input, init) : (input, init) => globalThis.fetch(input, init);
    this.#timeoutMs = nonNegative('timeoutMs', options.timeoutMs ?? DEFAULTS.timeoutMs, 1);
    this.#retries = Math.floor(nonNegative('retries', options.retries ?? DEFAULTS.retries, 0));
    this.#backoffMs = nonNegative('backoffMs', options.backoffMs ?? DEFAULTS.backoffMs, 0);
    this.#maxBackoffMs = nonNegative('maxBackoffMs', options.maxBackoffMs ?? DEFAULTS.maxBackoffMs, 0);
    this.#random = typeof options.random === 'function' ? options.random : Math.random;
    this.#retryNonIdempotent = options.retryNonIdempotent ?? true;
    this.#readYourWrites = options.readYourWrites ?? true;
  }

  /**
   * A store from environment variables: UPSTASH_REDIS_REST_URL/UPSTASH_REDIS_REST_TOKEN (preferred,
   * as in @upstash/redis) or KV_REST_API_URL/KV_REST_API_TOKEN (Vercel KV). `env` defaults to
   * `globalThis.process?.env`; on Workers pass the `env` binding. The error names the missing
   * variable, never a value.
   */
  static fromEnv(env = globalThis.process?.env, options = {}) {
    const vars = env ?? {};
    const has = (name) => typeof vars[name] === 'string' && vars[name].length > 0;
    const pairs = [
      ['UPSTASH_REDIS_REST_URL', 'UPSTASH_REDIS_REST_TOKEN'],
      ['KV_REST_API_URL', 'KV_REST_API_TOKEN'],
    ];
    const pair = pairs.find(([u, t]) => has(u) || has(t));
    if (!pair) {
      throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT,
        'UpstashRestStore.fromEnv: set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN (or KV_REST_API_URL and KV_REST_API_TOKEN)',
        { details: { missing: ['UPSTASH_REDIS_REST_URL', 'UPSTASH_REDIS_REST_TOKEN'] } });
    }
    const missing = pair.filter((name) => !has(name));
    if (missing.length > 0) {
      throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT,
        `UpstashRestStore.fromEnv: environment variable ${missing.join(' and ')} is not set`,
        { details: { missing } });
    }
    return new UpstashRestStore({ ...options, url: vars[pair[0]], token: vars[pair[1]] });
  }

  /** The REST endpoint (no credentials in it). */
  get url() {
    return this.#endpoint;
  }

  /** Never shows the token. */
  toJSON() {
    return { url: this.#endpoint };
  }

  /**
   * One Redis command. Resolves with the reply in host encoding or `{ error }` for a Redis error
   * reply; rejects with AgentToolsError (CANCELLED, TIMEOUT, HOST_ERROR, HOST_BAD_REPLY).
   */
  async command(args, signal) {
    if (!Array.isArray(args) || args.length === 0) {
      throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, 'command: args must be a non-empty array of strings');
    }
    const body = JSON.stringify(args.map((a, i) => {
      if (typeof a === 'string') return a;
      if (typeof a === 'number' && Number.isFinite(a)) return String(a);
      throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, `command: argument ${i} is ${typeof a}, not a string`);
    }));
    if (signal?.aborted) throw cancelled();
    const mayRetry = this.#retryNonIdempotent || isReadOnlyCommand(args);
    const attempts = 1 + (mayRetry ? this.#retries : 0);
    let failure;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        const cap = Math.min(this.#maxBackoffMs, this.#backoffMs * 2 ** (attempt - 1));
        await sleep(this.#random() * cap, signal);
      }
      const outcome = await this.#attempt(body, signal);
      if (!outcome.retry) return outcome.reply;
      failure = outcome;
    }
    const count = attempts === 1 ? '1 attempt' : `${attempts} attempts`;
    throw new AgentToolsError(failure.code, this.#scrub(`Upstash REST ${String(args[0]).toUpperCase()} failed after ${count}: ${failure.reason}`), {
      details: failure.status === undefined ? { attempts } : { attempts, status: failure.status },
    });
  }

  // One HTTP exchange. Returns { reply } or { retry: true, code, reason, status? }; throws what must
  // not be retried.
  async #attempt(body, signal) {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#timeoutMs);
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const headers = { 'Content-Type': 'application/json', Authorization: this.#authorization };
      if (this.#readYourWrites && this.#syncToken) headers['upstash-sync-token'] = this.#syncToken;
      let response;
      let text;
      try {
        response = await this.#fetch(this.#endpoint, {
          method: 'POST',
          headers,
          body,
          signal: controller.signal,
          // A redirect would carry the Authorization header to wherever it points; Upstash never
          // redirects, so a 3xx is an error rather than followed.
          redirect: 'manual',
        });
        text = await response.text();
      } catch (error) {
        if (signal?.aborted) throw cancelled();
        if (timedOut) return { retry: true, code: ErrorCode.TIMEOUT, reason: `no answer within ${this.#timeoutMs} ms` };
        return { retry: true, code: ErrorCode.HOST_ERROR, reason: `network error: ${describe(error)}` };
      }
      if (signal?.aborted) throw cancelled();
      const status = response.status;
      if (this.#readYourWrites) {
        const sync = response.headers?.get?.('upstash-sync-token');
        if (sync) this.#syncToken = sync;
      }
      if (status >= 500) {
        return { retry: true, code: ErrorCode.HOST_ERROR, status, reason: `HTTP ${status}${errorText(text)}` };
      }
      if (status === 400) {
        const parsed = parseJson(text);
        if (parsed && typeof parsed.error === 'string') return { reply: { error: parsed.error } };
        throw new AgentToolsError(ErrorCode.HOST_ERROR, this.#scrub(`Upstash REST: HTTP 400${errorText(text)}`), { details: { status } });
      }
      if (status === 401 || status === 403) {
        throw new AgentToolsError(ErrorCode.HOST_ERROR,
          this.#scrub(`Upstash REST: HTTP ${status}, the token was rejected (check UPSTASH_REDIS_REST_TOKEN / KV_REST_API_TOKEN)${errorText(text)}`),
          { details: { status } });
      }
      if (status < 200 || status > 299) {
        throw new AgentToolsError(ErrorCode.HOST_ERROR, this.#scrub(`Upstash REST: HTTP ${status}${errorText(text)}`), { details: { status } });
      }
      const parsed = parseJson(text);
      if (parsed === undefined || parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw new AgentToolsError(ErrorCode.HOST_BAD_REPLY,
          this.#scrub(`Upstash REST: the response body is not the expected JSON object: ${snippet(text)}`), { details: { status } });
      }
      if (typeof parsed.error === 'string') return { reply: { error: parsed.error } };
      if (!('result' in parsed) || !isReply(parsed.result, 0)) {
        throw new AgentToolsError(ErrorCode.HOST_BAD_REPLY,
          this.#scrub(`Upstash REST: the response has no valid "result": ${snippet(text)}`), { details: { status } });
      }
      return { reply: parsed.result };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  #scrub(text) {
    return text.split(this.#token).join('[redacted]');
  }
}

function nonNegative(name, value, min) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, `UpstashRestStore: \`${name}\` must be a number ≥ ${min}`);
  }
  return value;
}

function cancelled() {
  return new AgentToolsError(ErrorCode.CANCELLED, 'the KV command was cancelled');
}

// Waits ms, or rejects with CANCELLED as soon as the signal fires.
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled());
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelled());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// Host encoding: null, number, string or an array of those (bounded depth).
function isReply(value, depth) {
  if (value === null || typeof value === 'string') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value) && depth < 64) return value.every((v) => isReply(v, depth + 1));
  return false;
}

// The server's {"error": …} text for a message, or a short snippet of a body that is not one.
function errorText(text) {
  const parsed = parseJson(text);
  if (parsed && typeof parsed.error === 'string') return `: ${parsed.error.slice(0, 300)}`;
  return text ? `: ${snippet(text)}` : '';
}

function snippet(text) {
  const s = String(text ?? '').replace(/\s+/g, ' ').trim();
  if (s === '') return '(empty body)';
  return JSON.stringify(s.length > 120 ? `${s.slice(0, 120)}…` : s);
}

// The error's name and message and those of its causes (undici puts the socket error in `cause`),
// as text only: the error objects themselves are not attached.
function describe(error) {
  const parts = [];
  let e = error;
  for (let i = 0; e && i < 3; i++, e = e.cause) {
    parts.push(e instanceof Error ? `${e.name}: ${e.message}${e.code ? ` (${e.code})` : ''}` : String(e));
  }
  return parts.join(' ← ').slice(0, 400);
}
