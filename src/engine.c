/*-------------------------------------------------------------------------
 *
 * engine.c
 *	  Running the erasure engine's statements with the table owner's rights.
 *
 * run_maintenance() (SQL, SECURITY DEFINER) decides what to delete or
 * anonymize; the statements themselves run here as the owner of the table
 * they touch, in a restricted security context, with FORCE ROW LEVEL
 * SECURITY lifted for that owner only (as PostgreSQL's own foreign-key
 * checks do).  So a trigger, rule, default or index expression of the
 * table owner runs with the owner's rights, never with the extension
 * owner's, and the rows hidden from the owner by the rules can be erased.
 *
 * Purging goes in batches (_batch_as_owner): each takes the next rows past
 * retention in physical order after where the previous one stopped (a TID
 * range scan, so no batch reads again what an earlier one finished), skips
 * rows that applications hold locked, and reports where it stopped.  The
 * batches grow while they are quick (pvg_next_batch).  The worker commits
 * after every batch; run_maintenance() runs the same batches in the
 * caller's transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/timeout.h"

PG_FUNCTION_INFO_V1(pvg_exec_as_owner);
PG_FUNCTION_INFO_V1(pvg_next_batch_fn);
PG_FUNCTION_INFO_V1(pvg_batch_as_owner);
PG_FUNCTION_INFO_V1(pvg_set_as_owner);

/* how long an engine statement waits for a lock held by an application */
#define PVG_ENGINE_LOCK_TIMEOUT "500ms"

/*
 * Plans of engine statements, kept for the life of the backend: a round
 * runs the same statement (same table, the subject as a parameter) for
 * every forget request and every batch, and planning costs more than
 * running an indexed DELETE.  Keyed by table, owner, parameter types and
 * the statement's text; the plan cache replans after DDL.  Bounded: when
 * full, every plan is freed and the cache starts again.
 */
#define PVG_PLAN_CACHE_MAX 256

typedef struct PvgPlanKey
{
	Oid			relid;
	Oid			owner;
	Oid			argtype;
	uint32		sql_hash;
} PvgPlanKey;

typedef struct PvgPlanEntry
{
	PvgPlanKey	key;
	char	   *sql;			/* in TopMemoryContext */
	SPIPlanPtr	plan;
} PvgPlanEntry;

static HTAB *pvg_plans = NULL;

/*
 * A time limit on every engine statement, which the table owner's code
 * cannot lift (lock_timeout and statement_timeout it can reset in its own
 * SET clauses): a trigger that waits or loops would otherwise hold up the
 * whole round.  When it fires the statement is cancelled; the SQL steps
 * catch the cancel only when _engine_timed_out() says it was ours.
 */
static TimeoutId pvg_engine_timeout_id = MAX_TIMEOUTS;
static volatile sig_atomic_t pvg_engine_timed_out = false;
static int	pvg_engine_depth = 0;

/*
 * The owner's code can catch the cancel (PL/pgSQL's EXCEPTION WHEN
 * query_canceled) and go on.  So a second timer, at twice the limit plus a
 * second, ends the session (a FATAL nothing can catch, as
 * pg_terminate_backend would): the worker's round then ends and the next
 * one starts, instead of the owner's loop holding up every erasure in the
 * database for ever.
 */
static TimeoutId pvg_engine_kill_id = MAX_TIMEOUTS;

PG_FUNCTION_INFO_V1(pvg_engine_timed_out_fn);

static void
pvg_engine_timeout_handler(void)
{
	pvg_engine_timed_out = true;
	QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

static void
pvg_engine_kill_handler(void)
{
	ProcDiePending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

/* Arm both timers for the outermost engine statement. */
static void
pvg_engine_timers_start(void)
{
	EnableTimeoutParams timeouts[2];

	if (pvg_engine_timeout_id == MAX_TIMEOUTS)
	{
		pvg_engine_timeout_id = RegisterTimeout(USER_TIMEOUT, pvg_engine_timeout_handler);
		pvg_engine_kill_id = RegisterTimeout(USER_TIMEOUT, pvg_engine_kill_handler);
	}
	pvg_engine_timed_out = false;
	timeouts[0].id = pvg_engine_timeout_id;
	timeouts[0].type = TMPARAM_AFTER;
	timeouts[0].delay_ms = pvg_engine_time_limit;
	timeouts[1].id = pvg_engine_kill_id;
	timeouts[1].type = TMPARAM_AFTER;
	timeouts[1].delay_ms = 2 * pvg_engine_time_limit + 1000;
	enable_timeouts(timeouts, 2);
}

/*
 * Disarm them.  When the statement succeeded although the limit passed
 * (the timer fired after it had done its work, before we got here), the
 * cancel it left pending is ours and dropped: the next statement, or the
 * caller's handler, must not take it for a cancel of theirs.
 */
static void
pvg_engine_timers_stop(bool succeeded)
{
	DisableTimeoutParams timeouts[2];

	timeouts[0].id = pvg_engine_timeout_id;
	timeouts[0].keep_indicator = false;
	timeouts[1].id = pvg_engine_kill_id;
	timeouts[1].keep_indicator = false;
	disable_timeouts(timeouts, 2);
	if (succeeded && pvg_engine_timed_out)
	{
		pvg_engine_timed_out = false;
		QueryCancelPending = false;
	}
}

/*
 * _engine_timed_out() -> boolean
 *
 * Whether the last cancel was the engine's own time limit; clears the flag.
 */
Datum
pvg_engine_timed_out_fn(PG_FUNCTION_ARGS)
{
	bool		result = pvg_engine_timed_out;

	pvg_engine_timed_out = false;
	PG_RETURN_BOOL(result);
}

/* Free every cached plan and start an empty cache. */
static void
pvg_plan_cache_reset(void)
{
	HASHCTL		ctl;

	if (pvg_plans != NULL)
	{
		HASH_SEQ_STATUS seq;
		PvgPlanEntry *e;

		hash_seq_init(&seq, pvg_plans);
		while ((e = hash_seq_search(&seq)) != NULL)
		{
			if (e->plan != NULL)
				SPI_freeplan(e->plan);
			if (e->sql != NULL)
				pfree(e->sql);
		}
		hash_destroy(pvg_plans);
	}
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(PvgPlanKey);
	ctl.entrysize = sizeof(PvgPlanEntry);
	pvg_plans = hash_create("privacy_guard engine plans", 64, &ctl, HASH_ELEM | HASH_BLOBS);
}

/*
 * The kept plan for sql run as owner, prepared now if need be (SPI must be
 * connected).  NULL when a different statement has the same key: the
 * caller then runs sql unprepared.
 */
static SPIPlanPtr
pvg_plan_for(Oid relid, Oid owner, const char *sql, int nargs, Oid *argtypes)
{
	PvgPlanKey	key;
	PvgPlanEntry *e;
	bool		found;
	SPIPlanPtr volatile plan;

	/*
	 * A full cache is emptied, but never under a running engine statement
	 * (an owner's trigger may call run_maintenance()): that would free the
	 * plan the outer statement is executing.  Until it ends, new
	 * statements run unprepared.
	 */
	if (pvg_plans == NULL)
		pvg_plan_cache_reset();
	else if (hash_get_num_entries(pvg_plans) >= PVG_PLAN_CACHE_MAX)
	{
		if (pvg_engine_depth > 0)
			return NULL;
		pvg_plan_cache_reset();
	}
	memset(&key, 0, sizeof(key));
	key.relid = relid;
	key.owner = owner;
	key.argtype = argtypes[0];
	key.sql_hash = hash_bytes((const unsigned char *) sql, strlen(sql));
	e = hash_search(pvg_plans, &key, HASH_ENTER, &found);
	if (found)
		return (e->plan != NULL && strcmp(e->sql, sql) == 0) ? e->plan : NULL;
	e->plan = NULL;
	e->sql = NULL;
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
	{
		hash_search(pvg_plans, &key, HASH_REMOVE, NULL);
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	}
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	e->sql = MemoryContextStrdup(TopMemoryContext, sql);
	e->plan = plan;
	return plan;
}

/*
 * Become a table's owner for statements that may run the owner's code
 * (triggers, rules, defaults, index expressions, type and domain
 * functions): that code gets the owner's rights, never the extension
 * owner's, in a restricted security context (no SET ROLE, no temporary
 * objects, no changes to session state), with FORCE ROW LEVEL SECURITY
 * lifted for the owner only (as PostgreSQL's own foreign-key checks do),
 * the DDL guard and the ledger's lock on (pvg_guard_hold), and the given
 * search_path in a GUC level of its own, which pvg_as_table_owner_end() (or
 * the error path) undoes.  The extension's own tables are read the other
 * way, as the extension's owner (pvg_as_extension_owner_begin, registry.c).
 *
 * pvg_as_table_owner_end() rolls back every setting changed at that level,
 * as PostgreSQL's own sandboxes (VACUUM, ANALYZE, index builds) do: a
 * set_config(..., false) in the owner's trigger must not outlive the
 * statement, or it would plant a search_path or a timeout in the session
 * of whoever runs the round, a superuser or the worker.
 */
void
pvg_as_table_owner_begin(Oid owner, const char *search_path,
						 PvgAsTableOwner *st)
{
	st->guard_was_off = pvg_guard_hold();
	GetUserIdAndSecContext(&st->save_userid, &st->save_sec);
	SetUserIdAndSecContext(owner, st->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION | SECURITY_NOFORCE_RLS);
	st->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", search_path,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

void
pvg_as_table_owner_end(PvgAsTableOwner *st)
{
	AtEOXact_GUC(false, st->save_nestlevel);
	SetUserIdAndSecContext(st->save_userid, st->save_sec);
	pvg_guard_restore(st->guard_was_off);
}

/*
 * Run sql with two parameters as the owner of relid, with the default
 * search_path the owner's triggers expect (the statement itself names
 * every table by its qualified name), waiting at most half a second for a
 * lock.  Leaves SPI connected with the result in SPI_tuptable; the caller
 * reads it and calls SPI_finish().  Errors propagate (a lock timeout as
 * 55P03), and the ERROR path restores the user and the settings.
 */
static int
pvg_run_as_table_owner(Oid relid, const char *sql, Oid *argtypes, Datum *values,
					   char *nulls)
{
	HeapTuple	tup;
	Oid			owner;
	PvgAsTableOwner as_owner;
	int			rc;
	bool		cacheable;
	SPIPlanPtr volatile plan;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table with OID %u does not exist", relid)));
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;

	/*
	 * A statement a rule rewrites to nothing keeps no dependency on the
	 * table, so its kept plan would outlive the rule: tables that have (or
	 * had) rules are planned afresh every time.
	 */
	cacheable = !((Form_pg_class) GETSTRUCT(tup))->relhasrules;
	ReleaseSysCache(tup);

	/* the owner's own default search_path: the statement names every table in full */
	pvg_as_table_owner_begin(owner, "\"$user\", public", &as_owner);
	/* rows an application holds locked are left for the next round */
	(void) set_config_option("lock_timeout", PVG_ENGINE_LOCK_TIMEOUT,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = cacheable ? pvg_plan_for(relid, owner, sql, 2, argtypes) : NULL;

	if (pvg_engine_depth++ == 0)
		pvg_engine_timers_start();
	PG_TRY();
	{
		if (plan != NULL)
			rc = SPI_execute_plan(plan, values, nulls, false, 0);
		else
			rc = SPI_execute_with_args(sql, 2, argtypes, values, nulls, false, 0);
	}
	PG_CATCH();
	{
		if (--pvg_engine_depth == 0)
			pvg_engine_timers_stop(false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (--pvg_engine_depth == 0)
		pvg_engine_timers_stop(true);
	if (rc < 0)
		elog(ERROR, "executing an engine statement failed: %s", SPI_result_code_string(rc));

	pvg_as_table_owner_end(&as_owner);
	return rc;
}

/*
 * _exec_as_owner(tbl regclass, sql text, key text, secret bytea) -> bigint
 *
 * Runs sql, which may use $1 (the subject key) and $2 (the digest key), as
 * the owner of tbl (see pvg_run_as_table_owner).  Returns the rows
 * processed, or for a query the first column of its first row.
 */
Datum
pvg_exec_as_owner(PG_FUNCTION_ARGS)
{
	Oid			argtypes[2] = {TEXTOID, BYTEAOID};
	Datum		values[2];
	char		nulls[2];
	int			rc;
	int64		result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and statement must not be NULL")));
	values[0] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	nulls[0] = PG_ARGISNULL(2) ? 'n' : ' ';
	values[1] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[1] = PG_ARGISNULL(3) ? 'n' : ' ';

	rc = pvg_run_as_table_owner(PG_GETARG_OID(0), text_to_cstring(PG_GETARG_TEXT_PP(1)),
						  argtypes, values, nulls);
	if (rc == SPI_OK_SELECT && SPI_processed > 0)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		result = isnull ? 0 : DatumGetInt64(d);
	}
	else
		result = (int64) SPI_processed;
	SPI_finish();
	PG_RETURN_INT64(result);
}

/*
 * _batch_as_owner(tbl regclass, sql text, after tid, secret bytea,
 *				   OUT matched bigint, OUT processed bigint, OUT last tid)
 *
 * Runs one purge batch as the owner of tbl (see pvg_run_as_table_owner).
 * sql is a query that uses $1 (where the previous batch stopped) and $2
 * (the digest key) and returns one row of exactly those three columns: the rows
 * the batch took, the rows it deleted or changed, and the last row it took.
 */
Datum
pvg_batch_as_owner(PG_FUNCTION_ARGS)
{
	Oid			argtypes[2] = {TIDOID, BYTEAOID};
	Datum		values[2];
	char		nulls[2];
	TupleDesc	tupdesc;
	Datum		out[3];
	bool		outnull[3] = {false, false, true};
	int			rc;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table, statement and position must not be NULL")));

	values[0] = PG_GETARG_DATUM(2);
	nulls[0] = ' ';
	values[1] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[1] = PG_ARGISNULL(3) ? 'n' : ' ';

	rc = pvg_run_as_table_owner(PG_GETARG_OID(0), text_to_cstring(PG_GETARG_TEXT_PP(1)),
						  argtypes, values, nulls);
	if (rc != SPI_OK_SELECT || SPI_processed != 1 || SPI_tuptable->tupdesc->natts != 3)
		elog(ERROR, "a purge batch must return one row of three columns");
	for (int i = 0; i < 3; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &isnull);

		if (i < 2)
			out[i] = Int64GetDatum(isnull ? 0 : DatumGetInt64(d));
		else if (!isnull)
		{
			/* copy the tid out of SPI's memory before SPI_finish frees it */
			out[i] = PointerGetDatum(SPI_datumTransfer(d, false, sizeof(ItemPointerData)));
			outnull[i] = false;
		}
	}
	SPI_finish();
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, out, outnull)));
}

/*
 * _set_as_owner(tbl regclass, sql text, keys text[], secret bytea) -> jsonb
 *
 * Runs one statement of a set of forget requests as the owner of tbl (see
 * pvg_run_as_table_owner): sql may use $1 (the subject keys) and $2 (the
 * digest key), and returns one row whose first column is a jsonb (the
 * rows per key), or no row.  Returns that value, or NULL.
 */
Datum
pvg_set_as_owner(PG_FUNCTION_ARGS)
{
	Oid			argtypes[2] = {TEXTARRAYOID, BYTEAOID};
	Datum		values[2];
	char		nulls[2];
	Datum		result = (Datum) 0;
	bool		isnull = true;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table, statement and keys must not be NULL")));
	values[0] = PG_GETARG_DATUM(2);
	nulls[0] = ' ';
	values[1] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[1] = PG_ARGISNULL(3) ? 'n' : ' ';

	if (pvg_run_as_table_owner(PG_GETARG_OID(0), text_to_cstring(PG_GETARG_TEXT_PP(1)),
							   argtypes, values, nulls) == SPI_OK_SELECT &&
		SPI_processed > 0)
	{
		if (SPI_tuptable->tupdesc->natts != 1 ||
			SPI_gettypeid(SPI_tuptable->tupdesc, 1) != JSONBOID)
			elog(ERROR, "a set statement must return one jsonb column");
		result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		/* copy the value out of SPI's memory before SPI_finish frees it */
		if (!isnull)
			result = SPI_datumTransfer(result, false, -1);
	}
	SPI_finish();
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}

/*
 * A table's first purge batch has at most this many rows; each next one
 * twice as many as the last, up to privacy_guard.batch_size, while a batch
 * takes under a twentieth of privacy_guard.engine_time_limit.  Fewer,
 * longer batches cost the applications less beside the purge
 * (bench/results/purge_p99_control_20261208.md); a table whose owner's
 * triggers make rows slow keeps its batches small, well within the limit
 * that would cancel them.
 */
#define PVG_FIRST_BATCH 1000

/*
 * The rows of a table's next purge batch, after one of batch rows (0: none
 * yet) that took took_ms; the worker's and run_maintenance()'s alike.
 */
int
pvg_next_batch(int batch, long took_ms)
{
	if (batch <= 0)
		batch = PVG_FIRST_BATCH;
	else if (took_ms < pvg_engine_time_limit / 20)
		batch *= 2;				/* at most 2 x 1000000: no overflow */
	return Min(batch, pvg_batch_size);
}

/* _next_batch(batch, took_ms) -> pvg_next_batch, for run_maintenance(); NULL batch: the first */
Datum
pvg_next_batch_fn(PG_FUNCTION_ARGS)
{
	int			batch = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT32(0);
	double		took = PG_ARGISNULL(1) ? 0 : PG_GETARG_FLOAT8(1);

	PG_RETURN_INT32(pvg_next_batch(batch, (long) Min(took, (double) LONG_MAX)));
}
