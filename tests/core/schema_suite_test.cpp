// The official JSON-Schema-Test-Suite, draft 2020-12 (../shared/specs/json-schema-test-suite), run
// against agent_tools::schema. Every group runs unless kSkips names it with a reason; a skipped
// group is still compiled and validated (its answers are not checked) so unsupported input cannot
// crash the validator. Prints a per-file table and requires zero failures.
//
// The suite is looked up in $AGENT_TOOLS_SHARED_DIR, else in the AGENT_TOOLS_SHARED_DIR compile
// definition (the repository's ../shared); without it the test prints a SKIP line and passes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "agent_tools/json.hpp"
#include "agent_tools/schema.hpp"

#ifndef AGENT_TOOLS_SHARED_DIR
#define AGENT_TOOLS_SHARED_DIR ""
#endif

namespace {

using agent_tools::json;
using agent_tools::schema::Schema;

struct Skip {
  const char* file;
  // The group's description, or "*" for a file about an unsupported feature: its groups that pass
  // anyway count as passed, the others as skipped for the reason given.
  const char* group;
  const char* reason;
};

// Everything the suite exercises that agent_tools::schema does not implement (see schema.hpp).
constexpr const char* kRemote = "remote $ref (other documents)";
constexpr const char* kIdBase = "$ref resolved against an $id base URI";
constexpr const char* kAnchor = "$anchor / plain-name fragment $ref";
constexpr const char* kDynamic = "$dynamicRef / $dynamicAnchor";
constexpr const char* kUnevaluated = "unevaluatedProperties / unevaluatedItems";
constexpr const char* kVocabulary = "$vocabulary (custom meta-schemas)";
constexpr const char* kUnicodeProperty = "regex Unicode property escapes (\\p{...})";

constexpr Skip kSkips[] = {
    {"anchor.json", "*", kAnchor},
    {"dynamicRef.json", "*", kDynamic},
    {"refRemote.json", "*", kRemote},
    {"unevaluatedItems.json", "*", kUnevaluated},
    {"unevaluatedProperties.json", "*", kUnevaluated},
    {"vocabulary.json", "*", kVocabulary},
    {"defs.json", "validate definition against metaschema", kRemote},
    {"not.json", "collect annotations inside a 'not', even if collection is disabled", kUnevaluated},
    {"pattern.json", "pattern with Unicode property escape requires unicode mode", kUnicodeProperty},
    {"patternProperties.json", "patternProperties with Unicode property escape", kUnicodeProperty},
    {"ref.json", "remote ref, containing refs itself", kRemote},
    {"ref.json", "Recursive references between schemas", kIdBase},
    {"ref.json", "ref creates new scope when adjacent to keywords", kUnevaluated},
    {"ref.json", "refs with relative uris and defs", kIdBase},
    {"ref.json", "relative refs with absolute uris and defs", kIdBase},
    {"ref.json", "$id must be resolved against nearest parent, not just immediate parent", kIdBase},
    {"ref.json", "order of evaluation: $id and $ref", kIdBase},
    {"ref.json", "order of evaluation: $id and $anchor and $ref", kAnchor},
    {"ref.json", "order of evaluation: $id and $ref on nested schema", kIdBase},
    {"ref.json", "URN base URI with URN and anchor ref", kAnchor},
    {"ref.json", "URN ref with nested pointer ref", kIdBase},
    {"ref.json", "ref to if", kIdBase},
    {"ref.json", "ref to then", kIdBase},
    {"ref.json", "ref to else", kIdBase},
    {"ref.json", "ref with absolute-path-reference", kIdBase},
};

const Skip* find_skip(const std::string& file, const std::string& group) {
  for (const Skip& s : kSkips) {
    if (file == s.file && (std::string(s.group) == "*" || group == s.group)) return &s;
  }
  return nullptr;
}

struct FileResult {
  int passed = 0;
  int failed = 0;
  std::map<std::string, int> skipped;  // reason -> tests
};

std::filesystem::path suite_dir() {
  const char* env = std::getenv("AGENT_TOOLS_SHARED_DIR");
  const std::string shared = env && *env ? env : AGENT_TOOLS_SHARED_DIR;
  if (shared.empty()) return {};
  return std::filesystem::path(shared) / "specs" / "json-schema-test-suite" / "draft2020-12";
}

}  // namespace

TEST_CASE("JSON-Schema-Test-Suite draft 2020-12") {
  const auto dir = suite_dir();
  std::error_code ec;
  if (dir.empty() || !std::filesystem::is_directory(dir, ec)) {
    std::printf("SKIP: ../shared/specs/json-schema-test-suite not found (looked for %s)\n",
                dir.empty() ? "<AGENT_TOOLS_SHARED_DIR unset>" : dir.string().c_str());
    return;
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  REQUIRE_FALSE(files.empty());

  std::map<std::string, FileResult> results;
  std::set<std::pair<std::string, std::string>> skips_used;
  std::vector<std::string> failures;
  std::vector<std::string> unneeded_skips;
  for (const auto& path : files) {
    const std::string file = path.filename().string();
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    const json groups = json::parse(text.str());
    FileResult& result = results[file];
    for (const json& group : groups) {
      const std::string description = group.at("description").get<std::string>();
      const json& tests = group.at("tests");
      if (const Skip* skip = find_skip(file, description)) {
        skips_used.insert({skip->file, skip->group});
        // Still exercised: compiling or validating unsupported input must fail cleanly. A skip
        // is only allowed where it is needed: the group must not pass as it is.
        bool would_pass = true;
        try {
          const Schema s = Schema::compile(group.at("schema"));
          for (const json& test : tests) {
            const bool answer = s.validate(test.at("data")).empty();
            CHECK(s.accepts_text(agent_tools::dump_json(test.at("data"))) == answer);
            if (answer != test.at("valid").get<bool>()) would_pass = false;
          }
        } catch (const agent_tools::Error&) {
          would_pass = false;
        }
        if (!would_pass) {
          result.skipped[skip->reason] += static_cast<int>(tests.size());
          continue;
        }
        if (std::string(skip->group) != "*") {
          unneeded_skips.push_back(file + " / " + description);
          continue;
        }
      }
      std::optional<Schema> compiled;
      std::string compile_message;
      try {
        compiled = Schema::compile(group.at("schema"));
      } catch (const agent_tools::Error& e) {
        compile_message = e.message();
      }
      for (const json& test : tests) {
        const bool expected = test.at("valid").get<bool>();
        const std::string name = file + " / " + description + " / " + test.at("description").get<std::string>();
        if (!compiled) {
          ++result.failed;
          failures.push_back(name + ": compile error: " + compile_message);
          continue;
        }
        const json& data = test.at("data");
        const auto issues = compiled->validate(data);
        const bool answer = issues.empty();
        if (compiled->is_valid(data) != answer) {
          ++result.failed;
          failures.push_back(name + ": is_valid() disagrees with validate()");
        } else if (compiled->accepts_text(agent_tools::dump_json(data)) != answer) {
          // The text mode must agree wherever names are not repeated (the suite repeats none).
          ++result.failed;
          failures.push_back(name + ": accepts_text() disagrees with validate()");
        } else if (answer != expected) {
          ++result.failed;
          failures.push_back(name + ": expected " + (expected ? "valid" : "invalid") + ", got " +
                             (answer ? "valid" : "invalid: " + issues[0].message));
        } else {
          ++result.passed;
        }
      }
    }
  }

  int passed = 0, skipped = 0, failed = 0;
  std::printf("\nJSON-Schema-Test-Suite draft2020-12 (%s)\n", dir.string().c_str());
  std::printf("%-28s %6s %7s %6s  %s\n", "file", "passed", "skipped", "failed", "skip reason");
  for (const auto& [file, r] : results) {
    int file_skipped = 0;
    std::string reasons;
    for (const auto& [reason, count] : r.skipped) {
      file_skipped += count;
      reasons += (reasons.empty() ? "" : "; ") + reason + " (" + std::to_string(count) + ")";
    }
    std::printf("%-28s %6d %7d %6d  %s\n", file.c_str(), r.passed, file_skipped, r.failed, reasons.c_str());
    passed += r.passed;
    skipped += file_skipped;
    failed += r.failed;
  }
  std::printf("%-28s %6d %7d %6d\n\n", "total", passed, skipped, failed);
  for (const auto& f : failures) std::printf("FAILED: %s\n", f.c_str());

  for (const Skip& s : kSkips) {
    CHECK_MESSAGE(skips_used.count({s.file, s.group}) == 1,
                  "stale skip entry: " << s.file << " / " << s.group << " matches no group");
  }
  for (const auto& group : unneeded_skips) CHECK_MESSAGE(false, "skipped group passes, remove its skip: " << group);
  CHECK(passed > 0);
  CHECK(failed == 0);
}
