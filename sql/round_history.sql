-- round_history: one row per enforcement round in the database, written by
-- the worker's rounds and by run_maintenance(), its synchronous twin, tested
-- here: when and how long, rows deleted, anonymised and restricted per
-- table, forget requests done and blocked, errors by SQLSTATE (never data);
-- readable by administrators only; rows older than
-- privacy_guard.history_retention are pruned by the rounds.
\set VERBOSITY terse
SET ROLE regress_owner;
CREATE TABLE rh_visits (id int PRIMARY KEY, member bigint, seen timestamptz NOT NULL);
CREATE TABLE rh_notes (id int PRIMARY KEY, member bigint, note text, written timestamptz NOT NULL);
CREATE TABLE rh_ledger (id int PRIMARY KEY, member bigint, booked timestamptz NOT NULL);
CREATE TABLE rh_locked (id int PRIMARY KEY, member bigint, seen timestamptz NOT NULL);
CREATE TABLE rh_refs (visit_id int REFERENCES rh_visits);	-- not protected
CREATE FUNCTION rh_refuse() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN RAISE EXCEPTION 'member % may not go', OLD.member; END$$;
CREATE TRIGGER refuse BEFORE DELETE ON rh_locked FOR EACH ROW EXECUTE FUNCTION rh_refuse();
-- visits 1-6 past retention, 7-10 current (members 8100 + id % 4)
INSERT INTO rh_visits
	SELECT g, 8100 + g % 4, now() - CASE WHEN g <= 6 THEN interval '40 days' ELSE interval '1 day' END
	  FROM generate_series(1, 10) g;
INSERT INTO rh_notes SELECT g, 8200 + g, 'note ' || g, now() - interval '40 days' FROM generate_series(1, 3) g;
INSERT INTO rh_ledger SELECT g, 9300 + g, now() - interval '40 days' FROM generate_series(1, 2) g;
INSERT INTO rh_locked VALUES (1, 9400, now() - interval '40 days');
INSERT INTO rh_refs VALUES (10);		-- a current visit of member 8102
RESET ROLE;
SELECT privacy_guard.protect('rh_visits', 'member', ARRAY['billing'], interval '30 days', 'seen');
SELECT privacy_guard.protect('rh_notes', 'member', ARRAY['billing'], interval '30 days', 'written',
							 on_expiry => 'anonymize');
SELECT privacy_guard.protect('rh_ledger', 'member', ARRAY['billing'], interval '30 days', 'booked');
SELECT privacy_guard.set_legal_hold('rh_ledger', interval '10 years', 'tax');
SELECT privacy_guard.protect('rh_locked', 'member', ARRAY['billing'], interval '30 days', 'seen');

-- what the latest round of run_maintenance() left in the history (a
-- preloaded library's worker may add rounds of its own)
CREATE VIEW rh_last AS
	SELECT h.run_by, h.tables, h.rows_deleted, h.rows_anonymized, h.rows_restricted,
		   h.requests_done, h.requests_blocked, h.errors,
		   h.started_at BETWEEN now() - interval '1 minute' AND now() AS started_now,
		   h.duration >= interval '0' AND h.duration < interval '1 minute' AS timed
	  FROM privacy_guard.round_history h WHERE h.run_by = 'run_maintenance' ORDER BY h.id DESC LIMIT 1;
SELECT count(*) AS rounds_before FROM privacy_guard.round_history WHERE run_by = 'run_maintenance' \gset

-- rows deleted, anonymised, restricted under a hold: one table per round
SELECT privacy_guard.run_maintenance('rh_visits') -> 'expired' AS expired;
SELECT * FROM rh_last;
SELECT privacy_guard.run_maintenance('rh_notes') -> 'expired' AS expired;
SELECT * FROM rh_last;
SELECT privacy_guard.run_maintenance('rh_ledger') -> 'expired' AS expired;
SELECT * FROM rh_last;

-- an owner's trigger that fails: counted under its SQLSTATE, the message
-- (which names a member) kept out
SELECT privacy_guard.run_maintenance('rh_locked') -> 'errors' AS errors;
SELECT * FROM rh_last;
SELECT pg_catalog.count(*) AS leaks FROM privacy_guard.round_history h
 WHERE h.tables::text LIKE '%9400%' OR h.errors::text LIKE '%9400%' OR h.errors::text LIKE '%may not go%';

-- forget requests: one done, one blocked by the unprotected table's foreign key
SELECT privacy_guard.forget('8101', 'history test') > 0 AS filed;
SELECT privacy_guard.forget('8102', 'history test') > 0 AS filed;
SELECT r.requests_done, r.requests_blocked
  FROM pg_catalog.jsonb_to_record(privacy_guard.run_maintenance('rh_visits'))
	   AS r(requests_done int, requests_blocked int);
SELECT * FROM rh_last;
SELECT pg_catalog.count(*) - :rounds_before AS rounds_recorded FROM privacy_guard.round_history
 WHERE run_by = 'run_maintenance';

-- retention (privacy_guard.history_retention, 30 days here): a round
-- drops the rows older than that and keeps the others
INSERT INTO privacy_guard.round_history (started_at, duration, run_by)
VALUES (now() - interval '31 days', interval '1 second', 'worker'),
	   (now() - interval '29 days', interval '1 second', 'worker');
SELECT current_setting('privacy_guard.history_retention') AS history_retention;
SELECT privacy_guard.run_maintenance('rh_visits') IS NOT NULL AS ran;
SELECT pg_catalog.count(*) FILTER (WHERE h.started_at < now() - interval '30 days') AS older,
	   pg_catalog.count(*) FILTER (WHERE h.started_at < now() - interval '28 days') AS kept
  FROM privacy_guard.round_history h;

-- administrators read it; nobody else, and nobody writes it but the rounds
CREATE ROLE regress_rh_admin;
SELECT privacy_guard.grant_admin('regress_rh_admin');
SET ROLE regress_rh_admin;
SELECT pg_catalog.count(*) > 0 AS admin_reads FROM privacy_guard.round_history;
DELETE FROM privacy_guard.round_history;
UPDATE privacy_guard.round_history SET errors = '{}';
SET ROLE regress_app;
SELECT pg_catalog.count(*) FROM privacy_guard.round_history;
SELECT privacy_guard._record_round('{}', NULL, now(), 'worker', NULL);
SET ROLE regress_owner;
SELECT pg_catalog.count(*) FROM privacy_guard.round_history;
RESET ROLE;

-- clean up
DROP OWNED BY regress_rh_admin;
DROP ROLE regress_rh_admin;
DROP VIEW rh_last;
SELECT privacy_guard.unprotect(t) FROM unnest(ARRAY['rh_visits', 'rh_notes', 'rh_ledger', 'rh_locked']::regclass[]) t;
DROP TABLE rh_refs, rh_visits, rh_notes, rh_ledger, rh_locked;
DROP FUNCTION rh_refuse();
