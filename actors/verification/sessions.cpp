// The sessions supervisor and its session actors (sessions.hpp says who does what and why).
#include "actors/verification/sessions.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "messages/errors.hpp"
#include "runtime/crypto/fernet.hpp"
#include "runtime/db/idempotency.hpp"
#include "runtime/db/retention.hpp"
#include "runtime/db/rows.hpp"

namespace sbm::verification {

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* keys_table = "verification.idempotency_keys";
constexpr std::size_t max_pending_per_session = 64;  // messages waiting for one session to load
constexpr std::uint32_t max_residual = 100000;

caf::error invalid(std::string what) { return make_error(errc::invalid_argument, std::move(what)); }

bool plausible_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  return std::none_of(id.begin(), id.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7F;
  });
}

std::uint32_t count_words(const std::string& text) {
  std::uint32_t n = 0;
  bool in_word = false;
  for (unsigned char c : text) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

std::string ms_text(const char* column) {
  return std::string("coalesce((extract(epoch from ") + column + ") * 1000)::bigint, 0)";
}

caf::duration within(const deadline& until, caf::actor_clock::time_point now,
                     std::chrono::milliseconds fallback) {
  return caf::duration{std::max(std::chrono::milliseconds{1}, until.left(now, fallback))};
}

// The Fernet token's timestamp only: it is never checked against a ttl (the retention works on the
// row's created_at), so it needs no virtual time.
std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
    .count();
}

caf::error not_found(std::int64_t id) {
  return make_error(errc::not_found, "no verification session " + std::to_string(id));
}

// --- content: the jobs as pulled and corrected, kept as one Fernet token of their JSON ------------

json to_json(const session_job& j) {
  json corrections = json::array();
  for (const auto& c : j.draft.corrections)
    corrections.push_back({{"start", c.start}, {"end", c.end}, {"from", c.from}, {"to", c.to},
                           {"pattern_id", c.pattern_id}, {"confidence", c.confidence},
                           {"applied", c.applied}, {"match", c.match}});
  return {{"job",
           {{"job_id", j.job.job_id},
            {"speaker_id", j.job.speaker_id},
            {"client_id", j.job.client_id},
            {"original_draft", j.job.original_draft},
            {"created_at_ms", j.job.created_at_ms},
            {"audio_quality", j.job.audio_quality},
            {"duration_s", j.job.duration_s ? json(*j.job.duration_s) : json(nullptr)},
            {"source_system", j.job.source_system},
            {"error_types", j.job.error_types},
            {"retrieved_at_ms", j.job.retrieved_at_ms}}},
          {"corrected_text", j.draft.corrected_text},
          {"corrections", std::move(corrections)},
          {"correction_ids", j.correction_ids},
          {"mean_confidence", j.draft.mean_confidence},
          {"min_applied", j.draft.min_applied},
          {"applied", j.draft.applied},
          {"proposed", j.draft.proposed},
          {"patterns_retrieved", j.draft.patterns_retrieved},
          {"segments", j.draft.segments}};
}

session_job job_of(const json& v) {
  session_job j;
  const auto& job = v.at("job");
  j.job.job_id = job.at("job_id").get<std::string>();
  j.job.speaker_id = job.at("speaker_id").get<std::string>();
  j.job.client_id = job.at("client_id").get<std::string>();
  j.job.original_draft = job.at("original_draft").get<std::string>();
  j.job.created_at_ms = job.at("created_at_ms").get<std::int64_t>();
  j.job.audio_quality = job.at("audio_quality").get<std::string>();
  if (!job.at("duration_s").is_null()) j.job.duration_s = job.at("duration_s").get<double>();
  j.job.source_system = job.at("source_system").get<std::string>();
  j.job.error_types = job.at("error_types").get<std::vector<std::string>>();
  j.job.retrieved_at_ms = job.at("retrieved_at_ms").get<std::int64_t>();
  j.draft.original_text = j.job.original_draft;
  j.draft.corrected_text = v.at("corrected_text").get<std::string>();
  for (const auto& c : v.at("corrections"))
    j.draft.corrections.push_back({c.at("start").get<std::uint64_t>(), c.at("end").get<std::uint64_t>(),
                                   c.at("from").get<std::string>(), c.at("to").get<std::string>(),
                                   c.at("pattern_id").get<std::int64_t>(), c.at("confidence").get<double>(),
                                   c.at("applied").get<bool>(), c.at("match").get<std::string>()});
  j.correction_ids = v.at("correction_ids").get<std::vector<std::int64_t>>();
  if (j.correction_ids.size() != j.draft.corrections.size())
    throw std::runtime_error("correction ids do not match the corrections");
  j.draft.mean_confidence = v.at("mean_confidence").get<double>();
  j.draft.min_applied = v.at("min_applied").get<double>();
  j.draft.applied = v.at("applied").get<std::uint32_t>();
  j.draft.proposed = v.at("proposed").get<std::uint32_t>();
  j.draft.patterns_retrieved = v.at("patterns_retrieved").get<std::uint32_t>();
  j.draft.segments = v.at("segments").get<std::uint32_t>();
  j.words = count_words(j.draft.corrected_text);
  return j;
}

json to_json(const submit_outcome& o) {
  json weights = json::array();
  for (const auto& w : o.weights)
    weights.push_back({{"report_id", w.report_id}, {"status", w.status}, {"weight", w.weight}});
  return {{"weights", std::move(weights)}, {"jobs_sampled", o.jobs_sampled},
          {"bucket_before", o.bucket_before}, {"bucket_after", o.bucket_after}};
}

submit_outcome outcome_of(const json& v) {
  submit_outcome o;
  for (const auto& w : v.at("weights"))
    o.weights.push_back({w.at("report_id").get<std::int64_t>(), w.at("status").get<std::string>(),
                         w.at("weight").get<double>()});
  o.jobs_sampled = v.at("jobs_sampled").get<std::vector<std::string>>();
  o.bucket_before = v.at("bucket_before").get<std::string>();
  o.bucket_after = v.at("bucket_after").get<std::string>();
  return o;
}

// --- reading a session back ----------------------------------------------------------------------

db_transaction load_transaction(std::int64_t id) {
  const auto key = std::to_string(id);
  db_transaction tx;
  tx.statements.push_back(
    {"SELECT id, speaker_id, client_id, owner, "
     "CASE WHEN status = 'open' AND expires_at <= now() THEN 'expired' ELSE status END, " +
       ms_text("from_at") + ", " + ms_text("to_at") + ", array_to_json(error_types)::text, max_jobs, source, "
       "stale, " + ms_text("stale_since") + ", stale_reason, " + ms_text("created_at") + ", " +
       ms_text("expires_at") + ", " + ms_text("submitted_at") + ", submitted_by, effects_done, "
       "content::text, outcome::text, content_token, " + ms_text("content_purged_at") +
       " FROM verification.sessions WHERE id = $1",
     {key}, -1});
  tx.statements.push_back({"SELECT correction_id, verdict FROM verification.session_marks "
                           "WHERE session_id = $1 ORDER BY seq",
                           {key}, -1});
  tx.statements.push_back({"SELECT job_id, residual_errors FROM verification.session_residuals "
                           "WHERE session_id = $1",
                           {key}, -1});
  return tx;
}

// The jobs of a session row: from its Fernet token, from plain jsonb (rows written before
// verification/005), or none once the retention purged them. What is thrown names the column,
// never its content (a JSON parse error would quote the drafts).
std::vector<session_job> jobs_of(const db_row& row, const crypto::fernet& cipher) {
  constexpr std::size_t plain_column = 18, token_column = 20;
  std::optional<std::string> text;
  if (row.at(token_column)) {
    text = cipher.decrypt(*row[token_column]);
    if (!text) throw std::runtime_error("content_token does not decrypt with reports.fernet-key");
  } else if (row.at(plain_column)) {
    text = *row[plain_column];
  }
  std::vector<session_job> jobs;
  if (!text) return jobs;
  const auto content = json::parse(*text, nullptr, false);
  if (!content.is_object()) throw std::runtime_error("content is not a JSON object");
  for (const auto& j : content.at("jobs")) jobs.push_back(job_of(j));
  return jobs;
}

// nullopt: no such session. Throws std::exception on a row that does not read.
caf::optional<session_view> view_of(const db_results& res, const crypto::fernet& cipher) {
  if (res.results.size() < 3 || res.results[0].rows.empty()) return caf::none;
  const auto& row = res.results[0].rows.front();
  session_view v;
  v.id = db::int_column(row, 0);
  v.speaker_id = db::text_column(row, 1);
  v.client_id = db::text_column(row, 2);
  v.owner = db::text_column(row, 3);
  v.status = db::text_column(row, 4);
  v.from_ms = db::int_column(row, 5);
  v.to_ms = db::int_column(row, 6);
  v.error_types = db::text_array_column(row, 7);
  v.max_jobs = static_cast<std::uint32_t>(db::int_column(row, 8));
  v.source = db::text_column(row, 9);
  v.stale = db::bool_column(row, 10);
  v.stale_since_ms = db::int_column(row, 11);
  v.stale_reason = db::text_column(row, 12);
  v.created_at_ms = db::int_column(row, 13);
  v.expires_at_ms = db::int_column(row, 14);
  v.submitted_at_ms = db::int_column(row, 15);
  v.submitted_by = db::text_column(row, 16);
  v.effects_done = db::bool_column(row, 17);
  v.jobs = jobs_of(row, cipher);
  if (row.at(19)) v.outcome = outcome_of(json::parse(*row[19]));
  v.drafts_purged_at_ms = db::int_column(row, 21);
  for (const auto& m : res.results[1].rows)
    v.marks.push_back({db::int_column(m, 0), db::text_column(m, 1)});
  for (const auto& r : res.results[2].rows) {
    const auto job = db::text_column(r, 0);
    for (auto& j : v.jobs)
      if (j.job.job_id == job) {
        j.has_residual = true;
        j.residual_errors = static_cast<std::uint32_t>(db::int_column(r, 1));
      }
  }
  return v;
}

// Uses the session: while open and unexpired its expiry moves to now + its idle timeout; past it,
// it expires here (and its schedule entries are scheduled again) in the same statement. Answers
// the status and expiry as they are now.
db_statement touch(std::int64_t id) {
  return {"WITH s AS (UPDATE verification.sessions SET "
          "status = CASE WHEN status = 'open' AND expires_at <= now() THEN 'expired' ELSE status END, "
          "expires_at = CASE WHEN status = 'open' AND expires_at > now() "
          "THEN now() + make_interval(secs => idle_timeout_ms::double precision / 1000) ELSE expires_at END "
          "WHERE id = $1 RETURNING status, expires_at), "
          "q AS (UPDATE verification.schedule SET status = 'scheduled', session_id = NULL "
          "WHERE session_id = $1 AND status = 'taken' AND EXISTS (SELECT 1 FROM s WHERE status = 'expired')) "
          "SELECT status, " + ms_text("expires_at") + " FROM s",
          {std::to_string(id)}, -1};
}

caf::error closed(const session_view& v) {
  if (v.status == "expired")
    return make_error(errc::conflict, "verification session " + std::to_string(v.id) +
                                          " expired unsubmitted; start a new one");
  return make_error(errc::conflict, "verification session " + std::to_string(v.id) + " was submitted already");
}

// --- the session actor ---------------------------------------------------------------------------

struct session_state {
  static inline const char* name = "sbm.verification_session";
  sessions_settings settings;
  session_view view;
  caf::actor_clock::time_point last_used;
  bool effects_running = false;
  std::vector<caf::typed_response_promise<session_view>> waiting;  // for the submit's effects
};

using session_ptr = session_actor::stateful_pointer<session_state>;

void run_effects(session_ptr self);

void answer_waiting(session_ptr self, const caf::error* failure) {
  auto waiting = std::move(self->state.waiting);
  self->state.waiting.clear();
  for (auto& p : waiting) {
    if (failure)
      p.deliver(*failure);
    else
      p.deliver(self->state.view);
  }
}

void effects_failed(session_ptr self, caf::error e) {
  self->state.effects_running = false;
  answer_waiting(self, &e);
  // Tried again on the next submit replay, activation or sweep; also here, a little later (one
  // shot: each failure arms one retry, so an outage never piles up timers).
  self->delayed_send(self, std::chrono::seconds{5}, retry_atom::value);
}

// The pattern ids of the marks, in the order the marks were committed.
std::vector<pattern_verdict> verdicts_of(const session_view& v) {
  std::map<std::int64_t, std::int64_t> pattern_of;
  for (const auto& j : v.jobs)
    for (std::size_t i = 0; i < j.correction_ids.size(); ++i)
      pattern_of[j.correction_ids[i]] = j.draft.corrections[i].pattern_id;
  std::vector<pattern_verdict> out;
  for (const auto& m : v.marks)
    if (auto it = pattern_of.find(m.correction_id); it != pattern_of.end())
      out.push_back({it->second, m.verdict});
  return out;
}

void finish_effects(session_ptr self) {
  auto& st = self->state;
  db_statement done{"UPDATE verification.sessions SET effects_done = true, outcome = $2::jsonb WHERE id = $1",
                    {std::to_string(st.view.id), to_json(st.view.outcome).dump()}, 1};
  self->request(st.settings.db, st.settings.db_timeout, query_atom::value, std::move(done))
    .then(
      [self](db_rows&) {
        self->state.view.effects_done = true;
        self->state.effects_running = false;
        answer_waiting(self, nullptr);
      },
      [self](caf::error& e) { effects_failed(self, db::failure(e)); });
}

void audit_submit(session_ptr self) {
  auto& st = self->state;
  if (!st.settings.audit) return finish_effects(self);
  const auto& v = st.view;
  std::size_t rectified = 0, not_rectified = 0;
  for (const auto& m : v.marks) (m.verdict == "rectified" ? rectified : not_rectified)++;
  audit_record r;
  r.actor = v.submitted_by;
  r.actor_kind = v.submitted_by.rfind("service:", 0) == 0 ? "service" : "user";
  r.action = std::string{audit_action::verification_submit};
  r.target = "verification-session:" + std::to_string(v.id);
  r.outcome = "success";
  r.status = 200;
  r.detail = json{{"session_id", v.id}, {"speaker_id", v.speaker_id}, {"owner", v.owner},
                  {"jobs", v.jobs.size()}, {"rectified", rectified}, {"not_rectified", not_rectified},
                  {"jobs_sampled", v.outcome.jobs_sampled.size()},
                  {"bucket_before", v.outcome.bucket_before}, {"bucket_after", v.outcome.bucket_after}}
               .dump();
  // One row per session whatever the number of attempts.
  r.source_key = "verification.submit:" + std::to_string(v.id);
  r.client_id = v.client_id;
  self->request(st.settings.audit, st.settings.call_timeout, audit_atom::value, std::move(r))
    .then([self](bool) { finish_effects(self); },
          [self](caf::error& e) { effects_failed(self, db::failure(e)); });
}

// Quality samples one job after another, through the speaker actor (which fires bucket changes).
void sample_from(session_ptr self, std::size_t index) {
  auto& st = self->state;
  auto& v = st.view;
  while (index < v.jobs.size() && !v.jobs[index].has_residual) ++index;
  if (index == v.jobs.size()) return audit_submit(self);
  const auto& j = v.jobs[index];
  quality_sample s;
  s.speaker_id = v.speaker_id;
  s.job_id = j.job.job_id;
  // Residual errors per 100 words of the draft as corrected (SPEC "Quality").
  s.errors_per_100_words = j.residual_errors * 100.0 / std::max<std::uint32_t>(1, j.words);
  s.actor = v.submitted_by;
  self->request(st.settings.speakers, st.settings.call_timeout, sample_atom::value, std::move(s))
    .then(
      [self, index](speaker_view& sv) {
        auto& o = self->state.view.outcome;
        o.jobs_sampled.push_back(self->state.view.jobs[index].job.job_id);
        o.bucket_after = sv.bucket;
        sample_from(self, index + 1);
      },
      [self, index](caf::error& e) {
        // A job verified in an earlier session counts once: it is not sampled again.
        if (code_of(e) == errc::duplicate) return sample_from(self, index + 1);
        effects_failed(self, db::failure(e));
      });
}

void run_effects(session_ptr self) {
  auto& st = self->state;
  if (st.effects_running || st.view.effects_done) return;
  st.effects_running = true;
  st.view.outcome = {};
  verification_verdicts vv;
  vv.session_id = st.view.id;
  vv.speaker_id = st.view.speaker_id;
  vv.actor = st.view.submitted_by;
  vv.verdicts = verdicts_of(st.view);
  self->request(st.settings.reports, st.settings.call_timeout, verify_atom::value, std::move(vv))
    .then(
      [self](verdicts_applied& applied) {
        self->state.view.outcome.weights = std::move(applied.weights);
        self->request(self->state.settings.speakers, self->state.settings.call_timeout, get_atom::value,
                      self->state.view.speaker_id)
          .then(
            [self](speaker_view& sv) {
              self->state.view.outcome.bucket_before = sv.bucket;
              self->state.view.outcome.bucket_after = sv.bucket;
              sample_from(self, 0);
            },
            [self](caf::error& e) { effects_failed(self, db::failure(e)); });
      },
      [self](caf::error& e) { effects_failed(self, db::failure(e)); });
}

// Runs `then` with the session's status as PostgreSQL has it now (touching it when open).
template <class Then>
void refresh(session_ptr self, const deadline& until, caf::typed_response_promise<session_view> rp, Then then) {
  auto& st = self->state;
  auto stmt = touch(st.view.id);
  stmt.until = until;
  self->request(st.settings.db, st.settings.db_timeout, query_atom::value, std::move(stmt))
    .then(
      [self, rp, then](db_rows& rows) mutable {
        try {
          if (rows.rows.empty()) return void(rp.deliver(not_found(self->state.view.id)));
          self->state.view.status = db::text_column(rows.rows.front(), 0);
          self->state.view.expires_at_ms = db::int_column(rows.rows.front(), 1);
        } catch (const std::exception& ex) {
          return void(rp.deliver(make_error(errc::internal, std::string("corrupt session row: ") + ex.what())));
        }
        then(rp);
      },
      [rp](caf::error& e) mutable { rp.deliver(db::failure(e)); });
}

// A closed session's drafts may have been purged (by any node's retention) while this actor held
// them: the row says whether, so no answer shows drafts past their retention.
void deliver_unless_purged(session_ptr self, const deadline& until, caf::typed_response_promise<session_view> rp) {
  auto& st = self->state;
  if (st.view.jobs.empty()) return void(rp.deliver(st.view));
  db_statement stmt{"SELECT " + ms_text("content_purged_at") + " FROM verification.sessions WHERE id = $1",
                    {std::to_string(st.view.id)}, -1};
  stmt.until = until;
  self->request(st.settings.db, st.settings.db_timeout, query_atom::value, std::move(stmt))
    .then(
      [self, rp](db_rows& rows) mutable {
        auto& v = self->state.view;
        try {
          if (!rows.rows.empty()) v.drafts_purged_at_ms = db::int_column(rows.rows.front(), 0);
        } catch (const std::exception& ex) {
          return void(rp.deliver(make_error(errc::internal, std::string("corrupt session row: ") + ex.what())));
        }
        if (v.drafts_purged_at_ms > 0) v.jobs.clear();
        rp.deliver(v);
      },
      [rp](caf::error& e) mutable { rp.deliver(db::failure(e)); });
}

caf::result<session_view> on_get(session_ptr self, const session_ref& ref) {
  auto& st = self->state;
  st.last_used = self->clock().now();
  if (!ref.ctx.scope.admits(st.view.client_id)) return not_found(st.view.id);
  auto rp = self->make_response_promise<session_view>();
  if (st.view.status != "open") {
    deliver_unless_purged(self, ref.ctx.until, rp);
    return rp;
  }
  refresh(self, ref.ctx.until, rp, [self](caf::typed_response_promise<session_view>& p) { p.deliver(self->state.view); });
  return rp;
}

caf::result<marks_receipt> on_marks(session_ptr self, session_marks& req) {
  auto& st = self->state;
  st.last_used = self->clock().now();
  auto& v = st.view;
  if (!req.ctx.scope.admits(v.client_id)) return not_found(v.id);
  if (v.status != "open") return closed(v);
  if (req.ctx.until.passed(self->clock().now())) return deadline_passed();
  auto refuse = [](std::string field, std::string reason) {
    marks_receipt r;
    r.outcome = marks_receipt::unprocessable;
    r.field = std::move(field);
    r.reason = std::move(reason);
    return r;
  };
  // What the session holds: every mark names one of its corrections, every count one of its jobs.
  std::map<std::int64_t, bool> known;
  for (const auto& j : v.jobs)
    for (auto id : j.correction_ids) known[id] = true;
  std::vector<session_mark> marks;  // one per correction, the last verdict given, in request order
  for (std::size_t i = 0; i < req.marks.size(); ++i) {
    const auto& m = req.marks[i];
    const auto field = "marks[" + std::to_string(i) + "].correction_id";
    if (!known.count(m.correction_id))
      return refuse(field, "correction " + std::to_string(m.correction_id) + " is not in verification session " +
                               std::to_string(v.id));
    if (m.verdict != "rectified" && m.verdict != "not_rectified")
      return invalid("marks[" + std::to_string(i) + "].verdict must be rectified or not_rectified");
    marks.erase(std::remove_if(marks.begin(), marks.end(),
                               [&](const session_mark& x) { return x.correction_id == m.correction_id; }),
                marks.end());
    marks.push_back(m);
  }
  std::map<std::string, std::uint32_t> residuals;
  for (std::size_t i = 0; i < req.residuals.size(); ++i) {
    const auto& r = req.residuals[i];
    const bool ours = std::any_of(v.jobs.begin(), v.jobs.end(), [&](const session_job& j) { return j.job.job_id == r.job_id; });
    if (!ours)
      return refuse("residual_errors[" + std::to_string(i) + "].job_id",
                    "job " + r.job_id + " is not in verification session " + std::to_string(v.id));
    if (r.residual_errors > max_residual)
      return invalid("residual_errors[" + std::to_string(i) + "].count must be at most " + std::to_string(max_residual));
    residuals[r.job_id] = r.residual_errors;
  }
  json mark_rows = json::array();
  for (const auto& m : marks) mark_rows.push_back({{"correction_id", m.correction_id}, {"verdict", m.verdict}});
  json residual_rows = json::array();
  for (const auto& [job, n] : residuals) residual_rows.push_back({{"job_id", job}, {"residual_errors", n}});
  const auto id = std::to_string(v.id);
  db_transaction tx;
  tx.until = req.ctx.until;
  tx.statements.push_back(touch(v.id));
  // Saved only while the session is still open (the touch above may just have expired it).
  tx.statements.push_back(
    {"INSERT INTO verification.session_marks (session_id, correction_id, verdict) "
     "SELECT $1, x.correction_id, x.verdict FROM json_to_recordset($2::json) AS x(correction_id bigint, verdict text) "
     "WHERE EXISTS (SELECT 1 FROM verification.sessions WHERE id = $1 AND status = 'open') "
     "ON CONFLICT (session_id, correction_id) DO UPDATE SET verdict = EXCLUDED.verdict, "
     "seq = nextval('verification.session_mark_seq'), updated_at = now()",
     {id, mark_rows.dump()}, -1});
  tx.statements.push_back(
    {"INSERT INTO verification.session_residuals (session_id, job_id, residual_errors) "
     "SELECT $1, x.job_id, x.residual_errors FROM json_to_recordset($2::json) AS x(job_id text, residual_errors integer) "
     "WHERE EXISTS (SELECT 1 FROM verification.sessions WHERE id = $1 AND status = 'open') "
     "ON CONFLICT (session_id, job_id) DO UPDATE SET residual_errors = EXCLUDED.residual_errors, updated_at = now()",
     {id, residual_rows.dump()}, -1});
  // The marks in commit order, as the submit will apply them.
  tx.statements.push_back({"SELECT correction_id, verdict FROM verification.session_marks "
                           "WHERE session_id = $1 ORDER BY seq",
                           {id}, -1});
  auto rp = self->make_response_promise<marks_receipt>();
  self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, std::move(tx))
    .then(
      [self, rp, residuals](db_results& res) mutable {
        auto& v = self->state.view;
        try {
          if (res.results.size() < 4 || res.results[0].rows.empty()) return void(rp.deliver(not_found(v.id)));
          v.status = db::text_column(res.results[0].rows.front(), 0);
          v.expires_at_ms = db::int_column(res.results[0].rows.front(), 1);
          if (v.status != "open") return void(rp.deliver(closed(v)));
          v.marks.clear();
          for (const auto& m : res.results[3].rows) v.marks.push_back({db::int_column(m, 0), db::text_column(m, 1)});
        } catch (const std::exception& ex) {
          return void(rp.deliver(make_error(errc::internal, std::string("corrupt session row: ") + ex.what())));
        }
        for (auto& j : v.jobs)
          if (auto it = residuals.find(j.job.job_id); it != residuals.end()) {
            j.has_residual = true;
            j.residual_errors = it->second;
          }
        marks_receipt r;
        r.session = v;
        rp.deliver(std::move(r));
      },
      [rp](caf::error& e) mutable { rp.deliver(db::failure(e)); });
  return rp;
}

caf::result<session_view> on_submit(session_ptr self, session_submit& req) {
  auto& st = self->state;
  st.last_used = self->clock().now();
  if (!req.ctx.scope.admits(st.view.client_id)) return not_found(st.view.id);
  if (!plausible_id(req.actor)) return invalid("actor must be 1..128 bytes without control characters");
  auto rp = self->make_response_promise<session_view>();
  const auto id = st.view.id;
  // After the commit: the effects, then the answer (a replay waits for the same effects).
  auto committed = [self, rp]() mutable {
    self->state.waiting.push_back(rp);
    if (self->state.view.effects_done)
      return answer_waiting(self, nullptr);
    run_effects(self);
  };
  auto attempt = [self, req, rp, id, committed]() mutable {
    auto& st = self->state;
    if (st.view.status != "open") return void(rp.deliver(closed(st.view)));
    db_transaction tx;
    tx.until = req.ctx.until;
    // The row's own submitted_at comes back, so the view shows what a reload would (no wall clock here).
    tx.statements.push_back({"UPDATE verification.sessions SET status = 'submitted', submitted_at = now(), "
                             "submitted_by = $2 WHERE id = $1 AND status = 'open' AND expires_at > now() "
                             "RETURNING " + ms_text("submitted_at"),
                             {std::to_string(id), req.actor}, 1});
    tx.statements.push_back({"UPDATE verification.schedule SET status = 'done' "
                             "WHERE session_id = $1 AND status = 'taken'",
                             {std::to_string(id)}, -1});
    if (req.ctx.keyed())
      tx.statements.push_back(db::idempotency::store_text(keys_table, req.ctx, 0, std::to_string(id)));
    self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, std::move(tx))
      .then(
        [self, req, committed](db_results& res) mutable {
          auto& v = self->state.view;
          v.status = "submitted";
          v.submitted_by = req.actor;
          if (!res.results.empty() && !res.results[0].rows.empty())
            v.submitted_at_ms = db::int_column(res.results[0].rows.front(), 0);
          committed();
        },
        [self, req, rp, committed](caf::error& e) mutable {
          if (code_of(e) == errc::conflict && info_of(e).statement == 0) {
            // Expired or submitted meanwhile: say which.
            return refresh(self, req.ctx.until, rp, [self](caf::typed_response_promise<session_view>& p) {
              p.deliver(self->state.view.status == "open"
                          ? make_error(errc::conflict, "the session changed meanwhile; retry")
                          : closed(self->state.view));
            });
          }
          if (code_of(e) == errc::conflict && info_of(e).statement == 2) {
            // The same key committed by a concurrent attempt (another node): answer as a replay.
            self->state.view.status = "submitted";
            return committed();
          }
          if (outcome_unknown(e))
            return void(rp.deliver(make_error(errc::outcome_unknown, "the submit may or may not have been saved")));
          rp.deliver(db::failure(e));
        });
  };
  if (!req.ctx.keyed()) {
    attempt();
    return rp;
  }
  auto lookup = db::idempotency::lookup(keys_table, req.ctx, st.settings.idempotency_retention);
  lookup.until = req.ctx.until;
  self->request(st.settings.db, st.settings.db_timeout, query_atom::value, std::move(lookup))
    .then(
      [self, req, rp, attempt, committed](db_rows& rows) mutable {
        db::idempotency::lookup_result found;
        try {
          found = db::idempotency::judge(rows, req.ctx);
        } catch (const std::exception& ex) {
          return void(rp.deliver(make_error(errc::internal, std::string("corrupt idempotency row: ") + ex.what())));
        }
        if (found.v == db::idempotency::verdict::reused) return void(rp.deliver(db::idempotency::reused(req.ctx)));
        if (found.v == db::idempotency::verdict::replay) return committed();
        attempt();
      },
      [rp](caf::error& e) mutable { rp.deliver(db::failure(e)); });
  return rp;
}

session_actor::behavior_type session_fn(session_ptr self, sessions_settings settings, session_view view) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.view = std::move(view);
  st.last_used = self->clock().now();
  // A submit whose effects were interrupted (a crash, a dependency down) is finished now.
  if (st.view.status == "submitted" && !st.view.effects_done) run_effects(self);
  const auto check_every = std::max<std::chrono::milliseconds>(st.settings.idle_timeout / 2, 10ms);
  self->delayed_send(self, check_every, idle_atom::value);
  return {
    [self](get_atom, const session_ref& ref) { return on_get(self, ref); },
    [self](marks_atom, session_marks& m) { return on_marks(self, m); },
    [self](submit_atom, session_submit& s) { return on_submit(self, s); },
    [self](retry_atom) {
      if (self->state.view.status == "submitted" && !self->state.view.effects_done) run_effects(self);
    },
    [self, check_every](idle_atom) {
      auto& st = self->state;
      if (st.view.status == "submitted" && !st.view.effects_done) {
        run_effects(self);
      } else if (!st.effects_running && st.waiting.empty() &&
                 self->clock().now() - st.last_used >= st.settings.idle_timeout) {
        self->quit();  // its state is in PostgreSQL; the supervisor activates it again on demand
        return;
      }
      self->delayed_send(self, check_every, idle_atom::value);
    },
  };
}

// --- the supervisor ------------------------------------------------------------------------------

struct supervisor_state {
  static inline const char* name = "sbm.verification_sessions";
  sessions_settings settings;
  std::map<std::int64_t, session_actor> active;
  std::map<caf::actor_addr, std::int64_t> by_address;
  // Messages for sessions being loaded, run with the actor once it is up (or the load's failure).
  std::map<std::int64_t, std::vector<std::function<void(const session_actor*, const caf::error*)>>> loading;
  std::uint32_t starting = 0;
  session_stats stats;
  std::optional<crypto::fernet> cipher;  // the drafts' key (reports.fernet-key)
};

using supervisor_ptr = verification_sessions_actor::stateful_pointer<supervisor_state>;

caf::optional<caf::error> over_bound(supervisor_ptr self) {
  auto& st = self->state;
  if (st.active.size() + st.loading.size() + st.starting >= st.settings.max_active)
    return make_error(errc::overloaded,
                      "too many verification sessions are active on this node (" +
                        std::to_string(st.settings.max_active) + ")",
                      std::chrono::seconds{1});
  return caf::none;
}

session_actor activate(supervisor_ptr self, session_view view) {
  auto& st = self->state;
  auto a = self->system().spawn(session_fn, st.settings, std::move(view));
  // Linked: sessions stop with their supervisor (a crashing session restarts the family);
  // monitored: one that stopped when idle leaves the table.
  self->link_to(a);
  self->monitor(a);
  return a;
}

void install(supervisor_ptr self, std::int64_t id, session_actor a) {
  self->state.active[id] = a;
  self->state.by_address[a.address()] = id;
}

// Runs `with` on the session's actor, loading it from PostgreSQL first when it is not active.
void with_session(supervisor_ptr self, std::int64_t id, const deadline& until,
                  std::function<void(const session_actor*, const caf::error*)> with) {
  auto& st = self->state;
  if (auto it = st.active.find(id); it != st.active.end()) return with(&it->second, nullptr);
  if (auto it = st.loading.find(id); it != st.loading.end()) {
    if (it->second.size() >= max_pending_per_session) {
      auto e = make_error(errc::overloaded, "too many requests wait for this session to load", std::chrono::seconds{1});
      return with(nullptr, &e);
    }
    it->second.push_back(std::move(with));
    return;
  }
  if (auto e = over_bound(self)) return with(nullptr, &*e);
  st.loading[id].push_back(std::move(with));
  auto tx = load_transaction(id);
  tx.until = until;
  auto done = [self, id](const session_actor* a, const caf::error* e) {
    auto waiting = std::move(self->state.loading[id]);
    self->state.loading.erase(id);
    for (auto& w : waiting) w(a, e);
  };
  self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, std::move(tx))
    .then(
      [self, id, done](db_results& res) {
        caf::optional<session_view> v;
        try {
          v = view_of(res, *self->state.cipher);
        } catch (const std::exception& ex) {
          auto e = make_error(errc::internal, std::string("corrupt session row: ") + ex.what());
          return done(nullptr, &e);
        }
        if (!v) {
          auto e = not_found(id);
          return done(nullptr, &e);
        }
        auto a = activate(self, std::move(*v));
        install(self, id, a);
        ++self->state.stats.activations;
        done(&a, nullptr);
      },
      [done](caf::error& err) {
        auto e = db::failure(err);
        done(nullptr, &e);
      });
}

caf::result<session_view> on_open(supervisor_ptr self, session_start req) {
  auto& st = self->state;
  if (!plausible_id(req.speaker_id)) return invalid("speaker_id is not a valid id");
  if (!plausible_id(req.owner)) return invalid("owner is not a valid id");
  if (req.to_ms <= req.from_ms) return invalid("'to' must be after 'from'");
  if (req.max_jobs == 0 || req.max_jobs > st.settings.max_jobs_cap)
    return invalid("max_jobs must be 1.." + std::to_string(st.settings.max_jobs_cap));
  if (req.ctx.until.passed(self->clock().now())) return deadline_passed();
  if (auto e = over_bound(self)) return *e;
  auto rp = self->make_response_promise<session_view>();
  ++st.starting;
  auto fail = [self, rp](caf::error e) mutable {
    --self->state.starting;
    rp.deliver(std::move(e));
  };
  // A replayed start answers the session it started.
  auto replay = [self, rp](std::int64_t id, const deadline& until, request_context ctx) mutable {
    --self->state.starting;
    with_session(self, id, until, [self, rp, id, ctx](const session_actor* a, const caf::error* e) mutable {
      if (e) return void(rp.deliver(*e));
      rp.delegate(*a, get_atom::value, session_ref{ctx, id});
    });
  };
  auto req_ptr = std::make_shared<session_start>(std::move(req));
  auto now = [self] { return self->clock().now(); };
  auto persist = [self, req_ptr, fail, replay, now](job_pull pull, std::vector<session_job> jobs,
                                                    std::string client_id) mutable {
    auto& st = self->state;
    const auto& r = *req_ptr;
    json content{{"jobs", json::array()}};
    for (const auto& j : jobs) content["jobs"].push_back(to_json(j));
    std::string token;
    try {
      token = st.cipher->encrypt(content.dump(), unix_seconds());
    } catch (const std::exception&) {
      return fail(make_error(errc::internal, "the session's drafts could not be encrypted"));
    }
    db_transaction tx;
    tx.until = r.ctx.until;
    tx.statements.push_back(
      {"INSERT INTO verification.sessions (speaker_id, client_id, owner, from_at, to_at, error_types, "
       "max_jobs, source, stale, stale_since, stale_reason, content_token, idle_timeout_ms, expires_at) "
       "VALUES ($1, $2, $3, to_timestamp($4::double precision / 1000), to_timestamp($5::double precision / 1000), "
       "$6::text[], $7::integer, $8, $9::boolean, "
       "CASE WHEN $9::boolean THEN to_timestamp($10::double precision / 1000) END, $11, $12, $13::bigint, "
       "now() + make_interval(secs => $13::double precision / 1000)) RETURNING id",
       {r.speaker_id, client_id, r.owner, std::to_string(r.from_ms), std::to_string(r.to_ms),
        db::text_array_param(r.error_types), std::to_string(r.max_jobs), pull.source,
        pull.stale ? "true" : "false", std::to_string(pull.stale_since_ms), pull.stale_reason,
        std::move(token), std::to_string(st.settings.idle_timeout.count())},
       1});
    // The queue: this speaker's scheduled entries are taken by the session.
    tx.statements.push_back(
      {"UPDATE verification.schedule SET status = 'taken', "
       "session_id = currval(pg_get_serial_sequence('verification.sessions', 'id')) "
       "WHERE speaker_id = $1 AND status = 'scheduled'",
       {r.speaker_id}, -1});
    if (r.ctx.keyed())
      tx.statements.push_back(db::idempotency::store(
        keys_table, r.ctx, 0, "currval(pg_get_serial_sequence('verification.sessions', 'id'))::text", {}));
    self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, std::move(tx))
      .then(
        [self, req_ptr, fail, replay](db_results& res) mutable {
          std::int64_t id = 0;
          try {
            id = db::int_column(res.results.at(0).rows.at(0), 0);
          } catch (const std::exception& ex) {
            return fail(make_error(errc::internal, std::string("no session id: ") + ex.what()));
          }
          // Read back as any later activation reads it: one way to build a session's state.
          replay(id, req_ptr->ctx.until, req_ptr->ctx);
        },
        [fail](caf::error& e) mutable {
          if (outcome_unknown(e))
            return fail(make_error(errc::outcome_unknown, "the session may or may not have been started"));
          fail(db::failure(e));
        });
  };
  // Each draft through the correction actor, one after another (its bound is shared with the API).
  auto correct_all = std::make_shared<std::function<void(job_pull, std::vector<session_job>, std::string, std::size_t)>>();
  std::weak_ptr<std::function<void(job_pull, std::vector<session_job>, std::string, std::size_t)>> weak = correct_all;
  *correct_all = [self, req_ptr, fail, persist, now, weak](job_pull pull, std::vector<session_job> jobs,
                                                           std::string client_id, std::size_t index) mutable {
    if (index == pull.jobs.size()) {
      std::int64_t next_id = 1;
      for (auto& j : jobs)
        for (std::size_t i = 0; i < j.draft.corrections.size(); ++i) j.correction_ids.push_back(next_id++);
      return persist(std::move(pull), std::move(jobs), std::move(client_id));
    }
    correction_request c;
    c.ctx = req_ptr->ctx;
    c.ctx.idempotency_key.clear();  // correcting writes nothing
    c.speaker_id = req_ptr->speaker_id;
    c.draft_text = pull.jobs[index].original_draft;
    auto& st = self->state;
    auto again = weak.lock();
    self->request(st.settings.corrections, within(req_ptr->ctx.until, now(), st.settings.call_timeout),
                  correct_atom::value, std::move(c))
      .then(
        [again, pull, jobs, client_id, index](corrected_draft& d) mutable {
          session_job j;
          j.job = pull.jobs[index];
          j.draft = std::move(d);
          j.words = count_words(j.draft.corrected_text);
          jobs.push_back(std::move(j));
          (*again)(std::move(pull), std::move(jobs), std::move(client_id), index + 1);
        },
        [fail](caf::error& e) mutable { fail(db::failure(e)); });
  };
  auto pull_jobs = [self, req_ptr, fail, now, correct_all](std::string client_id) mutable {
    auto& st = self->state;
    job_pull_request p;
    p.speaker_id = req_ptr->speaker_id;
    p.from_ms = req_ptr->from_ms;
    p.to_ms = req_ptr->to_ms;
    p.error_types = req_ptr->error_types;
    p.max_jobs = req_ptr->max_jobs;
    p.scope = req_ptr->ctx.scope;
    self->request(st.settings.jobs, within(req_ptr->ctx.until, now(), st.settings.call_timeout), pull_atom::value,
                  std::move(p))
      .then([correct_all, client_id](job_pull& pull) mutable { (*correct_all)(std::move(pull), {}, client_id, 0); },
            // InstaNote down with nothing cached: unavailable with its retry_after, passed on.
            [fail](caf::error& e) mutable { fail(db::failure(e)); });
  };
  auto begin = [self, req_ptr, fail, now, pull_jobs]() mutable {
    auto& st = self->state;
    self->request(st.settings.speakers, within(req_ptr->ctx.until, now(), st.settings.call_timeout), get_atom::value,
                  req_ptr->speaker_id)
      .then(
        [req_ptr, fail, pull_jobs](speaker_view& v) mutable {
          // Another client's speaker does not exist for a scoped caller.
          if (!req_ptr->ctx.scope.admits(v.client_id))
            return fail(make_error(errc::not_found, "speaker " + req_ptr->speaker_id + " is not registered"));
          pull_jobs(v.client_id);
        },
        [fail](caf::error& e) mutable { fail(db::failure(e)); });
  };
  if (!req_ptr->ctx.keyed()) {
    begin();
    return rp;
  }
  auto lookup = db::idempotency::lookup(keys_table, req_ptr->ctx, st.settings.idempotency_retention);
  lookup.until = req_ptr->ctx.until;
  self->request(st.settings.db, st.settings.db_timeout, query_atom::value, std::move(lookup))
    .then(
      [req_ptr, fail, replay, begin](db_rows& rows) mutable {
        db::idempotency::lookup_result found;
        try {
          found = db::idempotency::judge(rows, req_ptr->ctx);
          if (found.v == db::idempotency::verdict::reused) return fail(db::idempotency::reused(req_ptr->ctx));
          if (found.v == db::idempotency::verdict::replay)
            return replay(std::stoll(found.stored.answer), req_ptr->ctx.until, req_ptr->ctx);
        } catch (const std::exception& ex) {
          return fail(make_error(errc::internal, std::string("corrupt idempotency row: ") + ex.what()));
        }
        begin();
      },
      [fail](caf::error& e) mutable { fail(db::failure(e)); });
  return rp;
}

// The drafts of closed sessions created longer ago than the retention ($1 ms), at most $2 at a
// time (runtime/db/retention.hpp). Open sessions keep theirs until they close, and so do submits
// whose effects are not done: the effects read the drafts (pattern ids, word counts).
constexpr const char* purge_sql =
  "WITH due AS ("
  "  SELECT id FROM verification.sessions"
  "  WHERE created_at < now() - make_interval(secs => $1::double precision / 1000)"
  "    AND (content IS NOT NULL OR content_token IS NOT NULL)"
  "    AND (status = 'expired' OR (status = 'submitted' AND effects_done))"
  "  ORDER BY created_at LIMIT $2::integer FOR UPDATE SKIP LOCKED)"
  " UPDATE verification.sessions s SET content = NULL, content_token = NULL, content_purged_at = now()"
  " FROM due WHERE s.id = due.id RETURNING s.id";

// Expires what passed its idle time (returning schedule entries), and finds submits whose effects
// were interrupted so that their sessions are activated and finish them.
void sweep(supervisor_ptr self) {
  auto& st = self->state;
  db_transaction tx;
  tx.statements.push_back(
    {"WITH gone AS (UPDATE verification.sessions SET status = 'expired' "
     "WHERE status = 'open' AND expires_at <= now() RETURNING id), "
     "q AS (UPDATE verification.schedule SET status = 'scheduled', session_id = NULL "
     "WHERE status = 'taken' AND session_id IN (SELECT id FROM gone)) SELECT id FROM gone",
     {}, -1});
  tx.statements.push_back({"SELECT id FROM verification.sessions WHERE status = 'submitted' AND NOT effects_done "
                           "AND submitted_at < now() - interval '5 seconds' ORDER BY submitted_at LIMIT 100",
                           {}, -1});
  tx.statements.push_back(db::idempotency::purge(keys_table, st.settings.idempotency_retention));
  self->request(st.settings.db, st.settings.db_timeout, transact_atom::value, std::move(tx))
    .then(
      [self](db_results& res) {
        auto& st = self->state;
        try {
          // A live session actor of an expired session learns it on its next message (its touch
          // answers "expired") and stops when idle.
          st.stats.expired += res.results.at(0).rows.size();
          for (const auto& row : res.results.at(1).rows)
            with_session(self, db::int_column(row, 0), {}, [](const session_actor*, const caf::error*) {});
        } catch (const std::exception&) {
          // A row that does not read is skipped; the next sweep tries again.
        }
      },
      [](caf::error&) {});  // PostgreSQL down: the next sweep tries again
}

verification_sessions_actor::behavior_type supervisor_fn(supervisor_ptr self, sessions_settings settings,
                                                         caf::actor purge) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.cipher = crypto::fernet::from_key(st.settings.content_key);
  // Linked: the purge stops with the family, and a purge that fails restarts it with the family.
  if (purge) self->link_to(purge);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (auto it = st.by_address.find(dm.source); it != st.by_address.end()) {
      st.active.erase(it->second);
      st.by_address.erase(it);
    }
  });
  self->delayed_send(self, st.settings.sweep_interval, flush_atom::value);
  auto forward = [self](std::int64_t id, const request_context& ctx, auto deliver_to) {
    with_session(self, id, ctx.until, std::move(deliver_to));
  };
  return {
    [self](open_atom, session_start& req) { return on_open(self, std::move(req)); },
    [self, forward](get_atom, session_ref& ref) -> caf::result<session_view> {
      auto rp = self->make_response_promise<session_view>();
      forward(ref.id, ref.ctx, [rp, ref](const session_actor* a, const caf::error* e) mutable {
        if (e) return void(rp.deliver(*e));
        rp.delegate(*a, get_atom::value, ref);
        return;
      });
      return rp;
    },
    [self, forward](marks_atom, session_marks& m) -> caf::result<marks_receipt> {
      auto rp = self->make_response_promise<marks_receipt>();
      forward(m.id, m.ctx, [rp, m](const session_actor* a, const caf::error* e) mutable {
        if (e) return void(rp.deliver(*e));
        rp.delegate(*a, marks_atom::value, std::move(m));
      });
      return rp;
    },
    [self, forward](submit_atom, session_submit& s) -> caf::result<session_view> {
      auto rp = self->make_response_promise<session_view>();
      forward(s.id, s.ctx, [rp, s](const session_actor* a, const caf::error* e) mutable {
        if (e) return void(rp.deliver(*e));
        rp.delegate(*a, submit_atom::value, std::move(s));
      });
      return rp;
    },
    [self](metrics_atom) {
      const auto& st = self->state;
      component_metrics m;
      m.component = "verification-sessions";
      m.samples = {
        {"sbm_verification_sessions_active", {}, static_cast<double>(st.active.size())},
        {"sbm_verification_session_activations_total", {}, static_cast<double>(st.stats.activations)},
        {"sbm_verification_sessions_expired_total", {}, static_cast<double>(st.stats.expired)},
      };
      // The bound counts sessions being loaded or started as well as the live ones.
      m.queues.push_back({"verification.active-sessions", "verification.max-active-sessions",
                          st.active.size() + st.loading.size() + st.starting, st.settings.max_active});
      return m;
    },
    [self](status_atom) {
      auto out = self->state.stats;
      out.active = self->state.active.size();
      return out;
    },
    [self](flush_atom) {
      sweep(self);
      self->delayed_send(self, self->state.settings.sweep_interval, flush_atom::value);
    },
  };
}

}  // namespace

verification_sessions_actor spawn_sessions(caf::actor_system& sys, sessions_settings settings) {
  if (!settings.db || !settings.jobs || !settings.corrections || !settings.speakers || !settings.reports)
    throw std::invalid_argument("verification sessions: PostgreSQL, jobs, corrections, speakers and reports are required");
  if (settings.idle_timeout.count() <= 0 || settings.sweep_interval.count() <= 0 || settings.max_active == 0 ||
      settings.max_jobs_cap == 0 || settings.db_timeout.count() <= 0 || settings.call_timeout.count() <= 0)
    throw std::invalid_argument("verification sessions: timeouts and bounds must be positive");
  if (!crypto::fernet::from_key(settings.content_key))
    throw std::invalid_argument("verification sessions: the drafts' key is not a Fernet key");
  auto purge = db::spawn_retention_purge(
    sys, {settings.db, settings.db_timeout, settings.draft_retention, settings.draft_purge_interval,
          settings.draft_purge_batch, purge_sql, "verification", "drafts of verification sessions"});
  return sys.spawn(supervisor_fn, std::move(settings), std::move(purge));
}

}  // namespace sbm::verification
