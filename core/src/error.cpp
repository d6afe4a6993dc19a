#include "agent_tools/error.hpp"

namespace agent_tools {

json Error::to_json() const {
  json out = {{"code", to_string(code_)}, {"message", message_}};
  if (!details_.is_null()) out["details"] = details_;
  return out;
}

Error Error::from_json(const json& value, ErrorCode fallback) {
  if (!value.is_object()) return Error(ErrorCode::host_bad_reply, "host error is not an object");
  ErrorCode code = fallback;
  if (auto it = value.find("code"); it != value.end() && it->is_string()) {
    code = error_code_from_string(it->get_ref<const std::string&>()).value_or(fallback);
  }
  std::string message = "host call failed";
  if (auto it = value.find("message"); it != value.end() && it->is_string()) {
    message = it->get<std::string>();
  }
  json details = nullptr;
  if (auto it = value.find("details"); it != value.end()) details = *it;
  return Error(code, std::move(message), std::move(details));
}

}  // namespace agent_tools
