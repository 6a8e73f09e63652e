/*-------------------------------------------------------------------------
 *
 * transparency.c
 *	  Reading a protected table's rows for subject_report(), with the table
 *	  owner's rights and privacy_guard's rules lifted for that owner only.
 *
 * subject_report() (SQL, SECURITY DEFINER, administrators only) is the
 * controller's answer to an access request (GDPR Art. 15): it must see a
 * subject's rows whatever the caller's session purpose, consents or
 * retention say.  Reading them as the extension owner would run whatever
 * the table owner's objects make a read run (type output functions, a
 * domain's functions) with the extension owner's rights.  So the read runs
 * here as the owner of the table, in a restricted security context (no SET
 * ROLE, no temporary objects, no changes to session state), with FORCE ROW
 * LEVEL SECURITY lifted for that owner (SECURITY_NOFORCE_RLS, as
 * PostgreSQL's own foreign-key checks do): the owner, who may read every
 * row of its table anyway, reads them without the policies.  The statement
 * is executed read-only, so SPI refuses anything but a query, and with
 * search_path = pg_catalog, pg_temp (the statements qualify every name).
 *
 * Only a base table (or partitioned table) is ever read this way: never a
 * view, whose rules are its owner's code.  Reads fire no triggers.
 *
 * The same reader serves the register and the notice (the purposes found in
 * tagged columns) and the report's tagged values.  The tagged-value rule
 * binds the owner as anyone else, so tagged values are read through
 * _tag_report_value(), which answers only with the digest key passed as $2
 * (tagged_erase.c) and gives only the subject's values: the owner's session
 * gains nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(pvg_read_as_owner);

/*
 * _read_as_owner(tbl regclass, sql text, key text, secret bytea, keys jsonb)
 *	 -> jsonb
 *
 * Runs the query sql, which may use $1 (the subject key), $2 (the digest
 * key, which the keyed tagged-value functions need) and $3 (a list of
 * referenced keys), as the owner of tbl with row-level security lifted for
 * that owner, and returns the first column of its first row (a jsonb), or
 * NULL when it returns no row.  tbl must be a table or partitioned table.
 * Errors propagate; a statement that is not a query is refused by SPI.
 */
Datum
pvg_read_as_owner(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *sql;
	Oid			argtypes[3] = {TEXTOID, BYTEAOID, JSONBOID};
	Datum		values[3];
	char		nulls[3];
	HeapTuple	tup;
	Form_pg_class cls;
	Oid			owner;
	char		relkind;
	PvgAsTableOwner as_owner;
	int			rc;
	Datum		result = (Datum) 0;
	bool		isnull = true;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	relid = PG_GETARG_OID(0);
	sql = text_to_cstring(PG_GETARG_TEXT_PP(1));
	for (int i = 0; i < 3; i++)
	{
		values[i] = PG_ARGISNULL(i + 2) ? (Datum) 0 : PG_GETARG_DATUM(i + 2);
		nulls[i] = PG_ARGISNULL(i + 2) ? 'n' : ' ';
	}

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table with OID %u does not exist", relid)));
	cls = (Form_pg_class) GETSTRUCT(tup);
	owner = cls->relowner;
	relkind = cls->relkind;
	ReleaseSysCache(tup);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("relation with OID %u is not a table", relid)));

	pvg_as_table_owner_begin(owner, "pg_catalog, pg_temp", &as_owner);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args(sql, 3, argtypes, values, nulls, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0 && SPI_tuptable->tupdesc->natts >= 1)
	{
		if (SPI_gettypeid(SPI_tuptable->tupdesc, 1) != JSONBOID)
			elog(ERROR, "a report query must return jsonb");
		result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			result = SPI_datumTransfer(result, false, -1);
	}
	SPI_finish();

	pvg_as_table_owner_end(&as_owner);
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}
