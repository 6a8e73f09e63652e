/*
 * Forget requests carried out in sets when many are due.
 */

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

/*
 * Forget requests that are due, each in full or not at all, and how they
 * ended: all of them, or (the worker, which commits between calls) at most
 * max_requests with ids above after_id; last_id is the last one taken,
 * NULL when none was left.  A few requests are carried out one at a time
 * (_erase_subject); many at once in sets of different keys, one statement
 * per table for a set (_forget_set), and a later request of a key already
 * in a set after the sets, alone, as it would have come after it.  The
 * requests are read c_page at a time (a backlog is not held in memory).
 */
CREATE OR REPLACE FUNCTION privacy_guard._forget_due(round_at timestamptz, secret bytea,
		after_id bigint DEFAULT 0, max_requests integer DEFAULT NULL,
		OUT done integer, OUT blocked integer, OUT restricted integer, OUT last_id bigint)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c_set_from CONSTANT integer := 20;		/* due requests from which sets are used */
	c_set_size CONSTANT integer := 1000;	/* requests in a set */
	c_page CONSTANT integer := 10000;		/* requests read at a time */
	v_after bigint := after_id;
	v_taken integer := 0;
	r privacy_guard.erasure_request;
	v_reqs privacy_guard.erasure_request[];
	v_set privacy_guard.erasure_request[];
	v_later privacy_guard.erasure_request[];
	v_n integer;
	v_last bigint;
	v_state text;
	v_targets privacy_guard.erase_target[];
	v_tagged boolean;
	v_sets boolean;
	f record;
BEGIN
	done := 0;
	blocked := 0;
	restricted := 0;
	LOOP
		/* the first request of each key in v_reqs, any later one of the same key in v_later */
		SELECT coalesce(array_agg(y.e ORDER BY (y.e).id) FILTER (WHERE y.nth = 1), '{}'),
			   coalesce(array_agg(y.e ORDER BY (y.e).id) FILTER (WHERE y.nth > 1), '{}'),
			   count(*), max((y.e).id)
		  INTO v_reqs, v_later, v_n, v_last
		  FROM (SELECT x.e, row_number() OVER (PARTITION BY (x.e).subject ORDER BY (x.e).id) AS nth
				  FROM (SELECT e FROM privacy_guard.erasure_request e
						 WHERE e.state IN ('pending', 'blocked', 'restricted') AND e.subject IS NOT NULL
						   AND e.due <= round_at AND e.id > v_after
						 ORDER BY e.id
						 LIMIT least(c_page, max_requests - v_taken)) x) y;
		EXIT WHEN v_n = 0;
		last_id := v_last;
		v_after := v_last;
		v_taken := v_taken + v_n;
		IF v_targets IS NULL THEN
			/* what every request needs, looked up once per round */
			v_targets := ARRAY(SELECT x FROM privacy_guard._erase_targets() x);
			/*
			 * One index probe: any table column (or domain) of a tagged type
			 * or an array of one at all?  (Arrays of domains over a tagged
			 * type need the domain, found here.)
			 */
			v_tagged := EXISTS (SELECT 1 FROM pg_depend d
								 WHERE d.refclassid = 'pg_type'::regclass
								   AND d.refobjid IN ('privacy_guard.tagged_text'::regtype,
													  'privacy_guard.tagged_date'::regtype,
													  'privacy_guard.tagged_numeric'::regtype,
													  'privacy_guard.tagged_jsonb'::regtype,
													  'privacy_guard.tagged_text[]'::regtype,
													  'privacy_guard.tagged_date[]'::regtype,
													  'privacy_guard.tagged_numeric[]'::regtype,
													  'privacy_guard.tagged_jsonb[]'::regtype)
								   AND d.classid IN ('pg_class'::regclass, 'pg_type'::regclass)
								   AND d.deptype = 'n');
			/*
			 * Sets, unless a subject column is gone or a table has rules (a
			 * set's statement could not count rows per key there), or there
			 * are more tables than a set's bits name: then one at a time.
			 */
			v_sets := cardinality(v_targets) <= 63
					  AND NOT EXISTS (SELECT 1 FROM unnest(v_targets) t WHERE t.subject_type IS NULL)
					  AND NOT EXISTS (SELECT 1 FROM unnest(v_targets) t, unnest(t.targets) p, pg_class c
									   WHERE c.oid = p AND c.relhasrules);
		END IF;
		IF v_sets AND v_n >= c_set_from THEN
			FOR i IN 0 .. (cardinality(v_reqs) - 1) / c_set_size LOOP
				v_set := v_reqs[i * c_set_size + 1 : (i + 1) * c_set_size];
				f := privacy_guard._forget_set(v_set, secret, v_targets, v_tagged);
				done := done + f.done;
				blocked := blocked + f.blocked;
				restricted := restricted + f.restricted;
			END LOOP;
			v_reqs := '{}';
		END IF;
		/* one at a time: the later requests of a key after the first */
		FOREACH r IN ARRAY v_reqs || v_later LOOP
			v_state := privacy_guard._erase_subject(r, secret, v_targets, v_tagged);
			IF v_state = 'done' THEN
				done := done + 1;
			ELSIF v_state = 'restricted' THEN
				restricted := restricted + 1;
			ELSIF v_state = 'blocked' THEN
				blocked := blocked + 1;
			END IF;			/* pending: erased, waiting for older transactions to end */
		END LOOP;
		EXIT WHEN v_taken >= max_requests;
	END LOOP;
END
$$;
COMMENT ON FUNCTION privacy_guard._forget_due(timestamptz, bytea, bigint, integer) IS 'Internal: carry out the forget requests that are due (all, or a chunk of them)';

REVOKE ALL ON FUNCTION privacy_guard._set_as_owner(regclass, text, text[], bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy_guard._keys_canon(text[], regtype) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy_guard._set_counts(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy_guard._erase_set(privacy_guard.erasure_request[], bytea, privacy_guard.erase_target[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy_guard._forget_set(privacy_guard.erasure_request[], bytea, privacy_guard.erase_target[], boolean) FROM PUBLIC;
