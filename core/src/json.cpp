#include "agent_tools/json.hpp"

#include "agent_tools/json_text.hpp"
#include "json_bytes.hpp"

#include <array>
#include <bit>
#include <cfloat>
#include <clocale>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace agent_tools {

namespace {

using namespace json_bytes;

// ---------------------------------------------------------------------------------------------
// The parser. nlohmann's reads one character at a time through an input adapter and copies every
// token into a buffer; this one walks the bytes directly, copies string contents in runs, and
// builds each array and object once, at its final size. It accepts what nlohmann accepts with its
// default options (RFC 8259 plus one leading byte order mark) and builds the same values of the
// same types, with one exception: nlohmann stops reading at a NUL byte, so it accepts
// "[1]\0junk"; this rejects a NUL there like any other trailing byte, as JSON.parse does.

// strtod, as nlohmann uses, on a terminated copy of the token, with the '.' swapped for the C
// locale's decimal point (as nlohmann does) in case the program changed it. glibc's and musl's
// strtod round correctly.
double parse_double(const unsigned char* first, const unsigned char* last) {
  const std::size_t n = static_cast<std::size_t>(last - first);
  char small[64];
  std::string large;
  char* buf = small;
  if (n >= sizeof small) {
    large.resize(n + 1);
    buf = large.data();
  }
  std::memcpy(buf, first, n);
  buf[n] = '\0';
  const char point = *std::localeconv()->decimal_point;
  if (point != '.') {
    if (char* dot = static_cast<char*>(std::memchr(buf, '.', n))) *dot = point;
  }
  return std::strtod(buf, nullptr);
}

// Exact powers of ten a double can hold.
constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

}  // namespace

double json_bytes::decimal_value(const unsigned char* first, const unsigned char* last) noexcept {
#if FLT_EVAL_METHOD == 0
  // Clinger's fast path: with the digits and the power of ten both exact doubles, the one
  // rounding IEEE arithmetic does is the correct rounding of the decimal number. strtod is much
  // slower, in wasm above all (its long double arithmetic is done in software there).
  const unsigned char* p = first;
  const bool negative = p < last && *p == '-';
  if (negative) ++p;
  std::uint64_t mantissa = 0;
  std::size_t digits = 0;
  std::int64_t exponent = 0;
  // `digits` counts from the first non-zero one: leading zeros (0.000x) only move the exponent.
  const auto digit = [&](unsigned char c) {
    mantissa = mantissa * 10 + (c - '0');  // wraps past 19 digits, when `digits` rules it out
    if (digits != 0 || c != '0') ++digits;
  };
  for (; p < last && is_digit(*p); ++p) digit(*p);
  if (p < last && *p == '.') {
    for (++p; p < last && is_digit(*p); ++p, --exponent) digit(*p);
  }
  if (p < last && (*p | 0x20) == 'e') {
    ++p;
    const bool negative_exponent = p < last && *p == '-';
    if (p < last && (*p == '-' || *p == '+')) ++p;
    std::int64_t written = 0;
    for (; p < last && is_digit(*p); ++p) {
      if (written < 100000) written = written * 10 + (*p - '0');
    }
    exponent += negative_exponent ? -written : written;
  }
  if (digits <= 19 && mantissa <= (std::uint64_t{1} << 53) && exponent >= -22 && exponent <= 22) {
    double result = static_cast<double>(mantissa);
    result = exponent < 0 ? result / kPow10[-exponent] : result * kPow10[exponent];
    return negative ? -result : result;
  }
#endif
  return parse_double(first, last);
}

namespace {


// Where arrays and objects collect their elements until they close (see Parser::array). Kept
// between calls, so a parse allocates only what the document keeps; parse_json never re-enters
// itself, so one per thread is enough.
struct Scratch {
  std::vector<json> items;
  std::vector<std::pair<std::string, json>> members;
};
thread_local Scratch scratch;

class Parser {
 public:
  Parser(std::string_view text, ErrorCode on_malformed, std::string_view what)
      : p_(reinterpret_cast<const unsigned char*>(text.data())),
        end_(p_ + text.size()),
        on_malformed_(on_malformed),
        what_(what),
        items_(scratch.items),
        members_(scratch.members) {}

  // Leaves the scratch stacks empty however the parse ended, and gives back what an unusually
  // large document made them take.
  ~Parser() {
    constexpr std::size_t kKeep = 1024;
    items_.clear();
    members_.clear();
    if (items_.capacity() > kKeep) std::vector<json>().swap(items_);
    if (members_.capacity() > kKeep) std::vector<std::pair<std::string, json>>().swap(members_);
  }

  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  json document() {
    // nlohmann skips one UTF-8 byte order mark at the very start, so this does too.
    if (end_ - p_ >= 3 && p_[0] == 0xEF && p_[1] == 0xBB && p_[2] == 0xBF) p_ += 3;
    skip_space();
    json out = value();
    skip_space();
    if (p_ != end_) malformed();
    return out;
  }

 private:
  [[noreturn, gnu::cold, gnu::noinline]] void malformed() const {
    throw Error(on_malformed_, std::string(what_) + " is not valid JSON (or not valid UTF-8)");
  }

  [[noreturn, gnu::cold, gnu::noinline]] void too_deep() const {
    throw Error(ErrorCode::input_too_large,
                std::string(what_) + " is nested deeper than " + std::to_string(MAX_JSON_DEPTH) + " levels");
  }

  // The next byte, or 0 at the end (a NUL byte is invalid wherever this is used).
  AGENT_TOOLS_HOT unsigned char peek() const noexcept { return p_ < end_ ? *p_ : 0; }

  AGENT_TOOLS_HOT void skip_space() noexcept {
    while (p_ < end_ && is_space(*p_)) ++p_;
  }

  json value() {
    switch (peek()) {
      case '{': return object();
      case '[': return array();
      case '"': {
        ++p_;
        std::string text;
        string(text);
        return json(std::move(text));
      }
      case 't': literal("true"); return true;
      case 'f': literal("false"); return false;
      case 'n': literal("null"); return nullptr;
      default: return number();
    }
  }

  void literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() || std::memcmp(p_, word.data(), word.size()) != 0) {
      malformed();
    }
    p_ += word.size();
  }

  // Called on '[' and '{': the depth limit is checked before going any deeper.
  AGENT_TOOLS_HOT void enter() {
    if (++depth_ > MAX_JSON_DEPTH) too_deep();
    ++p_;
    skip_space();
  }

  // After a member or item: true for ',', false for `close`; anything else is malformed.
  AGENT_TOOLS_HOT bool next(unsigned char close) {
    skip_space();
    const unsigned char c = peek();
    if (c != ',' && c != close) malformed();
    ++p_;
    skip_space();
    return c == ',';
  }

  // Items collect on items_ (shared by all nesting levels, used as a stack) so the array is
  // allocated once, at its final size, when it closes.
  json array() {
    enter();
    const std::size_t first = items_.size();
    if (peek() == ']') {
      ++p_;
    } else {
      do {
        items_.push_back(value());
      } while (next(']'));
    }
    json out(json::array_t(std::make_move_iterator(items_.begin() + static_cast<std::ptrdiff_t>(first)),
                           std::make_move_iterator(items_.end())));
    items_.resize(first);
    --depth_;
    return out;
  }

  // Members collect on members_ like items on items_; this also avoids growing the object's own
  // vector, whose pair<const std::string, json> elements would be copied, not moved, on growth.
  json object() {
    enter();
    const std::size_t first = members_.size();
    std::vector<std::uint32_t> index;  // see find_member
    if (peek() == '}') {
      ++p_;
    } else {
      do {
        if (peek() != '"') malformed();
        ++p_;
        std::string key;
        string(key);
        skip_space();
        if (peek() != ':') malformed();
        ++p_;
        skip_space();
        json item = value();
        // A repeated key keeps its first position and takes the last value, as in nlohmann.
        std::size_t slot = 0;
        const std::size_t found = find_member(first, key, index, slot);
        if (found != kNone) {
          members_[found].second = std::move(item);
        } else {
          if (!index.empty()) index[slot] = static_cast<std::uint32_t>(members_.size() - first + 1);
          members_.emplace_back(std::move(key), std::move(item));
        }
      } while (next('}'));
    }
    json out(json::object_t(std::make_move_iterator(members_.begin() + static_cast<std::ptrdiff_t>(first)),
                            std::make_move_iterator(members_.end())));
    members_.resize(first);
    --depth_;
    return out;
  }

  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  static constexpr std::size_t kIndexFrom = 16;

  // The position in members_ of the current object's member named `key`, or kNone. Small objects
  // are searched linearly; from kIndexFrom members on, `index` (an open-addressing table of
  // 1 + offset from `first`, 0 = empty) keeps a hostile object with many keys linear overall.
  // On kNone with an index, `slot` is where the new key belongs in it.
  std::size_t find_member(std::size_t first, const std::string& key, std::vector<std::uint32_t>& index,
                          std::size_t& slot) {
    const std::size_t count = members_.size() - first;
    if (count < kIndexFrom) {
      for (std::size_t i = first; i < members_.size(); ++i) {
        if (members_[i].first == key) return i;
      }
      return kNone;
    }
    if (2 * (count + 1) > index.size()) {  // keep it at most half full
      index.assign(std::bit_ceil(4 * count), 0);
      for (std::size_t i = 0; i < count; ++i) {
        std::size_t s = hash(members_[first + i].first) & (index.size() - 1);
        while (index[s]) s = (s + 1) & (index.size() - 1);
        index[s] = static_cast<std::uint32_t>(i + 1);
      }
    }
    slot = hash(key) & (index.size() - 1);
    while (const std::uint32_t entry = index[slot]) {
      if (members_[first + entry - 1].first == key) return first + entry - 1;
      slot = (slot + 1) & (index.size() - 1);
    }
    return kNone;
  }

  static std::size_t hash(const std::string& key) noexcept { return std::hash<std::string_view>{}(key); }

  // The rest of a string whose opening quote has been read, decoded into `out`. A string without
  // escapes is validated and copied in one pass. One with escapes is decoded straight into `out`,
  // sized once to the escaped length (decoding never makes text longer), as per-byte std::string
  // calls are slow, in wasm above all, where libc++'s string members are not inlined.
  void string(std::string& out) {
    const unsigned char* const start = p_;
    for (;;) {
      p_ = skip_plain(p_, end_);
      if (p_ == end_) malformed();
      if (*p_ == '"') {
        out.assign(reinterpret_cast<const char*>(start), static_cast<std::size_t>(p_ - start));
        ++p_;
        return;
      }
      if (*p_ == '\\') break;
      valid_utf8_or_malformed(end_);
    }
    const unsigned char* const close = closing_quote(p_);
    out.resize(static_cast<std::size_t>(close - start));
    char* w = out.data();
    const unsigned char* run = start;  // bytes to copy as they are
    for (;;) {
      if (p_ < close && *p_ >= 0x80) {
        valid_utf8_or_malformed(close);
      } else {
        std::memcpy(w, run, static_cast<std::size_t>(p_ - run));
        w += p_ - run;
        if (p_ == close) break;
        if (*p_ != '\\') malformed();  // a control character: they must be escaped
        w = escape(w, close);
        run = p_;
      }
      p_ = skip_plain(p_, close);
    }
    out.resize(static_cast<std::size_t>(w - out.data()));
    ++p_;
  }

  // At a byte that stopped skip_plain before `limit` that is not '"' or '\\': steps over it if it
  // starts valid UTF-8; a control character or invalid UTF-8 is malformed.
  void valid_utf8_or_malformed(const unsigned char* limit) {
    const std::size_t n = *p_ >= 0x80 ? utf8_sequence(p_, limit) : 0;
    if (n == 0) malformed();
    p_ += n;
  }

  // The quote that closes the string `p` is inside, stepping over each backslash and the byte it
  // escapes. Checking the escapes is left to the decoder.
  const unsigned char* closing_quote(const unsigned char* p) const {
    for (;;) {
      p = skip_to_quote_or_backslash(p, end_);
      if (p == end_) malformed();
      if (*p == '"') return p;
      if (end_ - p < 2) malformed();
      p += 2;
    }
  }

  // One escape sequence at p_ (a backslash), written to `w` as UTF-8; returns the end of what it
  // wrote. Reads nothing at or past `limit`, the closing quote.
  char* escape(char* w, const unsigned char* limit) {
    if (limit - p_ < 2) malformed();
    const unsigned char c = p_[1];
    p_ += 2;
    switch (c) {
      case '"': *w++ = '"'; return w;
      case '\\': *w++ = '\\'; return w;
      case '/': *w++ = '/'; return w;
      case 'b': *w++ = '\b'; return w;
      case 'f': *w++ = '\f'; return w;
      case 'n': *w++ = '\n'; return w;
      case 'r': *w++ = '\r'; return w;
      case 't': *w++ = '\t'; return w;
      case 'u': break;
      default: malformed();
    }
    std::uint32_t cp = hex4(limit);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      // A high surrogate must be followed by an escaped low one; together they are one code point.
      if (limit - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') malformed();
      p_ += 2;
      const std::uint32_t low = hex4(limit);
      if (low < 0xDC00 || low > 0xDFFF) malformed();
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      malformed();  // a low surrogate on its own
    }
    return write_utf8(w, cp);
  }

  std::uint32_t hex4(const unsigned char* limit) {
    if (limit - p_ < 4) malformed();
    std::uint32_t cp = 0;
    for (int i = 0; i < 4; ++i) {
      const int digit = hex_value(p_[i]);
      if (digit < 0) malformed();
      cp = cp << 4 | static_cast<std::uint32_t>(digit);
    }
    p_ += 4;
    return cp;
  }

  // A number, typed as nlohmann types it: no fraction or exponent and fits uint64 (without '-')
  // or int64 (with '-') -> integer; anything else -> double, and a double that overflows to
  // infinity is malformed.
  json number() {
    const unsigned char* const start = p_;
    const bool negative = peek() == '-';
    if (negative) ++p_;
    if (!is_digit(peek())) malformed();

    // The integer part's digits, as one integer. The loop does not check for overflow (unsigned
    // arithmetic wraps); the digit count says when it is exact.
    std::uint64_t mantissa = 0;
    std::size_t int_digits = 0;  // 0 for a lone "0"
    if (*p_ == '0') {
      ++p_;  // no leading zeros: a digit after this one is trailing text
    } else {
      const unsigned char* first = p_;
      for (; p_ < end_ && is_digit(*p_); ++p_) mantissa = mantissa * 10 + (*p_ - '0');
      int_digits = static_cast<std::size_t>(p_ - first);
    }
    bool is_float = false;
    if (peek() == '.') {
      ++p_;
      is_float = true;
      if (!is_digit(peek())) malformed();
      while (p_ < end_ && is_digit(*p_)) ++p_;
    }
    if ((peek() | 0x20) == 'e') {
      ++p_;
      is_float = true;
      if (peek() == '-' || peek() == '+') ++p_;
      if (!is_digit(peek())) malformed();
      while (p_ < end_ && is_digit(*p_)) ++p_;
    }

    if (!is_float) {
      // 19 digits always fit; 20 fit when the value is below 2^64: it must start with 1 and then,
      // had it wrapped, would be below 2^63 (10^19 is above).
      constexpr std::uint64_t kMinMagnitude = std::uint64_t{1} << 63;  // |INT64_MIN|
      const bool fits =
          int_digits <= 19 || (int_digits == 20 && start[negative] == '1' && mantissa >= kMinMagnitude);
      if (fits && !negative) return mantissa;
      if (fits && mantissa <= kMinMagnitude) {
        return mantissa == kMinMagnitude ? std::numeric_limits<std::int64_t>::min()
                                         : -static_cast<std::int64_t>(mantissa);
      }
      // too large for an integer type: a double, as in nlohmann
    }
    const double result = json_bytes::decimal_value(start, p_);
    if (!std::isfinite(result)) malformed();
    return result;
  }

  const unsigned char* p_;
  const unsigned char* const end_;
  const ErrorCode on_malformed_;
  const std::string_view what_;
  std::vector<json>& items_;
  std::vector<std::pair<std::string, json>>& members_;
  std::size_t depth_ = 0;
};

}  // namespace

json parse_json(std::string_view text, ErrorCode on_malformed, std::string_view what) {
  if (text.size() > MAX_MESSAGE_BYTES) {
    throw Error(ErrorCode::input_too_large,
                std::string(what) + " is " + std::to_string(text.size()) + " bytes; the limit is " +
                    std::to_string(MAX_MESSAGE_BYTES));
  }
  return Parser(text, on_malformed, what).document();
}

namespace {

// How each ASCII byte is written inside a JSON string literal: 0 as it is, otherwise the letter
// after the backslash ('u' for the \u00XX form of the remaining control characters).
constexpr std::array<char, 128> kEscapes = [] {
  std::array<char, 128> table{};
  for (int c = 0; c < 0x20; ++c) table[static_cast<std::size_t>(c)] = 'u';
  table['\b'] = 'b';
  table['\f'] = 'f';
  table['\n'] = 'n';
  table['\r'] = 'r';
  table['\t'] = 't';
  table['"'] = '"';
  table['\\'] = '\\';
  return table;
}();

constexpr std::uint64_t kLows = 0x7F7F7F7F7F7F7F7F;

AGENT_TOOLS_HOT std::uint64_t load8(const unsigned char* p) noexcept {
  std::uint64_t word;
  std::memcpy(&word, p, 8);
  return word;
}

// The high bit of each byte of `w` that equals `c`, and no other bit (exact, unlike zero_bytes,
// because the escaper counts them).
AGENT_TOOLS_HOT std::uint64_t bytes_equal(std::uint64_t w, unsigned char c) noexcept {
  std::uint64_t v = w ^ (kOnes * c);
  return ~(((v & kLows) + kLows) | v | kLows);
}

// The high bit of each control character (< 0x20) and each non-ASCII byte of `w`.
AGENT_TOOLS_HOT std::uint64_t control_or_high(std::uint64_t w) noexcept {
  return (~(((w & kLows) + kOnes * 0x60) | w) & kHighs) | (w & kHighs);
}

// One byte that needs a look, written at `w`; returns how many input bytes it took.
AGENT_TOOLS_HOT std::size_t escape_byte(char*& w, const unsigned char* p, const unsigned char* end) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  unsigned c = *p;
  if (c < 0x80) {
    char e = kEscapes[c];
    if (e == 'u') {
      const char escape[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      std::memcpy(w, escape, 6);
      w += 6;
    } else {
      // Branch-free for the common cases: the second byte is overwritten when unused.
      w[0] = e != 0 ? '\\' : static_cast<char>(c);
      w[1] = e;
      w += e != 0 ? 2 : 1;
    }
    return 1;
  }
  if (std::size_t n = utf8_sequence(p, end)) {
    std::memcpy(w, p, n);
    w += n;
    return n;
  }
  std::memcpy(w, "\xEF\xBF\xBD", 3);  // invalid UTF-8: U+FFFD, as dump_json promises
  w += 3;
  return 1;
}

// The escaped length of the characters starting in [p, to), looked at byte by byte; leaves `p`
// after the last one (a UTF-8 sequence may run past `to`).
std::size_t escaped_size_slow(const unsigned char*& p, const unsigned char* to, const unsigned char* end) noexcept {
  std::size_t size = 0;
  char sink[8];
  while (p < to) {
    char* w = sink;
    p += escape_byte(w, p, end);
    size += static_cast<std::size_t>(w - sink);
  }
  return size;
}

}  // namespace

namespace json_bytes {

// Sizing: a word with only quotes and backslashes among its specials costs a popcount.
std::size_t escaped_size(std::string_view text) noexcept {
  auto p = reinterpret_cast<const unsigned char*>(text.data());
  const auto end = p + text.size();
  std::size_t size = 0;
  while (end - p >= 8) {
    std::uint64_t word = load8(p);
    if (control_or_high(word) == 0) {
      size += 8 + static_cast<std::size_t>(std::popcount(bytes_equal(word, '"') | bytes_equal(word, '\\')));
      p += 8;
    } else {
      size += escaped_size_slow(p, p + 8, end);
    }
  }
  return size + escaped_size_slow(p, end, end);
}

// Writing: each word is stored whole (the plain bytes before its first special land where they
// belong, the rest is overwritten), then the special is escaped. JSON inside JSON has a quote
// every few bytes, so the cost is per special, not per byte. `w` needs 8 bytes of slack.
char* escape_to(char* w, std::string_view text) noexcept {
  auto p = reinterpret_cast<const unsigned char*>(text.data());
  const auto end = p + text.size();
  while (end - p >= 8) {
    std::uint64_t word = load8(p);
    std::memcpy(w, &word, 8);
    std::uint64_t special = bytes_equal(word, '"') | bytes_equal(word, '\\') | control_or_high(word);
    if (special == 0) {
      w += 8;
      p += 8;
      continue;
    }
    auto plain = static_cast<std::size_t>(std::countr_zero(special) >> 3);
    w += plain;
    p += plain;
    p += escape_byte(w, p, end);
  }
  while (p < end) p += escape_byte(w, p, end);
  return w;
}

}  // namespace json_bytes


void append_json_string(std::string& out, std::string_view text) {
  std::size_t size = escaped_size(text);
  std::size_t start = out.size();
  out.resize(start + size + 2 + 8);  // 8 bytes of slack for escape_to's whole-word stores
  out[start] = '"';
  char* end = escape_to(out.data() + start + 1, text);
  *end = '"';
  out.resize(start + size + 2);
}

std::string decode_json_string(std::string_view literal) {
  std::string out;
  assign_decoded(out, literal.substr(1, literal.size() - 2));
  return out;
}

#undef AGENT_TOOLS_HOT

// The core's own serialiser: strings through the escaper above, numbers through nlohmann (for
// its exact float formatting). Several times faster than json::dump on the documents the core
// writes on every host call, and it never throws.
void write_json(std::string& out, const json& value) {
  switch (value.type()) {
    case json::value_t::string:
      append_json_string(out, value.get_ref<const std::string&>());
      break;
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const json& item : value) {
        if (!first) out += ',';
        first = false;
        write_json(out, item);
      }
      out += ']';
      break;
    }
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, item] : value.items()) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, key);
        out += ':';
        write_json(out, item);
      }
      out += '}';
      break;
    }
    case json::value_t::number_integer:
      out += std::to_string(value.get<std::int64_t>());
      break;
    case json::value_t::number_unsigned:
      out += std::to_string(value.get<std::uint64_t>());
      break;
    case json::value_t::boolean:
      out += value.get<bool>() ? "true" : "false";
      break;
    case json::value_t::null:
    case json::value_t::discarded:
      out += "null";
      break;
    default:  // floats and binary: nlohmann's formatting
      out += value.dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

std::string dump_json(const json& value) {
  std::string out;
  write_json(out, value);
  return out;
}

}  // namespace agent_tools
