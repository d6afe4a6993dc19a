#include "agent_tools/time.hpp"

#include <cmath>
#include <cstdint>

namespace agent_tools {

// Civil date from days since the epoch (Howard Hinnant's algorithm), no clock, no printf.
std::size_t write_iso8601(double ms, char* out) noexcept {
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
  char* w = out;
  // (32-bit digits: every field but a far-off year fits, and wasm divides 64-bit values slowly.)
  auto put = [&w](std::int64_t value, int width) {
    if (value < 0) *w++ = '-';
    std::uint64_t magnitude = value < 0 ? 0 - static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value);
    char digits[20];
    int n = 0;
    while (magnitude > 0xFFFFFFFFu) {
      digits[n++] = static_cast<char>('0' + magnitude % 10);
      magnitude /= 10;
    }
    auto small = static_cast<std::uint32_t>(magnitude);
    do {
      digits[n++] = static_cast<char>('0' + small % 10);
      small /= 10;
    } while (small);
    for (int i = n; i < width; ++i) *w++ = '0';
    while (n) *w++ = digits[--n];
  };
  // The fields below the year are small and fixed-width: written directly, without put's loops.
  auto two = [&w](unsigned value) {
    *w++ = static_cast<char>('0' + value / 10);
    *w++ = static_cast<char>('0' + value % 10);
  };
  put(year, 4);
  *w++ = '-';
  two(month);
  *w++ = '-';
  two(day);
  *w++ = 'T';
  auto ms_of_day = static_cast<std::uint32_t>(in_day);  // < 86,400,000
  two(ms_of_day / 3600000);
  *w++ = ':';
  two(ms_of_day / 60000 % 60);
  *w++ = ':';
  two(ms_of_day / 1000 % 60);
  *w++ = '.';
  unsigned milli = ms_of_day % 1000;
  *w++ = static_cast<char>('0' + milli / 100);
  two(milli % 100);
  *w++ = 'Z';
  return static_cast<std::size_t>(w - out);
}

std::string iso8601(double ms) {
  char text[kIso8601MaxLength];
  return std::string(text, write_iso8601(ms, text));
}

}  // namespace agent_tools
