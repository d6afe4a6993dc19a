// Which kind of store the caller handed over, and the `kv` host function that reaches it. The
// lock rules themselves live in the core; this only picks the wire.
import { fromLegacyStore } from '#adapters/kv-legacy.js';
import { fromNodeRedis, fromUpstashClient } from '#adapters/kv-clients.js';
import { kvAnswering } from './engine.js';
import { AgentToolsError } from './errors.js';
import { ErrorCode } from './generated/constants.js';

// A store method taking a command as its JSON text instead of an array (UpstashRestStore): the
// core writes that text, which costs less than JSON.stringify here.
const commandWithJson = Symbol.for('@growthub/agent-tools/kv-command-json');

/**
 * @returns {{ host: { kv(args: string[], signal: AbortSignal): unknown }, mode: 'script' | 'basic',
 *   argsJson: boolean }}  (with argsJson, the host also has the driver's callback form, kvAnswering)
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
  const kv = (args, signal) => protocol.command(args, signal);
  if (typeof protocol[commandWithJson] === 'function') {
    const host = {
      kv, // commands the core sends as arguments (none of the lock operations' with argsJson)
      // The driver's callback form (see engine.js): a store that takes `answer` returns undefined
      // and calls it; one that returns a promise is bridged here.
      [kvAnswering](json, signal, answer, token) {
        const pending = protocol[commandWithJson](json, signal, answer, token);
        if (pending !== undefined) {
          Promise.resolve(pending).then((value) => answer(token, true, value), (failure) => answer(token, false, failure));
        }
      },
    };
    return { host, mode, argsJson: true };
  }
  return { host: { kv }, mode, argsJson: false };
}
