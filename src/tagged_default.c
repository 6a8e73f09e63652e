/*-------------------------------------------------------------------------
 *
 * tagged_default.c
 *	  Default tags: the trigger protect() installs on a protected table with
 *	  tagged columns, which gives a plain value written into a tagged column
 *	  (or a plain element of an array of tagged values) the column's default
 *	  tag: the table's purposes, the row's subject and its retention.
 *
 * What the trigger needs for a table (its tagged columns, the subject and
 * retention columns, the table's purposes) is worked out once per
 * statement.  Values that carry a tag keep it.
 *
 *-------------------------------------------------------------------------
 */
#include "tagged.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(pvg_tag_default_trigger);

/* what the default-tag trigger needs for one table, per statement */
typedef struct PvgDefaultTag
{
	Oid			relid;
	bool		registered;
	int			ncols;
	AttrNumber	cols[MaxHeapAttributeNumber];
	Oid			elemtype[MaxHeapAttributeNumber];	/* an array column's element type, else InvalidOid */
	int16		elemlen[MaxHeapAttributeNumber];	/* ... and how its elements are stored */
	bool		elembyval[MaxHeapAttributeNumber];
	char		elemalign[MaxHeapAttributeNumber];
	int			npurposes;
	int32		purposes[PVG_TAG_MAX_PURPOSES];
	AttrNumber	subject_att;
	FmgrInfo	subject_out;
	bool		has_retention;
	AttrNumber	retention_att;
	Oid			retention_type;
	Interval	retention;
} PvgDefaultTag;

/* The registration governing relid: its own, or a partition ancestor's. */
static PvgTable *
pvg_tag_table_for(PvgRegistry *reg, Oid relid)
{
	PvgTable   *t = pvg_registry_table(reg, relid);
	List	   *ancestors;
	ListCell   *lc;

	if (t != NULL || !get_rel_relispartition(relid))
		return t;
	ancestors = get_partition_ancestors(relid);
	foreach(lc, ancestors)
	{
		t = pvg_registry_table(reg, lfirst_oid(lc));
		if (t != NULL)
			return t;
	}
	return NULL;
}

static void
pvg_default_tag_setup(PvgDefaultTag *dt, Relation rel, MemoryContext cxt)
{
	TupleDesc	desc = RelationGetDescr(rel);
	PvgRegistry *reg;
	PvgTable   *t;
	Oid			nsp = get_namespace_oid("privacy_guard", false);
	int			i;

	memset(dt, 0, sizeof(PvgDefaultTag));
	dt->relid = RelationGetRelid(rel);
	reg = pvg_registry();
	t = pvg_tag_table_for(reg, dt->relid);
	if (t == NULL)
		return;
	dt->registered = true;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			base;

		if (att->attisdropped)
			continue;
		base = getBaseType(att->atttypid);
		if (pvg_type_is_tagged(base, nsp))
		{
			dt->elemtype[dt->ncols] = InvalidOid;
			dt->cols[dt->ncols++] = att->attnum;
		}
		else if (OidIsValid(get_element_type(base)) &&
				 pvg_type_is_tagged(getBaseType(get_element_type(base)), nsp))
		{
			/* an array of tagged values: its plain elements get the default tag */
			dt->elemtype[dt->ncols] = get_element_type(base);
			get_typlenbyvalalign(dt->elemtype[dt->ncols], &dt->elemlen[dt->ncols],
								 &dt->elembyval[dt->ncols], &dt->elemalign[dt->ncols]);
			dt->cols[dt->ncols++] = att->attnum;
		}
	}
	for (i = 0; i < t->npurposes && dt->npurposes < PVG_TAG_MAX_PURPOSES; i++)
		dt->purposes[dt->npurposes++] = reg->purposes[t->purposes[i]].id;
	dt->subject_att = InvalidAttrNumber;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		if (t->subject_column && strcmp(NameStr(att->attname), t->subject_column) == 0)
		{
			Oid			outfunc;
			bool		isvarlena;

			dt->subject_att = att->attnum;
			getTypeOutputInfo(att->atttypid, &outfunc, &isvarlena);
			fmgr_info_cxt(outfunc, &dt->subject_out, cxt);
		}
		if (t->has_retention && t->retention_column &&
			strcmp(NameStr(att->attname), t->retention_column) == 0)
		{
			dt->has_retention = true;
			dt->retention_att = att->attnum;
			dt->retention_type = getBaseType(att->atttypid);
			dt->retention = t->retention;
		}
	}
}

/* retention column value + retention, as timestamptz */
static TimestampTz
pvg_default_retain_until(PvgDefaultTag *dt, Datum v)
{
	Datum		ts;
	Datum		iv = IntervalPGetDatum(&dt->retention);

	switch (dt->retention_type)
	{
		case TIMESTAMPTZOID:
			return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval, v, iv));
		case DATEOID:
			v = DirectFunctionCall1(date_timestamp, v);
			/* FALLTHROUGH */
		case TIMESTAMPOID:
			ts = DirectFunctionCall2(timestamp_pl_interval, v, iv);
			return DatumGetTimestampTz(DirectFunctionCall1(timestamp_timestamptz, ts));
	}
	elog(ERROR, "unexpected retention column type %u", dt->retention_type);
	return 0;
}

/* one row's default tag, built when the row's first plain value is met */
typedef struct PvgRowTag
{
	bool		built;
	PvgTag		tag;
} PvgRowTag;

/*
 * The value v with the column's default tag, if v is plain (awaiting one):
 * the table's purposes, the row's subject and retention_column + retention
 * (values and nulls are the row's; row keeps them for its other values).
 * NULL when v carries a tag of its own.
 */
static struct varlena *
pvg_default_tagged(PvgDefaultTag *dt, Datum *values, bool *nulls, PvgRowTag *row, Datum v)
{
	PvgTag		tag;

	pvg_tag_decode(PG_DETOAST_DATUM_PACKED(v), &tag);
	if (!(tag.flags & PVG_TAG_F_DEFAULT))
		return NULL;
	if (!row->built)
	{
		PvgTag	   *d = &row->tag;

		d->flags = 0;
		d->npurposes = dt->npurposes;
		memcpy(d->purposes, dt->purposes, sizeof(int32) * dt->npurposes);
		pvg_tag_sort_purposes(d);
		if (dt->subject_att != InvalidAttrNumber && !nulls[dt->subject_att - 1])
		{
			char	   *s = OutputFunctionCall(&dt->subject_out, values[dt->subject_att - 1]);

			pvg_tag_check_subject(s, strlen(s));
			d->subject = s;
			d->subject_len = strlen(s);
			d->flags |= PVG_TAG_F_SUBJECT;
		}
		if (dt->has_retention && !nulls[dt->retention_att - 1])
		{
			d->retain_until = pvg_default_retain_until(dt, values[dt->retention_att - 1]);
			d->flags |= PVG_TAG_F_RETAIN;
		}
		row->built = true;
	}
	/* the plain value's own kind and payload, under the row's tag */
	tag.flags = row->tag.flags;
	tag.npurposes = row->tag.npurposes;
	memcpy(tag.purposes, row->tag.purposes, sizeof(int32) * row->tag.npurposes);
	tag.subject = row->tag.subject;
	tag.subject_len = row->tag.subject_len;
	tag.retain_until = row->tag.retain_until;
	return pvg_tag_encode(&tag);
}

/*
 * BEFORE INSERT OR UPDATE row trigger installed by protect(): a plain value
 * written into a tagged column takes the column's default tag, the table's
 * purposes, the row's subject and retention_column + retention; so does a
 * plain element of an array of tagged values.  Values that carry a tag
 * keep it.
 */
Datum
pvg_tag_default_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	PvgDefaultTag *dt;
	HeapTuple	tuple;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	bool	   *replace;
	bool		changed = false;
	PvgRowTag	row = {false};
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_tag_default() must be called as a BEFORE ROW trigger")));
	tuple = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;

	dt = (PvgDefaultTag *) fcinfo->flinfo->fn_extra;
	if (dt == NULL || dt->relid != RelationGetRelid(td->tg_relation))
	{
		dt = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(PvgDefaultTag));
		pvg_default_tag_setup(dt, td->tg_relation, fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = dt;
	}
	if (!dt->registered || dt->ncols == 0)
		return PointerGetDatum(tuple);

	desc = RelationGetDescr(td->tg_relation);
	values = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	replace = palloc0(sizeof(bool) * desc->natts);
	heap_deform_tuple(tuple, desc, values, nulls);
	for (i = 0; i < dt->ncols; i++)
	{
		int			a = dt->cols[i] - 1;
		struct varlena *tagged;

		if (nulls[a])
			continue;
		if (OidIsValid(dt->elemtype[i]))
		{
			/* an array: each plain element takes the default tag, the shape kept */
			ArrayType  *arr = DatumGetArrayTypeP(values[a]);
			Datum	   *elems;
			bool	   *elemnulls;
			int			n;
			bool		elems_changed = false;

			deconstruct_array(arr, dt->elemtype[i], dt->elemlen[i], dt->elembyval[i], dt->elemalign[i],
							  &elems, &elemnulls, &n);
			for (int j = 0; j < n; j++)
			{
				if (elemnulls[j])
					continue;
				tagged = pvg_default_tagged(dt, values, nulls, &row, elems[j]);
				if (tagged == NULL)
					continue;
				elems[j] = PointerGetDatum(tagged);
				elems_changed = true;
			}
			if (!elems_changed)
				continue;
			values[a] = PointerGetDatum(construct_md_array(elems, elemnulls, ARR_NDIM(arr), ARR_DIMS(arr),
														   ARR_LBOUND(arr), dt->elemtype[i],
														   dt->elemlen[i], dt->elembyval[i], dt->elemalign[i]));
		}
		else
		{
			tagged = pvg_default_tagged(dt, values, nulls, &row, values[a]);
			if (tagged == NULL)
				continue;
			values[a] = PointerGetDatum(tagged);
		}
		replace[a] = true;
		changed = true;
	}
	if (!changed)
		return PointerGetDatum(tuple);
	return PointerGetDatum(heap_modify_tuple(tuple, desc, values, nulls, replace));
}
