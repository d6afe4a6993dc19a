// tasks.execute: one agent task as OpenAI function calling. The core builds the Chat Completions
// request (a forced tool call), sends it through the host's `http` function, retries per policy,
// parses and validates the tool call against the function's JSON Schema (optionally asking the
// model once to repair it), and returns the original package's AgentTaskResult with the updated
// CSI. Failures are results ({success: false, error}), never exceptions, as in the original.
#pragma once

#include "agent_tools/coro.hpp"
#include "agent_tools/engine.hpp"
#include "agent_tools/json.hpp"

namespace agent_tools::tasks {

/// Input and result are JSON text. The input names the task by an id the host chose and carries
/// its spec ({taskName, taskType, progressPercent, systemPrompt, functionDefinition, modelConfig,
/// defaults, http: {url, timeoutMs, maxRetries, repair}}) as `taskSpec` only when the core has not
/// compiled it yet; for an unknown id without a spec the result is {"unknownTask":true} and the
/// host sends the call again with the spec. The rest is per call: previousCSI (as the caller gave
/// it, checked by the host), userPrompt, deadlineMs. See js/src/tasks.js.
Task<std::string> execute(OpContext& ctx, std::string input);

/// True for model ids that reject `temperature`/`top_p` and want `max_completion_tokens`
/// (o1, o3, o4 families and gpt-5).
bool is_reasoning_model(std::string_view model) noexcept;

}  // namespace agent_tools::tasks
