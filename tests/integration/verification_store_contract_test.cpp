// The verification port's contract, run against both adapters: PostgreSQL (the real server, as
// every integration test) and the simulation's in-memory store (tests/sim/). What one adapter
// does the other must do, so a simulation proves something about the node.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/verification/store.hpp"
#include "messages/errors.hpp"
#include "tests/integration/port_contract.hpp"
#include "tests/sim/verification_memory.hpp"

namespace {

using namespace std::chrono_literals;
using namespace sbm::verification;
using sbm::errc;
using sbm::request_context;

template <class Backend>
class VerificationStoreContract : public Backend {
 protected:
  void SetUp() override {
    Backend::SetUp();
    tables = std::make_shared<sbm::sim::verification_tables>();
  }

  template <class T, class Op>
  caf::expected<T> run(Op op) {
    std::function<std::unique_ptr<store>(const sbm::db::store_link&)> open = make_postgres_store;
    if constexpr (Backend::in_memory) open = sbm::sim::memory_verification_store(this->server.handle, tables);
    return sbm::test::through_port<T, store>(this->sys, this->handle(), open, op);
  }

  static request_context keyed(std::string key, std::string digest = "d1") {
    request_context ctx;
    ctx.principal = "user:qa-1";
    ctx.idempotency_key = std::move(key);
    ctx.request_digest = std::move(digest);
    return ctx;
  }

  static new_session session_for(std::string speaker, std::chrono::milliseconds idle = 10min) {
    new_session s;
    s.speaker_id = std::move(speaker);
    s.client_id = "c1";
    s.owner = "qa-1";
    s.from_ms = 1'700'000'000'000;
    s.to_ms = 1'700'000'600'000;
    s.error_types = {"drug_name"};
    s.max_jobs = 5;
    s.source = "instanote";
    s.content_token = "token-of-the-drafts";
    s.idle_timeout = idle;
    return s;
  }

  caf::expected<std::int64_t> create(const new_session& s, const request_context& ctx = {}) {
    return run<std::int64_t>([s, ctx](store& st, completion<std::int64_t> done) { st.create(s, ctx, done); });
  }
  caf::expected<caf::optional<session_record>> load(std::int64_t id) {
    return run<caf::optional<session_record>>(
      [id](store& st, completion<caf::optional<session_record>> done) { st.load(id, {}, done); });
  }
  caf::expected<caf::optional<session_status>> touch(std::int64_t id) {
    return run<caf::optional<session_status>>(
      [id](store& st, completion<caf::optional<session_status>> done) { st.touch(id, {}, done); });
  }
  caf::expected<caf::optional<marks_saved>> save(std::int64_t id, std::vector<sbm::session_mark> marks,
                                                 std::vector<sbm::job_residual> residuals = {}) {
    return run<caf::optional<marks_saved>>([=](store& st, completion<caf::optional<marks_saved>> done) {
      st.save_marks(id, marks, residuals, {}, done);
    });
  }
  caf::expected<submitted> submit(std::int64_t id, const request_context& ctx = {}) {
    return run<submitted>([id, ctx](store& st, completion<submitted> done) { st.submit(id, "qa-1", ctx, done); });
  }
  caf::expected<bool> schedule(schedule_entry e) {
    return run<bool>([e](store& st, completion<bool> done) { st.schedule(e, done); });
  }
  caf::expected<sbm::verification_schedule> list(sbm::schedule_query q = {}) {
    return run<sbm::verification_schedule>(
      [q](store& st, completion<sbm::verification_schedule> done) { st.list_schedule(q, 100, done); });
  }
  caf::expected<sbm::db::idempotency::lookup_result> find_key(const request_context& ctx) {
    return run<sbm::db::idempotency::lookup_result>(
      [ctx](store& st, completion<sbm::db::idempotency::lookup_result> done) { st.find_key(ctx, 3600s, done); });
  }
  std::shared_ptr<sbm::sim::verification_tables> tables;

  std::string status_of_entry(const std::string& speaker) {
    auto all = list({"", speaker, 100});
    if (!all || all->items.empty()) return "missing";
    return all->items.front().status;
  }
};

using backends = ::testing::Types<sbm::test::postgres_backend, sbm::test::memory_backend>;
TYPED_TEST_SUITE(VerificationStoreContract, backends);

TYPED_TEST(VerificationStoreContract, ACreatedSessionReadsBackOpenAndTakesItsSpeakersSchedule) {
  ASSERT_TRUE(this->schedule({"spk-1", "high", "promoted", "c1", 7, {}}));
  ASSERT_TRUE(this->schedule({"spk-2", "normal", "asked", "c1", 0, "report:1"}));
  auto id = this->create(this->session_for("spk-1"), this->keyed("k-1"));
  ASSERT_TRUE(id) << this->sys.render(id.error());
  auto rec = this->load(*id);
  ASSERT_TRUE(rec && *rec);
  const auto& h = (*rec)->head;
  EXPECT_EQ(h.id, *id);
  EXPECT_EQ(h.status, "open");
  EXPECT_EQ(h.speaker_id, "spk-1");
  EXPECT_EQ(h.owner, "qa-1");
  EXPECT_EQ(h.error_types, std::vector<std::string>{"drug_name"});
  EXPECT_EQ(h.max_jobs, 5u);
  EXPECT_GT(h.expires_at_ms, h.created_at_ms);
  EXPECT_FALSE(h.effects_done);
  ASSERT_TRUE((*rec)->content_token);
  EXPECT_EQ(*(*rec)->content_token, "token-of-the-drafts");
  EXPECT_EQ(this->status_of_entry("spk-1"), "taken");
  EXPECT_EQ(this->status_of_entry("spk-2"), "scheduled");  // another speaker's entry stays

  auto same = this->find_key(this->keyed("k-1"));
  ASSERT_TRUE(same);
  EXPECT_EQ(same->v, sbm::db::idempotency::verdict::replay);
  EXPECT_EQ(same->stored.answer, std::to_string(*id));
  auto other = this->find_key(this->keyed("k-1", "another request"));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->v, sbm::db::idempotency::verdict::reused);
  auto absent = this->find_key(this->keyed("k-2"));
  ASSERT_TRUE(absent);
  EXPECT_EQ(absent->v, sbm::db::idempotency::verdict::absent);
}

TYPED_TEST(VerificationStoreContract, ACreateUnderAKeyStoredMeanwhileIsAConflictAndWritesNothing) {
  auto first = this->create(this->session_for("spk-1"), this->keyed("k-1"));
  ASSERT_TRUE(first);
  auto second = this->create(this->session_for("spk-9"), this->keyed("k-1"));
  ASSERT_FALSE(second);
  EXPECT_EQ(sbm::code_of(second.error()), errc::conflict);
  auto next = this->create(this->session_for("spk-1"));
  ASSERT_TRUE(next);
  // The refused create left no session behind (PostgreSQL may burn a sequence number, so the
  // next id is not checked, only that nothing for spk-9 exists).
  for (auto id = *first + 1; id < *next; ++id) {
    auto r = this->load(id);
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r);
  }
}

TYPED_TEST(VerificationStoreContract, MarksKeepOnePerCorrectionInCommitOrderWithTheResiduals) {
  auto id = this->create(this->session_for("spk-1"));
  ASSERT_TRUE(id);
  auto first = this->save(*id, {{1, "rectified"}, {2, "not_rectified"}}, {{"job-1", 3}});
  ASSERT_TRUE(first && *first);
  EXPECT_EQ((*first)->now.status, "open");
  ASSERT_EQ((*first)->marks.size(), 2u);
  auto second = this->save(*id, {{1, "not_rectified"}}, {{"job-1", 1}});
  ASSERT_TRUE(second && *second);
  ASSERT_EQ((*second)->marks.size(), 2u);
  EXPECT_EQ((*second)->marks[0].correction_id, 2);
  EXPECT_EQ((*second)->marks[1].correction_id, 1);
  EXPECT_EQ((*second)->marks[1].verdict, "not_rectified");
  auto rec = this->load(*id);
  ASSERT_TRUE(rec && *rec);
  ASSERT_EQ((*rec)->residuals.size(), 1u);
  EXPECT_EQ((*rec)->residuals[0].job_id, "job-1");
  EXPECT_EQ((*rec)->residuals[0].residual_errors, 1u);
  ASSERT_EQ((*rec)->head.marks.size(), 2u);
  EXPECT_EQ((*rec)->head.marks[1].correction_id, 1);
}

TYPED_TEST(VerificationStoreContract, ASessionIsSubmittedOnceAndItsScheduleIsDone) {
  ASSERT_TRUE(this->schedule({"spk-1", "high", "promoted", "c1", 7, {}}));
  auto id = this->create(this->session_for("spk-1"));
  ASSERT_TRUE(id);
  auto done = this->submit(*id, this->keyed("s-1"));
  ASSERT_TRUE(done) << this->sys.render(done.error());
  EXPECT_EQ(done->outcome, submitted::done);
  EXPECT_GT(done->submitted_at_ms, 0);
  EXPECT_EQ(this->status_of_entry("spk-1"), "done");
  auto again = this->submit(*id, this->keyed("s-2"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->outcome, submitted::not_open);
  // Marks after the submit are not saved.
  auto late = this->save(*id, {{1, "rectified"}});
  ASSERT_TRUE(late && *late);
  EXPECT_EQ((*late)->now.status, "submitted");
  EXPECT_TRUE((*late)->marks.empty());
  // A key committed by another submit: this one rolls back and its session stays open.
  auto other = this->create(this->session_for("spk-2"));
  ASSERT_TRUE(other);
  auto taken = this->submit(*other, this->keyed("s-1"));
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->outcome, submitted::key_taken);
  auto rec = this->load(*other);
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ((*rec)->head.status, "open");
  auto rec1 = this->load(*id);
  ASSERT_TRUE(rec1 && *rec1);
  EXPECT_EQ((*rec1)->head.status, "submitted");
  EXPECT_EQ((*rec1)->head.submitted_by, "qa-1");
}

TYPED_TEST(VerificationStoreContract, AnIdleSessionExpiresReturnsItsScheduleAndRefusesWrites) {
  ASSERT_TRUE(this->schedule({"spk-1", "high", "promoted", "c1", 7, {}}));
  auto id = this->create(this->session_for("spk-1", 1ms));
  ASSERT_TRUE(id);
  ASSERT_TRUE(sbm::test::eventually([&] {
    auto now = this->touch(*id);
    return now && *now && (*now)->status == "expired";
  }));
  EXPECT_EQ(this->status_of_entry("spk-1"), "scheduled");
  auto marks = this->save(*id, {{1, "rectified"}});
  ASSERT_TRUE(marks && *marks);
  EXPECT_EQ((*marks)->now.status, "expired");
  EXPECT_TRUE((*marks)->marks.empty());
  auto late = this->submit(*id);
  ASSERT_TRUE(late);
  EXPECT_EQ(late->outcome, submitted::not_open);

  // The sweep expires what nobody touches.
  auto swept_id = this->create(this->session_for("spk-3", 1ms));
  ASSERT_TRUE(swept_id);
  ASSERT_TRUE(sbm::test::eventually([&] {
    auto swept = this->template run<sweep_result>([](store& st, completion<sweep_result> done) { st.sweep(3600s, done); });
    return swept && std::find(swept->expired.begin(), swept->expired.end(), *swept_id) != swept->expired.end();
  }));
  auto rec = this->load(*swept_id);
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ((*rec)->head.status, "expired");
}

TYPED_TEST(VerificationStoreContract, TheEffectsOutcomeIsKeptAndAnUnknownSessionReadsAsNone) {
  auto id = this->create(this->session_for("spk-1"));
  ASSERT_TRUE(id);
  ASSERT_TRUE(this->submit(*id));
  sbm::submit_outcome o;
  o.weights = {{42, "verified", 0.75}};
  o.jobs_sampled = {"job-1"};
  o.bucket_before = "low_touch";
  o.bucket_after = "no_touch";
  auto fin = this->template run<bool>([id, o](store& st, completion<bool> done) { st.finish_effects(*id, o, done); });
  ASSERT_TRUE(fin);
  auto rec = this->load(*id);
  ASSERT_TRUE(rec && *rec);
  EXPECT_TRUE((*rec)->head.effects_done);
  ASSERT_EQ((*rec)->head.outcome.weights.size(), 1u);
  EXPECT_EQ((*rec)->head.outcome.weights[0].report_id, 42);
  EXPECT_EQ((*rec)->head.outcome.bucket_after, "no_touch");
  EXPECT_EQ((*rec)->head.outcome.jobs_sampled, std::vector<std::string>{"job-1"});

  auto none = this->load(*id + 1000);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  auto no_touch = this->touch(*id + 1000);
  ASSERT_TRUE(no_touch);
  EXPECT_FALSE(*no_touch);
  auto unknown = this->template run<bool>([id, o](store& st, completion<bool> done) { st.finish_effects(*id + 1000, o, done); });
  ASSERT_FALSE(unknown);
  EXPECT_EQ(sbm::code_of(unknown.error()), errc::conflict);
}

TYPED_TEST(VerificationStoreContract, TheScheduleIsIdempotentOnEventAndKeyAndHonoursFiltersAndScope) {
  ASSERT_TRUE(this->schedule({"spk-1", "high", "promoted", "c1", 7, {}}));
  ASSERT_TRUE(this->schedule({"spk-1", "high", "promoted again", "c1", 7, {}}));
  ASSERT_TRUE(this->schedule({"spk-2", "normal", "asked", "c2", 0, "report:1"}));
  ASSERT_TRUE(this->schedule({"spk-2", "normal", "asked again", "c2", 0, "report:1"}));
  auto all = this->list();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->items.size(), 2u);
  EXPECT_EQ(all->items[0].reason, "promoted");
  EXPECT_EQ(all->items[0].source_event_id, 7);
  EXPECT_EQ(all->items[1].source_key, "report:1");
  EXPECT_EQ(all->items[1].source_event_id, 0);
  auto high = this->list({"high", "", 100});
  ASSERT_TRUE(high);
  ASSERT_EQ(high->items.size(), 1u);
  EXPECT_EQ(high->items[0].speaker_id, "spk-1");
  sbm::schedule_query scoped;
  scoped.scope.limited = true;
  scoped.scope.client_ids = {"c2"};
  auto mine = this->list(scoped);
  ASSERT_TRUE(mine);
  ASSERT_EQ(mine->items.size(), 1u);
  EXPECT_EQ(mine->items[0].client_id, "c2");
}

}  // namespace
