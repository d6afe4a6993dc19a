// @growthub/agent-tools/tasks: OpenAI function calling. The C++ core builds the request, retries,
// parses and validates the tool call and updates the CSI; this module keeps the original API,
// renders the caller's prompt template, and hands the core an `http` host function (fetch, or
// the caller's own OpenAI client).
import { z } from 'zod';
import { toJSONSchema } from 'zod/v4';
import { createClientTransport, createFetchTransport } from '#adapters/openai.js';
import { defaultEngineIfReady, getDefaultEngine } from './engine.js';
import { AgentToolsError } from './errors.js';
import { ErrorCode } from './generated/constants.js';

/** The original's request rules (zod, strip mode), the one source of truth for them. */
export const BaseAgentTaskRequestSchema = z.object({
  threadId: z.string().uuid(),
  userId: z.string().min(1),
  agentType: z.enum(['CONTENT_GENERATION_AGENT', 'TEXT_ANALYSIS_AGENT']),
  taskSequence: z.number().int().min(1),
  previousCSI: z.object({
    completedSteps: z.array(z.string()).default([]),
    currentProgress: z.number().default(0),
    totalSteps: z.number().default(4),
    currentStep: z.string().default('pending'),
  }).optional(),
});

export function validateAgentTaskRequest(data) {
  const parsed = BaseAgentTaskRequestSchema.safeParse(data);
  if (parsed.success) return { success: true, data: parsed.data };
  return { success: false, errors: parsed.error.issues };
}

export function handleAgentTaskError(error, taskName) {
  if (error instanceof z.ZodError) return { success: false, error: 'Invalid request data', details: error.errors };
  return { success: false, error: `${taskName} failed`, message: error instanceof Error ? error.message : 'Unknown error' };
}

const TASK_FIELDS = ['taskName', 'taskType', 'toolName', 'systemPrompt', 'userPromptTemplate', 'functionDefinition', 'progressPercent'];

/** Fluent task definition; build() returns a fresh, validated copy every time. */
export class AgentTaskBuilder {
  #config = {};

  static create(taskName) {
    return new AgentTaskBuilder().name(taskName);
  }

  name(taskName) { this.#config.taskName = taskName; return this; }
  type(taskType) { this.#config.taskType = taskType; return this; }
  route(apiRoute) { this.#config.apiRoute = apiRoute; return this; }
  tool(toolName) { this.#config.toolName = toolName; return this; }
  systemPrompt(prompt) { this.#config.systemPrompt = prompt; return this; }
  userPrompt(template) { this.#config.userPromptTemplate = template; return this; }
  /**
   * The function the model must call. `parameters` is a JSON Schema, or a zod 4 schema, which is
   * converted with zod's own JSON Schema export (and typed as the task's result).
   */
  function(definition) {
    const parameters = definition?.parameters;
    if (parameters?._zod) {
      const { $schema, ...schema } = toJSONSchema(parameters);
      definition = { ...definition, parameters: schema };
    } else if (parameters?._def && typeof parameters.safeParse === 'function') {
      throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT,
        'zod 3 schemas have no JSON Schema export: use a zod 4 schema (zod@4, or "zod/v4" in zod 3.25) or a JSON Schema');
    }
    this.#config.functionDefinition = definition;
    return this;
  }
  progress(percent) { this.#config.progressPercent = percent; return this; }
  model(config) { this.#config.modelConfig = config; return this; }

  build() {
    const c = this.#config;
    for (const field of TASK_FIELDS) {
      const value = c[field];
      if (value === undefined || value === null || value === '') throw new AgentToolsError(ErrorCode.VALIDATION_FAILED, `Missing required field: ${field}`);
    }
    if (typeof c.userPromptTemplate !== 'function') throw new AgentToolsError(ErrorCode.VALIDATION_FAILED, 'userPromptTemplate must be a function');
    if (typeof c.progressPercent !== 'number' || !Number.isFinite(c.progressPercent)) throw new AgentToolsError(ErrorCode.VALIDATION_FAILED, 'progressPercent must be a finite number');
    const fn = c.functionDefinition;
    if (typeof fn !== 'object' || typeof fn.name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(fn.name)) {
      throw new AgentToolsError(ErrorCode.VALIDATION_FAILED, 'functionDefinition.name must be 1-64 letters, digits, _ or -');
    }
    // A fresh copy: later setter calls must not change configs already built.
    const copy = { ...c, functionDefinition: JSON.parse(JSON.stringify(fn)) };
    if (c.modelConfig) copy.modelConfig = { ...c.modelConfig };
    return copy;
  }
}

const brandName = (data, fallback) => data?.brandContext?.brand_name || fallback;
const referenceCount = (data) => data?.brandContext?.referenceImages?.length || 0;
const analysis = { analysis: { type: 'string' }, conclusion: { type: 'string' }, confidence: { type: 'number' } };
const strings = { type: 'array', items: { type: 'string' } };

/** The three built-in tasks (same names, tools, functions, schemas and progress as the original). */
export const AgentTaskConfigs = {
  INTENT_ANALYSIS: {
    taskName: 'intent_analysis',
    taskType: 'analysis',
    apiRoute: '/api/v2/decomposition/intent-analysis',
    toolName: 'o3_mini_intent_analyzer',
    systemPrompt: 'You read a request for marketing content and work out, step by step, what the person wants made: the intent, how many assets, and of which kinds. Report your reasoning and how confident you are.',
    userPromptTemplate: (data) => `Work out the intent of "${data?.prompt}" for ${brandName(data, 'brand')} (${referenceCount(data)} ref images)`,
    functionDefinition: {
      name: 'analyze_intent',
      description: 'Report the content-generation intent found in a prompt.',
      parameters: {
        type: 'object',
        properties: { ...analysis, inferred_assets: { type: 'integer' }, asset_types: strings, reasoning_steps: strings },
        required: ['analysis', 'conclusion', 'confidence', 'inferred_assets'],
      },
    },
    progressPercent: 25,
  },
  BRAND_ANALYSIS: {
    taskName: 'brand_analysis',
    taskType: 'analysis',
    apiRoute: '/api/v2/decomposition/brand-analysis',
    toolName: 'o3_mini_brand_analyzer',
    systemPrompt: 'You judge whether a brand\'s assets are ready to generate content from: how complete and consistent they are and how strong the brand comes across.',
    userPromptTemplate: (data) => [
      `Brand: ${brandName(data, 'Unknown')}`,
      `Colors: ${data?.brandContext?.colors ? JSON.stringify(data.brandContext.colors) : 'None'}`,
      `Messaging: ${data?.brandContext?.messaging || 'None'}`,
      `Reference Images: ${referenceCount(data)}`,
    ].join('\n'),
    functionDefinition: {
      name: 'analyze_brand',
      description: 'Report how ready the brand context is for content generation.',
      parameters: {
        type: 'object',
        properties: {
          ...analysis,
          brand_strength: { type: 'string', enum: ['weak', 'moderate', 'strong', 'excellent'] },
          brand_consistency_score: { type: 'number' },
          recommendations: strings,
        },
        required: ['analysis', 'conclusion', 'confidence', 'brand_strength'],
      },
    },
    progressPercent: 50,
  },
  COMPLEXITY_ASSESSMENT: {
    taskName: 'complexity_assessment',
    taskType: 'analysis',
    apiRoute: '/api/v2/decomposition/complexity-assessment',
    toolName: 'o3_mini_complexity_analyzer',
    systemPrompt: 'You estimate how hard a content-generation job will be, from how many assets it needs, how strong the brand is and what executing it takes.',
    userPromptTemplate: (data) => [
      'Estimate the complexity of this generation job.',
      `Prompt: "${data?.prompt || ''}"`,
      `Brand: ${brandName(data, 'Unknown')} (${data?.brandStrength || 'Unknown'})`,
      `Assets: ${data?.inferredAssets || 1}`,
      `References: ${referenceCount(data)}`,
    ].join('\n'),
    functionDefinition: {
      name: 'assess_complexity',
      description: 'Report the estimated complexity of a content-generation job.',
      parameters: {
        type: 'object',
        properties: {
          ...analysis,
          complexity_level: { type: 'string', enum: ['simple', 'moderate', 'complex', 'expert'] },
          complexity_score: { type: 'number' },
          estimated_duration_ms: { type: 'integer' },
          resource_requirements: strings,
          optimization_suggestions: strings,
        },
        required: ['analysis', 'conclusion', 'confidence', 'complexity_level', 'complexity_score'],
      },
    },
    progressPercent: 75,
  },
};

// Task specs (the static part of a call: prompts, function, model settings) by their JSON text.
// Each distinct spec gets an id; the core compiles a spec once and keeps it under its id, so a
// call sends only what changes. Bounded by count and by characters (a spec may carry a long system
// prompt); the ids keep growing, so a cleared map never reuses one.
const specIds = new Map();
let specChars = 0;
let nextSpecId = 1;
function specId(text) {
  let id = specIds.get(text);
  if (id === undefined) {
    if (specIds.size >= 256 || specChars + text.length > 4 * 1024 * 1024) {
      specIds.clear();
      specChars = 0;
    }
    id = nextSpecId++;
    specIds.set(text, id);
    specChars += text.length;
  }
  return id;
}

function specText(spec) {
  try {
    return JSON.stringify(spec);
  } catch (error) {
    throw new AgentToolsError(ErrorCode.INVALID_ARGUMENT, `the task config is not JSON-serialisable: ${error.message}`);
  }
}

function failure(request, taskName, code, message, details) {
  const csi = request?.previousCSI ?? { completedSteps: [], currentProgress: 0, totalSteps: 4, currentStep: 'failed' };
  return { success: false, stepResult: { step: taskName }, updatedCSI: csi, error: { message, code, details } };
}

export class AgentTaskExecutor {
  #http;
  #defaults;
  #transport;

  /**
   * @param clientOrConfig an object with chat.completions.create (the official `openai` client or
   *   alike), or {apiKey, baseURL?, organization?, project?, fetch?, timeoutMs?, maxRetries?} for
   *   the built-in fetch transport (OPENAI_API_KEY / OPENAI_BASE_URL are read when absent)
   * @param options {defaultModel?, defaultTemperature?, repair?, timeoutMs?, maxRetries?, engine?}
   *   (timeoutMs and maxRetries here apply to an injected client too)
   */
  constructor(clientOrConfig, options = {}) {
    const isClient = typeof clientOrConfig?.chat?.completions?.create === 'function';
    const config = isClient ? {} : (clientOrConfig ?? {});
    this.#transport = isClient ? createClientTransport(clientOrConfig) : createFetchTransport(config);
    this.#http = {
      url: this.#transport.url,
      timeoutMs: options.timeoutMs ?? config.timeoutMs ?? 600_000,
      maxRetries: options.maxRetries ?? config.maxRetries ?? 2,
      repair: options.repair ?? false,
    };
    this.#defaults = {
      model: options.defaultModel || 'gpt-4o-mini',
      temperature: options.defaultTemperature || 0.3,
      engine: options.engine ?? null,
    };
  }

  /**
   * Runs one task. Resolves with {success, stepResult, updatedCSI, error?}; failures (invalid
   * request, HTTP errors after retries, invalid tool calls, cancellation) are results, not
   * rejections. `options.signal` cancels; `options.deadlineMs` bounds all attempts together.
   */
  async executeAgentTask(request, taskInput, config, options = {}) {
    const taskName = config?.taskName;
    const parsed = BaseAgentTaskRequestSchema.safeParse(request);
    if (!parsed.success) {
      return failure(request, taskName, ErrorCode.VALIDATION_FAILED, parsed.error.message, { reason: 'invalid_request', issues: parsed.error.issues });
    }
    let userPrompt;
    try {
      userPrompt = config.userPromptTemplate(taskInput);
    } catch (error) {
      return failure(request, taskName, ErrorCode.TASK_EXECUTION_FAILED, `userPromptTemplate threw: ${error?.message ?? error}`, { reason: 'prompt_template' });
    }
    const spec = {
      taskName,
      taskType: config.taskType,
      progressPercent: config.progressPercent,
      systemPrompt: config.systemPrompt,
      functionDefinition: config.functionDefinition,
      modelConfig: config.modelConfig ?? {},
      defaults: { model: this.#defaults.model, temperature: this.#defaults.temperature },
      http: this.#http,
    };
    const input = {
      task: 0,
      // As given: the schema above only checked it (its defaults are the core's too).
      previousCSI: request.previousCSI ?? null,
      userPrompt: String(userPrompt),
    };
    if (options.deadlineMs) input.deadlineMs = Date.now() + options.deadlineMs;
    const engine = this.#defaults.engine ?? defaultEngineIfReady() ?? (await getDefaultEngine());
    const run = { host: { http: this.#transport.http }, signal: options.signal };
    try {
      input.task = specId(specText(spec));
      const result = await engine.run('tasks.execute', input, run);
      if (!result.unknownTask) return result;
      // First use of this spec on this engine (or the core evicted it): send it along.
      input.taskSpec = spec;
      return await engine.run('tasks.execute', input, run);
    } catch (error) {
      // Only problems before the core could report a result land here (e.g. an input too large).
      const code = error instanceof AgentToolsError ? error.code : ErrorCode.TASK_EXECUTION_FAILED;
      return failure(request, taskName, code, error?.message ?? String(error), { reason: 'engine' });
    }
  }
}

export function createTaskHelpers(executor) {
  return {
    createIntentAnalysisTask: (request) =>
      executor.executeAgentTask(request, { prompt: request.prompt, brandContext: request.brandContext }, AgentTaskConfigs.INTENT_ANALYSIS),
    createBrandAnalysisTask: (request) =>
      executor.executeAgentTask(request, { brandContext: request.brandContext }, AgentTaskConfigs.BRAND_ANALYSIS),
    createComplexityAssessmentTask: (request) =>
      executor.executeAgentTask(request, {
        prompt: request.prompt,
        brandContext: request.brandContext,
        inferredAssets: request.inferredAssets,
        brandStrength: request.brandStrength,
      }, AgentTaskConfigs.COMPLEXITY_ASSESSMENT),
  };
}
