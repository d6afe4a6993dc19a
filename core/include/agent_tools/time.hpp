// Time formatting for the core. The core never reads a clock: times are host-supplied
// milliseconds since the Unix epoch (see OpContext::now).
#pragma once

#include <string>

namespace agent_tools {

/// `ms` since the epoch as ISO 8601 UTC with milliseconds, e.g. 2026-11-25T11:49:28.123Z (the form
/// JavaScript's Date#toISOString produces).
std::string iso8601(double ms);

}  // namespace agent_tools
