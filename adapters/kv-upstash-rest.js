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
//   HOST_BAD_REPLY  a 2xx whose body is not the JSON Upstash sends (`{"result": …}`, or for a
//                   pipeline an array with one `{result}` / `{error}` per command): an HTML page
//                   from a proxy, a truncated body, a value of the wrong type. Not retried: the
//                   server answered, so the command may well have run.
//   INVALID_ARGUMENT bad constructor options, missing environment variables, args not strings.
//
// Wire: `POST <url>` with `Content-Type: application/json`, body `JSON.stringify(args)`, or
// `POST <url>/pipeline` with a JSON array of such commands (see auto-pipelining below), and the
// token ONLY in `Authorization: Bearer …` — never in the URL (Upstash also accepts `?_token=`; we
// don't use it), never in an error message, `details` or a log line. Every text that can end up in
// an error is also scrubbed of the token, as a second line of defence.
//
// Auto-pipelining (`autoPipeline`, default true; `false` sends one request per command): every
// command issued while a batch is open joins it, and the batch goes out as ONE `POST /pipeline`
// whose response is an array of `{result}` / `{error}`, one per command in order. Each caller still
// gets its own reply, its own `{ error }` for a Redis error, and its own typed failure.
// - When it flushes: the first command opens a batch and queues a microtask; when that microtask
//   runs, the batch is sent, unless it grew meanwhile, in which case it waits one more microtask
//   (at most 8 more). So commands issued in the same synchronous run, or in the same wave of promise
//   callbacks (64 lock operations resuming from one response), share a request, and a lone command
//   is never held back by a timer: it leaves in the same macrotask it was issued in. (That one
//   microtask still costs a lone command ~15 µs on loopback, because fetch's leftover work from the
//   previous response runs first. Sending the first command of a wave at once avoids it, but then
//   independent requests return at different times and batches never re-form: measured at 64
//   concurrent locks it fell back to one request per command. So every command waits its microtask.)
// - A batch of one command is sent to `/` exactly as with `autoPipeline: false`: its replies and
//   statuses are the plain single-command ones (a 400 `{error}` is that command's Redis error), and
//   on loopback it measured as fast as a one-element pipeline or up to ≈0.05 ms per acquire+release
//   faster.
// - Caps: at most 256 commands and 1 Mi UTF-16 units (≤ 3 MiB of UTF-8) of body per request; a
//   batch that reaches either leaves at once and the next command opens a new one. A command that
//   alone exceeds the byte cap is sent by itself (so only it can hit the server's request limit).
//   Why these: every request costs a fixed amount of client CPU (fetch, and the socket write), so
//   bigger batches give more throughput (64 concurrent locks on 2 cores: capping batches at 16 gave
//   ~55% and at 32 ~75% of the cycles/s of batches of 64); but every caller in a batch waits for
//   the whole response, and a failed request fails or retries all of it, so a batch should stay far
//   below the size where transfer and server time show. 256 lock commands are ~50 KB, and 256 is
//   above the concurrency one function instance normally has; Upstash bills per command, not per
//   request, and accepts bodies up to 10 MB.
// - A pipeline is NOT atomic (that is `/multi-exec`): commands run in order, but other clients'
//   commands may interleave, and each may fail on its own. Commands of one batch are unrelated
//   callers' commands anyway; nothing relies on them running together.
// - Failures apply to the request: a network error, timeout or 5xx of a pipeline request counts as a
//   failed attempt for every command in it, and the batch is retried as a whole (one backoff wait,
//   then one request with the commands still waiting). A command that may not be retried
//   (`retryNonIdempotent: false` and a write) or has used its attempts fails at that point with the
//   error; the others go on. A 2xx body that is not an array of the right length is HOST_BAD_REPLY
//   for every command in it; a single element of the wrong shape is HOST_BAD_REPLY for its command
//   only. 401/403, a 400 on the pipeline itself, and other statuses fail every command (HOST_ERROR).
// - Cancellation stays per command: a caller whose signal fires gets CANCELLED at once and its
//   reply is dropped; the request goes on for the others (it is aborted only when every command in
//   it has been cancelled). A command cancelled before its batch leaves is not sent.
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
// Transport: node:http(s) with keep-alive agents on Node (http-node.js: about a quarter of the
// CPU of Node's fetch per request), the global fetch in workerd, Vercel Edge and browsers
// (http-fetch.js), or the `fetch` given in the options on any runtime. `store.transport` says which.
// Otherwise only AbortController, setTimeout and queueMicrotask.
import { AgentToolsError } from '#internal/errors.js';
import { ErrorCode } from '#internal/generated/constants.js';
import { defaultTransport } from '#http-transport';
import { fetchTransport } from './http-fetch.js';

// Commands whose repetition cannot change state or a later reply. Everything else counts as a write.
const READ_ONLY = new Set([
  'GET', 'MGET', 'STRLEN', 'GETRANGE', 'EXISTS', 'TYPE', 'TTL', 'PTTL', 'EXPIRETIME', 'PEXPIRETIME',
  'SCAN', 'KEYS', 'DBSIZE', 'PING', 'ECHO', 'TIME', 'HGET', 'HMGET', 'HGETALL', 'HEXISTS', 'HLEN',
  'HKEYS', 'HVALS', 'HSCAN', 'LRANGE', 'LLEN', 'LINDEX', 'SMEMBERS', 'SISMEMBER', 'SCARD', 'SSCAN',
  'ZRANGE', 'ZSCORE', 'ZCARD', 'ZRANK', 'ZSCAN', 'EVAL_RO', 'EVALSHA_RO',
]);

const DEFAULTS = Object.freeze({ timeoutMs: 5000, retries: 2, backoffMs: 50, maxBackoffMs: 2000 });

// Auto-pipelining limits (see the header comment for the reasoning).
// The method KVLockManager's host calls with a command's JSON text (see js/src/kv-store.js).
const commandWithJson = Symbol.for('@growthub/agent-tools/kv-command-json');
const BATCH_MAX_COMMANDS = 256;
const BATCH_MAX_CHARS = 1 << 20; // UTF-16 units of the JSON body; ≤ 3 bytes each in UTF-8
const BATCH_MAX_WAITS = 8; // extra microtasks a growing batch may wait before it leaves

/** True when repeating `args` cannot change the data (used with `retryNonIdempotent: false`). */
export function isReadOnlyCommand(args) {
  const name = String(args?.[0] ?? '').toUpperCase();
  if (name === 'SCRIPT') return ['LOAD', 'EXISTS'].includes(String(args[1] ?? '').toUpperCase());
  return READ_ONLY.has(name);
}

export class UpstashRestStore {
  #endpoint;
  #pipelineUrl;
  #authorization;
  #token;
  #transport;
  #timeoutMs;
  #retries;
  #backoffMs;
  #maxBackoffMs;
  #random;
  #retryNonIdempotent;
  #readYourWrites;
  #autoPipeline;
  #syncToken = '';
  #open = null; // the batch still taking commands: { entries, chars, seen, waits }

  /**
   * @param {object} options
   * @param {string} options.url    REST URL, e.g. https://xyz.upstash.io (trailing '/' ignored)
   * @param {string} options.token  REST token (sent only as `Authorization: Bearer`)
   * @param {typeof fetch} [options.fetch]  send through this fetch instead of the runtime's
   *   transport (node:http on Node, the global fetch elsewhere)
   * @param {number} [options.timeoutMs=5000]  per attempt (per request), including reading the body
   * @param {number} [options.retries=2]       extra attempts after the first
   * @param {number} [options.backoffMs=50]    backoff base; attempt n waits random()*min(max, base*2^n)
   * @param {number} [options.maxBackoffMs=2000]
   * @param {() => number} [options.random=Math.random]  jitter source in [0, 1)
   * @param {boolean} [options.retryNonIdempotent=true]  see the note on retries above
   * @param {boolean} [options.readYourWrites=true]      send back `upstash-sync-token`
   * @param {boolean} [options.autoPipeline=true]        batch concurrent commands into one
   *   `POST /pipeline` (see above); false: one request per command
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
    this.#pipelineUrl = `${this.#endpoint}/pipeline`;
    this.#token = token;
    this.#authorization = `Bearer ${token}`;

    if (options.fetch !== undefined && typeof options.fetch !== 'function') {
      throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, 'UpstashRestStore: `fetch` must be a function');
    }
    this.#transport = options.fetch ? fetchTransport(options.fetch) : defaultTransport();
    if (!this.#transport) {
      throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, 'UpstashRestStore: no `fetch` available; pass one as `fetch`');
    }
    this.#timeoutMs = nonNegative('timeoutMs', options.timeoutMs ?? DEFAULTS.timeoutMs, 1);
    this.#retries = Math.floor(nonNegative('retries', options.retries ?? DEFAULTS.retries, 0));
    this.#backoffMs = nonNegative('backoffMs', options.backoffMs ?? DEFAULTS.backoffMs, 0);
    this.#maxBackoffMs = nonNegative('maxBackoffMs', options.maxBackoffMs ?? DEFAULTS.maxBackoffMs, 0);
    this.#random = typeof options.random === 'function' ? options.random : Math.random;
    this.#retryNonIdempotent = options.retryNonIdempotent ?? true;
    this.#readYourWrites = options.readYourWrites ?? true;
    this.#autoPipeline = options.autoPipeline ?? true;
    if (typeof this.#autoPipeline !== 'boolean') {
      throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, 'UpstashRestStore: `autoPipeline` must be a boolean');
    }
  }

  /** How requests go out: 'node:http' (Node's default) or 'fetch'. */
  get transport() {
    return this.#transport.name;
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
  command(args, signal) {
    // Not an async function: that would add promise hops to every reply. Errors still reject.
    let json;
    try {
      json = serialize(args);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#command(args, json, signal);
  }

  // command() for the lock operations, given as the JSON text of the args array, which the core
  // writes (JSON.stringify of the arguments was the largest cost of a command here). With
  // `answer`, the reply goes to answer(token, ok, value) instead of a promise (undefined is
  // returned): the driver's own callback, which saves each command a promise and its reactions.
  [commandWithJson](json, signal, answer, token) {
    return this.#command(null, json, signal, typeof answer === 'function' ? answer : null, token);
  }

  // `args` may be null (a command given as JSON only); it is then parsed only when needed.
  #command(args, json, signal, answer = null, token = undefined) {
    if (signal?.aborted) {
      if (!answer) return Promise.reject(cancelled());
      answer(token, false, cancelled());
      return undefined;
    }
    const mayRetry = this.#retryNonIdempotent || isReadOnlyCommand(args ?? parseJson(json));
    const entry = {
      json,
      maxAttempts: 1 + (mayRetry ? this.#retries : 0),
      signal,
      onAbort: null,
      flight: null, // the request loop this command is in, once its batch has left
      settled: false,
      answer, // answer(token, ok, value), or null: resolve/reject
      token,
      resolve: null,
      reject: null,
    };
    let promise;
    if (!answer) {
      promise = new Promise((resolve, reject) => {
        entry.resolve = resolve;
        entry.reject = reject;
      });
    }
    if (signal) {
      entry.onAbort = () => this.#cancel(entry);
      signal.addEventListener('abort', entry.onAbort, { once: true });
    }
    if (this.#autoPipeline) this.#enqueue(entry);
    else this.#run([entry]);
    return promise;
  }

  // ---- batching

  #enqueue(entry) {
    if (entry.json.length + 2 > BATCH_MAX_CHARS) {
      this.#run([entry]); // too big to share a request
      return;
    }
    let batch = this.#open;
    if (batch && batch.chars + entry.json.length + 1 > BATCH_MAX_CHARS) {
      this.#flush(batch);
      batch = null;
    }
    if (!batch) {
      batch = { entries: [], chars: 2, seen: 1, waits: 0 };
      this.#open = batch;
      queueMicrotask(() => this.#tick(batch));
    }
    batch.entries.push(entry);
    batch.chars += entry.json.length + 1;
    if (batch.entries.length >= BATCH_MAX_COMMANDS) this.#flush(batch);
  }

  // The batch's microtask: leave now, unless commands are still arriving in this wave of callbacks.
  #tick(batch) {
    if (this.#open !== batch) return; // already left (a cap was reached)
    if (batch.entries.length > batch.seen && batch.waits < BATCH_MAX_WAITS) {
      batch.seen = batch.entries.length;
      batch.waits++;
      queueMicrotask(() => this.#tick(batch));
      return;
    }
    this.#flush(batch);
  }

  #flush(batch) {
    if (this.#open === batch) this.#open = null;
    const live = batch.entries.filter((e) => !e.settled); // cancelled while waiting: not sent
    if (live.length > 0) this.#run(live);
  }

  // ---- settling one command

  #settle(entry, ok, value) {
    if (entry.settled) return;
    entry.settled = true;
    if (entry.onAbort) entry.signal.removeEventListener('abort', entry.onAbort);
    if (entry.answer) {
      try {
        entry.answer(entry.token, ok, value);
      } catch (error) {
        // The caller's bug; it must not stop this request from settling the other commands.
        queueMicrotask(() => {
          throw error;
        });
      }
    } else if (ok) entry.resolve(value);
    else entry.reject(value);
  }

  // The caller's signal fired: CANCELLED now, whatever its request is doing. The request itself
  // (or the backoff wait) is stopped only when nobody in it is waiting any more.
  #cancel(entry) {
    this.#settle(entry, false, cancelled());
    const flight = entry.flight;
    if (flight && flight.entries.every((e) => e.settled)) {
      flight.controller?.abort();
      flight.wake?.();
    }
  }

  // ---- requests

  // Sends `entries` (one request per attempt) until each is settled. Never rejects.
  async #run(entries) {
    const flight = { entries, controller: null, wake: null };
    for (const e of entries) e.flight = flight;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        const cap = Math.min(this.#maxBackoffMs, this.#backoffMs * 2 ** (attempt - 1));
        await this.#backoff(this.#random() * cap, flight);
        flight.entries = flight.entries.filter((e) => !e.settled);
        if (flight.entries.length === 0) return;
      }
      let failure;
      try {
        failure = await this.#attempt(flight.entries, flight);
      } catch (error) {
        // Defensive: a bug here must not leave callers hanging.
        for (const e of flight.entries) {
          this.#settle(e, false, new AgentToolsError(ErrorCode.INTERNAL, this.#scrub(`Upstash REST: ${describe(error)}`)));
        }
        return;
      }
      if (!failure) return; // every command settled
      // A retryable failure of the whole request: commands out of attempts fail with it.
      const next = [];
      for (const e of flight.entries) {
        if (e.settled) continue;
        if (attempt + 1 >= e.maxAttempts) this.#settle(e, false, this.#exhausted(e, failure, attempt + 1));
        else next.push(e);
      }
      if (next.length === 0) return;
      flight.entries = next;
    }
  }

  #exhausted(entry, failure, attempts) {
    const count = attempts === 1 ? '1 attempt' : `${attempts} attempts`;
    return new AgentToolsError(failure.code, this.#scrub(`Upstash REST ${commandName(entry.json)} failed after ${count}: ${failure.reason}`), {
      details: failure.status === undefined ? { attempts } : { attempts, status: failure.status },
    });
  }

  // Waits ms; cut short when every command in the flight has been cancelled.
  #backoff(ms, flight) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        flight.wake = null;
        resolve();
      }
      flight.wake = done;
    });
  }

  // One HTTP exchange for `entries`. Settles each command it has an answer for and returns
  // undefined, or returns { code, reason, status? } when the request failed in a way worth retrying.
  async #attempt(entries, flight) {
    const single = entries.length === 1;
    let body;
    if (single) body = entries[0].json;
    else {
      body = '[';
      for (let i = 0; i < entries.length; i++) body += (i === 0 ? '' : ',') + entries[i].json;
      body += ']';
    }
    // One controller per request, for the timeout and for the case where every caller cancelled.
    const controller = new AbortController();
    flight.controller = controller;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#timeoutMs);
    try {
      const headers = { 'Content-Type': 'application/json', Authorization: this.#authorization };
      if (this.#readYourWrites && this.#syncToken) headers['upstash-sync-token'] = this.#syncToken;
      let response;
      try {
        response = await this.#transport.post(single ? this.#endpoint : this.#pipelineUrl, headers, body, controller.signal);
      } catch (error) {
        if (timedOut) return { code: ErrorCode.TIMEOUT, reason: `no answer within ${this.#timeoutMs} ms` };
        if (controller.signal.aborted) return undefined; // every caller cancelled; all settled
        return { code: ErrorCode.HOST_ERROR, reason: `network error: ${describe(error)}` };
      }
      const { status, text } = response;
      if (this.#readYourWrites) {
        const sync = response.header('upstash-sync-token');
        if (sync) this.#syncToken = sync;
      }
      if (status >= 500) return { code: ErrorCode.HOST_ERROR, status, reason: `HTTP ${status}${errorText(text)}` };
      const fail = (code, message) => {
        for (const e of entries) {
          this.#settle(e, false, new AgentToolsError(code, this.#scrub(message), { details: { status } }));
        }
      };
      if (status === 401 || status === 403) {
        fail(ErrorCode.HOST_ERROR,
          `Upstash REST: HTTP ${status}, the token was rejected (check UPSTASH_REDIS_REST_TOKEN / KV_REST_API_TOKEN)${errorText(text)}`);
        return undefined;
      }
      if (single) {
        const entry = entries[0];
        if (status === 400) {
          const parsed = parseJson(text);
          if (parsed && typeof parsed.error === 'string') this.#settle(entry, true, { error: parsed.error });
          else fail(ErrorCode.HOST_ERROR, `Upstash REST: HTTP 400${errorText(text)}`);
          return undefined;
        }
        if (status < 200 || status > 299) {
          fail(ErrorCode.HOST_ERROR, `Upstash REST: HTTP ${status}${errorText(text)}`);
          return undefined;
        }
        const parsed = parseJson(text);
        if (parsed === undefined || parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
          fail(ErrorCode.HOST_BAD_REPLY, `Upstash REST: the response body is not the expected JSON object: ${snippet(text)}`);
        } else if (typeof parsed.error === 'string') {
          this.#settle(entry, true, { error: parsed.error });
        } else if (!('result' in parsed) || !isReply(parsed.result, 0)) {
          fail(ErrorCode.HOST_BAD_REPLY, `Upstash REST: the response has no valid "result": ${snippet(text)}`);
        } else {
          this.#settle(entry, true, parsed.result);
        }
        return undefined;
      }
      // A pipeline: a 400 here rejects the request as a whole (nothing ran), so it is not any
      // command's Redis error.
      if (status < 200 || status > 299) {
        fail(ErrorCode.HOST_ERROR, `Upstash REST: pipeline of ${entries.length} commands: HTTP ${status}${errorText(text)}`);
        return undefined;
      }
      const items = parseJson(text);
      if (!Array.isArray(items) || items.length !== entries.length) {
        fail(ErrorCode.HOST_BAD_REPLY,
          `Upstash REST: the pipeline response is not a JSON array of ${entries.length} replies: ${snippet(text)}`);
        return undefined;
      }
      for (let i = 0; i < entries.length; i++) {
        const item = items[i];
        if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
          if (typeof item.error === 'string') {
            this.#settle(entries[i], true, { error: item.error });
            continue;
          }
          if ('result' in item && isReply(item.result, 0)) {
            this.#settle(entries[i], true, item.result);
            continue;
          }
        }
        this.#settle(entries[i], false, new AgentToolsError(ErrorCode.HOST_BAD_REPLY,
          this.#scrub(`Upstash REST: pipeline item ${i} is neither {"result": …} nor {"error": …}: ${snippet(JSON.stringify(item) ?? '')}`),
          { details: { status } }));
      }
      return undefined;
    } finally {
      clearTimeout(timer);
      flight.controller = null;
    }
  }

  #scrub(text) {
    return text.split(this.#token).join('[redacted]');
  }
}

// The command as JSON; numbers are sent as their text.
function serialize(args) {
  if (!Array.isArray(args) || args.length === 0) {
    throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, 'command: args must be a non-empty array of strings');
  }
  let numbers = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (typeof a === 'string') continue;
    if (typeof a !== 'number' || !Number.isFinite(a)) {
      throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, `command: argument ${i} is ${typeof a}, not a string`);
    }
    numbers = true;
  }
  return JSON.stringify(numbers ? args.map(String) : args);
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

// A command's name, from its JSON text, for an error message.
function commandName(json) {
  const args = parseJson(json);
  return String(Array.isArray(args) ? args[0] : '').toUpperCase();
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
