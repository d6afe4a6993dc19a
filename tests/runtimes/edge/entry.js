// The edge function under test, as a Vercel Edge project would write it: a fetch handler that
// imports the package by name. edge.test.mjs bundles it with the `edge-light` condition and
// evaluates it in an EdgeRuntime VM, where code generation from strings is off.
import { getDefaultEngine } from '@growthub/agent-tools/runtime';
import { bridgeBurst, codeGenerationBlocked } from '../workload.js';

async function run(seed) {
  const started = performance.now();
  const engine = await getDefaultEngine(); // first call: instantiates the wasm module
  const firstEngineMs = performance.now() - started;
  const { count, ms, failedAsExpected, mismatches } = await bridgeBurst(engine, { count: 1000, seed });
  return {
    firstEngineMs,
    count,
    ms,
    failedAsExpected,
    mismatches,
    liveOperations: engine.stats().liveOperations,
    codeGenerationBlocked: codeGenerationBlocked(),
  };
}

addEventListener('fetch', (event) => {
  const seed = Number(new URL(event.request.url).searchParams.get('seed') ?? 1);
  event.respondWith(
    run(seed).then(
      (result) => Response.json(result),
      (error) => Response.json({ error: String(error?.stack ?? error) }, { status: 500 }),
    ),
  );
});
