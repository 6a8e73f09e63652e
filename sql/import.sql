-- Bulk consent import: import_consents() from arrays and from a table or
-- view.  The checks of grant_consent(), all made first (a refused import
-- records nothing), errors that count rows and name row numbers but never
-- a subject key, and exactly the state grant_consent() would leave.
-- Subjects: 'imp-...' text keys and integers from 700000.
\set VERBOSITY default

SELECT privacy_guard.define_purpose('imp_news', 'consent');
SELECT privacy_guard.define_purpose('imp_news.weekly', 'consent');
SELECT privacy_guard.define_purpose('imp_contract', 'contract');
CREATE ROLE regress_imp_rec LOGIN;
CREATE ROLE regress_imp_plain LOGIN;
CREATE ROLE regress_imp_app LOGIN;
SELECT privacy_guard.grant_recorder('regress_imp_rec');
SELECT privacy_guard.allow_purpose('regress_imp_app', 'imp_news');

-- what the import subjects have in the ledger and the current state
CREATE VIEW imp_recorded AS
	SELECT (SELECT count(*) FROM privacy_guard.consent_ledger l
			 WHERE l.subject LIKE 'imp-%' OR l.subject ~ '^7[0-9]{5}$') AS ledger_rows,
		   (SELECT count(*) FROM privacy_guard.consent_state c
			 WHERE c.subject LIKE 'imp-%' OR c.subject ~ '^7[0-9]{5}$') AS state_rows;

-- a protected table whose rows are visible under imp_news only with consent
CREATE TABLE imp_customers (id int PRIMARY KEY, subject text, name text);
INSERT INTO imp_customers VALUES
	(1, 'imp-ctl', 'control'), (2, 'imp-a', 'ann'), (3, 'imp-b', 'bob'), (4, 'imp-c', 'cyd'),
	(5, 'imp-none', 'never imported');
GRANT SELECT ON imp_customers TO regress_imp_app;
SELECT privacy_guard.protect('imp_customers', 'subject', ARRAY['imp_news']);

-- ================================================================ refusals
-- each names the problem, how many rows have it and the first row number;
-- nothing is recorded
SELECT privacy_guard.import_consents(ARRAY['imp-a', '', 'imp-secret-1', NULL],
									 ARRAY['imp_news', 'imp_news', 'imp_news', 'imp_news']);
SELECT privacy_guard.import_consents(ARRAY['imp-a', repeat('x', 1025)], ARRAY['imp_news', 'imp_news']);
SELECT privacy_guard.import_consents(ARRAY['imp-a', 'imp-secret-1', 'imp-b'],
									 ARRAY['imp_news', NULL, 'imp_news']);
SELECT privacy_guard.import_consents(ARRAY['imp-a', 'imp-secret-1', 'imp-b'],
									 ARRAY['imp_news', 'imp_nonexistent', 'imp_nonexistent']);
SELECT privacy_guard.import_consents(ARRAY['imp-a', 'imp-b', 'imp-secret-1'],
									 ARRAY['imp_news', 'imp_news', 'imp_contract']);
SELECT privacy_guard.import_consents(ARRAY['imp-a', 'imp-b', 'imp-secret-1'],
									 ARRAY['imp_news', 'imp_news', 'imp_news'],
									 ARRAY[now() + interval '1 day', NULL, now() - interval '1 second']);
-- a subject and purpose twice is an error, not "last one wins": which
-- valid_until and evidence would be meant is not known
SELECT privacy_guard.import_consents(ARRAY['imp-a', 'imp-secret-1', 'imp-b', 'imp-secret-1', 'imp-b'],
									 ARRAY['imp_news', 'imp_news', 'imp_news', 'imp_news', 'imp_news']);
-- ... also when the subject already has a state for the purpose
SELECT privacy_guard.grant_consent('imp-ctl', 'imp_news');
SELECT privacy_guard.import_consents(ARRAY['imp-ctl', 'imp-a', 'imp-ctl'],
									 ARRAY['imp_news', 'imp_news', 'imp_news']);
-- the same subject for two purposes is two consents
SELECT privacy_guard.import_consents(ARRAY['imp-a', 'imp-a', 'imp-secret-1'],
									 ARRAY['imp_news', 'imp_news.weekly', 'imp_nonexistent']);
-- columns swapped: the "purposes" are subject keys, and are not echoed
SELECT privacy_guard.import_consents(ARRAY['imp_news', 'imp_news'], ARRAY['imp-secret-2', 'imp-secret-3']);
SELECT privacy_guard.import_consents(ARRAY['imp-a', 'imp-b'], ARRAY['imp_news']);
SELECT privacy_guard.import_consents(ARRAY['imp-a', 'imp-b'], ARRAY['imp_news', 'imp_news'],
									 ARRAY[NULL]::timestamptz[]);
SELECT privacy_guard.import_consents(NULL, ARRAY['imp_news']);
SELECT privacy_guard.import_consents(ARRAY[['imp-a'], ['imp-b']], ARRAY[['imp_news'], ['imp_news']]);
SELECT privacy_guard.import_consents(NULL::regclass);
-- the control subject's one grant is all there is
SELECT * FROM imp_recorded;

-- from a table: columns subject and purpose, optional valid_until and evidence
CREATE TABLE imp_src_nosubject (customer text, purpose text);
SELECT privacy_guard.import_consents('imp_src_nosubject');
CREATE TABLE imp_src_badtype (subject text, purpose text, valid_until integer);
SELECT privacy_guard.import_consents('imp_src_badtype');
CREATE TABLE imp_src_badev (subject text, purpose text, evidence bytea);
SELECT privacy_guard.import_consents('imp_src_badev');
-- evidence that is not JSON: the row number, never the evidence (a usual
-- jsonb input error would quote it) or the subject
CREATE TABLE imp_src_text (subject text, purpose text, evidence text);
INSERT INTO imp_src_text VALUES ('imp-a', 'imp_news', '{"form": "paper"}'),
	('imp-secret-1', 'imp_news', 'imp-secret-evidence {'), ('imp-b', 'imp_news', NULL);
SELECT privacy_guard.import_consents('imp_src_text');
-- any other failure while reading the source is the source's own
CREATE VIEW imp_src_fails AS SELECT 'imp-a'::text AS subject, 'imp_news'::text AS purpose,
	(1 / 0)::text AS evidence;
SELECT privacy_guard.import_consents('imp_src_fails');
-- a row of the table with a bad subject
CREATE TABLE imp_src_nulls (subject bigint, purpose text);
INSERT INTO imp_src_nulls VALUES (700001, 'imp_news'), (700002, 'imp_news'), (NULL, 'imp_news');
SELECT privacy_guard.import_consents('imp_src_nulls');
SELECT * FROM imp_recorded;

-- ================================================================ privileges
-- as grant_consent(): the recording level (grant_recorder), nobody else
SET ROLE regress_imp_plain;
SELECT privacy_guard.import_consents(ARRAY['imp-a'], ARRAY['imp_news']);
SELECT privacy_guard.import_consents('imp_src_text');
SELECT privacy_guard._import_write(ARRAY['imp-a'], ARRAY['imp_news'], NULL, NULL);
SELECT privacy_guard._import_write_untriggered(ARRAY['imp-a'], ARRAY['imp_news'], NULL, NULL);
INSERT INTO privacy_guard.consent_state (subject, purpose, status) VALUES ('imp-a', 'imp_news', 'granted');
RESET ROLE;
-- the table form reads with the caller's rights: a recorder that may not
-- read the source records nothing from it
REVOKE ALL ON imp_src_text FROM PUBLIC;
SET ROLE regress_imp_rec;
SELECT privacy_guard.import_consents('imp_src_text');
RESET ROLE;
SELECT * FROM imp_recorded;

-- ================================================================ success
-- rows seen through the protected table before: only the control subject
SET ROLE regress_imp_app;
SET privacy_guard.purpose = 'imp_news';
SELECT id, name FROM imp_customers ORDER BY id;
RESET privacy_guard.purpose;
RESET ROLE;

-- A control subject recorded by grant_consent() and imported subjects, in
-- one transaction (so now() is the same): the state and the ledger entries
-- are the same but for the key (and the ledger id).  imp-w had withdrawn,
-- imp-c had a grant with an expiry: the import replaces both, as
-- grant_consent() does for imp-ctl-w and imp-ctl-c.
SELECT privacy_guard.grant_consent('imp-w', 'imp_news');
SELECT privacy_guard.withdraw_consent('imp-w', 'imp_news');
SELECT privacy_guard.grant_consent('imp-ctl-w', 'imp_news');
SELECT privacy_guard.withdraw_consent('imp-ctl-w', 'imp_news');
SELECT privacy_guard.grant_consent('imp-c', 'imp_news', now() + interval '1 day');
SELECT privacy_guard.grant_consent('imp-ctl-c', 'imp_news', now() + interval '1 day');
SELECT max(id) AS ledger_before FROM privacy_guard.consent_ledger \gset
BEGIN;
SELECT privacy_guard.grant_consent('imp-ctl', 'imp_news', '2100-01-01', '{"form": "paper", "v": 3}');
SELECT privacy_guard.grant_consent('imp-ctl-w', 'imp_news', '2100-01-01', '{"form": "paper", "v": 3}');
SELECT privacy_guard.grant_consent('imp-ctl-c', 'imp_news', NULL, '{"form": "web"}');
SET ROLE regress_imp_rec;
SELECT privacy_guard.import_consents(
	ARRAY['imp-a', 'imp-w', 'imp-c', 'imp-b'],
	ARRAY['imp_news', 'imp_news', 'imp_news', 'imp_news.weekly'],
	ARRAY['2100-01-01', '2100-01-01', NULL, NULL]::timestamptz[],
	ARRAY['{"form": "paper", "v": 3}', '{"form": "paper", "v": 3}', '{"form": "web"}', NULL]::jsonb[])
	AS imported;
RESET ROLE;
-- same state as the control with the same values (no rows: no difference)
SELECT i.subject, i.purpose
  FROM privacy_guard.consent_state i
  JOIN privacy_guard.consent_state k
	ON k.purpose = i.purpose
   AND k.subject = CASE i.subject WHEN 'imp-a' THEN 'imp-ctl' ELSE 'imp-ctl-' || substr(i.subject, 5) END
 WHERE i.subject IN ('imp-a', 'imp-w', 'imp-c')
   AND (i.status, i.valid_until, i.changed_at, i.changed_xid)
	   IS DISTINCT FROM (k.status, k.valid_until, k.changed_at, k.changed_xid);
SELECT subject, purpose, status, valid_until, changed_at = now() AS changed_now,
	   changed_xid = pg_current_xact_id() AS changed_here
  FROM privacy_guard.consent_state
 WHERE subject IN ('imp-ctl', 'imp-ctl-w', 'imp-ctl-c', 'imp-a', 'imp-w', 'imp-c', 'imp-b')
 ORDER BY subject, purpose;
-- the ledger: one entry per row, in input order, with its evidence, by the session user
SELECT id - :ledger_before AS n, subject, purpose, action, valid_until, evidence,
	   recorded_at = now() AS recorded_now, recorded_by
  FROM privacy_guard.consent_ledger
 WHERE id > :ledger_before
 ORDER BY id;
COMMIT;
SELECT subject, purpose, active FROM privacy_guard.consents
 WHERE subject IN ('imp-a', 'imp-w', 'imp-c', 'imp-b') ORDER BY subject, purpose;
SELECT s, privacy_guard.has_consent(s, 'imp_news') AS news,
	   privacy_guard.has_consent(s, 'imp_news.weekly') AS weekly
  FROM unnest(ARRAY['imp-a', 'imp-b', 'imp-w', 'imp-none']) s ORDER BY s;

-- the same session sees the imported consents at its next statement
-- (imp-b consented to the child purpose only, imp-none to nothing)
SET ROLE regress_imp_app;
SET privacy_guard.purpose = 'imp_news';
SELECT id, name FROM imp_customers ORDER BY id;
RESET privacy_guard.purpose;
RESET ROLE;

-- importing again is granting again: a second ledger entry, the state updated
SET ROLE regress_imp_rec;
SELECT privacy_guard.import_consents(ARRAY['imp-a'], ARRAY['imp_news'], ARRAY['2200-01-01']::timestamptz[]);
RESET ROLE;
SELECT subject, purpose, status, valid_until FROM privacy_guard.consent_state WHERE subject = 'imp-a';
SELECT count(*) AS imp_a_entries FROM privacy_guard.consent_ledger WHERE subject = 'imp-a';
-- an empty import records nothing
SELECT privacy_guard.import_consents('{}'::text[], '{}'::text[]);

-- ================================================================ from a table or view
-- any subject type (its text form is the key), date valid_until, json evidence
CREATE TABLE imp_src (customer_id bigint, subject bigint, purpose varchar, valid_until date,
					  evidence json, other text);
INSERT INTO imp_src
SELECT g, 700000 + g, 'imp_news', DATE '2100-01-01',
	   json_build_object('campaign', 'spring', 'line', g), 'ignored'
  FROM generate_series(1, 20) g;
GRANT SELECT ON imp_src TO regress_imp_rec;
SET ROLE regress_imp_rec;
SELECT privacy_guard.import_consents('imp_src') AS imported;
-- a view: the caller's own query, here only the odd ones, for the child purpose
CREATE TEMP VIEW imp_src_v AS
	SELECT subject, 'imp_news.weekly' AS purpose FROM imp_src WHERE subject % 2 = 1;
SELECT privacy_guard.import_consents('imp_src_v') AS imported;
RESET ROLE;
SELECT purpose, count(*), min(subject), max(subject), min(valid_until), max(valid_until)
  FROM privacy_guard.consent_state WHERE subject ~ '^7[0-9]{5}$' GROUP BY purpose ORDER BY purpose;
SELECT subject, purpose, valid_until, evidence FROM privacy_guard.consent_ledger
 WHERE subject IN ('700001', '700020') ORDER BY id;

-- ================================================================ triggers
-- With the consent tables' own triggers only, the import does their work
-- itself once (foreign key, changed_xid stamp, invalidation).  Another
-- trigger there makes it fire every trigger as usual.
SELECT privacy_guard._import_triggers_known();
CREATE TABLE imp_trigger_log (subject text, op text);
CREATE FUNCTION imp_log_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.imp_trigger_log VALUES (NEW.subject, TG_OP);
	RETURN NEW;
END $$;
CREATE TRIGGER imp_log AFTER INSERT OR UPDATE ON privacy_guard.consent_state
	FOR EACH ROW EXECUTE FUNCTION imp_log_row();
SELECT privacy_guard._import_triggers_known();
SELECT privacy_guard.import_consents(ARRAY['imp-t1', 'imp-a', 'imp-t2'],
									 ARRAY['imp_news', 'imp_news', 'imp_news']);
SELECT subject, op FROM imp_trigger_log ORDER BY subject;
SELECT subject, status, changed_xid = (SELECT changed_xid FROM privacy_guard.consent_state
										WHERE subject = 'imp-t1') AS same_xact
  FROM privacy_guard.consent_state WHERE subject IN ('imp-t1', 'imp-a', 'imp-t2') ORDER BY subject;
DROP TRIGGER imp_log ON privacy_guard.consent_state;
SELECT privacy_guard._import_triggers_known();

-- ================================================================ a large import
-- more subjects than a session patches its consent store by: sessions
-- reload it instead; the rows are visible at the next statement all the same
INSERT INTO imp_customers SELECT 100 + g, 'imp-big-' || g, 'big' FROM generate_series(1, 25000) g;
SET ROLE regress_imp_app;
SET privacy_guard.purpose = 'imp_news';
SELECT count(*) AS visible_before FROM imp_customers WHERE name = 'big';
RESET privacy_guard.purpose;
RESET ROLE;
SELECT privacy_guard.import_consents(array_agg('imp-big-' || g), array_agg('imp_news'::text))
  FROM generate_series(1, 25000) g;
SET ROLE regress_imp_app;
SET privacy_guard.purpose = 'imp_news';
SELECT count(*) AS visible_after FROM imp_customers WHERE name = 'big';
RESET privacy_guard.purpose;
RESET ROLE;
SELECT * FROM imp_recorded;
