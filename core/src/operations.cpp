#include "agent_tools/operations.hpp"

#include <array>
#include <utility>

#include "agent_tools/kv.hpp"
#include "agent_tools/tasks.hpp"

namespace agent_tools {

namespace {

// An operation written against the document tree, as an OperationFn: parse in, serialise out.
template <Task<json> (*Operation)(OpContext&, json)>
Task<std::string> with_tree(OpContext& ctx, std::string input) {
  json value = co_await Operation(ctx, parse_json(input, ErrorCode::invalid_argument, "input"));
  co_return dump_json(value);
}

// A constant table (no static constructors: workerd forbids time and randomness at start-up and
// nothing here needs them).
constexpr std::array<std::pair<std::string_view, OperationFn>, 8> kOperations{{
    {"diag.echo", &with_tree<&diag::echo>},
    {"kv.acquire", &kv::acquire},
    {"kv.release", &kv::release},
    {"kv.extend", &kv::extend},
    {"kv.inspect", &kv::inspect},
    {"kv.list", &kv::list},
    {"kv.hold", &kv::hold},
    {"tasks.execute", &tasks::execute},
}};

}  // namespace

OperationFn find_operation(std::string_view name) noexcept {
  for (const auto& [entry_name, fn] : kOperations) {
    if (entry_name == name) return fn;
  }
  return nullptr;
}

}  // namespace agent_tools
