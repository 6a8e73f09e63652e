/*
 * Filing a request: _base_type in C (an SQL function was parsed and
 * planned on every call), and the subject columns' types found by index
 * probes.
 */
CREATE OR REPLACE FUNCTION privacy_guard._base_type(typ regtype)
RETURNS regtype
AS 'MODULE_PATHNAME', 'pvg_base_type'
LANGUAGE C STABLE STRICT;
CREATE OR REPLACE FUNCTION privacy_guard._key_misspellings(subject text)
RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_type regtype;
	v_canon text;
	v_misspelt text[] := '{}';
BEGIN
	/* each subject column by an index probe: as a join, all of pg_attribute was read on every call */
	FOR v_type IN
		SELECT DISTINCT privacy_guard._base_type(s.typ)
		  FROM (SELECT (SELECT a.atttypid FROM pg_attribute a
						 WHERE a.attrelid = p.relid AND a.attname = p.subject_column
						   AND NOT a.attisdropped) AS typ
				  FROM privacy_guard.protected_table p) s
		 WHERE s.typ IS NOT NULL
	LOOP
		CONTINUE WHEN v_type IN ('text'::regtype, 'varchar'::regtype);
		BEGIN
			EXECUTE format('SELECT ($1::%s)::text', v_type) INTO v_canon USING subject;
		EXCEPTION WHEN data_exception THEN
			CONTINUE;	/* no value of this type: not meant for these columns */
		END;
		IF v_canon <> subject THEN
			v_misspelt := v_misspelt || v_type::text;
		END IF;
	END LOOP;
	RETURN v_misspelt;
END
$$;
CREATE OR REPLACE FUNCTION privacy_guard._check_key_form(subject text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_misspelt text[];
BEGIN
	/* each subject column by an index probe, as in _key_misspellings */
	IF EXISTS (SELECT 1
				 FROM (SELECT (SELECT a.atttypid FROM pg_attribute a
								WHERE a.attrelid = p.relid AND a.attname = p.subject_column
								  AND NOT a.attisdropped) AS typ
						 FROM privacy_guard.protected_table p) s
				WHERE privacy_guard._base_type(s.typ) IN ('text'::regtype, 'varchar'::regtype)) THEN
		RETURN;
	END IF;
	v_misspelt := privacy_guard._key_misspellings(subject);
	IF cardinality(v_misspelt) > 0 THEN
		RAISE EXCEPTION 'subject key is not written the way the subject columns hold it'
			USING ERRCODE = '22023',
				  DETAIL = format('The key is another spelling of a %s value; subjects are known by the column''s text form, so a request for it would find nothing.',
								  array_to_string(v_misspelt, ' or ')),
				  HINT = 'Write integers without sign, leading zeros or spaces, and uuids in lower case with hyphens and without braces.';
	END IF;
END
$$;
