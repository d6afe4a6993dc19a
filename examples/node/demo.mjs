// The main job: the library at work on its embedded defaults (in-memory KV, no network).
// 1. The host bridge: 1,000 operations at once on one wasm instance.
// 2. Distributed locks: 20 workers contend for one lock; each waits its turn, gets a strictly
//    larger fence, and holds it alone.
// 3. Agent tasks: intent -> brand -> complexity, each a forced OpenAI tool call validated in the
//    core, run under a lock. Without OPENAI_API_KEY / OPENAI_BASE_URL an offline replay client
//    answers (labelled as such); with them, the real API does.
import { getDefaultEngine, AgentToolsError } from '@growthub/agent-tools/runtime';
import { KVLockManager, InMemoryKVStore, acquireKvLock, checkKvLock, releaseKvLock, AgentTaskExecutor, AgentTaskConfigs } from '@growthub/agent-tools';
import { createReplayClient } from './replay-client.mjs';

// A bare host function for the bridge demo: the core's KV calls land here.
const store = new Map();
const host = {
  kv([command, key]) {
    if (command !== 'INCR') throw new AgentToolsError('INVALID_ARGUMENT', `demo KV knows only INCR, not ${command}`);
    const next = (store.get(key) ?? 0) + 1;
    store.set(key, next);
    // Reply after a random short delay, so completions interleave.
    return new Promise((resolve) => setTimeout(() => resolve(next), Math.random() * 5));
  },
};

const t0 = performance.now();
const engine = await getDefaultEngine();
const loadMs = performance.now() - t0;

const t1 = performance.now();
const results = await Promise.all(Array.from({ length: 1000 }, (_, i) =>
  engine.run('diag.echo', {
    tag: i,
    calls: [{ kind: 'kv', args: ['INCR', 'demo:counter'] }, { kind: 'now' }, { kind: 'random', bytes: 8 }],
  }, { host })));
const burstMs = performance.now() - t1;

const counts = results.map((r) => r.results[0]).sort((a, b) => a - b);
const distinct = new Set(counts).size;
console.log('@growthub/agent-tools bridge demo (in-memory KV, no network)');
console.log(`  wasm engine ready in ${loadMs.toFixed(1)} ms`);
console.log(`  1,000 concurrent operations, 3,000 host calls: ${burstMs.toFixed(1)} ms`);
console.log(`  counter = ${store.get('demo:counter')}, each operation saw a distinct value: ${distinct === 1000}`);
console.log(`  sample result: ${JSON.stringify(results[0])}`);

try {
  await engine.run('diag.echo', { calls: [{ kind: 'sleep', ms: 10_000 }] }, { signal: AbortSignal.timeout(50) });
} catch (error) {
  console.log(`  cancelled after 50 ms: ${error.name} ${error.code}: ${error.message}`);
}
try {
  await engine.run('diag.echo', { calls: [{ kind: 'kv', args: ['DEL', 'x'] }] }, { host });
} catch (error) {
  console.log(`  host failure, typed: ${error.code}: ${error.message}`);
}
const { liveOperations, heapInUse } = engine.stats();
console.log(`  afterwards: ${liveOperations} live operations, ${heapInUse} bytes in use on the wasm heap`);

console.log('\nDistributed locks (the default manager and an InMemoryKVStore; same API on Redis, Upstash, Vercel KV)');
const first = await acquireKvLock('user-42', 'thread-7');
console.log(`  acquireKvLock: ${JSON.stringify(first)}`);
console.log(`  a second acquire while held: success=${(await acquireKvLock('user-42', 'thread-7')).success}`);
console.log(`  checkKvLock: ${JSON.stringify(await checkKvLock('user-42', 'thread-7'))}`);
console.log(`  releaseKvLock: ${await releaseKvLock('user-42', 'thread-7')}`);

const locks = new KVLockManager(new InMemoryKVStore(), { keyPrefix: 'demo' });
let inside = 0;
let maxInside = 0;
const fences = [];
const t2 = performance.now();
await Promise.all(Array.from({ length: 20 }, (_, worker) =>
  locks.withKvLock('tenant', 'report', async ({ fence }) => {
    inside++;
    maxInside = Math.max(maxInside, inside);
    fences.push(fence);
    await new Promise((resolve) => setTimeout(resolve, 5));
    inside--;
  }, { ttlSeconds: 5, wait: { timeoutMs: 10_000, baseMs: 2, maxMs: 20 } })));
const increasing = fences.every((f, i) => i === 0 || f > fences[i - 1]);
console.log(`  20 contending workers took turns in ${(performance.now() - t2).toFixed(0)} ms; at most ${maxInside} inside at once`);
console.log(`  fences in order of entry: ${fences.join(' ')} (strictly increasing: ${increasing})`);

const online = Boolean(process.env.OPENAI_API_KEY || process.env.OPENAI_BASE_URL);
console.log(`\nAgent tasks (${online ? 'OpenAI API via fetch' : 'OFFLINE REPLAY: canned answers, no model (set OPENAI_API_KEY to use the real API)'})`);
const executor = online ? new AgentTaskExecutor({ apiKey: process.env.OPENAI_API_KEY ?? 'no-key' }) : new AgentTaskExecutor(createReplayClient());
const request = { threadId: crypto.randomUUID(), userId: 'demo-user', agentType: 'CONTENT_GENERATION_AGENT', taskSequence: 1 };
const brandContext = { brand_name: 'Acme', colors: ['#ff5500'], messaging: 'Bold and simple', referenceImages: ['a.png', 'b.png'] };
await locks.withKvLock(request.userId, request.threadId, async ({ fence }) => {
  let csi;
  const steps = [
    [AgentTaskConfigs.INTENT_ANALYSIS, { prompt: 'Three launch posts for our new sneaker', brandContext }],
    [AgentTaskConfigs.BRAND_ANALYSIS, { brandContext }],
    [AgentTaskConfigs.COMPLEXITY_ASSESSMENT, { prompt: 'Three launch posts for our new sneaker', brandContext, inferredAssets: 3, brandStrength: 'strong' }],
  ];
  for (const [i, [config, input]] of steps.entries()) {
    const result = await executor.executeAgentTask({ ...request, taskSequence: i + 1, previousCSI: csi }, input, config);
    if (!result.success) {
      console.log(`  ${config.taskName}: failed ${result.error.code} (${result.error.details?.reason}): ${result.error.message}`);
      return;
    }
    csi = result.updatedCSI;
    const { step, conclusion, confidence } = result.stepResult;
    console.log(`  ${step}: ${conclusion} (confidence ${confidence}); progress ${csi.currentProgress}%, steps ${csi.completedSteps.join(' > ')}`);
  }
  console.log(`  all three ran under one lock (fence ${fence}); tool arguments were validated against each function's schema in the core`);
}, { ttlSeconds: 30 });
