#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "agent_tools/json.hpp"
#include "agent_tools/json_text.hpp"

using agent_tools::ErrorCode;
using agent_tools::parse_json;

namespace {
ErrorCode code_of(std::string_view text) {
  try {
    parse_json(text, ErrorCode::invalid_argument, "doc");
  } catch (const agent_tools::Error& e) {
    return e.code();
  }
  FAIL("no error for " << text);
  return ErrorCode::internal;
}
}  // namespace

TEST_CASE("parse_json accepts documents up to the depth limit and counts brackets in strings as text") {
  std::string deep = std::string(agent_tools::MAX_JSON_DEPTH, '[') + std::string(agent_tools::MAX_JSON_DEPTH, ']');
  CHECK(parse_json(deep, ErrorCode::invalid_argument, "doc").is_array());
  CHECK(parse_json("\"[[[[[[\\\"[[[[\"", ErrorCode::invalid_argument, "doc").is_string());
  CHECK(code_of("[" + deep + "]") == ErrorCode::input_too_large);
}

TEST_CASE("parse_json rejects malformed text with the caller's code") {
  CHECK(code_of("") == ErrorCode::invalid_argument);
  CHECK(code_of("{\"a\":}") == ErrorCode::invalid_argument);
  CHECK(code_of("\"\\ud800\"") == ErrorCode::invalid_argument);  // lone surrogate escape
  CHECK(code_of("\"\xc3\x28\"") == ErrorCode::invalid_argument);  // invalid UTF-8
  try {
    parse_json("nope", ErrorCode::host_bad_reply, "kv reply");
    FAIL("no error");
  } catch (const agent_tools::Error& e) {
    CHECK(e.code() == ErrorCode::host_bad_reply);
    CHECK(e.message() == "kv reply is not valid JSON (or not valid UTF-8)");
  }
}

TEST_CASE("dump_json never throws on invalid UTF-8") {
  agent_tools::json value = std::string("ok\xff");
  CHECK(agent_tools::dump_json(value) == "\"ok\xef\xbf\xbd\"");
}

TEST_CASE("Error round-trips through its JSON form") {
  agent_tools::Error e(ErrorCode::timeout, "late", {{"ms", 5}});
  auto back = agent_tools::Error::from_json(e.to_json(), ErrorCode::host_error);
  CHECK(back.code() == ErrorCode::timeout);
  CHECK(back.message() == "late");
  CHECK(back.details() == agent_tools::json({{"ms", 5}}));
  CHECK(agent_tools::Error::from_json(42, ErrorCode::host_error).code() == ErrorCode::host_bad_reply);
}

TEST_CASE("write_json matches nlohmann's serialiser on valid documents") {
  using agent_tools::json;
  std::string all_bytes;
  for (int c = 1; c < 128; ++c) all_bytes += static_cast<char>(c);
  const json documents[] = {
      nullptr, true, false, 0, -17, 18446744073709551615ULL, 1.5, -2.25e-7, "",
      all_bytes, "ünï\xF0\x9F\x98\x80 \xE2\x80\xA8", json::array(), json::object(),
      json::parse(R"({"b":[1,{"c":"d\n"}],"a":null,"\u0001":"\u001f\"\\"})"),
  };
  for (const json& doc : documents) {
    CHECK(agent_tools::dump_json(doc) == doc.dump());
  }
}

TEST_CASE("append_json_string replaces each invalid UTF-8 byte and escapes control characters") {
  std::string out;
  agent_tools::append_json_string(out, "a\xC3\x28" "b\xED\xA0\x80" "c\xF4\x90\x80\x80" "d\x01");
  CHECK(out == "\"a\xEF\xBF\xBD(b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "d\\u0001\"");
  CHECK_FALSE(agent_tools::json::parse(out, nullptr, false).is_discarded());
}

TEST_CASE("append_json_string replaces bytes that never start a UTF-8 sequence (F5-FF)") {
  std::string out;
  agent_tools::append_json_string(out, "\xF5\x80\x80" "\xFF\xBF\xBF");
  std::string want = "\"";
  for (int i = 0; i < 6; ++i) want += "\xEF\xBF\xBD";
  CHECK(out == want + "\"");
  CHECK_FALSE(agent_tools::json::parse(out, nullptr, false).is_discarded());
}

namespace {

// The escaper's contract, one byte at a time: the reference the word-at-a-time escaper must match.
std::string escape_reference(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  auto p = reinterpret_cast<const unsigned char*>(text.data());
  const auto end = p + text.size();
  while (p < end) {
    unsigned c = *p;
    std::size_t n = 0;  // length of a valid UTF-8 sequence at p
    if (c >= 0xC2 && c <= 0xF4) {
      std::size_t want = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      if (static_cast<std::size_t>(end - p) >= want) {
        // Valid = the same as a strict decoder accepts: nlohmann's parser is the judge.
        std::string one = "\"" + std::string(reinterpret_cast<const char*>(p), want) + "\"";
        try {
          agent_tools::parse_json(one, ErrorCode::invalid_argument, "t");
          n = want;
        } catch (const agent_tools::Error&) {
        }
      }
    }
    if (n > 0) {
      out.append(reinterpret_cast<const char*>(p), n);
      p += n;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else if (c >= 0x80) {
          out += "\xEF\xBF\xBD";
        } else {
          out += static_cast<char>(c);
        }
    }
    ++p;
  }
  return out + "\"";
}

}  // namespace

TEST_CASE("append_json_string matches the byte-at-a-time reference on random text, and decode_json_string inverts it") {
  // Alphabet weighted towards what the word-at-a-time paths treat specially, so specials land at
  // every offset of a word and UTF-8 sequences straddle word boundaries.
  const std::vector<std::string> pieces = {"a", "b", "xyz", "\"", "\\", "\n", "\t", "\x01", "\x1f", "\x7f", "/",
                                           "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xC3", "\xE2\x82",
                                           "\xFF", "\xED\xA0\x80", "12345678", "{\"k\":[1,2]}"};
  std::mt19937_64 next(0x9E3779B97F4A7C15);
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    const std::size_t count = next() % 24;
    for (std::size_t i = 0; i < count; ++i) text += pieces[next() % pieces.size()];
    std::string prefix = round % 2 ? "kept" : "";
    std::string escaped = prefix;
    agent_tools::append_json_string(escaped, text);
    REQUIRE(escaped == prefix + escape_reference(text));
    std::string literal = escaped.substr(prefix.size());
    // The escaped literal is valid JSON; decoding it gives the text with invalid bytes replaced.
    agent_tools::json parsed = agent_tools::parse_json(literal, ErrorCode::invalid_argument, "escaped");
    CHECK(agent_tools::decode_json_string(literal) == parsed.get<std::string>());
  }
}

TEST_CASE("decode_json_string decodes every escape form") {
  const std::string literal = R"("a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00 end of a longer run of plain text")";
  CHECK(agent_tools::decode_json_string(literal) ==
        agent_tools::parse_json(literal, ErrorCode::invalid_argument, "t").get<std::string>());
  CHECK(agent_tools::decode_json_string("\"\"").empty());
}

TEST_CASE("number_value rounds like strtod (exact fast path and its fallback)") {
  std::mt19937_64 next(0xD1B54A32D192ED03);
  auto digits = [&](std::size_t n, bool leading) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out += static_cast<char>('0' + next() % 10);
    if (!leading && out.size() > 1 && out[0] == '0') out[0] = '1';
    return out;
  };
  std::vector<std::string> cases = {"0", "-0", "0.87", "1e22", "1e23", "9007199254740993", "0.1", "123456789012345678901234",
                                    "0.0000000000000000000001234", "2.2250738585072014e-308", "1.7976931348623157e308", "5e-324"};
  for (int i = 0; i < 20000; ++i) {
    std::string text = next() % 4 == 0 ? "-" : "";
    text += digits(1 + next() % 21, false);
    if (next() % 2) text += "." + digits(1 + next() % 20, true);
    if (next() % 3 == 0) text += (next() % 2 ? "e" : "E") + std::string(next() % 2 ? "-" : "") + std::to_string(next() % 40);
    cases.push_back(text);
  }
  for (const std::string& text : cases) {
    const double expected = std::strtod(text.c_str(), nullptr), got = agent_tools::number_value(text);
    CHECK_MESSAGE(std::memcmp(&expected, &got, sizeof got) == 0, text);
  }
}
