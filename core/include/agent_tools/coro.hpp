// C++20 coroutine plumbing for the core: one alias namespace over <coroutine> (g++ 12) or
// <experimental/coroutine> (libc++ in Emscripten 3.1.6), and Task<T>, a lazily started coroutine
// that a parent coroutine awaits. Operations are trees of Tasks whose leaves are host calls.
#pragma once

#include <exception>
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

namespace detail {

// Shared by Task<T> and Task<void>: where to continue when the coroutine finishes, and the
// exception it finished with, rethrown in the awaiting coroutine.
struct PromiseBase {
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
