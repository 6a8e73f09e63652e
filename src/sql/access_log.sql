/* ------------------------------------------------------------------ */
/* Access log (privacy_guard.audit; audit.c)                            */
/* ------------------------------------------------------------------ */

/*
 * Reads of protected tables, one row per minute, role, purpose and table
 * and flush (the view adds them up).  Written only by _flush_access_log(),
 * from shared memory, so a read is logged even if its transaction rolls
 * back.  Rows with a NULL role, purpose and table hold reads folded into
 * the overflow entry while shared memory was full.  Dumped like the
 * registries: it is the record of processing an administrator must be
 * able to show, and a restore must not lose it.
 */
CREATE TABLE privacy_guard.access_log_data (
	bucket		timestamptz NOT NULL,	/* start of the minute the reads ended in (overflow: the latest) */
	role		text,		/* current_user of the reads */
	purpose		text,
	table_name	text,		/* schema-qualified, as named when logged */
	statements	bigint NOT NULL,
	rows		bigint NOT NULL,	/* rows the policy let the reader see */
	subjects	bytea NOT NULL,		/* Bloom filter of their subjects (audit.c) */
	unbound		boolean NOT NULL DEFAULT false	/* by a role the rules do not bind: table level, no subjects or rows */
);
CREATE INDEX access_log_data_bucket ON privacy_guard.access_log_data (bucket);
COMMENT ON TABLE privacy_guard.access_log_data IS 'Reads of protected tables as flushed from shared memory; see access_log';
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.access_log_data', '');
REVOKE ALL ON privacy_guard.access_log_data FROM PUBLIC;

CREATE FUNCTION privacy_guard._flush_access_log()
RETURNS bigint
AS 'MODULE_PATHNAME', 'pvg_flush_access_log'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._flush_access_log() IS 'Internal: move this database''s logged reads from shared memory into access_log_data and delete rows past privacy_guard.audit_retention; NULL (and a warning) if the log could not be written';

CREATE FUNCTION privacy_guard._subjects_may_include(filter bytea, subject text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_subjects_may_include'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._subjects_may_include(bytea, text) IS 'Internal: whether an access log row''s Bloom filter may hold a subject';

CREATE VIEW privacy_guard.access_log AS
	SELECT d.bucket, d.role, d.purpose, d.table_name,
		   pg_catalog.sum(d.statements)::bigint AS statements, pg_catalog.sum(d.rows)::bigint AS rows,
		   d.unbound
	  FROM privacy_guard.access_log_data d
	 GROUP BY d.bucket, d.role, d.purpose, d.table_name, d.unbound;
COMMENT ON VIEW privacy_guard.access_log IS 'Reads of protected tables per minute, role, purpose and table (privacy_guard.audit); unbound: by a superuser or BYPASSRLS role, counted once per table per transaction, without rows';

CREATE FUNCTION privacy_guard.access_history(subject text, since timestamptz)
RETURNS TABLE (bucket timestamptz, role text, purpose text, table_name text)
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM privacy_guard._check_subject(subject);
	IF since IS NULL THEN
		RAISE EXCEPTION 'since must not be null' USING ERRCODE = '22004';
	END IF;
	/* a bucket is a minute: one that ends after since may hold reads after it */
	RETURN QUERY
		SELECT DISTINCT d.bucket, d.role, d.purpose, d.table_name
		  FROM privacy_guard.access_log_data d
		 WHERE d.bucket OPERATOR(pg_catalog.+) interval '1 minute' OPERATOR(pg_catalog.>) since
		   AND privacy_guard._subjects_may_include(d.subjects, subject)
		 ORDER BY 1, 2, 3, 4;
END
$$;
COMMENT ON FUNCTION privacy_guard.access_history(text, timestamptz) IS 'Logged reads that may have touched a subject''s rows since a time (no false negatives)';

