// Compiled by `tsc -p tests/types` in the test suite: the public declarations must type-check
// under strict settings, as an ESM consumer sees them.
import { PACKAGE_INFO, DEFAULT_LOCK_TTL_SECONDS } from '@growthub/agent-tools';
import { DEFAULT_LOCK_TTL_SECONDS as ttl } from '@growthub/agent-tools/kv';
import {
  AgentEngine,
  AgentToolsError,
  ErrorCode,
  getDefaultEngine,
  type HostFunctions,
  type JsonValue,
} from '@growthub/agent-tools/runtime';

const version: '1.0.0' = PACKAGE_INFO.version;
const seconds: 900 = DEFAULT_LOCK_TTL_SECONDS;
const same: 900 = ttl;

const host: Partial<HostFunctions> = {
  kv: async (args) => (args[0] === 'GET' ? 'value' : null),
  now: () => Date.now(),
};

export async function demo(): Promise<JsonValue> {
  const engine: AgentEngine = await getDefaultEngine();
  try {
    return await engine.run('diag.echo', { calls: [{ kind: 'now' }] }, { host, signal: AbortSignal.timeout(1000) });
  } catch (error) {
    if (error instanceof AgentToolsError && error.code === ErrorCode.CANCELLED) return null;
    throw error;
  } finally {
    void version, seconds, same;
  }
}

export function disposable(engine: AgentEngine): Disposable {
  return engine;
}
