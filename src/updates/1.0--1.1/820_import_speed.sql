
/* Bulk consent import: the rows written a page at a time, as COPY writes them (import.c). */
/*
 * The rows of a checked import written as COPY writes them, from the
 * arrays a page at a time (import.c); false, having written nothing, when
 * a table does not have the layout import.c knows.  They fire no trigger:
 * used only by _import_write_untriggered.
 */
CREATE FUNCTION privacy_guard._import_insert_state(p_subjects text[], p_purposes text[],
												   p_valid_until timestamptz[])
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_import_insert_state'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._import_insert_state(text[], text[], timestamptz[]) IS 'Internal: insert a checked import''s current state in primary-key order, without triggers (false: not done)';
CREATE FUNCTION privacy_guard._import_insert_ledger(p_subjects text[], p_purposes text[],
													p_valid_until timestamptz[], p_evidence jsonb[])
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_import_insert_ledger'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._import_insert_ledger(text[], text[], timestamptz[], jsonb[]) IS 'Internal: append a checked import''s grants to the ledger in input order, without triggers (false: not done)';

/*
 * The same writes without firing the consent tables' triggers, whose work
 * the import does itself, once per import instead of once per row: the
 * purpose foreign key (_import_check has found and locked every purpose),
 * the changed_xid stamp (set by _import_insert_state, or by the stamp
 * trigger, which fires in replica mode too) and the statement-level
 * invalidation (fired by import_consents afterwards).  Used only while
 * those are the only triggers there (_import_triggers_known).  A subject
 * that already has a state for the purpose (or a concurrent session that
 * just recorded one) makes the bulk insert fail with unique_violation: it
 * is undone and one INSERT ... ON CONFLICT sets the state as
 * grant_consent() does.
 */
CREATE OR REPLACE FUNCTION privacy_guard._import_write_untriggered(p_subjects text[], p_purposes text[],
														p_valid_until timestamptz[], p_evidence jsonb[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET session_replication_role = replica
SET work_mem = '256MB'
AS $$
BEGIN
	BEGIN
		IF NOT privacy_guard._import_insert_state(p_subjects, p_purposes, p_valid_until) THEN
			INSERT INTO privacy_guard.consent_state (subject, purpose, status, valid_until)
			SELECT u.s, u.p, 'granted', u.v
			  FROM (SELECT unnest(p_subjects) AS s, unnest(p_purposes) AS p, unnest(p_valid_until) AS v) u
			 ORDER BY u.s, u.p;
		END IF;
	EXCEPTION WHEN unique_violation THEN
		INSERT INTO privacy_guard.consent_state AS c (subject, purpose, status, valid_until)
		SELECT u.s, u.p, 'granted', u.v
		  FROM (SELECT unnest(p_subjects) AS s, unnest(p_purposes) AS p, unnest(p_valid_until) AS v) u
		 ORDER BY u.s, u.p
		ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE
			SET status = excluded.status, valid_until = excluded.valid_until, changed_at = now(),
				changed_xid = pg_current_xact_id();
	END;
	IF NOT privacy_guard._import_insert_ledger(p_subjects, p_purposes, p_valid_until, p_evidence) THEN
		INSERT INTO privacy_guard.consent_ledger (subject, purpose, action, valid_until, evidence)
		SELECT unnest(p_subjects), unnest(p_purposes), 'grant', unnest(p_valid_until), unnest(p_evidence);
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._import_write_untriggered(text[], text[], timestamptz[], jsonb[]) IS 'Internal: _import_write without the consent tables'' per-row triggers, whose work the import does itself';
REVOKE ALL ON FUNCTION privacy_guard._import_insert_state(text[], text[], timestamptz[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy_guard._import_insert_ledger(text[], text[], timestamptz[], jsonb[]) FROM PUBLIC;
