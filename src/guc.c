/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  privacy_guard's settings.
 *
 * privacy_guard.purpose is an ordinary user setting: anyone may SET it, and
 * it is checked (known purpose, authorised role, table collected for it)
 * when a statement first touches a protected table, not at SET time, so a
 * value set by ALTER ROLE, ALTER DATABASE, connection options or before the
 * library was loaded is held to exactly the same rules.
 *
 * privacy_guard.purpose_scope (superuser only, so that the roles the rules
 * bind cannot turn it off) limits a purpose to the transaction that sets it
 * (purpose_scope.c).
 *
 * privacy_guard.enabled, naptime, max_workers, databases, batch_size and
 * batch_delay steer the background worker (worker.c), and log_retention
 * and history_retention bound privacy_guard's own receipts and round
 * history; they are defined in every backend
 * so that SHOW works and run_maintenance() uses the same batch size.
 *
 * privacy_guard.audit (superuser only, so that a reader cannot switch off
 * the record of its own reads) turns the access log on (audit.c);
 * privacy_guard.audit_retention bounds how long its rows are kept and
 * privacy_guard.audit_max_entries its shared memory (read at server start,
 * defined only when the library is preloaded).
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include <limits.h>

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/varlena.h"

char	   *pvg_purpose = NULL;
bool		pvg_enabled = true;
int			pvg_naptime = 60;
int			pvg_batch_size = 10000;
int			pvg_batch_delay = 2;
int			pvg_log_retention = 3 * 365 * 24 * 3600;
int			pvg_engine_time_limit = 10000;
bool		pvg_audit = false;
static bool pvg_truncate_partitions = true;
int			pvg_audit_retention = 30 * 24 * 60;
int			pvg_audit_max_entries = 256;
int			pvg_shared_store_size = 1024;
int			pvg_max_workers = 3;
int			pvg_history_retention = 30 * 24 * 60;
char	   *pvg_databases = NULL;

static const struct config_enum_entry pvg_scope_options[] = {
	{"session", PVG_SCOPE_SESSION, false},
	{"transaction", PVG_SCOPE_TRANSACTION, false},
	{NULL, 0, false}
};

/* privacy_guard.databases: a list of names, as search_path is written */
static bool
pvg_check_databases(char **newval, void **extra, GucSource source)
{
	char	   *copy = pstrdup(*newval);
	List	   *names;
	bool		ok = SplitIdentifierString(copy, ',', &names);

	if (!ok)
		GUC_check_errdetail("List syntax is invalid.");
	list_free(names);
	pfree(copy);
	return ok;
}

void
pvg_guc_init(void)
{
	DefineCustomStringVariable("privacy_guard.purpose",
							   "Purpose under which this session or transaction processes personal data.",
							   "Every statement that touches a protected table needs one.",
							   &pvg_purpose,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, pvg_purpose_assign, NULL);
	DefineCustomEnumVariable("privacy_guard.purpose_scope",
							 "How long a purpose may last: for the session, or only for the transaction that sets it.",
							 "\"transaction\" refuses a purpose set for the session (SET without LOCAL, set_config(..., false), ALTER ROLE/DATABASE ... SET): needed behind a transaction pooler.",
							 &pvg_purpose_scope,
							 PVG_SCOPE_SESSION,
							 pvg_scope_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("privacy_guard.enabled",
							 "Whether the background worker runs enforcement rounds.",
							 NULL,
							 &pvg_enabled,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("privacy_guard.naptime",
							"Pause between background enforcement rounds.",
							NULL,
							&pvg_naptime,
							60, 1, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("privacy_guard.max_workers",
							"Most background enforcement workers running at once.",
							"They come out of max_worker_processes, beside the launcher and parallel query workers.",
							&pvg_max_workers,
							3, 1, 1024,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("privacy_guard.databases",
							   "Databases the background worker runs rounds in (empty: all).",
							   "A comma-separated list of database names, quoted as identifiers.",
							   &pvg_databases,
							   "",
							   PGC_SIGHUP,
							   GUC_LIST_INPUT,
							   pvg_check_databases, NULL, NULL);
	DefineCustomIntVariable("privacy_guard.batch_size",
							"Most rows purged per transaction by the background worker.",
							"A table's first batch has at most 1000 rows; each next one twice as many, up to this, "
							"while a batch takes under a twentieth of privacy_guard.engine_time_limit. "
							"run_maintenance() uses the same batches in the caller's transaction.",
							&pvg_batch_size,
							10000, 1, 1000000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("privacy_guard.batch_delay",
							"Least pause between the background worker's purge batches (0: unpaced).",
							"The worker also pauses at least twice as long as each batch took, leaving room for the application's own work.",
							&pvg_batch_delay,
							2, 0, 10000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("privacy_guard.log_retention",
							"How long receipts of completed erasures are kept.",
							NULL,
							&pvg_log_retention,
							3 * 365 * 24 * 3600, 3600, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("privacy_guard.history_retention",
							"How long privacy_guard.round_history keeps its rows.",
							"Older rows are deleted by the enforcement rounds.",
							&pvg_history_retention,
							30 * 24 * 60, 1, PG_INT32_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);
	DefineCustomIntVariable("privacy_guard.engine_time_limit",
							"Longest time one erasure or purge statement may take, the table owner's triggers included.",
							"A statement over the limit is cancelled and its table reported; the round goes on.",
							&pvg_engine_time_limit,
							10000, 100, 3600 * 1000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("privacy_guard.truncate_partitions",
							 "Empties a range partition wholly past retention with TRUNCATE instead of row by row.",
							 "Only partitions of a table partitioned by its retention column, past the legal hold too, "
							 "without ON DELETE triggers or rules, not referenced by a foreign key, and whose table deletes at expiry.",
							 &pvg_truncate_partitions,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("privacy_guard.audit",
							 "Records reads of protected tables in privacy_guard.access_log.",
							 "Needs privacy_guard in shared_preload_libraries.",
							 &pvg_audit,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("privacy_guard.audit_retention",
							"How long privacy_guard.access_log keeps its rows.",
							"Older rows are deleted by the enforcement round.",
							&pvg_audit_retention,
							30 * 24 * 60, 1, PG_INT32_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);
	/* sizes shared memory, which only a preloaded library has */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("privacy_guard.audit_max_entries",
								"Reads the access log holds in shared memory between flushes.",
								"Each entry (minute, role, purpose, table) takes about 16 kB.",
								&pvg_audit_max_entries,
								256, 32, 65536,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("privacy_guard.shared_store_size",
								"Most shared memory the consent store's subject sets may take (0: a private copy in each backend).",
								"When a set does not fit, backends use private copies of it (slower, never wrong) and check() says so.",
								&pvg_shared_store_size,
								1024, 0, 1024 * 1024,
								PGC_POSTMASTER,
								GUC_UNIT_MB,
								NULL, NULL, NULL);
	MarkGUCPrefixReserved("privacy_guard");
}
