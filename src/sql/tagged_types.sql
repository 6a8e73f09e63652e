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

