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

#include "common/hashfn.h"

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

	struct PvgSubjectSet *next;
};

/* the limit of a key whose answer never changes */
static inline bool
pvg_set_unconditional(PvgSubjectSet *set, TimestampTz limit)
{
	return set->allow_list ? limit == DT_NOEND : limit == DT_NOBEGIN;
}

static inline bool
pvg_set_allows_int(PvgSubjectSet *set, int64 key, TimestampTz now)
{
	PvgIntEntry *e;

	if (set->bits != NULL)
	{
		uint64		off = (uint64) key - (uint64) set->bits_base;

		if (off < set->bits_len && (set->bits[off >> 6] >> (off & 63)) & 1)
			return set->allow_list;
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

	if (set->texts->members == 0)
		return !set->allow_list;
	k.str = str;
	k.len = len;
	e = pvg_textmap_lookup(set->texts, k);
	return e ? now < e->limit : !set->allow_list;
}

#endif							/* PVG_SUBJECT_SET_H */
