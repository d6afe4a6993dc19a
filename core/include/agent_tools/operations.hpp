// The table of operations the host can start by name. Each is a coroutine taking its context and
// its input as JSON text and returning its value as JSON text (or throwing Error): the lock
// operations read and write the text directly; the others go through a document tree.
#pragma once

#include <string_view>

#include "agent_tools/coro.hpp"
#include "agent_tools/engine.hpp"
#include "agent_tools/json.hpp"

namespace agent_tools {

using OperationFn = Task<std::string> (*)(OpContext&, std::string input);

/// nullptr when no operation has this name.
OperationFn find_operation(std::string_view name) noexcept;

namespace diag {
/// Performs the host calls listed in input.calls one after another and returns their replies:
/// {"tag": input.tag, "results": [...]}. Exercises the bridge in tests, benchmarks and the demo.
Task<json> echo(OpContext& ctx, json input);
}  // namespace diag

}  // namespace agent_tools
