// JSON text without a document tree, for the hot paths (lock operations, host-call replies, the
// events the engine writes). Building an nlohmann tree for a ten-field input and again for its
// reply cost more than everything else a lock operation does; these read and write the text
// directly and allocate only for the strings they return.
//
//   JsonReader  a strict forward-only reader (RFC 8259, UTF-8 validated, depth-capped) whose
//               errors are typed Errors with the caller's code.
//   Fields      one flat object read into (name, value) pairs; nested values kept as raw text.
//   JsonWriter  appends values, objects and arrays, placing the commas itself.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent_tools/error.hpp"

namespace agent_tools {

enum class JsonKind : std::uint8_t { null, boolean, number, string, array, object };

/// "null", "boolean", ...: for error messages.
const char* kind_name(JsonKind kind) noexcept;

/// The value of a number already validated by JsonReader::read_number_text.
double number_value(std::string_view text);

class JsonReader {
 public:
  /// Malformed text throws Error(`on_malformed`, "<what> is not valid JSON ..."); text larger
  /// than MAX_MESSAGE_BYTES or nested deeper than MAX_JSON_DEPTH throws INPUT_TOO_LARGE.
  JsonReader(std::string_view text, ErrorCode on_malformed, std::string_view what);

  /// The kind of the next value (whitespace skipped). Throws at the end of the text.
  JsonKind peek();

  void read_null();
  bool read_bool();
  /// The number's text, validated against the JSON grammar.
  std::string_view read_number_text();
  double read_number();
  /// The string's value: escapes decoded, UTF-8 validated.
  std::string read_string();
  /// Skips one value of any kind, validating it, and returns its text.
  std::string_view skip();

  /// Objects: begin_object(), then member(key) until it returns false (at the closing brace).
  void begin_object();
  bool member(std::string& key);
  /// Arrays: begin_array(), then element() until it returns false.
  void begin_array();
  bool element();

  /// Requires that only whitespace is left.
  void finish();

  std::string_view text() const noexcept { return text_; }

 private:
  [[noreturn]] void malformed() const;
  void skip_space() noexcept;
  void expect(char c);
  void enter();
  void leave() noexcept { --depth_; }
  bool after_item(char close);
  void scan_literal(std::string_view word);
  void scan_string(std::string* out);

  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t depth_ = 0;
  std::vector<bool> first_;  // per open container: no item read yet
  ErrorCode on_malformed_;
  std::string_view what_;
};

/// One member of a flat object. Strings are decoded; numbers, arrays and objects keep their text.
struct Field {
  std::string name;
  JsonKind kind = JsonKind::null;
  std::string text;  // string value, or the raw JSON text of any other kind
  double number = 0;
  bool boolean = false;

  bool is_string() const noexcept { return kind == JsonKind::string; }
  bool is_null() const noexcept { return kind == JsonKind::null; }
};

class Fields {
 public:
  /// Reads a JSON object (anything else throws Error(`on_malformed`, "<what> must be an object")).
  /// Later duplicates of a name replace earlier ones, as JSON.parse does.
  static Fields parse(std::string_view text, ErrorCode on_malformed, std::string_view what);

  /// nullptr when absent.
  const Field* find(std::string_view name) const noexcept;
  /// Absent members read as null.
  const Field& operator[](std::string_view name) const noexcept;

 private:
  std::vector<Field> items_;
};

class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  /// The next member's name (inside an object). Written as it is: names are the core's own
  /// literals, which need no escaping.
  JsonWriter& key(std::string_view name);

  JsonWriter& null();
  JsonWriter& boolean(bool b);
  JsonWriter& integer(std::int64_t n);
  JsonWriter& string(std::string_view s);
  /// Text that is already valid JSON, copied as it is.
  JsonWriter& raw(std::string_view json_text);

  std::string& text() noexcept { return out_; }
  std::string take() noexcept { return std::move(out_); }

 private:
  void separate();
  std::string out_;
  bool comma_ = false;  // a value precedes at this level, so the next one needs a comma
};

}  // namespace agent_tools
