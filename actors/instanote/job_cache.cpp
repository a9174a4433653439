#include "actors/instanote/job_cache.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <algorithm>

#include "messages/errors.hpp"

namespace sbm::instanote {

namespace {

constexpr int cache_format = 1;

std::string sha256_hex(std::string_view text, std::size_t digits) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size && out.size() < digits; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace

std::string cache_key(const job_pull_request& r) {
  auto types = r.error_types;
  std::sort(types.begin(), types.end());
  types.erase(std::unique(types.begin(), types.end()), types.end());
  // JSON keeps the parts apart whatever bytes they hold.
  nlohmann::json parts{r.from_ms, r.to_ms, types, r.max_jobs};
  return "speaker_jobs:" + r.speaker_id + ":" + sha256_hex(parts.dump(), 32);
}

std::string encode_cached(const cached_pull& pull) {
  nlohmann::json jobs = nlohmann::json::array();
  for (const auto& j : pull.jobs) {
    nlohmann::json o{{"job_id", j.job_id},
                     {"speaker_id", j.speaker_id},
                     {"client_id", j.client_id},
                     {"original_draft", j.original_draft},
                     {"created_at_ms", j.created_at_ms},
                     {"audio_quality", j.audio_quality},
                     {"source_system", j.source_system},
                     {"error_types", j.error_types},
                     {"retrieved_at_ms", j.retrieved_at_ms}};
    if (j.duration_s)
      o["duration_s"] = *j.duration_s;
    jobs.push_back(std::move(o));
  }
  return nlohmann::json{{"format", cache_format}, {"cached_at_ms", pull.cached_at_ms}, {"jobs", jobs}}
    .dump();
}

std::optional<cached_pull> decode_cached(std::string_view text) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_object() || doc.value("format", 0) != cache_format)
    return std::nullopt;
  try {
    cached_pull out;
    out.cached_at_ms = doc.at("cached_at_ms").get<std::int64_t>();
    for (const auto& o : doc.at("jobs")) {
      verification_job j;
      j.job_id = o.at("job_id").get<std::string>();
      j.speaker_id = o.at("speaker_id").get<std::string>();
      j.client_id = o.at("client_id").get<std::string>();
      j.original_draft = o.at("original_draft").get<std::string>();
      j.created_at_ms = o.at("created_at_ms").get<std::int64_t>();
      j.audio_quality = o.at("audio_quality").get<std::string>();
      j.source_system = o.at("source_system").get<std::string>();
      j.error_types = o.at("error_types").get<std::vector<std::string>>();
      j.retrieved_at_ms = o.at("retrieved_at_ms").get<std::int64_t>();
      if (o.contains("duration_s"))
        j.duration_s = o.at("duration_s").get<double>();
      out.jobs.push_back(std::move(j));
    }
    return out;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

namespace {

class redis_cache final : public cache {
 public:
  explicit redis_cache(redis_runner run) : run_(std::move(run)) {}

  void get(const std::string& key, db::completion<std::optional<std::string>> done) override {
    run_(redis_command{{"GET", key}}, [done](caf::expected<redis_reply> reply) {
      if (!reply) return done(std::move(reply.error()));
      if (reply->kind == redis_reply::string) return done(std::optional<std::string>{std::move(reply->text)});
      if (reply->kind == redis_reply::nil) return done(std::optional<std::string>{});
      done(make_error(errc::unavailable, "redis: GET answered " + reply->text));
    });
  }

  void put(const std::string& key, std::string value, std::chrono::seconds ttl, db::completion<bool> done) override {
    run_(redis_command{{"SET", key, std::move(value), "EX", std::to_string(ttl.count())}},
         [done](caf::expected<redis_reply> reply) {
           if (!reply) return done(std::move(reply.error()));
           if (reply->kind == redis_reply::status) return done(true);
           done(make_error(errc::unavailable, "redis: SET answered " + reply->text));
         });
  }

 private:
  redis_runner run_;
};

}  // namespace

std::unique_ptr<cache> make_redis_cache(redis_runner run) { return std::make_unique<redis_cache>(std::move(run)); }

}  // namespace sbm::instanote
