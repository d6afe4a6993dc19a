// Which kind of store the caller handed over, and the `kv` host function that reaches it. The
// lock rules themselves live in the core; this only picks the wire.
import { fromLegacyStore } from '#adapters/kv-legacy.js';
import { fromNodeRedis, fromUpstashClient } from '#adapters/kv-clients.js';
import { AgentToolsError } from './errors.js';
import { ErrorCode } from './generated/constants.js';

/**
 * @returns {{ host: { kv(args: string[], signal: AbortSignal): unknown }, mode: 'script' | 'basic' }}
 */
export function resolveKvStore(store) {
  let protocol = null;
  let mode = 'script';
  // Client libraries first: a node-redis client also has a `command` method (Redis's COMMAND).
  if (typeof store?.sendCommand === 'function') protocol = fromNodeRedis(store); // node-redis
  else if (typeof store?.evalsha === 'function' && typeof store?.pipeline === 'function') protocol = fromUpstashClient(store); // @upstash/redis, @vercel/kv
  else if (typeof store?.command === 'function') protocol = store; // InMemoryKVStore, UpstashRestStore, ...
  else if (['get', 'set', 'delete'].every((m) => typeof store?.[m] === 'function')) {
    protocol = fromLegacyStore(store); // the original package's KVStore
    mode = 'basic';
  } else {
    throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT,
      'kvStore must have command(args), be an @upstash/redis, @vercel/kv or node-redis client, or have get/set/delete');
  }
  return { host: { kv: (args, signal) => protocol.command(args, signal) }, mode };
}
