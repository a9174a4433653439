-- What a filing's saga writes beside the report, made lighter (bench/PROFILE-reports.md).
--
-- Every saga row and log line checked a foreign key to its report: a probe of the report's
-- primary key and a FOR KEY SHARE lock on the report row, which PostgreSQL writes to the WAL for
-- a row another transaction inserted: seven checks per report. Nothing deletes reports, and these
-- rows are only written in the report's own filing statement or for a report id read from a saga
-- row or checked in the same transaction (a status change updates the report first), so the keys
-- guarded nothing that can happen; ON DELETE CASCADE went with them.
--
-- The build before this one runs beside it during a rolling upgrade and relies on none of what
-- goes (it never inserts a saga row without its report, never writes ON CONFLICT on saga_log's
-- id, and its reads by report are served by the new key):
-- sbm:relaxes
ALTER TABLE reports.report_saga DROP CONSTRAINT report_saga_report_id_fkey;
ALTER TABLE reports.saga_log DROP CONSTRAINT saga_log_report_id_fkey;

-- The log is only read by report, in id order: one index serves that and keeps id unique, instead
-- of the id key and a second index on (report_id, id) maintained for every line.
ALTER TABLE reports.saga_log DROP CONSTRAINT saga_log_pkey;
ALTER TABLE reports.saga_log ADD PRIMARY KEY (report_id, id);
DROP INDEX reports.saga_log_by_report;
