// Mutual exclusion under load, through UpstashRestStore and the Upstash-REST fixture to a real
// redis-server. PROCESSES worker processes (tests/js/kv-contention-worker.mjs), each running 32
// async workers on one KVLockManager, fight over 16 keys. Every critical section is logged in a
// ledger with CLOCK_MONOTONIC times (process.hrtime.bigint(), one clock for all processes on Linux;
// checked below) and guarded by a second, clock-free detector: a per-key occupancy counter in Redis
// that each holder INCRs on entry (must read 1) and DECRs on exit (must read 0).
//
// Checked per run: no two critical sections of one key overlap in time; per key, fences of
// successive holders (in entry order) strictly increase; the occupancy counter never saw a second
// holder; every acquire/release ended in success, held, or an AgentToolsError with a code; no lock
// outlives the run (clean run: none left at all; fault run: every leftover has a TTL and is gone
// after it).
//
// The fault run injects ≥10% faults at the fixture (500s, delays past the client's timeout before
// and after executing, dropped connections before and after executing, truncated/HTML bodies),
// rotating the before/after variants every 200 ms. A request that timed out may have run: an
// acquire replayed by the store's retry finds its own value and counts as acquired; one whose
// retries all failed leaves a lock nobody uses until its TTL. A grant that arrives when (nearly) no
// lease is left is not used (counted as lateGrant).
//
// Transports: the clean run's processes hand UpstashRestStore a small fetch over node:http (its
// `fetch` option); undici's fetch costs about three times the CPU per request, and ≥20,000
// acquisitions (~60,000 HTTP requests) must fit on two cores. The fault run mixes both: two
// processes on the global fetch, two on node:http.
// Time on 2 cores (Node 20): clean run ~33 s, fault run ~30 s when the machine is otherwise idle;
// 65-90 s each when other jobs load it (the work is CPU-bound: ~3.7 ms CPU per acquisition,
// across the workers, the fixture and redis-server).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { startUpstashRestServer } from '../fixtures/upstash-rest-server.mjs';
import { startRedis } from '../helpers/redis.mjs';

const WORKER = fileURLToPath(new URL('./kv-contention-worker.mjs', import.meta.url));
const PROCESSES = 4; // each with CONCURRENCY async workers: 8 contenders per key
const CONCURRENCY = 32;
const KEYS = 16;
// Waiters back off 500-1000 ms: with 8 workers per key, shorter waits mostly add polls (CPU) on
// two cores without more acquisitions per second.
const WAIT = { timeoutMs: 5000, baseMs: 500, maxMs: 1000 };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let redis;
let client;
let rest;
const children = new Set();

before(async () => {
  redis = await startRedis();
  client = createClient({ url: redis.url, RESP: 2 });
  client.on('error', () => {});
  await client.connect();
  rest = await startUpstashRestServer({ redisUrl: redis.url, token: `tok_${randomBytes(12).toString('hex')}` });
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await rest?.close();
  await client?.quit();
  await redis?.stop();
});

// Forks the workers, checks the shared clock, starts them together and collects their results.
async function runWorkers({ prefix, quota, ttlSeconds, wait, store, transport, deadlineMs, safetyMs }) {
  const baseNs = process.hrtime.bigint();
  const config = {
    restUrl: rest.url, token: rest.token, redisUrl: redis.url, keyPrefix: prefix, occPrefix: `${prefix}-occ`,
    keys: KEYS, concurrency: CONCURRENCY, quota: Math.ceil(quota / PROCESSES), ttlSeconds, wait, store,
    transport, deadlineMs, baseNs: baseNs.toString(), safetyMs,
  };
  const procs = Array.from({ length: PROCESSES }, (_, i) => {
    // 'mixed': even processes use the global fetch (undici), odd ones node:http (see the worker).
    const own = { ...config, transport: transport === 'mixed' ? (i % 2 ? 'http' : 'fetch') : transport };
    const child = fork(WORKER, [JSON.stringify(own)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(child);
    const inbox = [];
    const waiters = [];
    child.on('message', (m) => (waiters.length ? waiters.shift()(m) : inbox.push(m)));
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => { children.delete(child); resolve({ code, signal }); }));
    const next = () => Promise.race([
      new Promise((resolve) => (inbox.length ? resolve(inbox.shift()) : waiters.push(resolve))),
      exited.then((e) => { throw new Error(`worker ${child.pid} exited early (${JSON.stringify(e)})`); }),
    ]);
    return { child, next, exited };
  });
  for (const p of procs) assert.equal((await p.next()).type, 'ready');

  // One monotonic clock for every process: a child's reading lies between the parent's readings
  // taken just before the request and just after the answer.
  for (const p of procs) {
    for (let i = 0; i < 5; i++) {
      const t0 = process.hrtime.bigint();
      p.child.send({ type: 'clock' });
      const m = await p.next();
      const t1 = process.hrtime.bigint();
      const ns = BigInt(m.ns);
      assert.ok(t0 <= ns && ns <= t1, `child ${p.child.pid} clock ${ns} outside [${t0}, ${t1}]`);
    }
  }

  const started = performance.now();
  for (const p of procs) p.child.send({ type: 'go' });
  const results = await Promise.all(procs.map(async (p) => {
    const m = await p.next();
    assert.equal(m.type, 'done');
    await p.exited;
    return m;
  }));
  return { results, ms: performance.now() - started };
}

function addCounts(into, from) {
  for (const [k, v] of Object.entries(from)) {
    if (typeof v === 'number') into[k] = (into[k] ?? 0) + v;
    else addCounts((into[k] ??= {}), v);
  }
  return into;
}

// The checks shared by both runs. Returns the merged counts.
function checkLedger(results, t) {
  const counts = {};
  const violations = [];
  const overruns = [];
  const byKey = Array.from({ length: KEYS }, () => []);
  const untyped = [];
  for (const { summary, ledger } of results) {
    addCounts(counts, summary.counts);
    violations.push(...summary.occupancyViolations.map((v) => ({ pid: summary.pid, ...v })));
    overruns.push(...summary.overruns.map((v) => ({ pid: summary.pid, ...v })));
    for (const [key, fence, worker, enter, exit, leaseEnd] of ledger) {
      byKey[key].push({ key, fence, pid: summary.pid, worker, enter, exit, leaseEnd });
    }
    for (const bucket of [summary.counts.acquire.errors, summary.counts.release.errors]) {
      untyped.push(...Object.keys(bucket).filter((code) => code.startsWith('untyped:')));
    }
    t.diagnostic(`  pid ${summary.pid} (${summary.transport}): ${summary.successes} entries in ${(summary.ms / 1000).toFixed(1)} s, CPU ${((summary.cpu.user + summary.cpu.system) / 1e6).toFixed(1)} s`);
  }
  let entries = 0;
  const overlaps = [];
  for (const records of byKey) {
    records.sort((a, b) => a.enter - b.enter);
    entries += records.length;
    for (let i = 1; i < records.length; i++) {
      const prev = records[i - 1];
      const cur = records[i];
      // An overlap that starts after the earlier holder's lease ended is that holder outliving its
      // TTL (a stalled process; what fences are for), not the lock letting two in: kept apart.
      if (prev.exit > cur.enter) overlaps.push({ prev, cur, afterLease: cur.enter >= prev.leaseEnd });
      assert.ok(Number.isInteger(cur.fence) && cur.fence > prev.fence,
        `fences not strictly increasing on key-${cur.key}: ${JSON.stringify(prev)} then ${JSON.stringify(cur)}`);
    }
  }
  t.diagnostic(`entries ${entries}, acquire ${JSON.stringify(counts.acquire)}, release ${JSON.stringify(counts.release)}, lateGrant ${counts.lateGrant}, leaseOverrun ${counts.leaseOverrun}`);
  if (overruns.length) t.diagnostic(`critical sections that outlived their lease: ${JSON.stringify(overruns.slice(0, 5))}`);

  assert.deepEqual(overlaps.filter((o) => !o.afterLease), [], 'two holders inside one key at once, within the first one\'s lease');
  assert.deepEqual(violations, [], 'the Redis occupancy counter saw two holders at once');
  assert.deepEqual(overlaps, [], 'overlap after a lease ended (a holder outlived its TTL)');
  assert.deepEqual(overruns, [], 'a critical section outlived its lease (the process stalled past the TTL)');
  assert.deepEqual(untyped, [], 'every failure is an AgentToolsError with a code');
  // Every success entered or was a late grant; every attempt is accounted for.
  assert.equal(counts.acquire.success, entries + counts.lateGrant);
  return { counts, entries, byKey };
}

async function lockKeys(prefix) {
  const keys = [];
  for (let k = 0; k < KEYS; k++) keys.push(`${prefix}:u:key-${k}`);
  return keys;
}

async function cleanup(prefix) {
  const keys = [];
  for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) keys.push(...(Array.isArray(batch) ? batch : [batch]));
  if (keys.length) await client.del(keys);
}

test('4 processes × 32 workers, 16 keys, ≥20,000 acquisitions: no overlap, fences increase', { timeout: 300_000 }, async (t) => {
  const prefix = `ctn-${randomBytes(4).toString('hex')}`;
  rest.resetStats();
  const { results, ms } = await runWorkers({
    prefix, quota: 20_000, ttlSeconds: 5, wait: WAIT,
    store: {}, transport: 'http', deadlineMs: 240_000, safetyMs: 500,
  });
  for (const { summary } of results) assert.equal(summary.timedOut, false, `worker ${summary.pid} hit its deadline`);
  const { counts, entries } = checkLedger(results, t);
  assert.ok(entries >= 20_000, `${entries} acquisitions`);
  assert.equal(counts.lateGrant, 0);
  assert.deepEqual(counts.acquire.errors, {}, 'no errors without faults');
  assert.deepEqual(counts.release.errors, {});
  assert.equal(counts.release.released, counts.acquire.success, 'every release of a held lock succeeds');

  // Nothing held once the workers are done; the occupancy counters are back at 0.
  const keys = await lockKeys(prefix);
  assert.equal(await client.exists(keys), 0, 'no lock key remains');
  for (let k = 0; k < KEYS; k++) assert.ok([null, '0'].includes(await client.get(`${prefix}-occ:${k}`)));
  t.diagnostic(`${entries} acquisitions in ${(ms / 1000).toFixed(1)} s (${Math.round(entries / (ms / 1000))}/s); fixture: ${rest.stats.requests} requests`);
  await cleanup(prefix);
});

test('the same under ≥10% injected faults: still no overlap, fences increase, nothing held past its TTL', { timeout: 300_000 }, async (t) => {
  const prefix = `ctf-${randomBytes(4).toString('hex')}`;
  const TTL = 2;
  rest.resetStats();
  // Rotate the before/after-execute variants of drops and delays; each phase re-seeds the PRNG.
  const variants = [
    { dropBeforeExecute: true, delayBeforeExecute: true },
    { dropBeforeExecute: false, delayBeforeExecute: false },
    { dropBeforeExecute: true, delayBeforeExecute: false },
    { dropBeforeExecute: false, delayBeforeExecute: true },
  ];
  const base = { error500: 0.04, drop: 0.04, malformed: 0.005, delay: 0.03, delayMs: 450 };
  let phase = 0;
  // Drops and delays by variant: each phase's share of the fixture's counters goes to its variant.
  const split = { dropBeforeExecute: 0, dropAfterExecute: 0, delayBeforeExecute: 0, delayAfterExecute: 0 };
  let current = null;
  let seen = { drop: 0, delay: 0 };
  const rotate = () => {
    const { drop, delay } = rest.stats.faults;
    if (current) {
      split[current.dropBeforeExecute ? 'dropBeforeExecute' : 'dropAfterExecute'] += drop - seen.drop;
      split[current.delayBeforeExecute ? 'delayBeforeExecute' : 'delayAfterExecute'] += delay - seen.delay;
    }
    seen = { drop, delay };
    current = variants[phase % variants.length];
    rest.setFaults({ ...base, ...current, seed: 1000 + phase });
    phase++;
  };
  rotate();
  const rotation = setInterval(rotate, 200);
  let out;
  try {
    out = await runWorkers({
      prefix, quota: 5_000, ttlSeconds: TTL, wait: WAIT,
      store: { timeoutMs: 300, retries: 2, backoffMs: 20 }, transport: 'mixed', deadlineMs: 240_000, safetyMs: 1000,
    });
  } finally {
    clearInterval(rotation);
    rotate();
    rest.setFaults({});
  }
  const { results, ms } = out;
  const { faults, requests } = rest.stats;
  t.diagnostic(`fixture: ${requests} requests, faults ${JSON.stringify(faults)} (${((100 * faults.total) / requests).toFixed(1)}%), ${phase} fault phases; drops/delays by variant ${JSON.stringify(split)}`);
  for (const { summary } of results) assert.equal(summary.timedOut, false, `worker ${summary.pid} hit its deadline`);
  const { counts, entries } = checkLedger(results, t);
  assert.ok(entries >= 5_000, `${entries} acquisitions`);
  const expected = new Set(['TIMEOUT', 'HOST_ERROR', 'HOST_BAD_REPLY']);
  for (const code of [...Object.keys(counts.acquire.errors), ...Object.keys(counts.release.errors)]) {
    assert.ok(expected.has(code), `unexpected error code ${code}`);
  }
  assert.ok(faults.total >= 0.1 * requests, `faults ${faults.total} of ${requests} requests`);

  // Leftovers (acquires that ran but whose answer was lost) all carry a TTL ≤ the lock's, and are
  // gone after it.
  const keys = await lockKeys(prefix);
  let leftovers = 0;
  for (const key of keys) {
    const pttl = await client.pTTL(key);
    if (pttl === -2) continue;
    leftovers++;
    assert.ok(pttl > 0 && pttl <= TTL * 1000, `${key} has PTTL ${pttl}`);
  }
  await sleep(TTL * 1000 + 300);
  assert.equal(await client.exists(keys), 0, 'no lock outlives its TTL');
  const occ = await Promise.all(Array.from({ length: KEYS }, (_, k) => client.get(`${prefix}-occ:${k}`)));
  assert.ok(occ.every((v) => v === null || v === '0'), `occupancy counters ${occ}`);
  t.diagnostic(`${entries} acquisitions in ${(ms / 1000).toFixed(1)} s (${Math.round(entries / (ms / 1000))}/s); ${leftovers} lock(s) left at the end, all expired`);
  for (const kind of Object.keys(split)) assert.ok(split[kind] > 0, `no ${kind} fault was injected`);
  await cleanup(prefix);
});
