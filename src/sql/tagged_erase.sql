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
 * the erasure's tests over every tagged value within (tagged_erase.c), the
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
 * to every element (tagged_erase.c).  The forget test answers only with the
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

