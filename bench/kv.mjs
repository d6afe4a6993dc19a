// Lock acquire+release cycles over Upstash REST: ours vs @upstash/lock vs the raw floor, and our
// core's CPU per cycle on the in-memory store. Exported for bench/run.mjs; runnable alone
// (`node bench/kv.mjs`).
//
// Setup, all local: a redis-server on a free loopback port, and the Upstash-REST fixture
// (tests/fixtures/upstash-rest-server.mjs, no faults) in a child process, so the server's CPU does
// not share the bench's event loop. The peers talk HTTP through the global fetch (undici); ours
// through its own Node transport (node:http with keep-alive), and once more through fetch.
//   ours            KVLockManager(new UpstashRestStore({url, token})): acquireKvLock + releaseKvLock
//                   (one EVALSHA each: acquire also bumps the fence counter); the store pipelines
//                   automatically (commands issued in the same microtask wave share one POST /pipeline)
//   ours (fetch)    the same store given `fetch: globalThis.fetch`: the transport every other
//                   runtime uses, and the same one as the peers
//   ours (1 req/command)  the same with UpstashRestStore({..., autoPipeline: false})
//   @upstash/lock   new Lock({ id, redis: new Redis({url, token}), lease, retry: {attempts: 1} }):
//                   acquire() (SET NX PX) + release() (EVAL compare-and-delete)
//   floor           @upstash/redis set(key, value, {nx, px}) + eval(compare-and-delete, [key], [value])
//   floor, our commands  @upstash/redis sending exactly our two commands (evalsha of our acquire
//                   and release scripts, a lock value of our size): not a target, a yardstick that
//                   separates what our commands cost (the fence script, the metadata value) from
//                   what our client costs
// @upstash/redis 1.39 pipelines automatically by default (commands issued in the same tick go out as
// one POST /pipeline); the peers run with that default, and again with enableAutoPipelining: false
// ("1 req/command"), which is the same wire shape as "ours (1 req/command)". Each in-flight cycle has
// its own key, so nothing contends. Per peer: cycles/s, p50/p99 wall time per cycle, HTTP requests per
// cycle, and CPU time per cycle in each process (this client, the fixture, redis-server).
// Every peer is warmed up first and measured in ten parts, alternately in order and in reverse:
// a GC pause or a burst of other work on the machine then lands on one part of each peer rather
// than on one peer. At c=64 the "1 req/command" peers, ten times slower, run a tenth of the cycles.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lock } from '@upstash/lock';
import { Redis } from '@upstash/redis';
import { createClient } from 'redis';
import { KVLockManager } from '@growthub/agent-tools/kv';
import { InMemoryKVStore, UpstashRestStore } from '@growthub/agent-tools/adapters';
import { KV_SCRIPTS } from '#internal/generated/constants.js';
import { meterCore } from './core-meter.mjs';
import { collectGarbage } from './gc.mjs';

const FIXTURE = fileURLToPath(new URL('../tests/fixtures/upstash-rest-server.mjs', import.meta.url));
const GC_MODULE = fileURLToPath(new URL('./gc.mjs', import.meta.url));
const TOKEN = `bench_${randomUUID()}`;
const LEASE_MS = 10_000;
const COMPARE_AND_DELETE = 'if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end';

const TARGETS = { wallVsFloor: 1.05, throughputVsUpstashLock: 1, coreCpuUs: 10 };

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    }).on('error', reject);
  });
}

async function startRedisServer() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'agent-tools-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => { socket.end(); resolve(true); }).on('error', () => resolve(false));
    });
    if (ok) break;
    if (i > 100) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  // redis-server's own CPU time (INFO cpu), in µs: at c=64 every process's cost adds to the wall time.
  const info = createClient({ url });
  await info.connect();
  return {
    url,
    cpuUs: async () => {
      const text = await info.info('cpu');
      const seconds = (name) => Number(new RegExp(`${name}:([\\d.]+)`).exec(text)?.[1] ?? NaN);
      return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6;
    },
    stop: async () => {
      await info.quit();
      child.kill();
      await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// The fixture in its own process; answers 'stats' on stdin with its request counters and CPU time,
// and 'gc' with a full collection.
const FIXTURE_CHILD = `
import { startUpstashRestServer } from ${JSON.stringify(FIXTURE)};
import { collectGarbage } from ${JSON.stringify(GC_MODULE)};
const [redisUrl, token] = process.argv.slice(1);
const server = await startUpstashRestServer({ redisUrl, token });
process.stdout.write(JSON.stringify({ url: server.url }) + '\\n');
process.stdin.setEncoding('utf8');
process.stdin.on('data', (line) => {
  if (line.startsWith('stats')) {
    const cpu = process.cpuUsage();
    process.stdout.write(JSON.stringify({ requests: server.stats.requests, commands: server.stats.commands, cpuUs: cpu.user + cpu.system }) + '\\n');
  } else if (line.startsWith('gc')) {
    collectGarbage();
    process.stdout.write('{}\\n');
  }
});
process.stdin.on('end', async () => { await server.close(); process.exit(0); });
`;

async function startFixture(redisUrl) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', FIXTURE_CHILD, redisUrl, TOKEN], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdout.setEncoding('utf8');
  let buffer = '';
  const waiting = [];
  child.stdout.on('data', (chunk) => {
    buffer += chunk;
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      waiting.shift()?.(JSON.parse(line));
    }
  });
  const next = () => new Promise((resolve) => waiting.push(resolve));
  const { url } = await next();
  return {
    url,
    stats: () => { const p = next(); child.stdin.write('stats\n'); return p; },
    collectGarbage: () => { const p = next(); child.stdin.write('gc\n'); return p; },
    close: async () => { child.stdin.end(); await new Promise((resolve) => child.once('exit', resolve)); },
  };
}

// One cycle factory per peer: (slot) => async () => { acquire; release } on the slot's own key.
async function peers(url) {
  const upstash = (enableAutoPipelining) => new Redis({ url, token: TOKEN, enableAutoPipelining, enableTelemetry: false });
  const floor = (redis) => (slot) => {
    const key = `floor:${slot}`;
    return async () => {
      const value = randomUUID();
      if ((await redis.set(key, value, { nx: true, px: LEASE_MS })) !== 'OK') throw new Error('floor: SET NX refused');
      if ((await redis.eval(COMPARE_AND_DELETE, [key], [value])) !== 1) throw new Error('floor: not released');
    };
  };
  // Our acquire and release as raw commands: the same scripts, keys, value shape and size.
  const hex = () => randomUUID().replaceAll('-', '').slice(0, 16);
  const processId = `instance-${hex()}`;
  const ourCommands = (redis) => (slot) => {
    const key = `fenced:bench:s${slot}`;
    const fenceKey = `${key}:fence`;
    return async () => {
      const now = Date.now();
      const lockId = `bench-s${slot}-${now}-${hex()}`;
      const value = `{"lockId":"${lockId}","lockedAt":"${new Date(now).toISOString()}","processId":"${processId}","expiresAt":"${new Date(now + LEASE_MS).toISOString()}"}`;
      if (typeof (await redis.evalsha(KV_SCRIPTS.acquire.sha1, [key, fenceKey], [value, LEASE_MS])) !== 'number') throw new Error('floor, our commands: not acquired');
      if ((await redis.evalsha(KV_SCRIPTS.release.sha1, [key], [`{"lockId":"${lockId}",`])) !== 1) throw new Error('floor, our commands: not released');
    };
  };
  const upstashLock = (redis) => (slot) => {
    const lock = new Lock({ id: `ulock:${slot}`, redis, lease: LEASE_MS, retry: { attempts: 1, delay: 0 } });
    return async () => {
      if (!(await lock.acquire())) throw new Error('@upstash/lock: not acquired');
      if (!(await lock.release())) throw new Error('@upstash/lock: not released');
    };
  };
  const ours = (autoPipeline, extra = {}) => {
    const manager = new KVLockManager(new UpstashRestStore({ url, token: TOKEN, autoPipeline, ...extra }),
      { keyPrefix: `ours${autoPipeline ? '' : '1'}${extra.fetch ? 'f' : ''}`, defaultTTL: LEASE_MS / 1000 });
    return (slot) => {
      const thread = `s${slot}`;
      return async () => {
        const lock = await manager.acquireKvLock('bench', thread);
        if (!lock.success) throw new Error('ours: not acquired');
        if (!(await manager.releaseKvLock('bench', thread, { lockId: lock.lockId }))) throw new Error('ours: not released');
      };
    };
  };
  const pipelined = upstash(true);
  const plain = upstash(false);
  for (const script of [KV_SCRIPTS.acquire, KV_SCRIPTS.release]) await pipelined.scriptLoad(script.lua);
  return {
    floor: floor(pipelined),
    '@upstash/lock': upstashLock(pipelined),
    ours: ours(true),
    'ours (fetch)': ours(true, { fetch: globalThis.fetch }),
    'floor, our commands': ourCommands(pipelined),
    'floor (1 req/command)': floor(plain),
    '@upstash/lock (1 req/command)': upstashLock(plain),
    'ours (1 req/command)': ours(false),
  };
}

// Cycles a peer runs out of a plan's `cycles`: one request per command is ten times slower at
// concurrency, and its figures only need to show that.
function cyclesFor(peer, concurrency, cycles) {
  return peer.endsWith('(1 req/command)') && concurrency > 1 ? Math.round(cycles / 10) : cycles;
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

// `cycles` cycles over `concurrency` slots; each slot runs its share back to back on its own key.
// Returns each cycle's wall time and the whole run's.
async function run(makeCycle, concurrency, cycles) {
  const times = new Float64Array(cycles);
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async (_, slot) => {
    const cycle = makeCycle(slot);
    while (next < cycles) {
      const i = next++;
      const t0 = performance.now();
      await cycle();
      times[i] = performance.now() - t0;
    }
  }));
  return { times, ms: performance.now() - started };
}

// Runs from several passes as one: total cycles over total time, quantiles over every cycle.
function combine(parts) {
  const sorted = parts.flatMap((p) => Array.from(p.times)).sort((a, b) => a - b);
  const ms = parts.reduce((sum, p) => sum + p.ms, 0);
  return { cyclesPerSec: sorted.length / (ms / 1000), p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99) };
}

// Our cost per cycle with no I/O: in-memory store, sequential acquire+release. `coreUs` is the
// time inside the wasm core (the target); `cpuUs` the whole process (API shim, driver, JSON
// across the boundary, the store).
async function coreCpu(cycles = 20_000, warmup = 2_000) {
  const manager = new KVLockManager(new InMemoryKVStore(), { keyPrefix: 'cpu' });
  const cycle = async () => {
    const lock = await manager.acquireKvLock('bench', 't', { ttlSeconds: 60 });
    await manager.releaseKvLock('bench', 't', { lockId: lock.lockId });
  };
  for (let i = 0; i < warmup; i++) await cycle();
  const meter = await meterCore();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < cycles; i++) await cycle();
  const wallUs = ((performance.now() - t0) * 1000) / cycles;
  const cpu = process.cpuUsage(cpu0);
  const core = meter.read();
  meter.uninstall();
  return { cycles, wallUs, cpuUs: (cpu.user + cpu.system) / cycles, coreUs: core.us / cycles };
}

const PARTS = 10;

export async function benchKv({ plan = [{ concurrency: 1, cycles: 4_000, warmup: 400 }, { concurrency: 64, cycles: 120_000, warmup: 6_000 }] } = {}) {
  const redis = await startRedisServer();
  const fixture = await startFixture(redis.url);
  const rows = [];
  try {
    const all = await peers(fixture.url);
    for (const { concurrency, cycles, warmup } of plan) {
      // Every peer warms up before any is measured, and each is measured in parts, alternately in
      // order and in reverse: the fixture's and redis-server's own warm-up and drift then weigh on
      // every peer alike instead of on whichever runs first.
      const entries = Object.entries(all);
      for (const [peer, makeCycle] of entries) await run(makeCycle, concurrency, cyclesFor(peer, concurrency, warmup));
      const parts = Object.fromEntries(entries.map(([peer]) => [peer, { runs: [], requests: 0, cycles: 0, cpuUs: { client: 0, fixture: 0, redis: 0 } }]));
      for (let part = 0; part < PARTS; part++) {
        for (const [peer, makeCycle] of part % 2 ? [...entries].reverse() : entries) {
          const share = Math.round(cyclesFor(peer, concurrency, cycles) / PARTS);
          // Each part starts on clean heaps, so that no peer pays for the garbage of the one before
          // it (the order puts a different neighbour before each peer, and the one-request-per-
          // command peers leave far more garbage than the others).
          await fixture.collectGarbage();
          collectGarbage();
          const before = await fixture.stats();
          const redisBefore = await redis.cpuUs();
          const clientBefore = process.cpuUsage();
          parts[peer].runs.push(await run(makeCycle, concurrency, share));
          const client = process.cpuUsage(clientBefore);
          const redisAfter = await redis.cpuUs();
          const after = await fixture.stats();
          parts[peer].requests += after.requests - before.requests;
          parts[peer].cycles += share;
          const cpu = parts[peer].cpuUs;
          cpu.client += client.user + client.system;
          cpu.fixture += after.cpuUs - before.cpuUs;
          cpu.redis += redisAfter - redisBefore;
        }
      }
      const results = {};
      for (const [peer, part] of Object.entries(parts)) {
        const perCycle = (us) => us / part.cycles;
        results[peer] = {
          ...combine(part.runs),
          httpPerCycle: part.requests / part.cycles,
          cycles: part.cycles,
          clientCpuUs: perCycle(part.cpuUs.client),
          fixtureCpuUs: perCycle(part.cpuUs.fixture),
          redisCpuUs: perCycle(part.cpuUs.redis),
        };
      }
      // Per part, ours against the peers' same part: how far one short run can stray.
      const partRatio = (peer, other, f) => parts[peer].runs.map((run_, i) => f(run_, parts[other].runs[i]));
      const p50Of = (run_) => quantile(Array.from(run_.times).sort((a, b) => a - b), 0.5);
      const range = (values) => `${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)}`;
      const floor = results.floor;
      const lock = results['@upstash/lock'];
      const plainFloor = results['floor (1 req/command)'];
      for (const [peer, r] of Object.entries(results)) {
        rows.push({
          case: `c=${concurrency}, ${r.cycles} cycles`,
          peer,
          cyclesPerSec: r.cyclesPerSec,
          p50Ms: r.p50Ms,
          p99Ms: r.p99Ms,
          httpPerCycle: r.httpPerCycle,
          // CPU µs per cycle in each process (client: this one, including V8's helper threads).
          clientCpuUs: r.clientCpuUs,
          fixtureCpuUs: r.fixtureCpuUs,
          redisCpuUs: r.redisCpuUs,
          p50VsFloor: r.p50Ms / floor.p50Ms,
          p50VsFloor1Req: r.p50Ms / plainFloor.p50Ms,
          tputVsUpstashLock: r.cyclesPerSec / lock.cyclesPerSec,
          ...(peer === 'ours' || peer === 'ours (fetch)' ? {
            p50VsOurCommands: r.p50Ms / results['floor, our commands'].p50Ms,
            partsP50VsFloor: range(partRatio(peer, 'floor', (a, b) => p50Of(a) / p50Of(b))),
            partsTputVsUpstashLock: range(partRatio(peer, '@upstash/lock', (a, b) => b.ms / a.ms)),
          } : {}),
        });
      }
    }
  } finally {
    await fixture.close();
    await redis.stop();
  }
  const cpu = await coreCpu();
  rows.push({ case: `core, in-memory store, ${cpu.cycles} sequential cycles`, peer: 'ours', usPerCycle: cpu.wallUs, cpuUsPerCycle: cpu.cpuUs, coreUsPerCycle: cpu.coreUs });

  // Targets: wall time per cycle (p50) ≤ 1.05× the floor, throughput ≥ @upstash/lock (both at
  // every concurrency, against the peers' default client), core CPU ≤ 10 µs per cycle.
  for (const row of rows.filter((r) => r.peer === 'ours' && r.p50VsFloor !== undefined)) {
    rows.push({ case: `target ${row.case}: p50 ≤ ${TARGETS.wallVsFloor}× floor`, peer: 'ours', value: row.p50VsFloor, met: row.p50VsFloor <= TARGETS.wallVsFloor ? 'met' : 'NOT met' });
    rows.push({ case: `target ${row.case}: throughput ≥ @upstash/lock`, peer: 'ours', value: row.tputVsUpstashLock, met: row.tputVsUpstashLock >= TARGETS.throughputVsUpstashLock ? 'met' : 'NOT met' });
  }
  rows.push({ case: `target: core CPU ≤ ${TARGETS.coreCpuUs} µs per cycle`, peer: 'ours', value: cpu.coreUs, met: cpu.coreUs <= TARGETS.coreCpuUs ? 'met' : 'NOT met' });
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await benchKv();
  console.table(rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? Number(v.toFixed(2)) : v]))));
}
