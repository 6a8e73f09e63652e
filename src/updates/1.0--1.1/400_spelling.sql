/*
 * One spelling, anonymize: function bodies (messages, the privacy notice's
 * text, comments) and object comments of this extension that spelled it
 * anonymise get the install script's spelling.  Done by replacing the word
 * in whatever definition is installed at this point, so the change composes
 * with the other changes of this update (English words only).
 */
DO $pvg$
DECLARE
	r record;
	/* the English word only: the German notice's "anonymisiert" stays */
	v_english text := '([Aa])nonymis(e|ed|es|ing|ation|ations|er|ers)\M';
	v_ize text := '\1nonymiz\2';
BEGIN
	FOR r IN
		SELECT p.oid FROM pg_catalog.pg_proc p
		 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'privacy_guard'::pg_catalog.regnamespace
		   AND p.prosrc OPERATOR(pg_catalog.~) '[Aa]nonymis'
	LOOP
		EXECUTE pg_catalog.regexp_replace(pg_catalog.pg_get_functiondef(r.oid), v_english, v_ize, 'g');
	END LOOP;
	FOR r IN
		SELECT o.type, o.identity, d.description
		  FROM pg_catalog.pg_description d
		 CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.classoid, d.objoid, d.objsubid) o
		 WHERE d.description OPERATOR(pg_catalog.~) '[Aa]nonymis'
		   AND o.schema OPERATOR(pg_catalog.=) 'privacy_guard'
	LOOP
		EXECUTE pg_catalog.format('COMMENT ON %s %s IS %L',
			CASE r.type WHEN 'table column' THEN 'COLUMN' WHEN 'view column' THEN 'COLUMN'
						ELSE pg_catalog.upper(r.type) END,
			r.identity,
			pg_catalog.regexp_replace(r.description, v_english, v_ize, 'g'));
	END LOOP;
END
$pvg$;
