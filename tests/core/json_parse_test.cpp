// parse_json against nlohmann::ordered_json::parse, the parser it replaced: on every input both must
// accept with structurally identical values (type, value and key order at every node) or both
// reject. Inputs: the JSON-Schema-Test-Suite files Debian installs (and the repository's ../shared
// copy), a hand-written list of edge cases, and seeded random mutations of small documents.
//
// One deliberate difference: nlohmann stops reading at a NUL byte, so it accepts "[1]\0junk";
// parse_json rejects any NUL outside a string like any other trailing byte (RFC 8259, JSON.parse).
//
// The benchmark at the end is skipped by default; run it from a Release build with
//   core_tests -tc="parse_json benchmark" --no-skip
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "agent_tools/json.hpp"

#ifndef AGENT_TOOLS_SHARED_DIR
#define AGENT_TOOLS_SHARED_DIR ""
#endif

namespace {

using agent_tools::ErrorCode;
using agent_tools::json;
using namespace std::literals;

constexpr const char* kMalformed = "doc is not valid JSON (or not valid UTF-8)";

// Printable form of a test input for failure messages.
std::string show(std::string_view text) {
  std::string out;
  for (unsigned char c : text.substr(0, 300)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (text.size() > 300) out += "...(" + std::to_string(text.size()) + " bytes)";
  return out;
}

// Empty when `a` and `b` have the same type, value and key order at every node; otherwise the
// JSON pointer of the first difference and what differs.
std::string difference(const json& a, const json& b, const std::string& at = "") {
  if (a.type() != b.type()) {
    return at + ": type " + a.type_name() + " (" + std::to_string(static_cast<int>(a.type())) + ") vs " +
           b.type_name() + " (" + std::to_string(static_cast<int>(b.type())) + ")";
  }
  switch (a.type()) {
    case json::value_t::object: {
      if (a.size() != b.size()) return at + ": " + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + " members";
      auto ib = b.items().begin();
      for (const auto& [key, value] : a.items()) {
        if (key != ib.key()) return at + ": key " + show(key) + " vs " + show(ib.key());
        if (auto d = difference(value, ib.value(), at + "/" + key); !d.empty()) return d;
        ++ib;
      }
      return "";
    }
    case json::value_t::array: {
      if (a.size() != b.size()) return at + ": " + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + " items";
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (auto d = difference(a[i], b[i], at + "/" + std::to_string(i)); !d.empty()) return d;
      }
      return "";
    }
    case json::value_t::number_float:
      // Bit equality: tells -0.0 from 0.0 and catches a last-bit rounding difference.
      if (const double x = a.get<double>(), y = b.get<double>(); std::memcmp(&x, &y, sizeof x) != 0) {
        return at + ": " + a.dump() + " vs " + b.dump() + " (bits differ)";
      }
      return "";
    default:
      return a == b ? "" : at + ": " + a.dump(-1, ' ', false, json::error_handler_t::replace) + " vs " +
                               b.dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

struct Outcome {
  std::optional<json> value;  // empty: rejected
  ErrorCode code = ErrorCode::internal;
  std::string message;
};

Outcome ours(std::string_view text) {
  try {
    return {agent_tools::parse_json(text, ErrorCode::invalid_argument, "doc"), ErrorCode::internal, ""};
  } catch (const agent_tools::Error& e) {
    return {std::nullopt, e.code(), e.message()};
  }
}

std::optional<json> reference(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return std::nullopt;  // see the note at the top
  json value = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return std::nullopt;
  return value;
}

// Runs parse_json and the reference over many inputs, reporting the first few mismatches in full.
struct Differential {
  std::size_t inputs = 0, accepted = 0, failures = 0;

  void check(std::string_view text) {
    ++inputs;
    const std::string m = mismatch(text);
    if (!m.empty() && ++failures <= 10) FAIL_CHECK(m);
  }

  std::string mismatch(std::string_view text) {
    const std::optional<json> want = reference(text);
    const Outcome got = ours(text);
    if (want && !got.value) return "rejected (" + got.message + ") but nlohmann accepts: " + show(text);
    if (!want && got.value) return "accepted but nlohmann rejects: " + show(text);
    if (!want) {
      if (got.code != ErrorCode::invalid_argument || got.message != kMalformed) {
        return "rejected with the wrong error (" + got.message + "): " + show(text);
      }
      return "";
    }
    ++accepted;
    if (auto d = difference(*want, *got.value); !d.empty()) return "values differ at " + d + ": " + show(text);
    return "";
  }
};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Documents the mutation test starts from: every kind of token, escapes, multi-byte UTF-8, numbers
// at the integer/float boundaries, and a little nesting (kept shallow so mutations stay in depth).
const std::vector<std::string>& seeds() {
  static const std::vector<std::string> docs = {
      R"({"a":1,"b":[true,false,null],"c":{"d":"e"}})",
      R"([0,-0,1.5,-2.25e-7,1E+2,18446744073709551615,18446744073709551616,-9223372036854775808,-9223372036854775809])",
      R"(["\"\\\/\b\f\n\r\t","\u0041\u00e9\u20ac\ud83d\ude00","\u0000x"])",
      "{\"k\xC3\xA9y\":\"\xE2\x82\xAC \xF0\x9F\x98\x80 \xED\x9F\xBF \xEF\xBF\xBF\",\"n\":[1,2,3]}",
      R"({"status":200,"headers":{"content-type":"application/json"},"body":"{\"id\":\"x\",\"n\":[1,2.5e3]}"})",
      " \t\r\n{ \"a\" : [ 1 , { } , [ ] ] , \"a\" : \"dup\" } \n",
      R"({"x":{"y":{"z":[[[1]]]}},"x":0.1,"e":"","":{}})",
      "\xEF\xBB\xBF[\"bom\",123456789012345678901234567890,0.30000000000000004,4.9e-324,1.7976931348623157e308]",
      R"("just a string with a \\ backslash and a \" quote")",
      "-12.5e-3",
      R"([1e400,"\ud800",01])",
      // a long string with escapes, as a JSON body inside a reply
      R"({"body":"{\"id\":\"chatcmpl-1\",\"choices\":[{\"message\":{\"content\":\"line 1\\nline 2 \\u00e9\\ud83d\\ude00\\\"q\\\"\"}}],\"usage\":{\"total\":150}}\u00e9\t\/"})",
      // more members than the linear search handles, with repeats
      R"({"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"c":[3],"r":18,"a":{"a":1,"a":2}})",
  };
  return docs;
}

// One random edit of `doc`: a bit flip, a random byte, a deletion, a truncation, a duplicated
// slice, or an insertion of something parsers tend to get wrong.
void mutate(std::string& doc, std::mt19937_64& rng) {
  static const std::string_view kInserts[] = {
      "\"", "\\", ",", ":", "[", "]", "{", "}", "0", "1", "-", "+", ".", "e", "E", " ", "\t", "\n", "\r",
      "\x0b", "\f", "\0"sv, "\x01", "\x1f", "\x7f", "\x80", "\xbf", "\xc0", "\xc2", "\xdf", "\xe0", "\xed",
      "\xef", "\xf0", "\xf4", "\xf5", "\xff", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\x80", "\xe0\x80\x80",
      "\xef\xbb\xbf", "\\u", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\u00", "\\x", "/", "//", "/*", "true",
      "tru", "null", "false", "NaN", "Infinity", "1e400", "1e-400", "9999999999999999999", "-0", "00",
      ",]", ",}", "\"\":", "\"a\":1,",
  };
  auto pos = [&](std::size_t n) { return n ? static_cast<std::size_t>(rng() % n) : 0; };
  switch (rng() % 7) {
    case 0:
      if (!doc.empty()) {
        const std::size_t at = pos(doc.size());
        doc[at] = static_cast<char>(doc[at] ^ (1 << (rng() % 8)));
      }
      break;
    case 1:
      if (!doc.empty()) doc[pos(doc.size())] = static_cast<char>(rng() & 0xff);
      break;
    case 2:
      if (!doc.empty()) {
        const std::size_t at = pos(doc.size());
        doc.erase(at, 1 + pos(3));
      }
      break;
    case 3:
      doc.resize(pos(doc.size() + 1));
      break;
    case 4: {
      std::size_t from = pos(doc.size()), len = std::min<std::size_t>(doc.size() - from, 1 + pos(12));
      doc.insert(pos(doc.size() + 1), doc.substr(from, len));
      break;
    }
    default: {
      const auto& s = kInserts[pos(std::size(kInserts))];
      doc.insert(pos(doc.size() + 1), s.data(), s.size());
    }
  }
}

}  // namespace

TEST_CASE("parse_json matches nlohmann on hand-written edge cases") {
  struct Case {
    std::string text;
    bool valid;  // what RFC 8259 (and so nlohmann) says; checked against nlohmann too
  };
  const Case cases[] = {
      // scalars at the top level, whitespace, the BOM nlohmann skips at the very start
      {"0", true}, {"-0", true}, {"true", true}, {"false", true}, {"null", true}, {"\"\"", true},
      {" \t\r\n1 \t\r\n", true}, {"\xEF\xBB\xBF[]", true}, {"\xEF\xBB\xBF 1", true},
      {"", false}, {" ", false}, {"\xEF\xBB\xBF", false}, {"\xEF\xBB[]", false}, {" \xEF\xBB\xBF[]", false},
      {"\xEF\xBB\xBF\xEF\xBB\xBF[]", false}, {"\x0b" "1", false}, {"\f1", false}, {"\xC2\xA0" "1", false},
      {"tru", false}, {"truee", false}, {"True", false}, {"nul", false}, {"nulll", false}, {"fals", false},
      // trailing content, including the NUL nlohmann would stop at
      {"[1]x", false}, {"[1] [2]", false}, {"1 2", false}, {"{}}", false}, {"[1]\0"s, false},
      {"[1]\0junk"s, false}, {"\0"s, false}, {"[\"a\0\"]"s, false},
      // structure
      {"[]", true}, {"{}", true}, {"[[],{},[[]],{\"\":{}}]", true}, {"{\"a\" : [ 1 , 2 ] }", true},
      {"[1,]", false}, {"{\"a\":1,}", false}, {"[,1]", false}, {"{,}", false}, {"[1,,2]", false},
      {"{\"a\" 1}", false}, {"{\"a\"}", false}, {"{\"a\":}", false}, {"{1:2}", false}, {"{'a':1}", false},
      {"['a']", false}, {"[1}", false}, {"{]", false}, {"[", false}, {"]", false}, {"{", false},
      {"{\"a\":1 \"b\":2}", false}, {"[1 2]", false}, {"// c\n1", false}, {"/* c */1", false}, {"1 // c", false},
      {"1 /* c */", false}, {"# c\n1", false},
      // duplicate keys: the last value wins, in the first key's position (escaped keys included)
      {"{\"a\":1,\"b\":2,\"a\":3}", true}, {"{\"a\":{\"x\":1},\"b\":2,\"a\":[3]}", true},
      {"{\"\\u0061\":1,\"a\":2}", true}, {"{\"a\":1,\"a\":{\"a\":1,\"a\":2}}", true},
      // numbers
      {"-0.0", true}, {"0.0", true}, {"1e5", true}, {"1E+5", true}, {"1e-5", true}, {"1.5e-300", true},
      {"4.9e-324", true}, {"2.4703282292062327e-324", true}, {"2.4703282292062328e-324", true},
      {"2.2250738585072011e-308", true}, {"2.2250738585072014e-308", true}, {"1.7976931348623157e308", true},
      {"1.7976931348623158e308", true}, {"1e-400", true}, {"-1e-400", true}, {"0e999999999999999999999", true},
      {"18446744073709551615", true}, {"18446744073709551616", true}, {"-9223372036854775808", true},
      {"-9223372036854775809", true}, {"9223372036854775807", true}, {"9223372036854775808", true},
      {"-18446744073709551615", true}, {"123456789012345678901234567890", true}, {"0.1", true},
      {"0.30000000000000004", true}, {"9007199254740993", true}, {"9007199254740993.0", true},
      {"9007199254740993e0", true}, {"1.00000000000000011102230246251565404236316680908203125", true},
      {"1.00000000000000011102230246251565404236316680908203124", true}, {"1e22", true}, {"1e23", true},
      {"8.98846567431158e307", true}, {"123.456e-7", true}, {"0.000000000000000000000000000001e30", true},
      {"1" + std::string(400, '0'), false}, {"1" + std::string(300, '0'), true},
      {"0." + std::string(400, '0') + "1", true}, {"-" + std::string(30, '9'), true},
      {"1e400", false}, {"-1e400", false}, {"1.8e308", false}, {"01", false}, {"-01", false}, {"00", false},
      {"1.", false}, {".1", false}, {"-", false}, {"+1", false}, {"1e", false}, {"1e+", false}, {"1.e5", false},
      {"1.5e", false}, {"-a", false}, {"0x10", false}, {"NaN", false}, {"nan", false}, {"Infinity", false},
      {"-Infinity", false}, {"1_000", false}, {"[1.5e]", false},
      // strings: escapes
      {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", true}, {"\"\\u0000\"", true}, {"\"\\u001f\\u007F\\u0080\"", true},
      {"\"\\ud83d\\ude00\"", true}, {"\"\\uD83D\\uDE00\"", true}, {"\"\\udbff\\udfff\"", true},
      {"\"\\u00e9\\u20AC\\uFFFF\\u2028\"", true}, {"\"a\\u0062c\"", true},
      {"\"\\ud800\"", false}, {"\"\\udc00\"", false}, {"\"\\udfff\"", false}, {"\"\\ud800\\u0041\"", false},
      {"\"\\ud800\\ud800\"", false}, {"\"\\ud800x\"", false}, {"\"\\ud800\\\"", false}, {"\"\\ud800\\n\"", false},
      {"\"\\u12\"", false}, {"\"\\u12g4\"", false}, {"\"\\U0041\"", false}, {"\"\\x41\"", false},
      {"\"\\'\"", false}, {"\"\\a\"", false}, {"\"\\\"", false}, {"\"abc", false}, {"\"", false},
      {"\"\\u", false}, {"\"\\ud83d\\ude0", false},
      // strings: raw bytes
      {"\"\x7f\"", true}, {"\"\xC2\x80\"", true}, {"\"\xDF\xBF\"", true}, {"\"\xE0\xA0\x80\"", true},
      {"\"\xED\x9F\xBF\"", true}, {"\"\xEE\x80\x80\"", true}, {"\"\xEF\xBF\xBF\"", true},
      {"\"\xF0\x90\x80\x80\"", true}, {"\"\xF4\x8F\xBF\xBF\"", true}, {"\"\xF3\xBF\xBF\xBF\"", true},
      {"\"\t\"", false}, {"\"\n\"", false}, {"\"\x01\"", false}, {"\"\x1f\"", false},
      {"\"\xC3\x28\"", false}, {"\"\xC0\x80\"", false}, {"\"\xC1\xBF\"", false}, {"\"\xE0\x80\x80\"", false},
      {"\"\xE0\x9F\xBF\"", false}, {"\"\xED\xA0\x80\"", false}, {"\"\xED\xBF\xBF\"", false},
      {"\"\xF0\x80\x80\x80\"", false}, {"\"\xF0\x8F\xBF\xBF\"", false}, {"\"\xF4\x90\x80\x80\"", false},
      {"\"\xF5\x80\x80\x80\"", false}, {"\"\xF8\x88\x80\x80\x80\"", false}, {"\"\xFF\"", false},
      {"\"\x80\"", false}, {"\"\xBF\"", false}, {"\"\xE2\x82\"", false}, {"\"\xE2\x82", false},
      {"\"\xF0\x9F\x98\"", false}, {"\"\xE2\"", false}, {"\"\xC2\"", false},
      // long strings, so the 8-byte scan meets escapes, quotes and multi-byte characters at every offset
      {"\"" + std::string(37, 'x') + "\\n" + std::string(5, 'y') + "\xC3\xA9" + std::string(9, 'z') + "\"", true},
      {"\"" + std::string(23, 'x') + "\xF0\x9F\x98\x80" + std::string(7, 'y') + "\"", true},
      {"\"" + std::string(23, 'x') + "\xF0\x9F\x98" + std::string(7, 'y') + "\"", false},
      {"\"" + std::string(40, 'x') + "\x1f" + std::string(7, 'y') + "\"", false},
      {"\"" + std::string(40, 'x'), false},
      {"[\"" + std::string(15, 'x') + "\",\"" + std::string(16, 'y') + "\"]", true},
      // after the first escape the rest of a string is decoded in place: the same rules apply there
      {"\"\\n\xF0\x9F\x98\x80" + std::string(20, 'x') + "\\t\xC3\xA9\"", true}, {"\"\\\\\"", true},
      {"\"\\\\\\\"\"", true}, {"\"\\\"" + std::string(30, 'x') + "\\u00e9\"", true},
      {"\"\\n" + std::string(20, 'x') + "\x01\"", false}, {"\"\\n\xC3\x28\"", false}, {"\"\\n\xE2\x82\"", false},
      {"\"\\n\xF4\x90\x80\x80\"", false}, {"\"abc\\", false}, {"\"abc\\\"", false}, {"\"\\n\\", false},
      {"\"\\n\\u12\"", false}, {"\"\\n\\ud800\"", false}, {"\"\\n\\ud800\\\"", false},
  };
  Differential diff;
  for (const Case& c : cases) {
    CAPTURE(show(c.text));
    CHECK(reference(c.text).has_value() == c.valid);
    diff.check(c.text);
  }
  // The same texts at every offset of an 8-byte word, inside an array, and as object keys.
  for (const Case& c : cases) {
    for (int pad = 0; pad < 8; ++pad) {
      diff.check("[" + std::string(static_cast<std::size_t>(pad), ' ') + c.text + "]");
      diff.check("{" + c.text + ":1}");
    }
  }
  MESSAGE(diff.inputs << " edge-case inputs, " << diff.accepted << " valid");
  CHECK(diff.failures == 0);
}

TEST_CASE("parse_json keeps every kind of value's type and the document's key order") {
  const json doc = agent_tools::parse_json(
      R"({"u":1,"i":-1,"f":1.0,"z":-0,"s":"x","t":true,"n":null,"a":[],"o":{},"b":0,"a":2})",
      ErrorCode::invalid_argument, "doc");
  CHECK(doc["u"].type() == json::value_t::number_unsigned);
  CHECK(doc["i"].type() == json::value_t::number_integer);
  CHECK(doc["f"].type() == json::value_t::number_float);
  CHECK(doc["z"].type() == json::value_t::number_integer);
  CHECK(doc["a"] == 2);
  std::vector<std::string> keys;
  for (const auto& item : doc.items()) keys.push_back(item.key());
  CHECK(keys == std::vector<std::string>{"u", "i", "f", "z", "s", "t", "n", "a", "o", "b"});
}

TEST_CASE("parse_json checks size and depth with the same errors as before") {
  using agent_tools::MAX_JSON_DEPTH;
  auto error_of = [](std::string_view text) { return ours(text); };

  const std::string too_big(agent_tools::MAX_MESSAGE_BYTES + 1, ' ');
  Outcome big = error_of(too_big);
  CHECK(big.code == ErrorCode::input_too_large);
  CHECK(big.message == "doc is " + std::to_string(too_big.size()) + " bytes; the limit is " +
                           std::to_string(agent_tools::MAX_MESSAGE_BYTES));

  const std::string deep_msg = "doc is nested deeper than " + std::to_string(MAX_JSON_DEPTH) + " levels";
  std::string objects;
  for (std::size_t i = 0; i < MAX_JSON_DEPTH; ++i) objects += "{\"a\":";
  objects += "1" + std::string(MAX_JSON_DEPTH, '}');
  CHECK(Differential().mismatch(objects).empty());
  Outcome deeper = error_of("[" + objects + "]");
  CHECK(deeper.code == ErrorCode::input_too_large);
  CHECK(deeper.message == deep_msg);

  // Reported as soon as the limit is crossed, so hostile depth never reaches deep recursion,
  // whatever (or however much) follows.
  for (const std::string& text : {std::string(1'000'000, '['), std::string(MAX_JSON_DEPTH + 1, '[') + "x",
                                  std::string(MAX_JSON_DEPTH + 1, '[') + std::string(MAX_JSON_DEPTH + 1, ']'),
                                  std::string(MAX_JSON_DEPTH, '[') + "{\"k\":[" + std::string(9, ']')}) {
    Outcome o = error_of(text);
    CHECK(o.code == ErrorCode::input_too_large);
    CHECK(o.message == deep_msg);
  }
  // Depth only counts while the document is still valid: an error first is reported as malformed.
  Outcome early = error_of("[x" + std::string(1000, '['));
  CHECK(early.code == ErrorCode::invalid_argument);
  CHECK(early.message == kMalformed);
}

TEST_CASE("parse_json matches nlohmann on the JSON-Schema-Test-Suite files") {
  const char* env = std::getenv("AGENT_TOOLS_SHARED_DIR");
  const std::string shared = env && *env ? env : AGENT_TOOLS_SHARED_DIR;
  const std::filesystem::path roots[] = {
      "/usr/share/json-schema-test-suite",  // Debian's json-schema-test-suite package
      shared.empty() ? std::filesystem::path() : std::filesystem::path(shared) / "specs",
  };
  Differential diff;
  std::size_t files = 0, subdocuments = 0;
  for (const auto& root : roots) {
    std::error_code ec;
    if (root.empty() || !std::filesystem::is_directory(root, ec)) {
      std::printf("SKIP: no JSON test files at %s\n", root.empty() ? "<AGENT_TOOLS_SHARED_DIR unset>" : root.c_str());
      continue;
    }
    std::vector<std::filesystem::path> paths;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
      if (entry.is_regular_file() && entry.path().extension() == ".json") paths.push_back(entry.path());
    }
    std::sort(paths.begin(), paths.end());
    for (const auto& path : paths) {
      ++files;
      const std::string text = read_file(path);
      diff.check(text);
      // Every schema and instance again on its own, compact: mostly small scalars and objects.
      const json doc = json::parse(text, nullptr, false);
      if (!doc.is_array()) continue;
      for (const json& group : doc) {
        if (!group.is_object()) continue;
        if (group.contains("schema")) {
          ++subdocuments;
          diff.check(group["schema"].dump());
        }
        for (const json& test : group.value("tests", json::array())) {
          if (!test.is_object() || !test.contains("data")) continue;
          ++subdocuments;
          diff.check(test["data"].dump());
          diff.check(test["data"].dump(2));
        }
      }
    }
  }
  MESSAGE(files << " files, " << subdocuments << " schemas and instances, " << diff.inputs << " inputs");
  CHECK(diff.failures == 0);
}

TEST_CASE("parse_json matches nlohmann on objects of every size with repeated keys") {
  // Past 16 members parse_json finds repeated keys through a hash index instead of a scan; keys
  // drawn from a small set make repeats common on both sides of that switch.
  std::mt19937_64 rng(16);
  Differential diff;
  for (int round = 0; round < 2000; ++round) {
    const std::size_t members = static_cast<std::size_t>(rng() % 80), distinct = 1 + rng() % 60;
    std::string text = "{";
    for (std::size_t i = 0; i < members; ++i) {
      if (i) text += ',';
      text += "\"k" + std::to_string(rng() % distinct) + "\":";
      text += rng() % 8 == 0 ? "{\"x\":" + std::to_string(i) + ",\"x\":[" + std::to_string(i) + "]}" : std::to_string(i);
    }
    diff.check(text + "}");
  }
  // One large object: linear time here, and still nlohmann's answer.
  std::string big = "{";
  for (int i = 0; i < 5'000; ++i) {
    if (i) big += ',';
    big += "\"key" + std::to_string(i % 4'000) + "\":" + std::to_string(i);
  }
  diff.check(big + "}");
  // A hostile one: 200,000 distinct keys. A scan per key (nlohmann's ordered_map) would take
  // 2 * 10^10 comparisons; the index keeps it to a fraction of a second.
  std::string many = "{";
  for (int i = 0; i < 200'000; ++i) many += (i ? ",\"" : "\"") + std::to_string(i) + "\":0";
  CHECK(agent_tools::parse_json(many + "}", ErrorCode::invalid_argument, "doc").size() == 200'000);
  MESSAGE(diff.inputs << " objects");
  CHECK(diff.failures == 0);
}

TEST_CASE("parse_json reads numbers exactly as nlohmann does") {
  // Random numbers of every shape: the integer/float boundary, the exact fast path for short
  // mantissas and small exponents, and strtod beyond it, compared bit for bit.
  std::mt19937_64 rng(53);
  auto digits = [&](std::size_t n, bool leading_zero_ok) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
      out += static_cast<char>('0' + (i == 0 && !leading_zero_ok ? 1 + rng() % 9 : rng() % 10));
    }
    return out;
  };
  Differential diff;
  for (int i = 0; i < 50'000; ++i) {
    std::string text = rng() % 3 == 0 ? "-" : "";
    text += rng() % 4 == 0 ? "0" : digits(1 + rng() % 21, false);
    if (rng() % 2) {
      text += '.';
      if (rng() % 3 == 0) text += std::string(rng() % 12, '0');
      text += digits(1 + rng() % 20, true);
    }
    if (rng() % 5 < 2) {
      text += rng() % 2 ? "e" : "E";
      if (const auto sign = rng() % 3; sign < 2) text += "+-"[sign];
      text += std::to_string(rng() % 4 == 0 ? rng() % 340 : rng() % 30);
    }
    diff.check(text);
  }
  MESSAGE(diff.inputs << " numbers, " << diff.accepted << " finite");
  CHECK(diff.failures == 0);
}

TEST_CASE("parse_json matches nlohmann on random mutations") {
  // 200,000 by default (about half a minute under the sanitizers); more with
  // AGENT_TOOLS_JSON_MUTATIONS=<count>.
  const char* env = std::getenv("AGENT_TOOLS_JSON_MUTATIONS");
  const std::size_t rounds = env && *env ? std::strtoull(env, nullptr, 10) : 200'000;
  std::mt19937_64 rng(20241125);
  Differential diff;
  for (std::size_t i = 0; i < rounds; ++i) {
    std::string doc = seeds()[i % seeds().size()];
    for (std::uint64_t edits = 1 + rng() % 3; edits; --edits) mutate(doc, rng);
    diff.check(doc);
  }
  MESSAGE(diff.inputs << " mutated inputs, " << diff.accepted << " still valid");
  CHECK(diff.failures == 0);
}

// ---------------------------------------------------------------------------------------------

namespace {

// The documents the core parses on every task round (bench/_taskraw.mjs), a small KV-sized
// reply, and an array of numbers of every kind.
const std::string kTaskInput =
    R"json({"request":{"threadId":"6f1c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f","userId":"u","agentType":"TEXT_ANALYSIS_AGENT","taskSequence":1,"previousCSI":{"completedSteps":["a"],"currentProgress":10,"totalSteps":4,"currentStep":"a"}},"rawPreviousCSI":{"completedSteps":["a"],"currentProgress":10,"totalSteps":4,"currentStep":"a"},"previousMetadata":null,"taskName":"intent_analysis","taskType":"analysis","progressPercent":25,"systemPrompt":"You read a request for marketing content and work out, step by step, what the person wants made: the intent, how many assets, and of which kinds. Report your reasoning and how confident you are.","userPrompt":"Work out the intent of \"Three launch posts\" for Acme (2 ref images)","functionDefinition":{"name":"analyze_intent","description":"Report the content-generation intent found in a prompt.","parameters":{"type":"object","properties":{"analysis":{"type":"string"},"conclusion":{"type":"string"},"confidence":{"type":"number"},"inferred_assets":{"type":"integer"},"asset_types":{"type":"array","items":{"type":"string"}},"reasoning_steps":{"type":"array","items":{"type":"string"}}},"required":["analysis","conclusion","confidence","inferred_assets"]}},"modelConfig":{},"defaults":{"model":"gpt-4o-mini","temperature":0.3},"http":{"url":"bench:/chat/completions","timeoutMs":600000,"maxRetries":2}})json";
const std::string kTaskReply =
    R"json({"status":200,"headers":{},"body":"{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"logprobs\":null,\"finish_reason\":\"tool_calls\",\"message\":{\"role\":\"assistant\",\"content\":null,\"refusal\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"analyze_intent\",\"arguments\":\"{\\\"analysis\\\":\\\"The prompt asks for three posts.\\\",\\\"conclusion\\\":\\\"Three images.\\\",\\\"confidence\\\":0.87,\\\"inferred_assets\\\":3,\\\"asset_types\\\":[\\\"image\\\",\\\"image\\\",\\\"image\\\"],\\\"reasoning_steps\\\":[\\\"count\\\",\\\"kind\\\"]}\"}}]}}],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":50,\"total_tokens\":150}}"})json";
const std::string kSmall =
    R"({"call":12,"ok":true,"value":{"result":["run:u:t","1732540000000",null],"fence":7,"held":false}})";

std::string numbers_array() {
  std::string out = "[";
  std::mt19937_64 rng(7);
  auto below = [&](std::uint64_t n) { return std::to_string(rng() % n); };
  auto fraction = [&](int digits) {  // ".ddd" with leading zeros kept
    std::string f = below(1'000'000'000'000);
    return "." + std::string(f.size() < static_cast<std::size_t>(digits) ? digits - f.size() : 0, '0') + f.substr(0, digits);
  };
  for (int i = 0; i < 200; ++i) {
    if (i) out += ',';
    switch (i % 6) {
      case 0: out += below(100000); break;                                      // counts, ids
      case 1: out += "-" + below(1'000'000'000'000); break;                     // signed integers
      case 2: out += below(1000); out += fraction(2); break;                    // prices
      case 3: out += "-0"; out += fraction(10); break;                          // embeddings
      case 4: out += std::to_string(1 + rng() % 9); out += fraction(6); out += "e-0" + below(10); break;  // 1.234567e-05
      default: out += std::to_string(1732540000000 + rng() % 1000); break;      // timestamps (ms)
    }
  }
  return out + "]";
}

// Best of several timed batches, in nanoseconds per call of `fn`.
template <typename F>
double time_ns(F&& fn) {
  double best = 1e300;
  for (int batch = 0; batch < 7; ++batch) {
    constexpr int kCalls = 2000;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kCalls; ++i) fn();
    std::chrono::duration<double, std::nano> dt = std::chrono::steady_clock::now() - t0;
    best = std::min(best, dt.count() / kCalls);
  }
  return best;
}

}  // namespace

TEST_CASE("parse_json benchmark" * doctest::skip()) {
  const std::string numbers = numbers_array();
  struct Doc {
    const char* name;
    std::vector<std::string> parts;  // parsed one after the other, as the core would
  } docs[] = {
      {"task input (1.3 KB)", {kTaskInput}},
      {"reply + its body (750 B + 500 B)",
       {kTaskReply, json::parse(kTaskReply)["body"].get<std::string>()}},
      {"small object (100 B)", {kSmall}},
      {"numbers array", {numbers}},
  };
  std::printf("%-34s %6s %12s %14s %8s\n", "document", "bytes", "nlohmann ns", "parse_json ns", "speedup");
  for (const Doc& doc : docs) {
    std::size_t bytes = 0;
    for (const auto& part : doc.parts) bytes += part.size();
    std::size_t sink = 0;
    double theirs = time_ns([&] {
      for (const auto& part : doc.parts) sink += json::parse(part.begin(), part.end(), nullptr, false).size();
    });
    double mine = time_ns([&] {
      for (const auto& part : doc.parts) sink += agent_tools::parse_json(part, ErrorCode::invalid_argument, "doc").size();
    });
    std::printf("%-34s %6zu %12.0f %14.0f %7.1fx\n", doc.name, bytes, theirs, mine, theirs / mine);
    CHECK(sink > 0);
  }
}
