/* ---------------------------------------------------------------- investigation */

/*
 * Whether a protected table holds rows of a subject now, read as its owner
 * (false when the key cannot be a value of the subject column).
 */
CREATE FUNCTION privacy_guard._holds_subject(tbl regclass, subject text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_col name;
	v_type regtype;
BEGIN
	SELECT p.subject_column, a.atttypid::regtype INTO v_col, v_type
	  FROM privacy_guard.protected_table p
	  JOIN pg_attribute a ON a.attrelid = p.relid AND a.attname = p.subject_column AND NOT a.attisdropped
	 WHERE p.relid = tbl;
	IF v_col IS NULL THEN
		RETURN false;
	END IF;
	RETURN coalesce((privacy_guard._read_as_owner(tbl,
		format('SELECT pg_catalog.to_jsonb(EXISTS (SELECT 1 FROM %s x WHERE %s))', tbl,
			   privacy_guard._subject_cond(format('x.%I', v_col), v_type)),
		subject, NULL, NULL))::text::boolean, false);
EXCEPTION WHEN data_exception THEN
	RETURN false;
END
$$;
COMMENT ON FUNCTION privacy_guard._holds_subject(regclass, text) IS 'Internal: whether a protected table holds rows of a subject now';

/*
 * A subject's timeline for a misuse investigation, between since and
 * until: consent grants, withdrawals and objections (the ledger, also
 * under the digest after an erasure); reads that may have touched their
 * rows (access_history: no false negatives, rare false positives);
 * disclosures of their rows to recipients; erasure requests and receipts;
 * notices to recipients; and reads of protected tables by roles the rules
 * do not bind (table level: every such read of a table that holds the
 * subject's rows now, or of any protected table once the subject has
 * asked to be forgotten).  flag names what a data protection officer must
 * look at:
 *	- disclosure_after_withdrawal: a disclosure under a purpose the subject
 *	  had withdrawn from or objected to (it or an ancestor) at the time;
 *	- read_without_consent: a read under a consent purpose while the
 *	  subject had no consent to it (can be a false positive of the read's
 *	  subject filter, and is then to be confirmed);
 *	- unbound_read: a read by a superuser or BYPASSRLS role;
 *	- read_after_erasure_request: a read after a forget request was due;
 *	- notice_pending: a notice to a recipient not yet marked sent.
 */
CREATE FUNCTION privacy_guard.investigate(subject text, since timestamptz DEFAULT '-infinity',
										  until timestamptz DEFAULT 'infinity')
RETURNS TABLE (at timestamptz, event text, detail jsonb, flag text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_digest text;
	v_since timestamptz := coalesce(since, '-infinity');
	v_until timestamptz := coalesce(until, 'infinity');
	v_forgotten timestamptz;
	v_holding text[];
BEGIN
	PERFORM privacy_guard._check_subject(subject);
	v_digest := privacy_guard._subject_digest(subject);
	SELECT min(r.due) INTO v_forgotten FROM privacy_guard.erasure_request r WHERE r.subject_digest = v_digest;
	PERFORM privacy_guard._flush_access_log();
	/* the tables an unbound read could have found their rows in: all of them once forgotten */
	v_holding := ARRAY(SELECT p.relid::text FROM privacy_guard.protected_table p
						WHERE v_forgotten IS NOT NULL OR privacy_guard._holds_subject(p.relid, subject));

	RETURN QUERY
	WITH ledger AS (
		SELECT l.id, l.purpose, l.action, l.valid_until, l.recorded_at, l.recorded_by
		  FROM privacy_guard.consent_ledger l
		 WHERE l.subject IN (investigate.subject, v_digest)),
	/* whether, at a time, the latest ledger entry for a purpose or an ancestor ends its use */
	events AS (
		SELECT l.recorded_at AS at, 'consent_' || l.action AS event,
			   jsonb_build_object('purpose', l.purpose, 'valid_until', l.valid_until,
								  'recorded_by', l.recorded_by) AS detail,
			   NULL::text AS flag
		  FROM ledger l
		UNION ALL
		SELECT d.disclosed_at, 'disclosure',
			   jsonb_build_object('recipient', d.recipient, 'purpose', d.purpose, 'table', d.table_name,
								  'columns', d.columns, 'rows', ds.rows, 'disclosed_by', d.disclosed_by,
								  'disclosure', d.id),
			   CASE WHEN (SELECT l.action FROM ledger l
						   WHERE l.purpose IN (SELECT privacy_guard._purpose_chain(d.purpose))
							 AND l.recorded_at <= d.disclosed_at
						   ORDER BY l.recorded_at DESC, l.id DESC LIMIT 1) IN ('withdraw', 'object')
					THEN 'disclosure_after_withdrawal' END
		  FROM privacy_guard.disclosure_subject ds
		  JOIN privacy_guard.disclosure d ON d.id = ds.disclosure
		 WHERE ds.subject_digest = v_digest
		UNION ALL
		SELECT h.bucket, 'read',
			   jsonb_build_object('role', h.role, 'purpose', h.purpose, 'table', h.table_name),
			   CASE WHEN v_forgotten IS NOT NULL AND h.bucket + interval '1 minute' > v_forgotten
					THEN 'read_after_erasure_request'
					WHEN (SELECT p.legal_basis FROM privacy_guard.purpose p WHERE p.name = h.purpose) = 'consent'
						 AND coalesce((SELECT l.action FROM ledger l
										WHERE l.purpose IN (SELECT privacy_guard._purpose_chain(h.purpose))
										  AND l.recorded_at <= h.bucket + interval '1 minute'
										ORDER BY l.recorded_at DESC, l.id DESC LIMIT 1), 'none') <> 'grant'
					THEN 'read_without_consent' END
		  FROM privacy_guard.access_history(investigate.subject, v_since) h
		 WHERE h.role IS NOT NULL
		UNION ALL
		SELECT d.bucket, 'unbound_read',
			   jsonb_build_object('role', d.role, 'purpose', nullif(d.purpose, ''), 'table', d.table_name,
								  'transactions', d.statements),
			   'unbound_read'
		  FROM privacy_guard.access_log_data d
		 WHERE d.unbound
		   AND d.bucket + interval '1 minute' > v_since
		   AND d.table_name = ANY (v_holding)
		UNION ALL
		SELECT r.requested_at, 'erasure_requested',
			   jsonb_build_object('request', r.id, 'reason', r.reason, 'due', r.due), NULL
		  FROM privacy_guard.erasure_request r WHERE r.subject_digest = v_digest
		UNION ALL
		SELECT r.completed_at, 'erasure_' || r.state,
			   jsonb_build_object('request', r.id, 'counts', r.counts,
								  'recipients_notified', r.recipients_notified,
								  'unreachable_at', r.unreachable_at), NULL
		  FROM privacy_guard.erasure_request r
		 WHERE r.subject_digest = v_digest AND r.completed_at IS NOT NULL
		UNION ALL
		SELECT n.created_at, 'recipient_notice',
			   jsonb_build_object('recipient', n.recipient, 'kind', n.kind, 'purpose', n.purpose,
								  'request', n.request_id, 'sent_at', n.sent_at),
			   CASE WHEN n.sent_at IS NULL THEN 'notice_pending' END
		  FROM privacy_guard.recipient_notice n WHERE n.subject_digest = v_digest)
	SELECT e.at, e.event, e.detail, e.flag FROM events e
	 WHERE e.at + CASE WHEN e.event IN ('read', 'unbound_read') THEN interval '1 minute' ELSE interval '0' END > v_since
	   AND e.at <= v_until
	 ORDER BY e.at, e.event, e.detail::text;
END
$$;
COMMENT ON FUNCTION privacy_guard.investigate(text, timestamptz, timestamptz) IS 'A subject''s timeline for a misuse investigation (consents, reads, disclosures, erasures, notices, unbound reads), with flags for what a data protection officer must look at';
