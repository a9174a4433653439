// The pattern index actor against a real PostgreSQL: an upsert is durable before it is answered,
// search finds patterns with their scores under typed filters, updates and deletes are reflected
// in both places, a restarted actor rebuilds from PostgreSQL (paged) or loads its snapshot when it
// matches, and a stale or damaged snapshot is rebuilt. Also: loading answers unavailable, an
// outage at start heals, and writes to one pattern apply in order.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "actors/connections/connections.hpp"
#include "actors/patterns/core/embedder.hpp"
#include "actors/patterns/patterns.hpp"
#include "messages/errors.hpp"
#include "runtime/domain/placement.hpp"
#include "runtime/migrations/all_migrations.hpp"
#include "tests/support/actor_test.hpp"
#include "tests/support/servers.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sbm::errc;
using sbm::pattern_hits;
using sbm::pattern_index_actor;
using sbm::pattern_index_status;
using sbm::pattern_record;
using sbm::pattern_search;
using param = caf::optional<std::string>;
namespace pt = sbm::patterns;

constexpr auto answer_timeout = 60s;

template <class Result, class Handle, class... Ts>
caf::expected<Result> call(caf::scoped_actor& self, const Handle& to, Ts&&... xs) {
  return sbm::test::request_blocking<Result>(self, answer_timeout, to, std::forward<Ts>(xs)...);
}

using sbm::test::code;

sbm::postgres_actor start_postgres(caf::actor_system& sys, caf::scoped_actor& self,
                                   const std::string& url, bool wait_until_up = true) {
  sbm::connections::postgres_settings s;
  s.url = url;
  s.pool_size = 2;
  s.probe_interval = 100ms;
  s.request_timeout = 5s;
  s.connect_timeout = 1s;
  s.breaker = sbm::resilience::breaker_policy{3, 300ms};
  s.restart_backoff = sbm::resilience::backoff_policy{3, 20ms, 200ms, 0.0};
  s.migrations = sbm::schema::all_migrations();
  auto pg = sbm::connections::spawn_postgres(sys, std::move(s));
  if (wait_until_up) {
    const bool up = sbm::test::eventually([&] {
      auto st = call<sbm::dependency_status>(self, pg, sbm::status_atom::value);
      return st && st->state == "up";
    });
    EXPECT_TRUE(up) << "postgres did not come up for " << url;
  }
  return pg;
}

pattern_record record(std::int64_t id, std::string speaker, std::string original,
                      std::vector<std::string> categories = {"medical_terminology"}) {
  pattern_record r;
  r.pattern_id = id;
  r.speaker_id = std::move(speaker);
  r.client_id = "clinic-1";
  r.bucket_type = "high_touch";
  r.original_text = std::move(original);
  r.corrected_text = "corrected: " + r.original_text;
  r.error_categories = std::move(categories);
  r.audio_quality = "good";
  r.speaker_clarity = "clear";
  r.background_noise = "low";
  r.number_of_speakers = 1;
  r.status = "pending";
  r.weight = 0.5;
  r.created_at_ms = 1'700'000'000'000 + id;
  return r;
}

// Vocabulary that the hashed n-gram embedder tells apart well.
const std::vector<std::string> phrases = {
    "hyper tension",       "metoprolal 50 mg",    "the patient denies chest pain",
    "left ventricle",      "atrial fibrillation", "fifty milligrams twice daily",
    "shortness of breath", "no known allergies",  "blood pressure one forty over ninety",
    "diabetes mellitus",   "lisinopril",          "congestive heart failure"};

pattern_search query(std::string text, std::uint32_t k = 10) {
  pattern_search q;
  q.query_text = std::move(text);
  q.top_k = k;
  return q;
}

std::uint64_t inode_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_ino);
}

void expect_same_record(const pattern_record& a, const pattern_record& b) {
  EXPECT_EQ(a.pattern_id, b.pattern_id);
  EXPECT_EQ(a.speaker_id, b.speaker_id);
  EXPECT_EQ(a.client_id, b.client_id);
  EXPECT_EQ(a.bucket_type, b.bucket_type);
  EXPECT_EQ(a.original_text, b.original_text);
  EXPECT_EQ(a.corrected_text, b.corrected_text);
  EXPECT_EQ(a.context_text, b.context_text);
  EXPECT_EQ(a.error_categories, b.error_categories);
  EXPECT_EQ(a.audio_quality, b.audio_quality);
  EXPECT_EQ(a.speaker_clarity, b.speaker_clarity);
  EXPECT_EQ(a.background_noise, b.background_noise);
  EXPECT_EQ(a.number_of_speakers, b.number_of_speakers);
  EXPECT_EQ(a.overlapping_speech, b.overlapping_speech);
  EXPECT_EQ(a.requires_specialized_knowledge, b.requires_specialized_knowledge);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.weight, b.weight);
  EXPECT_EQ(a.created_at_ms, b.created_at_ms);
}

void expect_same_hits(const pattern_hits& a, const pattern_hits& b) {
  ASSERT_EQ(a.hits.size(), b.hits.size());
  for (std::size_t i = 0; i < a.hits.size(); ++i) {
    expect_same_record(a.hits[i].pattern, b.hits[i].pattern);
    EXPECT_NEAR(a.hits[i].similarity, b.hits[i].similarity, 1e-6);
  }
}

class PatternIndexActor : public sbm::test::io_actor_test {
 protected:
  void SetUp() override {
    url = sbm::test::servers::shared().fresh_database();
    db = stop_at_end(start_postgres(sys, self, url));
    std::string pattern = (fs::temp_directory_path() / "sbm-pattern-actor-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir = pattern;
  }

  void TearDown() override {
    sbm::test::io_actor_test::TearDown();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  pt::pattern_index_settings settings(std::string snapshot = {}) {
    pt::pattern_index_settings s;
    s.db = db;
    s.dimension = 256;
    s.snapshot_path = std::move(snapshot);
    s.db_timeout = 5s;
    s.retry_delay = 100ms;
    s.page_size = 7;  // several pages even for a small test
    s.build_threads = 2;
    return s;
  }

  // Spawns and waits until ready.
  pattern_index_actor start(pt::pattern_index_settings s) {
    auto a = pt::spawn_pattern_index(sys, std::move(s));
    const bool ready = sbm::test::eventually([&] {
      auto st = call<pattern_index_status>(self, a, sbm::status_atom::value);
      return st && st->ready;
    });
    EXPECT_TRUE(ready) << "pattern index did not become ready";
    return a;
  }

  // Stops an actor (a clean stop: the exit handler may write the snapshot) and waits for it.
  void stop(const pattern_index_actor& a) {
    self->send_exit(a, caf::exit_reason::user_shutdown);
    self->wait_for(a);
  }

  bool upsert(const pattern_index_actor& a, const pattern_record& r) {
    auto ok = call<bool>(self, a, sbm::upsert_atom::value, r);
    EXPECT_TRUE(ok) << sys.render(ok.error());
    return ok && *ok;
  }

  pattern_hits search(const pattern_index_actor& a, const pattern_search& q) {
    auto hits = call<pattern_hits>(self, a, sbm::search_atom::value, q);
    EXPECT_TRUE(hits) << sys.render(hits.error());
    return hits ? *hits : pattern_hits{};
  }

  std::vector<sbm::db_row> sql(std::string text, std::vector<param> params = {}) {
    auto rows = call<sbm::db_rows>(self, db, sbm::query_atom::value,
                                   sbm::db_statement{std::move(text), std::move(params), -1});
    EXPECT_TRUE(rows) << sys.render(rows.error());
    return rows ? rows->rows : std::vector<sbm::db_row>{};
  }

  // Fills the index with one pattern per phrase over three speakers; returns the records.
  std::vector<pattern_record> fill(const pattern_index_actor& a) {
    std::vector<pattern_record> out;
    for (std::size_t i = 0; i < phrases.size(); ++i) {
      auto r = record(static_cast<std::int64_t>(100 + i), "spk-" + std::to_string(i % 3), phrases[i]);
      if (i % 4 == 0) r.error_categories = {"dosage", "drug_name"};
      if (i % 2 == 0) r.context_text = "patient seen in clinic today for follow up";
      r.requires_specialized_knowledge = i % 5 == 0;
      r.weight = 0.1 + 0.05 * static_cast<double>(i);
      EXPECT_TRUE(upsert(a, r));
      out.push_back(r);
    }
    return out;
  }

  std::string url;
  sbm::postgres_actor db;
  std::string dir;
};

TEST_F(PatternIndexActor, UpsertIsDurableBeforeItIsAnswered) {
  auto a = stop_at_end(start(settings()));
  auto r = record(7, "spk-1", "metoprolal", {"drug_name", "dosage", "drug_name"});
  r.context_text = "takes metoprolal daily";
  auto ok = call<bool>(self, a, sbm::upsert_atom::value, r);
  ASSERT_TRUE(ok) << sys.render(ok.error());
  EXPECT_TRUE(*ok);
  // The answer came after the commit: the row is there, read through another connection.
  auto rows = sql(
      "SELECT speaker_id, client_id, original_text, context_text, array_to_string(error_categories, "
      "'|'), status, weight, embedder, (extract(epoch from created_at) * 1000)::bigint, version "
      "FROM patterns.patterns WHERE pattern_id = 7");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], param{"spk-1"});
  EXPECT_EQ(rows[0][1], param{"clinic-1"});
  EXPECT_EQ(rows[0][2], param{"metoprolal"});
  EXPECT_EQ(rows[0][3], param{"takes metoprolal daily"});
  EXPECT_EQ(rows[0][4], param{"dosage|drug_name"});  // a set: sorted, once each
  EXPECT_EQ(rows[0][5], param{"pending"});
  EXPECT_EQ(rows[0][6], param{"0.5"});
  EXPECT_EQ(rows[0][7], param{std::string(pt::hashed_ngram_embedder(256).name())});
  EXPECT_EQ(rows[0][8], param{"1700000000007"});
  EXPECT_NE(rows[0][9], param{"0"});
  auto st = call<pattern_index_status>(self, a, sbm::status_atom::value);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->patterns, 1u);
  EXPECT_EQ(st->deleted, 0u);
  EXPECT_EQ(st->embedder, "hashed-ngram-v1/d256");

  // The same upsert again (a retried saga step) is harmless.
  EXPECT_TRUE(upsert(a, r));
  EXPECT_EQ(sql("SELECT count(*) FROM patterns.patterns")[0][0], param{"1"});
  st = call<pattern_index_status>(self, a, sbm::status_atom::value);
  EXPECT_EQ(st->patterns, 1u);
  EXPECT_EQ(st->deleted, 0u) << "an unchanged text must not leave a tombstone";

  // A record without a filing time gets the commit's and keeps it on later updates.
  auto undated = record(8, "spk-1", "lisinopril");
  undated.created_at_ms = 0;
  ASSERT_TRUE(upsert(a, undated));
  auto found = search(a, query("lisinopril", 1));
  ASSERT_EQ(found.hits.size(), 1u);
  const auto stamped = found.hits[0].pattern.created_at_ms;
  EXPECT_GT(stamped, 1'700'000'000'000);
  undated.weight = 0.9;
  ASSERT_TRUE(upsert(a, undated));
  found = search(a, query("lisinopril", 1));
  ASSERT_EQ(found.hits.size(), 1u);
  EXPECT_EQ(found.hits[0].pattern.created_at_ms, stamped);
  EXPECT_EQ(found.hits[0].pattern.weight, 0.9);
}

TEST_F(PatternIndexActor, SearchFindsPatternsWithScoresUnderFilters) {
  auto a = stop_at_end(start(settings()));
  auto records = fill(a);

  // A pattern without context: querying its exact text scores 1.
  auto hits = search(a, query("left ventricle", 3));
  ASSERT_FALSE(hits.hits.empty());
  EXPECT_EQ(hits.hits[0].pattern.original_text, "left ventricle");
  EXPECT_NEAR(hits.hits[0].similarity, 1.0, 1e-5);
  expect_same_record(hits.hits[0].pattern, records[3]);
  EXPECT_FALSE(hits.plan.empty());
  for (std::size_t i = 1; i < hits.hits.size(); ++i)
    EXPECT_LE(hits.hits[i].similarity, hits.hits[i - 1].similarity);

  // Near-misses find their pattern; with context the exact span scores less than 1.
  hits = search(a, query("hypertension", 1));
  ASSERT_EQ(hits.hits.size(), 1u);
  EXPECT_EQ(hits.hits[0].pattern.original_text, "hyper tension");
  EXPECT_GT(hits.hits[0].similarity, 0.5);
  EXPECT_LT(hits.hits[0].similarity, 0.95);  // embedded with its context
  hits = search(a, query("metoprolol 50 mg", 1));
  ASSERT_EQ(hits.hits.size(), 1u);
  EXPECT_EQ(hits.hits[0].pattern.pattern_id, 101);

  auto filtered = [&](auto set) {
    auto q = query("heart", 20);
    set(q.filter);
    return search(a, q);
  };
  auto by_speaker = filtered([](sbm::pattern_filter& f) { f.speaker_id = "spk-1"; });
  EXPECT_EQ(by_speaker.hits.size(), 4u);
  EXPECT_EQ(by_speaker.plan, "exact:speaker");
  for (const auto& h : by_speaker.hits) EXPECT_EQ(h.pattern.speaker_id, "spk-1");
  auto by_category = filtered([](sbm::pattern_filter& f) { f.error_category = "dosage"; });
  EXPECT_EQ(by_category.hits.size(), 3u);
  for (const auto& h : by_category.hits)
    EXPECT_EQ(h.pattern.error_categories, (std::vector<std::string>{"dosage", "drug_name"}));
  auto specialized = filtered([](sbm::pattern_filter& f) { f.requires_specialized_knowledge = true; });
  EXPECT_EQ(specialized.hits.size(), 3u);  // i = 0, 5, 10
  auto not_specialized =
      filtered([](sbm::pattern_filter& f) { f.requires_specialized_knowledge = false; });
  EXPECT_EQ(not_specialized.hits.size(), phrases.size() - 3);
  auto floor = filtered([](sbm::pattern_filter& f) { f.min_weight = 0.5; });
  for (const auto& h : floor.hits) EXPECT_GE(h.pattern.weight, 0.5);
  EXPECT_EQ(floor.hits.size(), 4u);  // 0.1 + 0.05 i >= 0.5 for i = 8..11
  auto dated = filtered([](sbm::pattern_filter& f) {
    f.from_ms = 1'700'000'000'102;
    f.to_ms = 1'700'000'000'104;
  });
  EXPECT_EQ(dated.hits.size(), 3u);
  auto combined = filtered([](sbm::pattern_filter& f) {
    f.speaker_id = "spk-0";
    f.error_category = "drug_name";
    f.client_id = "clinic-1";
    f.bucket_type = "high_touch";
    f.audio_quality = "good";
    f.status = "pending";
  });
  ASSERT_EQ(combined.hits.size(), 1u);  // spk-0 holds i = 0, 3, 6, 9; drug_name i = 0, 4, 8
  EXPECT_EQ(combined.hits[0].pattern.pattern_id, 100);
  auto none = filtered([](sbm::pattern_filter& f) { f.status = "rectified"; });
  EXPECT_TRUE(none.hits.empty());
  EXPECT_EQ(none.plan, "empty");

  // Filter values are data: an injection string matches nothing, and as a stored value itself.
  auto injected = filtered([](sbm::pattern_filter& f) { f.speaker_id = "' OR 1=1 --"; });
  EXPECT_TRUE(injected.hits.empty());
  auto hostile = record(500, "' OR 1=1 --", "'); DROP TABLE patterns.patterns; --");
  hostile.client_id = "%";
  ASSERT_TRUE(upsert(a, hostile));
  injected = filtered([](sbm::pattern_filter& f) { f.speaker_id = "' OR 1=1 --"; });
  ASSERT_EQ(injected.hits.size(), 1u);
  expect_same_record(injected.hits[0].pattern, hostile);
  EXPECT_EQ(sql("SELECT count(*) FROM patterns.patterns")[0][0],
            param{std::to_string(phrases.size() + 1)});
}

TEST_F(PatternIndexActor, BadRequestsAreRefusedWithTheFieldNamed) {
  auto a = stop_at_end(start(settings()));
  auto detail = [](const auto& x) { return x ? std::string{} : sbm::detail_of(x.error()); };
  auto bad = [&](auto change, const char* field) {
    auto r = record(1, "spk-1", "text");
    change(r);
    auto out = call<bool>(self, a, sbm::upsert_atom::value, r);
    EXPECT_EQ(code(out), errc::invalid_argument) << field;
    EXPECT_NE(detail(out).find(field), std::string::npos) << detail(out);
  };
  bad([](pattern_record& r) { r.pattern_id = 0; }, "pattern_id");
  bad([](pattern_record& r) { r.speaker_id = ""; }, "speaker_id");
  bad([](pattern_record& r) { r.original_text = ""; }, "original_text");
  bad([](pattern_record& r) { r.status = "done"; }, "status");
  bad([](pattern_record& r) { r.weight = 1.5; }, "weight");
  bad([](pattern_record& r) { r.weight = std::nan(""); }, "weight");
  bad([](pattern_record& r) { r.error_categories = {""}; }, "error_categories");
  bad([](pattern_record& r) { r.context_text = std::string(70000, 'x'); }, "context_text");
  EXPECT_EQ(sql("SELECT count(*) FROM patterns.patterns")[0][0], param{"0"});

  auto q = query("text", 0);
  EXPECT_EQ(code(call<pattern_hits>(self, a, sbm::search_atom::value, q)), errc::invalid_argument);
  q = query("text", 1001);
  EXPECT_EQ(code(call<pattern_hits>(self, a, sbm::search_atom::value, q)), errc::invalid_argument);
  q = query(" ,;. ", 5);
  auto empty = call<pattern_hits>(self, a, sbm::search_atom::value, q);
  EXPECT_EQ(code(empty), errc::invalid_argument);
  EXPECT_NE(detail(empty).find("query_text"), std::string::npos);
  q = query("text", 5);
  q.filter.min_weight = std::nan("");
  EXPECT_EQ(code(call<pattern_hits>(self, a, sbm::search_atom::value, q)), errc::invalid_argument);
  EXPECT_EQ(code(call<bool>(self, a, sbm::delete_atom::value, std::int64_t{-3})),
            errc::invalid_argument);
}

// The correction workers' retrieval: a draft's segments, embedded by the caller, searched in one
// message, answer exactly what each segment searched alone answers (hits, order, scores), and
// their union holds each pattern once; under a speaker filter with a scope and a weight floor, and
// with no filter at all. Batches the index cannot trust are refused with the field named.
TEST_F(PatternIndexActor, BatchedSearchAnswersWhatEachSegmentSearchAnswers) {
  auto s = settings();
  s.max_batch_queries = 8;
  auto a = stop_at_end(start(std::move(s)));
  fill(a);
  const pt::hashed_ngram_embedder embedder(256);
  const std::vector<std::string> segments = {
      "Patient with hyper tension and atrial fibrilation.", "Metoprolal 50 mg twice daily.",
      "Denies chest pain or shortness of breath.", "Left ventricle normal, diabetes mellitus type 2."};
  std::vector<sbm::pattern_filter> filters(3);
  filters[1].speaker_id = "spk-0";
  filters[1].min_weight = 0.2;
  filters[1].scope = sbm::client_scope{true, {"clinic-1", "clinic-9"}};
  filters[2].speaker_id = "spk-2";
  filters[2].scope = sbm::client_scope{true, {"clinic-9"}};  // none of spk-2's: nothing
  for (std::size_t fi = 0; fi < filters.size(); ++fi) {
    sbm::pattern_batch_search batch;
    batch.embedder = std::string(embedder.name());
    batch.filter = filters[fi];
    batch.top_k = 3;
    batch.per_query = true;
    for (const auto& text : segments) batch.queries.push_back(embedder.embed(text));
    auto got = call<sbm::pattern_batch_hits>(self, a, sbm::search_atom::value, batch);
    ASSERT_TRUE(got) << sys.render(got.error());
    ASSERT_EQ(got->per_query.size(), segments.size());
    std::set<std::int64_t> expected_union;
    for (std::size_t i = 0; i < segments.size(); ++i) {
      auto q = query(segments[i], 3);
      q.filter = filters[fi];
      const auto alone = search(a, q);
      if (got->plan.find(' ') == std::string::npos) {
        EXPECT_EQ(got->plan, alone.plan) << "filter " << fi;
      }
      ASSERT_EQ(got->per_query[i].size(), alone.hits.size()) << "filter " << fi << " segment " << i;
      for (std::size_t h = 0; h < alone.hits.size(); ++h) {
        const auto& hit = got->per_query[i][h];
        ASSERT_LT(hit.pattern, got->patterns.size());
        expect_same_record(got->patterns[hit.pattern], alone.hits[h].pattern);
        EXPECT_NEAR(hit.similarity, alone.hits[h].similarity, 1e-6);
        expected_union.insert(alone.hits[h].pattern.pattern_id);
      }
    }
    std::vector<std::int64_t> ids;
    for (const auto& p : got->patterns) ids.push_back(p.pattern_id);
    EXPECT_EQ(ids, std::vector<std::int64_t>(expected_union.begin(), expected_union.end())) << "filter " << fi;
    if (fi == 1) {
      EXPECT_EQ(got->plan, "exact:speaker");
      EXPECT_FALSE(ids.empty());
    }
    if (fi == 2) {
      EXPECT_TRUE(ids.empty());
    }
    // Without per_query the union alone comes back.
    batch.per_query = false;
    auto union_only = call<sbm::pattern_batch_hits>(self, a, sbm::search_atom::value, batch);
    ASSERT_TRUE(union_only) << sys.render(union_only.error());
    EXPECT_TRUE(union_only->per_query.empty());
    EXPECT_EQ(union_only->patterns.size(), got->patterns.size());
  }

  auto refused = [&](auto change, const char* field) {
    sbm::pattern_batch_search batch;
    batch.embedder = std::string(embedder.name());
    batch.queries = {embedder.embed("hyper tension")};
    change(batch);
    auto out = call<sbm::pattern_batch_hits>(self, a, sbm::search_atom::value, batch);
    EXPECT_EQ(code(out), errc::invalid_argument) << field;
    if (!out) {
      EXPECT_NE(sbm::detail_of(out.error()).find(field), std::string::npos) << sbm::detail_of(out.error());
    }
  };
  refused([](sbm::pattern_batch_search& b) { b.embedder = "another/d256"; }, "embedder");
  refused([](sbm::pattern_batch_search& b) { b.queries.push_back(std::vector<float>(128, 0.1f)); }, "queries[1]");
  refused([](sbm::pattern_batch_search& b) { b.queries.push_back(std::vector<float>(256, 0.0f)); }, "queries[1]");
  refused([](sbm::pattern_batch_search& b) { b.queries.resize(9, b.queries.front()); }, "queries");
  refused([](sbm::pattern_batch_search& b) { b.top_k = 0; }, "top_k");
  refused([](sbm::pattern_batch_search& b) { b.filter.min_weight = std::nan(""); }, "min_weight");
}

TEST_F(PatternIndexActor, UpdatesAndDeletesReachBothPostgresAndTheIndex) {
  auto a = stop_at_end(start(settings()));
  auto r = record(42, "spk-1", "metoprolal 50 mg");
  ASSERT_TRUE(upsert(a, r));
  const auto v1 = sql("SELECT version FROM patterns.patterns WHERE pattern_id = 42")[0][0];

  // Verification: status and weight.
  r.status = "rectified";
  r.weight = 0.6;
  ASSERT_TRUE(upsert(a, r));
  auto rows = sql("SELECT status, weight, version FROM patterns.patterns WHERE pattern_id = 42");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], param{"rectified"});
  EXPECT_EQ(rows[0][1], param{"0.6"});
  EXPECT_GT(std::stoll(*rows[0][2]), std::stoll(*v1));
  auto q = query("metoprolal 50 mg", 5);
  q.filter.status = "rectified";
  auto hits = search(a, q);
  ASSERT_EQ(hits.hits.size(), 1u);
  EXPECT_EQ(hits.hits[0].pattern.weight, 0.6);
  q.filter.status = "pending";
  EXPECT_TRUE(search(a, q).hits.empty());

  // A corrected original text: the old text no longer scores 1, the new one does.
  r.original_text = "metoprolol tartrate";
  ASSERT_TRUE(upsert(a, r));
  hits = search(a, query("metoprolol tartrate", 1));
  ASSERT_EQ(hits.hits.size(), 1u);
  EXPECT_NEAR(hits.hits[0].similarity, 1.0, 1e-5);
  hits = search(a, query("metoprolal 50 mg", 1));
  ASSERT_EQ(hits.hits.size(), 1u);
  EXPECT_LT(hits.hits[0].similarity, 0.9);
  auto st = call<pattern_index_status>(self, a, sbm::status_atom::value);
  EXPECT_EQ(st->patterns, 1u);
  EXPECT_EQ(st->deleted, 1u);  // the old graph node

  auto gone = call<bool>(self, a, sbm::delete_atom::value, std::int64_t{42});
  ASSERT_TRUE(gone) << sys.render(gone.error());
  EXPECT_TRUE(*gone);
  EXPECT_EQ(sql("SELECT count(*) FROM patterns.patterns")[0][0], param{"0"});
  EXPECT_TRUE(search(a, query("metoprolol tartrate", 5)).hits.empty());
  auto again = call<bool>(self, a, sbm::delete_atom::value, std::int64_t{42});
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  st = call<pattern_index_status>(self, a, sbm::status_atom::value);
  EXPECT_EQ(st->patterns, 0u);
}

TEST_F(PatternIndexActor, AnUpsertFromAnOlderSagaRevisionChangesNothing) {
  auto a = stop_at_end(start(settings()));
  auto r = record(43, "spk-1", "metoprolal 50 mg");
  r.saga_revision = 2;
  r.status = "rectified";
  r.weight = 0.6;
  ASSERT_TRUE(upsert(a, r));
  // A late step of revision 1 (the saga was rewound by a verdict meanwhile) arrives after it.
  auto late = r;
  late.saga_revision = 1;
  late.status = "pending";
  late.weight = 0.5;
  ASSERT_TRUE(upsert(a, late));  // acknowledged: there is nothing left for that step to do
  auto rows = sql("SELECT status, weight, saga_revision FROM patterns.patterns WHERE pattern_id = 43");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], (sbm::db_row{param{"rectified"}, param{"0.6"}, param{"2"}}));
  auto q = query("metoprolal 50 mg", 5);
  auto hits = search(a, q);
  ASSERT_EQ(hits.hits.size(), 1u);
  EXPECT_EQ(hits.hits[0].pattern.status, "rectified");
  EXPECT_EQ(hits.hits[0].pattern.weight, 0.6);
  // The same or a newer revision applies.
  auto newer = r;
  newer.saga_revision = 3;
  newer.weight = 0.7;
  ASSERT_TRUE(upsert(a, newer));
  EXPECT_EQ(sql("SELECT weight FROM patterns.patterns WHERE pattern_id = 43")[0][0], param{"0.7"});
}

TEST_F(PatternIndexActor, WritesToOnePatternApplyInTheOrderSent) {
  auto a = stop_at_end(start(settings()));
  auto r = record(9, "spk-1", "shortness of breath");
  // Twenty-one upserts in flight at once over a pool of two connections.
  using handle = decltype(self->request(a, answer_timeout, sbm::upsert_atom::value, r));
  std::vector<handle> pending;
  for (int i = 0; i <= 20; ++i) {
    r.weight = i / 20.0;
    pending.push_back(self->request(a, answer_timeout, sbm::upsert_atom::value, r));
  }
  std::vector<bool> answered;
  for (auto& h : pending)
    h.receive([&](bool ok) { answered.push_back(ok); },
              [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  EXPECT_EQ(answered.size(), 21u);
  EXPECT_EQ(sql("SELECT weight FROM patterns.patterns WHERE pattern_id = 9")[0][0], param{"1"});
  auto hits = search(a, query("shortness of breath", 1));
  ASSERT_EQ(hits.hits.size(), 1u);
  EXPECT_EQ(hits.hits[0].pattern.weight, 1.0);
}

// The report saga's index steps, grouped: one statement and one commit for the batch, each
// pattern searchable after the answer, and a batch queued behind the single writes in flight
// for its ids, so the last sent is what stays.
TEST_F(PatternIndexActor, ABatchIsOneCommitAppliedInOrderWithTheWritesBeforeIt) {
  auto a = stop_at_end(start(settings()));
  auto single = record(11, "spk-1", "shortness of breath");
  single.weight = 0.2;
  auto in_flight = self->request(a, answer_timeout, sbm::upsert_atom::value, single);
  sbm::pattern_record_batch batch;
  for (std::int64_t id : {11, 12, 13}) {
    auto r = record(id, "spk-" + std::to_string(id % 2), phrases[static_cast<std::size_t>(id - 10)]);
    r.weight = 0.9;
    batch.records.push_back(r);
  }
  auto ok = call<bool>(self, a, sbm::upsert_atom::value, batch);
  ASSERT_TRUE(ok) << sys.render(ok.error());
  EXPECT_TRUE(*ok);
  in_flight.receive([](bool stored) { EXPECT_TRUE(stored); },
                    [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  // One transaction wrote the three rows (the single write of 11 committed before it).
  auto rows = sql("SELECT count(*), count(DISTINCT xmin::text), min(weight) FROM patterns.patterns");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], param{"3"});
  EXPECT_EQ(rows[0][1], param{"1"});
  EXPECT_EQ(rows[0][2], param{"0.9"});
  for (std::size_t i = 0; i < batch.records.size(); ++i) {
    auto hits = search(a, query(batch.records[i].original_text, 1));
    ASSERT_EQ(hits.hits.size(), 1u);
    EXPECT_EQ(hits.hits[0].pattern.pattern_id, batch.records[i].pattern_id);
    EXPECT_EQ(hits.hits[0].pattern.weight, 0.9);
  }

  // One bad record refuses the batch before anything is written; so does a repeated id.
  sbm::pattern_record_batch bad;
  bad.records = {record(14, "spk-1", "chest pain"), record(15, "spk-1", "")};
  EXPECT_EQ(code(call<bool>(self, a, sbm::upsert_atom::value, bad)), errc::invalid_argument);
  bad.records = {record(14, "spk-1", "chest pain"), record(14, "spk-1", "chest pains")};
  EXPECT_EQ(code(call<bool>(self, a, sbm::upsert_atom::value, bad)), errc::invalid_argument);
  bad.records.assign(sbm::max_pattern_batch + 1, record(16, "spk-1", "x"));
  EXPECT_EQ(code(call<bool>(self, a, sbm::upsert_atom::value, bad)), errc::invalid_argument);
  EXPECT_EQ(sql("SELECT count(*) FROM patterns.patterns")[0][0], param{"3"});
  auto st = call<pattern_index_status>(self, a, sbm::status_atom::value);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->patterns, 3u);
}

TEST_F(PatternIndexActor, RestartRebuildsFromPostgres) {
  auto first = start(settings());
  auto records = fill(first);
  // Values that need escaping in SQL arrays, text and JSON travel as themselves.
  auto odd = record(800, "spk-\xc3\xbc", "d\xc3\xa9j\xc3\xa0 vu, \"quoted\" {braces} \\ back",
                    {"a,b", "q\"uote", "{x}", "\xc3\xbcml\xc3\xa4ut", "NULL"});
  odd.context_text = "line\nbreak\ttab";
  odd.weight = 0.1 + 0.2;  // not exactly representable in decimal: must round-trip bit for bit
  ASSERT_TRUE(upsert(first, odd));
  ASSERT_TRUE(call<bool>(self, first, sbm::delete_atom::value, std::int64_t{103}));
  std::vector<pattern_hits> before;
  for (const auto& p : phrases) before.push_back(search(first, query(p, 5)));
  stop(first);

  // No snapshot: the whole index comes from patterns.patterns, 7 rows per page.
  auto second = stop_at_end(start(settings()));
  auto st = call<pattern_index_status>(self, second, sbm::status_atom::value);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->patterns, records.size());  // one deleted, one added
  EXPECT_EQ(st->deleted, 0u);
  for (std::size_t i = 0; i < phrases.size(); ++i) expect_same_hits(search(second, query(phrases[i], 5)), before[i]);
  auto q = query(odd.original_text, 1);
  q.filter.error_category = "a,b";
  auto found = search(second, q);
  ASSERT_EQ(found.hits.size(), 1u);
  std::sort(odd.error_categories.begin(), odd.error_categories.end());
  expect_same_record(found.hits[0].pattern, odd);
  EXPECT_NEAR(found.hits[0].similarity, 1.0, 0.2);
}

TEST_F(PatternIndexActor, SnapshotIsLoadedWhenItMatchesPostgres) {
  const std::string snap = dir + "/index/patterns.snapshot";
  auto first = start(settings(snap));
  fill(first);
  std::vector<pattern_hits> before;
  for (const auto& p : phrases) before.push_back(search(first, query(p, 5)));
  stop(first);  // a clean stop writes the snapshot
  ASSERT_TRUE(fs::exists(snap));
  ASSERT_TRUE(fs::exists(snap + ".hnsw"));
  const auto saved = inode_of(snap);

  auto second = stop_at_end(start(settings(snap)));
  for (std::size_t i = 0; i < phrases.size(); ++i) expect_same_hits(search(second, query(phrases[i], 5)), before[i]);
  // Loaded, not rebuilt: a rebuild writes a new snapshot file (a new inode through the rename).
  EXPECT_EQ(inode_of(snap), saved);
  auto st = call<pattern_index_status>(self, second, sbm::status_atom::value);
  EXPECT_EQ(st->patterns, phrases.size());
}

TEST_F(PatternIndexActor, StaleSnapshotIsRebuiltFromPostgres) {
  const std::string snap = dir + "/patterns.snapshot";
  auto first = start(settings(snap));
  auto records = fill(first);
  stop(first);
  ASSERT_TRUE(fs::exists(snap));
  const auto saved = inode_of(snap);

  // Changes the snapshot never saw: an actor without snapshots, then a hand-made SQL update.
  auto other = start(settings());
  auto added = record(900, "spk-9", "congestive heart failure exacerbation");
  ASSERT_TRUE(upsert(other, added));
  ASSERT_TRUE(*call<bool>(self, other, sbm::delete_atom::value, std::int64_t{101}));
  stop(other);
  sql("UPDATE patterns.patterns SET weight = 0.99 WHERE pattern_id = 100");

  auto third = stop_at_end(start(settings(snap)));
  EXPECT_NE(inode_of(snap), saved) << "the stale snapshot was used instead of a rebuild";
  auto st = call<pattern_index_status>(self, third, sbm::status_atom::value);
  EXPECT_EQ(st->patterns, records.size());  // one added, one deleted
  auto hits = search(third, query("congestive heart failure exacerbation", 1));
  ASSERT_EQ(hits.hits.size(), 1u);
  expect_same_record(hits.hits[0].pattern, added);
  hits = search(third, query("metoprolal 50 mg", 1));
  ASSERT_EQ(hits.hits.size(), 1u);
  EXPECT_NE(hits.hits[0].pattern.pattern_id, 101);
  hits = search(third, query("hyper tension", 1));
  ASSERT_EQ(hits.hits.size(), 1u);
  EXPECT_EQ(hits.hits[0].pattern.weight, 0.99);
}

TEST_F(PatternIndexActor, SnapshotOfAnotherDatabaseIsNotTaken) {
  const std::string snap = dir + "/patterns.snapshot";
  auto first = start(settings(snap));
  fill(first);
  stop(first);
  const auto saved = inode_of(snap);

  // A second database filled the same way holds the same ids with the same versions (both
  // sequences start at 1), so only the instance id tells the two apart.
  auto other_db = stop_at_end(start_postgres(sys, self, sbm::test::servers::shared().fresh_database()));
  auto s = settings();
  s.db = other_db;
  auto filler = start(s);
  fill(filler);
  stop(filler);

  s.snapshot_path = snap;
  auto second = stop_at_end(start(s));
  EXPECT_NE(inode_of(snap), saved) << "the other database's snapshot was taken";
  auto st = call<pattern_index_status>(self, second, sbm::status_atom::value);
  EXPECT_EQ(st->patterns, phrases.size());
}

TEST_F(PatternIndexActor, DamagedSnapshotIsRebuiltFromPostgres) {
  const std::string snap = dir + "/patterns.snapshot";
  auto first = start(settings(snap));
  fill(first);
  std::vector<pattern_hits> before;
  for (const auto& p : phrases) before.push_back(search(first, query(p, 5)));
  stop(first);
  {
    std::fstream f(snap + ".hnsw", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(snap + ".hnsw") / 2));
    f.write("\x7f\x7f\x7f\x7f", 4);
  }
  const auto damaged = inode_of(snap);
  auto second = stop_at_end(start(settings(snap)));
  EXPECT_NE(inode_of(snap), damaged) << "a damaged snapshot was used";
  for (std::size_t i = 0; i < phrases.size(); ++i) expect_same_hits(search(second, query(phrases[i], 5)), before[i]);
}

TEST_F(PatternIndexActor, LoadingAnswersUnavailableAndAnOutageAtStartHeals) {
  auto srv = sbm::test::servers::start_private();
  const std::string private_url = srv->fresh_database();
  auto pg = stop_at_end(start_postgres(sys, self, private_url));
  {
    pt::pattern_index_settings s = settings();
    s.db = pg;
    auto a = start(s);
    ASSERT_TRUE(upsert(a, record(1, "spk-1", "hyper tension")));
    stop(a);
  }
  srv->stop_postgres();
  pt::pattern_index_settings s = settings();
  s.db = pg;
  s.db_timeout = 1s;
  auto a = stop_at_end(pt::spawn_pattern_index(sys, s));
  auto st = call<pattern_index_status>(self, a, sbm::status_atom::value);
  ASSERT_TRUE(st);
  EXPECT_FALSE(st->ready);
  EXPECT_EQ(code(call<pattern_hits>(self, a, sbm::search_atom::value, query("hyper tension"))),
            errc::unavailable);
  EXPECT_EQ(code(call<bool>(self, a, sbm::upsert_atom::value, record(2, "spk-1", "x"))),
            errc::unavailable);
  EXPECT_EQ(code(call<bool>(self, a, sbm::delete_atom::value, std::int64_t{1})), errc::unavailable);

  srv->start_postgres();
  const bool ready = sbm::test::eventually([&] {
    auto s2 = call<pattern_index_status>(self, a, sbm::status_atom::value);
    return s2 && s2->ready;
  }, 60s);
  ASSERT_TRUE(ready);
  auto hits = search(a, query("hypertension", 1));
  ASSERT_EQ(hits.hits.size(), 1u);
  EXPECT_EQ(hits.hits[0].pattern.pattern_id, 1);
}

}  // namespace

// --- in a cluster: indexes that hold their owned speakers' patterns, and the router ------------
//
// "Members" in one process on one database: each an index told the placement, and a router in
// front of member a's. Only the placement function decides who holds what (the speakers'
// rendezvous placement), so the test computes the owners with it too.

using sbm::cluster_placement;
using sbm::placement_member;

namespace {

struct holding_state {
  std::vector<caf::typed_response_promise<pattern_hits>> held;
};

// A member that takes searches and never answers (frozen): what the scatter timeout is for.
pattern_index_actor::behavior_type frozen_index(pattern_index_actor::stateful_pointer<holding_state> self) {
  return {
    [](sbm::upsert_atom, pattern_record&) { return true; },
    [](sbm::upsert_atom, sbm::pattern_record_batch&) { return true; },
    [](sbm::delete_atom, std::int64_t) { return false; },
    [self](sbm::search_atom, const pattern_search&) -> caf::result<pattern_hits> {
      self->state.held.push_back(self->make_response_promise<pattern_hits>());
      return self->state.held.back();
    },
    [](sbm::search_atom, const sbm::pattern_batch_search&) { return sbm::pattern_batch_hits{}; },
    [](sbm::status_atom) { return pattern_index_status{}; },
    [](sbm::metrics_atom) { return sbm::component_metrics{}; },
  };
}

}  // namespace

class ClusteredPatternIndex : public PatternIndexActor {
 protected:
  pattern_index_actor start_member() {
    auto s = settings();
    s.clustered = true;
    return stop_at_end(pt::spawn_pattern_index(sys, std::move(s)));
  }

  // What the membership actor of `self_address` tells: every member, the others with their index.
  cluster_placement placement(const std::string& self_address,
                              const std::vector<std::pair<std::string, pattern_index_actor>>& members,
                              const std::set<std::string>& unreachable = {}) {
    cluster_placement p;
    p.ready = true;
    p.self = self_address;
    for (const auto& [address, index] : members) {
      placement_member m;
      m.address = address;
      m.epoch = 1;
      m.reachable = unreachable.count(address) == 0;
      if (address != self_address) m.patterns = caf::actor_cast<caf::actor>(index);
      p.members.push_back(std::move(m));
    }
    return p;
  }

  void tell(const pattern_index_actor& to, const cluster_placement& p) {
    self->send(caf::actor_cast<sbm::pattern_placement_actor>(to), sbm::placement_atom::value, p);
  }

  std::uint64_t held(const pattern_index_actor& a) {
    auto st = call<pattern_index_status>(self, a, sbm::status_atom::value);
    return st && st->ready ? st->patterns : 0;
  }

  struct two_members {
    pattern_index_actor a, b, router;  // the router is a's
    std::vector<std::pair<std::string, pattern_index_actor>> members;
  };

  // Members a:1 and b:1, both told the owners and ready, and a's router.
  two_members start_two() {
    two_members t;
    t.a = start_member();
    t.b = start_member();
    t.members = {{"a:1", t.a}, {"b:1", t.b}};
    // Until told the owners, an index in a cluster loads nothing and is not ready.
    EXPECT_EQ(code(call<pattern_hits>(self, t.a, sbm::search_atom::value, query("lisinopril"))), errc::unavailable);
    tell(t.a, placement("a:1", t.members));
    tell(t.b, placement("b:1", t.members));
    pt::pattern_router_settings rs;
    rs.local = t.a;
    t.router = stop_at_end(pt::spawn_pattern_router(sys, rs));
    tell(t.router, placement("a:1", t.members));
    EXPECT_TRUE(sbm::test::eventually([&] { return ready(t.a) && ready(t.b); }));
    return t;
  }

  bool ready(const pattern_index_actor& x) {
    auto st = call<pattern_index_status>(self, x, sbm::status_atom::value);
    return st && st->ready;
  }

  static std::string owner(const std::vector<std::string>& addresses, const std::string& speaker) {
    return addresses[sbm::domain::owner_index(addresses, speaker)];
  }
};

// A batch through the router is split by owner: each part is written and indexed by its owner.
TEST_F(ClusteredPatternIndex, TheRouterSplitsABatchByTheOwnersOfItsSpeakers) {
  const auto t = start_two();
  const auto &a = t.a, &b = t.b, &router = t.router;
  sbm::pattern_record_batch batch;
  for (std::size_t i = 0; i < phrases.size(); ++i)
    batch.records.push_back(record(static_cast<std::int64_t>(200 + i), "spk-" + std::to_string(i), phrases[i]));
  const std::vector<std::string> ab{"a:1", "b:1"};
  std::size_t on_a = 0;
  for (const auto& r : batch.records) on_a += owner(ab, r.speaker_id) == "a:1";
  ASSERT_GT(on_a, 0u);
  ASSERT_LT(on_a, batch.records.size());
  auto ok = call<bool>(self, router, sbm::upsert_atom::value, batch);
  ASSERT_TRUE(ok) << sys.render(ok.error());
  EXPECT_TRUE(*ok);
  EXPECT_EQ(held(a), on_a);
  EXPECT_EQ(held(b), batch.records.size() - on_a);
  EXPECT_EQ(sql("SELECT count(*) FROM patterns.patterns")[0][0], param{std::to_string(batch.records.size())});
  // An owner that cannot be reached fails the answer; the reachable owner's part is stored.
  tell(router, placement("a:1", t.members, {"b:1"}));
  for (auto& r : batch.records) r.weight = 0.8;
  EXPECT_EQ(code(call<bool>(self, router, sbm::upsert_atom::value, batch)), errc::moving);
  EXPECT_EQ(sql("SELECT count(*) FROM patterns.patterns WHERE weight = 0.8")[0][0], param{std::to_string(on_a)});
}

TEST_F(ClusteredPatternIndex, EachMemberHoldsItsSpeakersAndTheRouterFindsThemAllOnce) {
  const auto t = start_two();
  const auto &a = t.a, &b = t.b, &router = t.router;

  // Twelve speakers, one pattern each, written through node a's router: each lands on its owner.
  std::vector<pattern_record> records;
  for (std::size_t i = 0; i < phrases.size(); ++i) {
    records.push_back(record(static_cast<std::int64_t>(200 + i), "spk-" + std::to_string(i), phrases[i]));
    ASSERT_TRUE(upsert(router, records.back()));
  }
  const std::vector<std::string> ab{"a:1", "b:1"};
  std::size_t on_a = 0;
  for (const auto& r : records) on_a += owner(ab, r.speaker_id) == "a:1";
  ASSERT_GT(on_a, 0u);
  ASSERT_LT(on_a, records.size());
  EXPECT_EQ(held(a), on_a);
  EXPECT_EQ(held(b), records.size() - on_a);

  // By speaker: the owner answers, whoever holds the router.
  for (const auto& r : records) {
    auto q = query(r.original_text, 3);
    q.filter.speaker_id = r.speaker_id;
    auto hits = search(router, q);
    ASSERT_EQ(hits.hits.size(), 1u) << r.speaker_id;
    EXPECT_EQ(hits.hits[0].pattern.pattern_id, r.pattern_id);
    EXPECT_TRUE(hits.missing.empty());
  }
  // Unfiltered: every member asked, merged, each pattern once, best first, cut at top_k.
  auto all = search(router, query("patient heart pressure", 100));
  EXPECT_EQ(all.plan, "scatter:2/2");
  EXPECT_TRUE(all.missing.empty());
  std::set<std::int64_t> ids;
  for (const auto& h : all.hits) ids.insert(h.pattern.pattern_id);
  EXPECT_EQ(ids.size(), all.hits.size());
  EXPECT_TRUE(std::is_sorted(all.hits.begin(), all.hits.end(),
                             [](const auto& x, const auto& y) { return x.similarity > y.similarity; }));
  auto one = search(router, query(records[4].original_text, 1));
  ASSERT_EQ(one.hits.size(), 1u);
  EXPECT_EQ(one.hits[0].pattern.pattern_id, records[4].pattern_id);

  // A third member joins: it reads its speakers' patterns, the others drop them; each held once.
  auto c = start_member();
  std::vector<std::pair<std::string, pattern_index_actor>> three{{"a:1", a}, {"b:1", b}, {"c:1", c}};
  tell(c, placement("c:1", three));
  tell(a, placement("a:1", three));
  tell(b, placement("b:1", three));
  tell(router, placement("a:1", three));
  const std::vector<std::string> abc{"a:1", "b:1", "c:1"};
  std::map<std::string, std::uint64_t> want;
  for (const auto& r : records) ++want[owner(abc, r.speaker_id)];
  ASSERT_GT(want["c:1"], 0u);
  EXPECT_TRUE(sbm::test::eventually([&] {
    return held(a) == want["a:1"] && held(b) == want["b:1"] && held(c) == want["c:1"];
  })) << held(a) << " " << held(b) << " " << held(c);
  for (const auto& r : records) {
    auto q = query(r.original_text, 3);
    q.filter.speaker_id = r.speaker_id;
    auto hits = search(router, q);
    ASSERT_EQ(hits.hits.size(), 1u) << r.speaker_id;
    EXPECT_EQ(hits.hits[0].pattern.pattern_id, r.pattern_id);
  }
  EXPECT_EQ(search(router, query("patient heart pressure", 100)).hits.size(), all.hits.size());

  // A write that reaches a former owner (its sender still had the older owners) after the new
  // owner read its pages: stored, but answered moving so the caller sends it again, and the
  // retry, routed by the owners known now, is indexed on the owner.
  const auto moved = std::find_if(records.begin(), records.end(), [&](const auto& r) {
    return owner(ab, r.speaker_id) == "a:1" && owner(abc, r.speaker_id) == "c:1";
  });
  ASSERT_NE(moved, records.end());
  auto late = record(400, moved->speaker_id, "metoprolol tartrate twenty five milligrams");
  EXPECT_EQ(code(call<bool>(self, a, sbm::upsert_atom::value, late)), errc::moving);
  EXPECT_EQ(held(c), want["c:1"]);
  ASSERT_TRUE(upsert(router, late));
  EXPECT_EQ(held(c), want["c:1"] + 1);
  EXPECT_EQ(held(a), want["a:1"]);
  auto late_q = query(late.original_text, 3);
  late_q.filter.speaker_id = late.speaker_id;
  auto late_hits = search(router, late_q);
  ASSERT_EQ(late_hits.hits.size(), 2u);

  // c is lost (BASP): the answer names it and lacks its speakers; a search of one of them is
  // refused as moving (retry later), not answered empty.
  tell(router, placement("a:1", three, {"c:1"}));
  auto partial = search(router, query("patient heart pressure", 100));
  EXPECT_EQ(partial.missing, std::vector<std::string>{"c:1"});
  EXPECT_EQ(partial.plan, "scatter:2/3");
  EXPECT_EQ(partial.hits.size(), all.hits.size() - want["c:1"]);
  const auto lost = std::find_if(records.begin(), records.end(),
                                 [&](const auto& r) { return owner(abc, r.speaker_id) == "c:1"; });
  auto q = query(lost->original_text);
  q.filter.speaker_id = lost->speaker_id;
  EXPECT_EQ(code(call<pattern_hits>(self, router, sbm::search_atom::value, q)), errc::moving);
  EXPECT_EQ(code(call<bool>(self, router, sbm::upsert_atom::value, *lost)), errc::moving);
}

TEST_F(ClusteredPatternIndex, AFrozenMemberMakesTheAnswerPartialAndTheScattersAreBounded) {
  auto a = start_member();
  auto frozen = stop_at_end(caf::actor_cast<pattern_index_actor>(sys.spawn(frozen_index)));
  std::vector<std::pair<std::string, pattern_index_actor>> two{{"a:1", a}, {"z:1", frozen}};
  tell(a, placement("a:1", two));
  ASSERT_TRUE(sbm::test::eventually([&] {
    auto s = call<pattern_index_status>(self, a, sbm::status_atom::value);
    return s && s->ready;
  }));
  pt::pattern_router_settings rs;
  rs.local = a;
  rs.scatter_timeout = 3s;
  rs.max_scatters = 1;
  auto router = stop_at_end(pt::spawn_pattern_router(sys, rs));
  tell(router, placement("a:1", two));
  // A speaker that a:1 owns is written and found through the router.
  const std::vector<std::string> az{"a:1", "z:1"};
  std::string mine;
  for (int i = 0; mine.empty(); ++i)
    if (owner(az, "spk-" + std::to_string(i)) == "a:1") mine = "spk-" + std::to_string(i);
  ASSERT_TRUE(upsert(router, record(300, mine, "atrial fibrillation")));

  // One scatter waits on the frozen member; a second one meanwhile is refused (the bound), and
  // the first answers at the scatter timeout with a's hits and z named missing.
  auto first = self->request(router, caf::infinite, sbm::search_atom::value, query("atrial fibrillation"));
  ASSERT_TRUE(sbm::test::eventually([&] {
    auto second = call<pattern_hits>(self, router, sbm::search_atom::value, query("atrial fibrillation"));
    return !second && code(second) == errc::overloaded;
  }));
  pattern_hits got;
  first.receive([&](pattern_hits& h) { got = std::move(h); },
                [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  EXPECT_EQ(got.missing, std::vector<std::string>{"z:1"});
  ASSERT_EQ(got.hits.size(), 1u);
  EXPECT_EQ(got.hits[0].pattern.pattern_id, 300);
  // The bound is free again once answered.
  auto again = self->request(router, caf::infinite, sbm::search_atom::value, query("atrial fibrillation"));
  again.receive([&](pattern_hits& h) { EXPECT_EQ(h.missing, std::vector<std::string>{"z:1"}); },
                [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
}
