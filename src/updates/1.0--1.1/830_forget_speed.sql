
/*
 * Forget requests in bulk, cheaper around the erasure: a round finds the
 * open requests and the receipts it closes or drops through partial
 * indexes, however many receipts are kept; receipts learn they are
 * unreachable through one read of each table's last vacuum
 * (_close_receipts).  (The statement-level notices trigger and the sets'
 * faster receipts are in the pieces that create them, 300 and 800.)
 */
/* the indexes a round reads by cover open requests, not every receipt kept */
DROP INDEX privacy_guard.erasure_request_subject;
CREATE INDEX erasure_request_subject ON privacy_guard.erasure_request (subject) WHERE subject IS NOT NULL;
CREATE INDEX erasure_request_open ON privacy_guard.erasure_request (id) WHERE subject IS NOT NULL;
CREATE INDEX erasure_request_unreachable ON privacy_guard.erasure_request (completed_at)
	WHERE state OPERATOR(pg_catalog.=) 'done' AND unreachable_at IS NULL;
CREATE INDEX erasure_request_closed ON privacy_guard.erasure_request (completed_at)
	WHERE state OPERATOR(pg_catalog.=) 'done' AND unreachable_at IS NOT NULL;
/* closing a request writes no entry of the consent cache's index, and a cheap one of the digest's */
DROP INDEX privacy_guard.erasure_request_digest;
CREATE INDEX erasure_request_digest ON privacy_guard.erasure_request USING hash (subject_digest);
DROP INDEX privacy_guard.erasure_request_changed;
CREATE INDEX erasure_request_changed ON privacy_guard.erasure_request (changed_xid) WHERE subject IS NOT NULL;
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
