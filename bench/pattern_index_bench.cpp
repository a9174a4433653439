// Issue 5's speed question: filtered top-10 search over 100k (and, opt-in, 1M) error patterns.
// For each size, the same clustered vectors (dim 128; the node embeds at 256, the ratios are what
// carry over) with ~1,000 speakers, so a speaker filter matches 0.1%, measured three ways in one
// process and one run:
//   SBM          the pattern index core (patterns::pattern_index), called directly, no actor hop;
//   raw hnswlib  HierarchicalNSW on the same vectors with the same M, ef_construction and ef,
//                searched unfiltered and, for a filter, post-filtered with k' = k / selectivity;
//   brute force  one exact scan over every vector, checking the filter first.
// Recall@10 is against brute force. Then, when servers are available (SBMTEST_SERVERS_DIR, as
// bench/run arranges), the actor path at 100k: rebuild from PostgreSQL, snapshot load, and text
// queries through the actor.
//
// Usage: bench_pattern_index [N ...]   (default 100000)
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <hnswlib/hnswlib.h>
#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <queue>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "actors/connections/connections.hpp"
#include "actors/patterns/core/pattern_index.hpp"
#include "actors/patterns/patterns.hpp"
#include "messages/announce.hpp"
#include "runtime/migrations/all_migrations.hpp"
#include "tests/support/servers.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
namespace pt = sbm::patterns;

constexpr std::uint32_t dim = 128;
constexpr std::size_t speakers = 1000;
constexpr std::size_t clusters = 1000;
constexpr std::size_t k = 10;
constexpr std::size_t queries = 1000;
constexpr std::size_t ef = 64;
constexpr std::size_t m = 16;
constexpr std::size_t ef_construction = 200;
constexpr unsigned build_threads = 2;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

long rss_kib() {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

void normalise(float* v) {
  double s = 0;
  for (std::uint32_t i = 0; i < dim; ++i) s += static_cast<double>(v[i]) * v[i];
  const auto scale = static_cast<float>(1.0 / std::sqrt(s));
  for (std::uint32_t i = 0; i < dim; ++i) v[i] *= scale;
}

// Points around random centres: realistic for text embeddings, and harder for a graph than
// uniform noise. Speakers are assigned independently of clusters, as a speaker's errors are.
struct dataset {
  std::size_t n = 0;
  std::vector<float> vectors;          // n x dim, contiguous
  std::vector<std::uint32_t> speaker;  // 0..speakers-1
  std::vector<std::uint8_t> pending;   // status pending (~50%)
  std::vector<float> query_vectors;    // queries x dim
  std::vector<std::uint32_t> query_speaker;
};

dataset make_dataset(std::size_t n) {
  dataset d;
  d.n = n;
  std::mt19937_64 rng(20261124);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> centres(clusters * dim);
  for (std::size_t c = 0; c < clusters; ++c) {
    for (std::uint32_t i = 0; i < dim; ++i) centres[c * dim + i] = normal(rng);
    normalise(&centres[c * dim]);
  }
  auto point = [&](float* out) {
    const std::size_t c = rng() % clusters;
    for (std::uint32_t i = 0; i < dim; ++i) out[i] = centres[c * dim + i] + 0.08f * normal(rng);
    normalise(out);
  };
  d.vectors.resize(n * dim);
  d.speaker.resize(n);
  d.pending.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    point(&d.vectors[i * dim]);
    d.speaker[i] = static_cast<std::uint32_t>(rng() % speakers);
    d.pending[i] = rng() % 2;
  }
  d.query_vectors.resize(queries * dim);
  d.query_speaker.resize(queries);
  for (std::size_t q = 0; q < queries; ++q) {
    point(&d.query_vectors[q * dim]);
    d.query_speaker[q] = static_cast<std::uint32_t>(rng() % speakers);
  }
  return d;
}

std::string speaker_name(std::uint32_t s) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "spk-%04u", s);
  return buf;
}

enum class filter_kind { none, status, speaker };

const char* label(filter_kind f) {
  switch (f) {
    case filter_kind::none: return "none";
    case filter_kind::status: return "status = pending (50%)";
    case filter_kind::speaker: return "speaker_id (0.1%)";
  }
  return "";
}

bool accepts(const dataset& d, filter_kind f, std::size_t q, std::size_t i) {
  switch (f) {
    case filter_kind::none: return true;
    case filter_kind::status: return d.pending[i] != 0;
    case filter_kind::speaker: return d.speaker[i] == d.query_speaker[q];
  }
  return false;
}

double selectivity(filter_kind f) {
  switch (f) {
    case filter_kind::none: return 1.0;
    case filter_kind::status: return 0.5;
    case filter_kind::speaker: return 1.0 / speakers;
  }
  return 1.0;
}

using id_list = std::vector<std::size_t>;

struct run_result {
  std::vector<id_list> answers;
  double qps = 0;
};

run_result timed(std::size_t count, const std::function<id_list(std::size_t)>& one) {
  run_result r;
  r.answers.reserve(count);
  const auto t0 = clock_type::now();
  for (std::size_t q = 0; q < count; ++q) r.answers.push_back(one(q));
  r.qps = static_cast<double>(count) / seconds_since(t0);
  return r;
}

double recall(const std::vector<id_list>& got, const std::vector<id_list>& truth) {
  std::size_t found = 0, wanted = 0;
  for (std::size_t q = 0; q < truth.size(); ++q) {
    for (auto id : truth[q]) found += std::count(got[q].begin(), got[q].end(), id);
    wanted += truth[q].size();
  }
  return wanted == 0 ? 1.0 : static_cast<double>(found) / static_cast<double>(wanted);
}

void core_section(std::size_t n) {
  std::fprintf(stderr, "pattern bench: %zu vectors: generating\n", n);
  const dataset d = make_dataset(n);
  hnswlib::InnerProductSpace space(dim);
  const auto distance = space.get_dist_func();
  void* distance_param = space.get_dist_func_param();

  // SBM's core, built as a rebuild does: pages of 10,000 on two threads.
  std::fprintf(stderr, "pattern bench: building SBM core\n");
  pt::index_config cfg;
  cfg.dimension = dim;
  cfg.m = m;
  cfg.ef_construction = ef_construction;
  cfg.ef_search = ef;
  cfg.initial_capacity = n;
  const long rss0 = rss_kib();
  auto t0 = clock_type::now();
  pt::pattern_index sbm_index(cfg, "bench/d128");
  for (std::size_t start = 0; start < n; start += 10000) {
    const std::size_t end = std::min(n, start + 10000);
    std::vector<pt::pattern_entry> entries;
    std::vector<std::vector<float>> vectors;
    for (std::size_t i = start; i < end; ++i) {
      pt::pattern_entry e;
      e.pattern_id = static_cast<std::int64_t>(i + 1);
      e.speaker_id = speaker_name(d.speaker[i]);
      e.client_id = "client-" + std::to_string(d.speaker[i] % 50);
      e.bucket_type = "medium_touch";
      e.original_text = "p" + std::to_string(i);
      e.status = d.pending[i] ? "pending" : "rectified";
      e.error_categories = {"medical_terminology"};
      e.version = e.pattern_id;
      entries.push_back(std::move(e));
      vectors.emplace_back(&d.vectors[i * dim], &d.vectors[(i + 1) * dim]);
    }
    sbm_index.upsert_batch(std::move(entries), vectors, build_threads);
  }
  const double sbm_build = seconds_since(t0);
  const long rss1 = rss_kib();

  std::fprintf(stderr, "pattern bench: building raw hnswlib\n");
  t0 = clock_type::now();
  hnswlib::HierarchicalNSW<float> raw(&space, n, m, ef_construction, 100);
  {
    std::atomic<std::size_t> next{0};
    auto work = [&] {
      for (std::size_t i = next++; i < n; i = next++) raw.addPoint(&d.vectors[i * dim], i);
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < build_threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }
  const double raw_build = seconds_since(t0);
  const long rss2 = rss_kib();

  std::fprintf(stderr, "pattern bench: snapshot save and load\n");
  const std::string snapshot =
      (std::filesystem::temp_directory_path() / ("sbm-pattern-bench-" + std::to_string(::getpid()))).string();
  t0 = clock_type::now();
  sbm_index.save(snapshot);
  const double save_seconds = seconds_since(t0);
  const auto snapshot_bytes =
      std::filesystem::file_size(snapshot) + std::filesystem::file_size(snapshot + ".hnsw");
  t0 = clock_type::now();
  const double load_seconds = [&] {
    auto loaded = pt::pattern_index::load(snapshot, cfg, "bench/d128");
    return loaded.size() == n ? seconds_since(t0) : -1.0;
  }();
  std::filesystem::remove(snapshot);
  std::filesystem::remove(snapshot + ".hnsw");

  std::printf("### %zu patterns\n\n", n);
  std::printf("| filter | SBM plan | SBM recall@10 | SBM QPS | raw hnswlib recall@10 | raw hnswlib QPS | "
              "brute force QPS | SBM / raw | SBM / brute force |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (filter_kind f : {filter_kind::none, filter_kind::status, filter_kind::speaker}) {
    std::fprintf(stderr, "pattern bench: filter %s\n", label(f));
    auto brute = timed(queries, [&](std::size_t q) {
      const float* query = &d.query_vectors[q * dim];
      std::priority_queue<std::pair<float, std::size_t>> best;
      for (std::size_t i = 0; i < n; ++i) {
        if (!accepts(d, f, q, i)) continue;
        const float dist = distance(query, &d.vectors[i * dim], distance_param);
        if (best.size() < k) {
          best.emplace(dist, i);
        } else if (dist < best.top().first) {
          best.pop();
          best.emplace(dist, i);
        }
      }
      id_list out;
      for (; !best.empty(); best.pop()) out.push_back(best.top().second);
      return out;
    });

    std::string plan;
    std::vector<float> query(dim);
    auto sbm = timed(queries, [&](std::size_t q) {
      std::copy(&d.query_vectors[q * dim], &d.query_vectors[(q + 1) * dim], query.begin());
      pt::search_filter filter;
      if (f == filter_kind::status) filter.status = "pending";
      if (f == filter_kind::speaker) filter.speaker_id = speaker_name(d.query_speaker[q]);
      auto r = sbm_index.search(query, filter, k);
      if (plan.empty()) plan = r.plan.substr(0, r.plan.find_first_of("(,"));
      id_list out;
      for (const auto& h : r.hits) out.push_back(static_cast<std::size_t>(h.pattern.pattern_id - 1));
      return out;
    });

    // The naive filter on raw hnswlib: over-fetch by the selectivity, then drop non-matches.
    const std::size_t fetch = std::min<std::size_t>(n, static_cast<std::size_t>(k / selectivity(f)));
    raw.setEf(std::max(ef, fetch));
    auto naive = timed(queries, [&](std::size_t q) {
      auto found = raw.searchKnn(&d.query_vectors[q * dim], fetch);
      std::vector<std::pair<float, std::size_t>> kept;
      for (; !found.empty(); found.pop())
        if (accepts(d, f, q, found.top().second)) kept.emplace_back(found.top().first, found.top().second);
      std::sort(kept.begin(), kept.end());
      id_list out;
      for (std::size_t i = 0; i < std::min(k, kept.size()); ++i) out.push_back(kept[i].second);
      return out;
    });
    raw.setEf(ef);

    std::printf("| %s | %s | %.3f | %.0f | %.3f (k'=%zu, ef=%zu) | %.0f | %.1f | %.2fx | %.0fx |\n",
                label(f), plan.c_str(), recall(sbm.answers, brute.answers), sbm.qps,
                recall(naive.answers, brute.answers), fetch, std::max(ef, fetch), naive.qps,
                brute.qps, sbm.qps / naive.qps, sbm.qps / brute.qps);
  }
  std::printf("\nBuild on %u threads (M=%zu, ef_construction=%zu): SBM core %.1f s, raw hnswlib %.1f s "
              "(%.2fx). Memory (RSS growth): SBM core %.0f B per pattern (graph + speaker partitions + "
              "columns), raw hnswlib %.0f B per vector. Search ef=%zu, one query at a time.\n",
              build_threads, m, ef_construction, sbm_build, raw_build, sbm_build / raw_build,
              (rss1 - rss0) * 1024.0 / static_cast<double>(n),
              (rss2 - rss1) * 1024.0 / static_cast<double>(n), ef);
  std::printf("Snapshot of the SBM core: %.0f MB written in %.1f s, loaded (checksums verified) in "
              "%.1f s.\n\n",
              static_cast<double>(snapshot_bytes) / 1e6, save_seconds, load_seconds);
}

struct bench_config : caf::actor_system_config {
  bench_config() { sbm::announce_types(*this); }
};

template <class Result, class Handle, class... Ts>
bool ask(caf::scoped_actor& self, const Handle& to, Result& out, Ts&&... xs) {
  bool ok = false;
  self->request(to, std::chrono::minutes(10), std::forward<Ts>(xs)...)
      .receive([&](Result& r) {
        out = std::move(r);
        ok = true;
      },
               [&](caf::error&) {});
  return ok;
}

double wait_ready(caf::scoped_actor& self, const sbm::pattern_index_actor& a) {
  const auto t0 = clock_type::now();
  for (;;) {
    sbm::pattern_index_status st;
    if (ask(self, a, st, sbm::status_atom::value) && st.ready) return seconds_since(t0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void actor_section(std::size_t n) {
  std::fprintf(stderr, "pattern bench: actor path, seeding %zu rows\n", n);
  auto& srv = sbm::test::servers::shared();
  const std::string url = srv.fresh_database();
  bench_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  sbm::connections::postgres_settings pg;
  pg.url = url;
  pg.migrations = sbm::schema::all_migrations();
  auto db = sbm::connections::spawn_postgres(sys, pg);
  for (int i = 0; i < 600; ++i) {
    sbm::dependency_status s;
    if (ask(self, db, s, sbm::status_atom::value) && s.up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  {
    pqxx::connection c{url};
    pqxx::work w{c};
    // Texts from a medical-ish vocabulary, so embeddings cluster the way reports would.
    w.exec0("INSERT INTO patterns.patterns (pattern_id, speaker_id, client_id, bucket_type, "
            "original_text, corrected_text, context_text, error_categories, status, weight, embedder) "
            "SELECT i, 'spk-' || lpad((i % 1000)::text, 4, '0'), 'client-' || (i % 50), 'medium_touch', "
            "(ARRAY['metoprolol','lisinopril','hypertension','atrial','ventricle','dyspnea','edema',"
            "'tachycardia','insulin','warfarin'])[1 + i % 10] || ' ' || (i % 997) || ' ' || "
            "substr(md5(i::text), 1, 6), 'corrected ' || i, 'context of report ' || (i % 101), "
            "ARRAY['drug_name'], CASE WHEN i % 2 = 0 THEN 'pending' ELSE 'rectified' END, 0.5, "
            "'hashed-ngram-v1/d256' FROM generate_series(1, " + std::to_string(n) + ") i");
    w.commit();
  }

  // A directory of its own: a snapshot left by an earlier run must not turn the rebuild into a load.
  const std::string dir = srv.dir() + "/pattern-bench-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  pt::pattern_index_settings s;
  s.db = db;
  s.dimension = 256;
  s.snapshot_path = dir + "/patterns.snapshot";
  s.build_threads = build_threads;
  std::fprintf(stderr, "pattern bench: actor rebuild from PostgreSQL\n");
  auto a = pt::spawn_pattern_index(sys, s);
  // Ready is answered after the snapshot is written: both happen in the one handler that
  // finishes the last page.
  const double rebuild = wait_ready(self, a);
  self->send_exit(a, caf::exit_reason::user_shutdown);
  self->wait_for(a);

  std::fprintf(stderr, "pattern bench: actor restart from snapshot\n");
  auto b = pt::spawn_pattern_index(sys, s);
  const double reload = wait_ready(self, b);

  auto measure = [&](bool by_speaker) {
    std::mt19937_64 rng(5);
    const char* words[] = {"metoprolal", "lisinoprill", "hyper tension", "atrial", "ventricel",
                           "dyspnoea", "oedema", "tachy cardia", "insulin", "warfarine"};
    const std::size_t count = 1000;
    std::size_t hits = 0;
    std::vector<double> us;
    for (std::size_t q = 0; q < count; ++q) {
      sbm::pattern_search search;
      search.query_text = std::string(words[rng() % 10]) + " " + std::to_string(rng() % 997);
      search.top_k = k;
      if (by_speaker) search.filter.speaker_id = speaker_name(static_cast<std::uint32_t>(rng() % 1000));
      sbm::pattern_hits out;
      const auto t0 = clock_type::now();
      if (ask(self, b, out, sbm::search_atom::value, search)) hits += out.hits.size();
      us.push_back(seconds_since(t0) * 1e6);
    }
    std::sort(us.begin(), us.end());
    double total = 0;
    for (double u : us) total += u;
    std::printf("| text query through the actor, filter %s | %.0f | %.0f | %.0f | %zu |\n",
                by_speaker ? "speaker_id (0.1%)" : "none", 1e6 * static_cast<double>(count) / total,
                us[us.size() / 2], us[us.size() * 99 / 100], hits / count);
  };
  std::printf("### Actor path, %zu patterns (dim 256, hashed n-gram embedder, real PostgreSQL)\n\n", n);
  std::printf("| measure | value |\n|---|---|\n");
  std::printf("| start with no snapshot: paged rebuild from PostgreSQL (SELECT, embed, graph on %u "
              "threads) and the snapshot write | %.1f s |\n",
              build_threads, rebuild);
  std::printf("| restart from the snapshot (load + digest check against PostgreSQL) | %.2f s |\n\n", reload);
  std::printf("| path | QPS | p50 (us) | p99 (us) | hits per query |\n|---|---|---|---|---|\n");
  measure(false);
  measure(true);
  std::printf("\nOne request at a time from a scoped_actor; each query is embedded (256 dims) in the "
              "actor before the search.\n\n");
  self->send_exit(b, caf::exit_reason::user_shutdown);
  self->wait_for(b);
  self->send_exit(db, caf::exit_reason::user_shutdown);
  self->wait_for(db);
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::strtoull(argv[i], nullptr, 10));
  if (sizes.empty()) sizes.push_back(100000);
  for (auto n : sizes) {
    if (n < 10 * speakers) {
      std::fprintf(stderr, "usage: bench_pattern_index [N >= 10000 ...]\n");
      return 2;
    }
    core_section(n);
  }
  if (std::getenv("SBMTEST_SERVERS_DIR") != nullptr) {
    actor_section(100000);
  } else {
    std::printf("(actor path skipped: no SBMTEST_SERVERS_DIR)\n\n");
  }
  return 0;
}
