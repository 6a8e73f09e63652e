
/*
 * Bulk consent import, faster: its checks scan the arrays once each, and
 * its rows are written a page at a time, as COPY writes them (import.c).
 */
/*
 * One pass each over an import's arrays (import.c): how many rows fail a
 * check of a single row, and the purposes named with their number of rows
 * and first row, in the order of first use.
 */
CREATE FUNCTION privacy_guard._import_bad_rows(p_subjects text[], p_purposes text[],
											   p_valid_until timestamptz[])
RETURNS bigint
AS 'MODULE_PATHNAME', 'pvg_import_bad_rows'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._import_bad_rows(text[], text[], timestamptz[]) IS 'Internal: how many rows of an import fail a check of a single row';
CREATE FUNCTION privacy_guard._import_purposes(p_purposes text[],
											   OUT name text, OUT rows bigint, OUT first_at bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pvg_import_purposes'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION privacy_guard._import_purposes(text[]) IS 'Internal: the purposes an import names, in the order of first use, with their number of rows and first row';

/*
 * The checks of grant_consent() over the whole input, in its order; raises
 * the first that fails.  The arrays are scanned once by _import_bad_rows
 * and once by _import_purposes; where a row fails, arrays are read again
 * with set-returning functions in the select list, which stream, to count
 * and place each kind of failure.
 */
CREATE OR REPLACE FUNCTION privacy_guard._import_check(p_subjects text[], p_purposes text[],
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
	v_bad := privacy_guard._import_bad_rows(p_subjects, p_purposes, p_valid_until);
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
		SELECT x.name, x.rows, x.first_at FROM privacy_guard._import_purposes(p_purposes) x
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
 * The rows of a checked import written as COPY writes them, from the
 * arrays a page at a time (import.c); false, having written nothing, when
 * a table does not have the layout import.c knows.  They fire no trigger:
 * used only by _import_write_untriggered.
 */
CREATE FUNCTION privacy_guard._import_insert_state(p_subjects text[], p_purposes text[],
												   p_valid_until timestamptz[])
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_import_insert_state'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._import_insert_state(text[], text[], timestamptz[]) IS 'Internal: insert a checked import''s current state in primary-key order, without triggers (false: not done)';
CREATE FUNCTION privacy_guard._import_insert_ledger(p_subjects text[], p_purposes text[],
													p_valid_until timestamptz[], p_evidence jsonb[])
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_import_insert_ledger'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._import_insert_ledger(text[], text[], timestamptz[], jsonb[]) IS 'Internal: append a checked import''s grants to the ledger in input order, without triggers (false: not done)';

/*
 * The same writes without firing the consent tables' triggers, whose work
 * the import does itself, once per import instead of once per row: the
 * purpose foreign key (_import_check has found and locked every purpose),
 * the changed_xid stamp (set by _import_insert_state, or by the stamp
 * trigger, which fires in replica mode too) and the statement-level
 * invalidation (fired by import_consents afterwards).  Used only while
 * those are the only triggers there (_import_triggers_known).  A subject
 * that already has a state for the purpose (or a concurrent session that
 * just recorded one) makes the bulk insert fail with unique_violation: it
 * is undone and one INSERT ... ON CONFLICT sets the state as
 * grant_consent() does.
 */
CREATE OR REPLACE FUNCTION privacy_guard._import_write_untriggered(p_subjects text[], p_purposes text[],
														p_valid_until timestamptz[], p_evidence jsonb[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET session_replication_role = replica
SET work_mem = '256MB'
AS $$
BEGIN
	BEGIN
		IF NOT privacy_guard._import_insert_state(p_subjects, p_purposes, p_valid_until) THEN
			INSERT INTO privacy_guard.consent_state (subject, purpose, status, valid_until)
			SELECT u.s, u.p, 'granted', u.v
			  FROM (SELECT unnest(p_subjects) AS s, unnest(p_purposes) AS p, unnest(p_valid_until) AS v) u
			 ORDER BY u.s, u.p;
		END IF;
	EXCEPTION WHEN unique_violation THEN
		INSERT INTO privacy_guard.consent_state AS c (subject, purpose, status, valid_until)
		SELECT u.s, u.p, 'granted', u.v
		  FROM (SELECT unnest(p_subjects) AS s, unnest(p_purposes) AS p, unnest(p_valid_until) AS v) u
		 ORDER BY u.s, u.p
		ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE
			SET status = excluded.status, valid_until = excluded.valid_until, changed_at = now(),
				changed_xid = pg_current_xact_id();
	END;
	IF NOT privacy_guard._import_insert_ledger(p_subjects, p_purposes, p_valid_until, p_evidence) THEN
		INSERT INTO privacy_guard.consent_ledger (subject, purpose, action, valid_until, evidence)
		SELECT unnest(p_subjects), unnest(p_purposes), 'grant', unnest(p_valid_until), unnest(p_evidence);
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._import_write_untriggered(text[], text[], timestamptz[], jsonb[]) IS 'Internal: _import_write without the consent tables'' per-row triggers, whose work the import does itself';
REVOKE ALL ON FUNCTION privacy_guard._import_bad_rows(text[], text[], timestamptz[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy_guard._import_purposes(text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy_guard._import_insert_state(text[], text[], timestamptz[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy_guard._import_insert_ledger(text[], text[], timestamptz[], jsonb[]) FROM PUBLIC;
