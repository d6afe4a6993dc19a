// Node: read the .wasm beside the package and compile it. The path is relative to this file; the
// CommonJS bundle (dist/node/index.cjs) sits at the same depth, so the same path works there.
import { readFile } from 'node:fs/promises';

export async function loadWasmModule() {
  const bytes = await readFile(new URL('../../dist/agent_tools.wasm', import.meta.url));
  return WebAssembly.compile(bytes);
}
