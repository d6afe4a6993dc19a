// The main job, for now: show the host bridge at work on the embedded defaults. 1,000 operations
// run at once on one wasm instance; each asks the host for a KV increment, the clock and random
// bytes, and the replies arrive in whatever order the host produces them.
import { getDefaultEngine, AgentToolsError } from '@growthub/agent-tools/runtime';

// A stand-in KV for this demo only (the real adapters come with the kv module).
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
