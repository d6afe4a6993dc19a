// Bridge throughput on Node: operations per second and time per host call, for hosts that
// answer synchronously, from a microtask, or after a timer, at 1,000 and 10,000 concurrent
// operations on one instance. Exported for bench/run.mjs; runnable alone.
import { getDefaultEngine } from '@growthub/agent-tools/runtime';
import { bridgeBurst } from '../tests/runtimes/workload.js';

const hosts = {
  sync: { kv: ([, key]) => key, now: () => 1 },
  microtask: { kv: async ([, key]) => key, now: async () => 1 },
  'timer 0 ms': { kv: ([, key]) => new Promise((r) => setTimeout(() => r(key), 0)), now: () => 1 },
};

async function burst(engine, host, count) {
  const started = performance.now();
  const runs = [];
  for (let i = 0; i < count; i++) {
    runs.push(engine.run('diag.echo', {
      tag: i,
      calls: [{ kind: 'kv', args: ['GET', `k${i}`] }, { kind: 'now' }, { kind: 'kv', args: ['INCR', `k${i}`] }],
    }, { host }));
  }
  await Promise.all(runs);
  return performance.now() - started;
}

export async function benchBridge({ repeats = 5 } = {}) {
  const t0 = performance.now();
  const engine = await getDefaultEngine();
  const rows = [{ case: 'first engine (compile + instantiate)', ms: performance.now() - t0 }];
  for (const [name, host] of Object.entries(hosts)) {
    for (const count of [1000, 10_000]) {
      await burst(engine, host, count); // warm-up
      const times = [];
      for (let r = 0; r < repeats; r++) times.push(await burst(engine, host, count));
      times.sort((a, b) => a - b);
      const median = times[Math.floor(times.length / 2)];
      rows.push({ case: `${count} ops × 3 host calls, ${name}`, ms: median, opsPerSec: Math.round(count / (median / 1000)), usPerCall: (median * 1000) / (count * 3) });
    }
  }
  const mixed = await bridgeBurst(engine, { count: 10_000, seed: 3 });
  rows.push({ case: '10000 ops, mixed sync/microtask/timer (test workload)', ms: mixed.ms, opsPerSec: Math.round(10_000 / (mixed.ms / 1000)) });
  const before = engine.stats().heapInUse;
  rows.push({ case: 'wasm heap in use after all bursts (bytes)', ms: null, value: before });
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await benchBridge();
  console.table(rows);
}
