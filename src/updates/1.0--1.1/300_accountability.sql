/*
 * Accountability: recipients and the purposes that disclose to them,
 * disclose() and its per-subject records, the outbox of notices to
 * recipients (erasure, restriction, withdrawal, objection), reads by
 * unbound roles in the access log, investigate(); the register, the
 * notice and the subject report name recipients.
 */
ALTER TABLE privacy_guard.erasure_request
	ADD COLUMN recipients_notified integer NOT NULL DEFAULT 0;
ALTER TABLE privacy_guard.access_log_data
	ADD COLUMN unbound boolean NOT NULL DEFAULT false;

CREATE OR REPLACE VIEW privacy_guard.erasure_requests AS
	SELECT r.id, r.subject_digest, r.reason, r.requested_at, r.due, r.completed_at, r.state,
		   r.counts, r.error, r.unreachable_at, r.recipients_notified
	  FROM privacy_guard.erasure_request r;
COMMENT ON VIEW privacy_guard.erasure_requests IS 'Erasure requests and receipts; subjects appear only as keyed digests';

CREATE OR REPLACE VIEW privacy_guard.access_log AS
	SELECT d.bucket, d.role, d.purpose, d.table_name,
		   pg_catalog.sum(d.statements)::bigint AS statements, pg_catalog.sum(d.rows)::bigint AS rows,
		   d.unbound
	  FROM privacy_guard.access_log_data d
	 GROUP BY d.bucket, d.role, d.purpose, d.table_name, d.unbound;
COMMENT ON VIEW privacy_guard.access_log IS 'Reads of protected tables per minute, role, purpose and table (privacy_guard.audit); unbound: by a superuser or BYPASSRLS role, counted once per table per transaction, without rows';

CREATE SEQUENCE privacy_guard.disclosure_id_seq;
CREATE SEQUENCE privacy_guard.recipient_notice_id_seq;

CREATE TABLE privacy_guard.recipient (
	name		text PRIMARY KEY
				CHECK (name OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,62}$'),
	kind		text NOT NULL
				CHECK (kind OPERATOR(pg_catalog.=) ANY (ARRAY['processor', 'third_party', 'joint_controller'])),
	country		text NOT NULL CHECK (country OPERATOR(pg_catalog.~) '^[A-Z]{2}$'),	/* ISO 3166-1 alpha-2 */
	safeguard	text,		/* for transfers outside the EU/EEA (GDPR Art. 44-49) */
	description text,
	defined_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE privacy_guard.recipient IS 'Recipients of personal data: processors, third parties, joint controllers';

CREATE TABLE privacy_guard.purpose_recipient (
	purpose		text NOT NULL REFERENCES privacy_guard.purpose (name),
	recipient	text NOT NULL REFERENCES privacy_guard.recipient (name),
	PRIMARY KEY (purpose, recipient)
);
COMMENT ON TABLE privacy_guard.purpose_recipient IS 'Which purposes disclose data to which recipients (and so do their descendants)';

/* Kept after the recipient is dropped: notices are owed to it all the same. */
CREATE TABLE privacy_guard.disclosure (
	id			bigint PRIMARY KEY
				DEFAULT pg_catalog.nextval('privacy_guard.disclosure_id_seq'::pg_catalog.regclass),
	recipient	text NOT NULL,
	purpose		text NOT NULL,
	table_name	text NOT NULL,	/* schema-qualified, as named when disclosed */
	columns		text[] NOT NULL,
	disclosed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	disclosed_by name NOT NULL,	/* current_user of disclose() */
	rows		bigint NOT NULL,
	subjects	bigint NOT NULL
);
CREATE INDEX disclosure_at ON privacy_guard.disclosure (disclosed_at);
COMMENT ON TABLE privacy_guard.disclosure IS 'Disclosures made with privacy_guard.disclose(): what went to whom, when, under which purpose';
ALTER SEQUENCE privacy_guard.disclosure_id_seq OWNED BY privacy_guard.disclosure.id;

CREATE TABLE privacy_guard.disclosure_subject (
	disclosure	bigint NOT NULL REFERENCES privacy_guard.disclosure (id) ON DELETE CASCADE,
	subject_digest text NOT NULL,	/* keyed digest: never the raw key */
	rows		bigint NOT NULL,
	PRIMARY KEY (disclosure, subject_digest)
);
CREATE INDEX disclosure_subject_digest ON privacy_guard.disclosure_subject (subject_digest);
COMMENT ON TABLE privacy_guard.disclosure_subject IS 'Per disclosure, the subjects whose rows went out, as keyed digests';

/*
 * The outbox.  subject holds the raw key only until the notice is marked
 * sent: the recipient must learn whose data to erase or restrict, and the
 * key is gone from here once it has.  Written in the transaction that
 * erases, restricts or records the withdrawal, so a notice exists exactly
 * when that change committed; NOTIFY privacy_guard_outbox (payload: the
 * notice's id) wakes a listening application at commit.
 */
CREATE TABLE privacy_guard.recipient_notice (
	id			bigint PRIMARY KEY
				DEFAULT pg_catalog.nextval('privacy_guard.recipient_notice_id_seq'::pg_catalog.regclass),
	recipient	text NOT NULL,
	kind		text NOT NULL
				CHECK (kind OPERATOR(pg_catalog.=) ANY (ARRAY['erasure', 'restriction', 'withdrawal', 'objection'])),
	subject		text,			/* raw key: only until sent */
	subject_digest text NOT NULL,
	purpose		text,			/* withdrawal, objection: the purpose */
	request_id	bigint,			/* erasure, restriction: the forget request */
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	sent_at		timestamptz,
	sent_by		name
);
CREATE INDEX recipient_notice_pending ON privacy_guard.recipient_notice (id) WHERE sent_at IS NULL;
CREATE INDEX recipient_notice_digest ON privacy_guard.recipient_notice (subject_digest);
COMMENT ON TABLE privacy_guard.recipient_notice IS 'Outbox of notices to recipients (GDPR Art. 19): erasure, restriction, withdrawal, objection';
ALTER SEQUENCE privacy_guard.recipient_notice_id_seq OWNED BY privacy_guard.recipient_notice.id;

SELECT pg_catalog.pg_extension_config_dump('privacy_guard.recipient', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.purpose_recipient', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.disclosure', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.disclosure_subject', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.recipient_notice', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.disclosure_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.recipient_notice_id_seq', '');
REVOKE ALL ON privacy_guard.recipient, privacy_guard.purpose_recipient, privacy_guard.disclosure,
	privacy_guard.disclosure_subject, privacy_guard.recipient_notice FROM PUBLIC;

/* The EU member states and the other EEA states (Iceland, Liechtenstein, Norway). */
CREATE FUNCTION privacy_guard._in_eea(country text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT $1 = ANY (ARRAY['AT', 'BE', 'BG', 'HR', 'CY', 'CZ', 'DK', 'EE', 'FI', 'FR', 'DE', 'GR',
						   'HU', 'IE', 'IT', 'LV', 'LT', 'LU', 'MT', 'NL', 'PL', 'PT', 'RO', 'SK',
						   'SI', 'ES', 'SE', 'IS', 'LI', 'NO'])
$$;
COMMENT ON FUNCTION privacy_guard._in_eea(text) IS 'Internal: whether an ISO 3166-1 alpha-2 country is in the EU/EEA';

CREATE FUNCTION privacy_guard.define_recipient(name text, kind text, country text,
											   safeguard text DEFAULT NULL, description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid recipient name'
			USING ERRCODE = '22023',
				  DETAIL = 'A recipient name is a lower-case word of letters, digits and underscores.';
	END IF;
	IF kind IS NULL OR kind <> ALL (ARRAY['processor', 'third_party', 'joint_controller']) THEN
		RAISE EXCEPTION 'invalid recipient kind "%"', kind
			USING ERRCODE = '22023',
				  HINT = 'Use processor, third_party or joint_controller.';
	END IF;
	IF country IS NULL OR country !~ '^[A-Z]{2}$' THEN
		RAISE EXCEPTION 'invalid country "%"', country
			USING ERRCODE = '22023',
				  HINT = 'Use the ISO 3166-1 alpha-2 code in capitals, e.g. DE or US.';
	END IF;
	IF NOT privacy_guard._in_eea(country) AND coalesce(btrim(safeguard), '') = '' THEN
		RAISE EXCEPTION 'recipient "%" in % is outside the EU/EEA and needs a safeguard', name, country
			USING ERRCODE = '22023',
				  DETAIL = 'A transfer to a third country needs an adequacy decision or appropriate safeguards (GDPR Art. 45-49).',
				  HINT = 'Name it, e.g. safeguard => ''standard contractual clauses''.';
	END IF;
	INSERT INTO privacy_guard.recipient AS r (name, kind, country, safeguard, description)
	VALUES (define_recipient.name, define_recipient.kind, define_recipient.country,
			nullif(btrim(define_recipient.safeguard), ''), define_recipient.description)
	ON CONFLICT ON CONSTRAINT recipient_pkey DO UPDATE
		SET kind = excluded.kind, country = excluded.country, safeguard = excluded.safeguard,
			description = excluded.description;
END
$$;
COMMENT ON FUNCTION privacy_guard.define_recipient(text, text, text, text, text) IS 'Create or update a recipient of personal data (processor, third party, joint controller)';

CREATE FUNCTION privacy_guard._check_recipient(recipient text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM privacy_guard.recipient r WHERE r.name = recipient) THEN
		RAISE EXCEPTION 'recipient "%" does not exist', recipient
			USING ERRCODE = '22023',
				  HINT = 'See privacy_guard.recipients for the defined recipients.';
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._check_recipient(text) IS 'Internal: error 22023 unless the recipient exists';

CREATE FUNCTION privacy_guard.drop_recipient(name text)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_purpose text;
BEGIN
	PERFORM privacy_guard._check_recipient(name);
	SELECT pr.purpose INTO v_purpose FROM privacy_guard.purpose_recipient pr
	 WHERE pr.recipient = drop_recipient.name ORDER BY pr.purpose LIMIT 1;
	IF v_purpose IS NOT NULL THEN
		RAISE EXCEPTION 'cannot drop recipient "%" because purpose "%" discloses to it', name, v_purpose
			USING ERRCODE = '2BP01',
				  HINT = 'Run privacy_guard.undisclose() first.';
	END IF;
	/* its disclosures stay: notices are still owed to it */
	DELETE FROM privacy_guard.recipient r WHERE r.name = drop_recipient.name;
END
$$;
COMMENT ON FUNCTION privacy_guard.drop_recipient(text) IS 'Remove a recipient no purpose discloses to (its disclosure records stay)';

CREATE FUNCTION privacy_guard.disclose_to(purpose text, recipient text)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM privacy_guard._check_purpose(purpose);
	PERFORM privacy_guard._check_recipient(recipient);
	INSERT INTO privacy_guard.purpose_recipient (purpose, recipient)
	VALUES (disclose_to.purpose, disclose_to.recipient)
	ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION privacy_guard.disclose_to(text, text) IS 'Let a purpose (and its descendants) disclose data to a recipient';

CREATE FUNCTION privacy_guard.undisclose(purpose text, recipient text)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM privacy_guard._check_purpose(purpose);
	PERFORM privacy_guard._check_recipient(recipient);
	DELETE FROM privacy_guard.purpose_recipient pr
	 WHERE pr.purpose = undisclose.purpose AND pr.recipient = undisclose.recipient;
END
$$;
COMMENT ON FUNCTION privacy_guard.undisclose(text, text) IS 'Stop a purpose disclosing data to a recipient';

/* The recipients a purpose discloses to: its own and its ancestors'. */
CREATE FUNCTION privacy_guard._purpose_recipients(purpose text)
RETURNS SETOF text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT DISTINCT pr.recipient FROM privacy_guard.purpose_recipient pr
	 WHERE pr.purpose IN (SELECT privacy_guard._purpose_chain($1))
$$;
COMMENT ON FUNCTION privacy_guard._purpose_recipients(text) IS 'Internal: the recipients a purpose discloses to (through itself or an ancestor)';

CREATE VIEW privacy_guard.recipients AS
	SELECT r.name, r.kind, r.country,
		   NOT privacy_guard._in_eea(r.country) AS third_country,
		   r.safeguard, r.description,
		   ARRAY(SELECT pr.purpose FROM privacy_guard.purpose_recipient pr
				  WHERE pr.recipient OPERATOR(pg_catalog.=) r.name ORDER BY pr.purpose) AS purposes
	  FROM privacy_guard.recipient r;
COMMENT ON VIEW privacy_guard.recipients IS 'Recipients of personal data, where they are, the safeguard of a transfer outside the EU/EEA, and the purposes that disclose to them';

CREATE VIEW privacy_guard.disclosures AS
	SELECT d.id, d.recipient, d.purpose, d.table_name, d.columns, d.disclosed_at, d.disclosed_by,
		   d.rows, d.subjects
	  FROM privacy_guard.disclosure d;
COMMENT ON VIEW privacy_guard.disclosures IS 'Disclosures made with privacy_guard.disclose()';

CREATE VIEW privacy_guard.recipient_notices AS
	SELECT n.id, n.recipient, n.kind, n.subject_digest, n.purpose, n.request_id, n.created_at,
		   n.sent_at, n.sent_by
	  FROM privacy_guard.recipient_notice n;
COMMENT ON VIEW privacy_guard.recipient_notices IS 'The outbox of notices to recipients, without subject keys';

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

CREATE OR REPLACE FUNCTION privacy_guard.drop_purpose(name text)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_user text;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM privacy_guard.purpose p WHERE p.name = drop_purpose.name) THEN
		RAISE EXCEPTION 'purpose "%" does not exist', name USING ERRCODE = '22023';
	END IF;
	SELECT 'child purpose ' || quote_literal(p.name) INTO v_user
	  FROM privacy_guard.purpose p WHERE p.parent = drop_purpose.name LIMIT 1;
	IF v_user IS NULL THEN
		SELECT 'table ' || t.relid::text INTO v_user
		  FROM privacy_guard.protected_table t WHERE drop_purpose.name = ANY (t.purposes) LIMIT 1;
	END IF;
	IF v_user IS NULL THEN
		SELECT 'role ' || quote_ident(r.role::text) INTO v_user
		  FROM privacy_guard.purpose_role r WHERE r.purpose = drop_purpose.name LIMIT 1;
	END IF;
	IF v_user IS NULL THEN
		SELECT 'recipient ' || quote_literal(pr.recipient) INTO v_user
		  FROM privacy_guard.purpose_recipient pr WHERE pr.purpose = drop_purpose.name
		 ORDER BY pr.recipient LIMIT 1;
	END IF;
	IF v_user IS NULL AND EXISTS (SELECT 1 FROM privacy_guard.consent_state c
								   WHERE c.purpose = drop_purpose.name) THEN
		v_user := 'recorded consent';
	END IF;
	IF v_user IS NOT NULL THEN
		RAISE EXCEPTION 'cannot drop purpose "%" because % uses it', name, v_user
			USING ERRCODE = '2BP01';
	END IF;
	DELETE FROM privacy_guard.purpose p WHERE p.name = drop_purpose.name;
END
$$;
COMMENT ON FUNCTION privacy_guard.drop_purpose(text) IS 'Remove a purpose that nothing uses';

CREATE OR REPLACE FUNCTION privacy_guard.withdraw_consent(subject text, purpose text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_basis text;
	v_was text;
BEGIN
	PERFORM privacy_guard._check_subject(subject);
	v_basis := privacy_guard._check_purpose(purpose);
	IF v_basis <> 'consent' THEN
		RAISE EXCEPTION 'purpose "%" rests on %, not on consent', purpose, v_basis
			USING ERRCODE = '22023',
				  HINT = 'Use privacy_guard.object_to() for legitimate_interests and public_task purposes.';
	END IF;
	SELECT c.status INTO v_was FROM privacy_guard.consent_state c
	 WHERE c.subject = withdraw_consent.subject AND c.purpose = withdraw_consent.purpose;
	PERFORM privacy_guard._record_consent(subject, purpose, 'withdrawn', NULL, NULL);
	/* recipients that received the subject's data under it are told, once */
	IF v_was IS DISTINCT FROM 'withdrawn' THEN
		PERFORM privacy_guard._notify_recipients(subject, privacy_guard._subject_digest(subject), 'withdrawal', purpose, NULL);
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard.withdraw_consent(text, text) IS 'Record the withdrawal of a subject''s consent';

CREATE OR REPLACE FUNCTION privacy_guard.object_to(subject text, purpose text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_basis text;
	v_was text;
BEGIN
	PERFORM privacy_guard._check_subject(subject);
	v_basis := privacy_guard._check_purpose(purpose);
	IF v_basis NOT IN ('legitimate_interests', 'public_task') THEN
		RAISE EXCEPTION 'purpose "%" rests on %; an objection applies only to legitimate_interests and public_task purposes',
			purpose, v_basis
			USING ERRCODE = '22023';
	END IF;
	SELECT c.status INTO v_was FROM privacy_guard.consent_state c
	 WHERE c.subject = object_to.subject AND c.purpose = object_to.purpose;
	PERFORM privacy_guard._record_consent(subject, purpose, 'objected', NULL, NULL);
	/* recipients that received the subject's data under it are told, once */
	IF v_was IS DISTINCT FROM 'objected' THEN
		PERFORM privacy_guard._notify_recipients(subject, privacy_guard._subject_digest(subject), 'objection', purpose, NULL);
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard.object_to(text, text) IS 'Record a subject''s objection (GDPR Art. 21)';

CREATE OR REPLACE VIEW privacy_guard.processing_register AS
	WITH tagged AS (SELECT * FROM privacy_guard._tagged_column_purposes())
	SELECT t.relid AS table_name,
		   a.attname AS column_name,
		   pg_catalog.format_type(a.atttypid, a.atttypmod) AS data_type,
		   CASE WHEN a.attname OPERATOR(pg_catalog.=) t.subject_column THEN 'subject'
				WHEN a.attname OPERATOR(pg_catalog.=) t.retention_column THEN 'retention'
				WHEN tg.relid IS NOT NULL THEN 'tagged'
				ELSE 'data' END AS column_role,
		   pg_catalog.col_description(t.relid::pg_catalog.oid, a.attnum::integer) AS description,
		   t.purposes,
		   ARRAY(SELECT p.legal_basis
				   FROM pg_catalog.unnest(t.purposes) WITH ORDINALITY AS u(name, n)
				   JOIN privacy_guard.purpose p ON p.name OPERATOR(pg_catalog.=) u.name
				  ORDER BY u.n) AS legal_bases,
		   t.retention, t.retention_column, t.on_expiry, t.on_forget,
		   CASE an.method WHEN 'function' THEN an.fn::text ELSE an.method END AS anonymizer,
		   t.hold_keep, t.hold_purpose,
		   n.approx_rows,
		   tg.purposes AS tag_purposes,
		   ARRAY(SELECT DISTINCT pr.recipient
				   FROM privacy_guard.purpose_recipient pr
				  WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(t.purposes) AS u(name)
								 WHERE u.name OPERATOR(pg_catalog.=) pr.purpose
									OR pg_catalog.starts_with(pr.purpose, u.name OPERATOR(pg_catalog.||) '.')
									OR pg_catalog.starts_with(u.name, pr.purpose OPERATOR(pg_catalog.||) '.'))
				  ORDER BY 1) AS recipients
	  FROM privacy_guard.protected_table t
	  JOIN pg_catalog.pg_attribute a
		ON a.attrelid OPERATOR(pg_catalog.=) t.relid::pg_catalog.oid
	   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
	  LEFT JOIN privacy_guard.anonymizer an
		ON an.relid OPERATOR(pg_catalog.=) t.relid AND an.column_name OPERATOR(pg_catalog.=) a.attname
	  LEFT JOIN tagged tg
		ON tg.protected AND tg.relid OPERATOR(pg_catalog.=) t.relid AND tg.colname OPERATOR(pg_catalog.=) a.attname
	 CROSS JOIN LATERAL (
		SELECT CASE WHEN pg_catalog.count(*) FILTER (WHERE c.reltuples OPERATOR(pg_catalog.>=) 0) OPERATOR(pg_catalog.=) 0
					THEN NULL
					ELSE pg_catalog.sum(c.reltuples::pg_catalog.float8) FILTER (WHERE c.reltuples OPERATOR(pg_catalog.>=) 0)::bigint
			   END AS approx_rows
		  FROM (WITH RECURSIVE tree(relid) AS (
					SELECT t.relid::pg_catalog.oid
					UNION
					SELECT i.inhrelid FROM pg_catalog.pg_inherits i
					  JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid)
				SELECT tree.relid FROM tree) x
		  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) x.relid
		 WHERE c.relkind OPERATOR(pg_catalog.=) 'r') n
	UNION ALL
	SELECT tg.relid, tg.colname,
		   pg_catalog.format_type(a.atttypid, a.atttypmod),
		   'tagged',
		   pg_catalog.col_description(tg.relid::pg_catalog.oid, a.attnum::integer),
		   tg.purposes,
		   ARRAY(SELECT (SELECT p.legal_basis FROM privacy_guard.purpose p
						  WHERE p.name OPERATOR(pg_catalog.=) u.name)
				   FROM pg_catalog.unnest(tg.purposes) WITH ORDINALITY AS u(name, n)
				  ORDER BY u.n),
		   NULL::pg_catalog.interval, NULL::pg_catalog.name, 'anonymize', 'anonymize', 'null',
		   NULL::pg_catalog.interval, NULL::pg_catalog.text,
		   n.approx_rows,
		   tg.purposes,
		   ARRAY(SELECT DISTINCT pr.recipient
				   FROM privacy_guard.purpose_recipient pr
				  WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(tg.purposes) AS u(name)
								 WHERE u.name OPERATOR(pg_catalog.=) pr.purpose
									OR pg_catalog.starts_with(pr.purpose, u.name OPERATOR(pg_catalog.||) '.')
									OR pg_catalog.starts_with(u.name, pr.purpose OPERATOR(pg_catalog.||) '.'))
				  ORDER BY 1)
	  FROM tagged tg
	  JOIN pg_catalog.pg_attribute a
		ON a.attrelid OPERATOR(pg_catalog.=) tg.relid::pg_catalog.oid AND a.attnum OPERATOR(pg_catalog.=) tg.attnum
	  JOIN pg_catalog.pg_class tc ON tc.oid OPERATOR(pg_catalog.=) tg.relid::pg_catalog.oid
	 CROSS JOIN LATERAL (
		SELECT CASE WHEN pg_catalog.count(*) FILTER (WHERE c.reltuples OPERATOR(pg_catalog.>=) 0) OPERATOR(pg_catalog.=) 0
					THEN NULL
					ELSE pg_catalog.sum(c.reltuples::pg_catalog.float8) FILTER (WHERE c.reltuples OPERATOR(pg_catalog.>=) 0)::bigint
			   END AS approx_rows
		  FROM (WITH RECURSIVE tree(relid) AS (
					SELECT tg.relid::pg_catalog.oid
					UNION
					SELECT i.inhrelid FROM pg_catalog.pg_inherits i
					  JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid
												 AND tc.relkind OPERATOR(pg_catalog.=) 'p')
				SELECT tree.relid FROM tree) x
		  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) x.relid
		 WHERE c.relkind OPERATOR(pg_catalog.=) 'r') n
	 WHERE NOT tg.protected;
COMMENT ON VIEW privacy_guard.processing_register IS 'Record of processing (GDPR Art. 30): per protected table and column, and per tagged column outside protected tables: purposes, legal bases, retention, actions, anonymisers, holds, approximate rows, purposes found in tags, recipients their purposes disclose to';

/*
 * The privacy notice names the recipients, in a section of its own before
 * the rights: inserted into whatever notice is installed at this point (the
 * function that writes the rights' heading, in English only or in the
 * notice's language), so the change composes with the notice's other
 * changes of this update.
 */
DO $pvg$
DECLARE
	r record;
	v_def text;
	v_lang text;
	v_anchor text := '(\n\tv_out := v_out \|\| privacy_guard\._notice_markup\(''h2'', f, (''Your choices and rights''|privacy_guard\._notice_words\(''rights_h'', lang\))\))';
BEGIN
	FOR r IN
		SELECT p.oid FROM pg_catalog.pg_proc p
		 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'privacy_guard'::pg_catalog.regnamespace
		   AND p.prosrc OPERATOR(pg_catalog.~) v_anchor
		   AND pg_catalog.strpos(p.prosrc, '_notice_recipients') OPERATOR(pg_catalog.=) 0
	LOOP
		v_def := pg_catalog.pg_get_functiondef(r.oid);
		v_lang := CASE WHEN pg_catalog.strpos(v_def, '_notice_words(''rights_h'', lang)') OPERATOR(pg_catalog.>) 0
					   THEN 'lang' ELSE '''en''' END;
		EXECUTE pg_catalog.regexp_replace(v_def, v_anchor,
			E'\n\t/* recipients and transfers outside the EU/EEA */\n\tv_out := v_out || privacy_guard._notice_recipients(f, v_purposes, '
				|| v_lang || E');\n\\1');
	END LOOP;
END
$pvg$;

CREATE OR REPLACE FUNCTION privacy_guard.subject_report(subject text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET IntervalStyle = iso_8601
AS $$
DECLARE
	v_digest text;
	v_secret bytea;
	t record;
	k record;
	tc record;
	v_tagged jsonb := '[]';
	v_base regtype;
	v_rows jsonb;
	v_keys jsonb;
	v_data jsonb := '[]';
	v_purposes text[] := '{}';
	v_report jsonb;
	v_walk jsonb;
	v_step jsonb;
	v_seen oid[];
	v_match text;
BEGIN
	PERFORM privacy_guard._check_subject(subject);
	v_digest := privacy_guard._subject_digest(subject);
	v_secret := privacy_guard._secret();

	FOR t IN SELECT pt.* FROM privacy_guard.protected_table pt ORDER BY pt.relid::text LOOP
		v_base := privacy_guard._base_type(privacy_guard._column_type(t.relid, t.subject_column, 'subject'));
		CONTINUE WHEN NOT privacy_guard._key_fits(subject, v_base);
		v_rows := privacy_guard._read_as_owner(t.relid,
			format('SELECT pg_catalog.jsonb_agg(s.r ORDER BY s.r) FROM '
				   '(SELECT pg_catalog.to_jsonb(y.*) AS r FROM '
				   '(SELECT %s FROM %s x WHERE %s) y) s',
				   privacy_guard._report_columns(t.relid), t.relid,
				   privacy_guard._subject_cond('x.' || quote_ident(t.subject_column), v_base)),
			subject, v_secret, NULL);
		CONTINUE WHEN v_rows IS NULL;
		v_purposes := v_purposes || t.purposes || t.hold_purpose;
		v_data := v_data || jsonb_build_array(jsonb_build_object(
			'table', t.relid::text, 'found_by', 'subject column', 'subject_column', t.subject_column,
			'purposes', to_jsonb(t.purposes), 'retention', t.retention,
			'retention_column', t.retention_column, 'on_expiry', t.on_expiry,
			'on_forget', t.on_forget,
			'legal_hold', CASE WHEN t.hold_purpose IS NOT NULL
							   THEN jsonb_build_object('keep', t.hold_keep, 'purpose', t.hold_purpose) END,
			'rows', v_rows));

		/*
		 * Tables privacy_guard does not protect that refer to these rows,
		 * and tables that refer to those rows, along chains of foreign keys
		 * up to 5 steps long, each table expanded once: for each step, first
		 * the referenced key values (as the referenced table's owner), then
		 * the referring rows (as their table's owner), compared with the
		 * foreign key's own equality operators.  A step's rows are those of
		 * its table that match the previous step's keys ($3).
		 */
		v_walk := jsonb_build_array(jsonb_build_object(
			'tbl', t.relid::oid, 'depth', 0, 'keys', NULL,
			'pred', privacy_guard._subject_cond('x.' || quote_ident(t.subject_column), v_base)));
		v_seen := ARRAY[t.relid::oid];
		WHILE jsonb_array_length(v_walk) > 0 LOOP
			v_step := v_walk -> 0;
			v_walk := v_walk - 0;
			CONTINUE WHEN (v_step ->> 'depth')::int >= 5;
			FOR k IN
				SELECT c.conname, c.conrelid::regclass AS child, c.confrelid::regclass AS parent,
					   (SELECT string_agg(format('x.%I', a.attname), ', ' ORDER BY u.n)
						  FROM unnest(c.confkey) WITH ORDINALITY AS u(attnum, n)
						  JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = u.attnum) AS pk_list,
					   (SELECT string_agg(format('(e.value OPERATOR(pg_catalog.->>) %s)::%s OPERATOR(%I.%s) x.%I', u.n - 1,
												 pa.atttypid::regtype, opn.nspname, op.oprname, fa.attname),
										  ' AND ' ORDER BY u.n)
						  FROM unnest(c.confkey, c.conkey, c.conpfeqop) WITH ORDINALITY AS u(pk, fk, eqop, n)
						  JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = u.pk
						  JOIN pg_attribute fa ON fa.attrelid = c.conrelid AND fa.attnum = u.fk
						  JOIN pg_operator op ON op.oid = u.eqop
						  JOIN pg_namespace opn ON opn.oid = op.oprnamespace) AS match
				  FROM pg_constraint c
				  JOIN pg_class cc ON cc.oid = c.conrelid
				 WHERE c.contype = 'f' AND c.conparentid = 0
				   AND c.confrelid IN (SELECT x FROM privacy_guard._tree_oids((v_step ->> 'tbl')::oid::regclass) AS x)
				   AND cc.relkind IN ('r', 'p')
				   AND cc.relnamespace <> 'privacy_guard'::regnamespace
				   AND NOT EXISTS (SELECT 1 FROM privacy_guard.protected_part q WHERE q.target = c.conrelid)
				 ORDER BY c.conrelid::regclass::text, c.conname
			LOOP
				v_keys := privacy_guard._read_as_owner(k.parent,
					format('SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(%s)) FROM %s x WHERE %s',
						   k.pk_list, k.parent, v_step ->> 'pred'), subject, NULL, v_step -> 'keys');
				CONTINUE WHEN v_keys IS NULL;
				v_match := format('EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements($3) AS e WHERE %s)', k.match);
				v_rows := privacy_guard._read_as_owner(k.child,
					format('SELECT pg_catalog.jsonb_agg(s.r ORDER BY s.r) FROM '
						   '(SELECT pg_catalog.to_jsonb(y.*) AS r FROM (SELECT %s FROM %s x WHERE %s) y) s',
						   privacy_guard._report_columns(k.child), k.child, v_match),
					subject, v_secret, v_keys);
				CONTINUE WHEN v_rows IS NULL;
				v_data := v_data || jsonb_build_array(jsonb_build_object(
					'table', k.child::text, 'found_by', 'foreign key', 'foreign_key', k.conname,
					'references', ((v_step ->> 'tbl')::oid::regclass)::text, 'protected', false, 'rows', v_rows));
				/* the rows found are about the person too: go on from them, once per table */
				IF NOT k.child::oid = ANY (v_seen) THEN
					v_seen := v_seen || k.child::oid;
					v_walk := v_walk || jsonb_build_array(jsonb_build_object(
						'tbl', k.child::oid, 'depth', (v_step ->> 'depth')::int + 1, 'keys', v_keys,
						'pred', v_match));
				END IF;
			END LOOP;
		END LOOP;
	END LOOP;

	/*
	 * Tagged values anywhere: every tagged column of every table (each
	 * table on its own, partitions included), read as its owner; the
	 * values whose tag names this subject, matched and read with the
	 * digest key.
	 */
	/* tagged values inside composites are erased, not listed (check() says so) */
	FOR tc IN SELECT * FROM privacy_guard._tagged_columns() c WHERE NOT c.nested LOOP
		/* in an array column, each element whose tag names the subject */
		v_rows := privacy_guard._read_as_owner(tc.relid,
			format('SELECT pg_catalog.jsonb_agg(s.r ORDER BY s.r) FROM '
				   '(SELECT pg_catalog.jsonb_build_object(''value'', privacy_guard._tag_report_value(v.v, $1, $2), '
				   '''purposes'', privacy_guard.tag_purposes(v.v), '
				   '''retain_until'', privacy_guard.tag_retain_until(v.v)) AS r '
				   'FROM ONLY %s x CROSS JOIN LATERAL %s AS v(v) WHERE privacy_guard._tag_erasable(v.v, $1, $2)) s',
				   tc.relid,
				   CASE WHEN tc.is_array THEN format('pg_catalog.unnest(x.%I)', tc.colname)
						ELSE format('(SELECT x.%I)', tc.colname) END),
			subject, v_secret, NULL);
		CONTINUE WHEN v_rows IS NULL;
		v_tagged := v_tagged || (
			SELECT jsonb_agg(jsonb_build_object('table', tc.relid::text, 'column', tc.colname) || e.value
							 ORDER BY e.n)
			  FROM jsonb_array_elements(v_rows) WITH ORDINALITY AS e(value, n));
		v_purposes := v_purposes || ARRAY(SELECT jsonb_array_elements_text(e.value -> 'purposes')
											FROM jsonb_array_elements(v_rows) AS e(value));
	END LOOP;

	SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') INTO v_purposes
	  FROM unnest(v_purposes || ARRAY(SELECT c.purpose FROM privacy_guard.consent_state c
									   WHERE c.subject = subject_report.subject)) AS x
	 WHERE x IS NOT NULL;

	v_report := jsonb_build_object(
		'subject', subject,
		'data', v_data,
		'tagged_values', v_tagged,
		'consents', coalesce((
			SELECT jsonb_agg(jsonb_build_object('purpose', c.purpose, 'status', c.status,
					'valid_until', c.valid_until, 'changed_at', c.changed_at,
					'active', c.status = 'granted' AND (c.valid_until IS NULL OR c.valid_until > now()))
					ORDER BY c.purpose)
			  FROM privacy_guard.consent_state c
			 WHERE c.subject = subject_report.subject AND c.status <> 'objected'), '[]'),
		'objections', coalesce((
			SELECT jsonb_agg(jsonb_build_object('purpose', c.purpose, 'objected_at', c.changed_at)
					ORDER BY c.purpose)
			  FROM privacy_guard.consent_state c
			 WHERE c.subject = subject_report.subject AND c.status = 'objected'), '[]'),
		'consent_history', coalesce((
			SELECT jsonb_agg(jsonb_build_object('purpose', l.purpose, 'action', l.action,
					'valid_until', l.valid_until, 'evidence', l.evidence, 'recorded_at', l.recorded_at)
					ORDER BY l.id)
			  FROM privacy_guard.consent_ledger l
			 WHERE l.subject IN (subject_report.subject, v_digest)), '[]'),
		'erasure_requests', coalesce((
			SELECT jsonb_agg(jsonb_build_object('id', r.id, 'state', r.state, 'reason', r.reason,
					'requested_at', r.requested_at, 'due', r.due, 'completed_at', r.completed_at,
					'counts', r.counts, 'unreachable_at', r.unreachable_at)
					ORDER BY r.id)
			  FROM privacy_guard.erasure_request r
			 WHERE r.subject_digest = v_digest), '[]'),
		'purposes', coalesce((
			SELECT jsonb_agg(jsonb_build_object('name', p.name, 'legal_basis', p.legal_basis,
					'description', p.description) ORDER BY p.name)
			  FROM privacy_guard.purpose p WHERE p.name = ANY (v_purposes)), '[]'),
		'generated_at', now());
	/* who received their data (GDPR Art. 15(1)(c)) */
	v_report := v_report || jsonb_build_object('recipients', privacy_guard._report_recipients(v_digest));
	RETURN v_report;
END
$$;
COMMENT ON FUNCTION privacy_guard.subject_report(text) IS 'Everything held about one subject (GDPR Art. 15 and 20), as jsonb';

CREATE OR REPLACE FUNCTION privacy_guard.grant_discloser(role regrole)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	EXECUTE format('GRANT EXECUTE ON FUNCTION
		privacy_guard.disclose(text, text, regclass, name[], text[]) TO %s', role);
END
$$;
COMMENT ON FUNCTION privacy_guard.grant_discloser(regrole) IS 'Let a role hand data to recipients with privacy_guard.disclose() (superusers and administrators)';

CREATE OR REPLACE FUNCTION privacy_guard.grant_deliverer(role regrole)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	EXECUTE format('GRANT EXECUTE ON FUNCTION
		privacy_guard.pending_notices(integer),
		privacy_guard.mark_notice_sent(bigint) TO %s', role);
END
$$;
COMMENT ON FUNCTION privacy_guard.grant_deliverer(regrole) IS 'Let a role deliver the notices to recipients from the outbox (superusers and administrators)';


/* new functions: not executable by PUBLIC, as on a fresh install */
DO $pvg$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN
		SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
		 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'privacy_guard'::regnamespace
		   AND p.proname OPERATOR(pg_catalog.=) ANY (ARRAY['_check_recipient', '_disclosure_query',
				'_erasure_notices', '_holds_subject', '_in_eea', '_notice_recipients', '_notify_recipients',
				'_purpose_recipients', '_record_disclosure', '_report_recipients', 'define_recipient',
				'disclose', 'disclose_to', 'drop_recipient', 'investigate', 'mark_notice_sent',
				'pending_notices', 'undisclose', 'grant_discloser', 'grant_deliverer'])
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
	END LOOP;
END
$pvg$;
GRANT SELECT ON privacy_guard.recipients TO PUBLIC;
GRANT EXECUTE ON FUNCTION privacy_guard._in_eea(text) TO PUBLIC;

/*
 * grant_admin() hands on the recipients, investigate() and the records:
 * inserted into whatever grant_admin() is installed at this point, so the
 * change composes with the other changes of this update.  Roles that are
 * administrators already (they hold define_purpose) get the new functions
 * and views now.
 */
DO $pvg$
DECLARE
	v_def text := pg_catalog.pg_get_functiondef('privacy_guard.grant_admin(regrole)'::pg_catalog.regprocedure);
	r record;
BEGIN
	IF pg_catalog.strpos(v_def, 'define_recipient') OPERATOR(pg_catalog.=) 0 THEN
		v_def := pg_catalog.replace(v_def, E'privacy_guard.grant_recorder(regrole) TO %s''',
			E'privacy_guard.grant_recorder(regrole),\n'
			OPERATOR(pg_catalog.||) E'\t\tprivacy_guard.define_recipient(text, text, text, text, text),\n'
			OPERATOR(pg_catalog.||) E'\t\tprivacy_guard.drop_recipient(text),\n'
			OPERATOR(pg_catalog.||) E'\t\tprivacy_guard.disclose_to(text, text),\n'
			OPERATOR(pg_catalog.||) E'\t\tprivacy_guard.undisclose(text, text),\n'
			OPERATOR(pg_catalog.||) E'\t\tprivacy_guard.investigate(text, timestamptz, timestamptz),\n'
			OPERATOR(pg_catalog.||) E'\t\tprivacy_guard.grant_discloser(regrole),\n'
			OPERATOR(pg_catalog.||) E'\t\tprivacy_guard.grant_deliverer(regrole) TO %s''');
		v_def := pg_catalog.regexp_replace(v_def, 'privacy_guard\.round_history( TO|,)',
			E'privacy_guard.round_history,\n\t\tprivacy_guard.disclosures, privacy_guard.recipient_notices\\1');
		EXECUTE v_def;
	END IF;
	FOR r IN
		SELECT DISTINCT a.grantee::pg_catalog.regrole AS role
		  FROM pg_catalog.pg_proc p, LATERAL pg_catalog.aclexplode(p.proacl) a
		 WHERE p.oid OPERATOR(pg_catalog.=) 'privacy_guard.define_purpose(text, text, text)'::pg_catalog.regprocedure
		   AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
		   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner AND a.grantee OPERATOR(pg_catalog.<>) 0
	LOOP
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION
			privacy_guard.define_recipient(text, text, text, text, text),
			privacy_guard.drop_recipient(text),
			privacy_guard.disclose_to(text, text),
			privacy_guard.undisclose(text, text),
			privacy_guard.investigate(text, timestamptz, timestamptz),
			privacy_guard.grant_discloser(regrole),
			privacy_guard.grant_deliverer(regrole) TO %s', r.role);
		EXECUTE pg_catalog.format('GRANT SELECT ON privacy_guard.disclosures, privacy_guard.recipient_notices TO %s', r.role);
	END LOOP;
END
$pvg$;
