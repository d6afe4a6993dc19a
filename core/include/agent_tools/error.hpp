// The core's one error type. Every failure inside an operation is an Error with a stable code
// (generated, shared with JS), a readable message and optional JSON details; the engine turns it
// into a `done` event, so no exception ever crosses the wasm boundary.
#pragma once

#include <exception>
#include <string>

#include <nlohmann/json.hpp>

#include "agent_tools/generated/constants.hpp"

namespace agent_tools {

/// JSON in the core keeps object keys in insertion order, so documents pass through unchanged and
/// what the core writes reads in the order it was built (as the original package's output did).
using json = nlohmann::ordered_json;

class Error : public std::exception {
 public:
  Error(ErrorCode code, std::string message, json details = nullptr)
      : code_(code), message_(std::move(message)), details_(std::move(details)) {}

  ErrorCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  const json& details() const noexcept { return details_; }
  const char* what() const noexcept override { return message_.c_str(); }

  /// {"code", "message"[, "details"]}: the shape carried by `done` events.
  json to_json() const;

  /// Rebuilds an Error from the shape above, as sent by the host for a failed call. Unknown or
  /// missing codes become `fallback`; a non-object becomes a HOST_BAD_REPLY.
  static Error from_json(const json& value, ErrorCode fallback);

 private:
  ErrorCode code_;
  std::string message_;
  json details_;
};

}  // namespace agent_tools
