#include "actors/instanote/core/clinical_tables.hpp"

// Doses are the strengths these drugs are commonly prescribed in (adult dosing); a seeded note is
// test data, not advice. Fixed template text avoids every homophone-pair word, so those words
// occur only where a homophone sentence puts them, in the sense that sentence gives them.

namespace sbm::instanote::tables {

const std::vector<drug>& drugs() {
  static const std::vector<drug> table{
    {"metoprolol", {"25", "50", "100"}, "mg", {"by mouth"}, {"twice daily"}},
    {"lisinopril", {"5", "10", "20", "40"}, "mg", {"by mouth"}, {"daily"}},
    {"atorvastatin", {"10", "20", "40", "80"}, "mg", {"by mouth"}, {"nightly", "daily"}},
    {"metformin", {"500", "850", "1000"}, "mg", {"by mouth"}, {"twice daily with meals"}},
    {"amlodipine", {"2.5", "5", "10"}, "mg", {"by mouth"}, {"daily"}},
    {"levothyroxine", {"25", "50", "75", "88", "100", "125"}, "mcg", {"by mouth"},
     {"daily before breakfast"}},
    {"furosemide", {"20", "40", "80"}, "mg", {"by mouth", "IV"}, {"daily", "twice daily"}},
    {"warfarin", {"2", "5", "7.5"}, "mg", {"by mouth"}, {"daily"}},
    {"apixaban", {"2.5", "5"}, "mg", {"by mouth"}, {"twice daily"}},
    {"gabapentin", {"100", "300", "600"}, "mg", {"by mouth"}, {"three times daily", "at bedtime"}},
    {"sertraline", {"25", "50", "100"}, "mg", {"by mouth"}, {"daily"}},
    {"omeprazole", {"20", "40"}, "mg", {"by mouth"}, {"daily before breakfast"}},
    {"pantoprazole", {"40"}, "mg", {"by mouth", "IV"}, {"daily"}},
    {"insulin glargine", {"10", "14", "18", "20", "24"}, "units", {"subcutaneously"},
     {"at bedtime"}},
    {"insulin lispro", {"4", "6", "8"}, "units", {"subcutaneously"}, {"with meals"}},
    {"heparin", {"5000"}, "units", {"subcutaneously"}, {"every 8 hours", "every 12 hours"}},
    {"prednisone", {"5", "10", "20", "40"}, "mg", {"by mouth"}, {"daily"}},
    {"clopidogrel", {"75"}, "mg", {"by mouth"}, {"daily"}},
    {"hydrochlorothiazide", {"12.5", "25"}, "mg", {"by mouth"}, {"daily"}},
    {"potassium chloride", {"10", "20", "40"}, "mEq", {"by mouth"}, {"daily", "twice daily"}},
    {"tamsulosin", {"0.4"}, "mg", {"by mouth"}, {"nightly"}},
    {"enoxaparin", {"40", "60", "80"}, "mg", {"subcutaneously"}, {"daily", "every 12 hours"}},
    {"ceftriaxone", {"1", "2"}, "g", {"IV"}, {"daily"}},
    {"vancomycin", {"1", "1.25", "1.5"}, "g", {"IV"}, {"every 12 hours"}},
    {"cefazolin", {"1", "2"}, "g", {"IV"}, {"every 8 hours"}},
    {"acetaminophen", {"500", "650", "1000"}, "mg", {"by mouth"}, {"every 6 hours as needed"}},
    {"ondansetron", {"4", "8"}, "mg", {"by mouth", "IV"}, {"every 8 hours as needed"}},
    {"losartan", {"25", "50", "100"}, "mg", {"by mouth"}, {"daily"}},
    {"carvedilol", {"3.125", "6.25", "12.5", "25"}, "mg", {"by mouth"}, {"twice daily"}},
    {"spironolactone", {"25", "50"}, "mg", {"by mouth"}, {"daily"}},
    {"montelukast", {"10"}, "mg", {"by mouth"}, {"nightly"}},
    {"duloxetine", {"30", "60"}, "mg", {"by mouth"}, {"daily"}},
    {"cyanocobalamin", {"1000"}, "mcg", {"intramuscularly"}, {"monthly"}},
    {"fluticasone", {"50"}, "mcg", {"in each nostril"}, {"daily"}},
    {"allopurinol", {"100", "300"}, "mg", {"by mouth"}, {"daily"}},
  };
  return table;
}

const std::vector<std::string_view>& conditions() {
  static const std::vector<std::string_view> table{
    "hypertension", "type 2 diabetes mellitus", "hyperlipidemia", "atrial fibrillation",
    "congestive heart failure", "chronic obstructive pulmonary disease", "osteoarthritis",
    "hypothyroidism", "gastroesophageal reflux disease", "chronic kidney disease stage 3",
    "coronary artery disease", "obstructive sleep apnea", "major depressive disorder",
    "generalized anxiety disorder", "diverticulitis", "acute cholecystitis",
    "community acquired pneumonia", "cellulitis of the left leg", "acute pyelonephritis",
    "acute pancreatitis", "osteoporosis", "peripheral neuropathy", "benign prostatic hyperplasia",
    "moderate persistent asthma", "migraine without aura", "iron deficiency anemia", "gout",
    "rheumatoid arthritis", "ischemic cardiomyopathy", "deep vein thrombosis",
    "lumbar radiculopathy", "hepatic steatosis",
  };
  return table;
}

const std::vector<std::string_view>& findings() {
  static const std::vector<std::string_view> table{
    "trace pedal edema", "mild erythema over the left shin", "bibasilar crackles",
    "a small pleural effusion", "mild leukocytosis", "an elevated creatinine", "mild anemia",
    "hypokalemia", "a soft systolic murmur", "sinus tachycardia", "sinus bradycardia",
    "mild thrombocytopenia", "microscopic hematuria", "bibasilar atelectasis",
    "cervical lymphadenopathy", "an elevated hemoglobin A1c", "mild hepatomegaly",
    "decreased sensation in both feet", "an irregularly irregular rhythm",
  };
  return table;
}

const std::vector<std::string_view>& procedures() {
  static const std::vector<std::string_view> table{
    "a screening colonoscopy", "a transthoracic echocardiogram", "a laparoscopic cholecystectomy",
    "an appendectomy", "a cardiac catheterization", "an upper endoscopy",
    "an esophagogastroduodenoscopy", "pulmonary function testing", "a nuclear stress test",
    "a bronchoscopy", "a diagnostic thoracentesis", "a total knee arthroplasty",
    "an MRI of the lumbar spine", "a CT angiogram of the chest", "a renal ultrasound",
  };
  return table;
}

const std::vector<std::string_view>& symptoms() {
  static const std::vector<std::string_view> table{
    "shortness of breath on exertion", "intermittent palpitations", "worsening fatigue",
    "bilateral lower extremity swelling", "epigastric pain after meals", "a productive cough",
    "dizziness when standing", "numbness in both feet", "low back pain radiating to the left leg",
    "nocturia", "morning headaches", "chest tightness with exertion", "intermittent nausea",
    "poor sleep", "joint pain in both hands",
  };
  return table;
}

const std::vector<std::string_view>& durations() {
  static const std::vector<std::string_view> table{
    "two weeks", "three months", "six weeks", "one month", "several days", "a year",
    "ten days", "four months", "two days",
  };
  return table;
}

const std::vector<std::string_view>& statuses() {
  static const std::vector<std::string_view> table{
    "well controlled", "stable", "improving", "poorly controlled", "newly diagnosed",
    "worsening", "resolved",
  };
  return table;
}

const std::vector<split_word>& split_words() {
  static const std::vector<split_word> table{
    {"hyper|ten|sion"}, {"hyper|lipid|emia"}, {"osteo|arthr|itis"}, {"hypo|thyroid|ism"},
    {"cardio|myo|pathy"}, {"pyelo|nephr|itis"}, {"chole|cyst|ectomy"}, {"echo|cardio|gram"},
    {"colon|o|scopy"}, {"thrombo|cyto|penia"}, {"appen|d|ectomy"}, {"bron|cho|scopy"},
    {"gastro|esoph|ageal"}, {"osteo|poro|sis"}, {"lymph|adeno|pathy"}, {"radi|culo|pathy"},
    {"thora|cent|esis"}, {"arthro|plas|ty"}, {"hepato|meg|aly"},
  };
  return table;
}

const std::vector<std::string_view>& vowel_slip_words() {
  static const std::vector<std::string_view> table{
    "edema", "erythema", "effusion", "leukocytosis", "creatinine", "anemia", "tachycardia",
    "pneumonia", "diverticulitis", "cellulitis", "pancreatitis", "hypokalemia", "hematuria",
    "atelectasis", "neuropathy", "fibrillation", "hemoglobin", "steatosis", "cholecystitis",
    "thrombosis", "bradycardia", "palpitations",
  };
  return table;
}

const std::vector<homophone_pair>& homophone_pairs() {
  static const std::vector<homophone_pair> table{
    {"ileum",
     {"Colonoscopy showed inflammation of the terminal ileum.",
      "The terminal ileum was intubated and appeared normal."},
     "ilium",
     {"Imaging showed a nondisplaced fracture of the left ilium.",
      "There is tenderness over the right ilium after the fall."}},
    {"dysphagia",
     {"{He} reports dysphagia to solids but not liquids.",
      "Dysphagia has improved since the dilation."},
     "dysphasia",
     {"Expressive dysphasia persists since the stroke.",
      "{He} has a mild dysphasia with word-finding pauses."}},
    {"mucus",
     {"The cough is productive of yellow mucus.", "{He} coughs up clear mucus each morning."},
     "mucous",
     {"Mucous membranes are moist.", "The mucous membranes appear dry on examination."}},
    {"perineal",
     {"The perineal wound is healing well.", "There is mild perineal tenderness."},
     "peroneal",
     {"Examination suggests a peroneal nerve palsy on the right.",
      "Peroneal nerve conduction was slowed."}},
    {"oral",
     {"Oral intake has been poor for several days.", "We will continue oral antibiotics."},
     "aural",
     {"{He} describes aural fullness on the left.", "Aural examination was unremarkable."}},
    {"affect",
     {"Mood is euthymic with a full affect.", "{His} affect is flat and speech is slow."},
     "effect",
     {"No adverse effect was noted after the first dose.",
      "The new regimen had little effect on the pain."}},
    {"elicit",
     {"Ankle reflexes are difficult to elicit.", "We could not elicit any focal tenderness."},
     "illicit",
     {"{He} denies tobacco, alcohol or illicit drug use.", "Illicit drug use is denied."}},
    {"here",
     {"{He} is here today with family.", "{He} came here directly from the pharmacy."},
     "hear",
     {"{He} cannot hear well on the left side.", "{He} says it is hard to hear in noisy rooms."}},
    {"week",
     {"Symptoms began one week ago.", "{He} ran out of the inhaler last week."},
     "weak",
     {"{His} left leg feels weak when climbing stairs.", "Weak pulses are noted in both feet."}},
    {"prostate",
     {"Prostate examination was deferred.", "{His} prostate is mildly enlarged and smooth."},
     "prostrate",
     {"{He} was found prostrate on the bathroom floor.",
      "The family found {him} prostrate and confused."}},
    {"loose",
     {"Stools remain loose after the antibiotic course.", "{He} reports loose stools twice a day."},
     "lose",
     {"{He} is trying to lose weight before surgery.", "We discussed how to lose weight safely."}},
    {"dilation",
     {"Esophageal dilation was performed without difficulty.", "A repeat dilation may be needed."},
     "dilatation",
     {"The echocardiogram shows mild left atrial dilatation.",
      "There is mild dilatation of the aortic root."}},
  };
  return table;
}

const std::vector<surname_pair>& surname_pairs() {
  static const std::vector<surname_pair> table{
    {"Stevens", "Stephens"}, {"Reid", "Reed"},        {"Meyer", "Meier"},
    {"Thompson", "Thomson"}, {"Fischer", "Fisher"},   {"Clarke", "Clark"},
    {"Matthews", "Mathews"}, {"Phillips", "Philips"}, {"Hansen", "Hanson"},
    {"Petersen", "Peterson"}, {"Nielsen", "Nielson"}, {"Jensen", "Jenson"},
    {"Carlson", "Carlsen"},  {"Khan", "Kahn"},        {"Cohen", "Cohn"},
    {"Greene", "Green"},     {"Allen", "Allan"},      {"Schultz", "Shultz"},
  };
  return table;
}

const std::vector<std::string_view>& surnames() {
  static const std::vector<std::string_view> table{
    "Okafor", "Patel", "Garcia", "Kowalski", "Haddad", "Rossi", "Tanaka", "Oyelaran",
    "Lindqvist", "Moreau", "Ivanova", "Brennan", "Delgado", "Abernathy", "Mukherjee", "Santos",
  };
  return table;
}

const std::vector<std::string_view>& clients() {
  static const std::vector<std::string_view> table{"st-mary", "riverside-clinic", "northgate-hospital",
                                                   "lakeview-medical"};
  return table;
}

const std::vector<note_template>& note_templates() {
  static const std::vector<note_template> table{
    {"FOLLOW-UP VISIT",
     {"The patient is {a_age}-year-old {sex} with a history of {condition} and {condition} who "
      "presents for follow-up of {condition}.",
      "{He} reports {symptom} for the past {duration}.",
      "{He} was last seen in clinic {duration} ago, when {his} {drug} was adjusted.",
      "{He} underwent {procedure} {duration} ago with Dr. {colleague}.",
      "Past medical history is also notable for {vocab}.",
      "{homophone}",
      "Recent labs showed {finding}.",
      "{He} takes {dose} {frequency} and reports good adherence."},
     {"{Condition}, {status}.", "{Finding} on examination, likely related to {condition}.",
      "{homophone}", "{Condition}, {status}, followed by Dr. {colleague}."},
     {"Continue {dose_line}.", "Increase {drug} to {dose} {frequency}.", "Start {dose_line}.",
      "Schedule {procedure} within the next {duration}.",
      "Discussed with Dr. {colleague}, who agrees with the plan.",
      "Return to clinic in {duration} or sooner if symptoms worsen."}},
    {"NEW PATIENT CONSULTATION",
     {"Thank you, Dr. {colleague}, for referring this {age}-year-old {sex} for evaluation of "
      "{condition}.",
      "{He} describes {symptom} that began {duration} ago.",
      "Past history includes {condition}, {condition} and {vocab}.",
      "Surgical history is significant for {procedure}.",
      "{homophone}",
      "An outside workup showed {finding}."},
     {"{Condition}, {status}.", "{Finding}, which may reflect {condition}.",
      "Differential diagnosis also includes {vocab}.", "{homophone}"},
     {"Start {dose_line}.", "Obtain {procedure}.",
      "I will send a copy of this note to Dr. {colleague}.",
      "Continue {dose} {frequency} until the next visit.",
      "Follow up in {duration} with the results."}},
    {"DISCHARGE SUMMARY",
     {"The patient is {a_age}-year-old {sex} admitted {duration} ago with {condition}.",
      "The hospital course was complicated by {condition}.",
      "{He} was treated with {drug} and later transitioned to {dose} {frequency}.",
      "{He} underwent {procedure} on hospital day two.",
      "Imaging on admission showed {finding}.",
      "{homophone}",
      "Cardiology was consulted, and Dr. {colleague} followed the patient throughout the stay."},
     {"{Condition}, {status}.", "{Finding}, monitored during the stay.", "{homophone}"},
     {"Discharge on {dose_line}.", "Stop {drug}.",
      "Follow up with Dr. {colleague} in {duration}.",
      "Repeat {procedure} in {duration}.",
      "Return to the emergency department for {symptom} or fever."}},
    {"EMERGENCY DEPARTMENT NOTE",
     {"{A_age}-year-old {sex} presents with {symptom} for {duration}.",
      "History is notable for {condition} and {condition}.",
      "{He} took {dose} this morning.",
      "{homophone}",
      "Initial evaluation showed {finding}."},
     {"{Condition}, {status}.", "{Finding}, likely due to {condition}.", "{homophone}"},
     {"Given {dose_line} in the department.", "Admit to medicine under Dr. {colleague}.",
      "Obtain {procedure} in the morning.", "Continue home {drug}."}},
    {"PROCEDURE NOTE",
     {"{A_age}-year-old {sex} with {condition}, referred by Dr. {colleague} for {procedure}.",
      "Indications include {symptom} and {finding}.",
      "{He} held {his} {drug} for two days before the procedure.",
      "{homophone}"},
     {"{Procedure} completed without complication.", "{Finding} was noted during the study.",
      "{homophone}"},
     {"Resume {dose_line}.", "Results will be sent to Dr. {colleague}.",
      "Follow up in clinic in {duration}."}},
  };
  return table;
}

}  // namespace sbm::instanote::tables
