#include "agent_tools/engine.hpp"

#include <algorithm>
#include <new>

#include "agent_tools/operations.hpp"

namespace agent_tools {

struct Engine::Operation {
  Operation(Engine& engine, OpId id) : context(engine, id) {}
  OpContext context;
  Task<json> task;
  std::vector<CallId> pending;  // host calls in flight, in the order they were made
  bool cancelled = false;
};

// --- OpContext: the typed host calls --------------------------------------------------------

namespace {

json keep(json&& reply) { return std::move(reply); }

std::nullptr_t expect_null(json&& reply) {
  if (!reply.is_null()) throw Error(ErrorCode::host_bad_reply, "sleep must resolve to null");
  return nullptr;
}

double expect_time(json&& reply) {
  if (!reply.is_number() || reply.get<double>() < 0) {
    throw Error(ErrorCode::host_bad_reply, "now must return milliseconds since the epoch");
  }
  return reply.get<double>();
}

std::string expect_hex(json&& reply) {
  if (!reply.is_string()) throw Error(ErrorCode::host_bad_reply, "random must return hex text");
  auto hex = reply.get<std::string>();
  bool valid = hex.size() % 2 == 0 && std::all_of(hex.begin(), hex.end(), [](char c) {
                 return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
               });
  if (!valid) throw Error(ErrorCode::host_bad_reply, "random must return lowercase hex");
  return hex;
}

}  // namespace

HostCall<json> OpContext::kv(std::vector<std::string> args) {
  return {*this, HostCallKind::kv, json(std::move(args)), &keep};
}

HostCall<json> OpContext::http(json request) {
  return {*this, HostCallKind::http, std::move(request), &keep};
}

HostCall<std::nullptr_t> OpContext::sleep(std::uint32_t ms) {
  return {*this, HostCallKind::sleep, json{{"ms", ms}}, &expect_null};
}

HostCall<double> OpContext::host_now() { return {*this, HostCallKind::now, nullptr, &expect_time}; }

HostCall<double> OpContext::now() {
  if (engine_.clock_ < 0) return host_now();
  return HostCall<double>::answered(*this, HostCallKind::now, engine_.clock_, &expect_time);
}

Task<std::string> OpContext::random_hex(std::uint32_t count) {
  constexpr std::uint32_t kRefillBytes = 256;
  std::string& pool = engine_.entropy_;
  std::size_t want = std::size_t{count} * 2;
  if (pool.size() < want) pool += co_await host_random_hex(std::max(count, kRefillBytes));
  // The pool belongs to the engine, so take the bytes only now: another operation may have used
  // or refilled it while this one waited.
  if (pool.size() < want) throw Error(ErrorCode::host_bad_reply, "random returned fewer bytes than asked for");
  std::string out = pool.substr(pool.size() - want);
  pool.resize(pool.size() - want);
  co_return out;
}

HostCall<std::string> OpContext::host_random_hex(std::uint32_t count) {
  if (count > MAX_RANDOM_BYTES) {
    throw Error(ErrorCode::invalid_argument, "random request exceeds MAX_RANDOM_BYTES");
  }
  return {*this, HostCallKind::random, json{{"bytes", count}}, &expect_hex};
}

bool OpContext::cancelled() const noexcept { return engine_.is_cancelled(id_); }

// --- Engine -----------------------------------------------------------------------------------

Engine::Engine() = default;

Engine::~Engine() {
  // Pending calls point into coroutine frames: forget them before the frames go.
  calls_.clear();
  operations_.clear();
}

// Events are written straight into the output text: building a json object per event only to
// serialise it again showed up as the largest cost of a host call.
std::string& Engine::begin_event() {
  events_ += events_.empty() ? '[' : ',';
  return events_;
}

void Engine::emit_abort(CallId call) {
  begin_event() += "{\"abort\":" + std::to_string(call) + '}';
}

void Engine::emit_done(OpId op, const char* key, const json& payload) {
  auto& out = begin_event();
  out += "{\"done\":" + std::to_string(op) + ",\"" + key + "\":";
  write_json(out, payload);
  out += '}';
}

std::string Engine::take_events() {
  if (events_.empty()) return "[]";
  events_ += ']';
  return std::exchange(events_, std::string());
}

EngineStats Engine::stats() const noexcept {
  EngineStats s = counters_;
  s.live_operations = operations_.size();
  s.pending_calls = calls_.size();
  return s;
}

bool Engine::is_cancelled(OpId op) const noexcept {
  auto it = operations_.find(op);
  return it != operations_.end() && it->second->cancelled;
}

CallId Engine::emit_call(OpId op, HostCallKind kind, const json& args,
                         coro::coroutine_handle<> waiter, detail::CallSlot* slot) {
  // Ids wrap after 2^32 calls; skip 0 and any id still in flight.
  while (next_call_ == 0 || calls_.count(next_call_)) ++next_call_;
  CallId id = next_call_++;
  Operation* owner = operations_.at(op).get();
  calls_.emplace(id, PendingCall{owner, waiter, slot});
  owner->pending.push_back(id);
  auto& out = begin_event();
  out += "{\"call\":" + std::to_string(id) + ",\"op\":" + std::to_string(op) + ",\"kind\":\"";
  out += to_string(kind);
  out += '"';
  if (!args.is_null()) {
    out += ",\"args\":";
    write_json(out, args);
  }
  out += '}';
  return id;
}

void Engine::finish(OpId op, bool ok, const json& payload) {
  auto it = operations_.find(op);
  if (it == operations_.end()) return;
  // A finished operation leaves nothing in flight (possible once operations fan out).
  for (CallId call : it->second->pending) {
    calls_.erase(call);
    emit_abort(call);
  }
  emit_done(op, ok ? "value" : "error", payload);
  operations_.erase(it);
  ++counters_.finished;
}

// Runs one step of an operation (its first, or the continuation after a host call) and, when the
// coroutine has finished, reports its outcome. Every exception is turned into a typed `done`.
void Engine::run(OpId op, coro::coroutine_handle<> step) {
  json error;
  try {
    step.resume();
    Operation& operation = *operations_.at(op);
    if (!operation.task.done()) return;
    json value = operation.task.result();
    finish(op, true, value);
    return;
  } catch (const Error& e) {
    error = e.to_json();
  } catch (const std::bad_alloc&) {
    error = Error(ErrorCode::input_too_large, "out of memory").to_json();
  } catch (const std::exception& e) {
    error = Error(ErrorCode::internal, std::string("internal error: ") + e.what()).to_json();
  } catch (...) {
    error = Error(ErrorCode::internal, "internal error").to_json();
  }
  finish(op, false, error);
}

void Engine::start(OpId op, std::string_view name, std::string_view input_json) {
  ++counters_.started;
  if (operations_.count(op)) {
    // Host bug: ids must be unique among live operations. Report it on the id's stream without
    // disturbing the live operation.
    begin_event() += "{\"fault\":\"operation id " + std::to_string(op) + " is already in flight\"}";
    return;
  }
  OperationFn fn = find_operation(name);
  auto& slot = operations_[op];
  slot = std::make_unique<Operation>(*this, op);
  try {
    if (!fn) throw Error(ErrorCode::unknown_operation, "unknown operation: " + std::string(name));
    slot->task = fn(slot->context, parse_json(input_json, ErrorCode::invalid_argument, "input"));
  } catch (const Error& e) {
    finish(op, false, e.to_json());
    return;
  } catch (const std::bad_alloc&) {
    finish(op, false, Error(ErrorCode::input_too_large, "out of memory").to_json());
    return;
  }
  run(op, slot->task.handle());
}

void Engine::deliver(CallId call, bool ok, json value) {
  auto it = calls_.find(call);
  if (it == calls_.end()) {
    ++counters_.stale_replies;  // aborted, or answered twice: nothing waits for it any more
    return;
  }
  PendingCall pending = it->second;
  calls_.erase(it);
  auto& list = pending.op->pending;
  list.erase(std::find(list.begin(), list.end(), call));
  pending.slot->ok = ok;
  pending.slot->value = std::move(value);
  run(pending.op->context.id(), pending.waiter);
}

void Engine::resume(CallId call, bool ok, std::string_view reply_json) {
  if (!calls_.count(call)) {
    ++counters_.stale_replies;
    return;
  }
  try {
    json reply = parse_json(reply_json, ErrorCode::host_bad_reply, "host reply");
    deliver(call, ok, std::move(reply));
  } catch (const Error& e) {
    deliver(call, false, e.to_json());
  } catch (const std::bad_alloc&) {
    deliver(call, false, Error(ErrorCode::input_too_large, "host reply too large").to_json());
  }
}

void Engine::cancel(OpId op) {
  auto it = operations_.find(op);
  if (it == operations_.end()) return;
  it->second->cancelled = true;
  const json cancelled = Error(ErrorCode::cancelled, "operation cancelled").to_json();
  // Each delivery may finish the operation (erasing it), so look it up again every round.
  for (;;) {
    auto live = operations_.find(op);
    if (live == operations_.end() || live->second->pending.empty()) return;
    CallId call = live->second->pending.front();
    emit_abort(call);
    deliver(call, false, cancelled);
  }
}

}  // namespace agent_tools
