/* ------------------------------------------------------------------ */
/* Reading views: tagged columns as plain values, withheld ones NULL   */
/* ------------------------------------------------------------------ */

/*
 * An ORM reads a table with a plain "SELECT col, ... FROM t"; the output
 * function of a withheld tagged value is an error (so that a dump or COPY
 * by a bound role fails instead of writing less than the table holds), and
 * an output function cannot give NULL.  A reading view is the ORM's
 * table: the same columns in the same order, each tagged column read
 * through reveal() (its base type; NULL when withheld), made with
 * security_invoker so that every rule still binds the role that reads it.
 * The table itself is unchanged: its output still fails on a withheld
 * value.
 */
CREATE FUNCTION privacy_guard.create_reading_view(tbl regclass, view_name text DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_nsp name;
	v_rel name;
	v_kind "char";
	v_parts text[];
	v_view text;
	v_cols text := '';
	v_tagged oid[] := ARRAY['privacy_guard.tagged_text'::regtype, 'privacy_guard.tagged_date'::regtype,
							'privacy_guard.tagged_numeric'::regtype, 'privacy_guard.tagged_jsonb'::regtype]::oid[];
	v_base oid;
	v_elem oid;
	v_att record;
	v_acl record;
	v_oid regclass;
BEGIN
	IF tbl IS NULL THEN
		RAISE EXCEPTION 'table must not be null' USING ERRCODE = '22004';
	END IF;
	SELECT n.nspname, c.relname, c.relkind INTO v_nsp, v_rel, v_kind
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE c.oid = tbl;
	IF v_kind NOT IN ('r', 'p', 'v', 'm', 'f') THEN
		RAISE EXCEPTION '% is not a table or view', tbl USING ERRCODE = '42809';
	END IF;

	/* the view's name: given (optionally schema-qualified), or <table>_read beside the table */
	IF view_name IS NULL THEN
		v_view := format('%I.%I', v_nsp, v_rel || '_read');
	ELSE
		v_parts := parse_ident(view_name);
		IF cardinality(v_parts) = 1 THEN
			v_view := format('%I.%I', v_nsp, v_parts[1]);
		ELSIF cardinality(v_parts) = 2 THEN
			v_view := format('%I.%I', v_parts[1], v_parts[2]);
		ELSE
			RAISE EXCEPTION 'invalid view name' USING ERRCODE = '42602',
				DETAIL = 'A view name is name or schema.name.';
		END IF;
	END IF;

	FOR v_att IN
		SELECT a.attname, a.atttypid
		  FROM pg_attribute a
		 WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped
		 ORDER BY a.attnum
	LOOP
		/* a domain over a tagged type (or over an array of one) reads as what it is over */
		v_base := v_att.atttypid;
		WHILE (SELECT t.typtype = 'd' FROM pg_type t WHERE t.oid = v_base) LOOP
			v_base := (SELECT t.typbasetype FROM pg_type t WHERE t.oid = v_base);
		END LOOP;
		v_elem := (SELECT t.typelem FROM pg_type t WHERE t.oid = v_base AND t.typcategory = 'A');
		IF v_base = ANY (v_tagged) THEN
			v_cols := v_cols || format(', privacy_guard.reveal(%1$I::%2$s) AS %1$I',
									   v_att.attname, v_base::regtype);
		ELSIF v_elem = ANY (v_tagged) THEN
			/* element by element, in order; an empty array stays empty */
			v_cols := v_cols || format(', CASE WHEN %1$I IS NULL THEN NULL ELSE coalesce((SELECT pg_catalog.array_agg(privacy_guard.reveal(e.v) ORDER BY e.n) FROM pg_catalog.unnest(%1$I::%2$s) WITH ORDINALITY AS e(v, n)), %3$L::%4$s[]) END AS %1$I',
									   v_att.attname, v_base::regtype, '{}',
									   replace(v_elem::regtype::text, 'privacy_guard.tagged_', ''));
		ELSE
			v_cols := v_cols || format(', %I', v_att.attname);
		END IF;
	END LOOP;
	IF v_cols = '' THEN
		RAISE EXCEPTION 'table % has no columns', tbl USING ERRCODE = '42P16';
	END IF;

	/*
	 * security_invoker: the table is read as the role that reads the view,
	 * so rules 1-8 and rule 3.4 bind it exactly as on the table (a view
	 * without it would read as its owner).
	 */
	EXECUTE format('CREATE OR REPLACE VIEW %s WITH (security_invoker = true) AS SELECT %s FROM %s',
				   v_view, substr(v_cols, 3), tbl);
	v_oid := v_view::regclass;
	EXECUTE format('COMMENT ON VIEW %s IS %L', v_oid,
				   format('Reading view of %s made by privacy_guard.create_reading_view(): tagged columns as plain values, NULL where withheld',
						  tbl));

	/* whoever may read the table may read the view (the table's own privileges still apply) */
	FOR v_acl IN
		SELECT DISTINCT a.grantee
		  FROM pg_class c, LATERAL aclexplode(c.relacl) a
		 WHERE c.oid = tbl AND a.privilege_type = 'SELECT'
		   AND a.grantee <> (SELECT c2.relowner FROM pg_class c2 WHERE c2.oid = v_oid)
	LOOP
		EXECUTE format('GRANT SELECT ON %s TO %s', v_oid,
					   CASE WHEN v_acl.grantee = 0 THEN 'PUBLIC' ELSE v_acl.grantee::regrole::text END);
	END LOOP;
	RETURN v_oid;
END
$$;
COMMENT ON FUNCTION privacy_guard.create_reading_view(regclass, text) IS 'Create (or replace) a security_invoker view of a table with the same columns, tagged ones read through reveal(): plain values, NULL where withheld; for ORMs';
