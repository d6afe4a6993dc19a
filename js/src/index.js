// @growthub/agent-tools: everything from ./kv, ./tasks and ./coordination, plus PACKAGE_INFO.
// Each subpath re-exports these same modules, so all of them share one set of classes, one
// default lock manager and one wasm instance.
export * from './kv.js';
export * from './tasks.js';
export * from './coordination.js';

/** Kept exactly as the original package exported it (including its version string). */
export const PACKAGE_INFO = Object.freeze({
  name: '@growthub/agent-tools',
  version: '1.0.0',
  description: 'Agent coordination utilities and KV lock management for Growthub Marketing OS',
  patterns: Object.freeze([
    'KV Lock Management',
    'Agent Task Coordination',
    'OpenAI Function Calling Abstractions',
    'Distributed Orchestration',
    'Race Condition Prevention',
  ]),
  compliance: 'AT-03 PROD STABLE',
});
