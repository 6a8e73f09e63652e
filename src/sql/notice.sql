/*
 * The privacy notice, from the registrations and the purposes' names and
 * descriptions.  Tables and columns are named by their COMMENT when they
 * have one, otherwise by their name in words.  Every purpose a protected
 * table uses (its purposes and its legal hold's) or a tagged column's values
 * carry (anywhere: every tagged column is read, as its table's owner) is
 * named.  Tagged columns outside protected tables are described after the
 * protected tables, table by table.
 */
CREATE FUNCTION privacy_guard._privacy_notice(format text, language text, complete boolean)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	f text := lower(format);
	lang text := lower(language);
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
	IF lang IS NULL OR lang NOT IN ('en', 'de') THEN
		RAISE EXCEPTION 'unknown privacy notice language "%"', language
			USING ERRCODE = '22023',
				  HINT = 'Use en or de.';
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

	v_out := privacy_guard._notice_markup('h1', f, privacy_guard._notice_words('title', lang))
		|| privacy_guard._notice_markup('p', f, privacy_guard._notice_words('intro', lang)
			|| CASE WHEN complete THEN ' ' || privacy_guard._notice_words('intro+', lang) ELSE '' END);

	IF NOT EXISTS (SELECT 1 FROM privacy_guard.protected_table) AND v_tagged = '[]' THEN
		v_out := v_out || privacy_guard._notice_markup('p', f, privacy_guard._notice_words('nothing', lang));
		RETURN CASE f WHEN 'html' THEN E'<section class="privacy-notice">\n' || v_out || E'</section>\n'
					  ELSE v_out END;
	END IF;

	/* what is held, table by table */
	v_out := v_out || privacy_guard._notice_markup('h2', f, privacy_guard._notice_words('kept_h', lang));
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
		v_items := v_items || (privacy_guard._notice_markup('b', f, privacy_guard._notice_words('what', lang)) || ' ' || v_list);

		SELECT string_agg(privacy_guard._notice_markup('text', f, privacy_guard._purpose_words(pp.name, lang))
						  || ' (' || privacy_guard._notice_markup('code', f, pp.name) || ')', '; ' ORDER BY pp.name)
		  INTO v_list
		  FROM privacy_guard.purpose pp WHERE pp.name = ANY (t.purposes);
		v_items := v_items || (privacy_guard._notice_markup('b', f, privacy_guard._notice_words('used_for', lang)) || ' ' || v_list);

		IF t.retention IS NULL THEN
			v_line := privacy_guard._notice_words('until_erase', lang);
		ELSE
			v_line := privacy_guard._notice_markup('text', f, privacy_guard._notice_interval(t.retention, lang))
				|| privacy_guard._notice_words('from_date', lang) || privacy_guard._notice_markup('text', f, t.ret_words) || privacy_guard._notice_words('from_date_end', lang)
				|| CASE t.on_expiry WHEN 'delete' THEN privacy_guard._notice_words('deleted', lang)
					ELSE privacy_guard._notice_words('anonymized', lang) END;
		END IF;
		v_items := v_items || (privacy_guard._notice_markup('b', f, privacy_guard._notice_words('kept', lang)) || ' ' || v_line);

		IF t.hold_purpose IS NOT NULL AND t.hold_keep IS NOT NULL THEN
			SELECT privacy_guard._notice_markup('text', f, privacy_guard._purpose_words(pp.name, lang))
				   || ' (' || privacy_guard._notice_markup('code', f, pp.name) || ')'
			  INTO v_list
			  FROM privacy_guard.purpose pp WHERE pp.name = t.hold_purpose;
			v_items := v_items || (privacy_guard._notice_markup('b', f, privacy_guard._notice_words('hold', lang)) || ' '
				|| privacy_guard._notice_words('up_to', lang) || privacy_guard._notice_markup('text', f, privacy_guard._notice_interval(t.hold_keep, lang))
				|| privacy_guard._notice_words('from_date', lang) || privacy_guard._notice_markup('text', f, t.ret_words)
				|| privacy_guard._notice_words('hold_end', lang) || v_list || '.');
		END IF;

		v_items := v_items || (privacy_guard._notice_markup('b', f, privacy_guard._notice_words('on_forget', lang)) || ' '
			|| CASE t.on_forget WHEN 'delete' THEN privacy_guard._notice_words('deleted', lang)
				ELSE privacy_guard._notice_words('anonymized', lang) END);
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
		v_items := ARRAY[privacy_guard._notice_markup('b', f, privacy_guard._notice_words('what', lang)) || ' ' || v_list];
		SELECT string_agg(privacy_guard._notice_markup('text', f, privacy_guard._purpose_words(pp.name, lang))
						  || ' (' || privacy_guard._notice_markup('code', f, pp.name) || ')', '; ' ORDER BY pp.name)
		  INTO v_list
		  FROM privacy_guard.purpose pp
		 WHERE pp.name IN (SELECT jsonb_array_elements_text(tc.purposes)
							 FROM jsonb_to_recordset(v_tagged) AS tc(relid oid, protected boolean, purposes jsonb)
							WHERE tc.relid = t.relid AND NOT tc.protected);
		v_items := v_items
			|| (privacy_guard._notice_markup('b', f, privacy_guard._notice_words('used_for', lang)) || ' '
				|| coalesce(v_list, privacy_guard._notice_words('tag_purposes', lang)))
			|| (privacy_guard._notice_markup('b', f, privacy_guard._notice_words('kept', lang)) || ' '
				|| privacy_guard._notice_words('tag_kept', lang))
			|| (privacy_guard._notice_markup('b', f, privacy_guard._notice_words('on_forget', lang)) || privacy_guard._notice_words('erased', lang));
		v_out := v_out || privacy_guard._notice_list(f, v_items);
	END LOOP;

	/* why: purpose by purpose, with its legal basis in plain words */
	v_out := v_out || privacy_guard._notice_markup('h2', f, privacy_guard._notice_words('why_h', lang));
	FOR p IN
		SELECT pp.name, pp.description, pp.legal_basis,
			   privacy_guard._notice_words(pp.legal_basis, lang) AS title,
			   privacy_guard._notice_words(pp.legal_basis || '_x', lang) AS explanation,
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
		 WHERE pp.name = ANY (v_purposes)
		 ORDER BY pp.name
	LOOP
		v_out := v_out
			|| privacy_guard._notice_markup('h3', f,
				privacy_guard._notice_markup('text', f, privacy_guard._purpose_words(p.name, lang))
				|| ' (' || privacy_guard._notice_markup('code', f, p.name) || ')')
			|| privacy_guard._notice_markup('p', f,
				privacy_guard._notice_markup('b', f, privacy_guard._notice_words('basis', lang) || p.title || '.') || ' ' || p.explanation)
			|| privacy_guard._notice_markup('p', f, privacy_guard._notice_words('data_used', lang) || p.tables || '.');
	END LOOP;

	/* rights: withdraw, object, erase, access */
	v_items := '{}';
	SELECT string_agg(privacy_guard._notice_markup('code', f, pp.name), ', ' ORDER BY pp.name) INTO v_list
	  FROM privacy_guard.purpose pp WHERE pp.name = ANY (v_purposes) AND pp.legal_basis = 'consent';
	IF v_list IS NOT NULL THEN
		v_items := v_items || (privacy_guard._notice_markup('b', f, privacy_guard._notice_words('withdraw', lang))
			|| privacy_guard._notice_words('withdraw_a', lang) || v_list || privacy_guard._notice_words('withdraw_b', lang)
			|| CASE WHEN complete THEN privacy_guard._notice_words('withdraw+', lang) ELSE '' END);
	END IF;
	SELECT string_agg(privacy_guard._notice_markup('code', f, pp.name), ', ' ORDER BY pp.name) INTO v_list
	  FROM privacy_guard.purpose pp
	 WHERE pp.name = ANY (v_purposes) AND pp.legal_basis IN ('legitimate_interests', 'public_task');
	IF v_list IS NOT NULL THEN
		v_items := v_items || (privacy_guard._notice_markup('b', f, privacy_guard._notice_words('object', lang))
			|| privacy_guard._notice_words('object_a', lang) || v_list || privacy_guard._notice_words('object_b', lang));
	END IF;
	v_items := v_items || (privacy_guard._notice_markup('b', f, privacy_guard._notice_words('erase', lang)) || privacy_guard._notice_words('erase_b', lang))
		|| (privacy_guard._notice_markup('b', f, privacy_guard._notice_words('copy', lang)) || privacy_guard._notice_words('copy_b', lang));
	IF complete THEN
		v_items := v_items
			|| (privacy_guard._notice_markup('b', f, privacy_guard._notice_words('rectify+', lang)) || privacy_guard._notice_words('rectify_b+', lang))
			|| (privacy_guard._notice_markup('b', f, privacy_guard._notice_words('restrict+', lang)) || privacy_guard._notice_words('restrict_b+', lang))
			|| (privacy_guard._notice_markup('b', f, privacy_guard._notice_words('automated+', lang)) || privacy_guard._notice_words('automated_b+', lang));
	END IF;
	/* recipients and transfers outside the EU/EEA */
	v_out := v_out || privacy_guard._notice_recipients(f, v_purposes, lang);

	v_out := v_out || privacy_guard._notice_markup('h2', f, privacy_guard._notice_words('rights_h', lang))
		|| privacy_guard._notice_markup('p', f, privacy_guard._notice_words('any_time', lang))
		|| privacy_guard._notice_list(f, v_items)
		|| privacy_guard._notice_markup('p', f, privacy_guard._notice_words('contact', lang))
		|| CASE WHEN complete THEN privacy_guard._notice_markup('p', f, privacy_guard._notice_words('complaint+', lang)) ELSE '' END;
	IF f = 'html' THEN
		v_out := E'<section class="privacy-notice">\n' || v_out || E'</section>\n';
	END IF;
	RETURN v_out;
END
$$;
COMMENT ON FUNCTION privacy_guard._privacy_notice(text, text, boolean) IS 'Internal: the privacy notice in a format and language; complete adds the Art. 13/14 reference and the rights of Art. 7(3), 16, 18, 22 and 77';

CREATE FUNCTION privacy_guard.privacy_notice(format text DEFAULT 'markdown')
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT privacy_guard._privacy_notice($1, 'en', false) $$;
COMMENT ON FUNCTION privacy_guard.privacy_notice(text) IS 'A privacy notice for the website (markdown or html), generated from the enforced rules';

CREATE FUNCTION privacy_guard.privacy_notice(format text, language text)
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT privacy_guard._privacy_notice($1, $2, true) $$;
COMMENT ON FUNCTION privacy_guard.privacy_notice(text, text) IS 'The privacy notice for the website in a language (en, de) and format (markdown, html), with every right of the data subject (GDPR Art. 7(3), 13-22, 77), generated from the enforced rules';

