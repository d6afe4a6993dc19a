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

/// Input and result are JSON text (see js/src/tasks.js for the input's fields).
Task<std::string> execute(OpContext& ctx, std::string input);

/// The request body the core would send for `input` (no I/O): for conformance tests.
Task<std::string> build_request(OpContext& ctx, std::string input);

/// True for model ids that reject `temperature`/`top_p` and want `max_completion_tokens`
/// (o1, o3, o4 families and gpt-5).
bool is_reasoning_model(std::string_view model) noexcept;

}  // namespace agent_tools::tasks
