/*
 * Protected tables in erasure order: a table before the tables it
 * references.  A table's level is the longest chain of protected tables
 * referring to it (through foreign keys), so referencing tables (level 0)
 * come first; cycles are cut after as many steps as there are tables.
 */
CREATE FUNCTION privacy_guard._erasure_order()
RETURNS SETOF privacy_guard.protected_table
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN QUERY
		WITH RECURSIVE edge(child, parent) AS (
			SELECT DISTINCT c.conrelid, c.confrelid
			  FROM pg_constraint c
			  JOIN privacy_guard.protected_table a ON a.relid = c.conrelid
			  JOIN privacy_guard.protected_table b ON b.relid = c.confrelid
			 WHERE c.contype = 'f' AND c.conrelid <> c.confrelid),
		walk(relid, lvl) AS (
			SELECT t.relid::oid, 0 FROM privacy_guard.protected_table t
			UNION
			SELECT e.parent, w.lvl + 1 FROM walk w JOIN edge e ON e.child = w.relid
			 WHERE w.lvl < (SELECT count(*) FROM privacy_guard.protected_table))
		SELECT t.* FROM privacy_guard.protected_table t
		  JOIN (SELECT w.relid, max(w.lvl) AS lvl FROM walk w GROUP BY w.relid) l ON l.relid = t.relid
		 ORDER BY l.lvl, t.relid::text;
END
$$;
COMMENT ON FUNCTION privacy_guard._erasure_order() IS 'Internal: protected tables, referencing tables before referenced ones';

/*
 * The engine's time test on a column, as SQL: col + span <= at (passed) or
 * col + span > at (not yet), with pg_catalog's operators named in full (the
 * owner's schema may plant a closer match).
 */
CREATE FUNCTION privacy_guard._time_cond(col name, span interval, passed boolean, at timestamptz)
RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT format('%I OPERATOR(pg_catalog.+) %L::interval OPERATOR(pg_catalog.%s) %L::timestamptz',
				  $1, $2, CASE WHEN $3 THEN '<=' ELSE '>' END, $4)
$$;
COMMENT ON FUNCTION privacy_guard._time_cond(name, interval, boolean, timestamptz) IS 'Internal: SQL testing whether column + span has passed a time';

/* What a round needs to know about a protected table to erase a subject from it. */
CREATE TYPE privacy_guard.erase_target AS (
	relid		regclass,
	subject_column name,
	on_forget	text,
	hold_keep	interval,
	retention_column name,
	subject_type regtype,		/* NULL when the subject column is gone */
	base_type	regtype,
	targets		regclass[],		/* the table, and parts detached from it since */
	leaves		oid[],			/* the plain tables under them, which hold the rows */
	owner_code	boolean,		/* a trigger or rule of the owner could keep rows */
	anonymize_set text			/* on_forget anonymize: the SET list; NULL: delete */
);

/*
 * The protected tables in erasure order, as a round erases subjects from
 * them, with what the erasure needs to know of each (see the type above):
 * read from the system caches in C (targets.c), since a round runs in a
 * fresh worker, where a dozen small catalog queries cost more to plan
 * than the erasure itself.
 */
CREATE FUNCTION privacy_guard._erase_targets()
RETURNS SETOF privacy_guard.erase_target
AS 'MODULE_PATHNAME', 'pvg_erase_targets'
LANGUAGE C STABLE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION privacy_guard._erase_targets() IS 'Internal: the protected tables a round erases subjects from, in erasure order';

/*
 * Receipt counts of two passes of one request, per table and action:
 * deleted and anonymized rows add up; restricted rows are the later
 * pass's count (the rows a hold still keeps), and vanish at zero.
 */
CREATE FUNCTION privacy_guard._merge_counts(earlier jsonb, later jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(jsonb_object_agg(y.tbl, y.acts), '{}')
	  FROM (SELECT x.tbl, jsonb_object_agg(x.act, x.n) AS acts
			  FROM (SELECT u.tbl, u.act,
						   CASE WHEN u.act = 'restricted' THEN coalesce(sum(u.n) FILTER (WHERE u.src = 2), 0)
								ELSE sum(u.n) END AS n
					  FROM (SELECT 1 AS src, t.key AS tbl, a.key AS act, a.value::bigint AS n
							  FROM jsonb_each($1) t, jsonb_each_text(t.value) a
							UNION ALL
							SELECT 2, t.key, a.key, a.value::bigint
							  FROM jsonb_each($2) t, jsonb_each_text(t.value) a) u
					 GROUP BY u.tbl, u.act) x
			 WHERE x.n > 0
			 GROUP BY x.tbl) y
$$;
COMMENT ON FUNCTION privacy_guard._merge_counts(jsonb, jsonb) IS 'Internal: add up the receipt counts of two passes of a request';

/*
 * The condition an engine statement or subject_report finds a subject's
 * rows by, for a subject column (expr, of base type typ) and the key as $1:
 * the rules know a row's subject by its value's text form (its bytes for
 * text and varchar), so the rows found must be exactly the rows the rules
 * hide.  The type's own equality (which an index can serve) may be coarser:
 * a column under a non-deterministic collation has 'BOB' = 'bob', numeric
 * has 1.0 = 1.00, float8 has -0 = 0; so the text form must match too,
 * compared byte by byte (COLLATE "C"), or another person's rows would be
 * erased or reported.
 */
CREATE FUNCTION privacy_guard._subject_cond(expr text, typ regtype)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.format('(%1$s OPERATOR(pg_catalog.=) $1::%2$s AND '
							 'pg_catalog.format(''%%s'', %1$s) COLLATE pg_catalog."C" OPERATOR(pg_catalog.=) $1)',
							 $1, $2)
$$;
COMMENT ON FUNCTION privacy_guard._subject_cond(text, regtype) IS 'Internal: the condition finding a subject''s rows by the text form the rules know it by';

/*
 * Whether no other transaction of the database can still commit, or read
 * after the erasure, a row of the subject that this round's statements
 * could not see.  A forget request becomes done only in a round for which
 * this holds both before its statements take their snapshots and after
 * they ran; otherwise it stays pending (its rows hidden) and the next
 * round erases again.  Not settled while, in the database:
 *  - a transaction is prepared (PREPARE TRANSACTION): its rows are
 *	  invisible until COMMIT PREPARED, and when it began is not known;
 *  - another transaction began before the request's first erasure
 *	  (erased_at): it may have read the rows then and write them again;
 *  - another transaction, whenever it began, has a transaction id and
 *	  holds a write lock on a table the subject's rows can be in (rels, and
 *	  with with_tagged every table with a tagged column):
 *	  it may hold an uncommitted row of the subject;
 *  - another transaction holds a snapshot between its statements (a
 *	  REPEATABLE READ transaction, an open cursor): it may still see rows
 *	  the round erases, and read them once the request no longer hides
 *	  them.
 * Autovacuum writes no rows of tables.
 */
CREATE FUNCTION privacy_guard._writers_settled(dboid oid, erased_at timestamptz, rels oid[],
											   with_tagged boolean)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* the functions behind pg_stat_activity, pg_locks and pg_prepared_xacts, without their joins */
	RETURN NOT EXISTS (
			SELECT 1 FROM pg_prepared_xact() p
			 WHERE p.dbid = _writers_settled.dboid)
	   AND NOT EXISTS (
			SELECT 1 FROM pg_stat_get_activity(NULL) a
			 WHERE a.datid = _writers_settled.dboid
			   AND a.pid <> pg_backend_pid()
			   AND a.backend_type <> 'autovacuum worker'
			   AND (a.xact_start < _writers_settled.erased_at
					OR (a.backend_xmin IS NOT NULL AND a.state LIKE 'idle in transaction%')
					OR (a.backend_xid IS NOT NULL
						AND EXISTS (
							SELECT 1 FROM pg_lock_status() l
							 WHERE l.pid = a.pid
							   AND l.locktype = 'relation'
							   AND l.database = _writers_settled.dboid
							   AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock',
											  'ExclusiveLock', 'AccessExclusiveLock')
							   AND (l.relation = ANY (_writers_settled.rels)
									/* tables with tagged columns: looked up only when someone writes */
									OR (_writers_settled.with_tagged
										AND l.relation IN (SELECT c.relid::oid
															 FROM privacy_guard._tagged_columns() c)))))));
END
$$;
COMMENT ON FUNCTION privacy_guard._writers_settled(oid, timestamptz, oid[], boolean) IS 'Internal: whether no transaction of the database in flight can still commit or read rows of a subject being erased from the given tables (a forget request may close)';

/*
 * Carry out one forget request in every protected table, or nothing: any
 * error (a foreign key from an unprotected table, a trigger or rule that
 * keeps rows) rolls the whole request back and leaves it blocked, its rows
 * still hidden.  Rows in a table under a legal hold stay until their
 * retention_column + keep; the request is then `restricted` and later
 * rounds finish it.
 */
CREATE FUNCTION privacy_guard._erase_subject(req privacy_guard.erasure_request, secret bytea,
		targets privacy_guard.erase_target[], with_tagged boolean)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t privacy_guard.erase_target;
	v_type regtype;
	v_canon text;
	v_last_base regtype;
	v_cond text;
	v_held text;
	v_target regclass;
	v_n bigint;
	v_part_n bigint;
	v_left bigint;
	v_kept bigint;
	v_part_kept bigint;
	v_restricted bigint := 0;
	v_counts jsonb := '{}';
	v_touched oid[] := '{}';
	v_table regclass;
	v_own_error text;
	v_constraint text;
	v_schema text;
	v_relname text;
	v_start timestamptz := clock_timestamp();
	v_settled boolean;
	v_rels oid[];
	v_consents bigint;
	v_dboid oid := (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
BEGIN
	/*
	 * Before any statement of this round takes its snapshot: a row committed
	 * by a transaction that has ended by now is seen by every statement
	 * below; one still in flight blocks the closing (see _writers_settled).
	 */
	v_rels := ARRAY(SELECT DISTINCT x FROM unnest(_erase_subject.targets) tg, unnest(tg.targets::oid[] || tg.leaves) x);
	v_settled := privacy_guard._writers_settled(v_dboid, coalesce(req.erased_at, v_start), v_rels, with_tagged);
	BEGIN
		FOREACH t IN ARRAY targets LOOP
			v_table := t.relid;
			v_type := t.subject_type;
			IF v_type IS NULL THEN
				/* the subject column is gone: the same error as elsewhere, and blocked */
				PERFORM privacy_guard._column_type(t.relid, t.subject_column, 'subject');
			END IF;
			IF v_last_base IS DISTINCT FROM t.base_type THEN
				v_last_base := t.base_type;
				BEGIN
					/* the base type: a domain's checks are the table owner's code */
					EXECUTE format('SELECT ($1::%s)::text', t.base_type) INTO v_canon USING req.subject;
				EXCEPTION WHEN data_exception THEN
					v_canon := NULL;	/* no value of the column has this key as its text form */
				END;
			END IF;
			/* the rules hide a row by its value's text form: '078' is not subject 78 */
			CONTINUE WHEN v_canon IS DISTINCT FROM req.subject;
			/* operators named in full: the owner's schema may plant a closer match */
			v_cond := privacy_guard._subject_cond(quote_ident(t.subject_column), v_type);
			v_held := 'false';
			IF t.hold_keep IS NOT NULL THEN
				/* rows within the legal hold are kept, restricted */
				v_held := privacy_guard._time_cond(t.retention_column, t.hold_keep, false, now());
			END IF;
			v_n := 0;
			v_kept := 0;
			/* the table with its partitions and children, and parts detached from it since */
			FOREACH v_target IN ARRAY t.targets LOOP
				v_table := v_target;
				v_part_kept := 0;
				BEGIN
					v_part_n := privacy_guard._exec_as_owner(v_target,
							format('%s WHERE %s AND (%s) IS NOT TRUE',
								   CASE WHEN t.anonymize_set IS NULL THEN format('DELETE FROM %s', v_target)
										ELSE format('UPDATE %s SET %s', v_target, t.anonymize_set) END,
								   v_cond, v_held),
							req.subject, secret);
				EXCEPTION WHEN foreign_key_violation THEN
					/*
					 * Rows a legal hold keeps in a protected table still refer
					 * to these: they stay too (hidden) until the hold lets go
					 * of them.  Any other reference blocks the request (below).
					 */
					GET STACKED DIAGNOSTICS v_schema = SCHEMA_NAME, v_relname = TABLE_NAME;
					IF NOT EXISTS (
							SELECT 1 FROM privacy_guard.protected_part pp
							  JOIN privacy_guard.protected_table p ON p.relid = pp.root
							  JOIN pg_class c ON c.oid = pp.target
							  JOIN pg_namespace n ON n.oid = c.relnamespace
							 WHERE c.relname = v_relname AND n.nspname = v_schema
							   AND p.hold_keep IS NOT NULL) THEN
						RAISE;
					END IF;
					v_part_n := 0;
					v_part_kept := privacy_guard._exec_as_owner(v_target,
							format('SELECT pg_catalog.count(*) FROM %s WHERE %s', v_target, v_cond),
							req.subject, NULL);
				END;
				/*
				 * A trigger or rule of the owner may have kept rows: look.
				 * Without either, the DELETE or UPDATE took every row its
				 * snapshot saw (rows committed since are the settling's job).
				 */
				v_left := 0;
				IF t.owner_code OR v_part_kept > 0 THEN
					v_left := privacy_guard._exec_as_owner(v_target,
								format('SELECT pg_catalog.count(*) FROM %s WHERE %s AND (%s) IS NOT TRUE',
									   v_target, v_cond, v_held),
								req.subject, NULL);
				END IF;
				IF v_left > v_part_kept THEN
					v_own_error := format('table %s kept %s of the subject''s rows', v_target, v_left - v_part_kept);
					RAISE EXCEPTION '%', v_own_error
						USING ERRCODE = '55000',
							  DETAIL = 'A trigger or rule on the table prevented the erasure.';
				END IF;
				IF t.hold_keep IS NOT NULL AND v_part_kept = 0 THEN
					v_part_kept := privacy_guard._exec_as_owner(v_target,
							format('SELECT pg_catalog.count(*) FROM %s WHERE %s AND (%s)', v_target, v_cond, v_held),
							req.subject, NULL);
				END IF;
				v_n := v_n + v_part_n;
				v_kept := v_kept + v_part_kept;
			END LOOP;
			IF v_n > 0 THEN
				/* the old row versions live on in the tables until vacuumed */
				v_touched := v_touched || t.leaves;
			END IF;
			v_table := t.relid;
			v_restricted := v_restricted + v_kept;
			IF v_kept > 0 THEN
				/* a later pass's count of kept rows replaces this one (see _merge_counts) */
				v_counts := v_counts || jsonb_build_object(t.relid::text,
					jsonb_build_object('restricted', v_kept) ||
					CASE WHEN v_n > 0 THEN jsonb_build_object(
						CASE t.on_forget WHEN 'delete' THEN 'deleted' ELSE 'anonymized' END, v_n)
						 ELSE '{}' END);
			ELSIF v_n > 0 THEN
				v_counts := v_counts || jsonb_build_object(t.relid::text,
					jsonb_build_object(CASE t.on_forget WHEN 'delete' THEN 'deleted' ELSE 'anonymized' END, v_n));
			END IF;
		END LOOP;
		/* the subject's tagged values, in every tagged column of the database */
		IF with_tagged THEN
			BEGIN
				SELECT v_counts || e.counts, v_touched || e.touched INTO v_counts, v_touched
				  FROM privacy_guard._erase_tagged(req.subject, secret) e;
			EXCEPTION WHEN object_not_in_prerequisite_state THEN
				/* _erase_tagged's own (class 55: 55000, or 55P03 for locked rows): a column, an SQLSTATE */
				v_own_error := SQLERRM;
				RAISE EXCEPTION '%', v_own_error USING ERRCODE = '55000';
			END;
		END IF;
		/* the receipt keeps the history, with the key replaced by its digest */
		WITH ledger AS (
			UPDATE privacy_guard.consent_ledger l SET subject = req.subject_digest
			 WHERE l.subject = req.subject RETURNING 1),
		current AS (
			DELETE FROM privacy_guard.consent_state c WHERE c.subject = req.subject RETURNING 1)
		SELECT (SELECT count(*) FROM ledger) + (SELECT count(*) FROM current) INTO v_consents;
		/*
		 * Checked again now that the statements have run: a transaction that
		 * began writing during them may hold an uncommitted row of the
		 * subject that none of them could see (see _writers_settled).
		 */
		v_settled := v_settled AND privacy_guard._writers_settled(v_dboid, coalesce(req.erased_at, v_start), v_rels,
																	   with_tagged);
		IF v_restricted > 0 OR NOT v_settled THEN
			/* the raw key stays: later rounds finish the request */
			UPDATE privacy_guard.erasure_request r
			   SET state = CASE WHEN v_restricted > 0 THEN 'restricted' ELSE 'pending' END,
				   changed_xid = pg_current_xact_id(),
				   counts = CASE WHEN r.counts = '{}' THEN v_counts ELSE privacy_guard._merge_counts(r.counts, v_counts) END, error = NULL,
				   erased_at = coalesce(r.erased_at, v_start),
				   touched = ARRAY(SELECT DISTINCT x FROM unnest(r.touched || v_touched) AS x)
			 WHERE r.id = req.id;
			RETURN CASE WHEN v_restricted > 0 THEN 'restricted' ELSE 'pending' END;
		ELSIF req.erased_at IS NULL AND req.counts = '{}' AND v_counts = '{}' AND v_consents = 0
			  AND cardinality(privacy_guard._key_misspellings(req.subject)) > 0 THEN
			/*
			 * Nothing of the key anywhere, and it spells a value of a
			 * subject column other than as the column shows it: the request
			 * was meant for that value and erased nothing, so it must not
			 * read done (forget() refuses such keys when no text subject
			 * column could hold them).
			 */
			UPDATE privacy_guard.erasure_request r
			   SET state = 'blocked', changed_xid = pg_current_xact_id(),
				   error = format('the key is another spelling of a %s value and nothing was found under it: file the request with the key as the subject column shows it',
								  array_to_string(privacy_guard._key_misspellings(req.subject), ' or '))
			 WHERE r.id = req.id;
			RETURN 'blocked';
		ELSE
			UPDATE privacy_guard.erasure_request r
			   SET state = 'done', completed_at = clock_timestamp(), changed_xid = pg_current_xact_id(),
				   counts = CASE WHEN r.counts = '{}' THEN v_counts ELSE privacy_guard._merge_counts(r.counts, v_counts) END,
				   erased_at = coalesce(r.erased_at, v_start),
				   subject = NULL, error = NULL,
				   touched = ARRAY(SELECT DISTINCT x FROM unnest(r.touched || v_touched) AS x),
				   unreachable_at = CASE WHEN r.touched || v_touched = '{}' THEN clock_timestamp() END
			 WHERE r.id = req.id;
			RETURN 'done';
		END IF;
	EXCEPTION
		WHEN foreign_key_violation THEN
			GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME, v_schema = SCHEMA_NAME,
									v_relname = TABLE_NAME;
			UPDATE privacy_guard.erasure_request r
			   SET state = 'blocked',
				   error = format('foreign key %s of table %s, which is not protected, still refers to the subject''s rows in %s',
								  quote_ident(v_constraint), quote_ident(v_schema) || '.' || quote_ident(v_relname), v_table)
			 WHERE r.id = req.id;
		WHEN lock_not_available THEN
			UPDATE privacy_guard.erasure_request r
			   SET state = 'blocked',
				   error = format('rows in %s are locked by another transaction; the next round retries', v_table)
			 WHERE r.id = req.id;
		WHEN query_canceled THEN
			/* only the engine's own time limit; a cancel from anyone else goes on */
			IF NOT privacy_guard._engine_timed_out() THEN
				RAISE;
			END IF;
			UPDATE privacy_guard.erasure_request r
			   SET state = 'blocked',
				   error = format('erasing from %s took longer than privacy_guard.engine_time_limit; the next round retries', v_table)
			 WHERE r.id = req.id;
		WHEN OTHERS THEN
			/* only our own message is kept: the owner's code may have put data in its own */
			UPDATE privacy_guard.erasure_request r
			   SET state = 'blocked',
				   error = CASE WHEN SQLSTATE = '55000' AND SQLERRM = v_own_error THEN SQLERRM
								ELSE format('error %s while erasing from %s', SQLSTATE, v_table) END
			 WHERE r.id = req.id;
	END;
	RETURN 'blocked';
END
$$;
COMMENT ON FUNCTION privacy_guard._erase_subject(privacy_guard.erasure_request, bytea, privacy_guard.erase_target[], boolean) IS 'Internal: carry out one forget request, or nothing; returns the request''s state';


/*
 * Forget requests in sets.  When many requests are due at once, a round
 * erases a set of subjects (of different keys) with one statement per
 * table, in the same order as one request (referencing tables first), as
 * each table's owner, the keys passed as a parameter (never written into
 * the statement).  The outcome of each request is the one it would have
 * had alone: the same receipt counts per table, restricted rows under a
 * legal hold, settling, spellings of a key found nowhere.  Anything the
 * set statements cannot settle for every request of the set at once (a
 * foreign key that blocks, a trigger or rule that keeps rows, a domain
 * check, tagged values that cannot be erased) raises, and the set is rolled
 * back and split (_forget_set), down to requests one at a time
 * (_erase_subject), which leave a request blocked as they always did.
 */

/*
 * _set_as_owner(tbl, sql, keys, secret): one statement of a set of forget
 * requests as the owner of tbl, like _exec_as_owner, with the keys as $1;
 * returns the jsonb its one row holds, or NULL.
 */
CREATE FUNCTION privacy_guard._set_as_owner(tbl regclass, sql text, keys text[], secret bytea)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'pvg_set_as_owner'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._set_as_owner(regclass, text, text[], bytea) IS 'Internal: run a statement of a set of forget requests with the table owner''s rights';

/*
 * Each key of a set with its text form as a value of the base type typ,
 * or NULL where the key is no value of it.  The rules know a row's subject
 * by that form: a key equal to it names rows of a column of that type, a
 * key that differs spells a value otherwise (see _key_misspellings, which
 * names the types for one key).  The base type only: a domain's checks are
 * the table owner's code.
 */
CREATE FUNCTION privacy_guard._keys_canon(keys text[], typ regtype, OUT key text, OUT canon text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_key text;
	v_one text;
	v_canon text[];
BEGIN
	IF typ IN ('text'::regtype, 'varchar'::regtype) THEN
		v_canon := keys;
	ELSE
		BEGIN
			EXECUTE format('SELECT pg_catalog.array_agg((k.k::%s)::text ORDER BY k.i) '
						   'FROM pg_catalog.unnest($1) WITH ORDINALITY AS k(k, i)', typ)
			   INTO v_canon USING keys;
		EXCEPTION WHEN data_exception THEN
			/* some key is no value of the type: one at a time */
			v_canon := '{}';
			FOREACH v_key IN ARRAY keys LOOP
				BEGIN
					EXECUTE format('SELECT ($1::%s)::text', typ) INTO v_one USING v_key;
				EXCEPTION WHEN data_exception THEN
					v_one := NULL;
				END;
				v_canon := v_canon || v_one;
			END LOOP;
		END;
	END IF;
	RETURN QUERY SELECT x.k, x.c FROM unnest(keys, v_canon) AS x(k, c);
END
$$;
COMMENT ON FUNCTION privacy_guard._keys_canon(text[], regtype) IS 'Internal: each key with its text form as a value of a type, or NULL';

/*
 * _set_counts(statements) -> each key's counts from the statements of a set
 * of forget requests (_erase_set): {table: {action: rows}}, the rows kept
 * under a legal hold, and the tables written to as bits (forget_sets.c).
 */
CREATE FUNCTION privacy_guard._set_counts(statements jsonb,
		OUT key text, OUT counts jsonb, OUT kept bigint, OUT mask bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pvg_set_counts'
LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION privacy_guard._set_counts(jsonb) IS 'Internal: each key''s counts from the statements of a set of forget requests';

/*
 * One set of forget requests (of different keys) in every protected table,
 * or an error (then nothing of it stays: the caller runs it in a
 * subtransaction and carries the requests out otherwise).  Each request
 * ends as _erase_subject would end it alone.
 */
CREATE FUNCTION privacy_guard._erase_set(reqs privacy_guard.erasure_request[], secret bytea,
		targets privacy_guard.erase_target[], with_tagged boolean,
		OUT done integer, OUT blocked integer, OUT restricted integer)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t privacy_guard.erase_target;
	v_start timestamptz := clock_timestamp();
	v_dboid oid := (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
	v_rels oid[];
	v_keys text[] := ARRAY(SELECT q.subject FROM unnest(reqs) q);
	v_type_keys text[];
	v_last_base regtype;
	v_target regclass;
	v_join text;
	v_cond text;
	v_any text;
	v_test text;
	v_ret text;
	v_held text;
	v_act text;
	v_n jsonb;
	v_found boolean;
	v_left bigint;
	v_out jsonb := '[]';		/* per statement: {"t": table, "i": its place in v_leaves, "a": action, "k": [keys], "n": [rows]} */
	v_leaves jsonb := '[]';		/* per table with rows: the plain tables that hold them */
	v_tagged jsonb := '{}';		/* per key: {"counts": ..., "touched": [...]} */
	v_consents jsonb;
	v_when timestamptz[];
	v_before boolean[];
	v_after boolean[];
	v_key text;
	v_misspelt text[] := '{}';
	e record;
BEGIN
	/* as for one request: settled before any statement takes its snapshot (see _writers_settled) */
	v_rels := ARRAY(SELECT DISTINCT x FROM unnest(_erase_set.targets) tg, unnest(tg.targets::oid[] || tg.leaves) x);
	v_when := ARRAY(SELECT DISTINCT coalesce(q.erased_at, v_start) FROM unnest(reqs) q ORDER BY 1);
	v_before := ARRAY(SELECT privacy_guard._writers_settled(v_dboid, w, v_rels, with_tagged)
						FROM unnest(v_when) WITH ORDINALITY AS u(w, i) ORDER BY u.i);
	/* the keys come in as a parameter, joined by this name (no column of a table is likely to have it) */
	v_join := 'pg_catalog.unnest($1) AS "privacy_guard keys"("privacy_guard key")';
	FOREACH t IN ARRAY targets LOOP
		IF t.subject_type IS NULL THEN
			/* the subject column is gone: one at a time, each blocked as before */
			RAISE EXCEPTION 'subject column of table % is gone', t.relid USING ERRCODE = '55000';
		END IF;
		IF v_last_base IS DISTINCT FROM t.base_type THEN
			/*
			 * The keys in the type's text form, and (for requests that
			 * find nothing) those that spell a value of it otherwise.
			 */
			v_last_base := t.base_type;
			SELECT coalesce(array_agg(k.key) FILTER (WHERE k.canon OPERATOR(pg_catalog.=) k.key), '{}'),
				   v_misspelt || coalesce(array_agg(k.key) FILTER (WHERE k.canon OPERATOR(pg_catalog.<>) k.key), '{}')
			  INTO v_type_keys, v_misspelt
			  FROM privacy_guard._keys_canon(v_keys, t.base_type) k;
		END IF;
		CONTINUE WHEN cardinality(v_type_keys) = 0;
		/* the condition of _subject_cond, against each key of the set */
		/*
		 * (The text forms' test as IS TRUE: a join filter, never a hash
		 * key, so only the rows the type's equality found are formatted.)
		 * Of the integer types and uuid, equal values show the same text,
		 * and every key left is a value's text form (_keys_canon): the
		 * equality alone finds exactly the rows the rules know by the key.
		 */
		IF t.base_type IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'uuid'::regtype) THEN
			v_test := '%1$I OPERATOR(pg_catalog.=) %2$s';
			/* a deleted row's key: its value, formatted once per key below */
			v_ret := format('%I', t.subject_column);
		ELSE
			v_test := '%1$I OPERATOR(pg_catalog.=) %2$s AND '
					  '(pg_catalog.format(''%%s'', %1$I) COLLATE pg_catalog."C" OPERATOR(pg_catalog.=) %3$s) IS TRUE';
			/* equal values of other types may show different text: each row's own */
			v_ret := format('pg_catalog.format(''%%s'', %I)', t.subject_column);
		END IF;
		/* the test against one key of a join, and against the keys as one array */
		v_cond := format(v_test, t.subject_column, format('"privacy_guard key"::%s', t.subject_type), '"privacy_guard key"');
		v_any := format(v_test, t.subject_column, format('ANY ($1::%s[])', t.subject_type), 'ANY ($1)');
		v_held := 'false';
		IF t.hold_keep IS NOT NULL THEN
			v_held := privacy_guard._time_cond(t.retention_column, t.hold_keep, false, now());
		END IF;
		v_act := CASE t.on_forget WHEN 'delete' THEN 'deleted' ELSE 'anonymized' END;
		v_found := false;
		FOREACH v_target IN ARRAY t.targets LOOP
			/*
			 * [[keys], [rows]] of the keys with rows, or NULL: two arrays
			 * build cheaper than an object of a thousand keys, which sorts
			 * them.  A row deleted names its key by its subject's text form (the
			 * key, as the conditions require; of the integer types and
			 * uuid, formatted once per key, not per row): the keys as one
			 * array probe the table's index in order, cheaper than a join
			 * over them.  An anonymized row's new values may no longer
			 * name it: the join keeps each row's key.
			 */
			v_n := privacy_guard._set_as_owner(v_target,
					format('WITH d AS (%s) '
						   'SELECT pg_catalog.jsonb_build_array(pg_catalog.to_jsonb(pg_catalog.array_agg(pg_catalog.format(''%%s'', x.k))), '
						   'pg_catalog.to_jsonb(pg_catalog.array_agg(x.n))) FROM '
						   '(SELECT d."privacy_guard key" AS k, pg_catalog.count(*) AS n FROM d GROUP BY 1) x '
						   'HAVING pg_catalog.count(*) > 0',
						   CASE WHEN t.anonymize_set IS NULL
								THEN format('DELETE FROM %s WHERE %s AND (%s) IS NOT TRUE '
											'RETURNING %s AS "privacy_guard key"',
											v_target, v_any, v_held, v_ret)
								ELSE format('UPDATE %s SET %s FROM %s WHERE %s AND (%s) IS NOT TRUE RETURNING "privacy_guard key"',
											v_target, t.anonymize_set, v_join, v_cond, v_held) END),
					v_type_keys, secret);
			IF v_n IS NOT NULL THEN
				v_out := v_out || jsonb_build_object('t', t.relid::text, 'i', jsonb_array_length(v_leaves),
													 'a', v_act, 'k', v_n -> 0, 'n', v_n -> 1);
				v_found := true;
			END IF;
			/* a trigger or rule of the owner may have kept rows: one at a time finds whose */
			IF t.owner_code THEN
				v_left := (privacy_guard._set_as_owner(v_target,
						format('SELECT pg_catalog.to_jsonb(pg_catalog.count(*)) FROM %s, %s WHERE %s AND (%s) IS NOT TRUE',
							   v_target, v_join, v_cond, v_held),
						v_type_keys, NULL))::text::bigint;
				IF v_left > 0 THEN
					RAISE EXCEPTION 'table % kept rows of a set', v_target USING ERRCODE = '55000';
				END IF;
			END IF;
			/* rows within the legal hold are kept, restricted */
			IF t.hold_keep IS NOT NULL THEN
				v_n := privacy_guard._set_as_owner(v_target,
						format('SELECT pg_catalog.jsonb_build_array(pg_catalog.to_jsonb(pg_catalog.array_agg(x.k)), '
							   'pg_catalog.to_jsonb(pg_catalog.array_agg(x.n))) FROM '
							   '(SELECT "privacy_guard key" AS k, pg_catalog.count(*) AS n FROM %s, %s WHERE %s AND (%s) '
							   'GROUP BY 1) x HAVING pg_catalog.count(*) > 0',
							   v_target, v_join, v_cond, v_held),
						v_type_keys, NULL);
				IF v_n IS NOT NULL THEN
					v_out := v_out || jsonb_build_object('t', t.relid::text, 'i', jsonb_array_length(v_leaves),
														 'a', 'restricted', 'k', v_n -> 0, 'n', v_n -> 1);
					v_found := true;
				END IF;
			END IF;
		END LOOP;
		IF v_found THEN
			v_leaves := v_leaves || jsonb_build_array(to_jsonb(t.leaves));
		END IF;
	END LOOP;
	/* the subjects' tagged values, in every tagged column of the database */
	IF with_tagged THEN
		FOREACH v_key IN ARRAY v_keys LOOP
			SELECT x.counts, x.touched INTO e FROM privacy_guard._erase_tagged(v_key, secret) x;
			IF e.counts <> '{}' OR cardinality(e.touched) > 0 THEN
				v_tagged := v_tagged || jsonb_build_object(v_key,
					jsonb_build_object('counts', e.counts, 'touched', to_jsonb(e.touched)));
			END IF;
		END LOOP;
	END IF;
	/* the receipts keep the history, with the keys replaced by their digests */
	WITH ledger AS (
		UPDATE privacy_guard.consent_ledger l SET subject = q.subject_digest
		  FROM unnest(reqs) q
		 WHERE l.subject = q.subject RETURNING q.subject),
	current AS (
		DELETE FROM privacy_guard.consent_state c WHERE c.subject = ANY (v_keys) RETURNING c.subject)
	SELECT coalesce(jsonb_object_agg(a.subject, a.n), '{}') INTO v_consents
	  FROM (SELECT b.subject, count(*) AS n
			  FROM (SELECT l.subject FROM ledger l UNION ALL SELECT c.subject FROM current c) b
			 GROUP BY b.subject) a;
	/* and settled again now that the statements have run */
	v_after := ARRAY(SELECT privacy_guard._writers_settled(v_dboid, w, v_rels, with_tagged)
					   FROM unnest(v_when) WITH ORDINALITY AS u(w, i) ORDER BY u.i);

	WITH per_key AS (
		/*
		 * Each key's counts {table: {action: rows}}, rows kept under a legal
		 * hold, and the tables rows were deleted or anonymized in (their
		 * leaves were written to), as bits of their places in v_leaves.
		 */
		SELECT c.key, c.counts, c.kept, c.mask FROM privacy_guard._set_counts(v_out) c),
	touched AS (
		SELECT m.mask,
			   ARRAY(SELECT DISTINCT l.v::oid
					   FROM generate_series(0, jsonb_array_length(v_leaves) - 1) AS i(i),
							jsonb_array_elements_text(v_leaves -> i.i) AS l(v)
					  WHERE m.mask & (1::bigint << i.i) <> 0) AS touched
		  FROM (SELECT DISTINCT p.mask FROM per_key p WHERE p.mask IS NOT NULL) m),
	o AS (
		SELECT q.id, q.subject, q.erased_at, q.counts AS old_counts,
			   coalesce(pk.counts, '{}') || coalesce(v_tagged #> ARRAY[q.subject, 'counts'], '{}') AS counts,
			   CASE WHEN v_tagged ? q.subject
					THEN ARRAY(SELECT DISTINCT x FROM unnest(coalesce(tc.touched, '{}') ||
							   ARRAY(SELECT j.v::oid FROM jsonb_array_elements_text(v_tagged #> ARRAY[q.subject, 'touched']) j(v))) x)
					ELSE coalesce(tc.touched, '{}') END AS touched,	/* without duplicates */
			   coalesce(pk.kept, 0) AS kept,
			   v_before[array_position(v_when, coalesce(q.erased_at, v_start))]
				   AND v_after[array_position(v_when, coalesce(q.erased_at, v_start))] AS settled,
			   coalesce((v_consents ->> q.subject)::bigint, 0) AS consents
		  FROM unnest(reqs) q
		  LEFT JOIN per_key pk ON pk.key = q.subject
		  LEFT JOIN touched tc ON tc.mask = pk.mask),
	outcome AS (
		SELECT o.*,
			   CASE WHEN o.kept > 0 THEN 'restricted'
					WHEN NOT o.settled THEN 'pending'
					WHEN o.erased_at IS NULL AND o.old_counts = '{}' AND o.counts = '{}' AND o.consents = 0
						 AND o.subject = ANY (v_misspelt) THEN 'blocked'
					ELSE 'done' END AS state
		  FROM o),
	open AS (
		/* the raw key stays: later rounds finish the request */
		UPDATE privacy_guard.erasure_request r
		   SET state = u.state,
			   changed_xid = pg_current_xact_id(),
			   counts = CASE WHEN r.counts = '{}' THEN u.counts ELSE privacy_guard._merge_counts(r.counts, u.counts) END,
			   error = NULL,
			   erased_at = coalesce(r.erased_at, v_start),
			   touched = CASE WHEN r.touched = '{}' THEN u.touched ELSE ARRAY(SELECT DISTINCT x FROM unnest(r.touched || u.touched) AS x) END
		  FROM outcome u
		 WHERE r.id = u.id AND u.state IN ('restricted', 'pending')
		RETURNING u.state),
	misspelt AS (
		/* nothing of the key anywhere, and it spells a value otherwise (see _erase_subject) */
		UPDATE privacy_guard.erasure_request r
		   SET state = 'blocked', changed_xid = pg_current_xact_id(),
			   error = format('the key is another spelling of a %s value and nothing was found under it: file the request with the key as the subject column shows it',
							  array_to_string(privacy_guard._key_misspellings(u.subject), ' or '))
		  FROM outcome u
		 WHERE r.id = u.id AND u.state = 'blocked'
		RETURNING u.state),
	closed AS (
		UPDATE privacy_guard.erasure_request r
		   SET state = 'done', completed_at = clock_timestamp(), changed_xid = pg_current_xact_id(),
			   counts = CASE WHEN r.counts = '{}' THEN u.counts ELSE privacy_guard._merge_counts(r.counts, u.counts) END,
			   erased_at = coalesce(r.erased_at, v_start),
			   subject = NULL, error = NULL,
			   touched = CASE WHEN r.touched = '{}' THEN u.touched ELSE ARRAY(SELECT DISTINCT x FROM unnest(r.touched || u.touched) AS x) END,
			   unreachable_at = CASE WHEN r.touched || u.touched = '{}' THEN clock_timestamp() END
		  FROM outcome u
		 WHERE r.id = u.id AND u.state = 'done'
		RETURNING u.state)
	SELECT (SELECT count(*) FROM closed), (SELECT count(*) FROM misspelt),
		   (SELECT count(*) FROM open WHERE open.state = 'restricted')
	  INTO done, blocked, restricted;
END
$$;
COMMENT ON FUNCTION privacy_guard._erase_set(privacy_guard.erasure_request[], bytea, privacy_guard.erase_target[], boolean) IS 'Internal: carry out a set of forget requests with one statement per table, or raise';

/*
 * A set of forget requests (of different keys): in one go (_erase_set) if
 * it can, else split in two, and below a few requests one at a time
 * (_erase_subject).  A set that found rows locked, or took longer than
 * privacy_guard.engine_time_limit, goes one at a time at once: each
 * request then waits for its own rows only.
 */
CREATE FUNCTION privacy_guard._forget_set(reqs privacy_guard.erasure_request[], secret bytea,
		targets privacy_guard.erase_target[], with_tagged boolean,
		OUT done integer, OUT blocked integer, OUT restricted integer)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_n integer := cardinality(reqs);
	v_split boolean := true;
	r privacy_guard.erasure_request;
	v_state text;
	f record;
BEGIN
	done := 0;
	blocked := 0;
	restricted := 0;
	IF v_n >= 8 THEN
		BEGIN
			SELECT s.done, s.blocked, s.restricted INTO done, blocked, restricted
			  FROM privacy_guard._erase_set(reqs, secret, targets, with_tagged) s;
			RETURN;
		EXCEPTION
			WHEN query_canceled THEN
				/* only the engine's own time limit; a cancel from anyone else goes on */
				IF NOT privacy_guard._engine_timed_out() THEN
					RAISE;
				END IF;
				v_split := false;
			WHEN lock_not_available THEN
				v_split := false;
			WHEN OTHERS THEN
				NULL;
		END;
		IF v_split THEN
			FOR f IN SELECT s.* FROM (VALUES (reqs[1:v_n / 2]), (reqs[v_n / 2 + 1:v_n])) AS h(part),
							LATERAL privacy_guard._forget_set(h.part, secret, targets, with_tagged) s LOOP
				done := done + f.done;
				blocked := blocked + f.blocked;
				restricted := restricted + f.restricted;
			END LOOP;
			RETURN;
		END IF;
	END IF;
	FOREACH r IN ARRAY reqs LOOP
		v_state := privacy_guard._erase_subject(r, secret, targets, with_tagged);
		IF v_state = 'done' THEN
			done := done + 1;
		ELSIF v_state = 'restricted' THEN
			restricted := restricted + 1;
		ELSIF v_state = 'blocked' THEN
			blocked := blocked + 1;
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION privacy_guard._forget_set(privacy_guard.erasure_request[], bytea, privacy_guard.erase_target[], boolean) IS 'Internal: carry out a set of forget requests, in one go or split';
