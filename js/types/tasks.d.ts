import type { z } from 'zod';
import type * as z4 from 'zod/v4';
import type { AgentEngine, JsonValue } from './runtime.js';

export declare const BaseAgentTaskRequestSchema: z.ZodObject<{
  threadId: z.ZodString;
  userId: z.ZodString;
  agentType: z.ZodEnum<['CONTENT_GENERATION_AGENT', 'TEXT_ANALYSIS_AGENT']>;
  taskSequence: z.ZodNumber;
  previousCSI: z.ZodOptional<z.ZodObject<{
    completedSteps: z.ZodDefault<z.ZodArray<z.ZodString>>;
    currentProgress: z.ZodDefault<z.ZodNumber>;
    totalSteps: z.ZodDefault<z.ZodNumber>;
    currentStep: z.ZodDefault<z.ZodString>;
  }>>;
}>;

export type BaseAgentTaskRequest = z.infer<typeof BaseAgentTaskRequestSchema>;

/** Current Step Information: progress through a multi-step task. */
export interface CSI {
  completedSteps: string[];
  currentProgress: number;
  totalSteps: number;
  currentStep: string;
  metadata?: Record<string, JsonValue>;
}

/** A JSON Schema object (the subset OpenAI function parameters use). */
export type JsonSchema = { [keyword: string]: JsonValue };

export interface AgentTaskFunction {
  name: string;
  description: string;
  parameters: JsonSchema & { type: 'object'; properties: Record<string, JsonSchema>; required: string[] };
  strict?: boolean;
}

export interface AgentTaskConfig<TInput = Record<string, unknown>, TResult extends Record<string, unknown> = Record<string, JsonValue>> {
  /** Type-only: the validated arguments' type (from a zod schema), carried to the result. */
  readonly __result?: TResult;
  taskName: string;
  taskType: 'analysis' | 'image_generation' | 'text_generation' | 'completion';
  apiRoute?: string;
  toolName: string;
  systemPrompt: string;
  userPromptTemplate: (data: TInput) => string;
  functionDefinition: AgentTaskFunction;
  progressPercent: number;
  modelConfig?: { model?: string; temperature?: number; maxTokens?: number; topP?: number };
}

export interface AgentTaskError {
  message: string;
  /** TASK_EXECUTION_FAILED, VALIDATION_FAILED, TIMEOUT, CANCELLED, ... */
  code: string;
  /** `reason` names the failure (http_status, schema_mismatch, no_tool_call, refusal, ...). */
  details?: { reason: string; [key: string]: JsonValue | undefined };
}

export interface AgentTaskResult<TStep extends Record<string, unknown> = Record<string, JsonValue>> {
  success: boolean;
  stepResult: { step: string } & Partial<TStep>;
  updatedCSI: CSI;
  agentTaskId?: string;
  error?: AgentTaskError;
}

/** The shape of client the executor accepts: the official `openai` client fits. */
export interface OpenAIClient {
  chat: { completions: { create(params: object, options?: object): Promise<object> } };
}

export interface OpenAIFetchConfig {
  apiKey?: string;
  baseURL?: string;
  organization?: string;
  project?: string;
  fetch?: typeof fetch;
  /** Per attempt (default 600000, as the official SDK). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 2, as the official SDK). */
  maxRetries?: number;
}

export interface ExecuteOptions {
  signal?: AbortSignal;
  /** All attempts together must finish within this many ms. */
  deadlineMs?: number;
}

export declare class AgentTaskExecutor {
  constructor(clientOrConfig?: OpenAIClient | OpenAIFetchConfig, options?: { defaultModel?: string; defaultTemperature?: number; repair?: boolean; timeoutMs?: number; maxRetries?: number; engine?: AgentEngine });
  executeAgentTask<TInput extends Record<string, unknown>, TResult extends Record<string, unknown>>(request: BaseAgentTaskRequest | Record<string, unknown>, taskInput: TInput, config: AgentTaskConfig<TInput, TResult>, options?: ExecuteOptions): Promise<AgentTaskResult<TResult>>;
}

export declare class AgentTaskBuilder<TResult extends Record<string, unknown> = Record<string, JsonValue>> {
  static create(taskName: string): AgentTaskBuilder;
  name(taskName: string): this;
  type(taskType: AgentTaskConfig['taskType']): this;
  route(apiRoute: string): this;
  tool(toolName: string): this;
  systemPrompt(prompt: string): this;
  userPrompt(template: (data: Record<string, unknown>) => string): this;
  /** A JSON Schema function definition. */
  function(definition: AgentTaskFunction): AgentTaskBuilder<Record<string, JsonValue>>;
  /** A zod 4 schema as the parameters: converted with zod's JSON Schema export, and the result typed by it. */
  function<S extends z4.ZodObject>(definition: { name: string; description: string; parameters: S; strict?: boolean }): AgentTaskBuilder<z4.infer<S>>;
  progress(percent: number): this;
  model(config: AgentTaskConfig['modelConfig']): this;
  /** A fresh, validated copy; throws "Missing required field: <field>". */
  build(): AgentTaskConfig<Record<string, unknown>, TResult>;
}

type BrandContext = { brand_name?: string; colors?: JsonValue; messaging?: string; referenceImages?: unknown[] };

export declare const AgentTaskConfigs: {
  INTENT_ANALYSIS: AgentTaskConfig<{ prompt: string; brandContext?: BrandContext }>;
  BRAND_ANALYSIS: AgentTaskConfig<{ brandContext?: BrandContext }>;
  COMPLEXITY_ASSESSMENT: AgentTaskConfig<{ prompt: string; brandContext?: BrandContext; inferredAssets?: number; brandStrength?: string }>;
};

export declare function createTaskHelpers(executor: AgentTaskExecutor): {
  createIntentAnalysisTask(request: BaseAgentTaskRequest & { prompt: string; brandContext: BrandContext }): Promise<AgentTaskResult>;
  createBrandAnalysisTask(request: BaseAgentTaskRequest & { brandContext: BrandContext }): Promise<AgentTaskResult>;
  createComplexityAssessmentTask(request: BaseAgentTaskRequest & { prompt: string; brandContext: BrandContext; inferredAssets: number; brandStrength: string }): Promise<AgentTaskResult>;
};

export declare function handleAgentTaskError(error: unknown, taskName: string):
  | { success: false; error: 'Invalid request data'; details: z.ZodIssue[]; message?: undefined }
  | { success: false; error: string; message: string; details?: undefined };

export declare function validateAgentTaskRequest(data: unknown): { success: boolean; data?: BaseAgentTaskRequest; errors?: z.ZodIssue[] };
