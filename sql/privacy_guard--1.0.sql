/* privacy_guard--1.0.sql -- purposes, consent, protected tables, erasure requests */

\echo Use "CREATE EXTENSION privacy_guard" to load this file. \quit

/*
 * The schema named in the control file must be ours: a schema planted by
 * another role before CREATE EXTENSION would let that role swap our objects.
 */
DO $guard$
BEGIN
	IF (SELECT n.nspowner FROM pg_catalog.pg_namespace n
		 WHERE n.nspname OPERATOR(pg_catalog.=) 'privacy_guard')
	   OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles r
		 WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
		RAISE EXCEPTION 'schema privacy_guard exists and belongs to another role'
			USING ERRCODE = '42501',
				  HINT = 'Drop or rename that schema, then run CREATE EXTENSION again.';
	END IF;
END
$guard$;

REVOKE ALL ON SCHEMA privacy_guard FROM PUBLIC;
GRANT USAGE ON SCHEMA privacy_guard TO PUBLIC;

/* ------------------------------------------------------------------ */
/* Tables (written only through the functions below)                   */
/* ------------------------------------------------------------------ */

/*
 * Plain sequences rather than identity columns: a sequence created by the
 * script is a member of the extension, so pg_dump can carry its position.
 */
CREATE SEQUENCE privacy_guard.purpose_id_seq AS integer;
CREATE SEQUENCE privacy_guard.consent_ledger_id_seq;
CREATE SEQUENCE privacy_guard.erasure_request_id_seq;

CREATE TABLE privacy_guard.purpose (
	id			integer NOT NULL UNIQUE
				DEFAULT pg_catalog.nextval('privacy_guard.purpose_id_seq'::pg_catalog.regclass),
	name		text PRIMARY KEY
				CHECK (name OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62})*$'),
	parent		text REFERENCES privacy_guard.purpose (name),
	legal_basis text NOT NULL
				CHECK (legal_basis OPERATOR(pg_catalog.=) ANY (ARRAY['consent', 'contract',
						'legal_obligation', 'vital_interests', 'public_task',
						'legitimate_interests'])),
	description text
);
COMMENT ON TABLE privacy_guard.purpose IS 'Purposes of processing; dotted names form a hierarchy';

CREATE TABLE privacy_guard.purpose_role (
	role		regrole NOT NULL,
	purpose		text NOT NULL REFERENCES privacy_guard.purpose (name),
	PRIMARY KEY (role, purpose)
);
COMMENT ON TABLE privacy_guard.purpose_role IS 'Roles authorised for a purpose (and its children)';

CREATE TABLE privacy_guard.consent_ledger (
	id			bigint PRIMARY KEY
				DEFAULT pg_catalog.nextval('privacy_guard.consent_ledger_id_seq'::pg_catalog.regclass),
	subject		text NOT NULL,
	purpose		text NOT NULL,
	action		text NOT NULL
				CHECK (action OPERATOR(pg_catalog.=) ANY (ARRAY['grant', 'withdraw', 'object'])),
	valid_until timestamptz,
	evidence	jsonb,
	recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	recorded_by name NOT NULL DEFAULT SESSION_USER
);
CREATE INDEX consent_ledger_subject ON privacy_guard.consent_ledger (subject);
COMMENT ON TABLE privacy_guard.consent_ledger IS 'Append-only history of grants, withdrawals and objections (GDPR Art. 7(1))';

CREATE TABLE privacy_guard.consent_state (
	subject		text NOT NULL,
	purpose		text NOT NULL REFERENCES privacy_guard.purpose (name),
	status		text NOT NULL
				CHECK (status OPERATOR(pg_catalog.=) ANY (ARRAY['granted', 'withdrawn', 'objected'])),
	valid_until timestamptz,
	changed_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	changed_xid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
	PRIMARY KEY (subject, purpose)
);
CREATE INDEX consent_state_changed ON privacy_guard.consent_state (changed_xid);
COMMENT ON TABLE privacy_guard.consent_state IS 'Current consent or objection per subject and purpose';

CREATE TABLE privacy_guard.protected_table (
	relid		regclass PRIMARY KEY,
	subject_column name NOT NULL,
	purposes	text[] NOT NULL,
	retention	interval,
	retention_column name,
	on_expiry	text NOT NULL DEFAULT 'delete'
				CHECK (on_expiry OPERATOR(pg_catalog.=) ANY (ARRAY['delete', 'anonymize'])),
	on_forget	text NOT NULL DEFAULT 'delete'
				CHECK (on_forget OPERATOR(pg_catalog.=) ANY (ARRAY['delete', 'anonymize'])),
	hold_keep	interval,		/* legal hold: rows kept, restricted, until retention_column + hold_keep */
	hold_purpose text REFERENCES privacy_guard.purpose (name),	/* ... visible only under this purpose */
	owner_rls	boolean NOT NULL,	/* row-level security before protect() */
	owner_force	boolean NOT NULL,	/* FORCE ROW LEVEL SECURITY before protect() */
	protected_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE privacy_guard.protected_table IS 'Tables registered with privacy_guard.protect()';

CREATE TABLE privacy_guard.protected_part (
	target		regclass PRIMARY KEY,
	root		regclass NOT NULL	/* a registered table (no foreign key: restores load tables in any order) */
);
COMMENT ON TABLE privacy_guard.protected_part IS 'Every table carrying a registered table''s policies: itself, its partitions and children, and those detached since';

CREATE TABLE privacy_guard.anonymizer (
	relid		regclass NOT NULL,
	column_name	name NOT NULL,
	method		text NOT NULL,	/* null, redact, hash, mask, generalize, or function */
	fn			regprocedure,	/* the function, for method function */
	PRIMARY KEY (relid, column_name)
);
COMMENT ON TABLE privacy_guard.anonymizer IS 'How anonymisation treats a column of a protected table';

CREATE TABLE privacy_guard.erasure_request (
	id			bigint PRIMARY KEY
				DEFAULT pg_catalog.nextval('privacy_guard.erasure_request_id_seq'::pg_catalog.regclass),
	subject		text,			/* raw key: only while the request is open */
	subject_digest text NOT NULL,
	reason		text,
	requested_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	due			timestamptz NOT NULL,
	completed_at timestamptz,
	state		text NOT NULL DEFAULT 'pending'
				CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'done', 'restricted', 'blocked'])),
	counts		jsonb NOT NULL DEFAULT '{}',
	error		text,
	touched		oid[] NOT NULL DEFAULT '{}',	/* tables the erasure wrote to */
	unreachable_at timestamptz,	/* when all of them had been vacuumed since */
	changed_xid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id()
);
CREATE INDEX erasure_request_digest ON privacy_guard.erasure_request (subject_digest);
CREATE INDEX erasure_request_subject ON privacy_guard.erasure_request (subject);
CREATE INDEX erasure_request_changed ON privacy_guard.erasure_request (changed_xid);
COMMENT ON TABLE privacy_guard.erasure_request IS 'Erasure requests (GDPR Art. 17) and their receipts';

CREATE TABLE privacy_guard.worker_round (
	onerow		boolean PRIMARY KEY DEFAULT true CHECK (onerow),
	rounds		bigint NOT NULL DEFAULT 0,
	last_round_at timestamptz,
	last_result jsonb,
	rows_deleted bigint NOT NULL DEFAULT 0,	/* past retention */
	rows_anonymized bigint NOT NULL DEFAULT 0,
	requests_done bigint NOT NULL DEFAULT 0,
	errors		bigint NOT NULL DEFAULT 0,
	last_error	text,		/* an SQLSTATE and the table: never data */
	last_error_at timestamptz
);
COMMENT ON TABLE privacy_guard.worker_round IS 'What the background worker did in this database';

CREATE TABLE privacy_guard.secret (
	onerow		boolean PRIMARY KEY DEFAULT true CHECK (onerow),
	key			bytea NOT NULL
);
COMMENT ON TABLE privacy_guard.secret IS 'Per-database key for subject digests; never leaves the database';

/* Dumps carry the registries; a restore keeps digests and consent history. */
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.purpose', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.purpose_role', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.consent_ledger', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.consent_state', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.protected_table', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.protected_part', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.anonymizer', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.erasure_request', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.secret', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.purpose_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.consent_ledger_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.erasure_request_id_seq', '');
ALTER SEQUENCE privacy_guard.purpose_id_seq OWNED BY privacy_guard.purpose.id;
ALTER SEQUENCE privacy_guard.consent_ledger_id_seq OWNED BY privacy_guard.consent_ledger.id;
ALTER SEQUENCE privacy_guard.erasure_request_id_seq OWNED BY privacy_guard.erasure_request.id;

REVOKE ALL ON ALL TABLES IN SCHEMA privacy_guard FROM PUBLIC;

/* ------------------------------------------------------------------ */
/* C entry points                                                       */
/* ------------------------------------------------------------------ */

CREATE FUNCTION privacy_guard._random_bytes(integer)
RETURNS bytea
AS 'MODULE_PATHNAME', 'pvg_random_bytes'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._random_bytes(integer) IS 'Internal: cryptographically strong random bytes';

CREATE FUNCTION privacy_guard._hmac(bytea, text)
RETURNS text
AS 'MODULE_PATHNAME', 'pvg_hmac'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._hmac(bytea, text) IS 'Internal: hex HMAC-SHA-256 of a text under a key';

/*
 * The digest key is made on first use, not here: a restore must be able to
 * bring back the original key (pg_dump carries it), or digests in receipts
 * would no longer match.
 */

CREATE FUNCTION privacy_guard._invalidate_cache()
RETURNS trigger
AS 'MODULE_PATHNAME', 'pvg_invalidate_cache'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._invalidate_cache() IS 'Internal: tell every session that a registry changed';

/*
 * The row check of a protected table's policy.  The table is passed as a
 * constant; the subject column in its own type; the retention column, when
 * the table has a retention rule, in one of the three date/time types.
 * PARALLEL RESTRICTED: a parallel worker cannot take a new snapshot, so it
 * could not see a consent change committed after its query's snapshot
 * (in REPEATABLE READ, after the transaction began); the leader can.
 */
CREATE FUNCTION privacy_guard.row_visible(regclass, anyelement)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_row_visible'
LANGUAGE C STABLE PARALLEL RESTRICTED;
CREATE FUNCTION privacy_guard.row_visible(regclass, anyelement, timestamptz)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_row_visible'
LANGUAGE C STABLE PARALLEL RESTRICTED;
CREATE FUNCTION privacy_guard.row_visible(regclass, anyelement, timestamp)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_row_visible'
LANGUAGE C STABLE PARALLEL RESTRICTED;
CREATE FUNCTION privacy_guard.row_visible(regclass, anyelement, date)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_row_visible'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard.row_visible(regclass, anyelement) IS 'Policy check: rules 1-7 for a row without retention';
COMMENT ON FUNCTION privacy_guard.row_visible(regclass, anyelement, timestamptz) IS 'Policy check: rules 1-7 for a row with a timestamptz retention column';
COMMENT ON FUNCTION privacy_guard.row_visible(regclass, anyelement, timestamp) IS 'Policy check: rules 1-7 for a row with a timestamp retention column';
COMMENT ON FUNCTION privacy_guard.row_visible(regclass, anyelement, date) IS 'Policy check: rules 1-7 for a row with a date retention column';

CREATE FUNCTION privacy_guard.write_allowed(regclass)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_write_allowed'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard.write_allowed(regclass) IS 'Policy check for written rows: rules 1-4';

/*
 * The permissive half of a protected table's policies is the constant
 * 'true'::privacy_guard.base_policy.  The planner folds it away (no cost per
 * row or per plan), yet the policy depends on the extension through the
 * type: DROP EXTENSION ... CASCADE removes it, and the table fails closed.
 */
CREATE DOMAIN privacy_guard.base_policy AS boolean;
COMMENT ON DOMAIN privacy_guard.base_policy IS 'The permissive base policy of a table without row-level security of its own';

CREATE FUNCTION privacy_guard._calling_role()
RETURNS regrole
AS 'MODULE_PATHNAME', 'pvg_calling_role'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._calling_role() IS 'Internal: the role the session acts as (SET ROLE), even inside SECURITY DEFINER functions';

CREATE FUNCTION privacy_guard._check_table_owner(tbl regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_caller regrole := privacy_guard._calling_role();
BEGIN
	IF NOT pg_has_role(v_caller, (SELECT c.relowner FROM pg_class c WHERE c.oid = tbl), 'USAGE') THEN
		RAISE EXCEPTION 'must be owner of table % to change its protection', tbl
			USING ERRCODE = '42501';
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._check_table_owner(regclass) IS 'Internal: the calling role must own the table (as ALTER TABLE requires)';

CREATE FUNCTION privacy_guard._guard_suspend(boolean)
RETURNS void
AS 'MODULE_PATHNAME', 'pvg_guard_suspend'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._guard_suspend(boolean) IS 'Internal: let privacy_guard''s own functions change protected tables'' policies';

CREATE FUNCTION privacy_guard._guard_suspended()
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_guard_suspended'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._guard_suspended() IS 'Internal: whether privacy_guard itself is changing policies';

/* ------------------------------------------------------------------ */
/* Purposes and roles                                                   */
/* ------------------------------------------------------------------ */

CREATE FUNCTION privacy_guard.define_purpose(name text, legal_basis text DEFAULT 'consent',
											 description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_parent text;
BEGIN
	IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62})*$' THEN
		RAISE EXCEPTION 'invalid purpose name'
			USING ERRCODE = '22023',
				  DETAIL = 'A purpose name is lower-case words of letters, digits and underscores, joined by dots.';
	END IF;
	IF legal_basis IS NULL OR legal_basis <> ALL (ARRAY['consent', 'contract', 'legal_obligation',
			'vital_interests', 'public_task', 'legitimate_interests']) THEN
		RAISE EXCEPTION 'invalid legal basis "%"', legal_basis
			USING ERRCODE = '22023',
				  HINT = 'Use consent, contract, legal_obligation, vital_interests, public_task or legitimate_interests.';
	END IF;
	IF position('.' IN name) > 0 THEN
		v_parent := regexp_replace(name, '\.[^.]*$', '');
		IF NOT EXISTS (SELECT 1 FROM privacy_guard.purpose p WHERE p.name = v_parent) THEN
			RAISE EXCEPTION 'parent purpose "%" does not exist', v_parent
				USING ERRCODE = '22023',
					  HINT = 'Define the parent purpose first.';
		END IF;
	END IF;
	INSERT INTO privacy_guard.purpose AS p (name, parent, legal_basis, description)
	VALUES (define_purpose.name, v_parent, define_purpose.legal_basis, define_purpose.description)
	ON CONFLICT ON CONSTRAINT purpose_pkey DO UPDATE
		SET legal_basis = excluded.legal_basis, description = excluded.description;
END
$$;
COMMENT ON FUNCTION privacy_guard.define_purpose(text, text, text) IS 'Create or update a purpose of processing';

CREATE FUNCTION privacy_guard.drop_purpose(name text)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_user text;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM privacy_guard.purpose p WHERE p.name = drop_purpose.name) THEN
		RAISE EXCEPTION 'purpose "%" does not exist', name USING ERRCODE = '22023';
	END IF;
	SELECT 'child purpose ' || quote_literal(p.name) INTO v_user
	  FROM privacy_guard.purpose p WHERE p.parent = drop_purpose.name LIMIT 1;
	IF v_user IS NULL THEN
		SELECT 'table ' || t.relid::text INTO v_user
		  FROM privacy_guard.protected_table t WHERE drop_purpose.name = ANY (t.purposes) LIMIT 1;
	END IF;
	IF v_user IS NULL THEN
		SELECT 'role ' || quote_ident(r.role::text) INTO v_user
		  FROM privacy_guard.purpose_role r WHERE r.purpose = drop_purpose.name LIMIT 1;
	END IF;
	IF v_user IS NULL AND EXISTS (SELECT 1 FROM privacy_guard.consent_state c
								   WHERE c.purpose = drop_purpose.name) THEN
		v_user := 'recorded consent';
	END IF;
	IF v_user IS NOT NULL THEN
		RAISE EXCEPTION 'cannot drop purpose "%" because % uses it', name, v_user
			USING ERRCODE = '2BP01';
	END IF;
	DELETE FROM privacy_guard.purpose p WHERE p.name = drop_purpose.name;
END
$$;
COMMENT ON FUNCTION privacy_guard.drop_purpose(text) IS 'Remove a purpose that nothing uses';

CREATE FUNCTION privacy_guard._check_purpose(purpose text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_basis text;
BEGIN
	SELECT p.legal_basis INTO v_basis FROM privacy_guard.purpose p WHERE p.name = purpose;
	IF v_basis IS NULL THEN
		RAISE EXCEPTION 'unknown privacy_guard purpose "%"', purpose
			USING ERRCODE = '22023',
				  HINT = 'See privacy_guard.purposes for the defined purposes.';
	END IF;
	RETURN v_basis;
END
$$;
COMMENT ON FUNCTION privacy_guard._check_purpose(text) IS 'Internal: legal basis of a purpose, or error 22023';

CREATE FUNCTION privacy_guard.allow_purpose(role regrole, purpose text)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM privacy_guard._check_purpose(purpose);
	INSERT INTO privacy_guard.purpose_role (role, purpose)
	VALUES (allow_purpose.role, allow_purpose.purpose)
	ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION privacy_guard.allow_purpose(regrole, text) IS 'Authorise a role (and its members) for a purpose and its children';

CREATE FUNCTION privacy_guard.disallow_purpose(role regrole, purpose text)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM privacy_guard._check_purpose(purpose);
	DELETE FROM privacy_guard.purpose_role r
	 WHERE r.role = disallow_purpose.role AND r.purpose = disallow_purpose.purpose;
END
$$;
COMMENT ON FUNCTION privacy_guard.disallow_purpose(regrole, text) IS 'Withdraw a role''s authorisation for a purpose';

CREATE VIEW privacy_guard.purposes AS
	SELECT p.name, p.parent, p.legal_basis, p.description
	  FROM privacy_guard.purpose p;
COMMENT ON VIEW privacy_guard.purposes IS 'Defined purposes of processing';

CREATE VIEW privacy_guard.purpose_roles AS
	SELECT r.role, r.purpose
	  FROM privacy_guard.purpose_role r;
COMMENT ON VIEW privacy_guard.purpose_roles IS 'Which roles are authorised for which purposes';

/* ------------------------------------------------------------------ */
/* Consent                                                              */
/* ------------------------------------------------------------------ */

CREATE FUNCTION privacy_guard._check_subject(subject text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF subject IS NULL OR subject = '' THEN
		RAISE EXCEPTION 'subject must not be null or empty' USING ERRCODE = '22023';
	END IF;
	IF octet_length(subject) > 1024 THEN
		RAISE EXCEPTION 'subject key is longer than 1024 bytes' USING ERRCODE = '54000';
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._check_subject(text) IS 'Internal: validate a subject key without echoing it';

/* One entry in the ledger and the new current state: both or neither. */
CREATE FUNCTION privacy_guard._record_consent(p_subject text, p_purpose text, p_status text,
											  p_valid_until timestamptz, p_evidence jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO privacy_guard.consent_ledger (subject, purpose, action, valid_until, evidence)
	VALUES (p_subject, p_purpose,
			CASE p_status WHEN 'granted' THEN 'grant' WHEN 'withdrawn' THEN 'withdraw' ELSE 'object' END,
			p_valid_until, p_evidence);
	INSERT INTO privacy_guard.consent_state AS c (subject, purpose, status, valid_until)
	VALUES (p_subject, p_purpose, p_status, p_valid_until)
	ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE
		SET status = excluded.status, valid_until = excluded.valid_until, changed_at = now();
END
$$;
COMMENT ON FUNCTION privacy_guard._record_consent(text, text, text, timestamptz, jsonb) IS 'Internal: append to the consent ledger and set the current state';

/* A purpose and its ancestors, nearest first. */
CREATE FUNCTION privacy_guard._purpose_chain(purpose text)
RETURNS SETOF text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE chain(name) AS (
		SELECT $1
		UNION ALL
		SELECT p.parent FROM privacy_guard.purpose p JOIN chain ON p.name = chain.name
		 WHERE p.parent IS NOT NULL)
	SELECT chain.name FROM chain
$$;
COMMENT ON FUNCTION privacy_guard._purpose_chain(text) IS 'Internal: a purpose and its ancestors';

CREATE FUNCTION privacy_guard.grant_consent(subject text, purpose text,
											valid_until timestamptz DEFAULT NULL,
											evidence jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_basis text;
BEGIN
	PERFORM privacy_guard._check_subject(subject);
	v_basis := privacy_guard._check_purpose(purpose);
	IF v_basis <> 'consent' THEN
		RAISE EXCEPTION 'purpose "%" rests on %, not on consent', purpose, v_basis
			USING ERRCODE = '22023';
	END IF;
	IF valid_until IS NOT NULL AND valid_until <= now() THEN
		RAISE EXCEPTION 'valid_until must lie in the future' USING ERRCODE = '22023';
	END IF;
	PERFORM privacy_guard._record_consent(subject, purpose, 'granted', valid_until, evidence);
END
$$;
COMMENT ON FUNCTION privacy_guard.grant_consent(text, text, timestamptz, jsonb) IS 'Record a subject''s consent to a purpose';

CREATE FUNCTION privacy_guard.withdraw_consent(subject text, purpose text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_basis text;
BEGIN
	PERFORM privacy_guard._check_subject(subject);
	v_basis := privacy_guard._check_purpose(purpose);
	IF v_basis <> 'consent' THEN
		RAISE EXCEPTION 'purpose "%" rests on %, not on consent', purpose, v_basis
			USING ERRCODE = '22023',
				  HINT = 'Use privacy_guard.object_to() for legitimate_interests and public_task purposes.';
	END IF;
	PERFORM privacy_guard._record_consent(subject, purpose, 'withdrawn', NULL, NULL);
END
$$;
COMMENT ON FUNCTION privacy_guard.withdraw_consent(text, text) IS 'Record the withdrawal of a subject''s consent';

CREATE FUNCTION privacy_guard.object_to(subject text, purpose text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_basis text;
BEGIN
	PERFORM privacy_guard._check_subject(subject);
	v_basis := privacy_guard._check_purpose(purpose);
	IF v_basis NOT IN ('legitimate_interests', 'public_task') THEN
		RAISE EXCEPTION 'purpose "%" rests on %; an objection applies only to legitimate_interests and public_task purposes',
			purpose, v_basis
			USING ERRCODE = '22023';
	END IF;
	PERFORM privacy_guard._record_consent(subject, purpose, 'objected', NULL, NULL);
END
$$;
COMMENT ON FUNCTION privacy_guard.object_to(text, text) IS 'Record a subject''s objection (GDPR Art. 21)';

CREATE FUNCTION privacy_guard.has_consent(subject text, purpose text)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_basis text;
BEGIN
	IF subject IS NULL OR purpose IS NULL THEN
		RETURN NULL;
	END IF;
	v_basis := privacy_guard._check_purpose(purpose);
	IF v_basis = 'consent' THEN
		RETURN EXISTS (
			SELECT 1 FROM privacy_guard.consent_state c
			 WHERE c.subject = has_consent.subject
			   AND c.purpose IN (SELECT privacy_guard._purpose_chain(has_consent.purpose))
			   AND c.status = 'granted'
			   AND (c.valid_until IS NULL OR c.valid_until > now()));
	ELSIF v_basis IN ('legitimate_interests', 'public_task') THEN
		RETURN NOT EXISTS (
			SELECT 1 FROM privacy_guard.consent_state c
			 WHERE c.subject = has_consent.subject
			   AND c.purpose IN (SELECT privacy_guard._purpose_chain(has_consent.purpose))
			   AND c.status = 'objected');
	END IF;
	RETURN true;
END
$$;
COMMENT ON FUNCTION privacy_guard.has_consent(text, text) IS 'Whether consent/objection rules let this subject''s data be used for the purpose';

CREATE VIEW privacy_guard.consents AS
	SELECT c.subject, c.purpose, c.status, c.valid_until, c.changed_at,
		   (c.status OPERATOR(pg_catalog.=) 'granted'
			AND (c.valid_until IS NULL OR c.valid_until OPERATOR(pg_catalog.>) pg_catalog.now())) AS active
	  FROM privacy_guard.consent_state c;
COMMENT ON VIEW privacy_guard.consents IS 'Current consent and objection state per subject and purpose';

/* The ledger only grows: history is evidence. */
CREATE FUNCTION privacy_guard._ledger_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* the one change allowed: an erased subject's key replaced by its digest */
	IF TG_OP = 'UPDATE'
	   AND NEW.subject = privacy_guard._subject_digest(OLD.subject)
	   AND (NEW.id, NEW.purpose, NEW.action, NEW.valid_until, NEW.evidence, NEW.recorded_at,
			NEW.recorded_by)
		   IS NOT DISTINCT FROM
		   (OLD.id, OLD.purpose, OLD.action, OLD.valid_until, OLD.evidence, OLD.recorded_at,
			OLD.recorded_by) THEN
		RETURN NEW;
	END IF;
	RAISE EXCEPTION 'privacy_guard.consent_ledger is append-only'
		USING ERRCODE = '55000';
END
$$;
COMMENT ON FUNCTION privacy_guard._ledger_append_only() IS 'Internal: refuse changes to the consent ledger';

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON privacy_guard.consent_ledger
	FOR EACH ROW EXECUTE FUNCTION privacy_guard._ledger_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON privacy_guard.consent_ledger
	FOR EACH STATEMENT EXECUTE FUNCTION privacy_guard._ledger_append_only();

/* ------------------------------------------------------------------ */
/* Protected tables                                                     */
/* ------------------------------------------------------------------ */

CREATE FUNCTION privacy_guard._drop_policies(target regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_name name;
BEGIN
	FOR v_name IN
		SELECT p.polname FROM pg_policy p
		 WHERE p.polrelid = target AND p.polname IN ('privacy_guard_rules', 'privacy_guard_base')
	LOOP
		EXECUTE format('DROP POLICY %I ON %s', v_name, target);
	END LOOP;
END
$$;
COMMENT ON FUNCTION privacy_guard._drop_policies(regclass) IS 'Internal: drop privacy_guard policies from one table';

/*
 * Whether a table still carries the policy protect() installs for its
 * registered table: 'intact', 'missing' or 'tampered'.  Judged by structure
 * and by OIDs looked up now, so renames and restores (new OIDs) keep it.
 */
CREATE FUNCTION privacy_guard._policy_state(target regclass, root regclass,
											subject_column name, retention_column name)
RETURNS text
AS 'MODULE_PATHNAME', 'pvg_policy_state'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._policy_state(regclass, regclass, name, name) IS 'Internal: intact, missing or tampered';

/*
 * Install the two policies on one table (the registered table or one of
 * its partitions or inheritance children).  The policy expressions always
 * name the registered table, whose rules apply.
 */
CREATE FUNCTION privacy_guard._install_policies(target regclass, root regclass,
												subject_column name, retention_column name,
												with_base boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_qual text;
BEGIN
	IF retention_column IS NULL THEN
		v_qual := format('privacy_guard.row_visible(%L::regclass, %I)', root::oid, subject_column);
	ELSE
		v_qual := format('privacy_guard.row_visible(%L::regclass, %I, %I)', root::oid,
						 subject_column, retention_column);
	END IF;
	PERFORM privacy_guard._drop_policies(target);
	EXECUTE format('CREATE POLICY privacy_guard_rules ON %s AS RESTRICTIVE FOR ALL TO PUBLIC '
				   'USING (%s) WITH CHECK (privacy_guard.write_allowed(%L::regclass))',
				   target, v_qual, root::oid);
	IF with_base THEN
		EXECUTE format('CREATE POLICY privacy_guard_base ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
					   'USING (''true''::privacy_guard.base_policy) WITH CHECK (''true''::privacy_guard.base_policy)',
					   target);
	END IF;
	EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', target);
	INSERT INTO privacy_guard.protected_part AS p (target, root)
	VALUES (target, root)
	ON CONFLICT ON CONSTRAINT protected_part_pkey DO UPDATE SET root = excluded.root;
END
$$;
COMMENT ON FUNCTION privacy_guard._install_policies(regclass, regclass, name, name, boolean) IS 'Internal: install privacy_guard policies on one table';

/* A table and its partitions and inheritance children. */
CREATE FUNCTION privacy_guard._tree_oids(tbl regclass)
RETURNS SETOF oid
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE tree(relid) AS (
		SELECT $1::oid
		UNION
		SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.relid)
	SELECT tree.relid FROM tree
$$;
COMMENT ON FUNCTION privacy_guard._tree_oids(regclass) IS 'Internal: a table with its descendants';

/* The type a domain is over, or the type itself. */
CREATE FUNCTION privacy_guard._base_type(typ regtype)
RETURNS regtype
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT (CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END)::regtype
	  FROM pg_type t WHERE t.oid = $1
$$;
COMMENT ON FUNCTION privacy_guard._base_type(regtype) IS 'Internal: the base type of a domain, or the type itself';

CREATE FUNCTION privacy_guard._column_type(tbl regclass, col name, what text)
RETURNS regtype
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_type regtype;
BEGIN
	SELECT a.atttypid INTO v_type FROM pg_attribute a
	 WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
	IF v_type IS NULL THEN
		RAISE EXCEPTION '% column "%" does not exist in table %', what, col, tbl
			USING ERRCODE = '42703';
	END IF;
	RETURN v_type;
END
$$;
COMMENT ON FUNCTION privacy_guard._column_type(regclass, name, text) IS 'Internal: type of a column, or error 42703';

CREATE FUNCTION privacy_guard.protect(tbl regclass, subject_column name, purposes text[],
									  retention interval DEFAULT NULL,
									  retention_column name DEFAULT NULL,
									  on_expiry text DEFAULT 'delete',
									  on_forget text DEFAULT 'delete')
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_kind "char";
	v_owner_rls boolean;
	v_owner_force boolean;
	v_child regclass;
	v_purpose text;
	v_rettype regtype;
	v_basetype regtype;
	v_notnull boolean;
	v_pk boolean;
BEGIN
	IF tbl IS NULL OR subject_column IS NULL OR purposes IS NULL THEN
		RAISE EXCEPTION 'table, subject column and purposes are required' USING ERRCODE = '22004';
	END IF;
	SELECT c.relkind INTO v_kind FROM pg_class c WHERE c.oid = tbl;
	IF v_kind NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = '42809';
	END IF;
	PERFORM privacy_guard._check_table_owner(tbl);
	IF (SELECT c.relnamespace FROM pg_class c WHERE c.oid = tbl) = 'privacy_guard'::regnamespace THEN
		RAISE EXCEPTION 'privacy_guard''s own tables cannot be protected' USING ERRCODE = '42501';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_inherits i JOIN privacy_guard.protected_part p ON p.target = i.inhparent
				WHERE i.inhrelid = tbl) THEN
		RAISE EXCEPTION 'table % inherits from a protected table and is already held to its rules', tbl
			USING ERRCODE = '55000';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = tbl) THEN
		RAISE EXCEPTION 'table % is a partition or inheritance child', tbl
			USING ERRCODE = '55000',
				  DETAIL = 'Queries on its parent would not apply its rules.',
				  HINT = 'Protect the topmost parent: its partitions and children are held to its rules.';
	END IF;
	IF cardinality(purposes) IS NULL OR cardinality(purposes) = 0 THEN
		RAISE EXCEPTION 'a protected table needs at least one purpose' USING ERRCODE = '22023';
	END IF;
	FOREACH v_purpose IN ARRAY purposes LOOP
		PERFORM privacy_guard._check_purpose(v_purpose);
	END LOOP;
	/*
	 * The subject key is matched against the column's text form; only types
	 * whose text form depends on no setting (DateStyle, bytea_output, ...)
	 * and has one spelling per value are accepted.
	 */
	v_rettype := privacy_guard._column_type(tbl, subject_column, 'subject');
	v_basetype := privacy_guard._base_type(v_rettype);
	IF v_basetype NOT IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'text'::regtype,
						  'varchar'::regtype, 'uuid'::regtype) THEN
		RAISE EXCEPTION 'subject column "%" is of type %, which cannot hold subject keys', subject_column, v_rettype
			USING ERRCODE = '42804',
				  DETAIL = 'Subject keys are matched against the column''s text form, which must not depend on settings.',
				  HINT = 'Use a smallint, integer, bigint, text, varchar or uuid column.';
	END IF;
	IF retention IS NOT NULL AND retention_column IS NULL THEN
		RAISE EXCEPTION 'a retention period needs a retention_column to count from' USING ERRCODE = '22023';
	END IF;
	IF retention IS NOT NULL AND retention <= interval '0' THEN
		RAISE EXCEPTION 'retention must be a positive interval' USING ERRCODE = '22023';
	END IF;
	IF retention_column IS NOT NULL THEN
		v_rettype := privacy_guard._column_type(tbl, retention_column, 'retention');
		IF v_rettype NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
			RAISE EXCEPTION 'retention column "%" is of type %, not a date or timestamp',
				retention_column, v_rettype USING ERRCODE = '42804';
		END IF;
	END IF;
	IF on_expiry IS NULL OR on_expiry NOT IN ('delete', 'anonymize') THEN
		RAISE EXCEPTION 'on_expiry must be delete or anonymize' USING ERRCODE = '22023';
	END IF;
	IF on_forget IS NULL OR on_forget NOT IN ('delete', 'anonymize') THEN
		RAISE EXCEPTION 'on_forget must be delete or anonymize' USING ERRCODE = '22023';
	END IF;
	IF 'anonymize' IN (on_expiry, on_forget) THEN
		/* anonymising cuts the link to the person: the subject column becomes NULL */
		SELECT a.attnotnull INTO v_notnull FROM pg_attribute a
		 WHERE a.attrelid = tbl AND a.attname = subject_column;
		SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a
						 ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
						WHERE i.indrelid = tbl AND i.indisprimary AND a.attname = subject_column)
		  INTO v_pk;
		IF v_pk THEN
			RAISE EXCEPTION 'cannot anonymize rows of %: subject column "%" is part of the primary key',
				tbl, subject_column
				USING ERRCODE = '55000',
					  DETAIL = 'Anonymising a row sets its subject column to NULL to cut the link to the person.',
					  HINT = 'Use ''delete'', or keep the subject in a column outside the primary key.';
		END IF;
		IF v_notnull THEN
			RAISE EXCEPTION 'cannot anonymize rows of %: subject column "%" is NOT NULL',
				tbl, subject_column
				USING ERRCODE = '55000',
					  DETAIL = 'Anonymising a row sets its subject column to NULL to cut the link to the person.',
					  HINT = 'Use ''delete'', or drop the NOT NULL constraint.';
		END IF;
	END IF;

	/* a table that had row-level security of its own keeps its permissive policies in charge */
	SELECT t.owner_rls, t.owner_force INTO v_owner_rls, v_owner_force
	  FROM privacy_guard.protected_table t WHERE t.relid = tbl;
	IF v_owner_rls IS NULL THEN
		SELECT c.relrowsecurity, c.relforcerowsecurity INTO v_owner_rls, v_owner_force
		  FROM pg_class c WHERE c.oid = tbl;
	END IF;

	INSERT INTO privacy_guard.protected_table AS t
		(relid, subject_column, purposes, retention, retention_column, on_expiry, on_forget,
		 owner_rls, owner_force)
	VALUES (tbl, subject_column, purposes, retention, retention_column, on_expiry, on_forget,
			v_owner_rls, v_owner_force)
	ON CONFLICT ON CONSTRAINT protected_table_pkey DO UPDATE
		SET subject_column = excluded.subject_column, purposes = excluded.purposes,
			retention = excluded.retention, retention_column = excluded.retention_column,
			on_expiry = excluded.on_expiry, on_forget = excluded.on_forget;

	PERFORM privacy_guard._guard_suspend(true);
	PERFORM privacy_guard._install_policies(tbl, tbl, subject_column, retention_column, NOT v_owner_rls);
	FOR v_child IN
		SELECT x::regclass FROM privacy_guard._tree_oids(tbl) AS x WHERE x <> tbl::oid
	LOOP
		PERFORM privacy_guard._install_policies(v_child, tbl, subject_column, retention_column,
												NOT v_owner_rls);
	END LOOP;
	PERFORM privacy_guard._guard_suspend(false);
	PERFORM privacy_guard._install_default_tag(tbl, true);
END
$$;
COMMENT ON FUNCTION privacy_guard.protect(regclass, name, text[], interval, name, text, text) IS 'Register a table and hold every statement on it to the purpose rules';

CREATE FUNCTION privacy_guard._remove_policies(target regclass, owner_rls boolean,
											   owner_force boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM privacy_guard._drop_policies(target);
	IF NOT owner_rls THEN
		EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', target);
	END IF;
	IF NOT owner_force THEN
		EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', target);
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._remove_policies(regclass, boolean, boolean) IS 'Internal: remove privacy_guard policies from one table';

CREATE FUNCTION privacy_guard.unprotect(tbl regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_owner_rls boolean;
	v_owner_force boolean;
	v_part regclass;
BEGIN
	SELECT t.owner_rls, t.owner_force INTO v_owner_rls, v_owner_force
	  FROM privacy_guard.protected_table t WHERE t.relid = tbl;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table % is not protected', tbl USING ERRCODE = '55000';
	END IF;
	PERFORM privacy_guard._check_table_owner(tbl);
	/* the table itself, its partitions and children, and any since detached */
	PERFORM privacy_guard._guard_suspend(true);
	FOR v_part IN
		DELETE FROM privacy_guard.protected_part p WHERE p.root = tbl RETURNING p.target
	LOOP
		PERFORM privacy_guard._remove_policies(v_part, v_owner_rls, v_owner_force);
	END LOOP;
	PERFORM privacy_guard._guard_suspend(false);
	PERFORM privacy_guard._install_default_tag(tbl, false);
	DELETE FROM privacy_guard.protected_table t WHERE t.relid = tbl;
END
$$;
COMMENT ON FUNCTION privacy_guard.unprotect(regclass) IS 'Remove a table''s registration and the policies it installed';

CREATE VIEW privacy_guard.protected_tables AS
	SELECT t.relid AS table_name, t.subject_column, t.purposes, t.retention, t.retention_column,
		   t.on_expiry, t.on_forget, t.protected_at
	  FROM privacy_guard.protected_table t;
COMMENT ON VIEW privacy_guard.protected_tables IS 'Tables registered with privacy_guard';

/* ------------------------------------------------------------------ */
/* DDL guard: nobody but privacy_guard changes a protected table's RLS  */
/* ------------------------------------------------------------------ */

/* every protected table and its partitions and inheritance children */
CREATE FUNCTION privacy_guard._protected_tree()
RETURNS TABLE (target regclass, root regclass)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT x::regclass, t.relid
	  FROM privacy_guard.protected_table t, privacy_guard._tree_oids(t.relid) AS x
$$;
COMMENT ON FUNCTION privacy_guard._protected_tree() IS 'Internal: protected tables with their descendants';

CREATE FUNCTION privacy_guard._on_ddl_command_end()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
	v_bad regclass;
BEGIN
	IF privacy_guard._guard_suspended()
	   OR NOT EXISTS (SELECT 1 FROM privacy_guard.protected_table) THEN
		RETURN;
	END IF;

	/* the registration names the subject and retention columns */
	SELECT t.relid INTO v_bad
	  FROM privacy_guard.protected_table t
	 WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
						WHERE a.attrelid = t.relid AND a.attname = t.subject_column
						  AND NOT a.attisdropped)
		OR (t.retention_column IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM pg_attribute a
							 WHERE a.attrelid = t.relid AND a.attname = t.retention_column
							   AND NOT a.attisdropped))
	 LIMIT 1;
	IF v_bad IS NOT NULL THEN
		RAISE EXCEPTION 'cannot rename the subject or retention column of protected table %', v_bad
			USING ERRCODE = '55000',
				  HINT = 'Unprotect the table, rename the column, then protect the table again.';
	END IF;

	/*
	 * A partition or child created or attached under a protected table is
	 * held to its rules at once (once that table's own policy is in place:
	 * during a restore, pg_restore brings the policies itself).
	 */
	IF TG_TAG IN ('CREATE TABLE', 'CREATE FOREIGN TABLE', 'ALTER TABLE', 'ALTER FOREIGN TABLE') THEN
		PERFORM privacy_guard._guard_suspend(true);
		FOR r IN
			SELECT tr.target, tr.root, t.subject_column, t.retention_column, t.owner_rls
			  FROM privacy_guard._protected_tree() tr
			  JOIN privacy_guard.protected_table t ON t.relid = tr.root
			 WHERE tr.target <> tr.root
			   AND NOT EXISTS (SELECT 1 FROM privacy_guard.protected_part q WHERE q.target = tr.target)
			   AND privacy_guard._policy_state(tr.root, tr.root, t.subject_column,
											   t.retention_column) = 'intact'
		LOOP
			PERFORM privacy_guard._install_policies(r.target, r.root, r.subject_column,
													r.retention_column, NOT r.owner_rls);
		END LOOP;
		PERFORM privacy_guard._guard_suspend(false);
	END IF;

	/*
	 * A table carrying the rules may only have parents that carry the same
	 * rules: querying a parent applies the parent's policies alone, so an
	 * unprotected (or differently protected) parent would show its rows.
	 */
	SELECT p.target INTO v_bad
	  FROM privacy_guard.protected_part p
	  JOIN pg_inherits i ON i.inhrelid = p.target
	 WHERE NOT EXISTS (SELECT 1 FROM privacy_guard.protected_part q
						WHERE q.target = i.inhparent AND q.root = p.root)
	 LIMIT 1;
	IF v_bad IS NOT NULL THEN
		RAISE EXCEPTION 'table % is protected by privacy_guard and cannot become a child of a table with other rules', v_bad
			USING ERRCODE = '42501',
				  DETAIL = 'Queries on the parent would not apply its rules.';
	END IF;

	/*
	 * Nothing may weaken the rules where they apply: on registered tables,
	 * their partitions and children, and those detached since.  A policy
	 * that is missing altogether is a table being restored, unless this very
	 * command dropped or renamed it.
	 */
	SELECT x.target INTO v_bad
	  FROM (SELECT p.target, p.root FROM privacy_guard.protected_part p
			UNION
			SELECT tr.target, tr.root FROM privacy_guard._protected_tree() tr) x
	  JOIN privacy_guard.protected_table t ON t.relid = x.root
	  CROSS JOIN LATERAL privacy_guard._policy_state(x.target, x.root, t.subject_column,
													 t.retention_column) AS st(state)
	 WHERE st.state = 'tampered'
		OR (st.state = 'missing' AND TG_TAG IN ('DROP POLICY', 'ALTER POLICY'))
	 LIMIT 1;
	IF v_bad IS NOT NULL THEN
		RAISE EXCEPTION 'table % is protected by privacy_guard', v_bad
			USING ERRCODE = '42501',
				  DETAIL = 'The command would remove or change the row-level security that enforces its purpose rules.',
				  HINT = 'An administrator can run privacy_guard.unprotect() first.';
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._on_ddl_command_end() IS 'Internal: protect new partitions and children; refuse DDL that weakens a protected table';

CREATE FUNCTION privacy_guard._on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_orphan regclass;
BEGIN
	/*
	 * A registered table may not go while tables carrying its rules (parts
	 * detached from it) stay: their policies depend on it and would be
	 * dropped with it, leaving their rows unprotected.
	 */
	SELECT p.target INTO v_orphan
	  FROM privacy_guard.protected_part p
	  JOIN pg_event_trigger_dropped_objects() o
		ON o.classid = 'pg_class'::regclass AND o.objsubid = 0 AND o.objid = p.root::oid
	 WHERE NOT EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() d
						WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0
						  AND d.objid = p.target::oid)
	 LIMIT 1;
	IF v_orphan IS NOT NULL THEN
		RAISE EXCEPTION 'cannot drop a protected table while % still carries its rules', v_orphan
			USING ERRCODE = '2BP01',
				  HINT = 'Drop that table too, or run privacy_guard.unprotect() first.';
	END IF;

	/* a dropped table takes its registration with it */
	DELETE FROM privacy_guard.protected_part p
	 USING pg_event_trigger_dropped_objects() o
	 WHERE o.classid = 'pg_class'::regclass AND o.objsubid = 0
	   AND (o.objid = p.target::oid OR o.objid = p.root::oid);
	DELETE FROM privacy_guard.protected_table t
	 USING pg_event_trigger_dropped_objects() o
	 WHERE o.classid = 'pg_class'::regclass AND o.objsubid = 0 AND o.objid = t.relid::oid;
END
$$;
COMMENT ON FUNCTION privacy_guard._on_sql_drop() IS 'Internal: forget the registration of a dropped table';

CREATE EVENT TRIGGER privacy_guard_ddl_guard ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE', 'ALTER POLICY', 'DROP POLICY', 'CREATE TABLE', 'CREATE POLICY',
				 'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE')
	EXECUTE FUNCTION privacy_guard._on_ddl_command_end();
CREATE EVENT TRIGGER privacy_guard_drop_guard ON sql_drop
	EXECUTE FUNCTION privacy_guard._on_sql_drop();

/* ------------------------------------------------------------------ */
/* Forgetting                                                           */
/* ------------------------------------------------------------------ */

CREATE FUNCTION privacy_guard._subject_digest(subject text)
RETURNS text
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_key bytea;
BEGIN
	SELECT s.key INTO v_key FROM privacy_guard.secret s;
	IF v_key IS NULL THEN
		INSERT INTO privacy_guard.secret (key) VALUES (privacy_guard._random_bytes(32))
		ON CONFLICT DO NOTHING;
		SELECT s.key INTO v_key FROM privacy_guard.secret s;
	END IF;
	RETURN privacy_guard._hmac(v_key, $1);
END
$$;
COMMENT ON FUNCTION privacy_guard._subject_digest(text) IS 'Internal: keyed digest of a subject key';

CREATE FUNCTION privacy_guard.forget(subject text, reason text DEFAULT NULL,
									 due timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_id bigint;
BEGIN
	PERFORM privacy_guard._check_subject(subject);
	IF due IS NULL THEN
		RAISE EXCEPTION 'due must not be null' USING ERRCODE = '22004';
	END IF;
	INSERT INTO privacy_guard.erasure_request (subject, subject_digest, reason, due)
	VALUES (forget.subject, privacy_guard._subject_digest(forget.subject), forget.reason, forget.due)
	RETURNING id INTO v_id;
	RETURN v_id;
END
$$;
COMMENT ON FUNCTION privacy_guard.forget(text, text, timestamptz) IS 'File an erasure request; the subject''s data is hidden from its due time';

CREATE FUNCTION privacy_guard.erasure_status(subject text)
RETURNS text
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_digest text := privacy_guard._subject_digest($1);
BEGIN
	RETURN (SELECT r.state FROM privacy_guard.erasure_request r
			 WHERE r.subject_digest = v_digest
			 ORDER BY r.id DESC LIMIT 1);
END
$$;
COMMENT ON FUNCTION privacy_guard.erasure_status(text) IS 'State of the subject''s latest erasure request, or NULL';

CREATE VIEW privacy_guard.erasure_requests AS
	SELECT r.id, r.subject_digest, r.reason, r.requested_at, r.due, r.completed_at, r.state,
		   r.counts, r.error, r.unreachable_at
	  FROM privacy_guard.erasure_request r;
COMMENT ON VIEW privacy_guard.erasure_requests IS 'Erasure requests and receipts; subjects appear only as keyed digests';

/* ------------------------------------------------------------------ */
/* Enforcement: anonymisers and the erasure engine                       */
/* ------------------------------------------------------------------ */

CREATE FUNCTION privacy_guard._exec_as_owner(tbl regclass, sql text, key text, secret bytea)
RETURNS bigint
AS 'MODULE_PATHNAME', 'pvg_exec_as_owner'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._exec_as_owner(regclass, text, text, bytea) IS 'Internal: run an engine statement with the table owner''s rights';

CREATE FUNCTION privacy_guard._secret()
RETURNS bytea
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM privacy_guard._subject_digest('');	/* makes the key on first use */
	RETURN (SELECT s.key FROM privacy_guard.secret s);
END
$$;
COMMENT ON FUNCTION privacy_guard._secret() IS 'Internal: the per-database digest key';

CREATE FUNCTION privacy_guard.set_anonymizer(tbl regclass, col name, method text)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_type regtype;
	v_base regtype;
	v_fn regprocedure;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM privacy_guard.protected_table t WHERE t.relid = tbl) THEN
		RAISE EXCEPTION 'table % is not protected', tbl USING ERRCODE = '55000';
	END IF;
	PERFORM privacy_guard._check_table_owner(tbl);
	v_type := privacy_guard._column_type(tbl, col, 'anonymized');
	v_base := privacy_guard._base_type(v_type);
	IF method IN ('hash', 'mask') AND v_base NOT IN ('text'::regtype, 'varchar'::regtype) THEN
		RAISE EXCEPTION 'anonymizer % needs a text column; "%" is of type %', method, col, v_type
			USING ERRCODE = '42804';
	ELSIF method = 'generalize' AND v_base NOT IN ('date'::regtype, 'timestamp'::regtype,
			'timestamptz'::regtype, 'int2'::regtype, 'int4'::regtype, 'int8'::regtype,
			'numeric'::regtype, 'float4'::regtype, 'float8'::regtype) THEN
		RAISE EXCEPTION 'anonymizer generalize needs a date, timestamp or number column; "%" is of type %',
			col, v_type
			USING ERRCODE = '42804';
	ELSIF method NOT IN ('null', 'redact', 'hash', 'mask', 'generalize') THEN
		IF position('.' IN method) = 0 THEN
			RAISE EXCEPTION 'unknown anonymizer "%"', method
				USING ERRCODE = '22023',
					  HINT = 'Use null, redact, hash, mask, generalize or a schema-qualified function name.';
		END IF;
		v_fn := to_regprocedure(format('%s(%s)', method, v_type));
		IF v_fn IS NULL OR (SELECT p.prorettype FROM pg_proc p WHERE p.oid = v_fn) <> v_type THEN
			RAISE EXCEPTION 'anonymizer function %(%) returning % does not exist', method, v_type, v_type
				USING ERRCODE = '42883';
		END IF;
	END IF;
	INSERT INTO privacy_guard.anonymizer AS a (relid, column_name, method, fn)
	VALUES (tbl, col, CASE WHEN v_fn IS NULL THEN method ELSE 'function' END, v_fn)
	ON CONFLICT ON CONSTRAINT anonymizer_pkey DO UPDATE
		SET method = excluded.method, fn = excluded.fn;
END
$$;
COMMENT ON FUNCTION privacy_guard.set_anonymizer(regclass, name, text) IS 'Choose how anonymisation treats a column';

/* The SET list that anonymises a row of a table: its anonymizers, and the subject cut. */
CREATE FUNCTION privacy_guard._anonymize_set(tbl regclass)
RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	WITH cols AS (
		SELECT t.subject_column AS col, coalesce(a.method, 'null') AS method, a.fn
		  FROM privacy_guard.protected_table t
		  LEFT JOIN privacy_guard.anonymizer a ON a.relid = t.relid AND a.column_name = t.subject_column
		 WHERE t.relid = $1
		UNION ALL
		SELECT a.column_name, a.method, a.fn
		  FROM privacy_guard.anonymizer a JOIN privacy_guard.protected_table t ON t.relid = a.relid
		 WHERE a.relid = $1 AND a.column_name <> t.subject_column),
	typed AS (
		SELECT c.col, c.method, c.fn, at.atttypid::regtype AS typ,
			   privacy_guard._base_type(at.atttypid::regtype) AS base
		  FROM cols c JOIN pg_attribute at ON at.attrelid = $1 AND at.attname = c.col)
	SELECT string_agg(format('%I = %s', col,
		CASE method
			WHEN 'null' THEN 'NULL'
			WHEN 'redact' THEN CASE WHEN base IN ('text'::regtype, 'varchar'::regtype)
									THEN '''[redacted]''' ELSE 'NULL' END
			WHEN 'hash' THEN format('privacy_guard._hmac($2, %I::text)', col)
			WHEN 'mask' THEN format('CASE WHEN length(%1$I) <= 2 THEN repeat(''*'', length(%1$I)) '
									'ELSE left(%1$I, 1) || repeat(''*'', length(%1$I) - 2) || right(%1$I, 1) END', col)
			WHEN 'generalize' THEN
				CASE WHEN base IN ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype)
					 THEN format('date_trunc(''month'', %I)::%s', col, typ)
					 ELSE format('(CASE WHEN %1$I IS NULL OR %1$I = 0 THEN %1$I::numeric '
								 'ELSE trim_scale(sign(%1$I::numeric) * trunc(abs(%1$I::numeric) / power(10::numeric, floor(log(abs(%1$I::numeric))))) '
								 '* power(10::numeric, floor(log(abs(%1$I::numeric))))) END)::%2$s', col, typ) END
			ELSE format('%s(%I)', fn::oid::regproc, col)
		END), ', ' ORDER BY col)
	  FROM typed
$$;
COMMENT ON FUNCTION privacy_guard._anonymize_set(regclass) IS 'Internal: the SET list that anonymises a row';

/*
 * Protected tables in erasure order: a table before the tables it
 * references.  A table's level is the longest chain of protected tables
 * referring to it (through foreign keys), so referencing tables (level 0)
 * come first; cycles are cut after as many steps as there are tables.
 */
CREATE FUNCTION privacy_guard._erasure_order()
RETURNS SETOF privacy_guard.protected_table
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE edge(child, parent) AS (
		SELECT DISTINCT c.conrelid, c.confrelid
		  FROM pg_constraint c
		  JOIN privacy_guard.protected_table a ON a.relid = c.conrelid
		  JOIN privacy_guard.protected_table b ON b.relid = c.confrelid
		 WHERE c.contype = 'f' AND c.conrelid <> c.confrelid),
	walk(relid, lvl) AS (
		SELECT t.relid::oid, 0 FROM privacy_guard.protected_table t
		UNION
		SELECT e.parent, w.lvl + 1 FROM walk w JOIN edge e ON e.child = w.relid
		 WHERE w.lvl < (SELECT count(*) FROM privacy_guard.protected_table))
	SELECT t.* FROM privacy_guard.protected_table t
	  JOIN (SELECT w.relid, max(w.lvl) AS lvl FROM walk w GROUP BY w.relid) l ON l.relid = t.relid
	 ORDER BY l.lvl, t.relid::text
$$;
COMMENT ON FUNCTION privacy_guard._erasure_order() IS 'Internal: protected tables, referencing tables before referenced ones';

/*
 * Carry out one forget request in every protected table, or nothing: any
 * error (a foreign key from an unprotected table, a trigger or rule that
 * keeps rows) rolls the whole request back and leaves it blocked, its rows
 * still hidden.
 */
CREATE FUNCTION privacy_guard._erase_subject(req privacy_guard.erasure_request, secret bytea)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t privacy_guard.protected_table;
	v_type regtype;
	v_cond text;
	v_n bigint;
	v_left bigint;
	v_counts jsonb := '{}';
	v_touched oid[] := '{}';
	v_table regclass;
	v_constraint text;
	v_schema text;
	v_relname text;
BEGIN
	BEGIN
		FOR t IN SELECT * FROM privacy_guard._erasure_order() LOOP
			v_table := t.relid;
			v_type := privacy_guard._column_type(t.relid, t.subject_column, 'subject');
			BEGIN
				/* the base type: a domain's checks are the table owner's code */
				EXECUTE format('SELECT $1::%s', privacy_guard._base_type(v_type)) USING req.subject;
			EXCEPTION WHEN data_exception THEN
				CONTINUE;	/* no value of the column has this key as its text form */
			END;
			v_cond := format('%I = $1::%s', t.subject_column, v_type);
			IF t.on_forget = 'delete' THEN
				v_n := privacy_guard._exec_as_owner(t.relid,
						format('DELETE FROM %s WHERE %s', t.relid, v_cond), req.subject, secret);
			ELSE
				v_n := privacy_guard._exec_as_owner(t.relid,
						format('UPDATE %s SET %s WHERE %s', t.relid,
							   privacy_guard._anonymize_set(t.relid), v_cond), req.subject, secret);
			END IF;
			/* a trigger or rule of the owner may have kept rows: look */
			v_left := privacy_guard._exec_as_owner(t.relid,
						format('SELECT count(*) FROM %s WHERE %s', t.relid, v_cond), req.subject, NULL);
			IF v_left > 0 THEN
				RAISE EXCEPTION 'table % kept % of the subject''s rows', t.relid, v_left
					USING ERRCODE = '55000',
						  DETAIL = 'A trigger or rule on the table prevented the erasure.';
			END IF;
			IF v_n > 0 THEN
				v_counts := v_counts || jsonb_build_object(t.relid::text,
					jsonb_build_object(CASE t.on_forget WHEN 'delete' THEN 'deleted' ELSE 'anonymized' END, v_n));
				/* the old row versions live on in the table (and its partitions) until vacuumed */
				v_touched := v_touched || ARRAY(
					SELECT x FROM privacy_guard._tree_oids(t.relid) AS x
					  JOIN pg_class c ON c.oid = x WHERE c.relkind = 'r');
			END IF;
		END LOOP;
		v_counts := v_counts || privacy_guard._erase_tagged(req.subject, secret);
		/* the receipt keeps the history, with the key replaced by its digest */
		UPDATE privacy_guard.consent_ledger l SET subject = req.subject_digest
		 WHERE l.subject = req.subject;
		DELETE FROM privacy_guard.consent_state c WHERE c.subject = req.subject;
		UPDATE privacy_guard.erasure_request r
		   SET state = 'done', completed_at = clock_timestamp(), counts = v_counts,
			   subject = NULL, error = NULL, touched = v_touched,
			   unreachable_at = CASE WHEN v_touched = '{}' THEN clock_timestamp() END
		 WHERE r.id = req.id;
	EXCEPTION
		WHEN foreign_key_violation THEN
			GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME, v_schema = SCHEMA_NAME,
									v_relname = TABLE_NAME;
			UPDATE privacy_guard.erasure_request r
			   SET state = 'blocked',
				   error = format('foreign key %s of table %s, which is not protected, still refers to the subject''s rows in %s',
								  quote_ident(v_constraint), quote_ident(v_schema) || '.' || quote_ident(v_relname), v_table)
			 WHERE r.id = req.id;
		WHEN lock_not_available THEN
			UPDATE privacy_guard.erasure_request r
			   SET state = 'blocked',
				   error = format('rows in %s are locked by another transaction; the next round retries', v_table)
			 WHERE r.id = req.id;
		WHEN OTHERS THEN
			/* our own message names no data; others might, so only their SQLSTATE is kept */
			UPDATE privacy_guard.erasure_request r
			   SET state = 'blocked',
				   error = CASE WHEN SQLSTATE = '55000' THEN SQLERRM
								ELSE format('error %s while erasing from %s', SQLSTATE, v_table) END
			 WHERE r.id = req.id;
	END;
END
$$;
COMMENT ON FUNCTION privacy_guard._erase_subject(privacy_guard.erasure_request, bytea) IS 'Internal: carry out one forget request, or nothing';

CREATE FUNCTION privacy_guard.run_maintenance(tbl regclass DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_now timestamptz := now();
	v_secret bytea := privacy_guard._secret();
	t privacy_guard.protected_table;
	r privacy_guard.erasure_request;
	v_n bigint;
	v_expired jsonb := '{}';
	v_errors jsonb := '{}';
	v_done int := 0;
	v_blocked int := 0;
BEGIN
	/*
	 * Rows past retention: deleted, or anonymised (once: the subject is
	 * cut).  A table that fails (rows locked by an application, a trigger's
	 * error) is reported and the others go on; it is retried next round.
	 */
	FOR t IN SELECT * FROM privacy_guard._erasure_order() LOOP
		CONTINUE WHEN t.retention IS NULL OR (tbl IS NOT NULL AND t.relid <> tbl);
		BEGIN
			IF t.on_expiry = 'delete' THEN
				v_n := privacy_guard._exec_as_owner(t.relid,
						format('DELETE FROM %s WHERE %I + %L::interval <= %L::timestamptz',
							   t.relid, t.retention_column, t.retention, v_now), NULL, v_secret);
			ELSE
				v_n := privacy_guard._exec_as_owner(t.relid,
						format('UPDATE %s SET %s WHERE %I + %L::interval <= %L::timestamptz AND %I IS NOT NULL',
							   t.relid, privacy_guard._anonymize_set(t.relid), t.retention_column,
							   t.retention, v_now, t.subject_column), NULL, v_secret);
			END IF;
			IF v_n > 0 THEN
				v_expired := v_expired || jsonb_build_object(t.relid::text,
					jsonb_build_object(CASE t.on_expiry WHEN 'delete' THEN 'deleted' ELSE 'anonymized' END, v_n));
			END IF;
		EXCEPTION WHEN OTHERS THEN
			v_errors := v_errors || jsonb_build_object(t.relid::text, SQLSTATE);
		END;
	END LOOP;

	v_expired := v_expired || privacy_guard._erase_tagged_expired(tbl, v_now);

	/* forget requests that are due, each in full or not at all */
	FOR r IN
		SELECT * FROM privacy_guard.erasure_request e
		 WHERE e.state IN ('pending', 'blocked') AND e.subject IS NOT NULL AND e.due <= v_now
		 ORDER BY e.id
	LOOP
		PERFORM privacy_guard._erase_subject(r, v_secret);
		IF (SELECT e.state FROM privacy_guard.erasure_request e WHERE e.id = r.id) = 'done' THEN
			v_done := v_done + 1;
		ELSE
			v_blocked := v_blocked + 1;
		END IF;
	END LOOP;

	/*
	 * A receipt records when the erased rows became physically unreachable:
	 * once every table the erasure wrote to has been vacuumed since.
	 */
	UPDATE privacy_guard.erasure_request e
	   SET unreachable_at = now()
	 WHERE e.state = 'done' AND e.unreachable_at IS NULL
	   AND NOT EXISTS (SELECT 1 FROM unnest(e.touched) AS x(relid)
					   WHERE EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = x.relid)
						 AND coalesce(greatest(pg_stat_get_last_vacuum_time(x.relid),
											   pg_stat_get_last_autovacuum_time(x.relid)),
									  '-infinity') < e.completed_at);

	RETURN jsonb_build_object('expired', v_expired, 'requests_done', v_done,
							  'requests_blocked', v_blocked, 'errors', v_errors);
END
$$;
COMMENT ON FUNCTION privacy_guard.run_maintenance(regclass) IS 'One enforcement round now, in this session: expire rows past retention, carry out due forget requests';

/* One background round: run_maintenance(), its outcome kept for worker_status. */
CREATE FUNCTION privacy_guard._worker_round()
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_result jsonb;
	v_failed text;
BEGIN
	INSERT INTO privacy_guard.worker_round DEFAULT VALUES ON CONFLICT DO NOTHING;
	BEGIN
		v_result := privacy_guard.run_maintenance();
	EXCEPTION WHEN OTHERS THEN
		v_failed := SQLSTATE;
	END;
	IF v_failed IS NOT NULL THEN
		UPDATE privacy_guard.worker_round w
		   SET rounds = w.rounds + 1, last_round_at = now(), errors = w.errors + 1,
			   last_error = 'round failed: ' || v_failed, last_error_at = now();
		RETURN;
	END IF;
	UPDATE privacy_guard.worker_round w
	   SET rounds = w.rounds + 1, last_round_at = now(), last_result = v_result,
		   rows_deleted = w.rows_deleted + (SELECT coalesce(sum((e.value ->> 'deleted')::bigint), 0)
											  FROM jsonb_each(v_result -> 'expired') e),
		   rows_anonymized = w.rows_anonymized + (SELECT coalesce(sum((e.value ->> 'anonymized')::bigint), 0)
													FROM jsonb_each(v_result -> 'expired') e),
		   requests_done = w.requests_done + (v_result ->> 'requests_done')::bigint,
		   errors = w.errors + (SELECT count(*) FROM jsonb_object_keys(v_result -> 'errors'))
							 + (v_result ->> 'requests_blocked')::bigint,
		   last_error = CASE WHEN v_result -> 'errors' <> '{}' THEN (v_result -> 'errors')::text
							 WHEN (v_result ->> 'requests_blocked')::int > 0 THEN 'requests blocked: see erasure_requests'
							 ELSE w.last_error END,
		   last_error_at = CASE WHEN v_result -> 'errors' <> '{}' OR (v_result ->> 'requests_blocked')::int > 0
								THEN now() ELSE w.last_error_at END;
END
$$;
COMMENT ON FUNCTION privacy_guard._worker_round() IS 'Internal: the background worker''s round';

CREATE VIEW privacy_guard.worker_status AS
	SELECT pg_catalog.current_database() AS database, w.rounds, w.last_round_at, w.rows_deleted,
		   w.rows_anonymized, w.requests_done, w.errors, w.last_error, w.last_error_at
	  FROM privacy_guard.worker_round w;
COMMENT ON VIEW privacy_guard.worker_status IS 'The background worker''s rounds in this database';

/* ------------------------------------------------------------------ */
/* Consent-tagged types (SPEC 1 "Tagged value", 2, 3.4; src/tagged.h)  */
/* ------------------------------------------------------------------ */

/*
 * tagged_text, tagged_date, tagged_numeric and tagged_jsonb: one C
 * implementation; each type gets thin SQL entry points, made by one loop so
 * the four stay alike.  No btree or hash operator class on purpose (see
 * src/tagged_ops.c): sorting and grouping go through reveal().
 */
DO $pvg$
DECLARE
	v_base text;
	v_t text;
	v_op record;
BEGIN
	FOREACH v_base IN ARRAY ARRAY['text', 'date', 'numeric', 'jsonb'] LOOP
		v_t := 'privacy_guard.tagged_' || v_base;
		EXECUTE format('CREATE TYPE %s', v_t);
		EXECUTE format($f$CREATE FUNCTION %1$s_in(cstring) RETURNS %1$s
			AS 'MODULE_PATHNAME', 'pvg_tagged_%2$s_in' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED$f$, v_t, v_base);
		EXECUTE format($f$CREATE FUNCTION %1$s_out(%1$s) RETURNS cstring
			AS 'MODULE_PATHNAME', 'pvg_tagged_out' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED$f$, v_t);
		EXECUTE format($f$CREATE FUNCTION %1$s_recv(internal) RETURNS %1$s
			AS 'MODULE_PATHNAME', 'pvg_tagged_%2$s_recv' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED$f$, v_t, v_base);
		EXECUTE format($f$CREATE FUNCTION %1$s_send(%1$s) RETURNS bytea
			AS 'MODULE_PATHNAME', 'pvg_tagged_send' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED$f$, v_t);
		EXECUTE format($f$CREATE FUNCTION %1$s_analyze(internal) RETURNS boolean
			AS 'MODULE_PATHNAME', 'pvg_tagged_typanalyze' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE$f$, v_t);
		EXECUTE format($f$CREATE TYPE %1$s (INPUT = %1$s_in, OUTPUT = %1$s_out,
			RECEIVE = %1$s_recv, SEND = %1$s_send, ANALYZE = %1$s_analyze,
			INTERNALLENGTH = VARIABLE, STORAGE = extended, ALIGNMENT = int4,
			CATEGORY = 'U', COLLATABLE = %2$s)$f$, v_t, (v_base = 'text')::text);
		EXECUTE format('COMMENT ON TYPE %s IS %L', v_t,
			'A ' || v_base || ' value carrying its own tag: purposes, optional subject, optional retain-until (privacy_guard rule 3.4)');
		EXECUTE format('COMMENT ON FUNCTION %1$s_in(cstring) IS %2$L', v_t,
			'Text input of ' || v_base || ' tagged values: a tagged: literal, or a plain value awaiting its column''s default tag');
		EXECUTE format('COMMENT ON FUNCTION %1$s_out(%1$s) IS %2$L', v_t,
			'Text output: the value and its tag, or error 42501 when rule 3.4 withholds the value');
		EXECUTE format('COMMENT ON FUNCTION %1$s_recv(internal) IS %2$L', v_t,
			'Binary input, validated strictly');
		EXECUTE format('COMMENT ON FUNCTION %1$s_send(%1$s) IS %2$L', v_t,
			'Binary output: the value and its tag, or error 42501 when rule 3.4 withholds the value');
		EXECUTE format('COMMENT ON FUNCTION %1$s_analyze(internal) IS %2$L', v_t,
			'No statistics: pg_stats must not show withheld values');

		/* the read side */
		EXECUTE format($f$CREATE FUNCTION privacy_guard.tag(value %2$s, purposes text[],
				subject text DEFAULT NULL, retain_until timestamptz DEFAULT NULL) RETURNS %1$s
			AS 'MODULE_PATHNAME', 'pvg_tag_make_%2$s' LANGUAGE C STABLE PARALLEL RESTRICTED$f$, v_t, v_base);
		EXECUTE format('COMMENT ON FUNCTION privacy_guard.tag(%s, text[], text, timestamptz) IS %L', v_base,
			'Build a tagged value: purposes it may be used for, optional subject and retain-until');
		EXECUTE format($f$CREATE FUNCTION privacy_guard.reveal(v %1$s) RETURNS %2$s
			AS 'MODULE_PATHNAME', 'pvg_tag_reveal' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED$f$, v_t, v_base);
		EXECUTE format('COMMENT ON FUNCTION privacy_guard.reveal(%s) IS %L', v_t,
			'The value if the session may use it (rule 3.4), else NULL; never an error about purposes');
		EXECUTE format($f$CREATE FUNCTION privacy_guard.tag_purposes(v %1$s) RETURNS text[]
			AS 'MODULE_PATHNAME', 'pvg_tag_purposes' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED$f$, v_t);
		EXECUTE format('COMMENT ON FUNCTION privacy_guard.tag_purposes(%s) IS %L', v_t,
			'The purposes in a value''s tag (NULL while it awaits its default tag)');
		EXECUTE format($f$CREATE FUNCTION privacy_guard.tag_retain_until(v %1$s) RETURNS timestamptz
			AS 'MODULE_PATHNAME', 'pvg_tag_retain_until' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE$f$, v_t);
		EXECUTE format('COMMENT ON FUNCTION privacy_guard.tag_retain_until(%s) IS %L', v_t,
			'The retain-until time in a value''s tag, or NULL');

		/* casts: a plain value takes its column's default tag; back only through reveal() */
		EXECUTE format($f$CREATE FUNCTION %1$s(%2$s) RETURNS %1$s
			AS 'MODULE_PATHNAME', 'pvg_tag_plain_%2$s' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE$f$, v_t, v_base);
		EXECUTE format('COMMENT ON FUNCTION %s(%s) IS %L', v_t, v_base,
			'Cast: a plain value, awaiting its column''s default tag');
		EXECUTE format('CREATE CAST (%s AS %s) WITH FUNCTION %2$s(%1$s) AS ASSIGNMENT', v_base, v_t);
		EXECUTE format('CREATE CAST (%s AS %s) WITH FUNCTION privacy_guard.reveal(%1$s)', v_t, v_base);

		/* comparison: NULL when either side is withheld */
		FOR v_op IN SELECT * FROM (VALUES ('eq', '=', '=', '<>', 'eqsel', 'eqjoinsel'),
										  ('ne', '<>', '<>', '=', 'neqsel', 'neqjoinsel'),
										  ('lt', '<', '>', '>=', 'scalarltsel', 'scalarltjoinsel'),
										  ('le', '<=', '>=', '>', 'scalarlesel', 'scalarlejoinsel'),
										  ('gt', '>', '<', '<=', 'scalargtsel', 'scalargtjoinsel'),
										  ('ge', '>=', '<=', '<', 'scalargesel', 'scalargejoinsel'))
								  AS o(fn, op, com, neg, rest, joinsel) LOOP
			EXECUTE format($f$CREATE FUNCTION privacy_guard._tagged_%2$s(%1$s, %1$s) RETURNS boolean
				AS 'MODULE_PATHNAME', 'pvg_tagged_%2$s' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED$f$,
				v_t, v_op.fn);
			EXECUTE format('COMMENT ON FUNCTION privacy_guard._tagged_%s(%s, %2$s) IS %L', v_op.fn, v_t,
				'Operator ' || v_op.op || ' on revealed values; NULL when either is withheld');
			EXECUTE format('CREATE OPERATOR privacy_guard.%s (LEFTARG = %s, RIGHTARG = %2$s, '
						   'FUNCTION = privacy_guard._tagged_%s, COMMUTATOR = OPERATOR(privacy_guard.%s), '
						   'NEGATOR = OPERATOR(privacy_guard.%s), RESTRICT = %s, JOIN = %s)',
						   v_op.op, v_t, v_op.fn, v_op.com, v_op.neg, v_op.rest, v_op.joinsel);
		END LOOP;

		/* the erasure's matcher: answers only with the database's digest key */
		EXECUTE format($f$CREATE FUNCTION privacy_guard._tag_erasable(%1$s, text, bytea) RETURNS boolean
			AS 'MODULE_PATHNAME', 'pvg_tag_erasable' LANGUAGE C STABLE PARALLEL RESTRICTED$f$, v_t);
		EXECUTE format('COMMENT ON FUNCTION privacy_guard._tag_erasable(%s, text, bytea) IS %L', v_t,
			'Internal: whether a value''s tag names the subject; needs the digest key');
	END LOOP;
END
$pvg$;

/* existing statements write integers, floats and varchars into tagged columns too */
CREATE CAST (varchar AS privacy_guard.tagged_text)
	WITH FUNCTION privacy_guard.tagged_text(text) AS ASSIGNMENT;
DO $pvg$
DECLARE
	v_src text;
BEGIN
	FOREACH v_src IN ARRAY ARRAY['smallint', 'integer', 'bigint', 'real', 'double precision'] LOOP
		EXECUTE format($f$CREATE FUNCTION privacy_guard.tagged_numeric(%s) RETURNS privacy_guard.tagged_numeric
			LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
			AS 'SELECT privacy_guard.tagged_numeric($1::pg_catalog.numeric)'$f$, v_src);
		EXECUTE format('COMMENT ON FUNCTION privacy_guard.tagged_numeric(%s) IS %L', v_src,
			'Cast: a plain number, awaiting its column''s default tag');
		EXECUTE format('CREATE CAST (%s AS privacy_guard.tagged_numeric) '
					   'WITH FUNCTION privacy_guard.tagged_numeric(%1$s) AS ASSIGNMENT', v_src);
	END LOOP;
END
$pvg$;

CREATE FUNCTION privacy_guard.length(privacy_guard.tagged_text)
RETURNS integer
AS 'MODULE_PATHNAME', 'pvg_tagged_length'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard.length(privacy_guard.tagged_text) IS 'Characters of a revealed value; NULL when withheld';

CREATE FUNCTION privacy_guard._tagged_like(privacy_guard.tagged_text, text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_tagged_like'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard._tagged_like(privacy_guard.tagged_text, text) IS 'LIKE on a revealed value; NULL when withheld';

CREATE FUNCTION privacy_guard._tagged_notlike(privacy_guard.tagged_text, text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_tagged_notlike'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard._tagged_notlike(privacy_guard.tagged_text, text) IS 'NOT LIKE on a revealed value; NULL when withheld';

CREATE OPERATOR privacy_guard.~~ (LEFTARG = privacy_guard.tagged_text, RIGHTARG = text,
	FUNCTION = privacy_guard._tagged_like, NEGATOR = OPERATOR(privacy_guard.!~~));
CREATE OPERATOR privacy_guard.!~~ (LEFTARG = privacy_guard.tagged_text, RIGHTARG = text,
	FUNCTION = privacy_guard._tagged_notlike, NEGATOR = OPERATOR(privacy_guard.~~));

/* default tags for plain values written into a protected table's tagged columns */
CREATE FUNCTION privacy_guard._tag_default()
RETURNS trigger
AS 'MODULE_PATHNAME', 'pvg_tag_default_trigger'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION privacy_guard._tag_default() IS 'Internal: trigger giving plain values in tagged columns their column''s default tag';

CREATE FUNCTION privacy_guard._install_default_tag(tbl regclass, install boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
BEGIN
	IF NOT install THEN
		EXECUTE format('DROP TRIGGER IF EXISTS privacy_guard_default_tag ON %s', tbl);
		RETURN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_trigger g
					WHERE g.tgrelid = tbl AND g.tgname = 'privacy_guard_default_tag') THEN
		EXECUTE format('CREATE TRIGGER privacy_guard_default_tag BEFORE INSERT OR UPDATE ON %s '
					   'FOR EACH ROW EXECUTE FUNCTION privacy_guard._tag_default()', tbl);
	END IF;
	/* plain values already stored take their default tag now, written by the table's owner */
	FOR r IN SELECT c.* FROM privacy_guard._tagged_columns() c
			  WHERE c.relid::oid IN (SELECT x FROM privacy_guard._tree_oids(tbl) AS x) LOOP
		PERFORM privacy_guard._exec_as_owner(r.relid,
			format('UPDATE ONLY %s SET %I = %2$I WHERE %2$I IS NOT NULL AND privacy_guard.tag_purposes(%2$I) IS NULL',
				   r.relid, r.colname), NULL, NULL);
	END LOOP;
END
$$;
COMMENT ON FUNCTION privacy_guard._install_default_tag(regclass, boolean) IS 'Internal: add (protect, and tag the plain values stored) or remove (unprotect) the default-tag trigger';

/* Every column of a tagged type (or a domain over one) in the database's tables. */
CREATE FUNCTION privacy_guard._tagged_columns()
RETURNS TABLE (relid regclass, colname name)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE tagged(oid) AS (
		SELECT t.oid FROM pg_type t
		 WHERE t.oid IN ('privacy_guard.tagged_text'::regtype, 'privacy_guard.tagged_date'::regtype,
						 'privacy_guard.tagged_numeric'::regtype, 'privacy_guard.tagged_jsonb'::regtype)
		UNION
		SELECT d.oid FROM pg_type d JOIN tagged ON d.typbasetype = tagged.oid WHERE d.typtype = 'd')
	SELECT c.oid::regclass, a.attname
	  FROM pg_attribute a
	  JOIN pg_class c ON c.oid = a.attrelid
	 WHERE a.atttypid IN (SELECT tagged.oid FROM tagged)
	   AND c.relkind = 'r' AND c.relpersistence <> 't'
	   AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
								  'privacy_guard'::regnamespace)
	   AND a.attnum > 0 AND NOT a.attisdropped
	 ORDER BY c.oid::regclass::text, a.attname
$$;
COMMENT ON FUNCTION privacy_guard._tagged_columns() IS 'Internal: every column of a tagged type, or a domain over one, in the database''s tables';

/*
 * A forget request's tagged values: set to NULL in every tagged column of
 * the database, protected table or not, as each table's owner (the key and
 * the digest key are parameters).  Returns {"tagged": {"tbl.col": n}} or {}.
 * Errors propagate: _erase_subject then leaves the request blocked.
 */
CREATE FUNCTION privacy_guard._erase_tagged(subject text, secret bytea)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
	v_n bigint;
	v_counts jsonb := '{}';
BEGIN
	FOR r IN SELECT * FROM privacy_guard._tagged_columns() LOOP
		BEGIN
			v_n := privacy_guard._exec_as_owner(r.relid,
					format('UPDATE ONLY %s SET %I = NULL WHERE privacy_guard._tag_erasable(%2$I, $1, $2)',
						   r.relid, r.colname), subject, secret);
		EXCEPTION
			WHEN lock_not_available THEN
				RAISE;
			WHEN OTHERS THEN
				/* named here, or the request's error would name the last protected table */
				RAISE EXCEPTION 'tagged values in column % of table % could not be erased (error %)',
					quote_ident(r.colname), r.relid, SQLSTATE
					USING ERRCODE = '55000';
		END;
		IF v_n > 0 THEN
			v_counts := v_counts || jsonb_build_object(r.relid::text || '.' || quote_ident(r.colname), v_n);
		END IF;
	END LOOP;
	RETURN CASE WHEN v_counts = '{}' THEN '{}'::jsonb ELSE jsonb_build_object('tagged', v_counts) END;
END
$$;
COMMENT ON FUNCTION privacy_guard._erase_tagged(text, bytea) IS 'Internal: erase a forgotten subject''s tagged values in every tagged column';

/*
 * Tagged values past their retain-until, set to NULL (all tables, or only
 * only_tbl).  Returns {"tagged": {"tbl.col": n}} or {}; a table that fails is
 * skipped, reported under "tagged_errors" with its SQLSTATE, and retried
 * next round.
 */
CREATE FUNCTION privacy_guard._erase_tagged_expired(only_tbl regclass, at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
	v_n bigint;
	v_counts jsonb := '{}';
	v_errors jsonb := '{}';
BEGIN
	FOR r IN SELECT * FROM privacy_guard._tagged_columns() c WHERE only_tbl IS NULL OR c.relid = only_tbl LOOP
		BEGIN
			v_n := privacy_guard._exec_as_owner(r.relid,
					format('UPDATE ONLY %s SET %I = NULL WHERE privacy_guard.tag_retain_until(%2$I) <= %L::timestamptz',
						   r.relid, r.colname, at), NULL, NULL);
		EXCEPTION WHEN OTHERS THEN
			v_n := 0;
			v_errors := v_errors || jsonb_build_object(r.relid::text || '.' || quote_ident(r.colname), SQLSTATE);
		END;
		IF v_n > 0 THEN
			v_counts := v_counts || jsonb_build_object(r.relid::text || '.' || quote_ident(r.colname), v_n);
		END IF;
	END LOOP;
	RETURN CASE WHEN v_counts = '{}' THEN '{}'::jsonb ELSE jsonb_build_object('tagged', v_counts) END
		|| CASE WHEN v_errors = '{}' THEN '{}'::jsonb ELSE jsonb_build_object('tagged_errors', v_errors) END;
END
$$;
COMMENT ON FUNCTION privacy_guard._erase_tagged_expired(regclass, timestamptz) IS 'Internal: erase tagged values past their retain-until';

/* ------------------------------------------------------------------ */
/* Cache invalidation: every session sees a change at its next statement */
/* ------------------------------------------------------------------ */

CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON privacy_guard.purpose FOR EACH STATEMENT EXECUTE FUNCTION privacy_guard._invalidate_cache();
CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON privacy_guard.purpose_role FOR EACH STATEMENT EXECUTE FUNCTION privacy_guard._invalidate_cache();
CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON privacy_guard.protected_table FOR EACH STATEMENT EXECUTE FUNCTION privacy_guard._invalidate_cache();
CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON privacy_guard.consent_state FOR EACH STATEMENT EXECUTE FUNCTION privacy_guard._invalidate_cache();
CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON privacy_guard.erasure_request FOR EACH STATEMENT EXECUTE FUNCTION privacy_guard._invalidate_cache();

/* Sessions catch up by the transaction that last wrote a row (consent_cache.c). */
CREATE FUNCTION privacy_guard._stamp_changed_xid()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	NEW.changed_xid := pg_current_xact_id();
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION privacy_guard._stamp_changed_xid() IS 'Internal: record which transaction last wrote a row';
CREATE TRIGGER stamp_changed_xid BEFORE UPDATE ON privacy_guard.consent_state
	FOR EACH ROW EXECUTE FUNCTION privacy_guard._stamp_changed_xid();
CREATE TRIGGER stamp_changed_xid BEFORE UPDATE ON privacy_guard.erasure_request
	FOR EACH ROW EXECUTE FUNCTION privacy_guard._stamp_changed_xid();

/* ------------------------------------------------------------------ */
/* Privileges (SPEC 3.3)                                                */
/* ------------------------------------------------------------------ */

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA privacy_guard FROM PUBLIC;

/* what applications read with */
GRANT EXECUTE ON FUNCTION privacy_guard.has_consent(text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION privacy_guard.row_visible(regclass, anyelement) TO PUBLIC;
GRANT EXECUTE ON FUNCTION privacy_guard.row_visible(regclass, anyelement, timestamptz) TO PUBLIC;
GRANT EXECUTE ON FUNCTION privacy_guard.row_visible(regclass, anyelement, timestamp) TO PUBLIC;
GRANT EXECUTE ON FUNCTION privacy_guard.row_visible(regclass, anyelement, date) TO PUBLIC;
GRANT EXECUTE ON FUNCTION privacy_guard.write_allowed(regclass) TO PUBLIC;
/* anonymising statements run as the table owner; the key is their parameter */
GRANT EXECUTE ON FUNCTION privacy_guard._hmac(bytea, text) TO PUBLIC;
GRANT SELECT ON privacy_guard.purposes, privacy_guard.protected_tables TO PUBLIC;

CREATE FUNCTION privacy_guard.grant_admin(role regrole)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	EXECUTE format('GRANT EXECUTE ON FUNCTION
		privacy_guard.define_purpose(text, text, text),
		privacy_guard.drop_purpose(text),
		privacy_guard.allow_purpose(regrole, text),
		privacy_guard.disallow_purpose(regrole, text),
		privacy_guard.protect(regclass, name, text[], interval, name, text, text),
		privacy_guard.unprotect(regclass),
		privacy_guard.set_anonymizer(regclass, name, text),
		privacy_guard.run_maintenance(regclass),
		privacy_guard.erasure_status(text),
		privacy_guard.grant_recorder(regrole) TO %s', role);
	EXECUTE format('GRANT SELECT ON privacy_guard.consents, privacy_guard.consent_ledger,
		privacy_guard.erasure_requests, privacy_guard.purpose_roles, privacy_guard.worker_status TO %s', role);
END
$$;
COMMENT ON FUNCTION privacy_guard.grant_admin(regrole) IS 'Hand the administration level to a role (superusers only)';

CREATE FUNCTION privacy_guard.grant_recorder(role regrole)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	EXECUTE format('GRANT EXECUTE ON FUNCTION
		privacy_guard.grant_consent(text, text, timestamptz, jsonb),
		privacy_guard.withdraw_consent(text, text),
		privacy_guard.object_to(text, text),
		privacy_guard.forget(text, text, timestamptz),
		privacy_guard.erasure_status(text) TO %s', role);
END
$$;
COMMENT ON FUNCTION privacy_guard.grant_recorder(regrole) IS 'Hand the recording level (consent, objections, forget requests) to a role (superusers and administrators)';

REVOKE ALL ON FUNCTION privacy_guard.grant_admin(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy_guard.grant_recorder(regrole) FROM PUBLIC;

/* consent-tagged types: the read side and the types' own functions are for everyone */
GRANT EXECUTE ON FUNCTION
	privacy_guard.tag(text, text[], text, timestamptz),
	privacy_guard.tag(date, text[], text, timestamptz),
	privacy_guard.tag(numeric, text[], text, timestamptz),
	privacy_guard.tag(jsonb, text[], text, timestamptz),
	privacy_guard.reveal(privacy_guard.tagged_text),
	privacy_guard.reveal(privacy_guard.tagged_date),
	privacy_guard.reveal(privacy_guard.tagged_numeric),
	privacy_guard.reveal(privacy_guard.tagged_jsonb),
	privacy_guard.tag_purposes(privacy_guard.tagged_text),
	privacy_guard.tag_purposes(privacy_guard.tagged_date),
	privacy_guard.tag_purposes(privacy_guard.tagged_numeric),
	privacy_guard.tag_purposes(privacy_guard.tagged_jsonb),
	privacy_guard.tag_retain_until(privacy_guard.tagged_text),
	privacy_guard.tag_retain_until(privacy_guard.tagged_date),
	privacy_guard.tag_retain_until(privacy_guard.tagged_numeric),
	privacy_guard.tag_retain_until(privacy_guard.tagged_jsonb),
	privacy_guard.length(privacy_guard.tagged_text),
	/* the erasure's UPDATE runs as the table owner; the digest key is its parameter */
	privacy_guard._tag_erasable(privacy_guard.tagged_text, text, bytea),
	privacy_guard._tag_erasable(privacy_guard.tagged_date, text, bytea),
	privacy_guard._tag_erasable(privacy_guard.tagged_numeric, text, bytea),
	privacy_guard._tag_erasable(privacy_guard.tagged_jsonb, text, bytea),
	/* a partition created by the table's owner gets a clone of the default-tag trigger */
	privacy_guard._tag_default()
TO PUBLIC;
DO $pvg$
DECLARE
	f regprocedure;
BEGIN
	/* the types' I/O, cast and operator functions */
	FOR f IN
		SELECT p.oid::regprocedure FROM pg_proc p
		 WHERE p.pronamespace = 'privacy_guard'::regnamespace
		   AND (EXISTS (SELECT 1 FROM pg_type t
						 WHERE p.oid IN (t.typinput, t.typoutput, t.typreceive, t.typsend, t.typanalyze))
				OR EXISTS (SELECT 1 FROM pg_operator o WHERE o.oprcode = p.oid)
				OR EXISTS (SELECT 1 FROM pg_cast k WHERE k.castfunc = p.oid))
	LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f);
	END LOOP;
END
$pvg$;
