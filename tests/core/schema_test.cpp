// agent_tools::schema: each keyword, issue paths and messages, $ref resolution and cycles, limits
// (deep instances, max_issues), the regular-expression engine, and the OpenAI function schemas of
// this package (reference-api.md §2.3).
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "agent_tools/json.hpp"
#include "agent_tools/schema.hpp"

using agent_tools::ErrorCode;
using agent_tools::json;
using agent_tools::schema::Issue;
using agent_tools::schema::Schema;

namespace {

json j(std::string_view text) { return json::parse(text); }

std::vector<Issue> issues_of(std::string_view schema, std::string_view instance, std::size_t max = 20) {
  return Schema::compile(j(schema)).validate(j(instance), max);
}

bool valid(std::string_view schema, std::string_view instance) {
  const Schema s = Schema::compile(j(schema));
  const json value = j(instance);
  const bool answer = s.validate(value).empty();
  CHECK_MESSAGE(s.is_valid(value) == answer, "is_valid disagrees with validate for " << instance);
  CHECK_MESSAGE(s.accepts_text(instance) == answer, "accepts_text disagrees with validate for " << instance);
  return answer;
}

// The error compile() throws, or a FAIL.
agent_tools::Error compile_error(const json& schema) {
  try {
    Schema::compile(schema);
  } catch (const agent_tools::Error& e) {
    return e;
  }
  FAIL("compile() accepted " << schema.dump());
  return agent_tools::Error(ErrorCode::internal, "unreachable");
}

// [[[...1...]]] nested `depth` levels, built without copying (a copy of a deep json recurses).
json deep_array(int depth) {
  json value = 1;
  for (int i = 0; i < depth; ++i) {
    json outer = json::array();
    outer.push_back(std::move(value));
    value = std::move(outer);
  }
  return value;
}

std::string messages(const std::vector<Issue>& issues) {
  std::string out;
  for (const auto& i : issues) out += i.message + "\n";
  return out;
}

bool matches(std::string_view pattern, std::string_view text) {
  json schema = {{"pattern", std::string(pattern)}};
  return Schema::compile(schema).is_valid(json(text));
}

}  // namespace

TEST_CASE("schema: type, including integer as a number without a fractional part and nullability") {
  CHECK(valid(R"({"type":"integer"})", "1"));
  CHECK(valid(R"({"type":"integer"})", "1.0"));
  CHECK(valid(R"({"type":"integer"})", "-9223372036854775808"));
  CHECK(valid(R"({"type":"integer"})", "18446744073709551615"));
  CHECK_FALSE(valid(R"({"type":"integer"})", "1.5"));
  CHECK_FALSE(valid(R"({"type":"integer"})", "\"1\""));
  CHECK(valid(R"({"type":"number"})", "1"));
  CHECK(valid(R"({"type":"number"})", "-2.5e-7"));
  CHECK_FALSE(valid(R"({"type":"number"})", "true"));
  CHECK(valid(R"({"type":"string"})", "\"\""));
  CHECK(valid(R"({"type":"boolean"})", "false"));
  CHECK_FALSE(valid(R"({"type":"boolean"})", "0"));
  CHECK(valid(R"({"type":"null"})", "null"));
  CHECK_FALSE(valid(R"({"type":"null"})", "false"));
  CHECK(valid(R"({"type":"object"})", "{}"));
  CHECK_FALSE(valid(R"({"type":"object"})", "[]"));
  CHECK(valid(R"({"type":"array"})", "[]"));
  CHECK(valid(R"({"type":["string","null"]})", "null"));
  CHECK(valid(R"({"type":["string","null"]})", "\"x\""));
  CHECK_FALSE(valid(R"({"type":["string","null"]})", "1"));

  auto issues = issues_of(R"({"properties":{"confidence":{"type":"number"}}})", R"({"confidence":"high"})");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].path == "$.confidence");
  CHECK(issues[0].keyword == "type");
  CHECK(issues[0].message == "$.confidence: expected number, got string");
  issues = issues_of(R"({"type":["string","null"]})", "1.5");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].message == "$: expected string or null, got number");
  issues = issues_of(R"({"type":"integer"})", "2.5");
  CHECK(issues.at(0).message == "$: expected integer, got number");
  issues = issues_of(R"({"type":"string"})", "7");
  CHECK(issues.at(0).message == "$: expected string, got integer");
}

TEST_CASE("schema: properties, required, additionalProperties, patternProperties, propertyNames") {
  const char* schema = R"({
    "type": "object",
    "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
    "required": ["a"],
    "additionalProperties": false
  })";
  CHECK(valid(schema, R"({"a":"x"})"));
  CHECK(valid(schema, R"({"a":"x","b":2})"));
  auto issues = issues_of(schema, R"({"b":"two","c":1})");
  REQUIRE(issues.size() == 3);
  CHECK(issues[0].path == "$.a");
  CHECK(issues[0].keyword == "required");
  CHECK(issues[0].message == "$.a: required property is missing");
  CHECK(issues[1].path == "$.b");
  CHECK(issues[1].keyword == "type");
  CHECK(issues[2].path == "$.c");
  CHECK(issues[2].keyword == "additionalProperties");
  CHECK(issues[2].message == "$.c: property is not allowed (additionalProperties is false)");

  // additionalProperties as a schema; patternProperties count as declared.
  const char* mixed = R"({"properties":{"id":{}},"patternProperties":{"^x-":{"type":"string"}},
                          "additionalProperties":{"type":"number"}})";
  CHECK(valid(mixed, R"({"id":[],"x-note":"n","other":3})"));
  issues = issues_of(mixed, R"({"x-note":1,"other":"3"})");
  REQUIRE(issues.size() == 2);
  CHECK(issues[0].path == "$[\"x-note\"]");
  CHECK(issues[0].keyword == "type");
  CHECK(issues[1].path == "$.other");

  // Unusual keys in paths are quoted as JSON strings.
  issues = issues_of(R"({"properties":{"a b":{"type":"null"},"é":{"type":"null"},"q\"":{"type":"null"}}})",
                     R"({"a b":1,"é":2,"q\"":3})");
  REQUIRE(issues.size() == 3);
  CHECK(issues[0].path == "$[\"a b\"]");
  CHECK(issues[1].path == "$[\"é\"]");
  CHECK(issues[2].path == "$[\"q\\\"\"]");

  CHECK(valid(R"({"propertyNames":{"maxLength":3}})", R"({"abc":1})"));
  issues = issues_of(R"({"propertyNames":{"pattern":"^[a-z]+$"}})", R"({"ok":1,"Bad":2})");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].path == "$.Bad");
  CHECK(issues[0].keyword == "propertyNames");
  CHECK(valid(R"({"required":["a"]})", "[]"));  // object keywords ignore other types
}

TEST_CASE("schema: minProperties, maxProperties, dependentRequired, dependentSchemas") {
  CHECK(valid(R"({"minProperties":1,"maxProperties":2})", R"({"a":1})"));
  CHECK_FALSE(valid(R"({"minProperties":1})", "{}"));
  CHECK_FALSE(valid(R"({"maxProperties":1})", R"({"a":1,"b":2})"));
  CHECK(valid(R"({"maxProperties":1.0})", R"({"a":1})"));
  const char* dep = R"({"dependentRequired":{"card":["billing","cvc"]}})";
  CHECK(valid(dep, R"({"name":"x"})"));
  auto issues = issues_of(dep, R"({"card":1,"cvc":2})");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].path == "$.billing");
  CHECK(issues[0].keyword == "dependentRequired");
  CHECK(issues[0].message == "$.billing: required property is missing (required when \"card\" is present)");
  const char* schemas = R"({"dependentSchemas":{"card":{"required":["billing"]}}})";
  CHECK(valid(schemas, R"({"billing":1})"));
  CHECK_FALSE(valid(schemas, R"({"card":1})"));
}

TEST_CASE("schema: enum and const use JSON equality (1 == 1.0, key order does not matter)") {
  CHECK(valid(R"({"enum":[1,"a",null]})", "1.0"));
  CHECK(valid(R"({"enum":[1,"a",null]})", "null"));
  CHECK_FALSE(valid(R"({"enum":[1,"a",null]})", "true"));
  CHECK_FALSE(valid(R"({"enum":[false]})", "0"));
  CHECK_FALSE(valid(R"({"enum":[]})", "0"));
  CHECK(valid(R"({"const":{"a":1,"b":[1,2]}})", R"({"b":[1.0,2],"a":1})"));
  CHECK_FALSE(valid(R"({"const":{"a":1,"b":[1,2]}})", R"({"b":[2,1],"a":1})"));
  CHECK(valid(R"({"const":9007199254740992})", "9007199254740992.0"));
  CHECK_FALSE(valid(R"({"const":9007199254740993})", "9007199254740992"));
  CHECK_FALSE(valid(R"({"const":-1})", "18446744073709551615"));
  auto issues = issues_of(R"({"enum":["weak","moderate","strong"]})", "\"medium\"");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].keyword == "enum");
  CHECK(issues[0].message == R"($: must be one of "weak", "moderate", "strong")");
  issues = issues_of(R"({"const":"then"})", "\"else\"");
  CHECK(issues.at(0).message == R"($: must be "then")");
  // Large objects compare by sorted keys.
  json big_a = json::object(), big_b = json::object();
  for (int i = 0; i < 40; ++i) big_a["k" + std::to_string(i)] = i;
  for (int i = 39; i >= 0; --i) big_b["k" + std::to_string(i)] = i;
  CHECK(Schema::compile(json{{"const", big_a}}).is_valid(big_b));
  big_b["k7"] = 8;
  CHECK_FALSE(Schema::compile(json{{"const", big_a}}).is_valid(big_b));
}

TEST_CASE("schema: items, prefixItems, minItems, maxItems, contains") {
  const char* s = R"({"prefixItems":[{"type":"string"}],"items":{"type":"integer"},"minItems":1,"maxItems":3})";
  CHECK(valid(s, R"(["a",1,2])"));
  CHECK_FALSE(valid(s, "[]"));
  CHECK_FALSE(valid(s, R"(["a",1,2,3])"));
  auto issues = issues_of(s, R"([1,"b",2.5])");
  REQUIRE(issues.size() == 3);
  CHECK(issues[0].path == "$[0]");
  CHECK(issues[1].path == "$[1]");
  CHECK(issues[2].message == "$[2]: expected integer, got number");
  issues = issues_of(R"({"prefixItems":[{},{}],"items":false})", "[1,2,3]");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].keyword == "items");
  CHECK(issues[0].message == "$: must have at most 2 items, got 3");
  // The pre-2020 tuple form.
  CHECK(valid(R"({"items":[{"type":"string"}],"additionalItems":false})", R"(["a"])"));
  CHECK_FALSE(valid(R"({"items":[{"type":"string"}],"additionalItems":false})", R"(["a",1])"));
  CHECK(valid(R"({"contains":{"type":"integer"},"minContains":2,"maxContains":3})", R"(["a",1,2])"));
  CHECK_FALSE(valid(R"({"contains":{"type":"integer"},"minContains":2})", R"(["a",1])"));
  CHECK_FALSE(valid(R"({"contains":{"type":"integer"},"maxContains":1})", R"([1,2])"));
  CHECK(valid(R"({"contains":{"type":"integer"},"minContains":0})", R"([])"));
  issues = issues_of(R"({"contains":{"const":5}})", "[1,2]");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].keyword == "contains");
}

TEST_CASE("schema: uniqueItems compares by JSON equality, also for long arrays") {
  CHECK(valid(R"({"uniqueItems":true})", R"([1,"1",[1],{"a":1},true])"));
  CHECK_FALSE(valid(R"({"uniqueItems":true})", R"([1,2,1.0])"));
  CHECK_FALSE(valid(R"({"uniqueItems":true})", R"([{"a":1,"b":2},{"b":2,"a":1}])"));
  CHECK(valid(R"({"uniqueItems":true})", R"([[false],[0]])"));
  CHECK(valid(R"({"uniqueItems":false})", R"([1,1])"));
  json many = json::array();
  for (int i = 0; i < 1000; ++i) many.push_back({{"n", i}, {"s", std::to_string(i)}});
  const Schema s = Schema::compile(j(R"({"uniqueItems":true})"));
  CHECK(s.is_valid(many));
  many.push_back({{"s", "500"}, {"n", 500.0}});
  const auto issues = s.validate(many);
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].keyword == "uniqueItems");
  CHECK(issues[0].message == "$: must not contain duplicates, but items [500] and [1000] are equal");
}

TEST_CASE("schema: minLength and maxLength count code points, not bytes") {
  CHECK(valid(R"({"maxLength":2})", "\"\xF0\x9F\x92\xA9\xF0\x9F\x92\xA9\""));  // two U+1F4A9
  CHECK_FALSE(valid(R"({"maxLength":1})", "\"\xF0\x9F\x92\xA9\xF0\x9F\x92\xA9\""));
  CHECK(valid(R"({"minLength":2})", "\"\xC3\xA9\xC3\xA9\""));
  CHECK_FALSE(valid(R"({"minLength":3})", "\"\xC3\xA9\xC3\xA9\""));
  CHECK(valid(R"({"minLength":2.0})", "\"ab\""));
  const auto issues = issues_of(R"({"minLength":3})", "\"ab\"");
  CHECK(issues.at(0).message == "$: must be at least 3 characters long, got 2");
  CHECK(valid(R"({"minLength":3})", "12"));  // strings only
}

TEST_CASE("schema: minimum, maximum, exclusive bounds and multipleOf are exact across number types") {
  CHECK(valid(R"({"minimum":0,"maximum":1})", "0"));
  CHECK(valid(R"({"minimum":0,"maximum":1})", "1.0"));
  CHECK_FALSE(valid(R"({"minimum":0})", "-0.0001"));
  CHECK_FALSE(valid(R"({"maximum":1})", "1.0000001"));
  CHECK_FALSE(valid(R"({"exclusiveMinimum":0})", "0"));
  CHECK(valid(R"({"exclusiveMinimum":0})", "1e-300"));
  CHECK_FALSE(valid(R"({"exclusiveMaximum":1.5})", "1.5"));
  CHECK(valid(R"({"exclusiveMaximum":1.5})", "1"));
  CHECK(valid(R"({"maximum":18446744073709551615})", "18446744073709551615"));
  CHECK_FALSE(valid(R"({"maximum":9223372036854775807})", "9223372036854775808"));
  CHECK(valid(R"({"minimum":-9223372036854775808})", "-9223372036854775808"));
  CHECK_FALSE(valid(R"({"minimum":9007199254740993})", "9007199254740992.0"));
  CHECK(valid(R"({"multipleOf":2})", "10"));
  CHECK_FALSE(valid(R"({"multipleOf":2})", "7"));
  CHECK(valid(R"({"multipleOf":1.5})", "4.5"));
  CHECK(valid(R"({"multipleOf":0.0001})", "0.0075"));
  CHECK_FALSE(valid(R"({"multipleOf":0.0001})", "0.00751"));
  CHECK(valid(R"({"multipleOf":0.01})", "19.99"));
  CHECK_FALSE(valid(R"({"multipleOf":0.123456789})", "1e308"));
  CHECK(valid(R"({"multipleOf":3})", "-9"));
  CHECK(valid(R"({"multipleOf":2})", "18446744073709551614"));
  auto issues = issues_of(R"({"minimum":0,"maximum":1})", "1.5");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].keyword == "maximum");
  CHECK(issues[0].message == "$: must be <= 1, got 1.5");
  issues = issues_of(R"({"exclusiveMinimum":0})", "0");
  CHECK(issues.at(0).message == "$: must be > 0, got 0");
  CHECK(valid(R"({"minimum":5})", "\"3\""));  // numbers only
}

TEST_CASE("schema: allOf, anyOf, oneOf, not, if/then/else") {
  CHECK(valid(R"({"allOf":[{"minimum":1},{"maximum":3}]})", "2"));
  auto issues = issues_of(R"({"allOf":[{"minimum":1},{"maximum":3}]})", "5");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].keyword == "maximum");

  CHECK(valid(R"({"anyOf":[{"type":"string"},{"minimum":10}]})", "11"));
  CHECK_FALSE(valid(R"({"anyOf":[{"type":"string"},{"minimum":10}]})", "9"));
  issues = issues_of(R"({"anyOf":[{"type":"string"},{"minimum":10}]})", "9");
  CHECK(issues.at(0).message == "$: does not match any of the 2 schemas in \"anyOf\"");
  // Branches that name their types: a value of none of them says so ...
  issues = issues_of(R"({"anyOf":[{"type":"string"},{"type":"null"}]})", "3");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].keyword == "anyOf");
  CHECK(issues[0].message == "$: expected string or null, got integer");
  // ... and a value of exactly one of them gets that branch's own issues (nullable objects).
  issues = issues_of(R"({"properties":{"user":{"anyOf":[
                        {"type":"object","properties":{"name":{"type":"string"}},"required":["name"]},
                        {"type":"null"}]}}})",
                     R"({"user":{"name":5}})");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].message == "$.user.name: expected string, got integer");

  CHECK(valid(R"({"oneOf":[{"type":"integer"},{"minimum":2}]})", "1"));
  CHECK(valid(R"({"oneOf":[{"type":"integer"},{"minimum":2}]})", "2.5"));
  issues = issues_of(R"({"oneOf":[{"type":"integer"},{"minimum":2}]})", "3");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].keyword == "oneOf");
  CHECK(issues[0].message == "$: must match exactly one schema in \"oneOf\", but matches schemas 0 and 1");
  CHECK_FALSE(valid(R"({"oneOf":[{"type":"integer"},{"minimum":2}]})", "1.5"));

  CHECK(valid(R"({"not":{"type":"string"}})", "1"));
  issues = issues_of(R"({"not":{"type":"string"}})", "\"s\"");
  CHECK(issues.at(0).keyword == "not");
  CHECK(valid(R"({"not":{"not":{}}})", "1"));

  const char* cond = R"({"if":{"properties":{"kind":{"const":"card"}}},"then":{"required":["number"]},
                         "else":{"required":["iban"]}})";
  CHECK(valid(cond, R"({"kind":"card","number":"4"})"));
  CHECK(valid(cond, R"({"kind":"bank","iban":"DE"})"));
  issues = issues_of(cond, R"({"kind":"card"})");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].path == "$.number");
  CHECK(issues[0].keyword == "required");
  CHECK(valid(R"({"then":{"const":0}})", "1"));  // then without if is ignored
}

TEST_CASE("schema: boolean schemas, unknown keywords, annotations") {
  CHECK(valid("true", "[1]"));
  CHECK_FALSE(valid("false", "null"));
  auto issues = issues_of("false", "1");
  CHECK(issues.at(0).keyword == "false");
  CHECK(valid(R"({"properties":{"a":true,"b":false}})", R"({"a":1})"));
  issues = issues_of(R"({"properties":{"a":true,"b":false}})", R"({"b":1})");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].path == "$.b");
  CHECK(valid(R"({"format":"email","x-custom":{"type":"integer"},"title":"t","description":"d","default":1,
                  "examples":[],"$comment":"c","$schema":"https://json-schema.org/draft/2020-12/schema"})",
              "\"not an email\""));
  CHECK(valid(R"({"unevaluatedProperties":true})", R"({"a":1})"));
}

TEST_CASE("schema: $ref and $defs, nested, escaped, via the root $id") {
  const char* nested = R"({"$defs":{"a":{"type":"integer"},"b":{"$ref":"#/$defs/a"},"c":{"$ref":"#/$defs/b"}},
                           "properties":{"x":{"$ref":"#/$defs/c"}}})";
  CHECK(valid(nested, R"({"x":1})"));
  auto issues = issues_of(nested, R"({"x":"1"})");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].path == "$.x");
  CHECK(issues[0].keyword == "type");
  CHECK(valid(R"({"definitions":{"s":{"type":"string"}},"items":{"$ref":"#/definitions/s"}})", R"(["a"])"));
  CHECK_FALSE(valid(R"({"definitions":{"s":{"type":"string"}},"items":{"$ref":"#/definitions/s"}})", "[1]"));
  CHECK(valid(R"({"$defs":{"a/b":{"type":"null"},"c~d":{"type":"null"},"e%f":{"type":"null"}},
                  "prefixItems":[{"$ref":"#/$defs/a~1b"},{"$ref":"#/$defs/c~0d"},{"$ref":"#/$defs/e%25f"}]})",
              "[null,null,null]"));
  CHECK(valid(R"({"prefixItems":[{"type":"integer"},{"$ref":"#/prefixItems/0"}]})", "[1,2]"));
  CHECK_FALSE(valid(R"({"prefixItems":[{"type":"integer"},{"$ref":"#/prefixItems/0"}]})", "[1,\"2\"]"));
  // $ref applies alongside its siblings.
  CHECK_FALSE(valid(R"({"$defs":{"arr":{"type":"array"}},"$ref":"#/$defs/arr","maxItems":1})", "[1,2]"));
  // The root's $id may prefix a local reference.
  CHECK(valid(R"({"$id":"https://example.com/s.json","$defs":{"n":{"type":"number"}},
                  "items":{"$ref":"https://example.com/s.json#/$defs/n"}})",
              "[1]"));
  // Recursion through properties is fine: the instance gets smaller at each step.
  const char* tree = R"({"type":"object","properties":{"value":{"type":"number"},
                         "children":{"type":"array","items":{"$ref":"#"}}},"required":["value"]})";
  CHECK(valid(tree, R"({"value":1,"children":[{"value":2,"children":[{"value":3}]}]})"));
  issues = issues_of(tree, R"({"value":1,"children":[{"value":2,"children":[{"value":"3"}]}]})");
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].path == "$.children[0].children[0].value");
  // A schema stays valid after the document it was compiled from is gone.
  Schema kept = Schema::compile(j(R"({"enum":["a"],"pattern":"^a$","properties":{"p":{"const":[1]}}})"));
  CHECK(kept.is_valid(j("\"a\"")));
  CHECK_FALSE(kept.is_valid(j(R"({"p":[2]})")));
}

TEST_CASE("schema: unusable schemas throw INVALID_ARGUMENT naming the location") {
  auto e = compile_error(j(R"({"properties":{"a":{"$ref":"#/$defs/missing"}}})"));
  CHECK(e.code() == ErrorCode::invalid_argument);
  CHECK(e.message() == "schema #/properties/a/$ref: $ref \"#/$defs/missing\" points to nothing");
  e = compile_error(j(R"({"$ref":"https://example.com/other.json"})"));
  CHECK(e.message().find("only references within the document") != std::string::npos);
  e = compile_error(j(R"({"$ref":"#anchor"})"));
  CHECK(e.message().find("$anchor") != std::string::npos);
  e = compile_error(j(R"({"pattern":"(unclosed"})"));
  CHECK(e.message().find("schema #/pattern: invalid or unsupported regular expression \"(unclosed\": missing ')'") == 0);
  CHECK(compile_error(j(R"x({"pattern":"a(?=b)"})x")).message().find("lookaround") != std::string::npos);
  CHECK(compile_error(j(R"({"pattern":"(a)\\1"})")).message().find("backreferences") != std::string::npos);
  CHECK(compile_error(j(R"({"pattern":"\\p{L}"})")).message().find("\\p{") != std::string::npos);
  CHECK(compile_error(j(R"({"patternProperties":{"[b-a]":{}}})")).message().find("#/patternProperties/[b-a]") !=
        std::string::npos);
  CHECK(compile_error(j(R"({"type":"float"})")).message() == "schema #/type: unknown type \"float\"");
  CHECK(compile_error(j(R"({"minLength":-1})")).message() == "schema #/minLength: must be a non-negative integer");
  CHECK(compile_error(j(R"({"minLength":1.5})")).code() == ErrorCode::invalid_argument);
  CHECK(compile_error(j(R"({"multipleOf":0})")).message() == "schema #/multipleOf: must be greater than 0");
  CHECK(compile_error(j(R"({"required":"a"})")).code() == ErrorCode::invalid_argument);
  CHECK(compile_error(j(R"({"anyOf":[]})")).code() == ErrorCode::invalid_argument);
  CHECK(compile_error(j(R"({"properties":{"a":3}})")).message() ==
        "schema #/properties/a: a schema must be an object or a boolean");
  CHECK(compile_error(j("[]")).code() == ErrorCode::invalid_argument);
  CHECK(compile_error(j(R"({"$dynamicRef":"#x"})")).code() == ErrorCode::invalid_argument);
  CHECK(compile_error(j(R"({"unevaluatedProperties":false})")).code() == ErrorCode::invalid_argument);
  CHECK(compile_error(j(R"({"maximum":"3"})")).code() == ErrorCode::invalid_argument);
}

TEST_CASE("schema: $ref cycles that never consume the instance are compile errors") {
  auto e = compile_error(j(R"({"$defs":{"a":{"$ref":"#/$defs/a"}}})"));
  CHECK(e.code() == ErrorCode::invalid_argument);
  CHECK(e.message().find("$ref cycle") != std::string::npos);
  CHECK(compile_error(j(R"({"$ref":"#"})")).message().find("$ref cycle") != std::string::npos);
  CHECK(compile_error(j(R"({"$defs":{"a":{"anyOf":[{"type":"string"},{"$ref":"#/$defs/b"}]},
                                     "b":{"allOf":[{"not":{"$ref":"#/$defs/a"}}]}}})"))
            .message()
            .find("$ref cycle") != std::string::npos);
  // A long chain of references is fine (and compiled without recursion).
  json chain = {{"$defs", json::object()}};
  for (int i = 0; i < 5000; ++i) chain["$defs"]["d" + std::to_string(i)] = {{"$ref", "#/$defs/d" + std::to_string(i + 1)}};
  chain["$defs"]["d5000"] = {{"type", "integer"}};
  chain["$ref"] = "#/$defs/d0";
  const Schema s = Schema::compile(chain);
  CHECK(s.is_valid(1));
  CHECK_FALSE(s.is_valid("1"));
  // Same schema location on the same value twice is not a cycle.
  CHECK(valid(R"({"$defs":{"int":{"type":"integer"}},"allOf":[{"properties":{"foo":{"$ref":"#/$defs/int"}}},
                  {"additionalProperties":{"$ref":"#/$defs/int"}}]})",
              R"({"foo":1})"));
}

TEST_CASE("schema: deep instances and schemas are bounded") {
  const Schema nested = Schema::compile(j(R"({"anyOf":[{"type":"integer"},{"type":"array","items":{"$ref":"#"}}]})"));
  // MAX_JSON_DEPTH levels, as many as parse_json admits, validate normally.
  const std::size_t levels = agent_tools::MAX_JSON_DEPTH;
  const std::string deep = std::string(levels, '[') + "1" + std::string(levels, ']');
  CHECK(nested.is_valid(agent_tools::parse_json(deep, ErrorCode::invalid_argument, "doc")));
  // ... also through several in-place applicators per level.
  const Schema indirect = Schema::compile(j(R"({"$defs":{"n":{"anyOf":[{"type":"integer"},
      {"allOf":[{"allOf":[{"allOf":[{"type":"array","items":{"$ref":"#/$defs/n"}}]}]}]}]}},"$ref":"#/$defs/n"})"));
  CHECK(indirect.is_valid(agent_tools::parse_json(deep, ErrorCode::invalid_argument, "doc")));
  // A document built in C++ can be deeper: the validator stops at its limit with an issue.
  const json value = deep_array(5000);
  auto issues = nested.validate(value);
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].keyword == "depth");
  CHECK(issues[0].path.rfind("$[0][0][0]", 0) == 0);
  CHECK_FALSE(nested.is_valid(value));
  // A `not` around a depth failure does not turn it into a success.
  CHECK_FALSE(Schema::compile(j(R"({"$defs":{"n":{"anyOf":[{"type":"integer"},{"items":{"$ref":"#/$defs/n"}}]}},
                                    "not":{"$ref":"#/$defs/n"}})"))
                  .is_valid(value));
  // Equality and uniqueness on deep values.
  json pair = json::array();
  pair.push_back(deep_array(5000));
  pair.push_back(deep_array(5000));
  CHECK(Schema::compile(j(R"({"uniqueItems":true})")).validate(pair).at(0).keyword == "depth");
  json many = json::array();
  for (int i = 0; i < 20; ++i) many.push_back(deep_array(5000));
  CHECK(Schema::compile(j(R"({"uniqueItems":true})")).validate(many).at(0).keyword == "depth");
  CHECK(Schema::compile(json{{"const", json::array({1})}}).validate(value).at(0).keyword == "const");
  // A schema deeper than MAX_JSON_DEPTH is refused before compiling.
  json deep_schema = json::object();
  for (int i = 0; i < 200; ++i) deep_schema = {{"items", std::move(deep_schema)}};
  CHECK(compile_error(deep_schema).code() == ErrorCode::input_too_large);
}

TEST_CASE("schema: max_issues caps the report") {
  const Schema s = Schema::compile(j(R"({"items":{"type":"string"}})"));
  json many = json::array();
  for (int i = 0; i < 50; ++i) many.push_back(i);
  CHECK(s.validate(many).size() == 20);
  CHECK(s.validate(many, 3).size() == 3);
  CHECK(s.validate(many, 0).size() == 1);
  CHECK(s.validate(many, 100).size() == 50);
  CHECK(s.validate(many, 3)[2].path == "$[2]");
}

TEST_CASE("schema: pattern matching (own ECMA-262 subset engine, unanchored search)") {
  CHECK(matches("a+", "xxaayy"));
  CHECK_FALSE(matches("^a+$", "xxaayy"));
  CHECK(matches("^a*$", ""));
  CHECK(matches("", "anything"));
  CHECK(matches("^[a-z0-9_-]{3,16}$", "user_name-1"));
  CHECK_FALSE(matches("^[a-z0-9_-]{3,16}$", "ab"));
  CHECK_FALSE(matches("^[a-z0-9_-]{3,16}$", "UPPER"));
  CHECK(matches("^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$", "a.b@example.org"));
  CHECK_FALSE(matches("^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$", "a b@example.org"));
  CHECK(matches("^\\d{4}-\\d{2}-\\d{2}$", "2024-01-31"));
  CHECK_FALSE(matches("^\\d{4}-\\d{2}-\\d{2}$", "2024-1-31"));
  CHECK(matches("^(cat|dog)s?$", "dogs"));
  CHECK_FALSE(matches("^(cat|dog)s?$", "cow"));
  CHECK(matches("^(?:ab)+$", "ababab"));
  CHECK_FALSE(matches("^(?:ab)+$", "ababa"));
  CHECK(matches("^(?<year>\\d+)$", "2024"));
  CHECK(matches("^a{2}$", "aa"));
  CHECK_FALSE(matches("^a{2}$", "aaa"));
  CHECK(matches("^a{2,}$", "aaaaa"));
  CHECK(matches("^a{0,2}b$", "b"));
  CHECK_FALSE(matches("^a{0,2}b$", "aaab"));
  CHECK(matches("^a{1,3}?$", "aa"));  // lazy quantifiers match the same strings
  CHECK(matches("x{", "x{"));         // a brace that is no quantifier is a literal
  CHECK(matches("^.$", "\xC3\xA9"));  // . is one code point
  CHECK(matches("^.$", "\xF0\x9F\x92\xA9"));
  CHECK_FALSE(matches("^.$", "\n"));
  CHECK(matches("^[^]$", "\n"));
  CHECK_FALSE(matches("[]", "a"));
  CHECK(matches("^\xC3\xA1", "\xC3\xA1rbol"));
  CHECK(matches("^[\xC3\xA0-\xC3\xBF]+$", "\xC3\xA1\xC3\xA9"));
  CHECK(matches("^\\u00e1$", "\xC3\xA1"));
  CHECK(matches("^\\u{1F4A9}$", "\xF0\x9F\x92\xA9"));
  CHECK(matches("^\\uD83D\\uDCA9$", "\xF0\x9F\x92\xA9"));
  CHECK(matches("^\\x41\\t$", "A\t"));
  CHECK(matches("^\\w+\\s\\W$", "ab_9 !"));
  CHECK(matches("^\\S\\D$", "x-"));
  CHECK(matches("^[\\d.]+$", "1.25"));
  CHECK(matches("^[\\w-]+$", "a-b"));
  CHECK(matches("\\bcat\\b", "a cat here"));
  CHECK_FALSE(matches("\\bcat\\b", "concatenate"));
  CHECK(matches("\\Bcat", "concatenate"));
  CHECK(matches("^\\$\\d+\\.\\d\\d$", "$10.00"));
  CHECK(matches("^a|b$", "ax"));
  CHECK(matches("^a|b$", "xb"));
  CHECK_FALSE(matches("^a|b$", "xa"));
  CHECK(matches("^(a|)+$", "aaa"));
  CHECK(matches("^()*$", ""));
  CHECK(matches("\\/", "a/b"));
  CHECK(matches("^\\s$", "\xE2\x80\xA8"));  // U+2028 is whitespace in ECMA-262
  // No catastrophic backtracking: this is linear in the input.
  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(matches("^(a*)*b$", std::string(20000, 'a')));
  CHECK_FALSE(matches("(x+x+)+y", std::string(5000, 'x')));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  // Rejected syntax and sizes.
  for (const char* bad : {"*a", "a**", "a{2,1}", "[z-a]", "(?<=a)b", "a\\", "\\q", "a{1001}", "(?x)", "^*", "a)"}) {
    json schema = {{"pattern", bad}};
    CHECK_MESSAGE(compile_error(schema).code() == ErrorCode::invalid_argument, bad);
  }
  json huge = {{"pattern", "(((a{1000}){1000}){1000})"}};
  CHECK(compile_error(huge).message().find("too large") != std::string::npos);
  std::string nest(100, '(');
  nest += std::string(100, ')');
  CHECK(compile_error(json{{"pattern", nest}}).message().find("nested too deeply") != std::string::npos);
  // Invalid UTF-8 in a value built in C++ does not break matching.
  CHECK(matches("^.b$", "\xFF" "b"));
}

// The three OpenAI function schemas of this package (reference-api.md §2.3 "Function parameters").
namespace {
const char* kAnalyzeIntent = R"({
  "type": "object",
  "properties": {
    "analysis": {"type": "string"},
    "conclusion": {"type": "string"},
    "confidence": {"type": "number"},
    "inferred_assets": {"type": "integer"},
    "asset_types": {"type": "array", "items": {"type": "string"}},
    "reasoning_steps": {"type": "array", "items": {"type": "string"}}
  },
  "required": ["analysis", "conclusion", "confidence", "inferred_assets"]
})";
const char* kAnalyzeBrand = R"({
  "type": "object",
  "properties": {
    "analysis": {"type": "string"},
    "conclusion": {"type": "string"},
    "confidence": {"type": "number"},
    "brand_strength": {"type": "string", "enum": ["weak", "moderate", "strong", "excellent"]},
    "brand_consistency_score": {"type": "number"},
    "recommendations": {"type": "array", "items": {"type": "string"}}
  },
  "required": ["analysis", "conclusion", "confidence", "brand_strength"]
})";
const char* kAssessComplexity = R"({
  "type": "object",
  "properties": {
    "analysis": {"type": "string"},
    "conclusion": {"type": "string"},
    "confidence": {"type": "number"},
    "complexity_level": {"type": "string", "enum": ["simple", "moderate", "complex", "expert"]},
    "complexity_score": {"type": "number"},
    "estimated_duration_ms": {"type": "integer"},
    "resource_requirements": {"type": "array", "items": {"type": "string"}},
    "optimization_suggestions": {"type": "array", "items": {"type": "string"}}
  },
  "required": ["analysis", "conclusion", "confidence", "complexity_level", "complexity_score"]
})";
}  // namespace

TEST_CASE("schema: analyze_intent arguments") {
  const Schema s = Schema::compile(j(kAnalyzeIntent));
  CHECK(s.is_valid(j(R"({"analysis":"wants banners","conclusion":"3 banners","confidence":0.9,"inferred_assets":3,
                         "asset_types":["banner"],"reasoning_steps":["read prompt","count"]})")));
  CHECK(s.is_valid(j(R"({"analysis":"a","conclusion":"c","confidence":1,"inferred_assets":2.0})")));
  CHECK(s.is_valid(j(R"({"analysis":"a","conclusion":"c","confidence":1,"inferred_assets":2,"extra":true})")));
  const auto issues = s.validate(j(R"({"analysis":"a","confidence":"high","inferred_assets":2.5,"asset_types":["x",3]})"));
  CHECK_MESSAGE(messages(issues) ==
                    "$.conclusion: required property is missing\n"
                    "$.confidence: expected number, got string\n"
                    "$.inferred_assets: expected integer, got number\n"
                    "$.asset_types[1]: expected string, got integer\n",
                messages(issues));
  CHECK(s.validate(j("\"not an object\"")).at(0).message == "$: expected object, got string");
}

TEST_CASE("schema: analyze_brand arguments") {
  const Schema s = Schema::compile(j(kAnalyzeBrand));
  CHECK(s.is_valid(j(R"({"analysis":"a","conclusion":"c","confidence":0.5,"brand_strength":"strong",
                         "brand_consistency_score":0.7,"recommendations":["more contrast"]})")));
  CHECK(s.is_valid(j(R"({"analysis":"a","conclusion":"c","confidence":0,"brand_strength":"weak"})")));
  const auto issues = s.validate(j(R"({"analysis":"a","conclusion":"c","confidence":0.5,"brand_strength":"great",
                                       "recommendations":"more contrast"})"));
  CHECK_MESSAGE(messages(issues) ==
                    "$.brand_strength: must be one of \"weak\", \"moderate\", \"strong\", \"excellent\"\n"
                    "$.recommendations: expected array, got string\n",
                messages(issues));
  CHECK(issues[0].keyword == "enum");
  CHECK(issues[0].path == "$.brand_strength");
}

TEST_CASE("schema: assess_complexity arguments") {
  const Schema s = Schema::compile(j(kAssessComplexity));
  CHECK(s.is_valid(j(R"({"analysis":"a","conclusion":"c","confidence":0.8,"complexity_level":"moderate",
                         "complexity_score":6.5,"estimated_duration_ms":45000,
                         "resource_requirements":["gpu"],"optimization_suggestions":[]})")));
  const auto issues = s.validate(j(R"({"analysis":"a","conclusion":"c","confidence":0.8,
                                       "complexity_level":"hard","estimated_duration_ms":"45s"})"));
  CHECK_MESSAGE(messages(issues) ==
                    "$.complexity_score: required property is missing\n"
                    "$.complexity_level: must be one of \"simple\", \"moderate\", \"complex\", \"expert\"\n"
                    "$.estimated_duration_ms: expected integer, got string\n",
                messages(issues));
  CHECK(s.validate(j("{}")).size() == 5);
  CHECK(s.validate(j("{}"), 2).size() == 2);
}

TEST_CASE("schema: accepts_text decides on the text, and says valid only when the tree would") {
  const Schema s = Schema::compile(j(R"({"type":"object","properties":{"a":{"type":"integer"},
      "n":{"anyOf":[{"type":"string"},{"type":"null"}]},"u":{"type":"array","uniqueItems":true},
      "e":{"enum":[{"b":1.0},"x"]}},"required":["a"],"additionalProperties":{"type":"string","maxLength":3}})"));
  CHECK(s.accepts_text(R"( {"a":1} )"));
  CHECK(s.accepts_text(R"({"a":2.0,"n":null,"u":[1,2],"e":{"b":1},"zz":"abc"})"));
  CHECK(s.accepts_text(R"({"\u0061":1,"e":"\u0078"})"));  // escaped names and values are decoded
  CHECK_FALSE(s.accepts_text(R"({"\u0061":"1"})"));
  CHECK_FALSE(s.accepts_text(R"({"n":"x"})"));            // required
  CHECK_FALSE(s.accepts_text(R"({"a":1,"n":3})"));        // anyOf, on a tree of the value
  CHECK_FALSE(s.accepts_text(R"({"a":1,"u":[1,1.0]})"));  // uniqueItems, ditto
  CHECK_FALSE(s.accepts_text(R"({"a":1,"e":{"b":2}})"));
  CHECK_FALSE(s.accepts_text(R"({"a":1,"zz":"abcd"})"));  // additionalProperties
  CHECK_FALSE(s.accepts_text(R"({"a":1,"zz":"ab\u00e9d"})"));
  CHECK(s.accepts_text(R"({"a":1,"zz":"ab\u00e9"})"));  // 3 code points

  // Whatever parse_json refuses is never accepted: malformed text, invalid UTF-8, a number past
  // double range even where no keyword looks at it, nesting past MAX_JSON_DEPTH.
  CHECK_FALSE(s.accepts_text(R"({"a":1)"));
  CHECK_FALSE(s.accepts_text(R"({"a":1} x)"));
  CHECK_FALSE(s.accepts_text("{\"a\":1,\"zz\":\"\xff\"}"));
  CHECK_FALSE(s.accepts_text(R"({"a":1e400})"));
  const Schema any = Schema::compile(j("{}"));
  CHECK(any.accepts_text(R"({"x":[1e300,{"y":-0.5}]})"));
  CHECK_FALSE(any.accepts_text(R"({"x":[1,{"y":1e400}]})"));
  CHECK_FALSE(any.accepts_text(std::string(600, '[') + std::string(600, ']')));
  CHECK(any.accepts_text("[[[1]]]"));

  // A repeated name is checked each time: valid answers hold for the last one (JSON.parse's and
  // the tree's reading); an invalid earlier one makes the text answer false though the tree's is
  // true, and the caller then asks the tree.
  // Required names outside the properties, and named twice.
  const Schema r = Schema::compile(j(R"({"required":["a","b","a"],"properties":{"a":{"type":"integer"}}})"));
  CHECK(r.accepts_text(R"({"b":null,"a":1})"));
  CHECK_FALSE(r.accepts_text(R"({"a":1})"));
  CHECK_FALSE(r.accepts_text(R"({"b":1})"));

  CHECK(s.accepts_text(R"({"a":1,"a":2})"));
  CHECK_FALSE(s.accepts_text(R"({"a":"x","a":2})"));
  CHECK(s.is_valid(j(R"({"a":"x","a":2})")));
}
