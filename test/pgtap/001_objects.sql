-- 001_objects.sql -- catalog and API invariants of privacy_guard (SPEC §2, §3.3)
-- Runs in one transaction and rolls back; needs CREATE EXTENSION pgtap, privacy_guard.
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(77);

-- ---------------------------------------------------------------- schema
SELECT has_schema('privacy_guard', 'schema privacy_guard exists');
SELECT has_extension('privacy_guard', 'extension privacy_guard is installed');
SELECT is((SELECT e.extnamespace::regnamespace::text FROM pg_extension e
            WHERE e.extname = 'privacy_guard'),
          'privacy_guard', 'the extension lives in schema privacy_guard');
SELECT is((SELECT e.extrelocatable FROM pg_extension e WHERE e.extname = 'privacy_guard'),
          false, 'the extension is not relocatable');
SELECT is((SELECT n.nspowner::regrole::text FROM pg_namespace n WHERE n.nspname = 'privacy_guard'),
          (SELECT e.extowner::regrole::text FROM pg_extension e WHERE e.extname = 'privacy_guard'),
          'schema privacy_guard belongs to the extension owner');

-- ---------------------------------------------------------------- functions (SPEC §2)
-- purposes and roles
SELECT has_function('privacy_guard', 'define_purpose', ARRAY['text', 'text', 'text'],
                    'define_purpose(name text, legal_basis text, description text)');
SELECT function_returns('privacy_guard', 'define_purpose', ARRAY['text', 'text', 'text'], 'void',
                        'define_purpose() returns void');
SELECT has_function('privacy_guard', 'drop_purpose', ARRAY['text'], 'drop_purpose(name text)');
SELECT has_function('privacy_guard', 'allow_purpose', ARRAY['regrole', 'text'],
                    'allow_purpose(role regrole, purpose text)');
SELECT has_function('privacy_guard', 'disallow_purpose', ARRAY['regrole', 'text'],
                    'disallow_purpose(role regrole, purpose text)');
-- consent
SELECT has_function('privacy_guard', 'grant_consent',
                    ARRAY['text', 'text', 'timestamp with time zone', 'jsonb'],
                    'grant_consent(subject text, purpose text, valid_until timestamptz, evidence jsonb)');
SELECT has_function('privacy_guard', 'withdraw_consent', ARRAY['text', 'text'],
                    'withdraw_consent(subject text, purpose text)');
SELECT has_function('privacy_guard', 'object_to', ARRAY['text', 'text'],
                    'object_to(subject text, purpose text)');
SELECT has_function('privacy_guard', 'has_consent', ARRAY['text', 'text'],
                    'has_consent(subject text, purpose text)');
-- bulk consent import (issue 11)
SELECT has_function('privacy_guard', 'import_consents',
                    ARRAY['text[]', 'text[]', 'timestamp with time zone[]', 'jsonb[]'],
                    'import_consents(subjects text[], purposes text[], valid_until timestamptz[], evidence jsonb[])');
SELECT function_returns('privacy_guard', 'import_consents',
                        ARRAY['text[]', 'text[]', 'timestamp with time zone[]', 'jsonb[]'], 'bigint',
                        'import_consents(arrays) returns bigint (the consents recorded)');
SELECT has_function('privacy_guard', 'import_consents', ARRAY['regclass'], 'import_consents(source regclass)');
SELECT function_returns('privacy_guard', 'import_consents', ARRAY['regclass'], 'bigint',
                        'import_consents(source) returns bigint (the consents recorded)');
SELECT function_returns('privacy_guard', 'has_consent', ARRAY['text', 'text'], 'boolean',
                        'has_consent() returns boolean');
-- tables
SELECT has_function('privacy_guard', 'protect',
                    ARRAY['regclass', 'name', 'text[]', 'interval', 'name', 'text', 'text'],
                    'protect(tbl regclass, subject_column name, purposes text[], retention interval, retention_column name, on_expiry text, on_forget text)');
SELECT has_function('privacy_guard', 'unprotect', ARRAY['regclass'], 'unprotect(tbl regclass)');
-- forgetting
SELECT has_function('privacy_guard', 'forget', ARRAY['text', 'text', 'timestamp with time zone'],
                    'forget(subject text, reason text, due timestamptz)');
SELECT function_returns('privacy_guard', 'forget', ARRAY['text', 'text', 'timestamp with time zone'],
                        'bigint', 'forget() returns bigint');
SELECT has_function('privacy_guard', 'erasure_status', ARRAY['text'], 'erasure_status(subject text)');
SELECT function_returns('privacy_guard', 'erasure_status', ARRAY['text'], 'text',
                        'erasure_status() returns text');
-- privilege levels (SPEC §3.3: "one function per level that issues them")
SELECT has_function('privacy_guard', 'grant_admin', ARRAY['regrole'], 'grant_admin(role regrole)');
SELECT has_function('privacy_guard', 'grant_recorder', ARRAY['regrole'], 'grant_recorder(role regrole)');

-- argument names and defaults are part of the API (named notation, omitted arguments)
SELECT is((SELECT pg_get_function_arguments('privacy_guard.define_purpose(text,text,text)'::regprocedure)),
          $$name text, legal_basis text DEFAULT 'consent'::text, description text DEFAULT NULL::text$$,
          'define_purpose: argument names and defaults as in SPEC §2');
SELECT is((SELECT pg_get_function_arguments('privacy_guard.grant_consent(text,text,timestamptz,jsonb)'::regprocedure)),
          'subject text, purpose text, valid_until timestamp with time zone DEFAULT NULL::timestamp with time zone, evidence jsonb DEFAULT NULL::jsonb',
          'grant_consent: argument names and defaults as in SPEC §2');
SELECT is((SELECT pg_get_function_arguments('privacy_guard.import_consents(text[],text[],timestamptz[],jsonb[])'::regprocedure)),
          'subjects text[], purposes text[], valid_until timestamp with time zone[] DEFAULT NULL::timestamp with time zone[], evidence jsonb[] DEFAULT NULL::jsonb[]',
          'import_consents: argument names and defaults (grant_consent''s, one array each)');
SELECT is((SELECT pg_get_function_arguments('privacy_guard.protect(regclass,name,text[],interval,name,text,text)'::regprocedure)),
          $$tbl regclass, subject_column name, purposes text[], retention interval DEFAULT NULL::interval, retention_column name DEFAULT NULL::name, on_expiry text DEFAULT 'delete'::text, on_forget text DEFAULT 'delete'::text$$,
          'protect: argument names and defaults as in SPEC §2');
SELECT is((SELECT pg_get_function_arguments('privacy_guard.forget(text,text,timestamptz)'::regprocedure)),
          'subject text, reason text DEFAULT NULL::text, due timestamp with time zone DEFAULT now()',
          'forget: argument names and defaults as in SPEC §2');

-- transparency (SPEC §2 "Enforcement and transparency")
SELECT has_function('privacy_guard', 'subject_report', ARRAY['text'], 'subject_report(subject text)');
SELECT function_returns('privacy_guard', 'subject_report', ARRAY['text'], 'jsonb',
                        'subject_report() returns jsonb');
SELECT has_function('privacy_guard', 'privacy_notice', ARRAY['text'], 'privacy_notice(format text)');
SELECT is((SELECT pg_get_function_arguments('privacy_guard.privacy_notice(text)'::regprocedure)),
          $$format text DEFAULT 'markdown'::text$$,
          'privacy_notice: argument name and default as in SPEC §2');
SELECT has_function('privacy_guard', 'check', ARRAY[]::text[], 'check()');
SELECT is((SELECT pg_get_function_result('privacy_guard.check()'::regprocedure)),
          'TABLE(severity text, object text, message text)',
          'check() returns setof (severity text, object text, message text)');
SELECT has_view('privacy_guard', 'processing_register', 'view processing_register exists');
SELECT bag_eq($$SELECT a.attname::text FROM pg_attribute a
                WHERE a.attrelid = 'privacy_guard.processing_register'::regclass AND a.attnum > 0
                  AND NOT a.attisdropped
                  AND a.attname IN ('table_name', 'column_name', 'purposes', 'legal_bases', 'retention',
                                    'on_expiry', 'on_forget', 'anonymizer', 'hold_keep', 'hold_purpose',
                                    'approx_rows', 'tag_purposes')$$,
              ARRAY['table_name', 'column_name', 'purposes', 'legal_bases', 'retention', 'on_expiry',
                    'on_forget', 'anonymizer', 'hold_keep', 'hold_purpose', 'approx_rows', 'tag_purposes'],
              'processing_register has the Art. 30 columns of SPEC §2, and the purposes found in tags');

-- the table-level settings of SPEC §2
SELECT has_function('privacy_guard', 'set_anonymizer', ARRAY['regclass', 'name', 'text'],
                    'set_anonymizer(tbl regclass, col name, method text)');
SELECT has_function('privacy_guard', 'set_legal_hold', ARRAY['regclass', 'interval', 'text'],
                    'set_legal_hold(tbl regclass, keep interval, purpose text)');

-- ---------------------------------------------------------------- views and tables
SELECT has_view('privacy_guard', 'purposes', 'view purposes exists');
SELECT columns_are('privacy_guard', 'purposes',
                   ARRAY['name', 'parent', 'legal_basis', 'description'],
                   'view purposes has exactly name, parent, legal_basis, description');

SELECT has_view('privacy_guard', 'consents', 'view consents exists');
SELECT bag_eq($$SELECT a.attname::text FROM pg_attribute a
                WHERE a.attrelid = 'privacy_guard.consents'::regclass AND a.attnum > 0
                  AND NOT a.attisdropped
                  AND a.attname IN ('subject', 'purpose', 'status', 'valid_until')$$,
              ARRAY['subject', 'purpose', 'status', 'valid_until'],
              'view consents has subject, purpose, status, valid_until');

SELECT has_view('privacy_guard', 'protected_tables', 'view protected_tables exists');
SELECT bag_eq($$SELECT a.attname::text FROM pg_attribute a
                WHERE a.attrelid = 'privacy_guard.protected_tables'::regclass AND a.attnum > 0
                  AND NOT a.attisdropped
                  AND a.attname IN ('table_name', 'subject_column', 'purposes', 'retention',
                                    'retention_column', 'on_expiry', 'on_forget')$$,
              ARRAY['table_name', 'subject_column', 'purposes', 'retention',
                    'retention_column', 'on_expiry', 'on_forget'],
              'view protected_tables has the registration columns of protect()');

SELECT has_view('privacy_guard', 'erasure_requests', 'view erasure_requests exists');
SELECT columns_are('privacy_guard', 'erasure_requests',
                   ARRAY['id', 'subject_digest', 'reason', 'requested_at', 'due',
                         'completed_at', 'state', 'counts', 'error', 'unreachable_at', 'recipients_notified'],
                   'view erasure_requests has exactly the SPEC §2 columns, the §4 vacuum time and the recipients notified (no raw subject)');

-- recipients and disclosures (SPEC §9)
SELECT columns_are('privacy_guard', 'recipients',
                   ARRAY['name', 'kind', 'country', 'third_country', 'safeguard', 'description', 'purposes'],
                   'view recipients: name, kind, country, third_country, safeguard, description, purposes');
SELECT is((SELECT pg_get_function_result('privacy_guard.disclose(text, text, regclass, name[], text[])'::regprocedure)),
          'SETOF jsonb', 'disclose(recipient, purpose, tbl, columns, subjects) returns setof jsonb');
SELECT is((SELECT pg_get_function_result('privacy_guard.investigate(text, timestamptz, timestamptz)'::regprocedure)),
          'TABLE(at timestamp with time zone, event text, detail jsonb, flag text)',
          'investigate() returns setof (at, event, detail, flag)');
SELECT has_column('privacy_guard', 'processing_register', 'recipients', 'processing_register names the recipients (Art. 30(1)(d))');
SELECT has_column('privacy_guard', 'access_log', 'unbound', 'access_log marks reads by unbound roles');
SELECT col_type_is('privacy_guard', 'erasure_requests', 'counts', 'jsonb',
                   'erasure_requests.counts is jsonb');

SELECT has_view('privacy_guard', 'purpose_roles', 'view purpose_roles exists');
SELECT bag_eq($$SELECT a.attname::text FROM pg_attribute a
                WHERE a.attrelid = 'privacy_guard.purpose_roles'::regclass AND a.attnum > 0
                  AND NOT a.attisdropped AND a.attname IN ('role', 'purpose')$$,
              ARRAY['role', 'purpose'],
              'view purpose_roles has role, purpose');

SELECT has_table('privacy_guard', 'consent_ledger', 'table consent_ledger exists');
SELECT bag_eq($$SELECT a.attname::text FROM pg_attribute a
                WHERE a.attrelid = 'privacy_guard.consent_ledger'::regclass AND a.attnum > 0
                  AND NOT a.attisdropped
                  AND a.attname IN ('subject', 'purpose', 'action', 'valid_until', 'evidence',
                                    'recorded_at')$$,
              ARRAY['subject', 'purpose', 'action', 'valid_until', 'evidence', 'recorded_at'],
              'consent_ledger records subject, purpose, action, valid_until, evidence, recorded_at');

-- ---------------------------------------------------------------- tagged types (SPEC 2, 3.4)
SELECT bag_eq($$SELECT t.typname::text FROM pg_type t
                WHERE t.typnamespace = 'privacy_guard'::regnamespace AND t.typname LIKE 'tagged\_%'
                  AND t.typtype = 'b'$$,
              ARRAY['tagged_text', 'tagged_date', 'tagged_numeric', 'tagged_jsonb'],
              'the four tagged types exist');
SELECT is((SELECT count(DISTINCT t.typoutput::oid) || '/' || count(DISTINCT t.typsend::oid) || '/' ||
                  count(DISTINCT p.prosrc)
             FROM pg_type t JOIN pg_proc p ON p.oid = t.typoutput
            WHERE t.typnamespace = 'privacy_guard'::regnamespace AND t.typname LIKE 'tagged\_%'
              AND t.typtype = 'b'),
          '4/4/1', 'one C output function serves the four types (thin SQL entry points)');
SELECT is((SELECT pg_get_function_arguments('privacy_guard.tag(text,text[],text,timestamptz)'::regprocedure)),
          'value text, purposes text[], subject text DEFAULT NULL::text, retain_until timestamp with time zone DEFAULT NULL::timestamp with time zone',
          'tag: argument names and defaults as in SPEC §2');
SELECT is_empty($$SELECT t.typname FROM pg_type t
                   WHERE t.typnamespace = 'privacy_guard'::regnamespace AND t.typname LIKE 'tagged\_%'
                     AND t.typtype = 'b' AND t.typanalyze = 0$$,
                'every tagged type has its own typanalyze (which keeps no statistics)');
SELECT is_empty($$SELECT c.opcname FROM pg_opclass c JOIN pg_type t ON t.oid = c.opcintype
                   WHERE t.typnamespace = 'privacy_guard'::regnamespace AND t.typname LIKE 'tagged\_%'$$,
                'no operator class orders or hashes tagged values');
SELECT is_empty($$SELECT k.castsource::regtype::text || ' -> ' || k.casttarget::regtype::text
                    FROM pg_cast k JOIN pg_type t ON t.oid = k.castsource
                   WHERE t.typnamespace = 'privacy_guard'::regnamespace AND t.typname LIKE 'tagged\_%'
                     AND (k.castcontext <> 'e' OR k.castfunc::regproc::text <> 'privacy_guard.reveal')$$,
                'casts from tagged types are explicit and go through reveal()');

-- ---------------------------------------------------------------- function hygiene
SELECT is_empty($$
    SELECT p.oid::regprocedure::text
      FROM pg_proc p
     WHERE p.pronamespace = 'privacy_guard'::regnamespace
       AND p.prosecdef
       AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)
     ORDER BY 1$$,
    'every SECURITY DEFINER function sets search_path = pg_catalog, pg_temp');

SELECT isnt_empty($$
    SELECT 1 FROM pg_proc p
     WHERE p.pronamespace = 'privacy_guard'::regnamespace AND p.prosecdef$$,
    'the schema does have SECURITY DEFINER functions (previous test is not vacuous)');

SELECT is_empty($$
    SELECT p.oid::regprocedure::text
      FROM pg_proc p
     WHERE p.pronamespace = 'privacy_guard'::regnamespace
       AND obj_description(p.oid, 'pg_proc') IS NULL
     ORDER BY 1$$,
    'every function in schema privacy_guard has a COMMENT');

SELECT is_empty($$
    SELECT p.oid::regprocedure::text
      FROM pg_proc p
     WHERE p.pronamespace = 'privacy_guard'::regnamespace
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                          AND d.refclassid = 'pg_extension'::regclass
                          AND d.deptype = 'e'
                          AND d.refobjid = (SELECT e.oid FROM pg_extension e
                                             WHERE e.extname = 'privacy_guard'))
     ORDER BY 1$$,
    'every function in schema privacy_guard belongs to the extension');

-- ---------------------------------------------------------------- dump / restore
SELECT is_empty($$
    SELECT c.oid::regclass::text
      FROM pg_class c
     WHERE c.relnamespace = 'privacy_guard'::regnamespace AND c.relkind IN ('r', 'p')
       AND c.oid <> ALL (coalesce((SELECT e.extconfig FROM pg_extension e
                                    WHERE e.extname = 'privacy_guard'), '{}'))
       -- operational state, not configuration: the worker starts it afresh;
       -- vacuum marks are this cluster's vacuum counts and transaction ids
       AND c.oid <> ALL (ARRAY['privacy_guard.worker_round'::regclass, 'privacy_guard.vacuum_mark'::regclass])
     ORDER BY 1$$,
    'every table of the extension but worker_round and vacuum_mark is registered with pg_extension_config_dump');

SELECT ok((SELECT e.extconfig @> ARRAY['privacy_guard.purpose'::regclass,
                                       'privacy_guard.purpose_role'::regclass,
                                       'privacy_guard.consent_ledger'::regclass,
                                       'privacy_guard.consent_state'::regclass,
                                       'privacy_guard.protected_table'::regclass,
                                       'privacy_guard.erasure_request'::regclass]::oid[]
             FROM pg_extension e WHERE e.extname = 'privacy_guard'),
          'purposes, roles, ledger, consent state, registrations and requests are dumped');

-- Sequences behind serial/identity columns of config tables must be marked
-- too, or a restored database reuses ids 1, 2, ... and the next
-- grant_consent()/forget()/define_purpose() fails with a duplicate key.
SELECT is_empty($$
    SELECT s.oid::regclass::text
      FROM pg_class s
      JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
                      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
     WHERE s.relkind = 'S'
       AND d.refobjid = ANY ((SELECT e.extconfig FROM pg_extension e
                               WHERE e.extname = 'privacy_guard')::oid[])
       AND s.oid <> ALL ((SELECT e.extconfig FROM pg_extension e
                           WHERE e.extname = 'privacy_guard')::oid[])
     ORDER BY 1$$,
    'sequences of dumped tables are registered with pg_extension_config_dump too');

-- ---------------------------------------------------------------- no table is PUBLIC
SELECT is_empty($$
    SELECT c.oid::regclass::text || ': ' || a.privilege_type
      FROM pg_class c, LATERAL aclexplode(c.relacl) a
     WHERE c.relnamespace = 'privacy_guard'::regnamespace
       AND c.relkind IN ('r', 'p', 'S')
       AND a.grantee = 0
     ORDER BY 1$$,
    'no table or sequence of schema privacy_guard grants anything to PUBLIC');

SELECT is_empty($$
    SELECT c.oid::regclass::text
      FROM pg_class c
     WHERE c.relnamespace = 'privacy_guard'::regnamespace
       AND c.relkind IN ('r', 'p') AND c.relacl IS NULL
     ORDER BY 1$$,
    'no table of schema privacy_guard keeps the default ACL');

SELECT is_empty($$
    SELECT a.privilege_type
      FROM pg_namespace n, LATERAL aclexplode(n.nspacl) a
     WHERE n.nspname = 'privacy_guard' AND a.grantee = 0 AND a.privilege_type <> 'USAGE'
     ORDER BY 1$$,
    'PUBLIC may use schema privacy_guard but not create in it');

SELECT ok(EXISTS (SELECT 1 FROM pg_namespace n, LATERAL aclexplode(n.nspacl) a
                       WHERE n.nspname = 'privacy_guard' AND a.grantee = 0
                         AND a.privilege_type = 'USAGE'),
          'schema privacy_guard is usable by everyone (SPEC §3.3)');

SELECT * FROM finish();
ROLLBACK;
