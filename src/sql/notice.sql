/* ---------------------------------------------------------------- privacy notice */

/* "customer_email" -> "customer email"; identifiers are shown as words. */
CREATE FUNCTION privacy_guard._human_name(ident text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT btrim(regexp_replace(replace($1, '_', ' '), '\s+', ' ', 'g'))
$$;
COMMENT ON FUNCTION privacy_guard._human_name(text) IS 'Internal: an identifier as words';

/* An interval in words: "2 years", "1 year and 6 months", "30 days". */
CREATE FUNCTION privacy_guard._human_interval(i interval)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH parts(n, unit, ord) AS (
		VALUES (extract(year FROM $1)::bigint, 'year', 1),
			   (extract(month FROM $1)::bigint, 'month', 2),
			   (extract(day FROM $1)::bigint, 'day', 3),
			   (extract(hour FROM $1)::bigint, 'hour', 4),
			   (extract(minute FROM $1)::bigint, 'minute', 5)),
	words AS (
		SELECT array_agg(n::text || ' ' || unit || CASE WHEN n = 1 THEN '' ELSE 's' END ORDER BY ord) AS w
		  FROM parts WHERE n <> 0)
	SELECT CASE WHEN cardinality(w) IS NULL THEN $1::text
				WHEN cardinality(w) = 1 THEN w[1]
				ELSE array_to_string(w[1:cardinality(w) - 1], ', ') || ' and ' || w[cardinality(w)] END
	  FROM words
$$;
COMMENT ON FUNCTION privacy_guard._human_interval(interval) IS 'Internal: an interval in words';

/*
 * Markup for the notice, in one place for both formats.  kind: 'text'
 * (escape a plain string), 'h1'-'h3', 'p', 'b', 'code' (content already
 * marked up, except 'code', which escapes its own).  Markdown escapes
 * every character with a meaning inside a line; HTML escapes &, <, >, "
 * and '.  Line breaks in names and descriptions become spaces.
 */
CREATE FUNCTION privacy_guard._notice_markup(kind text, fmt text, content text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v text := coalesce(content, '');
BEGIN
	IF kind IN ('text', 'code') THEN
		v := regexp_replace(v, '[\r\n\t]+', ' ', 'g');
		IF fmt = 'html' THEN
			v := replace(replace(replace(replace(replace(v, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
						 '"', '&quot;'), '''', '&#39;');
		ELSIF kind = 'text' THEN
			v := regexp_replace(v, '([\\`*_{}\[\]<>|&~!#])', '\\\1', 'g');
			/* what would start a list or heading at the start of a line */
			v := regexp_replace(v, '^(\s*)([+=-])', '\1\\\2');
			v := regexp_replace(v, '^(\s*[0-9]+)([.)])', '\1\\\2');
		ELSE
			v := replace(v, '`', '''');		/* a code span cannot hold a backtick */
		END IF;
		IF kind = 'code' THEN
			RETURN CASE fmt WHEN 'html' THEN '<code>' || v || '</code>' ELSE '`' || v || '`' END;
		END IF;
		RETURN v;
	END IF;
	IF fmt = 'html' THEN
		RETURN CASE kind
			WHEN 'h1' THEN '<h1>' || v || E'</h1>\n'
			WHEN 'h2' THEN '<h2>' || v || E'</h2>\n'
			WHEN 'h3' THEN '<h3>' || v || E'</h3>\n'
			WHEN 'p' THEN '<p>' || v || E'</p>\n'
			WHEN 'b' THEN '<strong>' || v || '</strong>' END;
	END IF;
	RETURN CASE kind
		WHEN 'h1' THEN '# ' || v || E'\n\n'
		WHEN 'h2' THEN '## ' || v || E'\n\n'
		WHEN 'h3' THEN '### ' || v || E'\n\n'
		WHEN 'p' THEN v || E'\n\n'
		WHEN 'b' THEN '**' || v || '**' END;
END
$$;
COMMENT ON FUNCTION privacy_guard._notice_markup(text, text, text) IS 'Internal: escaping and markup of the privacy notice (markdown or html)';

/* A bulleted list of items already marked up. */
CREATE FUNCTION privacy_guard._notice_list(fmt text, items text[])
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN coalesce(cardinality($2), 0) = 0 THEN ''
				WHEN $1 = 'html' THEN E'<ul>\n' || (SELECT string_agg('<li>' || i || E'</li>\n', '' ORDER BY n)
													  FROM unnest($2) WITH ORDINALITY AS u(i, n)) || E'</ul>\n'
				ELSE (SELECT string_agg('- ' || i || E'\n', '' ORDER BY n)
						FROM unnest($2) WITH ORDINALITY AS u(i, n)) || E'\n' END
$$;
COMMENT ON FUNCTION privacy_guard._notice_list(text, text[]) IS 'Internal: a bulleted list in the privacy notice';

/* What each legal basis means, for the person reading the notice. */
CREATE FUNCTION privacy_guard._basis_explained(basis text)
RETURNS TABLE (title text, explanation text)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT b.title, b.explanation FROM (VALUES
		('consent', 'your consent (GDPR Art. 6(1)(a))',
		 'We use your data for this only while you agree to it. You can withdraw your consent at any time; from then on your data is no longer used for it. Withdrawing does not make earlier use unlawful.'),
		('contract', 'a contract with you (GDPR Art. 6(1)(b))',
		 'We need this data to carry out our contract with you, or to take steps you asked for before entering into one. Without it we cannot provide the service.'),
		('legal_obligation', 'a legal obligation (GDPR Art. 6(1)(c))',
		 'The law requires us to process and keep this data, for example for tax and bookkeeping.'),
		('vital_interests', 'vital interests (GDPR Art. 6(1)(d))',
		 'We process this data to protect your life or health, or someone else''s, when no other basis applies.'),
		('public_task', 'a task in the public interest (GDPR Art. 6(1)(e))',
		 'We process this data to carry out a task in the public interest or in the exercise of official authority. You can object to it at any time.'),
		('legitimate_interests', 'our legitimate interests (GDPR Art. 6(1)(f))',
		 'We process this data because we have a legitimate interest in doing so that does not override your interests, rights and freedoms. You can object to it at any time, and we then stop.')
	) AS b(basis, title, explanation)
	 WHERE b.basis = $1
$$;
COMMENT ON FUNCTION privacy_guard._basis_explained(text) IS 'Internal: a legal basis in plain words';

/*
 * The privacy notice, from the registrations and the purposes' names and
 * descriptions.  Tables and columns are named by their COMMENT when they
 * have one, otherwise by their name in words.  Every purpose a protected
 * table uses (its purposes and its legal hold's) or a tagged column's values
 * carry (anywhere: every tagged column is read, as its table's owner) is
 * named.  Tagged columns outside protected tables are described after the
 * protected tables, table by table.
 */
CREATE FUNCTION privacy_guard.privacy_notice(format text DEFAULT 'markdown')
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	f text := lower(format);
	v_out text;
	t record;
	p record;
	v_items text[];
	v_purposes text[];
	v_line text;
	v_list text;
	v_tagged jsonb;
BEGIN
	IF f IS NULL OR f NOT IN ('markdown', 'html') THEN
		RAISE EXCEPTION 'unknown privacy notice format "%"', format
			USING ERRCODE = '22023',
				  HINT = 'Use markdown or html.';
	END IF;

	/* every tagged column, with the purposes its values carry */
	SELECT coalesce(jsonb_agg(jsonb_build_object('relid', tc.relid::oid, 'attnum', tc.attnum,
												 'protected', tc.protected, 'purposes', tc.purposes)), '[]')
	  INTO v_tagged
	  FROM privacy_guard._tagged_column_purposes() tc;

	SELECT coalesce(array_agg(DISTINCT u.name ORDER BY u.name), '{}') INTO v_purposes
	  FROM (SELECT unnest(pt.purposes) AS name FROM privacy_guard.protected_table pt
			UNION SELECT pt.hold_purpose FROM privacy_guard.protected_table pt
				   WHERE pt.hold_purpose IS NOT NULL
			UNION SELECT jsonb_array_elements_text(tc.value -> 'purposes')
					FROM jsonb_array_elements(v_tagged) AS tc(value)) u;

	v_out := privacy_guard._notice_markup('h1', f, 'Privacy notice')
		|| privacy_guard._notice_markup('p', f,
			'This notice describes the personal data we keep about you, why we keep it, on which '
			|| 'legal grounds, for how long, and how you can withdraw your consent, object, or ask us '
			|| 'to erase your data. It is generated from the rules our database enforces, so it '
			|| 'describes what actually happens to your data.');

	IF NOT EXISTS (SELECT 1 FROM privacy_guard.protected_table) AND v_tagged = '[]' THEN
		v_out := v_out || privacy_guard._notice_markup('p', f, 'We keep no personal data in this database.');
		RETURN CASE f WHEN 'html' THEN E'<section class="privacy-notice">\n' || v_out || E'</section>\n'
					  ELSE v_out END;
	END IF;

	/* what is held, table by table */
	v_out := v_out || privacy_guard._notice_markup('h2', f, 'The data we keep');
	FOR t IN
		SELECT pt.*, c.relname,
			   obj_description(pt.relid, 'pg_class') AS about,
			   coalesce(col_description(pt.relid, (SELECT a.attnum FROM pg_attribute a
													 WHERE a.attrelid = pt.relid AND a.attname = pt.retention_column)::integer),
						privacy_guard._human_name(pt.retention_column)) AS ret_words
		  FROM privacy_guard.protected_table pt
		  JOIN pg_class c ON c.oid = pt.relid
		 ORDER BY privacy_guard._human_name(c.relname), pt.relid::oid
	LOOP
		v_out := v_out || privacy_guard._notice_markup('h3', f,
			privacy_guard._notice_markup('text', f, initcap(left(privacy_guard._human_name(t.relname), 1))
											|| substr(privacy_guard._human_name(t.relname), 2)));
		IF t.about IS NOT NULL THEN
			v_out := v_out || privacy_guard._notice_markup('p', f, privacy_guard._notice_markup('text', f, t.about));
		END IF;
		v_items := '{}';

		SELECT string_agg(privacy_guard._notice_markup('text', f,
							coalesce(col_description(t.relid, a.attnum::integer), privacy_guard._human_name(a.attname))),
						  ', ' ORDER BY a.attnum)
		  INTO v_list
		  FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped;
		v_items := v_items || (privacy_guard._notice_markup('b', f, 'What:') || ' ' || v_list);

		SELECT string_agg(privacy_guard._notice_markup('text', f, coalesce(pp.description, privacy_guard._human_name(pp.name)))
						  || ' (' || privacy_guard._notice_markup('code', f, pp.name) || ')', '; ' ORDER BY pp.name)
		  INTO v_list
		  FROM privacy_guard.purpose pp WHERE pp.name = ANY (t.purposes);
		v_items := v_items || (privacy_guard._notice_markup('b', f, 'Used for:') || ' ' || v_list);

		IF t.retention IS NULL THEN
			v_line := 'until you ask us to erase it.';
		ELSE
			v_line := privacy_guard._notice_markup('text', f, privacy_guard._human_interval(t.retention))
				|| ' from the date recorded as "' || privacy_guard._notice_markup('text', f, t.ret_words) || '", then '
				|| CASE t.on_expiry WHEN 'delete' THEN 'deleted.'
					ELSE 'anonymized: what links it to you is removed, and what is left cannot identify you.' END;
		END IF;
		v_items := v_items || (privacy_guard._notice_markup('b', f, 'Kept:') || ' ' || v_line);

		IF t.hold_purpose IS NOT NULL AND t.hold_keep IS NOT NULL THEN
			SELECT privacy_guard._notice_markup('text', f, coalesce(pp.description, privacy_guard._human_name(pp.name)))
				   || ' (' || privacy_guard._notice_markup('code', f, pp.name) || ')'
			  INTO v_list
			  FROM privacy_guard.purpose pp WHERE pp.name = t.hold_purpose;
			v_items := v_items || (privacy_guard._notice_markup('b', f, 'Kept longer where the law requires it:') || ' '
				|| 'up to ' || privacy_guard._notice_markup('text', f, privacy_guard._human_interval(t.hold_keep))
				|| ' from the date recorded as "' || privacy_guard._notice_markup('text', f, t.ret_words)
				|| '", and in that time used only for ' || v_list || '.');
		END IF;

		v_items := v_items || (privacy_guard._notice_markup('b', f, 'When you ask us to erase your data:') || ' '
			|| CASE t.on_forget WHEN 'delete' THEN 'deleted.'
				ELSE 'anonymized: what links it to you is removed, and what is left cannot identify you.' END);
		v_out := v_out || privacy_guard._notice_list(f, v_items);
	END LOOP;

	/* tagged columns outside protected tables: each value carries its own rules */
	FOR t IN
		SELECT c.oid AS relid, c.relname, obj_description(c.oid, 'pg_class') AS about,
			   array_agg(tc.attnum ORDER BY tc.attnum) AS attnums
		  FROM jsonb_to_recordset(v_tagged) AS tc(relid oid, attnum smallint, protected boolean, purposes jsonb)
		  JOIN pg_class c ON c.oid = tc.relid
		 WHERE NOT tc.protected
		 GROUP BY c.oid, c.relname
		 ORDER BY privacy_guard._human_name(c.relname), c.oid
	LOOP
		v_out := v_out || privacy_guard._notice_markup('h3', f,
			privacy_guard._notice_markup('text', f, initcap(left(privacy_guard._human_name(t.relname), 1))
											|| substr(privacy_guard._human_name(t.relname), 2)));
		IF t.about IS NOT NULL THEN
			v_out := v_out || privacy_guard._notice_markup('p', f, privacy_guard._notice_markup('text', f, t.about));
		END IF;
		SELECT string_agg(privacy_guard._notice_markup('text', f,
							coalesce(col_description(t.relid, a.attnum::integer), privacy_guard._human_name(a.attname))),
						  ', ' ORDER BY a.attnum)
		  INTO v_list
		  FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attnum = ANY (t.attnums);
		v_items := ARRAY[privacy_guard._notice_markup('b', f, 'What:') || ' ' || v_list];
		SELECT string_agg(privacy_guard._notice_markup('text', f, coalesce(pp.description, privacy_guard._human_name(pp.name)))
						  || ' (' || privacy_guard._notice_markup('code', f, pp.name) || ')', '; ' ORDER BY pp.name)
		  INTO v_list
		  FROM privacy_guard.purpose pp
		 WHERE pp.name IN (SELECT jsonb_array_elements_text(tc.purposes)
							 FROM jsonb_to_recordset(v_tagged) AS tc(relid oid, protected boolean, purposes jsonb)
							WHERE tc.relid = t.relid AND NOT tc.protected);
		v_items := v_items
			|| (privacy_guard._notice_markup('b', f, 'Used for:') || ' '
				|| coalesce(v_list, 'only the purposes recorded with each value.'))
			|| (privacy_guard._notice_markup('b', f, 'Kept:') || ' '
				|| 'until the date recorded with each value, then erased; a value recorded without one, until you ask us to erase it.')
			|| (privacy_guard._notice_markup('b', f, 'When you ask us to erase your data:') || ' erased.');
		v_out := v_out || privacy_guard._notice_list(f, v_items);
	END LOOP;

	/* why: purpose by purpose, with its legal basis in plain words */
	v_out := v_out || privacy_guard._notice_markup('h2', f, 'Why we use it');
	FOR p IN
		SELECT pp.name, pp.description, pp.legal_basis, b.title, b.explanation,
			   (SELECT string_agg(privacy_guard._notice_markup('text', f, initcap(left(h.name, 1)) || substr(h.name, 2)),
						', ' ORDER BY h.name)
				  FROM (SELECT privacy_guard._human_name(c.relname) AS name
						  FROM privacy_guard.protected_table pt JOIN pg_class c ON c.oid = pt.relid
						 WHERE pp.name = ANY (pt.purposes) OR pp.name = pt.hold_purpose
						UNION
						SELECT privacy_guard._human_name(c.relname)
						  FROM jsonb_to_recordset(v_tagged) AS tc(relid oid, purposes jsonb)
						  JOIN pg_class c ON c.oid = tc.relid
						 WHERE tc.purposes ? pp.name) h) AS tables
		  FROM privacy_guard.purpose pp
		 CROSS JOIN LATERAL privacy_guard._basis_explained(pp.legal_basis) b
		 WHERE pp.name = ANY (v_purposes)
		 ORDER BY pp.name
	LOOP
		v_out := v_out
			|| privacy_guard._notice_markup('h3', f,
				privacy_guard._notice_markup('text', f, coalesce(p.description, privacy_guard._human_name(p.name)))
				|| ' (' || privacy_guard._notice_markup('code', f, p.name) || ')')
			|| privacy_guard._notice_markup('p', f,
				privacy_guard._notice_markup('b', f, 'Legal basis: ' || p.title || '.') || ' ' || p.explanation)
			|| privacy_guard._notice_markup('p', f, 'Data used: ' || p.tables || '.');
	END LOOP;

	/* rights: withdraw, object, erase, access */
	v_items := '{}';
	SELECT string_agg(privacy_guard._notice_markup('code', f, pp.name), ', ' ORDER BY pp.name) INTO v_list
	  FROM privacy_guard.purpose pp WHERE pp.name = ANY (v_purposes) AND pp.legal_basis = 'consent';
	IF v_list IS NOT NULL THEN
		v_items := v_items || (privacy_guard._notice_markup('b', f, 'Withdraw your consent')
			|| ' to any purpose that rests on it (' || v_list || '), as easily as you gave it: '
			|| 'tell us, or change your choices in your account. From your next interaction with us on, your '
			|| 'data is no longer used for that purpose.');
	END IF;
	SELECT string_agg(privacy_guard._notice_markup('code', f, pp.name), ', ' ORDER BY pp.name) INTO v_list
	  FROM privacy_guard.purpose pp
	 WHERE pp.name = ANY (v_purposes) AND pp.legal_basis IN ('legitimate_interests', 'public_task');
	IF v_list IS NOT NULL THEN
		v_items := v_items || (privacy_guard._notice_markup('b', f, 'Object')
			|| ' to the use of your data for ' || v_list || ' (GDPR Art. 21). We then stop using it for that.');
	END IF;
	v_items := v_items || (privacy_guard._notice_markup('b', f, 'Ask us to erase your data')
		|| ' (GDPR Art. 17). From the moment we record your request, your data is no longer used for anything, '
		|| 'and it is then erased or anonymized as described above. You can also ask us to erase it at a later '
		|| 'date, for example when a warranty ends. Data the law obliges us to keep is kept only for that '
		|| 'obligation, and only as long as it requires.')
		|| (privacy_guard._notice_markup('b', f, 'Get a copy')
		|| ' of all the data we hold about you, with the purposes and the history of your consents, in a '
		|| 'machine-readable format (JSON), to keep or to take to another provider (GDPR Art. 15 and 20).');
	/* recipients and transfers outside the EU/EEA */
	v_out := v_out || privacy_guard._notice_recipients(f, v_purposes, 'en');

	v_out := v_out || privacy_guard._notice_markup('h2', f, 'Your choices and rights')
		|| privacy_guard._notice_markup('p', f, 'You can, at any time:')
		|| privacy_guard._notice_list(f, v_items)
		|| privacy_guard._notice_markup('p', f,
			'To do any of this, contact us using the details published with this notice.');
	IF f = 'html' THEN
		v_out := E'<section class="privacy-notice">\n' || v_out || E'</section>\n';
	END IF;
	RETURN v_out;
END
$$;
COMMENT ON FUNCTION privacy_guard.privacy_notice(text) IS 'A privacy notice for the website (markdown or html), generated from the enforced rules';

