// The worker under test. Its top level only imports: workerd forbids timers, randomness and I/O
// at global scope, so the engine is created lazily, inside the first request that needs it.
import { probe } from './global-scope-probe.js';
import { getDefaultEngine } from '@growthub/agent-tools/runtime';
import { KVLockManager } from '@growthub/agent-tools/kv';
import { UpstashRestStore } from '@growthub/agent-tools/adapters';
import { AgentTaskExecutor, AgentTaskConfigs } from '@growthub/agent-tools/tasks';
import { bridgeBurst } from '../workload.js';

// performance.now() only advances across I/O in workerd; the test also times each round trip.
const now = () => performance.now();

const json = (body, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    try {
      if (url.pathname === '/engine') {
        const instantiationsBefore = probe.instantiations;
        const started = now();
        const engine = await getDefaultEngine();
        const ms = now() - started;
        return json({ ms, instantiationsBefore, instantiationsAfter: probe.instantiations, stats: engine.stats() });
      }
      if (url.pathname === '/burst') {
        const engine = await getDefaultEngine();
        const seed = Number(url.searchParams.get('seed') ?? 1);
        const result = await bridgeBurst(engine, { count: Number(url.searchParams.get('count') ?? 1000), seed });
        return json({ ...result, stats: engine.stats() });
      }
      if (url.pathname === '/kv') {
        // Locks through Upstash REST over fetch, from inside workerd (env from the test's bindings).
        const store = UpstashRestStore.fromEnv(env);
        const prefix = url.searchParams.get('prefix');
        const a = new KVLockManager(store, { keyPrefix: prefix });
        const b = new KVLockManager(store, { keyPrefix: prefix });
        // 10 keys, 20 contenders each, all at once: exactly one winner per key.
        const attempts = await Promise.all(Array.from({ length: 200 }, (_, i) =>
          (i % 2 ? a : b).acquireKvLock('user', `key-${i % 10}`, { ttlSeconds: 30 })));
        const winners = attempts.filter((r) => r.success);
        const inspected = await a.inspectKvLock('user', 'key-0');
        const listed = await a.listKvLocks();
        let released = 0;
        for (const w of winners) released += (await a.releaseKvLock('user', w.lockKey.split(':').pop(), { lockId: w.lockId })) ? 1 : 0;
        const renewed = await a.withKvLock('user', 'renewed', async ({ fence, signal }) => {
          await new Promise((resolve) => setTimeout(resolve, 600)); // past the 0.25 s TTL
          return { fence, aborted: signal.aborted, held: (await b.inspectKvLock('user', 'renewed')).held };
        }, { ttlSeconds: 0.25 });
        return json({
          winners: winners.map((w) => ({ key: w.lockKey, fence: w.fence })),
          held: attempts.filter((r) => !r.success).length,
          inspected, listed, released, renewed,
          afterwards: await a.listKvLocks(),
          transport: store.transport,
        });
      }
      if (url.pathname === '/task') {
        // One task through the built-in fetch transport, from inside workerd, against the OpenAI
        // fixture (its base URL and key come from the test's bindings, as secrets would).
        const executor = new AgentTaskExecutor({ apiKey: env.OPENAI_API_KEY, baseURL: env.OPENAI_BASE_URL, maxRetries: 2 });
        const request = { threadId: '6f1c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f', userId: 'u', agentType: 'TEXT_ANALYSIS_AGENT', taskSequence: 1 };
        const result = await executor.executeAgentTask(request, { prompt: 'p' }, AgentTaskConfigs.INTENT_ANALYSIS);
        return json(result);
      }
      return json({ error: `no route ${url.pathname}` }, 404);
    } catch (error) {
      // Surface the failure to the test instead of workerd's generic 500 page.
      return json({ error: String(error?.stack ?? error), code: error?.code }, 500);
    }
  },
};
