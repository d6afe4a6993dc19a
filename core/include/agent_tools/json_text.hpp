// JSON text without a document tree, for the hot paths (lock operations, host-call replies, the
// events the engine writes). Building an nlohmann tree for a ten-field input and again for its
// reply cost more than everything else a lock operation does; these read and write the text
// directly and allocate only for the strings they return.
//
//   JsonReader  a strict forward-only reader (RFC 8259, UTF-8 validated, depth-capped) whose
//               errors are typed Errors with the caller's code.
//   FieldViews  one flat object read into (name, value) pairs without allocating, for the lock
//               operations' inputs: views into the text, escapes decoded in place, nested
//               values kept as raw text.
//   JsonWriter  appends values, objects and arrays, placing the commas itself.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
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
  /// The string's content as it stands between the quotes (validated, escapes not decoded);
  /// `escaped` tells whether it has any.
  std::string_view read_string_raw(bool& escaped);
  /// Skips one value of any kind, validating it, and returns its text.
  std::string_view skip();

  /// Objects: begin_object(), then member(key) until it returns false (at the closing brace).
  void begin_object();
  bool member(std::string& key);
  /// member() with the name as it stands in the text (see read_string_raw).
  bool member_raw(std::string_view& key, bool& escaped);
  /// Arrays: begin_array(), then element() until it returns false.
  void begin_array();
  bool element();

  /// Requires that only whitespace is left.
  void finish();

  std::string_view text() const noexcept { return text_; }
  /// Where the reader is in the text: at the next value once peek() has run, just past a value
  /// after reading it.
  std::size_t offset() const noexcept { return pos_; }

 private:
  [[noreturn]] void malformed() const;
  void skip_space() noexcept;
  void expect(char c);
  void enter();
  void leave() noexcept { --depth_; }
  bool after_item(char close);
  void scan_literal(std::string_view word);
  void scan_string(std::string* out, bool* escaped = nullptr);
  std::string_view scan_number();
  void open_item(char open);

  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t depth_ = 0;
  // Per open container (bit `depth - 1`): no item read yet. A fixed set of bits, not a vector,
  // so reading allocates nothing.
  std::array<std::uint64_t, (MAX_JSON_DEPTH + 63) / 64> first_{};
  ErrorCode on_malformed_;
  std::string_view what_;
};

/// One member of a flat object read in place by FieldViews.
struct FieldView {
  std::string_view name;
  JsonKind kind = JsonKind::null;
  std::string_view text;  // string value (decoded), or the raw JSON text of any other kind
  double number = 0;
  bool boolean = false;

  bool is_string() const noexcept { return kind == JsonKind::string; }
  bool is_null() const noexcept { return kind == JsonKind::null; }
};

/// A flat JSON object read without allocating (for up to kInline members): names and values are
/// views into the text, and escapes are decoded in place -- a decoded string is never longer
/// than its escaped form, so it fits where it stood. The text must therefore be writable and
/// outlive the views; it is left valid JSON only outside the string literals. Later
/// duplicates replace earlier ones, absent members read as null.
class FieldViews {
 public:
  static FieldViews parse(char* text, std::size_t size, ErrorCode on_malformed, std::string_view what);
  static FieldViews parse(std::string& text, ErrorCode on_malformed, std::string_view what) {
    return parse(text.data(), text.size(), on_malformed, what);
  }
  /// Reads the object-valued member `field` (one of ours) the same way.
  FieldViews object(const FieldView& field, ErrorCode on_malformed, std::string_view what) const;

  const FieldView* find(std::string_view name) const noexcept;
  const FieldView& operator[](std::string_view name) const noexcept;

 private:
  static constexpr std::size_t kInline = 12;  // the lock operations send at most eight
  void add(const FieldView& field);
  char* base_ = nullptr;  // the text the views point into
  std::size_t count_ = 0;
  std::array<FieldView, kInline> inline_{};
  std::vector<FieldView> more_;  // members past kInline
};

/// Decodes the escapes of a string literal's content (validated by JsonReader) in place and
/// returns the decoded length, which is never more than `size`.
std::size_t unescape_in_place(char* text, std::size_t size) noexcept;

/// Sets `out` to a string literal's content (validated, without its quotes) decoded, reusing
/// out's storage.
inline void assign_decoded(std::string& out, std::string_view content) {
  out.assign(content.data(), content.size());
  out.resize(unescape_in_place(out.data(), out.size()));
}

/// Text written through a pointer into room made ahead in a std::string, whose size runs ahead
/// of the text. In wasm every std::string append is an out-of-line call into Emscripten's
/// prebuilt libc++ (and short copies another call, to memcpy); JSON is written in pieces of a
/// few bytes, so that was most of the cost of writing it. Here a piece costs a bounds check and
/// an inline copy, and the string is resized only when the room runs out.
class TextBuffer {
 public:
  TextBuffer() = default;
  /// Writes over `buffer`, reusing its storage.
  explicit TextBuffer(std::string buffer) noexcept : text_(std::move(buffer)) {}
  /// Appends to `buffer`'s text.
  static TextBuffer after(std::string buffer) noexcept {
    std::size_t kept = buffer.size();
    TextBuffer out(std::move(buffer));
    out.size_ = kept;
    return out;
  }

  // Always inlined: the engine's file is compiled for size, where clang would keep even these
  // as calls.
  [[gnu::always_inline]] void append(std::string_view piece) {
    copy_bytes(room(piece.size()), piece.data(), piece.size());
    size_ += piece.size();
  }
  [[gnu::always_inline]] void push_back(char c) {
    *room(1) = c;
    ++size_;
  }
  void pop_back() noexcept { --size_; }
  /// A pointer to at least `n` writable bytes after the text; commit() what was written.
  [[gnu::always_inline]] char* room(std::size_t n) {
    if (text_.size() - size_ < n) grow(n);
    return text_.data() + size_;
  }
  void commit(std::size_t n) noexcept { size_ += n; }

  void clear() noexcept { size_ = 0; }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }
  /// The storage held, written or not (to drop an oversized buffer).
  std::size_t storage() const noexcept { return text_.size(); }
  std::string_view view() const noexcept { return {text_.data(), size_}; }
  /// The text as a string (its storage moves with it); the buffer is left empty.
  std::string take() {
    text_.resize(size_);
    size_ = 0;
    return std::exchange(text_, std::string());
  }

 private:
  // A plain loop for the short pieces JSON is made of (a call to memcpy costs more in wasm).
#if defined(__clang__)
  [[clang::no_builtin("memcpy")]]  // keep clang from turning the loop back into that call
#endif
  [[gnu::always_inline]] static void copy_bytes(char* to, const char* from, std::size_t n) noexcept {
    if (n > 256) {
      std::memcpy(to, from, n);
      return;
    }
    for (; n >= 8; n -= 8, to += 8, from += 8) {
      std::uint64_t word;
      __builtin_memcpy(&word, from, 8);
      __builtin_memcpy(to, &word, 8);
    }
    for (; n; --n) *to++ = *from++;
  }
  void grow(std::size_t n);

  std::string text_;
  std::size_t size_ = 0;
};

/// Appends `value` in decimal (no allocation, unlike std::to_string).
void append_integer(std::string& out, std::int64_t value);
void append_integer(TextBuffer& out, std::int64_t value);

/// append_json_string (json.hpp) for the hot paths: the same escaping, but it grows `out`
/// geometrically. Emscripten 3.1.6 ships libc++ built before C++20, whose string::reserve
/// reallocates to exactly the size asked for -- and shrinks a larger buffer -- so the reserve
/// in append_json_string costs a malloc, a copy of the whole buffer and a free on almost every
/// call into a reused buffer.
void write_json_string(std::string& out, std::string_view text);
void write_json_string(TextBuffer& out, std::string_view text);

/// Room for `extra` more bytes in `out`, growing it geometrically (see write_json_string: never
/// call reserve with less than the capacity).
inline void make_room(std::string& out, std::size_t extra) {
  std::size_t need = out.size() + extra;
  if (need > out.capacity()) out.reserve(need > 2 * out.capacity() ? need : 2 * out.capacity());
}

class JsonWriter {
 public:
  JsonWriter() = default;
  /// Writes over `buffer`, reusing its storage.
  explicit JsonWriter(std::string buffer) noexcept : out_(std::move(buffer)) {}
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

  std::string_view view() const noexcept { return out_.view(); }
  std::string take() { return out_.take(); }

 private:
  void separate();
  TextBuffer out_;
  bool comma_ = false;  // a value precedes at this level, so the next one needs a comma
};

}  // namespace agent_tools
