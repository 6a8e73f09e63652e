/* ------------------------------------------------------------------ */
/* Enforcement: anonymizers and the erasure engine                       */
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

/*
 * A function's schema-qualified signature, as to_regprocedure() reads it
 * back ("schema.name(argtypes)", types outside pg_catalog qualified too);
 * NULL when there is no such function.  Anonymizers store this rather than
 * the function's OID: pg_upgrade carries neither a regprocedure column nor
 * function OIDs.
 */
CREATE FUNCTION privacy_guard._function_signature(fn oid)
RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.oidvectortypes(p.proargtypes))
	  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
	 WHERE p.oid OPERATOR(pg_catalog.=) $1
$$;
COMMENT ON FUNCTION privacy_guard._function_signature(oid) IS 'Internal: a function''s schema-qualified signature (as anonymizers store it)';

/*
 * Stands in for a custom anonymizer whose function is gone or no longer
 * takes and returns the column's type: the statement anonymizing the
 * table fails there, so its rows stay as they are (and the request open)
 * until the owner sets the anonymizer again.
 */
CREATE FUNCTION privacy_guard._anonymizer_unusable(sig text, val anyelement)
RETURNS anyelement
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'anonymizer function % no longer exists or no longer takes and returns the column''s type',
		coalesce(sig, '(dropped)')
		USING ERRCODE = '42883',
			  HINT = 'Set the column''s anonymizer again with privacy_guard.set_anonymizer().';
END
$$;
COMMENT ON FUNCTION privacy_guard._anonymizer_unusable(text, anyelement) IS 'Internal: fails the anonymization of a table whose custom anonymizer cannot be used';

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
		RAISE EXCEPTION 'the subject column "%" is always anonymized to NULL', col
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
	VALUES (tbl, col, CASE WHEN v_fn IS NULL THEN method ELSE 'function' END,
			privacy_guard._function_signature(v_fn))
	ON CONFLICT ON CONSTRAINT anonymizer_pkey DO UPDATE
		SET method = excluded.method, fn = excluded.fn;
END
$$;
COMMENT ON FUNCTION privacy_guard.set_anonymizer(regclass, name, text) IS 'Choose how anonymization treats a column';

/* The SET list that anonymizes a row of a table: its anonymizers, and the subject cut. */
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
		  FROM cols c JOIN pg_attribute at ON at.attrelid = $1 AND at.attname = c.col),
	/* a custom anonymizer's function, found by its signature and checked again */
	resolved AS (
		SELECT t.*, f.oid AS fn_oid,
			   coalesce(f.prorettype = t.typ AND f.pronargs = 1 AND f.proargtypes[0] = t.typ, false) AS fn_ok
		  FROM typed t
		  LEFT JOIN pg_proc f ON t.method = 'function' AND f.oid = to_regprocedure(t.fn))
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
			ELSE CASE WHEN fn_ok THEN format('%s(%I)', fn_oid::regproc, col)
					  ELSE format('privacy_guard._anonymizer_unusable(%L, %I)', fn, col) END
		END), ', ' ORDER BY col)
	  FROM resolved
$$;
COMMENT ON FUNCTION privacy_guard._anonymize_set(regclass) IS 'Internal: the SET list that anonymizes a row';

