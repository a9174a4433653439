#pragma once
// A speaker between owners in a cluster (a join or a move under way, an owner whose lease is
// lapsing, a node that lost its lease) is refused with errc::moving, and nothing was done. The
// gateway sends such a request again itself, a few times with a short back-off, when sending it
// twice is safe (a read, or a write with an Idempotency-Key) and its deadline leaves room for the
// wait, so clients mostly never see the move. Refused still after that: 503 with Retry-After.
#include <caf/error.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>

#include "gateway/gateway_state.hpp"
#include "messages/context.hpp"
#include "messages/errors.hpp"
#include "runtime/resilience/backoff.hpp"

namespace sbm::gateway {

// Three resends, about 50, 100 and 200 ms after each refusal: a view that disagrees settles at
// the members' next gossip or lease reading, a lease lapses within cluster.lease-ttl.
inline constexpr resilience::backoff_policy reroute_policy{3, std::chrono::milliseconds{50},
                                                           std::chrono::milliseconds{400}, 0.2};

// The wait before the next resend, or none when the refusal stands: it is not a move, sending
// twice is not safe, every resend was made, or `left` of the deadline does not cover the wait.
std::optional<std::chrono::milliseconds> reroute_delay(errc code, bool safe, int resends_made,
                                                       std::chrono::milliseconds left,
                                                       std::uint64_t random_bits);

// What a request keeps between its tries.
struct reroute_plan {
  std::uint64_t request = 0;  // the HTTP request answered in the end
  bool write = false;         // a lost answer leaves an unknown outcome (json_io)
  bool safe = false;          // a read, or a write with its Idempotency-Key
  deadline until;             // no resend waits past it
  int resends = 0;
};

// request(dest, xs...).then(on_value, problem+json), resent while the answer is errc::moving and
// reroute_delay allows. The message is held once, for the resends, only when they are safe.
template <class Result, class Dest, class OnValue, class... Ts>
void request_rerouted(gateway_context& ctx, reroute_plan plan, const Dest& dest, OnValue on_value,
                      Ts... xs) {
  if (!plan.safe) {
    ctx.self->request(dest, ctx.hop(), std::move(xs)...)
      .then([on_value](Result& r) mutable { on_value(r); }, ctx.on_error(plan.request, plan.write));
    return;
  }
  auto args = std::make_shared<const std::tuple<Ts...>>(std::move(xs)...);
  auto send = std::apply(
    [&](const auto&... a) { return ctx.self->request(dest, ctx.hop(), a...); }, *args);
  send.then(
    [on_value](Result& r) mutable { on_value(r); },
    [&ctx, plan, dest, on_value, args](caf::error& err) mutable {
      const auto left = plan.until.left(ctx.self->clock().now(), std::chrono::milliseconds::zero());
      // Jitter drawn from the request's number: resends of requests refused together spread out.
      const auto wait = reroute_delay(code_of(err), plan.safe, plan.resends, left,
                                      (plan.request + 1) * 0x9e3779b97f4a7c15ULL);
      if (!wait)
        return ctx.on_error(plan.request, plan.write)(err);
      ++plan.resends;
      ctx.later(*wait, [&ctx, plan, dest, on_value, args]() mutable {
        std::apply(
          [&](const auto&... a) { request_rerouted<Result>(ctx, plan, dest, std::move(on_value), a...); },
          *args);
      });
    });
}

}  // namespace sbm::gateway
