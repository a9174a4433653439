#pragma once
// A speaker between owners in a cluster (a join or a move under way, an owner whose lease is
// lapsing, a node that lost its lease) is refused with errc::moving, and nothing was done. The
// gateway sends such a request again itself, a few times with a short back-off, when sending it
// twice is safe (a read, or a write with an Idempotency-Key) and its deadline leaves room for the
// wait, so clients mostly never see the move. Refused still after that: 503 with Retry-After.
#include <caf/error.hpp>

#include <algorithm>
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
  // Each try waits at most what is left of `until` (an answer made of several sources goes out by
  // its deadline with whatever came); otherwise the HTTP server's deadline alone bounds it.
  bool bounded = false;
};

// request(dest, xs...).then(on_value, on_error), resent while the answer is errc::moving and
// reroute_delay allows; on_error gets the refusal that stands. The message is held once, for the
// resends, only when they are safe.
template <class Result, class Dest, class OnValue, class OnError, class... Ts>
void request_rerouted_or(gateway_context& ctx, reroute_plan plan, const Dest& dest, OnValue on_value,
                         OnError on_error, Ts... xs) {
  const auto timeout = [&ctx, &plan] {
    if (!plan.bounded)
      return ctx.hop();
    const auto left = plan.until.left(ctx.self->clock().now(), ctx.settings.request_timeout);
    return caf::duration{std::max(std::chrono::milliseconds{1}, left)};
  }();
  if (!plan.safe) {
    ctx.self->request(dest, timeout, std::move(xs)...)
      .then([on_value](Result& r) mutable { on_value(r); }, std::move(on_error));
    return;
  }
  auto args = std::make_shared<const std::tuple<Ts...>>(std::move(xs)...);
  auto send = std::apply(
    [&](const auto&... a) { return ctx.self->request(dest, timeout, a...); }, *args);
  send.then(
    [on_value](Result& r) mutable { on_value(r); },
    [&ctx, plan, dest, on_value, on_error, args](caf::error& err) mutable {
      const auto left = plan.until.left(ctx.self->clock().now(), std::chrono::milliseconds::zero());
      // Jitter drawn from the request's number: resends of requests refused together spread out.
      const auto wait = reroute_delay(code_of(err), plan.safe, plan.resends, left,
                                      (plan.request + 1) * 0x9e3779b97f4a7c15ULL);
      if (!wait)
        return on_error(err);
      ++plan.resends;
      ctx.later(*wait, [&ctx, plan, dest, on_value, on_error, args]() mutable {
        std::apply(
          [&](const auto&... a) {
            request_rerouted_or<Result>(ctx, plan, dest, std::move(on_value), std::move(on_error), a...);
          },
          *args);
      });
    });
}

// The same, answering a refusal that stands with its problem+json.
template <class Result, class Dest, class OnValue, class... Ts>
void request_rerouted(gateway_context& ctx, reroute_plan plan, const Dest& dest, OnValue on_value,
                      Ts... xs) {
  auto on_error = ctx.on_error(plan.request, plan.write);
  request_rerouted_or<Result>(ctx, plan, dest, std::move(on_value), std::move(on_error), std::move(xs)...);
}

}  // namespace sbm::gateway
