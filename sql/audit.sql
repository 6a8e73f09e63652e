-- The access log without shared memory (when this instance does not preload
-- privacy_guard, "make installcheck PRELOAD=0"; expected/audit_1.out is the
-- preloaded run, where the read is logged; test/t/007_audit.pl covers the
-- logging itself): only a superuser switches audit, which then warns once
-- per session that reads are not logged; access_log and access_history()
-- are for administrators; access_history()'s bad input.
\set VERBOSITY terse
CREATE ROLE regress_audit_admin;
CREATE ROLE regress_audit_nobody;
SET ROLE regress_owner;
CREATE TABLE audit_people (id bigint PRIMARY KEY, name text);
INSERT INTO audit_people SELECT g, 'person ' || g FROM generate_series(8001, 8005) g;
GRANT SELECT ON audit_people TO regress_app;
RESET ROLE;
SELECT privacy_guard.protect('audit_people', 'id', ARRAY['billing']);
SELECT privacy_guard.grant_admin('regress_audit_admin');

-- only a superuser may switch audit
SET ROLE regress_app;
SET privacy_guard.audit = on;
SHOW privacy_guard.audit;
RESET ROLE;

-- on without shared memory: one warning per session, nothing logged
SET privacy_guard.audit = on;
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT count(*) FROM audit_people;
SELECT count(*) FROM audit_people;
RESET privacy_guard.purpose;
RESET ROLE;
RESET privacy_guard.audit;
SELECT privacy_guard._flush_access_log();
SELECT count(*) FROM privacy_guard.access_log;

-- administrators only
SET ROLE regress_audit_nobody;
SELECT count(*) FROM privacy_guard.access_log;
SELECT * FROM privacy_guard.access_history('8001', '-infinity');
SELECT privacy_guard._flush_access_log();
SET ROLE regress_app;
SELECT * FROM privacy_guard.access_history('8001', '-infinity');
SET ROLE regress_audit_admin;
SELECT count(*) FROM privacy_guard.access_log;
SELECT role, purpose, table_name FROM privacy_guard.access_history('8001', '-infinity');	-- no bucket: a time
SELECT privacy_guard._flush_access_log();
SELECT count(*) FROM privacy_guard.access_log_data;
-- run_maintenance() flushes as the extension's owner
SELECT privacy_guard.run_maintenance() ->> 'errors';

-- bad input
SELECT * FROM privacy_guard.access_history(NULL, '-infinity');
SELECT * FROM privacy_guard.access_history('', '-infinity');
SELECT * FROM privacy_guard.access_history('8001', NULL);
SELECT * FROM privacy_guard.access_history(repeat('x', 1025), '-infinity');
RESET ROLE;
SELECT privacy_guard._subjects_may_include('\x00'::bytea, '8001');

DROP TABLE audit_people;
DROP ROLE regress_audit_nobody;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA privacy_guard FROM regress_audit_admin;
REVOKE ALL ON ALL TABLES IN SCHEMA privacy_guard FROM regress_audit_admin;
DROP ROLE regress_audit_admin;
