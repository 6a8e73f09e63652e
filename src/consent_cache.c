/*-------------------------------------------------------------------------
 *
 * consent_cache.c
 *	  The consent store (per subject: current consents and objections, and
 *	  the earliest due time of an open forget request) and the per-purpose
 *	  subject sets derived from it.
 *
 * The store is loaded in full once, then kept current incrementally: every
 * row of consent_state and erasure_request carries the transaction that
 * last wrote it (changed_xid), and a change made after our last load was
 * written by a transaction not older than that load's snapshot xmin.  So
 * when a change has been seen (see registry.c for the invalidation path),
 * we fetch the subjects written since then, re-read exactly those subjects
 * and patch their entries and every subject set built so far.  A reader
 * pays for a change in proportion to the change, not to the store.
 *
 * Rows deleted or requests closed carry no subject to patch by: when
 * preloaded, a row trigger records their subjects in shared memory
 * (shared_store.c) and the patch re-reads those too; otherwise they make
 * readers reload in full.
 *
 * Two ways to hold the store:
 *	- private (not preloaded, parallel mode, shared memory full): the whole
 *	  store in this backend, reloaded in full on first use, after a registry
 *	  change or a change no patch can follow, and after many incremental
 *	  patches (to return the memory they used);
 *	- shared (preloaded): the store holds only an overlay, the subjects
 *	  written since ov_from, and each set probes the overlay and then a
 *	  shared base (shared_store.c) whose horizon is not older than ov_from.
 *	  A base never holds uncommitted writes (it is read with a snapshot that
 *	  hides the builder's own), so a rollback only drops the overlay.
 * A store replaced is retired, not freed, so a running statement's set stays
 * valid until the end of the transaction (a retired overlay releases its
 * bases then).  Private memory is proportional to the recorded consents,
 * shared-mode memory to the recent changes; never to the rows scanned.
 *
 * registry.c and this file call each other on purpose (see the head of
 * registry.c): subject sets are indexed by the registry's purposes and
 * loaded with its helpers, and its invalidation and transaction callbacks
 * mark this store stale or changed and end its transaction state.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"
#include "subject_set.h"

#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"

/* a full reload after this many patched subjects returns their memory */
#define PVG_MAX_PATCHES 20000

/* ... but an overlay asks for newer shared bases only when its own are older than this */
#define PVG_MIN_BASE_AGE_MS 10000

/* bases are merged (pvg_base_merge) from ones whose tables were read at most this long ago */
#define PVG_MAX_MERGE_AGE_MS 60000

typedef struct PvgGrant
{
	char	   *purpose;
	char		status;			/* 'g'ranted or 'o'bjected */
	TimestampTz valid_until;	/* DT_NOEND when open-ended */
	struct PvgGrant *next;
} PvgGrant;

/* one subject's state, keyed by its text key */
typedef struct PvgSubjectEntry
{
	PvgTextKey	key;
	uint32		hash;
	char		status;			/* simplehash bookkeeping */
	PvgGrant   *grants;
	TimestampTz forget_due;		/* DT_NOEND when no open request */
} PvgSubjectEntry;

#define SH_PREFIX pvg_subjmap
#define SH_ELEMENT_TYPE PvgSubjectEntry
#define SH_KEY_TYPE PvgTextKey
#define SH_KEY key
#define SH_HASH_KEY(tb, k) hash_bytes((const unsigned char *) (k).str, (k).len)
#define SH_EQUAL(tb, a, b) pvg_text_key_equal(a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct PvgConsentStore
{
	MemoryContext cxt;			/* holds the store and its sets */
	pvg_subjmap_hash *subjects;
	PvgSubjectSet *sets;		/* built so far */
	FullTransactionId horizon;	/* xmin of the snapshot last read with */
	int			patches;		/* subjects patched since the full load */
	char	  **purposes;		/* interned purpose names */
	int			npurposes;
	int			maxpurposes;

	/*
	 * Shared mode (preloaded): subjects holds only the subjects written
	 * since ov_from (an overlay over shared bases, see shared_store.c), and
	 * every set has a base whose horizon is not older than ov_from.
	 */
	bool		shared;
	bool		ov_valid;		/* false until the first base is attached */
	FullTransactionId ov_from;
	uint64		need_build;		/* bases must have build_seq > this ... */
	uint64		need_full;		/* ... and full_seq >= this */
	uint64		max_build_seq;	/* of the bases attached */
	TimestampTz newest_built_at;	/* when the newest of them was built */

	/*
	 * Catching up from the change ring (shared mode, see shared_store.c):
	 * the records from ring_pos on, except those of transactions the last
	 * query saw (the snapshot it read with: seen_*).  Set by each query of
	 * the changed subjects that may be followed by the ring.
	 */
	bool		ring_synced;
	bool		seen_none;		/* started from a merged base: apply every record ... */
	uint64		ring_start;		/* ... from here on */
	uint64		ring_pos;
	TransactionId seen_xmin;
	TransactionId seen_xmax;
	TransactionId *seen_xip;
	int			seen_xcnt;

	/*
	 * May serve as the source of merged bases when it grew too big (see
	 * pvg_base_merge): kept current by the ring, never holding our own
	 * uncommitted writes.
	 */
	bool		own_writes;		/* read while our transaction had written consents */
	bool		merge_ok;
} PvgConsentStore;

static PvgConsentStore *pvg_store = NULL;
static MemoryContext pvg_store_cxt = NULL;

/* the overlay just replaced for its size, until the end of the transaction (retired) */
static PvgConsentStore *pvg_merge_store = NULL;
static bool pvg_store_full_stale = true;	/* reload everything */
static bool pvg_store_changed = false;	/* patch what changed */
static PvgLoadStamp pvg_store_stamp;	/* a parallel-mode load's statement */

/*
 * Set when this transaction read the store while it had written something:
 * it may have read its own uncommitted consents, which an abort takes back
 * without anything left to patch by.
 */
static bool pvg_store_read_own_writes = false;

/* this transaction deleted consents or closed requests: bases cannot serve it */
static bool pvg_store_full_change = false;

/* an overlay grown too big asks for bases newer than this */
static uint64 pvg_need_build = 0;

/* this backend's patches: served by the change ring, or by querying the tables */
static int64 pvg_patches_ring = 0;
static int64 pvg_patches_queried = 0;
static int64 pvg_bases_merged = 0;

static PvgSubjectSet *pvg_subject_set_local(PvgRegistry *reg, int purpose, PvgKeyKind kind);
static PvgSubjectSet *pvg_subject_set_worker(PvgRegistry *reg, int purpose, PvgKeyKind kind);
static PvgSubjectSet *pvg_subject_set_anew(PvgRegistry *reg, int purpose, PvgKeyKind kind);
static PvgSubjectSet *pvg_subject_set_shared(struct PvgConsentStore *store, PvgRegistry *reg,
											 int purpose, PvgKeyKind kind);
static PvgSubjectSet *pvg_set_over_base(struct PvgConsentStore *store, PvgRegistry *reg,
										int purpose, PvgKeyKind kind, const PvgBaseImage *base);

void
pvg_consent_mark_stale(void)
{
	pvg_store_full_stale = true;
	pvg_store_stamp.valid = false;
}

/* A (sub)transaction aborted: forget what it may have let into the store. */
void
pvg_consent_abort(void)
{
	if (pvg_store_read_own_writes)
		pvg_store_full_stale = true;
}

void
pvg_consent_end_xact(void)
{
	pvg_merge_store = NULL;		/* its memory is freed with the retired contexts */
	pvg_store_read_own_writes = false;
	pvg_store_full_change = false;
}

/*
 * This transaction deletes consents or closes forget requests (changes no
 * patch can follow): shared bases, which never hold uncommitted changes,
 * cannot serve it until it ends, and other backends need bases read after
 * its commit (counted in shared_store.c).
 */
void
pvg_consent_note_full_change(void)
{
	pvg_store_full_change = true;
	pvg_store_full_stale = true;
	pvg_shared_note_full_change();
}

/* Note a read of the store, and whether it may include our own writes. */
static void
pvg_store_note_read(void)
{
	if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
		pvg_store_read_own_writes = true;
}

void
pvg_consent_mark_changed(void)
{
	pvg_store_changed = true;
	pvg_store_stamp.valid = false;
}

/* The snapshot's xmin as a full transaction id (it is recent, so in this epoch or the last). */
static FullTransactionId
pvg_snapshot_horizon(Snapshot snap)
{
	FullTransactionId next = ReadNextFullTransactionId();
	uint32		epoch = EpochFromFullTransactionId(next);

	if (snap->xmin > XidFromFullTransactionId(next))
		epoch--;
	return FullTransactionIdFromEpochAndXid(epoch, snap->xmin);
}

/*
 * Parse the canonical text form of an integer ("-12", never "012" or
 * "+12"); only such a key can equal the text form of an integer column.
 */
bool
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

/* the purpose of a set and its ancestors: consent to a parent covers its children */
static int
pvg_set_chain(PvgRegistry *reg, int purpose, const char **chain, int max)
{
	int			n = 0;
	int			p;

	for (p = purpose; p >= 0 && n < max; p = reg->purposes[p].parent)
		chain[n++] = reg->purposes[p].name;
	return n;
}

/*
 * A subject's limit in a set (see subject_set.h), or false when the set
 * holds no entry for it: rule 7 (consent or objection, by the purpose's
 * legal basis), capped by rule 5 (the earliest due time of an open forget
 * request).
 */
static bool
pvg_subject_limit(PvgSubjectEntry *e, PvgBasis basis, const char **chain, int nchain,
				  TimestampTz *limit)
{
	PvgGrant   *g;
	bool		found = false;
	TimestampTz best = DT_NOBEGIN;

	for (g = e->grants; g != NULL; g = g->next)
	{
		int			c;
		bool		in_chain = false;

		for (c = 0; c < nchain && !in_chain; c++)
			in_chain = (strcmp(g->purpose, chain[c]) == 0);
		if (!in_chain)
			continue;
		if (basis == PVG_BASIS_CONSENT && g->status == 'g')
		{
			found = true;
			best = Max(best, g->valid_until);
		}
		else if ((basis == PVG_BASIS_LEGITIMATE_INTERESTS || basis == PVG_BASIS_PUBLIC_TASK) &&
				 g->status == 'o')
		{
			*limit = DT_NOBEGIN;	/* objected: never visible */
			return true;
		}
	}
	if (basis == PVG_BASIS_CONSENT)
	{
		/* allow list: an entry only for a subject with consent */
		if (!found)
			return false;
		*limit = Min(best, e->forget_due);
		return true;
	}
	/* block list: an entry only for a subject to be forgotten */
	*limit = e->forget_due;
	return e->forget_due != DT_NOEND;
}

/* Put the subject's entry into one set, or take it out. */
static void
pvg_set_apply(PvgSubjectSet *set, PvgRegistry *reg, PvgSubjectEntry *e, bool present)
{
	const char *chain[64];
	int			nchain = pvg_set_chain(reg, set->purpose, chain, lengthof(chain));
	TimestampTz limit = 0;
	bool		has;
	bool		found;

	has = present && pvg_subject_limit(e, reg->purposes[set->purpose].basis, chain, nchain,
									   &limit);
	if (set->base != NULL)
	{
		/* an overlay: an absent subject masks the base's entry */
		if (!has)
			limit = set->allow_list ? DT_NOBEGIN : DT_NOEND;
		if (set->kind == PVG_KEY_INT)
		{
			int64		key;

			if (pvg_parse_canonical_int(e->key.str, e->key.len, &key))
				pvg_intmap_insert(set->ints, key, &found)->limit = limit;
		}
		else
			pvg_textmap_insert(set->texts, e->key, &found)->limit = limit;
		return;
	}
	if (set->kind == PVG_KEY_INT)
	{
		int64		key;
		uint64		off;
		bool		in_bits;

		if (!pvg_parse_canonical_int(e->key.str, e->key.len, &key))
			return;
		off = (uint64) key - (uint64) set->bits_base;
		in_bits = set->bits != NULL && off < set->bits_len;
		if (in_bits)
			set->bits[off >> 6] &= ~(UINT64CONST(1) << (off & 63));
		pvg_intmap_delete(set->ints, key);
		if (!has)
			return;
		if (in_bits && pvg_set_unconditional(set, limit))
			set->bits[off >> 6] |= UINT64CONST(1) << (off & 63);
		else
			pvg_intmap_insert(set->ints, key, &found)->limit = limit;
	}
	else
	{
		if (has)
			pvg_textmap_insert(set->texts, e->key, &found)->limit = limit;
		else
			pvg_textmap_delete(set->texts, e->key);
	}
}

static PvgSubjectEntry *
pvg_store_entry(PvgConsentStore *store, const char *subject)
{
	PvgTextKey	key;
	PvgSubjectEntry *e;
	bool		found;

	key.str = subject;
	key.len = strlen(subject);
	e = pvg_subjmap_insert(store->subjects, key, &found);
	if (!found)
	{
		e->grants = NULL;
		e->forget_due = DT_NOEND;
	}
	return e;
}

/* A copy of a text datum's contents as a C string. */
static char *
pvg_text_copy(Datum d, int *len)
{
	text	   *t = DatumGetTextPP(d);
	int			n = VARSIZE_ANY_EXHDR(t);
	char	   *s = palloc(n + 1);

	memcpy(s, VARDATA_ANY(t), n);
	s[n] = '\0';
	if (len)
		*len = n;
	return s;
}

/*
 * The purpose names of a store, shared by all its grants: there are few
 * purposes and many grants.
 */
static char *
pvg_store_purpose_name(PvgConsentStore *store, const char *name, int n)
{
	int			i;

	for (i = 0; i < store->npurposes; i++)
	{
		if (strlen(store->purposes[i]) == n && memcmp(store->purposes[i], name, n) == 0)
			return store->purposes[i];
	}
	if (store->npurposes == store->maxpurposes)
	{
		store->maxpurposes = Max(store->maxpurposes * 2, 16);
		store->purposes = store->purposes
			? repalloc(store->purposes, sizeof(char *) * store->maxpurposes)
			: palloc(sizeof(char *) * store->maxpurposes);
	}
	store->purposes[store->npurposes] = pnstrdup(name, n);
	return store->purposes[store->npurposes++];
}

static char *
pvg_store_purpose(PvgConsentStore *store, Datum d)
{
	text	   *t = DatumGetTextPP(d);

	return pvg_store_purpose_name(store, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

/*
 * Add the rows of the current SPI result to the store, in the store's
 * memory: (subject, purpose, status letter, valid_until, NULL) for a consent
 * or objection, (subject, NULL, 'f', NULL, due) for an open forget request.
 */
static void
pvg_store_add_rows(PvgConsentStore *store)
{
	TupleDesc	desc = SPI_tuptable->tupdesc;
	uint64		i;

	Assert(desc->natts == 5);
	for (i = 0; i < SPI_processed; i++)
	{
		Datum		values[5];
		bool		nulls[5];
		text	   *status;
		char		letter;
		PvgSubjectEntry *e;
		PvgGrant   *g;

		CHECK_FOR_INTERRUPTS();

		heap_deform_tuple(SPI_tuptable->vals[i], desc, values, nulls);
		status = DatumGetTextPP(values[2]);
		letter = VARSIZE_ANY_EXHDR(status) > 0 ? *VARDATA_ANY(status) : '\0';
		if (letter == 'f')
		{
			/* an open forget request */
			e = pvg_store_entry(store, pvg_text_copy(values[0], NULL));
			e->forget_due = Min(e->forget_due, DatumGetTimestampTz(values[4]));
			continue;
		}
		if (letter != 'g' && letter != 'o')
			continue;
		e = pvg_store_entry(store, pvg_text_copy(values[0], NULL));
		g = palloc(sizeof(PvgGrant));
		g->status = letter;
		g->purpose = pvg_store_purpose(store, values[1]);
		g->valid_until = nulls[3] ? DT_NOEND : DatumGetTimestampTz(values[3]);
		g->next = e->grants;
		e->grants = g;
	}
}

/*
 * Read the whole store (every consent and objection, every open forget
 * request) under snap into store, in the store's memory.  SPI connected.
 */
static void
pvg_store_read(PvgConsentStore *store, Snapshot snap)
{
	MemoryContext old;

	pvg_spi_read_snapshot("SELECT subject, purpose, pg_catalog.left(status, 1), valid_until, "
						  "NULL::pg_catalog.timestamptz "
						  "FROM privacy_guard.consent_state "
						  "WHERE status OPERATOR(pg_catalog.<>) 'withdrawn' "
						  "UNION ALL "
						  "SELECT subject, NULL, 'f', NULL, due "
						  "FROM privacy_guard.erasure_request "
						  "WHERE subject IS NOT NULL "
						  "AND state OPERATOR(pg_catalog.<>) 'done'",
						  0, NULL, NULL, snap);
	old = MemoryContextSwitchTo(store->cxt);
	store->subjects = pvg_subjmap_create(store->cxt, Max(SPI_processed, 64), NULL);
	pvg_store_add_rows(store);
	MemoryContextSwitchTo(old);
}

/*
 * Read the state of the given subjects (a text[]) under snap, in the rows
 * pvg_store_add_rows takes: their consents and objections and their open
 * forget requests.  SPI connected.  A patch re-reads changed subjects with
 * it, and a committing writer the subjects it wrote (consent_changes.c).
 */
uint64
pvg_spi_read_subject_states(Datum subjects, Snapshot snap)
{
	Oid			argtype = TEXTARRAYOID;

	return pvg_spi_read_snapshot("SELECT subject, purpose, pg_catalog.left(status, 1), valid_until, "
								 "NULL::pg_catalog.timestamptz "
								 "FROM privacy_guard.consent_state "
								 "WHERE subject OPERATOR(pg_catalog.=) ANY ($1) "
								 "AND status OPERATOR(pg_catalog.<>) 'withdrawn' "
								 "UNION ALL "
								 "SELECT subject, NULL, 'f', NULL, due "
								 "FROM privacy_guard.erasure_request "
								 "WHERE subject OPERATOR(pg_catalog.=) ANY ($1) "
								 "AND state OPERATOR(pg_catalog.<>) 'done'",
								 1, &argtype, &subjects, snap);
}

/* Read the whole store; returns it.  Marks it fresh before reading (see below). */
static PvgConsentStore *
pvg_store_load(void)
{
	MemoryContext cxt;
	PvgConsentStore *store;
	Oid			save_userid;
	int			save_sec;

	cxt = AllocSetContextCreate(TopMemoryContext, "privacy_guard consent store",
								ALLOCSET_DEFAULT_SIZES);
	store = MemoryContextAllocZero(cxt, sizeof(PvgConsentStore));
	store->cxt = cxt;

	/*
	 * Mark the store fresh before reading it: an invalidation that arrives
	 * while we read (a commit our snapshot may have missed) marks it stale
	 * again, and the next statement catches up.  A load in parallel mode
	 * (with the statement's snapshot) serves its statement only.
	 */
	pvg_store_full_stale = !pvg_load_is_current();
	pvg_load_stamp_set(&pvg_store_stamp);
	pvg_store_changed = false;
	pvg_store_note_read();

	pvg_as_extension_owner_begin(&save_userid, &save_sec);
	PG_TRY();
	{
		Snapshot	snap = RegisterSnapshot(pvg_load_snapshot());

		store->horizon = pvg_snapshot_horizon(snap);
		pvg_store_read(store, snap);
		UnregisterSnapshot(snap);
	}
	PG_CATCH();
	{
		pvg_store_full_stale = true;
		pvg_store_stamp.valid = false;
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	pvg_as_extension_owner_end(save_userid, save_sec);

	pvg_retire_context(pvg_store_cxt);
	pvg_store_cxt = cxt;
	pvg_store = store;
	return store;
}

/*
 * What a snapshot saw, for pvg_store_seen: its xmin, xmax and running
 * transactions, and own (when valid) counted as running too.
 */
static void
pvg_store_set_seen(PvgConsentStore *store, TransactionId xmin, TransactionId xmax,
				   const TransactionId *xip, int xcnt, TransactionId own)
{
	if (store->seen_xip != NULL)
		pfree(store->seen_xip);
	store->seen_xip = MemoryContextAlloc(store->cxt, sizeof(TransactionId) * (xcnt + 1));
	memcpy(store->seen_xip, xip, sizeof(TransactionId) * xcnt);
	store->seen_xcnt = xcnt;
	if (TransactionIdIsValid(own))
		store->seen_xip[store->seen_xcnt++] = own;
	store->seen_xmin = xmin;
	store->seen_xmax = xmax;
}

/*
 * After a query of the changed subjects read with snap: the ring records
 * from head (read before snap was taken) on are what the next patches
 * apply, less those of transactions snap saw.  Our own transaction counts
 * as unseen: what it writes after snap arrives by its own records.
 */
static void
pvg_store_ring_sync(PvgConsentStore *store, uint64 head, Snapshot snap)
{
	pvg_store_set_seen(store, snap->xmin, snap->xmax, snap->xip, snap->xcnt,
					   GetTopTransactionIdIfAny());
	store->ring_pos = head;
	store->ring_synced = true;
	store->seen_none = false;
}


/* Whether the last query saw the writes of a committed transaction. */
static bool
pvg_store_seen(PvgConsentStore *store, TransactionId xid)
{
	int			i;

	if (store->seen_none)
		return false;
	if (TransactionIdPrecedes(xid, store->seen_xmin))
		return true;
	if (TransactionIdFollowsOrEquals(xid, store->seen_xmax))
		return false;
	for (i = 0; i < store->seen_xcnt; i++)
	{
		if (TransactionIdEquals(store->seen_xip[i], xid))
			return false;
	}
	return true;
}

/*
 * Catch up from the change ring: put the state of each subject the records
 * carry into the store and every set, in ring order (so each subject ends
 * with its newest state).  False, having changed nothing, when the ring
 * cannot serve: not synced, our own transaction wrote consents or requests
 * (it publishes them only when it commits), records overwritten, or a
 * record that asks readers to query.
 */
static bool
pvg_store_ring_patch(PvgConsentStore *store, PvgRegistry *reg)
{
	PvgChangeRec *recs;
	uint64		to;
	int			n;
	int			i;

	if (!store->ring_synced || pvg_changes_written())
		return false;
	n = pvg_shared_changes_read(store->ring_pos, &to, &recs);
	if (n < 0)
		return false;
	for (i = 0; i < n; i++)
	{
		if (recs[i].query && !pvg_store_seen(store, recs[i].xid))
		{
			pfree(recs);
			return false;
		}
	}

	pvg_store_changed = false;
	PG_TRY();
	{
		MemoryContext old = MemoryContextSwitchTo(store->cxt);

		for (i = 0; i < n; i++)
		{
			PvgChangeRec *rec = &recs[i];
			PvgTextKey	key;
			PvgSubjectEntry *e;
			PvgSubjectSet *set;
			int			off = 0;

			CHECK_FOR_INTERRUPTS();

			if (rec->query || pvg_store_seen(store, rec->xid))
				continue;
			key.str = rec->key;
			key.len = rec->keylen;
			e = pvg_subjmap_lookup(store->subjects, key);
			if (e == NULL)
				e = pvg_store_entry(store, pnstrdup(rec->key, rec->keylen));
			e->grants = NULL;
			e->forget_due = rec->forget_due;
			while (off < rec->datalen)
			{
				PvgGrant   *g = palloc(sizeof(PvgGrant));
				int			plen = (unsigned char) rec->data[off + 1];

				g->status = rec->data[off];
				memcpy(&g->valid_until, rec->data + off + 2, sizeof(TimestampTz));
				g->purpose = pvg_store_purpose_name(store, rec->data + off + 2 + sizeof(TimestampTz),
													plen);
				g->next = e->grants;
				e->grants = g;
				off += 2 + sizeof(TimestampTz) + plen;
			}
			for (set = store->sets; set != NULL; set = set->next)
			{
				if (set->reg_generation == reg->generation)
					pvg_set_apply(set, reg, e, true);
			}
			store->patches++;
		}
		MemoryContextSwitchTo(old);
	}
	PG_CATCH();
	{
		/* a half-patched store is not trusted */
		pvg_store_full_stale = true;
		pvg_store_stamp.valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (recs != NULL)
		pfree(recs);
	store->ring_pos = to;
	pvg_patches_ring++;
	return true;
}

/*
 * Bring the store up to date with the subjects written since from (its
 * horizon, or an older base's): re-read those subjects whole and patch them
 * into every set.  The subjects come from the rows' changed_xid and, for
 * rows deleted or requests closed (no row names them any more), from the
 * tombstones in shared memory.  Returns false when some tombstones were
 * already overwritten, or (rebase) the changes are too many to patch.
 * Reads with the newest snapshot, or with given (a parallel query's view,
 * see parallel.c), then without asking for newer bases.
 */
static bool
pvg_store_query(PvgConsentStore *store, PvgRegistry *reg, FullTransactionId from, Snapshot given,
				bool *rebase_out)
{
	Oid			save_userid;
	int			save_sec;
	bool		complete = true;
	volatile bool rebase = false;
	uint64		ring_head;

	pvg_store_changed = false;
	pvg_store_note_read();
	pvg_patches_queried++;
	if (pvg_changes_written())
		store->own_writes = true;

	/* before the snapshot: records from here on are of transactions it may miss */
	ring_head = pvg_shared_changes_head();
	pvg_as_extension_owner_begin(&save_userid, &save_sec);
	PG_TRY();
	{
		Snapshot	snap = RegisterSnapshot(given ? given : GetLatestSnapshot());
		FullTransactionId horizon = pvg_snapshot_horizon(snap);
		Oid			argtypes[3];
		Datum		args[3];
		Datum		subjects = (Datum) 0;
		bool		isnull = true;
		bool		limited;
		MemoryContext old;
		uint64		nchanged;
		ArrayType  *removed = NULL;

		/*
		 * Removals recorded before the snapshot was taken are in the ring
		 * now; later ones belong to transactions the next patch covers.
		 */
		complete = pvg_shared_removed_since(from, &removed);

		/*
		 * Which subjects were written since the last read.  An overlay over
		 * an old base asks for a newer one rather than take in a bulk change
		 * (an import of a million consents would otherwise be copied into
		 * every session): then the list stops at PVG_MAX_PATCHES.
		 */
		argtypes[0] = XID8OID;
		args[0] = FullTransactionIdGetDatum(from);
		argtypes[1] = TEXTARRAYOID;
		args[1] = removed ? PointerGetDatum(removed) : (Datum) 0;
		argtypes[2] = INT8OID;
		args[2] = Int64GetDatum(PVG_MAX_PATCHES);
		limited = store->shared && given == NULL &&
			TimestampDifferenceExceeds(store->newest_built_at, GetCurrentTimestamp(),
									   PVG_MIN_BASE_AGE_MS);
		if (complete)
		{
			SPIPlanPtr	plan;
			bool		cnull;

			plan = pvg_spi_plan("SELECT pg_catalog.array_agg(DISTINCT s.subject), pg_catalog.count(*) FROM ("
								"SELECT c.subject FROM privacy_guard.consent_state c "
								"WHERE c.changed_xid OPERATOR(pg_catalog.>=) $1 "
								"UNION ALL "
								"SELECT r.subject FROM privacy_guard.erasure_request r "
								"WHERE r.changed_xid OPERATOR(pg_catalog.>=) $1 "
								"AND r.subject IS NOT NULL "
								"UNION ALL "
								"SELECT pg_catalog.unnest($2) "
								"LIMIT $3) s(subject)",
								3, argtypes);
			if (SPI_execute_snapshot(plan, args, removed ? (limited ? "   " : "  n") : (limited ? " n " : " nn"),
									 snap, InvalidSnapshot, true, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "reading the changed subjects failed");
			subjects = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (limited &&
				DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
											&cnull)) >= PVG_MAX_PATCHES)
			{
				rebase = true;
				complete = false;
				isnull = true;
			}
		}
		if (!isnull)
		{
			Datum	   *keys;
			bool	   *nulls;
			int			nkeys;
			int			k;

			old = MemoryContextSwitchTo(store->cxt);
			subjects = PointerGetDatum(PG_DETOAST_DATUM_COPY(subjects));
			deconstruct_array(DatumGetArrayTypeP(subjects), TEXTOID, -1, false, TYPALIGN_INT,
							  &keys, &nulls, &nkeys);

			/* forget what we knew of them ... */
			for (k = 0; k < nkeys; k++)
			{
				PvgSubjectEntry *e = pvg_store_entry(store, TextDatumGetCString(keys[k]));

				e->grants = NULL;
				e->forget_due = DT_NOEND;
			}
			MemoryContextSwitchTo(old);
			nchanged = nkeys;

			/* ... and read them again: their consents and open requests in one go */
			pvg_spi_read_subject_states(subjects, snap);
			old = MemoryContextSwitchTo(store->cxt);
			pvg_store_add_rows(store);

			/* patch every set built so far */
			for (k = 0; k < nkeys; k++)
			{
				PvgTextKey	key;
				PvgSubjectEntry *e;
				PvgSubjectSet *set;

				key.str = TextDatumGetCString(keys[k]);
				key.len = strlen(key.str);
				e = pvg_subjmap_lookup(store->subjects, key);
				for (set = store->sets; set != NULL; set = set->next)
				{
					if (set->reg_generation == reg->generation)
						pvg_set_apply(set, reg, e, true);
				}
			}
			MemoryContextSwitchTo(old);
			store->patches += nchanged;
		}
		if (complete)
		{
			store->horizon = horizon;
			if (store->shared && given == NULL)
				pvg_store_ring_sync(store, ring_head, snap);
			else
				store->ring_synced = false;
		}
		UnregisterSnapshot(snap);
	}
	PG_CATCH();
	{
		/* a half-patched store is not trusted */
		pvg_store_full_stale = true;
		pvg_store_stamp.valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	pvg_as_extension_owner_end(save_userid, save_sec);
	*rebase_out = rebase;
	return complete;
}

/*
 * Bring the store up to date: from the change ring when it can serve, else
 * by querying the subjects written since from (see above).  Returns false
 * when the store is marked stale and must be read anew.
 */
static bool
pvg_store_patch(PvgConsentStore *store, PvgRegistry *reg, FullTransactionId from, Snapshot given)
{
	bool		complete = true;
	bool		rebase = false;

	/* usually the change ring has what changed since the last patch */
	if (!(store->shared && given == NULL && FullTransactionIdEquals(from, store->horizon) &&
		  pvg_store_ring_patch(store, reg)))
		complete = pvg_store_query(store, reg, from, given, &rebase);

	if (!complete)
	{
		/*
		 * Read anew: over a newer base than ours (a bulk change: any newer
		 * one will do, so sessions share one build), or one read from now
		 * on (removals missed), or as a private copy.
		 */
		pvg_store_full_stale = true;
		pvg_need_build = Max(pvg_need_build,
							 rebase ? store->max_build_seq : pvg_shared_build_seq());
		return false;
	}

	if (store->shared)
	{
		/*
		 * An overlay this big asks for newer bases, unless its bases are
		 * new (their horizon then is held back by an old transaction, and
		 * a newer base would not be smaller).
		 */
		if (store->subjects->members > PVG_MAX_PATCHES &&
			TimestampDifferenceExceeds(store->newest_built_at, GetCurrentTimestamp(),
									   PVG_MIN_BASE_AGE_MS))
		{
			pvg_store_full_stale = true;
			pvg_need_build = Max(pvg_need_build, store->max_build_seq);
			store->merge_ok = store->ring_synced && !store->own_writes && given == NULL;
		}
	}
	else if (store->patches > PVG_MAX_PATCHES)
		pvg_store_full_stale = true;
	return true;
}

/* Put every subject of the store into a set (or leave it out). */
static void
pvg_set_apply_all(PvgConsentStore *store, PvgRegistry *reg, PvgSubjectSet *set)
{
	pvg_subjmap_iterator it;
	PvgSubjectEntry *e;

	pvg_subjmap_start_iterate(store->subjects, &it);
	while ((e = pvg_subjmap_iterate(store->subjects, &it)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		pvg_set_apply(set, reg, e, true);
	}
}

/*
 * Fill an integer set.  Keys whose answer does not depend on the time go
 * into the bitmap when they are dense enough (see subject_set.h); the rest
 * into a hash table sized for what it holds, so that a small set (a block
 * list with a few forget requests) stays in cache.
 */
static void
pvg_set_fill_ints(PvgConsentStore *store, PvgRegistry *reg, PvgSubjectSet *set)
{
	const char *chain[64];
	int			nchain = pvg_set_chain(reg, set->purpose, chain, lengthof(chain));
	PvgBasis	basis = reg->purposes[set->purpose].basis;
	pvg_subjmap_iterator it;
	PvgSubjectEntry *e;
	int64	   *keys;
	TimestampTz *limits;
	uint32		n = 0;
	uint32		nfixed = 0;
	int64		lo = PG_INT64_MAX;
	int64		hi = PG_INT64_MIN;
	uint32		i;

	keys = palloc(sizeof(int64) * (store->subjects->members + 1));
	limits = palloc(sizeof(TimestampTz) * (store->subjects->members + 1));
	pvg_subjmap_start_iterate(store->subjects, &it);
	while ((e = pvg_subjmap_iterate(store->subjects, &it)) != NULL)
	{
		TimestampTz limit;

		CHECK_FOR_INTERRUPTS();

		if (!pvg_parse_canonical_int(e->key.str, e->key.len, &keys[n]) ||
			!pvg_subject_limit(e, basis, chain, nchain, &limit))
			continue;
		limits[n] = limit;
		if (pvg_set_unconditional(set, limit))
		{
			nfixed++;
			lo = Min(lo, keys[n]);
			hi = Max(hi, keys[n]);
		}
		n++;
	}

	/* a bitmap pays when it is at most 64 bits per key, or small anyway */
	if (nfixed >= 256 &&
		(uint64) hi - (uint64) lo < Max((uint64) nfixed * 64, UINT64CONST(1) << 20))
	{
		set->bits_base = lo;
		set->bits_len = (uint64) hi - (uint64) lo + 1;
		set->bits = palloc0(sizeof(uint64) * ((set->bits_len + 63) / 64));
	}
	set->ints = pvg_intmap_create(store->cxt, Max(set->bits ? n - nfixed : n, 64), NULL);
	for (i = 0; i < n; i++)
	{
		uint64		off = (uint64) keys[i] - (uint64) set->bits_base;
		bool		found;

		CHECK_FOR_INTERRUPTS();

		if (set->bits != NULL && off < set->bits_len && pvg_set_unconditional(set, limits[i]))
			set->bits[off >> 6] |= UINT64CONST(1) << (off & 63);
		else
			pvg_intmap_insert(set->ints, keys[i], &found)->limit = limits[i];
	}
	pfree(keys);
	pfree(limits);
}

/* Build the set of a purpose for one key kind, in the store's memory. */
static PvgSubjectSet *
pvg_set_build(PvgConsentStore *store, PvgRegistry *reg, int purpose, PvgKeyKind kind)
{
	MemoryContext old = MemoryContextSwitchTo(store->cxt);
	PvgSubjectSet *set;

	set = palloc0(sizeof(PvgSubjectSet));
	set->purpose = purpose;
	set->kind = kind;
	set->reg_generation = reg->generation;
	set->allow_list = (reg->purposes[purpose].basis == PVG_BASIS_CONSENT);

	if (kind == PVG_KEY_INT)
		pvg_set_fill_ints(store, reg, set);
	else
	{
		set->texts = pvg_textmap_create(store->cxt, 64, NULL);
		pvg_set_apply_all(store, reg, set);
	}

	set->next = store->sets;
	store->sets = set;
	MemoryContextSwitchTo(old);
	return set;
}

/*
 * The subject set of a purpose for one key kind from a private copy of the
 * whole store (not preloaded, in parallel mode, or when the shared store
 * is full), loading or patching it and building the set when needed.
 */
static PvgSubjectSet *
pvg_subject_set_local(PvgRegistry *reg, int purpose, PvgKeyKind kind)
{
	PvgConsentStore *store = pvg_store;
	PvgSubjectSet *set;

	if (store == NULL || store->shared ||
		(pvg_store_full_stale && !pvg_load_stamp_serves(&pvg_store_stamp)) ||
		(pvg_store_changed && !pvg_load_is_current()))
		store = pvg_store_load();
	else if (pvg_store_changed && !pvg_store_patch(store, reg, store->horizon, NULL))
		store = pvg_store_load();

	for (set = store->sets; set != NULL; set = set->next)
	{
		if (set->purpose == purpose && set->kind == kind &&
			set->reg_generation == reg->generation)
			return set;
	}
	return pvg_set_build(store, reg, purpose, kind);
}

/* what a base's build needs to know */
typedef struct PvgBaseArg
{
	PvgRegistry *reg;
	int			purpose;
	PvgKeyKind	kind;
	PvgSubjectSet *merge_set;	/* or build from this set and its overlay */
	uint64		merge_ring_from;
} PvgBaseArg;

/*
 * The signature of a set's content: the tables it is read from (a dropped
 * and re-created extension has new ones), the purpose's basis and the names
 * of the purpose and its ancestors (pvg_subject_limit reads nothing else of
 * the registry), so a base means the same in every backend.
 */
static void
pvg_set_signature(PvgRegistry *reg, int purpose, StringInfo sig)
{
	const char *chain[64];
	int			nchain = pvg_set_chain(reg, purpose, chain, lengthof(chain));
	int			c;

	appendStringInfo(sig, "%u,%u;%d;", reg->store_relids[0], reg->store_relids[1],
					 (int) reg->purposes[purpose].basis);
	for (c = 0; c < nchain; c++)
		appendStringInfo(sig, "%d:%s;", (int) strlen(chain[c]), chain[c]);
}

/*
 * A new base merged from an old one and the overlay that grew too big over
 * it, instead of read from the tables (which takes about a second per
 * million consents, and at a thousand changes a second would be needed
 * every twenty seconds): the old base's entries, less the subjects the
 * overlay holds, plus the overlay's.  The overlay was current up to a
 * change ring position and held no uncommitted writes, so the merged base
 * is the committed state up to that position: a new overlay over it starts
 * there and applies every record from there on (pvg_store_ring_start).
 * For a reader that cannot, it keeps the old base's horizon, from which a
 * query of the changed subjects still finds all it needs.
 */
static void
pvg_base_merge(PvgBaseBuild *b, PvgSubjectSet *set, uint64 ring_from)
{
	const PvgBaseImage *old = set->base;
	const char *img = (const char *) old;
	TimestampTz absent = set->allow_list ? DT_NOBEGIN : DT_NOEND;
	TimestampTz fixed = set->allow_list ? DT_NOEND : DT_NOBEGIN;

	b->allow_list = old->allow_list;
	b->horizon = old->horizon;
	b->full_seq = old->full_seq;
	b->ring_valid = true;
	b->ring_from = ring_from;
	b->merged = true;
	b->read_at = old->read_at;
	if (set->kind == PVG_KEY_INT)
	{
		const uint64 *bits = (const uint64 *) (img + old->bits_off);
		const PvgBaseInt *slots = (const PvgBaseInt *) (img + old->int_off);
		uint64		nbits = 0;
		uint64		w;
		uint64		i;
		pvg_intmap_iterator it;
		PvgIntEntry *e;

		for (w = 0; w < (old->bits_len + 63) / 64; w++)
			nbits += pg_popcount64(bits[w]);
		b->ints = palloc(sizeof(PvgBaseEntryInt) *
						 (nbits + old->nints + set->ints->members + 2));
		for (w = 0; w < (old->bits_len + 63) / 64; w++)
		{
			uint64		word = bits[w];

			CHECK_FOR_INTERRUPTS();
			while (word != 0)
			{
				int			bit = pg_rightmost_one_pos64(word);
				int64		key = (int64) ((uint64) old->bits_base + w * 64 + bit);

				word &= word - 1;
				if (pvg_intmap_lookup(set->ints, key) == NULL)
				{
					b->ints[b->nints].key = key;
					b->ints[b->nints].limit = fixed;
					b->nints++;
				}
			}
		}
		if (old->has_min_key && pvg_intmap_lookup(set->ints, PG_INT64_MIN) == NULL)
		{
			b->ints[b->nints].key = PG_INT64_MIN;
			b->ints[b->nints].limit = old->min_key_limit;
			b->nints++;
		}
		for (i = 0; old->nints > 0 && i <= old->int_mask; i++)
		{
			if (slots[i].key == PG_INT64_MIN || pvg_intmap_lookup(set->ints, slots[i].key) != NULL)
				continue;
			b->ints[b->nints].key = slots[i].key;
			b->ints[b->nints].limit = slots[i].limit;
			b->nints++;
		}
		pvg_intmap_start_iterate(set->ints, &it);
		while ((e = pvg_intmap_iterate(set->ints, &it)) != NULL)
		{
			if (e->limit == absent)
				continue;
			b->ints[b->nints].key = e->key;
			b->ints[b->nints].limit = e->limit;
			b->nints++;
		}
	}
	else
	{
		const PvgBaseText *slots = (const PvgBaseText *) (img + old->text_off);
		uint64		i;
		pvg_textmap_iterator it;
		PvgTextEntry *e;

		b->texts = palloc(sizeof(PvgBaseEntryText) * (old->ntexts + set->texts->members + 1));
		for (i = 0; old->ntexts > 0 && i <= old->text_mask; i++)
		{
			PvgTextKey	key;

			CHECK_FOR_INTERRUPTS();
			if (slots[i].str_off == 0)
				continue;
			key.str = img + old->blob_off + slots[i].str_off;
			key.len = slots[i].len;
			if (pvg_textmap_lookup(set->texts, key) != NULL)
				continue;
			b->texts[b->ntexts].str = key.str;
			b->texts[b->ntexts].len = key.len;
			b->texts[b->ntexts].limit = slots[i].limit;
			b->ntexts++;
		}
		pvg_textmap_start_iterate(set->texts, &it);
		while ((e = pvg_textmap_iterate(set->texts, &it)) != NULL)
		{
			if (e->limit == absent)
				continue;
			b->texts[b->ntexts].str = e->key.str;
			b->texts[b->ntexts].len = e->key.len;
			b->texts[b->ntexts].limit = e->limit;
			b->ntexts++;
		}
	}
}

/*
 * The set of the overlay just replaced for its size that a new base for
 * the purpose and kind may be merged from, or NULL: over a base of the same
 * registry whose tables were read not long ago (a merged base keeps the
 * old one's horizon, which readers that cannot follow the ring query
 * from), no change since that no ring record describes, the ring still
 * holding every record since the overlay was current, and, unless the
 * overlay was itself started from the ring, no transaction it saw still
 * about to publish its records (a new overlay applying them would go back
 * to an older state of their subjects in the meantime).
 */
static PvgSubjectSet *
pvg_merge_source(PvgRegistry *reg, int purpose, PvgKeyKind kind)
{
	PvgConsentStore *src = pvg_merge_store;
	PvgSubjectSet *set;

	if (src == NULL || pvg_changes_written())
		return NULL;
	for (set = src->sets; set != NULL; set = set->next)
	{
		if (set->purpose == purpose && set->kind == kind &&
			set->reg_generation == reg->generation && set->base != NULL)
			break;
	}
	if (set == NULL || set->base->full_seq != pvg_shared_full_seq() ||
		TimestampDifferenceExceeds(set->base->read_at, GetCurrentTimestamp(), PVG_MAX_MERGE_AGE_MS) ||
		!pvg_shared_changes_clear(src->ring_pos))
		return NULL;
	if (!src->seen_none)
	{
		TransactionId *xids;
		int			n = pvg_shared_publishing_xids(&xids);
		int			i;

		for (i = 0; i < n; i++)
		{
			if (pvg_store_seen(src, xids[i]))
				return NULL;
		}
	}
	return set;
}

/*
 * Start a new overlay over a base at the base's change ring position,
 * without a query: over a merged base (see pvg_base_merge) applying every
 * record since, over one read from the tables all but the records of the
 * transactions its snapshot saw (as after a query, pvg_store_ring_sync).
 * False when it cannot: the caller then queries the subjects written since
 * the base's horizon.
 */
static bool
pvg_store_ring_start(PvgConsentStore *store, PvgRegistry *reg, const PvgBaseImage *base)
{
	if (!base->ring_valid || pvg_changes_written())
		return false;
	store->horizon = base->horizon;
	store->ring_pos = base->ring_from;
	store->ring_start = base->ring_from;
	store->ring_synced = true;
	store->seen_none = base->merged;
	if (!base->merged)
	{
		/* read with a snapshot: skip the records of what it saw, as after a query */
		pvg_store_set_seen(store, base->seen_xmin, base->seen_xmax,
						   (const TransactionId *) ((const char *) base + base->seen_off),
						   base->seen_xcnt, InvalidTransactionId);
	}
	if (pvg_store_ring_patch(store, reg))
		return true;
	store->ring_synced = false;
	return false;
}

/*
 * Build callback of a base (shared_store.c calls it after taking the
 * build's sequence number, in a temporary context): read the whole store
 * with the newest snapshot, without this transaction's own writes (a base
 * holds only committed state; the writer's own overlay holds its writes),
 * and list the set's entries.
 */
static void
pvg_base_fill(PvgBaseBuild *b, void *varg)
{
	PvgBaseArg *arg = varg;
	PvgRegistry *reg = arg->reg;
	PvgConsentStore *tmp;
	const char *chain[64];
	int			nchain = pvg_set_chain(reg, arg->purpose, chain, lengthof(chain));
	PvgBasis	basis = reg->purposes[arg->purpose].basis;
	Oid			save_userid;
	int			save_sec;
	pvg_subjmap_iterator it;
	PvgSubjectEntry *e;

	if (arg->merge_set != NULL)
	{
		pvg_base_merge(b, arg->merge_set, arg->merge_ring_from);
		pvg_bases_merged++;
		return;
	}
	tmp = palloc0(sizeof(PvgConsentStore));
	tmp->cxt = CurrentMemoryContext;
	b->allow_list = (basis == PVG_BASIS_CONSENT);
	/* before the snapshot: every full change counted here is in it */
	b->full_seq = pvg_shared_full_seq();

	pvg_as_extension_owner_begin(&save_userid, &save_sec);
	{
		/* before the snapshot: records from here on are of transactions it may miss */
		uint64		head = pvg_shared_changes_head();
		Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
		TransactionId own = GetTopTransactionIdIfAny();

		/* our own writes, whatever their command id, are invisible to it */
		snap->curcid = FirstCommandId;
		b->horizon = pvg_snapshot_horizon(snap);
		pvg_store_read(tmp, snap);

		/* so a new overlay over it may start from the ring, as after a query */
		b->ring_valid = pvg_shared_changes_ready();
		b->ring_from = head;
		b->seen_xmin = snap->xmin;
		b->seen_xmax = snap->xmax;
		b->seen_xip = palloc(sizeof(TransactionId) * (snap->xcnt + 1));
		memcpy(b->seen_xip, snap->xip, sizeof(TransactionId) * snap->xcnt);
		b->seen_xcnt = snap->xcnt;
		if (TransactionIdIsValid(own))
			b->seen_xip[b->seen_xcnt++] = own;	/* it is not in the base */
		UnregisterSnapshot(snap);
	}
	pvg_as_extension_owner_end(save_userid, save_sec);

	if (arg->kind == PVG_KEY_INT)
		b->ints = palloc(sizeof(PvgBaseEntryInt) * (tmp->subjects->members + 1));
	else
		b->texts = palloc(sizeof(PvgBaseEntryText) * (tmp->subjects->members + 1));
	pvg_subjmap_start_iterate(tmp->subjects, &it);
	while ((e = pvg_subjmap_iterate(tmp->subjects, &it)) != NULL)
	{
		TimestampTz limit;
		int64		key;

		CHECK_FOR_INTERRUPTS();

		if (!pvg_subject_limit(e, basis, chain, nchain, &limit))
			continue;
		if (arg->kind == PVG_KEY_INT)
		{
			if (!pvg_parse_canonical_int(e->key.str, e->key.len, &key))
				continue;
			b->ints[b->nints].key = key;
			b->ints[b->nints].limit = limit;
			b->nints++;
		}
		else
		{
			b->texts[b->ntexts].str = e->key.str;
			b->texts[b->ntexts].len = e->key.len;
			b->texts[b->ntexts].limit = limit;
			b->ntexts++;
		}
	}
}

/* An overlay's context is going away: release the bases its sets use. */
static void
pvg_overlay_release(void *arg)
{
	pvg_shared_release(arg);
}

/* Start an empty overlay (no base attached yet); it replaces the current store. */
static PvgConsentStore *
pvg_overlay_create(void)
{
	MemoryContext cxt;
	PvgConsentStore *store;
	MemoryContextCallback *cb;

	cxt = AllocSetContextCreate(TopMemoryContext, "privacy_guard consent overlay",
								ALLOCSET_SMALL_SIZES);
	store = MemoryContextAllocZero(cxt, sizeof(PvgConsentStore));
	store->cxt = cxt;
	store->shared = true;
	store->subjects = pvg_subjmap_create(cxt, 64, NULL);
	cb = MemoryContextAlloc(cxt, sizeof(MemoryContextCallback));
	cb->func = pvg_overlay_release;
	cb->arg = store;
	MemoryContextRegisterResetCallback(cxt, cb);

	/* as in pvg_store_load: fresh from before anything is read */
	pvg_store_full_stale = false;
	pvg_store_changed = false;
	pvg_store_stamp.valid = false;
	store->need_build = pvg_need_build;
	store->need_full = pvg_shared_full_seq();

	/*
	 * On a standby, deletions arrive by WAL replay and nobody counts them in
	 * full_seq: only a base read from now on is sure to reflect them.
	 */
	if (RecoveryInProgress())
		store->need_build = Max(store->need_build, pvg_shared_build_seq());

	/* the overlay replaced for its size: new bases may be merged from it */
	if (pvg_store != NULL && pvg_store->shared && pvg_store->merge_ok)
		pvg_merge_store = pvg_store;
	pvg_retire_context(pvg_store_cxt);
	pvg_store_cxt = cxt;
	pvg_store = store;
	return store;
}

/*
 * The set again after a patch found removals it cannot follow (the store is
 * marked stale): once more from a new overlay over bases read from now on,
 * and if that cannot follow either, from a private copy.
 */
static PvgSubjectSet *
pvg_subject_set_anew(PvgRegistry *reg, int purpose, PvgKeyKind kind)
{
	static int	depth = 0;
	PvgSubjectSet *set;

	if (depth > 0 || IsInParallelMode() || !pvg_shared_ready())
		return pvg_subject_set_local(reg, purpose, kind);
	depth++;
	PG_TRY();
	{
		set = pvg_subject_set_shared(pvg_overlay_create(), reg, purpose, kind);
	}
	PG_FINALLY();
	{
		depth--;
	}
	PG_END_TRY();
	return set;
}

/*
 * The subject set of a purpose for one key kind over a shared base: the
 * base (found or built, see shared_store.c) and an overlay of the subjects
 * written since its horizon.  Falls back to a private copy when no base
 * can be shared.
 */
static PvgSubjectSet *
pvg_subject_set_shared(PvgConsentStore *store, PvgRegistry *reg, int purpose, PvgKeyKind kind)
{
	PvgSubjectSet *set;
	const PvgBaseImage *base;
	StringInfoData sig;
	PvgBaseArg arg;

	if (pvg_store_changed)
	{
		if (!store->ov_valid)
			pvg_store_changed = false;	/* nothing attached: the first attach reads all */
		else if (!pvg_store_patch(store, reg, store->horizon, NULL))
			return pvg_subject_set_anew(reg, purpose, kind);
	}
	for (set = store->sets; set != NULL; set = set->next)
	{
		if (set->purpose == purpose && set->kind == kind &&
			set->reg_generation == reg->generation)
			return set;
	}

	initStringInfo(&sig);
	pvg_set_signature(reg, purpose, &sig);
	arg.reg = reg;
	arg.purpose = purpose;
	arg.kind = kind;
	arg.merge_set = pvg_merge_source(reg, purpose, kind);
	arg.merge_ring_from = pvg_merge_store != NULL ? pvg_merge_store->ring_pos : 0;
	base = pvg_shared_base(sig.data, sig.len, (int) kind, store->need_build, store->need_full,
						   pvg_base_fill, &arg, store);
	pfree(sig.data);
	if (base == NULL)
	{
		/* no room to share: a private copy, until the next full reload */
		pvg_store_full_stale = true;
		return pvg_subject_set_local(reg, purpose, kind);
	}
	if (base->build_seq > store->max_build_seq)
	{
		store->max_build_seq = base->build_seq;
		store->newest_built_at = base->built_at;
	}

	/* the overlay must hold every subject written since the base's horizon */
	if (!store->ov_valid)
	{
		/* a new overlay: from the ring when it still holds the base's position */
		if (!pvg_store_ring_start(store, reg, base) &&
			!pvg_store_patch(store, reg, base->horizon, NULL))
			return pvg_subject_set_anew(reg, purpose, kind);
		store->ov_from = base->horizon;
		store->ov_valid = true;
	}
	else if (store->seen_none)
	{
		/*
		 * An overlay started from the ring holds every record since
		 * ring_start: enough for a merged base from there on.  For any
		 * other, query from the oldest horizon it has (records it has not
		 * applied yet may be of transactions older than the new base's).
		 */
		if (base->ring_valid && base->ring_from < store->ring_start &&
			pvg_shared_changes_clear(base->ring_from))
		{
			/* apply the records from the base's position on, in order, again */
			store->ring_pos = base->ring_from;
			store->ring_start = base->ring_from;
			if (!pvg_store_ring_patch(store, reg))
				store->ring_synced = false;
		}
		if (!(base->ring_valid && base->ring_from >= store->ring_start && store->ring_synced))
		{
			FullTransactionId from = FullTransactionIdPrecedes(base->horizon, store->horizon)
				? base->horizon : store->horizon;

			store->ring_synced = false;
			if (!pvg_store_patch(store, reg, from, NULL))
				return pvg_subject_set_anew(reg, purpose, kind);
			if (FullTransactionIdPrecedes(from, store->ov_from))
				store->ov_from = from;
		}
	}
	else if (FullTransactionIdPrecedes(base->horizon, store->ov_from))
	{
		/* the overlay must hold every subject written since the base's horizon */
		if (!pvg_store_patch(store, reg, base->horizon, NULL))
			return pvg_subject_set_anew(reg, purpose, kind);
		store->ov_from = base->horizon;
	}
	return pvg_set_over_base(store, reg, purpose, kind, base);
}

/* A set over a base, whose overlay (the store) holds every subject written since its horizon. */
static PvgSubjectSet *
pvg_set_over_base(PvgConsentStore *store, PvgRegistry *reg, int purpose, PvgKeyKind kind,
				  const PvgBaseImage *base)
{
	PvgSubjectSet *set;
	MemoryContext old;

	old = MemoryContextSwitchTo(store->cxt);
	set = palloc0(sizeof(PvgSubjectSet));
	set->purpose = purpose;
	set->kind = kind;
	set->reg_generation = reg->generation;
	set->allow_list = base->allow_list;
	set->base = base;
	set->base_has_map = (kind == PVG_KEY_INT)
		? (base->nints > 0 || base->has_min_key) : base->ntexts > 0;
	if (base->bits_len > 0)
	{
		/* probed in place, never written (pvg_set_apply keeps off it) */
		set->bits = (uint64 *) ((char *) base + base->bits_off);
		set->bits_base = base->bits_base;
		set->bits_len = base->bits_len;
	}
	if (kind == PVG_KEY_INT)
		set->ints = pvg_intmap_create(store->cxt, 64, NULL);
	else
		set->texts = pvg_textmap_create(store->cxt, 64, NULL);
	pvg_set_apply_all(store, reg, set);
	set->next = store->sets;
	store->sets = set;
	MemoryContextSwitchTo(old);
	return set;
}

/*
 * The subject set of a purpose for one key kind, current as of this
 * statement.  Valid until the end of the transaction.
 */
PvgSubjectSet *
pvg_subject_set(PvgRegistry *reg, int purpose, PvgKeyKind kind)
{
	PvgConsentStore *store = pvg_store;
	PvgSubjectSet *set;

	if (IsParallelWorker() && pvg_parallel_snapshot() != NULL)
		return pvg_subject_set_worker(reg, purpose, kind);
	if (store != NULL && store->shared && !pvg_store_full_stale)
	{
		if (!IsInParallelMode())
			return pvg_subject_set_shared(store, reg, purpose, kind);

		/*
		 * No new snapshot in parallel mode: only what is current already,
		 * or, for a parallel query, what its workers see (read with the
		 * query's view; a change that arrives meanwhile waits for the next
		 * statement).
		 */
		if (!pvg_store_changed || pvg_parallel_snapshot() != NULL)
		{
			for (set = store->sets; set != NULL; set = set->next)
			{
				if (set->purpose == purpose && set->kind == kind &&
					set->reg_generation == reg->generation)
					return set;
			}
		}
	}
	else if ((store == NULL || pvg_store_full_stale) && !IsInParallelMode() &&
			 !pvg_store_full_change && pvg_shared_ready())
		return pvg_subject_set_shared(pvg_overlay_create(), reg, purpose, kind);
	return pvg_subject_set_local(reg, purpose, kind);
}

/*
 * In a parallel worker: the set its leader uses, from the view the leader
 * published for the query (parallel.c): the same bases, and an overlay read
 * with the same snapshot from the same point.  Without a base for the set,
 * or when removals since then can no longer be followed, a private copy
 * read with that snapshot: slower, the same answers.
 */
static PvgSubjectSet *
pvg_subject_set_worker(PvgRegistry *reg, int purpose, PvgKeyKind kind)
{
	Snapshot	snap = pvg_parallel_snapshot();
	PvgConsentStore *store = pvg_store;
	PvgSubjectSet *set;
	FullTransactionId ov_from;
	const PvgBaseImage *base;
	StringInfoData sig;

	if (!pvg_parallel_overlay_from(&ov_from))
		return pvg_subject_set_local(reg, purpose, kind);
	if (store == NULL || !store->shared || !store->ov_valid)
	{
		store = pvg_overlay_create();
		if (!pvg_store_patch(store, reg, ov_from, snap))
			return pvg_subject_set_local(reg, purpose, kind);
		store->ov_from = ov_from;
		store->ov_valid = true;
	}
	for (set = store->sets; set != NULL; set = set->next)
	{
		if (set->purpose == purpose && set->kind == kind &&
			set->reg_generation == reg->generation)
			return set;
	}
	initStringInfo(&sig);
	pvg_set_signature(reg, purpose, &sig);
	base = pvg_shared_base_ref(pvg_parallel_base(kind, sig.data, sig.len), store);
	pfree(sig.data);
	if (base == NULL)
		return pvg_subject_set_local(reg, purpose, kind);
	return pvg_set_over_base(store, reg, purpose, kind, base);
}

/*
 * For the leader of a parallel query, before it enters parallel mode: make
 * the sets of a purpose for the key kinds asked for (indexed by PvgKeyKind).
 */
void
pvg_consent_parallel_sets(PvgRegistry *reg, int purpose, const bool *kinds)
{
	int			k;

	for (k = 0; k < 2; k++)
	{
		if (kinds[k])
			(void) pvg_subject_set(reg, purpose, (PvgKeyKind) k);
	}
}

/*
 * Then bring the overlay up to date with snap (taken after the sets' bases
 * were built), and list the bases in view as (PvgParallelBase, signature)
 * records, with the overlay's start in *ov_from.  False when the sets are
 * not served from shared bases: workers then read private copies with snap.
 */
bool
pvg_consent_parallel_view(PvgRegistry *reg, Snapshot snap, FullTransactionId *ov_from,
						  StringInfo view)
{
	PvgConsentStore *store = pvg_store;
	PvgSubjectSet *set;

	if (store == NULL || !store->shared || !store->ov_valid || pvg_store_full_stale)
		return false;
	if (!pvg_store_patch(store, reg, store->horizon, snap))
		return false;
	*ov_from = store->ov_from;
	for (set = store->sets; set != NULL; set = set->next)
	{
		PvgParallelBase rec;
		StringInfoData sig;

		if (set->base == NULL || set->reg_generation != reg->generation)
			continue;
		initStringInfo(&sig);
		pvg_set_signature(reg, set->purpose, &sig);
		memset(&rec, 0, sizeof(rec));
		rec.kind = (int) set->kind;
		rec.siglen = sig.len;
		rec.base = pvg_shared_image_pointer(set->base);
		if (DsaPointerIsValid(rec.base))
		{
			appendBinaryStringInfo(view, (char *) &rec, sizeof(rec));
			appendBinaryStringInfo(view, sig.data, sig.len);
		}
		pfree(sig.data);
	}
	return true;
}

/* How this backend caught up with changes so far, and the shared bases it merged (for tests). */
PG_FUNCTION_INFO_V1(pvg_store_patches);
Datum
pvg_store_patches(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(pvg_patches_ring);
	values[1] = Int64GetDatum(pvg_patches_queried);
	values[2] = Int64GetDatum(pvg_bases_merged);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* Which path serves subject sets (for check()). */
PG_FUNCTION_INFO_V1(pvg_store_status);
Datum
pvg_store_status(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(pvg_shared_status()));
}
