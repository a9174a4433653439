// The speakers port's contract, run against both adapters: PostgreSQL and the simulation's
// in-memory store (tests/sim/). A change applies only under the version it was computed from, a
// job counts once, a key stores one write and replays its answer, and in a cluster the fence
// refuses a write under a stale epoch or for a speaker another live lease holds.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/cluster/store.hpp"
#include "actors/speakers/store.hpp"
#include "messages/cluster.hpp"
#include "messages/errors.hpp"
#include "tests/integration/port_contract.hpp"
#include "tests/sim/leases_memory.hpp"
#include "tests/sim/speakers_memory.hpp"

namespace {

using namespace std::chrono_literals;
using namespace sbm::speakers;
using sbm::errc;

template <class Backend>
class SpeakerStoreContract : public Backend {
 protected:
  void SetUp() override {
    Backend::SetUp();
    leases = std::make_shared<sbm::sim::lease_tables>();
    tables = std::make_shared<sbm::sim::speaker_tables>();
    tables->leases = leases;
    port = make_postgres_store();
    if constexpr (Backend::in_memory) port = sbm::sim::memory_speaker_store(this->server.handle, tables);
  }

  // Calls the port from an actor of its own, as a speaker does, and waits for the answer.
  template <class T, class Op>
  caf::expected<T> call(Op op) {
    auto answer = std::make_shared<std::promise<caf::expected<T>>>();
    auto got = answer->get_future();
    auto db = this->handle();
    auto p = port;
    this->sys.spawn([db, p, op, answer](caf::event_based_actor* self) -> caf::behavior {
      op(*p, sbm::db::make_store_link(self, db, 10s), [self, answer](caf::expected<T> r) {
        answer->set_value(std::move(r));
        self->quit();
      });
      return {[](int) {}};
    });
    if (got.wait_for(60s) != std::future_status::ready) return make_error(errc::internal, "the port never answered");
    return got.get();
  }

  // The cluster's own lease store over the same backend: the fence's leases.
  template <class T, class Op>
  caf::expected<T> on_leases(Op op) {
    using lease_store = sbm::cluster::store;
    std::function<std::unique_ptr<lease_store>(const sbm::db::store_link&)> open =
      [](const sbm::db::store_link& link) { return sbm::cluster::make_postgres_store(link.query); };
    if constexpr (Backend::in_memory) open = sbm::sim::memory_lease_store(this->server.handle, leases);
    return sbm::test::through_port<T, lease_store>(this->sys, this->handle(), open, op);
  }
  std::int64_t lease(const std::string& address) {
    auto got = on_leases<sbm::cluster::lease>([address](sbm::cluster::store& st, completion<sbm::cluster::lease> done) {
      st.acquire(address, "n", 60s, done);
    });
    EXPECT_TRUE(got);
    return got ? got->epoch : -1;
  }
  bool release_lease(std::int64_t epoch) {
    auto got = on_leases<bool>([epoch](sbm::cluster::store& st, completion<bool> done) { st.release(epoch, done); });
    return got && *got;
  }

  caf::expected<speaker_record> create(const std::string& id, fence_epoch epoch = {}, sbm::request_context ctx = {}) {
    new_speaker s{id, "client-1", "Dr " + id, "high_touch", "qa-1"};
    return call<speaker_record>([s, epoch, ctx](const store& st, const sbm::db::store_link& via, completion<speaker_record> done) {
      st.create(via, s, ctx, epoch, done);
    });
  }
  caf::expected<loaded_speaker> load(const std::string& id, fence_epoch epoch = {}, std::uint32_t window = 3) {
    return call<loaded_speaker>([id, window, epoch](const store& st, const sbm::db::store_link& via, completion<loaded_speaker> done) {
      st.load(via, id, window, epoch, done);
    });
  }
  caf::expected<change_saved> save(const speaker_change& c, fence_epoch epoch = {}, sbm::request_context ctx = {}) {
    return call<change_saved>([c, ctx, epoch](const store& st, const sbm::db::store_link& via, completion<change_saved> done) {
      st.save(via, c, ctx, epoch, done);
    });
  }
  caf::expected<keyed_answer> find_key(const sbm::request_context& ctx) {
    return call<keyed_answer>([ctx](const store& st, const sbm::db::store_link& via, completion<keyed_answer> done) {
      st.find_key(via, ctx, std::chrono::hours{1}, done);
    });
  }

  caf::expected<std::vector<outbox_entry>> pending(outbox_target t) {
    return call<std::vector<outbox_entry>>(
      [t](const store& st, const sbm::db::store_link& via, completion<std::vector<outbox_entry>> done) {
        st.outbox_pending(via, t, 10, done);
      });
  }
  caf::expected<bool> stamp(outbox_target t, std::int64_t id, std::int64_t relay_epoch = 0) {
    return call<bool>([t, id, relay_epoch](const store& st, const sbm::db::store_link& via, completion<bool> done) {
      st.outbox_stamp(via, t, id, relay_epoch, done);
    });
  }
  // A pin of spk-1 (made at `version`) to low_touch: one bucket event and one audit row.
  static speaker_change pin_of(std::int64_t version) {
    speaker_change pin;
    pin.speaker_id = "spk-1";
    pin.client_id = "client-1";
    pin.version = version;
    pin.bucket = "low_touch";
    pin.bucket_changes = 1;
    pin.pin = pin_change::pin;
    pin.pin_reason = "trial";
    pin.pinned_by = "qa-2";
    pin.audit = audit_line{"bucket.pin", {"qa-2", "user", "10.0.0.9"}, "low_touch", "trial"};
    pin.moves.push_back({"high_touch", "low_touch", "pinned: trial"});
    return pin;
  }

  static speaker_change sample(const std::string& id, std::int64_t version, const std::string& job, double rate) {
    speaker_change c;
    c.speaker_id = id;
    c.client_id = "client-1";
    c.version = version;
    c.bucket = "high_touch";
    c.sample = new_sample{job, rate, "qa-1"};
    c.window_size = 1;
    c.window_mean = rate;
    return c;
  }
  static sbm::request_context keyed(std::string key, std::string digest) {
    sbm::request_context ctx;
    ctx.idempotency_key = std::move(key);
    ctx.request_digest = std::move(digest);
    ctx.principal = "user-1";
    return ctx;
  }
  static errc code(const caf::error& e) { return sbm::code_of(e); }

  std::shared_ptr<sbm::sim::lease_tables> leases;
  std::shared_ptr<sbm::sim::speaker_tables> tables;
  store_ptr port;
};

using backends = ::testing::Types<sbm::test::postgres_backend, sbm::test::memory_backend>;
TYPED_TEST_SUITE(SpeakerStoreContract, backends);

TYPED_TEST(SpeakerStoreContract, ARegisteredSpeakerLoadsWithItsNewestSamplesAndAnUnknownOneLoadsEmpty) {
  auto made = this->create("spk-1");
  ASSERT_TRUE(made) << this->sys.render(made.error());
  EXPECT_EQ(made->view.bucket, "high_touch");
  EXPECT_EQ(made->view.display_name, "Dr spk-1");
  auto again = this->create("spk-1");
  ASSERT_FALSE(again);
  EXPECT_EQ(this->code(again.error()), errc::duplicate);

  std::int64_t version = made->version;
  for (int i = 1; i <= 4; ++i) {
    auto saved = this->save(this->sample("spk-1", version, "job-" + std::to_string(i), i));
    ASSERT_TRUE(saved) << this->sys.render(saved.error());
    ++version;
  }
  auto loaded = this->load("spk-1", {}, 3);
  ASSERT_TRUE(loaded) << this->sys.render(loaded.error());
  ASSERT_TRUE(loaded->row);
  EXPECT_EQ(loaded->row->version, version);
  EXPECT_EQ(loaded->row->view.samples_total, 4u);
  EXPECT_EQ(loaded->window, (std::vector<double>{2, 3, 4}));  // the newest three, oldest first

  auto none = this->load("spk-404");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->row);
}

// The window comes back exactly as stored (any decimals, with and without a lease's epoch), and a
// speaker without samples loads an empty one.
TYPED_TEST(SpeakerStoreContract, AWindowLoadsExactlyAndAnEmptyOneLoadsEmpty) {
  const auto a = this->lease("10.0.0.1:4000");
  auto made = this->create("spk-1");
  ASSERT_TRUE(made) << this->sys.render(made.error());
  auto empty = this->load("spk-1");
  ASSERT_TRUE(empty && empty->row);
  EXPECT_TRUE(empty->window.empty());
  const std::vector<double> rates{1.0 / 3, 0.1, 999999.999999, 0, 1e-9};
  std::int64_t version = made->version;
  for (std::size_t i = 0; i < rates.size(); ++i) {
    ASSERT_TRUE(this->save(this->sample("spk-1", version, "job-" + std::to_string(i), rates[i])));
    ++version;
  }
  for (fence_epoch epoch : {fence_epoch{}, fence_epoch{a}}) {
    auto loaded = this->load("spk-1", epoch, 50);
    ASSERT_TRUE(loaded && loaded->row) << (epoch ? "with an epoch" : "without an epoch");
    EXPECT_EQ(loaded->window, rates);
    EXPECT_EQ(loaded->row->version, version);
  }
}

TYPED_TEST(SpeakerStoreContract, AChangeAppliesOnlyUnderItsVersionAndAJobCountsOnce) {
  auto made = this->create("spk-1");
  ASSERT_TRUE(made);
  const auto v0 = made->version;
  ASSERT_TRUE(this->save(this->sample("spk-1", v0, "job-1", 2.0)));
  auto stale = this->save(this->sample("spk-1", v0, "job-2", 2.0));
  ASSERT_FALSE(stale);
  EXPECT_EQ(this->code(stale.error()), errc::conflict);
  auto twice = this->save(this->sample("spk-1", v0 + 1, "job-1", 2.0));
  ASSERT_FALSE(twice);
  EXPECT_EQ(this->code(twice.error()), errc::duplicate);
  auto loaded = this->load("spk-1");
  ASSERT_TRUE(loaded && loaded->row);
  EXPECT_EQ(loaded->row->version, v0 + 1) << "a refused change left a trace";
  EXPECT_EQ(loaded->row->view.samples_total, 1u);

  // A pin records who and when; an unpin clears both. History keeps every line, in order.
  speaker_change pin;
  pin.speaker_id = "spk-1";
  pin.client_id = "client-1";
  pin.version = v0 + 1;
  pin.bucket = "low_touch";
  pin.bucket_changes = 1;
  pin.pin = pin_change::pin;
  pin.pin_reason = "trial";
  pin.pinned_by = "qa-2";
  pin.history.push_back({"pin", "high_touch", "low_touch", "trial", "qa-2"});
  pin.audit = audit_line{"bucket.pin", {"qa-2", "user", "10.0.0.9"}, "low_touch", "trial"};
  pin.moves.push_back({"high_touch", "low_touch", "pinned: trial"});
  auto pinned = this->save(pin);
  ASSERT_TRUE(pinned) << this->sys.render(pinned.error());
  EXPECT_GT(pinned->pinned_at_ms, 0);
  auto after = this->load("spk-1");
  ASSERT_TRUE(after && after->row);
  EXPECT_TRUE(after->row->view.pinned);
  EXPECT_EQ(after->row->view.pinned_by, "qa-2");
  EXPECT_EQ(after->row->view.bucket, "low_touch");
  EXPECT_EQ(after->row->view.bucket_changes, 1u);
  speaker_change unpin = pin;
  unpin.version = v0 + 2;
  unpin.pin = pin_change::unpin;
  unpin.bucket_changes = 0;
  unpin.history = {{"unpin", "low_touch", "low_touch", "done", "qa-2"}};
  unpin.moves.clear();
  ASSERT_TRUE(this->save(unpin));
  auto history = this->template call<std::vector<sbm::history_entry>>(
    [](const store& st, const sbm::db::store_link& via, completion<std::vector<sbm::history_entry>> done) {
      st.history(via, "spk-1", 2, done);
    });
  ASSERT_TRUE(history);
  ASSERT_EQ(history->size(), 2u) << "the newest two of three";
  EXPECT_EQ((*history)[0].kind, "pin");
  EXPECT_EQ((*history)[1].kind, "unpin");
  EXPECT_LT((*history)[0].id, (*history)[1].id);
  auto unpinned = this->load("spk-1");
  ASSERT_TRUE(unpinned && unpinned->row);
  EXPECT_FALSE(unpinned->row->view.pinned);
  EXPECT_EQ(unpinned->row->view.pinned_at_ms, 0);
}

TYPED_TEST(SpeakerStoreContract, AKeyStoresOneWriteAndReplaysItsAnswer) {
  auto made = this->create("spk-1");
  ASSERT_TRUE(made);
  const auto ctx = this->keyed("key-1", "digest-1");
  auto absent = this->find_key(ctx);
  ASSERT_TRUE(absent);
  EXPECT_EQ(absent->v, sbm::db::idempotency::verdict::absent);
  ASSERT_TRUE(this->save(this->sample("spk-1", made->version, "job-1", 1.5), {}, ctx));
  auto replay = this->find_key(ctx);
  ASSERT_TRUE(replay) << this->sys.render(replay.error());
  ASSERT_EQ(replay->v, sbm::db::idempotency::verdict::replay);
  EXPECT_EQ(replay->stored.outcome, 0);
  EXPECT_EQ(replay->view.speaker_id, "spk-1");
  EXPECT_EQ(replay->view.samples_total, 1u) << "the answer is the row as the write left it";
  auto other = this->find_key(this->keyed("key-1", "digest-2"));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->v, sbm::db::idempotency::verdict::reused);
  // The same key on a second write (its first answer lost, say) writes nothing more.
  auto second = this->save(this->sample("spk-1", made->version + 1, "job-2", 1.5), {}, ctx);
  ASSERT_FALSE(second);
  EXPECT_EQ(this->code(second.error()), errc::in_progress);
  auto loaded = this->load("spk-1");
  ASSERT_TRUE(loaded && loaded->row);
  EXPECT_EQ(loaded->row->view.samples_total, 1u);
}

TYPED_TEST(SpeakerStoreContract, TheFenceRefusesAStaleEpochAndAWriterWithoutTheOwnershipRow) {
  const auto a = this->lease("10.0.0.1:4000");
  const auto b = this->lease("10.0.0.2:4000");
  auto made = this->create("spk-1", a);
  ASSERT_TRUE(made) << this->sys.render(made.error());
  // A registration gives its row back: b may activate it at once.
  auto by_b = this->load("spk-1", b);
  ASSERT_TRUE(by_b) << this->sys.render(by_b.error());
  ASSERT_TRUE(by_b->row);
  auto by_a = this->load("spk-1", a);
  ASSERT_FALSE(by_a) << "a took the speaker from a live owner";
  EXPECT_EQ(this->code(by_a.error()), errc::stale_owner);
  auto write_a = this->save(this->sample("spk-1", by_b->row->version, "job-1", 1), a);
  ASSERT_FALSE(write_a);
  EXPECT_EQ(this->code(write_a.error()), errc::stale_owner);
  ASSERT_TRUE(this->save(this->sample("spk-1", by_b->row->version, "job-1", 1), b));
  auto never = this->save(this->sample("spk-1", by_b->row->version + 1, "job-2", 1), b + 1000);
  ASSERT_FALSE(never);
  EXPECT_EQ(this->code(never.error()), errc::stale_owner);

  // b stops: its epoch writes no more, and a new lease takes the speaker over.
  ASSERT_TRUE(this->release_lease(b));
  auto late = this->save(this->sample("spk-1", by_b->row->version + 1, "job-2", 1), b);
  ASSERT_FALSE(late);
  EXPECT_EQ(this->code(late.error()), errc::stale_owner);
  auto taken = this->load("spk-1", a);
  ASSERT_TRUE(taken) << this->sys.render(taken.error());
  ASSERT_TRUE(this->save(this->sample("spk-1", taken->row->version, "job-2", 1), a));
  auto loaded = this->load("spk-1");
  ASSERT_TRUE(loaded && loaded->row);
  EXPECT_EQ(loaded->row->view.samples_total, 2u) << "only the fenced writes counted";
}

TYPED_TEST(SpeakerStoreContract, SamplesAndListsKeepToTheirRangeLimitAndScope) {
  for (const char* id : {"spk-a", "spk-b", "spk-c"}) ASSERT_TRUE(this->create(id));
  std::int64_t version = 0;
  for (int i = 0; i < 5; ++i) {
    auto loaded = this->load("spk-b");
    ASSERT_TRUE(loaded && loaded->row);
    version = loaded->row->version;
    ASSERT_TRUE(this->save(this->sample("spk-b", version, "job-" + std::to_string(i), i)));
  }
  sbm::samples_query q;
  q.speaker_id = "spk-b";
  auto three = this->template call<std::pair<bool, sbm::quality_samples>>(
    [q](const store& st, const sbm::db::store_link& via, completion<std::pair<bool, sbm::quality_samples>> done) {
      st.samples(via, q, 3, done);
    });
  ASSERT_TRUE(three) << this->sys.render(three.error());
  ASSERT_TRUE(three->first);
  ASSERT_EQ(three->second.items.size(), 3u);
  EXPECT_TRUE(three->second.truncated);
  EXPECT_EQ(three->second.items.front().job_id, "job-2");  // the newest three, oldest first
  EXPECT_EQ(three->second.items.back().job_id, "job-4");
  auto other = q;
  other.scope.limited = true;
  other.scope.client_ids = {"client-9"};
  auto hidden = this->template call<std::pair<bool, sbm::quality_samples>>(
    [other](const store& st, const sbm::db::store_link& via, completion<std::pair<bool, sbm::quality_samples>> done) {
      st.samples(via, other, 3, done);
    });
  ASSERT_TRUE(hidden);
  EXPECT_FALSE(hidden->first) << "another client's speaker reads as unknown";

  list_filter f;
  f.after = std::string("spk-a");
  f.fetch = 10;
  auto page = this->template call<std::vector<speaker_record>>(
    [f](const store& st, const sbm::db::store_link& via, completion<std::vector<speaker_record>> done) { st.list(via, f, done); });
  ASSERT_TRUE(page);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].view.speaker_id, "spk-b");
  f.scope.limited = true;
  auto none = this->template call<std::vector<speaker_record>>(
    [f](const store& st, const sbm::db::store_link& via, completion<std::vector<speaker_record>> done) { st.list(via, f, done); });
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty()) << "an empty scope admits nobody";
}

}  // namespace

namespace {

// The outbox relay's side of the port: each target sees every row of its topic once it is
// committed, in commit order, until it stamps it; one target's stamp leaves the others' rows.
TYPED_TEST(SpeakerStoreContract, TheOutboxHandsEachTargetItsRowsInOrderUntilItStampsThem) {
  auto made = this->create("spk-1");
  ASSERT_TRUE(made);
  ASSERT_TRUE(this->save(this->pin_of(made->version)));
  auto pending = [this](outbox_target t) { return this->pending(t); };
  auto stamp = [this](outbox_target t, std::int64_t id) { return this->stamp(t, id); };
  auto bus = pending(outbox_target::bus);
  ASSERT_TRUE(bus) << this->sys.render(bus.error());
  ASSERT_EQ(bus->size(), 1u);
  const auto& ev = bus->front().event;
  EXPECT_EQ(ev.event_id, bus->front().id);
  EXPECT_EQ(ev.speaker_id, "spk-1");
  EXPECT_EQ(ev.client_id, "client-1");
  EXPECT_EQ(ev.previous_bucket, "high_touch");
  EXPECT_EQ(ev.new_bucket, "low_touch");
  EXPECT_EQ(ev.reason, "pinned: trial");
  EXPECT_GT(bus->front().created_ms, 0);
  auto audit = pending(outbox_target::audit);
  ASSERT_TRUE(audit);
  ASSERT_EQ(audit->size(), 1u);
  const auto& rec = audit->front().record;
  EXPECT_EQ(rec.actor, "qa-2");
  EXPECT_EQ(rec.actor_kind, "user");
  EXPECT_EQ(rec.action, "bucket.pin");
  EXPECT_EQ(rec.target, "spk-1");
  EXPECT_EQ(rec.peer, "10.0.0.9");
  EXPECT_EQ(rec.client_id, "client-1");
  EXPECT_EQ(rec.detail, R"({"bucket": "low_touch", "reason": "trial", "speaker_id": "spk-1"})");
  EXPECT_EQ(rec.source_key, "speakers.outbox:" + std::to_string(audit->front().id));

  ASSERT_TRUE(stamp(outbox_target::bus, bus->front().id));
  ASSERT_TRUE(stamp(outbox_target::bus, bus->front().id));  // a second stamp is harmless
  auto after = pending(outbox_target::bus);
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->empty());
  auto stream = pending(outbox_target::stream);
  ASSERT_TRUE(stream);
  ASSERT_EQ(stream->size(), 1u);  // the stream has not taken it yet
  EXPECT_EQ(stream->front().id, bus->front().id);

  // Nothing is purged while a target still lacks its row, or before the retention.
  auto purge = [this](std::chrono::hours retention) {
    return this->template call<bool>([retention](const store& st, const sbm::db::store_link& via, completion<bool> done) {
      st.outbox_purge(via, retention, std::chrono::hours{1}, done);
    });
  };
  ASSERT_TRUE(purge(std::chrono::hours{0}));
  stream = pending(outbox_target::stream);
  ASSERT_TRUE(stream);
  EXPECT_EQ(stream->size(), 1u);
}

// The relay's stamps in a cluster: fenced by the relay singleton under the relay's epoch. A relay
// whose lease does not hold the singleton, or whose lease is gone, stamps nothing (its target gets
// the row again from the relay that holds it: at least once, never lost).
TYPED_TEST(SpeakerStoreContract, AClusteredStampNeedsTheRelaySingletonUnderALiveLease) {
  const auto a = this->lease("10.0.0.1:4000");
  const auto b = this->lease("10.0.0.2:4000");
  auto held = this->template on_leases<bool>([a](sbm::cluster::store& st, completion<bool> done) {
    st.hold_singleton(sbm::outbox_relay_singleton, a, done);
  });
  ASSERT_TRUE(held && *held);
  auto made = this->create("spk-1");
  ASSERT_TRUE(made);
  ASSERT_TRUE(this->save(this->pin_of(made->version)));
  auto pending = [this](outbox_target t) { return this->pending(t); };
  auto stamp = [this](outbox_target t, std::int64_t id, std::int64_t epoch) { return this->stamp(t, id, epoch); };
  auto bus = pending(outbox_target::bus);
  ASSERT_TRUE(bus);
  ASSERT_EQ(bus->size(), 1u);
  const auto row = bus->front().id;

  // b is live but does not hold the singleton: refused, the row stays pending.
  auto by_b = stamp(outbox_target::bus, row, b);
  ASSERT_FALSE(by_b);
  EXPECT_EQ(this->code(by_b.error()), errc::stale_owner) << this->sys.render(by_b.error());
  auto still = pending(outbox_target::bus);
  ASSERT_TRUE(still);
  EXPECT_EQ(still->size(), 1u);

  // a holds it: stamped.
  auto by_a = stamp(outbox_target::bus, row, a);
  ASSERT_TRUE(by_a) << this->sys.render(by_a.error());
  auto after = pending(outbox_target::bus);
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->empty());

  // a's lease gone: its stamps are refused, even though no other lease took the singleton yet.
  ASSERT_TRUE(this->release_lease(a));
  auto late = stamp(outbox_target::stream, row, a);
  ASSERT_FALSE(late);
  EXPECT_EQ(this->code(late.error()), errc::stale_owner) << this->sys.render(late.error());
  auto stream = pending(outbox_target::stream);
  ASSERT_TRUE(stream);
  EXPECT_EQ(stream->size(), 1u);
}

}  // namespace
