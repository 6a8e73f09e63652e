/* ------------------------------------------------------------------ */
/* Recipients, disclosures and notices to recipients                    */
/* ------------------------------------------------------------------ */

/*
 * A recipient is whoever the company hands personal data to: a processor
 * working on its behalf, a third party, or a joint controller.  Purposes
 * disclose to recipients (purpose_recipient); disclose() is the one way
 * through privacy_guard to hand them rows, and records per subject, by
 * digest, what went to whom (disclosure, disclosure_subject).  When a
 * subject's data is erased, restricted under a legal hold, or their
 * consent to (or no objection against) a disclosing purpose ends, every
 * recipient that received their data gets a notice in the outbox
 * (recipient_notice), which an application delivers and marks as sent.
 */
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

