
/*
 * Forget requests in bulk, cheaper around the erasure: a round finds the
 * open requests and the receipts it closes or drops through partial
 * indexes, however many receipts are kept; receipts learn they are
 * unreachable through one read of each
 * table's last vacuum (_close_receipts); notices to recipients are written
 * once per statement over the rows it changed (_erasure_notices); a set's
 * statements on an integer or uuid subject column test the type's equality
 * alone, and its receipts take each table's counts out once (_erase_set).
 */
/* the indexes a round reads by cover open requests, not every receipt kept */
DROP INDEX privacy_guard.erasure_request_subject;
CREATE INDEX erasure_request_subject ON privacy_guard.erasure_request (subject) WHERE subject IS NOT NULL;
CREATE INDEX erasure_request_open ON privacy_guard.erasure_request (id) WHERE subject IS NOT NULL;
CREATE INDEX erasure_request_unreachable ON privacy_guard.erasure_request (completed_at)
	WHERE state OPERATOR(pg_catalog.=) 'done' AND unreachable_at IS NULL;
CREATE INDEX erasure_request_closed ON privacy_guard.erasure_request (completed_at)
	WHERE state OPERATOR(pg_catalog.=) 'done' AND unreachable_at IS NOT NULL;
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
BEGIN
	WITH vacuumed AS MATERIALIZED (
		SELECT x.relid, coalesce(greatest(pg_stat_get_last_vacuum_time(x.relid),
										  pg_stat_get_last_autovacuum_time(x.relid)),
								 '-infinity') AS at
		  FROM (SELECT DISTINCT t.relid
				  FROM privacy_guard.erasure_request o, unnest(o.touched) AS t(relid)
				 WHERE o.state = 'done' AND o.unreachable_at IS NULL AND o.completed_at < now()) x
		 WHERE EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = x.relid))
	UPDATE privacy_guard.erasure_request e
	   SET unreachable_at = now()
	 WHERE e.state = 'done' AND e.unreachable_at IS NULL AND e.completed_at < now()
	   AND NOT EXISTS (SELECT 1 FROM unnest(e.touched) AS x(relid)
					   LEFT JOIN vacuumed v ON v.relid = x.relid
					   WHERE CASE WHEN v.relid IS NULL
								  THEN EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = x.relid)
								  ELSE v.at < e.completed_at END);
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
DROP TRIGGER recipient_notices ON privacy_guard.erasure_request;
CREATE OR REPLACE FUNCTION privacy_guard._erasure_notices()
RETURNS trigger
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM privacy_guard.disclosure_subject) THEN
		RETURN NULL;
	END IF;
	FOR r IN
		SELECT n.id, o.subject, o.subject_digest, n.state
		  FROM new_requests n JOIN old_requests o ON o.id = n.id
		 WHERE n.state IN ('done', 'restricted') AND n.state IS DISTINCT FROM o.state
		   AND o.subject IS NOT NULL
		   AND EXISTS (SELECT 1 FROM privacy_guard.disclosure_subject ds WHERE ds.subject_digest = o.subject_digest)
		 ORDER BY n.id
	LOOP
		UPDATE privacy_guard.erasure_request e
		   SET recipients_notified = e.recipients_notified
				   + privacy_guard._notify_recipients(r.subject, r.subject_digest,
													  CASE r.state WHEN 'done' THEN 'erasure' ELSE 'restriction' END,
													  NULL, r.id)
		 WHERE e.id = r.id;
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION privacy_guard._erasure_notices() IS 'Internal: notices to recipients when forget requests are carried out or restricted';
CREATE TRIGGER recipient_notices AFTER UPDATE ON privacy_guard.erasure_request
	REFERENCING OLD TABLE AS old_requests NEW TABLE AS new_requests
	FOR EACH STATEMENT EXECUTE FUNCTION privacy_guard._erasure_notices();
CREATE OR REPLACE FUNCTION privacy_guard._erase_set(reqs privacy_guard.erasure_request[], secret bytea,
		targets privacy_guard.erase_target[], with_tagged boolean,
		OUT done integer, OUT blocked integer, OUT restricted integer)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t privacy_guard.erase_target;
	v_start timestamptz := clock_timestamp();
	v_dboid oid := (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
	v_rels oid[];
	v_keys text[] := ARRAY(SELECT q.subject FROM unnest(reqs) q);
	v_type_keys text[];
	v_last_base regtype;
	v_target regclass;
	v_join text;
	v_cond text;
	v_held text;
	v_act text;
	v_n jsonb;
	v_tbl jsonb;
	v_left bigint;
	v_out jsonb := '[]';		/* per table: {"t": table, "i": its place in v_leaves, "n": {key: {action: rows}}} */
	v_leaves jsonb := '[]';		/* per table: the plain tables that hold its rows */
	v_tagged jsonb := '{}';		/* per key: {"counts": ..., "touched": [...]} */
	v_consents jsonb;
	v_when timestamptz[];
	v_before boolean[];
	v_after boolean[];
	v_key text;
	v_misspelt text[] := '{}';
	e record;
BEGIN
	/* as for one request: settled before any statement takes its snapshot (see _writers_settled) */
	v_rels := ARRAY(SELECT DISTINCT x FROM unnest(_erase_set.targets) tg, unnest(tg.targets::oid[] || tg.leaves) x);
	v_when := ARRAY(SELECT DISTINCT coalesce(q.erased_at, v_start) FROM unnest(reqs) q ORDER BY 1);
	v_before := ARRAY(SELECT privacy_guard._writers_settled(v_dboid, w, v_rels, with_tagged)
						FROM unnest(v_when) WITH ORDINALITY AS u(w, i) ORDER BY u.i);
	/* the keys come in as a parameter, joined by this name (no column of a table is likely to have it) */
	v_join := 'pg_catalog.unnest($1) AS "privacy_guard keys"("privacy_guard key")';
	FOREACH t IN ARRAY targets LOOP
		IF t.subject_type IS NULL THEN
			/* the subject column is gone: one at a time, each blocked as before */
			RAISE EXCEPTION 'subject column of table % is gone', t.relid USING ERRCODE = '55000';
		END IF;
		IF v_last_base IS DISTINCT FROM t.base_type THEN
			v_last_base := t.base_type;
			v_type_keys := privacy_guard._keys_of_type(v_keys, t.base_type);
		END IF;
		CONTINUE WHEN cardinality(v_type_keys) = 0;
		/* the condition of _subject_cond, against each key of the set */
		/*
		 * (The text forms' test as IS TRUE: a join filter, never a hash
		 * key, so only the rows the type's equality found are formatted.)
		 * Of the integer types and uuid, equal values show the same text,
		 * and every key left is a value's text form (_keys_of_type): the
		 * equality alone finds exactly the rows the rules know by the key.
		 */
		IF t.base_type IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'uuid'::regtype) THEN
			v_cond := format('%1$I OPERATOR(pg_catalog.=) "privacy_guard key"::%2$s',
							 t.subject_column, t.subject_type);
		ELSE
			v_cond := format('%1$I OPERATOR(pg_catalog.=) "privacy_guard key"::%2$s AND '
							 '(pg_catalog.format(''%%s'', %1$I) COLLATE pg_catalog."C" OPERATOR(pg_catalog.=) "privacy_guard key") IS TRUE',
							 t.subject_column, t.subject_type);
		END IF;
		v_held := 'false';
		IF t.hold_keep IS NOT NULL THEN
			v_held := privacy_guard._time_cond(t.retention_column, t.hold_keep, false, now());
		END IF;
		v_act := CASE t.on_forget WHEN 'delete' THEN 'deleted' ELSE 'anonymized' END;
		v_tbl := NULL;
		FOREACH v_target IN ARRAY t.targets LOOP
			/* {key: {"deleted" or "anonymized": rows}} for the keys with rows */
			v_n := privacy_guard._set_as_owner(v_target,
					format('WITH d AS (%s RETURNING "privacy_guard key") '
						   'SELECT pg_catalog.jsonb_object_agg(x.k, pg_catalog.jsonb_build_object(%L, x.n)) FROM '
						   '(SELECT d."privacy_guard key" AS k, pg_catalog.count(*) AS n FROM d GROUP BY 1) x',
						   CASE WHEN t.anonymize_set IS NULL
								THEN format('DELETE FROM %s USING %s WHERE %s AND (%s) IS NOT TRUE',
											v_target, v_join, v_cond, v_held)
								ELSE format('UPDATE %s SET %s FROM %s WHERE %s AND (%s) IS NOT TRUE',
											v_target, t.anonymize_set, v_join, v_cond, v_held) END,
						   v_act),
					v_type_keys, secret);
			v_tbl := privacy_guard._add_set_counts(v_tbl, v_n);
			/* a trigger or rule of the owner may have kept rows: one at a time finds whose */
			IF t.owner_code THEN
				v_left := (privacy_guard._set_as_owner(v_target,
						format('SELECT pg_catalog.to_jsonb(pg_catalog.count(*)) FROM %s, %s WHERE %s AND (%s) IS NOT TRUE',
							   v_target, v_join, v_cond, v_held),
						v_type_keys, NULL))::text::bigint;
				IF v_left > 0 THEN
					RAISE EXCEPTION 'table % kept rows of a set', v_target USING ERRCODE = '55000';
				END IF;
			END IF;
			/* rows within the legal hold are kept, restricted */
			IF t.hold_keep IS NOT NULL THEN
				v_n := privacy_guard._set_as_owner(v_target,
						format('SELECT pg_catalog.jsonb_object_agg(x.k, pg_catalog.jsonb_build_object(''restricted'', x.n)) FROM '
							   '(SELECT "privacy_guard key" AS k, pg_catalog.count(*) AS n FROM %s, %s WHERE %s AND (%s) '
							   'GROUP BY 1) x',
							   v_target, v_join, v_cond, v_held),
						v_type_keys, NULL);
				v_tbl := privacy_guard._add_set_counts(v_tbl, v_n);
			END IF;
		END LOOP;
		IF v_tbl IS NOT NULL THEN
			v_out := v_out || jsonb_build_array(jsonb_build_object(
				't', t.relid::text, 'i', jsonb_array_length(v_leaves), 'n', v_tbl));
			v_leaves := v_leaves || jsonb_build_array(to_jsonb(t.leaves));
		END IF;
	END LOOP;
	/* the subjects' tagged values, in every tagged column of the database */
	IF with_tagged THEN
		FOREACH v_key IN ARRAY v_keys LOOP
			SELECT x.counts, x.touched INTO e FROM privacy_guard._erase_tagged(v_key, secret) x;
			IF e.counts <> '{}' OR cardinality(e.touched) > 0 THEN
				v_tagged := v_tagged || jsonb_build_object(v_key,
					jsonb_build_object('counts', e.counts, 'touched', to_jsonb(e.touched)));
			END IF;
		END LOOP;
	END IF;
	/* the receipts keep the history, with the keys replaced by their digests */
	WITH ledger AS (
		UPDATE privacy_guard.consent_ledger l SET subject = q.subject_digest
		  FROM unnest(reqs) q
		 WHERE l.subject = q.subject RETURNING q.subject),
	current AS (
		DELETE FROM privacy_guard.consent_state c WHERE c.subject = ANY (v_keys) RETURNING c.subject)
	SELECT coalesce(jsonb_object_agg(a.subject, a.n), '{}') INTO v_consents
	  FROM (SELECT b.subject, count(*) AS n
			  FROM (SELECT l.subject FROM ledger l UNION ALL SELECT c.subject FROM current c) b
			 GROUP BY b.subject) a;
	/* keys that spell a subject column's value otherwise (for requests that find nothing) */
	v_misspelt := ARRAY(SELECT DISTINCT k FROM (SELECT DISTINCT tg.base_type FROM unnest(_erase_set.targets) tg) b,
						unnest(privacy_guard._keys_misspelt(v_keys, b.base_type)) k);
	/* and settled again now that the statements have run */
	v_after := ARRAY(SELECT privacy_guard._writers_settled(v_dboid, w, v_rels, with_tagged)
					   FROM unnest(v_when) WITH ORDINALITY AS u(w, i) ORDER BY u.i);

	WITH per_table AS MATERIALIZED (
		/*
		 * Each table's place, name and counts taken out of its element once:
		 * read again for each key, the whole element was read again
		 * (quadratic in the set's size; 1.3 s for a set of 5,000).
		 */
		SELECT (el.o ->> 'i')::integer AS tix, el.o ->> 't' AS tbl, el.o -> 'n' AS n
		  FROM jsonb_array_elements(v_out) AS el(o)),
	got AS (
		SELECT pt.tix, pt.tbl, k.key, k.value AS acts
		  FROM per_table pt, jsonb_each(pt.n) k),
	per_key AS (
		SELECT g.key, jsonb_object_agg(g.tbl, g.acts) AS counts,
			   sum(coalesce((g.acts ->> 'restricted')::bigint, 0)) AS kept,
			   /* the tables rows were deleted or anonymized in (their leaves were written to), as bits */
			   bit_or(1::bigint << g.tix) FILTER (WHERE g.acts ?| ARRAY['deleted', 'anonymized']) AS mask
		  FROM got g GROUP BY g.key),
	touched AS (
		SELECT m.mask,
			   ARRAY(SELECT DISTINCT l.v::oid
					   FROM generate_series(0, jsonb_array_length(v_leaves) - 1) AS i(i),
							jsonb_array_elements_text(v_leaves -> i.i) AS l(v)
					  WHERE m.mask & (1::bigint << i.i) <> 0) AS touched
		  FROM (SELECT DISTINCT p.mask FROM per_key p WHERE p.mask IS NOT NULL) m),
	o AS (
		SELECT q.id, q.subject, q.erased_at, q.counts AS old_counts,
			   coalesce(pk.counts, '{}') || coalesce(v_tagged #> ARRAY[q.subject, 'counts'], '{}') AS counts,
			   CASE WHEN v_tagged ? q.subject
					THEN ARRAY(SELECT DISTINCT x FROM unnest(coalesce(tc.touched, '{}') ||
							   ARRAY(SELECT j.v::oid FROM jsonb_array_elements_text(v_tagged #> ARRAY[q.subject, 'touched']) j(v))) x)
					ELSE coalesce(tc.touched, '{}') END AS touched,	/* without duplicates */
			   coalesce(pk.kept, 0) AS kept,
			   v_before[array_position(v_when, coalesce(q.erased_at, v_start))]
				   AND v_after[array_position(v_when, coalesce(q.erased_at, v_start))] AS settled,
			   coalesce((v_consents ->> q.subject)::bigint, 0) AS consents
		  FROM unnest(reqs) q
		  LEFT JOIN per_key pk ON pk.key = q.subject
		  LEFT JOIN touched tc ON tc.mask = pk.mask),
	outcome AS (
		SELECT o.*,
			   CASE WHEN o.kept > 0 THEN 'restricted'
					WHEN NOT o.settled THEN 'pending'
					WHEN o.erased_at IS NULL AND o.old_counts = '{}' AND o.counts = '{}' AND o.consents = 0
						 AND o.subject = ANY (v_misspelt) THEN 'blocked'
					ELSE 'done' END AS state
		  FROM o),
	open AS (
		/* the raw key stays: later rounds finish the request */
		UPDATE privacy_guard.erasure_request r
		   SET state = u.state,
			   changed_xid = pg_current_xact_id(),
			   counts = CASE WHEN r.counts = '{}' THEN u.counts ELSE privacy_guard._merge_counts(r.counts, u.counts) END,
			   error = NULL,
			   erased_at = coalesce(r.erased_at, v_start),
			   touched = CASE WHEN r.touched = '{}' THEN u.touched ELSE ARRAY(SELECT DISTINCT x FROM unnest(r.touched || u.touched) AS x) END
		  FROM outcome u
		 WHERE r.id = u.id AND u.state IN ('restricted', 'pending')
		RETURNING u.state),
	misspelt AS (
		/* nothing of the key anywhere, and it spells a value otherwise (see _erase_subject) */
		UPDATE privacy_guard.erasure_request r
		   SET state = 'blocked', changed_xid = pg_current_xact_id(),
			   error = format('the key is another spelling of a %s value and nothing was found under it: file the request with the key as the subject column shows it',
							  array_to_string(privacy_guard._key_misspellings(u.subject), ' or '))
		  FROM outcome u
		 WHERE r.id = u.id AND u.state = 'blocked'
		RETURNING u.state),
	closed AS (
		UPDATE privacy_guard.erasure_request r
		   SET state = 'done', completed_at = clock_timestamp(), changed_xid = pg_current_xact_id(),
			   counts = CASE WHEN r.counts = '{}' THEN u.counts ELSE privacy_guard._merge_counts(r.counts, u.counts) END,
			   erased_at = coalesce(r.erased_at, v_start),
			   subject = NULL, error = NULL,
			   touched = CASE WHEN r.touched = '{}' THEN u.touched ELSE ARRAY(SELECT DISTINCT x FROM unnest(r.touched || u.touched) AS x) END,
			   unreachable_at = CASE WHEN r.touched || u.touched = '{}' THEN clock_timestamp() END
		  FROM outcome u
		 WHERE r.id = u.id AND u.state = 'done'
		RETURNING u.state)
	SELECT (SELECT count(*) FROM closed), (SELECT count(*) FROM misspelt),
		   (SELECT count(*) FROM open WHERE open.state = 'restricted')
	  INTO done, blocked, restricted;
END
$$;
