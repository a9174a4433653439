// The correction actor (POST /v1/drafts/correct's work) against a real pattern index on a real
// PostgreSQL: retrieval by speaker only, rectified patterns applied and pending ones proposed, bad
// input refused, work past its deadline dropped; and its bound (drafts.max-in-flight), with an
// index that holds every search (the one fault a real index does not produce on demand).
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "actors/patterns/correction.hpp"
#include "actors/patterns/patterns.hpp"
#include "messages/errors.hpp"
#include "tests/support/postgres_actor_test.hpp"

namespace {

using namespace std::chrono_literals;
using sbm::errc;

sbm::pattern_record pattern(std::int64_t id, std::string speaker, std::string from, std::string to,
                            std::string status) {
  sbm::pattern_record r;
  r.pattern_id = id;
  r.speaker_id = std::move(speaker);
  r.client_id = "clinic-1";
  r.bucket_type = "high_touch";
  r.original_text = std::move(from);
  r.corrected_text = std::move(to);
  r.error_categories = {"drug_name"};
  r.audio_quality = "good";
  r.speaker_clarity = "clear";
  r.background_noise = "low";
  r.status = std::move(status);
  r.weight = 0.6;
  r.created_at_ms = 1793491200000;
  return r;
}

// Holds every search unanswered until told to answer them all (empty hits). Its status is that
// signal; it answers with `patterns` = searches released and `deleted` = distinct actors that ever
// sent one (how the test sees drafts spread over the workers).
struct holding_state {
  std::vector<caf::typed_response_promise<sbm::pattern_hits>> held;
  std::vector<caf::typed_response_promise<sbm::pattern_batch_hits>> held_batches;
  std::set<caf::actor_addr> senders;
};

sbm::pattern_index_actor::behavior_type holding_index(
  sbm::pattern_index_actor::stateful_pointer<holding_state> self) {
  return {
    [](sbm::upsert_atom, const sbm::pattern_record&) { return true; },
    [](sbm::upsert_atom, const sbm::pattern_record_batch&) { return true; },
    [](sbm::delete_atom, std::int64_t) { return true; },
    [self](sbm::search_atom, const sbm::pattern_search&) -> caf::result<sbm::pattern_hits> {
      // Before the promise: making it takes the sender out of the current message.
      self->state.senders.insert(caf::actor_cast<caf::actor_addr>(self->current_sender()));
      auto rp = self->make_response_promise<sbm::pattern_hits>();
      self->state.held.push_back(rp);
      return rp;
    },
    [self](sbm::search_atom, const sbm::pattern_batch_search&) -> caf::result<sbm::pattern_batch_hits> {
      // Before the promise: making it takes the sender out of the current message.
      self->state.senders.insert(caf::actor_cast<caf::actor_addr>(self->current_sender()));
      auto rp = self->make_response_promise<sbm::pattern_batch_hits>();
      self->state.held_batches.push_back(rp);
      return rp;
    },
    [self](sbm::status_atom) {
      auto& st = self->state;
      const auto released = st.held.size() + st.held_batches.size();
      for (auto& p : st.held) p.deliver(sbm::pattern_hits{});
      for (auto& p : st.held_batches) p.deliver(sbm::pattern_batch_hits{});
      st.held.clear();
      st.held_batches.clear();
      return sbm::pattern_index_status{released, st.senders.size(), "holding", true};
    },
    [](sbm::metrics_atom) { return sbm::component_metrics{}; },
  };
}

class CorrectionActor : public sbm::test::postgres_actor_test {
 protected:
  void SetUp() override {
    postgres_actor_test::SetUp();
    if (HasFatalFailure()) return;
    sbm::patterns::pattern_index_settings p;
    p.db = db;
    index = stop_at_end(sbm::patterns::spawn_pattern_index(sys, std::move(p)));
    ASSERT_TRUE(sbm::test::eventually([&] {
      auto st = ask<sbm::pattern_index_status>(index, sbm::status_atom::value);
      return st && st->ready;
    }));
    for (const auto& r : {pattern(1, "spk-1", "seltraline", "sertraline", "rectified"),
                          pattern(2, "spk-1", "hyper tension", "hypertension", "pending"),
                          pattern(3, "spk-2", "Stephens", "Stevens", "rectified")}) {
      auto ok = ask<bool>(index, sbm::upsert_atom::value, r);
      ASSERT_TRUE(ok && *ok) << (ok ? "" : sys.render(ok.error()));
    }
  }

  sbm::correction_actor corrections(sbm::pattern_index_actor on, std::uint32_t max_in_flight = 64,
                                    std::uint32_t workers = 2) {
    sbm::patterns::correction_settings k;
    k.index = std::move(on);
    k.max_draft_bytes = 200;
    k.max_in_flight = max_in_flight;
    k.workers = workers;
    return stop_at_end(sbm::patterns::spawn_correction_actor(sys, std::move(k)));
  }

  caf::expected<sbm::corrected_draft> correct(const sbm::correction_actor& a, std::string speaker,
                                              std::string text, sbm::request_context ctx = {}) {
    return ask<sbm::corrected_draft>(a, sbm::correct_atom::value,
                                     sbm::correction_request{ctx, std::move(speaker), std::move(text)});
  }

  // With the holding index: answers held searches until `searches` were released (they reach it
  // from the workers a moment after the front took the drafts); the distinct senders so far.
  std::uint64_t release(const sbm::pattern_index_actor& holding, std::uint64_t searches) {
    std::uint64_t released = 0;
    std::uint64_t senders = 0;
    EXPECT_TRUE(sbm::test::eventually([&] {
      auto st = ask<sbm::pattern_index_status>(holding, sbm::status_atom::value);
      if (!st) return false;
      released += st->patterns;
      senders = st->deleted;
      return released >= searches;
    }));
    EXPECT_EQ(released, searches);
    return senders;
  }

  // A draft sent now (after drafts the front holds) is refused as overloaded with a Retry-After.
  void expect_refused(const sbm::correction_actor& a, std::string text) {
    caf::expected<sbm::corrected_draft> got{caf::error{}};
    EXPECT_TRUE(sbm::test::eventually([&] {
      got = correct(a, "spk-1", text);
      return !got && sbm::code_of(got.error()) == errc::overloaded;
    }));
    EXPECT_TRUE(!got && sbm::retry_after_of(got.error()));
  }

  // Corrected drafts of single-segment texts that arrive (each within 10 s), out of n.
  int answers(int n) {
    int answered = 0;
    for (int i = 0; i < n; ++i)
      self->receive([&](sbm::corrected_draft& d) { answered += d.segments == 1 ? 1 : 0; },
                    caf::after(std::chrono::seconds{10}) >> [] {});
    return answered;
  }

  // A draft sent now is taken (not refused) and completes once the holding index answers.
  void expect_taken(const sbm::correction_actor& a, const sbm::pattern_index_actor& holding) {
    self->send(a, sbm::correct_atom::value, sbm::correction_request{{}, "spk-1", "one more draft."});
    bool done = false;
    EXPECT_TRUE(sbm::test::eventually([&] {
      if (!ask<sbm::pattern_index_status>(holding, sbm::status_atom::value)) return false;
      self->receive([&](sbm::corrected_draft&) { done = true; },
                    caf::after(std::chrono::milliseconds{50}) >> [] {});
      return done;
    }));
  }

  sbm::pattern_index_actor index;
};

TEST_F(CorrectionActor, AppliesRectifiedProposesPendingAndNeverUsesAnotherSpeakersPatterns) {
  auto a = corrections(index);
  auto got = correct(a, "spk-1", "Started seltraline for hyper tension. Seen by Dr. Stephens.");
  ASSERT_TRUE(got) << sys.render(got.error());
  EXPECT_EQ(got->corrected_text, "Started sertraline for hyper tension. Seen by Dr. Stephens.");
  ASSERT_EQ(got->corrections.size(), 2u);
  EXPECT_EQ(got->corrections[0].pattern_id, 1);
  EXPECT_TRUE(got->corrections[0].applied);
  EXPECT_EQ(got->corrections[1].pattern_id, 2);
  EXPECT_FALSE(got->corrections[1].applied);  // pending: proposed only
  EXPECT_EQ(got->applied, 1u);
  EXPECT_EQ(got->proposed, 1u);
  // spk-2's surname pattern is spk-2's alone.
  auto other = correct(a, "spk-2", "Seen by Dr. Stephens.");
  ASSERT_TRUE(other) << sys.render(other.error());
  EXPECT_EQ(other->corrected_text, "Seen by Dr. Stevens.");
}

TEST_F(CorrectionActor, RefusesBadInputAndWorkPastItsDeadline) {
  auto a = corrections(index);
  for (auto [speaker, text] : {std::pair<std::string, std::string>{"", "x"},
                               {"spk-1", std::string(201, 'x')},
                               {"spk-1", std::string("bad \xff utf-8")}}) {
    auto got = correct(a, speaker, text);
    ASSERT_FALSE(got);
    EXPECT_EQ(sbm::code_of(got.error()), errc::invalid_argument) << sys.render(got.error());
  }
  auto empty = correct(a, "spk-1", "");
  ASSERT_TRUE(empty) << sys.render(empty.error());
  EXPECT_EQ(empty->corrected_text, "");
  sbm::request_context late;
  late.until = sbm::deadline::after(sys.clock().now(), -1s);
  auto dropped = correct(a, "spk-1", "seltraline", late);
  ASSERT_FALSE(dropped);
  EXPECT_EQ(sbm::code_of(dropped.error()), errc::deadline_exceeded);
}

TEST_F(CorrectionActor, DraftsInFlightAreBounded) {
  auto holding = stop_at_end(sys.spawn(holding_index));
  auto a = corrections(holding, 2);
  // Two drafts wait for the index; a third is refused at once with a Retry-After.
  self->send(a, sbm::correct_atom::value, sbm::correction_request{{}, "spk-1", "one draft."});
  self->send(a, sbm::correct_atom::value, sbm::correction_request{{}, "spk-1", "two drafts."});
  expect_refused(a, "three drafts.");
  // The index answers (once both drafts' searches reached it from their workers): the two
  // complete, and the bound is free again.
  release(holding, 2);
  EXPECT_EQ(answers(2), 2);
  expect_taken(a, holding);
}

// The bound is the node's, not a worker's: with three workers and drafts.max-in-flight 4, four
// drafts waiting for the index occupy all three workers (each draft goes to the least busy one),
// and a fifth is refused although one worker holds a single draft.
TEST_F(CorrectionActor, ThePoolSpreadsDraftsOverItsWorkersUnderOneNodeWideBound) {
  auto holding = stop_at_end(sys.spawn(holding_index));
  auto a = corrections(holding, 4, 3);
  for (int i = 0; i < 4; ++i)
    self->send(a, sbm::correct_atom::value,
               sbm::correction_request{{}, "spk-1", "draft number " + std::to_string(i) + "."});
  expect_refused(a, "the fifth draft.");
  // The four reach the index (one batched search each), from three different workers.
  EXPECT_EQ(release(holding, 4), 3u);
  EXPECT_EQ(answers(4), 4);
  // All four answered: the bound is free again.
  expect_taken(a, holding);
}

}  // namespace
