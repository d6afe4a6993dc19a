// JSON Schema (draft 2020-12) validation in the core, sized for what OpenAI function parameters and
// structured outputs use: compile a schema once, then validate tool-call arguments against it.
//
// Sans-I/O and bounded: compile() resolves every `$ref` ahead of time (references within the
// document: "#" or "#/json/pointer", relative to the enclosing schema resource, or prefixed with the
// root's `$id`), precompiles `pattern`s with the core's own regular-expression engine (ECMA-262
// syntax over code points, linear time, no backtracking, no std::regex), and rejects `$ref` cycles
// that would apply a schema to the same value forever. Neither compile() nor validate() recurses
// without bound, whatever the input; validate() builds message strings only for the issues it
// reports.
//
// Supported keywords: type, enum, const, multipleOf, minimum, maximum, exclusiveMinimum,
// exclusiveMaximum, minLength, maxLength, pattern, items (also the older array form with
// additionalItems), prefixItems, minItems, maxItems, uniqueItems, contains, minContains,
// maxContains, properties, patternProperties, additionalProperties, propertyNames, required,
// dependentRequired, dependentSchemas, minProperties, maxProperties, allOf, anyOf, oneOf, not,
// if/then/else, $ref, $defs, boolean schemas. Annotations (format, title, description, default,
// examples, content*, $comment, $schema, $anchor...) and unknown keywords are ignored, as the
// specification says. Keywords that would change the outcome but are not implemented
// ($dynamicRef, unevaluatedProperties/unevaluatedItems other than `true`, remote or `$id`-relative
// `$ref`s, `$anchor` references, regex features such as \p{...}, lookaround and backreferences)
// make compile() throw instead of being silently skipped.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent_tools/error.hpp"

namespace agent_tools::schema {

/// One reason an instance does not match.
struct Issue {
  /// Where in the instance: "$" for the root, then ".name" for plain keys, "[\"odd key\"]" for
  /// other keys (as a JSON string) and "[2]" for array items, e.g. "$.items[2].name". A missing
  /// required property is reported at the path it would have.
  std::string path;
  /// The schema keyword that failed, e.g. "type", "required", "additionalProperties".
  std::string keyword;
  /// A readable sentence that starts with the path, e.g. "$.confidence: expected number, got string".
  std::string message;
};

/// A compiled schema. Immutable; copies share the compiled form and may be used from any thread.
class Schema {
 public:
  /// Compiles `schema` (an object or a boolean). Throws Error(INVALID_ARGUMENT) naming the location
  /// (e.g. "#/properties/a/pattern") for an unusable schema: a keyword of the wrong type, an
  /// unresolvable or unsupported `$ref`, a `$ref` cycle that never consumes the instance, an invalid
  /// or unsupported `pattern`, or an unsupported keyword that would change the outcome. A schema
  /// nested deeper than MAX_JSON_DEPTH throws Error(INPUT_TOO_LARGE).
  static Schema compile(const json& schema);

  /// Validates `instance`; returns the issues found, empty if it is valid. Stops after
  /// `max_issues` issues (0 counts as 1). An instance nested too deeply to validate within the
  /// core's recursion limit yields an issue with keyword "depth", never a crash. Throws nothing
  /// but std::bad_alloc.
  std::vector<Issue> validate(const json& instance, std::size_t max_issues = 20) const;

  /// Whether `instance` is valid; the same answer as validate().empty(), without building messages.
  bool is_valid(const json& instance) const;

  /// Whether the JSON text `instance` is valid, decided while reading it: no tree is built except
  /// for subvalues under keywords that need a value more than once (anyOf, uniqueItems, ...).
  /// true means parse_json(instance) succeeds and is_valid() holds for it; false means invalid,
  /// malformed or (with repeated member names) possibly valid: ask validate() on the tree.
  /// Throws nothing but std::bad_alloc.
  bool accepts_text(std::string_view instance) const;

  struct Compiled;  // opaque: defined in schema.cpp

 private:
  explicit Schema(std::shared_ptr<const Compiled> compiled) : compiled_(std::move(compiled)) {}
  std::shared_ptr<const Compiled> compiled_;
};

}  // namespace agent_tools::schema
