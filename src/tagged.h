/*-------------------------------------------------------------------------
 *
 * tagged.h
 *	  The consent-tagged types (tagged_text, tagged_date, tagged_numeric,
 *	  tagged_jsonb): one on-disk format, one decoder, shared by the I/O
 *	  functions (tagged_io.c), the tagged-value rule (tagged_access.c), the
 *	  SQL functions and operators (tagged_ops.c), the erasure's keyed
 *	  matchers (tagged_erase.c) and default tags (tagged_default.c).
 *
 * Calls go one way: tagged_access.c needs only a decoded value (no format
 * code), tagged_io.c needs the rule for its output functions, and the
 * others use both.
 *
 * On-disk format (a varlena; every multi-byte field is read with memcpy, so
 * the datum needs no alignment and may be stored with a short header):
 *
 *	byte 0		format version (PVG_TAG_VERSION)
 *	byte 1		flags (low nibble) | base kind << 4
 *	byte 2		number of purposes n (0..PVG_TAG_MAX_PURPOSES)
 *	8 bytes		salt: random, drawn afresh whenever a value is encoded
 *	n varints	purpose ids (privacy_guard.purpose.id), strictly ascending,
 *				unsigned LEB128: one byte per id below 128, two below 16384
 *	8 bytes		retain-until (TimestampTz), if PVG_TAG_F_RETAIN
 *	varint+bytes subject key (1..PVG_TAG_MAX_SUBJECT bytes), if PVG_TAG_F_SUBJECT
 *	rest		the base value: a text's or numeric's or jsonb's bytes
 *				without their varlena header, a date's four bytes
 *
 * So a tag costs 11 bytes, plus about one byte per purpose, plus 8 for a
 * retain-until and 1 + length for a subject; the datum's own varlena header
 * is 1 byte on disk for values under 127 bytes.
 *
 * The salt is there because PostgreSQL compares any datum byte by byte,
 * without its type's operators, in the record image operators (*=, *<, ...
 * on whole rows, also a btree operator class): without it a forged value
 * with the same tag would let anyone test guesses for, and binary-search,
 * a withheld value's subject and content.  With it, two values' bytes
 * differ from the salt on, unless one is a copy of the other.  The salt is
 * neither shown nor read by the text or binary forms: input draws a new one.
 *
 * A value whose flags hold PVG_TAG_F_DEFAULT has no tag yet: it was written
 * as a plain value and takes the default tag of the protected table it is
 * stored in (see pvg_tag_default_trigger); it has no purposes, subject or
 * retain-until.  Outside a protected table it stays untagged and is shown
 * like a plain value.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PVG_TAGGED_H
#define PVG_TAGGED_H

#include "privacy_guard.h"

#define PVG_TAG_VERSION			1

#define PVG_TAG_F_SUBJECT		0x01
#define PVG_TAG_F_RETAIN		0x02
#define PVG_TAG_F_DEFAULT		0x04
#define PVG_TAG_F_ALL			0x07

#define PVG_TAG_MAX_PURPOSES	64
#define PVG_TAG_MAX_SUBJECT		1024
#define PVG_TAG_SALT_LEN		8

/* the base type a tagged value wraps */
typedef enum PvgTagKind
{
	PVG_KIND_TEXT = 1,
	PVG_KIND_DATE = 2,
	PVG_KIND_NUMERIC = 3,
	PVG_KIND_JSONB = 4
} PvgTagKind;

/* a decoded tagged value; pointers point into the (detoasted) datum */
typedef struct PvgTag
{
	PvgTagKind	kind;
	uint8		flags;
	int			npurposes;
	int32		purposes[PVG_TAG_MAX_PURPOSES];
	TimestampTz retain_until;
	const char *subject;
	int			subject_len;
	const char *payload;
	int			payload_len;
} PvgTag;

/* tagged_io.c */
extern void pvg_tag_decode(struct varlena *v, PvgTag *tag);
extern struct varlena *pvg_tag_encode(const PvgTag *tag);
extern Datum pvg_tag_base_value(const PvgTag *tag);
extern void pvg_tag_set_value(PvgTag *tag, PvgTagKind kind, Datum value);
extern Oid	pvg_tag_base_type(PvgTagKind kind);
extern int32 pvg_tag_resolve_purpose(PvgRegistry *reg, const char *name, int64 id);
extern void pvg_tag_sort_purposes(PvgTag *tag);
extern void pvg_tag_check_subject(const char *s, int len);
extern int	pvg_registry_purpose_by_id(PvgRegistry *reg, int32 id);
extern bool pvg_type_is_tagged(Oid typid, Oid nsp);

/* tagged_access.c */
extern bool pvg_tag_visible(FunctionCallInfo fcinfo, const PvgTag *tag);

#endif							/* PVG_TAGGED_H */
