/*
 * Forget requests that are due, each in full or not at all, and how they
 * ended: all of them, or (the worker, which commits between calls) at most
 * max_requests with ids above after_id; last_id is the last one taken,
 * NULL when none was left.  A few requests are carried out one at a time
 * (_erase_subject); many at once in sets of different keys, one statement
 * per table for a set (_forget_set), and a later request of a key already
 * in a set after the sets, alone, as it would have come after it.  The
 * requests are read c_page at a time (a backlog is not held in memory).
 */
CREATE FUNCTION privacy_guard._forget_due(round_at timestamptz, secret bytea,
		after_id bigint DEFAULT 0, max_requests integer DEFAULT NULL,
		OUT done integer, OUT blocked integer, OUT restricted integer, OUT last_id bigint)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c_set_from CONSTANT integer := 20;		/* due requests from which sets are used */
	c_set_size CONSTANT integer := 1000;	/* requests in a set */
	c_page CONSTANT integer := 10000;		/* requests read at a time */
	v_after bigint := after_id;
	v_taken integer := 0;
	r privacy_guard.erasure_request;
	v_reqs privacy_guard.erasure_request[];
	v_set privacy_guard.erasure_request[];
	v_later privacy_guard.erasure_request[];
	v_n integer;
	v_last bigint;
	v_state text;
	v_targets privacy_guard.erase_target[];
	v_tagged boolean;
	v_sets boolean;
	f record;
BEGIN
	done := 0;
	blocked := 0;
	restricted := 0;
	LOOP
		/* the first request of each key in v_reqs, any later one of the same key in v_later */
		SELECT coalesce(array_agg(y.e ORDER BY (y.e).id) FILTER (WHERE y.nth = 1), '{}'),
			   coalesce(array_agg(y.e ORDER BY (y.e).id) FILTER (WHERE y.nth > 1), '{}'),
			   count(*), max((y.e).id)
		  INTO v_reqs, v_later, v_n, v_last
		  FROM (SELECT x.e, row_number() OVER (PARTITION BY (x.e).subject ORDER BY (x.e).id) AS nth
				  FROM (SELECT e FROM privacy_guard.erasure_request e
						 WHERE e.state IN ('pending', 'blocked', 'restricted') AND e.subject IS NOT NULL
						   AND e.due <= round_at AND e.id > v_after
						 ORDER BY e.id
						 LIMIT least(c_page, max_requests - v_taken)) x) y;
		EXIT WHEN v_n = 0;
		last_id := v_last;
		v_after := v_last;
		v_taken := v_taken + v_n;
		IF v_targets IS NULL THEN
			/* what every request needs, looked up once per round */
			v_targets := ARRAY(SELECT x FROM privacy_guard._erase_targets() x);
			/*
			 * One index probe: any table column (or domain) of a tagged type
			 * or an array of one at all?  (Arrays of domains over a tagged
			 * type need the domain, found here.)
			 */
			v_tagged := EXISTS (SELECT 1 FROM pg_depend d
								 WHERE d.refclassid = 'pg_type'::regclass
								   AND d.refobjid IN ('privacy_guard.tagged_text'::regtype,
													  'privacy_guard.tagged_date'::regtype,
													  'privacy_guard.tagged_numeric'::regtype,
													  'privacy_guard.tagged_jsonb'::regtype,
													  'privacy_guard.tagged_text[]'::regtype,
													  'privacy_guard.tagged_date[]'::regtype,
													  'privacy_guard.tagged_numeric[]'::regtype,
													  'privacy_guard.tagged_jsonb[]'::regtype)
								   AND d.classid IN ('pg_class'::regclass, 'pg_type'::regclass)
								   AND d.deptype = 'n');
			/*
			 * Sets, unless a subject column is gone or a table has rules (a
			 * set's statement could not count rows per key there), or there
			 * are more tables than a set's bits name: then one at a time.
			 */
			v_sets := cardinality(v_targets) <= 63
					  AND NOT EXISTS (SELECT 1 FROM unnest(v_targets) t WHERE t.subject_type IS NULL)
					  AND NOT EXISTS (SELECT 1 FROM unnest(v_targets) t, unnest(t.targets) p, pg_class c
									   WHERE c.oid = p AND c.relhasrules);
		END IF;
		IF v_sets AND v_n >= c_set_from THEN
			FOR i IN 0 .. (cardinality(v_reqs) - 1) / c_set_size LOOP
				v_set := v_reqs[i * c_set_size + 1 : (i + 1) * c_set_size];
				f := privacy_guard._forget_set(v_set, secret, v_targets, v_tagged);
				done := done + f.done;
				blocked := blocked + f.blocked;
				restricted := restricted + f.restricted;
			END LOOP;
			v_reqs := '{}';
		END IF;
		/* one at a time: the later requests of a key after the first */
		FOREACH r IN ARRAY v_reqs || v_later LOOP
			v_state := privacy_guard._erase_subject(r, secret, v_targets, v_tagged);
			IF v_state = 'done' THEN
				done := done + 1;
			ELSIF v_state = 'restricted' THEN
				restricted := restricted + 1;
			ELSIF v_state = 'blocked' THEN
				blocked := blocked + 1;
			END IF;			/* pending: erased, waiting for older transactions to end */
		END LOOP;
		EXIT WHEN v_taken >= max_requests;
	END LOOP;
END
$$;
COMMENT ON FUNCTION privacy_guard._forget_due(timestamptz, bytea, bigint, integer) IS 'Internal: carry out the forget requests that are due (all, or a chunk of them)';

/*
 * The end of a round: receipts learn when erased rows became physically
 * unreachable, and receipts older than privacy_guard.log_retention are
 * dropped.  A receipt's rows are unreachable once every table the erasure
 * wrote to has been vacuumed by a vacuum that began after the erasure
 * committed: a vacuum already running then (or run while the erasure's
 * transaction was still open) keeps the rows it could still see.  No
 * statistic tells when a vacuum began, so each round records per table
 * (vacuum_mark) the vacuum count by which such a vacuum has run for every
 * transaction that had ended when the round began: the count now, one
 * more, and one more again if a vacuum of the table is under way.  A
 * receipt closes when each of its tables (unless gone), and each one's
 * TOAST table, has reached a mark taken after the erasure's transaction
 * ended; the round after the erasure takes that mark.  Only receipts
 * closed before this transaction began are looked at, found through a
 * partial index however many are kept.  Vacuum counts that went back
 * (statistics reset, a crash) drop the table's marks: a new one is taken.
 */
CREATE FUNCTION privacy_guard._close_receipts()
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
COMMENT ON FUNCTION privacy_guard._close_receipts() IS 'Internal: mark receipts whose rows are unreachable, drop those past log retention with the consent history kept under their digest';

/*
 * Add one batch's outcome to a round's result (keys: the registered tables).
 * A partition emptied with TRUNCATE (action truncated) counts its rows as
 * deleted and itself in partitions_truncated.
 */
CREATE FUNCTION privacy_guard._add_batch(result jsonb, root regclass, action text, n bigint, error text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN $5 IS NOT NULL
				THEN jsonb_set($1, ARRAY['errors', $2::text], to_jsonb($5))
				WHEN $4 > 0 AND $3 = 'truncated'
				THEN jsonb_set($1, ARRAY['expired', $2::text],
							   coalesce($1 #> ARRAY['expired', $2::text], '{}')
							   || jsonb_build_object('deleted', coalesce(($1 #>> ARRAY['expired', $2::text, 'deleted'])::bigint, 0) + $4,
													 'partitions_truncated',
													 coalesce(($1 #>> ARRAY['expired', $2::text, 'partitions_truncated'])::bigint, 0) + 1))
				WHEN $4 > 0
				THEN jsonb_set($1, ARRAY['expired', $2::text],
							   coalesce($1 #> ARRAY['expired', $2::text], '{}')
							   || jsonb_build_object($3, coalesce(($1 #>> ARRAY['expired', $2::text, $3])::bigint, 0) + $4))
				ELSE $1 END
$$;
COMMENT ON FUNCTION privacy_guard._add_batch(jsonb, regclass, text, bigint, text) IS 'Internal: count one purge batch into a round''s result';

/*
 * The worker counts each batch in worker_status as it commits, so a crash
 * loses no count; a partition's TRUNCATE counts its rows as deleted.
 */
CREATE FUNCTION privacy_guard._count_batch(action text, n bigint)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
	INSERT INTO privacy_guard.worker_round AS w (rows_deleted, rows_anonymized)
	SELECT CASE WHEN $1 IN ('deleted', 'truncated') THEN $2 ELSE 0 END, CASE WHEN $1 = 'anonymized' THEN $2 ELSE 0 END
	 WHERE $2 > 0
	ON CONFLICT (onerow) DO UPDATE
		SET rows_deleted = w.rows_deleted + excluded.rows_deleted,
			rows_anonymized = w.rows_anonymized + excluded.rows_anonymized
$$;
COMMENT ON FUNCTION privacy_guard._count_batch(text, bigint) IS 'Internal: count a committed purge batch in worker_status';

/*
 * Keep a round in round_history, and drop rows older than
 * privacy_guard.history_retention.  result is the round's outcome as
 * run_maintenance() returns it; tbl the one table it was limited to (rows
 * restricted are counted in it only), or NULL; failed an SQLSTATE that ended a step of
 * the round early (or NULL).  Errors are counted by SQLSTATE: a purge
 * batch's error names it; a batch over privacy_guard.engine_time_limit
 * counts as 57014 (query_canceled), rows a trigger or rule kept from the
 * purge as 09000 (triggered_action_exception).  Blocked forget requests
 * are counted in requests_blocked (their reasons are in erasure_requests).
 */
CREATE FUNCTION privacy_guard._record_round(result jsonb, tbl regclass, started timestamptz, run_by text, failed text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	/* the setting (shown with its unit, which interval input reads), or its default */
	v_horizon timestamptz := now() - coalesce(pg_catalog.current_setting('privacy_guard.history_retention', true)::interval,
											  interval '30 days');
	v_tables jsonb;
	v_restricted jsonb;
	v_errors jsonb;
BEGIN
	SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}') INTO v_tables
	  FROM jsonb_each(result -> 'expired') e
	 WHERE e.key NOT IN ('tagged', 'tagged_errors') AND jsonb_typeof(e.value) = 'object';
	SELECT coalesce(jsonb_object_agg(t.relid::text, jsonb_build_object('restricted', t.n)), '{}') INTO v_restricted
	  FROM (SELECT p.relid, privacy_guard._restricted_rows(p.relid) AS n
			  FROM privacy_guard.protected_table p
			 WHERE p.hold_keep IS NOT NULL AND (tbl IS NULL OR p.relid = tbl)) t
	 WHERE t.n > 0;
	SELECT coalesce(jsonb_object_agg(x.code, x.n), '{}') INTO v_errors
	  FROM (SELECT c.code, count(*) AS n
			  FROM (SELECT CASE WHEN e.value ~ '^error [0-9A-Z]{5} '
								THEN substring(e.value FROM 7 FOR 5)
								WHEN e.value ~ 'took longer than privacy_guard.engine_time_limit' THEN '57014'
								WHEN e.value ~ 'a trigger or rule prevented the purge' THEN '09000'
								ELSE 'XX000' END AS code
					  FROM jsonb_each_text(result -> 'errors') e
					UNION ALL
					SELECT e.value FROM jsonb_each_text(result #> '{expired,tagged_errors}') e
					UNION ALL
					SELECT failed WHERE failed IS NOT NULL) c
			 GROUP BY c.code) x;
	/* a table's restricted rows beside what was purged from it */
	SELECT coalesce(jsonb_object_agg(k.key, coalesce(v_tables -> k.key, '{}') || coalesce(v_restricted -> k.key, '{}')), '{}')
	  INTO v_tables
	  FROM (SELECT jsonb_object_keys(v_tables) UNION SELECT jsonb_object_keys(v_restricted)) AS k(key);

	INSERT INTO privacy_guard.round_history (started_at, duration, run_by, tables, rows_deleted, rows_anonymized,
											 rows_restricted, tagged_expired, requests_done, requests_blocked,
											 requests_restricted, errors)
	SELECT started, clock_timestamp() - started, run_by, v_tables,
		   (SELECT coalesce(sum((v.value ->> 'deleted')::bigint), 0) FROM jsonb_each(v_tables) v),
		   (SELECT coalesce(sum((v.value ->> 'anonymized')::bigint), 0) FROM jsonb_each(v_tables) v),
		   (SELECT coalesce(sum((v.value ->> 'restricted')::bigint), 0) FROM jsonb_each(v_tables) v),
		   (SELECT coalesce(sum(v.value::text::bigint), 0) FROM jsonb_each(result #> '{expired,tagged}') v),
		   coalesce((result ->> 'requests_done')::integer, 0),
		   coalesce((result ->> 'requests_blocked')::integer, 0),
		   coalesce((result ->> 'requests_restricted')::integer, 0),
		   v_errors;
	DELETE FROM privacy_guard.round_history h WHERE h.started_at < v_horizon;
END
$$;
COMMENT ON FUNCTION privacy_guard._record_round(jsonb, regclass, timestamptz, text, text) IS 'Internal: keep a round in round_history and drop rows past privacy_guard.history_retention';

/*
 * The steps of run_maintenance()'s round after its purge batches: tagged
 * values past their retain-until, the forget requests due at round_at, and
 * the receipts.  The worker runs the same steps, the forget requests in
 * chunks of their own transactions (_worker_forget, _worker_round).  Returns result with the
 * tagged counts and the requests' outcome added.
 */
CREATE FUNCTION privacy_guard._finish_round(result jsonb, tbl regclass, round_at timestamptz, secret bytea)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	f record;
BEGIN
	result := jsonb_set(result, '{expired}',
						(result -> 'expired') || privacy_guard._erase_tagged_expired(tbl, round_at));
	f := privacy_guard._forget_due(round_at, secret);
	PERFORM privacy_guard._close_receipts();
	RETURN result || jsonb_build_object('requests_done', f.done, 'requests_blocked', f.blocked,
										'requests_restricted', f.restricted);
END
$$;
COMMENT ON FUNCTION privacy_guard._finish_round(jsonb, regclass, timestamptz, bytea) IS 'Internal: the steps of a round after its purge batches';

CREATE FUNCTION privacy_guard.run_maintenance(tbl regclass DEFAULT NULL)
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

/*
 * The background round's forget step (worker.c): the due requests in
 * chunks of max_requests, each chunk its own transaction, so a mass of
 * requests neither holds one long transaction nor loses all its work to a
 * SIGTERM or a crash.  Each chunk counts its requests in worker_status as
 * it commits.  An error outside the requests' own handling (which leaves
 * a request blocked) is returned as its SQLSTATE, for worker_status, and
 * ends the step for this round.
 */
CREATE FUNCTION privacy_guard._worker_forget(round_at timestamptz, after_id bigint, max_requests integer,
		OUT done integer, OUT blocked integer, OUT restricted integer, OUT last_id bigint, OUT failed text)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
	SELECT f.done, f.blocked, f.restricted, f.last_id INTO done, blocked, restricted, last_id
	  FROM privacy_guard._forget_due(round_at, privacy_guard._secret(), after_id, max_requests) f;
	/* counted as the chunk commits, as purge batches are: a crash loses no count */
	INSERT INTO privacy_guard.worker_round AS w (requests_done, errors)
	SELECT done, blocked WHERE done + blocked > 0
	ON CONFLICT (onerow) DO UPDATE
		SET requests_done = w.requests_done + excluded.requests_done,
			errors = w.errors + excluded.errors;
EXCEPTION WHEN OTHERS THEN
	done := 0;
	blocked := 0;
	restricted := 0;
	last_id := NULL;
	failed := SQLSTATE;
END
$$;
COMMENT ON FUNCTION privacy_guard._worker_forget(timestamptz, bigint, integer) IS 'Internal: one chunk of the background round''s forget requests';

/*
 * The background round's last step, after its purge batches and forget
 * requests (worker.c): tagged values past their retain-until, receipts,
 * and the round's outcome kept for worker_status.  purged is the batches'
 * result as run_maintenance() builds it (each batch counted its rows as it
 * committed: _count_batch); forgotten the forget step's counts
 * (requests_done, requests_blocked, requests_restricted, and failed: an
 * SQLSTATE); started is when the round began.
 */
CREATE FUNCTION privacy_guard._worker_round(purged jsonb, started timestamptz, forgotten jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
	v_result jsonb := purged || (forgotten - 'failed');
	v_failed text := forgotten ->> 'failed';
BEGIN
	PERFORM privacy_guard._flush_access_log();
	INSERT INTO privacy_guard.worker_round DEFAULT VALUES ON CONFLICT DO NOTHING;
	BEGIN
		v_result := jsonb_set(v_result, '{expired}',
							  (v_result -> 'expired') || privacy_guard._erase_tagged_expired(NULL, now()));
		PERFORM privacy_guard._close_receipts();
	EXCEPTION WHEN OTHERS THEN
		v_failed := coalesce(v_failed, SQLSTATE);
	END;
	UPDATE privacy_guard.worker_round w
	   SET rounds = w.rounds + 1, last_round_at = now(), last_result = v_result,
		   last_round_duration = clock_timestamp() - started,
		   rows_restricted = (SELECT coalesce(sum(privacy_guard._restricted_rows(t.relid)), 0)
								FROM privacy_guard.protected_table t WHERE t.hold_keep IS NOT NULL),
		   /* requests_done and blocked requests were counted by each chunk (_worker_forget) */
		   errors = w.errors + (SELECT count(*) FROM jsonb_object_keys(v_result -> 'errors'))
							 + (CASE WHEN v_failed IS NULL THEN 0 ELSE 1 END),
		   last_error = CASE WHEN v_failed IS NOT NULL THEN 'round failed: error ' || v_failed
							 WHEN v_result -> 'errors' <> '{}' THEN (v_result -> 'errors')::text
							 WHEN (v_result ->> 'requests_blocked')::int > 0 THEN 'requests blocked: see erasure_requests'
							 ELSE w.last_error END,
		   last_error_at = CASE WHEN v_failed IS NOT NULL OR v_result -> 'errors' <> '{}'
									 OR (v_result ->> 'requests_blocked')::int > 0
								THEN now() ELSE w.last_error_at END;
	PERFORM privacy_guard._record_round(v_result, NULL, started, 'worker', v_failed);
END
$$;
COMMENT ON FUNCTION privacy_guard._worker_round(jsonb, timestamptz, jsonb) IS 'Internal: the end of the background worker''s round';

