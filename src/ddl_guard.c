/*-------------------------------------------------------------------------
 *
 * ddl_guard.c
 *	  The switch that lets privacy_guard's own functions change the
 *	  row-level security of protected tables.
 *
 * An event trigger refuses DDL that would weaken a protected table's
 * policies (a table owner may otherwise drop them or turn row-level
 * security off).  protect() and unprotect() must change exactly those
 * things; they turn the guard off around their own DDL.  The switch is a C
 * variable, not a setting, so no SQL can flip it except through
 * _guard_suspend(), which PUBLIC may not execute.  It is reset at the end
 * of every transaction and when a subtransaction aborts, so an error
 * caught in an exception block cannot leave it off either.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "access/xact.h"

PG_FUNCTION_INFO_V1(pvg_guard_suspend);
PG_FUNCTION_INFO_V1(pvg_guard_suspended);

static bool pvg_guard_off = false;

static void
pvg_guard_xact_callback(XactEvent event, void *arg)
{
	pvg_guard_off = false;
}

static void
pvg_guard_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		pvg_guard_off = false;
}

void
pvg_ddl_guard_init(void)
{
	RegisterXactCallback(pvg_guard_xact_callback, NULL);
	RegisterSubXactCallback(pvg_guard_subxact_callback, NULL);
}

/* _guard_suspend(off boolean): turn the guard off (true) or on again */
Datum
pvg_guard_suspend(PG_FUNCTION_ARGS)
{
	pvg_guard_off = PG_GETARG_BOOL(0);
	PG_RETURN_VOID();
}

/* _guard_suspended() -> whether privacy_guard itself is changing policies */
Datum
pvg_guard_suspended(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(pvg_guard_off);
}
