/* ---------------------------------------------------------------- subject report */

/*
 * The select list subject_report reads a table's rows with (alias x): every
 * column, the tagged ones through _tag_report_value ($1 the subject, $2 the
 * digest key), so that reading as an owner the rules bind neither fails on
 * a withheld value nor shows a value tagged for someone else.
 */
CREATE FUNCTION privacy_guard._report_columns(tbl regclass)
RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(string_agg(CASE WHEN a.atttypid IN (SELECT privacy_guard._tagged_types())
									THEN format('privacy_guard._tag_report_value(x.%I, $1, $2) AS %1$I', a.attname)
									/* an array of tagged values: as an array of its elements, read the same way */
									WHEN a.atttypid IN (SELECT privacy_guard._tagged_array_types())
									THEN format('(SELECT pg_catalog.array_agg(privacy_guard._tag_report_value(v.v, $1, $2) '
												'ORDER BY v.n) FROM pg_catalog.unnest(x.%I) WITH ORDINALITY AS v(v, n)) AS %1$I',
												a.attname)
									/*
									 * tagged values the report cannot read for the subject
									 * alone (inside a composite type, an array of arrays):
									 * NULL, never another subject's value (check() names them)
									 */
									WHEN a.atttypid IN (SELECT privacy_guard._tagged_container_types())
									THEN format('NULL AS %I', a.attname)
									ELSE format('x.%I', a.attname) END,
							   ', ' ORDER BY a.attnum), '')
	  FROM pg_attribute a
	 WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION privacy_guard._report_columns(regclass) IS 'Internal: the select list of a subject report''s rows, tagged values read for the subject only';

/* Whether a key is the text form of some value of a type. */
CREATE FUNCTION privacy_guard._key_fits(key text, typ regtype)
RETURNS boolean
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_canon text;
BEGIN
	/* the base type: a domain's checks are the table owner's code */
	EXECUTE format('SELECT ($1::%s)::text', privacy_guard._base_type(typ)) INTO v_canon USING key;
	/* the rules, forget() and the receipts know a key by its text form: '042' is not 42 */
	RETURN v_canon = key;
EXCEPTION WHEN data_exception THEN
	RETURN false;
END
$$;
COMMENT ON FUNCTION privacy_guard._key_fits(text, regtype) IS 'Internal: whether a subject key is the canonical text form of a value of the type';

/*
 * Everything held about one subject (GDPR Art. 15, in a form fit for
 * Art. 20).  Rows are read as each table's owner with the rules lifted
 * (_read_as_owner), whatever the caller's purpose: the report is the
 * controller's answer.  Found are: the rows of every protected table whose
 * subject column holds the key; the rows of tables privacy_guard does not
 * protect that refer, by a foreign key, to those rows, and so on along
 * chains of up to 5 foreign keys through such tables (each table once); the
 * current consents and objections and their whole history in the ledger
 * (including entries kept under the key's digest after an erasure); the
 * erasure requests (found by the digest); and every tagged value, in any
 * table, whose tag names the subject (matched as the erasure matches them,
 * with the digest key, and read without the tagged-value rule the same way).  A tagged
 * column in a row already reported shows its value when the tag names the
 * subject or nobody, and null when it names someone else.  The key is only
 * ever a parameter; identifiers are quoted; comparisons use the subject
 * column's base type and pg_catalog's operators, foreign keys their own
 * operators.
 */
CREATE FUNCTION privacy_guard.subject_report(subject text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET IntervalStyle = iso_8601
AS $$
DECLARE
	v_digest text;
	v_secret bytea;
	t record;
	k record;
	tc record;
	v_tagged jsonb := '[]';
	v_base regtype;
	v_rows jsonb;
	v_keys jsonb;
	v_data jsonb := '[]';
	v_purposes text[] := '{}';
	v_report jsonb;
	v_walk jsonb;
	v_step jsonb;
	v_seen oid[];
	v_match text;
BEGIN
	PERFORM privacy_guard._check_subject(subject);
	v_digest := privacy_guard._subject_digest(subject);
	v_secret := privacy_guard._secret();

	FOR t IN SELECT pt.* FROM privacy_guard.protected_table pt ORDER BY pt.relid::text LOOP
		v_base := privacy_guard._base_type(privacy_guard._column_type(t.relid, t.subject_column, 'subject'));
		CONTINUE WHEN NOT privacy_guard._key_fits(subject, v_base);
		v_rows := privacy_guard._read_as_owner(t.relid,
			format('SELECT pg_catalog.jsonb_agg(s.r ORDER BY s.r) FROM '
				   '(SELECT pg_catalog.to_jsonb(y.*) AS r FROM '
				   '(SELECT %s FROM %s x WHERE %s) y) s',
				   privacy_guard._report_columns(t.relid), t.relid,
				   privacy_guard._subject_cond('x.' || quote_ident(t.subject_column), v_base)),
			subject, v_secret, NULL);
		CONTINUE WHEN v_rows IS NULL;
		v_purposes := v_purposes || t.purposes || t.hold_purpose;
		v_data := v_data || jsonb_build_array(jsonb_build_object(
			'table', t.relid::text, 'found_by', 'subject column', 'subject_column', t.subject_column,
			'purposes', to_jsonb(t.purposes), 'retention', t.retention,
			'retention_column', t.retention_column, 'on_expiry', t.on_expiry,
			'on_forget', t.on_forget,
			'legal_hold', CASE WHEN t.hold_purpose IS NOT NULL
							   THEN jsonb_build_object('keep', t.hold_keep, 'purpose', t.hold_purpose) END,
			'rows', v_rows));

		/*
		 * Tables privacy_guard does not protect that refer to these rows,
		 * and tables that refer to those rows, along chains of foreign keys
		 * up to 5 steps long, each table expanded once: for each step, first
		 * the referenced key values (as the referenced table's owner), then
		 * the referring rows (as their table's owner), compared with the
		 * foreign key's own equality operators.  A step's rows are those of
		 * its table that match the previous step's keys ($3).
		 */
		v_walk := jsonb_build_array(jsonb_build_object(
			'tbl', t.relid::oid, 'depth', 0, 'keys', NULL,
			'pred', privacy_guard._subject_cond('x.' || quote_ident(t.subject_column), v_base)));
		v_seen := ARRAY[t.relid::oid];
		WHILE jsonb_array_length(v_walk) > 0 LOOP
			v_step := v_walk -> 0;
			v_walk := v_walk - 0;
			CONTINUE WHEN (v_step ->> 'depth')::int >= 5;
			FOR k IN
				SELECT c.conname, c.conrelid::regclass AS child, c.confrelid::regclass AS parent,
					   (SELECT string_agg(format('x.%I', a.attname), ', ' ORDER BY u.n)
						  FROM unnest(c.confkey) WITH ORDINALITY AS u(attnum, n)
						  JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = u.attnum) AS pk_list,
					   (SELECT string_agg(format('(e.value OPERATOR(pg_catalog.->>) %s)::%s OPERATOR(%I.%s) x.%I', u.n - 1,
												 pa.atttypid::regtype, opn.nspname, op.oprname, fa.attname),
										  ' AND ' ORDER BY u.n)
						  FROM unnest(c.confkey, c.conkey, c.conpfeqop) WITH ORDINALITY AS u(pk, fk, eqop, n)
						  JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = u.pk
						  JOIN pg_attribute fa ON fa.attrelid = c.conrelid AND fa.attnum = u.fk
						  JOIN pg_operator op ON op.oid = u.eqop
						  JOIN pg_namespace opn ON opn.oid = op.oprnamespace) AS match
				  FROM pg_constraint c
				  JOIN pg_class cc ON cc.oid = c.conrelid
				 WHERE c.contype = 'f' AND c.conparentid = 0
				   AND c.confrelid IN (SELECT x FROM privacy_guard._tree_oids((v_step ->> 'tbl')::oid::regclass) AS x)
				   AND cc.relkind IN ('r', 'p')
				   AND cc.relnamespace <> 'privacy_guard'::regnamespace
				   AND NOT EXISTS (SELECT 1 FROM privacy_guard.protected_part q WHERE q.target = c.conrelid)
				 ORDER BY c.conrelid::regclass::text, c.conname
			LOOP
				v_keys := privacy_guard._read_as_owner(k.parent,
					format('SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(%s)) FROM %s x WHERE %s',
						   k.pk_list, k.parent, v_step ->> 'pred'), subject, NULL, v_step -> 'keys');
				CONTINUE WHEN v_keys IS NULL;
				v_match := format('EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements($3) AS e WHERE %s)', k.match);
				v_rows := privacy_guard._read_as_owner(k.child,
					format('SELECT pg_catalog.jsonb_agg(s.r ORDER BY s.r) FROM '
						   '(SELECT pg_catalog.to_jsonb(y.*) AS r FROM (SELECT %s FROM %s x WHERE %s) y) s',
						   privacy_guard._report_columns(k.child), k.child, v_match),
					subject, v_secret, v_keys);
				CONTINUE WHEN v_rows IS NULL;
				v_data := v_data || jsonb_build_array(jsonb_build_object(
					'table', k.child::text, 'found_by', 'foreign key', 'foreign_key', k.conname,
					'references', ((v_step ->> 'tbl')::oid::regclass)::text, 'protected', false, 'rows', v_rows));
				/* the rows found are about the person too: go on from them, once per table */
				IF NOT k.child::oid = ANY (v_seen) THEN
					v_seen := v_seen || k.child::oid;
					v_walk := v_walk || jsonb_build_array(jsonb_build_object(
						'tbl', k.child::oid, 'depth', (v_step ->> 'depth')::int + 1, 'keys', v_keys,
						'pred', v_match));
				END IF;
			END LOOP;
		END LOOP;
	END LOOP;

	/*
	 * Tagged values anywhere: every tagged column of every table (each
	 * table on its own, partitions included), read as its owner; the
	 * values whose tag names this subject, matched and read with the
	 * digest key.
	 */
	/* tagged values inside composites are erased, not listed (check() says so) */
	FOR tc IN SELECT * FROM privacy_guard._tagged_columns() c WHERE NOT c.nested LOOP
		/* in an array column, each element whose tag names the subject */
		v_rows := privacy_guard._read_as_owner(tc.relid,
			format('SELECT pg_catalog.jsonb_agg(s.r ORDER BY s.r) FROM '
				   '(SELECT pg_catalog.jsonb_build_object(''value'', privacy_guard._tag_report_value(v.v, $1, $2), '
				   '''purposes'', privacy_guard.tag_purposes(v.v), '
				   '''retain_until'', privacy_guard.tag_retain_until(v.v)) AS r '
				   'FROM ONLY %s x CROSS JOIN LATERAL %s AS v(v) WHERE privacy_guard._tag_erasable(v.v, $1, $2)) s',
				   tc.relid,
				   CASE WHEN tc.is_array THEN format('pg_catalog.unnest(x.%I)', tc.colname)
						ELSE format('(SELECT x.%I)', tc.colname) END),
			subject, v_secret, NULL);
		CONTINUE WHEN v_rows IS NULL;
		v_tagged := v_tagged || (
			SELECT jsonb_agg(jsonb_build_object('table', tc.relid::text, 'column', tc.colname) || e.value
							 ORDER BY e.n)
			  FROM jsonb_array_elements(v_rows) WITH ORDINALITY AS e(value, n));
		v_purposes := v_purposes || ARRAY(SELECT jsonb_array_elements_text(e.value -> 'purposes')
											FROM jsonb_array_elements(v_rows) AS e(value));
	END LOOP;

	SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') INTO v_purposes
	  FROM unnest(v_purposes || ARRAY(SELECT c.purpose FROM privacy_guard.consent_state c
									   WHERE c.subject = subject_report.subject)) AS x
	 WHERE x IS NOT NULL;

	v_report := jsonb_build_object(
		'subject', subject,
		'data', v_data,
		'tagged_values', v_tagged,
		'consents', coalesce((
			SELECT jsonb_agg(jsonb_build_object('purpose', c.purpose, 'status', c.status,
					'valid_until', c.valid_until, 'changed_at', c.changed_at,
					'active', c.status = 'granted' AND (c.valid_until IS NULL OR c.valid_until > now()))
					ORDER BY c.purpose)
			  FROM privacy_guard.consent_state c
			 WHERE c.subject = subject_report.subject AND c.status <> 'objected'), '[]'),
		'objections', coalesce((
			SELECT jsonb_agg(jsonb_build_object('purpose', c.purpose, 'objected_at', c.changed_at)
					ORDER BY c.purpose)
			  FROM privacy_guard.consent_state c
			 WHERE c.subject = subject_report.subject AND c.status = 'objected'), '[]'),
		'consent_history', coalesce((
			SELECT jsonb_agg(jsonb_build_object('purpose', l.purpose, 'action', l.action,
					'valid_until', l.valid_until, 'evidence', l.evidence, 'recorded_at', l.recorded_at)
					ORDER BY l.id)
			  FROM privacy_guard.consent_ledger l
			 WHERE l.subject IN (subject_report.subject, v_digest)), '[]'),
		'erasure_requests', coalesce((
			SELECT jsonb_agg(jsonb_build_object('id', r.id, 'state', r.state, 'reason', r.reason,
					'requested_at', r.requested_at, 'due', r.due, 'completed_at', r.completed_at,
					'counts', r.counts, 'unreachable_at', r.unreachable_at)
					ORDER BY r.id)
			  FROM privacy_guard.erasure_request r
			 WHERE r.subject_digest = v_digest), '[]'),
		'purposes', coalesce((
			SELECT jsonb_agg(jsonb_build_object('name', p.name, 'legal_basis', p.legal_basis,
					'description', p.description) ORDER BY p.name)
			  FROM privacy_guard.purpose p WHERE p.name = ANY (v_purposes)), '[]'),
		'generated_at', now());
	/* who received their data (GDPR Art. 15(1)(c)) */
	v_report := v_report || jsonb_build_object('recipients', privacy_guard._report_recipients(v_digest));
	RETURN v_report;
END
$$;
COMMENT ON FUNCTION privacy_guard.subject_report(text) IS 'Everything held about one subject (GDPR Art. 15 and 20), as jsonb';

