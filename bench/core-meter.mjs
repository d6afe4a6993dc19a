// Time spent inside the wasm core: wraps the input export (agent_tools_feed, which takes a batch
// of inputs) with a clock, so a benchmark can report the core's own cost apart from the JS
// driver, the API shim and the host (KV store, HTTP transport). Bench-only; the package never
// does this.
//
// Install it after a warm-up: Emscripten's export stubs replace themselves with the raw export on
// first call, which would also replace a wrapper installed before that.
import { loadWasm } from '@growthub/agent-tools/runtime';

const INPUTS = ['_agent_tools_feed'];

export async function meterCore() {
  const wasm = await loadWasm();
  const originals = INPUTS.map((name) => wasm[name]);
  let ms = 0;
  let calls = 0;
  INPUTS.forEach((name, i) => {
    const input = originals[i];
    wasm[name] = (...args) => {
      const t0 = performance.now();
      try {
        return input(...args);
      } finally {
        ms += performance.now() - t0;
        calls++;
      }
    };
  });
  return {
    /** Microseconds inside the core (and input calls) since the last reset. */
    read: () => ({ us: ms * 1000, calls }),
    reset: () => {
      ms = 0;
      calls = 0;
    },
    uninstall: () => INPUTS.forEach((name, i) => (wasm[name] = originals[i])),
  };
}
