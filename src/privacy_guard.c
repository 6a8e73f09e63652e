/*-------------------------------------------------------------------------
 *
 * privacy_guard.c
 *	  Module initialisation, the cache-invalidation trigger and small helpers.
 *
 * The library is loaded by the first call of one of its functions (every
 * protected table's policy calls one), or at server start when preloaded.
 * _PG_init only asks each module to register what it needs.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/inval.h"
#include "utils/xid8.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(pvg_invalidate_cache);
PG_FUNCTION_INFO_V1(pvg_stamp_changed_xid);
PG_FUNCTION_INFO_V1(pvg_note_removed_subject);
PG_FUNCTION_INFO_V1(pvg_calling_role);
PG_FUNCTION_INFO_V1(pvg_preloaded);

void		_PG_init(void);

/* loaded at server start (shared_preload_libraries): the worker can run */
static bool pvg_preloaded_at_start = false;

void
_PG_init(void)
{
	pvg_preloaded_at_start = process_shared_preload_libraries_in_progress;
	pvg_guc_init();
	pvg_purpose_scope_init();
	pvg_cache_init();
	pvg_forgotten_init();
	pvg_shared_init();
	pvg_ddl_guard_init();
	pvg_worker_init();
	pvg_audit_init();
	pvg_parallel_init();
}

/*
 * Statement trigger on privacy_guard's tables: queue a relcache
 * invalidation, sent when the transaction commits (this session sees it at
 * its next command), so every session catches up at its next statement and
 * a rolled-back change costs nobody anything.
 *
 * New or changed consents and new forget requests invalidate their own
 * table: readers patch just the subjects written (consent_cache.c).  Deleted
 * rows and changed requests (closing one clears its subject, so nothing
 * names the subject to patch) also invalidate the purpose table, which makes
 * readers with a private copy reload everything; readers of the shared
 * store (preloaded) patch the subjects the row trigger below recorded.
 * TRUNCATE names no rows: it counts as a full change (shared_store.c).
 */
static void
pvg_invalidate_for(Relation rel, TriggerEvent event)
{
	const char *name = RelationGetRelationName(rel);
	bool		full;

	full = TRIGGER_FIRED_BY_DELETE(event) ||
		TRIGGER_FIRED_BY_TRUNCATE(event) ||
		(TRIGGER_FIRED_BY_UPDATE(event) && strcmp(name, "erasure_request") == 0);
	if (strcmp(name, "consent_state") == 0 || strcmp(name, "erasure_request") == 0)
		pvg_changes_note_write(TRIGGER_FIRED_BY_TRUNCATE(event));
	if (full && (strcmp(name, "consent_state") == 0 || strcmp(name, "erasure_request") == 0))
	{
		Oid			purpose_rel = get_relname_relid("purpose", RelationGetNamespace(rel));

		if (TRIGGER_FIRED_BY_TRUNCATE(event))
			pvg_consent_note_full_change();
		if (OidIsValid(purpose_rel))
			CacheInvalidateRelcacheByRelid(purpose_rel);
	}
	CacheInvalidateRelcache(rel);
}

Datum
pvg_invalidate_cache(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_invalidate_cache() must be called as a trigger")));
	pvg_invalidate_for(trigdata->tg_relation, trigdata->tg_event);
	return PointerGetDatum(NULL);
}

/*
 * The apply worker of a logical replication subscription fires row
 * triggers only, never statement triggers (the initial copy of a table
 * fires both).  So under session_replication_role = replica the row
 * triggers below, which privacy_guard enables ALWAYS, queue the
 * invalidation the statement trigger would have queued; PostgreSQL keeps
 * one message per relation and transaction however many rows queue it.
 */
static void
pvg_invalidate_if_replica(TriggerData *trigdata)
{
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		pvg_invalidate_for(trigdata->tg_relation, trigdata->tg_event);
}

/*
 * Row trigger (BEFORE INSERT or UPDATE) on consent_state and
 * erasure_request: stamp the row with the transaction writing it, whatever
 * the row says.  Sessions catch up by that stamp (consent_cache.c), so a
 * row written with an older one (COPY of a dump, pg_restore --data-only)
 * must not keep it, or sessions already running would never see it.
 */
Datum
pvg_stamp_changed_xid(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	tuple;
	int			attnum;
	Datum		value;
	bool		isnull = false;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) || TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_stamp_changed_xid() must be called as a BEFORE INSERT or UPDATE row trigger")));
	desc = RelationGetDescr(trigdata->tg_relation);
	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	attnum = SPI_fnumber(desc, "changed_xid");
	if (attnum <= 0 || TupleDescAttr(desc, attnum - 1)->atttypid != XID8OID)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("table \"%s\" has no column changed_xid of type xid8",
						RelationGetRelationName(trigdata->tg_relation))));
	value = FullTransactionIdGetDatum(GetTopFullTransactionId());
	pvg_invalidate_if_replica(trigdata);
	return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, 1, &attnum, &value, &isnull));
}

/*
 * Row trigger after a consent row is deleted or changes its subject, and
 * after a forget request is deleted or loses its subject: record the old
 * subject for readers of the shared store (they re-read it), or, when that
 * cannot be done, count a full change.
 */
Datum
pvg_note_removed_subject(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	int			attnum;
	bool		isnull;
	Datum		d;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_note_removed_subject() must be called as an AFTER ROW trigger")));
	desc = RelationGetDescr(trigdata->tg_relation);
	attnum = SPI_fnumber(desc, "subject");
	if (attnum <= 0)
		elog(ERROR, "_note_removed_subject(): no subject column");
	d = heap_getattr(trigdata->tg_trigtuple, attnum, desc, &isnull);
	if (!isnull)
	{
		text	   *t = DatumGetTextPP(d);

		if (!pvg_shared_note_removed(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)))
			pvg_consent_note_full_change();
		pvg_changes_note_removed(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	/* a deleted row or a subject gone: a full change, as for a DELETE */
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		pvg_invalidate_for(trigdata->tg_relation, TRIGGER_EVENT_DELETE);
	return PointerGetDatum(NULL);
}

/*
 * _calling_role() -> the role the session acts as: the one set by SET ROLE
 * (or the session user), not the owner of the SECURITY DEFINER function
 * that is running.  Administration functions use it to apply the checks
 * PostgreSQL itself would apply to their caller.
 */
Datum
pvg_calling_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_OID(GetOuterUserId());
}

/* _preloaded() -> whether the library was loaded at server start, so the launcher runs */
Datum
pvg_preloaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(pvg_preloaded_at_start);
}
