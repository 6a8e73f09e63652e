/*
 * A receipt's rows are unreachable after a vacuum of each table that began
 * after the erasure committed, not after any vacuum that ended later: the
 * rounds record per table the vacuum count that proves it (vacuum_mark).
 */
CREATE TABLE privacy_guard.vacuum_mark (
	relid		oid NOT NULL,
	vacuums		bigint NOT NULL,
	taken_xmin	xid8 NOT NULL,
	PRIMARY KEY (relid, vacuums)
);
COMMENT ON TABLE privacy_guard.vacuum_mark IS 'Per table: the vacuum count by which a vacuum begun after older transactions ended has run';
REVOKE ALL ON privacy_guard.vacuum_mark FROM PUBLIC;
CREATE OR REPLACE FUNCTION privacy_guard._close_receipts()
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_pruned bigint;
	v_digests text[];
	/* the setting (shown with its unit, which interval input reads), or its default */
	v_horizon timestamptz := now() - coalesce(pg_catalog.current_setting('privacy_guard.log_retention', true)::interval,
											  interval '1095 days');
	/* every transaction older than this had ended when this transaction's snapshot was taken */
	v_xmin xid8 := pg_snapshot_xmin(pg_current_snapshot());
	v_of oid[];
	v_rels oid[];
	v_counts bigint[];
	v_busy oid[];
	v_hidden boolean;
BEGIN
	/*
	 * What waiting receipts wait for (v_rels), each with the table it
	 * belongs to (v_of): every table they wrote to that is not gone, each
	 * looked up once, and its TOAST table, which holds the erased rows'
	 * long values (autovacuum vacuums it on its own, VACUUM (PROCESS_TOAST
	 * false) not at all, and it counts its vacuums apart).
	 */
	SELECT coalesce(array_agg(c.oid), '{}'), coalesce(array_agg(w.relid), '{}')
	  INTO v_of, v_rels
	  FROM (SELECT DISTINCT t.relid
			  FROM privacy_guard.erasure_request o, unnest(o.touched) AS t(relid)
			 WHERE o.state = 'done' AND o.unreachable_at IS NULL AND o.completed_at < now()) x
	  JOIN pg_class c ON c.oid = x.relid,
		   LATERAL (VALUES (c.oid), (c.reltoastrelid)) AS w(relid)
	 WHERE w.relid <> 0;
	/*
	 * The vacuums under way first, the counts after, read afresh: a vacuum
	 * ending in between is both, and a mark asks one vacuum too many, never
	 * one too few.  A vacuum this role may not see (no relid shown) counts
	 * as under way on every table.
	 */
	SELECT coalesce(array_agg(p.relid) FILTER (WHERE p.relid IS NOT NULL), '{}'),
		   coalesce(bool_or(p.relid IS NULL), false)
	  INTO v_busy, v_hidden
	  FROM pg_catalog.pg_stat_progress_vacuum p
	 WHERE p.datid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
	PERFORM pg_stat_clear_snapshot();
	v_counts := ARRAY(SELECT pg_stat_get_vacuum_count(u.r) + pg_stat_get_autovacuum_count(u.r)
						FROM unnest(v_rels) WITH ORDINALITY AS u(r, i) ORDER BY u.i);
	/* marks of tables no receipt waits for, and marks beyond counts that went back */
	DELETE FROM privacy_guard.vacuum_mark m
	 WHERE NOT EXISTS (SELECT 1 FROM unnest(v_rels, v_counts) AS n(relid, c)
					   WHERE n.relid = m.relid AND m.vacuums <= n.c + 2);
	WITH ready AS MATERIALIZED (
		/* per table: the newest mark its count has reached */
		SELECT m.relid, max(m.taken_xmin) AS xmin
		  FROM privacy_guard.vacuum_mark m
		  JOIN unnest(v_rels, v_counts) AS n(relid, c) ON n.relid = m.relid AND n.c >= m.vacuums
		 GROUP BY m.relid),
	waits AS MATERIALIZED (
		SELECT w.relid, w.waits_for FROM unnest(v_of, v_rels) AS w(relid, waits_for)),
	per_set AS MATERIALIZED (
		/*
		 * Per set of tables waiting receipts wrote to (a few: one per shape
		 * of erasure), worked out once, not for every receipt: whether
		 * each of them (and its TOAST table) has reached a mark, and the
		 * oldest mark reached, which must have been taken after a
		 * receipt's erasure ended.
		 */
		SELECT s.touched,
			   bool_and(CASE WHEN w.relid IS NULL
							 /* a table not listed above (a receipt closed since): waits, unless gone */
							 THEN NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = x.relid)
							 ELSE r.xmin IS NOT NULL END) AS reached,
			   min(r.xmin) AS xmin
		  FROM (SELECT DISTINCT e.touched FROM privacy_guard.erasure_request e
				 WHERE e.state = 'done' AND e.unreachable_at IS NULL AND e.completed_at < now()) s
		  LEFT JOIN LATERAL unnest(s.touched) AS x(relid) ON true
		  LEFT JOIN waits w ON w.relid = x.relid
		  LEFT JOIN ready r ON r.relid = w.waits_for
		 GROUP BY s.touched)
	UPDATE privacy_guard.erasure_request e
	   SET unreachable_at = now()
	  FROM per_set p
	 WHERE e.state = 'done' AND e.unreachable_at IS NULL AND e.completed_at < now()
	   AND e.touched = p.touched AND p.reached AND (p.xmin IS NULL OR p.xmin > e.changed_xid);
	/* this round's marks, for the receipts still waiting */
	INSERT INTO privacy_guard.vacuum_mark AS m (relid, vacuums, taken_xmin)
	SELECT n.relid, n.c + 1 + CASE WHEN v_hidden OR n.relid = ANY (v_busy) THEN 1 ELSE 0 END, v_xmin
	  FROM unnest(v_rels, v_counts) AS n(relid, c)
	ON CONFLICT (relid, vacuums) DO UPDATE SET taken_xmin = greatest(m.taken_xmin, excluded.taken_xmin);
	WITH gone AS (
		DELETE FROM privacy_guard.erasure_request e
		 WHERE e.state = 'done' AND e.unreachable_at IS NOT NULL
		   AND e.completed_at < v_horizon
		RETURNING e.subject_digest)
	SELECT count(*), array_agg(DISTINCT g.subject_digest) INTO v_pruned, v_digests FROM gone g;
	IF v_pruned > 0 THEN
		/*
		 * With the receipt goes the consent history kept under its digest
		 * (the evidence that processing before the erasure was lawful),
		 * unless another request of the same subject is still kept.  The
		 * ledger lets privacy_guard itself delete, nobody else.
		 */
		PERFORM privacy_guard._guard_suspend(true);
		DELETE FROM privacy_guard.consent_ledger l
		 WHERE l.subject = ANY (v_digests)
		   AND NOT EXISTS (SELECT 1 FROM privacy_guard.erasure_request e WHERE e.subject_digest = l.subject);
		PERFORM privacy_guard._guard_suspend(false);
	END IF;
	RETURN v_pruned;
END
$$;
