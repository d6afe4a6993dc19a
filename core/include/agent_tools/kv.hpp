// The lock protocol: acquire / release / extend / inspect / list / hold, as core operations.
//
// A lock is one KV key holding the holder's metadata as JSON, with a PX expiry. A per-key fence
// counter (`<key>:fence`) is incremented atomically with each successful acquire, so fences are
// strictly increasing per key. Every operation is one round trip: the scripts in
// core/constants.json run as EVALSHA (EVAL once after NOSCRIPT). Stores that cannot run scripts
// (the original package's get/set/delete duck type, mode "basic") get plain commands instead,
// with owner checks that are check-then-act and therefore not atomic.
#pragma once

#include <string>

#include "agent_tools/coro.hpp"
#include "agent_tools/engine.hpp"
#include "agent_tools/time.hpp"

namespace agent_tools::kv {

Task<std::string> acquire(OpContext& ctx, std::string input);
Task<std::string> release(OpContext& ctx, std::string input);
Task<std::string> extend(OpContext& ctx, std::string input);
Task<std::string> inspect(OpContext& ctx, std::string input);
Task<std::string> list(OpContext& ctx, std::string input);
Task<std::string> hold(OpContext& ctx, std::string input);

/// Escapes `*`, `?`, `[`, `]` and `\` so `text` matches itself in a Redis glob pattern.
std::string glob_escape(std::string_view text);

}  // namespace agent_tools::kv
