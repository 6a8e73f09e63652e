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
 * picked up within one naptime, and since a worker holds a database only
 * for the length of a round, DROP DATABASE and DROP EXTENSION are not kept
 * waiting.  The round is exactly run_maintenance(), the synchronous twin.
 *
 * SIGTERM ends either process at its next interrupt check (within a
 * second: every statement checks); SIGHUP makes the launcher reload
 * settings.  A launcher that dies is restarted by the postmaster.
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
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

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

	if (!process_shared_preload_libraries_in_progress)
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

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("privacy_guard launcher");

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (pvg_enabled)
		{
			List	   *dbs = pvg_list_databases();
			ListCell   *lc;

			foreach(lc, dbs)
				pvg_start_round(&workers, lfirst_oid(lc));
			list_free(dbs);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 (long) pvg_naptime * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

void
pvg_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("privacy_guard worker");

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	/* nothing to do where the extension is not installed, or on a standby */
	if (!RecoveryInProgress() && OidIsValid(get_extension_oid("privacy_guard", true)))
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		pgstat_report_activity(STATE_RUNNING, "privacy_guard round");

		/*
		 * Never keep DROP EXTENSION, DROP DATABASE or an application waiting:
		 * a round that would wait for a lock gives up (before any deadlock
		 * check could pick the other side) and the next round tries again.
		 */
		if (SPI_execute("SET LOCAL lock_timeout = '100ms'", false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not set lock_timeout");
		if (SPI_execute("SELECT privacy_guard._worker_round()", false, 0) != SPI_OK_SELECT)
			elog(ERROR, "privacy_guard round failed");
		SPI_finish();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
