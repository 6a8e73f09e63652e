-- 003_api.sql -- behaviour and errors of the SQL API (SPEC §2)
-- Runs in one transaction as the superuser and rolls back.
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(128);

-- ---------------------------------------------------------------- fixtures
DO $$
BEGIN
    PERFORM privacy_guard.define_purpose('api_c', 'consent', 'newsletters and offers');
    PERFORM privacy_guard.define_purpose('api_c.email', 'consent');
    PERFORM privacy_guard.define_purpose('api_c.email.weekly', 'consent');
    PERFORM privacy_guard.define_purpose('api_li', 'legitimate_interests');
    PERFORM privacy_guard.define_purpose('api_li.profile', 'legitimate_interests');
    PERFORM privacy_guard.define_purpose('api_pt', 'public_task');
    PERFORM privacy_guard.define_purpose('api_k', 'contract');
    PERFORM privacy_guard.define_purpose('api_lo', 'legal_obligation');
    PERFORM privacy_guard.define_purpose('api_vi', 'vital_interests');
END
$$;

CREATE ROLE pgtap_api_role NOLOGIN;
CREATE TABLE public.api_customers (
    id          bigint PRIMARY KEY,
    subject     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_on  date,
    note        text
);
CREATE VIEW public.api_customers_v AS SELECT * FROM public.api_customers;
CREATE TABLE public.api_notnull (id int, subject text NOT NULL, created_at timestamptz);
CREATE TABLE public.api_pk (subject text PRIMARY KEY, created_at timestamptz);
CREATE TABLE public.api_own_rls (id int, subject text);
ALTER TABLE public.api_own_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY api_own_policy ON public.api_own_rls USING (id > 0);

-- ================================================================ define_purpose
SELECT throws_ok($$SELECT privacy_guard.define_purpose('Bad Name')$$, '22023', NULL,
                 'define_purpose: upper case and blanks are refused');
SELECT throws_ok($$SELECT privacy_guard.define_purpose('')$$, '22023', NULL,
                 'define_purpose: empty name is refused');
SELECT throws_ok($$SELECT privacy_guard.define_purpose('a..b')$$, '22023', NULL,
                 'define_purpose: empty segment is refused');
SELECT throws_ok($$SELECT privacy_guard.define_purpose('api_c.')$$, '22023', NULL,
                 'define_purpose: trailing dot is refused');
SELECT throws_ok($$SELECT privacy_guard.define_purpose('1abc')$$, '22023', NULL,
                 'define_purpose: leading digit is refused');
SELECT throws_ok($$SELECT privacy_guard.define_purpose(NULL)$$, '22023', NULL,
                 'define_purpose: NULL name is refused');
SELECT throws_ok($$SELECT privacy_guard.define_purpose('api_missing.child')$$, '22023', NULL,
                 'define_purpose: a child before its parent is refused');
SELECT throws_ok($$SELECT privacy_guard.define_purpose('api_bad_basis', 'because')$$, '22023', NULL,
                 'define_purpose: unknown legal basis is refused');
SELECT throws_ok($$SELECT privacy_guard.define_purpose('api_null_basis', NULL)$$, '22023', NULL,
                 'define_purpose: NULL legal basis is refused');
SELECT is((SELECT count(*)::int FROM privacy_guard.purposes
            WHERE name IN ('api_missing.child', 'api_bad_basis', 'api_null_basis')),
          0, 'define_purpose: refused purposes were not created');

SELECT results_eq($$SELECT name, parent, legal_basis, description FROM privacy_guard.purposes
                     WHERE name LIKE 'api_c%' ORDER BY name$$,
                  $$VALUES ('api_c', NULL::text, 'consent', 'newsletters and offers'),
                           ('api_c.email', 'api_c', 'consent', NULL::text),
                           ('api_c.email.weekly', 'api_c.email', 'consent', NULL::text)$$,
                  'purposes view: dotted names hang under their parent');
SELECT is((SELECT legal_basis FROM privacy_guard.purposes WHERE name = 'api_li'),
          'legitimate_interests', 'purposes view: legal basis as defined');

SELECT lives_ok($$SELECT privacy_guard.define_purpose('api_twice', 'consent', 'first')$$,
                'define_purpose: create');
SELECT lives_ok($$SELECT privacy_guard.define_purpose('api_twice', 'contract', 'second')$$,
                'define_purpose: define again');
SELECT results_eq($$SELECT legal_basis, description FROM privacy_guard.purposes WHERE name = 'api_twice'$$,
                  $$VALUES ('contract', 'second')$$,
                  'define_purpose twice updates legal_basis and description');
SELECT is((SELECT count(*)::int FROM privacy_guard.purposes WHERE name = 'api_twice'), 1,
          'define_purpose twice keeps one purpose');

-- ================================================================ grant_consent / withdraw / object_to errors
SELECT throws_ok($$SELECT privacy_guard.grant_consent('s1', 'api_nope')$$, '22023', NULL,
                 'grant_consent: unknown purpose');
SELECT throws_ok($$SELECT privacy_guard.grant_consent('s1', NULL)$$, '22023', NULL,
                 'grant_consent: NULL purpose');
SELECT throws_ok($$SELECT privacy_guard.grant_consent('s1', 'api_k')$$, '22023', NULL,
                 'grant_consent: a contract purpose needs no consent');
SELECT throws_ok($$SELECT privacy_guard.grant_consent('s1', 'api_li')$$, '22023', NULL,
                 'grant_consent: a legitimate_interests purpose needs no consent');
SELECT throws_ok($$SELECT privacy_guard.grant_consent('s1', 'api_c', now() - interval '1 day')$$,
                 '22023', NULL, 'grant_consent: valid_until in the past');
SELECT throws_ok($$SELECT privacy_guard.grant_consent(NULL, 'api_c')$$, '22023', NULL,
                 'grant_consent: NULL subject');
SELECT throws_ok($$SELECT privacy_guard.grant_consent('', 'api_c')$$, '22023', NULL,
                 'grant_consent: empty subject');
SELECT throws_ok($$SELECT privacy_guard.withdraw_consent('s1', 'api_li')$$, '22023', NULL,
                 'withdraw_consent: not a consent purpose');
SELECT throws_ok($$SELECT privacy_guard.withdraw_consent('', 'api_c')$$, '22023', NULL,
                 'withdraw_consent: empty subject');
SELECT throws_ok($$SELECT privacy_guard.object_to('s1', 'api_c')$$, '22023', NULL,
                 'object_to: a consent purpose takes a withdrawal, not an objection');
SELECT throws_ok($$SELECT privacy_guard.object_to('s1', 'api_k')$$, '22023', NULL,
                 'object_to: a contract purpose');
SELECT throws_ok($$SELECT privacy_guard.object_to('s1', 'api_nope')$$, '22023', NULL,
                 'object_to: unknown purpose');
SELECT throws_ok($$SELECT privacy_guard.object_to(NULL, 'api_li')$$, '22023', NULL,
                 'object_to: NULL subject');
SELECT is((SELECT count(*)::int FROM privacy_guard.consent_ledger WHERE subject = 's1'), 0,
          'refused calls leave no trace in the ledger');

-- ================================================================ has_consent (SPEC §2, rule 7)
-- consent purposes
SELECT is(privacy_guard.has_consent('hc-none', 'api_c'), false,
          'consent: no record -> false');
SELECT lives_ok($$SELECT privacy_guard.grant_consent('hc-parent', 'api_c')$$, 'grant consent to api_c');
SELECT is(privacy_guard.has_consent('hc-parent', 'api_c'), true, 'consent: granted -> true');
SELECT is(privacy_guard.has_consent('hc-parent', 'api_c.email'), true,
          'consent: consent to the parent covers the child');
SELECT is(privacy_guard.has_consent('hc-parent', 'api_c.email.weekly'), true,
          'consent: consent to the grandparent covers the grandchild');
SELECT is(privacy_guard.has_consent('hc-none', 'api_c.email'), false,
          'consent: another subject''s consent does not count');

SELECT lives_ok($$SELECT privacy_guard.grant_consent('hc-child', 'api_c.email')$$,
                'grant consent to api_c.email');
SELECT is(privacy_guard.has_consent('hc-child', 'api_c.email'), true, 'consent: the child itself');
SELECT is(privacy_guard.has_consent('hc-child', 'api_c.email.weekly'), true,
          'consent: the child covers its own child');
SELECT is(privacy_guard.has_consent('hc-child', 'api_c'), false,
          'consent: consent to a child does not cover the parent');

SELECT lives_ok($$SELECT privacy_guard.grant_consent('hc-until', 'api_c', now() + interval '1 day')$$,
                'grant consent with an expiry in the future');
SELECT is(privacy_guard.has_consent('hc-until', 'api_c'), true, 'consent: not yet expired -> true');
-- time cannot move inside a transaction: let the consent run out by moving its end
UPDATE privacy_guard.consent_state SET valid_until = now() - interval '1 second'
 WHERE subject = 'hc-until' AND purpose = 'api_c';
SELECT is(privacy_guard.has_consent('hc-until', 'api_c'), false, 'consent: expired -> false');
SELECT is(privacy_guard.has_consent('hc-until', 'api_c.email'), false,
          'consent: an expired parent consent covers no child');
SELECT is((SELECT active FROM privacy_guard.consents WHERE subject = 'hc-until' AND purpose = 'api_c'),
          false, 'consents view: expired consent is not active');

SELECT lives_ok($$SELECT privacy_guard.withdraw_consent('hc-parent', 'api_c')$$, 'withdraw consent');
SELECT is(privacy_guard.has_consent('hc-parent', 'api_c'), false, 'consent: withdrawn -> false');
SELECT is(privacy_guard.has_consent('hc-parent', 'api_c.email'), false,
          'consent: a withdrawn parent consent covers no child');
SELECT results_eq($$SELECT status, active FROM privacy_guard.consents
                     WHERE subject = 'hc-parent' AND purpose = 'api_c'$$,
                  $$VALUES ('withdrawn', false)$$, 'consents view: withdrawn');
SELECT lives_ok($$SELECT privacy_guard.grant_consent('hc-parent', 'api_c')$$, 'grant again');
SELECT is(privacy_guard.has_consent('hc-parent', 'api_c'), true, 'consent: granted again -> true');

-- legitimate interests / public task: true until the subject objects
SELECT is(privacy_guard.has_consent('hl', 'api_li'), true, 'legitimate_interests: no objection -> true');
SELECT lives_ok($$SELECT privacy_guard.object_to('hl', 'api_li')$$, 'object to api_li');
SELECT is(privacy_guard.has_consent('hl', 'api_li'), false, 'legitimate_interests: objected -> false');
SELECT is(privacy_guard.has_consent('hl', 'api_li.profile'), false,
          'legitimate_interests: an objection to the parent covers the child');
SELECT is(privacy_guard.has_consent('hl-other', 'api_li'), true,
          'legitimate_interests: another subject''s objection does not count');
SELECT lives_ok($$SELECT privacy_guard.object_to('hl-child', 'api_li.profile')$$,
                'object to api_li.profile only');
SELECT is(privacy_guard.has_consent('hl-child', 'api_li'), true,
          'legitimate_interests: an objection to a child leaves the parent');
SELECT is(privacy_guard.has_consent('hp', 'api_pt'), true, 'public_task: no objection -> true');
SELECT lives_ok($$SELECT privacy_guard.object_to('hp', 'api_pt')$$, 'object to api_pt');
SELECT is(privacy_guard.has_consent('hp', 'api_pt'), false, 'public_task: objected -> false');
-- the other bases
SELECT is(privacy_guard.has_consent('hx', 'api_k'), true, 'contract -> true');
SELECT is(privacy_guard.has_consent('hx', 'api_lo'), true, 'legal_obligation -> true');
SELECT is(privacy_guard.has_consent('hx', 'api_vi'), true, 'vital_interests -> true');
SELECT throws_ok($$SELECT privacy_guard.has_consent('hx', 'api_nope')$$, '22023', NULL,
                 'has_consent: unknown purpose -> 22023');

-- ================================================================ the ledger
SELECT lives_ok($$SELECT privacy_guard.grant_consent('led', 'api_c', now() + interval '1 year',
                                                     '{"form": "signup", "version": 3}')$$,
                'ledger: grant');
SELECT is((SELECT count(*)::int FROM privacy_guard.consent_ledger WHERE subject = 'led'), 1,
          'ledger: a grant adds exactly one row');
SELECT lives_ok($$SELECT privacy_guard.withdraw_consent('led', 'api_c')$$, 'ledger: withdraw');
SELECT is((SELECT count(*)::int FROM privacy_guard.consent_ledger WHERE subject = 'led'), 2,
          'ledger: a withdrawal adds exactly one row');
SELECT lives_ok($$SELECT privacy_guard.grant_consent('led', 'api_c')$$, 'ledger: grant again');
SELECT is((SELECT count(*)::int FROM privacy_guard.consent_ledger WHERE subject = 'led'), 3,
          'ledger: a second grant adds exactly one row');
SELECT lives_ok($$SELECT privacy_guard.object_to('led', 'api_li')$$, 'ledger: object');
SELECT is((SELECT count(*)::int FROM privacy_guard.consent_ledger WHERE subject = 'led'), 4,
          'ledger: an objection adds exactly one row');
SELECT results_eq($$SELECT purpose, action FROM privacy_guard.consent_ledger
                     WHERE subject = 'led' ORDER BY id$$,
                  $$VALUES ('api_c', 'grant'), ('api_c', 'withdraw'), ('api_c', 'grant'),
                           ('api_li', 'object')$$,
                  'ledger: history in order');
SELECT results_eq($$SELECT evidence, valid_until FROM privacy_guard.consent_ledger
                     WHERE subject = 'led' ORDER BY id LIMIT 1$$,
                  $$VALUES ('{"form": "signup", "version": 3}'::jsonb, now() + interval '1 year')$$,
                  'ledger: the grant keeps its evidence and expiry');

-- ================================================================ drop_purpose
DO $$
BEGIN
    PERFORM privacy_guard.define_purpose('api_d_tab', 'contract');
    PERFORM privacy_guard.define_purpose('api_d_role', 'contract');
    PERFORM privacy_guard.define_purpose('api_d_cons', 'consent');
    PERFORM privacy_guard.define_purpose('api_d_free', 'contract');
    PERFORM privacy_guard.protect('public.api_customers', 'subject', ARRAY['api_k', 'api_d_tab']);
    PERFORM privacy_guard.allow_purpose('pgtap_api_role', 'api_d_role');
    PERFORM privacy_guard.grant_consent('dc', 'api_d_cons');
    PERFORM privacy_guard.withdraw_consent('dc', 'api_d_cons');
END
$$;
SELECT throws_ok($$SELECT privacy_guard.drop_purpose('api_c.email')$$, '2BP01', NULL,
                 'drop_purpose: refused while a child purpose uses it');
SELECT throws_ok($$SELECT privacy_guard.drop_purpose('api_d_tab')$$, '2BP01', NULL,
                 'drop_purpose: refused while a protected table uses it');
SELECT throws_ok($$SELECT privacy_guard.drop_purpose('api_d_role')$$, '2BP01', NULL,
                 'drop_purpose: refused while a role is authorised for it');
SELECT throws_ok($$SELECT privacy_guard.drop_purpose('api_d_cons')$$, '2BP01', NULL,
                 'drop_purpose: refused while recorded consent uses it (even withdrawn)');
SELECT throws_ok($$SELECT privacy_guard.drop_purpose('api_nope')$$, '22023', NULL,
                 'drop_purpose: unknown purpose');
SELECT lives_ok($$SELECT privacy_guard.drop_purpose('api_d_free')$$,
                'drop_purpose: an unused purpose can be dropped');
SELECT is((SELECT count(*)::int FROM privacy_guard.purposes WHERE name = 'api_d_free'), 0,
          'drop_purpose: the purpose is gone');
SELECT lives_ok($$SELECT privacy_guard.drop_purpose('api_c.email.weekly')$$,
                'drop_purpose: a leaf purpose can be dropped');
SELECT lives_ok($$SELECT privacy_guard.disallow_purpose('pgtap_api_role', 'api_d_role')$$,
                'disallow_purpose');
SELECT lives_ok($$SELECT privacy_guard.drop_purpose('api_d_role')$$,
                'drop_purpose: succeeds once the role is no longer authorised');

-- ================================================================ protect / unprotect
SELECT results_eq($$SELECT table_name, subject_column, purposes, retention, retention_column,
                           on_expiry, on_forget
                      FROM privacy_guard.protected_tables
                     WHERE table_name = 'public.api_customers'::regclass$$,
                  $$VALUES ('public.api_customers'::regclass, 'subject'::name, ARRAY['api_k', 'api_d_tab'],
                            NULL::interval, NULL::name, 'delete', 'delete')$$,
                  'protect: the registration shows in protected_tables with the defaults');
SELECT lives_ok($$SELECT privacy_guard.protect('public.api_customers', 'subject', ARRAY['api_k'],
                                               interval '30 days', 'created_at',
                                               on_expiry => 'anonymize')$$,
                'protect again: retention and anonymize on expiry');
SELECT results_eq($$SELECT purposes, retention, retention_column, on_expiry, on_forget
                      FROM privacy_guard.protected_tables
                     WHERE table_name = 'public.api_customers'::regclass$$,
                  $$VALUES (ARRAY['api_k'], interval '30 days', 'created_at'::name, 'anonymize', 'delete')$$,
                  'protect again updates the registration');
SELECT lives_ok($$SELECT privacy_guard.drop_purpose('api_d_tab')$$,
                'drop_purpose: succeeds once no table uses it');
SELECT ok((SELECT c.relrowsecurity AND c.relforcerowsecurity FROM pg_class c
            WHERE c.oid = 'public.api_customers'::regclass),
          'protect: row-level security is enabled and forced');
SELECT isnt_empty($$SELECT 1 FROM pg_policy p
                     WHERE p.polrelid = 'public.api_customers'::regclass
                       AND p.polname LIKE 'privacy\_guard%'$$,
                  'protect: privacy_guard policies are installed');

SELECT throws_ok($$SELECT privacy_guard.protect('public.api_customers_v', 'subject', ARRAY['api_k'])$$,
                 '42809', NULL, 'protect: a view is not a table');
SELECT throws_ok($$SELECT privacy_guard.protect('public.api_notnull', 'customer', ARRAY['api_k'])$$,
                 '42703', NULL, 'protect: missing subject column');
SELECT throws_ok($$SELECT privacy_guard.protect('public.api_notnull', 'subject', ARRAY['api_nope'])$$,
                 '22023', NULL, 'protect: unknown purpose');
SELECT throws_ok($$SELECT privacy_guard.protect('public.api_notnull', 'subject', '{}'::text[])$$,
                 '22023', NULL, 'protect: no purpose at all');
SELECT throws_ok($$SELECT privacy_guard.protect('public.api_notnull', 'subject', ARRAY['api_k'],
                                                interval '1 year')$$,
                 '22023', NULL, 'protect: retention without retention_column');
SELECT throws_ok($$SELECT privacy_guard.protect('public.api_customers', 'subject', ARRAY['api_k'],
                                                interval '1 year', 'note')$$,
                 '42804', NULL, 'protect: retention column of the wrong type');
SELECT throws_ok($$SELECT privacy_guard.protect('public.api_customers', 'subject', ARRAY['api_k'],
                                                interval '1 year', 'missing_col')$$,
                 '42703', NULL, 'protect: missing retention column');
SELECT throws_ok($$SELECT privacy_guard.protect('public.api_notnull', 'subject', ARRAY['api_k'],
                                                on_forget => 'shred')$$,
                 '22023', NULL, 'protect: on_forget must be delete or anonymize');
SELECT throws_ok($$SELECT privacy_guard.protect('public.api_notnull', 'subject', ARRAY['api_k'],
                                                on_forget => 'anonymize')$$,
                 '55000', NULL, 'protect: anonymize with a NOT NULL subject column');
SELECT throws_ok($$SELECT privacy_guard.protect('public.api_pk', 'subject', ARRAY['api_k'],
                                                interval '1 year', 'created_at',
                                                on_expiry => 'anonymize')$$,
                 '55000', NULL, 'protect: anonymize with a primary-key subject column');
SELECT is((SELECT count(*)::int FROM privacy_guard.protected_tables
            WHERE table_name IN ('public.api_notnull'::regclass, 'public.api_pk'::regclass)),
          0, 'protect: refused tables are not registered');
SELECT ok(NOT (SELECT c.relrowsecurity FROM pg_class c WHERE c.oid = 'public.api_notnull'::regclass),
          'protect: a refused table is left without row-level security');

SELECT throws_ok($$SELECT privacy_guard.unprotect('public.api_notnull')$$, '55000', NULL,
                 'unprotect: a table that is not protected');
SELECT lives_ok($$SELECT privacy_guard.unprotect('public.api_customers')$$, 'unprotect');
SELECT is_empty($$SELECT p.polname FROM pg_policy p
                   WHERE p.polrelid = 'public.api_customers'::regclass$$,
                'unprotect: no privacy_guard policy is left');
SELECT results_eq($$SELECT c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
                     WHERE c.oid = 'public.api_customers'::regclass$$,
                  $$VALUES (false, false)$$,
                  'unprotect: row-level security is off again');
SELECT is((SELECT count(*)::int FROM privacy_guard.protected_tables
            WHERE table_name = 'public.api_customers'::regclass),
          0, 'unprotect: the registration is gone');

-- a table with row-level security of its own keeps it
SELECT lives_ok($$SELECT privacy_guard.protect('public.api_own_rls', 'subject', ARRAY['api_k'])$$,
                'protect a table with its own row-level security');
SELECT lives_ok($$SELECT privacy_guard.unprotect('public.api_own_rls')$$, 'and unprotect it');
SELECT results_eq($$SELECT p.polname FROM pg_policy p
                     WHERE p.polrelid = 'public.api_own_rls'::regclass ORDER BY 1$$,
                  ARRAY['api_own_policy']::name[],
                  'unprotect: the table''s own policy stays, privacy_guard''s are gone');
SELECT ok((SELECT c.relrowsecurity FROM pg_class c WHERE c.oid = 'public.api_own_rls'::regclass),
          'unprotect: the table''s own row-level security stays on');

-- ================================================================ forget
SELECT privacy_guard.forget('alice@example.com', 'pgTAP erasure') AS fid \gset
SELECT ok(:fid IS NOT NULL AND :fid > 0, 'forget returns a request id');
SELECT results_eq($$SELECT state, reason, completed_at IS NULL, due <= now()
                      FROM privacy_guard.erasure_requests WHERE id = $$ || :fid,
                  $$VALUES ('pending', 'pgTAP erasure', true, true)$$,
                  'erasure_requests: a pending request, due now by default');
SELECT matches((SELECT subject_digest FROM privacy_guard.erasure_requests WHERE id = :fid),
               '^[0-9a-f]{64}$', 'erasure_requests: subject_digest is 64 hex characters');
SELECT is((SELECT count(*)::int FROM privacy_guard.erasure_requests r
            WHERE strpos(r::text, 'alice@example.com') > 0
               OR strpos(r::text, 'alice') > 0),
          0, 'erasure_requests: the raw key appears in no column');
SELECT is(privacy_guard.erasure_status('alice@example.com'), 'pending',
          'erasure_status: pending');
SELECT is(privacy_guard.erasure_status('unknown@example.com'), NULL,
          'erasure_status: NULL for a subject without a request');
SELECT is(privacy_guard.erasure_status(NULL), NULL, 'erasure_status: NULL for NULL');

SELECT privacy_guard.forget('alice@example.com') AS fid2 \gset
SELECT privacy_guard.forget('bob@example.com', NULL, now() + interval '30 days') AS fid3 \gset
SELECT cmp_ok(:fid2::bigint, '>', :fid::bigint, 'forget: a second request gets a new id');
SELECT is((SELECT subject_digest FROM privacy_guard.erasure_requests WHERE id = :fid2),
          (SELECT subject_digest FROM privacy_guard.erasure_requests WHERE id = :fid),
          'forget: the digest of a subject is deterministic');
SELECT isnt((SELECT subject_digest FROM privacy_guard.erasure_requests WHERE id = :fid3),
            (SELECT subject_digest FROM privacy_guard.erasure_requests WHERE id = :fid),
            'forget: different subjects get different digests');
SELECT results_eq($$SELECT state, due FROM privacy_guard.erasure_requests WHERE id = $$ || :fid3,
                  $$VALUES ('pending', now() + interval '30 days')$$,
                  'forget: a later due is kept');
SELECT is(privacy_guard.erasure_status('bob@example.com'), 'pending',
          'erasure_status: pending before its due time');
-- erasure_status must find *this* subject's latest request.  Close alice's
-- requests the way a finished round leaves them (state done, raw key gone).
UPDATE privacy_guard.erasure_request SET state = 'done', completed_at = now(), subject = NULL
 WHERE id IN (:fid, :fid2);
SELECT is(privacy_guard.erasure_status('alice@example.com'), 'done',
          'erasure_status: a finished request reads done');
SELECT is(privacy_guard.erasure_status('bob@example.com'), 'pending',
          'erasure_status: another subject''s request keeps its own state');
SELECT throws_ok($$SELECT privacy_guard.forget(NULL)$$, '22023', NULL, 'forget: NULL subject');
SELECT throws_ok($$SELECT privacy_guard.forget('')$$, '22023', NULL, 'forget: empty subject');

SELECT * FROM finish();
ROLLBACK;
