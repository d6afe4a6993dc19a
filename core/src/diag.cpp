// diag.echo: a bridge exerciser. It performs each host call named in the input and returns the
// replies, so tests can check that every reply reached the coroutine that asked for it.
#include "agent_tools/operations.hpp"

namespace agent_tools::diag {

namespace {

const json& field(const json& object, const char* name) {
  static const json missing;
  auto it = object.find(name);
  return it == object.end() ? missing : *it;
}

std::uint32_t small_count(const json& value, const char* what, std::uint32_t max) {
  if (!value.is_number_unsigned() || value.get<std::uint64_t>() > max) {
    throw Error(ErrorCode::invalid_argument,
                std::string(what) + " must be an integer from 0 to " + std::to_string(max));
  }
  return value.get<std::uint32_t>();
}

}  // namespace

Task<json> echo(OpContext& ctx, json input) {
  if (!input.is_object() || !field(input, "calls").is_array()) {
    throw Error(ErrorCode::invalid_argument, "diag.echo needs {calls: [...]}");
  }
  json results = json::array();
  for (const json& call : input["calls"]) {
    const json& kind = field(call, "kind");
    if (kind == "kv") {
      const json& args = field(call, "args");
      if (!args.is_array() || args.empty()) {
        throw Error(ErrorCode::invalid_argument, "kv needs a non-empty args array");
      }
      std::vector<std::string> command;
      for (const json& arg : args) {
        if (!arg.is_string()) throw Error(ErrorCode::invalid_argument, "kv args must be strings");
        command.push_back(arg.get<std::string>());
      }
      results.push_back(parse_json(co_await ctx.kv(command), ErrorCode::host_bad_reply, "host reply"));
    } else if (kind == "http") {
      results.push_back(parse_json(co_await ctx.http(dump_json(field(call, "request"))), ErrorCode::host_bad_reply, "host reply"));
    } else if (kind == "sleep") {
      results.push_back(co_await ctx.sleep(small_count(field(call, "ms"), "ms", 60'000)));
    } else if (kind == "now") {
      results.push_back(co_await ctx.host_now());
    } else if (kind == "random") {
      results.push_back(co_await ctx.host_random_hex(small_count(field(call, "bytes"), "bytes", MAX_RANDOM_BYTES)));
    } else {
      throw Error(ErrorCode::invalid_argument, "unknown host call kind: " + kind.dump());
    }
  }
  co_return json{{"tag", field(input, "tag")}, {"results", std::move(results)}};
}

}  // namespace agent_tools::diag
