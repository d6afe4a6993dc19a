// The kv and adapters declarations as a strict TypeScript consumer uses them.
import {
  KVLockManager,
  InMemoryKVStore,
  acquireKvLock,
  withKvLock,
  validateKVLockMetadata,
  KVLockMetadataSchema,
  type KVLockResult,
  type KVStore,
} from '@growthub/agent-tools/kv';
import { UpstashRestStore, fromNodeRedis } from '@growthub/agent-tools/adapters';

export async function locks(): Promise<number | null> {
  const manager = new KVLockManager(new InMemoryKVStore(), { keyPrefix: 'jobs', defaultTTL: 60 });
  const result: KVLockResult = await manager.acquireKvLock('user', 'thread', { wait: { timeoutMs: 1000 } });
  if (!result.success) return result.activeLockMetadata?.lockedAt === undefined ? null : 0;
  const state = await manager.inspectKvLock('user', 'thread');
  const extended = await manager.extendKvLock('user', 'thread', { ttlMs: 5000 });
  const value: string = await withKvLock('u', 't', async ({ signal, fence }) => (signal.aborted ? 'lost' : String(fence)));
  void value, extended.state, KVLockMetadataSchema.parse({ lockedAt: new Date().toISOString() });
  const rest = UpstashRestStore.fromEnv({ KV_REST_API_URL: 'https://x.example', KV_REST_API_TOKEN: 't' });
  const legacy: KVStore = new InMemoryKVStore();
  new KVLockManager(rest);
  new KVLockManager(legacy);
  new KVLockManager(fromNodeRedis({ sendCommand: () => null }));
  await acquireKvLock('a', 'b');
  return validateKVLockMetadata(state.metadata).success ? state.fence : null;
}
