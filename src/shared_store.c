/*-------------------------------------------------------------------------
 *
 * shared_store.c
 *	  Subject set images shared by all backends (only when preloaded).
 *
 * A "base" is the subject set of one purpose (identified by its basis and
 * the names of the purpose and its ancestors, so that a registry reload
 * elsewhere cannot make it mean something else) for one key kind in one
 * database, read from a snapshot whose xmin is the base's horizon.  It is
 * one immutable, pointer-free block in a DSA area (offsets only, see
 * PvgBaseImage in subject_set.h) that backends probe in place.  Each
 * backend adds its own small overlay: the subjects written since the
 * horizon (consent_cache.c).
 *
 * The directory of bases is a fixed array in the main shared memory,
 * guarded by one LWLock, which also guards the images' reference counts.
 * A new image replaces the old one in its slot; the old one is freed when
 * its last user releases it (a backend releases its images when it drops
 * its overlay, at the latest at exit).  One backend builds an image at a
 * time per slot; others wanting the same image wait on a condition
 * variable (with a bound: a builder blocked on a lock held by a waiter
 * must not hang both).  A crash restart reinitialises shared memory, so
 * everything is rebuilt from the tables.
 *
 * A deleted consent row or a forget request that lost its subject leaves
 * no row to find the subject by: a row trigger records the subject and the
 * deleting transaction in a ring of tombstones here, and readers re-read
 * those subjects like written ones (pvg_shared_removed_since; a reader that
 * finds tombstones it needs overwritten reads anew).
 *
 * Two counters order builds against changes that cannot be followed so
 * (TRUNCATE, keys too long for a tombstone): build_seq is taken before a
 * build's snapshot; full_seq is bumped by every transaction that made such
 * a change, after its commit became visible and before its invalidation is
 * sent.  A backend that creates a new overlay reads full_seq and accepts
 * only bases whose full_seq (read before their snapshot) is at least that.
 * On a standby, where WAL replay runs no triggers and counts nothing, a new
 * overlay accepts only bases built after it was created.
 *
 * When an image does not fit (privacy_guard.shared_store_size), or the
 * directory is full, the caller falls back to a private copy: slower and
 * bigger, never wrong.
 *
 * The change ring: a transaction that wrote consents or forget requests
 * publishes, as it commits, the new state of each subject it wrote
 * (consent_changes.c), so that readers patch their overlays from here
 * instead of querying the tables after every commit (consent_cache.c).  A
 * record is written after the commit became visible and before its
 * invalidation is sent, so a reader told of a commit finds its records; a
 * record that cannot describe the change (too many subjects, a TRUNCATE)
 * tells readers to query.  Readers that fall more than a ring behind query
 * too.  A prepared transaction's commit happens where we cannot publish:
 * it stops the ring until restart, and readers query as before.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"
#include "subject_set.h"

#include "miscadmin.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "funcapi.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/dsa.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "access/twophase.h"

#define PVG_MAX_BASES 256

/* records in the change ring (about 7 MB; at 1,000 changes a second, 30 seconds) */
#define PVG_CHANGES 32768

/*
 * A waiter gives up waiting for another backend's build after this long
 * plus twice the last build's time (a build of ten million consents takes
 * seconds; a builder blocked by a lock the waiter holds must not hang both).
 */
#define PVG_BUILD_WAIT_MS 5000

typedef struct PvgBaseSlot
{
	Oid			db;
	int			kind;
	uint32		sighash;
	dsa_pointer image;			/* published image, or InvalidDsaPointer */
	int			builder;		/* pid of a backend building one, or 0 */
	uint64		building_seq;	/* its build_seq */
} PvgBaseSlot;

/*
 * A subject whose consent row was deleted, or whose forget request lost its
 * subject, by transaction xid: no row names it any more, so readers learn it
 * here and re-read the subject (see pvg_shared_removed_since).
 */
#define PVG_TOMBSTONES 8192
#define PVG_TOMBSTONE_LEN 112

typedef struct PvgTombstone
{
	FullTransactionId xid;
	Oid			db;
	uint16		len;
	char		subject[PVG_TOMBSTONE_LEN];
} PvgTombstone;

/* one record of the change ring, valid while seq is the position it was written at */
typedef struct PvgChangeSlot
{
	uint64		seq;
	Oid			db;
	PvgChangeRec rec;
} PvgChangeSlot;

typedef struct PvgStoreShared
{
	LWLock	   *lock;
	int			dsa_tranche;
	dsa_handle	handle;			/* DSM_HANDLE_INVALID until first use */
	pg_atomic_uint64 build_seq;
	pg_atomic_uint64 full_seq;
	bool		disabled;		/* a prepared transaction made a full change */
	uint64		refused;		/* images that did not fit */
	uint64		builds;
	long		last_build_ms;	/* how long the last build took */
	ConditionVariable cv;
	PvgBaseSlot slots[PVG_MAX_BASES];

	/* a ring of tombstones; evicted: the newest xid of one overwritten */
	uint64		tomb_next;
	bool		tomb_evicted_any;
	FullTransactionId tomb_evicted;
	PvgTombstone tombs[PVG_TOMBSTONES];

	/* the change ring, under its own lock; change_next is the next position */
	LWLock	   *change_lock;
	pg_atomic_uint64 change_next;
	bool		changes_off;	/* a prepared transaction wrote consents */
	PvgChangeSlot changes[PVG_CHANGES];
} PvgStoreShared;

/* an image this backend holds a reference to */
typedef struct PvgHeldBase
{
	dsa_pointer dp;
	const void *owner;
	struct PvgHeldBase *next;
} PvgHeldBase;

/*
 * What a leader of a parallel query tells its workers (see parallel.c): one
 * slot per PGPROC, written by its backend only, read by that backend's
 * workers while it waits for them.  Under the directory's lock.
 */
typedef struct PvgViewSlot
{
	int			pid;			/* of the backend that wrote it, or 0 */
	TimestampTz stmt_start;		/* of its statement */
	dsa_pointer view;
	Size		len;

	/*
	 * Not the view: a transaction of this backend that is committing and
	 * will publish change ring records (from before its commit becomes
	 * visible until they are published), or InvalidTransactionId.
	 */
	TransactionId publishing;
} PvgViewSlot;

static PvgStoreShared *pvg_store_shared = NULL;
static PvgViewSlot *pvg_view_slots = NULL;
static PvgViewSlot *pvg_view_slot(PGPROC *proc);
static int	pvg_nview_slots = 0;
static dsa_area *pvg_area = NULL;
static PvgHeldBase *pvg_held = NULL;
static bool pvg_full_change = false;	/* this transaction made one */
static bool pvg_exit_registered = false;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* one view slot per PGPROC (the numbering of pgprocno) */
static int
pvg_view_slot_count(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

static void
pvg_shared_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(PvgStoreShared)));
	RequestAddinShmemSpace(MAXALIGN(mul_size(pvg_view_slot_count(), sizeof(PvgViewSlot))));
	RequestNamedLWLockTranche("privacy_guard_store", 2);
}

static void
pvg_shared_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	pvg_store_shared = ShmemInitStruct("privacy_guard consent store", sizeof(PvgStoreShared),
									   &found);
	if (!found)
	{
		memset(pvg_store_shared, 0, sizeof(PvgStoreShared));
		pvg_store_shared->lock = &(GetNamedLWLockTranche("privacy_guard_store"))[0].lock;
		pvg_store_shared->change_lock = &(GetNamedLWLockTranche("privacy_guard_store"))[1].lock;
		pg_atomic_init_u64(&pvg_store_shared->change_next, 0);
		pvg_store_shared->dsa_tranche = LWLockNewTrancheId();
		pvg_store_shared->handle = DSM_HANDLE_INVALID;
		pg_atomic_init_u64(&pvg_store_shared->build_seq, 0);
		pg_atomic_init_u64(&pvg_store_shared->full_seq, 0);
		ConditionVariableInit(&pvg_store_shared->cv);
	}
	pvg_nview_slots = pvg_view_slot_count();
	pvg_view_slots = ShmemInitStruct("privacy_guard parallel views",
									 mul_size(pvg_nview_slots, sizeof(PvgViewSlot)), &found);
	if (!found)
		memset(pvg_view_slots, 0, mul_size(pvg_nview_slots, sizeof(PvgViewSlot)));
	LWLockRelease(AddinShmemInitLock);
}

void
pvg_shared_init(void)
{
	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = pvg_shared_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = pvg_shared_shmem_startup;
	}
}

/* Whether bases can be shared now: preloaded, and not disabled. */
bool
pvg_shared_ready(void)
{
	return pvg_store_shared != NULL && !pvg_store_shared->disabled && pvg_shared_store_size > 0 &&
		IsUnderPostmaster && MyDatabaseId != InvalidOid;
}

/* Which path serves this backend's subject sets, for check(). */
const char *
pvg_shared_status(void)
{
	if (pvg_store_shared == NULL)
		return "local: not preloaded";
	if (pvg_shared_store_size == 0)
		return "local: privacy_guard.shared_store_size is 0";
	if (pvg_store_shared->disabled)
		return "local: disabled by a prepared transaction";
	if (pvg_store_shared->refused > 0)
		return "shared, full";
	return "shared";
}

uint64
pvg_shared_full_seq(void)
{
	uint64		v;

	if (pvg_store_shared == NULL)
		return 0;
	v = pg_atomic_read_u64(&pvg_store_shared->full_seq);
	pg_memory_barrier();
	return v;
}

/* The number of builds started so far: a build started later reads a newer snapshot. */
uint64
pvg_shared_build_seq(void)
{
	uint64		v;

	if (pvg_store_shared == NULL)
		return 0;
	v = pg_atomic_read_u64(&pvg_store_shared->build_seq);
	pg_memory_barrier();
	return v;
}

/*
 * Record that this transaction removed the last row naming a subject's
 * consent or forget request.  False when it cannot (not preloaded, a key
 * too long): the caller then counts a full change.
 */
bool
pvg_shared_note_removed(const char *subject, int len)
{
	FullTransactionId xid;
	PvgTombstone *t;

	if (pvg_store_shared == NULL || len > PVG_TOMBSTONE_LEN || !IsUnderPostmaster)
		return false;
	xid = GetTopFullTransactionId();
	LWLockAcquire(pvg_store_shared->lock, LW_EXCLUSIVE);
	if (pvg_store_shared->tomb_next > 0)
	{
		/* the rows of one subject usually come one after the other */
		t = &pvg_store_shared->tombs[(pvg_store_shared->tomb_next - 1) % PVG_TOMBSTONES];
		if (FullTransactionIdEquals(t->xid, xid) && t->db == MyDatabaseId && t->len == len &&
			memcmp(t->subject, subject, len) == 0)
		{
			LWLockRelease(pvg_store_shared->lock);
			return true;
		}
	}
	t = &pvg_store_shared->tombs[pvg_store_shared->tomb_next % PVG_TOMBSTONES];
	if (pvg_store_shared->tomb_next >= PVG_TOMBSTONES &&
		(!pvg_store_shared->tomb_evicted_any ||
		 FullTransactionIdFollows(t->xid, pvg_store_shared->tomb_evicted)))
	{
		pvg_store_shared->tomb_evicted = t->xid;
		pvg_store_shared->tomb_evicted_any = true;
	}
	t->xid = xid;
	t->db = MyDatabaseId;
	t->len = len;
	memcpy(t->subject, subject, len);
	pvg_store_shared->tomb_next++;
	LWLockRelease(pvg_store_shared->lock);
	return true;
}

/*
 * The subjects removed (see above) in this database by transactions not
 * older than from, as a text[] (NULL when none).  Returns false when some
 * may be missing (overwritten in the ring): the caller must read anew.
 * Not preloaded: none, and true (the removal then counted a full change).
 */
bool
pvg_shared_removed_since(FullTransactionId from, ArrayType **subjects)
{
	Datum	   *elems;
	int			n = 0;
	uint64		i,
				count;

	*subjects = NULL;
	if (pvg_store_shared == NULL)
		return true;
	LWLockAcquire(pvg_store_shared->lock, LW_SHARED);
	if (pvg_store_shared->tomb_evicted_any &&
		FullTransactionIdFollowsOrEquals(pvg_store_shared->tomb_evicted, from))
	{
		LWLockRelease(pvg_store_shared->lock);
		return false;
	}
	count = Min(pvg_store_shared->tomb_next, PVG_TOMBSTONES);
	elems = palloc(sizeof(Datum) * (count + 1));
	for (i = 0; i < count; i++)
	{
		PvgTombstone *t = &pvg_store_shared->tombs[i];

		if (t->db == MyDatabaseId && FullTransactionIdFollowsOrEquals(t->xid, from))
			elems[n++] = PointerGetDatum(cstring_to_text_with_len(t->subject, t->len));
	}
	LWLockRelease(pvg_store_shared->lock);
	if (n > 0)
		*subjects = construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
	pfree(elems);
	return true;
}

/*
 * Whether the change ring can serve readers and take writers' records now:
 * preloaded, not stopped, and not a standby (WAL replay publishes nothing).
 */
bool
pvg_shared_changes_ready(void)
{
	return pvg_store_shared != NULL && !pvg_store_shared->changes_off && IsUnderPostmaster &&
		MyDatabaseId != InvalidOid && !RecoveryInProgress();
}

/* The next position of the change ring (records before it are published). */
uint64
pvg_shared_changes_head(void)
{
	uint64		v;

	if (pvg_store_shared == NULL)
		return 0;
	v = pg_atomic_read_u64(&pvg_store_shared->change_next);
	pg_read_barrier();
	return v;
}

/*
 * Publish records of this database's committed change (called at commit,
 * so it must not fail: no allocation, one lock).
 */
void
pvg_shared_changes_publish(const PvgChangeRec *recs, int n)
{
	uint64		next;
	int			i;

	if (pvg_store_shared == NULL || n <= 0)
		return;
	Assert(n <= PVG_CHANGES / 4);
	LWLockAcquire(pvg_store_shared->change_lock, LW_EXCLUSIVE);
	next = pg_atomic_read_u64(&pvg_store_shared->change_next);
	for (i = 0; i < n; i++)
	{
		PvgChangeSlot *slot = &pvg_store_shared->changes[(next + i) % PVG_CHANGES];

		slot->seq = next + i;
		slot->db = MyDatabaseId;
		memcpy(&slot->rec, &recs[i], sizeof(PvgChangeRec));
	}
	pg_write_barrier();
	pg_atomic_write_u64(&pvg_store_shared->change_next, next + n);
	LWLockRelease(pvg_store_shared->change_lock);
}

/*
 * This database's records from position from on: a palloc'd array in
 * *recs, their number as the result, and the position after them in *to.
 * -1 when some were overwritten already or the ring stopped: the caller
 * must query the tables.
 */
int
pvg_shared_changes_read(uint64 from, uint64 *to, PvgChangeRec **recs)
{
	uint64		head = pvg_shared_changes_head();
	uint64		want;
	uint64		pos;
	int			n = 0;

	*recs = NULL;
	*to = from;
	if (!pvg_shared_changes_ready() || head < from || head - from > PVG_CHANGES)
		return -1;
	if (head == from)
		return 0;
	want = head - from;
	*recs = palloc(sizeof(PvgChangeRec) * want);
	LWLockAcquire(pvg_store_shared->change_lock, LW_SHARED);
	if (pvg_store_shared->changes_off ||
		pg_atomic_read_u64(&pvg_store_shared->change_next) - from > PVG_CHANGES)
	{
		LWLockRelease(pvg_store_shared->change_lock);
		pfree(*recs);
		*recs = NULL;
		return -1;
	}
	for (pos = from; pos < from + want; pos++)
	{
		PvgChangeSlot *slot = &pvg_store_shared->changes[pos % PVG_CHANGES];

		Assert(slot->seq == pos);
		if (slot->db == MyDatabaseId)
			memcpy(&(*recs)[n++], &slot->rec, sizeof(PvgChangeRec));
	}
	LWLockRelease(pvg_store_shared->change_lock);
	*to = from + want;
	return n;
}

/*
 * Whether every record of this database from position from on is still in
 * the ring and describes its subjects (none asks readers to query).
 */
bool
pvg_shared_changes_clear(uint64 from)
{
	uint64		head;
	uint64		pos;
	bool		ok;

	if (!pvg_shared_changes_ready())
		return false;
	LWLockAcquire(pvg_store_shared->change_lock, LW_SHARED);
	head = pg_atomic_read_u64(&pvg_store_shared->change_next);
	ok = !pvg_store_shared->changes_off && head >= from && head - from <= PVG_CHANGES;
	for (pos = from; ok && pos < head; pos++)
	{
		PvgChangeSlot *slot = &pvg_store_shared->changes[pos % PVG_CHANGES];

		ok = slot->db != MyDatabaseId || !slot->rec.query;
	}
	LWLockRelease(pvg_store_shared->change_lock);
	return ok;
}

/* This backend's transaction will publish records as it commits (see PvgViewSlot). */
void
pvg_shared_publishing(TransactionId xid)
{
	PvgViewSlot *slot = pvg_view_slot(MyProc);

	if (slot == NULL)
		return;
	slot->publishing = xid;
	pg_memory_barrier();
}

/*
 * The transactions that may be visible as committed but have not published
 * their records yet; their number, the ids in a palloc'd array.
 */
int
pvg_shared_publishing_xids(TransactionId **xids)
{
	int			i;
	int			n = 0;

	*xids = palloc(sizeof(TransactionId) * Max(pvg_nview_slots, 1));
	pg_memory_barrier();
	for (i = 0; i < pvg_nview_slots; i++)
	{
		TransactionId xid = pvg_view_slots[i].publishing;

		if (TransactionIdIsValid(xid))
			(*xids)[n++] = xid;
	}
	return n;
}

/*
 * A transaction that wrote consents is being prepared: its commit will
 * happen in another session, which publishes nothing, so readers must
 * query from now on.  The ring stays stopped until restart.
 */
void
pvg_shared_changes_stop(void)
{
	if (pvg_store_shared == NULL || pvg_store_shared->changes_off)
		return;
	LWLockAcquire(pvg_store_shared->change_lock, LW_EXCLUSIVE);
	pvg_store_shared->changes_off = true;
	LWLockRelease(pvg_store_shared->change_lock);
	ereport(LOG,
			(errmsg("privacy_guard: sessions read consent changes from the tables until restart"),
			 errdetail("A prepared transaction wrote consents or forget requests.")));
}

/* This transaction deletes rows or closes requests: bump full_seq at commit. */
void
pvg_shared_note_full_change(void)
{
	pvg_full_change = true;
}

/*
 * At commit (called after the commit became visible to new snapshots and
 * before its invalidations are sent): count the full change.  A prepared
 * transaction's commit happens elsewhere, without us: sharing stops until
 * the next restart rather than risk a base that misses it.
 */
void
pvg_shared_end_xact(bool commit, bool prepare)
{
	if (pvg_full_change && pvg_store_shared != NULL)
	{
		if (prepare)
		{
			LWLockAcquire(pvg_store_shared->lock, LW_EXCLUSIVE);
			pvg_store_shared->disabled = true;
			LWLockRelease(pvg_store_shared->lock);
			ereport(LOG,
					(errmsg("privacy_guard: shared consent store disabled until restart"),
					 errdetail("A prepared transaction deleted consents or closed forget requests.")));
		}
		else if (commit)
			pg_atomic_fetch_add_u64(&pvg_store_shared->full_seq, 1);
	}
	pvg_full_change = false;
}

/* Attach the DSA area, creating it on first use.  Caller holds the lock exclusively. */
static void
pvg_shared_attach(void)
{
	MemoryContext old;

	if (pvg_area != NULL)
		return;
	old = MemoryContextSwitchTo(TopMemoryContext);
	LWLockRegisterTranche(pvg_store_shared->dsa_tranche, "privacy_guard_store_dsa");
	if (pvg_store_shared->handle == DSM_HANDLE_INVALID)
	{
		pvg_area = dsa_create(pvg_store_shared->dsa_tranche);
		dsa_set_size_limit(pvg_area, (size_t) pvg_shared_store_size * 1024 * 1024);
		dsa_pin(pvg_area);
		dsa_pin_mapping(pvg_area);
		pvg_store_shared->handle = dsa_get_handle(pvg_area);
	}
	else
	{
		pvg_area = dsa_attach(pvg_store_shared->handle);
		dsa_pin_mapping(pvg_area);
	}
	MemoryContextSwitchTo(old);
}

/* Drop one reference; free a replaced image with its last one.  Lock held. */
static void
pvg_shared_unref(dsa_pointer dp)
{
	PvgBaseImage *img = dsa_get_address(pvg_area, dp);

	if (--img->refcount <= 0 && img->retired)
		dsa_free(pvg_area, dp);
}

/* Release every image the given owner holds (all when owner is NULL). */
void
pvg_shared_release(const void *owner)
{
	PvgHeldBase **p;
	bool		locked = false;

	if (pvg_store_shared == NULL || pvg_area == NULL)
		return;
	p = &pvg_held;
	while (*p != NULL)
	{
		PvgHeldBase *h = *p;

		if (owner != NULL && h->owner != owner)
		{
			p = &h->next;
			continue;
		}
		if (!locked)
		{
			LWLockAcquire(pvg_store_shared->lock, LW_EXCLUSIVE);
			locked = true;
		}
		pvg_shared_unref(h->dp);
		*p = h->next;
		pfree(h);
	}
	if (locked)
		LWLockRelease(pvg_store_shared->lock);
}

/* At exit: release what we hold, and any build we had claimed. */
static void
pvg_shared_exit(int code, Datum arg)
{
	int			i;

	if (pvg_store_shared == NULL || pvg_area == NULL)
		return;
	LWLockReleaseAll();
	pvg_shared_release(NULL);
	LWLockAcquire(pvg_store_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < PVG_MAX_BASES; i++)
	{
		if (pvg_store_shared->slots[i].builder == MyProcPid)
			pvg_store_shared->slots[i].builder = 0;
	}
	LWLockRelease(pvg_store_shared->lock);
	ConditionVariableBroadcast(&pvg_store_shared->cv);
}

/*
 * A record for a reference about to be taken, allocated before the lock is
 * (and the exit callback that releases every reference, registered once).
 */
static PvgHeldBase *
pvg_held_new(void)
{
	if (!pvg_exit_registered)
	{
		before_shmem_exit(pvg_shared_exit, (Datum) 0);
		pvg_exit_registered = true;
	}
	return MemoryContextAllocZero(TopMemoryContext, sizeof(PvgHeldBase));
}

/* Record a reference taken (lock held) to an image, for owner. */
static void
pvg_held_record(PvgHeldBase *held, dsa_pointer dp, const void *owner)
{
	held->dp = dp;
	held->owner = owner;
	held->next = pvg_held;
	pvg_held = held;
}

static uint32
pvg_sig_hash(const char *sig, int siglen, int kind)
{
	return hash_bytes((const unsigned char *) sig, siglen) ^ (uint32) kind;
}

static bool
pvg_image_matches(PvgBaseImage *img, const char *sig, int siglen, int kind)
{
	return img->db == MyDatabaseId && img->kind == kind && img->siglen == siglen &&
		memcmp((char *) img + img->sig_off, sig, siglen) == 0;
}

/*
 * Allocate an image: InvalidDsaPointer when the area is at its size limit,
 * and also when the operating system refuses a new segment (a small
 * /dev/shm raises an ERROR deep in dsm_create; it is caught in a
 * subtransaction and logged, and the caller falls back to a private copy
 * instead of failing the reader's statement).
 */
static dsa_pointer
pvg_shared_allocate(Size size)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	dsa_pointer dp = InvalidDsaPointer;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		dp = dsa_allocate_extended(pvg_area, size, DSA_ALLOC_HUGE | DSA_ALLOC_NO_OOM);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ereport(LOG,
				(errmsg("privacy_guard: could not allocate shared memory for the consent store: %s",
						edata->message)));
		FreeErrorData(edata);
		dp = InvalidDsaPointer;
	}
	PG_END_TRY();
	return dp;
}

/* Lay the built entries out as one image in the area; InvalidDsaPointer when it does not fit. */
static dsa_pointer
pvg_shared_layout(PvgBaseBuild *b, const char *sig, int siglen, int kind, uint64 build_seq)
{
	Size		size;
	Size		sig_off,
				seen_off,
				bits_off,
				int_off,
				text_off,
				blob_off;
	uint64		int_slots = 0;
	uint64		text_slots = 0;
	uint64		nbits_words = 0;
	Size		blob_len = 1;
	uint64		i;
	dsa_pointer dp;
	PvgBaseImage *img;
	char	   *base;
	int64		lo = PG_INT64_MAX;
	int64		hi = PG_INT64_MIN;
	uint64		nfixed = 0;
	bool		use_bits = false;
	uint64		nints_left = 0;

	/* the bitmap, when it pays (the same rule as for private sets) */
	for (i = 0; i < b->nints; i++)
	{
		if (pvg_limit_unconditional(b->allow_list, b->ints[i].limit))
		{
			nfixed++;
			lo = Min(lo, b->ints[i].key);
			hi = Max(hi, b->ints[i].key);
		}
	}
	if (nfixed >= 256 &&
		(uint64) hi - (uint64) lo < Max((uint64) nfixed * 64, UINT64CONST(1) << 20))
	{
		use_bits = true;
		nbits_words = ((uint64) hi - (uint64) lo + 1 + 63) / 64;
		nints_left = b->nints - nfixed;
	}
	else
		nints_left = b->nints;
	if (nints_left > 0)
	{
		int_slots = 16;
		while (int_slots < nints_left * 2)
			int_slots <<= 1;
	}
	if (b->ntexts > 0)
	{
		text_slots = 16;
		while (text_slots < b->ntexts * 2)
			text_slots <<= 1;
		for (i = 0; i < b->ntexts; i++)
			blob_len += b->texts[i].len;
	}

	size = MAXALIGN(sizeof(PvgBaseImage));
	sig_off = size;
	size += MAXALIGN(siglen + 1);
	seen_off = size;
	size += MAXALIGN(sizeof(TransactionId) * b->seen_xcnt);
	bits_off = size;
	size += nbits_words * sizeof(uint64);
	int_off = size;
	size += int_slots * sizeof(PvgBaseInt);
	text_off = size;
	size += text_slots * sizeof(PvgBaseText);
	blob_off = size;
	size += MAXALIGN(blob_len);

	dp = pvg_shared_allocate(size);
	if (!DsaPointerIsValid(dp))
		return InvalidDsaPointer;
	base = dsa_get_address(pvg_area, dp);
	img = (PvgBaseImage *) base;
	memset(img, 0, sizeof(PvgBaseImage));
	img->size = size;
	img->db = MyDatabaseId;
	img->kind = kind;
	img->allow_list = b->allow_list;
	img->horizon = b->horizon;
	img->build_seq = build_seq;
	img->full_seq = b->full_seq;
	img->built_at = GetCurrentTimestamp();
	img->ring_valid = b->ring_valid;
	img->ring_from = b->ring_from;
	img->read_at = b->read_at ? b->read_at : img->built_at;
	img->siglen = siglen;
	img->sig_off = sig_off;
	memcpy(base + sig_off, sig, siglen);
	img->merged = b->merged;
	img->seen_xmin = b->seen_xmin;
	img->seen_xmax = b->seen_xmax;
	img->seen_xcnt = b->seen_xcnt;
	img->seen_off = seen_off;
	if (b->seen_xcnt > 0)
		memcpy(base + seen_off, b->seen_xip, sizeof(TransactionId) * b->seen_xcnt);
	base[sig_off + siglen] = '\0';

	if (use_bits)
	{
		img->bits_base = lo;
		img->bits_len = (uint64) hi - (uint64) lo + 1;
		img->bits_off = bits_off;
		memset(base + bits_off, 0, nbits_words * sizeof(uint64));
	}
	img->int_off = int_off;
	img->int_mask = int_slots > 0 ? int_slots - 1 : 0;
	img->nints = 0;
	if (int_slots > 0)
	{
		PvgBaseInt *t = (PvgBaseInt *) (base + int_off);

		for (i = 0; i < int_slots; i++)
			t[i].key = PG_INT64_MIN;
	}
	for (i = 0; i < b->nints; i++)
	{
		int64		key = b->ints[i].key;
		TimestampTz limit = b->ints[i].limit;

		if (use_bits && pvg_limit_unconditional(b->allow_list, limit))
		{
			uint64		off = (uint64) key - (uint64) lo;
			uint64	   *bits = (uint64 *) (base + bits_off);

			bits[off >> 6] |= UINT64CONST(1) << (off & 63);
		}
		else if (key == PG_INT64_MIN)
		{
			img->has_min_key = true;
			img->min_key_limit = limit;
		}
		else
		{
			PvgBaseInt *t = (PvgBaseInt *) (base + int_off);
			uint64		s = pvg_hash_int64((uint64) key) & img->int_mask;

			while (t[s].key != PG_INT64_MIN && t[s].key != key)
				s = (s + 1) & img->int_mask;
			t[s].key = key;
			t[s].limit = limit;
			img->nints++;
		}
	}

	img->text_off = text_off;
	img->text_mask = text_slots > 0 ? text_slots - 1 : 0;
	img->blob_off = blob_off;
	if (text_slots > 0)
	{
		PvgBaseText *t = (PvgBaseText *) (base + text_off);
		Size		pos = 1;

		memset(t, 0, text_slots * sizeof(PvgBaseText));
		base[blob_off] = '\0';
		for (i = 0; i < b->ntexts; i++)
		{
			uint32		h = hash_bytes((const unsigned char *) b->texts[i].str, b->texts[i].len);
			uint64		s = h & img->text_mask;

			while (t[s].str_off != 0)
				s = (s + 1) & img->text_mask;
			t[s].hash = h;
			t[s].len = b->texts[i].len;
			t[s].str_off = pos;
			t[s].limit = b->texts[i].limit;
			memcpy(base + blob_off + pos, b->texts[i].str, b->texts[i].len);
			pos += b->texts[i].len;
		}
		img->ntexts = b->ntexts;
	}
	return dp;
}

/*
 * Free every published image nobody uses (another database's, a dropped
 * purpose's; one in use again is rebuilt when needed).  Lock held.
 */
static int
pvg_shared_evict_unused(void)
{
	int			i;
	int			n = 0;

	for (i = 0; i < PVG_MAX_BASES; i++)
	{
		PvgBaseSlot *s = &pvg_store_shared->slots[i];

		if (s->builder == 0 && DsaPointerIsValid(s->image) &&
			((PvgBaseImage *) dsa_get_address(pvg_area, s->image))->refcount <= 0)
		{
			dsa_free(pvg_area, s->image);
			s->image = InvalidDsaPointer;
			n++;
		}
	}
	return n;
}

/* Find the slot of a base, or claim a free one (NULL when the directory is full). Lock held. */
static PvgBaseSlot *
pvg_shared_slot(uint32 sighash, int kind)
{
	PvgBaseSlot *free_slot = NULL;
	int			i;

	for (i = 0; i < PVG_MAX_BASES; i++)
	{
		PvgBaseSlot *s = &pvg_store_shared->slots[i];

		if (s->db == MyDatabaseId && s->kind == kind && s->sighash == sighash &&
			(DsaPointerIsValid(s->image) || s->builder != 0))
			return s;
		if (free_slot == NULL && !DsaPointerIsValid(s->image) && s->builder == 0)
			free_slot = s;
	}
	/* full: give up the images nobody uses (another database's, a dropped purpose's) */
	if (free_slot == NULL && pvg_shared_evict_unused() > 0)
	{
		for (i = 0; free_slot == NULL && i < PVG_MAX_BASES; i++)
		{
			PvgBaseSlot *s = &pvg_store_shared->slots[i];

			if (!DsaPointerIsValid(s->image) && s->builder == 0)
				free_slot = s;
		}
	}
	if (free_slot != NULL)
	{
		free_slot->db = MyDatabaseId;
		free_slot->kind = kind;
		free_slot->sighash = sighash;
	}
	return free_slot;
}

/*
 * A base for the signature (see consent_cache.c) and key kind in this
 * database, with build_seq > need_build and full_seq >= need_full: an
 * existing one, or one built now with the callback.  The reference is held
 * for owner until pvg_shared_release(owner).  NULL when no image can be
 * shared (the directory or the area is full): the caller builds a private
 * set.  Can ERROR (from the callback); then nothing is held.
 */
const PvgBaseImage *
pvg_shared_base(const char *sig, int siglen, int kind, uint64 need_build, uint64 need_full,
				pvg_base_build_fn build, void *arg, const void *owner)
{
	uint32		sighash = pvg_sig_hash(sig, siglen, kind);
	PvgBaseSlot *slot;
	uint64		build_seq;
	PvgBaseBuild b;
	dsa_pointer dp = InvalidDsaPointer;
	PvgHeldBase *held;
	TimestampTz wait_start = 0;
	TimestampTz build_start;
	long		secs;
	int			usecs;
	MemoryContext buildcxt;
	MemoryContext old;

	if (!pvg_shared_ready())
		return NULL;
	held = pvg_held_new();

	LWLockAcquire(pvg_store_shared->lock, LW_EXCLUSIVE);
	pvg_shared_attach();
	for (;;)
	{
		slot = pvg_shared_slot(sighash, kind);
		if (slot == NULL)
		{
			pvg_store_shared->refused++;
			LWLockRelease(pvg_store_shared->lock);
			pfree(held);
			return NULL;
		}
		if (DsaPointerIsValid(slot->image))
		{
			PvgBaseImage *img = dsa_get_address(pvg_area, slot->image);

			if (!pvg_image_matches(img, sig, siglen, kind))
			{
				/* a hash collision: not shareable */
				LWLockRelease(pvg_store_shared->lock);
				pfree(held);
				return NULL;
			}
			if (img->build_seq > need_build && img->full_seq >= need_full)
			{
				img->refcount++;
				pvg_held_record(held, slot->image, owner);
				LWLockRelease(pvg_store_shared->lock);
				return img;
			}
		}

		/*
		 * Someone is building one that will do: wait for it, unless we have
		 * written (we may hold a lock the builder waits for) or waited long.
		 */
		if (slot->builder != 0 && slot->building_seq > need_build &&
			!TransactionIdIsValid(GetTopTransactionIdIfAny()) &&
			(wait_start == 0 ||
			 !TimestampDifferenceExceeds(wait_start, GetCurrentTimestamp(),
										 PVG_BUILD_WAIT_MS + 2 * (int) Min(pvg_store_shared->last_build_ms, 600000))))
		{
			if (wait_start == 0)
				wait_start = GetCurrentTimestamp();
			ConditionVariablePrepareToSleep(&pvg_store_shared->cv);
			LWLockRelease(pvg_store_shared->lock);
			(void) ConditionVariableTimedSleep(&pvg_store_shared->cv, 100, PG_WAIT_EXTENSION);
			ConditionVariableCancelSleep();
			CHECK_FOR_INTERRUPTS();
			LWLockAcquire(pvg_store_shared->lock, LW_EXCLUSIVE);
			continue;
		}
		break;
	}

	/* build it ourselves; build_seq is taken before the build's snapshot */
	build_seq = pg_atomic_add_fetch_u64(&pvg_store_shared->build_seq, 1);
	if (slot->builder == 0)
	{
		slot->builder = MyProcPid;
		slot->building_seq = build_seq;
	}
	LWLockRelease(pvg_store_shared->lock);

	build_start = GetCurrentTimestamp();
	buildcxt = AllocSetContextCreate(CurrentMemoryContext, "privacy_guard base build",
									 ALLOCSET_DEFAULT_SIZES);
	PG_TRY();
	{
		memset(&b, 0, sizeof(b));
		old = MemoryContextSwitchTo(buildcxt);
		build(&b, arg);
		MemoryContextSwitchTo(old);
	}
	PG_CATCH();
	{
		LWLockAcquire(pvg_store_shared->lock, LW_EXCLUSIVE);
		slot = pvg_shared_slot(sighash, kind);
		if (slot != NULL && slot->builder == MyProcPid)
			slot->builder = 0;
		LWLockRelease(pvg_store_shared->lock);
		ConditionVariableBroadcast(&pvg_store_shared->cv);
		pfree(held);
		PG_RE_THROW();
	}
	PG_END_TRY();

	/* the area has its own locking: lay the image out before taking ours */
	dp = pvg_shared_layout(&b, sig, siglen, kind, build_seq);
	if (!DsaPointerIsValid(dp))
	{
		int			evicted;

		/* full: make room from images nobody uses, and try once more */
		LWLockAcquire(pvg_store_shared->lock, LW_EXCLUSIVE);
		evicted = pvg_shared_evict_unused();
		LWLockRelease(pvg_store_shared->lock);
		if (evicted > 0)
			dp = pvg_shared_layout(&b, sig, siglen, kind, build_seq);
	}
	MemoryContextDelete(buildcxt);
	LWLockAcquire(pvg_store_shared->lock, LW_EXCLUSIVE);

	TimestampDifference(build_start, GetCurrentTimestamp(), &secs, &usecs);
	pvg_store_shared->last_build_ms = secs * 1000 + usecs / 1000;

	/* the slot may have been given up and reused meanwhile: find it again */
	slot = pvg_shared_slot(sighash, kind);
	if (slot != NULL && slot->builder == MyProcPid)
		slot->builder = 0;
	if (slot == NULL && DsaPointerIsValid(dp))
	{
		dsa_free(pvg_area, dp);
		dp = InvalidDsaPointer;
	}

	/* lock held: publish (unless a newer one was published meanwhile) */
	if (!DsaPointerIsValid(dp))
	{
		pvg_store_shared->refused++;
		LWLockRelease(pvg_store_shared->lock);
		ConditionVariableBroadcast(&pvg_store_shared->cv);
		ereport(LOG,
				(errmsg("privacy_guard: the shared consent store is full, this backend uses a private copy"),
				 errhint("Raise privacy_guard.shared_store_size.")));
		pfree(held);
		return NULL;
	}
	else
	{
		PvgBaseImage *img = dsa_get_address(pvg_area, dp);
		PvgBaseImage *cur = DsaPointerIsValid(slot->image)
			? dsa_get_address(pvg_area, slot->image) : NULL;

		pvg_store_shared->builds++;
		img->refcount = 1;		/* ours */
		if (cur == NULL || cur->build_seq < build_seq)
		{
			if (cur != NULL)
			{
				cur->retired = true;
				if (cur->refcount <= 0)
					dsa_free(pvg_area, slot->image);
			}
			slot->image = dp;
			slot->db = MyDatabaseId;
			slot->kind = kind;
			slot->sighash = sighash;
		}
		else
			img->retired = true;	/* only ours */
		pvg_held_record(held, dp, owner);
		LWLockRelease(pvg_store_shared->lock);
		ConditionVariableBroadcast(&pvg_store_shared->cv);
		return img;
	}
}

/* Statistics for check() and tests: images, bytes, builds, refused. */
void
pvg_shared_stats(int64 *images, int64 *bytes, int64 *builds, int64 *refused)
{
	int			i;

	*images = *bytes = *builds = *refused = 0;
	if (pvg_store_shared == NULL)
		return;
	LWLockAcquire(pvg_store_shared->lock, LW_EXCLUSIVE);
	if (pvg_store_shared->handle != DSM_HANDLE_INVALID)
	{
		pvg_shared_attach();
		for (i = 0; i < PVG_MAX_BASES; i++)
		{
			PvgBaseSlot *s = &pvg_store_shared->slots[i];

			if (DsaPointerIsValid(s->image))
			{
				PvgBaseImage *img = dsa_get_address(pvg_area, s->image);

				(*images)++;
				*bytes += img->size;
			}
		}
	}
	*builds = pvg_store_shared->builds;
	*refused = pvg_store_shared->refused;
	LWLockRelease(pvg_store_shared->lock);
}

/*
 * _store_stats() -> (images, bytes, builds, refused): the shared images now
 * published, their size, the builds since server start and the images that
 * did not fit.  All zero when not preloaded.
 */
PG_FUNCTION_INFO_V1(pvg_store_stats);
Datum
pvg_store_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	int64		images,
				bytes,
				builds,
				refused;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	pvg_shared_stats(&images, &bytes, &builds, &refused);
	values[0] = Int64GetDatum(images);
	values[1] = Int64GetDatum(bytes);
	values[2] = Int64GetDatum(builds);
	values[3] = Int64GetDatum(refused);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * Take one more reference to an image another backend of this parallel
 * query holds (its leader, which keeps it until the query ends), for owner.
 */
const PvgBaseImage *
pvg_shared_base_ref(dsa_pointer dp, const void *owner)
{
	PvgHeldBase *held;
	PvgBaseImage *img;

	if (!pvg_shared_ready() || !DsaPointerIsValid(dp))
		return NULL;
	held = pvg_held_new();
	LWLockAcquire(pvg_store_shared->lock, LW_EXCLUSIVE);
	pvg_shared_attach();
	img = dsa_get_address(pvg_area, dp);
	img->refcount++;
	pvg_held_record(held, dp, owner);
	LWLockRelease(pvg_store_shared->lock);
	return img;
}

/* The DSA pointer of an image this backend holds; InvalidDsaPointer if none. */
dsa_pointer
pvg_shared_image_pointer(const PvgBaseImage *img)
{
	PvgHeldBase *h;

	if (pvg_area == NULL)
		return InvalidDsaPointer;
	for (h = pvg_held; h != NULL; h = h->next)
	{
		if (dsa_get_address(pvg_area, h->dp) == (void *) img)
			return h->dp;
	}
	return InvalidDsaPointer;
}

static PvgViewSlot *
pvg_view_slot(PGPROC *proc)
{
	if (pvg_view_slots == NULL || proc == NULL || proc->pgprocno < 0 ||
		proc->pgprocno >= pvg_nview_slots)
		return NULL;
	return &pvg_view_slots[proc->pgprocno];
}

/*
 * Publish this backend's view for the parallel workers of its statement
 * (replacing any earlier one).  False when it cannot (no room): the caller
 * then must not let workers decide for it.
 */
bool
pvg_shared_view_publish(const char *data, Size len)
{
	PvgViewSlot *slot = pvg_view_slot(MyProc);
	dsa_pointer dp;

	if (slot == NULL || !pvg_shared_ready())
		return false;
	pvg_shared_view_clear();
	LWLockAcquire(pvg_store_shared->lock, LW_EXCLUSIVE);
	pvg_shared_attach();
	LWLockRelease(pvg_store_shared->lock);
	dp = pvg_shared_allocate(len);
	if (!DsaPointerIsValid(dp))
		return false;
	memcpy(dsa_get_address(pvg_area, dp), data, len);
	LWLockAcquire(pvg_store_shared->lock, LW_EXCLUSIVE);
	slot->pid = MyProcPid;
	slot->stmt_start = GetCurrentStatementStartTimestamp();
	slot->view = dp;
	slot->len = len;
	LWLockRelease(pvg_store_shared->lock);
	return true;
}

/* Withdraw this backend's view (its statement ended). */
void
pvg_shared_view_clear(void)
{
	PvgViewSlot *slot = pvg_view_slot(MyProc);
	dsa_pointer dp = InvalidDsaPointer;

	if (slot == NULL || pvg_store_shared == NULL || slot->pid == 0)
		return;
	LWLockAcquire(pvg_store_shared->lock, LW_EXCLUSIVE);
	if (slot->pid == MyProcPid)
	{
		dp = slot->view;
		slot->pid = 0;
		slot->view = InvalidDsaPointer;
		slot->len = 0;
	}
	if (DsaPointerIsValid(dp) && pvg_area != NULL)
		dsa_free(pvg_area, dp);
	LWLockRelease(pvg_store_shared->lock);
}

/*
 * In a parallel worker: a copy of the view its leader published for this
 * statement (in CurrentMemoryContext), or NULL when there is none.
 */
char *
pvg_shared_view_fetch(Size *len)
{
	PGPROC	   *leader = MyProc ? MyProc->lockGroupLeader : NULL;
	PvgViewSlot *slot;
	char	   *copy = NULL;

	if (leader == NULL || leader == MyProc || !pvg_shared_ready())
		return NULL;
	slot = pvg_view_slot(leader);
	if (slot == NULL)
		return NULL;
	LWLockAcquire(pvg_store_shared->lock, LW_EXCLUSIVE);
	pvg_shared_attach();
	if (slot->pid != 0 && slot->pid == leader->pid &&
		slot->stmt_start == GetCurrentStatementStartTimestamp() &&
		DsaPointerIsValid(slot->view))
	{
		copy = palloc(slot->len);
		memcpy(copy, dsa_get_address(pvg_area, slot->view), slot->len);
		*len = slot->len;
	}
	LWLockRelease(pvg_store_shared->lock);
	return copy;
}
