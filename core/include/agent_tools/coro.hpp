// C++20 coroutine plumbing for the core: one alias namespace over <coroutine> (g++ 12) or
// <experimental/coroutine> (libc++ in Emscripten 3.1.6), and Task<T>, a lazily started coroutine
// that a parent coroutine awaits. Operations are trees of Tasks whose leaves are host calls.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <exception>
#include <new>
#include <optional>
#include <utility>

#if __has_include(<coroutine>)
#include <coroutine>
namespace agent_tools::coro {
using std::coroutine_handle;
using std::suspend_always;
}  // namespace agent_tools::coro
#else
#include <experimental/coroutine>
namespace agent_tools::coro {
using std::experimental::coroutine_handle;
using std::experimental::suspend_always;
}  // namespace agent_tools::coro
#endif

namespace agent_tools {

/// Recycles coroutine frames. A lock cycle creates and destroys a handful of frames of the same
/// few sizes; taking them from per-size free lists instead of malloc saves most of the cost of a
/// frame. One pool per engine, which puts it in use (FramePool::Use) while it handles an input:
/// operations only run then, so every frame they create comes from their engine's pool. A frame
/// remembers its pool, so it can be freed at any time. The pool keeps at most kMaxCachedBytes of
/// idle frames, so a burst of concurrent operations does not leave the heap grown, and frees
/// them when it goes. Frames created with no pool in use come from the global heap.
class FramePool {
 public:
  /// New frames come from `pool` while this lives.
  class Use {
   public:
    explicit Use(FramePool& pool) noexcept : previous_(std::exchange(current_, &pool)) {}
    ~Use() { current_ = previous_; }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;

   private:
    FramePool* previous_;
  };
  static FramePool* current() noexcept { return current_; }

  static constexpr std::size_t kGranule = 64;         // sizes are rounded up to this
  static constexpr std::size_t kClasses = 32;         // frames up to 2 KiB are recycled
  static constexpr std::size_t kMaxCachedBytes = 256 * 1024;

  FramePool() = default;
  FramePool(const FramePool&) = delete;
  FramePool& operator=(const FramePool&) = delete;
  ~FramePool() {
    for (FreeBlock*& list : free_) {
      while (list) std::free(std::exchange(list, list->next));
    }
  }

  void* allocate(std::size_t size) {
    std::size_t index = size_class(size);
    ++live_;
    if (index < kClasses && free_[index]) {
      cached_bytes_ -= block_size(index);
      return std::exchange(free_[index], free_[index]->next);
    }
    void* block = std::malloc(index < kClasses ? block_size(index) : size);
    if (!block) {
      --live_;
      throw std::bad_alloc();
    }
    return block;
  }

  void release(void* block, std::size_t size) noexcept {
    std::size_t index = size_class(size);
    --live_;
    if (index >= kClasses || cached_bytes_ + block_size(index) > kMaxCachedBytes) {
      std::free(block);
      return;
    }
    cached_bytes_ += block_size(index);
    free_[index] = new (block) FreeBlock{free_[index]};
  }

  /// Frames handed out and not yet given back; idle bytes kept for reuse.
  std::size_t live_frames() const noexcept { return live_; }
  std::size_t cached_bytes() const noexcept { return cached_bytes_; }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  static constexpr std::size_t size_class(std::size_t size) noexcept { return (size + kGranule - 1) / kGranule - 1; }
  static constexpr std::size_t block_size(std::size_t index) noexcept { return (index + 1) * kGranule; }

  FreeBlock* free_[kClasses] = {};
  std::size_t cached_bytes_ = 0;
  std::size_t live_ = 0;
  static inline thread_local FramePool* current_ = nullptr;
};

namespace detail {

/// Coroutine frame allocation. Each frame is preceded by a header naming the pool it came from
/// (null: the global heap), because a frame's operator delete sees only its address and size.
struct FrameAllocation {
  struct alignas(std::max_align_t) Header {
    FramePool* pool;
  };

  static void* allocate(FramePool* pool, std::size_t size) {
    std::size_t total = size + sizeof(Header);
    void* block = pool ? pool->allocate(total) : ::operator new(total);
    return new (block) Header{pool} + 1;
  }
  static void release(void* frame, std::size_t size) noexcept {
    Header* header = static_cast<Header*>(frame) - 1;
    FramePool* pool = header->pool;
    if (pool) {
      pool->release(header, size + sizeof(Header));
    } else {
      ::operator delete(header);
    }
  }

  static void* operator new(std::size_t size) { return allocate(FramePool::current(), size); }
  static void operator delete(void* frame, std::size_t size) noexcept { release(frame, size); }
};

// Shared by Task<T> and Task<void>: where to continue when the coroutine finishes, and the
// exception it finished with, rethrown in the awaiting coroutine.
struct PromiseBase : FrameAllocation {
  coro::coroutine_handle<> continuation;
  std::exception_ptr error;

  coro::suspend_always initial_suspend() noexcept { return {}; }

  // True while the awaiting coroutine is still inside Task::await_suspend, i.e. the task is
  // running synchronously on its parent's stack; the parent then continues by itself.
  bool running_inline = false;

  // No symmetric transfer: clang lowers it to wasm tail calls, which Emscripten 3.1.6 targets
  // cannot assume. A task that finishes after a suspension resumes its parent with a plain call,
  // so the stack grows only by the depth of Task nesting, never by loop iterations.
  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class Promise>
    void await_suspend(coro::coroutine_handle<Promise> self) noexcept {
      auto& promise = self.promise();
      if (!promise.running_inline && promise.continuation) promise.continuation.resume();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  void unhandled_exception() noexcept { error = std::current_exception(); }
};

template <class T>
struct Promise : PromiseBase {
  std::optional<T> value;
  template <class U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T take() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};

template <>
struct Promise<void> : PromiseBase {
  void return_void() noexcept {}
  void take() {
    if (error) std::rethrow_exception(error);
  }
};

}  // namespace detail

/// A coroutine returning T. It starts when first awaited (or resumed by the engine) and owns its
/// frame: destroying a Task destroys the coroutine and, through its locals, every child Task.
template <class T = void>
class [[nodiscard]] Task {
 public:
  struct promise_type : detail::Promise<T> {
    Task get_return_object() noexcept { return Task{Handle::from_promise(*this)}; }
  };
  using Handle = coro::coroutine_handle<promise_type>;

  Task() noexcept = default;
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  bool await_ready() const noexcept { return false; }
  // Runs the child at once; returns false (continue the parent without suspending) when it
  // finished synchronously, true when it suspended on a host call and will resume the parent.
  bool await_suspend(coro::coroutine_handle<> awaiting) noexcept {
    auto& promise = handle_.promise();
    promise.continuation = awaiting;
    promise.running_inline = true;
    handle_.resume();
    promise.running_inline = false;
    return !handle_.done();
  }
  T await_resume() { return handle_.promise().take(); }

  // Used by the engine for root tasks, which nobody awaits.
  coro::coroutine_handle<> handle() const noexcept { return handle_; }
  bool done() const noexcept { return handle_ && handle_.done(); }
  T result() { return handle_.promise().take(); }

 private:
  explicit Task(Handle h) noexcept : handle_(h) {}
  void reset() noexcept {
    if (handle_) handle_.destroy();
    handle_ = nullptr;
  }
  Handle handle_;
};

}  // namespace agent_tools
