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
		   tg.purposes AS tag_purposes,
		   ARRAY(SELECT DISTINCT pr.recipient
				   FROM privacy_guard.purpose_recipient pr
				  WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(t.purposes) AS u(name)
								 WHERE u.name OPERATOR(pg_catalog.=) pr.purpose
									OR pg_catalog.starts_with(pr.purpose, u.name OPERATOR(pg_catalog.||) '.')
									OR pg_catalog.starts_with(u.name, pr.purpose OPERATOR(pg_catalog.||) '.'))
				  ORDER BY 1) AS recipients
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
		   tg.purposes,
		   ARRAY(SELECT DISTINCT pr.recipient
				   FROM privacy_guard.purpose_recipient pr
				  WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(tg.purposes) AS u(name)
								 WHERE u.name OPERATOR(pg_catalog.=) pr.purpose
									OR pg_catalog.starts_with(pr.purpose, u.name OPERATOR(pg_catalog.||) '.')
									OR pg_catalog.starts_with(u.name, pr.purpose OPERATOR(pg_catalog.||) '.'))
				  ORDER BY 1)
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
COMMENT ON VIEW privacy_guard.processing_register IS 'Record of processing (GDPR Art. 30): per protected table and column, and per tagged column outside protected tables: purposes, legal bases, retention, actions, anonymizers, holds, approximate rows, purposes found in tags, recipients their purposes disclose to';

