#include "agent_tools/kv.hpp"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <vector>

namespace agent_tools::kv {

namespace {

using Strings = std::vector<std::string>;

// Builds a command outside any coroutine body: g++ 12 miscompiles braced lists of strings used
// directly as arguments inside coroutines ("array used as initializer").
template <class... Parts>
Strings strings(Parts&&... parts) {
  Strings out;
  out.reserve(sizeof...(parts));
  (out.emplace_back(std::forward<Parts>(parts)), ...);
  return out;
}

// --- input checking --------------------------------------------------------------------------

const json& field(const json& object, std::string_view name) {
  static const json missing;
  auto it = object.find(name);
  return it == object.end() ? missing : *it;
}

std::string required_string(const json& input, const char* name) {
  const json& value = field(input, name);
  if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
    throw Error(ErrorCode::invalid_argument, std::string(name) + " must be a non-empty string");
  }
  return value.get<std::string>();
}

// A whole number of milliseconds in (0, 2^53), given as a JSON number.
std::int64_t positive_ms(const json& value, const char* name) {
  if (!value.is_number() || !std::isfinite(value.get<double>())) {
    throw Error(ErrorCode::invalid_argument, std::string(name) + " must be a number of milliseconds");
  }
  double ms = value.get<double>();
  if (ms <= 0 || ms != std::floor(ms) || ms > 9007199254740991.0) {
    throw Error(ErrorCode::invalid_argument, std::string(name) + " must be a positive whole number of milliseconds");
  }
  return static_cast<std::int64_t>(ms);
}

bool basic_mode(const json& input) {
  const json& mode = field(input, "mode");
  if (mode.is_null() || mode == "script") return false;
  if (mode == "basic") return true;
  throw Error(ErrorCode::invalid_argument, "mode must be \"script\" or \"basic\"");
}

// The original package's validation message: "KV lock validation failed: <json of mapped errors>",
// each error {field, message, code, severity} worded as zod words it.
json id_issue(const json& value, const char* name) {
  auto issue = [&](const char* message, const char* code) {
    return json{{"field", name}, {"message", message}, {"code", code}, {"severity", "error"}};
  };
  if (value.is_null()) return issue("Required", "invalid_type");
  if (!value.is_string()) {
    std::string message = std::string("Expected string, received ") +
                          (value.is_number() ? "number" : value.is_boolean() ? "boolean" : value.is_array() ? "array" : "object");
    return issue(message.c_str(), "invalid_type");
  }
  if (value.get_ref<const std::string&>().empty()) {
    return issue("String must contain at least 1 character(s)", "too_small");
  }
  return nullptr;
}

std::int64_t validated_ttl_ms(const json& input, json& issues) {
  const json& seconds = field(input, "ttlSeconds");
  auto issue = [&](const char* message, const char* code) {
    issues.push_back({{"field", "ttl"}, {"message", message}, {"code", code}, {"severity", "error"}});
  };
  if (!seconds.is_number()) {
    issue("Expected number, received nan", "invalid_type");
    return 0;
  }
  double ms = seconds.get<double>() * 1000.0;
  if (!std::isfinite(ms) || ms != std::floor(ms)) {
    issue("Expected integer, received float", "invalid_type");
    return 0;
  }
  if (ms <= 0) {
    issue("Number must be greater than 0", "too_small");
    return 0;
  }
  if (ms > 9007199254740991.0) {
    issue("Number must be less than or equal to 9007199254740991", "too_big");
    return 0;
  }
  return static_cast<std::int64_t>(ms);
}

// --- replies -----------------------------------------------------------------------------------

bool is_error_reply(const json& reply) { return reply.is_object() && reply.contains("error"); }

std::string error_text(const json& reply) {
  const json& e = reply["error"];
  return e.is_string() ? e.get<std::string>() : dump_json(e);
}

[[noreturn]] void bad_reply(std::string_view what, const json& reply) {
  std::string shown = dump_json(reply);
  if (shown.size() > 200) shown = shown.substr(0, 200) + "...";
  throw Error(ErrorCode::host_bad_reply, "unexpected KV reply to " + std::string(what) + ": " + shown);
}

// Integers may arrive as numbers or (from some clients) as decimal strings.
std::int64_t integer_reply(const json& reply, std::string_view what) {
  if (reply.is_number_integer()) return reply.get<std::int64_t>();
  if (reply.is_number_float() && reply.get<double>() == std::floor(reply.get<double>())) {
    return static_cast<std::int64_t>(reply.get<double>());
  }
  if (reply.is_string()) {
    const auto& text = reply.get_ref<const std::string&>();
    char* end = nullptr;
    long long value = std::strtoll(text.c_str(), &end, 10);
    if (!text.empty() && end == text.c_str() + text.size()) return value;
  }
  bad_reply(what, reply);
}

json optional_integer(const json& reply, std::string_view what) {
  return reply.is_null() ? json(nullptr) : json(integer_reply(reply, what));
}

// checkKvLock's reading of a stored value: nothing or empty -> null; JSON text -> the parsed value;
// any other text -> {lockedAt: 'invalid data'}.
json stored_metadata(const json& value) {
  if (value.is_null()) return nullptr;
  if (!value.is_string()) return value;
  const auto& text = value.get_ref<const std::string&>();
  if (text.empty()) return nullptr;
  try {
    return parse_json(text, ErrorCode::invalid_argument, "lock value");
  } catch (const Error&) {
    return json{{"lockedAt", "invalid data"}};
  }
}

// --- KV round trips ------------------------------------------------------------------------------

// One script call: EVALSHA, and EVAL only when the server does not know the script yet.
Task<json> run_script(OpContext& ctx, KvScript script, Strings keys, Strings args) {
  Strings command{"EVALSHA", std::string(script.sha1), std::to_string(keys.size())};
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  json reply = co_await ctx.kv(command);
  if (is_error_reply(reply) && error_text(reply).rfind("NOSCRIPT", 0) == 0) {
    command[0] = "EVAL";
    command[1] = std::string(script.lua);
    reply = co_await ctx.kv(std::move(command));
  }
  if (is_error_reply(reply)) {
    throw Error(ErrorCode::host_error, "KV error in " + std::string(script.name) + ": " + error_text(reply));
  }
  co_return reply;
}

Task<json> command(OpContext& ctx, Strings args) {
  std::string name = args.front();
  json reply = co_await ctx.kv(std::move(args));
  if (is_error_reply(reply)) throw Error(ErrorCode::host_error, "KV error in " + name + ": " + error_text(reply));
  co_return reply;
}

std::string fence_key(const std::string& key) { return key + ":fence"; }

// A uniform number in [0, 1) from the host's randomness (for backoff jitter).
Task<double> uniform(OpContext& ctx) {
  std::string hex = co_await ctx.random_hex(4);
  co_return static_cast<double>(std::stoul(hex, nullptr, 16)) / 4294967296.0;
}

// --- lock values ---------------------------------------------------------------------------------

std::string json_text(const std::string& text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

// Our lock value. lockId comes first so a holder can be recognised by prefix after extends have
// rewritten expiresAt.
std::string lock_value(const std::string& lock_id, const std::string& locked_at, const std::string& process_id,
                       const std::string& expires_at) {
  return "{\"lockId\":" + json_text(lock_id) + ",\"lockedAt\":" + json_text(locked_at) +
         ",\"processId\":" + json_text(process_id) + ",\"expiresAt\":" + json_text(expires_at) + "}";
}

std::string owner_prefix(const std::string& lock_id) { return "{\"lockId\":" + json_text(lock_id) + ","; }

// How a holder proves ownership: {expect, match: "prefix"|"exact", value}.
struct Owner {
  std::string expect;
  bool prefix = false;
  std::string value;  // the value as last written by this holder
};

// Either the owner object acquire returned, or {lockId} alone (e.g. from another instance).
Owner read_owner(const json& input) {
  const json& owner = field(input, "owner");
  if (!owner.is_object()) throw Error(ErrorCode::invalid_argument, "owner must be the object acquire returned");
  Owner result;
  if (owner.contains("lockId") && !owner.contains("expect")) {
    std::string lock_id = required_string(owner, "lockId");
    result.expect = owner_prefix(lock_id);
    result.prefix = true;
    result.value = "{\"lockId\":" + json_text(lock_id) + "}";  // enough to renew: other fields unknown
    return result;
  }
  result.expect = required_string(owner, "expect");
  const json& match = field(owner, "match");
  if (match != "prefix" && match != "exact") throw Error(ErrorCode::invalid_argument, "owner.match must be \"prefix\" or \"exact\"");
  result.prefix = match == "prefix";
  const json& value = field(owner, "value");
  result.value = value.is_string() ? value.get<std::string>() : result.expect;
  return result;
}

json owner_json(const Owner& owner) {
  return {{"expect", owner.expect}, {"match", owner.prefix ? "prefix" : "exact"}, {"value", owner.value}};
}

bool owns(const Owner& owner, const json& stored) {
  if (!stored.is_string()) return false;
  const auto& text = stored.get_ref<const std::string&>();
  return owner.prefix ? text.rfind(owner.expect, 0) == 0 : text == owner.expect;
}

// The holder's value with expiresAt moved, for our own format; a caller's value stays as it is.
std::string renewed_value(const Owner& owner, double expires_at) {
  if (!owner.prefix) return owner.value;
  json parsed = parse_json(owner.value, ErrorCode::invalid_argument, "owner.value");
  if (!parsed.is_object()) throw Error(ErrorCode::invalid_argument, "owner.value is not a lock value");
  return lock_value(parsed.value("lockId", ""), parsed.value("lockedAt", ""), parsed.value("processId", ""),
                    iso8601(expires_at));
}

const char* state_name(std::int64_t code) { return code == 1 ? "ok" : code == 0 ? "missing" : "not-owner"; }

}  // namespace

std::string glob_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// --- operations ------------------------------------------------------------------------------------

namespace {

struct Attempt {
  bool acquired = false;
  json fence;              // number, or null for stores without scripts
  json holder;             // the holder's stored value when not acquired
  json remaining_ms;       // the holder's PTTL when known
};

Task<Attempt> try_acquire(OpContext& ctx, bool basic, std::string key, std::string value, std::int64_t ttl_ms) {
  Attempt attempt;
  if (basic) {
    json set = co_await command(ctx, strings("SET", key, value, "NX", "PX", std::to_string(ttl_ms)));
    if (set == "OK") {
      attempt.acquired = true;
    } else if (set.is_null()) {
      attempt.holder = co_await command(ctx, strings("GET", key));
      attempt.acquired = attempt.holder == value;  // our own earlier write, replayed by a retry
    } else {
      bad_reply("SET NX", set);
    }
    co_return attempt;
  }
  json reply = co_await run_script(ctx, kv_scripts::acquire, strings(key, fence_key(key)), strings(value, std::to_string(ttl_ms)));
  if (!reply.is_array() || reply.empty()) bad_reply("acquire", reply);
  std::int64_t status = integer_reply(reply[0], "acquire");
  if (status == 1 && reply.size() == 2) {
    attempt.acquired = true;
    attempt.fence = integer_reply(reply[1], "acquire");
  } else if (status == 0 && reply.size() == 3) {
    if (reply[1] == value) {
      // Our own value: a transport retry ran the script twice and the first run took the lock.
      // Its fence is the counter's current value (no one else can mint while we hold the lock).
      attempt.acquired = true;
      attempt.fence = integer_reply(co_await command(ctx, strings("GET", fence_key(key))), "GET fence");
      co_return attempt;
    }
    attempt.holder = reply[1];
    std::int64_t pttl = integer_reply(reply[2], "acquire");
    attempt.remaining_ms = pttl >= 0 ? json(pttl) : json(nullptr);
  } else {
    bad_reply("acquire", reply);
  }
  co_return attempt;
}

}  // namespace

Task<json> acquire(OpContext& ctx, json input) {
  if (!input.is_object()) throw Error(ErrorCode::invalid_argument, "acquire needs an object input");
  // The original's validation, in its order and words (ids: any non-empty string here).
  json issues = json::array();
  for (const char* name : {"userId", "threadId"}) {
    json issue = id_issue(field(input, name), name);
    if (!issue.is_null()) issues.push_back(std::move(issue));
  }
  std::int64_t ttl_ms = validated_ttl_ms(input, issues);
  if (!issues.empty()) {
    throw Error(ErrorCode::validation_failed, "KV lock validation failed: " + dump_json(issues), issues);
  }
  std::string key = required_string(input, "key");
  bool basic = basic_mode(input);
  std::string user_id = input["userId"].get<std::string>();
  std::string thread_id = input["threadId"].get<std::string>();
  const json& process = field(input, "processId");
  std::string process_id = process.is_string() ? process.get<std::string>() : "";
  const json& custom = field(input, "valueText");  // caller metadata, stored verbatim
  if (!custom.is_null() && !custom.is_string()) throw Error(ErrorCode::invalid_argument, "valueText must be a string");

  // Optional waiting: exponential backoff with full jitter until the deadline.
  const json& wait = field(input, "wait");
  std::int64_t wait_ms = 0, base_ms = 50, max_ms = 1000;
  if (!wait.is_null()) {
    wait_ms = positive_ms(field(wait, "timeoutMs"), "wait.timeoutMs");
    if (!field(wait, "baseMs").is_null()) base_ms = positive_ms(field(wait, "baseMs"), "wait.baseMs");
    if (!field(wait, "maxMs").is_null()) max_ms = positive_ms(field(wait, "maxMs"), "wait.maxMs");
  }

  std::string token = co_await ctx.random_hex(8);
  double started = co_await ctx.now();
  double deadline = started + static_cast<double>(wait_ms);
  for (int attempts = 1;; ++attempts) {
    double now = attempts == 1 ? started : co_await ctx.now();
    auto now_ms = static_cast<std::int64_t>(now);
    std::string lock_id = user_id + "-" + thread_id + "-" + std::to_string(now_ms) + "-" + token;
    double expires_at = now + static_cast<double>(ttl_ms);
    Owner owner;
    if (custom.is_string()) {
      owner.value = owner.expect = custom.get<std::string>();
    } else {
      owner.value = lock_value(lock_id, iso8601(now), process_id, iso8601(expires_at));
      owner.expect = owner_prefix(lock_id);
      owner.prefix = true;
    }
    Attempt attempt = co_await try_acquire(ctx, basic, key, owner.value, ttl_ms);
    if (attempt.acquired) {
      co_return json{{"success", true},     {"lockKey", key},       {"lockId", lock_id},
                     {"fence", attempt.fence}, {"owner", owner_json(owner)}, {"acquiredAt", now_ms},
                     {"expiresAt", static_cast<std::int64_t>(expires_at)}, {"ttlMs", ttl_ms}, {"attempts", attempts}};
    }
    double after = co_await ctx.now();
    if (after >= deadline) {
      json held = stored_metadata(attempt.holder);
      // The original reports a falsy holder (gone between SET and GET) as {lockedAt: 'unknown'}.
      if (held.is_null()) held = json{{"lockedAt", "unknown"}};
      co_return json{{"success", false}, {"lockKey", key}, {"activeLockMetadata", held},
                     {"remainingMs", attempt.remaining_ms}, {"attempts", attempts}};
    }
    double cap = std::min(static_cast<double>(max_ms), static_cast<double>(base_ms) * std::pow(2.0, std::min(attempts - 1, 30)));
    double delay = std::min(cap * co_await uniform(ctx), deadline - after);
    co_await ctx.sleep(static_cast<std::uint32_t>(std::max(1.0, std::ceil(delay))));
  }
}

namespace {

// Release or extend, owner-checked: 1 done, 0 no lock, -1 someone else's lock.
Task<std::int64_t> owner_checked(OpContext& ctx, bool basic, std::string key, Owner owner, bool release,
                                 std::int64_t ttl_ms, std::string new_value) {
  if (basic) {
    // Check-then-act: a store without scripts cannot make this atomic (documented limitation).
    json stored = co_await command(ctx, strings("GET", key));
    if (stored.is_null()) co_return 0;
    if (!owns(owner, stored)) co_return -1;
    if (release) {
      co_await command(ctx, strings("DEL", key));
    } else {
      co_await command(ctx, strings("SET", key, new_value, "PX", std::to_string(ttl_ms)));
    }
    co_return 1;
  }
  std::string match = owner.prefix ? "prefix" : "exact";
  json reply = release
                   ? co_await run_script(ctx, kv_scripts::release, strings(key, fence_key(key)), strings(owner.expect, match))
                   : co_await run_script(ctx, kv_scripts::extend, strings(key, fence_key(key)),
                                         strings(owner.expect, match, std::to_string(ttl_ms), new_value));
  std::int64_t status = integer_reply(reply, release ? "release" : "extend");
  if (status < -1 || status > 1) bad_reply(release ? "release" : "extend", reply);
  co_return status;
}

}  // namespace

Task<json> release(OpContext& ctx, json input) {
  std::string key = required_string(input, "key");
  bool basic = basic_mode(input);
  Owner owner = read_owner(input);
  std::int64_t status = co_await owner_checked(ctx, basic, key, owner, true, 0, "");
  co_return json{{"released", status == 1}, {"state", state_name(status)}};
}

Task<json> extend(OpContext& ctx, json input) {
  std::string key = required_string(input, "key");
  bool basic = basic_mode(input);
  Owner owner = read_owner(input);
  std::int64_t ttl_ms = positive_ms(field(input, "ttlMs"), "ttlMs");
  double now = co_await ctx.now();
  double expires_at = now + static_cast<double>(ttl_ms);
  std::string value = renewed_value(owner, expires_at);
  std::int64_t status = co_await owner_checked(ctx, basic, key, owner, false, ttl_ms, value);
  if (status == 1) owner.value = value;
  co_return json{{"extended", status == 1}, {"state", state_name(status)},
                 {"expiresAt", status == 1 ? json(static_cast<std::int64_t>(expires_at)) : json(nullptr)},
                 {"owner", owner_json(owner)}};
}

Task<json> inspect(OpContext& ctx, json input) {
  std::string key = required_string(input, "key");
  json value, remaining = nullptr, fence = nullptr;
  if (basic_mode(input)) {
    value = co_await command(ctx, strings("GET", key));
  } else {
    json reply = co_await run_script(ctx, kv_scripts::inspect, strings(key, fence_key(key)), strings());
    if (!reply.is_array() || reply.size() != 3) bad_reply("inspect", reply);
    value = reply[0];
    std::int64_t pttl = integer_reply(reply[1], "inspect");
    if (pttl >= 0) remaining = pttl;
    fence = optional_integer(reply[2], "inspect");
  }
  if (!value.is_null() && !value.is_string()) bad_reply("inspect", value);
  json metadata = stored_metadata(value);
  co_return json{{"lockKey", key}, {"held", !value.is_null()}, {"metadata", metadata},
                 {"remainingMs", value.is_null() ? json(nullptr) : remaining}, {"fence", fence}};
}

Task<json> list(OpContext& ctx, json input) {
  std::string prefix = required_string(input, "prefix");
  std::string pattern = glob_escape(prefix) + ":*";
  std::int64_t limit = field(input, "limit").is_null() ? 10000 : positive_ms(field(input, "limit"), "limit");
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    json reply = co_await command(ctx, strings("SCAN", cursor, "MATCH", pattern, "COUNT", "100"));
    if (!reply.is_array() || reply.size() != 2 || !reply[1].is_array()) bad_reply("SCAN", reply);
    cursor = reply[0].is_string() ? reply[0].get<std::string>() : std::to_string(integer_reply(reply[0], "SCAN"));
    for (const json& key : reply[1]) {
      if (!key.is_string()) bad_reply("SCAN", reply);
      // A lock key is <prefix>:<user>:<thread> with ':' escaped inside ids; skip fence counters.
      std::string_view rest(key.get_ref<const std::string&>());
      rest.remove_prefix(prefix.size() + 1);
      if (std::count(rest.begin(), rest.end(), ':') == 1) keys.push_back(key.get<std::string>());
    }
  } while (cursor != "0" && static_cast<std::int64_t>(keys.size()) < limit);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  if (static_cast<std::int64_t>(keys.size()) > limit) keys.resize(static_cast<std::size_t>(limit));
  co_return json{{"keys", keys}, {"complete", cursor == "0"}};
}

Task<json> hold(OpContext& ctx, json input) {
  std::string key = required_string(input, "key");
  bool basic = basic_mode(input);
  Owner owner = read_owner(input);
  std::int64_t ttl_ms = positive_ms(field(input, "ttlMs"), "ttlMs");
  std::int64_t every_ms = field(input, "renewEveryMs").is_null() ? std::max<std::int64_t>(1, ttl_ms / 3)
                                                                 : positive_ms(field(input, "renewEveryMs"), "renewEveryMs");
  std::int64_t cap_ms = positive_ms(field(input, "maxHoldMs"), "maxHoldMs");
  double started = co_await ctx.now();
  double expires_at = started + static_cast<double>(ttl_ms);  // as far as this holder knows
  std::uint64_t renewals = 0;
  for (;;) {
    co_await ctx.sleep(static_cast<std::uint32_t>(std::min<std::int64_t>(every_ms, 0x7fffffff)));
    double now = co_await ctx.now();
    double cap_at = started + static_cast<double>(cap_ms);
    if (now >= expires_at || now >= cap_at) {
      throw Error(ErrorCode::lock_lost, now >= cap_at ? "lock hold time cap reached" : "lock expired before it could be renewed",
                  json{{"lockKey", key}, {"renewals", renewals}});
    }
    // Never renew past the cap: the last renewal ends exactly at it.
    auto next_ttl = static_cast<std::int64_t>(std::min(static_cast<double>(ttl_ms), cap_at - now));
    if (next_ttl <= 0) continue;
    std::int64_t status = 0;
    std::string value = renewed_value(owner, now + static_cast<double>(next_ttl));
    try {
      status = co_await owner_checked(ctx, basic, key, owner, false, next_ttl, value);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::cancelled) throw;
      continue;  // transient KV failure: try again next round while the lock may still be ours
    }
    if (status != 1) {
      throw Error(ErrorCode::lock_lost, status == 0 ? "lock expired" : "lock taken over by another holder",
                  json{{"lockKey", key}, {"renewals", renewals}, {"state", state_name(status)}});
    }
    owner.value = value;
    expires_at = now + static_cast<double>(next_ttl);
    ++renewals;
  }
}

}  // namespace agent_tools::kv
