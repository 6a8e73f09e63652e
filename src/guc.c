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
 * privacy_guard.enabled, naptime, batch_size and batch_delay steer the
 * background worker (worker.c), and log_retention bounds privacy_guard's
 * own receipts; they are defined in every backend so that SHOW works and
 * run_maintenance() uses the same batch size.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include <limits.h>

#include "utils/guc.h"

char	   *pvg_purpose = NULL;
bool		pvg_enabled = true;
int			pvg_naptime = 60;
int			pvg_batch_size = 1000;
int			pvg_batch_delay = 10;
int			pvg_log_retention = 3 * 365 * 24 * 3600;

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
	DefineCustomIntVariable("privacy_guard.batch_size",
							"Rows purged per transaction by the background worker.",
							"run_maintenance() uses the same batches in the caller's transaction.",
							&pvg_batch_size,
							1000, 1, 1000000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("privacy_guard.batch_delay",
							"Pause between the background worker's purge batches (0: unpaced).",
							"Like autovacuum's cost delay, it leaves room for the application's own work.",
							&pvg_batch_delay,
							10, 0, 10000,
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
	MarkGUCPrefixReserved("privacy_guard");
}
