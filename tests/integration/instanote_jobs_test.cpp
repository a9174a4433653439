// The InstaNote jobs actor against real servers: the adapter's pulls (range, filters, order, cap,
// mapping to verification jobs), one job's metadata, the encrypted Redis cache, and the faults:
// Redis stopped (pulls still work from InstaNote) and InstaNote stopped (stale from cache, or 503).
#include <gtest/gtest.h>
#include <pqxx/pqxx>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "actors/connections/connections.hpp"
#include "actors/instanote/job_cache.hpp"
#include "actors/instanote/jobs_actor.hpp"
#include "messages/errors.hpp"
#include "messages/instanote.hpp"
#include "runtime/crypto/fernet.hpp"
#include "tests/support/actor_test.hpp"
#include "tests/support/servers.hpp"

namespace {

using namespace std::chrono_literals;
using sbm::errc;
using sbm::job_pull;
using sbm::job_pull_request;
using sbm::verification_job;

// 2026-11-01T00:00:00Z
constexpr std::int64_t day0_ms = 1793491200000;
constexpr std::int64_t hour_ms = 3600 * 1000;

// The README's draft_jobs, with 15 jobs of spk-1 an hour apart (job-00 oldest) and 2 of spk-2.
void seed(const std::string& url) {
  pqxx::connection c{url};
  pqxx::work tx{c};
  tx.exec("CREATE TABLE public.draft_jobs (job_id text PRIMARY KEY, speaker_id text NOT NULL, "
          "client_id text NOT NULL, draft_text text NOT NULL, audio_metadata jsonb NOT NULL "
          "DEFAULT '{}', error_types text[] NOT NULL DEFAULT '{}', source_system text NOT NULL "
          "DEFAULT 'instanote', created_at timestamptz NOT NULL)");
  for (int i = 0; i < 15; ++i) {
    auto id = std::string{"job-"} + (i < 10 ? "0" : "") + std::to_string(i);
    auto types = i % 3 == 0 ? "{drug_name}" : (i % 3 == 1 ? "{homophone,dosage}" : "{}");
    auto meta = i == 4 ? std::string{"{}"}
                       : "{\"quality\": \"fair\", \"duration\": " + std::to_string(60 + i) + ".5}";
    tx.exec_params("INSERT INTO public.draft_jobs VALUES ($1, 'spk-1', 'st-mary', $2, $3::jsonb, "
                   "$4::text[], 'instanote', to_timestamp($5::bigint / 1000.0))",
                   id, "Patient note " + std::to_string(i) + ": metoprolol 25 mg.", meta, types,
                   day0_ms + i * hour_ms);
  }
  tx.exec("INSERT INTO public.draft_jobs (job_id, speaker_id, client_id, draft_text, created_at) "
          "VALUES ('other-1', 'spk-2', 'st-mary', 'x', to_timestamp(1793491200)), "
          "('other-2', 'spk-2', 'st-mary', 'y', to_timestamp(1793494800))");
  tx.commit();
}

std::vector<std::string> ids(const job_pull& p) {
  std::vector<std::string> out;
  for (const auto& j : p.jobs)
    out.push_back(j.job_id);
  return out;
}

job_pull_request whole_day(std::string speaker = "spk-1") {
  job_pull_request r;
  r.speaker_id = std::move(speaker);
  r.from_ms = day0_ms;
  r.to_ms = day0_ms + 24 * hour_ms;
  return r;
}

class InstanoteJobs : public sbm::test::io_actor_test {
 protected:
  sbm::postgres_actor instanote_for(const std::string& url) {
    auto s = sbm::connections::instanote_defaults(url);
    s.probe_interval = 100ms;
    s.request_timeout = 5s;
    s.connect_timeout = 2s;
    s.breaker = sbm::resilience::breaker_policy{3, 2s};
    s.restart_backoff = sbm::resilience::backoff_policy{3, 20ms, 200ms, 0.0};
    return stop_at_end(sbm::connections::spawn_postgres(sys, std::move(s)));
  }

  sbm::redis_actor redis_for(const sbm::test::servers& servers) {
    sbm::connections::redis_settings s;
    s.host = servers.redis_host();
    s.port = static_cast<std::uint16_t>(servers.redis_port());
    s.probe_interval = 100ms;
    s.request_timeout = 2s;
    s.connect_timeout = 1s;
    s.command_timeout = 1s;
    s.restart_backoff = sbm::resilience::backoff_policy{3, 20ms, 200ms, 0.0};
    return stop_at_end(sbm::connections::spawn_redis(sys, std::move(s)));
  }

  sbm::instanote::jobs_settings settings(sbm::postgres_actor in, sbm::redis_actor redis) {
    sbm::instanote::jobs_settings s;
    s.instanote = std::move(in);
    s.redis = std::move(redis);
    s.cache_key = key;
    s.cache_fresh_for = 0s;  // every pull asks InstaNote unless a test wants the cache first
    s.instanote_timeout = 5s;
    s.cache_timeout = 1s;
    s.max_jobs_cap = 12;
    return s;
  }

  sbm::instanote_actor jobs(sbm::instanote::jobs_settings s) {
    return stop_at_end(sbm::instanote::spawn_jobs(sys, std::move(s)));
  }

  caf::expected<job_pull> pull(const sbm::instanote_actor& a, const job_pull_request& r) {
    return ask<job_pull>(a, sbm::pull_atom::value, r);
  }

  // InstaNote's pool connects lazily after the first probe: wait until a pull answers.
  job_pull first_pull(const sbm::instanote_actor& a, const job_pull_request& r) {
    caf::expected<job_pull> got{caf::error{}};
    EXPECT_TRUE(sbm::test::eventually([&] {
      got = pull(a, r);
      return got && got->source == "instanote";
    })) << (got ? got->source : caf::to_string(got.error()));
    return got ? *got : job_pull{};
  }

  std::string redis_get(const sbm::redis_actor& redis, const std::string& k) {
    auto r = ask<sbm::redis_reply>(redis, sbm::command_atom::value, sbm::redis_command{{"GET", k}});
    return r && r->kind == sbm::redis_reply::string ? r->text : std::string{};
  }

  const std::string key = sbm::crypto::fernet::generate_key();
};

TEST_F(InstanoteJobs, PullsNewestFirstWithinTheRangeFilteredAndCapped) {
  auto url = sbm::test::servers::shared().fresh_database();
  seed(url);
  auto a = jobs(settings(instanote_for(url), sbm::redis_actor{}));

  auto all = first_pull(a, whole_day());
  // Default max_jobs 10, newest first.
  EXPECT_EQ(ids(all), (std::vector<std::string>{"job-14", "job-13", "job-12", "job-11", "job-10",
                                                "job-09", "job-08", "job-07", "job-06", "job-05"}));
  EXPECT_FALSE(all.stale);
  const auto& j = all.jobs.front();
  EXPECT_EQ(j.speaker_id, "spk-1");
  EXPECT_EQ(j.client_id, "st-mary");
  EXPECT_EQ(j.original_draft, "Patient note 14: metoprolol 25 mg.");
  EXPECT_EQ(j.created_at_ms, day0_ms + 14 * hour_ms);
  EXPECT_EQ(j.audio_quality, "fair");
  ASSERT_TRUE(j.duration_s);
  EXPECT_DOUBLE_EQ(*j.duration_s, 74.5);
  EXPECT_EQ(j.source_system, "instanote");
  EXPECT_GT(j.retrieved_at_ms, 0);

  // [from, to): job-02 at +2h is in, job-05 at +5h is out.
  auto range = whole_day();
  range.from_ms = day0_ms + 2 * hour_ms;
  range.to_ms = day0_ms + 5 * hour_ms;
  auto r = pull(a, range);
  ASSERT_TRUE(r) << caf::to_string(r.error());
  EXPECT_EQ(ids(*r), (std::vector<std::string>{"job-04", "job-03", "job-02"}));
  // No quality or duration in audio_metadata: "unknown" and none.
  EXPECT_EQ(r->jobs.front().audio_quality, "unknown");
  EXPECT_FALSE(r->jobs.front().duration_s);

  auto typed = whole_day();
  typed.error_types = {"dosage"};
  typed.max_jobs = 3;
  r = pull(a, typed);
  ASSERT_TRUE(r);
  EXPECT_EQ(ids(*r), (std::vector<std::string>{"job-13", "job-10", "job-07"}));
  EXPECT_EQ(r->jobs.front().error_types, (std::vector<std::string>{"homophone", "dosage"}));

  auto capped = whole_day();
  capped.max_jobs = 1000;
  r = pull(a, capped);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->jobs.size(), 12u);  // the cap, not 1000 and not all 15

  // A filter value is a parameter, never SQL text.
  auto hostile = whole_day("spk-1' OR '1'='1");
  r = pull(a, hostile);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->jobs.empty());

  auto other = pull(a, whole_day("spk-2"));
  ASSERT_TRUE(other);
  EXPECT_EQ(ids(*other), (std::vector<std::string>{"other-2", "other-1"}));
  EXPECT_EQ(other->jobs.front().audio_quality, "unknown");

  auto meta = ask<verification_job>(a, sbm::job_atom::value, std::string{"job-07"});
  ASSERT_TRUE(meta) << caf::to_string(meta.error());
  EXPECT_EQ(meta->speaker_id, "spk-1");
  EXPECT_EQ(meta->created_at_ms, day0_ms + 7 * hour_ms);
  auto missing = ask<verification_job>(a, sbm::job_atom::value, std::string{"job-99"});
  EXPECT_EQ(sbm::test::code(missing), errc::not_found);

  auto health = ask<sbm::dependency_status>(a, sbm::status_atom::value);
  ASSERT_TRUE(health);
  EXPECT_EQ(health->name, "instanote");
  EXPECT_TRUE(health->up);

  auto backwards = whole_day();
  backwards.to_ms = backwards.from_ms;
  EXPECT_EQ(sbm::test::code(pull(a, backwards)), errc::invalid_argument);
}

TEST_F(InstanoteJobs, CachesEncryptedCopiesAndAnswersFromAFreshOne) {
  auto& srv = sbm::test::servers::shared();
  auto url = srv.fresh_database();
  seed(url);
  auto redis = redis_for(srv);
  auto s = settings(instanote_for(url), redis);
  s.cache_fresh_for = 1h;
  auto a = jobs(s);
  // Unique per run: the shared Redis outlives this process.
  auto req = whole_day();
  req.speaker_id = "spk-1";
  req.from_ms = day0_ms + (::getpid() % 1000);
  auto first = first_pull(a, req);
  EXPECT_EQ(first.source, "instanote");
  EXPECT_TRUE(first.cached);

  const auto k = sbm::instanote::cache_key(req);
  EXPECT_EQ(k.rfind("speaker_jobs:spk-1:", 0), 0u) << k;
  auto token = redis_get(redis, k);
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(token.find("metoprolol"), std::string::npos) << "drafts must not sit in Redis in clear";
  auto plain = sbm::crypto::fernet::from_key(key)->decrypt(token);
  ASSERT_TRUE(plain);
  auto decoded = sbm::instanote::decode_cached(*plain);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->jobs.size(), first.jobs.size());
  auto ttl = ask<sbm::redis_reply>(redis, sbm::command_atom::value, sbm::redis_command{{"TTL", k}});
  ASSERT_TRUE(ttl);
  EXPECT_GT(ttl->integer_value, 3500);
  EXPECT_LE(ttl->integer_value, 3600);

  auto second = pull(a, req);
  ASSERT_TRUE(second) << caf::to_string(second.error());
  EXPECT_EQ(second->source, "cache");
  EXPECT_FALSE(second->stale);
  EXPECT_EQ(ids(*second), ids(first));
  EXPECT_EQ(second->jobs.front().original_draft, first.jobs.front().original_draft);

  // The order of error types does not change the key; another filter does.
  auto ab = req, ba = req, other = req;
  ab.error_types = {"dosage", "homophone"};
  ba.error_types = {"homophone", "dosage"};
  other.error_types = {"dosage"};
  EXPECT_EQ(sbm::instanote::cache_key(ab), sbm::instanote::cache_key(ba));
  EXPECT_NE(sbm::instanote::cache_key(ab), sbm::instanote::cache_key(other));
  EXPECT_NE(sbm::instanote::cache_key(ab), k);
}

// Issue 21: a scoped caller gets only its clients' jobs, from InstaNote and from a cached copy
// alike (the cache holds the pull for everyone; the scope is applied to every answer).
TEST_F(InstanoteJobs, AScopedCallerGetsOnlyItsClientsJobsFromInstanoteAndFromTheCache) {
  auto& srv = sbm::test::servers::shared();
  auto url = srv.fresh_database();
  seed(url);
  auto s = settings(instanote_for(url), redis_for(srv));
  s.cache_fresh_for = 1h;
  auto a = jobs(s);
  auto req = whole_day();
  req.from_ms = day0_ms + 1000 + (::getpid() % 1000);  // unique per run: the shared Redis outlives it
  auto other = req;
  other.scope = {true, {"another-hospital"}};
  auto fresh = first_pull(a, other);  // from InstaNote, the copy cached
  EXPECT_EQ(fresh.source, "instanote");
  EXPECT_TRUE(fresh.jobs.empty()) << ids(fresh).size();

  auto unscoped = pull(a, req);
  ASSERT_TRUE(unscoped) << caf::to_string(unscoped.error());
  EXPECT_EQ(unscoped->source, "cache");
  EXPECT_EQ(unscoped->jobs.size(), 10u);
  auto cached_other = pull(a, other);
  ASSERT_TRUE(cached_other) << caf::to_string(cached_other.error());
  EXPECT_EQ(cached_other->source, "cache");
  EXPECT_TRUE(cached_other->jobs.empty());
  auto mine = req;
  mine.scope = {true, {"another-hospital", "st-mary"}};
  auto cached_mine = pull(a, mine);
  ASSERT_TRUE(cached_mine) << caf::to_string(cached_mine.error());
  EXPECT_EQ(ids(*cached_mine), ids(*unscoped));
}

TEST_F(InstanoteJobs, RedisStoppedPullsStillComeFromInstanote) {
  auto servers = sbm::test::servers::start_private();
  auto url = servers->instanote_url();
  seed(url);
  auto redis = redis_for(*servers);
  auto a = jobs(settings(instanote_for(url), redis));
  auto before = first_pull(a, whole_day());
  EXPECT_TRUE(before.cached);

  servers->stop_redis();
  for (int i = 0; i < 6; ++i) {  // past the Redis breaker's threshold, so both paths are seen
    auto r = pull(a, whole_day());
    ASSERT_TRUE(r) << caf::to_string(r.error());
    EXPECT_EQ(r->source, "instanote");
    EXPECT_FALSE(r->cached);
    EXPECT_EQ(ids(*r), ids(before));
  }
}

TEST_F(InstanoteJobs, InstanoteStoppedServesTheCachedCopyAsStaleOrAnswersUnavailable) {
  auto servers = sbm::test::servers::start_private();
  auto url = servers->instanote_url();
  seed(url);
  auto s = settings(instanote_for(url), redis_for(*servers));
  s.default_retry_after = 7s;
  const std::int64_t fixed_now = day0_ms + 30 * hour_ms;
  s.now_ms = [fixed_now] { return fixed_now; };
  auto a = jobs(s);
  auto fresh = first_pull(a, whole_day());
  ASSERT_TRUE(fresh.cached);
  EXPECT_EQ(fresh.jobs.front().retrieved_at_ms, fixed_now);

  servers->stop_postgres();
  // Until the breaker opens the pulls fail on the dead server; after, at once. Both are stale.
  for (int i = 0; i < 5; ++i) {
    auto r = pull(a, whole_day());
    ASSERT_TRUE(r) << caf::to_string(r.error());
    EXPECT_EQ(r->source, "cache");
    EXPECT_TRUE(r->stale);
    EXPECT_EQ(r->stale_since_ms, fixed_now);
    EXPECT_FALSE(r->stale_reason.empty());
    EXPECT_EQ(ids(*r), ids(fresh));
  }
  auto uncached = whole_day();
  uncached.max_jobs = 3;
  auto none = pull(a, uncached);
  ASSERT_FALSE(none);
  EXPECT_EQ(sbm::code_of(none.error()), errc::unavailable);
  // Typed: the breaker's own remaining time when it refused, else the configured 7 s.
  auto retry = sbm::retry_after_of(none.error());
  ASSERT_TRUE(retry) << sbm::detail_of(none.error());
  EXPECT_GT(retry->count(), 0);

  // The server returns: pulls come from InstaNote again, with no restart of anything.
  servers->start_postgres();
  EXPECT_TRUE(sbm::test::eventually([&] {
    auto r = pull(a, uncached);
    return r && r->source == "instanote" && r->jobs.size() == 3;
  }, 90s));
}

}  // namespace
