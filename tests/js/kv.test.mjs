// The kv module: the original API (reference-api.md checklist 8-16, with decisions D1-D6) and the
// new lock features, run against every kind of store: the in-memory default, real Redis through
// node-redis, and Upstash REST (a fixture fronting real Redis) through fetch.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import * as root from '@growthub/agent-tools';
import * as kvEntry from '@growthub/agent-tools/kv';
import { AgentToolsError } from '@growthub/agent-tools/runtime';
import { InMemoryKVStore, UpstashRestStore, fromNodeRedis, fromLegacyStore } from '@growthub/agent-tools/adapters';
import { startUpstashRestServer } from '../fixtures/upstash-rest-server.mjs';
import { startRedis } from '../helpers/redis.mjs';

const { KVLockManager, validateKVLockMetadata, DEFAULT_LOCK_TTL_SECONDS } = root;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const ns = () => `t${randomBytes(4).toString('hex')}`; // a fresh key prefix per test

let redis;
let client;
let rest;
before(async () => {
  redis = await startRedis();
  client = createClient({ url: redis.url, RESP: 2 });
  await client.connect();
  rest = await startUpstashRestServer({ redisUrl: redis.url, token: 'test-token-kv' });
});
after(async () => {
  await rest?.close();
  await client?.quit();
  await redis?.stop();
});

const stores = {
  'in-memory': () => new InMemoryKVStore(),
  'redis (node-redis)': () => fromNodeRedis(client),
  'upstash rest (fetch)': () => new UpstashRestStore({ url: rest.url, token: rest.token }),
};

for (const [kind, makeStore] of Object.entries(stores)) {
  describe(`locks on ${kind}`, () => {
    const manager = (options = {}) => new KVLockManager(makeStore(), { keyPrefix: ns(), ...options });

    test('acquire on a free key succeeds with fence 1; a second acquire reports the holder', async () => {
      const m = manager();
      const first = await m.acquireKvLock('user-1', 'thread-1');
      assert.equal(first.success, true);
      assert.equal(first.lockKey, m.makeKvLockKey('user-1', 'thread-1'));
      assert.equal('activeLockMetadata' in first, false);
      assert.equal(first.fence, 1);
      assert.match(first.lockId, /^user-1-thread-1-\d+-[0-9a-f]{16}$/);

      const second = await m.acquireKvLock('user-1', 'thread-1');
      assert.equal(second.success, false);
      assert.equal(second.lockKey, first.lockKey);
      assert.equal(second.activeLockMetadata.lockId, first.lockId);
      assert.deepEqual(Object.keys(second.activeLockMetadata), ['lockId', 'lockedAt', 'processId', 'expiresAt']);
      assert.ok(validateKVLockMetadata(second.activeLockMetadata).success);
      assert.ok(second.remainingMs > 890_000 && second.remainingMs <= 900_000);
    });

    test('fences increase strictly per key across holders and are independent between keys', async () => {
      const m = manager();
      const fences = [];
      for (let i = 0; i < 5; i++) {
        const r = await m.acquireKvLock('u', 'fenced');
        fences.push(r.fence);
        assert.equal(await m.releaseKvLock('u', 'fenced'), true);
      }
      assert.deepEqual(fences, [1, 2, 3, 4, 5]);
      assert.equal((await m.acquireKvLock('u', 'other')).fence, 1);
    });

    test('release is owner-checked: another manager cannot release, a lockId can', async () => {
      const store = makeStore();
      const prefix = ns();
      const a = new KVLockManager(store, { keyPrefix: prefix });
      const b = new KVLockManager(store, { keyPrefix: prefix });
      const lock = await a.acquireKvLock('u', 't');
      assert.equal(await b.releaseKvLock('u', 't'), false);
      assert.equal(await b.releaseKvLock('u', 't', { lockId: 'u-t-0-0000000000000000' }), false);
      assert.equal((await a.inspectKvLock('u', 't')).held, true);
      assert.equal(await b.releaseKvLock('u', 't', { lockId: lock.lockId }), true);
      assert.equal(await a.releaseKvLock('u', 't'), false, 'already released');
      assert.equal(await a.checkKvLock('u', 't'), null);
    });

    test('extend renews with millisecond precision for the holder only', async () => {
      const store = makeStore();
      const prefix = ns();
      const a = new KVLockManager(store, { keyPrefix: prefix });
      const b = new KVLockManager(store, { keyPrefix: prefix });
      await a.acquireKvLock('u', 't', { ttlSeconds: 0.4 });
      const renewed = await a.extendKvLock('u', 't', { ttlMs: 1234 });
      assert.equal(renewed.extended, true);
      const { remainingMs, metadata } = await a.inspectKvLock('u', 't');
      assert.ok(remainingMs > 1100 && remainingMs <= 1234, `remaining ${remainingMs}`);
      assert.equal(metadata.expiresAt, renewed.expiresAt, 'the stored metadata follows the renewal');
      assert.deepEqual(await b.extendKvLock('u', 't', { ttlMs: 60_000 }), { extended: false, state: 'not-owner', expiresAt: null });
      await a.releaseKvLock('u', 't');
      assert.equal((await a.extendKvLock('u', 't', { ttlMs: 1000 })).extended, false);
    });

    test('a lock expires after its TTL and the next holder gets a larger fence; the old holder cannot touch it', async () => {
      const store = makeStore();
      const prefix = ns();
      const old = new KVLockManager(store, { keyPrefix: prefix });
      const next = new KVLockManager(store, { keyPrefix: prefix });
      const first = await old.acquireKvLock('u', 't', { ttlSeconds: 0.15 });
      await sleep(250);
      const second = await next.acquireKvLock('u', 't');
      assert.equal(second.success, true);
      assert.ok(second.fence > first.fence);
      assert.equal(await old.releaseKvLock('u', 't'), false);
      assert.equal((await old.extendKvLock('u', 't', { ttlMs: 5000 })).state, 'not-owner');
      assert.equal((await next.inspectKvLock('u', 't')).metadata.lockId, second.lockId);
    });

    test('waiting: acquire retries with backoff until the holder lets go, or gives up at the deadline', async () => {
      const store = makeStore();
      const prefix = ns();
      const holder = new KVLockManager(store, { keyPrefix: prefix });
      const waiter = new KVLockManager(store, { keyPrefix: prefix });
      await holder.acquireKvLock('u', 't');
      const started = Date.now();
      const gaveUp = await waiter.acquireKvLock('u', 't', { wait: { timeoutMs: 150, baseMs: 10, maxMs: 40 } });
      assert.equal(gaveUp.success, false);
      assert.ok(Date.now() - started >= 140);

      setTimeout(() => holder.releaseKvLock('u', 't'), 100);
      const got = await waiter.acquireKvLock('u', 't', { wait: { timeoutMs: 3000, baseMs: 10, maxMs: 40 } });
      assert.equal(got.success, true);
      assert.ok(Date.now() - started < 2500);

      const controller = new AbortController();
      setTimeout(() => controller.abort(), 50);
      await assert.rejects(holder.acquireKvLock('u', 't', { wait: { timeoutMs: 10_000 }, signal: controller.signal }), { code: 'CANCELLED' });
    });

    test('withKvLock runs the operation under the lock, renews it past its TTL, and releases', async () => {
      const m = manager();
      let seen;
      const value = await m.withKvLock('u', 't', async (lock) => {
        seen = lock;
        await sleep(700); // well past the 0.3 s TTL: only renewal keeps the lock
        const state = await m.inspectKvLock('u', 't');
        assert.equal(state.metadata.lockId, lock.lockId);
        assert.equal(lock.signal.aborted, false);
        return 42;
      }, { ttlSeconds: 0.3 });
      assert.equal(value, 42);
      assert.equal(seen.fence, 1);
      assert.equal(await m.checkKvLock('u', 't'), null, 'released afterwards');
    });

    test('withKvLock: a lost lock fires the signal and ends with LOCK_LOST', async () => {
      const store = makeStore();
      const prefix = ns();
      const m = new KVLockManager(store, { keyPrefix: prefix });
      const thief = new KVLockManager(store, { keyPrefix: prefix });
      const run = m.withKvLock('u', 't', async ({ signal, lockId }) => {
        await thief.releaseKvLock('u', 't', { lockId }); // someone forcibly takes it away
        await thief.acquireKvLock('u', 't');
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        return 'finished anyway';
      }, { ttlSeconds: 0.3 });
      await assert.rejects(run, (e) => e instanceof AgentToolsError && e.code === 'LOCK_LOST');
      assert.equal((await thief.inspectKvLock('u', 't')).held, true, "the new owner's lock is untouched");
    });

    test('withKvLock: the hold-time cap stops renewal and the lock is lost at the cap', async () => {
      const m = manager();
      await assert.rejects(m.withKvLock('u', 't', ({ signal }) =>
        new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true })),
      { ttlSeconds: 0.2, autoExtend: { maxHoldMs: 400 } }), { code: 'LOCK_LOST', message: /cap/ });
    });

    test('listKvLocks finds the held locks under the prefix, odd ids included, and no fence counters', async () => {
      const m = manager();
      const ids = [['u', 'plain'], ['ü', 'ключ'], ['a:b', 'c'], ['a', 'b:c'], ['*', '?[x]\\'], ['line\nbreak', '%25']];
      for (const [u, t] of ids) assert.equal((await m.acquireKvLock(u, t)).success, true, `${u}/${t}`);
      await m.releaseKvLock('u', 'plain'); // leaves a fence counter but no lock
      const keys = await m.listKvLocks();
      assert.deepEqual(keys, ids.slice(1).map(([u, t]) => m.makeKvLockKey(u, t)).sort());
    });
  });
}

describe('the original API (drop-in)', () => {
  test('keys: run:<userId>:<threadId>, custom prefix, fallbacks, and escaped ids that cannot collide', () => {
    assert.equal(new KVLockManager().makeKvLockKey('11111111-2222', 'abc'), 'run:11111111-2222:abc');
    assert.equal(new KVLockManager(undefined, { keyPrefix: 'lock' }).makeKvLockKey('u', 't'), 'lock:u:t');
    assert.equal(new KVLockManager(undefined, { keyPrefix: '' }).makeKvLockKey('u', 't'), 'run:u:t');
    const m = new KVLockManager();
    assert.notEqual(m.makeKvLockKey('a:b', 'c'), m.makeKvLockKey('a', 'b:c'));
    assert.equal(m.makeKvLockKey('a:b', '50%'), 'run:a%3Ab:50%25');
  });

  test('defaultTTL 0 falls back to 900 seconds; ttlSeconds overrides', async () => {
    assert.equal(DEFAULT_LOCK_TTL_SECONDS, 900);
    const m = new KVLockManager(new InMemoryKVStore(), { defaultTTL: 0 });
    await m.acquireKvLock('u', 't');
    assert.ok((await m.inspectKvLock('u', 't')).remainingMs > 899_000);
    await m.acquireKvLock('u', 't2', { ttlSeconds: 2 });
    assert.ok((await m.inspectKvLock('u', 't2')).remainingMs <= 2000);
  });

  test('invalid ids and TTLs throw "KV lock validation failed" before touching the store', async () => {
    let touched = 0;
    const store = { command: () => { touched++; return null; } };
    const m = new KVLockManager(store);
    const cases = [
      [['', 't'], 'userId', 'too_small'],
      [[42, 't'], 'userId', 'invalid_type'],
      [['u', undefined], 'threadId', 'invalid_type'],
      [['u', 't', { ttlSeconds: 0 }], 'ttl', 'too_small'],
      [['u', 't', { ttlSeconds: -1 }], 'ttl', 'too_small'],
      [['u', 't', { ttlSeconds: 0.0001 }], 'ttl', 'invalid_type'],
      [['u', 't', { ttlSeconds: 'soon' }], 'ttl', 'invalid_type'],
      [['u', 't', { ttlSeconds: NaN }], 'ttl', 'invalid_type'],
    ];
    for (const [args, field, code] of cases) {
      await assert.rejects(m.acquireKvLock(...args), (e) => {
        assert.ok(e instanceof AgentToolsError);
        assert.equal(e.code, 'VALIDATION_FAILED');
        assert.match(e.message, /^KV lock validation failed: \[/);
        const errors = JSON.parse(e.message.slice('KV lock validation failed: '.length));
        assert.deepEqual(Object.keys(errors[0]), ['field', 'message', 'code', 'severity']);
        assert.equal(errors[0].field, field);
        assert.equal(errors[0].code, code);
        return true;
      }, JSON.stringify(args));
    }
    assert.equal(touched, 0);
    // 0.5 s and 1.5 s are whole milliseconds: valid, as in the original.
    assert.equal((await new KVLockManager(new InMemoryKVStore()).acquireKvLock('u', 't', { ttlSeconds: 1.5 })).success, true);
  });

  test('options.metadata is stored verbatim and still owner-checked on release', async () => {
    const store = new InMemoryKVStore();
    const m = new KVLockManager(store);
    const other = new KVLockManager(store);
    await m.acquireKvLock('u', 't', { metadata: { lockedAt: 'x', foo: 1 } });
    assert.deepEqual(await m.checkKvLock('u', 't'), { lockedAt: 'x', foo: 1 });
    assert.equal(store.command(['GET', 'run:u:t']), '{"lockedAt":"x","foo":1}');
    assert.equal(await other.releaseKvLock('u', 't'), false);
    assert.equal(await m.releaseKvLock('u', 't'), true);
  });

  test('checkKvLock: null when free, parsed JSON, or {lockedAt: "invalid data"}', async () => {
    const store = new InMemoryKVStore();
    const m = new KVLockManager(store);
    assert.equal(await m.checkKvLock('u', 't'), null);
    store.command(['SET', 'run:u:t', 'not json']);
    assert.deepEqual(await m.checkKvLock('u', 't'), { lockedAt: 'invalid data' });
    store.command(['SET', 'run:u:t', '{"lockedAt":"2020-01-01T00:00:00Z"}']);
    assert.deepEqual(await m.checkKvLock('u', 't'), { lockedAt: '2020-01-01T00:00:00Z' });
  });

  test('withKvLock: returns the value, propagates the error, releases either way, and fails fast when held', async () => {
    const m = new KVLockManager(new InMemoryKVStore());
    assert.equal(await m.withKvLock('u', 't', async () => 'ok'), 'ok');
    assert.equal(await m.checkKvLock('u', 't'), null);
    const boom = new Error('boom');
    await assert.rejects(m.withKvLock('u', 't', async () => { throw boom; }), (e) => e === boom);
    assert.equal(await m.checkKvLock('u', 't'), null);

    const holder = await m.acquireKvLock('u', 't');
    let ran = false;
    await assert.rejects(m.withKvLock('u', 't', async () => { ran = true; }), (e) => {
      assert.equal(e.code, 'LOCK_ACQUISITION_FAILED');
      assert.equal(e.message, `Failed to acquire lock for user u, thread t. Active lock: ${JSON.stringify(e.details)}`);
      assert.equal(e.details.lockId, holder.lockId);
      return true;
    });
    assert.equal(ran, false);
    assert.equal((await m.checkKvLock('u', 't')).lockId, holder.lockId, 'the holder keeps the lock');
  });

  test('the free functions share one default manager across every entry point', async () => {
    const { acquireKvLock, releaseKvLock, checkKvLock } = root;
    assert.equal(kvEntry.defaultKVLockManager, root.defaultKVLockManager);
    const id = ns();
    assert.equal((await acquireKvLock(id, 'shared')).success, true);
    assert.equal((await kvEntry.checkKvLock(id, 'shared')).processId.startsWith('instance-'), true);
    assert.equal(await kvEntry.releaseKvLock(id, 'shared'), true, 'the root acquire is released via ./kv');
    assert.equal(await checkKvLock(id, 'shared'), null);
  });

  test('validateKVLockMetadata maps zod issues; offset datetimes are rejected', () => {
    assert.deepEqual(validateKVLockMetadata({ lockedAt: '2025-01-01T00:00:00Z', extra: 1 }), { success: true, data: { lockedAt: '2025-01-01T00:00:00Z' } });
    const offset = validateKVLockMetadata({ lockedAt: '2025-01-01T00:00:00+01:00' });
    assert.equal(offset.success, false);
    assert.deepEqual(offset.errors[0], { field: 'lockedAt', message: 'Invalid datetime', code: 'invalid_string', severity: 'error' });
    assert.equal(validateKVLockMetadata(null).errors[0].field, '');
  });

  test("the original's get/set/delete store still works, with plain commands (no fences)", async () => {
    const calls = [];
    const legacy = new InMemoryKVStore();
    const store = {
      get: (k) => { calls.push(['get', k]); return legacy.get(k); },
      set: (k, v, o) => { calls.push(['set', k, o]); return legacy.set(k, v, o); },
      delete: (k) => { calls.push(['delete', k]); return legacy.delete(k); },
    };
    const a = new KVLockManager(store, { keyPrefix: 'legacy' });
    const b = new KVLockManager(store, { keyPrefix: 'legacy' });
    const lock = await a.acquireKvLock('u', 't', { ttlSeconds: 60 });
    assert.equal(lock.success, true);
    assert.equal(lock.fence, null);
    assert.deepEqual(calls[0], ['set', 'legacy:u:t', { ttl: 60, condition: 'nx' }]);
    const held = await b.acquireKvLock('u', 't');
    assert.equal(held.activeLockMetadata.lockId, lock.lockId);
    assert.equal(await b.releaseKvLock('u', 't'), false, 'owner check (get, compare, delete)');
    assert.equal(await a.releaseKvLock('u', 't'), true);
    assert.equal(await a.checkKvLock('u', 't'), null);
  });

  test('a spent owner proof is forgotten: released by lockId, or taken over, a later release sends nothing', async () => {
    const memory = new InMemoryKVStore();
    let commands = 0;
    const store = { command: (args, signal) => { commands++; return memory.command(args, signal); } };
    const m = new KVLockManager(store, { keyPrefix: 'spent' });

    const lock = await m.acquireKvLock('u', 't');
    assert.equal(await m.releaseKvLock('u', 't', { lockId: lock.lockId }), true);
    let before = commands;
    assert.equal(await m.releaseKvLock('u', 't'), false);
    assert.equal(commands, before, 'no proof left for a release without lockId');

    // Its lock vanished (here deleted behind its back) and someone else took the key.
    await m.acquireKvLock('u', 'taken');
    await memory.command(['DEL', m.makeKvLockKey('u', 'taken')]);
    const other = new KVLockManager(store, { keyPrefix: 'spent' });
    assert.equal((await other.acquireKvLock('u', 'taken')).success, true);
    assert.equal(await m.releaseKvLock('u', 'taken'), false, "the owner check refuses: it is the other's lock");
    before = commands;
    assert.equal(await m.releaseKvLock('u', 'taken'), false);
    assert.equal(commands, before, 'the refused proof is not tried again');
    assert.equal(await other.releaseKvLock('u', 'taken'), true);

    // A release by another lock's id leaves this manager's own proof in place.
    const mine = await m.acquireKvLock('u', 'kept');
    assert.equal(await m.releaseKvLock('u', 'kept', { lockId: `${mine.lockId}-not` }), false);
    assert.equal(await m.releaseKvLock('u', 'kept'), true);
  });

  test('a store whose set fails but whose get finds nothing reports {lockedAt: "unknown"}', async () => {
    const store = { get: async () => null, set: async () => false, delete: async () => false };
    const r = await new KVLockManager(store).acquireKvLock('u', 't');
    assert.deepEqual(r.activeLockMetadata, { lockedAt: 'unknown' });
  });
});

describe('bad KV replies and odd input never trap the instance', () => {
  const replying = (reply) => ({ command: () => reply });
  for (const [what, reply, code] of [
    ['a string', 'surprise', 'HOST_BAD_REPLY'],
    ['an empty array', [], 'HOST_BAD_REPLY'],
    ['a wrong status', [7, 1], 'HOST_BAD_REPLY'],
    ['a non-integer fence', [1, 'abc'], 'HOST_BAD_REPLY'],
    ['an object', { weird: true }, 'HOST_BAD_REPLY'],
    ['a Redis error', { error: 'ERR something broke' }, 'HOST_ERROR'],
    ['undefined', undefined, 'HOST_BAD_REPLY'],
    ['a deeply nested array', JSON.parse('['.repeat(300) + ']'.repeat(300)), 'INPUT_TOO_LARGE'],
  ]) {
    test(`acquire with a KV that returns ${what} fails with ${code}`, async () => {
      await assert.rejects(new KVLockManager(replying(reply)).acquireKvLock('u', 't'), (e) => e instanceof AgentToolsError && e.code === code);
    });
  }

  test('a KV that throws is HOST_ERROR; the engine keeps working afterwards', async () => {
    const failing = { command: () => { throw new Error('connection refused'); } };
    await assert.rejects(new KVLockManager(failing).acquireKvLock('u', 't'), { code: 'HOST_ERROR', message: /connection refused/ });
    assert.equal((await new KVLockManager(new InMemoryKVStore()).acquireKvLock('u', 't')).success, true);
  });

  test('huge ids are rejected as too large; unicode, newlines and glob characters work', async () => {
    const m = new KVLockManager(new InMemoryKVStore());
    await assert.rejects(m.acquireKvLock('x'.repeat(9 << 20), 't'), { code: 'INPUT_TOO_LARGE' });
    for (const id of ['ünï😀', 'a\nb', '*', '[x]', '\\', ' ', '\u0000']) {
      const r = await m.acquireKvLock(id, id);
      assert.equal(r.success, true, JSON.stringify(id));
      assert.equal(await m.releaseKvLock(id, id), true);
    }
    await assert.rejects(m.acquireKvLock('\ud800', 't'), { code: 'INVALID_ARGUMENT' });
  });

  test('a store of the wrong shape is a typed error at construction', () => {
    assert.throws(() => new KVLockManager({ nope: true }), { code: 'INVALID_ARGUMENT' });
  });
});
