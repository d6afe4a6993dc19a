// tasks.execute against a scripted host: the compiled-spec protocol, the request it sends, how it
// reads completions (as a JSON value or as body text, with odd keys and duplicates), the repair
// round, and thousands of mangled completions that must each end in a result. Runs under
// ASan/UBSan with the rest of the suite: the completion walker reads validated text without bounds
// checks of its own, so this is where a wrong assumption would show.
#include <cstdint>
#include <random>
#include <string>

#include "host_script.hpp"

using agent_tools::json;
using test::ScriptedHost;

namespace {

json spec() {
  return {{"taskName", "intent_analysis"},
          {"taskType", "analysis"},
          {"progressPercent", 25},
          {"systemPrompt", "Find the \"intent\"."},
          {"functionDefinition",
           {{"name", "analyze_intent"},
            {"parameters",
             {{"type", "object"},
              {"properties", {{"analysis", {{"type", "string"}}}, {"confidence", {{"type", "number"}}}}},
              {"required", {"analysis", "confidence"}}}}}},
          {"modelConfig", json::object()},
          {"defaults", {{"model", "gpt-4o-mini"}, {"temperature", 0.3}}},
          {"http", {{"url", "test:/chat/completions"}, {"timeoutMs", 5000}, {"maxRetries", 2}, {"repair", true}}}};
}

json call_input(std::uint32_t task, bool with_spec) {
  json previous = {{"completedSteps", {"setup"}}, {"currentProgress", 10}, {"totalSteps", 5}, {"currentStep", "setup"},
                   {"metadata", {{"runId", "r-1"}, {"taskName", "old"}}}};
  json input = {{"task", task}, {"previousCSI", previous}, {"userPrompt", "Make 3 posts"}};
  if (with_spec) input["taskSpec"] = spec();
  return input;
}

json completion(const json& arguments) {
  json call = {{"id", "call_1"}, {"type", "function"}, {"function", {{"name", "analyze_intent"}, {"arguments", arguments.dump()}}}};
  return {{"id", "c1"},
          {"object", "chat.completion"},
          {"choices", {{{"index", 0}, {"finish_reason", "tool_calls"}, {"message", {{"role", "assistant"}, {"tool_calls", {call}}}}}}}};
}

const json kArgs = {{"analysis", "three posts"}, {"confidence", 0.9}};

// Runs one task with `reply` as the transport's answer (JSON text of {status, headers, body|json}).
json run(ScriptedHost& host, agent_tools::OpId op, std::uint32_t task, const std::string& reply) {
  host.engine.set_clock(1.7e12);
  host.start(op, "tasks.execute", call_input(task, true).dump());
  json call = host.call_of(op);
  REQUIRE(call["kind"] == "http");
  host.reply_raw(call["call"].get<agent_tools::CallId>(), true, reply);
  // A repair round asks again: answer it with a good completion.
  for (int round = 0; !host.done.count(op) && round < 3; ++round) {
    json again = host.call_of(op);
    host.reply_raw(again["call"].get<agent_tools::CallId>(), true,
                   json{{"status", 200}, {"headers", json::object()}, {"json", completion(kArgs)}}.dump());
  }
  REQUIRE(host.done.count(op));
  REQUIRE(host.done[op].contains("value"));
  return host.done[op]["value"];
}

std::string reply_json(const json& body) { return json{{"status", 200}, {"headers", json::object()}, {"json", body}}.dump(); }
// dump_json, not json::dump: mangled bodies may hold invalid UTF-8 (which it replaces).
std::string reply_text(const std::string& body) {
  return agent_tools::dump_json(json{{"status", 200}, {"headers", json::object()}, {"body", body}});
}

}  // namespace

TEST_CASE("tasks: an unknown task id asks for the spec; with it, the request is the original's shape") {
  ScriptedHost host;
  host.start(1, "tasks.execute", call_input(9001, false).dump());
  REQUIRE(host.done.count(1));
  CHECK(host.done[1]["value"] == json{{"unknownTask", true}});

  host.engine.set_clock(1.7e12);
  host.start(2, "tasks.execute", call_input(9001, true).dump());
  json call = host.call_of(2);
  CHECK(call["args"]["url"] == "test:/chat/completions");
  CHECK(call["args"]["timeoutMs"] == 5000);
  const json& body = call["args"]["json"];
  CHECK(body["model"] == "gpt-4o-mini");
  CHECK(body["messages"] == json::array({{{"role", "system"}, {"content", "Find the \"intent\"."}},
                                         {{"role", "user"}, {"content", "Make 3 posts"}}}));
  CHECK(body["tools"][0]["function"] == spec()["functionDefinition"]);
  CHECK(body["tool_choice"] == json{{"type", "function"}, {"function", {{"name", "analyze_intent"}}}});
  CHECK(body["temperature"] == 0.3);
  host.reply_raw(call["call"].get<agent_tools::CallId>(), true, reply_json(completion(kArgs)));
  const json& result = host.done[2]["value"];
  CHECK(result["success"] == true);
  CHECK(result["stepResult"] == json{{"step", "intent_analysis"}, {"analysis", "three posts"}, {"confidence", 0.9}});
  CHECK(result["updatedCSI"]["completedSteps"] == json::array({"setup", "intent_analysis"}));
  CHECK(result["updatedCSI"]["currentProgress"] == 25);
  CHECK(result["updatedCSI"]["totalSteps"] == 5);
  CHECK(result["updatedCSI"]["metadata"]["runId"] == "r-1");  // kept
  CHECK(result["updatedCSI"]["metadata"]["taskName"] == "intent_analysis");  // this step's

  // Known now: the next call needs no spec.
  host.engine.set_clock(1.7e12);
  host.start(3, "tasks.execute", call_input(9001, false).dump());
  CHECK(host.call_of(3)["kind"] == "http");
}

TEST_CASE("tasks: completions as body text, with escaped keys and duplicates, read like JSON.parse reads them") {
  ScriptedHost host;
  json body = completion(kArgs);
  std::string text = body.dump();
  // An escaped member name is the same name.
  std::string escaped = text;
  escaped.replace(escaped.find("\"choices\""), 9, "\"choi\\u0063es\"");
  CHECK(run(host, 1, 1, reply_text(escaped))["success"] == true);
  // A later duplicate replaces an earlier one: a message without tool calls after a good one.
  std::string duplicate = text;
  duplicate.replace(duplicate.find("\"message\""), 0, "\"message\":{\"role\":\"assistant\"},");
  CHECK(run(host, 2, 1, reply_text(duplicate))["success"] == true);
  std::string later = text.substr(0, text.size() - 1) + ",\"choices\":[{\"message\":{\"refusal\":\"no\"}}]}";
  json refused = run(host, 3, 1, reply_text(later));
  CHECK(refused["error"]["details"]["reason"] == "refusal");
  // Two tool calls, a wrong function, arguments that are not JSON, no choices.
  json two = body;
  two["choices"][0]["message"]["tool_calls"].push_back(two["choices"][0]["message"]["tool_calls"][0]);
  CHECK(run(host, 4, 1, reply_json(two))["error"]["details"]["reason"] == "multiple_tool_calls");
  json wrong = body;
  wrong["choices"][0]["message"]["tool_calls"][0]["function"]["name"] = "other";
  CHECK(run(host, 5, 1, reply_json(wrong))["error"]["details"]["reason"] == "wrong_function");
  json bad_args = body;
  bad_args["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = "{\"analysis\":";
  CHECK(run(host, 6, 1, reply_json(bad_args))["error"]["details"]["reason"] == "invalid_arguments_json");
  CHECK(run(host, 7, 1, reply_json({{"choices", json::array()}}))["error"]["details"]["reason"] == "no_choices");
  CHECK(run(host, 8, 1, reply_text("<html>502</html>"))["error"]["details"]["reason"] == "malformed_response");
}

TEST_CASE("tasks: a repair round resends the conversation with the rejected call and the problems") {
  ScriptedHost host;
  host.engine.set_clock(1.7e12);
  host.start(1, "tasks.execute", call_input(1, true).dump());
  json first = host.call_of(1);
  host.reply_raw(first["call"].get<agent_tools::CallId>(), true, reply_json(completion({{"analysis", 5}})));
  json second = host.call_of(1);
  const json& messages = second["args"]["json"]["messages"];
  REQUIRE(messages.size() == 4);
  CHECK(messages[2]["role"] == "assistant");
  CHECK(messages[2]["tool_calls"][0]["id"] == "call_1");
  CHECK(messages[3]["role"] == "tool");
  CHECK(messages[3]["tool_call_id"] == "call_1");
  CHECK(second["args"]["json"]["tools"] == first["args"]["json"]["tools"]);
  host.reply_raw(second["call"].get<agent_tools::CallId>(), true, reply_json(completion(kArgs)));
  CHECK(host.done[1]["value"]["success"] == true);
}

TEST_CASE("tasks: thousands of mangled completions each end in a result, never a fault") {
  ScriptedHost host;
  const std::string good = completion(kArgs).dump();
  const std::string alphabet = "{}[]\",:\\ 0aeu\x01\xC3\xFF";
  std::mt19937_64 next(0x2545F4914F6CDD1D);
  int successes = 0;
  for (agent_tools::OpId op = 1; op <= 3000; ++op) {
    std::string body = good;
    for (int edits = 1 + static_cast<int>(next() % 3); edits > 0; --edits) {
      std::size_t at = next() % body.size();
      switch (next() % 3) {
        case 0: body[at] = alphabet[next() % alphabet.size()]; break;
        case 1: body.insert(at, 1, alphabet[next() % alphabet.size()]); break;
        default: body.erase(at, 1 + next() % 4);
      }
      if (body.empty()) body = "{";
    }
    // As body text (validated by the core), and as a JSON value when it still is one.
    json value = run(host, op, 1, reply_text(body));
    CHECK((value["success"] == true || value["error"].contains("code")));
    successes += value["success"] == true;
  }
  CHECK(host.faults.empty());
  CHECK(successes > 0);  // some edits land in string contents and keep the completion valid
}

TEST_CASE("tasks: stepResult is the task's step and the arguments, however the arguments are written") {
  ScriptedHost host;
  // The arguments as the model wrote them (the JSON text inside the tool call's string).
  auto step_of = [&](agent_tools::OpId op, const std::string& arguments) {
    json body = completion(kArgs);
    body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = arguments;
    json result = run(host, op, 1, reply_json(body));
    REQUIRE(result["success"] == true);
    return result["stepResult"];
  };
  const json expected = {{"step", "intent_analysis"}, {"analysis", "three posts"}, {"confidence", 0.9}};
  CHECK(step_of(1, R"({"analysis":"three posts","confidence":0.9})") == expected);
  CHECK(step_of(2, " {\n \"analysis\" : \"three posts\" ,\t\"confidence\" : 0.9 }\n") == expected);
  // A member named step never replaces the task's, however it is spelled.
  CHECK(step_of(3, R"({"step":"mine","analysis":"three posts","confidence":0.9})") == expected);
  CHECK(step_of(4, R"({"analysis":"three posts","st\u0065p":"mine","confidence":0.9})") == expected);
  // "step" as a value, and escapes elsewhere, are kept as they are.
  json kept = step_of(5, R"({"analysis":"three posts","confidence":0.9,"note":"step","why":"\u00e9t\u00e9 \"step\""})");
  CHECK(kept["step"] == "intent_analysis");
  CHECK(kept["note"] == "step");
  CHECK(kept["why"] == "\u00e9t\u00e9 \"step\"");
  // Repeated names: the last one, as JSON.parse (and the tree) read them.
  CHECK(step_of(6, R"({"analysis":"first","analysis":"three posts","confidence":0.9})") == expected);
  CHECK(step_of(7, R"({"analysis":1,"analysis":"three posts","confidence":0.9})") == expected);  // decided on the tree
}
