/*-------------------------------------------------------------------------
 *
 * consent_cache.c
 *	  The consent store (current consents, objections and due-able forget
 *	  requests) and the per-purpose subject sets derived from it.
 *
 * The store is loaded in one pass over consent_state and erasure_request
 * when a change has been seen (see registry.c for the invalidation path);
 * subject sets are built lazily from it, one per purpose and key kind that
 * a statement actually uses.  Everything lives in one memory context that is
 * retired, not freed, when the store goes stale, so a running statement's
 * set stays valid until the end of the transaction.  The memory used is
 * proportional to the recorded consents, never to the rows scanned.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"
#include "subject_set.h"

#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

typedef struct PvgConsentRow
{
	char	   *subject;
	int			subject_len;
	char	   *purpose;
	char		status;			/* 'g'ranted or 'o'bjected */
	TimestampTz valid_until;	/* DT_NOEND when open-ended */
} PvgConsentRow;

typedef struct PvgForgetRow
{
	char	   *subject;
	int			subject_len;
	TimestampTz due;
} PvgForgetRow;

typedef struct PvgConsentStore
{
	int			nconsents;
	PvgConsentRow *consents;
	int			nforgets;
	PvgForgetRow *forgets;
	PvgSubjectSet *sets;		/* built so far */
	MemoryContext cxt;			/* holds the store and its sets */
} PvgConsentStore;

static PvgConsentStore *pvg_store = NULL;	/* NULL: stale */
static MemoryContext pvg_store_cxt = NULL;

void
pvg_consent_mark_stale(void)
{
	pvg_store = NULL;
}

static PvgConsentStore *
pvg_store_load(void)
{
	MemoryContext cxt;
	MemoryContext old;
	PvgConsentStore *store;
	Oid			save_userid;
	int			save_sec;
	uint64		n;
	uint64		i;

	cxt = AllocSetContextCreate(TopMemoryContext, "privacy_guard consent store",
								ALLOCSET_DEFAULT_SIZES);
	store = MemoryContextAllocZero(cxt, sizeof(PvgConsentStore));
	store->cxt = cxt;

	/*
	 * Mark the store fresh before reading it: an invalidation that arrives
	 * while we read (a commit our snapshot may have missed) marks it stale
	 * again, and the next statement reloads.
	 */
	pvg_store = store;

	pvg_spi_as_owner_begin(&save_userid, &save_sec);
	PG_TRY();
	{
		TupleDesc	desc;

		n = pvg_spi_read("SELECT subject, purpose, status, valid_until "
						 "FROM privacy_guard.consent_state");
		desc = SPI_tuptable->tupdesc;
		old = MemoryContextSwitchTo(cxt);
		store->consents = palloc0(sizeof(PvgConsentRow) * (n + 1));
		for (i = 0; i < n; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			PvgConsentRow *row = &store->consents[store->nconsents];
			char	   *status = SPI_getvalue(tup, desc, 3);
			bool		isnull;
			Datum		d;

			if (strcmp(status, "granted") == 0)
				row->status = 'g';
			else if (strcmp(status, "objected") == 0)
				row->status = 'o';
			else
				continue;		/* withdrawn: as if never granted */
			row->subject = SPI_getvalue(tup, desc, 1);
			row->subject_len = strlen(row->subject);
			row->purpose = SPI_getvalue(tup, desc, 2);
			d = SPI_getbinval(tup, desc, 4, &isnull);
			row->valid_until = isnull ? DT_NOEND : DatumGetTimestampTz(d);
			store->nconsents++;
		}
		MemoryContextSwitchTo(old);

		/* open requests; a done request's subject has been cleared */
		n = pvg_spi_read("SELECT subject, due, state FROM privacy_guard.erasure_request "
						 "WHERE subject IS NOT NULL");
		desc = SPI_tuptable->tupdesc;
		old = MemoryContextSwitchTo(cxt);
		store->forgets = palloc0(sizeof(PvgForgetRow) * (n + 1));
		for (i = 0; i < n; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			PvgForgetRow *row = &store->forgets[store->nforgets];
			bool		isnull;
			char	   *state = SPI_getvalue(tup, desc, 3);

			if (strcmp(state, "done") == 0)
				continue;
			row->subject = SPI_getvalue(tup, desc, 1);
			row->subject_len = strlen(row->subject);
			row->due = DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull));
			store->nforgets++;
		}
		MemoryContextSwitchTo(old);
	}
	PG_CATCH();
	{
		if (pvg_store == store)
			pvg_store = NULL;
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	pvg_spi_as_owner_end(save_userid, save_sec);

	pvg_retire_context(pvg_store_cxt);
	pvg_store_cxt = cxt;
	return store;
}

/*
 * Parse the canonical text form of an integer ("-12", never "012" or
 * "+12"); only such a key can equal the text form of an integer column.
 */
static bool
pvg_parse_canonical_int(const char *s, int len, int64 *result)
{
	bool		neg = false;
	uint64		v = 0;
	int			i = 0;

	if (len > 0 && s[0] == '-')
	{
		neg = true;
		i = 1;
	}
	if (i >= len || len - i > 19)
		return false;
	if (s[i] == '0' && (len - i > 1 || neg))
		return false;
	for (; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (neg)
	{
		if (v > (uint64) PG_INT64_MAX + 1)
			return false;
		*result = (int64) (0 - v);
	}
	else
	{
		if (v > (uint64) PG_INT64_MAX)
			return false;
		*result = (int64) v;
	}
	return true;
}

/*
 * Merge one subject into a set: an allow entry keeps the latest limit of
 * its grants; "lower" caps it (a forget request's due time), inserting a
 * block entry only into block lists.
 */
static void
pvg_set_merge(PvgSubjectSet *set, const char *subject, int len, TimestampTz limit,
			  bool lower)
{
	TimestampTz *slot;
	bool		found;

	if (set->kind == PVG_KEY_INT)
	{
		int64		key;
		PvgIntEntry *e;

		if (!pvg_parse_canonical_int(subject, len, &key))
			return;
		if (lower && set->allow_list)
		{
			e = pvg_intmap_lookup(set->ints, key);
			found = (e != NULL);
		}
		else
			e = pvg_intmap_insert(set->ints, key, &found);
		if (e == NULL)
			return;
		slot = &e->limit;
	}
	else
	{
		PvgTextKey	key;
		PvgTextEntry *e;

		key.str = subject;
		key.len = len;
		if (lower && set->allow_list)
		{
			e = pvg_textmap_lookup(set->texts, key);
			found = (e != NULL);
		}
		else
			e = pvg_textmap_insert(set->texts, key, &found);
		if (e == NULL)
			return;
		slot = &e->limit;
	}
	if (!found)
		*slot = limit;
	else if (lower)
		*slot = Min(*slot, limit);
	else
		*slot = Max(*slot, limit);
}

static PvgSubjectSet *
pvg_set_build(PvgConsentStore *store, PvgRegistry *reg, int purpose, PvgKeyKind kind)
{
	PvgSubjectSet *set;
	PvgBasis	basis = reg->purposes[purpose].basis;
	int			i;
	int			p;
	int			nchain = 0;
	const char *chain[64];

	set = MemoryContextAllocZero(store->cxt, sizeof(PvgSubjectSet));
	set->purpose = purpose;
	set->kind = kind;
	set->reg_generation = reg->generation;
	set->allow_list = (basis == PVG_BASIS_CONSENT);
	if (kind == PVG_KEY_INT)
		set->ints = pvg_intmap_create(store->cxt, Max(store->nconsents / 4, 64), NULL);
	else
		set->texts = pvg_textmap_create(store->cxt, Max(store->nconsents / 4, 64), NULL);

	/* the purpose and its ancestors: consent to a parent covers its children */
	for (p = purpose; p >= 0 && nchain < lengthof(chain); p = reg->purposes[p].parent)
		chain[nchain++] = reg->purposes[p].name;

	for (i = 0; i < store->nconsents; i++)
	{
		PvgConsentRow *row = &store->consents[i];
		int			c;
		bool		in_chain = false;

		for (c = 0; c < nchain && !in_chain; c++)
			in_chain = (strcmp(row->purpose, chain[c]) == 0);
		if (!in_chain)
			continue;
		if (basis == PVG_BASIS_CONSENT && row->status == 'g')
			pvg_set_merge(set, row->subject, row->subject_len, row->valid_until, false);
		else if ((basis == PVG_BASIS_LEGITIMATE_INTERESTS || basis == PVG_BASIS_PUBLIC_TASK) &&
				 row->status == 'o')
			pvg_set_merge(set, row->subject, row->subject_len, DT_NOBEGIN, true);
	}
	for (i = 0; i < store->nforgets; i++)
	{
		PvgForgetRow *row = &store->forgets[i];

		pvg_set_merge(set, row->subject, row->subject_len, row->due, true);
	}

	set->next = store->sets;
	store->sets = set;
	return set;
}

/*
 * The subject set of a purpose for one key kind, loading the store and
 * building the set when needed.  Valid until the end of the transaction.
 */
PvgSubjectSet *
pvg_subject_set(PvgRegistry *reg, int purpose, PvgKeyKind kind)
{
	PvgConsentStore *store = pvg_store;
	PvgSubjectSet *set;

	/*
	 * A store marked stale while it loads is still used by this statement;
	 * the next statement loads again.
	 */
	if (store == NULL)
		store = pvg_store_load();
	for (set = store->sets; set != NULL; set = set->next)
	{
		if (set->purpose == purpose && set->kind == kind &&
			set->reg_generation == reg->generation)
			return set;
	}
	return pvg_set_build(store, reg, purpose, kind);
}
