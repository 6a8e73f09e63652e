/* ------------------------------------------------------------------ */
/* DDL guard: nobody but privacy_guard changes a protected table's RLS  */
/* ------------------------------------------------------------------ */

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

/* every protected table and its partitions and inheritance children */
CREATE FUNCTION privacy_guard._protected_tree()
RETURNS TABLE (target regclass, root regclass)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT x::regclass, t.relid
	  FROM privacy_guard.protected_table t, privacy_guard._tree_oids(t.relid) AS x
$$;
COMMENT ON FUNCTION privacy_guard._protected_tree() IS 'Internal: protected tables with their descendants';

CREATE FUNCTION privacy_guard._on_ddl_command_end()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
	v_bad regclass;
BEGIN
	IF privacy_guard._guard_suspended()
	   OR NOT EXISTS (SELECT 1 FROM privacy_guard.protected_table) THEN
		RETURN;
	END IF;

	/*
	 * A table's own permissive policies, created or dropped: the base
	 * policy goes or comes back (on tables whose rules are in place: during
	 * a restore, pg_restore brings the policies as they were).
	 */
	IF TG_TAG IN ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY') THEN
		PERFORM privacy_guard._guard_suspend(true);
		FOR r IN
			SELECT p.target, t.owner_rls
			  FROM privacy_guard.protected_part p
			  JOIN privacy_guard.protected_table t ON t.relid = p.root
			 WHERE privacy_guard._policy_state(p.target, p.root, t.subject_column,
											   t.retention_column) = 'intact'
		LOOP
			PERFORM privacy_guard._sync_base_policy(r.target, r.owner_rls, TG_TAG <> 'CREATE POLICY');
		END LOOP;
		PERFORM privacy_guard._guard_suspend(false);
	END IF;

	/* the registration names the subject and retention columns */
	SELECT t.relid INTO v_bad
	  FROM privacy_guard.protected_table t
	 WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
						WHERE a.attrelid = t.relid AND a.attname = t.subject_column
						  AND NOT a.attisdropped)
		OR (t.retention_column IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM pg_attribute a
							 WHERE a.attrelid = t.relid AND a.attname = t.retention_column
							   AND NOT a.attisdropped))
	 LIMIT 1;
	IF v_bad IS NOT NULL THEN
		RAISE EXCEPTION 'cannot rename or drop the subject or retention column of protected table %', v_bad
			USING ERRCODE = '55000',
				  HINT = 'Unprotect the table, rename the column, then protect the table again.';
	END IF;

	/*
	 * A partition or child created or attached under a protected table is
	 * held to its rules at once (once that table's own policy is in place:
	 * during a restore, pg_restore brings the policies itself).
	 */
	IF TG_TAG IN ('CREATE TABLE', 'CREATE FOREIGN TABLE', 'ALTER TABLE', 'ALTER FOREIGN TABLE') THEN
		PERFORM privacy_guard._guard_suspend(true);
		FOR r IN
			SELECT tr.target, tr.root, t.subject_column, t.retention_column, t.owner_rls
			  FROM privacy_guard._protected_tree() tr
			  JOIN privacy_guard.protected_table t ON t.relid = tr.root
			 WHERE tr.target <> tr.root
			   AND NOT EXISTS (SELECT 1 FROM privacy_guard.protected_part q WHERE q.target = tr.target)
			   AND privacy_guard._policy_state(tr.root, tr.root, t.subject_column,
											   t.retention_column) = 'intact'
		LOOP
			PERFORM privacy_guard._install_policies(r.target, r.root, r.subject_column,
													r.retention_column, NOT r.owner_rls);
		END LOOP;
		PERFORM privacy_guard._guard_suspend(false);
		/*
		 * A tagged column added to a protected table: plain values get its
		 * default tag.  With the guard on: tagging the stored values runs the
		 * owner's triggers, whose DDL must be checked like any other.  Only
		 * on a table whose rules are in place: during a restore the table's
		 * ALTER TABLE commands (keys, constraints) come before its triggers,
		 * and pg_restore brings the trigger itself (its policies come after
		 * its triggers).
		 */
		FOR r IN
			SELECT t.relid FROM privacy_guard.protected_table t
			 WHERE NOT EXISTS (SELECT 1 FROM pg_trigger g
								WHERE g.tgrelid = t.relid AND g.tgname = 'privacy_guard_default_tag')
			   AND privacy_guard._policy_state(t.relid, t.relid, t.subject_column,
											   t.retention_column) = 'intact'
		LOOP
			PERFORM privacy_guard._install_default_tag(r.relid, true);
		END LOOP;
	END IF;

	/*
	 * A table carrying the rules may only have parents that carry the same
	 * rules: querying a parent applies the parent's policies alone, so an
	 * unprotected (or differently protected) parent would show its rows.
	 */
	SELECT p.target INTO v_bad
	  FROM privacy_guard.protected_part p
	  JOIN pg_inherits i ON i.inhrelid = p.target
	 WHERE NOT EXISTS (SELECT 1 FROM privacy_guard.protected_part q
						WHERE q.target = i.inhparent AND q.root = p.root)
	 LIMIT 1;
	IF v_bad IS NOT NULL THEN
		RAISE EXCEPTION 'table % is protected by privacy_guard and cannot become a child of a table with other rules', v_bad
			USING ERRCODE = '42501',
				  DETAIL = 'Queries on the parent would not apply its rules.';
	END IF;

	/*
	 * Nothing may weaken the rules where they apply: on registered tables,
	 * their partitions and children, and those detached since.  A policy
	 * that is missing altogether is a table being restored, unless this very
	 * command dropped or renamed it.
	 */
	SELECT x.target INTO v_bad
	  FROM (SELECT p.target, p.root FROM privacy_guard.protected_part p
			UNION
			SELECT tr.target, tr.root FROM privacy_guard._protected_tree() tr) x
	  JOIN privacy_guard.protected_table t ON t.relid = x.root
	  CROSS JOIN LATERAL privacy_guard._policy_state(x.target, x.root, t.subject_column,
													 t.retention_column) AS st(state)
	 WHERE st.state = 'tampered'
		OR (st.state = 'missing' AND TG_TAG IN ('DROP POLICY', 'ALTER POLICY'))
	 LIMIT 1;
	IF v_bad IS NOT NULL THEN
		RAISE EXCEPTION 'table % is protected by privacy_guard', v_bad
			USING ERRCODE = '42501',
				  DETAIL = 'The command would remove or change the row-level security that enforces its purpose rules.',
				  HINT = 'An administrator can run privacy_guard.unprotect() first.';
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._on_ddl_command_end() IS 'Internal: protect new partitions and children; refuse DDL that weakens a protected table';

CREATE FUNCTION privacy_guard._on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_orphan regclass;
BEGIN
	/*
	 * A registered table may not go while tables carrying its rules (parts
	 * detached from it) stay: their policies depend on it and would be
	 * dropped with it, leaving their rows unprotected.
	 */
	SELECT p.target INTO v_orphan
	  FROM privacy_guard.protected_part p
	  JOIN pg_event_trigger_dropped_objects() o
		ON o.classid = 'pg_class'::regclass AND o.objsubid = 0 AND o.objid = p.root::oid
	 WHERE NOT EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() d
						WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0
						  AND d.objid = p.target::oid)
	 LIMIT 1;
	IF v_orphan IS NOT NULL THEN
		RAISE EXCEPTION 'cannot drop a protected table while % still carries its rules', v_orphan
			USING ERRCODE = '2BP01',
				  HINT = 'Drop that table too, or run privacy_guard.unprotect() first.';
	END IF;

	/* a dropped table takes its registration with it */
	DELETE FROM privacy_guard.protected_part p
	 USING pg_event_trigger_dropped_objects() o
	 WHERE o.classid = 'pg_class'::regclass AND o.objsubid = 0
	   AND (o.objid = p.target::oid OR o.objid = p.root::oid);
	DELETE FROM privacy_guard.protected_table t
	 USING pg_event_trigger_dropped_objects() o
	 WHERE o.classid = 'pg_class'::regclass AND o.objsubid = 0 AND o.objid = t.relid::oid;
END
$$;
COMMENT ON FUNCTION privacy_guard._on_sql_drop() IS 'Internal: forget the registration of a dropped table';

CREATE EVENT TRIGGER privacy_guard_ddl_guard ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE', 'ALTER POLICY', 'DROP POLICY', 'CREATE TABLE', 'CREATE POLICY',
				 'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE')
	EXECUTE FUNCTION privacy_guard._on_ddl_command_end();
CREATE EVENT TRIGGER privacy_guard_drop_guard ON sql_drop
	EXECUTE FUNCTION privacy_guard._on_sql_drop();

