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

namespace {

// Length of the valid UTF-8 sequence starting at `p` (1-4), or 0 if it is not valid.
std::size_t utf8_sequence(const unsigned char* p, const unsigned char* end) noexcept {
  unsigned char c = p[0];
  std::size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
  if (n == 0 || static_cast<std::size_t>(end - p) < n) return 0;
  for (std::size_t i = 1; i < n; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
  }
  if (n == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))) return 0;  // overlong, surrogate
  if (n == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))) return 0;  // overlong, > U+10FFFF
  return n;
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  auto p = reinterpret_cast<const unsigned char*>(text.data());
  const auto end = p + text.size();
  const unsigned char* run = p;  // start of bytes that can be copied as they are
  while (p < end) {
    unsigned char c = *p;
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++p;
      continue;
    }
    if (c >= 0x80) {
      if (std::size_t n = utf8_sequence(p, end)) {
        p += n;
        continue;
      }
    }
    out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += "\xEF\xBF\xBD";  // invalid UTF-8 byte: U+FFFD, as dump_json promises
        }
    }
    run = ++p;
  }
  out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
  out += '"';
}

// The core's own serialiser: strings through the escaper above, numbers through nlohmann (for
// its exact float formatting). Several times faster than json::dump on the documents the core
// writes on every host call, and it never throws.
void write_json(std::string& out, const json& value) {
  switch (value.type()) {
    case json::value_t::string:
      append_json_string(out, value.get_ref<const std::string&>());
      break;
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const json& item : value) {
        if (!first) out += ',';
        first = false;
        write_json(out, item);
      }
      out += ']';
      break;
    }
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, item] : value.items()) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, key);
        out += ':';
        write_json(out, item);
      }
      out += '}';
      break;
    }
    case json::value_t::number_integer:
      out += std::to_string(value.get<std::int64_t>());
      break;
    case json::value_t::number_unsigned:
      out += std::to_string(value.get<std::uint64_t>());
      break;
    case json::value_t::boolean:
      out += value.get<bool>() ? "true" : "false";
      break;
    case json::value_t::null:
    case json::value_t::discarded:
      out += "null";
      break;
    default:  // floats and binary: nlohmann's formatting
      out += value.dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

std::string dump_json(const json& value) {
  std::string out;
  write_json(out, value);
  return out;
}

}  // namespace agent_tools
