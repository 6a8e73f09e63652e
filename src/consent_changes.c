/*-------------------------------------------------------------------------
 *
 * consent_changes.c
 *	  The writer's side of the change ring (shared_store.c): as a
 *	  transaction that wrote consents or forget requests commits, it
 *	  publishes the new state of each subject it wrote, so that every other
 *	  session learns it without reading the tables (consent_cache.c).
 *
 * Before the commit (XACT_EVENT_PRE_COMMIT) the writer lists the subjects
 * it wrote (the rows stamped with its transaction, and the subjects of rows
 * it deleted), locks each subject, reads their whole state with the newest
 * snapshot and keeps it; after the commit became visible, and before its
 * invalidation is sent (XACT_EVENT_COMMIT), it publishes the records.  The
 * lock makes two writers of one subject publish in the order they commit,
 * each record complete with the other's change: the second takes the lock
 * after the first committed and reads its state then.  A reader applying
 * records in ring order therefore ends with every subject's newest state.
 *
 * A writer that wrote more subjects than records are worth (an import),
 * or changed what subjects cannot describe (TRUNCATE, a key too long for a
 * record), or whose subjects' state does not fit, publishes one record
 * that tells readers to query the tables instead, as they would without
 * the ring.  Such a writer takes no subject locks, so it takes the ring
 * lock of its database exclusively, which every other writer holds shared
 * while it reads and publishes: otherwise a record read before its commit
 * could be published after it, undoing its change for a reader that has
 * queried in between.
 *
 * Writers take these locks only while they commit, in one order (the ring
 * lock, then the subjects by hash), and wait for nothing else meanwhile,
 * so they cannot deadlock.  They are advisory locks of kinds no SQL
 * function takes (the fourth field is 3 for a subject, on a 64-bit hash of
 * its key, and 4 for the ring lock; pg_advisory_lock uses 1 and 2), and
 * show in pg_locks while a writer commits.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"

/* more subjects (or rows naming them) than this in one transaction: readers query instead */
#define PVG_CHANGES_MAX_SUBJECTS 64
#define PVG_CHANGES_MAX_ROWS 256

/* the locktag's fourth field for our locks (advisory locks use 1 and 2) */
#define PVG_SUBJECT_LOCK_KIND 3
#define PVG_RING_LOCK_KIND 4

static bool pvg_changes_wrote = false;	/* wrote consents or requests */
static bool pvg_changes_query = false;	/* ... in a way records cannot describe */
static List *pvg_changes_removed = NIL; /* subjects of rows deleted (text, in the transaction's memory) */
static PvgChangeRec *pvg_changes_recs = NULL;	/* ready to publish */
static int	pvg_changes_nrecs = 0;

/*
 * This transaction wrote consent_state or erasure_request (a statement
 * trigger, or a row trigger under logical replication); query: in a way
 * no record can describe (TRUNCATE).
 */
void
pvg_changes_note_write(bool query)
{
	pvg_changes_wrote = true;
	if (query)
		pvg_changes_query = true;
}

/* Whether this transaction wrote consents or requests (readers then query, to see their own). */
bool
pvg_changes_written(void)
{
	return pvg_changes_wrote;
}

/* A row naming the subject was deleted or lost its subject: no stamp names it any more. */
void
pvg_changes_note_removed(const char *subject, int len)
{
	MemoryContext old;

	pvg_changes_wrote = true;
	if (pvg_changes_query)
		return;
	if (len > PVG_CHANGE_KEY_LEN || list_length(pvg_changes_removed) >= PVG_CHANGES_MAX_SUBJECTS)
	{
		pvg_changes_query = true;
		return;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	pvg_changes_removed = lappend(pvg_changes_removed, cstring_to_text_with_len(subject, len));
	MemoryContextSwitchTo(old);
}

/* The ring lock of this database: exclusive for a writer that publishes no subjects. */
static void
pvg_changes_lock_ring(LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, 0, PVG_RING_LOCK_KIND);
	(void) LockAcquire(&tag, mode, false, false);
}

/*
 * The one record that tells readers to query; exclusive: take the ring
 * lock (not needed when holding the locks of all the subjects written).
 */
static void
pvg_changes_set_query(TransactionId xid, bool exclusive)
{
	if (exclusive)
		pvg_changes_lock_ring(ExclusiveLock);
	pvg_changes_recs = MemoryContextAllocZero(TopTransactionContext, sizeof(PvgChangeRec));
	pvg_changes_recs[0].xid = xid;
	pvg_changes_recs[0].query = true;
	pvg_changes_nrecs = 1;
	pvg_shared_publishing(xid);
}

typedef struct PvgSubjectKey
{
	uint64		hash;
	text	   *key;
} PvgSubjectKey;

static int
pvg_subject_key_cmp(const void *a, const void *b)
{
	const PvgSubjectKey *x = a;
	const PvgSubjectKey *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	if (VARSIZE_ANY_EXHDR(x->key) != VARSIZE_ANY_EXHDR(y->key))
		return VARSIZE_ANY_EXHDR(x->key) < VARSIZE_ANY_EXHDR(y->key) ? -1 : 1;
	return memcmp(VARDATA_ANY(x->key), VARDATA_ANY(y->key), VARSIZE_ANY_EXHDR(x->key));
}

/* The record of the subject whose key is given, among n (the state rows are grouped by subject). */
static PvgChangeRec *
pvg_changes_find(PvgChangeRec *recs, int n, const char *key, int len)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		if (recs[i].keylen == len && memcmp(recs[i].key, key, len) == 0)
			return &recs[i];
	}
	return NULL;
}

/*
 * Fill the records of the subjects from the current SPI result, rows of
 * (subject, purpose, status letter, valid_until, due) as the consent store
 * reads them.  False when a subject's state does not fit its record.
 */
static bool
pvg_changes_fill(PvgChangeRec *recs, int n)
{
	TupleDesc	desc = SPI_tuptable->tupdesc;
	uint64		i;

	for (i = 0; i < SPI_processed; i++)
	{
		Datum		values[5];
		bool		nulls[5];
		text	   *subject;
		text	   *status;
		char		letter;
		PvgChangeRec *rec;

		heap_deform_tuple(SPI_tuptable->vals[i], desc, values, nulls);
		subject = DatumGetTextPP(values[0]);
		rec = pvg_changes_find(recs, n, VARDATA_ANY(subject), VARSIZE_ANY_EXHDR(subject));
		if (rec == NULL)
			return false;
		status = DatumGetTextPP(values[2]);
		letter = VARSIZE_ANY_EXHDR(status) > 0 ? *VARDATA_ANY(status) : '\0';
		if (letter == 'f')
			rec->forget_due = Min(rec->forget_due, DatumGetTimestampTz(values[4]));
		else if (letter == 'g' || letter == 'o')
		{
			text	   *purpose = DatumGetTextPP(values[1]);
			int			plen = VARSIZE_ANY_EXHDR(purpose);
			TimestampTz valid_until = nulls[3] ? DT_NOEND : DatumGetTimestampTz(values[3]);
			char	   *p = rec->data + rec->datalen;

			if (plen > 255 ||
				rec->datalen + 2 + sizeof(TimestampTz) + plen > PVG_CHANGE_DATA_LEN)
				return false;
			p[0] = letter;
			p[1] = (char) plen;
			memcpy(p + 2, &valid_until, sizeof(TimestampTz));
			memcpy(p + 2 + sizeof(TimestampTz), VARDATA_ANY(purpose), plen);
			rec->datalen += 2 + sizeof(TimestampTz) + plen;
		}
	}
	return true;
}

/*
 * Before the commit: read the new state of every subject this transaction
 * wrote, under the subjects' locks, into records to publish at commit.
 */
void
pvg_changes_pre_commit(void)
{
	TransactionId xid = GetTopTransactionIdIfAny();
	FullTransactionId fxid;
	Oid			save_userid;
	int			save_sec;
	Oid			argtypes[2];
	Datum		args[2];
	PvgSubjectKey *keys;
	int			nkeys = 0;
	uint64		nrows;
	PvgChangeRec *recs;
	bool		ok = true;
	ListCell   *lc;
	int			i;
	Datum	   *elems;

	if (!pvg_changes_wrote || !TransactionIdIsValid(xid) || !pvg_shared_changes_ready())
		return;
	if (pvg_changes_query || !OidIsValid(get_namespace_oid("privacy_guard", true)))
	{
		pvg_changes_set_query(xid, true);
		return;
	}
	fxid = GetTopFullTransactionId();

	pvg_as_extension_owner_begin(&save_userid, &save_sec);

	/* the subjects written: rows stamped with this transaction, and rows deleted */
	argtypes[0] = XID8OID;
	args[0] = FullTransactionIdGetDatum(fxid);
	argtypes[1] = INT8OID;
	args[1] = Int64GetDatum(PVG_CHANGES_MAX_ROWS);
	CommandCounterIncrement();
	{
		Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());

		/* rows, not distinct subjects: an import stops reading early */
		pvg_spi_read_snapshot("SELECT c.subject FROM privacy_guard.consent_state c "
							  "WHERE c.changed_xid OPERATOR(pg_catalog.=) $1 "
							  "UNION ALL "
							  "SELECT r.subject FROM privacy_guard.erasure_request r "
							  "WHERE r.changed_xid OPERATOR(pg_catalog.=) $1 "
							  "AND r.subject IS NOT NULL "
							  "LIMIT $2",
							  2, argtypes, args, snap);
		UnregisterSnapshot(snap);
	}
	nrows = SPI_processed;
	keys = palloc(sizeof(PvgSubjectKey) *
				  (nrows + list_length(pvg_changes_removed) + 1));
	for (i = 0; i < (int) nrows; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			keys[nkeys++].key = DatumGetTextPCopy(d);
	}
	foreach(lc, pvg_changes_removed)
		keys[nkeys++].key = (text *) lfirst(lc);

	for (i = 0; i < nkeys && ok; i++)
	{
		ok = VARSIZE_ANY_EXHDR(keys[i].key) <= PVG_CHANGE_KEY_LEN;
		keys[i].hash = hash_bytes_extended((const unsigned char *) VARDATA_ANY(keys[i].key),
										   VARSIZE_ANY_EXHDR(keys[i].key), 0);
	}
	if (ok && nrows < PVG_CHANGES_MAX_ROWS)
	{
		/* distinct subjects, in the order they are locked in */
		int			n = 0;

		qsort(keys, nkeys, sizeof(PvgSubjectKey), pvg_subject_key_cmp);
		for (i = 0; i < nkeys; i++)
		{
			if (n == 0 || pvg_subject_key_cmp(&keys[n - 1], &keys[i]) != 0)
				keys[n++] = keys[i];
		}
		nkeys = n;
	}
	if (!ok || nrows >= PVG_CHANGES_MAX_ROWS || nkeys > PVG_CHANGES_MAX_SUBJECTS)
	{
		pvg_as_extension_owner_end(save_userid, save_sec);
		pvg_changes_set_query(xid, true);
		return;
	}

	/* lock the ring shared, then the subjects in one order */
	pvg_changes_lock_ring(ShareLock);
	recs = MemoryContextAllocZero(TopTransactionContext, sizeof(PvgChangeRec) * Max(nkeys, 1));
	elems = palloc(sizeof(Datum) * Max(nkeys, 1));
	for (i = 0; i < nkeys; i++)
	{
		LOCKTAG		tag;

		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (keys[i].hash >> 32),
							 (uint32) keys[i].hash, PVG_SUBJECT_LOCK_KIND);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
		recs[i].xid = xid;
		recs[i].keylen = VARSIZE_ANY_EXHDR(keys[i].key);
		memcpy(recs[i].key, VARDATA_ANY(keys[i].key), recs[i].keylen);
		recs[i].forget_due = DT_NOEND;
		elems[i] = PointerGetDatum(keys[i].key);
	}

	if (ok && nkeys > 0)
	{
		Snapshot	snap;

		/* their state now: committed by anyone before we locked, and ours */
		snap = RegisterSnapshot(GetLatestSnapshot());
		pvg_spi_read_subject_states(PointerGetDatum(construct_array(elems, nkeys, TEXTOID, -1,
																	false, TYPALIGN_INT)),
									snap);
		UnregisterSnapshot(snap);
		ok = pvg_changes_fill(recs, nkeys);
	}
	pvg_as_extension_owner_end(save_userid, save_sec);

	if (!ok)
	{
		/* a state too big for its record: we hold all our subjects' locks */
		pfree(recs);
		pvg_changes_set_query(xid, false);
		return;
	}
	pvg_changes_recs = recs;
	pvg_changes_nrecs = nkeys;
	if (nkeys > 0)
		pvg_shared_publishing(xid);
}

/* After the commit became visible, before its invalidation is sent: publish. */
void
pvg_changes_commit(void)
{
	if (pvg_changes_nrecs > 0)
	{
		pvg_shared_changes_publish(pvg_changes_recs, pvg_changes_nrecs);
		pvg_shared_publishing(InvalidTransactionId);
	}
}

/* Prepared: the commit will happen where nothing is published; stop the ring. */
void
pvg_changes_prepare(void)
{
	if (pvg_changes_wrote && TransactionIdIsValid(GetTopTransactionIdIfAny()))
		pvg_shared_changes_stop();
}

void
pvg_changes_end_xact(void)
{
	/* the lists and records live in the transaction's memory */
	if (pvg_changes_nrecs > 0)
		pvg_shared_publishing(InvalidTransactionId);
	pvg_changes_wrote = false;
	pvg_changes_query = false;
	pvg_changes_removed = NIL;
	pvg_changes_recs = NULL;
	pvg_changes_nrecs = 0;
}
