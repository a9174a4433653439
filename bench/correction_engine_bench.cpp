// Issue 17's engine speed question: how long does the correction engine take on a 1,000-word draft
// against 10, 100 and 1,000 patterns, beside plain string replacement of the same patterns (the
// baseline the issue names: "plain string replacement reaches about half of that" quality) in the
// same run?
//
// Text and patterns come from the demo InstaNote's seeded generator (actors/instanote/core), as
// `sbm eval-corrections` builds them: one pattern per speaker's systematic error, from its first
// occurrence (draft span -> reference span, the kind's report category, rectified, weight 0.6).
// The draft is the first speaker's held-out notes, joined and cut at 1,000 words; a set of N
// patterns is that speaker's own patterns (one per error), then other speakers' (each distinct
// occurrence, as QA reporting the same error again in another form would file it), so the engine
// both fixes real errors and searches for many patterns that do not occur. p50/p99 are per call.
// No servers: `build/bench/bench_correction_engine` alone; it prints the markdown table on stdout
// and Google Benchmark's console on stderr.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "actors/instanote/core/draft_generator.hpp"
#include "actors/patterns/core/correction_engine.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using sbm::patterns::correction_pattern;

constexpr std::size_t draft_words = 1000;

struct fixture {
  std::string draft;
  std::size_t words = 0;
  std::vector<correction_pattern> patterns;  // the draft's speaker's first
};

std::size_t count_words(const std::string& text) {
  std::istringstream in{text};
  std::size_t n = 0;
  for (std::string w; in >> w;) ++n;
  return n;
}

// The text up to the end of its n-th whitespace-separated word.
std::string first_words(const std::string& text, std::size_t n) {
  std::size_t i = 0, seen = 0;
  while (i < text.size() && seen < n) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i == text.size()) break;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    ++seen;
  }
  return text.substr(0, i);
}

const fixture& the_fixture() {
  static const fixture f = [] {
    sbm::instanote::generator_options o;
    o.seed = 17;
    o.speakers = 200;
    o.days = 4;
    o.drafts_per_day = 2;
    const auto data = sbm::instanote::generate(o, {});
    fixture out;
    std::set<std::pair<std::string, std::string>> texts;
    std::set<std::string> learned_from;  // job ids the first speaker's patterns came from
    std::int64_t id = 0;
    for (const auto& speaker : data.speakers) {
      const bool first = speaker.speaker_id == data.speakers.front().speaker_id;
      std::set<std::string> seen;  // error ids of the first speaker
      for (const auto& d : data.drafts) {
        if (d.speaker_id != speaker.speaker_id) continue;
        for (const auto& e : d.errors) {
          if (first) {
            if (!seen.insert(e.error_id).second) continue;
            learned_from.insert(d.job_id);
          }
          if (!texts.emplace(e.draft_span, e.reference_span).second) continue;
          out.patterns.push_back({++id, e.draft_span, e.reference_span,
                                  {std::string{sbm::instanote::category_of(e.kind)}}, "rectified", 0.6});
        }
      }
    }
    std::string joined;
    for (int pass = 0; pass < 2 && count_words(joined) < draft_words; ++pass)
      for (const auto& d : data.drafts)
        if (d.speaker_id == data.speakers.front().speaker_id && (pass > 0 || !learned_from.count(d.job_id)))
          joined += d.draft_text + "\n";
    out.draft = first_words(joined, draft_words);
    out.words = count_words(out.draft);
    return out;
  }();
  return f;
}

std::vector<correction_pattern> first_patterns(std::size_t n) {
  const auto& all = the_fixture().patterns;
  return {all.begin(), all.begin() + static_cast<std::ptrdiff_t>(std::min(n, all.size()))};
}

// Every occurrence of each pattern's original replaced by its corrected text, pattern by pattern,
// anywhere (inside longer words too): what the engine is measured against.
std::size_t plain_replace(std::string& text, const std::vector<correction_pattern>& patterns) {
  std::size_t replaced = 0;
  for (const auto& p : patterns) {
    if (p.original_text.empty()) continue;
    for (auto at = text.find(p.original_text); at != std::string::npos;
         at = text.find(p.original_text, at + p.corrected_text.size())) {
      text.replace(at, p.original_text.size(), p.corrected_text);
      ++replaced;
    }
  }
  return replaced;
}

void report(benchmark::State& state, std::vector<double>& us, std::size_t changes, std::size_t patterns) {
  if (us.empty()) return;
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  state.counters["changes"] = static_cast<double>(changes);
  state.counters["patterns"] = static_cast<double>(patterns);
  state.counters["words"] = static_cast<double>(the_fixture().words);
}

// One call per iteration; `call` answers how many changes it made.
template <class Call>
void timed(benchmark::State& state, Call call) {
  const auto patterns = first_patterns(static_cast<std::size_t>(state.range(0)));
  std::vector<double> us;
  std::size_t changes = 0;
  for (auto _ : state) {
    const auto t0 = clock_type::now();
    changes = call(patterns);
    us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
  }
  report(state, us, changes, patterns.size());
}

void BM_Engine(benchmark::State& state) {
  timed(state, [](const std::vector<correction_pattern>& patterns) {
    auto r = sbm::patterns::correct_draft(the_fixture().draft, patterns);
    benchmark::DoNotOptimize(r);
    return r.scores.applied;
  });
}

void BM_PlainReplace(benchmark::State& state) {
  timed(state, [](const std::vector<correction_pattern>& patterns) {
    std::string text = the_fixture().draft;
    const auto replaced = plain_replace(text, patterns);
    benchmark::DoNotOptimize(text);
    return replaced;
  });
}

BENCHMARK(BM_Engine)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond)->MinTime(2.0);
BENCHMARK(BM_PlainReplace)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond)->MinTime(2.0);

// Google Benchmark's console goes to stderr; the last run of each benchmark is kept for the table.
class table_reporter : public benchmark::ConsoleReporter {
 public:
  std::map<std::pair<std::string, long>, Run> runs;
  void ReportRuns(const std::vector<Run>& reports) override {
    for (const auto& r : reports)
      if (r.run_type == Run::RT_Iteration && !r.error_occurred)
        runs[{r.run_name.function_name, std::stol(r.run_name.args)}] = r;
    ConsoleReporter::ReportRuns(reports);
  }
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  table_reporter reporter;
  reporter.SetOutputStream(&std::cerr);
  reporter.SetErrorStream(&std::cerr);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("| patterns | engine p50 (us) | engine p99 (us) | corrections applied | plain replacement p50 (us) "
              "| plain p99 (us) | replacements | engine / plain (p50) |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (long n : {10L, 100L, 1000L}) {
    auto e = reporter.runs.find({"BM_Engine", n});
    auto p = reporter.runs.find({"BM_PlainReplace", n});
    if (e == reporter.runs.end() || p == reporter.runs.end()) {
      std::printf("| %ld | failed | | | | | | |\n", n);
      continue;
    }
    auto c = [](const benchmark::BenchmarkReporter::Run& r, const char* k) { return r.counters.at(k).value; };
    std::printf("| %.0f | %.0f | %.0f | %.0f | %.1f | %.1f | %.0f | %.1fx |\n", c(e->second, "patterns"),
                c(e->second, "p50_us"), c(e->second, "p99_us"), c(e->second, "changes"), c(p->second, "p50_us"),
                c(p->second, "p99_us"), c(p->second, "changes"), c(e->second, "p50_us") / c(p->second, "p50_us"));
  }
  std::printf("\nDraft: %zu words, %zu bytes.\n", the_fixture().words, the_fixture().draft.size());
  benchmark::Shutdown();
  return 0;
}
