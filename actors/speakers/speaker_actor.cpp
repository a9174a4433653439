#include "actors/speakers/speaker_actor.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/message_view.hpp>
#include <caf/sec.hpp>
#include <caf/typed_response_promise.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "actors/speakers/speaker_state.hpp"
#include "actors/speakers/store.hpp"
#include "actors/speakers/validation.hpp"
#include "messages/errors.hpp"
#include "messages/cluster.hpp"
#include "runtime/db/idempotency.hpp"
#include "runtime/db/rows.hpp"
#include "runtime/db/store_link.hpp"

namespace sbm::speakers {

namespace {

// Untyped underneath, typed to everyone else: see speaker_fn for why.
using self_ptr = caf::stateful_actor<speaker_state>*;
using view_promise = caf::typed_response_promise<speaker_view>;
using apply_fn = std::function<void(speaker_state&, const change_saved&)>;
// Sends the same message again, answered to its original sender (after a reload).
using resend_fn = std::function<void(view_promise&)>;

// A version that moved under this actor (an earlier write whose outcome was unknown committed
// after all) is a stale memory, not the client's conflict: reload and run the message again, a
// few times at most.
constexpr int max_stale_retries = 3;

speaker_view view_of(const speaker_state& st) {
  speaker_view v;
  v.speaker_id = st.speaker_id;
  v.client_id = st.client_id.str();
  v.display_name = st.display_name;
  v.bucket = std::string(to_string(st.current));
  v.pinned = st.pinned;
  if (st.pin) {
    v.pin_reason = st.pin->reason;
    v.pinned_by = st.pin->by;
    v.pinned_at_ms = st.pin->at_ms;
  }
  v.window_size = st.window.size();
  v.window_capacity = st.window.capacity();
  v.window_mean = st.window.mean();
  v.samples_total = st.samples_total;
  v.bucket_changes = st.bucket_changes;
  v.created_at_ms = st.created_at_ms;
  v.updated_at_ms = st.updated_at_ms;
  return v;
}

speaker_stamp stamp_of(self_ptr self) {
  const auto& st = self->state;
  return {st.env->stamp_base + self->id(), st.loads, st.version};
}

// After a committed change (or a load) and before its answer: a client that got the answer reads
// the new state from the board (messages/published_views.hpp).
void publish(self_ptr self) {
  auto& st = self->state;
  if (st.env->views)
    st.env->views->publish(&st, view_of(st), stamp_of(self));
}

// While memory may not match the row (a reload, an unusable activation) nothing is served from it.
void withdraw(speaker_state& st) {
  if (st.env->views)
    st.env->views->withdraw(st.speaker_id, &st);
}

caf::error invalid(std::string what) { return make_error(errc::invalid_argument, std::move(what)); }

// SBM errors pass through; CAF's own (a request timeout, a dead connection actor) mean the
// database could not be reached, which callers should see as "retry later".

// The fence of this node's writes: its lease's epoch in a cluster, none outside one.
fence_epoch epoch_of(const speaker_state& st) {
  if (!st.env->lease) return std::nullopt;
  return st.env->lease->epoch();
}

// The link of a call that must finish before the speaker takes its next message (a load, a
// write): made per call, so an idle speaker holds none.
db::store_link awaited(self_ptr self, const deadline& until = {}) {
  const auto& env = *self->state.env;
  return db::make_store_link(self, env.db, answer_timeout(self->clock().now(), until, env.db_timeout, store_answer_travel), true);
}

// A speaker of a client the caller may not reach answers exactly like one that does not exist, so
// its existence is not revealed.
caf::error outside_scope(const speaker_state& st) {
  return make_error(errc::not_found, "speaker " + st.speaker_id + " is not registered");
}

void touch(self_ptr self) {
  self->state.last_active = self->clock().now();
}

void become_unusable(self_ptr self, phase stage, caf::error answer) {
  auto& st = self->state;
  st.stage = stage;
  st.unusable = std::move(answer);
  withdraw(st);
  // Nothing to keep in memory: ask the shard to retire this activation once the messages already
  // routed here are answered; the next message gets a fresh activation that reads the DB again.
  self->send(st.env->shard, idle_atom::value, st.speaker_id);
}

void apply_loaded(self_ptr self, loaded_speaker& loaded) {
  auto& st = self->state;
  if (!loaded.row) {
    become_unusable(self, phase::missing,
                    make_error(errc::not_found, "speaker " + st.speaker_id + " is not registered"));
    return;
  }
  // Corrupt durable state throws here: the actor dies with the error and its supervisor (the
  // shard) decides whether to try again or to stop routing to it.
  speaker_record& rec = *loaded.row;
  const auto current = parse_bucket(rec.view.bucket);
  if (!current) throw std::runtime_error("speaker row holds an unknown bucket: " + rec.view.bucket);
  st.window = quality_window::from_samples(st.env->policy.window_size, loaded.window);
  st.client_id = client_id_ref{rec.view.client_id};
  st.display_name = std::move(rec.view.display_name);
  st.current = *current;
  st.pinned = rec.view.pinned;
  st.pin.reset();
  if (rec.view.pinned || !rec.view.pin_reason.empty() || !rec.view.pinned_by.empty() ||
      rec.view.pinned_at_ms != 0)
    st.pin.reset(new pin_note{std::move(rec.view.pin_reason), std::move(rec.view.pinned_by),
                              rec.view.pinned_at_ms});
  st.samples_total = rec.view.samples_total;
  st.bucket_changes = rec.view.bucket_changes;
  st.created_at_ms = rec.view.created_at_ms;
  st.updated_at_ms = rec.view.updated_at_ms;
  st.version = rec.version;
  ++st.loads;
  st.stage = phase::ready;
  st.unusable = caf::error{};
  publish(self);
}

// Reads the row and the newest window_size samples. Awaited: every other message stays in the
// mailbox until the answer is in, so nothing is served from a half-loaded state. In a cluster an
// activation claims the speaker (its ownership row) in the same transaction, so what it read is
// the last state any node wrote: a node that still holds it (a hand-off not finished yet, or
// an owner whose lease has not lapsed) makes the fence refuse the load, answered errc::moving, so
// the gateway sends the request again itself (nothing was done); other failures as unavailable.
void load(self_ptr self) {
  auto& st = self->state;
  if (st.loads > 0)
    withdraw(st);  // a reload: memory may be behind the row until it is in
  st.env->store->load(awaited(self), st.speaker_id, st.env->policy.window_size, epoch_of(st),
                      [self](caf::expected<loaded_speaker> r) {
                        if (r) return apply_loaded(self, *r);
                        // A corrupt row (the store's own errc::internal) ends the activation: its
                        // supervisor (the shard) decides whether to try again or to stop routing to
                        // it. CAF's errors (a lost answer, a timeout) also read as internal through
                        // code_of, but are the store being away: answered unavailable.
                        const auto& e = r.error();
                        if (e.category() == error_category && code_of(e) == errc::internal)
                          throw std::runtime_error(detail_of(e));
                        if (e.category() == error_category && code_of(e) == errc::stale_owner)
                          return become_unusable(self, phase::failed,
                                                 make_error(errc::moving,
                                                            "speaker " + self->state.speaker_id +
                                                              " is still another node's (the hand-off is not finished)",
                                                            std::chrono::seconds{1}));
                        become_unusable(self, phase::failed,
                                        make_error(errc::unavailable, "speaker state could not be loaded: " +
                                                                        self->system().render(r.error())));
                      });
}

// A keyed write whose first attempt committed answers what that attempt answered; a key used
// for another request is refused; without a stored answer the original refusal stands.
void answer_from_key(self_ptr self, view_promise rp, const request_context& ctx,
                     caf::error otherwise) {
  auto& st = self->state;
  st.env->store->find_key(
    awaited(self, ctx.until), ctx, st.env->idempotency_retention,
    [self, rp, ctx, otherwise](caf::expected<keyed_answer> found) mutable {
      // Whether the first attempt committed cannot be told now: retry later with the key.
      if (!found)
        return void(rp.deliver(make_error(errc::outcome_unknown, "the Idempotency-Key could not be checked: " +
                                                                   detail_of(db::failure(found.error())))));
      auto answer = answer_of(*found, ctx, std::move(otherwise), self->state.env->policy.window_size);
      if (answer)
        rp.deliver(std::move(*answer));
      else
        rp.deliver(std::move(answer.error()));
    });
}

// Every change is one commit, awaited: writes of one speaker are strictly serialised, memory
// changes only after the commit, and the caller hears nothing before it. A keyed write stores its
// key and answer (the row as it leaves it) in the same commit.
view_promise commit(self_ptr self, const speaker_change& change, apply_fn apply, const request_context& ctx,
                    resend_fn resend) {
  auto rp = self->make_response_promise<speaker_view>();
  auto& st = self->state;
  st.env->store->save(
    awaited(self, ctx.until), change, ctx, epoch_of(st),
    [self, rp, apply, ctx, resend](caf::expected<change_saved> saved) mutable {
      if (saved) {
        apply(self->state, *saved);
        self->state.stale_retries = 0;
        publish(self);
        rp.deliver(view_of(self->state));
        return;
      }
      auto& e = saved.error();
      if (outcome_unknown(e)) {
        // It may have committed: memory may be behind the source of truth, so reread it before
        // the next message. The client learns which by retrying with its key.
        rp.deliver(make_error(errc::outcome_unknown,
                              "the write of speaker " + self->state.speaker_id + " may or may not have been saved"));
        load(self);
        return;
      }
      const auto code = code_of(e);
      if (code != errc::conflict && code != errc::duplicate && code != errc::in_progress) {
        rp.deliver(db::failure(e));  // nothing was written, memory still matches
        return;
      }
      if (code == errc::conflict) {
        // The version moved: memory is stale. Reread it, then run the message again (its key,
        // if any, makes that safe), unless this keeps happening.
        load(self);
        if (++self->state.stale_retries <= max_stale_retries) {
          resend(rp);
          return;
        }
        self->state.stale_retries = 0;
      }
      if (ctx.keyed())
        answer_from_key(self, rp, ctx, std::move(e));
      else
        rp.deliver(std::move(e));
    });
  return rp;
}

// Refusals decided before any write (not pinned, a deadline passed): a keyed retry of a write
// that did commit must still get that write's answer, so the key is checked first.
caf::result<speaker_view> refuse(self_ptr self, const request_context& ctx, caf::error why) {
  if (!ctx.keyed()) return why;
  auto rp = self->make_response_promise<speaker_view>();
  answer_from_key(self, rp, ctx, std::move(why));
  return rp;
}

// A change computed from what this speaker holds now, to be refused if the row moved meanwhile.
speaker_change change_of(const speaker_state& st, bucket next, bool changed) {
  speaker_change c;
  c.speaker_id = st.speaker_id;
  c.client_id = st.client_id.str();
  c.version = st.version;
  c.bucket = std::string(to_string(next));
  c.bucket_changes = changed ? 1 : 0;
  return c;
}

history_line line(const char* kind, bucket previous, bucket next, const std::string& reason,
                  const std::string& actor) {
  return {kind, std::string(to_string(previous)), std::string(to_string(next)), reason, actor};
}

bucket_move move(bucket previous, bucket next, const std::string& reason) {
  return {std::string(to_string(previous)), std::string(to_string(next)), reason};
}

audit_line audit(std::string_view action, audit_origin by, bucket result, const std::string& reason) {
  return {std::string(action), std::move(by), std::string(to_string(result)), reason};
}

void apply_common(speaker_state& st, const change_saved& saved) {
  ++st.version;
  if (saved.updated_at_ms) st.updated_at_ms = saved.updated_at_ms;
}

caf::result<speaker_view> on_sample(self_ptr self, quality_sample& s) {
  auto& st = self->state;
  if (st.stage != phase::ready) return st.unusable;
  if (s.ctx.until.passed(self->clock().now())) return deadline_passed();
  if (s.speaker_id != st.speaker_id) return invalid("speaker_id does not match this speaker");
  if (!s.ctx.scope.admits(st.client_id.str())) return outside_scope(st);
  if (auto e = check_id("job_id", s.job_id)) return invalid(*e);
  if (auto e = check_rate("errors_per_100_words", s.errors_per_100_words)) return invalid(*e);
  if (auto e = check_text("actor", s.actor, max_id_bytes, false)) return invalid(*e);

  quality_window next_window = st.window;
  next_window.push(s.errors_per_100_words);
  bucket_decision decision = evaluate(st.env->policy, st.current, next_window, st.pinned);
  const bucket previous = st.current;

  auto c = change_of(st, decision.next, decision.changed);
  c.sample = new_sample{s.job_id, s.errors_per_100_words, s.actor};
  c.window_size = next_window.size();
  c.window_mean = next_window.mean();
  if (decision.changed) {
    c.history.push_back(line("policy", previous, decision.next, decision.reason, s.actor));
    c.moves.push_back(move(previous, decision.next, decision.reason));
  }
  return commit(
    self, c,
    [window = std::move(next_window), next = decision.next,
     changed = decision.changed](speaker_state& st, const change_saved& saved) {
      apply_common(st, saved);
      st.window = window;
      st.current = next;
      ++st.samples_total;
      if (changed) ++st.bucket_changes;
    },
    s.ctx,
    [self, s](view_promise& rp) {
      rp.delegate(caf::actor_cast<speaker_actor>(self), sample_atom::value, s);
    });
}

caf::result<speaker_view> on_pin(self_ptr self, bucket_pin& p) {
  auto& st = self->state;
  if (st.stage != phase::ready) return st.unusable;
  if (p.ctx.until.passed(self->clock().now())) return deadline_passed();
  if (p.speaker_id != st.speaker_id) return invalid("speaker_id does not match this speaker");
  if (!p.ctx.scope.admits(st.client_id.str())) return outside_scope(st);
  const auto target = parse_bucket(p.bucket);
  if (!target)
    return invalid("bucket must be one of no_touch, low_touch, medium_touch, high_touch");
  if (auto e = check_text("reason", p.reason, max_text_bytes, true)) return invalid(*e);
  if (auto e = check_text("actor", p.actor, max_id_bytes, false)) return invalid(*e);

  const bucket previous = st.current;
  const bool changed = *target != previous;
  auto c = change_of(st, *target, changed);
  c.pin = pin_change::pin;
  c.pin_reason = p.reason;
  c.pinned_by = p.actor;
  c.history.push_back(line("pin", previous, *target, p.reason, p.actor));
  if (p.by.actor.empty()) p.by.actor = p.actor;
  c.audit = audit(audit_action::bucket_pin, p.by, *target, p.reason);
  if (changed) c.moves.push_back(move(previous, *target, "pinned: " + p.reason));
  return commit(
    self, c,
    [next = *target, changed, reason = p.reason, actor = p.actor](speaker_state& st,
                                                                  const change_saved& saved) {
      apply_common(st, saved);
      st.current = next;
      st.pinned = true;
      const std::int64_t was = st.pin ? st.pin->at_ms : 0;
      st.pin.reset(new pin_note{reason, actor, saved.pinned_at_ms ? saved.pinned_at_ms : was});
      if (changed) ++st.bucket_changes;
    },
    p.ctx,
    [self, p](view_promise& rp) {
      rp.delegate(caf::actor_cast<speaker_actor>(self), pin_atom::value, p);
    });
}

// Unpin rule: the pinned bucket stays the speaker's current bucket and the policy is applied to the
// current window exactly as after a new sample. So an unpin may demote at once (window mean above
// that bucket's band, even a partial window) or promote at once (full window inside a better band
// with the margin); otherwise the speaker keeps the pinned bucket until its samples move it. The
// unpin row records the unpin itself (from = to = pinned bucket); a move it causes is a separate
// "policy" row with its own event, like any policy change.
caf::result<speaker_view> on_unpin(self_ptr self, bucket_unpin& u) {
  auto& st = self->state;
  if (st.stage != phase::ready) return st.unusable;
  if (u.ctx.until.passed(self->clock().now())) return deadline_passed();
  if (u.speaker_id != st.speaker_id) return invalid("speaker_id does not match this speaker");
  if (!u.ctx.scope.admits(st.client_id.str())) return outside_scope(st);
  if (auto e = check_text("reason", u.reason, max_text_bytes, false)) return invalid(*e);
  if (auto e = check_text("actor", u.actor, max_id_bytes, false)) return invalid(*e);
  if (!st.pinned)
    return refuse(self, u.ctx,
                  make_error(errc::conflict, "speaker " + st.speaker_id + " is not pinned"));

  const bucket held = st.current;
  bucket_decision decision = evaluate(st.env->policy, held, st.window, false);
  auto c = change_of(st, decision.next, decision.changed);
  c.pin = pin_change::unpin;
  c.history.push_back(line("unpin", held, held, u.reason, u.actor));
  if (u.by.actor.empty()) u.by.actor = u.actor;
  c.audit = audit(audit_action::bucket_unpin, u.by, decision.next, u.reason);
  if (decision.changed) {
    c.history.push_back(line("policy", held, decision.next, decision.reason, u.actor));
    c.moves.push_back(move(held, decision.next, decision.reason));
  }
  return commit(
    self, c,
    [next = decision.next, changed = decision.changed](speaker_state& st, const change_saved& saved) {
      apply_common(st, saved);
      st.current = next;
      st.pinned = false;
      st.pin.reset();
      if (changed) ++st.bucket_changes;
    },
    u.ctx,
    [self, u](view_promise& rp) {
      rp.delegate(caf::actor_cast<speaker_actor>(self), unpin_atom::value, u);
    });
}

// Newest 1,000 rows, oldest first: enough for any audit screen, bounded for the message size.
caf::result<speaker_history> on_history(self_ptr self) {
  auto& st = self->state;
  if (st.stage != phase::ready) return st.unusable;
  auto rp = self->make_response_promise<speaker_history>();
  // Not awaited: a read need not hold up the speaker, and it still sees every write acknowledged
  // before it because those were committed before this call was made.
  st.env->store->history(db::make_store_link(self, st.env->db, st.env->db_timeout), st.speaker_id, 1000,
                         [rp, id = st.speaker_id](caf::expected<std::vector<history_entry>> entries) mutable {
                           if (!entries) return void(rp.deliver(db::failure(entries.error())));
                           rp.deliver(speaker_history{id, std::move(*entries)});
                         });
  return rp;
}

caf::result<speaker_view> on_get(self_ptr self) {
  if (self->state.stage != phase::ready) return self->state.unusable;
  return view_of(self->state);
}

// A read naming the stamp of the view its caller holds: the view travels back only when the stamp
// has moved (another activation, a reload, a write), so an unchanged speaker answers with a stamp.
caf::result<speaker_read> on_stamped_get(self_ptr self, const speaker_stamp& held) {
  auto& st = self->state;
  if (st.stage != phase::ready) return st.unusable;
  speaker_read out;
  out.stamp = stamp_of(self);
  if (out.stamp != held) {
    out.changed = true;
    out.view = view_of(st);
  }
  return out;
}

void on_idle(self_ptr self) {
  // The shard's sweep asks; idle for a whole period means: please retire this activation.
  auto& st = self->state;
  if (self->clock().now() - st.last_active >= st.env->idle_timeout)
    self->send(st.env->shard, idle_atom::value, st.speaker_id);
}

// A handler's answer in the form the default handler returns; the flag keeps its meaning (a
// promise already delivering is rt_delegated, so nothing more is sent).
template <class T>
caf::result<caf::message> erased(caf::result<T> r) {
  caf::result<caf::message> out{caf::delegated<caf::message>{}};
  out.flag = r.flag;
  out.value = std::move(r.value);
  out.err = std::move(r.err);
  return out;
}

// What a message that is only told (no reply declared) returns: an empty value, sent nowhere.
caf::result<caf::message> no_answer() {
  caf::result<caf::message> out{caf::delegated<caf::message>{}};
  out.flag = caf::rt_value;
  return out;
}

// Every message speaker_actor declares, matched by hand. Called by CAF with the actor itself, so it
// captures nothing and one copy serves every speaker (see speaker_fn).
caf::result<caf::message> dispatch(caf::scheduled_actor* base, caf::message_view& msg) {
  auto self = static_cast<self_ptr>(base);
  auto& xs = msg.content();
  if (xs.match_elements<get_atom>()) {
    touch(self);
    return erased(on_get(self));
  }
  if (xs.match_elements<get_atom, speaker_stamp>()) {
    touch(self);
    return erased(on_stamped_get(self, xs.get_as<speaker_stamp>(1)));
  }
  if (xs.match_elements<sample_atom, quality_sample>()) {
    touch(self);
    quality_sample s = xs.get_as<quality_sample>(1);
    return erased(on_sample(self, s));
  }
  if (xs.match_elements<pin_atom, bucket_pin>()) {
    touch(self);
    bucket_pin p = xs.get_as<bucket_pin>(1);
    return erased(on_pin(self, p));
  }
  if (xs.match_elements<unpin_atom, bucket_unpin>()) {
    touch(self);
    bucket_unpin u = xs.get_as<bucket_unpin>(1);
    return erased(on_unpin(self, u));
  }
  if (xs.match_elements<history_atom>()) {
    touch(self);
    return erased(on_history(self));
  }
  if (xs.match_elements<idle_atom>()) {
    on_idle(self);
    return no_answer();
  }
  if (xs.match_elements<passivate_atom>()) {
    self->quit();
    return no_answer();
  }
  return caf::sec::unexpected_message;
}

// A throw (corrupt durable state, a broken invariant) ends this activation with an SBM error that
// names the speaker; the shard sees it as a failure and supervises.
caf::error on_exception(caf::scheduled_actor* base, std::exception_ptr& thrown) {
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(thrown);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  return make_error(errc::internal,
                    "speaker " + static_cast<self_ptr>(base)->state.speaker_id + ": " + what);
}

// Matched by the default handler, not by a behaviour of lambdas: such a behaviour captures `self`,
// so each speaker would own a copy of its eight handlers (~330 B, a seventh of an active speaker),
// while the default handler is a plain function and the behaviour that keeps the actor alive is one
// object shared by all. The price is that the compiler no longer checks the handlers against
// speaker_actor's interface: speaker_actor_test sends every message of it.
caf::behavior speaker_fn(self_ptr self, speaker_env_ptr env, std::string speaker_id) {
  static const caf::behavior resident{[](caf::atom_constant<caf::atom("spkresid")>) {}};
  self->state.env = std::move(env);
  self->state.speaker_id = std::move(speaker_id);
  self->state.window = quality_window{self->state.env->policy.window_size};
  self->set_default_handler(dispatch);
  self->set_exception_handler(on_exception);
  load(self);
  touch(self);
  return resident;
}

}  // namespace

std::uint64_t random_stamp_base() {
  std::random_device device;
  return (std::uint64_t{device()} << 32) ^ device();
}

speaker_actor spawn_speaker(caf::actor_system& sys, speaker_env_ptr env, std::string speaker_id) {
  return caf::actor_cast<speaker_actor>(sys.spawn(speaker_fn, std::move(env), std::move(speaker_id)));
}

}  // namespace sbm::speakers
