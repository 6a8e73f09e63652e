/* ------------------------------------------------------------------ */
/* Consent-tagged types: what is shared by the four (src/tagged.h)      */
/* ------------------------------------------------------------------ */

/*
 * Each of tagged_text, tagged_date, tagged_numeric and tagged_jsonb is
 * created in its own file (tagged_<base>.sql): the type, its I/O, tag(),
 * reveal(), its casts and comparison operators.  This file holds what is
 * not one per type: the extra casts into tagged_text and tagged_numeric,
 * LIKE on tagged_text, and default tags.  No btree or hash operator class
 * on purpose (see src/tagged_ops.c): sorting and grouping go through
 * reveal().
 */

/* existing statements write integers, floats and varchars into tagged columns too */
CREATE CAST (varchar AS privacy_guard.tagged_text)
	WITH FUNCTION privacy_guard.tagged_text(text) AS ASSIGNMENT;

CREATE FUNCTION privacy_guard.tagged_numeric(smallint)
RETURNS privacy_guard.tagged_numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS 'SELECT privacy_guard.tagged_numeric($1::pg_catalog.numeric)';
COMMENT ON FUNCTION privacy_guard.tagged_numeric(smallint) IS 'Cast: a plain number, awaiting its column''s default tag';
CREATE CAST (smallint AS privacy_guard.tagged_numeric)
	WITH FUNCTION privacy_guard.tagged_numeric(smallint) AS ASSIGNMENT;

CREATE FUNCTION privacy_guard.tagged_numeric(integer)
RETURNS privacy_guard.tagged_numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS 'SELECT privacy_guard.tagged_numeric($1::pg_catalog.numeric)';
COMMENT ON FUNCTION privacy_guard.tagged_numeric(integer) IS 'Cast: a plain number, awaiting its column''s default tag';
CREATE CAST (integer AS privacy_guard.tagged_numeric)
	WITH FUNCTION privacy_guard.tagged_numeric(integer) AS ASSIGNMENT;

CREATE FUNCTION privacy_guard.tagged_numeric(bigint)
RETURNS privacy_guard.tagged_numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS 'SELECT privacy_guard.tagged_numeric($1::pg_catalog.numeric)';
COMMENT ON FUNCTION privacy_guard.tagged_numeric(bigint) IS 'Cast: a plain number, awaiting its column''s default tag';
CREATE CAST (bigint AS privacy_guard.tagged_numeric)
	WITH FUNCTION privacy_guard.tagged_numeric(bigint) AS ASSIGNMENT;

CREATE FUNCTION privacy_guard.tagged_numeric(real)
RETURNS privacy_guard.tagged_numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS 'SELECT privacy_guard.tagged_numeric($1::pg_catalog.numeric)';
COMMENT ON FUNCTION privacy_guard.tagged_numeric(real) IS 'Cast: a plain number, awaiting its column''s default tag';
CREATE CAST (real AS privacy_guard.tagged_numeric)
	WITH FUNCTION privacy_guard.tagged_numeric(real) AS ASSIGNMENT;

CREATE FUNCTION privacy_guard.tagged_numeric(double precision)
RETURNS privacy_guard.tagged_numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS 'SELECT privacy_guard.tagged_numeric($1::pg_catalog.numeric)';
COMMENT ON FUNCTION privacy_guard.tagged_numeric(double precision) IS 'Cast: a plain number, awaiting its column''s default tag';
CREATE CAST (double precision AS privacy_guard.tagged_numeric)
	WITH FUNCTION privacy_guard.tagged_numeric(double precision) AS ASSIGNMENT;

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

