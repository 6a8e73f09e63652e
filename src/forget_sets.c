/*-------------------------------------------------------------------------
 *
 * forget_sets.c
 *	  What a set of forget requests found, request by request.
 *
 * A set of forget requests runs one statement per table (_erase_set), and
 * each statement reports the rows it deleted, anonymized or kept under a
 * legal hold as two arrays: the keys that had rows, and how many.  A
 * receipt names, for its own key, the rows of each table by action.
 * Turning the one into the other in SQL took three aggregations of small
 * jsonb objects per key, about a third of the receipts' statement for a set
 * of 1,000; here it is one sort and one pass.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "common/int.h"
#include "utils/numeric.h"

PG_FUNCTION_INFO_V1(pvg_set_counts);

/* the rows one statement found for one key */
typedef struct SetCount
{
	const char *key;			/* the key's text form (not terminated) */
	int			keylen;
	int			tix;			/* the table's place in the set: its bit in mask */
	const char *tbl;			/* the table's name (not terminated) */
	int			tbllen;
	const char *act;			/* deleted, anonymized or restricted (not terminated) */
	int			actlen;
	int64		n;
} SetCount;

static int
compare_strings(const char *a, int alen, const char *b, int blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

static bool
same_key(const SetCount *x, const SetCount *y)
{
	return compare_strings(x->key, x->keylen, y->key, y->keylen) == 0;
}

static bool
same_action(const SetCount *x, const SetCount *y)
{
	return compare_strings(x->act, x->actlen, y->act, y->actlen) == 0;
}

/* by key, then table, then action: each key's counts come together */
static int
compare_set_counts(const void *a, const void *b)
{
	const SetCount *x = (const SetCount *) a;
	const SetCount *y = (const SetCount *) b;
	int			c;

	c = compare_strings(x->key, x->keylen, y->key, y->keylen);
	if (c != 0)
		return c;
	if (x->tix != y->tix)
		return (x->tix > y->tix) - (x->tix < y->tix);
	return compare_strings(x->act, x->actlen, y->act, y->actlen);
}

/* one member of a statement's object, of the type it must have */
static JsonbValue *
statement_member(JsonbContainer *stmt, const char *name, enum jbvType type)
{
	JsonbValue *v = getKeyJsonValueFromContainer(stmt, name, strlen(name), NULL);

	if (v == NULL || v->type != type)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a statement of a forget set has no valid member \"%s\"", name)));
	return v;
}

static void
push_string(JsonbParseState **state, JsonbIteratorToken token, const char *s, int len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = len;
	pushJsonbValue(state, token, &v);
}

/*
 * _set_counts(statements) -> (key, counts, kept, mask) per key with rows:
 * statements is a jsonb array of {"t": table, "i": its place, "a": action,
 * "k": [keys], "n": [rows]}, one per statement of the set; counts is
 * {table: {action: rows}} (the rows of one table and action added up: a
 * table's detached parts), kept the rows restricted under a legal hold,
 * mask the tables rows were deleted or anonymized in, as bits of their
 * places (NULL: none).
 */
Datum
pvg_set_counts(PG_FUNCTION_ARGS)
{
	Jsonb	   *stmts = PG_GETARG_JSONB_P(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SetCount   *counts = NULL;
	int			ncounts = 0;
	int			maxcounts = 0;
	int			nstmts;
	int			i;

	InitMaterializedSRF(fcinfo, 0);

	if (!JB_ROOT_IS_ARRAY(stmts) || JB_ROOT_IS_SCALAR(stmts))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the statements of a forget set must be a jsonb array")));
	nstmts = JB_ROOT_COUNT(stmts);

	/* every (key, table, action, rows) of every statement */
	for (i = 0; i < nstmts; i++)
	{
		JsonbValue *stmt = getIthJsonbValueFromContainer(&stmts->root, i);
		JsonbContainer *sc;
		JsonbValue *tbl;
		JsonbValue *place;
		JsonbValue *act;
		JsonbContainer *keys;
		JsonbContainer *rows;
		int			tix;
		int			nkeys;

		if (stmt == NULL || stmt->type != jbvBinary ||
			!JsonContainerIsObject(stmt->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a statement of a forget set must be a jsonb object")));
		sc = stmt->val.binary.data;
		tbl = statement_member(sc, "t", jbvString);
		place = statement_member(sc, "i", jbvNumeric);
		act = statement_member(sc, "a", jbvString);
		keys = statement_member(sc, "k", jbvBinary)->val.binary.data;
		rows = statement_member(sc, "n", jbvBinary)->val.binary.data;
		tix = DatumGetInt32(DirectFunctionCall1(numeric_int4,
												NumericGetDatum(place->val.numeric)));
		/* a table's bit: sets are used for at most 63 tables (_forget_due) */
		if (tix < 0 || tix > 62)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a forget set names a table at place %d, outside 0 to 62", tix)));
		if (!JsonContainerIsArray(keys) || !JsonContainerIsArray(rows) ||
			JsonContainerSize(keys) != JsonContainerSize(rows))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a statement of a forget set must have as many counts as keys")));
		nkeys = JsonContainerSize(keys);
		if (ncounts + nkeys > maxcounts)
		{
			maxcounts = Max(2 * maxcounts, ncounts + nkeys);
			counts = ncounts == 0 ? palloc(sizeof(SetCount) * maxcounts)
				: repalloc(counts, sizeof(SetCount) * maxcounts);
		}
		for (int j = 0; j < nkeys; j++)
		{
			JsonbValue *k = getIthJsonbValueFromContainer(keys, j);
			JsonbValue *n = getIthJsonbValueFromContainer(rows, j);
			SetCount   *c = &counts[ncounts++];

			if (k->type != jbvString || n->type != jbvNumeric)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("a statement of a forget set must name keys as strings "
								"and rows as numbers")));
			c->key = k->val.string.val;
			c->keylen = k->val.string.len;
			c->tix = tix;
			c->tbl = tbl->val.string.val;
			c->tbllen = tbl->val.string.len;
			c->act = act->val.string.val;
			c->actlen = act->val.string.len;
			c->n = DatumGetInt64(DirectFunctionCall1(numeric_int8,
													 NumericGetDatum(n->val.numeric)));
		}
	}
	if (ncounts == 0)
		return (Datum) 0;
	qsort(counts, ncounts, sizeof(SetCount), compare_set_counts);

	/* one row per key */
	for (i = 0; i < ncounts;)
	{
		JsonbParseState *state = NULL;
		JsonbValue *obj;
		int64		kept = 0;
		uint64		mask = 0;
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		int			k = i;

		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		while (i < ncounts && same_key(&counts[i], &counts[k]))
		{
			int			t = i;

			/* this key's rows of one table, by action */
			push_string(&state, WJB_KEY, counts[t].tbl, counts[t].tbllen);
			pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
			while (i < ncounts && same_key(&counts[i], &counts[k]) &&
				   counts[i].tix == counts[t].tix)
			{
				int			a = i;
				int64		n = 0;
				JsonbValue	v;

				/* the table's parts, added up */
				while (i < ncounts && same_key(&counts[i], &counts[k]) &&
					   counts[i].tix == counts[a].tix && same_action(&counts[i], &counts[a]))
				{
					if (pg_add_s64_overflow(n, counts[i].n, &n))
						ereport(ERROR,
								(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
								 errmsg("bigint out of range")));
					i++;
				}
				push_string(&state, WJB_KEY, counts[a].act, counts[a].actlen);
				v.type = jbvNumeric;
				v.val.numeric = int64_to_numeric(n);
				pushJsonbValue(&state, WJB_VALUE, &v);
				if (compare_strings(counts[a].act, counts[a].actlen, "restricted", 10) != 0)
					mask |= UINT64CONST(1) << counts[a].tix;
				else if (pg_add_s64_overflow(kept, n, &kept))
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("bigint out of range")));
			}
			pushJsonbValue(&state, WJB_END_OBJECT, NULL);
		}
		obj = pushJsonbValue(&state, WJB_END_OBJECT, NULL);

		values[0] = PointerGetDatum(cstring_to_text_with_len(counts[k].key, counts[k].keylen));
		values[1] = JsonbPGetDatum(JsonbValueToJsonb(obj));
		values[2] = Int64GetDatum(kept);
		values[3] = Int64GetDatum((int64) mask);
		nulls[3] = (mask == 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
