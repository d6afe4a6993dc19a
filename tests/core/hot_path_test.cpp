// The pieces the lock operations' hot path is built from: the in-place input reader, the
// escaper and text buffer, the engine's id map and frame pool, and reuse across many cycles.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "agent_tools/json_text.hpp"
#include "host_script.hpp"

using agent_tools::ErrorCode;
using agent_tools::FieldViews;
using agent_tools::JsonKind;
using agent_tools::json;

TEST_CASE("FieldViews reads a flat object in place, decoding escapes where they stood") {
  std::string text = R"({"plain":"abc","esc\"aped":"a\nb\u00e9\ud83d\ude00\/\\","n":-12.5e1,"t":true,)"
                     R"("nul":null,"obj":{"k":"v\"w"},"arr":[1,"x"],"plain":"again"})";
  FieldViews fields = FieldViews::parse(text, ErrorCode::invalid_argument, "input");
  CHECK(fields["plain"].text == "again");  // the last duplicate counts, as with JSON.parse
  CHECK(fields["esc\"aped"].text == "a\nb\xC3\xA9\xF0\x9F\x98\x80/\\");
  CHECK(fields["n"].kind == JsonKind::number);
  CHECK(fields["n"].number == -125.0);
  CHECK(fields["t"].boolean);
  CHECK(fields["nul"].is_null());
  CHECK(fields["absent"].is_null());
  CHECK(fields["arr"].text == R"([1,"x"])");
  // Nested objects keep their escapes until they are read themselves.
  REQUIRE(fields["obj"].kind == JsonKind::object);
  CHECK(fields["obj"].text == R"({"k":"v\"w"})");
  FieldViews nested = fields.object(fields["obj"], ErrorCode::invalid_argument, "obj");
  CHECK(nested["k"].text == "v\"w");
}

TEST_CASE("FieldViews keeps members past its inline room and rejects what Fields rejects") {
  std::string text = "{";
  for (int i = 0; i < 40; ++i) text += (i ? ",\"m" : "\"m") + std::to_string(i) + "\":" + std::to_string(i);
  text += "}";
  FieldViews fields = FieldViews::parse(text, ErrorCode::invalid_argument, "input");
  for (int i = 0; i < 40; ++i) CHECK(fields["m" + std::to_string(i)].number == i);

  for (std::string bad : {"[1]", "{\"a\":1,}", "{\"a\":\"\\x\"}", "{\"a\":\"\xff\"}", "{\"a\" 1}", "{} x"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(FieldViews::parse(bad, ErrorCode::invalid_argument, "input"), agent_tools::Error);
  }
}

TEST_CASE("write_json_string escapes exactly as append_json_string does") {
  std::mt19937 random(7);
  const std::string alphabet = std::string("ab\"\\/\n\r\t\b\f\x01\x1f\x7f") + "\xC3\xA9\xF0\x9F\x98\x80\xff\xc3";
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    std::size_t length = random() % 40;
    for (std::size_t i = 0; i < length; ++i) text += alphabet[random() % alphabet.size()];
    std::string expected = "prefix";
    agent_tools::append_json_string(expected, text);
    std::string actual = "prefix";
    agent_tools::write_json_string(actual, text);
    REQUIRE(actual == expected);
  }
}

TEST_CASE("TextBuffer appends past its room and hands back exactly its text") {
  agent_tools::TextBuffer buffer(std::string(5, 'z'));  // storage to write over
  std::string expected;
  for (int i = 0; i < 500; ++i) {
    std::string piece(static_cast<std::size_t>(i % 300), static_cast<char>('a' + i % 26));
    buffer.append(piece);
    expected += piece;
    agent_tools::append_integer(buffer, -i);
    expected += std::to_string(-i);
  }
  CHECK(buffer.view() == expected);
  CHECK(buffer.take() == expected);
  CHECK(buffer.empty());
  agent_tools::TextBuffer after = agent_tools::TextBuffer::after("kept");
  after.push_back('!');
  CHECK(after.take() == "kept!");
}

TEST_CASE("IdMap agrees with std::map through inserts and erases that collide and wrap") {
  agent_tools::detail::IdMap<int> map;
  std::map<std::uint32_t, int> reference;
  std::mt19937 random(11);
  for (int step = 0; step < 200000; ++step) {
    // Few distinct keys, so runs form, wrap around the table and get shifted back on erase.
    std::uint32_t key = static_cast<std::uint32_t>(random() % 300) * 64;
    if (random() % 2 && !reference.count(key)) {
      map.insert(key, step);
      reference[key] = step;
    } else {
      map.erase(key);
      reference.erase(key);
    }
    if (step % 1000 == 0) {
      REQUIRE(map.size() == reference.size());
      for (std::uint32_t k = 0; k < 300 * 64; k += 64) {
        const int* found = map.find(k);
        auto it = reference.find(k);
        REQUIRE((found != nullptr) == (it != reference.end()));
        if (found) REQUIRE(*found == it->second);
      }
    }
  }
}

namespace {

// One acquire+release cycle against a scripted KV, as the driver runs it.
void lock_cycle(test::ScriptedHost& host, agent_tools::OpId op) {
  host.engine.set_clock(1.7e12);
  host.start(op, "kv.acquire", R"({"key":"run:u:t","userId":"u","threadId":"t","ttlSeconds":60,"processId":"p"})");
  std::vector<agent_tools::CallId> refills;  // the entropy pool's, every few dozen acquires
  for (auto& [id, e] : host.calls) {
    if (e["op"] == op && e["kind"] == "random") refills.push_back(id);
  }
  for (agent_tools::CallId id : refills) host.reply(id, std::string(512, 'a'));
  json call = host.call_of(op);
  host.reply(call["call"], 7);
  REQUIRE(host.done[op]["value"]["success"] == true);
  json owner = host.done[op]["value"]["owner"];
  host.start(op + 1, "kv.release", json{{"key", "run:u:t"}, {"owner", owner}}.dump());
  host.reply(host.call_of(op + 1)["call"], 1);
  REQUIRE(host.done[op + 1]["value"]["released"] == true);
}

}  // namespace

TEST_CASE("the frame pool reuses frames across lock cycles and keeps a bounded amount idle") {
  test::ScriptedHost host;
  agent_tools::OpId op = 1;
  lock_cycle(host, op);
  op += 2;
  std::size_t cached_after_one = host.engine.stats().cached_frame_bytes;
  CHECK(cached_after_one > 0);  // the frames went back to the pool, not to the heap
  for (int i = 0; i < 200; ++i, op += 2) lock_cycle(host, op);
  auto stats = host.engine.stats();
  CHECK(stats.live_frames == 0);
  CHECK(stats.live_operations == 0);
  CHECK(stats.cached_frame_bytes == cached_after_one);  // steady state: the same frames, reused

  // A burst of concurrent operations takes many frames at once; afterwards the pool keeps no
  // more than its cap (the rest goes back to the heap; ASan checks nothing leaks).
  for (agent_tools::OpId burst = 10000; burst < 12000; ++burst) {
    host.start(burst, "diag.echo", R"({"calls":[{"kind":"sleep","ms":1}],"tag":1})");
  }
  CHECK(host.engine.stats().live_frames >= 2000);
  std::vector<agent_tools::CallId> pending;
  for (auto& [id, e] : host.calls) pending.push_back(id);
  for (agent_tools::CallId id : pending) host.reply(id, nullptr);
  stats = host.engine.stats();
  CHECK(stats.live_frames == 0);
  CHECK(stats.cached_frame_bytes <= agent_tools::FramePool::kMaxCachedBytes);
}
