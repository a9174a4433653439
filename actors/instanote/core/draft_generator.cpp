#include "actors/instanote/core/draft_generator.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <utility>

#include "actors/instanote/core/clinical_tables.hpp"

namespace sbm::instanote {

std::string_view kind_name(error_kind kind) {
  switch (kind) {
    case error_kind::split_word: return "split_word";
    case error_kind::vowel_slip: return "vowel_slip";
    case error_kind::drug_near_miss: return "drug_near_miss";
    case error_kind::dropped_unit: return "dropped_unit";
    case error_kind::homophone: return "homophone";
    case error_kind::surname: return "surname";
  }
  return "unknown";
}

std::string_view category_of(error_kind kind) {
  switch (kind) {
    case error_kind::split_word: return "medical_terminology";
    case error_kind::vowel_slip: return "medical_terminology";
    case error_kind::drug_near_miss: return "drug_name";
    case error_kind::dropped_unit: return "dosage";
    case error_kind::homophone: return "homophone";
    // A colleague named in the note is attributed to the wrong person: the closest of SPEC's
    // categories (there is no "proper name" one).
    case error_kind::surname: return "speaker_attribution";
  }
  return "unknown";
}

namespace {

// splitmix64: tiny, fast, and the same sequence on every platform (std:: distributions are not).
class rng {
 public:
  explicit rng(std::uint64_t seed) : state_{seed} {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) {
    return n == 0 ? 0 : static_cast<std::size_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  bool chance(double p) { return unit() < p; }
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }

 private:
  std::uint64_t state_;
};

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  rng r{a ^ (b * 0xd6e8feb86659fd93ULL)};
  r.next();
  return r.next();
}

bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '\'' || c == '-';
}
bool is_vowel(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string capitalise(std::string s) {
  if (!s.empty())
    s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

// Does `text` (already lower case) hold `needle` (lower case) as whole words?
bool holds_words(const std::string& text, const std::string& needle) {
  if (needle.empty())
    return false;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    const bool left = at == 0 || !is_word_char(text[at - 1]);
    const auto end = at + needle.size();
    const bool right = end >= text.size() || !is_word_char(text[end]);
    if (left && right)
      return true;
  }
  return false;
}

// Everything the tables spell correctly: a generated wrong form must not be one of them.
const std::set<std::string>& known_words() {
  static const std::set<std::string> words = [] {
    std::set<std::string> out;
    auto add_text = [&](std::string_view text) {
      std::string word;
      for (char c : text) {
        if (std::isalpha(static_cast<unsigned char>(c))) {
          word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        } else if (!word.empty()) {
          out.insert(word);
          word.clear();
        }
      }
      if (!word.empty())
        out.insert(word);
    };
    for (const auto& d : tables::drugs()) add_text(d.name);
    for (auto t : tables::conditions()) add_text(t);
    for (auto t : tables::findings()) add_text(t);
    for (auto t : tables::procedures()) add_text(t);
    for (auto t : tables::symptoms()) add_text(t);
    for (const auto& h : tables::homophone_pairs()) {
      add_text(h.first);
      add_text(h.second);
      for (auto c : h.first_contexts) add_text(c);
      for (auto c : h.second_contexts) add_text(c);
    }
    for (const auto& p : tables::surname_pairs()) {
      add_text(p.first);
      add_text(p.second);
    }
    for (auto s : tables::surnames()) add_text(s);
    for (const auto& t : tables::note_templates()) {
      for (auto s : t.history) add_text(s);
      for (auto s : t.assessment) add_text(s);
      for (auto s : t.plan) add_text(s);
    }
    return out;
  }();
  return words;
}

bool usable_wrong_form(const std::string& form, const std::string& clean,
                       const std::vector<std::string>& taken) {
  return form != clean && known_words().count(lower(form)) == 0 &&
         std::find(taken.begin(), taken.end(), form) == taken.end();
}

std::vector<std::string> split_forms(std::string_view marked) {
  std::vector<std::string> pieces;
  std::string piece;
  for (char c : marked) {
    if (c == '|') {
      pieces.push_back(piece);
      piece.clear();
    } else {
      piece += c;
    }
  }
  pieces.push_back(piece);
  std::vector<std::string> forms;
  for (std::size_t cut = 1; cut < pieces.size(); ++cut) {
    std::string left, right;
    for (std::size_t i = 0; i < pieces.size(); ++i)
      (i < cut ? left : right) += pieces[i];
    if (!left.empty() && !right.empty())
      forms.push_back(left + " " + right);
  }
  return forms;
}

std::string unmarked(std::string_view marked) {
  std::string out;
  for (char c : marked)
    if (c != '|')
      out += c;
  return out;
}

// Two or three slips of one or two of the word's vowels (never the first letter, so a capital
// at a sentence start stays where it is).
std::vector<std::string> vowel_forms(const std::string& word, rng& r) {
  std::vector<std::size_t> positions;
  for (std::size_t i = 1; i < word.size(); ++i)
    if (is_vowel(word[i]))
      positions.push_back(i);
  std::vector<std::string> forms;
  if (positions.empty())
    return forms;
  static const std::string vowels = "aeiou";
  const auto first = positions[r.below(positions.size())];
  auto second = positions[r.below(positions.size())];
  for (int attempt = 0; attempt < 8 && second == first && positions.size() > 1; ++attempt)
    second = positions[r.below(positions.size())];
  const std::size_t at[] = {first, second, first};
  for (int attempt = 0; attempt < 40 && forms.size() < 3; ++attempt) {
    auto form = word;
    auto pos = at[forms.size()];
    form[pos] = vowels[r.below(vowels.size())];
    if (usable_wrong_form(form, word, forms))
      forms.push_back(form);
  }
  return forms;
}

// Near misses of a drug name: a letter dropped, a consonant doubled, a similar consonant
// swapped in. Two of different shapes.
std::vector<std::string> drug_forms(const std::string& name, rng& r) {
  static const std::pair<char, char> similar[] = {{'t', 'd'}, {'d', 't'}, {'p', 'b'}, {'b', 'p'},
                                                  {'c', 'k'}, {'s', 'z'}, {'z', 's'}, {'m', 'n'},
                                                  {'n', 'm'}, {'l', 'r'}, {'r', 'l'}, {'x', 'z'}};
  std::vector<std::string> candidates[3];
  for (std::size_t i = 1; i + 1 < name.size(); ++i) {
    auto dropped = name;
    dropped.erase(i, 1);
    candidates[0].push_back(dropped);
    if (!is_vowel(name[i]) && name[i] != name[i + 1] && name[i] != name[i - 1]) {
      auto doubled = name;
      doubled.insert(i, 1, name[i]);
      candidates[1].push_back(doubled);
    }
    for (auto [from, to] : similar) {
      if (name[i] == from) {
        auto swapped = name;
        swapped[i] = to;
        candidates[2].push_back(swapped);
      }
    }
  }
  std::vector<std::string> forms;
  std::size_t shape = r.below(3);
  for (int attempt = 0; attempt < 30 && forms.size() < 2; ++attempt, shape = (shape + 1) % 3) {
    if (candidates[shape].empty())
      continue;
    auto form = r.pick(candidates[shape]);
    if (usable_wrong_form(form, name, forms))
      forms.push_back(form);
  }
  return forms;
}

// What the generator knows about a speaker beyond the public profile.
struct speaker_plan {
  speaker_profile profile;
  std::vector<std::string> banned;  // wrong forms (lower case) that never occur as right text
  std::vector<std::string> target_words;  // clean words of the word errors (lower case)
  std::string near_miss_drug;
  std::string dropped_unit;
  std::string dropped_unit_drug;  // the drug whose doses lose the unit
  std::string homophone_word;
  std::string surname_target;
  std::vector<std::string> cross_homophones;  // another speaker's wrong word, right here
  std::vector<std::string> cross_names;       // another speaker's misheard name, a colleague here
  double words_per_second = 2.2;
};

const std::vector<std::string_view>* contexts_for(const std::string& word) {
  for (const auto& p : tables::homophone_pairs()) {
    if (p.first == word) return &p.first_contexts;
    if (p.second == word) return &p.second_contexts;
  }
  return nullptr;
}

std::string pick_unit(rng& r) {
  const double u = r.unit();
  if (u < 0.55) return "mg";
  if (u < 0.70) return "mcg";
  if (u < 0.85) return "units";
  if (u < 0.95) return "g";
  return "mEq";
}

std::string quality_of(rng& r) {
  const double u = r.unit();
  if (u < 0.2) return "excellent";
  if (u < 0.65) return "good";
  if (u < 0.9) return "fair";
  return "poor";
}

std::string padded(std::size_t value, std::size_t width) {
  auto text = std::to_string(value);
  return std::string(text.size() < width ? width - text.size() : 0, '0') + text;
}

speaker_plan make_plan(std::size_t index, std::size_t width, rng& r) {
  speaker_plan plan;
  auto& p = plan.profile;
  p.speaker_id = "spk-" + padded(index + 1, width);
  p.client_id = std::string{tables::clients()[index % tables::clients().size()]};
  p.error_rate = 0.65 + 0.3 * r.unit();
  p.audio_quality = quality_of(r);
  plan.words_per_second = 1.8 + 0.8 * r.unit();
  auto id = [&](error_kind k) { return p.speaker_id + ":" + std::string{kind_name(k)}; };
  auto add = [&](error_kind k, std::string clean, std::vector<std::string> forms) {
    for (const auto& f : forms)
      if (!f.empty())
        plan.banned.push_back(lower(f));
    if (k != error_kind::dropped_unit)
      plan.target_words.push_back(lower(clean));
    p.errors.push_back({id(k), k, std::move(clean), std::move(forms), {}});
  };

  const auto& split = r.pick(tables::split_words());
  add(error_kind::split_word, unmarked(split.marked), split_forms(split.marked));

  std::string vowel_word{r.pick(tables::vowel_slip_words())};
  auto vforms = vowel_forms(vowel_word, r);
  add(error_kind::vowel_slip, vowel_word, vforms);

  std::vector<std::string_view> single_word_drugs;
  for (const auto& d : tables::drugs())
    if (d.name.find(' ') == std::string_view::npos)
      single_word_drugs.push_back(d.name);
  plan.near_miss_drug = std::string{single_word_drugs[r.below(single_word_drugs.size())]};
  add(error_kind::drug_near_miss, plan.near_miss_drug, drug_forms(plan.near_miss_drug, r));

  // The unit goes missing after one drug's doses (any of its strengths), so one report of
  // "metoprolol 50" -> "metoprolol 50 mg" teaches the whole error. A drug with one strength would
  // never vary, and the near-miss drug already carries an error of its own.
  std::vector<std::string_view> candidates;
  for (int attempt = 0; attempt < 8 && candidates.empty(); ++attempt) {
    plan.dropped_unit = pick_unit(r);
    for (const auto& d : tables::drugs())
      if (d.unit == plan.dropped_unit && d.doses.size() > 1 && d.name != plan.near_miss_drug)
        candidates.push_back(d.name);
  }
  if (candidates.empty()) {  // only when every draw was a unit of the near-miss drug alone
    plan.dropped_unit = "mg";
    candidates.push_back(plan.near_miss_drug == "metoprolol" ? "lisinopril" : "metoprolol");
  }
  plan.dropped_unit_drug = std::string{candidates[r.below(candidates.size())]};
  add(error_kind::dropped_unit, plan.dropped_unit, {""});
  p.errors.back().context = plan.dropped_unit_drug;

  const auto& pair = r.pick(tables::homophone_pairs());
  const bool first_is_right = r.chance(0.5);
  plan.homophone_word = std::string{first_is_right ? pair.first : pair.second};
  add(error_kind::homophone, plan.homophone_word,
      {std::string{first_is_right ? pair.second : pair.first}});

  const auto& names = r.pick(tables::surname_pairs());
  const bool first_is_heard = r.chance(0.5);
  plan.surname_target = std::string{first_is_heard ? names.first : names.second};
  const std::string misheard{first_is_heard ? names.second : names.first};
  add(error_kind::surname, plan.surname_target, {misheard});

  // Colleagues: three without a twin, the one this speaker's ASR mishears, and one of another pair.
  std::vector<std::string_view> pool = tables::surnames();
  for (int i = 0; i < 3 && !pool.empty(); ++i) {
    auto at = r.below(pool.size());
    p.colleagues.emplace_back(pool[at]);
    pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(at));
  }
  p.colleagues.push_back(plan.surname_target);
  const auto& other = r.pick(tables::surname_pairs());
  std::string other_name{r.chance(0.5) ? other.first : other.second};
  if (other_name != misheard && other_name != plan.surname_target)
    p.colleagues.push_back(other_name);
  return plan;
}

bool banned_for(const speaker_plan& plan, const std::string& lower_text) {
  for (const auto& b : plan.banned)
    if (holds_words(lower_text, b))
      return true;
  return false;
}

struct patient {
  std::string age, sex, he, his, him;
};

// Fills a drug slot: the speaker's near-miss drug and the drug it drops the unit of come up often,
// so each systematic error recurs.
const tables::drug& pick_drug(const speaker_plan& plan, rng& r, bool for_dose) {
  const auto& all = tables::drugs();
  if (r.chance(0.2)) {
    for (const auto& d : all)
      if (d.name == plan.near_miss_drug)
        return d;
  }
  if (for_dose && r.chance(0.3)) {
    for (const auto& d : all)
      if (d.name == plan.dropped_unit_drug)
        return d;
  }
  return all[r.below(all.size())];
}

std::string_view pick_biased(const speaker_plan& plan, const std::vector<std::string_view>& pool,
                             rng& r) {
  if (r.chance(0.35)) {
    std::vector<std::string_view> hits;
    for (auto entry : pool) {
      auto text = lower(entry);
      for (const auto& w : plan.target_words)
        if (holds_words(text, w)) {
          hits.push_back(entry);
          break;
        }
    }
    if (!hits.empty())
      return hits[r.below(hits.size())];
  }
  return pool[r.below(pool.size())];
}

std::string pick_homophone_sentence(const speaker_plan& plan, rng& r) {
  const std::vector<std::string_view>* contexts = nullptr;
  const double u = r.unit();
  if (u < 0.5)
    contexts = contexts_for(plan.homophone_word);
  else if (u < 0.8 && !plan.cross_homophones.empty())
    contexts = contexts_for(plan.cross_homophones[r.below(plan.cross_homophones.size())]);
  if (!contexts) {
    const auto& pair = r.pick(tables::homophone_pairs());
    contexts = r.chance(0.5) ? &pair.first_contexts : &pair.second_contexts;
  }
  return std::string{(*contexts)[r.below(contexts->size())]};
}

std::string pick_colleague(const speaker_plan& plan, rng& r) {
  const double u = r.unit();
  if (u < 0.45)
    return plan.surname_target;
  if (u < 0.7 && !plan.cross_names.empty())
    return plan.cross_names[r.below(plan.cross_names.size())];
  return r.pick(plan.profile.colleagues);
}

std::string dose_text(const tables::drug& d, rng& r) {
  return std::string{d.name} + " " + std::string{r.pick(d.doses)} + " " + std::string{d.unit};
}

std::string dose_line_text(const tables::drug& d, rng& r) {
  return dose_text(d, r) + " " + std::string{r.pick(d.routes)} + " " +
         std::string{r.pick(d.frequencies)};
}

// Replaces every {slot} of a template sentence. Returns "" when a slot is unknown (a table bug).
std::string fill(std::string_view sentence, const speaker_plan& plan, const patient& pt,
                 const std::vector<std::string>& vocabulary, rng& r) {
  std::string out;
  std::string last_frequency;
  std::set<std::string> used;
  for (std::size_t i = 0; i < sentence.size(); ++i) {
    if (sentence[i] != '{') {
      out += sentence[i];
      continue;
    }
    const auto close = sentence.find('}', i);
    if (close == std::string_view::npos)
      return "";
    std::string slot{sentence.substr(i + 1, close - i - 1)};
    i = close;
    const bool capital = !slot.empty() && std::isupper(static_cast<unsigned char>(slot[0]));
    const auto key = lower(slot);
    std::string value;
    // The same condition twice in one sentence reads as a template, so such slots are re-drawn.
    auto distinct = [&](auto draw) {
      std::string v = draw();
      for (int attempt = 0; attempt < 8 && used.count(v) > 0; ++attempt)
        v = draw();
      used.insert(v);
      return v;
    };
    if (key == "condition")
      value = distinct([&] { return std::string{pick_biased(plan, tables::conditions(), r)}; });
    else if (key == "finding")
      value = distinct([&] { return std::string{pick_biased(plan, tables::findings(), r)}; });
    else if (key == "procedure")
      value = distinct([&] { return std::string{pick_biased(plan, tables::procedures(), r)}; });
    else if (key == "symptom")
      value = distinct([&] { return std::string{pick_biased(plan, tables::symptoms(), r)}; });
    else if (key == "duration")
      value = distinct([&] { return std::string{r.pick(tables::durations())}; });
    else if (key == "status") value = std::string{r.pick(tables::statuses())};
    else if (key == "drug") value = std::string{pick_drug(plan, r, false).name};
    else if (key == "dose") {
      const auto& d = pick_drug(plan, r, true);
      value = dose_text(d, r);
      last_frequency = std::string{r.pick(d.frequencies)};
    } else if (key == "frequency") value = last_frequency.empty() ? "daily" : last_frequency;
    else if (key == "dose_line") value = dose_line_text(pick_drug(plan, r, true), r);
    else if (key == "colleague") value = pick_colleague(plan, r);
    else if (key == "vocab")
      value = vocabulary.empty() ? std::string{r.pick(tables::conditions())} : r.pick(vocabulary);
    else if (key == "homophone") value = fill(pick_homophone_sentence(plan, r), plan, pt, vocabulary, r);
    else if (key == "age") value = pt.age;
    else if (key == "a_age") value = (pt.age[0] == '8' ? "an " : "a ") + pt.age;
    else if (key == "sex") value = pt.sex;
    else if (key == "he") value = pt.he;
    else if (key == "his") value = pt.his;
    else if (key == "him") value = pt.him;
    else return "";
    out += capital ? capitalise(value) : value;
  }
  return out;
}

// A sentence that holds none of the speaker's wrong forms as right text, or "" after many tries.
// Nor one the note already holds (two homophone slots may draw the same sentence).
std::string sentence_for(std::string_view pattern, const speaker_plan& plan, const patient& pt,
                         const std::vector<std::string>& vocabulary, const std::string& note,
                         rng& r) {
  for (int attempt = 0; attempt < 24; ++attempt) {
    auto s = fill(pattern, plan, pt, vocabulary, r);
    if (!s.empty() && !banned_for(plan, lower(s)) && note.find(capitalise(s)) == std::string::npos)
      return s;
  }
  return "";
}

// Picks `count` sentences of a section in template order (the first one always, when `lead`).
std::vector<std::string_view> choose(const std::vector<std::string_view>& pool, std::size_t count,
                                     bool lead, rng& r) {
  std::vector<std::size_t> idx;
  for (std::size_t i = lead ? 1 : 0; i < pool.size(); ++i)
    idx.push_back(i);
  for (std::size_t i = idx.size(); i > 1; --i)
    std::swap(idx[i - 1], idx[r.below(i)]);
  const auto keep = std::min(idx.size(), lead && count > 0 ? count - 1 : count);
  idx.resize(keep);
  if (lead)
    idx.push_back(0);
  std::sort(idx.begin(), idx.end());
  std::vector<std::string_view> out;
  for (auto i : idx)
    out.push_back(pool[i]);
  return out;
}

std::string reference_note(const speaker_plan& plan, const std::vector<std::string>& vocabulary,
                           rng& r) {
  patient pt;
  pt.age = std::to_string(24 + r.below(69));
  const bool woman = r.chance(0.5);
  pt.sex = woman ? "woman" : "man";
  pt.he = woman ? "she" : "he";
  pt.his = woman ? "her" : "his";
  pt.him = woman ? "her" : "him";
  const auto& t = r.pick(tables::note_templates());
  std::string note;
  auto section = [&](const std::vector<std::string_view>& pool, std::size_t count, bool lead,
                     bool numbered) {
    std::string text;
    std::size_t n = 0;
    for (auto pattern : choose(pool, count, lead, r)) {
      auto s = sentence_for(pattern, plan, pt, vocabulary, note + text, r);
      if (s.empty())
        continue;
      s = capitalise(std::move(s));
      if (numbered)
        text += std::to_string(++n) + ". " + s + "\n";
      else
        text += (text.empty() ? "" : " ") + s;
    }
    return numbered ? text : text + "\n";
  };
  note = std::string{t.title} + "\n\nHISTORY OF PRESENT ILLNESS:\n";
  note += section(t.history, 4 + r.below(3), true, false);
  note += "\nMEDICATIONS:\n";
  const auto meds = 3 + r.below(3);
  std::vector<std::string> lines;
  std::set<std::string_view> listed;  // one line per drug
  for (int attempt = 0; lines.size() < meds && attempt < 40; ++attempt) {
    const auto& d = pick_drug(plan, r, true);
    auto line = capitalise(dose_line_text(d, r)) + ".";
    if (!banned_for(plan, lower(line)) && listed.insert(d.name).second)
      lines.push_back(line);
  }
  for (const auto& line : lines)
    note += line + "\n";
  note += "\nASSESSMENT:\n";
  note += section(t.assessment, 2 + r.below(2), false, true);
  note += "\nPLAN:\n";
  note += section(t.plan, 3 + r.below(2), false, false);
  return note;
}

struct token {
  std::size_t begin, end;
};

std::vector<token> tokens_of(const std::string& text) {
  std::vector<token> out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!is_word_char(text[i])) {
      ++i;
      continue;
    }
    auto start = i;
    while (i < text.size() &&
           (is_word_char(text[i]) ||
            (text[i] == '.' && i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1])) &&
             std::isdigit(static_cast<unsigned char>(text[i - 1])))))
      ++i;
    out.push_back({start, i});
  }
  return out;
}

bool is_number(std::string_view t) {
  if (t.empty() || !std::isdigit(static_cast<unsigned char>(t.front())) ||
      !std::isdigit(static_cast<unsigned char>(t.back())))
    return false;
  return std::all_of(t.begin(), t.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; });
}

// The ASR pass: every occurrence of one of the speaker's targets comes out wrong with the
// speaker's error rate, in one of the speaker's wrong forms, with the capital it had.
void corrupt(draft& d, const speaker_plan& plan, rng& r) {
  const auto& ref = d.reference_text;
  const auto toks = tokens_of(ref);
  std::string out;
  std::size_t copied = 0;
  auto emit = [&](std::size_t begin, std::size_t end, std::string wrong, const systematic_error& e) {
    out.append(ref, copied, begin - copied);
    injected_error ie;
    ie.error_id = e.error_id;
    ie.kind = e.kind;
    ie.reference_begin = begin;
    ie.reference_end = end;
    ie.reference_span = ref.substr(begin, end - begin);
    ie.draft_begin = out.size();
    out += wrong;
    ie.draft_end = out.size();
    ie.draft_span = std::move(wrong);
    d.errors.push_back(std::move(ie));
    copied = end;
  };
  for (std::size_t k = 0; k < toks.size(); ++k) {
    const auto word = ref.substr(toks[k].begin, toks[k].end - toks[k].begin);
    for (const auto& e : plan.profile.errors) {
      if (e.kind == error_kind::dropped_unit) {
        // "<drug> <dose> <unit>", single spaces: the span is "<drug> <dose>" in the draft.
        const auto& drug = e.context;
        const auto name_end = toks[k].begin + drug.size();
        if (name_end > ref.size() || lower(ref.substr(toks[k].begin, drug.size())) != drug)
          continue;
        std::size_t n = k;
        while (n < toks.size() && toks[n].end < name_end)
          ++n;
        if (n >= toks.size() || toks[n].end != name_end || n + 2 >= toks.size())
          continue;
        const auto& dose = toks[n + 1];
        const auto& unit = toks[n + 2];
        const auto dose_text = ref.substr(dose.begin, dose.end - dose.begin);
        if (dose.begin != name_end + 1 || ref[name_end] != ' ' || !is_number(dose_text) ||
            unit.begin != dose.end + 1 || ref[dose.end] != ' ' ||
            ref.compare(unit.begin, unit.end - unit.begin, e.clean_form) != 0 ||
            unit.end - unit.begin != e.clean_form.size() ||
            (unit.end < ref.size() && ref[unit.end] == '/'))
          continue;
        if (r.chance(plan.profile.error_rate)) {
          emit(toks[k].begin, unit.end, ref.substr(toks[k].begin, dose.end - toks[k].begin), e);
          k = n + 2;
        }
        break;
      }
      const bool surname = e.kind == error_kind::surname;
      if (surname ? word != e.clean_form : lower(word) != lower(e.clean_form))
        continue;
      if (r.chance(plan.profile.error_rate)) {
        auto wrong = r.pick(e.erroneous_forms);
        if (std::isupper(static_cast<unsigned char>(word[0])))
          wrong = capitalise(std::move(wrong));
        emit(toks[k].begin, toks[k].end, std::move(wrong), e);
      }
      break;
    }
  }
  out.append(ref, copied, std::string::npos);
  d.draft_text = std::move(out);
  std::set<std::string> types;
  for (const auto& e : d.errors)
    types.emplace(category_of(e.kind));
  d.error_types.assign(types.begin(), types.end());
}

std::string shifted_quality(const std::string& usual, rng& r) {
  static const std::vector<std::string> order{"excellent", "good", "fair", "poor"};
  auto at = static_cast<std::size_t>(std::find(order.begin(), order.end(), usual) - order.begin());
  if (at >= order.size() || !r.chance(0.2))
    return usual;
  if (at == 0) return order[1];
  if (at + 1 == order.size()) return order[at - 1];
  return order[r.chance(0.5) ? at - 1 : at + 1];
}

bool has_medical_ending(const std::string& w) {
  // Endings of conditions only: a procedure word would read wrongly in a diagnosis slot.
  static const char* endings[] = {"itis", "osis", "emia", "opathy", "algia", "oma", "uria",
                                  "ectasis", "megaly", "plegia"};
  for (const char* e : endings) {
    const std::string ending{e};
    if (w.size() > ending.size() && w.compare(w.size() - ending.size(), ending.size(), ending) == 0)
      return true;
  }
  return false;
}

}  // namespace

std::optional<std::vector<std::string>> load_vocabulary(const std::string& dic_path,
                                                        std::string* error) {
  std::ifstream in{dic_path};
  if (!in) {
    if (error)
      *error = "cannot read " + dic_path;
    return std::nullopt;
  }
  std::string line;
  std::getline(in, line);  // the entry count
  std::set<std::string> words;
  while (std::getline(in, line)) {
    auto word = line.substr(0, line.find('/'));
    while (!word.empty() && (word.back() == '\r' || word.back() == ' ' || word.back() == '\t'))
      word.pop_back();
    if (word.size() < 8 || word.size() > 16)
      continue;
    if (!std::all_of(word.begin(), word.end(), [](char c) { return c >= 'a' && c <= 'z'; }))
      continue;
    if (has_medical_ending(word))
      words.insert(word);
  }
  return std::vector<std::string>(words.begin(), words.end());
}

seeded_data generate(const generator_options& options, const std::vector<std::string>& vocabulary) {
  seeded_data data;
  const std::size_t n = std::clamp<std::uint32_t>(options.speakers, 2, max_speakers);
  const std::size_t width = std::max<std::size_t>(3, std::to_string(n).size());
  rng profiles{mix(options.seed, 0x5eed)};
  std::vector<speaker_plan> plans;
  plans.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    plans.push_back(make_plan(i, width, profiles));

  // One speaker's wrong word is another's right one: each speaker's homophone mistake and
  // misheard colleague are right text for some other speaker who does not make that mistake.
  for (std::size_t a = 0; a < n; ++a) {
    for (const auto& e : plans[a].profile.errors) {
      if (e.kind != error_kind::homophone && e.kind != error_kind::surname)
        continue;
      const auto& wrong = e.erroneous_forms.front();
      for (std::size_t step = 1; step < n; ++step) {
        auto& b = plans[(a + step + profiles.below(n - 1)) % n];
        // Not a speaker who makes this mistake, nor one whose ASR mangles the word itself.
        if (&b == &plans[a] || banned_for(b, lower(wrong)) ||
            std::find(b.target_words.begin(), b.target_words.end(), lower(wrong)) !=
                b.target_words.end())
          continue;
        if (e.kind == error_kind::homophone) {
          b.cross_homophones.push_back(wrong);
        } else {
          b.cross_names.push_back(wrong);
          if (std::find(b.profile.colleagues.begin(), b.profile.colleagues.end(), wrong) ==
              b.profile.colleagues.end())
            b.profile.colleagues.push_back(wrong);
        }
        break;
      }
    }
  }

  std::size_t job = 0;
  const std::size_t job_width = std::max<std::size_t>(
      6, std::to_string(n * options.days * options.drafts_per_day).size());
  for (std::size_t s = 0; s < n; ++s) {
    const auto& plan = plans[s];
    rng r{mix(options.seed, s + 1)};
    for (std::uint32_t day = 0; day < options.days; ++day) {
      std::vector<std::int64_t> times;
      for (std::uint32_t k = 0; k < options.drafts_per_day; ++k)
        times.push_back(options.start + std::int64_t{day} * 86400 + 7 * 3600 +
                        static_cast<std::int64_t>(r.below(12 * 3600)));
      std::sort(times.begin(), times.end());
      for (auto at : times) {
        draft d;
        d.job_id = "job-" + padded(++job, job_width);
        d.speaker_id = plan.profile.speaker_id;
        d.client_id = plan.profile.client_id;
        d.created_at = at;
        d.reference_text = reference_note(plan, vocabulary, r);
        corrupt(d, plan, r);
        d.audio_quality = shifted_quality(plan.profile.audio_quality, r);
        const auto words = tokens_of(d.draft_text).size();
        d.duration_seconds =
            static_cast<double>(static_cast<long long>(words / plan.words_per_second * 10)) / 10;
        data.drafts.push_back(std::move(d));
      }
    }
    data.speakers.push_back(plan.profile);
  }
  return data;
}

}  // namespace sbm::instanote
