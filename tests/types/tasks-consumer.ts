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
