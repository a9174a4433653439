// SBM's patch of RESTinio 0.6.16 (gateway/restinio-0.6.16-early-headers.patch), driven through
// RESTinio's own parser callbacks exactly as its connection does, read by read. These fail if the
// patch is lost or stops working; the end-to-end tests show the same over real sockets.
#include <gtest/gtest.h>

#include <restinio/all.hpp>

#include <string>
#include <vector>

#ifndef SBM_RESTINIO_EARLY_HEADERS_PATCH
#error "the patched RESTinio headers are not the ones included"
#endif

namespace {

using restinio::sbm_patch::body_action;
using restinio::sbm_patch::headers_verdict;

struct seen_t {
  int calls = 0;
  bool obs_fold = false;
  std::uint64_t content_length = 0;
  std::string header_a;
};
seen_t seen;
headers_verdict next_verdict;
std::size_t released = 0;

headers_verdict record(const http_parser& parser, restinio::http_request_header_t& header, bool obs_fold) {
  ++seen.calls;
  seen.obs_fold = obs_fold;
  seen.content_length = parser.content_length;
  seen.header_a = header.get_field_or("x-a", "");
  return next_verdict;
}

void count_release(std::size_t bytes) {
  released += bytes;
}

// One connection's parser and context, fed read by read as RESTinio's consume_data() does.
struct connection {
  http_parser_settings settings = restinio::impl::create_parser_settings<restinio::default_http_methods_t>();
  http_parser parser;
  restinio::impl::http_parser_ctx_t ctx{restinio::incoming_http_msg_limits_t{}};
  std::vector<std::string> reads;  // kept alive: the parser points into them

  connection() {
    http_parser_init(&parser, HTTP_REQUEST);
    ctx.reset();
    parser.data = &ctx;
  }

  std::size_t feed(std::string data) {
    reads.push_back(std::move(data));
    const auto& read = reads.back();
    ctx.m_sbm_data_end = read.data() + read.size();
    return http_parser_execute(&parser, &settings, read.data(), read.size());
  }
};

struct RestinioPatch : ::testing::Test {
  void SetUp() override {
    seen = {};
    next_verdict = {};
    released = 0;
    restinio::sbm_patch::headers_hook = &record;
    restinio::sbm_patch::release_hook = &count_release;
  }
  void TearDown() override {
    restinio::sbm_patch::headers_hook = nullptr;
    restinio::sbm_patch::release_hook = nullptr;
  }
};

}  // namespace

TEST_F(RestinioPatch, TheHookSeesTheHeadersBeforeTheBody) {
  connection c;
  c.feed("POST /x HTTP/1.1\r\nHost: h\r\nX-A: one\r\nContent-Length: 4\r\n\r\n");
  EXPECT_EQ(seen.calls, 1);
  EXPECT_EQ(seen.content_length, 4u);
  EXPECT_EQ(seen.header_a, "one");
  EXPECT_FALSE(c.ctx.m_message_complete);
  c.feed("body");
  EXPECT_TRUE(c.ctx.m_message_complete);
  EXPECT_EQ(c.ctx.m_body, "body");
}

TEST_F(RestinioPatch, AFoldIsReportedInOneReadOrAcrossReads) {
  {
    connection c;
    c.feed("GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n");
    EXPECT_TRUE(seen.obs_fold);
  }
  for (std::size_t cut : {std::size_t{23}, std::size_t{24}, std::size_t{25}, std::size_t{26}}) {
    seen = {};
    connection c;
    const std::string request = "GET / HTTP/1.1\r\nX-A: one\r\n\ttwo\r\nHost: h\r\n\r\n";
    c.feed(request.substr(0, cut));
    c.feed(request.substr(cut));
    EXPECT_EQ(seen.calls, 1) << cut;
    EXPECT_TRUE(seen.obs_fold) << "cut at " << cut;
  }
}

TEST_F(RestinioPatch, AValueCutByTheEndOfAReadIsNotAFold) {
  const std::string request = "GET / HTTP/1.1\r\nHost: h\r\nX-A: one two\tthree\r\n\r\n";
  const auto value_at = request.find("one");
  for (std::size_t cut = value_at; cut <= value_at + 14; ++cut) {
    seen = {};
    connection c;
    c.feed(request.substr(0, cut));
    c.feed(request.substr(cut));
    EXPECT_EQ(seen.calls, 1) << cut;
    EXPECT_FALSE(seen.obs_fold) << "cut at " << cut;
    EXPECT_EQ(seen.header_a, "one two\tthree") << cut;
  }
}

TEST_F(RestinioPatch, ADiscardedBodyIsReadPastAndNotStored) {
  next_verdict.body = body_action::discard;
  connection c;
  const std::string request = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
  EXPECT_EQ(c.feed(request), request.size());
  EXPECT_TRUE(c.ctx.m_message_complete);
  EXPECT_EQ(c.ctx.m_body, "");
}

TEST_F(RestinioPatch, ASkippedBodyIsNotRead) {
  next_verdict.body = body_action::skip;
  connection c;
  const std::string head = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
  EXPECT_EQ(c.feed(head + "hello"), head.size());  // the message ended with its headers
  EXPECT_TRUE(c.ctx.m_message_complete);
  EXPECT_EQ(c.ctx.m_body, "");
}

TEST_F(RestinioPatch, ContinueIsRequestedWhenTheVerdictSaysSo) {
  next_verdict.send_continue = true;
  connection c;
  c.feed("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_TRUE(c.ctx.m_sbm_send_continue);
}

TEST_F(RestinioPatch, ReservedBytesComeBackWhenARequestDiesUnanswered) {
  next_verdict.reserved = 1000;
  {
    connection c;
    c.feed("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\npartial");
    EXPECT_EQ(released, 0u);
  }  // the connection closed mid-body
  EXPECT_EQ(released, 1000u);
  released = 0;
  connection c;
  c.feed("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\npartial");
  c.ctx.reset();  // as RESTinio does before the next message
  EXPECT_EQ(released, 1000u);
}

TEST_F(RestinioPatch, WithoutAHookRestinioBehavesAsReleased) {
  restinio::sbm_patch::headers_hook = nullptr;
  connection c;
  c.feed("POST /x HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(seen.calls, 0);
  EXPECT_TRUE(c.ctx.m_message_complete);
  EXPECT_EQ(c.ctx.m_body, "ok");
}
