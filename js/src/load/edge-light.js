// Vercel Edge: the `?module` suffix makes the bundler hand over a compiled WebAssembly.Module;
// compiling from bytes is not allowed there.
import wasmModule from '../../dist/agent_tools.wasm?module';

export async function loadWasmModule() {
  return wasmModule;
}
