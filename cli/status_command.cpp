// `sbm status`: what a node says about itself (GET /v1/status), as a table or as the raw document.
#include <iostream>

#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "cli/http_get.hpp"
#include "cli/status_command.hpp"
#include "cli/status_view.hpp"

namespace sbm::cli {

namespace {

constexpr int exit_ready = 0;
constexpr int exit_not_ready = 1;  // or unreachable, or an answer that is not a status document
constexpr int exit_refused = 3;

constexpr const char* about =
    "usage: sbm status --node URL [--token-file FILE] [--json] [--timeout 10s] [--cacert FILE]\n"
    "\n"
    "Asks a node for GET /v1/status and prints its readiness, each dependency with its circuit\n"
    "breaker (state, counts, time left open), and every other section the node reports (queues,\n"
    "versions, ...). The token needs ops.read: an admin's, or a service granted it\n"
    "(auth.services = monitor=ops.read). https:// URLs are checked against the system's CAs or\n"
    "--cacert.\n"
    "\n"
    "exit codes: 0 the node is ready; 1 not ready, unreachable or not answering its status;\n"
    "            2 bad usage; 3 the token was refused (401 or 403)\n";

std::string problem_detail(const std::string& body) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_object()) {
    if (auto d = doc.find("detail"); d != doc.end() && d->is_string())
      return d->get<std::string>();
    if (auto t = doc.find("title"); t != doc.end() && t->is_string())
      return t->get<std::string>();
  }
  return body.substr(0, 200);
}

}  // namespace

int status_command(int argc, char** argv) {
  if (answered_help("status", argc, argv, about))
    return exit_ready;
  return node_status("status", argc, argv, render_status);
}

int node_status(const std::string& command, int argc, char** argv,
                const std::function<std::string(const status_document&)>& render) {
  const auto loaded = command_settings(command, argc, argv);
  if (!loaded)
    return exit_usage;
  const auto& cfg = *loaded;
  const auto& node = cfg.text("node");
  const auto me = "sbm " + command + ": ";
  auto url = parse_url(node);
  if (auto* err = std::get_if<std::string>(&url)) {
    std::cerr << me << "--node '" << node << "': " << *err << "\n";
    return exit_usage;
  }
  const auto& token = cfg.secret("token");
  if (token.find_first_of("\r\n\t ") != std::string::npos) {
    std::cerr << me << "the token holds whitespace: it is not a JWT\n";
    return exit_usage;
  }
  http_get_options options;
  options.timeout = cfg.duration("timeout");
  options.ca_file = cfg.text("cacert");
  options.headers = {{"Authorization", "Bearer " + token}};
  auto got = http_get(std::get<http_url>(url), "/v1/status", options);
  if (auto* err = std::get_if<std::string>(&got)) {
    std::cerr << me << node << ": " << *err << "\n";
    return exit_not_ready;
  }
  const auto& answer = std::get<http_answer>(got);
  if (answer.status == 401 || answer.status == 403) {
    std::cerr << me << "refused (" << answer.status << "): " << problem_detail(answer.body) << "\n";
    return exit_refused;
  }
  if (answer.status != 200) {
    std::cerr << me << node << " answered " << answer.status << ": " << problem_detail(answer.body)
              << "\n";
    return exit_not_ready;
  }
  auto doc = status_document::parse(answer.body, nullptr, false);
  const auto ready = node_ready(doc);
  if (doc.is_discarded() || !ready) {
    std::cerr << me << node << " did not answer a status document (no node.ready)\n";
    return exit_not_ready;
  }
  if (cfg.boolean("json")) {
    std::cout << answer.body;
    if (answer.body.empty() || answer.body.back() != '\n')
      std::cout << "\n";
  } else {
    std::cout << render(doc);
  }
  return *ready ? exit_ready : exit_not_ready;
}

}  // namespace sbm::cli
