#include "agent_tools/json_text.hpp"

#include <cstdlib>
#include <cstring>

#include "agent_tools/json.hpp"
#include "json_bytes.hpp"

namespace agent_tools {

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

using json_bytes::hex_value;
using json_bytes::skip_plain;
using json_bytes::utf8_sequence;
using json_bytes::write_utf8;

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
  std::string copy(text);
  return std::strtod(copy.c_str(), nullptr);
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

// At the opening quote. Copies runs of plain bytes at once; `out` may be null (validate only).
void JsonReader::scan_string(std::string* out) {
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
  switch (kind) {
    case JsonKind::null: read_null(); break;
    case JsonKind::boolean: read_bool(); break;
    case JsonKind::number: read_number_text(); break;
    case JsonKind::string: scan_string(nullptr); break;
    case JsonKind::array:
      begin_array();
      while (element()) skip();
      break;
    case JsonKind::object: {
      begin_object();
      std::string key;
      while (member(key)) skip();
      break;
    }
  }
  return text_.substr(start, pos_ - start);
}

void JsonReader::begin_object() {
  expect('{');
  enter();
  first_.push_back(true);
}

void JsonReader::begin_array() {
  expect('[');
  enter();
  first_.push_back(true);
}

// Between items of the innermost container: false (and the container closed) at `close`.
bool JsonReader::after_item(char close) {
  if (first_.empty()) malformed();
  skip_space();
  if (pos_ >= text_.size()) malformed();
  bool first = first_.back();
  if (text_[pos_] == close) {
    // "[,]" and "[1,]" never get here: a comma is only consumed when an item follows.
    ++pos_;
    first_.pop_back();
    leave();
    return false;
  }
  if (!first) {
    if (text_[pos_] != ',') malformed();
    ++pos_;
  }
  first_.back() = false;
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

bool JsonReader::element() {
  if (!after_item(']')) return false;
  skip_space();
  if (pos_ < text_.size() && text_[pos_] == ']') malformed();  // "[1,]"
  return true;
}

void JsonReader::finish() {
  skip_space();
  if (pos_ != text_.size() || !first_.empty()) malformed();
}

// --- Fields ----------------------------------------------------------------------------------------

Fields Fields::parse(std::string_view text, ErrorCode on_malformed, std::string_view what) {
  JsonReader reader(text, on_malformed, what);
  if (reader.peek() != JsonKind::object) throw Error(on_malformed, std::string(what) + " must be an object");
  Fields fields;
  fields.items_.reserve(12);
  reader.begin_object();
  std::string name;
  while (reader.member(name)) {
    Field field;
    field.kind = reader.peek();
    switch (field.kind) {
      case JsonKind::null: reader.read_null(); break;
      case JsonKind::boolean: field.boolean = reader.read_bool(); break;
      case JsonKind::string: field.text = reader.read_string(); break;
      case JsonKind::number:
        field.text = reader.read_number_text();
        field.number = number_value(field.text);
        break;
      case JsonKind::array:
      case JsonKind::object: field.text = reader.skip(); break;
    }
    // A name may appear twice in JSON; the last one counts, as with JSON.parse.
    if (Field* seen = const_cast<Field*>(fields.find(name))) {
      *seen = std::move(field);
      seen->name = name;
    } else {
      field.name = name;
      fields.items_.push_back(std::move(field));
    }
  }
  reader.finish();
  return fields;
}

const Field* Fields::find(std::string_view name) const noexcept {
  for (const Field& field : items_) {
    if (field.name == name) return &field;
  }
  return nullptr;
}

const Field& Fields::operator[](std::string_view name) const noexcept {
  static const Field absent;
  const Field* field = find(name);
  return field ? *field : absent;
}

// --- JsonWriter ------------------------------------------------------------------------------------

void JsonWriter::separate() {
  if (comma_) {
    out_ += ',';
  } else if (out_.empty()) {
    out_.reserve(256);  // most documents the core writes are a few hundred bytes: grow once
  }
  comma_ = true;
}

JsonWriter& JsonWriter::begin_object() {
  separate();
  out_ += '{';
  comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  out_ += '}';
  comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  separate();
  out_ += '[';
  comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  out_ += ']';
  comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view name) {
  separate();
  out_ += '"';
  out_ += name;  // the core's own literals: nothing to escape
  out_ += "\":";
  comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::null() {
  separate();
  out_ += "null";
  return *this;
}

JsonWriter& JsonWriter::boolean(bool b) {
  separate();
  out_ += b ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::integer(std::int64_t n) {
  separate();
  out_ += std::to_string(n);
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view s) {
  separate();
  append_json_string(out_, s);
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json_text) {
  separate();
  out_ += json_text;
  return *this;
}

}  // namespace agent_tools
