// A lock holder killed with SIGKILL, on Upstash REST (fixture in front of a real redis-server) and on
// node-redis. A child process acquires a lock with a 1.5 s TTL, prints its lockId, fence and
// expiresAt, then idles; the test kills it with SIGKILL (no release, no cleanup, no exit handler).
//   - While the TTL runs, another manager is refused: success:false with the dead holder's metadata
//     and its remaining time.
//   - Once the TTL has passed (never before the dead holder's expiresAt), the waiting acquire
//     succeeds with the next fence.
//   - The dead holder's lockId, replayed late by a new manager in this process and by a new
//     process, can neither release nor extend the new owner's lock: release → false, extend →
//     {extended:false, state:'not-owner'}; the new owner's lockId, fence and TTL are untouched.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { KVLockManager } from '@growthub/agent-tools/kv';
import { UpstashRestStore, fromNodeRedis } from '@growthub/agent-tools/adapters';
import { AgentToolsError } from '@growthub/agent-tools/runtime';
import { startUpstashRestServer } from '../fixtures/upstash-rest-server.mjs';
import { startRedis } from '../helpers/redis.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TTL_SECONDS = 1.5;

// The child: `holder` acquires, prints {lockId, fence, expiresAt} and idles until killed; `stale`
// replays a dead holder's lockId (release, then extend) and prints what it got.
const CHILD = `
import { createClient } from 'redis';
import { KVLockManager } from '@growthub/agent-tools/kv';
import { UpstashRestStore, fromNodeRedis } from '@growthub/agent-tools/adapters';
const c = JSON.parse(process.argv[1]);
let store;
let redis;
if (c.store === 'rest') {
  store = new UpstashRestStore({ url: c.restUrl, token: c.token });
} else {
  redis = createClient({ url: c.redisUrl, RESP: 2 });
  await redis.connect();
  store = fromNodeRedis(redis);
}
const m = new KVLockManager(store, { keyPrefix: c.prefix });
if (c.role === 'holder') {
  const lock = await m.acquireKvLock(c.user, c.thread, { ttlSeconds: c.ttlSeconds });
  process.stdout.write(JSON.stringify({ pid: process.pid, ...lock }) + '\\n');
  setInterval(() => {}, 60_000); // idle, holding the lock, until SIGKILL
} else {
  const released = await m.releaseKvLock(c.user, c.thread, { lockId: c.lockId });
  const extended = await m.extendKvLock(c.user, c.thread, { lockId: c.lockId, ttlMs: c.ttlMs });
  process.stdout.write(JSON.stringify({ released, extended }) + '\\n');
  await redis?.quit();
}
`;

function startChild(config) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, JSON.stringify(config)], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const firstLine = new Promise((resolve, reject) => {
    let text = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(text.slice(0, nl)));
    });
    exited.then((e) => reject(new Error(`child exited before answering: ${JSON.stringify(e)}`)));
  });
  return { child, exited, firstLine };
}

let redis;
let client;
let rest;
const live = new Set();
before(async () => {
  redis = await startRedis();
  client = createClient({ url: redis.url, RESP: 2 });
  await client.connect();
  rest = await startUpstashRestServer({ redisUrl: redis.url, token: `tok_${randomBytes(12).toString('hex')}` });
});
after(async () => {
  for (const child of live) child.kill('SIGKILL');
  await rest?.close();
  await client?.quit();
  await redis?.stop();
});

const stores = {
  'upstash rest': { config: () => ({ store: 'rest', restUrl: rest.url, token: rest.token }), make: () => new UpstashRestStore({ url: rest.url, token: rest.token }) },
  'node-redis': { config: () => ({ store: 'redis', redisUrl: redis.url }), make: () => fromNodeRedis(client) },
};

for (const [name, kind] of Object.entries(stores)) {
  describe(`SIGKILLed holder on ${name}`, () => {
    test('others wait out the TTL, then take over with a larger fence; the dead lockId cannot release or extend', { timeout: 30_000 }, async () => {
      const prefix = `crash-${randomBytes(4).toString('hex')}`;
      const base = { ...kind.config(), prefix, user: 'u', thread: 't' };

      // 1. A holder in its own process, then SIGKILL.
      const holder = startChild({ ...base, role: 'holder', ttlSeconds: TTL_SECONDS });
      live.add(holder.child);
      const dead = await holder.firstLine;
      assert.equal(dead.success, true, JSON.stringify(dead));
      assert.equal(dead.pid, holder.child.pid);
      const deadExpiresAt = Date.parse(dead.expiresAt);
      holder.child.kill('SIGKILL');
      assert.deepEqual(await holder.exited, { code: null, signal: 'SIGKILL' });
      live.delete(holder.child);

      // 2. While the TTL runs: refused, with the dead holder's metadata.
      const next = new KVLockManager(kind.make(), { keyPrefix: prefix });
      const refused = await next.acquireKvLock('u', 't', { ttlSeconds: 30 });
      assert.ok(Date.now() < deadExpiresAt, 'this check ran inside the dead holder\'s TTL');
      assert.equal(refused.success, false);
      assert.equal(refused.lockKey, next.makeKvLockKey('u', 't'));
      assert.equal(refused.activeLockMetadata.lockId, dead.lockId);
      assert.equal(refused.activeLockMetadata.expiresAt, dead.expiresAt);
      assert.ok(refused.remainingMs > 0 && refused.remainingMs <= TTL_SECONDS * 1000, `remaining ${refused.remainingMs}`);
      const seen = await next.inspectKvLock('u', 't');
      assert.equal(seen.held, true);
      assert.equal(seen.metadata.lockId, dead.lockId);
      assert.equal(seen.fence, dead.fence);

      // 3. After the TTL: a waiting acquire gets it, never before the dead holder's expiresAt.
      const lock = await next.acquireKvLock('u', 't', { ttlSeconds: 30, wait: { timeoutMs: 5000, baseMs: 20, maxMs: 50 } });
      const tookAt = Date.now();
      assert.equal(lock.success, true);
      assert.ok(tookAt >= deadExpiresAt, `taken at ${tookAt}, dead holder's lease ran to ${deadExpiresAt}`);
      assert.ok(tookAt - deadExpiresAt < 2000, `taken ${tookAt - deadExpiresAt} ms after the TTL`);
      assert.equal(lock.fence, dead.fence + 1);
      assert.notEqual(lock.lockId, dead.lockId);
      const owned = await next.inspectKvLock('u', 't');
      assert.equal(owned.metadata.lockId, lock.lockId);

      // 4. The dead holder's lockId, late: from a new manager here, then from a new process.
      const stale = new KVLockManager(kind.make(), { keyPrefix: prefix });
      assert.equal(await stale.releaseKvLock('u', 't', { lockId: dead.lockId }), false);
      assert.deepEqual(await stale.extendKvLock('u', 't', { lockId: dead.lockId, ttlMs: 120_000 }),
        { extended: false, state: 'not-owner', expiresAt: null });
      const replay = startChild({ ...base, role: 'stale', lockId: dead.lockId, ttlMs: 120_000 });
      live.add(replay.child);
      const replayed = await replay.firstLine;
      assert.deepEqual(await replay.exited, { code: 0, signal: null });
      live.delete(replay.child);
      assert.deepEqual(replayed, { released: false, extended: { extended: false, state: 'not-owner', expiresAt: null } });

      // The new owner's lock is untouched: same holder and fence, TTL still counting down from 30 s
      // (an extend by the stale id would have pushed it to 120 s).
      const untouched = await next.inspectKvLock('u', 't');
      assert.equal(untouched.held, true);
      assert.equal(untouched.metadata.lockId, lock.lockId);
      assert.equal(untouched.fence, lock.fence);
      assert.ok(untouched.remainingMs <= owned.remainingMs && untouched.remainingMs > 25_000, `remaining ${untouched.remainingMs} (was ${owned.remainingMs})`);
      assert.equal(await client.get(`${prefix}:u:t`).then((v) => JSON.parse(v).lockId), lock.lockId);

      // 5. The real owner still can release it.
      assert.equal(await next.releaseKvLock('u', 't'), true);
      assert.equal(await client.exists(`${prefix}:u:t`), 0);
      await client.del(`${prefix}:u:t:fence`);
    });
  });
}

// Regression: a node-redis client also has `command()` (the Redis COMMAND command), so store
// detection must recognise the client before it looks for a command(args) store.
test('a node-redis client passed directly to KVLockManager works like fromNodeRedis(client)', async () => {
  const m = new KVLockManager(client, { keyPrefix: `direct-${randomBytes(4).toString('hex')}` });
  let lock;
  try {
    lock = await m.acquireKvLock('u', 't', { ttlSeconds: 5 });
  } catch (error) {
    assert.ok(error instanceof AgentToolsError);
    assert.fail(`${error.code}: ${error.message.slice(0, 120)}`);
  }
  assert.equal(lock.success, true);
  assert.equal(await m.releaseKvLock('u', 't'), true);
});
