// The raw baseline for the gateway: RESTinio alone, one thread, answering every request with a
// fixed JSON body about the size of a speaker view. `bench/run` puts wrk against it and against a
// node, in the same run.
#include <restinio/all.hpp>

#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 8099);
  std::string body(400, 'x');
  body = R"({"speaker_id":"spk-000001","bucket":"medium_touch","pad":")" + body + "\"}";
  restinio::run(restinio::on_thread_pool(1)
                  .port(port)
                  .address("127.0.0.1")
                  .request_handler([&body](auto req) {
                    return req->create_response()
                      .append_header(restinio::http_field::content_type, "application/json")
                      .set_body(body)
                      .done();
                  }));
}
