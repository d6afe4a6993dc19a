// The lock operations against a scripted host: the commands they send, how they read each reply
// (including wrong ones), and their results. Runs under ASan/UBSan with the rest of the suite.
#include <string>

#include "host_script.hpp"

using agent_tools::json;
using test::ScriptedHost;

namespace {

constexpr double kNow = 1.7e12;

// Starts `name` and answers the entropy refill, if the operation asks for one.
void start(ScriptedHost& host, agent_tools::OpId op, const std::string& name, const json& input) {
  host.engine.set_clock(kNow);
  host.start(op, name, input.dump());
  for (auto& [id, e] : host.calls) {
    if (e["op"] == op && e["kind"] == "random") {
      host.reply(id, std::string(2 * e["args"]["bytes"].get<std::size_t>(), 'a'));
      break;
    }
  }
}

json acquire_input(const json& extra = json::object()) {
  json input = {{"key", "run:u:t"}, {"userId", "u"}, {"threadId", "t"}, {"ttlSeconds", 60}, {"processId", "p1"}};
  input.update(extra);
  return input;
}

std::string error_code(ScriptedHost& host, agent_tools::OpId op) {
  REQUIRE(host.done.count(op));
  REQUIRE(host.done[op].contains("error"));
  return host.done[op]["error"]["code"].get<std::string>();
}

}  // namespace

TEST_CASE("acquire sends one EVALSHA and reports the fence and an owner") {
  ScriptedHost host;
  start(host, 1, "kv.acquire", acquire_input());
  json call = host.call_of(1);
  CHECK(call["kind"] == "kv");
  const json& args = call["args"];
  CHECK(args[0] == "EVALSHA");
  CHECK(args[1] == agent_tools::kv_scripts::acquire.sha1);
  CHECK(args[2] == "2");
  CHECK(args[3] == "run:u:t");
  CHECK(args[4] == "run:u:t:fence");
  json value = json::parse(args[5].get<std::string>());
  CHECK(value["processId"] == "p1");
  CHECK(value["lockedAt"] == "2023-11-14T22:13:20.000Z");
  CHECK(value["expiresAt"] == "2023-11-14T22:14:20.000Z");
  CHECK(args[6] == "60000");

  host.reply(call["call"], 42);
  json result = host.done[1]["value"];
  CHECK(result["success"] == true);
  CHECK(result["fence"] == 42);
  CHECK(result["lockId"] == value["lockId"]);
  CHECK(result["expiresAt"] == 1.7e12 + 60000);
  CHECK(result["owner"] == json({{"lockId", value["lockId"]}, {"lockedAt", value["lockedAt"]}, {"processId", "p1"}}));

  SUBCASE("release with that owner sends the lock's prefix and reports ok") {
    start(host, 2, "kv.release", {{"key", "run:u:t"}, {"owner", result["owner"]}});
    json release = host.call_of(2);
    CHECK(release["args"][1] == agent_tools::kv_scripts::release.sha1);
    CHECK(release["args"][2] == "1");  // the lock key only: release never touches the fence
    CHECK(release["args"][3] == "run:u:t");
    CHECK(args[5].get<std::string>().rfind(release["args"][4].get<std::string>(), 0) == 0);
    CHECK(release["args"].size() == 5);  // prefix matching is the scripts' default: no mode word
    host.reply(release["call"], 1);
    CHECK(host.done[2]["value"] == json({{"released", true}, {"state", "ok"}}));
  }
  SUBCASE("extend rewrites the value with the new expiry and keeps the holder's fields") {
    start(host, 2, "kv.extend", {{"key", "run:u:t"}, {"owner", result["owner"]}, {"ttlMs", 5000}});
    json extend = host.call_of(2);
    CHECK(extend["args"][2] == "1");
    CHECK(args[5].get<std::string>().rfind(extend["args"][4].get<std::string>(), 0) == 0);
    CHECK(extend["args"][5] == "5000");
    CHECK(extend["args"].size() == 7);
    json renewed = json::parse(extend["args"][6].get<std::string>());
    CHECK(renewed["lockId"] == value["lockId"]);
    CHECK(renewed["lockedAt"] == value["lockedAt"]);
    CHECK(renewed["expiresAt"] == "2023-11-14T22:13:25.000Z");
    host.reply(extend["call"], -1);
    CHECK(host.done[2]["value"]["extended"] == false);
    CHECK(host.done[2]["value"]["state"] == "not-owner");
  }
}

TEST_CASE("a held lock reports its holder; an unknown script falls back to EVAL once") {
  ScriptedHost host;
  start(host, 1, "kv.acquire", acquire_input());
  json call = host.call_of(1);
  host.reply(call["call"], json{{"error", "NOSCRIPT No matching script"}});
  json eval = host.call_of(1);
  CHECK(eval["args"][0] == "EVAL");
  CHECK(eval["args"][1] == agent_tools::kv_scripts::acquire.lua);
  host.reply(eval["call"], json::array({R"({"lockId":"other","lockedAt":"x"})", 1234}));
  json result = host.done[1]["value"];
  CHECK(result["success"] == false);
  CHECK(result["activeLockMetadata"] == json({{"lockId", "other"}, {"lockedAt", "x"}}));
  CHECK(result["remainingMs"] == 1234);

  start(host, 2, "kv.acquire", acquire_input());
  host.reply(host.call_of(2)["call"], json::array({"not json {", -1}));
  CHECK(host.done[2]["value"]["activeLockMetadata"] == json({{"lockedAt", "invalid data"}}));
  CHECK(host.done[2]["value"]["remainingMs"].is_null());
}

TEST_CASE("wrong KV replies are typed errors, never traps") {
  ScriptedHost host;
  const json bad_replies[] = {
      "OK", "7x", 1.5, json::array(), json::array({"x"}), json::array({"x", "NaN"}), json::array({"x", 1, 2}), true,
      nullptr, json{{"result", 1}}, json::array({5, 1}), json::array({json::array({"x"}), 1}),
  };
  agent_tools::OpId op = 1;
  for (const json& reply : bad_replies) {
    CAPTURE(reply.dump());
    start(host, op, "kv.acquire", acquire_input());
    host.reply(host.call_of(op)["call"], reply);
    CHECK(error_code(host, op) == "HOST_BAD_REPLY");
    ++op;
  }
  start(host, op, "kv.acquire", acquire_input());
  host.reply_raw(host.call_of(op)["call"], true, "[1, 2");  // not JSON
  CHECK(error_code(host, op) == "HOST_BAD_REPLY");
  ++op;
  start(host, op, "kv.acquire", acquire_input());
  host.reply(host.call_of(op)["call"], json{{"error", "ERR out of memory"}});
  CHECK(error_code(host, op) == "HOST_ERROR");
  CHECK(host.engine.stats().live_operations == 0);
}

TEST_CASE("bad lock inputs are rejected before any KV call") {
  ScriptedHost host;
  start(host, 1, "kv.acquire", acquire_input({{"userId", ""}}));
  CHECK(error_code(host, 1) == "VALIDATION_FAILED");
  start(host, 2, "kv.acquire", acquire_input({{"threadId", 7}, {"ttlSeconds", "60"}}));
  CHECK(error_code(host, 2) == "VALIDATION_FAILED");
  CHECK(host.done[2]["error"]["details"].size() == 2);
  start(host, 3, "kv.acquire", acquire_input({{"wait", {{"timeoutMs", -5}}}}));
  CHECK(error_code(host, 3) == "INVALID_ARGUMENT");
  start(host, 4, "kv.release", {{"key", "k"}, {"owner", "me"}});
  CHECK(error_code(host, 4) == "INVALID_ARGUMENT");
  start(host, 5, "kv.release", {{"key", "k"}, {"owner", {{"lockedAt", "x"}}}});
  CHECK(error_code(host, 5) == "INVALID_ARGUMENT");
  start(host, 6, "kv.extend", {{"key", "k"}, {"owner", {{"lockId", "l"}}}, {"ttlMs", 1.5}});
  CHECK(error_code(host, 6) == "INVALID_ARGUMENT");
  start(host, 7, "kv.acquire", acquire_input({{"mode", "telepathy"}}));
  CHECK(error_code(host, 7) == "INVALID_ARGUMENT");
  host.start(8, "kv.acquire", "[1,2]");
  CHECK(error_code(host, 8) == "INVALID_ARGUMENT");
  host.start(9, "kv.acquire", "{\"key\":\"\xC3\x28\"}");  // invalid UTF-8
  CHECK(error_code(host, 9) == "INVALID_ARGUMENT");
  CHECK(host.calls.empty());
}

TEST_CASE("basic mode: plain commands and a check-then-delete release") {
  ScriptedHost host;
  start(host, 1, "kv.acquire", acquire_input({{"mode", "basic"}, {"valueText", "mine"}}));
  json set = host.call_of(1);
  CHECK(set["args"] == json({"SET", "run:u:t", "mine", "NX", "PX", "60000"}));
  host.reply(set["call"], "OK");
  CHECK(host.done[1]["value"]["success"] == true);
  CHECK(host.done[1]["value"]["fence"].is_null());
  json owner = host.done[1]["value"]["owner"];
  CHECK(owner == json({{"expect", "mine"}}));

  start(host, 2, "kv.release", {{"key", "run:u:t"}, {"owner", owner}, {"mode", "basic"}});
  json get = host.call_of(2);
  CHECK(get["args"] == json({"GET", "run:u:t"}));
  host.reply(get["call"], "mine");
  json del = host.call_of(2);
  CHECK(del["args"] == json({"DEL", "run:u:t"}));
  host.reply(del["call"], 1);
  CHECK(host.done[2]["value"]["released"] == true);
}

TEST_CASE("inspect and list read their replies strictly") {
  ScriptedHost host;
  start(host, 1, "kv.inspect", {{"key", "run:u:t"}});
  host.reply(host.call_of(1)["call"], json::array({R"({"lockedAt":"x"})", 900, "17"}));
  CHECK(host.done[1]["value"] == json({{"lockKey", "run:u:t"}, {"held", true}, {"metadata", {{"lockedAt", "x"}}},
                                      {"remainingMs", 900}, {"fence", 17}}));

  start(host, 2, "kv.list", {{"prefix", "run"}});
  json scan = host.call_of(2);
  CHECK(scan["args"] == json({"SCAN", "0", "MATCH", "run:*", "COUNT", "100"}));
  host.reply(scan["call"], json::array({"5", {"run:b:c", "run:a:b:fence"}}));
  json next = host.call_of(2);
  CHECK(next["args"][1] == "5");
  host.reply(next["call"], json::array({"0", {"run:a:b", "run:b:c"}}));
  CHECK(host.done[2]["value"] == json({{"keys", {"run:a:b", "run:b:c"}}, {"complete", true}}));

  start(host, 3, "kv.list", {{"prefix", "run"}});
  host.reply(host.call_of(3)["call"], json::array({"0", {"x"}}));  // not under the prefix
  CHECK(error_code(host, 3) == "HOST_BAD_REPLY");
}

TEST_CASE("hold renews until the KV says the lock is gone, then fails with LOCK_LOST") {
  ScriptedHost host;
  json owner = {{"lockId", "l1"}, {"lockedAt", "t0"}, {"processId", "p"}};
  start(host, 1, "kv.hold", {{"key", "k"}, {"owner", owner}, {"ttlMs", 3000}, {"maxHoldMs", 60000}});
  json sleep = host.call_of(1);
  CHECK(sleep["kind"] == "sleep");
  CHECK(sleep["args"]["ms"] == 1000);
  host.engine.set_clock(kNow + 1000);
  host.reply(sleep["call"], nullptr);
  json extend = host.call_of(1);
  CHECK(extend["args"][1] == agent_tools::kv_scripts::extend.sha1);
  host.reply(extend["call"], 0);
  CHECK(error_code(host, 1) == "LOCK_LOST");
  CHECK(host.done[1]["error"]["details"]["state"] == "missing");
}

TEST_CASE("acquire reads the fence in any integer spelling, and its own value as a replayed success") {
  ScriptedHost host;
  start(host, 1, "kv.acquire", acquire_input());
  host.reply(host.call_of(1)["call"], "9");  // a client that hands integers over as decimal text
  CHECK(host.done[1]["value"]["fence"] == 9);

  // A transport retry ran the script twice: the second run answers "held by <our value>", and
  // the fence is the counter as the first run left it.
  start(host, 2, "kv.acquire", acquire_input());
  json call = host.call_of(2);
  host.reply(call["call"], json::array({call["args"][5], 59000}));
  json get = host.call_of(2);
  CHECK(get["args"] == json::array({"GET", "run:u:t:fence"}));
  host.reply(get["call"], "12");
  CHECK(host.done[2]["value"]["success"] == true);
  CHECK(host.done[2]["value"]["fence"] == 12);
}

TEST_CASE("an owner known by its whole value (caller metadata) is matched exactly") {
  ScriptedHost host;
  json owner = {{"expect", "{\"mine\":1}"}};
  start(host, 1, "kv.release", {{"key", "run:u:t"}, {"owner", owner}});
  json release = host.call_of(1);
  CHECK(release["args"] == json::array({"EVALSHA", agent_tools::kv_scripts::release.sha1, "1", "run:u:t", "{\"mine\":1}", "exact"}));
  host.reply(release["call"], -1);
  CHECK(host.done[1]["value"] == json({{"released", false}, {"state", "not-owner"}}));

  start(host, 2, "kv.extend", {{"key", "run:u:t"}, {"owner", owner}, {"ttlMs", 5000}});
  json extend = host.call_of(2);
  CHECK(extend["args"][4] == "{\"mine\":1}");
  CHECK(extend["args"][5] == "5000");
  CHECK(extend["args"][7] == "exact");
  host.reply(extend["call"], 1);
  CHECK(host.done[2]["value"]["extended"] == true);
}

TEST_CASE("compact results: the shim's short acquire and release replies carry what the full ones do") {
  ScriptedHost host;
  start(host, 1, "kv.acquire", acquire_input({{"compact", true}}));
  json call = host.call_of(1);
  json value = json::parse(call["args"][5].get<std::string>());
  host.reply(call["call"], 7);
  json result = host.done[1]["value"];
  CHECK(result == json::array({7, value["lockId"], value["lockedAt"], value["expiresAt"]}));
  CHECK(value["expiresAt"] == "2023-11-14T22:14:20.000Z");  // 1.7e12 + 60000 ms

  // With a caller's own value the owner is {expect}, which the short form cannot carry.
  start(host, 2, "kv.acquire", acquire_input({{"compact", true}, {"valueText", "{\"mine\":1}"}}));
  host.reply(host.call_of(2)["call"], 8);
  CHECK(host.done[2]["value"]["owner"] == json({{"expect", "{\"mine\":1}"}}));
  CHECK(host.done[2]["value"]["fence"] == 8);

  // A held lock is reported in full either way.
  start(host, 3, "kv.acquire", acquire_input({{"compact", true}}));
  host.reply(host.call_of(3)["call"], json::array({R"({"lockId":"other"})", 500}));
  CHECK(host.done[3]["value"]["success"] == false);
  CHECK(host.done[3]["value"]["remainingMs"] == 500);

  const json owner = {{"lockId", value["lockId"]}};
  for (int status : {1, 0, -1}) {
    agent_tools::OpId op = static_cast<agent_tools::OpId>(10 + status);
    start(host, op, "kv.release", {{"key", "run:u:t"}, {"owner", owner}, {"compact", true}});
    host.reply(host.call_of(op)["call"], status);
    CHECK(host.done[op]["value"] == status);
  }
  start(host, 20, "kv.release", {{"key", "run:u:t"}, {"owner", owner}, {"compact", false}});
  host.reply(host.call_of(20)["call"], -1);
  CHECK(host.done[20]["value"] == json({{"released", false}, {"state", "not-owner"}}));
}

TEST_CASE("argsJson: a kv call record carries the command as one JSON array text, the same command as without") {
  // The same acquire on two engines with the same clock and entropy: one asks for JSON.
  auto first_kv_call = [](agent_tools::Engine& engine, bool args_json) {
    engine.set_clock(kNow);
    json input = acquire_input({{"argsJson", args_json}, {"userId", "u \"q\" \xC3\xA9"}});
    engine.start(1, "kv.acquire", input.dump());
    agent_tools::EventEnvelope events = engine.take_envelope();
    // The entropy refill comes first when the pool is empty; answer it and take the kv call.
    if ((events.records[3] & 0xff) == static_cast<std::uint32_t>(agent_tools::HostCallKind::random)) {
      CHECK((events.records[3] & agent_tools::kKvJsonFlag) == 0);  // only kv commands get JSON
      engine.resume(events.records[1], true, json(std::string(2048, 'a')).dump());
      events = engine.take_envelope();
    }
    return events;
  };
  agent_tools::Engine with_json;
  agent_tools::EventEnvelope events = first_kv_call(with_json, true);
  const std::uint32_t* r = events.records;
  REQUIRE(r[0] == static_cast<std::uint32_t>(agent_tools::EventTag::call));
  REQUIRE((r[3] & agent_tools::kKvJsonFlag) != 0);
  CHECK((r[3] & 0xff) == static_cast<std::uint32_t>(agent_tools::HostCallKind::kv));
  REQUIRE(r[4] == 1);  // one text: the JSON array, and the arguments nowhere else
  REQUIRE(events.words == 7);
  json sent = json::parse(std::string_view(events.text + r[5], r[6]));

  agent_tools::Engine plain;
  events = first_kv_call(plain, false);
  r = events.records;
  REQUIRE((r[3] & agent_tools::kKvJsonFlag) == 0);
  json args = json::array();
  for (std::uint32_t a = 0; a < r[4]; ++a) args.push_back(std::string(events.text + r[5 + 2 * a], r[6 + 2 * a]));
  CHECK(sent == args);
  CHECK(args[0] == "EVALSHA");
  CHECK(json::parse(args[5].get<std::string>())["lockId"].get<std::string>().rfind("u \"q\" \xC3\xA9-t-", 0) == 0);
  agent_tools::Engine& engine = plain;
  // Without the flag (or with false) there is no JSON text.
  engine.start(2, "kv.release", json({{"key", "run:u:t"}, {"owner", {{"lockId", "x"}}}, {"argsJson", false}}).dump());
  events = engine.take_envelope();
  REQUIRE(events.words == 5 + 2 * events.records[4]);
  CHECK((events.records[3] & agent_tools::kKvJsonFlag) == 0);
}
