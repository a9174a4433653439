// The pattern index core against a brute-force oracle: every filter field alone and combined, under
// every plan (exact posting-list scan, exact column scan, hnswlib, the filtered walk, exact fallback);
// updates, deletes, growth, compaction, snapshots (round trip and refusal of damaged or foreign
// ones), the weight floor, and filter values that look like SQL as plain data.
#include "actors/patterns/core/pattern_index.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "actors/patterns/core/embedder.hpp"
#include "actors/patterns/core/int8_codes.hpp"

namespace {

namespace fs = std::filesystem;
using sbm::patterns::hashed_ngram_embedder;
using sbm::patterns::index_config;
using sbm::patterns::pattern_entry;
using sbm::patterns::pattern_index;
using sbm::patterns::search_filter;
using sbm::patterns::search_result;
using sbm::patterns::snapshot_error;

constexpr std::uint32_t dim = 32;
const std::string embedder_name = "test-embedder/d32";

const std::vector<std::string> category_names = {
    "dosage", "drug_name", "homophone", "medical_terminology", "numbers_units",
    "punctuation_formatting", "speaker_attribution"};
const std::vector<std::string> buckets = {"no_touch", "low_touch", "medium_touch", "high_touch"};
const std::vector<std::string> qualities = {"excellent", "good", "fair", "poor"};
const std::vector<std::string> statuses = {"pending", "rectified", "not_rectified"};

std::vector<float> random_unit(std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(dim);
  double squares = 0;
  for (auto& x : v) {
    x = normal(rng);
    squares += static_cast<double>(x) * x;
  }
  for (auto& x : v) x = static_cast<float>(x / std::sqrt(squares));
  return v;
}

struct corpus {
  std::vector<pattern_entry> entries;
  std::vector<std::vector<float>> vectors;
};

// Skewed on purpose: speaker spk-0 holds a large share, the others few, so filters range from
// unselective to very selective.
corpus make_corpus(std::size_t n, std::uint64_t seed = 7, std::size_t speakers = 40) {
  std::mt19937_64 rng(seed);
  corpus c;
  for (std::size_t i = 0; i < n; ++i) {
    pattern_entry e;
    e.pattern_id = static_cast<std::int64_t>(i + 1);
    const std::size_t s = (rng() % 4 == 0) ? 0 : 1 + rng() % (speakers - 1);
    e.speaker_id = "spk-" + std::to_string(s);
    e.client_id = "client-" + std::to_string(s % 5);
    e.bucket_type = buckets[rng() % buckets.size()];
    e.original_text = "original " + std::to_string(i);
    e.corrected_text = "corrected " + std::to_string(i);
    e.context_text = (i % 3 == 0) ? "" : "context " + std::to_string(i);
    std::set<std::string> cats;
    for (std::size_t k = 0; k < category_names.size(); ++k)
      if (rng() % (k + 2) == 0) cats.insert(category_names[k]);
    e.error_categories.assign(cats.begin(), cats.end());
    e.audio_quality = qualities[rng() % qualities.size()];
    e.speaker_clarity = (i % 2) ? "clear" : "unclear";
    e.background_noise = (i % 4) ? "low" : "high";
    e.number_of_speakers = 1 + static_cast<std::int32_t>(i % 3);
    e.overlapping_speech = i % 5 == 0;
    e.requires_specialized_knowledge = rng() % 3 == 0;
    e.status = statuses[rng() % statuses.size()];
    e.weight = static_cast<double>(rng() % 11) / 10.0;
    e.created_at_ms = 1'700'000'000'000 + static_cast<std::int64_t>(rng() % 1'000'000);
    e.version = static_cast<std::int64_t>(i + 100);
    c.entries.push_back(std::move(e));
    c.vectors.push_back(random_unit(rng));
  }
  return c;
}

bool oracle_matches(const pattern_entry& e, const search_filter& f) {
  auto eq = [](const std::string& want, const std::string& have) {
    return want.empty() || want == have;
  };
  if (!eq(f.speaker_id, e.speaker_id) || !eq(f.client_id, e.client_id) ||
      !eq(f.bucket_type, e.bucket_type) || !eq(f.audio_quality, e.audio_quality) ||
      !eq(f.status, e.status))
    return false;
  if (!f.error_category.empty() &&
      std::find(e.error_categories.begin(), e.error_categories.end(), f.error_category) ==
          e.error_categories.end())
    return false;
  if (f.requires_specialized_knowledge &&
      *f.requires_specialized_knowledge != e.requires_specialized_knowledge)
    return false;
  if (f.from_ms != 0 && e.created_at_ms < f.from_ms) return false;
  if (f.to_ms != 0 && e.created_at_ms > f.to_ms) return false;
  if (f.client_ids &&
      std::find(f.client_ids->begin(), f.client_ids->end(), e.client_id) == f.client_ids->end())
    return false;
  return e.weight >= f.min_weight;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// Brute force over what the index should hold (live entries by id).
struct oracle {
  std::vector<pattern_entry> entries;
  std::vector<std::vector<float>> vectors;

  explicit oracle(const corpus& c) : entries(c.entries), vectors(c.vectors) {}

  std::vector<std::pair<std::int64_t, double>> top(const std::vector<float>& q,
                                                   const search_filter& f, std::size_t k) const {
    std::vector<std::pair<std::int64_t, double>> all;
    for (std::size_t i = 0; i < entries.size(); ++i)
      if (oracle_matches(entries[i], f)) all.emplace_back(entries[i].pattern_id, dot(q, vectors[i]));
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    if (all.size() > k) all.resize(k);
    return all;
  }

  void erase(std::int64_t id) {
    for (std::size_t i = 0; i < entries.size(); ++i)
      if (entries[i].pattern_id == id) {
        entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(i));
        vectors.erase(vectors.begin() + static_cast<std::ptrdiff_t>(i));
        return;
      }
  }
};

std::vector<std::int64_t> ids_of(const search_result& r) {
  std::vector<std::int64_t> out;
  for (const auto& h : r.hits) out.push_back(h.pattern.pattern_id);
  return out;
}

std::vector<std::int64_t> ids_of(const std::vector<std::pair<std::int64_t, double>>& r) {
  std::vector<std::int64_t> out;
  for (const auto& h : r) out.push_back(h.first);
  return out;
}

// Checks ids, order and scores against the oracle; returns the plan.
std::string expect_as_oracle(const pattern_index& ix, const oracle& o, const std::vector<float>& q,
                             const search_filter& f, std::size_t k, const std::string& what) {
  const auto got = ix.search(q, f, k);
  const auto want = o.top(q, f, k);
  EXPECT_EQ(ids_of(got), ids_of(want)) << what << " plan " << got.plan;
  for (std::size_t i = 0; i < std::min(got.hits.size(), want.size()); ++i)
    EXPECT_NEAR(got.hits[i].similarity, want[i].second, 1e-5) << what;
  return got.plan;
}

struct named_filter {
  std::string name;
  search_filter filter;
};

// Every field alone, and combinations of them.
std::vector<named_filter> filters_to_check() {
  std::vector<named_filter> out;
  auto add = [&](std::string name, auto set) {
    search_filter f;
    set(f);
    out.push_back({std::move(name), f});
  };
  add("none", [](search_filter&) {});
  add("speaker large", [](search_filter& f) { f.speaker_id = "spk-0"; });
  add("speaker small", [](search_filter& f) { f.speaker_id = "spk-7"; });
  add("client", [](search_filter& f) { f.client_id = "client-2"; });
  add("bucket", [](search_filter& f) { f.bucket_type = "low_touch"; });
  // A client scope (issue 21): one of several clients, a filter inside it, one outside it, none.
  add("scope of two", [](search_filter& f) { f.client_ids = std::vector<std::string>{"client-1", "client-3"}; });
  add("scope of one unknown", [](search_filter& f) { f.client_ids = std::vector<std::string>{"client-9"}; });
  add("scope+client inside", [](search_filter& f) {
    f.client_ids = std::vector<std::string>{"client-1", "client-3"};
    f.client_id = "client-3";
  });
  add("scope+client outside", [](search_filter& f) {
    f.client_ids = std::vector<std::string>{"client-1"};
    f.client_id = "client-2";
  });
  add("scope of none", [](search_filter& f) { f.client_ids = std::vector<std::string>{}; });
  add("audio", [](search_filter& f) { f.audio_quality = "poor"; });
  add("status", [](search_filter& f) { f.status = "rectified"; });
  add("category common", [](search_filter& f) { f.error_category = "dosage"; });
  add("category rare", [](search_filter& f) { f.error_category = "speaker_attribution"; });
  add("specialized", [](search_filter& f) { f.requires_specialized_knowledge = true; });
  add("not specialized", [](search_filter& f) { f.requires_specialized_knowledge = false; });
  add("from", [](search_filter& f) { f.from_ms = 1'700'000'500'000; });
  add("to", [](search_filter& f) { f.to_ms = 1'700'000'100'000; });
  add("date window", [](search_filter& f) {
    f.from_ms = 1'700'000'200'000;
    f.to_ms = 1'700'000'260'000;
  });
  add("narrow window", [](search_filter& f) {
    f.from_ms = 1'700'000'300'000;
    f.to_ms = 1'700'000'303'000;
  });
  add("weight floor", [](search_filter& f) { f.min_weight = 0.7; });
  add("speaker+status", [](search_filter& f) {
    f.speaker_id = "spk-0";
    f.status = "pending";
  });
  add("client+category+specialized", [](search_filter& f) {
    f.client_id = "client-1";
    f.error_category = "drug_name";
    f.requires_specialized_knowledge = false;
  });
  add("bucket+audio+weight", [](search_filter& f) {
    f.bucket_type = "high_touch";
    f.audio_quality = "good";
    f.min_weight = 0.3;
  });
  add("everything", [](search_filter& f) {
    f.speaker_id = "spk-0";
    f.client_id = "client-0";
    f.bucket_type = "medium_touch";
    f.audio_quality = "fair";
    f.status = "pending";
    f.error_category = "dosage";
    f.requires_specialized_knowledge = false;
    f.from_ms = 1'700'000'100'000;
    f.to_ms = 1'700'000'900'000;
    f.min_weight = 0.2;
  });
  add("nothing matches", [](search_filter& f) {
    f.speaker_id = "spk-3";
    f.client_id = "client-0";  // spk-3 belongs to client-3
  });
  return out;
}

// The exact plans a filter may be answered by: a scan of the posting list of one attribute it
// names (the narrowest), else of every slot.
std::set<std::string> exact_plans(const search_filter& f) {
  std::set<std::string> out;
  // A long list is pre-scanned on int8 codes and re-ranked: answers must still be the oracle's.
  for (const char* how : {"exact:", "int8:"}) {
    if (!f.speaker_id.empty()) out.insert(how + std::string("speaker"));
    if (!f.client_id.empty() || f.client_ids) out.insert(how + std::string("client"));
    if (!f.error_category.empty()) out.insert(how + std::string("category"));
  }
  if (out.empty()) out.insert("exact:scan");
  return out;
}

pattern_index build(const corpus& c, index_config cfg) {
  pattern_index ix(cfg, embedder_name);
  for (std::size_t i = 0; i < c.entries.size(); ++i) ix.upsert(c.entries[i], c.vectors[i]);
  return ix;
}

index_config small_config() {
  index_config cfg;
  cfg.dimension = dim;
  return cfg;
}

// Every query goes to the graph first: nothing is small enough for an exact scan.
index_config graph_config() {
  index_config cfg = small_config();
  cfg.exact_threshold = 0;
  cfg.ef_search = 200;
  cfg.walk_ef = 200;
  return cfg;
}

// Every posting-list scan pre-scans int8 codes, however short the list.
index_config int8_config() {
  index_config cfg = small_config();
  cfg.code_scan_min = 0;
  return cfg;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "sbm-pattern-index-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  std::string path_;
};

void flip_byte(const std::string& path, std::uintmax_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

TEST(PatternIndexCore, ExactPlansEqualBruteForceForEveryFilterField) {
  const corpus c = make_corpus(1500);
  const oracle o(c);
  const pattern_index ix = build(c, small_config());
  std::mt19937_64 rng(11);
  for (const auto& nf : filters_to_check()) {
    for (int q = 0; q < 5; ++q) {
      const auto query = random_unit(rng);
      const auto plan = expect_as_oracle(ix, o, query, nf.filter, 10, nf.name);
      if (nf.name == "scope of one unknown" || nf.name == "scope of none") {
        EXPECT_EQ(plan, "empty") << nf.name;  // no client of the scope can match: nothing is searched
      } else {
        EXPECT_TRUE(exact_plans(nf.filter).count(plan)) << nf.name << ": " << plan;
      }
    }
  }
}

TEST(PatternIndexCore, GraphPlansEqualBruteForceForEveryFilterField) {
  const corpus c = make_corpus(1500);
  const oracle o(c);
  const pattern_index ix = build(c, graph_config());
  std::mt19937_64 rng(12);
  std::set<std::string> kinds;
  for (const auto& nf : filters_to_check()) {
    for (int q = 0; q < 5; ++q) {
      const auto plan = expect_as_oracle(ix, o, random_unit(rng), nf.filter, 10, nf.name);
      kinds.insert(plan.substr(0, plan.find_first_of("(,")));
    }
  }
  // No filter: hnswlib's own search; unselective filters: the walk scoring every neighbour;
  // selective ones: the two-hop walk; a narrow date window (no counts) finds fewer than k matches
  // in the walk and falls back to an exact scan.
  EXPECT_TRUE(kinds.count("hnsw:ef=200")) << "no query was answered from the graph";
  EXPECT_TRUE(kinds.count("walk:ef=200"));
  EXPECT_TRUE(kinds.count("walk2:ef=200"));
  EXPECT_TRUE(kinds.count("exact:scan")) << "no query fell back to an exact scan";
}

// A draft's segments searched at once answer exactly what each segment searched alone answers:
// the same hits in the same order with the same scores, each pattern once in the union, under
// every filter and every plan (exact partition and column scans, the graph, its fallback).
TEST(PatternIndexCore, BatchSearchAnswersWhatEachQueryAloneAnswers) {
  const corpus c = make_corpus(1500);
  std::set<std::string> plans;
  for (const auto& cfg : {small_config(), graph_config()}) {
    const pattern_index ix = build(c, cfg);
    std::mt19937_64 rng(21);
    for (const auto& nf : filters_to_check()) {
      std::vector<std::vector<float>> queries;
      for (int q = 0; q < 7; ++q) queries.push_back(random_unit(rng));
      const auto batch = ix.search_batch(queries, nf.filter, 10);
      plans.insert(batch.plan.substr(0, batch.plan.find_first_of("(,")));
      ASSERT_EQ(batch.per_query.size(), queries.size()) << nf.name;
      std::set<std::int64_t> expected_union;
      for (std::size_t q = 0; q < queries.size(); ++q) {
        const search_result alone = ix.search(queries[q], nf.filter, 10);
        ASSERT_EQ(batch.per_query[q].size(), alone.hits.size()) << nf.name << " query " << q;
        for (std::size_t h = 0; h < alone.hits.size(); ++h) {
          const auto [at, similarity] = batch.per_query[q][h];
          ASSERT_LT(at, batch.patterns.size());
          EXPECT_EQ(batch.patterns[at], alone.hits[h].pattern) << nf.name << " query " << q;
          EXPECT_EQ(similarity, alone.hits[h].similarity) << nf.name << " query " << q;
          expected_union.insert(alone.hits[h].pattern.pattern_id);
        }
        if (batch.plan.find(' ') == std::string::npos) {
          EXPECT_EQ(batch.plan, alone.plan) << nf.name;
        }
      }
      std::vector<std::int64_t> got;
      for (const auto& p : batch.patterns) got.push_back(p.pattern_id);
      EXPECT_EQ(got, std::vector<std::int64_t>(expected_union.begin(), expected_union.end()))
          << nf.name << ": the union, each pattern once, by pattern_id";
    }
  }
  EXPECT_TRUE(plans.count("exact:speaker"));
  EXPECT_TRUE(plans.count("exact:scan"));
  EXPECT_TRUE(plans.count("hnsw:ef=200")) << "no batch was answered from the graph";
  EXPECT_TRUE(plans.count("walk2:ef=200")) << "no batch was answered by the filtered walk";
  EXPECT_TRUE(plans.count("empty"));
  pattern_index ix = build(c, small_config());
  EXPECT_TRUE(ix.search_batch({}, {}, 10).patterns.empty());
  EXPECT_THROW(ix.search_batch({std::vector<float>(dim + 1, 0.0f)}, {}, 10), std::invalid_argument);
}

// Points around a few centres, with attributes drawn independently of them: what the graph walk
// must handle (a filter's matches spread over every cluster, most neighbours not matching).
corpus make_clustered(std::size_t n, std::uint64_t seed, int clusters = 40) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::vector<float>> centres;
  for (int c = 0; c < clusters; ++c) centres.push_back(random_unit(rng));
  corpus out;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& centre = centres[rng() % centres.size()];
    std::vector<float> v(dim);
    double squares = 0;
    for (std::uint32_t j = 0; j < dim; ++j) {
      v[j] = centre[j] + 0.15f * normal(rng);
      squares += static_cast<double>(v[j]) * v[j];
    }
    for (auto& x : v) x = static_cast<float>(x / std::sqrt(squares));
    pattern_entry e;
    e.pattern_id = static_cast<std::int64_t>(i + 1);
    e.error_categories = {"category-" + std::to_string(rng() % 10)};  // 10%
    e.client_id = "client-" + std::to_string(rng() % 100);            // 1%
    e.speaker_id = "spk-" + std::to_string(rng() % 1000);             // 0.1%
    e.status = "pending";
    e.version = e.pattern_id;
    out.entries.push_back(std::move(e));
    out.vectors.push_back(std::move(v));
  }
  return out;
}

// A corpus indexed as a rebuild does (one batch on two threads) under `cfg`.
pattern_index build_batched(const corpus& c, index_config cfg) {
  cfg.initial_capacity = c.entries.size();
  pattern_index ix(cfg, embedder_name);
  ix.upsert_batch(c.entries, c.vectors, 2);
  return ix;
}

// A filter drawn afresh for each query: a random value of the attribute (make_clustered's).
struct filter_row {
  const char* name;
  std::function<void(search_filter&, std::mt19937_64&)> set;
};
const filter_row category_row{"category (10%)", [](search_filter& f, std::mt19937_64& r) {
                                f.error_category = "category-" + std::to_string(r() % 10);
                              }};
const filter_row client_row{"client (1%)", [](search_filter& f, std::mt19937_64& r) {
                              f.client_id = "client-" + std::to_string(r() % 100);
                            }};

// The filter-aware walk against brute force at each selectivity the goal names, with the exact
// plans switched off so that nothing but the walk (and its fallback) answers. Ten clusters of
// 2,000: a 1% filter leaves ~20 matches per cluster, as at 1M patterns in 1,000 clusters (with
// fewer per cluster the top 10 lie in clusters the query is not near, and the exact plan answers).
TEST(PatternIndexCore, FilteredWalkRecallAtEverySelectivity) {
  const corpus c = make_clustered(20000, 31, 10);
  const oracle o(c);
  index_config cfg = small_config();
  cfg.exact_threshold = 0;
  const pattern_index ix = build_batched(c, cfg);
  std::mt19937_64 rng(32);
  struct row : filter_row {
    const char* walk;  // the walk the estimate should choose
  };
  const std::vector<row> rows = {
      {{"none", [](search_filter&, std::mt19937_64&) {}}, "hnsw:ef=32"},
      {category_row, "walk2:ef=64"},
      {client_row, "walk2:ef=64"},
      {{"speaker (0.1%)",
        [](search_filter& f, std::mt19937_64& r) { f.speaker_id = "spk-" + std::to_string(r() % 1000); }},
       "walk2:ef=64"},
  };
  for (const auto& r : rows) {
    std::size_t found = 0, wanted = 0, walked = 0;
    const int count = 200;
    for (int q = 0; q < count; ++q) {
      search_filter f;
      r.set(f, rng);
      const auto query = o.vectors[rng() % o.vectors.size()];
      const auto got = ix.search(query, f, 10);
      const auto want = ids_of(o.top(query, f, 10));
      for (const auto& h : got.hits) EXPECT_TRUE(oracle_matches(h.pattern, f)) << r.name;
      const auto ids = ids_of(got);
      for (auto id : want) found += std::count(ids.begin(), ids.end(), id);
      wanted += want.size();
      walked += got.plan == r.walk;
    }
    const double recall = static_cast<double>(found) / static_cast<double>(wanted);
    // The walk at ef 64 measured 0.95 at 1% here and more at the other rows; the goal of 0.99 is
    // not met by the walk alone at 1% (bench/RESULTS.md).
    EXPECT_GE(recall, 0.9) << r.name;
    if (std::string(r.name) != "speaker (0.1%)") {
      // A speaker holds ~20 of the 20,000: the walk may miss some and fall back, but the others
      // must be answered by the walk itself, not by the fallback.
      EXPECT_GE(walked, count * 9 / 10) << r.name;
    }
  }
}

// The scan kernels (SIMD where this CPU has it) against their definitions, at the dimensions in
// use and odd ones, with counts that leave a tail after the last full SIMD step.
TEST(PatternIndexCore, CodeKernelsEqualTheirDefinitions) {
  namespace d = sbm::patterns::detail;
  std::mt19937_64 rng(71);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const std::uint32_t dimension : {32u, 100u, 128u, 256u}) {
    const std::size_t count = 37;
    auto draw = [&] {
      std::vector<float> v(dimension);
      for (auto& x : v) x = normal(rng);
      return v;
    };
    const auto query = draw();
    // Signs: sum over the set bits of the query's level, plus the offset per set bit.
    const std::size_t words = d::sign_words(dimension);
    std::vector<std::uint64_t> planes(4 * words), codes(count * words);
    std::vector<std::vector<float>> vectors;
    for (std::size_t i = 0; i < count; ++i) {
      vectors.push_back(draw());
      d::sign_bits(vectors.back().data(), dimension, &codes[i * words]);
    }
    const float offset = d::sign_query(query.data(), dimension, planes.data());
    std::vector<float> got(count);
    d::sign_scores(planes.data(), offset, words, codes.data(), count, got.data());
    for (std::size_t i = 0; i < count; ++i) {
      double want = 0;
      for (std::uint32_t j = 0; j < dimension; ++j) {
        if (vectors[i][j] >= 0) continue;
        int level = 0;
        for (int p = 0; p < 4; ++p) level |= static_cast<int>((planes[p * words + j / 64] >> (j % 64)) & 1u) << p;
        want += level + offset;
      }
      EXPECT_NEAR(got[i], want, 1e-3 * (1 + std::fabs(want))) << dimension << " " << i;
    }
    // int8 rows: factor then code; a negative factor is a dead row.
    const std::size_t stride = d::code_stride(dimension), row = sizeof(float) + stride;
    std::vector<std::int8_t> rows(count * row), query_code(stride);
    d::quantise(query.data(), dimension, stride, query_code.data());
    std::vector<std::uint32_t> order;
    for (std::size_t i = 0; i < count; ++i) {
      float factor = d::quantise(vectors[i].data(), dimension, stride, &rows[i * row + sizeof(float)]);
      if (i % 7 == 3) factor = -factor;
      std::memcpy(&rows[i * row], &factor, sizeof factor);
      order.push_back(static_cast<std::uint32_t>((i * 5) % count));  // scattered, as a list's are
    }
    d::code_scores(query_code.data(), stride, rows.data(), row, order.data(), count, got.data());
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t n = order[i];
      float factor;
      std::memcpy(&factor, &rows[n * row], sizeof factor);
      std::int64_t dot = 0;
      for (std::size_t j = 0; j < stride; ++j) dot += std::int64_t{query_code[j]} * rows[n * row + sizeof(float) + j];
      if (factor < 0) {
        EXPECT_EQ(got[i], std::numeric_limits<float>::infinity());
      } else {
        EXPECT_FLOAT_EQ(got[i], -static_cast<float>(dot) * factor) << dimension << " " << i;
      }
    }
  }
}

// The sign scan against brute force: each list it reads is far longer than what it keeps, so the
// sign score really chooses, and a filter the lists do not decide (category and status) makes it
// widen past the best it kept first.
TEST(PatternIndexCore, SignScanRecallAgainstBruteForce) {
  corpus c = make_clustered(20000, 61);
  for (std::size_t i = 0; i < c.entries.size(); i += 3) c.entries[i].status = "rectified";
  const oracle o(c);
  index_config cfg = small_config();
  cfg.code_scan_min = 0;
  cfg.sign_scan_min = 0;
  cfg.sign_keep = 128;  // of ~2,000 in a category list, ~200 in a client's
  const pattern_index ix = build_batched(c, cfg);
  std::mt19937_64 rng(62);
  const std::vector<filter_row> rows = {
      category_row,
      client_row,
      {"scope of three clients",
       [](search_filter& f, std::mt19937_64& r) {
         f.client_ids = std::vector<std::string>{};
         for (int i = 0; i < 3; ++i) f.client_ids->push_back("client-" + std::to_string(r() % 100));
       }},
      {"category and status (3%)",
       [](search_filter& f, std::mt19937_64& r) {
         f.error_category = "category-" + std::to_string(r() % 10);
         f.status = "rectified";
       }},
  };
  std::normal_distribution<float> noise(0.0f, 0.05f);
  for (const auto& r : rows) {
    std::size_t found = 0, wanted = 0;
    for (int q = 0; q < 100; ++q) {
      search_filter f;
      r.set(f, rng);
      auto query = o.vectors[rng() % o.vectors.size()];
      for (auto& x : query) x += noise(rng);
      const auto got = ix.search(query, f, 10);
      EXPECT_EQ(got.plan.substr(0, 5), "bits:") << r.name;
      for (const auto& h : got.hits) EXPECT_TRUE(oracle_matches(h.pattern, f)) << r.name;
      const auto want = ids_of(o.top(query, f, 10));
      EXPECT_EQ(got.hits.size(), want.size()) << r.name;
      const auto ids = ids_of(got);
      for (auto id : want) found += std::count(ids.begin(), ids.end(), id);
      wanted += want.size();
    }
    EXPECT_GE(static_cast<double>(found) / static_cast<double>(wanted), 0.99) << r.name;
  }
}

// Deleted and re-texted patterns are never returned by the walk or the scans, whatever the plan;
// a pattern whose client or categories change in place moves between posting lists.
TEST(PatternIndexCore, FilteredWalkNeverReturnsDeletedOrStalePatterns) {
  corpus c = make_clustered(6000, 41);
  // The walk, the float scan, the int8 pre-scan and the sign scan (a category list holds ~600).
  struct plan_knobs {
    std::size_t threshold, code_scan_min, sign_scan_min;
    const char* plan;  // its prefix, for the exact plans
  };
  const plan_knobs plans[] = {{0, 512, 100000, nullptr},
                              {100000, 100000, 100000, "exact"},
                              {100000, 0, 100000, "int8:"},
                              {100000, 0, 0, "bits:"}};
  for (const auto& [threshold, code_scan_min, sign_scan_min, prefix] : plans) {
    index_config cfg = small_config();
    cfg.exact_threshold = threshold;
    cfg.code_scan_min = code_scan_min;
    cfg.sign_scan_min = sign_scan_min;
    // Fewer kept than the list holds, so the sign score really chooses.
    cfg.sign_keep = 128;
    pattern_index ix(cfg, embedder_name);
    ix.upsert_batch(c.entries, c.vectors, 1);
    oracle o(c);
    search_filter category;
    category.error_category = "category-3";
    const auto query = c.vectors[17];
    // Delete every pattern the first search returns, three times over: each time the next ones
    // come up, never a deleted one.
    std::set<std::int64_t> deleted;
    for (int round = 0; round < 3; ++round) {
      const auto got = ix.search(query, category, 10);
      ASSERT_EQ(got.hits.size(), 10u);
      if (prefix != nullptr) {
        EXPECT_EQ(got.plan.substr(0, 5), prefix);
      }
      EXPECT_EQ(ids_of(got), ids_of(o.top(query, category, 10))) << got.plan;
      for (const auto& h : got.hits) {
        EXPECT_FALSE(deleted.count(h.pattern.pattern_id)) << got.plan;
        deleted.insert(h.pattern.pattern_id);
        ASSERT_TRUE(ix.erase(h.pattern.pattern_id));
        o.erase(h.pattern.pattern_id);
      }
    }
    // Moved to another vector: the old one must not answer for it.
    const auto moved = o.top(query, category, 1).at(0).first;
    auto entry = *ix.find(moved);
    std::mt19937_64 rng(42);
    const auto elsewhere = random_unit(rng);
    entry.version += 1;
    ix.upsert(entry, elsewhere);
    const auto after = ix.search(query, category, 10);
    for (const auto& h : after.hits) {
      if (h.pattern.pattern_id == moved) {
        EXPECT_LT(h.similarity, 0.9f) << "the old vector answered";
      }
      EXPECT_FALSE(deleted.count(h.pattern.pattern_id));
    }
    // Same vector, another client and category (an in-place rewrite): found under the new values
    // only.
    const auto top = ix.search(query, {}, 1).hits.at(0).pattern;
    auto changed = top;
    changed.client_id = "client-new";
    changed.error_categories = {"category-new"};
    changed.version += 1;
    ix.upsert(changed, query);  // the top hit of `query` carries `query` itself (c.vectors[17])
    search_filter old_client;
    old_client.client_id = top.client_id;
    for (const auto& h : ix.search(query, old_client, 10).hits)
      EXPECT_NE(h.pattern.pattern_id, top.pattern_id) << "still listed under its old client";
    search_filter old_category;
    old_category.error_category = top.error_categories.at(0);
    for (const auto& h : ix.search(query, old_category, 10).hits)
      EXPECT_NE(h.pattern.pattern_id, top.pattern_id) << "still listed under its old category";
    search_filter new_client;
    new_client.client_id = "client-new";
    EXPECT_EQ(ids_of(ix.search(query, new_client, 10)), (std::vector<std::int64_t>{top.pattern_id}));
    search_filter new_category;
    new_category.error_category = "category-new";
    EXPECT_EQ(ids_of(ix.search(query, new_category, 10)), (std::vector<std::int64_t>{top.pattern_id}));
    // Back to the old client: listed once, not twice.
    changed.client_id = top.client_id;
    changed.version += 1;
    ix.upsert(changed, query);
    const auto back = ids_of(ix.search(query, old_client, 10));
    EXPECT_EQ(std::count(back.begin(), back.end(), top.pattern_id), 1);
  }
}

// A filter whose values all exist but that no pattern matches as a whole: the estimate says the
// graph, the walk finds nothing and the exact fallback answers, empty.
TEST(PatternIndexCore, FilteredWalkWithNoMatchIsEmpty) {
  const corpus c = make_clustered(3000, 51);
  index_config cfg = small_config();
  cfg.exact_threshold = 0;
  pattern_index ix(cfg, embedder_name);
  ix.upsert_batch(c.entries, c.vectors, 1);
  // A client and a category that never occur together.
  std::set<std::pair<std::string, std::string>> together;
  for (const auto& e : c.entries) together.emplace(e.client_id, e.error_categories.at(0));
  search_filter f;
  for (int client = 0; client < 100 && f.client_id.empty(); ++client)
    for (int cat = 0; cat < 10; ++cat) {
      const std::string cl = "client-" + std::to_string(client), ca = "category-" + std::to_string(cat);
      if (!together.count({cl, ca})) {
        f.client_id = cl;
        f.error_category = ca;
        break;
      }
    }
  ASSERT_FALSE(f.client_id.empty());
  const auto got = ix.search(c.vectors[0], f, 10);
  EXPECT_TRUE(got.hits.empty());
  EXPECT_NE(got.plan.find("(walk2:ef=64)"), std::string::npos) << got.plan;
  const auto batch = ix.search_batch({c.vectors[0], c.vectors[1]}, f, 10);
  EXPECT_TRUE(batch.patterns.empty());
  EXPECT_TRUE(batch.per_query.at(0).empty() && batch.per_query.at(1).empty());
}

TEST(PatternIndexCore, PlanFollowsTheEstimatedSelectivity) {
  index_config cfg = small_config();
  cfg.exact_threshold = 100;
  const corpus c = make_corpus(3000, 5, 100);
  const oracle o(c);
  const pattern_index ix = build(c, cfg);
  std::mt19937_64 rng(3);
  const auto q = random_unit(rng);
  auto plan = [&](search_filter f) { return expect_as_oracle(ix, o, q, f, 10, "plan"); };

  EXPECT_EQ(plan({}), "hnsw:ef=32");  // everything matches: hnswlib's own search
  search_filter speaker;
  speaker.speaker_id = "spk-42";  // ~23 patterns
  EXPECT_EQ(plan(speaker), "exact:speaker");
  search_filter big_speaker;
  big_speaker.speaker_id = "spk-0";  // a quarter of all: the walk steps over the others
  EXPECT_EQ(plan(big_speaker), "walk2:ef=64");
  search_filter status;
  status.status = "rectified";  // a third: the walk scores every neighbour
  EXPECT_EQ(plan(status), "walk:ef=64");
  search_filter unknown;
  unknown.speaker_id = "spk-unknown";
  EXPECT_EQ(plan(unknown), "empty");
  EXPECT_TRUE(ix.search(q, unknown, 10).hits.empty());
  search_filter window;  // no counts for dates: the graph first, then an exact scan
  window.from_ms = 1'700'000'000'000;
  window.to_ms = 1'700'000'000'900;
  EXPECT_EQ(plan(window), "exact:scan(walk:ef=64)");
  search_filter inverted;
  inverted.from_ms = 10;
  inverted.to_ms = 5;
  EXPECT_EQ(plan(inverted), "empty");
  EXPECT_EQ(ix.search(q, {}, 0).plan, "empty");
}

TEST(PatternIndexCore, UpdateInPlaceReplaceAndDelete) {
  pattern_index ix(small_config(), embedder_name);
  std::mt19937_64 rng(1);
  const auto a = random_unit(rng);
  const auto b = random_unit(rng);
  pattern_entry e;
  e.pattern_id = 42;
  e.speaker_id = "spk-1";
  e.client_id = "c";
  e.status = "pending";
  e.weight = 0.5;
  e.version = 1;
  e.original_text = "metoprolal";
  e.error_categories = {"drug_name"};
  ix.upsert(e, a);
  ASSERT_EQ(ix.size(), 1u);

  // Verification: same text (same vector), new status and weight. No tombstone.
  pattern_entry verified = e;
  verified.status = "rectified";
  verified.weight = 0.6;
  verified.version = 2;
  verified.error_categories = {"drug_name", "dosage"};
  ix.upsert(verified, a);
  EXPECT_EQ(ix.size(), 1u);
  EXPECT_EQ(ix.deleted(), 0u);
  verified.error_categories = {"dosage", "drug_name"};
  EXPECT_EQ(*ix.find(42), verified);
  search_filter pending;
  pending.status = "pending";
  EXPECT_TRUE(ix.search(a, pending, 10).hits.empty()) << "the old status still matches";
  search_filter rectified;
  rectified.status = "rectified";
  rectified.error_category = "dosage";
  auto r = ix.search(a, rectified, 10);
  ASSERT_EQ(r.hits.size(), 1u);
  EXPECT_NEAR(r.hits[0].similarity, 1.0, 1e-5);

  // A new text (new vector) and a new speaker: tombstone plus a new node.
  pattern_entry moved = verified;
  moved.speaker_id = "spk-2";
  moved.original_text = "metoprolol";
  moved.version = 3;
  ix.upsert(moved, b);
  EXPECT_EQ(ix.size(), 1u);
  EXPECT_EQ(ix.deleted(), 1u);
  search_filter old_speaker;
  old_speaker.speaker_id = "spk-1";
  EXPECT_TRUE(ix.search(a, old_speaker, 10).hits.empty());
  r = ix.search(b, {}, 10);
  ASSERT_EQ(r.hits.size(), 1u);
  EXPECT_EQ(r.hits[0].pattern.original_text, "metoprolol");
  EXPECT_NEAR(r.hits[0].similarity, 1.0, 1e-5);

  EXPECT_TRUE(ix.erase(42));
  EXPECT_FALSE(ix.erase(42)) << "a second delete must be a no-op, not a hnswlib exception";
  EXPECT_FALSE(ix.erase(7));
  EXPECT_EQ(ix.size(), 0u);
  EXPECT_EQ(ix.deleted(), 2u);
  EXPECT_FALSE(ix.find(42));
  EXPECT_TRUE(ix.search(b, {}, 10).hits.empty());
  EXPECT_EQ(ix.search(b, {}, 10).plan, "empty");

  // Re-adding a deleted id works (a new label; the graph never sees a label twice).
  ix.upsert(e, a);
  EXPECT_EQ(ix.size(), 1u);
  EXPECT_EQ(ix.search(a, {}, 1).hits.at(0).pattern.pattern_id, 42);
}

TEST(PatternIndexCore, DeletesAndUpdatesMatchBruteForceUnderEveryPlan) {
  corpus c = make_corpus(1200, 21);
  for (const auto& cfg : {small_config(), graph_config(), int8_config()}) {
    pattern_index ix = build(c, cfg);
    oracle o(c);
    std::mt19937_64 rng(5);
    // Delete a third of spk-0 (forces partition rewrites) and every tenth pattern.
    for (std::size_t i = 0; i < c.entries.size(); ++i) {
      const auto& e = c.entries[i];
      if ((e.speaker_id == "spk-0" && i % 3 != 0) || i % 10 == 0) {
        ASSERT_TRUE(ix.erase(e.pattern_id));
        o.erase(e.pattern_id);
      }
    }
    // Re-text some survivors (new vectors) and re-weight others (in place).
    for (std::size_t i = 0; i < o.entries.size(); i += 7) {
      o.entries[i].version += 1000;
      if (i % 2) {
        o.vectors[i] = random_unit(rng);
        o.entries[i].original_text += " edited";
      } else {
        o.entries[i].weight = 1.0 - o.entries[i].weight;
        o.entries[i].status = "not_rectified";
      }
      ix.upsert(o.entries[i], o.vectors[i]);
    }
    EXPECT_EQ(ix.size(), o.entries.size());
    for (const auto& nf : filters_to_check())
      for (int q = 0; q < 3; ++q) expect_as_oracle(ix, o, random_unit(rng), nf.filter, 10, nf.name);
    for (std::size_t i = 0; i < o.entries.size(); i += 13) {
      auto found = ix.find(o.entries[i].pattern_id);
      ASSERT_TRUE(found);
      EXPECT_EQ(*found, o.entries[i]);
    }
  }
}

TEST(PatternIndexCore, GraphGrowsPastItsInitialCapacity) {
  index_config cfg = graph_config();
  cfg.initial_capacity = 8;
  const corpus c = make_corpus(700, 8);
  const oracle o(c);
  const pattern_index ix = build(c, cfg);
  EXPECT_GE(ix.capacity(), 700u);
  std::mt19937_64 rng(8);
  for (int q = 0; q < 10; ++q) expect_as_oracle(ix, o, random_unit(rng), {}, 10, "grown");
}

TEST(PatternIndexCore, WeightFloorExcludesPatternsBelowIt) {
  pattern_index ix(small_config(), embedder_name);
  std::mt19937_64 rng(2);
  const auto q = random_unit(rng);
  for (int i = 1; i <= 5; ++i) {
    pattern_entry e;
    e.pattern_id = i;
    e.speaker_id = "spk";
    e.weight = 0.1 * i;
    ix.upsert(e, q);  // equal similarity: the order is by pattern_id
  }
  search_filter floor;
  floor.min_weight = 0.3;
  auto r = ix.search(q, floor, 10);
  EXPECT_EQ(ids_of(r), (std::vector<std::int64_t>{3, 4, 5}));  // 0.1 * 3 >= 0.3 holds exactly
  floor.min_weight = 0.51;
  EXPECT_TRUE(ix.search(q, floor, 10).hits.empty());
  floor.min_weight = 0;
  EXPECT_EQ(ix.search(q, floor, 10).hits.size(), 5u);
  // The same through the speaker partition, where equal scores tie-break by pattern_id too.
  floor.speaker_id = "spk";
  floor.min_weight = 0.3;
  r = ix.search(q, floor, 2);
  EXPECT_EQ(r.plan, "exact:speaker");
  EXPECT_EQ(ids_of(r), (std::vector<std::int64_t>{3, 4}));
}

TEST(PatternIndexCore, InjectionStringsAreJustValues) {
  pattern_index ix(small_config(), embedder_name);
  std::mt19937_64 rng(4);
  const std::vector<std::string> hostile = {"' OR 1=1 --", "\"; DROP TABLE patterns.patterns; --",
                                            "%", "*", "spk-1' OR speaker_id LIKE '%"};
  std::int64_t id = 1;
  for (const auto& h : hostile) {
    pattern_entry e;
    e.pattern_id = id++;
    e.speaker_id = h;
    e.client_id = h;
    e.status = h;
    e.error_categories = {h};
    e.original_text = h;
    ix.upsert(e, random_unit(rng));
  }
  pattern_entry plain;
  plain.pattern_id = 100;
  plain.speaker_id = "spk-1";
  ix.upsert(plain, random_unit(rng));

  const auto q = random_unit(rng);
  for (std::size_t i = 0; i < hostile.size(); ++i) {
    search_filter f;
    f.speaker_id = hostile[i];
    f.client_id = hostile[i];
    f.status = hostile[i];
    f.error_category = hostile[i];
    auto r = ix.search(q, f, 10);
    ASSERT_EQ(r.hits.size(), 1u) << hostile[i];
    EXPECT_EQ(r.hits[0].pattern.pattern_id, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(r.hits[0].pattern.speaker_id, hostile[i]);
    EXPECT_EQ(r.hits[0].pattern.original_text, hostile[i]);
  }
  search_filter wildcard;
  wildcard.speaker_id = "spk-%";
  EXPECT_TRUE(ix.search(q, wildcard, 10).hits.empty()) << "a % is not a wildcard";
  EXPECT_EQ(ix.search(q, {}, 10).hits.size(), hostile.size() + 1);
}

TEST(PatternIndexCore, CategoriesBeyondTheBitmaskStillFilter) {
  pattern_index ix(small_config(), embedder_name);
  std::mt19937_64 rng(6);
  for (int i = 1; i <= 80; ++i) {
    pattern_entry e;
    e.pattern_id = i;
    e.speaker_id = "spk";
    e.error_categories = {"cat-" + std::to_string(100 + i), "shared"};
    ix.upsert(e, random_unit(rng));
  }
  const auto q = random_unit(rng);
  for (int i : {1, 62, 63, 64, 70, 80}) {
    search_filter f;
    f.error_category = "cat-" + std::to_string(100 + i);
    auto r = ix.search(q, f, 10);
    ASSERT_EQ(r.hits.size(), 1u) << i;
    EXPECT_EQ(r.hits[0].pattern.pattern_id, i);
    EXPECT_EQ(r.hits[0].pattern.error_categories,
              (std::vector<std::string>{"cat-" + std::to_string(100 + i), "shared"}));
  }
  search_filter shared;
  shared.error_category = "shared";
  EXPECT_EQ(ix.search(q, shared, 100).hits.size(), 80u);
  ASSERT_TRUE(ix.erase(70));
  search_filter gone;
  gone.error_category = "cat-170";
  EXPECT_EQ(ix.search(q, gone, 10).plan, "empty");
}

TEST(PatternIndexCore, BatchInsertKeepsTheLastOccurrenceAndMatchesBruteForce) {
  corpus c = make_corpus(2000, 9);
  // A duplicate id in the batch: the later occurrence wins.
  c.entries.push_back(c.entries[10]);
  c.entries.back().status = "rectified";
  c.entries.back().version = 9999;
  std::mt19937_64 rng(10);
  c.vectors.push_back(random_unit(rng));
  corpus expected = c;
  expected.entries.erase(expected.entries.begin() + 10);
  expected.vectors.erase(expected.vectors.begin() + 10);
  const oracle o(expected);

  for (unsigned threads : {1u, 2u}) {
    pattern_index exact(small_config(), embedder_name);
    exact.upsert_batch(c.entries, c.vectors, threads);
    EXPECT_EQ(exact.size(), 2000u);
    EXPECT_EQ(exact.find(11)->version, 9999);
    for (const auto& nf : filters_to_check())
      expect_as_oracle(exact, o, random_unit(rng), nf.filter, 10, nf.name);

    // The graph built on two threads: recall, not identity, is what can be asked of it.
    pattern_index graph(graph_config(), embedder_name);
    graph.upsert_batch(c.entries, c.vectors, threads);
    std::size_t found = 0, wanted = 0;
    for (int q = 0; q < 50; ++q) {
      const auto query = random_unit(rng);
      const auto want = ids_of(o.top(query, {}, 10));
      const auto got = ids_of(graph.search(query, {}, 10));
      for (auto id : want) found += std::count(got.begin(), got.end(), id);
      wanted += want.size();
    }
    EXPECT_GE(static_cast<double>(found) / static_cast<double>(wanted), 0.97) << threads;
  }
}

TEST(PatternIndexCore, CompactionDropsTombstonesAndKeepsAnswers) {
  index_config cfg = small_config();
  cfg.compaction_min_tombstones = 10;
  cfg.compaction_fraction = 0.2;
  corpus c = make_corpus(200, 13);
  pattern_index ix = build(c, cfg);
  oracle o(c);
  for (std::int64_t id = 1; id <= 50; ++id) {
    ASSERT_TRUE(ix.erase(id * 4));
    o.erase(id * 4);
    // Tombstones over a fifth of the 200 slots.
    EXPECT_EQ(ix.needs_compaction(), id > 40) << id;
  }
  const auto before = ix.digest();
  ix.compact(2);
  EXPECT_EQ(ix.deleted(), 0u);
  EXPECT_EQ(ix.size(), 150u);
  EXPECT_FALSE(ix.needs_compaction());
  EXPECT_EQ(ix.digest(), before);
  std::mt19937_64 rng(14);
  for (const auto& nf : filters_to_check())
    expect_as_oracle(ix, o, random_unit(rng), nf.filter, 10, nf.name);
  EXPECT_EQ(*ix.find(o.entries[3].pattern_id), o.entries[3]);
}

TEST(PatternIndexCore, DigestSummarisesIdsAndVersions) {
  pattern_index ix(small_config(), embedder_name);
  std::mt19937_64 rng(15);
  EXPECT_EQ(ix.digest(), sbm::patterns::version_digest{});
  pattern_entry e;
  e.speaker_id = "s";
  e.pattern_id = 3;
  e.version = 10;
  ix.upsert(e, random_unit(rng));
  e.pattern_id = 5;
  e.version = 12;
  ix.upsert(e, random_unit(rng));
  auto d = ix.digest();
  EXPECT_EQ(d.count, 2u);
  EXPECT_EQ(d.max_version, 12);
  EXPECT_EQ(d.version_sum, 22u);
  EXPECT_EQ(d.id_version_sum, 3u * 10 + 5u * 12);
  e.version = 13;  // any write bumps the version
  ix.upsert(e, random_unit(rng));
  EXPECT_NE(ix.digest(), d);
  ix.erase(3);
  d = ix.digest();
  EXPECT_EQ(d.count, 1u);
  EXPECT_EQ(d.id_version_sum, 5u * 13);
}

TEST(PatternIndexCore, SnapshotRoundTripAnswersTheSame) {
  TempDir dir;
  const std::string path = dir.file("patterns.snapshot");
  for (const auto& cfg : {small_config(), graph_config()}) {
    corpus c = make_corpus(1000, 17);
    pattern_index ix = build(c, cfg);
    ix.set_source_tag("4b1d0c52-instance");
    oracle o(c);
    for (std::int64_t id = 2; id <= 1000; id += 9) {
      ix.erase(id);
      o.erase(id);
    }
    ix.save(path);
    ASSERT_TRUE(fs::exists(path + ".hnsw"));
    EXPECT_FALSE(fs::exists(path + ".tmp"));

    pattern_index loaded = pattern_index::load(path, cfg, embedder_name);
    EXPECT_EQ(loaded.size(), ix.size());
    EXPECT_EQ(loaded.deleted(), ix.deleted());
    EXPECT_EQ(loaded.digest(), ix.digest());
    EXPECT_EQ(loaded.source_tag(), "4b1d0c52-instance");
    for (const auto& e : o.entries) ASSERT_EQ(*loaded.find(e.pattern_id), e);
    EXPECT_FALSE(loaded.find(2));
    std::mt19937_64 rng(18);
    for (const auto& nf : filters_to_check()) {
      const auto q = random_unit(rng);
      const auto a = ix.search(q, nf.filter, 10);
      const auto b = loaded.search(q, nf.filter, 10);
      EXPECT_EQ(ids_of(a), ids_of(b)) << nf.name;
      EXPECT_EQ(a.plan, b.plan) << nf.name;
      expect_as_oracle(loaded, o, q, nf.filter, 10, nf.name);
    }
    // Still a working index: deletes and inserts after the load.
    ASSERT_TRUE(loaded.erase(o.entries[0].pattern_id));
    pattern_entry fresh = c.entries[1];
    fresh.pattern_id = 5000;
    const auto v = random_unit(rng);
    loaded.upsert(fresh, v);
    EXPECT_EQ(loaded.search(v, {}, 1).hits.at(0).pattern.pattern_id, 5000);
  }
}

TEST(PatternIndexCore, DamagedOrForeignSnapshotsAreRefused) {
  TempDir dir;
  const std::string path = dir.file("snap");
  const index_config cfg = small_config();
  const pattern_index ix = build(make_corpus(300, 19), cfg);
  ix.save(path);
  ASSERT_NO_THROW(pattern_index::load(path, cfg, embedder_name));

  EXPECT_THROW(pattern_index::load(dir.file("missing"), cfg, embedder_name), snapshot_error);
  EXPECT_THROW(pattern_index::load(path, cfg, "another-embedder"), snapshot_error);
  index_config other_m = cfg;
  other_m.m = 32;
  EXPECT_THROW(pattern_index::load(path, other_m, embedder_name), snapshot_error);
  index_config other_dim = cfg;
  other_dim.dimension = 64;
  EXPECT_THROW(pattern_index::load(path, other_dim, embedder_name), snapshot_error);
  index_config search_only = cfg;  // search parameters may change freely
  search_only.ef_search = 300;
  search_only.exact_threshold = 5;
  EXPECT_NO_THROW(pattern_index::load(path, search_only, embedder_name));

  const auto meta_size = fs::file_size(path);
  const auto graph_size = fs::file_size(path + ".hnsw");
  const std::string pristine = dir.file("pristine");
  fs::copy_file(path, pristine);
  fs::copy_file(path + ".hnsw", pristine + ".hnsw");
  auto restore = [&] {
    fs::copy_file(pristine, path, fs::copy_options::overwrite_existing);
    fs::copy_file(pristine + ".hnsw", path + ".hnsw", fs::copy_options::overwrite_existing);
  };
  for (auto offset : {std::uintmax_t{3}, meta_size / 2, meta_size - 1}) {
    flip_byte(path, offset);
    EXPECT_THROW(pattern_index::load(path, cfg, embedder_name), snapshot_error) << offset;
    restore();
  }
  for (auto offset : {std::uintmax_t{0}, graph_size / 2, graph_size - 1}) {
    flip_byte(path + ".hnsw", offset);
    EXPECT_THROW(pattern_index::load(path, cfg, embedder_name), snapshot_error) << offset;
    restore();
  }
  fs::resize_file(path, meta_size - 9);
  EXPECT_THROW(pattern_index::load(path, cfg, embedder_name), snapshot_error);
  restore();
  // Another index's graph beside this metadata (a crash between the two renames).
  const pattern_index other = build(make_corpus(300, 20), cfg);
  other.save(dir.file("other"));
  fs::copy_file(dir.file("other") + ".hnsw", path + ".hnsw", fs::copy_options::overwrite_existing);
  EXPECT_THROW(pattern_index::load(path, cfg, embedder_name), snapshot_error);
  restore();
  EXPECT_NO_THROW(pattern_index::load(path, cfg, embedder_name));
}

TEST(PatternIndexCore, RefusesMalformedInput) {
  pattern_index ix(small_config(), embedder_name);
  std::mt19937_64 rng(16);
  pattern_entry e;
  e.pattern_id = 1;
  e.speaker_id = "s";
  EXPECT_THROW(ix.upsert(e, std::vector<float>(dim + 1, 0.0f)), std::invalid_argument);
  auto nan = random_unit(rng);
  nan[3] = std::nanf("");
  EXPECT_THROW(ix.upsert(e, nan), std::invalid_argument);
  e.pattern_id = 0;
  EXPECT_THROW(ix.upsert(e, random_unit(rng)), std::invalid_argument);
  EXPECT_THROW(ix.search(std::vector<float>(3, 0.0f), {}, 10), std::invalid_argument);
  EXPECT_EQ(ix.size(), 0u);
  index_config zero = small_config();
  zero.dimension = 0;
  EXPECT_THROW(pattern_index(zero, embedder_name), std::invalid_argument);
}

TEST(PatternIndexCore, PatternVectorLetsTheOriginalTextDominate) {
  const hashed_ngram_embedder embedder(256);
  const auto bare = sbm::patterns::pattern_vector(embedder, "metoprolal", "");
  EXPECT_EQ(bare, embedder.embed("metoprolal"));
  const auto with_context =
      sbm::patterns::pattern_vector(embedder, "metoprolal", "patient takes 50 mg twice daily");
  double norm = 0;
  for (float x : with_context) norm += static_cast<double>(x) * x;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  const auto original = embedder.embed("metoprolal");
  const auto context = embedder.embed("patient takes 50 mg twice daily");
  EXPECT_GT(dot(with_context, original), 0.8);
  EXPECT_GT(dot(with_context, original), dot(with_context, context));
  // A query that carries the span and its surroundings beats the span alone.
  const auto segment = embedder.embed("metoprolal 50 mg twice daily");
  EXPECT_GT(dot(with_context, segment), dot(bare, segment));
  // Nothing to embed in the context: the original alone.
  EXPECT_EQ(sbm::patterns::pattern_vector(embedder, "metoprolal", " ,.; "), bare);

  // Near-misses are found through the index with the real embedder.
  index_config cfg;
  cfg.dimension = 256;
  pattern_index ix(cfg, std::string(embedder.name()));
  const std::vector<std::string> originals = {"hyper tension", "metoprolal", "the patient denies",
                                              "fifty milligrams", "left ventricle"};
  for (std::size_t i = 0; i < originals.size(); ++i) {
    pattern_entry e;
    e.pattern_id = static_cast<std::int64_t>(i + 1);
    e.speaker_id = "s";
    e.original_text = originals[i];
    ix.upsert(e, sbm::patterns::pattern_vector(embedder, e.original_text, ""));
  }
  EXPECT_EQ(ix.search(embedder.embed("hypertension"), {}, 1).hits.at(0).pattern.original_text,
            "hyper tension");
  EXPECT_EQ(ix.search(embedder.embed("metoprolol"), {}, 1).hits.at(0).pattern.original_text,
            "metoprolal");
}

}  // namespace

// A speaker moving to another member of the cluster: its patterns leave, every other stays, and a
// speaker-filtered search finds nothing of it afterwards (what the owner's index answers for).
TEST(PatternIndexCore, EraseSpeakersIfDropsOnlyTheLeavingSpeakers) {
  corpus c = make_corpus(800, 13);
  pattern_index ix(small_config(), embedder_name);
  ix.upsert_batch(c.entries, c.vectors, 1);
  std::set<std::string> asked;
  const auto leaving = [&](const std::string& s) {
    EXPECT_TRUE(asked.insert(s).second) << "asked twice about " << s;
    return s == "spk-0" || s == "spk-7";
  };
  std::size_t expected = 0;
  for (const auto& e : c.entries)
    if (e.speaker_id == "spk-0" || e.speaker_id == "spk-7") ++expected;
  ASSERT_GT(expected, 0u);
  EXPECT_EQ(ix.erase_speakers_if(leaving), expected);
  EXPECT_EQ(ix.size(), c.entries.size() - expected);
  for (const auto& e : c.entries)
    EXPECT_EQ(ix.contains(e.pattern_id), e.speaker_id != "spk-0" && e.speaker_id != "spk-7");
  search_filter f;
  f.speaker_id = "spk-7";
  EXPECT_TRUE(ix.search(c.vectors[0], f, 10).hits.empty());
  // Gone speakers are not asked about again.
  asked.clear();
  EXPECT_EQ(ix.erase_speakers_if([&](const std::string& s) { return leaving(s) && false; }), 0u);
  EXPECT_FALSE(asked.count("spk-0"));
}
