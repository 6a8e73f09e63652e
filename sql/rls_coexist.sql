-- A table's own row-level security keeps working; the rules only narrow it.
\set VERBOSITY terse
-- this file's subjects 1301..1310, in the states rules.sql leaves its 1..10 in
-- 1301, 1303, 1306, 1307 consent to marketing, 1302 to marketing.email only;
-- 1304 withdrew, 1305's consent lapsed, 1303 asked to be forgotten
DO $$
BEGIN
	PERFORM privacy_guard.grant_consent(s, 'marketing') FROM unnest(ARRAY['1301', '1303', '1304', '1306', '1307']) s;
	PERFORM privacy_guard.grant_consent('1302', 'marketing.email');
	PERFORM privacy_guard.withdraw_consent('1304', 'marketing');
	PERFORM privacy_guard.grant_consent('1305', 'marketing', now() + interval '1 hour');
	PERFORM privacy_guard.forget('1303');
END
$$;
UPDATE privacy_guard.consent_state SET valid_until = now() - interval '1 second'
 WHERE subject = '1305';
SET ROLE regress_owner;
CREATE TABLE tickets (id int, customer_id bigint, team text);
INSERT INTO tickets SELECT g, 1300 + g, CASE WHEN g % 2 = 0 THEN 'even' ELSE 'odd' END
  FROM generate_series(1, 9) g;
ALTER TABLE tickets ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_team ON tickets USING (team = current_setting('app.team'));
GRANT SELECT ON tickets TO regress_app;
RESET ROLE;
SELECT privacy_guard.protect('tickets', 'customer_id', ARRAY['marketing']);
-- its own permissive policy stays in charge: no permissive base is added
SELECT polname, polpermissive FROM pg_policy WHERE polrelid = 'tickets'::regclass ORDER BY 1;

SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';
SET app.team = 'odd';
SELECT id FROM tickets ORDER BY id;      -- odd AND consenting: 1, 7 (3 forgotten, 5 lapsed, 9 never)
SET app.team = 'even';
SELECT id FROM tickets ORDER BY id;      -- even AND consenting: 6 (2 child only, 4 withdrawn, 8 never)
RESET ROLE;

-- a permissive policy the owner adds later cannot widen what the rules allow
SET ROLE regress_owner;
CREATE POLICY everything ON tickets USING (true);
RESET ROLE;
SET ROLE regress_app;
SELECT id FROM tickets ORDER BY id;
RESET ROLE;

-- unprotect leaves the table's own row-level security as it was
SELECT privacy_guard.unprotect('tickets');
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'tickets'::regclass;
SELECT polname FROM pg_policy WHERE polrelid = 'tickets'::regclass ORDER BY 1;
RESET privacy_guard.purpose;
