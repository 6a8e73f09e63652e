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
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "utils/guc.h"

char	   *pvg_purpose = NULL;

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
	MarkGUCPrefixReserved("privacy_guard");
}
