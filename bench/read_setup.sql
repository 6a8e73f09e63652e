-- bench/read_setup.sql -- data set for bench/read_bench.sh (SPEC section 5, "Reads")
--
-- Run by read_bench.sh as the cluster's superuser, with psql variables
--   rows      number of rows per table (SPEC: 1,000,000)
--   subjects  number of data subjects   (SPEC: 100,000)
--   noret     'on' to also build prot_nr_t (protected without retention)
--
-- Builds:
--   plain_t     unprotected table
--   prot_t      same rows, privacy_guard.protect()ed with a 10-year retention
--   prot_nr_t   same rows, protected without retention (diagnostic; optional)
--   rls_t       same rows, with the hand-written RLS policy a user would write
--               instead: EXISTS over a plain consent table
--   consent_tbl that plain consent table (primary key (subject, purpose))
-- and role bench_app (LOGIN, not superuser, not BYPASSRLS), authorised for
-- purposes billing (contract) and marketing (consent), with SELECT on all.
-- 60% of subjects (s % 5 < 3) consent to marketing, in both consent stores.

\set ON_ERROR_STOP on
\set QUIET on
SET client_min_messages = warning;

CREATE EXTENSION privacy_guard;

-- purposes and the application role
SELECT privacy_guard.define_purpose('billing', 'contract', 'Invoicing and payments');
SELECT privacy_guard.define_purpose('marketing', 'consent', 'Marketing e-mails');
CREATE ROLE bench_app LOGIN NOSUPERUSER NOBYPASSRLS;
SELECT privacy_guard.allow_purpose('bench_app', 'billing');
SELECT privacy_guard.allow_purpose('bench_app', 'marketing');

-- the unprotected reference table; ids in order, subjects interleaved
CREATE TABLE plain_t (
	id			bigint PRIMARY KEY,
	customer_id bigint NOT NULL,
	amount		numeric(12, 2) NOT NULL,
	note		text NOT NULL,
	created_at	timestamptz NOT NULL
);
INSERT INTO plain_t
SELECT i,
	   (i % :subjects) + 1,
	   ((i * 7919) % 100000) / 100.0,
	   substr(md5(i::text), 1, 30),
	   now() - (i % 1000) * interval '1 hour'	-- recent: all within retention
  FROM generate_series(1::bigint, :rows) AS i;

-- identical copies (same physical order, same pages)
CREATE TABLE prot_t (LIKE plain_t INCLUDING ALL);
INSERT INTO prot_t SELECT * FROM plain_t ORDER BY id;
CREATE TABLE rls_t (LIKE plain_t INCLUDING ALL);
INSERT INTO rls_t SELECT * FROM plain_t ORDER BY id;
\if :noret
CREATE TABLE prot_nr_t (LIKE plain_t INCLUDING ALL);
INSERT INTO prot_nr_t SELECT * FROM plain_t ORDER BY id;
\endif

-- consent to the consent-basis purpose for 60% of subjects, in one call each
SELECT count(g) AS grants
  FROM (SELECT privacy_guard.grant_consent(s::text, 'marketing') AS g
		  FROM generate_series(1, :subjects) AS s
		 WHERE s % 5 < 3) AS x;

-- privacy_guard protection: contract purpose billing, consent purpose marketing
SELECT privacy_guard.protect('prot_t', 'customer_id', ARRAY['billing', 'marketing'],
							 '10 years', 'created_at');
\if :noret
SELECT privacy_guard.protect('prot_nr_t', 'customer_id', ARRAY['billing', 'marketing']);
\endif

-- the hand-written alternative: a consent table and an EXISTS policy
CREATE TABLE consent_tbl (
	subject		bigint NOT NULL,
	purpose		text NOT NULL,
	granted		boolean NOT NULL,
	PRIMARY KEY (subject, purpose)
);
INSERT INTO consent_tbl
SELECT s, 'marketing', s % 5 < 3 FROM generate_series(1, :subjects) AS s;
ALTER TABLE rls_t ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY consent_only ON rls_t
	USING (EXISTS (SELECT 1 FROM consent_tbl c
					WHERE c.subject = customer_id
					  AND c.purpose = current_setting('app.purpose')
					  AND c.granted));

GRANT SELECT ON plain_t, prot_t, rls_t, consent_tbl TO bench_app;
\if :noret
GRANT SELECT ON prot_nr_t TO bench_app;
\endif

-- hint bits, visibility map and statistics everywhere (incl. privacy_guard's tables)
VACUUM (FREEZE, ANALYZE);
CHECKPOINT;
