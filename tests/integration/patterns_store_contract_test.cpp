// The patterns port's contract, run against both adapters: PostgreSQL and the simulation's
// in-memory store (tests/sim/). Every write takes a new version, a late saga step changes
// nothing, weights stay in [0, 1], and the digest describes exactly what is held.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/patterns/store.hpp"
#include "messages/errors.hpp"
#include "tests/integration/port_contract.hpp"
#include "tests/sim/patterns_memory.hpp"

namespace {

using namespace sbm::patterns;
using sbm::errc;

template <class Backend>
class PatternsStoreContract : public Backend {
 protected:
  void SetUp() override {
    Backend::SetUp();
    tables = std::make_shared<sbm::sim::patterns_tables>();
  }

  template <class T, class Op>
  caf::expected<T> run(Op op) {
    std::function<std::unique_ptr<store>(const sbm::db::store_link&)> open = make_postgres_store;
    if constexpr (Backend::in_memory) open = sbm::sim::memory_patterns_store(this->server.handle, tables);
    return sbm::test::through_port<T, store>(this->sys, this->handle(), open, op);
  }

  static sbm::pattern_record record(std::int64_t id, double weight = 0.5, std::int64_t revision = 0) {
    sbm::pattern_record r;
    r.pattern_id = id;
    r.speaker_id = "spk-" + std::to_string(id % 3);
    r.client_id = "c1";
    r.bucket_type = "high_touch";
    r.original_text = "hyper tension " + std::to_string(id);
    r.corrected_text = "hypertension";
    r.context_text = "history of";
    // A comma, quotes and a non-ASCII letter: a category must read back byte for byte.
    r.error_categories = {"medical,term", "quote\"d", "\xc3\xa9"};
    r.audio_quality = "good";
    r.status = "pending";
    r.weight = weight;
    r.number_of_speakers = 2;
    r.overlapping_speech = true;
    r.saga_revision = revision;
    return r;
  }

  caf::expected<upserted> upsert(const sbm::pattern_record& r) {
    return run<upserted>([r](store& st, completion<upserted> done) { st.upsert(r, "hashed-ngram", done); });
  }
  caf::expected<std::vector<upserted>> upsert_batch(const std::vector<sbm::pattern_record>& records) {
    return run<std::vector<upserted>>([records](store& st, completion<std::vector<upserted>> done) {
      st.upsert_batch(records, "hashed-ngram", done);
    });
  }
  caf::expected<std::vector<pattern_entry>> page(std::int64_t after, std::uint32_t limit) {
    return run<std::vector<pattern_entry>>(
      [after, limit](store& st, completion<std::vector<pattern_entry>> done) { st.page(after, limit, done); });
  }
  caf::expected<durable_state> durable() {
    return run<durable_state>([](store& st, completion<durable_state> done) { st.durable(done); });
  }
  caf::expected<bool> erase(std::int64_t id) {
    return run<bool>([id](store& st, completion<bool> done) { st.erase(id, done); });
  }

  std::shared_ptr<sbm::sim::patterns_tables> tables;
};

using backends = ::testing::Types<sbm::test::postgres_backend, sbm::test::memory_backend>;
TYPED_TEST_SUITE(PatternsStoreContract, backends);

TYPED_TEST(PatternsStoreContract, APatternReadsBackAsWrittenAndEveryWriteTakesANewVersion) {
  auto first = this->upsert(this->record(7));
  ASSERT_TRUE(first) << this->sys.render(first.error());
  ASSERT_TRUE(first->applied);
  EXPECT_GT(first->created_at_ms, 0);
  auto rows = this->page(0, 10);
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 1u);
  const auto& e = rows->front();
  const auto want = this->record(7);
  EXPECT_EQ(e.pattern_id, 7);
  EXPECT_EQ(e.speaker_id, want.speaker_id);
  EXPECT_EQ(e.original_text, want.original_text);
  EXPECT_EQ(e.error_categories, want.error_categories);
  EXPECT_EQ(e.number_of_speakers, 2);
  EXPECT_TRUE(e.overlapping_speech);
  EXPECT_DOUBLE_EQ(e.weight, 0.5);
  EXPECT_EQ(e.version, first->version);
  EXPECT_EQ(e.created_at_ms, first->created_at_ms);

  // A repeat (the saga re-running its step) is safe: same row, a new version, the filing time kept.
  auto again = this->upsert(this->record(7, 0.75));
  ASSERT_TRUE(again);
  ASSERT_TRUE(again->applied);
  EXPECT_GT(again->version, first->version);
  EXPECT_EQ(again->created_at_ms, first->created_at_ms);
  rows = this->page(0, 10);
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_DOUBLE_EQ(rows->front().weight, 0.75);
}

TYPED_TEST(PatternsStoreContract, AnUpsertFromAnOlderSagaRevisionChangesNothing) {
  auto newer = this->upsert(this->record(3, 0.9, 5));
  ASSERT_TRUE(newer);
  ASSERT_TRUE(newer->applied);
  auto late = this->upsert(this->record(3, 0.1, 4));
  ASSERT_TRUE(late) << this->sys.render(late.error());
  EXPECT_FALSE(late->applied);
  auto rows = this->page(0, 10);
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_DOUBLE_EQ(rows->front().weight, 0.9);
  EXPECT_EQ(rows->front().version, newer->version);
  auto same = this->upsert(this->record(3, 0.8, 5));
  ASSERT_TRUE(same);
  EXPECT_TRUE(same->applied);
}

TYPED_TEST(PatternsStoreContract, AWeightOutsideZeroToOneIsRefusedAndNothingIsStored) {
  for (double w : {-0.01, 1.01, std::numeric_limits<double>::quiet_NaN()}) {
    auto refused = this->upsert(this->record(9, w));
    ASSERT_FALSE(refused) << w;
    EXPECT_EQ(sbm::code_of(refused.error()), errc::invalid_argument) << w;
  }
  for (double w : {0.0, 1.0}) {
    auto kept = this->upsert(this->record(9, w));
    ASSERT_TRUE(kept) << w;
  }
  auto d = this->durable();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->digest.count, 1u);
}

TYPED_TEST(PatternsStoreContract, PagesFollowTheIdsAndTheDigestDescribesWhatIsHeld) {
  auto empty = this->durable();
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty->instance_id.empty());
  EXPECT_EQ(empty->digest.count, 0u);
  std::vector<std::int64_t> versions;
  for (std::int64_t id : {5, 1, 4, 2, 3}) {
    auto u = this->upsert(this->record(id));
    ASSERT_TRUE(u);
    versions.push_back(u->version);
  }
  auto head = this->page(0, 2);
  ASSERT_TRUE(head);
  ASSERT_EQ(head->size(), 2u);
  EXPECT_EQ((*head)[0].pattern_id, 1);
  EXPECT_EQ((*head)[1].pattern_id, 2);
  auto tail = this->page(2, 10);
  ASSERT_TRUE(tail);
  ASSERT_EQ(tail->size(), 3u);
  EXPECT_EQ(tail->back().pattern_id, 5);

  auto d = this->durable();
  ASSERT_TRUE(d);
  sbm::patterns::version_digest want;
  auto all = this->page(0, 10);
  ASSERT_TRUE(all);
  for (const auto& e : *all) {
    ++want.count;
    want.max_version = std::max(want.max_version, e.version);
    want.version_sum += static_cast<std::uint64_t>(e.version);
    want.id_version_sum += static_cast<std::uint64_t>(e.pattern_id) * static_cast<std::uint64_t>(e.version);
  }
  EXPECT_EQ(d->digest, want);
  EXPECT_EQ(d->digest.max_version, *std::max_element(versions.begin(), versions.end()));

  auto gone = this->erase(4);
  ASSERT_TRUE(gone);
  EXPECT_TRUE(*gone);
  auto twice = this->erase(4);
  ASSERT_TRUE(twice);
  EXPECT_FALSE(*twice);
  auto after = this->durable();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->digest.count, 4u);
  EXPECT_EQ(after->instance_id, d->instance_id);
}

// The report saga's index steps, grouped: one answer per record in the batch's order, each record
// treated as if written alone (a late revision changes nothing, a filing time of 0 keeps the stored
// one), and a record the table refuses refuses the whole batch.
TYPED_TEST(PatternsStoreContract, ABatchAnswersEachRecordInOrderAsIfWrittenAlone) {
  auto newer = this->upsert(this->record(2, 0.9, 5));
  ASSERT_TRUE(newer);
  auto kept = this->upsert(this->record(4));
  ASSERT_TRUE(kept);
  auto filed = this->record(9, 0.25, 1);
  filed.created_at_ms = 1700000000123;
  auto late = this->record(2, 0.1, 4);
  auto again = this->record(4, 0.75);
  auto got = this->upsert_batch({filed, late, again});
  ASSERT_TRUE(got) << this->sys.render(got.error());
  ASSERT_EQ(got->size(), 3u);
  EXPECT_TRUE((*got)[0].applied);
  EXPECT_EQ((*got)[0].created_at_ms, 1700000000123);
  EXPECT_FALSE((*got)[1].applied);
  EXPECT_TRUE((*got)[2].applied);
  EXPECT_EQ((*got)[2].created_at_ms, kept->created_at_ms);
  EXPECT_GT((*got)[2].version, kept->version);
  EXPECT_NE((*got)[0].version, (*got)[2].version);

  auto rows = this->page(0, 10);
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_DOUBLE_EQ((*rows)[0].weight, 0.9);  // id 2: the newer revision stays
  EXPECT_EQ((*rows)[0].version, newer->version);
  EXPECT_DOUBLE_EQ((*rows)[1].weight, 0.75);
  EXPECT_EQ((*rows)[1].version, (*got)[2].version);
  EXPECT_EQ((*rows)[2].pattern_id, 9);
  EXPECT_EQ((*rows)[2].error_categories, filed.error_categories);
  EXPECT_EQ((*rows)[2].original_text, filed.original_text);
  EXPECT_EQ((*rows)[2].created_at_ms, 1700000000123);
  EXPECT_DOUBLE_EQ((*rows)[2].weight, 0.25);
  EXPECT_EQ((*rows)[2].version, (*got)[0].version);
}

TYPED_TEST(PatternsStoreContract, ABatchWithARefusedOrRepeatedRecordWritesNothing) {
  auto bad = this->upsert_batch({this->record(1), this->record(3, 1.5), this->record(5)});
  ASSERT_FALSE(bad);
  EXPECT_EQ(sbm::code_of(bad.error()), errc::invalid_argument);
  auto twice = this->upsert_batch({this->record(1), this->record(1, 0.6)});
  ASSERT_FALSE(twice);
  EXPECT_EQ(sbm::code_of(twice.error()), errc::invalid_argument);
  auto d = this->durable();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->digest.count, 0u);
  auto none = this->upsert_batch({});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

}  // namespace
