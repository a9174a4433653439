#pragma once
// One logger per component name ("gateway", "postgres", "speakers"), all sharing one sink so the
// format (text or JSON lines) and level are set once at node start.
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace sbm::log {

enum class format { text, json };

// Idempotent; call before any logger is used. level: trace|debug|info|warn|error|critical|off.
void setup(const std::string& level, format fmt);

// The named logger, created on first use with the configured sink and level.
std::shared_ptr<spdlog::logger> get(const std::string& component);

// Escapes a value for the JSON-lines format (also safe in text logs: no raw control bytes).
std::string escape(const std::string& value);

}  // namespace sbm::log
