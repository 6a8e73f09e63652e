/*-------------------------------------------------------------------------
 *
 * tagged_erase.c
 *	  The keyed readers of tagged values: the erasure's matchers
 *	  (_tag_erasable, and _tags_* over arrays and composite values), the
 *	  retain-until expiry of values inside them, and subject_report()'s
 *	  reader (_tag_report_value).
 *
 * The erasure and subject_report() run their statements as each table's
 * owner, who must not learn whose a withheld value is.  So the functions
 * that test a tag's subject answer only when given the database's digest
 * key, which only privacy_guard's own functions hold, and error otherwise:
 * they give no role a way around the tagged-value rule.
 *
 *-------------------------------------------------------------------------
 */
#include "tagged.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(pvg_tag_erasable);
PG_FUNCTION_INFO_V1(pvg_tag_report_value);
PG_FUNCTION_INFO_V1(pvg_tags_erasable);
PG_FUNCTION_INFO_V1(pvg_tags_erase);
PG_FUNCTION_INFO_V1(pvg_tags_expired);
PG_FUNCTION_INFO_V1(pvg_tags_expire);
PG_FUNCTION_INFO_V1(pvg_tags_erasable_in);
PG_FUNCTION_INFO_V1(pvg_tags_erase_in);
PG_FUNCTION_INFO_V1(pvg_tags_expired_in);
PG_FUNCTION_INFO_V1(pvg_tags_expire_in);

/* the per-database digest key, read as the extension's owner */
static bytea *
pvg_tag_read_secret(MemoryContext cxt)
{
	Oid			save_userid;
	int			save_sec;
	bytea	   *result = NULL;

	pvg_as_extension_owner_begin(&save_userid, &save_sec);
	if (pvg_spi_read("SELECT key FROM privacy_guard.secret") == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			result = DatumGetByteaPCopy(d);
			MemoryContextSwitchTo(old);
		}
	}
	pvg_as_extension_owner_end(save_userid, save_sec);
	return result;
}

/*
 * Error unless argument argno is the database's digest key, which only the
 * erasure engine and subject_report() hold: the matchers below run as a
 * table's owner, who must not learn whose a withheld value is.  The key is
 * read once per call site (kept in *cached) and compared in constant time.
 */
static void
pvg_tag_check_key(FunctionCallInfo fcinfo, int argno, bytea **cached)
{
	bytea	   *secret;
	bytea	   *given;
	int			i;
	int			len;
	unsigned char diff = 0;

	secret = *cached;
	if (secret == NULL)
	{
		secret = pvg_tag_read_secret(fcinfo->flinfo->fn_mcxt);
		*cached = secret;
	}
	given = PG_ARGISNULL(argno) ? NULL : PG_GETARG_BYTEA_PP(argno);
	len = given ? VARSIZE_ANY_EXHDR(given) : -1;
	if (secret == NULL || given == NULL || len != VARSIZE_ANY_EXHDR(secret))
		diff = 1;
	else
	{
		for (i = 0; i < len; i++)
			diff |= ((unsigned char *) VARDATA_ANY(given))[i] ^ ((unsigned char *) VARDATA_ANY(secret))[i];
	}
	if (diff != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only privacy_guard itself may match tagged values by subject")));
}

/* pvg_tag_check_key with the key kept in the call site's fn_extra */
static void
pvg_tag_require_key(FunctionCallInfo fcinfo, int argno)
{
	pvg_tag_check_key(fcinfo, argno, (bytea **) &fcinfo->flinfo->fn_extra);
}

/* Whether the tag names exactly this subject key (bytes, as stored). */
static bool
pvg_tag_names_subject(const PvgTag *tag, text *subject)
{
	return (tag->flags & PVG_TAG_F_SUBJECT) &&
		tag->subject_len == VARSIZE_ANY_EXHDR(subject) &&
		memcmp(tag->subject, VARDATA_ANY(subject), tag->subject_len) == 0;
}

/*
 * _tag_erasable(v, subject text, secret bytea) -> boolean
 *
 * Whether v's tag names this subject.  The erasure runs its UPDATE as the
 * table's owner, who must not learn whose a withheld value is: the function
 * answers only when given the database's digest key, which only the engine
 * holds, and errors otherwise.
 */
Datum
pvg_tag_erasable(PG_FUNCTION_ARGS)
{
	PvgTag		tag;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_BOOL(false);
	pvg_tag_require_key(fcinfo, 2);
	pvg_tag_decode(PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0)), &tag);
	PG_RETURN_BOOL(pvg_tag_names_subject(&tag, PG_GETARG_TEXT_PP(1)));
}

/*
 * _tag_report_value(v, subject text, secret bytea) -> base
 *
 * The value for subject_report(), which reads as each table's owner and so
 * cannot use reveal() (the tagged-value rule binds the owner, and the
 * report must not depend on the caller's purpose).  Returns the base value
 * when v's tag names this subject, names no subject (a value in a row that
 * is the subject's), or v still awaits its default tag; NULL when the tag
 * names someone else.  Like _tag_erasable it answers only with the digest key,
 * so it gives no role a way around the tagged-value rule.
 */
Datum
pvg_tag_report_value(PG_FUNCTION_ARGS)
{
	PvgTag		tag;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	pvg_tag_require_key(fcinfo, 2);
	pvg_tag_decode(PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0)), &tag);
	if ((tag.flags & PVG_TAG_F_SUBJECT) && !pvg_tag_names_subject(&tag, PG_GETARG_TEXT_PP(1)))
		PG_RETURN_NULL();
	return pvg_tag_base_value(&tag);
}

/*
 * The erasure's tests over tagged values held in a column's value: in an
 * array of a tagged type (or of a domain over one), and inside composite
 * values and arrays of arrays at any depth.  The forget test is whether a
 * tag names the subject (answered only with the digest key, as for a
 * single value); the expiry test whether a retain-until has passed.  The
 * erasing forms return the value with the matching tagged values set to
 * NULL, rebuilt around them: arrays keep their dimensions and bounds,
 * composites their other attributes.
 */
typedef struct PvgTagsTest
{
	text	   *subject;		/* the forget test; NULL: the expiry test */
	TimestampTz at;				/* the expiry test: retain-until <= at */
} PvgTagsTest;

static bool
pvg_tags_match(Datum elem, const PvgTagsTest *test)
{
	PvgTag		tag;

	pvg_tag_decode(PG_DETOAST_DATUM_PACKED(elem), &tag);
	if (test->subject != NULL)
		return pvg_tag_names_subject(&tag, test->subject);
	return (tag.flags & PVG_TAG_F_RETAIN) && tag.retain_until <= test->at;
}

/*
 * What a walk needs to know of each type it meets, looked up once per call
 * site (the erasure calls the function for every row of a column).
 */
typedef enum PvgTypeKind
{
	PVG_TK_TAGGED,				/* a tagged type, or a domain over one */
	PVG_TK_ARRAY,				/* an array (or a domain over one) */
	PVG_TK_ROW,					/* a composite type (or a domain over one) */
	PVG_TK_OTHER				/* nothing that can hold tagged values */
} PvgTypeKind;

typedef struct PvgTypeInfo
{
	Oid			typid;
	PvgTypeKind kind;
	Oid			elemtype;		/* PVG_TK_ARRAY: the element type, and how it is stored */
	int16		elemlen;
	bool		elembyval;
	char		elemalign;
} PvgTypeInfo;

#define PVG_TAGS_TYPES 32

/* a call site's memory: the digest key and the types met */
typedef struct PvgTagsCache
{
	bytea	   *secret;			/* see pvg_tag_check_key */
	Oid			nsp;
	bool		checked;		/* the _tags_* forms: the argument's type checked */
	int			ntypes;
	PvgTypeInfo types[PVG_TAGS_TYPES];
	PvgTypeInfo spill;			/* a type met once the array is full */
} PvgTagsCache;

static const PvgTypeInfo *
pvg_tags_type(PvgTagsCache *cache, Oid typid)
{
	PvgTypeInfo *t;
	Oid			base;

	for (int i = 0; i < cache->ntypes; i++)
	{
		if (cache->types[i].typid == typid)
			return &cache->types[i];
	}
	t = cache->ntypes < PVG_TAGS_TYPES ? &cache->types[cache->ntypes++] : &cache->spill;
	memset(t, 0, sizeof(PvgTypeInfo));
	t->typid = typid;
	base = getBaseType(typid);
	t->elemtype = get_element_type(base);
	if (pvg_type_is_tagged(base, cache->nsp))
		t->kind = PVG_TK_TAGGED;
	else if (OidIsValid(t->elemtype))
	{
		t->kind = PVG_TK_ARRAY;
		get_typlenbyvalalign(t->elemtype, &t->elemlen, &t->elembyval, &t->elemalign);
	}
	else if (type_is_rowtype(base))
		t->kind = PVG_TK_ROW;
	else
		t->kind = PVG_TK_OTHER;
	return t;
}

/*
 * Walk a value of type typid for tagged values (in attributes, in arrays,
 * in composites within composites).  With erase, the ones that match test
 * are set to NULL and the value is rebuilt around them; without, the walk
 * stops at the first match.  *any says whether one matched; *isnull is set
 * when the value itself is a tagged value to be erased.
 */
static Datum
pvg_tags_walk(Datum d, Oid typid, PvgTagsCache *cache, const PvgTagsTest *test, bool erase,
			  bool *any, bool *isnull)
{
	const PvgTypeInfo *t = pvg_tags_type(cache, typid);

	check_stack_depth();
	*isnull = false;
	if (t->kind == PVG_TK_TAGGED)
	{
		if (pvg_tags_match(d, test))
		{
			*any = true;
			*isnull = erase;
		}
		return d;
	}
	if (t->kind == PVG_TK_ARRAY)
	{
		ArrayType  *arr = DatumGetArrayTypeP(d);
		Oid			elemtype = t->elemtype;
		int16		elemlen = t->elemlen;
		bool		elembyval = t->elembyval;
		char		elemalign = t->elemalign;
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		bool		changed = false;

		/* t may be the spill entry, which the walk below reuses */
		deconstruct_array(arr, elemtype, elemlen, elembyval, elemalign, &elems, &nulls, &n);
		for (int i = 0; i < n && (erase || !*any); i++)
		{
			bool		sub = false;
			bool		gone;

			if (nulls[i])
				continue;
			elems[i] = pvg_tags_walk(elems[i], elemtype, cache, test, erase, &sub, &gone);
			nulls[i] = gone;
			if (sub)
				*any = changed = true;
		}
		if (!erase || !changed)
			return d;
		return PointerGetDatum(construct_md_array(elems, nulls, ARR_NDIM(arr), ARR_DIMS(arr),
												  ARR_LBOUND(arr), elemtype, elemlen, elembyval, elemalign));
	}
	if (t->kind == PVG_TK_ROW)
	{
		HeapTupleHeader th = DatumGetHeapTupleHeader(d);
		TupleDesc	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(th),
												  HeapTupleHeaderGetTypMod(th));
		HeapTupleData tuple;
		Datum	   *values = palloc(sizeof(Datum) * Max(desc->natts, 1));
		bool	   *nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
		bool		changed = false;
		Datum		result = d;

		tuple.t_len = HeapTupleHeaderGetDatumLength(th);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuple.t_data = th;
		heap_deform_tuple(&tuple, desc, values, nulls);
		for (int i = 0; i < desc->natts && (erase || !*any); i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			bool		sub = false;
			bool		gone;

			if (att->attisdropped || nulls[i])
				continue;
			values[i] = pvg_tags_walk(values[i], att->atttypid, cache, test, erase, &sub, &gone);
			nulls[i] = gone;
			if (sub)
				*any = changed = true;
		}
		if (erase && changed)
			result = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
		ReleaseTupleDesc(desc);
		return result;
	}
	return d;
}

/*
 * The SQL entry points: (v, subject text, secret bytea) for the forget
 * test, (v, at timestamptz) for the expiry test; erase says whether the
 * value is returned rebuilt or only whether a tagged value matched.  The
 * _tags_* forms take arrays of tagged values only (the columns the round
 * calls them for), checked once per call site; the _tags_*_in forms any
 * value.
 */
static Datum
pvg_tags_entry(FunctionCallInfo fcinfo, bool by_subject, bool erase, bool arrays_only)
{
	PvgTagsTest test = {0};
	Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	PvgTagsCache *cache = (PvgTagsCache *) fcinfo->flinfo->fn_extra;
	bool		any = false;
	bool		gone;
	Datum		result;

	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(PvgTagsCache));
		cache->nsp = get_namespace_oid("privacy_guard", false);
		fcinfo->flinfo->fn_extra = cache;
	}
	if (by_subject)
	{
		if (PG_ARGISNULL(0))
		{
			if (erase)
				PG_RETURN_NULL();
			PG_RETURN_BOOL(false);
		}
		if (PG_ARGISNULL(1))
		{
			if (erase)
				PG_RETURN_DATUM(PG_GETARG_DATUM(0));
			PG_RETURN_BOOL(false);
		}
		pvg_tag_check_key(fcinfo, 2, &cache->secret);
		test.subject = PG_GETARG_TEXT_PP(1);
	}
	else
		test.at = PG_GETARG_TIMESTAMPTZ(1);	/* STRICT */
	if (arrays_only && !cache->checked)
	{
		const PvgTypeInfo *t = pvg_tags_type(cache, argtype);
		const PvgTypeInfo *e = t->kind == PVG_TK_ARRAY ? pvg_tags_type(cache, t->elemtype) : NULL;

		if (e == NULL || e->kind != PVG_TK_TAGGED)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("array elements must be of a tagged type, not %s",
							format_type_be(e != NULL ? e->typid : argtype))));
		cache->checked = true;
	}
	result = pvg_tags_walk(PG_GETARG_DATUM(0), argtype, cache, &test, erase, &any, &gone);
	if (!erase)
		PG_RETURN_BOOL(any);
	if (gone)
		PG_RETURN_NULL();
	return result;
}

/* _tags_erasable(arr anyarray, subject text, secret bytea) -> boolean: an element's tag names the subject */
Datum
pvg_tags_erasable(PG_FUNCTION_ARGS)
{
	return pvg_tags_entry(fcinfo, true, false, true);
}

/* _tags_erase(arr anyarray, subject text, secret bytea) -> anyarray: the subject's elements set to NULL */
Datum
pvg_tags_erase(PG_FUNCTION_ARGS)
{
	return pvg_tags_entry(fcinfo, true, true, true);
}

/* _tags_expired(arr anyarray, at timestamptz) -> boolean: an element's retain-until has passed at `at` */
Datum
pvg_tags_expired(PG_FUNCTION_ARGS)
{
	return pvg_tags_entry(fcinfo, false, false, true);
}

/* _tags_expire(arr anyarray, at timestamptz) -> anyarray: elements past their retain-until set to NULL */
Datum
pvg_tags_expire(PG_FUNCTION_ARGS)
{
	return pvg_tags_entry(fcinfo, false, true, true);
}

/* _tags_erasable_in(v anyelement, subject text, secret bytea) -> boolean: a tagged value inside names the subject */
Datum
pvg_tags_erasable_in(PG_FUNCTION_ARGS)
{
	return pvg_tags_entry(fcinfo, true, false, false);
}

/* _tags_erase_in(v anyelement, subject text, secret bytea) -> anyelement: the subject's tagged values inside set to NULL */
Datum
pvg_tags_erase_in(PG_FUNCTION_ARGS)
{
	return pvg_tags_entry(fcinfo, true, true, false);
}

/* _tags_expired_in(v anyelement, at timestamptz) -> boolean: a tagged value inside is past its retain-until */
Datum
pvg_tags_expired_in(PG_FUNCTION_ARGS)
{
	return pvg_tags_entry(fcinfo, false, false, false);
}

/* _tags_expire_in(v anyelement, at timestamptz) -> anyelement: tagged values inside past their retain-until set to NULL */
Datum
pvg_tags_expire_in(PG_FUNCTION_ARGS)
{
	return pvg_tags_entry(fcinfo, false, true, false);
}
