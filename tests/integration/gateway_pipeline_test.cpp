// The gateway pipeline end to end over real HTTP: the HTTP server, the front door and the lanes,
// with the families behind them replaced by one actor that takes requests and never answers (the
// one fault that cannot be produced with the real families on demand: work that is held). Shows
// that a held request is answered at its deadline, that a gateway that dies answers what its lanes
// held at once and that requests meanwhile get 503 with Retry-After, that every answer carries
// its request id, and that a token's signature is checked once. A metrics scrape (and the status's
// queues) reports a component that does not answer as missing instead of waiting for it.
#include <caf/all.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <future>
#include <string>

#include "gateway/auth/jwt.hpp"
#include "gateway/front_door.hpp"
#include "gateway/gateway.hpp"
#include "gateway/http_server.hpp"
#include "gateway/json_io.hpp"
#include "gateway/request_id.hpp"
#include "gateway/route_table.hpp"
#include "messages/announce.hpp"
#include "tests/support/actor_test.hpp"

using namespace sbm;
using namespace std::chrono_literals;

namespace {

const auth::jwt_key key{"k", "HS256", std::string(32, 's')};

std::string token_for(const std::string& subject) {
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  nlohmann::json claims{{"sub", subject}, {"role", "admin"}, {"iat", now}, {"exp", now + 600}};
  return auth::jwt_sign(key, claims.dump());
}

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

struct reply {
  int status = 0;
  std::string head, body;
  std::string header(const std::string& name) const {
    auto at = head.find("\r\n" + name + ": ");
    if (at == std::string::npos)
      return {};
    at += name.size() + 4;
    return head.substr(at, head.find("\r\n", at) - at);
  }
};

// One request on its own connection, read to the end of its Content-Length.
reply send_http(std::uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return {};
  }
  ::send(fd, request.data(), request.size(), 0);
  std::string in;
  char buffer[4096];
  reply out;
  for (;;) {
    auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0)
      break;
    in.append(buffer, static_cast<std::size_t>(n));
    auto end = in.find("\r\n\r\n");
    if (end == std::string::npos)
      continue;
    out.head = in.substr(0, end + 2);
    auto length = std::stoul("0" + out.header("Content-Length"));
    if (in.size() >= end + 4 + length) {
      out.body = in.substr(end + 4, length);
      break;
    }
  }
  ::close(fd);
  if (out.head.size() > 12)
    out.status = std::stoi(out.head.substr(9, 3));
  return out;
}

std::string get(const std::string& path, const std::string& token, const std::string& extra = {}) {
  return "GET " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\n" + extra +
         "Connection: close\r\n\r\n";
}

std::string post(const std::string& path, const std::string& token, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

// Takes every request and keeps its promise unanswered.
caf::behavior holder(caf::event_based_actor* self) {
  auto held = std::make_shared<std::vector<caf::response_promise>>();
  return {
    [self, held](get_atom, const std::string&) { held->push_back(self->make_response_promise()); },
    [self, held](register_atom, const speaker_registration&) {
      held->push_back(self->make_response_promise());
    },
    [self, held](metrics_atom) { held->push_back(self->make_response_promise()); },
  };
}

// Stand-ins for the speakers family, to show where a lane sends a read (the real shard and
// speaker are tested against PostgreSQL in speaker_actor_test): a speaker answering every read,
// and a shard that delegates each read to its current speaker as the real one does for a live
// speaker. Both count what reaches them.
struct read_counts {
  std::atomic<int> via_shard{0};
  std::atomic<int> at_speaker{0};
};
using use_atom = caf::atom_constant<caf::atom("use")>;

speaker_view standin_view() {
  speaker_view v;
  v.speaker_id = "s1";
  v.client_id = "c";
  v.bucket = "high_touch";
  return v;
}

// Like a real activation, it answers a stamped read with its view only when the reader's stamp is
// not its own (one stamp per stand-in: its state never changes).
caf::behavior standin_speaker(caf::event_based_actor* self, std::shared_ptr<read_counts> counts) {
  const sbm::speaker_stamp own{self->id(), 1, 1};
  return {
    [counts](get_atom) {
      ++counts->at_speaker;
      return standin_view();
    },
    [counts, own](get_atom, const sbm::speaker_stamp& held) {
      ++counts->at_speaker;
      sbm::speaker_read r;
      r.stamp = own;
      r.changed = held != own;
      if (r.changed)
        r.view = standin_view();
      return r;
    },
  };
}

caf::behavior delegating_shard(caf::event_based_actor* self, std::shared_ptr<read_counts> counts,
                               caf::actor speaker) {
  auto current = std::make_shared<caf::actor>(std::move(speaker));
  return {
    [self, counts, current](get_atom, const std::string&) {
      ++counts->via_shard;
      return self->delegate(*current, get_atom::value);
    },
    [current](use_atom, caf::actor next) {
      *current = std::move(next);
      return true;
    },
  };
}

// A shard whose speaker is between owners for the first `refusals` asks of each kind, as during a
// move: refused with errc::moving, nothing done.
caf::behavior moving_shard(caf::event_based_actor*, std::shared_ptr<std::atomic<int>> asks, int refusals) {
  auto views = std::make_shared<int>(0), histories = std::make_shared<int>(0);
  return {
    [=](get_atom, const std::string&) -> caf::result<speaker_view> {
      ++*asks;
      if ((*views)++ < refusals)
        return make_error(errc::moving, "speaker s1 is moving");
      return standin_view();
    },
    [=](history_atom, const std::string& id) -> caf::result<speaker_history> {
      ++*asks;
      if ((*histories)++ < refusals)
        return make_error(errc::moving, "speaker s1 is moving");
      speaker_history h;
      h.speaker_id = id;
      return h;
    },
  };
}

struct node_config : caf::actor_system_config {
  node_config() { announce_types(*this); }
};

class GatewayPipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    gateway::front_door_settings front;
    front.verifier = std::make_shared<auth::jwt_verifier>(std::vector<auth::jwt_key>{key}, auth::jwt_rules{"", "", 30s, 24h});
    pipeline = std::make_shared<gateway::gateway_pipeline>(front);
    gateway::http_server_settings http;
    http.port = port = free_port();
    http.answer_timeout = 1500ms;
    http.unanswered = gateway::unanswered;
    http.counters = counters;
    http.token_ok = [p = pipeline](std::string_view t) { return p->token_genuine(t); };
    // As the node wires it: requests held for their lanes, sent once per pass of the HTTP loop.
    http.flush = [p = pipeline] { p->flush(); };
    server = std::make_shared<gateway::http_server>(
      http, [p = pipeline](http_request&& r) { p->hold(std::move(r)); });
    pipeline->connect(server);
    server->start();
    held = sys.spawn(holder);
    start_gateway();
  }

  void start_gateway() { start_gateway(held); }

  void start_gateway(const caf::actor& speakers) {
    gateway::gateway_settings g;
    g.lanes = 2;
    g.speakers = caf::actor_cast<speaker_shard_actor>(speakers);
    g.request_timeout = 1500ms;
    g.http_counters = counters;
    g.metrics_timeout = 200ms;
    owner = gateway::spawn_gateway(sys, g, pipeline);
    // The owner installs its lanes when it first runs, after spawn returns: until then every
    // request is answered gateway-restarting. /readyz is answered by a lane, at once here.
    ASSERT_TRUE(test::eventually(
      [&] {
        auto r = send_http(port, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        return r.status != 0 && r.body.find("gateway-restarting") == std::string::npos;
      },
      5s));
  }

  // The fixture's gateway goes first, wholly: an owner still starting when it is killed would
  // install its lanes over the new one's.
  void restart_gateway(const caf::actor& speakers) {
    caf::scoped_actor self{sys};
    self->monitor(owner);
    caf::anon_send_exit(owner, caf::exit_reason::kill);
    self->receive([](const caf::down_msg&) {});
    // CAF runs an ending actor's attachables newest first, so this down can come before the
    // owner takes its lanes out, and a lane not yet ended would answer start_gateway's probe.
    ASSERT_TRUE(test::eventually(
      [&] {
        auto r = send_http(port, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        return r.body.find("gateway-restarting") != std::string::npos;
      },
      5s));
    start_gateway(speakers);
  }

  void TearDown() override {
    server->stop();
    caf::anon_send_exit(owner, caf::exit_reason::kill);
    caf::anon_send_exit(held, caf::exit_reason::kill);
  }

  node_config cfg;
  caf::actor_system sys{cfg};
  std::shared_ptr<metrics::request_counters> counters =
    std::make_shared<metrics::request_counters>(static_cast<std::size_t>(gateway::route::count_));
  std::shared_ptr<gateway::gateway_pipeline> pipeline;
  std::shared_ptr<gateway::http_server> server;
  std::uint16_t port = 0;
  caf::actor held, owner;
};

}  // namespace

TEST_F(GatewayPipeline, AHeldReadIsAnsweredAtItsDeadlineAndNothingStaysPending) {
  auto r = send_http(port, get("/v1/speakers/s1", token_for("alice")));
  EXPECT_EQ(r.status, 503) << r.head << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["type"], "urn:sbm:problem:timeout");
  EXPECT_FALSE(r.header("Retry-After").empty());
  EXPECT_TRUE(test::eventually([&] { return server->in_flight() == 0; }, 5s));
}

TEST_F(GatewayPipeline, AHeldWriteIsAnsweredOutcomeUnknownAtItsDeadline) {
  auto r = send_http(port, post("/v1/speakers", token_for("alice"), R"({"speaker_id":"s1","client_id":"c"})"));
  EXPECT_EQ(r.status, 503) << r.head << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["type"], "urn:sbm:problem:outcome-unknown");
}

TEST_F(GatewayPipeline, ADeadGatewayAnswersWhatItHeldAtOnceAndARestartedOneServes) {
  auto pending = std::async(std::launch::async,
                            [&] { return send_http(port, get("/v1/speakers/s1", token_for("alice"))); });
  ASSERT_TRUE(test::eventually([&] { return server->in_flight() == 1; }, 5s));
  caf::anon_send_exit(owner, caf::exit_reason::kill);
  // Answered by the gateway's end, well before the 1.5 s deadline would have answered it.
  ASSERT_EQ(pending.wait_for(1s), std::future_status::ready) << "the held request waited for its deadline";
  auto r = pending.get();
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["type"], "urn:sbm:problem:gateway-restarting");
  EXPECT_EQ(r.header("Retry-After"), "1");

  // No lanes: answered at once, nothing handed to a dead actor.
  auto meanwhile = send_http(port, get("/v1/speakers/s2", token_for("alice")));
  EXPECT_EQ(meanwhile.status, 503);
  EXPECT_EQ(meanwhile.header("Retry-After"), "1");
  EXPECT_EQ(server->in_flight(), 0u);

  start_gateway();
  auto unknown = send_http(port, get("/v1/nothing-here", token_for("alice")));
  EXPECT_EQ(unknown.status, 404);
  auto healthy = send_http(port, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(healthy.status, 0);
  EXPECT_NE(nlohmann::json::parse(healthy.body)["type"], "urn:sbm:problem:gateway-restarting");
}

TEST_F(GatewayPipeline, EveryAnswerCarriesItsRequestId) {
  auto r = send_http(port, get("/v1/nothing-here", token_for("alice"), "X-Request-Id: trace-42\r\n"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.header("X-Request-Id"), "trace-42");
  EXPECT_EQ(nlohmann::json::parse(r.body)["request_id"], "trace-42");
  auto made = send_http(port, get("/v1/nothing-here", token_for("alice"), "X-Request-Id: bad id!\r\n"));
  EXPECT_TRUE(gateway::sane_request_id(made.header("X-Request-Id"))) << made.head;
  EXPECT_NE(made.header("X-Request-Id"), "bad id!");
  EXPECT_EQ(nlohmann::json::parse(made.body)["request_id"], made.header("X-Request-Id"));
  auto unauthenticated = send_http(port, "GET /v1/speakers/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(unauthenticated.status, 401);
  EXPECT_EQ(nlohmann::json::parse(unauthenticated.body)["request_id"], unauthenticated.header("X-Request-Id"));
}

TEST_F(GatewayPipeline, ALaneReadsASpeakerWhereItLastAnsweredAndThroughTheShardOnceItIsGone) {
  auto counts = std::make_shared<read_counts>();
  auto speaker = sys.spawn(standin_speaker, counts);
  auto shard = sys.spawn(delegating_shard, counts, speaker);
  restart_gateway(shard);
  caf::scoped_actor self{sys};
  auto read = [&] { return send_http(port, get("/v1/speakers/s1", token_for("alice"))).status; };

  for (int i = 0; i < 8; ++i)
    ASSERT_EQ(read(), 200);
  // Each of the two lanes asked the shard at most once; every read was answered by the speaker.
  EXPECT_LE(counts->via_shard, 2);
  EXPECT_EQ(counts->at_speaker, 8);

  // That activation ends (passivated) and the shard has a new one: a lane's remembered location is
  // stale, its read bounces, and it is answered through the shard, never refused.
  self->monitor(speaker);
  caf::anon_send_exit(speaker, caf::exit_reason::kill);
  self->receive([](const caf::down_msg&) {});
  auto next = sys.spawn(standin_speaker, counts);
  self->request(shard, caf::infinite, use_atom::value, next).receive([](bool) {}, [](caf::error&) {});
  const int before = counts->via_shard;
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(read(), 200);
  EXPECT_GE(counts->via_shard, before + 1);
  EXPECT_LE(counts->via_shard, before + 2);
  EXPECT_EQ(counts->at_speaker, 16);
  caf::anon_send_exit(shard, caf::exit_reason::kill);
  caf::anon_send_exit(next, caf::exit_reason::kill);
}

// The history overview reads its speaker and its bucket changes from the shard like every speaker
// read: a refusal as `moving` is resent within the deadline, not shown as a missing source.
TEST_F(GatewayPipeline, TheHistoryOverviewResendsItsSpeakerReadsThroughAMove) {
  auto asks = std::make_shared<std::atomic<int>>(0);
  auto shard = sys.spawn(moving_shard, asks, 2);
  restart_gateway(shard);
  auto r = send_http(port, get("/v1/speakers/s1/history", token_for("alice")));
  ASSERT_EQ(r.status, 200) << r.head << r.body;
  auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["sources"]["speaker"]["status"], "ok") << r.body;
  EXPECT_EQ(body["sources"]["bucket_changes"]["status"], "ok") << r.body;
  EXPECT_EQ(body["speaker"]["bucket"], "high_touch") << r.body;
  EXPECT_EQ(asks->load(), 6) << "each source refused twice, then answered";
  caf::anon_send_exit(shard, caf::exit_reason::kill);
}

TEST_F(GatewayPipeline, AScrapeReportsAComponentThatDoesNotAnswerAsMissing) {
  // Answered by the deadline sweeper, and counted under the route its lane held it for.
  auto timed_out = send_http(port, get("/v1/speakers/s1", token_for("alice")));
  ASSERT_EQ(timed_out.status, 503) << timed_out.body;
  // The speakers shard (the holder) never answers: the scrape answers without it, long before the
  // request's own deadline would have answered 503.
  auto r = send_http(port, get("/metrics", token_for("alice")));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("\nsbm_scrape_component_up{component=\"speakers\"} 0\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\nsbm_http_requests_total{route=\"/v1/speakers/{id}\",method=\"GET\",status=\"503\"} 1\n"),
            std::string::npos)
    << r.body;
  EXPECT_EQ(r.body.find("sbm_speakers_active"), std::string::npos) << "a missing component's samples";

  auto status = send_http(port, get("/v1/status", token_for("alice")));
  ASSERT_EQ(status.status, 200) << status.body;
  auto body = nlohmann::json::parse(status.body);
  EXPECT_EQ(body["queues_missing"], nlohmann::json::array({"speakers"})) << status.body;
  EXPECT_TRUE(body["queues"].is_array());
}

namespace {

// Stands in for a lane: counts the requests handed to it and answers none (the deadline does).
caf::behavior counting_lane(caf::event_based_actor*, std::shared_ptr<std::atomic<int>> taken) {
  return {[taken](http_atom, std::vector<http_request>& batch) {
    *taken += static_cast<int>(batch.size());
  }};
}

// Stands in for a lane: remembers the size of every batch it is sent.
caf::behavior batch_recording_lane(caf::event_based_actor*) {
  auto sizes = std::make_shared<std::vector<std::size_t>>();
  return {
    [sizes](http_atom, std::vector<http_request>& batch) { sizes->push_back(batch.size()); },
    [sizes](get_atom) { return *sizes; },
  };
}

}  // namespace

TEST_F(GatewayPipeline, AnOwnerThatFirstRunsAfterANewerOneDoesNotReplaceItsLanes) {
  auto older_taken = std::make_shared<std::atomic<int>>(0);
  auto newer_taken = std::make_shared<std::atomic<int>>(0);
  auto older_lane = sys.spawn(counting_lane, older_taken);
  auto newer_lane = sys.spawn(counting_lane, newer_taken);
  // Two incarnations spawned in this order, whose owners run in the other.
  const auto older = pipeline->next_generation();
  const auto newer = pipeline->next_generation();
  ASSERT_LT(older, newer);
  EXPECT_TRUE(pipeline->install(newer, {newer_lane}));
  EXPECT_FALSE(pipeline->install(older, {older_lane}));

  auto r = send_http(port, get("/v1/speakers/s1", token_for("alice")));
  EXPECT_EQ(r.status, 503) << r.body;  // held by the stand-in until its deadline
  EXPECT_EQ(*newer_taken, 1);
  EXPECT_EQ(*older_taken, 0);
  // The refused generation's end takes nothing out; the installed one's does.
  pipeline->uninstall(older);
  auto still = send_http(port, get("/v1/speakers/s1", token_for("alice")));
  EXPECT_EQ(*newer_taken, 2) << still.body;
  pipeline->uninstall(newer);
  auto none = send_http(port, get("/v1/speakers/s1", token_for("alice")));
  EXPECT_EQ(nlohmann::json::parse(none.body)["type"], "urn:sbm:problem:gateway-restarting");
  caf::anon_send_exit(older_lane, caf::exit_reason::kill);
  caf::anon_send_exit(newer_lane, caf::exit_reason::kill);
}

// A restarted gateway's new owner may install its lanes before the old owner's end runs: what
// the old lanes held is answered when that end runs all the same, not left to its deadline.
TEST_F(GatewayPipeline, AnEndedIncarnationsHeldRequestsAreAnsweredEvenAfterItsSuccessorInstalled) {
  auto older_taken = std::make_shared<std::atomic<int>>(0);
  auto newer_taken = std::make_shared<std::atomic<int>>(0);
  auto older_lane = sys.spawn(counting_lane, older_taken);
  auto newer_lane = sys.spawn(counting_lane, newer_taken);
  const auto older = pipeline->next_generation();
  ASSERT_TRUE(pipeline->install(older, {older_lane}));
  auto pending = std::async(std::launch::async,
                            [&] { return send_http(port, get("/v1/speakers/s1", token_for("alice"))); });
  ASSERT_TRUE(test::eventually([&] { return *older_taken == 1; }, 5s));
  ASSERT_TRUE(pipeline->install(pipeline->next_generation(), {newer_lane}));
  pipeline->uninstall(older);
  // The deadline's answer would be a timeout: this one comes from the older incarnation's end.
  auto r = pending.get();
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["type"], "urn:sbm:problem:gateway-restarting") << r.body;
  EXPECT_EQ(*newer_taken, 0);
  caf::anon_send_exit(older_lane, caf::exit_reason::kill);
  caf::anon_send_exit(newer_lane, caf::exit_reason::kill);
}

namespace {

// A responder that only keeps the books: who holds each request, and which were answered.
class owner_book final : public gateway::responder {
 public:
  void respond(std::uint64_t id, http_response) override { answer(id); }
  void respond_routed(std::uint64_t id, int, http_response) override { answer(id); }
  void hand_over(std::uint64_t id, std::uint64_t owner, int) override {
    std::lock_guard<std::mutex> guard{mutex_};
    owners_[id] = owner;
  }
  void fail_owned(std::uint64_t owner) override {
    std::lock_guard<std::mutex> guard{mutex_};
    for (const auto& [id, held_by] : owners_)
      if (held_by == owner) answered_.insert(id);
  }
  std::uint64_t owner_of(std::uint64_t id) {
    std::lock_guard<std::mutex> guard{mutex_};
    return owners_.count(id) ? owners_.at(id) : 0;
  }
  bool answered(std::uint64_t id) {
    std::lock_guard<std::mutex> guard{mutex_};
    return answered_.count(id) > 0;
  }

 private:
  void answer(std::uint64_t id) {
    std::lock_guard<std::mutex> guard{mutex_};
    answered_.insert(id);
  }
  std::mutex mutex_;
  std::map<std::uint64_t, std::uint64_t> owners_;
  std::set<std::uint64_t> answered_;
};

}  // namespace

// A request held between two flushes goes to whatever lanes are installed at the flush: when a
// new incarnation installs meanwhile it is that one's, and the old one's end leaves it alone.
TEST_F(GatewayPipeline, ARequestHeldAcrossAnInstallBelongsToTheNewIncarnation) {
  auto book = std::make_shared<owner_book>();
  gateway::front_door_settings front;
  front.verifier = std::make_shared<auth::jwt_verifier>(std::vector<auth::jwt_key>{key}, auth::jwt_rules{"", "", 30s, 24h});
  gateway::gateway_pipeline own{front};
  own.connect(book);
  auto older_lane = sys.spawn(batch_recording_lane);
  auto newer_lane = sys.spawn(batch_recording_lane);
  const auto older = own.next_generation();
  ASSERT_TRUE(own.install(older, {older_lane}));
  http_request r;
  r.id = 7;
  r.request_id = "held-across";
  r.method = "GET";
  r.path = "/v1/speakers/s1";
  r.headers.emplace_back("authorization", "Bearer " + token_for("alice"));
  own.hold(std::move(r));
  ASSERT_EQ(book->owner_of(7), older);
  const auto newer = own.next_generation();
  ASSERT_TRUE(own.install(newer, {newer_lane}));
  EXPECT_EQ(book->owner_of(7), newer);
  own.uninstall(older);
  EXPECT_FALSE(book->answered(7)) << "answered by the older incarnation's end while held for the newer one";
  own.flush();
  caf::scoped_actor self{sys};
  std::vector<std::size_t> sizes;
  self->request(newer_lane, caf::infinite, get_atom::value)
    .receive([&](std::vector<std::size_t>& s) { sizes = std::move(s); }, [](caf::error&) {});
  EXPECT_EQ(sizes, std::vector<std::size_t>{1});
  own.uninstall(newer);
  EXPECT_TRUE(book->answered(7));
  caf::anon_send_exit(older_lane, caf::exit_reason::kill);
  caf::anon_send_exit(newer_lane, caf::exit_reason::kill);
}

TEST_F(GatewayPipeline, ALaneIsSentAtMostMaxBatchRequestsAtOnceAndTheRestAtTheFlush) {
  auto lane = sys.spawn(batch_recording_lane);
  const auto generation = pipeline->next_generation();
  ASSERT_TRUE(pipeline->install(generation, {lane}));
  const auto token = token_for("alice");
  const std::size_t count = 2 * gateway::gateway_pipeline::max_batch + 10;
  for (std::size_t i = 0; i < count; ++i) {
    http_request r;
    r.id = 1000 + i;
    r.request_id = "held-" + std::to_string(i);
    r.method = "GET";
    r.path = "/v1/speakers/s1";
    r.headers.emplace_back("authorization", "Bearer " + token);
    pipeline->hold(std::move(r));
  }
  caf::scoped_actor self{sys};
  auto sizes = [&] {
    std::vector<std::size_t> out;
    self->request(lane, caf::infinite, get_atom::value)
      .receive([&](std::vector<std::size_t>& s) { out = std::move(s); }, [](caf::error&) {});
    return out;
  };
  // Two full batches went at once; the ten left wait for the flush.
  using sizes_t = std::vector<std::size_t>;
  const sizes_t two_full{gateway::gateway_pipeline::max_batch, gateway::gateway_pipeline::max_batch};
  EXPECT_EQ(sizes(), two_full);
  pipeline->flush();
  const sizes_t all{gateway::gateway_pipeline::max_batch, gateway::gateway_pipeline::max_batch, 10};
  EXPECT_EQ(sizes(), all);
  pipeline->uninstall(generation);
  caf::anon_send_exit(lane, caf::exit_reason::kill);
}
