// Reads sent straight from a lane to a speaker with direct_reads as the sender (CAF's real
// scheduler, a stand-in speaker): an answer at the stamp the lane held completes the request with
// the lane's body and never reaches the lane; a changed view, a reader the body's client is hidden
// from and a gone activation go back to the lane; the reads in flight are bounded.
#include "gateway/direct_reads.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "messages/atoms.hpp"
#include "tests/support/actor_test.hpp"

namespace {

using namespace std::chrono_literals;
using sbm::speaker_read;
using sbm::speaker_stamp;
using sbm::gateway::direct_reads;
using sbm::gateway::rendered_views;

struct recording_responder final : sbm::gateway::responder {
  std::mutex mutex;
  std::vector<std::pair<std::uint64_t, sbm::http_response>> answers;

  void respond(std::uint64_t id, sbm::http_response r) override {
    std::lock_guard<std::mutex> guard{mutex};
    answers.emplace_back(id, std::move(r));
  }
  void hand_over(std::uint64_t, std::uint64_t, int) override {}
  void respond_routed(std::uint64_t id, int, sbm::http_response r) override { respond(id, std::move(r)); }
  void fail_owned(std::uint64_t) override {}

  std::size_t count() {
    std::lock_guard<std::mutex> guard{mutex};
    return answers.size();
  }
};

const speaker_stamp at_rest{42, 1, 7};

// Answers a read at `now` (the view only when the reader's stamp is another), or, while
// `held_back` is set, keeps the answers until a `flush_atom`.
caf::behavior stand_in_speaker(caf::event_based_actor* self, speaker_stamp now, bool held_back) {
  auto kept = std::make_shared<std::vector<caf::response_promise>>();
  auto answer = [now](const speaker_stamp& held) {
    speaker_read r;
    r.stamp = now;
    r.changed = held != now;
    if (r.changed) {
      r.view.speaker_id = "spk-1";
      r.view.client_id = "clinic-1";
      r.view.samples_total = 9;
    }
    return r;
  };
  return {
    [=](sbm::get_atom, const speaker_stamp& held) -> caf::result<speaker_read> {
      if (!held_back)
        return answer(held);
      auto rp = self->make_response_promise();
      kept->push_back(rp);
      return caf::delegated<speaker_read>{};
    },
    [=](sbm::flush_atom) {
      for (auto& rp : *kept)
        rp.deliver(answer(at_rest));
      kept->clear();
    },
  };
}

std::shared_ptr<const rendered_views::entry> body_at(speaker_stamp stamp) {
  rendered_views::entry e;
  e.view.speaker_id = "spk-1";
  e.view.client_id = "clinic-1";
  e.body = R"({"speaker_id":"spk-1"})";
  e.stamp = stamp;
  return std::make_shared<const rendered_views::entry>(std::move(e));
}

class DirectReads : public sbm::test::io_actor_test {
 protected:
  direct_reads::ticket ticket(std::uint64_t request, sbm::client_scope scope = {}) {
    return {request, "spk-1", std::move(scope), body_at(at_rest), caf::actor_cast<caf::actor>(self)};
  }

  std::shared_ptr<recording_responder> out = std::make_shared<recording_responder>();
};

TEST_F(DirectReads, AnUnchangedSpeakerIsAnsweredWithTheLanesBodyWithoutTheLane) {
  direct_reads reads{sys, out, 8};
  auto speaker = stop_at_end(sys.spawn(stand_in_speaker, at_rest, false));
  ASSERT_TRUE(reads.send(speaker, ticket(11), nullptr));
  ASSERT_TRUE(sbm::test::eventually([&] { return out->count() == 1; }));
  {
    std::lock_guard<std::mutex> guard{out->mutex};
    EXPECT_EQ(out->answers[0].first, 11u);
    EXPECT_EQ(out->answers[0].second.status, 200);
    EXPECT_EQ(out->answers[0].second.body, R"({"speaker_id":"spk-1"})");
  }
  EXPECT_EQ(reads.in_flight(), 0u);
  // Whatever the sink sent the lane came before this: the first message must be this one.
  self->send(self, sbm::flush_atom::value);
  bool to_lane = false;
  self->receive([&](sbm::flush_atom) {},
                [&](sbm::get_atom, std::uint64_t, const std::string&, const sbm::client_scope&,
                    const speaker_read&) { to_lane = true; },
                [&](sbm::retry_atom, std::uint64_t, const std::string&, const sbm::client_scope&) {
                  to_lane = true;
                });
  EXPECT_FALSE(to_lane) << "the lane is not woken for an unchanged speaker";
}

TEST_F(DirectReads, WhatNeedsTheLaneGoesBackToIt) {
  direct_reads reads{sys, out, 8};
  // The speaker moved on: its new view goes to the lane, which renders it.
  auto moved = stop_at_end(sys.spawn(stand_in_speaker, speaker_stamp{42, 1, 8}, false));
  ASSERT_TRUE(reads.send(moved, ticket(21), nullptr));
  self->receive(
    [&](sbm::get_atom, std::uint64_t request, const std::string& id, const sbm::client_scope&,
        const speaker_read& r) {
      EXPECT_EQ(request, 21u);
      EXPECT_EQ(id, "spk-1");
      EXPECT_TRUE(r.changed);
      EXPECT_EQ(r.view.samples_total, 9u);
    },
    caf::after(30s) >> [] { ADD_FAILURE() << "the changed view did not come back"; });
  // A reader limited to another client: the lane answers it (404, audited words of its own).
  auto same = stop_at_end(sys.spawn(stand_in_speaker, at_rest, false));
  ASSERT_TRUE(reads.send(same, ticket(22, sbm::client_scope{true, {"clinic-2"}}), nullptr));
  self->receive(
    [&](sbm::get_atom, std::uint64_t request, const std::string&, const sbm::client_scope& scope,
        const speaker_read& r) {
      EXPECT_EQ(request, 22u);
      EXPECT_TRUE(scope.limited);
      EXPECT_FALSE(r.changed);
    },
    caf::after(30s) >> [] { ADD_FAILURE() << "the scoped read did not come back"; });
  // The activation is gone: the read goes back to be sent through the shard.
  auto gone = sys.spawn(stand_in_speaker, at_rest, false);
  self->send_exit(gone, caf::exit_reason::user_shutdown);
  self->wait_for(gone);
  ASSERT_TRUE(reads.send(gone, ticket(23), nullptr));
  self->receive(
    [&](sbm::retry_atom, std::uint64_t request, const std::string& id, const sbm::client_scope&) {
      EXPECT_EQ(request, 23u);
      EXPECT_EQ(id, "spk-1");
    },
    caf::after(30s) >> [] { ADD_FAILURE() << "the bounced read did not come back"; });
  EXPECT_EQ(out->count(), 0u);
  EXPECT_EQ(reads.in_flight(), 0u);
}

TEST_F(DirectReads, ReadsInFlightAreBounded) {
  direct_reads reads{sys, out, 2};
  auto slow = stop_at_end(sys.spawn(stand_in_speaker, at_rest, true));
  EXPECT_TRUE(reads.send(slow, ticket(1), nullptr));
  EXPECT_TRUE(reads.send(slow, ticket(2), nullptr));
  EXPECT_FALSE(reads.send(slow, ticket(3), nullptr)) << "past the bound the lane reads itself";
  EXPECT_EQ(reads.in_flight(), 2u);
  // The speaker saw two reads: after it answers them, nothing is left in flight and room is back.
  ASSERT_TRUE(sbm::test::eventually([&] {
    self->send(slow, sbm::flush_atom::value);
    return out->count() == 2;
  }));
  EXPECT_EQ(reads.in_flight(), 0u);
  EXPECT_TRUE(reads.send(slow, ticket(4), nullptr));
  ASSERT_TRUE(sbm::test::eventually([&] {
    self->send(slow, sbm::flush_atom::value);
    return out->count() == 3;
  }));
}

}  // namespace
