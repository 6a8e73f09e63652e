/*
 * Purge batches that grow: a table's first batch has at most 1000 rows,
 * each next one twice as many, up to privacy_guard.batch_size (now 10000
 * by default), while a batch takes under a twentieth of
 * privacy_guard.engine_time_limit (worker.c does the same).
 */
/* the rows of a table's next purge batch (engine.c, pvg_next_batch): the first when batch is NULL */
CREATE FUNCTION privacy_guard._next_batch(batch integer, took_ms double precision)
RETURNS integer
AS 'MODULE_PATHNAME', 'pvg_next_batch_fn'
LANGUAGE C STABLE;
COMMENT ON FUNCTION privacy_guard._next_batch(integer, double precision) IS 'Internal: the rows of a table''s next purge batch, after one that took took_ms';

CREATE OR REPLACE FUNCTION privacy_guard.run_maintenance(tbl regclass DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off		/* catalog queries over set-returning functions look costly enough to compile */
AS $$
DECLARE
	v_now timestamptz := now();
	v_secret bytea := privacy_guard._secret();
	v_batch integer;
	v_started timestamptz;
	v_result jsonb := '{"expired": {}, "errors": {}}';
	p record;
	b record;
	v_after tid;
BEGIN
	PERFORM privacy_guard._flush_access_log();
	/*
	 * Rows past retention: deleted, or anonymized, in the same batches the
	 * worker runs (here all in the caller's transaction), growing while
	 * they are quick (_next_batch).  A table that fails is reported and the
	 * others go on; the next round retries it.
	 */
	FOR p IN SELECT * FROM privacy_guard._purge_targets(tbl) LOOP
		v_after := '(0,0)';
		v_batch := privacy_guard._next_batch(NULL, NULL);
		LOOP
			v_started := clock_timestamp();
			b := privacy_guard._expire_batch(p.part, p.root, v_now, v_after, v_batch, v_secret);
			v_result := privacy_guard._add_batch(v_result, p.root, b.action, b.processed, b.error);
			EXIT WHEN b.error IS NOT NULL OR b.matched < v_batch;
			v_after := b.last;
			v_batch := privacy_guard._next_batch(v_batch,
					1000 * pg_catalog.date_part('epoch', clock_timestamp() - v_started));
		END LOOP;
	END LOOP;

	v_result := privacy_guard._finish_round(v_result, tbl, v_now, v_secret);
	PERFORM privacy_guard._record_round(v_result, tbl, v_now, 'run_maintenance', NULL);
	RETURN v_result;
END
$$;
COMMENT ON FUNCTION privacy_guard.run_maintenance(regclass) IS 'One enforcement round now, in this session: expire rows past retention, carry out due forget requests';
REVOKE ALL ON FUNCTION privacy_guard._next_batch(integer, double precision) FROM PUBLIC;
