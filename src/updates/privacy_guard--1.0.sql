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
COMMENT ON TABLE privacy_guard.purpose_role IS 'Roles authorised for a purpose (and its descendants of the same legal basis)';

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
	erased_at	timestamptz,	/* first full erasure; done once no transaction in flight can commit or read the subject's rows */
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
	last_round_duration interval,
	last_result jsonb,
	rows_deleted bigint NOT NULL DEFAULT 0,	/* past retention */
	rows_anonymized bigint NOT NULL DEFAULT 0,
	rows_restricted bigint NOT NULL DEFAULT 0,	/* kept under a legal hold, as of the last round */
	requests_done bigint NOT NULL DEFAULT 0,
	errors		bigint NOT NULL DEFAULT 0,
	last_error	text,		/* an SQLSTATE and the table: never data */
	last_error_at timestamptz
);
COMMENT ON TABLE privacy_guard.worker_round IS 'What the background worker did in this database';

/*
 * One row per enforcement round in this database, by the worker or
 * run_maintenance(), kept for privacy_guard.history_retention (the rounds
 * prune it).  Counts, table names and SQLSTATEs only: never data.
 */
CREATE SEQUENCE privacy_guard.round_history_id_seq;
CREATE TABLE privacy_guard.round_history (
	id			bigint PRIMARY KEY
				DEFAULT pg_catalog.nextval('privacy_guard.round_history_id_seq'::pg_catalog.regclass),
	started_at	timestamptz NOT NULL,
	duration	interval NOT NULL,
	run_by		text NOT NULL CHECK (run_by OPERATOR(pg_catalog.=) ANY (ARRAY['worker', 'run_maintenance'])),
	tables		jsonb NOT NULL DEFAULT '{}',	/* per table: rows deleted, anonymized, restricted */
	rows_deleted bigint NOT NULL DEFAULT 0,
	rows_anonymized bigint NOT NULL DEFAULT 0,
	rows_restricted bigint NOT NULL DEFAULT 0,	/* kept under legal holds at the round's end */
	tagged_expired bigint NOT NULL DEFAULT 0,	/* tagged values past their retain-until */
	requests_done integer NOT NULL DEFAULT 0,
	requests_blocked integer NOT NULL DEFAULT 0,
	requests_restricted integer NOT NULL DEFAULT 0,
	errors		jsonb NOT NULL DEFAULT '{}'		/* SQLSTATE: how many */
);
CREATE INDEX round_history_started ON privacy_guard.round_history (started_at);
COMMENT ON TABLE privacy_guard.round_history IS 'One row per enforcement round in this database (worker and run_maintenance), kept for privacy_guard.history_retention';
ALTER SEQUENCE privacy_guard.round_history_id_seq OWNED BY privacy_guard.round_history.id;

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
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.round_history', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.round_history_id_seq', '');
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

CREATE FUNCTION privacy_guard._preloaded()
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_preloaded'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._preloaded() IS 'Internal: whether the library was loaded at server start (shared_preload_libraries), so the background worker runs';

CREATE FUNCTION privacy_guard._store_status()
RETURNS text
AS 'MODULE_PATHNAME', 'pvg_store_status'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._store_status() IS 'Internal: where connections read the consent store from: "shared" (preloaded), "shared, full" (some sets did not fit privacy_guard.shared_store_size) or "local: <why>"';

CREATE FUNCTION privacy_guard._store_stats(OUT images bigint, OUT bytes bigint, OUT builds bigint, OUT refused bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'pvg_store_stats'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._store_stats() IS 'Internal: the shared consent store''s images now published, their bytes, the builds since server start and the images that did not fit privacy_guard.shared_store_size';

/* Subjects no row names any more, for readers of the shared consent store (privacy_guard.c). */
CREATE FUNCTION privacy_guard._note_removed_subject()
RETURNS trigger
AS 'MODULE_PATHNAME', 'pvg_note_removed_subject'
LANGUAGE C;
COMMENT ON FUNCTION privacy_guard._note_removed_subject() IS 'Internal: record the subject of a deleted consent row or of a forget request that lost its subject, so sessions re-read it';
CREATE TRIGGER note_removed_subject AFTER DELETE ON privacy_guard.consent_state
	FOR EACH ROW EXECUTE FUNCTION privacy_guard._note_removed_subject();
CREATE TRIGGER note_changed_subject AFTER UPDATE ON privacy_guard.consent_state
	FOR EACH ROW WHEN (NEW.subject IS DISTINCT FROM OLD.subject)
	EXECUTE FUNCTION privacy_guard._note_removed_subject();
CREATE TRIGGER note_removed_subject AFTER DELETE ON privacy_guard.erasure_request
	FOR EACH ROW WHEN (OLD.subject IS NOT NULL)
	EXECUTE FUNCTION privacy_guard._note_removed_subject();
CREATE TRIGGER note_changed_subject AFTER UPDATE ON privacy_guard.erasure_request
	FOR EACH ROW WHEN (OLD.subject IS NOT NULL AND NEW.subject IS DISTINCT FROM OLD.subject)
	EXECUTE FUNCTION privacy_guard._note_removed_subject();

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
COMMENT ON FUNCTION privacy_guard._guard_suspend(boolean) IS 'Internal: let privacy_guard''s own functions change protected tables'' policies, or drop consent history past log retention';

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
	v_old_basis text;
	v_withdrawn bigint;
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
	SELECT p.legal_basis INTO v_old_basis FROM privacy_guard.purpose p
	 WHERE p.name = define_purpose.name FOR UPDATE;
	INSERT INTO privacy_guard.purpose AS p (name, parent, legal_basis, description)
	VALUES (define_purpose.name, v_parent, define_purpose.legal_basis, define_purpose.description)
	ON CONFLICT ON CONSTRAINT purpose_pkey DO UPDATE
		SET legal_basis = excluded.legal_basis, description = excluded.description;
	/*
	 * Another legal basis changes what a role authorised for the purpose
	 * may read (consent asked or not, objections heeded or not): the
	 * authorisations were given for the old one and are withdrawn, to be
	 * given again.  (A descendant of another basis is never reached by an
	 * authorisation of its ancestor: see the rules.)
	 */
	IF v_old_basis IS DISTINCT FROM define_purpose.legal_basis AND v_old_basis IS NOT NULL THEN
		WITH gone AS (
			DELETE FROM privacy_guard.purpose_role r WHERE r.purpose = define_purpose.name RETURNING 1)
		SELECT count(*) INTO v_withdrawn FROM gone;
		IF v_withdrawn > 0 THEN
			RAISE NOTICE 'the legal basis of purpose "%" changed: its % authorisation% withdrawn',
				define_purpose.name, v_withdrawn, CASE WHEN v_withdrawn = 1 THEN ' was' ELSE 's were' END
				USING HINT = 'Authorise the roles again with privacy_guard.allow_purpose() if they may use it under the new basis.';
		END IF;
	END IF;
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
	/* a regrole built from a bare OID may name no role (yet): never store it */
	IF NOT EXISTS (SELECT 1 FROM pg_roles a WHERE a.oid = allow_purpose.role) THEN
		RAISE EXCEPTION 'role with OID % does not exist', allow_purpose.role::oid
			USING ERRCODE = '42704';
	END IF;
	PERFORM privacy_guard._check_purpose(purpose);
	INSERT INTO privacy_guard.purpose_role (role, purpose)
	VALUES (allow_purpose.role, allow_purpose.purpose)
	ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION privacy_guard.allow_purpose(regrole, text) IS 'Authorise a role (and its members) for a purpose and its descendants of the same legal basis';

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

/*
 * The purposes whose authorisation lets a role use this one: itself and
 * its ancestors up to the first of another legal basis (pvg_purpose_authorised).
 */
CREATE FUNCTION privacy_guard._authorising_purposes(purpose text)
RETURNS SETOF text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE chain(name, basis) AS (
		SELECT p.name, p.legal_basis FROM privacy_guard.purpose p WHERE p.name = $1
		UNION ALL
		SELECT q.name, q.legal_basis
		  FROM chain
		  JOIN privacy_guard.purpose p ON p.name = chain.name
		  JOIN privacy_guard.purpose q ON q.name = p.parent
		 WHERE q.legal_basis = chain.basis)
	SELECT chain.name FROM chain
$$;
COMMENT ON FUNCTION privacy_guard._authorising_purposes(text) IS 'Internal: the purposes whose authorisation reaches this one (itself, and ancestors of the same legal basis)';

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

/*
 * The ledger only grows: history is evidence.  Only an erased subject's
 * history, kept under the digest, goes: with its receipt, past
 * privacy_guard.log_retention (_close_receipts).
 */
CREATE FUNCTION privacy_guard._ledger_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* the history kept under a digest, dropped with its receipt past log retention (_close_receipts) */
	IF TG_OP = 'DELETE' AND privacy_guard._guard_suspended() THEN
		RETURN OLD;
	END IF;
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
/* Bulk consent import                                                  */
/* ------------------------------------------------------------------ */

/*
 * import_consents() records many grants at once, all or nothing, with the
 * effect of calling grant_consent() for each row in input order: the same
 * checks (all made before anything is written), one ledger entry per row,
 * the same current state.  It writes with a few set-based statements
 * instead of two single-row statements and a foreign-key check per row.
 * Errors count rows and name row numbers (positions in the input), never
 * a subject key.
 */

/*
 * The checks of grant_consent() over the whole input, in its order; raises
 * the first that fails.  Arrays are read with set-returning functions in
 * the select list, which stream, where unnest() in FROM would first copy
 * every row into a tuplestore; row numbers are computed only for an error.
 */
CREATE FUNCTION privacy_guard._import_check(p_subjects text[], p_purposes text[],
											p_valid_until timestamptz[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
	v_total bigint := cardinality(p_subjects);
	v_bad bigint;
	c record;
	p record;
	v_basis text;
	v_unknown bigint := 0;
	v_unknown_at bigint;
	v_other record;
	v_other_basis text;
BEGIN
	SELECT count(*) FILTER (WHERE x.s IS NULL OR x.s = '' OR octet_length(x.s) > 1024
								  OR x.p IS NULL OR x.v <= now())
	  INTO v_bad
	  FROM (SELECT unnest(p_subjects) AS s, unnest(p_purposes) AS p, unnest(p_valid_until) AS v) x;
	IF v_bad > 0 THEN
		SELECT count(*) FILTER (WHERE x.s IS NULL OR x.s = '') AS no_subject,
			   min(x.n) FILTER (WHERE x.s IS NULL OR x.s = '') AS no_subject_at,
			   count(*) FILTER (WHERE octet_length(x.s) > 1024) AS long_subject,
			   min(x.n) FILTER (WHERE octet_length(x.s) > 1024) AS long_subject_at,
			   count(*) FILTER (WHERE x.p IS NULL) AS no_purpose,
			   min(x.n) FILTER (WHERE x.p IS NULL) AS no_purpose_at,
			   count(*) FILTER (WHERE x.v <= now()) AS past,
			   min(x.n) FILTER (WHERE x.v <= now()) AS past_at
		  INTO c
		  FROM (SELECT unnest(p_subjects) AS s, unnest(p_purposes) AS p, unnest(p_valid_until) AS v,
					   generate_series(1, v_total) AS n) x;
		IF c.no_subject > 0 THEN
			RAISE EXCEPTION 'subject must not be null or empty'
				USING ERRCODE = '22023',
					  DETAIL = format('%s of %s rows have no subject; the first is row %s.',
									  c.no_subject, v_total, c.no_subject_at);
		END IF;
		IF c.long_subject > 0 THEN
			RAISE EXCEPTION 'subject key is longer than 1024 bytes'
				USING ERRCODE = '54000',
					  DETAIL = format('%s of %s rows have such a subject; the first is row %s.',
									  c.long_subject, v_total, c.long_subject_at);
		END IF;
		IF c.no_purpose > 0 THEN
			RAISE EXCEPTION 'purpose must not be null'
				USING ERRCODE = '22023',
					  DETAIL = format('%s of %s rows have no purpose; the first is row %s.',
									  c.no_purpose, v_total, c.no_purpose_at);
		END IF;
	END IF;

	/*
	 * Every purpose named, in the order of first use.  Each is locked as
	 * grant_consent()'s foreign key locks it, and more: it can be neither
	 * dropped nor moved to another legal basis until this transaction ends.
	 */
	FOR p IN
		SELECT x.p AS name, count(*) AS rows, min(x.n) AS first_at
		  FROM (SELECT unnest(p_purposes) AS p, generate_series(1, v_total) AS n) x
		 GROUP BY x.p
		 ORDER BY min(x.n)
	LOOP
		SELECT pp.legal_basis INTO v_basis
		  FROM privacy_guard.purpose pp WHERE pp.name = p.name
		   FOR SHARE;
		IF v_basis IS NULL THEN
			v_unknown := v_unknown + p.rows;
			v_unknown_at := least(v_unknown_at, p.first_at);
		ELSIF v_basis <> 'consent' AND v_other IS NULL THEN
			v_other := p;
			v_other_basis := v_basis;
		END IF;
	END LOOP;
	/*
	 * An unknown purpose is not named: in an export with its columns
	 * swapped, the "purpose" would be a subject key.
	 */
	IF v_unknown > 0 THEN
		RAISE EXCEPTION 'unknown privacy_guard purpose'
			USING ERRCODE = '22023',
				  DETAIL = format('%s of %s rows name a purpose that is not defined; the first is row %s.',
								  v_unknown, v_total, v_unknown_at),
				  HINT = 'See privacy_guard.purposes for the defined purposes.';
	END IF;
	IF v_other IS NOT NULL THEN
		RAISE EXCEPTION 'purpose "%" rests on %, not on consent', v_other.name, v_other_basis
			USING ERRCODE = '22023',
				  DETAIL = format('%s of %s rows name it; the first is row %s.',
								  v_other.rows, v_total, v_other.first_at);
	END IF;

	IF v_bad > 0 THEN
		IF c.past > 0 THEN
			RAISE EXCEPTION 'valid_until must lie in the future'
				USING ERRCODE = '22023',
					  DETAIL = format('%s of %s rows have a valid_until that has passed; the first is row %s.',
									  c.past, v_total, c.past_at);
		END IF;
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._import_check(text[], text[], timestamptz[]) IS 'Internal: grant_consent()''s checks over a whole import, before anything is written';

/*
 * The writes of an import: the current state, then the ledger.  Most
 * imports record subjects that have no state for the purpose yet, so a
 * plain INSERT is tried first; if a subject already has one (or a
 * concurrent session just recorded one), that attempt is undone and one
 * INSERT ... ON CONFLICT sets the state as grant_consent() does.  A pair
 * repeated within the input fails it with cardinality_violation.
 */
CREATE FUNCTION privacy_guard._import_write(p_subjects text[], p_purposes text[],
											p_valid_until timestamptz[], p_evidence jsonb[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET work_mem = '256MB'
AS $$
BEGIN
	/* in key order: the primary key's index grows at its right edge, not all over */
	BEGIN
		INSERT INTO privacy_guard.consent_state (subject, purpose, status, valid_until)
		SELECT u.s, u.p, 'granted', u.v
		  FROM (SELECT unnest(p_subjects) AS s, unnest(p_purposes) AS p, unnest(p_valid_until) AS v) u
		 ORDER BY u.s, u.p;
	EXCEPTION WHEN unique_violation THEN
		INSERT INTO privacy_guard.consent_state AS c (subject, purpose, status, valid_until)
		SELECT u.s, u.p, 'granted', u.v
		  FROM (SELECT unnest(p_subjects) AS s, unnest(p_purposes) AS p, unnest(p_valid_until) AS v) u
		 ORDER BY u.s, u.p
		ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE
			SET status = excluded.status, valid_until = excluded.valid_until, changed_at = now(),
				changed_xid = pg_current_xact_id();
	END;
	/* ids in input order, as one call per row would take them */
	INSERT INTO privacy_guard.consent_ledger (subject, purpose, action, valid_until, evidence)
	SELECT unnest(p_subjects), unnest(p_purposes), 'grant', unnest(p_valid_until), unnest(p_evidence);
END
$$;
COMMENT ON FUNCTION privacy_guard._import_write(text[], text[], timestamptz[], jsonb[]) IS 'Internal: write a checked import into the current state and the ledger';

/*
 * The same writes without firing the consent tables' triggers, whose work
 * the import does itself, once per import instead of once per row: the
 * purpose foreign key (_import_check has found and locked every purpose),
 * the changed_xid stamp (set by _import_write) and the statement-level
 * invalidation (fired by import_consents afterwards).  Used only while
 * those are the only triggers there (_import_triggers_known).
 */
CREATE FUNCTION privacy_guard._import_write_untriggered(p_subjects text[], p_purposes text[],
														p_valid_until timestamptz[], p_evidence jsonb[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET session_replication_role = replica
AS $$
BEGIN
	PERFORM privacy_guard._import_write(p_subjects, p_purposes, p_valid_until, p_evidence);
END
$$;
COMMENT ON FUNCTION privacy_guard._import_write_untriggered(text[], text[], timestamptz[], jsonb[]) IS 'Internal: _import_write without the consent tables'' per-row triggers, whose work the import does itself';

/*
 * Whether the triggers on consent_state and consent_ledger are exactly the
 * ones whose work the import does itself: any other trigger there (added
 * later, by a newer version or by hand, one with transition tables, one
 * enabled for replicas) makes the import fire every trigger as usual; one
 * enabled always fires anyway.  Writing without triggers needs a superuser, which the
 * extension's owner is.  Functions are compared by name: some are created
 * further down this script.
 */
CREATE FUNCTION privacy_guard._import_triggers_known()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user), false)
	   AND NOT EXISTS (
		SELECT 1 FROM pg_trigger t
		 WHERE t.tgrelid IN ('privacy_guard.consent_state'::regclass,
							 'privacy_guard.consent_ledger'::regclass)
		   AND t.tgenabled <> 'D'
		   /* ENABLE ALWAYS triggers (the stamp and the invalidation) fire in replica mode too */
		   AND t.tgenabled <> 'A'
		   AND NOT (t.tgenabled = 'O' AND t.tgoldtable IS NULL AND t.tgnewtable IS NULL
					AND ((t.tgrelid = 'privacy_guard.consent_state'::regclass
						  AND t.tgfoid::regprocedure::text IN ('privacy_guard._invalidate_cache()',
															   'privacy_guard._stamp_changed_xid()'))
						 /* the ledger's own triggers: none fires on INSERT (tgtype bit 4) */
						 OR (t.tgrelid = 'privacy_guard.consent_ledger'::regclass
							 AND t.tgfoid::regprocedure::text = 'privacy_guard._ledger_append_only()'
							 AND (t.tgtype & 4) = 0)
						 OR t.tgconstraint = (SELECT k.oid FROM pg_constraint k
											   WHERE k.conrelid = 'privacy_guard.consent_state'::regclass
												 AND k.conname = 'consent_state_purpose_fkey'))))
$$;
COMMENT ON FUNCTION privacy_guard._import_triggers_known() IS 'Internal: whether an import may write without the consent tables'' per-row triggers (it does their work itself)';

/* Refuse an input that names a subject and purpose twice, saying where. */
CREATE FUNCTION privacy_guard._import_refuse_repeats(p_subjects text[], p_purposes text[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
	d record;
BEGIN
	SELECT w.n, w.first_n, count(*) OVER () AS repeats INTO d
	  FROM (SELECT u.n, first_value(u.n) OVER k AS first_n, row_number() OVER k AS k
			  FROM (SELECT unnest(p_subjects) AS s, unnest(p_purposes) AS p,
						   generate_series(1, cardinality(p_subjects)) AS n) u
			WINDOW k AS (PARTITION BY u.s, u.p ORDER BY u.n)) w
	 WHERE w.k > 1
	 ORDER BY w.n
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'the input names the same subject and purpose more than once'
			USING ERRCODE = '23505',
				  DETAIL = format('Row %s repeats row %s; %s of %s rows repeat an earlier row.',
								  d.n, d.first_n, d.repeats, cardinality(p_subjects)),
				  HINT = 'Keep one row per subject and purpose, e.g. the newest with SELECT DISTINCT ON (subject, purpose) ... ORDER BY subject, purpose, <time> DESC.';
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._import_refuse_repeats(text[], text[]) IS 'Internal: refuse an import that repeats a subject and purpose, naming row numbers only';

CREATE FUNCTION privacy_guard.import_consents(subjects text[], purposes text[],
											  valid_until timestamptz[] DEFAULT NULL,
											  evidence jsonb[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
	v_n bigint := coalesce(cardinality(subjects), 0);
	v_untriggered boolean;
BEGIN
	IF subjects IS NULL OR purposes IS NULL THEN
		RAISE EXCEPTION 'subjects and purposes must not be null' USING ERRCODE = '22023';
	END IF;
	IF array_ndims(subjects) > 1 OR array_ndims(purposes) > 1
	   OR array_ndims(valid_until) > 1 OR array_ndims(evidence) > 1 THEN
		RAISE EXCEPTION 'subjects, purposes, valid_until and evidence must be one-dimensional arrays'
			USING ERRCODE = '22023';
	END IF;
	IF cardinality(purposes) <> v_n
	   OR coalesce(cardinality(valid_until), v_n) <> v_n
	   OR coalesce(cardinality(evidence), v_n) <> v_n THEN
		RAISE EXCEPTION 'subjects, purposes, valid_until and evidence must have the same number of elements'
			USING ERRCODE = '22023',
				  DETAIL = format('subjects has %s, purposes %s, valid_until %s, evidence %s.', v_n,
								  cardinality(purposes), coalesce(cardinality(valid_until)::text, 'none (NULL)'),
								  coalesce(cardinality(evidence)::text, 'none (NULL)'));
	END IF;
	IF v_n = 0 THEN
		RETURN 0;
	END IF;

	PERFORM privacy_guard._import_check(subjects, purposes, valid_until);

	v_untriggered := privacy_guard._import_triggers_known();
	BEGIN
		IF v_untriggered THEN
			PERFORM privacy_guard._import_write_untriggered(subjects, purposes, valid_until, evidence);
		ELSE
			PERFORM privacy_guard._import_write(subjects, purposes, valid_until, evidence);
		END IF;
	EXCEPTION WHEN cardinality_violation THEN
		PERFORM privacy_guard._import_refuse_repeats(subjects, purposes);
		RAISE;
	END;

	/*
	 * Every session sees the import at its next statement: the statement
	 * trigger on consent_state that the untriggered writes did not fire,
	 * fired by a statement that writes no row.  An import larger than a
	 * session would patch its consent store by (PVG_MAX_PATCHES in
	 * consent_cache.c) makes sessions reload it at once, as a deletion
	 * does, instead of patching every subject and then reloading anyway.
	 */
	IF v_untriggered THEN
		INSERT INTO privacy_guard.consent_state SELECT * FROM privacy_guard.consent_state WHERE false;
	END IF;
	IF v_n > 20000 THEN
		DELETE FROM privacy_guard.consent_state WHERE false;
	END IF;
	RETURN v_n;
END
$$;
COMMENT ON FUNCTION privacy_guard.import_consents(text[], text[], timestamptz[], jsonb[]) IS 'Record many consents at once, all or nothing, as grant_consent() would one by one (element i of each array is row i)';

/*
 * The table form reads the source with the caller's rights (SECURITY
 * INVOKER: the caller's privileges and row-level security apply to it) and
 * hands the rows to the array form.
 */
CREATE FUNCTION privacy_guard.import_consents(source regclass)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
	v_col text;
	v_types regtype[] := '{}';
	v_type regtype;
	v_valid text := 'NULL::pg_catalog.timestamptz[]';
	v_evidence text := 'NULL::pg_catalog.jsonb[]';
	v_subjects text[];
	v_purposes text[];
	v_valid_until timestamptz[];
	v_evidences jsonb[];
	v_row bigint := 0;
	v_i integer := 0;
	r record;
BEGIN
	IF source IS NULL THEN
		RAISE EXCEPTION 'source must not be null' USING ERRCODE = '22023';
	END IF;
	/* the base type (under any domains) of each column the import reads, NULL when absent */
	FOREACH v_col IN ARRAY ARRAY['subject', 'purpose', 'valid_until', 'evidence'] LOOP
		v_i := v_i + 1;
		WITH RECURSIVE b(typ, base) AS (
			SELECT t.oid::regtype, t.typbasetype
			  FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
			 WHERE a.attrelid = source AND a.attname = v_col AND a.attnum > 0 AND NOT a.attisdropped
			UNION ALL
			SELECT t.oid::regtype, t.typbasetype FROM pg_type t JOIN b ON t.oid = b.base)
		SELECT b.typ INTO v_type FROM b WHERE b.base = 0;
		v_types[v_i] := v_type;
		IF v_i <= 2 AND v_type IS NULL THEN
			RAISE EXCEPTION 'source % has no column "%"', source, v_col
				USING ERRCODE = '42703',
					  HINT = 'The source needs columns subject and purpose, and may have valid_until (timestamptz) and evidence (jsonb).';
		END IF;
	END LOOP;
	IF v_types[3] IS NOT NULL THEN
		IF v_types[3] NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
			RAISE EXCEPTION 'column valid_until of % has type %, not timestamptz', source, v_types[3]
				USING ERRCODE = '42804';
		END IF;
		v_valid := 'pg_catalog.array_agg(s.valid_until::pg_catalog.timestamptz)';
	END IF;
	IF v_types[4] IS NOT NULL THEN
		IF v_types[4] NOT IN ('jsonb'::regtype, 'json'::regtype, 'text'::regtype) THEN
			RAISE EXCEPTION 'column evidence of % has type %, not jsonb', source, v_types[4]
				USING ERRCODE = '42804';
		END IF;
		v_evidence := 'pg_catalog.array_agg(s.evidence::pg_catalog.jsonb)';
	END IF;

	BEGIN
		EXECUTE format('SELECT pg_catalog.array_agg(s.subject::pg_catalog.text), '
					   'pg_catalog.array_agg(s.purpose::pg_catalog.text), %s, %s FROM %s s',
					   v_valid, v_evidence, source)
		   INTO v_subjects, v_purposes, v_valid_until, v_evidences;
	EXCEPTION WHEN program_limit_exceeded THEN
		/* an array (so one call) holds at most 1 GB */
		RAISE EXCEPTION 'source % is too large for one import', source
			USING ERRCODE = '54000',
				  DETAIL = 'Its rows take more than 1 GB as arrays.',
				  HINT = 'Import it in parts, e.g. by ranges of subject, in one transaction: the whole stays all or nothing.';
	WHEN data_exception THEN
		/* evidence that is not JSON: find its row without echoing it (the usual error would) */
		IF v_types[4] IS NOT NULL AND v_types[4] <> 'jsonb'::regtype THEN
			FOR r IN EXECUTE format('SELECT s.evidence::pg_catalog.text AS e FROM %s s', source) LOOP
				v_row := v_row + 1;
				BEGIN
					PERFORM r.e::jsonb;
				EXCEPTION WHEN data_exception THEN
					RAISE EXCEPTION 'evidence must be valid JSON'
						USING ERRCODE = '22P02',
							  DETAIL = format('Row %s of the source has evidence that is not.', v_row);
				END;
			END LOOP;
		END IF;
		RAISE;
	END;
	RETURN privacy_guard.import_consents(coalesce(v_subjects, '{}'), coalesce(v_purposes, '{}'),
										 v_valid_until, v_evidences);
END
$$;
COMMENT ON FUNCTION privacy_guard.import_consents(regclass) IS 'Record the consents listed in a table or view (columns subject, purpose, and optionally valid_until and evidence), all or nothing, as grant_consent() would one by one';

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

/* Whether a table has permissive policies of its own (not privacy_guard's). */
CREATE FUNCTION privacy_guard._has_own_permissive(target regclass)
RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
					WHERE p.polrelid OPERATOR(pg_catalog.=) $1 AND p.polpermissive
					  AND p.polname OPERATOR(pg_catalog.<>) ALL (ARRAY['privacy_guard_rules', 'privacy_guard_base']::name[]))
$$;
COMMENT ON FUNCTION privacy_guard._has_own_permissive(regclass) IS 'Internal: whether a table has permissive row-level security policies of its own';

/*
 * The permissive base policy (USING true) stands in for the permissive
 * policies a table without row-level security of its own does not have:
 * without one, row-level security would show no row at all.  Once the
 * table has permissive policies of its own — added before protect() or
 * after, the base would be OR-ed with them and cancel them (a tenant
 * policy would show every tenant's rows) — it goes; when the last of them
 * is dropped, it comes back (unless the table had row-level security of
 * its own before protect(): then no permissive policy means no row, as
 * PostgreSQL has it).  Run after every CREATE, ALTER and DROP POLICY; a
 * CREATE POLICY only ever takes the base away (may_create false), so that
 * a restore, which creates the policies as they were in whatever order,
 * never finds the base already there.
 */
CREATE FUNCTION privacy_guard._sync_base_policy(target regclass, owner_rls boolean,
												may_create boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_want boolean := NOT owner_rls AND NOT privacy_guard._has_own_permissive(target);
	v_has boolean := EXISTS (SELECT 1 FROM pg_policy p
							  WHERE p.polrelid = target AND p.polname = 'privacy_guard_base');
BEGIN
	IF v_has AND NOT v_want THEN
		EXECUTE format('DROP POLICY privacy_guard_base ON %s', target);
	ELSIF v_want AND NOT v_has AND may_create THEN
		EXECUTE format('CREATE POLICY privacy_guard_base ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
					   'USING (''true''::privacy_guard.base_policy) WITH CHECK (''true''::privacy_guard.base_policy)',
					   target);
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._sync_base_policy(regclass, boolean, boolean) IS 'Internal: keep the permissive base policy exactly while a protected table has no permissive policy of its own';

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
	/* a table with permissive policies of its own keeps them in charge (see _sync_base_policy) */
	IF with_base AND NOT privacy_guard._has_own_permissive(target) THEN
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
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* PL/pgSQL keeps the plan for the session: rounds call this per table */
	RETURN QUERY
		WITH RECURSIVE tree(relid) AS (
			SELECT tbl::oid
			UNION
			SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.relid)
		SELECT tree.relid FROM tree;
END
$$;
COMMENT ON FUNCTION privacy_guard._tree_oids(regclass) IS 'Internal: a table with its descendants';

/* The type a domain is over, or the type itself. */
CREATE FUNCTION privacy_guard._base_type(typ regtype)
RETURNS regtype
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	/* under every domain level, as the erasure's targets take it (targets.c) */
	WITH RECURSIVE b(oid, typtype, typbasetype) AS (
		SELECT t.oid, t.typtype, t.typbasetype FROM pg_type t WHERE t.oid = $1
		UNION ALL
		SELECT t.oid, t.typtype, t.typbasetype FROM pg_type t JOIN b ON t.oid = b.typbasetype
		 WHERE b.typtype = 'd')
	SELECT b.oid::regtype FROM b WHERE b.typtype <> 'd'
$$;
COMMENT ON FUNCTION privacy_guard._base_type(regtype) IS 'Internal: the type under a domain (at any depth), or the type itself';

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
	/* policies the owner added while the table was protected keep working */
	IF NOT owner_rls AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = target) THEN
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

	/*
	 * A table's own permissive policies, created or dropped: the base
	 * policy goes or comes back (on tables whose rules are in place: during
	 * a restore, pg_restore brings the policies as they were).
	 */
	IF TG_TAG IN ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY') THEN
		PERFORM privacy_guard._guard_suspend(true);
		FOR r IN
			SELECT p.target, t.owner_rls
			  FROM privacy_guard.protected_part p
			  JOIN privacy_guard.protected_table t ON t.relid = p.root
			 WHERE privacy_guard._policy_state(p.target, p.root, t.subject_column,
											   t.retention_column) = 'intact'
		LOOP
			PERFORM privacy_guard._sync_base_policy(r.target, r.owner_rls, TG_TAG <> 'CREATE POLICY');
		END LOOP;
		PERFORM privacy_guard._guard_suspend(false);
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
		RAISE EXCEPTION 'cannot rename or drop the subject or retention column of protected table %', v_bad
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
		/*
		 * A tagged column added to a protected table: plain values get its
		 * default tag.  With the guard on: tagging the stored values runs the
		 * owner's triggers, whose DDL must be checked like any other.  Only
		 * on a table whose rules are in place: during a restore the table's
		 * ALTER TABLE commands (keys, constraints) come before its triggers,
		 * and pg_restore brings the trigger itself (its policies come after
		 * its triggers).
		 */
		FOR r IN
			SELECT t.relid FROM privacy_guard.protected_table t
			 WHERE NOT EXISTS (SELECT 1 FROM pg_trigger g
								WHERE g.tgrelid = t.relid AND g.tgname = 'privacy_guard_default_tag')
			   AND privacy_guard._policy_state(t.relid, t.relid, t.subject_column,
											   t.retention_column) = 'intact'
		LOOP
			PERFORM privacy_guard._install_default_tag(r.relid, true);
		END LOOP;
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

/*
 * The base types of protected subject columns (other than text and
 * varchar, which hold any key as it is) of which the key spells a value
 * other than as the column shows it: ' 42', '+42', '042' for integers; an
 * upper-case, brace-wrapped or unhyphenated uuid.  The rules, the erasure
 * and the receipts know a subject by the column's text form, so a request
 * for such a key hides and erases nothing in those columns.
 */
CREATE FUNCTION privacy_guard._key_misspellings(subject text)
RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_type regtype;
	v_canon text;
	v_misspelt text[] := '{}';
BEGIN
	FOR v_type IN
		SELECT DISTINCT privacy_guard._base_type(a.atttypid)
		  FROM privacy_guard.protected_table p
		  JOIN pg_attribute a ON a.attrelid = p.relid AND a.attname = p.subject_column
		 WHERE NOT a.attisdropped
	LOOP
		CONTINUE WHEN v_type IN ('text'::regtype, 'varchar'::regtype);
		BEGIN
			EXECUTE format('SELECT ($1::%s)::text', v_type) INTO v_canon USING subject;
		EXCEPTION WHEN data_exception THEN
			CONTINUE;	/* no value of this type: not meant for these columns */
		END;
		IF v_canon <> subject THEN
			v_misspelt := v_misspelt || v_type::text;
		END IF;
	END LOOP;
	RETURN v_misspelt;
END
$$;
COMMENT ON FUNCTION privacy_guard._key_misspellings(text) IS 'Internal: the subject column types of which a key spells a value non-canonically';

/*
 * forget() refuses a misspelt key (above) when no protected subject column
 * could hold it as it is (a text or varchar one could: '042' may be a text
 * key); else a round that finds nothing of it leaves it blocked (see
 * _erase_subject), never done.  Neither the key nor its canonical form is
 * named in the error.
 */
CREATE FUNCTION privacy_guard._check_key_form(subject text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_misspelt text[];
BEGIN
	IF EXISTS (SELECT 1 FROM privacy_guard.protected_table p
				 JOIN pg_attribute a ON a.attrelid = p.relid AND a.attname = p.subject_column
				WHERE NOT a.attisdropped
				  AND privacy_guard._base_type(a.atttypid) IN ('text'::regtype, 'varchar'::regtype)) THEN
		RETURN;
	END IF;
	v_misspelt := privacy_guard._key_misspellings(subject);
	IF cardinality(v_misspelt) > 0 THEN
		RAISE EXCEPTION 'subject key is not written the way the subject columns hold it'
			USING ERRCODE = '22023',
				  DETAIL = format('The key is another spelling of a %s value; subjects are known by the column''s text form, so a request for it would find nothing.',
								  array_to_string(v_misspelt, ' or ')),
				  HINT = 'Write integers without sign, leading zeros or spaces, and uuids in lower case with hyphens and without braces.';
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._check_key_form(text) IS 'Internal: refuse a key that spells a subject column''s value non-canonically and that no subject column could hold as it is';

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
	PERFORM privacy_guard._check_key_form(subject);
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

CREATE FUNCTION privacy_guard._engine_timed_out()
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_engine_timed_out_fn'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._engine_timed_out() IS 'Internal: whether the last cancel was the engine''s own time limit (clears it)';

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
	IF method <> 'null' AND col = (SELECT t.subject_column FROM privacy_guard.protected_table t
									WHERE t.relid = tbl) THEN
		/* a hash or a mask of the key is a pseudonym, not anonymous data (GDPR recital 26) */
		RAISE EXCEPTION 'the subject column "%" is always anonymised to NULL', col
			USING ERRCODE = '22023',
				  DETAIL = 'Anything derived from the key would still single the person out.';
	END IF;
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
			WHEN 'mask' THEN format('CASE WHEN pg_catalog.length(%1$I) OPERATOR(pg_catalog.<=) 2 '
									'THEN pg_catalog.repeat(''*'', pg_catalog.length(%1$I)) '
									'ELSE pg_catalog.left(%1$I, 1) OPERATOR(pg_catalog.||) '
									'pg_catalog.repeat(''*'', pg_catalog.length(%1$I) OPERATOR(pg_catalog.-) 2) '
									'OPERATOR(pg_catalog.||) pg_catalog.right(%1$I, 1) END', col)
			WHEN 'generalize' THEN
				CASE WHEN base IN ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype)
					 THEN format('pg_catalog.date_trunc(''month'', %I)::%s', col, typ)
					 ELSE format('(CASE WHEN %1$I IS NULL OR %1$I::numeric OPERATOR(pg_catalog.=) 0 THEN %1$I::numeric '
								 'ELSE pg_catalog.trim_scale(pg_catalog.sign(%1$I::numeric) OPERATOR(pg_catalog.*) '
								 'pg_catalog.trunc(pg_catalog.abs(%1$I::numeric) OPERATOR(pg_catalog./) '
								 'pg_catalog.power(10::numeric, pg_catalog.floor(pg_catalog.log(pg_catalog.abs(%1$I::numeric))))) '
								 'OPERATOR(pg_catalog.*) pg_catalog.power(10::numeric, pg_catalog.floor(pg_catalog.log(pg_catalog.abs(%1$I::numeric))))) END)::%2$s', col, typ) END
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
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN QUERY
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
		 ORDER BY l.lvl, t.relid::text;
END
$$;
COMMENT ON FUNCTION privacy_guard._erasure_order() IS 'Internal: protected tables, referencing tables before referenced ones';

/*
 * The engine's time test on a column, as SQL: col + span <= at (passed) or
 * col + span > at (not yet), with pg_catalog's operators named in full (the
 * owner's schema may plant a closer match).
 */
CREATE FUNCTION privacy_guard._time_cond(col name, span interval, passed boolean, at timestamptz)
RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT format('%I OPERATOR(pg_catalog.+) %L::interval OPERATOR(pg_catalog.%s) %L::timestamptz',
				  $1, $2, CASE WHEN $3 THEN '<=' ELSE '>' END, $4)
$$;
COMMENT ON FUNCTION privacy_guard._time_cond(name, interval, boolean, timestamptz) IS 'Internal: SQL testing whether column + span has passed a time';

/* What a round needs to know about a protected table to erase a subject from it. */
CREATE TYPE privacy_guard.erase_target AS (
	relid		regclass,
	subject_column name,
	on_forget	text,
	hold_keep	interval,
	retention_column name,
	subject_type regtype,		/* NULL when the subject column is gone */
	base_type	regtype,
	targets		regclass[],		/* the table, and parts detached from it since */
	leaves		oid[],			/* the plain tables under them, which hold the rows */
	owner_code	boolean,		/* a trigger or rule of the owner could keep rows */
	anonymize_set text			/* on_forget anonymize: the SET list; NULL: delete */
);

/*
 * The protected tables in erasure order, as a round erases subjects from
 * them, with what the erasure needs to know of each (see the type above):
 * read from the system caches in C (targets.c), since a round runs in a
 * fresh worker, where a dozen small catalog queries cost more to plan
 * than the erasure itself.
 */
CREATE FUNCTION privacy_guard._erase_targets()
RETURNS SETOF privacy_guard.erase_target
AS 'MODULE_PATHNAME', 'pvg_erase_targets'
LANGUAGE C STABLE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION privacy_guard._erase_targets() IS 'Internal: the protected tables a round erases subjects from, in erasure order';

/*
 * Receipt counts of two passes of one request, per table and action:
 * deleted and anonymised rows add up; restricted rows are the later
 * pass's count (the rows a hold still keeps), and vanish at zero.
 */
CREATE FUNCTION privacy_guard._merge_counts(earlier jsonb, later jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(jsonb_object_agg(y.tbl, y.acts), '{}')
	  FROM (SELECT x.tbl, jsonb_object_agg(x.act, x.n) AS acts
			  FROM (SELECT u.tbl, u.act,
						   CASE WHEN u.act = 'restricted' THEN coalesce(sum(u.n) FILTER (WHERE u.src = 2), 0)
								ELSE sum(u.n) END AS n
					  FROM (SELECT 1 AS src, t.key AS tbl, a.key AS act, a.value::bigint AS n
							  FROM jsonb_each($1) t, jsonb_each_text(t.value) a
							UNION ALL
							SELECT 2, t.key, a.key, a.value::bigint
							  FROM jsonb_each($2) t, jsonb_each_text(t.value) a) u
					 GROUP BY u.tbl, u.act) x
			 WHERE x.n > 0
			 GROUP BY x.tbl) y
$$;
COMMENT ON FUNCTION privacy_guard._merge_counts(jsonb, jsonb) IS 'Internal: add up the receipt counts of two passes of a request';

/*
 * The condition an engine statement or subject_report finds a subject's
 * rows by, for a subject column (expr, of base type typ) and the key as $1:
 * the rules know a row's subject by its value's text form (its bytes for
 * text and varchar), so the rows found must be exactly the rows the rules
 * hide.  The type's own equality (which an index can serve) may be coarser:
 * a column under a non-deterministic collation has 'BOB' = 'bob', numeric
 * has 1.0 = 1.00, float8 has -0 = 0; so the text form must match too,
 * compared byte by byte (COLLATE "C"), or another person's rows would be
 * erased or reported.
 */
CREATE FUNCTION privacy_guard._subject_cond(expr text, typ regtype)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.format('(%1$s OPERATOR(pg_catalog.=) $1::%2$s AND '
							 'pg_catalog.format(''%%s'', %1$s) COLLATE pg_catalog."C" OPERATOR(pg_catalog.=) $1)',
							 $1, $2)
$$;
COMMENT ON FUNCTION privacy_guard._subject_cond(text, regtype) IS 'Internal: the condition finding a subject''s rows by the text form the rules know it by';

/*
 * Whether no other transaction of the database can still commit, or read
 * after the erasure, a row of the subject that this round's statements
 * could not see.  A forget request becomes done only in a round for which
 * this holds both before its statements take their snapshots and after
 * they ran; otherwise it stays pending (its rows hidden) and the next
 * round erases again.  Not settled while, in the database:
 *  - a transaction is prepared (PREPARE TRANSACTION): its rows are
 *	  invisible until COMMIT PREPARED, and when it began is not known;
 *  - another transaction began before the request's first erasure
 *	  (erased_at): it may have read the rows then and write them again;
 *  - another transaction, whenever it began, has a transaction id and
 *	  holds a write lock on a table the subject's rows can be in (rels, and
 *	  with with_tagged every table with a tagged column):
 *	  it may hold an uncommitted row of the subject;
 *  - another transaction holds a snapshot between its statements (a
 *	  REPEATABLE READ transaction, an open cursor): it may still see rows
 *	  the round erases, and read them once the request no longer hides
 *	  them.
 * Autovacuum writes no rows of tables.
 */
CREATE FUNCTION privacy_guard._writers_settled(dboid oid, erased_at timestamptz, rels oid[],
											   with_tagged boolean)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* the functions behind pg_stat_activity, pg_locks and pg_prepared_xacts, without their joins */
	RETURN NOT EXISTS (
			SELECT 1 FROM pg_prepared_xact() p
			 WHERE p.dbid = _writers_settled.dboid)
	   AND NOT EXISTS (
			SELECT 1 FROM pg_stat_get_activity(NULL) a
			 WHERE a.datid = _writers_settled.dboid
			   AND a.pid <> pg_backend_pid()
			   AND a.backend_type <> 'autovacuum worker'
			   AND (a.xact_start < _writers_settled.erased_at
					OR (a.backend_xmin IS NOT NULL AND a.state LIKE 'idle in transaction%')
					OR (a.backend_xid IS NOT NULL
						AND EXISTS (
							SELECT 1 FROM pg_lock_status() l
							 WHERE l.pid = a.pid
							   AND l.locktype = 'relation'
							   AND l.database = _writers_settled.dboid
							   AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock',
											  'ExclusiveLock', 'AccessExclusiveLock')
							   AND (l.relation = ANY (_writers_settled.rels)
									/* tables with tagged columns: looked up only when someone writes */
									OR (_writers_settled.with_tagged
										AND l.relation IN (SELECT c.relid::oid
															 FROM privacy_guard._tagged_columns() c)))))));
END
$$;
COMMENT ON FUNCTION privacy_guard._writers_settled(oid, timestamptz, oid[], boolean) IS 'Internal: whether no transaction of the database in flight can still commit or read rows of a subject being erased from the given tables (a forget request may close)';

/*
 * Carry out one forget request in every protected table, or nothing: any
 * error (a foreign key from an unprotected table, a trigger or rule that
 * keeps rows) rolls the whole request back and leaves it blocked, its rows
 * still hidden.  Rows in a table under a legal hold stay until their
 * retention_column + keep; the request is then `restricted` and later
 * rounds finish it.
 */
CREATE FUNCTION privacy_guard._erase_subject(req privacy_guard.erasure_request, secret bytea,
		targets privacy_guard.erase_target[], with_tagged boolean)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t privacy_guard.erase_target;
	v_type regtype;
	v_canon text;
	v_last_base regtype;
	v_cond text;
	v_held text;
	v_target regclass;
	v_n bigint;
	v_part_n bigint;
	v_left bigint;
	v_kept bigint;
	v_part_kept bigint;
	v_restricted bigint := 0;
	v_counts jsonb := '{}';
	v_touched oid[] := '{}';
	v_table regclass;
	v_own_error text;
	v_constraint text;
	v_schema text;
	v_relname text;
	v_start timestamptz := clock_timestamp();
	v_settled boolean;
	v_rels oid[];
	v_consents bigint;
	v_dboid oid := (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
BEGIN
	/*
	 * Before any statement of this round takes its snapshot: a row committed
	 * by a transaction that has ended by now is seen by every statement
	 * below; one still in flight blocks the closing (see _writers_settled).
	 */
	v_rels := ARRAY(SELECT DISTINCT x FROM unnest(_erase_subject.targets) tg, unnest(tg.targets::oid[] || tg.leaves) x);
	v_settled := privacy_guard._writers_settled(v_dboid, coalesce(req.erased_at, v_start), v_rels, with_tagged);
	BEGIN
		FOREACH t IN ARRAY targets LOOP
			v_table := t.relid;
			v_type := t.subject_type;
			IF v_type IS NULL THEN
				/* the subject column is gone: the same error as elsewhere, and blocked */
				PERFORM privacy_guard._column_type(t.relid, t.subject_column, 'subject');
			END IF;
			IF v_last_base IS DISTINCT FROM t.base_type THEN
				v_last_base := t.base_type;
				BEGIN
					/* the base type: a domain's checks are the table owner's code */
					EXECUTE format('SELECT ($1::%s)::text', t.base_type) INTO v_canon USING req.subject;
				EXCEPTION WHEN data_exception THEN
					v_canon := NULL;	/* no value of the column has this key as its text form */
				END;
			END IF;
			/* the rules hide a row by its value's text form: '078' is not subject 78 */
			CONTINUE WHEN v_canon IS DISTINCT FROM req.subject;
			/* operators named in full: the owner's schema may plant a closer match */
			v_cond := privacy_guard._subject_cond(quote_ident(t.subject_column), v_type);
			v_held := 'false';
			IF t.hold_keep IS NOT NULL THEN
				/* rows within the legal hold are kept, restricted */
				v_held := privacy_guard._time_cond(t.retention_column, t.hold_keep, false, now());
			END IF;
			v_n := 0;
			v_kept := 0;
			/* the table with its partitions and children, and parts detached from it since */
			FOREACH v_target IN ARRAY t.targets LOOP
				v_table := v_target;
				v_part_kept := 0;
				BEGIN
					v_part_n := privacy_guard._exec_as_owner(v_target,
							format('%s WHERE %s AND (%s) IS NOT TRUE',
								   CASE WHEN t.anonymize_set IS NULL THEN format('DELETE FROM %s', v_target)
										ELSE format('UPDATE %s SET %s', v_target, t.anonymize_set) END,
								   v_cond, v_held),
							req.subject, secret);
				EXCEPTION WHEN foreign_key_violation THEN
					/*
					 * Rows a legal hold keeps in a protected table still refer
					 * to these: they stay too (hidden) until the hold lets go
					 * of them.  Any other reference blocks the request (below).
					 */
					GET STACKED DIAGNOSTICS v_schema = SCHEMA_NAME, v_relname = TABLE_NAME;
					IF NOT EXISTS (
							SELECT 1 FROM privacy_guard.protected_part pp
							  JOIN privacy_guard.protected_table p ON p.relid = pp.root
							  JOIN pg_class c ON c.oid = pp.target
							  JOIN pg_namespace n ON n.oid = c.relnamespace
							 WHERE c.relname = v_relname AND n.nspname = v_schema
							   AND p.hold_keep IS NOT NULL) THEN
						RAISE;
					END IF;
					v_part_n := 0;
					v_part_kept := privacy_guard._exec_as_owner(v_target,
							format('SELECT pg_catalog.count(*) FROM %s WHERE %s', v_target, v_cond),
							req.subject, NULL);
				END;
				/*
				 * A trigger or rule of the owner may have kept rows: look.
				 * Without either, the DELETE or UPDATE took every row its
				 * snapshot saw (rows committed since are the settling's job).
				 */
				v_left := 0;
				IF t.owner_code OR v_part_kept > 0 THEN
					v_left := privacy_guard._exec_as_owner(v_target,
								format('SELECT pg_catalog.count(*) FROM %s WHERE %s AND (%s) IS NOT TRUE',
									   v_target, v_cond, v_held),
								req.subject, NULL);
				END IF;
				IF v_left > v_part_kept THEN
					v_own_error := format('table %s kept %s of the subject''s rows', v_target, v_left - v_part_kept);
					RAISE EXCEPTION '%', v_own_error
						USING ERRCODE = '55000',
							  DETAIL = 'A trigger or rule on the table prevented the erasure.';
				END IF;
				IF t.hold_keep IS NOT NULL AND v_part_kept = 0 THEN
					v_part_kept := privacy_guard._exec_as_owner(v_target,
							format('SELECT pg_catalog.count(*) FROM %s WHERE %s AND (%s)', v_target, v_cond, v_held),
							req.subject, NULL);
				END IF;
				v_n := v_n + v_part_n;
				v_kept := v_kept + v_part_kept;
			END LOOP;
			IF v_n > 0 THEN
				/* the old row versions live on in the tables until vacuumed */
				v_touched := v_touched || t.leaves;
			END IF;
			v_table := t.relid;
			v_restricted := v_restricted + v_kept;
			IF v_kept > 0 THEN
				/* a later pass's count of kept rows replaces this one (see _merge_counts) */
				v_counts := v_counts || jsonb_build_object(t.relid::text,
					jsonb_build_object('restricted', v_kept) ||
					CASE WHEN v_n > 0 THEN jsonb_build_object(
						CASE t.on_forget WHEN 'delete' THEN 'deleted' ELSE 'anonymized' END, v_n)
						 ELSE '{}' END);
			ELSIF v_n > 0 THEN
				v_counts := v_counts || jsonb_build_object(t.relid::text,
					jsonb_build_object(CASE t.on_forget WHEN 'delete' THEN 'deleted' ELSE 'anonymized' END, v_n));
			END IF;
		END LOOP;
		/* the subject's tagged values, in every tagged column of the database */
		IF with_tagged THEN
			BEGIN
				SELECT v_counts || e.counts, v_touched || e.touched INTO v_counts, v_touched
				  FROM privacy_guard._erase_tagged(req.subject, secret) e;
			EXCEPTION WHEN object_not_in_prerequisite_state THEN
				/* _erase_tagged's own (class 55: 55000, or 55P03 for locked rows): a column, an SQLSTATE */
				v_own_error := SQLERRM;
				RAISE EXCEPTION '%', v_own_error USING ERRCODE = '55000';
			END;
		END IF;
		/* the receipt keeps the history, with the key replaced by its digest */
		WITH ledger AS (
			UPDATE privacy_guard.consent_ledger l SET subject = req.subject_digest
			 WHERE l.subject = req.subject RETURNING 1),
		current AS (
			DELETE FROM privacy_guard.consent_state c WHERE c.subject = req.subject RETURNING 1)
		SELECT (SELECT count(*) FROM ledger) + (SELECT count(*) FROM current) INTO v_consents;
		/*
		 * Checked again now that the statements have run: a transaction that
		 * began writing during them may hold an uncommitted row of the
		 * subject that none of them could see (see _writers_settled).
		 */
		v_settled := v_settled AND privacy_guard._writers_settled(v_dboid, coalesce(req.erased_at, v_start), v_rels,
																	   with_tagged);
		IF v_restricted > 0 OR NOT v_settled THEN
			/* the raw key stays: later rounds finish the request */
			UPDATE privacy_guard.erasure_request r
			   SET state = CASE WHEN v_restricted > 0 THEN 'restricted' ELSE 'pending' END,
				   changed_xid = pg_current_xact_id(),
				   counts = CASE WHEN r.counts = '{}' THEN v_counts ELSE privacy_guard._merge_counts(r.counts, v_counts) END, error = NULL,
				   erased_at = coalesce(r.erased_at, v_start),
				   touched = ARRAY(SELECT DISTINCT x FROM unnest(r.touched || v_touched) AS x)
			 WHERE r.id = req.id;
			RETURN CASE WHEN v_restricted > 0 THEN 'restricted' ELSE 'pending' END;
		ELSIF req.erased_at IS NULL AND req.counts = '{}' AND v_counts = '{}' AND v_consents = 0
			  AND cardinality(privacy_guard._key_misspellings(req.subject)) > 0 THEN
			/*
			 * Nothing of the key anywhere, and it spells a value of a
			 * subject column other than as the column shows it: the request
			 * was meant for that value and erased nothing, so it must not
			 * read done (forget() refuses such keys when no text subject
			 * column could hold them).
			 */
			UPDATE privacy_guard.erasure_request r
			   SET state = 'blocked', changed_xid = pg_current_xact_id(),
				   error = format('the key is another spelling of a %s value and nothing was found under it: file the request with the key as the subject column shows it',
								  array_to_string(privacy_guard._key_misspellings(req.subject), ' or '))
			 WHERE r.id = req.id;
			RETURN 'blocked';
		ELSE
			UPDATE privacy_guard.erasure_request r
			   SET state = 'done', completed_at = clock_timestamp(), changed_xid = pg_current_xact_id(),
				   counts = CASE WHEN r.counts = '{}' THEN v_counts ELSE privacy_guard._merge_counts(r.counts, v_counts) END,
				   erased_at = coalesce(r.erased_at, v_start),
				   subject = NULL, error = NULL,
				   touched = ARRAY(SELECT DISTINCT x FROM unnest(r.touched || v_touched) AS x),
				   unreachable_at = CASE WHEN r.touched || v_touched = '{}' THEN clock_timestamp() END
			 WHERE r.id = req.id;
			RETURN 'done';
		END IF;
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
		WHEN query_canceled THEN
			/* only the engine's own time limit; a cancel from anyone else goes on */
			IF NOT privacy_guard._engine_timed_out() THEN
				RAISE;
			END IF;
			UPDATE privacy_guard.erasure_request r
			   SET state = 'blocked',
				   error = format('erasing from %s took longer than privacy_guard.engine_time_limit; the next round retries', v_table)
			 WHERE r.id = req.id;
		WHEN OTHERS THEN
			/* only our own message is kept: the owner's code may have put data in its own */
			UPDATE privacy_guard.erasure_request r
			   SET state = 'blocked',
				   error = CASE WHEN SQLSTATE = '55000' AND SQLERRM = v_own_error THEN SQLERRM
								ELSE format('error %s while erasing from %s', SQLSTATE, v_table) END
			 WHERE r.id = req.id;
	END;
	RETURN 'blocked';
END
$$;
COMMENT ON FUNCTION privacy_guard._erase_subject(privacy_guard.erasure_request, bytea, privacy_guard.erase_target[], boolean) IS 'Internal: carry out one forget request, or nothing; returns the request''s state';

CREATE FUNCTION privacy_guard.set_legal_hold(tbl regclass, keep interval, purpose text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t privacy_guard.protected_table;
BEGIN
	IF tbl IS NULL THEN
		RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = '22004';
	END IF;
	SELECT * INTO t FROM privacy_guard.protected_table p WHERE p.relid = tbl;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table % is not protected', tbl USING ERRCODE = '55000';
	END IF;
	PERFORM privacy_guard._check_table_owner(tbl);
	IF keep IS NULL THEN
		/* the hold ends: what it kept is erased by the next round */
		UPDATE privacy_guard.protected_table p SET hold_keep = NULL, hold_purpose = NULL
		 WHERE p.relid = tbl;
		RETURN;
	END IF;
	IF t.retention_column IS NULL THEN
		RAISE EXCEPTION 'table % has no retention_column', tbl
			USING ERRCODE = '55000',
				  DETAIL = 'A legal hold keeps rows until retention_column + keep.',
				  HINT = 'Protect the table again with a retention_column.';
	END IF;
	IF keep <= interval '0' THEN
		RAISE EXCEPTION 'legal hold must keep rows for a positive interval' USING ERRCODE = '22023';
	END IF;
	IF privacy_guard._check_purpose(purpose) <> 'legal_obligation' THEN
		RAISE EXCEPTION 'purpose "%" has legal basis %, not legal_obligation', purpose,
			privacy_guard._check_purpose(purpose)
			USING ERRCODE = '22023',
				  DETAIL = 'Rows kept after retention or a forget request may only serve a legal obligation.';
	END IF;
	UPDATE privacy_guard.protected_table p
	   SET hold_keep = keep, hold_purpose = purpose,
		   purposes = CASE WHEN purpose = ANY (p.purposes) THEN p.purposes ELSE p.purposes || purpose END
	 WHERE p.relid = tbl;
END
$$;
COMMENT ON FUNCTION privacy_guard.set_legal_hold(regclass, interval, text) IS 'Keep a table''s expired or forgotten rows, restricted to a legal_obligation purpose, until retention_column + keep (NULL keep ends the hold)';

/* Rows of a table past retention but kept under its legal hold, now. */
CREATE FUNCTION privacy_guard._restricted_rows(tbl regclass)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t privacy_guard.protected_table;
BEGIN
	SELECT * INTO t FROM privacy_guard.protected_table p WHERE p.relid = tbl;
	IF t.hold_keep IS NULL OR t.retention IS NULL THEN
		RETURN 0;
	END IF;
	RETURN privacy_guard._exec_as_owner(tbl,
		format('SELECT pg_catalog.count(*) FROM %s WHERE %s AND %s', tbl,
			   privacy_guard._time_cond(t.retention_column, t.retention, true, now()),
			   privacy_guard._time_cond(t.retention_column, t.hold_keep, false, now())),
		NULL, NULL);
END
$$;
COMMENT ON FUNCTION privacy_guard._restricted_rows(regclass) IS 'Internal: rows past retention kept under a legal hold';

CREATE FUNCTION privacy_guard._batch_as_owner(tbl regclass, sql text, after tid, secret bytea,
		OUT matched bigint, OUT processed bigint, OUT last tid)
RETURNS record
AS 'MODULE_PATHNAME', 'pvg_batch_as_owner'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._batch_as_owner(regclass, text, tid, bytea) IS 'Internal: run one purge batch with the table owner''s rights';

/*
 * Where purging goes: every plain table of each protected tree that has a
 * retention (a partitioned root holds no rows), and of parts detached from
 * it since, in erasure order, each with the registered table whose rules
 * it follows.
 */
CREATE FUNCTION privacy_guard._purge_targets(tbl regclass DEFAULT NULL)
RETURNS TABLE (part regclass, root regclass)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN QUERY
		SELECT x.part::regclass, o.relid
		  FROM privacy_guard._erasure_order() WITH ORDINALITY AS o
		 CROSS JOIN LATERAL (
				SELECT privacy_guard._tree_oids(o.relid) AS part
				UNION
				/* parts detached since, which still carry the rules */
				SELECT privacy_guard._tree_oids(pp.target)
				  FROM privacy_guard.protected_part pp WHERE pp.root = o.relid) AS x
		  JOIN pg_class c ON c.oid = x.part AND c.relkind = 'r'
		 WHERE o.retention IS NOT NULL AND ($1 IS NULL OR o.relid = $1)
		 ORDER BY o.ordinality, x.part;
END
$$;
COMMENT ON FUNCTION privacy_guard._purge_targets(regclass) IS 'Internal: the tables a round purges, in erasure order';

/*
 * One purge batch: up to batch rows of part past retention (and past the
 * legal hold, if any) at round_at, after position after, deleted or
 * anonymised as the table's registration says.  Rows locked by others are
 * skipped (the next round retries).  Returns the rows taken, the rows
 * deleted or anonymised, where the batch stopped, and an error (an SQLSTATE
 * and the table, never data) instead of raising it.  Shared by the worker,
 * which commits after each batch, and run_maintenance().
 */
CREATE FUNCTION privacy_guard._expire_batch(part regclass, root regclass, round_at timestamptz,
		after tid, batch integer, secret bytea,
		OUT matched bigint, OUT processed bigint, OUT last tid, OUT action text, OUT error text)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t privacy_guard.protected_table;
	v_cond text;
	v_sql text;
	v_dml text;
BEGIN
	matched := 0;
	processed := 0;
	SELECT * INTO t FROM privacy_guard.protected_table p WHERE p.relid = root;
	IF NOT FOUND OR t.retention IS NULL THEN
		RETURN;				/* unprotected since the round began */
	END IF;
	v_cond := privacy_guard._time_cond(t.retention_column, t.retention, true, round_at);
	IF t.hold_keep IS NOT NULL THEN
		/* under a legal hold, expired rows are kept (restricted) until retention_column + keep */
		v_cond := v_cond || ' AND ' || privacy_guard._time_cond(t.retention_column, t.hold_keep, true, round_at);
	END IF;
	IF t.on_expiry = 'delete' THEN
		action := 'deleted';
		v_dml := format('DELETE FROM ONLY %s', part);
	ELSE
		/* once: anonymising cuts the subject, and rows without one are done */
		action := 'anonymized';
		v_cond := v_cond || format(' AND %I IS NOT NULL', t.subject_column);
		v_dml := format('UPDATE ONLY %s SET %s', part, privacy_guard._anonymize_set(root));
	END IF;
	v_sql := format('WITH b AS MATERIALIZED (SELECT ctid FROM ONLY %1$s WHERE ctid OPERATOR(pg_catalog.>) $1 AND %2$s '
					'LIMIT %3$s FOR UPDATE SKIP LOCKED), '
					'd AS (%4$s WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT b.ctid FROM b)) RETURNING 1) '
					'SELECT (SELECT pg_catalog.count(*) FROM b), (SELECT pg_catalog.count(*) FROM d), (SELECT pg_catalog.max(b.ctid) FROM b)',
					part, v_cond, batch, v_dml);
	BEGIN
		SELECT r.matched, r.processed, r.last INTO matched, processed, last
		  FROM privacy_guard._batch_as_owner(part, v_sql, after, secret) r;
	EXCEPTION
	WHEN query_canceled THEN
		/* only the engine's own time limit; a cancel from anyone else goes on */
		IF NOT privacy_guard._engine_timed_out() THEN
			RAISE;
		END IF;
		matched := 0;
		processed := 0;
		last := NULL;
		error := format('purging %s took longer than privacy_guard.engine_time_limit', part);
		RETURN;
	WHEN OTHERS THEN
		/* the owner's trigger or rule may have put data in the message: keep the SQLSTATE */
		matched := 0;
		processed := 0;
		last := NULL;
		error := format('error %s while purging %s', SQLSTATE, part);
		RETURN;
	END;
	IF processed < matched AND t.on_expiry = 'delete' THEN
		error := format('table %s kept %s rows past retention: a trigger or rule prevented the purge',
						part, matched - processed);
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._expire_batch(regclass, regclass, timestamptz, tid, integer, bytea) IS 'Internal: one purge batch of one table';


/*
 * Forget requests that are due, each in full or not at all, and how they
 * ended: all of them, or (the worker, which commits between calls) at most
 * max_requests with ids above after_id; last_id is the last one taken,
 * NULL when none was left.
 */
CREATE FUNCTION privacy_guard._forget_due(round_at timestamptz, secret bytea,
		after_id bigint DEFAULT 0, max_requests integer DEFAULT NULL,
		OUT done integer, OUT blocked integer, OUT restricted integer, OUT last_id bigint)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r privacy_guard.erasure_request;
	v_state text;
	v_targets privacy_guard.erase_target[];
	v_tagged boolean;
BEGIN
	done := 0;
	blocked := 0;
	restricted := 0;
	FOR r IN
		SELECT * FROM privacy_guard.erasure_request e
		 WHERE e.state IN ('pending', 'blocked', 'restricted') AND e.subject IS NOT NULL
		   AND e.due <= round_at AND e.id > after_id
		 ORDER BY e.id
		 LIMIT max_requests
	LOOP
		last_id := r.id;
		IF v_targets IS NULL THEN
			/* what every request needs, looked up once per round */
			v_targets := ARRAY(SELECT x FROM privacy_guard._erase_targets() x);
			/*
			 * One index probe: any table column (or domain) of a tagged type
			 * or an array of one at all?  (Arrays of domains over a tagged
			 * type need the domain, found here.)
			 */
			v_tagged := EXISTS (SELECT 1 FROM pg_depend d
								 WHERE d.refclassid = 'pg_type'::regclass
								   AND d.refobjid IN ('privacy_guard.tagged_text'::regtype,
													  'privacy_guard.tagged_date'::regtype,
													  'privacy_guard.tagged_numeric'::regtype,
													  'privacy_guard.tagged_jsonb'::regtype,
													  'privacy_guard.tagged_text[]'::regtype,
													  'privacy_guard.tagged_date[]'::regtype,
													  'privacy_guard.tagged_numeric[]'::regtype,
													  'privacy_guard.tagged_jsonb[]'::regtype)
								   AND d.classid IN ('pg_class'::regclass, 'pg_type'::regclass)
								   AND d.deptype = 'n');
		END IF;
		v_state := privacy_guard._erase_subject(r, secret, v_targets, v_tagged);
		IF v_state = 'done' THEN
			done := done + 1;
		ELSIF v_state = 'restricted' THEN
			restricted := restricted + 1;
		ELSIF v_state = 'blocked' THEN
			blocked := blocked + 1;
		END IF;			/* pending: erased, waiting for older transactions to end */
	END LOOP;
END
$$;
COMMENT ON FUNCTION privacy_guard._forget_due(timestamptz, bytea, bigint, integer) IS 'Internal: carry out the forget requests that are due (all, or a chunk of them)';

/*
 * The end of a round: receipts learn when erased rows became physically
 * unreachable (every table the erasure wrote to vacuumed since), and
 * receipts older than privacy_guard.log_retention are dropped.
 */
CREATE FUNCTION privacy_guard._close_receipts()
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_pruned bigint;
	v_digests text[];
	/* the setting (shown with its unit, which interval input reads), or its default */
	v_horizon timestamptz := now() - coalesce(pg_catalog.current_setting('privacy_guard.log_retention', true)::interval,
											  interval '1095 days');
BEGIN
	UPDATE privacy_guard.erasure_request e
	   SET unreachable_at = now()
	 WHERE e.state = 'done' AND e.unreachable_at IS NULL
	   AND NOT EXISTS (SELECT 1 FROM unnest(e.touched) AS x(relid)
					   WHERE EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = x.relid)
						 AND coalesce(greatest(pg_stat_get_last_vacuum_time(x.relid),
											   pg_stat_get_last_autovacuum_time(x.relid)),
									  '-infinity') < e.completed_at);
	WITH gone AS (
		DELETE FROM privacy_guard.erasure_request e
		 WHERE e.state = 'done' AND e.unreachable_at IS NOT NULL
		   AND e.completed_at < v_horizon
		RETURNING e.subject_digest)
	SELECT count(*), array_agg(DISTINCT g.subject_digest) INTO v_pruned, v_digests FROM gone g;
	IF v_pruned > 0 THEN
		/*
		 * With the receipt goes the consent history kept under its digest
		 * (the evidence that processing before the erasure was lawful),
		 * unless another request of the same subject is still kept.  The
		 * ledger lets privacy_guard itself delete, nobody else.
		 */
		PERFORM privacy_guard._guard_suspend(true);
		DELETE FROM privacy_guard.consent_ledger l
		 WHERE l.subject = ANY (v_digests)
		   AND NOT EXISTS (SELECT 1 FROM privacy_guard.erasure_request e WHERE e.subject_digest = l.subject);
		PERFORM privacy_guard._guard_suspend(false);
	END IF;
	RETURN v_pruned;
END
$$;
COMMENT ON FUNCTION privacy_guard._close_receipts() IS 'Internal: mark receipts whose rows are unreachable, drop those past log retention with the consent history kept under their digest';

/* Add one batch's outcome to a round's result (keys: the registered tables). */
CREATE FUNCTION privacy_guard._add_batch(result jsonb, root regclass, action text, n bigint, error text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN $5 IS NOT NULL
				THEN jsonb_set($1, ARRAY['errors', $2::text], to_jsonb($5))
				WHEN $4 > 0
				THEN jsonb_set($1, ARRAY['expired', $2::text],
							   jsonb_build_object($3, coalesce(($1 #>> ARRAY['expired', $2::text, $3])::bigint, 0) + $4))
				ELSE $1 END
$$;
COMMENT ON FUNCTION privacy_guard._add_batch(jsonb, regclass, text, bigint, text) IS 'Internal: count one purge batch into a round''s result';

/* The worker counts each batch in worker_status as it commits, so a crash loses no count. */
CREATE FUNCTION privacy_guard._count_batch(action text, n bigint)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
	INSERT INTO privacy_guard.worker_round AS w (rows_deleted, rows_anonymized)
	SELECT CASE WHEN $1 = 'deleted' THEN $2 ELSE 0 END, CASE WHEN $1 = 'anonymized' THEN $2 ELSE 0 END
	 WHERE $2 > 0
	ON CONFLICT (onerow) DO UPDATE
		SET rows_deleted = w.rows_deleted + excluded.rows_deleted,
			rows_anonymized = w.rows_anonymized + excluded.rows_anonymized
$$;
COMMENT ON FUNCTION privacy_guard._count_batch(text, bigint) IS 'Internal: count a committed purge batch in worker_status';

/*
 * Keep a round in round_history, and drop rows older than
 * privacy_guard.history_retention.  result is the round's outcome as
 * run_maintenance() returns it; tbl the one table it was limited to (rows
 * restricted are counted in it only), or NULL; failed an SQLSTATE that ended a step of
 * the round early (or NULL).  Errors are counted by SQLSTATE: a purge
 * batch's error names it; a batch over privacy_guard.engine_time_limit
 * counts as 57014 (query_canceled), rows a trigger or rule kept from the
 * purge as 09000 (triggered_action_exception).  Blocked forget requests
 * are counted in requests_blocked (their reasons are in erasure_requests).
 */
CREATE FUNCTION privacy_guard._record_round(result jsonb, tbl regclass, started timestamptz, run_by text, failed text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	/* the setting (shown with its unit, which interval input reads), or its default */
	v_horizon timestamptz := now() - coalesce(pg_catalog.current_setting('privacy_guard.history_retention', true)::interval,
											  interval '30 days');
	v_tables jsonb;
	v_restricted jsonb;
	v_errors jsonb;
BEGIN
	SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}') INTO v_tables
	  FROM jsonb_each(result -> 'expired') e
	 WHERE e.key NOT IN ('tagged', 'tagged_errors') AND jsonb_typeof(e.value) = 'object';
	SELECT coalesce(jsonb_object_agg(t.relid::text, jsonb_build_object('restricted', t.n)), '{}') INTO v_restricted
	  FROM (SELECT p.relid, privacy_guard._restricted_rows(p.relid) AS n
			  FROM privacy_guard.protected_table p
			 WHERE p.hold_keep IS NOT NULL AND (tbl IS NULL OR p.relid = tbl)) t
	 WHERE t.n > 0;
	SELECT coalesce(jsonb_object_agg(x.code, x.n), '{}') INTO v_errors
	  FROM (SELECT c.code, count(*) AS n
			  FROM (SELECT CASE WHEN e.value ~ '^error [0-9A-Z]{5} '
								THEN substring(e.value FROM 7 FOR 5)
								WHEN e.value ~ 'took longer than privacy_guard.engine_time_limit' THEN '57014'
								WHEN e.value ~ 'a trigger or rule prevented the purge' THEN '09000'
								ELSE 'XX000' END AS code
					  FROM jsonb_each_text(result -> 'errors') e
					UNION ALL
					SELECT e.value FROM jsonb_each_text(result #> '{expired,tagged_errors}') e
					UNION ALL
					SELECT failed WHERE failed IS NOT NULL) c
			 GROUP BY c.code) x;
	/* a table's restricted rows beside what was purged from it */
	SELECT coalesce(jsonb_object_agg(k.key, coalesce(v_tables -> k.key, '{}') || coalesce(v_restricted -> k.key, '{}')), '{}')
	  INTO v_tables
	  FROM (SELECT jsonb_object_keys(v_tables) UNION SELECT jsonb_object_keys(v_restricted)) AS k(key);

	INSERT INTO privacy_guard.round_history (started_at, duration, run_by, tables, rows_deleted, rows_anonymized,
											 rows_restricted, tagged_expired, requests_done, requests_blocked,
											 requests_restricted, errors)
	SELECT started, clock_timestamp() - started, run_by, v_tables,
		   (SELECT coalesce(sum((v.value ->> 'deleted')::bigint), 0) FROM jsonb_each(v_tables) v),
		   (SELECT coalesce(sum((v.value ->> 'anonymized')::bigint), 0) FROM jsonb_each(v_tables) v),
		   (SELECT coalesce(sum((v.value ->> 'restricted')::bigint), 0) FROM jsonb_each(v_tables) v),
		   (SELECT coalesce(sum(v.value::text::bigint), 0) FROM jsonb_each(result #> '{expired,tagged}') v),
		   coalesce((result ->> 'requests_done')::integer, 0),
		   coalesce((result ->> 'requests_blocked')::integer, 0),
		   coalesce((result ->> 'requests_restricted')::integer, 0),
		   v_errors;
	DELETE FROM privacy_guard.round_history h WHERE h.started_at < v_horizon;
END
$$;
COMMENT ON FUNCTION privacy_guard._record_round(jsonb, regclass, timestamptz, text, text) IS 'Internal: keep a round in round_history and drop rows past privacy_guard.history_retention';

/*
 * The steps of run_maintenance()'s round after its purge batches: tagged
 * values past their retain-until, the forget requests due at round_at, and
 * the receipts.  The worker runs the same steps, the forget requests in
 * chunks of their own transactions (_worker_forget, _worker_round).  Returns result with the
 * tagged counts and the requests' outcome added.
 */
CREATE FUNCTION privacy_guard._finish_round(result jsonb, tbl regclass, round_at timestamptz, secret bytea)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	f record;
BEGIN
	result := jsonb_set(result, '{expired}',
						(result -> 'expired') || privacy_guard._erase_tagged_expired(tbl, round_at));
	f := privacy_guard._forget_due(round_at, secret);
	PERFORM privacy_guard._close_receipts();
	RETURN result || jsonb_build_object('requests_done', f.done, 'requests_blocked', f.blocked,
										'requests_restricted', f.restricted);
END
$$;
COMMENT ON FUNCTION privacy_guard._finish_round(jsonb, regclass, timestamptz, bytea) IS 'Internal: the steps of a round after its purge batches';

CREATE FUNCTION privacy_guard.run_maintenance(tbl regclass DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off		/* catalog queries over set-returning functions look costly enough to compile */
AS $$
DECLARE
	v_now timestamptz := now();
	v_secret bytea := privacy_guard._secret();
	v_batch integer := coalesce(pg_catalog.current_setting('privacy_guard.batch_size', true)::integer, 1000);
	v_result jsonb := '{"expired": {}, "errors": {}}';
	p record;
	b record;
	v_after tid;
BEGIN
	PERFORM privacy_guard._flush_access_log();
	/*
	 * Rows past retention: deleted, or anonymised, in the same batches the
	 * worker runs (here all in the caller's transaction).  A table that
	 * fails is reported and the others go on; the next round retries it.
	 */
	FOR p IN SELECT * FROM privacy_guard._purge_targets(tbl) LOOP
		v_after := '(0,0)';
		LOOP
			b := privacy_guard._expire_batch(p.part, p.root, v_now, v_after, v_batch, v_secret);
			v_result := privacy_guard._add_batch(v_result, p.root, b.action, b.processed, b.error);
			EXIT WHEN b.error IS NOT NULL OR b.matched < v_batch;
			v_after := b.last;
		END LOOP;
	END LOOP;

	v_result := privacy_guard._finish_round(v_result, tbl, v_now, v_secret);
	PERFORM privacy_guard._record_round(v_result, tbl, v_now, 'run_maintenance', NULL);
	RETURN v_result;
END
$$;
COMMENT ON FUNCTION privacy_guard.run_maintenance(regclass) IS 'One enforcement round now, in this session: expire rows past retention, carry out due forget requests';

/*
 * The background round's forget step (worker.c): the due requests in
 * chunks of max_requests, each chunk its own transaction, so a mass of
 * requests neither holds one long transaction nor loses all its work to a
 * SIGTERM or a crash.  Each chunk counts its requests in worker_status as
 * it commits.  An error outside the requests' own handling (which leaves
 * a request blocked) is returned as its SQLSTATE, for worker_status, and
 * ends the step for this round.
 */
CREATE FUNCTION privacy_guard._worker_forget(round_at timestamptz, after_id bigint, max_requests integer,
		OUT done integer, OUT blocked integer, OUT restricted integer, OUT last_id bigint, OUT failed text)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
	SELECT f.done, f.blocked, f.restricted, f.last_id INTO done, blocked, restricted, last_id
	  FROM privacy_guard._forget_due(round_at, privacy_guard._secret(), after_id, max_requests) f;
	/* counted as the chunk commits, as purge batches are: a crash loses no count */
	INSERT INTO privacy_guard.worker_round AS w (requests_done, errors)
	SELECT done, blocked WHERE done + blocked > 0
	ON CONFLICT (onerow) DO UPDATE
		SET requests_done = w.requests_done + excluded.requests_done,
			errors = w.errors + excluded.errors;
EXCEPTION WHEN OTHERS THEN
	done := 0;
	blocked := 0;
	restricted := 0;
	last_id := NULL;
	failed := SQLSTATE;
END
$$;
COMMENT ON FUNCTION privacy_guard._worker_forget(timestamptz, bigint, integer) IS 'Internal: one chunk of the background round''s forget requests';

/*
 * The background round's last step, after its purge batches and forget
 * requests (worker.c): tagged values past their retain-until, receipts,
 * and the round's outcome kept for worker_status.  purged is the batches'
 * result as run_maintenance() builds it (each batch counted its rows as it
 * committed: _count_batch); forgotten the forget step's counts
 * (requests_done, requests_blocked, requests_restricted, and failed: an
 * SQLSTATE); started is when the round began.
 */
CREATE FUNCTION privacy_guard._worker_round(purged jsonb, started timestamptz, forgotten jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
	v_result jsonb := purged || (forgotten - 'failed');
	v_failed text := forgotten ->> 'failed';
BEGIN
	PERFORM privacy_guard._flush_access_log();
	INSERT INTO privacy_guard.worker_round DEFAULT VALUES ON CONFLICT DO NOTHING;
	BEGIN
		v_result := jsonb_set(v_result, '{expired}',
							  (v_result -> 'expired') || privacy_guard._erase_tagged_expired(NULL, now()));
		PERFORM privacy_guard._close_receipts();
	EXCEPTION WHEN OTHERS THEN
		v_failed := coalesce(v_failed, SQLSTATE);
	END;
	UPDATE privacy_guard.worker_round w
	   SET rounds = w.rounds + 1, last_round_at = now(), last_result = v_result,
		   last_round_duration = clock_timestamp() - started,
		   rows_restricted = (SELECT coalesce(sum(privacy_guard._restricted_rows(t.relid)), 0)
								FROM privacy_guard.protected_table t WHERE t.hold_keep IS NOT NULL),
		   /* requests_done and blocked requests were counted by each chunk (_worker_forget) */
		   errors = w.errors + (SELECT count(*) FROM jsonb_object_keys(v_result -> 'errors'))
							 + (CASE WHEN v_failed IS NULL THEN 0 ELSE 1 END),
		   last_error = CASE WHEN v_failed IS NOT NULL THEN 'round failed: error ' || v_failed
							 WHEN v_result -> 'errors' <> '{}' THEN (v_result -> 'errors')::text
							 WHEN (v_result ->> 'requests_blocked')::int > 0 THEN 'requests blocked: see erasure_requests'
							 ELSE w.last_error END,
		   last_error_at = CASE WHEN v_failed IS NOT NULL OR v_result -> 'errors' <> '{}'
									 OR (v_result ->> 'requests_blocked')::int > 0
								THEN now() ELSE w.last_error_at END;
	PERFORM privacy_guard._record_round(v_result, NULL, started, 'worker', v_failed);
END
$$;
COMMENT ON FUNCTION privacy_guard._worker_round(jsonb, timestamptz, jsonb) IS 'Internal: the end of the background worker''s round';

/* ------------------------------------------------------------------ */
/* Access log (privacy_guard.audit; audit.c)                            */
/* ------------------------------------------------------------------ */

/*
 * Reads of protected tables, one row per minute, role, purpose and table
 * and flush (the view adds them up).  Written only by _flush_access_log(),
 * from shared memory, so a read is logged even if its transaction rolls
 * back.  Rows with a NULL role, purpose and table hold reads folded into
 * the overflow entry while shared memory was full.  Dumped like the
 * registries: it is the record of processing an administrator must be
 * able to show, and a restore must not lose it.
 */
CREATE TABLE privacy_guard.access_log_data (
	bucket		timestamptz NOT NULL,	/* start of the minute the reads ended in (overflow: the latest) */
	role		text,		/* current_user of the reads */
	purpose		text,
	table_name	text,		/* schema-qualified, as named when logged */
	statements	bigint NOT NULL,
	rows		bigint NOT NULL,	/* rows the policy let the reader see */
	subjects	bytea NOT NULL		/* Bloom filter of their subjects (audit.c) */
);
CREATE INDEX access_log_data_bucket ON privacy_guard.access_log_data (bucket);
COMMENT ON TABLE privacy_guard.access_log_data IS 'Reads of protected tables as flushed from shared memory; see access_log';
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.access_log_data', '');
REVOKE ALL ON privacy_guard.access_log_data FROM PUBLIC;

CREATE FUNCTION privacy_guard._flush_access_log()
RETURNS bigint
AS 'MODULE_PATHNAME', 'pvg_flush_access_log'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._flush_access_log() IS 'Internal: move this database''s logged reads from shared memory into access_log_data and delete rows past privacy_guard.audit_retention; NULL (and a warning) if the log could not be written';

CREATE FUNCTION privacy_guard._subjects_may_include(filter bytea, subject text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_subjects_may_include'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._subjects_may_include(bytea, text) IS 'Internal: whether an access log row''s Bloom filter may hold a subject';

CREATE VIEW privacy_guard.access_log AS
	SELECT d.bucket, d.role, d.purpose, d.table_name,
		   pg_catalog.sum(d.statements)::bigint AS statements, pg_catalog.sum(d.rows)::bigint AS rows
	  FROM privacy_guard.access_log_data d
	 GROUP BY d.bucket, d.role, d.purpose, d.table_name;
COMMENT ON VIEW privacy_guard.access_log IS 'Reads of protected tables per minute, role, purpose and table (privacy_guard.audit)';

CREATE FUNCTION privacy_guard.access_history(subject text, since timestamptz)
RETURNS TABLE (bucket timestamptz, role text, purpose text, table_name text)
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM privacy_guard._check_subject(subject);
	IF since IS NULL THEN
		RAISE EXCEPTION 'since must not be null' USING ERRCODE = '22004';
	END IF;
	/* a bucket is a minute: one that ends after since may hold reads after it */
	RETURN QUERY
		SELECT DISTINCT d.bucket, d.role, d.purpose, d.table_name
		  FROM privacy_guard.access_log_data d
		 WHERE d.bucket OPERATOR(pg_catalog.+) interval '1 minute' OPERATOR(pg_catalog.>) since
		   AND privacy_guard._subjects_may_include(d.subjects, subject)
		 ORDER BY 1, 2, 3, 4;
END
$$;
COMMENT ON FUNCTION privacy_guard.access_history(text, timestamptz) IS 'Logged reads that may have touched a subject''s rows since a time (no false negatives)';

CREATE VIEW privacy_guard.worker_status AS
	SELECT pg_catalog.current_database() AS database, w.rounds, w.last_round_at,
		   w.last_round_duration, w.rows_deleted,
		   w.rows_anonymized, w.rows_restricted, w.requests_done, w.errors, w.last_error,
		   w.last_error_at
	  FROM privacy_guard.worker_round w;
COMMENT ON VIEW privacy_guard.worker_status IS 'The background worker''s rounds in this database';

CREATE FUNCTION privacy_guard.launcher_status(OUT workers_running integer, OUT workers_started bigint,
		OUT found_no_extension bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'pvg_launcher_status'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard.launcher_status() IS 'The launcher''s counters since the server started, for the whole cluster: workers running now, workers started, and workers that found no extension in their database (NULLs without shared_preload_libraries)';
REVOKE ALL ON FUNCTION privacy_guard.launcher_status() FROM PUBLIC;

CREATE FUNCTION privacy_guard._extension_created()
RETURNS void
AS 'MODULE_PATHNAME', 'pvg_extension_created'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._extension_created() IS 'Internal: have the launcher look again, once this transaction commits, at the databases where it found no extension';
REVOKE ALL ON FUNCTION privacy_guard._extension_created() FROM PUBLIC;
CREATE FUNCTION privacy_guard._database_chosen()
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_database_chosen_here'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._database_chosen() IS 'Internal: whether privacy_guard.databases lets the background worker run rounds in this database';

/* this database now has the extension: the launcher's next look finds it */
SELECT privacy_guard._extension_created();

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
		/* subject_report's reader: the value of this subject (or of nobody), given the digest key */
		EXECUTE format($f$CREATE FUNCTION privacy_guard._tag_report_value(%1$s, text, bytea) RETURNS %2$s
			AS 'MODULE_PATHNAME', 'pvg_tag_report_value' LANGUAGE C STABLE PARALLEL RESTRICTED$f$, v_t, v_base);
		EXECUTE format('COMMENT ON FUNCTION privacy_guard._tag_report_value(%s, text, bytea) IS %L', v_t,
			'Internal: for subject_report, the value when its tag names the subject or no subject, else NULL; needs the digest key');
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
		IF EXISTS (SELECT 1 FROM pg_trigger g
					WHERE g.tgrelid = tbl AND g.tgname = 'privacy_guard_default_tag') THEN
			EXECUTE format('DROP TRIGGER privacy_guard_default_tag ON %s', tbl);
		END IF;
		RETURN;
	END IF;
	/*
	 * Only where there is a tagged column (the DDL guard adds the trigger
	 * when one is added later): every other insert would pay for it.
	 */
	IF NOT EXISTS (SELECT 1 FROM privacy_guard._tagged_columns() c
					WHERE NOT c.nested AND c.relid::oid IN (SELECT x FROM privacy_guard._tree_oids(tbl) AS x)) THEN
		RETURN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_trigger g
					WHERE g.tgrelid = tbl AND g.tgname = 'privacy_guard_default_tag') THEN
		EXECUTE format('CREATE TRIGGER privacy_guard_default_tag BEFORE INSERT OR UPDATE ON %s '
					   'FOR EACH ROW EXECUTE FUNCTION privacy_guard._tag_default()', tbl);
	END IF;
	/* plain values already stored take their default tag now, written by the table's owner */
	FOR r IN SELECT c.* FROM privacy_guard._tagged_columns() c
			  WHERE NOT c.nested AND c.relid::oid IN (SELECT x FROM privacy_guard._tree_oids(tbl) AS x) LOOP
		/* the trigger tags them, in an array element by element */
		PERFORM privacy_guard._exec_as_owner(r.relid,
			CASE WHEN r.is_array
				 THEN format('UPDATE ONLY %s SET %I = %2$I WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(%2$I) AS e(v) '
							 'WHERE e.v IS NOT NULL AND privacy_guard.tag_purposes(e.v) IS NULL)', r.relid, r.colname)
				 ELSE format('UPDATE ONLY %s SET %I = %2$I WHERE %2$I IS NOT NULL AND privacy_guard.tag_purposes(%2$I) IS NULL',
							 r.relid, r.colname) END,
			NULL, NULL);
	END LOOP;
END
$$;
COMMENT ON FUNCTION privacy_guard._install_default_tag(regclass, boolean) IS 'Internal: add (protect, and tag the plain values stored) or remove (unprotect) the default-tag trigger';

/* Every column of a tagged type (or a domain over one) in the database's tables. */
/*
 * Every type that holds tagged values, and how, found through pg_depend's
 * index (columns and domains depend on their type, an array type on its
 * element type, and a composite type's, or a table's row type's,
 * attributes on theirs): 'value', a tagged type or a domain over one;
 * 'array', an array of those or a domain over it; 'nested', anything else
 * holding tagged values (composites, arrays of arrays, at any depth).
 */
CREATE FUNCTION privacy_guard._tagged_type_kinds()
RETURNS TABLE (typid oid, kind text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE tagged(oid, kind) AS (
		SELECT t.oid, 'value' FROM pg_type t
		 WHERE t.oid IN ('privacy_guard.tagged_text'::regtype, 'privacy_guard.tagged_date'::regtype,
						 'privacy_guard.tagged_numeric'::regtype, 'privacy_guard.tagged_jsonb'::regtype)
		UNION
		SELECT n.oid, n.kind
		  FROM tagged
		  JOIN pg_depend d ON d.refobjid = tagged.oid AND d.refclassid = 'pg_type'::regclass
		 CROSS JOIN LATERAL (
			SELECT x.oid, CASE WHEN x.typtype = 'd' THEN tagged.kind
							   WHEN tagged.kind = 'value' THEN 'array' ELSE 'nested' END AS kind
			  FROM pg_type x
			 WHERE d.classid = 'pg_type'::regclass AND x.oid = d.objid
			   AND ((x.typtype = 'd' AND x.typbasetype = tagged.oid)
					OR (x.typelem = tagged.oid
						AND x.typsubscript = 'pg_catalog.array_subscript_handler'::regproc))
			UNION ALL
			SELECT c.reltype, 'nested'
			  FROM pg_class c
			 WHERE d.classid = 'pg_class'::regclass AND d.objsubid > 0 AND c.oid = d.objid
			   AND c.relkind IN ('c', 'r', 'p')) n)
	SELECT tagged.oid, tagged.kind FROM tagged
$$;
COMMENT ON FUNCTION privacy_guard._tagged_type_kinds() IS 'Internal: every type holding tagged values, and how (value, array, nested)';

CREATE FUNCTION privacy_guard._tagged_columns()
RETURNS TABLE (relid regclass, colname name, is_array boolean, nested boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN QUERY
		/* through pg_depend's index: a column depends on its type */
		SELECT c.oid::regclass, a.attname, tg.kind = 'array', tg.kind = 'nested'
		  FROM privacy_guard._tagged_type_kinds() tg
		  JOIN pg_depend d ON d.refobjid = tg.typid
		  JOIN pg_attribute a ON a.attrelid = d.objid AND a.attnum = d.objsubid AND a.atttypid = tg.typid
		  JOIN pg_class c ON c.oid = a.attrelid
		 WHERE d.refclassid = 'pg_type'::regclass
		   AND d.classid = 'pg_class'::regclass AND d.objsubid > 0
		   AND c.relkind = 'r' AND c.relpersistence <> 't'
		   AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
									  'privacy_guard'::regnamespace)
		   AND a.attnum > 0 AND NOT a.attisdropped
		 ORDER BY c.oid::regclass::text, a.attname;
END
$$;
COMMENT ON FUNCTION privacy_guard._tagged_columns() IS 'Internal: every column of the database''s tables holding tagged values: of a tagged type, an array of one, or anything with tagged values inside (composites, arrays of arrays), domains included';

/*
 * A column holding tagged values inside composites or arrays of arrays:
 * the erasure's tests over every tagged value within (tagged_ops.c), the
 * erasing forms setting the matching ones to NULL and rebuilding the value
 * around them.  The forget test answers only with the digest key.
 */
CREATE FUNCTION privacy_guard._tags_erasable_in(anyelement, text, bytea)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_tags_erasable_in'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard._tags_erasable_in(anyelement, text, bytea) IS 'Internal: whether a tagged value inside names the subject; needs the digest key';
CREATE FUNCTION privacy_guard._tags_erase_in(anyelement, text, bytea)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'pvg_tags_erase_in'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard._tags_erase_in(anyelement, text, bytea) IS 'Internal: the value with the subject''s tagged values inside set to NULL; needs the digest key';
CREATE FUNCTION privacy_guard._tags_expired_in(anyelement, timestamptz)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_tags_expired_in'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._tags_expired_in(anyelement, timestamptz) IS 'Internal: whether a tagged value inside is past its retain-until';
CREATE FUNCTION privacy_guard._tags_expire_in(anyelement, timestamptz)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'pvg_tags_expire_in'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._tags_expire_in(anyelement, timestamptz) IS 'Internal: the value with the tagged values inside past their retain-until set to NULL';

/*
 * A column holding an array of tagged values: the erasure's tests applied
 * to every element (tagged_ops.c).  The forget test answers only with the
 * digest key; the erasing forms set the matching elements to NULL.
 */
CREATE FUNCTION privacy_guard._tags_erasable(anyarray, text, bytea)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_tags_erasable'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard._tags_erasable(anyarray, text, bytea) IS 'Internal: whether an element''s tag names the subject; needs the digest key';
CREATE FUNCTION privacy_guard._tags_erase(anyarray, text, bytea)
RETURNS anyarray
AS 'MODULE_PATHNAME', 'pvg_tags_erase'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard._tags_erase(anyarray, text, bytea) IS 'Internal: the array with the subject''s elements set to NULL; needs the digest key';
CREATE FUNCTION privacy_guard._tags_expired(anyarray, timestamptz)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_tags_expired'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._tags_expired(anyarray, timestamptz) IS 'Internal: whether an element''s retain-until has passed';
CREATE FUNCTION privacy_guard._tags_expire(anyarray, timestamptz)
RETURNS anyarray
AS 'MODULE_PATHNAME', 'pvg_tags_expire'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._tags_expire(anyarray, timestamptz) IS 'Internal: the array with the elements past their retain-until set to NULL';

/*
 * A forget request's tagged values: set to NULL in every tagged column of
 * the database, protected table or not, as each table's owner (the key and
 * the digest key are parameters).  Returns {"tagged": {"tbl.col": n}} or {}.
 * Errors propagate: _erase_subject then leaves the request blocked.
 */
CREATE FUNCTION privacy_guard._erase_tagged(subject text, secret bytea, OUT counts jsonb, OUT touched oid[])
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
	v_n bigint;
	v_counts jsonb := '{}';
BEGIN
	touched := '{}';
	FOR r IN SELECT * FROM privacy_guard._tagged_columns() LOOP
		BEGIN
			v_n := privacy_guard._exec_as_owner(r.relid,
					CASE WHEN r.is_array
						 THEN format('UPDATE ONLY %s SET %I = privacy_guard._tags_erase(%2$I, $1, $2) '
									 'WHERE privacy_guard._tags_erasable(%2$I, $1, $2)', r.relid, r.colname)
						 WHEN r.nested
						 THEN format('UPDATE ONLY %s SET %I = privacy_guard._tags_erase_in(%2$I, $1, $2) '
									 'WHERE privacy_guard._tags_erasable_in(%2$I, $1, $2)', r.relid, r.colname)
						 ELSE format('UPDATE ONLY %s SET %I = NULL WHERE privacy_guard._tag_erasable(%2$I, $1, $2)',
									 r.relid, r.colname) END,
					subject, secret);
		EXCEPTION
			/* named here, or the request's error would name the last protected table */
			WHEN lock_not_available THEN
				RAISE EXCEPTION 'tagged values in column % of table % are locked by another transaction; the next round retries',
					quote_ident(r.colname), r.relid
					USING ERRCODE = '55P03';
			WHEN OTHERS THEN
				RAISE EXCEPTION 'tagged values in column % of table % could not be erased (error %)',
					quote_ident(r.colname), r.relid, SQLSTATE
					USING ERRCODE = '55000';
		END;
		IF v_n > 0 THEN
			v_counts := v_counts || jsonb_build_object(r.relid::text || '.' || quote_ident(r.colname), v_n);
			/* the old row versions keep the values until the table is vacuumed */
			IF NOT r.relid::oid = ANY (touched) THEN
				touched := touched || r.relid::oid;
			END IF;
		END IF;
	END LOOP;
	counts := CASE WHEN v_counts = '{}' THEN '{}'::jsonb ELSE jsonb_build_object('tagged', v_counts) END;
END
$$;
COMMENT ON FUNCTION privacy_guard._erase_tagged(text, bytea) IS 'Internal: erase a forgotten subject''s tagged values in every tagged column; returns the counts and the tables written to';

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
					CASE WHEN r.is_array
						 THEN format('UPDATE ONLY %s SET %I = privacy_guard._tags_expire(%2$I, %3$L::timestamptz) '
									 'WHERE privacy_guard._tags_expired(%2$I, %3$L::timestamptz)', r.relid, r.colname, at)
						 WHEN r.nested
						 THEN format('UPDATE ONLY %s SET %I = privacy_guard._tags_expire_in(%2$I, %3$L::timestamptz) '
									 'WHERE privacy_guard._tags_expired_in(%2$I, %3$L::timestamptz)', r.relid, r.colname, at)
						 ELSE format('UPDATE ONLY %s SET %I = NULL WHERE privacy_guard.tag_retain_until(%2$I) <= %L::timestamptz',
									 r.relid, r.colname, at) END,
					NULL, NULL);
		EXCEPTION
			WHEN query_canceled THEN
				/* only the engine's own time limit; a cancel from anyone else goes on */
				IF NOT privacy_guard._engine_timed_out() THEN
					RAISE;
				END IF;
				v_n := 0;
				v_errors := v_errors || jsonb_build_object(r.relid::text || '.' || quote_ident(r.colname), SQLSTATE);
			WHEN OTHERS THEN
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

/*
 * Sessions catch up by the transaction that last wrote a row
 * (consent_cache.c): every insert is stamped, whatever xid it brings (a
 * COPY from a dump would bring the source cluster's), and every update.
 * The engine stamps its own updates of requests (saving the trigger's call
 * in every round).  The triggers fire under session_replication_role =
 * replica too, so rows applied by logical replication are seen.
 */
CREATE FUNCTION privacy_guard._stamp_changed_xid()
RETURNS trigger
AS 'MODULE_PATHNAME', 'pvg_stamp_changed_xid'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._stamp_changed_xid() IS 'Internal: record which transaction last wrote a row';
CREATE TRIGGER stamp_changed_xid BEFORE INSERT OR UPDATE ON privacy_guard.consent_state
	FOR EACH ROW EXECUTE FUNCTION privacy_guard._stamp_changed_xid();
CREATE TRIGGER stamp_changed_xid BEFORE UPDATE ON privacy_guard.erasure_request
	FOR EACH ROW WHEN (NEW.changed_xid IS NOT DISTINCT FROM OLD.changed_xid)
	EXECUTE FUNCTION privacy_guard._stamp_changed_xid();
CREATE TRIGGER stamp_changed_xid_insert BEFORE INSERT ON privacy_guard.erasure_request
	FOR EACH ROW EXECUTE FUNCTION privacy_guard._stamp_changed_xid();
ALTER TABLE privacy_guard.consent_state ENABLE ALWAYS TRIGGER stamp_changed_xid;
ALTER TABLE privacy_guard.consent_state ENABLE ALWAYS TRIGGER invalidate_cache;
ALTER TABLE privacy_guard.erasure_request ENABLE ALWAYS TRIGGER stamp_changed_xid;
ALTER TABLE privacy_guard.erasure_request ENABLE ALWAYS TRIGGER stamp_changed_xid_insert;
ALTER TABLE privacy_guard.erasure_request ENABLE ALWAYS TRIGGER invalidate_cache;
ALTER TABLE privacy_guard.consent_state ENABLE ALWAYS TRIGGER note_removed_subject;
ALTER TABLE privacy_guard.consent_state ENABLE ALWAYS TRIGGER note_changed_subject;
ALTER TABLE privacy_guard.erasure_request ENABLE ALWAYS TRIGGER note_removed_subject;
ALTER TABLE privacy_guard.erasure_request ENABLE ALWAYS TRIGGER note_changed_subject;

/* ------------------------------------------------------------------ */
/* Transparency: register, notice, subject report, compliance check     */
/* ------------------------------------------------------------------ */

/* Reads for the register and the subject report: as the table's owner (transparency.c). */
CREATE FUNCTION privacy_guard._read_as_owner(tbl regclass, sql text, key text, secret bytea, keys jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'pvg_read_as_owner'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._read_as_owner(regclass, text, text, bytea, jsonb) IS 'Internal: run a report query as the table owner, with the rules lifted for it';

/* The tagged types and every domain over one, at any depth. */
CREATE FUNCTION privacy_guard._tagged_types()
RETURNS SETOF oid
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT k.typid FROM privacy_guard._tagged_type_kinds() k WHERE k.kind = 'value'
$$;
COMMENT ON FUNCTION privacy_guard._tagged_types() IS 'Internal: the tagged types and the domains over them';

/* Arrays of those types, and every domain over such an array, at any depth. */
CREATE FUNCTION privacy_guard._tagged_array_types()
RETURNS SETOF oid
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT k.typid FROM privacy_guard._tagged_type_kinds() k WHERE k.kind = 'array'
$$;
COMMENT ON FUNCTION privacy_guard._tagged_array_types() IS 'Internal: the arrays of tagged types and the domains over them';

/*
 * Composite types with a tagged value inside (at any depth), arrays whose
 * elements are themselves arrays of tagged values (an array of a domain
 * over one), with their arrays and the domains over them: tagged values
 * the erasure reaches, but the report and the register do not read.
 */
CREATE FUNCTION privacy_guard._tagged_container_types()
RETURNS SETOF oid
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT k.typid FROM privacy_guard._tagged_type_kinds() k WHERE k.kind = 'nested'
$$;
COMMENT ON FUNCTION privacy_guard._tagged_container_types() IS 'Internal: composite types holding tagged values, their arrays and the domains over them';

/*
 * Every tagged column of the database's tables, a partitioned table
 * standing for its partitions (partitions are not listed on their own), and
 * whether the table carries a registration's rules (a registered table, or
 * a partition or child of one).  For the register, the notice and check().
 */
CREATE FUNCTION privacy_guard._tagged_top_columns()
RETURNS TABLE (relid regclass, colname name, attnum smallint, relkind "char", protected boolean)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT c.oid::regclass, a.attname, a.attnum, c.relkind,
		   EXISTS (SELECT 1 FROM privacy_guard.protected_part q WHERE q.target::oid = c.oid)
		   OR EXISTS (SELECT 1 FROM privacy_guard.protected_table t
					   WHERE c.oid IN (SELECT x FROM privacy_guard._tree_oids(t.relid) AS x))
	  FROM pg_attribute a
	  JOIN pg_class c ON c.oid = a.attrelid
	 WHERE (a.atttypid IN (SELECT privacy_guard._tagged_types())
			OR a.atttypid IN (SELECT privacy_guard._tagged_array_types()))
	   AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence <> 't'
	   AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
								  'privacy_guard'::regnamespace)
	   AND a.attnum > 0 AND NOT a.attisdropped
	 ORDER BY c.oid::regclass::text, a.attnum
$$;
COMMENT ON FUNCTION privacy_guard._tagged_top_columns() IS 'Internal: every tagged column (partitioned tables for their partitions), and whether its table is protected';

/*
 * The distinct purposes in the tags of one tagged column, sorted (a purpose
 * dropped since tagging as "#id"; plain values awaiting a default tag add
 * none), read as the table's owner with the rules lifted for it.  With
 * children, a table's partitions or inheritance children are read too.
 * Reads the whole column.
 */
CREATE FUNCTION privacy_guard._tag_purposes_in(tbl regclass, col name, with_children boolean)
RETURNS text[]
LANGUAGE sql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT ARRAY(SELECT jsonb_array_elements_text(coalesce(privacy_guard._read_as_owner(tbl,
		format('SELECT pg_catalog.jsonb_agg(DISTINCT p.name ORDER BY p.name) FROM %s %s x '
			   'CROSS JOIN LATERAL %s AS v(v) '
			   'CROSS JOIN LATERAL pg_catalog.unnest(privacy_guard.tag_purposes(v.v)) AS p(name)',
			   CASE WHEN with_children THEN '' ELSE 'ONLY' END, tbl,
			   /* an array column: the tags of its elements */
			   CASE WHEN EXISTS (SELECT 1 FROM pg_attribute a
								  WHERE a.attrelid = tbl AND a.attname = col
									AND a.atttypid IN (SELECT privacy_guard._tagged_array_types()))
					THEN format('pg_catalog.unnest(x.%I)', col)
					ELSE format('(SELECT x.%I)', col) END), NULL, NULL, NULL), '[]')))
$$;
COMMENT ON FUNCTION privacy_guard._tag_purposes_in(regclass, name, boolean) IS 'Internal: the distinct purposes in a tagged column''s tags';

/*
 * Every tagged column with the purposes found in its tags: those of
 * protected tables (read with their partitions and children, under the
 * registered table) and those outside protected tables.  Reads every
 * tagged column whole.  SECURITY DEFINER for the register view, whose
 * readers (administrators) are granted it by grant_admin().
 */
CREATE FUNCTION privacy_guard._tagged_column_purposes()
RETURNS TABLE (relid regclass, colname name, attnum smallint, protected boolean, purposes text[])
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT t.relid, a.attname, a.attnum, true, privacy_guard._tag_purposes_in(t.relid, a.attname, true)
	  FROM privacy_guard.protected_table t
	  JOIN pg_attribute a ON a.attrelid = t.relid::oid AND a.attnum > 0 AND NOT a.attisdropped
	 WHERE a.atttypid IN (SELECT privacy_guard._tagged_types())
		OR a.atttypid IN (SELECT privacy_guard._tagged_array_types())
	UNION ALL
	SELECT c.relid, c.colname, c.attnum, false, privacy_guard._tag_purposes_in(c.relid, c.colname, c.relkind = 'p')
	  FROM privacy_guard._tagged_top_columns() c
	 WHERE NOT c.protected
$$;
COMMENT ON FUNCTION privacy_guard._tagged_column_purposes() IS 'Internal: every tagged column with the distinct purposes found in its tags';

/*
 * GDPR Art. 30: one row per column of every protected table, and one per
 * tagged column of a table privacy_guard does not protect.  A tagged
 * column's tag_purposes are the distinct purposes found in its values'
 * tags (the view reads every tagged column to find them); outside a
 * protected table they are also its purposes, and what happens to its
 * values is what the round does to them: set to NULL when their
 * retain-until passes or their subject is forgotten, the rest of the row
 * untouched (legal bases are NULL for purposes dropped since tagging).
 * The approximate row count comes from pg_class.reltuples of the table's
 * leaf tables (a partitioned parent holds no rows; an inheritance parent
 * outside protected tables is counted alone, its children are listed on
 * their own); a table never vacuumed or analysed reports -1, so the count
 * is NULL (unknown) when no leaf has been, and otherwise the sum over the
 * leaves that have.
 */
CREATE VIEW privacy_guard.processing_register AS
	WITH tagged AS (SELECT * FROM privacy_guard._tagged_column_purposes())
	SELECT t.relid AS table_name,
		   a.attname AS column_name,
		   pg_catalog.format_type(a.atttypid, a.atttypmod) AS data_type,
		   CASE WHEN a.attname OPERATOR(pg_catalog.=) t.subject_column THEN 'subject'
				WHEN a.attname OPERATOR(pg_catalog.=) t.retention_column THEN 'retention'
				WHEN tg.relid IS NOT NULL THEN 'tagged'
				ELSE 'data' END AS column_role,
		   pg_catalog.col_description(t.relid::pg_catalog.oid, a.attnum::integer) AS description,
		   t.purposes,
		   ARRAY(SELECT p.legal_basis
				   FROM pg_catalog.unnest(t.purposes) WITH ORDINALITY AS u(name, n)
				   JOIN privacy_guard.purpose p ON p.name OPERATOR(pg_catalog.=) u.name
				  ORDER BY u.n) AS legal_bases,
		   t.retention, t.retention_column, t.on_expiry, t.on_forget,
		   CASE an.method WHEN 'function' THEN an.fn::text ELSE an.method END AS anonymizer,
		   t.hold_keep, t.hold_purpose,
		   n.approx_rows,
		   tg.purposes AS tag_purposes
	  FROM privacy_guard.protected_table t
	  JOIN pg_catalog.pg_attribute a
		ON a.attrelid OPERATOR(pg_catalog.=) t.relid::pg_catalog.oid
	   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
	  LEFT JOIN privacy_guard.anonymizer an
		ON an.relid OPERATOR(pg_catalog.=) t.relid AND an.column_name OPERATOR(pg_catalog.=) a.attname
	  LEFT JOIN tagged tg
		ON tg.protected AND tg.relid OPERATOR(pg_catalog.=) t.relid AND tg.colname OPERATOR(pg_catalog.=) a.attname
	 CROSS JOIN LATERAL (
		SELECT CASE WHEN pg_catalog.count(*) FILTER (WHERE c.reltuples OPERATOR(pg_catalog.>=) 0) OPERATOR(pg_catalog.=) 0
					THEN NULL
					ELSE pg_catalog.sum(c.reltuples::pg_catalog.float8) FILTER (WHERE c.reltuples OPERATOR(pg_catalog.>=) 0)::bigint
			   END AS approx_rows
		  FROM (WITH RECURSIVE tree(relid) AS (
					SELECT t.relid::pg_catalog.oid
					UNION
					SELECT i.inhrelid FROM pg_catalog.pg_inherits i
					  JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid)
				SELECT tree.relid FROM tree) x
		  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) x.relid
		 WHERE c.relkind OPERATOR(pg_catalog.=) 'r') n
	UNION ALL
	SELECT tg.relid, tg.colname,
		   pg_catalog.format_type(a.atttypid, a.atttypmod),
		   'tagged',
		   pg_catalog.col_description(tg.relid::pg_catalog.oid, a.attnum::integer),
		   tg.purposes,
		   ARRAY(SELECT (SELECT p.legal_basis FROM privacy_guard.purpose p
						  WHERE p.name OPERATOR(pg_catalog.=) u.name)
				   FROM pg_catalog.unnest(tg.purposes) WITH ORDINALITY AS u(name, n)
				  ORDER BY u.n),
		   NULL::pg_catalog.interval, NULL::pg_catalog.name, 'anonymize', 'anonymize', 'null',
		   NULL::pg_catalog.interval, NULL::pg_catalog.text,
		   n.approx_rows,
		   tg.purposes
	  FROM tagged tg
	  JOIN pg_catalog.pg_attribute a
		ON a.attrelid OPERATOR(pg_catalog.=) tg.relid::pg_catalog.oid AND a.attnum OPERATOR(pg_catalog.=) tg.attnum
	  JOIN pg_catalog.pg_class tc ON tc.oid OPERATOR(pg_catalog.=) tg.relid::pg_catalog.oid
	 CROSS JOIN LATERAL (
		SELECT CASE WHEN pg_catalog.count(*) FILTER (WHERE c.reltuples OPERATOR(pg_catalog.>=) 0) OPERATOR(pg_catalog.=) 0
					THEN NULL
					ELSE pg_catalog.sum(c.reltuples::pg_catalog.float8) FILTER (WHERE c.reltuples OPERATOR(pg_catalog.>=) 0)::bigint
			   END AS approx_rows
		  FROM (WITH RECURSIVE tree(relid) AS (
					SELECT tg.relid::pg_catalog.oid
					UNION
					SELECT i.inhrelid FROM pg_catalog.pg_inherits i
					  JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid
												 AND tc.relkind OPERATOR(pg_catalog.=) 'p')
				SELECT tree.relid FROM tree) x
		  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) x.relid
		 WHERE c.relkind OPERATOR(pg_catalog.=) 'r') n
	 WHERE NOT tg.protected;
COMMENT ON VIEW privacy_guard.processing_register IS 'Record of processing (GDPR Art. 30): per protected table and column, and per tagged column outside protected tables: purposes, legal bases, retention, actions, anonymisers, holds, approximate rows, purposes found in tags';

/* ---------------------------------------------------------------- privacy notice */

/* "customer_email" -> "customer email"; identifiers are shown as words. */
CREATE FUNCTION privacy_guard._human_name(ident text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT btrim(regexp_replace(replace($1, '_', ' '), '\s+', ' ', 'g'))
$$;
COMMENT ON FUNCTION privacy_guard._human_name(text) IS 'Internal: an identifier as words';

/* An interval in words: "2 years", "1 year and 6 months", "30 days". */
CREATE FUNCTION privacy_guard._human_interval(i interval)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH parts(n, unit, ord) AS (
		VALUES (extract(year FROM $1)::bigint, 'year', 1),
			   (extract(month FROM $1)::bigint, 'month', 2),
			   (extract(day FROM $1)::bigint, 'day', 3),
			   (extract(hour FROM $1)::bigint, 'hour', 4),
			   (extract(minute FROM $1)::bigint, 'minute', 5)),
	words AS (
		SELECT array_agg(n::text || ' ' || unit || CASE WHEN n = 1 THEN '' ELSE 's' END ORDER BY ord) AS w
		  FROM parts WHERE n <> 0)
	SELECT CASE WHEN cardinality(w) IS NULL THEN $1::text
				WHEN cardinality(w) = 1 THEN w[1]
				ELSE array_to_string(w[1:cardinality(w) - 1], ', ') || ' and ' || w[cardinality(w)] END
	  FROM words
$$;
COMMENT ON FUNCTION privacy_guard._human_interval(interval) IS 'Internal: an interval in words';

/*
 * Markup for the notice, in one place for both formats.  kind: 'text'
 * (escape a plain string), 'h1'-'h3', 'p', 'b', 'code' (content already
 * marked up, except 'code', which escapes its own).  Markdown escapes
 * every character with a meaning inside a line; HTML escapes &, <, >, "
 * and '.  Line breaks in names and descriptions become spaces.
 */
CREATE FUNCTION privacy_guard._notice_markup(kind text, fmt text, content text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v text := coalesce(content, '');
BEGIN
	IF kind IN ('text', 'code') THEN
		v := regexp_replace(v, '[\r\n\t]+', ' ', 'g');
		IF fmt = 'html' THEN
			v := replace(replace(replace(replace(replace(v, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
						 '"', '&quot;'), '''', '&#39;');
		ELSIF kind = 'text' THEN
			v := regexp_replace(v, '([\\`*_{}\[\]<>|&~!#])', '\\\1', 'g');
			/* what would start a list or heading at the start of a line */
			v := regexp_replace(v, '^(\s*)([+=-])', '\1\\\2');
			v := regexp_replace(v, '^(\s*[0-9]+)([.)])', '\1\\\2');
		ELSE
			v := replace(v, '`', '''');		/* a code span cannot hold a backtick */
		END IF;
		IF kind = 'code' THEN
			RETURN CASE fmt WHEN 'html' THEN '<code>' || v || '</code>' ELSE '`' || v || '`' END;
		END IF;
		RETURN v;
	END IF;
	IF fmt = 'html' THEN
		RETURN CASE kind
			WHEN 'h1' THEN '<h1>' || v || E'</h1>\n'
			WHEN 'h2' THEN '<h2>' || v || E'</h2>\n'
			WHEN 'h3' THEN '<h3>' || v || E'</h3>\n'
			WHEN 'p' THEN '<p>' || v || E'</p>\n'
			WHEN 'b' THEN '<strong>' || v || '</strong>' END;
	END IF;
	RETURN CASE kind
		WHEN 'h1' THEN '# ' || v || E'\n\n'
		WHEN 'h2' THEN '## ' || v || E'\n\n'
		WHEN 'h3' THEN '### ' || v || E'\n\n'
		WHEN 'p' THEN v || E'\n\n'
		WHEN 'b' THEN '**' || v || '**' END;
END
$$;
COMMENT ON FUNCTION privacy_guard._notice_markup(text, text, text) IS 'Internal: escaping and markup of the privacy notice (markdown or html)';

/* A bulleted list of items already marked up. */
CREATE FUNCTION privacy_guard._notice_list(fmt text, items text[])
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN coalesce(cardinality($2), 0) = 0 THEN ''
				WHEN $1 = 'html' THEN E'<ul>\n' || (SELECT string_agg('<li>' || i || E'</li>\n', '' ORDER BY n)
													  FROM unnest($2) WITH ORDINALITY AS u(i, n)) || E'</ul>\n'
				ELSE (SELECT string_agg('- ' || i || E'\n', '' ORDER BY n)
						FROM unnest($2) WITH ORDINALITY AS u(i, n)) || E'\n' END
$$;
COMMENT ON FUNCTION privacy_guard._notice_list(text, text[]) IS 'Internal: a bulleted list in the privacy notice';

/* What each legal basis means, for the person reading the notice. */
CREATE FUNCTION privacy_guard._basis_explained(basis text)
RETURNS TABLE (title text, explanation text)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT b.title, b.explanation FROM (VALUES
		('consent', 'your consent (GDPR Art. 6(1)(a))',
		 'We use your data for this only while you agree to it. You can withdraw your consent at any time; from then on your data is no longer used for it. Withdrawing does not make earlier use unlawful.'),
		('contract', 'a contract with you (GDPR Art. 6(1)(b))',
		 'We need this data to carry out our contract with you, or to take steps you asked for before entering into one. Without it we cannot provide the service.'),
		('legal_obligation', 'a legal obligation (GDPR Art. 6(1)(c))',
		 'The law requires us to process and keep this data, for example for tax and bookkeeping.'),
		('vital_interests', 'vital interests (GDPR Art. 6(1)(d))',
		 'We process this data to protect your life or health, or someone else''s, when no other basis applies.'),
		('public_task', 'a task in the public interest (GDPR Art. 6(1)(e))',
		 'We process this data to carry out a task in the public interest or in the exercise of official authority. You can object to it at any time.'),
		('legitimate_interests', 'our legitimate interests (GDPR Art. 6(1)(f))',
		 'We process this data because we have a legitimate interest in doing so that does not override your interests, rights and freedoms. You can object to it at any time, and we then stop.')
	) AS b(basis, title, explanation)
	 WHERE b.basis = $1
$$;
COMMENT ON FUNCTION privacy_guard._basis_explained(text) IS 'Internal: a legal basis in plain words';

/*
 * The privacy notice, from the registrations and the purposes' names and
 * descriptions.  Tables and columns are named by their COMMENT when they
 * have one, otherwise by their name in words.  Every purpose a protected
 * table uses (its purposes and its legal hold's) or a tagged column's values
 * carry (anywhere: every tagged column is read, as its table's owner) is
 * named.  Tagged columns outside protected tables are described after the
 * protected tables, table by table.
 */
CREATE FUNCTION privacy_guard.privacy_notice(format text DEFAULT 'markdown')
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	f text := lower(format);
	v_out text;
	t record;
	p record;
	v_items text[];
	v_purposes text[];
	v_line text;
	v_list text;
	v_tagged jsonb;
BEGIN
	IF f IS NULL OR f NOT IN ('markdown', 'html') THEN
		RAISE EXCEPTION 'unknown privacy notice format "%"', format
			USING ERRCODE = '22023',
				  HINT = 'Use markdown or html.';
	END IF;

	/* every tagged column, with the purposes its values carry */
	SELECT coalesce(jsonb_agg(jsonb_build_object('relid', tc.relid::oid, 'attnum', tc.attnum,
												 'protected', tc.protected, 'purposes', tc.purposes)), '[]')
	  INTO v_tagged
	  FROM privacy_guard._tagged_column_purposes() tc;

	SELECT coalesce(array_agg(DISTINCT u.name ORDER BY u.name), '{}') INTO v_purposes
	  FROM (SELECT unnest(pt.purposes) AS name FROM privacy_guard.protected_table pt
			UNION SELECT pt.hold_purpose FROM privacy_guard.protected_table pt
				   WHERE pt.hold_purpose IS NOT NULL
			UNION SELECT jsonb_array_elements_text(tc.value -> 'purposes')
					FROM jsonb_array_elements(v_tagged) AS tc(value)) u;

	v_out := privacy_guard._notice_markup('h1', f, 'Privacy notice')
		|| privacy_guard._notice_markup('p', f,
			'This notice describes the personal data we keep about you, why we keep it, on which '
			|| 'legal grounds, for how long, and how you can withdraw your consent, object, or ask us '
			|| 'to erase your data. It is generated from the rules our database enforces, so it '
			|| 'describes what actually happens to your data.');

	IF NOT EXISTS (SELECT 1 FROM privacy_guard.protected_table) AND v_tagged = '[]' THEN
		v_out := v_out || privacy_guard._notice_markup('p', f, 'We keep no personal data in this database.');
		RETURN CASE f WHEN 'html' THEN E'<section class="privacy-notice">\n' || v_out || E'</section>\n'
					  ELSE v_out END;
	END IF;

	/* what is held, table by table */
	v_out := v_out || privacy_guard._notice_markup('h2', f, 'The data we keep');
	FOR t IN
		SELECT pt.*, c.relname,
			   obj_description(pt.relid, 'pg_class') AS about,
			   coalesce(col_description(pt.relid, (SELECT a.attnum FROM pg_attribute a
													 WHERE a.attrelid = pt.relid AND a.attname = pt.retention_column)::integer),
						privacy_guard._human_name(pt.retention_column)) AS ret_words
		  FROM privacy_guard.protected_table pt
		  JOIN pg_class c ON c.oid = pt.relid
		 ORDER BY privacy_guard._human_name(c.relname), pt.relid::oid
	LOOP
		v_out := v_out || privacy_guard._notice_markup('h3', f,
			privacy_guard._notice_markup('text', f, initcap(left(privacy_guard._human_name(t.relname), 1))
											|| substr(privacy_guard._human_name(t.relname), 2)));
		IF t.about IS NOT NULL THEN
			v_out := v_out || privacy_guard._notice_markup('p', f, privacy_guard._notice_markup('text', f, t.about));
		END IF;
		v_items := '{}';

		SELECT string_agg(privacy_guard._notice_markup('text', f,
							coalesce(col_description(t.relid, a.attnum::integer), privacy_guard._human_name(a.attname))),
						  ', ' ORDER BY a.attnum)
		  INTO v_list
		  FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped;
		v_items := v_items || (privacy_guard._notice_markup('b', f, 'What:') || ' ' || v_list);

		SELECT string_agg(privacy_guard._notice_markup('text', f, coalesce(pp.description, privacy_guard._human_name(pp.name)))
						  || ' (' || privacy_guard._notice_markup('code', f, pp.name) || ')', '; ' ORDER BY pp.name)
		  INTO v_list
		  FROM privacy_guard.purpose pp WHERE pp.name = ANY (t.purposes);
		v_items := v_items || (privacy_guard._notice_markup('b', f, 'Used for:') || ' ' || v_list);

		IF t.retention IS NULL THEN
			v_line := 'until you ask us to erase it.';
		ELSE
			v_line := privacy_guard._notice_markup('text', f, privacy_guard._human_interval(t.retention))
				|| ' from the date recorded as "' || privacy_guard._notice_markup('text', f, t.ret_words) || '", then '
				|| CASE t.on_expiry WHEN 'delete' THEN 'deleted.'
					ELSE 'anonymised: what links it to you is removed, and what is left cannot identify you.' END;
		END IF;
		v_items := v_items || (privacy_guard._notice_markup('b', f, 'Kept:') || ' ' || v_line);

		IF t.hold_purpose IS NOT NULL AND t.hold_keep IS NOT NULL THEN
			SELECT privacy_guard._notice_markup('text', f, coalesce(pp.description, privacy_guard._human_name(pp.name)))
				   || ' (' || privacy_guard._notice_markup('code', f, pp.name) || ')'
			  INTO v_list
			  FROM privacy_guard.purpose pp WHERE pp.name = t.hold_purpose;
			v_items := v_items || (privacy_guard._notice_markup('b', f, 'Kept longer where the law requires it:') || ' '
				|| 'up to ' || privacy_guard._notice_markup('text', f, privacy_guard._human_interval(t.hold_keep))
				|| ' from the date recorded as "' || privacy_guard._notice_markup('text', f, t.ret_words)
				|| '", and in that time used only for ' || v_list || '.');
		END IF;

		v_items := v_items || (privacy_guard._notice_markup('b', f, 'When you ask us to erase your data:') || ' '
			|| CASE t.on_forget WHEN 'delete' THEN 'deleted.'
				ELSE 'anonymised: what links it to you is removed, and what is left cannot identify you.' END);
		v_out := v_out || privacy_guard._notice_list(f, v_items);
	END LOOP;

	/* tagged columns outside protected tables: each value carries its own rules */
	FOR t IN
		SELECT c.oid AS relid, c.relname, obj_description(c.oid, 'pg_class') AS about,
			   array_agg(tc.attnum ORDER BY tc.attnum) AS attnums
		  FROM jsonb_to_recordset(v_tagged) AS tc(relid oid, attnum smallint, protected boolean, purposes jsonb)
		  JOIN pg_class c ON c.oid = tc.relid
		 WHERE NOT tc.protected
		 GROUP BY c.oid, c.relname
		 ORDER BY privacy_guard._human_name(c.relname), c.oid
	LOOP
		v_out := v_out || privacy_guard._notice_markup('h3', f,
			privacy_guard._notice_markup('text', f, initcap(left(privacy_guard._human_name(t.relname), 1))
											|| substr(privacy_guard._human_name(t.relname), 2)));
		IF t.about IS NOT NULL THEN
			v_out := v_out || privacy_guard._notice_markup('p', f, privacy_guard._notice_markup('text', f, t.about));
		END IF;
		SELECT string_agg(privacy_guard._notice_markup('text', f,
							coalesce(col_description(t.relid, a.attnum::integer), privacy_guard._human_name(a.attname))),
						  ', ' ORDER BY a.attnum)
		  INTO v_list
		  FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attnum = ANY (t.attnums);
		v_items := ARRAY[privacy_guard._notice_markup('b', f, 'What:') || ' ' || v_list];
		SELECT string_agg(privacy_guard._notice_markup('text', f, coalesce(pp.description, privacy_guard._human_name(pp.name)))
						  || ' (' || privacy_guard._notice_markup('code', f, pp.name) || ')', '; ' ORDER BY pp.name)
		  INTO v_list
		  FROM privacy_guard.purpose pp
		 WHERE pp.name IN (SELECT jsonb_array_elements_text(tc.purposes)
							 FROM jsonb_to_recordset(v_tagged) AS tc(relid oid, protected boolean, purposes jsonb)
							WHERE tc.relid = t.relid AND NOT tc.protected);
		v_items := v_items
			|| (privacy_guard._notice_markup('b', f, 'Used for:') || ' '
				|| coalesce(v_list, 'only the purposes recorded with each value.'))
			|| (privacy_guard._notice_markup('b', f, 'Kept:') || ' '
				|| 'until the date recorded with each value, then erased; a value recorded without one, until you ask us to erase it.')
			|| (privacy_guard._notice_markup('b', f, 'When you ask us to erase your data:') || ' erased.');
		v_out := v_out || privacy_guard._notice_list(f, v_items);
	END LOOP;

	/* why: purpose by purpose, with its legal basis in plain words */
	v_out := v_out || privacy_guard._notice_markup('h2', f, 'Why we use it');
	FOR p IN
		SELECT pp.name, pp.description, pp.legal_basis, b.title, b.explanation,
			   (SELECT string_agg(privacy_guard._notice_markup('text', f, initcap(left(h.name, 1)) || substr(h.name, 2)),
						', ' ORDER BY h.name)
				  FROM (SELECT privacy_guard._human_name(c.relname) AS name
						  FROM privacy_guard.protected_table pt JOIN pg_class c ON c.oid = pt.relid
						 WHERE pp.name = ANY (pt.purposes) OR pp.name = pt.hold_purpose
						UNION
						SELECT privacy_guard._human_name(c.relname)
						  FROM jsonb_to_recordset(v_tagged) AS tc(relid oid, purposes jsonb)
						  JOIN pg_class c ON c.oid = tc.relid
						 WHERE tc.purposes ? pp.name) h) AS tables
		  FROM privacy_guard.purpose pp
		 CROSS JOIN LATERAL privacy_guard._basis_explained(pp.legal_basis) b
		 WHERE pp.name = ANY (v_purposes)
		 ORDER BY pp.name
	LOOP
		v_out := v_out
			|| privacy_guard._notice_markup('h3', f,
				privacy_guard._notice_markup('text', f, coalesce(p.description, privacy_guard._human_name(p.name)))
				|| ' (' || privacy_guard._notice_markup('code', f, p.name) || ')')
			|| privacy_guard._notice_markup('p', f,
				privacy_guard._notice_markup('b', f, 'Legal basis: ' || p.title || '.') || ' ' || p.explanation)
			|| privacy_guard._notice_markup('p', f, 'Data used: ' || p.tables || '.');
	END LOOP;

	/* rights: withdraw, object, erase, access */
	v_items := '{}';
	SELECT string_agg(privacy_guard._notice_markup('code', f, pp.name), ', ' ORDER BY pp.name) INTO v_list
	  FROM privacy_guard.purpose pp WHERE pp.name = ANY (v_purposes) AND pp.legal_basis = 'consent';
	IF v_list IS NOT NULL THEN
		v_items := v_items || (privacy_guard._notice_markup('b', f, 'Withdraw your consent')
			|| ' to any purpose that rests on it (' || v_list || '), as easily as you gave it: '
			|| 'tell us, or change your choices in your account. From your next interaction with us on, your '
			|| 'data is no longer used for that purpose.');
	END IF;
	SELECT string_agg(privacy_guard._notice_markup('code', f, pp.name), ', ' ORDER BY pp.name) INTO v_list
	  FROM privacy_guard.purpose pp
	 WHERE pp.name = ANY (v_purposes) AND pp.legal_basis IN ('legitimate_interests', 'public_task');
	IF v_list IS NOT NULL THEN
		v_items := v_items || (privacy_guard._notice_markup('b', f, 'Object')
			|| ' to the use of your data for ' || v_list || ' (GDPR Art. 21). We then stop using it for that.');
	END IF;
	v_items := v_items || (privacy_guard._notice_markup('b', f, 'Ask us to erase your data')
		|| ' (GDPR Art. 17). From the moment we record your request, your data is no longer used for anything, '
		|| 'and it is then erased or anonymised as described above. You can also ask us to erase it at a later '
		|| 'date, for example when a warranty ends. Data the law obliges us to keep is kept only for that '
		|| 'obligation, and only as long as it requires.')
		|| (privacy_guard._notice_markup('b', f, 'Get a copy')
		|| ' of all the data we hold about you, with the purposes and the history of your consents, in a '
		|| 'machine-readable format (JSON), to keep or to take to another provider (GDPR Art. 15 and 20).');
	v_out := v_out || privacy_guard._notice_markup('h2', f, 'Your choices and rights')
		|| privacy_guard._notice_markup('p', f, 'You can, at any time:')
		|| privacy_guard._notice_list(f, v_items)
		|| privacy_guard._notice_markup('p', f,
			'To do any of this, contact us using the details published with this notice.');
	IF f = 'html' THEN
		v_out := E'<section class="privacy-notice">\n' || v_out || E'</section>\n';
	END IF;
	RETURN v_out;
END
$$;
COMMENT ON FUNCTION privacy_guard.privacy_notice(text) IS 'A privacy notice for the website (markdown or html), generated from the enforced rules';

/* ---------------------------------------------------------------- subject report */

/*
 * The select list subject_report reads a table's rows with (alias x): every
 * column, the tagged ones through _tag_report_value ($1 the subject, $2 the
 * digest key), so that reading as an owner the rules bind neither fails on
 * a withheld value nor shows a value tagged for someone else.
 */
CREATE FUNCTION privacy_guard._report_columns(tbl regclass)
RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(string_agg(CASE WHEN a.atttypid IN (SELECT privacy_guard._tagged_types())
									THEN format('privacy_guard._tag_report_value(x.%I, $1, $2) AS %1$I', a.attname)
									/* an array of tagged values: as an array of its elements, read the same way */
									WHEN a.atttypid IN (SELECT privacy_guard._tagged_array_types())
									THEN format('(SELECT pg_catalog.array_agg(privacy_guard._tag_report_value(v.v, $1, $2) '
												'ORDER BY v.n) FROM pg_catalog.unnest(x.%I) WITH ORDINALITY AS v(v, n)) AS %1$I',
												a.attname)
									/*
									 * tagged values the report cannot read for the subject
									 * alone (inside a composite type, an array of arrays):
									 * NULL, never another subject's value (check() names them)
									 */
									WHEN a.atttypid IN (SELECT privacy_guard._tagged_container_types())
									THEN format('NULL AS %I', a.attname)
									ELSE format('x.%I', a.attname) END,
							   ', ' ORDER BY a.attnum), '')
	  FROM pg_attribute a
	 WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION privacy_guard._report_columns(regclass) IS 'Internal: the select list of a subject report''s rows, tagged values read for the subject only';

/* Whether a key is the text form of some value of a type. */
CREATE FUNCTION privacy_guard._key_fits(key text, typ regtype)
RETURNS boolean
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_canon text;
BEGIN
	/* the base type: a domain's checks are the table owner's code */
	EXECUTE format('SELECT ($1::%s)::text', privacy_guard._base_type(typ)) INTO v_canon USING key;
	/* the rules, forget() and the receipts know a key by its text form: '042' is not 42 */
	RETURN v_canon = key;
EXCEPTION WHEN data_exception THEN
	RETURN false;
END
$$;
COMMENT ON FUNCTION privacy_guard._key_fits(text, regtype) IS 'Internal: whether a subject key is the canonical text form of a value of the type';

/*
 * Everything held about one subject (GDPR Art. 15, in a form fit for
 * Art. 20).  Rows are read as each table's owner with the rules lifted
 * (_read_as_owner), whatever the caller's purpose: the report is the
 * controller's answer.  Found are: the rows of every protected table whose
 * subject column holds the key; the rows of tables privacy_guard does not
 * protect that refer, by a foreign key, to those rows, and so on along
 * chains of up to 5 foreign keys through such tables (each table once); the
 * current consents and objections and their whole history in the ledger
 * (including entries kept under the key's digest after an erasure); the
 * erasure requests (found by the digest); and every tagged value, in any
 * table, whose tag names the subject (matched as the erasure matches them,
 * with the digest key, and read without rule 3.4 the same way).  A tagged
 * column in a row already reported shows its value when the tag names the
 * subject or nobody, and null when it names someone else.  The key is only
 * ever a parameter; identifiers are quoted; comparisons use the subject
 * column's base type and pg_catalog's operators, foreign keys their own
 * operators.
 */
CREATE FUNCTION privacy_guard.subject_report(subject text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET IntervalStyle = iso_8601
AS $$
DECLARE
	v_digest text;
	v_secret bytea;
	t record;
	k record;
	tc record;
	v_tagged jsonb := '[]';
	v_base regtype;
	v_rows jsonb;
	v_keys jsonb;
	v_data jsonb := '[]';
	v_purposes text[] := '{}';
	v_report jsonb;
	v_walk jsonb;
	v_step jsonb;
	v_seen oid[];
	v_match text;
BEGIN
	PERFORM privacy_guard._check_subject(subject);
	v_digest := privacy_guard._subject_digest(subject);
	v_secret := privacy_guard._secret();

	FOR t IN SELECT pt.* FROM privacy_guard.protected_table pt ORDER BY pt.relid::text LOOP
		v_base := privacy_guard._base_type(privacy_guard._column_type(t.relid, t.subject_column, 'subject'));
		CONTINUE WHEN NOT privacy_guard._key_fits(subject, v_base);
		v_rows := privacy_guard._read_as_owner(t.relid,
			format('SELECT pg_catalog.jsonb_agg(s.r ORDER BY s.r) FROM '
				   '(SELECT pg_catalog.to_jsonb(y.*) AS r FROM '
				   '(SELECT %s FROM %s x WHERE %s) y) s',
				   privacy_guard._report_columns(t.relid), t.relid,
				   privacy_guard._subject_cond('x.' || quote_ident(t.subject_column), v_base)),
			subject, v_secret, NULL);
		CONTINUE WHEN v_rows IS NULL;
		v_purposes := v_purposes || t.purposes || t.hold_purpose;
		v_data := v_data || jsonb_build_array(jsonb_build_object(
			'table', t.relid::text, 'found_by', 'subject column', 'subject_column', t.subject_column,
			'purposes', to_jsonb(t.purposes), 'retention', t.retention,
			'retention_column', t.retention_column, 'on_expiry', t.on_expiry,
			'on_forget', t.on_forget,
			'legal_hold', CASE WHEN t.hold_purpose IS NOT NULL
							   THEN jsonb_build_object('keep', t.hold_keep, 'purpose', t.hold_purpose) END,
			'rows', v_rows));

		/*
		 * Tables privacy_guard does not protect that refer to these rows,
		 * and tables that refer to those rows, along chains of foreign keys
		 * up to 5 steps long, each table expanded once: for each step, first
		 * the referenced key values (as the referenced table's owner), then
		 * the referring rows (as their table's owner), compared with the
		 * foreign key's own equality operators.  A step's rows are those of
		 * its table that match the previous step's keys ($3).
		 */
		v_walk := jsonb_build_array(jsonb_build_object(
			'tbl', t.relid::oid, 'depth', 0, 'keys', NULL,
			'pred', privacy_guard._subject_cond('x.' || quote_ident(t.subject_column), v_base)));
		v_seen := ARRAY[t.relid::oid];
		WHILE jsonb_array_length(v_walk) > 0 LOOP
			v_step := v_walk -> 0;
			v_walk := v_walk - 0;
			CONTINUE WHEN (v_step ->> 'depth')::int >= 5;
			FOR k IN
				SELECT c.conname, c.conrelid::regclass AS child, c.confrelid::regclass AS parent,
					   (SELECT string_agg(format('x.%I', a.attname), ', ' ORDER BY u.n)
						  FROM unnest(c.confkey) WITH ORDINALITY AS u(attnum, n)
						  JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = u.attnum) AS pk_list,
					   (SELECT string_agg(format('(e.value OPERATOR(pg_catalog.->>) %s)::%s OPERATOR(%I.%s) x.%I', u.n - 1,
												 pa.atttypid::regtype, opn.nspname, op.oprname, fa.attname),
										  ' AND ' ORDER BY u.n)
						  FROM unnest(c.confkey, c.conkey, c.conpfeqop) WITH ORDINALITY AS u(pk, fk, eqop, n)
						  JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = u.pk
						  JOIN pg_attribute fa ON fa.attrelid = c.conrelid AND fa.attnum = u.fk
						  JOIN pg_operator op ON op.oid = u.eqop
						  JOIN pg_namespace opn ON opn.oid = op.oprnamespace) AS match
				  FROM pg_constraint c
				  JOIN pg_class cc ON cc.oid = c.conrelid
				 WHERE c.contype = 'f' AND c.conparentid = 0
				   AND c.confrelid IN (SELECT x FROM privacy_guard._tree_oids((v_step ->> 'tbl')::oid::regclass) AS x)
				   AND cc.relkind IN ('r', 'p')
				   AND cc.relnamespace <> 'privacy_guard'::regnamespace
				   AND NOT EXISTS (SELECT 1 FROM privacy_guard.protected_part q WHERE q.target = c.conrelid)
				 ORDER BY c.conrelid::regclass::text, c.conname
			LOOP
				v_keys := privacy_guard._read_as_owner(k.parent,
					format('SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(%s)) FROM %s x WHERE %s',
						   k.pk_list, k.parent, v_step ->> 'pred'), subject, NULL, v_step -> 'keys');
				CONTINUE WHEN v_keys IS NULL;
				v_match := format('EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements($3) AS e WHERE %s)', k.match);
				v_rows := privacy_guard._read_as_owner(k.child,
					format('SELECT pg_catalog.jsonb_agg(s.r ORDER BY s.r) FROM '
						   '(SELECT pg_catalog.to_jsonb(y.*) AS r FROM (SELECT %s FROM %s x WHERE %s) y) s',
						   privacy_guard._report_columns(k.child), k.child, v_match),
					subject, v_secret, v_keys);
				CONTINUE WHEN v_rows IS NULL;
				v_data := v_data || jsonb_build_array(jsonb_build_object(
					'table', k.child::text, 'found_by', 'foreign key', 'foreign_key', k.conname,
					'references', ((v_step ->> 'tbl')::oid::regclass)::text, 'protected', false, 'rows', v_rows));
				/* the rows found are about the person too: go on from them, once per table */
				IF NOT k.child::oid = ANY (v_seen) THEN
					v_seen := v_seen || k.child::oid;
					v_walk := v_walk || jsonb_build_array(jsonb_build_object(
						'tbl', k.child::oid, 'depth', (v_step ->> 'depth')::int + 1, 'keys', v_keys,
						'pred', v_match));
				END IF;
			END LOOP;
		END LOOP;
	END LOOP;

	/*
	 * Tagged values anywhere: every tagged column of every table (each
	 * table on its own, partitions included), read as its owner; the
	 * values whose tag names this subject, matched and read with the
	 * digest key.
	 */
	/* tagged values inside composites are erased, not listed (check() says so) */
	FOR tc IN SELECT * FROM privacy_guard._tagged_columns() c WHERE NOT c.nested LOOP
		/* in an array column, each element whose tag names the subject */
		v_rows := privacy_guard._read_as_owner(tc.relid,
			format('SELECT pg_catalog.jsonb_agg(s.r ORDER BY s.r) FROM '
				   '(SELECT pg_catalog.jsonb_build_object(''value'', privacy_guard._tag_report_value(v.v, $1, $2), '
				   '''purposes'', privacy_guard.tag_purposes(v.v), '
				   '''retain_until'', privacy_guard.tag_retain_until(v.v)) AS r '
				   'FROM ONLY %s x CROSS JOIN LATERAL %s AS v(v) WHERE privacy_guard._tag_erasable(v.v, $1, $2)) s',
				   tc.relid,
				   CASE WHEN tc.is_array THEN format('pg_catalog.unnest(x.%I)', tc.colname)
						ELSE format('(SELECT x.%I)', tc.colname) END),
			subject, v_secret, NULL);
		CONTINUE WHEN v_rows IS NULL;
		v_tagged := v_tagged || (
			SELECT jsonb_agg(jsonb_build_object('table', tc.relid::text, 'column', tc.colname) || e.value
							 ORDER BY e.n)
			  FROM jsonb_array_elements(v_rows) WITH ORDINALITY AS e(value, n));
		v_purposes := v_purposes || ARRAY(SELECT jsonb_array_elements_text(e.value -> 'purposes')
											FROM jsonb_array_elements(v_rows) AS e(value));
	END LOOP;

	SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') INTO v_purposes
	  FROM unnest(v_purposes || ARRAY(SELECT c.purpose FROM privacy_guard.consent_state c
									   WHERE c.subject = subject_report.subject)) AS x
	 WHERE x IS NOT NULL;

	v_report := jsonb_build_object(
		'subject', subject,
		'data', v_data,
		'tagged_values', v_tagged,
		'consents', coalesce((
			SELECT jsonb_agg(jsonb_build_object('purpose', c.purpose, 'status', c.status,
					'valid_until', c.valid_until, 'changed_at', c.changed_at,
					'active', c.status = 'granted' AND (c.valid_until IS NULL OR c.valid_until > now()))
					ORDER BY c.purpose)
			  FROM privacy_guard.consent_state c
			 WHERE c.subject = subject_report.subject AND c.status <> 'objected'), '[]'),
		'objections', coalesce((
			SELECT jsonb_agg(jsonb_build_object('purpose', c.purpose, 'objected_at', c.changed_at)
					ORDER BY c.purpose)
			  FROM privacy_guard.consent_state c
			 WHERE c.subject = subject_report.subject AND c.status = 'objected'), '[]'),
		'consent_history', coalesce((
			SELECT jsonb_agg(jsonb_build_object('purpose', l.purpose, 'action', l.action,
					'valid_until', l.valid_until, 'evidence', l.evidence, 'recorded_at', l.recorded_at)
					ORDER BY l.id)
			  FROM privacy_guard.consent_ledger l
			 WHERE l.subject IN (subject_report.subject, v_digest)), '[]'),
		'erasure_requests', coalesce((
			SELECT jsonb_agg(jsonb_build_object('id', r.id, 'state', r.state, 'reason', r.reason,
					'requested_at', r.requested_at, 'due', r.due, 'completed_at', r.completed_at,
					'counts', r.counts, 'unreachable_at', r.unreachable_at)
					ORDER BY r.id)
			  FROM privacy_guard.erasure_request r
			 WHERE r.subject_digest = v_digest), '[]'),
		'purposes', coalesce((
			SELECT jsonb_agg(jsonb_build_object('name', p.name, 'legal_basis', p.legal_basis,
					'description', p.description) ORDER BY p.name)
			  FROM privacy_guard.purpose p WHERE p.name = ANY (v_purposes)), '[]'),
		'generated_at', now());
	RETURN v_report;
END
$$;
COMMENT ON FUNCTION privacy_guard.subject_report(text) IS 'Everything held about one subject (GDPR Art. 15 and 20), as jsonb';

/* ---------------------------------------------------------------- compliance check */

/*
 * PostgreSQL's own row-level security flaws, by the minor release that
 * fixed them (from the PostgreSQL release notes): the ones a server of the
 * given version still has.
 */
CREATE FUNCTION privacy_guard._unfixed_rls_flaws(server_version_num integer)
RETURNS TABLE (cve text, fixed_in text, what text)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT f.cve, f.major || '.' || f.minor, f.what
	  FROM (VALUES
		(13, 11, 'CVE-2023-2455', 'a query planned under one role and run under another (an inlined SQL function, SET ROLE, SECURITY DEFINER) may apply the wrong role''s row-level security policies'),
		(14, 8, 'CVE-2023-2455', 'a query planned under one role and run under another (an inlined SQL function, SET ROLE, SECURITY DEFINER) may apply the wrong role''s row-level security policies'),
		(15, 3, 'CVE-2023-2455', 'a query planned under one role and run under another (an inlined SQL function, SET ROLE, SECURITY DEFINER) may apply the wrong role''s row-level security policies'),
		(15, 4, 'CVE-2023-39418', 'MERGE does not apply row-level security policies correctly to the rows it inserts and updates'),
		(13, 17, 'CVE-2024-10976', 'a cached plan of a query reaching a protected table through a subquery, CTE or security-invoker view may be reused under another role, with that role''s policies not applied'),
		(14, 14, 'CVE-2024-10976', 'a cached plan of a query reaching a protected table through a subquery, CTE or security-invoker view may be reused under another role, with that role''s policies not applied'),
		(15, 9, 'CVE-2024-10976', 'a cached plan of a query reaching a protected table through a subquery, CTE or security-invoker view may be reused under another role, with that role''s policies not applied'),
		(16, 5, 'CVE-2024-10976', 'a cached plan of a query reaching a protected table through a subquery, CTE or security-invoker view may be reused under another role, with that role''s policies not applied'),
		(17, 1, 'CVE-2024-10976', 'a cached plan of a query reaching a protected table through a subquery, CTE or security-invoker view may be reused under another role, with that role''s policies not applied'),
		(13, 22, 'CVE-2025-8713', 'a leaky operator can read planner statistics (most common values, histograms) of rows hidden by row-level security in partitions and inheritance children'),
		(14, 19, 'CVE-2025-8713', 'a leaky operator can read planner statistics (most common values, histograms) of rows hidden by row-level security in partitions and inheritance children'),
		(15, 14, 'CVE-2025-8713', 'a leaky operator can read planner statistics (most common values, histograms) of rows hidden by row-level security in partitions and inheritance children'),
		(16, 10, 'CVE-2025-8713', 'a leaky operator can read planner statistics (most common values, histograms) of rows hidden by row-level security in partitions and inheritance children'),
		(17, 6, 'CVE-2025-8713', 'a leaky operator can read planner statistics (most common values, histograms) of rows hidden by row-level security in partitions and inheritance children')
	  ) AS f(major, minor, cve, what)
	 WHERE f.major = $1 / 10000 AND $1 % 10000 < f.minor
	 ORDER BY f.minor, f.cve
$$;
COMMENT ON FUNCTION privacy_guard._unfixed_rls_flaws(integer) IS 'Internal: PostgreSQL row-security flaws a server version has not had fixed';

/* Whether a reloptions array turns security_invoker on. */
CREATE FUNCTION privacy_guard._security_invoker(opts text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(bool_or(lower(o) ~ '^security_invoker=(t|tr|tru|true|y|ye|yes|on|1)$'), false)
	  FROM unnest($1) AS o
$$;
COMMENT ON FUNCTION privacy_guard._security_invoker(text[]) IS 'Internal: whether a view''s options make it run with the invoker''s rights';

/*
 * Compliance lint.  Each finding: severity ('error': data is exposed or a
 * rule cannot hold; 'warning': likely a gap; 'info'), the object, and a
 * message saying what the risk is and what to do.  The copy detection for
 * tables made by CREATE TABLE AS is a heuristic (shared column names and
 * types), and says so.
 */
CREATE FUNCTION privacy_guard.check()
RETURNS TABLE (severity text, object text, message text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off	/* the catalog query's estimates are large; compiling it took seconds */
AS $$
BEGIN
	RETURN QUERY
	WITH prot AS (
		/* every table carrying a registration's rules, with its registration */
		SELECT q.target::oid AS relid, t.relid AS root, t.subject_column
		  FROM privacy_guard.protected_part q
		  JOIN privacy_guard.protected_table t ON t.relid = q.root
		UNION
		SELECT x, t.relid, t.subject_column
		  FROM privacy_guard.protected_table t, privacy_guard._tree_oids(t.relid) AS x),
	user_rel AS (
		SELECT c.oid, c.relkind, c.relowner, c.reloptions, c.relispartition
		  FROM pg_class c
		 WHERE c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
									  'privacy_guard'::regnamespace)
		   AND c.relnamespace::regnamespace::text !~ '^pg_(toast|temp_|toast_temp_)'),
	/* views and materialized views reading protected tables, also through other views */
	reach AS (
		WITH RECURSIVE r(view, root) AS (
			SELECT DISTINCT rw.ev_class, p.root
			  FROM pg_depend d
			  JOIN pg_rewrite rw ON rw.oid = d.objid
			  JOIN prot p ON p.relid = d.refobjid
			 WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
			   AND rw.ev_class <> d.refobjid
			UNION
			SELECT rw.ev_class, r.root
			  FROM r
			  JOIN pg_class rc ON rc.oid = r.view AND rc.relkind = 'v'	/* a materialized view is a copy: reported itself */
			  JOIN pg_depend d ON d.refobjid = r.view AND d.refclassid = 'pg_class'::regclass
							  AND d.classid = 'pg_rewrite'::regclass
			  JOIN pg_rewrite rw ON rw.oid = d.objid
			 WHERE rw.ev_class <> r.view)
		SELECT r.view, r.root FROM r),
	findings(sev, obj, msg) AS (
		/* PostgreSQL's own row-security flaws */
		SELECT 'error', 'server',
			   format('PostgreSQL %s has %s (fixed in %s): %s. Upgrade to the latest %s.x minor release.',
					  current_setting('server_version'), f.cve, f.fixed_in, f.what,
					  current_setting('server_version_num')::integer / 10000)
		  FROM privacy_guard._unfixed_rls_flaws(current_setting('server_version_num')::integer) f
		UNION ALL
		/* tables referring to protected tables, themselves unprotected */
		SELECT 'warning', 'table ' || c.conrelid::regclass::text,
			   format('table %s refers to protected table %s (foreign key %s) but is not protected: its rows about a person are read without purpose, consent or retention checks, are not erased when the person is forgotten, and may block that erasure. Protect it with privacy_guard.protect().',
					  c.conrelid::regclass, p.root, quote_ident(c.conname))
		  FROM pg_constraint c
		  JOIN (SELECT DISTINCT prot.relid, prot.root FROM prot) p ON p.relid = c.confrelid
		  JOIN user_rel u ON u.oid = c.conrelid
		 WHERE c.contype = 'f' AND c.conparentid = 0
		   AND NOT EXISTS (SELECT 1 FROM prot q WHERE q.relid = c.conrelid)
		UNION ALL
		/* views that run with their owner's rights */
		SELECT CASE WHEN ro.rolsuper OR ro.rolbypassrls THEN 'error' ELSE 'warning' END,
			   'view ' || v.view::regclass::text,
			   CASE WHEN ro.rolsuper OR ro.rolbypassrls THEN
				   format('view %s reads protected table %s with the rights of its owner %s, who bypasses row-level security: everyone who may read the view sees every row, including rows the rules hide (no purpose, consent, retention or forget request is checked). Set security_invoker = true, or give the view an owner bound by the rules.',
						  v.view::regclass, string_agg(DISTINCT v.root::text, ', '), quote_ident(ro.rolname))
			   ELSE
				   format('view %s reads protected table %s with the rights of its owner %s (security_invoker is off): whoever may read the view reads the table without holding privileges on it, and the table''s own row-level policies are applied as for %s, not for the reader. privacy_guard''s rules still apply (FORCE ROW LEVEL SECURITY binds the owner; the purpose and authorisation checked are the reader''s), but if the owner is ever made a superuser or given BYPASSRLS, the view shows every row. Set security_invoker = true.',
						  v.view::regclass, string_agg(DISTINCT v.root::text, ', '), quote_ident(ro.rolname),
						  quote_ident(ro.rolname))
			   END
		  FROM reach v
		  JOIN user_rel u ON u.oid = v.view AND u.relkind = 'v'
		  JOIN pg_roles ro ON ro.oid = u.relowner
		 WHERE NOT privacy_guard._security_invoker(u.reloptions)
		 GROUP BY v.view, ro.rolname, ro.rolsuper, ro.rolbypassrls
		UNION ALL
		/* materialized views: copies */
		SELECT 'error', 'materialized view ' || v.view::regclass::text,
			   format('materialized view %s holds a copy of rows of protected table %s, made at its last refresh: the copy is not held to the rules (no purpose or consent check, no retention, not erased when a person is forgotten). Use a view with security_invoker = true instead, or protect a table you fill yourself.',
					  v.view::regclass, string_agg(DISTINCT v.root::text, ', '))
		  FROM reach v
		  JOIN user_rel u ON u.oid = v.view AND u.relkind = 'm'
		 GROUP BY v.view
		UNION ALL
		/* tables that look like copies (CREATE TABLE AS, SELECT INTO): a heuristic */
		SELECT 'warning', 'table ' || s.relid::regclass::text,
			   format('table %s is not protected but has the subject column %s (%s) of protected table %s and %s of its other columns (same names and types): it may be a copy of protected data (CREATE TABLE AS, SELECT INTO). This is a guess from the columns alone: protect the table if it holds personal data, or drop it.',
					  s.relid::regclass, quote_ident(s.subject_column), s.subject_type, s.root, s.shared - 1)
		  FROM (SELECT u.oid AS relid, t.relid AS root, t.subject_column,
					   format_type(sa.atttypid, sa.atttypmod) AS subject_type,
					   (SELECT count(*) FROM pg_attribute a
						  JOIN pg_attribute b ON b.attrelid = t.relid AND b.attname = a.attname
											 AND b.atttypid = a.atttypid AND b.attnum > 0 AND NOT b.attisdropped
						 WHERE a.attrelid = u.oid AND a.attnum > 0 AND NOT a.attisdropped) AS shared,
					   (SELECT count(*) FROM pg_attribute a
						 WHERE a.attrelid = u.oid AND a.attnum > 0 AND NOT a.attisdropped) AS ncols
				  FROM user_rel u
				  JOIN privacy_guard.protected_table t ON true
				  JOIN pg_attribute sa ON sa.attrelid = t.relid AND sa.attname = t.subject_column
				 WHERE u.relkind IN ('r', 'p') AND NOT u.relispartition
				   AND NOT EXISTS (SELECT 1 FROM prot q WHERE q.relid = u.oid)
				   AND EXISTS (SELECT 1 FROM pg_attribute a
								WHERE a.attrelid = u.oid AND a.attname = t.subject_column
								  AND a.atttypid = sa.atttypid AND NOT a.attisdropped)
				   /* referring tables are reported above */
				   AND NOT EXISTS (SELECT 1 FROM pg_constraint c
									WHERE c.contype = 'f' AND c.conrelid = u.oid
									  AND c.confrelid IN (SELECT q.relid FROM prot q))) s
		 WHERE s.shared >= 2 AND s.shared * 2 >= s.ncols
		UNION ALL
		/* roles the rules do not bind, authorised for purposes */
		SELECT 'warning', 'role ' || quote_ident(ro.rolname),
			   format('role %s is authorised for purpose %s, but as %s it is not bound by the rules: its reads are not limited to the purpose, to consenting subjects or to retention, and forget requests do not hide rows from it. Use a role without SUPERUSER and BYPASSRLS for the application.',
					  quote_ident(ro.rolname), string_agg(quote_literal(r.purpose), ', ' ORDER BY r.purpose),
					  CASE WHEN ro.rolsuper THEN 'a superuser' ELSE 'a role with BYPASSRLS' END)
		  FROM privacy_guard.purpose_role r
		  JOIN pg_roles ro ON ro.oid = r.role
		 WHERE ro.rolsuper OR ro.rolbypassrls
		 GROUP BY ro.rolname, ro.rolsuper
		UNION ALL
		/* purposes no role may use */
		SELECT 'warning', 'purpose ' || quote_literal(p.name),
			   format('no role is authorised for purpose %s or a parent of it of the same legal basis: only superusers and BYPASSRLS roles can read data under it. Authorise a role with privacy_guard.allow_purpose(), or drop the purpose.',
					  quote_literal(p.name))
		  FROM privacy_guard.purpose p
		 WHERE NOT EXISTS (SELECT 1 FROM privacy_guard.purpose_role r
							WHERE r.purpose IN (SELECT privacy_guard._authorising_purposes(p.name)))
		UNION ALL
		/* protected tables without retention */
		SELECT 'warning', 'table ' || t.relid::text,
			   format('protected table %s has no retention period: its rows are kept until the person asks to be forgotten (GDPR Art. 5(1)(e), storage limitation). Give it one with privacy_guard.protect(..., retention => ..., retention_column => ...).',
					  t.relid)
		  FROM privacy_guard.protected_table t
		 WHERE t.retention IS NULL
		UNION ALL
		/* tagged columns outside protected tables: the values carry rules, the rows do not */
		SELECT 'warning', 'table ' || tc.relid::text,
			   format('table %s is not protected but has tagged column%s %s: each tagged value carries its own rules (it is revealed only under its tag''s purposes, to an authorised role, before its retain-until, and erased when its subject is forgotten), but the rows do not: their other columns are read without purpose, consent or retention checks, a row is never deleted (only its tagged values are set to NULL), and a plain value written into a tagged column stays untagged, readable by every role that can read the table. If the rows are about a person, protect the table with privacy_guard.protect().',
					  tc.relid, CASE WHEN count(*) > 1 THEN 's' ELSE '' END,
					  string_agg(quote_ident(tc.colname), ', ' ORDER BY tc.attnum))
		  FROM privacy_guard._tagged_top_columns() tc
		 WHERE NOT tc.protected
		 GROUP BY tc.relid
		UNION ALL
		/* nothing enforces retention and forget requests in the background */
		SELECT 'warning', 'server',
			   'privacy_guard is not in shared_preload_libraries, so no background worker deletes rows past their retention or carries out forget requests (the rules still hide them). Add privacy_guard to shared_preload_libraries and restart the server, or call privacy_guard.run_maintenance() from a scheduler (cron, pg_cron) at least daily.'
		 WHERE NOT privacy_guard._preloaded()
		UNION ALL
		SELECT 'warning', 'server',
			   'privacy_guard.enabled is off, so the background worker deletes no rows past their retention and carries out no forget requests (the rules still hide them). Turn it on, or call privacy_guard.run_maintenance() from a scheduler.'
		 WHERE privacy_guard._preloaded() AND NOT current_setting('privacy_guard.enabled', true)::boolean
		UNION ALL
		/* where connections read the consent store from */
		SELECT CASE WHEN st LIKE 'shared, full%' OR st LIKE 'local: disabled%' THEN 'warning' ELSE 'info' END,
			   'server',
			   CASE WHEN st = 'shared'
					THEN 'consent store: shared. Connections read one copy of the consent store in shared memory and keep only the changes made since it was read.'
					WHEN st LIKE 'shared, full%'
					THEN 'consent store: the shared store is full (privacy_guard.shared_store_size), so some connections keep a private copy of the sets that did not fit, which costs each of them memory and time on its first protected statement. Raise privacy_guard.shared_store_size and restart the server.'
					ELSE 'consent store: private copies (' || substr(st, 8) || '). Each connection reads the whole consent store into its own memory on its first protected statement; with privacy_guard in shared_preload_libraries they share one copy.'
			   END
		  FROM privacy_guard._store_status() AS st
		UNION ALL
		SELECT 'warning', 'server',
			   'privacy_guard.databases does not name this database, so the background worker deletes no rows past their retention here and carries out no forget requests (the rules still hide them). Add the database to the setting, or call privacy_guard.run_maintenance() from a scheduler.'
		 WHERE privacy_guard._preloaded() AND NOT privacy_guard._database_chosen()
		UNION ALL
		/* erasure owed for more than a day (GDPR Art. 12(3): without undue delay) */
		SELECT 'error', 'erasure requests',
			   format('%s forget request%s due for more than a day %s not carried out (%s blocked, %s pending): the rows stay hidden but are still stored. See privacy_guard.erasure_requests for the error of each blocked request; pending ones wait for a round, or for older transactions to end.',
					  count(*), CASE WHEN count(*) > 1 THEN 's' ELSE '' END,
					  CASE WHEN count(*) > 1 THEN 'are' ELSE 'is' END,
					  count(*) FILTER (WHERE e.state = 'blocked'), count(*) FILTER (WHERE e.state = 'pending'))
		  FROM privacy_guard.erasure_request e
		 WHERE e.state IN ('pending', 'blocked') AND e.due < now() - interval '1 day'
		HAVING count(*) > 0
		UNION ALL
		/* tagged values where forget requests and retain-until do not reach them */
		SELECT 'warning', 'materialized view ' || c.oid::regclass::text,
			   format('materialized view %s has tagged column%s %s: forget requests and retain-until do not reach a materialized view, so its tagged values stay (and subject_report does not list them) until it is refreshed. Refresh it after every enforcement round, or fill a table instead.',
					  c.oid::regclass, CASE WHEN count(*) > 1 THEN 's' ELSE '' END,
					  string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum))
		  FROM user_rel c
		  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		 WHERE c.relkind = 'm'
		   AND (a.atttypid IN (SELECT privacy_guard._tagged_types())
				OR a.atttypid IN (SELECT privacy_guard._tagged_array_types()))
		 GROUP BY c.oid
		UNION ALL
		SELECT 'warning', CASE c.relkind WHEN 'm' THEN 'materialized view ' ELSE 'table ' END || c.oid::regclass::text,
			   format('column %I of %s has type %s, which holds tagged values inside a composite type or an array of arrays: forget requests and retain-until erase them there, but subject_report, the register and the notice do not read inside it. Keep tagged values in columns of a tagged type, or of an array of one.',
					  a.attname, c.oid::regclass, format_type(a.atttypid, a.atttypmod))
		  FROM user_rel c
		  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		 WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition
		   AND a.atttypid IN (SELECT privacy_guard._tagged_container_types())
	)
	SELECT f.sev, f.obj, f.msg
	  FROM findings f
	 ORDER BY CASE f.sev WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, f.obj, f.msg;
END
$$;
COMMENT ON FUNCTION privacy_guard.check() IS 'Compliance lint: copies and views of protected data, unprotected referencing tables, bypassing roles, unusable purposes, missing retention, tagged columns outside protected tables or out of the erasure''s reach, no background enforcement, overdue forget requests, an unpatched server';

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
		privacy_guard.set_legal_hold(regclass, interval, text),
		privacy_guard.run_maintenance(regclass),
		privacy_guard.erasure_status(text),
		privacy_guard.subject_report(text),
		privacy_guard.check(),
		privacy_guard.access_history(text, timestamptz),
		privacy_guard.launcher_status(),
		privacy_guard._tagged_column_purposes(),
		privacy_guard.grant_recorder(regrole) TO %s', role);
	EXECUTE format('GRANT SELECT ON privacy_guard.consents, privacy_guard.consent_ledger,
		privacy_guard.erasure_requests, privacy_guard.purpose_roles, privacy_guard.worker_status,
		privacy_guard.processing_register, privacy_guard.access_log, privacy_guard.round_history TO %s', role);
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
		privacy_guard.import_consents(text[], text[], timestamptz[], jsonb[]),
		privacy_guard.import_consents(regclass),
		privacy_guard.withdraw_consent(text, text),
		privacy_guard.object_to(text, text),
		privacy_guard.forget(text, text, timestamptz),
		privacy_guard.erasure_status(text) TO %s', role);
END
$$;
COMMENT ON FUNCTION privacy_guard.grant_recorder(regrole) IS 'Hand the recording level (consent, objections, forget requests) to a role (superusers and administrators)';

REVOKE ALL ON FUNCTION privacy_guard.grant_admin(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy_guard.grant_recorder(regrole) FROM PUBLIC;

/*
 * The privacy notice is what the company publishes on its website, and
 * says nothing that is not already readable by every role (the purposes,
 * protected_tables, and the catalogs' table and column names and
 * comments): everyone may generate it.  The processing register adds
 * anonymisers and row counts and is for administrators (grant_admin).
 */
GRANT EXECUTE ON FUNCTION privacy_guard.privacy_notice(text) TO PUBLIC;
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
	privacy_guard._tags_erasable(anyarray, text, bytea),
	privacy_guard._tags_erase(anyarray, text, bytea),
	privacy_guard._tags_expired(anyarray, timestamptz),
	privacy_guard._tags_expire(anyarray, timestamptz),
	privacy_guard._tags_erasable_in(anyelement, text, bytea),
	privacy_guard._tags_erase_in(anyelement, text, bytea),
	privacy_guard._tags_expired_in(anyelement, timestamptz),
	privacy_guard._tags_expire_in(anyelement, timestamptz),
	/* subject_report reads as the table owner; the digest key is its parameter */
	privacy_guard._tag_report_value(privacy_guard.tagged_text, text, bytea),
	privacy_guard._tag_report_value(privacy_guard.tagged_date, text, bytea),
	privacy_guard._tag_report_value(privacy_guard.tagged_numeric, text, bytea),
	privacy_guard._tag_report_value(privacy_guard.tagged_jsonb, text, bytea),
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
