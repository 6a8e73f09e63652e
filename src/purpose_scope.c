/*-------------------------------------------------------------------------
 *
 * purpose_scope.c
 *	  privacy_guard.purpose_scope: a purpose that may only last for the
 *	  transaction that sets it, for applications behind a transaction
 *	  pooler.
 *
 * Behind a pooler in transaction mode one server connection serves many
 * clients in turn; a purpose set for the session stays on the connection
 * and the next client's transaction runs under it.  With
 * privacy_guard.purpose_scope = 'transaction' (a superuser setting, so the
 * roles the rules bind cannot turn it off) a purpose counts only while the
 * transaction that set it runs:
 *
 *	- at use: a statement that touches a protected table under a purpose
 *	  that outlives the transaction (SET, set_config(..., false), ALTER ROLE
 *	  or ALTER DATABASE ... SET, postgresql.conf, connection options) is
 *	  refused like one without a purpose (42501), and tagged values are
 *	  withheld under it (reveal() gives NULL);
 *	- at the change: SET privacy_guard.purpose (without LOCAL) and
 *	  set_config('privacy_guard.purpose', ..., false) are refused when they
 *	  leave a purpose for the session (55P02), which rolls them back.
 *	  SET LOCAL, set_config(..., true) and a function's SET clause are
 *	  accepted; so are RESET, DISCARD ALL and setting the empty string.
 *
 * A setting's check hook does not know whether SET is LOCAL, but the
 * setting's own stack of saved values does: PostgreSQL pushes an entry for
 * every nesting level that changes a setting (a transaction, a
 * subtransaction, a function with a SET clause), and its state says
 * whether the current value was made by SET (kept at commit: the session's
 * value) or by SET LOCAL or a SET clause (undone at the end of its level).
 * A value with no entry was set in an earlier transaction or at connection
 * start: the session's.  The stack is read through the setting's
 * config_generic, found once by name.
 *
 * The change is caught after the fact: SET through the utility hook, and
 * set_config() (an ordinary function) through an assign hook that only
 * notes a change, checked when the statement's executor finishes.  The
 * error aborts the (sub)transaction, which restores the previous value.
 *
 * A parallel worker gets the leader's settings without their stack; every
 * function that reads the purpose is parallel restricted, so workers never
 * decide with it, and if one did, the purpose would count as the
 * session's (refused).
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "access/parallel.h"
#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"

int			pvg_purpose_scope = PVG_SCOPE_SESSION;

static struct config_generic *pvg_purpose_gconf = NULL;
static bool pvg_purpose_changed = false;

static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;

/* privacy_guard.purpose's entry in PostgreSQL's table of settings. */
static struct config_generic *
pvg_purpose_setting(void)
{
	if (pvg_purpose_gconf == NULL)
	{
		struct config_generic **vars = get_guc_variables();
		int			n = GetNumConfigOptions();
		int			i;

		for (i = 0; i < n; i++)
		{
			if (strcmp(vars[i]->name, "privacy_guard.purpose") == 0 &&
				vars[i]->vartype == PGC_STRING &&
				!(vars[i]->flags & GUC_CUSTOM_PLACEHOLDER))
			{
				pvg_purpose_gconf = vars[i];
				break;
			}
		}
		if (pvg_purpose_gconf == NULL)
			elog(ERROR, "setting privacy_guard.purpose is not defined");
	}
	return pvg_purpose_gconf;
}

/*
 * Whether the purpose in effect is the session's: a non-empty value that
 * was set with SET, set_config(..., false), or before this transaction
 * (connection start, ALTER ROLE/DATABASE ... SET, the configuration file).
 * False for an empty purpose and for one made by SET LOCAL,
 * set_config(..., true) or a function's SET clause.  Never errors but for
 * a setting that is not defined (can't happen once the library is loaded).
 */
bool
pvg_purpose_is_session_level(void)
{
	GucStack   *top;

	if (pvg_purpose == NULL || pvg_purpose[0] == '\0')
		return false;
	if (IsParallelWorker())
		return true;
	top = pvg_purpose_setting()->stack;
	return top == NULL || top->state == GUC_SET;
}

/*
 * Whether privacy_guard.purpose_scope refuses the purpose in effect (it is
 * the session's, and the scope is the transaction).
 */
bool
pvg_purpose_refused(void)
{
	if (pvg_purpose_scope != PVG_SCOPE_TRANSACTION)
		return false;
	/* a parallel worker's settings all look session-level: its leader judged */
	if (IsParallelWorker())
		return pvg_parallel_purpose_refused();
	return pvg_purpose_is_session_level();
}

/* assign hook of privacy_guard.purpose: note the change (it must not fail) */
void
pvg_purpose_assign(const char *newval, void *extra)
{
	pvg_purpose_changed = true;
}

/*
 * Refuse a purpose just set for the session, when the scope is the
 * transaction (55P02); the error rolls the change back.  Only a change made
 * by SET: a value the session already had (set before the scope changed,
 * by ALTER ROLE, ...) is not "just set", and is refused at use instead.
 */
static void
pvg_purpose_check_change(void)
{
	GucStack   *top;

	if (pvg_purpose_scope != PVG_SCOPE_TRANSACTION ||
		pvg_purpose == NULL || pvg_purpose[0] == '\0')
		return;
	top = pvg_purpose_setting()->stack;
	if (top == NULL || top->state != GUC_SET)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_CANT_CHANGE_RUNTIME_PARAM),
			 errmsg("privacy_guard.purpose can only be set for the transaction"),
			 errdetail("privacy_guard.purpose_scope is \"transaction\": a purpose set for the session would stay on the connection for whoever uses it next (behind a transaction pooler, another client)."),
			 errhint("Use SET LOCAL privacy_guard.purpose = '<purpose>' or set_config('privacy_guard.purpose', '<purpose>', true) inside the transaction.")));
}

static void
pvg_scope_process_utility(PlannedStmt *pstmt, const char *queryString,
						  bool readOnlyTree, ProcessUtilityContext context,
						  ParamListInfo params, QueryEnvironment *queryEnv,
						  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		set_value;

	set_value = IsA(parsetree, VariableSetStmt) &&
		((VariableSetStmt *) parsetree)->kind == VAR_SET_VALUE &&
		((VariableSetStmt *) parsetree)->name != NULL &&
		strcmp(((VariableSetStmt *) parsetree)->name, "privacy_guard.purpose") == 0;

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);

	/*
	 * RESET, RESET ALL and DISCARD ALL give the session's default back:
	 * never refused here.  Any other statement may have run set_config()
	 * without an executor of its own finishing (FETCH from a cursor).
	 */
	if (set_value)
	{
		pvg_purpose_changed = false;
		pvg_purpose_check_change();
	}
	else if (IsA(parsetree, VariableSetStmt) || IsA(parsetree, DiscardStmt))
		pvg_purpose_changed = false;
	else if (pvg_purpose_changed)
	{
		pvg_purpose_changed = false;
		pvg_purpose_check_change();
	}
}

static void
pvg_scope_executor_finish(QueryDesc *queryDesc)
{
	if (prev_ExecutorFinish)
		prev_ExecutorFinish(queryDesc);
	else
		standard_ExecutorFinish(queryDesc);

	/* set_config() ran in this statement (or one it called) */
	if (pvg_purpose_changed)
	{
		pvg_purpose_changed = false;
		pvg_purpose_check_change();
	}
}

void
pvg_purpose_scope_init(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = pvg_scope_process_utility;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = pvg_scope_executor_finish;
}
