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
 * Retention by partition.  A range partition of a table partitioned by its
 * retention column holds rows between its bounds only, so the bounds say
 * what a round finds in it: none past retention while its lower bound plus
 * the retention is still ahead (the round skips it without reading it), and
 * only rows past retention once its upper bound plus the retention (and plus
 * the legal hold's keep, if any) has passed.
 *
 * Which of the two part is at round_at: expired, current, or NULL (rows of
 * both kinds may be in it, or it is not such a partition).  The bound may be
 * the partition's or that of a partition above it; it is read back as
 * PostgreSQL prints it, in this session's DateStyle, and read in as the
 * column's (built-in) type.
 */
CREATE FUNCTION privacy_guard._part_span(part regclass, root regclass, round_at timestamptz)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t privacy_guard.protected_table;
	b record;
	v_bound text;
	v_yes boolean;
BEGIN
	SELECT * INTO t FROM privacy_guard.protected_table p WHERE p.relid = root;
	IF NOT FOUND OR t.retention IS NULL THEN
		RETURN NULL;
	END IF;
	FOR b IN
		SELECT pg_get_expr(c.relpartbound, c.oid) AS bound, a.atttypid::regtype AS typ
		  FROM pg_partition_ancestors(part) x
		  JOIN pg_class c ON c.oid = x.relid
		  JOIN pg_inherits i ON i.inhrelid = c.oid
		  JOIN pg_partitioned_table pt ON pt.partrelid = i.inhparent
		  JOIN pg_attribute a ON a.attrelid = i.inhparent AND a.attnum = pt.partattrs[0]
		 WHERE c.relispartition
		   AND pt.partstrat = 'r' AND pt.partnatts = 1
		   AND a.attname = t.retention_column
		   AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)
	LOOP
		/* FOR VALUES FROM ('...') TO ('...'); MINVALUE and MAXVALUE have no end */
		v_bound := substring(b.bound FROM ' TO \(''([^'']*)''\)$');
		IF v_bound IS NOT NULL THEN
			EXECUTE format('SELECT %1$L::%2$s OPERATOR(pg_catalog.+) $1 OPERATOR(pg_catalog.<=) $3 '
						   'AND ($2 IS NULL OR %1$L::%2$s OPERATOR(pg_catalog.+) $2 OPERATOR(pg_catalog.<=) $3)',
						   v_bound, b.typ)
				INTO v_yes USING t.retention, t.hold_keep, round_at;
			IF v_yes THEN
				RETURN 'expired';
			END IF;
		END IF;
		v_bound := substring(b.bound FROM '^FOR VALUES FROM \(''([^'']*)''\) TO ');
		IF v_bound IS NOT NULL THEN
			EXECUTE format('SELECT %1$L::%2$s OPERATOR(pg_catalog.+) $1 OPERATOR(pg_catalog.>) $2', v_bound, b.typ)
				INTO v_yes USING t.retention, round_at;
			IF v_yes THEN
				RETURN 'current';
			END IF;
		END IF;
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION privacy_guard._part_span(regclass, regclass, timestamptz) IS 'Internal: whether a partition''s bounds put all its rows past retention (expired) or none (current)';

/*
 * A partition wholly past retention is emptied with TRUNCATE in one step
 * instead of row by row.  The partition stays (the table's partitioning is
 * the owner's business); its rows are counted as deleted.  Rows the owner
 * expects to see deleted one by one go the row-by-row way: when the
 * partition or a table above it has an ON DELETE trigger or a DELETE rule,
 * is referenced by a foreign key, is published by a publication that
 * replicates deletes but not this TRUNCATE, or when the table anonymizes at
 * expiry.  privacy_guard.truncate_partitions = off turns it off.
 *
 * Whether part may be emptied that way at round_at, by the catalogs only.
 */
CREATE FUNCTION privacy_guard._truncatable_part(part regclass, root regclass, round_at timestamptz)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_tree oid[];
BEGIN
	IF NOT coalesce(pg_catalog.current_setting('privacy_guard.truncate_partitions', true)::boolean, true)
	   OR NOT EXISTS (SELECT 1 FROM privacy_guard.protected_table p
					   WHERE p.relid = root AND p.on_expiry = 'delete') THEN
		RETURN false;
	END IF;
	/* the partition and the partitioned tables above it (none: not a partition) */
	v_tree := ARRAY(SELECT a.relid FROM pg_partition_ancestors(part) a);
	IF EXISTS (SELECT 1 FROM pg_trigger g
				WHERE g.tgrelid = ANY (v_tree) AND NOT g.tgisinternal
				  AND (g.tgtype::integer & 8) <> 0)				/* ON DELETE */
	   OR EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = ANY (v_tree) AND r.ev_type = '4')
	   OR EXISTS (SELECT 1 FROM pg_constraint c WHERE c.contype = 'f' AND c.confrelid = ANY (v_tree))
	   OR EXISTS (SELECT 1 FROM pg_publication p
				   WHERE p.pubdelete AND (NOT p.pubtruncate OR p.pubviaroot)
					 AND (p.puballtables
						  OR EXISTS (SELECT 1 FROM pg_publication_rel r
									  WHERE r.prpubid = p.oid AND r.prrelid = ANY (v_tree))
						  OR EXISTS (SELECT 1 FROM pg_publication_namespace n
									   JOIN pg_class c ON c.relnamespace = n.pnnspid
									  WHERE n.pnpubid = p.oid AND c.oid = ANY (v_tree)))) THEN
		RETURN false;
	END IF;
	RETURN privacy_guard._part_span(part, root, round_at) IS NOT DISTINCT FROM 'expired';
END
$$;
COMMENT ON FUNCTION privacy_guard._truncatable_part(regclass, regclass, timestamptz) IS 'Internal: whether a partition is wholly past retention and may be emptied with TRUNCATE';

/*
 * Empty part with TRUNCATE if it is wholly past retention (see above), as
 * its owner: returns the rows it held, or NULL when it goes the row-by-row
 * way (not such a partition, already empty, a lock not granted within the
 * engine's lock timeout, or the TRUNCATE failed).  The partition is locked
 * against writers first, checked again (a trigger or foreign key may have
 * come while waiting) and counted under that lock, so the count is what
 * TRUNCATE took; only then does it take the lock that keeps readers out.
 */
CREATE FUNCTION privacy_guard._truncate_expired(part regclass, root regclass, round_at timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_rows bigint;
	v_limit text;
BEGIN
	IF NOT privacy_guard._truncatable_part(part, root, round_at) THEN
		RETURN NULL;
	END IF;
	/* an empty partition is left alone, unlocked, round after round */
	IF privacy_guard._exec_as_owner(part, format('SELECT pg_catalog.count(*) FROM (SELECT FROM ONLY %s LIMIT 1) x', part),
									NULL, NULL) = 0 THEN
		RETURN NULL;
	END IF;
	BEGIN
		/*
		 * Writers wait while the rows are counted, readers only for the
		 * TRUNCATE itself.  The lock conflicts with itself: two rounds at
		 * once never both hold it and then wait for each other.
		 */
		PERFORM privacy_guard._exec_as_owner(part, format('LOCK TABLE ONLY %s IN SHARE ROW EXCLUSIVE MODE', part), NULL, NULL);
		IF NOT privacy_guard._truncatable_part(part, root, round_at) THEN
			/* rolls the lock back with the block */
			RAISE EXCEPTION 'partition changed' USING ERRCODE = '55000';
		END IF;
		/*
		 * Counting runs no owner code (no trigger, and the owner reads past
		 * row-level security), so the engine's time limit, which is there
		 * to stop owner code, would only turn a large partition back to
		 * the row-by-row way: it is lifted to its most for the count.
		 */
		v_limit := pg_catalog.current_setting('privacy_guard.engine_time_limit');
		PERFORM pg_catalog.set_config('privacy_guard.engine_time_limit', '1h', true);
		v_rows := privacy_guard._exec_as_owner(part, format('SELECT pg_catalog.count(*) FROM ONLY %s', part), NULL, NULL);
		PERFORM pg_catalog.set_config('privacy_guard.engine_time_limit', v_limit, true);
		PERFORM privacy_guard._exec_as_owner(part, format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', part), NULL, NULL);
		PERFORM privacy_guard._exec_as_owner(part, format('TRUNCATE TABLE ONLY %s', part), NULL, NULL);
	EXCEPTION
	WHEN query_canceled THEN
		/* only the engine's own time limit; a cancel from anyone else goes on */
		IF NOT privacy_guard._engine_timed_out() THEN
			RAISE;
		END IF;
		RETURN NULL;
	WHEN OTHERS THEN
		RETURN NULL;
	END;
	RETURN v_rows;
END
$$;
COMMENT ON FUNCTION privacy_guard._truncate_expired(regclass, regclass, timestamptz) IS 'Internal: empty a partition wholly past retention with TRUNCATE, as its owner';

/*
 * One purge batch: up to batch rows of part past retention (and past the
 * legal hold, if any) at round_at, after position after, deleted or
 * anonymized as the table's registration says.  Rows locked by others are
 * skipped (the next round retries).  Returns the rows taken, the rows
 * deleted or anonymized, where the batch stopped, and an error (an SQLSTATE
 * and the table, never data) instead of raising it.  A table's first batch
 * (after (0,0)) skips a partition whose bounds keep every row within
 * retention (nothing matched), and empties one wholly past retention in one
 * step (_truncate_expired): action truncated, no rows matched (the table is
 * done), its rows processed.  Shared by the worker,
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
	v_span text;
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
		/*
		 * A table's first batch: a partition whose bounds keep every row
		 * within retention is not read at all; one wholly past it goes in
		 * one step.
		 */
		IF after OPERATOR(pg_catalog.=) '(0,0)'::tid THEN
			v_span := privacy_guard._part_span(part, root, round_at);
			IF v_span = 'current' THEN
				RETURN;
			ELSIF v_span = 'expired' AND t.on_expiry = 'delete' THEN
				processed := privacy_guard._truncate_expired(part, root, round_at);
				IF processed IS NOT NULL THEN
					action := 'truncated';
					RETURN;
				END IF;
				processed := 0;
			END IF;
		END IF;
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

/* the rows of a table's next purge batch (engine.c, pvg_next_batch): the first when batch is NULL */
CREATE FUNCTION privacy_guard._next_batch(batch integer, took_ms double precision)
RETURNS integer
AS 'MODULE_PATHNAME', 'pvg_next_batch_fn'
LANGUAGE C STABLE;
COMMENT ON FUNCTION privacy_guard._next_batch(integer, double precision) IS 'Internal: the rows of a table''s next purge batch, after one that took took_ms';


