// `sbm eval-corrections --url URL [--drafts-per-speaker N]`: how well the correction engine does on a
// seeded InstaNote database (sbm seed-instanote), by the protocol. Per speaker, one pattern
// per systematic error is built from its earliest occurrence (draft span -> reference span, as
// short as the error, the error kind's report category), as QA would file it and mark it
// rectified (weight 0.6, what a rectified report carries); then the speaker's other drafts are
// corrected and their words compared with draft_references.
//
// It drives the engine directly, in this process, not through a node's API (the HTTP version of
// the same protocol is tests/e2e/test_corrections.py): the figures are the engine's and the
// default thresholds'. Read-only on the database.
#include <pqxx/pqxx>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "actors/patterns/core/correction_engine.hpp"
#include "cli/commands.hpp"

namespace sbm::cli {

namespace {

void usage(std::ostream& out) {
  out << "usage: sbm eval-corrections --url URL [--drafts-per-speaker N] [--apply-threshold X]\n"
         "  corrects the seeded InstaNote drafts from one pattern per systematic error and prints\n"
         "  word error rate before and after, harmful edits and the share of each error kind fixed.\n"
         "exit codes: 0 done; 1 database failure; 2 bad usage\n";
}

std::vector<std::string> words(const std::string& text) {
  std::istringstream in{text};
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::size_t word_errors(const std::string& hyp, const std::string& ref) {
  auto a = words(hyp), b = words(ref);
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1] ? 1 : 0)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

struct injected {
  std::size_t start, end;
  std::string kind, reference_span;
};

}  // namespace

int eval_corrections_command(int argc, char** argv) {
  std::string url;
  std::size_t per_speaker = 1000000;
  patterns::correction_config config;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : std::string{}; };
    if (a == "--help" || a == "-h") {
      usage(std::cout);
      return 0;
    } else if (a == "--url") {
      url = value();
    } else if (a == "--drafts-per-speaker") {
      per_speaker = std::strtoull(value().c_str(), nullptr, 10);
    } else if (a == "--apply-threshold") {
      config.apply_threshold = std::strtod(value().c_str(), nullptr);
    } else {
      std::cerr << "eval-corrections: unknown argument '" << a << "'\n";
      usage(std::cerr);
      return 2;
    }
  }
  if (url.empty() || per_speaker == 0) {
    usage(std::cerr);
    return 2;
  }
  try {
    pqxx::connection conn{url};
    pqxx::read_transaction tx{conn};
    std::size_t before = 0, after = 0, total_words = 0, harmful = 0, drafts = 0;
    std::map<std::string, std::pair<std::size_t, std::size_t>> by_kind;  // kind -> fixed, seen
    for (const auto& sp : tx.exec("SELECT speaker_id FROM seed_speakers ORDER BY speaker_id")) {
      const auto speaker = sp[0].as<std::string>();
      std::vector<patterns::correction_pattern> learned;
      std::set<std::string> used_jobs;
      std::int64_t id = 0;
      for (const auto& e : tx.exec_params(
               "SELECT DISTINCT ON (e.error_id) e.job_id, e.draft_span, e.reference_span, s.category "
               "FROM draft_errors e JOIN draft_jobs j USING (job_id) JOIN speaker_errors s ON "
               "s.error_id = e.error_id WHERE j.speaker_id = $1 "
               "ORDER BY e.error_id, j.created_at, e.job_id, e.ordinal",
               speaker)) {
        used_jobs.insert(e[0].as<std::string>());
        learned.push_back({++id, e[1].as<std::string>(), e[2].as<std::string>(), {e[3].as<std::string>()},
                           "rectified", 0.6});
      }
      std::size_t n = 0;
      for (const auto& d : tx.exec_params(
               "SELECT j.job_id, j.draft_text, r.reference_text FROM draft_jobs j JOIN draft_references r "
               "USING (job_id) WHERE j.speaker_id = $1 ORDER BY j.created_at, j.job_id",
               speaker)) {
        const auto job = d[0].as<std::string>();
        if (used_jobs.count(job) || n >= per_speaker) continue;
        ++n;
        ++drafts;
        const auto draft = d[1].as<std::string>();
        const auto reference = d[2].as<std::string>();
        std::vector<injected> errors;
        for (const auto& e : tx.exec_params(
                 "SELECT draft_start, draft_end, kind, reference_span FROM draft_errors WHERE job_id = $1", job))
          errors.push_back({e[0].as<std::size_t>(), e[1].as<std::size_t>(), e[2].as<std::string>(),
                            e[3].as<std::string>()});
        const auto result = patterns::correct_draft(draft, learned, config);
        for (const auto& err : errors) {
          auto& k = by_kind[err.kind];
          ++k.second;
          for (const auto& c : result.corrections)
            if (c.applied && c.start <= err.start && err.end <= c.end && c.to.find(err.reference_span) != std::string::npos) {
              ++k.first;
              break;
            }
        }
        for (const auto& c : result.corrections) {
          if (!c.applied) continue;
          const bool on_error = std::any_of(errors.begin(), errors.end(), [&](const injected& e) {
            return e.start < c.end && c.start < e.end;
          });
          if (!on_error) harmful += words(c.from).size();
        }
        before += word_errors(draft, reference);
        after += word_errors(result.corrected_text, reference);
        total_words += words(reference).size();
      }
    }
    auto pct = [](double a, double b) { return b > 0 ? 100.0 * a / b : 0.0; };
    std::printf("drafts %zu, reference words %zu\n", drafts, total_words);
    std::printf("word errors before %zu (WER %.2f%%), after %zu (WER %.2f%%): %.1f%% of word errors cut\n",
                before, pct(before, total_words), after, pct(after, total_words),
                pct(static_cast<double>(before) - static_cast<double>(after), before));
    std::printf("harmful edits: %zu words outside any injected error (%.3f%% of words)\n", harmful,
                pct(harmful, total_words));
    for (const auto& [kind, k] : by_kind)
      std::printf("  %-15s fixed %zu of %zu (%.1f%%)\n", kind.c_str(), k.first, k.second, pct(k.first, k.second));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "eval-corrections: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace sbm::cli
