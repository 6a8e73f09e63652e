/*-------------------------------------------------------------------------
 *
 * tagged_ops.c
 *	  Rule 3.4 for tagged values, and everything that reads one: reveal(),
 *	  the tag's public parts, tag(), comparison operators, length and LIKE,
 *	  the default-tag trigger, and the keyed matchers of the erasure and of
 *	  subject_report().
 *
 * A value is visible (pvg_tag_visible) to superusers and BYPASSRLS roles;
 * to others only under a declared purpose P that is known, for which the
 * role is authorised (P or an ancestor), that is within one of the tag's
 * purposes (P or an ancestor of P is among them), before the tag's
 * retain-until, and, when the tag names a subject, while that subject's
 * state allows P (rules 5 and 7: the purpose's subject set from the consent
 * store, the same one the table policies probe).  A value still awaiting
 * its default tag is a plain value and visible to all.
 *
 * Everything that depends only on the session (role, purpose, registry,
 * subject set) is worked out once per statement and kept in fn_extra; per
 * value the check is a few comparisons and at most one hash probe.
 * Nothing here errors about purposes: a value that may not be seen is
 * NULL to every function and operator (the output functions in
 * tagged_io.c are the exception, by design).
 *
 * There is deliberately no btree or hash operator class: an index or a sort
 * order would have to be the same for every session, so it would order
 * withheld values by their content.  Sorting, grouping and DISTINCT go
 * through reveal(), which gives NULL for withheld values.
 *
 *-------------------------------------------------------------------------
 */
#include "tagged.h"
#include "subject_set.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
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
PG_FUNCTION_INFO_V1(pvg_tag_default_trigger);

#define PVG_MAX_CHAIN 64

/* what one statement's checks need, kept in fn_extra */
typedef struct PvgTagCheck
{
	LocalTransactionId lxid;
	TimestampTz stmt_now;		/* statement start: consent expiry, forget due */
	Oid			userid;
	char		purpose_name[NAMEDATALEN * 4];
	uint64		reg_generation;

	bool		bypass;			/* superuser or BYPASSRLS */
	bool		usable;			/* a known purpose the role is authorised for */
	int			purpose;		/* registry index */
	int			nchain;
	int32		chain_ids[PVG_MAX_CHAIN];	/* ids of the purpose and its ancestors */
	PvgRegistry *reg;			/* the registry purpose indexes refer to */
	PvgSubjectSet *set;			/* the purpose's subjects, fetched when first needed */
	PvgSubjectSet *intset;		/* the same for keys that are integers' text form */
	TimestampTz now;			/* retain-until: transaction start, as now() */
} PvgTagCheck;

static bool
pvg_tag_check_current(PvgTagCheck *chk, PvgRegistry **reg_out)
{
	const char *p = pvg_purpose ? pvg_purpose : "";

	if (chk->lxid != MyProc->lxid ||
		chk->stmt_now != GetCurrentStatementStartTimestamp() ||
		chk->userid != GetUserId() ||
		strcmp(chk->purpose_name, p) != 0)
		return false;
	*reg_out = pvg_registry();
	return (*reg_out)->generation == chk->reg_generation;
}

static void
pvg_tag_check_setup(PvgTagCheck *chk)
{
	PvgRegistry *reg;
	int			i;
	int			p;
	Oid			userid = GetUserId();
	const char *name = pvg_purpose ? pvg_purpose : "";

	/* a purpose privacy_guard.purpose_scope refuses counts as none */
	if (pvg_purpose_refused())
		name = "";

	/* lxid is set last: a setup cut short by an error is never current */
	memset(chk, 0, sizeof(PvgTagCheck));
	chk->lxid = InvalidLocalTransactionId;
	chk->stmt_now = GetCurrentStatementStartTimestamp();
	chk->now = GetCurrentTransactionStartTimestamp();
	chk->userid = userid;
	strlcpy(chk->purpose_name, name, sizeof(chk->purpose_name));
	chk->bypass = superuser_arg(userid) || has_bypassrls_privilege(userid);

	pvg_cache_accept();
	reg = pvg_registry();
	chk->reg = reg;
	chk->reg_generation = reg->generation;
	chk->purpose = -1;
	if (!chk->bypass && strlen(name) < sizeof(chk->purpose_name))
		chk->purpose = pvg_registry_purpose(reg, name);
	if (chk->purpose >= 0)
	{
		for (i = 0; i < reg->nauth && !chk->usable; i++)
		{
			if (pvg_purpose_authorised(reg, chk->purpose, reg->auth[i].purpose) &&
				has_privs_of_role(userid, reg->auth[i].roleid))
				chk->usable = true;
		}
		for (p = chk->purpose; p >= 0 && chk->nchain < PVG_MAX_CHAIN; p = reg->purposes[p].parent)
			chk->chain_ids[chk->nchain++] = reg->purposes[p].id;
	}
	chk->lxid = MyProc->lxid;
}

/*
 * Rule 3.4: whether the session may see the value.  Never errors about
 * purposes; uses fcinfo->flinfo->fn_extra when there is one.
 */
bool
pvg_tag_visible(FunctionCallInfo fcinfo, const PvgTag *tag)
{
	PvgTagCheck local;
	PvgTagCheck *chk;
	PvgRegistry *reg;
	int			i;
	int			j;
	bool		match = false;

	if (tag->flags & PVG_TAG_F_DEFAULT)
		return true;

	if (fcinfo != NULL && fcinfo->flinfo != NULL)
	{
		chk = (PvgTagCheck *) fcinfo->flinfo->fn_extra;
		if (chk == NULL)
		{
			chk = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(PvgTagCheck));
			fcinfo->flinfo->fn_extra = chk;
			pvg_tag_check_setup(chk);
		}
		else if (!pvg_tag_check_current(chk, &reg))
			pvg_tag_check_setup(chk);
	}
	else
	{
		chk = &local;
		pvg_tag_check_setup(chk);
	}

	if (chk->bypass)
		return true;
	if (!chk->usable)
		return false;
	for (i = 0; i < tag->npurposes && !match; i++)
	{
		for (j = 0; j < chk->nchain && !match; j++)
			match = tag->purposes[i] == chk->chain_ids[j];
	}
	if (!match)
		return false;
	if ((tag->flags & PVG_TAG_F_RETAIN) && !(chk->now < tag->retain_until))
		return false;
	if (tag->flags & PVG_TAG_F_SUBJECT)
	{
		int64		key;

		/*
		 * A key that is an integer's text form is probed in the integer set
		 * (dense keys are a bitmap there), the others in the text set: both
		 * are built from the same consent store.
		 */
		if (pvg_parse_canonical_int(tag->subject, tag->subject_len, &key))
		{
			if (chk->intset == NULL)
				chk->intset = pvg_subject_set(chk->reg, chk->purpose, PVG_KEY_INT);
			if (!pvg_set_allows_int(chk->intset, key, chk->stmt_now))
				return false;
		}
		else
		{
			if (chk->set == NULL)
				chk->set = pvg_subject_set(chk->reg, chk->purpose, PVG_KEY_TEXT);
			if (!pvg_set_allows_text(chk->set, tag->subject, tag->subject_len, chk->stmt_now))
				return false;
		}

		/*
		 * A copy of a value erased while this session was open (its
		 * temporary tables, WITH HOLD cursors): the request that erased it
		 * is done and its key gone, but its digest still names the subject.
		 */
		return !pvg_subject_forgotten_here(tag->subject, tag->subject_len);
	}
	return true;
}

/* Decode argument n and say whether it may be seen. */
static bool
pvg_tag_arg(FunctionCallInfo fcinfo, int n, PvgTag *tag)
{
	pvg_tag_decode(PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(n)), tag);
	return pvg_tag_visible(fcinfo, tag);
}

/* reveal(v) -> base: the value if rule 3.4 allows, else NULL */
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

/* the per-database digest key, read as the extension's owner */
static bytea *
pvg_tag_read_secret(MemoryContext cxt)
{
	Oid			save_userid;
	int			save_sec;
	bytea	   *result = NULL;

	pvg_spi_as_owner_begin(&save_userid, &save_sec);
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
	pvg_spi_as_owner_end(save_userid, save_sec);
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
 * cannot use reveal() (rule 3.4 binds the owner, and the report must not
 * depend on the caller's purpose).  Returns the base value when v's tag
 * names this subject, names no subject (a value in a row that is the
 * subject's), or v still awaits its default tag; NULL when the tag names
 * someone else.  Like _tag_erasable it answers only with the digest key,
 * so it gives no role a way around rule 3.4.
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
