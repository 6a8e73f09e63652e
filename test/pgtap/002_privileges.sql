-- 002_privileges.sql -- SPEC §3.3: three privilege levels, checked with real roles.
-- Runs in one transaction and rolls back (CREATE ROLE is transactional too).
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;

-- 5 checks (SELECT, INSERT, UPDATE, DELETE, TRUNCATE) per table of the schema
SELECT plan(97 + 17 + 5 * (SELECT count(*)::int FROM pg_class c
                       WHERE c.relnamespace = 'privacy_guard'::regnamespace
                         AND c.relkind IN ('r', 'p')));

-- ---------------------------------------------------------------- fixtures (as superuser)
CREATE ROLE pgtap_plain NOLOGIN;
CREATE ROLE pgtap_rec NOLOGIN;
CREATE ROLE pgtap_admin NOLOGIN;
CREATE ROLE pgtap_other NOLOGIN;

DO $$
BEGIN
    PERFORM privacy_guard.define_purpose('pgtap_consent', 'consent', 'pgTAP consent purpose');
    PERFORM privacy_guard.define_purpose('pgtap_li', 'legitimate_interests');
    PERFORM privacy_guard.define_purpose('pgtap_contract', 'contract');
    PERFORM privacy_guard.grant_consent('pgtap-existing', 'pgtap_consent');
END
$$;

CREATE TABLE public.pgtap_admin_t (id int, subject text);
ALTER TABLE public.pgtap_admin_t OWNER TO pgtap_admin;
CREATE TABLE public.pgtap_admin_kept (id int, subject text, note text, made timestamptz NOT NULL DEFAULT now());
ALTER TABLE public.pgtap_admin_kept OWNER TO pgtap_admin;
DO $$ BEGIN PERFORM privacy_guard.define_purpose('pgtap_legal', 'legal_obligation'); END $$;
CREATE TABLE public.pgtap_foreign_t (id int, subject text);
ALTER TABLE public.pgtap_foreign_t OWNER TO pgtap_other;
CREATE TABLE public.pgtap_foreign_prot_t (id int, subject text);
ALTER TABLE public.pgtap_foreign_prot_t OWNER TO pgtap_other;
DO $$ BEGIN PERFORM privacy_guard.protect('public.pgtap_foreign_prot_t', 'subject', ARRAY['pgtap_contract']); END $$;

-- ================================================================ PUBLIC
-- No administration or recording function is executable by PUBLIC.  Allowed:
-- the read side (SPEC §3.3: reveal, tag_purposes, tag_retain_until, tag,
-- has_consent), privacy_notice (the company's public notice), the policy helpers that protected tables' policies call
-- (row_visible, write_allowed), _hmac (anonymising statements run as the table
-- owner and pass the key as a parameter), length(tagged_text) (NULL when
-- withheld), _tag_erasable, _tags_erasable, _tags_erase and _tag_report_value
-- (the tagged erasure and subject_report run as the table owner; they answer
-- only given the digest key), _tags_expired and _tags_expire (the expiry of
-- tagged arrays, as the owner; retain-until is public), and their _in forms
-- for tagged values inside composites, _in_eea (whether a country is in the
-- EU/EEA, for the recipients view), _tag_default (a trigger function: a
-- partition created by a table's owner clones it), create_reading_view (a
-- security_invoker view its caller could write by hand), _anonymizer_unusable (it
-- only fails an anonymizing statement whose custom anonymizer is gone), and functions that implement
-- types, operators or casts (tagged values must be usable by everyone).
SELECT is_empty($$
    SELECT p.oid::regprocedure::text
      FROM pg_proc p, LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
     WHERE p.pronamespace = 'privacy_guard'::regnamespace
       AND a.grantee = 0 AND a.privilege_type = 'EXECUTE'
       AND p.proname NOT IN ('has_consent', 'row_visible', 'write_allowed', '_hmac',
                             'reveal', 'tag', 'tag_purposes', 'tag_retain_until',
                             'privacy_notice', 'length', '_tag_erasable', '_tag_report_value',
                             '_tags_erasable', '_tags_erase', '_tags_expired', '_tags_expire',
                             '_tags_erasable_in', '_tags_erase_in', '_tags_expired_in', '_tags_expire_in',
                             '_tag_default', '_in_eea', 'create_reading_view', '_anonymizer_unusable')
       AND NOT EXISTS (SELECT 1 FROM pg_type t
                        WHERE p.oid IN (t.typinput, t.typoutput, t.typreceive, t.typsend,
                                        t.typmodin, t.typmodout, t.typanalyze))
       AND NOT EXISTS (SELECT 1 FROM pg_operator o
                        WHERE p.oid IN (o.oprcode, o.oprrest, o.oprjoin))
       AND NOT EXISTS (SELECT 1 FROM pg_cast k WHERE k.castfunc = p.oid)
       AND NOT EXISTS (SELECT 1 FROM pg_amproc ap WHERE ap.amproc = p.oid)
     ORDER BY 1$$,
    'PUBLIC can execute no privacy_guard function but the read side and policy helpers');

SELECT is(
    (SELECT count(*)::int
       FROM pg_proc p, LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
      WHERE p.pronamespace = 'privacy_guard'::regnamespace
        AND a.grantee = 0 AND a.privilege_type = 'EXECUTE'
        AND p.proname IN ('tag', 'reveal', 'tag_purposes', 'tag_retain_until')),
    16, 'tag, reveal, tag_purposes and tag_retain_until for the 4 tagged types are executable by PUBLIC');

SELECT set_eq($$
    SELECT p.oid::regprocedure::text
      FROM pg_proc p, LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
     WHERE p.pronamespace = 'privacy_guard'::regnamespace
       AND a.grantee = 0 AND a.privilege_type = 'EXECUTE'
       AND p.proname IN ('has_consent', 'row_visible', 'write_allowed')$$,
    ARRAY['privacy_guard.has_consent(text,text)',
          'privacy_guard.row_visible(regclass,anyelement)',
          'privacy_guard.row_visible(regclass,anyelement,timestamp with time zone)',
          'privacy_guard.row_visible(regclass,anyelement,timestamp without time zone)',
          'privacy_guard.row_visible(regclass,anyelement,date)',
          'privacy_guard.write_allowed(regclass)'],
    'has_consent, the 4 row_visible overloads and write_allowed are executable by PUBLIC');

SELECT is_empty($$
    SELECT p.oid::regprocedure::text
      FROM pg_proc p, LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
     WHERE p.pronamespace = 'privacy_guard'::regnamespace
       AND a.grantee = 0 AND a.privilege_type = 'EXECUTE'
       AND p.proname IN ('define_purpose', 'set_purpose_description', 'drop_purpose', 'allow_purpose', 'disallow_purpose',
                         'protect', 'unprotect', 'set_anonymizer', 'set_legal_hold',
                         'run_maintenance', 'subject_report', 'check',
                         'grant_consent', 'import_consents', 'withdraw_consent', 'object_to', 'forget',
                         'grant_admin', 'grant_recorder', 'access_history', '_flush_access_log',
                         '_import_write', '_import_write_untriggered',
                         'define_recipient', 'drop_recipient', 'disclose_to', 'undisclose', 'disclose',
                         'pending_notices', 'mark_notice_sent', 'investigate', 'grant_discloser', 'grant_deliverer',
                         '_record_disclosure', '_disclosure_query', '_notify_recipients')$$,
    'no administration, recording or level-granting function is executable by PUBLIC');

-- ================================================================ a plain role
SET ROLE pgtap_plain;

SELECT throws_ok($$SELECT * FROM privacy_guard.worker_status$$, '42501', NULL,
                 'plain role cannot read worker_status');
SELECT throws_ok($$SELECT * FROM privacy_guard.round_history$$, '42501', NULL,
                 'plain role cannot read round_history');
SELECT throws_ok($$SELECT * FROM privacy_guard.launcher_status()$$, '42501', NULL,
                 'plain role cannot call launcher_status');
SELECT throws_ok($$SELECT privacy_guard.define_purpose('pgtap_plain_p')$$, '42501', NULL,
                 'plain role cannot define_purpose');
SELECT throws_ok($$SELECT privacy_guard.drop_purpose('pgtap_contract')$$, '42501', NULL,
                 'plain role cannot drop_purpose');
SELECT throws_ok($$SELECT privacy_guard.allow_purpose('pgtap_plain', 'pgtap_contract')$$, '42501', NULL,
                 'plain role cannot allow_purpose');
SELECT throws_ok($$SELECT privacy_guard.disallow_purpose('pgtap_plain', 'pgtap_contract')$$, '42501', NULL,
                 'plain role cannot disallow_purpose');
SELECT throws_ok($$SELECT privacy_guard.protect('public.pgtap_admin_t', 'subject', ARRAY['pgtap_contract'])$$,
                 '42501', NULL, 'plain role cannot protect');
SELECT throws_ok($$SELECT privacy_guard.unprotect('public.pgtap_foreign_prot_t')$$, '42501', NULL,
                 'plain role cannot unprotect');
SELECT throws_ok($$SELECT privacy_guard.grant_consent('pgtap-s', 'pgtap_consent')$$, '42501', NULL,
                 'plain role cannot grant_consent');
SELECT throws_ok($$SELECT privacy_guard.import_consents(ARRAY['pgtap-s'], ARRAY['pgtap_consent'])$$, '42501', NULL,
                 'plain role cannot import_consents');
SELECT throws_ok($$SELECT privacy_guard.import_consents('privacy_guard.purpose'::regclass)$$, '42501', NULL,
                 'plain role cannot import_consents from a table');
SELECT throws_ok($$SELECT privacy_guard.withdraw_consent('pgtap-s', 'pgtap_consent')$$, '42501', NULL,
                 'plain role cannot withdraw_consent');
SELECT throws_ok($$SELECT privacy_guard.object_to('pgtap-s', 'pgtap_li')$$, '42501', NULL,
                 'plain role cannot object_to');
SELECT throws_ok($$SELECT privacy_guard.forget('pgtap-s')$$, '42501', NULL,
                 'plain role cannot forget');
SELECT throws_ok($$SELECT privacy_guard.grant_admin('pgtap_plain')$$, '42501', NULL,
                 'plain role cannot grant_admin');
SELECT throws_ok($$SELECT privacy_guard.grant_recorder('pgtap_plain')$$, '42501', NULL,
                 'plain role cannot grant_recorder');

SELECT throws_ok($$SELECT * FROM privacy_guard.consent_ledger$$, '42501', NULL,
                 'plain role cannot read consent_ledger');
SELECT throws_ok($$SELECT * FROM privacy_guard.consents$$, '42501', NULL,
                 'plain role cannot read consents');
SELECT throws_ok($$SELECT * FROM privacy_guard.erasure_requests$$, '42501', NULL,
                 'plain role cannot read erasure_requests');
SELECT throws_ok($$SELECT * FROM privacy_guard.purpose_roles$$, '42501', NULL,
                 'plain role cannot read purpose_roles');
SELECT throws_ok($$SELECT privacy_guard.subject_report('pgtap-existing')$$, '42501', NULL,
                 'plain role cannot call subject_report');
SELECT throws_ok($$SELECT * FROM privacy_guard.check()$$, '42501', NULL,
                 'plain role cannot call check');
SELECT throws_ok($$SELECT * FROM privacy_guard.processing_register$$, '42501', NULL,
                 'plain role cannot read processing_register');
SELECT ok(privacy_guard.privacy_notice() LIKE '# Privacy notice%',
          'plain role can generate the privacy notice (public information)');
SELECT throws_ok($$SELECT * FROM privacy_guard.access_log$$, '42501', NULL,
                 'plain role cannot read access_log');
SELECT throws_ok($$SELECT * FROM privacy_guard.access_history('pgtap-existing', '-infinity')$$,
                 '42501', NULL, 'plain role cannot call access_history');

-- every table of the schema: no read, no write
SELECT throws_ok(format('SELECT * FROM %s', c.oid::regclass), '42501', NULL,
                 format('plain role cannot SELECT from %s', c.oid::regclass))
  FROM pg_class c
 WHERE c.relnamespace = 'privacy_guard'::regnamespace AND c.relkind IN ('r', 'p')
 ORDER BY c.relname;
SELECT throws_ok(format('INSERT INTO %s DEFAULT VALUES', c.oid::regclass), '42501', NULL,
                 format('plain role cannot INSERT INTO %s', c.oid::regclass))
  FROM pg_class c
 WHERE c.relnamespace = 'privacy_guard'::regnamespace AND c.relkind IN ('r', 'p')
 ORDER BY c.relname;
SELECT throws_ok(format('UPDATE %s SET %I = %I', c.oid::regclass, col.attname, col.attname),
                 '42501', NULL, format('plain role cannot UPDATE %s', c.oid::regclass))
  FROM pg_class c,
       LATERAL (SELECT a.attname FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.attidentity = '' AND a.attgenerated = ''
                 ORDER BY a.attnum LIMIT 1) col
 WHERE c.relnamespace = 'privacy_guard'::regnamespace AND c.relkind IN ('r', 'p')
 ORDER BY c.relname;
SELECT throws_ok(format('DELETE FROM %s', c.oid::regclass), '42501', NULL,
                 format('plain role cannot DELETE FROM %s', c.oid::regclass))
  FROM pg_class c
 WHERE c.relnamespace = 'privacy_guard'::regnamespace AND c.relkind IN ('r', 'p')
 ORDER BY c.relname;
SELECT throws_ok(format('TRUNCATE %s', c.oid::regclass), '42501', NULL,
                 format('plain role cannot TRUNCATE %s', c.oid::regclass))
  FROM pg_class c
 WHERE c.relnamespace = 'privacy_guard'::regnamespace AND c.relkind IN ('r', 'p')
 ORDER BY c.relname;

-- what everyone may do
SELECT lives_ok($$SELECT privacy_guard.has_consent('pgtap-existing', 'pgtap_consent')$$,
                'plain role can execute has_consent');
SELECT is(privacy_guard.has_consent('pgtap-existing', 'pgtap_consent'), true,
          'plain role gets the real answer from has_consent');
SELECT lives_ok($$SELECT * FROM privacy_guard.purposes$$, 'plain role can read purposes');
SELECT is((SELECT legal_basis FROM privacy_guard.purposes WHERE name = 'pgtap_li'),
          'legitimate_interests', 'plain role sees the purposes');
SELECT lives_ok($$SELECT * FROM privacy_guard.protected_tables$$,
                'plain role can read protected_tables');
SELECT is((SELECT count(*)::int FROM privacy_guard.protected_tables
            WHERE table_name = 'public.pgtap_foreign_prot_t'::regclass),
          1, 'plain role sees the registrations');

RESET ROLE;

-- ================================================================ recorder
SELECT lives_ok($$SELECT privacy_guard.grant_recorder('pgtap_rec')$$,
                'superuser hands the recording level to a role');
SET ROLE pgtap_rec;

SELECT lives_ok($$SELECT privacy_guard.grant_consent('pgtap-rec', 'pgtap_consent',
                                                     now() + interval '1 day', '{"form": "signup"}')$$,
                'recorder can grant_consent');
SELECT is(privacy_guard.import_consents(ARRAY['pgtap-rec-i1', 'pgtap-rec-i2'],
                                        ARRAY['pgtap_consent', 'pgtap_consent'],
                                        ARRAY[now() + interval '1 day', NULL],
                                        ARRAY['{"form": "paper"}'::jsonb, NULL]),
          2::bigint, 'recorder can import_consents');
CREATE TEMP TABLE pgtap_rec_src AS SELECT 'pgtap-rec-i3'::text AS subject, 'pgtap_consent'::text AS purpose;
SELECT is(privacy_guard.import_consents('pgtap_rec_src'), 1::bigint,
          'recorder can import_consents from its own table');
SELECT lives_ok($$SELECT privacy_guard.withdraw_consent('pgtap-rec', 'pgtap_consent')$$,
                'recorder can withdraw_consent');
SELECT lives_ok($$SELECT privacy_guard.object_to('pgtap-rec', 'pgtap_li')$$,
                'recorder can object_to');
SELECT ok(privacy_guard.forget('pgtap-rec', 'pgTAP') IS NOT NULL, 'recorder can forget');
SELECT is(privacy_guard.erasure_status('pgtap-rec'), 'pending',
          'recorder can follow its request with erasure_status');

SELECT throws_ok($$SELECT privacy_guard.define_purpose('pgtap_rec_p')$$, '42501', NULL,
                 'recorder cannot define_purpose');
SELECT throws_ok($$SELECT privacy_guard.allow_purpose('pgtap_rec', 'pgtap_contract')$$, '42501', NULL,
                 'recorder cannot allow_purpose');
SELECT throws_ok($$SELECT privacy_guard.protect('public.pgtap_admin_t', 'subject', ARRAY['pgtap_contract'])$$,
                 '42501', NULL, 'recorder cannot protect');
SELECT throws_ok($$SELECT privacy_guard.unprotect('public.pgtap_foreign_prot_t')$$, '42501', NULL,
                 'recorder cannot unprotect');
SELECT throws_ok($$SELECT privacy_guard.grant_recorder('pgtap_plain')$$, '42501', NULL,
                 'recorder cannot hand its level on');
SELECT throws_ok($$INSERT INTO privacy_guard.consent_ledger (subject, purpose, action)
                   VALUES ('pgtap-rec', 'pgtap_consent', 'grant')$$, '42501', NULL,
                 'recorder cannot write consent_ledger directly');
SELECT throws_ok($$UPDATE privacy_guard.consent_state SET status = 'granted'$$, '42501', NULL,
                 'recorder cannot write consent_state directly');
SELECT throws_ok($$DELETE FROM privacy_guard.erasure_request$$, '42501', NULL,
                 'recorder cannot write erasure_request directly');
SELECT throws_ok($$INSERT INTO privacy_guard.purpose (name, legal_basis) VALUES ('pgtap_x', 'contract')$$,
                 '42501', NULL, 'recorder cannot write purpose directly');

RESET ROLE;
SELECT results_eq($$SELECT action FROM privacy_guard.consent_ledger
                     WHERE subject = 'pgtap-rec' ORDER BY id$$,
                  ARRAY['grant', 'withdraw', 'object'],
                  'the recorder''s calls are in the ledger');

-- ================================================================ admin
SELECT lives_ok($$SELECT privacy_guard.grant_admin('pgtap_admin')$$,
                'superuser hands the administration level to a role');
SET ROLE pgtap_admin;

SELECT lives_ok($$SELECT privacy_guard.define_purpose('pgtap_admin_p', 'contract', 'by the admin')$$,
                'admin can define_purpose');
SELECT lives_ok($$SELECT privacy_guard.allow_purpose('pgtap_plain', 'pgtap_admin_p')$$,
                'admin can allow_purpose');
SELECT is((SELECT count(*)::int FROM privacy_guard.purpose_roles
            WHERE role = 'pgtap_plain'::regrole AND purpose = 'pgtap_admin_p'),
          1, 'admin can read purpose_roles and sees the authorisation');
SELECT lives_ok($$SELECT privacy_guard.disallow_purpose('pgtap_plain', 'pgtap_admin_p')$$,
                'admin can disallow_purpose');
SELECT lives_ok($$SELECT privacy_guard.protect('public.pgtap_admin_t', 'subject', ARRAY['pgtap_admin_p'])$$,
                'admin can protect a table it owns');
SELECT is((SELECT count(*)::int FROM privacy_guard.protected_tables
            WHERE table_name = 'public.pgtap_admin_t'::regclass),
          1, 'the admin''s table is registered');
SELECT lives_ok($$SELECT privacy_guard.unprotect('public.pgtap_admin_t')$$,
                'admin can unprotect a table it owns');
SELECT lives_ok($$SELECT privacy_guard.drop_purpose('pgtap_admin_p')$$,
                'admin can drop_purpose');
SELECT lives_ok($$SELECT * FROM privacy_guard.consents$$, 'admin can read consents');
SELECT is((SELECT status FROM privacy_guard.consents
            WHERE subject = 'pgtap-existing' AND purpose = 'pgtap_consent'),
          'granted', 'admin sees the current consent state');
SELECT lives_ok($$SELECT * FROM privacy_guard.consent_ledger$$, 'admin can read consent_ledger');
SELECT lives_ok($$SELECT * FROM privacy_guard.erasure_requests$$, 'admin can read erasure_requests');
SELECT is((privacy_guard.subject_report('pgtap-existing') -> 'consents' -> 0 ->> 'status'),
          'granted', 'admin can call subject_report and gets the subject''s consents');
SELECT lives_ok($$SELECT * FROM privacy_guard.check()$$, 'admin can call check');
SELECT lives_ok($$SELECT * FROM privacy_guard.processing_register$$, 'admin can read processing_register');
SELECT lives_ok($$SELECT * FROM privacy_guard.access_log$$, 'admin can read access_log');
SELECT lives_ok($$SELECT * FROM privacy_guard.access_history('pgtap-existing', '-infinity')$$,
                'admin can call access_history');

-- README "Privileges": an administrator's own calls on its own tables
SELECT lives_ok($$SELECT privacy_guard.protect('public.pgtap_admin_kept', 'subject', ARRAY['pgtap_contract'],
                                                 interval '1 year', 'made')$$,
                'admin can protect a table it owns with a retention rule');
SELECT lives_ok($$SELECT privacy_guard.set_anonymizer('public.pgtap_admin_kept', 'note', 'redact')$$,
                'admin can set_anonymizer on its table');
SELECT lives_ok($$SELECT privacy_guard.set_legal_hold('public.pgtap_admin_kept', interval '10 years', 'pgtap_legal')$$,
                'admin can set_legal_hold on its table');
SELECT is(privacy_guard.erasure_status('pgtap-existing'), NULL, 'admin can call erasure_status');
SELECT lives_ok($$SELECT * FROM privacy_guard.worker_status$$, 'admin can read worker_status');
SELECT lives_ok($$SELECT * FROM privacy_guard.round_history$$, 'admin can read round_history');
SELECT lives_ok($$SELECT * FROM privacy_guard.launcher_status()$$, 'admin can call launcher_status');
SELECT throws_ok($$DELETE FROM privacy_guard.round_history$$, '42501', NULL,
                 'admin cannot DELETE from round_history (only the rounds prune it)');

SELECT throws_ok($$SELECT privacy_guard.grant_admin('pgtap_plain')$$, '42501', NULL,
                 'admin cannot grant_admin');
-- SPEC §3.3: recording "is for the roles an administrator hands it to"
SELECT lives_ok($$SELECT privacy_guard.grant_recorder('pgtap_plain')$$,
                'admin can hand the recording level to an application role');
-- protect() must not let an admin change tables it could not ALTER itself
SELECT throws_ok($$SELECT privacy_guard.protect('public.pgtap_foreign_t', 'subject', ARRAY['pgtap_contract'])$$,
                 '42501', NULL, 'admin cannot protect a table it does not own');
SELECT throws_ok($$SELECT privacy_guard.unprotect('public.pgtap_foreign_prot_t')$$, '42501', NULL,
                 'admin cannot unprotect a table it does not own');
SELECT throws_ok($$SELECT * FROM privacy_guard.secret$$, '42501', NULL,
                 'admin cannot read the digest secret');
SELECT throws_ok($$INSERT INTO privacy_guard.consent_ledger (subject, purpose, action)
                   VALUES ('pgtap-admin', 'pgtap_consent', 'grant')$$, '42501', NULL,
                 'admin cannot insert into consent_ledger directly');
SELECT throws_ok($$INSERT INTO privacy_guard.purpose (name, legal_basis) VALUES ('pgtap_y', 'contract')$$,
                 '42501', NULL, 'admin cannot write purpose directly');
-- the ledger is append-only, for the admin too (no write privilege at all)
SELECT throws_ok($$DELETE FROM privacy_guard.consent_ledger$$, '42501', NULL,
                 'admin cannot DELETE from consent_ledger');
SELECT throws_ok($$UPDATE privacy_guard.consent_ledger SET purpose = purpose$$, '42501', NULL,
                 'admin cannot UPDATE consent_ledger');

RESET ROLE;
SELECT is((SELECT count(*)::int FROM privacy_guard.anonymizer
            WHERE relid = 'public.pgtap_admin_kept'::regclass AND column_name = 'note' AND method = 'redact'),
          1, 'the admin''s anonymizer is recorded');
SELECT is((SELECT hold_keep FROM privacy_guard.protected_table
            WHERE relid = 'public.pgtap_admin_kept'::regclass),
          interval '10 years', 'the admin''s legal hold is recorded');

-- ================================================================ recipients, disclosures, the outbox
-- define_recipient and the purposes' disclosures are administration; disclose()
-- is handed with grant_discloser, the outbox with grant_deliverer; everyone may
-- read the recipients (the public notice names them), nobody else the records
SET ROLE pgtap_plain;
SELECT throws_ok($$SELECT privacy_guard.define_recipient('pgtap_r', 'processor', 'DE')$$, '42501', NULL,
                 'plain role cannot define_recipient');
SELECT throws_ok($$SELECT privacy_guard.disclose_to('pgtap_consent', 'pgtap_r')$$, '42501', NULL,
                 'plain role cannot disclose_to');
SELECT throws_ok($$SELECT * FROM privacy_guard.disclose('pgtap_r', 'pgtap_consent', 'public.pgtap_foreign_prot_t', ARRAY['id']::name[])$$,
                 '42501', NULL, 'plain role cannot disclose');
SELECT throws_ok($$SELECT privacy_guard._record_disclosure('pgtap_r', 'pgtap_consent', 'public.pgtap_foreign_prot_t', ARRAY['id']::name[], ARRAY['x'], 1, 'x')$$,
                 '42501', NULL, 'plain role cannot write a disclosure record');
SELECT throws_ok($$SELECT * FROM privacy_guard.pending_notices()$$, '42501', NULL,
                 'plain role cannot read the outbox');
SELECT throws_ok($$SELECT privacy_guard.mark_notice_sent(1)$$, '42501', NULL,
                 'plain role cannot mark a notice sent');
SELECT throws_ok($$SELECT * FROM privacy_guard.investigate('pgtap-existing')$$, '42501', NULL,
                 'plain role cannot investigate');
SELECT throws_ok($$SELECT * FROM privacy_guard.disclosures$$, '42501', NULL,
                 'plain role cannot read disclosures');
SELECT throws_ok($$SELECT * FROM privacy_guard.recipient_notices$$, '42501', NULL,
                 'plain role cannot read recipient_notices');
SELECT lives_ok($$SELECT * FROM privacy_guard.recipients$$, 'everyone may read the recipients');
RESET ROLE;
SET ROLE pgtap_admin;
SELECT lives_ok($$SELECT privacy_guard.define_recipient('pgtap_r', 'processor', 'US', 'standard contractual clauses')$$,
                'admin can define_recipient');
SELECT lives_ok($$SELECT privacy_guard.disclose_to('pgtap_consent', 'pgtap_r')$$, 'admin can disclose_to');
SELECT lives_ok($$SELECT * FROM privacy_guard.investigate('pgtap-existing')$$, 'admin can investigate');
SELECT lives_ok($$SELECT privacy_guard.grant_deliverer('pgtap_plain')$$, 'admin can hand the outbox on');
RESET ROLE;
SET ROLE pgtap_plain;
SELECT lives_ok($$SELECT * FROM privacy_guard.pending_notices()$$, 'a deliverer can read the outbox');
SELECT throws_ok($$DELETE FROM privacy_guard.recipient_notice$$, '42501', NULL,
                 'a deliverer cannot write the outbox directly');
RESET ROLE;
SELECT is((SELECT third_country FROM privacy_guard.recipients WHERE name = 'pgtap_r'), true,
          'a recipient in the US is a third-country transfer');

-- ================================================================ superuser and the ledger
SELECT throws_ok($$DELETE FROM privacy_guard.consent_ledger$$, '55000', NULL,
                 'consent_ledger refuses DELETE even from a superuser');
SELECT throws_ok($$TRUNCATE privacy_guard.consent_ledger$$, '55000', NULL,
                 'consent_ledger refuses TRUNCATE even from a superuser');
SELECT throws_ok($$UPDATE privacy_guard.consent_ledger SET action = 'withdraw'
                    WHERE subject = 'pgtap-existing'$$, '55000', NULL,
                 'consent_ledger refuses UPDATE even from a superuser');
-- README "Privileges": the extension creates no roles (test/run_pgtap.sh makes a
-- fresh cluster and installs it; the only other roles are this file's fixtures)
SELECT is((SELECT string_agg(rolname, ', ') FROM pg_roles
            WHERE rolname NOT LIKE 'pg\_%' AND rolname NOT LIKE 'pgtap\_%' AND oid <> 10),
          NULL, 'the extension created no roles');
-- the per-table checks above come from a catalog query: make sure it found
-- the tables (a query finding none would shrink the plan, not fail it)
SELECT cmp_ok((SELECT count(*)::int FROM pg_class c
               WHERE c.relnamespace = 'privacy_guard'::regnamespace
                 AND c.relkind IN ('r', 'p')), '>=', 11,
              'the per-table privilege checks covered every table of the schema (at least the 11 of 1.0)');

SELECT * FROM finish();
ROLLBACK;
