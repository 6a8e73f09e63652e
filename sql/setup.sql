-- What every pg_regress file of this suite starts from, so that each of
-- them runs alone after this one ("make installcheck REGRESS='setup rules'"):
-- the extension, the purposes the suite's files read under, and the roles
-- they share.  Anything else a file needs (tables, subjects, further roles
-- and purposes) it creates itself, under names of its own.
CREATE EXTENSION privacy_guard;
\set VERBOSITY terse

-- the purposes, one for every legal basis
SELECT privacy_guard.define_purpose('billing', 'contract', 'Invoices and payments');
SELECT privacy_guard.define_purpose('marketing', 'consent', 'Newsletters and offers');
SELECT privacy_guard.define_purpose('marketing.email', 'consent', 'E-mail newsletter');
SELECT privacy_guard.define_purpose('analytics', 'legitimate_interests', 'Product statistics');
SELECT privacy_guard.define_purpose('tax', 'legal_obligation', 'Bookkeeping duties');
SELECT privacy_guard.define_purpose('research');      -- consent is the default basis
SELECT * FROM privacy_guard.purposes ORDER BY name;

-- the roles: an application, an analyst authorised through a group, a
-- table owner, a role authorised for nothing and one that bypasses RLS
CREATE ROLE regress_app LOGIN;
CREATE ROLE regress_reporting;
CREATE ROLE regress_analyst LOGIN IN ROLE regress_reporting;
CREATE ROLE regress_owner LOGIN;
GRANT CREATE ON SCHEMA public TO regress_owner;
CREATE ROLE regress_outsider LOGIN;
CREATE ROLE regress_bypass LOGIN BYPASSRLS;
SELECT privacy_guard.allow_purpose('regress_app', 'billing');
SELECT privacy_guard.allow_purpose('regress_app', 'marketing');
SELECT privacy_guard.allow_purpose('regress_reporting', 'analytics');

-- the roles of the tests of tagged values (tagged*.sql, which define their
-- purposes tg_* themselves)
CREATE ROLE regress_tg_app LOGIN;
CREATE ROLE regress_tg_unauth LOGIN;
CREATE ROLE regress_tg_bypass LOGIN BYPASSRLS;
