-- Who holds a saga's claim. next_attempt_at says until when; claim says which saga runner (a
-- random token per runner start), and every step's write checks it, so a runner whose claim
-- lapsed and was taken over can no longer move the saga.
ALTER TABLE reports.report_saga ADD COLUMN claim text;
