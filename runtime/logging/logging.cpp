#include "runtime/logging/logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>

namespace sbm::log {

namespace {

std::mutex setup_mutex;
spdlog::sink_ptr shared_sink;
spdlog::level::level_enum configured_level = spdlog::level::info;

spdlog::sink_ptr sink() {
  if (!shared_sink)
    shared_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  return shared_sink;
}

}  // namespace

void setup(const std::string& level, format fmt) {
  std::lock_guard<std::mutex> guard{setup_mutex};
  configured_level = spdlog::level::from_str(level);
  auto s = sink();
  if (fmt == format::json)
    s->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","component":"%n","msg":"%v"})");
  else
    s->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%n] %v");
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->set_level(configured_level); });
}

std::shared_ptr<spdlog::logger> get(const std::string& component) {
  std::lock_guard<std::mutex> guard{setup_mutex};
  if (auto existing = spdlog::get(component))
    return existing;
  auto logger = std::make_shared<spdlog::logger>(component, sink());
  logger->set_level(configured_level);
  spdlog::register_logger(logger);
  return logger;
}

std::string escape(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          static const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

}  // namespace sbm::log
