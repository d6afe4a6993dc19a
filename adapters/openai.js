// The `http` host function for OpenAI Chat Completions, two ways:
// - createFetchTransport: our own fetch, with the API key only in the Authorization header;
// - createClientTransport: the caller's client (the official `openai` package or anything with
//   chat.completions.create), asked for no retries of its own, so the core's policy is the only one.
// The core's request carries the Chat Completions body as a JSON value (`json`), so the client
// path hands the object over as it is and only the fetch path serialises it. Every HTTP answer
// comes back as {status, headers, body: text} (fetch) or {status, headers, json: value} (client:
// the object the client already parsed, not serialised again). AgentToolsError is thrown only
// when there was no answer (HOST_ERROR, TIMEOUT, CANCELLED) or it cannot be used (HOST_BAD_REPLY,
// INPUT_TOO_LARGE). Retrying is the core's decision, not the transport's.
import { AgentToolsError } from '#internal/errors.js';
import { ErrorCode, MAX_MESSAGE_BYTES } from '#internal/generated/constants.js';

const DEFAULT_BASE_URL = 'https://api.openai.com/v1';
// The response headers the core reads (retry policy) or reports (request id).
const KEPT_HEADERS = ['retry-after', 'retry-after-ms', 'x-should-retry', 'x-request-id', 'content-type'];

function keptHeaders(headers) {
  const out = {};
  if (!headers) return out;
  for (const name of KEPT_HEADERS) {
    const value = typeof headers.get === 'function' ? headers.get(name) : headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

// Joins the caller's signal and a per-attempt timeout; reports which one fired.
function attemptSignal(signal, timeoutMs) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = timeoutMs > 0 ? setTimeout(() => { timedOut = true; controller.abort(); }, timeoutMs) : null;
  const onAbort = () => controller.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) controller.abort();
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    done() {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}

function noAnswer(error, attempt, signal, timeoutMs, secret) {
  if (signal?.aborted) return new AgentToolsError(ErrorCode.CANCELLED, 'request cancelled');
  if (attempt.timedOut()) return new AgentToolsError(ErrorCode.TIMEOUT, `request timed out after ${timeoutMs} ms`);
  if (error instanceof AgentToolsError) return error;
  let message = `request failed: ${error?.name ?? 'Error'}: ${error?.message ?? error}`;
  if (secret) message = message.split(secret).join('***');
  return new AgentToolsError(ErrorCode.HOST_ERROR, message);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * @param {object} config {apiKey?, baseURL?, organization?, project?, fetch?}; apiKey and baseURL
 *   fall back to OPENAI_API_KEY / OPENAI_BASE_URL where the runtime has an environment.
 */
export function createFetchTransport(config = {}) {
  const env = globalThis.process?.env ?? {};
  const apiKey = config.apiKey ?? env.OPENAI_API_KEY;
  if (typeof apiKey !== 'string' || apiKey.length === 0) {
    throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, 'no OpenAI API key: pass {apiKey} or set OPENAI_API_KEY');
  }
  const base = String(config.baseURL ?? env.OPENAI_BASE_URL ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
  const fetchImpl = config.fetch ?? globalThis.fetch;
  const fixed = { authorization: `Bearer ${apiKey}` };
  if (config.organization) fixed['openai-organization'] = config.organization;
  if (config.project) fixed['openai-project'] = config.project;

  return {
    url: `${base}/chat/completions`,
    async http(request, signal) {
      const attempt = attemptSignal(signal, request.timeoutMs);
      try {
        const response = await fetchImpl(request.url, {
          method: request.method,
          headers: { ...request.headers, ...fixed },
          body: JSON.stringify(request.json),
          signal: attempt.signal,
          // Never follow a redirect (it would carry the key to another host); a 3xx reaches the
          // core as a status and fails. ('error' would say so directly, but workerd rejects it.)
          redirect: 'manual',
        });
        const length = Number(response.headers.get('content-length'));
        if (length > MAX_MESSAGE_BYTES) throw new AgentToolsError(ErrorCode.INPUT_TOO_LARGE, `response body of ${length} bytes exceeds MAX_MESSAGE_BYTES`);
        const bytes = new Uint8Array(await response.arrayBuffer());
        if (bytes.length > MAX_MESSAGE_BYTES) throw new AgentToolsError(ErrorCode.INPUT_TOO_LARGE, `response body of ${bytes.length} bytes exceeds MAX_MESSAGE_BYTES`);
        let body;
        try {
          body = strictUtf8.decode(bytes);
        } catch {
          throw new AgentToolsError(ErrorCode.HOST_BAD_REPLY, 'response body is not valid UTF-8');
        }
        return { status: response.status, headers: keptHeaders(response.headers), body };
      } catch (error) {
        throw noAnswer(error, attempt, signal, request.timeoutMs, apiKey);
      } finally {
        attempt.done();
      }
    },
  };
}

/** @param client anything with chat.completions.create(params, options) */
export function createClientTransport(client) {
  return {
    url: 'client:/chat/completions', // the client knows its own base URL
    async http(request, signal) {
      const attempt = attemptSignal(signal, request.timeoutMs);
      try {
        // maxRetries: 0 — the core's retry policy is the only one.
        const result = await client.chat.completions.create(request.json, {
          maxRetries: 0,
          timeout: request.timeoutMs,
          signal: attempt.signal,
        });
        return { status: 200, headers: {}, json: result };
      } catch (error) {
        if (typeof error?.status === 'number' && !attempt.timedOut() && !signal?.aborted) {
          // An HTTP answer the client turned into an exception: give the core the answer.
          const body = error.error !== undefined ? { error: error.error } : { error: { message: String(error.message ?? '') } };
          return { status: error.status, headers: keptHeaders(error.headers), json: body };
        }
        if (error?.name === 'APIConnectionTimeoutError' && !signal?.aborted) {
          throw new AgentToolsError(ErrorCode.TIMEOUT, `request timed out after ${request.timeoutMs} ms`);
        }
        throw noAnswer(error, attempt, signal, request.timeoutMs, client.apiKey);
      } finally {
        attempt.done();
      }
    },
  };
}
