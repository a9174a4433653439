#pragma once
// Curated clinical vocabulary the draft generator fills its note templates from. Real drugs with
// the doses and units they are prescribed in, conditions, findings, procedures, homophone pairs
// with sentences where each member is the right word, and surnames (some in pairs that ASR
// confuses). A bare word list makes word salad; these tables make notes a clinician would sign.
#include <string_view>
#include <vector>

namespace sbm::instanote::tables {

struct drug {
  std::string_view name;                 // as written in a note, lower case ("insulin glargine")
  std::vector<std::string_view> doses;   // the strengths it is prescribed in ("2.5", "25")
  std::string_view unit;                 // "mg", "mcg", "g", "units", "mEq"
  std::vector<std::string_view> routes;  // "by mouth", "IV"
  std::vector<std::string_view> frequencies;
};

// A word that ASR splits: '|' marks the points it may split at (at least two per word).
struct split_word {
  std::string_view marked;  // "hyper|ten|sion"
};

// Two words ASR confuses, each with sentences in which it is the right word. Sentences use
// {He}/{he}/{his} for the patient's pronoun.
struct homophone_pair {
  std::string_view first;
  std::vector<std::string_view> first_contexts;
  std::string_view second;
  std::vector<std::string_view> second_contexts;
};

// Surnames ASR confuses with each other; both are real colleagues' names somewhere.
struct surname_pair {
  std::string_view first;
  std::string_view second;
};

const std::vector<drug>& drugs();
const std::vector<std::string_view>& conditions();  // "type 2 diabetes mellitus"
const std::vector<std::string_view>& findings();    // "trace pedal edema"
const std::vector<std::string_view>& procedures();  // "a screening colonoscopy"
const std::vector<std::string_view>& symptoms();
const std::vector<std::string_view>& durations();
const std::vector<std::string_view>& statuses();    // "well controlled"
const std::vector<split_word>& split_words();       // each occurs in conditions/findings/procedures
const std::vector<std::string_view>& vowel_slip_words();  // the same
const std::vector<homophone_pair>& homophone_pairs();
const std::vector<surname_pair>& surname_pairs();
const std::vector<std::string_view>& surnames();    // colleagues without a confusable twin
const std::vector<std::string_view>& clients();     // client_id values

// Note templates, by section. A sentence holds slots: {condition} {finding} {procedure}
// {symptom} {duration} {status} {drug} (a name) {dose_line} (name dose unit route frequency)
// {dose} (name dose unit) {colleague} {homophone} (a whole homophone sentence) {vocab} (a word
// from the extra dictionary), {age}, {a_age} ("a 67", "an 84"), {sex} and the pronouns {He} {he} {his} {His} {him}.
struct note_template {
  std::string_view title;  // "FOLLOW-UP VISIT"
  std::vector<std::string_view> history;
  std::vector<std::string_view> assessment;
  std::vector<std::string_view> plan;
};
const std::vector<note_template>& note_templates();
// Medication list lines ("{Dose_line}." on a line each) are added by the generator itself.

}  // namespace sbm::instanote::tables
