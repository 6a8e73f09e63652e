/* ------------------------------------------------------------------ */
/* Consent                                                              */
/* ------------------------------------------------------------------ */

CREATE FUNCTION privacy_guard._check_subject(subject text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF subject IS NULL OR subject = '' THEN
		RAISE EXCEPTION 'subject must not be null or empty' USING ERRCODE = '22023';
	END IF;
	IF octet_length(subject) > 1024 THEN
		RAISE EXCEPTION 'subject key is longer than 1024 bytes' USING ERRCODE = '54000';
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._check_subject(text) IS 'Internal: validate a subject key without echoing it';

/* One entry in the ledger and the new current state: both or neither. */
CREATE FUNCTION privacy_guard._record_consent(p_subject text, p_purpose text, p_status text,
											  p_valid_until timestamptz, p_evidence jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO privacy_guard.consent_ledger (subject, purpose, action, valid_until, evidence)
	VALUES (p_subject, p_purpose,
			CASE p_status WHEN 'granted' THEN 'grant' WHEN 'withdrawn' THEN 'withdraw' ELSE 'object' END,
			p_valid_until, p_evidence);
	INSERT INTO privacy_guard.consent_state AS c (subject, purpose, status, valid_until)
	VALUES (p_subject, p_purpose, p_status, p_valid_until)
	ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE
		SET status = excluded.status, valid_until = excluded.valid_until, changed_at = now();
END
$$;
COMMENT ON FUNCTION privacy_guard._record_consent(text, text, text, timestamptz, jsonb) IS 'Internal: append to the consent ledger and set the current state';

/* A purpose and its ancestors, nearest first. */
CREATE FUNCTION privacy_guard._purpose_chain(purpose text)
RETURNS SETOF text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE chain(name) AS (
		SELECT $1
		UNION ALL
		SELECT p.parent FROM privacy_guard.purpose p JOIN chain ON p.name = chain.name
		 WHERE p.parent IS NOT NULL)
	SELECT chain.name FROM chain
$$;
COMMENT ON FUNCTION privacy_guard._purpose_chain(text) IS 'Internal: a purpose and its ancestors';

/*
 * The purposes whose authorisation lets a role use this one: itself and
 * its ancestors up to the first of another legal basis (pvg_purpose_authorised).
 */
CREATE FUNCTION privacy_guard._authorising_purposes(purpose text)
RETURNS SETOF text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE chain(name, basis) AS (
		SELECT p.name, p.legal_basis FROM privacy_guard.purpose p WHERE p.name = $1
		UNION ALL
		SELECT q.name, q.legal_basis
		  FROM chain
		  JOIN privacy_guard.purpose p ON p.name = chain.name
		  JOIN privacy_guard.purpose q ON q.name = p.parent
		 WHERE q.legal_basis = chain.basis)
	SELECT chain.name FROM chain
$$;
COMMENT ON FUNCTION privacy_guard._authorising_purposes(text) IS 'Internal: the purposes whose authorisation reaches this one (itself, and ancestors of the same legal basis)';

CREATE FUNCTION privacy_guard.grant_consent(subject text, purpose text,
											valid_until timestamptz DEFAULT NULL,
											evidence jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_basis text;
BEGIN
	PERFORM privacy_guard._check_subject(subject);
	v_basis := privacy_guard._check_purpose(purpose);
	IF v_basis <> 'consent' THEN
		RAISE EXCEPTION 'purpose "%" rests on %, not on consent', purpose, v_basis
			USING ERRCODE = '22023';
	END IF;
	IF valid_until IS NOT NULL AND valid_until <= now() THEN
		RAISE EXCEPTION 'valid_until must lie in the future' USING ERRCODE = '22023';
	END IF;
	PERFORM privacy_guard._record_consent(subject, purpose, 'granted', valid_until, evidence);
END
$$;
COMMENT ON FUNCTION privacy_guard.grant_consent(text, text, timestamptz, jsonb) IS 'Record a subject''s consent to a purpose';

CREATE FUNCTION privacy_guard.withdraw_consent(subject text, purpose text)
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

CREATE FUNCTION privacy_guard.object_to(subject text, purpose text)
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

CREATE FUNCTION privacy_guard.has_consent(subject text, purpose text)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_basis text;
BEGIN
	IF subject IS NULL OR purpose IS NULL THEN
		RETURN NULL;
	END IF;
	v_basis := privacy_guard._check_purpose(purpose);
	IF v_basis = 'consent' THEN
		RETURN EXISTS (
			SELECT 1 FROM privacy_guard.consent_state c
			 WHERE c.subject = has_consent.subject
			   AND c.purpose IN (SELECT privacy_guard._purpose_chain(has_consent.purpose))
			   AND c.status = 'granted'
			   AND (c.valid_until IS NULL OR c.valid_until > now()));
	ELSIF v_basis IN ('legitimate_interests', 'public_task') THEN
		RETURN NOT EXISTS (
			SELECT 1 FROM privacy_guard.consent_state c
			 WHERE c.subject = has_consent.subject
			   AND c.purpose IN (SELECT privacy_guard._purpose_chain(has_consent.purpose))
			   AND c.status = 'objected');
	END IF;
	RETURN true;
END
$$;
COMMENT ON FUNCTION privacy_guard.has_consent(text, text) IS 'Whether consent/objection rules let this subject''s data be used for the purpose';

CREATE VIEW privacy_guard.consents AS
	SELECT c.subject, c.purpose, c.status, c.valid_until, c.changed_at,
		   (c.status OPERATOR(pg_catalog.=) 'granted'
			AND (c.valid_until IS NULL OR c.valid_until OPERATOR(pg_catalog.>) pg_catalog.now())) AS active
	  FROM privacy_guard.consent_state c;
COMMENT ON VIEW privacy_guard.consents IS 'Current consent and objection state per subject and purpose';

/*
 * The ledger only grows: history is evidence.  Only an erased subject's
 * history, kept under the digest, goes: with its receipt, past
 * privacy_guard.log_retention (_close_receipts).
 */
CREATE FUNCTION privacy_guard._ledger_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* the history kept under a digest, dropped with its receipt past log retention (_close_receipts) */
	IF TG_OP = 'DELETE' AND privacy_guard._guard_suspended() THEN
		RETURN OLD;
	END IF;
	/* the one change allowed: an erased subject's key replaced by its digest */
	IF TG_OP = 'UPDATE'
	   AND NEW.subject = privacy_guard._subject_digest(OLD.subject)
	   AND (NEW.id, NEW.purpose, NEW.action, NEW.valid_until, NEW.evidence, NEW.recorded_at,
			NEW.recorded_by)
		   IS NOT DISTINCT FROM
		   (OLD.id, OLD.purpose, OLD.action, OLD.valid_until, OLD.evidence, OLD.recorded_at,
			OLD.recorded_by) THEN
		RETURN NEW;
	END IF;
	RAISE EXCEPTION 'privacy_guard.consent_ledger is append-only'
		USING ERRCODE = '55000';
END
$$;
COMMENT ON FUNCTION privacy_guard._ledger_append_only() IS 'Internal: refuse changes to the consent ledger';

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON privacy_guard.consent_ledger
	FOR EACH ROW EXECUTE FUNCTION privacy_guard._ledger_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON privacy_guard.consent_ledger
	FOR EACH STATEMENT EXECUTE FUNCTION privacy_guard._ledger_append_only();

