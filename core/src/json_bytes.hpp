// Byte-level helpers shared by the two JSON readers (parse_json's tree builder in json.cpp and
// the tree-less JsonReader in json_text.cpp) and the string escaper: UTF-8 validation, the
// eight-bytes-at-a-time scan over plain string content, hex digits, UTF-8 encoding.
// Internal to the core (not under include/).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace agent_tools::json_bytes {

// Length of the valid UTF-8 sequence starting at `p` (1-4), or 0 if it is not valid. The same
// rules as nlohmann's lexer: no overlongs, no UTF-16 surrogates, nothing above U+10FFFF.
inline std::size_t utf8_sequence(const unsigned char* p, const unsigned char* end) noexcept {
  unsigned char c = p[0];
  std::size_t n = c >= 0xF5 ? 0 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
  if (n == 0 || static_cast<std::size_t>(end - p) < n) return 0;
  for (std::size_t i = 1; i < n; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
  }
  if (n == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))) return 0;  // overlong, surrogate
  if (n == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))) return 0;  // overlong, > U+10FFFF
  return n;
}

// The small helpers on the hot path are always inlined: where a file is compiled with -Os, clang
// would otherwise leave even one-line functions as calls.
#define AGENT_TOOLS_HOT [[gnu::always_inline]] inline

AGENT_TOOLS_HOT constexpr bool is_space(unsigned char c) noexcept {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}
AGENT_TOOLS_HOT constexpr bool is_digit(unsigned char c) noexcept { return c >= '0' && c <= '9'; }

// Bytes that can be copied as they are inside a string: printable ASCII except '"' and '\\'.
AGENT_TOOLS_HOT constexpr bool is_plain(unsigned char c) noexcept {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

constexpr std::uint64_t kOnes = 0x0101010101010101, kHighs = 0x8080808080808080;

// The high bit set in each byte of `v` that is zero; the lowest one set is always exact (a borrow
// only marks bytes above a zero byte).
AGENT_TOOLS_HOT constexpr std::uint64_t zero_bytes(std::uint64_t v) noexcept {
  return (v - kOnes) & ~v & kHighs;
}

// Skips plain string bytes, eight at a time where the platform allows it, and returns the first
// byte that needs a look (quote, backslash, control character, non-ASCII) or `end`.
AGENT_TOOLS_HOT const unsigned char* skip_plain(const unsigned char* p, const unsigned char* end) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    while (end - p >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      const std::uint64_t special = zero_bytes(w ^ (kOnes * '"')) | zero_bytes(w ^ (kOnes * '\\')) |
                                    ((w - kOnes * 0x20) & ~w & kHighs)  // < 0x20
                                    | (w & kHighs);                     // >= 0x80
      if (special) return p + (std::countr_zero(special) >> 3);
      p += 8;
    }
  }
  while (p < end && is_plain(*p)) ++p;
  return p;
}

// Like skip_plain, but stops only at a quote or a backslash (see Parser::closing_quote).
AGENT_TOOLS_HOT const unsigned char* skip_to_quote_or_backslash(const unsigned char* p,
                                                                const unsigned char* end) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    while (end - p >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      const std::uint64_t special = zero_bytes(w ^ (kOnes * '"')) | zero_bytes(w ^ (kOnes * '\\'));
      if (special) return p + (std::countr_zero(special) >> 3);
      p += 8;
    }
  }
  while (p < end && *p != '"' && *p != '\\') ++p;
  return p;
}

inline int hex_value(unsigned char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  c |= 0x20;  // lower case
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Writes code point `cp` (at most U+10FFFF, not a surrogate) as UTF-8 at `w`; returns the end.
inline char* write_utf8(char* w, std::uint32_t cp) noexcept {
  if (cp < 0x80) {
    *w++ = static_cast<char>(cp);
  } else if (cp < 0x800) {
    *w++ = static_cast<char>(0xC0 | (cp >> 6));
    *w++ = static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *w++ = static_cast<char>(0xE0 | (cp >> 12));
    *w++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *w++ = static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *w++ = static_cast<char>(0xF0 | (cp >> 18));
    *w++ = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *w++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *w++ = static_cast<char>(0x80 | (cp & 0x3F));
  }
  return w;
}

// Byte-loop equality for the short member names the readers look up: in wasm, string_view's ==
// is a call to memcmp that costs more than the comparison.
inline bool same_text(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

/// The double nearest to a number token already validated against the JSON grammar (defined
/// in json.cpp): exact arithmetic where it suffices, else strtod.
double decimal_value(const unsigned char* first, const unsigned char* last) noexcept;

// The one JSON string escaper (defined in json.cpp), used by append_json_string and by the
// writers in json_text.cpp: control characters escaped, invalid UTF-8 bytes replaced with U+FFFD.
/// The length of `text` escaped as the content of a string literal (quotes not counted).
std::size_t escaped_size(std::string_view text) noexcept;
/// Writes that content at `out`, which must have room for escaped_size(text) + 8 bytes (whole
/// words are stored ahead); returns the end of what was written.
char* escape_to(char* out, std::string_view text) noexcept;

}  // namespace agent_tools::json_bytes
