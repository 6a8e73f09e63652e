/* ------------------------------------------------------------------ */
/* tagged_date: a date value carrying its own tag                     */
/* ------------------------------------------------------------------ */

/*
 * One of the four tagged types (tagged_text, tagged_date, tagged_numeric,
 * tagged_jsonb).  The four files are alike but for the base type, and share
 * one C implementation (src/tagged_*.c): a change to one
 * is made to all four.
 */
CREATE TYPE privacy_guard.tagged_date;

/* input, output, binary I/O, statistics */
CREATE FUNCTION privacy_guard.tagged_date_in(cstring)
RETURNS privacy_guard.tagged_date
AS 'MODULE_PATHNAME', 'pvg_tagged_date_in'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard.tagged_date_in(cstring) IS 'Text input of date tagged values: a tagged: literal, or a plain value awaiting its column''s default tag';

CREATE FUNCTION privacy_guard.tagged_date_out(privacy_guard.tagged_date)
RETURNS cstring
AS 'MODULE_PATHNAME', 'pvg_tagged_out'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard.tagged_date_out(privacy_guard.tagged_date) IS 'Text output: the value and its tag, or error 42501 when its tag withholds the value from the session';

CREATE FUNCTION privacy_guard.tagged_date_recv(internal)
RETURNS privacy_guard.tagged_date
AS 'MODULE_PATHNAME', 'pvg_tagged_date_recv'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard.tagged_date_recv(internal) IS 'Binary input, validated strictly';

CREATE FUNCTION privacy_guard.tagged_date_send(privacy_guard.tagged_date)
RETURNS bytea
AS 'MODULE_PATHNAME', 'pvg_tagged_send'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard.tagged_date_send(privacy_guard.tagged_date) IS 'Binary output: the value and its tag, or error 42501 when its tag withholds the value from the session';

CREATE FUNCTION privacy_guard.tagged_date_analyze(internal)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_tagged_typanalyze'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard.tagged_date_analyze(internal) IS 'No statistics: pg_stats must not show withheld values';

CREATE TYPE privacy_guard.tagged_date (INPUT = privacy_guard.tagged_date_in, OUTPUT = privacy_guard.tagged_date_out,
	RECEIVE = privacy_guard.tagged_date_recv, SEND = privacy_guard.tagged_date_send, ANALYZE = privacy_guard.tagged_date_analyze,
	INTERNALLENGTH = VARIABLE, STORAGE = extended, ALIGNMENT = int4,
	CATEGORY = 'U');
COMMENT ON TYPE privacy_guard.tagged_date IS 'A date value carrying its own tag: purposes, optional subject, optional retain-until, which decide who may see it';

/* the read side */
CREATE FUNCTION privacy_guard.tag(value date, purposes text[],
	subject text DEFAULT NULL, retain_until timestamptz DEFAULT NULL)
RETURNS privacy_guard.tagged_date
AS 'MODULE_PATHNAME', 'pvg_tag_make_date'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard.tag(date, text[], text, timestamptz) IS 'Build a tagged value: purposes it may be used for, optional subject and retain-until';

CREATE FUNCTION privacy_guard.reveal(v privacy_guard.tagged_date)
RETURNS date
AS 'MODULE_PATHNAME', 'pvg_tag_reveal'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard.reveal(privacy_guard.tagged_date) IS 'The value if its tag lets the session use it, else NULL; never an error about purposes';

CREATE FUNCTION privacy_guard.tag_purposes(v privacy_guard.tagged_date)
RETURNS text[]
AS 'MODULE_PATHNAME', 'pvg_tag_purposes'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard.tag_purposes(privacy_guard.tagged_date) IS 'The purposes in a value''s tag (NULL while it awaits its default tag)';

CREATE FUNCTION privacy_guard.tag_retain_until(v privacy_guard.tagged_date)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'pvg_tag_retain_until'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard.tag_retain_until(privacy_guard.tagged_date) IS 'The retain-until time in a value''s tag, or NULL';

/* casts: a plain value takes its column's default tag; back only through reveal() */
CREATE FUNCTION privacy_guard.tagged_date(date)
RETURNS privacy_guard.tagged_date
AS 'MODULE_PATHNAME', 'pvg_tag_plain_date'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard.tagged_date(date) IS 'Cast: a plain value, awaiting its column''s default tag';
CREATE CAST (date AS privacy_guard.tagged_date) WITH FUNCTION privacy_guard.tagged_date(date) AS ASSIGNMENT;
CREATE CAST (privacy_guard.tagged_date AS date) WITH FUNCTION privacy_guard.reveal(privacy_guard.tagged_date);

/* comparison: NULL when either side is withheld */
CREATE FUNCTION privacy_guard._tagged_eq(privacy_guard.tagged_date, privacy_guard.tagged_date)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_tagged_eq'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard._tagged_eq(privacy_guard.tagged_date, privacy_guard.tagged_date) IS 'Operator = on revealed values; NULL when either is withheld';
CREATE OPERATOR privacy_guard.= (LEFTARG = privacy_guard.tagged_date, RIGHTARG = privacy_guard.tagged_date,
	FUNCTION = privacy_guard._tagged_eq, COMMUTATOR = OPERATOR(privacy_guard.=),
	NEGATOR = OPERATOR(privacy_guard.<>), RESTRICT = pg_catalog.eqsel, JOIN = pg_catalog.eqjoinsel);

CREATE FUNCTION privacy_guard._tagged_ne(privacy_guard.tagged_date, privacy_guard.tagged_date)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_tagged_ne'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard._tagged_ne(privacy_guard.tagged_date, privacy_guard.tagged_date) IS 'Operator <> on revealed values; NULL when either is withheld';
CREATE OPERATOR privacy_guard.<> (LEFTARG = privacy_guard.tagged_date, RIGHTARG = privacy_guard.tagged_date,
	FUNCTION = privacy_guard._tagged_ne, COMMUTATOR = OPERATOR(privacy_guard.<>),
	NEGATOR = OPERATOR(privacy_guard.=), RESTRICT = pg_catalog.neqsel, JOIN = pg_catalog.neqjoinsel);

CREATE FUNCTION privacy_guard._tagged_lt(privacy_guard.tagged_date, privacy_guard.tagged_date)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_tagged_lt'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard._tagged_lt(privacy_guard.tagged_date, privacy_guard.tagged_date) IS 'Operator < on revealed values; NULL when either is withheld';
CREATE OPERATOR privacy_guard.< (LEFTARG = privacy_guard.tagged_date, RIGHTARG = privacy_guard.tagged_date,
	FUNCTION = privacy_guard._tagged_lt, COMMUTATOR = OPERATOR(privacy_guard.>),
	NEGATOR = OPERATOR(privacy_guard.>=), RESTRICT = pg_catalog.scalarltsel, JOIN = pg_catalog.scalarltjoinsel);

CREATE FUNCTION privacy_guard._tagged_le(privacy_guard.tagged_date, privacy_guard.tagged_date)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_tagged_le'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard._tagged_le(privacy_guard.tagged_date, privacy_guard.tagged_date) IS 'Operator <= on revealed values; NULL when either is withheld';
CREATE OPERATOR privacy_guard.<= (LEFTARG = privacy_guard.tagged_date, RIGHTARG = privacy_guard.tagged_date,
	FUNCTION = privacy_guard._tagged_le, COMMUTATOR = OPERATOR(privacy_guard.>=),
	NEGATOR = OPERATOR(privacy_guard.>), RESTRICT = pg_catalog.scalarlesel, JOIN = pg_catalog.scalarlejoinsel);

CREATE FUNCTION privacy_guard._tagged_gt(privacy_guard.tagged_date, privacy_guard.tagged_date)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_tagged_gt'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard._tagged_gt(privacy_guard.tagged_date, privacy_guard.tagged_date) IS 'Operator > on revealed values; NULL when either is withheld';
CREATE OPERATOR privacy_guard.> (LEFTARG = privacy_guard.tagged_date, RIGHTARG = privacy_guard.tagged_date,
	FUNCTION = privacy_guard._tagged_gt, COMMUTATOR = OPERATOR(privacy_guard.<),
	NEGATOR = OPERATOR(privacy_guard.<=), RESTRICT = pg_catalog.scalargtsel, JOIN = pg_catalog.scalargtjoinsel);

CREATE FUNCTION privacy_guard._tagged_ge(privacy_guard.tagged_date, privacy_guard.tagged_date)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_tagged_ge'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard._tagged_ge(privacy_guard.tagged_date, privacy_guard.tagged_date) IS 'Operator >= on revealed values; NULL when either is withheld';
CREATE OPERATOR privacy_guard.>= (LEFTARG = privacy_guard.tagged_date, RIGHTARG = privacy_guard.tagged_date,
	FUNCTION = privacy_guard._tagged_ge, COMMUTATOR = OPERATOR(privacy_guard.<=),
	NEGATOR = OPERATOR(privacy_guard.<), RESTRICT = pg_catalog.scalargesel, JOIN = pg_catalog.scalargejoinsel);

/* the erasure's matcher: answers only with the database's digest key */
CREATE FUNCTION privacy_guard._tag_erasable(privacy_guard.tagged_date, text, bytea)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_tag_erasable'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard._tag_erasable(privacy_guard.tagged_date, text, bytea) IS 'Internal: whether a value''s tag names the subject; needs the digest key';

/* subject_report's reader: the value of this subject (or of nobody), given the digest key */
CREATE FUNCTION privacy_guard._tag_report_value(privacy_guard.tagged_date, text, bytea)
RETURNS date
AS 'MODULE_PATHNAME', 'pvg_tag_report_value'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard._tag_report_value(privacy_guard.tagged_date, text, bytea) IS 'Internal: for subject_report, the value when its tag names the subject or no subject, else NULL; needs the digest key';
