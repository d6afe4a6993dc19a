// The boundary: one class, Engine, whose life embind manages, and three plain exports that each
// feed one input to it and report the events it produced (JSON text left in wasm memory for the
// driver to decode at once). Nothing here calls back into JS, so nothing can re-enter.
//
// Memory ownership across the boundary:
// - Documents going in (operation inputs, host replies) are written by the JS driver into one
//   input buffer the engine owns and reuses for every input (agent_tools_input hands it out,
//   grown to the size asked for, or null when memory is exhausted, which the driver checks:
//   embind's own string marshalling would write through a null pointer). A malloc and a free per
//   input cost more than a lock operation's step in the core. Each input reads the buffer before
//   returning; a buffer grown past kKeptInputBytes is freed after the input that needed it.
// - Events coming out stay in the engine's buffer until the next input; the driver decodes them
//   into a JS string straight after the call, so JS never keeps a view into wasm memory, which
//   memory growth would detach.
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

  // Each input returns the length of the events it produced; agent_tools_events() points at
  // them. Every input carries the host's clock (ms since the epoch), read by the core as "now".
  // The text is the first `length` bytes of the input buffer.
  std::size_t start(std::uint32_t op, std::size_t name_length, std::size_t length, double now) {
    std::string_view all = input_text(length);
    if (name_length > all.size()) name_length = all.size();
    engine_.set_clock(now);
    return guarded([&] { engine_.start(op, all.substr(0, name_length), all.substr(name_length)); });
  }
  std::size_t resume(std::uint32_t call, bool ok, std::size_t length, double now) {
    std::string_view reply = input_text(length);
    engine_.set_clock(now);
    return guarded([&] { engine_.resume(call, ok, reply); });
  }
  std::size_t cancel(std::uint32_t op, double now) {
    engine_.set_clock(now);
    return guarded([&] { engine_.cancel(op); });
  }
  const char* events() const noexcept { return events_.data(); }

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
  std::size_t guarded(F&& input) {
    try {
      input();
      events_ = engine_.take_events();
    } catch (const std::bad_alloc&) {
      events_ = kOutOfMemory;
    } catch (...) {
      events_ = kInternalError;
    }
    if (input_capacity_ > kKeptInputBytes) {  // one huge document should not stay allocated
      std::free(input_);
      input_ = nullptr;
      input_capacity_ = 0;
    }
    return events_.size();
  }
  // Events for the few failures the core cannot report itself (out of memory while recording
  // events): the driver turns a fault into a rejected promise for every live operation.
  static constexpr std::string_view kOutOfMemory = R"([{"fault":"out of memory"}])";
  static constexpr std::string_view kInternalError = R"([{"fault":"internal error"}])";
  Engine engine_;
  std::string_view events_;  // the engine's buffer (or a constant above) until the next input
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
/// `name_length` of its `length` bytes are the name.
EMSCRIPTEN_KEEPALIVE std::size_t agent_tools_start(WasmEngine* engine, std::uint32_t op, std::size_t name_length,
                                                   std::size_t length, double now) {
  return engine->start(op, name_length, length, now);
}

/// The input buffer holds the reply's JSON text (`length` bytes).
EMSCRIPTEN_KEEPALIVE std::size_t agent_tools_resume(WasmEngine* engine, std::uint32_t call, int ok, std::size_t length,
                                                    double now) {
  return engine->resume(call, ok != 0, length, now);
}

EMSCRIPTEN_KEEPALIVE std::size_t agent_tools_cancel(WasmEngine* engine, std::uint32_t op, double now) {
  return engine->cancel(op, now);
}

/// The events of the last input (UTF-8 JSON), valid until the next input.
EMSCRIPTEN_KEEPALIVE const char* agent_tools_events(const WasmEngine* engine) { return engine->events(); }

}
