// Issue 18, item 5: requests per second through the speakers shard to active speaker actors
// (get-speaker, answered from the actor's state), pipelined (IN_FLIGHT requests outstanding) and
// one at a time, beside a raw CAF request/response pair in the same run: a bare stateful actor
// holding the same speaker_view and answering the same (get_atom, std::string) message with it.
// The difference is the shard's hop (id check, lookup, delegate) and the speaker actor's own handler.
//
// Usage: bench_actor_messaging [requests per row, default 200000] [runs, default 3]
// Each row is the median of the runs; runs alternate raw and SBM so load drift hits both alike.
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

namespace {

using clock_type = std::chrono::steady_clock;
using run_atom = caf::atom_constant<caf::atom("run")>;
// Round robin over this many active speakers: the shard bounds what waits per speaker (64), so
// 100 requests in flight to a single speaker would be refused, not queued.
constexpr int speakers = 100;
constexpr int in_flight = 100;

using ids_ptr = std::shared_ptr<const std::vector<std::string>>;

// The raw side: one bare actor answering the same message with a copy of the same view.
struct raw_state {
  sbm::speaker_view view;
};
using raw_server_actor = caf::typed_actor<caf::replies_to<sbm::get_atom, std::string>::with<sbm::speaker_view>>;
raw_server_actor::behavior_type raw_server(raw_server_actor::stateful_pointer<raw_state> self,
                                           sbm::speaker_view view) {
  self->state.view = std::move(view);
  return {[self](sbm::get_atom, const std::string&) { return self->state.view; }};
}

// Keeps `in_flight` requests outstanding until `total` are answered; replies with the failures.
struct driver_state {
  int sent = 0;
  int answered = 0;
  int failed = 0;
  int total = 0;
  caf::response_promise finished;
};
using driver_pointer = caf::stateful_actor<driver_state>*;

template <class Handle>
void send_next(driver_pointer self, Handle target, ids_ptr ids) {
  auto& st = self->state;
  const auto& id = (*ids)[static_cast<std::size_t>(st.sent++) % ids->size()];
  auto answered = [self, target, ids](bool ok) {
    auto& s = self->state;
    ++s.answered;
    if (!ok) ++s.failed;
    if (s.sent < s.total)
      send_next(self, target, ids);
    else if (s.answered == s.total)
      s.finished.deliver(s.failed);
  };
  self->request(target, caf::infinite, sbm::get_atom::value, id)
    .then([answered](sbm::speaker_view&) { answered(true); }, [answered](caf::error&) { answered(false); });
}

template <class Handle>
caf::behavior driver(driver_pointer self, Handle target, ids_ptr ids) {
  return {[self, target, ids](run_atom, int total) {
    self->state = driver_state{};
    self->state.total = total;
    self->state.finished = self->make_response_promise();
    for (int i = 0; i < std::min(in_flight, total); ++i) send_next(self, target, ids);
    return self->state.finished;
  }};
}

struct row {
  double per_s;
  int failed;
};

template <class Handle>
row pipelined(caf::actor_system& sys, caf::scoped_actor& self, Handle target, ids_ptr ids, int total) {
  auto d = sys.spawn(driver<Handle>, target, ids);
  row r{0, 0};
  auto t0 = clock_type::now();
  self->request(d, caf::infinite, run_atom::value, total)
    .receive([&](int failed) { r.failed = failed; }, [&](caf::error&) { r.failed = total; });
  r.per_s = total / std::chrono::duration<double>(clock_type::now() - t0).count();
  caf::anon_send_exit(d, caf::exit_reason::user_shutdown);
  return r;
}

template <class Handle>
row one_at_a_time(caf::scoped_actor& self, Handle target, const ids_ptr& ids, int total) {
  row r{0, 0};
  auto t0 = clock_type::now();
  for (int i = 0; i < total; ++i)
    self->request(target, caf::infinite, sbm::get_atom::value, (*ids)[static_cast<std::size_t>(i) % ids->size()])
      .receive([](sbm::speaker_view&) {}, [&](caf::error&) { ++r.failed; });
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
  auto raw = sys.spawn(raw_server, sample);
  ids_ptr shared_ids = ids;

  // Warm both paths (allocators, caches) before the first timed run.
  pipelined(sys, self, raw, shared_ids, std::min(total, 10000));
  pipelined(sys, self, shard, shared_ids, std::min(total, 10000));

  std::vector<double> raw_pipe, sbm_pipe, raw_one, sbm_one, pipe_ratio, one_ratio;
  const int serial = std::max(1, total / 4);  // one at a time is slower: a quarter of the requests
  for (int r = 0; r < runs; ++r) {
    auto rp = pipelined(sys, self, raw, shared_ids, total);
    auto sp_ = pipelined(sys, self, shard, shared_ids, total);
    auto ro = one_at_a_time(self, raw, shared_ids, serial);
    auto so = one_at_a_time(self, shard, shared_ids, serial);
    failures += rp.failed + sp_.failed + ro.failed + so.failed;
    raw_pipe.push_back(rp.per_s);
    sbm_pipe.push_back(sp_.per_s);
    raw_one.push_back(ro.per_s);
    sbm_one.push_back(so.per_s);
    pipe_ratio.push_back(sp_.per_s / rp.per_s);
    one_ratio.push_back(so.per_s / ro.per_s);
  }
  std::printf("| mode | raw CAF pair req/s | SBM shard -> speaker req/s | ratio |\n|---|---|---|---|\n");
  std::printf("| pipelined, %d in flight | %.0f | %.0f | **%.2fx** |\n", in_flight, median(raw_pipe),
              median(sbm_pipe), median(pipe_ratio));
  std::printf("| one at a time | %.0f | %.0f | **%.2fx** |\n", median(raw_one), median(sbm_one),
              median(one_ratio));
  std::printf("\n%d requests per pipelined row, %d per one-at-a-time row, round robin over %d active "
              "speakers; median of %d runs (ratio: median of the runs' ratios); failures: %d\n",
              total, serial, speakers, runs, failures);
  caf::anon_send_exit(raw, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(sp.bus, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
  return failures == 0 ? 0 : 1;
}
