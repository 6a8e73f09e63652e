-- Tagged values under a parallel plan (issue 19, A2): the registry and the
-- consent store are loaded once for the statement, not once per value, so
-- a parallel reveal() over thousands of rows uses a bounded number of
-- loads and gives the rows a serial plan gives.
\set VERBOSITY terse
-- the purposes of the tests of tagged values, as tagged.sql defines them
SELECT privacy_guard.define_purpose('tg_billing', 'contract');
SELECT privacy_guard.define_purpose('tg_mkt', 'consent');
SELECT privacy_guard.define_purpose('tg_mkt.email', 'consent');
SELECT privacy_guard.define_purpose('tg_stats', 'legitimate_interests');
SELECT privacy_guard.define_purpose('tg_other', 'contract');
SELECT privacy_guard.allow_purpose('regress_tg_app', 'tg_billing');
SELECT privacy_guard.allow_purpose('regress_tg_app', 'tg_mkt');
SELECT privacy_guard.allow_purpose('regress_tg_app', 'tg_stats');
SELECT privacy_guard.allow_purpose('regress_tg_unauth', 'tg_other');
SET search_path = public, privacy_guard;
CREATE TABLE tp_values (id int, v tagged_text);
INSERT INTO tp_values
SELECT g, tag('value ' || g, ARRAY['tg_mkt'], (800000 + g % 100)::text)
  FROM generate_series(1, 3000) g;
SELECT count(*) FROM (SELECT grant_consent((800000 + g)::text, 'tg_mkt')
						FROM generate_series(0, 49) g) s;
ANALYZE tp_values;
GRANT SELECT ON tp_values TO regress_tg_app;

-- the query at top level (PL/pgSQL does not plan its queries in parallel),
-- as the first of a new session (nothing loaded yet); every load of the
-- transaction is held (retired) until it ends
\c -
SET search_path = public, privacy_guard;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT count(reveal(v)) FROM tp_values;
BEGIN;
SET LOCAL ROLE regress_tg_app;
SET LOCAL privacy_guard.purpose = 'tg_mkt';
SELECT count(reveal(v)) AS parallel_revealed FROM tp_values;
RESET ROLE;
SELECT count(*) <= 4 AS few_loads FROM pg_backend_memory_contexts
 WHERE name IN ('privacy_guard registry', 'privacy_guard consent store');
COMMIT;
-- the serial plan gives the same
SET max_parallel_workers_per_gather = 0;
BEGIN;
SET LOCAL ROLE regress_tg_app;
SET LOCAL privacy_guard.purpose = 'tg_mkt';
SELECT count(reveal(v)) AS serial_revealed FROM tp_values;
COMMIT;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
