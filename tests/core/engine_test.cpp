#include <algorithm>
#include <random>

#include "host_script.hpp"

using agent_tools::json;
using test::echo_input;
using test::ScriptedHost;

TEST_CASE("an operation suspends at each host call and resumes with the host's reply") {
  ScriptedHost host;
  host.start(7, "diag.echo",
             echo_input(json::array({{{"kind", "kv"}, {"args", {"GET", "k"}}},
                                     {{"kind", "now"}},
                                     {{"kind", "random"}, {"bytes", 4}},
                                     {{"kind", "sleep"}, {"ms", 5}}}),
                        "t1"));
  REQUIRE(host.done.empty());

  json kv = host.call_of(7);
  CHECK(kv["kind"] == "kv");
  CHECK(kv["args"] == json({"GET", "k"}));
  host.reply(kv["call"], "value");

  json now = host.call_of(7);
  CHECK(now["kind"] == "now");
  CHECK_FALSE(now.contains("args"));
  host.reply(now["call"], 1.7e12);

  json random = host.call_of(7);
  CHECK(random["args"] == json({{"bytes", 4}}));
  host.reply(random["call"], "0a0b0c0d");

  json sleep = host.call_of(7);
  CHECK(sleep["args"] == json({{"ms", 5}}));
  host.reply(sleep["call"], nullptr);

  REQUIRE(host.done.count(7));
  CHECK(host.done[7]["value"] == json({{"tag", "t1"}, {"results", {"value", 1.7e12, "0a0b0c0d", nullptr}}}));
  CHECK(host.engine.stats().live_operations == 0);
  CHECK(host.engine.stats().pending_calls == 0);
}

TEST_CASE("operations with no host calls finish within start") {
  ScriptedHost host;
  host.start(1, "diag.echo", echo_input(json::array(), 42));
  REQUIRE(host.done.count(1));
  CHECK(host.done[1]["value"]["tag"] == 42);
}

TEST_CASE("thousands of operations interleave and each gets its own replies") {
  ScriptedHost host;
  constexpr agent_tools::OpId kOps = 5000;
  for (agent_tools::OpId op = 1; op <= kOps; ++op) {
    host.start(op, "diag.echo",
               echo_input(json::array({{{"kind", "kv"}, {"args", {"GET", std::to_string(op)}}},
                                       {{"kind", "kv"}, {"args", {"INCR", std::to_string(op)}}}}),
                          op));
  }
  REQUIRE(host.calls.size() == kOps);
  std::mt19937 rng(12345);  // the test's own randomness; the engine has none
  while (!host.calls.empty()) {
    std::vector<agent_tools::CallId> ids;
    for (auto& [id, e] : host.calls) ids.push_back(id);
    std::shuffle(ids.begin(), ids.end(), rng);
    for (auto id : ids) {
      json e = host.calls.at(id);
      // The reply is derived from the request, so a reply routed to the wrong coroutine shows.
      host.reply(id, e["args"][0].get<std::string>() + ":" + e["args"][1].get<std::string>());
    }
  }
  REQUIRE(host.done.size() == kOps);
  for (agent_tools::OpId op = 1; op <= kOps; ++op) {
    auto key = std::to_string(op);
    CHECK(host.done[op]["value"] == json({{"tag", op}, {"results", {"GET:" + key, "INCR:" + key}}}));
  }
  CHECK(host.engine.stats().live_operations == 0);
}

TEST_CASE("bad operation names and inputs finish with typed errors") {
  ScriptedHost host;
  host.start(1, "no.such.op", "{}");
  CHECK(host.done[1]["error"]["code"] == "UNKNOWN_OPERATION");

  host.start(2, "diag.echo", "{\"calls\": [");
  CHECK(host.done[2]["error"]["code"] == "INVALID_ARGUMENT");

  host.start(3, "diag.echo", "{\"calls\":[{\"kind\":\"teleport\"}]}");
  CHECK(host.done[3]["error"]["code"] == "INVALID_ARGUMENT");
  CHECK(host.done[3]["error"]["message"].get<std::string>().find("teleport") != std::string::npos);

  host.start(4, "diag.echo", std::string(200, '[') + std::string(200, ']'));
  CHECK(host.done[4]["error"]["code"] == "INPUT_TOO_LARGE");

  host.start(5, "diag.echo", "{\"calls\":[],\"tag\":\"\xff\xfe\"}");  // invalid UTF-8
  CHECK(host.done[5]["error"]["code"] == "INVALID_ARGUMENT");

  host.start(6, "diag.echo", "{\"calls\":[],\"tag\":\"" + std::string(agent_tools::MAX_MESSAGE_BYTES, 'x') + "\"}");
  CHECK(host.done[6]["error"]["code"] == "INPUT_TOO_LARGE");

  host.start(7, "diag.echo", "{\"calls\":[{\"kind\":\"random\",\"bytes\":-1}]}");
  CHECK(host.done[7]["error"]["code"] == "INVALID_ARGUMENT");

  CHECK(host.engine.stats().live_operations == 0);
}

TEST_CASE("host failures reach the operation as typed errors") {
  ScriptedHost host;
  auto kv_once = echo_input(json::array({{{"kind", "kv"}, {"args", {"GET", "k"}}}}));
  auto now_once = echo_input(json::array({{{"kind", "now"}}}));

  SUBCASE("a thrown or rejected host function keeps its code and message") {
    host.start(1, "diag.echo", kv_once);
    host.fail(host.call_of(1)["call"], "TIMEOUT", "kv timed out after 50 ms");
    CHECK(host.done[1]["error"] == json({{"code", "TIMEOUT"}, {"message", "kv timed out after 50 ms"}}));
  }
  SUBCASE("an unknown error code becomes HOST_ERROR") {
    host.start(1, "diag.echo", kv_once);
    host.fail(host.call_of(1)["call"], "EWHATEVER", "boom");
    CHECK(host.done[1]["error"]["code"] == "HOST_ERROR");
    CHECK(host.done[1]["error"]["message"] == "boom");
  }
  SUBCASE("a reply that is not JSON") {
    host.start(1, "diag.echo", kv_once);
    host.reply_raw(host.call_of(1)["call"], true, "<html>oops");
    CHECK(host.done[1]["error"]["code"] == "HOST_BAD_REPLY");
  }
  SUBCASE("a failure reply that is not an error object") {
    host.start(1, "diag.echo", kv_once);
    host.reply_raw(host.call_of(1)["call"], false, "17");
    CHECK(host.done[1]["error"]["code"] == "HOST_BAD_REPLY");
  }
  SUBCASE("a reply of the wrong type") {
    host.start(1, "diag.echo", now_once);
    host.reply(host.call_of(1)["call"], "yesterday");
    CHECK(host.done[1]["error"]["code"] == "HOST_BAD_REPLY");
  }
  SUBCASE("random bytes that are not hex") {
    host.start(1, "diag.echo", echo_input(json::array({{{"kind", "random"}, {"bytes", 2}}})));
    host.reply(host.call_of(1)["call"], "zz!!");
    CHECK(host.done[1]["error"]["code"] == "HOST_BAD_REPLY");
  }
  SUBCASE("a reply nested too deep") {
    host.start(1, "diag.echo", kv_once);
    host.reply_raw(host.call_of(1)["call"], true, std::string(1000, '[') + std::string(1000, ']'));
    CHECK(host.done[1]["error"]["code"] == "INPUT_TOO_LARGE");
  }
  CHECK(host.engine.stats().live_operations == 0);
}

TEST_CASE("cancel aborts the pending call, finishes with CANCELLED and ignores late replies") {
  ScriptedHost host;
  host.start(1, "diag.echo", echo_input(json::array({{{"kind", "sleep"}, {"ms", 1000}}, {{"kind", "now"}}})));
  host.start(2, "diag.echo", echo_input(json::array({{{"kind", "now"}}})));
  auto call = host.call_of(1)["call"].get<agent_tools::CallId>();

  host.cancel(1);
  CHECK(host.aborted == std::vector<agent_tools::CallId>{call});
  CHECK(host.done[1]["error"]["code"] == "CANCELLED");
  CHECK_FALSE(host.done.count(2));  // the other operation is untouched

  host.reply_raw(call, true, "null");  // the timer fired anyway
  CHECK(host.engine.stats().stale_replies == 1);
  host.cancel(1);  // cancelling a finished operation is a no-op
  host.cancel(99);

  host.reply(host.call_of(2)["call"], 5.0);
  CHECK(host.done[2]["value"]["results"] == json({5.0}));
}

TEST_CASE("a duplicate operation id is reported as a fault and leaves the live one alone") {
  ScriptedHost host;
  host.start(1, "diag.echo", echo_input(json::array({{{"kind", "now"}}})));
  host.start(1, "diag.echo", echo_input(json::array()));
  REQUIRE(host.faults.size() == 1);
  host.reply(host.call_of(1)["call"], 1.0);
  CHECK(host.done[1]["value"]["results"] == json({1.0}));
}

TEST_CASE("destroying the engine with operations in flight frees their coroutine frames") {
  // Under ASan this test fails on any leaked frame or dangling slot.
  ScriptedHost host;
  for (agent_tools::OpId op = 1; op <= 100; ++op) {
    host.start(op, "diag.echo", echo_input(json::array({{{"kind", "sleep"}, {"ms", 10}}})));
  }
  CHECK(host.engine.stats().pending_calls == 100);
}

TEST_CASE("the envelope carries kv arguments as raw text, many records per input, and flags non-ASCII") {
  agent_tools::Engine engine;
  const std::string odd = "quote \" backslash \\ newline \n {\"json\":1} \xC3\xA9 \xF0\x9F\x98\x80";
  // Many operations started before one take: one record table holds them all.
  constexpr agent_tools::OpId kOps = 1000;
  for (agent_tools::OpId op = 1; op <= kOps; ++op) {
    std::string arg = op % 2 ? odd : "k" + std::to_string(op);
    engine.start(op, "diag.echo", echo_input(json::array({{{"kind", "kv"}, {"args", {"GET", arg}}}})));
  }
  agent_tools::EventEnvelope events = engine.take_envelope();
  CHECK_FALSE(events.ascii);
  std::vector<std::uint32_t> calls;
  for (std::size_t i = 0; i < events.words;) {
    REQUIRE(events.records[i] == static_cast<std::uint32_t>(agent_tools::EventTag::call));
    const std::uint32_t* r = events.records + i;
    CHECK(r[2] == r[1]);  // one call per operation, in order: call ids match op ids here
    CHECK(r[3] == static_cast<std::uint32_t>(agent_tools::HostCallKind::kv));
    REQUIRE(r[4] == 2);
    REQUIRE(r[7] + r[8] <= events.text_bytes);
    CHECK(std::string_view(events.text + r[5], r[6]) == "GET");
    std::string want = r[2] % 2 ? odd : "k" + std::to_string(r[2]);
    CHECK(std::string_view(events.text + r[7], r[8]) == want);
    calls.push_back(r[1]);
    i += 5 + 2 * r[4];
  }
  CHECK(calls.size() == kOps);
  // A second take without inputs in between is empty.
  CHECK(engine.take_envelope().words == 0);

  // Answering one call: a done record whose value is JSON text, all ASCII.
  engine.resume(calls[1], true, "\"v\"");
  events = engine.take_envelope();
  CHECK(events.ascii);
  REQUIRE(events.words == 5);
  CHECK(events.records[0] == static_cast<std::uint32_t>(agent_tools::EventTag::done));
  CHECK(events.records[1] == 2);
  CHECK(events.records[2] == 1);
  CHECK(json::parse(std::string_view(events.text + events.records[3], events.records[4])) ==
        json({{"tag", nullptr}, {"results", {"v"}}}));

  // The JSON rendering of the same kind of events escapes what the envelope leaves raw.
  engine.cancel(1);
  json rendered = json::parse(engine.take_events());
  REQUIRE(rendered.size() == 2);
  CHECK(rendered[0] == json({{"abort", calls[0]}}));
  CHECK(rendered[1]["done"] == 1);
  CHECK(rendered[1]["error"]["code"] == "CANCELLED");
}

TEST_CASE("a large kv argument crosses in one piece and the buffers shrink back afterwards") {
  ScriptedHost host;
  std::string big(3u << 20, 'x');
  host.engine.start(1, "diag.echo", echo_input(json::array({{{"kind", "kv"}, {"args", {"SET", big}}}})));
  agent_tools::EventEnvelope events = host.engine.take_envelope();
  REQUIRE(events.words == 9);
  CHECK(events.records[8] == big.size());
  CHECK(std::string_view(events.text + events.records[7], events.records[8]) == big);
  host.reply(events.records[1], "ok");
  REQUIRE(host.done.count(1));
  CHECK(host.done[1]["value"]["results"] == json({"ok"}));
}
