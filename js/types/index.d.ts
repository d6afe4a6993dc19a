export * from './kv.js';
export * from './tasks.js';
export * from './coordination.js';

export declare const PACKAGE_INFO: Readonly<{
  name: '@growthub/agent-tools';
  version: '1.0.0';
  description: 'Agent coordination utilities and KV lock management for Growthub Marketing OS';
  patterns: readonly [
    'KV Lock Management',
    'Agent Task Coordination',
    'OpenAI Function Calling Abstractions',
    'Distributed Orchestration',
    'Race Condition Prevention',
  ];
  compliance: 'AT-03 PROD STABLE';
}>;
