// The Upstash REST path: the fixture server against the official client, UpstashRestStore against
// the fixture (replies, Redis errors, timeouts, 5xx, dropped connections, malformed bodies,
// cancellation, auth, env), and the client wrappers (fromUpstashClient, fromNodeRedis), which must
// answer exactly like UpstashRestStore. Needs redis-server: AGENT_TOOLS_TEST_REDIS_URL, or one is
// started on a free loopback port.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Redis } from '@upstash/redis';
import { createClient } from 'redis';
import { AgentToolsError } from '#internal/errors.js';
import { KV_SCRIPTS } from '#internal/generated/constants.js';
import { startUpstashRestServer } from '../fixtures/upstash-rest-server.mjs';
import { UpstashRestStore, isReadOnlyCommand } from '../../adapters/kv-upstash-rest.js';
import { fromNodeRedis, fromUpstashClient } from '../../adapters/kv-clients.js';

const TOKEN = `tok_${randomBytes(18).toString('hex')}`;
const PREFIX = `agent-tools-test:${randomBytes(6).toString('hex')}:`;
const sha1 = (text) => createHash('sha1').update(text).digest('hex');

let redisUrl = process.env.AGENT_TOOLS_TEST_REDIS_URL;
let redisProcess;
let redisDir;
let server;
let nodeRedis;
const errorsSeen = []; // every error the adapters produced, scanned for the token at the end

// One SET during a fault storm: it must end in OK or a typed transport error; counts the outcome.
async function tallyStormSet(codes, store, key, value) {
  try {
    assert.equal(await store.command(['SET', key, value]), 'OK');
    codes.ok = (codes.ok ?? 0) + 1;
  } catch (error) {
    errorsSeen.push(error);
    assert.ok(error instanceof AgentToolsError);
    assert.ok(['TIMEOUT', 'HOST_ERROR', 'HOST_BAD_REPLY'].includes(error.code), error.code);
    codes[error.code] = (codes[error.code] ?? 0) + 1;
  }
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

before(async () => {
  if (!redisUrl) {
    const port = await freePort();
    redisDir = mkdtempSync(join(tmpdir(), 'agent-tools-redis-'));
    redisProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', redisDir],
      { stdio: 'ignore' });
    redisUrl = `redis://127.0.0.1:${port}`;
  }
  nodeRedis = createClient({ url: redisUrl, RESP: 2 });
  nodeRedis.on('error', () => {});
  for (let i = 0; ; i++) {
    try {
      await nodeRedis.connect();
      break;
    } catch (error) {
      if (i > 50) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  server = await startUpstashRestServer({ redisUrl, token: TOKEN });
});

after(async () => {
  await server?.close();
  if (nodeRedis?.isOpen) {
    const keys = [];
    for await (const batch of nodeRedis.scanIterator({ MATCH: `${PREFIX}*`, COUNT: 1000 })) keys.push(...batch);
    if (keys.length) await nodeRedis.del(keys);
    await nodeRedis.close();
  }
  if (redisProcess) {
    redisProcess.kill('SIGTERM');
    await new Promise((r) => redisProcess.once('exit', r));
    rmSync(redisDir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Helpers

/** Awaits a rejection, checks it is an AgentToolsError with `code`, records it, returns it. */
async function rejectsWith(promise, code) {
  let error;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error, `expected a rejection with ${code}`);
  errorsSeen.push(error);
  assert.ok(error instanceof AgentToolsError, `expected AgentToolsError, got ${inspect(error)}`);
  assert.equal(error.code, code, error.message);
  return error;
}

const storeOptions = (extra = {}) => ({ url: server.url, token: TOKEN, random: () => 0, ...extra });

/** Runs the same commands through any store; returns a normalized list of replies. */
async function battery(store, tag) {
  const k = (name) => `${PREFIX}${tag}:${name}`;
  const out = {};
  const c = (args) => store.command(args);
  out.ping = await c(['PING']);
  out.set = await c(['SET', k('a'), 'alpha']);
  out.get = await c(['GET', k('a')]);
  out.getMissing = await c(['GET', k('missing')]);
  out.setNxHeld = await c(['SET', k('a'), 'other', 'NX', 'PX', '10000']);
  out.setOkValue = await c(['SET', k('ok'), 'OK']);
  out.getOkValue = await c(['GET', k('ok')]);
  out.setJsonish = await c(['SET', k('n'), '1']);
  out.getJsonish = await c(['GET', k('n')]); // '1', not 1: replies stay raw
  out.getJsonObject = await c(['SET', k('j'), '{"a": 1}']).then(() => c(['GET', k('j')]));
  out.unicode = await c(['SET', k('u'), 'héllo ✓ 🔒']).then(() => c(['GET', k('u')]));
  out.empty = await c(['SET', k('e'), '']).then(() => c(['GET', k('e')]));
  out.incr = [await c(['INCR', k('n')]), await c(['INCR', k('fresh')])];
  out.incrWrongType = await c(['INCR', k('a')]);
  out.pexpire = await c(['PEXPIRE', k('a'), '10000']);
  const pttl = await c(['PTTL', k('a')]);
  out.pttlInRange = typeof pttl === 'number' && pttl > 0 && pttl <= 10000;
  out.pttlMissing = await c(['PTTL', k('missing')]);
  out.pttlNoExpiry = await c(['PTTL', k('n')]);
  out.exists = await c(['EXISTS', k('a'), k('n'), k('missing')]);
  out.del = [await c(['DEL', k('n')]), await c(['DEL', k('n')])];
  const scanned = [];
  let cursor = '0';
  do {
    const [next, keys] = await c(['SCAN', cursor, 'MATCH', `${PREFIX}${tag}:*`, 'COUNT', '1000']);
    assert.equal(typeof next, 'string');
    scanned.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  out.scan = scanned.sort();
  out.eval = await c(['EVAL', "return {1, 'two', {3, 'four'}, redis.call('GET', KEYS[1]), false}", '1', k('missing')]);
  out.evalNilTail = await c(['EVAL', 'return {1, nil, 3}', '0']); // a Lua table stops at its first nil
  out.evalStatus = await c(['EVAL', "return redis.call('SET', KEYS[1], 'x')", '1', k('s')]);
  out.evalError = await c(['EVAL', "return redis.error_reply('MYERR custom')", '0']);
  const script = "return 'loaded:' .. ARGV[1]";
  out.scriptLoad = await c(['SCRIPT', 'LOAD', script]);
  out.scriptLoadSha = out.scriptLoad === sha1(script);
  out.evalsha = await c(['EVALSHA', sha1(script), '0', 'x']);
  const noscript = await c(['EVALSHA', '0'.repeat(40), '0']);
  out.noscript = typeof noscript?.error === 'string' && noscript.error.startsWith('NOSCRIPT');
  out.unknownCommand = typeof (await c(['NOSUCHCOMMAND'])).error === 'string';
  // The lock protocol's scripts.
  const lock = k('lock');
  const fence = k('fence');
  out.acquire = await c(['EVAL', KV_SCRIPTS.acquire.lua, '2', lock, fence, 'owner-1', '10000']);
  const second = await c(['EVAL', KV_SCRIPTS.acquire.lua, '2', lock, fence, 'owner-2', '10000']);
  out.acquireHeld = [second[0], typeof second[1] === 'number' && second[1] > 0];
  const inspected = await c(['EVAL', KV_SCRIPTS.inspect.lua, '2', lock, fence]);
  out.inspect = [inspected[0], inspected[1] > 0, inspected[2]];
  out.extendOther = await c(['EVAL', KV_SCRIPTS.extend.lua, '1', lock, 'owner-2', '20000', 'owner-2', 'exact']);
  out.extend = await c(['EVAL', KV_SCRIPTS.extend.lua, '1', lock, 'owner-1', '20000', 'owner-1b', 'exact']);
  out.releaseOther = await c(['EVAL', KV_SCRIPTS.release.lua, '1', lock, 'owner-1', 'exact']);
  out.releasePrefix = await c(['EVAL', KV_SCRIPTS.release.lua, '1', lock, 'owner-1']);
  out.releaseNone = await c(['EVAL', KV_SCRIPTS.release.lua, '1', lock, 'owner-1', 'exact']);
  out.inspectFree = await c(['EVAL', KV_SCRIPTS.inspect.lua, '2', lock, fence]);
  return out;
}

const EXPECTED_BATTERY = {
  ping: 'PONG',
  set: 'OK',
  get: 'alpha',
  getMissing: null,
  setNxHeld: null,
  setOkValue: 'OK',
  getOkValue: 'OK',
  setJsonish: 'OK',
  getJsonish: '1',
  getJsonObject: '{"a": 1}',
  unicode: 'héllo ✓ 🔒',
  empty: '',
  incr: [2, 1],
  incrWrongType: { error: 'ERR value is not an integer or out of range' },
  pexpire: 1,
  pttlInRange: true,
  pttlMissing: -2,
  pttlNoExpiry: -1,
  exists: 2,
  del: [1, 0],
  scan: null, // filled per tag
  eval: [1, 'two', [3, 'four'], null, null], // nil GET and Lua false are both null
  evalNilTail: [1],
  evalStatus: 'OK',
  evalError: { error: 'MYERR custom' },
  scriptLoad: sha1("return 'loaded:' .. ARGV[1]"),
  scriptLoadSha: true,
  evalsha: 'loaded:x',
  noscript: true,
  unknownCommand: true,
  acquire: 1,
  acquireHeld: ['owner-1', true],
  inspect: ['owner-1', true, '1'],
  extendOther: -1,
  extend: 1,
  releaseOther: -1,
  releasePrefix: 1,
  releaseNone: 0,
  inspectFree: [null, -2, '1'],
};

function expectedBattery(tag) {
  const names = ['a', 'e', 'fresh', 'j', 'ok', 'u'].map((n) => `${PREFIX}${tag}:${n}`);
  return { ...EXPECTED_BATTERY, scan: names.sort() };
}

// A fetch that records what it was asked for, so tests can check URLs and headers.
function recordingFetch(log) {
  return (input, init) => {
    log.push({ url: String(input), headers: { ...init.headers } });
    return fetch(input, init);
  };
}

// ---------------------------------------------------------------------------------------------
// 1. The fixture speaks the protocol the official client expects.

describe('fixture conformance with the official @upstash/redis client', () => {
  const k = (name) => `${PREFIX}conf:${name}`;

  test('default client (base64 encoding, auto-pipelining, automatic deserialization)', async () => {
    const redis = new Redis({ url: server.url, token: TOKEN, enableTelemetry: false });
    const pipelinesBefore = server.stats.byPath.pipeline;
    assert.equal(await redis.set(k('s'), 'hello'), 'OK');
    assert.equal(await redis.get(k('s')), 'hello');
    assert.equal(await redis.set(k('n'), '1'), 'OK');
    assert.equal(await redis.get(k('n')), 1, 'the client JSON-parses "1"');
    assert.deepEqual(await redis.set(k('s'), 'x', { nx: true }), null);
    assert.equal(await redis.incr(k('n')), 2);
    assert.equal(await redis.pexpire(k('s'), 5000), 1);
    const pttl = await redis.pttl(k('s'));
    assert.ok(pttl > 0 && pttl <= 5000, `pttl ${pttl}`);
    assert.equal(await redis.pttl(k('missing')), -2);
    assert.equal(await redis.exists(k('s'), k('n'), k('missing')), 2);
    assert.equal(await redis.ping(), 'PONG', 'simple strings are base64-encoded too');
    assert.equal(await redis.set(k('u'), 'héllo ✓ 🔒'), 'OK');
    assert.equal(await redis.get(k('u')), 'héllo ✓ 🔒');
    const [cursor, keys] = await redis.scan(0, { match: `${PREFIX}conf:*`, count: 1000 });
    assert.equal(cursor, '0');
    assert.deepEqual(keys.sort(), [k('n'), k('s'), k('u')].sort());
    assert.deepEqual(await redis.eval("return {1, 'x', {2, 'y'}, redis.call('GET', KEYS[1])}", [k('s')], []), [1, 'x', [2, 'y'], 'hello']);
    const script = "return ARGV[1] .. '!'";
    const sha = await redis.scriptLoad(script);
    assert.equal(sha, sha1(script));
    assert.equal(await redis.evalsha(sha, [], ['hey']), 'hey!');
    await assert.rejects(redis.evalsha('0'.repeat(40), [], []), (e) => /NOSCRIPT/.test(e.message));
    // The client's own EVALSHA → EVAL fallback (Script.exec) after the cache is flushed.
    const s = redis.createScript("return 'via-script'");
    await redis.scriptFlush();
    assert.equal(await s.exec([], []), 'via-script');
    assert.equal(await redis.del(k('s'), k('missing')), 1);
    // Concurrent commands go out as one /pipeline request.
    const [a, b, c] = await Promise.all([redis.get(k('n')), redis.get(k('u')), redis.exists(k('n'))]);
    assert.deepEqual([a, b, c], [2, 'héllo ✓ 🔒', 1]);
    assert.ok(server.stats.byPath.pipeline > pipelinesBefore, 'auto-pipelining used /pipeline');
  });

  test('explicit pipeline and multi (with a failing command inside)', async () => {
    const redis = new Redis({ url: server.url, token: TOKEN, enableTelemetry: false, enableAutoPipelining: false });
    const p = redis.pipeline();
    p.set(k('p1'), 'v1');
    p.get(k('p1'));
    p.incr(k('p1'));
    p.pttl(k('p1'));
    const results = await p.exec({ keepErrors: true });
    assert.deepEqual(results.map((r) => r.result), ['OK', 'v1', undefined, -1]);
    assert.match(results[2].error, /^ERR value is not an integer/);
    await assert.rejects(redis.pipeline().set(k('p2'), 'x').incr(k('p2')).exec(), /value is not an integer/);

    const before_ = server.stats.byPath.multiExec;
    const m = redis.multi();
    m.set(k('m1'), '10');
    m.incr(k('m1'));
    m.get(k('m1'));
    assert.deepEqual(await m.exec(), ['OK', 11, 11]);
    assert.equal(server.stats.byPath.multiExec, before_ + 1);
    const m2 = redis.multi().set(k('m2'), 'text').incr(k('m2')).get(k('m2'));
    const r2 = await m2.exec({ keepErrors: true });
    assert.equal(r2[0].result, 'OK');
    assert.match(r2[1].error, /not an integer/);
    assert.equal(r2[2].result, 'text');
  });

  test('automaticDeserialization: false and responseEncoding: false give raw strings', async () => {
    for (const extra of [{ automaticDeserialization: false }, { automaticDeserialization: false, responseEncoding: false }]) {
      const redis = new Redis({ url: server.url, token: TOKEN, enableTelemetry: false, ...extra });
      await redis.set(k('raw'), '{"a": 1}');
      assert.equal(await redis.get(k('raw')), '{"a": 1}');
      await redis.set(k('rawn'), '42');
      assert.equal(await redis.get(k('rawn')), '42');
      assert.equal(await redis.incr(k('rawn')), 43);
      assert.equal(await redis.get(k('missing')), null);
      assert.deepEqual(await redis.eval("return {'1', 2}", [], []), ['1', 2]);
      assert.equal(await redis.ping(), 'PONG');
    }
  });

  test('a wrong or missing token is a 401 {"error":"Unauthorized"}', async () => {
    const before_ = server.stats.unauthorized;
    const redis = new Redis({ url: server.url, token: 'wrong', enableTelemetry: false, enableAutoPipelining: false, retry: { retries: 0 } });
    await assert.rejects(redis.get(k('x')), (e) => /Unauthorized/.test(e.message));
    const res = await fetch(server.url, { method: 'POST', body: JSON.stringify(['PING']) });
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), { error: 'Unauthorized' });
    assert.equal(server.stats.unauthorized, before_ + 2);
  });

  test('raw HTTP: status codes, base64 rule, path form, _token', async () => {
    const post = (path, body, headers = {}) => fetch(server.url + path, {
      method: 'POST', body: JSON.stringify(body), headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
    });
    let res = await post('/', ['SET', k('b'), 'OK']);
    assert.deepEqual([res.status, await res.json()], [200, { result: 'OK' }]);
    res = await post('/', ['GET', k('b')], { 'upstash-encoding': 'base64' });
    assert.deepEqual(await res.json(), { result: 'OK' }, 'a top-level "OK" stays literal');
    res = await post('/', ['EVAL', "return {'OK', 'PONG', 7}", '0'], { 'upstash-encoding': 'base64' });
    assert.deepEqual(await res.json(), { result: ['T0s=', 'UE9ORw==', 7] }, 'strings inside arrays are all encoded');
    res = await post('/', ['EVALSHA', '0'.repeat(40), '0'], { 'upstash-encoding': 'base64' });
    assert.equal(res.status, 400);
    assert.match((await res.json()).error, /^NOSCRIPT /, 'errors are never encoded');
    res = await post('/pipeline', [['PING'], ['INCR', k('b')]]);
    const items = await res.json();
    assert.equal(res.status, 200);
    assert.equal(items[0].result, 'PONG');
    assert.match(items[1].error, /not an integer/);
    res = await post('/multi-exec', [['SET', k('t'), '1'], ['NOSUCHCOMMAND']]);
    assert.equal(res.status, 400, 'a discarded transaction is one error');
    assert.ok(typeof (await res.json()).error === 'string');
    res = await fetch(`${server.url}/get/${encodeURIComponent(k('b'))}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.deepEqual(await res.json(), { result: 'OK' });
    res = await fetch(`${server.url}/ping?_token=${TOKEN}`);
    assert.deepEqual(await res.json(), { result: 'PONG' });
    res = await fetch(server.url, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 405);
  });

  test('fault injection is reproducible from its seed', async () => {
    const sequence = async () => {
      server.setFaults({ seed: 7, error500: 0.3, malformed: 0.3, malformedKind: 'html' });
      const statuses = [];
      for (let i = 0; i < 20; i++) {
        const res = await fetch(server.url, { method: 'POST', body: '["PING"]', headers: { authorization: `Bearer ${TOKEN}` } });
        statuses.push(`${res.status}:${(await res.text()).startsWith('<') ? 'html' : 'json'}`);
      }
      server.setFaults(null);
      return statuses;
    };
    const first = await sequence();
    assert.deepEqual(await sequence(), first);
    assert.ok(first.some((s) => s.startsWith('500')) && first.some((s) => s.endsWith('html')) && first.includes('200:json'), first.join(' '));
  });
});

// ---------------------------------------------------------------------------------------------
// 2. UpstashRestStore

describe('UpstashRestStore', () => {
  const k = (name) => `${PREFIX}store:${name}`;

  test('every command of the battery, in host reply encoding', async () => {
    const log = [];
    const store = new UpstashRestStore(storeOptions({ fetch: recordingFetch(log) }));
    assert.deepEqual(await battery(store, 'rest'), expectedBattery('rest'));
    assert.ok(log.length > 30);
    for (const { url, headers } of log) {
      assert.equal(url, server.url, 'POST to the base URL, no token in it');
      assert.equal(headers.Authorization, `Bearer ${TOKEN}`);
      assert.equal(headers['Content-Type'], 'application/json');
      assert.equal(headers['Upstash-Encoding'], undefined, 'plain JSON replies');
    }
  });

  test('a trailing slash on the URL is ignored; bad options are INVALID_ARGUMENT', async () => {
    const store = new UpstashRestStore({ url: `${server.url}/`, token: TOKEN });
    assert.equal(await store.command(['PING']), 'PONG');
    assert.equal(store.url, server.url);
    for (const options of [{}, { url: server.url }, { url: 'ftp://x', token: 't' }, { url: `${server.url}?_token=${TOKEN}`, token: TOKEN },
      { url: server.url, token: 't', timeoutMs: -1 }, { url: server.url, token: 't', fetch: 42 }]) {
      let error;
      try { new UpstashRestStore(options); } catch (e) { error = e; }
      assert.equal(error?.code, 'INVALID_ARGUMENT', inspect(options));
      errorsSeen.push(error);
    }
    await rejectsWith(store.command([]), 'INVALID_ARGUMENT');
    await rejectsWith(store.command(['GET', { key: 1 }]), 'INVALID_ARGUMENT');
    assert.equal(await store.command(['SET', k('num'), 12]), 'OK', 'numbers are sent as their text');
  });

  test('a timed-out attempt is retried and succeeds', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions({ timeoutMs: 300 }));
    server.setFaults({ delay: 1, delayMs: 1500, maxFaults: 1 });
    const before_ = server.stats.requests;
    const started = Date.now();
    assert.equal(await store.command(['SET', k('t1'), 'v']), 'OK');
    assert.equal(server.stats.requests - before_, 2);
    assert.ok(Date.now() - started < 1500);
  });

  test('retries are not exactly-once: a write that ran before its timeout runs again', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions({ timeoutMs: 300 }));
    // Executed, then answered too late: the retry executes INCR a second time.
    server.setFaults({ delay: 1, delayMs: 700, delayBeforeExecute: false, maxFaults: 1 });
    assert.equal(await store.command(['INCR', k('dup')]), 2);
    // Delayed before executing, and the client gave up: it never runs; the retry runs once.
    server.setFaults({ delay: 1, delayMs: 700, delayBeforeExecute: true, maxFaults: 1 });
    assert.equal(await store.command(['INCR', k('once')]), 1);
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(await store.command(['GET', k('once')]), '1');
    // The acquire script re-executed after its first run answers "held by <my own value>".
    server.setFaults({ delay: 1, delayMs: 700, delayBeforeExecute: false, maxFaults: 1 });
    const reply = await store.command(['EVAL', KV_SCRIPTS.acquire.lua, '2', k('lock'), k('fence'), 'me', '10000']);
    assert.equal(reply[0], 'me');
    assert.equal(await store.command(['GET', k('fence')]), '1', 'the fence was minted once, by the first run');
  });

  test('timeouts on every attempt end in TIMEOUT after retries + 1 attempts', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions({ timeoutMs: 80, retries: 2 }));
    server.setFaults({ delay: 1, delayMs: 500 });
    const before_ = server.stats.requests;
    const error = await rejectsWith(store.command(['GET', k('x')]), 'TIMEOUT');
    assert.equal(error.details.attempts, 3);
    assert.equal(server.stats.requests - before_, 3);
  });

  test('HTTP 500 is retried; when it persists the error is HOST_ERROR with the status', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions());
    server.setFaults({ error500: 1, maxFaults: 2 });
    let before_ = server.stats.requests;
    assert.equal(await store.command(['SET', k('r500'), 'v']), 'OK');
    assert.equal(server.stats.requests - before_, 3);
    server.setFaults({ error500: 1 });
    before_ = server.stats.requests;
    const error = await rejectsWith(store.command(['GET', k('r500')]), 'HOST_ERROR');
    assert.deepEqual(error.details, { attempts: 3, status: 500 });
    assert.match(error.message, /HTTP 500/);
    assert.equal(server.stats.requests - before_, 3);
  });

  test('dropped connections are retried; persistent drops end in HOST_ERROR', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions());
    server.setFaults({ drop: 1, maxFaults: 2 });
    assert.equal(await store.command(['SET', k('drop'), 'v']), 'OK');
    assert.equal(server.stats.faults.drop >= 2, true);
    server.setFaults({ drop: 1, dropBeforeExecute: false, maxFaults: 1 });
    assert.equal(await store.command(['INCR', k('dropincr')]), 2, 'dropped after executing: the retry runs it again');
    server.setFaults({ drop: 1 });
    const error = await rejectsWith(store.command(['GET', k('drop')]), 'HOST_ERROR');
    assert.match(error.message, /network error/);
    assert.equal(error.details.attempts, 3);
  });

  test('a malformed 2xx body is HOST_BAD_REPLY, not retried; a 5xx HTML page is retried', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions());
    for (const kind of ['html', 'truncated']) {
      server.setFaults({ malformed: 1, malformedKind: kind });
      const before_ = server.stats.requests;
      const error = await rejectsWith(store.command(['GET', k('x')]), 'HOST_BAD_REPLY');
      assert.equal(server.stats.requests - before_, 1, `${kind}: no retry`);
      assert.match(error.message, /not the expected JSON/);
    }
    server.setFaults({ malformed: 1, malformedKind: 'html', malformedStatus: 502, maxFaults: 1 });
    assert.equal(await store.command(['PING']), 'PONG');
  });

  test('caller abort: CANCELLED at once, during a request or a backoff wait, and no retry', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions({ timeoutMs: 5000 }));
    // Already aborted: nothing is sent.
    let before_ = server.stats.requests;
    await rejectsWith(store.command(['GET', k('x')], AbortSignal.abort()), 'CANCELLED');
    assert.equal(server.stats.requests, before_);
    // Aborted while the request hangs.
    server.setFaults({ delay: 1, delayMs: 3000 });
    before_ = server.stats.requests;
    let started = Date.now();
    await rejectsWith(store.command(['GET', k('x')], AbortSignal.timeout(100)), 'CANCELLED');
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    assert.equal(server.stats.requests - before_, 1);
    // Aborted while waiting to retry.
    const slow = new UpstashRestStore(storeOptions({ backoffMs: 5000, random: () => 1 }));
    server.setFaults({ error500: 1 });
    before_ = server.stats.requests;
    started = Date.now();
    await rejectsWith(slow.command(['GET', k('x')], AbortSignal.timeout(150)), 'CANCELLED');
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    assert.equal(server.stats.requests - before_, 1);
  });

  test('401 is a HOST_ERROR without retry, and does not show the token', async () => {
    const wrong = `wrong_${randomBytes(8).toString('hex')}`;
    const store = new UpstashRestStore({ url: server.url, token: wrong });
    const before_ = server.stats.requests;
    const error = await rejectsWith(store.command(['PING']), 'HOST_ERROR');
    assert.equal(server.stats.requests - before_, 1);
    assert.deepEqual(error.details, { status: 401 });
    assert.match(error.message, /401/);
    assert.ok(!JSON.stringify(error).includes(wrong) && !error.message.includes(wrong) && !error.stack.includes(wrong));
  });

  test('retryNonIdempotent: false retries only read-only commands', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions({ retryNonIdempotent: false }));
    server.setFaults({ error500: 1, maxFaults: 1 });
    const error = await rejectsWith(store.command(['INCR', k('ni')]), 'HOST_ERROR');
    assert.equal(error.details.attempts, 1);
    server.setFaults({ error500: 1, maxFaults: 1 });
    assert.equal(await store.command(['GET', k('ni')]), null);
    assert.equal(isReadOnlyCommand(['script', 'load', 'x']), true);
    assert.equal(isReadOnlyCommand(['EVAL', 'x', '0']), false);
  });

  test('a mixed fault storm: every command either succeeds or fails with a typed code', async (t) => {
    t.after(() => server.setFaults(null));
    // One request per command here; the pipelined storm is in the auto-pipelining tests.
    const store = new UpstashRestStore(storeOptions({ timeoutMs: 300, retries: 3, random: Math.random, backoffMs: 5, autoPipeline: false }));
    for (let i = 0; i < 5; i++) await store.command(['PING']); // warm: first connections are slow
    server.setFaults({ seed: 42, error500: 0.15, drop: 0.15, malformed: 0.05, delay: 0.15, delayMs: 600, delayBeforeExecute: false, dropBeforeExecute: false });
    const codes = {};
    await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      await tallyStormSet(codes, store, k(`storm:${i}`), String(i));
    }));
    assert.ok(codes.ok > 0, inspect(codes));
  });

  test('read-your-writes: the last upstash-sync-token is sent back', async () => {
    const seen = [];
    let n = 0;
    const fake = async (url, init) => {
      seen.push(init.headers['upstash-sync-token']);
      n++;
      return new Response(JSON.stringify({ result: n }), { status: 200, headers: { 'upstash-sync-token': `sync-${n}` } });
    };
    const store = new UpstashRestStore({ url: 'https://example.upstash.io', token: TOKEN, fetch: fake });
    assert.equal(await store.command(['INCR', 'a']), 1);
    assert.equal(await store.command(['INCR', 'a']), 2);
    assert.deepEqual(seen, [undefined, 'sync-1']);
  });

  test('bodies of the wrong shape are HOST_BAD_REPLY; other statuses HOST_ERROR', async () => {
    const cases = [
      [200, '{"result": {"a": 1}}', 'HOST_BAD_REPLY'],
      [200, '{"nothing": 1}', 'HOST_BAD_REPLY'],
      [200, '[1, 2]', 'HOST_BAD_REPLY'],
      [200, '', 'HOST_BAD_REPLY'],
      [400, '<html>bad</html>', 'HOST_ERROR'],
      [404, '{"error": "not found"}', 'HOST_ERROR'],
      [302, '', 'HOST_ERROR'],
    ];
    for (const [status, body, code] of cases) {
      const fake = async () => new Response(body, { status });
      const store = new UpstashRestStore({ url: 'https://example.upstash.io', token: TOKEN, fetch: fake });
      await rejectsWith(store.command(['GET', 'a']), code);
    }
    const ok = new UpstashRestStore({ url: 'https://example.upstash.io', token: TOKEN, fetch: async () => new Response('{"error":"ERR x"}', { status: 200 }) });
    assert.deepEqual(await ok.command(['GET', 'a']), { error: 'ERR x' });
  });

  test('fromEnv reads either pair of variables and names what is missing', async () => {
    const upstash = UpstashRestStore.fromEnv({ UPSTASH_REDIS_REST_URL: server.url, UPSTASH_REDIS_REST_TOKEN: TOKEN });
    assert.equal(await upstash.command(['PING']), 'PONG');
    const vercel = UpstashRestStore.fromEnv({ KV_REST_API_URL: server.url, KV_REST_API_TOKEN: TOKEN });
    assert.equal(await vercel.command(['PING']), 'PONG');

    const cases = [
      [{}, ['UPSTASH_REDIS_REST_URL', 'UPSTASH_REDIS_REST_TOKEN']],
      [{ UPSTASH_REDIS_REST_TOKEN: TOKEN }, ['UPSTASH_REDIS_REST_URL']],
      [{ KV_REST_API_URL: server.url }, ['KV_REST_API_TOKEN']],
      [{ KV_REST_API_TOKEN: TOKEN, KV_REST_API_URL: '' }, ['KV_REST_API_URL']],
    ];
    for (const [env, missing] of cases) {
      let error;
      try { UpstashRestStore.fromEnv(env); } catch (e) { error = e; }
      errorsSeen.push(error);
      assert.equal(error?.code, 'INVALID_ARGUMENT');
      assert.deepEqual(error.details.missing, missing);
      for (const name of missing) assert.ok(error.message.includes(name), error.message);
      assert.ok(!error.message.includes(TOKEN));
    }

    // The default env is globalThis.process?.env.
    const saved = { ...process.env };
    try {
      for (const name of ['UPSTASH_REDIS_REST_URL', 'UPSTASH_REDIS_REST_TOKEN', 'KV_REST_API_URL', 'KV_REST_API_TOKEN']) delete process.env[name];
      process.env.KV_REST_API_URL = server.url;
      process.env.KV_REST_API_TOKEN = TOKEN;
      assert.equal(await UpstashRestStore.fromEnv().command(['PING']), 'PONG');
    } finally {
      for (const name of ['KV_REST_API_URL', 'KV_REST_API_TOKEN']) delete process.env[name];
      Object.assign(process.env, saved);
    }
  });

  test('the store itself does not show the token', () => {
    const store = new UpstashRestStore(storeOptions());
    assert.ok(!inspect(store, { depth: 5, showHidden: true }).includes(TOKEN));
    assert.ok(!JSON.stringify(store).includes(TOKEN));
  });
});

// ---------------------------------------------------------------------------------------------
// 2b. UpstashRestStore auto-pipelining: concurrent commands share one POST /pipeline.

describe('UpstashRestStore auto-pipelining', () => {
  const k = (name) => `${PREFIX}pipe:${name}`;
  const snap = () => ({ requests: server.stats.requests, ...server.stats.byPath });
  const since = (s) => ({
    requests: server.stats.requests - s.requests,
    single: server.stats.byPath.single - s.single,
    pipeline: server.stats.byPath.pipeline - s.pipeline,
  });
  // A fetch that answers a pipeline with `answer(commands)`: [status, body text].
  const fakeFetch = (answer, log = []) => async (url, init) => {
    const commands = JSON.parse(init.body);
    log.push({ url: String(url), commands, headers: { ...init.headers }, signal: init.signal });
    const [status, text, headers] = answer(commands, String(url));
    return new Response(text, { status, headers });
  };
  const fakeStore = (answer, log, extra = {}) =>
    new UpstashRestStore({ url: 'https://example.upstash.io', token: TOKEN, fetch: fakeFetch(answer, log), random: () => 0, ...extra });

  test('concurrent commands go out as one /pipeline; each caller gets its own reply or Redis error', async () => {
    const log = [];
    const store = new UpstashRestStore(storeOptions({ fetch: recordingFetch(log) }));
    await store.command(['SET', k('text'), 'abc']);
    const s = snap();
    const replies = await Promise.all([
      store.command(['SET', k('a'), '1']),
      store.command(['INCR', k('a')]),
      store.command(['GET', k('a')]),
      store.command(['INCR', k('text')]), // a Redis error, for this caller only
      store.command(['EVALSHA', '0'.repeat(40), '0']),
      store.command(['GET', k('missing')]),
      store.command(['EVAL', "return {1, 'two', {3}}", '0']),
      store.command(['PING']),
    ]);
    assert.deepEqual(replies.slice(0, 3), ['OK', 2, '2'], 'in order: the pipeline runs its commands in sequence');
    assert.deepEqual(replies[3], { error: 'ERR value is not an integer or out of range' });
    assert.match(replies[4].error, /^NOSCRIPT/);
    assert.deepEqual(replies.slice(5), [null, [1, 'two', [3]], 'PONG']);
    assert.deepEqual(since(s), { requests: 1, single: 0, pipeline: 1 });
    const last = log.at(-1);
    assert.equal(last.url, `${server.url}/pipeline`);
    assert.equal(last.headers.Authorization, `Bearer ${TOKEN}`);
    assert.ok(!last.url.includes(TOKEN));
  });

  test('a lone command goes to / as before; sequential commands are never held back', async () => {
    const store = new UpstashRestStore(storeOptions());
    const s = snap();
    for (let i = 0; i < 5; i++) assert.equal(await store.command(['SET', k(`seq:${i}`), String(i)]), 'OK');
    assert.deepEqual(since(s), { requests: 5, single: 5, pipeline: 0 });
  });

  test('commands issued in the same wave of promise callbacks share a batch', async () => {
    const store = new UpstashRestStore(storeOptions());
    const s = snap();
    // As when many lock operations resume from one response: each issues its next command a few
    // promise hops after the previous one did.
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => {
      let p = Promise.resolve();
      for (let hop = 0; hop < i % 4; hop++) p = p.then(() => undefined);
      return p.then(() => store.command(['SET', k(`wave:${i}`), String(i)]));
    }));
    assert.deepEqual(replies, Array(12).fill('OK'));
    assert.deepEqual(since(s), { requests: 1, single: 0, pipeline: 1 });
    // Lock operations through the core batch as well.
    const { KVLockManager } = await import('@growthub/agent-tools/kv');
    const manager = new KVLockManager(store, { keyPrefix: `${PREFIX}pipe-locks` });
    const s2 = snap();
    const locks = await Promise.all(Array.from({ length: 16 }, (_, i) => manager.acquireKvLock('u', `t${i}`)));
    assert.ok(locks.every((l) => l.success), inspect(locks));
    assert.ok(since(s2).requests <= 3, `16 concurrent acquires took ${since(s2).requests} requests`);
    const released = await Promise.all(locks.map((l, i) => manager.releaseKvLock('u', `t${i}`, { lockId: l.lockId })));
    assert.ok(released.every(Boolean));
  });

  test('the driver\'s callback form: answer(token, ok, value) once per command, no promise', async () => {
    const withJson = Symbol.for('@growthub/agent-tools/kv-command-json');
    const store = new UpstashRestStore(storeOptions());
    const answers = [];
    const answer = (token, ok, value) => answers.push([token, ok, value]);
    const commands = [['SET', k('cb:a'), '1'], ['INCR', k('cb:a')], ['INCR', k('cb:a'), 'extra']];
    const returned = commands.map((args, i) => store[withJson](JSON.stringify(args), undefined, answer, `t${i}`));
    assert.deepEqual(returned, [undefined, undefined, undefined]);
    assert.deepEqual(answers, [], 'answered when the reply arrives, not before');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(answers.slice(0, 2), [['t0', true, 'OK'], ['t1', true, 2]]);
    assert.equal(answers[2][0], 't2');
    assert.equal(answers[2][1], true);
    assert.match(answers[2][2].error, /wrong number of arguments/);
    assert.equal(answers.length, 3);

    // Cancelled before it starts: answered at once, with CANCELLED.
    const aborted = AbortSignal.abort();
    store[withJson](JSON.stringify(['GET', k('cb:a')]), aborted, answer, 'gone');
    assert.equal(answers.at(-1)[0], 'gone');
    assert.equal(answers.at(-1)[1], false);
    assert.equal(answers.at(-1)[2].code, 'CANCELLED');

    // An answer that throws does not keep the other commands of its request from being answered.
    // (It is rethrown from a microtask; catch it there rather than let it reach the test runner.)
    const uncaught = [];
    const original = globalThis.queueMicrotask;
    globalThis.queueMicrotask = (fn) => original(() => {
      try {
        fn();
      } catch (error) {
        uncaught.push(error);
      }
    });
    try {
      const seen = [];
      const throwing = (token, ok, value) => {
        seen.push([token, ok, value]);
        if (token === 'first') throw new Error('a bug in the caller');
      };
      store[withJson](JSON.stringify(['GET', k('cb:a')]), undefined, throwing, 'first');
      store[withJson](JSON.stringify(['GET', k('cb:a')]), undefined, throwing, 'second');
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(seen, [['first', true, '2'], ['second', true, '2']]);
      assert.equal(uncaught.length, 1, 'the caller\'s error is reported, not swallowed');
      assert.equal(uncaught[0].message, 'a bug in the caller');
    } finally {
      globalThis.queueMicrotask = original;
    }
  });

  test('autoPipeline: false keeps one request per command', async () => {
    const store = new UpstashRestStore(storeOptions({ autoPipeline: false }));
    const s = snap();
    const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => store.command(['SET', k(`nopipe:${i}`), 'v'])));
    assert.deepEqual(replies, Array(6).fill('OK'));
    assert.deepEqual(since(s), { requests: 6, single: 6, pipeline: 0 });
    let error;
    try { new UpstashRestStore(storeOptions({ autoPipeline: 'yes' })); } catch (e) { error = e; }
    assert.equal(error?.code, 'INVALID_ARGUMENT');
  });

  test('a batch is capped at 256 commands and 1 Mi characters of body', async () => {
    // A generous timeout: a retried INCR would run twice and spoil the count on a loaded machine.
    const store = new UpstashRestStore(storeOptions({ timeoutMs: 30_000 }));
    let s = snap();
    const replies = await Promise.all(Array.from({ length: 600 }, (_, i) => store.command(['INCR', k(`cap:${i % 7}`)])));
    assert.equal(replies.length, 600);
    assert.deepEqual(since(s), { requests: 3, single: 0, pipeline: 3 });
    const totals = Array.from({ length: 7 }, (_, j) => replies.filter((_, i) => i % 7 === j).at(-1));
    assert.deepEqual(totals, [86, 86, 86, 86, 86, 85, 85], 'every INCR ran exactly once');

    const big = 'x'.repeat(300_000);
    s = snap();
    assert.deepEqual(await Promise.all(Array.from({ length: 5 }, (_, i) => store.command(['SET', k(`big:${i}`), big]))), Array(5).fill('OK'));
    assert.deepEqual(since(s), { requests: 2, single: 0, pipeline: 2 }, 'three 300 KB commands fit, a fourth does not');
    const huge = 'y'.repeat(1_100_000);
    s = snap();
    const [small, alone] = await Promise.all([store.command(['GET', k('big:0')]), store.command(['SET', k('huge'), huge])]);
    assert.equal(small.length, 300_000);
    assert.equal(alone, 'OK');
    assert.deepEqual(since(s), { requests: 2, single: 2, pipeline: 0 }, 'a command over the cap goes alone');
    assert.equal(await store.command(['STRLEN', k('huge')]), 1_100_000);
  });

  test('parallel batteries through one store answer exactly as one at a time', async () => {
    const store = new UpstashRestStore(storeOptions());
    const s = snap();
    const [a, b, c] = await Promise.all([battery(store, 'pa'), battery(store, 'pb'), battery(store, 'pc')]);
    assert.deepEqual(a, expectedBattery('pa'));
    assert.deepEqual(b, expectedBattery('pb'));
    assert.deepEqual(c, expectedBattery('pc'));
    assert.ok(since(s).pipeline > 30, inspect(since(s)));
  });

  test('a 500 on a pipeline is retried as a batch; when it persists every caller gets HOST_ERROR', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions());
    const onPipeline = ({ path }) => path === '/pipeline';
    server.setFaults({ error500: 1, maxFaults: 2, match: onPipeline });
    let s = snap();
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => store.command(['SET', k(`r500:${i}`), String(i)])));
    assert.deepEqual(replies, Array(10).fill('OK'));
    assert.deepEqual(since(s), { requests: 3, single: 0, pipeline: 3 });

    server.setFaults({ error500: 1, match: onPipeline });
    s = snap();
    const settled = await Promise.allSettled(Array.from({ length: 4 }, (_, i) => store.command(['GET', k(`r500:${i}`)])));
    const errors = [];
    for (const r of settled) {
      assert.equal(r.status, 'rejected');
      const error = await rejectsWith(Promise.reject(r.reason), 'HOST_ERROR');
      assert.deepEqual(error.details, { attempts: 3, status: 500 });
      assert.match(error.message, /^Upstash REST GET failed after 3 attempts: HTTP 500/);
      errors.push(error);
    }
    assert.equal(new Set(errors).size, 4, 'each caller has its own error object');
    assert.deepEqual(since(s), { requests: 3, single: 0, pipeline: 3 });
  });

  test('a dropped pipeline connection is retried (and a write that ran may run twice)', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions());
    const onPipeline = ({ path }) => path === '/pipeline';
    server.setFaults({ drop: 1, maxFaults: 1, match: onPipeline });
    assert.deepEqual(await Promise.all([store.command(['SET', k('d1'), 'a']), store.command(['SET', k('d2'), 'b'])]), ['OK', 'OK']);
    server.setFaults({ drop: 1, dropBeforeExecute: false, maxFaults: 1, match: onPipeline });
    assert.deepEqual(await Promise.all([store.command(['INCR', k('d3')]), store.command(['INCR', k('d4')])]), [2, 2],
      'executed, then dropped: the retry executes both again');
    server.setFaults({ drop: 1, match: onPipeline });
    const [x, y] = await Promise.allSettled([store.command(['GET', k('d1')]), store.command(['GET', k('d2')])]);
    for (const r of [x, y]) {
      const error = await rejectsWith(Promise.reject(r.reason), 'HOST_ERROR');
      assert.match(error.message, /network error/);
      assert.equal(error.details.attempts, 3);
    }
  });

  test('a pipeline that times out is retried; when every attempt does, each caller gets TIMEOUT', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions({ timeoutMs: 200 }));
    const onPipeline = ({ path }) => path === '/pipeline';
    server.setFaults({ delay: 1, delayMs: 2000, maxFaults: 1, match: onPipeline });
    let s = snap();
    const started = Date.now();
    assert.deepEqual(await Promise.all([store.command(['SET', k('t1'), 'a']), store.command(['GET', k('t1')])]), ['OK', 'a']);
    assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
    assert.deepEqual(since(s), { requests: 2, single: 0, pipeline: 2 });
    server.setFaults({ delay: 1, delayMs: 1000, match: onPipeline });
    s = snap();
    const settled = await Promise.allSettled([store.command(['GET', k('t1')]), store.command(['PING'])]);
    for (const r of settled) {
      const error = await rejectsWith(Promise.reject(r.reason), 'TIMEOUT');
      assert.equal(error.details.attempts, 3);
    }
    assert.equal(since(s).pipeline, 3);
  });

  test('retryNonIdempotent: false inside a batch: the read is retried, the write fails after one attempt', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions({ retryNonIdempotent: false }));
    server.setFaults({ error500: 1, maxFaults: 1 });
    const s = snap();
    const [read, write] = await Promise.allSettled([store.command(['GET', k('ni')]), store.command(['INCR', k('ni')])]);
    assert.deepEqual(read, { status: 'fulfilled', value: null });
    const error = await rejectsWith(Promise.reject(write.reason), 'HOST_ERROR');
    assert.deepEqual(error.details, { attempts: 1, status: 500 });
    assert.deepEqual(since(s), { requests: 2, single: 1, pipeline: 1 }, 'the retry carries only the read');
    assert.equal(await store.command(['GET', k('ni')]), null, 'the INCR never ran');
  });

  test('cancelling one command in a batch: CANCELLED at once, the others go on', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions({ timeoutMs: 5000 }));
    server.setFaults({ delay: 1, delayMs: 1500, maxFaults: 1, match: ({ path }) => path === '/pipeline' });
    const s = snap();
    const started = Date.now();
    const others = [store.command(['SET', k('c1'), 'a']), store.command(['INCR', k('c2')])];
    const cancelled_ = store.command(['INCR', k('c3')], AbortSignal.timeout(80));
    const more = store.command(['GET', k('c1')]);
    await rejectsWith(cancelled_, 'CANCELLED');
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    assert.deepEqual(await Promise.all([...others, more]), ['OK', 1, 'a']);
    assert.ok(Date.now() - started >= 1400, 'the others waited for the delayed response');
    assert.deepEqual(since(s), { requests: 1, single: 0, pipeline: 1 }, 'not retried, not resent');
    assert.equal(await store.command(['GET', k('c3')]), '1', 'it had already been sent: a cancelled write may still run');
  });

  test('a command cancelled before its batch leaves is not sent; a request everyone left is aborted', async () => {
    const log = [];
    const store = fakeStore((commands) => [200, JSON.stringify(commands.map(() => ({ result: 'OK' })))], log);
    const controller = new AbortController();
    const kept = [store.command(['SET', 'a', '1']), store.command(['SET', 'b', '2'])];
    const dropped = store.command(['SET', 'c', '3'], controller.signal);
    controller.abort();
    await rejectsWith(dropped, 'CANCELLED');
    assert.deepEqual(await Promise.all(kept), ['OK', 'OK']);
    assert.equal(log.length, 1);
    assert.deepEqual(log[0].commands, [['SET', 'a', '1'], ['SET', 'b', '2']]);

    // Every caller cancels while the request hangs: the request itself is aborted.
    let requestSignal;
    const hanging = new UpstashRestStore({
      url: 'https://example.upstash.io', token: TOKEN,
      fetch: (url, init) => new Promise((_, reject) => {
        requestSignal = init.signal;
        init.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
      }),
    });
    const c1 = new AbortController();
    const c2 = new AbortController();
    const p1 = hanging.command(['GET', 'a'], c1.signal);
    const p2 = hanging.command(['GET', 'b'], c2.signal);
    await new Promise((r) => setTimeout(r, 10));
    c1.abort();
    await rejectsWith(p1, 'CANCELLED');
    assert.equal(requestSignal.aborted, false, 'still wanted by the other caller');
    c2.abort();
    await rejectsWith(p2, 'CANCELLED');
    assert.equal(requestSignal.aborted, true);
  });

  test('cancelled during the backoff wait of a batch: CANCELLED at once, no further request', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions({ backoffMs: 5000, random: () => 1 }));
    server.setFaults({ error500: 1 });
    const s = snap();
    const started = Date.now();
    const settled = await Promise.allSettled([store.command(['GET', k('b1')], AbortSignal.timeout(100)), store.command(['GET', k('b2')], AbortSignal.timeout(150))]);
    for (const r of settled) await rejectsWith(Promise.reject(r.reason), 'CANCELLED');
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    assert.deepEqual(since(s), { requests: 1, single: 0, pipeline: 1 });
  });

  test('malformed pipeline bodies are HOST_BAD_REPLY for each caller and not retried', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions());
    for (const kind of ['html', 'truncated']) {
      server.setFaults({ malformed: 1, malformedKind: kind, match: ({ path }) => path === '/pipeline' });
      const s = snap();
      const settled = await Promise.allSettled([store.command(['PING']), store.command(['GET', k('m')]), store.command(['PING'])]);
      for (const r of settled) {
        const error = await rejectsWith(Promise.reject(r.reason), 'HOST_BAD_REPLY');
        assert.match(error.message, /pipeline response is not a JSON array of 3 replies/);
      }
      assert.equal(since(s).requests, 1, `${kind}: no retry`);
    }

    const bodies = [
      ['{"result": "OK"}', 'an object, not an array'],
      ['[{"result": "OK"}]', 'too short'],
      ['[{"result": "OK"}, {"result": "OK"}, {"result": "OK"}]', 'too long'],
      ['"OK"', 'a string'],
      ['', 'empty'],
    ];
    for (const [text, why] of bodies) {
      const log = [];
      const fake = fakeStore(() => [200, text], log);
      const settled = await Promise.allSettled([fake.command(['GET', 'a']), fake.command(['GET', 'b'])]);
      for (const r of settled) await rejectsWith(Promise.reject(r.reason), 'HOST_BAD_REPLY');
      assert.equal(log.length, 1, `${why}: no retry`);
    }

    // One bad element: only its caller fails; the array still lines up with the commands.
    const fake = fakeStore(() => [200, '[{"result": "OK"}, {"nothing": 1}, {"result": {"a": 1}}, null, {"error": "ERR x"}, {"result": [1, null, "s"]}]']);
    const settled = await Promise.allSettled(['a', 'b', 'c', 'd', 'e', 'f'].map((key) => fake.command(['GET', key])));
    assert.deepEqual(settled[0], { status: 'fulfilled', value: 'OK' });
    for (const r of settled.slice(1, 4)) {
      const error = await rejectsWith(Promise.reject(r.reason), 'HOST_BAD_REPLY');
      assert.match(error.message, /pipeline item \d is neither/);
    }
    assert.deepEqual(settled[4], { status: 'fulfilled', value: { error: 'ERR x' } });
    assert.deepEqual(settled[5], { status: 'fulfilled', value: [1, null, 's'] });
  });

  test('statuses on a pipeline: 401, 400 and 404 fail every caller with HOST_ERROR; 5xx HTML is retried', async () => {
    for (const [status, text, pattern] of [
      [401, '{"error":"Unauthorized"}', /401, the token was rejected/],
      [400, '{"error":"ERR max request size exceeded"}', /pipeline of 2 commands: HTTP 400: ERR max request size exceeded/],
      [404, 'not found', /HTTP 404/],
      [302, '', /HTTP 302/],
    ]) {
      const log = [];
      const fake = fakeStore(() => [status, text], log);
      const settled = await Promise.allSettled([fake.command(['GET', 'a']), fake.command(['SET', 'b', 'c'])]);
      for (const r of settled) {
        const error = await rejectsWith(Promise.reject(r.reason), 'HOST_ERROR');
        assert.deepEqual(error.details, { status });
        assert.match(error.message, pattern);
      }
      assert.equal(log.length, 1, `${status}: no retry`);
    }
    let n = 0;
    const flaky = fakeStore((commands) => (n++ === 0
      ? [502, '<html><body>Bad Gateway</body></html>']
      : [200, JSON.stringify(commands.map((c) => ({ result: c[1] })))]));
    assert.deepEqual(await Promise.all([flaky.command(['ECHO', 'x']), flaky.command(['ECHO', 'y'])]), ['x', 'y']);
    assert.equal(n, 2);
  });

  test('the token never shows in pipeline errors, even when the server echoes it', async () => {
    const fake = fakeStore(() => [200, `<html>token ${TOKEN} rejected</html>`]);
    const settled = await Promise.allSettled([fake.command(['GET', 'a']), fake.command(['GET', 'b'])]);
    for (const r of settled) {
      const error = await rejectsWith(Promise.reject(r.reason), 'HOST_BAD_REPLY');
      assert.ok(error.message.includes('[redacted]'), error.message);
    }
    const echo500 = fakeStore(() => [500, `{"error":"bad token ${TOKEN}"}`], [], { retries: 0 });
    const [r] = await Promise.allSettled([echo500.command(['GET', 'a']), echo500.command(['GET', 'b'])]);
    const error = await rejectsWith(Promise.reject(r.reason), 'HOST_ERROR');
    assert.ok(!error.message.includes(TOKEN) && error.message.includes('[redacted]'), error.message);
  });

  test('read-your-writes carries across pipelines', async () => {
    const log = [];
    let n = 0;
    const fake = fakeStore((commands) => {
      n++;
      return [200, JSON.stringify(commands.map(() => ({ result: n }))), { 'upstash-sync-token': `sync-${n}` }];
    }, log);
    assert.deepEqual(await Promise.all([fake.command(['INCR', 'a']), fake.command(['INCR', 'b'])]), [1, 1]);
    assert.deepEqual(await Promise.all([fake.command(['GET', 'a']), fake.command(['GET', 'b'])]), [2, 2]);
    assert.deepEqual(log.map((e) => e.headers['upstash-sync-token']), [undefined, 'sync-1']);
    assert.ok(log.every((e) => e.url === 'https://example.upstash.io/pipeline'));
  });

  test('a pipelined fault storm: every command either succeeds or fails with a typed code', async (t) => {
    t.after(() => server.setFaults(null));
    const store = new UpstashRestStore(storeOptions({ timeoutMs: 300, retries: 3, random: Math.random, backoffMs: 5 }));
    for (let i = 0; i < 5; i++) await store.command(['PING']);
    server.setFaults({ seed: 43, error500: 0.15, drop: 0.15, malformed: 0.05, delay: 0.15, delayMs: 600, delayBeforeExecute: false, dropBeforeExecute: false });
    const s = snap();
    const codes = {};
    // 16 workers, 8 commands each, back to back: batches form, split and re-form as retries drift.
    await Promise.all(Array.from({ length: 16 }, async (_, w) => {
      for (let i = 0; i < 8; i++) {
        await tallyStormSet(codes, store, k(`storm:${w}:${i}`), String(i));
      }
    }));
    assert.equal(Object.values(codes).reduce((a, b) => a + b, 0), 128);
    assert.ok(codes.ok > 0, inspect(codes));
    assert.ok(since(s).pipeline > 0 && server.stats.faults.total > 0, inspect({ ...since(s), faults: server.stats.faults }));
  });
});

// ---------------------------------------------------------------------------------------------
// 3. Wrappers of existing clients answer like UpstashRestStore.

describe('fromUpstashClient and fromNodeRedis', () => {
  test('fromUpstashClient (default client: deserialization and auto-pipelining on) matches UpstashRestStore', async () => {
    const redis = new Redis({ url: server.url, token: TOKEN, enableTelemetry: false });
    assert.deepEqual(await battery(fromUpstashClient(redis), 'upc'), expectedBattery('upc'));
  });

  test('fromUpstashClient with automaticDeserialization: false, and its exec() fallback', async () => {
    const raw = new Redis({ url: server.url, token: TOKEN, enableTelemetry: false, automaticDeserialization: false });
    assert.deepEqual(await battery(fromUpstashClient(raw), 'upr'), expectedBattery('upr'));
    // A client without a reachable requester: the public exec() path.
    const viaExec = { exec: (args) => raw.exec(args), opts: raw.opts };
    assert.deepEqual(await battery(fromUpstashClient(viaExec), 'upx'), expectedBattery('upx'));
    let error;
    try { fromUpstashClient({ exec: () => {}, opts: {} }); } catch (e) { error = e; }
    assert.equal(error?.code, 'INVALID_ARGUMENT');
    assert.match(error.message, /automaticDeserialization: false/);
  });

  test('fromUpstashClient: 401, malformed body, timeout and abort are typed', async (t) => {
    t.after(() => server.setFaults(null));
    const bad = fromUpstashClient(new Redis({ url: server.url, token: 'nope', enableTelemetry: false }));
    const e401 = await rejectsWith(bad.command(['PING']), 'HOST_ERROR');
    assert.match(e401.message, /Unauthorized/);
    const redis = new Redis({ url: server.url, token: TOKEN, enableTelemetry: false });
    const store = fromUpstashClient(redis, { timeoutMs: 200 });
    server.setFaults({ malformed: 1, malformedKind: 'truncated' });
    await rejectsWith(store.command(['PING']), 'HOST_BAD_REPLY');
    server.setFaults({ delay: 1, delayMs: 1000 });
    await rejectsWith(store.command(['PING']), 'TIMEOUT');
    const started = Date.now();
    await rejectsWith(store.command(['PING'], AbortSignal.timeout(50)), 'CANCELLED');
    assert.ok(Date.now() - started < 1000);
    await rejectsWith(store.command(['PING'], AbortSignal.abort()), 'CANCELLED');
    // Its own network-error retries make a dropped connection invisible.
    server.setFaults({ drop: 1, maxFaults: 1 });
    assert.equal(await fromUpstashClient(redis).command(['PING']), 'PONG');
  });

  test('fromNodeRedis (RESP2 and RESP3 clients) matches UpstashRestStore', async () => {
    assert.deepEqual(await battery(fromNodeRedis(nodeRedis), 'nr2'), expectedBattery('nr2'));
    const resp3 = createClient({ url: redisUrl, RESP: 3 });
    resp3.on('error', () => {});
    await resp3.connect();
    try {
      assert.deepEqual(await battery(fromNodeRedis(resp3), 'nr3'), expectedBattery('nr3'));
    } finally {
      await resp3.close();
    }
  });

  test('fromNodeRedis: Buffer replies decode, abort is CANCELLED, a closed client is HOST_ERROR', async () => {
    const { RESP_TYPES } = await import('redis');
    const buffers = fromNodeRedis(nodeRedis.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer, [RESP_TYPES.SIMPLE_STRING]: Buffer }));
    assert.equal(await buffers.command(['SET', `${PREFIX}nrb`, 'héllo']), 'OK');
    assert.equal(await buffers.command(['GET', `${PREFIX}nrb`]), 'héllo');
    assert.deepEqual(await buffers.command(['EVAL', "return {'a', 1}", '0']), ['a', 1]);
    const store = fromNodeRedis(nodeRedis);
    await rejectsWith(store.command(['GET', 'x'], AbortSignal.abort()), 'CANCELLED');
    const blocked = store.command(['EVAL', "local t = redis.call('TIME') while true do local n = redis.call('TIME') if (n[1] - t[1]) * 1000000 + (n[2] - t[2]) > 800000 then break end end return 1", '0']);
    const aborted = store.command(['PING'], AbortSignal.timeout(50));
    const started = Date.now();
    await rejectsWith(aborted, 'CANCELLED');
    assert.ok(Date.now() - started < 600, 'did not wait for the busy script');
    assert.equal(await blocked, 1);
    const closed = createClient({ url: redisUrl });
    closed.on('error', () => {});
    await closed.connect();
    await closed.close();
    await rejectsWith(fromNodeRedis(closed).command(['PING']), 'HOST_ERROR');
  });
});

// ---------------------------------------------------------------------------------------------

test('no error produced anywhere above contains the token', () => {
  assert.ok(errorsSeen.length > 30, `only ${errorsSeen.length} errors collected`);
  for (const error of errorsSeen) {
    const views = [
      String(error?.message), String(error?.stack), JSON.stringify(error), JSON.stringify(error?.details ?? null),
      inspect(error, { depth: 10, showHidden: true }), String(error?.cause ?? ''),
    ];
    for (const view of views) assert.ok(!view.includes(TOKEN), `token leaked in: ${view.slice(0, 300)}`);
    assert.equal(error.cause, undefined, 'no underlying error objects attached');
  }
});
