/*
 * One spelling, anonymize: function bodies (messages, the privacy notice's
 * text, comments) and object comments of this extension that spelled it
 * anonymise get the install script's spelling.  Done by replacing the word
 * in whatever definition is installed at this point, so the change composes
 * with the other changes of this update.
 */
DO $pvg$
DECLARE
	r record;
BEGIN
	FOR r IN
		SELECT p.oid FROM pg_catalog.pg_proc p
		 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'privacy_guard'::pg_catalog.regnamespace
		   AND p.prosrc OPERATOR(pg_catalog.~) '[Aa]nonymis'
	LOOP
		EXECUTE pg_catalog.replace(pg_catalog.replace(pg_catalog.pg_get_functiondef(r.oid),
													  'anonymis', 'anonymiz'),
								   'Anonymis', 'Anonymiz');
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
			pg_catalog.replace(pg_catalog.replace(r.description, 'anonymis', 'anonymiz'),
							   'Anonymis', 'Anonymiz'));
	END LOOP;
END
$pvg$;
