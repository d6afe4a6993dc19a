// @growthub/agent-tools/kv: distributed locks over a Redis-compatible KV.
export { DEFAULT_LOCK_TTL_SECONDS } from './generated/constants.js';
