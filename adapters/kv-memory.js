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
const ERR_NIL_LENGTH = "ERR user_script:3: attempt to get length of field '?' (a nil value)";
const ERR_OTHER_SCRIPT =
  "ERR InMemoryKVStore runs only the lock protocol's scripts (acquire, release, extend, inspect); other scripts are not supported";

// ---- command words: case-insensitive lookups without regex or allocation on the common path ----

/** The longest word any of the lookup tables below holds ('flushall'); longer words never match. */
const MAX_WORD = 8;

/**
 * A lookup table keyed by lower-case words, also holding each word's all-upper-case spelling, so
 * the usual spellings hit on the first `get` and only mixed case pays for lower-casing.
 */
function wordTable(entries) {
  const table = new Map();
  for (const [word, value] of entries) {
    if (word.length > MAX_WORD) throw new Error(`wordTable: ${word} is longer than MAX_WORD`);
    table.set(word, value);
    table.set(word.toUpperCase(), value);
  }
  return table;
}

/** `word` looked up case-insensitively (ASCII letters only, as Redis's strcasecmp compares). */
function lookupWord(table, word) {
  const hit = table.get(word);
  if (hit !== undefined || word.length > MAX_WORD) return hit;
  return table.get(asciiLower(word));
}

/** Lower-cases ASCII letters only, as Redis's strcasecmp compares command words. */
function asciiLower(text) {
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 65 && c <= 90) {
      let out = text.slice(0, i);
      for (let j = i; j < n; j++) {
        const d = text.charCodeAt(j);
        out += d >= 65 && d <= 90 ? String.fromCharCode(d + 32) : text[j];
      }
      return out;
    }
  }
  return text;
}

const C_PING = 1;
const C_ECHO = 2;
const C_GET = 3;
const C_SET = 4;
const C_DEL = 5;
const C_EXISTS = 6;
const C_PTTL = 7;
const C_TTL = 8;
const C_PEXPIRE = 9;
const C_EXPIRE = 10;
const C_INCR = 11;
const C_SCAN = 12;
const C_EVAL = 13;
const C_EVALSHA = 14;
const C_SCRIPT = 15;
const C_FLUSH = 16;
const C_DBSIZE = 17;

/** Each command with its arity as Redis declares it: n = exactly n words, -n = at least n. */
const COMMANDS = wordTable(
  [
    ['ping', C_PING, -1], ['echo', C_ECHO, 2], ['get', C_GET, 2], ['set', C_SET, -3], ['del', C_DEL, -2],
    ['exists', C_EXISTS, -2], ['pttl', C_PTTL, 2], ['ttl', C_TTL, 2], ['pexpire', C_PEXPIRE, -3],
    ['expire', C_EXPIRE, -3], ['incr', C_INCR, 2], ['scan', C_SCAN, -2], ['eval', C_EVAL, -3],
    ['evalsha', C_EVALSHA, -3], ['script', C_SCRIPT, -2], ['flushall', C_FLUSH, -1], ['flushdb', C_FLUSH, -1],
    ['dbsize', C_DBSIZE, 1],
  ].map(([name, id, arity]) => [name, { name, id, arity }]),
);
const SCRIPT_SUBCOMMANDS = wordTable(
  [['load', 3], ['exists', -3], ['flush', -2]].map(([name, arity]) => [name, { name, arity }]),
);

const O_NX = 1;
const O_XX = 2;
const O_GET = 3;
const O_KEEPTTL = 4;
const O_EX = 5; // O_EX..O_PXAT are the expiry options
const O_PX = 6;
const O_EXAT = 7;
const O_PXAT = 8;
const SET_OPTIONS = wordTable([
  ['nx', O_NX], ['xx', O_XX], ['get', O_GET], ['keepttl', O_KEEPTTL], ['ex', O_EX], ['px', O_PX], ['exat', O_EXAT],
  ['pxat', O_PXAT],
]);

const F_NX = 1;
const F_XX = 2;
const F_GT = 4;
const F_LT = 8;
const EXPIRE_FLAGS = wordTable([['nx', F_NX], ['xx', F_XX], ['gt', F_GT], ['lt', F_LT]]);

const SCAN_OPTIONS = wordTable([['count', 1], ['match', 2], ['type', 3]]);
const FLUSH_MODES = wordTable([['sync', true], ['async', true]]);
const STRING_TYPE = wordTable([['string', true]]);

/** A Redis error reply. Redis turns line breaks in error text into spaces; so do we. */
function errorReply(message) {
  return { error: message.replace(/[\r\n]/g, ' ') };
}

// ---- integers ----

/**
 * The fast path of Redis's string2ll: a canonical integer (`0` or `-?[1-9][0-9]*`) of at most 15
 * digits, as a number (exact: below 2^53). `undefined` for anything else, valid or not: the caller
 * then asks parseInt64, which has the last word.
 */
function smallInt(text) {
  const n = text.length;
  if (n === 0 || n > 16) return undefined;
  let i = 0;
  let c = text.charCodeAt(0);
  const negative = c === 45; // '-'
  if (negative) {
    if (n === 1) return undefined;
    c = text.charCodeAt(1);
    i = 1;
  } else if (n > 15) {
    return undefined;
  }
  if (c === 48) return n === 1 ? 0 : undefined; // '0' alone; '-0', '01' are not canonical
  let value = 0;
  for (; i < n; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    value = value * 10 + d;
  }
  return negative ? -value : value;
}

/** Redis's string2ll: `0` or `-?[1-9][0-9]*`, at most 20 characters, within int64 (as a BigInt). */
function parseInt64(text) {
  if (text.length === 0 || text.length > 20 || !/^(?:0|-?[1-9][0-9]*)$/.test(text)) return null;
  const value = BigInt(text);
  return value < LLONG_MIN || value > LLONG_MAX ? null : value;
}

/** string2ll's answer as a number for comparisons only (inexact beyond 2^53), or null. */
function int64ForComparison(text) {
  const small = smallInt(text);
  if (small !== undefined) return small;
  const value = parseInt64(text);
  return value === null ? null : Number(value);
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

/**
 * SET's deadline for `EX|PX|EXAT|PXAT text` at `now`: epoch ms, or an error reply. Computed in
 * plain numbers when every step is an exact integer below 2^53 (the sum or product of two exact
 * integers is exact exactly when it is a safe integer), else in BigInts as Redis does in int64.
 */
function setDeadline(kind, text, now) {
  let ms = smallInt(text);
  if (ms !== undefined && ms > 0) {
    if (kind === O_EX || kind === O_EXAT) ms *= 1000;
    if (kind === O_EX || kind === O_PX) ms += now;
    if (Number.isSafeInteger(ms)) return ms;
  }
  return setDeadlineInt64(kind, text, now);
}

function setDeadlineInt64(kind, text, now) {
  let ms = parseInt64(text);
  if (ms === null) return errorReply(ERR_NOT_INTEGER);
  const seconds = kind === O_EX || kind === O_EXAT;
  if (ms <= 0n || (seconds && ms > LLONG_MAX / 1000n)) {
    return errorReply("ERR invalid expire time in 'set' command");
  }
  if (seconds) ms *= 1000n;
  if (kind === O_EX || kind === O_PX) ms += BigInt(now);
  if (ms > LLONG_MAX) return errorReply("ERR invalid expire time in 'set' command");
  return Number(ms);
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

// Each script is transcribed from its Lua (core/constants.json) into a method of the store below,
// which performs each `redis.call` directly on the keyspace with that command's replies and errors.
const S_ACQUIRE = 1;
const S_RELEASE = 2;
const S_EXTEND = 3;
const S_INSPECT = 4;
const SCRIPT_IDS = new Map([['acquire', S_ACQUIRE], ['release', S_RELEASE], ['extend', S_EXTEND], ['inspect', S_INSPECT]]);

/** Lower-case sha1 → `{ id, sha1 }`; the script text → the same. */
const SCRIPT_BY_SHA = new Map();
const SCRIPT_BY_SOURCE = new Map();
for (const [name, { sha1, lua }] of Object.entries(KV_SCRIPTS)) {
  const id = SCRIPT_IDS.get(name);
  if (id === undefined) continue; // a script this store does not implement: NOSCRIPT, as before
  const script = { id, sha1 };
  SCRIPT_BY_SHA.set(sha1, script);
  SCRIPT_BY_SOURCE.set(lua, script);
}

/** The script with this sha1 (case-insensitive), or undefined. */
function scriptBySha(sha) {
  return SCRIPT_BY_SHA.get(sha) ?? SCRIPT_BY_SHA.get(asciiLower(sha));
}

/** A `redis.call` on `line` of a script failed: the script stops there (earlier writes stay done). */
function scriptError(message, sha, line) {
  return errorReply(`${message} script: ${sha}, on @user_script:${line}.`);
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
 *
 * It is on the lock hot path, so a command costs no regex, BigInt, closure or array copy unless it
 * needs one (mixed-case words, integers beyond 15 digits, SCAN, error replies).
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
    const entry = this.#live(name, now);
    if (condition === 'nx' ? entry !== undefined : condition === 'xx' && entry === undefined) return false;
    let expiresAt = ttl ? now + ttl * 1000 : undefined;
    if (expiresAt === Infinity || Number.isNaN(expiresAt)) expiresAt = undefined;
    this.#put(name, entry, value, expiresAt, now);
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

  /**
   * Writes a value, given `entry = this.#live(key, now)`: replaces a live one in place (so SCAN
   * keeps its position), creates a new entry otherwise; a deadline <= now deletes the key instead.
   */
  #put(key, entry, value, expiresAt, now) {
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
    if (this.#dead > 64 && this.#dead * 2 > this.#order.length) this.#compact();
    const created = { key, value, expiresAt, seq: this.#nextSeq++ };
    this.#entries.set(key, created);
    this.#order.push(created);
  }

  /** Drops dead entries from #order, in place. */
  #compact() {
    const order = this.#order;
    const entries = this.#entries;
    let kept = 0;
    for (let i = 0; i < order.length; i++) {
      const entry = order[i];
      if (entries.get(entry.key) === entry) order[kept++] = entry;
    }
    order.length = kept;
    this.#dead = 0;
    this.#sweep = 0;
  }

  /** Looks at two entries per insert, round robin, and drops them if expired. */
  #sweepSome(now) {
    const order = this.#order;
    for (let n = 0; n < 2 && order.length > 0; n++) {
      if (this.#sweep >= order.length) this.#sweep = 0;
      const entry = order[this.#sweep++];
      if (this.#entries.get(entry.key) === entry) this.#live(entry.key, now);
    }
  }

  #flush() {
    this.#entries.clear();
    this.#order = [];
    this.#dead = 0;
    this.#sweep = 0;
  }

  /** A live entry's value as the protocol reads it, or null. */
  #getValue(key, now) {
    const entry = this.#live(key, now);
    return entry === undefined ? null : asRedisString(entry.value);
  }

  // ---- commands ----

  #dispatch(args, now) {
    const command = lookupWord(COMMANDS, args[0]);
    if (command === undefined) return unknownCommand(args);
    const n = args.length;
    const arity = command.arity;
    if (arity > 0 ? n !== arity : n < -arity) {
      return errorReply(`ERR wrong number of arguments for '${command.name}' command`);
    }
    switch (command.id) {
      case C_EVALSHA:
        return this.#eval(args, now, true);
      case C_GET:
        return this.#getValue(args[1], now);
      case C_SET:
        return this.#set(args, now);
      case C_DEL: {
        let removed = 0;
        for (let i = 1; i < n; i++) {
          if (this.#live(args[i], now) !== undefined) {
            this.#remove(args[i]);
            removed++;
          }
        }
        return removed;
      }
      case C_EXISTS: {
        let found = 0;
        for (let i = 1; i < n; i++) if (this.#live(args[i], now) !== undefined) found++;
        return found;
      }
      case C_PTTL:
        return this.#pttl(args[1], now);
      case C_TTL: {
        const ms = this.#pttl(args[1], now);
        return ms < 0 ? ms : Math.floor((ms + 500) / 1000);
      }
      case C_PEXPIRE:
        return this.#expire(args, now, false);
      case C_EXPIRE:
        return this.#expire(args, now, true);
      case C_INCR:
        return this.#incr(args[1], now);
      case C_EVAL:
        return this.#eval(args, now, false);
      case C_PING:
        return n === 1 ? 'PONG' : n === 2 ? args[1] : errorReply("ERR wrong number of arguments for 'ping' command");
      case C_ECHO:
        return args[1];
      case C_SCAN:
        return this.#scan(args, now);
      case C_SCRIPT:
        return this.#script(args);
      case C_FLUSH:
        if (n > 2 || (n === 2 && lookupWord(FLUSH_MODES, args[1]) === undefined)) return errorReply(ERR_SYNTAX);
        this.#flush();
        return 'OK';
      case C_DBSIZE: {
        let live = 0;
        // (deleting the entry being visited is safe in a Map iteration)
        for (const key of this.#entries.keys()) if (this.#live(key, now) !== undefined) live++;
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
    let expireKind = 0; // O_EX | O_PX | O_EXAT | O_PXAT
    let expireText = '';
    const n = args.length;
    for (let j = 3; j < n; j++) {
      const option = lookupWord(SET_OPTIONS, args[j]);
      if (option === O_NX && !xx) nx = true;
      else if (option === O_XX && !nx) xx = true;
      else if (option === O_GET) get = true;
      else if (option === O_KEEPTTL && expireKind === 0) keepTtl = true;
      else if (option >= O_EX && !keepTtl && j + 1 < n && (expireKind === 0 || expireKind === option)) {
        expireKind = option;
        expireText = args[++j];
      } else return errorReply(ERR_SYNTAX);
    }

    let expiresAt;
    if (expireKind !== 0) {
      expiresAt = setDeadline(expireKind, expireText, now);
      if (typeof expiresAt !== 'number') return expiresAt;
    }

    const key = args[1];
    const entry = this.#live(key, now);
    const previous = get && entry !== undefined ? asRedisString(entry.value) : null;
    if ((nx && entry !== undefined) || (xx && entry === undefined)) return previous;
    if (keepTtl && entry !== undefined) expiresAt = entry.expiresAt;
    this.#put(key, entry, args[2], expiresAt, now);
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
    let flags = 0;
    for (let j = 3; j < args.length; j++) {
      const flag = lookupWord(EXPIRE_FLAGS, args[j]);
      if (flag === undefined) return errorReply(`ERR Unsupported option ${args[j]}`);
      flags |= flag;
    }
    if ((flags & F_NX) !== 0 && (flags & (F_XX | F_GT | F_LT)) !== 0) {
      return errorReply('ERR NX and XX, GT or LT options at the same time are not compatible');
    }
    if ((flags & F_GT) !== 0 && (flags & F_LT) !== 0) {
      return errorReply('ERR GT and LT options at the same time are not compatible');
    }

    // The deadline, in plain numbers when exact (see setDeadline), else in int64 as Redis does.
    let target;
    let expired = false;
    let fast = smallInt(args[2]);
    if (fast !== undefined) {
      if (seconds) fast *= 1000;
      fast += now;
      if (Number.isSafeInteger(fast)) {
        target = fast;
        expired = fast <= now;
      }
    }
    if (target === undefined) {
      let when = parseInt64(args[2]);
      if (when === null) return errorReply(ERR_NOT_INTEGER);
      const invalid = `ERR invalid expire time in '${seconds ? 'expire' : 'pexpire'}' command`;
      if (seconds) {
        if (when > LLONG_MAX / 1000n || when < LLONG_MIN / 1000n) return errorReply(invalid);
        when *= 1000n;
      }
      if (when > LLONG_MAX - BigInt(now)) return errorReply(invalid);
      when += BigInt(now);
      target = Number(when);
      expired = when <= BigInt(now);
    }

    const entry = this.#live(args[1], now);
    if (entry === undefined) return 0;
    const current = entry.expiresAt; // undefined: no expiry (infinite for GT, LT)
    if ((flags & F_NX) !== 0 && current !== undefined) return 0;
    if ((flags & F_XX) !== 0 && current === undefined) return 0;
    if ((flags & F_GT) !== 0 && (current === undefined || target <= current)) return 0;
    if ((flags & F_LT) !== 0 && current !== undefined && target >= current) return 0;
    if (expired) this.#remove(args[1]);
    else entry.expiresAt = target;
    return 1;
  }

  #incr(key, now) {
    const entry = this.#live(key, now);
    if (entry === undefined) {
      this.#put(key, undefined, '1', undefined, now);
      return 1;
    }
    // (an existing key keeps its expiry, as in Redis)
    const text = asRedisString(entry.value);
    const small = smallInt(text); // |small| < 10^15: small + 1 is exact
    if (small !== undefined) {
      entry.value = String(small + 1);
      return small + 1;
    }
    let value = parseInt64(text);
    if (value === null) return errorReply(ERR_NOT_INTEGER);
    if (value === LLONG_MAX) return errorReply('ERR increment or decrement would overflow');
    value += 1n;
    entry.value = String(value);
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
      const option = lookupWord(SCAN_OPTIONS, args[i]);
      if (i + 1 >= args.length) return errorReply(ERR_SYNTAX);
      if (option === 1) {
        const n = parseInt64(args[i + 1]);
        if (n === null) return errorReply(ERR_NOT_INTEGER);
        if (n < 1n) return errorReply(ERR_SYNTAX);
        count = n > 1_000_000_000n ? 1_000_000_000 : Number(n);
      } else if (option === 2) {
        match = args[i + 1] === '*' ? null : compileGlob(args[i + 1]);
      } else if (option === 3) {
        typeOk = lookupWord(STRING_TYPE, args[i + 1]) === true;
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
    const n = args.length;
    if (bySha && args[1].length !== 40) return errorReply(ERR_NOSCRIPT);
    const numkeys = int64ForComparison(args[2]);
    if (numkeys === null) return errorReply(ERR_NOT_INTEGER);
    if (numkeys > n - 3) return errorReply("ERR Number of keys can't be greater than number of args");
    if (numkeys < 0) return errorReply("ERR Number of keys can't be negative");
    const script = bySha ? scriptBySha(args[1]) : SCRIPT_BY_SOURCE.get(args[1]);
    if (script === undefined) return errorReply(bySha ? ERR_NOSCRIPT : ERR_OTHER_SCRIPT);

    // KEYS[1], KEYS[2] and ARGV[1..4] as the scripts use them; Lua's nil is undefined.
    const key1 = numkeys > 0 ? args[3] : undefined;
    const key2 = numkeys > 1 ? args[4] : undefined;
    const split = 3 + numkeys;
    const arg1 = split < n ? args[split] : undefined;
    const arg2 = split + 1 < n ? args[split + 1] : undefined;
    // One clock reading for the whole script, as in Redis.
    switch (script.id) {
      case S_ACQUIRE:
        return this.#acquireScript(script.sha1, key1, key2, arg1, arg2, now);
      case S_RELEASE:
        return this.#releaseScript(script.sha1, key1, arg1, arg2, now);
      case S_EXTEND:
        return this.#extendScript(
          script.sha1, key1, arg1, arg2, split + 2 < n ? args[split + 2] : undefined,
          split + 3 < n ? args[split + 3] : undefined, now,
        );
      default:
        return this.#inspectScript(script.sha1, key1, key2, now);
    }
  }

  /**
   * 1 if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
   * 2   return redis.call('INCR', KEYS[2])
   * 3 end
   * 4 return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
   */
  #acquireScript(sha, key, fenceKey, value, ttl, now) {
    if (key === undefined || value === undefined || ttl === undefined) return scriptError(ERR_SCRIPT_ARG, sha, 1);
    const expiresAt = setDeadline(O_PX, ttl, now);
    if (typeof expiresAt !== 'number') return scriptError(expiresAt.error, sha, 1);
    const entry = this.#live(key, now);
    if (entry === undefined) {
      this.#put(key, undefined, value, expiresAt, now);
      if (fenceKey === undefined) return scriptError(ERR_SCRIPT_ARG, sha, 2);
      const fence = this.#incr(fenceKey, now);
      if (typeof fence !== 'number') return scriptError(fence.error, sha, 2);
      return fence;
    }
    return [asRedisString(entry.value), entry.expiresAt === undefined ? -1 : Math.ceil(entry.expiresAt - now)];
  }

  /**
   * 1 local v = redis.call('GET', KEYS[1])
   * 2 if not v then return 0 end
   * 3 if v == ARGV[1] or (ARGV[2] ~= 'exact' and string.sub(v, 1, #ARGV[1]) == ARGV[1]) then
   * 4   redis.call('DEL', KEYS[1])
   * 5   return 1
   * 6 end
   * 7 return -1
   */
  #releaseScript(sha, key, holder, mode, now) {
    if (key === undefined) return scriptError(ERR_SCRIPT_ARG, sha, 1);
    const entry = this.#live(key, now);
    if (entry === undefined) return 0;
    const held = isHolder(asRedisString(entry.value), holder, mode);
    if (held === null) return scriptError(ERR_NIL_LENGTH, sha, 3);
    if (!held) return -1;
    this.#remove(key);
    return 1;
  }

  /**
   * 1 local v = redis.call('GET', KEYS[1])
   * 2 if not v then return 0 end
   * 3 if v == ARGV[1] or (ARGV[4] ~= 'exact' and string.sub(v, 1, #ARGV[1]) == ARGV[1]) then
   * 4   redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
   * 5   return 1
   * 6 end
   * 7 return -1
   */
  #extendScript(sha, key, holder, ttl, next, mode, now) {
    if (key === undefined) return scriptError(ERR_SCRIPT_ARG, sha, 1);
    const entry = this.#live(key, now);
    if (entry === undefined) return 0;
    const held = isHolder(asRedisString(entry.value), holder, mode);
    if (held === null) return scriptError(ERR_NIL_LENGTH, sha, 3);
    if (!held) return -1;
    if (next === undefined || ttl === undefined) return scriptError(ERR_SCRIPT_ARG, sha, 4);
    const expiresAt = setDeadline(O_PX, ttl, now);
    if (typeof expiresAt !== 'number') return scriptError(expiresAt.error, sha, 4);
    this.#put(key, entry, next, expiresAt, now);
    return 1;
  }

  /** 1 return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]), redis.call('GET', KEYS[2])} */
  #inspectScript(sha, key, fenceKey, now) {
    if (key === undefined) return scriptError(ERR_SCRIPT_ARG, sha, 1);
    const value = this.#getValue(key, now);
    const pttl = this.#pttl(key, now);
    if (fenceKey === undefined) return scriptError(ERR_SCRIPT_ARG, sha, 1);
    return [value, pttl, this.#getValue(fenceKey, now)];
  }

  /** SCRIPT LOAD | EXISTS | FLUSH. The four lock scripts are always loaded. */
  #script(args) {
    const sub = lookupWord(SCRIPT_SUBCOMMANDS, args[1]);
    if (sub === undefined) {
      return errorReply(`ERR unknown subcommand '${args[1].slice(0, 128)}'. Try ${args[0].toUpperCase()} HELP.`);
    }
    const n = args.length;
    if (sub.arity > 0 ? n !== sub.arity : n < -sub.arity) {
      return errorReply(`ERR wrong number of arguments for 'script|${sub.name}' command`);
    }
    if (sub.name === 'load') return SCRIPT_BY_SOURCE.get(args[2])?.sha1 ?? errorReply(ERR_OTHER_SCRIPT);
    if (sub.name === 'exists') {
      const found = [];
      for (let i = 2; i < n; i++) found.push(scriptBySha(args[i]) === undefined ? 0 : 1);
      return found;
    }
    if (n === 2 || (n === 3 && lookupWord(FLUSH_MODES, args[2]) !== undefined)) return 'OK';
    return errorReply('ERR SCRIPT FLUSH only support SYNC|ASYNC option');
  }
}

/**
 * The scripts' ownership test, Lua's `v == ARGV[1] or (<mode> ~= 'exact' and string.sub(v, 1,
 * #ARGV[1]) == ARGV[1])`: true, false, or null where that Lua fails (#ARGV[1] of a nil ARGV[1]).
 */
function isHolder(value, holder, mode) {
  if (value === holder) return true;
  if (mode === 'exact') return false;
  if (holder === undefined) return null;
  // For well-formed strings a UTF-16 prefix is exactly a UTF-8 byte prefix, which is what the Lua compares.
  return value.startsWith(holder);
}

/** Redis 7.0's text for an unknown command, quoting up to about 128 characters of its arguments. */
function unknownCommand(args) {
  let quoted = '';
  for (let i = 1; i < args.length && quoted.length < 128; i++) {
    quoted += `'${args[i].slice(0, 128 - quoted.length)}' `;
  }
  return errorReply(`ERR unknown command '${args[0].slice(0, 128)}', with args beginning with: ${quoted}`);
}
