// @growthub/agent-tools/runtime: the engine under the public API, for tests, benchmarks and
// callers who want their own engine or their own wasm loading. Not part of the original package.
export { AgentEngine, getDefaultEngine, loadWasm } from './engine.js';
export { AgentToolsError } from './errors.js';
export { ErrorCode, HostCall, KV_SCRIPTS, MAX_JSON_DEPTH, MAX_MESSAGE_BYTES, MAX_RANDOM_BYTES } from './generated/constants.js';
