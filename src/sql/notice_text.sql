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

/*
 * Per-language descriptions of purposes, for the privacy notice; a purpose
 * without one in the notice's language is described by define_purpose()'s
 * description, or by its name in words.
 */
CREATE TABLE privacy_guard.purpose_description (
	purpose		text NOT NULL REFERENCES privacy_guard.purpose (name) ON DELETE CASCADE,
	language	text NOT NULL CHECK (language OPERATOR(pg_catalog.=) ANY (ARRAY['en', 'de'])),
	description text NOT NULL,
	PRIMARY KEY (purpose, language)
);
COMMENT ON TABLE privacy_guard.purpose_description IS 'A purpose''s description in one language, for the privacy notice (set_purpose_description)';
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.purpose_description', '');
REVOKE ALL ON privacy_guard.purpose_description FROM PUBLIC;

CREATE FUNCTION privacy_guard.set_purpose_description(purpose text, language text, description text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_lang text := lower(language);
BEGIN
	IF purpose IS NULL OR NOT EXISTS (SELECT 1 FROM privacy_guard.purpose p WHERE p.name = purpose) THEN
		RAISE EXCEPTION 'unknown privacy_guard purpose "%"', purpose
			USING ERRCODE = '22023', HINT = 'See privacy_guard.purposes for the defined purposes.';
	END IF;
	IF v_lang IS NULL OR v_lang NOT IN ('en', 'de') THEN
		RAISE EXCEPTION 'unknown privacy notice language "%"', language
			USING ERRCODE = '22023', HINT = 'Use en or de.';
	END IF;
	IF description IS NULL OR btrim(description) = '' THEN
		DELETE FROM privacy_guard.purpose_description d WHERE d.purpose = $1 AND d.language = v_lang;
	ELSE
		INSERT INTO privacy_guard.purpose_description AS d VALUES ($1, v_lang, description)
		ON CONFLICT ON CONSTRAINT purpose_description_pkey DO UPDATE SET description = EXCLUDED.description;
	END IF;
END
$$;
COMMENT ON FUNCTION privacy_guard.set_purpose_description(text, text, text) IS 'Describe a purpose in one language (en, de) for the privacy notice; NULL or empty removes it';

/* How the notice describes a purpose in a language. */
CREATE FUNCTION privacy_guard._purpose_words(purpose text, lang text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce((SELECT d.description FROM privacy_guard.purpose_description d
					  WHERE d.purpose = $1 AND d.language = $2),
					(SELECT p.description FROM privacy_guard.purpose p WHERE p.name = $1),
					privacy_guard._human_name($1))
$$;
COMMENT ON FUNCTION privacy_guard._purpose_words(text, text) IS 'Internal: a purpose''s description in the notice''s language, else its description, else its name in words';

/* An interval in words in the notice's language. */
CREATE FUNCTION privacy_guard._notice_interval(i interval, lang text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH parts(n, one, many, ord) AS (
		VALUES (extract(year FROM $1)::bigint, 'Jahr', 'Jahre', 1),
			   (extract(month FROM $1)::bigint, 'Monat', 'Monate', 2),
			   (extract(day FROM $1)::bigint, 'Tag', 'Tage', 3),
			   (extract(hour FROM $1)::bigint, 'Stunde', 'Stunden', 4),
			   (extract(minute FROM $1)::bigint, 'Minute', 'Minuten', 5)),
	words AS (
		SELECT array_agg(n::text || ' ' || CASE WHEN n = 1 THEN one ELSE many END ORDER BY ord) AS w
		  FROM parts WHERE n <> 0)
	SELECT CASE WHEN $2 <> 'de' THEN privacy_guard._human_interval($1)
				WHEN cardinality(w) IS NULL THEN $1::text
				WHEN cardinality(w) = 1 THEN w[1]
				ELSE array_to_string(w[1:cardinality(w) - 1], ', ') || ' und ' || w[cardinality(w)] END
	  FROM words
$$;
COMMENT ON FUNCTION privacy_guard._notice_interval(interval, text) IS 'Internal: an interval in words, in English or German';

/*
 * The notice's fixed wording in each language.  The English is the 1.0
 * notice's, word for word; the German says the same, in the terms of the
 * German text of the GDPR (DSGVO).  Keys ending in "+" are only in the
 * complete notice (privacy_notice(format, language)).
 */
CREATE FUNCTION privacy_guard._notice_words(key text, lang text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN $2 = 'de' THEN w.de ELSE w.en END FROM (VALUES
	('title', 'Privacy notice', 'Datenschutzhinweise'),
	('intro',
	 'This notice describes the personal data we keep about you, why we keep it, on which legal grounds, for how long, and how you can withdraw your consent, object, or ask us to erase your data. It is generated from the rules our database enforces, so it describes what actually happens to your data.',
	 'Diese Hinweise beschreiben, welche personenbezogenen Daten wir über Sie speichern, warum wir sie speichern, auf welcher Rechtsgrundlage, wie lange, und wie Sie Ihre Einwilligung widerrufen, widersprechen oder die Löschung Ihrer Daten verlangen können. Sie werden aus den Regeln erzeugt, die unsere Datenbank durchsetzt, und beschreiben daher, was mit Ihren Daten tatsächlich geschieht.'),
	('intro+',
	 'We give you this information under Articles 13 and 14 of the General Data Protection Regulation (GDPR).',
	 'Diese Informationen geben wir Ihnen nach Art. 13 und 14 der Datenschutz-Grundverordnung (DSGVO).'),
	('nothing', 'We keep no personal data in this database.', 'In dieser Datenbank speichern wir keine personenbezogenen Daten.'),
	('kept_h', 'The data we keep', 'Welche Daten wir speichern'),
	('what', 'What:', 'Welche Daten:'),
	('used_for', 'Used for:', 'Verwendet für:'),
	('kept', 'Kept:', 'Speicherdauer:'),
	('until_erase', 'until you ask us to erase it.', 'bis Sie die Löschung verlangen.'),
	('from_date', ' from the date recorded as "', ' ab dem als „'),
	('from_date_end', '", then ', '“ erfassten Datum, danach '),
	('deleted', 'deleted.', 'gelöscht.'),
	('anonymized', 'anonymized: what links it to you is removed, and what is left cannot identify you.',
	 'anonymisiert: Was die Daten mit Ihnen verbindet, wird entfernt; was übrig bleibt, lässt keinen Rückschluss auf Sie zu.'),
	('hold', 'Kept longer where the law requires it:', 'Länger aufbewahrt, wo das Gesetz es verlangt:'),
	('up_to', 'up to ', 'höchstens '),
	('hold_end', '", and in that time used only for ', '“ erfassten Datum, und in dieser Zeit nur verwendet für: '),
	('on_forget', 'When you ask us to erase your data:', 'Wenn Sie die Löschung Ihrer Daten verlangen:'),
	('tag_purposes', 'only the purposes recorded with each value.', 'nur die Zwecke, die mit jedem einzelnen Wert erfasst sind.'),
	('tag_kept', 'until the date recorded with each value, then erased; a value recorded without one, until you ask us to erase it.',
	 'bis zu dem mit jedem Wert erfassten Datum, danach gelöscht; ein Wert, der ohne ein solches Datum erfasst ist, bis Sie die Löschung verlangen.'),
	('erased', ' erased.', ' gelöscht.'),
	('why_h', 'Why we use it', 'Wofür wir die Daten verwenden'),
	('basis', 'Legal basis: ', 'Rechtsgrundlage: '),
	('data_used', 'Data used: ', 'Verwendete Daten: '),
	('rights_h', 'Your choices and rights', 'Ihre Wahlmöglichkeiten und Rechte'),
	('any_time', 'You can, at any time:', 'Sie können jederzeit:'),
	('withdraw', 'Withdraw your consent', 'Ihre Einwilligung widerrufen'),
	('withdraw_a', ' to any purpose that rests on it (', ', für jeden Zweck, der auf ihr beruht ('),
	('withdraw_b', '), as easily as you gave it: tell us, or change your choices in your account. From your next interaction with us on, your data is no longer used for that purpose.',
	 '), so einfach, wie Sie sie erteilt haben: Teilen Sie es uns mit, oder ändern Sie Ihre Auswahl in Ihrem Kundenkonto. Ab Ihrer nächsten Interaktion mit uns werden Ihre Daten nicht mehr für diesen Zweck verwendet.'),
	('withdraw+', ' Withdrawing does not affect the lawfulness of what was done with your consent before (GDPR Art. 7(3)).',
	 ' Der Widerruf berührt nicht die Rechtmäßigkeit der bis dahin aufgrund der Einwilligung erfolgten Verarbeitung (Art. 7 Abs. 3 DSGVO).'),
	('object', 'Object', 'Widerspruch einlegen'),
	('object_a', ' to the use of your data for ', ' gegen die Verwendung Ihrer Daten für '),
	('object_b', ' (GDPR Art. 21). We then stop using it for that.', ' (Art. 21 DSGVO). Wir verwenden sie dann hierfür nicht mehr.'),
	('erase', 'Ask us to erase your data', 'die Löschung Ihrer Daten verlangen'),
	('erase_b', ' (GDPR Art. 17). From the moment we record your request, your data is no longer used for anything, and it is then erased or anonymized as described above. You can also ask us to erase it at a later date, for example when a warranty ends. Data the law obliges us to keep is kept only for that obligation, and only as long as it requires.',
	 ' (Art. 17 DSGVO). Sobald wir Ihren Antrag erfasst haben, werden Ihre Daten für nichts mehr verwendet und anschließend wie oben beschrieben gelöscht oder anonymisiert. Sie können die Löschung auch zu einem späteren Zeitpunkt verlangen, etwa zum Ende einer Gewährleistungsfrist. Daten, die wir von Gesetzes wegen aufbewahren müssen, bewahren wir nur für diese Pflicht auf, und nur so lange, wie sie es verlangt.'),
	('copy', 'Get a copy', 'eine Kopie erhalten'),
	('copy_b', ' of all the data we hold about you, with the purposes and the history of your consents, in a machine-readable format (JSON), to keep or to take to another provider (GDPR Art. 15 and 20).',
	 ' aller Daten, die wir über Sie speichern, mit den Zwecken und dem Verlauf Ihrer Einwilligungen, in einem maschinenlesbaren Format (JSON), um sie aufzubewahren oder einem anderen Anbieter zu übermitteln (Art. 15 und 20 DSGVO).'),
	('rectify+', 'Have your data corrected', 'Ihre Daten berichtigen lassen'),
	('rectify_b+', ' when it is wrong, and completed when it is incomplete (GDPR Art. 16).',
	 ', wenn sie unrichtig sind, und vervollständigen lassen, wenn sie unvollständig sind (Art. 16 DSGVO).'),
	('restrict+', 'Have the use of your data restricted', 'die Einschränkung der Verarbeitung verlangen'),
	('restrict_b+', ' while its accuracy or our grounds for using it are being checked, or instead of its erasure (GDPR Art. 18).',
	 ', etwa solange die Richtigkeit Ihrer Daten oder unsere Gründe für die Verarbeitung geprüft werden, oder statt der Löschung (Art. 18 DSGVO).'),
	('automated+', 'Not be subject to a decision based solely on automated processing', 'keiner ausschließlich automatisierten Entscheidung unterworfen werden'),
	('automated_b+', ' that has legal effects on you or affects you similarly significantly, except where GDPR Art. 22 allows it.',
	 ', die Ihnen gegenüber rechtliche Wirkung entfaltet oder Sie in ähnlicher Weise erheblich beeinträchtigt, soweit Art. 22 DSGVO sie nicht ausnahmsweise erlaubt.'),
	('contact', 'To do any of this, contact us using the details published with this notice.',
	 'Wenden Sie sich dazu an uns über die Kontaktdaten, die mit diesen Hinweisen veröffentlicht sind.'),
	('complaint+', 'You also have the right to lodge a complaint with a data protection supervisory authority, in particular in the EU member state where you live or work or where you believe your data was processed unlawfully (GDPR Art. 77).',
	 'Sie haben außerdem das Recht, sich bei einer Datenschutz-Aufsichtsbehörde zu beschweren, insbesondere in dem Mitgliedstaat Ihres Aufenthaltsorts, Ihres Arbeitsplatzes oder des Orts, an dem Ihre Daten nach Ihrer Auffassung rechtswidrig verarbeitet wurden (Art. 77 DSGVO).'),
	/* the legal bases (GDPR Art. 6(1)(a)-(f)): title, explanation */
	('consent', 'your consent (GDPR Art. 6(1)(a))', 'Ihre Einwilligung (Art. 6 Abs. 1 lit. a DSGVO)'),
	('consent_x', 'We use your data for this only while you agree to it. You can withdraw your consent at any time; from then on your data is no longer used for it. Withdrawing does not make earlier use unlawful.',
	 'Wir verwenden Ihre Daten hierfür nur, solange Sie eingewilligt haben. Sie können Ihre Einwilligung jederzeit widerrufen; ab dann werden Ihre Daten hierfür nicht mehr verwendet. Die bis zum Widerruf erfolgte Verwendung bleibt rechtmäßig.'),
	('contract', 'a contract with you (GDPR Art. 6(1)(b))', 'die Erfüllung eines Vertrags mit Ihnen (Art. 6 Abs. 1 lit. b DSGVO)'),
	('contract_x', 'We need this data to carry out our contract with you, or to take steps you asked for before entering into one. Without it we cannot provide the service.',
	 'Wir benötigen diese Daten, um unseren Vertrag mit Ihnen zu erfüllen oder um auf Ihre Anfrage Schritte vor einem Vertragsschluss durchzuführen. Ohne sie können wir die Leistung nicht erbringen.'),
	('legal_obligation', 'a legal obligation (GDPR Art. 6(1)(c))', 'eine rechtliche Verpflichtung (Art. 6 Abs. 1 lit. c DSGVO)'),
	('legal_obligation_x', 'The law requires us to process and keep this data, for example for tax and bookkeeping.',
	 'Das Gesetz verpflichtet uns, diese Daten zu verarbeiten und aufzubewahren, zum Beispiel nach steuer- und handelsrechtlichen Aufbewahrungspflichten.'),
	('vital_interests', 'vital interests (GDPR Art. 6(1)(d))', 'lebenswichtige Interessen (Art. 6 Abs. 1 lit. d DSGVO)'),
	('vital_interests_x', 'We process this data to protect your life or health, or someone else''s, when no other basis applies.',
	 'Wir verarbeiten diese Daten, um Ihr Leben oder Ihre Gesundheit oder die einer anderen Person zu schützen, wenn keine andere Rechtsgrundlage greift.'),
	('public_task', 'a task in the public interest (GDPR Art. 6(1)(e))', 'die Wahrnehmung einer Aufgabe im öffentlichen Interesse (Art. 6 Abs. 1 lit. e DSGVO)'),
	('public_task_x', 'We process this data to carry out a task in the public interest or in the exercise of official authority. You can object to it at any time.',
	 'Wir verarbeiten diese Daten, um eine Aufgabe wahrzunehmen, die im öffentlichen Interesse liegt oder in Ausübung öffentlicher Gewalt erfolgt, die uns übertragen wurde. Sie können dieser Verarbeitung jederzeit widersprechen.'),
	('legitimate_interests', 'our legitimate interests (GDPR Art. 6(1)(f))', 'unsere berechtigten Interessen (Art. 6 Abs. 1 lit. f DSGVO)'),
	('legitimate_interests_x', 'We process this data because we have a legitimate interest in doing so that does not override your interests, rights and freedoms. You can object to it at any time, and we then stop.',
	 'Wir verarbeiten diese Daten zur Wahrung unserer berechtigten Interessen, soweit nicht Ihre Interessen oder Ihre Grundrechte und Grundfreiheiten überwiegen. Sie können dieser Verarbeitung jederzeit widersprechen; wir beenden sie dann.')
	) AS w(key, en, de)
	 WHERE w.key = $1
$$;
COMMENT ON FUNCTION privacy_guard._notice_words(text, text) IS 'Internal: the privacy notice''s fixed wording in English or German';

