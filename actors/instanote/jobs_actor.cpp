#include "actors/instanote/jobs_actor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <utility>

#include "actors/instanote/job_cache.hpp"
#include "actors/instanote/store.hpp"
#include "messages/errors.hpp"
#include "runtime/crypto/fernet.hpp"
#include "runtime/logging/logging.hpp"
#include "runtime/resilience/time.hpp"

namespace sbm::instanote {

namespace {

struct jobs_state {
  jobs_settings settings;
  std::unique_ptr<store> db;
  std::unique_ptr<instanote::cache> pulls;  // the cache; none: nothing is cached
  std::optional<crypto::fernet> fernet;
  static inline const char* name = "sbm.instanote_jobs";
};

using jobs_pointer = instanote_actor::stateful_pointer<jobs_state>;

bool cache_enabled(const jobs_state& st) { return st.pulls && st.fernet.has_value(); }

// Any cache trouble (Redis down, a timeout, an entry we cannot decrypt) reads as "nothing cached".
void read_cache(jobs_pointer self, const std::string& key,
                std::function<void(std::optional<cached_pull>)> done) {
  auto& st = self->state;
  if (!cache_enabled(st))
    return done(std::nullopt);
  st.pulls->get(key, [self, done](caf::expected<std::optional<std::string>> token) {
    if (!token || !*token)
      return done(std::nullopt);
    std::optional<std::string> plain;
    try {
      plain = self->state.fernet->decrypt(**token);
    } catch (const std::exception&) {
    }
    done(plain ? decode_cached(*plain) : std::nullopt);
  });
}

// Calls done(true) once the cache holds the copy, done(false) when it could not (never an error).
void write_cache(jobs_pointer self, const std::string& key, const cached_pull& pull,
                 std::function<void(bool)> done) {
  auto& st = self->state;
  if (!cache_enabled(st))
    return done(false);
  std::string token;
  try {
    token = st.fernet->encrypt(encode_cached(pull), pull.cached_at_ms / 1000);
  } catch (const std::exception&) {
    return done(false);
  }
  st.pulls->put(key, std::move(token), st.settings.cache_ttl,
                [done](caf::expected<bool> stored) { done(stored && *stored); });
}

// Answers only jobs of clients the caller may reach; errors pass through unchanged.
struct scoped_promise {
  caf::typed_response_promise<job_pull> promise;
  client_scope scope;

  void deliver(job_pull pull) {
    auto& jobs = pull.jobs;
    jobs.erase(std::remove_if(jobs.begin(), jobs.end(),
                              [this](const verification_job& j) { return !scope.admits(j.client_id); }),
               jobs.end());
    promise.deliver(std::move(pull));
  }
  void deliver(caf::error e) { promise.deliver(std::move(e)); }
};

caf::result<job_pull> on_pull(jobs_pointer self, job_pull_request req) {
  auto& st = self->state;
  if (req.max_jobs == 0)
    req.max_jobs = st.settings.default_max_jobs;
  req.max_jobs = std::min(req.max_jobs, st.settings.max_jobs_cap);
  if (req.speaker_id.empty())
    return make_error(errc::invalid_argument, "speaker_id must not be empty");
  if (req.to_ms <= req.from_ms)
    return make_error(errc::invalid_argument, "'to' must be after 'from'");
  // The cache holds the pull for everyone; the caller's scope is applied to every answer.
  auto promise = self->make_response_promise<job_pull>();
  auto rp = scoped_promise{promise, req.scope};
  auto key = cache_key(req);
  read_cache(self, key, [self, rp, req, key](std::optional<cached_pull> cached) mutable {
    auto& st = self->state;
    const auto now = st.settings.now_ms();
    const auto fresh_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            st.settings.cache_fresh_for).count();
    if (cached && now - cached->cached_at_ms < fresh_ms && now >= cached->cached_at_ms) {
      job_pull out;
      out.jobs = std::move(cached->jobs);
      out.source = "cache";
      rp.deliver(std::move(out));
      return;
    }
    st.db->pull_jobs(req, now, [self, rp, key, now, cached = std::move(cached)](
                                 caf::expected<std::vector<verification_job>> jobs) mutable {
      if (jobs) {
        cached_pull copy{*jobs, now};
        write_cache(self, key, copy, [rp, jobs = std::move(*jobs)](bool stored) mutable {
          job_pull out;
          out.jobs = std::move(jobs);
          out.source = "instanote";
          out.cached = stored;
          rp.deliver(std::move(out));
        });
        return;
      }
      auto why = detail_of(jobs.error());
      if (why.empty())
        why = "InstaNote did not answer (" + self->system().render(jobs.error()) + ")";
      if (cached) {
        job_pull out;
        out.jobs = std::move(cached->jobs);
        out.source = "cache";
        out.stale = true;
        out.stale_since_ms = cached->cached_at_ms;
        out.stale_reason = why;
        rp.deliver(std::move(out));
        return;
      }
      // A refusal of the request itself (a bad value) is the client's; anything else is outage.
      const auto code = code_of(jobs.error());
      if (code == errc::invalid_argument || code == errc::not_found) {
        rp.deliver(jobs.error());
        return;
      }
      // The breaker's own Retry-After when it refused, else InstaNote's open-for.
      auto retry = retry_after_of(jobs.error());
      // A full queue is SBM's own bound, not InstaNote's outage: typed as every bounded queue is.
      if (code == errc::overloaded) {
        rp.deliver(make_error(errc::overloaded, why + "; nothing cached for this pull",
                              retry ? *retry : std::chrono::milliseconds{1000}));
        return;
      }
      rp.deliver(make_error(errc::unavailable, why + "; nothing cached for this pull",
                            retry ? *retry
                                  : std::chrono::milliseconds{self->state.settings.default_retry_after}));
    });
  });
  return promise;
}

instanote_actor::behavior_type jobs_behavior(jobs_pointer self, jobs_settings settings) {
  auto& st = self->state;
  if (!settings.now_ms)
    settings.now_ms = [self, wall = resilience::wall_clock{self->clock().now()}] {
      return wall.unix_ms(self->clock().now());
    };
  if (!settings.cache_key.empty()) {
    st.fernet = crypto::fernet::from_key(settings.cache_key);
    if (!st.fernet)
      log::get("instanote")->warn("the cache key is not a Fernet key: pulls are not cached");
  }
  st.settings = std::move(settings);
  if (st.settings.make_cache) {
    st.pulls = st.settings.make_cache(db::make_store_link(self, {}, st.settings.cache_timeout));
  } else if (st.settings.redis) {
    st.pulls = make_redis_cache([self, redis = st.settings.redis, timeout = st.settings.cache_timeout](
                                  redis_command command, db::completion<redis_reply> done) {
      self->request(redis, timeout, command_atom::value, std::move(command))
        .then([done](redis_reply& reply) { done(std::move(reply)); }, [done](caf::error& e) { done(std::move(e)); });
    });
  }
  auto pg = st.settings.instanote;
  auto timeout = st.settings.instanote_timeout;
  st.db = make_postgres_store(
    [self, pg, timeout](db_statement statement, completion<db_rows> done) {
      if (!pg)
        return done(make_error(errc::unavailable, "instanote: no connection configured"));
      // The pull carries its deadline down to the connection worker: one that stopped waiting is
      // dropped there unstarted, instead of held past the pool's queue bound (sim_instanote_flapping).
      if (!statement.until.set())
        statement.until = deadline::after(self->clock().now(), timeout);
      self->request(pg, timeout, query_atom::value, std::move(statement))
        .then([done](db_rows& rows) { done(std::move(rows)); },
              [done](caf::error& e) { done(std::move(e)); });
    },
    [self, pg, timeout](completion<dependency_status> done) {
      if (!pg)
        return done(dependency_status{"instanote", false, false, "down", "no connection configured"});
      self->request(pg, timeout, status_atom::value)
        .then([done](dependency_status& s) { done(std::move(s)); },
              [done](caf::error&) {
                done(dependency_status{"instanote", false, false, "down", "status did not answer"});
              });
    });
  return {
    [self](pull_atom, job_pull_request& req) -> caf::result<job_pull> {
      return on_pull(self, std::move(req));
    },
    [self](job_atom, const std::string& job_id) -> caf::result<verification_job> {
      if (job_id.empty())
        return make_error(errc::invalid_argument, "job_id must not be empty");
      auto rp = self->make_response_promise<verification_job>();
      self->state.db->job(job_id, self->state.settings.now_ms(),
                          [rp](caf::expected<verification_job> job) mutable {
                            if (job)
                              rp.deliver(std::move(*job));
                            else
                              rp.deliver(job.error());
                          });
      return rp;
    },
    [self](status_atom) -> caf::result<dependency_status> {
      auto rp = self->make_response_promise<dependency_status>();
      self->state.db->health([rp](caf::expected<dependency_status> s) mutable {
        rp.deliver(s ? std::move(*s)
                     : dependency_status{"instanote", false, false, "down", "status failed"});
      });
      return rp;
    },
  };
}

}  // namespace

instanote_actor spawn_jobs(caf::actor_system& system, jobs_settings settings) {
  return system.spawn(jobs_behavior, std::move(settings));
}

instanote_actor spawn_jobs(caf::local_actor* parent, jobs_settings settings) {
  return parent->spawn<caf::linked>(jobs_behavior, std::move(settings));
}

}  // namespace sbm::instanote
