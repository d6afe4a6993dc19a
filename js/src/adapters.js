// @growthub/agent-tools/adapters: KV stores for KVLockManager (new in this version).
export { InMemoryKVStore } from '#adapters/kv-memory.js';
export { UpstashRestStore } from '#adapters/kv-upstash-rest.js';
export { fromNodeRedis, fromUpstashClient } from '#adapters/kv-clients.js';
export { fromLegacyStore } from '#adapters/kv-legacy.js';
