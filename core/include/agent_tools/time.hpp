// Time formatting for the core. The core never reads a clock: times are host-supplied
// milliseconds since the Unix epoch (see OpContext::now).
#pragma once

#include <cstddef>
#include <string>

namespace agent_tools {

/// `ms` since the epoch as ISO 8601 UTC with milliseconds, e.g. 2026-11-25T11:49:28.123Z (the form
/// JavaScript's Date#toISOString produces).
std::string iso8601(double ms);

/// Room for the longest text iso8601 writes (a signed nine-digit year at the int64 limit).
inline constexpr std::size_t kIso8601MaxLength = 40;
/// iso8601 written to `out` (room for kIso8601MaxLength chars), without allocating; returns the
/// length.
std::size_t write_iso8601(double ms, char* out) noexcept;

}  // namespace agent_tools
