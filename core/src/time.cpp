#include "agent_tools/time.hpp"

#include <cmath>
#include <cstdint>

namespace agent_tools {

// Civil date from days since the epoch (Howard Hinnant's algorithm), no clock, no printf.
std::string iso8601(double ms) {
  auto total = static_cast<std::int64_t>(std::floor(ms));
  std::int64_t days = total >= 0 ? total / 86400000 : (total - 86399999) / 86400000;
  std::int64_t in_day = total - days * 86400000;
  std::int64_t z = days + 719468;
  std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  auto doe = static_cast<unsigned>(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  std::int64_t year = static_cast<std::int64_t>(yoe) + era * 400;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  unsigned day = doy - (153 * mp + 2) / 5 + 1;
  unsigned month = mp < 10 ? mp + 3 : mp - 9;
  if (month <= 2) ++year;
  // Fixed-width fields written by hand: printf would pull in tens of kilobytes of wasm.
  auto put = [](std::string& out, std::int64_t value, int width) {
    std::string digits = std::to_string(value < 0 ? -value : value);
    if (value < 0) out += '-';
    if (static_cast<int>(digits.size()) < width) out.append(static_cast<std::size_t>(width) - digits.size(), '0');
    out += digits;
  };
  std::string out;
  out.reserve(24);
  put(out, year, 4);
  out += '-';
  put(out, month, 2);
  out += '-';
  put(out, day, 2);
  out += 'T';
  put(out, in_day / 3600000, 2);
  out += ':';
  put(out, in_day / 60000 % 60, 2);
  out += ':';
  put(out, in_day / 1000 % 60, 2);
  out += '.';
  put(out, in_day % 1000, 3);
  out += 'Z';
  return out;
}

}  // namespace agent_tools
