#include <doctest/doctest.h>

#include "agent_tools/json.hpp"

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
