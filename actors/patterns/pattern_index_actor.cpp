// The pattern index actor: owns the pure core, writes every change to patterns.patterns before it
// touches memory, and (re)builds the core at start from a snapshot checked against PostgreSQL or
// from PostgreSQL itself.
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "actors/patterns/core/pattern_index.hpp"
#include "actors/patterns/pattern_records.hpp"
#include "actors/patterns/patterns.hpp"
#include "actors/patterns/store.hpp"
#include "messages/errors.hpp"
#include "runtime/domain/placement.hpp"
#include "runtime/metrics/histogram.hpp"
#include "runtime/db/rows.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::patterns {

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::chrono::milliseconds max_retry_delay{30000};

// Self-messages: flush = the snapshot timer, restart = retry a failed load.
using index_internals = caf::typed_actor<caf::reacts_to<flush_atom>, caf::reacts_to<restart_atom>>;
using index_actor = pattern_index_actor::extend_with<index_internals>::extend_with<pattern_placement_actor>;

struct index_state {
  static inline const char* name = "sbm.pattern_index";

  pattern_index_settings settings;
  std::unique_ptr<patterns::store> store;  // patterns.patterns (or, simulated, its memory)
  index_config config;
  std::string embedder_name;
  std::optional<pattern_index> index;
  bool ready = false;
  std::chrono::milliseconds retry_delay{0};
  std::size_t loaded_rows = 0;
  clock_type::time_point load_started;
  // One write per pattern_id at a time, so the memory applies them in the order PostgreSQL
  // committed them. A key is present while a write for it is in flight; the deque holds the next.
  std::unordered_map<std::int64_t, std::deque<std::function<void()>>> writes;
  std::uint64_t changes = 0;        // writes applied since start
  std::uint64_t saved_changes = 0;  // `changes` when the snapshot file last matched memory
  metrics::histogram search_seconds;  // every search the index ran, whatever its plan
  // In a cluster: the owners of speakers as last told (addresses), and this node's. Until the
  // first placement `placed` is false and nothing is loaded.
  bool placed = false;
  std::vector<std::string> owners;
  std::string self_address;
  // The page reads of one load (a start, or the speakers a change of owners brought): a newer one
  // makes the pages of the older ones stale. Patterns deleted while a load runs are remembered,
  // so that a page read before the delete does not bring them back.
  std::uint64_t load_generation = 0;
  bool loading = false;
  std::unordered_set<std::int64_t> erased_while_loading;
  std::shared_ptr<spdlog::logger> log;
};

using self_ptr = index_actor::stateful_pointer<index_state>;

caf::error invalid(std::string what) { return make_error(errc::invalid_argument, std::move(what)); }

caf::error loading_error() {
  return make_error(errc::unavailable, "pattern index is loading; retry later");
}

// A row that does not read: the actor fails and its supervisor decides; guessing at durable data
// would make the index disagree with the database silently. Anything else is retried later.
// (CAF's request_timeout also reads as errc::internal through code_of: db::failure tells them apart.)
void fail_if_corrupt(const caf::error& e) {
  if (code_of(db::failure(e)) == errc::internal) throw std::runtime_error("patterns store: " + to_string(e));
}

unsigned worker_count(const pattern_index_settings& s) {
  if (s.build_threads > 0) return s.build_threads;
  return std::max(1u, std::thread::hardware_concurrency());
}

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// Whether this node's index holds the speaker's patterns: always on a single node; in a cluster
// when the placement the speakers use names this node its owner.
bool owns(const index_state& st, const std::string& speaker_id) {
  if (!st.settings.clustered) return true;
  const auto at = domain::owner_index(st.owners, speaker_id);
  return at < st.owners.size() && st.owners[at] == st.self_address;
}

std::vector<std::vector<float>> embed_all(const embedder& e, const std::vector<pattern_entry>& entries,
                                          unsigned threads) {
  std::vector<std::vector<float>> out(entries.size());
  auto work = [&](std::size_t first, std::size_t step) {
    for (std::size_t i = first; i < entries.size(); i += step)
      out[i] = pattern_vector(e, entries[i].original_text, entries[i].context_text);
  };
  const std::size_t n = std::min<std::size_t>(threads, std::max<std::size_t>(entries.size() / 256, 1));
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < n; ++t) pool.emplace_back(work, t, n);
  work(0, n);
  for (auto& t : pool) t.join();
  return out;
}

void save_snapshot(self_ptr self) {
  auto& st = self->state;
  if (st.settings.snapshot_path.empty() || !st.index) return;
  const auto started = clock_type::now();
  try {
    const std::filesystem::path path(st.settings.snapshot_path);
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
    st.index->save(st.settings.snapshot_path);
    st.saved_changes = st.changes;
    st.log->info("pattern index snapshot saved: {} patterns in {:.2f} s", st.index->size(),
                 seconds_since(started));
  } catch (const std::exception& e) {
    // The index in memory is intact and PostgreSQL is the truth: the next start just rebuilds.
    st.log->warn("pattern index snapshot not saved: {}", log::escape(e.what()));
  }
}

void become_ready(self_ptr self, const char* how) {
  auto& st = self->state;
  st.ready = true;
  st.retry_delay = st.settings.retry_delay;
  st.log->info("pattern index ready ({}): {} patterns, {} tombstones, {:.2f} s", how,
               st.index->size(), st.index->deleted(), seconds_since(st.load_started));
  if (!st.settings.snapshot_path.empty() && st.settings.snapshot_interval.count() > 0)
    self->delayed_send(self, st.settings.snapshot_interval, flush_atom::value);
}

void retry_later(self_ptr self, const caf::error& why) {
  auto& st = self->state;
  st.index.reset();
  st.log->warn("pattern index load failed ({}); retrying in {} ms", self->system().render(why),
               st.retry_delay.count());
  self->delayed_send(self, st.retry_delay, restart_atom::value);
  st.retry_delay = std::min(st.retry_delay * 2, max_retry_delay);
}

void fetch_page(self_ptr self, std::int64_t after, std::uint64_t generation);

// Reads every page from the start (pages of an older load are dropped when they arrive).
void load_pages(self_ptr self) {
  auto& st = self->state;
  st.loading = true;
  st.loaded_rows = 0;
  st.load_started = clock_type::now();
  fetch_page(self, 0, ++st.load_generation);
}

void rebuild(self_ptr self, const std::string& instance_id) {
  auto& st = self->state;
  st.index.emplace(st.config, st.embedder_name);
  st.index->set_source_tag(instance_id);
  st.erased_while_loading.clear();
  load_pages(self);
}

// A failed page: before the index is ready it starts over; once ready (the speakers a change of
// owners brought) it keeps answering for what it holds and reads the pages again later.
void page_failed(self_ptr self, const caf::error& why) {
  auto& st = self->state;
  st.loading = false;
  if (!st.ready) return retry_later(self, why);
  st.log->warn("pattern index: the patterns of the speakers this node now owns were not read ({}); "
               "retrying in {} ms", self->system().render(why), st.retry_delay.count());
  self->delayed_send(self, st.retry_delay, restart_atom::value);
  st.retry_delay = std::min(st.retry_delay * 2, max_retry_delay);
}

void fetch_page(self_ptr self, std::int64_t after, std::uint64_t generation) {
  auto& st = self->state;
  st.store->page(after, st.settings.page_size, [self, generation](caf::expected<std::vector<pattern_entry>> page) {
    auto& st = self->state;
    if (generation != st.load_generation || !st.index) return;  // a newer load reads the pages
    if (!page) {
      fail_if_corrupt(page.error());
      return page_failed(self, db::failure(page.error()));
    }
    auto entries = std::move(*page);
    const std::size_t n = entries.size();
    const std::int64_t last = n > 0 ? entries.back().pattern_id : 0;
    // Only this node's speakers; a pattern already held was written since the page was read (the
    // memory has that write), and one deleted meanwhile stays deleted.
    entries.erase(std::remove_if(entries.begin(), entries.end(),
                                 [&st](const pattern_entry& e) {
                                   return !owns(st, e.speaker_id) || st.index->contains(e.pattern_id) ||
                                          st.erased_while_loading.count(e.pattern_id) > 0;
                                 }),
                  entries.end());
    const unsigned threads = worker_count(st.settings);
    auto vectors = embed_all(*st.settings.embedder, entries, threads);
    st.loaded_rows += entries.size();
    st.index->upsert_batch(std::move(entries), vectors, threads);
    if (n == st.settings.page_size) {
      st.log->debug("pattern index load: {} patterns so far", st.loaded_rows);
      fetch_page(self, last, generation);
      return;
    }
    st.loading = false;
    st.erased_while_loading.clear();
    if (st.ready) {
      st.retry_delay = st.settings.retry_delay;
      st.log->info("pattern index: {} patterns of the speakers this node now owns read in {:.2f} s; "
                   "{} held", st.loaded_rows, seconds_since(st.load_started), st.index->size());
      return;
    }
    become_ready(self, st.settings.clustered ? "the speakers this node owns, from PostgreSQL"
                                             : "rebuilt from PostgreSQL");
    // The next start loads this instead of re-embedding and re-building the graph.
    save_snapshot(self);
  });
}

// The snapshot, when there is one that reads back and describes exactly what PostgreSQL holds.
std::optional<pattern_index> usable_snapshot(self_ptr self, const durable_state& durable) {
  auto& st = self->state;
  const std::string& path = st.settings.snapshot_path;
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec)) return std::nullopt;
  std::optional<pattern_index> loaded;
  try {
    loaded.emplace(pattern_index::load(path, st.config, st.embedder_name));
  } catch (const std::exception& e) {
    st.log->warn("pattern index snapshot {} not usable ({}); rebuilding from PostgreSQL",
                 log::escape(path), log::escape(e.what()));
    return std::nullopt;
  }
  if (loaded->source_tag() != durable.instance_id) {
    st.log->warn("pattern index snapshot {} was made from another database; rebuilding",
                 log::escape(path));
    return std::nullopt;
  }
  const version_digest held = loaded->digest();
  if (held != durable.digest) {
    st.log->warn(
        "pattern index snapshot is stale ({} patterns up to version {}, PostgreSQL has {} up to "
        "{}); rebuilding from PostgreSQL",
        held.count, held.max_version, durable.digest.count, durable.digest.max_version);
    return std::nullopt;
  }
  return loaded;
}

// Reads what PostgreSQL holds first (one aggregate query), then takes the snapshot if it
// matches, else rebuilds page by page. Writes are refused until ready, so nothing changes the
// table between the check and the end of the load.
void start_loading(self_ptr self) {
  auto& st = self->state;
  st.ready = false;
  st.load_started = clock_type::now();
  if (st.settings.clustered) {
    // No snapshot describes one node's share of the table: the owned speakers' pages, once known.
    if (st.placed) rebuild(self, std::string{});
    return;
  }
  st.store->durable([self](caf::expected<durable_state> durable) {
    auto& st = self->state;
    if (!durable) {
      fail_if_corrupt(durable.error());
      return retry_later(self, db::failure(durable.error()));
    }
    if (auto snapshot = usable_snapshot(self, *durable)) {
      st.index = std::move(snapshot);
      st.saved_changes = st.changes;
      become_ready(self, "snapshot matches PostgreSQL");
      return;
    }
    rebuild(self, durable->instance_id);
  });
}

void maybe_compact(self_ptr self) {
  auto& st = self->state;
  if (!st.index->needs_compaction()) return;
  const auto started = clock_type::now();
  const std::size_t tombstones = st.index->deleted();
  st.index->compact(worker_count(st.settings));
  st.log->info("pattern index compacted: {} tombstones dropped, {} patterns, {:.2f} s", tombstones,
               st.index->size(), seconds_since(started));
}

// The owners changed (or were told the first time): the patterns of the speakers that left are
// dropped at once, and those of the speakers that came are read from PostgreSQL. Until the node
// holds a lease (not ready) nothing changes: its next placement says what it owns.
void on_placement(self_ptr self, const cluster_placement& p) {
  auto& st = self->state;
  if (!st.settings.clustered || !p.ready) return;
  std::vector<std::string> owners;
  owners.reserve(p.members.size());
  for (const auto& m : p.members) owners.push_back(m.address);
  if (st.placed && owners == st.owners && p.self == st.self_address) return;
  const bool first = !st.placed;
  st.placed = true;
  st.owners = std::move(owners);
  st.self_address = p.self;
  if (first) return start_loading(self);
  if (!st.index) return;  // a failed first load: its retry reads with these owners
  const auto dropped = st.index->erase_speakers_if([&st](const std::string& s) { return !owns(st, s); });
  st.log->info("pattern index: {} owner(s) of speakers; {} patterns of speakers that moved away dropped",
               st.owners.size(), dropped);
  if (dropped > 0) ++st.changes;
  maybe_compact(self);
  if (st.ready) {
    st.retry_delay = st.settings.retry_delay;
    load_pages(self);
  } else {
    rebuild(self, st.index->source_tag());  // the first load, still running, starts over
  }
}

// Runs `write` now when no write for the id is in flight, else after the ones before it.
void enqueue_write(self_ptr self, std::int64_t id, std::function<void()> write) {
  auto [it, idle] = self->state.writes.try_emplace(id);
  if (idle) {
    write();
  } else {
    it->second.push_back(std::move(write));
  }
}

void write_done(self_ptr self, std::int64_t id) {
  auto& writes = self->state.writes;
  auto it = writes.find(id);
  if (it == writes.end()) return;
  if (it->second.empty()) {
    writes.erase(it);
    return;
  }
  auto next = std::move(it->second.front());
  it->second.pop_front();
  next();
}

caf::result<bool> on_upsert(self_ptr self, pattern_record& record) {
  auto& st = self->state;
  if (auto problem = invalid_record(record, st.settings.max_text_bytes)) return invalid(*problem);
  if (!st.ready) return loading_error();
  canonicalise(record);
  auto rp = self->make_response_promise<bool>();
  const std::int64_t id = record.pattern_id;
  enqueue_write(self, id, [self, rp, record = std::move(record)]() mutable {
    auto& st = self->state;
    st.store->upsert(record, st.embedder_name, [self, rp, record](caf::expected<upserted> done) mutable {
      auto& st = self->state;
      if (!done) {
        rp.deliver(db::failure(done.error()));
        return write_done(self, record.pattern_id);
      }
      // Not applied: a newer saga revision wrote the row already, and this late step changes nothing.
      if (done->applied && owns(st, record.speaker_id)) {
        auto vector = pattern_vector(*st.settings.embedder, record.original_text, record.context_text);
        st.index->upsert(to_entry(record, done->version, done->created_at_ms), vector);
        ++st.changes;
        maybe_compact(self);
      } else if (done->applied) {
        // In a cluster a write may come just after its speaker moved away (the sender had the
        // older owners): it is durable, but the new owner may have read its pages before it
        // committed, so the caller is told to send it again; the retry, routed by the owners it
        // knows by then, re-applies the same revision there and indexes it.
        if (st.index->erase(record.pattern_id)) ++st.changes;
        rp.deliver(make_error(errc::moving,
                              "the patterns of speaker " + record.speaker_id +
                                " moved to another member; this write is stored, send it again to be indexed there",
                              std::chrono::seconds{1}));
        return write_done(self, record.pattern_id);
      }
      rp.deliver(true);
      write_done(self, record.pattern_id);
    });
  });
  return rp;
}

// A batch is one write of each of its ids: it runs once every id's earlier writes are done (the
// batch holds the head of each id's queue meanwhile), in one statement and one commit, and the
// memory applies it after the commit as a single upsert would. Batches queue behind one another in
// the order they came for every id they share, so two never wait for each other.
struct batch_write {
  std::vector<pattern_record> records;
  std::size_t waiting = 0;  // ids whose earlier writes are still in flight
};

void write_batch(self_ptr self, caf::typed_response_promise<bool> rp, std::shared_ptr<batch_write> batch) {
  auto& st = self->state;
  st.store->upsert_batch(batch->records, st.embedder_name, [self, rp, batch](caf::expected<std::vector<upserted>> done) mutable {
    auto& st = self->state;
    auto release = [self, batch] {
      for (const auto& r : batch->records) write_done(self, r.pattern_id);
    };
    if (!done || done->size() != batch->records.size()) {
      rp.deliver(done ? make_error(errc::internal, "patterns store: one answer per record expected")
                      : db::failure(done.error()));
      return release();
    }
    std::vector<pattern_entry> entries;
    std::string moved;  // a speaker this node no longer owns (see on_upsert)
    for (std::size_t i = 0; i < done->size(); ++i) {
      const auto& r = batch->records[i];
      const auto& u = (*done)[i];
      if (!u.applied) continue;
      if (owns(st, r.speaker_id)) {
        entries.push_back(to_entry(r, u.version, u.created_at_ms));
      } else {
        if (st.index->erase(r.pattern_id)) ++st.changes;
        moved = r.speaker_id;
      }
    }
    if (!entries.empty()) {
      auto vectors = embed_all(*st.settings.embedder, entries, 1);
      st.index->upsert_batch(std::move(entries), vectors, 1);
      ++st.changes;
      maybe_compact(self);
    }
    if (!moved.empty())
      rp.deliver(make_error(errc::moving,
                            "the patterns of speaker " + moved +
                              " moved to another member; this batch is stored, send it again to be indexed there",
                            std::chrono::seconds{1}));
    else
      rp.deliver(true);
    release();
  });
}

caf::result<bool> on_upsert_batch(self_ptr self, pattern_record_batch& batch) {
  auto& st = self->state;
  if (batch.records.size() > max_pattern_batch)
    return invalid("records: at most " + std::to_string(max_pattern_batch) + " at once");
  std::unordered_set<std::int64_t> ids;
  for (std::size_t i = 0; i < batch.records.size(); ++i) {
    const auto& r = batch.records[i];
    const auto at = "records[" + std::to_string(i) + "]: ";
    if (auto problem = invalid_record(r, st.settings.max_text_bytes)) return invalid(at + *problem);
    if (!ids.insert(r.pattern_id).second) return invalid(at + "pattern_id repeats an earlier record's");
  }
  if (!st.ready) return loading_error();
  if (batch.records.empty()) return true;
  auto job = std::make_shared<batch_write>();
  job->records = std::move(batch.records);
  for (auto& r : job->records) canonicalise(r);
  job->waiting = job->records.size();
  auto rp = self->make_response_promise<bool>();
  for (const auto& r : job->records)
    enqueue_write(self, r.pattern_id, [self, rp, job]() {
      if (--job->waiting == 0) write_batch(self, rp, job);
    });
  return rp;
}

caf::result<bool> on_delete(self_ptr self, std::int64_t id) {
  auto& st = self->state;
  if (id <= 0) return invalid("pattern_id: must be positive");
  if (!st.ready) return loading_error();
  auto rp = self->make_response_promise<bool>();
  enqueue_write(self, id, [self, rp, id]() mutable {
    auto& st = self->state;
    st.store->erase(id, [self, rp, id](caf::expected<bool> existed) mutable {
      auto& st = self->state;
      if (!existed) {
        rp.deliver(db::failure(existed.error()));
        return write_done(self, id);
      }
      if (st.index->erase(id) || *existed) ++st.changes;
      if (st.loading) st.erased_while_loading.insert(id);
      maybe_compact(self);
      rp.deliver(*existed);
      write_done(self, id);
    });
  });
  return rp;
}

// What a single and a batched search check alike: top_k and the filter's numbers.
std::optional<caf::error> invalid_search(self_ptr self, std::uint32_t top_k, const pattern_filter& f) {
  const auto& st = self->state;
  if (top_k == 0 || top_k > st.settings.max_top_k)
    return invalid("top_k: must be 1 to " + std::to_string(st.settings.max_top_k));
  if (!std::isfinite(f.min_weight)) return invalid("min_weight: must be a number");
  if (f.from_ms < 0 || f.to_ms < 0) return invalid("from/to: must not be negative");
  return std::nullopt;
}

caf::result<pattern_hits> on_search(self_ptr self, const pattern_search& q) {
  auto& st = self->state;
  if (auto problem = invalid_search(self, q.top_k, q.filter)) return std::move(*problem);
  if (q.query_text.size() > st.settings.max_text_bytes) return invalid("query_text: too long");
  const auto& f = q.filter;
  if (!st.ready) return loading_error();
  const auto query = st.settings.embedder->embed(q.query_text);
  if (std::all_of(query.begin(), query.end(), [](float x) { return x == 0.0f; }))
    return invalid("query_text: no words to search for");
  const auto started = clock_type::now();
  auto found = st.index->search(query, to_filter(f), q.top_k);
  st.search_seconds.observe(seconds_since(started));
  st.log->debug("pattern search: plan {}, {} hits, {:.3f} ms", found.plan, found.hits.size(),
                seconds_since(started) * 1000);
  pattern_hits out;
  out.plan = std::move(found.plan);
  out.hits.reserve(found.hits.size());
  for (const auto& h : found.hits) out.hits.push_back({to_record(h.pattern), h.similarity});
  return out;
}

// A batch arrives embedded (its sender did that CPU work), so the index only searches: one plan
// for the filter, one pass over a small speaker partition for all queries.
caf::result<pattern_batch_hits> on_search_batch(self_ptr self, const pattern_batch_search& q) {
  auto& st = self->state;
  if (auto problem = invalid_search(self, q.top_k, q.filter)) return std::move(*problem);
  if (q.queries.size() > st.settings.max_batch_queries)
    return invalid("queries: at most " + std::to_string(st.settings.max_batch_queries));
  if (q.embedder != st.embedder_name)
    return invalid("embedder: the vectors were made by " + q.embedder + ", this index uses " +
                   st.embedder_name);
  for (std::size_t i = 0; i < q.queries.size(); ++i) {
    const auto& v = q.queries[i];
    if (v.size() != st.settings.dimension || !std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); }))
      return invalid("queries[" + std::to_string(i) + "]: not a vector of this index's dimension");
    if (std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; }))
      return invalid("queries[" + std::to_string(i) + "]: no words to search for");
  }
  if (!st.ready) return loading_error();
  const auto started = clock_type::now();
  auto found = st.index->search_batch(q.queries, to_filter(q.filter), q.top_k);
  st.log->debug("pattern batch search: {} queries, plan {}, {} patterns, {:.3f} ms", q.queries.size(),
                found.plan, found.patterns.size(), seconds_since(started) * 1000);
  pattern_batch_hits out;
  out.plan = std::move(found.plan);
  out.patterns.reserve(found.patterns.size());
  for (const auto& p : found.patterns) out.patterns.push_back(to_record(p));
  if (q.per_query) {
    out.per_query.reserve(found.per_query.size());
    for (const auto& hits : found.per_query) {
      auto& list = out.per_query.emplace_back();
      list.reserve(hits.size());
      for (const auto& [at, similarity] : hits) list.push_back({at, similarity});
    }
  }
  return out;
}

index_actor::behavior_type index_fn(self_ptr self, pattern_index_settings settings) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.log = log::get("patterns");
  st.embedder_name = std::string(st.settings.embedder->name());
  st.config.dimension = st.settings.dimension;
  st.config.m = st.settings.m;
  st.config.ef_construction = st.settings.ef_construction;
  st.config.ef_search = st.settings.ef_search;
  st.config.exact_threshold = st.settings.exact_threshold;
  st.config.initial_capacity = st.settings.page_size;
  st.retry_delay = st.settings.retry_delay;
  auto link = db::make_store_link(self, st.settings.db, st.settings.db_timeout);
  st.store = st.settings.make_store ? st.settings.make_store(link) : make_postgres_store(link);

  // Trapping exits lets a clean stop write the snapshot first; any exit still ends the actor.
  self->set_exit_handler([self](caf::exit_msg& m) {
    auto& st = self->state;
    if (st.ready && st.settings.snapshot_on_stop && st.changes != st.saved_changes)
      save_snapshot(self);
    self->quit(m.reason);
  });

  start_loading(self);

  return {
      [self](upsert_atom, pattern_record& r) { return on_upsert(self, r); },
      [self](upsert_atom, pattern_record_batch& b) { return on_upsert_batch(self, b); },
      [self](delete_atom, std::int64_t id) { return on_delete(self, id); },
      [self](search_atom, const pattern_search& q) { return on_search(self, q); },
      [self](search_atom, const pattern_batch_search& q) { return on_search_batch(self, q); },
      [self](status_atom) {
        auto& st = self->state;
        pattern_index_status s;
        s.ready = st.ready;
        s.embedder = st.embedder_name;
        if (st.ready) {
          s.patterns = st.index->size();
          s.deleted = st.index->deleted();
        }
        return s;
      },
      [self](metrics_atom) {
        const auto& st = self->state;
        component_metrics m;
        m.component = "pattern-index";
        const auto& h = st.search_seconds.counts();
        m.samples.push_back({"sbm_pattern_index_ready", {}, st.ready ? 1.0 : 0.0});
        m.samples.push_back({"sbm_pattern_index_patterns", {},
                             st.ready ? static_cast<double>(st.index->size()) : 0.0});
        m.samples.push_back({"sbm_pattern_index_deleted_patterns", {},
                             st.ready ? static_cast<double>(st.index->deleted()) : 0.0});
        m.histograms.push_back({"sbm_pattern_search_duration_seconds", {}, h.bounds, h.counts, h.sum});
        return m;
      },
      [self](flush_atom) {
        auto& st = self->state;
        if (!st.ready) return;
        if (st.changes != st.saved_changes) save_snapshot(self);
        self->delayed_send(self, st.settings.snapshot_interval, flush_atom::value);
      },
      [self](restart_atom) {
        auto& st = self->state;
        if (!st.ready) start_loading(self);
        else if (st.settings.clustered && !st.loading) load_pages(self);
      },
      [self](placement_atom, const cluster_placement& p) { on_placement(self, p); },
  };
}

}  // namespace

pattern_index_actor spawn_pattern_index(caf::actor_system& system, pattern_index_settings settings) {
  if (!settings.db && !settings.make_store) throw std::invalid_argument("patterns: no PostgreSQL actor");
  if (settings.dimension == 0) throw std::invalid_argument("patterns: dimension must be positive");
  if (settings.clustered) settings.snapshot_path.clear();
  if (!settings.embedder)
    settings.embedder = std::make_shared<hashed_ngram_embedder>(settings.dimension);
  if (settings.embedder->dimension() != settings.dimension)
    throw std::invalid_argument("patterns: the embedder's dimension differs from `dimension`");
  if (settings.db_timeout.count() <= 0 || settings.retry_delay.count() <= 0 ||
      settings.snapshot_interval.count() < 0)
    throw std::invalid_argument("patterns: timeouts and delays must be positive");
  if (settings.page_size == 0) throw std::invalid_argument("patterns: page_size must be positive");
  if (settings.m < 2 || settings.ef_construction == 0 || settings.ef_search == 0)
    throw std::invalid_argument("patterns: m must be at least 2, ef values positive");
  if (settings.max_top_k == 0 || settings.max_batch_queries == 0)
    throw std::invalid_argument("patterns: max_top_k and max_batch_queries must be positive");
  if (!settings.detached) return caf::actor_cast<pattern_index_actor>(system.spawn(index_fn, std::move(settings)));
  return caf::actor_cast<pattern_index_actor>(
      system.spawn<caf::detached>(index_fn, std::move(settings)));
}

}  // namespace sbm::patterns
