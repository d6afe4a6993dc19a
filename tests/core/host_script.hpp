// A scripted host for driving the engine in tests: it collects the engine's events and lets a
// test answer each host call explicitly, in any order.
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "agent_tools/engine.hpp"

namespace test {

using agent_tools::json;

struct ScriptedHost {
  agent_tools::Engine engine;
  std::map<agent_tools::CallId, json> calls;  // pending: id -> call event
  std::map<agent_tools::OpId, json> done;     // finished: op -> done event
  std::vector<agent_tools::CallId> aborted;
  std::vector<std::string> faults;

  void collect() {
    json events = json::parse(engine.take_events());
    REQUIRE(events.is_array());
    for (auto& e : events) {
      if (e.contains("call")) {
        calls[e["call"].get<agent_tools::CallId>()] = e;
      } else if (e.contains("abort")) {
        auto id = e["abort"].get<agent_tools::CallId>();
        aborted.push_back(id);
        calls.erase(id);
      } else if (e.contains("done")) {
        auto op = e["done"].get<agent_tools::OpId>();
        REQUIRE_FALSE(done.count(op));  // exactly one done per operation
        done[op] = e;
      } else if (e.contains("fault")) {
        faults.push_back(e["fault"].get<std::string>());
      } else {
        FAIL("unknown event " << e.dump());
      }
    }
  }

  void start(agent_tools::OpId op, const std::string& name, const std::string& input) {
    engine.start(op, name, input);
    collect();
  }

  void reply(agent_tools::CallId call, const json& value) {
    calls.erase(call);
    engine.resume(call, true, value.dump());
    collect();
  }

  void reply_raw(agent_tools::CallId call, bool ok, const std::string& text) {
    calls.erase(call);
    engine.resume(call, ok, text);
    collect();
  }

  void fail(agent_tools::CallId call, const std::string& code, const std::string& message) {
    reply_raw(call, false, json{{"code", code}, {"message", message}}.dump());
  }

  void cancel(agent_tools::OpId op) {
    engine.cancel(op);
    collect();
  }

  // The single pending call of `op`.
  json call_of(agent_tools::OpId op) {
    json found;
    for (auto& [id, e] : calls) {
      if (e["op"] == op) {
        REQUIRE(found.is_null());
        found = e;
      }
    }
    REQUIRE_FALSE(found.is_null());
    return found;
  }
};

inline std::string echo_input(const json& calls, const json& tag = nullptr) {
  return json{{"calls", calls}, {"tag", tag}}.dump();
}

}  // namespace test
