-- Two-phase commit and the session's consent store (issue 19, A3): a
-- session that read its own uncommitted consent change and then prepared
-- the transaction must not keep that change after ROLLBACK PREPARED (it
-- was never committed), and sees it after COMMIT PREPARED.
\set VERBOSITY terse
CREATE TABLE twop_people (id int PRIMARY KEY);
INSERT INTO twop_people VALUES (810001), (810002), (810003);
GRANT SELECT ON twop_people TO regress_app;
SELECT privacy_guard.protect('twop_people', 'id', ARRAY['marketing']);
SELECT privacy_guard.grant_consent('810002', 'marketing');
CREATE FUNCTION pg_temp.seen() RETURNS int[] LANGUAGE plpgsql AS $$
DECLARE
	v int[];
BEGIN
	SET LOCAL ROLE regress_app;
	PERFORM set_config('privacy_guard.purpose', 'marketing', true);
	SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO v FROM twop_people;
	RESET ROLE;
	RETURN v;
END
$$;
SELECT pg_temp.seen() AS before;

-- a grant read in its own transaction, prepared, then rolled back
BEGIN;
SELECT privacy_guard.grant_consent('810001', 'marketing');
SELECT pg_temp.seen() AS own_grant;
PREPARE TRANSACTION 'twop_grant';
ROLLBACK PREPARED 'twop_grant';
SELECT pg_temp.seen() AS after_rollback_prepared;
SELECT count(*) AS recorded FROM privacy_guard.consent_state WHERE subject = '810001';

-- a withdrawal the same way: the consent stays
BEGIN;
SELECT privacy_guard.withdraw_consent('810002', 'marketing');
SELECT pg_temp.seen() AS own_withdrawal;
PREPARE TRANSACTION 'twop_withdraw';
ROLLBACK PREPARED 'twop_withdraw';
SELECT pg_temp.seen() AS after_rollback_prepared;

-- a forget request the same way: the subject stays visible
BEGIN;
SELECT count(*) AS requests FROM privacy_guard.forget('810002');
SELECT pg_temp.seen() AS own_forget;
PREPARE TRANSACTION 'twop_forget';
ROLLBACK PREPARED 'twop_forget';
SELECT pg_temp.seen() AS after_rollback_prepared;

-- and COMMIT PREPARED: the grant is seen
BEGIN;
SELECT privacy_guard.grant_consent('810003', 'marketing');
SELECT pg_temp.seen() AS own_grant;
PREPARE TRANSACTION 'twop_commit';
SELECT pg_temp.seen() AS while_prepared;
COMMIT PREPARED 'twop_commit';
SELECT pg_temp.seen() AS after_commit_prepared;
