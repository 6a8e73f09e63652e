-- Purging follows foreign keys (SPEC 4): when rows of a protected table and
-- the rows of another protected table that refer to them expire together,
-- one round removes both, the referencing rows first, with no error.
-- A purge order that ignores foreign keys deletes the referenced rows
-- first, fails on them and leaves them stored until a later round; before
-- this file no test noticed (docs/mutation_check.md, 6c).
SET ROLE regress_owner;
-- created parent first, so neither creation order (OIDs) nor names put the
-- referencing table first: only the foreign key does
CREATE TABLE po_accounts (id bigint PRIMARY KEY, opened timestamptz NOT NULL);
CREATE TABLE po_logins (id bigint PRIMARY KEY, account_id bigint REFERENCES po_accounts,
						at timestamptz NOT NULL);
INSERT INTO po_accounts VALUES (8601, now() - interval '40 days'), (8602, now() - interval '40 days'),
							   (8603, now());
INSERT INTO po_logins VALUES (10, 8601, now() - interval '40 days'), (11, 8602, now() - interval '40 days'),
							 (12, 8603, now()), (13, 8603, now() - interval '40 days');
GRANT SELECT ON po_accounts, po_logins TO regress_app;
RESET ROLE;
SELECT privacy_guard.protect('po_accounts', 'id', ARRAY['billing'], interval '30 days', 'opened');
SELECT privacy_guard.protect('po_logins', 'account_id', ARRAY['billing'], interval '30 days', 'at');

-- the order a round follows: the referencing table first
SELECT part, root FROM privacy_guard._purge_targets()
 WHERE root IN ('po_accounts'::regclass, 'po_logins'::regclass);

-- one round: both tables' expired rows go, and neither reports an error
SELECT r -> 'expired' -> 'public.po_logins' AS logins,
	   r -> 'expired' -> 'public.po_accounts' AS accounts,
	   r -> 'errors' ? 'public.po_accounts' AS accounts_error,
	   r -> 'errors' ? 'public.po_logins' AS logins_error
  FROM privacy_guard.run_maintenance() r;
-- what is stored (read as superuser): only the current rows
SELECT id FROM po_accounts ORDER BY id;
SELECT id, account_id FROM po_logins ORDER BY id;
-- and what the application sees
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT a.id, array_agg(l.id ORDER BY l.id) AS logins
  FROM po_accounts a LEFT JOIN po_logins l ON l.account_id = a.id GROUP BY a.id ORDER BY a.id;
RESET privacy_guard.purpose;
RESET ROLE;

SELECT privacy_guard.unprotect('po_logins');
SELECT privacy_guard.unprotect('po_accounts');
DROP TABLE po_logins, po_accounts;
