-- What pg_upgrade needs of the extension: no column of its tables (nor of a
-- composite type, domain or array in them) has a reg* type pg_upgrade
-- refuses, so a custom anonymizer is stored as its function's
-- schema-qualified signature and found again each time it is used: it
-- follows nothing but the signature, and a function gone, or no longer
-- taking and returning the column's type, fails that table's anonymisation
-- (the request blocked, the row kept) until the owner sets it again.
-- Stands alone: its own purpose, role, table and subjects (prefix upg_).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS privacy_guard;
RESET client_min_messages;

-- the types pg_upgrade refuses in user tables, wherever they hide
WITH RECURSIVE refused(oid) AS (
	SELECT t.oid FROM pg_type t
	 WHERE t.oid IN ('regproc'::regtype, 'regprocedure'::regtype, 'regoper'::regtype,
					 'regoperator'::regtype, 'regconfig'::regtype, 'regdictionary'::regtype,
					 'regnamespace'::regtype, 'regcollation'::regtype)
	UNION
	SELECT t.oid FROM pg_type t, refused r
	 WHERE (t.typtype = 'd' AND t.typbasetype = r.oid)				-- domains over them
		OR (t.typelem = r.oid AND t.typlen = -1)					-- arrays of them
		OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_attribute a	-- composites holding them
										 WHERE a.attrelid = t.typrelid AND a.atttypid = r.oid
										   AND NOT a.attisdropped)))
SELECT c.oid::regclass AS tbl, a.attname, a.atttypid::regtype
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'privacy_guard'::regnamespace AND c.relkind IN ('r', 'p', 'm')
   AND a.atttypid IN (SELECT oid FROM refused)
 ORDER BY 1, 2;

SELECT privacy_guard.define_purpose('upg_billing', 'contract');
CREATE ROLE upg_owner;
CREATE SCHEMA upg_fns;
GRANT USAGE ON SCHEMA upg_fns TO PUBLIC;
CREATE FUNCTION upg_fns.initials(text) RETURNS text LANGUAGE sql IMMUTABLE
	AS $$ SELECT left($1, 1) || '.' $$;
CREATE TABLE upg_people (pk int PRIMARY KEY, subject text, nick text);
ALTER TABLE upg_people OWNER TO upg_owner;
INSERT INTO upg_people VALUES (1, 'upg-1', 'Anna'), (2, 'upg-2', 'Bert'), (3, 'upg-3', 'Cleo');
SELECT privacy_guard.protect('upg_people', 'subject', ARRAY['upg_billing'], on_forget => 'anonymize');
SELECT privacy_guard.set_anonymizer('upg_people', 'nick', 'upg_fns.initials');

-- stored by signature, schema-qualified, and used by it
SELECT method, fn FROM privacy_guard.anonymizer WHERE relid = 'upg_people'::regclass;
SELECT anonymizer FROM privacy_guard.processing_register
 WHERE table_name = 'upg_people'::regclass AND column_name = 'nick';
SELECT privacy_guard._anonymize_set('upg_people');
SELECT privacy_guard.forget('upg-1') IS NOT NULL AS filed;
SELECT privacy_guard.run_maintenance() IS NOT NULL AS round_ran;
SELECT pk, subject, nick FROM upg_people ORDER BY pk;
SELECT privacy_guard.erasure_status('upg-1');

-- the function gone: the table's anonymisation fails, the row stays
DROP FUNCTION upg_fns.initials(text);
SELECT privacy_guard._anonymize_set('upg_people');
SELECT privacy_guard.forget('upg-2') AS req \gset
SELECT privacy_guard.run_maintenance() IS NOT NULL AS round_ran;
SELECT state, error FROM privacy_guard.erasure_request WHERE id = :req;
SELECT pk, subject, nick FROM upg_people ORDER BY pk;

-- a function of that signature again, returning another type: still refused
CREATE FUNCTION upg_fns.initials(text) RETURNS varchar LANGUAGE sql IMMUTABLE
	AS $$ SELECT left($1, 1) $$;
SELECT privacy_guard._anonymize_set('upg_people');
SELECT privacy_guard.run_maintenance() IS NOT NULL AS round_ran;
SELECT state FROM privacy_guard.erasure_request WHERE id = :req;

-- the same signature and type again: it is the signature that was chosen,
-- so it is used (whoever may create it in that schema is trusted as before)
DROP FUNCTION upg_fns.initials(text);
CREATE FUNCTION upg_fns.initials(text) RETURNS text LANGUAGE sql IMMUTABLE
	AS $$ SELECT upper(left($1, 2)) $$;
SELECT privacy_guard.run_maintenance() IS NOT NULL AS round_ran;
SELECT state FROM privacy_guard.erasure_request WHERE id = :req;
SELECT pk, subject, nick FROM upg_people ORDER BY pk;

-- the checks of set_anonymizer stand: the owner only, an existing function
-- of the column's type
SELECT privacy_guard.set_anonymizer('upg_people', 'nick', 'upg_fns.nothing');
CREATE ROLE upg_stranger;
GRANT EXECUTE ON FUNCTION privacy_guard.set_anonymizer(regclass, name, text) TO upg_owner, upg_stranger;
SET ROLE upg_owner;
SELECT privacy_guard.set_anonymizer('upg_people', 'nick', 'hash');
RESET ROLE;
SET ROLE upg_stranger;
SELECT privacy_guard.set_anonymizer('upg_people', 'nick', 'upg_fns.initials');
RESET ROLE;
SELECT method, fn FROM privacy_guard.anonymizer WHERE relid = 'upg_people'::regclass;

SELECT privacy_guard.unprotect('upg_people');
DROP TABLE upg_people;
DROP SCHEMA upg_fns CASCADE;
REVOKE EXECUTE ON FUNCTION privacy_guard.set_anonymizer(regclass, name, text) FROM upg_owner, upg_stranger;
DROP ROLE upg_stranger;
DROP ROLE upg_owner;
SELECT privacy_guard.drop_purpose('upg_billing');
