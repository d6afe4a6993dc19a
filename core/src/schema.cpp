// JSON Schema 2020-12 validation (see schema.hpp for what is supported).
//
// compile() turns the schema document into a flat table of nodes, one per subschema, with every
// `$ref` resolved to a node index and every `pattern` compiled to a small program. It walks the
// document with a work list, never by recursion, so a long `$ref` chain or a deep schema cannot
// exhaust the stack. validate() recurses over the nodes and the instance together, but never deeper
// than kMaxEvalDepth frames: an instance nested beyond that yields a "depth" issue.
//
// Regular expressions: std::regex would add about 58 KB (gzipped) to the wasm build and backtracks
// exponentially on patterns like (a*)*b, so patterns run on an own engine: a Pike VM (Thompson NFA
// simulation) over Unicode code points, linear in the input, without recursion. It covers the
// ECMA-262 syntax schemas use in practice (literals, ., classes with ranges and negation, \d \w \s
// and their negations, escapes, ^ $ \b \B, groups of every capturing kind, |, greedy and lazy
// * + ? {n} {n,} {n,m}); lookaround, backreferences and \p{...} are rejected at compile time.
#include "agent_tools/schema.hpp"

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>

#include "agent_tools/json.hpp"
#include "agent_tools/json_text.hpp"
#include "json_bytes.hpp"

namespace agent_tools::schema {

namespace {

constexpr std::int32_t kNone = -1;
constexpr std::uint64_t kUnbounded = UINT64_MAX;
// Frames of Validator::eval at most. The instance depth is capped at MAX_JSON_DEPTH when it comes
// through parse_json; this leaves room for several in-place applicators (allOf, anyOf, ...) per
// level (a $ref alone costs none). Measured in the wasm build: 4,000 frames fit in both the 256 KB
// stack and V8's native stack, 8,000 exhaust the latter.
// Text mode tracks required members in a bitset of this many bits; longer lists use the tree.
constexpr std::size_t kTextRequired = 128;
constexpr int kMaxEvalDepth = 8 * static_cast<int>(MAX_JSON_DEPTH);

// The wasm build compiles with -O3, which would inline compile-time and error-path code into the
// few hot functions (and their frames into every level of recursion). Such code is kept out of
// line and, under clang, optimised for size.
#if defined(__clang__)
#define AT_SCHEMA_SMALL __attribute__((minsize, noinline))
#else
#define AT_SCHEMA_SMALL __attribute__((noinline))
#endif
#define AT_SCHEMA_NOINLINE __attribute__((noinline))

// Heapsort of indices: O(n log n), no recursion, and one function for every sort in this file.
using IndexLess = bool (*)(const void* context, std::uint32_t a, std::uint32_t b);

AT_SCHEMA_SMALL void sort_indices(std::vector<std::uint32_t>& v, const void* context, IndexLess less) {
  const std::size_t n = v.size();
  const auto sift = [&](std::size_t root, std::size_t end) {
    for (std::size_t child; (child = 2 * root + 1) < end; root = child) {
      if (child + 1 < end && less(context, v[child], v[child + 1])) ++child;
      if (!less(context, v[root], v[child])) return;
      std::swap(v[root], v[child]);
    }
  };
  for (std::size_t i = n / 2; i-- > 0;) sift(i, n);
  for (std::size_t end = n; end-- > 1;) {
    std::swap(v[0], v[end]);
    sift(0, end);
  }
}

// 0, 1, ..., n - 1.
std::vector<std::uint32_t> iota(std::size_t n) {
  std::vector<std::uint32_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint32_t>(i);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Text

// The code point at s[i] and its length in bytes. Invalid UTF-8 decodes to U+FFFD, one byte at a
// time (documents from parse_json are always valid; documents built in C++ may not be).
std::int32_t decode_utf8(std::string_view s, std::size_t i, std::size_t& len) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  const std::size_t left = s.size() - i;
  const unsigned char c = p[0];
  len = 1;
  if (c < 0x80) return c;
  const std::size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
  if (n == 0 || left < n) return 0xFFFD;
  std::int32_t cp = n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
  for (std::size_t k = 1; k < n; ++k) {
    if ((p[k] & 0xC0) != 0x80) return 0xFFFD;
    cp = (cp << 6) | (p[k] & 0x3F);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
    return 0xFFFD;
  }
  len = n;
  return cp;
}

// Length in code points, as JSON Schema counts string length.
std::uint64_t code_points(std::string_view s) noexcept {
  std::uint64_t count = 0;
  for (std::size_t i = 0, len = 0; i < s.size(); i += len) {
    decode_utf8(s, i, len);
    ++count;
  }
  return count;
}

// A JSON pointer token: "~" -> "~0", "/" -> "~1".
std::string pointer_token(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

// A short rendering of a JSON value for messages.
std::string brief(const json& value, std::size_t limit = 80) {
  std::string text = dump_json(value);
  if (text.size() > limit) {
    text.resize(limit);
    text += "...";
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// Numbers: exact comparison across int64, uint64 and double.

struct Int {
  bool negative;
  std::uint64_t magnitude;
};

Int as_int(const json& v) noexcept {
  if (v.is_number_unsigned()) return {false, v.get<std::uint64_t>()};
  const auto i = v.get<std::int64_t>();
  return i < 0 ? Int{true, std::uint64_t{0} - static_cast<std::uint64_t>(i)} : Int{false, static_cast<std::uint64_t>(i)};
}

int compare(Int a, Int b) noexcept {
  if (a.negative != b.negative) return a.negative ? -1 : 1;
  if (a.magnitude == b.magnitude) return 0;
  const bool less = (a.magnitude < b.magnitude) != a.negative;
  return less ? -1 : 1;
}

// Sign of (a - d); 2 when d is NaN.
int compare(Int a, double d) noexcept {
  if (std::isnan(d)) return 2;
  if (d >= 18446744073709551616.0) return -1;
  if (d <= -18446744073709551616.0) return 1;
  const double t = std::trunc(d);
  const Int whole = t < 0 ? Int{true, static_cast<std::uint64_t>(-t)} : Int{false, static_cast<std::uint64_t>(t)};
  if (int c = compare(a, whole); c != 0) return c;
  const double fraction = d - t;
  return fraction > 0 ? -1 : fraction < 0 ? 1 : 0;
}

// Sign of (a - b) for two JSON numbers, exact (so 1 == 1.0); 2 when either is NaN.
int compare_numbers(const json& a, const json& b) noexcept {
  const bool af = a.is_number_float(), bf = b.is_number_float();
  if (!af && !bf) return compare(as_int(a), as_int(b));
  if (af && bf) {
    const double x = a.get<double>(), y = b.get<double>();
    if (std::isnan(x) || std::isnan(y)) return 2;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (af) {
    const int c = compare(as_int(b), a.get<double>());
    return c == 2 ? 2 : -c;
  }
  return compare(as_int(a), b.get<double>());
}

bool is_integer(const json& v) noexcept {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::isfinite(d) && std::trunc(d) == d;
}

bool is_multiple_of(const json& v, const json& divisor) noexcept {
  if (!v.is_number_float() && !divisor.is_number_float()) {
    const Int a = as_int(v), b = as_int(divisor);
    return b.magnitude != 0 && a.magnitude % b.magnitude == 0;
  }
  const double x = v.get<double>(), d = divisor.get<double>();
  if (!(d > 0) || !std::isfinite(x)) return false;
  const double q = x / d;
  if (!std::isfinite(q)) return false;  // e.g. 1e308 / 0.123: no integer multiple is representable
  // The quotient carries a few ulps of rounding from x, d and the division.
  return std::fabs(q - std::nearbyint(q)) <= std::fabs(q) * 8 * DBL_EPSILON;
}

// ---------------------------------------------------------------------------------------------
// Types

enum TypeBit : std::uint8_t {
  t_null = 1,
  t_boolean = 2,
  t_object = 4,
  t_array = 8,
  t_number = 16,
  t_string = 32,
  t_integer = 64,
};

std::uint8_t type_bits(const json& v) noexcept {
  switch (v.type()) {
    case json::value_t::null: return t_null;
    case json::value_t::boolean: return t_boolean;
    case json::value_t::object: return t_object;
    case json::value_t::array: return t_array;
    case json::value_t::string: return t_string;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return t_number | t_integer;
    case json::value_t::number_float: return is_integer(v) ? t_number | t_integer : t_number;
    default: return 0;
  }
}

std::string_view type_name(const json& v) noexcept {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "boolean";
    case json::value_t::object: return "object";
    case json::value_t::array: return "array";
    case json::value_t::string: return "string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer";
    case json::value_t::number_float: return is_integer(v) ? "integer" : "number";
    default: return "unknown";
  }
}

// "string", "string or null", "number, string or null".
std::string type_list(std::uint8_t mask) {
  static constexpr std::pair<std::uint8_t, std::string_view> kOrder[] = {
      {t_string, "string"}, {t_number, "number"}, {t_integer, "integer"}, {t_boolean, "boolean"},
      {t_object, "object"}, {t_array, "array"},   {t_null, "null"}};
  if (mask & t_number) mask = static_cast<std::uint8_t>(mask & ~t_integer);
  std::vector<std::string_view> names;
  for (const auto& [bit, name] : kOrder) {
    if (mask & bit) names.push_back(name);
  }
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += names[i];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Regular expressions: a Pike VM over code points (see the top of the file).

namespace rx {

enum class Op : std::uint8_t { chr, any, cls, split, jmp, bol, eol, word, not_word, match };

// Jump targets are relative to the instruction, so a piece of code can be copied or shifted as is.
struct Inst {
  Op op;
  std::int32_t x = 0;  // chr: code point; cls: class index; split/jmp: first target
  std::int32_t y = 0;  // split: second target
};

struct Range {
  std::int32_t lo, hi;
};

struct Class {
  std::uint32_t begin, end;  // into Program::ranges, sorted and disjoint
  bool negated;
};

struct Program {
  std::vector<Inst> code;
  std::vector<Range> ranges;
  std::vector<Class> classes;
  bool anchored = false;  // starts with ^: only position 0 can start a match
  std::string source;
};

constexpr std::size_t kMaxProgram = 20000;
constexpr int kMaxGroupDepth = 64;
constexpr std::uint32_t kMaxRepeat = 1000;

constexpr Range kDigit[] = {{'0', '9'}};
constexpr Range kWord[] = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
constexpr Range kSpace[] = {{0x09, 0x0D}, {0x20, 0x20}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A},
                            {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};

bool is_word(std::int32_t c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

class Parser {
 public:
  Parser(std::string_view pattern, Program& out) : out_(out) {
    for (std::size_t i = 0, len = 0; i < pattern.size(); i += len) p_.push_back(decode_utf8(pattern, i, len));
  }

  AT_SCHEMA_SMALL void parse() {
    disjunction(0);
    if (i_ < p_.size()) fail("unmatched ')'");
    emit({Op::match});
    out_.anchored = out_.code.front().op == Op::bol;
  }

 private:
  [[noreturn]] AT_SCHEMA_SMALL void fail(std::string_view what) const {
    throw Error(ErrorCode::invalid_argument, std::string(what) + " at offset " + std::to_string(i_));
  }
  bool at(char32_t c) const noexcept { return i_ < p_.size() && p_[i_] == static_cast<std::int32_t>(c); }
  bool at(std::size_t ahead, char32_t c) const noexcept {
    return i_ + ahead < p_.size() && p_[i_ + ahead] == static_cast<std::int32_t>(c);
  }

  void grown() const {
    if (out_.code.size() > kMaxProgram) fail("pattern is too large");
  }
  AT_SCHEMA_SMALL void emit(Inst inst) {
    out_.code.push_back(inst);
    grown();
  }
  AT_SCHEMA_SMALL void insert(std::size_t at_index, Inst inst) {
    out_.code.insert(out_.code.begin() + static_cast<std::ptrdiff_t>(at_index), inst);
    grown();
  }

  AT_SCHEMA_SMALL void disjunction(int depth) {
    if (depth > kMaxGroupDepth) fail("groups nested too deeply");
    std::size_t alternative_start = out_.code.size();
    std::vector<std::size_t> exits;
    alternative(depth);
    while (at('|')) {
      ++i_;
      // split -> this alternative | the next one; this alternative ends with a jump past the rest.
      const auto length = static_cast<std::int32_t>(out_.code.size() - alternative_start);
      insert(alternative_start, {Op::split, 1, length + 2});
      exits.push_back(out_.code.size());
      emit({Op::jmp});
      alternative_start = out_.code.size();
      alternative(depth);
    }
    for (std::size_t exit : exits) out_.code[exit].x = static_cast<std::int32_t>(out_.code.size() - exit);
  }

  AT_SCHEMA_SMALL void alternative(int depth) {
    while (i_ < p_.size() && !at('|') && !at(')')) term(depth);
  }

  AT_SCHEMA_SMALL void term(int depth) {
    if (at('^') || at('$') || (at('\\') && (at(1, 'b') || at(1, 'B')))) {
      Op op = at('^') ? Op::bol : at('$') ? Op::eol : at(1, 'b') ? Op::word : Op::not_word;
      i_ += op == Op::bol || op == Op::eol ? 1 : 2;
      emit({op});
      std::uint32_t lo = 0, hi = 0;
      bool unbounded = false;
      if (at('*') || at('+') || at('?') || (at('{') && braces(lo, hi, unbounded, /*consume=*/false))) {
        fail("nothing to repeat");
      }
      return;
    }
    const std::size_t start = out_.code.size();
    atom(depth);
    quantifier(start);
  }

  AT_SCHEMA_SMALL void atom(int depth) {
    const std::int32_t c = p_[i_];
    switch (c) {
      case '.': ++i_; emit({Op::any}); return;
      case '(': group(depth); return;
      case '[': char_class(); return;
      case '\\': escape(); return;
      case '*': case '+': case '?': fail("nothing to repeat");
      case '{': {
        std::uint32_t lo = 0, hi = 0;
        bool unbounded = false;
        if (braces(lo, hi, unbounded, /*consume=*/false)) fail("nothing to repeat");
        ++i_;
        emit({Op::chr, '{'});  // a '{' that starts no quantifier is a literal (ECMA-262 Annex B)
        return;
      }
      default: ++i_; emit({Op::chr, c}); return;  // includes a lone ']' or '}' (Annex B)
    }
  }

  AT_SCHEMA_SMALL void group(int depth) {
    ++i_;  // (
    if (at('?')) {
      if (at(1, ':')) {
        i_ += 2;
      } else if (at(1, '=') || at(1, '!') || (at(1, '<') && (at(2, '=') || at(2, '!')))) {
        fail("lookaround assertions are not supported");
      } else if (at(1, '<')) {  // named group: the name does not matter for matching
        i_ += 2;
        while (i_ < p_.size() && !at('>')) ++i_;
        if (!at('>')) fail("unterminated group name");
        ++i_;
      } else {
        fail("invalid group");
      }
    }
    disjunction(depth + 1);
    if (!at(')')) fail("missing ')'");
    ++i_;
  }

  // {n}, {n,} or {n,m} at i_; false (consuming nothing) when the text there is not one.
  AT_SCHEMA_SMALL bool braces(std::uint32_t& lo, std::uint32_t& hi, bool& unbounded, bool consume) {
    std::size_t j = i_ + 1;
    auto number = [&](std::uint32_t& value) {
      const std::size_t first = j;
      std::uint64_t v = 0;
      while (j < p_.size() && p_[j] >= '0' && p_[j] <= '9') {
        v = std::min<std::uint64_t>(v * 10 + static_cast<std::uint64_t>(p_[j] - '0'), std::uint64_t{1} << 32);
        ++j;
      }
      value = static_cast<std::uint32_t>(std::min<std::uint64_t>(v, UINT32_MAX));
      return j > first;
    };
    if (!number(lo)) return false;
    unbounded = false;
    hi = lo;
    if (j < p_.size() && p_[j] == ',') {
      ++j;
      if (!number(hi)) unbounded = true;
    }
    if (j >= p_.size() || p_[j] != '}') return false;
    if (consume) i_ = j + 1;
    return true;
  }

  AT_SCHEMA_SMALL void quantifier(std::size_t start) {
    std::uint32_t lo = 0, hi = 0;
    bool unbounded = false;
    if (at('*')) {
      unbounded = true;
      ++i_;
    } else if (at('+')) {
      lo = 1;
      unbounded = true;
      ++i_;
    } else if (at('?')) {
      hi = 1;
      ++i_;
    } else if (!at('{') || !braces(lo, hi, unbounded, /*consume=*/true)) {
      return;
    }
    if (at('?')) ++i_;  // lazy: the same strings match somewhere, which is all a search asks
    {
      std::uint32_t a = 0, b = 0;
      bool u = false;
      if (at('*') || at('+') || at('?') || (at('{') && braces(a, b, u, /*consume=*/false))) fail("nothing to repeat");
    }
    if (lo > kMaxRepeat || (!unbounded && hi > kMaxRepeat)) fail("repetition count too large");
    if (!unbounded && lo > hi) fail("numbers out of order in {} quantifier");
    repeat(start, lo, hi, unbounded);
  }

  AT_SCHEMA_SMALL void repeat(std::size_t start, std::uint32_t lo, std::uint32_t hi, bool unbounded) {
    auto& code = out_.code;
    const auto length = static_cast<std::int32_t>(code.size() - start);
    if (unbounded && lo == 1) {  // x+  =>  L: x; split L, next
      emit({Op::split, -length, 1});
      return;
    }
    if (unbounded && lo == 0) {  // x*  =>  L: split +1, out; x; jmp L
      insert(start, {Op::split, 1, length + 2});
      emit({Op::jmp, -(length + 1)});
      return;
    }
    if (!unbounded && lo == 0 && hi == 1) {  // x?  =>  split +1, out; x
      insert(start, {Op::split, 1, length + 1});
      return;
    }
    // General counts: lo copies, then either x* or (hi - lo) nested optional copies.
    const std::uint64_t copies = std::uint64_t{lo} + (unbounded ? 1 : hi - lo);
    if (start + copies * (static_cast<std::uint64_t>(length) + 2) > kMaxProgram) fail("pattern is too large");
    const std::vector<Inst> body(code.begin() + static_cast<std::ptrdiff_t>(start), code.end());
    code.resize(start);
    for (std::uint32_t k = 0; k < lo; ++k) code.insert(code.end(), body.begin(), body.end());
    if (unbounded) {
      code.push_back({Op::split, 1, length + 2});
      code.insert(code.end(), body.begin(), body.end());
      code.push_back({Op::jmp, -(length + 1)});
    } else {
      std::vector<std::size_t> splits;
      for (std::uint32_t k = lo; k < hi; ++k) {
        splits.push_back(code.size());
        code.push_back({Op::split, 1, 0});
        code.insert(code.end(), body.begin(), body.end());
      }
      for (std::size_t s : splits) code[s].y = static_cast<std::int32_t>(code.size() - s);
    }
    grown();
  }

  int hex_digit(std::size_t at_index) const noexcept {
    if (at_index >= p_.size()) return -1;
    const std::int32_t c = p_[at_index];
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // `count` hex digits at i_, consumed; -1 (nothing consumed) if they are not there.
  AT_SCHEMA_SMALL std::int32_t hex(int count) {
    std::int32_t value = 0;
    for (int k = 0; k < count; ++k) {
      const int d = hex_digit(i_ + static_cast<std::size_t>(k));
      if (d < 0) return -1;
      value = value * 16 + d;
    }
    i_ += static_cast<std::size_t>(count);
    return value;
  }

  // The character of an escape whose letter `e` was just consumed (not a class escape).
  AT_SCHEMA_SMALL std::int32_t escaped_char(std::int32_t e) {
    switch (e) {
      case 't': return '\t';
      case 'n': return '\n';
      case 'v': return '\v';
      case 'f': return '\f';
      case 'r': return '\r';
      case '0':
        if (i_ < p_.size() && p_[i_] >= '0' && p_[i_] <= '9') fail("octal escapes are not supported");
        return 0;
      case 'x': {
        const std::int32_t v = hex(2);
        if (v < 0) fail("invalid \\x escape");
        return v;
      }
      case 'u': {
        if (at('{')) {
          ++i_;
          std::int32_t v = 0;
          int digits = 0;
          for (int d; (d = hex_digit(i_)) >= 0; ++i_, ++digits) {
            v = v * 16 + d;
            if (v > 0x10FFFF) fail("invalid \\u{...} escape");
          }
          if (digits == 0 || !at('}')) fail("invalid \\u{...} escape");
          ++i_;
          return v;
        }
        std::int32_t v = hex(4);
        if (v < 0) fail("invalid \\u escape");
        if (v >= 0xD800 && v <= 0xDBFF && at('\\') && at(1, 'u')) {  // a surrogate pair is one code point
          const std::size_t save = i_;
          i_ += 2;
          const std::int32_t low = hex(4);
          if (low >= 0xDC00 && low <= 0xDFFF) return 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00);
          i_ = save;
        }
        return v;
      }
      case 'c':
        if (i_ < p_.size() && ((p_[i_] >= 'a' && p_[i_] <= 'z') || (p_[i_] >= 'A' && p_[i_] <= 'Z'))) {
          return p_[i_++] % 32;
        }
        fail("invalid \\c escape");
      case 'p': case 'P': fail("Unicode property escapes (\\p{...}) are not supported");
      case 'k': fail("named backreferences are not supported");
      default: break;
    }
    if (e >= '1' && e <= '9') fail("backreferences are not supported");
    if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9') || e == '_') {
      fail("unknown escape");
    }
    return e;  // an escaped syntax character or other punctuation stands for itself
  }

  static bool is_class_escape(std::int32_t e) noexcept {
    return e == 'd' || e == 'D' || e == 'w' || e == 'W' || e == 's' || e == 'S';
  }

  // Adds the ranges of \d \D \w \W \s \S to `set`.
  AT_SCHEMA_SMALL static void add_class_escape(std::vector<Range>& set, std::int32_t e) {
    const Range* begin = kDigit;
    const Range* end = std::end(kDigit);
    if (e == 'w' || e == 'W') begin = kWord, end = std::end(kWord);
    if (e == 's' || e == 'S') begin = kSpace, end = std::end(kSpace);
    if (e == 'd' || e == 'w' || e == 's') {
      set.insert(set.end(), begin, end);
      return;
    }
    std::int32_t next = 0;  // the complement over [0, 0x10FFFF]
    for (const Range* r = begin; r != end; ++r) {
      if (r->lo > next) set.push_back({next, r->lo - 1});
      next = r->hi + 1;
    }
    set.push_back({next, 0x10FFFF});
  }

  AT_SCHEMA_SMALL std::int32_t add_class(const std::vector<Range>& set, bool negated) {
    std::vector<std::uint32_t> order = iota(set.size());
    sort_indices(order, &set, [](const void* c, std::uint32_t a, std::uint32_t b) {
      const auto& ranges = *static_cast<const std::vector<Range>*>(c);
      return ranges[a].lo < ranges[b].lo;
    });
    const auto begin = static_cast<std::uint32_t>(out_.ranges.size());
    for (std::uint32_t i : order) {
      const Range& r = set[i];
      if (out_.ranges.size() > begin && r.lo <= out_.ranges.back().hi + 1) {
        out_.ranges.back().hi = std::max(out_.ranges.back().hi, r.hi);
      } else {
        out_.ranges.push_back(r);
      }
    }
    out_.classes.push_back({begin, static_cast<std::uint32_t>(out_.ranges.size()), negated});
    return static_cast<std::int32_t>(out_.classes.size() - 1);
  }

  AT_SCHEMA_SMALL void escape() {
    ++i_;  // backslash
    if (i_ >= p_.size()) fail("\\ at end of pattern");
    const std::int32_t e = p_[i_++];
    if (is_class_escape(e)) {
      std::vector<Range> set;
      add_class_escape(set, e);
      emit({Op::cls, add_class(set, false)});
      return;
    }
    emit({Op::chr, escaped_char(e)});
  }

  // One class atom at i_: true with `c` set for a character, false after adding a class escape.
  AT_SCHEMA_SMALL bool class_atom(std::vector<Range>& set, std::int32_t& c) {
    c = p_[i_++];
    if (c != '\\') return true;
    if (i_ >= p_.size()) fail("\\ at end of pattern");
    const std::int32_t e = p_[i_++];
    if (is_class_escape(e)) {
      add_class_escape(set, e);
      return false;
    }
    if (e == 'b') c = '\b';
    else if (e == '-') c = '-';
    else c = escaped_char(e);
    return true;
  }

  AT_SCHEMA_SMALL void char_class() {
    ++i_;  // [
    const bool negated = at('^');
    if (negated) ++i_;
    std::vector<Range> set;
    for (;;) {
      if (i_ >= p_.size()) fail("missing ']'");
      if (at(']')) {
        ++i_;
        break;
      }
      std::int32_t lo = 0;
      const bool lo_char = class_atom(set, lo);
      if (at('-') && i_ + 1 < p_.size() && !at(1, ']')) {
        ++i_;
        std::int32_t hi = 0;
        const bool hi_char = class_atom(set, hi);
        if (lo_char && hi_char) {
          if (lo > hi) fail("range out of order in character class");
          set.push_back({lo, hi});
        } else {  // [\d-x]: the '-' is a literal (Annex B)
          if (lo_char) set.push_back({lo, lo});
          if (hi_char) set.push_back({hi, hi});
          set.push_back({'-', '-'});
        }
      } else if (lo_char) {
        set.push_back({lo, lo});
      }
    }
    emit({Op::cls, add_class(set, negated)});
  }

  Program& out_;
  std::vector<std::int32_t> p_;  // the pattern as code points
  std::size_t i_ = 0;
};

// Per-validation scratch space, reused by every search so matching allocates only at first use.
// Every array is indexed by instruction and sized for the largest program searched so far: a
// thread list holds each instruction at most once, and the stack of add_thread() holds at most one
// entry per split.
struct Scratch {
  std::vector<std::int32_t> lists;  // the current list at [0, n), the next one at [n, 2n)
  std::vector<std::int32_t> stack;
  std::vector<std::uint32_t> mark;  // mark[pc] == generation: pc is already on the list being built
  std::uint32_t generation = 0;

  void reserve(std::size_t n) {
    if (mark.size() >= n) return;
    lists.resize(2 * n);
    stack.resize(n + 1);
    mark.resize(n, 0);
  }
  void next_generation() {
    if (++generation == 0) {
      std::fill(mark.begin(), mark.end(), 0);
      generation = 1;
    }
  }
};

bool class_contains(const Program& prog, const Class& cls, std::int32_t c) noexcept {
  const Range* begin = prog.ranges.data() + cls.begin;
  const Range* end = prog.ranges.data() + cls.end;
  const Range* it = std::upper_bound(begin, end, c, [](std::int32_t v, const Range& r) { return v < r.lo; });
  const bool inside = it != begin && c <= (it - 1)->hi;
  return inside != cls.negated;
}

bool consumes(const Program& prog, const Inst& inst, std::int32_t c) noexcept {
  switch (inst.op) {
    case Op::chr: return c == inst.x;
    case Op::any: return c != '\n' && c != '\r' && c != 0x2028 && c != 0x2029;
    case Op::cls: return class_contains(prog, prog.classes[static_cast<std::size_t>(inst.x)], c);
    default: return false;
  }
}

// Follows jumps and zero-width assertions from `pc` between code points `prev` and `next` (-1 at
// the ends of the input), appending the consuming instructions reached to list[0, count). True if
// the match instruction is reachable.
bool add_thread(const Program& prog, Scratch& sc, std::int32_t* list, std::size_t& count, std::int32_t pc,
                std::int32_t prev, std::int32_t next) noexcept {
  const Inst* code = prog.code.data();
  std::uint32_t* mark = sc.mark.data();
  const std::uint32_t generation = sc.generation;
  std::int32_t* stack = sc.stack.data();
  std::size_t depth = 0;
  stack[depth++] = pc;
  while (depth > 0) {
    for (std::int32_t at = stack[--depth];;) {  // follows one path, stacking the other side of splits
      if (mark[at] == generation) break;
      mark[at] = generation;
      const Inst& inst = code[at];
      bool pass = false;
      switch (inst.op) {
        case Op::jmp: at += inst.x; continue;
        case Op::split:
          stack[depth++] = at + inst.y;
          at += inst.x;
          continue;
        case Op::bol: pass = prev < 0; break;
        case Op::eol: pass = next < 0; break;
        case Op::word: pass = is_word(prev) != is_word(next); break;
        case Op::not_word: pass = is_word(prev) == is_word(next); break;
        case Op::match: return true;
        default: list[count++] = at; break;
      }
      if (!pass) break;
      ++at;
    }
  }
  return false;
}

// Whether the pattern matches anywhere in `text` (JSON Schema patterns are not anchored).
bool search(const Program& prog, std::string_view text, Scratch& sc) {
  const std::size_t size = prog.code.size();
  sc.reserve(size);
  std::int32_t* current = sc.lists.data();
  std::int32_t* next_list = current + size;
  std::size_t current_count = 0;
  std::size_t pos = 0, len = 0;
  std::int32_t prev = -1;
  std::int32_t cur = text.empty() ? -1 : decode_utf8(text, 0, len);
  sc.next_generation();
  for (;;) {
    if ((!prog.anchored || pos == 0) && add_thread(prog, sc, current, current_count, 0, prev, cur)) return true;
    if (cur < 0 || (prog.anchored && current_count == 0)) return false;
    const std::size_t next_pos = pos + len;
    std::size_t next_len = 0;
    const std::int32_t next = next_pos < text.size() ? decode_utf8(text, next_pos, next_len) : -1;
    sc.next_generation();
    std::size_t next_count = 0;
    for (std::size_t i = 0; i < current_count; ++i) {
      const std::int32_t pc = current[i];
      if (consumes(prog, prog.code[static_cast<std::size_t>(pc)], cur) &&
          add_thread(prog, sc, next_list, next_count, pc + 1, cur, next)) {
        return true;
      }
    }
    std::swap(current, next_list);
    current_count = next_count;
    prev = cur;
    cur = next;
    pos = next_pos;
    len = next_len;
  }
}

}  // namespace rx

// ---------------------------------------------------------------------------------------------
// Compiled form

enum class Kind : std::uint8_t { schema, accept, reject };  // an object schema, `true`, `false`

struct Node {
  Kind kind = Kind::schema;
  std::uint8_t types = 0;  // TypeBit mask; 0: any type
  bool unique_items = false;
  bool has_const = false;
  bool ref_only = false;  // nothing but a $ref: evaluation goes straight to the target
  std::int32_t ref = kNone, items = kNone, contains = kNone, additional = kNone, property_names = kNone;
  std::int32_t not_ = kNone, if_ = kNone, then_ = kNone, else_ = kNone, pattern = kNone;
  std::uint64_t min_length = 0, max_length = kUnbounded, min_items = 0, max_items = kUnbounded;
  std::uint64_t min_contains = 1, max_contains = kUnbounded, min_properties = 0, max_properties = kUnbounded;
  json minimum, maximum, exclusive_minimum, exclusive_maximum, multiple_of;  // null when absent
  json enum_values;  // an array, or null when absent
  json const_value;
  std::vector<std::int32_t> prefix_items, all_of, any_of, one_of;
  std::vector<std::pair<std::string, std::int32_t>> properties;          // sorted by name
  std::vector<std::pair<std::int32_t, std::int32_t>> pattern_properties;  // (regex, node)
  std::vector<std::string> required;
  std::vector<std::pair<std::string, std::vector<std::string>>> dependent_required;
  std::vector<std::pair<std::string, std::int32_t>> dependent_schemas;
  // For the text mode, set once compiled (see prepare_text_mode): whether the node's keywords can
  // be checked as a value's text goes by, and for each property its index in `required` (or -1).
  bool streams = false;
  bool required_all_declared = true;  // every required name is among the properties
  std::vector<std::int32_t> property_required;
};

// The k-th subschema `n` applies to the same value (not to a part of it), or kNone after the last.
std::int32_t in_place_edge(const Node& n, std::size_t k) noexcept {
  const std::int32_t singles[] = {n.ref, n.not_};
  for (std::int32_t id : singles) {
    if (id != kNone && k-- == 0) return id;
  }
  for (const auto* list : {&n.all_of, &n.any_of, &n.one_of}) {
    if (k < list->size()) return (*list)[k];
    k -= list->size();
  }
  if (n.if_ != kNone && (n.then_ != kNone || n.else_ != kNone)) {
    const std::int32_t conditional[] = {n.if_, n.then_, n.else_};
    for (std::int32_t id : conditional) {
      if (id != kNone && k-- == 0) return id;
    }
  }
  return k < n.dependent_schemas.size() ? n.dependent_schemas[k].second : kNone;
}

}  // namespace

struct Schema::Compiled {
  std::vector<Node> nodes;  // nodes[0] is the root
  std::vector<rx::Program> regexes;
};

namespace {

// ---------------------------------------------------------------------------------------------
// Compiler

[[noreturn]] AT_SCHEMA_SMALL void unusable(const std::string& location, std::string_view what) {
  throw Error(ErrorCode::invalid_argument, "schema " + location + ": " + std::string(what));
}

// Throws INPUT_TOO_LARGE for a document nested deeper than MAX_JSON_DEPTH, without recursing.
AT_SCHEMA_SMALL void check_depth(const json& root) {
  std::vector<std::pair<const json*, std::uint32_t>> stack{{&root, 1}};
  while (!stack.empty()) {
    const auto [value, depth] = stack.back();
    stack.pop_back();
    if (!value->is_structured()) continue;
    if (depth > MAX_JSON_DEPTH) {
      throw Error(ErrorCode::input_too_large, "schema is nested deeper than " + std::to_string(MAX_JSON_DEPTH) + " levels");
    }
    for (const auto& child : *value) {
      if (child.is_structured()) stack.emplace_back(&child, depth + 1);
    }
  }
}

// const json* -> node id; open addressing, so compiling costs no std::map.
class PointerIndex {
 public:
  std::int32_t find(const json* key) const noexcept {
    if (slots_.empty()) return kNone;
    for (std::size_t i = slot(key);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i].first == key) return slots_[i].second;
      if (!slots_[i].first) return kNone;
    }
  }
  AT_SCHEMA_SMALL void insert(const json* key, std::int32_t id) {
    if (2 * (used_ + 1) > slots_.size()) {
      std::vector<std::pair<const json*, std::int32_t>> old(std::max<std::size_t>(16, 2 * slots_.size()));
      old.swap(slots_);
      used_ = 0;
      for (const auto& e : old) {
        if (e.first) insert(e.first, e.second);
      }
    }
    std::size_t i = slot(key);
    while (slots_[i].first) i = (i + 1) & (slots_.size() - 1);
    slots_[i] = {key, id};
    ++used_;
  }

 private:
  std::size_t slot(const json* key) const noexcept {
    const auto h = (static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(key)) >> 3) * 0x9E3779B97F4A7C15ULL;
    return static_cast<std::size_t>(h >> 32) & (slots_.size() - 1);
  }
  std::vector<std::pair<const json*, std::int32_t>> slots_;
  std::size_t used_ = 0;
};

class Compiler {
 public:
  Compiler(const json& root, Schema::Compiled& out) : root_(root), out_(out) {}

  AT_SCHEMA_SMALL void run() {
    check_depth(root_);
    if (root_.is_object()) {
      const auto id = root_.find("$id");
      if (id != root_.end() && id->is_string()) {
        root_id_ = id->get<std::string>();
        if (!root_id_.empty() && root_id_.back() == '#') root_id_.pop_back();
      }
    }
    node_for(root_, &root_, "#");
    while (!work_.empty()) {
      const Work w = work_.back();
      work_.pop_back();
      compile_node(w);
    }
    check_cycles();
  }

 private:
  struct Work {
    std::int32_t id;
    const json* schema;
    const json* resource;  // the schema resource "#..." references resolve against
  };

  AT_SCHEMA_SMALL std::int32_t node_for(const json& schema, const json* resource, std::string location) {
    if (const std::int32_t known = index_.find(&schema); known != kNone) return known;
    if (!schema.is_object() && !schema.is_boolean()) unusable(location, "a schema must be an object or a boolean");
    const auto id = static_cast<std::int32_t>(out_.nodes.size());
    out_.nodes.emplace_back();
    locations_.push_back(std::move(location));
    index_.insert(&schema, id);
    work_.push_back({id, &schema, resource});
    return id;
  }

  AT_SCHEMA_SMALL static std::uint64_t count(const json& v, const std::string& location) {
    if (is_integer(v) && compare_numbers(v, json(0)) >= 0) {
      if (v.is_number_float()) return v.get<double>() >= 1.8e19 ? kUnbounded : static_cast<std::uint64_t>(v.get<double>());
      return v.get<std::uint64_t>();
    }
    unusable(location, "must be a non-negative integer");
  }

  AT_SCHEMA_SMALL static json number(const json& v, const std::string& location) {
    if (!v.is_number() || (v.is_number_float() && std::isnan(v.get<double>()))) unusable(location, "must be a number");
    return v;
  }

  AT_SCHEMA_SMALL static std::vector<std::string> strings(const json& v, const std::string& location) {
    if (!v.is_array()) unusable(location, "must be an array of strings");
    std::vector<std::string> out;
    out.reserve(v.size());
    for (const auto& s : v) {
      if (!s.is_string()) unusable(location, "must be an array of strings");
      out.push_back(s.get<std::string>());
    }
    return out;
  }

  AT_SCHEMA_SMALL static std::uint8_t type_mask(const json& v, const std::string& location) {
    static constexpr std::pair<std::string_view, std::uint8_t> kNames[] = {
        {"null", t_null},     {"boolean", t_boolean}, {"object", t_object}, {"array", t_array},
        {"number", t_number}, {"string", t_string},   {"integer", t_integer}};
    auto one = [&](const json& name) -> std::uint8_t {
      if (name.is_string()) {
        for (const auto& [text, bit] : kNames) {
          if (name.get_ref<const std::string&>() == text) return bit;
        }
      }
      unusable(location, "unknown type " + brief(name));
    };
    if (!v.is_array()) return one(v);
    if (v.empty()) unusable(location, "must not be an empty array");
    std::uint8_t mask = 0;
    for (const auto& name : v) mask |= one(name);
    return mask;
  }

  AT_SCHEMA_SMALL std::int32_t regex(const std::string& source, const std::string& location) {
    rx::Program prog;
    prog.source = source;
    try {
      rx::Parser(source, prog).parse();
    } catch (const Error& e) {
      unusable(location, "invalid or unsupported regular expression " + brief(json(source)) + ": " + e.message());
    }
    out_.regexes.push_back(std::move(prog));
    return static_cast<std::int32_t>(out_.regexes.size() - 1);
  }

  // "#..." within `resource`, or "<root $id>#..." within the document.
  AT_SCHEMA_SMALL std::int32_t resolve(const std::string& ref, const json* resource, const std::string& location) {
    const std::size_t hash = ref.find('#');
    const std::string_view base = std::string_view(ref).substr(0, hash);
    const json* at = resource;
    if (!base.empty()) {
      if (base != root_id_) {
        unusable(location, "$ref " + brief(json(ref)) +
                               " is not supported: only references within the document (\"#...\") are");
      }
      at = &root_;
    }
    std::string pointer;  // percent-decoded fragment
    if (hash != std::string::npos) {
      for (std::size_t i = hash + 1; i < ref.size(); ++i) {
        if (ref[i] != '%') {
          pointer += ref[i];
          continue;
        }
        auto hex = [&](std::size_t k) -> int {
          const char c = k < ref.size() ? ref[k] : '\0';
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'a' && c <= 'f') return c - 'a' + 10;
          return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        };
        const int hi = hex(i + 1), lo = hex(i + 2);
        if (hi < 0 || lo < 0) unusable(location, "$ref " + brief(json(ref)) + " has an invalid %-escape");
        pointer += static_cast<char>(hi * 16 + lo);
        i += 2;
      }
    }
    if (!pointer.empty() && pointer[0] != '/') {
      unusable(location, "$ref " + brief(json(ref)) + " is not supported: $anchor names are not resolved");
    }
    const json* res = at;
    for (std::size_t start = 1; start <= pointer.size() && !pointer.empty();) {
      std::size_t end = pointer.find('/', start);
      if (end == std::string::npos) end = pointer.size();
      std::string token;
      for (std::size_t i = start; i < end; ++i) {
        if (pointer[i] == '~' && i + 1 < end && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
          token += pointer[++i] == '0' ? '~' : '/';
        } else {
          token += pointer[i];
        }
      }
      start = end + 1;
      const json* next = nullptr;
      if (at->is_object()) {
        if (const auto it = at->find(token); it != at->end()) next = &*it;
      } else if (at->is_array() && !token.empty() && token.size() < 10 &&
                 token.find_first_not_of("0123456789") == std::string::npos && (token == "0" || token[0] != '0')) {
        const auto i = std::stoul(token);
        if (i < at->size()) next = &(*at)[i];
      }
      if (!next) unusable(location, "$ref " + brief(json(ref)) + " points to nothing");
      at = next;
      if (at->is_object() && at->contains("$id")) res = at;
    }
    return node_for(*at, res, ref);
  }

  AT_SCHEMA_SMALL void compile_node(const Work& w) {
    const json& s = *w.schema;
    Node n;
    if (s.is_boolean()) {
      n.kind = s.get<bool>() ? Kind::accept : Kind::reject;
      out_.nodes[static_cast<std::size_t>(w.id)] = std::move(n);
      return;
    }
    const json* resource = w.resource;
    if (&s != &root_ && s.contains("$id")) resource = &s;  // an embedded resource: "#..." is relative to it
    const std::string base = locations_[static_cast<std::size_t>(w.id)];  // a copy: node_for appends
    const auto at = [&](std::string_view key) { return base + "/" + pointer_token(key); };
    const auto sub = [&](const json& v, const std::string& location) { return node_for(v, resource, location); };
    const auto list = [&](const json& v, const std::string& location) {
      if (!v.is_array() || v.empty()) unusable(location, "must be a non-empty array of schemas");
      std::vector<std::int32_t> ids;
      for (std::size_t i = 0; i < v.size(); ++i) ids.push_back(sub(v[i], location + "/" + std::to_string(i)));
      return ids;
    };
    const auto object = [&](const json& v, const std::string& location) -> const json::object_t& {
      if (!v.is_object()) unusable(location, "must be an object");
      return v.get_ref<const json::object_t&>();
    };
    const json* items_array = nullptr;
    const json* additional_items = nullptr;
    bool constrained = false;  // any keyword besides $ref and $defs that does something

    for (const auto& [key, v] : s.get_ref<const json::object_t&>()) {
      const std::string loc = at(key);
      if (key == "type") n.types = type_mask(v, loc);
      else if (key == "enum") {
        if (!v.is_array()) unusable(loc, "must be an array");
        n.enum_values = v;
      } else if (key == "const") {
        n.const_value = v;
        n.has_const = true;
      } else if (key == "multipleOf") {
        n.multiple_of = number(v, loc);
        if (compare_numbers(v, json(0)) != 1) unusable(loc, "must be greater than 0");
      } else if (key == "minimum") n.minimum = number(v, loc);
      else if (key == "maximum") n.maximum = number(v, loc);
      else if (key == "exclusiveMinimum") n.exclusive_minimum = number(v, loc);
      else if (key == "exclusiveMaximum") n.exclusive_maximum = number(v, loc);
      else if (key == "minLength") n.min_length = count(v, loc);
      else if (key == "maxLength") n.max_length = count(v, loc);
      else if (key == "pattern") {
        if (!v.is_string()) unusable(loc, "must be a string");
        n.pattern = regex(v.get<std::string>(), loc);
      } else if (key == "minItems") n.min_items = count(v, loc);
      else if (key == "maxItems") n.max_items = count(v, loc);
      else if (key == "uniqueItems") {
        if (!v.is_boolean()) unusable(loc, "must be a boolean");
        n.unique_items = v.get<bool>();
      } else if (key == "minContains") n.min_contains = count(v, loc);
      else if (key == "maxContains") n.max_contains = count(v, loc);
      else if (key == "minProperties") n.min_properties = count(v, loc);
      else if (key == "maxProperties") n.max_properties = count(v, loc);
      else if (key == "required") n.required = strings(v, loc);
      else if (key == "dependentRequired") {
        for (const auto& [name, names] : object(v, loc)) {
          n.dependent_required.emplace_back(name, strings(names, loc + "/" + pointer_token(name)));
        }
      } else if (key == "dependentSchemas") {
        for (const auto& [name, schema] : object(v, loc)) {
          n.dependent_schemas.emplace_back(name, sub(schema, loc + "/" + pointer_token(name)));
        }
      } else if (key == "properties") {
        std::vector<std::pair<std::string, std::int32_t>> declared;
        for (const auto& [name, schema] : object(v, loc)) {
          declared.emplace_back(name, sub(schema, loc + "/" + pointer_token(name)));
        }
        std::vector<std::uint32_t> order = iota(declared.size());
        sort_indices(order, &declared, [](const void* c, std::uint32_t a, std::uint32_t b) {
          const auto& d = *static_cast<const std::vector<std::pair<std::string, std::int32_t>>*>(c);
          return d[a].first < d[b].first;
        });
        for (std::uint32_t i : order) n.properties.push_back(std::move(declared[i]));
      } else if (key == "patternProperties") {
        for (const auto& [source, schema] : object(v, loc)) {
          const std::string child = loc + "/" + pointer_token(source);
          n.pattern_properties.emplace_back(regex(source, child), sub(schema, child));
        }
      } else if (key == "additionalProperties") n.additional = sub(v, loc);
      else if (key == "propertyNames") n.property_names = sub(v, loc);
      else if (key == "items") {
        if (v.is_array()) items_array = &v;  // the pre-2020 tuple form
        else n.items = sub(v, loc);
      } else if (key == "additionalItems") additional_items = &v;
      else if (key == "prefixItems") n.prefix_items = list(v, loc);
      else if (key == "contains") n.contains = sub(v, loc);
      else if (key == "allOf") n.all_of = list(v, loc);
      else if (key == "anyOf") n.any_of = list(v, loc);
      else if (key == "oneOf") n.one_of = list(v, loc);
      else if (key == "not") n.not_ = sub(v, loc);
      else if (key == "if") n.if_ = sub(v, loc);
      else if (key == "then") n.then_ = sub(v, loc);
      else if (key == "else") n.else_ = sub(v, loc);
      else if (key == "$ref") {
        if (!v.is_string()) unusable(loc, "must be a string");
        n.ref = resolve(v.get<std::string>(), resource, loc);
        continue;
      } else if (key == "$defs") {
        for (const auto& [name, schema] : object(v, loc)) sub(schema, loc + "/" + pointer_token(name));
        continue;
      } else if (key == "$dynamicRef") {
        unusable(loc, "$dynamicRef is not supported");
      } else if (key == "unevaluatedProperties" || key == "unevaluatedItems") {
        if (!(v.is_boolean() && v.get<bool>()) && !(v.is_object() && v.empty())) unusable(loc, "is not supported");
      } else {
        continue;  // an annotation or an unknown keyword: ignored, as the specification says
      }
      constrained = true;
    }
    n.ref_only = n.ref != kNone && !constrained;
    if (items_array) {
      if (!n.prefix_items.empty()) unusable(at("items"), "an array of schemas cannot be combined with prefixItems");
      n.prefix_items = items_array->empty() ? std::vector<std::int32_t>{} : list(*items_array, at("items"));
      if (additional_items) n.items = sub(*additional_items, at("additionalItems"));
    }
    out_.nodes[static_cast<std::size_t>(w.id)] = std::move(n);
  }

  // A cycle of in-place applicators ($ref, allOf, not, ...) would apply a schema to the same value
  // forever, so it makes the schema unusable. Iterative depth-first search.
  AT_SCHEMA_SMALL void check_cycles() const {
    std::vector<std::uint8_t> state(out_.nodes.size(), 0);  // 0 unvisited, 1 on the path, 2 done
    std::vector<std::pair<std::int32_t, std::size_t>> path;  // (node, next edge)
    for (std::size_t root = 0; root < out_.nodes.size(); ++root) {
      if (state[root] != 0) continue;
      state[root] = 1;
      path.emplace_back(static_cast<std::int32_t>(root), 0);
      while (!path.empty()) {
        auto& [id, next] = path.back();
        const std::int32_t target = in_place_edge(out_.nodes[static_cast<std::size_t>(id)], next++);
        if (target == kNone) {
          state[static_cast<std::size_t>(id)] = 2;
          path.pop_back();
          continue;
        }
        const auto t = static_cast<std::size_t>(target);
        if (state[t] == 1) {
          unusable(locations_[t], "$ref cycle: this schema applies to the same value again without consuming any of it");
        }
        if (state[t] == 0) {
          state[t] = 1;
          path.emplace_back(target, 0);
        }
      }
    }
  }

  const json& root_;
  Schema::Compiled& out_;
  std::string root_id_;
  PointerIndex index_;
  std::vector<std::string> locations_;
  std::vector<Work> work_;
};

// ---------------------------------------------------------------------------------------------
// Validator

bool is_identifier(const std::string& key) noexcept {
  if (key.empty() || (key[0] >= '0' && key[0] <= '9')) return false;
  for (char c : key) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$')) return false;
  }
  return true;
}

// std::string::compare as a byte loop (the order std::sort gave the properties): in wasm the
// library's compare is a call to memcmp, which costs more than these short names.
int compare_text(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x != y) return x < y ? -1 : 1;
  }
  return a.size() < b.size() ? -1 : a.size() > b.size() ? 1 : 0;
}

std::uint64_t mix(std::uint64_t h) noexcept {  // splitmix64's finaliser
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

std::uint64_t hash_text(std::string_view s) noexcept {  // FNV-1a
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

AT_SCHEMA_SMALL std::string enum_message(const json::array_t& values) {
  if (values.empty()) return "no value is allowed (enum is empty)";
  if (values.size() == 1) return "must be " + brief(values[0]);
  std::string out = "must be one of ";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    if (out.size() > 200) {
      out += "...";
      break;
    }
    out += brief(values[i], 40);
  }
  return out;
}

constexpr std::size_t kNoProperty = SIZE_MAX;

// The index of property `name` in `n.properties` (sorted by name), or kNoProperty.
std::size_t property_index(const Node& n, std::string_view name) noexcept {
  std::size_t lo = 0, hi = n.properties.size();
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    const int c = compare_text(n.properties[mid].first, name);
    if (c == 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return kNoProperty;
}

// Whether a node's keywords can be checked as a value's text goes by (Validator's text mode).
bool can_stream(const Node& n) noexcept {
  return n.ref == kNone && n.all_of.empty() && n.any_of.empty() && n.one_of.empty() && n.not_ == kNone &&
         n.if_ == kNone && !n.unique_items && n.contains == kNone && n.property_names == kNone &&
         n.pattern_properties.empty() && n.dependent_required.empty() && n.dependent_schemas.empty() &&
         n.min_properties == 0 && n.required.size() <= kTextRequired;
}

class Validator {
 public:
  Validator(const Schema::Compiled& compiled, std::vector<Issue>* out, std::size_t max_issues)
      : c_(compiled), out_(out), max_(max_issues) {}

  // Text mode (see Schema::accepts_text): true only when the value at `reader` is valid.
  bool run_text(JsonReader& reader) { return text(0, reader) && !too_deep_; }

  bool run(const json& instance) {
    bool ok = eval(0, instance);
    if (too_deep_) {
      ok = false;
      if (out_ && out_->size() < max_) {
        out_->push_back({depth_path_, "depth",
                         depth_path_ + ": nested too deeply to validate (more than " + std::to_string(kMaxEvalDepth) +
                             " levels of schemas)"});
      }
    }
    if (!ok && out_ && out_->empty()) out_->push_back({"$", "schema", "$: does not match the schema"});
    return ok;
  }

 private:
  struct Segment {
    const std::string* key;  // null for an array index
    std::size_t index;
  };

  // Evaluates subschemas for their answer only: no issues, stop at the first failure.
  struct Probe {
    explicit Probe(Validator& v) : self(v) { ++self.probe_; }
    ~Probe() { --self.probe_; }
    Probe(const Probe&) = delete;
    Probe& operator=(const Probe&) = delete;
    Validator& self;
  };

  // The instance path descends into a property or an item for the guard's lifetime.
  struct Child {
    Child(Validator& v, const std::string* key, std::size_t index) : self(v) { self.segments_.push_back({key, index}); }
    ~Child() { self.segments_.pop_back(); }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    Validator& self;
  };

  const Node& node(std::int32_t id) const noexcept { return c_.nodes[static_cast<std::size_t>(id)]; }

  bool collecting() const noexcept { return out_ != nullptr && probe_ == 0 && !too_deep_; }
  // After a failure: whether evaluation must return now (an answer is all a probe needs).
  bool halted() const noexcept { return !collecting() || out_->size() >= max_; }
  // Records a failure; false when evaluation must return now.
  bool keep_going(bool& ok) const noexcept {
    ok = false;
    return !halted();
  }

  // Issue reporters: out of line, and they build nothing unless the issue is reported.
  AT_SCHEMA_SMALL void report(std::string_view keyword, std::string_view message) {
    if (!collecting() || out_->size() >= max_) return;
    std::string where = path();
    std::string text = where;
    text += ": ";
    text += message;
    out_->push_back({std::move(where), std::string(keyword), std::move(text)});
  }
  // "<a><x><b><y>", e.g. "must have at least 2 items, got 1".
  AT_SCHEMA_SMALL void report_counts(std::string_view keyword, std::string_view a, std::uint64_t x, std::string_view b,
                                     std::uint64_t y) {
    if (!collecting()) return;
    std::string text(a);
    text += std::to_string(x);
    text += b;
    text += std::to_string(y);
    report(keyword, text);
  }
  // "must be <op> <limit>, got <value>".
  AT_SCHEMA_SMALL void report_bound(std::string_view keyword, std::string_view op, const json& limit, const json& value) {
    if (!collecting()) return;
    std::string text = "must be ";
    text += op;
    text += ' ';
    text += dump_json(limit);
    text += ", got ";
    text += dump_json(value);
    report(keyword, text);
  }
  // "expected <types>, got <type>".
  AT_SCHEMA_SMALL void report_types(std::string_view keyword, std::uint8_t types, const json& value) {
    if (!collecting()) return;
    report(keyword, "expected " + type_list(types) + ", got " + std::string(type_name(value)));
  }
  // "<a><brief value><b>".
  AT_SCHEMA_SMALL void report_value(std::string_view keyword, std::string_view a, const json& value,
                                    std::string_view b = {}) {
    if (!collecting()) return;
    std::string text(a);
    text += brief(value);
    text += b;
    report(keyword, text);
  }

  AT_SCHEMA_SMALL std::string path() const {
    std::string out = "$";
    for (const Segment& s : segments_) {
      if (!s.key) {
        out += '[';
        out += std::to_string(s.index);
        out += ']';
      } else if (is_identifier(*s.key)) {
        out += '.';
        out += *s.key;
      } else {
        out += '[';
        append_json_string(out, *s.key);
        out += ']';
      }
    }
    return out;
  }

  AT_SCHEMA_SMALL void too_deep() {
    if (!too_deep_) {
      too_deep_ = true;
      depth_path_ = path();
    }
  }

  bool eval(std::int32_t id, const json& v) {
    while (node(id).ref_only) id = node(id).ref;  // reference chains cost no depth (cycles were refused)
    const Node& n = node(id);
    if (n.kind == Kind::accept) return true;
    if (n.kind == Kind::reject) {
      report("false", "no value is allowed here (the schema is false)");
      return false;
    }
    if (depth_ >= kMaxEvalDepth) {
      too_deep();
      return false;
    }
    ++depth_;
    const bool ok = eval_keywords(n, v);
    --depth_;
    return ok;
  }

  AT_SCHEMA_NOINLINE bool eval_keywords(const Node& n, const json& v) {
    bool ok = true;
    if (n.ref != kNone && !eval(n.ref, v) && !keep_going(ok)) return false;
    if (n.types != 0 && (n.types & type_bits(v)) == 0) {
      report_types("type", n.types, v);
      if (!keep_going(ok)) return false;
    }
    if ((!n.enum_values.is_null() || n.has_const) && !check_value(n, v, ok)) return false;
    switch (v.type()) {
      case json::value_t::string:
        if (!check_string(n, v.get_ref<const std::string&>(), ok)) return false;
        break;
      case json::value_t::number_integer:
      case json::value_t::number_unsigned:
      case json::value_t::number_float:
        if (!check_number(n, v, ok)) return false;
        break;
      case json::value_t::array:
        if (!check_array(n, v.get_ref<const json::array_t&>(), ok)) return false;
        break;
      case json::value_t::object:
        if (!check_object(n, v, ok)) return false;
        break;
      default: break;
    }
    for (std::int32_t branch : n.all_of) {
      if (!eval(branch, v) && !keep_going(ok)) return false;
    }
    if (!n.any_of.empty() && !check_any_of(n, v, ok)) return false;
    if (!n.one_of.empty() && !check_one_of(n, v, ok)) return false;
    if (n.not_ != kNone && probe(n.not_, v)) {
      report("not", "must not match the schema in \"not\"");
      if (!keep_going(ok)) return false;
    }
    if (n.if_ != kNone && (n.then_ != kNone || n.else_ != kNone)) {
      const std::int32_t branch = probe(n.if_, v) ? n.then_ : n.else_;
      if (branch != kNone && !eval(branch, v) && !keep_going(ok)) return false;
    }
    return ok;
  }

  // --- text mode: the same rules, applied as the text is read -----------------------------------
  // Only an answer, never issues (out_ is null). A node whose keywords need the value more than
  // once (in-place applicators, uniqueItems, contains, ...) is checked on a tree of just that value.



  // A scalar or a subtree as parse_json types it; false for what parse_json refuses (a number
  // that overflows a double), which the tree path reports as malformed.
  static bool tree_of(std::string_view value_text, json& out) {
    try {
      out = parse_json(value_text, ErrorCode::invalid_argument, "instance");
      return true;
    } catch (const Error&) {
      return false;
    }
  }

  // A number's text typed as parse_json types it (unsigned, negative or double), the usual short
  // forms without running the parser.
  static bool number_of(std::string_view t, json& out) {
    const bool negative = !t.empty() && t[0] == '-';
    const std::string_view digits = t.substr(negative ? 1 : 0);
    if (digits.size() > 18) return tree_of(t, out);
    std::uint64_t magnitude = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') {
        const double d = number_value(t);  // a fraction or an exponent: a double either way
        out = d;
        return std::isfinite(d);
      }
      magnitude = magnitude * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (negative) out = -static_cast<std::int64_t>(magnitude);
    else out = magnitude;
    return true;
  }

  bool text(std::int32_t id, JsonReader& r) {
    while (node(id).ref_only) id = node(id).ref;
    const Node& n = node(id);
    if (n.kind == Kind::accept) return skip_text(r);
    if (n.kind == Kind::reject || depth_ >= kMaxEvalDepth) return false;
    const JsonKind kind = r.peek();
    const bool compares = !n.enum_values.is_null() || n.has_const;
    if (!n.streams || (compares && (kind == JsonKind::object || kind == JsonKind::array))) {
      json v;
      return tree_of(r.skip(), v) && eval(id, v);
    }
    ++depth_;
    const bool ok = text_keywords(n, kind, compares, r);
    --depth_;
    return ok;
  }

  bool text_keywords(const Node& n, JsonKind kind, bool compares, JsonReader& r) {
    switch (kind) {
      case JsonKind::null: r.read_null(); return eval_keywords(n, json());
      case JsonKind::boolean: return eval_keywords(n, json(r.read_bool()));
      case JsonKind::number: {
        json v;
        return number_of(r.read_number_text(), v) && eval_keywords(n, v);
      }
      case JsonKind::string: return text_string(n, compares, r);
      case JsonKind::array: return text_array(n, r);
      case JsonKind::object: return text_object(n, r);
    }
    return false;
  }

  bool text_string(const Node& n, bool compares, JsonReader& r) {
    if (n.types != 0 && (n.types & t_string) == 0) return false;
    bool escaped = false;
    const std::string_view raw = r.read_string_raw(escaped);
    if (!compares && n.pattern == kNone && n.min_length == 0 && n.max_length == kUnbounded) return true;
    if (escaped) assign_decoded(scratch_text_, raw);
    else scratch_text_.assign(raw);
    const auto same = [&](const json& e) { return e.is_string() && e.get_ref<const std::string&>() == scratch_text_; };
    if (!n.enum_values.is_null()) {
      const auto& values = n.enum_values.get_ref<const json::array_t&>();
      if (std::none_of(values.begin(), values.end(), same)) return false;
    }
    if (n.has_const && !same(n.const_value)) return false;
    bool ok = true;
    return check_string(n, scratch_text_, ok);
  }

  bool text_array(const Node& n, JsonReader& r) {
    if (n.types != 0 && (n.types & t_array) == 0) return false;
    std::uint64_t size = 0;
    r.begin_array();
    while (r.element()) {
      const std::int32_t schema = size < n.prefix_items.size() ? n.prefix_items[size] : n.items;
      ++size;
      if (!(schema == kNone ? skip_text(r) : text(schema, r))) return false;
    }
    return size >= n.min_items && size <= n.max_items;
  }

  // A repeated member is checked each time it appears, so a valid answer holds for the last one
  // (the one the tree keeps); counts include repeats, so maxProperties is only stricter.
  bool text_object(const Node& n, JsonReader& r) {
    if (n.types != 0 && (n.types & t_object) == 0) return false;
    std::array<std::uint64_t, kTextRequired / 64> seen{};
    std::uint64_t count = 0;
    std::string_view key;
    bool escaped = false;
    r.begin_object();
    while (r.member_raw(key, escaped)) {
      ++count;
      std::string_view name = key;
      if (escaped) {
        assign_decoded(scratch_key_, key);
        name = scratch_key_;
      }
      std::int32_t schema = n.additional;
      std::int32_t required = -1;
      if (const std::size_t i = property_index(n, name); i != kNoProperty) {
        schema = n.properties[i].second;
        required = n.property_required[i];
      }
      if (required >= 0) seen[static_cast<std::size_t>(required) / 64] |= std::uint64_t{1} << (required % 64);
      if (!n.required_all_declared) {
        for (std::size_t i = 0; i < n.required.size(); ++i) {
          if (json_bytes::same_text(n.required[i], name)) seen[i / 64] |= std::uint64_t{1} << (i % 64);
        }
      }
      if (!(schema == kNone ? skip_text(r) : text(schema, r))) return false;
    }
    if (count > n.max_properties) return false;
    for (std::size_t i = 0; i < n.required.size(); ++i) {
      if ((seen[i / 64] >> (i % 64) & 1) == 0) return false;
    }
    return true;
  }

  // A value no keyword looks at: valid if the tree would parse it.
  bool skip_text(JsonReader& r) {
    switch (r.peek()) {
      case JsonKind::number: return std::isfinite(number_value(r.read_number_text()));
      case JsonKind::array:
        r.begin_array();
        while (r.element()) {
          if (!skip_text(r)) return false;
        }
        return true;
      case JsonKind::object: {
        std::string_view key;
        bool escaped = false;
        r.begin_object();
        while (r.member_raw(key, escaped)) {
          if (!skip_text(r)) return false;
        }
        return true;
      }
      default: r.skip(); return true;
    }
  }

  bool probe(std::int32_t id, const json& v) {
    Probe guard(*this);
    return eval(id, v);
  }

  AT_SCHEMA_NOINLINE bool check_value(const Node& n, const json& v, bool& ok) {
    if (!n.enum_values.is_null()) {
      const auto& values = n.enum_values.get_ref<const json::array_t&>();
      bool found = false;
      for (const json& e : values) {
        if ((found = equal(e, v, 0))) break;
      }
      if (!found) {
        if (collecting()) report("enum", enum_message(values));
        if (!keep_going(ok)) return false;
      }
    }
    if (n.has_const && !equal(n.const_value, v, 0)) {
      report_value("const", "must be ", n.const_value);
      if (!keep_going(ok)) return false;
    }
    return true;
  }

  AT_SCHEMA_NOINLINE bool check_string(const Node& n, const std::string& s, bool& ok) {
    if (n.min_length != 0 || n.max_length != kUnbounded) {
      const std::uint64_t length = code_points(s);
      if (length < n.min_length) {
        report_counts("minLength", "must be at least ", n.min_length, " characters long, got ", length);
        if (!keep_going(ok)) return false;
      }
      if (length > n.max_length) {
        report_counts("maxLength", "must be at most ", n.max_length, " characters long, got ", length);
        if (!keep_going(ok)) return false;
      }
    }
    if (n.pattern != kNone) {
      const rx::Program& prog = c_.regexes[static_cast<std::size_t>(n.pattern)];
      if (!rx::search(prog, s, scratch_)) {
        if (collecting()) report_value("pattern", "does not match the pattern ", json(prog.source));
        if (!keep_going(ok)) return false;
      }
    }
    return true;
  }

  AT_SCHEMA_NOINLINE bool check_number(const Node& n, const json& v, bool& ok) {
    // c is compare_numbers(v, limit); 2 (NaN) satisfies no bound.
    const struct {
      const json& limit;
      const char* keyword;
      const char* op;
      int low, high;  // the accepted range of c
    } bounds[] = {{n.minimum, "minimum", ">=", 0, 1},
                  {n.maximum, "maximum", "<=", -1, 0},
                  {n.exclusive_minimum, "exclusiveMinimum", ">", 1, 1},
                  {n.exclusive_maximum, "exclusiveMaximum", "<", -1, -1}};
    for (const auto& b : bounds) {
      if (b.limit.is_null()) continue;
      const int c = compare_numbers(v, b.limit);
      if (c >= b.low && c <= b.high) continue;
      report_bound(b.keyword, b.op, b.limit, v);
      if (!keep_going(ok)) return false;
    }
    if (!n.multiple_of.is_null() && !is_multiple_of(v, n.multiple_of)) {
      report_bound("multipleOf", "a multiple of", n.multiple_of, v);
      if (!keep_going(ok)) return false;
    }
    return true;
  }

  AT_SCHEMA_NOINLINE bool check_array(const Node& n, const json::array_t& a, bool& ok) {
    const std::size_t size = a.size();
    if (size < n.min_items) {
      report_counts("minItems", "must have at least ", n.min_items, " items, got ", size);
      if (!keep_going(ok)) return false;
    }
    if (size > n.max_items) {
      report_counts("maxItems", "must have at most ", n.max_items, " items, got ", size);
      if (!keep_going(ok)) return false;
    }
    const std::size_t prefix = std::min(size, n.prefix_items.size());
    for (std::size_t i = 0; i < prefix; ++i) {
      Child child(*this, nullptr, i);
      if (!eval(n.prefix_items[i], a[i]) && !keep_going(ok)) return false;
    }
    if (n.items != kNone && size > n.prefix_items.size()) {
      if (node(n.items).kind == Kind::reject) {
        report_counts("items", "must have at most ", n.prefix_items.size(), " items, got ", size);
        if (!keep_going(ok)) return false;
      } else {
        for (std::size_t i = n.prefix_items.size(); i < size; ++i) {
          Child child(*this, nullptr, i);
          if (!eval(n.items, a[i]) && !keep_going(ok)) return false;
        }
      }
    }
    if (n.contains != kNone) {
      std::uint64_t matches = 0;
      for (std::size_t i = 0; i < size && !too_deep_; ++i) {
        Child child(*this, nullptr, i);
        if (probe(n.contains, a[i]) && ++matches >= n.min_contains && n.max_contains == kUnbounded) break;
      }
      if (matches < n.min_contains) {
        report_counts(n.min_contains == 1 ? "contains" : "minContains", "must contain at least ", n.min_contains,
                      " item(s) matching the \"contains\" schema, found ", matches);
        if (!keep_going(ok)) return false;
      }
      if (matches > n.max_contains) {
        report_counts("maxContains", "must contain at most ", n.max_contains,
                      " item(s) matching the \"contains\" schema, found ", matches);
        if (!keep_going(ok)) return false;
      }
    }
    if (n.unique_items && size > 1) {
      std::size_t first = 0, second = 0;
      if (find_duplicate(a, first, second)) {
        if (collecting()) {
          report("uniqueItems", "must not contain duplicates, but items [" + std::to_string(first) + "] and [" +
                                    std::to_string(second) + "] are equal");
        }
        if (!keep_going(ok)) return false;
      }
    }
    return true;
  }

  AT_SCHEMA_NOINLINE bool check_object(const Node& n, const json& v, bool& ok) {
    const auto& o = v.get_ref<const json::object_t&>();
    const std::size_t size = o.size();
    if (size < n.min_properties) {
      report_counts("minProperties", "must have at least ", n.min_properties, " properties, got ", size);
      if (!keep_going(ok)) return false;
    }
    if (size > n.max_properties) {
      report_counts("maxProperties", "must have at most ", n.max_properties, " properties, got ", size);
      if (!keep_going(ok)) return false;
    }
    for (const std::string& name : n.required) {
      if (o.find(name) != o.end()) continue;
      Child child(*this, &name, 0);
      report("required", "required property is missing");
      if (!keep_going(ok)) return false;
    }
    for (const auto& [name, needed] : n.dependent_required) {
      if (o.find(name) == o.end()) continue;
      for (const std::string& other : needed) {
        if (o.find(other) != o.end()) continue;
        Child child(*this, &other, 0);
        report_value("dependentRequired", "required property is missing (required when ", json(name), " is present)");
        if (!keep_going(ok)) return false;
      }
    }
    if (!n.properties.empty() || !n.pattern_properties.empty() || n.additional != kNone || n.property_names != kNone) {
      for (const auto& [key, value] : o) {
        Child child(*this, &key, 0);
        if (!check_property(n, key, value, ok)) return false;
      }
    }
    for (const auto& [name, schema] : n.dependent_schemas) {
      if (o.find(name) != o.end() && !eval(schema, v) && !keep_going(ok)) return false;
    }
    return true;
  }

  // properties, patternProperties, additionalProperties and propertyNames for one property.
  bool check_property(const Node& n, const std::string& key, const json& value, bool& ok) {
    bool declared = false;
    if (const std::size_t i = property_index(n, key); i != kNoProperty) {
      declared = true;
      if (!eval(n.properties[i].second, value) && !keep_going(ok)) return false;
    }
    for (const auto& [regex_id, schema] : n.pattern_properties) {
      if (!rx::search(c_.regexes[static_cast<std::size_t>(regex_id)], key, scratch_)) continue;
      declared = true;
      if (!eval(schema, value) && !keep_going(ok)) return false;
    }
    if (!declared && n.additional != kNone) {
      if (node(n.additional).kind == Kind::reject) {
        report("additionalProperties", "property is not allowed (additionalProperties is false)");
        if (!keep_going(ok)) return false;
      } else if (!eval(n.additional, value) && !keep_going(ok)) {
        return false;
      }
    }
    if (n.property_names != kNone && !probe(n.property_names, json(key))) {
      report("propertyNames", "property name does not match \"propertyNames\"");
      if (!keep_going(ok)) return false;
    }
    return true;
  }

  // The types a subschema allows, looking through plain $refs; 0 when it does not say.
  std::uint8_t declared_types(std::int32_t id) const noexcept {
    for (int hops = 0; hops < 16; ++hops) {
      const Node& n = node(id);
      if (n.kind != Kind::schema) return 0;
      if (n.types != 0 || n.ref == kNone) return n.types;
      id = n.ref;
    }
    return 0;
  }

  // After anyOf/oneOf matched no branch: the issues of the one branch meant for this type of value
  // when the branches say which that is (e.g. anyOf [{"type": "object", ...}, {"type": "null"}]),
  // else one issue naming the keyword.
  AT_SCHEMA_SMALL bool no_branch_matched(const std::vector<std::int32_t>& branches, std::string_view keyword,
                                         const json& v, bool& ok) {
    if (collecting()) {
      const std::uint8_t bits = type_bits(v);
      std::uint8_t all = 0;
      std::int32_t only = kNone;
      std::size_t candidates = 0;
      for (std::int32_t b : branches) {
        const std::uint8_t t = declared_types(b);
        if (t == 0) {
          all = 0;
          candidates = 2;
          break;
        }
        all |= t;
        if (t & bits) {
          only = b;
          ++candidates;
        }
      }
      const std::size_t before = out_->size();
      if (candidates == 1) eval(only, v);
      if (out_->size() == before) {
        if (all != 0 && candidates == 0) {
          report_types(keyword, all, v);
        } else {
          report(keyword, "does not match any of the " + std::to_string(branches.size()) + " schemas in \"" +
                              std::string(keyword) + "\"");
        }
      }
    }
    return keep_going(ok);
  }

  AT_SCHEMA_NOINLINE bool check_any_of(const Node& n, const json& v, bool& ok) {
    for (std::int32_t branch : n.any_of) {
      if (probe(branch, v)) return true;
      if (too_deep_) break;
    }
    return no_branch_matched(n.any_of, "anyOf", v, ok);
  }

  AT_SCHEMA_NOINLINE bool check_one_of(const Node& n, const json& v, bool& ok) {
    std::size_t matched = 0, first = 0, second = 0;
    for (std::size_t i = 0; i < n.one_of.size() && !too_deep_; ++i) {
      if (!probe(n.one_of[i], v)) continue;
      if (matched++ == 0) {
        first = i;
      } else {
        second = i;
        break;
      }
    }
    if (matched == 1) return true;
    if (matched == 0) return no_branch_matched(n.one_of, "oneOf", v, ok);
    report_counts("oneOf", "must match exactly one schema in \"oneOf\", but matches schemas ", first, " and ", second);
    return keep_going(ok);
  }

  // JSON equality as JSON Schema defines it: numbers by value (1 == 1.0), objects regardless of
  // key order.
  AT_SCHEMA_NOINLINE bool equal(const json& a, const json& b, int depth) {
    if (a.is_number() && b.is_number()) return compare_numbers(a, b) == 0;
    if (a.type() != b.type()) return false;
    switch (a.type()) {
      case json::value_t::string: return a.get_ref<const std::string&>() == b.get_ref<const std::string&>();
      case json::value_t::boolean: return a.get<bool>() == b.get<bool>();
      case json::value_t::array: {
        const auto& x = a.get_ref<const json::array_t&>();
        const auto& y = b.get_ref<const json::array_t&>();
        if (x.size() != y.size()) return false;
        if (depth >= kMaxEvalDepth) return too_deep(), false;
        for (std::size_t i = 0; i < x.size(); ++i) {
          if (!equal(x[i], y[i], depth + 1)) return false;
        }
        return true;
      }
      case json::value_t::object: {
        const auto& x = a.get_ref<const json::object_t&>();
        const auto& y = b.get_ref<const json::object_t&>();
        if (x.size() != y.size()) return false;
        if (depth >= kMaxEvalDepth) return too_deep(), false;
        if (x.size() <= 16) {
          for (const auto& [key, value] : x) {
            const auto it = y.find(key);
            if (it == y.end() || !equal(value, it->second, depth + 1)) return false;
          }
          return true;
        }
        // Larger objects: both sorted by key, O(n log n) rather than O(n^2).
        // (ordered_map's operator[] takes keys, so entries are reached through iterators.)
        const auto by_key = [](const void* c, std::uint32_t l, std::uint32_t r) {
          const auto& o = *static_cast<const json::object_t*>(c);
          return o.begin()[l].first < o.begin()[r].first;
        };
        std::vector<std::uint32_t> xs = iota(x.size()), ys = iota(y.size());
        sort_indices(xs, &x, by_key);
        sort_indices(ys, &y, by_key);
        for (std::size_t i = 0; i < xs.size(); ++i) {
          const auto& l = x.begin()[xs[i]];
          const auto& r = y.begin()[ys[i]];
          if (l.first != r.first || !equal(l.second, r.second, depth + 1)) return false;
        }
        return true;
      }
      default: return true;  // null
    }
  }

  // Consistent with equal(): equal values hash alike.
  AT_SCHEMA_NOINLINE std::uint64_t hash(const json& v, int depth) {
    switch (v.type()) {
      case json::value_t::null: return 1;
      case json::value_t::boolean: return v.get<bool>() ? 2 : 3;
      case json::value_t::string: return hash_text(v.get_ref<const std::string&>());
      case json::value_t::number_integer:
      case json::value_t::number_unsigned:
      case json::value_t::number_float: {
        Int i{false, 0};
        if (v.is_number_float()) {
          const double d = v.get<double>();
          if (!is_integer(v) || std::fabs(d) >= 18446744073709551616.0) {
            std::uint64_t bits = 0;
            std::memcpy(&bits, &d, sizeof bits);
            return mix(bits ^ 0x5555);
          }
          i = d < 0 ? Int{true, static_cast<std::uint64_t>(-d)} : Int{false, static_cast<std::uint64_t>(d)};
        } else {
          i = as_int(v);
        }
        return mix(i.magnitude + (i.negative ? 0x9e3779b97f4a7c15ULL : 0));
      }
      case json::value_t::array: {
        if (depth >= kMaxEvalDepth) return too_deep(), 0;
        std::uint64_t h = 4;
        for (const auto& e : v.get_ref<const json::array_t&>()) h = mix(h + hash(e, depth + 1));
        return h;
      }
      case json::value_t::object: {
        if (depth >= kMaxEvalDepth) return too_deep(), 0;
        std::uint64_t h = 5;
        for (const auto& [key, value] : v.get_ref<const json::object_t&>()) {
          h += mix(hash_text(key) ^ hash(value, depth + 1));  // a sum: independent of key order
        }
        return h;
      }
      default: return 0;
    }
  }

  AT_SCHEMA_NOINLINE bool find_duplicate(const json::array_t& a, std::size_t& first, std::size_t& second) {
    const std::size_t size = a.size();
    const auto check = [&](std::size_t i, std::size_t j) {
      if (!equal(a[i], a[j], 0)) return false;
      first = std::min(i, j);
      second = std::max(i, j);
      return true;
    };
    if (size <= 16) {
      for (std::size_t i = 0; i < size; ++i) {
        for (std::size_t j = i + 1; j < size; ++j) {
          if (check(i, j)) return true;
        }
      }
      return false;
    }
    // Longer arrays: sorted by hash, only items with equal hashes are compared.
    std::vector<std::uint64_t> hashes(size);
    for (std::size_t i = 0; i < size && !too_deep_; ++i) hashes[i] = hash(a[i], 0);
    if (too_deep_) return false;
    std::vector<std::uint32_t> order = iota(size);
    sort_indices(order, &hashes, [](const void* c, std::uint32_t l, std::uint32_t r) {
      const auto& h = *static_cast<const std::vector<std::uint64_t>*>(c);
      return h[l] != h[r] ? h[l] < h[r] : l < r;
    });
    for (std::size_t run = 0; run < size;) {
      std::size_t end = run + 1;
      while (end < size && hashes[order[end]] == hashes[order[run]]) ++end;
      for (std::size_t i = run; i < end; ++i) {
        for (std::size_t j = i + 1; j < end; ++j) {
          if (check(order[i], order[j])) return true;
        }
      }
      run = end;
    }
    return false;
  }

  const Schema::Compiled& c_;
  std::vector<Issue>* out_;
  std::size_t max_;
  int depth_ = 0;
  int probe_ = 0;
  bool too_deep_ = false;
  std::string depth_path_;
  std::vector<Segment> segments_;
  rx::Scratch scratch_;
  std::string scratch_text_, scratch_key_;  // text mode: a string value, a member name, decoded
};

}  // namespace

Schema Schema::compile(const json& schema) {
  auto compiled = std::make_shared<Compiled>();
  Compiler(schema, *compiled).run();
  for (Node& n : compiled->nodes) {  // the text mode's shortcuts
    n.streams = can_stream(n);
    n.property_required.assign(n.properties.size(), -1);
    std::vector<bool> marked(n.required.size());
    for (std::size_t p = 0; p < n.properties.size(); ++p) {
      for (std::size_t r = 0; r < n.required.size(); ++r) {
        if (n.required[r] != n.properties[p].first) continue;
        n.property_required[p] = static_cast<std::int32_t>(r);
        marked[r] = true;
        break;  // a name required twice leaves its repeat unmarked: the scan then covers it
      }
    }
    n.required_all_declared = std::find(marked.begin(), marked.end(), false) == marked.end();
  }
  return Schema(std::move(compiled));
}

std::vector<Issue> Schema::validate(const json& instance, std::size_t max_issues) const {
  std::vector<Issue> issues;
  Validator(*compiled_, &issues, max_issues == 0 ? 1 : max_issues).run(instance);
  return issues;
}

bool Schema::is_valid(const json& instance) const { return Validator(*compiled_, nullptr, 1).run(instance); }

bool Schema::accepts_text(std::string_view instance) const {
  try {
    JsonReader reader(instance, ErrorCode::invalid_argument, "instance");
    if (!Validator(*compiled_, nullptr, 1).run_text(reader)) return false;
    reader.finish();
    return true;
  } catch (const Error&) {
    return false;  // malformed, or nested beyond MAX_JSON_DEPTH
  }
}

}  // namespace agent_tools::schema
