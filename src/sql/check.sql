/* ---------------------------------------------------------------- compliance check */

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

CREATE FUNCTION privacy_guard._store_patches(OUT from_ring bigint, OUT queried bigint, OUT merged bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'pvg_store_patches'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._store_patches() IS 'Internal: how often this connection caught up with consent changes from the shared change ring, and by querying the tables, and the shared sets it built by merging one with its changes';

/*
 * PostgreSQL's own row-level security flaws, by the minor release that
 * fixed them (from the PostgreSQL release notes): the ones a server of the
 * given version still has.
 */
CREATE FUNCTION privacy_guard._unfixed_rls_flaws(server_version_num integer)
RETURNS TABLE (cve text, fixed_in text, what text)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT f.cve, f.major || '.' || f.minor, f.what
	  FROM (VALUES
		(13, 11, 'CVE-2023-2455', 'a query planned under one role and run under another (an inlined SQL function, SET ROLE, SECURITY DEFINER) may apply the wrong role''s row-level security policies'),
		(14, 8, 'CVE-2023-2455', 'a query planned under one role and run under another (an inlined SQL function, SET ROLE, SECURITY DEFINER) may apply the wrong role''s row-level security policies'),
		(15, 3, 'CVE-2023-2455', 'a query planned under one role and run under another (an inlined SQL function, SET ROLE, SECURITY DEFINER) may apply the wrong role''s row-level security policies'),
		(15, 4, 'CVE-2023-39418', 'MERGE does not apply row-level security policies correctly to the rows it inserts and updates'),
		(13, 17, 'CVE-2024-10976', 'a cached plan of a query reaching a protected table through a subquery, CTE or security-invoker view may be reused under another role, with that role''s policies not applied'),
		(14, 14, 'CVE-2024-10976', 'a cached plan of a query reaching a protected table through a subquery, CTE or security-invoker view may be reused under another role, with that role''s policies not applied'),
		(15, 9, 'CVE-2024-10976', 'a cached plan of a query reaching a protected table through a subquery, CTE or security-invoker view may be reused under another role, with that role''s policies not applied'),
		(16, 5, 'CVE-2024-10976', 'a cached plan of a query reaching a protected table through a subquery, CTE or security-invoker view may be reused under another role, with that role''s policies not applied'),
		(17, 1, 'CVE-2024-10976', 'a cached plan of a query reaching a protected table through a subquery, CTE or security-invoker view may be reused under another role, with that role''s policies not applied'),
		(13, 22, 'CVE-2025-8713', 'a leaky operator can read planner statistics (most common values, histograms) of rows hidden by row-level security in partitions and inheritance children'),
		(14, 19, 'CVE-2025-8713', 'a leaky operator can read planner statistics (most common values, histograms) of rows hidden by row-level security in partitions and inheritance children'),
		(15, 14, 'CVE-2025-8713', 'a leaky operator can read planner statistics (most common values, histograms) of rows hidden by row-level security in partitions and inheritance children'),
		(16, 10, 'CVE-2025-8713', 'a leaky operator can read planner statistics (most common values, histograms) of rows hidden by row-level security in partitions and inheritance children'),
		(17, 6, 'CVE-2025-8713', 'a leaky operator can read planner statistics (most common values, histograms) of rows hidden by row-level security in partitions and inheritance children')
	  ) AS f(major, minor, cve, what)
	 WHERE f.major = $1 / 10000 AND $1 % 10000 < f.minor
	 ORDER BY f.minor, f.cve
$$;
COMMENT ON FUNCTION privacy_guard._unfixed_rls_flaws(integer) IS 'Internal: PostgreSQL row-security flaws a server version has not had fixed';

/* Whether a reloptions array turns security_invoker on. */
CREATE FUNCTION privacy_guard._security_invoker(opts text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(bool_or(lower(o) ~ '^security_invoker=(t|tr|tru|true|y|ye|yes|on|1)$'), false)
	  FROM unnest($1) AS o
$$;
COMMENT ON FUNCTION privacy_guard._security_invoker(text[]) IS 'Internal: whether a view''s options make it run with the invoker''s rights';

/*
 * Compliance lint.  Each finding: severity ('error': data is exposed or a
 * rule cannot hold; 'warning': likely a gap; 'info'), the object, and a
 * message saying what the risk is and what to do.  The copy detection for
 * tables made by CREATE TABLE AS is a heuristic (shared column names and
 * types), and says so.
 */
CREATE FUNCTION privacy_guard.check()
RETURNS TABLE (severity text, object text, message text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off	/* the catalog query's estimates are large; compiling it took seconds */
AS $$
BEGIN
	RETURN QUERY
	WITH prot AS (
		/* every table carrying a registration's rules, with its registration */
		SELECT q.target::oid AS relid, t.relid AS root, t.subject_column
		  FROM privacy_guard.protected_part q
		  JOIN privacy_guard.protected_table t ON t.relid = q.root
		UNION
		SELECT x, t.relid, t.subject_column
		  FROM privacy_guard.protected_table t, privacy_guard._tree_oids(t.relid) AS x),
	user_rel AS (
		SELECT c.oid, c.relkind, c.relowner, c.reloptions, c.relispartition
		  FROM pg_class c
		 WHERE c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
									  'privacy_guard'::regnamespace)
		   AND c.relnamespace::regnamespace::text !~ '^pg_(toast|temp_|toast_temp_)'),
	/* views and materialized views reading protected tables, also through other views */
	reach AS (
		WITH RECURSIVE r(view, root) AS (
			SELECT DISTINCT rw.ev_class, p.root
			  FROM pg_depend d
			  JOIN pg_rewrite rw ON rw.oid = d.objid
			  JOIN prot p ON p.relid = d.refobjid
			 WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
			   AND rw.ev_class <> d.refobjid
			UNION
			SELECT rw.ev_class, r.root
			  FROM r
			  JOIN pg_class rc ON rc.oid = r.view AND rc.relkind = 'v'	/* a materialized view is a copy: reported itself */
			  JOIN pg_depend d ON d.refobjid = r.view AND d.refclassid = 'pg_class'::regclass
							  AND d.classid = 'pg_rewrite'::regclass
			  JOIN pg_rewrite rw ON rw.oid = d.objid
			 WHERE rw.ev_class <> r.view)
		SELECT r.view, r.root FROM r),
	findings(sev, obj, msg) AS (
		/* PostgreSQL's own row-security flaws */
		SELECT 'error', 'server',
			   format('PostgreSQL %s has %s (fixed in %s): %s. Upgrade to the latest %s.x minor release.',
					  current_setting('server_version'), f.cve, f.fixed_in, f.what,
					  current_setting('server_version_num')::integer / 10000)
		  FROM privacy_guard._unfixed_rls_flaws(current_setting('server_version_num')::integer) f
		UNION ALL
		/* tables referring to protected tables, themselves unprotected */
		SELECT 'warning', 'table ' || c.conrelid::regclass::text,
			   format('table %s refers to protected table %s (foreign key %s) but is not protected: its rows about a person are read without purpose, consent or retention checks, are not erased when the person is forgotten, and may block that erasure. Protect it with privacy_guard.protect().',
					  c.conrelid::regclass, p.root, quote_ident(c.conname))
		  FROM pg_constraint c
		  JOIN (SELECT DISTINCT prot.relid, prot.root FROM prot) p ON p.relid = c.confrelid
		  JOIN user_rel u ON u.oid = c.conrelid
		 WHERE c.contype = 'f' AND c.conparentid = 0
		   AND NOT EXISTS (SELECT 1 FROM prot q WHERE q.relid = c.conrelid)
		UNION ALL
		/* views that run with their owner's rights */
		SELECT CASE WHEN ro.rolsuper OR ro.rolbypassrls THEN 'error' ELSE 'warning' END,
			   'view ' || v.view::regclass::text,
			   CASE WHEN ro.rolsuper OR ro.rolbypassrls THEN
				   format('view %s reads protected table %s with the rights of its owner %s, who bypasses row-level security: everyone who may read the view sees every row, including rows the rules hide (no purpose, consent, retention or forget request is checked). Set security_invoker = true, or give the view an owner bound by the rules.',
						  v.view::regclass, string_agg(DISTINCT v.root::text, ', '), quote_ident(ro.rolname))
			   ELSE
				   format('view %s reads protected table %s with the rights of its owner %s (security_invoker is off): whoever may read the view reads the table without holding privileges on it, and the table''s own row-level policies are applied as for %s, not for the reader. privacy_guard''s rules still apply (FORCE ROW LEVEL SECURITY binds the owner; the purpose and authorisation checked are the reader''s), but if the owner is ever made a superuser or given BYPASSRLS, the view shows every row. Set security_invoker = true.',
						  v.view::regclass, string_agg(DISTINCT v.root::text, ', '), quote_ident(ro.rolname),
						  quote_ident(ro.rolname))
			   END
		  FROM reach v
		  JOIN user_rel u ON u.oid = v.view AND u.relkind = 'v'
		  JOIN pg_roles ro ON ro.oid = u.relowner
		 WHERE NOT privacy_guard._security_invoker(u.reloptions)
		 GROUP BY v.view, ro.rolname, ro.rolsuper, ro.rolbypassrls
		UNION ALL
		/* materialized views: copies */
		SELECT 'error', 'materialized view ' || v.view::regclass::text,
			   format('materialized view %s holds a copy of rows of protected table %s, made at its last refresh: the copy is not held to the rules (no purpose or consent check, no retention, not erased when a person is forgotten). Use a view with security_invoker = true instead, or protect a table you fill yourself.',
					  v.view::regclass, string_agg(DISTINCT v.root::text, ', '))
		  FROM reach v
		  JOIN user_rel u ON u.oid = v.view AND u.relkind = 'm'
		 GROUP BY v.view
		UNION ALL
		/* tables that look like copies (CREATE TABLE AS, SELECT INTO): a heuristic */
		SELECT 'warning', 'table ' || s.relid::regclass::text,
			   format('table %s is not protected but has the subject column %s (%s) of protected table %s and %s of its other columns (same names and types): it may be a copy of protected data (CREATE TABLE AS, SELECT INTO). This is a guess from the columns alone: protect the table if it holds personal data, or drop it.',
					  s.relid::regclass, quote_ident(s.subject_column), s.subject_type, s.root, s.shared - 1)
		  FROM (SELECT u.oid AS relid, t.relid AS root, t.subject_column,
					   format_type(sa.atttypid, sa.atttypmod) AS subject_type,
					   (SELECT count(*) FROM pg_attribute a
						  JOIN pg_attribute b ON b.attrelid = t.relid AND b.attname = a.attname
											 AND b.atttypid = a.atttypid AND b.attnum > 0 AND NOT b.attisdropped
						 WHERE a.attrelid = u.oid AND a.attnum > 0 AND NOT a.attisdropped) AS shared,
					   (SELECT count(*) FROM pg_attribute a
						 WHERE a.attrelid = u.oid AND a.attnum > 0 AND NOT a.attisdropped) AS ncols
				  FROM user_rel u
				  JOIN privacy_guard.protected_table t ON true
				  JOIN pg_attribute sa ON sa.attrelid = t.relid AND sa.attname = t.subject_column
				 WHERE u.relkind IN ('r', 'p') AND NOT u.relispartition
				   AND NOT EXISTS (SELECT 1 FROM prot q WHERE q.relid = u.oid)
				   AND EXISTS (SELECT 1 FROM pg_attribute a
								WHERE a.attrelid = u.oid AND a.attname = t.subject_column
								  AND a.atttypid = sa.atttypid AND NOT a.attisdropped)
				   /* referring tables are reported above */
				   AND NOT EXISTS (SELECT 1 FROM pg_constraint c
									WHERE c.contype = 'f' AND c.conrelid = u.oid
									  AND c.confrelid IN (SELECT q.relid FROM prot q))) s
		 WHERE s.shared >= 2 AND s.shared * 2 >= s.ncols
		UNION ALL
		/* roles the rules do not bind, authorised for purposes */
		SELECT 'warning', 'role ' || quote_ident(ro.rolname),
			   format('role %s is authorised for purpose %s, but as %s it is not bound by the rules: its reads are not limited to the purpose, to consenting subjects or to retention, and forget requests do not hide rows from it. Use a role without SUPERUSER and BYPASSRLS for the application.',
					  quote_ident(ro.rolname), string_agg(quote_literal(r.purpose), ', ' ORDER BY r.purpose),
					  CASE WHEN ro.rolsuper THEN 'a superuser' ELSE 'a role with BYPASSRLS' END)
		  FROM privacy_guard.purpose_role r
		  JOIN pg_roles ro ON ro.oid = r.role
		 WHERE ro.rolsuper OR ro.rolbypassrls
		 GROUP BY ro.rolname, ro.rolsuper
		UNION ALL
		/* purposes no role may use */
		SELECT 'warning', 'purpose ' || quote_literal(p.name),
			   format('no role is authorised for purpose %s or a parent of it of the same legal basis: only superusers and BYPASSRLS roles can read data under it. Authorise a role with privacy_guard.allow_purpose(), or drop the purpose.',
					  quote_literal(p.name))
		  FROM privacy_guard.purpose p
		 WHERE NOT EXISTS (SELECT 1 FROM privacy_guard.purpose_role r
							WHERE r.purpose IN (SELECT privacy_guard._authorising_purposes(p.name)))
		UNION ALL
		/* protected tables without retention */
		SELECT 'warning', 'table ' || t.relid::text,
			   format('protected table %s has no retention period: its rows are kept until the person asks to be forgotten (GDPR Art. 5(1)(e), storage limitation). Give it one with privacy_guard.protect(..., retention => ..., retention_column => ...).',
					  t.relid)
		  FROM privacy_guard.protected_table t
		 WHERE t.retention IS NULL
		UNION ALL
		/* tagged columns outside protected tables: the values carry rules, the rows do not */
		SELECT 'warning', 'table ' || tc.relid::text,
			   format('table %s is not protected but has tagged column%s %s: each tagged value carries its own rules (it is revealed only under its tag''s purposes, to an authorised role, before its retain-until, and erased when its subject is forgotten), but the rows do not: their other columns are read without purpose, consent or retention checks, a row is never deleted (only its tagged values are set to NULL), and a plain value written into a tagged column stays untagged, readable by every role that can read the table. If the rows are about a person, protect the table with privacy_guard.protect().',
					  tc.relid, CASE WHEN count(*) > 1 THEN 's' ELSE '' END,
					  string_agg(quote_ident(tc.colname), ', ' ORDER BY tc.attnum))
		  FROM privacy_guard._tagged_top_columns() tc
		 WHERE NOT tc.protected
		 GROUP BY tc.relid
		UNION ALL
		/* nothing enforces retention and forget requests in the background */
		SELECT 'warning', 'server',
			   'privacy_guard is not in shared_preload_libraries, so no background worker deletes rows past their retention or carries out forget requests (the rules still hide them). Add privacy_guard to shared_preload_libraries and restart the server, or call privacy_guard.run_maintenance() from a scheduler (cron, pg_cron) at least daily.'
		 WHERE NOT privacy_guard._preloaded()
		UNION ALL
		SELECT 'warning', 'server',
			   'privacy_guard.enabled is off, so the background worker deletes no rows past their retention and carries out no forget requests (the rules still hide them). Turn it on, or call privacy_guard.run_maintenance() from a scheduler.'
		 WHERE privacy_guard._preloaded() AND NOT current_setting('privacy_guard.enabled', true)::boolean
		UNION ALL
		/* where connections read the consent store from */
		SELECT CASE WHEN st LIKE 'shared, full%' OR st LIKE 'local: disabled%' THEN 'warning' ELSE 'info' END,
			   'server',
			   CASE WHEN st = 'shared'
					THEN 'consent store: shared. Connections read one copy of the consent store in shared memory and keep only the changes made since it was read.'
					WHEN st LIKE 'shared, full%'
					THEN 'consent store: the shared store is full (privacy_guard.shared_store_size), so some connections keep a private copy of the sets that did not fit, which costs each of them memory and time on its first protected statement. Raise privacy_guard.shared_store_size and restart the server.'
					ELSE 'consent store: private copies (' || substr(st, 8) || '). Each connection reads the whole consent store into its own memory on its first protected statement; with privacy_guard in shared_preload_libraries they share one copy.'
			   END
		  FROM privacy_guard._store_status() AS st
		UNION ALL
		SELECT 'warning', 'server',
			   'privacy_guard.databases does not name this database, so the background worker deletes no rows past their retention here and carries out no forget requests (the rules still hide them). Add the database to the setting, or call privacy_guard.run_maintenance() from a scheduler.'
		 WHERE privacy_guard._preloaded() AND NOT privacy_guard._database_chosen()
		UNION ALL
		/* erasure owed for more than a day (GDPR Art. 12(3): without undue delay) */
		SELECT 'error', 'erasure requests',
			   format('%s forget request%s due for more than a day %s not carried out (%s blocked, %s pending): the rows stay hidden but are still stored. See privacy_guard.erasure_requests for the error of each blocked request; pending ones wait for a round, or for older transactions to end.',
					  count(*), CASE WHEN count(*) > 1 THEN 's' ELSE '' END,
					  CASE WHEN count(*) > 1 THEN 'are' ELSE 'is' END,
					  count(*) FILTER (WHERE e.state = 'blocked'), count(*) FILTER (WHERE e.state = 'pending'))
		  FROM privacy_guard.erasure_request e
		 WHERE e.state IN ('pending', 'blocked') AND e.due < now() - interval '1 day'
		HAVING count(*) > 0
		UNION ALL
		/* tagged values where forget requests and retain-until do not reach them */
		SELECT 'warning', 'materialized view ' || c.oid::regclass::text,
			   format('materialized view %s has tagged column%s %s: forget requests and retain-until do not reach a materialized view, so its tagged values stay (and subject_report does not list them) until it is refreshed. Refresh it after every enforcement round, or fill a table instead.',
					  c.oid::regclass, CASE WHEN count(*) > 1 THEN 's' ELSE '' END,
					  string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum))
		  FROM user_rel c
		  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		 WHERE c.relkind = 'm'
		   AND (a.atttypid IN (SELECT privacy_guard._tagged_types())
				OR a.atttypid IN (SELECT privacy_guard._tagged_array_types()))
		 GROUP BY c.oid
		UNION ALL
		SELECT 'warning', CASE c.relkind WHEN 'm' THEN 'materialized view ' ELSE 'table ' END || c.oid::regclass::text,
			   format('column %I of %s has type %s, which holds tagged values inside a composite type or an array of arrays: forget requests and retain-until erase them there, but subject_report, the register and the notice do not read inside it. Keep tagged values in columns of a tagged type, or of an array of one.',
					  a.attname, c.oid::regclass, format_type(a.atttypid, a.atttypmod))
		  FROM user_rel c
		  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		 WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition
		   AND a.atttypid IN (SELECT privacy_guard._tagged_container_types())
	)
	SELECT f.sev, f.obj, f.msg
	  FROM findings f
	 ORDER BY CASE f.sev WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, f.obj, f.msg;
END
$$;
COMMENT ON FUNCTION privacy_guard.check() IS 'Compliance lint: copies and views of protected data, unprotected referencing tables, bypassing roles, unusable purposes, missing retention, tagged columns outside protected tables or out of the erasure''s reach, no background enforcement, overdue forget requests, an unpatched server';

