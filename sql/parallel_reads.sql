-- Parallel scans of a protected table: with leader participation off every
-- row is checked in a parallel worker; the answer is the serial plan's; the
-- access log counts the statement once (in the leader) and knows the rows
-- and subjects the workers read.  Without the library preloaded the plans
-- stay serial and nothing is logged (expected/parallel_reads_1.out).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS privacy_guard;
SELECT privacy_guard.define_purpose('parr_mail', 'consent');
CREATE ROLE parr_app;
SELECT privacy_guard.allow_purpose('parr_app', 'parr_mail');
CREATE TABLE parr_orders (id int, customer int, note text);
INSERT INTO parr_orders SELECT g, g % 100, md5(g::text) FROM generate_series(1, 20000) g;
GRANT SELECT ON parr_orders TO parr_app;
SELECT privacy_guard.protect('parr_orders', 'customer', ARRAY['parr_mail']);
SELECT count(privacy_guard.grant_consent(g::text, 'parr_mail')) FROM generate_series(1, 60) g;
RESET client_min_messages;

SET ROLE parr_app;
SET privacy_guard.purpose = 'parr_mail';
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT count(*), count(DISTINCT customer) FROM parr_orders;

-- the parallel read, logged
RESET ROLE;
SET privacy_guard.audit = on;
SET ROLE parr_app;
SELECT count(*) AS parallel, count(DISTINCT customer) AS customers FROM parr_orders;
RESET ROLE;
RESET privacy_guard.audit;
SET ROLE parr_app;

-- the same answer from a serial plan (not logged)
SET max_parallel_workers_per_gather = 0;
SELECT count(*) AS serial, count(DISTINCT customer) AS customers FROM parr_orders;
RESET ROLE;

SELECT privacy_guard._flush_access_log() >= 0 AS flushed;
SELECT sum(statements) AS statements, sum(rows) AS rows
  FROM privacy_guard.access_log WHERE table_name = 'public.parr_orders';
-- subjects whose rows only workers read are found
SELECT count(*) > 0 AS found_5 FROM privacy_guard.access_history('5', '-infinity')
 WHERE table_name = 'public.parr_orders';
SELECT count(*) > 0 AS found_59 FROM privacy_guard.access_history('59', '-infinity')
 WHERE table_name = 'public.parr_orders';

-- behind a transaction pooler (purpose_scope = 'transaction'): the purpose
-- set for the transaction is the workers' purpose too
SET privacy_guard.purpose_scope = 'transaction';
SET ROLE parr_app;
SET max_parallel_workers_per_gather = 2;
BEGIN;
SET LOCAL privacy_guard.purpose = 'parr_mail';
SELECT count(*) AS parallel_in_transaction FROM parr_orders;
COMMIT;
RESET ROLE;
RESET privacy_guard.purpose_scope;

SET client_min_messages = warning;
SELECT privacy_guard.unprotect('parr_orders');
DROP TABLE parr_orders;
SELECT privacy_guard.disallow_purpose('parr_app', 'parr_mail');
DROP ROLE parr_app;
DELETE FROM privacy_guard.consent_state WHERE purpose = 'parr_mail';
