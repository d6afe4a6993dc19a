#include "agent_tools/kv.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <vector>

#include "agent_tools/json_text.hpp"

namespace agent_tools::kv {

namespace {

// --- input checking --------------------------------------------------------------------------

// The inputs are read in place (FieldViews): the operation owns its input text, and the lock
// operations' fields are views into it for as long as the operation runs.
// {"argsJson": true}: the store wants each command as one JSON text (OpContext::send_kv_json).
FieldViews read_input(OpContext& ctx, std::string& text, std::string_view what) {
  FieldViews input = FieldViews::parse(text, ErrorCode::invalid_argument, what);
  const FieldView& json = input["argsJson"];
  ctx.send_kv_json(json.kind == JsonKind::boolean && json.boolean);
  return input;
}

std::string_view required_string(const FieldView& value, const char* name) {
  if (!value.is_string() || value.text.empty()) {
    throw Error(ErrorCode::invalid_argument, std::string(name) + " must be a non-empty string");
  }
  return value.text;
}

// A whole number of milliseconds in (0, 2^53), given as a JSON number.
std::int64_t positive_ms(const FieldView& value, const char* name) {
  if (value.kind != JsonKind::number || !std::isfinite(value.number)) {
    throw Error(ErrorCode::invalid_argument, std::string(name) + " must be a number of milliseconds");
  }
  double ms = value.number;
  if (ms <= 0 || ms != std::floor(ms) || ms > 9007199254740991.0) {
    throw Error(ErrorCode::invalid_argument, std::string(name) + " must be a positive whole number of milliseconds");
  }
  return static_cast<std::int64_t>(ms);
}

// {"compact": true}: the API shim's results, which its JSON.parse reads faster (see acquire and
// release). Engine users who run the operations themselves get the documented objects.
bool compact_result(const FieldViews& input) {
  const FieldView& compact = input["compact"];
  return compact.kind == JsonKind::boolean && compact.boolean;
}

bool basic_mode(const FieldViews& input) {
  const FieldView& mode = input["mode"];
  if (mode.is_null() || (mode.is_string() && mode.text == "script")) return false;
  if (mode.is_string() && mode.text == "basic") return true;
  throw Error(ErrorCode::invalid_argument, "mode must be \"script\" or \"basic\"");
}

// The original package's validation message: "KV lock validation failed: <json of mapped errors>",
// each error {field, message, code, severity} worded as zod words it.
json id_issue(const FieldView& value, const char* name) {
  auto issue = [&](const std::string& message, const char* code) {
    return json{{"field", name}, {"message", message}, {"code", code}, {"severity", "error"}};
  };
  if (value.is_null()) return issue("Required", "invalid_type");
  if (!value.is_string()) return issue(std::string("Expected string, received ") + kind_name(value.kind), "invalid_type");
  if (value.text.empty()) return issue("String must contain at least 1 character(s)", "too_small");
  return nullptr;
}

std::int64_t validated_ttl_ms(const FieldView& seconds, json& issues) {
  auto issue = [&](const char* message, const char* code) {
    issues.push_back({{"field", "ttl"}, {"message", message}, {"code", code}, {"severity", "error"}});
  };
  if (seconds.kind != JsonKind::number) {
    issue("Expected number, received nan", "invalid_type");
    return 0;
  }
  double ms = seconds.number * 1000.0;
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

// A KV reply as the host encodes it: null, integer, string, array, or {"error": text}. Read
// straight from the reply text; `raw` (top level only) is kept for error messages.
struct Reply {
  enum class Type : std::uint8_t { null, integer, number, string, array, error, other };
  Type type = Type::null;
  std::int64_t integer = 0;
  double number = 0;         // a non-integer (or out of range) number
  std::string text;          // string value or error text
  std::vector<Reply> items;  // array elements
  std::string raw;

  bool is_null() const noexcept { return type == Type::null; }
  bool is_string(std::string_view value) const noexcept { return type == Type::string && text == value; }
};

Reply read_reply(JsonReader& reader) {
  Reply reply;
  switch (reader.peek()) {
    case JsonKind::null:
      reader.read_null();
      break;
    case JsonKind::boolean:
      reader.read_bool();
      reply.type = Reply::Type::other;
      break;
    case JsonKind::number: {
      std::string_view digits = reader.read_number_text();
      long long value = 0;
      bool whole = digits.find_first_of(".eE") == std::string_view::npos && digits.size() <= 18;
      if (whole) {
        std::string copy(digits);
        value = std::strtoll(copy.c_str(), nullptr, 10);
        reply.type = Reply::Type::integer;
        reply.integer = value;
      } else {
        reply.type = Reply::Type::number;
        reply.number = number_value(digits);
      }
      break;
    }
    case JsonKind::string:
      reply.type = Reply::Type::string;
      reply.text = reader.read_string();
      break;
    case JsonKind::array:
      reply.type = Reply::Type::array;
      reader.begin_array();
      while (reader.element()) reply.items.push_back(read_reply(reader));
      break;
    case JsonKind::object: {
      reply.type = Reply::Type::other;
      reader.begin_object();
      std::string name;
      while (reader.member(name)) {
        if (name == "error" && reply.type != Reply::Type::error) {
          reply.type = Reply::Type::error;
          reply.text = reader.peek() == JsonKind::string ? reader.read_string() : std::string(reader.skip());
        } else {
          reader.skip();
        }
      }
      break;
    }
  }
  return reply;
}

Reply parse_reply(std::string reply_text) {
  JsonReader reader(reply_text, ErrorCode::host_bad_reply, "KV reply");
  Reply reply = read_reply(reader);
  reader.finish();
  reply.raw = std::move(reply_text);
  return reply;
}

[[noreturn]] void bad_reply(std::string_view what, std::string_view raw) {
  std::string shown(raw.substr(0, 200));
  if (raw.size() > 200) shown += "...";
  throw Error(ErrorCode::host_bad_reply, "unexpected KV reply to " + std::string(what) + ": " + shown);
}

// Integers may arrive as numbers or (from some clients) as decimal strings.
std::int64_t integer_reply(const Reply& reply, std::string_view what, std::string_view raw) {
  switch (reply.type) {
    case Reply::Type::integer: return reply.integer;
    case Reply::Type::number:
      if (std::isfinite(reply.number) && reply.number == std::floor(reply.number) && std::fabs(reply.number) < 9.2e18) {
        return static_cast<std::int64_t>(reply.number);
      }
      break;
    case Reply::Type::string: {
      char* end = nullptr;
      long long value = std::strtoll(reply.text.c_str(), &end, 10);
      if (!reply.text.empty() && end == reply.text.c_str() + reply.text.size()) return value;
      break;
    }
    default: break;
  }
  bad_reply(what, raw);
}

// checkKvLock's reading of a stored value: nothing or empty -> null; JSON text -> that value;
// any other text -> {lockedAt: 'invalid data'}.
void write_stored_metadata(JsonWriter& out, const Reply& value, std::string_view what, std::string_view raw) {
  if (value.is_null()) {
    out.null();
    return;
  }
  if (value.type != Reply::Type::string) bad_reply(what, raw);
  if (value.text.empty()) {
    out.null();
    return;
  }
  try {
    JsonReader reader(value.text, ErrorCode::invalid_argument, "lock value");
    reader.skip();
    reader.finish();
  } catch (const Error&) {
    out.begin_object().key("lockedAt").string("invalid data").end_object();
    return;
  }
  out.raw(value.text);
}

// The scripts' success replies, integers, are read without building a Reply. Anything else
// (false) takes the general path, parse_reply, which also reports malformed text exactly as it
// always has.

// A plain integer (what read_reply reads as Reply::Type::integer).
bool read_plain_integer(JsonReader& reader, std::int64_t& value) {
  if (reader.peek() != JsonKind::number) return false;
  std::string_view digits = reader.read_number_text();
  if (digits.size() > 18 || digits.find_first_of(".eE") != std::string_view::npos) return false;
  bool negative = digits[0] == '-';
  value = 0;
  for (char c : digits.substr(negative ? 1 : 0)) value = value * 10 + (c - '0');
  if (negative) value = -value;
  return true;
}

bool integer_reply_text(std::string_view text, std::int64_t& value) {
  JsonReader reader(text, ErrorCode::host_bad_reply, "KV reply");
  if (!read_plain_integer(reader, value)) return false;
  reader.finish();
  return true;
}

// A reply that may be a KV error: an object. (Successful replies are scalars or arrays.)
bool may_be_error(std::string_view text) {
  std::size_t at = text.find_first_not_of(" \t\r\n");
  return at != std::string_view::npos && text[at] == '{';
}

// --- KV round trips ------------------------------------------------------------------------------

// EVALSHA <sha> <number of keys>, for the keys and args to follow.
KvCommand script_command(KvScript script, std::int64_t keys) {
  KvCommand command;
  command.add("EVALSHA").add(script.sha1).add(keys);
  return command;
}

// One script call: EVALSHA, and EVAL only when the server does not know the script yet. Returns
// the reply text; a KV error reply fails with HOST_ERROR.
// The rest of run_script when the first reply `text` may be a KV error (see may_be_error).
Task<std::string> script_error_reply(OpContext& ctx, KvScript script, KvCommand& command, std::string text) {
  Reply reply = parse_reply(std::move(text));
  if (reply.type == Reply::Type::error && reply.text.rfind("NOSCRIPT", 0) == 0) {
    command.replace(0, "EVAL");
    command.replace(1, script.lua);
    reply = parse_reply(co_await ctx.kv(command));
  }
  if (reply.type == Reply::Type::error) {
    throw Error(ErrorCode::host_error, "KV error in " + std::string(script.name) + ": " + reply.text);
  }
  co_return std::move(reply.raw);
}

// The lock cycle's operations await ctx.kv themselves and call script_error_reply only for an
// object reply: each coroutine layer between an operation and its host call costs a frame and a
// resumption per call.
Task<std::string> run_script(OpContext& ctx, KvScript script, KvCommand& command) {
  std::string text = co_await ctx.kv(command);
  if (!may_be_error(text)) co_return text;
  co_return co_await script_error_reply(ctx, script, command, std::move(text));
}

// A plain command (stores without scripts, SCAN). `command`'s views must outlive the call.
Task<Reply> command(OpContext& ctx, KvCommand kv_command) {
  Reply reply = parse_reply(co_await ctx.kv(kv_command));
  if (reply.type == Reply::Type::error) {
    throw Error(ErrorCode::host_error, "KV error in " + std::string(kv_command.name()) + ": " + reply.text);
  }
  co_return reply;
}

constexpr std::string_view kFenceSuffix = ":fence";

// A uniform number in [0, 1) from the host's randomness (for backoff jitter).
Task<double> uniform(OpContext& ctx) {
  std::string hex = co_await ctx.random_hex(4);
  co_return static_cast<double>(std::stoul(hex, nullptr, 16)) / 4294967296.0;
}

// --- lock values ---------------------------------------------------------------------------------

// Our lock value, written into `out` (replacing its text, keeping its capacity). lockId comes
// first so a holder can be recognised by prefix after extends have rewritten expiresAt.
void lock_value_into(std::string& out, std::string_view lock_id, std::string_view locked_at, std::string_view process_id,
                      double expires_at) {
  // Written piece by piece (what JsonWriter would write, without its bookkeeping): once per
  // acquire and renewal. The date texts need no escaping.
  char expires[kIso8601MaxLength];
  TextBuffer value(std::move(out));
  value.append(R"({"lockId":)");
  write_json_string(value, lock_id);
  value.append(R"(,"lockedAt":)");
  write_json_string(value, locked_at);
  value.append(R"(,"processId":)");
  write_json_string(value, process_id);
  value.append(R"(,"expiresAt":")");
  value.append(std::string_view(expires, write_iso8601(expires_at, expires)));
  value.append(R"("})");
  out = value.take();
}


// How a holder proves ownership. Our own values are recognised by their prefix (lockId comes
// first, and extends rewrite expiresAt), so the holder carries just the fields to rebuild them:
// {lockId, lockedAt, processId}; a caller's own value must match exactly: {expect, value}. The
// fields are views (into the operation's input, or text it keeps).
struct Owner {
  bool prefix = false;
  std::string_view expect;  // exact: the stored value
  std::string_view lock_id, locked_at, process_id;

  // What a stored value must be (exact) or start with (prefix), written into `out` (replacing
  // its text).
  void expected_into(std::string& out) const {
    if (prefix) {
      TextBuffer text(std::move(out));  // (std::string's assign and += are calls in wasm)
      text.append(R"({"lockId":)");
      write_json_string(text, lock_id);
      text.push_back(',');
      out = text.take();
    } else {
      out.assign(expect);
    }
  }
  // The value to write when renewing until `expires_at`, written into `out` (ditto).
  void value_into(std::string& out, double expires_at) const {
    if (prefix) {
      lock_value_into(out, lock_id, locked_at, process_id, expires_at);
    } else {
      out.assign(expect);
    }
  }
};

// The owner acquire (or extend) returned, or {lockId} alone (e.g. from another instance).
Owner read_owner(const FieldViews& input) {
  const FieldView& field = input["owner"];
  if (field.kind != JsonKind::object) throw Error(ErrorCode::invalid_argument, "owner must be the object acquire returned");
  FieldViews fields = input.object(field, ErrorCode::invalid_argument, "owner");
  Owner owner;
  if (fields.find("expect")) {
    owner.expect = required_string(fields["expect"], "owner.expect");
    return owner;
  }
  owner.prefix = true;
  owner.lock_id = required_string(fields["lockId"], "lockId");
  auto optional_text = [&](const char* name) -> std::string_view {
    const FieldView& value = fields[name];
    if (!value.is_null() && !value.is_string()) throw Error(ErrorCode::invalid_argument, std::string("owner.") + name + " must be a string");
    return value.text;
  };
  owner.locked_at = optional_text("lockedAt");
  owner.process_id = optional_text("processId");
  return owner;
}

void write_owner(JsonWriter& out, const Owner& owner) {
  out.begin_object();
  if (owner.prefix) {
    out.key("lockId").string(owner.lock_id).key("lockedAt").string(owner.locked_at).key("processId").string(owner.process_id);
  } else {
    out.key("expect").string(owner.expect);
  }
  out.end_object();
}

bool owns(const Owner& owner, const Reply& stored) {
  if (stored.type != Reply::Type::string) return false;
  std::string expected;
  owner.expected_into(expected);
  return owner.prefix ? stored.text.rfind(expected, 0) == 0 : stored.text == expected;
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
  std::optional<std::int64_t> fence;  // absent for stores without scripts
  Reply holder;                       // the holder's stored value when not acquired
  std::string holder_raw;             // the reply it came in, for error messages
  std::optional<std::int64_t> remaining_ms;  // the holder's PTTL when known
};

// One acquire attempt on a store without scripts: SET NX, and on refusal GET the holder.
Task<Attempt> set_nx_acquire(OpContext& ctx, std::string_view key, std::string_view value, std::int64_t ttl_ms) {
  Attempt attempt;
  Reply set = co_await command(ctx, KvCommand().add("SET").add(key).add(value).add("NX").add("PX").add(ttl_ms));
  if (set.is_string("OK")) {
    attempt.acquired = true;
  } else if (set.is_null()) {
    attempt.holder = co_await command(ctx, KvCommand().add("GET").add(key));
    attempt.holder_raw = attempt.holder.raw;
    attempt.acquired = attempt.holder.is_string(value);  // our own earlier write, replayed by a retry
  } else {
    bad_reply("SET NX", set.raw);
  }
  co_return attempt;
}

// The acquire script's reply text read into an Attempt, when it is not a plain integer (the
// fence, which acquire reads itself without this coroutine): the fence in another spelling, or
// [holder, pttl].
Task<Attempt> acquire_outcome(OpContext& ctx, std::string_view key, std::string_view value, std::string text) {
  Attempt attempt;
  Reply reply = parse_reply(std::move(text));
  if (reply.type != Reply::Type::array) {
    // The fence in a spelling the fast path leaves out (a decimal string, 5.0); else a bad reply.
    attempt.fence = integer_reply(reply, "acquire", reply.raw);
    attempt.acquired = true;
    co_return attempt;
  }
  if (reply.items.size() != 2) bad_reply("acquire", reply.raw);
  if (reply.items[0].is_string(value)) {
    // Our own value: a transport retry ran the script twice and the first run took the lock.
    // Its fence is the counter's current value (no one else can mint while we hold the lock).
    attempt.acquired = true;
    Reply current = co_await command(ctx, KvCommand().add("GET").add(key, kFenceSuffix));
    attempt.fence = integer_reply(current, "GET fence", current.raw);
    co_return attempt;
  }
  std::int64_t pttl = integer_reply(reply.items[1], "acquire", reply.raw);
  if (pttl >= 0) attempt.remaining_ms = pttl;
  attempt.holder = std::move(reply.items[0]);
  attempt.holder_raw = std::move(reply.raw);
  co_return attempt;
}

void optional_integer(JsonWriter& out, const std::optional<std::int64_t>& value) {
  if (value) out.integer(*value);
  else out.null();
}

}  // namespace

Task<std::string> acquire(OpContext& ctx, std::string input_text) {
  FieldViews input = read_input(ctx, input_text, "acquire input");
  // The original's validation, in its order and words (ids: any non-empty string here). `issues`
  // stays null (no allocation) unless something is wrong.
  json issues;
  for (const char* name : {"userId", "threadId"}) {
    json issue = id_issue(input[name], name);
    if (!issue.is_null()) issues.push_back(std::move(issue));
  }
  std::int64_t ttl_ms = validated_ttl_ms(input["ttlSeconds"], issues);
  if (!issues.empty()) {
    throw Error(ErrorCode::validation_failed, "KV lock validation failed: " + dump_json(issues), issues);
  }
  std::string_view key = required_string(input["key"], "key");
  bool basic = basic_mode(input);
  bool compact = compact_result(input);
  std::string_view user_id = input["userId"].text;
  std::string_view thread_id = input["threadId"].text;
  const FieldView& process = input["processId"];
  std::string_view process_id = process.is_string() ? process.text : std::string_view();
  const FieldView& custom = input["valueText"];  // caller metadata, stored verbatim
  if (!custom.is_null() && !custom.is_string()) throw Error(ErrorCode::invalid_argument, "valueText must be a string");

  // Optional waiting: exponential backoff with full jitter until the deadline.
  const FieldView& wait_field = input["wait"];
  std::int64_t wait_ms = 0, base_ms = 50, max_ms = 1000;
  if (!wait_field.is_null()) {
    if (wait_field.kind != JsonKind::object) throw Error(ErrorCode::invalid_argument, "wait must be an object");
    FieldViews wait = input.object(wait_field, ErrorCode::invalid_argument, "wait");
    wait_ms = positive_ms(wait["timeoutMs"], "wait.timeoutMs");
    if (!wait["baseMs"].is_null()) base_ms = positive_ms(wait["baseMs"], "wait.baseMs");
    if (!wait["maxMs"].is_null()) max_ms = positive_ms(wait["maxMs"], "wait.maxMs");
  }

  char token[16];  // 8 random bytes as hex, usually straight from the engine's pool
  if (!ctx.take_random_hex(8, token)) {
    std::string refilled = co_await ctx.random_hex(8);
    refilled.copy(token, sizeof token);
  }
  double started = co_await ctx.now();
  double deadline = started + static_cast<double>(wait_ms);
  // This attempt's lock id and value, in buffers reused by each attempt and given back to the
  // engine at the end.
  std::string lock_id = ctx.reusable_buffer();
  std::string value = ctx.reusable_buffer();
  for (int attempts = 1;; ++attempts) {
    double now = started;
    if (attempts > 1) now = co_await ctx.now();  // (no co_await inside ?: for g++ 12, see below)
    auto now_ms = static_cast<std::int64_t>(now);
    double expires_at = now + static_cast<double>(ttl_ms);
    char locked_at_text[kIso8601MaxLength];
    std::string_view locked_at(locked_at_text, write_iso8601(now, locked_at_text));
    {
      // <userId>-<threadId>-<ms>-<16 hex>, through a TextBuffer: each std::string append is an
      // out-of-line call in wasm (see TextBuffer).
      TextBuffer id(std::move(lock_id));
      id.append(user_id);
      id.push_back('-');
      id.append(thread_id);
      id.push_back('-');
      append_integer(id, now_ms);
      id.push_back('-');
      id.append(std::string_view(token, sizeof token));
      lock_id = id.take();
    }
    Owner owner;
    if (custom.is_string()) {
      owner.expect = custom.text;
    } else {
      owner.prefix = true;
      owner.lock_id = lock_id;
      owner.locked_at = locked_at;
      owner.process_id = process_id;
    }
    owner.value_into(value, expires_at);
    Attempt attempt;
    if (basic) {
      attempt = co_await set_nx_acquire(ctx, key, value, ttl_ms);
    } else {
      // run_script written out here: each coroutine layer costs a frame and a resumption.
      KvCommand script = script_command(kv_scripts::acquire, 2);
      script.add(key).add(key, kFenceSuffix).add(value).add(ttl_ms);
      std::string text = co_await ctx.kv(script);
      if (may_be_error(text)) text = co_await script_error_reply(ctx, kv_scripts::acquire, script, std::move(text));
      std::int64_t fence = 0;
      if (integer_reply_text(text, fence)) {
        attempt.acquired = true;  // the common case: the fence
        attempt.fence = fence;
      } else {
        attempt = co_await acquire_outcome(ctx, key, value, std::move(text));
      }
    }
    if (attempt.acquired) {
      // Only what the API shim uses: the driver pays JSON.parse per byte of it.
      JsonWriter out(ctx.reusable_buffer());
      if (compact && owner.prefix) {
        // [fence, lockId, lockedAt, expiresAt (ISO text, as the API returns it)]: the shim
        // rebuilds the owner from these and the processId it sent.
        char expires_text[kIso8601MaxLength];
        out.begin_array();
        optional_integer(out, attempt.fence);
        out.string(lock_id).string(locked_at).string(std::string_view(expires_text, write_iso8601(expires_at, expires_text)))
            .end_array();
        ctx.keep_buffer(std::move(lock_id));
        ctx.keep_buffer(std::move(value));
        ctx.keep_buffer(std::move(input_text));
        co_return out.take();
      }
      out.begin_object().key("success").boolean(true).key("lockId").string(lock_id).key("fence");
      optional_integer(out, attempt.fence);
      out.key("owner");
      write_owner(out, owner);
      out.key("expiresAt").integer(static_cast<std::int64_t>(expires_at)).end_object();
      ctx.keep_buffer(std::move(lock_id));
      ctx.keep_buffer(std::move(value));
      ctx.keep_buffer(std::move(input_text));  // read: the views into it are no longer used
      co_return out.take();
    }
    double after = co_await ctx.now();
    if (after >= deadline) {
      JsonWriter out;
      out.begin_object().key("success").boolean(false).key("lockKey").string(key).key("activeLockMetadata");
      // The original reports a falsy holder (gone between SET and GET) as {lockedAt: 'unknown'}.
      if (attempt.holder.is_null() || attempt.holder.is_string("")) {
        out.begin_object().key("lockedAt").string("unknown").end_object();
      } else {
        write_stored_metadata(out, attempt.holder, "acquire", attempt.holder_raw);
      }
      out.key("remainingMs");
      optional_integer(out, attempt.remaining_ms);
      out.key("attempts").integer(attempts).end_object();
      co_return out.take();
    }
    double cap = std::min(static_cast<double>(max_ms), static_cast<double>(base_ms) * std::pow(2.0, std::min(attempts - 1, 30)));
    double delay = std::min(cap * co_await uniform(ctx), deadline - after);
    co_await ctx.sleep(static_cast<std::uint32_t>(std::max(1.0, std::ceil(delay))));
  }
}

namespace {

// The release and extend scripts' reply: 1 done, 0 no lock, -1 someone else's lock.
std::int64_t script_status(std::string text, const char* what) {
  std::int64_t status = 0;
  if (!integer_reply_text(text, status) || status < -1 || status > 1) {
    Reply reply = parse_reply(std::move(text));
    status = integer_reply(reply, what, reply.raw);
    if (status < -1 || status > 1) bad_reply(what, reply.raw);
  }
  return status;
}

// The release or extend script's call: the lock key, what the holder's value must be or start
// with, extend's new TTL and value, and "exact" where the whole value must match (the scripts
// match a prefix otherwise).
KvCommand owner_script_call(const KvScript& script, std::string_view key, const Owner& owner, std::string_view expected,
                            bool renew = false, std::int64_t ttl_ms = 0, std::string_view new_value = {}) {
  KvCommand call = script_command(script, 1);
  call.add(key).add(expected);
  if (renew) call.add(ttl_ms).add(new_value);
  if (!owner.prefix) call.add("exact");
  return call;
}

// Release or extend, owner-checked: 1 done, 0 no lock, -1 someone else's lock. `expected` is what
// the stored value must be or start with (Owner::write_expected); `new_value` the value extend
// writes.
Task<std::int64_t> owner_checked(OpContext& ctx, bool basic, std::string_view key, const Owner& owner, bool release,
                                 std::int64_t ttl_ms, std::string_view expected, std::string_view new_value) {
  if (basic) {
    // Check-then-act: a store without scripts cannot make this atomic (documented limitation).
    Reply stored = co_await command(ctx, KvCommand().add("GET").add(key));
    if (stored.is_null()) co_return 0;
    if (!owns(owner, stored)) co_return -1;
    if (release) {
      co_await command(ctx, KvCommand().add("DEL").add(key));
    } else {
      co_await command(ctx, KvCommand().add("SET").add(key).add(new_value).add("PX").add(ttl_ms));
    }
    co_return 1;
  }
  const char* what = release ? "release" : "extend";
  const KvScript& script = release ? kv_scripts::release : kv_scripts::extend;
  KvCommand call = owner_script_call(script, key, owner, expected, !release, ttl_ms, new_value);
  co_return script_status(co_await run_script(ctx, script, call), what);
}

}  // namespace

Task<std::string> release(OpContext& ctx, std::string input_text) {
  FieldViews input = read_input(ctx, input_text, "release input");
  std::string_view key = required_string(input["key"], "key");
  bool basic = basic_mode(input);
  Owner owner = read_owner(input);
  bool compact = compact_result(input);
  std::string expected = ctx.reusable_buffer();
  owner.expected_into(expected);
  std::int64_t status = 0;
  if (basic) {
    status = co_await owner_checked(ctx, basic, key, owner, true, 0, expected, {});
  } else {
    // owner_checked's script path written out here (see run_script).
    KvCommand call = owner_script_call(kv_scripts::release, key, owner, expected);
    std::string text = co_await ctx.kv(call);
    if (may_be_error(text)) text = co_await script_error_reply(ctx, kv_scripts::release, call, std::move(text));
    status = script_status(std::move(text), "release");
  }
  JsonWriter out(std::move(expected));
  if (compact) {
    out.integer(status);  // 1 released, 0 no lock, -1 someone else's
  } else {
    out.begin_object().key("released").boolean(status == 1).key("state").string(state_name(status)).end_object();
  }
  ctx.keep_buffer(std::move(input_text));  // read: the views into it are no longer used
  co_return out.take();
}

Task<std::string> extend(OpContext& ctx, std::string input_text) {
  FieldViews input = read_input(ctx, input_text, "extend input");
  std::string_view key = required_string(input["key"], "key");
  bool basic = basic_mode(input);
  Owner owner = read_owner(input);
  std::int64_t ttl_ms = positive_ms(input["ttlMs"], "ttlMs");
  double now = co_await ctx.now();
  double expires_at = now + static_cast<double>(ttl_ms);
  std::string expected, value;
  owner.expected_into(expected);
  owner.value_into(value, expires_at);
  std::int64_t status = co_await owner_checked(ctx, basic, key, owner, false, ttl_ms, expected, value);
  JsonWriter out;
  out.begin_object().key("extended").boolean(status == 1).key("state").string(state_name(status)).key("expiresAt");
  if (status == 1) out.integer(static_cast<std::int64_t>(expires_at));
  else out.null();
  out.key("owner");
  write_owner(out, owner);
  out.end_object();
  co_return out.take();
}

Task<std::string> inspect(OpContext& ctx, std::string input_text) {
  FieldViews input = read_input(ctx, input_text, "inspect input");
  std::string_view key = required_string(input["key"], "key");
  Reply value;
  std::string raw;
  std::optional<std::int64_t> remaining, fence;
  if (basic_mode(input)) {
    value = co_await command(ctx, KvCommand().add("GET").add(key));
    raw = value.raw;
  } else {
    KvCommand script = script_command(kv_scripts::inspect, 2);
    script.add(key).add(key, kFenceSuffix);
    Reply reply = parse_reply(co_await run_script(ctx, kv_scripts::inspect, script));
    if (reply.type != Reply::Type::array || reply.items.size() != 3) bad_reply("inspect", reply.raw);
    std::int64_t pttl = integer_reply(reply.items[1], "inspect", reply.raw);
    if (pttl >= 0) remaining = pttl;
    if (!reply.items[2].is_null()) fence = integer_reply(reply.items[2], "inspect", reply.raw);
    value = std::move(reply.items[0]);
    raw = std::move(reply.raw);
  }
  if (!value.is_null() && value.type != Reply::Type::string) bad_reply("inspect", raw);
  JsonWriter out;
  out.begin_object().key("lockKey").string(key).key("held").boolean(!value.is_null()).key("metadata");
  write_stored_metadata(out, value, "inspect", raw);
  out.key("remainingMs");
  optional_integer(out, value.is_null() ? std::nullopt : remaining);
  out.key("fence");
  optional_integer(out, fence);
  out.end_object();
  co_return out.take();
}

Task<std::string> list(OpContext& ctx, std::string input_text) {
  FieldViews input = read_input(ctx, input_text, "list input");
  std::string_view prefix = required_string(input["prefix"], "prefix");
  std::string pattern = glob_escape(prefix) + ":*";
  std::int64_t limit = input["limit"].is_null() ? 10000 : positive_ms(input["limit"], "limit");
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    Reply reply = co_await command(ctx, KvCommand().add("SCAN").add(cursor).add("MATCH").add(pattern).add("COUNT").add("100"));
    if (reply.type != Reply::Type::array || reply.items.size() != 2 || reply.items[1].type != Reply::Type::array) {
      bad_reply("SCAN", reply.raw);
    }
    const Reply& next = reply.items[0];
    cursor = next.type == Reply::Type::string ? next.text : std::to_string(integer_reply(next, "SCAN", reply.raw));
    for (Reply& key : reply.items[1].items) {
      if (key.type != Reply::Type::string || key.text.size() <= prefix.size()) bad_reply("SCAN", reply.raw);
      // A lock key is <prefix>:<user>:<thread> with ':' escaped inside ids; skip fence counters.
      std::string_view rest(key.text);
      rest.remove_prefix(prefix.size() + 1);
      if (std::count(rest.begin(), rest.end(), ':') == 1) keys.push_back(std::move(key.text));
    }
  } while (cursor != "0" && static_cast<std::int64_t>(keys.size()) < limit);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  if (static_cast<std::int64_t>(keys.size()) > limit) keys.resize(static_cast<std::size_t>(limit));
  JsonWriter out;
  out.begin_object().key("keys").begin_array();
  for (const std::string& key : keys) out.string(key);
  out.end_array().key("complete").boolean(cursor == "0").end_object();
  co_return out.take();
}

Task<std::string> hold(OpContext& ctx, std::string input_text) {
  FieldViews input = read_input(ctx, input_text, "hold input");
  std::string_view key = required_string(input["key"], "key");
  bool basic = basic_mode(input);
  Owner owner = read_owner(input);
  std::int64_t ttl_ms = positive_ms(input["ttlMs"], "ttlMs");
  std::int64_t every_ms = input["renewEveryMs"].is_null() ? std::max<std::int64_t>(1, ttl_ms / 3)
                                                          : positive_ms(input["renewEveryMs"], "renewEveryMs");
  std::int64_t cap_ms = positive_ms(input["maxHoldMs"], "maxHoldMs");
  double started = co_await ctx.now();
  double expires_at = started + static_cast<double>(ttl_ms);  // as far as this holder knows
  std::uint64_t renewals = 0;
  std::string expected, value;
  owner.expected_into(expected);
  for (;;) {
    co_await ctx.sleep(static_cast<std::uint32_t>(std::min<std::int64_t>(every_ms, 0x7fffffff)));
    double now = co_await ctx.now();
    double cap_at = started + static_cast<double>(cap_ms);
    if (now >= expires_at || now >= cap_at) {
      throw Error(ErrorCode::lock_lost, now >= cap_at ? "lock hold time cap reached" : "lock expired before it could be renewed",
                  json{{"lockKey", key}, {"renewals", renewals}});
    }
    // Once the lock lasts to the cap (to within a millisecond) there is nothing left to renew: a
    // renewal that close to the key's expiry can reach the store after the key has expired, and
    // the hold would end as "lock expired" instead of at its cap.
    if (cap_at - expires_at < 1) continue;
    // Never renew past the cap: the last renewal ends exactly at it.
    auto next_ttl = static_cast<std::int64_t>(std::min(static_cast<double>(ttl_ms), cap_at - now));
    if (next_ttl <= 0) continue;
    std::int64_t status = 0;
    owner.value_into(value, now + static_cast<double>(next_ttl));
    try {
      status = co_await owner_checked(ctx, basic, key, owner, false, next_ttl, expected, value);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::cancelled) throw;
      continue;  // transient KV failure: try again next round while the lock may still be ours
    }
    if (status != 1) {
      throw Error(ErrorCode::lock_lost, status == 0 ? "lock expired" : "lock taken over by another holder",
                  json{{"lockKey", key}, {"renewals", renewals}, {"state", state_name(status)}});
    }
    expires_at = now + static_cast<double>(next_ttl);
    ++renewals;
  }
}

}  // namespace agent_tools::kv
