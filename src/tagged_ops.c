/*-------------------------------------------------------------------------
 *
 * tagged_ops.c
 *	  What reads or builds a tagged value in SQL: reveal(), the tag's public
 *	  parts, tag(), the casts from plain values, comparison operators,
 *	  length and LIKE.
 *
 * Each one decodes its arguments and asks the tagged-value rule
 * (pvg_tag_visible, tagged_access.c) whether the session may see them; a
 * value that may not be seen is NULL to every function and operator here.
 * Nothing here errors about purposes (the output functions in tagged_io.c
 * are the exception, by design).
 *
 * There is deliberately no btree or hash operator class: an index or a sort
 * order would have to be the same for every session, so it would order
 * withheld values by their content.  Sorting, grouping and DISTINCT go
 * through reveal(), which gives NULL for withheld values.
 *
 *-------------------------------------------------------------------------
 */
#include "tagged.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(pvg_tag_reveal);
PG_FUNCTION_INFO_V1(pvg_tag_purposes);
PG_FUNCTION_INFO_V1(pvg_tag_retain_until);
PG_FUNCTION_INFO_V1(pvg_tag_make_text);
PG_FUNCTION_INFO_V1(pvg_tag_make_date);
PG_FUNCTION_INFO_V1(pvg_tag_make_numeric);
PG_FUNCTION_INFO_V1(pvg_tag_make_jsonb);
PG_FUNCTION_INFO_V1(pvg_tag_plain_text);
PG_FUNCTION_INFO_V1(pvg_tag_plain_date);
PG_FUNCTION_INFO_V1(pvg_tag_plain_numeric);
PG_FUNCTION_INFO_V1(pvg_tag_plain_jsonb);
PG_FUNCTION_INFO_V1(pvg_tagged_eq);
PG_FUNCTION_INFO_V1(pvg_tagged_ne);
PG_FUNCTION_INFO_V1(pvg_tagged_lt);
PG_FUNCTION_INFO_V1(pvg_tagged_le);
PG_FUNCTION_INFO_V1(pvg_tagged_gt);
PG_FUNCTION_INFO_V1(pvg_tagged_ge);
PG_FUNCTION_INFO_V1(pvg_tagged_length);
PG_FUNCTION_INFO_V1(pvg_tagged_like);
PG_FUNCTION_INFO_V1(pvg_tagged_notlike);

/* Decode argument n and say whether it may be seen. */
static bool
pvg_tag_arg(FunctionCallInfo fcinfo, int n, PvgTag *tag)
{
	pvg_tag_decode(PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(n)), tag);
	return pvg_tag_visible(fcinfo, tag);
}

/* reveal(v) -> base: the value if the tagged-value rule allows, else NULL */
Datum
pvg_tag_reveal(PG_FUNCTION_ARGS)
{
	PvgTag		tag;

	if (!pvg_tag_arg(fcinfo, 0, &tag))
		PG_RETURN_NULL();
	return pvg_tag_base_value(&tag);
}

/* tag_purposes(v) -> text[]: names (or "#id" for dropped ones); NULL when untagged */
Datum
pvg_tag_purposes(PG_FUNCTION_ARGS)
{
	PvgTag		tag;
	PvgRegistry *reg;
	Datum	   *elems;
	int			i;

	pvg_tag_decode(PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0)), &tag);
	if (tag.flags & PVG_TAG_F_DEFAULT)
		PG_RETURN_NULL();
	reg = pvg_registry();
	elems = palloc(sizeof(Datum) * (tag.npurposes + 1));
	for (i = 0; i < tag.npurposes; i++)
	{
		int			idx = pvg_registry_purpose_by_id(reg, tag.purposes[i]);

		if (idx >= 0)
			elems[i] = CStringGetTextDatum(reg->purposes[idx].name);
		else
			elems[i] = CStringGetTextDatum(psprintf("#%d", tag.purposes[i]));
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, tag.npurposes, TEXTOID, -1, false,
										  TYPALIGN_INT));
}

/* tag_retain_until(v) -> timestamptz, NULL when the tag sets none */
Datum
pvg_tag_retain_until(PG_FUNCTION_ARGS)
{
	PvgTag		tag;

	pvg_tag_decode(PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0)), &tag);
	if (!(tag.flags & PVG_TAG_F_RETAIN))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(tag.retain_until);
}

/* tag(value, purposes text[], subject text, retain_until timestamptz) */
static Datum
pvg_tag_make(FunctionCallInfo fcinfo, PvgTagKind kind)
{
	PvgTag		tag;
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	PvgRegistry *reg;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a tag needs purposes")));
	memset(&tag, 0, sizeof(tag));
	arr = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("purposes must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	reg = pvg_registry();
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("purposes must not contain NULL")));
		if (tag.npurposes >= PVG_TAG_MAX_PURPOSES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("a tag holds at most %d purposes", PVG_TAG_MAX_PURPOSES)));
		tag.purposes[tag.npurposes++] =
			pvg_tag_resolve_purpose(reg, TextDatumGetCString(elems[i]), -1);
	}
	if (tag.npurposes == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a tag needs at least one purpose")));
	pvg_tag_sort_purposes(&tag);
	if (!PG_ARGISNULL(2))
	{
		text	   *s = PG_GETARG_TEXT_PP(2);

		tag.subject = VARDATA_ANY(s);
		tag.subject_len = VARSIZE_ANY_EXHDR(s);
		pvg_tag_check_subject(tag.subject, tag.subject_len);
		tag.flags |= PVG_TAG_F_SUBJECT;
	}
	if (!PG_ARGISNULL(3))
	{
		tag.retain_until = PG_GETARG_TIMESTAMPTZ(3);
		tag.flags |= PVG_TAG_F_RETAIN;
	}
	pvg_tag_set_value(&tag, kind, PG_GETARG_DATUM(0));
	PG_RETURN_POINTER(pvg_tag_encode(&tag));
}

Datum
pvg_tag_make_text(PG_FUNCTION_ARGS)
{
	return pvg_tag_make(fcinfo, PVG_KIND_TEXT);
}

Datum
pvg_tag_make_date(PG_FUNCTION_ARGS)
{
	return pvg_tag_make(fcinfo, PVG_KIND_DATE);
}

Datum
pvg_tag_make_numeric(PG_FUNCTION_ARGS)
{
	return pvg_tag_make(fcinfo, PVG_KIND_NUMERIC);
}

Datum
pvg_tag_make_jsonb(PG_FUNCTION_ARGS)
{
	return pvg_tag_make(fcinfo, PVG_KIND_JSONB);
}

/* The assignment cast from a base type: a plain value awaiting its column's default tag. */
static Datum
pvg_tag_plain(FunctionCallInfo fcinfo, PvgTagKind kind)
{
	PvgTag		tag;

	memset(&tag, 0, sizeof(tag));
	tag.flags = PVG_TAG_F_DEFAULT;
	pvg_tag_set_value(&tag, kind, PG_GETARG_DATUM(0));
	PG_RETURN_POINTER(pvg_tag_encode(&tag));
}

Datum
pvg_tag_plain_text(PG_FUNCTION_ARGS)
{
	return pvg_tag_plain(fcinfo, PVG_KIND_TEXT);
}

Datum
pvg_tag_plain_date(PG_FUNCTION_ARGS)
{
	return pvg_tag_plain(fcinfo, PVG_KIND_DATE);
}

Datum
pvg_tag_plain_numeric(PG_FUNCTION_ARGS)
{
	return pvg_tag_plain(fcinfo, PVG_KIND_NUMERIC);
}

Datum
pvg_tag_plain_jsonb(PG_FUNCTION_ARGS)
{
	return pvg_tag_plain(fcinfo, PVG_KIND_JSONB);
}

/*
 * Compare two tagged values of the same type; *isnull when either is
 * withheld (the operators then give NULL).
 */
static int
pvg_tagged_cmp(FunctionCallInfo fcinfo, bool *isnull)
{
	PvgTag		a;
	PvgTag		b;
	bool		va = pvg_tag_arg(fcinfo, 0, &a);
	bool		vb = pvg_tag_arg(fcinfo, 1, &b);

	*isnull = !(va && vb);
	if (*isnull)
		return 0;
	if (a.kind != b.kind)
		elog(ERROR, "tagged values of different types compared");
	switch (a.kind)
	{
		case PVG_KIND_TEXT:
			{
				Oid			collid = PG_GET_COLLATION();

				if (!OidIsValid(collid))
					collid = DEFAULT_COLLATION_OID;
				return varstr_cmp(a.payload, a.payload_len, b.payload, b.payload_len, collid);
			}
		case PVG_KIND_DATE:
			{
				DateADT		x = DatumGetDateADT(pvg_tag_base_value(&a));
				DateADT		y = DatumGetDateADT(pvg_tag_base_value(&b));

				return (x > y) - (x < y);
			}
		case PVG_KIND_NUMERIC:
			return DatumGetInt32(DirectFunctionCall2(numeric_cmp, pvg_tag_base_value(&a),
													 pvg_tag_base_value(&b)));
		case PVG_KIND_JSONB:
			return DatumGetInt32(DirectFunctionCall2(jsonb_cmp, pvg_tag_base_value(&a),
													 pvg_tag_base_value(&b)));
	}
	return 0;
}

#define PVG_TAGGED_CMP_FN(fname, test) \
Datum \
fname(PG_FUNCTION_ARGS) \
{ \
	bool		isnull; \
	int			c = pvg_tagged_cmp(fcinfo, &isnull); \
\
	if (isnull) \
		PG_RETURN_NULL(); \
	PG_RETURN_BOOL(test); \
}

PVG_TAGGED_CMP_FN(pvg_tagged_eq, c == 0)
PVG_TAGGED_CMP_FN(pvg_tagged_ne, c != 0)
PVG_TAGGED_CMP_FN(pvg_tagged_lt, c < 0)
PVG_TAGGED_CMP_FN(pvg_tagged_le, c <= 0)
PVG_TAGGED_CMP_FN(pvg_tagged_gt, c > 0)
PVG_TAGGED_CMP_FN(pvg_tagged_ge, c >= 0)

/* length(tagged_text) -> integer, NULL when withheld */
Datum
pvg_tagged_length(PG_FUNCTION_ARGS)
{
	PvgTag		tag;

	if (!pvg_tag_arg(fcinfo, 0, &tag))
		PG_RETURN_NULL();
	PG_RETURN_INT32(pg_mbstrlen_with_len(tag.payload, tag.payload_len));
}

/* tagged_text LIKE text, NULL when withheld */
static Datum
pvg_tagged_like_common(FunctionCallInfo fcinfo, bool negate)
{
	PvgTag		tag;
	bool		r;

	if (!pvg_tag_arg(fcinfo, 0, &tag))
		PG_RETURN_NULL();
	r = DatumGetBool(DirectFunctionCall2Coll(textlike, PG_GET_COLLATION(),
											 pvg_tag_base_value(&tag), PG_GETARG_DATUM(1)));
	PG_RETURN_BOOL(negate ? !r : r);
}

Datum
pvg_tagged_like(PG_FUNCTION_ARGS)
{
	return pvg_tagged_like_common(fcinfo, false);
}

Datum
pvg_tagged_notlike(PG_FUNCTION_ARGS)
{
	return pvg_tagged_like_common(fcinfo, true);
}
