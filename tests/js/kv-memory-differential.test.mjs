// Differential test: the same command sequences against InMemoryKVStore and a real redis-server,
// with identical replies required (PTTL/TTL compared as -2 / -1 / live-and-within-the-TTL, since the
// two clocks count down independently). The server comes from AGENT_TOOLS_TEST_REDIS_URL (set by
// scripts/test.sh); without it this file starts its own redis-server on a free loopback port.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, ErrorReply } from 'redis';
// A seeded PRNG so a failing random sequence can be replayed (shared with the REST fixture).
import { mulberry32 as prng } from '../fixtures/upstash-rest-server.mjs';
import { InMemoryKVStore } from '../../adapters/kv-memory.js';
import { KV_SCRIPTS } from '#internal/generated/constants.js';

const RANDOM_STEPS = 3000;
const MAX_TTL_MS = 600_000; // every TTL in these sequences is at most this

let client;
let server = null; // { child, dir } when this file started redis-server itself
const runPrefix = `kvdiff:${randomBytes(6).toString('hex')}:`;

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'kv-diff-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let failure = null;
  child.once('error', (error) => { failure = error; });
  child.once('exit', (code) => { failure ??= new Error(`redis-server exited with ${code}`); });
  for (let i = 0; i < 100 && !failure; i++) {
    if (await canConnect(port)) return { child, dir, url: `redis://127.0.0.1:${port}` };
    await sleep(50);
  }
  child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`could not start redis-server: ${failure?.message ?? 'no answer on its port'}`);
}

before(async () => {
  let url = process.env.AGENT_TOOLS_TEST_REDIS_URL;
  if (!url) {
    server = await startRedis();
    url = server.url;
  }
  client = createClient({ url, RESP: 2, socket: { reconnectStrategy: false } });
  client.on('error', () => {}); // failures surface through the commands
  await client.connect();
  if (server) await client.sendCommand(['FLUSHDB']);
  for (const { lua, sha1 } of Object.values(KV_SCRIPTS)) {
    assert.equal(await client.sendCommand(['SCRIPT', 'LOAD', lua]), sha1, 'KV_SCRIPTS sha1 equals what Redis computes');
  }
});

after(async () => {
  if (client?.isOpen) {
    if (!server) {
      // a shared server: remove this run's keys, leave everything else alone
      let cursor = '0';
      do {
        const [next, keys] = await client.sendCommand(['SCAN', cursor, 'MATCH', `${runPrefix}*`, 'COUNT', '500']);
        if (keys.length) await client.sendCommand(['DEL', ...keys]);
        cursor = String(next);
      } while (cursor !== '0');
    }
    await client.quit();
  }
  if (server) {
    const exited = new Promise((resolve) => server.child.once('exit', resolve));
    server.child.kill('SIGTERM');
    await exited;
    rmSync(server.dir, { recursive: true, force: true });
  }
});

/** node-redis reply → host reply encoding. */
function hostReply(reply) {
  if (reply === null || reply === undefined) return null;
  if (typeof reply === 'number' || typeof reply === 'string') return reply;
  if (typeof reply === 'bigint') return Number(reply);
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  if (Array.isArray(reply)) return reply.map(hostReply);
  throw new Error(`unexpected node-redis reply ${String(reply)}`);
}

async function redisCommand(args) {
  try {
    return hostReply(await client.sendCommand(args));
  } catch (error) {
    if (error instanceof ErrorReply) return { error: error.message };
    throw error;
  }
}

const shaName = new Map(Object.entries(KV_SCRIPTS).map(([name, s]) => [s.sha1, name]));
const textName = new Map(Object.entries(KV_SCRIPTS).map(([name, s]) => [s.lua, name]));

/** Replaces time-dependent numbers (PTTL, TTL, the PTTLs inside acquire/inspect replies) by their class. */
function normalize(args, reply) {
  const ttlClass = (n, max) => {
    if (typeof n !== 'number' || n < 0) return n;
    assert.ok(n <= max, `TTL ${n} exceeds ${max}`);
    return 'live';
  };
  const name = args[0].toLowerCase();
  if (name === 'pttl') return ttlClass(reply, MAX_TTL_MS);
  if (name === 'ttl') return ttlClass(reply, MAX_TTL_MS / 1000);
  if ((name === 'evalsha' || name === 'eval') && Array.isArray(reply)) {
    const script = name === 'evalsha' ? shaName.get(args[1].toLowerCase()) : textName.get(args[1]);
    if (script === 'acquire' && reply.length === 2) return [reply[0], ttlClass(reply[1], MAX_TTL_MS)];
    if (script === 'inspect') return [reply[0], ttlClass(reply[1], MAX_TTL_MS), reply[2]];
  }
  return reply;
}

/**
 * A fresh in-memory store and a key namespace on the server. In a command, an argument starting
 * with '@' is a key (or pattern) in the namespace: '@a' → '<prefix>a'.
 */
function pair(name) {
  const prefix = `${runPrefix}${name}:`;
  const memory = new InMemoryKVStore();
  const expand = (args) => args.map((a) => (a.startsWith('@') ? prefix + a.slice(1) : a));
  let steps = 0;
  const recent = [];
  /** Runs one command on both sides and requires identical (normalized) replies. */
  async function both(...raw) {
    const args = expand(raw);
    const fromMemory = memory.command(args);
    const fromRedis = await redisCommand(args);
    steps++;
    recent.push(`${steps}: ${JSON.stringify(raw)} → ${JSON.stringify(fromMemory)}`);
    if (recent.length > 40) recent.shift();
    assert.deepEqual(normalize(args, fromMemory), normalize(args, fromRedis),
      `step ${steps}: ${JSON.stringify(raw)}\n  memory: ${JSON.stringify(fromMemory)}\n  redis:  ${JSON.stringify(fromRedis)}` +
      `\n  recent steps (in-memory replies):\n    ${recent.join('\n    ')}`);
    return fromMemory;
  }
  /** A full SCAN walk on both sides; the sets of keys must be equal (pages may differ). */
  async function scanBoth(...options) {
    const args = expand(options);
    const walk = async (run) => {
      const keys = [];
      let cursor = '0';
      do {
        const reply = await run(['SCAN', cursor, ...args]);
        assert.ok(Array.isArray(reply), `SCAN ${JSON.stringify(options)} → ${JSON.stringify(reply)}`);
        [cursor] = reply;
        keys.push(...reply[1]);
      } while (cursor !== '0');
      return keys;
    };
    const fromMemory = await walk((a) => memory.command(a));
    const fromRedis = await walk(redisCommand);
    steps++;
    assert.equal(new Set(fromMemory).size, fromMemory.length, `in-memory SCAN repeated a key: ${JSON.stringify(options)}`);
    assert.deepEqual([...fromMemory].sort(), [...new Set(fromRedis)].sort(), `SCAN ${JSON.stringify(options)}`);
    return fromMemory;
  }
  return { both, scanBoth, prefix, memory, steps: () => steps };
}

const sha = (name) => KV_SCRIPTS[name].sha1;
const acquireArgs = (key, value, ttl) => ['EVALSHA', sha('acquire'), '2', key, `${key}:fence`, value, String(ttl)];
const releaseArgs = (key, value, mode) => ['EVALSHA', sha('release'), '1', key, ...(value === undefined ? [] : [value]), ...(mode ? [mode] : [])];
const extendArgs = (key, value, mode, ttl, next) => ['EVALSHA', sha('extend'), '1', key, value, String(ttl), next, ...(mode ? [mode] : [])];
const inspectArgs = (key) => ['EVALSHA', sha('inspect'), '2', key, `${key}:fence`];

async function runAll(both, sequence) {
  for (const args of sequence) await both(...args);
}

test('strings: GET / SET with NX, XX, GET, KEEPTTL, EX, PX, EXAT, PXAT; DEL; EXISTS; errors', async () => {
  const { both } = pair('strings');
  await runAll(both, [
    ['GET', '@a'], ['SET', '@a', 'v'], ['GET', '@a'], ['set', '@a', 'w', 'nx'], ['SET', '@a', 'w', 'XX'], ['GET', '@a'],
    ['SET', '@b', 'x', 'XX'], ['EXISTS', '@b'], ['SET', '@b', 'x', 'NX', 'GET'], ['GET', '@b'], ['SET', '@a', 'z', 'GET'],
    ['SET', '@a', 'y', 'NX', 'GET'], ['SET', '@a', 'y', 'XX', 'GET'], ['GET', '@a'], ['SET', '@c', ''], ['GET', '@c'],
    ['SET', '@u', 'ünïcödé\n日本'], ['GET', '@u'],
    ['SET', '@a', '1', 'PX', '100000'], ['PTTL', '@a'], ['TTL', '@a'], ['SET', '@a', '2', 'KEEPTTL'], ['PTTL', '@a'],
    ['SET', '@a', '3'], ['PTTL', '@a'], ['TTL', '@a'], ['PTTL', '@missing'], ['TTL', '@missing'],
    ['SET', '@k', 'v', 'KEEPTTL'], ['PTTL', '@k'], ['SET', '@k', 'v', 'EX', '10', 'EX', '20'], ['TTL', '@k'],
    ['SET', '@k', 'v', 'PX', '1000', 'PX', '200000'], ['PTTL', '@k'],
    ['SET', '@p', 'v', 'PXAT', String(Date.now() + 300_000)], ['PTTL', '@p'],
    ['SET', '@p', 'v', 'EXAT', String(Math.floor(Date.now() / 1000) + 300)], ['TTL', '@p'],
    ['SET', '@d', 'v', 'PXAT', '1'], ['EXISTS', '@d'], ['GET', '@d'], ['SET', '@d', 'v', 'EXAT', '1'], ['PTTL', '@d'],
    ['SET', '@a', 'v', 'EX', '100', 'PX', '100'], ['SET', '@a', 'v', 'NX', 'XX'], ['SET', '@a', 'v', 'XX', 'NX'],
    ['SET', '@a', 'v', 'NX', 'NX'], ['SET', '@a', 'v', 'GET', 'GET'],
    ['SET', '@a', 'v', 'PX', '0'], ['SET', '@a', 'v', 'PX', '-5'], ['SET', '@a', 'v', 'PX', 'abc'], ['SET', '@a', 'v', 'PX', '1.5'],
    ['SET', '@a', 'v', 'EX', 'abc', 'NX', 'XX'], ['SET', '@a', 'v', 'EX', '9223372036854775'],
    ['SET', '@a', 'v', 'PX', '9223372036854775807'], ['SET', '@a', 'v', 'KEEPTTL', 'EX', '5'], ['SET', '@a', 'v', 'EX', '5', 'KEEPTTL'],
    ['SET', '@a', 'v', 'EX'], ['SET', '@a', 'v', 'FOO'], ['SET', '@a', 'v', 'PERSIST'], ['GET', '@a'],
    ['DEL', '@a', '@a', '@b', '@missing'], ['EXISTS', '@a', '@b', '@c', '@c', '@u'], ['DEL', '@c', '@u', '@k', '@p'],
    ['GET'], ['GET', '@a', 'extra'], ['SET', '@a'], ['DEL'], ['EXISTS'], ['INCR'], ['PTTL'], ['TTL', '@a', '@b'],
    ['PEXPIRE', '@a'], ['EXPIRE'], ['SCAN'], ['EVALSHA', 'x'], ['EVAL', 'x'], ['SCRIPT'], ['ECHO'],
  ]);
});

test('INCR: integers only, range, overflow, TTL kept', async () => {
  const { both } = pair('incr');
  await runAll(both, [
    ['INCR', '@n'], ['INCR', '@n'], ['GET', '@n'], ['SET', '@n', '-3'], ['INCR', '@n'], ['GET', '@n'],
    ...['01', 'abc', ' 1', '1 ', '1.5', '+1', '-0', '', '-', '99999999999999999999', '9223372036854775808', '-9223372036854775809', '1e3', '0x10']
      .flatMap((v) => [['SET', '@n', v], ['INCR', '@n'], ['GET', '@n']]),
    ['SET', '@n', '0'], ['INCR', '@n'], ['SET', '@n', '9223372036854775806'], ['INCR', '@n'], ['INCR', '@n'], ['GET', '@n'],
    ['SET', '@n', '-9223372036854775808'], ['INCR', '@n'], ['GET', '@n'],
    ['SET', '@n', '5', 'PX', '100000'], ['INCR', '@n'], ['PTTL', '@n'], ['GET', '@n'], ['INCR', '@n', '@n'],
  ]);
});

test('PEXPIRE / EXPIRE and their NX | XX | GT | LT options', async () => {
  const { both } = pair('expire');
  await runAll(both, [
    ['PEXPIRE', '@e', '1000'], ['EXPIRE', '@e', '10'], ['SET', '@e', 'v'], ['PEXPIRE', '@e', '100000', 'XX'],
    ['PEXPIRE', '@e', '100000', 'GT'], ['PEXPIRE', '@e', '200000', 'NX'], ['PTTL', '@e'], ['PEXPIRE', '@e', '100000', 'NX'],
    ['PEXPIRE', '@e', '300000', 'LT'], ['PEXPIRE', '@e', '100000', 'lt'], ['PEXPIRE', '@e', '50000', 'GT'],
    ['EXPIRE', '@e', '500', 'XX', 'GT'], ['TTL', '@e'], ['SET', '@f', 'v'], ['PEXPIRE', '@f', '100000', 'LT'], ['PTTL', '@f'],
    ['PEXPIRE', '@e', '1', 'NX', 'XX'], ['PEXPIRE', '@e', '1', 'NX', 'GT'], ['PEXPIRE', '@e', '1', 'GT', 'LT'],
    ['PEXPIRE', '@e', '1', 'foo'], ['PEXPIRE', '@e', 'x'], ['PEXPIRE', '@e', 'x', 'foo'], ['EXPIRE', '@e', '9223372036854775807'],
    ['PEXPIRE', '@e', '9223372036854775807'], ['EXPIRE', '@e', '-9223372036854775807'], ['EXPIRE', '@e', '1.5'],
    ['PEXPIRE', '@e', '0'], ['EXISTS', '@e'], ['SET', '@e', 'v'], ['EXPIRE', '@e', '-1'], ['GET', '@e'],
    ['SET', '@e', 'v', 'PX', '100000'], ['PEXPIRE', '@e', '-100', 'XX'], ['EXISTS', '@e'],
  ]);
});

test('PING, ECHO, unknown commands and subcommands, SCRIPT, SCAN and EVALSHA argument errors', async () => {
  const { both } = pair('misc');
  await runAll(both, [
    ['PING'], ['ping', 'hello'], ['PING', 'a', 'b'], ['ECHO', 'x\ny'], ['NOSUCHCMD'], ['NOSUCHCMD', '@a', 'b\nc'],
    ['nosuchcmd', 'x'.repeat(200), 'y'],
    ['SCRIPT', 'NOPE'], ['script', 'flush', 'now'], ['SCRIPT', 'LOAD'], ['SCRIPT', 'EXISTS'],
    ['SCRIPT', 'EXISTS', sha('acquire'), sha('release').toUpperCase(), sha('extend'), sha('inspect'), '0'.repeat(40), 'abc'],
    ['SCAN', 'x'], ['SCAN', ' 1'], ['SCAN', '-'], ['SCAN', '18446744073709551616'], ['SCAN', '0', 'COUNT', '0'],
    ['SCAN', '0', 'COUNT', '-1'], ['SCAN', '0', 'COUNT', 'x'], ['SCAN', '0', 'MATCH'], ['SCAN', '0', 'FOO', 'bar'],
    ['SCAN', '0', 'COUNT', 'x', 'MATCH'], ['SCAN', '0', 'MATCH', '@*', 'COUNT'],
    ['EVALSHA', 'abc', '0'], ['EVALSHA', 'abc', 'x'], ['EVALSHA', '0'.repeat(40), '0'], ['EVALSHA', 'f'.repeat(40), '1', '@a'],
    ['EVALSHA', '0'.repeat(40), 'x'], ['EVALSHA', '0'.repeat(40), '2', '@a'], ['EVALSHA', sha('inspect'), '3', '@a'],
    ['EVALSHA', sha('inspect'), '-1', '@a'], ['EVALSHA', sha('inspect'), '1.0', '@a'], ['EVAL', KV_SCRIPTS.inspect.lua, 'x'],
    ['EVAL', KV_SCRIPTS.inspect.lua, '5', '@a'],
    ['SCRIPT', 'LOAD', KV_SCRIPTS.acquire.lua], ['SCRIPT', 'LOAD', KV_SCRIPTS.inspect.lua],
  ]);
});

test('the four lock scripts via EVALSHA and EVAL, including their error replies', async () => {
  const { both } = pair('scripts');
  await runAll(both, [
    inspectArgs('@L'), acquireArgs('@L', 'o1:run1', 300_000), acquireArgs('@L', 'o2:run1', 300_000), inspectArgs('@L'),
    releaseArgs('@L', 'o2:run1'), releaseArgs('@L', 'o2:', 'prefix'), releaseArgs('@L', 'run1', 'prefix'), releaseArgs('@L', '1:', 'prefix'), releaseArgs('@L', 'o1:', 'exact'), releaseArgs('@L', 'o1:run'), releaseArgs('@L', 'o1:run1', 'exact'),
    ['EXISTS', '@L'], releaseArgs('@L', 'o1:run1'), inspectArgs('@L'), acquireArgs('@L', 'o1:run2', 300_000),
    extendArgs('@L', 'o2:run1', 'exact', 400_000, 'o2:run2'), extendArgs('@L', 'o1:run2', 'exact', 400_000, 'o1:run3'),
    ['GET', '@L'], ['PTTL', '@L'], extendArgs('@L', 'o1:', 'prefix', 500_000, 'o1:run4'), inspectArgs('@L'),
    extendArgs('@L', 'o', 'exact', 500_000, 'o1:run5'), releaseArgs('@L', 'o1:', 'prefix'), extendArgs('@L', 'o1:run4', 'exact', 1000, 'x'),
    acquireArgs('@L', 'ünï:1', 300_000), releaseArgs('@L', 'ünï', 'prefix'), acquireArgs('@L', 'anyone', 300_000),
    releaseArgs('@L', '', 'prefix'), ['GET', '@L:fence'], ['SET', '@P', 'no expiry'], inspectArgs('@P'), acquireArgs('@P', 'x', 1000),
    // error replies from inside the scripts (Redis names the script and the line)
    acquireArgs('@E', 'v', 0), acquireArgs('@E', 'v', 'soon'), acquireArgs('@E', 'v', '1.5'), acquireArgs('@E', 'v', -1),
    ['EVALSHA', sha('acquire'), '2', '@E', '@E:fence', 'v'], ['EVALSHA', sha('acquire'), '0'],
    ['EVALSHA', sha('acquire'), '1', '@E', 'v', '300000'], ['GET', '@E'], ['PTTL', '@E'], ['GET', '@E:fence'],
    ['SET', '@G:fence', 'not a number'], acquireArgs('@G', 'v', 300_000), ['GET', '@G'],
    ['EVALSHA', sha('extend'), '1', '@E', 'v', 'exact'], ['EVALSHA', sha('extend'), '1', '@E', 'w', 'exact'],
    extendArgs('@E', 'v', 'exact', 0, 'w'), extendArgs('@E', 'v', 'exact', 'x', 'w'), ['EVALSHA', sha('extend'), '1', '@E', 'v', '1000'],
    ['EVALSHA', sha('extend'), '1', '@E'],
    ['EVALSHA', sha('release'), '0', 'v'], ['EVALSHA', sha('release'), '1', '@E'], ['EVALSHA', sha('release'), '1', '@E', 'v'],
    ['EVALSHA', sha('inspect'), '1', '@E'], ['EVALSHA', sha('inspect'), '0'], ['EVALSHA', sha('inspect'), '2', '@nope', '@L:fence'],
    ['EVALSHA', sha('acquire').toUpperCase(), '2', '@U', '@U:fence', 'v', '300000'],
    // EVAL by text runs the same scripts
    ['EVAL', KV_SCRIPTS.acquire.lua, '2', '@V', '@V:fence', 'v1', '300000'], ['EVAL', KV_SCRIPTS.acquire.lua, '2', '@V', '@V:fence', 'v2', '300000'],
    ['EVAL', KV_SCRIPTS.inspect.lua, '2', '@V', '@V:fence'], ['EVAL', KV_SCRIPTS.extend.lua, '1', '@V', 'v1', '200000', 'v3', 'exact'],
    ['EVAL', KV_SCRIPTS.release.lua, '1', '@V', 'v3'], ['EVAL', KV_SCRIPTS.acquire.lua, '2', '@V', '@V:fence', 'v', '0'],
  ]);
});

/** 'AbCd' alternation: a spelling that is neither lower nor upper case. */
const mixedCase = (word) => [...word].map((c, i) => (i % 2 ? c.toLowerCase() : c.toUpperCase())).join('');

test('integers at the edges of the exact fast path (15/16 digits, 2^53, int64) agree with Redis', async () => {
  const { both, memory, prefix } = pair('bounds');
  // Integer replies beyond 2^53 are inexact on both sides and round differently (node-redis parses
  // Redis's 9007199254740991 as ...992), so there INCR's replies are not compared, only the stored text.
  for (const start of ['9007199254740989', '-9007199254740994', '1234567890123456788']) {
    await both('SET', '@big', start);
    for (let i = 0; i < 4; i++) {
      memory.command(['INCR', `${prefix}big`]);
      await redisCommand(['INCR', `${prefix}big`]);
      await both('GET', '@big');
    }
  }
  // (no PTTL/TTL of these keys: their TTLs are beyond what normalize() accepts; EXISTS shows the outcome)
  const times = ['999999999999999', '1000000000000000', '9007199254740', '9007199254741', '9007199254740991',
    '9007199254740993', '9223372036854775', '9223372036854776', '9223372036854775807', '9223372036854775808'];
  await runAll(both, [
    ['SET', '@n', '999999999999998'], ['INCR', '@n'], ['INCR', '@n'], ['GET', '@n'], ['INCR', '@n'], ['GET', '@n'],
    ['SET', '@n', '-1000000000000001'], ['INCR', '@n'], ['INCR', '@n'], ['GET', '@n'],
    ['SET', '@n', '-1'], ['INCR', '@n'], ['GET', '@n'], ['INCR', '@n'], ['SET', '@n', '-0'], ['INCR', '@n'],
    ['SET', '@n', '0999'], ['INCR', '@n'], ['SET', '@n', '-'], ['INCR', '@n'],
    ...times.flatMap((t) => [
      ['SET', '@e', 'v', 'PX', t], ['EXISTS', '@e'], ['SET', '@e', 'v', 'EX', t], ['EXISTS', '@e'], ['DEL', '@e'],
      ['SET', '@e', 'v', 'PXAT', t], ['EXISTS', '@e'], ['SET', '@e', 'v', 'EXAT', t], ['EXISTS', '@e'], ['DEL', '@e'],
      ['SET', '@e', 'v', 'PX', `-${t}`], ['SET', '@e', 'v', 'EXAT', `-${t}`],
      ['SET', '@x', 'v'], ['PEXPIRE', '@x', t], ['EXISTS', '@x'], ['EXPIRE', '@x', t], ['EXISTS', '@x'],
      ['PEXPIRE', '@x', `-${t}`], ['EXISTS', '@x'], ['SET', '@x', 'v'], ['EXPIRE', '@x', `-${t}`], ['EXISTS', '@x'],
    ]),
    ['SET', '@g', 'v'], ['PEXPIRE', '@g', '999999999999999'], ['PEXPIRE', '@g', '1000000000000000', 'GT'],
    ['EXPIRE', '@g', '9007199254740', 'GT'], ['EXPIRE', '@g', '9007199254741', 'LT'], ['EXPIRE', '@g', '9007199254739', 'LT'],
    ['PEXPIRE', '@g', '999999999999999', 'GT'], ['PEXPIRE', '@g', '300000', 'LT'], ['PTTL', '@g'],
    ['EVALSHA', sha('inspect'), '999999999999999', '@a'], ['EVALSHA', sha('inspect'), '1000000000000000', '@a'],
    ['EVALSHA', sha('inspect'), '-999999999999999', '@a'], ['EVALSHA', sha('inspect'), '-1000000000000000', '@a'],
    ['EVALSHA', sha('inspect'), '9223372036854775808', '@a'], ['EVALSHA', sha('inspect'), '02', '@a', '@b'],
    acquireArgs('@L', 'v', '999999999999999'), ['EXISTS', '@L'], ['DEL', '@L'], acquireArgs('@L', 'v', '9223372036854775807'),
    acquireArgs('@L', 'v', '9223372036854775808'), acquireArgs('@L', 'v', '-1000000000000000'), ['SET', '@L:fence', '999999999999999'],
    acquireArgs('@L', 'v', 300_000), ['GET', '@L:fence'], extendArgs('@L', 'v', 'exact', '1000000000000000', 'w'), ['EXISTS', '@L'],
    extendArgs('@L', 'w', 'exact', '9223372036854775807', 'x'), ['GET', '@L'],
  ]);
});

test('command words, options and script shas in any case', async () => {
  const { both, scanBoth } = pair('case');
  const mixedSha = (name) => mixedCase(sha(name));
  await runAll(both, [
    ['sEt', '@m', 'v', 'pX', '300000', 'nX'], ['GeT', '@m'], ['pTtL', '@m'], ['tTl', '@m'], ['eXiStS', '@m'],
    ['SeT', '@m', 'w', 'xX', 'kEePtTl', 'gEt'], ['PTTL', '@m'], ['set', '@m', 'x', 'ExAt', String(Math.floor(Date.now() / 1000) + 300)],
    ['SET', '@m', 'y', 'pXaT', String(Date.now() + 300_000)], ['PTTL', '@m'], ['set', '@m', 'z', 'Ex', '300', 'eX', '200'], ['TTL', '@m'],
    ['PeXpIrE', '@m', '250000', 'Gt'], ['ExPiRe', '@m', '100', 'lT', 'Xx'], ['TTL', '@m'], ['pexpire', '@m', '1', 'Nx', 'gT'],
    ['iNcR', '@i'], ['DeL', '@i', '@m'], ['pInG'], ['eChO', 'hi'], ['gEtX', '@m'], ['SET', '@m', 'v', 'Px'],
    ['EvAlShA', mixedSha('acquire'), '2', '@L', '@L:fence', 'me', '300000'], ['evalsha', mixedSha('inspect'), '2', '@L', '@L:fence'],
    ['EVALSHA', mixedSha('release'), '2', '@L', '@L:fence', 'm', 'prefix'], ['EVALSHA', mixedSha('release'), '2', '@L', '@L:fence', 'me', 'PREFIX'],
    ['EvAl', KV_SCRIPTS.inspect.lua, '2', '@L', '@L:fence'],
    ['ScRiPt', 'ExIsTs', mixedSha('extend'), sha('inspect').toUpperCase(), 'F'.repeat(40)], ['script', 'LoAd', KV_SCRIPTS.release.lua],
    // (no SCRIPT FLUSH: the server may be shared; an invalid mode flushes nothing)
    ['SCRIPT', 'fLuSh', 'AsYnCh'],
  ]);
  await scanBoth('MaTcH', '@*', 'CoUnT', '5', 'TyPe', 'StRiNg');
});

test('a lock cycle with the arguments the core sends: JSON value, release by lockId prefix', async () => {
  const { both } = pair('cycle');
  const lockId = 'bench-t-1795616719818-a8dafa5dce8934d5';
  const value = JSON.stringify({ lockId, lockedAt: '2026-11-25T14:00:00.000Z', processId: 'instance-0011223344556677', expiresAt: '2026-11-25T14:01:00.000Z' });
  const prefix = `{"lockId":${JSON.stringify(lockId)},`;
  for (let i = 0; i < 3; i++) {
    await runAll(both, [
      acquireArgs('@c', value, 60_000), acquireArgs('@c', value.replace(lockId, 'other'), 60_000), inspectArgs('@c'),
      releaseArgs('@c', prefix.replace('bench', 'bunch'), 'prefix'), releaseArgs('@c', prefix), releaseArgs('@c', prefix, 'prefix'),
      releaseArgs('@c', prefix, 'prefix'), inspectArgs('@c'),
    ]);
  }
});

test('EVALSHA of an unknown sha is NOSCRIPT on both', async () => {
  const { both } = pair('noscript');
  const unknown = randomBytes(20).toString('hex');
  assert.deepEqual(await both('EVALSHA', unknown, '0'), { error: 'NOSCRIPT No matching script. Please use EVAL.' });
  assert.deepEqual(await both('EVALSHA', unknown, '1', '@k', 'arg'), { error: 'NOSCRIPT No matching script. Please use EVAL.' });
  assert.deepEqual(await both('evalsha', 'deadbeef', '0'), { error: 'NOSCRIPT No matching script. Please use EVAL.' });
});

test('expiry: PX 30 and a 30 ms lock are gone on both after 60 ms', async () => {
  const { both } = pair('expiry');
  await runAll(both, [
    // (nothing reads these keys before the wait: a slow machine could let 30 ms pass between the two sides)
    ['SET', '@x', 'v', 'PX', '30'], acquireArgs('@y', 'me', 30), ['SET', '@z', '5', 'PX', '30'], ['SET', '@w', 'v'],
    ['PEXPIRE', '@w', '30'],
  ]);
  await sleep(60);
  await runAll(both, [
    ['GET', '@x'], ['EXISTS', '@x', '@y', '@z', '@w'], ['PTTL', '@x'], ['TTL', '@y'], inspectArgs('@y'), ['GET', '@y:fence'],
    ['SET', '@x', 'again', 'XX'], ['SET', '@x', 'again', 'NX'], ['INCR', '@z'], ['DEL', '@w'], acquireArgs('@y', 'you', 300_000),
    releaseArgs('@y', 'me'),
  ]);
});

test('SCAN MATCH / COUNT / TYPE over the same keys: same set after a full walk', async () => {
  const { both, scanBoth } = pair('scan');
  const names = [
    'plain', 'a:b', 'a:b:c', 'star*', 'star*x', 'q?', 'q!', 'br[x]', 'br]', 'back\\slash', 'back\\', 'new\nline', 'tab\tk',
    'ünïcödé', 'é', '日本', 'x', 'y', 'z', 'A', '-', ']', '^', '',
  ];
  for (let i = 0; i < 150; i++) names.push(`bulk:${i}`);
  for (const name of names) await both('SET', `@${name}`, 'v');
  const patterns = [
    '*', '**', 'a:*', 'a:?', 'star\\*', 'star*', 'star\\**', 'q\\?', 'q?', 'br\\[*', 'br[[]x*', 'br[]]', 'br\\]', 'back\\\\slash',
    'back\\\\', 'back\\', 'new\nline', 'new?line', '*\n*', 'tab\tk', 'ü*', '?', '??', '日?', '日???', '[xy]', '[^xy]', '[x-z]',
    '[z-x]', '[\\]]', '[\\^]', '[a-]', '[x', '[^', '[', '[-]', '[^-xyz]', '[A-\u00e9]*', '*:*:*', '*b*', 'bulk:1*', 'bulk:[0-4]?',
    'bulk:*[^0-9]*', '*\\', '\\*', '[]', '[^]', '[\\', '*[*', '?*?*?*?*?*?*?*?*?*?*?*?', '*a*b*c*', '*?', '*k',
  ];
  for (const pattern of patterns) {
    await scanBoth('MATCH', `@${pattern}`);
    await scanBoth('MATCH', `@${pattern}`, 'COUNT', '3');
  }
  await scanBoth('MATCH', '@*', 'COUNT', '1000');
  await scanBoth('MATCH', '@*', 'TYPE', 'string');
  await scanBoth('MATCH', '@*', 'TYPE', 'STRING', 'COUNT', '7');
  await scanBoth('MATCH', '@*', 'TYPE', 'hash');
});


test(`a seeded random sequence of ${RANDOM_STEPS} commands gives identical replies`, async (t) => {
  const seed = Number(process.env.KV_DIFF_SEED ?? randomBytes(4).readUInt32LE(0));
  t.diagnostic(`seed ${seed} (replay with KV_DIFF_SEED=${seed})`);
  const random = prng(seed);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const chance = (p) => random() < p;

  const locks = ['@r0', '@r1', '@r2', '@r3'];
  const keys = [...locks, ...locks.map((k) => `${k}:fence`), '@c0', '@c1', '@s'];
  const values = ['o1:a', 'o1:b', 'o2:a', 'o2:b', '7', '-2', '0', 'x', '', '9223372036854775807', 'ü:1'];
  const prefixes = ['o1:', 'o2:', 'o', 'ü', '', 'x', '1:', ':a', 'o1:a', 'o1:ab'];
  const ttls = ['120000', '240000', '360000', '480000'];
  const { both, scanBoth, steps } = pair('random');
  const stats = new Map();

  for (let step = 0; step < RANDOM_STEPS; step++) {
    const roll = random();
    let args;
    if (roll < 0.2) {
      args = ['SET', pick(keys), pick(values)];
      const condition = random();
      if (condition < 0.3) args.push('NX');
      else if (condition < 0.5) args.push('XX');
      const expiry = random();
      if (expiry < 0.4) args.push('PX', pick(ttls));
      else if (expiry < 0.5) args.push('EX', '300');
      else if (expiry < 0.6) args.push('KEEPTTL');
      else if (expiry < 0.62) args.push('PX', pick(['0', '-1', 'soon']));
      if (chance(0.15)) args.push('GET');
    } else if (roll < 0.3) {
      args = ['GET', pick(keys)];
    } else if (roll < 0.37) {
      args = ['DEL', ...Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(keys))];
    } else if (roll < 0.45) {
      args = ['INCR', chance(0.6) ? pick(['@c0', '@c1']) : pick(keys)];
    } else if (roll < 0.5) {
      args = ['EXISTS', ...Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(keys))];
    } else if (roll < 0.55) {
      args = [pick(['PTTL', 'TTL']), pick(keys)];
    } else if (roll < 0.59) {
      args = [chance(0.8) ? 'PEXPIRE' : 'EXPIRE', pick(keys), chance(0.1) ? '0' : pick(ttls)];
      if (args[0] === 'EXPIRE' && args[2] !== '0') args[2] = String(Number(args[2]) / 1000);
      if (chance(0.4)) args.push(pick(['NX', 'XX']));
    } else if (roll < 0.72) {
      args = acquireArgs(pick(locks), pick(values), pick(ttls));
    } else if (roll < 0.8) {
      args = chance(0.5) ? releaseArgs(pick(locks), pick(values)) : releaseArgs(pick(locks), pick(prefixes), pick(['prefix', 'exact']));
    } else if (roll < 0.88) {
      const prefix = chance(0.5);
      args = extendArgs(pick(locks), prefix ? pick(prefixes) : pick(values), prefix ? 'prefix' : 'exact', pick(ttls), pick(values));
    } else if (roll < 0.96) {
      args = inspectArgs(pick(locks));
    } else if (roll < 0.98) {
      await scanBoth('MATCH', pick(['@*', '@r?', '@r*:fence', '@[rc]*', '@*[0-1]*']), 'COUNT', pick(['2', '5', '10']));
      stats.set('SCAN walk', (stats.get('SCAN walk') ?? 0) + 1);
      continue;
    } else {
      // the same scripts by their text (always with long TTLs: nothing in this sequence may expire)
      const lock = pick(locks);
      const viaSha = pick([
        acquireArgs(lock, pick(values), pick(ttls)), releaseArgs(lock, pick(prefixes), 'prefix'),
        extendArgs(lock, pick(values), 'exact', pick(ttls), pick(values)), inspectArgs(lock),
      ]);
      args = ['EVAL', KV_SCRIPTS[shaName.get(viaSha[1])].lua, ...viaSha.slice(2)];
    }
    const reply = await both(...args);
    const label = args[0] === 'EVALSHA' ? shaName.get(args[1]) : args[0];
    stats.set(label, (stats.get(label) ?? 0) + 1);
    if (reply && typeof reply === 'object' && 'error' in reply) stats.set('(error replies)', (stats.get('(error replies)') ?? 0) + 1);
  }
  assert.ok(steps() >= 2000);
  t.diagnostic(`${steps()} steps: ${[...stats].map(([k, n]) => `${k} ${n}`).join(', ')}`);
});
