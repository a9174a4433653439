#include "actors/connections/redis_worker.hpp"

#include <caf/all.hpp>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/time.h>

#include <cerrno>
#include <csignal>
#include <memory>
#include <utility>
#include <vector>

#include "messages/errors.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::connections::detail {

namespace {

struct context_deleter {
  void operator()(redisContext* context) const { redisFree(context); }
};

struct reply_deleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};

struct worker_state {
  redis_worker_config config;
  std::unique_ptr<redisContext, context_deleter> context;
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "sbm.redis_worker";
};

using worker_pointer = redis_worker_actor::stateful_pointer<worker_state>;

timeval to_timeval(std::chrono::milliseconds duration) {
  timeval out{};
  out.tv_sec = static_cast<time_t>(duration.count() / 1000);
  out.tv_usec = static_cast<suseconds_t>((duration.count() % 1000) * 1000);
  return out;
}

// hiredis write()s to a socket the server may have closed; SIGPIPE would kill the process. Blocked
// on this worker's thread only, so the process-wide disposition stays the application's choice.
void block_sigpipe_on_this_thread() {
  thread_local bool blocked = false;
  if (blocked)
    return;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  blocked = true;
}

std::string clipped(const char* text, std::size_t length) {
  return std::string(text, std::min<std::size_t>(length, 200));
}

bool starts_with(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

caf::error connect(worker_state& st) {
  const auto& cfg = st.config;
  redisContext* context =
      redisConnectWithTimeout(cfg.host.c_str(), cfg.port, to_timeval(cfg.connect_timeout));
  if (!context)
    return make_error(errc::unavailable, cfg.name + ": cannot allocate a connection");
  if (context->err) {
    std::string reason = context->errstr;
    redisFree(context);
    // Nothing was sent: safe for the pool to repeat.
    return make_error(errc::unavailable,
                      error_info{cfg.name + ": cannot connect: " + reason, 0, -1, true});
  }
  redisSetTimeout(context, to_timeval(cfg.command_timeout));
  redisEnableKeepAlive(context);
  st.context.reset(context);
  st.log->debug("{} worker connected", cfg.name);
  return {};
}

void flatten(const redisReply* reply, std::vector<std::string>& out) {
  switch (reply->type) {
    case REDIS_REPLY_ARRAY:
      for (std::size_t i = 0; i < reply->elements; ++i)
        flatten(reply->element[i], out);
      break;
    case REDIS_REPLY_INTEGER:
      out.push_back(std::to_string(reply->integer));
      break;
    case REDIS_REPLY_NIL:
      out.emplace_back();
      break;
    default:  // string, status, error
      out.emplace_back(reply->str, reply->len);
  }
}

caf::expected<redis_reply> convert(const std::string& name, const redisReply* reply) {
  redis_reply out;
  switch (reply->type) {
    case REDIS_REPLY_ERROR: {
      auto message = clipped(reply->str, reply->len);
      // The server is busy or not serving yet: the dependency's trouble, not the caller's.
      for (const char* transient : {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "OOM"})
        if (starts_with(message, transient))
          return make_error(errc::unavailable, name + ": " + message);
      return make_error(errc::invalid_argument, name + ": " + message);
    }
    case REDIS_REPLY_STRING:
      out.kind = redis_reply::string;
      out.text.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_STATUS:
      out.kind = redis_reply::status;
      out.text.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.kind = redis_reply::integer;
      out.integer_value = reply->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.kind = redis_reply::array;
      for (std::size_t i = 0; i < reply->elements; ++i)
        flatten(reply->element[i], out.elements);
      break;
    default:
      out.kind = redis_reply::nil;
  }
  return out;
}

caf::expected<redis_reply> run(worker_state& st, const redis_command& command) {
  const auto& name = st.config.name;
  if (command.argv.empty())
    return make_error(errc::invalid_argument, name + ": empty command");
  block_sigpipe_on_this_thread();
  std::vector<const char*> args;
  std::vector<std::size_t> lengths;
  args.reserve(command.argv.size());
  lengths.reserve(command.argv.size());
  for (const auto& arg : command.argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  for (int attempt = 0;; ++attempt) {
    const bool fresh = !st.context;
    if (fresh)
      if (auto err = connect(st))
        return err;
    void* raw = redisCommandArgv(st.context.get(), static_cast<int>(args.size()), args.data(),
                                 lengths.data());
    const int saved_errno = errno;
    if (raw) {
      std::unique_ptr<redisReply, reply_deleter> reply{static_cast<redisReply*>(raw)};
      return convert(name, reply.get());
    }
    const int kind = st.context->err;
    std::string reason = st.context->errstr;
    st.context.reset();
    const bool timed_out = kind == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK);
    if (timed_out)
      return make_error(errc::unavailable, name + ": no reply within " +
                                               std::to_string(st.config.command_timeout.count()) +
                                               " ms");
    // A reused connection the server closed meanwhile, typically because it restarted: one retry
    // on a fresh connection hides that from the caller. Should the server instead have died right
    // after running the command, the retry runs it twice; for a cache that is acceptable.
    const bool stale = kind == REDIS_ERR_EOF || kind == REDIS_ERR_IO;
    if (fresh || attempt > 0 || !stale)
      return make_error(errc::unavailable, name + ": " + reason);
    st.log->info("{} connection was stale; reconnecting", name);
  }
}

redis_worker_actor::behavior_type worker_behavior(worker_pointer self, redis_worker_config config) {
  self->state.log = log::get(config.name);
  self->state.config = std::move(config);
  return {
      [self](command_atom, const redis_command& command) -> caf::result<redis_reply> {
        auto out = run(self->state, command);
        if (!out)
          return std::move(out.error());
        return std::move(*out);
      },
      [self](probe_atom) -> caf::result<bool> {
        auto out = run(self->state, redis_command{{"PING"}});
        if (!out)
          return std::move(out.error());
        return true;
      },
  };
}

}  // namespace

redis_worker_actor spawn_redis_worker(caf::local_actor* parent, redis_worker_config config) {
  return parent->spawn<caf::detached + caf::monitored>(worker_behavior, std::move(config));
}

}  // namespace sbm::connections::detail
