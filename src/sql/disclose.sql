/* ---------------------------------------------------------------- disclosures and notices to recipients */

/*
 * What disclose() (disclose.c) runs as the caller: a query of the table's
 * subject (by its text form, as the rules know it) and the chosen columns
 * as jsonb, with the rules applied by row_visible() for every caller
 * (unbound roles included), after checking that the recipient exists, the
 * purpose or an ancestor discloses to it, the table is protected and the
 * columns are its own.  Every name qualified: the query runs under the
 * caller's session.
 */
CREATE FUNCTION privacy_guard._disclosure_query(recipient text, purpose text, tbl regclass, columns name[])
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t privacy_guard.protected_table;
	c name;
	v_pairs text := '';
	v_qual text;
BEGIN
	PERFORM privacy_guard._check_recipient(recipient);
	PERFORM privacy_guard._check_purpose(purpose);
	IF NOT EXISTS (SELECT 1 FROM privacy_guard._purpose_recipients(purpose) r WHERE r = recipient) THEN
		RAISE EXCEPTION 'purpose "%" does not disclose to recipient "%"', purpose, recipient
			USING ERRCODE = '42501',
				  DETAIL = 'Data goes to a recipient only under a purpose that discloses to it.',
				  HINT = 'An administrator can run privacy_guard.disclose_to().';
	END IF;
	SELECT * INTO t FROM privacy_guard.protected_table p WHERE p.relid = tbl;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table % is not protected by privacy_guard', tbl
			USING ERRCODE = '22023',
				  DETAIL = 'Only rows of a protected table can be disclosed: their subject is known.';
	END IF;
	IF coalesce(cardinality(columns), 0) = 0 THEN
		RAISE EXCEPTION 'no columns to disclose' USING ERRCODE = '22023';
	END IF;
	FOREACH c IN ARRAY columns LOOP
		IF c IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute a
									 WHERE a.attrelid = tbl AND a.attname = c
									   AND a.attnum > 0 AND NOT a.attisdropped) THEN
			RAISE EXCEPTION 'column "%" of table % does not exist', c, tbl USING ERRCODE = '42703';
		END IF;
		v_pairs := v_pairs || CASE WHEN v_pairs = '' THEN '' ELSE ', ' END || format('%L, x.%I', c, c);
	END LOOP;
	v_qual := CASE WHEN t.retention_column IS NULL
				   THEN format('privacy_guard.row_visible(%s::pg_catalog.oid::pg_catalog.regclass, x.%I)', tbl::oid, t.subject_column)
				   ELSE format('privacy_guard.row_visible(%s::pg_catalog.oid::pg_catalog.regclass, x.%I, x.%I)', tbl::oid,
							   t.subject_column, t.retention_column) END;
	RETURN format('SELECT pg_catalog.format(''%%s'', x.%I), pg_catalog.jsonb_build_object(%s) FROM %s x '
				  'WHERE %s AND ($1 IS NULL OR pg_catalog.format(''%%s'', x.%I) OPERATOR(pg_catalog.=) ANY ($1))',
				  t.subject_column, v_pairs, tbl, v_qual, t.subject_column);
END
$$;
COMMENT ON FUNCTION privacy_guard._disclosure_query(text, text, regclass, name[]) IS 'Internal: check a disclosure and build the query disclose() runs as the caller';

/*
 * Record a disclosure: called by disclose() (disclose.c) as the extension
 * owner with the subjects of exactly the rows it returned; nobody else may
 * run it, so no role can write a disclosure record of its own making.
 */
CREATE FUNCTION privacy_guard._record_disclosure(recipient text, purpose text, tbl regclass, columns name[],
												 subjects text[], nrows bigint, caller name)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_id bigint;
	v_key bytea := privacy_guard._secret();
	v_subjects bigint;
BEGIN
	INSERT INTO privacy_guard.disclosure (recipient, purpose, table_name, columns, disclosed_by, rows, subjects)
	VALUES (recipient, purpose, tbl::text, columns::text[], caller, nrows, 0)
	RETURNING id INTO v_id;
	WITH ins AS (
		INSERT INTO privacy_guard.disclosure_subject (disclosure, subject_digest, rows)
		SELECT v_id, privacy_guard._hmac(v_key, s.s), count(*)
		  FROM unnest(subjects) AS s(s) WHERE s.s IS NOT NULL
		 GROUP BY s.s
		RETURNING 1)
	SELECT count(*) INTO v_subjects FROM ins;
	UPDATE privacy_guard.disclosure d SET subjects = v_subjects WHERE d.id = v_id;
	RETURN v_id;
END
$$;
COMMENT ON FUNCTION privacy_guard._record_disclosure(text, text, regclass, name[], text[], bigint, name) IS 'Internal: record what disclose() returned, per subject by digest';

CREATE FUNCTION privacy_guard.disclose(recipient text, purpose text, tbl regclass, columns name[],
									   subjects text[] DEFAULT NULL)
RETURNS SETOF jsonb
AS 'MODULE_PATHNAME', 'pvg_disclose'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard.disclose(text, text, regclass, name[], text[]) IS 'Hand rows of a protected table to a recipient under a purpose that discloses to it, with the rules applied, and record per subject what went out';

/*
 * Notices to every recipient that received the subject's data (through
 * disclose()), once per recipient: for an erasure or restriction, under
 * any purpose; for a withdrawal or objection, under the purpose or one of
 * its descendants.  Returns how many recipients were notified.
 */
CREATE FUNCTION privacy_guard._notify_recipients(subject text, digest text, kind text, purpose text, request_id bigint)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_n integer;
	v_ids bigint[];
BEGIN
	WITH ins AS (
		INSERT INTO privacy_guard.recipient_notice (recipient, kind, subject, subject_digest, purpose, request_id)
		SELECT DISTINCT d.recipient, kind, subject, digest, _notify_recipients.purpose, request_id
		  FROM privacy_guard.disclosure_subject ds
		  JOIN privacy_guard.disclosure d ON d.id = ds.disclosure
		 WHERE ds.subject_digest = digest
		   AND (_notify_recipients.purpose IS NULL OR d.purpose = _notify_recipients.purpose
				OR starts_with(d.purpose, _notify_recipients.purpose || '.'))
		RETURNING id)
	SELECT count(*), array_agg(id) INTO v_n, v_ids FROM ins;
	IF v_n > 0 THEN
		PERFORM pg_notify('privacy_guard_outbox', x::text) FROM unnest(v_ids) AS x;
	END IF;
	RETURN v_n;
END
$$;
COMMENT ON FUNCTION privacy_guard._notify_recipients(text, text, text, text, bigint) IS 'Internal: write a notice to every recipient that received a subject''s data into the outbox';

/*
 * A forget request that becomes done (erased) or restricted (kept under a
 * legal hold) notifies the recipients; the receipt counts them.  A trigger,
 * so the worker's rounds and run_maintenance() both do it, in the
 * transaction of the erasure.  The raw key is in the old row: done clears
 * it.  Once per statement, over the rows it changed: a round closes
 * thousands of receipts in one statement, and most subjects' data went to
 * no recipient, which one join says.
 */
CREATE FUNCTION privacy_guard._erasure_notices()
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

/*
 * The outbox, for the application that delivers it: the pending notices
 * (oldest first, locked for this transaction; others' locked ones skipped,
 * so deliverers can run side by side), and marking one sent, which drops
 * the raw key from it.
 */
CREATE FUNCTION privacy_guard.pending_notices(max_notices integer DEFAULT 100)
RETURNS TABLE (id bigint, recipient text, kind text, subject text, purpose text, request_id bigint,
			   created_at timestamptz)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT n.id, n.recipient, n.kind, n.subject, n.purpose, n.request_id, n.created_at
	  FROM privacy_guard.recipient_notice n
	 WHERE n.sent_at IS NULL
	 ORDER BY n.id
	 LIMIT greatest(coalesce($1, 100), 0)
	   FOR UPDATE SKIP LOCKED
$$;
COMMENT ON FUNCTION privacy_guard.pending_notices(integer) IS 'Notices to recipients not yet sent, oldest first, locked for the caller''s transaction';

CREATE FUNCTION privacy_guard.mark_notice_sent(id bigint)
RETURNS boolean
LANGUAGE sql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	WITH upd AS (
		UPDATE privacy_guard.recipient_notice n
		   SET sent_at = pg_catalog.now(), sent_by = SESSION_USER, subject = NULL
		 WHERE n.id = $1 AND n.sent_at IS NULL
		RETURNING 1)
	SELECT EXISTS (SELECT 1 FROM upd)
$$;
COMMENT ON FUNCTION privacy_guard.mark_notice_sent(bigint) IS 'Mark a notice to a recipient as delivered (its subject key is dropped); false if it was already';

/* What the subject report says about recipients (GDPR Art. 15(1)(c)). */
CREATE FUNCTION privacy_guard._report_recipients(digest text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(jsonb_agg(jsonb_build_object(
				'recipient', x.recipient, 'kind', r.kind, 'country', r.country,
				'third_country', CASE WHEN r.country IS NULL THEN NULL ELSE NOT privacy_guard._in_eea(r.country) END,
				'safeguard', r.safeguard, 'purposes', x.purposes,
				'first_disclosed_at', x.first_at, 'last_disclosed_at', x.last_at, 'disclosures', x.n)
			ORDER BY x.recipient), '[]')
	  FROM (SELECT d.recipient, array_agg(DISTINCT d.purpose ORDER BY d.purpose) AS purposes,
				   min(d.disclosed_at) AS first_at, max(d.disclosed_at) AS last_at, count(*) AS n
			  FROM privacy_guard.disclosure_subject ds
			  JOIN privacy_guard.disclosure d ON d.id = ds.disclosure
			 WHERE ds.subject_digest = $1
			 GROUP BY d.recipient) x
	  LEFT JOIN privacy_guard.recipient r ON r.name = x.recipient
$$;
COMMENT ON FUNCTION privacy_guard._report_recipients(text) IS 'Internal: the recipients a subject''s data was disclosed to';

/*
 * The privacy notice's section on recipients (GDPR Art. 13(1)(e)-(f)):
 * every recipient a purpose of the notice discloses to, with its kind and
 * country, and for a transfer outside the EU/EEA its safeguard.  purposes
 * are the notice's purposes; lang 'en' or 'de'.  Empty when no purpose of
 * the notice discloses.
 */
CREATE FUNCTION privacy_guard._notice_recipients(fmt text, purposes text[], lang text DEFAULT 'en')
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	de boolean := lang = 'de';
	v_items text[] := '{}';
	r record;
	v_third boolean := false;
BEGIN
	FOR r IN
		SELECT rc.name, rc.kind, rc.country, rc.safeguard, rc.description,
			   array_agg(DISTINCT pr.purpose ORDER BY pr.purpose) AS via
		  FROM privacy_guard.recipient rc
		  JOIN privacy_guard.purpose_recipient pr ON pr.recipient = rc.name
		  JOIN privacy_guard.purpose p ON p.name = ANY (purposes)
		 /* data kept for a purpose goes out under it, an ancestor's recipients, or a child */
		 WHERE pr.purpose IN (SELECT privacy_guard._purpose_chain(p.name))
			OR starts_with(pr.purpose, p.name || '.')
		 GROUP BY rc.name, rc.kind, rc.country, rc.safeguard, rc.description
		 ORDER BY rc.name
	LOOP
		v_third := v_third OR NOT privacy_guard._in_eea(r.country);
		v_items := v_items || (
			privacy_guard._notice_markup('b', fmt, privacy_guard._notice_markup('text', fmt,
				coalesce(r.description, privacy_guard._human_name(r.name))))
			|| ' — ' || CASE r.kind
				WHEN 'processor' THEN CASE WHEN de THEN 'Auftragsverarbeiter' ELSE 'a processor working for us' END
				WHEN 'third_party' THEN CASE WHEN de THEN 'Dritter' ELSE 'a third party' END
				ELSE CASE WHEN de THEN 'gemeinsam mit uns Verantwortlicher' ELSE 'a joint controller with us' END END
			|| ', ' || CASE WHEN de THEN 'Land: ' ELSE 'country: ' END || privacy_guard._notice_markup('text', fmt, r.country)
			|| ', ' || CASE WHEN de THEN 'für: ' ELSE 'for: ' END
			|| (SELECT string_agg(privacy_guard._notice_markup('code', fmt, v), ', ' ORDER BY v) FROM unnest(r.via) AS v)
			|| CASE WHEN privacy_guard._in_eea(r.country) THEN ''
					ELSE '. ' || CASE WHEN de THEN 'Übermittlung in ein Drittland außerhalb des EWR; Garantie: '
									  ELSE 'Transfer to a country outside the EU/EEA; safeguard: ' END
						 || privacy_guard._notice_markup('text', fmt, r.safeguard) END
			|| '.');
	END LOOP;
	IF cardinality(v_items) = 0 THEN
		RETURN '';
	END IF;
	RETURN privacy_guard._notice_markup('h2', fmt, CASE WHEN de THEN 'Empfänger Ihrer Daten' ELSE 'Who receives your data' END)
		|| privacy_guard._notice_markup('p', fmt, CASE WHEN de
			THEN 'Wir geben Ihre Daten nur für die genannten Zwecke und nur an diese Empfänger weiter (Art. 13 Abs. 1 lit. e und f DSGVO):'
			ELSE 'We pass your data only to these recipients, and only for the purposes named (GDPR Art. 13(1)(e) and (f)):' END)
		|| privacy_guard._notice_list(fmt, v_items)
		|| CASE WHEN v_third THEN privacy_guard._notice_markup('p', fmt, CASE WHEN de
			THEN 'Eine Kopie der Garantien für Übermittlungen in Drittländer erhalten Sie auf Anfrage.'
			ELSE 'You can ask us for a copy of the safeguards of transfers outside the EU/EEA.' END)
				ELSE '' END;
END
$$;
COMMENT ON FUNCTION privacy_guard._notice_recipients(text, text[], text) IS 'Internal: the privacy notice''s section on recipients and third-country transfers';

