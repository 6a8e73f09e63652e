/*
 * import.c -- the writes of a bulk consent import (import_consents), done
 * as COPY does them: rows formed straight from the import's arrays, put
 * into the table a page at a time (table_multi_insert: one WAL record per
 * page, not per row) and then into each index.
 *
 * Used only where nothing else is to happen per row: import_consents calls
 * these while the consent tables carry privacy_guard's own triggers alone
 * (_import_triggers_known), whose work the import does itself -- the
 * purpose foreign key is checked and locked once per purpose before, the
 * changed_xid stamp is set here, and the statement-level invalidation is
 * fired afterwards.  Columns the import does not supply get their defaults
 * evaluated per row in input order, as INSERT does (the ledger's id from
 * its sequence, the times, the recording user); NOT NULL and CHECK
 * constraints and the unique indexes are checked as INSERT checks them.
 * When a table does not have the layout this code knows (a column missing
 * or of another type, a generated column), the functions write nothing and
 * return false, and the import writes with INSERT instead.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "rewrite/rewriteHandler.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_locale.h"
#include "utils/rel.h"
#include "utils/varlena.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(pvg_import_insert_state);
PG_FUNCTION_INFO_V1(pvg_import_insert_ledger);

/* rows per table_multi_insert() call: COPY's batch size */
#define PVG_IMPORT_BATCH 1000

/* A column the import supplies: its name and type, and its value per row. */
typedef struct PvgImportCol
{
	const char *name;
	Oid			type;
	Datum	   *values;			/* per input row; NULL: every row the constant */
	bool	   *nulls;			/* per input row; NULL: none is null */
	Datum		constant;
	bool		constant_null;
	int			attnum;			/* found in the table (1-based) */
} PvgImportCol;

/*
 * The elements of a one-dimensional array argument (NULL: every row NULL).
 * PL/pgSQL hands its array variables over expanded: their elements are
 * read in place (and kept by the array for the next call) rather than the
 * array flattened into a copy first.
 */
static void
pvg_import_arg(FunctionCallInfo fcinfo, int argno, Oid elemtype, int nrows,
			   Datum **values, bool **nulls)
{
	Datum		d;
	int			n;

	if (PG_ARGISNULL(argno))
	{
		*values = NULL;
		*nulls = NULL;
		return;
	}
	d = PG_GETARG_DATUM(argno);
	if (VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(d)))
	{
		ExpandedArrayHeader *eah = DatumGetExpandedArray(d);

		if (eah->ndims > 1 || eah->element_type != elemtype)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the import's arguments must be one-dimensional arrays of the expected types")));
		deconstruct_expanded_array(eah);
		*values = eah->dvalues;
		*nulls = eah->dnulls;	/* NULL when no element is */
		n = eah->nelems;
	}
	else
	{
		ArrayType  *a = DatumGetArrayTypeP(d);
		int16		typlen;
		bool		typbyval;
		char		typalign;

		if (ARR_NDIM(a) > 1 || ARR_ELEMTYPE(a) != elemtype)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the import's arguments must be one-dimensional arrays of the expected types")));
		get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
		deconstruct_array(a, elemtype, typlen, typbyval, typalign, values, nulls, &n);
	}
	if (n != nrows)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the import's arrays must have the same number of elements")));
}

/* Number of rows: the length of the first argument (a non-null array). */
static int
pvg_import_rows(FunctionCallInfo fcinfo)
{
	AnyArrayType *a;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("subjects and purposes must not be null")));
	a = PG_GETARG_ANY_ARRAY_P(0);
	return ArrayGetNItems(AARR_NDIM(a), AARR_DIMS(a));
}

/* Sort order of the current state's rows: its primary key's (subject, purpose). */
typedef struct PvgImportSortArg
{
	Datum	   *subjects;
	Datum	   *purposes;
	Oid			collation;
	bool		bytewise;		/* the collation is C: compare bytes */
} PvgImportSortArg;

static inline int
pvg_import_cmp_text(PvgImportSortArg *s, Datum a, Datum b)
{
	text	   *x = DatumGetTextPP(a);
	text	   *y = DatumGetTextPP(b);
	int			lx = VARSIZE_ANY_EXHDR(x);
	int			ly = VARSIZE_ANY_EXHDR(y);
	int			c;

	if (!s->bytewise)
		return varstr_cmp(VARDATA_ANY(x), lx, VARDATA_ANY(y), ly, s->collation);
	c = memcmp(VARDATA_ANY(x), VARDATA_ANY(y), Min(lx, ly));
	if (c != 0)
		return c;
	return (lx > ly) - (lx < ly);
}

static int
pvg_import_cmp(const void *a, const void *b, void *arg)
{
	PvgImportSortArg *s = (PvgImportSortArg *) arg;
	int			i = *(const int *) a;
	int			j = *(const int *) b;
	int			c;

	c = pvg_import_cmp_text(s, s->subjects[i], s->subjects[j]);
	if (c == 0)
		c = pvg_import_cmp_text(s, s->purposes[i], s->purposes[j]);
	if (c != 0)
		return c;
	return (i > j) - (i < j);
}

/*
 * Insert nrows rows into privacy_guard.<relname>, in the order given (NULL:
 * input order): the supplied columns, changed_xid (when stamp) set to this
 * transaction, every other column its default.  Returns false, having
 * written nothing, when the table's layout is not the one expected.
 */
static bool
pvg_import_insert(const char *relname, PvgImportCol *cols, int ncols, bool stamp,
				  int nrows, const int *order)
{
	Relation	rel;
	TupleDesc	desc;
	int			natts;
	volatile int stamp_attnum = 0;
	bool	   *supplied;
	ExprState **defaults;
	EState	   *estate;
	ResultRelInfo *rri;
	ExprContext *econtext;
	TupleTableSlot *slots[PVG_IMPORT_BATCH];
	MemoryContext batchcxt;
	MemoryContext oldcxt;
	MemoryContext callercxt;
	volatile int current_row = -1;
	CommandId	cid;
	volatile Datum xid = (Datum) 0;
	int			done;
	int			i;
	int			k;

	rel = table_openrv(makeRangeVar("privacy_guard", pstrdup(relname), -1), RowExclusiveLock);
	if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_INSERT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", RelationGetRelationName(rel))));
	desc = RelationGetDescr(rel);
	natts = desc->natts;

	/* the layout this code knows, or nothing written */
	if (rel->rd_rel->relkind != RELKIND_RELATION)
	{
		table_close(rel, RowExclusiveLock);
		return false;
	}
	supplied = palloc0(sizeof(bool) * natts);
	for (k = 0; k < ncols; k++)
		cols[k].attnum = 0;
	for (i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		if (att->attgenerated)
		{
			table_close(rel, RowExclusiveLock);
			return false;
		}
		for (k = 0; k < ncols; k++)
			if (strcmp(NameStr(att->attname), cols[k].name) == 0)
			{
				if (att->atttypid != cols[k].type)
				{
					table_close(rel, RowExclusiveLock);
					return false;
				}
				cols[k].attnum = i + 1;
				supplied[i] = true;
			}
		if (stamp && strcmp(NameStr(att->attname), "changed_xid") == 0)
		{
			if (att->atttypid != XID8OID)
			{
				table_close(rel, RowExclusiveLock);
				return false;
			}
			stamp_attnum = i + 1;
			supplied[i] = true;
		}
	}
	for (k = 0; k < ncols; k++)
		if (cols[k].attnum == 0)
		{
			table_close(rel, RowExclusiveLock);
			return false;
		}
	if (stamp && stamp_attnum == 0)
	{
		table_close(rel, RowExclusiveLock);
		return false;
	}

	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 0, NULL, 0);
	ExecOpenIndices(rri, false);
	econtext = GetPerTupleExprContext(estate);

	/* the other columns' defaults, as INSERT evaluates them */
	defaults = palloc0(sizeof(ExprState *) * natts);
	for (i = 0; i < natts; i++)
	{
		Node	   *def;

		if (supplied[i] || TupleDescAttr(desc, i)->attisdropped)
			continue;
		def = build_column_default(rel, i + 1);
		if (def != NULL)
			defaults[i] = ExecPrepareExpr((Expr *) def, estate);
	}
	if (stamp)
		xid = FullTransactionIdGetDatum(GetTopFullTransactionId());

	for (i = 0; i < PVG_IMPORT_BATCH; i++)
		slots[i] = table_slot_create(rel, NULL);
	batchcxt = AllocSetContextCreate(CurrentMemoryContext, "privacy_guard import batch",
									 ALLOCSET_DEFAULT_SIZES);
	cid = GetCurrentCommandId(true);

	/*
	 * A row the table refuses (a CHECK constraint, a NOT NULL column, a key
	 * already there) raises PostgreSQL's usual error, but with the row's
	 * number in the input as its detail instead of the row's values, which
	 * would show a subject key.
	 */
	callercxt = CurrentMemoryContext;
	PG_TRY();
	{
		for (done = 0; done < nrows;)
		{
			int			n = Min(PVG_IMPORT_BATCH, nrows - done);

			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(batchcxt);
			oldcxt = MemoryContextSwitchTo(batchcxt);
			for (i = 0; i < n; i++)
			{
				TupleTableSlot *slot = slots[i];
				int			row = order ? order[done + i] : done + i;
				int			a;

				current_row = row;
				ExecClearTuple(slot);
				for (a = 0; a < natts; a++)
				{
					if (defaults[a] != NULL)
					{
						/* evaluated in the batch's context, kept until the batch is written */
						slot->tts_values[a] = ExecEvalExpr(defaults[a], econtext, &slot->tts_isnull[a]);
					}
					else
					{
						slot->tts_values[a] = (Datum) 0;
						slot->tts_isnull[a] = true;
					}
				}
				for (k = 0; k < ncols; k++)
				{
					PvgImportCol *c = &cols[k];
					int			a = c->attnum - 1;

					if (c->values == NULL)
					{
						slot->tts_values[a] = c->constant;
						slot->tts_isnull[a] = c->constant_null;
					}
					else
					{
						slot->tts_values[a] = c->values[row];
						slot->tts_isnull[a] = c->nulls ? c->nulls[row] : false;
					}
				}
				if (stamp)
				{
					slot->tts_values[stamp_attnum - 1] = xid;
					slot->tts_isnull[stamp_attnum - 1] = false;
				}
				ExecStoreVirtualTuple(slot);
				if (rel->rd_att->constr)
					ExecConstraints(rri, slot, estate);
			}
			table_multi_insert(rel, slots, n, cid, 0, NULL);
			for (i = 0; i < n; i++)
			{
				List	   *recheck;

				current_row = order ? order[done + i] : done + i;
				recheck = ExecInsertIndexTuples(rri, slots[i], estate, false, false, NULL, NIL);
				/* no deferred constraint on these tables; one added later is checked now */
				if (recheck != NIL)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("the bulk import does not support deferred constraints on %s",
									RelationGetRelationName(rel))));
				ResetPerTupleExprContext(estate);
			}
			MemoryContextSwitchTo(oldcxt);
			done += n;
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(callercxt);
		edata = CopyErrorData();
		FlushErrorState();
		edata->detail = current_row >= 0 ? psprintf("Row %d of the input.", current_row + 1) : NULL;
		edata->detail_log = NULL;
		ReThrowError(edata);
	}
	PG_END_TRY();

	for (i = 0; i < PVG_IMPORT_BATCH; i++)
		ExecDropSingleTupleTableSlot(slots[i]);
	MemoryContextDelete(batchcxt);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	return true;
}

/*
 * _import_insert_state(subjects text[], purposes text[], valid_until
 * timestamptz[]) -> boolean: the current state of a checked import,
 * 'granted', inserted in primary-key order (the index grows at its right
 * edge, not all over).  A subject that already has a state for the purpose
 * raises unique_violation, as INSERT does.
 */
Datum
pvg_import_insert_state(PG_FUNCTION_ARGS)
{
	int			nrows = pvg_import_rows(fcinfo);
	PvgImportCol cols[4];
	PvgImportSortArg sort;
	int		   *order;
	int			i;

	memset(cols, 0, sizeof(cols));
	cols[0].name = "subject";
	cols[0].type = TEXTOID;
	pvg_import_arg(fcinfo, 0, TEXTOID, nrows, &cols[0].values, &cols[0].nulls);
	cols[1].name = "purpose";
	cols[1].type = TEXTOID;
	pvg_import_arg(fcinfo, 1, TEXTOID, nrows, &cols[1].values, &cols[1].nulls);
	cols[2].name = "status";
	cols[2].type = TEXTOID;
	cols[2].constant = CStringGetTextDatum("granted");
	cols[3].name = "valid_until";
	cols[3].type = TIMESTAMPTZOID;
	pvg_import_arg(fcinfo, 2, TIMESTAMPTZOID, nrows, &cols[3].values, &cols[3].nulls);
	if (cols[3].values == NULL)
		cols[3].constant_null = true;
	if (nrows == 0)
		PG_RETURN_BOOL(true);

	/* the order of the primary key: subject, purpose in the database's collation */
	order = palloc(sizeof(int) * nrows);
	for (i = 0; i < nrows; i++)
		order[i] = i;
	sort.subjects = cols[0].values;
	sort.purposes = cols[1].values;
	sort.collation = DEFAULT_COLLATION_OID;
	sort.bytewise = lc_collate_is_c(DEFAULT_COLLATION_OID);
	for (i = 0; i < nrows; i++)
		if ((cols[0].nulls && cols[0].nulls[i]) || (cols[1].nulls && cols[1].nulls[i]))
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("subject and purpose must not be null")));
	qsort_arg(order, nrows, sizeof(int), pvg_import_cmp, &sort);

	PG_RETURN_BOOL(pvg_import_insert("consent_state", cols, 4, true, nrows, order));
}

/*
 * _import_insert_ledger(subjects text[], purposes text[], valid_until
 * timestamptz[], evidence jsonb[]) -> boolean: one 'grant' entry per row,
 * in input order (ids as one call per row would take them).
 */
Datum
pvg_import_insert_ledger(PG_FUNCTION_ARGS)
{
	int			nrows = pvg_import_rows(fcinfo);
	PvgImportCol cols[5];

	memset(cols, 0, sizeof(cols));
	cols[0].name = "subject";
	cols[0].type = TEXTOID;
	pvg_import_arg(fcinfo, 0, TEXTOID, nrows, &cols[0].values, &cols[0].nulls);
	cols[1].name = "purpose";
	cols[1].type = TEXTOID;
	pvg_import_arg(fcinfo, 1, TEXTOID, nrows, &cols[1].values, &cols[1].nulls);
	cols[2].name = "action";
	cols[2].type = TEXTOID;
	cols[2].constant = CStringGetTextDatum("grant");
	cols[3].name = "valid_until";
	cols[3].type = TIMESTAMPTZOID;
	pvg_import_arg(fcinfo, 2, TIMESTAMPTZOID, nrows, &cols[3].values, &cols[3].nulls);
	if (cols[3].values == NULL)
		cols[3].constant_null = true;
	cols[4].name = "evidence";
	cols[4].type = JSONBOID;
	pvg_import_arg(fcinfo, 3, JSONBOID, nrows, &cols[4].values, &cols[4].nulls);
	if (cols[4].values == NULL)
		cols[4].constant_null = true;
	if (nrows == 0)
		PG_RETURN_BOOL(true);

	PG_RETURN_BOOL(pvg_import_insert("consent_ledger", cols, 5, false, nrows, NULL));
}

/*
 * _import_bad_rows(subjects text[], purposes text[], valid_until
 * timestamptz[]) -> bigint: how many rows fail one of grant_consent()'s
 * checks of a single row (no subject, an empty or too long one, no purpose,
 * a valid_until that has passed), in one pass over the arrays.
 */
PG_FUNCTION_INFO_V1(pvg_import_bad_rows);
Datum
pvg_import_bad_rows(PG_FUNCTION_ARGS)
{
	int			nrows = pvg_import_rows(fcinfo);
	Datum	   *subjects;
	bool	   *subject_nulls;
	Datum	   *purposes;
	bool	   *purpose_nulls;
	Datum	   *valid;
	bool	   *valid_nulls;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int64		bad = 0;
	int			i;

	pvg_import_arg(fcinfo, 0, TEXTOID, nrows, &subjects, &subject_nulls);
	pvg_import_arg(fcinfo, 1, TEXTOID, nrows, &purposes, &purpose_nulls);
	pvg_import_arg(fcinfo, 2, TIMESTAMPTZOID, nrows, &valid, &valid_nulls);
	for (i = 0; i < nrows; i++)
	{
		if ((subject_nulls && subject_nulls[i]) || (purpose_nulls && purpose_nulls[i]))
			bad++;
		else
		{
			Size		len = toast_raw_datum_size(subjects[i]) - VARHDRSZ;

			if (len == 0 || len > 1024)
				bad++;
			else if (valid != NULL && !(valid_nulls && valid_nulls[i]) &&
					 DatumGetTimestampTz(valid[i]) <= now)
				bad++;
		}
	}
	PG_RETURN_INT64(bad);
}

/* A purpose an import names: where first, how often. */
typedef struct PvgImportPurpose
{
	int			first;			/* index of its first row */
	int64		rows;
} PvgImportPurpose;

/*
 * _import_purposes(purposes text[]) -> TABLE (name text, rows bigint,
 * first_at bigint): each purpose named, in the order of first use, with
 * its number of rows and its first row number; in one pass, with an open
 * hash table over the array's elements.
 */
PG_FUNCTION_INFO_V1(pvg_import_purposes);
Datum
pvg_import_purposes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum	   *purposes;
	bool	   *nulls;
	AnyArrayType *a;
	int			nrows;
	int			size = 64;
	int			used = 0;
	int		   *slots;			/* index into found + 1; 0: empty */
	PvgImportPurpose *found;
	int			nfound = 0;
	int			i;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	a = PG_GETARG_ANY_ARRAY_P(0);
	nrows = ArrayGetNItems(AARR_NDIM(a), AARR_DIMS(a));
	pvg_import_arg(fcinfo, 0, TEXTOID, nrows, &purposes, &nulls);
	InitMaterializedSRF(fcinfo, 0);

	slots = palloc0(sizeof(int) * size);
	found = palloc(sizeof(PvgImportPurpose) * 16);
	for (i = 0; i < nrows; i++)
	{
		text	   *t;
		uint32		h;
		int			pos;

		if (nulls && nulls[i])
			continue;
		t = DatumGetTextPP(purposes[i]);
		h = DatumGetUInt32(hash_any((unsigned char *) VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
		for (pos = h & (size - 1);; pos = (pos + 1) & (size - 1))
		{
			text	   *u;

			if (slots[pos] == 0)
			{
				if (nfound % 16 == 0 && nfound > 0)
					found = repalloc(found, sizeof(PvgImportPurpose) * (nfound + 16));
				found[nfound].first = i;
				found[nfound].rows = 1;
				slots[pos] = ++nfound;
				used++;
				break;
			}
			u = DatumGetTextPP(purposes[found[slots[pos] - 1].first]);
			if (VARSIZE_ANY_EXHDR(u) == VARSIZE_ANY_EXHDR(t) &&
				memcmp(VARDATA_ANY(u), VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)) == 0)
			{
				found[slots[pos] - 1].rows++;
				break;
			}
		}
		if (used * 2 > size)
		{
			/* grow: rehash every purpose found so far */
			int			newsize = size * 2;
			int		   *newslots = palloc0(sizeof(int) * newsize);
			int			f;

			for (f = 0; f < nfound; f++)
			{
				text	   *u = DatumGetTextPP(purposes[found[f].first]);

				h = DatumGetUInt32(hash_any((unsigned char *) VARDATA_ANY(u), VARSIZE_ANY_EXHDR(u)));
				for (pos = h & (newsize - 1); newslots[pos] != 0; pos = (pos + 1) & (newsize - 1))
					;
				newslots[pos] = f + 1;
			}
			pfree(slots);
			slots = newslots;
			size = newsize;
		}
	}
	for (i = 0; i < nfound; i++)
	{
		Datum		values[3];
		bool		isnull[3] = {false, false, false};

		values[0] = purposes[found[i].first];
		values[1] = Int64GetDatum(found[i].rows);
		values[2] = Int64GetDatum((int64) found[i].first + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, isnull);
	}
	return (Datum) 0;
}
