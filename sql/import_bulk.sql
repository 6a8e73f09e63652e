-- Bulk consent import, how its rows are written: page at a time, straight
-- from the arrays, yet with everything INSERT does per row -- the tables'
-- defaults for columns the import does not supply, their CHECK constraints
-- and unique keys -- and errors that name a row number, never a subject.
-- Stands alone; subjects 'imp820-...', purposes 'imp820_...'.
\set VERBOSITY default
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS privacy_guard;
RESET client_min_messages;
SELECT privacy_guard.define_purpose('imp820_news', 'consent');
CREATE ROLE regress_imp820_rec LOGIN;
CREATE ROLE regress_imp820_plain LOGIN;
SELECT privacy_guard.grant_recorder('regress_imp820_rec');

-- the writers are the import's alone: nobody may call them directly
SET ROLE regress_imp820_plain;
SELECT privacy_guard._import_insert_state(ARRAY['imp820-x'], ARRAY['imp820_news'], NULL);
SELECT privacy_guard._import_insert_ledger(ARRAY['imp820-x'], ARRAY['imp820_news'], NULL, NULL);
RESET ROLE;
SET ROLE regress_imp820_rec;
SELECT privacy_guard._import_insert_state(ARRAY['imp820-x'], ARRAY['imp820_news'], NULL);
RESET ROLE;
SELECT count(*) AS recorded FROM privacy_guard.consent_ledger WHERE subject LIKE 'imp820-%';

-- a CHECK constraint added to the current state is checked for every
-- imported row; the error names the row, not its subject, and nothing is
-- recorded
BEGIN;
ALTER TABLE privacy_guard.consent_state
	ADD CONSTRAINT imp820_horizon CHECK (valid_until < '2100-01-01') NOT VALID;
SELECT privacy_guard._import_triggers_known() AS bulk_path;
SET ROLE regress_imp820_rec;
SAVEPOINT s;
SELECT privacy_guard.import_consents(ARRAY['imp820-a', 'imp820-b', 'imp820-c'],
									 ARRAY['imp820_news', 'imp820_news', 'imp820_news'],
									 ARRAY[now() + interval '1 day', '2200-01-01', NULL]::timestamptz[]);
ROLLBACK TO s;
RESET ROLE;
SELECT count(*) AS recorded FROM privacy_guard.consent_ledger WHERE subject LIKE 'imp820-%';
ROLLBACK;

-- columns the import does not supply get their defaults, evaluated per
-- row in input order, as INSERT evaluates them
BEGIN;
CREATE SEQUENCE imp820_seq;
ALTER TABLE privacy_guard.consent_ledger
	ADD COLUMN imp820_note text DEFAULT 'imported',
	ADD COLUMN imp820_n bigint DEFAULT nextval('imp820_seq');
SET ROLE regress_imp820_rec;
SELECT privacy_guard.import_consents(ARRAY['imp820-c', 'imp820-a', 'imp820-b'],
									 ARRAY['imp820_news', 'imp820_news', 'imp820_news']);
RESET ROLE;
SELECT subject, imp820_note, imp820_n - min(imp820_n) OVER () AS n_offset, action, recorded_by = session_user AS by_me,
	   recorded_at = now() AS at_start, id - min(id) OVER () AS id_offset
  FROM privacy_guard.consent_ledger WHERE subject LIKE 'imp820-%' ORDER BY id;
SELECT subject, status, changed_xid = pg_current_xact_id() AS stamped, changed_at = now() AS at_start
  FROM privacy_guard.consent_state WHERE subject LIKE 'imp820-%' ORDER BY subject;
ROLLBACK;

-- a subject that has a state already: the bulk insert is undone and the
-- state set as grant_consent() sets it; one ledger entry per row either way
SET ROLE regress_imp820_rec;
SELECT privacy_guard.grant_consent('imp820-b', 'imp820_news');
SELECT privacy_guard.withdraw_consent('imp820-b', 'imp820_news');
SELECT privacy_guard.import_consents(ARRAY['imp820-a', 'imp820-b'], ARRAY['imp820_news', 'imp820_news'],
									 ARRAY[NULL, '2099-01-01']::timestamptz[]);
RESET ROLE;
SELECT subject, status, valid_until FROM privacy_guard.consent_state WHERE subject LIKE 'imp820-%' ORDER BY subject;
SELECT subject, action, valid_until FROM privacy_guard.consent_ledger WHERE subject LIKE 'imp820-%' ORDER BY id;

-- an error in the bulk writes rolls back the whole import (the ledger
-- rows of the failing call too): here a ledger CHECK refuses row 3
BEGIN;
ALTER TABLE privacy_guard.consent_ledger
	ADD CONSTRAINT imp820_no_test CHECK (evidence IS NULL OR NOT evidence ? 'test');
SET ROLE regress_imp820_rec;
SAVEPOINT s;
SELECT privacy_guard.import_consents(ARRAY['imp820-d', 'imp820-e', 'imp820-f'],
									 ARRAY['imp820_news', 'imp820_news', 'imp820_news'], NULL,
									 ARRAY['{}', '{"form": "a"}', '{"test": true}']::jsonb[]);
ROLLBACK TO s;
RESET ROLE;
SELECT (SELECT count(*) FROM privacy_guard.consent_state WHERE subject IN ('imp820-d', 'imp820-e', 'imp820-f')) AS state_rows,
	   (SELECT count(*) FROM privacy_guard.consent_ledger WHERE subject IN ('imp820-d', 'imp820-e', 'imp820-f')) AS ledger_rows;
ROLLBACK;
