// The tasks declarations as a strict TypeScript consumer uses them.
import {
  AgentTaskBuilder,
  AgentTaskConfigs,
  AgentTaskExecutor,
  BaseAgentTaskRequestSchema,
  createTaskHelpers,
  type AgentTaskResult,
  type BaseAgentTaskRequest,
} from '@growthub/agent-tools/tasks';

export async function task(): Promise<number> {
  const executor = new AgentTaskExecutor({ apiKey: 'sk-test', maxRetries: 1, timeoutMs: 5000 }, { defaultModel: 'gpt-4o-mini' });
  const request: BaseAgentTaskRequest = BaseAgentTaskRequestSchema.parse({ threadId: crypto.randomUUID(), userId: 'u', agentType: 'TEXT_ANALYSIS_AGENT', taskSequence: 1 });
  const result: AgentTaskResult = await executor.executeAgentTask(request, { prompt: 'p' }, AgentTaskConfigs.INTENT_ANALYSIS, { deadlineMs: 30_000 });
  const config = AgentTaskBuilder.create('custom').type('analysis').tool('t').systemPrompt('s').userPrompt((d) => String(d.x)).progress(0)
    .function({ name: 'f', description: 'd', parameters: { type: 'object', properties: { x: { type: 'string' } }, required: ['x'] } }).build();
  const helpers = createTaskHelpers(executor);
  void helpers.createBrandAnalysisTask, config.progressPercent;
  if (!result.success) return result.error?.details?.reason === 'http_status' ? 1 : 2;
  return result.updatedCSI.currentProgress;
}

import * as z4 from 'zod/v4';

export async function typedByZod(executor: AgentTaskExecutor, request: BaseAgentTaskRequest): Promise<string | undefined> {
  const config = AgentTaskBuilder.create('typed').type('analysis').tool('t').systemPrompt('s').userPrompt(() => 'u').progress(10)
    .function({ name: 'summarize', description: 'd', parameters: z4.object({ title: z4.string(), score: z4.number() }) })
    .build();
  const result = await executor.executeAgentTask(request, {}, config);
  const score: number | undefined = result.stepResult.score;
  void score;
  return result.stepResult.title;
}
