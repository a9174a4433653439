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
#include "runtime/db/store_link.hpp"
#include "runtime/resilience/time.hpp"

namespace sbm::verification {

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

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

// The jobs of a stored session: from its Fernet token, from plain JSON (rows written before
// verification/005), or none once the retention purged them. What is thrown names the column,
// never its content (a JSON parse error would quote the drafts).
std::vector<session_job> jobs_of(const session_record& r, const crypto::fernet& cipher) {
  std::optional<std::string> text;
  if (r.content_token) {
    text = cipher.decrypt(*r.content_token);
    if (!text) throw std::runtime_error("content_token does not decrypt with reports.fernet-key");
  } else if (r.content_plain) {
    text = *r.content_plain;
  }
  std::vector<session_job> jobs;
  if (!text) return jobs;
  const auto content = json::parse(*text, nullptr, false);
  if (!content.is_object()) throw std::runtime_error("content is not a JSON object");
  for (const auto& j : content.at("jobs")) jobs.push_back(job_of(j));
  return jobs;
}

// Throws std::exception on content that does not read.
session_view view_of(session_record r, const crypto::fernet& cipher) {
  session_view v = std::move(r.head);
  v.jobs = jobs_of(r, cipher);
  for (const auto& x : r.residuals)
    for (auto& j : v.jobs)
      if (j.job.job_id == x.job_id) {
        j.has_residual = true;
        j.residual_errors = x.residual_errors;
      }
  return v;
}

caf::error closed(const session_view& v) {
  if (v.status == "expired")
    return make_error(errc::conflict, "verification session " + std::to_string(v.id) +
                                          " expired unsubmitted; start a new one");
  return make_error(errc::conflict, "verification session " + std::to_string(v.id) + " was submitted already");
}

// --- the session actor ---------------------------------------------------------------------------

// Each actor reaches the store through its own link, so completions run in its own context.
template <class Self>
std::unique_ptr<store> open_store(Self* self, const sessions_settings& s) {
  auto link = db::make_store_link(self, s.db, s.db_timeout);
  return s.make_store ? s.make_store(link) : make_postgres_store(link);
}

struct session_state {
  static inline const char* name = "sbm.verification_session";
  sessions_settings settings;
  session_view view;
  caf::actor_clock::time_point last_used;
  bool effects_running = false;
  std::vector<caf::typed_response_promise<session_view>> waiting;  // for the submit's effects
  std::unique_ptr<store> db;  // the family's port
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
  st.db->finish_effects(st.view.id, st.view.outcome, [self](caf::expected<bool> ok) {
    if (!ok) return effects_failed(self, db::failure(ok.error()));
    self->state.view.effects_done = true;
    self->state.effects_running = false;
    answer_waiting(self, nullptr);
  });
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
  st.db->touch(st.view.id, until, [self, rp, then](caf::expected<caf::optional<session_status>> now) mutable {
    if (!now) return void(rp.deliver(db::failure(now.error())));
    if (!*now) return void(rp.deliver(not_found(self->state.view.id)));
    self->state.view.status = (*now)->status;
    self->state.view.expires_at_ms = (*now)->expires_at_ms;
    then(rp);
  });
}

// A closed session's drafts may have been purged (by any node's retention) while this actor held
// them: the row says whether, so no answer shows drafts past their retention.
void deliver_unless_purged(session_ptr self, const deadline& until, caf::typed_response_promise<session_view> rp) {
  auto& st = self->state;
  if (st.view.jobs.empty()) return void(rp.deliver(st.view));
  st.db->drafts_purged_at(st.view.id, until, [self, rp](caf::expected<std::int64_t> at) mutable {
    if (!at) return void(rp.deliver(db::failure(at.error())));
    auto& v = self->state.view;
    if (*at > 0) v.drafts_purged_at_ms = *at;
    if (v.drafts_purged_at_ms > 0) v.jobs.clear();
    rp.deliver(v);
  });
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
  std::vector<job_residual> residual_rows;
  for (const auto& [job, n] : residuals) residual_rows.push_back({job, n});
  auto rp = self->make_response_promise<marks_receipt>();
  st.db->save_marks(v.id, marks, residual_rows, req.ctx.until,
                       [self, rp, residuals](caf::expected<caf::optional<marks_saved>> saved) mutable {
    auto& v = self->state.view;
    if (!saved) return void(rp.deliver(db::failure(saved.error())));
    if (!*saved) return void(rp.deliver(not_found(v.id)));
    v.status = (*saved)->now.status;
    v.expires_at_ms = (*saved)->now.expires_at_ms;
    if (v.status != "open") return void(rp.deliver(closed(v)));
    v.marks = std::move((*saved)->marks);
    for (auto& j : v.jobs)
      if (auto it = residuals.find(j.job.job_id); it != residuals.end()) {
        j.has_residual = true;
        j.residual_errors = it->second;
      }
    marks_receipt r;
    r.session = v;
    rp.deliver(std::move(r));
  });
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
  // Committed by an earlier attempt whose answer this actor never saw (lost, or another node's):
  // the submit as the store holds it (who, when, whether its effects are done) before the effects
  // run and the answer goes out. Found by the simulation (tests/sim, seed 1).
  auto committed_before = [self, rp, committed, until = req.ctx.until]() mutable {
    self->state.db->load(self->state.view.id, until,
                         [self, rp, committed](caf::expected<caf::optional<session_record>> rec) mutable {
      if (!rec) return void(rp.deliver(db::failure(rec.error())));
      if (!*rec) return void(rp.deliver(not_found(self->state.view.id)));
      const auto& h = (*rec)->head;
      if (h.status != "submitted")
        return void(rp.deliver(make_error(errc::internal, "a stored submit found the session " + h.status)));
      auto& v = self->state.view;
      v.status = h.status;
      v.submitted_by = h.submitted_by;
      v.submitted_at_ms = h.submitted_at_ms;
      if (h.effects_done && !v.effects_done) {
        v.effects_done = true;
        v.outcome = h.outcome;
      }
      committed();
    });
  };
  auto attempt = [self, req, rp, id, committed, committed_before]() mutable {
    auto& st = self->state;
    if (st.view.status != "open") return void(rp.deliver(closed(st.view)));
    // The row's own submitted_at comes back, so the view shows what a reload would (no wall clock here).
    st.db->submit(id, req.actor, req.ctx, [self, req, rp, committed, committed_before](caf::expected<submitted> res) mutable {
      if (!res) {
        if (outcome_unknown(res.error()))
          return void(rp.deliver(make_error(errc::outcome_unknown, "the submit may or may not have been saved")));
        return void(rp.deliver(db::failure(res.error())));
      }
      if (res->outcome == submitted::not_open) {
        // Expired or submitted meanwhile: say which.
        return refresh(self, req.ctx.until, rp, [self](caf::typed_response_promise<session_view>& p) {
          p.deliver(self->state.view.status == "open" ? make_error(errc::conflict, "the session changed meanwhile; retry")
                                                      : closed(self->state.view));
        });
      }
      // The same key committed by a concurrent attempt (another node) answers as a replay.
      if (res->outcome == submitted::key_taken) return committed_before();
      auto& v = self->state.view;
      v.status = "submitted";
      v.submitted_by = req.actor;
      v.submitted_at_ms = res->submitted_at_ms;
      committed();
    });
  };
  if (!req.ctx.keyed()) {
    attempt();
    return rp;
  }
  st.db->find_key(req.ctx, st.settings.idempotency_retention,
                     [req, rp, attempt, committed_before](caf::expected<db::idempotency::lookup_result> found) mutable {
    if (!found) return void(rp.deliver(db::failure(found.error())));
    if (found->v == db::idempotency::verdict::reused) return void(rp.deliver(db::idempotency::reused(req.ctx)));
    if (found->v == db::idempotency::verdict::replay) return committed_before();
    attempt();
  });
  return rp;
}

session_actor::behavior_type session_fn(session_ptr self, sessions_settings settings, session_view view) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.view = std::move(view);
  st.db = open_store(self, st.settings);
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
  std::optional<resilience::wall_clock> wall;  // the drafts' token timestamps
  std::unique_ptr<store> db;  // the family's port
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
  auto done = [self, id](const session_actor* a, const caf::error* e) {
    auto waiting = std::move(self->state.loading[id]);
    self->state.loading.erase(id);
    for (auto& w : waiting) w(a, e);
  };
  st.db->load(id, until, [self, id, done](caf::expected<caf::optional<session_record>> rec) {
    if (!rec) {
      auto e = db::failure(rec.error());
      return done(nullptr, &e);
    }
    if (!*rec) {
      auto e = not_found(id);
      return done(nullptr, &e);
    }
    caf::optional<session_view> v;
    try {
      v = view_of(std::move(**rec), *self->state.cipher);
    } catch (const std::exception& ex) {
      auto e = make_error(errc::internal, std::string("corrupt session row: ") + ex.what());
      return done(nullptr, &e);
    }
    auto a = activate(self, std::move(*v));
    install(self, id, a);
    ++self->state.stats.activations;
    done(&a, nullptr);
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
  // What the key holds: its session replayed, its reuse refused, or `absent` run.
  auto by_key = [self, req_ptr, fail, replay](std::function<void()> absent) mutable {
    self->state.db->find_key(req_ptr->ctx, self->state.settings.idempotency_retention,
                             [req_ptr, fail, replay, absent](caf::expected<db::idempotency::lookup_result> found) mutable {
      if (!found) return fail(db::failure(found.error()));
      if (found->v == db::idempotency::verdict::reused) return fail(db::idempotency::reused(req_ptr->ctx));
      if (found->v == db::idempotency::verdict::replay) {
        std::int64_t id = 0;
        try {
          id = std::stoll(found->stored.answer);
        } catch (const std::exception& ex) {
          return fail(make_error(errc::internal, std::string("corrupt idempotency row: ") + ex.what()));
        }
        return replay(id, req_ptr->ctx.until, req_ptr->ctx);
      }
      absent();
    });
  };
  auto persist = [self, req_ptr, fail, replay, now, by_key](job_pull pull, std::vector<session_job> jobs,
                                                    std::string client_id) mutable {
    auto& st = self->state;
    const auto& r = *req_ptr;
    json content{{"jobs", json::array()}};
    for (const auto& j : jobs) content["jobs"].push_back(to_json(j));
    std::string token;
    try {
      token = st.cipher->encrypt(content.dump(), st.wall->unix_seconds(self->clock().now()));
    } catch (const std::exception&) {
      return fail(make_error(errc::internal, "the session's drafts could not be encrypted"));
    }
    new_session s{r.speaker_id, client_id, r.owner, r.from_ms, r.to_ms, r.error_types, r.max_jobs,
                  pull.source, pull.stale, pull.stale_since_ms, pull.stale_reason, std::move(token),
                  st.settings.idle_timeout};
    st.db->create(s, r.ctx, [req_ptr, fail, replay, by_key](caf::expected<std::int64_t> id) mutable {
      if (!id) {
        // The key was stored meanwhile: a re-send of this start, racing it, started the session
        // first. Its answer is this one's too (found by tests/sim's clinic-day scenario, seed 57).
        if (req_ptr->ctx.keyed() && code_of(id.error()) == errc::conflict) {
          auto e = id.error();
          return by_key([fail, e]() mutable { fail(e); });
        }
        if (outcome_unknown(id.error()))
          return fail(make_error(errc::outcome_unknown, "the session may or may not have been started"));
        return fail(db::failure(id.error()));
      }
      // Read back as any later activation reads it: one way to build a session's state.
      replay(*id, req_ptr->ctx.until, req_ptr->ctx);
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
    self->request(st.settings.corrections, caf::duration{answer_timeout(now(), req_ptr->ctx.until, st.settings.call_timeout)},
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
    self->request(st.settings.jobs, caf::duration{answer_timeout(now(), req_ptr->ctx.until, st.settings.call_timeout)}, pull_atom::value,
                  std::move(p))
      .then([correct_all, client_id](job_pull& pull) mutable { (*correct_all)(std::move(pull), {}, client_id, 0); },
            // InstaNote down with nothing cached: unavailable with its retry_after, passed on.
            [fail](caf::error& e) mutable { fail(db::failure(e)); });
  };
  auto begin = [self, req_ptr, fail, now, pull_jobs]() mutable {
    auto& st = self->state;
    self->request(st.settings.speakers, caf::duration{answer_timeout(now(), req_ptr->ctx.until, st.settings.call_timeout)}, get_atom::value,
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
  by_key(begin);
  return rp;
}

// Expires what passed its idle time (returning schedule entries), and finds submits whose effects
// were interrupted so that their sessions are activated and finish them.
void sweep(supervisor_ptr self) {
  auto& st = self->state;
  st.db->sweep(st.settings.idempotency_retention, [self](caf::expected<sweep_result> res) {
    if (!res) return;  // the store down: the next sweep tries again
    // A live session actor of an expired session learns it on its next message (its touch
    // answers "expired") and stops when idle.
    self->state.stats.expired += res->expired.size();
    for (auto id : res->unfinished) with_session(self, id, {}, [](const session_actor*, const caf::error*) {});
  });
}

verification_sessions_actor::behavior_type supervisor_fn(supervisor_ptr self, sessions_settings settings,
                                                         caf::actor purge) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.cipher = crypto::fernet::from_key(st.settings.content_key);
  st.wall.emplace(self->clock().now());
  st.db = open_store(self, st.settings);
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
  if ((!settings.db && !settings.make_store) || !settings.jobs || !settings.corrections || !settings.speakers || !settings.reports)
    throw std::invalid_argument("verification sessions: PostgreSQL, jobs, corrections, speakers and reports are required");
  if (settings.idle_timeout.count() <= 0 || settings.sweep_interval.count() <= 0 || settings.max_active == 0 ||
      settings.max_jobs_cap == 0 || settings.db_timeout.count() <= 0 || settings.call_timeout.count() <= 0)
    throw std::invalid_argument("verification sessions: timeouts and bounds must be positive");
  if (!crypto::fernet::from_key(settings.content_key))
    throw std::invalid_argument("verification sessions: the drafts' key is not a Fernet key");
  auto purge = db::spawn_retention_purge(
    sys, {settings.db, settings.db_timeout, settings.draft_retention, settings.draft_purge_interval,
          settings.draft_purge_batch, db::statement_purge(drafts_purge_sql), "verification",
          "drafts of verification sessions"});
  return sys.spawn(supervisor_fn, std::move(settings), std::move(purge));
}

}  // namespace sbm::verification
