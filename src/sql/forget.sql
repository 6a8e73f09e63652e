/* ------------------------------------------------------------------ */
/* Forgetting                                                           */
/* ------------------------------------------------------------------ */

CREATE FUNCTION privacy_guard._random_bytes(integer)
RETURNS bytea
AS 'MODULE_PATHNAME', 'pvg_random_bytes'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._random_bytes(integer) IS 'Internal: cryptographically strong random bytes';

CREATE FUNCTION privacy_guard._hmac(bytea, text)
RETURNS text
AS 'MODULE_PATHNAME', 'pvg_hmac'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._hmac(bytea, text) IS 'Internal: hex HMAC-SHA-256 of a text under a key';

/*
 * The digest key is made on first use, not here: a restore must be able to
 * bring back the original key (pg_dump carries it), or digests in receipts
 * would no longer match.
 */

CREATE FUNCTION privacy_guard._subject_digest(subject text)
RETURNS text
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_key bytea;
BEGIN
	SELECT s.key INTO v_key FROM privacy_guard.secret s;
	IF v_key IS NULL THEN
		INSERT INTO privacy_guard.secret (key) VALUES (privacy_guard._random_bytes(32))
		ON CONFLICT DO NOTHING;
		SELECT s.key INTO v_key FROM privacy_guard.secret s;
	END IF;
	RETURN privacy_guard._hmac(v_key, $1);
END
$$;
COMMENT ON FUNCTION privacy_guard._subject_digest(text) IS 'Internal: keyed digest of a subject key';

/*
 * The base types of protected subject columns (other than text and
 * varchar, which hold any key as it is) of which the key spells a value
 * other than as the column shows it: ' 42', '+42', '042' for integers; an
 * upper-case, brace-wrapped or unhyphenated uuid.  The rules, the erasure
 * and the receipts know a subject by the column's text form, so a request
 * for such a key hides and erases nothing in those columns.
 */
CREATE FUNCTION privacy_guard._key_misspellings(subject text)
RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_type regtype;
	v_canon text;
	v_misspelt text[] := '{}';
BEGIN
	/* each subject column by an index probe: as a join, all of pg_attribute was read on every call */
	FOR v_type IN
		SELECT DISTINCT privacy_guard._base_type(s.typ)
		  FROM (SELECT (SELECT a.atttypid FROM pg_attribute a
						 WHERE a.attrelid = p.relid AND a.attname = p.subject_column
						   AND NOT a.attisdropped) AS typ
				  FROM privacy_guard.protected_table p) s
		 WHERE s.typ IS NOT NULL
	LOOP
		CONTINUE WHEN v_type IN ('text'::regtype, 'varchar'::regtype);
		BEGIN
			EXECUTE format('SELECT ($1::%s)::text', v_type) INTO v_canon USING subject;
		EXCEPTION WHEN data_exception THEN
			CONTINUE;	/* no value of this type: not meant for these columns */
		END;
		IF v_canon <> subject THEN
			v_misspelt := v_misspelt || v_type::text;
		END IF;
	END LOOP;
	RETURN v_misspelt;
END
$$;
COMMENT ON FUNCTION privacy_guard._key_misspellings(text) IS 'Internal: the subject column types of which a key spells a value non-canonically';

/*
 * forget() refuses a misspelt key (above) when no protected subject column
 * could hold it as it is (a text or varchar one could: '042' may be a text
 * key); else a round that finds nothing of it leaves it blocked (see
 * _erase_subject), never done.  Neither the key nor its canonical form is
 * named in the error.
 */
CREATE FUNCTION privacy_guard._check_key_form(subject text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_misspelt text[];
BEGIN
	/* each subject column by an index probe, as in _key_misspellings */
	IF EXISTS (SELECT 1
				 FROM (SELECT (SELECT a.atttypid FROM pg_attribute a
								WHERE a.attrelid = p.relid AND a.attname = p.subject_column
								  AND NOT a.attisdropped) AS typ
						 FROM privacy_guard.protected_table p) s
				WHERE privacy_guard._base_type(s.typ) IN ('text'::regtype, 'varchar'::regtype)) THEN
		RETURN;
	END IF;
	v_misspelt := privacy_guard._key_misspellings(subject);
	IF cardinality(v_misspelt) > 0 THEN
		RAISE EXCEPTION 'subject key is not written the way the subject columns hold it'
			USING ERRCODE = '22023',
				  DETAIL = format('The key is another spelling of a %s value; subjects are known by the column''s text form, so a request for it would find nothing.',
								  array_to_string(v_misspelt, ' or ')),
				  HINT = 'Write integers without sign, leading zeros or spaces, and uuids in lower case with hyphens and without braces.';
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._check_key_form(text) IS 'Internal: refuse a key that spells a subject column''s value non-canonically and that no subject column could hold as it is';

CREATE FUNCTION privacy_guard.forget(subject text, reason text DEFAULT NULL,
									 due timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_id bigint;
BEGIN
	PERFORM privacy_guard._check_subject(subject);
	PERFORM privacy_guard._check_key_form(subject);
	IF due IS NULL THEN
		RAISE EXCEPTION 'due must not be null' USING ERRCODE = '22004';
	END IF;
	INSERT INTO privacy_guard.erasure_request (subject, subject_digest, reason, due)
	VALUES (forget.subject, privacy_guard._subject_digest(forget.subject), forget.reason, forget.due)
	RETURNING id INTO v_id;
	RETURN v_id;
END
$$;
COMMENT ON FUNCTION privacy_guard.forget(text, text, timestamptz) IS 'File an erasure request; the subject''s data is hidden from its due time';

CREATE FUNCTION privacy_guard.erasure_status(subject text)
RETURNS text
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_digest text := privacy_guard._subject_digest($1);
BEGIN
	RETURN (SELECT r.state FROM privacy_guard.erasure_request r
			 WHERE r.subject_digest = v_digest
			 ORDER BY r.id DESC LIMIT 1);
END
$$;
COMMENT ON FUNCTION privacy_guard.erasure_status(text) IS 'State of the subject''s latest erasure request, or NULL';

CREATE VIEW privacy_guard.erasure_requests AS
	SELECT r.id, r.subject_digest, r.reason, r.requested_at, r.due, r.completed_at, r.state,
		   r.counts, r.error, r.unreachable_at, r.recipients_notified
	  FROM privacy_guard.erasure_request r;
COMMENT ON VIEW privacy_guard.erasure_requests IS 'Erasure requests and receipts; subjects appear only as keyed digests';

