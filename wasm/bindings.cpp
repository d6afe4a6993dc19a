// The embind surface: one class, Engine, whose methods each feed one input to the core and return
// the events it produced as a JSON string. No method calls back into JS, so nothing can re-enter.
//
// Memory ownership across the boundary:
// - Documents going in (operation inputs, host replies) are copied by the JS driver into a buffer
//   it allocates with _malloc, after checking the allocation succeeded (embind's own string
//   marshalling would write through a null pointer if malloc failed). The method takes ownership
//   and frees the buffer before returning, whatever happens.
// - Events coming out are returned as std::string, which embind copies into a JS string.
// JS therefore never keeps a view into wasm memory, which memory growth would detach.
#include <emscripten/bind.h>

#include <malloc.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "agent_tools/engine.hpp"

namespace {

using agent_tools::Engine;

// Event strings for the few failures the core cannot report itself (out of memory while
// recording events): the driver turns a fault into a rejected promise for every live operation.
std::string fault(const char* what) { return std::string("[{\"fault\":\"") + what + "\"}]"; }

// A (pointer, length) buffer allocated by the driver with _malloc; freed when this goes.
struct OwnedBuffer {
  OwnedBuffer(std::uintptr_t address, std::size_t size)
      : data(reinterpret_cast<char*>(address)), length(size) {}
  ~OwnedBuffer() { std::free(data); }
  OwnedBuffer(const OwnedBuffer&) = delete;
  OwnedBuffer& operator=(const OwnedBuffer&) = delete;
  std::string_view view() const noexcept { return {data, length}; }
  char* data;
  std::size_t length;
};

class WasmEngine {
 public:
  // Every input carries the host's clock (ms since the epoch), read by the core as "now".
  std::string start(std::uint32_t op, const std::string& name, std::uintptr_t input, std::size_t length, double now) {
    OwnedBuffer buffer(input, length);
    engine_.set_clock(now);
    return guarded([&] { engine_.start(op, name, buffer.view()); });
  }
  std::string resume(std::uint32_t call, bool ok, std::uintptr_t reply, std::size_t length, double now) {
    OwnedBuffer buffer(reply, length);
    engine_.set_clock(now);
    return guarded([&] { engine_.resume(call, ok, buffer.view()); });
  }
  std::string cancel(std::uint32_t op, double now) {
    engine_.set_clock(now);
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
