#include "agent_tools/json.hpp"

#include <string>

namespace agent_tools {

namespace {

// One linear pass that finds the deepest nesting without building anything, so a document like
// "[[[[...]]]]" is rejected before the parser (and later the serialiser) would recurse on it.
std::size_t nesting_depth(std::string_view text) noexcept {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[': case '{':
        if (++depth > deepest) deepest = depth;
        break;
      case ']': case '}':
        if (depth) --depth;
        break;
      default: break;
    }
  }
  return deepest;
}

}  // namespace

json parse_json(std::string_view text, ErrorCode on_malformed, std::string_view what) {
  if (text.size() > MAX_MESSAGE_BYTES) {
    throw Error(ErrorCode::input_too_large,
                std::string(what) + " is " + std::to_string(text.size()) + " bytes; the limit is " +
                    std::to_string(MAX_MESSAGE_BYTES));
  }
  if (nesting_depth(text) > MAX_JSON_DEPTH) {
    throw Error(ErrorCode::input_too_large, std::string(what) + " is nested deeper than " +
                                                std::to_string(MAX_JSON_DEPTH) + " levels");
  }
  json value = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    throw Error(on_malformed, std::string(what) + " is not valid JSON (or not valid UTF-8)");
  }
  return value;
}

std::string dump_json(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace agent_tools
