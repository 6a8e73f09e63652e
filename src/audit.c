/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  The access log: reads of protected tables, aggregated per minute,
 *	  role, purpose and table, with a Bloom filter of the subjects read.
 *
 * With privacy_guard.audit on, the row check (enforce.c) asks for a
 * PvgAuditRead when a policy is first evaluated in an execution; it lives
 * in the execution's memory (fn_mcxt) and counts the visible rows and
 * notes their subjects: the first PVG_AUDIT_FEW as hashes, then in a
 * private Bloom filter.  All policy executions of one executor run for the
 * same table, role and purpose share one PvgAuditRead (a partitioned table
 * has one policy per partition), so it counts one statement.
 *
 * When the execution's memory goes away -- ExecutorEnd, or the abort of
 * the statement or its transaction -- a memory context callback folds the
 * read into a fixed-size shared hash keyed by (minute, database, role,
 * table, purpose), under one LWLock held only for the fold.  That is why
 * a read survives the rollback of the transaction that made it: nothing
 * here is transactional until the flush.  The callback never raises an
 * error and never waits for anything but the lock.
 *
 * privacy_guard._flush_access_log() (run by the worker's round and by
 * run_maintenance()) moves this database's entries from shared memory
 * into privacy_guard.access_log_data and deletes rows older than
 * privacy_guard.audit_retention.  The moved entries are kept in backend
 * memory until the transaction ends: if it, or the subtransaction that
 * flushed, aborts, they are folded back into shared memory, so a failed
 * round loses nothing.  The flush writes in its own subtransaction and
 * turns a failure into a WARNING, so a log that cannot be written never
 * stops the round's erasures.
 *
 * Bounds: privacy_guard.audit_max_entries shared entries of about 16 kB
 * each.  When regular entries would exceed that less PVG_AUDIT_RESERVED, a
 * read is folded into its database's overflow entry instead (no role,
 * purpose or table, but its statement and row counts and its subjects
 * are kept, so access_history() still finds it); if even that has no
 * room, into one overflow entry shared by all databases, flushed by the
 * next flush in any database.  No read is dropped and no reader waits
 * for a flush.
 *
 * A clean server stop writes the entries not yet flushed to
 * pg_stat/privacy_guard_access.stat (by the postmaster, after every other
 * process has exited), and the next start reads them back and removes the
 * file: a restart loses no read, and a crash after it counts none twice.
 * A crash, or an immediate stop, loses what was not flushed (the next
 * start discards the file unless pg_control says the stop was clean).
 * Entries of a database dropped since are dropped by the next flush in
 * any database.
 *
 * Roles the rules do not bind (superusers, BYPASSRLS) run no policy, so
 * their reads are taken in the ExecutorStart hook instead: once per table
 * and role per transaction, at table level (no rows, no subjects), marked
 * unbound (pvg_audit_unbound_reads).  privacy_guard's own reads as a
 * table's owner are not logged.
 *
 * Shared memory needs shared_preload_libraries.  Without it, a backend
 * with privacy_guard.audit on warns once and logs nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_control.h"
#include "commands/extension.h"
#include "common/controldata_utils.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/ilist.h"
#include "nodes/parsenodes.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(pvg_flush_access_log);
PG_FUNCTION_INFO_V1(pvg_subjects_may_include);

#define PVG_AUDIT_RESERVED	16	/* shared entries kept for overflow entries */
#define PVG_AUDIT_PURPOSE_LEN 128	/* longer purpose names are cut */
#define PVG_AUDIT_FEW		32	/* subjects a read notes before its filter */

/* the Bloom filter: m bits, k probes by double hashing */
#define PVG_BLOOM_BITS		131072
#define PVG_BLOOM_WORDS		(PVG_BLOOM_BITS / 64)
#define PVG_BLOOM_BYTES		(PVG_BLOOM_BITS / 8)
#define PVG_BLOOM_K			5
#define PVG_BLOOM_SEED		UINT64CONST(0x70766761756469)

/* the entries kept over a clean restart */
#define PVG_AUDIT_DUMP_FILE	PGSTAT_STAT_PERMANENT_DIRECTORY "/privacy_guard_access.stat"
#define PVG_AUDIT_DUMP_MAGIC 0x70766761	/* "pvga" */
#define PVG_AUDIT_DUMP_VERSION 1

typedef struct PvgAuditKey
{
	TimestampTz bucket;			/* start of the minute; 0: overflow entry */
	Oid			dbid;			/* InvalidOid: the overflow of all databases */
	Oid			roleid;			/* InvalidOid in overflow entries */
	Oid			relid;			/* InvalidOid in overflow entries */
	char		purpose[PVG_AUDIT_PURPOSE_LEN];
	bool		unbound;		/* a read by a role the rules do not bind (in
								 * what was padding before: dumps of older
								 * builds load as bound reads) */
} PvgAuditKey;

typedef struct PvgAuditEntry
{
	PvgAuditKey key;
	TimestampTz last;			/* latest bucket folded in (overflow: several) */
	int64		statements;
	int64		rows;
	uint64		bloom[PVG_BLOOM_WORDS];
} PvgAuditEntry;

typedef struct PvgAuditShared
{
	LWLock	   *lock;			/* guards the hash */
} PvgAuditShared;

/* one statement's reads of one table under one role and purpose */
struct PvgAuditRead
{
	dlist_node	node;			/* in pvg_audit_live */
	MemoryContext cxt;
	MemoryContextCallback cb;
	Oid			relid;
	Oid			roleid;
	char		purpose[PVG_AUDIT_PURPOSE_LEN];
	int64		rows;
	int			nfew;
	uint64		few[PVG_AUDIT_FEW];
	uint64	   *bloom;			/* NULL until more than PVG_AUDIT_FEW subjects */
};

/* entries a flush took out of shared memory, until its transaction ends */
typedef struct PvgAuditTaken
{
	struct PvgAuditTaken *next;
	SubTransactionId subid;
	int			n;
	PvgAuditEntry *entries;
} PvgAuditTaken;

static PvgAuditShared *pvg_audit_shared = NULL;
static HTAB *pvg_audit_htab = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static dlist_head pvg_audit_live = DLIST_STATIC_INIT(pvg_audit_live);
static PvgAuditTaken *pvg_audit_taken = NULL;
static bool pvg_audit_warned = false;

/*
 * The tables that statements of this transaction were allowed to read (in
 * TopTransactionContext).  A read is logged only for them: row_visible()
 * can be called directly by any role, and must not let one without access
 * to a table write reads of it into the log.
 */
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static List *pvg_audit_readable = NIL;

/*
 * Reads of protected tables by roles the rules do not bind (superusers,
 * BYPASSRLS): no policy runs for them, so they are logged here, at table
 * level (no subjects, no row count), once per table and role per
 * transaction (in TopTransactionContext: pairs of role and table OIDs).
 */
static List *pvg_audit_unbound_seen = NIL;
static bool pvg_audit_in_unbound = false;

static void pvg_audit_fold(const PvgAuditKey *key, TimestampTz bucket, int64 statements,
						   int64 rows, const uint64 *few, int nfew, const uint64 *bloom);
static void pvg_audit_load(void);
static void pvg_audit_dump(int code, Datum arg);

static Size
pvg_audit_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(PvgAuditShared)),
					hash_estimate_size(pvg_audit_max_entries, sizeof(PvgAuditEntry)));
}

static void
pvg_audit_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(pvg_audit_shmem_size());
	RequestNamedLWLockTranche("privacy_guard_audit", 1);
}

static void
pvg_audit_shmem_startup(void)
{
	HASHCTL		info;
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	pvg_audit_shared = ShmemInitStruct("privacy_guard audit", sizeof(PvgAuditShared), &found);
	if (!found)
	{
		pvg_audit_shared->lock = &(GetNamedLWLockTranche("privacy_guard_audit"))->lock;
	}
	info.keysize = sizeof(PvgAuditKey);
	info.entrysize = sizeof(PvgAuditEntry);
	pvg_audit_htab = ShmemInitHash("privacy_guard access log", pvg_audit_max_entries,
								   pvg_audit_max_entries, &info,
								   HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	/* the postmaster: the reads kept over the last clean stop, and the next one */
	if (!IsUnderPostmaster)
	{
		if (!found)
			pvg_audit_load();
		on_shmem_exit(pvg_audit_dump, (Datum) 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * The file a clean stop writes: this header, the entries, and a CRC-32C of
 * both.  Its version changes whenever an entry's layout or the subjects'
 * hashing does, so a filter is never read with other probes than it was
 * written with.
 */
typedef struct PvgAuditDumpHeader
{
	uint32		magic;
	uint32		version;
	uint32		entry_size;
	uint32		bloom_bits;
	uint32		bloom_k;
	uint32		nentries;
	uint64		bloom_seed;
} PvgAuditDumpHeader;

static void
pvg_audit_dump_header(PvgAuditDumpHeader *h, uint32 nentries)
{
	memset(h, 0, sizeof(*h));
	h->magic = PVG_AUDIT_DUMP_MAGIC;
	h->version = PVG_AUDIT_DUMP_VERSION;
	h->entry_size = sizeof(PvgAuditEntry);
	h->bloom_bits = PVG_BLOOM_BITS;
	h->bloom_k = PVG_BLOOM_K;
	h->nentries = nentries;
	h->bloom_seed = PVG_BLOOM_SEED;
}

/* Whether the server's last stop was clean (pg_control, as the postmaster starts). */
static bool
pvg_audit_clean_stop(void)
{
	bool		crc_ok;
	ControlFileData *control = get_controlfile(DataDir, &crc_ok);
	bool		clean = crc_ok && (control->state == DB_SHUTDOWNED ||
								   control->state == DB_SHUTDOWNED_IN_RECOVERY);

	pfree(control);
	return clean;
}

/*
 * Fold the entries the last stop wrote back into shared memory (at server
 * start, in the postmaster), then remove the file, so that a crash later
 * loads nothing twice.  All or nothing: a file that is incomplete, damaged
 * or of another version, or left by a stop that was not clean (pg_ctl stop
 * -m immediate writes it too, but the processes it killed may have left an
 * entry half-updated), is reported and removed: the log is evidence, but a
 * bad file must not stop the server or enter it.
 */
static void
pvg_audit_load(void)
{
	FILE	   *file;
	PvgAuditDumpHeader header;
	PvgAuditDumpHeader expected;
	PvgAuditEntry *entries = NULL;
	pg_crc32c	crc;
	pg_crc32c	stored;
	const char *why;

	file = AllocateFile(PVG_AUDIT_DUMP_FILE, PG_BINARY_R);
	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", PVG_AUDIT_DUMP_FILE)));
		return;
	}
	why = "the server did not stop cleanly";
	if (!pvg_audit_clean_stop())
		goto bad;
	why = "it is incomplete, damaged or from another version";
	if (fread(&header, sizeof(header), 1, file) != 1)
		goto bad;
	pvg_audit_dump_header(&expected, header.nentries);
	if (memcmp(&header, &expected, sizeof(header)) != 0 || header.nentries > 65536)
		goto bad;
	entries = palloc_extended(sizeof(PvgAuditEntry) * Max(header.nentries, 1), MCXT_ALLOC_HUGE);
	if (header.nentries > 0 &&
		fread(entries, sizeof(PvgAuditEntry), header.nentries, file) != header.nentries)
		goto bad;
	if (fread(&stored, sizeof(stored), 1, file) != 1 || fgetc(file) != EOF)
		goto bad;
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, &header, sizeof(header));
	COMP_CRC32C(crc, entries, sizeof(PvgAuditEntry) * header.nentries);
	FIN_CRC32C(crc);
	if (!EQ_CRC32C(crc, stored))
		goto bad;
	for (uint32 i = 0; i < header.nentries; i++)
	{
		PvgAuditEntry *e = &entries[i];

		if (memchr(e->key.purpose, '\0', sizeof(e->key.purpose)) == NULL ||
			e->statements < 0 || e->rows < 0)
			goto bad;
	}

	for (uint32 i = 0; i < header.nentries; i++)
	{
		PvgAuditEntry *e = &entries[i];

		pvg_audit_fold(&e->key, e->last, e->statements, e->rows, NULL, 0, e->bloom);
	}
	FreeFile(file);
	pfree(entries);
	(void) durable_unlink(PVG_AUDIT_DUMP_FILE, LOG);
	return;

bad:
	ereport(LOG,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("privacy_guard: discarding the access log's reads kept at the last stop: %s", why),
			 errdetail("File \"%s\" is removed; the reads it held are not in the access log.",
					   PVG_AUDIT_DUMP_FILE)));
	FreeFile(file);
	if (entries != NULL)
		pfree(entries);
	(void) durable_unlink(PVG_AUDIT_DUMP_FILE, LOG);
}

/*
 * At a stop (the postmaster's exit, after every other process has gone),
 * write the entries not yet flushed to a file for the next start.  Nothing
 * after a crash (the shared memory may be corrupt); the next start also
 * discards what an immediate stop wrote (see pvg_audit_load).
 */
static void
pvg_audit_dump(int code, Datum arg)
{
	const char *tmpfile = PVG_AUDIT_DUMP_FILE ".tmp";
	FILE	   *file;
	PvgAuditDumpHeader header;
	HASH_SEQ_STATUS seq;
	PvgAuditEntry *e;
	pg_crc32c	crc;

	if (code != 0 || pvg_audit_htab == NULL)
		return;
	pvg_audit_dump_header(&header, (uint32) hash_get_num_entries(pvg_audit_htab));
	if (header.nentries == 0)
		return;
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, &header, sizeof(header));
	file = AllocateFile(tmpfile, PG_BINARY_W);
	if (file == NULL || fwrite(&header, sizeof(header), 1, file) != 1)
		goto error;
	hash_seq_init(&seq, pvg_audit_htab);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (fwrite(e, sizeof(PvgAuditEntry), 1, file) != 1)
		{
			hash_seq_term(&seq);
			goto error;
		}
		COMP_CRC32C(crc, e, sizeof(PvgAuditEntry));
	}
	FIN_CRC32C(crc);
	if (fwrite(&crc, sizeof(crc), 1, file) != 1)
		goto error;
	if (FreeFile(file) != 0)
	{
		file = NULL;
		goto error;
	}
	(void) durable_rename(tmpfile, PVG_AUDIT_DUMP_FILE, LOG);
	return;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("privacy_guard: could not write the access log's unflushed reads to \"%s\": %m",
					tmpfile)));
	if (file != NULL)
		FreeFile(file);
	unlink(tmpfile);
}

/* 64-bit finaliser (MurmurHash3) of an integer subject */
static inline uint64
pvg_audit_hash_int(int64 key)
{
	uint64		h = (uint64) key ^ PVG_BLOOM_SEED;

	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return h;
}

/*
 * Hash of a subject's text form.  The canonical text of an integer hashes
 * as that integer, so a text subject '42' and an integer subject 42 are one
 * key to the filter and access_history() probes one hash, not two (which
 * would double its false-positive rate).
 */
static inline uint64
pvg_audit_hash_text(const char *s, int len)
{
	int64		key;

	if (len <= 20 && len > 0 && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) &&
		pvg_parse_canonical_int(s, len, &key))
		return pvg_audit_hash_int(key);
	return hash_bytes_extended((const unsigned char *) s, len, PVG_BLOOM_SEED);
}

/* set the k bits of one subject hash */
static inline void
pvg_bloom_add(uint64 *bloom, uint64 h)
{
	uint32		h1 = (uint32) h;
	uint32		h2 = (uint32) (h >> 32) | 1;
	int			i;

	for (i = 0; i < PVG_BLOOM_K; i++)
	{
		uint32		bit = (h1 + i * h2) & (PVG_BLOOM_BITS - 1);

		bloom[bit / 64] |= UINT64CONST(1) << (bit % 64);
	}
}

static inline bool
pvg_bloom_test(const uint64 *bloom, uint64 h)
{
	uint32		h1 = (uint32) h;
	uint32		h2 = (uint32) (h >> 32) | 1;
	int			i;

	for (i = 0; i < PVG_BLOOM_K; i++)
	{
		uint32		bit = (h1 + i * h2) & (PVG_BLOOM_BITS - 1);

		if ((bloom[bit / 64] & (UINT64CONST(1) << (bit % 64))) == 0)
			return false;
	}
	return true;
}

/* find or create an entry, creating only while the hash has fewer than limit */
static PvgAuditEntry *
pvg_audit_enter(const PvgAuditKey *key, long limit)
{
	PvgAuditEntry *e;
	bool		found;

	e = hash_search(pvg_audit_htab, key, HASH_FIND, NULL);
	if (e != NULL || hash_get_num_entries(pvg_audit_htab) >= limit)
		return e;
	e = hash_search(pvg_audit_htab, key, HASH_ENTER_NULL, &found);
	if (e != NULL && !found)
	{
		e->last = key->bucket;
		e->statements = 0;
		e->rows = 0;
		memset(e->bloom, 0, sizeof(e->bloom));
	}
	return e;
}

/*
 * The entry a fold goes to: its own if it exists or there is room, else
 * the overflow entry of its database, else the overflow of all databases
 * (for which one slot is always free).  Caller holds the lock exclusively.
 * Never raises an error; NULL only if the hash is corrupt.
 */
static PvgAuditEntry *
pvg_audit_entry(const PvgAuditKey *key)
{
	PvgAuditEntry *e;
	PvgAuditKey okey;

	if (key->bucket != 0)
	{
		e = pvg_audit_enter(key, pvg_audit_max_entries - PVG_AUDIT_RESERVED);
		if (e != NULL)
			return e;
		memset(&okey, 0, sizeof(okey));
		okey.dbid = key->dbid;
	}
	else
		memcpy(&okey, key, sizeof(okey));	/* an overflow entry folded back */
	e = pvg_audit_enter(&okey, pvg_audit_max_entries - 1);
	if (e == NULL)
	{
		okey.dbid = InvalidOid;
		e = pvg_audit_enter(&okey, pvg_audit_max_entries);
	}
	return e;
}

/*
 * Fold counts and subjects into shared memory (caller holds the lock).
 * bucket is the entry's time; few/nfew or bloom carry the subjects.
 */
static void
pvg_audit_fold(const PvgAuditKey *key, TimestampTz bucket, int64 statements, int64 rows,
			   const uint64 *few, int nfew, const uint64 *bloom)
{
	PvgAuditEntry *e;
	int			i;

	e = pvg_audit_entry(key);
	if (e == NULL)
		return;					/* cannot happen: a slot is always kept */
	/* an overflow row is dated by its latest read, so access_history misses none */
	if (bucket > e->last)
		e->last = bucket;
	e->statements += statements;
	e->rows += rows;
	if (bloom != NULL)
	{
		for (i = 0; i < PVG_BLOOM_WORDS; i++)
			e->bloom[i] |= bloom[i];
	}
	for (i = 0; i < nfew; i++)
		pvg_bloom_add(e->bloom, few[i]);
}

/*
 * Memory context callback: the execution that read is over (finished or
 * aborted).  Fold the read into shared memory.  Runs during abort too, so
 * it must not raise an error.
 */
static void
pvg_audit_read_done(void *arg)
{
	PvgAuditRead *r = (PvgAuditRead *) arg;
	PvgAuditKey key;
	TimestampTz now;

	dlist_delete(&r->node);
	/* no PGPROC (late in process exit): the lock could not be waited for */
	if (pvg_audit_shared == NULL || MyProc == NULL)
		return;
	now = GetCurrentTimestamp();
	memset(&key, 0, sizeof(key));
	key.bucket = now - (now % USECS_PER_MINUTE);
	if (now < 0 && now % USECS_PER_MINUTE != 0)
		key.bucket -= USECS_PER_MINUTE;
	if (key.bucket == 0)
		key.bucket = 1;			/* 0 marks overflow entries (2000-01-01 00:00) */
	key.dbid = MyDatabaseId;
	key.roleid = r->roleid;
	key.relid = r->relid;
	memcpy(key.purpose, r->purpose, sizeof(key.purpose));

	LWLockAcquire(pvg_audit_shared->lock, LW_EXCLUSIVE);
	/* the leader counts a parallel statement (parallel.c), its workers its rows */
	pvg_audit_fold(&key, key.bucket, IsParallelWorker() ? 0 : 1, r->rows, r->few,
				   r->bloom ? 0 : r->nfew, r->bloom);
	LWLockRelease(pvg_audit_shared->lock);
}

/*
 * The read record for the first row check of a policy execution, or NULL
 * when nothing is logged (audit off, or no shared memory: warns once per
 * backend).  cxt is the execution's memory; the record is folded into
 * shared memory when cxt is deleted.  Executions in the same cxt for the
 * same table, role and purpose share a record.
 */
PvgAuditRead *
pvg_audit_begin(Oid relid, const char *purpose, MemoryContext cxt)
{
	PvgAuditRead *r;
	Oid			roleid = GetUserId();
	dlist_iter	iter;

	if (!pvg_audit)
		return NULL;
	/* a parallel worker runs only what its leader was allowed to read */
	if (pvg_audit_shared != NULL && !IsParallelWorker() &&
		!list_member_oid(pvg_audit_readable, relid))
		return NULL;			/* a direct call, not a read of the table */
	if (pvg_audit_shared == NULL)
	{
		if (!pvg_audit_warned)
		{
			pvg_audit_warned = true;
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("privacy_guard.audit is on but reads are not being logged"),
					 errdetail("The access log needs shared memory, which privacy_guard only has when it is in shared_preload_libraries."),
					 errhint("Add privacy_guard to shared_preload_libraries and restart the server.")));
		}
		return NULL;
	}

	dlist_foreach(iter, &pvg_audit_live)
	{
		r = dlist_container(PvgAuditRead, node, iter.cur);
		if (r->cxt == cxt && r->relid == relid && r->roleid == roleid &&
			strncmp(r->purpose, purpose, PVG_AUDIT_PURPOSE_LEN - 1) == 0)
			return r;
	}

	r = MemoryContextAllocZero(cxt, sizeof(PvgAuditRead));
	r->cxt = cxt;
	r->relid = relid;
	r->roleid = roleid;
	strlcpy(r->purpose, purpose, sizeof(r->purpose));
	r->cb.func = pvg_audit_read_done;
	r->cb.arg = r;
	MemoryContextRegisterResetCallback(cxt, &r->cb);
	dlist_push_head(&pvg_audit_live, &r->node);
	return r;
}

/* note a visible row's subject hash: in the list of a few, then the filter */
static void
pvg_audit_note(PvgAuditRead *r, uint64 h)
{
	int			i;

	if (r->bloom != NULL)
	{
		pvg_bloom_add(r->bloom, h);
		return;
	}
	if (r->nfew < PVG_AUDIT_FEW)
	{
		r->few[r->nfew++] = h;
		return;
	}
	r->bloom = MemoryContextAllocZero(r->cxt, PVG_BLOOM_BYTES);
	for (i = 0; i < r->nfew; i++)
		pvg_bloom_add(r->bloom, r->few[i]);
	pvg_bloom_add(r->bloom, h);
}

/* a visible row without a subject */
void
pvg_audit_row(PvgAuditRead *r)
{
	r->rows++;
}

/* a visible row whose subject is an integer */
void
pvg_audit_row_int(PvgAuditRead *r, int64 subject)
{
	r->rows++;
	pvg_audit_note(r, pvg_audit_hash_int(subject));
}

/* a visible row whose subject is looked up by its text form */
void
pvg_audit_row_text(PvgAuditRead *r, const char *subject, int len)
{
	r->rows++;
	pvg_audit_note(r, pvg_audit_hash_text(subject, len));
}

/* put entries a flush took back into shared memory (its transaction failed) */
static void
pvg_audit_restore(PvgAuditTaken *t)
{
	int			i;

	if (pvg_audit_shared == NULL)
		return;
	LWLockAcquire(pvg_audit_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < t->n; i++)
	{
		PvgAuditEntry *e = &t->entries[i];

		pvg_audit_fold(&e->key, e->last, e->statements, e->rows, NULL, 0, e->bloom);
	}
	LWLockRelease(pvg_audit_shared->lock);
}

/*
 * Log the protected tables a statement reads when its role is one the
 * rules do not bind (superuser or BYPASSRLS), once per table and role per
 * transaction.  Not logged: privacy_guard's own reads as a table's owner
 * (the rounds' erasures and purges, subject_report, the register), which
 * run with FORCE ROW LEVEL SECURITY lifted for that owner, as PostgreSQL's
 * foreign-key checks do (the same context marks both); statements while
 * the registry itself is being read.  A table is matched by its
 * registration: a partition read directly is not.
 */
static void
pvg_audit_unbound_reads(QueryDesc *queryDesc)
{
	Oid			userid = GetUserId();
	PvgRegistry *reg = NULL;
	ListCell   *lc;
	Oid			nsp;

	if (pvg_audit_in_unbound || InNoForceRLSOperation() || creating_extension ||
		IsBinaryUpgrade || !IsTransactionState() ||
		!(superuser_arg(userid) || has_bypassrls_privilege(userid)))
		return;
	/* not installed here, or being dropped in this transaction: nothing is protected */
	nsp = get_namespace_oid("privacy_guard", true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("protected_table", nsp)))
		return;
	foreach(lc, queryDesc->plannedstmt->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
		ListCell   *sc;
		bool		seen = false;
		PvgAuditKey key;
		TimestampTz now;
		MemoryContext old;

		if (rte->rtekind != RTE_RELATION || (rte->requiredPerms & ACL_SELECT) == 0)
			continue;
		foreach(sc, pvg_audit_unbound_seen)
		{
			Oid		   *pair = (Oid *) lfirst(sc);

			if (pair[0] == userid && pair[1] == rte->relid)
				seen = true;
		}
		if (seen)
			continue;
		if (reg == NULL)
		{
			/* the registry's own reads come through here too */
			pvg_audit_in_unbound = true;
			PG_TRY();
			{
				pvg_cache_accept();
				reg = pvg_registry();
			}
			PG_FINALLY();
			{
				pvg_audit_in_unbound = false;
			}
			PG_END_TRY();
		}
		if (pvg_registry_table(reg, rte->relid) == NULL)
			continue;

		old = MemoryContextSwitchTo(TopTransactionContext);
		{
			Oid		   *pair = palloc(2 * sizeof(Oid));

			pair[0] = userid;
			pair[1] = rte->relid;
			pvg_audit_unbound_seen = lappend(pvg_audit_unbound_seen, pair);
		}
		MemoryContextSwitchTo(old);

		now = GetCurrentTimestamp();
		memset(&key, 0, sizeof(key));
		key.bucket = now - (now % USECS_PER_MINUTE);
		if (key.bucket == 0)
			key.bucket = 1;
		key.dbid = MyDatabaseId;
		key.roleid = userid;
		key.relid = rte->relid;
		if (pvg_purpose != NULL)
			strlcpy(key.purpose, pvg_purpose, sizeof(key.purpose));
		key.unbound = true;
		LWLockAcquire(pvg_audit_shared->lock, LW_EXCLUSIVE);
		pvg_audit_fold(&key, key.bucket, 1, 0, NULL, 0, NULL);
		LWLockRelease(pvg_audit_shared->lock);
	}
}

/*
 * After the executor has checked the statement's permissions, note the
 * tables it reads (a view's tables included): every call of a table's
 * policy comes from such a statement.
 */
static void
pvg_audit_executor_start(QueryDesc *queryDesc, int eflags)
{
	ListCell   *lc;

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
	if (!pvg_audit || pvg_audit_shared == NULL || IsParallelWorker())
		return;
	foreach(lc, queryDesc->plannedstmt->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		if (rte->rtekind == RTE_RELATION && !list_member_oid(pvg_audit_readable, rte->relid))
		{
			MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

			pvg_audit_readable = lappend_oid(pvg_audit_readable, rte->relid);
			MemoryContextSwitchTo(old);
		}
	}
	pvg_audit_unbound_reads(queryDesc);
}

static void
pvg_audit_xact_callback(XactEvent event, void *arg)
{
	PvgAuditTaken *t;

	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		pvg_audit_readable = NIL;	/* its memory goes with the transaction */
		pvg_audit_unbound_seen = NIL;
	}
	if (pvg_audit_taken == NULL)
		return;

	/*
	 * The entries a flush took out of shared memory live on only in this
	 * transaction's rows: once prepared, a ROLLBACK PREPARED (in any
	 * session) would lose them, and putting them back would count them
	 * twice after a COMMIT PREPARED.  So such a transaction cannot be
	 * prepared, as one that used temporary tables cannot.
	 */
	if (event == XACT_EVENT_PRE_PREPARE)
	{
		for (t = pvg_audit_taken; t != NULL; t = t->next)
		{
			if (t->n > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has flushed the access log")));
		}
	}
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	while ((t = pvg_audit_taken) != NULL)
	{
		pvg_audit_taken = t->next;
		if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
			pvg_audit_restore(t);
		pfree(t->entries);
		pfree(t);
	}
}

static void
pvg_audit_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						   SubTransactionId parentSubid, void *arg)
{
	PvgAuditTaken **link = &pvg_audit_taken;
	PvgAuditTaken *t;

	while ((t = *link) != NULL)
	{
		if (t->subid == mySubid && event == SUBXACT_EVENT_COMMIT_SUB)
			t->subid = parentSubid;
		else if (t->subid == mySubid && event == SUBXACT_EVENT_ABORT_SUB)
		{
			*link = t->next;
			pvg_audit_restore(t);
			pfree(t->entries);
			pfree(t);
			continue;
		}
		link = &t->next;
	}
}

/* text for a log row: the role's name, or its OID if it is gone */
static Datum
pvg_audit_role_text(Oid roleid)
{
	char	   *name = GetUserNameFromId(roleid, true);

	if (name == NULL)
		return CStringGetTextDatum(psprintf("role with OID %u", roleid));
	return CStringGetTextDatum(name);
}

/* text for a log row: the table's qualified name, or its OID if it is gone */
static Datum
pvg_audit_table_text(Oid relid)
{
	char	   *rel = get_rel_name(relid);
	char	   *nsp = rel ? get_namespace_name(get_rel_namespace(relid)) : NULL;

	if (rel == NULL || nsp == NULL)
		return CStringGetTextDatum(psprintf("table with OID %u", relid));
	return CStringGetTextDatum(quote_qualified_identifier(nsp, rel));
}

/*
 * Drop the entries of databases dropped since their reads, which no flush
 * would ever take (their log table went with them).  Looks at up to
 * PVG_AUDIT_DBS other databases per flush; the catalog is read without the
 * lock held.
 */
#define PVG_AUDIT_DBS 64

static void
pvg_audit_drop_gone(void)
{
	Oid			dbids[PVG_AUDIT_DBS];
	int			n = 0;
	int			ngone = 0;
	HASH_SEQ_STATUS seq;
	PvgAuditEntry *e;

	LWLockAcquire(pvg_audit_shared->lock, LW_SHARED);
	hash_seq_init(&seq, pvg_audit_htab);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		int			i;

		if (e->key.dbid == InvalidOid || e->key.dbid == MyDatabaseId)
			continue;
		for (i = 0; i < n && dbids[i] != e->key.dbid; i++)
			;
		if (i == n)
			dbids[n++] = e->key.dbid;
		if (n == PVG_AUDIT_DBS)
		{
			hash_seq_term(&seq);
			break;
		}
	}
	LWLockRelease(pvg_audit_shared->lock);
	if (n == 0)
		return;

	/* a database created since this backend last looked must not look gone */
	AcceptInvalidationMessages();
	for (int i = 0; i < n; i++)
	{
		if (SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(dbids[i])))
			continue;
		dbids[ngone++] = dbids[i];
	}
	if (ngone == 0)
		return;

	LWLockAcquire(pvg_audit_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, pvg_audit_htab);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		for (int i = 0; i < ngone; i++)
		{
			if (e->key.dbid == dbids[i])
			{
				hash_search(pvg_audit_htab, &e->key, HASH_REMOVE, NULL);
				break;
			}
		}
	}
	LWLockRelease(pvg_audit_shared->lock);
}

/*
 * Move this database's entries (and the overflow of all databases) from
 * shared memory into access_log_data, and prune it; returns the rows
 * written.  The entries taken are kept until the (sub)transaction ends and
 * put back if it aborts.  Can raise an error.
 */
static int64
pvg_flush_write(void)
{
	PvgAuditTaken *t = NULL;
	int64		written = 0;
	int64		overflowed = 0;
	int			ret;
	Oid			argtypes[8] = {TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, INT8OID, BYTEAOID, BOOLOID};
	Oid			prunetype[1] = {TIMESTAMPTZOID};
	Datum		prune[1];
	TimestampTz cutoff;

	if (pvg_audit_shared != NULL)
	{
		HASH_SEQ_STATUS seq;
		PvgAuditEntry *e;
		long		max;

		pvg_audit_drop_gone();
		/* room for a full table, allocated before the lock is taken */
		max = pvg_audit_max_entries;
		t = MemoryContextAllocZero(TopMemoryContext, sizeof(PvgAuditTaken));
		t->entries = MemoryContextAllocHuge(TopMemoryContext, sizeof(PvgAuditEntry) * max);
		t->subid = GetCurrentSubTransactionId();
		LWLockAcquire(pvg_audit_shared->lock, LW_EXCLUSIVE);
		hash_seq_init(&seq, pvg_audit_htab);
		while ((e = hash_seq_search(&seq)) != NULL)
		{
			if (e->key.dbid != MyDatabaseId && e->key.dbid != InvalidOid)
				continue;
			if (t->n >= max)
			{
				hash_seq_term(&seq);
				break;
			}
			memcpy(&t->entries[t->n++], e, sizeof(PvgAuditEntry));
			hash_search(pvg_audit_htab, &e->key, HASH_REMOVE, NULL);
		}
		LWLockRelease(pvg_audit_shared->lock);
		/* from here on, an abort puts them back */
		t->next = pvg_audit_taken;
		pvg_audit_taken = t;
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (t != NULL && t->n > 0)
	{
		SPIPlanPtr	plan;
		int			i;

		plan = SPI_prepare("INSERT INTO privacy_guard.access_log_data "
						   "(bucket, role, purpose, table_name, statements, rows, subjects, unbound) "
						   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", 8, argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		for (i = 0; i < t->n; i++)
		{
			PvgAuditEntry *e = &t->entries[i];
			bool		is_overflow = (e->key.bucket == 0);
			Datum		values[8];
			char		nulls[8] = "        ";
			bytea	   *filter = palloc(VARHDRSZ + PVG_BLOOM_BYTES);

			SET_VARSIZE(filter, VARHDRSZ + PVG_BLOOM_BYTES);
			memcpy(VARDATA(filter), e->bloom, PVG_BLOOM_BYTES);
			values[0] = TimestampTzGetDatum(e->last);
			if (is_overflow)
			{
				nulls[1] = nulls[2] = nulls[3] = 'n';
				overflowed += e->statements;
			}
			else
			{
				values[1] = pvg_audit_role_text(e->key.roleid);
				values[2] = CStringGetTextDatum(e->key.purpose);
				values[3] = pvg_audit_table_text(e->key.relid);
			}
			values[4] = Int64GetDatum(e->statements);
			values[5] = Int64GetDatum(e->rows);
			values[6] = PointerGetDatum(filter);
			values[7] = BoolGetDatum(e->key.unbound);
			ret = SPI_execute_plan(plan, values, nulls, false, 0);
			if (ret != SPI_OK_INSERT)
				elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
			written++;
			pfree(filter);
		}
	}

	cutoff = GetCurrentTransactionStartTimestamp() - (int64) pvg_audit_retention * USECS_PER_MINUTE;
	prune[0] = TimestampTzGetDatum(cutoff);
	ret = SPI_execute_with_args("DELETE FROM privacy_guard.access_log_data "
								"WHERE bucket OPERATOR(pg_catalog.<) $1",
								1, prunetype, prune, NULL, false, 0);
	if (ret != SPI_OK_DELETE)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	SPI_finish();

	if (overflowed > 0)
		ereport(LOG,
				(errmsg("privacy_guard: the access log was full; %lld statements were logged without their role, purpose and table",
						(long long) overflowed),
				 errhint("Run privacy_guard.run_maintenance() more often, or shorten privacy_guard.naptime.")));
	return written;
}

/*
 * _flush_access_log() -> bigint
 *
 * pvg_flush_write() in a subtransaction: if writing the log fails (a lock
 * timeout, a full disk), the reads go back to shared memory for the next
 * round, a WARNING says so and the result is NULL, and the caller -- the
 * enforcement round -- goes on: a broken log must not stop erasures.  A
 * cancel is not swallowed.  Without shared memory (not preloaded) it only
 * prunes.
 */
Datum
pvg_flush_access_log(PG_FUNCTION_ARGS)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	int64		written = 0;
	bool		failed = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		written = pvg_flush_write();
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
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("privacy_guard: the access log could not be written: %s", edata->message),
				 errdetail("The reads stay in shared memory for the next round.")));
		FreeErrorData(edata);
		failed = true;
	}
	PG_END_TRY();
	if (failed)
		PG_RETURN_NULL();
	PG_RETURN_INT64(written);
}

/*
 * _subjects_may_include(filter bytea, subject text) -> boolean
 *
 * Whether a log row's Bloom filter may hold the subject: false means
 * certainly not.  The subject is hashed as rows note it: the canonical
 * text form of an integer as that integer (integer subject columns are
 * noted by value, and looked up by value everywhere else).
 */
Datum
pvg_subjects_may_include(PG_FUNCTION_ARGS)
{
	bytea	   *filter = PG_GETARG_BYTEA_PP(0);
	text	   *subject = PG_GETARG_TEXT_PP(1);
	const char *s = VARDATA_ANY(subject);
	int			len = VARSIZE_ANY_EXHDR(subject);
	uint64		bloom[PVG_BLOOM_WORDS];

	if (VARSIZE_ANY_EXHDR(filter) != PVG_BLOOM_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("access log filter has %d bytes, expected %d",
						(int) VARSIZE_ANY_EXHDR(filter), PVG_BLOOM_BYTES)));
	memcpy(bloom, VARDATA_ANY(filter), PVG_BLOOM_BYTES);
	PG_RETURN_BOOL(pvg_bloom_test(bloom, pvg_audit_hash_text(s, len)));
}

/*
 * Ask for shared memory when preloaded, and watch transaction ends (for
 * flushes that must be undone).  Called from _PG_init.
 */
void
pvg_audit_init(void)
{
	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = pvg_audit_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = pvg_audit_shmem_startup;
		prev_ExecutorStart = ExecutorStart_hook;
		ExecutorStart_hook = pvg_audit_executor_start;
	}
	RegisterXactCallback(pvg_audit_xact_callback, NULL);
	RegisterSubXactCallback(pvg_audit_subxact_callback, NULL);
}
