// One OS process of the lock contention test (tests/js/kv-contention.test.mjs). Forked with an IPC
// channel and one JSON argument:
//   { restUrl, token, redisUrl, keyPrefix, occPrefix, keys, concurrency, quota, ttlSeconds,
//     wait, store: { timeoutMs, retries, backoffMs }, transport: 'fetch'|'http', deadlineMs, baseNs,
//     safetyMs }
// It runs `concurrency` async workers on one KVLockManager over UpstashRestStore, until the process
// has `quota` critical sections (or `deadlineMs` passes). A grant with less than `safetyMs` of its
// lease left is not used (lateGrant; it is released). Every other success enters a critical
// section that
//   - records [key, fence, worker, enter, exit, leaseEnd] in a ledger (times: process.hrtime.bigint() minus
//     the parent's `baseNs`; hrtime is CLOCK_MONOTONIC on Linux, one clock for every process on the
//     machine — the parent checks that with the 'clock' message before the run);
//   - INCRs a per-key occupancy counter in Redis through a plain node-redis client (not through
//     the lock store) and expects 1, pauses one setImmediate, then DECRs and expects 0: an
//     overlap detector that does not depend on any clock.
// Every acquire and release outcome is counted: success, held (success:false), or an error by its
// AgentToolsError code ('untyped:<name>' for anything else, which the test rejects).
//
// Messages: parent → {type:'clock'} → child answers {type:'clock', ns}; parent → {type:'go'};
// child → {type:'ready'} once connected, {type:'done', summary, ledger} at the end.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { createClient } from 'redis';
import { KVLockManager } from '@growthub/agent-tools/kv';
import { UpstashRestStore } from '@growthub/agent-tools/adapters';
import { AgentToolsError } from '@growthub/agent-tools/runtime';

const config = JSON.parse(process.argv[2]);
const baseNs = BigInt(config.baseNs);
const nowNs = () => Number(process.hrtime.bigint() - baseNs);

// transport 'http': the store's own transport on Node (node:http with keep-alive agents, about a
// quarter of undici's CPU per request, which is what lets ≥20,000 acquisitions fit in the test's
// time on two cores). transport 'fetch': the global fetch (undici), handed over as `fetch`, the
// path every other runtime takes. Same wire, same AbortSignal-driven timeouts.
const store = new UpstashRestStore({
  url: config.restUrl,
  token: config.token,
  ...config.store,
  ...(config.transport === 'http' ? {} : { fetch: globalThis.fetch }),
});
const expectedTransport = config.transport === 'http' ? 'node:http' : 'fetch';
if (store.transport !== expectedTransport) throw new Error(`store transport ${store.transport}, expected ${expectedTransport}`);
const manager = new KVLockManager(store, { keyPrefix: config.keyPrefix });
const redis = createClient({ url: config.redisUrl, RESP: 2 });
redis.on('error', () => {});
await redis.connect();

const counts = {
  acquire: { success: 0, held: 0, errors: {} },
  release: { released: 0, notReleased: 0, errors: {} },
  lateGrant: 0,       // acquired, but the lease was (nearly) over when the answer arrived: not used
  leaseOverrun: 0,    // the critical section ended after the lease's expiresAt (would void the check)
};
const occupancyViolations = []; // { key, seen, phase }
const ledger = []; // [keyIndex, fence, worker, enterNs, exitNs, leaseEndNs]
const overruns = []; // critical sections that ended after their lease: { key, fence, overMs, insideMs }
let successes = 0;
let stopping = false;

function countError(bucket, error) {
  const code = error instanceof AgentToolsError && typeof error.code === 'string' ? error.code : `untyped:${error?.name ?? typeof error}`;
  bucket[code] = (bucket[code] ?? 0) + 1;
}

async function worker(w) {
  const user = 'u';
  while (!stopping && successes < config.quota) {
    const k = Math.floor(Math.random() * config.keys);
    const thread = `key-${k}`;
    let lock;
    try {
      lock = await manager.acquireKvLock(user, thread, { ttlSeconds: config.ttlSeconds, ...(config.wait ? { wait: config.wait } : {}) });
    } catch (error) {
      countError(counts.acquire.errors, error);
      continue;
    }
    if (!lock.success) {
      counts.acquire.held++;
      continue;
    }
    counts.acquire.success++;
    const expiresAt = Date.parse(lock.expiresAt);
    let byLockId = w % 2 === 1;
    // The lease is only as good as what remains of it: a grant that arrives after retries may be
    // (nearly) expired already. Such a holder must not enter; it just releases.
    if (Date.now() >= expiresAt - config.safetyMs) {
      counts.lateGrant++;
      byLockId = true; // the manager's record of this key may already belong to a newer holder here
    } else {
      successes++;
      const occKey = `${config.occPrefix}:${k}`;
      const enter = nowNs();
      const leaseEnd = enter + (expiresAt - Date.now()) * 1e6; // the lease's end on the monotonic clock
      const inside = await redis.incr(occKey);
      if (inside !== 1) occupancyViolations.push({ key: k, seen: inside, phase: 'enter', fence: lock.fence });
      await nextTurn();
      const left = await redis.decr(occKey);
      if (left !== 0) occupancyViolations.push({ key: k, seen: left, phase: 'exit', fence: lock.fence });
      const exit = nowNs();
      if (exit >= leaseEnd) {
        counts.leaseOverrun++;
        overruns.push({ key: k, fence: lock.fence, overMs: (exit - leaseEnd) / 1e6, insideMs: (exit - enter) / 1e6 });
      }
      ledger.push([k, lock.fence, w, enter, exit, leaseEnd]);
    }
    try {
      // Half the workers release by lockId, half through the manager's own record of the acquire.
      const released = await manager.releaseKvLock(user, thread, byLockId ? { lockId: lock.lockId } : {});
      if (released) counts.release.released++;
      else counts.release.notReleased++;
    } catch (error) {
      countError(counts.release.errors, error);
    }
  }
}

process.on('message', async (message) => {
  if (message.type === 'clock') {
    process.send({ type: 'clock', ns: process.hrtime.bigint().toString() });
  } else if (message.type === 'go') {
    const started = performance.now();
    const timer = setTimeout(() => { stopping = true; }, config.deadlineMs);
    await Promise.all(Array.from({ length: config.concurrency }, (_, w) => worker(w)));
    clearTimeout(timer);
    await redis.quit();
    process.send({
      type: 'done',
      summary: { pid: process.pid, transport: config.transport ?? 'fetch', ms: performance.now() - started, cpu: process.cpuUsage(), successes, timedOut: stopping, counts, occupancyViolations, overruns },
      ledger,
    }, () => process.disconnect());
  }
});
process.send({ type: 'ready' });
