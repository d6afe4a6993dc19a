// The driver: the only loop in the package. It feeds inputs to the C++ engine (start, resume,
// cancel), reads back the events they produced, performs the host calls those events ask for
// through the operation's host functions, and settles each operation's promise when the core
// reports it done. It decides nothing itself; every rule lives in the core.
//
// Inputs are fed in batches: an input arising outside the loop (an operation started, a host
// call answered, a signal aborted) is queued, and the queue is fed at the end of the current
// microtask wave, in order, in one call into the core. A pipelined KV response answers dozens of
// calls at once and dozens of callers start their next operation in the same wave; each call
// into the core has fixed costs on both sides, paid once per batch rather than once per input.
import createAgentToolsWasm from '../dist/agent_tools.mjs';
import { loadWasmModule } from '#wasm-module';
import { AgentToolsError, describeHostFailure, errorFromCore } from './errors.js';
import { ErrorCode, EventTag, HostCall, INPUT_RECORD_WORDS, InputKind, KV_JSON_FLAG, MAX_MESSAGE_BYTES } from './generated/constants.js';
import { platformHost } from './host.js';
import { SlotTable } from './tables.js';

const disposeSymbol = Symbol.dispose ?? Symbol.for('Symbol.dispose');
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// The core's event records (EventTag in core/constants.json): runs of 32-bit words whose texts
// are (offset, length) pairs into one text area, in bytes.
const { CALL, ABORT, DONE, FAULT } = EventTag;
const KV = HostCall.indexOf('kv');
const { START, RESUME, CANCEL } = InputKind;
const RECORD_BYTES = INPUT_RECORD_WORDS * 4;
// A batch's texts are written into the core's input buffer, which it keeps between batches below
// 1 MiB: a batch stops growing past this much (a larger single input goes alone).
const BATCH_BYTES = 256 * 1024;
// What a host call's reply becomes when wasm memory cannot hold it.
const NO_ROOM_FOR_REPLY = JSON.stringify({ code: ErrorCode.INPUT_TOO_LARGE, message: 'out of wasm memory for the host reply' });

/** Internal: AgentEngine's run with a pre-encoded JSON input (see the method). */
export const runText = Symbol('runText');

/**
 * Internal: a host's KV function in callback form, `host[kvAnswering](json, signal, answer,
 * token)`, for calls whose arguments come as one JSON text (KV_JSON_FLAG). It calls
 * `answer(token, ok, value)` once (possibly synchronously) instead of returning a promise: that
 * spares each command a promise and its two reactions, about 330 bytes of garbage per command (6%
 * of a lock cycle's allocation over REST; the time it saves is below this machine's noise).
 */
export const kvAnswering = Symbol('kvAnswering');

// --- loading: lazily, once per realm ---------------------------------------------------------

let wasmInstance = null;

/**
 * Instantiates the wasm module on first use and returns the Emscripten module object. Nothing
 * runs at import time. A failed load is not cached, so a later call can retry.
 */
export function loadWasm(options = {}) {
  wasmInstance ??= instantiate(options).catch((error) => {
    wasmInstance = null;
    throw new AgentToolsError(ErrorCode.INTERNAL, `could not load the wasm core: ${error?.message ?? error}`, { cause: error });
  });
  return wasmInstance;
}

async function instantiate({ wasmModule }) {
  const module = wasmModule ? await wasmModule : await loadWasmModule();
  return new Promise((resolve, reject) => {
    createAgentToolsWasm({
      // Where the glue would look for the .wasm: never used, since we instantiate it ourselves,
      // but passing it keeps the glue from resolving URLs against a missing import.meta.url.
      locateFile: (path) => path,
      // Instantiate the already compiled module: workerd and Vercel Edge forbid compiling from
      // bytes at request time, and the async form avoids the main-thread size limit in browsers.
      instantiateWasm(imports, receive) {
        WebAssembly.instantiate(module, imports).then((instance) => receive(instance, module), reject);
        return {};
      },
    }).then(resolve, reject);
  });
}

// --- the engine --------------------------------------------------------------------------------

const finalizer = typeof FinalizationRegistry === 'function'
  ? new FinalizationRegistry((handle) => handle.delete())
  : null;

/**
 * One C++ engine and the operations in flight on it. Any number of operations may run at once.
 * Call `dispose()` (or use `using`) when done with an engine you created; the default engine
 * lives as long as the realm. FinalizationRegistry, where present, only backs that up.
 */
export class AgentEngine {
  #wasm;
  #handle;
  #address; // the C++ engine's address, for the plain exports that take inputs
  #ops = new SlotTable(); // op id -> { id, resolve, reject, host, signal, onAbort }
  #timers = new Map(); // call id -> timer of a sleep the driver performs itself
  // Inputs not fed yet, in order: four entries each (kind, id, arg, document), so queuing
  // allocates no array per input. arg: a start's operation name, a resume's ok.
  #queue = [];
  #flushing = false; // #flush is running, or queued as a microtask
  #records = new Uint32Array(256); // the last batch's event records, copied out of wasm memory
  #text = ''; // the last batch's event text when it is all ASCII (byte offsets are string offsets)
  #bytes = null; // else a copy of its bytes, each text decoded on its own
  #disposed = false;
  #answer = (call, ok, value) => this.#reply(call, ok, value); // kvAnswering's callback
  #flushTask = () => this.#flush();

  constructor(wasm) {
    this.#wasm = wasm;
    this.#handle = new wasm.Engine();
    this.#address = this.#handle.address();
    finalizer?.register(this, this.#handle, this);
  }

  /** Creates an engine on the shared wasm instance. */
  static async create(options = {}) {
    return new AgentEngine(await loadWasm(options));
  }

  /**
   * Runs core operation `name` with a JSON-serialisable input. `host` supplies the KV and HTTP
   * functions (and may override the clock, randomness and timers); `signal` cancels.
   * Resolves with the operation's value or rejects with an AgentToolsError. The operation starts
   * at the end of the current microtask, fed to the core with the rest of its wave.
   */
  run(name, input, { host = {}, signal } = {}) {
    return this[runText](name, null, input, host, signal);
  }

  // run() with the input already JSON text (`text`, or null: encode `input`), for the API shims'
  // hot paths, which write their few fields faster than JSON.stringify does.
  [runText](name, text, input, host = {}, signal = undefined) {
    return new Promise((resolve, reject) => {
      if (this.#disposed) throw new AgentToolsError(ErrorCode.DISPOSED, 'the engine has been disposed');
      if (signal?.aborted) throw new AgentToolsError(ErrorCode.CANCELLED, 'operation cancelled before it started');
      const opName = String(name);
      const document = checkedDocument(text ?? encodeJson(input, 'input', ErrorCode.INVALID_ARGUMENT));
      const op = { id: 0, resolve, reject, host, signal, onAbort: null };
      const id = this.#ops.add(op);
      if (signal) {
        op.onAbort = () => this.#cancel(id);
        signal.addEventListener('abort', op.onAbort, { once: true });
      }
      this.#input(START, id, opName, document);
    });
  }

  /**
   * Counters from the core and the wasm allocator's bytes in use. Inputs of the current microtask
   * wave (an operation just started, say) are fed at its end and show up after it.
   */
  stats() {
    if (this.#disposed) return { liveOperations: 0, pendingCalls: 0, disposed: true };
    return { ...JSON.parse(this.#handle.stats()), disposed: false };
  }

  /** Rejects every pending operation with DISPOSED, aborts its host calls, frees the engine. */
  dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    finalizer?.unregister(this);
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    const error = new AgentToolsError(ErrorCode.DISPOSED, 'the engine was disposed while the operation was pending');
    for (const id of this.#ops.ids()) this.#settle(id, error);
    this.#handle.delete();
  }

  [disposeSymbol]() {
    this.dispose();
  }

  get disposed() {
    return this.#disposed;
  }

  // Queues one input; the queue is fed at the end of this microtask wave (or, if the loop is
  // running, by the loop itself, after the batch in hand).
  #input(kind, id, arg, document) {
    this.#queue.push(kind, id, arg, document);
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(this.#flushTask);
    }
  }

  // Feeds the queue in batches, and handles each batch's events as soon as it is fed. Inputs that
  // arise meanwhile (a host function answering synchronously, a signal aborted) join the queue and
  // go in a later batch of the same loop, so the driver never recurses and never calls into the
  // core re-entrantly (the core itself never calls into JS).
  #flush() {
    const queue = this.#queue;
    try {
      for (let next = 0; next < queue.length && !this.#disposed;) {
        let end = this.#batchEnd(next);
        let length = this.#writeBatch(next, end);
        // No room in wasm memory for the batch: its first input goes alone (the rest form the
        // next batch), and a lone input that still does not fit fails on its own.
        if (length < 0 && end - next > 4) length = this.#writeBatch(next, (end = next + 4));
        while (length < 0 && this.#noRoomFor(next)) length = this.#writeBatch(next, end);
        if (length >= 0) {
          const words = this.#feed((end - next) / 4, length);
          if (words) this.#handleEvents(words);
        }
        next = end;
      }
    } catch (error) {
      // Only a defect gets here (the core's events made no sense): every caller learns of it.
      this.#retire(error instanceof AgentToolsError ? error : new AgentToolsError(ErrorCode.INTERNAL, `driver failure: ${error?.message ?? error}`, { cause: error }));
    } finally {
      queue.length = 0;
      this.#flushing = false;
      this.#text = ''; // not to keep a large text alive until the next batch
      this.#bytes = null;
    }
  }

  // Where the batch starting at queue index `from` ends: it takes inputs while their texts fit in
  // BATCH_BYTES (at least one input).
  #batchEnd(from) {
    const queue = this.#queue;
    let bytes = 0;
    let end = from;
    do {
      bytes += RECORD_BYTES + inputCapacity(queue[end], queue[end + 2], queue[end + 3]);
      end += 4;
    } while (end < queue.length && bytes + RECORD_BYTES + inputCapacity(queue[end], queue[end + 2], queue[end + 3]) <= BATCH_BYTES);
    return end;
  }

  // Feeds the batch of `count` inputs written into the input buffer (`length` bytes) and copies
  // out the events it produced at once (they stay valid only until the next batch, and a host
  // function may feed another engine on this instance, which can grow memory). Returns the
  // number of record words.
  #feed(count, length) {
    const wasm = this.#wasm;
    // The clock travels with every batch, so reading "now" costs the core no round trip.
    const header = wasm._agent_tools_feed(this.#address, count, length, Date.now());
    const u32 = wasm.HEAPU32; // read after the call: growth replaces the view
    const h = header >>> 2;
    const at = u32[h] >>> 2;
    const words = u32[h + 1];
    const textAt = u32[h + 2];
    const textEnd = textAt + u32[h + 3];
    if (words > this.#records.length) this.#records = new Uint32Array(Math.max(words, this.#records.length * 2));
    const records = this.#records;
    // A lone lock input yields 5–20 words: copied by a loop, without a view object.
    if (words <= 64) for (let w = 0; w < words; w++) records[w] = u32[at + w];
    else records.set(u32.subarray(at, at + words));
    if (u32[h + 4]) {
      this.#text = textEnd > textAt ? decoder.decode(wasm.HEAPU8.subarray(textAt, textEnd)) : '';
      this.#bytes = null;
    } else {
      this.#bytes = wasm.HEAPU8.slice(textAt, textEnd);
    }
    return words;
  }

  // A lone input that does not fit in wasm memory: a start fails with INPUT_TOO_LARGE; a reply
  // becomes a short failure of its call. Returns whether the input, so changed, is to be written
  // again. When not even that fits, nothing can be fed any more: the engine retires.
  #noRoomFor(at) {
    const queue = this.#queue;
    const kind = queue[at];
    if (kind === START) {
      this.#settle(queue[at + 1], outOfMemory(queue[at + 3]));
      return false;
    }
    if (kind === RESUME && queue[at + 3] !== NO_ROOM_FOR_REPLY) {
      queue[at + 2] = false;
      queue[at + 3] = NO_ROOM_FOR_REPLY;
      return true;
    }
    this.#retire(new AgentToolsError(ErrorCode.INPUT_TOO_LARGE, 'out of wasm memory'));
    return false;
  }

  // Writes the records and texts of queue[from, end) into the core's input buffer (see
  // core/constants.json, inputRecords), which the core grows on request. Returns the bytes
  // written, or -1 when wasm memory cannot hold them.
  #writeBatch(from, end) {
    const wasm = this.#wasm;
    const queue = this.#queue;
    const count = (end - from) / 4;
    let capacity = count * RECORD_BYTES;
    for (let i = from; i < end; i += 4) capacity += inputCapacity(queue[i], queue[i + 2], queue[i + 3]);
    const ptr = wasm._agent_tools_input(this.#address, capacity);
    if (!ptr) return -1;
    const heap = wasm.HEAPU8; // read after the call: growth replaces the views
    const u32 = wasm.HEAPU32;
    let record = ptr >>> 2; // malloc's alignment: records on word boundaries
    let at = ptr + count * RECORD_BYTES;
    for (let i = from; i < end; i += 4, record += INPUT_RECORD_WORDS) {
      const kind = queue[i];
      const textAt = at;
      let arg = 0;
      if (kind === START) {
        const name = queue[i + 2];
        arg = writeUtf8(name, heap, at, name.length * 3);
        at += arg;
      } else if (kind === RESUME) {
        arg = queue[i + 2] ? 1 : 0;
      }
      if (kind !== CANCEL) {
        const document = queue[i + 3];
        if (typeof document === 'string') at += writeUtf8(document, heap, at, document.length * 3);
        else {
          heap.set(document, at);
          at += document.length;
        }
      }
      u32[record] = kind;
      u32[record + 1] = queue[i + 1];
      u32[record + 2] = arg;
      u32[record + 3] = at - textAt;
    }
    return at - ptr;
  }

  // A text of the last batch's events, by its byte offset and length.
  #piece(at, length) {
    return this.#bytes ? decoder.decode(this.#bytes.subarray(at, at + length)) : this.#text.slice(at, at + length);
  }

  #handleEvents(words) {
    const r = this.#records;
    for (let i = 0; i < words && !this.#disposed;) {
      switch (r[i]) {
        case CALL: {
          const argc = r[i + 4];
          const kind = r[i + 3] & ~KV_JSON_FLAG;
          let args; // (none for a call without arguments, such as now)
          let json; // the kv args as one JSON text, when the operation asked for that (argsJson)
          if (r[i + 3] & KV_JSON_FLAG) {
            json = this.#piece(r[i + 5], r[i + 6]);
          } else if (kind === KV) {
            args = new Array(argc);
            for (let a = 0, at = i + 5; a < argc; a++, at += 2) args[a] = this.#piece(r[at], r[at + 1]);
          } else if (argc) {
            args = JSON.parse(this.#piece(r[i + 5], r[i + 6]));
          }
          const call = r[i + 1];
          const op = r[i + 2];
          i += 5 + 2 * argc;
          this.#perform(call, op, HostCall[kind], args, json);
          break;
        }
        case ABORT: {
          // The core drops a call when its operation is cancelled (the caller's signal, which
          // the host function already holds, has fired) or over; it ignores a late reply.
          const call = r[i + 1];
          i += 2;
          const timer = this.#timers.get(call);
          if (timer !== undefined) {
            clearTimeout(timer);
            this.#timers.delete(call);
          }
          break;
        }
        case DONE: {
          const op = r[i + 1];
          const value = JSON.parse(this.#piece(r[i + 3], r[i + 4]));
          const ok = r[i + 2] === 1;
          i += 5;
          this.#settle(op, ok ? null : errorFromCore(value), value);
          break;
        }
        case FAULT:
          // The core could not record its own events (out of memory), or was driven wrongly:
          // nothing it says can be trusted any more, so fail everything pending and retire it.
          this.dispose();
          return;
        default:
          throw new AgentToolsError(ErrorCode.INTERNAL, `unknown event record ${r[i]} from the core`);
      }
    }
  }

  #perform(call, opId, kind, args, json) {
    const op = this.#ops.get(opId);
    if (kind === 'sleep' && !op.host.sleep) {
      // The driver's own timer, cleared by the core's abort event: no abort listener per sleep.
      this.#timers.set(call, setTimeout(() => {
        this.#timers.delete(call);
        this.#reply(call, true, null);
      }, args.ms));
      return;
    }
    // Host functions get the caller's signal, if any, and nothing else: no AbortController per
    // call or operation (at tens of thousands of calls they cost more than the core does), and
    // none shared by the engine either, since workerd forbids using an I/O object created in one
    // request from another. Without a signal, a call the core abandons (cancel, dispose) simply
    // runs to its end, bounded by the adapter's timeout, and its reply is ignored.
    let result;
    try {
      if (json !== undefined) {
        if (op.host[kvAnswering]) {
          op.host[kvAnswering](json, op.signal, this.#answer, call);
          return;
        }
        args = JSON.parse(json); // a host without the JSON form gets the arguments as usual
      }
      const host = op.host[kind] ? op.host : platformHost; // called as a method, as it always was
      result = host[kind](args, op.signal);
    } catch (failure) {
      this.#reply(call, false, failure);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
      Promise.resolve(result).then(
        (value) => this.#reply(call, true, value),
        (failure) => this.#reply(call, false, failure),
      );
    } else {
      this.#reply(call, true, result);
    }
  }

  // A reply to a call the core has dropped (aborted, or answered twice) is fed all the same: the
  // core knows its calls and ignores it (counted in stats().staleReplies).
  #reply(call, ok, value) {
    if (this.#disposed) return;
    let document;
    try {
      document = checkedDocument(ok ? encodeJson(value, 'host reply', ErrorCode.HOST_BAD_REPLY) : JSON.stringify(describeHostFailure(value)));
    } catch (failure) {
      ok = false;
      document = JSON.stringify(describeHostFailure(failure));
    }
    this.#input(RESUME, call, ok, document);
  }

  #cancel(id) {
    if (!this.#disposed && this.#ops.get(id)) this.#input(CANCEL, id, 0, '');
  }

  // Fails every pending operation with `error` and frees the engine (a defect in the driver or
  // the core: nothing either says can be trusted any more).
  #retire(error) {
    if (this.#disposed) return;
    for (const id of this.#ops.ids()) this.#settle(id, error);
    this.dispose();
  }

  #settle(id, error, value) {
    const op = this.#ops.remove(id);
    if (!op) return;
    if (op.onAbort) op.signal.removeEventListener('abort', op.onAbort);
    if (error) op.reject(error);
    else op.resolve(value);
  }
}

// An input document, checked against MAX_MESSAGE_BYTES before it is queued, so a huge one is a
// typed error of its own operation or call. Small texts stay strings (encoded straight into wasm
// memory when fed); large ones are encoded now to learn their exact size.
function checkedDocument(text) {
  if (text.length > MAX_MESSAGE_BYTES) throw tooLarge(text.length);
  if (text.length * 3 <= 65536) return text;
  const bytes = encoder.encode(text);
  if (bytes.length > MAX_MESSAGE_BYTES) throw tooLarge(bytes.length);
  return bytes;
}

// The bytes an input may take in the core's input buffer: UTF-8 never needs more than 3 bytes
// per UTF-16 unit; a large document is already bytes (checkedDocument).
function inputCapacity(kind, arg, document) {
  if (kind === CANCEL) return 0;
  const name = kind === START ? arg.length * 3 : 0;
  return name + (typeof document === 'string' ? document.length * 3 : document.length);
}

// Writes `text` as UTF-8 at heap[at] (room for `capacity` bytes) and returns the bytes written.
// Very short ASCII texts (an operation's name, most KV replies) are copied by a loop: below about
// 24 characters that beats encodeInto's fixed cost (~50 ns in Node 20, with the subarray it needs);
// above, encodeInto wins (a 160-character lock input: ~190 ns by loop, ~55 ns by encodeInto).
function writeUtf8(text, heap, at, capacity) {
  const n = text.length;
  if (n <= 24) {
    let i = 0;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) break;
      heap[at + i] = c;
    }
    if (i === n) return n;
  }
  return encoder.encodeInto(text, heap.subarray(at, at + capacity)).written;
}

function outOfMemory(document) {
  return new AgentToolsError(ErrorCode.INPUT_TOO_LARGE, `out of wasm memory for a document of ${document.length} bytes`);
}

function tooLarge(size) {
  return new AgentToolsError(ErrorCode.INPUT_TOO_LARGE, `document of ${size} bytes exceeds MAX_MESSAGE_BYTES (${MAX_MESSAGE_BYTES})`);
}

function encodeJson(value, what, code) {
  // A KV reply is often an integer: its JSON is its decimal text.
  if (typeof value === 'number' && Number.isFinite(value)) return '' + value;
  let text;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new AgentToolsError(code, `${what} is not JSON-serialisable: ${error.message}`);
  }
  if (text === undefined) throw new AgentToolsError(code, `${what} is not JSON-serialisable (${typeof value})`);
  return text;
}

// --- the shared default engine -----------------------------------------------------------------

let defaultEngine = null; // promise of the engine
let readyEngine = null; // the same engine once created, for callers on a hot path

/** The engine every API object uses unless given another: created on first use, one per realm. */
export function getDefaultEngine() {
  defaultEngine ??= AgentEngine.create().then((engine) => (readyEngine = engine), (error) => {
    defaultEngine = null;
    throw error;
  });
  return defaultEngine.then((engine) => {
    if (!engine.disposed) return engine;
    defaultEngine = readyEngine = null; // retired after a fault, or disposed by its user: start a new one
    return getDefaultEngine();
  });
}

/** The default engine if it exists and is usable, without waiting (null otherwise). */
export function defaultEngineIfReady() {
  return readyEngine && !readyEngine.disposed ? readyEngine : null;
}
