/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background enforcement: a launcher, and one short-lived worker
 *	  per database and round.
 *
 * With shared_preload_libraries = 'privacy_guard' the postmaster starts
 * the launcher once recovery has finished (so nothing runs on a hot
 * standby).  The launcher connects to no database; every naptime it lists
 * the databases that accept connections and starts, for each one whose
 * previous worker has finished, a worker that connects to it, runs
 * privacy_guard._worker_round() if the extension is installed there, and
 * exits.  No setting names the databases, a newly created extension is
 * picked up within one naptime, and DROP DATABASE and DROP EXTENSION are
 * not kept waiting: a worker holds a database only for the length of a
 * round, gives the round up between batches when DROP DATABASE waits for
 * it, and ends it quietly once the extension is gone.  The round runs the
 * same SQL steps as run_maintenance(), the synchronous twin, but commits
 * after every purge batch and paces them.
 *
 * SIGTERM ends either process at its next interrupt check (within a
 * second: every statement checks); SIGHUP makes either reload settings
 * (a worker between batches).  A launcher that dies is restarted by the postmaster.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void pvg_launcher_main(Datum arg);
PGDLLEXPORT void pvg_worker_main(Datum arg);

typedef struct PvgDbWorker
{
	Oid			dboid;
	BackgroundWorkerHandle *handle;
} PvgDbWorker;

/* Register the launcher; only while the postmaster loads preloaded libraries. */
void
pvg_worker_init(void)
{
	BackgroundWorker worker;

	/* a binary upgrade (pg_upgrade) must find the databases as they were */
	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "privacy_guard");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "pvg_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "privacy_guard launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "privacy_guard launcher");
	RegisterBackgroundWorker(&worker);
}

/* The databases a worker may connect to. */
static List *
pvg_list_databases(void)
{
	List	   *dbs = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext caller = CurrentMemoryContext;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (db->datallowconn && !db->datistemplate)
		{
			MemoryContext old = MemoryContextSwitchTo(caller);

			dbs = lappend_oid(dbs, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
	return dbs;
}

/* Start a round in a database unless its previous worker is still at work. */
static void
pvg_start_round(List **workers, Oid dboid)
{
	BackgroundWorker worker;
	ListCell   *lc;
	PvgDbWorker *w = NULL;
	pid_t		pid;

	foreach(lc, *workers)
	{
		PvgDbWorker *cand = (PvgDbWorker *) lfirst(lc);

		if (cand->dboid == dboid)
			w = cand;
	}
	if (w != NULL && w->handle != NULL &&
		GetBackgroundWorkerPid(w->handle, &pid) != BGWH_STOPPED)
		return;
	if (w == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		w = palloc0(sizeof(PvgDbWorker));
		w->dboid = dboid;
		*workers = lappend(*workers, w);
		MemoryContextSwitchTo(old);
	}
	if (w->handle != NULL)
	{
		pfree(w->handle);
		w->handle = NULL;
	}

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "privacy_guard");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "pvg_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "privacy_guard worker for database %u", dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "privacy_guard worker");
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = MyProcPid;
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		/* out of worker slots: the next naptime tries again */
		if (!RegisterDynamicBackgroundWorker(&worker, &w->handle))
			w->handle = NULL;
		MemoryContextSwitchTo(old);
	}
}

void
pvg_launcher_main(Datum arg)
{
	List	   *workers = NIL;
	TimestampTz last_start = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("privacy_guard launcher");

	for (;;)
	{
		TimestampTz now;
		TimestampTz next;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/*
		 * The latch is also set when a worker exits (bgw_notify_pid): rounds
		 * start only once a naptime has passed since the last start.
		 */
		now = GetCurrentTimestamp();
		next = TimestampTzPlusMilliseconds(last_start, (int64) pvg_naptime * 1000);
		if (last_start == 0 || now >= next)
		{
			if (pvg_enabled)
			{
				List	   *dbs = pvg_list_databases();
				ListCell   *lc;

				foreach(lc, dbs)
					pvg_start_round(&workers, lfirst_oid(lc));
				list_free(dbs);
			}
			last_start = now;
			next = TimestampTzPlusMilliseconds(now, (int64) pvg_naptime * 1000);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 TimestampDifferenceMilliseconds(now, next), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* the worker pauses at least this many times as long as a batch took */
#define PVG_PACE_FACTOR 2

/* forget requests carried out in one transaction of the worker */
#define PVG_FORGET_CHUNK 100

/* one table a round purges: a plain table of a protected tree */
typedef struct PvgTarget
{
	Oid			part;
	Oid			root;
} PvgTarget;

/* Start a transaction with a snapshot and SPI, as every step of a round does. */
static void
pvg_step_begin(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
pvg_step_end(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
}

/*
 * Whether a command that needs the database to itself waits for this
 * worker: DROP DATABASE (also ALTER DATABASE RENAME or SET TABLESPACE, and
 * CREATE DATABASE copying it as a template) holds the database's lock
 * while it waits for the other sessions to leave, up to five seconds, then
 * fails.  PostgreSQL 15 does not signal background workers then, so the
 * worker looks: with the lock a new connection takes, which such a
 * command blocks.
 */
static bool
pvg_database_wanted(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, MyDatabaseId, 0);
	if (LockAcquire(&tag, RowExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, RowExclusiveLock, true);
	return false;
}

/* how often a pausing worker looks for a DROP DATABASE waiting for it */
#define PVG_DROP_CHECK_MS 100

/*
 * Between batches: settings reloaded (a SIGHUP ends the pause, nothing else
 * does), SIGTERM obeyed, and the round given up, its committed work kept,
 * when DROP DATABASE waits for it.
 */
static void
pvg_worker_pause(long ms)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		long		left;

		CHECK_FOR_INTERRUPTS();
		if (pvg_database_wanted())
			proc_exit(0);
		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);
		/* new settings apply at once; another wake-up does not shorten the pause */
		if (left <= 0 || ConfigReloadPending)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(left, PVG_DROP_CHECK_MS), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/* the extension the round began with */
static Oid	pvg_round_extension = InvalidOid;

/*
 * A step of a round under way: the round ends quietly, its committed work
 * kept, if the extension was dropped (or dropped and created again) since
 * it began (DROP EXTENSION does not wait for a pausing worker, which holds
 * no lock).
 */
static void
pvg_round_step_begin(void)
{
	pvg_step_begin();
	if (get_extension_oid("privacy_guard", true) != pvg_round_extension)
	{
		pvg_step_end();
		proc_exit(0);
	}
}

/*
 * The round's forget requests, PVG_FORGET_CHUNK to a transaction (a mass
 * of requests neither holds one long transaction nor loses all its work
 * to a SIGTERM or a crash), with settings reloaded and SIGTERM obeyed
 * between chunks.  Returns their counts as a JSON object for
 * _worker_round: requests_done, requests_blocked, requests_restricted,
 * and failed (an SQLSTATE) if a chunk failed as a whole.
 */
static char *
pvg_worker_forget(Datum round_at)
{
	int64		after = 0;
	int64		counts[3] = {0, 0, 0};
	char		failed[6] = "";

	for (;;)
	{
		Oid			argtypes[3] = {TIMESTAMPTZOID, INT8OID, INT4OID};
		Datum		values[3];
		bool		isnull;
		bool		more;

		pvg_worker_pause(0);
		if (!pvg_enabled)
			break;				/* switched off mid-round */
		values[0] = round_at;
		values[1] = Int64GetDatum(after);
		values[2] = Int32GetDatum(PVG_FORGET_CHUNK);
		pvg_round_step_begin();
		pgstat_report_activity(STATE_RUNNING, "privacy_guard round: forget requests");
		if (SPI_execute_with_args("SELECT f.done, f.blocked, f.restricted, f.last_id, f.failed "
								  "FROM privacy_guard._worker_forget($1, $2, $3) f",
								  3, argtypes, values, NULL, false, 0) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "privacy_guard forget step failed");
		for (int i = 0; i < 3; i++)
			counts[i] += DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &isnull));
		after = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
		more = !isnull;
		{
			char	   *f = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5);

			if (f != NULL)
			{
				strlcpy(failed, f, sizeof(failed));
				more = false;
			}
		}
		pvg_step_end();
		if (!more)
			break;
	}
	return psprintf("{\"requests_done\": " INT64_FORMAT ", \"requests_blocked\": " INT64_FORMAT
					", \"requests_restricted\": " INT64_FORMAT "%s%s%s}",
					counts[0], counts[1], counts[2],
					failed[0] ? ", \"failed\": \"" : "", failed, failed[0] ? "\"" : "");
}

/*
 * One round in one database.  First the list of tables to purge; then, per
 * table, batches of privacy_guard.batch_size rows, each in its own
 * transaction, privacy_guard.batch_delay apart; then the forget requests,
 * PVG_FORGET_CHUNK to a transaction; then one transaction for tagged
 * values past their retain-until, receipts and worker_status.  A crash or
 * SIGTERM loses at most the batch or chunk under way, which rolled back;
 * the next round starts the table again from its first page and finds
 * only what is left, and takes up the requests still open.
 */
void
pvg_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	List	   *targets = NIL;
	ListCell   *lc;
	bool		active = false;
	Datum		round_at = (Datum) 0;
	char	   *result = pstrdup("{\"expired\": {}, \"errors\": {}}");
	char	   *forgotten;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("privacy_guard worker");

	/*
	 * Every statement below names its objects in full.  Never keep DROP
	 * EXTENSION, DROP DATABASE or an application waiting: a round that would
	 * wait for a lock gives up (before any deadlock check could pick the
	 * other side) and the next round tries again.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("lock_timeout", "100ms", PGC_SUSET, PGC_S_SESSION);
	/* catalog queries over set-returning functions would be JIT-compiled for nothing */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_SESSION);

	pvg_step_begin();
	/* nothing to do where the extension is not installed, or on a standby */
	if (!RecoveryInProgress())
		pvg_round_extension = get_extension_oid("privacy_guard", true);
	if (OidIsValid(pvg_round_extension))
	{
		MemoryContext old;
		bool		isnull;
		uint64		i;

		active = true;
		pgstat_report_activity(STATE_RUNNING, "privacy_guard round: listing tables");
		/* the round's cut-off: rows expiring while it runs wait for the next */
		round_at = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		if (SPI_execute("SELECT t.part::pg_catalog.oid, t.root::pg_catalog.oid "
						"FROM privacy_guard._purge_targets() t", true, 0) != SPI_OK_SELECT)
			elog(ERROR, "privacy_guard could not list the tables to purge");
		old = MemoryContextSwitchTo(TopMemoryContext);
		for (i = 0; i < SPI_processed; i++)
		{
			PvgTarget  *t = palloc(sizeof(PvgTarget));

			t->part = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
			t->root = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
			targets = lappend(targets, t);
		}
		MemoryContextSwitchTo(old);
	}
	pvg_step_end();
	if (!active)
		proc_exit(0);

	foreach(lc, targets)
	{
		PvgTarget  *t = (PvgTarget *) lfirst(lc);
		ItemPointerData after;

		ItemPointerSet(&after, 0, 0);
		for (;;)
		{
			Oid			argtypes[6] = {REGCLASSOID, REGCLASSOID, TIMESTAMPTZOID, TIDOID, INT4OID, TEXTOID};
			Datum		values[6];
			bool		isnull;
			bool		failed;
			int64		matched;
			int			batch;
			TimestampTz batch_start;

			pvg_worker_pause(0);
			if (!pvg_enabled)
				goto finish;	/* switched off mid-round */
			batch = pvg_batch_size;

			values[0] = ObjectIdGetDatum(t->part);
			values[1] = ObjectIdGetDatum(t->root);
			values[2] = round_at;
			values[3] = PointerGetDatum(&after);
			values[4] = Int32GetDatum(batch);
			values[5] = CStringGetTextDatum(result);

			batch_start = GetCurrentTimestamp();
			pvg_round_step_begin();
			pgstat_report_activity(STATE_RUNNING, "privacy_guard round: purging");
			if (SPI_execute_with_args("SELECT b.matched, b.last, b.error IS NOT NULL, "
									  "privacy_guard._add_batch($6::pg_catalog.jsonb, $2, b.action, b.processed, b.error)::pg_catalog.text, "
									  "privacy_guard._count_batch(b.action, b.processed) "
									  "FROM privacy_guard._expire_batch($1, $2, $3, $4, $5, privacy_guard._secret()) b",
									  6, argtypes, values, NULL, false, 0) != SPI_OK_SELECT ||
				SPI_processed != 1)
				elog(ERROR, "privacy_guard purge batch failed");
			matched = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			{
				Datum		last = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

				if (!isnull)
					after = *((ItemPointer) DatumGetPointer(last));
			}
			failed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
			{
				char	   *r = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);

				pfree(result);
				result = MemoryContextStrdup(TopMemoryContext, r);
			}
			pvg_step_end();

			if (failed || matched < batch)
				break;

			/*
			 * Pacing: at least batch_delay, and at least twice what
			 * the batch took, so that a round takes at most about a third
			 * of the time on any machine, whatever its speed.
			 */
			if (pvg_batch_delay > 0)
			{
				long		took = TimestampDifferenceMilliseconds(batch_start, GetCurrentTimestamp());

				pvg_worker_pause(Max((long) pvg_batch_delay, PVG_PACE_FACTOR * took));
			}
			else
				pvg_worker_pause(0);
		}
	}

finish:
	forgotten = pvg_worker_forget(round_at);

	pvg_round_step_begin();
	pgstat_report_activity(STATE_RUNNING, "privacy_guard round: receipts");
	{
		Oid			argtypes[3] = {TEXTOID, TIMESTAMPTZOID, TEXTOID};
		Datum		values[3];

		values[0] = CStringGetTextDatum(result);
		values[1] = round_at;
		values[2] = CStringGetTextDatum(forgotten);
		if (SPI_execute_with_args("SELECT privacy_guard._worker_round($1::pg_catalog.jsonb, $2, $3::pg_catalog.jsonb)",
								  3, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "privacy_guard round failed");
	}
	pvg_step_end();
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
