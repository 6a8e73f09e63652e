-- privacy_notice(format, language): the notice in English and German, with
-- the purposes described per language (set_purpose_description), the
-- legal bases of GDPR Art. 6(1)(a)-(f) and every right of the data subject
-- (Art. 7(3), 15-18, 20-22, 77).  privacy_notice(format) stays the 1.0
-- notice, word for word.  In a database of its own: the notice covers every
-- protected table of a database.
SELECT current_database() AS pooler_orig_db \gset
CREATE DATABASE pooler_notice_db;
\c pooler_notice_db
SET client_min_messages = warning;
CREATE EXTENSION privacy_guard;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE pooler_nl_plain;

SELECT privacy_guard.define_purpose('shop', 'contract', 'Delivering your orders');
SELECT privacy_guard.define_purpose('tax', 'legal_obligation', 'Bookkeeping the tax law requires');
SELECT privacy_guard.define_purpose('news', 'consent', 'Our newsletter');
SELECT privacy_guard.define_purpose('fraud', 'legitimate_interests', 'Preventing fraud');
SELECT privacy_guard.define_purpose('rescue', 'vital_interests');
SELECT privacy_guard.define_purpose('registry', 'public_task', 'Keeping the public register');
SELECT privacy_guard.set_purpose_description('shop', 'de', 'Lieferung Ihrer Bestellungen');
SELECT privacy_guard.set_purpose_description('tax', 'de', 'Buchführung nach dem Steuerrecht');
SELECT privacy_guard.set_purpose_description('news', 'DE', 'Unser Newsletter & <Angebote>');
SELECT privacy_guard.set_purpose_description('fraud', 'de', 'Betrugsprävention');
SELECT privacy_guard.set_purpose_description('registry', 'de', 'Führung des öffentlichen Registers');
SELECT privacy_guard.set_purpose_description('news', 'en', 'Our newsletter (monthly)');

CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, signed_up timestamptz NOT NULL);
COMMENT ON TABLE customers IS 'Ihr Kundenkonto.';
COMMENT ON COLUMN customers.id IS 'Kundennummer';
COMMENT ON COLUMN customers.email IS 'E-Mail-Adresse';
COMMENT ON COLUMN customers.signed_up IS 'Registrierung';
CREATE TABLE invoices (id bigint PRIMARY KEY, customer_id bigint, amount numeric, issued date NOT NULL);
CREATE TABLE visits (id bigint, customer_id bigint, seen timestamptz NOT NULL, note privacy_guard.tagged_text);
CREATE TABLE emergency (id bigint, customer_id bigint, contact text);
CREATE TABLE register_entries (id bigint, customer_id bigint, entry text);
SELECT privacy_guard.protect('customers', 'id', ARRAY['shop', 'news'], interval '2 years 6 months', 'signed_up');
SELECT privacy_guard.protect('invoices', 'customer_id', ARRAY['shop'], interval '1 year', 'issued',
							 on_expiry => 'anonymize', on_forget => 'anonymize');
SELECT privacy_guard.set_anonymizer('invoices', 'customer_id', 'null');
SELECT privacy_guard.set_legal_hold('invoices', interval '10 years', 'tax');
SELECT privacy_guard.protect('visits', 'customer_id', ARRAY['fraud'], interval '30 days', 'seen');
SELECT privacy_guard.protect('emergency', 'customer_id', ARRAY['rescue']);
SELECT privacy_guard.protect('register_entries', 'customer_id', ARRAY['registry']);

-- German, markdown and html
\pset format unaligned
\pset tuples_only on
SELECT privacy_guard.privacy_notice('markdown', 'de');
SELECT privacy_guard.privacy_notice('html', 'de');
-- English: the complete notice
SELECT privacy_guard.privacy_notice('markdown', 'en');
\pset format aligned
\pset tuples_only off
-- the 1.0 notice is the complete English one without the additions
WITH old AS (SELECT privacy_guard.privacy_notice('markdown') AS n),
	 new AS (SELECT privacy_guard.privacy_notice('markdown', 'en') AS n)
SELECT strpos(new.n, 'GDPR Art. 77') > 0 AS complete_names_art_77,
	   strpos(old.n, 'GDPR Art. 77') = 0 AS old_does_not,
	   length(new.n) > length(old.n) AS complete_is_longer
  FROM old, new;
SELECT privacy_guard.privacy_notice() = privacy_guard.privacy_notice('markdown') AS default_format;
-- language and format are case-insensitive; unknown ones are refused
SELECT privacy_guard.privacy_notice('HTML', 'De') = privacy_guard.privacy_notice('html', 'de') AS case_insensitive;
SELECT privacy_guard.privacy_notice('markdown', 'fr');
SELECT privacy_guard.privacy_notice('markdown', NULL);
SELECT privacy_guard.privacy_notice('pdf', 'de');
-- every purpose the tables use is named in both languages, with its legal basis
SELECT l, p.name, strpos(privacy_guard.privacy_notice('markdown', l), '`' || p.name || '`') > 0 AS named
  FROM privacy_guard.purposes p, unnest(ARRAY['en', 'de']) l ORDER BY l, p.name;
SELECT count(*) AS bases_named
  FROM unnest(ARRAY['lit. a', 'lit. b', 'lit. c', 'lit. d', 'lit. e', 'lit. f']) b
 WHERE strpos(privacy_guard.privacy_notice('markdown', 'de'), 'Art. 6 Abs. 1 ' || b || ' DSGVO') > 0;
-- set_purpose_description: an empty description removes it; unknown purpose or language refused
SELECT privacy_guard.set_purpose_description('news', 'en', '');
SELECT purpose, language, description FROM privacy_guard.purpose_description ORDER BY 1, 2;
SELECT privacy_guard.set_purpose_description('nope', 'de', 'x');
SELECT privacy_guard.set_purpose_description('news', 'fr', 'x');
-- the notice is for everyone; descriptions are written by administrators only
SET ROLE pooler_nl_plain;
SELECT length(privacy_guard.privacy_notice('html', 'de')) > 0 AS plain_role_reads_notice;
SELECT privacy_guard.set_purpose_description('news', 'de', 'x');
SELECT count(*) FROM privacy_guard.purpose_description;
RESET ROLE;
-- dropping a purpose drops its descriptions
SELECT privacy_guard.define_purpose('spare', 'consent');
SELECT privacy_guard.set_purpose_description('spare', 'de', 'Reserve');
SELECT privacy_guard.drop_purpose('spare');
SELECT count(*) FROM privacy_guard.purpose_description WHERE purpose = 'spare';

\c :pooler_orig_db
DROP DATABASE pooler_notice_db;
DROP ROLE pooler_nl_plain;
