#include "agent_tools/engine.hpp"

#include <algorithm>
#include <cstring>
#include <new>

#include "agent_tools/json_text.hpp"
#include "agent_tools/operations.hpp"

namespace agent_tools {

using namespace std::literals;  // "..."sv: literals whose length the compiler knows

// Finished operations are kept for reuse (with the capacity of `pending`), so starting one
// usually allocates nothing for its bookkeeping.
struct Engine::Operation {
  Operation(Engine& engine, OpId id) : context(engine, id) {}
  OpContext context;
  Task<std::string> task;  // the value's JSON text
  std::vector<CallId> pending;  // host calls in flight, in the order they were made
  bool cancelled = false;
};

// --- OpContext: the typed host calls --------------------------------------------------------

namespace detail {

void throw_host_failure(std::string_view text) {
  json error;
  try {
    error = parse_json(text, ErrorCode::host_bad_reply, "host error");
  } catch (const Error& e) {
    throw Error(ErrorCode::host_bad_reply, "the host reported a failure that is not JSON: " + e.message());
  }
  throw Error::from_json(error, ErrorCode::host_error);
}

}  // namespace detail

namespace {

std::string keep_text(std::string&& reply) { return std::move(reply); }

std::nullptr_t expect_null(std::string&& reply) {
  JsonReader reader(reply, ErrorCode::host_bad_reply, "host reply");
  if (reader.peek() != JsonKind::null) throw Error(ErrorCode::host_bad_reply, "sleep must resolve to null");
  reader.read_null();
  reader.finish();
  return nullptr;
}

double expect_time(std::string&& reply) {
  JsonReader reader(reply, ErrorCode::host_bad_reply, "host reply");
  double ms = reader.peek() == JsonKind::number ? reader.read_number() : -1;
  reader.finish();
  if (ms < 0) throw Error(ErrorCode::host_bad_reply, "now must return milliseconds since the epoch");
  return ms;
}

std::string expect_hex(std::string&& reply) {
  JsonReader reader(reply, ErrorCode::host_bad_reply, "host reply");
  if (reader.peek() != JsonKind::string) throw Error(ErrorCode::host_bad_reply, "random must return hex text");
  std::string hex = reader.read_string();
  reader.finish();
  bool valid = hex.size() % 2 == 0 && std::all_of(hex.begin(), hex.end(), [](char c) {
                 return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
               });
  if (!valid) throw Error(ErrorCode::host_bad_reply, "random must return lowercase hex");
  return hex;
}

}  // namespace

HostCall<std::string> OpContext::kv(const std::vector<std::string>& args) { return {*this, args, &keep_text}; }

KvCommand& KvCommand::add(std::string_view text, std::string_view suffix) {
  if (count_ == kMaxParts) throw Error(ErrorCode::internal, "KV command has too many parts");
  parts_[count_++] = Part{text, suffix, 0, false};
  return *this;
}

KvCommand& KvCommand::add(std::int64_t number) {
  if (count_ == kMaxParts) throw Error(ErrorCode::internal, "KV command has too many parts");
  parts_[count_++] = Part{{}, {}, number, true};
  return *this;
}

void KvCommand::replace(std::size_t index, std::string_view text) {
  if (index < count_) parts_[index] = Part{text, {}, 0, false};
}

void KvCommand::write_json(TextBuffer& out) const {
  out.push_back('[');
  for (std::size_t i = 0; i < count_; ++i) {
    if (i) out.push_back(',');
    const Part& part = parts_[i];
    if (part.is_number) {
      out.push_back('"');
      append_integer(out, part.number);
      out.push_back('"');
      continue;
    }
    write_json_string(out, part.text);
    if (!part.suffix.empty()) {
      out.pop_back();  // the closing quote: the suffix goes inside
      out.append(part.suffix);
      out.push_back('"');
    }
  }
  out.push_back(']');
}

HostCall<std::string> OpContext::kv(const KvCommand& command) { return {*this, command, &keep_text}; }

HostCall<std::string> OpContext::http(std::string request) {
  return {*this, HostCallKind::http, std::move(request), &keep_text};
}

HostCall<std::nullptr_t> OpContext::sleep(std::uint32_t ms) {
  return {*this, HostCallKind::sleep, "{\"ms\":" + std::to_string(ms) + '}', &expect_null};
}

HostCall<double> OpContext::host_now() { return {*this, HostCallKind::now, {}, &expect_time}; }

HostCall<double> OpContext::now() {
  if (engine_.clock_ < 0) return host_now();
  return HostCall<double>::answered(*this, HostCallKind::now, engine_.clock_);
}

Task<std::string> OpContext::random_hex(std::uint32_t count) {
  constexpr std::uint32_t kRefillBytes = MAX_RANDOM_BYTES;  // one host call per 128 lock ids
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

bool OpContext::take_random_hex(std::uint32_t count, char* out) noexcept {
  std::string& pool = engine_.entropy_;
  std::size_t want = std::size_t{count} * 2;
  if (pool.size() < want) return false;
  pool.copy(out, want, pool.size() - want);
  pool.resize(pool.size() - want);
  return true;
}

HostCall<std::string> OpContext::host_random_hex(std::uint32_t count) {
  if (count > MAX_RANDOM_BYTES) {
    throw Error(ErrorCode::invalid_argument, "random request exceeds MAX_RANDOM_BYTES");
  }
  return {*this, HostCallKind::random, "{\"bytes\":" + std::to_string(count) + '}', &expect_hex};
}

bool OpContext::cancelled() const noexcept { return engine_.is_cancelled(id_); }

std::string OpContext::reusable_buffer() noexcept {
  if (engine_.spare_buffer_count_ == 0) return {};
  std::string buffer = std::move(engine_.spare_buffers_[--engine_.spare_buffer_count_]);
  buffer.clear();
  return buffer;
}

void OpContext::keep_buffer(std::string&& buffer) noexcept { engine_.keep_buffer(std::move(buffer)); }

void Engine::keep_buffer(std::string&& buffer) noexcept {
  // Small ones only (a buffer that once held a large result should not stay allocated), and
  // none too short to save an allocation.
  if (spare_buffer_count_ == spare_buffers_.size() || buffer.capacity() > 4096 || buffer.capacity() < 64) return;
  spare_buffers_[spare_buffer_count_++] = std::move(buffer);
}

// --- Engine -----------------------------------------------------------------------------------

Engine::Engine() = default;

Engine::~Engine() {
  // Pending calls point into coroutine frames: forget them before the frames go.
  calls_.clear();
  operations_.clear();
}

// Events are written straight into the records and their text: building a json object per event
// only to serialise it again showed up as the largest cost of a host call, and the driver's
// JSON.parse of event arrays as the largest cost on the JS side.
void Engine::begin_event(EventTag tag) {
  if (events_taken_) {
    events_taken_ = false;
    // Keep the buffers for the next input, unless one huge event left them oversized.
    if (text_.storage() > (1u << 20)) text_ = TextBuffer();
    if (records_.storage() > (1u << 16)) records_ = detail::WordBuffer();
    text_.clear();
    records_.clear();
  }
  records_.push(static_cast<std::uint32_t>(tag));
}

// A text of the current record: its offset and length, then its bytes in the text area.
void Engine::push_text(std::string_view text, std::string_view suffix) {
  records_.push(static_cast<std::uint32_t>(text_.size()));
  records_.push(static_cast<std::uint32_t>(text.size() + suffix.size()));
  text_.append(text);
  if (!suffix.empty()) text_.append(suffix);
}

void Engine::emit_abort(CallId call) {
  begin_event(EventTag::abort);
  records_.push(call);
}

namespace {

bool all_ascii(std::string_view text) noexcept {
  std::uint64_t seen = 0;
  std::size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    seen |= word;
  }
  for (; i < text.size(); ++i) seen |= static_cast<unsigned char>(text[i]);
  return (seen & 0x8080808080808080ull) == 0;
}

}  // namespace

EventEnvelope Engine::take_envelope() {
  if (events_taken_) {  // nothing since the last take
    text_.clear();
    records_.clear();
  }
  events_taken_ = true;
  std::string_view text = text_.view();
  return {records_.data(), records_.size(), text.data(), text.size(), all_ascii(text)};
}

std::string_view Engine::take_events() {
  EventEnvelope events = take_envelope();
  const std::uint32_t* r = events.records;
  auto text = [&](std::size_t at) { return std::string_view(events.text + r[at], r[at + 1]); };
  json_.clear();
  json_.push_back('[');
  for (std::size_t i = 0; i < events.words;) {
    if (i) json_.push_back(',');
    switch (static_cast<EventTag>(r[i])) {
      case EventTag::call: {
        auto kind = static_cast<HostCallKind>(r[i + 3] & ~kKvJsonFlag);
        bool args_json = (r[i + 3] & kKvJsonFlag) != 0;  // the args are one JSON array text
        std::uint32_t argc = r[i + 4];
        json_.append("{\"call\":"sv);
        append_integer(json_, r[i + 1]);
        json_.append(",\"op\":"sv);
        append_integer(json_, r[i + 2]);
        json_.append(",\"kind\":\""sv);
        json_.append(to_string(kind));
        json_.push_back('"');
        if (args_json) {
          json_.append(",\"args\":"sv);
          json_.append(text(i + 5));
        } else if (kind == HostCallKind::kv) {
          json_.append(",\"args\":["sv);
          for (std::uint32_t a = 0; a < argc; ++a) {
            if (a) json_.push_back(',');
            write_json_string(json_, text(i + 5 + 2 * a));
          }
          json_.push_back(']');
        } else if (argc) {
          json_.append(",\"args\":"sv);
          json_.append(text(i + 5));
        }
        json_.push_back('}');
        i += 5 + 2 * std::size_t{argc};
        break;
      }
      case EventTag::abort:
        json_.append("{\"abort\":"sv);
        append_integer(json_, r[i + 1]);
        json_.push_back('}');
        i += 2;
        break;
      case EventTag::done:
        json_.append("{\"done\":"sv);
        append_integer(json_, r[i + 1]);
        json_.append(r[i + 2] ? ",\"value\":"sv : ",\"error\":"sv);
        json_.append(text(i + 3));
        json_.push_back('}');
        i += 5;
        break;
      case EventTag::fault:
        json_.append("{\"fault\":"sv);
        write_json_string(json_, text(i + 1));
        json_.push_back('}');
        i += 3;
        break;
    }
  }
  json_.push_back(']');
  return json_.view();
}

EngineStats Engine::stats() const noexcept {
  EngineStats s = counters_;
  s.live_operations = operations_.size();
  s.pending_calls = calls_.size();
  s.live_frames = frames_.live_frames();
  s.cached_frame_bytes = frames_.cached_bytes();
  return s;
}

bool Engine::is_cancelled(OpId op) const noexcept {
  const auto* operation = operations_.find(op);
  return operation && (*operation)->cancelled;
}

CallId Engine::emit_call(OpId op, HostCallKind kind, std::string_view args, const KvCommand* command,
                         const std::vector<std::string>* list, coro::coroutine_handle<> waiter,
                         detail::CallSlot* slot) {
  // Ids wrap after 2^32 calls; skip 0 and any id still in flight.
  while (next_call_ == 0 || calls_.contains(next_call_)) ++next_call_;
  CallId id = next_call_++;
  auto* operation = operations_.find(op);
  if (!operation) throw Error(ErrorCode::internal, "host call from an operation that is not running");
  Operation* owner = operation->get();
  calls_.insert(id, PendingCall{owner, waiter, slot});
  owner->pending.push_back(id);
  begin_event(EventTag::call);
  records_.push(id);
  records_.push(op);
  bool with_json = command && owner->context.kv_json_;
  records_.push(static_cast<std::uint32_t>(kind) | (with_json ? kKvJsonFlag : 0));
  if (command && with_json) {
    // One JSON array text, for a store that sends JSON anyway (see kvJsonFlag).
    records_.push(1);
    std::size_t at = text_.size();
    records_.push(static_cast<std::uint32_t>(at));
    records_.push(0);
    command->write_json(text_);
    records_.set_last(static_cast<std::uint32_t>(text_.size() - at));
  } else if (command) {
    // Arguments go out as they are: no escaping here and no JSON to parse in the driver.
    records_.push(static_cast<std::uint32_t>(command->count_));
    for (std::size_t i = 0; i < command->count_; ++i) {
      const KvCommand::Part& part = command->parts_[i];
      if (part.is_number) {
        records_.push(static_cast<std::uint32_t>(text_.size()));
        std::size_t at = text_.size();
        records_.push(0);
        append_integer(text_, part.number);
        records_.set_last(static_cast<std::uint32_t>(text_.size() - at));
      } else {
        push_text(part.text, part.suffix);
      }
    }
  } else if (list) {
    records_.push(static_cast<std::uint32_t>(list->size()));
    for (const std::string& arg : *list) push_text(arg);
  } else if (!args.empty()) {
    records_.push(1);
    push_text(args);
  } else {
    records_.push(0);
  }
  return id;
}

// `payload` is the value's JSON text (ok) or the error's (not ok).
void Engine::finish(OpId op, bool ok, std::string_view payload) {
  auto* operation = operations_.find(op);
  if (!operation) return;
  // A finished operation leaves nothing in flight (possible once operations fan out).
  for (CallId call : (*operation)->pending) {
    calls_.erase(call);
    emit_abort(call);
  }
  begin_event(EventTag::done);
  records_.push(op);
  records_.push(ok ? 1 : 0);
  push_text(payload);
  std::unique_ptr<Operation> finished = std::move(*operation);
  operations_.erase(op);
  recycle(std::move(finished));
  ++counters_.finished;
}

void Engine::recycle(std::unique_ptr<Operation> operation) noexcept {
  operation->task = Task<std::string>();  // frees the coroutine frames
  operation->pending.clear();
  operation->cancelled = false;
  if (spare_operations_.size() < kSpareOperations && operation->pending.capacity() <= 16) {
    // (push_back cannot fail: start reserves the spare list's whole capacity)
    spare_operations_.push_back(std::move(operation));
  }
}

void Engine::fail(OpId op, const Error& error) { finish(op, false, dump_json(error.to_json())); }

// Runs one step of an operation (its first, or the continuation after a host call) and, when the
// coroutine has finished, reports its outcome. Every exception is turned into a typed `done`.
void Engine::run(OpId op, coro::coroutine_handle<> step) {
  try {
    step.resume();
    auto* live = operations_.find(op);
    if (!live) throw Error(ErrorCode::internal, "operation vanished while it ran");
    Operation& operation = **live;
    if (!operation.task.done()) return;
    std::string value = operation.task.result();
    finish(op, true, value);
    keep_buffer(std::move(value));  // its capacity serves the next operation's result
    return;
  } catch (const Error& e) {
    fail(op, e);
  } catch (const std::bad_alloc&) {
    fail(op, Error(ErrorCode::input_too_large, "out of memory"));
  } catch (const std::exception& e) {
    fail(op, Error(ErrorCode::internal, std::string("internal error: ") + e.what()));
  } catch (...) {
    fail(op, Error(ErrorCode::internal, "internal error"));
  }
}

void Engine::start(OpId op, std::string_view name, std::string_view input_json) {
  FramePool::Use frames(frames_);
  ++counters_.started;
  if (operations_.contains(op)) {
    // Host bug: ids must be unique among live operations. Report it on the id's stream without
    // disturbing the live operation.
    begin_event(EventTag::fault);
    push_text("operation id " + std::to_string(op) + " is already in flight");
    return;
  }
  OperationFn fn = find_operation(name);
  auto& slot = operations_.insert(op, nullptr);
  if (spare_operations_.empty()) {
    spare_operations_.reserve(kSpareOperations);
    slot = std::make_unique<Operation>(*this, op);
  } else {
    slot = std::move(spare_operations_.back());
    spare_operations_.pop_back();
    slot->context.id_ = op;
    slot->context.kv_json_ = false;
  }
  try {
    if (!fn) throw Error(ErrorCode::unknown_operation, "unknown operation: " + std::string(name));
    if (input_json.size() > MAX_MESSAGE_BYTES) {
      throw Error(ErrorCode::input_too_large, "input is " + std::to_string(input_json.size()) +
                                                  " bytes; the limit is " + std::to_string(MAX_MESSAGE_BYTES));
    }
    std::string input = slot->context.reusable_buffer();  // an op may give its input back for this
    input.assign(input_json);
    slot->task = fn(slot->context, std::move(input));
  } catch (const Error& e) {
    fail(op, e);
    return;
  } catch (const std::bad_alloc&) {
    fail(op, Error(ErrorCode::input_too_large, "out of memory"));
    return;
  }
  run(op, slot->task.handle());
}

void Engine::deliver(CallId call, bool ok, std::string_view text) {
  const PendingCall* found = calls_.find(call);
  if (!found) {
    ++counters_.stale_replies;  // aborted, or answered twice: nothing waits for it any more
    return;
  }
  PendingCall pending = *found;
  calls_.erase(call);
  auto& list = pending.op->pending;
  list.erase(std::find(list.begin(), list.end(), call));
  pending.slot->ok = ok;
  // Into an earlier text's storage where there is one (the slot is new with each host call).
  if (pending.slot->text.capacity() < text.size() && spare_buffer_count_ > 0) {
    pending.slot->text = std::move(spare_buffers_[--spare_buffer_count_]);
  }
  pending.slot->text.assign(text);
  run(pending.op->context.id(), pending.waiter);
}

// The reply is handed over as text; the awaiting coroutine decodes (and validates) it.
void Engine::resume(CallId call, bool ok, std::string_view reply_json) {
  FramePool::Use frames(frames_);
  if (!calls_.contains(call)) {
    ++counters_.stale_replies;
    return;
  }
  if (reply_json.size() > MAX_MESSAGE_BYTES) {
    deliver(call, false, dump_json(Error(ErrorCode::input_too_large, "host reply too large").to_json()));
    return;
  }
  deliver(call, ok, reply_json);
}

void Engine::cancel(OpId op) {
  FramePool::Use frames(frames_);
  auto* operation = operations_.find(op);
  if (!operation) return;
  (*operation)->cancelled = true;
  const std::string cancelled = dump_json(Error(ErrorCode::cancelled, "operation cancelled").to_json());
  // Each delivery may finish the operation (erasing it), so look it up again every round.
  for (;;) {
    auto* live = operations_.find(op);
    if (!live || (*live)->pending.empty()) return;
    CallId call = (*live)->pending.front();
    emit_abort(call);
    deliver(call, false, cancelled);
  }
}

}  // namespace agent_tools
