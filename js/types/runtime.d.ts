import type { HostCallKind } from './constants.js';

export { AgentToolsError } from './errors.js';
export { ErrorCode, HostCall, KV_SCRIPTS, MAX_JSON_DEPTH, MAX_MESSAGE_BYTES, MAX_RANDOM_BYTES } from './constants.js';
export type { HostCallKind } from './constants.js';

/** JSON as it crosses the boundary. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A Redis reply as the core reads it; `{error}` is a Redis error reply (e.g. NOSCRIPT). */
export type KvReply = null | number | string | KvReply[] | { error: string };

export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

type MaybePromise<T> = T | Promise<T>;

/**
 * The functions an operation reaches the world through. Each gets the operation's AbortSignal
 * when the caller gave one (it fires when the operation is cancelled). Throwing or rejecting is
 * reported to the core as HOST_ERROR, or as the code of a thrown AgentToolsError.
 */
export interface HostFunctions {
  kv(args: string[], signal: AbortSignal | undefined): MaybePromise<KvReply>;
  http(request: HttpRequest, signal: AbortSignal | undefined): MaybePromise<HttpResponse>;
  sleep(args: { ms: number }, signal: AbortSignal | undefined): MaybePromise<null>;
  now(args: undefined, signal: AbortSignal | undefined): MaybePromise<number>;
  random(args: { bytes: number }, signal: AbortSignal | undefined): MaybePromise<string>;
}

export interface RunOptions {
  /** Overrides for the platform defaults; kv and http have none. */
  host?: Partial<HostFunctions>;
  /** Cancels the operation: pending host calls are aborted and it rejects with CANCELLED. */
  signal?: AbortSignal;
}

export interface LoadOptions {
  /** A compiled module (or a promise of one) to use instead of the runtime's own loader. */
  wasmModule?: WebAssembly.Module | Promise<WebAssembly.Module>;
}

export interface EngineStats {
  liveOperations: number;
  pendingCalls: number;
  started?: number;
  finished?: number;
  staleReplies?: number;
  /** Bytes the wasm allocator has handed out and not yet taken back. */
  heapInUse?: number;
  heapReserved?: number;
  disposed: boolean;
}

/** One C++ engine: any number of operations may be in flight on it at once. */
export declare class AgentEngine implements Disposable {
  private constructor();
  static create(options?: LoadOptions): Promise<AgentEngine>;
  /**
   * Runs core operation `operation` with `input`. The operation starts at the end of the current
   * microtask (with every other input of that wave, in one call into the core), so host functions
   * are never called from inside `run()` itself.
   */
  run(operation: string, input: JsonValue, options?: RunOptions): Promise<JsonValue>;
  stats(): EngineStats;
  /** Rejects pending operations with DISPOSED and frees the engine's wasm memory. */
  dispose(): void;
  [Symbol.dispose](): void;
  readonly disposed: boolean;
}

/** The shared engine, created on first use; one per realm. */
export declare function getDefaultEngine(): Promise<AgentEngine>;

/** Instantiates the wasm module once per realm; later options are ignored. */
export declare function loadWasm(options?: LoadOptions): Promise<unknown>;
