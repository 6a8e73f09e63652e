/*-------------------------------------------------------------------------
 *
 * parallel.c
 *	  Row checks in parallel workers: the leader's view of the consents,
 *	  handed to its workers.
 *
 * A row check reads the consents with the newest snapshot, not the
 * statement's, so that a withdrawal committed after a REPEATABLE READ
 * transaction began hides the subject's rows at the very next statement.
 * A parallel worker cannot take a snapshot of its own, and would see only
 * its transaction's.  So the leader of a parallel query on a protected
 * table, before it enters parallel mode, prepares the subject sets the
 * query needs, takes the newest snapshot ("the view"), brings its overlay
 * up to date with it and publishes, in shared memory: the snapshot, where
 * its overlay starts, and the shared bases its sets use (shared_store.c).
 * Each worker reads the same bases and an overlay read with the same
 * snapshot from the same point, so leader and workers answer every row
 * alike, and as a serial plan begun at that moment would; a change
 * committed while the query runs is seen by the next statement, as in a
 * serial plan.  A worker that finds no base for a set reads a private copy
 * with the view's snapshot: slower, the same answers.
 *
 * The view needs shared memory, so the library must be preloaded.  When it
 * is not (or the shared store is off), a planner hook keeps statements on
 * protected tables serial, as before.  The first statement of a session
 * that loads the library on first use runs before the hook exists; its
 * leader and workers then both read with the statement's snapshot (as the
 * leader in parallel mode always did), which in a REPEATABLE READ
 * transaction may be older than the newest.
 *
 * The access log counts a parallel statement once, in the leader (which
 * opens the statement's read records before the workers start), and the
 * rows and subjects where they are checked (audit.c).
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"
#include "subject_set.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planner.h"
#include "storage/proc.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

/* the view as published: this header, the snapshot, then the base records */
typedef struct PvgViewHeader
{
	bool		purpose_refused;	/* by privacy_guard.purpose_scope, in the leader */
	bool		has_overlay;	/* else workers read private copies */
	FullTransactionId ov_from;
	Size		snap_len;
	Size		bases_len;
} PvgViewHeader;

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static planner_hook_type prev_planner = NULL;

/* leader: the query it published a view for, and the view's snapshot */
static QueryDesc *pvg_view_query = NULL;
static Snapshot pvg_view_snap = NULL;
static LocalTransactionId pvg_view_lxid = InvalidLocalTransactionId;

/* worker: the view of its leader, read once */
static bool pvg_worker_fetched = false;
static Snapshot pvg_worker_snap = NULL;
static PvgViewHeader pvg_worker_header;
static char *pvg_worker_bases = NULL;

/* The key kind a table's subject column is checked by. */
static PvgKeyKind
pvg_table_key_kind(PvgTable *table)
{
	AttrNumber	att = get_attnum(table->relid, table->subject_column);
	Oid			typ;

	if (att == InvalidAttrNumber)
		return PVG_KEY_TEXT;
	typ = getBaseType(get_atttype(table->relid, att));
	return (typ == INT2OID || typ == INT4OID || typ == INT8OID) ? PVG_KEY_INT : PVG_KEY_TEXT;
}

/*
 * Release the leader's view.  Its snapshot is registered with the
 * transaction's resource owner: unregistered here, except when the
 * transaction aborts (the owner's release does it then).
 */
static void
pvg_view_withdraw(bool unregister)
{
	pvg_shared_view_clear();
	if (unregister && pvg_view_snap != NULL && pvg_view_lxid == MyProc->lxid)
		UnregisterSnapshotFromOwner(pvg_view_snap, TopTransactionResourceOwner);
	pvg_view_snap = NULL;
	pvg_view_query = NULL;
	pvg_view_lxid = InvalidLocalTransactionId;
}

/* A transaction ends (before its resource owner is released). */
void
pvg_parallel_end_xact(bool commit)
{
	if (pvg_worker_snap != NULL && commit)
		UnregisterSnapshotFromOwner(pvg_worker_snap, TopTransactionResourceOwner);
	pvg_worker_snap = NULL;
	if (pvg_view_query != NULL)
		pvg_view_withdraw(commit);
}

/*
 * Publish the view for a parallel plan that reads protected tables (see
 * the file header); with audit on, open the statement's read records.
 */
static void
pvg_view_prepare(QueryDesc *queryDesc)
{
	PvgRegistry *reg;
	ListCell   *lc;
	bool		kinds[2] = {false, false};
	bool		any = false;
	int			purpose = -1;
	bool		refused = pvg_purpose_refused();
	Snapshot	snap;
	PvgViewHeader hdr;
	StringInfoData bases;
	StringInfoData view;

	reg = pvg_registry();
	if (pvg_purpose != NULL && pvg_purpose[0] != '\0' && !refused)
		purpose = pvg_registry_purpose(reg, pvg_purpose);
	foreach(lc, queryDesc->plannedstmt->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
		PvgTable   *table;

		if (rte->rtekind != RTE_RELATION)
			continue;
		table = pvg_registry_table(reg, rte->relid);
		if (table == NULL)
			continue;
		any = true;
		if (purpose >= 0 && pvg_statement_allowed(reg, table, purpose))
		{
			kinds[pvg_table_key_kind(table)] = true;
			pvg_audit_begin(rte->relid, reg->purposes[purpose].name,
							queryDesc->estate->es_query_cxt);
		}
	}
	if (!any)
		return;

	/*
	 * The sets first (a base built now is read with a snapshot older than
	 * the view's), then the view's snapshot, then the overlay read with it.
	 */
	memset(&hdr, 0, sizeof(hdr));
	hdr.purpose_refused = refused;
	initStringInfo(&bases);
	if (kinds[0] || kinds[1])
		pvg_consent_parallel_sets(reg, purpose, kinds);
	snap = RegisterSnapshotOnOwner(GetLatestSnapshot(), TopTransactionResourceOwner);
	pvg_view_snap = snap;
	pvg_view_lxid = MyProc->lxid;
	pvg_view_query = queryDesc;
	if (kinds[0] || kinds[1])
		hdr.has_overlay = pvg_consent_parallel_view(reg, snap, &hdr.ov_from, &bases);

	hdr.snap_len = EstimateSnapshotSpace(snap);
	hdr.bases_len = hdr.has_overlay ? bases.len : 0;

	initStringInfo(&view);
	appendBinaryStringInfo(&view, (char *) &hdr, sizeof(hdr));
	enlargeStringInfo(&view, hdr.snap_len);
	SerializeSnapshot(snap, view.data + view.len);
	view.len += hdr.snap_len;
	if (hdr.has_overlay)
		appendBinaryStringInfo(&view, bases.data, bases.len);
	if (!pvg_shared_view_publish(view.data, view.len))
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("privacy_guard could not share its view of the consents with parallel workers"),
				 errhint("Raise privacy_guard.shared_store_size, or set max_parallel_workers_per_gather to 0.")));
	pfree(view.data);
	pfree(bases.data);
}

static void
pvg_parallel_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	if (!queryDesc->plannedstmt->parallelModeNeeded || IsInParallelMode() ||
		IsParallelWorker() || (eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0 ||
		!pvg_shared_ready() || !OidIsValid(get_namespace_oid("privacy_guard", true)))
		return;

	/*
	 * An earlier query's view is no longer needed by anyone: its workers are
	 * done (a parallel plan runs to completion in one go; a portal fetched
	 * from in pieces never starts workers).
	 */
	if (pvg_view_query != NULL)
		pvg_view_withdraw(true);
	PG_TRY();
	{
		pvg_view_prepare(queryDesc);
	}
	PG_CATCH();
	{
		pvg_view_withdraw(true);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

static void
pvg_parallel_executor_end(QueryDesc *queryDesc)
{
	if (queryDesc == pvg_view_query)
		pvg_view_withdraw(true);
	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/*
 * The snapshot row checks read consents with in parallel mode: the view's
 * (leader or worker), or NULL when there is none.
 */
Snapshot
pvg_parallel_snapshot(void)
{
	if (IsParallelWorker())
	{
		if (!pvg_worker_fetched)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
			Size		len = 0;
			char	   *view;

			pvg_worker_fetched = true;
			view = pvg_shared_view_fetch(&len);
			if (view != NULL && len >= sizeof(PvgViewHeader))
			{
				memcpy(&pvg_worker_header, view, sizeof(PvgViewHeader));
				if (sizeof(PvgViewHeader) + pvg_worker_header.snap_len +
					pvg_worker_header.bases_len == len)
				{
					pvg_worker_snap = RegisterSnapshotOnOwner(RestoreSnapshot(view + sizeof(PvgViewHeader)),
															  TopTransactionResourceOwner);
					pvg_worker_bases = view + sizeof(PvgViewHeader) + pvg_worker_header.snap_len;
				}
			}
			MemoryContextSwitchTo(old);
		}
		return pvg_worker_snap;
	}
	if (pvg_view_snap != NULL && IsInParallelMode() && pvg_view_lxid == MyProc->lxid)
		return pvg_view_snap;
	return NULL;
}

/*
 * In a worker: whether its leader refused the purpose (privacy_guard.purpose_scope
 * judges how the purpose was set, which only the leader knows: in a worker
 * every setting is restored as if set for the session).  Without a view,
 * refused: fail closed.
 */
bool
pvg_parallel_purpose_refused(void)
{
	if (pvg_parallel_snapshot() == NULL)
		return true;
	return pvg_worker_header.purpose_refused;
}

/* In a worker: where its leader's overlay starts; false when the leader has none. */
bool
pvg_parallel_overlay_from(FullTransactionId *from)
{
	if (pvg_parallel_snapshot() == NULL || !pvg_worker_header.has_overlay)
		return false;
	*from = pvg_worker_header.ov_from;
	return true;
}

/* In a worker: the base its leader uses for a set, or InvalidDsaPointer. */
dsa_pointer
pvg_parallel_base(int kind, const char *sig, int siglen)
{
	Size		off = 0;

	if (pvg_parallel_snapshot() == NULL || !pvg_worker_header.has_overlay)
		return InvalidDsaPointer;
	while (off + sizeof(PvgParallelBase) <= pvg_worker_header.bases_len)
	{
		PvgParallelBase rec;

		memcpy(&rec, pvg_worker_bases + off, sizeof(rec));
		off += sizeof(rec);
		if (off + rec.siglen > pvg_worker_header.bases_len)
			break;
		if (rec.kind == kind && rec.siglen == siglen &&
			memcmp(pvg_worker_bases + off, sig, siglen) == 0)
			return rec.base;
		off += rec.siglen;
	}
	return InvalidDsaPointer;
}

/* Whether an expression calls one of privacy_guard's functions. */
static bool
pvg_calls_ours(Node *node, Oid *nsp)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr) && get_func_namespace(((FuncExpr *) node)->funcid) == *nsp)
		return true;
	return expression_tree_walker(node, pvg_calls_ours, nsp);
}

/* Whether a query reads a table through a privacy_guard policy. */
static bool
pvg_reads_protected(Node *node, Oid *nsp)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, pvg_reads_protected, nsp,
								 QTW_EXAMINE_RTES_BEFORE);
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		return rte->rtekind == RTE_RELATION &&
			pvg_calls_ours((Node *) rte->securityQuals, nsp);
	}
	return expression_tree_walker(node, pvg_reads_protected, nsp);
}

/* Without a shared view, statements on protected tables stay serial. */
static PlannedStmt *
pvg_parallel_planner(Query *parse, const char *query_string, int cursorOptions,
					 ParamListInfo boundParams)
{
	if ((cursorOptions & CURSOR_OPT_PARALLEL_OK) != 0 && !pvg_shared_ready())
	{
		Oid			nsp = get_namespace_oid("privacy_guard", true);

		if (OidIsValid(nsp) && pvg_reads_protected((Node *) parse, &nsp))
			cursorOptions &= ~CURSOR_OPT_PARALLEL_OK;
	}
	if (prev_planner)
		return prev_planner(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

void
pvg_parallel_init(void)
{
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = pvg_parallel_executor_start;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = pvg_parallel_executor_end;
	prev_planner = planner_hook;
	planner_hook = pvg_parallel_planner;
}
