#include "agent_tools/operations.hpp"

#include <array>
#include <utility>

#include "agent_tools/kv.hpp"
#include "agent_tools/tasks.hpp"

namespace agent_tools {

namespace {

// A constant table (no static constructors: workerd forbids time and randomness at start-up and
// nothing here needs them).
constexpr std::array<std::pair<std::string_view, OperationFn>, 9> kOperations{{
    {"diag.echo", &diag::echo},
    {"kv.acquire", &kv::acquire},
    {"kv.release", &kv::release},
    {"kv.extend", &kv::extend},
    {"kv.inspect", &kv::inspect},
    {"kv.list", &kv::list},
    {"kv.hold", &kv::hold},
    {"tasks.execute", &tasks::execute},
    {"tasks.build_request", &tasks::build_request},
}};

}  // namespace

OperationFn find_operation(std::string_view name) noexcept {
  for (const auto& [entry_name, fn] : kOperations) {
    if (entry_name == name) return fn;
  }
  return nullptr;
}

}  // namespace agent_tools
