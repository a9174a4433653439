#include "actors/events/stream_publisher.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <utility>

#include "events.pb.h"
#include "messages/errors.hpp"

namespace sbm::events {

std::vector<std::string> xadd_command(const bucket_changed& ev) {
  v1::BucketChanged pb;
  pb.set_event_id(ev.event_id);
  pb.set_speaker_id(ev.speaker_id);
  pb.set_client_id(ev.client_id);
  pb.set_previous_bucket(ev.previous_bucket);
  pb.set_new_bucket(ev.new_bucket);
  pb.set_reason(ev.reason);
  pb.set_timestamp_ms(ev.timestamp_ms);
  return {"XADD",       bucket_changed_stream,
          "MAXLEN",     "~",
          std::to_string(stream_max_length), "*",
          "event_id",   std::to_string(ev.event_id),
          "type",       bucket_changed_topic,
          "payload",    pb.SerializeAsString()};
}

namespace {

struct publisher_state {
  static inline const char* name = "sbm.stream_publisher";
  redis_actor redis;
  std::chrono::milliseconds timeout{5000};
};

using self_ptr = stream_publisher_actor::stateful_pointer<publisher_state>;

stream_publisher_actor::behavior_type publisher_fn(self_ptr self, redis_actor redis,
                                                   std::chrono::milliseconds timeout) {
  self->state.redis = std::move(redis);
  self->state.timeout = timeout;
  return {
    [self](publish_atom, const bucket_changed& ev) -> caf::result<bool> {
      auto rp = self->make_response_promise<bool>();
      self->request(self->state.redis, self->state.timeout, command_atom::value,
                    redis_command{xadd_command(ev)})
        .then(
          [rp](redis_reply& reply) mutable {
            // XADD answers the new entry's id as a bulk string.
            if (reply.kind == redis_reply::string && !reply.text.empty())
              rp.deliver(true);
            else
              rp.deliver(make_error(errc::internal, "unexpected XADD reply: " + reply.text));
          },
          [self, rp](caf::error& e) mutable {
            if (e.category() == error_category)
              rp.deliver(e);
            else
              rp.deliver(make_error(errc::unavailable,
                                    "redis did not answer: " + self->system().render(e)));
          });
      return rp;
    },
  };
}

}  // namespace

stream_publisher_actor spawn_stream_publisher(caf::actor_system& sys, redis_actor redis,
                                              std::chrono::milliseconds redis_timeout) {
  return sys.spawn(publisher_fn, std::move(redis), redis_timeout);
}

}  // namespace sbm::events
