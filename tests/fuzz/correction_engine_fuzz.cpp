// libFuzzer target for the correction engine (actors/patterns/core/correction_engine.cpp). The
// input is split at NUL bytes: the first piece is the draft, then (original, corrected) pairs make
// patterns; the first byte of the input picks status, weight and category of every pattern, so
// pending, rectified, fuzzy-free and floor-dropped patterns are all reached. When that byte is 0xFF
// the draft is repeated (one line each) past 1 MiB, so the engine's size limits are fuzzed too
// (one input in 256: a mebibyte costs a second or so under ASan). Besides crashes and
// sanitizer reports it aborts when a promise is broken:
//   - every correction's span lies in the draft, holds exactly its `from`, and spans are sorted
//     and never overlap;
//   - corrected_text is the draft with the applied corrections put in, nothing else;
//   - on a valid UTF-8 draft (what the gateway lets through), every span starts and ends on a code
//     point boundary;
//   - draft_segments() ranges are sorted, disjoint and inside the draft.
// Build: -DSBM_FUZZ=ON with clang (tests/fuzz/CMakeLists.txt). Run e.g.
//   build-fuzz/tests/fuzz/fuzz_correction_engine -max_total_time=60 -max_len=4096
#include "actors/patterns/core/correction_engine.hpp"
#include "runtime/text/utf8.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace sbm::patterns;

void require(bool ok) {
  if (!ok) std::abort();
}

bool boundary(std::string_view s, std::size_t at) {
  return at == s.size() || (static_cast<unsigned char>(s[at]) & 0xC0) != 0x80;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t knobs = data[0];
  std::string_view in{reinterpret_cast<const char*>(data + 1), size - 1};
  std::vector<std::string_view> pieces;
  while (true) {
    auto nul = in.find('\0');
    pieces.push_back(in.substr(0, nul));
    if (nul == std::string_view::npos) break;
    in.remove_prefix(nul + 1);
  }
  std::string draft{pieces[0]};
  if (knobs == 0xFF && !draft.empty()) {
    const std::string line = draft + "\n";
    draft.clear();
    while (draft.size() < (1u << 20)) draft += line;
  }
  static const char* statuses[] = {"rectified", "pending", "not_rectified", "rectified"};
  static const char* categories[] = {"medical_terminology", "homophone", "dosage", "speaker_attribution"};
  std::vector<correction_pattern> patterns;
  for (std::size_t i = 1; i + 1 < pieces.size() && patterns.size() < 64; i += 2) {
    correction_pattern p;
    p.pattern_id = static_cast<std::int64_t>(i);
    p.original_text = std::string{pieces[i]};
    p.corrected_text = std::string{pieces[i + 1]};
    p.status = statuses[(knobs + i) % 4];
    p.error_categories = {categories[(knobs >> 2) % 4]};
    p.weight = ((knobs >> 4) + i) % 11 / 10.0;
    patterns.push_back(std::move(p));
  }
  correction_config config;
  config.fuzzy_min_length = 1 + knobs % 6;
  const auto r = correct_draft(draft, patterns, config);
  const bool valid = sbm::text::valid_utf8(draft);
  require(r.original_text == draft);
  std::string rebuilt;
  std::size_t at = 0, prev_end = 0;
  for (const auto& c : r.corrections) {
    require(prev_end <= c.start && c.start < c.end && c.end <= draft.size());
    require(draft.compare(c.start, c.end - c.start, c.from) == 0);
    require(!valid || (boundary(draft, c.start) && boundary(draft, c.end)));
    require(c.confidence >= 0 && c.confidence <= 1);
    prev_end = c.end;
    if (c.applied) {
      rebuilt.append(draft, at, c.start - at);
      rebuilt += c.to;
      at = c.end;
    }
  }
  rebuilt.append(draft, at, std::string::npos);
  require(rebuilt == r.corrected_text);
  std::size_t seg_end = 0;
  for (const auto& [b, e] : draft_segments(draft, 1 + knobs % 50)) {
    require(seg_end <= b && b < e && e <= draft.size());
    seg_end = e;
  }
  return 0;
}
