-- Purposes, their hierarchy and legal bases; roles authorised for them.
CREATE EXTENSION privacy_guard;
\set VERBOSITY terse

SELECT privacy_guard.define_purpose('billing', 'contract', 'Invoices and payments');
SELECT privacy_guard.define_purpose('marketing', 'consent', 'Newsletters and offers');
SELECT privacy_guard.define_purpose('marketing.email', 'consent', 'E-mail newsletter');
SELECT privacy_guard.define_purpose('analytics', 'legitimate_interests', 'Product statistics');
SELECT privacy_guard.define_purpose('tax', 'legal_obligation', 'Bookkeeping duties');
SELECT privacy_guard.define_purpose('research');      -- consent is the default basis
SELECT * FROM privacy_guard.purposes ORDER BY name;

-- updating a purpose keeps its name, changes basis and description
SELECT privacy_guard.define_purpose('research', 'public_task', 'Public research');
SELECT legal_basis, description FROM privacy_guard.purposes WHERE name = 'research';

-- bad input
SELECT privacy_guard.define_purpose('Marketing');
SELECT privacy_guard.define_purpose('');
SELECT privacy_guard.define_purpose('a..b');
SELECT privacy_guard.define_purpose(NULL);
SELECT privacy_guard.define_purpose('support.chat');  -- parent missing
SELECT privacy_guard.define_purpose('support', 'goodwill');
SELECT count(*) FROM privacy_guard.purposes;          -- nothing half-done

-- roles
CREATE ROLE regress_app LOGIN;
CREATE ROLE regress_reporting;
CREATE ROLE regress_analyst LOGIN IN ROLE regress_reporting;
SELECT privacy_guard.allow_purpose('regress_app', 'billing');
SELECT privacy_guard.allow_purpose('regress_app', 'marketing');
SELECT privacy_guard.allow_purpose('regress_app', 'marketing');   -- idempotent
SELECT privacy_guard.allow_purpose('regress_reporting', 'analytics');
SELECT privacy_guard.allow_purpose('regress_app', 'nonexistent');
SELECT privacy_guard.allow_purpose('regress_nobody', 'billing');
SELECT * FROM privacy_guard.purpose_roles ORDER BY role::text, purpose;
SELECT privacy_guard.disallow_purpose('regress_app', 'marketing');
SELECT * FROM privacy_guard.purpose_roles ORDER BY role::text, purpose;
SELECT privacy_guard.allow_purpose('regress_app', 'marketing');

-- drop_purpose refuses while anything uses the purpose
SELECT privacy_guard.drop_purpose('marketing');      -- child marketing.email
SELECT privacy_guard.drop_purpose('billing');        -- role regress_app
SELECT privacy_guard.define_purpose('unused', 'contract');
SELECT privacy_guard.drop_purpose('unused');
SELECT privacy_guard.drop_purpose('unused');         -- gone
SELECT name FROM privacy_guard.purposes WHERE name = 'unused';
