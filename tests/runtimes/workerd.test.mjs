// Runs @growthub/agent-tools inside Cloudflare's workerd (through Miniflare) the way a Wrangler
// deployment would: the worker is bundled with the `workerd` export condition, the .wasm import is
// left for the CompiledWasm rule, and the engine is created lazily inside a request handler.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { startUpstashRestServer } from '../fixtures/upstash-rest-server.mjs';
import { startRedis } from '../helpers/redis.mjs';
import { DEFAULT_SPEC_PATH, errorResponse, startOpenAIServer, toolCallResponse } from '../fixtures/openai-server.mjs';
import { existsSync } from 'node:fs';

const haveSpec = existsSync(DEFAULT_SPEC_PATH);
const OPENAI_KEY = `sk-workerd-${process.pid}`;

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.join(here, 'workerd');
const wasmPath = fileURLToPath(new URL('../../js/dist/agent_tools.wasm', import.meta.url));
// Miniflare names modules by their path relative to modulesRoot; nothing is written there.
const modulesRoot = path.join(fixtures, 'virtual');
const WASM_NAME = 'agent_tools.wasm';

// Wrangler's esbuild settings; .wasm imports stay imports, renamed to the module we hand Miniflare.
async function bundleWorker() {
  const result = await build({
    entryPoints: [path.join(fixtures, 'worker.js')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    conditions: ['workerd', 'worker', 'browser'],
    logLevel: 'silent',
    plugins: [{
      name: 'compiled-wasm',
      setup(b) {
        b.onResolve({ filter: /\.wasm$/ }, () => ({ path: `./${WASM_NAME}`, external: true }));
      },
    }],
  });
  return result.outputFiles[0].text;
}

let mf;
let baseUrl;
let redis;
let rest;
let openai;

before(async () => {
  redis = await startRedis();
  rest = await startUpstashRestServer({ redisUrl: redis.url, token: `workerd-${process.pid}` });
  if (haveSpec) openai = await startOpenAIServer({ apiKey: OPENAI_KEY });
  const [code, wasm] = await Promise.all([bundleWorker(), readFile(wasmPath)]);
  // If the import had been inlined or dropped, workerd would have to compile wasm from bytes,
  // which it forbids during a request.
  assert.match(code, /from\s*"\.\/agent_tools\.wasm"/, 'the bundle must import the wasm module');
  // The REST store's transport is fetch here: the node:http one must not even be in the bundle.
  assert.doesNotMatch(code, /(?:from|import)\s*\(?\s*["']node:/, 'the bundle must not import node: modules');
  assert.doesNotMatch(code, /name: "node:http"/, 'the node transport must not be in the bundle');
  mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    compatibilityDate: '2025-09-01',
    // What a Vercel KV / Upstash project puts in the environment; here the local REST fixture.
    bindings: {
      KV_REST_API_URL: rest.url,
      KV_REST_API_TOKEN: rest.token,
      OPENAI_BASE_URL: openai?.url ?? 'http://127.0.0.1:9/v1',
      OPENAI_API_KEY: OPENAI_KEY,
    },
    modulesRoot,
    modules: [
      { type: 'ESModule', path: path.join(modulesRoot, 'worker.mjs'), contents: code },
      { type: 'CompiledWasm', path: path.join(modulesRoot, WASM_NAME), contents: wasm },
    ],
  });
  // Startup evaluates the worker's global scope: workerd throws there on timers, randomness or I/O.
  baseUrl = await mf.ready;
});

after(async () => {
  await mf?.dispose();
  await rest?.close();
  await openai?.close();
  await redis?.stop();
});

// One real HTTP round trip, timed from this side: workerd's clocks stand still while code runs.
async function call(route) {
  const started = performance.now();
  const response = await fetch(new URL(route, baseUrl));
  const body = await response.json();
  const clientMs = performance.now() - started;
  assert.equal(response.status, 200, `${route} failed in the worker: ${body.error ?? JSON.stringify(body)}`);
  return { body, clientMs };
}

const ms = (n) => `${n.toFixed(1)} ms`;

test('workerd: lazy engine, then the 1000-operation bridge burst, cold and warm', async (t) => {
  const engine = await call('/engine');
  // Importing the package did no work: the first instantiation happens inside this request.
  assert.equal(engine.body.instantiationsBefore, 0, 'wasm was instantiated at global scope');
  assert.equal(engine.body.instantiationsAfter, 1);
  assert.equal(engine.body.stats.liveOperations, 0);

  const bursts = [];
  for (const [label, seed] of [['cold', 1], ['warm', 2]]) {
    const { body, clientMs } = await call(`/burst?count=1000&seed=${seed}`);
    assert.equal(body.count, 1000);
    assert.deepEqual(body.mismatches.slice(0, 5), [], `${label} burst: replies went to the wrong operation`);
    assert.equal(body.mismatches.length, 0);
    assert.equal(body.failedAsExpected, 100);
    assert.equal(body.stats.liveOperations, 0, `${label} burst left operations alive`);
    bursts.push(`${label} ${ms(body.ms)} (client ${ms(clientMs)})`);
  }

  t.diagnostic(
    `workerd: first engine ${ms(engine.body.ms)} (client ${ms(engine.clientMs)}), ` +
    `1000 ops ${bursts.join(', ')}`,
  );
});

test('workerd: locks over Upstash REST with fetch, from inside the worker', async (t) => {
  const prefix = `wd${process.pid}x${Date.now()}`;
  const { body, clientMs } = await call(`/kv?prefix=${prefix}`);
  // One winner per key among 20 concurrent contenders, each with the key's first fence.
  assert.equal(body.winners.length, 10);
  assert.deepEqual(new Set(body.winners.map((w) => w.key)).size, 10);
  assert.ok(body.winners.every((w) => w.fence === 1));
  assert.equal(body.held, 190);
  assert.equal(body.inspected.held, true);
  assert.ok(body.inspected.remainingMs > 25_000);
  assert.equal(body.listed.length, 10);
  assert.equal(body.released, 10);
  assert.deepEqual(body.renewed, { fence: 1, aborted: false, held: true });
  assert.deepEqual(body.afterwards, []);
  assert.equal(body.transport, 'fetch');
  t.diagnostic(`workerd: 200 concurrent acquires + 10 releases + a renewed hold over REST in ${ms(clientMs)} (client)`);
});

test('workerd: a task through the fetch transport retries a 429 and validates the tool call', { skip: !haveSpec && 'no ../shared/specs' }, async (t) => {
  const args = { analysis: 'a', conclusion: 'c', confidence: 0.5, inferred_assets: 2 };
  openai.reset();
  openai.script(errorResponse(429, { headers: { 'retry-after-ms': '30' } }), toolCallResponse({ name: 'analyze_intent', arguments: JSON.stringify(args) }));
  const { body, clientMs } = await call('/task');
  assert.equal(body.success, true, JSON.stringify(body.error));
  assert.deepEqual(body.stepResult, { step: 'intent_analysis', ...args });
  assert.equal(openai.requests.length, 2);
  assert.ok(openai.requests.every((r) => r.valid && r.authorized));
  assert.deepEqual(openai.requests[0].body, openai.requests[1].body);

  openai.reset();
  openai.script(toolCallResponse({ name: 'analyze_intent', arguments: '{"analysis": 1}' }));
  const bad = (await call('/task')).body;
  assert.equal(bad.success, false);
  assert.equal(bad.error.code, 'VALIDATION_FAILED');
  assert.ok(!JSON.stringify(bad).includes(OPENAI_KEY));
  t.diagnostic(`workerd: task with one 429 retry in ${ms(clientMs)} (client)`);
});
