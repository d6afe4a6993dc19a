// The host bridge on Node: concurrency, cancellation, host failures and disposal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentEngine, AgentToolsError, getDefaultEngine } from '@growthub/agent-tools/runtime';
import { bridgeBurst } from '../runtimes/workload.js';

const echo = (...calls) => ({ calls });

// A few collections with turns of the event loop between them, so timers and promise jobs left
// by the burst are gone before the heap is measured.
async function settleGarbage() {
  for (let i = 0; globalThis.gc && i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
const kvGet = (key) => ({ kind: 'kv', args: ['GET', key] });

test('10,000 concurrent operations on one instance all get their own replies, and memory returns', async (t) => {
  const engine = await getDefaultEngine();
  // Warm up first: the first burst's JIT code and grown hash tables are not leaks.
  await bridgeBurst(engine, { count: 10_000, seed: 1 });
  await settleGarbage();
  const wasmBefore = engine.stats().heapInUse;
  const jsBefore = process.memoryUsage().heapUsed;

  const result = await bridgeBurst(engine, { count: 10_000, seed: 42 });
  assert.deepEqual(result.mismatches, []);
  assert.equal(result.failedAsExpected, 1000);

  const stats = engine.stats();
  assert.equal(stats.liveOperations, 0);
  assert.equal(stats.pendingCalls, 0);
  const wasmGrowth = stats.heapInUse - wasmBefore;
  assert.ok(wasmGrowth < 1 << 20, `wasm heap grew by ${wasmGrowth} bytes`);
  let jsGrowth = null;
  if (globalThis.gc) {
    await settleGarbage();
    jsGrowth = process.memoryUsage().heapUsed - jsBefore;
    assert.ok(jsGrowth < 1 << 20, `JS heap grew by ${jsGrowth} bytes`);
  }
  t.diagnostic(`node: 10,000 ops in ${result.ms.toFixed(1)} ms; wasm heap +${wasmGrowth} B` +
    (jsGrowth === null ? ' (run with --expose-gc for the JS heap)' : `, JS heap ${jsGrowth >= 0 ? '+' : ''}${jsGrowth} B`));
});

test('an AbortSignal cancels the pending host call and rejects with CANCELLED', async () => {
  const engine = await getDefaultEngine();
  const controller = new AbortController();
  let hostSignal;
  const pending = engine.run('diag.echo', echo(kvGet('slow'), kvGet('never')), {
    signal: controller.signal,
    host: {
      kv(args, signal) {
        hostSignal = signal;
        return new Promise(() => {}); // never answers on its own
      },
    },
  });
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(hostSignal.aborted, false);
  controller.abort();
  await assert.rejects(pending, (e) => e instanceof AgentToolsError && e.code === 'CANCELLED');
  assert.equal(hostSignal.aborted, true, 'the host call was told to stop');
  assert.equal(engine.stats().liveOperations, 0);
});

test('an already aborted signal rejects before anything starts', async () => {
  const engine = await getDefaultEngine();
  let calls = 0;
  await assert.rejects(
    engine.run('diag.echo', echo(kvGet('a')), { signal: AbortSignal.abort(), host: { kv: () => calls++ } }),
    { code: 'CANCELLED' },
  );
  assert.equal(calls, 0);
});

test('cancelling a sleeping operation clears its timer promptly', async () => {
  const engine = await getDefaultEngine();
  const started = Date.now();
  await assert.rejects(
    engine.run('diag.echo', echo({ kind: 'sleep', ms: 60_000 }), { signal: AbortSignal.timeout(20) }),
    { code: 'CANCELLED' },
  );
  assert.ok(Date.now() - started < 5_000);
});

test('host failures of every kind reach the caller as typed errors, and the instance keeps working', async () => {
  const engine = await getDefaultEngine();
  const cyclic = {};
  cyclic.self = cyclic;
  const cases = [
    ['throws', () => { throw new TypeError('socket closed'); }, 'HOST_ERROR', /TypeError: socket closed/],
    ['rejects', () => Promise.reject(new Error('ECONNRESET')), 'HOST_ERROR', /ECONNRESET/],
    ['rejects with a non-error', () => Promise.reject('nope'), 'HOST_ERROR', /nope/],
    ['throws a typed error', () => { throw new AgentToolsError('TIMEOUT', 'kv timed out'); }, 'TIMEOUT', /kv timed out/],
    ['returns undefined', () => undefined, 'HOST_BAD_REPLY', /not JSON-serialisable/],
    ['returns a function', () => () => 1, 'HOST_BAD_REPLY', /not JSON-serialisable/],
    ['returns a BigInt', () => 10n, 'HOST_BAD_REPLY', /BigInt/],
    ['returns a cycle', () => cyclic, 'HOST_BAD_REPLY', /circular/i],
    ['returns 9 MiB', () => 'x'.repeat(9 << 20), 'INPUT_TOO_LARGE', /exceeds MAX_MESSAGE_BYTES/],
    ['returns a deep array', () => JSON.parse('['.repeat(500) + ']'.repeat(500)), 'INPUT_TOO_LARGE', /nested deeper/],
  ];
  for (const [what, kv, code, message] of cases) {
    await assert.rejects(engine.run('diag.echo', echo(kvGet('k')), { host: { kv } }),
      (e) => e instanceof AgentToolsError && e.code === code && message.test(e.message), what);
  }
  await assert.rejects(engine.run('diag.echo', echo({ kind: 'now' }), { host: { now: () => 'noon' } }), { code: 'HOST_BAD_REPLY' });
  await assert.rejects(engine.run('diag.echo', echo({ kind: 'random', bytes: 2 }), { host: { random: () => 'XYZ!' } }), { code: 'HOST_BAD_REPLY' });
  // Still healthy: a normal operation afterwards.
  const ok = await engine.run('diag.echo', echo(kvGet('k')), { host: { kv: () => 'fine' } });
  assert.deepEqual(ok, { results: ['fine'], tag: null });
  assert.equal(engine.stats().liveOperations, 0);
});

test('bad inputs are rejected with typed errors before or inside the core', async () => {
  const engine = await getDefaultEngine();
  await assert.rejects(engine.run('no.such.operation', {}), { code: 'UNKNOWN_OPERATION' });
  await assert.rejects(engine.run('diag.echo', { calls: 'x' }), { code: 'INVALID_ARGUMENT' });
  await assert.rejects(engine.run('diag.echo', { calls: [], tag: 10n }), { code: 'INVALID_ARGUMENT' });
  await assert.rejects(engine.run('diag.echo', { calls: [], tag: '\ud800' }), { code: 'INVALID_ARGUMENT' }); // lone surrogate
  await assert.rejects(engine.run('diag.echo', { calls: [], tag: 'x'.repeat(9 << 20) }), { code: 'INPUT_TOO_LARGE' });
  await assert.rejects(engine.run('diag.echo', { calls: [], tag: 'é'.repeat(5 << 20) }), { code: 'INPUT_TOO_LARGE' }); // 10 MiB of UTF-8
  // Unicode, odd keys and NUL bytes pass through intact.
  const odd = 'ключ:*\n\u0000🔒';
  const value = await engine.run('diag.echo', { calls: [kvGet(odd)], tag: odd }, { host: { kv: (args) => args[1] } });
  assert.deepEqual(value, { results: [odd], tag: odd });
});

test('a host reply that arrives after cancellation is ignored', async () => {
  const engine = await getDefaultEngine();
  let answer;
  const controller = new AbortController();
  const run = engine.run('diag.echo', echo(kvGet('k')), {
    signal: controller.signal,
    host: { kv: () => new Promise((resolve) => { answer = resolve; }) },
  });
  await new Promise((resolve) => setImmediate(resolve));
  controller.abort();
  await assert.rejects(run, { code: 'CANCELLED' });
  answer('too late'); // must not resurrect or disturb anything
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(engine.stats().liveOperations, 0);
});

test('a host function that aborts its own operation synchronously does not re-enter the core', async () => {
  const engine = await getDefaultEngine();
  const controller = new AbortController();
  const run = engine.run('diag.echo', echo(kvGet('k'), kvGet('k2')), {
    signal: controller.signal,
    host: {
      kv(args) {
        controller.abort();
        return 'sync';
      },
    },
  });
  await assert.rejects(run, { code: 'CANCELLED' });
});

test('dispose rejects pending operations with DISPOSED, ignores their late replies and frees the engine', async () => {
  const engine = await AgentEngine.create();
  let answer;
  let called;
  const calling = new Promise((resolve) => { called = resolve; });
  const pending = engine.run('diag.echo', echo(kvGet('k')), {
    host: { kv: () => new Promise((resolve) => { answer = resolve; called(); }) },
  });
  const timed = engine.run('diag.echo', echo({ kind: 'sleep', ms: 60_000 }));
  await calling; // both started (fed together at the end of the wave): the kv call is in flight
  engine.dispose();
  await assert.rejects(pending, { code: 'DISPOSED' });
  await assert.rejects(timed, { code: 'DISPOSED' });
  answer('late'); // the host call ran to its end; nothing is listening any more
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(engine.disposed, true);
  await assert.rejects(engine.run('diag.echo', echo()), { code: 'DISPOSED' });
  engine.dispose(); // idempotent
});

test('engines support `using` through Symbol.dispose and share the one wasm instance', async () => {
  const a = await AgentEngine.create();
  const b = await AgentEngine.create();
  assert.equal(typeof a[Symbol.dispose], 'function');
  const [x, y] = await Promise.all([
    a.run('diag.echo', echo(kvGet('a')), { host: { kv: () => 'from a' } }),
    b.run('diag.echo', echo(kvGet('b')), { host: { kv: () => 'from b' } }),
  ]);
  assert.deepEqual([x.results, y.results], [['from a'], ['from b']]);
  a[Symbol.dispose]();
  b.dispose();
  assert.ok(a.disposed && b.disposed);
});
