/* privacy_guard--1.1.sql -- purposes, consent, protected tables, erasure requests */

\echo Use "CREATE EXTENSION privacy_guard" to load this file. \quit

/*
 * The schema named in the control file must be ours: a schema planted by
 * another role before CREATE EXTENSION would let that role swap our objects.
 */
DO $guard$
BEGIN
	IF (SELECT n.nspowner FROM pg_catalog.pg_namespace n
		 WHERE n.nspname OPERATOR(pg_catalog.=) 'privacy_guard')
	   OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles r
		 WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
		RAISE EXCEPTION 'schema privacy_guard exists and belongs to another role'
			USING ERRCODE = '42501',
				  HINT = 'Drop or rename that schema, then run CREATE EXTENSION again.';
	END IF;
END
$guard$;

REVOKE ALL ON SCHEMA privacy_guard FROM PUBLIC;
GRANT USAGE ON SCHEMA privacy_guard TO PUBLIC;

