/*-------------------------------------------------------------------------
 *
 * tagged_io.c
 *	  The consent-tagged types' on-disk format and their text and binary
 *	  input and output.
 *
 * One implementation serves the four types; the per-type entry points only
 * say which base type they wrap (see tagged.h for the format).
 *
 * Text form.  A tagged value is written
 *		tagged:{"value": "...", "purposes": {"billing": 3}, "subject": "42",
 *				"retain_until": "2030-01-01 00:00:00+00"}
 * where purposes maps each purpose's name to its id (privacy_guard.purpose.id);
 * on input purposes may also be a plain array of names.  The id and the name
 * are checked against each other when the purpose is known, so a value can
 * never silently change purpose, and an id alone is accepted while the
 * registry does not know it (a restore may load a table before the
 * registry).  A purpose dropped since the value was tagged is written
 * "#<id>".  Any other text is a plain value: it is read by the base type's
 * input function and takes its column's default tag (tagged.h).
 *
 * Binary form (network byte order): version byte, flags byte, int16 number
 * of purposes, per purpose int32 id and int32-counted name, int64
 * retain-until if flagged, int32-counted subject if flagged, int32-counted
 * base value in the base type's binary form.
 *
 * Input is validated strictly: every length is checked against what is
 * left before it is read, and anything malformed is an error with SQLSTATE
 * 22P02 (malformed), 22023 (an unknown or mismatched purpose) or 54000
 * (too many purposes, too long a subject).  The base type's own input
 * errors are re-raised as 22P02 with a generic message, because theirs
 * quote the input, and error messages never carry data.
 *
 * Output (text and binary) gives the tag and the value only when the
 * session may see the value (the tagged-value rule, pvg_tag_visible); a
 * withheld value is
 * an error, 42501, so that a dump by a role the rules bind fails instead of
 * writing withheld values.  reveal() is the NULL-returning way to read.
 *
 *-------------------------------------------------------------------------
 */
#include "tagged.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgrprotos.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/syscache.h"

#define PVG_TAG_PREFIX "tagged:"
#define PVG_TAG_PREFIX_LEN 7
#define PVG_TAG_MAX_NAME 1024

PG_FUNCTION_INFO_V1(pvg_tagged_text_in);
PG_FUNCTION_INFO_V1(pvg_tagged_date_in);
PG_FUNCTION_INFO_V1(pvg_tagged_numeric_in);
PG_FUNCTION_INFO_V1(pvg_tagged_jsonb_in);
PG_FUNCTION_INFO_V1(pvg_tagged_text_recv);
PG_FUNCTION_INFO_V1(pvg_tagged_date_recv);
PG_FUNCTION_INFO_V1(pvg_tagged_numeric_recv);
PG_FUNCTION_INFO_V1(pvg_tagged_jsonb_recv);
PG_FUNCTION_INFO_V1(pvg_tagged_out);
PG_FUNCTION_INFO_V1(pvg_tagged_send);
PG_FUNCTION_INFO_V1(pvg_tagged_typanalyze);

static void
pvg_tag_corrupt(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("corrupt tagged value")));
}

/* Read an unsigned LEB128 varint of at most 5 bytes; -1 if malformed. */
static int64
pvg_varint_read(const unsigned char **p, const unsigned char *end)
{
	uint64		v = 0;
	int			shift = 0;

	while (*p < end && shift <= 28)
	{
		unsigned char b = **p;

		(*p)++;
		v |= (uint64) (b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return v > PG_INT32_MAX ? -1 : (int64) v;
		shift += 7;
	}
	return -1;
}

static void
pvg_varint_write(StringInfo buf, uint32 v)
{
	do
	{
		unsigned char b = v & 0x7f;

		v >>= 7;
		if (v != 0)
			b |= 0x80;
		appendStringInfoChar(buf, (char) b);
	} while (v != 0);
}

/*
 * Decode a stored value; the pointers in tag point into v, which must stay
 * detoasted while they are used.  Errors (XX001) on anything inconsistent.
 */
void
pvg_tag_decode(struct varlena *v, PvgTag *tag)
{
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(v);
	const unsigned char *end = p + VARSIZE_ANY_EXHDR(v);
	int			i;

	if (end - p < 3 + PVG_TAG_SALT_LEN || p[0] != PVG_TAG_VERSION)
		pvg_tag_corrupt();
	tag->flags = p[1] & 0x0f;
	tag->kind = (PvgTagKind) (p[1] >> 4);
	tag->npurposes = p[2];
	p += 3 + PVG_TAG_SALT_LEN;
	if ((tag->flags & ~PVG_TAG_F_ALL) != 0 ||
		tag->kind < PVG_KIND_TEXT || tag->kind > PVG_KIND_JSONB ||
		tag->npurposes > PVG_TAG_MAX_PURPOSES)
		pvg_tag_corrupt();
	for (i = 0; i < tag->npurposes; i++)
	{
		int64		id = pvg_varint_read(&p, end);

		if (id <= 0 || (i > 0 && id <= tag->purposes[i - 1]))
			pvg_tag_corrupt();
		tag->purposes[i] = (int32) id;
	}
	tag->retain_until = 0;
	if (tag->flags & PVG_TAG_F_RETAIN)
	{
		if (end - p < (int) sizeof(TimestampTz))
			pvg_tag_corrupt();
		memcpy(&tag->retain_until, p, sizeof(TimestampTz));
		p += sizeof(TimestampTz);
	}
	tag->subject = NULL;
	tag->subject_len = 0;
	if (tag->flags & PVG_TAG_F_SUBJECT)
	{
		int64		len = pvg_varint_read(&p, end);

		if (len <= 0 || len > PVG_TAG_MAX_SUBJECT || end - p < len)
			pvg_tag_corrupt();
		tag->subject = (const char *) p;
		tag->subject_len = (int) len;
		p += len;
	}
	if ((tag->flags & PVG_TAG_F_DEFAULT) &&
		(tag->flags != PVG_TAG_F_DEFAULT || tag->npurposes != 0))
		pvg_tag_corrupt();
	tag->payload = (const char *) p;
	tag->payload_len = (int) (end - p);
	if (tag->kind == PVG_KIND_DATE && tag->payload_len != sizeof(DateADT))
		pvg_tag_corrupt();
	if ((tag->kind == PVG_KIND_NUMERIC || tag->kind == PVG_KIND_JSONB) &&
		tag->payload_len == 0)
		pvg_tag_corrupt();
}

/*
 * Copy the next PVG_TAG_SALT_LEN bytes of this process's pool of strong
 * random bytes to salt, refilling the pool from pg_strong_random() when it
 * runs out (one call per 512 salts: a call costs microseconds) or when the
 * process is not the one that filled it (a forked child must never reuse
 * its parent's bytes).  Errors if no random bytes can be had.
 */
static void
pvg_tag_salt(char *salt)
{
	static char pool[PVG_TAG_SALT_LEN * 512];
	static int	pos = sizeof(pool);
	static int	pool_pid = 0;

	if (pos + PVG_TAG_SALT_LEN > (int) sizeof(pool) || pool_pid != MyProcPid)
	{
		if (!pg_strong_random(pool, sizeof(pool)))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random bytes for a tagged value")));
		pos = 0;
		pool_pid = MyProcPid;
	}
	memcpy(salt, pool + pos, PVG_TAG_SALT_LEN);
	pos += PVG_TAG_SALT_LEN;
}

/*
 * Build the stored form of a tag and its payload, with a fresh random salt
 * (see tagged.h: it keeps byte-wise comparisons from telling anything about
 * the value).
 */
struct varlena *
pvg_tag_encode(const PvgTag *tag)
{
	StringInfoData buf;
	char		salt[PVG_TAG_SALT_LEN];
	int			i;

	Assert(tag->npurposes <= PVG_TAG_MAX_PURPOSES);
	pvg_tag_salt(salt);
	initStringInfo(&buf);
	appendStringInfoSpaces(&buf, VARHDRSZ);
	appendStringInfoChar(&buf, PVG_TAG_VERSION);
	appendStringInfoChar(&buf, (char) (tag->flags | (tag->kind << 4)));
	appendStringInfoChar(&buf, (char) tag->npurposes);
	appendBinaryStringInfo(&buf, salt, sizeof(salt));
	for (i = 0; i < tag->npurposes; i++)
		pvg_varint_write(&buf, (uint32) tag->purposes[i]);
	if (tag->flags & PVG_TAG_F_RETAIN)
		appendBinaryStringInfo(&buf, (const char *) &tag->retain_until, sizeof(TimestampTz));
	if (tag->flags & PVG_TAG_F_SUBJECT)
	{
		pvg_varint_write(&buf, (uint32) tag->subject_len);
		appendBinaryStringInfo(&buf, tag->subject, tag->subject_len);
	}
	appendBinaryStringInfo(&buf, tag->payload, tag->payload_len);
	SET_VARSIZE(buf.data, buf.len);
	return (struct varlena *) buf.data;
}

/* The base value a tag wraps, as a datum of the base type (freshly allocated). */
Datum
pvg_tag_base_value(const PvgTag *tag)
{
	if (tag->kind == PVG_KIND_DATE)
	{
		DateADT		d;

		memcpy(&d, tag->payload, sizeof(DateADT));
		return DateADTGetDatum(d);
	}
	else
	{
		struct varlena *v = palloc(VARHDRSZ + tag->payload_len);

		SET_VARSIZE(v, VARHDRSZ + tag->payload_len);
		memcpy(VARDATA(v), tag->payload, tag->payload_len);
		return PointerGetDatum(v);
	}
}

/* Point the tag's payload at a base value's bytes (valid while value is). */
void
pvg_tag_set_value(PvgTag *tag, PvgTagKind kind, Datum value)
{
	tag->kind = kind;
	if (kind == PVG_KIND_DATE)
	{
		DateADT    *d = palloc(sizeof(DateADT));

		*d = DatumGetDateADT(value);
		tag->payload = (const char *) d;
		tag->payload_len = sizeof(DateADT);
	}
	else
	{
		struct varlena *v = PG_DETOAST_DATUM_PACKED(value);

		tag->payload = VARDATA_ANY(v);
		tag->payload_len = VARSIZE_ANY_EXHDR(v);
	}
}

Oid
pvg_tag_base_type(PvgTagKind kind)
{
	switch (kind)
	{
		case PVG_KIND_TEXT:
			return TEXTOID;
		case PVG_KIND_DATE:
			return DATEOID;
		case PVG_KIND_NUMERIC:
			return NUMERICOID;
		case PVG_KIND_JSONB:
			return JSONBOID;
	}
	elog(ERROR, "unknown tagged kind %d", (int) kind);
	return InvalidOid;
}

/* Whether typid is one of the tagged types (nsp: privacy_guard's schema). */
bool
pvg_type_is_tagged(Oid typid, Oid nsp)
{
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	Form_pg_type typ;
	bool		result;

	if (!HeapTupleIsValid(tup))
		return false;
	typ = (Form_pg_type) GETSTRUCT(tup);
	result = typ->typnamespace == nsp &&
		(strcmp(NameStr(typ->typname), "tagged_text") == 0 ||
		 strcmp(NameStr(typ->typname), "tagged_date") == 0 ||
		 strcmp(NameStr(typ->typname), "tagged_numeric") == 0 ||
		 strcmp(NameStr(typ->typname), "tagged_jsonb") == 0);
	ReleaseSysCache(tup);
	return result;
}

/* Index of the purpose with this id in the registry, or -1. */
int
pvg_registry_purpose_by_id(PvgRegistry *reg, int32 id)
{
	int			i;

	for (i = 0; i < reg->npurposes; i++)
	{
		if (reg->purposes[i].id == id)
			return i;
	}
	return -1;
}

/*
 * The id to store for a purpose named on input.  id < 0: the name alone,
 * which must be defined.  Otherwise id and name (a purpose name, or "#id"
 * for a purpose dropped where the value came from) must agree with the
 * registry as far as it knows either.
 */
int32
pvg_tag_resolve_purpose(PvgRegistry *reg, const char *name, int64 id)
{
	int			idx;

	if (id < 0)
	{
		idx = pvg_registry_purpose(reg, name);
		if (idx < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown privacy_guard purpose \"%s\"", name),
					 errhint("See privacy_guard.purposes for the defined purposes.")));
		return reg->purposes[idx].id;
	}
	if (id < 1 || id > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid purpose id in tagged value")));
	idx = pvg_registry_purpose_by_id(reg, (int32) id);
	if (name[0] == '#')
	{
		char		expect[16];

		snprintf(expect, sizeof(expect), "#" INT64_FORMAT, id);
		if (strcmp(name, expect) != 0 || idx >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("purpose %s of a tagged value does not match the registry", name),
					 errdetail("A tag names a dropped purpose by \"#\" and its id; this database defines a purpose with that id.")));
		return (int32) id;
	}
	/*
	 * An (id, name) pair the registry knows neither of is accepted: a
	 * restore may bring a table's data before privacy_guard's own tables
	 * (test/t/009_tagged_dump.pl), which then bring that purpose with that
	 * id.
	 */
	if ((idx >= 0 && strcmp(reg->purposes[idx].name, name) != 0) ||
		(idx < 0 && pvg_registry_purpose(reg, name) >= 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("purpose \"%s\" of a tagged value has id " INT64_FORMAT ", which does not match the registry",
						name, id),
				 errdetail("Purpose ids travel with the registry: restore privacy_guard's tables with the data.")));
	return (int32) id;
}

static int
pvg_int32_cmp(const void *a, const void *b)
{
	int32		x = *(const int32 *) a;
	int32		y = *(const int32 *) b;

	return (x > y) - (x < y);
}

/* Sort the tag's purposes and drop duplicates (the stored form is canonical). */
void
pvg_tag_sort_purposes(PvgTag *tag)
{
	int			i;
	int			n = 0;

	qsort(tag->purposes, tag->npurposes, sizeof(int32), pvg_int32_cmp);
	for (i = 0; i < tag->npurposes; i++)
	{
		if (n == 0 || tag->purposes[i] != tag->purposes[n - 1])
			tag->purposes[n++] = tag->purposes[i];
	}
	tag->npurposes = n;
}

/* A subject key: 1..1024 bytes of valid text without NUL; never echoed. */
void
pvg_tag_check_subject(const char *s, int len)
{
	if (len <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("subject must not be null or empty")));
	if (len > PVG_TAG_MAX_SUBJECT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("subject key is longer than %d bytes", PVG_TAG_MAX_SUBJECT)));
	if (memchr(s, '\0', len) != NULL || !pg_verifymbstr(s, len, true))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("subject key is not valid text")));
}

static void
pvg_tag_add_purpose(PvgTag *tag, int32 id)
{
	if (tag->npurposes >= PVG_TAG_MAX_PURPOSES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a tag holds at most %d purposes", PVG_TAG_MAX_PURPOSES)));
	tag->purposes[tag->npurposes++] = id;
}

static void
pvg_tag_malformed(const char *typname, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input for type %s", typname),
			 errdetail("%s", detail)));
}

/*
 * Call a base type's input or receive function (or jsonb_in); its data
 * errors are re-raised as 22P02 (or 54000) without their message, which
 * may quote the input, and so are a receive function's internal errors
 * (jsonb_recv reports an unknown version with elog).  Other errors
 * (cancel, out of memory) pass through.
 */
static Datum
pvg_call_base(FmgrInfo *flinfo, const char *typname, char *str, StringInfo bin,
			  Oid typioparam)
{
	MemoryContext cxt = CurrentMemoryContext;
	Datum		result = (Datum) 0;

	PG_TRY();
	{
		if (bin != NULL)
			result = ReceiveFunctionCall(flinfo, bin, typioparam, -1);
		else
			result = InputFunctionCall(flinfo, str, typioparam, -1);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			category;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		category = ERRCODE_TO_CATEGORY(edata->sqlerrcode);
		/* base receive functions report some malformed input with elog (XX000) */
		if (category != ERRCODE_DATA_EXCEPTION &&
			category != ERRCODE_PROGRAM_LIMIT_EXCEEDED &&
			edata->sqlerrcode != ERRCODE_PROTOCOL_VIOLATION &&
			!(bin != NULL && edata->sqlerrcode == ERRCODE_INTERNAL_ERROR))
			PG_RE_THROW();
		FlushErrorState();
		if (category == ERRCODE_PROGRAM_LIMIT_EXCEEDED)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("value too large for type %s", typname)));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input for type %s", typname),
				 errdetail("The value is not valid input for the base type.")));
	}
	PG_END_TRY();
	return result;
}

static Datum
pvg_base_input(PvgTagKind kind, const char *typname, char *str)
{
	Oid			base = pvg_tag_base_type(kind);
	Oid			infunc;
	Oid			ioparam;
	FmgrInfo	flinfo;

	getTypeInputInfo(base, &infunc, &ioparam);
	fmgr_info(infunc, &flinfo);
	return pvg_call_base(&flinfo, typname, str, NULL, ioparam);
}

/* the string of a JSON scalar, or a malformed-input error */
static char *
pvg_json_string(JsonbValue *v, const char *typname, const char *what)
{
	if (v->type != jbvString)
		pvg_tag_malformed(typname, what);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static const char *const pvg_tag_keys[] = {"value", "purposes", "subject", "retain_until", "default"};

/* Parse the JSON part of a tagged literal into tag (payload included). */
static void
pvg_tag_parse_literal(PvgTag *tag, PvgTagKind kind, const char *typname, char *json)
{
	FmgrInfo	flinfo;
	Jsonb	   *jb;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	bool		is_default = false;
	PvgRegistry *reg;

	fmgr_info(F_JSONB_IN, &flinfo);
	jb = DatumGetJsonbP(pvg_call_base(&flinfo, typname, json, NULL, JSONBOID));
	if (!JB_ROOT_IS_OBJECT(jb))
		pvg_tag_malformed(typname, "A tagged literal is a JSON object after \"tagged:\".");

	/* no key but the known ones */
	it = JsonbIteratorInit(&jb->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (r == WJB_KEY)
		{
			int			i;
			bool		known = false;

			for (i = 0; i < lengthof(pvg_tag_keys); i++)
				known |= (v.val.string.len == strlen(pvg_tag_keys[i]) &&
						  memcmp(v.val.string.val, pvg_tag_keys[i], v.val.string.len) == 0);
			if (!known)
				pvg_tag_malformed(typname, "A tagged literal has the keys value, purposes, subject, retain_until and default.");
		}
	}

	memset(tag, 0, sizeof(PvgTag));
	if (getKeyJsonValueFromContainer(&jb->root, "default", 7, &v) != NULL)
	{
		if (v.type != jbvBool || !v.val.boolean)
			pvg_tag_malformed(typname, "\"default\" can only be true.");
		is_default = true;
	}
	if (getKeyJsonValueFromContainer(&jb->root, "value", 5, &v) == NULL)
		pvg_tag_malformed(typname, "A tagged literal needs a \"value\".");
	pvg_tag_set_value(tag, kind,
					  pvg_base_input(kind, typname,
									 pvg_json_string(&v, typname, "\"value\" is a JSON string.")));
	if (is_default)
	{
		if (getKeyJsonValueFromContainer(&jb->root, "purposes", 8, &v) != NULL ||
			getKeyJsonValueFromContainer(&jb->root, "subject", 7, &v) != NULL ||
			getKeyJsonValueFromContainer(&jb->root, "retain_until", 12, &v) != NULL)
			pvg_tag_malformed(typname, "A value awaiting its default tag has no tag of its own.");
		tag->flags = PVG_TAG_F_DEFAULT;
		return;
	}

	if (getKeyJsonValueFromContainer(&jb->root, "subject", 7, &v) != NULL &&
		v.type != jbvNull)
	{
		char	   *s = pvg_json_string(&v, typname, "\"subject\" is a JSON string.");

		pvg_tag_check_subject(s, strlen(s));
		tag->subject = s;
		tag->subject_len = strlen(s);
		tag->flags |= PVG_TAG_F_SUBJECT;
	}
	if (getKeyJsonValueFromContainer(&jb->root, "retain_until", 12, &v) != NULL &&
		v.type != jbvNull)
	{
		char	   *s = pvg_json_string(&v, typname, "\"retain_until\" is a JSON string.");

		fmgr_info(F_TIMESTAMPTZ_IN, &flinfo);
		tag->retain_until = DatumGetTimestampTz(pvg_call_base(&flinfo, typname, s, NULL,
															  TIMESTAMPTZOID));
		tag->flags |= PVG_TAG_F_RETAIN;
	}

	if (getKeyJsonValueFromContainer(&jb->root, "purposes", 8, &v) == NULL ||
		v.type != jbvBinary)
		pvg_tag_malformed(typname, "A tagged literal needs \"purposes\": an object of names and ids, or an array of names.");
	reg = pvg_registry();
	if (JsonContainerIsArray(v.val.binary.data))
	{
		it = JsonbIteratorInit(v.val.binary.data);
		while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (r != WJB_ELEM)
				continue;
			pvg_tag_add_purpose(tag, pvg_tag_resolve_purpose(reg,
															 pvg_json_string(&v, typname, "A purpose is named by a JSON string."),
															 -1));
		}
	}
	else
	{
		char	   *name = NULL;

		it = JsonbIteratorInit(v.val.binary.data);
		while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (r == WJB_KEY)
			{
				if (v.val.string.len > PVG_TAG_MAX_NAME)
					pvg_tag_malformed(typname, "A purpose name is too long.");
				name = pnstrdup(v.val.string.val, v.val.string.len);
			}
			else if (r == WJB_VALUE)
			{
				char	   *digits;
				int			i;
				int			n;

				if (v.type != jbvNumeric)
					pvg_tag_malformed(typname, "A purpose id is a JSON number.");
				digits = DatumGetCString(DirectFunctionCall1(numeric_out,
															 NumericGetDatum(v.val.numeric)));
				n = strlen(digits);
				for (i = 0; i < n; i++)
				{
					if (!isdigit((unsigned char) digits[i]))
						break;
				}
				if (n == 0 || n > 10 || i < n)
					pvg_tag_malformed(typname, "A purpose id is a positive integer.");
				pvg_tag_add_purpose(tag, pvg_tag_resolve_purpose(reg, name,
																 strtoll(digits, NULL, 10)));
			}
		}
	}
	if (tag->npurposes == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a tag needs at least one purpose")));
	pvg_tag_sort_purposes(tag);
}

/*
 * Text input shared by the four types: a tagged literal, or a plain value
 * (flagged to take its column's default tag).  Reads the registry; errors
 * 22P02, 22023 or 54000 on bad input.
 */
static Datum
pvg_tagged_in(char *str, PvgTagKind kind, const char *typname)
{
	PvgTag		tag;

	if (strncmp(str, PVG_TAG_PREFIX, PVG_TAG_PREFIX_LEN) == 0)
		pvg_tag_parse_literal(&tag, kind, typname, str + PVG_TAG_PREFIX_LEN);
	else
	{
		/* a plain value: it takes its column's default tag */
		memset(&tag, 0, sizeof(tag));
		tag.flags = PVG_TAG_F_DEFAULT;
		pvg_tag_set_value(&tag, kind, pvg_base_input(kind, typname, str));
	}
	PG_RETURN_POINTER(pvg_tag_encode(&tag));
}

Datum
pvg_tagged_text_in(PG_FUNCTION_ARGS)
{
	return pvg_tagged_in(PG_GETARG_CSTRING(0), PVG_KIND_TEXT, "tagged_text");
}

Datum
pvg_tagged_date_in(PG_FUNCTION_ARGS)
{
	return pvg_tagged_in(PG_GETARG_CSTRING(0), PVG_KIND_DATE, "tagged_date");
}

Datum
pvg_tagged_numeric_in(PG_FUNCTION_ARGS)
{
	return pvg_tagged_in(PG_GETARG_CSTRING(0), PVG_KIND_NUMERIC, "tagged_numeric");
}

Datum
pvg_tagged_jsonb_in(PG_FUNCTION_ARGS)
{
	return pvg_tagged_in(PG_GETARG_CSTRING(0), PVG_KIND_JSONB, "tagged_jsonb");
}

/* Error 42501 unless the session may see the value: output never withholds silently. */
static void
pvg_tag_require_visible(FunctionCallInfo fcinfo, const PvgTag *tag)
{
	if (!pvg_tag_visible(fcinfo, tag))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("tagged value is withheld from this session"),
				 errdetail("Its tag does not let the current role and purpose use it."),
				 errhint("Select privacy_guard.reveal(column), which gives NULL for a withheld value.")));
}

/* Name of a tagged purpose for output: its name, or "#id" once dropped. */
static void
pvg_tag_append_purposes(StringInfo buf, PvgRegistry *reg, const PvgTag *tag)
{
	int			i;

	appendStringInfoChar(buf, '{');
	for (i = 0; i < tag->npurposes; i++)
	{
		int			idx = pvg_registry_purpose_by_id(reg, tag->purposes[i]);
		char		unknown[16];

		if (i > 0)
			appendStringInfoString(buf, ", ");
		if (idx >= 0)
			escape_json(buf, reg->purposes[idx].name);
		else
		{
			snprintf(unknown, sizeof(unknown), "#%d", tag->purposes[i]);
			escape_json(buf, unknown);
		}
		appendStringInfo(buf, ": %d", tag->purposes[i]);
	}
	appendStringInfoChar(buf, '}');
}

/*
 * Text output of any tagged type: the literal with its tag (a value still
 * awaiting its default tag as itself), or error 42501 when the tagged-value
 * rule withholds the value from the session.
 */
Datum
pvg_tagged_out(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0));
	PvgTag		tag;
	StringInfoData buf;
	char	   *value;
	Oid			outfunc;
	bool		isvarlena;

	pvg_tag_decode(v, &tag);
	pvg_tag_require_visible(fcinfo, &tag);
	getTypeOutputInfo(pvg_tag_base_type(tag.kind), &outfunc, &isvarlena);
	value = OidOutputFunctionCall(outfunc, pvg_tag_base_value(&tag));

	/* an untagged value prints as itself, unless it would read back as a literal */
	if ((tag.flags & PVG_TAG_F_DEFAULT) &&
		strncmp(value, PVG_TAG_PREFIX, PVG_TAG_PREFIX_LEN) != 0)
		PG_RETURN_CSTRING(value);

	initStringInfo(&buf);
	appendStringInfoString(&buf, PVG_TAG_PREFIX "{\"value\": ");
	escape_json(&buf, value);
	if (tag.flags & PVG_TAG_F_DEFAULT)
		appendStringInfoString(&buf, ", \"default\": true");
	else
	{
		appendStringInfoString(&buf, ", \"purposes\": ");
		pvg_tag_append_purposes(&buf, pvg_registry(), &tag);
	}
	if (tag.flags & PVG_TAG_F_SUBJECT)
	{
		appendStringInfoString(&buf, ", \"subject\": ");
		escape_json(&buf, pnstrdup(tag.subject, tag.subject_len));
	}
	if (tag.flags & PVG_TAG_F_RETAIN)
	{
		appendStringInfoString(&buf, ", \"retain_until\": ");
		escape_json(&buf, DatumGetCString(DirectFunctionCall1(timestamptz_out,
															  TimestampTzGetDatum(tag.retain_until))));
	}
	appendStringInfoChar(&buf, '}');
	PG_RETURN_CSTRING(buf.data);
}

/* Binary output of any tagged type (format in the file header); 42501 when withheld. */
Datum
pvg_tagged_send(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0));
	PvgTag		tag;
	StringInfoData buf;
	PvgRegistry *reg;
	Oid			sendfunc;
	bool		isvarlena;
	bytea	   *value;
	int			i;

	pvg_tag_decode(v, &tag);
	pvg_tag_require_visible(fcinfo, &tag);
	reg = pvg_registry();
	getTypeBinaryOutputInfo(pvg_tag_base_type(tag.kind), &sendfunc, &isvarlena);
	value = OidSendFunctionCall(sendfunc, pvg_tag_base_value(&tag));

	pq_begintypsend(&buf);
	pq_sendint8(&buf, PVG_TAG_VERSION);
	pq_sendint8(&buf, tag.flags);
	pq_sendint16(&buf, tag.npurposes);
	for (i = 0; i < tag.npurposes; i++)
	{
		int			idx = pvg_registry_purpose_by_id(reg, tag.purposes[i]);
		char		unknown[16];
		const char *name = unknown;

		if (idx >= 0)
			name = reg->purposes[idx].name;
		else
			snprintf(unknown, sizeof(unknown), "#%d", tag.purposes[i]);
		pq_sendint32(&buf, tag.purposes[i]);
		pq_sendint32(&buf, strlen(name));
		pq_sendbytes(&buf, name, strlen(name));
	}
	if (tag.flags & PVG_TAG_F_RETAIN)
		pq_sendint64(&buf, tag.retain_until);
	if (tag.flags & PVG_TAG_F_SUBJECT)
	{
		pq_sendint32(&buf, tag.subject_len);
		pq_sendbytes(&buf, tag.subject, tag.subject_len);
	}
	pq_sendint32(&buf, VARSIZE(value) - VARHDRSZ);
	pq_sendbytes(&buf, VARDATA(value), VARSIZE(value) - VARHDRSZ);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* A 22P02 error unless need (>= 0) bytes are left in a binary input buffer. */
static void
pvg_recv_need(StringInfo buf, int64 need, const char *typname)
{
	if (need < 0 || (int64) (buf->len - buf->cursor) < need)
		pvg_tag_malformed(typname, "The binary value is truncated or has an invalid length.");
}

/*
 * Binary input shared by the four types: every length is checked against
 * what is left before it is read; the base value is read by the base type's
 * receive function from its own buffer and must use it up.
 */
static Datum
pvg_tagged_recv(StringInfo buf, PvgTagKind kind, const char *typname)
{
	PvgTag		tag;
	int			version;
	int			n;
	int			i;
	int32		len;
	PvgRegistry *reg;
	StringInfoData value;
	Oid			recvfunc;
	Oid			ioparam;
	FmgrInfo	flinfo;
	Datum		base;

	memset(&tag, 0, sizeof(tag));
	pvg_recv_need(buf, 4, typname);
	version = pq_getmsgint(buf, 1);
	tag.flags = pq_getmsgint(buf, 1);
	n = (int16) pq_getmsgint(buf, 2);
	if (version != PVG_TAG_VERSION)
		pvg_tag_malformed(typname, "Unknown format version.");
	if ((tag.flags & ~PVG_TAG_F_ALL) != 0 ||
		((tag.flags & PVG_TAG_F_DEFAULT) && (tag.flags != PVG_TAG_F_DEFAULT || n != 0)))
		pvg_tag_malformed(typname, "Invalid flags.");
	if (n < 0)
		pvg_tag_malformed(typname, "Invalid number of purposes.");
	if (n > PVG_TAG_MAX_PURPOSES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a tag holds at most %d purposes", PVG_TAG_MAX_PURPOSES)));
	if (n == 0 && !(tag.flags & PVG_TAG_F_DEFAULT))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a tag needs at least one purpose")));
	reg = n > 0 ? pvg_registry() : NULL;
	for (i = 0; i < n; i++)
	{
		int32		id;
		char	   *name;

		pvg_recv_need(buf, 8, typname);
		id = (int32) pq_getmsgint(buf, 4);
		if (id < 1)
			pvg_tag_malformed(typname, "Invalid purpose id.");
		len = (int32) pq_getmsgint(buf, 4);
		if (len <= 0 || len > PVG_TAG_MAX_NAME)
			pvg_tag_malformed(typname, "Invalid purpose name length.");
		pvg_recv_need(buf, len, typname);
		name = pnstrdup(pq_getmsgbytes(buf, len), len);
		if ((int) strlen(name) != len || !pg_verifymbstr(name, len, true))
			pvg_tag_malformed(typname, "Invalid purpose name.");
		pvg_tag_add_purpose(&tag, pvg_tag_resolve_purpose(reg, name, id));
	}
	if (tag.flags & PVG_TAG_F_RETAIN)
	{
		pvg_recv_need(buf, 8, typname);
		tag.retain_until = (TimestampTz) pq_getmsgint64(buf);
		if (!IS_VALID_TIMESTAMP(tag.retain_until) && !TIMESTAMP_NOT_FINITE(tag.retain_until))
			pvg_tag_malformed(typname, "retain_until is out of range.");
	}
	if (tag.flags & PVG_TAG_F_SUBJECT)
	{
		pvg_recv_need(buf, 4, typname);
		len = (int32) pq_getmsgint(buf, 4);
		if (len > PVG_TAG_MAX_SUBJECT)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("subject key is longer than %d bytes", PVG_TAG_MAX_SUBJECT)));
		pvg_recv_need(buf, len, typname);
		tag.subject = pq_getmsgbytes(buf, len);
		tag.subject_len = len;
		pvg_tag_check_subject(tag.subject, len);
	}
	pvg_recv_need(buf, 4, typname);
	len = (int32) pq_getmsgint(buf, 4);
	pvg_recv_need(buf, len, typname);
	if (buf->cursor + len != buf->len)
		pvg_tag_malformed(typname, "The binary value has trailing bytes.");

	/* the base value, read by its own receive function from a copy */
	initStringInfo(&value);
	appendBinaryStringInfo(&value, pq_getmsgbytes(buf, len), len);
	getTypeBinaryInputInfo(pvg_tag_base_type(kind), &recvfunc, &ioparam);
	fmgr_info(recvfunc, &flinfo);
	base = pvg_call_base(&flinfo, typname, NULL, &value, ioparam);
	if (value.cursor != value.len)
		pvg_tag_malformed(typname, "The base value has trailing bytes.");
	pvg_tag_set_value(&tag, kind, base);
	pvg_tag_sort_purposes(&tag);
	PG_RETURN_POINTER(pvg_tag_encode(&tag));
}

Datum
pvg_tagged_text_recv(PG_FUNCTION_ARGS)
{
	return pvg_tagged_recv((StringInfo) PG_GETARG_POINTER(0), PVG_KIND_TEXT, "tagged_text");
}

Datum
pvg_tagged_date_recv(PG_FUNCTION_ARGS)
{
	return pvg_tagged_recv((StringInfo) PG_GETARG_POINTER(0), PVG_KIND_DATE, "tagged_date");
}

Datum
pvg_tagged_numeric_recv(PG_FUNCTION_ARGS)
{
	return pvg_tagged_recv((StringInfo) PG_GETARG_POINTER(0), PVG_KIND_NUMERIC, "tagged_numeric");
}

Datum
pvg_tagged_jsonb_recv(PG_FUNCTION_ARGS)
{
	return pvg_tagged_recv((StringInfo) PG_GETARG_POINTER(0), PVG_KIND_JSONB, "tagged_jsonb");
}

/*
 * typanalyze: no statistics at all.  pg_stats must not show withheld
 * values (most common values, histograms), nor their widths.
 */
Datum
pvg_tagged_typanalyze(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(false);
}
