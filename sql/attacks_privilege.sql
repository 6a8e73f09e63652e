-- Privilege escalation: application, recorder, administrator and table
-- owner roles trying to reach rights they were not given.  Each block is
-- named after the attack it tries.
\set VERBOSITY terse

CREATE ROLE regress_admin LOGIN;
CREATE ROLE regress_recorder LOGIN;
SELECT privacy_guard.grant_admin('regress_admin');
SELECT privacy_guard.grant_recorder('regress_recorder');
SET ROLE regress_owner;
CREATE TABLE pv_accounts (id bigint, email text, joined timestamptz DEFAULT now());
INSERT INTO pv_accounts (id, email) SELECT g, 'pv' || g || '@example.org' FROM generate_series(3101, 3105) g;
GRANT SELECT ON pv_accounts TO regress_app, regress_recorder, regress_admin;
RESET ROLE;
SELECT privacy_guard.protect('pv_accounts', 'id', ARRAY['billing']);

-- attack: a recorder reaches administration
SET ROLE regress_recorder;
SELECT privacy_guard.define_purpose('pv_recorder_purpose', 'contract');
SELECT privacy_guard.allow_purpose('regress_recorder', 'billing');
SELECT privacy_guard.protect('pv_accounts', 'id', ARRAY['marketing']);
SELECT privacy_guard.unprotect('pv_accounts');
SELECT privacy_guard.run_maintenance();
SELECT privacy_guard.grant_recorder('regress_app');
SELECT count(*) FROM privacy_guard.consent_ledger;
SELECT count(*) FROM privacy_guard.erasure_requests;
-- what it may do works, and reads nothing through it
SELECT privacy_guard.grant_consent('pv-1', 'marketing');
SET privacy_guard.purpose = 'billing';
SELECT count(*) FROM pv_accounts;
RESET privacy_guard.purpose;
RESET ROLE;
SELECT count(*) AS recorder_authorisations FROM privacy_guard.purpose_roles
 WHERE role = 'regress_recorder'::regrole;

-- attack: an application runs SQL as a table owner through the engine's
-- entry point, or reads the digest key to link receipts to people
SET ROLE regress_app;
SELECT privacy_guard._exec_as_owner('pv_accounts', 'DELETE FROM pv_accounts', NULL, NULL);
SELECT privacy_guard._secret();
SELECT key FROM privacy_guard.secret;
SELECT privacy_guard._subject_digest('1');
SELECT privacy_guard._random_bytes(32) IS NOT NULL;
RESET ROLE;
SELECT count(*) AS accounts_left FROM pv_accounts;

-- attack: an application writes privacy_guard's registries directly
SET ROLE regress_app;
UPDATE privacy_guard.protected_table SET purposes = ARRAY['billing', 'analytics'];
INSERT INTO privacy_guard.purpose_role VALUES ('regress_app', 'analytics');
DELETE FROM privacy_guard.erasure_request;
UPDATE privacy_guard.consent_state SET status = 'granted';
DELETE FROM privacy_guard.protected_part;
TRUNCATE privacy_guard.anonymizer;
RESET ROLE;
SELECT purposes FROM privacy_guard.protected_tables WHERE table_name = 'pv_accounts'::regclass;

-- attack: an administrator takes the rules off a table it does not own
SET ROLE regress_admin;
SELECT privacy_guard.unprotect('pv_accounts');
SELECT privacy_guard.protect('pv_accounts', 'id', ARRAY['billing', 'analytics']);
SELECT privacy_guard.set_anonymizer('pv_accounts', 'email', 'null');
-- nor reads it without an authorised purpose: administration is not a bypass
SET privacy_guard.purpose = 'billing';
SELECT count(*) FROM pv_accounts;
RESET privacy_guard.purpose;
-- nor hands administration on
SELECT privacy_guard.grant_admin('regress_app');
RESET ROLE;
SELECT purposes FROM privacy_guard.protected_tables WHERE table_name = 'pv_accounts'::regclass;

-- attack: the owner rewrites the subject column of every row, hidden ones
-- included, with ALTER COLUMN ... TYPE ... USING (PostgreSQL refuses to
-- change a column a policy uses), or drops it with its policy
SET ROLE regress_owner;
ALTER TABLE pv_accounts ALTER COLUMN id TYPE text USING ('x' || id);
ALTER TABLE pv_accounts DROP COLUMN id CASCADE;
ALTER TABLE pv_accounts DROP COLUMN joined, DROP COLUMN id CASCADE;
-- attack: the owner renames the rules policy, or turns the table into a view
ALTER POLICY privacy_guard_rules ON pv_accounts RENAME TO pv_old_rules;
CREATE TABLE pv_empty (id bigint, email text);
RESET ROLE;
SELECT privacy_guard.protect('pv_empty', 'id', ARRAY['billing']);
SET ROLE regress_owner;
CREATE RULE "_RETURN" AS ON SELECT TO pv_empty DO INSTEAD SELECT 1::bigint AS id, 'x'::text AS email;
RESET ROLE;
SELECT privacy_guard.unprotect('pv_empty');
DROP TABLE pv_empty;
SELECT count(*) AS policies_left FROM pg_policy WHERE polrelid = 'pv_accounts'::regclass;

-- a spy the table owner hides in its triggers, rules, index expressions,
-- generated columns, domain checks and anonymisers: it reports whose
-- rights it runs with and tries to authorise its owner for a purpose
CREATE TABLE public.pv_spy_log (what text, who name, allow_purpose text);
GRANT INSERT ON public.pv_spy_log TO PUBLIC;
CREATE FUNCTION public.pv_spy(what text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	v_state text := 'ran';
BEGIN
	BEGIN
		PERFORM privacy_guard.allow_purpose(current_user::regrole, 'analytics');
	EXCEPTION WHEN OTHERS THEN
		v_state := SQLSTATE;
	END;
	INSERT INTO public.pv_spy_log VALUES (what, current_user, v_state);
	RETURN true;
END
$$;
CREATE FUNCTION public.pv_spy_trigger() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN PERFORM public.pv_spy(TG_NAME); RETURN NEW; END$$;
CREATE FUNCTION public.pv_spy_anon(text) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM public.pv_spy('anonymizer'); RETURN 'gone'; END$$;
CREATE FUNCTION public.pv_spy_text(text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS
	$$BEGIN PERFORM public.pv_spy('index or generated column'); RETURN $1; END$$;
SET ROLE regress_owner;
CREATE DOMAIN pv_key AS bigint CHECK (public.pv_spy('domain check'));
CREATE TABLE pv_spied (id pv_key, email text,
					   shout text GENERATED ALWAYS AS (public.pv_spy_text(email)) STORED);
INSERT INTO pv_spied (id, email) VALUES (3111, 'eleven@example.org'), (3112, 'twelve@example.org');
RESET ROLE;
SELECT privacy_guard.protect('pv_spied', 'id', ARRAY['billing'], on_forget => 'anonymize');
SELECT privacy_guard.set_anonymizer('pv_spied', 'email', 'public.pv_spy_anon');

-- attack: the owner's BEFORE/AFTER UPDATE triggers borrow the
-- administrator's rights when run_maintenance() anonymises
SET ROLE regress_owner;
CREATE TRIGGER pv_spy_before BEFORE UPDATE ON pv_spied FOR EACH ROW EXECUTE FUNCTION public.pv_spy_trigger();
CREATE TRIGGER pv_spy_after AFTER UPDATE ON pv_spied FOR EACH ROW EXECUTE FUNCTION public.pv_spy_trigger();
RESET ROLE;
SELECT privacy_guard.forget('3111') AS req11 \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT state FROM privacy_guard.erasure_requests WHERE id = :req11;
SELECT id, email FROM pv_spied ORDER BY id;
SELECT DISTINCT * FROM public.pv_spy_log ORDER BY 1;
TRUNCATE public.pv_spy_log;
SET ROLE regress_owner;
DROP TRIGGER pv_spy_before ON pv_spied;
DROP TRIGGER pv_spy_after ON pv_spied;
RESET ROLE;

-- attack: the owner's index expression and generated column borrow the
-- administrator's rights when rows are rewritten by the engine (the
-- anonymiser and domain check above run too, all as the owner)
SET ROLE regress_owner;
CREATE INDEX pv_spied_shout ON pv_spied (public.pv_spy_text(email));
RESET ROLE;
TRUNCATE public.pv_spy_log;
SELECT privacy_guard.forget('3112') AS req12 \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT state FROM privacy_guard.erasure_requests WHERE id = :req12;
SELECT DISTINCT * FROM public.pv_spy_log ORDER BY 1;
SELECT privacy_guard.unprotect('pv_spied');
SELECT count(*) AS owner_authorised_for_analytics FROM privacy_guard.purpose_roles
 WHERE role = 'regress_owner'::regrole AND purpose = 'analytics';

-- attack: the owner's rule writes privacy_guard's tables with the
-- engine's rights when a forgotten subject's rows are deleted
SET ROLE regress_owner;
CREATE RULE pv_grab AS ON DELETE TO pv_accounts
	DO ALSO INSERT INTO privacy_guard.purpose_role
		SELECT r.oid::regrole, 'analytics' FROM pg_roles r WHERE r.rolname = 'regress_owner';
RESET ROLE;
SELECT privacy_guard.forget('3103') AS req3 \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_blocked' AS blocked;
SELECT state, error FROM privacy_guard.erasure_requests WHERE id = :req3;
SELECT count(*) AS rows_of_3 FROM pv_accounts WHERE id = 3103;
SELECT count(*) AS owner_authorised_for_analytics FROM privacy_guard.purpose_roles
 WHERE role = 'regress_owner'::regrole AND purpose = 'analytics';
SET ROLE regress_owner;
DROP RULE pv_grab ON pv_accounts;
RESET ROLE;
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT state FROM privacy_guard.erasure_requests WHERE id = :req3;

-- attack: an anonymiser naming privacy_guard's internal SECURITY DEFINER
-- digest function (which reads the digest key) runs it with the table
-- owner's rights, which do not include it
SET ROLE regress_owner;
CREATE TABLE pv_flags (who bigint, flag text);
INSERT INTO pv_flags VALUES (3121, 'pv-flag-21');
RESET ROLE;
SELECT privacy_guard.protect('pv_flags', 'who', ARRAY['billing'], on_forget => 'anonymize');
SELECT privacy_guard.set_anonymizer('pv_flags', 'flag', 'privacy_guard._subject_digest');
SELECT privacy_guard.forget('3121') AS req21 \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_blocked' AS blocked;
SELECT state, error FROM privacy_guard.erasure_requests WHERE id = :req21;
SELECT who, flag FROM pv_flags;
SELECT privacy_guard.set_anonymizer('pv_flags', 'flag', 'null');
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT who, flag FROM pv_flags;

-- attack: hostile identifiers (quotes, semicolons, $$) in schema, table and
-- column names reach the erasure engine's dynamic SQL
CREATE SCHEMA "pv ""evil""; DROP TABLE pv_accounts; --";
CREATE TABLE "pv ""evil""; DROP TABLE pv_accounts; --"."t$$; DELETE FROM pv_accounts; $$" (
	"k'); DROP TABLE pv_accounts; --" text,
	"$$v$$; TRUNCATE pv_accounts" text);
INSERT INTO "pv ""evil""; DROP TABLE pv_accounts; --"."t$$; DELETE FROM pv_accounts; $$"
	VALUES ('pv-hostile', 'secretvalue'), ('pv-other', 'othervalue');
SELECT privacy_guard.protect('"pv ""evil""; DROP TABLE pv_accounts; --"."t$$; DELETE FROM pv_accounts; $$"',
							 'k''); DROP TABLE pv_accounts; --', ARRAY['billing'], on_forget => 'anonymize');
SELECT privacy_guard.set_anonymizer('"pv ""evil""; DROP TABLE pv_accounts; --"."t$$; DELETE FROM pv_accounts; $$"',
									'$$v$$; TRUNCATE pv_accounts', 'mask');
SELECT privacy_guard.forget('pv-hostile') AS reqh \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT state FROM privacy_guard.erasure_requests WHERE id = :reqh;
SELECT * FROM "pv ""evil""; DROP TABLE pv_accounts; --"."t$$; DELETE FROM pv_accounts; $$" ORDER BY 2;
SELECT count(*) AS accounts_intact FROM pv_accounts;
SELECT privacy_guard.unprotect('"pv ""evil""; DROP TABLE pv_accounts; --"."t$$; DELETE FROM pv_accounts; $$"');
DROP SCHEMA "pv ""evil""; DROP TABLE pv_accounts; --" CASCADE;

-- attack: temp tables named like the digest key and the request table,
-- first in search_path, change neither the digests nor the states read
SELECT privacy_guard.forget('pv-temp') AS reqt \gset
SELECT privacy_guard._subject_digest('pv-temp') AS real_digest \gset
CREATE TEMP TABLE secret (key bytea);
INSERT INTO pg_temp.secret VALUES ('\x00'::bytea);
CREATE TEMP TABLE erasure_request (subject text, subject_digest text, state text, id bigint);
INSERT INTO pg_temp.erasure_request VALUES ('pv-temp', 'x', 'done', 1);
SET search_path = pg_temp, privacy_guard, public;
SELECT privacy_guard._subject_digest('pv-temp') = :'real_digest' AS same_digest,
	   privacy_guard.erasure_status('pv-temp') AS state;
SELECT subject_digest = :'real_digest' AS receipt_digest FROM privacy_guard.erasure_requests WHERE id = :reqt;
RESET search_path;
DROP TABLE pg_temp.secret, pg_temp.erasure_request;

-- attack: a hostile role name handed to the privilege helpers
CREATE ROLE "pv role""; DROP TABLE pv_accounts; --";
SELECT privacy_guard.grant_recorder('"pv role""; DROP TABLE pv_accounts; --"');
SELECT privacy_guard.allow_purpose('"pv role""; DROP TABLE pv_accounts; --"', 'billing');
SELECT role, purpose FROM privacy_guard.purpose_roles WHERE role::text LIKE '%pv role%';
SELECT count(*) AS accounts_intact FROM pv_accounts;
SELECT privacy_guard.disallow_purpose('"pv role""; DROP TABLE pv_accounts; --"', 'billing');
REVOKE EXECUTE ON FUNCTION privacy_guard.grant_consent(text, text, timestamptz, jsonb),
	privacy_guard.import_consents(text[], text[], timestamptz[], jsonb[]),
	privacy_guard.import_consents(regclass),
	privacy_guard.withdraw_consent(text, text), privacy_guard.object_to(text, text),
	privacy_guard.forget(text, text, timestamptz), privacy_guard.erasure_status(text)
	FROM "pv role""; DROP TABLE pv_accounts; --";
DROP ROLE "pv role""; DROP TABLE pv_accounts; --";

SELECT privacy_guard.unprotect('pv_flags');
DROP TABLE pv_flags, pv_spied, public.pv_spy_log;
DROP DOMAIN pv_key;
DROP FUNCTION public.pv_spy_trigger(), public.pv_spy_anon(text), public.pv_spy_text(text),
	public.pv_spy(text);
