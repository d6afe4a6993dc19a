// The sans-I/O engine. The host drives it with three inputs -- start an operation, resume a host
// call with its reply, cancel an operation -- and collects the events they produced, after each
// input or after several (events accumulate until taken; the wasm driver feeds a batch at once):
//
//   {"call":C,"op":O,"kind":"kv","args":...}   perform host call C for operation O
//   {"abort":C}                                 call C is no longer wanted (cancel its I/O)
//   {"done":O,"value":...}                      operation O finished
//   {"done":O,"error":{"code","message"[,"details"]}}
//
// The driver reads them as an EventEnvelope (a table of 32-bit words and one text area the words
// point into: KV arguments arrive as plain strings, with no JSON to escape or parse); tests read
// the same events as one JSON array (take_events).
//
// Operations are C++20 coroutines; a host call suspends the calling coroutine until the host
// resumes it, so any number of operations can be in flight on one engine. The engine never blocks,
// never reads the clock or randomness and never calls out to the host: it only records requests.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <cstddef>
#include <vector>

#include "agent_tools/coro.hpp"
#include "agent_tools/error.hpp"
#include "agent_tools/json.hpp"
#include "agent_tools/json_text.hpp"

namespace agent_tools {

using OpId = std::uint32_t;    ///< chosen by the host when it starts an operation
using CallId = std::uint32_t;  ///< chosen by the engine for each host call

class Engine;
class OpContext;

namespace detail {
// Where the engine puts a host call's reply (JSON text) before resuming the waiting coroutine.
// The coroutine decodes it itself, into exactly the type it needs: no document tree on the way.
struct CallSlot {
  bool ok = false;
  std::string text;
};
/// Throws the Error a failed host call carries ({"code","message"[,"details"]} as JSON text).
[[noreturn]] void throw_host_failure(std::string_view text);

/// A map from 32-bit ids to values, in one array (open addressing, linear probing, deletion by
/// backward shift): inserting and erasing allocate nothing once it has grown, where
/// std::unordered_map allocates a node per entry -- two per host call on the engine's hot path.
template <class V>
class IdMap {
 public:
  V* find(std::uint32_t key) noexcept {
    std::size_t i = index_of(key);
    return i == slots_.size() ? nullptr : &slots_[i].value;
  }
  const V* find(std::uint32_t key) const noexcept { return const_cast<IdMap*>(this)->find(key); }
  bool contains(std::uint32_t key) const noexcept { return find(key) != nullptr; }

  /// Adds `key`, which must be absent. The reference is valid until the next insert or erase.
  V& insert(std::uint32_t key, V value) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    std::size_t i = home(key);
    while (slots_[i].used) i = (i + 1) & mask();
    slots_[i].key = key;
    slots_[i].used = true;
    slots_[i].value = std::move(value);
    ++size_;
    return slots_[i].value;
  }

  /// Removes `key` (and its value) if present.
  void erase(std::uint32_t key) noexcept {
    std::size_t hole = index_of(key);
    if (hole == slots_.size()) return;
    slots_[hole].value = V();
    slots_[hole].used = false;
    --size_;
    // Pull back later entries of the run that can no longer be reached past the hole.
    for (std::size_t i = (hole + 1) & mask(); slots_[i].used; i = (i + 1) & mask()) {
      std::size_t want = home(slots_[i].key);
      bool reachable = hole <= i ? (want > hole && want <= i) : (want > hole || want <= i);
      if (reachable) continue;
      slots_[hole] = std::move(slots_[i]);
      slots_[i].value = V();
      slots_[i].used = false;
      hole = i;
    }
  }

  std::size_t size() const noexcept { return size_; }
  void clear() noexcept {
    slots_.clear();
    size_ = 0;
  }

 private:
  struct Slot {
    std::uint32_t key = 0;
    bool used = false;
    V value{};
  };
  std::size_t mask() const noexcept { return slots_.size() - 1; }
  // The slot holding `key`, or slots_.size() when it is absent.
  std::size_t index_of(std::uint32_t key) const noexcept {
    if (size_ == 0) return slots_.size();
    for (std::size_t i = home(key);; i = (i + 1) & mask()) {
      if (!slots_[i].used) return slots_.size();
      if (slots_[i].key == key) return i;
    }
  }
  // Fibonacci hashing: consecutive ids land far apart.
  std::size_t home(std::uint32_t key) const noexcept {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 32) & mask();
  }
  void grow() {
    std::vector<Slot> old(slots_.empty() ? 16 : slots_.size() * 2);
    old.swap(slots_);
    size_ = 0;
    for (Slot& slot : old) {
      if (slot.used) insert(slot.key, std::move(slot.value));
    }
  }

  std::vector<Slot> slots_;  // a power of two in size
  std::size_t size_ = 0;
};

/// 32-bit words appended through room made ahead (as TextBuffer does for text).
class WordBuffer {
 public:
  [[gnu::always_inline]] void push(std::uint32_t word) {
    if (size_ == words_.size()) words_.resize(words_.empty() ? 64 : 2 * words_.size());
    words_[size_++] = word;
  }
  /// Overwrites the last word pushed (a length learnt after its text was written).
  void set_last(std::uint32_t word) noexcept { words_[size_ - 1] = word; }
  void clear() noexcept { size_ = 0; }
  std::size_t size() const noexcept { return size_; }
  std::size_t storage() const noexcept { return words_.size(); }
  const std::uint32_t* data() const noexcept { return words_.data(); }
  std::uint32_t operator[](std::size_t i) const noexcept { return words_[i]; }

 private:
  std::vector<std::uint32_t> words_;
  std::size_t size_ = 0;
};
}  // namespace detail

// The record tags of an EventEnvelope (EventTag) and the kv-JSON flag (kKvJsonFlag) are generated
// from core/constants.json with the other constants JS shares.

/// The events of the last input, valid until the next input.
struct EventEnvelope {
  const std::uint32_t* records = nullptr;
  std::size_t words = 0;
  const char* text = nullptr;
  std::size_t text_bytes = 0;
  bool ascii = true;  // the text is all ASCII: byte offsets are also UTF-16 offsets
};

/// A KV command for OpContext::kv, e.g. EVALSHA <sha> 2 <key> <key>:fence <value> <ttl>. Its
/// parts are views (which must outlive the call's emission: keep the command in the coroutine)
/// or integers, and are written as the call's JSON args straight into the engine's events, so
/// no strings are built for it.
class KvCommand {
 public:
  static constexpr std::size_t kMaxParts = 10;

  /// A part, or a part and a suffix joined into one (a key and ":fence"). The suffix is one of the
  /// core's own literals and is written as it is, unescaped.
  KvCommand& add(std::string_view text, std::string_view suffix = {});
  /// An integer, sent in decimal as Redis takes all arguments: as a string.
  KvCommand& add(std::int64_t number);
  void replace(std::size_t index, std::string_view text);

  std::size_t size() const noexcept { return count_; }
  std::string_view name() const noexcept { return count_ ? parts_[0].text : std::string_view(); }
  /// Appends the command as a JSON array of strings.
  void write_json(TextBuffer& out) const;

 private:
  friend class Engine;
  struct Part {
    std::string_view text, suffix;
    std::int64_t number = 0;
    bool is_number = false;
  };
  std::array<Part, kMaxParts> parts_{};
  std::size_t count_ = 0;
};

/// Awaiting this emits one host call and suspends until the host answers. `Decode` turns the
/// reply text (handed over, not copied: an HTTP reply can be megabytes) into T and throws
/// HOST_BAD_REPLY when the host sent the wrong shape.
template <class T>
class HostCall {
 public:
  using Decode = T (*)(std::string&& reply);
  /// `args` is the call's arguments as JSON text, or empty for none.
  HostCall(OpContext& ctx, HostCallKind kind, std::string args, Decode decode)
      : ctx_(ctx), kind_(kind), args_(std::move(args)), decode_(decode) {}
  /// A KV call whose args `command` writes into the events when the call is made.
  HostCall(OpContext& ctx, const KvCommand& command, Decode decode)
      : ctx_(ctx), kind_(HostCallKind::kv), command_(&command), decode_(decode) {}
  /// A KV call with its arguments as strings; `list` must outlive the await.
  HostCall(OpContext& ctx, const std::vector<std::string>& list, Decode decode)
      : ctx_(ctx), kind_(HostCallKind::kv), list_(&list), decode_(decode) {}
  /// Already answered (e.g. the clock the last input carried): awaiting it does not suspend.
  static HostCall answered(OpContext& ctx, HostCallKind kind, T value) {
    HostCall call(ctx, kind, {}, nullptr);
    call.ready_ = true;
    call.value_ = std::move(value);
    return call;
  }

  bool await_ready();
  void await_suspend(coro::coroutine_handle<> waiter);
  T await_resume() {
    if (decode_ == nullptr) return std::move(value_);
    if (cancelled_) throw Error(ErrorCode::cancelled, "operation cancelled");
    if (!slot_.ok) detail::throw_host_failure(slot_.text);
    return decode_(std::move(slot_.text));
  }

 private:
  OpContext& ctx_;
  HostCallKind kind_;
  std::string args_;
  const KvCommand* command_ = nullptr;  // args to write instead of args_
  const std::vector<std::string>* list_ = nullptr;  // ditto
  Decode decode_;
  detail::CallSlot slot_;
  T value_{};
  bool ready_ = false;
  bool cancelled_ = false;
};

/// What an operation sees of the world. Each method is one host call.
class OpContext {
 public:
  OpContext(Engine& engine, OpId id) noexcept : engine_(engine), id_(id) {}

  /// A Redis command, e.g. {"SET", key, value, "NX", "PX", "900000"}. The reply is JSON text:
  /// null, integer, string, array, or {"error": text} for a Redis error reply. `args` must
  /// outlive the await.
  HostCall<std::string> kv(const std::vector<std::string>& args);
  /// The same without building strings (see KvCommand); `command` must outlive the await.
  HostCall<std::string> kv(const KvCommand& command);
  /// {method, url, headers, body, timeoutMs} -> {status, headers, body}, both as JSON text.
  HostCall<std::string> http(std::string request);
  HostCall<std::nullptr_t> sleep(std::uint32_t ms);
  /// Milliseconds since the Unix epoch: the time the host passed with the current input (as
  /// sans-I/O protocols take `now` with each event), or a `now` host call if it passed none.
  HostCall<double> now();
  /// `count` random bytes as lowercase hex, served from an entropy pool the engine refills from
  /// the host's CSPRNG in larger batches, so most requests cost no round trip.
  Task<std::string> random_hex(std::uint32_t count);
  /// The same when the pool holds enough: writes 2 * `count` hex digits to `out` and returns
  /// true, or returns false (nothing taken) when random_hex must refill it.
  bool take_random_hex(std::uint32_t count, char* out) noexcept;
  /// The raw host calls, one round trip each.
  HostCall<double> host_now();
  HostCall<std::string> host_random_hex(std::uint32_t count);

  OpId id() const noexcept { return id_; }
  bool cancelled() const noexcept;
  /// Also send each KvCommand of this operation as one JSON array text (for a host that puts
  /// commands on the wire as JSON, e.g. Upstash REST: escaping here costs less than JSON.stringify
  /// of the arguments there). See EventTag.
  void send_kv_json(bool on) noexcept { kv_json_ = on; }

  /// An empty string with the capacity of an earlier operation's result or scratch text, for
  /// writing this operation's without growing a new buffer.
  std::string reusable_buffer() noexcept;
  /// Hands a scratch buffer (or the operation's input, once read) back for reuse; results are
  /// taken back by the engine itself.
  void keep_buffer(std::string&& buffer) noexcept;

 private:
  template <class T>
  friend class HostCall;
  friend class Engine;
  Engine& engine_;
  OpId id_;
  bool kv_json_ = false;
};

struct EngineStats {
  std::size_t live_operations = 0;
  std::size_t pending_calls = 0;
  std::uint64_t started = 0;
  std::uint64_t finished = 0;
  std::uint64_t stale_replies = 0;  ///< replies for calls already aborted or unknown
  std::size_t live_frames = 0;         ///< coroutine frames allocated from the engine's pool
  std::size_t cached_frame_bytes = 0;  ///< idle frames the pool keeps for reuse
};

class Engine {
 public:
  Engine();
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// The host's clock (ms since the epoch) at the input about to be given; read by OpContext::now.
  void set_clock(double now_ms) noexcept { clock_ = now_ms; }

  /// Starts operation `name` with a JSON input. `op` must not be in flight already.
  void start(OpId op, std::string_view name, std::string_view input_json);
  /// Delivers the reply to host call `call`: a JSON value when ok, else {"code","message"}.
  void resume(CallId call, bool ok, std::string_view reply_json);
  /// Aborts every pending host call of `op` with CANCELLED; the operation then finishes with
  /// CANCELLED unless its code handles the error. Unknown or finished ops are ignored.
  void cancel(OpId op);

  /// The events produced by the last input, as the driver reads them. Valid until the next
  /// input; the buffers behind it are reused, so a steady stream of inputs allocates nothing.
  EventEnvelope take_envelope();
  /// The same events as one JSON array (for tests and tools), valid until the next input.
  std::string_view take_events();
  EngineStats stats() const noexcept;

 private:
  struct Operation;
  struct PendingCall {
    Operation* op = nullptr;
    coro::coroutine_handle<> waiter;
    detail::CallSlot* slot = nullptr;
  };
  template <class T>
  friend class HostCall;
  friend class OpContext;

  CallId emit_call(OpId op, HostCallKind kind, std::string_view args, const KvCommand* command,
                   const std::vector<std::string>* list, coro::coroutine_handle<> waiter,
                   detail::CallSlot* slot);
  void deliver(CallId call, bool ok, std::string_view text);
  void run(OpId op, coro::coroutine_handle<> step);
  void finish(OpId op, bool ok, std::string_view payload);
  void fail(OpId op, const Error& error);
  void begin_event(EventTag tag);
  void push_text(std::string_view text, std::string_view suffix = {});
  void emit_abort(CallId call);
  bool is_cancelled(OpId op) const noexcept;

  void recycle(std::unique_ptr<Operation> operation) noexcept;
  void keep_buffer(std::string&& buffer) noexcept;

  // Where the operations' coroutine frames come from. Declared first so it goes last: every
  // frame lives in an operation.
  FramePool frames_;
  detail::IdMap<std::unique_ptr<Operation>> operations_;
  // Finished operations, for reuse: as many as a batch typically starts at once.
  static constexpr std::size_t kSpareOperations = 256;
  std::vector<std::unique_ptr<Operation>> spare_operations_;
  // Finished operations' inputs, results and scratch texts, kept for their capacity (small ones
  // only, at most 4 KiB each). A lock cycle passes eight texts through here, and a batch starts
  // dozens of operations at once: enough for 64 cycles in flight.
  std::array<std::string, 512> spare_buffers_;
  std::size_t spare_buffer_count_ = 0;
  detail::IdMap<PendingCall> calls_;
  CallId next_call_ = 1;
  double clock_ = -1;        // < 0: the host passes no clock; ask it
  std::string entropy_;      // unused random bytes, as hex
  detail::WordBuffer records_;  // the events' records (see EventTag)
  TextBuffer text_;             // the texts they point into
  TextBuffer json_;             // take_events' rendering
  bool events_taken_ = false;   // the events were handed out: the next event starts afresh
  EngineStats counters_;
};

template <class T>
bool HostCall<T>::await_ready() {
  if (ready_) return true;
  // A cancelled operation gets no new I/O: the call fails at once.
  cancelled_ = ctx_.cancelled();
  return cancelled_;
}

template <class T>
void HostCall<T>::await_suspend(coro::coroutine_handle<> waiter) {
  ctx_.engine_.emit_call(ctx_.id_, kind_, args_, command_, list_, waiter, &slot_);
  ctx_.keep_buffer(std::move(args_));  // written into the events: its storage serves another text
}

}  // namespace agent_tools
