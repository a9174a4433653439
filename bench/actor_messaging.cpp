// Issue 18, item 5: requests per second of get-speaker to active speaker actors, pipelined
// (IN_FLIGHT requests outstanding) and one at a time, beside a raw CAF request/response pair in the
// same run: a bare stateful actor holding the same speaker_view and answering the same
// (get_atom, std::string) message with it. Two SBM paths: what a caller does by default (the first
// read of a speaker goes through the shard, which delegates to the live activation; later reads go
// straight to the activation that answered, messages/speaker_locations.hpp) and every read through
// the shard (a caller that remembers nothing: the shard's id lookup and delegate on every read).
//
// Usage: bench_actor_messaging [requests per row, default 200000] [runs, default 3]
// Each row is the median of the runs; within a run the paths run back to back so load drift hits
// them alike. Every path runs in the same actor system, under the same scheduler settings.
// Needs servers: SBMTEST_SERVERS_DIR (scripts/servers start DIR), as scripts/bench arranges.
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "actors/events/events.hpp"
#include "actors/speakers/speakers.hpp"
#include "bench/support.hpp"
#include "messages/speaker_locations.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using run_atom = caf::atom_constant<caf::atom("run")>;
// Round robin over this many active speakers: the shard bounds what waits per speaker (64), so
// 100 requests in flight to a single speaker would be refused, not queued.
constexpr int speakers = 100;
constexpr int in_flight = 100;

using ids_ptr = std::shared_ptr<const std::vector<std::string>>;

// The raw side: bare actors answering the same message with a copy of the same view.
struct raw_state {
  sbm::speaker_view view;
};
using raw_server_actor = caf::typed_actor<caf::replies_to<sbm::get_atom, std::string>::with<sbm::speaker_view>>;
raw_server_actor::behavior_type raw_server(raw_server_actor::stateful_pointer<raw_state> self,
                                           sbm::speaker_view view) {
  self->state.view = std::move(view);
  return {[self](sbm::get_atom, const std::string&) { return self->state.view; }};
}

// How the driver sends one get and learns its outcome: to the raw actor, to the shard every time,
// or as a caller that remembers where each speaker's activation answered from (the default for
// callers: messages/speaker_locations.hpp).
struct to_raw {
  std::shared_ptr<const std::vector<raw_server_actor>> targets;
  template <class Self, class Done>
  void operator()(Self* self, std::size_t i, const std::string& id, Done done) const {
    self->request((*targets)[i % targets->size()], caf::infinite, sbm::get_atom::value, id)
      .then([done](sbm::speaker_view&) mutable { done(true); }, [done](caf::error&) mutable { done(false); });
  }
};

struct to_shard {
  sbm::speaker_shard_actor shard;
  template <class Self, class Done>
  void operator()(Self* self, std::size_t, const std::string& id, Done done) const {
    self->request(shard, caf::infinite, sbm::get_atom::value, id)
      .then([done](sbm::speaker_view&) mutable { done(true); }, [done](caf::error&) mutable { done(false); });
  }
};

struct remembering {
  sbm::speaker_shard_actor shard;
  template <class Self, class Done>
  void operator()(Self* self, std::size_t, const std::string& id, Done done) const {
    sbm::read_speaker(self, self->state.where, shard, id, caf::infinite,
                      [done](sbm::speaker_view&) mutable { done(true); },
                      [done](caf::error&) mutable { done(false); });
  }
};

// Keeps `window` requests outstanding until `total` are answered; replies with the failures. The
// path and the ids live here, so a request's continuation carries only `self` on every path.
template <class Send>
struct driver_state {
  Send send;
  ids_ptr ids;
  int sent = 0;
  int answered = 0;
  int failed = 0;
  int total = 0;
  caf::response_promise finished;
  sbm::speaker_locations where{speakers};  // used by `remembering` only
};
template <class Send>
using driver_pointer = caf::stateful_actor<driver_state<Send>>*;

template <class Send>
void send_next(driver_pointer<Send> self) {
  auto& st = self->state;
  const auto i = static_cast<std::size_t>(st.sent++) % st.ids->size();
  st.send(self, i, (*st.ids)[i], [self](bool ok) {
    auto& s = self->state;
    ++s.answered;
    if (!ok) ++s.failed;
    if (s.sent < s.total)
      send_next(self);
    else if (s.answered == s.total)
      s.finished.deliver(s.failed);
  });
}

template <class Send>
caf::behavior driver(driver_pointer<Send> self, Send send, ids_ptr ids) {
  self->state.send = std::move(send);
  self->state.ids = std::move(ids);
  return {[self](run_atom, int total, int window) {
    auto& st = self->state;
    st.sent = st.answered = st.failed = 0;
    st.total = total;
    st.finished = self->make_response_promise();
    for (int i = 0; i < std::min(window, total); ++i) send_next(self);
    return st.finished;
  }};
}

struct row {
  double per_s;
  int failed;
};

// One driver per path for the whole run, so a remembering caller stays warm between runs as a
// long-lived caller (a gateway lane) would; the warm-up runs teach it every speaker.
row measure(caf::scoped_actor& self, const caf::actor& driver, int total, int window) {
  row r{0, 0};
  auto t0 = clock_type::now();
  self->request(driver, caf::infinite, run_atom::value, total, window)
    .receive([&](int failed) { r.failed = failed; }, [&](caf::error&) { r.failed = total; });
  r.per_s = total / std::chrono::duration<double>(clock_type::now() - t0).count();
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int total = argc > 1 ? std::atoi(argv[1]) : 200000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 3;
  if (total < 1 || runs < 1) {
    std::fprintf(stderr, "usage: bench_actor_messaging [requests per row >= 1] [runs >= 1]\n");
    return 2;
  }
  sbm::bench::bench_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto [url, db] = sbm::bench::spawn_migrated_database(sys, self);
  {
    pqxx::connection raw{url};
    pqxx::work w{raw};
    w.exec0("INSERT INTO speakers.speakers (speaker_id, client_id, display_name, bucket, window_size, "
            "window_mean, samples_total) SELECT 'spk-' || lpad(i::text, 6, '0'), 'client-' || (i % 10), "
            "'Dr ' || i, 'medium_touch', 0, 0, 0 FROM generate_series(0, " + std::to_string(speakers - 1) + ") i");
    w.commit();
  }

  sbm::speakers::speakers_settings sp;
  sp.db = db;
  sp.bus = sbm::events::spawn_event_bus(sys);
  sp.idle_timeout = std::chrono::hours(1);
  auto shard = sbm::speakers::spawn_speakers(sys, sp);

  auto ids = std::make_shared<std::vector<std::string>>();
  sbm::speaker_view sample;
  int failures = 0;
  for (int i = 0; i < speakers; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "spk-%06d", i);
    ids->push_back(buf);
    // Activates the speaker (row loaded from PostgreSQL); every request measured below finds it live.
    self->request(shard, std::chrono::seconds(30), sbm::get_atom::value, ids->back())
      .receive([&](sbm::speaker_view& v) { sample = v; }, [&](caf::error&) { ++failures; });
  }
  // The baseline has as many bare actors as there are speakers, each request going to its own
  // speaker's twin: a message to an actor that is not running costs a resume (scheduling, the
  // mailbox's new round, CAF's per-resume logger lookup) that a single actor answering all 100
  // outstanding requests in one resume does not pay. One bare actor is measured beside it, to show
  // what that batching is worth.
  auto raw_many = std::make_shared<std::vector<raw_server_actor>>();
  for (int i = 0; i < speakers; ++i) raw_many->push_back(sys.spawn(raw_server, sample));
  auto raw_one = std::make_shared<std::vector<raw_server_actor>>(1, sys.spawn(raw_server, sample));
  ids_ptr shared_ids = ids;
  const caf::actor drivers[] = {
    sys.spawn(driver<to_raw>, to_raw{raw_many}, shared_ids),
    sys.spawn(driver<to_raw>, to_raw{raw_one}, shared_ids),
    sys.spawn(driver<remembering>, remembering{shard}, shared_ids),
    sys.spawn(driver<to_shard>, to_shard{shard}, shared_ids),
  };
  constexpr int paths = 4;
  const char* path_names[paths] = {
    "raw CAF pairs: 100 bare actors, one per speaker (the baseline)",
    "raw CAF pair: one bare actor answering every request",
    "**SBM as callers do it**: first read through the shard, then to the activation that answered",
    "SBM, every read through the shard (a caller that remembers nothing)",
  };

  // Warm every path (allocators, caches, the remembering caller's locations) before timing.
  for (const auto& d : drivers) failures += measure(self, d, std::min(total, 10000), in_flight).failed;

  // [window][path] per run; ratios are each run's figure over the same run's baseline.
  const int windows[] = {in_flight, 1};
  const int counts[] = {total, std::max(1, total / 4)};  // one at a time is slower: a quarter
  std::vector<double> per_s[2][paths], ratio[2][paths];
  for (int r = 0; r < runs; ++r)
    for (int w = 0; w < 2; ++w) {
      double base = 0;
      for (int p = 0; p < paths; ++p) {
        auto m = measure(self, drivers[p], counts[w], windows[w]);
        failures += m.failed;
        if (p == 0) base = m.per_s;
        per_s[w][p].push_back(m.per_s);
        ratio[w][p].push_back(m.per_s / base);
      }
    }
  std::printf("| requests | path | req/s | against the baseline |\n|---|---|---|---|\n");
  const char* window_names[] = {"pipelined, 100 in flight", "one at a time"};
  for (int w = 0; w < 2; ++w)
    for (int p = 0; p < paths; ++p)
      std::printf("| %s | %s | %.0f | %s%.2fx%s |\n", window_names[w], path_names[p], median(per_s[w][p]),
                  p == 2 ? "**" : "", median(ratio[w][p]), p == 2 ? "**" : "");
  std::printf("\n%d requests per pipelined row, %d per one-at-a-time row (one event-based client "
              "keeping one request in flight), round robin over %d active speakers; median of %d runs "
              "(ratio: median of the runs' ratios); failures: %d\n",
              counts[0], counts[1], speakers, runs, failures);
  for (const auto& d : drivers) caf::anon_send_exit(d, caf::exit_reason::user_shutdown);
  for (const auto& r : *raw_many) caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(raw_one->front(), caf::exit_reason::user_shutdown);
  caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(sp.bus, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
  return failures == 0 ? 0 : 1;
}
