/*-------------------------------------------------------------------------
 *
 * subject_set.h
 *	  A per-purpose set of subjects with a time limit each, probed once per
 *	  row by the policy check; inlined where it is probed.
 *
 * An allow list (consent purposes) holds the subjects that may be seen,
 * each until its limit (consent expiry or a due forget request); a block
 * list (other purposes) holds the subjects that must not be seen from their
 * limit on (objection: always; forget request: from its due time).  Either
 * way a subject is visible at time now iff
 *		found ? now < limit : !allow_list
 *
 *-------------------------------------------------------------------------
 */
#ifndef PVG_SUBJECT_SET_H
#define PVG_SUBJECT_SET_H

#include "privacy_guard.h"

#include "access/transam.h"
#include "utils/dsa.h"
#include "common/hashfn.h"
#include "utils/array.h"

/* 64-bit finaliser (from MurmurHash3): spreads small integers well */
static inline uint32
pvg_hash_int64(uint64 h)
{
	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return (uint32) h;
}

typedef struct PvgIntEntry
{
	int64		key;
	TimestampTz limit;
	char		status;
} PvgIntEntry;

#define SH_PREFIX pvg_intmap
#define SH_ELEMENT_TYPE PvgIntEntry
#define SH_KEY_TYPE int64
#define SH_KEY key
#define SH_HASH_KEY(tb, k) pvg_hash_int64((uint64) (k))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct PvgTextKey
{
	const char *str;
	int			len;
} PvgTextKey;

typedef struct PvgTextEntry
{
	PvgTextKey	key;
	TimestampTz limit;
	uint32		hash;
	char		status;
} PvgTextEntry;

static inline bool
pvg_text_key_equal(PvgTextKey a, PvgTextKey b)
{
	return a.len == b.len && memcmp(a.str, b.str, a.len) == 0;
}

#define SH_PREFIX pvg_textmap
#define SH_ELEMENT_TYPE PvgTextEntry
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

/*
 * A shared base (shared_store.c): one immutable block in a DSA area, all
 * references offsets from its start.  Integer keys whose answer never
 * changes may be bits (as in a private set); the rest are in open
 * addressing tables (integers: an empty slot holds PG_INT64_MIN, the key
 * PG_INT64_MIN itself is kept apart; texts: an empty slot has str_off 0).
 */
typedef struct PvgBaseInt
{
	int64		key;
	TimestampTz limit;
} PvgBaseInt;

typedef struct PvgBaseText
{
	uint32		hash;
	uint32		len;
	uint64		str_off;		/* from blob_off; 0: empty slot */
	TimestampTz limit;
} PvgBaseText;

typedef struct PvgBaseImage
{
	Size		size;
	Oid			db;
	int			kind;			/* PvgKeyKind */
	int32		refcount;		/* under the directory's lock */
	bool		retired;		/* replaced: freed with its last reference */
	bool		allow_list;
	bool		has_min_key;	/* PG_INT64_MIN is in the set ... */
	TimestampTz min_key_limit;	/* ... with this limit */
	FullTransactionId horizon;	/* xmin of the snapshot it was read with */
	uint64		build_seq;
	uint64		full_seq;
	TimestampTz built_at;
	bool		ring_valid;		/* complete up to change ring position ring_from ... */
	uint64		ring_from;
	bool		merged;			/* ... merged (every record from there on is new to it), or
								 * read with a snapshot (not the records of the
								 * transactions it saw: seen_*) */
	TransactionId seen_xmin;
	TransactionId seen_xmax;
	uint32		seen_xcnt;
	Size		seen_off;		/* the snapshot's running transactions */
	TimestampTz read_at;		/* when the tables were last read for it */
	uint32		siglen;
	Size		sig_off;
	int64		bits_base;
	uint64		bits_len;		/* 0: no bitmap */
	Size		bits_off;
	uint64		int_mask;
	uint64		nints;
	Size		int_off;
	uint64		text_mask;
	uint64		ntexts;
	Size		text_off;
	Size		blob_off;
} PvgBaseImage;

/* what a build callback fills (in a temporary context) */
typedef struct PvgBaseEntryInt
{
	int64		key;
	TimestampTz limit;
} PvgBaseEntryInt;

typedef struct PvgBaseEntryText
{
	const char *str;
	int			len;
	TimestampTz limit;
} PvgBaseEntryText;

typedef struct PvgBaseBuild
{
	bool		allow_list;
	FullTransactionId horizon;
	uint64		full_seq;
	bool		ring_valid;
	uint64		ring_from;
	bool		merged;
	TransactionId seen_xmin;
	TransactionId seen_xmax;
	uint32		seen_xcnt;
	TransactionId *seen_xip;
	TimestampTz read_at;		/* 0: now */
	uint64		nints;
	PvgBaseEntryInt *ints;
	uint64		ntexts;
	PvgBaseEntryText *texts;
} PvgBaseBuild;

typedef void (*pvg_base_build_fn) (PvgBaseBuild *b, void *arg);

/* a base a parallel query's leader uses, as its view lists it (followed by the set's signature) */
typedef struct PvgParallelBase
{
	int32		kind;
	int32		siglen;
	dsa_pointer base;
} PvgParallelBase;

/* consent_cache.c, for parallel.c */
extern void pvg_consent_parallel_sets(PvgRegistry *reg, int purpose, const bool *kinds);
extern bool pvg_consent_parallel_view(PvgRegistry *reg, Snapshot snap,
									  FullTransactionId *ov_from, StringInfo view);

/* parallel.c */
extern bool pvg_parallel_overlay_from(FullTransactionId *from);
extern dsa_pointer pvg_parallel_base(int kind, const char *sig, int siglen);

/* shared_store.c */
extern bool pvg_shared_ready(void);
extern const char *pvg_shared_status(void);
extern uint64 pvg_shared_full_seq(void);
extern uint64 pvg_shared_build_seq(void);
extern const PvgBaseImage *pvg_shared_base(const char *sig, int siglen, int kind,
										   uint64 need_build, uint64 need_full,
										   pvg_base_build_fn build, void *arg,
										   const void *owner);
extern void pvg_shared_release(const void *owner);
extern bool pvg_shared_removed_since(FullTransactionId from, ArrayType **subjects);
extern void pvg_shared_stats(int64 *images, int64 *bytes, int64 *builds, int64 *refused);
extern const PvgBaseImage *pvg_shared_base_ref(dsa_pointer dp, const void *owner);
extern dsa_pointer pvg_shared_image_pointer(const PvgBaseImage *img);

/* the limit of a key whose answer never changes */
static inline bool
pvg_limit_unconditional(bool allow_list, TimestampTz limit)
{
	return allow_list ? limit == DT_NOEND : limit == DT_NOBEGIN;
}

/*
 * Look an integer key up in a base's hash table (its bitmap is probed
 * through the set, see pvg_set_allows_int): its limit, or false when absent.
 */
static inline bool
pvg_base_find_int(const PvgBaseImage *b, int64 key, TimestampTz *limit)
{
	const PvgBaseInt *t;
	uint64		s;

	if (unlikely(key == PG_INT64_MIN))
	{
		*limit = b->min_key_limit;
		return b->has_min_key;
	}
	if (b->nints == 0)
		return false;
	t = (const PvgBaseInt *) ((const char *) b + b->int_off);
	s = pvg_hash_int64((uint64) key) & b->int_mask;
	for (;;)
	{
		if (t[s].key == key)
		{
			*limit = t[s].limit;
			return true;
		}
		if (t[s].key == PG_INT64_MIN)
			return false;
		s = (s + 1) & b->int_mask;
	}
}

static inline bool
pvg_base_find_text(const PvgBaseImage *b, const char *str, int len, TimestampTz *limit)
{
	const char *base = (const char *) b;
	const PvgBaseText *t;
	uint32		h;
	uint64		s;

	if (b->ntexts == 0)
		return false;
	t = (const PvgBaseText *) (base + b->text_off);
	h = hash_bytes((const unsigned char *) str, len);
	s = h & b->text_mask;
	for (;;)
	{
		if (t[s].str_off == 0)
			return false;
		if (t[s].hash == h && t[s].len == (uint32) len &&
			memcmp(base + b->blob_off + t[s].str_off, str, len) == 0)
		{
			*limit = t[s].limit;
			return true;
		}
		s = (s + 1) & b->text_mask;
	}
}

struct PvgSubjectSet
{
	int			purpose;		/* index into the registry's purposes */
	PvgKeyKind	kind;
	uint64		reg_generation; /* registry the purpose index belongs to */
	bool		allow_list;
	pvg_intmap_hash *ints;		/* PVG_KEY_INT */
	pvg_textmap_hash *texts;	/* PVG_KEY_TEXT */

	/*
	 * Integer keys whose answer does not depend on the time (consent without
	 * expiry in an allow list, an objection in a block list) are kept as one
	 * bit each when the keys are dense enough, as serial ids usually are: the
	 * probe then touches a few kilobytes instead of a hash table of
	 * megabytes.  Such a key is in the bitmap or in the map, never in both.
	 */
	uint64	   *bits;			/* NULL: no bitmap */
	int64		bits_base;		/* key of bit 0 */
	uint64		bits_len;		/* number of bits */

	/*
	 * Shared mode: the maps are an overlay (every subject written since the
	 * base's horizon, absent ones with a limit that denies or allows as
	 * absence would), probed first; then the base: its bitmap through bits
	 * above (read-only shared memory), then its hash tables when it has any.
	 */
	const PvgBaseImage *base;
	bool		base_has_map;	/* the base has hash table entries */

	struct PvgSubjectSet *next;
};

/* the limit of a key whose answer never changes */
static inline bool
pvg_set_unconditional(PvgSubjectSet *set, TimestampTz limit)
{
	return pvg_limit_unconditional(set->allow_list, limit);
}

static inline bool
pvg_set_allows_int(PvgSubjectSet *set, int64 key, TimestampTz now)
{
	PvgIntEntry *e;
	TimestampTz limit;

	/* shared: the overlay comes first */
	if (set->base != NULL && set->ints->members > 0)
	{
		e = pvg_intmap_lookup(set->ints, key);
		if (e)
			return now < e->limit;
	}
	if (set->bits != NULL)
	{
		uint64		off = (uint64) key - (uint64) set->bits_base;

		if (off < set->bits_len && (set->bits[off >> 6] >> (off & 63)) & 1)
			return set->allow_list;
	}
	if (set->base != NULL)
	{
		if (set->base_has_map && pvg_base_find_int(set->base, key, &limit))
			return now < limit;
		return !set->allow_list;
	}
	if (set->ints->members == 0)
		return !set->allow_list;
	e = pvg_intmap_lookup(set->ints, key);
	return e ? now < e->limit : !set->allow_list;
}

static inline bool
pvg_set_allows_text(PvgSubjectSet *set, const char *str, int len, TimestampTz now)
{
	PvgTextKey	k;
	PvgTextEntry *e;
	TimestampTz limit;

	if (set->texts->members > 0)
	{
		k.str = str;
		k.len = len;
		e = pvg_textmap_lookup(set->texts, k);
		if (e)
			return now < e->limit;
	}
	if (set->base != NULL && set->base_has_map &&
		pvg_base_find_text(set->base, str, len, &limit))
		return now < limit;
	return !set->allow_list;
}

#endif							/* PVG_SUBJECT_SET_H */
