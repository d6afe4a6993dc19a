// Runs the package inside Vercel's edge-runtime (an EdgeRuntime VM): the edge function in
// edge/entry.js is bundled the way Vercel's bundler would (edge-light condition, `.wasm?module`
// imports turned into a compiled WebAssembly.Module) and called through a fetch event.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { EdgeRuntime } from 'edge-runtime';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const WASM_PATH = here('../../js/dist/agent_tools.wasm');
const SEED = 0x5eed;

// Stands in for Vercel's bundler: `import m from './x.wasm?module'` becomes a module whose default
// export is the compiled WebAssembly.Module, here handed in by the host as a VM global.
const wasmImports = [];
const wasmModulePlugin = {
  name: 'wasm-module',
  setup(build) {
    build.onResolve({ filter: /\.wasm\?module$/ }, (args) => {
      wasmImports.push(args.path);
      return { path: args.path, namespace: 'wasm-module' };
    });
    build.onLoad({ filter: /.*/, namespace: 'wasm-module' }, () => ({
      contents: `
        const module = globalThis.__compiledWasm;
        if (!module) throw new Error('the host did not provide the compiled wasm module');
        export default module;`,
      loader: 'js',
    }));
  },
};

async function bundleEdgeFunction() {
  const result = await esbuild.build({
    entryPoints: [here('./edge/entry.js')],
    bundle: true,
    write: false,
    format: 'iife', // EdgeRuntime.evaluate() runs classic scripts only
    platform: 'browser',
    conditions: ['edge-light'],
    target: 'es2022',
    logLevel: 'silent',
    plugins: [wasmModulePlugin],
  });
  assert.deepEqual(result.warnings, [], 'esbuild warnings');
  // Proves the edge-light loader was picked (the browser one would fetch the .wasm instead).
  assert.deepEqual(wasmImports, ['../../dist/agent_tools.wasm?module']);
  return result.outputFiles[0].text;
}

test('edge-runtime: bridge workload on the edge-light build', { timeout: 30_000 }, async (t) => {
  const code = await bundleEdgeFunction();
  // Compiling is the bundler's/platform's job on Vercel, so it happens here, outside the VM.
  const bytes = await readFile(WASM_PATH);
  const compileStarted = performance.now();
  const compiledWasm = await WebAssembly.compile(bytes);
  const compileMs = performance.now() - compileStarted;

  const runtime = new EdgeRuntime({
    // Like Vercel Edge: no eval/new Function, and no compiling wasm from bytes inside the function.
    codeGeneration: { strings: false, wasm: false },
    extend: (context) => {
      context.__compiledWasm = compiledWasm;
      return context;
    },
  });
  runtime.evaluate(code);

  const response = await runtime.dispatchFetch(`http://127.0.0.1/run?seed=${SEED}`);
  const body = await response.text(); // a handler that threw gets an empty 500 from the runtime
  if (response.status !== 200) assert.fail(`in the edge function (HTTP ${response.status}): ${body}`);
  const result = JSON.parse(body);

  t.diagnostic(`edge-runtime: first engine ${result.firstEngineMs.toFixed(1)} ms, 1000 ops ${result.ms.toFixed(1)} ms`);
  t.diagnostic(`edge-runtime: (wasm compiled outside the VM in ${compileMs.toFixed(1)} ms, not included above)`);
  assert.equal(result.codeGenerationBlocked, true, 'the VM should reject eval and new Function');
  assert.deepEqual(result.mismatches, []);
  assert.equal(result.count, 1000);
  assert.equal(result.failedAsExpected, 100);
  assert.equal(result.liveOperations, 0);
});
