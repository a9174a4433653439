// `sbm token issue`: mints a signed JWT from a keyring file, for operators, tests and services.
#include <nlohmann/json.hpp>

#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "gateway/auth/jwt.hpp"

namespace sbm::cli {

namespace {

void usage(std::ostream& out) {
  out << "usage: sbm token issue --keys-file FILE (--sub ID --role qa|qa_lead|admin | --service ID\n"
         "                        [--permission P]...) [--kid KID] [--iss sbm] [--aud sbm-api]\n"
         "                        [--ttl SECONDS]\n"
         "\n"
         "Prints a JWT signed with the key KID (default: the last) of the keyring FILE (the node's\n"
         "auth.keys). --ttl defaults to 3600; the node refuses tokens living past\n"
         "auth.max-token-lifetime (24h by default).\n"
         "\n"
         "exit codes: 0 printed; 2 bad usage, or an unreadable keyring or key\n";
}

}  // namespace

int token_command(int argc, char** argv) {
  if (wants_help(argc, argv)) {
    usage(std::cout);
    return 0;
  }
  if (argc < 1 || std::string{argv[0]} != "issue") {
    usage(std::cerr);
    return 2;
  }
  std::string keys_file, sub, role, service, kid, iss = "sbm", aud = "sbm-api";
  std::vector<std::string> permissions;
  long ttl = 3600;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc)
        return false;
      out = argv[++i];
      return true;
    };
    std::string tmp;
    bool ok = true;
    if (arg == "--keys-file") ok = value(keys_file);
    else if (arg == "--sub") ok = value(sub);
    else if (arg == "--role") ok = value(role);
    else if (arg == "--service") ok = value(service);
    else if (arg == "--kid") ok = value(kid);
    else if (arg == "--iss") ok = value(iss);
    else if (arg == "--aud") ok = value(aud);
    else if (arg == "--permission") {
      ok = value(tmp);
      permissions.push_back(tmp);
    } else if (arg == "--ttl") {
      ok = value(tmp);
      try {
        ttl = std::stol(tmp);
      } catch (...) {
        ok = false;
      }
      ok = ok && ttl > 0;
    } else {
      std::cerr << "sbm token: unknown option '" << arg << "'\n";
      usage(std::cerr);
      return 2;
    }
    if (!ok) {
      std::cerr << "sbm token: option '" << arg << "' needs a valid value\n";
      return 2;
    }
  }
  if (keys_file.empty() || (service.empty() && (sub.empty() || role.empty()))) {
    usage(std::cerr);
    return 2;
  }
  std::ifstream in{keys_file};
  if (!in) {
    std::cerr << "sbm token: cannot read keys file " << keys_file << "\n";
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  auto keys = auth::parse_keyring(text.str(), true);
  if (auto* err = std::get_if<std::string>(&keys)) {
    std::cerr << "sbm token: " << *err << "\n";
    return 2;
  }
  auto& list = std::get<std::vector<auth::jwt_key>>(keys);
  const auth::jwt_key* key = nullptr;
  for (const auto& k : list)
    if (kid.empty() || k.kid == kid)
      key = &k;
  if (!key) {
    std::cerr << "sbm token: no key " << (kid.empty() ? "" : "with kid '" + kid + "' ")
              << "in " << keys_file << "\n";
    return 2;
  }
  auto now = static_cast<long>(std::time(nullptr));
  nlohmann::json claims{{"iss", iss}, {"aud", aud}, {"iat", now}, {"nbf", now}, {"exp", now + ttl}};
  if (service.empty()) {
    claims["sub"] = sub;
    claims["role"] = role;
  } else {
    claims["sub"] = sub.empty() ? service : sub;
    claims["service_id"] = service;
    claims["permissions"] = permissions;
  }
  std::cout << auth::jwt_sign(*key, claims.dump()) << "\n";
  return 0;
}

}  // namespace sbm::cli
