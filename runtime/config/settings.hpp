#pragma once

// A node's configuration: documented defaults, overridden by a config file, then by SBM_*
// environment variables, then by command-line flags (flag > env > file > default).
// Pure: the only I/O is reading the config file and secret files named by the sources.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace sbm::config {

enum class value_kind { text, integer, number, boolean, duration, secret };
std::string_view to_string(value_kind kind);

struct option_spec {
  std::string key;              // dotted, lowercase, '-' allowed: "gateway.port", "auth.keys"
  value_kind kind;
  std::string default_value;    // "" means no default; secrets may not have one
  std::string help;             // one line, shown by --help
  bool required = false;        // must have a value after all sources are merged
  std::optional<double> min, max;          // inclusive bounds for integer/number; milliseconds for duration
  std::vector<std::string> choices;        // allowed values for text (empty = any)
  // The environment variable that sets it: unset derives SBM_<KEY> (env_name); empty means none,
  // for a switch of one command (`--json`) that must not leak into every shell's environment.
  std::optional<std::string> env;
};

// How one command reads its options. A command owns only its own SBM_* variables: one that another
// command reads (`other_variables`) is left alone, and one that no command reads is a typo, refused.
struct load_rules {
  bool config_file = true;                   // --config FILE / SBM_CONFIG name a file of options
  std::vector<std::string> other_variables;  // SBM_* names other commands read
};

struct config_error {
  std::string key;      // the option, env variable or flag at fault ("config" for the file itself)
  std::string message;  // names the key, the offending value and what was expected
  // Out of line on purpose: GCC 12 inlines the strings' destructors through std::variant and
  // then reports a false -Wfree-nonheap-object in callers that move settings out of load()'s result.
  ~config_error();
};

struct sources {
  std::vector<std::pair<std::string, std::string>> env;   // the process environment, all of it
  std::vector<std::string> flags;                          // argv after the subcommand
};

class settings {
 public:
  // Typed reads. Unknown key or an option without a value: std::out_of_range.
  // Reading an option as another kind than its schema kind: std::invalid_argument.
  const std::string& text(std::string_view key) const;
  std::int64_t integer(std::string_view key) const;
  double number(std::string_view key) const;
  bool boolean(std::string_view key) const;
  std::chrono::milliseconds duration(std::string_view key) const;
  const std::string& secret(std::string_view key) const;     // the resolved secret content

  bool has(std::string_view key) const;                      // has a non-empty value; false for unknown keys
  std::string_view source_of(std::string_view key) const;    // "default" | "file" | "env" | "flag"
  std::string redacted_dump() const;   // "key = value (source)" lines, secrets as <redacted>, for logs

  // A copy with one value replaced, validated like a flag (so a secret only as "<key>-file").
  std::variant<settings, config_error> with(std::string_view key, std::string_view value) const;

 private:
  enum class layer { default_value, file, env, flag };
  struct entry {
    option_spec spec;
    layer source = layer::default_value;
    std::string value;        // as given; for a secret, the resolved content
    std::string secret_path;  // set when the secret's content comes from a file
    std::string origin;       // where the winning value was given, for error messages
    std::int64_t as_integer = 0;
    double as_number = 0;
    bool as_boolean = false;
    std::chrono::milliseconds as_duration{0};
  };
  struct assignment;
  struct lookup_result;

  settings() = default;
  const entry& find(std::string_view key, value_kind expected) const;
  lookup_result lookup(std::string_view key);
  std::optional<config_error> unknown_key(std::string_view key, std::string_view what) const;
  std::optional<config_error> apply(const assignment& a);
  std::optional<config_error> resolve_secret(entry& e, std::string_view origin) const;

  std::map<std::string, entry, std::less<>> entries_;
  bool config_file_ = true;

  friend std::variant<settings, config_error> load(const std::vector<option_spec>& schema,
                                                   const sources& src, const load_rules& rules);
};

std::variant<settings, config_error> load(const std::vector<option_spec>& schema, const sources& src,
                                          const load_rules& rules = {});
// Every option: key, kind, default, environment variable, help.
std::string help_text(const std::vector<option_spec>& schema, const load_rules& rules = {});
std::string env_name(std::string_view key);   // "gateway.port" -> "SBM_GATEWAY_PORT" ('.' and '-' -> '_', upper)
// The variable that sets an option ("" when none); a secret's file is named by it + "_FILE".
std::string env_variable(const option_spec& spec);
// Every SBM_* variable a command with this schema reads (SBM_CONFIG too when it reads a file).
std::vector<std::string> env_variables(const std::vector<option_spec>& schema, const load_rules& rules = {});

}  // namespace sbm::config
