-- Purposes, their hierarchy and legal bases; roles authorised for them.
-- (the purposes and roles are defined in setup.sql)
\set VERBOSITY terse

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

-- roles (regress_app is authorised for billing and marketing in setup.sql)
SELECT privacy_guard.allow_purpose('regress_app', 'marketing');   -- idempotent
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
