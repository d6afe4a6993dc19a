#include "agent_tools/tasks.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent_tools/json_text.hpp"
#include "agent_tools/schema.hpp"
#include "agent_tools/time.hpp"
#include "json_bytes.hpp"

// The task works on JSON text, not document trees: the input (prompts, the function definition
// and its schema, the previous CSI) is read once into views, the request and the result are
// written by splicing those views, the completion is walked in the pass that validates it, and
// the tool call's arguments are validated as their text is read and spliced into the result.
// Only arguments that fail become a tree, for the validator to say precisely why. Building and
// serialising trees cost several times everything else a task round does.

namespace agent_tools::tasks {

namespace {

// --- reading JSON text ----------------------------------------------------------------------------

// A value inside a text the task holds: its kind and its JSON text. Absent reads as null with no text.
struct Value {
  JsonKind kind = JsonKind::null;
  std::string_view text;

  bool is(JsonKind k) const noexcept { return !text.empty() && kind == k; }
};

// A byte loop, not string_view::find: in wasm that is a call to memchr.
bool has_backslash(std::string_view text) noexcept {
  for (char c : text) {
    if (c == '\\') return true;
  }
  return false;
}

// Walking text a JsonReader has already validated needs no checks: find each value's end by its
// brackets and quotes. The task re-reads small parts of its documents (an object's members, an
// array's first element) this way instead of validating them again.
namespace trusted {

std::size_t skip_space(std::string_view text, std::size_t i) {
  while (i < text.size() && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t')) ++i;
  return i;
}

// `i` at the opening quote; returns the index after the closing one.
std::size_t string_end(std::string_view text, std::size_t i) {
  const auto begin = reinterpret_cast<const unsigned char*>(text.data());
  const auto end = begin + text.size();
  for (auto p = begin + i + 1;; p += 2) {  // past a backslash and the byte it escapes
    p = json_bytes::skip_to_quote_or_backslash(p, end);
    if (*p == '"') return static_cast<std::size_t>(p - begin) + 1;
  }
}

// `i` at a value's first byte; returns the index after its last.
std::size_t value_end(std::string_view text, std::size_t i) {
  char c = text[i];
  if (c == '"') return string_end(text, i);
  if (c != '{' && c != '[') {
    while (i < text.size() && text[i] != ',' && text[i] != '}' && text[i] != ']' && text[i] != ' ' &&
           text[i] != '\n' && text[i] != '\r' && text[i] != '\t') {
      ++i;
    }
    return i;
  }
  std::size_t depth = 0;
  for (;;) {
    c = text[i];
    if (c == '"') {
      i = string_end(text, i);
      continue;
    }
    if (c == '{' || c == '[') ++depth;
    else if ((c == '}' || c == ']') && --depth == 0) return i + 1;
    ++i;
  }
}

JsonKind kind_at(std::string_view text, std::size_t i) {
  switch (text[i]) {
    case '{': return JsonKind::object;
    case '[': return JsonKind::array;
    case '"': return JsonKind::string;
    case 't': case 'f': return JsonKind::boolean;
    case 'n': return JsonKind::null;
    default: return JsonKind::number;
  }
}

// Calls on_item(key, value) for each member of an object, or on_item({}, value) for each element
// of an array. Keys are raw (still quoted and escaped).
template <class OnItem>
void items(std::string_view text, OnItem&& on_item) {
  std::size_t i = skip_space(text, 1);
  bool object = text[0] == '{';
  while (text[i] != '}' && text[i] != ']') {
    std::string_view key;
    if (object) {
      std::size_t key_end = string_end(text, i);
      key = text.substr(i, key_end - i);
      i = skip_space(text, skip_space(text, key_end) + 1);  // past the colon
    }
    std::size_t end = value_end(text, i);
    on_item(key, Value{kind_at(text, i), text.substr(i, end - i)});
    i = skip_space(text, end);
    if (text[i] == ',') i = skip_space(text, i + 1);
  }
}

}  // namespace trusted

std::string decode_string(Value value) { return decode_json_string(value.text); }

// `quoted` is a member name as it stands in the text, quotes included: equal to `name` once decoded?
// (Inline: the walks ask it of every member they pass, and the length usually answers.)
inline bool quoted_is(std::string_view quoted, std::string_view name) {
  if (quoted.size() == name.size() + 2) return json_bytes::same_text(quoted.substr(1, name.size()), name);  // no room for an escape
  return quoted.size() > name.size() + 2 && has_backslash(quoted) && decode_json_string(quoted) == name;
}

// An object's members, read once; later duplicates win, as JSON.parse (and the tree) had it.
// Names stay views into the text, as they stand there (escapes and all): a task looks up a
// handful of names and copies the rest through, so decoding each would be wasted.
class Members {
 public:
  struct Member {
    std::string_view quoted;  // the name with its quotes
    Value value;
    /// The name as it stands between the quotes: valid JSON string content, escapes kept.
    std::string_view content() const noexcept { return quoted.substr(1, quoted.size() - 2); }
  };

  Members() = default;
  /// Reads (and validates) the object the reader is at.
  explicit Members(JsonReader& reader) {
    items_.reserve(8);
    reader.begin_object();
    std::string_view name;
    bool escaped = false;
    while (reader.member_raw(name, escaped)) {
      JsonKind kind = reader.peek();
      items_.push_back({std::string_view(name.data() - 1, name.size() + 2), Value{kind, reader.skip()}});
    }
  }
  /// `object` must be validated text; anything but an object has no members.
  explicit Members(Value object) {
    if (!object.is(JsonKind::object)) return;
    items_.reserve(8);
    trusted::items(object.text, [&](std::string_view key, Value value) { items_.push_back({key, value}); });
  }

  Value operator[](std::string_view name) const noexcept {
    for (auto it = items_.rbegin(); it != items_.rend(); ++it) {
      if (quoted_is(it->quoted, name)) return it->value;
    }
    return {};
  }
  const std::vector<Member>& items() const noexcept { return items_; }

 private:
  std::vector<Member> items_;
};

std::string text_of(Value value, std::string fallback = "") {
  return value.is(JsonKind::string) ? decode_string(value) : fallback;
}

double number_of(Value value) { return number_value(value.text); }

// JavaScript truthiness for the `||`-style defaults the original used.
bool truthy(Value value) {
  switch (value.kind) {
    case JsonKind::null: return false;
    case JsonKind::boolean: return value.text == "true";
    case JsonKind::number: return number_of(value) != 0;
    case JsonKind::string: return value.text.size() > 2;  // more than the two quotes
    default: return !value.text.empty();
  }
}

// A whole document, validated, with an object's members collected in the same pass.
struct Document {
  JsonKind kind = JsonKind::null;
  Members members;
};

Document read_document(std::string_view text, ErrorCode on_malformed, std::string_view what) {
  JsonReader reader(text, on_malformed, what);
  Document document;
  document.kind = reader.peek();
  if (document.kind == JsonKind::object) document.members = Members(reader);
  else reader.skip();
  reader.finish();
  return document;
}

// A failed task, as the original reported it: {success: false, stepResult: {step}, updatedCSI,
// error: {message, code, details}}. `details.reason` names the failure precisely.
[[noreturn]] void fail(std::string reason, std::string message, json extra = json::object(),
                       ErrorCode code = ErrorCode::task_execution_failed) {
  json details = {{"reason", std::move(reason)}};
  for (auto& [k, v] : extra.items()) details[k] = v;
  throw Error(code, std::move(message), std::move(details));
}

// --- the input and the request --------------------------------------------------------------------

// A task's static part, compiled once and kept under the id the host gave it: its names, the
// request around the user's prompt, and the validator for the function's arguments. The host
// sends the spec only when the core does not know the id yet (see execute), so a call carries just
// what changes per call: the previous CSI, the rendered user prompt, a deadline.
struct TaskTemplate {
  std::string task_name;
  std::string task_type;
  std::string progress;  // JSON text
  std::string function_name;
  // The host's `http` request around the user's prompt (the Chat Completions body is its `json`):
  //   head + <user prompt literal> + "}" + <repair messages> + tail + <timeoutMs> + "}"
  std::string request_head;
  std::string request_tail;
  std::shared_ptr<const schema::Schema> validator;  // null when the function has no parameters
  std::uint32_t timeout_ms = 600000;
  std::uint32_t max_retries = 2;
  bool repair = false;
};

// Everything one call needs: the template and views into the call's own input text (which the
// operation's coroutine frame owns for the whole task).
struct Plan {
  std::shared_ptr<const TaskTemplate> task;
  std::string task_name;  // for failure results, known even when the spec was rejected
  Value user_prompt;      // a JSON string literal
  // As the caller gave it (kept as is in failure results). The host validated it against the
  // original's request schema, whose defaults (no steps, 4 in all) are the ones applied here.
  Value previous_csi;
  double deadline_ms = 0;  // absolute; 0 = none
};

std::uint32_t small_ms(Value value, std::uint32_t fallback) {
  if (!value.is(JsonKind::number) || number_of(value) < 0) return fallback;
  return static_cast<std::uint32_t>(std::min(number_of(value), 2147483647.0));
}

// Compiles a spec ({taskName, taskType, progressPercent, systemPrompt, functionDefinition,
// modelConfig, defaults}). Key order and defaults of the request are the original's.
std::shared_ptr<const TaskTemplate> compile_task(const Members& spec, std::string& task_name) {
  auto task = std::make_shared<TaskTemplate>();
  task->task_name = task_name = text_of(spec["taskName"]);
  task->task_type = text_of(spec["taskType"]);
  Value progress = spec["progressPercent"];
  task->progress = progress.text.empty() ? "null" : std::string(progress.text);
  Value function_value = spec["functionDefinition"];
  Members function(function_value);
  if (!function_value.is(JsonKind::object) || !function["name"].is(JsonKind::string)) {
    throw Error(ErrorCode::invalid_argument, "functionDefinition needs a name");
  }
  task->function_name = decode_string(function["name"]);
  Value parameters = function["parameters"];
  if (!parameters.text.empty() && parameters.kind != JsonKind::null) {
    task->validator = std::make_shared<const schema::Schema>(
        schema::Schema::compile(parse_json(parameters.text, ErrorCode::invalid_argument, "function parameters")));
  }

  Members model_config(spec["modelConfig"]);
  Members defaults(spec["defaults"]);
  std::string model = truthy(model_config["model"]) ? text_of(model_config["model"])
                                                      : text_of(defaults["model"], "gpt-4o-mini");
  bool reasoning = is_reasoning_model(model);
  Value system_prompt = spec["systemPrompt"];
  Members http(spec["http"]);
  task->timeout_ms = small_ms(http["timeoutMs"], 600000);
  task->max_retries = small_ms(http["maxRetries"], 2);
  task->repair = http["repair"].is(JsonKind::boolean) && http["repair"].text == "true";
  JsonWriter head;
  head.begin_object()
      .key("method").string("POST")
      .key("url").string(text_of(http["url"], "https://api.openai.com/v1/chat/completions"))
      .key("headers").begin_object()
          .key("content-type").string("application/json")
          .key("accept").string("application/json")
      .end_object()
      .key("json").begin_object()  // a JSON value, not a string: nothing to escape here or parse there
      .key("model").string(model)
      .key("messages").begin_array()
          .begin_object().key("role").string("system")
              .key("content").raw(system_prompt.is(JsonKind::string) ? system_prompt.text : "\"\"").end_object()
          .begin_object().key("role").string("user").key("content");
  task->request_head = head.take();

  JsonWriter tail;
  tail.end_array()
      .key("tools").begin_array()
          .begin_object().key("type").string("function").key("function").raw(function_value.text).end_object()
      .end_array()
      .key("tool_choice").begin_object()
          .key("type").string("function")
          .key("function").begin_object().key("name").raw(function["name"].text).end_object()
      .end_object();
  // Reasoning models reject temperature and top_p, and max_tokens in favour of
  // max_completion_tokens; everyone else gets exactly what the original sent.
  if (!reasoning) {
    Value temperature = model_config["temperature"];
    if (temperature.is(JsonKind::number)) tail.key("temperature").raw(temperature.text);
    else if (truthy(defaults["temperature"])) tail.key("temperature").raw(defaults["temperature"].text);
    else tail.key("temperature").raw("0.3");
  }
  Value max_tokens = model_config["maxTokens"];
  if (truthy(max_tokens)) tail.key(reasoning ? "max_completion_tokens" : "max_tokens").raw(max_tokens.text);
  Value top_p = model_config["topP"];
  if (!reasoning && truthy(top_p)) tail.key("top_p").raw(top_p.text);
  tail.end_object().key("timeoutMs");
  task->request_tail = tail.take();
  return task;
}

// Compiled tasks by the host's id. Bounded by count and by bytes (a spec may carry a long system
// prompt): when either would pass its limit the cache is cleared, and the host sends specs again.
class TaskCache {
 public:
  static constexpr std::size_t kMaxTasks = 64;
  static constexpr std::size_t kMaxBytes = 4u << 20;

  std::shared_ptr<const TaskTemplate> find(std::uint32_t id) const {
    auto it = tasks_.find(id);
    return it == tasks_.end() ? nullptr : it->second;
  }
  void put(std::uint32_t id, std::shared_ptr<const TaskTemplate> task) {
    std::size_t size = task->request_head.size() + task->request_tail.size();
    if (tasks_.size() >= kMaxTasks || bytes_ + size > kMaxBytes) {
      tasks_.clear();
      bytes_ = 0;
    }
    if (size > kMaxBytes) return;  // used for this call only
    bytes_ += size;
    tasks_[id] = std::move(task);  // a replaced entry's bytes stay counted until the next clear
  }

 private:
  std::unordered_map<std::uint32_t, std::shared_ptr<const TaskTemplate>> tasks_;
  std::size_t bytes_ = 0;
};

TaskCache& task_cache() {
  static TaskCache cache;
  return cache;
}

// Fills `plan` in place (a failure half-way still knows the task's name for its result). Returns
// false when the input names a task the core does not know and carries no spec for it.
bool make_plan(const Document& document, Plan& plan) {
  if (document.kind != JsonKind::object) throw Error(ErrorCode::invalid_argument, "tasks.execute needs an object input");
  const Members& input = document.members;
  Value id_value = input["task"];
  if (!id_value.is(JsonKind::number) || number_of(id_value) < 0 || number_of(id_value) > 4294967295.0) {
    throw Error(ErrorCode::invalid_argument, "tasks.execute needs a task id");
  }
  auto id = static_cast<std::uint32_t>(number_of(id_value));
  auto& cache = task_cache();
  Value spec = input["taskSpec"];
  if (spec.is(JsonKind::object)) {
    plan.task = compile_task(Members(spec), plan.task_name);
    cache.put(id, plan.task);
  } else if (auto task = cache.find(id)) {
    plan.task = std::move(task);
    plan.task_name = plan.task->task_name;
  } else {
    return false;
  }
  Value user_prompt = input["userPrompt"];
  plan.user_prompt = user_prompt.is(JsonKind::string) ? user_prompt : Value{JsonKind::string, "\"\""};
  plan.previous_csi = input["previousCSI"];
  if (input["deadlineMs"].is(JsonKind::number)) plan.deadline_ms = number_of(input["deadlineMs"]);
  return true;
}

// The host's `http` request for one attempt.
std::string http_request(const Plan& plan, std::string_view extra_messages, std::uint32_t timeout_ms, std::string request) {
  const TaskTemplate& task = *plan.task;
  char digits[16];
  auto digits_end = std::to_chars(digits, digits + sizeof digits, timeout_ms).ptr;
  make_room(request, task.request_head.size() + plan.user_prompt.text.size() + extra_messages.size() +
                  task.request_tail.size() + 16);
  request += task.request_head;
  request += plan.user_prompt.text;
  request += '}';
  request += extra_messages;
  request += task.request_tail;  // `]` closes the messages, then `,"tools":...}` and `,"timeoutMs":`
  request.append(digits, digits_end);
  request += '}';
  return request;
}

// --- the response ---------------------------------------------------------------------------------

const json& field(const json& object, std::string_view name) {
  static const json missing;
  if (!object.is_object()) return missing;
  auto it = object.find(name);
  return it == object.end() ? missing : *it;
}

std::string header(const json& headers, std::string_view name) {
  const json& value = field(headers, name);
  return value.is_string() ? value.get<std::string>() : "";
}

std::optional<double> number_in(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

// The server's requested wait (retry-after-ms, then retry-after in seconds), if sane: 0..60 s.
std::optional<double> server_delay(const json& headers) {
  std::optional<double> ms;
  if (auto v = number_in(header(headers, "retry-after-ms"))) ms = *v;
  else if (auto s = number_in(header(headers, "retry-after"))) ms = *s * 1000;
  if (ms && *ms >= 0 && *ms <= 60000) return ms;
  return std::nullopt;
}

bool retryable_status(int status) { return status == 408 || status == 409 || status == 429 || status >= 500; }

// What the API said went wrong, for details (never the request or any header).
json api_error(Value error_value) {
  json out = json::object();
  Members error(error_value);
  for (const char* key : {"message", "type", "code", "param"}) {
    if (error[key].is(JsonKind::string)) out[key] = decode_string(error[key]);
  }
  return out;
}

// The parts of a chat completion the checks read, found while the reader validates it: the walk
// goes down choices[0].message.tool_calls[0].function and skips (validating) everything else, so
// the completion is read once, where reading each level's members would scan the tool call (an
// escaped JSON document) once per level. Later duplicates of a member replace earlier ones, as
// JSON.parse has it.
struct Completion {
  Value error;
  bool has_choices = false;  // "choices" is an array
  std::size_t choice_count = 0;
  Value finish_reason;
  Value refusal;
  std::size_t call_count = 0;  // 0 also when tool_calls is not an array
  Value call;                  // tool_calls[0]
  Value function_name;
  Value arguments;
};

namespace walk {

// The reader's next value, read (and validated) whole.
Value whole(JsonReader& r) {
  JsonKind kind = r.peek();
  return {kind, r.skip()};
}

// Calls on_member(quoted name) for each member of the object at the reader, which must read or
// skip the member's value; a value of any other kind is skipped (validated all the same).
template <class OnMember>
void object(JsonReader& r, OnMember&& on_member) {
  if (r.peek() != JsonKind::object) {
    r.skip();
    return;
  }
  r.begin_object();
  std::string_view name;
  bool escaped = false;
  while (r.member_raw(name, escaped)) on_member(std::string_view(name.data() - 1, name.size() + 2));
}

// For an array at the reader: counts its elements into `count`, reads the first with on_first()
// and skips the rest. Anything else is skipped, counting nothing. Returns whether it was an array.
template <class OnFirst>
bool first_element(JsonReader& r, std::size_t& count, OnFirst&& on_first) {
  count = 0;
  if (r.peek() != JsonKind::array) {
    r.skip();
    return false;
  }
  r.begin_array();
  while (r.element()) {
    if (count++ == 0) on_first();
    else r.skip();
  }
  return true;
}

void function(JsonReader& r, Completion& c) {
  c.function_name = {};
  c.arguments = {};
  object(r, [&](std::string_view key) {
    if (quoted_is(key, "name")) c.function_name = whole(r);
    else if (quoted_is(key, "arguments")) c.arguments = whole(r);
    else r.skip();
  });
}

void call(JsonReader& r, Completion& c) {
  c.function_name = {};
  c.arguments = {};
  JsonKind kind = r.peek();
  if (kind != JsonKind::object) {
    c.call = whole(r);
    return;
  }
  std::size_t start = r.offset();
  object(r, [&](std::string_view key) {
    if (quoted_is(key, "function")) function(r, c);
    else r.skip();
  });
  c.call = {kind, r.text().substr(start, r.offset() - start)};
}

void reset_calls(Completion& c) {
  c.call_count = 0;
  c.call = c.function_name = c.arguments = {};
}

void message(JsonReader& r, Completion& c) {
  c.refusal = {};
  reset_calls(c);
  object(r, [&](std::string_view key) {
    if (quoted_is(key, "refusal")) {
      c.refusal = whole(r);
    } else if (quoted_is(key, "tool_calls")) {
      reset_calls(c);
      first_element(r, c.call_count, [&] { call(r, c); });
    } else {
      r.skip();
    }
  });
}

void choice(JsonReader& r, Completion& c) {
  c.finish_reason = c.refusal = {};
  reset_calls(c);
  object(r, [&](std::string_view key) {
    if (quoted_is(key, "message")) message(r, c);
    else if (quoted_is(key, "finish_reason")) c.finish_reason = whole(r);
    else r.skip();
  });
}

// Reads one value at the reader, validating all of it, and collects what the checks need.
Completion completion(JsonReader& r) {
  Completion c;
  object(r, [&](std::string_view key) {
    if (quoted_is(key, "error")) {
      c.error = whole(r);
    } else if (quoted_is(key, "choices")) {
      c.finish_reason = c.refusal = {};
      reset_calls(c);
      c.has_choices = first_element(r, c.choice_count, [&] { choice(r, c); });
    } else {
      r.skip();
    }
  });
  return c;
}

}  // namespace walk

// One HTTP answer from the transport, its body already walked for the parts a completion's
// checks read (in the same pass that validated it).
struct Reply {
  int status = 0;
  json headers;            // only read for failures
  std::string text;        // the transport's reply, or the body string decoded out of it
  std::string_view body;   // the body's text, inside `text`
  bool body_is_json = false;
  std::optional<Error> body_error;  // why the body is not one JSON document
  Completion completion;
};

// The tool call's arguments (the JSON text inside its string) out of a 2xx body, or the precise
// failure. `call` receives the tool call's text (for a repair round).
void tool_arguments(const Reply& reply, const std::string& function_name, Value& call, std::string& text) {
  if (!reply.body_is_json) {
    if (reply.body_error && reply.body_error->code() == ErrorCode::input_too_large) fail("response_too_large", reply.body_error->message());
    fail("malformed_response", "OpenAI returned a body that is not JSON", {{"status", reply.status}});
  }
  const Completion& c = reply.completion;
  if (c.error.is(JsonKind::object)) {
    json api = api_error(c.error);
    std::string message = api.contains("message") ? api["message"].get<std::string>() : "unknown error";
    fail("api_error", "OpenAI returned an error: " + message, {{"api", std::move(api)}});
  }
  if (!c.has_choices) fail("malformed_response", "OpenAI response has no choices array");
  if (c.choice_count == 0) fail("no_choices", "OpenAI returned no choices");
  std::string finish = text_of(c.finish_reason);
  if (truthy(c.refusal)) {
    fail("refusal", "The model refused: " + text_of(c.refusal),
         {{"refusal", parse_json(c.refusal.text, ErrorCode::host_bad_reply, "refusal")}});
  }
  if (finish == "length") fail("truncated", "The model's output was cut off (finish_reason: length)");
  if (finish == "content_filter") fail("content_filter", "The output was withheld by the content filter");
  if (c.call_count == 0) fail("no_tool_call", "No function call returned from OpenAI");
  if (c.call_count > 1) {
    fail("multiple_tool_calls", "Expected one function call, got " + std::to_string(c.call_count), {{"count", c.call_count}});
  }
  call = c.call;
  std::string name = text_of(c.function_name);
  if (name != function_name) {
    fail("wrong_function", "The model called '" + name + "' instead of '" + function_name + "'", {{"function", name}});
  }
  Value arguments = c.arguments;
  if (!arguments.is(JsonKind::string)) fail("malformed_response", "tool call arguments are not a string");
  assign_decoded(text, arguments.text.substr(1, arguments.text.size() - 2));  // (into the buffer given)
}

// The arguments as a tree, for the validator's issues.
json arguments_tree(const std::string& text) {
  if (text.empty() || text == "null") return json::object();  // the original read both as {}
  try {
    return parse_json(text, ErrorCode::validation_failed, "tool call arguments");
  } catch (const Error& e) {
    fail("invalid_arguments_json", "The function arguments are not valid JSON: " + e.message(), json::object(),
         e.code() == ErrorCode::input_too_large ? ErrorCode::task_execution_failed : ErrorCode::validation_failed);
  }
}

json issues_json(const std::vector<schema::Issue>& issues) {
  json out = json::array();
  for (const auto& issue : issues) out.push_back({{"path", issue.path}, {"keyword", issue.keyword}, {"message", issue.message}});
  return out;
}

// --- the result -----------------------------------------------------------------------------------

// {"step": <task>, ...the arguments}: the task's name is not the model's to change.
std::string step_result(const std::string& task_name, const json& arguments) {
  std::string out = "{\"step\":";
  append_json_string(out, task_name);
  for (const auto& [key, value] : arguments.items()) {
    if (key == "step") continue;
    out += ',';
    append_json_string(out, key);
    out += ':';
    write_json(out, value);
  }
  out += '}';
  return out;
}

// Whether `text` holds the literal "step" or a \u escape (one byte loop: string_view::find is a
// call to memchr per candidate in wasm).
bool may_name_step(std::string_view text) noexcept {
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] == '\\' && text[i + 1] == 'u') return true;
    if (text[i] == '"' && json_bytes::same_text(text.substr(i + 1, 5), "step\"")) return true;
  }
  return false;
}

// The same spliced from arguments text the validator accepted (an object, so parse_json would
// take it): its members are copied as they stand, and JSON.parse on the host reads repeated
// names as the tree would have (the last one wins).
std::string step_result(const std::string& task_name, std::string_view arguments, std::string out) {
  make_room(out, arguments.size() + task_name.size() + 16);  // the arguments are most of it
  out += "{\"step\":";
  append_json_string(out, task_name);
  const std::size_t open = trusted::skip_space(arguments, 0);
  // No member can be named "step" when the text has neither that literal nor an escape that
  // could spell it: then the members go over as one piece, between the braces.
  if (!may_name_step(arguments)) {
    std::size_t close = arguments.find_last_of('}');
    std::size_t first = trusted::skip_space(arguments, open + 1);
    if (first < close) {
      out += ',';
      out.append(arguments, first, close - first);
    }
    out += '}';
    return out;
  }
  trusted::items(arguments.substr(open), [&](std::string_view key, Value value) {
    if (quoted_is(key, "step")) return;
    out += ',';
    out += key;
    out += ':';
    out += value.text;
  });
  out += '}';
  return out;
}

// Whether the first thing in `text` is an object.
bool opens_object(std::string_view text) {
  std::size_t i = trusted::skip_space(text, 0);
  return i < text.size() && text[i] == '{';
}


void write_updated_csi(JsonWriter& out, const Plan& plan, const std::string& now_iso) {
  Members previous(plan.previous_csi);
  Value completed = previous["completedSteps"];
  Value total = previous["totalSteps"];
  out.begin_object().key("completedSteps").begin_array();
  if (completed.is(JsonKind::array)) {
    trusted::items(completed.text, [&](std::string_view, Value step) { out.raw(step.text); });
  }
  out.string(plan.task_name).end_array();
  out.key("currentProgress").raw(plan.task->progress)
      .key("totalSteps").raw(total.is(JsonKind::number) ? total.text : "4")
      .key("currentStep").string(plan.task_name)
      .key("metadata").begin_object();
  // The previous CSI's metadata is kept (the original dropped it), then this step's fields.
  Members previous_metadata(previous["metadata"]);
  for (const auto& member : previous_metadata.items()) {
    if (quoted_is(member.quoted, "lastUpdated") || quoted_is(member.quoted, "taskName") || quoted_is(member.quoted, "taskType")) continue;
    out.key(member.content()).raw(member.value.text);  // (key() writes names as they are: these are escaped already)
  }
  out.key("lastUpdated").string(now_iso)
      .key("taskName").string(plan.task_name)
      .key("taskType").string(plan.task->task_type)
      .end_object()
      .end_object();
}

std::string failed_result(const Plan& plan, const Error& error) {
  JsonWriter out;
  out.begin_object().key("success").boolean(false).key("stepResult").begin_object().key("step").string(plan.task_name).end_object();
  out.key("updatedCSI");
  if (plan.previous_csi.is(JsonKind::object)) out.raw(plan.previous_csi.text);
  else out.raw(R"({"completedSteps":[],"currentProgress":0,"totalSteps":4,"currentStep":"failed"})");
  json details = error.details().is_object() ? error.details() : json::object();
  if (!details.contains("reason")) {
    details["reason"] = error.code() == ErrorCode::cancelled ? "cancelled"
                        : error.code() == ErrorCode::timeout ? "timeout"
                                                             : "host_error";
  }
  out.key("error").begin_object()
      .key("message").string(error.message())
      .key("code").string(to_string(error.code()))
      .key("details").raw(dump_json(details))
      .end_object()
      .end_object();
  return out.take();
}

// --- one attempt and the retry loop ----------------------------------------------------------------

// Reads the transport's {status, headers, body: text} or {status, headers, json: value} straight
// from its text; the headers are parsed only when a failure needs them.
Reply read_http_reply(std::string&& text) {
  Reply reply;
  // Views into `text` (the body, the completion's parts) must survive moves of the Reply, so its
  // characters stay on the heap: a short string would take them along when moved. (Only a short
  // one is reserved: Emscripten's libc++ would shrink a longer one to fit, copying it.)
  reply.text = std::move(text);
  if (reply.text.capacity() < 64) reply.text.reserve(64);
  JsonReader reader(reply.text, ErrorCode::host_bad_reply, "HTTP reply");
  if (reader.peek() != JsonKind::object) fail("malformed_response", "the HTTP transport returned no status");
  std::optional<int> status;
  std::string_view headers;
  std::optional<std::string_view> body_literal;  // a "body" string, still escaped
  bool json_body = false;
  walk::object(reader, [&](std::string_view key) {
    JsonKind kind = reader.peek();
    if (quoted_is(key, "status") && kind == JsonKind::number) {
      std::string_view digits = reader.read_number_text();
      if (digits.size() <= 4 && digits.find_first_not_of("0123456789") == std::string_view::npos) {
        int value = 0;
        for (char c : digits) value = value * 10 + (c - '0');
        status = value;
      }
    } else if (quoted_is(key, "headers") && kind == JsonKind::object) {
      headers = reader.skip();
    } else if (quoted_is(key, "body") && kind == JsonKind::string) {
      body_literal = reader.skip();
      json_body = false;
    } else if (quoted_is(key, "json")) {
      // The document itself: validated and walked in one pass, nothing to decode.
      std::size_t start = reader.offset();
      reply.completion = walk::completion(reader);
      reply.body = std::string_view(reply.text).substr(start, reader.offset() - start);
      json_body = true;
      body_literal.reset();
    } else {
      reader.skip();
    }
  });
  reader.finish();
  if (!status) fail("malformed_response", "the HTTP transport returned no status");
  if (!json_body && !body_literal) fail("malformed_response", "the HTTP transport returned no body text");
  reply.status = *status;
  bool ok = reply.status >= 200 && reply.status < 300;
  if (!ok && !headers.empty()) reply.headers = parse_json(headers, ErrorCode::host_bad_reply, "HTTP headers");  // else null: no header
  reply.body_is_json = json_body;
  if (!json_body) {
    // A body string: decoded, it is the text (heap-held as above), then read as a document.
    reply.text = decode_json_string(*body_literal);
    if (reply.text.capacity() < 64) reply.text.reserve(64);
    reply.body = reply.text;
    try {
      JsonReader body(reply.body, ErrorCode::host_bad_reply, "response body");
      reply.completion = walk::completion(body);
      body.finish();
      reply.body_is_json = true;
    } catch (const Error& e) {
      reply.completion = {};
      reply.body_error = e;
    }
  }
  return reply;
}

Task<Reply> send(OpContext& ctx, const Plan& plan, std::string_view extra_messages, std::uint32_t timeout_ms) {
  co_return read_http_reply(co_await ctx.http(http_request(plan, extra_messages, timeout_ms, ctx.reusable_buffer())));
}

// Sends with retries: 408/409/429/5xx and transport failures, exponential backoff with full
// jitter (server delays honoured up to 60 s), x-should-retry obeyed, per-attempt timeout and an
// overall deadline. Returns the first 2xx; throws the final failure otherwise.
Task<Reply> send_with_retries(OpContext& ctx, const Plan& plan, std::string_view extra_messages, std::uint32_t& retries_used) {
  for (;;) {
    double now = co_await ctx.now();
    std::uint32_t timeout = plan.task->timeout_ms;
    if (plan.deadline_ms > 0) {
      double left = plan.deadline_ms - now;
      if (left <= 0) fail("deadline", "The task's deadline passed", {{"retries", retries_used}}, ErrorCode::timeout);
      timeout = static_cast<std::uint32_t>(std::min<double>(timeout, std::ceil(left)));
    }
    std::optional<Reply> reply;
    std::optional<Error> transport;
    try {
      reply = co_await send(ctx, plan, extra_messages, timeout);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::cancelled) throw;
      if (e.code() != ErrorCode::host_error && e.code() != ErrorCode::timeout) {
        fail(e.code() == ErrorCode::input_too_large ? "response_too_large" : "malformed_response", e.message());
      }
      transport = e;
    }
    bool retry = false;
    std::optional<double> wait;
    if (transport) {
      retry = true;
    } else if (reply->status >= 200 && reply->status < 300) {
      co_return std::move(*reply);
    } else {
      std::string should = header(reply->headers, "x-should-retry");
      retry = should == "true" || (should != "false" && retryable_status(reply->status));
      wait = server_delay(reply->headers);
    }
    if (!retry || retries_used >= plan.task->max_retries) {
      if (transport) {
        fail(transport->code() == ErrorCode::timeout ? "timeout" : "network", transport->message(),
             {{"retries", retries_used}}, transport->code() == ErrorCode::timeout ? ErrorCode::timeout : ErrorCode::task_execution_failed);
      }
      json extra = {{"status", reply->status}, {"retries", retries_used}};
      std::string message = "OpenAI request failed with HTTP " + std::to_string(reply->status);
      std::optional<Value> error_body;  // none for a body that is not JSON (an HTML error page, say)
      if (reply->body_is_json) error_body = reply->completion.error;
      if (error_body) {
        json api = api_error(*error_body);
        if (!api.empty()) {
          if (api.contains("message")) message += ": " + api["message"].get<std::string>();
          extra["api"] = std::move(api);
        }
      }
      fail("http_status", message, extra);
    }
    if (!wait) {
      // Full jitter over min(8 s, 0.5 s * 2^n).
      std::string hex = co_await ctx.random_hex(4);
      double unit = static_cast<double>(std::stoul(hex, nullptr, 16)) / 4294967296.0;
      wait = unit * std::min(8000.0, 500.0 * std::pow(2.0, retries_used));
    }
    if (plan.deadline_ms > 0 && now + *wait >= plan.deadline_ms) {
      fail("deadline", "The task's deadline leaves no time for another attempt", {{"retries", retries_used}}, ErrorCode::timeout);
    }
    ++retries_used;
    co_await ctx.sleep(static_cast<std::uint32_t>(std::ceil(*wait)));
  }
}

// The repair round's two messages: the rejected call, then what was wrong with it.
std::string repair_messages(const Plan& plan, Value call, const std::vector<schema::Issue>& issues) {
  std::string feedback = "The arguments were rejected. Call " + plan.task->function_name + " again with arguments that satisfy the schema. Problems:";
  for (const auto& issue : issues) feedback += "\n- " + issue.message;
  Value id = Members(call)["id"];
  JsonWriter out;
  out.begin_object().key("role").string("assistant").key("content").null().key("tool_calls").begin_array().raw(call.text).end_array().end_object()
      .begin_object().key("role").string("tool").key("tool_call_id").raw(id.is(JsonKind::string) ? id.text : "\"call\"")
      .key("content").string(feedback).end_object();
  return "," + out.take();  // they follow the messages already written
}

}  // namespace

bool is_reasoning_model(std::string_view model) noexcept {
  auto starts = [&](std::string_view prefix) { return model.substr(0, prefix.size()) == prefix; };
  return starts("o1") || starts("o3") || starts("o4") || starts("gpt-5");
}

Task<std::string> execute(OpContext& ctx, std::string input) {
  // Input that is not JSON at all is the caller's bug and fails the operation; everything after
  // this is a task result.
  Document document = read_document(input, ErrorCode::invalid_argument, "input");
  Plan plan;
  try {
    if (!make_plan(document, plan)) co_return std::string(R"({"unknownTask":true})");
    const TaskTemplate& task = *plan.task;

    std::uint32_t retries = 0;
    std::string extra_messages;
    bool repaired = false;
    for (;;) {
      Reply response = co_await send_with_retries(ctx, plan, extra_messages, retries);
      Value call;  // a view into response.body
      std::string text = ctx.reusable_buffer();
      tool_arguments(response, task.function_name, call, text);
      // Valid arguments, the usual case, are recognised on the text and spliced into the result;
      // a tree is built only to say what is wrong with them (or when no schema reads the text).
      std::string step;
      std::vector<schema::Issue> issues;
      if (task.validator && opens_object(text) && task.validator->accepts_text(text)) {
        step = step_result(plan.task_name, std::string_view(text), ctx.reusable_buffer());
      } else {
        json arguments = arguments_tree(text);
        if (!arguments.is_object()) {
          issues.push_back({"$", "type", "$: expected the arguments to be an object"});
        } else if (task.validator) {
          issues = task.validator->validate(arguments);
        }
        if (issues.empty()) step = step_result(plan.task_name, arguments);
      }
      if (issues.empty()) {
        double now = co_await ctx.now();
        JsonWriter result(ctx.reusable_buffer());  // an earlier result's storage
        result.begin_object().key("success").boolean(true)
            .key("stepResult").raw(step)
            .key("updatedCSI");
        write_updated_csi(result, plan, iso8601(now));
        result.end_object();
        // This round's texts go back for the next one's (the engine keeps a few small ones).
        ctx.keep_buffer(std::move(step));
        ctx.keep_buffer(std::move(text));
        ctx.keep_buffer(std::move(response.text));
        co_return result.take();
      }
      json details = {{"issues", issues_json(issues)}, {"repaired", repaired}};
      std::string message = "Function arguments failed validation: " + issues.front().message;
      // One repair round: show the model its call and what was wrong, sharing the retry budget.
      if (task.repair && !repaired && retries < task.max_retries) {
        repaired = true;
        ++retries;
        extra_messages += repair_messages(plan, call, issues);
        continue;
      }
      fail("schema_mismatch", message, details, ErrorCode::validation_failed);
    }
  } catch (const Error& e) {
    // Every failure, cancellation included, is a result: the original resolved, never rejected.
    co_return failed_result(plan, e);
  }
}

}  // namespace agent_tools::tasks
