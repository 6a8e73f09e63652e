/*-------------------------------------------------------------------------
 *
 * forgotten.c
 *	  Tagged values of subjects forgotten while this session was open.
 *
 * A forget request that is done has dropped its raw key, so the consent
 * store no longer withholds the subject's tagged values.  The round erased
 * them from every table it can reach, but a session may still hold copies
 * where no round reaches: its temporary tables, its WITH HOLD cursors.
 * Only a session that was open before the request closed can hold such a
 * copy, so each session also withholds every tagged value whose subject's
 * keyed digest (the receipt keeps it, never the key) is that of a request
 * completed since the session started, for as long as the receipt is kept.
 * The comparison is with the request's completed_at, which the closing
 * round sets just before it commits (the worker commits at once); a
 * parallel worker takes its leader's start, or every receipt when it
 * cannot find it.
 *
 * The set is reloaded after every change to the requests (the relcache
 * invalidation privacy_guard's statement trigger sends).  While it is
 * empty, which it is for every session started after the last erasure, a
 * tagged value costs one test of a flag; otherwise one HMAC of its subject
 * key.
 *
 * The price is that a subject forgotten and then given new tagged values
 * is withheld in sessions that were open when the request closed: they
 * cannot tell a new value from a copy of an erased one (fail closed).
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "access/parallel.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "storage/proc.h"
#include "utils/backend_status.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define PVG_DIGEST_HEX_LEN (PG_SHA256_DIGEST_LENGTH * 2)

typedef struct PvgForgottenEntry
{
	char		digest[PVG_DIGEST_HEX_LEN + 1];
} PvgForgottenEntry;

static MemoryContext pvg_fg_cxt = NULL;
static HTAB *pvg_fg_digests = NULL; /* NULL or empty: nothing to withhold */
static uint8 *pvg_fg_key = NULL;
static int	pvg_fg_keylen = 0;
static bool pvg_fg_stale = true;
static Oid	pvg_fg_rel = InvalidOid;	/* privacy_guard.erasure_request */

static void
pvg_fg_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == pvg_fg_rel)
		pvg_fg_stale = true;
}

void
pvg_forgotten_init(void)
{
	CacheRegisterRelcacheCallback(pvg_fg_relcache_callback, (Datum) 0);
}

/* When the session started: a parallel worker's is its leader's. */
static TimestampTz
pvg_session_start(void)
{
	if (!IsParallelWorker())
		return MyStartTimestamp;
	if (MyProc->lockGroupLeader != NULL)
	{
		int			leader = MyProc->lockGroupLeader->pid;
		int			n = pgstat_fetch_stat_numbackends();

		for (int i = 1; i <= n; i++)
		{
			PgBackendStatus *st = pgstat_fetch_stat_beentry(i);

			if (st != NULL && st->st_procpid == leader)
				return st->st_proc_start_timestamp;
		}
	}
	return DT_NOBEGIN;
}

static void
pvg_fg_load(void)
{
	MemoryContext cxt;
	MemoryContext old;
	HTAB	   *digests;
	HASHCTL		ctl;
	uint8	   *volatile key = NULL;
	volatile int keylen = 0;
	Oid			save_userid;
	int			save_sec;
	bool		current = pvg_load_is_current();

	cxt = AllocSetContextCreate(TopMemoryContext, "privacy_guard forgotten subjects",
								ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = PVG_DIGEST_HEX_LEN + 1;
	ctl.entrysize = sizeof(PvgForgottenEntry);
	ctl.hcxt = cxt;
	digests = hash_create("privacy_guard forgotten digests", 16, &ctl,
						  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	/* cleared first: an invalidation that arrives while we read marks it again */
	pvg_fg_stale = false;
	pvg_as_extension_owner_begin(&save_userid, &save_sec);
	PG_TRY();
	{
		Snapshot	snap = RegisterSnapshot(pvg_load_snapshot());
		Oid			argtypes[1] = {TIMESTAMPTZOID};
		Datum		args[1];
		uint64		n;

		pvg_fg_rel = get_relname_relid("erasure_request",
									   get_namespace_oid("privacy_guard", false));
		args[0] = TimestampTzGetDatum(pvg_session_start());
		n = pvg_spi_read_snapshot("SELECT s.key, r.subject_digest "
								  "FROM privacy_guard.secret s "
								  "JOIN privacy_guard.erasure_request r "
								  "ON r.state OPERATOR(pg_catalog.=) 'done' "
								  "AND r.completed_at OPERATOR(pg_catalog.>=) $1",
								  1, argtypes, args, snap);
		old = MemoryContextSwitchTo(cxt);
		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			Datum		d;
			char	   *digest;

			if (key == NULL)
			{
				bytea	   *k;

				d = SPI_getbinval(tup, desc, 1, &isnull);
				if (isnull)
					continue;
				k = DatumGetByteaPP(d);
				keylen = VARSIZE_ANY_EXHDR(k);
				key = palloc(keylen);
				memcpy(key, VARDATA_ANY(k), keylen);
			}
			d = SPI_getbinval(tup, desc, 2, &isnull);
			if (isnull)
				continue;
			digest = TextDatumGetCString(d);
			if (strlen(digest) == PVG_DIGEST_HEX_LEN)
				(void) hash_search(digests, digest, HASH_ENTER, NULL);
		}
		MemoryContextSwitchTo(old);
		UnregisterSnapshot(snap);
	}
	PG_CATCH();
	{
		pvg_fg_stale = true;
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	pvg_as_extension_owner_end(save_userid, save_sec);

	/* in parallel mode the statement's snapshot served: good for this statement only */
	if (!current)
		pvg_fg_stale = true;
	if (pvg_fg_cxt != NULL)
		MemoryContextDelete(pvg_fg_cxt);
	pvg_fg_cxt = cxt;
	pvg_fg_digests = digests;
	pvg_fg_key = key;
	pvg_fg_keylen = keylen;
}

/*
 * Whether a tagged value naming subject (len bytes, not terminated) must be
 * withheld because a forget request of that subject was completed while
 * this session may have copied it.  Call after pvg_cache_accept().
 */
bool
pvg_subject_forgotten_here(const char *subject, int len)
{
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char		hex[PVG_DIGEST_HEX_LEN + 1];
	pg_hmac_ctx *ctx;
	bool		found;

	if (pvg_fg_stale)
		pvg_fg_load();
	if (pvg_fg_digests == NULL || pvg_fg_key == NULL ||
		hash_get_num_entries(pvg_fg_digests) == 0)
		return false;

	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL)
		elog(ERROR, "out of memory creating an HMAC context");
	if (pg_hmac_init(ctx, pvg_fg_key, pvg_fg_keylen) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) subject, len) < 0 ||
		pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
	{
		const char *err = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		elog(ERROR, "could not compute HMAC: %s", err);
	}
	pg_hmac_free(ctx);
	hex_encode((const char *) mac, sizeof(mac), hex);
	hex[PVG_DIGEST_HEX_LEN] = '\0';
	(void) hash_search(pvg_fg_digests, hex, HASH_FIND, &found);
	return found;
}
