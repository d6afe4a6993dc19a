// The event envelope between the core and the driver: KV arguments cross as plain strings (no
// JSON), so odd text must arrive exactly as it was sent, whatever its size or alphabet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentEngine, loadWasm } from '@growthub/agent-tools/runtime';
import { EventTag, KV_SCRIPTS } from '#internal/generated/constants.js';

// Runs one diag.echo whose kv calls each send `args`; the host records what it was given and
// answers with its arguments joined, which must come back through the core unchanged.
async function roundTrip(engine, commands) {
  const seen = [];
  const value = await engine.run('diag.echo', { calls: commands.map((args) => ({ kind: 'kv', args })) }, {
    host: {
      kv(args) {
        seen.push(args);
        return args.join('|');
      },
    },
  });
  return { seen, results: value.results };
}

const ODD = [
  'plain',
  '',
  'quote " backslash \\ slash / tab \t newline \n return \r',
  'controls \u0001\u0002\u001f\u007f',
  '{"lockId":"x","lockedAt":"2026-01-01T00:00:00.000Z"}',
  '\\u0041 is not decoded: it is text',
  'latin é ü ß',
  'cjk 漢字 かな',
  'astral 😀 𝄞',
  'mixed ascii then é then ascii again',
  '\u2028\u2029',
];

test('kv arguments arrive exactly as sent: quotes, escapes, controls, JSON text', async (t) => {
  const engine = await AgentEngine.create();
  t.after(() => engine.dispose());
  const ascii = ODD.filter((s) => /^[\x00-\x7f]*$/.test(s));
  const { seen, results } = await roundTrip(engine, [['SET', ...ascii]]);
  assert.deepEqual(seen, [['SET', ...ascii]]);
  assert.deepEqual(results, [['SET', ...ascii].join('|')]);
});

test('non-ASCII kv arguments (two-, three- and four-byte UTF-8) arrive exactly as sent', async (t) => {
  const engine = await AgentEngine.create();
  t.after(() => engine.dispose());
  const { seen, results } = await roundTrip(engine, [ODD, ['GET', 'é'], ['GET', 'ascii-only']]);
  assert.deepEqual(seen, [ODD, ['GET', 'é'], ['GET', 'ascii-only']]);
  assert.deepEqual(results, [ODD.join('|'), 'GET|é', 'GET|ascii-only']);
});

test('a lone surrogate (escaped by JSON.stringify) is refused as input, so every argument is valid UTF-8', async (t) => {
  const engine = await AgentEngine.create();
  t.after(() => engine.dispose());
  await assert.rejects(roundTrip(engine, [['GET', 'a\ud800b']]), (e) => e.code === 'INVALID_ARGUMENT');
  const { seen } = await roundTrip(engine, [['GET', 'a\ud83d\ude00b']]);
  assert.deepEqual(seen, [['GET', 'a😀b']]);
});

test('large arguments (a megabyte each, ASCII and not) cross whole', async (t) => {
  const engine = await AgentEngine.create();
  t.after(() => engine.dispose());
  const big = 'x'.repeat(1 << 20);
  const wide = 'é😀'.repeat(100_000);
  const { seen } = await roundTrip(engine, [['SET', 'k', big], ['SET', 'k', wide]]);
  assert.equal(seen[0][2].length, big.length);
  assert.equal(seen[0][2], big);
  assert.equal(seen[1][2], wide);
  // The engine keeps working with small events after large ones.
  const again = await roundTrip(engine, [['GET', 'k']]);
  assert.deepEqual(again.seen, [['GET', 'k']]);
});

test('many arguments in one call, and many operations in flight at once', async (t) => {
  const engine = await AgentEngine.create();
  t.after(() => engine.dispose());
  const many = Array.from({ length: 500 }, (_, i) => (i % 3 ? `arg${i}` : `é${i}"\n`));
  const { seen } = await roundTrip(engine, [many]);
  assert.deepEqual(seen, [many]);
  // Replies answered synchronously feed inputs that each finish one operation while others start.
  const runs = await Promise.all(Array.from({ length: 300 }, (_, i) => roundTrip(engine, [['GET', `k${i}`], ['GET', `ü${i}`]])));
  runs.forEach((r, i) => assert.deepEqual(r.seen, [['GET', `k${i}`], ['GET', `ü${i}`]]));
});

test('one input with many events: cancelling an operation aborts its call and finishes it', async (t) => {
  const engine = await AgentEngine.create();
  t.after(() => engine.dispose());
  const controller = new AbortController();
  let signalSeen;
  let answerLate;
  const pending = engine.run('diag.echo', { calls: [{ kind: 'kv', args: ['GET', 'é'] }] }, {
    signal: controller.signal,
    host: {
      kv(args, signal) {
        signalSeen = signal;
        return new Promise((resolve) => { answerLate = resolve; }); // ignores its signal
      },
    },
  });
  await new Promise((resolve) => setTimeout(resolve, 1));
  controller.abort();
  await assert.rejects(pending, (e) => e.code === 'CANCELLED');
  assert.equal(signalSeen, controller.signal);
  assert.equal(engine.stats().pendingCalls, 0);
  // The host answers anyway: the core knows the call is gone and drops the reply.
  const stale = engine.stats().staleReplies;
  answerLate('too late');
  await new Promise((resolve) => setTimeout(resolve, 1));
  assert.equal(engine.stats().staleReplies, stale + 1);
  assert.equal(engine.stats().liveOperations, 0);
  const after = await engine.run('diag.echo', { calls: [] });
  assert.ok(after, 'the engine keeps working');
});

test('non-kv calls keep their JSON args (sleep, random, now) and done values with any text parse back', async (t) => {
  const engine = await AgentEngine.create();
  t.after(() => engine.dispose());
  const value = await engine.run('diag.echo', {
    calls: [{ kind: 'sleep', ms: 1 }, { kind: 'random', bytes: 3 }, { kind: 'now' }],
    tag: { text: 'é "quoted" \n 😀', n: [1, 2.5, null, true] },
  }, {
    host: {
      random(args) {
        assert.deepEqual(args, { bytes: 3 });
        return 'abcdef';
      },
      now(args) {
        assert.equal(args, undefined);
        return 42;
      },
    },
  });
  assert.deepEqual(value, { tag: { text: 'é "quoted" \n 😀', n: [1, 2.5, null, true] }, results: [null, 'abcdef', 42] });
});

test('a store that takes JSON gets each lock command as one JSON text, and the arguments nowhere else', async () => {
  const { KVLockManager } = await import('@growthub/agent-tools/kv');
  const { InMemoryKVStore } = await import('@growthub/agent-tools/adapters');
  const memory = new InMemoryKVStore();
  const plain = [];
  const withJson = [];
  const store = {
    command(args) {
      plain.push(args);
      return memory.command(args);
    },
    [Symbol.for('@growthub/agent-tools/kv-command-json')](json, signal) {
      assert.equal(signal, undefined);
      withJson.push(json);
      return memory.command(JSON.parse(json));
    },
  };
  const locks = new KVLockManager(store);
  const user = 'ü "quoted" \\ 😀';
  const lock = await locks.acquireKvLock(user, 't\n1', { ttlSeconds: 5 });
  assert.equal(lock.success, true);
  assert.equal((await locks.inspectKvLock(user, 't\n1')).held, true);
  assert.equal((await locks.extendKvLock(user, 't\n1', { ttlMs: 9000 })).extended, true);
  assert.equal(await locks.releaseKvLock(user, 't\n1'), true);
  // The object path (caller metadata) asks for JSON too.
  assert.equal((await locks.acquireKvLock('u', 't', { metadata: { note: 'a "b" é' } })).success, true);
  assert.deepEqual(plain, []);
  assert.equal(withJson.length, 5);
  const commands = withJson.map((json) => JSON.parse(json));
  assert.deepEqual(commands.map((args) => args[0]), ['EVALSHA', 'EVALSHA', 'EVALSHA', 'EVALSHA', 'EVALSHA']);
  for (const args of commands) assert.ok(args.every((a) => typeof a === 'string'), 'every argument a string, numbers too');
  const key = `run:${user}:t\n1`;
  assert.deepEqual(commands[0].slice(0, 5), ['EVALSHA', KV_SCRIPTS.acquire.sha1, '2', key, `${key}:fence`]);
  assert.equal(commands[0][6], '5000');
  assert.match(commands[0][5], /^\{"lockId":"ü \\"quoted\\" \\\\ 😀-t\\n1-/);
  assert.deepEqual(commands[3], ['EVALSHA', KV_SCRIPTS.release.sha1, '1', key, commands[0][5].slice(0, commands[0][5].indexOf(',') + 1)]);
});

test('a plain store gets no JSON text: the core writes it only when asked', async () => {
  const { KVLockManager } = await import('@growthub/agent-tools/kv');
  const { InMemoryKVStore } = await import('@growthub/agent-tools/adapters');
  const memory = new InMemoryKVStore();
  const calls = [];
  const locks = new KVLockManager({
    command(...received) {
      calls.push(received);
      return memory.command(received[0]);
    },
  });
  assert.equal((await locks.acquireKvLock('u', 't')).success, true);
  assert.equal(await locks.releaseKvLock('u', 't'), true);
  assert.equal(calls.length, 2);
  for (const received of calls) assert.equal(received.length, 2); // (args, signal)
});

// Counts the driver's calls into the core (the one feeding export) while `body` runs. Installed
// after a first operation: Emscripten's export stubs replace themselves on their first call.
async function countFeeds(body) {
  const wasm = await loadWasm();
  const feed = wasm._agent_tools_feed;
  let feeds = 0;
  wasm._agent_tools_feed = (...args) => {
    feeds++;
    return feed(...args);
  };
  try {
    await body();
  } finally {
    wasm._agent_tools_feed = feed;
  }
  return feeds;
}

test('inputs of one microtask wave reach the core in one batch: 50 starts in one call, their 50 replies in one more', async () => {
  const engine = await AgentEngine.create();
  await engine.run('diag.echo', { calls: [] });
  let results;
  const feeds = await countFeeds(async () => {
    results = await Promise.all(Array.from({ length: 50 }, (_, i) => engine.run('diag.echo', { calls: [{ kind: 'kv', args: ['GET', `k${i}`] }] }, {
      host: { kv: (args) => Promise.resolve(`v:${args[1]}`) },
    })));
  });
  assert.deepEqual(results.map((r) => r.results[0]), Array.from({ length: 50 }, (_, i) => `v:k${i}`));
  assert.equal(feeds, 2);
  assert.equal(engine.stats().liveOperations, 0);
  engine.dispose();
});

test('a batch keeps its inputs in order: an operation started and cancelled in the same wave ends CANCELLED, its neighbours unharmed', async () => {
  const engine = await AgentEngine.create();
  const host = { kv: (args) => Promise.resolve(args[1]) };
  const controller = new AbortController();
  const before = engine.run('diag.echo', { calls: [{ kind: 'kv', args: ['GET', 'a'] }] }, { host });
  const cancelled = engine.run('diag.echo', { calls: [{ kind: 'kv', args: ['GET', 'b'] }] }, { host, signal: controller.signal });
  controller.abort();
  const after = engine.run('diag.echo', { calls: [{ kind: 'kv', args: ['GET', 'c'] }] }, { host });
  await assert.rejects(cancelled, { code: 'CANCELLED' });
  assert.deepEqual([(await before).results, (await after).results], [['a'], ['c']]);
  engine.dispose();
});

test('a malformed batch (records past the end of the input buffer) is a fault record, never a trap', async () => {
  const wasm = await loadWasm();
  const handle = new wasm.Engine();
  try {
    const address = handle.address();
    for (const [count, length] of [[1, 0], [1000, 16], [0xffffffff, 64]]) {
      const header = wasm._agent_tools_feed(address, count, length, Date.now()) >>> 2;
      const records = wasm.HEAPU32[header] >>> 2;
      assert.equal(wasm.HEAPU32[records], EventTag.FAULT);
      const text = new TextDecoder().decode(wasm.HEAPU8.subarray(wasm.HEAPU32[header + 2], wasm.HEAPU32[header + 2] + wasm.HEAPU32[header + 3]));
      assert.equal(text, 'internal error');
    }
    // The engine still works afterwards: an empty batch is fine and yields no events.
    const header = wasm._agent_tools_feed(address, 0, 0, Date.now()) >>> 2;
    assert.equal(wasm.HEAPU32[header + 1], 0);
  } finally {
    handle.delete();
  }
});

test('with wasm memory exhausted, the input that does not fit fails alone with INPUT_TOO_LARGE, so does a reply too large for it, and the rest of the wave goes on', async () => {
  const engine = await AgentEngine.create();
  const big = 'x'.repeat(3_000_000);
  const never = { kv: () => new Promise(() => {}) };
  const controller = new AbortController();
  // Operations whose 3 MB inputs the core holds while their KV calls hang, until one no longer fits.
  const held = [];
  for (let i = 0; i < 40; i++) {
    const op = engine.run('diag.echo', { calls: [{ kind: 'kv', args: ['SET', `held${i}`, big] }] }, { host: never, signal: controller.signal });
    op.catch(() => {});
    held.push(op);
    const outcome = await Promise.race([op.then(() => 'done', (error) => error.code), new Promise((resolve) => setTimeout(resolve, 20, 'pending'))]);
    if (outcome === 'INPUT_TOO_LARGE') break;
    assert.equal(outcome, 'pending');
  }
  assert.ok(held.length < 40, 'wasm memory never ran out');
  // One wave: two small operations around a large one. The batch does not fit; fed one by one,
  // the small ones run and only the large one fails. A host reply too large to fit fails its call.
  const small = (key) => engine.run('diag.echo', { calls: [{ kind: 'kv', args: ['GET', key] }] }, { host: { kv: (args) => `v:${args[1]}` } });
  const [a, large, b, reply] = await Promise.allSettled([
    small('a'),
    engine.run('diag.echo', { calls: [{ kind: 'kv', args: ['SET', 'large', big] }] }, { host: never }),
    small('b'),
    engine.run('diag.echo', { calls: [{ kind: 'kv', args: ['GET', 'huge'] }] }, { host: { kv: () => big + big } }),
  ]);
  assert.deepEqual([a.value?.results, b.value?.results], [['v:a'], ['v:b']]);
  assert.equal(large.reason?.code, 'INPUT_TOO_LARGE');
  assert.match(large.reason.message, /out of (wasm )?memory/); // where it ran out: the input buffer, or the core
  assert.equal(reply.reason?.code, 'INPUT_TOO_LARGE');
  assert.match(reply.reason.message, /out of (wasm )?memory/);
  controller.abort();
  await Promise.allSettled(held);
  const stats = engine.stats();
  assert.equal(stats.liveOperations, 0);
  assert.equal(stats.disposed, false);
  assert.deepEqual((await small('after')).results, ['v:after']);
  engine.dispose();
});
