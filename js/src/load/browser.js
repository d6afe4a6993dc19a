// Browsers (and any runtime without a more specific condition): fetch the .wasm next to the
// package and compile it while it streams. Bundlers rewrite this URL to the emitted asset.
export async function loadWasmModule() {
  const url = new URL('../../dist/agent_tools.wasm', import.meta.url);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`fetching ${url} failed with HTTP ${response.status}`);
  if (WebAssembly.compileStreaming && response.headers.get('content-type')?.startsWith('application/wasm')) {
    return WebAssembly.compileStreaming(response);
  }
  // Servers that send another Content-Type: compile from the bytes instead.
  return WebAssembly.compile(await response.arrayBuffer());
}
