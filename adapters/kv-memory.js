// The embedded default KV store: an in-memory keyspace with Redis semantics for the commands the
// lock core sends, so every KV feature works with no server. No dependencies and no platform APIs
// beyond the language (no process, Buffer or timers): it runs in Node, workerd, Vercel Edge and
// browsers alike. Expiry is lazy, by comparing each key's deadline with the clock when a command
// looks at it (plus a small sweep on inserts, so churn over distinct keys cannot pile up garbage).
import { KV_SCRIPTS } from '#internal/generated/constants.js';

const LLONG_MAX = 2n ** 63n - 1n;
const LLONG_MIN = -(2n ** 63n);
const ULONG_LIMIT = 2n ** 64n;

const ERR_SYNTAX = 'ERR syntax error';
const ERR_NOT_INTEGER = 'ERR value is not an integer or out of range';
const ERR_NOSCRIPT = 'NOSCRIPT No matching script. Please use EVAL.';
const ERR_SCRIPT_ARG = 'ERR Lua redis lib command arguments must be strings or integers';
const ERR_OTHER_SCRIPT =
  "ERR InMemoryKVStore runs only the lock protocol's scripts (acquire, release, extend, inspect); other scripts are not supported";

/** Arity of each command as Redis declares it: n = exactly n words, -n = at least n. */
const ARITY = new Map([
  ['ping', -1], ['echo', 2], ['get', 2], ['set', -3], ['del', -2], ['exists', -2], ['pttl', 2],
  ['ttl', 2], ['pexpire', -3], ['expire', -3], ['incr', 2], ['scan', -2], ['eval', -3],
  ['evalsha', -3], ['script', -2], ['flushall', -1], ['flushdb', -1], ['dbsize', 1],
]);
const SCRIPT_ARITY = new Map([['load', 3], ['exists', -3], ['flush', -2]]);

/** A Redis error reply. Redis turns line breaks in error text into spaces; so do we. */
function errorReply(message) {
  return { error: message.replace(/[\r\n]/g, ' ') };
}

/** Lower-cases ASCII letters only, as Redis's strcasecmp compares command words. */
function asciiLower(text) {
  return text.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/** Redis's string2ll: `0` or `-?[1-9][0-9]*`, at most 20 characters, within int64. */
function parseInt64(text) {
  if (text.length === 0 || text.length > 20 || !/^(?:0|-?[1-9][0-9]*)$/.test(text)) return null;
  const value = BigInt(text);
  return value < LLONG_MIN || value > LLONG_MAX ? null : value;
}

/** SCAN's cursor, read like C's strtoul (a sign is allowed and `-n` wraps; '' is 0). */
function parseCursor(text) {
  const match = /^([+-]?)([0-9]*)$/.exec(text);
  if (match === null || (match[2] === '' && text !== '')) return null;
  let value = match[2] === '' ? 0n : BigInt(match[2]);
  if (value >= ULONG_LIMIT) return null;
  if (match[1] === '-') value = (ULONG_LIMIT - value) % ULONG_LIMIT;
  return value;
}

/** How a stored value reads through the protocol face: strings as they are, anything else as JSON. */
function asRedisString(value) {
  if (typeof value === 'string') return value;
  try {
    const json = JSON.stringify(value);
    if (typeof json === 'string') return json;
  } catch {
    // not serialisable (a BigInt, a cycle): fall through
  }
  try {
    return String(value);
  } catch {
    return '';
  }
}

// ---- MATCH patterns: Redis's stringmatchlen(), over UTF-8 bytes --------------------------------

const utf8 = new TextEncoder();
const STAR = 0;
const ANY = 1;
const BYTE = 2;
const CLASS = 3;
const signedByte = (b) => (b > 127 ? b - 256 : b);

/**
 * Compiles a glob the way Redis's stringmatchlen() reads it: `*`, `?`, `[...]` (with `^`, ranges
 * `a-z` in either order, `\` escapes) and `\` escapes; a trailing `\` is a literal backslash, an
 * unterminated `[` runs to the end of the pattern. Matching is byte-wise on UTF-8 (`?` matches one
 * byte, not one character), and range bounds compare as signed chars, as Redis does on x86-64.
 */
function compileGlob(pattern) {
  const p = utf8.encode(pattern);
  const n = p.length;
  const tokens = [];
  let i = 0;
  while (i < n) {
    const b = p[i];
    if (b === 0x2a) {
      if (tokens.length === 0 || tokens[tokens.length - 1].kind !== STAR) tokens.push({ kind: STAR });
      i++;
    } else if (b === 0x3f) {
      tokens.push({ kind: ANY });
      i++;
    } else if (b === 0x5b) {
      i++;
      const negate = i < n && p[i] === 0x5e;
      if (negate) i++;
      const bytes = new Set();
      const ranges = [];
      for (;;) {
        const left = n - i;
        if (left >= 2 && p[i] === 0x5c) {
          bytes.add(p[i + 1]);
          i += 2;
        } else if (left > 0 && p[i] === 0x5d) {
          i++;
          break;
        } else if (left === 0) {
          break;
        } else if (left >= 3 && p[i + 1] === 0x2d) {
          const a = signedByte(p[i]);
          const z = signedByte(p[i + 2]);
          ranges.push(a <= z ? [a, z] : [z, a]);
          i += 3;
        } else {
          bytes.add(p[i]);
          i++;
        }
      }
      tokens.push({ kind: CLASS, negate, bytes, ranges });
    } else if (b === 0x5c && n - i >= 2) {
      tokens.push({ kind: BYTE, byte: p[i + 1] });
      i += 2;
    } else {
      tokens.push({ kind: BYTE, byte: b });
      i++;
    }
  }
  return (key) => globMatch(tokens, n, utf8.encode(key));
}

function tokenMatches(token, byte) {
  switch (token.kind) {
    case ANY:
      return true;
    case BYTE:
      return token.byte === byte;
    default: {
      let hit = token.bytes.has(byte);
      if (!hit) {
        const c = signedByte(byte);
        hit = token.ranges.some(([a, z]) => c >= a && c <= z);
      }
      return hit !== token.negate;
    }
  }
}

/** Classic iterative glob matching (backtrack to the last `*`); each other token eats one byte. */
function globMatch(tokens, patternBytes, s) {
  // Redis compares nothing against an empty string: only an empty pattern matches it (even `**`
  // does not; SCAN special-cases the pattern `*` itself).
  if (s.length === 0) return patternBytes === 0;
  let t = 0;
  let i = 0;
  let starT = -1;
  let starI = 0;
  while (i < s.length) {
    if (t < tokens.length && tokens[t].kind === STAR) {
      starT = t++;
      starI = i;
    } else if (t < tokens.length && tokenMatches(tokens[t], s[i])) {
      t++;
      i++;
    } else if (starT >= 0) {
      t = starT + 1;
      i = ++starI;
    } else {
      return false;
    }
  }
  while (t < tokens.length && tokens[t].kind === STAR) t++;
  return t === tokens.length;
}

// ---- the lock protocol's scripts, without Lua ----------------------------------------------------

/** A `redis.call` inside a script failed: the script stops there (earlier writes stay done). */
class ScriptCallError {
  constructor(message, line) {
    this.message = message;
    this.line = line;
  }
}

/** Lua's `v == ARGV[1] or (ARGV[2] == 'prefix' and string.sub(v, 1, #ARGV[1]) == ARGV[1])`. */
function isHolder(value, ARGV) {
  // For well-formed strings a UTF-16 prefix is exactly a UTF-8 byte prefix, which is what the Lua compares.
  return value === ARGV[0] || (ARGV[1] === 'prefix' && value.startsWith(ARGV[0]));
}

/**
 * Each script transcribed from its Lua (core/constants.json): `call(line, ...words)` is
 * `redis.call` on that line of the script, Lua `nil`/`false` is `null`, tables are arrays.
 */
const SCRIPT_BODIES = {
  acquire(call, KEYS, ARGV) {
    if (call(1, 'SET', KEYS[0], ARGV[0], 'NX', 'PX', ARGV[1]) !== null) {
      return [1, call(2, 'INCR', KEYS[1])];
    }
    return [0, call(4, 'GET', KEYS[0]), call(4, 'PTTL', KEYS[0])];
  },
  release(call, KEYS, ARGV) {
    const value = call(1, 'GET', KEYS[0]);
    if (value === null) return 0;
    if (isHolder(value, ARGV)) {
      call(4, 'DEL', KEYS[0]);
      return 1;
    }
    return -1;
  },
  extend(call, KEYS, ARGV) {
    const value = call(1, 'GET', KEYS[0]);
    if (value === null) return 0;
    if (isHolder(value, ARGV)) {
      call(4, 'SET', KEYS[0], ARGV[3], 'PX', ARGV[2]);
      return 1;
    }
    return -1;
  },
  inspect(call, KEYS) {
    return [call(1, 'GET', KEYS[0]), call(1, 'PTTL', KEYS[0]), call(1, 'GET', KEYS[1])];
  },
};

const SCRIPT_BY_SHA = new Map();
const SHA_BY_SOURCE = new Map();
for (const [name, script] of Object.entries(KV_SCRIPTS)) {
  SCRIPT_BY_SHA.set(script.sha1, SCRIPT_BODIES[name]);
  SHA_BY_SOURCE.set(script.lua, script.sha1);
}

// ---- the store -----------------------------------------------------------------------------------

/**
 * The embedded default KV store: one in-memory keyspace with two faces.
 *
 * - **Protocol face** `command(args)`: one Redis command as an array of strings, answered
 *   synchronously in the host-call reply encoding (nil → `null`, integer → number, string → string,
 *   array → array, error → `{ error }` returned, never thrown). Supported: PING, ECHO, GET, SET
 *   (NX|XX, EX|PX|EXAT|PXAT|KEEPTTL, GET), DEL, EXISTS, PTTL, TTL, PEXPIRE, EXPIRE (NX|XX|GT|LT),
 *   INCR, SCAN (MATCH, COUNT, TYPE), EVAL, EVALSHA, SCRIPT LOAD|EXISTS|FLUSH, FLUSHALL, FLUSHDB,
 *   DBSIZE. Replies and error texts are Redis 7.0's.
 * - **Original face** `get` / `set` / `delete` (async), the earlier package's `KVStore` contract.
 *
 * Both faces share the keyspace. Values written by `set()` may be any JS value and are returned by
 * reference; the protocol face reads a non-string value as its JSON text.
 *
 * Differences from a Redis server, all deliberate:
 * - A key is expired once `now >= expiresAt` and is then invisible to every command and to both
 *   faces (so a live key's PTTL is always ≥ 1). Redis itself still serves a key during its final
 *   millisecond (PTTL 0); the original package mixed `>` and `<` at that boundary.
 * - Scripts: only the lock protocol's four scripts (`KV_SCRIPTS`) run, implemented in JS with the
 *   same replies and error texts. They are always loaded: EVALSHA works without SCRIPT LOAD, and
 *   SCRIPT FLUSH does not unload them. EVAL or SCRIPT LOAD of any other script is an error reply.
 * - The keyspace holds strings only (no lists, hashes, ...); other commands are unknown commands.
 * - SCAN walks keys in creation order, so its cursors differ from Redis's, with the same guarantee:
 *   a full walk returns every key that existed throughout it exactly once.
 */
export class InMemoryKVStore {
  /** key → entry `{ key, value, expiresAt (ms, or undefined for no expiry), seq }`. */
  #entries = new Map();
  /** Entries in creation order (ascending seq) for SCAN; an entry no longer in #entries is dead. */
  #order = [];
  #dead = 0;
  #nextSeq = 1;
  #sweep = 0;
  #clock;

  /**
   * @param {{ now?: () => number }} [options] `now`: the clock in epoch milliseconds
   *   (default `Date.now`); tests inject one to control expiry.
   */
  constructor(options = {}) {
    const now = options?.now ?? Date.now;
    if (typeof now !== 'function') throw new TypeError('InMemoryKVStore: options.now must be a function');
    this.#clock = now;
  }

  // ---- protocol face ----

  /**
   * Runs one Redis command. Never throws: malformed input and Redis errors come back as
   * `{ error: string }`.
   * @param {string[]} args command name and arguments, e.g. `['SET', 'k', 'v', 'PX', '1000']`
   * @returns {null | number | string | Array<any> | { error: string }}
   */
  command(args) {
    if (!Array.isArray(args) || args.length === 0) {
      return errorReply('ERR a command must be a non-empty array of strings');
    }
    for (let i = 0; i < args.length; i++) {
      if (typeof args[i] !== 'string') return errorReply('ERR command arguments must be strings');
    }
    return this.#dispatch(args, this.#now());
  }

  // ---- original face ----

  /**
   * The value stored at `key` (the same reference that was stored), or `null` when the key is
   * missing or expired (an expired entry is removed).
   * @param {string} key
   * @returns {Promise<any>}
   */
  async get(key) {
    const entry = this.#live(String(key), this.#now());
    return entry === undefined ? null : entry.value;
  }

  /**
   * Stores `value` under `key`. `ttl` is in seconds; `0` or none means no expiry, and a write
   * without one clears an earlier expiry. `condition: 'nx'` writes only when the key is missing
   * or expired, `'xx'` only when it is live; any other condition is ignored (as the original did).
   * @param {string} key
   * @param {any} value
   * @param {{ ttl?: number, condition?: 'nx' | 'xx' }} [options]
   * @returns {Promise<boolean>} whether the value was written
   */
  async set(key, value, options = {}) {
    const now = this.#now();
    const name = String(key);
    const { ttl, condition } = options ?? {};
    if (condition === 'nx' || condition === 'xx') {
      const live = this.#live(name, now) !== undefined;
      if (condition === 'nx' ? live : !live) return false;
    }
    let expiresAt = ttl ? now + ttl * 1000 : undefined;
    if (expiresAt === Infinity || Number.isNaN(expiresAt)) expiresAt = undefined;
    this.#write(name, value, expiresAt, now);
    return true;
  }

  /**
   * Removes `key`: `true` if a live value was removed, else `false` (so `true` once, then `false`;
   * an expired key counts as missing, where the original answered `true` until a `get` purged it).
   * @param {string} key
   * @returns {Promise<boolean>}
   */
  async delete(key) {
    const name = String(key);
    if (this.#live(name, this.#now()) === undefined) return false;
    this.#remove(name);
    return true;
  }

  // ---- keyspace ----

  #now() {
    return Math.floor(Number(this.#clock()));
  }

  /** The live entry for `key`, dropping it if it has expired. */
  #live(key, now) {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= now) {
      this.#remove(key);
      return undefined;
    }
    return entry;
  }

  #remove(key) {
    if (this.#entries.delete(key)) this.#dead++;
  }

  /** Writes a value (replacing a live one in place, so SCAN keeps its position). */
  #write(key, value, expiresAt, now) {
    const entry = this.#live(key, now);
    if (expiresAt !== undefined && expiresAt <= now) {
      if (entry !== undefined) this.#remove(key);
      return;
    }
    if (entry !== undefined) {
      entry.value = value;
      entry.expiresAt = expiresAt;
      return;
    }
    this.#sweepSome(now);
    if (this.#dead > 64 && this.#dead * 2 > this.#order.length) {
      this.#order = this.#order.filter((e) => this.#entries.get(e.key) === e);
      this.#dead = 0;
      this.#sweep = 0;
    }
    const created = { key, value, expiresAt, seq: this.#nextSeq++ };
    this.#entries.set(key, created);
    this.#order.push(created);
  }

  /** Looks at two entries per insert, round robin, and drops them if expired. */
  #sweepSome(now) {
    for (let n = 0; n < 2 && this.#order.length > 0; n++) {
      if (this.#sweep >= this.#order.length) this.#sweep = 0;
      const entry = this.#order[this.#sweep++];
      if (this.#entries.get(entry.key) === entry) this.#live(entry.key, now);
    }
  }

  #flush() {
    this.#entries.clear();
    this.#order = [];
    this.#dead = 0;
    this.#sweep = 0;
  }

  // ---- commands ----

  #dispatch(args, now) {
    const name = asciiLower(args[0]);
    const arity = ARITY.get(name);
    if (arity === undefined) return unknownCommand(args);
    if (arity > 0 ? args.length !== arity : args.length < -arity) {
      return errorReply(`ERR wrong number of arguments for '${name}' command`);
    }
    switch (name) {
      case 'ping':
        return args.length === 1 ? 'PONG' : args.length === 2 ? args[1] : errorReply("ERR wrong number of arguments for 'ping' command");
      case 'echo':
        return args[1];
      case 'get': {
        const entry = this.#live(args[1], now);
        return entry === undefined ? null : asRedisString(entry.value);
      }
      case 'set':
        return this.#set(args, now);
      case 'del': {
        let removed = 0;
        for (let i = 1; i < args.length; i++) {
          if (this.#live(args[i], now) !== undefined) {
            this.#remove(args[i]);
            removed++;
          }
        }
        return removed;
      }
      case 'exists': {
        let found = 0;
        for (let i = 1; i < args.length; i++) if (this.#live(args[i], now) !== undefined) found++;
        return found;
      }
      case 'pttl':
        return this.#pttl(args[1], now);
      case 'ttl': {
        const ms = this.#pttl(args[1], now);
        return ms < 0 ? ms : Math.floor((ms + 500) / 1000);
      }
      case 'pexpire':
        return this.#expire(args, now, false);
      case 'expire':
        return this.#expire(args, now, true);
      case 'incr':
        return this.#incr(args[1], now);
      case 'scan':
        return this.#scan(args, now);
      case 'eval':
      case 'evalsha':
        return this.#eval(args, now, name === 'evalsha');
      case 'script':
        return this.#script(args);
      case 'flushall':
      case 'flushdb':
        if (args.length > 2 || (args.length === 2 && !['sync', 'async'].includes(asciiLower(args[1])))) {
          return errorReply(ERR_SYNTAX);
        }
        this.#flush();
        return 'OK';
      case 'dbsize': {
        let live = 0;
        for (const key of [...this.#entries.keys()]) if (this.#live(key, now) !== undefined) live++;
        return live;
      }
      default:
        return unknownCommand(args);
    }
  }

  /** SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL], parsed as Redis 7.0 does. */
  #set(args, now) {
    let nx = false;
    let xx = false;
    let get = false;
    let keepTtl = false;
    let expireKind = null; // 'ex' | 'px' | 'exat' | 'pxat'
    let expireText = null;
    for (let j = 3; j < args.length; j++) {
      const option = asciiLower(args[j]);
      const hasNext = j + 1 < args.length;
      if (option === 'nx' && !xx) nx = true;
      else if (option === 'xx' && !nx) xx = true;
      else if (option === 'get') get = true;
      else if (option === 'keepttl' && expireKind === null) keepTtl = true;
      else if (['ex', 'px', 'exat', 'pxat'].includes(option) && !keepTtl && hasNext &&
               (expireKind === null || expireKind === option)) {
        expireKind = option;
        expireText = args[++j];
      } else return errorReply(ERR_SYNTAX);
    }

    let expiresAt;
    if (expireKind !== null) {
      let ms = parseInt64(expireText);
      if (ms === null) return errorReply(ERR_NOT_INTEGER);
      const seconds = expireKind === 'ex' || expireKind === 'exat';
      if (ms <= 0n || (seconds && ms > LLONG_MAX / 1000n)) {
        return errorReply("ERR invalid expire time in 'set' command");
      }
      if (seconds) ms *= 1000n;
      if (expireKind === 'ex' || expireKind === 'px') ms += BigInt(now);
      if (ms > LLONG_MAX) return errorReply("ERR invalid expire time in 'set' command");
      expiresAt = Number(ms);
    }

    const key = args[1];
    const entry = this.#live(key, now);
    const previous = entry === undefined ? null : asRedisString(entry.value);
    if ((nx && entry !== undefined) || (xx && entry === undefined)) return get ? previous : null;
    if (keepTtl && entry !== undefined) expiresAt = entry.expiresAt;
    this.#write(key, args[2], expiresAt, now);
    return get ? previous : 'OK';
  }

  #pttl(key, now) {
    const entry = this.#live(key, now);
    if (entry === undefined) return -2;
    if (entry.expiresAt === undefined) return -1;
    return Math.ceil(entry.expiresAt - now);
  }

  /** EXPIRE / PEXPIRE key time [NX|XX|GT|LT] (Redis 7.0's expireGenericCommand). */
  #expire(args, now, seconds) {
    const command = seconds ? 'expire' : 'pexpire';
    const flags = new Set();
    for (let j = 3; j < args.length; j++) {
      const option = asciiLower(args[j]);
      if (!['nx', 'xx', 'gt', 'lt'].includes(option)) return errorReply(`ERR Unsupported option ${args[j]}`);
      flags.add(option);
    }
    if (flags.has('nx') && (flags.has('xx') || flags.has('gt') || flags.has('lt'))) {
      return errorReply('ERR NX and XX, GT or LT options at the same time are not compatible');
    }
    if (flags.has('gt') && flags.has('lt')) {
      return errorReply('ERR GT and LT options at the same time are not compatible');
    }
    let when = parseInt64(args[2]);
    if (when === null) return errorReply(ERR_NOT_INTEGER);
    const invalid = `ERR invalid expire time in '${command}' command`;
    if (seconds) {
      if (when > LLONG_MAX / 1000n || when < LLONG_MIN / 1000n) return errorReply(invalid);
      when *= 1000n;
    }
    if (when > LLONG_MAX - BigInt(now)) return errorReply(invalid);
    when += BigInt(now);

    const entry = this.#live(args[1], now);
    if (entry === undefined) return 0;
    const current = entry.expiresAt; // undefined: no expiry (infinite for GT, LT)
    const target = Number(when);
    if (flags.has('nx') && current !== undefined) return 0;
    if (flags.has('xx') && current === undefined) return 0;
    if (flags.has('gt') && (current === undefined || target <= current)) return 0;
    if (flags.has('lt') && current !== undefined && target >= current) return 0;
    if (when <= BigInt(now)) this.#remove(args[1]);
    else entry.expiresAt = target;
    return 1;
  }

  #incr(key, now) {
    const entry = this.#live(key, now);
    let value = 0n;
    if (entry !== undefined) {
      value = parseInt64(asRedisString(entry.value));
      if (value === null) return errorReply(ERR_NOT_INTEGER);
    }
    if (value === LLONG_MAX) return errorReply('ERR increment or decrement would overflow');
    value += 1n;
    if (entry !== undefined) entry.value = String(value); // keeps the key's expiry, as Redis does
    else this.#write(key, String(value), undefined, now);
    return Number(value);
  }

  /** SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]; the cursor is the next entry's seq. */
  #scan(args, now) {
    const cursor = parseCursor(args[1]);
    if (cursor === null) return errorReply('ERR invalid cursor');
    let count = 10;
    let match = null;
    let typeOk = true;
    for (let i = 2; i < args.length; i += 2) {
      const option = asciiLower(args[i]);
      if (i + 1 >= args.length) return errorReply(ERR_SYNTAX);
      if (option === 'count') {
        const n = parseInt64(args[i + 1]);
        if (n === null) return errorReply(ERR_NOT_INTEGER);
        if (n < 1n) return errorReply(ERR_SYNTAX);
        count = n > 1_000_000_000n ? 1_000_000_000 : Number(n);
      } else if (option === 'match') {
        match = args[i + 1] === '*' ? null : compileGlob(args[i + 1]);
      } else if (option === 'type') {
        typeOk = asciiLower(args[i + 1]) === 'string';
      } else {
        return errorReply(ERR_SYNTAX);
      }
    }

    const order = this.#order;
    const from = cursor === 0n ? 1 : cursor > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(cursor);
    let lo = 0;
    let hi = order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (order[mid].seq < from) lo = mid + 1;
      else hi = mid;
    }
    const keys = [];
    let i = lo;
    for (let visited = 0; i < order.length && visited < count; i++) {
      const entry = order[i];
      if (this.#entries.get(entry.key) !== entry) continue;
      if (this.#live(entry.key, now) === undefined) continue;
      visited++;
      if (typeOk && (match === null || match(entry.key))) keys.push(entry.key);
    }
    while (i < order.length && this.#entries.get(order[i].key) !== order[i]) i++;
    return [i < order.length ? String(order[i].seq) : '0', keys];
  }

  /** EVAL script numkeys key... arg... / EVALSHA sha1 numkeys key... arg... */
  #eval(args, now, bySha) {
    if (bySha && args[1].length !== 40) return errorReply(ERR_NOSCRIPT);
    const numkeys = parseInt64(args[2]);
    if (numkeys === null) return errorReply(ERR_NOT_INTEGER);
    if (numkeys > BigInt(args.length - 3)) return errorReply("ERR Number of keys can't be greater than number of args");
    if (numkeys < 0n) return errorReply("ERR Number of keys can't be negative");
    const sha = bySha ? asciiLower(args[1]) : SHA_BY_SOURCE.get(args[1]);
    const body = sha === undefined ? undefined : SCRIPT_BY_SHA.get(sha);
    if (body === undefined) return errorReply(bySha ? ERR_NOSCRIPT : ERR_OTHER_SCRIPT);

    const split = 3 + Number(numkeys);
    const call = (line, ...words) => {
      for (const word of words) if (typeof word !== 'string') throw new ScriptCallError(ERR_SCRIPT_ARG, line);
      const reply = this.#dispatch(words, now); // one clock reading for the whole script, as in Redis
      if (reply !== null && typeof reply === 'object' && !Array.isArray(reply)) throw new ScriptCallError(reply.error, line);
      return reply;
    };
    try {
      return body(call, args.slice(3, split), args.slice(split));
    } catch (failure) {
      if (!(failure instanceof ScriptCallError)) throw failure;
      return errorReply(`${failure.message} script: ${sha}, on @user_script:${failure.line}.`);
    }
  }

  /** SCRIPT LOAD | EXISTS | FLUSH. The four lock scripts are always loaded. */
  #script(args) {
    const sub = asciiLower(args[1]);
    const arity = SCRIPT_ARITY.get(sub);
    if (arity === undefined) {
      return errorReply(`ERR unknown subcommand '${args[1].slice(0, 128)}'. Try ${args[0].toUpperCase()} HELP.`);
    }
    if (arity > 0 ? args.length !== arity : args.length < -arity) {
      return errorReply(`ERR wrong number of arguments for 'script|${sub}' command`);
    }
    if (sub === 'load') return SHA_BY_SOURCE.get(args[2]) ?? errorReply(ERR_OTHER_SCRIPT);
    if (sub === 'exists') return args.slice(2).map((sha) => (SCRIPT_BY_SHA.has(asciiLower(sha)) ? 1 : 0));
    if (args.length === 2 || (args.length === 3 && ['sync', 'async'].includes(asciiLower(args[2])))) return 'OK';
    return errorReply('ERR SCRIPT FLUSH only support SYNC|ASYNC option');
  }
}

/** Redis 7.0's text for an unknown command, quoting up to about 128 characters of its arguments. */
function unknownCommand(args) {
  let quoted = '';
  for (let i = 1; i < args.length && quoted.length < 128; i++) {
    quoted += `'${args[i].slice(0, 128 - quoted.length)}' `;
  }
  return errorReply(`ERR unknown command '${args[0].slice(0, 128)}', with args beginning with: ${quoted}`);
}
