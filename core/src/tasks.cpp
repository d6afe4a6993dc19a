#include "agent_tools/tasks.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "agent_tools/json_text.hpp"
#include "agent_tools/schema.hpp"
#include "agent_tools/time.hpp"

namespace agent_tools::tasks {

namespace {

const json& field(const json& object, std::string_view name) {
  static const json missing;
  if (!object.is_object()) return missing;
  auto it = object.find(name);
  return it == object.end() ? missing : *it;
}

std::string text_field(const json& object, std::string_view name, std::string fallback = "") {
  const json& value = field(object, name);
  return value.is_string() ? value.get<std::string>() : fallback;
}

// JavaScript truthiness for the `||`-style defaults the original used.
bool truthy(const json& value) {
  if (value.is_null()) return false;
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_number()) {
    double d = value.get<double>();
    return d != 0 && !std::isnan(d);
  }
  if (value.is_string()) return !value.get_ref<const std::string&>().empty();
  return true;
}

// An empty object with room for `members`: nlohmann's ordered_map is a vector of
// pair<const string, json>, which copies (not moves) every member, subtrees and all, each time it
// grows.
json object_with_room(std::size_t members) {
  json object = json::object();
  object.get_ref<json::object_t&>().reserve(members);
  return object;
}

// A failed task, as the original reported it: {success: false, stepResult: {step}, updatedCSI,
// error: {message, code, details}}. `details.reason` names the failure precisely.
struct Failure {
  ErrorCode code = ErrorCode::task_execution_failed;
  std::string message;
  json details = json::object();
};

[[noreturn]] void fail(std::string reason, std::string message, json extra = json::object(),
                       ErrorCode code = ErrorCode::task_execution_failed) {
  json details = {{"reason", std::move(reason)}};
  for (auto& [k, v] : extra.items()) details[k] = v;
  throw Error(code, std::move(message), std::move(details));
}

// --- the request ----------------------------------------------------------------------------------

struct Plan {
  std::string task_name;
  std::string task_type;
  json progress;
  const json* function = nullptr;  // the function definition, as given (inside the input)
  std::string function_name;
  json body;               // the Chat Completions request
  std::string url;
  std::uint32_t timeout_ms = 600000;
  std::uint32_t max_retries = 2;
  double deadline_ms = 0;  // absolute; 0 = none
  bool repair = false;
};

json build_body(const json& input) {
  const json& model_config = field(input, "modelConfig");
  const json& defaults = field(input, "defaults");
  const json& function = field(input, "functionDefinition");
  if (!function.is_object() || !field(function, "name").is_string()) {
    throw Error(ErrorCode::invalid_argument, "functionDefinition needs a name");
  }
  std::string model = truthy(field(model_config, "model")) ? text_field(model_config, "model")
                                                           : text_field(defaults, "model", "gpt-4o-mini");
  bool reasoning = is_reasoning_model(model);
  // Built member by member: nlohmann's initializer lists copy every element (the function's
  // schema would be copied three times over).
  json body = object_with_room(8);
  body["model"] = model;
  json messages = json::array();
  for (const auto& [role, prompt] : {std::pair{"system", "systemPrompt"}, std::pair{"user", "userPrompt"}}) {
    json message = object_with_room(2);
    message["role"] = role;
    message["content"] = text_field(input, prompt);
    messages.push_back(std::move(message));
  }
  body["messages"] = std::move(messages);
  json tool = object_with_room(2);
  tool["type"] = "function";
  tool["function"] = function;
  json tools = json::array();
  tools.push_back(std::move(tool));
  body["tools"] = std::move(tools);
  json choice = object_with_room(2);
  choice["type"] = "function";
  choice["function"] = json::object();
  choice["function"]["name"] = function["name"];
  body["tool_choice"] = std::move(choice);
  // Reasoning models reject temperature and top_p, and max_tokens in favour of
  // max_completion_tokens; everyone else gets exactly what the original sent.
  if (!reasoning) {
    const json& temperature = field(model_config, "temperature");
    if (temperature.is_number()) body["temperature"] = temperature;
    else body["temperature"] = truthy(field(defaults, "temperature")) ? field(defaults, "temperature") : json(0.3);
  }
  const json& max_tokens = field(model_config, "maxTokens");
  if (truthy(max_tokens)) body[reasoning ? "max_completion_tokens" : "max_tokens"] = max_tokens;
  const json& top_p = field(model_config, "topP");
  if (!reasoning && truthy(top_p)) body["top_p"] = top_p;
  return body;
}

std::uint32_t small_ms(const json& value, std::uint32_t fallback) {
  if (!value.is_number() || value.get<double>() < 0) return fallback;
  return static_cast<std::uint32_t>(std::min(value.get<double>(), 2147483647.0));
}

// --- the response ---------------------------------------------------------------------------------

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
json api_error(const json& body) {
  const json& error = field(body, "error");
  json out = json::object();
  for (const char* key : {"message", "type", "code", "param"}) {
    if (field(error, key).is_string()) out[key] = error[key];
  }
  return out;
}

// Parses the tool call out of a 2xx body, or throws the precise failure.
json tool_arguments(const json& body, const std::string& function_name) {
  if (field(body, "error").is_object()) {
    fail("api_error", "OpenAI returned an error: " + text_field(body["error"], "message", "unknown error"),
         {{"api", api_error(body)}});
  }
  const json& choices = field(body, "choices");
  if (!choices.is_array()) fail("malformed_response", "OpenAI response has no choices array");
  if (choices.empty()) fail("no_choices", "OpenAI returned no choices");
  const json& choice = choices[0];
  const json& message = field(choice, "message");
  std::string finish = text_field(choice, "finish_reason");
  if (truthy(field(message, "refusal"))) {
    fail("refusal", "The model refused: " + text_field(message, "refusal"), {{"refusal", message["refusal"]}});
  }
  if (finish == "length") fail("truncated", "The model's output was cut off (finish_reason: length)");
  if (finish == "content_filter") fail("content_filter", "The output was withheld by the content filter");
  const json& calls = field(message, "tool_calls");
  if (!calls.is_array() || calls.empty()) fail("no_tool_call", "No function call returned from OpenAI");
  if (calls.size() > 1) {
    fail("multiple_tool_calls", "Expected one function call, got " + std::to_string(calls.size()), {{"count", calls.size()}});
  }
  const json& function = field(calls[0], "function");
  std::string name = text_field(function, "name");
  if (name != function_name) {
    fail("wrong_function", "The model called '" + name + "' instead of '" + function_name + "'", {{"function", name}});
  }
  const json& arguments = field(function, "arguments");
  if (!arguments.is_string()) fail("malformed_response", "tool call arguments are not a string");
  const auto& text = arguments.get_ref<const std::string&>();
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

// --- the CSI ---------------------------------------------------------------------------------------

json updated_csi(const json& input, const Plan& plan, const std::string& now_iso) {
  const json& request = field(input, "request");
  const json& previous = field(request, "previousCSI");
  json completed = field(previous, "completedSteps").is_array() ? previous["completedSteps"] : json::array();
  completed.push_back(plan.task_name);
  json metadata = json::object();
  // The previous CSI's metadata is kept (the original dropped it), then this step's fields.
  const json& previous_metadata = field(input, "previousMetadata");
  if (previous_metadata.is_object()) metadata = previous_metadata;
  metadata["lastUpdated"] = now_iso;
  metadata["taskName"] = plan.task_name;
  metadata["taskType"] = plan.task_type;
  const json& total = field(previous, "totalSteps");
  return json{{"completedSteps", completed},
              {"currentProgress", plan.progress},
              {"totalSteps", total.is_number() ? total : json(4)},
              {"currentStep", plan.task_name},
              {"metadata", metadata}};
}

json failed_result(const json& input, const std::string& task_name, const Error& error) {
  const json& raw = field(input, "rawPreviousCSI");
  json csi = raw.is_object() ? raw
                             : json{{"completedSteps", json::array()}, {"currentProgress", 0}, {"totalSteps", 4}, {"currentStep", "failed"}};
  json err = {{"message", error.message()}, {"code", to_string(error.code())}};
  err["details"] = error.details().is_null() ? json::object() : error.details();
  if (!err["details"].contains("reason")) {
    err["details"]["reason"] = error.code() == ErrorCode::cancelled ? "cancelled"
                               : error.code() == ErrorCode::timeout ? "timeout"
                                                                    : "host_error";
  }
  return json{{"success", false}, {"stepResult", {{"step", task_name}}}, {"updatedCSI", csi}, {"error", err}};
}

// --- one attempt and the retry loop ----------------------------------------------------------------

struct Reply {
  int status = 0;
  json headers;
  json body;  // parsed, or null when not JSON
  bool json_ok = false;
};

// Reads the transport's {status, headers, body} straight from its text: the body (a JSON
// document inside a string) is parsed once, and the headers only when a failure needs them.
Reply read_http_reply(const std::string& text) {
  JsonReader reader(text, ErrorCode::host_bad_reply, "HTTP reply");
  if (reader.peek() != JsonKind::object) fail("malformed_response", "the HTTP transport returned no status");
  std::optional<int> status;
  std::optional<std::string> body;
  std::string_view headers;
  std::string name;
  reader.begin_object();
  while (reader.member(name)) {
    JsonKind kind = reader.peek();
    if (name == "status" && kind == JsonKind::number) {
      std::string_view digits = reader.read_number_text();
      if (digits.size() <= 4 && digits.find_first_not_of("0123456789") == std::string_view::npos) {
        status = std::stoi(std::string(digits));
      }
    } else if (name == "headers" && kind == JsonKind::object) {
      headers = reader.skip();
    } else if (name == "body" && kind == JsonKind::string) {
      body = reader.read_string();
    } else {
      reader.skip();
    }
  }
  reader.finish();
  if (!status) fail("malformed_response", "the HTTP transport returned no status");
  if (!body) fail("malformed_response", "the HTTP transport returned no body text");
  Reply reply;
  reply.status = *status;
  bool ok = reply.status >= 200 && reply.status < 300;
  reply.headers = ok || headers.empty() ? json::object() : parse_json(headers, ErrorCode::host_bad_reply, "HTTP headers");
  try {
    reply.body = parse_json(*body, ErrorCode::host_bad_reply, "response body");
    reply.json_ok = true;
  } catch (const Error& e) {
    if (e.code() == ErrorCode::input_too_large) throw;
  }
  return reply;
}

Task<Reply> send(OpContext& ctx, const Plan& plan, const json& body, std::uint32_t timeout_ms) {
  JsonWriter request;
  request.begin_object()
      .key("method").string("POST")
      .key("url").string(plan.url)
      .key("headers").begin_object()
          .key("content-type").string("application/json")
          .key("accept").string("application/json")
      .end_object()
      .key("body").string(dump_json(body))
      .key("timeoutMs").integer(timeout_ms)
      .end_object();
  co_return read_http_reply(co_await ctx.http(request.take()));
}

// Sends with retries: 408/409/429/5xx and transport failures, exponential backoff with full
// jitter (server delays honoured up to 60 s), x-should-retry obeyed, per-attempt timeout and an
// overall deadline. Returns the JSON body of the first 2xx; throws the final failure otherwise.
Task<json> send_with_retries(OpContext& ctx, const Plan& plan, const json& body, std::uint32_t& retries_used) {
  for (;;) {
    double now = co_await ctx.now();
    std::uint32_t timeout = plan.timeout_ms;
    if (plan.deadline_ms > 0) {
      double left = plan.deadline_ms - now;
      if (left <= 0) fail("deadline", "The task's deadline passed", {{"retries", retries_used}}, ErrorCode::timeout);
      timeout = static_cast<std::uint32_t>(std::min<double>(timeout, std::ceil(left)));
    }
    std::optional<Reply> reply;
    std::optional<Error> transport;
    try {
      reply = co_await send(ctx, plan, body, timeout);
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
      if (!reply->json_ok) fail("malformed_response", "OpenAI returned a body that is not JSON", {{"status", reply->status}});
      co_return std::move(reply->body);
    } else {
      std::string should = header(reply->headers, "x-should-retry");
      retry = should == "true" || (should != "false" && retryable_status(reply->status));
      wait = server_delay(reply->headers);
    }
    if (!retry || retries_used >= plan.max_retries) {
      if (transport) {
        fail(transport->code() == ErrorCode::timeout ? "timeout" : "network", transport->message(),
             {{"retries", retries_used}}, transport->code() == ErrorCode::timeout ? ErrorCode::timeout : ErrorCode::task_execution_failed);
      }
      json extra = {{"status", reply->status}, {"retries", retries_used}};
      std::string message = "OpenAI request failed with HTTP " + std::to_string(reply->status);
      if (reply->json_ok) {
        json api = api_error(reply->body);
        if (!api.empty()) {
          extra["api"] = api;
          if (api.contains("message")) message += ": " + api["message"].get<std::string>();
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

Plan make_plan(const json& input) {
  if (!input.is_object()) throw Error(ErrorCode::invalid_argument, "tasks.execute needs an object input");
  Plan plan;
  plan.task_name = text_field(input, "taskName");
  plan.task_type = text_field(input, "taskType");
  plan.progress = field(input, "progressPercent");
  plan.function = &field(input, "functionDefinition");
  plan.body = build_body(input);
  plan.function_name = (*plan.function)["name"].get<std::string>();
  const json& http = field(input, "http");
  plan.url = text_field(http, "url", "https://api.openai.com/v1/chat/completions");
  plan.timeout_ms = small_ms(field(http, "timeoutMs"), 600000);
  plan.max_retries = small_ms(field(http, "maxRetries"), 2);
  const json& deadline = field(http, "deadlineMs");
  if (deadline.is_number()) plan.deadline_ms = deadline.get<double>();
  plan.repair = field(http, "repair") == true;
  return plan;
}

// Compiled schemas, found by a hash of the schema's tree and then compared: a task's function
// definition is the same on every call, and compiling costs far more than validating (and
// serialising it to make a text key cost more than the validation). Bounded: cleared at 64.
std::shared_ptr<const schema::Schema> compiled(const json& parameters) {
  struct Entry {
    json parameters;
    std::shared_ptr<const schema::Schema> schema;
  };
  static std::unordered_multimap<std::size_t, Entry> cache;
  std::size_t hash = std::hash<json>{}(parameters);
  auto [first, last] = cache.equal_range(hash);
  for (auto it = first; it != last; ++it) {
    if (it->second.parameters == parameters) return it->second.schema;
  }
  auto schema = std::make_shared<const schema::Schema>(schema::Schema::compile(parameters));
  if (cache.size() >= 64) cache.clear();
  cache.emplace(hash, Entry{parameters, schema});
  return schema;
}

}  // namespace

bool is_reasoning_model(std::string_view model) noexcept {
  auto starts = [&](std::string_view prefix) { return model.substr(0, prefix.size()) == prefix; };
  return starts("o1") || starts("o3") || starts("o4") || starts("gpt-5");
}

Task<json> build_request(OpContext&, json input) {
  co_return make_plan(input).body;
}

Task<json> execute(OpContext& ctx, json input) {
  std::string task_name = text_field(input, "taskName");
  try {
    Plan plan = make_plan(input);
    const json& parameters = field(*plan.function, "parameters");
    std::shared_ptr<const schema::Schema> validator;
    if (!parameters.is_null()) validator = compiled(parameters);

    std::uint32_t retries = 0;
    json body = std::move(plan.body);
    bool repaired = false;
    for (;;) {
      json response = co_await send_with_retries(ctx, plan, body, retries);
      json arguments = tool_arguments(response, plan.function_name);
      std::vector<schema::Issue> issues;
      if (!arguments.is_object()) {
        issues.push_back({"$", "type", "$: expected the arguments to be an object"});
      } else if (validator) {
        issues = validator->validate(arguments);
      }
      if (issues.empty()) {
        json step = object_with_room(arguments.size() + 1);
        step["step"] = plan.task_name;
        for (auto& [key, value] : arguments.items()) {
          if (key != "step") step[key] = std::move(value);  // the task's name is not the model's to change
        }
        double now = co_await ctx.now();
        json result = object_with_room(3);
        result["success"] = true;
        result["stepResult"] = std::move(step);
        result["updatedCSI"] = updated_csi(input, plan, iso8601(now));
        co_return result;
      }
      json details = {{"issues", issues_json(issues)}, {"repaired", repaired}};
      std::string message = "Function arguments failed validation: " + issues.front().message;
      // One repair round: show the model its call and what was wrong, sharing the retry budget.
      if (plan.repair && !repaired && retries < plan.max_retries) {
        repaired = true;
        ++retries;
        const json& call = response["choices"][0]["message"]["tool_calls"][0];
        json assistant = {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", json::array({call})}};
        std::string feedback = "The arguments were rejected. Call " + plan.function_name + " again with arguments that satisfy the schema. Problems:";
        for (const auto& issue : issues) feedback += "\n- " + issue.message;
        body["messages"].push_back(assistant);
        body["messages"].push_back({{"role", "tool"}, {"tool_call_id", field(call, "id").is_string() ? call["id"] : json("call")}, {"content", feedback}});
        continue;
      }
      fail("schema_mismatch", message, details, ErrorCode::validation_failed);
    }
  } catch (const Error& e) {
    // Every failure, cancellation included, is a result: the original resolved, never rejected.
    co_return failed_result(input, task_name, e);
  }
}

}  // namespace agent_tools::tasks
