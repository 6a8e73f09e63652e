/* ------------------------------------------------------------------ */
/* Privileges: what every role, administrators and recorders may call  */
/* ------------------------------------------------------------------ */

/*
 * Each feature file creates its functions; this last file takes EXECUTE
 * from PUBLIC on all of them at once, then gives back what every role may
 * call.  A GRANT in a feature file would be undone here, so they are all
 * below.
 */
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA privacy_guard FROM PUBLIC;

/* what applications read with */
GRANT EXECUTE ON FUNCTION privacy_guard.has_consent(text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION privacy_guard.row_visible(regclass, anyelement) TO PUBLIC;
GRANT EXECUTE ON FUNCTION privacy_guard.row_visible(regclass, anyelement, timestamptz) TO PUBLIC;
GRANT EXECUTE ON FUNCTION privacy_guard.row_visible(regclass, anyelement, timestamp) TO PUBLIC;
GRANT EXECUTE ON FUNCTION privacy_guard.row_visible(regclass, anyelement, date) TO PUBLIC;
GRANT EXECUTE ON FUNCTION privacy_guard.write_allowed(regclass) TO PUBLIC;
/* anonymizing statements run as the table owner; the key is their parameter */
GRANT EXECUTE ON FUNCTION privacy_guard._hmac(bytea, text) TO PUBLIC;
/* ... and so does what fails them when a custom anonymizer cannot be used */
GRANT EXECUTE ON FUNCTION privacy_guard._anonymizer_unusable(text, anyelement) TO PUBLIC;
GRANT SELECT ON privacy_guard.purposes, privacy_guard.protected_tables TO PUBLIC;
/* the recipients are named in the privacy notice, which everyone may generate */
GRANT SELECT ON privacy_guard.recipients TO PUBLIC;
GRANT EXECUTE ON FUNCTION privacy_guard._in_eea(text) TO PUBLIC;

CREATE FUNCTION privacy_guard.grant_admin(role regrole)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	EXECUTE format('GRANT EXECUTE ON FUNCTION
		privacy_guard.define_purpose(text, text, text),
		privacy_guard.set_purpose_description(text, text, text),
		privacy_guard.drop_purpose(text),
		privacy_guard.allow_purpose(regrole, text),
		privacy_guard.disallow_purpose(regrole, text),
		privacy_guard.protect(regclass, name, text[], interval, name, text, text),
		privacy_guard.unprotect(regclass),
		privacy_guard.set_anonymizer(regclass, name, text),
		privacy_guard.set_legal_hold(regclass, interval, text),
		privacy_guard.run_maintenance(regclass),
		privacy_guard.erasure_status(text),
		privacy_guard.subject_report(text),
		privacy_guard.check(),
		privacy_guard.access_history(text, timestamptz),
		privacy_guard.launcher_status(),
		privacy_guard._tagged_column_purposes(),
		privacy_guard.grant_recorder(regrole),
		privacy_guard.define_recipient(text, text, text, text, text),
		privacy_guard.drop_recipient(text),
		privacy_guard.disclose_to(text, text),
		privacy_guard.undisclose(text, text),
		privacy_guard.investigate(text, timestamptz, timestamptz),
		privacy_guard.grant_discloser(regrole),
		privacy_guard.grant_deliverer(regrole) TO %s', role);
	EXECUTE format('GRANT SELECT ON privacy_guard.consents, privacy_guard.consent_ledger,
		privacy_guard.erasure_requests, privacy_guard.purpose_roles, privacy_guard.worker_status,
		privacy_guard.processing_register, privacy_guard.access_log, privacy_guard.round_history,
		privacy_guard.disclosures, privacy_guard.recipient_notices,
		privacy_guard.purpose_description TO %s', role);
END
$$;
COMMENT ON FUNCTION privacy_guard.grant_admin(regrole) IS 'Hand the administration level to a role (superusers only)';

CREATE FUNCTION privacy_guard.grant_recorder(role regrole)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	EXECUTE format('GRANT EXECUTE ON FUNCTION
		privacy_guard.grant_consent(text, text, timestamptz, jsonb),
		privacy_guard.import_consents(text[], text[], timestamptz[], jsonb[]),
		privacy_guard.import_consents(regclass),
		privacy_guard.withdraw_consent(text, text),
		privacy_guard.object_to(text, text),
		privacy_guard.forget(text, text, timestamptz),
		privacy_guard.erasure_status(text) TO %s', role);
END
$$;
COMMENT ON FUNCTION privacy_guard.grant_recorder(regrole) IS 'Hand the recording level (consent, objections, forget requests) to a role (superusers and administrators)';

/* disclosing: disclose() records what it hands out (see disclose.c) */
CREATE FUNCTION privacy_guard.grant_discloser(role regrole)
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

/* delivering the notices to recipients from the outbox */
CREATE FUNCTION privacy_guard.grant_deliverer(role regrole)
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

REVOKE ALL ON FUNCTION privacy_guard.grant_admin(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy_guard.grant_discloser(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy_guard.grant_deliverer(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy_guard.grant_recorder(regrole) FROM PUBLIC;

/*
 * The privacy notice is what the company publishes on its website, and
 * says nothing that is not already readable by every role (the purposes,
 * protected_tables, and the catalogs' table and column names and
 * comments): everyone may generate it.  The processing register adds
 * anonymizers and row counts and is for administrators (grant_admin).
 */
GRANT EXECUTE ON FUNCTION privacy_guard.privacy_notice(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION privacy_guard.privacy_notice(text, text) TO PUBLIC;
/* consent-tagged types: the read side and the types' own functions are for everyone */
GRANT EXECUTE ON FUNCTION
	privacy_guard.tag(text, text[], text, timestamptz),
	privacy_guard.tag(date, text[], text, timestamptz),
	privacy_guard.tag(numeric, text[], text, timestamptz),
	privacy_guard.tag(jsonb, text[], text, timestamptz),
	privacy_guard.reveal(privacy_guard.tagged_text),
	privacy_guard.reveal(privacy_guard.tagged_date),
	privacy_guard.reveal(privacy_guard.tagged_numeric),
	privacy_guard.reveal(privacy_guard.tagged_jsonb),
	privacy_guard.tag_purposes(privacy_guard.tagged_text),
	privacy_guard.tag_purposes(privacy_guard.tagged_date),
	privacy_guard.tag_purposes(privacy_guard.tagged_numeric),
	privacy_guard.tag_purposes(privacy_guard.tagged_jsonb),
	privacy_guard.tag_retain_until(privacy_guard.tagged_text),
	privacy_guard.tag_retain_until(privacy_guard.tagged_date),
	privacy_guard.tag_retain_until(privacy_guard.tagged_numeric),
	privacy_guard.tag_retain_until(privacy_guard.tagged_jsonb),
	privacy_guard.length(privacy_guard.tagged_text),
	/* the erasure's UPDATE runs as the table owner; the digest key is its parameter */
	privacy_guard._tag_erasable(privacy_guard.tagged_text, text, bytea),
	privacy_guard._tag_erasable(privacy_guard.tagged_date, text, bytea),
	privacy_guard._tag_erasable(privacy_guard.tagged_numeric, text, bytea),
	privacy_guard._tag_erasable(privacy_guard.tagged_jsonb, text, bytea),
	privacy_guard._tags_erasable(anyarray, text, bytea),
	privacy_guard._tags_erase(anyarray, text, bytea),
	privacy_guard._tags_expired(anyarray, timestamptz),
	privacy_guard._tags_expire(anyarray, timestamptz),
	privacy_guard._tags_erasable_in(anyelement, text, bytea),
	privacy_guard._tags_erase_in(anyelement, text, bytea),
	privacy_guard._tags_expired_in(anyelement, timestamptz),
	privacy_guard._tags_expire_in(anyelement, timestamptz),
	/* subject_report reads as the table owner; the digest key is its parameter */
	privacy_guard._tag_report_value(privacy_guard.tagged_text, text, bytea),
	privacy_guard._tag_report_value(privacy_guard.tagged_date, text, bytea),
	privacy_guard._tag_report_value(privacy_guard.tagged_numeric, text, bytea),
	privacy_guard._tag_report_value(privacy_guard.tagged_jsonb, text, bytea),
	/* a partition created by the table's owner gets a clone of the default-tag trigger */
	privacy_guard._tag_default()
TO PUBLIC;
DO $pvg$
DECLARE
	f regprocedure;
BEGIN
	/* the types' I/O, cast and operator functions */
	FOR f IN
		SELECT p.oid::regprocedure FROM pg_proc p
		 WHERE p.pronamespace = 'privacy_guard'::regnamespace
		   AND (EXISTS (SELECT 1 FROM pg_type t
						 WHERE p.oid IN (t.typinput, t.typoutput, t.typreceive, t.typsend, t.typanalyze))
				OR EXISTS (SELECT 1 FROM pg_operator o WHERE o.oprcode = p.oid)
				OR EXISTS (SELECT 1 FROM pg_cast k WHERE k.castfunc = p.oid))
	LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f);
	END LOOP;
END
$pvg$;
/* a reading view is what its creator could write by hand, read as its reader */
GRANT EXECUTE ON FUNCTION privacy_guard.create_reading_view(regclass, text) TO PUBLIC;
