/*-------------------------------------------------------------------------
 *
 * tagged_access.c
 *	  The tagged-value rule: whether the session may see a tagged value.
 *
 * A value is visible (pvg_tag_visible) to superusers and BYPASSRLS roles;
 * to others only under a declared purpose P that is known, for which the
 * role is authorised (P or an ancestor), that is within one of the tag's
 * purposes (P or an ancestor of P is among them), before the tag's
 * retain-until, and, when the tag names a subject, while that subject's
 * state allows P (rules 5 and 7: the purpose's subject set from the consent
 * store, the same one the table policies probe).  A value still awaiting
 * its default tag is a plain value and visible to all.
 *
 * Everything that depends only on the session (role, purpose, registry,
 * subject set) is worked out once per statement and kept in fn_extra; per
 * value the check is a few comparisons and at most one hash probe.  The
 * check never errors about purposes: the functions and operators that read
 * a value (tagged_ops.c) give NULL for a value that may not be seen, the
 * output functions (tagged_io.c) an error.  It reads a decoded value only,
 * so it depends on the registry and the consent store, not on the format.
 *
 *-------------------------------------------------------------------------
 */
#include "tagged.h"
#include "subject_set.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"

#define PVG_MAX_CHAIN 64

/* what one statement's checks need, kept in fn_extra */
typedef struct PvgTagCheck
{
	LocalTransactionId lxid;
	TimestampTz stmt_now;		/* statement start: consent expiry, forget due */
	Oid			userid;
	char		purpose_name[NAMEDATALEN * 4];
	uint64		reg_generation;

	bool		bypass;			/* superuser or BYPASSRLS */
	bool		usable;			/* a known purpose the role is authorised for */
	int			purpose;		/* registry index */
	int			nchain;
	int32		chain_ids[PVG_MAX_CHAIN];	/* ids of the purpose and its ancestors */
	PvgRegistry *reg;			/* the registry purpose indexes refer to */
	PvgSubjectSet *set;			/* the purpose's subjects, fetched when first needed */
	PvgSubjectSet *intset;		/* the same for keys that are integers' text form */
	TimestampTz now;			/* retain-until: transaction start, as now() */
} PvgTagCheck;

static bool
pvg_tag_check_current(PvgTagCheck *chk, PvgRegistry **reg_out)
{
	const char *p = pvg_purpose ? pvg_purpose : "";

	if (chk->lxid != MyProc->lxid ||
		chk->stmt_now != GetCurrentStatementStartTimestamp() ||
		chk->userid != GetUserId() ||
		strcmp(chk->purpose_name, p) != 0)
		return false;
	*reg_out = pvg_registry();
	return (*reg_out)->generation == chk->reg_generation;
}

static void
pvg_tag_check_setup(PvgTagCheck *chk)
{
	PvgRegistry *reg;
	int			i;
	int			p;
	Oid			userid = GetUserId();
	const char *name = pvg_purpose ? pvg_purpose : "";

	/* a purpose privacy_guard.purpose_scope refuses counts as none */
	if (pvg_purpose_refused())
		name = "";

	/* lxid is set last: a setup cut short by an error is never current */
	memset(chk, 0, sizeof(PvgTagCheck));
	chk->lxid = InvalidLocalTransactionId;
	chk->stmt_now = GetCurrentStatementStartTimestamp();
	chk->now = GetCurrentTransactionStartTimestamp();
	chk->userid = userid;
	strlcpy(chk->purpose_name, name, sizeof(chk->purpose_name));
	chk->bypass = superuser_arg(userid) || has_bypassrls_privilege(userid);

	pvg_cache_accept();
	reg = pvg_registry();
	chk->reg = reg;
	chk->reg_generation = reg->generation;
	chk->purpose = -1;
	if (!chk->bypass && strlen(name) < sizeof(chk->purpose_name))
		chk->purpose = pvg_registry_purpose(reg, name);
	if (chk->purpose >= 0)
	{
		for (i = 0; i < reg->nauth && !chk->usable; i++)
		{
			if (pvg_purpose_authorised(reg, chk->purpose, reg->auth[i].purpose) &&
				has_privs_of_role(userid, reg->auth[i].roleid))
				chk->usable = true;
		}
		for (p = chk->purpose; p >= 0 && chk->nchain < PVG_MAX_CHAIN; p = reg->purposes[p].parent)
			chk->chain_ids[chk->nchain++] = reg->purposes[p].id;
	}
	chk->lxid = MyProc->lxid;
}

/*
 * The tagged-value rule: whether the session may see the value.  Never
 * errors about purposes; uses fcinfo->flinfo->fn_extra when there is one.
 */
bool
pvg_tag_visible(FunctionCallInfo fcinfo, const PvgTag *tag)
{
	PvgTagCheck local;
	PvgTagCheck *chk;
	PvgRegistry *reg;
	int			i;
	int			j;
	bool		match = false;

	if (tag->flags & PVG_TAG_F_DEFAULT)
		return true;

	if (fcinfo != NULL && fcinfo->flinfo != NULL)
	{
		chk = (PvgTagCheck *) fcinfo->flinfo->fn_extra;
		if (chk == NULL)
		{
			chk = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(PvgTagCheck));
			fcinfo->flinfo->fn_extra = chk;
			pvg_tag_check_setup(chk);
		}
		else if (!pvg_tag_check_current(chk, &reg))
			pvg_tag_check_setup(chk);
	}
	else
	{
		chk = &local;
		pvg_tag_check_setup(chk);
	}

	if (chk->bypass)
		return true;
	if (!chk->usable)
		return false;
	for (i = 0; i < tag->npurposes && !match; i++)
	{
		for (j = 0; j < chk->nchain && !match; j++)
			match = tag->purposes[i] == chk->chain_ids[j];
	}
	if (!match)
		return false;
	if ((tag->flags & PVG_TAG_F_RETAIN) && !(chk->now < tag->retain_until))
		return false;
	if (tag->flags & PVG_TAG_F_SUBJECT)
	{
		int64		key;

		/*
		 * A key that is an integer's text form is probed in the integer set
		 * (dense keys are a bitmap there), the others in the text set: both
		 * are built from the same consent store.
		 */
		if (pvg_parse_canonical_int(tag->subject, tag->subject_len, &key))
		{
			if (chk->intset == NULL)
				chk->intset = pvg_subject_set(chk->reg, chk->purpose, PVG_KEY_INT);
			if (!pvg_set_allows_int(chk->intset, key, chk->stmt_now))
				return false;
		}
		else
		{
			if (chk->set == NULL)
				chk->set = pvg_subject_set(chk->reg, chk->purpose, PVG_KEY_TEXT);
			if (!pvg_set_allows_text(chk->set, tag->subject, tag->subject_len, chk->stmt_now))
				return false;
		}

		/*
		 * A copy of a value erased while this session was open (its
		 * temporary tables, WITH HOLD cursors): the request that erased it
		 * is done and its key gone, but its digest still names the subject.
		 */
		return !pvg_subject_forgotten_here(tag->subject, tag->subject_len);
	}
	return true;
}
