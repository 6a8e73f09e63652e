/*-------------------------------------------------------------------------
 *
 * enforce.c
 *	  The checks behind a protected table's row-level security policies.
 *
 * protect() installs a restrictive policy whose USING clause is
 * row_visible(table, subject [, retention column]) and whose WITH CHECK
 * clause is write_allowed(table).  Both are evaluated per row, but all the
 * work that does not depend on the row (processing invalidations, rules 1-4
 * of SPEC 3.2, finding the subject set of the purpose, the retention
 * cut-off) is done on the first call of each execution and kept in
 * fn_extra, which lives as long as the execution.  The per-row work is one
 * hash probe and a few comparisons.
 *
 * Because the purpose and the consents are read when the statement runs,
 * not when it is planned, cached and generic plans stay correct across
 * purpose changes and consent changes.
 *
 * With privacy_guard.audit on, the rows found visible are also noted for
 * the access log (audit.c); with it off that costs one branch per row.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"
#include "subject_set.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(pvg_row_visible);
PG_FUNCTION_INFO_V1(pvg_write_allowed);

/* what one execution of a policy needs per row */
typedef struct PvgRowCheck
{
	PvgSubjectSet *set;
	PvgKeyKind	kind;
	int			int_width;		/* 2, 4 or 8 for PVG_KEY_INT */
	bool		text_direct;	/* text/varchar: probe the bytes as they are */
	FmgrInfo	outfunc;		/* other types: probe the text form */
	TimestampTz now;			/* retention: transaction start, as now() */
	TimestampTz stmt_now;		/* consent expiry, forget due: statement start */
	bool		anonymize_on_expiry;
	PvgAuditRead *audit;		/* NULL unless privacy_guard.audit is on */

	/* retention: visible iff exact(value) i.e. value + retention > now */
	bool		has_retention;
	Oid			ret_type;		/* TIMESTAMPTZOID, TIMESTAMPOID or DATEOID */
	Interval	retention;
	int64		cut_lo;			/* value <= cut_lo: expired */
	int64		cut_hi;			/* value > cut_hi: retained */
} PvgRowCheck;

/*
 * Rules 1-4 of SPEC 3.2 for a statement touching a protected table under
 * the session's purpose; returns the purpose's index or raises the error.
 */
int
pvg_check_statement(PvgRegistry *reg, PvgTable *table, Oid relid)
{
	int			purpose;
	int			i;
	bool		ok;
	Oid			userid = GetUserId();

	if (pvg_purpose == NULL || pvg_purpose[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no purpose is declared for table %s", get_rel_name(relid)),
				 errdetail("Every statement that touches a table protected by privacy_guard runs under a declared purpose."),
				 errhint("Run SET privacy_guard.purpose = '<purpose>' (or SET LOCAL behind a transaction pooler).")));

	purpose = pvg_registry_purpose(reg, pvg_purpose);
	if (purpose < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown privacy_guard purpose \"%s\"", pvg_purpose),
				 errhint("See privacy_guard.purposes for the defined purposes.")));

	ok = false;
	for (i = 0; i < reg->nauth && !ok; i++)
	{
		if (pvg_purpose_within(reg, purpose, reg->auth[i].purpose) &&
			has_privs_of_role(userid, reg->auth[i].roleid))
			ok = true;
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" is not authorised for purpose \"%s\"",
						GetUserNameFromId(userid, false), pvg_purpose),
				 errhint("An administrator can run privacy_guard.allow_purpose().")));

	ok = false;
	for (i = 0; i < table->npurposes && !ok; i++)
		ok = pvg_purpose_within(reg, purpose, table->purposes[i]);
	if (!ok)
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

/* exact retention test: value + retention > now (SPEC 3.2 rule 6) */
static bool
pvg_retained_exact(PvgRowCheck *chk, int64 value)
{
	Datum		end;

	if (chk->ret_type == TIMESTAMPTZOID)
		end = DirectFunctionCall2(timestamptz_pl_interval, TimestampTzGetDatum(value),
								  IntervalPGetDatum(&chk->retention));
	else
	{
		end = DirectFunctionCall2(timestamp_pl_interval, TimestampGetDatum(value),
								  IntervalPGetDatum(&chk->retention));
		end = DirectFunctionCall1(timestamp_timestamptz, end);
	}
	return DatumGetTimestampTz(end) > chk->now;
}

/* a retention column value in the timestamp domain of its type */
static inline int64
pvg_retention_value(PvgRowCheck *chk, Datum d)
{
	if (chk->ret_type == DATEOID)
	{
		DateADT		date = DatumGetDateADT(d);

		if (DATE_IS_NOBEGIN(date))
			return DT_NOBEGIN;
		if (DATE_IS_NOEND(date))
			return DT_NOEND;
		return (int64) date * USECS_PER_DAY;	/* both count from 2000-01-01 */
	}
	return DatumGetInt64(d);
}

static inline bool
pvg_retained(PvgRowCheck *chk, Datum d)
{
	int64		v = pvg_retention_value(chk, d);

	if (v > chk->cut_hi)
		return true;
	if (v <= chk->cut_lo)
		return false;
	if (TIMESTAMP_NOT_FINITE(v))
		return v == DT_NOEND;
	return pvg_retained_exact(chk, v);
}

/*
 * Bounds outside which the retention test needs no interval arithmetic:
 * value + retention is monotonic in value, so once the exact test holds at
 * cut_hi it holds above it, and once it fails at cut_lo it fails below.
 * The bounds are the naive cut-off widened by four days (month lengths,
 * daylight saving and the session time zone), then checked exactly.
 */
static void
pvg_retention_bounds(PvgRowCheck *chk)
{
	int64		span;
	int64		local_now = chk->now;
	int64		margin = 4 * USECS_PER_DAY;

	if (chk->ret_type != TIMESTAMPTZOID)
		local_now = DatumGetTimestamp(DirectFunctionCall1(timestamptz_timestamp,
														  TimestampTzGetDatum(chk->now)));
	span = chk->retention.time + (int64) chk->retention.day * USECS_PER_DAY +
		(int64) chk->retention.month * DAYS_PER_MONTH * USECS_PER_DAY;
	/* a year of months is 360 naive days but up to 366 real ones */
	margin += (int64) (Abs(chk->retention.month) / 12 + 1) * 7 * USECS_PER_DAY;

	chk->cut_hi = local_now - span + margin;
	chk->cut_lo = local_now - span - margin;
	if (!pvg_retained_exact(chk, chk->cut_hi) || pvg_retained_exact(chk, chk->cut_lo))
	{
		/* unexpected: fall back to the exact test for every value */
		chk->cut_hi = DT_NOEND;
		chk->cut_lo = DT_NOBEGIN;
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
	chk->now = GetCurrentTransactionStartTimestamp();
	/* a forget request filed since the transaction began counts at once */
	chk->stmt_now = GetCurrentStatementStartTimestamp();
	chk->anonymize_on_expiry = table->anonymize_on_expiry;

	if (table->has_retention && PG_NARGS() > 2)
	{
		chk->has_retention = true;
		chk->retention = table->retention;
		chk->ret_type = get_fn_expr_argtype(fcinfo->flinfo, 2);
		pvg_retention_bounds(chk);
	}
	chk->audit = pvg_audit_begin(relid, reg->purposes[purpose].name, fcinfo->flinfo->fn_mcxt);
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = chk;
	return chk;
}

/*
 * row_visible(table regclass, subject anyelement [, retained_from])
 *
 * Whether the row may be seen under the session's purpose (SPEC 3.2 rules
 * 5-7); raises rules 1-4 on the first row of each execution.  A row whose
 * subject is NULL holds no link to a person: only retention applies to it,
 * and not even that when the table anonymises at expiry (it has been).
 */
Datum
pvg_row_visible(PG_FUNCTION_ARGS)
{
	PvgRowCheck *chk = (PvgRowCheck *) fcinfo->flinfo->fn_extra;
	Datum		subject;

	if (unlikely(chk == NULL))
		chk = pvg_row_check_setup(fcinfo);

	if (PG_ARGISNULL(1))
	{
		bool		visible;

		visible = chk->anonymize_on_expiry || !chk->has_retention ||
			(!PG_ARGISNULL(2) && pvg_retained(chk, PG_GETARG_DATUM(2)));
		if (unlikely(chk->audit != NULL) && visible)
			pvg_audit_row(chk->audit);
		PG_RETURN_BOOL(visible);
	}
	if (chk->has_retention)
	{
		/* no retention date: nothing shows the row may still be kept */
		if (PG_ARGISNULL(2) || !pvg_retained(chk, PG_GETARG_DATUM(2)))
			PG_RETURN_BOOL(false);
	}

	subject = PG_GETARG_DATUM(1);
	if (chk->kind == PVG_KEY_INT)
	{
		int64		key;
		bool		result;

		if (chk->int_width == 8)
			key = DatumGetInt64(subject);
		else if (chk->int_width == 4)
			key = DatumGetInt32(subject);
		else
			key = DatumGetInt16(subject);
		result = pvg_set_allows_int(chk->set, key, chk->stmt_now);
		if (unlikely(chk->audit != NULL) && result)
			pvg_audit_row_int(chk->audit, key);
		PG_RETURN_BOOL(result);
	}
	if (chk->text_direct)
	{
		struct varlena *t = PG_DETOAST_DATUM_PACKED(subject);
		bool		result;

		result = pvg_set_allows_text(chk->set, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), chk->stmt_now);
		if (unlikely(chk->audit != NULL) && result)
			pvg_audit_row_text(chk->audit, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		if ((Pointer) t != DatumGetPointer(subject))
			pfree(t);
		PG_RETURN_BOOL(result);
	}
	else
	{
		char	   *s = OutputFunctionCall(&chk->outfunc, subject);
		bool		result;

		result = pvg_set_allows_text(chk->set, s, strlen(s), chk->stmt_now);
		if (unlikely(chk->audit != NULL) && result)
			pvg_audit_row_text(chk->audit, s, strlen(s));
		pfree(s);
		PG_RETURN_BOOL(result);
	}
}

/*
 * write_allowed(table regclass)
 *
 * The WITH CHECK side: a written row needs rules 1-4 only (SPEC 3.2), checked
 * once per execution.
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
