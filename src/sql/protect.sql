/* ------------------------------------------------------------------ */
/* Protected tables                                                     */
/* ------------------------------------------------------------------ */

CREATE FUNCTION privacy_guard._calling_role()
RETURNS regrole
AS 'MODULE_PATHNAME', 'pvg_calling_role'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._calling_role() IS 'Internal: the role the session acts as (SET ROLE), even inside SECURITY DEFINER functions';

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

CREATE FUNCTION privacy_guard._drop_policies(target regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_name name;
BEGIN
	FOR v_name IN
		SELECT p.polname FROM pg_policy p
		 WHERE p.polrelid = target AND p.polname IN ('privacy_guard_rules', 'privacy_guard_base')
	LOOP
		EXECUTE format('DROP POLICY %I ON %s', v_name, target);
	END LOOP;
END
$$;
COMMENT ON FUNCTION privacy_guard._drop_policies(regclass) IS 'Internal: drop privacy_guard policies from one table';

/*
 * Whether a table still carries the policy protect() installs for its
 * registered table: 'intact', 'missing' or 'tampered'.  Judged by structure
 * and by OIDs looked up now, so renames and restores (new OIDs) keep it.
 */
CREATE FUNCTION privacy_guard._policy_state(target regclass, root regclass,
											subject_column name, retention_column name)
RETURNS text
AS 'MODULE_PATHNAME', 'pvg_policy_state'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._policy_state(regclass, regclass, name, name) IS 'Internal: intact, missing or tampered';

/* Whether a table has permissive policies of its own (not privacy_guard's). */
CREATE FUNCTION privacy_guard._has_own_permissive(target regclass)
RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
					WHERE p.polrelid OPERATOR(pg_catalog.=) $1 AND p.polpermissive
					  AND p.polname OPERATOR(pg_catalog.<>) ALL (ARRAY['privacy_guard_rules', 'privacy_guard_base']::name[]))
$$;
COMMENT ON FUNCTION privacy_guard._has_own_permissive(regclass) IS 'Internal: whether a table has permissive row-level security policies of its own';

/*
 * The permissive base policy (USING true) stands in for the permissive
 * policies a table without row-level security of its own does not have:
 * without one, row-level security would show no row at all.  Once the
 * table has permissive policies of its own — added before protect() or
 * after, the base would be OR-ed with them and cancel them (a tenant
 * policy would show every tenant's rows) — it goes; when the last of them
 * is dropped, it comes back (unless the table had row-level security of
 * its own before protect(): then no permissive policy means no row, as
 * PostgreSQL has it).  Run after every CREATE, ALTER and DROP POLICY; a
 * CREATE POLICY only ever takes the base away (may_create false), so that
 * a restore, which creates the policies as they were in whatever order,
 * never finds the base already there.
 */
CREATE FUNCTION privacy_guard._sync_base_policy(target regclass, owner_rls boolean,
												may_create boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_want boolean := NOT owner_rls AND NOT privacy_guard._has_own_permissive(target);
	v_has boolean := EXISTS (SELECT 1 FROM pg_policy p
							  WHERE p.polrelid = target AND p.polname = 'privacy_guard_base');
BEGIN
	IF v_has AND NOT v_want THEN
		EXECUTE format('DROP POLICY privacy_guard_base ON %s', target);
	ELSIF v_want AND NOT v_has AND may_create THEN
		EXECUTE format('CREATE POLICY privacy_guard_base ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
					   'USING (''true''::privacy_guard.base_policy) WITH CHECK (''true''::privacy_guard.base_policy)',
					   target);
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._sync_base_policy(regclass, boolean, boolean) IS 'Internal: keep the permissive base policy exactly while a protected table has no permissive policy of its own';

/*
 * Install the two policies on one table (the registered table or one of
 * its partitions or inheritance children).  The policy expressions always
 * name the registered table, whose rules apply.
 */
CREATE FUNCTION privacy_guard._install_policies(target regclass, root regclass,
												subject_column name, retention_column name,
												with_base boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_qual text;
BEGIN
	IF retention_column IS NULL THEN
		v_qual := format('privacy_guard.row_visible(%L::regclass, %I)', root::oid, subject_column);
	ELSE
		v_qual := format('privacy_guard.row_visible(%L::regclass, %I, %I)', root::oid,
						 subject_column, retention_column);
	END IF;
	PERFORM privacy_guard._drop_policies(target);
	EXECUTE format('CREATE POLICY privacy_guard_rules ON %s AS RESTRICTIVE FOR ALL TO PUBLIC '
				   'USING (%s) WITH CHECK (privacy_guard.write_allowed(%L::regclass))',
				   target, v_qual, root::oid);
	/* a table with permissive policies of its own keeps them in charge (see _sync_base_policy) */
	IF with_base AND NOT privacy_guard._has_own_permissive(target) THEN
		EXECUTE format('CREATE POLICY privacy_guard_base ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
					   'USING (''true''::privacy_guard.base_policy) WITH CHECK (''true''::privacy_guard.base_policy)',
					   target);
	END IF;
	EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', target);
	INSERT INTO privacy_guard.protected_part AS p (target, root)
	VALUES (target, root)
	ON CONFLICT ON CONSTRAINT protected_part_pkey DO UPDATE SET root = excluded.root;
END
$$;
COMMENT ON FUNCTION privacy_guard._install_policies(regclass, regclass, name, name, boolean) IS 'Internal: install privacy_guard policies on one table';

/* A table and its partitions and inheritance children. */
CREATE FUNCTION privacy_guard._tree_oids(tbl regclass)
RETURNS SETOF oid
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* PL/pgSQL keeps the plan for the session: rounds call this per table */
	RETURN QUERY
		WITH RECURSIVE tree(relid) AS (
			SELECT tbl::oid
			UNION
			SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.relid)
		SELECT tree.relid FROM tree;
END
$$;
COMMENT ON FUNCTION privacy_guard._tree_oids(regclass) IS 'Internal: a table with its descendants';

/* The type a domain is over (at any depth), or the type itself (targets.c). */
CREATE FUNCTION privacy_guard._base_type(typ regtype)
RETURNS regtype
AS 'MODULE_PATHNAME', 'pvg_base_type'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION privacy_guard._base_type(regtype) IS 'Internal: the type under a domain (at any depth), or the type itself';

CREATE FUNCTION privacy_guard._column_type(tbl regclass, col name, what text)
RETURNS regtype
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_type regtype;
BEGIN
	SELECT a.atttypid INTO v_type FROM pg_attribute a
	 WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
	IF v_type IS NULL THEN
		RAISE EXCEPTION '% column "%" does not exist in table %', what, col, tbl
			USING ERRCODE = '42703';
	END IF;
	RETURN v_type;
END
$$;
COMMENT ON FUNCTION privacy_guard._column_type(regclass, name, text) IS 'Internal: type of a column, or error 42703';

CREATE FUNCTION privacy_guard.protect(tbl regclass, subject_column name, purposes text[],
									  retention interval DEFAULT NULL,
									  retention_column name DEFAULT NULL,
									  on_expiry text DEFAULT 'delete',
									  on_forget text DEFAULT 'delete')
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_kind "char";
	v_owner_rls boolean;
	v_owner_force boolean;
	v_child regclass;
	v_purpose text;
	v_rettype regtype;
	v_basetype regtype;
	v_notnull boolean;
	v_pk boolean;
BEGIN
	IF tbl IS NULL OR subject_column IS NULL OR purposes IS NULL THEN
		RAISE EXCEPTION 'table, subject column and purposes are required' USING ERRCODE = '22004';
	END IF;
	SELECT c.relkind INTO v_kind FROM pg_class c WHERE c.oid = tbl;
	IF v_kind NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = '42809';
	END IF;
	PERFORM privacy_guard._check_table_owner(tbl);
	IF (SELECT c.relnamespace FROM pg_class c WHERE c.oid = tbl) = 'privacy_guard'::regnamespace THEN
		RAISE EXCEPTION 'privacy_guard''s own tables cannot be protected' USING ERRCODE = '42501';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_inherits i JOIN privacy_guard.protected_part p ON p.target = i.inhparent
				WHERE i.inhrelid = tbl) THEN
		RAISE EXCEPTION 'table % inherits from a protected table and is already held to its rules', tbl
			USING ERRCODE = '55000';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = tbl) THEN
		RAISE EXCEPTION 'table % is a partition or inheritance child', tbl
			USING ERRCODE = '55000',
				  DETAIL = 'Queries on its parent would not apply its rules.',
				  HINT = 'Protect the topmost parent: its partitions and children are held to its rules.';
	END IF;
	IF cardinality(purposes) IS NULL OR cardinality(purposes) = 0 THEN
		RAISE EXCEPTION 'a protected table needs at least one purpose' USING ERRCODE = '22023';
	END IF;
	FOREACH v_purpose IN ARRAY purposes LOOP
		PERFORM privacy_guard._check_purpose(v_purpose);
	END LOOP;
	/*
	 * The subject key is matched against the column's text form; only types
	 * whose text form depends on no setting (DateStyle, bytea_output, ...)
	 * and has one spelling per value are accepted.
	 */
	v_rettype := privacy_guard._column_type(tbl, subject_column, 'subject');
	v_basetype := privacy_guard._base_type(v_rettype);
	IF v_basetype NOT IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'text'::regtype,
						  'varchar'::regtype, 'uuid'::regtype) THEN
		RAISE EXCEPTION 'subject column "%" is of type %, which cannot hold subject keys', subject_column, v_rettype
			USING ERRCODE = '42804',
				  DETAIL = 'Subject keys are matched against the column''s text form, which must not depend on settings.',
				  HINT = 'Use a smallint, integer, bigint, text, varchar or uuid column.';
	END IF;
	IF retention IS NOT NULL AND retention_column IS NULL THEN
		RAISE EXCEPTION 'a retention period needs a retention_column to count from' USING ERRCODE = '22023';
	END IF;
	IF retention IS NOT NULL AND retention <= interval '0' THEN
		RAISE EXCEPTION 'retention must be a positive interval' USING ERRCODE = '22023';
	END IF;
	IF retention_column IS NOT NULL THEN
		v_rettype := privacy_guard._column_type(tbl, retention_column, 'retention');
		IF v_rettype NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
			RAISE EXCEPTION 'retention column "%" is of type %, not a date or timestamp',
				retention_column, v_rettype USING ERRCODE = '42804';
		END IF;
	END IF;
	IF on_expiry IS NULL OR on_expiry NOT IN ('delete', 'anonymize') THEN
		RAISE EXCEPTION 'on_expiry must be delete or anonymize' USING ERRCODE = '22023';
	END IF;
	IF on_forget IS NULL OR on_forget NOT IN ('delete', 'anonymize') THEN
		RAISE EXCEPTION 'on_forget must be delete or anonymize' USING ERRCODE = '22023';
	END IF;
	IF 'anonymize' IN (on_expiry, on_forget) THEN
		/* anonymizing cuts the link to the person: the subject column becomes NULL */
		SELECT a.attnotnull INTO v_notnull FROM pg_attribute a
		 WHERE a.attrelid = tbl AND a.attname = subject_column;
		SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a
						 ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
						WHERE i.indrelid = tbl AND i.indisprimary AND a.attname = subject_column)
		  INTO v_pk;
		IF v_pk THEN
			RAISE EXCEPTION 'cannot anonymize rows of %: subject column "%" is part of the primary key',
				tbl, subject_column
				USING ERRCODE = '55000',
					  DETAIL = 'Anonymizing a row sets its subject column to NULL to cut the link to the person.',
					  HINT = 'Use ''delete'', or keep the subject in a column outside the primary key.';
		END IF;
		IF v_notnull THEN
			RAISE EXCEPTION 'cannot anonymize rows of %: subject column "%" is NOT NULL',
				tbl, subject_column
				USING ERRCODE = '55000',
					  DETAIL = 'Anonymizing a row sets its subject column to NULL to cut the link to the person.',
					  HINT = 'Use ''delete'', or drop the NOT NULL constraint.';
		END IF;
	END IF;

	/* a table that had row-level security of its own keeps its permissive policies in charge */
	SELECT t.owner_rls, t.owner_force INTO v_owner_rls, v_owner_force
	  FROM privacy_guard.protected_table t WHERE t.relid = tbl;
	IF v_owner_rls IS NULL THEN
		SELECT c.relrowsecurity, c.relforcerowsecurity INTO v_owner_rls, v_owner_force
		  FROM pg_class c WHERE c.oid = tbl;
	END IF;

	INSERT INTO privacy_guard.protected_table AS t
		(relid, subject_column, purposes, retention, retention_column, on_expiry, on_forget,
		 owner_rls, owner_force)
	VALUES (tbl, subject_column, purposes, retention, retention_column, on_expiry, on_forget,
			v_owner_rls, v_owner_force)
	ON CONFLICT ON CONSTRAINT protected_table_pkey DO UPDATE
		SET subject_column = excluded.subject_column, purposes = excluded.purposes,
			retention = excluded.retention, retention_column = excluded.retention_column,
			on_expiry = excluded.on_expiry, on_forget = excluded.on_forget;

	PERFORM privacy_guard._guard_suspend(true);
	PERFORM privacy_guard._install_policies(tbl, tbl, subject_column, retention_column, NOT v_owner_rls);
	FOR v_child IN
		SELECT x::regclass FROM privacy_guard._tree_oids(tbl) AS x WHERE x <> tbl::oid
	LOOP
		PERFORM privacy_guard._install_policies(v_child, tbl, subject_column, retention_column,
												NOT v_owner_rls);
	END LOOP;
	PERFORM privacy_guard._guard_suspend(false);
	PERFORM privacy_guard._install_default_tag(tbl, true);
END
$$;
COMMENT ON FUNCTION privacy_guard.protect(regclass, name, text[], interval, name, text, text) IS 'Register a table and hold every statement on it to the purpose rules';

CREATE FUNCTION privacy_guard._remove_policies(target regclass, owner_rls boolean,
											   owner_force boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM privacy_guard._drop_policies(target);
	/* policies the owner added while the table was protected keep working */
	IF NOT owner_rls AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = target) THEN
		EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', target);
	END IF;
	IF NOT owner_force THEN
		EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', target);
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard._remove_policies(regclass, boolean, boolean) IS 'Internal: remove privacy_guard policies from one table';

CREATE FUNCTION privacy_guard.unprotect(tbl regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_owner_rls boolean;
	v_owner_force boolean;
	v_part regclass;
BEGIN
	SELECT t.owner_rls, t.owner_force INTO v_owner_rls, v_owner_force
	  FROM privacy_guard.protected_table t WHERE t.relid = tbl;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table % is not protected', tbl USING ERRCODE = '55000';
	END IF;
	PERFORM privacy_guard._check_table_owner(tbl);
	/* the table itself, its partitions and children, and any since detached */
	PERFORM privacy_guard._guard_suspend(true);
	FOR v_part IN
		DELETE FROM privacy_guard.protected_part p WHERE p.root = tbl RETURNING p.target
	LOOP
		PERFORM privacy_guard._remove_policies(v_part, v_owner_rls, v_owner_force);
	END LOOP;
	PERFORM privacy_guard._guard_suspend(false);
	PERFORM privacy_guard._install_default_tag(tbl, false);
	DELETE FROM privacy_guard.protected_table t WHERE t.relid = tbl;
END
$$;
COMMENT ON FUNCTION privacy_guard.unprotect(regclass) IS 'Remove a table''s registration and the policies it installed';

CREATE VIEW privacy_guard.protected_tables AS
	SELECT t.relid AS table_name, t.subject_column, t.purposes, t.retention, t.retention_column,
		   t.on_expiry, t.on_forget, t.protected_at
	  FROM privacy_guard.protected_table t;
COMMENT ON VIEW privacy_guard.protected_tables IS 'Tables registered with privacy_guard';

