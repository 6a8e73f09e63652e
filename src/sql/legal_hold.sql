CREATE FUNCTION privacy_guard.set_legal_hold(tbl regclass, keep interval, purpose text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t privacy_guard.protected_table;
BEGIN
	IF tbl IS NULL THEN
		RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = '22004';
	END IF;
	SELECT * INTO t FROM privacy_guard.protected_table p WHERE p.relid = tbl;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table % is not protected', tbl USING ERRCODE = '55000';
	END IF;
	PERFORM privacy_guard._check_table_owner(tbl);
	IF keep IS NULL THEN
		/* the hold ends: what it kept is erased by the next round */
		UPDATE privacy_guard.protected_table p SET hold_keep = NULL, hold_purpose = NULL
		 WHERE p.relid = tbl;
		RETURN;
	END IF;
	IF t.retention_column IS NULL THEN
		RAISE EXCEPTION 'table % has no retention_column', tbl
			USING ERRCODE = '55000',
				  DETAIL = 'A legal hold keeps rows until retention_column + keep.',
				  HINT = 'Protect the table again with a retention_column.';
	END IF;
	IF keep <= interval '0' THEN
		RAISE EXCEPTION 'legal hold must keep rows for a positive interval' USING ERRCODE = '22023';
	END IF;
	IF privacy_guard._check_purpose(purpose) <> 'legal_obligation' THEN
		RAISE EXCEPTION 'purpose "%" has legal basis %, not legal_obligation', purpose,
			privacy_guard._check_purpose(purpose)
			USING ERRCODE = '22023',
				  DETAIL = 'Rows kept after retention or a forget request may only serve a legal obligation.';
	END IF;
	UPDATE privacy_guard.protected_table p
	   SET hold_keep = keep, hold_purpose = purpose,
		   purposes = CASE WHEN purpose = ANY (p.purposes) THEN p.purposes ELSE p.purposes || purpose END
	 WHERE p.relid = tbl;
END
$$;
COMMENT ON FUNCTION privacy_guard.set_legal_hold(regclass, interval, text) IS 'Keep a table''s expired or forgotten rows, restricted to a legal_obligation purpose, until retention_column + keep (NULL keep ends the hold)';

/* Rows of a table past retention but kept under its legal hold, now. */
CREATE FUNCTION privacy_guard._restricted_rows(tbl regclass)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t privacy_guard.protected_table;
BEGIN
	SELECT * INTO t FROM privacy_guard.protected_table p WHERE p.relid = tbl;
	IF t.hold_keep IS NULL OR t.retention IS NULL THEN
		RETURN 0;
	END IF;
	RETURN privacy_guard._exec_as_owner(tbl,
		format('SELECT pg_catalog.count(*) FROM %s WHERE %s AND %s', tbl,
			   privacy_guard._time_cond(t.retention_column, t.retention, true, now()),
			   privacy_guard._time_cond(t.retention_column, t.hold_keep, false, now())),
		NULL, NULL);
END
$$;
COMMENT ON FUNCTION privacy_guard._restricted_rows(regclass) IS 'Internal: rows past retention kept under a legal hold';

