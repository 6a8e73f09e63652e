CREATE FUNCTION privacy_guard._batch_as_owner(tbl regclass, sql text, after tid, secret bytea,
		OUT matched bigint, OUT processed bigint, OUT last tid)
RETURNS record
AS 'MODULE_PATHNAME', 'pvg_batch_as_owner'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._batch_as_owner(regclass, text, tid, bytea) IS 'Internal: run one purge batch with the table owner''s rights';

/*
 * Where purging goes: every plain table of each protected tree that has a
 * retention (a partitioned root holds no rows), and of parts detached from
 * it since, in erasure order, each with the registered table whose rules
 * it follows.
 */
CREATE FUNCTION privacy_guard._purge_targets(tbl regclass DEFAULT NULL)
RETURNS TABLE (part regclass, root regclass)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN QUERY
		SELECT x.part::regclass, o.relid
		  FROM privacy_guard._erasure_order() WITH ORDINALITY AS o
		 CROSS JOIN LATERAL (
				SELECT privacy_guard._tree_oids(o.relid) AS part
				UNION
				/* parts detached since, which still carry the rules */
				SELECT privacy_guard._tree_oids(pp.target)
				  FROM privacy_guard.protected_part pp WHERE pp.root = o.relid) AS x
		  JOIN pg_class c ON c.oid = x.part AND c.relkind = 'r'
		 WHERE o.retention IS NOT NULL AND ($1 IS NULL OR o.relid = $1)
		 ORDER BY o.ordinality, x.part;
END
$$;
COMMENT ON FUNCTION privacy_guard._purge_targets(regclass) IS 'Internal: the tables a round purges, in erasure order';

/*
 * One purge batch: up to batch rows of part past retention (and past the
 * legal hold, if any) at round_at, after position after, deleted or
 * anonymized as the table's registration says.  Rows locked by others are
 * skipped (the next round retries).  Returns the rows taken, the rows
 * deleted or anonymized, where the batch stopped, and an error (an SQLSTATE
 * and the table, never data) instead of raising it.  Shared by the worker,
 * which commits after each batch, and run_maintenance().
 */
CREATE FUNCTION privacy_guard._expire_batch(part regclass, root regclass, round_at timestamptz,
		after tid, batch integer, secret bytea,
		OUT matched bigint, OUT processed bigint, OUT last tid, OUT action text, OUT error text)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t privacy_guard.protected_table;
	v_cond text;
	v_sql text;
	v_dml text;
BEGIN
	matched := 0;
	processed := 0;
	SELECT * INTO t FROM privacy_guard.protected_table p WHERE p.relid = root;
	IF NOT FOUND OR t.retention IS NULL THEN
		RETURN;				/* unprotected since the round began */
	END IF;
	v_cond := privacy_guard._time_cond(t.retention_column, t.retention, true, round_at);
	IF t.hold_keep IS NOT NULL THEN
		/* under a legal hold, expired rows are kept (restricted) until retention_column + keep */
		v_cond := v_cond || ' AND ' || privacy_guard._time_cond(t.retention_column, t.hold_keep, true, round_at);
	END IF;
	IF t.on_expiry = 'delete' THEN
		action := 'deleted';
		v_dml := format('DELETE FROM ONLY %s', part);
	ELSE
		/* once: anonymizing cuts the subject, and rows without one are done */
		action := 'anonymized';
		v_cond := v_cond || format(' AND %I IS NOT NULL', t.subject_column);
		v_dml := format('UPDATE ONLY %s SET %s', part, privacy_guard._anonymize_set(root));
	END IF;
	v_sql := format('WITH b AS MATERIALIZED (SELECT ctid FROM ONLY %1$s WHERE ctid OPERATOR(pg_catalog.>) $1 AND %2$s '
					'LIMIT %3$s FOR UPDATE SKIP LOCKED), '
					'd AS (%4$s WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT b.ctid FROM b)) RETURNING 1) '
					'SELECT (SELECT pg_catalog.count(*) FROM b), (SELECT pg_catalog.count(*) FROM d), (SELECT pg_catalog.max(b.ctid) FROM b)',
					part, v_cond, batch, v_dml);
	BEGIN
		SELECT r.matched, r.processed, r.last INTO matched, processed, last
		  FROM privacy_guard._batch_as_owner(part, v_sql, after, secret) r;
	EXCEPTION
	WHEN query_canceled THEN
		/* only the engine's own time limit; a cancel from anyone else goes on */
		IF NOT privacy_guard._engine_timed_out() THEN
			RAISE;
		END IF;
		matched := 0;
		processed := 0;
		last := NULL;
		error := format('purging %s took longer than privacy_guard.engine_time_limit', part);
		RETURN;
	WHEN OTHERS THEN
		/* the owner's trigger or rule may have put data in the message: keep the SQLSTATE */
		matched := 0;
		processed := 0;
		last := NULL;
		error := format('error %s while purging %s', SQLSTATE, part);
		RETURN;
	END;
	IF processed < matched AND t.on_expiry = 'delete' THEN
		error := format('table %s kept %s rows past retention: a trigger or rule prevented the purge',
						part, matched - processed);
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._expire_batch(regclass, regclass, timestamptz, tid, integer, bytea) IS 'Internal: one purge batch of one table';


