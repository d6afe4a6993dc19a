// The original package's duck-typed store ({get, set(key, value, {ttl, condition}), delete}) seen
// as the few Redis commands the lock core sends in "basic" mode. Such a store cannot run scripts,
// so owner-checked release and extend are check-then-act (not atomic), TTLs are whole seconds, and
// there are no fence tokens. Prefer a Redis-protocol store (InMemoryKVStore, UpstashRestStore,
// fromUpstashClient, fromNodeRedis) wherever one is available.
import { AgentToolsError } from '#internal/errors.js';
import { ErrorCode } from '#internal/generated/constants.js';

const seconds = (ms) => Math.max(1, Math.ceil(Number(ms) / 1000));

export function fromLegacyStore(store) {
  return {
    async command(args) {
      const [name, key, value, ...options] = args;
      switch (name) {
        case 'GET': {
          const stored = await store.get(key);
          if (stored === null || stored === undefined) return null;
          return typeof stored === 'string' ? stored : JSON.stringify(stored);
        }
        case 'SET': {
          const px = options.indexOf('PX');
          const ttl = px >= 0 ? seconds(options[px + 1]) : undefined;
          const nx = options.includes('NX');
          const done = await store.set(key, value, nx ? { ttl, condition: 'nx' } : { ttl });
          return done ? 'OK' : null;
        }
        case 'DEL':
          return (await store.delete(key)) ? 1 : 0;
        default:
          throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, `a get/set/delete store cannot run ${name}`);
      }
    },
  };
}
