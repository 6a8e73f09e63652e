/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  Backend-local cache of purposes, role authorisations and protected
 *	  tables, and the invalidation plumbing shared with the consent cache.
 *
 * The registry is read with SPI as the extension's owner (the schema's
 * owner), because the rules bind roles that may not read privacy_guard's
 * tables.  Queries name every function and operator with its schema
 * (OPERATOR(pg_catalog.<>)) and use no casts, so the caller's search_path
 * cannot redirect them; in parallel mode, where GUCs
 * cannot be set, that is what keeps them safe.
 *
 * A reload never frees the previous copy at once: a statement in progress
 * may hold pointers into it (a nested statement can trigger the reload).
 * Old copies are "retired" and freed at the end of the top-level
 * transaction.
 *
 * This file and consent_cache.c call each other, on purpose: they are two
 * halves of one cache.  The consent store's subject sets are built per
 * purpose by registry index, so a registry reload, and an invalidation of
 * any of the five watched tables, must mark them stale here
 * (pvg_consent_mark_stale/_changed), and the transaction callbacks here
 * end or abort the consent store's transaction state with the registry's;
 * the consent store in turn reads the purposes from the registry and loads
 * through the helpers below (as the extension's owner, with the load
 * snapshot, retiring old copies).  One set of callbacks for both keeps
 * the two from ever disagreeing about what is current; splitting the file
 * would only hide that dependency behind function pointers.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

/* our tables whose changes concern each cache */
#define PVG_NWATCH 5
static const char *const pvg_watched_names[PVG_NWATCH] = {
	"purpose", "purpose_role", "protected_table",	/* registry */
	"consent_state", "erasure_request"	/* consent store */
};
#define PVG_NWATCH_REGISTRY 3

static Oid	pvg_watched[PVG_NWATCH];
static PvgRegistry *pvg_reg = NULL;
static bool pvg_reg_valid = false;	/* false: reload before use */
static PvgLoadStamp pvg_reg_stamp;	/* or still serving its statement */
static MemoryContext pvg_reg_cxt = NULL;
static MemoryContext pvg_retired_cxt = NULL;
static uint64 pvg_reg_generation = 0;

/*
 * Free retired cache copies once no statement can point into them, and
 * drop what an aborted transaction may have let into the caches.  A
 * prepared transaction counts as aborted here: its writes are not
 * committed, ROLLBACK PREPARED may take them back and tells no one, and
 * COMMIT PREPARED sends its invalidations like any commit.
 */
static void
pvg_xact_callback(XactEvent event, void *arg)
{
	/* the new state of the subjects written, for the change ring */
	if (event == XACT_EVENT_PRE_COMMIT)
		pvg_changes_pre_commit();
	else if (event == XACT_EVENT_PRE_PREPARE)
		pvg_changes_prepare();
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		pvg_consent_abort();
	/* after the commit is visible to new snapshots, before its invalidations go out */
	if (event == XACT_EVENT_COMMIT)
		pvg_changes_commit();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PREPARE || event == XACT_EVENT_ABORT)
	{
		pvg_shared_end_xact(event == XACT_EVENT_COMMIT, event == XACT_EVENT_PREPARE);
		pvg_changes_end_xact();
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		pvg_consent_end_xact();
		pvg_parallel_end_xact(event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
							  event == XACT_EVENT_PREPARE);
		if (pvg_retired_cxt != NULL)
			MemoryContextReset(pvg_retired_cxt);
	}
}

static void
pvg_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		pvg_consent_abort();
}

/* Mark caches stale when one of our tables (or everything) is invalidated. */
static void
pvg_relcache_callback(Datum arg, Oid relid)
{
	int			i;

	if (!OidIsValid(relid))
	{
		pvg_reg_valid = false;
		pvg_reg_stamp.valid = false;
		pvg_consent_mark_stale();
		return;
	}
	for (i = 0; i < PVG_NWATCH; i++)
	{
		if (pvg_watched[i] == relid)
		{
			if (i < PVG_NWATCH_REGISTRY)
			{
				/* subject sets refer to purposes, so both go stale */
				pvg_reg_valid = false;
				pvg_reg_stamp.valid = false;
				pvg_consent_mark_stale();
			}
			else
				pvg_consent_mark_changed();
			return;
		}
	}
}

void
pvg_cache_init(void)
{
	CacheRegisterRelcacheCallback(pvg_relcache_callback, (Datum) 0);
	RegisterXactCallback(pvg_xact_callback, NULL);
	RegisterSubXactCallback(pvg_subxact_callback, NULL);
}

/*
 * Process pending invalidations now, so that a change committed by another
 * session is seen by this statement even when the transaction already
 * holds every lock the statement needs.
 */
void
pvg_cache_accept(void)
{
	AcceptInvalidationMessages();
}

/* Move a cache context under the retired context, to be freed at xact end. */
void
pvg_retire_context(MemoryContext cxt)
{
	if (cxt == NULL)
		return;
	if (pvg_retired_cxt == NULL)
		pvg_retired_cxt = AllocSetContextCreate(TopMemoryContext,
												"privacy_guard retired caches",
												ALLOCSET_SMALL_SIZES);
	MemoryContextSetParent(cxt, pvg_retired_cxt);
}

/*
 * Run the following SPI queries as the extension's owner (the owner of
 * schema privacy_guard), in a restricted security context, to read the
 * extension's own tables.  Never for statements that may run a table
 * owner's code: those use pvg_as_table_owner_begin() (engine.c).  Errors
 * if the extension is not installed.
 */
void
pvg_as_extension_owner_begin(Oid *save_userid, int *save_sec)
{
	Oid			nsp = get_namespace_oid("privacy_guard", true);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("privacy_guard is not installed in this database"),
				 errhint("Run CREATE EXTENSION privacy_guard.")));
	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);

	GetUserIdAndSecContext(save_userid, save_sec);
	SetUserIdAndSecContext(owner, *save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* Back to the caller's user and security context; ends the SPI connection. */
void
pvg_as_extension_owner_end(Oid save_userid, int save_sec)
{
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
}

/*
 * The snapshot caches are loaded with: the newest committed state, so that
 * a change is seen by the next statement even inside a REPEATABLE READ
 * transaction.  In parallel mode no new snapshot can be taken: a parallel
 * query's leader and workers use the view the leader took before (see
 * parallel.c), else the statement's own snapshot is used; what is loaded
 * with either serves that statement only (see pvg_load_is_current).
 */
Snapshot
pvg_load_snapshot(void)
{
	Snapshot	view;

	if (IsInParallelMode())
	{
		view = pvg_parallel_snapshot();
		return view != NULL ? view : GetActiveSnapshot();
	}
	return GetLatestSnapshot();
}

/* Whether a load now sees the newest committed state, so may be kept as current. */
bool
pvg_load_is_current(void)
{
	return !IsInParallelMode();
}

void
pvg_load_stamp_set(PvgLoadStamp *stamp)
{
	stamp->lxid = MyProc->lxid;
	stamp->stmt_start = GetCurrentStatementStartTimestamp();
	stamp->valid = true;
}

/* Whether a load made in parallel mode may serve the caller: same statement, still in parallel mode. */
bool
pvg_load_stamp_serves(const PvgLoadStamp *stamp)
{
	return stamp->valid && IsInParallelMode() && stamp->lxid == MyProc->lxid &&
		stamp->stmt_start == GetCurrentStatementStartTimestamp();
}

/*
 * The plan of one of our fixed read queries, prepared once per backend and
 * kept: a reader patches its consents at the next statement after every
 * change another session commits, so parsing and planning these queries
 * each time would cost more than running them.  A kept plan is replanned
 * by the plan cache when a table it reads changes (also when the extension
 * is dropped and created again: the names are resolved anew).
 */
#define PVG_MAX_KEPT_PLANS 16

typedef struct PvgKeptPlan
{
	char	   *sql;
	SPIPlanPtr	plan;
} PvgKeptPlan;

static PvgKeptPlan pvg_kept_plans[PVG_MAX_KEPT_PLANS];
static int	pvg_nkept_plans = 0;

SPIPlanPtr
pvg_spi_plan(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan;
	int			i;

	for (i = 0; i < pvg_nkept_plans; i++)
	{
		if (strcmp(pvg_kept_plans[i].sql, sql) == 0)
			return pvg_kept_plans[i].plan;
	}
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (pvg_nkept_plans < PVG_MAX_KEPT_PLANS && SPI_keepplan(plan) == 0)
	{
		pvg_kept_plans[pvg_nkept_plans].sql = MemoryContextStrdup(TopMemoryContext, sql);
		pvg_kept_plans[pvg_nkept_plans].plan = plan;
		pvg_nkept_plans++;
	}
	return plan;
}

/* Run one read-only query under the given snapshot; returns the row count. */
uint64
pvg_spi_read_snapshot(const char *sql, int nargs, Oid *argtypes, Datum *args,
					  Snapshot snap)
{
	SPIPlanPtr	plan = pvg_spi_plan(sql, nargs, argtypes);
	int			rc;

	rc = SPI_execute_snapshot(plan, args, NULL, snap, InvalidSnapshot, true, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_snapshot failed for \"%s\": %s", sql,
			 SPI_result_code_string(rc));
	return SPI_processed;
}

/* Run one read-only query under the load snapshot; returns the row count. */
uint64
pvg_spi_read(const char *sql)
{
	return pvg_spi_read_snapshot(sql, 0, NULL, NULL, pvg_load_snapshot());
}

static PvgBasis
pvg_parse_basis(const char *s)
{
	if (strcmp(s, "consent") == 0)
		return PVG_BASIS_CONSENT;
	if (strcmp(s, "contract") == 0)
		return PVG_BASIS_CONTRACT;
	if (strcmp(s, "legal_obligation") == 0)
		return PVG_BASIS_LEGAL_OBLIGATION;
	if (strcmp(s, "vital_interests") == 0)
		return PVG_BASIS_VITAL_INTERESTS;
	if (strcmp(s, "public_task") == 0)
		return PVG_BASIS_PUBLIC_TASK;
	if (strcmp(s, "legitimate_interests") == 0)
		return PVG_BASIS_LEGITIMATE_INTERESTS;
	elog(ERROR, "unknown legal basis \"%s\"", s);
	return PVG_BASIS_CONSENT;	/* keep compiler quiet */
}

static int
pvg_table_cmp(const void *a, const void *b)
{
	Oid			x = ((const PvgTable *) a)->relid;
	Oid			y = ((const PvgTable *) b)->relid;

	return (x > y) - (x < y);
}

/* Fetch column n (1-based) of row r of the current SPI result as a string. */
static char *
pvg_spi_string(int r, int n)
{
	return SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, n);
}

static void
pvg_registry_load(void)
{
	MemoryContext cxt;
	MemoryContext old;
	PvgRegistry *reg;
	Oid			save_userid;
	int			save_sec;
	Oid			nsp;
	uint64		n;
	uint64		i;
	int			j;
	char	  **parents;

	cxt = AllocSetContextCreate(TopMemoryContext, "privacy_guard registry",
								ALLOCSET_DEFAULT_SIZES);
	reg = MemoryContextAllocZero(cxt, sizeof(PvgRegistry));

	/*
	 * Valid from before the read: an invalidation that arrives while we read
	 * (for a commit our snapshot may have missed) makes the next use reload.
	 * A load in parallel mode serves its statement only.
	 */
	pvg_reg_valid = pvg_load_is_current();
	pvg_load_stamp_set(&pvg_reg_stamp);

	pvg_as_extension_owner_begin(&save_userid, &save_sec);
	PG_TRY();
	{
		nsp = get_namespace_oid("privacy_guard", false);
		for (j = 0; j < PVG_NWATCH; j++)
			pvg_watched[j] = get_relname_relid(pvg_watched_names[j], nsp);
		reg->store_relids[0] = pvg_watched[PVG_NWATCH_REGISTRY];
		reg->store_relids[1] = pvg_watched[PVG_NWATCH_REGISTRY + 1];

		/* purposes; parents are resolved by name below */
		n = pvg_spi_read("SELECT name, parent, legal_basis, id FROM privacy_guard.purpose");
		old = MemoryContextSwitchTo(cxt);
		reg->npurposes = (int) n;
		reg->purposes = palloc0(sizeof(PvgPurpose) * (n + 1));
		parents = palloc0(sizeof(char *) * (n + 1));
		for (i = 0; i < n; i++)
		{
			char	   *basis = pvg_spi_string(i, 3);

			reg->purposes[i].name = pvg_spi_string(i, 1);
			parents[i] = pvg_spi_string(i, 2);
			reg->purposes[i].basis = pvg_parse_basis(basis);
			reg->purposes[i].id = pg_strtoint32(pvg_spi_string(i, 4));
		}
		for (i = 0; i < n; i++)
		{
			reg->purposes[i].parent = -1;
			if (parents[i] != NULL)
				reg->purposes[i].parent = pvg_registry_purpose(reg, parents[i]);
		}
		MemoryContextSwitchTo(old);

		/* role authorisations */
		n = pvg_spi_read("SELECT role, purpose FROM privacy_guard.purpose_role");
		old = MemoryContextSwitchTo(cxt);
		reg->auth = palloc0(sizeof(PvgRoleAuth) * (n + 1));
		for (i = 0; i < n; i++)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
			char	   *purpose = pvg_spi_string(i, 2);
			int			p = pvg_registry_purpose(reg, purpose);

			if (isnull || p < 0)
				continue;
			reg->auth[reg->nauth].roleid = DatumGetObjectId(d);
			reg->auth[reg->nauth].purpose = p;
			reg->nauth++;
		}
		MemoryContextSwitchTo(old);

		/* protected tables */
		n = pvg_spi_read("SELECT relid, purposes, retention, on_expiry, hold_keep, hold_purpose, "
						 "subject_column, retention_column FROM privacy_guard.protected_table");
		old = MemoryContextSwitchTo(cxt);
		reg->ntables = (int) n;
		reg->tables = palloc0(sizeof(PvgTable) * (n + 1));
		for (i = 0; i < n; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			PvgTable   *t = &reg->tables[i];
			bool		isnull;
			Datum		d;
			Datum	   *elems;
			bool	   *nulls;
			int			nelems;
			int			k;

			t->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
			d = SPI_getbinval(tup, desc, 2, &isnull);
			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &nulls, &nelems);
			t->purposes = palloc0(sizeof(int) * (nelems + 1));
			for (k = 0; k < nelems; k++)
			{
				int			p;

				if (nulls[k])
					continue;
				p = pvg_registry_purpose(reg, TextDatumGetCString(elems[k]));
				if (p >= 0)
					t->purposes[t->npurposes++] = p;
			}
			d = SPI_getbinval(tup, desc, 3, &isnull);
			t->has_retention = !isnull;
			if (!isnull)
				t->retention = *DatumGetIntervalP(d);
			t->anonymize_on_expiry = strcmp(pvg_spi_string(i, 4), "anonymize") == 0;
			t->hold_purpose = -1;
			d = SPI_getbinval(tup, desc, 5, &isnull);
			if (!isnull)
			{
				char	   *hold = pvg_spi_string(i, 6);

				t->hold_keep = *DatumGetIntervalP(d);
				if (hold != NULL)
					t->hold_purpose = pvg_registry_purpose(reg, hold);
			}
			t->subject_column = pvg_spi_string(i, 7);
			t->retention_column = pvg_spi_string(i, 8);
		}
		qsort(reg->tables, reg->ntables, sizeof(PvgTable), pvg_table_cmp);
		MemoryContextSwitchTo(old);
	}
	PG_CATCH();
	{
		pvg_reg_valid = false;
		pvg_reg_stamp.valid = false;
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	pvg_as_extension_owner_end(save_userid, save_sec);

	reg->generation = ++pvg_reg_generation;
	pvg_retire_context(pvg_reg_cxt);
	pvg_reg_cxt = cxt;
	pvg_reg = reg;
}

/*
 * The current registry, reloaded first if a change has been seen.  The
 * pointer stays valid until the end of the transaction.
 */
PvgRegistry *
pvg_registry(void)
{
	if (pvg_reg == NULL || !(pvg_reg_valid || pvg_load_stamp_serves(&pvg_reg_stamp)))
	{
		/*
		 * Subject sets refer to purposes by index: they are rebuilt after a
		 * registry reload.
		 */
		pvg_consent_mark_stale();
		pvg_registry_load();
	}
	return pvg_reg;
}

PvgTable *
pvg_registry_table(PvgRegistry *reg, Oid relid)
{
	PvgTable	key;

	key.relid = relid;
	return bsearch(&key, reg->tables, reg->ntables, sizeof(PvgTable), pvg_table_cmp);
}

/* Index of the named purpose, or -1. */
int
pvg_registry_purpose(PvgRegistry *reg, const char *name)
{
	int			i;

	for (i = 0; i < reg->npurposes; i++)
	{
		if (strcmp(reg->purposes[i].name, name) == 0)
			return i;
	}
	return -1;
}

/*
 * Whether an authorisation for purpose authorised lets a role use purpose:
 * purpose is authorised itself, or a descendant of it reached through
 * purposes of the same legal basis only.  A child of another basis (a
 * contract child under a consent parent would ask no consent, under a
 * legitimate_interests parent it would ignore objections) needs an
 * authorisation of its own, so defining one never widens what roles
 * already authorised can read.
 */
bool
pvg_purpose_authorised(PvgRegistry *reg, int purpose, int authorised)
{
	int			depth = 0;

	if (authorised < 0)
		return false;
	while (purpose >= 0 && depth++ <= reg->npurposes)
	{
		if (reg->purposes[purpose].basis != reg->purposes[authorised].basis)
			return false;
		if (purpose == authorised)
			return true;
		purpose = reg->purposes[purpose].parent;
	}
	return false;
}

/* Whether purpose is ancestor or purpose itself, or one of its descendants. */
bool
pvg_purpose_within(PvgRegistry *reg, int purpose, int ancestor)
{
	int			depth = 0;

	while (purpose >= 0 && depth++ <= reg->npurposes)
	{
		if (purpose == ancestor)
			return true;
		purpose = reg->purposes[purpose].parent;
	}
	return false;
}
