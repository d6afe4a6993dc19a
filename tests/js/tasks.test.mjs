// The tasks module against an OpenAI-compatible fixture that validates every request against the
// official spec: the same scenarios through the built-in fetch transport and through the official
// `openai` client injected as the client, plus the drop-in checklist (reference-api.md 17-27).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import OpenAI from 'openai';
import * as z4 from 'zod/v4';
import { z as z3 } from 'zod';
import {
  AgentTaskBuilder, AgentTaskConfigs, AgentTaskExecutor, BaseAgentTaskRequestSchema,
  createTaskHelpers, handleAgentTaskError, validateAgentTaskRequest,
} from '@growthub/agent-tools/tasks';
import { DEFAULT_SPEC_PATH, errorResponse, startOpenAIServer, toolCallResponse } from '../fixtures/openai-server.mjs';

const haveSpec = existsSync(DEFAULT_SPEC_PATH);
if (!haveSpec) console.log(`# SKIP tasks fixture tests: ${DEFAULT_SPEC_PATH} not found (../shared/specs)`);

const API_KEY = 'sk-test-DO-NOT-LEAK-4f1c9b';
const request = {
  threadId: '6f1c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f',
  userId: 'user-1',
  agentType: 'CONTENT_GENERATION_AGENT',
  taskSequence: 1,
  previousCSI: { completedSteps: ['setup'], currentProgress: 10, totalSteps: 5, currentStep: 'setup', metadata: { runId: 'r-1' } },
};
const intentArgs = { analysis: 'a', conclusion: 'c', confidence: 0.9, inferred_assets: 3, asset_types: ['image'] };
const intentInput = { prompt: 'Make 3 posts', brandContext: { brand_name: 'Acme', referenceImages: [1, 2] } };
const intentCall = (args = intentArgs) => toolCallResponse({ name: 'analyze_intent', arguments: typeof args === 'string' ? args : JSON.stringify(args) });

let server;
before(async () => { if (haveSpec) server = await startOpenAIServer({ apiKey: API_KEY }); });
after(async () => { await server?.close(); });

const transports = {
  'fetch transport': (opts = {}) => new AgentTaskExecutor({ apiKey: API_KEY, baseURL: server.url, ...opts }, { repair: opts.repair }),
  // maxRetries: 5 on the client proves ours is the only retry policy (the transport asks for 0).
  'official openai client': (opts = {}) => new AgentTaskExecutor(
    new OpenAI({ apiKey: API_KEY, baseURL: server.url, maxRetries: 5 }),
    { repair: opts.repair, timeoutMs: opts.timeoutMs, maxRetries: opts.maxRetries },
  ),
};

for (const [kind, makeExecutor] of Object.entries(transports)) {
  describe(`tasks via the ${kind}`, { skip: !haveSpec }, () => {
    const run = async (scripts, opts, input = intentInput, config = AgentTaskConfigs.INTENT_ANALYSIS, req = request) => {
      server.reset();
      server.script(...scripts);
      const result = await makeExecutor(opts).executeAgentTask(req, input, config);
      assert.ok(!JSON.stringify(result).includes(API_KEY), 'the API key leaked into a result');
      return result;
    };

    test('success: a spec-valid forced tool call, the result and the updated CSI', async () => {
      const result = await run([intentCall({ ...intentArgs, step: 'hijack' })]);
      assert.equal(server.requests.length, 1);
      const sent = server.requests[0];
      assert.equal(sent.valid, true, JSON.stringify(sent.validationErrors));
      assert.deepEqual(Object.keys(sent.body), ['model', 'messages', 'tools', 'tool_choice', 'temperature']);
      assert.equal(sent.body.model, 'gpt-4o-mini');
      assert.equal(sent.body.temperature, 0.3);
      assert.deepEqual(sent.body.tool_choice, { type: 'function', function: { name: 'analyze_intent' } });
      assert.deepEqual(sent.body.tools, [{ type: 'function', function: AgentTaskConfigs.INTENT_ANALYSIS.functionDefinition }]);
      assert.equal(sent.body.messages[1].content, AgentTaskConfigs.INTENT_ANALYSIS.userPromptTemplate(intentInput));
      assert.deepEqual(Object.keys(result), ['success', 'stepResult', 'updatedCSI']);
      assert.equal(result.success, true);
      assert.deepEqual(result.stepResult, { step: 'intent_analysis', ...intentArgs });
      const { metadata, ...csi } = result.updatedCSI;
      assert.deepEqual(csi, { completedSteps: ['setup', 'intent_analysis'], currentProgress: 25, totalSteps: 5, currentStep: 'intent_analysis' });
      assert.equal(metadata.runId, 'r-1', 'previous metadata is kept');
      assert.equal(metadata.taskName, 'intent_analysis');
      assert.equal(metadata.taskType, 'analysis');
      assert.ok(!Number.isNaN(Date.parse(metadata.lastUpdated)));
    });

    test('429 with retry-after-ms is retried after the wait; x-should-retry: false is not', async () => {
      const started = Date.now();
      const ok = await run([errorResponse(429, { headers: { 'retry-after-ms': '120' } }), intentCall()]);
      assert.equal(ok.success, true);
      assert.equal(server.requests.length, 2);
      assert.ok(Date.now() - started >= 110);
      const no = await run([errorResponse(500, { headers: { 'x-should-retry': 'false' } })]);
      assert.equal(no.success, false);
      assert.equal(server.requests.length, 1);
      assert.equal(no.error.details.status, 500);
    });

    test('5xx three times: three attempts (2 retries, the SDK default), then a typed failure', async () => {
      const r = await run([errorResponse(500), errorResponse(503), errorResponse(502, { headers: { 'retry-after-ms': '0' } })], { maxRetries: 2 });
      assert.equal(server.requests.length, 3);
      assert.equal(r.success, false);
      assert.equal(r.error.code, 'TASK_EXECUTION_FAILED');
      assert.equal(r.error.details.reason, 'http_status');
      assert.equal(r.error.details.status, 502);
      assert.deepEqual(r.stepResult, { step: 'intent_analysis' });
      assert.deepEqual(r.updatedCSI, request.previousCSI);
    });

    test('4xx other than 408/409/429 fails at once with the API error', async () => {
      const r = await run([errorResponse(400, { message: 'bad thing', code: 'unsupported_parameter', param: 'temperature' })]);
      assert.equal(server.requests.length, 1);
      assert.equal(r.error.details.api.code, 'unsupported_parameter');
      assert.match(r.error.message, /bad thing/);
    });

    const bad = [
      ['a wrong function name', () => toolCallResponse({ name: 'other_fn', arguments: '{}' }), 'wrong_function', 'TASK_EXECUTION_FAILED'],
      ['several tool calls', () => ({ status: 200, body: { ...intentCall().body, choices: [{ index: 0, logprobs: null, finish_reason: 'tool_calls', message: { role: 'assistant', content: null, refusal: null, tool_calls: [1, 2].map((i) => ({ id: `c${i}`, type: 'function', function: { name: 'analyze_intent', arguments: JSON.stringify(intentArgs) } })) } }] } }), 'multiple_tool_calls', 'TASK_EXECUTION_FAILED'],
      ['finish_reason length', () => toolCallResponse({ name: 'analyze_intent', arguments: '{"anal', finishReason: 'length' }), 'truncated', 'TASK_EXECUTION_FAILED'],
      ['finish_reason content_filter', () => toolCallResponse({ name: 'analyze_intent', arguments: '{}', finishReason: 'content_filter' }), 'content_filter', 'TASK_EXECUTION_FAILED'],
      ['a refusal', () => ({ toolCall: undefined, refusal: 'I cannot help with that', finishReason: 'stop' }), 'refusal', 'TASK_EXECUTION_FAILED'],
      ['invalid JSON arguments', () => intentCall('{"analysis": '), 'invalid_arguments_json', 'VALIDATION_FAILED'],
      ['no tool call', () => ({ content: 'just text', finishReason: 'stop' }), 'no_tool_call', 'TASK_EXECUTION_FAILED'],
      ['empty choices', () => ({ choices: [] }), 'no_choices', 'TASK_EXECUTION_FAILED'],
      ['a 200 carrying an error body', () => ({ status: 200, body: { error: { message: 'overloaded', type: 'server_error', param: null, code: null } } }), 'api_error', 'TASK_EXECUTION_FAILED'],
      ['an HTML error page', () => ({ status: 200, body: '<html><body>502 Bad Gateway</body></html>', headers: { 'content-type': 'text/html' } }), 'malformed_response', 'TASK_EXECUTION_FAILED'],
      ['arguments that break the schema', () => intentCall({ analysis: 'a', conclusion: 'c', confidence: 'high', inferred_assets: 2.5 }), 'schema_mismatch', 'VALIDATION_FAILED'],
    ];
    for (const [what, entry, reason, code] of bad) {
      test(`${what} is a typed failure (${reason})`, async () => {
        const r = await run([entry()]);
        assert.equal(r.success, false, JSON.stringify(r));
        assert.equal(r.error.details.reason, reason, JSON.stringify(r.error));
        assert.equal(r.error.code, code);
        assert.deepEqual(r.stepResult, { step: 'intent_analysis' });
      });
    }

    test('a schema mismatch names the JSON path and the keyword', async () => {
      const r = await run([intentCall({ analysis: 'a', conclusion: 'c', confidence: 'high', inferred_assets: 1 })]);
      const issue = r.error.details.issues.find((i) => i.keyword === 'type');
      assert.ok(issue, JSON.stringify(r.error.details));
      assert.match(issue.path, /confidence/);
      assert.match(r.error.message, /confidence/);
    });

    test('repair: one re-ask with the validation error, answered correctly, succeeds', async () => {
      const r = await run([intentCall({ analysis: 'a' }), intentCall()], { repair: true });
      assert.equal(r.success, true, JSON.stringify(r.error));
      assert.equal(server.requests.length, 2);
      const second = server.requests[1];
      assert.equal(second.valid, true, JSON.stringify(second.validationErrors));
      assert.deepEqual(second.body.messages.map((m) => m.role), ['system', 'user', 'assistant', 'tool']);
      assert.match(second.body.messages[3].content, /required|conclusion/);
    });

    test('a per-attempt timeout retries, then fails with TIMEOUT; a signal cancels promptly', async () => {
      const slow = { ...intentCall(), delayMs: 400 };
      server.reset();
      server.script(slow, slow);
      const r = await makeExecutor({ timeoutMs: 100, maxRetries: 1 }).executeAgentTask(request, intentInput, AgentTaskConfigs.INTENT_ANALYSIS);
      assert.equal(r.success, false);
      assert.equal(r.error.code, 'TIMEOUT', JSON.stringify(r.error));
      assert.equal(r.error.details.retries, 1, 'one retry after the first timeout');

      server.reset();
      server.script({ ...intentCall(), delayMs: 5000 });
      const started = Date.now();
      const cancelled = await makeExecutor().executeAgentTask(request, intentInput, AgentTaskConfigs.INTENT_ANALYSIS, { signal: AbortSignal.timeout(80) });
      assert.equal(cancelled.error.code, 'CANCELLED', JSON.stringify(cancelled.error));
      assert.ok(Date.now() - started < 2000);
    });

    test('reasoning models get no temperature and max_completion_tokens instead of max_tokens', async () => {
      const config = { ...AgentTaskConfigs.INTENT_ANALYSIS, modelConfig: { model: 'o3-mini', temperature: 0.2, maxTokens: 500, topP: 0.5 } };
      await run([intentCall()], {}, intentInput, config);
      const body = server.requests[0].body;
      assert.equal(server.requests[0].valid, true);
      assert.deepEqual(Object.keys(body), ['model', 'messages', 'tools', 'tool_choice', 'max_completion_tokens']);
      const plain = { ...AgentTaskConfigs.INTENT_ANALYSIS, modelConfig: { model: 'gpt-4o', temperature: 0, maxTokens: 500, topP: 0.5 } };
      await run([intentCall()], {}, intentInput, plain);
      assert.deepEqual(server.requests[0].body, { ...server.requests[0].body, model: 'gpt-4o', temperature: 0, max_tokens: 500, top_p: 0.5 });
      assert.deepEqual(Object.keys(server.requests[0].body), ['model', 'messages', 'tools', 'tool_choice', 'temperature', 'max_tokens', 'top_p']);
    });
  });
}

describe('transport details', { skip: !haveSpec }, () => {
  test('our fetch transport sends the same body the official client sends (modulo key order)', async () => {
    const ours = new AgentTaskExecutor({ apiKey: API_KEY, baseURL: server.url });
    const theirs = new AgentTaskExecutor(new OpenAI({ apiKey: API_KEY, baseURL: server.url }));
    server.reset();
    server.script(intentCall(), intentCall());
    await ours.executeAgentTask(request, intentInput, AgentTaskConfigs.INTENT_ANALYSIS);
    await theirs.executeAgentTask(request, intentInput, AgentTaskConfigs.INTENT_ANALYSIS);
    const [a, b] = server.requests;
    assert.deepEqual(a.body, b.body);
    assert.equal(a.headers.authorization, 'Bearer ***');
    assert.ok(a.authorized && b.authorized);
  });

  test('a 10 MiB body and a non-UTF-8 body are typed failures; the key never leaks', async () => {
    const executor = new AgentTaskExecutor({ apiKey: API_KEY, baseURL: server.url, maxRetries: 0 });
    server.reset();
    server.script({ status: 200, body: JSON.stringify({ pad: 'x'.repeat(10 << 20) }) });
    const big = await executor.executeAgentTask(request, intentInput, AgentTaskConfigs.INTENT_ANALYSIS);
    assert.equal(big.error.details.reason, 'response_too_large', JSON.stringify(big.error));
    server.reset();
    server.script({ status: 200, body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) });
    const binary = await executor.executeAgentTask(request, intentInput, AgentTaskConfigs.INTENT_ANALYSIS);
    assert.equal(binary.error.details.reason, 'malformed_response', JSON.stringify(binary.error));
    assert.ok(!JSON.stringify([big, binary]).includes(API_KEY));
  });

  test('a wrong key is a 401 failure whose message does not contain the key', async () => {
    const executor = new AgentTaskExecutor({ apiKey: 'sk-wrong-SECRET-123', baseURL: server.url });
    server.reset();
    const r = await executor.executeAgentTask(request, intentInput, AgentTaskConfigs.INTENT_ANALYSIS);
    assert.equal(r.error.details.status, 401);
    assert.ok(!JSON.stringify(r).includes('sk-wrong-SECRET-123'));
  });
});

describe('zod schemas as function parameters', { skip: !haveSpec }, () => {
  test("a zod 4 schema is converted with zod's JSON Schema export and validates the tool call", async () => {
    const config = AgentTaskBuilder.create('summary').type('analysis').tool('summarizer').systemPrompt('Summarise.')
      .userPrompt((d) => `Summarise ${d.text}`).progress(40)
      .function({ name: 'summarize', description: 'A summary', parameters: z4.object({ title: z4.string().min(1), score: z4.number().int() }) })
      .build();
    assert.deepEqual(config.functionDefinition.parameters, {
      type: 'object',
      properties: { title: { type: 'string', minLength: 1 }, score: { type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 } },
      required: ['title', 'score'],
      additionalProperties: false,
    });
    const executor = new AgentTaskExecutor({ apiKey: API_KEY, baseURL: server.url, maxRetries: 0 });
    server.reset();
    server.script(toolCallResponse({ name: 'summarize', arguments: '{"title":"T","score":3}' }),
      toolCallResponse({ name: 'summarize', arguments: '{"title":"T","score":3,"extra":true}' }));
    const ok = await executor.executeAgentTask(request, { text: 'x' }, config);
    assert.deepEqual(ok.stepResult, { step: 'summary', title: 'T', score: 3 });
    assert.equal(server.requests[0].valid, true);
    const extra = await executor.executeAgentTask(request, { text: 'x' }, config);
    assert.equal(extra.error.code, 'VALIDATION_FAILED');
    assert.equal(extra.error.details.issues[0].keyword, 'additionalProperties');
  });

  test('a zod 3 schema is refused with a clear error (zod 3 has no JSON Schema export)', () => {
    assert.throws(() => new AgentTaskBuilder().function({ name: 'f', description: 'd', parameters: z3.object({ a: z3.string() }) }),
      { code: 'INVALID_ARGUMENT', message: /zod 4/ });
  });
});

describe('the original API (drop-in)', () => {
  test('an invalid request makes no call and fails with VALIDATION_FAILED', async () => {
    let calls = 0;
    const client = { chat: { completions: { create: async () => { calls++; return {}; } } } };
    const executor = new AgentTaskExecutor(client);
    for (const bad of [{ ...request, threadId: 'not-a-uuid' }, { ...request, userId: '' }, { ...request, agentType: 'X' }, { ...request, taskSequence: 0 }]) {
      const r = await executor.executeAgentTask(bad, intentInput, AgentTaskConfigs.INTENT_ANALYSIS);
      assert.equal(r.success, false);
      assert.equal(r.error.code, 'VALIDATION_FAILED');
    }
    assert.equal(calls, 0);
  });

  test('a duck-typed client gets the params and its thrown error becomes a failure with the default CSI', async () => {
    let seen;
    const client = { chat: { completions: { create: async (params) => { seen = params; throw Object.assign(new Error('nope'), { status: 500 }); } } } };
    const { previousCSI, ...noCsi } = request;
    const r = await new AgentTaskExecutor(client, { defaultModel: 'gpt-x', defaultTemperature: 0 }).executeAgentTask(noCsi, intentInput, AgentTaskConfigs.INTENT_ANALYSIS);
    assert.equal(seen.model, 'gpt-x');
    assert.equal(seen.temperature, 0.3, 'defaultTemperature 0 falls back to 0.3 as in the original');
    assert.equal(r.success, false);
    assert.deepEqual(r.updatedCSI, { completedSteps: [], currentProgress: 0, totalSteps: 4, currentStep: 'failed' });
  });

  test('AgentTaskConfigs keep the names, tools, functions, schemas and progress', () => {
    const expected = {
      INTENT_ANALYSIS: ['intent_analysis', 'o3_mini_intent_analyzer', 'analyze_intent', 25, ['analysis', 'conclusion', 'confidence', 'inferred_assets']],
      BRAND_ANALYSIS: ['brand_analysis', 'o3_mini_brand_analyzer', 'analyze_brand', 50, ['analysis', 'conclusion', 'confidence', 'brand_strength']],
      COMPLEXITY_ASSESSMENT: ['complexity_assessment', 'o3_mini_complexity_analyzer', 'assess_complexity', 75, ['analysis', 'conclusion', 'confidence', 'complexity_level', 'complexity_score']],
    };
    assert.deepEqual(Object.keys(AgentTaskConfigs), Object.keys(expected));
    for (const [key, [taskName, toolName, fn, progress, required]] of Object.entries(expected)) {
      const c = AgentTaskConfigs[key];
      assert.deepEqual([c.taskName, c.toolName, c.functionDefinition.name, c.progressPercent, c.functionDefinition.parameters.required, c.taskType],
        [taskName, toolName, fn, progress, required, 'analysis']);
    }
    assert.deepEqual(AgentTaskConfigs.BRAND_ANALYSIS.functionDefinition.parameters.properties.brand_strength.enum, ['weak', 'moderate', 'strong', 'excellent']);
    assert.deepEqual(AgentTaskConfigs.COMPLEXITY_ASSESSMENT.functionDefinition.parameters.properties.complexity_level.enum, ['simple', 'moderate', 'complex', 'expert']);
    assert.match(AgentTaskConfigs.INTENT_ANALYSIS.userPromptTemplate({}), /"undefined" for brand \(0 ref images\)/);
    assert.deepEqual(AgentTaskConfigs.BRAND_ANALYSIS.userPromptTemplate({}).split('\n'), ['Brand: Unknown', 'Colors: None', 'Messaging: None', 'Reference Images: 0']);
    const complexity = AgentTaskConfigs.COMPLEXITY_ASSESSMENT.userPromptTemplate({}).split('\n');
    assert.deepEqual(complexity.slice(1), ['Prompt: ""', 'Brand: Unknown (Unknown)', 'Assets: 1', 'References: 0']);
  });

  test('AgentTaskBuilder: fluent, progress(0) is valid, build() names the missing field and returns fresh copies', () => {
    const b = AgentTaskBuilder.create('t').type('analysis').tool('x').systemPrompt('s').userPrompt(() => 'u')
      .function({ name: 'f', description: 'd', parameters: { type: 'object', properties: {}, required: [] } });
    assert.throws(() => b.build(), { message: 'Missing required field: progressPercent' });
    assert.equal(b.progress(0), b);
    const one = b.build();
    const two = b.build();
    assert.notEqual(one, two);
    assert.equal(one.progressPercent, 0);
    b.progress(50);
    assert.equal(one.progressPercent, 0, 'earlier builds are not aliased');
    assert.throws(() => new AgentTaskBuilder().build(), { message: 'Missing required field: taskName' });
    assert.throws(() => AgentTaskBuilder.create('t').type('analysis').build(), { message: 'Missing required field: toolName' });
  });

  test('createTaskHelpers pass exactly the listed taskInput keys', async () => {
    const seen = [];
    const fake = { executeAgentTask: async (req, input, config) => { seen.push([Object.keys(input), config.taskName]); return {}; } };
    const h = createTaskHelpers(fake);
    const req = { ...request, prompt: 'p', brandContext: {}, inferredAssets: 2, brandStrength: 'strong', extra: 1 };
    await h.createIntentAnalysisTask(req);
    await h.createBrandAnalysisTask(req);
    await h.createComplexityAssessmentTask(req);
    assert.deepEqual(seen, [
      [['prompt', 'brandContext'], 'intent_analysis'],
      [['brandContext'], 'brand_analysis'],
      [['prompt', 'brandContext', 'inferredAssets', 'brandStrength'], 'complexity_assessment'],
    ]);
  });

  test('validateAgentTaskRequest and handleAgentTaskError keep their shapes; the schema parses like zod', () => {
    const ok = validateAgentTaskRequest({ ...request, extra: 1, previousCSI: {} });
    assert.equal(ok.success, true);
    assert.deepEqual(ok.data.previousCSI, { completedSteps: [], currentProgress: 0, totalSteps: 4, currentStep: 'pending' });
    assert.equal('extra' in ok.data, false);
    const bad = validateAgentTaskRequest({});
    assert.equal(bad.success, false);
    assert.ok(bad.errors.every((e) => 'code' in e && 'path' in e));
    assert.equal(BaseAgentTaskRequestSchema.safeParse(request).success, true);
    assert.throws(() => BaseAgentTaskRequestSchema.parse({}));
    const zodError = BaseAgentTaskRequestSchema.safeParse({}).error;
    assert.deepEqual(Object.keys(handleAgentTaskError(zodError, 't')), ['success', 'error', 'details']);
    assert.deepEqual(handleAgentTaskError(new Error('m'), 't'), { success: false, error: 't failed', message: 'm' });
  });
  test('a spec larger than the core keeps (a 5 MB system prompt) is sent with every call and still works', async () => {
    const seen = [];
    const client = { chat: { completions: { create: async (params) => {
      seen.push(params.messages[0].content.length);
      return toolCallResponse({ name: params.tool_choice.function.name, arguments: JSON.stringify(intentArgs) }).body;
    } } } };
    const executor = new AgentTaskExecutor(client);
    const big = { ...AgentTaskConfigs.INTENT_ANALYSIS, systemPrompt: 'x'.repeat(5_000_000) };
    for (let i = 0; i < 2; i++) {
      const r = await executor.executeAgentTask(request, intentInput, big);
      assert.equal(r.success, true);
    }
    assert.deepEqual(seen, [5_000_000, 5_000_000]);
    // Small specs are cached again afterwards.
    assert.equal((await executor.executeAgentTask(request, intentInput, AgentTaskConfigs.INTENT_ANALYSIS)).success, true);
  });

  test('task specs compiled in the core: a changed config is sent again, and specs evicted from the core are resent', async () => {
    const seen = [];
    const client = { chat: { completions: { create: async (params) => {
      seen.push(params);
      return toolCallResponse({ name: params.tool_choice.function.name, arguments: JSON.stringify(intentArgs) }).body;
    } } } };
    const executor = new AgentTaskExecutor(client);
    const base = AgentTaskConfigs.INTENT_ANALYSIS;
    const first = await executor.executeAgentTask(request, intentInput, base);
    assert.equal(first.success, true);
    // The same object changed in place must not be served from the core's compiled copy.
    const changed = { ...base, systemPrompt: 'a different system prompt', modelConfig: { model: 'o3-mini', maxTokens: 99 } };
    const second = await executor.executeAgentTask(request, intentInput, changed);
    assert.equal(second.success, true);
    assert.equal(seen[1].messages[0].content, 'a different system prompt');
    assert.equal(seen[1].model, 'o3-mini');
    assert.equal(seen[1].max_completion_tokens, 99);
    assert.equal('temperature' in seen[1], false);
    // More distinct specs than the core keeps (64): the first ones are evicted and sent again.
    for (let i = 0; i < 70; i++) {
      const r = await executor.executeAgentTask(request, intentInput, { ...base, taskName: `task_${i}`, systemPrompt: `prompt ${i}` });
      assert.equal(r.success, true);
      assert.equal(r.stepResult.step, `task_${i}`);
    }
    const again = await executor.executeAgentTask(request, intentInput, base);
    assert.equal(again.success, true);
    assert.equal(again.stepResult.step, 'intent_analysis');
    assert.equal(seen.at(-1).messages[0].content, base.systemPrompt);
    assert.equal(seen.at(-1).messages[1].content, base.userPromptTemplate(intentInput));
  });
});
