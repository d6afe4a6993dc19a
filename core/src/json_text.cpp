#include "agent_tools/json_text.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "agent_tools/json.hpp"
#include "json_bytes.hpp"

namespace agent_tools {

using namespace std::literals;  // "..."sv: literals whose length the compiler knows

const char* kind_name(JsonKind kind) noexcept {
  switch (kind) {
    case JsonKind::null: return "null";
    case JsonKind::boolean: return "boolean";
    case JsonKind::number: return "number";
    case JsonKind::string: return "string";
    case JsonKind::array: return "array";
    case JsonKind::object: return "object";
  }
  return "value";
}

namespace {

using json_bytes::escape_to;
using json_bytes::escaped_size;
using json_bytes::hex_value;
using json_bytes::kOnes;
using json_bytes::same_text;
using json_bytes::skip_plain;
using json_bytes::utf8_sequence;
using json_bytes::write_utf8;
using json_bytes::zero_bytes;

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

}  // namespace

// A validated JSON number's value. Short integers (the common case: counters, TTLs, clocks) are
// summed directly; everything else goes through strtod on a terminated copy.
double number_value(std::string_view text) {
  bool negative = !text.empty() && text[0] == '-';
  std::string_view digits = negative ? text.substr(1) : text;
  if (digits.size() <= 15 && digits.find_first_of(".eE") == std::string_view::npos) {
    double value = 0;
    for (char c : digits) value = value * 10 + (c - '0');
    return negative ? -value : value;
  }
  auto first = reinterpret_cast<const unsigned char*>(text.data());
  return json_bytes::decimal_value(first, first + text.size());
}

// --- JsonReader ------------------------------------------------------------------------------------

JsonReader::JsonReader(std::string_view text, ErrorCode on_malformed, std::string_view what)
    : text_(text), on_malformed_(on_malformed), what_(what) {
  if (text.size() > MAX_MESSAGE_BYTES) {
    throw Error(ErrorCode::input_too_large, std::string(what) + " is " + std::to_string(text.size()) +
                                                " bytes; the limit is " + std::to_string(MAX_MESSAGE_BYTES));
  }
}

void JsonReader::malformed() const {
  throw Error(on_malformed_, std::string(what_) + " is not valid JSON (or not valid UTF-8)");
}

void JsonReader::skip_space() noexcept {
  while (pos_ < text_.size()) {
    char c = text_[pos_];
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return;
    ++pos_;
  }
}

void JsonReader::expect(char c) {
  skip_space();
  if (pos_ >= text_.size() || text_[pos_] != c) malformed();
  ++pos_;
}

void JsonReader::enter() {
  if (++depth_ > MAX_JSON_DEPTH) {
    throw Error(ErrorCode::input_too_large,
                std::string(what_) + " is nested deeper than " + std::to_string(MAX_JSON_DEPTH) + " levels");
  }
}

JsonKind JsonReader::peek() {
  skip_space();
  if (pos_ >= text_.size()) malformed();
  switch (text_[pos_]) {
    case 'n': return JsonKind::null;
    case 't': case 'f': return JsonKind::boolean;
    case '"': return JsonKind::string;
    case '[': return JsonKind::array;
    case '{': return JsonKind::object;
    default:
      if (text_[pos_] == '-' || is_digit(text_[pos_])) return JsonKind::number;
      malformed();
  }
}

void JsonReader::scan_literal(std::string_view word) {
  if (text_.substr(pos_, word.size()) != word) malformed();
  pos_ += word.size();
}

void JsonReader::read_null() {
  if (peek() != JsonKind::null) malformed();
  scan_literal("null");
}

bool JsonReader::read_bool() {
  if (peek() != JsonKind::boolean) malformed();
  bool value = text_[pos_] == 't';
  scan_literal(value ? "true" : "false");
  return value;
}

std::string_view JsonReader::read_number_text() {
  if (peek() != JsonKind::number) malformed();
  return scan_number();
}

// At a number's first byte (peek() said so).
std::string_view JsonReader::scan_number() {
  std::size_t start = pos_, n = text_.size();
  if (text_[pos_] == '-') ++pos_;
  if (pos_ < n && text_[pos_] == '0') {
    ++pos_;
  } else if (pos_ < n && is_digit(text_[pos_])) {
    while (pos_ < n && is_digit(text_[pos_])) ++pos_;
  } else {
    malformed();
  }
  if (pos_ < n && text_[pos_] == '.') {
    ++pos_;
    if (pos_ >= n || !is_digit(text_[pos_])) malformed();
    while (pos_ < n && is_digit(text_[pos_])) ++pos_;
  }
  if (pos_ < n && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
    ++pos_;
    if (pos_ < n && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
    if (pos_ >= n || !is_digit(text_[pos_])) malformed();
    while (pos_ < n && is_digit(text_[pos_])) ++pos_;
  }
  return text_.substr(start, pos_ - start);
}

double JsonReader::read_number() { return number_value(read_number_text()); }

std::string JsonReader::read_string() {
  if (peek() != JsonKind::string) malformed();
  std::string out;
  scan_string(&out);
  return out;
}

std::string_view JsonReader::read_string_raw(bool& escaped) {
  if (peek() != JsonKind::string) malformed();
  std::size_t start = pos_ + 1;
  escaped = false;
  scan_string(nullptr, &escaped);
  return text_.substr(start, pos_ - 1 - start);
}

// At the opening quote. Copies runs of plain bytes at once; `out` may be null (validate only).
// `escaped`, if given, is set when the string has an escape.
void JsonReader::scan_string(std::string* out, bool* escaped) {
  ++pos_;
  auto p = reinterpret_cast<const unsigned char*>(text_.data()) + pos_;
  const auto end = reinterpret_cast<const unsigned char*>(text_.data()) + text_.size();
  const unsigned char* run = p;
  auto flush = [&] {
    if (out) out->append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
  };
  while (p < end) {
    p = skip_plain(p, end);
    if (p == end) break;
    unsigned char c = *p;
    if (c >= 0x80) {
      std::size_t length = utf8_sequence(p, end);
      if (length == 0) malformed();
      p += length;
      continue;
    }
    if (c < 0x20) malformed();
    flush();
    if (c == '"') {
      pos_ = static_cast<std::size_t>(p + 1 - reinterpret_cast<const unsigned char*>(text_.data()));
      return;
    }
    // An escape.
    if (escaped) *escaped = true;
    if (end - p < 2) malformed();
    char e = static_cast<char>(p[1]);
    p += 2;
    char simple = e == '"' ? '"' : e == '\\' ? '\\' : e == '/' ? '/' : e == 'b' ? '\b' : e == 'f' ? '\f'
                : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : 0;
    if (simple) {
      if (out) *out += simple;
    } else if (e == 'u') {
      auto hex4 = [&]() -> std::uint32_t {
        if (end - p < 4) malformed();
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
          int d = hex_value(p[i]);
          if (d < 0) malformed();
          v = v * 16 + static_cast<std::uint32_t>(d);
        }
        p += 4;
        return v;
      };
      std::uint32_t cp = hex4();
      if (cp >= 0xDC00 && cp <= 0xDFFF) malformed();  // a low surrogate alone
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - p < 2 || p[0] != '\\' || p[1] != 'u') malformed();
        p += 2;
        std::uint32_t low = hex4();
        if (low < 0xDC00 || low > 0xDFFF) malformed();
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      }
      if (out) {
        char utf8[4];
        out->append(utf8, static_cast<std::size_t>(write_utf8(utf8, cp) - utf8));
      }
    } else {
      malformed();
    }
    run = p;
  }
  malformed();  // unterminated
}

std::string_view JsonReader::skip() {
  JsonKind kind = peek();
  std::size_t start = pos_;
  switch (kind) {  // (peek() has looked: each case goes straight to the value's bytes)
    case JsonKind::null: scan_literal("null"); break;
    case JsonKind::boolean: scan_literal(text_[pos_] == 't' ? "true" : "false"); break;
    case JsonKind::number: scan_number(); break;
    case JsonKind::string: scan_string(nullptr); break;
    case JsonKind::array:
      begin_array();
      while (element()) skip();
      break;
    case JsonKind::object: {
      begin_object();
      std::string_view key;  // validated, not decoded: nothing here needs the names
      bool escaped = false;
      while (member_raw(key, escaped)) skip();
      break;
    }
  }
  return text_.substr(start, pos_ - start);
}

// Opens a container: depth `depth_` (after enter()) has read no item yet.
void JsonReader::open_item(char open) {
  expect(open);
  enter();
  first_[(depth_ - 1) / 64] |= std::uint64_t{1} << ((depth_ - 1) % 64);
}

void JsonReader::begin_object() { open_item('{'); }

void JsonReader::begin_array() { open_item('['); }

// Between items of the innermost container: false (and the container closed) at `close`.
bool JsonReader::after_item(char close) {
  if (depth_ == 0) malformed();
  skip_space();
  if (pos_ >= text_.size()) malformed();
  std::uint64_t& word = first_[(depth_ - 1) / 64];
  const std::uint64_t bit = std::uint64_t{1} << ((depth_ - 1) % 64);
  if (text_[pos_] == close) {
    // "[,]" and "[1,]" never get here: a comma is only consumed when an item follows.
    ++pos_;
    word &= ~bit;
    leave();
    return false;
  }
  if (!(word & bit)) {
    if (text_[pos_] != ',') malformed();
    ++pos_;
  }
  word &= ~bit;
  return true;
}

bool JsonReader::member(std::string& key) {
  if (!after_item('}')) return false;
  skip_space();
  if (pos_ >= text_.size() || text_[pos_] != '"') malformed();
  key.clear();
  scan_string(&key);
  expect(':');
  return true;
}

bool JsonReader::member_raw(std::string_view& key, bool& escaped) {
  if (!after_item('}')) return false;
  skip_space();
  if (pos_ >= text_.size() || text_[pos_] != '"') malformed();
  const std::size_t start = pos_ + 1;
  escaped = false;
  scan_string(nullptr, &escaped);
  key = text_.substr(start, pos_ - 1 - start);
  expect(':');
  return true;
}

bool JsonReader::element() {
  if (!after_item(']')) return false;
  skip_space();
  if (pos_ < text_.size() && text_[pos_] == ']') malformed();  // "[1,]"
  return true;
}

void JsonReader::finish() {
  skip_space();
  if (pos_ != text_.size() || depth_ != 0) malformed();
}

// --- FieldViews ------------------------------------------------------------------------------------

// A word without a backslash is moved whole (loaded before it is stored, so writing behind the
// read position is safe); only words with escapes are looked at byte by byte.
std::size_t unescape_in_place(char* text, std::size_t size) noexcept {
  const char* read = text;
  const char* const end = text + size;
  char* write = text;
  auto hex4 = [](const char* h) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v * 16 + static_cast<std::uint32_t>(hex_value(static_cast<unsigned char>(h[i])));
    return v;
  };
  while (read < end) {
    if (end - read >= 8) {
      std::uint64_t word;
      std::memcpy(&word, read, 8);
      if (zero_bytes(word ^ (kOnes * '\\')) == 0) {
        std::memcpy(write, &word, 8);
        write += 8;
        read += 8;
        continue;
      }
    }
    for (const char* stop = read + std::min<std::ptrdiff_t>(8, end - read); read < stop;) {
      if (*read != '\\') {
        *write++ = *read++;
        continue;
      }
      char e = read[1];  // validated: an escape is complete
      read += 2;
      switch (e) {
        case 'b': *write++ = '\b'; break;
        case 'f': *write++ = '\f'; break;
        case 'n': *write++ = '\n'; break;
        case 'r': *write++ = '\r'; break;
        case 't': *write++ = '\t'; break;
        case 'u': {
          std::uint32_t cp = hex4(read);
          read += 4;
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // validated: the low surrogate's escape follows
            cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(read + 2) - 0xDC00);
            read += 6;
          }
          write = write_utf8(write, cp);  // at most 4 bytes for the 6 or 12 read
          break;
        }
        default: *write++ = e;  // '"', '\\', '/'
      }
    }
  }
  return static_cast<std::size_t>(write - text);
}

FieldViews FieldViews::parse(char* text, std::size_t size, ErrorCode on_malformed, std::string_view what) {
  JsonReader reader(std::string_view(text, size), on_malformed, what);
  if (reader.peek() != JsonKind::object) throw Error(on_malformed, std::string(what) + " must be an object");
  FieldViews fields;
  fields.base_ = text;
  // The literal just read, decoded where it stands.
  auto decoded = [&](std::string_view raw, bool escaped) -> std::string_view {
    if (!escaped) return raw;
    char* at = text + (raw.data() - text);
    return {at, unescape_in_place(at, raw.size())};
  };
  reader.begin_object();
  std::string_view name;
  bool escaped = false;
  while (reader.member_raw(name, escaped)) {
    FieldView field;
    field.name = decoded(name, escaped);
    field.kind = reader.peek();
    switch (field.kind) {
      case JsonKind::null: reader.read_null(); break;
      case JsonKind::boolean: field.boolean = reader.read_bool(); break;
      case JsonKind::string: {
        std::string_view raw = reader.read_string_raw(escaped);
        field.text = decoded(raw, escaped);
        break;
      }
      case JsonKind::number:
        field.text = reader.read_number_text();
        field.number = number_value(field.text);
        break;
      case JsonKind::array:
      case JsonKind::object: field.text = reader.skip(); break;
    }
    fields.add(field);
  }
  reader.finish();
  return fields;
}

void FieldViews::add(const FieldView& field) {
  // A name may appear twice in JSON; the last one counts, as with JSON.parse.
  if (const FieldView* seen = find(field.name)) {
    *const_cast<FieldView*>(seen) = field;
  } else if (count_ < kInline) {
    inline_[count_++] = field;
  } else {
    more_.push_back(field);
  }
}

FieldViews FieldViews::object(const FieldView& field, ErrorCode on_malformed, std::string_view what) const {
  // The member's text lies inside ours (nested literals are still escaped: parse only skipped them).
  char* at = base_ + (field.text.data() - base_);
  return parse(at, field.text.size(), on_malformed, what);
}


const FieldView* FieldViews::find(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < count_; ++i) {
    if (same_text(inline_[i].name, name)) return &inline_[i];
  }
  for (const FieldView& field : more_) {
    if (field.name == name) return &field;
  }
  return nullptr;
}

const FieldView& FieldViews::operator[](std::string_view name) const noexcept {
  static const FieldView absent;
  const FieldView* field = find(name);
  return field ? *field : absent;
}

// --- TextBuffer and the hot-path writers ----------------------------------------------------------

void TextBuffer::grow(std::size_t n) {
  std::size_t want = size_ + n;
  // resize (not reserve: see write_json_string) doubles the storage through libc++'s own growth.
  text_.resize(want > 2 * text_.size() ? (want > 256 ? want : 256) : 2 * text_.size());
}

void append_integer(TextBuffer& out, std::int64_t value) {
  char* w = out.room(20);
  // Through unsigned, so the most negative value needs no special case.
  std::uint64_t magnitude = value < 0 ? 0 - static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value);
  char digits[20];
  std::size_t n = 0;
  // Eight digits at a time in 32 bits: wasm has no 64-bit multiply-high, so a 64-bit division by
  // ten is a real division, and timestamps have thirteen digits.
  while (magnitude >= 100000000) {
    auto low = static_cast<std::uint32_t>(magnitude % 100000000);
    magnitude /= 100000000;
    for (int i = 0; i < 8; ++i, low /= 10) digits[n++] = static_cast<char>('0' + low % 10);
  }
  auto rest = static_cast<std::uint32_t>(magnitude);
  do {
    digits[n++] = static_cast<char>('0' + rest % 10);
    rest /= 10;
  } while (rest);
  std::size_t length = 0;
  if (value < 0) w[length++] = '-';
  while (n) w[length++] = digits[--n];
  out.commit(length);
}

void append_integer(std::string& out, std::int64_t value) {
  TextBuffer text = TextBuffer::after(std::move(out));
  append_integer(text, value);
  out = text.take();
}

void write_json_string(TextBuffer& out, std::string_view text) {
  std::size_t size = escaped_size(text);
  char* w = out.room(size + 2 + 8);  // + 8: escape_to stores whole words ahead
  *w = '"';
  *escape_to(w + 1, text) = '"';
  out.commit(size + 2);
}

void write_json_string(std::string& out, std::string_view text) {
  TextBuffer buffer = TextBuffer::after(std::move(out));
  write_json_string(buffer, text);
  out = buffer.take();
}

// --- JsonWriter ------------------------------------------------------------------------------------

void JsonWriter::separate() {
  if (comma_) out_.push_back(',');
  comma_ = true;
}

JsonWriter& JsonWriter::begin_object() {
  separate();
  out_.push_back('{');
  comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  out_.push_back('}');
  comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  separate();
  out_.push_back('[');
  comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  out_.push_back(']');
  comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view name) {
  separate();
  out_.push_back('"');
  out_.append(name);  // the core's own literals: nothing to escape
  out_.append("\":"sv);
  comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::null() {
  separate();
  out_.append("null"sv);
  return *this;
}

JsonWriter& JsonWriter::boolean(bool b) {
  separate();
  out_.append(b ? "true"sv : "false"sv);
  return *this;
}

JsonWriter& JsonWriter::integer(std::int64_t n) {
  separate();
  append_integer(out_, n);
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view s) {
  separate();
  write_json_string(out_, s);
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json_text) {
  separate();
  out_.append(json_text);
  return *this;
}

}  // namespace agent_tools
