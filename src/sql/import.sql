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
CREATE FUNCTION privacy_guard._import_write_untriggered(p_subjects text[], p_purposes text[],
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

