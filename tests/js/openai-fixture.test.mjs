// The OpenAI fixture server (tests/fixtures/openai-server.mjs) against the official `openai`
// client (6.49.0, the version that runs on Node 20) as a conformance peer, and against plain fetch
// for what no client would send or accept. Needs ../shared/specs (the official OpenAPI subset);
// skipped without it.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import OpenAI from 'openai';
import {
  DEFAULT_SPEC_PATH, errorResponse, loadValidators, startOpenAIServer, toolCallResponse,
} from '../fixtures/openai-server.mjs';

const API_KEY = `sk-test-${randomBytes(18).toString('hex')}`;
const WRONG_KEY = `sk-wrong-${randomBytes(18).toString('hex')}`;

// What the original's task executor sends (shared/notes/wire-contracts.md "How this maps").
const PARAMS = {
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You classify the intent of a user message.' },
    { role: 'user', content: 'Book me a table for two tomorrow at 8.' },
  ],
  tools: [{
    type: 'function',
    function: {
      name: 'analyze_intent',
      description: 'Return the intent of the message and a confidence.',
      parameters: {
        type: 'object',
        properties: {
          intent: { type: 'string', enum: ['booking', 'question', 'other'] },
          confidence: { type: 'number', minimum: 0, maximum: 1 },
        },
        required: ['intent', 'confidence'],
      },
    },
  }],
  tool_choice: { type: 'function', function: { name: 'analyze_intent' } },
  temperature: 0.3,
};
const ARGS = '{"intent":"booking","confidence":0.92}';

if (!existsSync(DEFAULT_SPEC_PATH)) {
  console.log(`# openai-fixture: skipped, ../shared/specs not found (${DEFAULT_SPEC_PATH})`);
  test('openai fixture', (t) => t.skip('../shared/specs not found'));
} else {
  describe('openai fixture server', () => {
    let server;
    let validators;
    const client = (options = {}) => new OpenAI({ apiKey: API_KEY, baseURL: server.url, maxRetries: 0, ...options });
    const post = (body, { key = API_KEY, raw = false } = {}) => fetch(`${server.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: raw ? body : JSON.stringify(body),
    });

    before(async () => {
      validators = loadValidators();
      server = await startOpenAIServer({ apiKey: API_KEY });
    });
    after(() => server?.close());
    beforeEach(() => server.reset());

    test('the official client: a forced tool call is logged valid and the scripted call comes back', async () => {
      server.script(toolCallResponse({ name: 'analyze_intent', arguments: ARGS }));
      const completion = await client().chat.completions.create(PARAMS);

      assert.equal(server.requests.length, 1);
      const [req] = server.requests;
      assert.equal(req.method, 'POST');
      assert.equal(req.path, '/v1/chat/completions');
      assert.equal(req.authorized, true);
      assert.equal(req.valid, true, JSON.stringify(req.validationErrors));
      assert.deepEqual(req.body, PARAMS); // the client sends the params verbatim
      assert.equal(req.headers['user-agent'], 'OpenAI/JS 6.49.0');

      const choice = completion.choices[0];
      assert.equal(choice.finish_reason, 'tool_calls');
      assert.equal(choice.message.tool_calls[0].type, 'function');
      assert.equal(choice.message.tool_calls[0].function.name, 'analyze_intent');
      assert.equal(choice.message.tool_calls[0].function.arguments, ARGS);
      assert.equal(server.pending, 0);
    });

    test('an empty script answers with a call of the forced function, echoing the model', async () => {
      const completion = await client().chat.completions.create({ ...PARAMS, model: 'gpt-4.1-mini' });
      assert.equal(completion.model, 'gpt-4.1-mini');
      assert.equal(completion.choices[0].message.tool_calls[0].function.name, 'analyze_intent');
      assert.equal(completion.choices[0].message.tool_calls[0].function.arguments, '{}');
      assert.equal(validators.response(completion).valid, true);
    });

    test('every body the helpers build is valid against CreateChatCompletionResponse / ErrorResponse', async () => {
      for (const entry of [
        toolCallResponse({ name: 'analyze_intent', arguments: ARGS }),
        toolCallResponse({ name: 'f', arguments: 'not json {', model: 'o4-mini', finishReason: 'length' }),
      ]) {
        const { valid, errors } = validators.response(entry.body);
        assert.equal(valid, true, JSON.stringify(errors));
      }
      for (const status of [400, 401, 404, 429, 500, 503]) {
        const { valid, errors } = validators.error(errorResponse(status, { headers: { 'retry-after': '1' } }).body);
        assert.equal(valid, true, `${status}: ${JSON.stringify(errors)}`);
      }
      // Bodies the server builds from script entries, as served on the wire.
      const entries = [
        { toolCall: { name: 'analyze_intent', arguments: ARGS } },
        { toolCall: { name: 'analyze_intent', arguments: { intent: 'other', confidence: 0.1 } }, finishReason: 'stop' },
        { refusal: "I can't help with that." },
        { content: 'A plain text answer instead of a tool call.' },
        { choices: [{ index: 0, message: { role: 'assistant', content: 'x', refusal: null }, logprobs: null, finish_reason: 'content_filter' }] },
        {},
      ];
      server.script(entries);
      for (let i = 0; i < entries.length; i++) {
        const res = await post(PARAMS);
        assert.equal(res.status, 200);
        const body = await res.json();
        const { valid, errors } = validators.response(body);
        assert.equal(valid, true, `entry ${i}: ${JSON.stringify(errors)}`);
      }
      // A built body that would not be spec-valid is refused when scripted, not served.
      assert.throws(() => server.script({ toolCall: { name: 'f', arguments: '{}' }, finishReason: 'done' }), /not spec-valid/);
      assert.equal(server.pending, 0);
    });

    test('invalid bodies → 400 invalid_request_error, logged invalid, script untouched', async () => {
      const base = { model: 'gpt-4o-mini', messages: PARAMS.messages };
      const cases = [
        [{ messages: PARAMS.messages }, 'model'],
        [{ ...base, messages: [] }, 'messages'],
        [{ ...base, temperature: 5 }, 'temperature'],
        [{ ...PARAMS, tool_choice: { type: 'function', name: 'analyze_intent' } }, 'tool_choice'], // Responses-API shape
        [{ ...PARAMS, tool_choice: { type: 'function', function: { description: 'no name' } } }, 'tool_choice'],
        [{ ...base, messages: [{ role: 'robot', content: 'hi' }] }, 'messages[0]'],
      ];
      server.script(toolCallResponse({ name: 'analyze_intent' }));
      for (const [body, param] of cases) {
        const res = await post(body);
        assert.equal(res.status, 400, JSON.stringify(body));
        const { error } = await res.json();
        assert.equal(error.type, 'invalid_request_error');
        assert.equal(error.param, param);
        assert.equal(error.code, null);
        assert.match(error.message, /^Invalid request body: /);
        const logged = server.requests.at(-1);
        assert.equal(logged.valid, false);
        assert.ok(logged.validationErrors.length > 0);
        assert.deepEqual(logged.body, body);
      }
      assert.equal(server.pending, 1);

      // Not JSON at all.
      const res = await post('{"model":', { raw: true });
      assert.equal(res.status, 400);
      assert.equal(server.requests.at(-1).valid, false);
      assert.equal(server.requests.at(-1).rawBody, '{"model":');

      // The official client surfaces the 400 as BadRequestError with the param.
      await assert.rejects(client().chat.completions.create({ ...PARAMS, temperature: 5 }), (err) => {
        assert.ok(err instanceof OpenAI.BadRequestError);
        assert.equal(err.status, 400);
        assert.equal(err.param, 'temperature');
        return true;
      });

      // null where the schemas say `nullable: true` (OpenAPI 3.0 style) is accepted.
      const nulls = await post({ ...PARAMS, max_completion_tokens: null, prediction: null, stream: null, n: null });
      assert.equal(nulls.status, 200);
      assert.equal(server.requests.at(-1).valid, true);
    });

    test('401 on a wrong or missing key; logged headers never contain a key', async () => {
      server.script(toolCallResponse({ name: 'analyze_intent' }));
      await assert.rejects(client({ apiKey: WRONG_KEY }).chat.completions.create(PARAMS), (err) => {
        assert.ok(err instanceof OpenAI.AuthenticationError);
        assert.equal(err.status, 401);
        assert.equal(err.code, 'invalid_api_key');
        assert.ok(!err.message.includes(WRONG_KEY));
        return true;
      });
      const noAuth = await fetch(`${server.url}/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(PARAMS),
      });
      assert.equal(noAuth.status, 401);
      const { error } = await noAuth.json();
      assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type']);
      await client().chat.completions.create(PARAMS);

      assert.deepEqual(server.requests.map((r) => r.authorized), [false, false, true]);
      assert.equal(server.requests[0].headers.authorization, 'Bearer ***');
      assert.equal(server.requests[1].headers.authorization, undefined);
      assert.equal(server.requests[2].headers.authorization, 'Bearer ***');
      const log = JSON.stringify(server.requests);
      assert.ok(!log.includes(API_KEY) && !log.includes(WRONG_KEY));
      assert.equal(server.pending, 0); // the 401s consumed nothing
    });

    test('429 with retry-after-ms then success: the official client retries once', async () => {
      server.script(
        errorResponse(429, { message: 'Rate limit reached', headers: { 'retry-after-ms': '50' } }),
        toolCallResponse({ name: 'analyze_intent', arguments: ARGS }),
      );
      const started = Date.now();
      const completion = await client({ maxRetries: 2 }).chat.completions.create(PARAMS);
      assert.equal(completion.choices[0].message.tool_calls[0].function.arguments, ARGS);
      assert.equal(server.requests.length, 2);
      assert.ok(Date.now() - started >= 45, 'waited retry-after-ms');
      assert.deepEqual(server.requests.map((r) => r.headers['x-stainless-retry-count']), ['0', '1']);
      assert.deepEqual(server.requests.map((r) => r.response.status), [429, 200]);
      assert.ok(server.requests.every((r) => r.valid));
    });

    test('x-should-retry decides: false stops a 429 retry, true retries a 400', async () => {
      server.script(errorResponse(429, { headers: { 'x-should-retry': 'false', 'retry-after-ms': '10' } }));
      await assert.rejects(client({ maxRetries: 2 }).chat.completions.create(PARAMS), (err) => {
        assert.ok(err instanceof OpenAI.RateLimitError);
        assert.equal(err.code, 'rate_limit_exceeded');
        return true;
      });
      assert.equal(server.requests.length, 1);

      server.reset();
      server.script(
        errorResponse(400, { message: 'transient', headers: { 'x-should-retry': 'true', 'retry-after-ms': '10' } }),
        errorResponse(503, { headers: { 'retry-after-ms': '10' } }),
        toolCallResponse({ name: 'analyze_intent' }),
      );
      await client({ maxRetries: 2 }).chat.completions.create(PARAMS);
      assert.deepEqual(server.requests.map((r) => r.response.status), [400, 503, 200]);
    });

    test('500 exhausts maxRetries and surfaces InternalServerError', async () => {
      server.script([1, 2, 3].map(() => errorResponse(500, { headers: { 'retry-after-ms': '5' } })));
      await assert.rejects(client({ maxRetries: 2 }).chat.completions.create(PARAMS), OpenAI.InternalServerError);
      assert.equal(server.requests.length, 3);
    });

    test('delays and dropped connections', async () => {
      // A delay shorter than the timeout is just slow.
      server.script({ delayMs: 60, toolCall: { name: 'analyze_intent', arguments: ARGS } });
      const started = Date.now();
      await client({ timeout: 2000 }).chat.completions.create(PARAMS);
      assert.ok(Date.now() - started >= 55);

      // Longer than the timeout: APIConnectionTimeoutError, and the late reply is never written.
      server.script({ delayMs: 400 });
      await assert.rejects(client({ timeout: 100 }).chat.completions.create(PARAMS), OpenAI.APIConnectionTimeoutError);
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(server.requests.at(-1).response, null);

      // A dropped socket: APIConnectionError (not the timeout subclass).
      server.script({ drop: true });
      await assert.rejects(client({ timeout: 2000 }).chat.completions.create(PARAMS), (err) => {
        assert.ok(err instanceof OpenAI.APIConnectionError);
        assert.ok(!(err instanceof OpenAI.APIConnectionTimeoutError));
        return true;
      });
      assert.deepEqual(server.requests.at(-1).response, { drop: true });

      // Dropped once, then answered: the client's own retry recovers.
      server.reset();
      server.script({ drop: true }, toolCallResponse({ name: 'analyze_intent', arguments: ARGS }));
      const c = await client({ maxRetries: 1 }).chat.completions.create(PARAMS);
      assert.equal(c.choices[0].message.tool_calls[0].function.arguments, ARGS);
      assert.equal(server.requests.length, 2);
    });

    test('malformed bodies are served as scripted', async () => {
      const html = '<html><body><h1>502 Bad Gateway</h1></body></html>';
      const truncated = JSON.stringify(toolCallResponse({ name: 'analyze_intent', arguments: ARGS }).body).slice(0, 40);
      const errorIn200 = { error: { message: 'The server had an error', type: 'server_error', param: null, code: null } };
      server.script(
        { body: html, headers: { 'Content-Type': 'text/html' } },
        { body: truncated },
        { body: errorIn200 },
      );
      let res = await post(PARAMS);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/html');
      assert.equal(await res.text(), html);
      res = await post(PARAMS);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/json');
      assert.equal(await res.text(), truncated);
      res = await post(PARAMS);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), errorIn200);
      assert.ok(res.headers.get('x-request-id').startsWith('req_'));

      // What the official client makes of them: it does not reject the HTML page or the 200
      // {error} — it resolves with a string / the error object — so callers must check the shape.
      server.script({ body: html, headers: { 'content-type': 'text/html' } }, { body: truncated }, { body: errorIn200 });
      assert.equal(await client().chat.completions.create(PARAMS), html);
      await assert.rejects(client().chat.completions.create(PARAMS), SyntaxError);
      assert.deepEqual(await client().chat.completions.create(PARAMS), errorIn200);
    });

    test('a scripted function answers from the request; unknown routes get an OpenAI-shaped 404', async () => {
      server.script((req) => ({ toolCall: { name: req.body.tools[0].function.name, arguments: JSON.stringify({ n: req.body.messages.length }) } }));
      const completion = await client().chat.completions.create(PARAMS);
      assert.equal(completion.choices[0].message.tool_calls[0].function.arguments, '{"n":2}');

      server.script(async () => errorResponse(503, { message: 'overloaded' }));
      await assert.rejects(client().chat.completions.create(PARAMS), (err) => err.status === 503 && /overloaded/.test(err.message));

      const res = await fetch(`${server.url}/responses`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` }, body: '{}' });
      assert.equal(res.status, 404);
      assert.equal((await res.json()).error.type, 'invalid_request_error');
    });
  });
}
