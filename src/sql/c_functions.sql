/* ------------------------------------------------------------------ */
/* C entry points                                                       */
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

CREATE FUNCTION privacy_guard._invalidate_cache()
RETURNS trigger
AS 'MODULE_PATHNAME', 'pvg_invalidate_cache'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._invalidate_cache() IS 'Internal: tell every session that a registry changed';

/*
 * The row check of a protected table's policy.  The table is passed as a
 * constant; the subject column in its own type; the retention column, when
 * the table has a retention rule, in one of the three date/time types.
 * PARALLEL SAFE: a parallel worker cannot take a new snapshot, so it checks
 * rows with the view of the consents its leader took and shared before the
 * query started (parallel.c); without the library preloaded, statements on
 * protected tables are planned serial.
 */
CREATE FUNCTION privacy_guard.row_visible(regclass, anyelement)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_row_visible'
LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION privacy_guard.row_visible(regclass, anyelement, timestamptz)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_row_visible'
LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION privacy_guard.row_visible(regclass, anyelement, timestamp)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_row_visible'
LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION privacy_guard.row_visible(regclass, anyelement, date)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_row_visible'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard.row_visible(regclass, anyelement) IS 'Policy check: rules 1-7 for a row without retention';
COMMENT ON FUNCTION privacy_guard.row_visible(regclass, anyelement, timestamptz) IS 'Policy check: rules 1-7 for a row with a timestamptz retention column';
COMMENT ON FUNCTION privacy_guard.row_visible(regclass, anyelement, timestamp) IS 'Policy check: rules 1-7 for a row with a timestamp retention column';
COMMENT ON FUNCTION privacy_guard.row_visible(regclass, anyelement, date) IS 'Policy check: rules 1-7 for a row with a date retention column';

CREATE FUNCTION privacy_guard.write_allowed(regclass)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_write_allowed'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION privacy_guard.write_allowed(regclass) IS 'Policy check for written rows: rules 1-4';

/*
 * The permissive half of a protected table's policies is the constant
 * 'true'::privacy_guard.base_policy.  The planner folds it away (no cost per
 * row or per plan), yet the policy depends on the extension through the
 * type: DROP EXTENSION ... CASCADE removes it, and the table fails closed.
 */
CREATE DOMAIN privacy_guard.base_policy AS boolean;
COMMENT ON DOMAIN privacy_guard.base_policy IS 'The permissive base policy of a table without row-level security of its own';

CREATE FUNCTION privacy_guard._calling_role()
RETURNS regrole
AS 'MODULE_PATHNAME', 'pvg_calling_role'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._calling_role() IS 'Internal: the role the session acts as (SET ROLE), even inside SECURITY DEFINER functions';

CREATE FUNCTION privacy_guard._preloaded()
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_preloaded'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._preloaded() IS 'Internal: whether the library was loaded at server start (shared_preload_libraries), so the background worker runs';

CREATE FUNCTION privacy_guard._store_status()
RETURNS text
AS 'MODULE_PATHNAME', 'pvg_store_status'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._store_status() IS 'Internal: where connections read the consent store from: "shared" (preloaded), "shared, full" (some sets did not fit privacy_guard.shared_store_size) or "local: <why>"';

CREATE FUNCTION privacy_guard._store_stats(OUT images bigint, OUT bytes bigint, OUT builds bigint, OUT refused bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'pvg_store_stats'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._store_stats() IS 'Internal: the shared consent store''s images now published, their bytes, the builds since server start and the images that did not fit privacy_guard.shared_store_size';

/* Subjects no row names any more, for readers of the shared consent store (privacy_guard.c). */
CREATE FUNCTION privacy_guard._note_removed_subject()
RETURNS trigger
AS 'MODULE_PATHNAME', 'pvg_note_removed_subject'
LANGUAGE C;
COMMENT ON FUNCTION privacy_guard._note_removed_subject() IS 'Internal: record the subject of a deleted consent row or of a forget request that lost its subject, so sessions re-read it';
CREATE TRIGGER note_removed_subject AFTER DELETE ON privacy_guard.consent_state
	FOR EACH ROW EXECUTE FUNCTION privacy_guard._note_removed_subject();
CREATE TRIGGER note_changed_subject AFTER UPDATE ON privacy_guard.consent_state
	FOR EACH ROW WHEN (NEW.subject IS DISTINCT FROM OLD.subject)
	EXECUTE FUNCTION privacy_guard._note_removed_subject();
CREATE TRIGGER note_removed_subject AFTER DELETE ON privacy_guard.erasure_request
	FOR EACH ROW WHEN (OLD.subject IS NOT NULL)
	EXECUTE FUNCTION privacy_guard._note_removed_subject();
CREATE TRIGGER note_changed_subject AFTER UPDATE ON privacy_guard.erasure_request
	FOR EACH ROW WHEN (OLD.subject IS NOT NULL AND NEW.subject IS DISTINCT FROM OLD.subject)
	EXECUTE FUNCTION privacy_guard._note_removed_subject();

CREATE FUNCTION privacy_guard._check_table_owner(tbl regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_caller regrole := privacy_guard._calling_role();
BEGIN
	IF NOT pg_has_role(v_caller, (SELECT c.relowner FROM pg_class c WHERE c.oid = tbl), 'USAGE') THEN
		RAISE EXCEPTION 'must be owner of table % to change its protection', tbl
			USING ERRCODE = '42501';
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._check_table_owner(regclass) IS 'Internal: the calling role must own the table (as ALTER TABLE requires)';

CREATE FUNCTION privacy_guard._guard_suspend(boolean)
RETURNS void
AS 'MODULE_PATHNAME', 'pvg_guard_suspend'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._guard_suspend(boolean) IS 'Internal: let privacy_guard''s own functions change protected tables'' policies, or drop consent history past log retention';

CREATE FUNCTION privacy_guard._guard_suspended()
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_guard_suspended'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._guard_suspended() IS 'Internal: whether privacy_guard itself is changing policies';

