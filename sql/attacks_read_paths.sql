-- Read paths around the rules: statement forms, plans and catalogs that
-- might show rows the rules hide.  rp-1 and rp-2 consent to marketing,
-- rp-3 asked to be forgotten, rp-4 and rp-5 never consented.
-- DETAIL, HINT and CONTEXT are part of what must not leak: all are shown
\set VERBOSITY default
-- the owner reads its own table under billing below
SELECT privacy_guard.allow_purpose('regress_owner', 'billing');

SET ROLE regress_owner;
CREATE TABLE rp_people (id int PRIMARY KEY, subject text, email text);
INSERT INTO rp_people SELECT g, 'rp-' || g, 'rp' || g || '@example.org' FROM generate_series(1, 5) g;
CREATE INDEX rp_people_subject ON rp_people (subject);
CREATE TABLE rp_copy (id int, email text);
GRANT SELECT, INSERT, UPDATE, DELETE ON rp_people TO regress_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON rp_copy TO regress_app, regress_outsider;
RESET ROLE;
SELECT privacy_guard.protect('rp_people', 'subject', ARRAY['billing', 'marketing']);
SELECT privacy_guard.grant_consent('rp-1', 'marketing');
SELECT privacy_guard.grant_consent('rp-2', 'marketing');
SELECT privacy_guard.forget('rp-3') > 0 AS filed;

-- attack: an upsert (ON CONFLICT DO UPDATE) reaching a hidden row
SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';
INSERT INTO rp_people VALUES (4, 'rp-4', 'new@example.org')
	ON CONFLICT (id) DO UPDATE SET email = 'upserted' RETURNING *;
INSERT INTO rp_people VALUES (1, 'rp-1', 'new@example.org')
	ON CONFLICT (id) DO UPDATE SET email = excluded.email RETURNING id;   -- a visible row: fine
RESET ROLE;
SELECT id, email FROM rp_people WHERE id IN (1, 4) ORDER BY id;
UPDATE rp_people SET email = 'rp1@example.org' WHERE id = 1;

-- attack: INSERT ... ON CONFLICT DO NOTHING over hidden rows: RETURNING
-- would have to show rows the rules hide, so it is refused; without it the
-- insert is skipped (that it was skipped is the unique-key channel)
SET ROLE regress_app;
INSERT INTO rp_people VALUES (3, 'rp-3', 'x'), (5, 'rp-5', 'y') ON CONFLICT DO NOTHING RETURNING *;
INSERT INTO rp_people VALUES (3, 'rp-3', 'x'), (5, 'rp-5', 'y') ON CONFLICT DO NOTHING;
RESET ROLE;
SELECT id, email FROM rp_people WHERE id IN (3, 5) ORDER BY id;

-- attack: a protected table as the source of UPDATE ... FROM,
-- INSERT ... SELECT and DELETE ... USING on an unprotected table
SET ROLE regress_app;
INSERT INTO rp_copy SELECT id, NULL FROM generate_series(1, 5) AS id;
UPDATE rp_copy c SET email = p.email FROM rp_people p WHERE p.id = c.id;
INSERT INTO rp_copy SELECT id + 10, email FROM rp_people;
DELETE FROM rp_copy c USING rp_people p WHERE p.id = c.id AND c.email IS NULL;
SELECT * FROM rp_copy ORDER BY id;
DELETE FROM rp_copy;
RESET ROLE;

-- attack: a view owned by a bound role without security_invoker, used by a
-- role with SELECT on the view but no authorisation
SET ROLE regress_owner;
CREATE VIEW rp_owner_view AS SELECT id, email FROM rp_people;
GRANT SELECT ON rp_owner_view TO regress_app, regress_outsider;
RESET ROLE;
SET ROLE regress_outsider;
SET privacy_guard.purpose = 'billing';
SELECT count(*) FROM rp_owner_view;
SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';
SELECT id FROM rp_owner_view ORDER BY id;
RESET ROLE;

-- attack: a materialized view refreshed without a purpose, or keeping rows
-- the rules hide (it stores what its refresh could see, nothing more; a
-- copy made by an authorised reader is no longer protected: README)
SET ROLE regress_owner;
RESET privacy_guard.purpose;
CREATE MATERIALIZED VIEW rp_snapshot AS SELECT id FROM rp_people WITH NO DATA;
REFRESH MATERIALIZED VIEW rp_snapshot;
SET privacy_guard.purpose = 'billing';
REFRESH MATERIALIZED VIEW rp_snapshot;
SELECT array_agg(id ORDER BY id) AS stored FROM rp_snapshot;
DROP MATERIALIZED VIEW rp_snapshot;
SET privacy_guard.purpose = 'marketing';
RESET ROLE;

-- attack: a rule on an unprotected table, owned by a bound role, whose
-- action reads the protected table for whoever triggers it
SET ROLE regress_owner;
CREATE TABLE rp_trigger_table (n int);
CREATE RULE rp_exfiltrate AS ON INSERT TO rp_trigger_table
	DO ALSO INSERT INTO rp_copy SELECT id, email FROM rp_people;
GRANT INSERT ON rp_trigger_table TO regress_app, regress_outsider;
RESET ROLE;
SET ROLE regress_app;
INSERT INTO rp_trigger_table VALUES (1);
SELECT id FROM rp_copy ORDER BY id;
DELETE FROM rp_copy;
SET ROLE regress_outsider;
SET privacy_guard.purpose = 'billing';
INSERT INTO rp_trigger_table VALUES (2);
RESET ROLE;
SELECT count(*) AS copied FROM rp_copy;

-- attack: a plan cached by a role the rules do not bind, reused after SET ROLE
SET plan_cache_mode = force_generic_plan;
PREPARE rp_bypass AS SELECT array_agg(id ORDER BY id) FROM rp_people;
EXECUTE rp_bypass;
SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';
EXECUTE rp_bypass;
RESET ROLE;
DEALLOCATE rp_bypass;

-- attack: an inlined SQL function in a statement planned by a superuser and
-- executed by a bound role (the shape of CVE-2023-2455)
CREATE FUNCTION public.rp_ids() RETURNS SETOF int LANGUAGE sql STABLE
	AS 'SELECT id FROM public.rp_people';
PREPARE rp_inlined AS SELECT array_agg(i ORDER BY i) FROM public.rp_ids() i;
EXECUTE rp_inlined;
SET ROLE regress_app;
EXECUTE rp_inlined;
RESET ROLE;
DEALLOCATE rp_inlined;
DROP FUNCTION public.rp_ids();
RESET plan_cache_mode;

-- attack: TABLESAMPLE and index-only scans read rows without the usual scan
SET ROLE regress_app;
SELECT array_agg(id ORDER BY id) FROM rp_people TABLESAMPLE SYSTEM (100);
SELECT array_agg(id ORDER BY id) FROM rp_people TABLESAMPLE BERNOULLI (100) REPEATABLE (1);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT array_agg(subject ORDER BY subject) FROM rp_people WHERE subject > '';
SELECT count(*) FROM rp_people WHERE id > 0;
RESET enable_seqscan;
RESET enable_bitmapscan;
RESET ROLE;

-- attack: SELECT ... FOR UPDATE and SKIP LOCKED see and lock only visible rows
SET ROLE regress_app;
BEGIN;
SELECT id FROM rp_people ORDER BY id FOR UPDATE;
SELECT id FROM rp_people ORDER BY id FOR SHARE SKIP LOCKED;
COMMIT;
RESET ROLE;

-- attack: a leaky function in WHERE that raises an error on a hidden row
CREATE FUNCTION public.rp_fail(text, text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS
	$$BEGIN IF $1 NOT IN ('rp-1', 'rp-2') THEN RAISE EXCEPTION 'leaked %', $2; END IF; RETURN true; END$$;
SET ROLE regress_app;
SELECT id FROM rp_people WHERE public.rp_fail(subject, email) ORDER BY id;
SELECT id FROM rp_people p WHERE EXISTS (SELECT 1 FROM rp_people q WHERE public.rp_fail(q.subject, q.email)
										 AND q.id = p.id) ORDER BY id;
RESET ROLE;
DROP FUNCTION public.rp_fail(text, text);

-- attack: MERGE deleting through hidden rows, or inserting over them
SET ROLE regress_app;
MERGE INTO rp_people p USING (SELECT g AS id FROM generate_series(1, 5) g) s ON p.id = s.id
	WHEN MATCHED AND p.id > 1 THEN DELETE;
MERGE INTO rp_people p USING (VALUES (4, 'rp-4')) s (id, subject) ON p.id = s.id
	WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.subject, 'merged');
RESET ROLE;
SELECT id, email FROM rp_people ORDER BY id;

-- attack: extended statistics (pg_stats_ext, pg_stats_ext_exprs) hold
-- most common values of the protected table
-- (and those of an expression index, which PostgreSQL shows to the index's
-- owner only: see README, Limits)
CREATE STATISTICS rp_people_stats (mcv) ON subject, email FROM rp_people;
CREATE STATISTICS rp_people_expr (mcv) ON lower(email), subject FROM rp_people;
CREATE INDEX rp_people_lower ON rp_people (lower(email));
ANALYZE rp_people;
SELECT count(*) AS ext_stats_superuser FROM pg_stats_ext WHERE tablename = 'rp_people';
SELECT count(*) AS index_stats_superuser FROM pg_stats WHERE tablename = 'rp_people_lower';
SET ROLE regress_app;
SELECT count(*) AS ext_stats FROM pg_stats_ext WHERE tablename = 'rp_people';
SELECT count(*) AS ext_expr_stats FROM pg_stats_ext_exprs WHERE tablename = 'rp_people';
SELECT count(*) AS col_stats FROM pg_stats WHERE tablename = 'rp_people';
SELECT count(*) AS index_stats FROM pg_stats WHERE tablename = 'rp_people_lower';
RESET ROLE;
DROP STATISTICS rp_people_stats, rp_people_expr;
DROP INDEX rp_people_lower;

-- attack: EXPLAIN ANALYZE runs the statement: without a purpose it fails
-- like the statement itself; plain EXPLAIN shows the plan, no values
SET ROLE regress_app;
RESET privacy_guard.purpose;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM rp_people;
EXPLAIN (COSTS OFF) SELECT * FROM rp_people WHERE subject = 'rp-3';
RESET ROLE;

DROP TABLE rp_trigger_table;
DROP VIEW rp_owner_view;
SELECT privacy_guard.unprotect('rp_people');
DROP TABLE rp_people, rp_copy;
