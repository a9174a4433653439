#include "runtime/config/settings.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

namespace sbm::config {

namespace {

constexpr std::string_view file_suffix = "-file";
constexpr std::string_view env_prefix = "SBM_";
constexpr std::string_view config_key = "config";

std::string in_quotes(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  out += s;
  out += '\'';
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view trim(std::string_view s) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Optimal string alignment distance: a swapped pair of letters ("prot"/"port") costs one edit,
// which is the typo people actually make.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

std::optional<std::string> closest(std::string_view wanted, const std::vector<std::string>& candidates) {
  constexpr std::size_t max_distance = 2;
  std::optional<std::string> best;
  std::size_t best_distance = max_distance + 1;
  const std::string wanted_lower = lower(wanted);
  for (const auto& c : candidates) {
    const auto dist = edit_distance(wanted_lower, lower(c));
    if (dist < best_distance) {
      best_distance = dist;
      best = c;
    }
  }
  return best;
}

std::string format_bound(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<std::int64_t>(v));
  std::ostringstream out;
  out.precision(15);
  out << v;
  return out.str();
}

std::string range_text(const option_spec& spec, std::string_view unit) {
  if (spec.min && spec.max)
    return " between " + format_bound(*spec.min) + std::string(unit) + " and " + format_bound(*spec.max) +
           std::string(unit);
  if (spec.min) return " >= " + format_bound(*spec.min) + std::string(unit);
  if (spec.max) return " <= " + format_bound(*spec.max) + std::string(unit);
  return "";
}

std::string expectation(const option_spec& spec) {
  switch (spec.kind) {
    case value_kind::integer:
      return "an integer" + range_text(spec, "");
    case value_kind::number:
      return "a number" + range_text(spec, "");
    case value_kind::boolean:
      return "one of true/false/yes/no/on/off/1/0";
    case value_kind::duration:
      return "a duration with a unit (250ms, 5s, 2m, 1h; a bare number is not accepted)" +
             range_text(spec, "ms");
    case value_kind::text: {
      if (spec.choices.empty()) return "any text";
      std::string out = "one of ";
      for (std::size_t i = 0; i < spec.choices.size(); ++i) out += (i ? ", " : "") + in_quotes(spec.choices[i]);
      return out;
    }
    case value_kind::secret:
      return "a secret";
  }
  return "";
}

bool within_bounds(const option_spec& spec, double v) {
  return (!spec.min || v >= *spec.min) && (!spec.max || v <= *spec.max);
}

struct typed_value {
  std::int64_t integer = 0;
  double number = 0;
  bool boolean = false;
  std::chrono::milliseconds duration{0};
};

std::optional<std::int64_t> parse_int64(std::string_view s) {
  std::int64_t v = 0;
  const auto* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc{} || ptr != end) return std::nullopt;
  return v;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  struct unit { std::string_view suffix; std::int64_t ms; };
  // "ms" before "m" and "s": the longest suffix must win.
  static constexpr unit units[] = {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}};
  for (const auto& u : units) {
    if (!ends_with(s, u.suffix)) continue;
    const auto digits = s.substr(0, s.size() - u.suffix.size());
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(),
                                       [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    const auto count = parse_int64(digits);
    if (!count || *count > std::numeric_limits<std::int64_t>::max() / u.ms) return std::nullopt;
    return std::chrono::milliseconds{*count * u.ms};
  }
  return std::nullopt;
}

// Parses `raw` by the option's kind and checks bounds and choices; false when it does not fit.
bool parse_value(const option_spec& spec, std::string_view raw, typed_value& out) {
  switch (spec.kind) {
    case value_kind::text:
      return spec.choices.empty() ||
             std::find(spec.choices.begin(), spec.choices.end(), raw) != spec.choices.end();
    case value_kind::secret:
      return true;
    case value_kind::integer: {
      const auto v = parse_int64(raw);
      if (!v || !within_bounds(spec, static_cast<double>(*v))) return false;
      out.integer = *v;
      return true;
    }
    case value_kind::number: {
      double v = 0;
      const auto* end = raw.data() + raw.size();
      const auto [ptr, ec] = std::from_chars(raw.data(), end, v);
      if (raw.empty() || ec != std::errc{} || ptr != end || !std::isfinite(v) || !within_bounds(spec, v))
        return false;
      out.number = v;
      return true;
    }
    case value_kind::boolean: {
      const auto v = lower(raw);
      if (v == "true" || v == "yes" || v == "on" || v == "1") {
        out.boolean = true;
        return true;
      }
      if (v == "false" || v == "no" || v == "off" || v == "0") {
        out.boolean = false;
        return true;
      }
      return false;
    }
    case value_kind::duration: {
      const auto v = parse_duration(raw);
      if (!v || !within_bounds(spec, static_cast<double>(v->count()))) return false;
      out.duration = *v;
      return true;
    }
  }
  return false;
}

config_error invalid_value(const option_spec& spec, std::string_view raw, std::string_view origin) {
  return {spec.key, "invalid value " + in_quotes(raw) + " for option " + in_quotes(spec.key) + " (from " +
                        std::string(origin) + "): expected " + expectation(spec)};
}

bool valid_key(std::string_view key) {
  if (key.empty() || !(key.front() >= 'a' && key.front() <= 'z')) return false;
  if (key.back() == '.' || key.back() == '-') return false;
  char previous = 0;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    const bool separator = c == '.' || c == '-';
    if (!ok || (separator && (previous == '.' || previous == '-'))) return false;
    previous = c;
  }
  return true;
}

// The variables that set an option, each with the key it assigns ("<secret>-file" for a secret's
// file).
std::vector<std::pair<std::string, std::string>> variables_of(const option_spec& spec) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto name = env_variable(spec);
  if (name.empty()) return out;
  out.emplace_back(name, spec.key);
  if (spec.kind == value_kind::secret) out.emplace_back(name + "_FILE", spec.key + std::string(file_suffix));
  return out;
}

// Where a secret may come from, for error messages: "set SBM_AUTH_KEYS or auth.keys-file = PATH".
std::string secret_sources(const option_spec& spec, bool config_file) {
  const auto file_key = spec.key + std::string(file_suffix);
  const auto variable = env_variable(spec);
  std::string out = "set ";
  if (!variable.empty()) out += variable + " or ";
  return out + (config_file ? file_key + " = PATH" : "--" + file_key + "=PATH");
}

std::optional<config_error> check_schema(const std::vector<option_spec>& schema) {
  const auto schema_error = [](const option_spec& spec, std::string what) {
    return config_error{spec.key, "schema: option " + in_quotes(spec.key) + " " + what};
  };
  std::map<std::string, std::string> env_owner;  // env name -> key that claims it
  std::set<std::string> keys;
  for (const auto& spec : schema) keys.insert(spec.key);
  std::set<std::string> seen;
  for (const auto& spec : schema) {
    if (!valid_key(spec.key))
      return schema_error(spec, "is not a valid key (lowercase letters, digits, '.', '-')");
    if (spec.key == config_key) return schema_error(spec, "uses the reserved key 'config' (the config file path)");
    if (!seen.insert(spec.key).second) return schema_error(spec, "is declared twice");
    if (spec.kind == value_kind::secret) {
      const auto file_key = spec.key + std::string(file_suffix);
      if (keys.count(file_key)) return schema_error(spec, "is a secret, so " + in_quotes(file_key) + " is reserved");
    }
    if (spec.env && !spec.env->empty() && (!starts_with(*spec.env, env_prefix) || *spec.env == env_prefix))
      return schema_error(spec, "names the variable " + *spec.env + ", which is not SBM_<NAME>");
    for (const auto& [name, assigned] : variables_of(spec)) {
      if (name == "SBM_CONFIG") return schema_error(spec, "maps to the reserved variable SBM_CONFIG");
      const auto [it, fresh] = env_owner.emplace(name, spec.key);
      if (!fresh) return schema_error(spec, "maps to " + name + ", already used by " + in_quotes(it->second));
    }
    const bool numeric = spec.kind == value_kind::integer || spec.kind == value_kind::number ||
                         spec.kind == value_kind::duration;
    if ((spec.min || spec.max) && !numeric)
      return schema_error(spec, "has bounds, but only integer, number and duration options take bounds");
    if (spec.min && spec.max && *spec.min > *spec.max) return schema_error(spec, "has min > max");
    if (!spec.choices.empty() && spec.kind != value_kind::text)
      return schema_error(spec, "has choices, but only text options take choices");
    if (spec.kind == value_kind::secret && !spec.default_value.empty())
      return schema_error(spec, "is a secret and must not have a default (secrets never live in code)");
    typed_value ignored;
    if (!spec.default_value.empty() && !parse_value(spec, spec.default_value, ignored))
      return schema_error(spec, "has an invalid default " + in_quotes(spec.default_value) + ": expected " +
                                    expectation(spec));
  }
  return std::nullopt;
}

std::optional<std::string> read_whole_file(const std::string& path, std::string& why) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    why = "is a directory";
    return std::nullopt;
  }
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = errno ? std::strerror(errno) : "cannot be opened";
    return std::nullopt;
  }
  std::string content{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) {
    why = "read error";
    return std::nullopt;
  }
  return content;
}

std::string escape_for_log(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (u < 0x20 || u == 0x7f) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xf];
    } else out += c;
  }
  return out;
}

struct file_line {
  std::string key;
  std::string value;
  std::size_t line_no;
};

std::variant<std::vector<file_line>, config_error> parse_config_file(const std::string& path,
                                                                     std::string_view given_by) {
  std::string why;
  const auto content = read_whole_file(path, why);
  if (!content)
    return config_error{std::string(config_key), "cannot read config file " + in_quotes(path) + " (given by " +
                                                     std::string(given_by) + "): " + why};
  std::vector<file_line> lines;
  std::map<std::string, std::size_t> first_line;
  std::string section;
  std::istringstream in(*content);
  std::string raw;
  std::size_t line_no = 0;
  const auto syntax_error = [&](std::string what) {
    return config_error{std::string(config_key),
                        "config file " + in_quotes(path) + " line " + std::to_string(line_no) + ": " + what};
  };
  while (std::getline(in, raw)) {
    ++line_no;
    const auto line = trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']') return syntax_error("section header without closing ']'");
      section = std::string(trim(line.substr(1, line.size() - 2)));
      if (section.empty()) return syntax_error("empty section name");
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) return syntax_error("expected 'name = value', got " + in_quotes(line));
    const auto name = trim(line.substr(0, eq));
    if (name.empty()) return syntax_error("missing name before '='");
    auto value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    std::string key = section.empty() ? std::string(name) : section + "." + std::string(name);
    const auto [it, fresh] = first_line.emplace(key, line_no);
    if (!fresh)
      return syntax_error(in_quotes(key) + " is already set on line " + std::to_string(it->second));
    lines.push_back({std::move(key), std::string(value), line_no});
  }
  return lines;
}

}  // namespace

config_error::~config_error() = default;

std::string_view to_string(value_kind kind) {
  switch (kind) {
    case value_kind::text: return "text";
    case value_kind::integer: return "integer";
    case value_kind::number: return "number";
    case value_kind::boolean: return "boolean";
    case value_kind::duration: return "duration";
    case value_kind::secret: return "secret";
  }
  return "unknown";
}

std::string env_name(std::string_view key) {
  std::string out(env_prefix);
  for (char c : key) {
    if (c == '.' || c == '-') out += '_';
    else out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string env_variable(const option_spec& spec) { return spec.env ? *spec.env : env_name(spec.key); }

std::vector<std::string> env_variables(const std::vector<option_spec>& schema, const load_rules& rules) {
  std::vector<std::string> out;
  if (rules.config_file) out.emplace_back("SBM_CONFIG");
  for (const auto& spec : schema)
    for (auto& [name, key] : variables_of(spec)) out.push_back(std::move(name));
  return out;
}

// ---------------------------------------------------------------------------------------------
// settings

struct settings::assignment {
  std::string key;     // as written by the user; "<secret>-file" names a secret's file
  std::string value;
  layer source;
  std::string origin;  // "SBM_GATEWAY_PORT", "--gateway.port", "config file 'x' line 3"
};

struct settings::lookup_result {
  entry* target = nullptr;
  bool file_ref = false;  // the key was "<secret>-file"
};

settings::lookup_result settings::lookup(std::string_view key) {
  if (auto it = entries_.find(key); it != entries_.end()) return {&it->second, false};
  if (ends_with(key, file_suffix)) {
    const auto base = key.substr(0, key.size() - file_suffix.size());
    if (auto it = entries_.find(base); it != entries_.end() && it->second.spec.kind == value_kind::secret)
      return {&it->second, true};
  }
  return {};
}

std::optional<config_error> settings::unknown_key(std::string_view key, std::string_view what) const {
  std::vector<std::string> candidates;
  for (const auto& [name, e] : entries_) {
    candidates.push_back(name);
    if (e.spec.kind == value_kind::secret) candidates.push_back(name + std::string(file_suffix));
  }
  std::string message = "unknown option " + in_quotes(key) + " (" + std::string(what) + ")";
  if (const auto suggestion = closest(key, candidates)) message += "; did you mean " + in_quotes(*suggestion) + "?";
  return config_error{std::string(key), std::move(message)};
}

std::optional<config_error> settings::apply(const assignment& a) {
  const auto found = lookup(a.key);
  if (!found.target) return unknown_key(a.key, a.origin);
  entry& e = *found.target;
  const auto& spec = e.spec;
  if (spec.kind == value_kind::secret) {
    if (found.file_ref) {
      e.secret_path = a.value;
      e.value.clear();
    } else {
      if (a.source != layer::env)
        return config_error{spec.key, "secret " + in_quotes(spec.key) + " must not be given in plain text (from " +
                                          a.origin + "; it would end up in shell history, ps output or a "
                                          "repository): " + secret_sources(spec, config_file_)};
      e.secret_path.clear();
      e.value = a.value;
    }
  } else {
    typed_value parsed;
    const bool empty_text_ok = spec.kind == value_kind::text && spec.choices.empty();
    if (!(a.value.empty() && empty_text_ok) && !parse_value(spec, a.value, parsed))
      return invalid_value(spec, a.value, a.origin);
    e.value = a.value;
    e.as_integer = parsed.integer;
    e.as_number = parsed.number;
    e.as_boolean = parsed.boolean;
    e.as_duration = parsed.duration;
  }
  e.source = a.source;
  e.origin = a.origin;
  return std::nullopt;
}

std::optional<config_error> settings::resolve_secret(entry& e, std::string_view origin) const {
  if (e.secret_path.empty()) return std::nullopt;
  const auto describe = [&] {
    return "secret file " + in_quotes(e.secret_path) + " for " + in_quotes(e.spec.key) + " (from " +
           std::string(origin) + ")";
  };
  std::string why;
  auto content = read_whole_file(e.secret_path, why);
  if (!content) return config_error{e.spec.key, "cannot read " + describe() + ": " + why};
  while (!content->empty() && (content->back() == '\n' || content->back() == '\r')) content->pop_back();
  if (content->empty()) return config_error{e.spec.key, describe() + " is empty"};
  e.value = std::move(*content);
  return std::nullopt;
}

namespace {

std::optional<config_error> missing_required(const option_spec& spec, bool config_file) {
  if (spec.kind == value_kind::secret)
    return config_error{spec.key, "missing required secret " + in_quotes(spec.key) + ": " +
                                      secret_sources(spec, config_file)};
  std::string where;
  if (config_file) where += spec.key + " in the config file, ";
  if (const auto name = env_variable(spec); !name.empty()) where += name + " or ";
  return config_error{spec.key, "missing required option " + in_quotes(spec.key) + ": set " + where + "--" + spec.key};
}

}  // namespace

std::variant<settings, config_error> load(const std::vector<option_spec>& schema, const sources& src,
                                          const load_rules& rules) {
  if (auto err = check_schema(schema)) return *err;

  settings result;
  result.config_file_ = rules.config_file;
  for (const auto& spec : schema) {
    settings::entry e;
    e.spec = spec;
    e.origin = "default";
    if (!spec.default_value.empty()) {
      typed_value parsed;
      parse_value(spec, spec.default_value, parsed);  // checked by check_schema
      e.value = spec.default_value;
      e.as_integer = parsed.integer;
      e.as_number = parsed.number;
      e.as_boolean = parsed.boolean;
      e.as_duration = parsed.duration;
    }
    result.entries_.emplace(spec.key, std::move(e));
  }

  // Flags first, only to learn the config file path; they are applied last (highest precedence).
  std::vector<settings::assignment> flag_values;
  std::optional<std::string> config_path;
  std::string config_given_by;
  const auto& flags = src.flags;
  for (std::size_t i = 0; i < flags.size(); ++i) {
    const std::string& arg = flags[i];
    if (!starts_with(arg, "--") || arg.size() == 2)
      return config_error{arg, "unexpected argument " + in_quotes(arg) + ": options are given as --key=value or --key value"};
    const std::string_view body = std::string_view(arg).substr(2);
    const auto eq = body.find('=');
    const std::string key(body.substr(0, eq));
    std::optional<std::string> value;
    if (eq != std::string_view::npos) value = std::string(body.substr(eq + 1));
    const std::string origin = "--" + key;
    const bool next_is_value = i + 1 < flags.size() && !starts_with(flags[i + 1], "--");
    if (key == config_key && rules.config_file) {
      if (!value && next_is_value) value = flags[++i];
      if (!value || value->empty()) return config_error{std::string(config_key), "flag --config needs a file path"};
      config_path = *value;
      config_given_by = "--config";
      continue;
    }
    if (!value) {
      const auto found = result.lookup(key);
      if (!found.target) return *result.unknown_key(key, origin);
      const bool is_switch = found.target->spec.kind == value_kind::boolean;
      if (next_is_value) value = flags[++i];
      else if (is_switch) value = "true";  // a bare boolean flag switches it on
      else
        return config_error{key, "flag " + origin + " needs a value (use " + origin +
                                     "=VALUE when the value starts with '--')"};
    }
    flag_values.push_back({key, std::move(*value), settings::layer::flag, origin});
  }
  if (!config_path && rules.config_file) {
    for (const auto& [name, value] : src.env) {
      if (name == "SBM_CONFIG" && !value.empty()) {
        config_path = value;
        config_given_by = "SBM_CONFIG";
      }
    }
  }

  if (config_path) {
    auto parsed = parse_config_file(*config_path, config_given_by);
    if (auto* err = std::get_if<config_error>(&parsed)) return *err;
    for (auto& line : std::get<std::vector<file_line>>(parsed)) {
      const std::string origin = "config file " + in_quotes(*config_path) + " line " + std::to_string(line.line_no);
      if (auto err = result.apply({line.key, line.value, settings::layer::file, origin})) return *err;
    }
  }

  std::map<std::string, std::string> env_to_key;
  for (const auto& spec : schema)
    for (auto& [name, key] : variables_of(spec)) env_to_key.emplace(std::move(name), std::move(key));
  const std::set<std::string> others(rules.other_variables.begin(), rules.other_variables.end());
  std::map<std::string, std::string> secret_env_names;  // secret key -> first env variable that set it
  for (const auto& [name, value] : src.env) {
    if (!starts_with(name, env_prefix) || (name == "SBM_CONFIG" && rules.config_file)) continue;
    const auto it = env_to_key.find(name);
    if (it == env_to_key.end()) {
      if (others.count(name)) continue;
      std::vector<std::string> known(others.begin(), others.end());
      for (const auto& [env, key] : env_to_key) known.push_back(env);
      if (rules.config_file) known.emplace_back("SBM_CONFIG");
      std::string message = "unknown environment variable " + name;
      if (const auto suggestion = closest(name, known)) message += "; did you mean " + *suggestion + "?";
      return config_error{name, std::move(message)};
    }
    const auto found = result.lookup(it->second);
    if (found.target->spec.kind == value_kind::secret) {
      const auto [first, fresh] = secret_env_names.emplace(found.target->spec.key, name);
      if (!fresh && first->second != name)
        return config_error{found.target->spec.key, "both " + first->second + " and " + name +
                                                        " are set for secret " + in_quotes(found.target->spec.key) +
                                                        ": set only one"};
    }
    if (auto err = result.apply({it->second, value, settings::layer::env, name})) return *err;
  }

  for (const auto& a : flag_values)
    if (auto err = result.apply(a)) return *err;

  for (auto& [key, e] : result.entries_) {
    if (e.spec.kind == value_kind::secret)
      if (auto err = result.resolve_secret(e, e.origin)) return *err;
    if (e.spec.required && e.value.empty()) return *missing_required(e.spec, result.config_file_);
  }
  return result;
}

std::variant<settings, config_error> settings::with(std::string_view key, std::string_view value) const {
  settings copy = *this;
  const std::string origin = "--" + std::string(key);
  const auto found = copy.lookup(key);
  if (!found.target) return *copy.unknown_key(key, origin);
  if (auto err = copy.apply({std::string(key), std::string(value), layer::flag, origin})) return *err;
  entry& e = *found.target;
  if (e.spec.kind == value_kind::secret)
    if (auto err = copy.resolve_secret(e, origin)) return *err;
  if (e.spec.required && e.value.empty()) return *missing_required(e.spec, config_file_);
  return copy;
}

const settings::entry& settings::find(std::string_view key, value_kind expected) const {
  const auto it = entries_.find(key);
  if (it == entries_.end()) throw std::out_of_range("unknown option " + in_quotes(key));
  const entry& e = it->second;
  if (e.spec.kind != expected)
    throw std::invalid_argument("option " + in_quotes(key) + " is " + std::string(to_string(e.spec.kind)) +
                                ", read as " + std::string(to_string(expected)));
  // Text may legitimately be empty; every other kind needs a value to return.
  if (expected != value_kind::text && e.value.empty())
    throw std::out_of_range("option " + in_quotes(key) + " has no value");
  return e;
}

const std::string& settings::text(std::string_view key) const { return find(key, value_kind::text).value; }
std::int64_t settings::integer(std::string_view key) const { return find(key, value_kind::integer).as_integer; }
double settings::number(std::string_view key) const { return find(key, value_kind::number).as_number; }
bool settings::boolean(std::string_view key) const { return find(key, value_kind::boolean).as_boolean; }
std::chrono::milliseconds settings::duration(std::string_view key) const {
  return find(key, value_kind::duration).as_duration;
}
const std::string& settings::secret(std::string_view key) const { return find(key, value_kind::secret).value; }

bool settings::has(std::string_view key) const {
  const auto it = entries_.find(key);
  return it != entries_.end() && !it->second.value.empty();
}

std::string_view settings::source_of(std::string_view key) const {
  const auto it = entries_.find(key);
  if (it == entries_.end()) throw std::out_of_range("unknown option " + in_quotes(key));
  switch (it->second.source) {
    case layer::default_value: return "default";
    case layer::file: return "file";
    case layer::env: return "env";
    case layer::flag: return "flag";
  }
  return "default";
}

std::string settings::redacted_dump() const {
  std::string out;
  for (const auto& [key, e] : entries_) {
    out += key;
    out += " = ";
    if (e.value.empty()) out += "<unset>";
    else if (e.spec.kind == value_kind::secret) out += "<redacted>";
    else out += escape_for_log(e.value);
    out += " (";
    out += source_of(key);
    if (!e.secret_path.empty()) out += ", from file " + escape_for_log(e.secret_path);
    out += ")\n";
  }
  return out;
}

std::string help_text(const std::vector<option_spec>& schema, const load_rules& rules) {
  std::string out =
      rules.config_file
          ? "Options (a --flag beats an SBM_* environment variable, which beats the config file, which beats\n"
            "the default). The config file is named by --config FILE or SBM_CONFIG. Secrets are never given\n"
            "in plain text on the command line or in the config file: use SBM_<KEY>, or <key>-file = PATH.\n\n"
          : "Options (a --flag beats an SBM_* environment variable, which beats the default). Secrets are\n"
            "never given in plain text on the command line: use the variable shown, or --<key>-file=PATH.\n\n";
  for (const auto& spec : schema) {
    out += "  " + spec.key + "  (" + std::string(to_string(spec.kind));
    if (spec.required) out += ", required";
    if (!spec.default_value.empty()) out += ", default " + spec.default_value;
    const bool shows_expectation = spec.min || spec.max || !spec.choices.empty() ||
                                   spec.kind == value_kind::boolean || spec.kind == value_kind::duration;
    if (shows_expectation) out += "; " + expectation(spec);
    out += ")\n";
    if (!spec.help.empty()) out += "      " + spec.help + "\n";
    const auto variable = env_variable(spec);
    const auto env = variable.empty() ? std::string{} : "env " + variable;
    if (spec.kind == value_kind::secret) {
      const auto file_key = spec.key + std::string(file_suffix);
      out += "      " + (env.empty() ? "" : env + " or " + variable + "_FILE; ") +
             (rules.config_file ? "file key " + file_key + "; " : "") + "flag --" + file_key + "=PATH\n";
    } else {
      out += "      " + (env.empty() ? "" : env + "; ") + "flag --" + spec.key + "\n";
    }
  }
  return out;
}

}  // namespace sbm::config
