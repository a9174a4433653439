#include "tests/sim/verification_memory.hpp"

#include <algorithm>
#include <utility>

#include "messages/errors.hpp"

namespace sbm::sim {

namespace {

using namespace sbm::verification;
using tables = verification_tables;

constexpr std::int64_t unfinished_after_ms = 5000;  // as the PostgreSQL sweep: 5 s after the submit
constexpr std::size_t unfinished_batch = 100;

// The status as stored, expiry applied as PostgreSQL's load reads it.
std::string status_at(const tables::session& s, std::int64_t now) {
  const auto& h = s.record.head;
  return h.status == "open" && h.expires_at_ms <= now ? "expired" : h.status;
}

void return_entries(tables& t, std::int64_t session_id) {
  for (auto& e : t.schedule)
    if (e.session_id == session_id && e.row.status == "taken") {
      e.row.status = "scheduled";
      e.session_id = 0;
    }
}

session_status touch_at(tables& t, tables::session& s, std::int64_t now) {
  auto& h = s.record.head;
  if (h.status == "open") {
    if (h.expires_at_ms <= now) {
      h.status = "expired";
      return_entries(t, h.id);
    } else {
      h.expires_at_ms = now + s.idle_ms;
    }
  }
  return {h.status, h.expires_at_ms};
}

std::vector<session_mark> marks_in_order(const tables::session& s) {
  std::vector<std::pair<std::int64_t, session_mark>> v;
  for (const auto& [id, m] : s.marks) v.push_back({m.first, session_mark{id, m.second}});
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<session_mark> out;
  for (auto& x : v) out.push_back(std::move(x.second));
  return out;
}

// A key stored meanwhile rolls the write back, as the PostgreSQL statement's expect_rows does.
bool key_taken(const tables& t, const request_context& ctx) {
  return ctx.keyed() && t.keys.count({ctx.principal, ctx.idempotency_key});
}

void keep_key(tables& t, const request_context& ctx, std::string answer, std::int64_t now) {
  if (ctx.keyed()) t.keys[{ctx.principal, ctx.idempotency_key}] = {ctx.request_digest, 0, std::move(answer), now};
}

caf::error conflict_at(std::int32_t statement) {
  return make_error(errc::conflict, error_info{"simulated: a statement affected no row", 0, statement, false});
}

class memory_store final : public store {
 public:
  memory_store(db::store_link link, caf::actor server, std::shared_ptr<tables> t)
    : link_{std::move(link)}, server_{std::move(server)}, t_{std::move(t)} {}

  void find_key(const request_context& ctx, std::chrono::seconds retention,
                completion<db::idempotency::lookup_result> done) override {
    run<db::idempotency::lookup_result>(ctx.until, std::move(done), [ctx, retention](tables& t, std::int64_t now) {
      db::idempotency::lookup_result out;
      const auto* row = sim::find_key(t.keys, ctx, retention, now, out.v);
      if (row && out.v == db::idempotency::verdict::replay) out.stored = {row->outcome, row->answer};
      return ok(out);
    });
  }

  void create(const new_session& s, const request_context& ctx, completion<std::int64_t> done) override {
    run<std::int64_t>(ctx.until, std::move(done), [s, ctx](tables& t, std::int64_t now) -> caf::expected<std::int64_t> {
      if (key_taken(t, ctx)) return conflict_at(2);
      const auto id = t.next_session++;
      auto& row = t.sessions[id];
      row.idle_ms = s.idle_timeout.count();
      auto& h = row.record.head;
      h.id = id;
      h.speaker_id = s.speaker_id;
      h.client_id = s.client_id;
      h.owner = s.owner;
      h.status = "open";
      h.from_ms = s.from_ms;
      h.to_ms = s.to_ms;
      h.error_types = s.error_types;
      h.max_jobs = s.max_jobs;
      h.source = s.source;
      h.stale = s.stale;
      h.stale_since_ms = s.stale ? s.stale_since_ms : 0;
      h.stale_reason = s.stale_reason;
      h.created_at_ms = now;
      h.expires_at_ms = now + row.idle_ms;
      row.record.content_token = s.content_token;
      for (auto& e : t.schedule)
        if (e.row.speaker_id == s.speaker_id && e.row.status == "scheduled") {
          e.row.status = "taken";
          e.session_id = id;
        }
      keep_key(t, ctx, std::to_string(id), now);
      return id;
    });
  }

  void load(std::int64_t id, const deadline& until, completion<caf::optional<session_record>> done) override {
    run<caf::optional<session_record>>(until, std::move(done), [id](tables& t, std::int64_t now) {
      auto it = t.sessions.find(id);
      if (it == t.sessions.end()) return ok(caf::optional<session_record>{});
      auto r = it->second.record;
      r.head.status = status_at(it->second, now);
      r.head.marks = marks_in_order(it->second);
      return ok(caf::optional<session_record>{std::move(r)});
    });
  }

  void touch(std::int64_t id, const deadline& until, completion<caf::optional<session_status>> done) override {
    run<caf::optional<session_status>>(until, std::move(done), [id](tables& t, std::int64_t now) {
      auto it = t.sessions.find(id);
      if (it == t.sessions.end()) return ok(caf::optional<session_status>{});
      return ok(caf::optional<session_status>{touch_at(t, it->second, now)});
    });
  }

  void save_marks(std::int64_t id, const std::vector<session_mark>& marks, const std::vector<job_residual>& residuals,
                  const deadline& until, completion<caf::optional<marks_saved>> done) override {
    run<caf::optional<marks_saved>>(until, std::move(done), [id, marks, residuals](tables& t, std::int64_t now) {
      auto it = t.sessions.find(id);
      if (it == t.sessions.end()) return ok(caf::optional<marks_saved>{});
      auto& s = it->second;
      auto status = touch_at(t, s, now);
      if (status.status == "open") {
        for (const auto& m : marks) s.marks[m.correction_id] = {t.next_seq++, m.verdict};
        for (const auto& r : residuals) {
          auto& rs = s.record.residuals;
          auto at = std::find_if(rs.begin(), rs.end(), [&](const job_residual& x) { return x.job_id == r.job_id; });
          if (at == rs.end())
            rs.push_back(r);
          else
            at->residual_errors = r.residual_errors;
        }
      }
      return ok(caf::optional<marks_saved>{marks_saved{status, marks_in_order(s)}});
    });
  }

  void submit(std::int64_t id, const std::string& actor, const request_context& ctx,
              completion<submitted> done) override {
    run<submitted>(ctx.until, std::move(done), [id, actor, ctx](tables& t, std::int64_t now) {
      auto it = t.sessions.find(id);
      if (it == t.sessions.end() || status_at(it->second, now) != "open") return ok(submitted{submitted::not_open, 0});
      if (key_taken(t, ctx)) return ok(submitted{submitted::key_taken, 0});
      auto& h = it->second.record.head;
      h.status = "submitted";
      h.submitted_at_ms = now;
      h.submitted_by = actor;
      for (auto& e : t.schedule)
        if (e.session_id == id && e.row.status == "taken") e.row.status = "done";
      keep_key(t, ctx, std::to_string(id), now);
      return ok(submitted{submitted::done, now});
    });
  }

  void finish_effects(std::int64_t id, const submit_outcome& outcome, completion<bool> done) override {
    run<bool>({}, std::move(done), [id, outcome](tables& t, std::int64_t) -> caf::expected<bool> {
      auto it = t.sessions.find(id);
      if (it == t.sessions.end()) return conflict_at(0);
      it->second.record.head.effects_done = true;
      it->second.record.head.outcome = outcome;
      return true;
    });
  }

  void drafts_purged_at(std::int64_t id, const deadline& until, completion<std::int64_t> done) override {
    run<std::int64_t>(until, std::move(done), [id](tables& t, std::int64_t) {
      auto it = t.sessions.find(id);
      return ok(it == t.sessions.end() ? std::int64_t{0} : it->second.record.head.drafts_purged_at_ms);
    });
  }

  void sweep(std::chrono::seconds retention, completion<sweep_result> done) override {
    run<sweep_result>({}, std::move(done), [retention](tables& t, std::int64_t now) {
      sweep_result out;
      std::vector<std::pair<std::int64_t, std::int64_t>> unfinished;  // (submitted_at, id)
      for (auto& [id, s] : t.sessions) {
        auto& h = s.record.head;
        if (h.status == "open" && h.expires_at_ms <= now) {
          h.status = "expired";
          return_entries(t, id);
          out.expired.push_back(id);
        } else if (h.status == "submitted" && !h.effects_done && h.submitted_at_ms < now - unfinished_after_ms) {
          unfinished.push_back({h.submitted_at_ms, id});
        }
      }
      std::sort(unfinished.begin(), unfinished.end());
      for (std::size_t i = 0; i < unfinished.size() && i < unfinished_batch; ++i) out.unfinished.push_back(unfinished[i].second);
      for (auto it = t.keys.begin(); it != t.keys.end();)
        it = it->second.created_ms <= now - retention.count() * 1000 ? t.keys.erase(it) : std::next(it);
      return ok(out);
    });
  }

  void schedule(const schedule_entry& e, completion<bool> done) override {
    run<bool>({}, std::move(done), [e](tables& t, std::int64_t now) {
      for (const auto& x : t.schedule)
        if ((e.source_key.empty() && !t.skip_event_dedup && x.row.source_event_id == e.source_event_id) ||
            (!e.source_key.empty() && x.row.source_key == e.source_key))
          return ok(true);
      tables::entry row;
      row.row = {t.next_entry++, e.speaker_id, e.priority, e.reason, "scheduled",
                 e.source_key.empty() ? e.source_event_id : 0, now, e.source_key, e.client_id};
      t.schedule.push_back(std::move(row));
      return ok(true);
    });
  }

  void list_schedule(const schedule_query& q, std::uint32_t limit, completion<verification_schedule> done) override {
    run<verification_schedule>({}, std::move(done), [q, limit](tables& t, std::int64_t) {
      verification_schedule out;
      for (const auto& e : t.schedule) {
        if (out.items.size() >= limit) break;
        if ((!q.priority.empty() && e.row.priority != q.priority) ||
            (!q.speaker_id.empty() && e.row.speaker_id != q.speaker_id) || !q.scope.admits(e.row.client_id))
          continue;
        out.items.push_back(e.row);
      }
      return ok(out);
    });
  }

 private:
  template <class T>
  static caf::expected<T> ok(T x) {
    return caf::expected<T>{std::move(x)};
  }

  // One call to the server: `op` runs there, at the server's virtual instant; its answer comes
  // back through the link (or the link's error: refused, lost, timed out).
  template <class T, class Op>
  void run(const deadline& until, completion<T> done, Op op) {
    call_server<T>(link_, server_, t_, until, std::move(done), std::move(op));
  }

  db::store_link link_;
  caf::actor server_;
  std::shared_ptr<tables> t_;
};

}  // namespace

store_factory memory_verification_store(caf::actor server, std::shared_ptr<verification_tables> tables) {
  return [server, tables](const db::store_link& link) -> std::unique_ptr<store> {
    return std::make_unique<memory_store>(link, server, tables);
  };
}

}  // namespace sbm::sim
