// Unit tests of adapters/kv-memory.js: the Redis protocol face, the lock scripts without Lua, and
// the original package's get/set/delete face, with an injected clock.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { InMemoryKVStore } from '../../adapters/kv-memory.js';
import { KV_SCRIPTS } from '#internal/generated/constants.js';

const NOSCRIPT = { error: 'NOSCRIPT No matching script. Please use EVAL.' };

/** A store on a hand-driven clock. */
function storeAt(start = 1_700_000_000_000) {
  const clock = { t: start };
  const store = new InMemoryKVStore({ now: () => clock.t });
  const kv = (...args) => store.command(args);
  return { store, clock, kv };
}

const acquire = (kv, key, value, ttl) => kv('EVALSHA', KV_SCRIPTS.acquire.sha1, '2', key, `${key}:fence`, value, String(ttl));
const release = (kv, key, value, mode) =>
  kv('EVALSHA', KV_SCRIPTS.release.sha1, '1', key, value, ...(mode ? [mode] : []));
const extend = (kv, key, value, mode, ttl, next) =>
  kv('EVALSHA', KV_SCRIPTS.extend.sha1, '1', key, value, String(ttl), next, ...(mode ? [mode] : []));
const inspect = (kv, key) => kv('EVALSHA', KV_SCRIPTS.inspect.sha1, '2', key, `${key}:fence`);

/** Every key a full SCAN walk returns, in order (duplicates kept so tests can count them). */
function scanAll(kv, ...options) {
  const keys = [];
  let cursor = '0';
  let calls = 0;
  do {
    const reply = kv('SCAN', cursor, ...options);
    assert.ok(Array.isArray(reply), `SCAN replied ${JSON.stringify(reply)}`);
    assert.equal(typeof reply[0], 'string');
    [cursor] = reply;
    keys.push(...reply[1]);
    assert.ok(++calls < 100_000, 'SCAN does not terminate');
  } while (cursor !== '0');
  return keys;
}

describe('protocol face: strings, options, counters', () => {
  test('PING, ECHO, GET, SET and case-insensitive command names', () => {
    const { kv } = storeAt();
    assert.equal(kv('PING'), 'PONG');
    assert.equal(kv('ping', 'hi'), 'hi');
    assert.equal(kv('echo', 'x'), 'x');
    assert.equal(kv('GET', 'k'), null);
    assert.equal(kv('SeT', 'k', 'v'), 'OK');
    assert.equal(kv('get', 'k'), 'v');
    assert.equal(kv('SET', 'k', ''), 'OK');
    assert.equal(kv('GET', 'k'), '');
    assert.equal(kv('SET', '', 'empty key'), 'OK');
    assert.equal(kv('GET', ''), 'empty key');
  });

  test('SET NX / XX / GET / KEEPTTL', () => {
    const { kv, clock } = storeAt();
    assert.equal(kv('SET', 'k', 'a', 'XX'), null);
    assert.equal(kv('GET', 'k'), null);
    assert.equal(kv('SET', 'k', 'a', 'nx'), 'OK');
    assert.equal(kv('SET', 'k', 'b', 'NX'), null);
    assert.equal(kv('GET', 'k'), 'a');
    assert.equal(kv('SET', 'k', 'b', 'XX'), 'OK');
    assert.equal(kv('GET', 'k'), 'b');
    assert.equal(kv('SET', 'k', 'c', 'GET'), 'b');
    assert.equal(kv('SET', 'k', 'd', 'NX', 'GET'), 'c', 'NX GET on a live key returns the old value and writes nothing');
    assert.equal(kv('GET', 'k'), 'c');
    assert.equal(kv('SET', 'new', 'x', 'NX', 'GET'), null);
    assert.equal(kv('GET', 'new'), 'x');

    assert.equal(kv('SET', 'k', 'e', 'PX', '5000'), 'OK');
    clock.t += 1000;
    assert.equal(kv('SET', 'k', 'f', 'KEEPTTL'), 'OK');
    assert.equal(kv('PTTL', 'k'), 4000);
    assert.equal(kv('SET', 'k', 'g'), 'OK');
    assert.equal(kv('PTTL', 'k'), -1, 'a plain SET clears the TTL');
    assert.equal(kv('SET', 'fresh', 'x', 'KEEPTTL'), 'OK');
    assert.equal(kv('PTTL', 'fresh'), -1);
    // repeating an option is allowed, the last value wins
    assert.equal(kv('SET', 'k', 'h', 'EX', '10', 'EX', '20'), 'OK');
    assert.equal(kv('TTL', 'k'), 20);
  });

  test('SET EX / PX / EXAT / PXAT and their errors', () => {
    const { kv, clock } = storeAt(1_000_000);
    assert.equal(kv('SET', 'a', '1', 'EX', '2'), 'OK');
    assert.equal(kv('PTTL', 'a'), 2000);
    assert.equal(kv('SET', 'b', '1', 'PXAT', String(clock.t + 1234)), 'OK');
    assert.equal(kv('PTTL', 'b'), 1234);
    assert.equal(kv('SET', 'c', '1', 'EXAT', String(clock.t / 1000 + 3)), 'OK');
    assert.equal(kv('PTTL', 'c'), 3000);
    assert.equal(kv('SET', 'd', '1', 'PXAT', '1'), 'OK', 'an absolute time in the past sets an already expired key');
    assert.equal(kv('EXISTS', 'd'), 0);

    assert.deepEqual(kv('SET', 'k', 'v', 'NX', 'XX'), { error: 'ERR syntax error' });
    assert.deepEqual(kv('SET', 'k', 'v', 'EX', '1', 'PX', '1'), { error: 'ERR syntax error' });
    assert.deepEqual(kv('SET', 'k', 'v', 'KEEPTTL', 'PX', '1'), { error: 'ERR syntax error' });
    assert.deepEqual(kv('SET', 'k', 'v', 'PX'), { error: 'ERR syntax error' });
    assert.deepEqual(kv('SET', 'k', 'v', 'BOGUS'), { error: 'ERR syntax error' });
    assert.deepEqual(kv('SET', 'k', 'v', 'EX', 'abc', 'NX', 'XX'), { error: 'ERR syntax error' }, 'options are parsed before numbers');
    assert.deepEqual(kv('SET', 'k', 'v', 'PX', 'abc'), { error: 'ERR value is not an integer or out of range' });
    assert.deepEqual(kv('SET', 'k', 'v', 'PX', '1.5'), { error: 'ERR value is not an integer or out of range' });
    assert.deepEqual(kv('SET', 'k', 'v', 'PX', '0'), { error: "ERR invalid expire time in 'set' command" });
    assert.deepEqual(kv('SET', 'k', 'v', 'EX', '-1'), { error: "ERR invalid expire time in 'set' command" });
    assert.deepEqual(kv('SET', 'k', 'v', 'EX', '9223372036854775'), { error: "ERR invalid expire time in 'set' command" });
    assert.deepEqual(kv('SET', 'k', 'v', 'PX', '9223372036854775807'), { error: "ERR invalid expire time in 'set' command" });
    assert.equal(kv('EXISTS', 'k'), 0, 'a failed SET writes nothing');
  });

  test('DEL and EXISTS count keys; duplicates count for EXISTS only', () => {
    const { kv } = storeAt();
    kv('SET', 'a', '1');
    kv('SET', 'b', '2');
    assert.equal(kv('EXISTS', 'a', 'a', 'b', 'c'), 3);
    assert.equal(kv('DEL', 'a', 'a', 'c'), 1);
    assert.equal(kv('DEL', 'a'), 0);
    assert.equal(kv('EXISTS', 'a', 'b'), 1);
    assert.equal(kv('DBSIZE'), 1);
    assert.equal(kv('FLUSHDB'), 'OK');
    assert.equal(kv('DBSIZE'), 0);
    kv('SET', 'x', '1');
    assert.equal(kv('FLUSHALL', 'ASYNC'), 'OK');
    assert.equal(kv('EXISTS', 'x'), 0);
    assert.deepEqual(kv('FLUSHALL', 'now'), { error: 'ERR syntax error' });
  });

  test('INCR: new keys, integers only, overflow, TTL kept', () => {
    const { kv, clock } = storeAt();
    assert.equal(kv('INCR', 'n'), 1);
    assert.equal(kv('INCR', 'n'), 2);
    assert.equal(kv('GET', 'n'), '2');
    kv('SET', 'n', '-5', 'PX', '1000');
    assert.equal(kv('INCR', 'n'), -4);
    clock.t += 400;
    assert.equal(kv('PTTL', 'n'), 600, 'INCR keeps the expiry');
    const notInteger = { error: 'ERR value is not an integer or out of range' };
    for (const bad of ['abc', '1.0', '01', '+1', ' 1', '1 ', '-0', '', '99999999999999999999', '9223372036854775808']) {
      kv('SET', 'bad', bad);
      assert.deepEqual(kv('INCR', 'bad'), notInteger, `INCR on ${JSON.stringify(bad)}`);
      assert.equal(kv('GET', 'bad'), bad);
    }
    kv('SET', 'max', '9223372036854775807');
    assert.deepEqual(kv('INCR', 'max'), { error: 'ERR increment or decrement would overflow' });
    kv('SET', 'min', '-9223372036854775808');
    assert.equal(kv('INCR', 'min'), -9223372036854775807);
    assert.equal(kv('GET', 'min'), '-9223372036854775807', 'the stored value stays exact beyond 2^53');
  });

  test('expiry: PTTL counts down and a key is gone once its deadline is <= now', () => {
    const { kv, clock } = storeAt();
    assert.equal(kv('PTTL', 'k'), -2);
    assert.equal(kv('TTL', 'k'), -2);
    kv('SET', 'k', 'v');
    assert.equal(kv('PTTL', 'k'), -1);
    assert.equal(kv('TTL', 'k'), -1);
    kv('SET', 'k', 'v', 'PX', '1500');
    assert.equal(kv('PTTL', 'k'), 1500);
    assert.equal(kv('TTL', 'k'), 2, 'TTL rounds like Redis: (ms + 500) / 1000');
    clock.t += 1000;
    assert.equal(kv('PTTL', 'k'), 500);
    assert.equal(kv('TTL', 'k'), 1);
    clock.t += 499;
    assert.equal(kv('PTTL', 'k'), 1);
    assert.equal(kv('GET', 'k'), 'v');
    clock.t += 1; // now === deadline
    assert.equal(kv('PTTL', 'k'), -2);
    assert.equal(kv('GET', 'k'), null);
    assert.equal(kv('EXISTS', 'k'), 0);
    assert.equal(kv('DEL', 'k'), 0);
    assert.equal(kv('SET', 'k', 'w', 'XX'), null, 'an expired key does not exist for XX');
    assert.equal(kv('SET', 'k', 'w', 'NX'), 'OK', 'nor for NX');
    kv('SET', 'c', '41', 'PX', '10');
    clock.t += 10;
    assert.equal(kv('INCR', 'c'), 1, 'INCR on an expired key starts over');
  });

  test('PEXPIRE / EXPIRE with NX | XX | GT | LT', () => {
    const { kv, clock } = storeAt();
    assert.equal(kv('PEXPIRE', 'k', '100'), 0);
    kv('SET', 'k', 'v');
    assert.equal(kv('PEXPIRE', 'k', '100', 'XX'), 0);
    assert.equal(kv('PEXPIRE', 'k', '100', 'GT'), 0, 'no expiry counts as infinite for GT');
    assert.equal(kv('PEXPIRE', 'k', '5000', 'NX'), 1);
    assert.equal(kv('PTTL', 'k'), 5000);
    assert.equal(kv('PEXPIRE', 'k', '100', 'NX'), 0);
    assert.equal(kv('PEXPIRE', 'k', '9000', 'LT'), 0);
    assert.equal(kv('PEXPIRE', 'k', '4000', 'lt'), 1);
    assert.equal(kv('PEXPIRE', 'k', '3000', 'GT'), 0);
    assert.equal(kv('EXPIRE', 'k', '6', 'XX', 'GT'), 1);
    assert.equal(kv('PTTL', 'k'), 6000);
    clock.t += 5999;
    assert.equal(kv('PTTL', 'k'), 1);
    assert.equal(kv('PEXPIRE', 'k', '0'), 1, 'a deadline <= now deletes the key');
    assert.equal(kv('EXISTS', 'k'), 0);
    kv('SET', 'k', 'v');
    assert.equal(kv('EXPIRE', 'k', '-10'), 1);
    assert.equal(kv('GET', 'k'), null);

    assert.deepEqual(kv('PEXPIRE', 'k', '1', 'NX', 'XX'), { error: 'ERR NX and XX, GT or LT options at the same time are not compatible' });
    assert.deepEqual(kv('PEXPIRE', 'k', '1', 'GT', 'LT'), { error: 'ERR GT and LT options at the same time are not compatible' });
    assert.deepEqual(kv('PEXPIRE', 'k', '1', 'soon'), { error: 'ERR Unsupported option soon' });
    assert.deepEqual(kv('PEXPIRE', 'k', 'x'), { error: 'ERR value is not an integer or out of range' });
    assert.deepEqual(kv('EXPIRE', 'k', '9223372036854775807'), { error: "ERR invalid expire time in 'expire' command" });
    assert.deepEqual(kv('PEXPIRE', 'k', '9223372036854775807'), { error: "ERR invalid expire time in 'pexpire' command" });
  });
});

describe('protocol face: errors and bad input', () => {
  test('arity errors are error replies worded as Redis words them', () => {
    const { kv } = storeAt();
    const cases = [
      [['GET'], 'get'], [['GET', 'a', 'b'], 'get'], [['SET', 'k'], 'set'], [['DEL'], 'del'],
      [['EXISTS'], 'exists'], [['PTTL'], 'pttl'], [['TTL', 'a', 'b'], 'ttl'], [['PEXPIRE', 'k'], 'pexpire'],
      [['EXPIRE', 'k'], 'expire'], [['INCR'], 'incr'], [['SCAN'], 'scan'], [['EVALSHA', 'x'], 'evalsha'],
      [['EVAL', 'x'], 'eval'], [['SCRIPT'], 'script'], [['PING', 'a', 'b'], 'ping'], [['ECHO'], 'echo'],
      [['DBSIZE', 'x'], 'dbsize'], [['SCRIPT', 'LOAD'], 'script|load'], [['SCRIPT', 'exists'], 'script|exists'],
    ];
    for (const [args, name] of cases) {
      assert.deepEqual(kv(...args), { error: `ERR wrong number of arguments for '${name}' command` }, args.join(' '));
    }
  });

  test('unknown commands and subcommands', () => {
    const { kv } = storeAt();
    assert.deepEqual(kv('HSET', 'h', 'f', 'v'), { error: "ERR unknown command 'HSET', with args beginning with: 'h' 'f' 'v' " });
    assert.deepEqual(kv('nope'), { error: "ERR unknown command 'nope', with args beginning with: " });
    assert.deepEqual(kv('foo', 'a\nb'), { error: "ERR unknown command 'foo', with args beginning with: 'a b' " }, 'no line breaks in errors');
    assert.deepEqual(kv('constructor'), { error: "ERR unknown command 'constructor', with args beginning with: " });
    assert.deepEqual(kv('__proto__', 'x'), { error: "ERR unknown command '__proto__', with args beginning with: 'x' " });
    assert.deepEqual(kv('script', 'kill'), { error: "ERR unknown subcommand 'kill'. Try SCRIPT HELP." });
    assert.deepEqual(kv('SCRIPT', 'FLUSH', 'now'), { error: 'ERR SCRIPT FLUSH only support SYNC|ASYNC option' });
  });

  test('non-array, empty and non-string input is an error reply, never a throw', () => {
    const store = new InMemoryKVStore();
    const bad = [undefined, null, 'GET k', 42, {}, { 0: 'PING', length: 1 }, [], [1], ['GET', 1], ['SET', 'k', null], ['GET', undefined], [['PING']], ['SET', 'k', { v: 1 }]];
    for (const input of bad) {
      let reply;
      assert.doesNotThrow(() => { reply = store.command(input); }, `command(${String(input)})`);
      assert.equal(typeof reply?.error, 'string', `command(${JSON.stringify(input)}) → ${JSON.stringify(reply)}`);
      assert.match(reply.error, /^ERR /);
    }
    assert.equal(store.command(['DBSIZE']), 0, 'nothing was written');
  });
});

describe('SCAN', () => {
  test('a full walk with COUNT returns every key exactly once, in pages of at most COUNT', () => {
    const { kv } = storeAt();
    const all = [];
    for (let i = 0; i < 1000; i++) {
      all.push(`key:${i}`);
      kv('SET', `key:${i}`, String(i));
    }
    for (const count of ['1', '7', '10', '333', '5000']) {
      let cursor = '0';
      const seen = [];
      do {
        const [next, keys] = kv('SCAN', cursor, 'COUNT', count);
        assert.ok(keys.length <= Number(count));
        seen.push(...keys);
        cursor = next;
      } while (cursor !== '0');
      assert.equal(seen.length, 1000, `COUNT ${count}`);
      assert.deepEqual([...seen].sort(), [...all].sort());
    }
    assert.equal(scanAll(kv).length, 1000, 'default COUNT');
    const matched = scanAll(kv, 'MATCH', 'key:1?', 'COUNT', '13');
    assert.deepEqual(matched.sort(), ['key:10', 'key:11', 'key:12', 'key:13', 'key:14', 'key:15', 'key:16', 'key:17', 'key:18', 'key:19']);
    assert.equal(scanAll(kv, 'MATCH', 'key:*', 'TYPE', 'string').length, 1000);
    assert.deepEqual(scanAll(kv, 'TYPE', 'hash'), []);
  });

  test('keys present for the whole walk come back exactly once while others come and go', () => {
    const { kv, clock } = storeAt();
    for (let i = 0; i < 500; i++) kv('SET', `stable:${i}`, 'x');
    for (let i = 0; i < 500; i++) kv('SET', `churn:${i}`, 'x', 'PX', String(1 + (i % 50)));
    const seen = new Map();
    let cursor = '0';
    let round = 0;
    do {
      const [next, keys] = kv('SCAN', cursor, 'COUNT', '20');
      for (const k of keys) seen.set(k, (seen.get(k) ?? 0) + 1);
      // between pages: delete and re-create churn keys, add new keys, let some expire, overwrite stable keys
      kv('DEL', `churn:${round}`);
      kv('SET', `churn:${round}`, 'again');
      kv('SET', `late:${round}`, 'x');
      kv('SET', `stable:${round % 500}`, `v${round}`);
      clock.t += 1;
      round++;
      cursor = next;
    } while (cursor !== '0');
    for (let i = 0; i < 500; i++) assert.equal(seen.get(`stable:${i}`), 1, `stable:${i}`);
    // a re-created key is a new key (it may come back once more); keys added during the walk at most once
    for (const [k, n] of seen) assert.ok(n <= (k.startsWith('churn:') ? 2 : 1), `${k} returned ${n} times`);
  });

  test('expired keys never appear; invalid cursors and options are errors', () => {
    const { kv, clock } = storeAt();
    kv('SET', 'live', '1');
    kv('SET', 'dying', '1', 'PX', '5');
    clock.t += 5;
    assert.deepEqual(scanAll(kv), ['live']);
    assert.deepEqual(kv('SCAN', 'x'), { error: 'ERR invalid cursor' });
    assert.deepEqual(kv('SCAN', ' 1'), { error: 'ERR invalid cursor' });
    assert.deepEqual(kv('SCAN', '18446744073709551616'), { error: 'ERR invalid cursor' });
    assert.deepEqual(kv('SCAN', '18446744073709551615'), ['0', []]);
    assert.deepEqual(kv('SCAN', ''), ['0', ['live']], "strtoul reads '' as 0");
    assert.deepEqual(kv('SCAN', '0', 'COUNT', '0'), { error: 'ERR syntax error' });
    assert.deepEqual(kv('SCAN', '0', 'COUNT', 'x'), { error: 'ERR value is not an integer or out of range' });
    assert.deepEqual(kv('SCAN', '0', 'MATCH'), { error: 'ERR syntax error' });
    assert.deepEqual(kv('SCAN', '0', 'SORT', 'x'), { error: 'ERR syntax error' });
  });

  test('store stays compact under churn (tombstones are reclaimed)', () => {
    const { kv } = storeAt();
    for (let i = 0; i < 20_000; i++) {
      kv('SET', `k${i}`, 'x');
      kv('DEL', `k${i}`);
    }
    kv('SET', 'last', 'x');
    assert.deepEqual(kv('SCAN', '0', 'COUNT', '1'), ['0', ['last']]);
  });
});

describe('SCAN MATCH globs (Redis stringmatchlen)', () => {
  const keys = [
    'plain', 'a:b', 'a:b:c', 'star*', 'star*x', 'q?', 'q!', 'br[x]', 'br]', 'back\\slash', 'back\\', 'new\nline',
    'tab\tk', 'ünïcödé', 'é', '日本', 'x', 'y', 'z', '', 'A', '-', ']', '^',
  ];
  const { kv } = storeAt();
  for (const k of keys) kv('SET', k, 'v');
  const match = (pattern) => scanAll(kv, 'MATCH', pattern, 'COUNT', '3').sort();
  const expect = (pattern, expected) => test(`MATCH ${JSON.stringify(pattern)}`, () => {
    assert.deepEqual(match(pattern), [...expected].sort());
  });

  expect('*', keys);
  expect('**', keys.filter((k) => k !== ''));
  expect('', ['']);
  expect('a:*', ['a:b', 'a:b:c']);
  expect('a:?', ['a:b']);
  expect('star\\*', ['star*']);
  expect('star*', ['star*', 'star*x']);
  expect('star\\**', ['star*', 'star*x']);
  expect('q\\?', ['q?']);
  expect('q?', ['q?', 'q!']);
  expect('br\\[*', ['br[x]']);
  expect('br[[]x*', ['br[x]']);
  expect('br[]]', []); // `[]` is an empty class: the first `]` closes it
  expect('br\\]', ['br]']);
  expect('back\\\\slash', ['back\\slash']);
  expect('back\\\\', ['back\\']);
  expect('back\\', ['back\\'], 'a trailing backslash is literal');
  expect('new\nline', ['new\nline']);
  expect('new?line', ['new\nline']);
  expect('*\n*', ['new\nline']);
  expect('tab\tk', ['tab\tk']);
  expect('ü*', ['ünïcödé']);
  expect('?', ['x', 'y', 'z', 'A', '-', ']', '^'], '? matches one byte, so not é');
  expect('??', ['é', 'q?', 'q!']);
  expect('日?', []);
  expect('日???', ['日本']);
  expect('[xy]', ['x', 'y']);
  expect('[^xy]', ['z', 'A', '-', ']', '^']);
  expect('[x-z]', ['x', 'y', 'z']);
  expect('[z-x]', ['x', 'y', 'z']);
  expect('[\\]]', [']']);
  expect('[\\^]', ['^']);
  expect('[a-]', [']', '^']); // a range a..] (reversed: ]..a), then the class is unterminated
  expect('[x', ['x']); // unterminated: the class runs to the end of the pattern
  expect('[^', ['x', 'y', 'z', 'A', '-', ']', '^']);
  expect('[', []);
  expect('[-]', ['-']);
  expect('[^-xyz]', ['A', ']', '^']);
  // pattern bytes: [ 'A' '-' 0xC3 0xA9 ] *  → a range between 'A' (65) and 0xC3, which Redis compares
  // as a signed char (-61), so -61..65 (0x00-0x41 and 0xC3-0xFF), plus the byte 0xA9
  expect('[A-\u00e9]*', ['-', 'A', 'é', 'ünïcödé', '日本']);
  expect('*:*:*', ['a:b:c']);
  expect('*b*', ['a:b', 'a:b:c', 'br[x]', 'br]', 'back\\slash', 'back\\', 'tab\tk']);
});

describe('lock scripts without Lua', () => {
  test('acquire on a free key mints fence 1; a held key reports holder and PTTL', () => {
    const { kv, clock } = storeAt();
    assert.equal(acquire(kv, 'L', 'me', 30_000), 1);
    assert.equal(kv('GET', 'L'), 'me');
    assert.equal(kv('PTTL', 'L'), 30_000);
    clock.t += 1000;
    assert.deepEqual(acquire(kv, 'L', 'you', 30_000), ['me', 29_000]);
    assert.equal(kv('GET', 'L'), 'me');
    assert.equal(kv('GET', 'L:fence'), '1', 'a failed acquire mints no fence');
  });

  test('fences increase strictly per key, across releases and expiry', () => {
    const { kv, clock } = storeAt();
    const fences = [];
    for (let i = 0; i < 5; i++) {
      fences.push(acquire(kv, 'A', `h${i}`, 1000));
      if (i % 2) assert.equal(release(kv, 'A', `h${i}`), 1);
      else clock.t += 1000; // let it expire instead
    }
    assert.deepEqual(fences, [1, 2, 3, 4, 5]);
    assert.equal(acquire(kv, 'B', 'x', 1000), 1, 'another key has its own counter');
    assert.equal(acquire(kv, 'A', 'y', 1000), 6);
  });

  test('release: exact holder, prefix mode, wrong holder, missing lock', () => {
    const { kv } = storeAt();
    assert.equal(release(kv, 'L', 'me'), 0);
    acquire(kv, 'L', 'owner-1:run-7', 10_000);
    assert.equal(release(kv, 'L', 'owner-1:run-8'), -1);
    assert.equal(release(kv, 'L', 'owner-1:', 'exact'), -1, "a prefix in 'exact' mode is not the holder");
    assert.equal(release(kv, 'L', 'owner-2:'), -1, 'prefix matching is the default');
    assert.equal(release(kv, 'L', 'owner-2:', 'prefix'), -1);
    assert.equal(release(kv, 'L', 'run-7', 'prefix'), -1, 'prefix mode matches the start only');
    assert.equal(release(kv, 'L', 'owner-1:run-77', 'prefix'), -1, 'a longer "prefix" is not one');
    assert.equal(release(kv, 'L', 'owner-1:run-7', 'exact'), 1);
    assert.equal(kv('EXISTS', 'L'), 0);
    assert.equal(release(kv, 'L', 'owner-1:run-7'), 0);
    acquire(kv, 'L', 'owner-1:run-9', 10_000);
    assert.equal(release(kv, 'L', 'owner-1:'), 1);
    acquire(kv, 'L', 'ünï:1', 10_000);
    assert.equal(release(kv, 'L', 'ünï', 'prefix'), 1);
    acquire(kv, 'L', 'anyone', 10_000);
    assert.equal(release(kv, 'L', '', 'prefix'), 1, "Lua's string.sub(v, 1, 0) == '' matches any holder");
    assert.equal(kv('GET', 'L:fence'), '4', 'release leaves the fence counter');
  });

  test('a missing ARGV[1] fails inside the script as in Redis, unless the mode is exact', () => {
    const { kv } = storeAt();
    acquire(kv, 'L', 'me', 10_000);
    const failed = kv('EVALSHA', KV_SCRIPTS.release.sha1, '1', 'L');
    assert.match(failed.error, /^ERR user_script:3: attempt to get length of field '\?' \(a nil value\) script: [0-9a-f]{40}, on @user_script:3\.$/);
    assert.equal(kv('GET', 'L'), 'me');
    assert.match(kv('EVALSHA', KV_SCRIPTS.extend.sha1, '1', 'L').error, /attempt to get length/);
  });

  test('extend: renews value and TTL for the holder only', () => {
    const { kv, clock } = storeAt();
    assert.equal(extend(kv, 'L', 'me', 'exact', 5000, 'me2'), 0);
    acquire(kv, 'L', 'me', 1000);
    clock.t += 900;
    assert.equal(extend(kv, 'L', 'you', 'exact', 5000, 'you2'), -1);
    assert.equal(kv('PTTL', 'L'), 100);
    assert.equal(extend(kv, 'L', 'me', 'exact', 5000, 'me2'), 1);
    assert.equal(kv('GET', 'L'), 'me2');
    assert.equal(kv('PTTL', 'L'), 5000);
    assert.equal(extend(kv, 'L', 'm', 'prefix', 7000, 'me3'), 1);
    assert.deepEqual(inspect(kv, 'L'), ['me3', 7000, '1']);
    clock.t += 7000;
    assert.equal(extend(kv, 'L', 'me3', 'exact', 5000, 'late'), 0, 'an expired lock cannot be extended');
  });

  test('inspect: free, free after use, held', () => {
    const { kv, clock } = storeAt();
    assert.deepEqual(inspect(kv, 'L'), [null, -2, null]);
    acquire(kv, 'L', 'me', 2000);
    clock.t += 500;
    assert.deepEqual(inspect(kv, 'L'), ['me', 1500, '1']);
    release(kv, 'L', 'me');
    assert.deepEqual(inspect(kv, 'L'), [null, -2, '1']);
    kv('SET', 'P', 'forever');
    assert.deepEqual(inspect(kv, 'P'), ['forever', -1, null]);
  });

  test('EVAL runs the same scripts by their exact text; other scripts are refused', () => {
    const { kv } = storeAt();
    assert.equal(kv('EVAL', KV_SCRIPTS.acquire.lua, '2', 'L', 'L:fence', 'me', '1000'), 1);
    assert.deepEqual(kv('EVAL', KV_SCRIPTS.inspect.lua, '2', 'L', 'L:fence'), ['me', 1000, '1']);
    assert.equal(kv('EVAL', KV_SCRIPTS.release.lua, '2', 'L', 'L:fence', 'me'), 1);
    const other = kv('EVAL', 'return 1', '0');
    assert.match(other.error, /^ERR .*not supported/);
    assert.match(kv('EVAL', `${KV_SCRIPTS.acquire.lua} `, '2', 'L', 'F', 'v', '1').error, /not supported/, 'text must match exactly');
  });

  test('EVALSHA: unknown sha is NOSCRIPT; the sha is case-insensitive; numkeys is checked', () => {
    const { kv } = storeAt();
    assert.deepEqual(kv('EVALSHA', '0'.repeat(40), '0'), NOSCRIPT);
    assert.deepEqual(kv('EVALSHA', 'abc', '0'), NOSCRIPT);
    assert.deepEqual(kv('EVALSHA', 'abc', 'x'), NOSCRIPT, 'a sha of the wrong length is NOSCRIPT before anything else');
    assert.deepEqual(kv('EVALSHA', '0'.repeat(40), 'x'), { error: 'ERR value is not an integer or out of range' });
    assert.deepEqual(kv('EVALSHA', KV_SCRIPTS.inspect.sha1, '3', 'a'), { error: "ERR Number of keys can't be greater than number of args" });
    assert.deepEqual(kv('EVALSHA', KV_SCRIPTS.inspect.sha1, '-1', 'a'), { error: "ERR Number of keys can't be negative" });
    assert.equal(kv('EVALSHA', KV_SCRIPTS.acquire.sha1.toUpperCase(), '2', 'L', 'F', 'v', '100'), 1);
  });

  test('SCRIPT LOAD returns each sha1; SCRIPT EXISTS; SCRIPT FLUSH keeps them', () => {
    const { kv } = storeAt();
    for (const { sha1, lua } of Object.values(KV_SCRIPTS)) assert.equal(kv('SCRIPT', 'LOAD', lua), sha1);
    assert.match(kv('SCRIPT', 'LOAD', 'return 1').error, /not supported/);
    assert.deepEqual(kv('script', 'exists', KV_SCRIPTS.release.sha1, '0'.repeat(40), KV_SCRIPTS.extend.sha1.toUpperCase()), [1, 0, 1]);
    assert.equal(kv('SCRIPT', 'FLUSH'), 'OK');
    assert.deepEqual(inspect(kv, 'L'), [null, -2, null]);
  });

  test('a failing redis.call ends the script with Redis\'s error text; earlier writes stay', () => {
    const { kv } = storeAt();
    const sha = KV_SCRIPTS.acquire.sha1;
    assert.deepEqual(kv('EVALSHA', sha, '2', 'L', 'F', 'v', '0'),
      { error: `ERR invalid expire time in 'set' command script: ${sha}, on @user_script:1.` });
    assert.deepEqual(kv('EVALSHA', sha, '2', 'L', 'F', 'v', 'soon'),
      { error: `ERR value is not an integer or out of range script: ${sha}, on @user_script:1.` });
    assert.deepEqual(kv('EVALSHA', sha, '2', 'L', 'F', 'v'),
      { error: `ERR Lua redis lib command arguments must be strings or integers script: ${sha}, on @user_script:1.` });
    assert.deepEqual(kv('EVALSHA', sha, '1', 'L', 'v', '1000'),
      { error: `ERR Lua redis lib command arguments must be strings or integers script: ${sha}, on @user_script:2.` });
    assert.equal(kv('GET', 'L'), 'v', 'the SET before the failing INCR is not rolled back');
    kv('SET', 'F2', 'not a number');
    assert.deepEqual(kv('EVALSHA', sha, '2', 'L2', 'F2', 'v', '1000'),
      { error: `ERR value is not an integer or out of range script: ${sha}, on @user_script:2.` });
    const ext = KV_SCRIPTS.extend.sha1;
    assert.deepEqual(kv('EVALSHA', ext, '1', 'L', 'v', 'exact'),
      { error: `ERR Lua redis lib command arguments must be strings or integers script: ${ext}, on @user_script:4.` });
    assert.equal(kv('EVALSHA', ext, '1', 'L', 'w', 'exact'), -1, 'missing ARGV only matters on the path that uses it');
    assert.deepEqual(kv('EVALSHA', KV_SCRIPTS.inspect.sha1, '1', 'L'),
      { error: `ERR Lua redis lib command arguments must be strings or integers script: ${KV_SCRIPTS.inspect.sha1}, on @user_script:1.` });
  });
});

describe('hot path: exact integers, any-case words, repeated lock cycles', () => {
  // Integers of up to 15 digits take a plain-number path, longer ones Redis's int64 arithmetic in
  // BigInts; both must give the exact answer around the switch and around 2^53.
  test('TTLs and deadlines are exact on both sides of the fast path', () => {
    const { kv, clock } = storeAt(1_700_000_000_000);
    const pttlAfter = (...args) => {
      assert.equal(kv(...args), args[0] === 'SET' ? 'OK' : 1, args.join(' '));
      return kv('PTTL', args[1]);
    };
    assert.equal(pttlAfter('SET', 'k', 'v', 'PX', '999999999999999'), 999_999_999_999_999);
    assert.equal(pttlAfter('SET', 'k', 'v', 'PX', '1000000000000000'), 1_000_000_000_000_000);
    assert.equal(pttlAfter('SET', 'k', 'v', 'EX', '9007199254'), 9_007_199_254_000);
    // now + ttl above 2^53: computed in int64, still exact here (the deadline is an even number)
    assert.equal(pttlAfter('SET', 'k', 'v', 'EX', '9007199254740'), 9_007_199_254_740_000);
    assert.equal(pttlAfter('SET', 'k', 'v', 'PXAT', String(clock.t + 999_999_999_999_999)), 999_999_999_999_999);
    assert.equal(pttlAfter('SET', 'k', 'v', 'EXAT', String(clock.t / 1000 + 999_999_999_999)), 999_999_999_999_000);
    assert.equal(pttlAfter('PEXPIRE', 'k', '999999999999999'), 999_999_999_999_999);
    assert.equal(pttlAfter('PEXPIRE', 'k', '1000000000000000'), 1_000_000_000_000_000);
    assert.equal(pttlAfter('EXPIRE', 'k', '9007199254740'), 9_007_199_254_740_000);
    assert.equal(kv('PEXPIRE', 'k', '-999999999999999'), 1);
    assert.equal(kv('EXISTS', 'k'), 0, 'a deadline in the past deletes the key');
    kv('SET', 'k', 'v');
    assert.equal(kv('EXPIRE', 'k', '-1000000000000000'), 1);
    assert.equal(kv('EXISTS', 'k'), 0);
    assert.deepEqual(kv('SET', 'k', 'v', 'PX', '-999999999999999'), { error: "ERR invalid expire time in 'set' command" });
    assert.deepEqual(kv('SET', 'k', 'v', 'PX', '0999'), { error: 'ERR value is not an integer or out of range' });
    assert.deepEqual(kv('SET', 'k', 'v', 'PX', '-0'), { error: 'ERR value is not an integer or out of range' });
  });

  test('INCR is exact across the fast path and beyond 2^53', () => {
    const { kv } = storeAt();
    const steps = [
      ['999999999999998', '999999999999999', '1000000000000000', '1000000000000001'],
      ['-1000000000000001', '-1000000000000000', '-999999999999999', '-999999999999998'],
      ['-2', '-1', '0', '1'],
      ['9007199254740990', '9007199254740991', '9007199254740992', '9007199254740993'],
    ];
    for (const [start, ...next] of steps) {
      kv('SET', 'n', start);
      for (const expected of next) {
        assert.equal(kv('INCR', 'n'), Number(expected));
        assert.equal(kv('GET', 'n'), expected, 'the stored text is exact');
      }
    }
  });

  test('numkeys of any size: too many keys, negative, or not an integer', () => {
    const { kv } = storeAt();
    const sha = KV_SCRIPTS.inspect.sha1;
    const tooMany = { error: "ERR Number of keys can't be greater than number of args" };
    const negative = { error: "ERR Number of keys can't be negative" };
    assert.deepEqual(kv('EVALSHA', sha, '999999999999999', 'a'), tooMany);
    assert.deepEqual(kv('EVALSHA', sha, '9223372036854775807', 'a'), tooMany);
    assert.deepEqual(kv('EVALSHA', sha, '-999999999999999', 'a'), negative);
    assert.deepEqual(kv('EVALSHA', sha, '-9223372036854775808', 'a'), negative);
    assert.deepEqual(kv('EVALSHA', sha, '9223372036854775808', 'a'), { error: 'ERR value is not an integer or out of range' });
    assert.deepEqual(kv('EVALSHA', sha, '02', 'a', 'b'), { error: 'ERR value is not an integer or out of range' });
  });

  test('command words, options, subcommands and shas in any case; long words are never mistaken', () => {
    const { kv } = storeAt();
    const mixed = (word) => [...word].map((c, i) => (i % 2 ? c.toLowerCase() : c.toUpperCase())).join('');
    assert.equal(kv('sEt', 'k', 'v', 'pX', '5000', 'nX'), 'OK');
    assert.equal(kv('SeT', 'k', 'w', 'Xx', 'KeEpTtL', 'gEt'), 'v');
    assert.equal(kv('pTtL', 'k'), 5000);
    assert.equal(kv('PeXpIrE', 'k', '9000', 'gT'), 1);
    assert.equal(kv('fLuShAlL', 'aSyNc'), 'OK');
    assert.deepEqual(acquire((...a) => kv(...a.map((w, i) => (i === 0 || i === 1 ? mixed(w) : w))), 'L', 'me', 1000), 1);
    assert.deepEqual(kv('sCrIpT', 'eXiStS', mixed(KV_SCRIPTS.release.sha1)), [1]);
    assert.equal(kv('script', 'fLuSh', 'SyNc'), 'OK');
    assert.deepEqual(kv('GETGETGETGET', 'k'), { error: "ERR unknown command 'GETGETGETGET', with args beginning with: 'k' " });
    assert.deepEqual(kv('SET', 'k', 'v', 'KEEPTTLKEEPTTL'), { error: 'ERR syntax error' });
    assert.deepEqual(kv('Gét', 'k'), { error: "ERR unknown command 'Gét', with args beginning with: 'k' " });
    // non-ASCII letters are not case-folded, as in Redis's strcasecmp: the Kelvin sign is not a K
    assert.deepEqual(kv('SET', 'k', 'v', '\u212AEEPTTL'), { error: 'ERR syntax error' });
    const huge = 'X'.repeat(1_000_000);
    assert.match(kv(huge, 'k').error, /^ERR unknown command 'X{128}', with args/);
  });

  test('many lock cycles with the core\'s arguments: fences count up, nothing piles up', () => {
    const { kv, clock } = storeAt();
    const lockId = 'bench-t-1795616719818-a8dafa5dce8934d5';
    const value = JSON.stringify({ lockId, lockedAt: '2026-11-25T14:00:00.000Z', processId: 'instance-0011223344556677', expiresAt: '2026-11-25T14:01:00.000Z' });
    const prefix = `{"lockId":${JSON.stringify(lockId)},`;
    for (let i = 1; i <= 5000; i++) {
      assert.equal(acquire(kv, 'cpu:bench:t', value, 60_000), i);
      if (i % 7 === 0) assert.deepEqual(acquire(kv, 'cpu:bench:t', 'other', 60_000), [value, 60_000]);
      if (i % 3 === 0) clock.t += 60_000; // let it expire instead of releasing it
      else assert.equal(release(kv, 'cpu:bench:t', prefix, 'prefix'), 1);
      if (i % 11 === 0) assert.equal(release(kv, 'cpu:bench:t', prefix, 'prefix'), 0);
    }
    assert.equal(kv('DBSIZE'), 1);
    assert.deepEqual(scanAll(kv), ['cpu:bench:t:fence']);
    assert.deepEqual(kv('SCAN', '0', 'COUNT', '1'), ['0', ['cpu:bench:t:fence']], 'one page holds the whole keyspace');
  });
});

describe('original face: get / set / delete (checklist 5-7)', () => {
  test('5: get missing → null; set → true; nx on a live key → false keeping the old value; nx over an expired key → true; xx', async () => {
    const { store, clock } = storeAt();
    assert.equal(await store.get('k'), null);
    assert.equal(await store.set('k', 'a'), true);
    assert.equal(await store.set('k', 'b', { condition: 'nx' }), false);
    assert.equal(await store.get('k'), 'a');
    assert.equal(await store.set('t', 'old', { ttl: 1 }), true);
    clock.t += 1000;
    assert.equal(await store.set('t', 'new', { condition: 'nx', ttl: 5 }), true);
    assert.equal(await store.get('t'), 'new');
    assert.equal(await store.set('missing', 'x', { condition: 'xx' }), false);
    assert.equal(await store.get('missing'), null);
    assert.equal(await store.set('e', 'x', { ttl: 1 }), true);
    clock.t += 1000;
    assert.equal(await store.set('e', 'y', { condition: 'xx' }), false, 'xx on an expired key');
    assert.equal(await store.get('e'), null);
    assert.equal(await store.set('k', 'c', { condition: 'xx' }), true);
    assert.equal(await store.get('k'), 'c');
    assert.equal(await store.set('k', 'd', { condition: 'sometimes' }), true, 'an unknown condition acts unconditionally');
    assert.equal(await store.get('k'), 'd');
  });

  test('6: ttl in seconds; expiry removes; ttl 0 or none never expires; a plain set clears the TTL', async () => {
    const { store, clock } = storeAt();
    await store.set('k', 'v', { ttl: 2 });
    assert.equal(store.command(['PTTL', 'k']), 2000);
    clock.t += 1999;
    assert.equal(await store.get('k'), 'v');
    clock.t += 1; // deadline <= now: expired (the original still answered at exactly the deadline)
    assert.equal(await store.get('k'), null);
    assert.equal(store.command(['DBSIZE']), 0, 'the expired entry is gone');
    await store.set('zero', 'v', { ttl: 0 });
    await store.set('none', 'v');
    await store.set('undef', 'v', undefined);
    clock.t += 10 ** 12;
    assert.equal(await store.get('zero'), 'v');
    assert.equal(await store.get('none'), 'v');
    assert.equal(await store.get('undef'), 'v');
    await store.set('k', 'v', { ttl: 5 });
    await store.set('k', 'w');
    clock.t += 10_000;
    assert.equal(await store.get('k'), 'w');
    await store.set('half', 'v', { ttl: 0.5 });
    assert.equal(store.command(['PTTL', 'half']), 500);
  });

  test('7: delete is true once, then false; get returns the stored reference', async () => {
    const { store, clock } = storeAt();
    const value = { lockedAt: new Date(0).toISOString(), nested: [1, 2] };
    await store.set('k', value);
    assert.equal(await store.get('k'), value);
    (await store.get('k')).nested.push(3);
    assert.deepEqual(value.nested, [1, 2, 3]);
    assert.equal(await store.delete('k'), true);
    assert.equal(await store.delete('k'), false);
    assert.equal(await store.get('k'), null);
    await store.set('t', 'v', { ttl: 1 });
    clock.t += 1000;
    assert.equal(await store.delete('t'), false, 'an expired key counts as missing');
  });

  test('both faces share one keyspace', async () => {
    const { store, kv, clock } = storeAt();
    await store.set('obj', { a: 1, b: 'x' });
    assert.equal(kv('GET', 'obj'), '{"a":1,"b":"x"}');
    await store.set('num', 41);
    assert.equal(kv('INCR', 'num'), 42);
    assert.equal(await store.get('num'), '42');
    await store.set('odd', undefined);
    assert.equal(typeof kv('GET', 'odd'), 'string');
    await store.set('big', 10n);
    assert.equal(kv('GET', 'big'), '10');
    kv('SET', 's', 'text', 'PX', '3000');
    assert.equal(await store.get('s'), 'text');
    assert.equal(await store.set('s', 'other', { condition: 'nx' }), false);
    await store.set('lock', 'holder', { ttl: 10 });
    assert.deepEqual(inspect(kv, 'lock'), ['holder', 10_000, null]);
    assert.equal(release(kv, 'lock', 'holder'), 1);
    assert.equal(await store.get('lock'), null);
    assert.equal(acquire(kv, 'taken', 'x', 1000), 1);
    assert.equal(await store.set('taken', 'y', { condition: 'nx' }), false);
    clock.t += 1000;
    assert.equal(await store.set('taken', 'y', { condition: 'nx' }), true);
    assert.deepEqual(scanAll(kv, 'MATCH', 'o*').sort(), ['obj', 'odd']);
  });

  test('the default clock is Date.now', async () => {
    const store = new InMemoryKVStore();
    assert.equal(store.command(['SET', 'k', 'v', 'PX', '100000']), 'OK');
    const pttl = store.command(['PTTL', 'k']);
    assert.ok(pttl > 99_000 && pttl <= 100_000, String(pttl));
    assert.throws(() => new InMemoryKVStore({ now: 5 }), TypeError);
  });
});

test('the adapter uses no Node-only API and imports package internals only as #internal/', () => {
  const source = readFileSync(new URL('../../adapters/kv-memory.js', import.meta.url), 'utf8');
  const code = source.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
  for (const word of ['process', 'Buffer', 'require', 'setTimeout', 'setInterval', 'node:', 'globalThis']) {
    assert.ok(!new RegExp(`\\b${word}\\b`).test(code), `uses ${word}`);
  }
  const imports = [...code.matchAll(/\bimport\b[^'"]*['"]([^'"]+)['"]/g)].map((m) => m[1]);
  assert.deepEqual(imports, ['#internal/generated/constants.js']);
});
