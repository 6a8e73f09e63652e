/*-------------------------------------------------------------------------
 *
 * ddl_guard.c
 *	  The switch that lets privacy_guard's own functions change the
 *	  row-level security of protected tables, and the test of whether a
 *	  table's policy is still the one protect() installed.
 *
 * An event trigger refuses DDL that would weaken a protected table's
 * policies (a table owner may otherwise drop them or turn row-level
 * security off).  protect() and unprotect() must change exactly those
 * things; they turn the guard off around their own DDL.  The switch is a C
 * variable, not a setting, so no SQL can flip it except through
 * _guard_suspend(), which PUBLIC may not execute.  It is reset at the end
 * of every transaction and when a subtransaction aborts, so an error
 * caught in an exception block cannot leave it off either.  Nor does a
 * table owner's code ever run with it off: the engine and the report
 * reader turn it on again while they run statements as a table's owner
 * (pvg_guard_hold), whose triggers could otherwise drop the rules of its
 * tables while privacy_guard's own DDL had the guard off.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_type.h"
#include "nodes/primnodes.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(pvg_guard_suspend);
PG_FUNCTION_INFO_V1(pvg_guard_suspended);
PG_FUNCTION_INFO_V1(pvg_policy_state);

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

/*
 * Turn the guard on for a table owner's code (pvg_run_as_table_owner,
 * pvg_read_as_owner); returns whether it was off, for pvg_guard_restore.
 * An error in between leaves it on, which is the safe side.
 */
bool
pvg_guard_hold(void)
{
	bool		was_off = pvg_guard_off;

	pvg_guard_off = false;
	return was_off;
}

void
pvg_guard_restore(bool off)
{
	pvg_guard_off = off;
}

/* _guard_suspended() -> whether privacy_guard itself is changing policies */
Datum
pvg_guard_suspended(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(pvg_guard_off);
}

/*
 * Whether an expression is a call of privacy_guard.<fname>() whose first
 * argument is the constant regclass root and whose further arguments are
 * plain references to the columns attnums[0..nattnums-1] of the table.
 */
static bool
pvg_is_guard_call(Node *node, const char *fname, Oid nsp, Oid root,
				  AttrNumber *attnums, int nattnums)
{
	FuncExpr   *f;
	Const	   *c;
	ListCell   *lc;
	int			i = 0;

	if (node == NULL || !IsA(node, FuncExpr))
		return false;
	f = (FuncExpr *) node;
	if (get_func_namespace(f->funcid) != nsp)
		return false;
	{
		char	   *name = get_func_name(f->funcid);

		if (name == NULL || strcmp(name, fname) != 0)
			return false;
	}
	if (list_length(f->args) != nattnums + 1)
		return false;
	c = (Const *) linitial(f->args);
	if (!IsA(c, Const) || c->consttype != REGCLASSOID || c->constisnull ||
		DatumGetObjectId(c->constvalue) != root)
		return false;
	for_each_from(lc, f->args, 1)
	{
		Var		   *v = (Var *) lfirst(lc);

		if (!IsA(v, Var) || v->varlevelsup != 0 || v->varattno != attnums[i++])
			return false;
	}
	return true;
}

/*
 * _policy_state(target, root, subject_column, retention_column) -> text
 *
 * 'intact' when target carries the privacy_guard_rules policy protect()
 * installs for root (restrictive, for all commands, to PUBLIC, checking the
 * named columns of target) and has row-level security enabled and forced;
 * 'missing' when it has no such policy; 'tampered' otherwise.  Judged by
 * structure and by OIDs looked up now, so a renamed table, or a database
 * restored from a dump (new OIDs), is still recognised.
 */
Datum
pvg_policy_state(PG_FUNCTION_ARGS)
{
	Oid			target;
	Oid			root;
	Name		subject;
	Oid			nsp;
	Relation	rel;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	const char *state = "missing";
	AttrNumber	attnums[2];
	int			nattnums = 1;

	/* a table, its root and its subject column are needed to judge anything */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table, root and subject column must not be NULL")));
	target = PG_GETARG_OID(0);
	root = PG_GETARG_OID(1);
	subject = PG_GETARG_NAME(2);
	nsp = get_namespace_oid("privacy_guard", false);

	attnums[0] = get_attnum(target, NameStr(*subject));
	if (!PG_ARGISNULL(3))
		attnums[nattnums++] = get_attnum(target, NameStr(*PG_GETARG_NAME(3)));

	rel = table_open(PolicyRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_policy_polrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(target));
	ScanKeyInit(&key[1], Anum_pg_policy_polname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("privacy_guard_rules"));
	scan = systable_beginscan(rel, PolicyPolrelidPolnameIndexId, true, NULL, 2, key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_policy pol = (Form_pg_policy) GETSTRUCT(tup);
		bool		isnull;
		Datum		roles = heap_getattr(tup, Anum_pg_policy_polroles, RelationGetDescr(rel), &isnull);
		Datum		qual = heap_getattr(tup, Anum_pg_policy_polqual, RelationGetDescr(rel), &isnull);
		Datum		check;
		bool		check_null;
		ArrayType  *arr = DatumGetArrayTypeP(roles);
		bool		ok;

		check = heap_getattr(tup, Anum_pg_policy_polwithcheck, RelationGetDescr(rel), &check_null);
		ok = pol->polcmd == '*' && !pol->polpermissive &&
			ARR_NDIM(arr) == 1 && ARR_DIMS(arr)[0] == 1 && !ARR_HASNULL(arr) &&
			((Oid *) ARR_DATA_PTR(arr))[0] == ACL_ID_PUBLIC &&
			!isnull && !check_null &&
			attnums[0] != InvalidAttrNumber &&
			(nattnums == 1 || attnums[1] != InvalidAttrNumber) &&
			pvg_is_guard_call(stringToNode(TextDatumGetCString(qual)), "row_visible", nsp, root,
							  attnums, nattnums) &&
			pvg_is_guard_call(stringToNode(TextDatumGetCString(check)), "write_allowed", nsp, root,
							  NULL, 0);
		if (ok)
		{
			HeapTuple	ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(target));

			ok = HeapTupleIsValid(ctup) &&
				((Form_pg_class) GETSTRUCT(ctup))->relrowsecurity &&
				((Form_pg_class) GETSTRUCT(ctup))->relforcerowsecurity;
			if (HeapTupleIsValid(ctup))
				ReleaseSysCache(ctup);
		}
		state = ok ? "intact" : "tampered";
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	PG_RETURN_TEXT_P(cstring_to_text(state));
}
