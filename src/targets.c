/*-------------------------------------------------------------------------
 *
 * targets.c
 *	  What a forget round erases from: each protected table in erasure
 *	  order, with the catalog facts the erasure needs about it.
 *
 * A forget round runs in a fresh worker process, where every SQL statement
 * is planned for the first time.  The facts below are one system-cache
 * lookup each, so they are read here from the caches rather than by a
 * dozen small catalog queries (planning those cost more than the whole
 * erasure of a subject's rows).  Only privacy_guard's own tables are read
 * with SQL: the registrations in erasure order (_erasure_order()), the
 * parts detached from a registered table, and the anonymizing SET list.
 *
 * Nothing here takes a lock on a user table: the facts are a snapshot of
 * the catalogs, as the SQL they replace was, and the erasure statements
 * themselves lock what they touch.  owner_code errs on the safe side: any
 * rule, or any trigger that is not one of PostgreSQL's own (foreign keys),
 * on the table or any part, makes the erasure count what is left.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(pvg_erase_targets);
PG_FUNCTION_INFO_V1(pvg_base_type);

/* the columns of privacy_guard.erase_target */
#define ET_RELID			0
#define ET_SUBJECT_COLUMN	1
#define ET_ON_FORGET		2
#define ET_HOLD_KEEP		3
#define ET_RETENTION_COLUMN 4
#define ET_SUBJECT_TYPE		5
#define ET_BASE_TYPE		6
#define ET_TARGETS			7
#define ET_LEAVES			8
#define ET_OWNER_CODE		9
#define ET_ANONYMIZE_SET	10
#define ET_NATTS			11

/* a registered table and one part that carries its policies */
typedef struct PvgPart
{
	Oid			root;
	Oid			target;
} PvgPart;

/*
 * relid with its partitions and inheritance children at any depth, from
 * pg_inherits as it is now: partitions being detached are included (their
 * rows are still the table's), and a table dropped since the registrations
 * were read is a tree of itself (find_all_inheritors would fail on it).
 */
static List *
tree_of(Relation inhrel, Oid relid)
{
	List	   *tree = list_make1_oid(relid);

	/* the list grows as it is walked: by index, not foreach */
	for (int i = 0; i < list_length(tree); i++)
	{
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tup;

		ScanKeyInit(&key, Anum_pg_inherits_inhparent, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(list_nth_oid(tree, i)));
		scan = systable_beginscan(inhrel, InheritsParentIndexId, true, NULL, 1, &key);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
			tree = list_append_unique_oid(tree, ((Form_pg_inherits) GETSTRUCT(tup))->inhrelid);
		systable_endscan(scan);
	}
	return tree;
}

/* Whether relid has a trigger that is not PostgreSQL's own (a foreign key's). */
static bool
has_user_trigger(Relation tgrel, Oid relid)
{
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(tgrel, TriggerRelidNameIndexId, true, NULL, 1, &key);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
		found = !((Form_pg_trigger) GETSTRUCT(tup))->tgisinternal;
	systable_endscan(scan);
	return found;
}

/*
 * Whether a rule or an owner's trigger on any of the tables could keep rows
 * an erasure deletes or changes.
 */
static bool
owner_code(List *rels)
{
	ListCell   *lc;
	bool		triggers = false;
	bool		found = false;

	foreach(lc, rels)
	{
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(lfirst_oid(lc)));

		if (!HeapTupleIsValid(tup))
			continue;
		if (((Form_pg_class) GETSTRUCT(tup))->relhasrules)
			found = true;
		if (((Form_pg_class) GETSTRUCT(tup))->relhastriggers)
			triggers = true;
		ReleaseSysCache(tup);
	}
	if (!found && triggers)
	{
		Relation	tgrel = table_open(TriggerRelationId, AccessShareLock);

		foreach(lc, rels)
		{
			if (has_user_trigger(tgrel, lfirst_oid(lc)))
			{
				found = true;
				break;
			}
		}
		table_close(tgrel, AccessShareLock);
	}
	return found;
}

/* rels as a regclass[] (ids) or oid[] */
static Datum
oid_array(List *rels, Oid elemtype)
{
	int			n = list_length(rels);
	Datum	   *elems = palloc(sizeof(Datum) * (n > 0 ? n : 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, rels)
		elems[i++] = ObjectIdGetDatum(lfirst_oid(lc));
	return PointerGetDatum(construct_array(elems, n, elemtype, sizeof(Oid), true, TYPALIGN_INT));
}

/*
 * _erase_targets() -> SETOF erase_target
 *
 * The protected tables in erasure order (referencing tables first), each
 * with: its subject column's type (NULL when the column is gone) and that
 * type's base type (under any domains: a domain's checks are the owner's
 * code); the tables the erasure runs on (the table, then parts detached
 * from it since, by OID); the plain tables under those, which hold the
 * rows (by OID); whether a rule or an owner's trigger could keep rows; and
 * for on_forget anonymize the SET list.
 */
Datum
pvg_erase_targets(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SPITupleTable *tables;
	uint64		ntables;
	PvgPart    *parts;
	uint64		nparts;
	Relation	inhrel;
	int			ret;

	InitMaterializedSRF(fcinfo, 0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* the parts of every registered table, by root and then OID */
	ret = SPI_execute("SELECT pp.root::pg_catalog.oid, pp.target::pg_catalog.oid "
					  "FROM privacy_guard.protected_part pp ORDER BY 1, 2", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading privacy_guard.protected_part failed: %s", SPI_result_code_string(ret));
	nparts = SPI_processed;
	parts = palloc(sizeof(PvgPart) * (nparts > 0 ? nparts : 1));
	for (uint64 i = 0; i < nparts; i++)
	{
		bool		isnull;

		parts[i].root = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		parts[i].target = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}

	ret = SPI_execute("SELECT t.relid::pg_catalog.oid, t.subject_column, t.on_forget, t.hold_keep, t.retention_column "
					  "FROM privacy_guard._erasure_order() t", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading the erasure order failed: %s", SPI_result_code_string(ret));
	tables = SPI_tuptable;
	ntables = SPI_processed;
	inhrel = table_open(InheritsRelationId, AccessShareLock);

	for (uint64 i = 0; i < ntables; i++)
	{
		HeapTuple	row = tables->vals[i];
		TupleDesc	desc = tables->tupdesc;
		Datum		values[ET_NATTS];
		bool		nulls[ET_NATTS];
		bool		isnull;
		Oid			relid;
		char	   *subject_column;
		char	   *on_forget;
		List	   *targets;
		List	   *all;
		List	   *leaves = NIL;
		ListCell   *lc;
		HeapTuple	atttup;

		memset(nulls, false, sizeof(nulls));
		relid = DatumGetObjectId(SPI_getbinval(row, desc, 1, &isnull));
		values[ET_RELID] = ObjectIdGetDatum(relid);
		values[ET_SUBJECT_COLUMN] = SPI_getbinval(row, desc, 2, &isnull);
		subject_column = NameStr(*DatumGetName(values[ET_SUBJECT_COLUMN]));
		values[ET_ON_FORGET] = SPI_getbinval(row, desc, 3, &isnull);
		on_forget = TextDatumGetCString(values[ET_ON_FORGET]);
		values[ET_HOLD_KEEP] = SPI_getbinval(row, desc, 4, &nulls[ET_HOLD_KEEP]);
		values[ET_RETENTION_COLUMN] = SPI_getbinval(row, desc, 5, &nulls[ET_RETENTION_COLUMN]);

		/* the subject column's type, as long as the column is there */
		nulls[ET_SUBJECT_TYPE] = nulls[ET_BASE_TYPE] = true;
		atttup = SearchSysCacheAttName(relid, subject_column);
		if (HeapTupleIsValid(atttup))
		{
			Form_pg_attribute att = (Form_pg_attribute) GETSTRUCT(atttup);

			if (att->attnum > 0)
			{
				values[ET_SUBJECT_TYPE] = ObjectIdGetDatum(att->atttypid);
				values[ET_BASE_TYPE] = ObjectIdGetDatum(getBaseType(att->atttypid));
				nulls[ET_SUBJECT_TYPE] = nulls[ET_BASE_TYPE] = false;
			}
			ReleaseSysCache(atttup);
		}

		/*
		 * The table, then the parts detached from it since (registered
		 * parts no longer in its tree), by OID; with all their descendants.
		 */
		all = tree_of(inhrel, relid);
		targets = list_make1_oid(relid);
		for (uint64 j = 0; j < nparts; j++)
		{
			if (parts[j].root == relid && !list_member_oid(all, parts[j].target))
				targets = lappend_oid(targets, parts[j].target);
		}
		for (int j = 1; j < list_length(targets); j++)
			all = list_concat_unique_oid(all, tree_of(inhrel, list_nth_oid(targets, j)));
		values[ET_TARGETS] = oid_array(targets, REGCLASSOID);

		/* the plain tables among them hold the rows */
		foreach(lc, all)
		{
			if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_RELATION)
				leaves = lappend_oid(leaves, lfirst_oid(lc));
		}
		list_sort(leaves, list_oid_cmp);
		values[ET_LEAVES] = oid_array(leaves, OIDOID);

		values[ET_OWNER_CODE] = BoolGetDatum(owner_code(all));

		nulls[ET_ANONYMIZE_SET] = true;
		if (strcmp(on_forget, "anonymize") == 0)
		{
			Oid			argtypes[1] = {REGCLASSOID};
			Datum		args[1] = {ObjectIdGetDatum(relid)};

			ret = SPI_execute_with_args("SELECT privacy_guard._anonymize_set($1)", 1, argtypes, args,
										NULL, true, 1);
			if (ret != SPI_OK_SELECT || SPI_processed != 1)
				elog(ERROR, "building the anonymizing SET list failed: %s", SPI_result_code_string(ret));
			values[ET_ANONYMIZE_SET] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
													 &nulls[ET_ANONYMIZE_SET]);
		}

		/* the tuplestore copies every value before SPI's memory goes */
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	table_close(inhrel, AccessShareLock);
	SPI_finish();
	return (Datum) 0;
}

/*
 * _base_type(typ) -> the type under a domain, at any depth, or the type
 * itself; NULL for a type that does not exist.  The same base type the
 * targets above carry.  In C: forget() asks it for every subject column,
 * and an SQL function was parsed and planned again on every call.
 */
Datum
pvg_base_type(PG_FUNCTION_ARGS)
{
	Oid			typ = PG_GETARG_OID(0);

	if (!SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(typ)))
		PG_RETURN_NULL();
	PG_RETURN_OID(getBaseType(typ));
}
