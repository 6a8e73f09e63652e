/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background enforcement: a launcher, and one short-lived worker
 *	  per database and round.
 *
 * With shared_preload_libraries = 'privacy_guard' the postmaster starts
 * the launcher once recovery has finished (so nothing runs on a hot
 * standby).  The launcher connects to no database; every naptime it lists
 * the databases that accept connections (those privacy_guard.databases
 * names, if it is set) and keeps, in its own memory, what it knows of
 * each: when its last round began and whether a worker found the
 * extension there.  A round is due in a database a naptime after the last
 * one there began; the due databases are served the least recently served
 * first, by at most privacy_guard.max_workers workers at once.  A worker
 * connects to its database, runs a round if the extension is installed
 * there, tells the launcher what it found through its slot in shared
 * memory (PvgWorkerSlot), and exits.  A database found without the
 * extension gets no worker again until CREATE EXTENSION privacy_guard
 * commits somewhere in the cluster (the install script's
 * _extension_created() bumps a counter at commit), so a new extension is
 * picked up within a naptime (and its wait in the queue) while hundreds
 * of other databases cost one short connection each after the launcher
 * starts.  A launcher that is restarted forgets what it knew (and does
 * not count the workers of its predecessor still at work).
 *
 * DROP DATABASE and DROP EXTENSION are not kept waiting: a worker holds a
 * database only for the length of a round, gives the round up between
 * batches when DROP DATABASE waits for it, and ends it quietly once the
 * extension is gone.  The round runs the same SQL steps as
 * run_maintenance(), the synchronous twin, but commits after every purge
 * batch and paces them.
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
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

PGDLLEXPORT void pvg_launcher_main(Datum arg);
PGDLLEXPORT void pvg_worker_main(Datum arg);

PG_FUNCTION_INFO_V1(pvg_launcher_status);
PG_FUNCTION_INFO_V1(pvg_extension_created);
PG_FUNCTION_INFO_V1(pvg_database_chosen_here);

/* what a worker found, told to the launcher through its slot */
#define PVG_OUTCOME_STARTED		0	/* ended before it looked (an error, a drop) */
#define PVG_OUTCOME_NO_EXTENSION 1
#define PVG_OUTCOME_EXTENSION	2	/* the extension is there: a round ran */

/*
 * A worker's slot in shared memory: the launcher writes the ticket before
 * it starts the worker, the worker its outcome once it knows whether the
 * extension is installed.  A worker left over from a launcher that died
 * holds an older ticket and is not heard.
 */
typedef struct PvgWorkerSlot
{
	slock_t		mutex;
	uint64		ticket;
	int			outcome;
} PvgWorkerSlot;

typedef struct PvgLauncherShared
{
	/* bumped when CREATE EXTENSION privacy_guard commits in any database */
	pg_atomic_uint64 extension_created;
	pg_atomic_uint64 next_ticket;
	pg_atomic_uint64 workers_started;
	pg_atomic_uint64 found_no_extension;
	pg_atomic_uint32 running;
	int			nslots;
	PvgWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} PvgLauncherShared;

static PvgLauncherShared *pvg_launcher_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* the launcher's knowledge of a database */
#define PVG_DB_UNKNOWN		0
#define PVG_DB_NO_EXTENSION 1
#define PVG_DB_EXTENSION	2

typedef struct PvgDbState
{
	Oid			dboid;			/* hash key */
	NameData	name;
	int			state;
	bool		listed;			/* seen in the last listing of pg_database */
	TimestampTz last_start;		/* 0: never */
	uint64		checked_at;		/* extension_created when found without it */
	int			slot;			/* -1: no worker running */
	uint64		ticket;
	BackgroundWorkerHandle *handle;
} PvgDbState;

static Size
pvg_launcher_shmem_size(void)
{
	return add_size(offsetof(PvgLauncherShared, slots),
					mul_size(max_worker_processes, sizeof(PvgWorkerSlot)));
}

static void
pvg_launcher_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(pvg_launcher_shmem_size());
}

static void
pvg_launcher_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	pvg_launcher_shared = ShmemInitStruct("privacy_guard launcher", pvg_launcher_shmem_size(), &found);
	if (!found)
	{
		pg_atomic_init_u64(&pvg_launcher_shared->extension_created, 0);
		pg_atomic_init_u64(&pvg_launcher_shared->next_ticket, 1);
		pg_atomic_init_u64(&pvg_launcher_shared->workers_started, 0);
		pg_atomic_init_u64(&pvg_launcher_shared->found_no_extension, 0);
		pg_atomic_init_u32(&pvg_launcher_shared->running, 0);
		pvg_launcher_shared->nslots = max_worker_processes;
		for (int i = 0; i < max_worker_processes; i++)
		{
			SpinLockInit(&pvg_launcher_shared->slots[i].mutex);
			pvg_launcher_shared->slots[i].ticket = 0;
			pvg_launcher_shared->slots[i].outcome = PVG_OUTCOME_STARTED;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Register the launcher and its shared memory; only while the postmaster
 * loads preloaded libraries.
 */
void
pvg_worker_init(void)
{
	BackgroundWorker worker;

	/* a binary upgrade (pg_upgrade) must find the databases as they were */
	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pvg_launcher_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pvg_launcher_shmem_startup;

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

/* CREATE EXTENSION privacy_guard of this transaction, told at commit */
static bool pvg_created_pending = false;
static bool pvg_created_callback = false;

static void
pvg_created_xact_callback(XactEvent event, void *arg)
{
	if (!pvg_created_pending)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PREPARE)
	{
		if (pvg_launcher_shared != NULL)
			pg_atomic_fetch_add_u64(&pvg_launcher_shared->extension_created, 1);
		pvg_created_pending = false;
	}
	else if (event == XACT_EVENT_ABORT)
		pvg_created_pending = false;
}

/*
 * _extension_created() -> void, called by the install script: when the
 * transaction commits, the launcher looks again at the databases where it
 * found no extension.  Nothing without a preloaded library (no launcher).
 */
Datum
pvg_extension_created(PG_FUNCTION_ARGS)
{
	if (pvg_launcher_shared == NULL)
		PG_RETURN_VOID();
	if (!pvg_created_callback)
	{
		RegisterXactCallback(pvg_created_xact_callback, NULL);
		pvg_created_callback = true;
	}
	pvg_created_pending = true;
	PG_RETURN_VOID();
}

/*
 * launcher_status() -> (workers_running, workers_started, found_no_extension):
 * the launcher's counters since the server started, cluster-wide; NULLs
 * without a preloaded library.
 */
Datum
pvg_launcher_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (pvg_launcher_shared == NULL)
		nulls[0] = nulls[1] = nulls[2] = true;
	else
	{
		values[0] = Int32GetDatum((int32) pg_atomic_read_u32(&pvg_launcher_shared->running));
		values[1] = Int64GetDatum((int64) pg_atomic_read_u64(&pvg_launcher_shared->workers_started));
		values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&pvg_launcher_shared->found_no_extension));
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * Refresh the launcher's table of databases from pg_database: those that
 * accept connections and are not templates.  Entries of databases gone
 * (or closed to connections) are dropped once no worker runs there.
 */
static void
pvg_list_databases(HTAB *dbs)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	HASH_SEQ_STATUS seq;
	PvgDbState *db;

	hash_seq_init(&seq, dbs);
	while ((db = (PvgDbState *) hash_seq_search(&seq)) != NULL)
		db->listed = false;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database form = (Form_pg_database) GETSTRUCT(tup);
		bool		found;

		if (!form->datallowconn || form->datistemplate)
			continue;
		db = (PvgDbState *) hash_search(dbs, &form->oid, HASH_ENTER, &found);
		if (!found)
		{
			db->state = PVG_DB_UNKNOWN;
			db->last_start = 0;
			db->checked_at = 0;
			db->slot = -1;
			db->ticket = 0;
			db->handle = NULL;
		}
		db->name = form->datname;
		db->listed = true;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();

	hash_seq_init(&seq, dbs);
	while ((db = (PvgDbState *) hash_seq_search(&seq)) != NULL)
		if (!db->listed && db->slot < 0)
			(void) hash_search(dbs, &db->dboid, HASH_REMOVE, NULL);
}

/*
 * Take note of workers that have ended: what they found, and their slots
 * freed.
 */
static void
pvg_reap_workers(HTAB *dbs, bool *slot_used, int *running)
{
	HASH_SEQ_STATUS seq;
	PvgDbState *db;

	hash_seq_init(&seq, dbs);
	while ((db = (PvgDbState *) hash_seq_search(&seq)) != NULL)
	{
		PvgWorkerSlot *slot;
		pid_t		pid;
		int			outcome;

		if (db->slot < 0 || GetBackgroundWorkerPid(db->handle, &pid) != BGWH_STOPPED)
			continue;
		slot = &pvg_launcher_shared->slots[db->slot];
		SpinLockAcquire(&slot->mutex);
		outcome = slot->ticket == db->ticket ? slot->outcome : PVG_OUTCOME_STARTED;
		slot->ticket = 0;
		SpinLockRelease(&slot->mutex);
		if (outcome == PVG_OUTCOME_NO_EXTENSION)
			db->state = PVG_DB_NO_EXTENSION;
		else if (outcome == PVG_OUTCOME_EXTENSION)
			db->state = PVG_DB_EXTENSION;
		slot_used[db->slot] = false;
		db->slot = -1;
		pfree(db->handle);
		db->handle = NULL;
		(*running)--;
	}
}

/* Whether privacy_guard.databases (a list of names) lets rounds run in a database. */
static bool
pvg_database_chosen(List *chosen, const char *name)
{
	ListCell   *lc;

	if (chosen == NIL)
		return true;
	foreach(lc, chosen)
		if (strcmp((char *) lfirst(lc), name) == 0)
			return true;
	return false;
}

/*
 * _database_chosen() -> whether privacy_guard.databases lets the
 * background worker run rounds in this database (check() warns if not).
 */
Datum
pvg_database_chosen_here(PG_FUNCTION_ARGS)
{
	char	   *names = pstrdup(pvg_databases);
	char	   *here = get_database_name(MyDatabaseId);
	List	   *chosen = NIL;
	bool		result;

	if (!SplitIdentifierString(names, ',', &chosen))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in privacy_guard.databases")));
	result = here != NULL && pvg_database_chosen(chosen, here);
	list_free(chosen);
	pfree(names);
	PG_RETURN_BOOL(result);
}

/* the least recently served first; never served before all */
static int
pvg_db_order(const ListCell *a, const ListCell *b)
{
	PvgDbState *x = (PvgDbState *) lfirst(a);
	PvgDbState *y = (PvgDbState *) lfirst(b);

	if (x->last_start != y->last_start)
		return x->last_start < y->last_start ? -1 : 1;
	if (x->dboid != y->dboid)
		return x->dboid < y->dboid ? -1 : 1;
	return 0;
}

/*
 * Start a worker in a database: false if no background worker slot is
 * free (max_worker_processes), and the launcher tries again later.
 */
static bool
pvg_start_worker(PvgDbState *db, int slotno, uint64 created)
{
	BackgroundWorker worker;
	PvgWorkerSlot *slot = &pvg_launcher_shared->slots[slotno];
	uint64		ticket = pg_atomic_fetch_add_u64(&pvg_launcher_shared->next_ticket, 1);
	MemoryContext old;
	bool		ok;

	SpinLockAcquire(&slot->mutex);
	slot->ticket = ticket;
	slot->outcome = PVG_OUTCOME_STARTED;
	SpinLockRelease(&slot->mutex);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "privacy_guard");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "pvg_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "privacy_guard worker for database %u", db->dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "privacy_guard worker");
	worker.bgw_main_arg = ObjectIdGetDatum(db->dboid);
	memcpy(worker.bgw_extra, &slotno, sizeof(int));
	memcpy(worker.bgw_extra + sizeof(int), &ticket, sizeof(uint64));
	worker.bgw_notify_pid = MyProcPid;

	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&worker, &db->handle);
	MemoryContextSwitchTo(old);
	if (!ok)
	{
		db->handle = NULL;
		SpinLockAcquire(&slot->mutex);
		slot->ticket = 0;
		SpinLockRelease(&slot->mutex);
		return false;
	}
	db->slot = slotno;
	db->ticket = ticket;
	db->last_start = GetCurrentTimestamp();
	/* what it finds holds as of now: a later CREATE EXTENSION is told apart */
	db->checked_at = created;
	pg_atomic_fetch_add_u64(&pvg_launcher_shared->workers_started, 1);
	return true;
}

/*
 * The launcher.  Each database has its own naptime: a round is due once a
 * naptime has passed since the last one there began.  At most
 * privacy_guard.max_workers workers run at once; the due databases wait
 * in a queue, the one least recently served first, so a database with
 * work is never starved by hundreds of idle ones.  A database found
 * without the extension is not looked at again (no process is started
 * there) until CREATE EXTENSION privacy_guard commits somewhere in the
 * cluster; a database that is not in privacy_guard.databases (when it is
 * set) gets no worker at all.
 *
 * The latch is set by the postmaster when a worker ends (bgw_notify_pid),
 * which frees a place for the next database in the queue.
 */
void
pvg_launcher_main(Datum arg)
{
	HASHCTL		ctl;
	HTAB	   *dbs;
	bool	   *slot_used;
	int			running = 0;
	TimestampTz last_list = 0;
	bool		warned_no_slot = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("privacy_guard launcher");

	if (pvg_launcher_shared == NULL)
		elog(ERROR, "privacy_guard launcher has no shared memory");
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(PvgDbState);
	ctl.hcxt = TopMemoryContext;
	dbs = hash_create("privacy_guard databases", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	slot_used = MemoryContextAllocZero(TopMemoryContext, sizeof(bool) * pvg_launcher_shared->nslots);
	pg_atomic_write_u32(&pvg_launcher_shared->running, 0);

	for (;;)
	{
		TimestampTz now;
		TimestampTz wake;
		long		naptime_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		naptime_ms = (long) pvg_naptime * 1000;

		pvg_reap_workers(dbs, slot_used, &running);
		now = GetCurrentTimestamp();
		/* new databases are found within a naptime */
		if (last_list == 0 || now >= TimestampTzPlusMilliseconds(last_list, naptime_ms))
		{
			pvg_list_databases(dbs);
			last_list = now;
		}
		wake = TimestampTzPlusMilliseconds(last_list, naptime_ms);

		if (pvg_enabled)
		{
			uint64		created = pg_atomic_read_u64(&pvg_launcher_shared->extension_created);
			char	   *names = pstrdup(pvg_databases);
			List	   *chosen = NIL;
			List	   *due = NIL;
			HASH_SEQ_STATUS seq;
			PvgDbState *db;
			ListCell   *lc;

			/* the check hook accepted the list */
			if (!SplitIdentifierString(names, ',', &chosen))
				elog(ERROR, "invalid list syntax in privacy_guard.databases");
			hash_seq_init(&seq, dbs);
			while ((db = (PvgDbState *) hash_seq_search(&seq)) != NULL)
			{
				TimestampTz next;

				if (db->slot >= 0 || !db->listed ||
					!pvg_database_chosen(chosen, NameStr(db->name)))
					continue;
				if (db->state == PVG_DB_NO_EXTENSION && db->checked_at == created)
					continue;
				next = TimestampTzPlusMilliseconds(db->last_start, naptime_ms);
				if (db->last_start == 0 || db->state == PVG_DB_NO_EXTENSION || now >= next)
					due = lappend(due, db);
				else if (next < wake)
					wake = next;
			}
			list_sort(due, pvg_db_order);
			foreach(lc, due)
			{
				int			slotno;

				if (running >= pvg_max_workers)
					break;
				for (slotno = 0; slotno < pvg_launcher_shared->nslots; slotno++)
					if (!slot_used[slotno])
						break;
				if (slotno >= pvg_launcher_shared->nslots)
					break;
				if (!pvg_start_worker((PvgDbState *) lfirst(lc), slotno, created))
				{
					/* out of worker slots: a worker that ends wakes the launcher */
					if (!warned_no_slot)
						ereport(LOG,
								(errmsg("privacy_guard launcher could not start a worker: no background worker slot is free"),
								 errhint("Raise max_worker_processes, or lower privacy_guard.max_workers.")));
					warned_no_slot = true;
					break;
				}
				warned_no_slot = false;
				slot_used[slotno] = true;
				running++;
			}
			list_free(due);
			list_free(chosen);
			pfree(names);
		}
		pg_atomic_write_u32(&pvg_launcher_shared->running, (uint32) running);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(TimestampDifferenceMilliseconds(now, wake), 1), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * Tell the launcher what this worker found (see PvgWorkerSlot).  Called
 * once, as soon as the worker knows.
 */
static void
pvg_worker_report(int outcome)
{
	int			slotno;
	uint64		ticket;
	PvgWorkerSlot *slot;

	if (pvg_launcher_shared == NULL)
		return;
	memcpy(&slotno, MyBgworkerEntry->bgw_extra, sizeof(int));
	memcpy(&ticket, MyBgworkerEntry->bgw_extra + sizeof(int), sizeof(uint64));
	if (slotno < 0 || slotno >= pvg_launcher_shared->nslots)
		return;
	slot = &pvg_launcher_shared->slots[slotno];
	SpinLockAcquire(&slot->mutex);
	if (slot->ticket == ticket)
		slot->outcome = outcome;
	SpinLockRelease(&slot->mutex);
	if (outcome == PVG_OUTCOME_NO_EXTENSION)
		pg_atomic_fetch_add_u64(&pvg_launcher_shared->found_no_extension, 1);
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
 * table, batches of up to privacy_guard.batch_size rows, each in its own
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
		pvg_worker_report(PVG_OUTCOME_EXTENSION);
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
	{
		if (!RecoveryInProgress())
			pvg_worker_report(PVG_OUTCOME_NO_EXTENSION);
		proc_exit(0);
	}

	foreach(lc, targets)
	{
		PvgTarget  *t = (PvgTarget *) lfirst(lc);
		ItemPointerData after;
		int			batch = 0;	/* rows in the last batch: none yet */
		long		took = 0;	/* and how long it took (ms) */

		ItemPointerSet(&after, 0, 0);
		for (;;)
		{
			Oid			argtypes[6] = {REGCLASSOID, REGCLASSOID, TIMESTAMPTZOID, TIDOID, INT4OID, TEXTOID};
			Datum		values[6];
			bool		isnull;
			bool		failed;
			int64		matched;
			TimestampTz batch_start;

			pvg_worker_pause(0);
			if (!pvg_enabled)
				goto finish;	/* switched off mid-round */
			batch = pvg_next_batch(batch, took);	/* after a SIGHUP: with its batch_size */

			values[0] = ObjectIdGetDatum(t->part);
			values[1] = ObjectIdGetDatum(t->root);
			values[2] = round_at;
			values[3] = PointerGetDatum(&after);
			values[4] = Int32GetDatum(batch);
			values[5] = CStringGetTextDatum(result);

			batch_start = GetCurrentTimestamp();
			pvg_round_step_begin();

			/*
			 * The batch commits without waiting for its WAL to reach disk
			 * (synchronous_commit off for this transaction only).  Waiting
			 * would add a flush of the batch's WAL, full-page images of every
			 * page it touched included, to the queue every application commit
			 * waits in.  No promise rests on a purge batch: it writes no
			 * receipt; its count in worker_status (_count_batch) commits or is
			 * lost with it; and what reports the round (round_history,
			 * worker_status's round, the forget step's receipts) commits later
			 * and durably, as the server is configured, and its flush carries
			 * every batch before it, WAL being flushed in order (so does any
			 * other session's durable commit that saw the rows gone).  A crash
			 * loses at most the batches of the last moments (PostgreSQL
			 * flushes them within three times wal_writer_delay): their rows
			 * are back, still past retention, and the next round purges
			 * them again.
			 */
			(void) set_config_option("synchronous_commit", "off", PGC_SUSET, PGC_S_SESSION,
									 GUC_ACTION_LOCAL, true, 0, false);
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
			 * Pacing: at least batch_delay, and at least twice what the
			 * batch took, so that a round takes at most about a third of
			 * the time on any machine, whatever its speed.
			 */
			took = TimestampDifferenceMilliseconds(batch_start, GetCurrentTimestamp());
			if (pvg_batch_delay > 0)
				pvg_worker_pause(Max((long) pvg_batch_delay, PVG_PACE_FACTOR * took));
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
