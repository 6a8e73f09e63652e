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
	IF v_user IS NULL THEN
		SELECT 'recipient ' || quote_literal(pr.recipient) INTO v_user
		  FROM privacy_guard.purpose_recipient pr WHERE pr.purpose = drop_purpose.name
		 ORDER BY pr.recipient LIMIT 1;
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

