// JSON at the boundary: every document crossing into the core is parsed here, with the size and
// depth limits checked first, so hostile input becomes a typed Error instead of deep recursion,
// an allocation failure or an exception from inside nlohmann.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "agent_tools/error.hpp"

namespace agent_tools {

/// Parses `text` or throws Error(`on_malformed`) naming `what`. Documents larger than
/// MAX_MESSAGE_BYTES or nested deeper than MAX_JSON_DEPTH throw INPUT_TOO_LARGE; invalid JSON and
/// invalid UTF-8 inside strings throw `on_malformed`.
json parse_json(std::string_view text, ErrorCode on_malformed, std::string_view what);

/// Serialises without ever throwing: invalid UTF-8 in strings is replaced with U+FFFD.
std::string dump_json(const json& value);
/// The same, appended to `out`.
void write_json(std::string& out, const json& value);
/// `text` as a JSON string literal (quoted, escaped, invalid UTF-8 replaced), appended to `out`.
void append_json_string(std::string& out, std::string_view text);
/// The value of a string literal (quotes included) that a JsonReader has already validated; only
/// such text may be passed (nothing is checked again).
std::string decode_json_string(std::string_view literal);

}  // namespace agent_tools
