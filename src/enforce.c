/*-------------------------------------------------------------------------
 *
 * enforce.c
 *	  The checks behind a protected table's row-level security policies.
 *
 * protect() installs a restrictive policy whose USING clause is
 * row_visible(table, subject [, retention column]) and whose WITH CHECK
 * clause is write_allowed(table).  Both are evaluated per row, but all the
 * work that does not depend on the row (processing invalidations, the
 * statement rules 1-4, finding the subject set of the purpose, the
 * retention cut-off) is done on the first call of each execution and kept
 * in fn_extra, which lives as long as the execution.  The per-row work is one
 * hash probe and a few comparisons.
 *
 * Because the purpose and the consents are read when the statement runs,
 * not when it is planned, cached and generic plans stay correct across
 * purpose changes and consent changes.
 *
 * Retention of a date or timestamp (without time zone) column is judged in
 * the session's TimeZone and in the server's log_timezone, the stricter of
 * the two: a session cannot see rows past their retention by SET TimeZone.
 *
 * With privacy_guard.audit on, the rows found visible are also noted for
 * the access log (audit.c); with it off that costs one branch per row.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "common/int.h"
#include "subject_set.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "pgtime.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(pvg_row_visible);
PG_FUNCTION_INFO_V1(pvg_write_allowed);

/*
 * A time limit "column value + interval > now", with bounds outside which
 * the test needs no interval arithmetic (see pvg_cutoff_bounds).
 */
typedef struct PvgCutoff
{
	Oid			type;			/* TIMESTAMPTZOID, TIMESTAMPOID or DATEOID */
	Interval	span;
	TimestampTz now;
	int64		cut_lo;			/* value <= cut_lo: past the limit */
	int64		cut_hi;			/* value > cut_hi: within it */
} PvgCutoff;

/* what one execution of a policy needs per row */
typedef struct PvgRowCheck
{
	PvgSubjectSet *set;
	PvgKeyKind	kind;
	int			int_width;		/* 2, 4 or 8 for PVG_KEY_INT */
	bool		text_direct;	/* text/varchar: probe the bytes as they are */
	FmgrInfo	outfunc;		/* other types: probe the text form */
	TimestampTz stmt_now;		/* consent expiry, forget due: statement start */
	bool		anonymize_on_expiry;
	PvgAuditRead *audit;		/* NULL unless privacy_guard.audit is on */

	/* rule 6: visible iff retention column + retention > now() */
	bool		has_retention;
	PvgCutoff	retention;

	/*
	 * rule 8: under the purpose of the table's legal hold, rows that rules
	 * 5-6 hide are visible while retention column + keep > now()
	 */
	bool		held;
	PvgCutoff	hold;
} PvgRowCheck;

/* Whether the current role is authorised for a purpose (rule 3). */
static bool
pvg_role_authorised(PvgRegistry *reg, int purpose)
{
	Oid			userid = GetUserId();
	int			i;

	for (i = 0; i < reg->nauth; i++)
	{
		if (pvg_purpose_authorised(reg, purpose, reg->auth[i].purpose) &&
			has_privs_of_role(userid, reg->auth[i].roleid))
			return true;
	}
	return false;
}

/* Whether a table was collected for a purpose or an ancestor of it (rule 4). */
static bool
pvg_table_allows(PvgRegistry *reg, PvgTable *table, int purpose)
{
	int			i;

	for (i = 0; i < table->npurposes; i++)
	{
		if (pvg_purpose_within(reg, purpose, table->purposes[i]))
			return true;
	}
	return false;
}

/*
 * Rules 1-4 for a statement touching a protected table under the session's
 * purpose (a purpose is set, known, authorised for the role, and among the
 * table's purposes); returns the purpose's index or raises the error.
 */
int
pvg_check_statement(PvgRegistry *reg, PvgTable *table, Oid relid)
{
	int			purpose;
	int			i;

	if (pvg_purpose == NULL || pvg_purpose[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no purpose is declared for table %s", get_rel_name(relid)),
				 errdetail("Every statement that touches a table protected by privacy_guard runs under a declared purpose."),
				 errhint("Run SET privacy_guard.purpose = '<purpose>' (or SET LOCAL behind a transaction pooler).")));

	if (pvg_purpose_refused())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no purpose is declared for this transaction for table %s", get_rel_name(relid)),
				 errdetail("privacy_guard.purpose_scope is \"transaction\": a purpose set for the session (SET, set_config(..., false), ALTER ROLE or ALTER DATABASE ... SET, the configuration file) is not used."),
				 errhint("Run SET LOCAL privacy_guard.purpose = '<purpose>' in the transaction.")));

	purpose = pvg_registry_purpose(reg, pvg_purpose);
	if (purpose < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown privacy_guard purpose \"%s\"", pvg_purpose),
				 errhint("See privacy_guard.purposes for the defined purposes.")));

	if (!pvg_role_authorised(reg, purpose))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" is not authorised for purpose \"%s\"",
						GetUserNameFromId(GetUserId(), false), pvg_purpose),
				 errhint("An administrator can run privacy_guard.allow_purpose().")));

	if (!pvg_table_allows(reg, table, purpose))
	{
		StringInfoData buf;

		initStringInfo(&buf);
		for (i = 0; i < table->npurposes; i++)
			appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "",
							 reg->purposes[table->purposes[i]].name);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("table %s was not collected for purpose %s",
						get_rel_name(relid), pvg_purpose),
				 errdetail("The table's purposes are: %s.", buf.data)));
	}
	return purpose;
}

/*
 * Whether a statement under a purpose may read a table (the checks of
 * pvg_check_statement, without raising their errors).
 */
bool
pvg_statement_allowed(PvgRegistry *reg, PvgTable *table, int purpose)
{
	return pvg_role_authorised(reg, purpose) && pvg_table_allows(reg, table, purpose);
}

/* Registry entry of a table named by a policy; fails closed if it is gone. */
static PvgTable *
pvg_policy_table(PvgRegistry *reg, Oid relid)
{
	PvgTable   *table = pvg_registry_table(reg, relid);

	if (table == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("table with OID %u has a privacy_guard policy but no registration", relid),
				 errhint("Run privacy_guard.protect() on it again, or remove its privacy_guard_rules policy.")));
	return table;
}

/*
 * A local time (timestamp without time zone) read in the server's
 * log_timezone.  Unlike TimeZone, log_timezone can be set only in the
 * server's configuration, not by a session or ALTER ROLE.
 */
static TimestampTz
pvg_local_in_log_timezone(Timestamp local)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tzoff;
	TimestampTz result;

	if (TIMESTAMP_NOT_FINITE(local))
		return local;
	if (timestamp2tm(local, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	tzoff = DetermineTimeZoneOffset(&tm, log_timezone);
	if (tm2timestamp(&tm, fsec, &tzoff, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
}

/*
 * exact test: value + span > now.
 * A date or timestamp column holds local times, which mean different
 * instants in different time zones; SET TimeZone must not let a session
 * see rows past their retention, so such a row is retained only if it is
 * in the session's time zone and in the server's log_timezone too.
 */
static bool
pvg_within_exact(PvgCutoff *cut, int64 value)
{
	Datum		end;

	if (cut->type == TIMESTAMPTZOID)
		end = DirectFunctionCall2(timestamptz_pl_interval, TimestampTzGetDatum(value),
								  IntervalPGetDatum(&cut->span));
	else
	{
		Datum		local_end;

		local_end = DirectFunctionCall2(timestamp_pl_interval, TimestampGetDatum(value),
										IntervalPGetDatum(&cut->span));
		if (pvg_local_in_log_timezone(DatumGetTimestamp(local_end)) <= cut->now)
			return false;
		end = DirectFunctionCall1(timestamp_timestamptz, local_end);
	}
	return DatumGetTimestampTz(end) > cut->now;
}

/* a retention column value in the timestamp domain of its type */
static inline int64
pvg_cutoff_value(PvgCutoff *cut, Datum d)
{
	if (cut->type == DATEOID)
	{
		DateADT		date = DatumGetDateADT(d);

		if (DATE_IS_NOBEGIN(date))
			return DT_NOBEGIN;
		if (DATE_IS_NOEND(date))
			return DT_NOEND;
		/* beyond the timestamp range (after 294276 AD): later than any cut-off */
		if (date >= (DateADT) (PG_INT64_MAX / USECS_PER_DAY))
			return DT_NOEND - 1;
		return (int64) date * USECS_PER_DAY;	/* both count from 2000-01-01 */
	}
	return DatumGetInt64(d);
}

static inline bool
pvg_within(PvgCutoff *cut, Datum d)
{
	int64		v = pvg_cutoff_value(cut, d);

	if (v > cut->cut_hi)
		return true;
	if (v <= cut->cut_lo)
		return false;
	if (TIMESTAMP_NOT_FINITE(v))
		return v == DT_NOEND;
	return pvg_within_exact(cut, v);
}

/*
 * Set up a limit and its bounds: value + span is monotonic in value, so
 * once the exact test holds at cut_hi it holds above it, and once it fails
 * at cut_lo it fails below.  The bounds are the naive cut-off widened by
 * four days (month lengths, daylight saving and the session time zone),
 * then checked exactly.
 */
static void
pvg_cutoff_init(PvgCutoff *cut, Oid type, Interval *span, TimestampTz now)
{
	int64		naive;
	int64		local_now = now;
	int64		margin = 4 * USECS_PER_DAY;

	cut->type = type;
	cut->span = *span;
	cut->now = now;
	if (type != TIMESTAMPTZOID)
		local_now = DatumGetTimestamp(DirectFunctionCall1(timestamptz_timestamp,
														  TimestampTzGetDatum(now)));
	/* a year of months is 360 naive days but up to 366 real ones */
	margin += (int64) (Abs(span->month) / 12 + 1) * 7 * USECS_PER_DAY;
	if (pg_mul_s64_overflow((int64) span->month, DAYS_PER_MONTH * USECS_PER_DAY, &naive) ||
		pg_add_s64_overflow(naive, (int64) span->day * USECS_PER_DAY, &naive) ||
		pg_add_s64_overflow(naive, span->time, &naive) ||
		pg_sub_s64_overflow(local_now, naive, &cut->cut_hi) ||
		pg_add_s64_overflow(cut->cut_hi, margin, &cut->cut_hi) ||
		pg_sub_s64_overflow(cut->cut_hi, 2 * margin, &cut->cut_lo))
	{
		/*
		 * A span beyond the timestamp range: every finite value is within
		 * a longer one than that, none within a shorter one (-infinity
		 * never is).  The exact test would only say "out of range".
		 */
		bool		longer = span->month > 0 || (span->month == 0 && span->day > 0);

		cut->cut_hi = longer ? DT_NOBEGIN : DT_NOEND;
		cut->cut_lo = longer ? DT_NOBEGIN : DT_NOEND;
		return;
	}
	if (!pvg_within_exact(cut, cut->cut_hi) || pvg_within_exact(cut, cut->cut_lo))
	{
		/* unexpected: fall back to the exact test for every value */
		cut->cut_hi = DT_NOEND;
		cut->cut_lo = DT_NOBEGIN;
	}
}

static PvgRowCheck *
pvg_row_check_setup(FunctionCallInfo fcinfo)
{
	MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	PvgRowCheck *chk = palloc0(sizeof(PvgRowCheck));
	Oid			relid = PG_GETARG_OID(0);
	Oid			subject_type;
	PvgRegistry *reg;
	PvgTable   *table;
	int			purpose;

	pvg_cache_accept();
	reg = pvg_registry();
	table = pvg_policy_table(reg, relid);
	purpose = pvg_check_statement(reg, table, relid);

	subject_type = getBaseType(get_fn_expr_argtype(fcinfo->flinfo, 1));
	switch (subject_type)
	{
		case INT8OID:
			chk->kind = PVG_KEY_INT;
			chk->int_width = 8;
			break;
		case INT4OID:
			chk->kind = PVG_KEY_INT;
			chk->int_width = 4;
			break;
		case INT2OID:
			chk->kind = PVG_KEY_INT;
			chk->int_width = 2;
			break;
		case TEXTOID:
		case VARCHAROID:
			chk->kind = PVG_KEY_TEXT;
			chk->text_direct = true;
			break;
		default:
			{
				Oid			outfunc;
				bool		isvarlena;

				if (!OidIsValid(subject_type))
					elog(ERROR, "could not determine the subject column's type");
				chk->kind = PVG_KEY_TEXT;
				getTypeOutputInfo(subject_type, &outfunc, &isvarlena);
				fmgr_info_cxt(outfunc, &chk->outfunc, fcinfo->flinfo->fn_mcxt);
			}
	}
	chk->set = pvg_subject_set(reg, purpose, chk->kind);
	/* a forget request filed since the transaction began counts at once */
	chk->stmt_now = GetCurrentStatementStartTimestamp();
	chk->anonymize_on_expiry = table->anonymize_on_expiry;

	if (PG_NARGS() > 2)
	{
		Oid			ret_type = get_fn_expr_argtype(fcinfo->flinfo, 2);
		TimestampTz now = GetCurrentTransactionStartTimestamp();	/* as now() */

		if (table->has_retention)
		{
			chk->has_retention = true;
			pvg_cutoff_init(&chk->retention, ret_type, &table->retention, now);
		}

		/*
		 * The hold's exception is for its legal obligation only: under it
		 * the subject set holds nothing but forget requests.
		 */
		if (table->hold_purpose >= 0 &&
			pvg_purpose_within(reg, purpose, table->hold_purpose) &&
			reg->purposes[purpose].basis == PVG_BASIS_LEGAL_OBLIGATION)
		{
			chk->held = true;
			pvg_cutoff_init(&chk->hold, ret_type, &table->hold_keep, now);
		}
	}
	chk->audit = pvg_audit_begin(relid, reg->purposes[purpose].name, fcinfo->flinfo->fn_mcxt);
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = chk;
	return chk;
}

/*
 * A row's subject key as the subject sets look it up: by value for integer
 * columns, else by its bytes (text, varchar) or its text form.  Decoded at
 * most once per row, for the check and, with audit on, the access log.
 */
typedef struct PvgRowKey
{
	bool		decoded;
	int64		ival;			/* PVG_KEY_INT */
	const char *text;			/* PVG_KEY_TEXT */
	int			len;
	void	   *to_free;		/* a detoasted copy or an output string */
} PvgRowKey;

static inline void
pvg_row_key(PvgRowCheck *chk, Datum subject, PvgRowKey *key)
{
	key->decoded = true;
	key->to_free = NULL;
	if (chk->kind == PVG_KEY_INT)
	{
		if (chk->int_width == 8)
			key->ival = DatumGetInt64(subject);
		else if (chk->int_width == 4)
			key->ival = DatumGetInt32(subject);
		else
			key->ival = DatumGetInt16(subject);
	}
	else if (chk->text_direct)
	{
		struct varlena *t = PG_DETOAST_DATUM_PACKED(subject);

		key->text = VARDATA_ANY(t);
		key->len = VARSIZE_ANY_EXHDR(t);
		if ((Pointer) t != DatumGetPointer(subject))
			key->to_free = t;
	}
	else
	{
		char	   *s = OutputFunctionCall(&chk->outfunc, subject);

		key->text = s;
		key->len = strlen(s);
		key->to_free = s;
	}
}

/* the subject's side of the check: rules 5 and 7 */
static inline bool
pvg_key_allowed(PvgRowCheck *chk, PvgRowKey *key)
{
	if (chk->kind == PVG_KEY_INT)
		return pvg_set_allows_int(chk->set, key->ival, chk->stmt_now);
	return pvg_set_allows_text(chk->set, key->text, key->len, chk->stmt_now);
}

/* Rules 5-8 for one row (see pvg_row_visible); decodes key when it needs it. */
static inline bool
pvg_row_check(PvgRowCheck *chk, FunctionCallInfo fcinfo, PvgRowKey *key)
{
	if (PG_ARGISNULL(1))
	{
		if (chk->anonymize_on_expiry || !chk->has_retention)
			return true;
		if (PG_ARGISNULL(2))
			return false;
		return pvg_within(&chk->retention, PG_GETARG_DATUM(2)) ||
			(chk->held && pvg_within(&chk->hold, PG_GETARG_DATUM(2)));
	}
	if (chk->has_retention)
	{
		/* no retention date: nothing shows the row may still be kept */
		if (PG_ARGISNULL(2))
			return false;
		if (!pvg_within(&chk->retention, PG_GETARG_DATUM(2)))
			return chk->held && pvg_within(&chk->hold, PG_GETARG_DATUM(2));
	}
	pvg_row_key(chk, PG_GETARG_DATUM(1), key);
	if (pvg_key_allowed(chk, key))
		return true;
	/* under the hold's purpose only a forget request hides a subject */
	return chk->held && !PG_ARGISNULL(2) && pvg_within(&chk->hold, PG_GETARG_DATUM(2));
}

/* Note a visible row for the access log (privacy_guard.audit on only). */
static void
pvg_audit_visible(PvgRowCheck *chk, FunctionCallInfo fcinfo, PvgRowKey *key)
{
	if (PG_ARGISNULL(1))
		pvg_audit_row(chk->audit);
	else
	{
		if (!key->decoded)
			pvg_row_key(chk, PG_GETARG_DATUM(1), key);
		if (chk->kind == PVG_KEY_INT)
			pvg_audit_row_int(chk->audit, key->ival);
		else
			pvg_audit_row_text(chk->audit, key->text, key->len);
	}
}

/*
 * row_visible(table regclass, subject anyelement [, retained_from])
 *
 * Whether the row may be seen under the session's purpose (rules 5-8:
 * forget requests, retention, consent or objection, legal holds); raises
 * rules 1-4 on the first row of each execution.  A row whose
 * subject is NULL holds no link to a person: only retention applies to it,
 * and not even that when the table anonymizes at expiry (it has been).
 * Under a legal hold's purpose, a row that rules 5-6 hide stays visible
 * while retained_from + keep has not passed (rule 8).
 */
Datum
pvg_row_visible(PG_FUNCTION_ARGS)
{
	PvgRowCheck *chk = (PvgRowCheck *) fcinfo->flinfo->fn_extra;
	PvgRowKey	key = {0};
	bool		visible;

	if (unlikely(chk == NULL))
		chk = pvg_row_check_setup(fcinfo);

	visible = pvg_row_check(chk, fcinfo, &key);
	if (unlikely(chk->audit != NULL) && visible)
		pvg_audit_visible(chk, fcinfo, &key);
	if (key.to_free != NULL)
		pfree(key.to_free);
	PG_RETURN_BOOL(visible);
}

/*
 * write_allowed(table regclass)
 *
 * The WITH CHECK side: a written row needs the statement rules 1-4 only,
 * checked once per execution.
 */
Datum
pvg_write_allowed(PG_FUNCTION_ARGS)
{
	if (unlikely(fcinfo->flinfo->fn_extra == NULL))
	{
		Oid			relid = PG_GETARG_OID(0);
		PvgRegistry *reg;

		pvg_cache_accept();
		reg = pvg_registry();
		pvg_check_statement(reg, pvg_policy_table(reg, relid), relid);
		fcinfo->flinfo->fn_extra = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, 1);
	}
	PG_RETURN_BOOL(true);
}
