-- Consent, withdrawal, objection; has_consent; the append-only ledger.
\set VERBOSITY terse

SELECT privacy_guard.grant_consent('c1', 'marketing');
SELECT privacy_guard.grant_consent('c2', 'marketing.email', evidence => '{"form": "signup-v3"}');
SELECT privacy_guard.grant_consent('c3', 'marketing', now() + interval '1 day');
SELECT privacy_guard.grant_consent('c4', 'marketing');
SELECT privacy_guard.withdraw_consent('c4', 'marketing');
SELECT privacy_guard.object_to('c5', 'analytics');

-- consent to a parent covers its children, not the other way round
SELECT s, privacy_guard.has_consent(s, 'marketing') AS marketing,
       privacy_guard.has_consent(s, 'marketing.email') AS email
  FROM unnest(ARRAY['c1', 'c2', 'c3', 'c4', 'c5', 'nobody']) s ORDER BY s;
-- legitimate interests: true until the subject objects; contract: always
SELECT s, privacy_guard.has_consent(s, 'analytics') AS analytics,
       privacy_guard.has_consent(s, 'billing') AS billing
  FROM unnest(ARRAY['c1', 'c5']) s ORDER BY s;
SELECT privacy_guard.has_consent('c1', NULL) IS NULL AS null_in_null_out;

SELECT subject, purpose, status, valid_until IS NOT NULL AS expires, active
  FROM privacy_guard.consents ORDER BY subject, purpose;
SELECT subject, purpose, action, evidence
  FROM privacy_guard.consent_ledger ORDER BY id;

-- bad input: nothing is recorded
SELECT privacy_guard.grant_consent('c9', 'nonexistent');
SELECT privacy_guard.grant_consent('c9', 'billing');
SELECT privacy_guard.grant_consent('c9', 'marketing', now() - interval '1 day');
SELECT privacy_guard.grant_consent('', 'marketing');
SELECT privacy_guard.grant_consent(NULL, 'marketing');
SELECT privacy_guard.grant_consent(repeat('x', 2000), 'marketing');
SELECT privacy_guard.withdraw_consent('c9', 'analytics');
SELECT privacy_guard.object_to('c9', 'marketing');
SELECT privacy_guard.has_consent('c9', 'nonexistent');
SELECT count(*) FROM privacy_guard.consent_ledger WHERE subject = 'c9';

-- the ledger keeps its history
DELETE FROM privacy_guard.consent_ledger;
TRUNCATE privacy_guard.consent_ledger;
SELECT count(*) FROM privacy_guard.consent_ledger;

-- drop_purpose refuses while consent is recorded for it
SELECT privacy_guard.define_purpose('survey', 'consent');
SELECT privacy_guard.grant_consent('c1', 'survey');
SELECT privacy_guard.drop_purpose('survey');
