// The boundary: one class, Engine, whose life embind manages, and three plain exports that each
// feed one input to it and report the events it produced (an EventEnvelope left in wasm memory
// for the driver to copy out at once). Nothing here calls back into JS, so nothing can re-enter.
//
// Memory ownership across the boundary:
// - Documents going in (operation inputs, host replies) are written by the JS driver into one
//   input buffer the engine owns and reuses for every input (agent_tools_input hands it out,
//   grown to the size asked for, or null when memory is exhausted, which the driver checks:
//   embind's own string marshalling would write through a null pointer). A malloc and a free per
//   input cost more than a lock operation's step in the core. Each input reads the buffer before
//   returning; a buffer grown past kKeptInputBytes is freed after the input that needed it.
// - Events coming out stay in the engine's buffers until the next input. Each input returns the
//   address of five words -- records address, record words, text address, text bytes, ASCII
//   flag -- and the driver copies the records and decodes the text straight after the call, so
//   JS never keeps a view into wasm memory, which memory growth would detach.
#include <emscripten/bind.h>
#include <emscripten/emscripten.h>

#include <malloc.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "agent_tools/engine.hpp"

namespace {

using agent_tools::Engine;

class WasmEngine {
 public:
  WasmEngine() = default;
  WasmEngine(const WasmEngine&) = delete;
  WasmEngine& operator=(const WasmEngine&) = delete;
  ~WasmEngine() { std::free(input_); }

  // The buffer the next input's text goes into, with room for `size` bytes; null if there is no
  // memory for that (the old buffer is then gone too).
  char* input(std::size_t size) noexcept {
    if (size > input_capacity_) {
      std::free(input_);
      input_capacity_ = size < 1024 ? 1024 : size;
      input_ = static_cast<char*>(std::malloc(input_capacity_));
      if (!input_) input_capacity_ = 0;
    }
    return input_;
  }

  // Each input returns the address of its events' header (see the top of this file). Every input
  // carries the host's clock (ms since the epoch), read by the core as "now". The text is the
  // first `length` bytes of the input buffer.
  const std::uint32_t* start(std::uint32_t op, std::size_t name_length, std::size_t length, double now) {
    std::string_view all = input_text(length);
    if (name_length > all.size()) name_length = all.size();
    engine_.set_clock(now);
    return guarded([&] { engine_.start(op, all.substr(0, name_length), all.substr(name_length)); });
  }
  const std::uint32_t* resume(std::uint32_t call, bool ok, std::size_t length, double now) {
    std::string_view reply = input_text(length);
    engine_.set_clock(now);
    return guarded([&] { engine_.resume(call, ok, reply); });
  }
  const std::uint32_t* cancel(std::uint32_t op, double now) {
    engine_.set_clock(now);
    return guarded([&] { engine_.cancel(op); });
  }
  // The raw functions below take this address.
  // Not noexcept: embind 3.1.6 cannot bind noexcept member functions.
  std::uintptr_t address() const { return reinterpret_cast<std::uintptr_t>(this); }

  // Counters plus the allocator's bytes in use, for leak checks and memory reports.
  std::string stats() const {
    auto s = engine_.stats();
    struct mallinfo heap = mallinfo();
    return "{\"liveOperations\":" + std::to_string(s.live_operations) +
           ",\"pendingCalls\":" + std::to_string(s.pending_calls) +
           ",\"started\":" + std::to_string(s.started) +
           ",\"finished\":" + std::to_string(s.finished) +
           ",\"staleReplies\":" + std::to_string(s.stale_replies) +
           ",\"heapInUse\":" + std::to_string(heap.uordblks) +
           ",\"heapReserved\":" + std::to_string(heap.arena) + "}";
  }

 private:
  static constexpr std::size_t kKeptInputBytes = 1 << 20;

  std::string_view input_text(std::size_t length) const noexcept {
    return {input_, input_ && length <= input_capacity_ ? length : 0};
  }

  template <class F>
  const std::uint32_t* guarded(F&& input) {
    try {
      input();
      set_header(engine_.take_envelope());
    } catch (const std::bad_alloc&) {
      set_header(fault(kOutOfMemory));
    } catch (...) {
      set_header(fault(kInternalError));
    }
    if (input_capacity_ > kKeptInputBytes) {  // one huge document should not stay allocated
      std::free(input_);
      input_ = nullptr;
      input_capacity_ = 0;
    }
    return header_;
  }
  void set_header(const agent_tools::EventEnvelope& events) noexcept {
    header_[0] = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(events.records));
    header_[1] = static_cast<std::uint32_t>(events.words);
    header_[2] = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(events.text));
    header_[3] = static_cast<std::uint32_t>(events.text_bytes);
    header_[4] = events.ascii ? 1 : 0;
  }
  // A lone fault record, for the few failures the core cannot report itself (out of memory while
  // recording events): the driver turns a fault into a rejected promise for every live operation.
  static agent_tools::EventEnvelope fault(std::string_view message) noexcept {
    static std::uint32_t record[3];
    record[0] = static_cast<std::uint32_t>(agent_tools::EventTag::fault);
    record[1] = 0;
    record[2] = static_cast<std::uint32_t>(message.size());
    return {record, 3, message.data(), message.size(), true};
  }
  static constexpr std::string_view kOutOfMemory = "out of memory";
  static constexpr std::string_view kInternalError = "internal error";
  Engine engine_;
  std::uint32_t header_[5] = {};  // the last input's events (see the top of this file)
  char* input_ = nullptr;
  std::size_t input_capacity_ = 0;
};

}  // namespace

// The object's lifetime is embind's (JS owns it: `new Engine()`, `delete()`); the inputs are plain
// exports, because embind's generic invoker (all there is without dynamic code generation) costs
// about a microsecond per call, as much as a lock operation's whole step in the core.
EMSCRIPTEN_BINDINGS(agent_tools) {
  emscripten::class_<WasmEngine>("Engine")
      .constructor<>()
      .function("address", &WasmEngine::address)
      .function("stats", &WasmEngine::stats);
}

extern "C" {

/// Where to write the next input's `size` bytes (null: out of memory). Valid until the input.
EMSCRIPTEN_KEEPALIVE char* agent_tools_input(WasmEngine* engine, std::size_t size) { return engine->input(size); }

/// The input buffer holds the operation name followed by its JSON input; the first
/// `name_length` of its `length` bytes are the name. Each input returns its events' header.
EMSCRIPTEN_KEEPALIVE const std::uint32_t* agent_tools_start(WasmEngine* engine, std::uint32_t op, std::size_t name_length,
                                                   std::size_t length, double now) {
  return engine->start(op, name_length, length, now);
}

/// The input buffer holds the reply's JSON text (`length` bytes).
EMSCRIPTEN_KEEPALIVE const std::uint32_t* agent_tools_resume(WasmEngine* engine, std::uint32_t call, int ok, std::size_t length,
                                                    double now) {
  return engine->resume(call, ok != 0, length, now);
}

EMSCRIPTEN_KEEPALIVE const std::uint32_t* agent_tools_cancel(WasmEngine* engine, std::uint32_t op, double now) {
  return engine->cancel(op, now);
}

}
