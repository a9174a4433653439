// The raw baseline for the gateway: RESTinio alone, one thread (as the node's gateway.threads
// default), answering each route with the very body SBM answers it with, so the two servers
// write the same bytes of JSON. `bench/run` captures SBM's bodies first and puts wrk against both
// servers in the same run.
//   bench_raw_restinio PORT [METHOD:PATH=FILE ...]
// A request that matches no METHOD:PATH gets a fixed JSON body about the size of a speaker view.
#include <restinio/all.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

int main(int argc, char** argv) {
  auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 8099);
  std::map<std::string, std::string> bodies;  // "METHOD PATH" -> body
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    auto colon = arg.find(':');
    auto equals = arg.find('=');
    if (colon == std::string::npos || equals == std::string::npos || equals < colon) {
      std::cerr << "usage: bench_raw_restinio PORT [METHOD:PATH=FILE ...]\n";
      return 2;
    }
    std::ifstream in(arg.substr(equals + 1), std::ios::binary);
    if (!in) {
      std::cerr << "bench_raw_restinio: cannot read " << arg.substr(equals + 1) << "\n";
      return 2;
    }
    std::ostringstream text;
    text << in.rdbuf();
    bodies[arg.substr(0, colon) + " " + arg.substr(colon + 1, equals - colon - 1)] = text.str();
  }
  const std::string fallback =
    R"({"speaker_id":"spk-000001","bucket":"medium_touch","pad":")" + std::string(400, 'x') + "\"}";
  restinio::run(restinio::on_thread_pool(1)
                  .port(port)
                  .address("127.0.0.1")
                  .request_handler([&](auto req) {
                    auto key = std::string{req->header().method().c_str()} + " " +
                               std::string{req->header().path()};
                    auto found = bodies.find(key);
                    return req->create_response()
                      .append_header(restinio::http_field::content_type, "application/json")
                      .set_body(found == bodies.end() ? fallback : found->second)
                      .done();
                  }));
}
