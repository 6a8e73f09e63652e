-- privacy_guard.purpose_scope = 'transaction': behind a transaction pooler a
-- purpose may only last for the transaction that sets it.  The session
-- forms (SET, set_config(..., false)) are refused when they are made
-- (55P02, rolled back), a session purpose that exists anyway (set before
-- the scope changed, ALTER ROLE ... SET) is refused at use (42501), and
-- SET LOCAL, set_config(..., true) and a function's SET clause work.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS privacy_guard;
RESET client_min_messages;
LOAD 'privacy_guard';
SET search_path = public;
SELECT current_user AS pooler_su \gset

SELECT privacy_guard.define_purpose('pooler_sc_shop', 'contract');
SELECT privacy_guard.define_purpose('pooler_sc_other', 'contract');
CREATE ROLE pooler_sc_app LOGIN;
SELECT privacy_guard.allow_purpose('pooler_sc_app', 'pooler_sc_shop');
SELECT privacy_guard.allow_purpose('pooler_sc_app', 'pooler_sc_other');
CREATE TABLE pooler_sc_orders (id int, customer text, item text, note privacy_guard.tagged_text);
SELECT privacy_guard.protect('pooler_sc_orders', 'customer', ARRAY['pooler_sc_shop']);
INSERT INTO pooler_sc_orders VALUES (1, 'c1', 'lamp', 'leave at the door');
GRANT SELECT ON pooler_sc_orders TO pooler_sc_app;
CREATE FUNCTION pooler_sc_count() RETURNS bigint LANGUAGE sql
	SET privacy_guard.purpose = 'pooler_sc_shop'
	AS 'SELECT count(*) FROM public.pooler_sc_orders';
CREATE FUNCTION pooler_sc_try_session_set() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('privacy_guard.purpose', 'pooler_sc_shop', false);
	RETURN 'set';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM || ' / purpose now "' || current_setting('privacy_guard.purpose') || '"';
END
$$;

-- the default: a purpose may be set for the session
SHOW privacy_guard.purpose_scope;
SET ROLE pooler_sc_app;
SET privacy_guard.purpose = 'pooler_sc_shop';
SELECT id, item, privacy_guard.reveal(note) FROM pooler_sc_orders;
-- the roles the rules bind cannot change the scope
SET privacy_guard.purpose_scope = 'transaction';
SELECT set_config('privacy_guard.purpose_scope', 'transaction', true);
RESET privacy_guard.purpose;
RESET ROLE;

SET privacy_guard.purpose_scope = 'transaction';
SET ROLE pooler_sc_app;
-- the session forms are refused, and leave nothing behind
SET privacy_guard.purpose = 'pooler_sc_shop';
SHOW privacy_guard.purpose;
SET SESSION privacy_guard.purpose = 'pooler_sc_shop';
SELECT set_config('privacy_guard.purpose', 'pooler_sc_shop', false);
SHOW privacy_guard.purpose;
SELECT pooler_sc_try_session_set();
-- also when set_config() runs in a cursor's FETCH
BEGIN;
DECLARE pooler_sc_cur CURSOR FOR SELECT set_config('privacy_guard.purpose', 'pooler_sc_shop', false);
FETCH pooler_sc_cur;
ROLLBACK;
SHOW privacy_guard.purpose;
SELECT count(*) FROM pooler_sc_orders;
-- inside a transaction block the refusal aborts the transaction
BEGIN;
SET LOCAL privacy_guard.purpose = 'pooler_sc_shop';
SET privacy_guard.purpose = 'pooler_sc_other';
SELECT count(*) FROM pooler_sc_orders;
ROLLBACK;
SHOW privacy_guard.purpose;
-- the transaction forms work, and end with their transaction
BEGIN;
SET LOCAL privacy_guard.purpose = 'pooler_sc_shop';
SELECT id, item, privacy_guard.reveal(note) FROM pooler_sc_orders;
COMMIT;
SHOW privacy_guard.purpose;
BEGIN;
SELECT set_config('privacy_guard.purpose', 'pooler_sc_shop', true);
SELECT id, item, privacy_guard.reveal(note) FROM pooler_sc_orders;
-- a savepoint inside keeps the transaction's purpose; SET LOCAL in it ends with it
SAVEPOINT s1;
SET LOCAL privacy_guard.purpose = 'pooler_sc_other';
SELECT count(*) FROM pooler_sc_orders;
ROLLBACK TO SAVEPOINT s1;
SELECT count(*) FROM pooler_sc_orders;
COMMIT;
SHOW privacy_guard.purpose;
-- a function's SET clause lasts for the call
SELECT pooler_sc_count();
SHOW privacy_guard.purpose;
-- clearing is always allowed: RESET, the empty string
SET privacy_guard.purpose = '';
RESET privacy_guard.purpose;
SELECT set_config('privacy_guard.purpose', '', false);
RESET ROLE;

-- a session purpose that exists anyway (set before the scope changed) is refused at use
SET privacy_guard.purpose_scope = 'session';
SET ROLE pooler_sc_app;
SET privacy_guard.purpose = 'pooler_sc_shop';
RESET ROLE;
SET privacy_guard.purpose_scope = 'transaction';
SET ROLE pooler_sc_app;
SHOW privacy_guard.purpose;
SELECT count(*) FROM pooler_sc_orders;
-- a tagged value is withheld under it (reveal gives NULL, output fails)
SELECT privacy_guard.reveal(privacy_guard.tag('x'::text, ARRAY['pooler_sc_shop'])) IS NULL AS withheld;
SELECT privacy_guard.tag('x'::text, ARRAY['pooler_sc_shop']);
-- SET LOCAL over it works for its transaction
BEGIN;
SET LOCAL privacy_guard.purpose = 'pooler_sc_shop';
SELECT count(*) FROM pooler_sc_orders;
SELECT privacy_guard.reveal(privacy_guard.tag('x'::text, ARRAY['pooler_sc_shop'])) AS revealed;
COMMIT;
SELECT count(*) FROM pooler_sc_orders;
RESET privacy_guard.purpose;
RESET ROLE;

-- a default from ALTER ROLE ... SET is the session's too: refused at use
ALTER ROLE pooler_sc_app SET privacy_guard.purpose = 'pooler_sc_shop';
ALTER ROLE pooler_sc_app SET privacy_guard.purpose_scope = 'transaction';
\c - pooler_sc_app
SET search_path = public;
SELECT count(*) FROM pooler_sc_orders;
SHOW privacy_guard.purpose;
SHOW privacy_guard.purpose_scope;
SET privacy_guard.purpose_scope = 'session';
ALTER ROLE CURRENT_USER SET privacy_guard.purpose_scope = 'session';
BEGIN;
SET LOCAL privacy_guard.purpose = 'pooler_sc_shop';
SELECT count(*) FROM pooler_sc_orders;
COMMIT;
-- RESET and DISCARD ALL give the session's default back without an error
RESET privacy_guard.purpose;
DISCARD ALL;
SHOW privacy_guard.purpose;
\c - :pooler_su
SET search_path = public;

ALTER ROLE pooler_sc_app RESET ALL;
DROP FUNCTION pooler_sc_count(), pooler_sc_try_session_set();
SELECT privacy_guard.unprotect('pooler_sc_orders');
DROP TABLE pooler_sc_orders;
SELECT privacy_guard.disallow_purpose('pooler_sc_app', 'pooler_sc_shop');
SELECT privacy_guard.disallow_purpose('pooler_sc_app', 'pooler_sc_other');
DROP ROLE pooler_sc_app;
