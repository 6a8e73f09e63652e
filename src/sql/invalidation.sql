/* ------------------------------------------------------------------ */
/* Cache invalidation: every session sees a change at its next statement */
/* ------------------------------------------------------------------ */

CREATE FUNCTION privacy_guard._invalidate_cache()
RETURNS trigger
AS 'MODULE_PATHNAME', 'pvg_invalidate_cache'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._invalidate_cache() IS 'Internal: tell every session that a registry changed';

CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON privacy_guard.purpose FOR EACH STATEMENT EXECUTE FUNCTION privacy_guard._invalidate_cache();
CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON privacy_guard.purpose_role FOR EACH STATEMENT EXECUTE FUNCTION privacy_guard._invalidate_cache();
CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON privacy_guard.protected_table FOR EACH STATEMENT EXECUTE FUNCTION privacy_guard._invalidate_cache();
CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON privacy_guard.consent_state FOR EACH STATEMENT EXECUTE FUNCTION privacy_guard._invalidate_cache();
CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON privacy_guard.erasure_request FOR EACH STATEMENT EXECUTE FUNCTION privacy_guard._invalidate_cache();

/*
 * Sessions catch up by the transaction that last wrote a row
 * (consent_cache.c): every insert is stamped, whatever xid it brings (a
 * COPY from a dump would bring the source cluster's), and every update.
 * The engine stamps its own updates of requests (saving the trigger's call
 * in every round).  The triggers fire under session_replication_role =
 * replica too, so rows applied by logical replication are seen.
 */
CREATE FUNCTION privacy_guard._stamp_changed_xid()
RETURNS trigger
AS 'MODULE_PATHNAME', 'pvg_stamp_changed_xid'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._stamp_changed_xid() IS 'Internal: record which transaction last wrote a row';
CREATE TRIGGER stamp_changed_xid BEFORE INSERT OR UPDATE ON privacy_guard.consent_state
	FOR EACH ROW EXECUTE FUNCTION privacy_guard._stamp_changed_xid();
CREATE TRIGGER stamp_changed_xid BEFORE UPDATE ON privacy_guard.erasure_request
	FOR EACH ROW WHEN (NEW.changed_xid IS NOT DISTINCT FROM OLD.changed_xid)
	EXECUTE FUNCTION privacy_guard._stamp_changed_xid();
CREATE TRIGGER stamp_changed_xid_insert BEFORE INSERT ON privacy_guard.erasure_request
	FOR EACH ROW EXECUTE FUNCTION privacy_guard._stamp_changed_xid();

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

ALTER TABLE privacy_guard.consent_state ENABLE ALWAYS TRIGGER stamp_changed_xid;
ALTER TABLE privacy_guard.consent_state ENABLE ALWAYS TRIGGER invalidate_cache;
ALTER TABLE privacy_guard.erasure_request ENABLE ALWAYS TRIGGER stamp_changed_xid;
ALTER TABLE privacy_guard.erasure_request ENABLE ALWAYS TRIGGER stamp_changed_xid_insert;
ALTER TABLE privacy_guard.erasure_request ENABLE ALWAYS TRIGGER invalidate_cache;
ALTER TABLE privacy_guard.consent_state ENABLE ALWAYS TRIGGER note_removed_subject;
ALTER TABLE privacy_guard.consent_state ENABLE ALWAYS TRIGGER note_changed_subject;
ALTER TABLE privacy_guard.erasure_request ENABLE ALWAYS TRIGGER note_removed_subject;
ALTER TABLE privacy_guard.erasure_request ENABLE ALWAYS TRIGGER note_changed_subject;

