import type { KvReply } from './runtime.js';

/** A Redis-protocol store: one command (array of strings) in, one reply out. */
export interface RedisCommandStore {
  command(args: string[], signal?: AbortSignal): KvReply | Promise<KvReply>;
}

/** The original package's duck-typed store (TTL in seconds; no scripts, so no fences). */
export interface KVStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, options?: { ttl?: number; condition?: 'nx' | 'xx' }): Promise<boolean>;
  delete(key: string): Promise<boolean>;
}

/**
 * The embedded default: an in-memory store with Redis semantics (PX expiry, SCAN, the lock
 * scripts) behind `command`, and the original's get/set/delete on the same data.
 */
export declare class InMemoryKVStore implements RedisCommandStore, KVStore {
  constructor(options?: { now?: () => number });
  command(args: string[]): KvReply;
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, options?: { ttl?: number; condition?: 'nx' | 'xx' }): Promise<boolean>;
  delete(key: string): Promise<boolean>;
}

export interface UpstashRestOptions {
  /** REST URL, e.g. https://xyz.upstash.io */
  url: string;
  /** REST token; sent only in the Authorization header, never logged or put in errors. */
  token: string;
  /** Send through this fetch instead of the runtime's transport (node:http on Node, the global fetch elsewhere). */
  fetch?: typeof fetch;
  /** Per attempt, including the body (default 5000). */
  timeoutMs?: number;
  /** Extra attempts after network errors, timeouts and 5xx (default 2). */
  retries?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  random?: () => number;
  retryNonIdempotent?: boolean;
  readYourWrites?: boolean;
  /** Send the commands issued in one microtask wave as one `POST /pipeline` (default true). */
  autoPipeline?: boolean;
}

/** Upstash Redis / Vercel KV over their REST API: node:http on Node, fetch elsewhere; works in every runtime. */
export declare class UpstashRestStore implements RedisCommandStore {
  constructor(options: UpstashRestOptions);
  /** From UPSTASH_REDIS_REST_URL/_TOKEN or KV_REST_API_URL/_TOKEN. */
  static fromEnv(env?: Record<string, string | undefined>, options?: Omit<UpstashRestOptions, 'url' | 'token'>): UpstashRestStore;
  /** How requests go out: node:http(s) with keep-alive (Node's default) or fetch. */
  readonly transport: 'node:http' | 'fetch';
  command(args: string[], signal?: AbortSignal): Promise<KvReply>;
}

/** An existing @upstash/redis (or @vercel/kv) client as a store. */
export declare function fromUpstashClient(client: object, options?: { timeoutMs?: number }): RedisCommandStore;
/** A connected node-redis client (v4-v6) as a store, for Node servers over TCP. */
export declare function fromNodeRedis(client: { sendCommand: (...args: never[]) => unknown }, options?: { timeoutMs?: number }): RedisCommandStore;
/** The original's get/set/delete store as a (script-less) protocol store. */
export declare function fromLegacyStore(store: KVStore): RedisCommandStore;
