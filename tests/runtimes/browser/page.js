// The page under test: imports the package by name (resolved by the page's import map to the
// unbundled js/src files, with `#wasm-module` mapped to the browser loader), runs the shared
// workload, and leaves the result in `globalThis.workload` for browser.test.mjs to read.
import { getDefaultEngine } from '@growthub/agent-tools/runtime';
import { bridgeBurst, codeGenerationBlocked } from '../workload.js';

// Any CSP violation before the probe below comes from the package (e.g. an eval in the glue).
const violations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  violations.push(`${event.violatedDirective} blocked ${event.blockedURI} at ${event.sourceFile}:${event.lineNumber}`);
});

async function run(seed) {
  const started = performance.now();
  const engine = await getDefaultEngine(); // first call: fetches, compiles and instantiates the wasm
  const firstEngineMs = performance.now() - started;
  const { count, ms, failedAsExpected, mismatches } = await bridgeBurst(engine, { count: 1000, seed });
  const liveOperations = engine.stats().liveOperations;
  // Let queued securitypolicyviolation events arrive before taking the package's share.
  await new Promise((resolve) => setTimeout(resolve, 0));
  const packageViolations = [...violations];
  return {
    firstEngineMs,
    count,
    ms,
    failedAsExpected,
    mismatches,
    liveOperations,
    packageViolations,
    codeGenerationBlocked: codeGenerationBlocked(),
  };
}

const seed = Number(new URLSearchParams(location.search).get('seed') ?? 1);
globalThis.workload = run(seed).catch((error) => ({ error: String(error?.stack ?? error) }));
