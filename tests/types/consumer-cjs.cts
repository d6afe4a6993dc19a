// The same API as a CommonJS consumer sees it.
import runtime = require('@growthub/agent-tools/runtime');
import root = require('@growthub/agent-tools');

export async function stats(): Promise<number> {
  const engine = await runtime.getDefaultEngine();
  const code: runtime.ErrorCode = runtime.ErrorCode.TIMEOUT;
  void code, root.PACKAGE_INFO.name;
  return engine.stats().liveOperations;
}
