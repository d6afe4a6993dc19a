// Cloudflare Workers: the bundler (Wrangler's CompiledWasm rule) turns this import into a compiled
// WebAssembly.Module; workerd forbids compiling wasm from bytes while serving a request.
import wasmModule from '../../dist/agent_tools.wasm';

export async function loadWasmModule() {
  return wasmModule;
}
