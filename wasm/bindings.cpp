// The boundary: one class, Engine, whose life embind manages, and two plain exports: one hands
// out the input buffer, the other feeds the engine a batch of inputs from it and reports the
// events they produced (an EventEnvelope left in wasm memory for the driver to copy out at once).
// Nothing here calls back into JS, so nothing can re-enter.
//
// Batches: the driver collects the inputs that arise in one microtask wave (a pipelined KV
// response answers dozens of calls at once; dozens of callers start operations in the same
// wave) and feeds them in one call, so the per-call costs on both sides -- the call itself, the
// clock, the envelope, one TextDecoder call for the events' text -- are paid once per wave.
//
// Memory ownership across the boundary:
// - Documents going in (operation inputs, host replies) are written by the JS driver into one
//   input buffer the engine owns and reuses for every batch (agent_tools_input hands it out,
//   grown to the size asked for, or null when memory is exhausted, which the driver checks:
//   embind's own string marshalling would write through a null pointer). A malloc and a free per
//   input cost more than a lock operation's step in the core. The layout is InputKind's (see
//   core/constants.json, inputRecords). Each batch reads the buffer before returning; a buffer
//   grown past kKeptInputBytes is freed after the batch that needed it.
// - Events coming out stay in the engine's buffers until the next batch. Each batch returns the
//   address of five words -- records address, record words, text address, text bytes, ASCII
//   flag -- and the driver copies the records and decodes the text straight after the call, so
//   JS never keeps a view into wasm memory, which memory growth would detach.
#include <emscripten/bind.h>
#include <emscripten/emscripten.h>

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
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

  // Feeds the `count` inputs in the first `length` bytes of the input buffer, in order, and
  // returns the address of their events' header (see the top of this file). A batch carries the
  // host's clock (ms since the epoch), read by the core as "now" for all of its inputs.
  const std::uint32_t* feed(std::size_t count, std::size_t length, double now) {
    std::string_view all = input_text(length);
    engine_.set_clock(now);
    return guarded([&] {
      constexpr std::size_t kRecordBytes = agent_tools::kInputRecordWords * sizeof(std::uint32_t);
      // The records are the driver's own writing: one that does not add up is a defect there,
      // reported as a fault (never a read past the buffer).
      if (count > all.size() / kRecordBytes) throw std::length_error("input batch: records past the buffer");
      std::size_t text_at = count * kRecordBytes;
      for (std::size_t i = 0; i < count; ++i) {
        std::uint32_t record[agent_tools::kInputRecordWords];
        std::memcpy(record, all.data() + i * kRecordBytes, kRecordBytes);
        const auto [kind, id, arg, bytes] = record;
        if (bytes > all.size() - text_at) throw std::length_error("input batch: text past the buffer");
        std::string_view text = all.substr(text_at, bytes);
        text_at += bytes;
        switch (static_cast<agent_tools::InputKind>(kind)) {
          case agent_tools::InputKind::start: {
            std::size_t name_length = arg < text.size() ? arg : text.size();
            engine_.start(id, text.substr(0, name_length), text.substr(name_length));
            break;
          }
          case agent_tools::InputKind::resume:
            engine_.resume(id, arg != 0, text);
            break;
          case agent_tools::InputKind::cancel:
            engine_.cancel(id);
            break;
          default:
            throw std::invalid_argument("input batch: unknown input kind");
        }
      }
    });
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

// The object's lifetime is embind's (JS owns it: `new Engine()`, `delete()`); the batches are plain
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

/// Feeds the batch of `count` inputs in the first `length` bytes of the input buffer (records,
/// then texts: see core/constants.json, inputRecords). Returns the batch's events' header.
EMSCRIPTEN_KEEPALIVE const std::uint32_t* agent_tools_feed(WasmEngine* engine, std::size_t count, std::size_t length,
                                                  double now) {
  return engine->feed(count, length, now);
}

}
