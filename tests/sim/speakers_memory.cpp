#include "tests/sim/speakers_memory.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

#include "messages/cluster.hpp"
#include "messages/errors.hpp"
#include "tests/sim/memory_server.hpp"

namespace sbm::sim {

namespace {

using namespace sbm::speakers;
using tables = speaker_tables;

template <class T>
caf::expected<T> ok(T x) {
  return caf::expected<T>{std::move(x)};
}

bool live_owner(const tables& t, const std::string& id, std::int64_t epoch, std::int64_t now) {
  if (!t.leases) return false;
  auto owner = t.leases->owners.find(id);
  auto lease = t.leases->leases.find(epoch);
  return owner != t.leases->owners.end() && owner->second == epoch && lease != t.leases->leases.end() &&
         lease->second.expires_ms > now;
}

// cluster.fence_speaker inside the write: refuses the whole call.
caf::error fence(tables& t, const std::string& id, const fence_epoch& epoch, std::int64_t now) {
  if (!epoch) return {};
  if (!t.leases) return make_error(errc::stale_owner, "simulated: no lease tables to fence by");
  auto fenced = fence_speaker(*t.leases, id, *epoch, now);
  return fenced ? caf::error{} : std::move(fenced.error());
}

void note_write(tables& t, const std::string& id, const fence_epoch& epoch, std::string job, std::int64_t now) {
  tables::accepted w;
  w.speaker_id = id;
  w.epoch = epoch;
  w.live_owner = !epoch || live_owner(t, id, *epoch, now);
  w.job_id = std::move(job);
  w.at_ms = now;
  t.writes.push_back(std::move(w));
}

bool key_taken(const tables& t, const request_context& ctx) {
  return ctx.keyed() && t.keys.count({ctx.principal, ctx.idempotency_key});
}

void keep_key(tables& t, const request_context& ctx, const speaker_view& answer, std::int64_t now) {
  if (ctx.keyed()) t.keys[{ctx.principal, ctx.idempotency_key}] = {ctx.request_digest, 0, answer, now};
}

void add_history(tables& t, const std::string& id, history_line h, std::int64_t now) {
  t.history[id].push_back(
    {t.next_id++, std::move(h.kind), std::move(h.previous_bucket), std::move(h.new_bucket), std::move(h.reason),
     std::move(h.actor), now});
}

speaker_record record_of(const tables::speaker_row& r) { return {r.view, r.version}; }

// The outbox rows a change commits with, as the PostgreSQL adapter builds their payloads.
void add_move(speaker_tables& t, const speaker_change& c, const bucket_move& m, std::int64_t now) {
  speaker_tables::outbox_row row{t.next_id++, bucket_changed_topic, c.speaker_id, m.new_bucket, {}, now};
  row.entry.id = row.id;
  row.entry.created_ms = now;
  row.entry.event = {row.id, c.speaker_id, c.client_id, m.previous_bucket, m.new_bucket, m.reason, now};
  t.outbox.push_back(std::move(row));
}

void add_audit(speaker_tables& t, const speaker_change& c, const audit_line& a, std::int64_t now) {
  speaker_tables::outbox_row row{t.next_id++, audit_topic, c.speaker_id, a.bucket, {}, now};
  auto& r = row.entry.record;
  row.entry.id = row.id;
  row.entry.created_ms = now;
  r.actor = a.by.actor.empty() ? "unknown" : a.by.actor;
  r.actor_kind = a.by.actor_kind.empty() ? (a.by.actor.rfind("service:", 0) == 0 ? "service" : "user") : a.by.actor_kind;
  r.action = a.action;
  r.target = c.speaker_id;
  r.peer = a.by.peer;
  // As PostgreSQL prints the jsonb object the adapter builds (keys by length, then bytes).
  r.detail = "{\"bucket\": " + nlohmann::json(a.bucket).dump() + ", \"reason\": " + nlohmann::json(a.reason).dump() +
             ", \"speaker_id\": " + nlohmann::json(c.speaker_id).dump() + "}";
  r.client_id = c.client_id;
  r.outcome = "success";
  r.status = 200;
  r.source_key = "speakers.outbox:" + std::to_string(row.id);
  t.outbox.push_back(std::move(row));
}

bool& stamp_of(speaker_tables::outbox_row& row, outbox_target target) {
  switch (target) {
    case outbox_target::bus: return row.delivered;
    case outbox_target::stream: return row.streamed;
    case outbox_target::audit: break;
  }
  return row.audited;
}

const char* topic_of(outbox_target target) { return target == outbox_target::audit ? audit_topic : bucket_changed_topic; }

class memory_store final : public store {
 public:
  memory_store(caf::actor server, std::shared_ptr<tables> t) : server_{std::move(server)}, t_{std::move(t)} {}

  void load(const db::store_link& via, const std::string& speaker_id, std::uint32_t window, fence_epoch epoch,
            completion<loaded_speaker> done) const override {
    run<loaded_speaker>(via, {}, std::move(done),
                        [speaker_id, window, epoch](tables& t, std::int64_t now) -> caf::expected<loaded_speaker> {
                          if (auto refused = fence(t, speaker_id, epoch, now)) return refused;
                          loaded_speaker out;
                          auto it = t.speakers.find(speaker_id);
                          if (it == t.speakers.end()) return out;
                          out.row = record_of(it->second);
                          const auto& all = t.samples[speaker_id];
                          const auto from = all.size() > window ? all.size() - window : 0;
                          for (auto i = from; i < all.size(); ++i) out.window.push_back(all[i].errors_per_100_words);
                          return out;
                        });
  }

  void save(const db::store_link& via, const speaker_change& c, const request_context& ctx, fence_epoch epoch,
            completion<change_saved> done) const override {
    run<change_saved>(via, ctx.until, std::move(done), [c, ctx, epoch](tables& t, std::int64_t now) -> caf::expected<change_saved> {
      // In the order the PostgreSQL transaction meets them: the versioned update, the sample, the
      // key, then the fence (its last statement).
      auto it = t.speakers.find(c.speaker_id);
      if (it == t.speakers.end() || it->second.version != c.version)
        return make_error(errc::conflict, "speaker " + c.speaker_id + " was changed by another writer meanwhile; retry");
      if (c.sample && t.jobs.count({c.speaker_id, c.sample->job_id}))
        return make_error(errc::duplicate, "job " + c.sample->job_id + " is already counted for speaker " + c.speaker_id);
      if (key_taken(t, ctx)) return db::idempotency::in_progress(ctx);
      if (!t.skip_write_fence)
        if (auto refused = fence(t, c.speaker_id, epoch, now)) return refused;
      note_write(t, c.speaker_id, epoch, c.sample ? c.sample->job_id : std::string(), now);
      auto& v = it->second.view;
      ++it->second.version;
      v.bucket = c.bucket;
      v.bucket_changes += c.bucket_changes;
      v.updated_at_ms = now;
      if (c.sample) {
        ++v.samples_total;
        v.window_size = c.window_size;
        v.window_mean = c.window_mean;
        t.jobs.insert({c.speaker_id, c.sample->job_id});
        t.samples[c.speaker_id].push_back(
          {t.next_id++, c.sample->job_id, c.sample->errors_per_100_words, c.sample->actor, now});
      } else if (c.pin == pin_change::pin) {
        v.pinned = true;
        v.pin_reason = c.pin_reason;
        v.pinned_by = c.pinned_by;
        v.pinned_at_ms = now;
      } else if (c.pin == pin_change::unpin) {
        v.pinned = false;
        v.pin_reason.clear();
        v.pinned_by.clear();
        v.pinned_at_ms = 0;
      }
      for (const auto& h : c.history) add_history(t, c.speaker_id, h, now);
      if (c.audit) add_audit(t, c, *c.audit, now);
      for (const auto& m : c.moves) add_move(t, c, m, now);
      keep_key(t, ctx, v, now);
      return change_saved{now, v.pinned_at_ms};
    });
  }

  void create(const db::store_link& via, const new_speaker& s, const request_context& ctx, fence_epoch epoch,
              completion<speaker_record> done) const override {
    run<speaker_record>(via, ctx.until, std::move(done), [s, ctx, epoch](tables& t, std::int64_t now) -> caf::expected<speaker_record> {
      if (t.speakers.count(s.speaker_id))
        return make_error(errc::duplicate, "speaker " + s.speaker_id + " is already registered");
      if (key_taken(t, ctx)) return db::idempotency::in_progress(ctx);
      if (auto refused = fence(t, s.speaker_id, epoch, now)) return refused;
      if (epoch && t.leases) release_speaker(*t.leases, s.speaker_id, *epoch);
      note_write(t, s.speaker_id, std::nullopt, std::string(), now);
      auto& row = t.speakers[s.speaker_id];
      row.view.speaker_id = s.speaker_id;
      row.view.client_id = s.client_id;
      row.view.display_name = s.display_name;
      row.view.bucket = s.bucket;
      row.view.created_at_ms = row.view.updated_at_ms = now;
      add_history(t, s.speaker_id, {"register", "", s.bucket, "registered", s.actor}, now);
      keep_key(t, ctx, row.view, now);
      return record_of(row);
    });
  }

  void find_key(const db::store_link& via, const request_context& ctx, std::chrono::seconds retention,
                completion<keyed_answer> done) const override {
    run<keyed_answer>(via, {}, std::move(done), [ctx, retention](tables& t, std::int64_t now) {
      keyed_answer out;
      const auto* row = sim::find_key(t.keys, ctx, retention, now, out.v);
      if (row && out.v == db::idempotency::verdict::replay) {
        out.stored.outcome = row->outcome;
        out.view = row->answer;
      }
      return ok(out);
    });
  }

  void history(const db::store_link& via, const std::string& speaker_id, std::uint32_t limit,
               completion<std::vector<history_entry>> done) const override {
    run<std::vector<history_entry>>(via, {}, std::move(done), [speaker_id, limit](tables& t, std::int64_t) {
      const auto& all = t.history[speaker_id];
      const auto from = all.size() > limit ? all.size() - limit : 0;
      return ok(std::vector<history_entry>(all.begin() + static_cast<std::ptrdiff_t>(from), all.end()));
    });
  }

  void list(const db::store_link& via, const list_filter& f,
            completion<std::vector<speaker_record>> done) const override {
    run<std::vector<speaker_record>>(via, {}, std::move(done), [f](tables& t, std::int64_t) {
      std::vector<speaker_record> out;
      auto it = f.after ? t.speakers.upper_bound(*f.after) : t.speakers.begin();
      for (; it != t.speakers.end() && out.size() < f.fetch; ++it) {
        const auto& v = it->second.view;
        if ((f.bucket && v.bucket != *f.bucket) || (f.client_id && v.client_id != *f.client_id) ||
            !f.scope.admits(v.client_id))
          continue;
        out.push_back(record_of(it->second));
      }
      return ok(std::move(out));
    });
  }

  void samples(const db::store_link& via, const samples_query& q, std::uint32_t limit,
               completion<std::pair<bool, quality_samples>> done) const override {
    run<std::pair<bool, quality_samples>>(via, {}, std::move(done), [q, limit](tables& t, std::int64_t) {
      std::pair<bool, quality_samples> out;
      auto s = t.speakers.find(q.speaker_id);
      if (s == t.speakers.end() || !q.scope.admits(s->second.view.client_id)) return ok(std::move(out));
      out.first = true;
      const auto& all = t.samples[q.speaker_id];
      auto& items = out.second.items;
      for (auto it = all.rbegin(); it != all.rend(); ++it) {
        if ((q.has_from && it->at_ms < q.from_ms) || (q.has_to && it->at_ms >= q.to_ms)) continue;
        if (items.size() == limit) {
          out.second.truncated = true;
          break;
        }
        items.push_back(*it);
      }
      std::reverse(items.begin(), items.end());
      return ok(std::move(out));
    });
  }

  void release(const db::store_link& via, const std::string& speaker_id, std::int64_t epoch,
               completion<bool> done) const override {
    run<bool>(via, {}, std::move(done), [speaker_id, epoch](tables& t, std::int64_t) -> caf::expected<bool> {
      if (t.busy_first_release && t.releases_asked[speaker_id]++ % 2 == 0) {
        ++t.releases_refused;
        return make_error(errc::overloaded, "simulated: the pool's queue is full");
      }
      if (t.leases) release_speaker(*t.leases, speaker_id, epoch);
      return ok(true);
    });
  }

  void outbox_pending(const db::store_link& via, outbox_target target, std::uint32_t batch,
                      completion<std::vector<outbox_entry>> done) const override {
    run<std::vector<outbox_entry>>(via, {}, std::move(done), [target, batch](tables& t, std::int64_t) {
      std::vector<outbox_entry> out;
      for (auto& row : t.outbox) {
        if (out.size() >= batch) break;
        if (row.topic == topic_of(target) && !stamp_of(row, target)) out.push_back(row.entry);
      }
      return ok(out);
    });
  }

  void outbox_stamp(const db::store_link& via, outbox_target target, std::int64_t id,
                    std::int64_t relay_epoch, completion<bool> done) const override {
    run<bool>(via, {}, std::move(done), [target, id, relay_epoch](tables& t, std::int64_t now) -> caf::expected<bool> {
      if (relay_epoch != 0) {  // cluster.fence_singleton
        if (!t.leases) return make_error(errc::stale_owner, "simulated: no lease tables to fence by");
        const auto lease = t.leases->leases.find(relay_epoch);
        const auto held = t.leases->singletons.find(outbox_relay_singleton);
        if (lease == t.leases->leases.end() || lease->second.expires_ms <= now ||
            held == t.leases->singletons.end() || held->second != relay_epoch)
          return make_error(errc::stale_owner, "the outbox relay singleton is not held by epoch " +
                                                 std::to_string(relay_epoch));
      }
      for (auto& row : t.outbox)
        if (row.id == id) stamp_of(row, target) = true;
      return ok(true);
    });
  }

  void outbox_purge(const db::store_link& via, std::chrono::hours retention, std::chrono::seconds key_retention,
                    completion<bool> done) const override {
    run<bool>(via, {}, std::move(done), [retention, key_retention](tables& t, std::int64_t now) {
      const auto before = now - std::chrono::duration_cast<std::chrono::milliseconds>(retention).count();
      t.outbox.erase(std::remove_if(t.outbox.begin(), t.outbox.end(),
                                    [before](const speaker_tables::outbox_row& row) {
                                      return row.created_ms < before &&
                                             (row.topic == audit_topic ? row.audited : row.delivered && row.streamed);
                                    }),
                     t.outbox.end());
      forget_keys(t.keys, key_retention, now);
      return ok(true);
    });
  }

 private:
  template <class T, class Op>
  void run(const db::store_link& via, const deadline& until, completion<T> done, Op op) const {
    call_server<T>(via, server_, t_, until, std::move(done), std::move(op));
  }

  caf::actor server_;
  std::shared_ptr<tables> t_;
};

}  // namespace

speakers::store_ptr memory_speaker_store(caf::actor server, std::shared_ptr<speaker_tables> tables) {
  return std::make_shared<memory_store>(std::move(server), std::move(tables));
}

}  // namespace sbm::sim
