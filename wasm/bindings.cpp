// The embind surface: one class, Engine, whose methods each feed one input to the core and return
// the events it produced as a JSON string. Strings are copied in and out, so JS never holds a
// view into wasm memory that could go stale when memory grows. No method calls back into JS.
#include <emscripten/bind.h>

#include <malloc.h>

#include <string>

#include "agent_tools/engine.hpp"

namespace {

using agent_tools::Engine;

// Event strings for the few failures the core cannot report itself (out of memory while
// recording events): the driver turns a fault into a rejected promise for every live operation.
std::string fault(const char* what) { return std::string("[{\"fault\":\"") + what + "\"}]"; }

class WasmEngine {
 public:
  std::string start(std::uint32_t op, const std::string& name, const std::string& input) {
    return guarded([&] { engine_.start(op, name, input); });
  }
  std::string resume(std::uint32_t call, bool ok, const std::string& reply) {
    return guarded([&] { engine_.resume(call, ok, reply); });
  }
  std::string cancel(std::uint32_t op) {
    return guarded([&] { engine_.cancel(op); });
  }
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
  template <class F>
  std::string guarded(F&& input) {
    try {
      input();
      return engine_.take_events();
    } catch (const std::bad_alloc&) {
      return fault("out of memory");
    } catch (...) {
      return fault("internal error");
    }
  }
  Engine engine_;
};

}  // namespace

EMSCRIPTEN_BINDINGS(agent_tools) {
  emscripten::class_<WasmEngine>("Engine")
      .constructor<>()
      .function("start", &WasmEngine::start)
      .function("resume", &WasmEngine::resume)
      .function("cancel", &WasmEngine::cancel)
      .function("stats", &WasmEngine::stats);
}
