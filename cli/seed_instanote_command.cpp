// `sbm seed-instanote`: fills a development InstaNote database with realistic ASR drafts, their
// clean references and each speaker's systematic errors (the ground truth correction quality is
// measured on). InstaNote is an external system SBM only reads; this command stands in for it, so
// it writes with libpqxx directly, in one transaction, from a process that is not a node.
#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdint>
#include <iostream>
#include <map>
#include <pqxx/pqxx>
#include <string>

#include "actors/instanote/core/draft_generator.hpp"
#include "cli/commands.hpp"

namespace sbm::cli {

namespace {

constexpr const char* default_dictionary = "/usr/share/hunspell/en_med_glut.dic";

void usage(std::ostream& out) {
  out << "usage: sbm seed-instanote --url URL [--seed N] [--speakers N] [--days D]\n"
         "                          [--drafts-per-day N] [--start YYYY-MM-DD] [--dictionary FILE]\n"
         "                          [--replace]\n"
         "\n"
         "Creates the InstaNote tables if missing (draft_jobs, and beside it what the node never\n"
         "reads: draft_references, draft_errors, speaker_errors, seed_speakers) and fills them for\n"
         "N speakers over D days, the same data for the same options.\n"
         "\n"
         "  --url URL            libpq URL or key=value string of the InstaNote database; a\n"
         "                       password comes from the URL, PGPASSWORD or ~/.pgpass\n"
         "  --seed N             random seed (default 1)\n"
         "  --speakers N         2.." << instanote::max_speakers << " (default 10)\n"
         "  --days D             1.." << instanote::max_days << " (default 30)\n"
         "  --drafts-per-day N   per speaker, 1.." << instanote::max_drafts_per_day << " (default 2)\n"
         "  --start YYYY-MM-DD   day 0, UTC (default 2026-11-01)\n"
         "  --dictionary FILE    hunspell .dic word list for extra vocabulary\n"
         "                       (default " << default_dictionary << ", package hunspell-en-med)\n"
         "  --replace            empty the seeded tables first (otherwise a database that already\n"
         "                       holds drafts is refused)\n"
         "\n"
         "exit codes: 0 seeded; 1 database failure; 2 bad usage or unreadable dictionary;\n"
         "            4 the database already holds drafts (use --replace)\n";
}

const char* schema_sql = R"SQL(
CREATE TABLE IF NOT EXISTS public.draft_jobs (
  job_id         text PRIMARY KEY,
  speaker_id     text NOT NULL,
  client_id      text NOT NULL,
  draft_text     text NOT NULL,
  audio_metadata jsonb NOT NULL DEFAULT '{}',
  error_types    text[] NOT NULL DEFAULT '{}',
  source_system  text NOT NULL DEFAULT 'instanote',
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS draft_jobs_speaker_created
  ON public.draft_jobs (speaker_id, created_at DESC, job_id DESC);
CREATE TABLE IF NOT EXISTS public.draft_references (
  job_id         text PRIMARY KEY REFERENCES public.draft_jobs ON DELETE CASCADE,
  reference_text text NOT NULL
);
CREATE TABLE IF NOT EXISTS public.seed_speakers (
  speaker_id    text PRIMARY KEY,
  client_id     text NOT NULL,
  audio_quality text NOT NULL,
  error_rate    double precision NOT NULL,
  colleagues    text[] NOT NULL
);
CREATE TABLE IF NOT EXISTS public.speaker_errors (
  error_id        text PRIMARY KEY,
  speaker_id      text NOT NULL REFERENCES public.seed_speakers ON DELETE CASCADE,
  kind            text NOT NULL,
  category        text NOT NULL,
  clean_form      text NOT NULL,
  erroneous_forms text[] NOT NULL,
  context         text NOT NULL DEFAULT '',
  occurrences     integer NOT NULL
);
CREATE TABLE IF NOT EXISTS public.draft_errors (
  job_id          text NOT NULL REFERENCES public.draft_jobs ON DELETE CASCADE,
  ordinal         integer NOT NULL,
  error_id        text NOT NULL REFERENCES public.speaker_errors ON DELETE CASCADE,
  kind            text NOT NULL,
  draft_start     integer NOT NULL,
  draft_end       integer NOT NULL,
  reference_start integer NOT NULL,
  reference_end   integer NOT NULL,
  draft_span      text NOT NULL,
  reference_span  text NOT NULL,
  PRIMARY KEY (job_id, ordinal)
);
CREATE INDEX IF NOT EXISTS draft_errors_error ON public.draft_errors (error_id);
)SQL";

bool parse_u32(const std::string& text, std::uint32_t lo, std::uint32_t hi, std::uint32_t& out) {
  std::uint32_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || v < lo || v > hi)
    return false;
  out = v;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool parse_date(const std::string& text, std::int64_t& unix_seconds) {
  std::uint32_t y = 0, m = 0, d = 0;
  if (text.size() != 10 || text[4] != '-' || text[7] != '-' ||
      !parse_u32(text.substr(0, 4), 1970, 9999, y) || !parse_u32(text.substr(5, 2), 1, 12, m) ||
      !parse_u32(text.substr(8, 2), 1, 31, d))
    return false;
  static const unsigned month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > month_days[m - 1] || (m == 2 && d == 29 && !leap))
    return false;
  unix_seconds = days_from_civil(y, m, d) * 86400;
  return true;
}

nlohmann::json audio_metadata(const instanote::draft& d) {
  return {{"quality", d.audio_quality},
          {"duration", d.duration_seconds},
          {"sample_rate_hz", 16000},
          {"channels", 1},
          {"codec", "opus"}};
}

void write(pqxx::connection& c, const instanote::seeded_data& data, bool replace, bool& refused) {
  pqxx::work tx{c};
  tx.exec(schema_sql);
  if (replace) {
    tx.exec("TRUNCATE public.draft_errors, public.speaker_errors, public.seed_speakers, "
            "public.draft_references, public.draft_jobs");
  } else if (tx.exec("SELECT 1 FROM public.draft_jobs LIMIT 1").size() > 0) {
    refused = true;
    return;
  }
  c.prepare("seed_speaker",
            "INSERT INTO public.seed_speakers VALUES ($1, $2, $3, $4, "
            "ARRAY(SELECT jsonb_array_elements_text($5::jsonb)))");
  c.prepare("seed_error",
            "INSERT INTO public.speaker_errors (error_id, speaker_id, kind, category, clean_form, "
            "erroneous_forms, context, occurrences) VALUES ($1, $2, $3, $4, $5, "
            "ARRAY(SELECT jsonb_array_elements_text($6::jsonb)), $7, $8)");
  c.prepare("seed_job",
            "INSERT INTO public.draft_jobs (job_id, speaker_id, client_id, draft_text, "
            "audio_metadata, error_types, source_system, created_at) VALUES ($1, $2, $3, $4, "
            "$5::jsonb, ARRAY(SELECT jsonb_array_elements_text($6::jsonb)), 'instanote', "
            "to_timestamp($7))");
  c.prepare("seed_reference", "INSERT INTO public.draft_references VALUES ($1, $2)");
  c.prepare("seed_draft_error",
            "INSERT INTO public.draft_errors VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
  std::map<std::string, int> occurrences;
  for (const auto& d : data.drafts)
    for (const auto& e : d.errors)
      ++occurrences[e.error_id];
  for (const auto& s : data.speakers) {
    tx.exec_prepared("seed_speaker", s.speaker_id, s.client_id, s.audio_quality, s.error_rate,
                     nlohmann::json(s.colleagues).dump());
    for (const auto& e : s.errors)
      tx.exec_prepared("seed_error", e.error_id, s.speaker_id, std::string{instanote::kind_name(e.kind)},
                       std::string{instanote::category_of(e.kind)}, e.clean_form,
                       nlohmann::json(e.erroneous_forms).dump(), e.context, occurrences[e.error_id]);
  }
  for (const auto& d : data.drafts) {
    tx.exec_prepared("seed_job", d.job_id, d.speaker_id, d.client_id, d.draft_text,
                     audio_metadata(d).dump(), nlohmann::json(d.error_types).dump(), d.created_at);
    tx.exec_prepared("seed_reference", d.job_id, d.reference_text);
    int ordinal = 0;
    for (const auto& e : d.errors)
      tx.exec_prepared("seed_draft_error", d.job_id, ++ordinal, e.error_id,
                       std::string{instanote::kind_name(e.kind)}, e.draft_begin, e.draft_end,
                       e.reference_begin, e.reference_end, e.draft_span, e.reference_span);
  }
  tx.commit();
}

}  // namespace

int seed_instanote_command(int argc, char** argv) {
  std::string url, dictionary = default_dictionary;
  instanote::generator_options options;
  bool replace = false;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(std::cout);
      return 0;
    }
    if (arg == "--replace") {
      replace = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::cerr << "sbm seed-instanote: " << (arg.rfind("--", 0) == 0 ? "option '" + arg + "' needs a value"
                                                                        : "unexpected argument '" + arg + "'")
                << "\n";
      usage(std::cerr);
      return 2;
    }
    const std::string value = argv[++i];
    bool ok = true;
    if (arg == "--url") {
      url = value;
      ok = !url.empty();
    } else if (arg == "--seed") {
      std::uint64_t v = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      ok = ec == std::errc{} && end == value.data() + value.size();
      options.seed = v;
    } else if (arg == "--speakers") {
      ok = parse_u32(value, 2, instanote::max_speakers, options.speakers);
    } else if (arg == "--days") {
      ok = parse_u32(value, 1, instanote::max_days, options.days);
    } else if (arg == "--drafts-per-day") {
      ok = parse_u32(value, 1, instanote::max_drafts_per_day, options.drafts_per_day);
    } else if (arg == "--start") {
      ok = parse_date(value, options.start);
    } else if (arg == "--dictionary") {
      dictionary = value;
    } else {
      std::cerr << "sbm seed-instanote: unknown option '" << arg << "'\n";
      usage(std::cerr);
      return 2;
    }
    if (!ok) {
      std::cerr << "sbm seed-instanote: option '" << arg << "' has an invalid value '" << value
                << "' (see --help for the range)\n";
      return 2;
    }
  }
  if (url.empty()) {
    std::cerr << "sbm seed-instanote: --url is required\n";
    usage(std::cerr);
    return 2;
  }
  std::string error;
  auto vocabulary = instanote::load_vocabulary(dictionary, &error);
  if (!vocabulary) {
    std::cerr << "sbm seed-instanote: " << error << " (install hunspell-en-med or pass --dictionary)\n";
    return 2;
  }
  const auto data = instanote::generate(options, *vocabulary);
  std::size_t errors = 0;
  for (const auto& d : data.drafts)
    errors += d.errors.size();
  try {
    pqxx::connection c{url};
    bool refused = false;
    write(c, data, replace, refused);
    if (refused) {
      std::cerr << "sbm seed-instanote: the database already holds drafts; pass --replace to "
                   "empty the seeded tables first\n";
      return 4;
    }
  } catch (const std::exception& e) {
    std::string what = e.what();
    std::cerr << "sbm seed-instanote: " << what.substr(0, what.find('\n')) << "\n";
    return 1;
  }
  std::cout << "seeded " << data.drafts.size() << " drafts for " << data.speakers.size()
            << " speakers over " << options.days << " days (seed " << options.seed << ", "
            << errors << " injected errors, " << vocabulary->size() << " extra words)\n";
  return 0;
}

}  // namespace sbm::cli
