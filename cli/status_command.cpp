// `sbm status`: what a node says about itself (GET /v1/status), as a table or as the raw document.
#include <iostream>
#include <variant>

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

namespace {

// Reads the options, asks the node and sorts out what every answer shares (unreachable,
// refused); the answer otherwise, or the exit code when there is none to print.
std::variant<http_answer, int> ask_node(const std::string& command, int argc, char** argv,
                                        const std::string& method, const std::string& path,
                                        bool& json_out) {
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
  options.method = method;
  options.timeout = cfg.duration("timeout");
  options.ca_file = cfg.text("cacert");
  options.headers = {{"Authorization", "Bearer " + token}};
  auto got = http_get(std::get<http_url>(url), path, options);
  if (auto* err = std::get_if<std::string>(&got)) {
    std::cerr << me << node << ": " << *err << "\n";
    return exit_not_ready;
  }
  auto& answer = std::get<http_answer>(got);
  if (answer.status == 401 || answer.status == 403) {
    std::cerr << me << "refused (" << answer.status << "): " << problem_detail(answer.body) << "\n";
    return exit_refused;
  }
  if (answer.status != 200) {
    std::cerr << me << node << " answered " << answer.status << ": " << problem_detail(answer.body)
              << "\n";
    return exit_not_ready;
  }
  json_out = cfg.boolean("json");
  return std::move(answer);
}

void print(const http_answer& answer, bool json_out, const std::string& rendered) {
  if (!json_out) {
    std::cout << rendered;
    return;
  }
  std::cout << answer.body;
  if (answer.body.empty() || answer.body.back() != '\n')
    std::cout << "\n";
}

}  // namespace

int node_status(const std::string& command, int argc, char** argv,
                const std::function<std::string(const status_document&)>& render) {
  bool json_out = false;
  auto asked = ask_node(command, argc, argv, "GET", "/v1/status", json_out);
  if (auto* code = std::get_if<int>(&asked))
    return *code;
  const auto& answer = std::get<http_answer>(asked);
  auto doc = status_document::parse(answer.body, nullptr, false);
  const auto ready = node_ready(doc);
  if (doc.is_discarded() || !ready) {
    std::cerr << "sbm " << command << ": the node did not answer a status document (no node.ready)\n";
    return exit_not_ready;
  }
  print(answer, json_out, json_out ? std::string{} : render(doc));
  return *ready ? exit_ready : exit_not_ready;
}

int node_action(const std::string& command, int argc, char** argv, const std::string& path,
                const std::function<std::string(const status_document&)>& render) {
  bool json_out = false;
  auto asked = ask_node(command, argc, argv, "POST", path, json_out);
  if (auto* code = std::get_if<int>(&asked))
    return *code;
  const auto& answer = std::get<http_answer>(asked);
  auto doc = status_document::parse(answer.body, nullptr, false);
  if (doc.is_discarded()) {
    std::cerr << "sbm " << command << ": the node's answer is not JSON\n";
    return exit_not_ready;
  }
  print(answer, json_out, json_out ? std::string{} : render(doc));
  return exit_ready;
}

}  // namespace sbm::cli
