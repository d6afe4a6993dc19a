// @growthub/agent-tools/kv: distributed locks over a Redis-compatible KV. The lock protocol
// (validation, values, fences, owner checks, waiting, renewal) runs in the C++ core; this module
// keeps the original API and hands the core a `kv` host function for the chosen store.
import { z } from 'zod';
import { InMemoryKVStore } from '#adapters/kv-memory.js';
import { defaultEngineIfReady, getDefaultEngine, runText } from './engine.js';
import { AgentToolsError } from './errors.js';
import { DEFAULT_LOCK_TTL_SECONDS, ErrorCode } from './generated/constants.js';
import { resolveKvStore } from './kv-store.js';
import { ReusedKeyMap } from './tables.js';

export { DEFAULT_LOCK_TTL_SECONDS, InMemoryKVStore };

/** The original's metadata schema (zod, strip mode): timestamps must be UTC ISO strings. */
export const KVLockMetadataSchema = z.object({
  lockedAt: z.string().datetime(),
  lockId: z.string().optional(),
  processId: z.string().optional(),
  metadata: z.record(z.any()).optional(),
  expiresAt: z.string().datetime().optional(),
});

/** Validates lock metadata; errors are mapped to {field, message, code, severity}. */
export function validateKVLockMetadata(data) {
  try {
    return { success: true, data: KVLockMetadataSchema.parse(data) };
  } catch (error) {
    if (error instanceof z.ZodError) {
      return {
        success: false,
        errors: error.issues.map((i) => ({ field: i.path.join('.'), message: i.message, code: i.code, severity: 'error' })),
      };
    }
    return { success: false, errors: [{ field: 'metadata', message: 'Unknown validation error', code: 'UNKNOWN_ERROR', severity: 'error' }] };
  }
}

// Ids are escaped inside keys so ('a:b','c') and ('a','b:c') differ; ids without ':' or '%' give
// exactly the original key.
const escapeId = (id) => {
  const text = String(id);
  return text.includes(':') || text.includes('%') ? text.replace(/%/g, '%25').replace(/:/g, '%3A') : text;
};

// processId in lock values: one random id per realm, made on first use (not at import time, which
// workerd forbids), replacing the original's process.pid.
let instanceId = null;
let instanceIdJson = null;
function processId() {
  if (!instanceId) {
    const bytes = globalThis.crypto.getRandomValues(new Uint8Array(8));
    instanceId = 'instance-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    instanceIdJson = JSON.stringify(instanceId);
  }
  return instanceId;
}

const quote = JSON.stringify;

export class KVLockManager {
  #kv;
  #mode;
  #argsJson;
  #tailJson;
  #defaultTTL;
  #keyPrefix;
  #engine;
  #owners = new ReusedKeyMap(); // lock key -> owner proof returned by the core on acquire (see tables.js)

  /**
   * @param kvStore a Redis-protocol store, an @upstash/redis / @vercel/kv / node-redis client, or
   *   the original's {get, set, delete} store; defaults to a new InMemoryKVStore
   * @param options.defaultTTL seconds (0 or absent: 900); options.keyPrefix ('' or absent: 'run');
   *   options.engine an AgentEngine (default: the shared one)
   */
  constructor(kvStore, options = {}) {
    const { host, mode, argsJson } = resolveKvStore(kvStore || new InMemoryKVStore());
    this.#kv = host;
    this.#mode = mode;
    this.#argsJson = argsJson;
    // The inputs' common tail: the mode, `compact` (the core's short results, read below; see
    // kv.cpp compact_result) and, for stores that send JSON, `argsJson` (each command as one JSON text).
    this.#tailJson = `,"mode":${JSON.stringify(mode)},"compact":true${argsJson ? ',"argsJson":true' : ''}}`;
    this.#defaultTTL = options.defaultTTL || DEFAULT_LOCK_TTL_SECONDS;
    this.#keyPrefix = options.keyPrefix || 'run';
    this.#engine = options.engine ?? null;
  }

  makeKvLockKey(userId, threadId) {
    return `${this.#keyPrefix}:${escapeId(userId)}:${escapeId(threadId)}`;
  }

  // `input` is the operation's own object (built per call), so the store's mode goes straight in.
  async #run(operation, input, signal) {
    const engine = this.#engine ?? defaultEngineIfReady() ?? (await getDefaultEngine());
    input.mode = this.#mode;
    if (this.#argsJson) input.argsJson = true;
    return engine.run(operation, input, { host: this.#kv, signal });
  }

  // The same with the input written as JSON text by the caller (the lock cycle's hot path: a
  // template with JSON.stringify on the strings costs less than JSON.stringify of an object).
  // `fields` is the object's members without the closing brace; #tailJson ends it. Not async:
  // once the engine exists this adds no promise of its own.
  #runText(operation, fields, signal) {
    const engine = this.#engine ?? defaultEngineIfReady();
    if (!engine) return getDefaultEngine().then(() => this.#runText(operation, fields, signal));
    const text = fields + this.#tailJson;
    if (!engine[runText]) return engine.run(operation, JSON.parse(text), { host: this.#kv, signal });
    return engine[runText](operation, text, null, this.#kv, signal);
  }

  /**
   * Takes the lock if it is free (SET NX semantics). Resolves {success: true, lockKey, fence,
   * lockId, expiresAt} or {success: false, activeLockMetadata, lockKey, remainingMs}. With
   * `wait: {timeoutMs}` it retries with exponential backoff and full jitter until the deadline.
   */
  async acquireKvLock(userId, threadId, options = {}) {
    const key = this.makeKvLockKey(userId, threadId);
    const metadata = options.metadata ?? null;
    const ttlSeconds = options.ttlSeconds ?? this.#defaultTTL;
    let r;
    if (typeof userId === 'string' && typeof threadId === 'string' && typeof ttlSeconds === 'number' &&
        Number.isFinite(ttlSeconds) && metadata === null && !options.wait) {
      processId();
      r = await this.#runText('kv.acquire', `{"key":${quote(key)},"userId":${quote(userId)},"threadId":${quote(threadId)},` +
        `"ttlSeconds":${ttlSeconds},"processId":${instanceIdJson}`, options.signal);
    } else {
      const input = { key, userId: userId ?? null, threadId: threadId ?? null, ttlSeconds, processId: processId() };
      if (metadata !== null) input.valueText = JSON.stringify(metadata);
      if (options.wait) input.wait = options.wait;
      r = await this.#run('kv.acquire', input, options.signal);
    }
    if (Array.isArray(r)) {
      // The compact success, [fence, lockId, lockedAt, expiresAt]: the owner is those fields and
      // the processId this instance sent.
      const lockId = r[1]; // (indexing, not destructuring: that can cost an iterator per call)
      this.#owners.set(key, { lockId, lockedAt: r[2], processId: instanceId });
      return { success: true, lockKey: key, fence: r[0], lockId, expiresAt: r[3] };
    }
    if (!r.success) {
      return { success: false, activeLockMetadata: r.activeLockMetadata, lockKey: key, remainingMs: r.remainingMs };
    }
    this.#owners.set(key, r.owner);
    return { success: true, lockKey: key, fence: r.fence, lockId: r.lockId, expiresAt: new Date(r.expiresAt).toISOString() };
  }

  /**
   * Releases the lock only if this holder owns it (this manager's own acquire, or `options.lockId`
   * from an acquire elsewhere). Resolves true when released, false otherwise (free, or not ours).
   */
  async releaseKvLock(userId, threadId, options = {}) {
    const key = this.makeKvLockKey(userId, threadId);
    const owner = options.lockId ? { lockId: options.lockId } : this.#owners.get(key);
    if (!owner) return false;
    let status; // 1 released, 0 no lock, -1 someone else's
    if (options.lockId && typeof options.lockId !== 'string') {
      const r = await this.#run('kv.release', { key, owner }, options.signal); // the core's typed error, as before
      status = r.released ? 1 : r.state === 'not-owner' ? -1 : 0;
    } else {
      // An owner from the core's own result is plain JSON; a lockId option is a string.
      const ownerJson = options.lockId ? `{"lockId":${quote(options.lockId)}}` : quote(owner);
      status = await this.#runText('kv.release', `{"key":${quote(key)},"owner":${ownerJson}`, options.signal);
    }
    // Whatever the answer, a proof with this lock id is spent: released, gone, or someone else's now.
    if (this.#owners.get(key)?.lockId === owner.lockId) this.#owners.clear(key);
    return status === 1;
  }

  /**
   * Owner-checked renewal: the lock lives `ttlMs` (or `ttlSeconds`) from now. Resolves
   * {extended, state: 'ok' | 'missing' | 'not-owner', expiresAt}.
   */
  async extendKvLock(userId, threadId, options = {}) {
    const key = this.makeKvLockKey(userId, threadId);
    const owner = options.lockId ? { lockId: options.lockId } : this.#owners.get(key);
    if (!owner) return { extended: false, state: 'not-owner', expiresAt: null };
    const ttlMs = options.ttlMs ?? (options.ttlSeconds ?? this.#defaultTTL) * 1000;
    const r = await this.#run('kv.extend', { key, owner, ttlMs }, options.signal);
    if (r.extended && this.#owners.get(key) === owner) this.#owners.set(key, r.owner);
    return { extended: r.extended, state: r.state, expiresAt: r.expiresAt === null ? null : new Date(r.expiresAt).toISOString() };
  }

  /** The holder's metadata as the original returned it, or null when the lock is free. */
  async checkKvLock(userId, threadId) {
    return (await this.inspectKvLock(userId, threadId)).metadata;
  }

  /** {lockKey, held, metadata, remainingMs, fence}: who holds the lock and for how long. */
  async inspectKvLock(userId, threadId, options = {}) {
    return this.#run('kv.inspect', { key: this.makeKvLockKey(userId, threadId) }, options.signal);
  }

  /** The lock keys under this manager's prefix (SCAN, never KEYS). */
  async listKvLocks(options = {}) {
    const r = await this.#run('kv.list', { prefix: this.#keyPrefix, ...(options.limit ? { limit: options.limit } : {}) }, options.signal);
    return r.keys;
  }

  /**
   * Runs `operation` while holding the lock, renewing it in the background (every third of the
   * TTL by default, never beyond `autoExtend.maxHoldMs`, default one hour). The operation gets
   * {signal, fence, lockKey, lockId}; the signal fires if the lock is lost, and the call then
   * rejects with LOCK_LOST. Fails with LOCK_ACQUISITION_FAILED when the lock is held.
   */
  async withKvLock(userId, threadId, operation, options = {}) {
    const lock = await this.acquireKvLock(userId, threadId, options);
    if (!lock.success) {
      throw new AgentToolsError(ErrorCode.LOCK_ACQUISITION_FAILED,
        `Failed to acquire lock for user ${userId}, thread ${threadId}. Active lock: ${JSON.stringify(lock.activeLockMetadata)}`,
        { details: lock.activeLockMetadata });
    }
    const key = lock.lockKey;
    const owner = this.#owners.get(key);
    const lost = new AbortController();
    const stopHolding = new AbortController();
    let lossError = null;
    const autoExtend = options.autoExtend ?? true;
    const holding = autoExtend === false ? null : this.#run('kv.hold', {
      key,
      owner,
      ttlMs: (options.ttlSeconds ?? this.#defaultTTL) * 1000,
      ...(autoExtend.renewEveryMs ? { renewEveryMs: autoExtend.renewEveryMs } : {}),
      maxHoldMs: autoExtend.maxHoldMs ?? 3_600_000,
    }, stopHolding.signal).catch((error) => {
      if (error.code !== ErrorCode.CANCELLED) {
        lossError = error;
        lost.abort(error);
      }
    });
    let result;
    let failure = null;
    try {
      result = await operation({ signal: lost.signal, fence: lock.fence, lockKey: key, lockId: lock.lockId });
    } catch (error) {
      failure = { error };
    }
    stopHolding.abort();
    await holding;
    // A lost lock outranks whatever the operation did after its signal fired.
    if (lossError) throw lossError;
    try {
      await this.releaseKvLock(userId, threadId);
    } catch (releaseError) {
      // The operation's own error is what the caller needs; the lock then expires at its TTL.
      if (!failure) throw releaseError;
    }
    if (failure) throw failure.error;
    return result;
  }
}

export const defaultKVLockManager = new KVLockManager();

export const makeKvLockKey = (userId, threadId) => defaultKVLockManager.makeKvLockKey(userId, threadId);
export const acquireKvLock = (userId, threadId, options) => defaultKVLockManager.acquireKvLock(userId, threadId, options);
export const releaseKvLock = (userId, threadId, options) => defaultKVLockManager.releaseKvLock(userId, threadId, options);
export const checkKvLock = (userId, threadId) => defaultKVLockManager.checkKvLock(userId, threadId);
export const withKvLock = (userId, threadId, operation, options) => defaultKVLockManager.withKvLock(userId, threadId, operation, options);
