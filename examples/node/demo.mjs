// The main job: the library at work on its embedded defaults (in-memory KV, no network).
// 1. The host bridge: 1,000 operations at once on one wasm instance.
// 2. Distributed locks: 20 workers contend for one lock; each waits its turn, gets a strictly
//    larger fence, and holds it alone.
import { getDefaultEngine, AgentToolsError } from '@growthub/agent-tools/runtime';
import { KVLockManager, InMemoryKVStore, acquireKvLock, checkKvLock, releaseKvLock } from '@growthub/agent-tools';

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
