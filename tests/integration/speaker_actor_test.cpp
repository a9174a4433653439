// Speaker actors and their shard against a real PostgreSQL: registration, the bucket policy as
// samples arrive, history, pins, serialisation of concurrent writes, passivation and re-activation,
// a restart of the whole actor system, supervision of a speaker that keeps failing, listing, and
// a PostgreSQL outage (private servers).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/connections/connections.hpp"
#include "actors/speakers/core/bucket_policy.hpp"
#include "actors/speakers/core/quality_measure.hpp"
#include "actors/speakers/speaker_actor.hpp"
#include "actors/speakers/speakers.hpp"
#include "messages/errors.hpp"
#include "messages/speaker_locations.hpp"
#include "runtime/migrations/all_migrations.hpp"
#include "tests/support/actor_test.hpp"
#include "tests/support/servers.hpp"
#include "tests/support/table_lock.hpp"

namespace {

using namespace std::chrono_literals;
using sbm::errc;
using sbm::speaker_history;
using sbm::speaker_shard_actor;
using sbm::speaker_view;
namespace sp = sbm::speakers;
using param = caf::optional<std::string>;

constexpr auto answer_timeout = 60s;

template <class Result, class Handle, class... Ts>
caf::expected<Result> call(caf::scoped_actor& self, const Handle& to, Ts&&... xs) {
  return sbm::test::request_blocking<Result>(self, answer_timeout, to, std::forward<Ts>(xs)...);
}

using sbm::test::code;

sbm::postgres_actor start_postgres(caf::actor_system& sys, caf::scoped_actor& self,
                                   const std::string& url, std::uint32_t pool_size = 2) {
  sbm::connections::postgres_settings s;
  s.url = url;
  s.pool_size = pool_size;
  s.probe_interval = 100ms;
  s.request_timeout = 5s;
  s.breaker = sbm::resilience::breaker_policy{3, 300ms};
  s.restart_backoff = sbm::resilience::backoff_policy{3, 20ms, 200ms, 0.0};
  s.migrations = sbm::schema::all_migrations();
  auto pg = sbm::connections::spawn_postgres(sys, std::move(s));
  const bool up = sbm::test::eventually([&] {
    auto st = call<sbm::dependency_status>(self, pg, sbm::status_atom::value);
    return st && st->state == "up";
  });
  EXPECT_TRUE(up) << "postgres did not come up for " << url;
  return pg;
}

// Small window so a test can walk a speaker through the policy in a handful of samples.
sp::speakers_settings test_settings(sbm::postgres_actor db) {
  sp::speakers_settings s;
  s.db = std::move(db);
  s.policy.window_size = 5;
  s.idle_timeout = 1h;
  s.relay_interval = 100ms;
  s.db_timeout = 5s;
  return s;
}

// The pieces of a view that must survive passivation and restarts.
void expect_same_state(const speaker_view& a, const speaker_view& b) {
  EXPECT_EQ(a.speaker_id, b.speaker_id);
  EXPECT_EQ(a.client_id, b.client_id);
  EXPECT_EQ(a.display_name, b.display_name);
  EXPECT_EQ(a.bucket, b.bucket);
  EXPECT_EQ(a.pinned, b.pinned);
  EXPECT_EQ(a.pin_reason, b.pin_reason);
  EXPECT_EQ(a.pinned_by, b.pinned_by);
  EXPECT_EQ(a.pinned_at_ms, b.pinned_at_ms);
  EXPECT_EQ(a.window_size, b.window_size);
  EXPECT_EQ(a.window_capacity, b.window_capacity);
  EXPECT_DOUBLE_EQ(a.window_mean, b.window_mean);
  EXPECT_EQ(a.samples_total, b.samples_total);
  EXPECT_EQ(a.bucket_changes, b.bucket_changes);
  EXPECT_EQ(a.created_at_ms, b.created_at_ms);
  EXPECT_EQ(a.updated_at_ms, b.updated_at_ms);
}

struct speaker_client {
  caf::scoped_actor& self;
  speaker_shard_actor shard;

  caf::expected<speaker_view> enrol(const std::string& id, const std::string& client = "clinic-1") {
    return call<speaker_view>(self, shard, sbm::register_atom::value,
                              sbm::speaker_registration{id, client, "Dr " + id, "admin-1"});
  }
  caf::expected<speaker_view> sample(const std::string& id, const std::string& job, double rate) {
    return call<speaker_view>(self, shard, sbm::sample_atom::value,
                              sbm::quality_sample{id, job, rate, "qa-1"});
  }
  caf::expected<speaker_view> get(const std::string& id) {
    return call<speaker_view>(self, shard, sbm::get_atom::value, id);
  }
  caf::expected<speaker_history> history(const std::string& id) {
    return call<speaker_history>(self, shard, sbm::history_atom::value, id);
  }
  caf::expected<speaker_view> pin(const std::string& id, const std::string& bucket,
                                  const std::string& reason) {
    return call<speaker_view>(self, shard, sbm::pin_atom::value,
                              sbm::bucket_pin{id, bucket, reason, "lead-1"});
  }
  caf::expected<speaker_view> unpin(const std::string& id, const std::string& reason) {
    return call<speaker_view>(self, shard, sbm::unpin_atom::value,
                              sbm::bucket_unpin{id, reason, "lead-2"});
  }
  sbm::speaker_shard_stats stats() {
    auto s = call<sbm::speaker_shard_stats>(self, shard, sbm::status_atom::value);
    EXPECT_TRUE(s);
    return s ? *s : sbm::speaker_shard_stats{};
  }
};

class SpeakerActor : public sbm::test::io_actor_test {
 protected:
  void SetUp() override {
    url = sbm::test::servers::shared().fresh_database();
    db = stop_at_end(start_postgres(sys, self, url));
  }

  speaker_client start(sp::speakers_settings s) {
    return speaker_client{self, stop_at_end(sp::spawn_speakers(sys, std::move(s)))};
  }
  speaker_client start() { return start(test_settings(db)); }

  // A speaker that is passivated soon after its last message, registered with one sample.
  speaker_client start_soon_idle(const std::string& id) {
    auto s = test_settings(db);
    s.idle_timeout = 300ms;
    auto c = start(s);
    EXPECT_TRUE(c.enrol(id));
    EXPECT_TRUE(c.sample(id, "job-1", 4.0));
    return c;
  }

  std::vector<sbm::db_row> sql(std::string text, std::vector<param> params = {}) {
    auto rows = call<sbm::db_rows>(self, db, sbm::query_atom::value,
                                   sbm::db_statement{std::move(text), std::move(params), -1});
    EXPECT_TRUE(rows) << sys.render(rows.error());
    return rows ? rows->rows : std::vector<sbm::db_row>{};
  }

  // Speakers on a pool of their own, so a lock held through `db` takes none of their workers.
  sp::speakers_settings own_pool_settings() {
    return test_settings(stop_at_end(start_postgres(sys, self, url, 4)));
  }

  void hold_lock(const std::string& table, const std::string& mode, double seconds) {
    ASSERT_TRUE(sbm::test::hold_table_lock(sys, db, table, mode, seconds))
      << "the lock on " << table << " was not taken";
  }

  // Sends every sample at once, each from its own requester; answers in arrival order.
  std::vector<caf::expected<speaker_view>> concurrently(const speaker_shard_actor& shard,
                                                        std::vector<sbm::quality_sample> samples) {
    caf::actor collector = caf::actor_cast<caf::actor>(self);
    for (auto& sample : samples)
      sys.spawn([=](caf::event_based_actor* requester) {
        requester->request(shard, answer_timeout, sbm::sample_atom::value, sample)
          .then([=](speaker_view& v) { caf::anon_send(collector, v); },
                [=](caf::error& e) { caf::anon_send(collector, e); });
      });
    std::vector<caf::expected<speaker_view>> out;
    for (std::size_t i = 0; i < samples.size(); ++i)
      self->receive([&](speaker_view& v) { out.emplace_back(std::move(v)); },
                    [&](caf::error& e) { out.emplace_back(std::move(e)); },
                    caf::after(answer_timeout) >> [&] { ADD_FAILURE() << "answers missing"; });
    return out;
  }

  sbm::request_context keyed(const std::string& key, const std::string& digest,
                             std::chrono::milliseconds budget = 20s) {
    sbm::request_context ctx;
    ctx.idempotency_key = key;
    ctx.request_digest = digest;
    ctx.principal = "qa-1";
    ctx.until = sbm::deadline::after(sys.clock().now(), budget);
    return ctx;
  }

  std::string url;
  sbm::postgres_actor db;
};

TEST_F(SpeakerActor, RegisterStartsInTheInitialBucketAndADuplicateIsAConflict) {
  auto c = start();
  auto v = c.enrol("spk-1");
  ASSERT_TRUE(v) << sys.render(v.error());
  EXPECT_EQ(v->speaker_id, "spk-1");
  EXPECT_EQ(v->client_id, "clinic-1");
  EXPECT_EQ(v->display_name, "Dr spk-1");
  EXPECT_EQ(v->bucket, "high_touch");
  EXPECT_FALSE(v->pinned);
  EXPECT_EQ(v->window_size, 0u);
  EXPECT_EQ(v->window_capacity, 5u);
  EXPECT_EQ(v->samples_total, 0u);
  EXPECT_GT(v->created_at_ms, 0);

  auto again = c.enrol("spk-1", "clinic-2");
  EXPECT_EQ(code(again), errc::duplicate);

  auto got = c.get("spk-1");
  ASSERT_TRUE(got);
  expect_same_state(*v, *got);
  auto h = c.history("spk-1");
  ASSERT_TRUE(h);
  ASSERT_EQ(h->entries.size(), 1u);
  EXPECT_EQ(h->entries[0].kind, "register");
  EXPECT_EQ(h->entries[0].previous_bucket, "");
  EXPECT_EQ(h->entries[0].new_bucket, "high_touch");
  EXPECT_EQ(h->entries[0].actor, "admin-1");
}

TEST_F(SpeakerActor, UnknownSpeakerIsNotFoundUntilRegistered) {
  auto c = start();
  EXPECT_EQ(code(c.get("ghost")), errc::not_found);
  EXPECT_EQ(code(c.sample("ghost", "job-1", 1.0)), errc::not_found);
  EXPECT_EQ(code(c.history("ghost")), errc::not_found);
  EXPECT_EQ(code(c.pin("ghost", "no_touch", "why")), errc::not_found);
  // The activation that found no row must not outlive the registration.
  ASSERT_TRUE(c.enrol("ghost"));
  auto v = c.get("ghost");
  ASSERT_TRUE(v) << sys.render(v.error());
  EXPECT_EQ(v->bucket, "high_touch");
  EXPECT_EQ(sql("SELECT count(*) FROM speakers.quality_samples")[0][0], param{"0"});
}

TEST_F(SpeakerActor, BadValuesAreRefusedWithTheFieldNamed) {
  auto c = start();
  ASSERT_TRUE(c.enrol("spk-1"));
  auto detail = [&](const auto& x) { return x ? std::string{} : sbm::detail_of(x.error()); };

  auto empty = c.enrol("");
  EXPECT_EQ(code(empty), errc::invalid_argument);
  EXPECT_NE(detail(empty).find("speaker_id"), std::string::npos) << detail(empty);
  EXPECT_EQ(code(c.enrol(std::string(129, 'x'))), errc::invalid_argument);
  EXPECT_EQ(code(c.enrol("bad\xff\xfe")), errc::invalid_argument);
  EXPECT_EQ(code(c.enrol("ok-id", "")), errc::invalid_argument);
  EXPECT_EQ(code(c.get(std::string(129, 'x'))), errc::invalid_argument);

  auto bucket = c.pin("spk-1", "No_Touch", "why");
  EXPECT_EQ(code(bucket), errc::invalid_argument);
  EXPECT_NE(detail(bucket).find("bucket"), std::string::npos) << detail(bucket);
  EXPECT_EQ(code(c.pin("spk-1", "no_touch", "")), errc::invalid_argument);
  auto rate = c.sample("spk-1", "job-1", -1.0);
  EXPECT_EQ(code(rate), errc::invalid_argument);
  EXPECT_NE(detail(rate).find("errors_per_100_words"), std::string::npos) << detail(rate);
  EXPECT_EQ(code(c.sample("spk-1", "job-1", std::nan(""))), errc::invalid_argument);
  EXPECT_EQ(code(c.sample("spk-1", "", 1.0)), errc::invalid_argument);

  auto v = c.get("spk-1");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->samples_total, 0u);
  EXPECT_EQ(sql("SELECT count(*) FROM speakers.speakers")[0][0], param{"1"});
}

TEST_F(SpeakerActor, PromotionWaitsForAFullWindowAndDemotionIsImmediate) {
  auto c = start();
  ASSERT_TRUE(c.enrol("spk-1"));
  // Four excellent jobs: the window (5) is not full, so no promotion yet.
  for (int i = 1; i <= 4; ++i) {
    auto v = c.sample("spk-1", "job-" + std::to_string(i), 1.0);
    ASSERT_TRUE(v) << sys.render(v.error());
    EXPECT_EQ(v->bucket, "high_touch") << "after sample " << i;
    EXPECT_EQ(v->window_size, static_cast<std::uint32_t>(i));
  }
  // The fifth fills it: high_touch -> no_touch in one step (three bands).
  auto promoted = c.sample("spk-1", "job-5", 1.0);
  ASSERT_TRUE(promoted);
  EXPECT_EQ(promoted->bucket, "no_touch");
  EXPECT_EQ(promoted->bucket_changes, 1u);
  EXPECT_DOUBLE_EQ(promoted->window_mean, 1.0);
  // One bad job lifts the mean to (4 * 1 + 30) / 5 = 6.8: demoted at once to medium_touch.
  auto demoted = c.sample("spk-1", "job-6", 30.0);
  ASSERT_TRUE(demoted);
  EXPECT_EQ(demoted->bucket, "medium_touch");
  EXPECT_NEAR(demoted->window_mean, 6.8, 1e-6);
  EXPECT_EQ(demoted->samples_total, 6u);
  EXPECT_EQ(demoted->bucket_changes, 2u);

  auto h = c.history("spk-1");
  ASSERT_TRUE(h);
  ASSERT_EQ(h->entries.size(), 3u);
  EXPECT_EQ(h->entries[0].kind, "register");
  EXPECT_EQ(h->entries[1].kind, "policy");
  EXPECT_EQ(h->entries[1].previous_bucket, "high_touch");
  EXPECT_EQ(h->entries[1].new_bucket, "no_touch");
  EXPECT_EQ(h->entries[1].reason.rfind("promoted:", 0), 0u) << h->entries[1].reason;
  EXPECT_EQ(h->entries[1].actor, "qa-1");
  EXPECT_EQ(h->entries[2].kind, "policy");
  EXPECT_EQ(h->entries[2].previous_bucket, "no_touch");
  EXPECT_EQ(h->entries[2].new_bucket, "medium_touch");
  EXPECT_EQ(h->entries[2].reason.rfind("demoted:", 0), 0u) << h->entries[2].reason;
  EXPECT_LT(h->entries[1].id, h->entries[2].id);
  EXPECT_GT(h->entries[2].at_ms, 0);

  // Each change left exactly one outbox row, with the change in it.
  auto outbox = sql("SELECT payload->>'previous_bucket', payload->>'new_bucket', topic "
                    "FROM speakers.outbox ORDER BY id");
  ASSERT_EQ(outbox.size(), 2u);
  EXPECT_EQ(outbox[0], (sbm::db_row{param{"high_touch"}, param{"no_touch"},
                                    param{"speaker.bucket.changed"}}));
  EXPECT_EQ(outbox[1], (sbm::db_row{param{"no_touch"}, param{"medium_touch"},
                                    param{"speaker.bucket.changed"}}));
}

TEST_F(SpeakerActor, APinHoldsTheBucketAndUnpinAppliesThePolicyAgain) {
  auto c = start();
  ASSERT_TRUE(c.enrol("spk-1"));
  EXPECT_EQ(code(c.unpin("spk-1", "nothing to unpin")), errc::conflict);

  auto pinned = c.pin("spk-1", "no_touch", "trusted dictation");
  ASSERT_TRUE(pinned) << sys.render(pinned.error());
  EXPECT_EQ(pinned->bucket, "no_touch");
  EXPECT_TRUE(pinned->pinned);
  EXPECT_EQ(pinned->pin_reason, "trusted dictation");
  EXPECT_EQ(pinned->pinned_by, "lead-1");
  EXPECT_GT(pinned->pinned_at_ms, 0);
  // Poor samples while pinned are recorded but move nothing.
  for (int i = 1; i <= 5; ++i) {
    auto v = c.sample("spk-1", "job-" + std::to_string(i), 20.0);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->bucket, "no_touch");
  }
  // Unpinned, the window (mean 20) is far above no_touch's band: demoted at once.
  auto unpinned = c.unpin("spk-1", "review finished");
  ASSERT_TRUE(unpinned) << sys.render(unpinned.error());
  EXPECT_FALSE(unpinned->pinned);
  EXPECT_EQ(unpinned->pin_reason, "");
  EXPECT_EQ(unpinned->pinned_at_ms, 0);
  EXPECT_EQ(unpinned->bucket, "high_touch");
  EXPECT_EQ(unpinned->bucket_changes, 2u);

  auto h = c.history("spk-1");
  ASSERT_TRUE(h);
  ASSERT_EQ(h->entries.size(), 4u);
  EXPECT_EQ(h->entries[1].kind, "pin");
  EXPECT_EQ(h->entries[1].previous_bucket, "high_touch");
  EXPECT_EQ(h->entries[1].new_bucket, "no_touch");
  EXPECT_EQ(h->entries[1].reason, "trusted dictation");
  EXPECT_EQ(h->entries[1].actor, "lead-1");
  EXPECT_EQ(h->entries[2].kind, "unpin");
  EXPECT_EQ(h->entries[2].previous_bucket, "no_touch");
  EXPECT_EQ(h->entries[2].new_bucket, "no_touch");
  EXPECT_EQ(h->entries[2].reason, "review finished");
  EXPECT_EQ(h->entries[2].actor, "lead-2");
  EXPECT_EQ(h->entries[3].kind, "policy");
  EXPECT_EQ(h->entries[3].previous_bucket, "no_touch");
  EXPECT_EQ(h->entries[3].new_bucket, "high_touch");

  // A pin to the bucket the speaker already has is audited but is no bucket change.
  auto same = c.pin("spk-1", "high_touch", "keep an eye on it");
  ASSERT_TRUE(same);
  EXPECT_EQ(same->bucket_changes, 2u);
  EXPECT_EQ(sql("SELECT count(*) FROM speakers.outbox WHERE topic = 'speaker.bucket.changed'")[0][0],
            param{"2"});
  EXPECT_EQ(sql("SELECT count(*) FROM speakers.bucket_history WHERE kind = 'pin'")[0][0],
            param{"2"});
  // Every pin and unpin left its audit entry in the same transaction as the change.
  EXPECT_EQ(sql("SELECT payload->>'action', payload->>'actor' FROM speakers.outbox "
                "WHERE topic = 'audit.record' ORDER BY id"),
            (std::vector<sbm::db_row>{{param{"bucket.pin"}, param{"lead-1"}},
                                      {param{"bucket.unpin"}, param{"lead-2"}},
                                      {param{"bucket.pin"}, param{"lead-1"}}}));
}

TEST_F(SpeakerActor, AStampedReadCarriesTheViewOnlyWhenTheStampMoved) {
  auto c = start();
  ASSERT_TRUE(c.enrol("spk-1"));
  auto env = caf::make_counted<sp::speaker_env>();
  env->store = sp::make_postgres_store();
  env->db = db;
  env->policy.window_size = 5;
  auto speaker = sp::spawn_speaker(sys, env, "spk-1");
  auto first = call<sbm::speaker_read>(self, speaker, sbm::get_atom::value, sbm::speaker_stamp{});
  ASSERT_TRUE(first) << sys.render(first.error());
  EXPECT_TRUE(first->changed) << "a reader that holds nothing gets the view";
  expect_same_state(first->view, *c.get("spk-1"));
  EXPECT_NE(first->stamp.activation, 0u);

  auto same = call<sbm::speaker_read>(self, speaker, sbm::get_atom::value, first->stamp);
  ASSERT_TRUE(same);
  EXPECT_FALSE(same->changed);
  EXPECT_EQ(same->stamp, first->stamp);
  EXPECT_EQ(same->view.speaker_id, "") << "an unchanged speaker sends no view";

  auto pinned = call<speaker_view>(self, speaker, sbm::pin_atom::value,
                                   sbm::bucket_pin{"spk-1", "no_touch", "trusted", "lead-1"});
  ASSERT_TRUE(pinned) << sys.render(pinned.error());
  auto after = call<sbm::speaker_read>(self, speaker, sbm::get_atom::value, first->stamp);
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->changed) << "a write moves the stamp";
  EXPECT_NE(after->stamp, first->stamp);
  expect_same_state(after->view, *pinned);

  // Another activation of the same row at the same version has a stamp of its own.
  auto other = sp::spawn_speaker(sys, env, "spk-1");
  auto elsewhere = call<sbm::speaker_read>(self, other, sbm::get_atom::value, after->stamp);
  ASSERT_TRUE(elsewhere);
  EXPECT_TRUE(elsewhere->changed);
  EXPECT_NE(elsewhere->stamp, after->stamp);
  expect_same_state(elsewhere->view, after->view);
  caf::anon_send_exit(speaker, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(other, caf::exit_reason::user_shutdown);
}

TEST_F(SpeakerActor, ADuplicateJobIsRefusedAsADuplicateAndChangesNothing) {
  auto c = start();
  ASSERT_TRUE(c.enrol("spk-1"));
  auto first = c.sample("spk-1", "job-1", 3.0);
  ASSERT_TRUE(first);
  auto dup = c.sample("spk-1", "job-1", 9.0);
  // A duplicate is not a version conflict: the client must not retry it.
  EXPECT_EQ(code(dup), errc::duplicate);
  auto v = c.get("spk-1");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->samples_total, 1u);
  EXPECT_EQ(v->window_size, 1u);
  EXPECT_DOUBLE_EQ(v->window_mean, 3.0);
  // The same job id for another speaker is a different job.
  ASSERT_TRUE(c.enrol("spk-2"));
  EXPECT_TRUE(c.sample("spk-2", "job-1", 9.0));
  // And writes go on normally after the conflict.
  auto next = c.sample("spk-1", "job-2", 5.0);
  ASSERT_TRUE(next) << sys.render(next.error());
  EXPECT_EQ(next->samples_total, 2u);
}

TEST_F(SpeakerActor, ARetryUnderTheSameKeyGetsTheFirstAnswerAndWritesNothing) {
  auto c = start();
  sbm::speaker_registration reg{"spk-1", "clinic-1", "Dr One", "admin-1", keyed("reg-1", "d-reg")};
  auto first = call<speaker_view>(self, c.shard, sbm::register_atom::value, reg);
  ASSERT_TRUE(first) << sys.render(first.error());
  // The same registration again: the stored answer, not a duplicate.
  auto again = call<speaker_view>(self, c.shard, sbm::register_atom::value, reg);
  ASSERT_TRUE(again) << sys.render(again.error());
  expect_same_state(*first, *again);

  sbm::quality_sample sample{"spk-1", "job-1", 3.0, "qa-1", keyed("s-1", "d-s1")};
  auto counted = call<speaker_view>(self, c.shard, sbm::sample_atom::value, sample);
  ASSERT_TRUE(counted) << sys.render(counted.error());
  ASSERT_TRUE(c.sample("spk-1", "job-2", 7.0));  // the speaker moves on meanwhile
  auto replayed = call<speaker_view>(self, c.shard, sbm::sample_atom::value, sample);
  ASSERT_TRUE(replayed) << sys.render(replayed.error());
  expect_same_state(*counted, *replayed);  // what the first attempt answered, not today's state
  EXPECT_EQ(replayed->samples_total, 1u);

  // The same key with another request is refused; nothing is written.
  auto other = sample;
  other.job_id = "job-3";
  other.ctx.request_digest = "d-other";
  EXPECT_EQ(code(call<speaker_view>(self, c.shard, sbm::sample_atom::value, other)),
            errc::key_reused);
  // Keys belong to their principal: another one may use the same key for its own request.
  auto theirs = other;
  theirs.ctx.principal = "qa-2";
  EXPECT_TRUE(call<speaker_view>(self, c.shard, sbm::sample_atom::value, theirs));

  auto v = c.get("spk-1");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->samples_total, 3u);
  EXPECT_EQ(sql("SELECT count(*) FROM speakers.quality_samples")[0][0], param{"3"});
  EXPECT_EQ(sql("SELECT count(*) FROM speakers.idempotency_keys")[0][0], param{"3"});

  // A pin retried after it committed answers the pin, and audits it once.
  sbm::bucket_pin pin{"spk-1", "no_touch", "trusted", "lead-1", {}, keyed("p-1", "d-p1")};
  auto pinned = call<speaker_view>(self, c.shard, sbm::pin_atom::value, pin);
  ASSERT_TRUE(pinned) << sys.render(pinned.error());
  auto repinned = call<speaker_view>(self, c.shard, sbm::pin_atom::value, pin);
  ASSERT_TRUE(repinned) << sys.render(repinned.error());
  expect_same_state(*pinned, *repinned);
  EXPECT_EQ(sql("SELECT count(*) FROM speakers.outbox WHERE topic = 'audit.record'")[0][0],
            param{"1"});
  // An unpin retried after it committed answers the unpin, not "not pinned".
  sbm::bucket_unpin unpin{"spk-1", "done", "lead-1", {}, keyed("u-1", "d-u1")};
  auto unpinned = call<speaker_view>(self, c.shard, sbm::unpin_atom::value, unpin);
  ASSERT_TRUE(unpinned) << sys.render(unpinned.error());
  auto reunpinned = call<speaker_view>(self, c.shard, sbm::unpin_atom::value, unpin);
  ASSERT_TRUE(reunpinned) << sys.render(reunpinned.error());
  expect_same_state(*unpinned, *reunpinned);
}

TEST_F(SpeakerActor, ARetryWhileTheFirstAttemptStillRunsIsToldToComeBack) {
  auto c = start(own_pool_settings());
  ASSERT_TRUE(c.enrol("spk-1"));
  hold_lock("speakers.quality_samples", "SHARE", 1.5);
  sbm::quality_sample sample{"spk-1", "job-1", 3.0, "qa-1", keyed("k", "d")};
  auto answers = concurrently(c.shard, {sample, sample});
  ASSERT_EQ(answers.size(), 2u);
  // The retry arrives while the first waits for the lock: 409 with a Retry-After, no second write.
  EXPECT_EQ(code(answers[0]), errc::in_progress);
  ASSERT_TRUE(sbm::retry_after_of(answers[0].error()));
  ASSERT_TRUE(answers[1]) << sys.render(answers[1].error());
  EXPECT_EQ(answers[1]->samples_total, 1u);
  // Once it finished, the same retry gets the stored answer.
  auto later = call<speaker_view>(self, c.shard, sbm::sample_atom::value, sample);
  ASSERT_TRUE(later) << sys.render(later.error());
  EXPECT_EQ(later->samples_total, 1u);
}

TEST_F(SpeakerActor, AWriteWhoseOutcomeWasUnknownDoesNotMakeTheNextOneAConflict) {
  auto settings = own_pool_settings();
  settings.db_timeout = 300ms;  // work without a deadline gives up on the database after this
  auto c = start(settings);
  // The set-up carries deadlines, so the short timeout cannot fail it on a loaded machine.
  ASSERT_TRUE(call<speaker_view>(self, c.shard, sbm::register_atom::value,
                                 sbm::speaker_registration{"spk-1", "clinic-1", "Dr", "admin-1",
                                                           keyed("", "")}));
  ASSERT_TRUE(call<speaker_view>(self, c.shard, sbm::sample_atom::value,
                                 sbm::quality_sample{"spk-1", "job-0", 1.0, "qa-1", keyed("", "")}));
  hold_lock("speakers.quality_samples", "SHARE", 1.5);
  // No deadline: the speaker stops waiting after 300 ms while the transaction waits for the lock
  // and commits once it is released. The client is told so, not that it failed.
  auto unknown = c.sample("spk-1", "job-1", 2.0);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(code(unknown), errc::outcome_unknown) << sys.render(unknown.error());
  // The next legitimate sample is accepted, although the first one moved the version under it.
  sbm::quality_sample next{"spk-1", "job-2", 3.0, "qa-1", keyed("next", "d-next")};
  auto accepted = call<speaker_view>(self, c.shard, sbm::sample_atom::value, next);
  ASSERT_TRUE(accepted) << sys.render(accepted.error());
  EXPECT_EQ(accepted->samples_total, 3u);
  EXPECT_EQ(sql("SELECT count(*) FROM speakers.quality_samples")[0][0], param{"3"});
}

TEST_F(SpeakerActor, WorkIsBoundedPerSpeakerAndDroppedOnceItsDeadlinePassed) {
  auto settings = own_pool_settings();
  settings.max_queued_per_speaker = 2;
  auto c = start(settings);
  ASSERT_TRUE(c.enrol("spk-1"));
  ASSERT_TRUE(c.sample("spk-1", "job-0", 1.0));
  hold_lock("speakers.quality_samples", "SHARE", 1.5);
  std::vector<sbm::quality_sample> burst;
  for (int i = 1; i <= 4; ++i)
    burst.push_back({"spk-1", "job-" + std::to_string(i), 1.0, "qa-1", keyed("b" + std::to_string(i), "d")});
  auto answers = concurrently(c.shard, burst);
  int accepted = 0, refused = 0;
  for (auto& a : answers) {
    if (a) {
      ++accepted;
    } else {
      EXPECT_EQ(code(a), errc::overloaded) << sys.render(a.error());
      EXPECT_TRUE(sbm::retry_after_of(a.error()));
      ++refused;
    }
  }
  EXPECT_EQ(accepted, 2);
  EXPECT_EQ(refused, 2);
  // Refused work wrote nothing.
  EXPECT_EQ(sql("SELECT count(*) FROM speakers.quality_samples")[0][0], param{"3"});

  // Work whose caller has stopped waiting is not started.
  sbm::quality_sample late{"spk-1", "job-9", 1.0, "qa-1", keyed("late", "d", 0ms)};
  EXPECT_EQ(code(call<speaker_view>(self, c.shard, sbm::sample_atom::value, late)),
            errc::deadline_exceeded);
  EXPECT_EQ(sql("SELECT count(*) FROM speakers.quality_samples WHERE job_id = 'job-9'")[0][0],
            param{"0"});
}

TEST_F(SpeakerActor, AMaximalPairOfTextsDelaysNoOtherRequest) {
  auto c = start();
  ASSERT_TRUE(c.enrol("spk-big"));
  ASSERT_TRUE(c.enrol("spk-small"));
  // Two unrelated texts at the word cap: the most a client can make SBM measure.
  std::string delivered, verified;
  for (std::uint32_t i = 0; i < sp::max_quality_words; ++i) {
    delivered += "d" + std::to_string(i) + " ";
    verified += "v" + std::to_string(i) + " ";
  }
  sbm::quality_sample big{"spk-big", "job-big", 0, "qa-1"};
  big.from_texts = true;
  big.delivered_text = delivered;
  big.verified_text = verified;
  caf::actor collector = caf::actor_cast<caf::actor>(self);
  auto shard = c.shard;
  sys.spawn([=](caf::event_based_actor* requester) {
    requester->request(shard, answer_timeout, sbm::sample_atom::value, big)
      .then([=](speaker_view& v) { caf::anon_send(collector, std::string{"big"}, v.window_mean); },
            [=](caf::error&) { caf::anon_send(collector, std::string{"big failed"}, 0.0); });
  });
  // Sent after it, to another speaker: answered first, because the measure runs elsewhere.
  sys.spawn([=](caf::event_based_actor* requester) {
    requester->request(shard, answer_timeout, sbm::get_atom::value, std::string{"spk-small"})
      .then([=](speaker_view&) { caf::anon_send(collector, std::string{"small"}, 0.0); },
            [=](caf::error&) { caf::anon_send(collector, std::string{"small failed"}, 0.0); });
  });
  std::vector<std::string> order;
  double big_rate = 0;
  for (int i = 0; i < 2; ++i)
    self->receive(
      [&](const std::string& who, double rate) {
        order.push_back(who);
        if (who == "big") big_rate = rate;
      },
      caf::after(answer_timeout) >> [] { ADD_FAILURE() << "no answer"; });
  EXPECT_EQ(order, (std::vector<std::string>{"small", "big"}));
  EXPECT_GE(big_rate, 50.0);  // past the exact range: a lower bound, deep in high_touch

  // One word more than the cap is refused without measuring.
  big.job_id = "job-too-big";
  big.verified_text += "extra";
  EXPECT_EQ(code(call<speaker_view>(self, c.shard, sbm::sample_atom::value, big)), errc::too_large);
}

TEST_F(SpeakerActor, MeasurementsPastTheirBoundAreRefusedAtOnce) {
  auto settings = test_settings(db);
  settings.measurers = 1;
  settings.max_measuring = 1;
  auto c = start(settings);
  ASSERT_TRUE(c.enrol("spk-m"));
  std::string delivered, verified;
  for (std::uint32_t i = 0; i < sp::max_quality_words; ++i) {
    delivered += "d" + std::to_string(i) + " ";
    verified += "v" + std::to_string(i) + " ";
  }
  std::vector<sbm::quality_sample> two;
  for (auto job : {"m-1", "m-2"}) {
    sbm::quality_sample s{"spk-m", job, 0, "qa-1"};
    s.from_texts = true;
    s.delivered_text = delivered;
    s.verified_text = verified;
    two.push_back(std::move(s));
  }
  auto answers = concurrently(c.shard, two);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(code(answers[0]), errc::overloaded);  // at once, while the other is measured
  EXPECT_TRUE(answers[1]) << (answers[1] ? "" : sys.render(answers[1].error()));
}

TEST_F(SpeakerActor, HundredsOfConcurrentSamplesSerialiseExactly) {
  auto settings = test_settings(db);
  settings.max_queued_per_speaker = 300;  // all of them may wait
  auto c = start(settings);
  ASSERT_TRUE(c.enrol("busy"));
  constexpr int n = 300;
  caf::actor collector = caf::actor_cast<caf::actor>(self);
  auto shard = c.shard;
  // Alternating runs of good and poor jobs, so the policy moves the bucket many times.
  auto rate_of = [](int i) { return (i / 7) % 2 == 0 ? 0.5 : 12.0; };
  for (int i = 0; i < n; ++i) {
    sys.spawn([=](caf::event_based_actor* requester) {
      requester->request(shard, answer_timeout, sbm::sample_atom::value,
                         sbm::quality_sample{"busy", "job-" + std::to_string(i), rate_of(i), "qa"})
        .then([=](speaker_view&) { caf::anon_send(collector, true); },
              [=](caf::error&) { caf::anon_send(collector, false); });
    });
  }
  int ok = 0;
  for (int i = 0; i < n; ++i)
    self->receive([&](bool accepted) { ok += accepted ? 1 : 0; },
                  caf::after(answer_timeout) >> [&] { ADD_FAILURE() << "answers missing"; });
  EXPECT_EQ(ok, n);

  auto v = c.get("busy");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->samples_total, static_cast<std::uint64_t>(n));
  // Replay the committed order through the pure policy: memory, the row and the history must all
  // be what strictly serialised writes produce.
  auto rows = sql("SELECT errors_per_100_words FROM speakers.quality_samples "
                  "WHERE speaker_id = 'busy' ORDER BY id");
  ASSERT_EQ(rows.size(), static_cast<std::size_t>(n));
  sp::bucket_policy_config policy;
  policy.window_size = 5;
  sp::quality_window window{5};
  sp::bucket current = sp::bucket::high_touch;
  std::vector<std::pair<std::string, std::string>> changes;
  for (const auto& row : rows) {
    window.push(std::stod(*row[0]));
    auto d = sp::evaluate(policy, current, window, false);
    if (d.changed)
      changes.emplace_back(std::string(sp::to_string(current)), std::string(sp::to_string(d.next)));
    current = d.next;
  }
  EXPECT_EQ(v->bucket, sp::to_string(current));
  EXPECT_DOUBLE_EQ(v->window_mean, window.mean());
  EXPECT_EQ(v->window_size, 5u);
  EXPECT_EQ(v->bucket_changes, changes.size());
  EXPECT_GT(changes.size(), 2u);
  auto history = sql("SELECT previous_bucket, new_bucket FROM speakers.bucket_history "
                     "WHERE speaker_id = 'busy' AND kind = 'policy' ORDER BY id");
  ASSERT_EQ(history.size(), changes.size());
  for (std::size_t i = 0; i < changes.size(); ++i) {
    EXPECT_EQ(*history[i][0], changes[i].first) << "change " << i;
    EXPECT_EQ(*history[i][1], changes[i].second) << "change " << i;
  }
  auto row = sql("SELECT samples_total, bucket_changes, version, bucket FROM speakers.speakers "
                 "WHERE speaker_id = 'busy'");
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(row[0][0], param{std::to_string(n)});
  EXPECT_EQ(row[0][1], param{std::to_string(changes.size())});
  EXPECT_EQ(row[0][2], param{std::to_string(n)});
  EXPECT_EQ(row[0][3], param{v->bucket});
}

TEST_F(SpeakerActor, AnIdleSpeakerIsPassivatedAndComesBackWithTheSameState) {
  auto c = start_soon_idle("spk-1");
  ASSERT_TRUE(c.pin("spk-1", "low_touch", "pilot"));
  auto before = c.get("spk-1");
  ASSERT_TRUE(before);
  EXPECT_EQ(c.stats().active, 1u);

  ASSERT_TRUE(sbm::test::eventually([&] { return c.stats().active == 0; }, 10s))
    << "the idle speaker was not passivated";
  auto st = c.stats();
  EXPECT_EQ(st.passivations, 1u);
  EXPECT_EQ(st.activations, 1u);
  EXPECT_EQ(st.failures, 0u);

  auto after = c.get("spk-1");
  ASSERT_TRUE(after) << sys.render(after.error());
  expect_same_state(*before, *after);
  EXPECT_EQ(c.stats().activations, 2u);
  // And it keeps working from the reloaded state.
  auto next = c.sample("spk-1", "job-2", 6.0);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->samples_total, 2u);
  EXPECT_DOUBLE_EQ(next->window_mean, 5.0);
}

// A caller that remembers where a speaker answered from (messages/speaker_locations.hpp), as an
// event-based actor: (get_atom, id) reads through sbm::read_speaker; (status_atom, id) tells the
// activation it would try first (invalid when none).
struct remembering_reader_state {
  sbm::speaker_locations where{16};
};

caf::behavior remembering_reader(caf::stateful_actor<remembering_reader_state>* self,
                                 speaker_shard_actor shard) {
  return {
    [self, shard](sbm::get_atom, const std::string& id) {
      auto rp = self->make_response_promise();
      sbm::read_speaker(self, self->state.where, shard, id, caf::duration{answer_timeout},
                        [rp](speaker_view& v) mutable { rp.deliver(std::move(v)); },
                        [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    },
    [self](sbm::status_atom, const std::string& id) {
      return caf::actor_cast<caf::actor_addr>(self->state.where.find(id));
    },
  };
}

TEST_F(SpeakerActor, ARememberedActivationThatPassivatedFallsBackToTheShardAndStillAnswers) {
  auto c = start_soon_idle("spk-1");
  auto reader = stop_at_end(sys.spawn(remembering_reader, c.shard));
  auto read = [&] { return call<speaker_view>(self, reader, sbm::get_atom::value, std::string{"spk-1"}); };
  auto remembered = [&] {
    auto addr = call<caf::actor_addr>(self, reader, sbm::status_atom::value, std::string{"spk-1"});
    EXPECT_TRUE(addr);
    return addr ? *addr : caf::actor_addr{};
  };

  // The shard answers the first read of an activation itself; later ones come from the activation.
  ASSERT_TRUE(sbm::test::eventually([&] { return read() && static_cast<bool>(remembered()); }, 10s))
    << "the reader never learnt where spk-1 lives";
  auto before = read();
  ASSERT_TRUE(before);
  EXPECT_EQ(before->samples_total, 1u);
  // Held strongly, so the remembered handle still upgrades after the activation stopped: the
  // read below reaches a stopped actor and is bounced, the case a weak handle alone cannot show.
  auto gone = caf::actor_cast<caf::actor>(remembered());
  ASSERT_TRUE(gone);

  ASSERT_TRUE(sbm::test::eventually([&] { return c.stats().active == 0; }, 10s))
    << "the idle speaker was not passivated";
  EXPECT_EQ(c.stats().passivations, 1u);

  auto after = read();
  ASSERT_TRUE(after) << sys.render(after.error());
  expect_same_state(*before, *after);
  EXPECT_EQ(c.stats().activations, 2u);
  EXPECT_NE(remembered(), gone.address()) << "the stopped activation is still remembered";

  // Nothing but the shard holds the next activation: once it stops, the reader's weak handle no
  // longer upgrades and the read goes to the shard without a bounce.
  gone = nullptr;
  ASSERT_TRUE(sbm::test::eventually([&] { return read() && static_cast<bool>(remembered()); }, 10s));
  ASSERT_TRUE(sbm::test::eventually([&] { return c.stats().active == 0; }, 10s));
  auto again = read();
  ASSERT_TRUE(again) << sys.render(again.error());
  expect_same_state(*before, *again);
  EXPECT_EQ(c.stats().activations, 3u);
}

TEST_F(SpeakerActor, MessagesDuringAHandOffAreNotLost) {
  // Idle almost at once: messages keep arriving while activations retire, and every one of them
  // must be answered, in order per requester, by some activation.
  auto s = test_settings(db);
  s.idle_timeout = 1ms;
  auto c = start(s);
  ASSERT_TRUE(c.enrol("spk-1"));
  for (int i = 0; i < 40; ++i) {
    auto v = c.sample("spk-1", "job-" + std::to_string(i), 3.0);
    ASSERT_TRUE(v) << "sample " << i << ": " << sys.render(v.error());
    EXPECT_EQ(v->samples_total, static_cast<std::uint64_t>(i + 1));
  }
  EXPECT_GT(c.stats().passivations, 0u);
}

TEST_F(SpeakerActor, ANewActorSystemOnTheSameDatabaseShowsTheSameState) {
  speaker_view before;
  sbm::speaker_history history_before;
  {
    sbm::test::io_config cfg2;
    caf::actor_system sys2{cfg2};
    caf::scoped_actor self2{sys2};
    auto pg2 = start_postgres(sys2, self2, url);
    auto shard2 = sp::spawn_speakers(sys2, test_settings(pg2));
    speaker_client c{self2, shard2};
    ASSERT_TRUE(c.enrol("spk-1"));
    for (int i = 1; i <= 5; ++i) ASSERT_TRUE(c.sample("spk-1", "job-" + std::to_string(i), 3.0));
    ASSERT_TRUE(c.pin("spk-1", "medium_touch", "audit"));
    ASSERT_TRUE(c.sample("spk-1", "job-6", 1.0));
    auto v = c.get("spk-1");
    ASSERT_TRUE(v);
    before = *v;
    auto h = c.history("spk-1");
    ASSERT_TRUE(h);
    history_before = *h;
    self2->send_exit(shard2, caf::exit_reason::user_shutdown);
    self2->send_exit(pg2, caf::exit_reason::user_shutdown);
    self2->wait_for(shard2, pg2);
  }  // the first system is gone entirely
  EXPECT_EQ(before.bucket, "medium_touch");
  EXPECT_EQ(before.samples_total, 6u);

  auto c = start();
  auto after = c.get("spk-1");
  ASSERT_TRUE(after) << sys.render(after.error());
  expect_same_state(before, *after);
  auto h = c.history("spk-1");
  ASSERT_TRUE(h);
  ASSERT_EQ(h->entries.size(), history_before.entries.size());
  for (std::size_t i = 0; i < h->entries.size(); ++i) {
    EXPECT_EQ(h->entries[i].id, history_before.entries[i].id);
    EXPECT_EQ(h->entries[i].kind, history_before.entries[i].kind);
    EXPECT_EQ(h->entries[i].new_bucket, history_before.entries[i].new_bucket);
    EXPECT_EQ(h->entries[i].at_ms, history_before.entries[i].at_ms);
  }
}

TEST_F(SpeakerActor, ASpeakerThatKeepsFailingIsRefusedAsPoisonForACoolDown) {
  auto s = test_settings(db);
  s.speaker_restarts = sbm::resilience::restart_limit{2, 60s};
  s.poison_cooldown = 1500ms;
  auto c = start(s);
  ASSERT_TRUE(c.enrol("fragile"));
  ASSERT_TRUE(c.enrol("healthy"));
  // Corrupt durable state: the speaker's load throws, the actor dies with the error.
  sql("ALTER TABLE speakers.speakers DROP CONSTRAINT speakers_bucket_check");
  sql("UPDATE speakers.speakers SET bucket = 'bogus' WHERE speaker_id = 'fragile'");

  errc last = errc::none;
  int attempts = 0;
  while (attempts < 20) {
    ++attempts;
    last = code(c.get("fragile"));
    // A get held by the actor as it died is answered outcome-unknown (the shard cannot tell what
    // a dead actor did with it); for a read that is as retryable as unavailable.
    if (last != errc::unavailable && last != errc::outcome_unknown) break;
  }
  EXPECT_EQ(last, errc::poison_message) << "after " << attempts << " attempts";
  // Two restarts are allowed in the period; the third failure exceeds it.
  EXPECT_EQ(c.stats().failures, 3u);
  EXPECT_EQ(code(c.sample("fragile", "job-1", 1.0)), errc::poison_message);
  // Other speakers are not affected.
  auto healthy = c.get("healthy");
  ASSERT_TRUE(healthy);
  EXPECT_EQ(healthy->bucket, "high_touch");

  // Repaired, it is served again once the cool-down is over.
  sql("UPDATE speakers.speakers SET bucket = 'low_touch' WHERE speaker_id = 'fragile'");
  ASSERT_TRUE(sbm::test::eventually([&] { return code(c.get("fragile")) == errc::none; }, 10s));
  auto v = c.get("fragile");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->bucket, "low_touch");
}

TEST_F(SpeakerActor, ListPagesByCursorWithFilters) {
  auto c = start();
  for (int i = 0; i < 7; ++i) {
    const std::string id = "spk-" + std::to_string(i);
    ASSERT_TRUE(c.enrol(id, i % 2 == 0 ? "clinic-a" : "clinic-b"));
  }
  ASSERT_TRUE(c.pin("spk-2", "no_touch", "x"));
  ASSERT_TRUE(c.pin("spk-5", "no_touch", "x"));

  auto list = [&](sbm::speaker_query q) {
    return call<sbm::speaker_page>(self, c.shard, sbm::list_atom::value, std::move(q));
  };
  std::vector<std::string> seen;
  sbm::speaker_query q;
  q.limit = 3;
  for (int page = 0; page < 5; ++page) {
    auto p = list(q);
    ASSERT_TRUE(p) << sys.render(p.error());
    for (auto& item : p->items) seen.push_back(item.speaker_id);
    if (p->next_cursor.empty()) break;
    EXPECT_EQ(p->items.size(), 3u);
    q.cursor = p->next_cursor;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"spk-0", "spk-1", "spk-2", "spk-3", "spk-4", "spk-5",
                                            "spk-6"}));

  auto pinned = list(sbm::speaker_query{"no_touch", "", 50, ""});
  ASSERT_TRUE(pinned);
  ASSERT_EQ(pinned->items.size(), 2u);
  EXPECT_EQ(pinned->items[0].speaker_id, "spk-2");
  EXPECT_TRUE(pinned->items[0].pinned);
  EXPECT_EQ(pinned->items[1].speaker_id, "spk-5");
  EXPECT_TRUE(pinned->next_cursor.empty());

  auto both = list(sbm::speaker_query{"no_touch", "clinic-b", 50, ""});
  ASSERT_TRUE(both);
  ASSERT_EQ(both->items.size(), 1u);
  EXPECT_EQ(both->items[0].speaker_id, "spk-5");

  auto clinic_a = list(sbm::speaker_query{"", "clinic-a", 0, ""});  // limit 0 is clamped to 1
  ASSERT_TRUE(clinic_a);
  ASSERT_EQ(clinic_a->items.size(), 1u);
  EXPECT_EQ(clinic_a->next_cursor, "spk-0");

  EXPECT_EQ(code(list(sbm::speaker_query{"best", "", 10, ""})), errc::invalid_argument);
  EXPECT_EQ(code(list(sbm::speaker_query{"", "", 10, std::string(200, 'z')})),
            errc::invalid_argument);
}

// PostgreSQL going away: writes are refused as unavailable and not acknowledged, an active
// speaker still answers reads from memory, and everything resumes when the database is back.
class SpeakerOutage : public sbm::test::io_actor_test {
 protected:
  // A member, so it outlives TearDown: the actors stop before their servers go away.
  std::unique_ptr<sbm::test::servers> srv = sbm::test::servers::start_private();
};

TEST_F(SpeakerOutage, WritesAreUnavailableAndReadsComeFromMemoryWhilePostgresIsDown) {
  auto db = stop_at_end(start_postgres(sys, self, srv->fresh_database()));
  speaker_client c{self, stop_at_end(sp::spawn_speakers(sys, test_settings(db)))};
  ASSERT_TRUE(c.enrol("spk-1"));
  ASSERT_TRUE(c.sample("spk-1", "job-1", 2.5));
  auto before = c.get("spk-1");
  ASSERT_TRUE(before);

  srv->stop_postgres();
  auto write = c.sample("spk-1", "job-2", 50.0);
  EXPECT_EQ(code(write), errc::unavailable) << (write ? "acknowledged" : sys.render(write.error()));
  EXPECT_EQ(code(c.pin("spk-1", "no_touch", "during outage")), errc::unavailable);
  EXPECT_EQ(code(c.enrol("spk-2")), errc::unavailable);
  auto during = c.get("spk-1");
  ASSERT_TRUE(during) << sys.render(during.error());
  expect_same_state(*before, *during);

  srv->start_postgres();
  caf::expected<speaker_view> retried{caf::error{}};
  ASSERT_TRUE(sbm::test::eventually(
    [&] {
      retried = c.sample("spk-1", "job-2", 50.0);
      return code(retried) != errc::unavailable;
    },
    60s, 200ms));
  ASSERT_TRUE(retried) << sys.render(retried.error());
  EXPECT_EQ(retried->samples_total, 2u);
  EXPECT_EQ(retried->bucket, "high_touch");
  EXPECT_NEAR(retried->window_mean, 26.25, 1e-6);
  auto count = call<sbm::db_rows>(
    self, db, sbm::query_atom::value,
    sbm::db_statement{"SELECT count(*) FROM speakers.quality_samples", {}, -1});
  ASSERT_TRUE(count);
  EXPECT_EQ(count->rows[0][0], param{"2"});
}

}  // namespace
