import type { z } from 'zod';
import type { AgentEngine } from './runtime.js';
import type { KVStore, RedisCommandStore } from './adapters.js';

export { DEFAULT_LOCK_TTL_SECONDS } from './constants.js';
export { InMemoryKVStore } from './adapters.js';
export type { KVStore } from './adapters.js';

export declare const KVLockMetadataSchema: z.ZodObject<{
  lockedAt: z.ZodString;
  lockId: z.ZodOptional<z.ZodString>;
  processId: z.ZodOptional<z.ZodString>;
  metadata: z.ZodOptional<z.ZodRecord<z.ZodString, z.ZodAny>>;
  expiresAt: z.ZodOptional<z.ZodString>;
}>;

/** What a lock's value holds when this package wrote it (or the caller's metadata, verbatim). */
export interface KVLockMetadata {
  lockedAt: string;
  lockId?: string;
  processId?: string;
  metadata?: Record<string, unknown>;
  expiresAt?: string;
  [key: string]: unknown;
}

export interface ValidationError {
  field: string;
  message: string;
  code: string;
  severity: 'error' | 'warning' | 'info';
  context?: Record<string, unknown>;
}

export interface ValidationResult<T> {
  success: boolean;
  data?: T;
  errors?: ValidationError[];
}

export declare function validateKVLockMetadata(data: unknown): ValidationResult<KVLockMetadata>;

/** Any store KVLockManager accepts. */
export type AnyKVStore = RedisCommandStore | KVStore | object;

export interface KVLockConfig {
  ttlSeconds?: number;
  metadata?: KVLockMetadata;
  keyPrefix?: string;
}

export interface WaitOptions {
  /** Give up after this long (ms). */
  timeoutMs: number;
  /** First backoff cap (ms, default 50); doubles per attempt up to maxMs; full jitter. */
  baseMs?: number;
  maxMs?: number;
}

export interface AcquireLockOptions {
  ttlSeconds?: number;
  /** Stored verbatim as the lock's value instead of the default metadata. */
  metadata?: KVLockMetadata | Record<string, unknown>;
  /** Wait for a held lock instead of failing at once (the default). */
  wait?: WaitOptions;
  signal?: AbortSignal;
}

export interface KVLockResult {
  success: boolean;
  lockKey: string;
  /** When held by someone else: their metadata. */
  activeLockMetadata?: KVLockMetadata;
  /** When held by someone else: their remaining time, if the store knows it. */
  remainingMs?: number | null;
  /** On success: strictly increasing per key (null for get/set/delete stores). */
  fence?: number | null;
  /** On success: this holder's token (release/extend it from elsewhere with it). */
  lockId?: string;
  expiresAt?: string;
}

export interface OwnerOptions {
  /** Act as the holder with this lockId (from an acquire elsewhere). */
  lockId?: string;
  signal?: AbortSignal;
}

export interface ExtendResult {
  extended: boolean;
  state: 'ok' | 'missing' | 'not-owner';
  expiresAt: string | null;
}

export interface LockInspection {
  lockKey: string;
  held: boolean;
  metadata: KVLockMetadata | null;
  remainingMs: number | null;
  fence: number | null;
}

export interface HeldLock {
  /** Fires if the lock is lost (expired, taken over, or the hold-time cap reached). */
  signal: AbortSignal;
  fence: number | null;
  lockKey: string;
  lockId: string;
}

export interface WithLockOptions extends AcquireLockOptions {
  /** Renew in the background (default true): every renewEveryMs (TTL/3), at most maxHoldMs in all (1 h). */
  autoExtend?: boolean | { renewEveryMs?: number; maxHoldMs?: number };
}

export declare class KVLockManager {
  constructor(kvStore?: AnyKVStore | null, options?: { defaultTTL?: number; keyPrefix?: string; engine?: AgentEngine });
  makeKvLockKey(userId: string, threadId: string): string;
  acquireKvLock(userId: string, threadId: string, options?: AcquireLockOptions): Promise<KVLockResult>;
  releaseKvLock(userId: string, threadId: string, options?: OwnerOptions): Promise<boolean>;
  extendKvLock(userId: string, threadId: string, options?: OwnerOptions & { ttlMs?: number; ttlSeconds?: number }): Promise<ExtendResult>;
  checkKvLock(userId: string, threadId: string): Promise<KVLockMetadata | null>;
  inspectKvLock(userId: string, threadId: string, options?: { signal?: AbortSignal }): Promise<LockInspection>;
  listKvLocks(options?: { limit?: number; signal?: AbortSignal }): Promise<string[]>;
  withKvLock<T>(userId: string, threadId: string, operation: (lock: HeldLock) => Promise<T>, options?: WithLockOptions): Promise<T>;
}

export declare const defaultKVLockManager: KVLockManager;
export declare function makeKvLockKey(userId: string, threadId: string): string;
export declare function acquireKvLock(userId: string, threadId: string, options?: AcquireLockOptions): Promise<KVLockResult>;
export declare function releaseKvLock(userId: string, threadId: string, options?: OwnerOptions): Promise<boolean>;
export declare function checkKvLock(userId: string, threadId: string): Promise<KVLockMetadata | null>;
export declare function withKvLock<T>(userId: string, threadId: string, operation: (lock: HeldLock) => Promise<T>, options?: WithLockOptions): Promise<T>;
