#include "tests/sim/reports_memory.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>

#include "messages/errors.hpp"
#include "runtime/domain/vocabulary.hpp"

namespace sbm::sim {

namespace {

using namespace sbm::reports;
using tables = reports_tables;

// A saga row moves only under the runner's claim, at the revision and step its work ran for.
bool held(const tables::saga_row& s, std::int64_t revision, const std::string& step, const std::string& claimant) {
  return s.revision == revision && s.step == step && s.claim == claimant;
}

// What PostgreSQL prints for a double precision in text (0.6, 1, 0.30000000000000004).
std::string number_text(double v) {
  std::ostringstream out;
  out.precision(15);
  out << v;
  return out.str();
}

error_report read_report(const tables& t, std::int64_t id, bool with_log) {
  auto r = t.reports.at(id).stored.report;
  auto s = t.sagas.find(id);
  if (s == t.sagas.end()) {
    r.saga_step = "done";
    r.saga_attempts = 0;
    r.saga_last_error.clear();
  } else {
    r.saga_step = s->second.step;
    r.saga_attempts = s->second.attempts;
    r.saga_last_error = s->second.last_error;
  }
  if (with_log) {
    auto l = t.log.find(id);
    if (l != t.log.end()) r.saga_log = l->second;
  }
  return r;
}

stored_report read_stored(const tables& t, std::int64_t id, bool with_log) {
  auto out = t.reports.at(id).stored;
  out.report = read_report(t, id, with_log);
  return out;
}

void rewind(tables::saga_row& s, std::chrono::milliseconds claim, std::int64_t now) {
  s.step = "index";
  ++s.revision;
  s.attempts = 0;
  s.last_error.clear();
  s.completed_ms = 0;
  s.claim.clear();
  s.next_attempt_ms = now + claim.count();
}

void add_log(tables& t, std::int64_t id, std::string step, std::string note, std::int64_t now) {
  t.log[id].push_back({now, std::move(step), std::move(note)});
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

  void file(const std::vector<filing_row>& rows, std::chrono::milliseconds claim, const std::string& claimant,
            const deadline& until, completion<std::vector<filed>> done) override {
    run<std::vector<filed>>(until, std::move(done), [rows, claim, claimant](tables& t, std::int64_t now) {
      std::vector<filed> out(rows.size());
      for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& f = rows[i];
        const auto& ctx = f.sub.ctx;
        if (ctx.keyed() && t.keys.count({ctx.principal, ctx.idempotency_key})) {
          out[i] = {filed::key_taken, 0, now};
          continue;
        }
        const auto id = t.next_report++;
        auto& row = t.reports[id];
        auto& r = row.stored.report;
        r.id = id;
        r.fields = f.sub;
        r.fields.additional_notes.clear();
        r.fields.context_notes.clear();
        r.fields.ctx = {};
        r.bucket_type = f.bucket_type;
        r.status = std::string{domain::pending_status};
        r.weight = 0.5;
        r.created_at_ms = r.updated_at_ms = now;
        row.stored.additional_token = f.additional_token;
        row.stored.context_token = f.context_token;
        if (ctx.keyed()) {
          row.principal = ctx.principal;
          row.idem_key = ctx.idempotency_key;
          t.keys[{ctx.principal, ctx.idempotency_key}] = {ctx.request_digest, 0, std::to_string(id), now};
        }
        auto& s = t.sagas[id];
        s.claim = claimant;
        s.next_attempt_ms = now + claim.count();
        add_log(t, id, "store", f.note, now);
        out[i] = {filed::written, id, now};
      }
      return ok(out);
    });
  }

  void job_owners(const std::vector<std::string>& job_ids,
                  completion<std::map<std::string, std::string>> done) override {
    run<std::map<std::string, std::string>>({}, std::move(done), [job_ids](tables& t, std::int64_t) {
      std::map<std::string, std::string> out;
      for (const auto& j : job_ids) {
        auto it = t.draft_jobs.find(j);
        if (it != t.draft_jobs.end()) out.emplace(j, it->second);
      }
      return ok(out);
    });
  }

  void load(std::int64_t id, bool with_log, completion<caf::optional<stored_report>> done) override {
    run<caf::optional<stored_report>>({}, std::move(done), [id, with_log](tables& t, std::int64_t) {
      if (!t.reports.count(id)) return ok(caf::optional<stored_report>{});
      return ok(caf::optional<stored_report>{read_stored(t, id, with_log)});
    });
  }

  void list(const report_query& q, std::uint32_t fetch, completion<std::vector<stored_report>> done) override {
    run<std::vector<stored_report>>({}, std::move(done), [q, fetch](tables& t, std::int64_t) {
      std::vector<stored_report> out;
      for (auto it = t.reports.rbegin(); it != t.reports.rend() && out.size() < fetch; ++it) {
        const auto& r = it->second.stored.report;
        const auto& cats = r.fields.error_categories;
        if ((!q.speaker_id.empty() && r.fields.speaker_id != q.speaker_id) ||
            (!q.status.empty() && r.status != q.status) ||
            (!q.category.empty() && std::find(cats.begin(), cats.end(), q.category) == cats.end()) ||
            (q.from_ms != 0 && r.created_at_ms < q.from_ms) || (q.to_ms != 0 && r.created_at_ms > q.to_ms) ||
            (q.before_id != 0 && r.id >= q.before_id) || !q.scope.admits(r.fields.client_id))
          continue;
        out.push_back(read_stored(t, it->first, false));
      }
      return ok(out);
    });
  }

  void read_status(std::int64_t id, const client_scope& scope, const request_context& ctx,
                   std::chrono::seconds retention, completion<caf::optional<status_read>> done) override {
    run<caf::optional<status_read>>(ctx.until, std::move(done), [id, scope, ctx, retention](tables& t, std::int64_t now) {
      auto it = t.reports.find(id);
      if (it == t.reports.end() || !scope.admits(it->second.stored.report.fields.client_id))
        return ok(caf::optional<status_read>{});
      status_read out;
      out.status = it->second.stored.report.status;
      out.weight = it->second.stored.report.weight;
      if (ctx.keyed()) {
        const auto* row = sim::find_key(t.keys, ctx, retention, now, out.key.v);
        if (row && out.key.v == db::idempotency::verdict::replay) out.key.stored = {row->outcome, row->answer};
      }
      return ok(caf::optional<status_read>{std::move(out)});
    });
  }

  void set_status(const status_write& w, std::chrono::milliseconds claim, const request_context& ctx,
                  completion<verdict_saved> done) override {
    run<verdict_saved>(ctx.until, std::move(done), [w, claim, ctx](tables& t, std::int64_t now) {
      // In the order of the PostgreSQL transaction's statements: the first that fails decides.
      auto it = t.reports.find(w.id);
      auto s = t.sagas.find(w.id);
      if (it == t.reports.end() || it->second.stored.report.status != w.old_status || s == t.sagas.end())
        return ok(verdict_saved::status_moved);
      if (ctx.keyed() && t.keys.count({ctx.principal, ctx.idempotency_key})) return ok(verdict_saved::key_taken);
      auto& r = it->second.stored.report;
      r.status = w.new_status;
      r.weight = w.new_weight;
      r.updated_at_ms = now;
      rewind(s->second, claim, now);
      add_log(t, w.id, "status", w.log_note, now);
      if (ctx.keyed()) t.keys[{ctx.principal, ctx.idempotency_key}] = {ctx.request_digest, 0, std::to_string(w.id), now};
      return ok(verdict_saved::done);
    });
  }

  void apply_verdicts(const verification_verdicts& v, std::chrono::milliseconds claim,
                      completion<bool> done) override {
    run<bool>(v.ctx.until, std::move(done), [v, claim](tables& t, std::int64_t now) {
      if (!t.sessions.insert(v.session_id).second) return ok(false);
      t.sessions_in_order.push_back(v.session_id);
      std::vector<std::int64_t> touched;
      for (const auto& x : v.verdicts) {
        auto it = t.reports.find(x.report_id);
        if (it == t.reports.end() || it->second.stored.report.fields.speaker_id != v.speaker_id) continue;
        auto& r = it->second.stored.report;
        // Integer tenths at every step, as the SQL reads them: repeated steps never drift.
        const long tenths = std::lround(r.weight * 10) + (x.verdict == domain::verdicts[0] ? 1 : -1);
        r.weight = static_cast<double>(std::clamp(tenths, 0L, 10L)) / 10;
        r.status = x.verdict;
        r.updated_at_ms = now;
        if (std::find(touched.begin(), touched.end(), x.report_id) == touched.end()) touched.push_back(x.report_id);
      }
      for (auto id : touched) {
        auto s = t.sagas.find(id);
        if (s != t.sagas.end()) rewind(s->second, claim, now);
        const auto& r = t.reports.at(id).stored.report;
        add_log(t, id, "status",
                "verification session " + std::to_string(v.session_id) + " by " + v.actor + ": now " + r.status +
                  ", weight " + number_text(r.weight),
                now);
      }
      return ok(true);
    });
  }

  void weights(const std::vector<std::int64_t>& ids, const std::string& speaker_id, const deadline& until,
               completion<verdicts_applied> done) override {
    run<verdicts_applied>(until, std::move(done), [ids, speaker_id](tables& t, std::int64_t) {
      verdicts_applied out;
      for (const auto& [id, row] : t.reports) {
        const auto& r = row.stored.report;
        if (r.fields.speaker_id == speaker_id && std::find(ids.begin(), ids.end(), id) != ids.end())
          out.weights.push_back({id, r.status, r.weight});
      }
      return ok(out);
    });
  }

  void claim(std::int64_t id, std::chrono::milliseconds claim, const std::string& claimant,
             completion<caf::optional<saga_position>> done) override {
    run<caf::optional<saga_position>>({}, std::move(done), [id, claim, claimant](tables& t, std::int64_t now) {
      auto s = t.sagas.find(id);
      if (s == t.sagas.end() || !t.reports.count(id) || s->second.step == "done" ||
          !(s->second.claim.empty() || s->second.claim == claimant || s->second.next_attempt_ms <= now))
        return ok(caf::optional<saga_position>{});
      s->second.claim = claimant;
      s->second.next_attempt_ms = now + claim.count();
      saga_position pos;
      pos.step = s->second.step;
      pos.revision = s->second.revision;
      pos.attempts = s->second.attempts;
      pos.pattern = pattern_of(t.reports.at(id).stored.report);
      return ok(caf::optional<saga_position>{std::move(pos)});
    });
  }

  void claim_due(std::chrono::milliseconds claim, std::uint32_t limit, const std::string& claimant,
                 completion<std::vector<std::int64_t>> done) override {
    run<std::vector<std::int64_t>>({}, std::move(done), [claim, limit, claimant](tables& t, std::int64_t now) {
      std::vector<std::pair<std::int64_t, std::int64_t>> due;  // (next_attempt, id)
      for (const auto& [id, s] : t.sagas)
        if (s.step != "done" && s.next_attempt_ms <= now) due.push_back({s.next_attempt_ms, id});
      std::sort(due.begin(), due.end());
      std::vector<std::int64_t> out;
      for (std::size_t i = 0; i < due.size() && i < limit; ++i) {
        auto& s = t.sagas.at(due[i].second);
        s.claim = claimant;
        s.next_attempt_ms = now + claim.count();
        out.push_back(due[i].second);
      }
      return ok(out);
    });
  }

  void record_steps(const std::vector<step_ack>& acks, std::chrono::milliseconds claim, const std::string& claimant,
                    completion<std::vector<std::int64_t>> done) override {
    run<std::vector<std::int64_t>>({}, std::move(done), [acks, claim, claimant](tables& t, std::int64_t now) {
      std::vector<std::int64_t> moved;
      for (const auto& a : acks) {
        auto s = t.sagas.find(a.id);
        if (s != t.sagas.end() && held(s->second, a.revision, a.step, claimant)) {
          auto& row = s->second;
          row.step = a.next;
          row.attempts = 0;
          row.last_error.clear();
          row.next_attempt_ms = now + claim.count();
          row.completed_ms = a.next == "done" ? now : 0;
          moved.push_back(a.id);
        }
      }
      // The steps happened whether or not their rows still waited for them.
      for (const auto& a : acks)
        for (const auto& [step, note] : a.log) add_log(t, a.id, step, note, now);
      return ok(moved);
    });
  }

  void record_failure(const step_failure& f, const std::string& claimant, completion<bool> done) override {
    run<bool>({}, std::move(done), [f, claimant](tables& t, std::int64_t now) {
      auto s = t.sagas.find(f.id);
      if (s != t.sagas.end() && held(s->second, f.revision, f.step, claimant)) {
        ++s->second.attempts;
        s->second.last_error = f.error;
        s->second.next_attempt_ms = now + f.retry_in.count();
      }
      if (f.log_note) add_log(t, f.id, "retry", *f.log_note, now);
      return ok(true);
    });
  }

  void purge_keys(std::chrono::seconds retention, completion<bool> done) override {
    run<bool>({}, std::move(done), [retention](tables& t, std::int64_t now) {
      forget_keys(t.keys, retention, now);
      return ok(true);
    });
  }

  void purge_notes(std::chrono::milliseconds retention, std::uint32_t batch, completion<std::uint32_t> done) override {
    run<std::uint32_t>({}, std::move(done), [retention, batch](tables& t, std::int64_t now) {
      std::uint32_t n = 0;
      for (auto& [id, row] : t.reports) {
        if (n >= batch) break;
        auto& s = row.stored;
        if (s.report.created_at_ms >= now - retention.count() || (!s.additional_token && !s.context_token)) continue;
        s.additional_token = caf::none;
        s.context_token = caf::none;
        s.report.updated_at_ms = now;
        ++n;
      }
      return ok(n);
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

reports::store_factory memory_reports_store(caf::actor server, std::shared_ptr<reports_tables> tables) {
  return [server, tables](const db::store_link& link) -> std::unique_ptr<reports::store> {
    return std::make_unique<memory_store>(link, server, tables);
  };
}

}  // namespace sbm::sim
