/*-------------------------------------------------------------------------
 *
 * disclose.c
 *	  disclose(): hand rows of a protected table to a recipient, and record
 *	  per subject what went out.
 *
 * Three steps, each with the rights it needs and no more:
 *	1. as the extension owner, _disclosure_query() checks that the recipient
 *	   exists, that the purpose (or an ancestor) discloses to it, that the
 *	   table is protected and the columns are its own, and builds the query;
 *	2. as the caller, under the purpose (set for this call only, as a
 *	   function's SET clause would, with search_path pinned), the query
 *	   reads the rows: the caller's table privileges, the rules' policies
 *	   for bound roles, and row_visible() in the query itself for every
 *	   role, unbound ones included, so a subject without consent to a
 *	   consent purpose is never disclosed;
 *	3. as the extension owner, _record_disclosure() records the subjects of
 *	   exactly the rows returned.  That function is executable by nobody
 *	   else, so no role can write a disclosure record of its own making,
 *	   and the subject of each row is the table's subject column, read by
 *	   the query privacy_guard built, never a value the caller chose.
 * Rows are returned as jsonb objects of the chosen columns, after the
 * record is written.  disclose() refuses to run inside a transaction block
 * or a savepoint, where a ROLLBACK could take the record back after the
 * rows were sent.  What it cannot see: a function of the caller's that
 * relays the rows (RAISE NOTICE) and then fails; the read itself is in the
 * access log all the same (privacy_guard.audit), with its subjects.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(pvg_disclose);

/*
 * disclose(recipient text, purpose text, tbl regclass, columns name[],
 *			subjects text[] DEFAULT NULL) -> SETOF jsonb
 *
 * See the file header.  subjects, when given, limits the rows to those
 * subjects.  Raises the errors of _disclosure_query() and of the read
 * (rules 1-4); nothing is recorded unless the whole read succeeded.
 */
Datum
pvg_disclose(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		recipient,
				purpose,
				tbl,
				columns;
	Datum		subjects = (Datum) 0;
	bool		has_subjects = !PG_ARGISNULL(4);
	Oid			save_userid;
	int			save_sec;
	char	   *sql;
	int			nest;
	int			rc;
	uint64		i;
	uint64		nrows;
	ArrayBuildState *subj;
	MemoryContext callcxt = CurrentMemoryContext;
	char	   *caller = GetUserNameFromId(GetUserId(), false);

	for (i = 0; i < 4; i++)
	{
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("recipient, purpose, table and columns of a disclosure must not be null")));
	}
	/*
	 * The record must commit with the rows it records: rows sent to the
	 * client from inside a transaction block or a savepoint could be kept
	 * while a ROLLBACK takes the record back.
	 */
	if (IsTransactionBlock() || IsSubTransaction())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("disclose() cannot run inside a transaction block"),
				 errdetail("A disclosure is recorded in the statement's own transaction, which must commit as the rows are handed out."),
				 errhint("Run it as a statement of its own, outside BEGIN ... COMMIT.")));
	recipient = PG_GETARG_DATUM(0);
	purpose = PG_GETARG_DATUM(1);
	tbl = PG_GETARG_DATUM(2);
	columns = PG_GETARG_DATUM(3);
	if (has_subjects)
		subjects = PG_GETARG_DATUM(4);

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	/* 1. the checks and the query, as the extension owner */
	pvg_as_extension_owner_begin(&save_userid, &save_sec);
	{
		Oid			argtypes[4] = {TEXTOID, TEXTOID, REGCLASSOID, NAMEARRAYOID};
		Datum		args[4] = {recipient, purpose, tbl, columns};
		bool		isnull;

		rc = SPI_execute_with_args("SELECT privacy_guard._disclosure_query($1, $2, $3, $4)",
								   4, argtypes, args, NULL, true, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "_disclosure_query failed: %s", SPI_result_code_string(rc));
		sql = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		sql = MemoryContextStrdup(callcxt, sql);
	}
	pvg_as_extension_owner_end(save_userid, save_sec);

	/* 2. the read, as the caller, under the purpose */
	nest = NewGUCNestLevel();
	(void) set_config_option("privacy_guard.purpose", TextDatumGetCString(purpose),
							 superuser() ? PGC_SUSET : PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 superuser() ? PGC_SUSET : PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	subj = initArrayResult(TEXTOID, callcxt, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	{
		Oid			argtypes[1] = {TEXTARRAYOID};
		Datum		args[1] = {subjects};
		char		nulls[1] = {has_subjects ? ' ' : 'n'};

		rc = SPI_execute_with_args(sql, 1, argtypes, args, nulls, true, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "the disclosure's query failed: %s", SPI_result_code_string(rc));
	}
	nrows = SPI_processed;
	for (i = 0; i < nrows; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		snull;
		bool		rnull;
		Datum		s = SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &snull);
		Datum		row = SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &rnull);
		MemoryContext old = MemoryContextSwitchTo(callcxt);

		/* a row without a subject (anonymized) is about nobody: not recorded */
		if (!snull)
			accumArrayResult(subj, PointerGetDatum(DatumGetTextPCopy(s)), false, TEXTOID, callcxt);
		MemoryContextSwitchTo(old);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &row, &rnull);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	AtEOXact_GUC(true, nest);

	/* 3. the record, as the extension owner */
	pvg_as_extension_owner_begin(&save_userid, &save_sec);
	{
		Oid			argtypes[7] = {TEXTOID, TEXTOID, REGCLASSOID, NAMEARRAYOID, TEXTARRAYOID, INT8OID, NAMEOID};
		Datum		args[7];

		args[0] = recipient;
		args[1] = purpose;
		args[2] = tbl;
		args[3] = columns;
		args[4] = makeArrayResult(subj, callcxt);
		args[5] = Int64GetDatum((int64) nrows);
		args[6] = DirectFunctionCall1(namein, CStringGetDatum(caller));
		rc = SPI_execute_with_args("SELECT privacy_guard._record_disclosure($1, $2, $3, $4, $5, $6, $7)",
								   7, argtypes, args, NULL, false, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "_record_disclosure failed: %s", SPI_result_code_string(rc));
	}
	pvg_as_extension_owner_end(save_userid, save_sec);

	return (Datum) 0;
}
